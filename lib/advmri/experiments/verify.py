"""Verified cache: before committed results are reused, recompute a seeded sample of them.

A run's rows come in *passes* (noise: ``chunk`` consecutive (box, eps) items attacked together;
rotation: one box, every angle). :func:`verify_run` draws ``passes`` of them with a generator
seeded by ``(seed, run id)``, recomputes exactly those batches (:func:`advmri.experiments.run.execute` with
``subset``, the run's own parameters and thread count, so the float32 arithmetic is the same) and
compares every metric of every recomputed row (adversarial, random, clean) with the table. A rotation box is
recomputed in the passes (batches of angles, as the run made them) that hold its recorded worst angle of each
bound and its random angles, about a third of its grid; ``passes='all'`` repeats the whole search, so that the
choice of the worst angle is checked too.

Tolerance (:data:`TOLERANCE`): recomputing a pass with the same batch and thread count reproduces
it to float32 rounding. Measured on this project's 2-core CPU (``tests/test_verify.py`` and the
closing note of issue 13): identical to the last digit in repeated runs; box MSE differs by up to
0.5% when the *batch composition* changes, and per-box box SSIM by up to ~0.045 at high eps when
the *thread count* changes (normalised PGA steps amplify rounding). The check therefore uses the
recorded batch and thread count and a tolerance of 1e-4 relative / 1e-5 absolute, far below any
real change (another checkpoint, code or data changes box MSE by percent, not ppm).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.experiments.record import RunRecord, table_digest
from advmri.experiments.run import METRICS, AttackRun, execute
from advmri.util.errors import UserError, cli, prog
from advmri.util.provenance import machine

TOLERANCE = dict(rtol=1e-4, atol=1e-5)
# Rows of the noise PGA (eps > 0) recomputed on *another* machine (:func:`advmri.util.provenance.machine`): the clean
# forward pass agrees to ~1e-6, but ten normalised gradient steps amplify last-bit differences of the CPU's kernels
# (measured, issue 21: most boxes within 1e-6, box MSE up to 0.7% apart at eps 0.02, and a rare box whose
# optimisation takes another branch: the authors' update at eps 0.02, one U-Net box of 279, box MSE 0.053 -> 0.090).
# So on another machine the PGA rows are compared as a group: they pass when the median relative box-MSE difference
# is below this (a real change, other weights, code or data, moves box MSE by percent on most boxes); the clean
# rows (eps 0) and the rotation rows stay strict (TOLERANCE). Single PGA rows are checked only on the same machine.
# bfloat16 autocast (precision: bf16) runs differ across CPUs even at eps 0 (measured: the VarNet's clean box MSE up
# to 2.8% apart, median 0.5%, the CPUs' bf16 kernels differ): on another machine all their rows go by the median.
PGA_MEDIAN = 1e-2
# bf16 runs on another machine: measured 2026-12-02 on an AMD EPYC against tables computed on Intel Xeon (AMX bf16):
# the VarNet's clean reconstruction (eps 0, no PGA) 1.2% apart in median box MSE, PGA rows 0.8-1.0%, single boxes up
# to 4%; other CPU vendors' bf16 kernels accumulate differently. Their group check uses this bound instead.
BF16_MEDIAN = 3e-2
KEY = ["file", "slice", "bx", "by", "bw", "bh", "param", "kind", "draw"]
RUN_KEYS = {"out", "smoke", "notebook"}


class CacheMismatch(UserError):
    """A committed result could not be reproduced within :data:`TOLERANCE`."""

    fix = (
        "The code, data or model changed since the run was computed: recompute it "
        "(`python -m advmri.app.pipeline --fresh`, or the sweep with `--fresh`), or restore what changed."
    )


def run_of(folder: Path) -> AttackRun:
    """The :class:`AttackRun` of a sweep run folder, from its ``params.json`` (the papermill parameters)."""
    p = RunRecord(folder).read_params()
    attack = "rotation" if "04_rotation" in str(p.get("notebook", "")) else "noise"
    return AttackRun.from_params(attack, **{k: v for k, v in p.items() if k not in RUN_KEYS})


def choose_passes(
    n_passes: int, k: int | str, seed: int, run_id: str, cover: list[list[float]] | None = None
) -> list[int]:
    """``k`` distinct pass numbers in ``[0, n_passes)`` (``'all'``: every pass), seeded by ``seed`` and the run
    id; with ``cover`` (the parameters each pass computes, e.g. its eps values), more passes in the same seeded
    order until every parameter of the run is in at least one chosen pass (every row type gets checked)."""
    if k == "all":
        return list(range(n_passes))
    rng = np.random.default_rng([seed, zlib.crc32(run_id.encode())])
    order = [int(i) for i in rng.permutation(n_passes)]
    chosen = order[: min(int(k), n_passes)]
    if cover:
        need = set().union(*map(set, cover)) - set().union(*(set(cover[i]) for i in chosen))
        for i in order[len(chosen) :]:
            if not need:
                break
            if need & set(cover[i]):
                chosen.append(i)
                need -= set(cover[i])
    return sorted(chosen)


def parse_passes(v: int | str) -> int | str:
    """``--verify`` value: a count >= 0 or ``all``."""
    if str(v).strip().lower() == "all":
        return "all"
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise UserError(f"verify: {v!r} is not a number of passes or 'all'") from None
    if n < 0:
        raise UserError(f"verify: {n} passes; use 0 (off), a positive count or 'all'")
    return n


def pga_rows(df: pd.DataFrame) -> np.ndarray:
    """Rows that depend on the noise PGA's result (eps > 0: the adversarial rows, and the control, whose norms are
    the adversarial noise's): those whose rounding the optimiser amplifies."""
    return ((df["attack"] == "noise") & (df["param"] > 0)).to_numpy()


