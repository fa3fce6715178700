"""advmri.attacks.motion: the object turns under fixed coils. 0 degrees is the identity; a rotated analytic
phantom is reproduced (the paper's coil-image rotation is not); the noise keeps its level; the generator's maps
explain a synthetic volume, and so do ESPIRiT's; the frame reaches the attack runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import untrained

from advmri.attacks.motion import espirit_maps, maps_for, noise_std, rotate_object, split_object
from advmri.attacks.rotation import RotationConfig, rotate_complex
from advmri.core import kspace as K
from advmri.data.phantom import grid
from advmri.data.synth import coil_maps

ROWS, COLS, COILS = 128, 96, 6


def _maps() -> torch.Tensor:
    x, y = grid(ROWS, COLS, 64)
    return torch.from_numpy(coil_maps(np.random.default_rng(3), COILS, x, y))[None]  # (1, coils, rows, cols)


def _blob(theta_deg: float) -> torch.Tensor:
    """An off-centre complex Gaussian (smooth: band-limited to float precision) rotated analytically by theta
    (counter-clockwise as displayed, rows downwards) about the pixel-grid centre. ``(1, rows, cols)``."""
    yy, xx = torch.meshgrid(
        torch.arange(ROWS, dtype=torch.float64) - (ROWS - 1) / 2,
        torch.arange(COLS, dtype=torch.float64) - (COLS - 1) / 2,
        indexing="ij",
    )
    t = math.radians(theta_deg)
    # sample the unrotated object at R^-1 p; displayed counter-clockwise is clockwise in (x, y-down) maths axes
    xs, ys = math.cos(t) * xx - math.sin(t) * yy, math.sin(t) * xx + math.cos(t) * yy
    mag = torch.exp(-(((xs - 14) / 7) ** 2) - ((ys + 20) / 11) ** 2)
    return (mag * torch.exp(1j * 0.01 * xs)).to(torch.complex128)[None]


def _kspace(obj: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    return K.fft2c(maps.to(torch.complex128) * obj[:, None])


def test_zero_degrees_is_the_identity():
    maps = _maps().to(torch.complex128)
    g = torch.Generator().manual_seed(0)
    noise = torch.complex(*torch.randn(2, 1, COILS, ROWS, COLS, generator=g, dtype=torch.float64)) * 0.01
    k = _kspace(_blob(0.0), maps) + noise
    out = rotate_object(k, maps, torch.zeros(1, dtype=torch.float64))
    assert float((out - k).abs().max() / k.abs().max()) < 1e-12


def test_rotated_phantom_matches_the_analytic_rotation_and_the_coil_frame_does_not():
    maps = _maps().to(torch.complex128)
    k = _kspace(_blob(0.0), maps)
    truth = _kspace(_blob(5.0), maps)
    ang = torch.tensor([5.0], dtype=torch.float64)
    obj_err = float((rotate_object(k, maps, ang) - truth).norm() / truth.norm())
    coil = K.fft2c(rotate_complex(K.ifft2c(k), ang, "fourier"))  # the paper's: the coils turn with the knee
    coil_err = float((coil - truth).norm() / truth.norm())
    assert obj_err < 1e-3, obj_err
    assert coil_err > 20 * obj_err, (coil_err, obj_err)


def test_noise_keeps_its_level_and_stays_with_the_coils():
    maps = _maps()
    g = torch.Generator().manual_seed(1)
    noise = torch.complex(*torch.randn(2, 1, COILS, ROWS, COLS, generator=g)) * 0.05
    k = _kspace(_blob(0.0), maps).to(torch.complex64) + K.fft2c(noise)
    out = rotate_object(k, maps, torch.tensor([5.0]))
    corner = (slice(0, 24), slice(0, 24))  # far from the blob: noise only
    before, after = noise_std(K.ifft2c(k), corner), noise_std(K.ifft2c(out), corner)
    assert abs(after / before - 1) < 0.05, (before, after)
    _, res_before = split_object(K.ifft2c(k), maps)
    _, res_after = split_object(K.ifft2c(out), maps)
    assert torch.allclose(res_before, res_after, atol=1e-5)  # noise outside the maps' range does not move


def test_generator_maps_and_espirit_explain_a_synthetic_volume(tiny_data):
    import h5py

    files = sorted((tiny_data / "multicoil").glob("*.h5"))
    with h5py.File(files[0]) as f:
        k = torch.from_numpy(f["kspace"][1])[None]  # (1, coils, rows, cols) complex
    img = K.ifft2c(k)
    own = maps_for(k, [str(files[0])], "synthetic")
    other = maps_for(k, [str(files[1])], "synthetic")
    frac = [float(split_object(img, m)[1].norm() ** 2 / img.norm() ** 2) for m in (own, other)]
    assert frac[0] < 0.02 and frac[1] > 5 * frac[0], frac  # noise outside the range only vs a wrong set of maps
    esp = espirit_maps(k, calib=16)
    assert float(split_object(img, esp)[1].norm() ** 2 / img.norm() ** 2) < 0.05
    assert float((rotate_object(k, esp, torch.zeros(1)) - k).abs().max() / k.abs().max()) < 1e-5
    with pytest.raises(Exception, match="maps: .*not a synthetic volume"):
        with h5py.File(tiny_data / "plain.h5", "w") as f:
            f["kspace"] = np.zeros((1, 2, 4, 4), np.complex64)
        maps_for(k, [str(tiny_data / "plain.h5")], "synthetic")
    (tiny_data / "plain.h5").unlink()


def test_object_frame_runs_through_the_attack_and_is_the_identity_at_zero(tiny_data, tmp_path):
    from advmri.experiments.run import AttackRun, execute

    untrained(tmp_path / "m.pt", seed=0)
    rows = {}
    for frame in ("object", "coils"):
        run = AttackRun(model=str(tmp_path / "m.pt"), data=str(tiny_data), attack="rotation", max_targets=2)
        run.rotation = RotationConfig(
            max_angle=1.0, angle_step=0.5, bounds=(0.0, 1.0), random_draws=1, interpolation="fourier", frame=frame
        )
        df, _ = execute(run, progress=False)
        rows[frame] = df
        clean = df[df.kind == "clean"].set_index(["file", "slice"]).box_mse
        at0 = df[(df.kind == "adversarial") & (df.param == 0.0)].set_index(["file", "slice"]).box_mse
        assert np.allclose(at0, clean, rtol=1e-3)
    adv = {f: d[(d.kind == "adversarial") & (d.param == 1.0)].box_mse.to_numpy() for f, d in rows.items()}
    assert not np.allclose(adv["object"], adv["coils"])  # the two threat models differ
    assert AttackRun(attack="rotation").as_dict()["rotation"].get("frame", "coils") == "coils"


def test_benchmark_rotation_threat_takes_the_frame(tiny_batch, tiny_model):
    from advmri.attacks.noise import recon_with_noise
    from advmri.experiments.threats import Rotation

    threat = Rotation(bounds=(0.0, 1.0), max_angle=1.0, angle_step=0.5, interpolation="fourier", frame="object")
    angles, rec = threat.perturb(tiny_model, tiny_batch, 0.0)
    with torch.no_grad():
        clean = recon_with_noise(tiny_model, tiny_batch, torch.zeros_like(tiny_batch.kspace))
    assert (angles == 0).all() and torch.allclose(rec, clean, rtol=1e-4, atol=1e-5 * float(clean.abs().max()))
    assert threat.describe()["frame"] == "object" and threat.config().frame == "object"
