from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from advmri.attacks.common import box_scores, make_batch
from advmri.attacks.noise import (
    NoiseConfig, adversarial_noise, adversarial_noise_looped, budget, coil_norms, project, random_noise_like, recon_with_noise,
)
from advmri.attacks.rotation import (
    RotationConfig, angle_grid, rotate, sweep_angles, sweep_angles_looped, worst_case,
)
from advmri.data.dataset import AnnotatedSlices
from advmri.models.networks import build
from advmri.experiments.run import RESULT_COLUMNS, AttackRun, execute, read_table, write_table


@pytest.fixture(scope="module")
def tiny_batch(tiny_data):
    ds = AnnotatedSlices(tiny_data)
    return make_batch([ds[i] for i in range(min(3, len(ds)))])


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build("varnet", "tiny").freeze()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.floats(0.0, 0.05), st.floats(1e-3, 1e3), st.integers(0, 2**16))
def test_projection_budget_holds_per_coil(b, c, eps, scale, seed):
    g = torch.Generator().manual_seed(seed)
    k = torch.view_as_complex(torch.randn(b, c, 8, 6, 2, generator=g)) * scale
    z = torch.view_as_complex(torch.randn(b, c, 8, 6, 2, generator=g)) * scale
    r = budget(k, torch.full((b,), eps))
    zp = project(z, r)
    assert (coil_norms(zp) <= r * (1 + 1e-5) + 1e-12).all()
    inside = coil_norms(z) <= r
    assert torch.allclose(zp[inside], z[inside])


def test_adversarial_noise_respects_budget_and_columns(tiny_batch, tiny_model):
    tb = tiny_batch
    eps = torch.tensor([0.01, 0.02, 0.005])[: len(tb)]
    z = adversarial_noise(tiny_model, tb, eps, NoiseConfig(steps=3, restarts=1, momentum=0.9))
    r = budget(tb.kspace, eps)
    assert (coil_norms(z) <= r * (1 + 1e-5)).all()
    assert (coil_norms(z) > 0.5 * r).all()  # the attack uses its budget
    assert z[..., ~tb.acquired[0]].abs().max() == 0
    zr = random_noise_like(z, tb, torch.Generator().manual_seed(0))
    assert torch.allclose(coil_norms(zr), coil_norms(z), rtol=1e-4)
    assert zr[..., ~tb.acquired[0]].abs().max() == 0


def test_eps_zero_reproduces_clean(tiny_batch, tiny_model):
    tb = tiny_batch
    z = adversarial_noise(tiny_model, tb, torch.zeros(len(tb)), NoiseConfig(steps=2))
    assert z.abs().max() == 0
    clean = tiny_model(tb.kspace * tb.mask[:, None, None, :], tb.mask, tb.num_low, tb.crop)
    assert torch.equal(recon_with_noise(tiny_model, tb, z), clean)


def test_eps_zero_items_skip_the_attack_without_changing_the_others(tiny_batch, tiny_model):
    """Mixed eps: the eps=0 items get exactly zero noise, the others the same first step as alone."""
    tb = tiny_batch
    eps = torch.tensor([0.0, 0.01] * len(tb))[: len(tb)]
    z = adversarial_noise(tiny_model, tb, eps, NoiseConfig(steps=1))
    assert z[eps == 0].abs().max() == 0
    live = (eps > 0).nonzero().flatten().tolist()
    assert live, "the fixture needs at least two items"
    zl = adversarial_noise(tiny_model, tb.select(live), eps[live], NoiseConfig(steps=1))
    assert (z[live] - zl).norm() <= 1e-4 * zl.norm()
    assert torch.all(coil_norms(z[live]) <= budget(tb.kspace[live], eps[live]) * (1 + 1e-5))


def test_noise_batched_equals_one_at_a_time(tiny_batch, tiny_model):
    """One PGA step: batched and per-item perturbations agree to float precision. Over several
    steps, float noise (~1e-6) can be amplified by the normalised gradient of an untrained net,
    so there we compare the attack's outcome (box MSE reached) instead."""
    tb = tiny_batch
    eps = torch.full((len(tb),), 0.01)
    zb = adversarial_noise(tiny_model, tb, eps, NoiseConfig(steps=1))
    for i in range(len(tb)):
        zi = adversarial_noise(tiny_model, tb.select([i]), eps[i:i + 1], NoiseConfig(steps=1))
        assert (zi[0] - zb[i]).norm() <= 1e-4 * zb[i].norm()
    cfg = NoiseConfig(steps=3)
    zb = adversarial_noise(tiny_model, tb, eps, cfg)
    mse_b = box_scores(recon_with_noise(tiny_model, tb, zb), tb)["box_mse"]
    for i in range(len(tb)):
        sub = tb.select([i])
        zi = adversarial_noise(tiny_model, sub, eps[i:i + 1], cfg)
        mse_i = box_scores(recon_with_noise(tiny_model, sub, zi), sub)["box_mse"][0]
        assert mse_i == pytest.approx(mse_b[i].item(), rel=0.05)


