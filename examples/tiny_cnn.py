"""An example image-domain model for ``advmri benchmark``: a 3-layer residual CNN (about 5k parameters).

    advmri benchmark --model examples/tiny_cnn.py:make --smoke --out card/

``make()`` is the zero-argument factory advmri calls. The model follows fastMRI's U-Net convention
(``forward(x) -> x'`` on the zero-filled RSS image ``(batch, 1, H, W)``, normalised by advmri's adapter), so
advmri detects the *image* kind from its one-argument ``forward``. The weights ``tiny_cnn.pt`` were trained
for about a minute by ``train_tiny_cnn.py`` on the embedded training set; they are loaded weights-only and
only when the file's sha256 matches ``tiny_cnn.pt.sha256``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).with_name("tiny_cnn.pt")


class TinyCNN(nn.Module):
    """``x + body(x)``: three 3x3 convolutions, ReLU between them."""

    def __init__(self, chans: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, chans, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(chans, chans, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(chans, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, 1, H, W) -> (batch, 1, H, W)
        return x + self.body(x)


def load_weights(model: nn.Module, path: Path = WEIGHTS) -> nn.Module:
    """Load ``path`` weights-only after checking its sha256 against ``path.sha256``."""
    expected = (Path(str(path) + ".sha256").read_text().split() or [""])[0]
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != expected:
        raise ValueError(f"{path}: sha256 {got[:16]}... does not match {path}.sha256 ({expected[:16]}...)")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


def make() -> nn.Module:
    """The trained tiny CNN (untrained, seeded by advmri, when ``tiny_cnn.pt`` is absent)."""
    model = TinyCNN()
    return load_weights(model) if WEIGHTS.is_file() else model