def compare(
    got: pd.DataFrame, table: pd.DataFrame, metrics=METRICS, cross_machine: bool = False, bf16: bool = False
) -> pd.DataFrame:
    """Rows of ``got`` joined to ``table`` on :data:`KEY`; columns ``<m>`` (table), ``<m>_new`` and
    ``bad`` (any metric outside :data:`TOLERANCE`, or the row missing from the table; with ``cross_machine``, the
    PGA rows (:func:`pga_rows`; every row of a ``bf16`` run) are bad together when their median relative box-MSE
    difference exceeds :data:`PGA_MEDIAN`, :data:`BF16_MEDIAN` for a bf16 run)."""
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
        if np.nanmedian(rel) > (BF16_MEDIAN if bf16 else PGA_MEDIAN):
            bad |= loose
    m["bad"] = bad
    return m


def check_weights(folder: Path, now: str | None) -> None:
    """The checkpoint the run loads now is the file it was computed with (sha256 of the file itself, recorded in
    ``results.meta.json``), else one line."""
    rec = RunRecord(folder)
    try:
        recorded = rec.read_meta().get("model_sha256")
    except (OSError, ValueError):
        raise CacheMismatch(f"{rec.meta}: unreadable run metadata") from None
    if recorded and now and recorded != now:
        raise CacheMismatch(
            f"{rec.table}: computed with another checkpoint file (sha256 "
            f"{recorded[:12]}, the file now {now[:12]}): the weights were replaced; re-run the sweep "
            "to recompute with them, or restore the checkpoint"
        )


