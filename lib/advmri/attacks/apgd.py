"""Auto-PGD (Croce & Hein, ICML 2020) for the per-coil l2 threat model of the k-space noise attack.

The optimiser is the paper's, made for a budget that is a product of per-coil l2 balls ``||z_c|| <= r_c`` on the
acquired columns (the mask is applied after the noise by the caller's loss):

- a step of ``eta * r_c * g_c / ||g_c||`` per coil (``eta`` a fraction of the budget, one per item, starting at 2),
- the momentum update ``z' = P(z + a (u - z) + (1 - a)(z - z_prev))`` with ``u = P(z + step)`` and ``a = 0.75``,
- checkpoints at the fractions ``p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06)`` of the steps
  (counted in whole steps as AutoAttack does, :func:`checkpoints`), where an item halves its ``eta`` and restarts
  from its best point so far when fewer than ``rho = 0.75`` of the steps since the last checkpoint increased its
  loss, or when neither its ``eta`` nor its best loss changed,
- the best point of every item is returned (not the last).

Everything is batched: every item has its own radius, step size, checkpoint decisions and best point. The loss
is a callable ``(B, C, R, Cols) complex -> (B,)`` to be *maximised*, so this module knows nothing of models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch

__all__ = ["ALPHA", "RHO", "apgd", "checkpoints", "coil_norms", "input_grad", "project", "real_view"]

ALPHA = 0.75  # momentum of the APGD update
RHO = 0.75  # fraction of increasing steps below which the step size is halved
Loss = Callable[[torch.Tensor], torch.Tensor]


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD may halve its step size, as AutoAttack's reference implementation counts them:
    a first interval of ``int(0.22 steps)``, each next one ``int(0.03 steps)`` shorter, down to ``int(0.06 steps)``
    (each at least 1)."""
    first, shrink, least = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    out, k, interval = [], first, first
    while k < steps:
        out.append(k)
        interval = max(interval - shrink, least)
        k += interval
    return out


def real_view(x: torch.Tensor) -> torch.Tensor:
    """A complex tensor's real view ``(..., 2)`` (conjugation resolved); a real tensor as it is."""
    return torch.view_as_real(x.resolve_conj()) if x.is_complex() else x


def coil_norms(x: torch.Tensor) -> torch.Tensor:
    """Per-coil L2 norm of complex ``(B, coils, rows, cols)`` -> ``(B, coils)``.

    Taken over the real view (real and imaginary parts): the same norm, and on CPU about 100x faster than
    torch's complex ``vector_norm`` (11 ms against 0.1 ms for 4 x 8 x 256 x 160, which made the norms a fifth of
    a U-Net attack step)."""
    return cast(torch.Tensor, torch.linalg.vector_norm(real_view(x).flatten(2), dim=2))


def project(z: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Project each coil of ``z`` ``(B, C, R, Cols)`` onto the L2 ball of ``radius`` ``(B, C)``."""
    n = coil_norms(z)
    return z * torch.where(n > radius, radius / n.clamp_min(1e-30), torch.ones_like(n))[..., None, None]


def input_grad(loss: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``d loss.sum() / d z``; zeros when the loss does not depend on ``z`` in autograd (a model that computes its
    output under ``torch.no_grad`` or detaches it): the attack then cannot move, and the card's gradient check
    (:mod:`advmri.experiments.audit`) says so, instead of an autograd error ending the run."""
    if not loss.requires_grad:
        return torch.zeros_like(z)
    (g,) = torch.autograd.grad(loss.sum(), z, allow_unused=True)
    return torch.zeros_like(z) if g is None else g


def _value_and_grad(loss_fn: Loss, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = z.detach().requires_grad_(True)
    loss = loss_fn(z)
    return loss.detach(), input_grad(loss, z)


def _step(g: torch.Tensor, radius: torch.Tensor, acq: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """``eta * r_c * g_c / ||g_c||`` on the acquired columns. ``g`` ``(B, C, R, Cols)``, ``eta`` ``(B,)``."""
    g = g * acq
    return g / coil_norms(g).clamp_min(1e-30)[..., None, None] * (eta[:, None] * radius)[..., None, None]


def apgd(
    loss_fn: Loss,
    z0: torch.Tensor,  # (B, C, R, Cols) complex, the start (inside the budget)
    radius: torch.Tensor,  # (B, C) per-coil budget
    acq: torch.Tensor,  # (B, 1, 1, Cols) real: 1 on the columns the noise may use
    steps: int,
    on_step: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``loss_fn`` over the per-coil balls with ``steps`` gradient evaluations.

    Returns the best point of each item and its loss, ``((B, C, R, Cols) complex, (B,))``."""
    b = z0.shape[0]
    eta = torch.full((b,), 2.0, device=z0.device, dtype=radius.dtype)
    z = project(z0.detach() * acq, radius)
    loss, g = _value_and_grad(loss_fn, z)
    best_z, best_loss, best_g = z.clone(), loss.clone(), g.clone()
    z_prev = z
    marks = set(checkpoints(steps))
    last_mark, succ = 0, torch.zeros(b, device=z0.device)
    eta_mark, best_mark = eta.clone(), best_loss.clone()
    for k in range(1, steps):
        u = project(z + _step(g, radius, acq, eta), radius)
        a = 1.0 if k == 1 else ALPHA  # the first step has no momentum
        z_new = project(z + a * (u - z) + (1 - a) * (z - z_prev), radius)
        loss_new, g_new = _value_and_grad(loss_fn, z_new)
        succ += (loss_new > loss).float()
        better = loss_new > best_loss
        best_z = torch.where(better[:, None, None, None], z_new, best_z)
        best_g = torch.where(better[:, None, None, None], g_new, best_g)
        best_loss = torch.where(better, loss_new, best_loss)
        z_prev, z, loss, g = z, z_new, loss_new, g_new
        if k in marks:
            stalled = succ < RHO * (k - last_mark)
            stuck = (eta == eta_mark) & (best_loss == best_mark)
            halve = stalled | stuck
            eta_mark, best_mark = eta.clone(), best_loss.clone()
            eta = torch.where(halve, eta / 2, eta)
            h = halve[:, None, None, None]
            z, g, loss = torch.where(h, best_z, z), torch.where(h, best_g, g), torch.where(halve, best_loss, loss)
            z_prev = torch.where(h, best_z, z_prev)
            last_mark, succ = k, torch.zeros_like(succ)
        if on_step is not None:
            on_step(k)
    return best_z.detach(), best_loss
