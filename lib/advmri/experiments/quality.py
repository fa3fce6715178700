"""The model-quality table as a verified cache, like the attack runs.

The table of notebook 02 (whole-image SSIM / PSNR / NMSE per slice, and clean box metrics per fastMRI+ box, for
zero-filled and every method at 4x and 8x) is a recorded run in ``results/quality/``:

* ``record.json``: the parameters (methods and their model specs, data folder, accelerations, slice and box
  limits, batch), the sha256 of every input (each checkpoint file, each ``.h5`` file and the annotation CSV),
  the sha256 of both tables, the code version and the machine;
* ``slices.csv`` and ``boxes.csv``: the tables;
* ``fingerprints.json``: the content fingerprint of every ``.h5`` input (:mod:`advmri.data.fingerprint`; its
  sha256 in ``record.json``).

:func:`quality_tables` reuses the record only when its parameters and input digests are the ones now (a data file
whose sha256 differs counts as the same when its content fingerprint agrees: the embedded data generated on another
CPU differs from the recorded in float32 rounding only) and the tables still have their recorded digests, **and** a
seeded sample (the batches of ``verify`` slices and of ``verify`` boxes, every method, each table at one acceleration
per method in turn) recomputes within :data:`advmri.experiments.verify.TOLERANCE` on this machine (median within
:data:`advmri.experiments.verify.PGA_MEDIAN` on another, for the bfloat16 kernels); otherwise, or with ``fresh``, it
computes everything and writes a new record. Evaluation is batched: ``batch`` slices per forward pass.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.util.atomic import write_together
from advmri.util.errors import UserError
from advmri.util.paths import display_path, project_path

__all__ = ["RECORD", "FINGERPRINTS", "QualityMismatch", "quality_params", "compute", "quality_tables", "fingerprints"]

RECORD = "record.json"
FINGERPRINTS = "fingerprints.json"
KEY_SLICES = ["method", "acceleration", "file", "slice"]
KEY_BOXES = ["method", "acceleration", "file", "slice", "bx", "by", "bw", "bh"]


class QualityMismatch(UserError):
    """The recorded quality table was not reproduced by its seeded sample."""

    fix = (
        "The code, data or a model changed since the table was computed: recompute it (`python -m advmri.app.pipeline "
        "--fresh`, or notebook 02 with fresh=True), or restore what changed."
    )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_digests(specs: dict[str, str], data: str | Path) -> dict[str, str]:
    """sha256 of every checkpoint file and every data file the table depends on (path -> digest)."""
    from advmri.models.networks import file_sha256
    from advmri.models.train import h5_folder

    out = {}
    for spec in specs.values():
        if not spec.startswith(("classical:", "official:")) and ".py:" not in spec:
            out[display_path(spec)] = file_sha256(project_path(spec))
    folder = h5_folder(data)
    for f in sorted(folder.glob("*.h5")) + sorted(project_path(data).glob("*.csv")):
        out[display_path(f)] = file_sha256(f)
    return out


def fingerprints(data: str | Path) -> dict[str, dict]:
    """The content fingerprint (:func:`advmri.data.fingerprint.fingerprint`) of every ``.h5`` file of ``data``."""
    from advmri.data.fingerprint import fingerprint
    from advmri.models.train import h5_folder

    return {display_path(f): fingerprint(f) for f in sorted(h5_folder(data).glob("*.h5"))}


def _fingerprints_json(data: str | Path) -> bytes:
    return json.dumps(fingerprints(data), separators=(",", ":"), sort_keys=True).encode()


def _rounded_only(folder: Path, rec: dict, changed: list[str]) -> tuple[list[str], str | None]:
    """Of the ``changed`` inputs, the data files whose content fingerprint agrees with the recorded one, and the
    first that does not (why the record cannot be reused), or None."""
    from advmri.data.fingerprint import differs, fingerprint

    f = folder / FINGERPRINTS
    recorded = None
    if rec.get("fingerprints") and f.is_file() and _digest(f.read_bytes()) == rec["fingerprints"]:
        recorded = json.loads(f.read_text())
    same: list[str] = []
    for k in sorted(changed):
        if recorded is None or k not in recorded or not project_path(k).is_file() or not k.endswith(".h5"):
            return same, f"input changed: {k}"
        what = differs(fingerprint(project_path(k)), recorded[k])
        if what:
            return same, f"input changed: {k} ({what})"
        same.append(k)
    return same, None


def quality_params(
    specs: dict[str, str], data: str | Path, accelerations=(4, 8), max_slices: int = 0, batch: int = 8
) -> dict:
    """The parameters a quality record is keyed by."""
    return dict(
        methods=dict(specs),
        data=display_path(data),
        accelerations=list(accelerations),
        max_slices=max_slices,
        batch=batch,
    )


def compute(
    specs: dict[str, str],
    data: str | Path,
    accelerations=(4, 8),
    max_slices: int = 0,
    batch: int = 8,
    slices: list[int] | None = None,
    boxes: list[int] | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(slices table, boxes table)``; ``slices`` / ``boxes``: only these positions (a verification sample)."""
    from advmri.experiments.evaluate import box_quality, quality_table
    from advmri.experiments.run import load_model

    models = {name: load_model(spec) for name, spec in specs.items()}
    q = quality_table(models, data, accelerations, max_slices, batch=batch, only=slices, progress=progress)
    qb = box_quality(models, data, accelerations, batch=batch, max_boxes=max_slices, only=boxes, progress=progress)
    return q, qb


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.9g").encode()


