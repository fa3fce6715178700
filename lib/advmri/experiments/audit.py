"""The checks a robustness card carries (Carlini et al.'s evaluation guidelines and AutoAttack's ``checks.py``, made
for reconstruction), each with a verdict ``pass``, ``warn`` or ``fail``:

- ``randomised output``: two forward passes on one input differ (the adaptive attack then uses EOT);
- ``input gradient``: missing, NaN, zero for a box, or inconsistent with the loss (a finite-difference step);
- ``white-box vs transfer``: an attack that needs no gradient of the model (transfer from the zero-filled
  reconstruction) beats the white-box attack on a box;
- ``loss grows with eps``: the adversarial box MSE (mean over boxes) does not decrease with the budget;
- ``control vs attack``: the energy-matched random control is more damaging than the attack on a box;
- ``large-budget sanity``: at a budget as large as the data (``SANITY_EPS``) the attack cannot reach the box error
  of a trivial reconstruction (the box's mean value everywhere) on a box.

:func:`audit` also runs the adaptive attack (:func:`advmri.attacks.masking.adaptive_noise`) at the card's budget on
the audited boxes and reports its box PSNR beside the naive white-box attack's, so a card shows how much a plain
gradient attack under- or over-states the damage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from advmri.attacks.common import TargetBatch, box_scores, make_batch
from advmri.attacks.masking import adaptive_noise, diagnose
from advmri.attacks.noise import NoiseConfig, adversarial_noise, recon_with_noise
from advmri.data.dataset import AnnotatedSlices
from advmri.experiments.run import load_model, select_targets

__all__ = ["AUDIT_BOXES", "SANITY_EPS", "Audit", "Check", "audit", "table_checks"]

AUDIT_BOXES = 4  # boxes the gradient checks and the adaptive attack look at (one forward pass of the card's chunk)
SANITY_EPS = 1.0  # the large budget: noise per coil as strong as the coil's k-space


@dataclass
class Check:
    """One check of a card: ``verdict`` is ``pass``, ``warn`` or ``fail``; ``detail`` says what was measured."""

    name: str
    verdict: str
    detail: str


@dataclass
class Audit:
    """The checks of one card and the naive vs adaptive box PSNR (dB, mean over the audited boxes)."""

    checks: list[Check] = field(default_factory=list)
    boxes: int = 0
    naive_box_psnr: float = float("nan")
    adaptive_box_psnr: float = float("nan")
    attacks: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.verdict == "fail"]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = self.failed
        return d


def _psnr(model: Any, tb: TargetBatch, z: torch.Tensor, samples: int) -> torch.Tensor:
    with torch.no_grad():
        r = torch.stack([recon_with_noise(model, tb, z) for _ in range(samples)]).mean(0)
    return box_scores(r, tb)["box_psnr"]


def _gradient_checks(model: Any, tb: TargetBatch, eps: float, cfg: NoiseConfig, out: Audit) -> None:
    e = torch.full((len(tb),), eps)
    diag = diagnose(model, tb, e, cfg)
    out.checks.append(
        Check(
            "randomised output",
            "warn" if diag.randomised else "pass",
            "two forward passes differ: attacked with EOT" if diag.randomised else "deterministic",
        )
    )
    res = adaptive_noise(model, tb, e, cfg, diag)
    g = diag.gradient
    out.checks.append(Check("input gradient", "pass" if g == "ok" else "fail", f"{g}; BPDA: {diag.bpda_gradient}"))
    out.checks.append(
        Check(
            "white-box vs transfer",
            "fail" if res.beaten else "pass",
            "a transfer attack from the zero-filled reconstruction beat the white-box attack on a box"
            if res.beaten
            else "the white-box attack is the strongest on every box",
        )
    )
    samples = 8 if diag.randomised else 1
    # the plain attack on the model itself: the adaptive run's white-box candidate when it ran one without EOT
    naive = res.candidates.get("white-box")
    naive = adversarial_noise(model, tb, e, cfg) if naive is None else naive
    out.naive_box_psnr = float(_psnr(model, tb, naive, samples).mean())
    out.adaptive_box_psnr = float(_psnr(model, tb, res.z, samples).mean())
    out.attacks = sorted(set(res.winner))
    large = torch.full((len(tb),), SANITY_EPS)
    # without a trustworthy gradient the large-budget attack is the adaptive one
    big = adversarial_noise(model, tb, large, cfg) if g == "ok" else adaptive_noise(model, tb, large, cfg, diag).z
    with torch.no_grad():
        mse = box_scores(recon_with_noise(model, tb, big), tb)["box_mse"]
    trivial = box_scores(_box_mean_images(tb), tb)["box_mse"]
    short = int((mse < trivial).sum())
    out.checks.append(
        Check(
            "large-budget sanity",
            "fail" if short else "pass",
            f"at eps {SANITY_EPS:g} the attack stays below a trivial reconstruction's box error on {short} of "
            f"{len(tb)} boxes",
        )
    )


def _box_mean_images(tb: TargetBatch) -> torch.Tensor:
    """The trivial reconstruction: each target's box mean everywhere. ``(B, H, W)``."""
    out = torch.empty_like(tb.target)
    for i, b in enumerate(tb.boxes):
        out[i] = tb.target[i][b.slices].mean()
    return out


KEY = ["file", "slice", "bx", "by", "bw", "bh"]


def table_checks(noise: pd.DataFrame) -> list[Check]:
    """The checks read off a card's noise table (rows ``kind`` clean / adversarial / random with ``param`` eps)."""
    adv = noise[noise.kind == "adversarial"]
    by_eps = adv.groupby("param")["box_mse"].mean().sort_index()
    drops = int((np.diff(by_eps.to_numpy()) < -1e-12).sum())
    checks = [
        Check(
            "loss grows with eps",
            "fail" if drops else "pass",
            f"mean adversarial box MSE over eps {list(by_eps.index)}: "
            + ("decreases " + f"{drops} time(s)" if drops else "non-decreasing"),
        )
    ]
    rnd = noise[noise.kind == "random"].groupby([*KEY, "param"])["box_mse"].max()
    a = adv.set_index([*KEY, "param"])["box_mse"]
    both = pd.concat([a.rename("adv"), rnd.rename("rnd")], axis=1).dropna()
    worse = int((both.rnd > both.adv).sum())
    checks.append(
        Check(
            "control vs attack",
            "fail" if worse else "pass",
            f"the random control beats the attack on {worse} of {len(both)} (box, eps)",
        )
    )
    return checks


def audit(
    model_spec: str,
    data: str,
    acceleration: int,
    eps: float,
    cfg: NoiseConfig,
    noise_table: pd.DataFrame | None,
    boxes: int = AUDIT_BOXES,
    annotations: str | None = None,
) -> Audit:
    """The card's checks on ``boxes`` of the data's boxes (evenly spaced) at ``acceleration`` and budget ``eps``."""
    ds = AnnotatedSlices(data, annotations, acceleration=acceleration)
    tb = make_batch([ds[i] for i in select_targets(ds, boxes)])
    model = load_model(model_spec)
    out = Audit(boxes=len(tb))
    _gradient_checks(model, tb, eps, cfg, out)
    if noise_table is not None:
        out.checks += table_checks(noise_table)
    return out
