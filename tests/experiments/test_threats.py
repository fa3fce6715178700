"""advmri.experiments.threats: the threat-model objects perturb a batch within their budgets."""

from __future__ import annotations

import torch


def test_threat_objects_perturb_a_batch_within_their_budgets(model_file, tiny_data):
    from advmri.attacks.common import make_batch
    from advmri.attacks.noise import coil_norms
    from advmri.data.dataset import AnnotatedSlices
    from advmri.experiments.run import AttackRun, load_model
    from advmri.experiments.threats import KspaceNoise, RandomNoise, Rotation

    model = load_model(f"{model_file}:image")
    ds = AnnotatedSlices(str(tiny_data), acceleration=8)
    tb = make_batch([ds[0], ds[1]])
    noise = KspaceNoise(eps=(0.0, 0.01), steps=2, random_draws=1)
    z = noise.perturb(model, tb, 0.01)  # (batch, coils, rows, cols) complex
    assert z.shape == tb.kspace.shape
    assert bool((coil_norms(z) <= 0.01 * coil_norms(tb.kspace) * (1 + 1e-5)).all())
    assert bool((z * ~tb.acquired[:, None, None, :]).abs().max() == 0)  # only on the acquired columns
    zr = RandomNoise(draws=1).perturb(tb, z, 0.01)
    masked = lambda x: coil_norms(x * tb.mask[:, None, None, :])  # noqa: E731
    assert torch.allclose(masked(zr), masked(z), rtol=1e-4)  # the control delivers the attack's energy
    assert noise.reconstruct(model, tb, z).shape == tb.target.shape
    angles, rec = Rotation(bounds=(0.0, 2.0), max_angle=2.0, angle_step=1.0).perturb(model, tb, 2.0)
    assert rec.shape == tb.target.shape and bool((angles.abs() <= 2.0).all())
    run = noise.run(f"{model_file}:image", str(tiny_data), 8, max_targets=2)
    same = AttackRun.from_params(
        "noise",
        model=f"{model_file}:image",
        data_dir=str(tiny_data),
        acceleration=8,
        max_targets=2,
        eps=[0.0, 0.01],
        steps=2,
        random_draws=1,
    )
    assert run.id == same.id
    d = noise.describe()
    assert d["threat"] == "noise" and d["eps"] == (0.0, 0.01) and "mask applied after the noise" in d["budget"]
    assert Rotation().describe()["grid"] == "-4.9..4.9 deg in 0.1 deg steps"