def _compare(new: pd.DataFrame, old: pd.DataFrame, key: list[str], cols: list[str], cross: bool, where: Path) -> None:
    from advmri.experiments.verify import PGA_MEDIAN, TOLERANCE

    m = new.merge(old, on=key, how="left", suffixes=("_new", ""))
    for c in cols:
        a, b = m[f"{c}_new"].to_numpy(float), m[c].to_numpy(float)
        if cross:
            rel = np.abs(a / np.where(b == 0, 1, b) - 1)
            bad = np.nanmedian(rel) > PGA_MEDIAN or np.isnan(b).any()
        else:
            bad = not np.allclose(a, b, equal_nan=True, **TOLERANCE)
        if bad:
            i = int(np.nanargmax(np.abs(a - b)) if not np.isnan(b).all() else 0)
            r = m.iloc[i]
            raise QualityMismatch(
                f"{where}: recorded quality not reproduced: {r['method']} {r['acceleration']}x "
                f"{r['file']} slice {r['slice']}: {c} {r[c]:.6g} -> {r[f'{c}_new']:.6g}; the code, data or "
                "a model changed since it was computed: recompute with fresh=True (pipeline --fresh)"
            )


def _sample(n: int, k: int, seed: int) -> list[int]:
    rng = np.random.default_rng([seed, 2])
    return sorted(int(i) for i in rng.permutation(n)[: min(k, n)])


