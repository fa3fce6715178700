"""The random control delivers the adversarial noise's energy to the network (issue 21), and the recontrol
path (reused adversarial rows, recomputed control) agrees with a full recomputation."""
import numpy as np
import pandas as pd
import pytest
import torch

from advmri.attacks.common import make_batch
from advmri.attacks.noise import (NoiseConfig, adversarial_noise, random_noise_items, sampled_fraction,
                                  split_norms)
from advmri.data.dataset import AnnotatedSlices
from advmri.models.networks import build, save_checkpoint
from advmri.experiments.run import AttackRun, Reuse, execute
from advmri.experiments.verify import TOLERANCE, compare


@pytest.fixture(scope="module")
def setup(tiny_data):
    ds = AnnotatedSlices(tiny_data, acceleration=8)
    tb = make_batch([ds[i] for i in range(min(3, len(ds)))])
    torch.manual_seed(0)
    return tb, build("unet", "tiny").freeze()


@pytest.mark.parametrize("cfg", [NoiseConfig(steps=3), NoiseConfig(steps=3, update="reference"),
                                 NoiseConfig(steps=2, restarts=1)], ids=["ours", "reference", "restarts"])
def test_control_matches_the_energy_the_network_sees(setup, cfg):
    tb, model = setup
    eps = torch.full((len(tb),), 0.02)
    z = adversarial_noise(model, tb, eps, cfg)
    zr = random_noise_items(z, tb, eps, seed=0, draw=0)
    (s_adv, u_adv), (s_rnd, u_rnd) = split_norms(z, tb), split_norms(zr, tb)
    assert torch.allclose(s_rnd, s_adv, rtol=1e-5)  # per coil: the same energy on the sampled columns
    assert torch.allclose(u_rnd, u_adv, rtol=1e-5, atol=1e-12)
    ratio = sampled_fraction(zr, tb) / sampled_fraction(z, tb)
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-3)
    assert zr[..., ~tb.acquired[0]].abs().max() == 0
    if cfg.update == "ours" and not cfg.restarts:  # the PGA puts nothing on the columns the mask discards
        assert torch.all(sampled_fraction(z, tb) == 1)
    elif cfg.update == "reference":  # its random start spreads energy over every acquired column
        assert torch.all(sampled_fraction(z, tb) < 0.9)


def test_the_old_control_would_have_wasted_most_of_its_energy(setup):
    """The earlier draw over every acquired column: only about 1/acceleration of it reached the network."""
    tb, _ = setup
    g = torch.view_as_complex(torch.randn(*tb.kspace.shape, 2, generator=torch.Generator().manual_seed(0)))
    old = g * tb.acquired[:, None, None, :]
    assert float(sampled_fraction(old, tb).mean()) < 0.35


def _run(tmp_path, tiny_data, **noise):
    ck = tmp_path / "u.pt"
    if not ck.is_file():
        torch.manual_seed(1)
        save_checkpoint(ck, build("unet", "tiny"))
    return AttackRun.from_params("noise", model=str(ck), data_dir=str(tiny_data), max_targets=3, eps=[0.0, 0.01, 0.02],
                                 steps=3, random_draws=2, threads=1, **noise)


def test_tables_carry_both_sampled_fractions(tmp_path, tiny_data):
    df, _ = execute(_run(tmp_path, tiny_data), progress=False)
    live = df[df.param > 0]
    assert np.allclose(live.random_sampled_fraction / live.adv_sampled_fraction, 1, atol=1e-3)
    assert df[df.param == 0].adv_sampled_fraction.isna().all()


@pytest.mark.parametrize("update", ["ours", "reference"])
def test_reusing_adversarial_rows_agrees_with_a_full_recomputation(tmp_path, tiny_data, update):
    run = _run(tmp_path, tiny_data, update=update)
    full, _ = execute(run, progress=False)
    full = full.assign(code_version="0123456789ab")  # as from a clean tree (rows of a +dirty one are never reused)
    reuse = Reuse(full)
    again, _ = execute(run, progress=False, reuse=reuse)
    if update == "ours":  # the noise ends on the budget sphere: only the control is computed
        assert reuse.reused > 0  # (passes with an item inside its ball are recomputed)
    else:  # the reference update ends inside the ball: every pass recomputed, rows identical
        assert reuse.reused == 0 and len(reuse.recomputed_rows) == (full.kind == "adversarial").sum()
    m = compare(again, full)
    assert not m["bad"].any(), m[m["bad"]].head()
    assert len(again) == len(full)
    pd.testing.assert_frame_equal(again[full.columns].iloc[:0], full.iloc[:0])


