"""The scanner's thermal noise as the unit of a k-space budget.

Thermal noise in MRI is white, complex Gaussian and independent of the object. With the centred orthonormal FFT
of :mod:`advmri.core.kspace` its standard deviation is the same in k-space and in the coil images. A budget of
the noise attack is ``||z_i|| <= eps ||k_i||`` per coil; the noise already in the acquisition has
``||n_i|| = sigma_i sqrt(N)`` over the ``N`` acquired k-space samples of coil ``i``. So ``eps`` in units of the
noise is ``eps / (||n_i|| / ||k_i||)``, and the same on the sampled columns alone (the mask is applied after
the perturbation, so only those count).

``sigma_i`` is estimated from the outer k-space, where the object's spectrum has decayed below the noise: the
``frac`` outermost rows at both ends of the readout (rows carry 2x oversampling), inside the acquired columns.
The magnitude of complex Gaussian noise is Rayleigh distributed with median ``sigma_c sqrt(2 ln 2)``
(``sigma_c``: the standard deviation of each of the real and imaginary parts), so the median is robust to the
little signal left there. Checked against the generator's known noise in ``tests/core/test_noiselevel.py``.
"""

from __future__ import annotations

import math

import torch

RAYLEIGH_MEDIAN = math.sqrt(2 * math.log(2))  # median of |n| / sigma_c for complex Gaussian n


def _acquired(kspace: torch.Tensor) -> torch.Tensor:
    """The columns ``(cols,)`` bool of ``kspace`` ``(..., rows, cols)`` that are not zero everywhere."""
    return kspace.abs().flatten(0, -2).amax(0) > 0


def coil_noise_std(kspace: torch.Tensor, acquired: torch.Tensor | None = None, frac: float = 0.1) -> torch.Tensor:
    """Per-coil standard deviation of the real (and of the imaginary) part of the thermal noise.

    ``kspace`` ``(..., coils, rows, cols)`` complex, fully sampled; ``acquired`` ``(cols,)`` bool (default: the
    columns that are not all zero) -> ``(..., coils)`` real."""
    rows = kspace.shape[-2]
    n = max(1, int(round(frac * rows)))
    if acquired is None:
        acquired = _acquired(kspace)
    edge = torch.cat([kspace[..., :n, :], kspace[..., rows - n :, :]], dim=-2)[..., acquired]  # (..., coils, 2n, a)
    std: torch.Tensor = edge.abs().flatten(-2).median(dim=-1).values / RAYLEIGH_MEDIAN
    return std


def noise_fraction(
    kspace: torch.Tensor, acquired: torch.Tensor | None = None, mask: torch.Tensor | None = None, frac: float = 0.1
) -> torch.Tensor:
    """``||n_i|| / ||k_i||`` per coil ``(..., coils)``: the thermal noise's norm relative to the coil's k-space
    norm, over the acquired samples, or over the sampled columns ``mask`` ``(cols,)`` bool when given (the
    expected noise norm there against the data norm there). A budget ``eps`` is ``eps / noise_fraction`` noise
    levels."""
    if acquired is None:
        acquired = _acquired(kspace)
    sigma = coil_noise_std(kspace, acquired, frac)  # (..., coils) per component
    keep = acquired if mask is None else acquired & mask
    k = kspace[..., keep]  # (..., coils, rows, kept) complex
    count = k.shape[-2] * k.shape[-1]  # complex samples per coil
    norm = torch.linalg.vector_norm(torch.view_as_real(k), dim=(-3, -2, -1))  # (..., coils)
    out: torch.Tensor = sigma * math.sqrt(2 * count) / norm
    return out
