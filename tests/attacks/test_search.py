"""advmri.attacks.search: the gradient-free random search keeps the budget sphere and the usable columns, and
reaches a linear loss's optimum within a factor of two."""

from __future__ import annotations

import torch

from advmri.attacks.search import random_search


def test_random_search_improves_and_keeps_the_budget():
    torch.manual_seed(0)
    radius = torch.tensor([[1.0, 0.5], [2.0, 1.0]])
    acq = torch.zeros(2, 1, 1, 8)
    acq[..., 2:7] = 1
    w = torch.view_as_complex(torch.randn(2, 2, 4, 8, 2)) * acq

    def loss(z):
        return (z * w.conj()).real.flatten(1).sum(1)  # linear: the optimum is w/|w| per coil on the sphere

    z, best = random_search(loss, radius, acq, (2, 2, 4, 8), iters=300)
    norms = torch.linalg.vector_norm(torch.view_as_real(z).flatten(2), dim=2)
    assert torch.allclose(norms, radius, rtol=1e-4) and float((z * (1 - acq)).abs().max()) == 0
    optimum = (radius * torch.linalg.vector_norm(torch.view_as_real(w).flatten(2), dim=2)).sum(1)
    assert bool((best >= 0.5 * optimum).all())
