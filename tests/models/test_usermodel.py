"""advmri.models.usermodel: a user's model kind is detected from its forward() or given."""

from __future__ import annotations

import torch


def test_kind_is_detected_or_given(model_file):
    from advmri.models.usermodel import load_user_model

    assert load_user_model(f"{model_file}:kspace").model_kind == "kspace"
    assert load_user_model(f"{model_file}:image").model_kind == "image"
    assert load_user_model(f"{model_file}:three_inputs:kspace").model_kind == "kspace"  # given, not detected
    a, b = load_user_model(f"{model_file}:image"), load_user_model(f"{model_file}:image")
    assert torch.equal(a.net.conv.weight, b.net.conv.weight)  # the factory runs seeded
