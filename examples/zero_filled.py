"""An example k-space model for ``advmri benchmark``: the zero-filled RSS reconstruction (no parameters).

    advmri benchmark --model examples/zero_filled.py:make --smoke --out card/

fastMRI's VarNet convention: ``forward(masked_kspace, mask)`` with ``masked_kspace`` ``(batch, coils, rows,
cols, 2)`` float32 and ``mask`` ``(batch, 1, 1, cols, 1)`` bool, returning a ``(batch, rows, cols)`` magnitude
image, which advmri centre-crops to the target size. Two arguments: advmri detects the *kspace* kind.
A lower bound for any learned model, and a template for your own.
"""

from __future__ import annotations

import fastmri
import torch
from torch import nn


class ZeroFilled(nn.Module):
    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        coil_images = fastmri.ifft2c(masked_kspace)  # (batch, coils, rows, cols, 2), centred orthonormal
        return fastmri.rss(fastmri.complex_abs(coil_images), dim=1)  # (batch, rows, cols)


def make() -> nn.Module:
    return ZeroFilled()
