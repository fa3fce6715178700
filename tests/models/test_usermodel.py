"""advmri.models.usermodel: a user's model kind is detected from its forward() or given."""

from __future__ import annotations

import pytest
import torch


def test_kind_is_detected_or_given(model_file):
    from advmri.models.usermodel import load_user_model

    assert load_user_model(f"{model_file}:kspace").model_kind == "kspace"
    assert load_user_model(f"{model_file}:image").model_kind == "image"
    assert load_user_model(f"{model_file}:three_inputs:kspace").model_kind == "kspace"  # given, not detected
    a, b = load_user_model(f"{model_file}:image"), load_user_model(f"{model_file}:image")
    assert torch.equal(a.net.conv.weight, b.net.conv.weight)  # the factory runs seeded


def test_user_model_errors_are_one_line_naming_file_and_factory(tmp_path, tiny_batch):
    from conftest import BROKEN, SIBLING

    from advmri.attacks.noise import recon_with_noise
    from advmri.experiments.run import load_model
    from advmri.models.usermodel import ModelError

    (tmp_path / "mynet.py").write_text(SIBLING)
    f = tmp_path / "broken.py"
    f.write_text(BROKEN)
    tb = tiny_batch
    zero = torch.zeros_like(tb.kspace)
    out = recon_with_noise(load_model(f"{f}:sibling"), tb, zero)  # the sibling import works
    assert out.shape == tb.target.shape
    with pytest.raises(ModelError) as e:
        recon_with_noise(load_model(f"{f}:raises"), tb, zero)
    msg = str(e.value)
    assert msg.startswith(f"{f}:raises: forward((3, 1, ") and "raised RuntimeError: Given groups=1" in msg
    assert "\n" not in msg
    with pytest.raises(ModelError, match=r"complex_out: output shape \(3, 1, \d+, \d+, 2\) looks like a complex"):
        recon_with_noise(load_model(f"{f}:complex_out"), tb, zero)
    with pytest.raises(ModelError, match=r"is a Python file: name the function .* as .*broken\.py:sibling"):
        load_model(str(f))
