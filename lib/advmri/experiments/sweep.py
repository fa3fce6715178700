"""Papermill sweeps: ``python -m advmri.experiments.sweep sweeps/paper.yaml [--jobs N] [--device cuda]``.

A sweep YAML names the notebooks per attack, a grid (every combination of the listed values; a list of
grids: the runs of each)
and common / per-attack parameters. Every run gets a deterministic id (hash of its parameters)
and a folder ``results/<sweep>/<run-id>/`` with ``params.json``, the executed ``notebook.ipynb``,
the result table ``results.csv`` and ``status.json`` (ok/failed, error, seconds, code version).

* the config is validated first (unknown keys with the closest valid name, parameter ranges);
* completed runs are skipped (status ok, and ``results.csv`` has the sha256 recorded in ``status.json``;
  a table changed or truncated since is re-run): a second invocation resumes;
* a failed run is recorded and reported, the other runs go on; the next invocation redoes it;
* ``--jobs N`` runs N notebooks in parallel (each in its own kernel);
* one sweep at a time per results folder (``.sweep.lock``, :class:`advmri.util.locks.Lock`, removed on exit);
* ``shards: N`` splits every run's boxes into N contiguous parts, one run each;
* ``--engine dask --scheduler tcp://HOST:PORT`` runs each run as a task on a Dask cluster,
  ``--engine dask-local --jobs N`` on a ``LocalCluster``, ``--engine slurm --jobs N --partition P`` on N SLURM
  jobs (:mod:`advmri.experiments.slurm`: resources from the ``slurm:`` block of the sweep YAML or the command line,
  TLS).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from advmri.experiments.record import STATUS, RunRecord
from advmri.experiments.record import table_digest as table_digest  # re-exported: callers import it from here
from advmri.util import locks
from advmri.util.atomic import write_text
from advmri.util.errors import (
    UserError,
    check_choice,
    check_range,
    cli,
    did_you_mean,
    prog,
    unknown_keys,
)
from advmri.util.paths import project_path
from advmri.util.provenance import ROOT, code_version, machine, require_clean, run_id
from advmri.util.schema import option

if TYPE_CHECKING:
    from advmri.experiments.slurm import SlurmConfig


class SweepError(UserError):
    """A sweep file is missing or malformed. The message names the file."""

    fix = "Fix the named sweep file or key (the message gives the closest valid name), or the engine options it names."


@dataclass
class Run:
    id: str
    notebook: Path
    params: dict
    folder: Path


VERIFY_HELP = (
    "N or all: before reusing a completed run, recompute N seeded passes of it (at least one per row type; all: "
    "every pass) and stop if they differ (advmri.experiments.verify; 0: trust the recorded sha256 only)"
)


@dataclass(frozen=True)
class SweepOptions:
    """The options of ``advmri sweep`` that the main job (``advmri pipeline``) shares, declared once: both CLIs are
    generated from this schema (:func:`advmri.util.schema.add_arguments`). The main job overrides one default, that
    of ``verify`` (it recomputes one seeded pass of the reused runs; the sweep alone trusts the recorded sha256)."""

    verify: str = option("0", VERIFY_HELP)
    verify_runs: str = option(
        "cover",
        "which reused runs --verify recomputes (every table's sha256 is checked): cover, the cheapest runs that "
        "together exercise every feature (each model on each data set, each target, update rule and option, each "
        "sweep); paths, one per code path (every combination of them); or all",
        choices=("cover", "paths", "all"),
    )
    allow_dirty: bool = option(False, "record runs into results/ from a tree with uncommitted changes (stamped +dirty)")
    fresh: bool = option(
        False,
        "recompute every attack run (the main job: also the model quality table); complete results are kept aside "
        "and put back unless the new ones complete; asks first",
    )
    yes: bool = option(False, "do not ask before --fresh replaces complete results")


SWEEP_KEYS = ("name", "notebooks", "grid", "common", "per_attack", "description", "shards", "exclude", "slurm")
RESERVED = ("out", "shard", "shards")  # set by the sweep itself


def notebook_parameters(nb: Path) -> set[str]:
    """Names in a notebook's papermill ``parameters`` cell (the one source of truth for its parameters)."""
    import papermill as pm

    return set(pm.inspect_notebook(str(nb)))


def _notebook(path: Path, attack: str, rel: str) -> Path:
    nb = project_path(rel)
    try:
        nb.resolve().relative_to(ROOT)
    except ValueError:
        raise SweepError(f"{path}: notebooks.{attack}: {rel} is outside the project ({ROOT})") from None
    if not nb.is_file():
        raise SweepError(f"{path}: notebooks.{attack}: {nb} not found")
    return nb


def _read_spec(path: Path) -> dict:
    """The sweep YAML as a mapping with the required keys (name, notebooks, grid), else one line naming the file."""
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SweepError(f"{path}: cannot read sweep file ({' '.join(str(e).split())})") from e
    for key in ("name", "notebooks", "grid"):
        if not isinstance(spec, dict) or key not in spec:
            raise SweepError(f"{path}: missing key {key!r} (need name, notebooks, grid)")
    return spec


