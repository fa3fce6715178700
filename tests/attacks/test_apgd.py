"""advmri.attacks.apgd: Auto-PGD reaches a known optimum, keeps the budget, and is at least as strong as PGA."""

from __future__ import annotations

import torch
from torch import nn

from advmri.attacks.apgd import apgd, checkpoints
from advmri.attacks.common import TargetBatch
from advmri.attacks.noise import NoiseConfig, adversarial_noise, budget, coil_norms, recon_with_noise
from advmri.core import kspace as K
from advmri.core.boxes import Box

ROWS, COLS, BOX = 16, 12, Box(3, 4, 5, 6)


class RealPartRecon(nn.Module):
    """A linear reconstruction from one coil: the real part of the zero-filled image (a real-linear map of z)."""

    def forward(self, masked_kspace, mask, num_low, crop):
        return K.ifft2c(masked_kspace[:, 0]).real


def _linear_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    k = torch.view_as_complex(torch.randn(1, 1, ROWS, COLS, 2, generator=g))
    mask = torch.rand(1, COLS, generator=g) < 0.5
    mask[0, COLS // 2 - 1 : COLS // 2 + 1] = True
    model = RealPartRecon()
    target = model(k * mask[:, None, None, :], mask, 2, (ROWS, COLS))  # the clean reconstruction
    tb = TargetBatch(k, mask, torch.ones_like(mask), torch.tensor([2]), target, None, [BOX], [])
    return model, tb


def _optimum(model, tb, eps):
    """The largest box MSE in the ball: radius^2 * sigma_max^2 / box pixels, sigma_max of z -> box(recon(M z))."""
    n = ROWS * COLS
    basis = torch.eye(2 * n).view(2 * n, 1, ROWS, COLS, 2)  # every real degree of freedom of z
    z = torch.view_as_complex(basis)
    y = recon_with_noise(
        model,
        TargetBatch(
            z * 0,
            tb.mask.expand(2 * n, -1),
            tb.acquired.expand(2 * n, -1),
            tb.num_low.expand(2 * n),
            tb.target.expand(2 * n, -1, -1),
            None,
            [BOX] * (2 * n),
            [],
        ),
        z,
    )
    a = y[:, BOX.slices[0], BOX.slices[1]].reshape(2 * n, -1).T  # (box pixels, real inputs)
    sigma = torch.linalg.matrix_norm(a.double(), ord=2)
    r = budget(tb.kspace, eps)
    return float(r[0, 0] ** 2 * sigma**2 / (BOX.w * BOX.h))


def test_apgd_reaches_the_closed_form_optimum():
    model, tb = _linear_problem()
    eps = torch.tensor([0.05])
    best = _optimum(model, tb, eps)
    z = adversarial_noise(model, tb, eps, NoiseConfig(eps=(0.05,), steps=100, update="apgd"))
    got = recon_with_noise(model, tb, z) - tb.target
    loss = float(got[0][BOX.slices].pow(2).mean())
    assert loss >= 0.99 * best, (loss, best)
    assert float(coil_norms(z)[0, 0]) <= float(budget(tb.kspace, eps)[0, 0]) * (1 + 1e-5)


def test_plain_pga_from_zero_is_stuck_where_apgd_is_not():
    """At z = 0 the box MSE against the clean reconstruction has zero gradient: the paper's PGA cannot move."""
    model, tb = _linear_problem()
    eps = torch.tensor([0.05])
    z = adversarial_noise(model, tb, eps, NoiseConfig(eps=(0.05,), steps=10, update="ours"))
    assert float(z.abs().max()) == 0.0


def test_apgd_keeps_the_best_point_and_the_budget():
    torch.manual_seed(0)
    radius = torch.tensor([[1.0, 2.0]])
    acq = torch.ones(1, 1, 1, 4)
    w = torch.view_as_complex(torch.randn(1, 2, 3, 4, 2))

    def loss(z):  # a concave loss with its maximum inside the ball: APGD must converge to it
        return -(z - 0.1 * w).abs().pow(2).flatten(1).sum(1)

    z0 = torch.zeros(1, 2, 3, 4, dtype=torch.complex64)
    z, best = apgd(loss, z0, radius, acq, steps=60)
    assert float(best[0]) > 1e-3 * float(loss(z0)[0])  # within a thousandth of the start's gap
    assert torch.allclose(loss(z), best)  # the returned point is the best one, not the last
    assert bool((coil_norms(z) <= radius * (1 + 1e-5)).all())


def test_checkpoints_follow_croce_and_hein():
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [2, 3, 4, 5, 6, 7, 8, 9]


def test_apgd_at_least_as_strong_as_pga_on_a_network(tiny_batch, tiny_model):
    """On an untrained tiny VarNet with 10 steps APGD's box MSE is not below the paper's PGA (median over boxes)."""
    model, tb = tiny_model, tiny_batch
    eps = torch.full((len(tb),), 0.02)
    out = {}
    for update in ("ours", "apgd"):
        z = adversarial_noise(model, tb, eps, NoiseConfig(eps=(0.02,), steps=10, update=update))
        with torch.no_grad():
            r = recon_with_noise(model, tb, z)
        w = torch.zeros_like(r)
        for i, b in enumerate(tb.boxes):
            w[i][b.slices] = 1
        out[update] = ((r - tb.target).pow(2) * w).flatten(1).sum(1) / w.flatten(1).sum(1)
    assert float(out["apgd"].median()) >= 0.98 * float(out["ours"].median())
