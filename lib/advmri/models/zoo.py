"""The model zoo: both architectures, several seeds each, trained to a stated plateau, resumably.

``python -m advmri.models.zoo [--only varnet|unet] [--seeds 0 1 2] [--threads 1] [--status]``

Each :class:`Recipe` is one training run of :func:`advmri.models.train.train` on the large synthetic training
set (``data/synthetic/small/train-large``: 150 volumes of seed 0, every 5th validates, so 120 train and 30
validate): a constant learning rate until the validation SSIM gains less than ``plateau`` over the last doubling
of steps (means of ``smooth`` validations), then a linear cooldown over ``cooldown`` x the steps. The seed sets
the initialisation and the data order. A run interrupted at any moment continues from its resume file
(``OUT.resume.pt``, written every ``save_every`` steps) when the driver is started again; finished checkpoints
are skipped. Outputs: ``models/zoo/<kind>-small-s<seed>.pt`` (+ ``.sha256``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from advmri.util.errors import check_choice, check_range, cli, prog
from advmri.util.paths import project_path

DATA = "data/synthetic/small/train-large"
OUT = "models/zoo"
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Recipe:
    """One training run: the architecture, its seed and the schedule (see :func:`advmri.models.train.train`)."""

    kind: str
    seed: int
    batch: int
    lr: float
    max_steps: int
    val_interval: int
    plateau: float = 0.005
    smooth: int = 3
    cooldown: float = 0.1
    precision: str = "bf16"
    save_every: int = 250
    config: str = "small"

    def out(self, folder: str | Path = OUT) -> Path:
        """The finished checkpoint's path (as given: relative paths are of the project root)."""
        return Path(folder) / f"{self.kind}-{self.config}-s{self.seed}.pt"

    def argv(self, data: str | Path = DATA, folder: str | Path = OUT) -> list[str]:
        """The arguments of ``python -m advmri.models.train`` that run this recipe (``--resume`` not included)."""
        return [
            *("--model", self.kind, "--config", self.config, "--data", str(data), "--out", str(self.out(folder))),
            *("--steps", str(self.max_steps), "--batch", str(self.batch), "--lr", f"{self.lr:g}"),
            *("--seed", str(self.seed), "--val-interval", str(self.val_interval), "--plateau", f"{self.plateau:g}"),
            *("--smooth", str(self.smooth), "--cooldown", f"{self.cooldown:g}", "--precision", self.precision),
            *("--save-every", str(self.save_every)),
        ]

    def command(self, data: str | Path = DATA, folder: str | Path = OUT) -> str:
        """The training command line, as the model card records it."""
        return "python -m advmri.models.train " + shlex.join(self.argv(data, folder))


# U-Net: fastMRI's batch of 4 slices; E2E-VarNet: fastMRI's 1 slice per step. Validation every 500 (U-Net,
# ~2 min of training on one core) / 1000 steps (VarNet, ~5 min): its 300 slices cost ~8 s / ~30 s.
BASE = {
    "unet": Recipe("unet", 0, batch=4, lr=1e-3, max_steps=64000, val_interval=500),
    "varnet": Recipe("varnet", 0, batch=1, lr=5e-4, max_steps=96000, val_interval=1000),
}


def recipes(kinds: tuple[str, ...] = ("unet", "varnet"), seeds: tuple[int, ...] = SEEDS) -> list[Recipe]:
    """The zoo's runs, seed-major (every architecture's seed 0 before any seed 1)."""
    for k in kinds:
        check_choice("only", k, sorted(BASE))
    return [replace(BASE[k], seed=s) for s in seeds for k in kinds]


def state(r: Recipe, folder: str | Path = OUT) -> str:
    """``done`` (checkpoint written), ``step N`` (resume file at step N) or ``not started``."""
    out = project_path(r.out(folder))
    if out.is_file():
        return "done"
    resume = Path(str(out) + ".resume.pt")
    if resume.is_file():
        st = torch.load(resume, map_location="cpu", weights_only=True)
        cool = st["history"].get("plateau_step")
        return f"step {st['step']}" + (f" (plateau at {cool}, cooling down)" if cool else "")
    return "not started"


def run(rs: list[Recipe], data: str | Path = DATA, folder: str | Path = OUT, progress: bool = False) -> None:
    """Train every recipe whose checkpoint is missing, continuing from its resume file where there is one."""
    from advmri.models.train import main as train_main

    for r in rs:
        out = project_path(r.out(folder))
        if out.is_file():
            print(f"{r.out(folder)}: done", flush=True)
            continue
        resume = Path(str(out) + ".resume.pt").is_file()
        print(f"{r.command(data, folder)}{' --resume' if resume else ''}", flush=True)
        train_main([*r.argv(data, folder), *(["--resume"] if resume else []), *([] if progress else ["--quiet"])])


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog("advmri.models.zoo"), description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=sorted(BASE), default=None, help="one architecture (default: both)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--data", default=DATA, help=f"training folder (default {DATA})")
    ap.add_argument("--out", default=OUT, help=f"folder of the checkpoints (default {OUT})")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--status", action="store_true", help="list each run's state and its command; train nothing")
    ap.add_argument("--progress", action="store_true", help="progress bars")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    a = ap.parse_args(argv)
    for s in a.seeds:
        check_range("seeds", s, lo=0, integer=True)
    if a.threads is not None:
        check_range("threads", a.threads, lo=1, integer=True)
        torch.set_num_threads(a.threads)
    rs = recipes((a.only,) if a.only else ("unet", "varnet"), tuple(a.seeds))
    if a.status:
        for r in rs:
            print(f"{r.out(a.out)}: {state(r, a.out)}\n    {r.command(a.data, a.out)}")
        return 0
    run(rs, a.data, a.out, a.progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