def _recompute_sample(p: dict, sl: list[int], bx: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample's rows: for each method (sorted by name) the slice batches of ``sl`` at one acceleration and the
    box batches of ``bx`` at the next, in turn, so that every method, both tables and every acceleration are
    recomputed at half the cost of every method at every acceleration (each batch as the table computed it:
    masks are seeded per slice, so one acceleration alone gives the same rows)."""
    from advmri.experiments.evaluate import box_quality, quality_table
    from advmri.experiments.run import load_model

    accs = list(p["accelerations"])
    slices, boxes = [], []
    for i, (name, spec) in enumerate(sorted(p["methods"].items())):
        model = {name: load_model(spec)}
        a_sl, a_bx = accs[i % len(accs)], accs[(i + 1) % len(accs)]
        slices.append(
            quality_table(model, p["data"], (a_sl,), p["max_slices"], batch=p["batch"], only=sl, progress=False)
        )
        boxes.append(
            box_quality(model, p["data"], (a_bx,), batch=p["batch"], max_boxes=p["max_slices"], only=bx, progress=False)
        )
    nq = pd.concat(slices, ignore_index=True).drop_duplicates(KEY_SLICES)  # zero-filled comes with every method
    nqb = pd.concat(boxes, ignore_index=True).drop_duplicates(KEY_BOXES)
    return nq, nqb


def _verify(folder: Path, rec: dict, q: pd.DataFrame, qb: pd.DataFrame, verify: int, log) -> int:
    """Recompute a seeded sample of the record (:func:`_recompute_sample`); raises :class:`QualityMismatch`;
    returns the rows checked."""
    from advmri.util.provenance import machine

    p = rec["params"]
    n_slices = q[["file", "slice"]].drop_duplicates().shape[0]
    n_boxes = int(qb.groupby(["method", "acceleration"]).size().max()) if len(qb) else 0
    sl, bx = _sample(n_slices, verify, 0), _sample(n_boxes, verify, 1)
    t = time.perf_counter()
    nq, nqb = _recompute_sample(p, sl, bx)
    cross = rec.get("machine") != machine()
    _compare(nq, q, KEY_SLICES, ["ssim", "psnr", "nmse"], cross, folder / "slices.csv")
    _compare(nqb, qb, KEY_BOXES, ["box_ssim", "box_psnr", "box_mse"], cross, folder / "boxes.csv")
    log(
        f"quality: verified {nq[['file', 'slice']].drop_duplicates().shape[0]} of {n_slices} slices and "
        f"{nqb[['file', 'slice', 'bx', 'by']].drop_duplicates().shape[0]} of {n_boxes} boxes (each method at one "
        f"acceleration per table, in turn; {len(nq) + len(nqb)} rows, {time.perf_counter() - t:.0f} s"
        f"{', computed on another machine: by the median' if cross else ''})"
    )
    return len(nq) + len(nqb)


def _reusable(folder: Path, params: dict, inputs: dict) -> tuple[dict | None, str]:
    f = folder / RECORD
    if not f.is_file():
        return None, "no record"
    try:
        rec = json.loads(f.read_text())
    except json.JSONDecodeError:
        return None, f"{f}: unreadable"
    if rec.get("params") != params:
        return None, "parameters changed"
    for name in ("slices.csv", "boxes.csv"):
        if not (folder / name).is_file() or _digest((folder / name).read_bytes()) != rec["tables"].get(name):
            return None, f"{name} missing or altered"
    changed = [k for k in set(inputs) | set(rec.get("inputs", {})) if inputs.get(k) != rec.get("inputs", {}).get(k)]
    same, why = _rounded_only(folder, rec, changed) if changed else ([], None)
    if why:
        return None, why
    if same:
        return rec, (
            f"{len(same)} data file(s) not byte-identical to the recorded ones but of the same content "
            "(fingerprints within float32 rounding: generated on another CPU)"
        )
    return rec, "ok"


def quality_tables(
    specs: dict[str, str],
    data: str | Path,
    folder: str | Path = "results/quality",
    accelerations=(4, 8),
    max_slices: int = 0,
    batch: int = 8,
    verify: int = 1,
    fresh: bool = False,
    log: Callable = print,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The quality tables of ``specs`` (name -> model spec) on ``data``: reused from ``folder`` when verified,
    else computed and recorded. Returns ``(slices, boxes, report)``; report ``status`` is reused | computed."""
    from advmri.util.provenance import code_version, machine

    folder = project_path(folder)
    params = quality_params(specs, data, accelerations, max_slices, batch)
    inputs = input_digests(specs, data)
    rec, why = (None, "fresh") if fresh else _reusable(folder, params, inputs)
    if rec is not None:
        if why != "ok":
            log(f"quality: {why}")
        q, qb = pd.read_csv(folder / "slices.csv"), pd.read_csv(folder / "boxes.csv")
        rows = _verify(folder, rec, q, qb, verify, log) if verify else 0
        return q, qb, dict(status="reused", verified_rows=rows, why=why)
    log(f"quality: computing the table ({why}) -> {display_path(folder)}")
    t = time.perf_counter()
    q, qb = compute(specs, data, accelerations, max_slices, batch)
    tables = {"slices.csv": _csv(q), "boxes.csv": _csv(qb)}
    prints = _fingerprints_json(data)
    rec = dict(
        params=params,
        inputs=inputs,
        tables={k: _digest(v) for k, v in tables.items()},
        fingerprints=_digest(prints),
        code_version=code_version(),
        machine=machine(),
        seconds=round(time.perf_counter() - t, 1),
    )
    folder.mkdir(parents=True, exist_ok=True)
    files = {folder / k: v for k, v in tables.items()} | {folder / FINGERPRINTS: prints}
    write_together(files | {folder / RECORD: json.dumps(rec, indent=1).encode()})
    q, qb = pd.read_csv(io.BytesIO(tables["slices.csv"])), pd.read_csv(io.BytesIO(tables["boxes.csv"]))
    return q, qb, dict(status="computed", seconds=rec["seconds"], why=why)