def test_noise_batched_equals_looped_exactly_in_float64(tiny_batch, tiny_model):
    """In double precision batching changes nothing: all steps agree to ~1e-12 (the float32 drift
    above is rounding amplified by the normalised gradient, not a difference in the algorithm)."""
    import copy

    m64 = copy.deepcopy(tiny_model).double()
    tb = tiny_batch.double()
    eps = torch.linspace(0.005, 0.02, len(tb), dtype=torch.float64)
    cfg = NoiseConfig(steps=4)
    zb = adversarial_noise(m64, tb, eps, cfg)
    zl = adversarial_noise_looped(m64, tb, eps, cfg)
    assert zb.dtype == torch.complex128
    assert (zb - zl).norm() <= 1e-10 * zl.norm()


def test_rotation_zero_and_roundtrip():
    g = torch.Generator().manual_seed(0)
    from scipy.ndimage import gaussian_filter

    img = torch.from_numpy(gaussian_filter(torch.rand(64, 48, generator=g).numpy(), 2)).float()[None, None]
    r0 = rotate(img, torch.tensor([0.0]))
    assert (r0 - img).abs().max() < 0.02 * img.abs().max()  # interpolation error only
    back = rotate(rotate(img, torch.tensor([4.0])), torch.tensor([-4.0]))
    inner = (slice(None), slice(None), slice(12, 52), slice(10, 38))  # inside the field of view
    assert (back - img)[inner].abs().max() < 0.05 * img.abs().max()
    assert (rotate(img, torch.tensor([4.0])) - img)[inner].abs().max() > 0.05 * img.abs().max()


@pytest.mark.parametrize("interpolation", ["reference", "antialias", "fourier"])
def test_rotation_interpolations_agree_and_fourier_zero_is_the_identity(interpolation):
    from scipy.ndimage import gaussian_filter

    g = torch.Generator().manual_seed(0)
    img = torch.from_numpy(gaussian_filter(torch.rand(64, 48, generator=g).numpy(), 2)).double()[None, None]
    ang = torch.tensor([3.0], dtype=torch.float64)
    exact = rotate(img, ang, "fourier")
    r = rotate(img, ang, interpolation)
    inner = (slice(None), slice(None), slice(12, 52), slice(10, 38))
    assert (r - exact)[inner].abs().max() < 0.03 * img.abs().max()  # same direction and size of rotation
    assert (rotate(img, -ang, interpolation) - exact)[inner].abs().max() > 0.05 * img.abs().max()
    zero = (rotate(img, torch.zeros(1, dtype=torch.float64), interpolation) - img).norm() / img.norm()
    if interpolation == "fourier":
        assert zero < 1e-12  # band-limited rotation by 0 deg: the identity
    else:
        assert 1e-4 < zero < 0.02  # 2x up- and down-sampling: interpolation error only


def test_rotation_by_zero_reproduces_the_clean_reconstruction(tiny_batch, tiny_model):
    """0 deg through the whole pipeline: Fourier = clean reconstruction; the reference's resampling moves
    it by its own interpolation error only, and less than the antialiased variant (which blurs)."""
    from advmri.attacks.noise import recon_with_noise
    from advmri.attacks.rotation import rotated_recon

    tb = tiny_batch.select([0])
    with torch.no_grad():
        clean = recon_with_noise(tiny_model, tb, torch.zeros_like(tb.kspace))
        err = {m: float((rotated_recon(tiny_model, tb, torch.zeros(1), m) - clean).norm() / clean.norm())
               for m in ("fourier", "reference", "antialias")}
    assert err["fourier"] < 1e-5
    assert err["reference"] < err["antialias"] and err["reference"] < 0.05, err


def test_angle_grid_reference():
    a = angle_grid()
    assert len(a) == 99 and a[0] == -4.9 and a[-1] == 4.9 and 0.0 in a


def test_rotation_batched_equals_looped(tiny_batch, tiny_model):
    tb = tiny_batch.select([0, 1])
    angles = [-2.0, 0.0, 1.5]
    b = sweep_angles(tiny_model, tb, angles, chunk=4)
    l = sweep_angles_looped(tiny_model, tb, angles)
    for k in ("box_mse", "box_ssim", "img_ssim"):
        assert torch.allclose(b[k], l[k], rtol=1e-4, atol=1e-6), k
    w = worst_case(b, angles, [0.0, 2.0])
    assert all(r["angle"] == 0.0 for r in w if r["bound"] == 0.0)
    for r in w:
        assert r["box_mse"] == pytest.approx(float(b["box_mse"][r["item"]][[abs(a) <= r["bound"] for a in angles]].max()))


