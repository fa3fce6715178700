"""Erasure (target: healthy) and hallucination (target: lesion) attacks on the lesion-free twins."""

import shutil

import h5py
import numpy as np
import pytest
import torch

from advmri.core import kspace as K
from advmri.attacks.common import box_scores, make_batch, objective
from advmri.attacks.noise import NoiseConfig, adversarial_noise, budget, random_noise_like, recon_with_noise
from advmri.attacks.rotation import RotationConfig, worst_case
from advmri.data.dataset import AnnotatedSlices
from advmri.data.fastmri_h5 import DataFileError
from advmri.util.errors import ParameterError
from advmri.models.networks import build, save_checkpoint
from advmri.experiments.run import AttackRun, execute


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build("varnet", "tiny").freeze()


def test_lesion_free_items_are_the_twins(tiny_data):
    sick, twin = AnnotatedSlices(tiny_data), AnnotatedSlices(tiny_data, lesion_free=True)
    assert len(sick) == len(twin) > 0
    a, b = sick[0], twin[0]
    assert (a.fname, a.slice_idx, a.box) == (b.fname, b.slice_idx, b.box) and torch.equal(a.mask, b.mask)
    assert torch.equal(b.target, a.healthy) and torch.equal(b.healthy, a.target)  # roles swapped
    assert not torch.equal(a.kspace, b.kspace)
    # the stored twin k-space is the twin target's: its RSS reconstruction is reconstruction_rss_healthy
    assert torch.allclose(K.rss_recon(b.kspace, tuple(b.target.shape)), b.target, rtol=1e-4, atol=1e-6)
    # the two k-spaces differ only by the lesion: inside the box the targets differ, far outside they agree
    diff = (a.target - b.target).abs()
    assert diff[a.box.slices].max() > 10 * diff.mean()


def test_erasure_pulls_the_box_toward_the_twin(tiny_data, tiny_model):
    ds = AnnotatedSlices(tiny_data)
    tb = make_batch([ds[i] for i in range(min(3, len(ds)))])
    eps = torch.full((len(tb),), 0.02)
    # pulling toward a point, not pushing to the boundary: steps of half the budget overshoot on this
    # untrained model (twin MSE 0.0002-0.0012 at eps 0.05), a fifth of it converges
    z = adversarial_noise(tiny_model, tb, eps, NoiseConfig(steps=10, step_size=0.2, target="healthy"))
    zc = adversarial_noise(tiny_model, tb, eps, NoiseConfig(steps=10, step_size=0.2, target="clean"))
    zr = random_noise_like(z, tb, torch.Generator().manual_seed(0))
    with torch.no_grad():
        s_adv, s_clean, s_rnd, s0 = (box_scores(recon_with_noise(tiny_model, tb, x), tb)
                                     for x in (z, zc, zr, torch.zeros_like(z)))
    assert (s_adv["twin_mse"] < 0.5 * s_rnd["twin_mse"]).all() and (s_adv["twin_mse"] < 0.5 * s0["twin_mse"]).all()
    assert (s_adv["twin_mse"] < s_clean["twin_mse"]).all()  # not the same as just maximising the error
    # lesion_retained: 1 as in the target, 0 as in the twin; the (untrained) model starts away from 0
    assert (s_adv["lesion_retained"].abs() < 0.5 * s0["lesion_retained"].abs()).all()


def test_objective_signs_and_missing_twin(tiny_data):
    ds = AnnotatedSlices(tiny_data)
    tb = make_batch([ds[0]])
    wb = torch.ones(1, *tb.crop)
    assert objective(tb.healthy, tb, wb, None, "mse", "healthy") == 0  # at the twin: the best it can do
    assert objective(tb.target, tb, wb, None, "mse", "clean") == 0
    assert objective(tb.target, tb, wb, None, "mse", "healthy") < 0
    tb.healthy = None
    with pytest.raises(ValueError, match="lesion-free twin"):
        objective(tb.target, tb, wb, None, "mse", "healthy")


def test_rotation_worst_case_for_the_twin_is_the_closest_angle():
    scores = {"box_mse": torch.tensor([[1.0, 5.0, 3.0]]), "twin_mse": torch.tensor([[4.0, 2.0, 1.0]])}
    angles = [-1.0, 0.0, 1.0]
    assert worst_case(scores, angles, [1.0])[0]["angle"] == 0.0  # clean: the largest box MSE
    assert worst_case(scores, angles, [1.0], "healthy")[0]["angle"] == 1.0  # erasure: closest to the twin
    assert worst_case(scores, angles, [0.0], "healthy")[0]["angle"] == 0.0  # within the bound only
    with pytest.raises(ValueError, match="twin"):
        worst_case({"box_mse": scores["box_mse"]}, angles, [1.0], "healthy")