def _check_keys(spec: dict, path: Path) -> tuple[list[dict], dict[str, Path], dict[str, set[str]]]:
    """``(grids, notebook per attack, parameter names per attack)``; unknown sections and keys are refused with the
    closest valid name (the parameter names are those of each notebook's ``parameters`` cell)."""
    try:
        unknown_keys(spec, SWEEP_KEYS, f"{path}")
        grid, notebooks = spec["grid"], spec["notebooks"]
        grids = grid if isinstance(grid, list) else [grid]  # several grids: their runs together
        if not grids or not all(isinstance(g, dict) for g in grids) or not isinstance(notebooks, dict):
            raise SweepError(f"{path}: grid must be a mapping (or a list of mappings) and notebooks a mapping")
        if not all("attack" in g for g in grids):
            raise SweepError(f"{path}: grid must list 'attack'" + (" (in every grid)" if len(grids) > 1 else ""))
        per_attack = spec.get("per_attack") or {}
        unknown_keys(per_attack, notebooks, f"{path}: per_attack")
        nbs = {a: _notebook(path, a, rel) for a, rel in notebooks.items()}
        names = {a: notebook_parameters(nb) for a, nb in nbs.items()}
        all_names = set().union(*names.values()) | {"attack"}
        for g in grids:
            unknown_keys(g, all_names - set(RESERVED), f"{path}: grid")
        unknown_keys(spec.get("common") or {}, all_names - {"attack", *RESERVED}, f"{path}: common")
        for a, d in per_attack.items():
            unknown_keys(d or {}, names[a] - set(RESERVED), f"{path}: per_attack.{a}")
    except UserError as e:
        raise e if isinstance(e, SweepError) else SweepError(str(e)) from e
    return grids, nbs, names


def _shards_and_exclude(spec: dict, path: Path, grids: list[dict]) -> tuple[int, list[dict]]:
    """The validated ``shards`` (default 1) and ``exclude`` (grid points left out) of the sweep."""
    shards = spec.get("shards", 1)
    try:
        check_range("shards", shards, lo=1, integer=True)
    except UserError as e:
        raise SweepError(f"{path}: {e}") from e
    exclude = spec.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(e, dict) and e for e in exclude):
        raise SweepError(
            f"{path}: exclude must be a list of mappings (grid key: value), e.g. "
            "[{update: reference, acceleration: 4}]"
        )
    try:
        for ex in exclude:
            unknown_keys(ex, set().union(*grids), f"{path}: exclude")
    except UserError as e:
        raise SweepError(str(e)) from e
    return shards, exclude


@dataclass
class _Expansion:
    """What every run of a sweep is made from: the validated YAML, its notebooks and their parameter names."""

    path: Path
    spec: dict
    notebooks: dict[str, Path]
    names: dict[str, set[str]]
    shards: int
    results: str | Path
    overrides: dict | None
    checked: dict = field(default_factory=dict)  # data checks already made, by (data, annotations, labels, ...)


def _run_params(x: _Expansion, point: dict, shard: int) -> tuple[str, dict, str]:
    """``(attack, notebook parameters, shard part of the id)`` of one grid point: common, then per-attack
    values, then the point, then the overrides; keys the attack's notebook does not have are dropped."""
    p = dict(point)
    attack = p.pop("attack")
    notebooks = x.spec["notebooks"]
    if attack not in notebooks:
        raise SweepError(f"{x.path}: no notebook for attack {attack!r}{did_you_mean(str(attack), notebooks)}")
    params = dict(x.spec.get("common") or {})
    params.update((x.spec.get("per_attack") or {}).get(attack, {}) or {})
    params.update(p)
    params.update(x.overrides or {})
    params = {k: v for k, v in params.items() if k in x.names[attack]}  # common keys of the other notebook
    part = ""
    if x.shards > 1:  # one run per shard of the targets: resumed, failed and analysed per shard
        params.update(shard=shard, shards=x.shards)
        part = f"s{shard}of{x.shards}-"
    return attack, params, part


def _run_id(x: _Expansion, attack: str, params: dict, part: str) -> str:
    """The run's id ``<attack>-<model>-<acc>x-[<shard>-]<hash>``; an attack run's inputs are checked first."""
    from advmri.experiments.run import AttackRun

    ident = dict(params, attack=attack)
    name = Path(str(params.get("model", "model"))).stem.replace("classical:", "")  # classical:cg-sense -> cg-sense
    stem = f"{attack}-{name}-{params.get('acceleration', '')}x-{part}"
    if not params.get("smoke") and attack in ("noise", "rotation"):
        try:
            run = AttackRun.from_params(attack, **{k: v for k, v in params.items() if k != "smoke"})
            run.check_inputs()
            _check_targets(run, x.checked)
        except UserError as e:
            raise SweepError(f"{x.path}: run {stem}: {e}") from e
        # the id covers every resolved parameter, defaults included: when a default changes, results
        # computed under the old one are not reused
        ident = run.as_dict()
    return stem + run_id(ident)[:8]


