"""Seconds-long stand-ins for the notebooks' ``smoke`` mode: tiny data, an untrained tiny model.

Deterministic: the data and the model's initialisation are seeded, and without an explicit folder the
set-up lives in one per-user folder of this host (:func:`smoke_dir`), so two smoke sweeps give the same
run ids and byte-identical tables, on one machine or on the nodes of a cluster.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from advmri.attacks.noise import NoiseConfig

__all__ = ["smoke_dir", "tiny_setup", "noise_store"]


def smoke_dir() -> Path:
    """Where :func:`tiny_setup` keeps its set-ups: ``$ADVMRI_SMOKE_DIR``, else ``<tmp>/advmri-smoke-<user>``."""
    return Path(os.environ.get("ADVMRI_SMOKE_DIR") or Path(tempfile.gettempdir()) / f"advmri-smoke-{getpass.getuser()}")


def _build(kind: str, out: Path, seed: int) -> None:
    from advmri.data.synth import generate_dataset
    from advmri.models.networks import build, save_checkpoint

    generate_dataset("tiny", 1, seed=seed, out=out, progress=False)
    with torch.random.fork_rng(devices=[]):  # a seeded initialisation that leaves the caller's RNG alone
        torch.manual_seed(seed)
        model = build(kind, "tiny")
    save_checkpoint(out / "m.pt", model)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


def tiny_setup(kind: str = "varnet", tmp: str | Path | None = None, seed: int = 0) -> tuple[str, str]:
    """One tiny synthetic volume and an untrained, seeded tiny ``kind`` checkpoint: ``(model path, data dir)``.

    ``tmp``: build there. Without it: the shared set-up ``smoke_dir()/<kind>-seed<seed>``, built atomically
    (rename of a finished folder) and, when it exists already, checked file by file against a fresh build (and
    replaced by it when they differ)."""
    if tmp is not None:
        _build(kind, Path(tmp), seed)
        return str(Path(tmp) / "m.pt"), str(tmp)
    final = smoke_dir() / f"{kind}-seed{seed}"
    final.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    try:
        _build(kind, fresh, seed)
        try:
            os.rename(fresh, final)  # first one here: the fresh build becomes the set-up
        except OSError:
            if _digest(final) != _digest(fresh):  # changed by hand, or made by another advmri version: replaced
                stale = final.with_name(f".{final.name}-stale-{os.getpid()}")
                os.rename(final, stale)
                try:
                    os.rename(fresh, final)
                except OSError:  # another process put its (identical) fresh build there meanwhile
                    pass
                shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return str(final / "m.pt"), str(final)


def noise_store(tmp: str | Path | None = None) -> Path:
    """A tiny noise run (2 boxes, eps 0 / 0.01, 2 steps) with its stored reconstructions; returns the store."""
    from advmri.experiments import recons, record
    from advmri.experiments.run import AttackRun, execute

    tmp = Path(tmp or tempfile.mkdtemp())
    model, data = tiny_setup("varnet", tmp)
    run = AttackRun(
        model=model,
        data=data,
        attack="noise",
        max_targets=2,
        noise=NoiseConfig(eps=(0.0, 0.01), steps=2, random_draws=1),
    )
    df, extras = execute(run, progress=False, keep_images=True)
    out = record.write_table(df, tmp / record.TABLE)
    return recons.save(
        recons.store_path(out), extras, run.as_dict(), df.model.iloc[0], df.config.iloc[0], df.code_version.iloc[0]
    )
