from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Three tiny synthetic volumes (fastMRI layout + fastMRI+ CSV)."""
    from advmri.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("tiny")
    generate_dataset("tiny", 3, seed=5, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    from advmri.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("small")
    generate_dataset("small", 2, seed=11, out=out, progress=False)
    return out
