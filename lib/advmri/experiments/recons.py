"""Stored reconstructions of a run: compact crops around each box, so the explorer opens at once.

A noise run writes ``<table stem>.recons.h5`` beside its ``results.csv`` (see :func:`store_path`).
For every target it holds a *window* (the box plus ``margin`` pixels on each side, clipped to the
image) of the fully sampled target, the lesion-free twin when the data has one, and, for every
attack parameter (eps), the adversarial reconstruction and the paired random-noise one (draw 0:
the control with the adversarial per-coil energy on the sampled columns; NaN for a run with ``random_draws: 0``).

Layout (HDF5)::

    /                 attrs: format, attack, model, config, acceleration, params (P,), run (JSON), code_version
    /targets/<i>      attrs: index, file, slice, label, box (x, y, w, h) and window (y0, y1, x0, x1),
                             both in array coordinates of the full (H, W) image; scale
                      target (h, w), [healthy (h, w)], adversarial (P, h, w), random (P, h, w)

Images are divided by ``scale`` (the target window's maximum) and stored as float16 with gzip:
the relative rounding error is <= 2**-11 of the window maximum, far below any difference the
explorer shows. :func:`load` multiplies the scale back and returns float32 arrays.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from advmri.core.boxes import Box
from advmri.experiments.record import RunRecord
from advmri.experiments.record import store_path as store_path
from advmri.util.atomic import atomic_path
from advmri.util.errors import UserError
from advmri.util.paths import project_path

FORMAT = 1
MARGIN = 24  # pixels of context around each box


def window(box: Box, shape: tuple[int, int], margin: int = MARGIN) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the box grown by ``margin`` on each side, clipped to ``shape`` (H, W)."""
    H, W = shape
    return (
        max(0, box.y - margin),
        min(H, box.y + box.h + margin),
        max(0, box.x - margin),
        min(W, box.x + box.w + margin),
    )


@dataclass
class TargetRecons:
    """One target's window: images ``(h, w)`` float32, stacks ``(P, h, w)`` over the run's parameters."""

    index: int  # item index in the run's AnnotatedSlices
    file: str
    slice: int
    label: str
    box: Box  # full-image array coordinates
    window: tuple[int, int, int, int]  # (y0, y1, x0, x1)
    target: np.ndarray
    healthy: np.ndarray | None
    adversarial: np.ndarray
    random: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.file} · slice {self.slice} · {self.label}"

    @property
    def local_box(self) -> Box:
        """The box in window coordinates."""
        return Box(self.box.x - self.window[2], self.box.y - self.window[0], self.box.w, self.box.h)


@dataclass
class RunRecons:
    attack: str
    model: str
    config: str
    acceleration: int
    params: list[float]
    run: dict  # the run's parameters (AttackRun.as_dict)
    code_version: str
    targets: list[TargetRecons] = field(default_factory=list)

    @property
    def name(self) -> str:
        upd = (self.run.get("noise") or {}).get("update", "ours")
        return f"{self.model} ({self.config}) {self.acceleration}x" + (
            ", reference update" if upd == "reference" else ""
        )


def save(
    path: str | os.PathLike,
    extras: dict,
    run: dict,
    model: str,
    config: str,
    code_version: str,
    margin: int = MARGIN,
    fallback: RunRecons | None = None,
) -> Path:
    """Write the store for a noise run from :func:`advmri.experiments.run.execute`'s ``extras`` (``keep_images=True``).

    ``fallback``: an earlier store of the same run, whose windows fill the images ``extras`` lacks (the
    adversarial reconstructions of passes :mod:`advmri.experiments.recontrol` reused). Written atomically
    (:func:`advmri.util.atomic.atomic_path`): a reader never sees half a file.
    """
    images = extras["images"]
    params = sorted({k[1] for k in images if isinstance(k, tuple) and k[2] in ("adversarial", "random")})
    old = {t.index: t for t in fallback.targets} if fallback is not None else {}
    path = project_path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as hf:
        hf.attrs.update(
            format=FORMAT,
            attack=run["attack"],
            model=model,
            config=config,
            acceleration=int(run["acceleration"]),
            params=np.asarray(params, dtype=np.float64),
            run=json.dumps(run, sort_keys=True, default=str),
            code_version=code_version,
        )
        g = hf.create_group("targets")
        for i, (t, s) in enumerate(zip(extras["targets"], extras["samples"], strict=True)):
            _save_target(g, i, t, s, images, params, run, margin, old, fallback)
    return path


def _crop(a, win: tuple[int, int, int, int]) -> np.ndarray:
    """``a`` ``(..., H, W)`` as float32, cut to the window ``(y0, y1, x0, x1)``."""
    y0, y1, x0, x1 = win
    return np.asarray(a, dtype=np.float32)[..., y0:y1, x0:x1]