def verify_run(folder: str | Path, passes: int | str = 1, seed: int = 0, log=print) -> dict:
    """Recompute ``passes`` seeded passes of the run in ``folder`` (``'all'``: every pass; otherwise at least
    enough to cover every row type, :func:`choose_passes`) and compare with its ``results.csv``.
    Returns a report with the coverage; raises :class:`CacheMismatch` (one line naming the file, box and metric) on a
    difference beyond :data:`TOLERANCE`."""
    folder = Path(folder)
    rec = RunRecord(folder)
    run = run_of(folder)
    table_sha256 = table_digest(rec.table)[0]  # what was verified (a caller reusing the report compares it)
    table = rec.read_table()
    if table.empty:
        raise CacheMismatch(f"{rec.table}: empty table")
    _, dry = execute(run, progress=False, subset=[])  # loads model and data, counts the passes, computes nothing
    check_weights(folder, dry.get("model_sha256"))
    n = dry["passes"]
    chosen = choose_passes(n, passes, seed, folder.name, cover=dry.get("pass_params"))
    # rotation: sampled boxes at their recorded angles (the passes holding them); 'all': the whole search again
    got, extras = execute(run, progress=False, subset=chosen, recorded=None if passes == "all" else table)
    recorded = (rec.read_status() or {}).get("machine")
    cross = recorded != machine()  # unknown (recorded before machines were) counts as another machine
    m = compare(got, table, cross_machine=cross, bf16=run.precision == "bf16")
    report = dict(
        run=folder.name,
        passes=chosen,
        of=n,
        rows=len(m),
        seconds=round(extras["seconds"], 1),
        coverage=round(len(chosen) / max(n, 1), 4),
        max_rel_box_mse=float(np.nanmax(np.abs(m["box_mse_new"] / m["box_mse"] - 1))) if len(m) else None,
    )
    if m["bad"].any():
        r = m[m["bad"]].iloc[0]
        diffs = [
            f"{c} {r[c]:.6g} -> {r[c + '_new']:.6g}"
            for c in METRICS
            if not np.isclose(r[f"{c}_new"], r[c], equal_nan=True, **TOLERANCE)
        ]
        raise CacheMismatch(
            f"{rec.table}: committed result not reproduced ({int(m['bad'].sum())} of {len(m)} recomputed "
            f"rows differ; e.g. {r['file']} slice {r['slice']} box {r['bx']},{r['by']} {r['kind']} param {r['param']}: "
            f"{'; '.join(diffs) or 'row missing from the table'}); the code, data or model changed since it was "
            "computed: recompute with python -m advmri.app.pipeline --fresh"
        )
    report["cross_machine"] = cross
    report["table_sha256"] = table_sha256
    shown = chosen if len(chosen) <= 8 else f"{chosen[:8]}..."
    log(
        f"  {folder.name}: verified {len(chosen)} of {n} passes ({100 * len(chosen) / max(n, 1):.0f}%; {len(m)} rows, "
        f"pass(es) {shown}; {report['seconds']} s"
        f"{f'; computed on another machine: PGA rows by their median, within {PGA_MEDIAN:g}' if cross else ''})"
    )
    return report


def code_path(run: AttackRun) -> tuple:
    """What decides which code a run executes (and with which model and data): attack, model, data, precision,
    target, loss, region, update rule, restarts / momentum / mask draws used or not, a random control or not,
    interpolation. Runs that differ only in numbers (budgets, steps, step size, boxes, acceleration, seed) share it."""
    d = run.as_dict()
    c = d["noise"] or d["rotation"]
    return (
        run.attack,
        run.model,
        run.data,
        run.precision,
        c.get("update"),
        c.get("target", "clean"),
        c.get("loss"),
        c.get("region"),
        bool(c.get("restarts")),
        bool(c.get("momentum")),
        bool(c.get("mask_draws")),
        c.get("random_draws", 0) > 0,
        c.get("interpolation"),
    )


# the parts of :func:`code_path` after (attack, model, data, precision), by name: :func:`features`
FEATURE_NAMES = ("update", "target", "loss", "region", "restarts", "momentum", "mask_draws", "random_control", "interp")


