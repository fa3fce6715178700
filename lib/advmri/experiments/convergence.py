"""How close is an attack to the best known? A convergence study of the k-space noise attack's optimisers.

    python -m advmri.experiments.convergence --out results/convergence            # resumable, one file a cell
    python -m advmri.experiments.convergence --out results/convergence --summary   # the table from the files

For each model, acceleration and optimiser setting (:data:`SETTINGS`) the attack runs on the same ``boxes``
boxes (evenly spaced over the test set, budget ``eps``), and every evaluation of the objective (box MSE against
the clean target) is recorded through :class:`Recorder`, so each setting gives a curve of the best loss found so
far against the number of gradient evaluations. The best known loss of a box is the largest that any setting
found; a setting's *fraction* of a box is its final best over that. Cells are written one CSV each (``<model
label>-<acc>x-<setting>.csv``, columns ``box, evaluation, best``) and skipped when present, so a cut run resumes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from advmri.attacks.common import TargetBatch, make_batch, objective
from advmri.attacks.noise import NoiseConfig, _loss_weights, adversarial_noise
from advmri.data.dataset import AnnotatedSlices
from advmri.experiments.run import load_model, select_targets
from advmri.util.atomic import atomic_path
from advmri.util.errors import cli
from advmri.util.paths import project_path

__all__ = ["MODELS", "SETTINGS", "Recorder", "Setting", "cell", "curves", "fractions", "markdown", "summary"]


@dataclass(frozen=True)
class Setting:
    """One optimiser setting of the study: a name and the :class:`NoiseConfig` fields it sets."""

    name: str
    update: str
    steps: int
    restarts: int = 0

    def config(self, eps: float) -> NoiseConfig:
        return NoiseConfig(eps=(eps,), update=self.update, steps=self.steps, restarts=self.restarts)


SETTINGS = (
    Setting("pga-10", "ours", 10),  # the paper's (and advmri's default until this study)
    Setting("pga-50", "ours", 50),
    Setting("apgd-10", "apgd", 10),
    Setting("apgd-20", "apgd", 20),
    Setting("apgd-50", "apgd", 50),
    Setting("apgd-100x3", "apgd", 100, restarts=2),  # the strongest: the best-known candidate
)
MODELS = {
    "varnet": "models/varnet-small.pt",
    "unet": "models/unet-small.pt",
    "cg-sense": "classical:cg-sense",
    "l1-wavelet": "classical:l1-wavelet",
}


class Recorder(nn.Module):
    """A model that records the objective ``(B,)`` of every reconstruction it returns (detached)."""

    def __init__(self, model: nn.Module, tb: TargetBatch, cfg: NoiseConfig) -> None:
        super().__init__()
        self.model, self.tb, self.cfg = model, tb, cfg
        self.wb, self.ws = _loss_weights(tb, cfg)
        self.losses: list[torch.Tensor] = []

    def forward(self, *args: Any) -> torch.Tensor:
        out = self.model(*args)
        if out.shape[0] == len(self.tb):  # the attack's own passes (not a mask-draw batch)
            with torch.no_grad():
                self.losses.append(objective(out, self.tb, self.wb, self.ws, self.cfg.loss, self.cfg.target))
        return out


def cell(model_spec: str, data: str, acc: int, setting: Setting, boxes: int, eps: float, chunk: int) -> pd.DataFrame:
    """The best-so-far curve of every box for one (model, acceleration, setting): ``box, evaluation, best``."""
    ds = AnnotatedSlices(data, acceleration=acc)
    idx = select_targets(ds, boxes)
    model = load_model(model_spec)
    cfg = setting.config(eps)
    rows = []
    for lo in range(0, len(idx), chunk):
        part = idx[lo : lo + chunk]
        tb = make_batch([ds[i] for i in part])
        rec = Recorder(model, tb, cfg)
        adversarial_noise(rec, tb, torch.full((len(tb),), eps), cfg)  # type: ignore[arg-type]
        best = torch.stack(rec.losses).cummax(0).values.numpy()  # (evaluations, B)
        for j, i in enumerate(part):
            rows += [dict(box=int(i), evaluation=e + 1, best=float(best[e, j])) for e in range(best.shape[0])]
    return pd.DataFrame(rows)


def _frames(out: Path, model: str, acc: int, settings: Sequence[Setting]) -> dict[str, pd.DataFrame]:
    """The cells of one (model, acceleration) present in ``out``, by setting name."""
    paths = {s.name: out / f"{model}-{acc}x-{s.name}.csv" for s in settings}
    return {name: pd.read_csv(p) for name, p in paths.items() if p.is_file()}


def fractions(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per box and setting: the final best loss over the best known (the largest over all settings)."""
    final = pd.DataFrame({name: df.groupby("box")["best"].max() for name, df in frames.items()})
    return final.div(final.max(axis=1), axis=0)


