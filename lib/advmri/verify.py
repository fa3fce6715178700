"""Verified cache: before committed results are reused, recompute a seeded sample of them.

A run's rows come in *passes* (noise: ``chunk`` consecutive (box, eps) items attacked together;
rotation: one box, every angle). :func:`verify_run` draws ``passes`` of them with a generator
seeded by ``(seed, run id)``, recomputes exactly those batches (:func:`advmri.run.execute` with
``subset``, the run's own parameters and thread count, so the float32 arithmetic is the same) and
compares every metric of every recomputed row (adversarial, random, clean) with the table.

Tolerance (:data:`TOLERANCE`): recomputing a pass with the same batch and thread count reproduces
it to float32 rounding. Measured on this project's 2-core CPU (``tests/test_verify.py`` and the
closing note of issue 13): identical to the last digit in repeated runs; box MSE differs by up to
0.5% when the *batch composition* changes, and per-box box SSIM by up to ~0.045 at high eps when
the *thread count* changes (normalised PGA steps amplify rounding). The check therefore uses the
recorded batch and thread count and a tolerance of 1e-4 relative / 1e-5 absolute, far below any
real change (another checkpoint, code or data changes box MSE by percent, not ppm).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.errors import UserError
from advmri.provenance import machine
from advmri.run import METRICS, AttackRun, execute, read_table
from advmri.sweep import read_status

TOLERANCE = dict(rtol=1e-4, atol=1e-5)
# Rows of the noise PGA (eps > 0) recomputed on *another* machine (:func:`advmri.provenance.machine`): the clean
# forward pass agrees to ~1e-6, but ten normalised gradient steps amplify last-bit differences of the CPU's kernels
# (measured, issue 21: most boxes within 1e-6, box MSE up to 0.7% apart at eps 0.02, and a rare box whose
# optimisation takes another branch: the authors' update at eps 0.02, one U-Net box of 279, box MSE 0.053 -> 0.090).
# So on another machine the PGA rows are compared as a group: they pass when the median relative box-MSE difference
# is below this (a real change, other weights, code or data, moves box MSE by percent on most boxes); the clean
# rows (eps 0) and the rotation rows stay strict (TOLERANCE). Single PGA rows are checked only on the same machine.
# bfloat16 autocast (precision: bf16) runs differ across CPUs even at eps 0 (measured: the VarNet's clean box MSE up
# to 2.8% apart, median 0.5%, the CPUs' bf16 kernels differ): on another machine all their rows go by the median.
PGA_MEDIAN = 1e-2
KEY = ["file", "slice", "bx", "by", "bw", "bh", "param", "kind", "draw"]
RUN_KEYS = {"out", "smoke", "notebook"}


class CacheMismatch(UserError):
    """A committed result could not be reproduced within :data:`TOLERANCE`."""


def run_of(folder: Path) -> AttackRun:
    """The :class:`AttackRun` of a sweep run folder, from its ``params.json`` (the papermill parameters)."""
    p = json.loads((folder / "params.json").read_text())
    attack = "rotation" if "04_rotation" in str(p.get("notebook", "")) else "noise"
    return AttackRun.from_params(attack, **{k: v for k, v in p.items() if k not in RUN_KEYS})


def choose_passes(n_passes: int, k: int, seed: int, run_id: str) -> list[int]:
    """``k`` distinct pass numbers in ``[0, n_passes)``, seeded by ``seed`` and the run id."""
    rng = np.random.default_rng([seed, zlib.crc32(run_id.encode())])
    return sorted(int(i) for i in rng.choice(n_passes, size=min(k, n_passes), replace=False))


def pga_rows(df: pd.DataFrame) -> np.ndarray:
    """Rows that depend on the noise PGA's result (eps > 0: the adversarial rows, and the control, whose norms are
    the adversarial noise's): those whose rounding the optimiser amplifies."""
    return ((df["attack"] == "noise") & (df["param"] > 0)).to_numpy()