def test_result_table_schema(tiny_data, tmp_path):
    from advmri.models.networks import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", build("unet", "tiny"))
    for attack in ("noise", "rotation"):
        run = AttackRun(model=str(tmp_path / "m.pt"), data=str(tiny_data), attack=attack, max_targets=2)
        run.noise = NoiseConfig(eps=(0.0, 0.01), steps=2, random_draws=2)
        run.rotation = RotationConfig(max_angle=1.0, angle_step=0.5, bounds=(0.0, 1.0), random_draws=2)
        df, _ = execute(run, progress=False)
        assert list(df.columns) == RESULT_COLUMNS
        assert set(df.kind) == {"adversarial", "random"} | ({"clean"} if attack == "rotation" else set())
        assert df.run_id.nunique() == 1 and df.code_version.iloc[0]
        assert df[["box_ssim", "box_psnr", "img_ssim"]].notna().all().all()
        assert df.lesion_retained.notna().any()
        n_t = df.drop_duplicates(["file", "slice", "bx", "by"]).shape[0]
        assert len(df[df.kind == "adversarial"]) == n_t * 2
        p = write_table(df, tmp_path / f"{attack}.csv")
        assert list(read_table(p).columns) == RESULT_COLUMNS


TRAINED = ROOT / "models" / "varnet-small.pt"


@pytest.mark.skipif(not TRAINED.is_file(), reason="trained small models not present")
def test_adversarial_beats_random_on_trained_model(small_data):
    run = AttackRun(model=str(TRAINED), data=str(small_data), attack="noise", max_targets=3, chunk=8)
    run.noise = NoiseConfig(eps=(0.01,), steps=4, random_draws=2)
    df, _ = execute(run, progress=False)
    adv = df[df.kind == "adversarial"].box_ssim.mean()
    rnd = df[df.kind == "random"].box_ssim.mean()
    assert adv < rnd - 0.05


def test_reference_update_is_the_authors_formula():
    """reference_step against a literal transcription of AdvRec's KSpaceNoise.optimize_parameters (one item)."""
    from advmri.attacks.noise import reference_step

    g = torch.Generator().manual_seed(3)
    shape = (1, 4, 16, 12)
    z = torch.view_as_complex(torch.randn(*shape, 2, generator=g))
    grad = torch.view_as_complex(torch.randn(*shape, 2, generator=g))
    radius = torch.rand(1, 4, generator=g) + 0.5
    acq = torch.zeros(1, 1, 1, 12)
    acq[..., 2:10] = 1
    # AdvRec: param / ||param|| + step * grad / ||grad|| (global norms), zero outside acq, then per coil
    # unit_normalize (divide by the coil's norm only where it is > 1) and multiply by the coil's budget
    param = z / torch.linalg.vector_norm(z) + 0.5 * grad / torch.linalg.vector_norm(grad)
    param[..., :2] = 0
    param[..., 10:] = 0
    d = torch.view_as_real(param)
    norm = torch.linalg.vector_norm(d, dim=[-3, -2, -1]).unsqueeze(-1).unsqueeze(-1).unsqueeze(-1)
    norm = torch.where(norm < 1, torch.ones_like(norm), norm)
    want = radius[..., None, None] * torch.view_as_complex(d / (norm + 1e-20))
    got = reference_step(z, grad, radius, acq, 0.5)
    assert torch.allclose(got, want, atol=1e-6)


def test_reference_update_ends_inside_the_budget(tiny_batch, tiny_model):
    from advmri.attacks.noise import budget_fraction

    tb = tiny_batch.select([0, 1])
    eps = torch.tensor([0.01, 0.02])
    frac = {}
    for upd in ("ours", "reference"):
        z = adversarial_noise(tiny_model, tb, eps, NoiseConfig(steps=3, update=upd))
        frac[upd] = budget_fraction(z, tb.kspace, eps)
        assert (coil_norms(z) <= budget(tb.kspace, eps) * (1 + 1e-5)).all()
    assert (frac["ours"] > 0.9).all(), frac  # projected gradient ascent ends on or near the boundary
    assert (frac["reference"] < 0.8).all() and (frac["reference"] > 0.05).all(), frac  # well inside it
    with pytest.raises(ValueError, match="update"):
        NoiseConfig(update="reference", restarts=2)