def features(run: AttackRun, sweep: str | None = None) -> set[tuple]:
    """The code features a run exercises: its inputs (attack, model, precision, data folder: the forward and
    gradient code of that model on that data), each option of :func:`code_path` by name (``(attack, name, value)``:
    e.g. the healthy-twin target, the authors' update, restarts) and, with ``sweep``, its sweep (so that every
    sweep has a recomputed run). :func:`choose_cover` picks runs until every feature of every run is covered."""
    path = code_path(run)
    out: set[tuple] = {("inputs", run.attack, run.model, run.precision, run.data)}
    out |= {(run.attack, n, v) for n, v in zip(FEATURE_NAMES, path[4:], strict=True) if v is not None}
    return out | ({("sweep", sweep)} if sweep else set())


def pass_cost(folder: Path) -> float:
    """The estimated seconds of one verification pass of the run in ``folder``: its recorded seconds per box
    (a pass recomputes one box, or a few items of one; infinite when unrecorded)."""
    rec = RunRecord(Path(folder))
    seconds = (rec.read_status() or {}).get("seconds")
    table = rec.read_table()
    boxes = len(table[["file", "slice", "bx", "by"]].drop_duplicates()) if len(table) else 0
    return float(seconds) / boxes if seconds and boxes else float("inf")


def choose_cover(folders: list[Path], seed: int = 0, sweeps: bool = True) -> list[Path]:
    """The cheapest runs (greedy weighted set cover, :func:`pass_cost` per new :func:`features`; ties in a seeded
    order) whose recomputation covers every feature of every run in ``folders`` (with ``sweeps``, every sweep
    folder ``results/<sweep>/`` too), in the given order. Each feature value is checked at least once, at the
    smallest cost; :func:`choose_runs` checks every combination (one run per :func:`code_path`) instead."""
    folders = [Path(f) for f in folders]
    feats = {f: features(run_of(f), f.parent.name if sweeps else None) for f in folders}
    cost = {f: pass_cost(f) for f in folders}
    rng = np.random.default_rng([seed, 3])
    rank = {f: int(i) for f, i in zip(folders, rng.permutation(len(folders)), strict=True)}
    need = set().union(*feats.values()) if feats else set()
    chosen: set[Path] = set()
    while need:
        best = min(
            (f for f in folders if feats[f] & need),
            key=lambda f: (cost[f] / len(feats[f] & need), rank[f]),
        )
        chosen.add(best)
        need -= feats[best]
    return [f for f in folders if f in chosen]


def bf16_units(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``). Without
    them torch emulates bf16 autocast, and a VarNet pass of a ``precision: bf16`` run takes minutes instead of
    seconds (measured 2026-12-02 on an AVX2-only AMD EPYC: one pass of a paper VarNet run, 463 s)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return True  # unknown: assume it is fast rather than skip a check
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def defer_emulated(folders: list[Path], native: bool | None = None) -> tuple[list[Path], list[Path]]:
    """``(recompute, deferred)``: the CPU runs in ``precision: bf16`` are deferred when this CPU has no bf16 units
    (:func:`bf16_units`); the caller says so (their tables' sha256 are still checked), and ``--verify-runs all``
    recomputes them anyway."""
    if native if native is not None else bf16_units():
        return list(folders), []
    slow = [f for f in folders if (r := run_of(Path(f))).precision == "bf16" and r.device == "cpu"]
    return [f for f in folders if f not in slow], slow


def choose_runs(folders: list[Path], seed: int = 0) -> list[Path]:
    """One run folder per :func:`code_path` (seeded choice among the runs that share it), in the given order."""
    groups: dict[tuple, list[Path]] = {}
    for f in folders:
        groups.setdefault(code_path(run_of(Path(f))), []).append(Path(f))
    chosen = set()
    for key, members in groups.items():
        rng = np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
        chosen.add(members[int(rng.integers(len(members)))])
    return [Path(f) for f in folders if Path(f) in chosen]


def _verify_one(args: tuple) -> dict:
    folder, passes, seed = args
    import torch

    torch.set_num_threads(1)  # each worker one core; the run's own thread count is set by execute
    return verify_run(folder, passes, seed, log=lambda *a, **k: None)


