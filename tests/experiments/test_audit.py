"""advmri.experiments.audit: the table checks fail when they should, and a model without input gradients fails the
gradient check while the adaptive evaluation still finds damage."""

from __future__ import annotations

import pandas as pd

from advmri.attacks.noise import NoiseConfig
from advmri.experiments.audit import audit, table_checks
from tests.conftest import untrained

NO_GRAD = """
import torch
from torch import nn
from advmri.models.networks import zero_filled

class NoGrad(nn.Module):  # k-space kind: the whole reconstruction under no_grad (gradient missing)
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
    def forward(self, masked_kspace, mask):
        with torch.no_grad():
            k = torch.view_as_complex(masked_kspace.contiguous())
            return zero_filled(k, (k.shape[-1], k.shape[-1])) * self.scale

def make():
    return NoGrad()
"""


def _table(adv, rnd):
    rows = []
    for eps, (a, r) in enumerate(zip(adv, rnd, strict=True)):
        key = dict(file="f", slice=0, bx=1, by=2, bw=3, bh=4, param=float(eps))
        rows += [dict(key, kind="adversarial", box_mse=a), dict(key, kind="random", box_mse=r)]
    return pd.DataFrame(rows)


def test_table_checks_pass_and_fail():
    ok = {c.name: c.verdict for c in table_checks(_table([0.1, 0.2, 0.3], [0.1, 0.11, 0.12]))}
    assert ok == {"loss grows with eps": "pass", "control vs attack": "pass"}
    bad = {c.name: c.verdict for c in table_checks(_table([0.1, 0.3, 0.2], [0.1, 0.4, 0.12]))}
    assert bad == {"loss grows with eps": "fail", "control vs attack": "fail"}


def test_audit_of_a_network_passes(tiny_data, tmp_path):
    spec = str(untrained(tmp_path / "u.pt", "unet", seed=0))
    a = audit(spec, str(tiny_data), 8, 0.02, NoiseConfig(steps=5), None, boxes=2)
    assert a.failed == [] and a.boxes == 2 and a.attacks == ["white-box"]
    assert abs(a.naive_box_psnr - a.adaptive_box_psnr) < 1e-6


def test_audit_flags_a_model_without_input_gradients(tiny_data, tmp_path):
    model = tmp_path / "nograd.py"
    model.write_text(NO_GRAD)
    a = audit(f"{model}:make:kspace", str(tiny_data), 8, 0.05, NoiseConfig(steps=5), None, boxes=2)
    assert "input gradient" in a.failed
    grad = next(c for c in a.checks if c.name == "input gradient")
    assert grad.detail.startswith("missing")
    assert a.adaptive_box_psnr < a.naive_box_psnr - 1.0  # the adaptive evaluation finds what PGA cannot
