"""Replayable robustness cards: the strongest adversarial noise of every (box, budget), stored beside the card.

A card's folder gets ``ledger.npz`` (compressed; per entry the sampled columns and the float32 noise on them: the
mask after the noise discards the rest, so these reproduce the attacked reconstruction exactly) and
``ledger.json`` (per entry: run label, target, box, eps, attack, seed, the box metrics it gave; per run: the
:class:`AttackRun` parameters; the sha256 of ``ledger.npz``, the model's weights and the machine).

:func:`replay` recomputes every adversarial row of the card's noise runs from the stored noise, *without
attacking* (one forward pass per batch), and compares each box's metrics with the card's ``runs/<label>.csv``:
bit-exact where the card was made on this machine (:func:`advmri.util.provenance.machine`), within
:data:`TOLERANCE` elsewhere (one float32 forward pass, no ascent to amplify rounding).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from advmri.attacks.common import box_scores, make_batch
from advmri.attacks.noise import NoiseConfig
from advmri.attacks.rotation import RotationConfig
from advmri.experiments.run import AttackRun, load_model, run_dataset, select_targets
from advmri.util.atomic import atomic_path
from advmri.util.atomic import write_text as atomic_write_text
from advmri.util.errors import UserError
from advmri.util.provenance import machine

__all__ = ["LEDGER_VERSION", "TOLERANCE", "LedgerError", "Replay", "replay", "write_ledger"]

LEDGER_VERSION = 1
TOLERANCE = dict(rtol=1e-4, atol=1e-6)  # another machine: one float32 forward pass apart (box MSE, SSIM, PSNR)
METRICS = ("box_mse", "box_ssim", "box_psnr")


class LedgerError(UserError):
    """A card's ledger is missing, damaged or does not match its card or model. The message names the file."""

    fix = (
        "Rebuild the card with `advmri benchmark ... --force` (it writes ledger.npz and ledger.json), restore the "
        "named file, or pass the model the card was made with (--model)."
    )


def _run_params(run: AttackRun) -> dict[str, Any]:
    d = run.as_dict()
    return {k: v for k, v in d.items() if v is not None}


def _run_from(params: dict[str, Any], model: str | None) -> AttackRun:
    p = dict(params)
    noise, rotation = p.pop("noise", None) or {}, p.pop("rotation", None) or {}
    if model is not None:
        p["model"] = model
    for k in ("labels",):
        if isinstance(p.get(k), list):
            p[k] = tuple(p[k])
    if isinstance(noise.get("eps"), list):
        noise["eps"] = tuple(noise["eps"])
    return AttackRun(**p, noise=NoiseConfig(**noise), rotation=RotationConfig(**rotation))


def write_ledger(
    out: Path, runs: dict[str, tuple[AttackRun, dict, pd.DataFrame]], budgets: set[float] | None = None
) -> dict[str, Any]:
    """Write ``ledger.npz`` / ``ledger.json`` into ``out`` from the noise runs ``label -> (run, extras, table)``
    (extras of :func:`advmri.experiments.run.execute` with ``keep_noise``), keeping the noise of the ``budgets``
    only (default: all; a card keeps its headline budget: float32 noise does not compress, about 0.3-0.7 MB per
    box and budget at the embedded size) and the passes that hold them; returns the ledger's summary."""
    arrays: dict[str, np.ndarray] = {}
    entries: list[dict[str, Any]] = []
    run_params: dict[str, Any] = {}
    sha: dict[str, str | None] = {}
    passes: dict[str, list] = {}
    for label, (run, extras, table) in runs.items():
        run_params[label] = _run_params(run)
        keep = [k for k in extras["noise_passes"] if budgets is None or any(float(e) in budgets for _, e in k)]
        passes[label] = [[[int(t), float(e)] for t, e in keys] for keys in keep]
        sha[label] = extras.get("model_sha256")
        adv = table[table.kind == "adversarial"]
        for (target, eps), (cols, z) in sorted(extras["noise"].items()):
            if budgets is not None and float(eps) not in budgets:
                continue
            s = extras["samples"][extras["targets"].index(target)]
            row = adv[(adv.file == s.fname) & (adv.slice == s.slice_idx) & np.isclose(adv.param, eps)]
            i = len(entries)
            arrays[f"z{i}"] = torch.view_as_real(z.to(torch.complex64)).numpy()  # (coils, rows, n, 2) float32
            arrays[f"c{i}"] = cols.numpy().astype(np.int32)
            entries.append(
                dict(
                    run=label,
                    target=int(target),
                    file=s.fname,
                    slice=int(s.slice_idx),
                    box=[s.box.x, s.box.y, s.box.w, s.box.h] if s.box else None,
                    eps=float(eps),
                    attack=f"{run.noise.update}, {run.noise.steps} steps, {run.noise.restarts} restarts",
                    seed=run.noise.seed,
                    **{m: float(row[m].iloc[0]) if len(row) else None for m in METRICS},
                )
            )
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    with atomic_path(out / "ledger.npz") as tmp:
        tmp.write_bytes(buf.getvalue())
    summary = dict(
        ledger_version=LEDGER_VERSION,
        npz_sha256=hashlib.sha256(buf.getvalue()).hexdigest(),
        machine=machine(),
        model_sha256=sha,
        runs=run_params,
        passes=passes,
        entries=entries,
    )
    atomic_write_text(out / "ledger.json", json.dumps(summary, indent=1) + "\n")
    return dict(
        entries=len(entries),
        bytes=len(buf.getvalue()),
        npz_sha256=summary["npz_sha256"],
        budgets=sorted(budgets) if budgets is not None else "all",
    )


