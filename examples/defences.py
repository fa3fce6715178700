"""Two reference defences around advmri's committed U-Net, for ``advmri benchmark`` and its checks for gradient masking.

    advmri benchmark --model examples/defences.py:smoothed --out card-smoothed/
    advmri benchmark --model examples/defences.py:quantised --out card-quantised/

* ``smoothed``: randomised smoothing at inference, in the spirit of SMUG (Li et al. 2023): the reconstruction is
  the mean over ``DRAWS`` reconstructions of the sampled k-space with complex Gaussian noise of ``SIGMA`` times each
  coil's RMS added on the sampled columns. Its output is random, so the card's checks attack it with EOT.
* ``quantised``: a non-differentiable pre-processing: the U-Net's normalised input image is rounded to 32 grey
  levels over its clamped range [-6, 6] (the gradient of ``round`` is zero almost everywhere). The card's checks
  attack it with BPDA (identity backward of the rounding) and the gradient-free search.

Both are *k-space* models (``forward(masked_kspace, mask)``, fastMRI's VarNet convention) that load
``models/unet-small.pt`` weights-only with its sha256 checked (advmri's own checkpoint loader).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from advmri.core import kspace as K
from advmri.models.networks import load_checkpoint, unet_input, zero_filled

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "unet-small.pt"
DRAWS = 4  # reconstructions averaged per call (randomised smoothing)
SIGMA = 0.05  # noise per draw, relative to each coil's RMS on the sampled columns
LEVELS = 32  # grey levels of the quantised input over [-6, 6]


class _UnetOnKspace(nn.Module):
    """advmri's U-Net on k-space: zero-filled RSS, fastMRI's normalisation, an input transform, the U-Net."""

    def __init__(self) -> None:
        super().__init__()
        self.recon = load_checkpoint(CHECKPOINT)[0].freeze()

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def image(self, kspace: torch.Tensor) -> torch.Tensor:
        """``(batch, coils, rows, cols)`` complex masked k-space -> ``(batch, rows/2, cols)`` image."""
        crop = (kspace.shape[-1], kspace.shape[-1])
        x, mean, std = unet_input(zero_filled(kspace, crop))
        return self.recon.net(self.transform(x).unsqueeze(1)).squeeze(1) * std + mean

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.image(K.to_complex(masked_kspace))


class Smoothed(_UnetOnKspace):
    """Randomised smoothing: the mean of ``DRAWS`` reconstructions of noisy copies of the sampled k-space."""

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k = K.to_complex(masked_kspace)  # (batch, coils, rows, cols) complex
        m = mask[..., 0].to(k.real.dtype)  # (batch, 1, 1, cols)
        rms = (k.abs().square().sum((-2, -1), keepdim=True) / (m.sum(-1, keepdim=True) * k.shape[-2])).sqrt()
        draws = [self.image(k + SIGMA * rms * m * torch.randn_like(k)) for _ in range(DRAWS)]
        return torch.stack(draws).mean(0)


class Quantised(_UnetOnKspace):
    """The normalised input rounded to ``LEVELS`` grey levels over [-6, 6] before the U-Net."""

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        step = 12 / LEVELS
        return torch.round(x / step) * step


def smoothed() -> nn.Module:
    return Smoothed()


def quantised() -> nn.Module:
    return Quantised()


def plain() -> nn.Module:
    """The undefended U-Net through the same code (the reference of the defences' cards)."""
    return _UnetOnKspace()