def verify_many(
    folders: list[Path], passes: int | str = 1, seed: int = 0, jobs: int | None = None, log=print
) -> dict[str, dict]:
    """:func:`verify_run` of every folder, ``jobs`` at a time in separate processes (default: the cores this
    process may use), the longest first (:func:`pass_cost`, so that no long run is left for the end while the other
    processes idle); a line per verified run and the first mismatch raised as it is."""
    import os
    import time
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    cost = {Path(f): pass_cost(Path(f)) for f in folders}
    folders = sorted(folders, key=lambda f: (-cost[Path(f)], -RunRecord(Path(f)).table.stat().st_size))
    jobs = max(1, min(jobs or len(os.sched_getaffinity(0)), len(folders)))
    reports: dict[str, dict] = {}
    if jobs == 1 or len(folders) <= 1:
        for f in folders:
            reports[Path(f).name] = verify_run(f, passes, seed, log=log)
        return reports
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_verify_one, (str(f), passes, seed)): Path(f) for f in folders}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=10, return_when=FIRST_COMPLETED)
            for fut in done:
                f = futures[fut]
                try:
                    rep = fut.result()
                except BaseException:
                    for other in pending:
                        other.cancel()
                    raise
                reports[f.name] = rep
                log(
                    f"  [{len(reports)}/{len(folders)}] {f.name}: verified {len(rep['passes'])} of {rep['of']} passes "
                    f"({rep['rows']} rows, {rep['seconds']} s{', other machine' if rep.get('cross_machine') else ''})"
                )
            if not done and pending:  # a line at least every 10 s
                el = time.perf_counter() - t0
                eta = f", about {_left(el, cost, folders, reports):.0f} s left" if reports else ""
                log(
                    f"  verifying: {len(reports)}/{len(folders)} runs done, {min(jobs, len(pending))} running "
                    f"({el:.0f} s{eta})"
                )
    return reports


def _left(elapsed: float, cost: dict[Path, float], folders: list[Path], reports: dict[str, dict]) -> float:
    """Seconds left, from the estimated cost (:func:`pass_cost`) of the runs done and of those not yet done."""
    finite = {f: c for f, c in cost.items() if np.isfinite(c)}
    fallback = float(np.mean(list(finite.values()))) if finite else 1.0
    c = {Path(f): finite.get(Path(f), fallback) for f in folders}
    done = sum(c[Path(f)] for f in folders if Path(f).name in reports)
    return elapsed * (sum(c.values()) - done) / max(done, 1e-9)


@cli
def main(argv: list[str] | None = None) -> int:
    """``python -m advmri.experiments.verify FOLDER... [--passes N|all] [--seed S]``: recompute and compare, print
    what was checked; exit 0 when every run reproduces, 2 (one line) at the first that does not."""
    import argparse

    ap = argparse.ArgumentParser(
        prog=prog("advmri.experiments.verify"), description=(main.__doc__ or "").split(":", 1)[-1].strip()
    )
    ap.add_argument("folders", nargs="+", help="run folders (with params.json, results.csv, status.json)")
    ap.add_argument("--passes", default="1", help="passes per run: N (at least one per row type) or all")
    ap.add_argument("--seed", type=int, default=0, help="seed of the pass choice")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    a = ap.parse_args(argv)
    passes = parse_passes(a.passes)
    done = total = 0
    for f in a.folders:
        folder, rec = Path(f), RunRecord(Path(f))
        if not rec.params_path.is_file() or not rec.table.is_file():
            raise UserError(f"{folder}: not a run folder (needs params.json and results.csv)")
        rep = verify_run(folder, passes, a.seed)
        done, total = done + len(rep["passes"]), total + rep["of"]
    print(f"verified {len(a.folders)} run(s): {done} of {total} passes ({100 * done / max(total, 1):.0f}%)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