def test_a_tampered_boundary_row_is_recomputed(tmp_path, tiny_data):
    """A row whose noise is not on the sphere cannot be reused (its norms are unknown)."""
    run = _run(tmp_path, tiny_data)
    full, _ = execute(run, progress=False)
    t = full.assign(code_version="0123456789ab")
    t.loc[(t.kind == "adversarial") & (t.param > 0), "budget_fraction"] = 0.9
    reuse = Reuse(t)
    execute(run, progress=False, reuse=reuse)
    assert reuse.reused == 0 and reuse.recomputed > 0
    assert TOLERANCE["rtol"] <= 1e-4


def test_recontrol_rewrites_only_the_control(tmp_path, tiny_data, monkeypatch):
    """A run folder from before the fix (no fraction columns, other random rows): recontrol keeps the adversarial
    rows, recomputes the control, and its table agrees with a fresh run; a dirty tree is refused without the flag."""
    import json

    import yaml

    from advmri.util import provenance
    from advmri.util.errors import UserError
    from advmri.experiments.recontrol import recontrol
    from advmri.experiments.run import CONTROL_COLUMNS, read_table
    from advmri.experiments.sweep import read_status, run_sweep, table_digest

    ck = tmp_path / "u.pt"
    torch.manual_seed(1)
    save_checkpoint(ck, build("unet", "tiny"))
    cfg = tmp_path / "rc.yaml"
    cfg.write_text(yaml.safe_dump(dict(name="rc", notebooks={"noise": "notebooks/03_noise_attack.ipynb"},
                                       grid=dict(model=[str(ck)], attack=["noise"]),
                                       common=dict(data_dir=str(tiny_data), max_targets=2, eps=[0.0, 0.01], steps=3,
                                                   random_draws=2, threads=1))))
    st = run_sweep(cfg, results=tmp_path, log=lambda *a: None)
    (rid,) = st
    folder = tmp_path / "rc" / rid
    fresh = read_table(folder / "results.csv")
    old = fresh.drop(columns=list(CONTROL_COLUMNS))
    old.loc[old.kind == "random", "box_mse"] *= 1.5  # the old control's rows differ
    old.to_csv(folder / "results.csv", index=False)
    s = read_status(folder)
    s["results_sha256"], s["results_rows"] = table_digest(folder / "results.csv")
    (folder / "status.json").write_text(json.dumps(s))
    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab+dirty")
    with pytest.raises(UserError, match="uncommitted changes"):
        recontrol(folder, log=lambda *a: None)
    monkeypatch.undo()
    status = recontrol(folder, log=lambda *a: None, allow_dirty=True)
    new = read_table(folder / "results.csv")
    assert not compare(new, fresh)["bad"].any()
    assert status["recontrol"]["passes_reused"] + status["recontrol"]["passes_recomputed"] > 0
    assert status["results_sha256"] == table_digest(folder / "results.csv")[0] and status["control_machine"]
    assert (folder / "results.recons.h5").is_file()


def test_a_run_without_control_stores_its_reconstructions(tmp_path, tiny_data):
    from advmri.experiments import recons

    run = _run(tmp_path, tiny_data)
    run.noise.random_draws = 0
    df, extras = execute(run, progress=False, keep_images=True)
    assert set(df.kind) == {"adversarial"} and df.random_sampled_fraction.isna().all()
    p = recons.save(tmp_path / "r.recons.h5", extras, run.as_dict(), "unet", "tiny", "v")
    rr = recons.load(p)
    assert np.isnan(rr.targets[0].random).all() and np.isfinite(rr.targets[0].adversarial).all()
