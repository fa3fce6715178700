"""Seconds-long stand-ins for the notebooks' ``smoke`` mode: tiny data, an untrained tiny model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from advmri.attacks.noise import NoiseConfig


def tiny_setup(kind: str = "varnet", tmp: str | Path | None = None) -> tuple[str, str]:
    """One tiny synthetic volume and an untrained tiny ``kind`` checkpoint: ``(model path, data dir)``."""
    from advmri.data.synth import generate_dataset
    from advmri.models import build, save_checkpoint

    tmp = Path(tmp or tempfile.mkdtemp())
    generate_dataset("tiny", 1, seed=0, out=tmp, progress=False)
    save_checkpoint(tmp / "m.pt", build(kind, "tiny"))
    return str(tmp / "m.pt"), str(tmp)


def noise_store(tmp: str | Path | None = None) -> Path:
    """A tiny noise run (2 boxes, eps 0 / 0.01, 2 steps) with its stored reconstructions; returns the store."""
    from advmri import recons
    from advmri.run import AttackRun, execute, write_table

    tmp = Path(tmp or tempfile.mkdtemp())
    model, data = tiny_setup("varnet", tmp)
    run = AttackRun(model=model, data=data, attack="noise", max_targets=2,
                    noise=NoiseConfig(eps=(0.0, 0.01), steps=2, random_draws=1))
    df, extras = execute(run, progress=False, keep_images=True)
    out = write_table(df, tmp / "results.csv")
    return recons.save(recons.store_path(out), extras, run.as_dict(), df.model.iloc[0], df.config.iloc[0],
                       df.code_version.iloc[0])