def _save_target(
    g: h5py.Group,
    i: int,
    t: int,
    s,
    images: dict,
    params: list[float],
    run: dict,
    margin: int,
    old: dict,
    fallback: RunRecons | None,
) -> None:
    """Group ``i`` of the store: target ``t`` (sample ``s``), its windows scaled by the target window's maximum."""
    tgt = s.target.numpy()
    y0, y1, x0, x1 = win = window(s.box, tgt.shape, margin)
    scale = float(_crop(tgt, win).max()) or 1.0

    def half(a) -> np.ndarray:
        """A window of ``a`` divided by ``scale``, as float16."""
        return (_crop(a, win) / scale).astype(np.float16)

    d = g.create_group(str(i))
    d.attrs.update(
        index=int(t),
        file=s.fname,
        slice=int(s.slice_idx),
        label=s.label,
        box=np.asarray(s.box.as_tuple()),
        window=np.asarray(win),
        scale=scale,
    )
    kw: dict = dict(compression="gzip", shuffle=True)
    d.create_dataset("target", data=half(tgt), **kw)
    if s.healthy is not None:
        d.create_dataset("healthy", data=half(s.healthy.numpy()), **kw)
    for kind in ("adversarial", "random"):
        if kind == "random" and not (run.get("noise") or {}).get("random_draws", 1):  # a run without a control
            d.create_dataset(kind, data=np.full((len(params), y1 - y0, x1 - x0), np.nan, np.float16), **kw)
            continue
        stack = [
            half(images[(t, p, kind)].numpy())
            if (t, p, kind) in images
            else (_window_of(old, fallback, t, p, kind, win) / scale).astype(np.float16)
            for p in params
        ]
        d.create_dataset(kind, data=np.stack(stack), **kw)


def _window_of(old: dict, fallback: RunRecons | None, t: int, p: float, kind: str, win: tuple) -> np.ndarray:
    """The stored window of target ``t``, parameter ``p``, ``kind`` in ``fallback`` (same window required)."""
    if fallback is None or t not in old or p not in fallback.params or tuple(old[t].window) != tuple(win):
        raise KeyError(f"no {kind} reconstruction of target {t} at {p} (and no earlier store holding it)")
    return getattr(old[t], kind)[fallback.params.index(p)]


def load(path: str | os.PathLike) -> RunRecons:
    """Read a store written by :func:`save` (float32 images, original intensity scale)."""
    path = project_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no stored reconstructions (re-run the attack to write them)")
    try:
        return _read(path)
    except (OSError, KeyError, ValueError) as e:
        if isinstance(e, ValueError) and "reconstruction store format" in str(e):
            raise
        raise StoreError(
            f"{path}: damaged or truncated reconstruction store ({' '.join(str(e).split())[:160]}); "
            "re-run its attack to rewrite it"
        ) from e


class StoreError(UserError):
    """A reconstruction store that cannot be read; the message names it."""

    fix = "Re-run the attack of the named store to rewrite it; the explorer shows the other stores meanwhile."


def load_all(paths: list, log=print) -> list[RunRecons]:
    """Every store that reads; each one that does not is named in one line and left out (raises only when
    none reads)."""
    runs, bad = [], []
    for p in paths:
        try:
            runs.append(load(p))
        except (StoreError, ValueError, FileNotFoundError) as e:
            bad.append(str(e))
    for msg in bad:
        log(f"skipped: {msg} (showing the other {len(runs)} store(s))")
    if not runs:
        raise StoreError(f"no readable reconstruction store among {len(paths)}: {bad[0] if bad else 'none given'}")
    return runs


def _read(path: Path) -> RunRecons:
    with h5py.File(path, "r") as hf:
        if int(hf.attrs.get("format", -1)) != FORMAT:
            raise ValueError(f"{path}: reconstruction store format {hf.attrs.get('format')!r}, expected {FORMAT}")
        a = hf.attrs
        rr = RunRecons(
            attack=str(a["attack"]),
            model=str(a["model"]),
            config=str(a["config"]),
            acceleration=int(a["acceleration"]),
            params=[float(p) for p in a["params"]],
            run=json.loads(a["run"]),
            code_version=str(a["code_version"]),
        )
        rr.targets = [_read_target(hf["targets"][key]) for key in sorted(hf["targets"], key=int)]
    return rr


def _read_target(d: h5py.Group) -> TargetRecons:
    """One target's group of a store, its windows as float32 at the original intensity scale."""
    sc = float(d.attrs["scale"])

    def f(name: str) -> np.ndarray:
        """Dataset ``name`` of the group, times its scale."""
        return d[name][()].astype(np.float32) * sc

    y0, y1, x0, x1 = (int(v) for v in d.attrs["window"])
    return TargetRecons(
        index=int(d.attrs["index"]),
        file=str(d.attrs["file"]),
        slice=int(d.attrs["slice"]),
        label=str(d.attrs["label"]),
        box=Box(*map(int, d.attrs["box"])),
        window=(y0, y1, x0, x1),
        target=f("target"),
        healthy=f("healthy") if "healthy" in d else None,
        adversarial=f("adversarial"),
        random=f("random"),
    )


def find(sweep_dir: str | os.PathLike, attack: str = "noise") -> list[Path]:
    """Stores of a sweep folder's completed runs of one attack (sorted by run folder)."""
    out = []
    for rec in RunRecord.in_sweep(project_path(sweep_dir)):
        if rec.folder.name.startswith(f"{attack}-") and (rec.read_status() or {}).get("status") == "ok":
            p = store_path(rec.table)
            if p.is_file():
                out.append(p)
    return out