def _expand(x: _Expansion, point: dict, shard: int) -> Run:
    """The run of one grid point (and shard): parameters, id, folder and table path."""
    attack, params, part = _run_params(x, point, shard)
    rid = _run_id(x, attack, params, part)
    folder = project_path(x.results) / x.spec["name"] / rid
    out = RunRecord(folder).table  # relative to the project root when inside it (no machine paths committed)
    params["out"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    return Run(rid, x.notebooks[attack], params, folder)


def load_sweep(
    path: str | Path, results: str | Path = "results", overrides: dict | None = None
) -> tuple[str, list[Run]]:
    """Expand a sweep YAML into runs. ``overrides`` (e.g. ``{'device': 'cuda'}``) apply to every run.

    Validated before anything runs: unknown sections and keys are rejected with the closest valid
    name (parameter names are those of the notebook's ``parameters`` cell), and every run's values
    go through :meth:`advmri.experiments.run.AttackRun.from_params`, the same check the notebook applies.
    """
    path = project_path(path)
    spec = _read_spec(path)
    grids, nbs, names = _check_keys(spec, path)
    slurm_block(spec, path)  # validated for every engine: a typo fails now, not on the cluster
    shards, exclude = _shards_and_exclude(spec, path, grids)
    x = _Expansion(path, spec, nbs, names, shards, results, overrides)
    combos = [
        dict(zip(g, values, strict=True))
        for g in grids
        for values in itertools.product(*(v if isinstance(v, list) else [v] for v in g.values()))
    ]
    runs: list[Run] = []
    for p, shard in itertools.product(combos, range(shards)):
        if any(all(p.get(k) == v for k, v in e.items()) for e in exclude):
            continue
        run = _expand(x, p, shard)
        if any(r.id == run.id for r in runs):  # a grid key of the other attack only: the same run again
            continue
        runs.append(run)
    return spec["name"], runs


def check_space(folder: Path, runs: list[Run], todo: list[Run]) -> None:
    """Before the runs start, where their output size is predictable (completed runs of the same attack in this
    sweep): enough free space for the pending ones, else one line with the bytes needed and free."""
    from advmri.util.atomic import free_bytes

    sizes: dict[str, list[int]] = {}
    for r in runs:
        if r not in todo and r.folder.is_dir():
            sizes.setdefault(r.id.split("-")[0], []).append(
                sum(f.stat().st_size for f in r.folder.iterdir() if f.is_file())
            )
    need = sum(max(sizes.get(r.id.split("-")[0], [0])) for r in todo)
    free = free_bytes(folder)
    if need and free < need:
        raise SweepError(
            f"{folder}: {len(todo)} run(s) to do need about {need:,} bytes (as much as the completed runs "
            f"of this sweep take), {free:,} bytes free; free some space first"
        )


def _check_targets(run, checked: dict) -> None:
    """Before any run starts: the run's data has the boxes and twins it needs, and no shard is empty."""
    from advmri.experiments.run import shard_sizes

    key = (run.data, run.annotations, run.labels, run.target, run.max_targets, run.shards, run.acceleration)
    if key not in checked:
        checked[key] = shard_sizes(run)
    sizes = checked[key]
    if 0 in sizes:
        raise SweepError(
            f"shards: {run.shards} shards of {sum(sizes)} targets leave shard {sizes.index(0)} empty; "
            f"use at most {sum(sizes)} shards"
        )


def slurm_block(spec: dict, path: Path) -> SlurmConfig:
    """The sweep's ``slurm:`` block, validated by :class:`advmri.experiments.slurm.SlurmConfig` (key and value errors
    name the file and the key)."""
    from advmri.experiments.slurm import SlurmConfig
    from advmri.util.schema import from_mapping

    try:
        return from_mapping(SlurmConfig, spec.get("slurm"), f"{path}: slurm")
    except UserError as e:
        raise SweepError(str(e)) from e


def read_status(folder: Path) -> dict | None:
    """A run's ``status.json``, or None when missing or unreadable (:meth:`RunRecord.read_status`)."""
    return RunRecord(folder).read_status()


def verify_table(folder: Path) -> str | None:
    """None when the run is complete and its table is the one it wrote; else why not
    (:meth:`RunRecord.why_not_done`)."""
    return RunRecord(folder).why_not_done()


def is_done(run: Run) -> bool:
    """True when the run's table is the one it recorded and its checkpoint is the file it was computed with."""
    return verify_table(run.folder) is None and stale_model(run) is None


def stale_model(run: Run) -> str | None:
    """Why a completed run's results belong to other weights than the checkpoint now at its ``model`` path, or
    None. Compared: the sha256 of the checkpoint *file* recorded in ``results.meta.json`` against the file on disk
    now (sidecar or not); without a recorded digest, against the checkpoint's ``.sha256`` sidecar."""
    rec, model = RunRecord(run.folder), str(run.params.get("model", ""))
    if not rec.meta.is_file() or model.startswith(("official:", "classical:")):  # no weights file of ours
        return None
    from advmri.models.networks import file_sha256, recorded_sha256

    try:
        got = rec.read_meta().get("model_sha256")
    except (OSError, ValueError):
        return f"{rec.meta.name} unreadable"
    path = project_path(model)
    now = file_sha256(path) if path.is_file() else recorded_sha256(model)
    if got and now and got != now:
        return f"computed with other weights of {model} (sha256 {got[:12]}, the file now {now[:12]})"
    return None


def run_error(e: BaseException, where: Path | None = None) -> tuple[str, bool]:
    """``(one-line error, disk full?)`` of a failed run: a notebook's own exception as ``Name: message``
    (papermill's cell excerpt left out), a full disk with the path."""
    from advmri.util.atomic import disk_full, is_disk_full
    from advmri.util.errors import one_line

    ename, evalue = getattr(e, "ename", None), getattr(e, "evalue", None)
    if ename:  # papermill.PapermillExecutionError: the notebook raised
        full = ename == "DiskFullError" or "No space left on device" in str(evalue) or "errno = 28" in str(evalue)
        return f"{ename}: {' '.join(str(evalue or '').split())}"[:2000], full  # one_line of the notebook's message
    if is_disk_full(e):
        return f"DiskFullError: {one_line(disk_full(getattr(e, 'filename', None) or where or '.'))}", True
    return f"{e.__class__.__name__}: {one_line(e)}"[:2000], False


def _free_partial(folder: Path) -> None:
    """After a full disk: remove what the failed run half-wrote (its executed notebook, temporary files), so its
    status can be recorded and nothing half-written remains."""
    for f in [RunRecord(folder).notebook, *folder.glob(".*.tmp")]:
        f.unlink(missing_ok=True)


def execute_run(run: Run, kernel: str = "python3") -> dict:
    """Execute one run's notebook with papermill; never raises (the status says what happened)."""
    import papermill as pm

    from advmri.util.kernels import EncryptedKernelManager

    rec = RunRecord(run.folder)
    run.folder.mkdir(parents=True, exist_ok=True)
    rec.clear_status()  # a stale "ok" must not outlive a re-run
    t0 = time.perf_counter()
    status: dict[str, Any] = dict(run_id=run.id, code_version=code_version(), machine=machine())
    try:
        rec.write_params(dict(run.params, notebook=str(run.notebook.relative_to(ROOT))))
        pm.execute_notebook(
            str(run.notebook),
            str(rec.notebook),
            parameters=run.params,
            kernel_name=kernel,
            cwd=str(ROOT),
            progress_bar=False,
            log_output=False,
            kernel_manager_class=EncryptedKernelManager,
        )
        if not rec.table.is_file():
            raise RuntimeError(f"notebook finished without writing {rec.table.name}")
        status.update(status="ok", **rec.record_table())
    except Exception as e:  # a failed run is recorded, the sweep goes on
        if INTERRUPTED.is_set():  # Ctrl-C: the kernel was interrupted, not the run's fault
            status.update(status="interrupted", error="interrupted by the user (Ctrl-C); the next call redoes it")
        else:
            error, full = run_error(e, rec.notebook)
            status.update(status="failed", error=error, traceback=traceback.format_exc()[-4000:])
            if full:
                status["disk_full"] = True
                QUEUE_STOPPED.set()  # set here, in the worker: no queued run may start after this one
                _free_partial(run.folder)
                rec.table.unlink(missing_ok=True)  # no table without its metadata
    status["seconds"] = round(time.perf_counter() - t0, 2)
    try:
        rec.write_status(status)
    except OSError as e:  # even the status does not fit: the run is not done, the next call redoes it
        status["error"] = status.get("error") or f"{rec.status_path}: {e}"
    return status


def lock_for(folder: Path) -> locks.Lock:
    """The sweep folder's :class:`advmri.util.locks.Lock` (``.sweep.lock``; one sweep per folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    return locks.Lock(folder / ".sweep.lock")


ENGINES = ("threads", "dask", "dask-local", "slurm")
INTERRUPTED = threading.Event()  # set on Ctrl-C: runs stopped now are recorded "interrupted", not "failed"
QUEUE_STOPPED = threading.Event()  # set when the disk is full: the queued runs are not started


def _queued_run(run: Run) -> dict:
    """:func:`execute_run` unless the sweep was interrupted or the disk filled meanwhile (a worker thread takes
    the next run as soon as it is free, before the main thread could cancel it)."""
    if INTERRUPTED.is_set() or QUEUE_STOPPED.is_set():
        why = "interrupted" if INTERRUPTED.is_set() else "the disk is full"
        return {"run_id": run.id, "status": "not run", "error": f"not started: {why}", "seconds": None}
    return execute_run(run)


def _kernels(sig: int) -> int:
    """Send ``sig`` to the papermill kernels this process started (they run in their own session, so a
    terminal's Ctrl-C does not reach them); returns how many."""
    import psutil

    n = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                child.send_signal(sig)
                n += 1
        except psutil.Error:
            pass
    return n


def _run_threads(todo: list[Run], jobs: int, log) -> dict[str, dict]:
    """``jobs`` runs at a time on this machine. Ctrl-C: queued runs are cancelled at once, the running ones
    are interrupted at their next Python step (their kernels get SIGINT) and recorded ``interrupted``; a
    second Ctrl-C kills the kernels and exits at once (every file is written atomically: nothing is
    half-written, and the unfinished runs resume on the next call)."""
    import signal
    from concurrent.futures import as_completed, wait

    out: dict[str, dict] = {}
    ex = ThreadPoolExecutor(max_workers=jobs)
    QUEUE_STOPPED.clear()
    futs = {ex.submit(_queued_run, r): r for r in todo}
    try:
        for fut in as_completed(futs):
            r = futs[fut]
            out[r.id] = fut.result()
            if out[r.id]["status"] != "not run":
                _log_status(log, r, out[r.id])
        not_run = [rid for rid, st in out.items() if st["status"] == "not run"]
        if not_run:
            log(
                f"  disk full: {len(not_run)} queued run(s) not run {not_run}; free space and run the sweep again "
                "(the completed ones are kept)"
            )
    except KeyboardInterrupt:
        INTERRUPTED.set()
        running = [r.id for f, r in futs.items() if f.running()]
        queued = sum(f.cancel() for f in futs)
        log(
            f"interrupted: stopping {len(running)} running run(s) {running} at their next step, {queued} queued "
            "run(s) cancelled; all of them resume on the next call (Ctrl-C again: stop at once)"
        )
        _kernels(signal.SIGINT)
        try:
            left = wait([f for f in futs if not f.cancelled()], timeout=60).not_done
            if left:  # a kernel that ignores SIGINT (stuck in native code): killed; its run resumes next time
                _kernels(signal.SIGKILL)
                wait(left, timeout=30)
        except KeyboardInterrupt:
            _kernels(signal.SIGKILL)
            print(
                "error: interrupted twice: stopped at once (unfinished runs resume on the next call)",
                file=sys.stderr,
                flush=True,
            )
            os._exit(130)
        raise
    finally:
        ex.shutdown(wait=False, cancel_futures=True)
        INTERRUPTED.clear()
    return out


POLL_S = 2.0  # how often a cluster engine looks at its workers while runs are pending


def _record_lost(run: Run, error: str) -> dict:
    """Status of a run whose worker died (the worker could not write it)."""
    status = dict(run_id=run.id, code_version=code_version(), status="failed", error=error, seconds=None)
    if not is_done(run):  # a retry elsewhere may have finished it meanwhile
        RunRecord(run.folder).write_status(status)
    return status


def _dask_client(engine: str, scheduler: str | None, workers: int, log):
    from distributed import Client, LocalCluster

    if engine == "dask":
        if not scheduler:
            raise SweepError("--engine dask needs --scheduler tcp://HOST:PORT (or use --engine dask-local)")
        try:
            client = Client(scheduler, timeout=30)
        except (OSError, ValueError, TypeError) as e:  # refused, timed out, or not an address
            raise SweepError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler there ({e})") from None
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
        client = Client(cluster)
    address = client.scheduler.address if client.scheduler is not None else scheduler  # None: not connected
    log(f"dask: scheduler {address}, dashboard {client.dashboard_link}")
    return client


def shared_folder_problem(folder: Path, token: str) -> str | None:
    """Why this host cannot use the sweep folder as the submitting host does (read the token it wrote,
    write a file), or None. Run by every cluster worker before a run."""
    import socket
    import uuid

    host = socket.gethostname()
    try:
        seen = (folder / ".sweep-token").read_text()
    except OSError as e:
        return (
            f"host {host} cannot read the results folder {folder} ({e.strerror or e}): results must be on a "
            "file system every node mounts at the same path"
        )
    if seen != token:
        return (
            f"host {host} sees another {folder} than the submitting host (a node-local folder of the same "
            "name?): results must be on a file system every node mounts at the same path"
        )
    probe = folder / f".probe-{host}-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_text(host)
        probe.unlink()
    except OSError as e:
        return f"host {host} cannot write the results folder {folder} ({e.strerror or e})"
    return None


def worker_execute(run: Run, token: str | None = None) -> dict:
    """:func:`execute_run` on a cluster worker, after checking it shares the results folder."""
    if token is not None:
        why = shared_folder_problem(run.folder.parent, token)
        if why:
            return dict(run_id=run.id, status="failed", error=why, seconds=None, unwritten=True)
    return execute_run(run)


def _log_status(log, r: Run, st: dict) -> None:
    log(
        f"  {r.id}: {st['status']} ({st.get('seconds')} s)"
        f"{'  ' + st.get('error', '')[:300] if st['status'] != 'ok' else ''}"
    )


def _run_on_dask(
    todo: list[Run], client, log, resources: dict | None = None, token: str | None = None, watch=None
) -> dict[str, dict]:
    """Each run is one task (a papermill execution on a worker; CUDA runs ask for a ``GPU`` resource).
    A task whose worker dies is retried by the scheduler on another worker; when it cannot be done,
    the run is recorded failed and the next call redoes it. Results are written atomically, so a killed
    worker leaves no half-written table. ``watch()`` is called every :data:`POLL_S` while runs are pending
    (the SLURM engine's check that workers exist)."""
    from distributed import wait
    from distributed.client import FIRST_COMPLETED

    futs = {}
    for r in todo:
        gpu = str(r.params.get("device", "cpu")).startswith("cuda")
        res = dict(resources or {}, **({"GPU": 1} if gpu else {}))
        futs[
            client.submit(
                worker_execute, r, token, key=f"advmri-run-{r.id}", pure=False, retries=1, resources=res or None
            )
        ] = r
    out: dict[str, dict] = {}
    pending = set(futs)
    while pending:
        try:
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
        except TimeoutError:
            done = set()
        except KeyboardInterrupt:
            log(
                f"interrupted: cancelling {len(pending)} unfinished run(s) on the cluster; they resume on the next call"
            )
            client.cancel(list(pending))
            raise
        for fut in done:
            r = futs[fut]
            try:
                out[r.id] = fut.result()
                if out[r.id].pop("unwritten", False):
                    _record_lost(r, out[r.id]["error"])
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker: recorded, retried on the next call
                out[r.id] = _record_lost(r, f"{e.__class__.__name__}: {' '.join(str(e).split())[:500]}")
            _log_status(log, r, out[r.id])
        if pending and watch is not None:
            watch(len(pending))
    return out


def _run_on_slurm(todo: list[Run], cfg, folder: Path, log) -> dict[str, dict]:
    """The runs on ``cfg.jobs`` SLURM jobs (:mod:`advmri.experiments.slurm`); every job is cancelled on the way out."""
    import os
    import secrets

    from distributed import Client

    from advmri.experiments import slurm

    work = folder / ".slurm"
    name = f"advmri-{folder.name}-{os.getpid()}"[:40]
    cluster = slurm.make_cluster(cfg, work, name)
    client = None
    try:
        slurm.preflight(cfg, cluster.job_script(), work)
        token = secrets.token_hex(16)
        write_text(folder / ".sweep-token", token)
        cluster.scale(jobs=cfg.jobs)
        client = Client(cluster)
        log(
            f"slurm: {cfg.jobs} job(s) submitted ({name}), scheduler {cluster.scheduler_address}"
            f"{' over TLS' if cfg.tls else ''}; waiting up to {cfg.join_timeout:.0f} s for a worker"
        )
        watch = _slurm_watch(cluster, client, cfg, name, log)
        return _run_on_dask(todo, client, log, resources={"RUN": 1}, token=token, watch=watch)
    except KeyboardInterrupt:
        log(
            f"slurm: interrupted; cancelling SLURM job(s) {', '.join(slurm.job_ids(cluster)) or name}; "
            "unfinished runs resume on the next call"
        )
        raise
    finally:
        ids = slurm.job_ids(cluster)
        if client is not None:
            client.close()
        cluster.close()
        slurm.cancel(ids, name)  # the temporary TLS credentials are deleted by dask-jobqueue itself


def _slurm_watch(cluster, client, cfg, name: str, log):
    """A ``watch`` for :func:`_run_on_dask`: lost jobs are resubmitted (the scheduler retries their run);
    no worker for ``cfg.join_timeout`` seconds stops the sweep with squeue's reasons."""
    from advmri.experiments import slurm

    state = {"seen": time.monotonic(), "any": False}

    def watch(pending: int) -> None:
        now = time.monotonic()
        if client.nthreads():
            if not state["any"]:
                log(f"slurm: worker(s) joined after {now - state['seen']:.0f} s")
            state.update(seen=now, any=True)
            return
        cluster.scale(jobs=cfg.jobs)  # a job that ended (walltime, scancel, node failure) is replaced
        if now - state["seen"] > cfg.join_timeout:
            why = slurm.pending_reasons(slurm.job_ids(cluster), name)
            raise slurm.SlurmError(
                f"no SLURM worker {'rejoined' if state['any'] else 'joined'} within {cfg.join_timeout:.0f} s "
                f"(jobs: {why}); jobs cancelled, {pending} run(s) not done: run the sweep again to resume"
            )

    return watch


BACKUP = ".fresh-backup"  # inside a sweep folder: the runs --fresh replaces, until their new results are complete


def committed_runs(runs: list[Run]) -> list[Run]:
    """The runs that have complete results now (what ``--fresh`` would replace)."""
    return [r for r in runs if verify_table(r.folder) is None]


def confirm_fresh(n: int, folder: Path, yes: bool) -> None:
    """``--fresh`` replacing ``n`` complete runs: ask on a terminal, else (or when declined) stop, unless ``yes``."""
    if not n or yes:
        return
    question = f"--fresh recomputes and replaces the results of {n} complete run(s) in {folder}"
    if not sys.stdin.isatty():
        raise SweepError(f"{question}: add --yes to confirm (no terminal to ask)")
    if input(
        f"{question}; the old ones are kept until the new ones are complete. Go on? [y/N] "
    ).strip().lower() not in ("y", "yes"):
        raise SweepError(f"{question}: not confirmed; nothing changed")


def _set_aside(runs: list[Run], folder: Path, log) -> list[Run]:
    """Move the complete runs' folders to ``folder/.fresh-backup/`` (same file system: renames) so they are
    recomputed; :func:`_restore` puts back every one whose new results are not complete."""
    moved = []
    for r in committed_runs(runs):
        dest = folder / BACKUP / r.id
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():  # an older set-aside copy that was never restored: it is the committed one
            import shutil

            shutil.rmtree(r.folder)
        else:
            os.replace(r.folder, dest)
        moved.append(r)
    if moved:
        log(
            f"  --fresh: {len(moved)} complete run(s) set aside in {folder / BACKUP} until their new results are "
            "complete"
        )
    return moved


def _restore(folder: Path, log) -> None:
    """Every set-aside run folder goes back unless a complete new one replaced it (after an interruption, a
    failure, a killed process: the next call restores too)."""
    import shutil

    base = folder / BACKUP
    if not base.is_dir():
        return
    restored = dropped = 0
    for old in sorted(p for p in base.iterdir() if p.is_dir()):
        new = folder / old.name
        if new.is_dir() and verify_table(new) is None:
            shutil.rmtree(old)
            dropped += 1
            continue
        if new.exists():
            shutil.rmtree(new)  # a half-done or failed recomputation: the committed results win
        os.replace(old, new)
        restored += 1
    shutil.rmtree(base, ignore_errors=True)
    if restored:
        log(f"  --fresh: restored {restored} run(s) whose recomputation did not complete ({dropped} replaced)")


def _engine_config(
    path, engine: str, scheduler: str | None, jobs: int | None, slurm: dict | None, overrides: dict | None
):
    """The SLURM resources (``--engine slurm``: YAML block, then command line), or None; contradictory
    engine options are refused with one line."""
    from dataclasses import replace

    from advmri.util.schema import validate

    if engine == "dask-local" and scheduler:
        raise SweepError(
            "--engine dask-local starts its own cluster: drop --scheduler, or use --engine dask "
            f"--scheduler {scheduler}"
        )
    if engine != "dask" and scheduler:
        raise SweepError(f"--scheduler applies to --engine dask only (got --engine {engine})")
    if engine == "dask" and not scheduler:
        raise SweepError("--engine dask needs --scheduler tcp://HOST:PORT (or use --engine dask-local)")
    if engine != "slurm":
        if slurm:
            raise SweepError(
                f"--{next(iter(slurm)).replace('_', '-')} applies to --engine slurm only (got --engine {engine})"
            )
        return None
    spec = yaml.safe_load(project_path(path).read_text())
    changes: dict[str, Any] = dict(slurm or {}, **({"jobs": jobs} if jobs else {}))
    cfg = replace(slurm_block(spec, project_path(path)), **changes)
    validate(cfg, "")
    return cfg.with_device((overrides or {}).get("device"))


def _checked_args(jobs: int | None, verify: int | str, engine: str) -> int | str:
    """``verify`` as passes (a count or ``all``), once ``jobs`` and ``engine`` are checked."""
    from advmri.experiments.verify import parse_passes

    if jobs is not None:
        check_range("jobs", jobs, lo=1, integer=True)
    passes = parse_passes(verify)
    check_choice("engine", engine, ENGINES)
    return passes


def _lock_sweep(folder: Path) -> locks.Lock:
    """The sweep folder's lock, held (its holder named as :mod:`advmri.util.locks` does); a second sweep on the
    folder stops at once with one line."""
    lock = lock_for(folder)
    try:
        lock.acquire(timeout=0)
    except locks.LockTimeout:
        raise SweepError(
            f"{folder}: another sweep is running on this folder ({locks.holder(folder / '.sweep')}; "
            f"lock {lock.lock_file}); wait for it to finish"
        ) from None
    try:  # the lock file is folder/.sweep.lock: its holder is named as advmri.util.locks does
        locks.claim(folder / ".sweep")
    except BaseException:
        lock.release()
        raise
    return lock


def _unlock_sweep(folder: Path, lock: locks.Lock, fresh: bool, log: Callable[[str], object]) -> None:
    """On the way out (done, failed or interrupted): the set-aside runs of ``--fresh`` back, the lock released."""
    if fresh:
        _restore(folder, log)
    locks.release(folder / ".sweep")
    lock.release()


def _pending(runs: list[Run], log: Callable[[str], object]) -> list[Run]:
    """The runs without complete results of the checkpoint now at their model path (each re-run says why)."""
    todo = []
    for r in runs:
        why = verify_table(r.folder) or stale_model(r)
        if why is not None:
            todo.append(r)
            if r.folder.is_dir() and why not in (f"no readable {STATUS}", "status 'failed'"):  # not a re-run
                log(f"  {r.id}: re-run ({why})")
    return todo


def _prepare(
    path: str | Path,
    results: str | Path,
    name: str,
    runs: list[Run],
    fresh: bool,
    allow_dirty: bool,
    log: Callable[[str], object],
) -> list[Run]:
    """With the lock held: restore an unfinished ``--fresh``, set aside the complete runs (``fresh``), refuse a
    dirty tree for the committed results; returns the runs to do (after checking there is room for them)."""
    folder = project_path(results) / name
    committed = project_path(results).resolve() == (ROOT / "results").resolve()  # the project's own results/
    _restore(folder, log)  # a --fresh of an earlier call that did not finish
    if fresh:
        if committed:
            require_clean(allow_dirty, f"{project_path(path)}: --fresh records {len(runs)} run(s) in {folder}")
        _set_aside(runs, folder, log)
    todo = _pending(runs, log)
    if todo and committed:
        require_clean(allow_dirty, f"{project_path(path)}: {len(todo)} run(s) to record in {folder}")
    log(f"sweep {name}: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run")
    check_space(folder, runs, todo)
    return todo


def _verify_sample(reused: list[Path], which: str, seed: int, plan: Collection[Path] | None) -> list[Path]:
    """The reused runs to recompute: all (``which="all"``), those of ``plan``, the cheapest covering every feature
    (``cover``, :func:`advmri.experiments.verify.choose_cover`) or one per code path (``paths``,
    :func:`advmri.experiments.verify.choose_runs`)."""
    from advmri.experiments.verify import choose_cover, choose_runs

    if which == "all":
        return reused
    if plan is not None:
        chosen = {Path(p).resolve() for p in plan}
        return [f for f in reused if Path(f).resolve() in chosen]
    return choose_cover(reused, seed) if which == "cover" else choose_runs(reused, seed)


def _still_verified(sample: list[Path], verified: dict[str, dict] | None) -> dict[str, dict]:
    """The reports of ``verified`` (resolved folder -> report) for the runs of ``sample`` whose table still has the
    sha256 that was verified, by folder name."""
    return {
        f.name: rep
        for f in sample
        if (rep := (verified or {}).get(str(Path(f).resolve())))
        and rep.get("table_sha256") == table_digest(RunRecord(f).table)[0]
    }


def _verify_reused(
    name: str,
    runs: list[Run],
    out: dict[str, dict[str, Any]],
    passes: int | str,
    seed: int,
    which: str,
    jobs: int,
    log: Callable[[str], object],
    plan: Collection[Path] | None = None,
    verified: dict[str, dict] | None = None,
) -> None:
    """Recompute ``passes`` seeded passes of the reused runs (``out``: their statuses, which get ``verified``):
    the runs of ``plan`` (chosen by the caller across several sweeps), else by ``which`` (:func:`_verify_sample`);
    :class:`advmri.experiments.verify.CacheMismatch` when they differ. ``verified``: reports the caller already has
    (resolved folder -> :func:`advmri.experiments.verify.verify_run` report), reused for a run whose table still has
    the sha256 that was verified (checked here, with the sweep's lock held)."""
    from advmri.experiments.verify import defer_emulated, verify_many

    t_verify = time.perf_counter()
    reused = [r.folder for r in runs if r.id in out]
    sample = _verify_sample(reused, which, seed, plan)
    quiet = verified is not None  # the caller verified and announced the choice (its lines came first)
    if not quiet:
        log(
            f"sweep {name}: verifying {passes} seeded pass(es) of each of {len(out)} reused runs "
            "(at least one per row type)"
        )
    if len(sample) < len(reused) and not quiet:
        how = {"cover": "every feature at least once, cheapest runs first", "paths": "one run per code path"}[which]
        log(
            f"sweep {name}: {how}{' (chosen across the sweeps of this job)' if plan is not None else ''}: "
            f"{len(sample)} of {len(reused)} reused runs recomputed (every table's sha256 is checked; "
            "--verify-runs all recomputes a pass of each)"
        )
    if which != "all":
        sample, deferred = defer_emulated(sample)
        for r in runs:
            if r.folder in deferred:
                out[r.id]["deferred"] = "bf16 emulated on this CPU"
        if deferred and not quiet:
            log(
                f"sweep {name}: {len(deferred)} bf16 code path(s) not recomputed: this CPU has no bfloat16 units, "
                "where one pass takes minutes; their tables' sha256 are checked; --verify-runs all recomputes them"
            )
    have = _still_verified(sample, verified)
    reps = have | verify_many([f for f in sample if f.name not in have], passes, seed, jobs, log=log)
    done = total = 0
    for r in runs:
        if r.folder.name in reps:
            rep = out[r.id]["verified"] = reps[r.folder.name]
            done, total = done + len(rep["passes"]), total + rep["of"]
    log(
        f"sweep {name}: verified {done} of {total} passes ({100 * done / max(total, 1):.0f}%) of "
        f"{len(reps)} of {len(out)} reused runs in {time.perf_counter() - t_verify:.0f} s"
        + (f" ({len(have)} of them verified above, their tables unchanged since)" if have else "")
        + (f"; {len(reused) - len(sample)} others: table sha256 checked" if quiet and len(sample) < len(reused) else "")
    )


def _execute(
    todo: list[Run],
    engine: str,
    scheduler: str | None,
    jobs: int,
    slurm_cfg: SlurmConfig | None,
    folder: Path,
    log: Callable[[str], object],
) -> dict[str, dict]:
    """The statuses of the runs ``todo``, executed by ``engine`` (a Dask cluster it started is closed after)."""
    if engine == "threads":
        return _run_threads(todo, jobs, log)
    if not todo:
        return {}
    if engine == "slurm":
        return _run_on_slurm(todo, slurm_cfg, folder, log)
    client = _dask_client(engine, scheduler, jobs, log)
    try:
        return _run_on_dask(todo, client, log)
    finally:
        cluster = client.cluster if engine == "dask-local" else None
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(
    path: str | Path,
    jobs: int | None = None,
    results: str | Path = "results",
    overrides: dict | None = None,
    log: Callable[[str], object] = print,
    engine: str = "threads",
    scheduler: str | None = None,
    verify: int | str = 0,
    verify_seed: int = 0,
    allow_dirty: bool = False,
    slurm: dict | None = None,
    fresh: bool = False,
    verify_runs: str = "cover",
    verify_plan: Collection[Path] | None = None,
    verified: dict[str, dict] | None = None,
) -> dict[str, dict]:
    """Run every pending run of a sweep; returns ``{run id: status}`` (skipped runs: ``skipped``).

    ``engine``: ``threads`` (``jobs`` notebooks at a time on this machine), ``dask`` (the cluster of
    ``scheduler``, e.g. ``tcp://HOST:8786`` or a ``dask-jobqueue`` SLURM cluster's address) or
    ``dask-local`` (a ``LocalCluster`` of ``jobs`` single-threaded worker processes) or ``slurm`` (``jobs``
    SLURM jobs; ``slurm``: :class:`advmri.experiments.slurm.SlurmConfig` fields over the YAML's ``slurm:`` block).
    One sweep at a time per sweep folder (a lock file); a second call while one runs stops at once.

    ``verify``: before a completed run is reused, recompute that many seeded passes of it (``jobs`` processes) and
    stop when they differ (:class:`advmri.experiments.verify.CacheMismatch`); ``verify_runs``: ``cover`` the cheapest
    runs that exercise every feature (:func:`advmri.experiments.verify.choose_cover`), ``paths`` one run per code path
    (:func:`advmri.experiments.verify.choose_runs`), ``all`` every reused run; ``verify_plan``: recompute exactly
    these run folders of it (the main job chooses them across its sweeps); ``verified``: their reports when the caller
    has already recomputed them (reused while each table keeps the verified sha256). ``fresh``: recompute every
    run; the complete ones are set aside and put back unless their new results complete (:func:`confirm_fresh`).
    Runs recorded into the project's own ``results/`` need a clean ``lib/`` unless ``allow_dirty``."""
    passes = _checked_args(jobs, verify, engine)
    name, runs = load_sweep(path, results, overrides)
    slurm_cfg = _engine_config(path, engine, scheduler, jobs, slurm, overrides)
    folder, workers = project_path(results) / name, jobs or 1
    lock = _lock_sweep(folder)
    try:
        todo = _prepare(path, results, name, runs, fresh, allow_dirty, log)
        out: dict[str, dict[str, Any]] = {r.id: {"status": "skipped"} for r in runs if r not in todo}
        if passes and out:
            _verify_reused(name, runs, out, passes, verify_seed, verify_runs, workers, log, verify_plan, verified)
        out.update(_execute(todo, engine, scheduler, workers, slurm_cfg, folder, log))
    finally:
        _unlock_sweep(folder, lock, fresh, log)
    failed = [k for k, v in out.items() if v["status"] in ("failed", "not run")]
    if failed:
        log(f"sweep {name}: {len(failed)} failed run(s): {failed}; run the sweep again to retry them")
    return out


def slurm_options(ns: argparse.Namespace) -> dict[str, Any]:
    """The SLURM resources given on the command line (``--jobs`` is the sweep's own option, not one of them)."""
    from advmri.experiments.slurm import SlurmConfig
    from advmri.util.schema import cli_fields, given

    return {k: v for k, v in given(ns, SlurmConfig).items() if k in cli_fields(SlurmConfig)}


def parser() -> argparse.ArgumentParser:
    """The sweep CLI: engine and run options, the :class:`SweepOptions` shared with the main job, SLURM resources."""
    from advmri.experiments.slurm import SlurmConfig
    from advmri.util.schema import add_arguments

    ap = argparse.ArgumentParser(prog=prog("advmri.experiments.sweep"), description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="parallel runs (threads), workers (dask-local) or SLURM jobs (slurm; default: the "
        "YAML's slurm.jobs); default 1",
    )
    ap.add_argument(
        "--engine",
        choices=ENGINES,
        default="threads",
        help="threads on this machine; dask: the cluster at --scheduler; dask-local: a LocalCluster; "
        "slurm: SLURM jobs through dask-jobqueue (options below)",
    )
    ap.add_argument("--scheduler", default=None, help="dask scheduler address, e.g. tcp://127.0.0.1:8786")
    ap.add_argument("--device", default=None, help="override the device of every run (cpu, cuda)")
    ap.add_argument("--results", default="results")
    add_arguments(ap, SweepOptions)
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    add_arguments(ap, SlurmConfig, "SLURM (--engine slurm; over the sweep YAML's slurm: block)")
    return ap


@cli
def main(argv: list[str] | None = None) -> int:
    """``advmri sweep``: run a sweep file's pending runs (``--fresh``: confirmed first); 1 when a run failed."""
    from advmri.util.schema import given

    a = parser().parse_args(argv)
    o = SweepOptions(**given(a, SweepOptions))
    overrides = {"device": a.device} if a.device else None
    if o.fresh:
        name, runs = load_sweep(a.config, a.results, overrides)
        confirm_fresh(len(committed_runs(runs)), project_path(a.results) / name, o.yes)
    st = run_sweep(
        a.config,
        a.jobs,
        a.results,
        overrides,
        engine=a.engine,
        scheduler=a.scheduler,
        verify=o.verify,
        allow_dirty=o.allow_dirty,
        slurm=slurm_options(a),
        fresh=o.fresh,
        verify_runs=o.verify_runs,
    )
    return 1 if any(v["status"] in ("failed", "not run") for v in st.values()) else 0


if __name__ == "__main__":
    # through the imported module, not __main__: cluster workers unpickle its functions by reference
    from advmri.experiments.sweep import main as _main

    sys.exit(_main(None))
