"""advmri.attacks.common: the attack objective's signs for the clean and the twin targets."""

import pytest
import torch

from advmri.attacks.common import make_batch, objective
from advmri.data.dataset import AnnotatedSlices


def test_objective_signs_and_missing_twin(tiny_data):
    ds = AnnotatedSlices(tiny_data)
    tb = make_batch([ds[0]])
    wb = torch.ones(1, *tb.crop)
    assert objective(tb.healthy, tb, wb, None, "mse", "healthy") == 0  # at the twin: the best it can do
    assert objective(tb.target, tb, wb, None, "mse", "clean") == 0
    assert objective(tb.target, tb, wb, None, "mse", "healthy") < 0
    tb.healthy = None
    with pytest.raises(ValueError, match="lesion-free twin"):
        objective(tb.target, tb, wb, None, "mse", "healthy")
