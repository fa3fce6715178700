"""examples/: the reference defences around the committed U-Net are flagged by the card's checks (diagnose only: the
randomised smoothing as random, the quantised input as a gradient that does not predict the loss) and the plain
U-Net through the same code is not."""

from __future__ import annotations

import pytest
import torch

from advmri.attacks.common import make_batch
from advmri.attacks.masking import diagnose
from advmri.attacks.noise import NoiseConfig
from advmri.data.dataset import AnnotatedSlices
from advmri.models.usermodel import load_user_model
from advmri.util.paths import project_path

DEFENCES = project_path("examples/defences.py")


@pytest.fixture(scope="module")
def batch(small_data):
    ds = AnnotatedSlices(small_data)
    return make_batch([ds[i] for i in range(2)])


@pytest.mark.parametrize("factory,flag", [("plain", None), ("smoothed", "randomised"), ("quantised", "gradient")])
def test_reference_defences_are_flagged(batch, factory, flag):
    if not project_path("models/unet-small.pt").is_file():
        pytest.skip("no committed U-Net checkpoint")
    model = load_user_model(f"{DEFENCES}:{factory}").freeze()
    diag = diagnose(model, batch, torch.full((len(batch),), 0.01), NoiseConfig())
    if flag is None:
        assert not diag.masked
    elif flag == "randomised":
        assert diag.randomised
    else:
        assert diag.gradient != "ok", diag