@dataclass
class Replay:
    """The result of :func:`replay`: rows compared, the largest relative difference, the rows outside the
    tolerance (``label file slice eps metric: card vs replayed``), whether exactness was required, the time."""

    rows: int = 0
    max_rel_diff: float = 0.0
    bad: list[str] = field(default_factory=list)
    exact: bool = True
    seconds: float = 0.0

    @property
    def holds(self) -> bool:
        return not self.bad


def _read(card_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    js, npz = card_dir / "ledger.json", card_dir / "ledger.npz"
    for p in (js, npz):
        if not p.is_file():
            raise LedgerError(f"{p}: not found; the card has no ledger (made before replayable cards?)")
    try:
        led = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LedgerError(f"{js}: not valid JSON ({e.__class__.__name__})") from e
    if not isinstance(led, dict) or led.get("ledger_version") != LEDGER_VERSION:
        raise LedgerError(
            f"{js}: ledger version {led.get('ledger_version') if isinstance(led, dict) else '?'}, "
            f"this advmri reads version {LEDGER_VERSION}"
        )
    blob = npz.read_bytes()
    if hashlib.sha256(blob).hexdigest() != led.get("npz_sha256"):
        raise LedgerError(f"{npz}: sha256 differs from the one in {js.name}: the stored noise was changed")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError) as e:
        raise LedgerError(f"{npz}: not a readable npz ({e.__class__.__name__})") from e
    return led, arrays


def replay(card_dir: str | Path, model: str | None = None) -> Replay:
    """Recompute every stored (box, eps) of the card in ``card_dir`` with ``model`` (default: the card's) and
    compare with ``runs/<label>.csv`` (module docstring)."""
    t0 = time.perf_counter()
    card_dir = Path(card_dir)
    led, arrays = _read(card_dir)
    out = Replay(exact=led.get("machine") == machine())
    tol = dict(rtol=0.0, atol=0.0) if out.exact else TOLERANCE
    for label, params in led["runs"].items():
        run = _run_from(params, model)
        m = load_model(run.model, run.device).set_precision(run.precision)
        if led["model_sha256"].get(label) and m.sha256 and m.sha256 != led["model_sha256"][label]:
            raise LedgerError(
                f"{run.model}: sha256 {m.sha256[:16]}... is not that of the card's model "
                f"({led['model_sha256'][label][:16]}...): another model"
            )
        table = pd.read_csv(card_dir / "runs" / f"{label}.csv")
        mine = [(i, e) for i, e in enumerate(led["entries"]) if e["run"] == label]
        threads = torch.get_num_threads()
        torch.set_num_threads(run.threads)  # the run's: float32 rounding depends on it
        try:
            _replay_run(run, m, mine, arrays, table, led["passes"][label], tol, out, label)
        finally:
            torch.set_num_threads(threads)
    out.seconds = time.perf_counter() - t0
    return out


def _replay_run(run, model, entries, arrays, table, passes, tol, out, label) -> None:
    """Each pass of the run again, with its items in their order (float32 kernels depend on the batch), the stored
    noise on the adversarial items and none on the clean ones (eps 0)."""
    ds = run_dataset(run)
    idx = set(select_targets(ds, run.max_targets))
    stored = {(e["target"], e["eps"]): (i, e) for i, e in entries}
    adv = table[table.kind == "adversarial"]
    for keys in passes:
        if any(t not in idx for t, _ in keys):
            raise LedgerError(f"ledger.json: run {label} names a target outside the run's boxes")
        tb = make_batch([ds[t] for t, _ in keys]).to(run.device)
        z = torch.zeros_like(tb.kspace)
        for j, (t, eps) in enumerate(keys):
            if (t, eps) in stored:
                i = stored[(t, eps)][0]
                cols = torch.from_numpy(arrays[f"c{i}"]).long()
                z[j][..., cols] = torch.view_as_complex(torch.from_numpy(arrays[f"z{i}"]).contiguous()).to(z.device)
        with torch.inference_mode():
            y = (tb.kspace + z) * tb.mask[:, None, None, :].to(tb.kspace.real.dtype)
            got = box_scores(model(y, tb.mask, tb.num_low, tb.crop), tb)
        for j, (t, eps) in enumerate(keys):
            if (t, eps) not in stored:
                continue
            e = stored[(t, eps)][1]
            row = adv[(adv.file == e["file"]) & (adv.slice == e["slice"]) & np.isclose(adv.param, e["eps"])]
            row = row[(row.bx == e["box"][0]) & (row.by == e["box"][1])] if e["box"] else row
            _compare(row, got, j, e, tol, out, label)


def _compare(row, got, j, e, tol, out, label) -> None:
    out.rows += 1
    for metric in METRICS:
        want, have = float(row[metric].iloc[0]), float(got[metric][j])
        out.max_rel_diff = max(out.max_rel_diff, abs(have - want) / max(abs(want), 1e-30))
        if not np.isclose(have, want, **tol):
            where = f"{label} {e['file']} slice {e['slice']} eps {e['eps']:g} {metric}"
            out.bad.append(f"{where}: card {want:.6g}, replayed {have:.6g}")
