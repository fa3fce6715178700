"""k-space conventions: centred orthonormal FFTs, RSS, crops and column bookkeeping.

All functions take and return *complex* torch tensors (``torch.complex64``) and delegate the
arithmetic to :mod:`fastmri` (which works on real views with a trailing dimension of 2).

Shapes: ``(..., coils, rows, cols)`` complex for multi-coil data, ``(..., rows, cols)`` real for
magnitude images. Rows are the readout direction (oversampled 2x in fastMRI knee), columns are
the phase-encoding direction in which k-space is undersampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import fastmri
import torch
from fastmri.data import transforms as fm_transforms


def to_real(x: torch.Tensor) -> torch.Tensor:
    """Complex ``(...)`` -> real ``(..., 2)`` view (fastMRI's layout)."""
    return torch.view_as_real(x.contiguous() if not x.is_contiguous() else x)


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """Real ``(..., 2)`` -> complex ``(...)``."""
    if x.shape[-1] != 2:
        raise ValueError(f"expected a trailing dimension of 2, got shape {tuple(x.shape)}")
    return torch.view_as_complex(x.contiguous())


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred, orthonormal 2-D FFT over the last two dims. ``(..., rows, cols)`` complex.

    Orthonormal: the energy is kept, and :func:`ifft2c` inverts it.

    >>> x = torch.randn(3, 8, 6, dtype=torch.complex64)
    >>> bool(torch.allclose(x.abs().pow(2).sum(), fft2c(x).abs().pow(2).sum()))
    True
    >>> bool(torch.allclose(ifft2c(fft2c(x)), x, atol=1e-6))
    True
    """
    return to_complex(fastmri.fft2c(to_real(image)))


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred, orthonormal inverse 2-D FFT over the last two dims. ``(..., rows, cols)`` complex."""
    return to_complex(fastmri.ifft2c(to_real(kspace)))


def rss(coil_images: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares over the coil dimension of complex coil images -> real magnitude."""
    return cast(torch.Tensor, fastmri.rss_complex(to_real(coil_images), dim=dim))


def center_crop(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Centre crop the last two dims to ``shape`` (fastMRI's convention for odd sizes)."""
    h, w = int(shape[0]), int(shape[1])
    if x.shape[-2] < h or x.shape[-1] < w:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to {(h, w)}")
    return cast(torch.Tensor, fm_transforms.center_crop(x, (h, w)))


def rss_recon(kspace: torch.Tensor, crop: Sequence[int]) -> torch.Tensor:
    """Fully sampled target: RSS of the coil images, centre-cropped. ``(..., coils, r, c)`` -> ``(..., h, w)``."""
    return center_crop(rss(ifft2c(kspace)), crop)


def column_mask(width: int, left: int, right: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``(width,)`` mask of the acquired phase-encoding columns ``left <= c < right``."""
    if not 0 <= left < right <= width:
        raise ValueError(f"invalid acquired columns [{left}, {right}) for width {width}")
    cols = torch.arange(width, device=device)
    return (cols >= left) & (cols < right)


def apply_column_mask(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Multiply k-space ``(..., rows, cols)`` by a column mask broadcast over rows.

    ``mask`` is ``(cols,)`` or anything that broadcasts as ``(..., 1, cols)``.
    """
    if mask.dim() == 1:
        mask = mask.view(*([1] * (kspace.dim() - 1)), -1)
    return kspace * mask.to(kspace.real.dtype if kspace.is_complex() else kspace.dtype)
