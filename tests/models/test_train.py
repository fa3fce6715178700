"""advmri.models.train: training lowers the loss, resumes identically, warm-starts and stops at a plateau; never
overwrites a checkpoint and leaves no model at the final path when interrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import cli, digest, one_error_line

from advmri.models.networks import build, load_checkpoint, save_checkpoint
from advmri.models.train import train


def test_tiny_training_lowers_loss(tiny_data, tmp_path):
    h = train(
        "varnet",
        "tiny",
        tiny_data,
        tmp_path / "v.pt",
        steps=24,
        lr=3e-3,
        val_interval=100,
        save_every=100,
        progress=False,
        val_every_nth=3,
    )
    assert np.mean(h["loss"][-6:]) < np.mean(h["loss"][:6])
    h = train(
        "unet",
        "tiny",
        tiny_data,
        tmp_path / "u.pt",
        steps=30,
        batch=4,
        lr=3e-3,
        val_interval=100,
        save_every=100,
        progress=False,
        val_every_nth=3,
    )
    assert np.mean(h["loss"][-6:]) < np.mean(h["loss"][:6])


def test_resume_continues_identically(tiny_data, tmp_path):
    kw = dict(val_interval=100, save_every=5, progress=False, val_every_nth=3, lr=3e-3)
    h_full = train("unet", "tiny", tiny_data, tmp_path / "a.pt", steps=10, batch=2, **kw)
    train("unet", "tiny", tiny_data, tmp_path / "b.pt", steps=10, batch=2, stop_at=4, **kw)
    h_res = train("unet", "tiny", tiny_data, tmp_path / "b.pt", steps=10, batch=2, resume=True, **kw)
    assert np.allclose(h_full["loss"], h_res["loss"], rtol=1e-4, atol=1e-6)


def test_plateau_training_warm_starts_and_stops(tiny_data, tmp_path):
    """``init`` continues the learning curve; ``plateau`` stops at the first validation step whose gain
    over the last doubling of steps is below the tolerance (a huge tolerance: the first possible one)."""
    kw = dict(progress=False, val_every_nth=3, lr=3e-3, batch=2)
    train("unet", "tiny", tiny_data, tmp_path / "a.pt", steps=4, val_interval=2, save_every=2, **kw)
    h = train(
        "unet",
        "tiny",
        tiny_data,
        tmp_path / "b.pt",
        steps=40,
        val_interval=2,
        save_every=2,
        init=tmp_path / "a.pt",
        plateau=10.0,
        precision="bf16",
        **kw,
    )
    assert h["val_step"][:2] == [2, 4] and h["val_step"][-1] == 8  # 8 is the first s with s/2 >= 4 validated
    _, extra = load_checkpoint(tmp_path / "b.pt")
    assert extra["plateau_reached"] and extra["step"] == 8 and extra["init"]["step"] == 4
    assert extra["precision"] == "bf16" and h["doubling_gain"][-1][0] == 8
    with pytest.raises(Exception, match="steps: 3 is not beyond the 4 steps"):
        train("unet", "tiny", tiny_data, tmp_path / "c.pt", steps=3, init=tmp_path / "a.pt", **kw)
    with pytest.raises(Exception, match="varnet/tiny checkpoint, not unet"):
        save_checkpoint(tmp_path / "v.pt", build("varnet", "tiny"))
        train("unet", "tiny", tiny_data, tmp_path / "d.pt", steps=30, init=tmp_path / "v.pt", **kw)


# ---------------------------------------------------------------------------------------------
# data loss
def test_train_never_overwrites_a_checkpoint(tiny, capsys):
    from advmri.models.train import main

    d, ck = tiny
    before, side = digest(ck), Path(str(ck) + ".sha256").read_text()
    rc, err = cli(
        capsys, main, ["--model", "varnet", "--config", "tiny", "--data", str(d), "--out", str(ck), "--steps", "1"]
    )
    assert rc == 2
    one_error_line(err, str(ck), "--force")
    assert digest(ck) == before and Path(str(ck) + ".sha256").read_text() == side
    rc, err = cli(
        capsys,
        main,
        ["--model", "varnet", "--config", "tiny", "--data", str(d), "--out", str(ck), "--steps", "1", "--resume"],
    )
    assert rc == 2
    one_error_line(err, "resume.pt", "nothing to resume")
    assert digest(ck) == before


def test_interrupted_training_leaves_no_model_at_the_final_path(tiny_data, tmp_path):
    from advmri.models.train import train

    out = tmp_path / "u.pt"
    kw = dict(val_interval=100, save_every=2, progress=False, val_every_nth=3)
    train("unet", "tiny", tiny_data, out, steps=6, batch=2, stop_at=3, **kw)
    assert not out.exists() and not Path(str(out) + ".sha256").exists()
    assert Path(str(out) + ".resume.pt").is_file()
    train("unet", "tiny", tiny_data, out, steps=6, batch=2, resume=True, **kw)
    assert out.is_file() and load_checkpoint(out)[1]["step"] == 6


def test_smoothed_plateau_then_cooldown_resumes_identically(tiny_data, tmp_path):
    """``smooth`` compares means of validations; ``cooldown`` decays the learning rate linearly to 0 after the
    plateau and writes the checkpoint at its end; a run cut inside the cooldown continues exactly."""
    from advmri.models.train import _Schedule

    kw = dict(progress=False, val_every_nth=3, lr=3e-3, batch=2, val_interval=2, save_every=1, plateau=10.0)
    h = train("unet", "tiny", tiny_data, tmp_path / "a.pt", steps=40, smooth=2, cooldown=0.5, **kw)
    # s = 8 is the first doubling with two validations on each side: (6, 8) against (2, 4)
    assert h["doubling_gain"][0][0] == 8 and h["plateau_step"] == 8
    assert np.isclose(h["doubling_gain"][0][1], np.mean(h["val_ssim"][2:4]) - np.mean(h["val_ssim"][0:2]))
    assert h["val_step"][-1] == 12 and h["step"][-1] == 11  # cooldown: 0.5 x 8 = 4 more steps
    _, extra = load_checkpoint(tmp_path / "a.pt")
    assert extra["plateau_reached"] and extra["step"] == 12 and "linear decay" in extra["schedule"]
    sch = _Schedule(40, 2, 3e-3, 0, 10.0, None, 2, 1, 3, 2, 0.5)
    assert [sch.lr_at(s, h) for s in (7, 8, 10, 11)] == pytest.approx([3e-3, 3e-3, 1.5e-3, 0.75e-3])
    train("unet", "tiny", tiny_data, tmp_path / "b.pt", steps=40, smooth=2, cooldown=0.5, stop_at=10, **kw)
    assert not (tmp_path / "b.pt").exists()
    h2 = train("unet", "tiny", tiny_data, tmp_path / "b.pt", steps=40, smooth=2, cooldown=0.5, resume=True, **kw)
    assert h2["step"] == h["step"] and np.allclose(h2["loss"], h["loss"], rtol=1e-4, atol=1e-6)
    assert load_checkpoint(tmp_path / "b.pt")[1]["step"] == 12


def test_bad_config_or_empty_data_folder_is_one_line_before_training(tmp_path, capsys, tiny_data):
    from advmri.models.train import main

    rc, err = cli(
        capsys,
        main,
        ["--model", "varnet", "--config", "smal", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt")],
    )
    assert rc == 2
    one_error_line(err, "config: 'smal' is not one of", "did you mean 'small'?")
    rc, err = cli(
        capsys,
        main,
        ["--model", "unet", "--config", "tiny", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "m.pt")],
    )
    assert rc == 2
    one_error_line(err, "none: no training volumes")
    assert not (tmp_path / "m.pt").exists()
