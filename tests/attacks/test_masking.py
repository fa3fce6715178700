"""advmri.attacks.masking: gradient-masking models of our own are flagged, and the adaptive attack recovers at least
80% of the undefended model's box-PSNR drop (a quantiser, a randomised input, a detached output, a sign step)."""

from __future__ import annotations

import pytest
import torch

from advmri.attacks.masking import Diagnosis, adaptive_noise, diagnose, straight_through
from advmri.attacks.noise import NoiseConfig, adversarial_noise, recon_with_noise
from advmri.models.usermodel import load_user_model
from advmri.util.paths import project_path

EPS = 0.02
DEFENCES = """
import sys, torch
from torch import nn
sys.path.insert(0, {examples!r})
from tiny_cnn import make as tiny

class Defended(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.net, self.how = tiny(), how
    def forward(self, x):
        if self.how == "quantise":  # 32 grey levels over the clamped range [-6, 6]: zero gradient almost everywhere
            x = torch.round(x * (32 / 12)) * (12 / 32)
        elif self.how == "random":
            x = x + 0.05 * torch.randn_like(x)
        elif self.how == "sign":
            x = x + 0.01 * torch.sign(x)
            x = x.detach() + 0 * x.detach()  # the gradient is cut here
            return self.net(x)
        elif self.how == "detach":
            with torch.no_grad():
                return self.net(x)
        return self.net(x)

def plain(): return Defended("none")
def quantise(): return Defended("quantise")
def random(): return Defended("random")
def detach(): return Defended("detach")
def sign(): return Defended("sign")
"""


@pytest.fixture(scope="module")
def defences(tmp_path_factory):
    p = tmp_path_factory.mktemp("defences") / "defences.py"
    p.write_text(DEFENCES.format(examples=str(project_path("examples"))))
    return p


def _box_psnr(model, tb, z):
    with torch.no_grad():
        r = torch.stack([recon_with_noise(model, tb, z) for _ in range(8)]).mean(0)
    dr = tb.target.flatten(1).amax(1)
    w = torch.zeros_like(r)
    for i, b in enumerate(tb.boxes):
        w[i][b.slices] = 1
    mse = ((r - tb.target).pow(2) * w).flatten(1).sum(1) / w.flatten(1).sum(1)
    return 10 * torch.log10(dr**2 / mse)


@pytest.fixture(scope="module")
def undefended_drop(defences, tiny_batch):
    model = load_user_model(f"{defences}:plain").freeze()
    eps = torch.full((len(tiny_batch),), EPS)
    z = adversarial_noise(model, tiny_batch, eps, NoiseConfig(steps=10))
    return float((_box_psnr(model, tiny_batch, 0 * z) - _box_psnr(model, tiny_batch, z)).mean())


@pytest.mark.parametrize(
    "how,flag",
    [("quantise", "gradient"), ("random", "randomised"), ("detach", "gradient"), ("sign", "gradient")],
)
def test_masking_model_is_flagged_and_adaptive_attack_recovers(defences, tiny_batch, undefended_drop, how, flag):
    model = load_user_model(f"{defences}:{how}").freeze()
    eps = torch.full((len(tiny_batch),), EPS)
    cfg = NoiseConfig(steps=10)
    diag = diagnose(model, tiny_batch, eps, cfg)
    res = adaptive_noise(model, tiny_batch, eps, cfg, diag)
    flagged = diag.randomised if flag == "randomised" else (diag.gradient != "ok" or res.beaten)
    assert flagged, (diag, res.winner)
    drop = float((_box_psnr(model, tiny_batch, 0 * res.z) - _box_psnr(model, tiny_batch, res.z)).mean())
    assert undefended_drop > 1.0  # the attack matters on the undefended model
    assert drop >= 0.8 * undefended_drop, (how, drop, undefended_drop, res.attacks, res.winner)


def test_undefended_model_is_not_flagged(defences, tiny_batch):
    model = load_user_model(f"{defences}:plain").freeze()
    eps = torch.full((len(tiny_batch),), EPS)
    diag = diagnose(model, tiny_batch, eps, NoiseConfig())
    assert diag == Diagnosis(False, "ok", "ok") and not diag.masked
    res = adaptive_noise(model, tiny_batch, eps, NoiseConfig(), diag)
    assert not res.beaten and set(res.winner) == {"white-box"}


def test_straight_through_keeps_the_forward_and_passes_the_gradient():
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    with straight_through():
        y = torch.round(x * 1.3) + x.sign() + x.floor()
    assert torch.equal(y.detach(), torch.round(x.detach() * 1.3) + x.detach().sign() + x.detach().floor())
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(g, torch.full_like(g, 3.3))
