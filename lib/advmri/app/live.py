"""A live noise attack on one stored target at any eps (the explorer's "compute this one").

It re-opens the run's model and data from the run's own parameters (stored in the
reconstruction store), finds the target by file / slice / box, and runs the same PGA as the
run (same steps, step size, loss, seed) at the requested eps, plus the paired random-noise
draw of exactly the adversarial per-coil norms. Results are cropped to the stored window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from advmri.attacks.common import make_batch
from advmri.attacks.noise import NoiseConfig, adversarial_noise, random_noise_items, recon_with_noise
from advmri.data.dataset import AnnotatedSlices, SliceSample
from advmri.experiments.recons import RunRecons, TargetRecons
from advmri.util.errors import check_range


class LiveAttack:
    """Model and data of one run, loaded once; :meth:`compute` attacks one target."""

    def __init__(self, rr: RunRecons, device: str = "cpu") -> None:
        from advmri.experiments.run import load_model  # run imports the attack stack; keep this module light to import

        r = rr.run
        self.rr, self.device = rr, device
        self.model = load_model(r["model"], device).set_precision(r.get("precision", "fp32"))
        self.ds = AnnotatedSlices(
            r["data"],
            r.get("annotations"),
            acceleration=int(r["acceleration"]),
            mask_type=r.get("mask_type", "random"),
            labels=r.get("labels"),
        )
        known = {f.name for f in fields(NoiseConfig)}
        params: dict[str, Any] = {
            k: tuple(v) if k == "eps" else v for k, v in (r.get("noise") or {}).items() if k in known
        }
        self.cfg = NoiseConfig(**params)

    def _sample(self, t: TargetRecons) -> SliceSample:
        cands = [t.index] + list(range(len(self.ds.items)))
        for i in cands:
            f, s, b, _ = self.ds.items[i] if i < len(self.ds.items) else (None, None, None, None)
            if f == t.file and s == t.slice and b is not None and b.as_tuple() == t.box.as_tuple():
                return self.ds[i]
        raise LookupError(f"{t.name}: not found in {self.rr.run['data']} (the data changed since the run?)")

    def compute(
        self, t: TargetRecons, eps: float, on_step: Callable[[int, int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """``(adversarial window, random window, seconds)`` for target ``t`` at ``eps``."""
        check_range("eps", float(eps), lo=0.0)
        t0 = time.perf_counter()
        tb = make_batch([self._sample(t)]).to(self.device)
        e = torch.tensor([float(eps)], device=self.device)
        z = adversarial_noise(self.model, tb, e, self.cfg, on_step)
        with torch.inference_mode():
            adv = recon_with_noise(self.model, tb, z)[0].float().cpu().numpy()
            z_rnd = random_noise_items(z, tb, e.cpu(), self.cfg.seed, 0)
            rnd = recon_with_noise(self.model, tb, z_rnd)[0].float().cpu().numpy()
        y0, y1, x0, x1 = t.window
        return adv[y0:y1, x0:x1], rnd[y0:y1, x0:x1], time.perf_counter() - t0