def summary(out: Path, settings: Sequence[Setting] = SETTINGS) -> pd.DataFrame:
    """Median fraction of the best known per (model, acceleration) and setting, from the cells in ``out``."""
    rows = []
    for model in MODELS:
        for acc in (4, 8):
            frames = _frames(out, model, acc, settings)
            if not frames:
                continue
            fr = fractions(frames)
            for name in frames:
                evals = int(frames[name]["evaluation"].max())
                rows.append(
                    dict(
                        model=model,
                        acceleration=acc,
                        setting=name,
                        boxes=len(fr),
                        evaluations=evals,
                        median_fraction=float(fr[name].median()),
                        min_fraction=float(fr[name].min()),
                    )
                )
    return pd.DataFrame(rows)


def curves(out: Path, model: str, acc: int, settings: Sequence[Setting] = SETTINGS) -> pd.DataFrame:
    """Median over boxes of (best so far / best known) at each evaluation, per setting: ``setting, evaluation,
    median_fraction`` (a setting's curve stays at its final value after its last evaluation)."""
    frames = _frames(out, model, acc, settings)
    if not frames:
        return pd.DataFrame(columns=["setting", "evaluation", "median_fraction"])
    known = pd.DataFrame({k: df.groupby("box")["best"].max() for k, df in frames.items()}).max(axis=1)
    rows = []
    for name, df in frames.items():
        wide = df.pivot(index="evaluation", columns="box", values="best").ffill()
        med = wide.div(known[wide.columns], axis=1).median(axis=1)
        rows += [dict(setting=name, evaluation=int(e), median_fraction=float(v)) for e, v in med.items()]
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table: one row per setting, one column per (model, acceleration)."""
    if not len(table):
        return "no cells yet\n"
    table = table.assign(cell=[f"{m} {a}x" for m, a in zip(table.model, table.acceleration, strict=True)])
    wide = table.pivot(index="setting", columns="cell", values="median_fraction")
    order = [s.name for s in SETTINGS if s.name in wide.index]
    wide = wide.loc[order]
    lines = ["| setting | " + " | ".join(wide.columns) + " |", "|---" * (len(wide.columns) + 1) + "|"]
    for name, r in wide.iterrows():
        lines.append(f"| {name} | " + " | ".join("–" if np.isnan(v) else f"{v:.1%}" for v in r) + " |")
    return "\n".join(lines) + "\n"


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="advmri convergence", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/convergence")
    ap.add_argument("--data", default="data/synthetic/small/test")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--accelerations", nargs="+", type=int, default=[4, 8])
    ap.add_argument("--settings", nargs="+", default=[s.name for s in SETTINGS], choices=[s.name for s in SETTINGS])
    ap.add_argument("--boxes", type=int, default=16)
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--summary", action="store_true", help="only print the table from the files in --out")
    a = ap.parse_args(argv)
    out = project_path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not a.summary:
        for model in a.models:
            for acc in a.accelerations:
                for s in (s for s in SETTINGS if s.name in a.settings):
                    path = out / f"{model}-{acc}x-{s.name}.csv"
                    if path.is_file():
                        continue
                    df = cell(MODELS[model], a.data, acc, s, a.boxes, a.eps, a.chunk)
                    with atomic_path(path) as tmp:
                        df.to_csv(tmp, index=False)
                    best = df.groupby("box")["best"].max()
                    print(f"{path.name}: {len(best)} boxes, median best {best.median():.4g}", flush=True)
    table = summary(out)
    text = markdown(table)
    print(text, end="")
    if len(table):
        (out / "summary.md").write_text(
            "# Convergence study: median over boxes of each setting's box MSE / the best known\n\n"
            f"`python -m advmri.experiments.convergence` ({a.boxes} boxes, eps {a.eps:g}; best known: the largest "
            "box MSE any setting found).\n\n" + text
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
