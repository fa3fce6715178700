"""advmri.models.zoo: the recipes' commands are those the driver runs; a driver cut mid-run resumes the run and
skips finished checkpoints."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advmri.models import zoo
from advmri.models.networks import load_checkpoint
from advmri.models.train import main as train_main


def test_recipes_are_seed_major_and_their_commands_parse(tmp_path):
    rs = zoo.recipes()
    assert [(r.kind, r.seed) for r in rs[:3]] == [("unet", 0), ("varnet", 0), ("unet", 1)]
    assert len({r.out() for r in rs}) == 6 and all(len(zoo.recipes(seeds=(s,))) == 2 for s in zoo.SEEDS)
    cmd = rs[1].command()
    assert cmd.startswith("python -m advmri.models.train --model varnet") and "--cooldown 0.1" in cmd
    with pytest.raises(Exception, match="only"):
        zoo.recipes(("resnet",))


def test_driver_resumes_a_cut_run_and_skips_finished_ones(tiny_data, tmp_path, capsys, monkeypatch):
    r = replace(zoo.BASE["unet"], config="tiny", max_steps=6, val_interval=2, save_every=1, batch=2, plateau=10.0)
    folder = tmp_path / "zoo"
    # cut the run at step 3 (as a session's end would), with the arguments the driver uses
    assert train_main([*r.argv(tiny_data, folder), "--quiet", "--stop-at", "3"]) == 0
    assert zoo.state(r, folder) == "step 3"
    monkeypatch.setattr(zoo, "recipes", lambda *a, **k: [r])
    assert zoo.main(["--out", str(folder), "--data", str(tiny_data), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "--resume" in out and zoo.state(r, folder) == "done"
    assert load_checkpoint(r.out(folder))[1]["step"] == 6
    assert zoo.main(["--out", str(folder), "--data", str(tiny_data)]) == 0
    assert ": done" in capsys.readouterr().out


def test_bad_threads_or_seeds_are_one_line(capsys):
    from conftest import cli, one_error_line

    rc, err = cli(capsys, zoo.main, ["--threads", "0", "--status"])
    assert rc == 2
    one_error_line(err, "threads")
    rc, err = cli(capsys, zoo.main, ["--seeds", "-1", "--status"])
    assert rc == 2
    one_error_line(err, "seeds")