def test_target_is_left_out_of_the_run_id_at_its_default():
    """Runs computed before ``target`` existed keep their ids (and their committed run folders)."""
    d = AttackRun().as_dict()
    assert "target" not in d["noise"] and AttackRun(attack="rotation").as_dict()["noise"] is None
    erasure = AttackRun.from_params("noise", target="healthy")
    assert erasure.as_dict()["noise"]["target"] == "healthy" and erasure.id != AttackRun().id
    assert AttackRun.from_params("rotation", target="lesion").rotation.target == "lesion"
    with pytest.raises(ParameterError, match="target"):
        AttackRun.from_params("noise", target="heathy")


@pytest.mark.parametrize("attack", ["noise", "rotation"])
def test_erasure_and_hallucination_runs(tiny_data, tmp_path, attack):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", build("unet", "tiny"))
    out = {}
    for target in ("clean", "healthy", "lesion"):
        run = AttackRun.from_params(attack, model=str(tmp_path / "m.pt"), data_dir=str(tiny_data), max_targets=2,
                                    target=target, random_draws=1, **(
                                        dict(eps=[0.0, 0.05], steps=3) if attack == "noise" else
                                        dict(max_angle=2.0, angle_step=1.0, bounds=[0.0, 2.0])))
        out[target], _ = execute(run, progress=False)
    clean, erase, hall = out["clean"], out["healthy"], out["lesion"]
    assert len(clean) == len(erase) == len(hall)
    first = clean[clean.param == 0].iloc[0]
    # the twins are other images: at eps 0 / bound 0 the hallucination run scores the lesion-free slices
    assert not np.isclose(hall[hall.param == 0].box_mse.iloc[0], first.box_mse)
    assert np.allclose(erase[erase.param == 0].box_mse.iloc[0], first.box_mse)  # same slices as the paper's
    assert hall.healthy_closer.notna().all() and erase.healthy_closer.notna().all()


def test_twin_targets_need_twins(tiny_data, tmp_path):
    real = tmp_path / "real"
    shutil.copytree(tiny_data, real)
    for f in (real / "multicoil").glob("*.h5"):
        with h5py.File(f, "a") as hf:
            del hf["reconstruction_rss_healthy"], hf["kspace_healthy"]
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", build("unet", "tiny"))
    kw = dict(model=str(tmp_path / "m.pt"), data_dir=str(real), max_targets=1, eps=[0.01], steps=1)
    with pytest.raises(ParameterError, match=r"target: 'healthy'.*\.h5 lacks"):
        execute(AttackRun.from_params("noise", target="healthy", **kw), progress=False)
    with pytest.raises(DataFileError, match=r"\.h5: no lesion-free twin"):
        execute(AttackRun.from_params("noise", target="lesion", **kw), progress=False)
    df, _ = execute(AttackRun.from_params("noise", target="clean", **kw), progress=False)  # the paper's loss works
    assert df.healthy_closer.isna().all() and df.box_mse.notna().all()


def test_twin_rates_pair_per_box():
    import pandas as pd

    from advmri.report.analysis import twin_rates

    rows = []
    for b, (adv, rnd) in enumerate([(1, (0, 0)), (1, (1, 0)), (0, (0, 0))]):
        box = dict(file=f"f{b}", slice=b, bx=1, by=2, bw=3, bh=4, model="unet", acceleration=8, attack="noise",
                   target="healthy", param=0.01)  # one volume per box: intervals resample volumes
        rows.append(dict(box, kind="adversarial", draw=0, healthy_closer=adv, lesion_retained=0.2))
        rows += [dict(box, kind="random", draw=d, healthy_closer=r, lesion_retained=0.9) for d, r in enumerate(rnd)]
    rows.append(dict(rows[0], kind="clean", param=0.0, healthy_closer=0.0, lesion_retained=1.0))
    t = twin_rates(pd.DataFrame(rows))
    r = t[t.param == 0.01].iloc[0]
    assert r.adversarial == pytest.approx(2 / 3) and r.random == pytest.approx(1 / 6)
    assert r.adv_minus_random == pytest.approx(0.5) and r.boxes == 3 and r.lo <= 0.5 <= r.hi
    # boxes 0 and 1 are erased only under the attack (box 1 by half of its random draws, not by most)
    assert (r.only_adversarial, r.only_random) == (2, 0) and r.p_mcnemar == pytest.approx(0.5)
    assert r.lesion_retained_adv == pytest.approx(0.2) and r.lesion_retained_random == pytest.approx(0.9)
    c = t[t.param == -1.0].iloc[0]  # the clean reconstruction's own rate
    assert c.adversarial == 0 and c.boxes == 1