def compare(got: pd.DataFrame, table: pd.DataFrame, metrics=METRICS, cross_machine: bool = False,
            bf16: bool = False) -> pd.DataFrame:
    """Rows of ``got`` joined to ``table`` on :data:`KEY`; columns ``<m>`` (table), ``<m>_new`` and
    ``bad`` (any metric outside :data:`TOLERANCE`, or the row missing from the table; with ``cross_machine``, the
    PGA rows (:func:`pga_rows`; every row of a ``bf16`` run) are bad together when their median relative box-MSE
    difference exceeds :data:`PGA_MEDIAN`)."""
    t = table.copy()
    g = got.copy()
    for d in (t, g):
        d["param"] = d["param"].round(6)
        d["bx"] = d["bx"].astype(int)
    m = g.merge(t, on=KEY, how="left", suffixes=("_new", ""), indicator=True)
    bad = m["_merge"] != "both"
    rows = np.ones(len(m), bool) if bf16 else pga_rows(m)  # bf16 kernels differ across CPUs even without the PGA
    loose = rows & (m["_merge"] == "both").to_numpy() if cross_machine else np.zeros(len(m), bool)
    for c in metrics:
        a, b = m[c].to_numpy(float), m[f"{c}_new"].to_numpy(float)
        bad |= ~np.isclose(b, a, equal_nan=True, **TOLERANCE) & ~loose
    if loose.any():  # on another machine: the PGA rows as a group (PGA_MEDIAN)
        rel = np.abs(m.loc[loose, "box_mse_new"].to_numpy(float) / m.loc[loose, "box_mse"].to_numpy(float) - 1)
        if np.nanmedian(rel) > PGA_MEDIAN:
            bad |= loose
    m["bad"] = bad
    return m


def verify_run(folder: str | Path, passes: int = 1, seed: int = 0, log=print) -> dict:
    """Recompute ``passes`` seeded passes of the run in ``folder`` and compare with its ``results.csv``.
    Returns a report; raises :class:`CacheMismatch` (one line naming the file, box and metric) on a
    difference beyond :data:`TOLERANCE`."""
    folder = Path(folder)
    run = run_of(folder)
    table = read_table(folder / "results.csv")
    if table.empty:
        raise CacheMismatch(f"{folder / 'results.csv'}: empty table")
    _, dry = execute(run, progress=False, subset=[])  # loads model and data, counts the passes, computes nothing
    n = dry["passes"]
    chosen = choose_passes(n, passes, seed, folder.name)
    got, extras = execute(run, progress=False, subset=chosen)
    recorded = (read_status(folder) or {}).get("machine")
    cross = recorded != machine()  # unknown (recorded before machines were) counts as another machine
    m = compare(got, table, cross_machine=cross, bf16=run.precision == "bf16")
    report = dict(run=folder.name, passes=chosen, of=n, rows=len(m), seconds=round(extras["seconds"], 1),
                  max_rel_box_mse=float(np.nanmax(np.abs(m["box_mse_new"] / m["box_mse"] - 1))) if len(m) else None)
    if m["bad"].any():
        r = m[m["bad"]].iloc[0]
        diffs = [f"{c} {r[c]:.6g} -> {r[c + '_new']:.6g}" for c in METRICS
                 if not np.isclose(r[f"{c}_new"], r[c], equal_nan=True, **TOLERANCE)]
        raise CacheMismatch(
            f"{folder / 'results.csv'}: committed result not reproduced ({int(m['bad'].sum())} of {len(m)} recomputed "
            f"rows differ; e.g. {r['file']} slice {r['slice']} box {r['bx']},{r['by']} {r['kind']} param {r['param']}: "
            f"{'; '.join(diffs) or 'row missing from the table'}); the code, data or model changed since it was "
            "computed: recompute with python -m advmri.pipeline --fresh")
    report["cross_machine"] = cross
    log(f"  {folder.name}: verified {len(m)} rows of pass(es) {chosen} of {n} ({report['seconds']} s"
        f"{f'; computed on another machine: PGA rows by their median, within {PGA_MEDIAN:g}' if cross else ''})")
    return report
