"""Recompute the random control of committed noise runs, reusing their adversarial rows where exact.

``python -m advmri.experiments.recontrol results/paper/noise-* [--allow-dirty]``

Issue 21 moved the random control onto the sampled columns (:func:`advmri.attacks.noise.control_noise`): the
adversarial rows of a run do not change, its random rows do. For each run folder this recomputes the run with
:func:`advmri.experiments.run.execute` and ``reuse`` (:class:`advmri.experiments.run.Reuse`): a pass whose adversarial
noise is known without the PGA (``update: ours``, no restarts or mask draws, every item on its budget sphere, rows
from a clean tree) keeps its adversarial rows and stored reconstructions and computes only the control; every other
pass is recomputed in full, and its adversarial rows must agree with the table's within
:data:`advmri.experiments.verify.TOLERANCE` (on another machine than the table's, the PGA rows by their median,
:data:`advmri.experiments.verify.PGA_MEDIAN`). The folder's
table, metadata, reconstruction store and status are then replaced atomically; ``status.json`` records how
many passes were reused and recomputed and the largest difference found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from advmri.experiments import recons
from advmri.experiments.record import RunRecord
from advmri.experiments.run import CONTROL_COLUMNS, METRICS, Reuse, execute, write_meta, write_table
from advmri.experiments.verify import CacheMismatch, compare, run_of
from advmri.util.errors import UserError, cli, prog
from advmri.util.provenance import machine, require_clean


def recontrol(folder: str | Path, log=print, allow_dirty: bool = False) -> dict:
    """Recompute the control of the noise run in ``folder`` in place; returns its ``status.json``."""
    folder = Path(folder)
    rec = RunRecord(folder)
    version = require_clean(allow_dirty, f"{folder}: recontrol")
    st = rec.read_status()
    if not folder.name.startswith("noise-") or st is None or st.get("status") != "ok":
        raise UserError(f"{folder}: not a completed noise run (status.json)")
    run = run_of(folder)
    t0 = time.perf_counter()
    reuse = Reuse(pd.read_csv(rec.table))  # not read_table: a table from before the fair control has no control columns
    store = recons.store_path(rec.table)
    old_store = recons.load(store) if store.is_file() else None
    df, extras = execute(run, progress=False, keep_images=True, reuse=reuse)
    report = dict(reuse.report(), **_agreement(reuse, st, bf16=run.precision == "bf16"))
    if len(df) != len(reuse.table) or report["adversarial_rows_differing"]:
        rejected = write_table(df, rec.rejected)
        raise CacheMismatch(
            f"{rec.table}: {report['adversarial_rows_differing']} recomputed adversarial "
            f"rows differ from the table beyond the tolerance ({len(df)} vs {len(reuse.table)} rows; "
            f"the new table is in {rejected}): recompute the run in full"
        )
    table = write_table(df, rec.table)
    extras["recontrol"] = report
    write_meta(table, run, extras)
    if old_store is not None or not report["passes_reused"]:  # (the beyond sweep keeps no stores in git)
        recons.save(store, extras, run.as_dict(), df.model.iloc[0], df.config.iloc[0], version, fallback=old_store)
    # the machine of the adversarial rows: this one only when none was reused (verify's tolerance depends on it)
    status = dict(
        run_id=run.id,
        code_version=version,
        machine=st.get("machine") if report["passes_reused"] else machine(),
        control_machine=machine(),
        status="ok",
        **rec.record_table(),
        seconds=st.get("seconds"),
        recontrol=dict(
            report, seconds=round(time.perf_counter() - t0, 2), adversarial_from=sorted(set(reuse.table.code_version))
        ),
    )
    rec.write_status(status)
    log(
        f"  {folder.name}: {report['passes_reused']} passes reused, {report['passes_recomputed']} recomputed "
        f"(adversarial rows: max rel. box MSE difference {report['max_rel_box_mse']:.2g}), "
        f"{status['recontrol']['seconds']} s"
    )
    return status


def _agreement(reuse: Reuse, status: dict, bf16: bool = False) -> dict:
    """How the recomputed passes' adversarial rows compare with the table's (:func:`advmri.experiments.verify.compare`;
    PGA rows by their median, :data:`advmri.experiments.verify.PGA_MEDIAN`, when the table was computed on another
    machine)."""
    if not reuse.recomputed_rows:
        return dict(adversarial_rows_compared=0, adversarial_rows_differing=0, max_rel_box_mse=0.0, cross_machine=None)
    cross = status.get("machine") != machine()
    earlier = [c for c in METRICS if c not in CONTROL_COLUMNS]  # the metrics a pre-fix table has
    m = compare(pd.DataFrame(reuse.recomputed_rows), reuse.table, metrics=earlier, cross_machine=cross, bf16=bf16)
    rel = (m["box_mse_new"] / m["box_mse"] - 1).abs()
    return dict(
        adversarial_rows_compared=len(m),
        adversarial_rows_differing=int(m["bad"].sum()),
        max_rel_box_mse=float(rel.max()),
        max_abs_box_ssim=float((m["box_ssim_new"] - m["box_ssim"]).abs().max()),
        cross_machine=cross,
    )


def accept_rejected(folder: str | Path, log=print, allow_dirty: bool = False) -> dict:
    """Accept the ``results.recontrol-rejected.csv`` an earlier :func:`recontrol` left (a complete recomputation of
    the run's control) when it agrees with the table under the current :func:`advmri.experiments.verify.compare`: it
    replaces ``results.csv``; the metadata is the earlier one with this code version; a reconstruction store, which the
    rejected run did not write, is removed rather than left stale. Returns the new ``status.json``."""
    folder = Path(folder)
    rec = RunRecord(folder)
    version = require_clean(allow_dirty, f"{folder}: recontrol --accept-rejected")
    rejected, st = rec.rejected, rec.read_status()
    if not rejected.is_file() or st is None:
        raise UserError(f"{folder}: no results.recontrol-rejected.csv (or status.json) to accept")
    run, old, new = run_of(folder), pd.read_csv(rec.table), pd.read_csv(rejected)
    earlier = [c for c in METRICS if c not in CONTROL_COLUMNS]
    m = compare(
        new[new.kind == "adversarial"],
        old,
        metrics=earlier,
        cross_machine=st.get("machine") != machine(),
        bf16=run.precision == "bf16",
    )
    if len(new) != len(old) or m["bad"].any():
        raise CacheMismatch(
            f"{rejected}: {int(m['bad'].sum())} adversarial rows differ from {rec.table} "
            "beyond the tolerance: recompute the run in full"
        )
    table = write_table(new, rec.table)
    meta = rec.read_meta(required=True)
    rel = (m["box_mse_new"] / m["box_mse"] - 1).abs()
    report = dict(accepted_from=rejected.name, adversarial_rows_compared=len(m), max_rel_box_mse=float(rel.max()))
    meta.update(code_version=version, recontrol=report)
    rec.write_meta(meta)
    recons.store_path(table).unlink(missing_ok=True)
    status = dict(
        run_id=run.id,
        code_version=version,
        machine=None,
        control_machine=machine(),
        status="ok",
        **rec.record_table(),
        seconds=st.get("seconds"),
        recontrol=report,
    )
    rec.write_status(status)
    rejected.unlink()
    log(
        f"  {folder.name}: accepted the recomputed control (adversarial rows: max rel. box MSE difference "
        f"{report['max_rel_box_mse']:.2g})"
    )
    return status


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog("advmri.experiments.recontrol"), description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="noise run folders (results/<sweep>/noise-*)")
    ap.add_argument("--allow-dirty", action="store_true", help="record results from a tree with uncommitted changes")
    ap.add_argument(
        "--accept-rejected",
        action="store_true",
        help="accept a results.recontrol-rejected.csv that agrees under the current tolerance",
    )
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    a = ap.parse_args(argv)
    failed = []
    for f in a.folders:  # one folder's failure leaves the others to do
        try:
            (accept_rejected if a.accept_rejected else recontrol)(f, allow_dirty=a.allow_dirty)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            failed.append(f)
    if failed:
        print(f"error: {len(failed)} of {len(a.folders)} folders not recomputed: {' '.join(failed)}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
