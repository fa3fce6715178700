"""Classical reconstructions (CG-SENSE, l1-wavelet), the attacker without the mask, and sweeps of several grids."""

from dataclasses import replace

import pytest
import torch
import yaml

from advmri.core import kspace as K
from advmri.core import metrics as M
from advmri.attacks.common import box_scores, make_batch
from advmri.attacks.noise import (NoiseConfig, adversarial_noise, expected_objective, mask_draw_batch,
                                  random_noise_like, recon_with_noise)
from advmri.models.classical import ClassicalRecon, cg_sense, l1_wavelet, low_res_sensitivities, parse_spec, wavelet_prox
from advmri.data.dataset import AnnotatedSlices
from advmri.util.errors import ParameterError
from advmri.experiments.run import AttackRun, load_model
from advmri.experiments.sweep import SweepError, load_sweep


def _problem(seed=0, coils=3, shape=(12, 10)):
    """A small SENSE problem in float64: image x, normalised smooth sensitivities, a column mask."""
    g = torch.Generator().manual_seed(seed)
    x = torch.complex(torch.randn(1, *shape, generator=g, dtype=torch.float64),
                      torch.randn(1, *shape, generator=g, dtype=torch.float64))
    r, c = torch.meshgrid(torch.linspace(-1, 1, shape[0], dtype=torch.float64),
                          torch.linspace(-1, 1, shape[1], dtype=torch.float64), indexing="ij")
    s = torch.stack([torch.exp(-((r - a) ** 2 + (c - b) ** 2)) * torch.exp(1j * (a * r + b * c))
                     for a, b in [(-1, 0), (1, 0.5), (0, -1)][:coils]])[None]  # (1, C, R, Cols)
    s = s / K.rss(s, dim=1)[:, None]
    mask = torch.zeros(1, shape[1], dtype=torch.float64)
    mask[0, ::2] = 1
    mask[0, shape[1] // 2 - 1: shape[1] // 2 + 2] = 1
    return x, s, mask


def test_cg_sense_solves_the_normal_equations():
    x, s, mask = _problem()
    y = K.fft2c(s * x[:, None]) * mask[:, None, None, :]
    n = x.numel()
    # the normal operator as a matrix, column by column, then a direct solve
    eye = torch.eye(n, dtype=torch.complex128).reshape(n, *x.shape[1:])
    normal = lambda v: (s.conj() * K.ifft2c(K.fft2c(s * v[:, None]) * mask[:, None, None, :])).sum(1)  # noqa: E731
    A = torch.stack([normal(e[None])[0].flatten() for e in eye], dim=1)
    lam = 0.05
    rhs = (s.conj() * K.ifft2c(y)).sum(1).flatten()
    direct = torch.linalg.solve(A + lam * torch.eye(n, dtype=A.dtype), rhs)
    got = cg_sense(y, s, mask, iterations=3 * n, lam=lam).flatten()
    assert torch.allclose(got, direct, atol=1e-8)
    # fully sampled, no regularisation: the image itself (sum |S|^2 = 1 makes the normal operator the identity)
    full = torch.ones_like(mask)
    got = cg_sense(K.fft2c(s * x[:, None]), s, full, iterations=2)
    assert torch.allclose(got, x, atol=1e-10)


def test_wavelet_prox_and_fista():
    x, s, mask = _problem(1, shape=(16, 16))
    assert torch.allclose(wavelet_prox(x, torch.zeros(1, dtype=torch.float64)), x, atol=1e-10)  # no threshold
    big = wavelet_prox(x, torch.full((1,), 1e9, dtype=torch.float64), levels=2)  # only the approximation band left
    assert big.abs().sum() < x.abs().sum() and not torch.allclose(big, x)
    y = K.fft2c(s * x[:, None]) * mask[:, None, None, :]
    cg = cg_sense(y, s, mask, iterations=200)
    fista = l1_wavelet(y, s, mask, iterations=300, lam=0.0)  # no penalty: FISTA on the least-squares problem
    res = lambda v: (K.fft2c(s * v[:, None]) * mask[:, None, None, :] - y).abs().pow(2).sum()  # noqa: E731
    assert res(fista) < 1e-3 * res(torch.zeros_like(x)) and res(cg) < 1e-3 * res(torch.zeros_like(x))
    sparse = l1_wavelet(y, s, mask, iterations=50, lam=0.05)
    assert res(sparse) > res(fista)  # the penalty costs data fidelity


def test_sensitivities_from_the_calibration_lines(tiny_data):
    s = AnnotatedSlices(tiny_data)[0]
    sens = low_res_sensitivities(s.masked_kspace[None], s.num_low_frequencies)
    assert sens.shape == s.masked_kspace[None].shape
    assert torch.allclose(K.rss(sens, dim=1), torch.ones(()), atol=1e-4)  # sum_c |S_c|^2 = 1 everywhere
    # the same maps whatever lies outside the centre columns (only the calibration lines are used)
    k = s.masked_kspace[None].clone()
    pad = (k.shape[-1] - s.num_low_frequencies + 1) // 2
    k[..., :pad] = 0
    assert torch.allclose(low_res_sensitivities(k, s.num_low_frequencies), sens, atol=1e-6)


@pytest.mark.parametrize("method", ["cg-sense", "l1-wavelet"])
def test_classical_reconstructs_and_is_attackable(tiny_data, method):
    model = load_model(f"classical:{method}")
    assert model.kind == method and model.config == "classical" and model.sha256 is None
    ds = AnnotatedSlices(tiny_data, acceleration=4)
    tb = make_batch([ds[i] for i in range(min(2, len(ds)))])
    full = recon_with_noise(model, replace(tb, mask=tb.acquired), torch.zeros_like(tb.kspace))
    assert float(M.nmse(full, tb.target).mean()) < 0.01  # fully sampled: the RSS target, up to the ACS maps
    zf = K.rss_recon(tb.kspace * tb.mask[:, None, None, :], tb.crop)
    rec = recon_with_noise(model, tb, torch.zeros_like(tb.kspace))
    assert float(M.nmse(rec, tb.target).mean()) < float(M.nmse(zf, tb.target).mean())  # beats zero-filled
    eps = torch.full((len(tb),), 0.05)
    z = adversarial_noise(model, tb, eps, NoiseConfig(steps=2))
    with torch.no_grad():
        adv = box_scores(recon_with_noise(model, tb, z), tb)["box_mse"]
        rnd = box_scores(recon_with_noise(model, tb, random_noise_like(z, tb, torch.Generator().manual_seed(0))),
                         tb)["box_mse"]
    assert (adv > 2 * rnd).all()  # gradients flow through the unrolled solver


def test_classical_specs_are_checked(tiny_data):
    with pytest.raises(ParameterError, match=r"cg-sense:3.*classical:<cg-sense\|l1-wavelet>"):
        parse_spec("classical:cg-sense:3")
    with pytest.raises(ParameterError, match=r"model \(classical:<method>\).*'cgsense'.*did you mean"):
        AttackRun(model="classical:cgsense")
    AttackRun(model="classical:l1-wavelet", data=str(tiny_data)).check_inputs()  # no file to look for
    assert isinstance(parse_spec("classical:cg-sense"), ClassicalRecon)


def test_mask_draws_are_the_attackers_own(tiny_data):
    ds = AnnotatedSlices(tiny_data, acceleration=4)
    tb = make_batch([ds[i] for i in range(min(3, len(ds)))])
    rep = mask_draw_batch(tb, ds.mask_func, 4, "k")
    assert len(rep) == 4 * len(tb) and not (rep.mask & ~rep.acquired).any()  # only acquired columns
    assert all(not torch.equal(rep.mask[4 * i + d], tb.mask[i]) for i in range(len(tb)) for d in range(4))
    assert len({tuple(m.tolist()) for m in rep.mask[:4]}) == 4  # four different masks of item 0
    # the same masks for an item whatever it is batched with
    assert torch.equal(mask_draw_batch(tb.select([1]), ds.mask_func, 4, "k").mask, rep.mask[4:8])
    assert not torch.equal(mask_draw_batch(tb, ds.mask_func, 4, "other").mask, rep.mask)
    model = load_model("classical:cg-sense")
    cfg = NoiseConfig(mask_draws=2)
    z = torch.zeros_like(tb.kspace)
    from advmri.attacks.common import box_weights

    wb = box_weights(tb.boxes, tb.crop, tb.target.device)
    with pytest.raises(ValueError, match="mask_func"):
        expected_objective(model, tb, z, wb, None, cfg, None, "k")
    with pytest.raises(ParameterError, match="mask_draws"):
        NoiseConfig(update="reference", mask_draws=2)
    # without knowing the mask the attack still beats random noise of the same norms, on the true mask
    eps = torch.full((len(tb),), 0.05)
    z = adversarial_noise(model, tb, eps, NoiseConfig(steps=3, mask_draws=2), mask_func=ds.mask_func)
    with torch.no_grad():
        adv = box_scores(recon_with_noise(model, tb, z), tb)["box_mse"]
        rnd = box_scores(recon_with_noise(model, tb, random_noise_like(z, tb, torch.Generator().manual_seed(0))),
                         tb)["box_mse"]
    assert (adv > rnd).all()
    assert AttackRun.from_params("noise", mask_draws=2).id != AttackRun().id
    assert "mask_draws" not in AttackRun().as_dict()["noise"]  # earlier runs keep their ids


def test_sweep_of_several_grids(tmp_path, tiny_data):
    spec = dict(name="multi", notebooks={"noise": "notebooks/03_noise_attack.ipynb",
                                         "rotation": "notebooks/04_rotation_attack.ipynb"},
                grid=[{"model": ["classical:cg-sense", "classical:l1-wavelet"], "attack": "noise", "restarts": [0, 1]},
                      {"model": "classical:cg-sense", "attack": "rotation", "max_targets": 2},
                      {"model": "classical:cg-sense", "attack": "noise", "eps": [[0.0, 0.03]]}],
                common=dict(data_dir=str(tiny_data), max_targets=1),
                per_attack={"noise": {"eps": [0.0, 0.01]}})
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(spec))
    _, runs = load_sweep(path, tmp_path)
    assert len(runs) == 4 + 1 + 1 and len({r.id for r in runs}) == 6
    assert {r.id.rsplit("-", 2)[0] for r in runs} == {"noise-cg-sense", "noise-l1-wavelet", "rotation-cg-sense"}
    assert [r.params["eps"] for r in runs if r.params.get("restarts") is None and "noise" in r.id] == [[0.0, 0.03]]
    assert next(r for r in runs if "rotation" in r.id).params["max_targets"] == 2  # the grid's own value wins
    spec["grid"] = [{"model": "classical:cg-sense", "attack": "noise"}, {"model": "classical:cg-sense"}]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SweepError, match="every grid"):
        load_sweep(path, tmp_path)
    spec["grid"] = [{"model": "classical:cg-sense", "attack": "noise", "restart": [1]}]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SweepError, match="restarts"):
        load_sweep(path, tmp_path)
