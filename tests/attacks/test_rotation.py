"""advmri.attacks.rotation: rotations (reference, antialiased, Fourier), the angle grid, batched = looped sweeps and
the worst case per bound (also for the twin targets)."""

import pytest
import torch

from advmri.attacks.noise import recon_with_noise
from advmri.attacks.rotation import angle_grid, rotate, sweep_angles, sweep_angles_looped, worst_case


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
    from advmri.attacks.rotation import rotated_recon

    tb = tiny_batch.select([0])
    with torch.no_grad():
        clean = recon_with_noise(tiny_model, tb, torch.zeros_like(tb.kspace))
        err = {
            m: float((rotated_recon(tiny_model, tb, torch.zeros(1), m) - clean).norm() / clean.norm())
            for m in ("fourier", "reference", "antialias")
        }
    assert err["fourier"] < 1e-5
    assert err["reference"] < err["antialias"] and err["reference"] < 0.05, err


def test_angle_grid_reference():
    a = angle_grid()
    assert len(a) == 99 and a[0] == -4.9 and a[-1] == 4.9 and 0.0 in a


def test_rotation_batched_equals_looped(tiny_batch, tiny_model):
    tb = tiny_batch.select([0, 1])
    angles = [-2.0, 0.0, 1.5]
    b = sweep_angles(tiny_model, tb, angles, chunk=4)
    looped = sweep_angles_looped(tiny_model, tb, angles)
    for k in ("box_mse", "box_ssim", "img_ssim"):
        assert torch.allclose(b[k], looped[k], rtol=1e-4, atol=1e-6), k
    w = worst_case(b, angles, [0.0, 2.0])
    assert all(r["angle"] == 0.0 for r in w if r["bound"] == 0.0)
    for r in w:
        assert r["box_mse"] == pytest.approx(
            float(b["box_mse"][r["item"]][[abs(a) <= r["bound"] for a in angles]].max())
        )


def test_rotation_worst_case_for_the_twin_is_the_closest_angle():
    scores = {"box_mse": torch.tensor([[1.0, 5.0, 3.0]]), "twin_mse": torch.tensor([[4.0, 2.0, 1.0]])}
    angles = [-1.0, 0.0, 1.0]
    assert worst_case(scores, angles, [1.0])[0]["angle"] == 0.0  # clean: the largest box MSE
    assert worst_case(scores, angles, [1.0], "healthy")[0]["angle"] == 1.0  # erasure: closest to the twin
    assert worst_case(scores, angles, [0.0], "healthy")[0]["angle"] == 0.0  # within the bound only
    with pytest.raises(ValueError, match="twin"):
        worst_case({"box_mse": scores["box_mse"]}, angles, [1.0], "healthy")
