"""A gradient-free attack in the k-space noise threat model: random search with greedy acceptance.

In the spirit of Square Attack (Andriushchenko et al., ECCV 2020) for an l2 budget: each iteration proposes, for
every item at once, a change concentrated on a random window of the columns the noise may use (a random
Gaussian, scaled per coil to a fraction of the budget that shrinks over the iterations), keeps each coil on its
budget sphere, and accepts the proposal for the items whose loss grew. Only forward passes are used (no
gradients), so a model whose gradients are zero, wrong or missing is attacked as well as any other; the cost is
one forward pass per iteration.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from advmri.attacks.apgd import coil_norms

__all__ = ["random_search"]

Loss = Callable[[torch.Tensor], torch.Tensor]


def _to_sphere(z: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Each coil of ``z`` ``(B, C, R, Cols)`` rescaled to norm ``radius`` ``(B, C)``."""
    return z * (radius / coil_norms(z).clamp_min(1e-30))[..., None, None]


def _window(acq: torch.Tensor, frac: float, gen: torch.Generator) -> torch.Tensor:
    """A random window of ``frac`` of each item's usable columns. ``acq`` ``(B, 1, 1, Cols)`` -> same shape."""
    out = torch.zeros_like(acq)
    for i in range(acq.shape[0]):
        cols = acq[i, 0, 0].nonzero().flatten()
        w = max(1, int(round(frac * len(cols))))
        start = int(torch.randint(0, len(cols) - w + 1, (1,), generator=gen))
        out[i, 0, 0, cols[start : start + w]] = 1
    return out


def random_search(
    loss_fn: Loss,
    radius: torch.Tensor,  # (B, C) per-coil budget
    acq: torch.Tensor,  # (B, 1, 1, Cols) real: 1 on the columns the noise may use
    shape: tuple[int, ...],  # (B, C, R, Cols)
    iters: int,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``loss_fn`` with ``iters`` forward passes; returns the best noise and its loss per item.

    The start is a random point on the budget sphere; the window of a proposal covers 50% of the columns at
    first and shrinks to 5%; its weight against the current point falls from 0.5 to 0.05."""
    gen = torch.Generator().manual_seed(seed)
    dev = radius.device

    def gauss() -> torch.Tensor:
        return torch.view_as_complex(torch.randn(*shape, 2, generator=gen).to(dev))

    with torch.inference_mode():
        z = _to_sphere(gauss() * acq, radius)
        best = loss_fn(z)
        for it in range(iters):
            frac = 0.5 * (0.1 ** (it / max(1, iters - 1)))  # 0.5 -> 0.05
            win = _window(acq, frac, gen)
            delta = _to_sphere(gauss() * win, radius)
            cand = _to_sphere((1 - frac) * z + frac * delta * 2, radius)
            loss = loss_fn(cand)
            up = loss > best
            z = torch.where(up[:, None, None, None], cand, z)
            best = torch.where(up, loss, best)
    return z, best
