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
* one sweep at a time per results folder (``.sweep.lock``, :mod:`filelock`);
* ``shards: N`` splits every run's boxes into N contiguous parts, one run each;
* ``--engine dask --scheduler tcp://HOST:PORT`` runs each run as a task on a Dask cluster,
  ``--engine dask-local --jobs N`` on a ``LocalCluster``, ``--engine slurm --jobs N --partition P`` on N SLURM
  jobs (:mod:`advmri.experiments.slurm`: resources from the ``slurm:`` block of the sweep YAML or the command line, TLS).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

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

if TYPE_CHECKING:
    from filelock import FileLock

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


def load_sweep(
    path: str | Path, results: str | Path = "results", overrides: dict | None = None
) -> tuple[str, list[Run]]:
    """Expand a sweep YAML into runs. ``overrides`` (e.g. ``{'device': 'cuda'}``) apply to every run.

    Validated before anything runs: unknown sections and keys are rejected with the closest valid
    name (parameter names are those of the notebook's ``parameters`` cell), and every run's values
    go through :meth:`advmri.experiments.run.AttackRun.from_params`, the same check the notebook applies.
    """
    from advmri.experiments.run import AttackRun

    path = project_path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SweepError(f"{path}: cannot read sweep file ({' '.join(str(e).split())})") from e
    for key in ("name", "notebooks", "grid"):
        if not isinstance(spec, dict) or key not in spec:
            raise SweepError(f"{path}: missing key {key!r} (need name, notebooks, grid)")
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
    slurm_block(spec, path)  # validated for every engine: a typo fails now, not on the cluster
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
        for e in exclude:
            unknown_keys(e, set().union(*grids), f"{path}: exclude")
    except UserError as e:
        raise SweepError(str(e)) from e
    combos = [
        dict(zip(g, values))
        for g in grids
        for values in itertools.product(*(v if isinstance(v, list) else [v] for v in g.values()))
    ]
    runs = []
    checked: dict = {}  # data checks already made, by (data, annotations, labels, target, max_targets, shards)
    for p, shard in itertools.product(combos, range(shards)):
        p = dict(p)
        if any(all(p.get(k) == v for k, v in e.items()) for e in exclude):
            continue
        attack = p.pop("attack")
        if attack not in notebooks:
            raise SweepError(f"{path}: no notebook for attack {attack!r}{did_you_mean(str(attack), notebooks)}")
        params = dict(spec.get("common") or {})
        params.update(per_attack.get(attack, {}) or {})
        params.update(p)
        params.update(overrides or {})
        params = {k: v for k, v in params.items() if k in names[attack]}  # common keys of the other notebook
        part = ""
        if shards > 1:  # one run per shard of the targets: resumed, failed and analysed per shard
            params.update(shard=shard, shards=shards)
            part = f"s{shard}of{shards}-"
        ident = dict(params, attack=attack)
        name = Path(str(params.get("model", "model"))).stem.replace("classical:", "")  # classical:cg-sense -> cg-sense
        stem = f"{attack}-{name}-{params.get('acceleration', '')}x-{part}"
        if not params.get("smoke") and attack in ("noise", "rotation"):
            try:
                run = AttackRun.from_params(attack, **{k: v for k, v in params.items() if k != "smoke"})
                run.check_inputs()
                _check_targets(run, checked)
            except UserError as e:
                raise SweepError(f"{path}: run {stem}: {e}") from e
            # the id covers every resolved parameter, defaults included: when a default changes, results
            # computed under the old one are not reused
            ident = run.as_dict()
        rid = stem + run_id(ident)[:8]
        if any(r.id == rid for r in runs):  # a grid key of the other attack only: the same run again
            continue
        folder = project_path(results) / spec["name"] / rid
        out = folder / "results.csv"  # relative to the project root when inside it (no machine paths committed)
        params["out"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
        runs.append(Run(rid, nbs[attack], params, folder))
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


def table_digest(path: Path) -> tuple[str, int]:
    """``(sha256, data rows)`` of a result table file."""
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), max(0, data.count(b"\n") - 1)


def read_status(folder: Path) -> dict | None:
    """A run's ``status.json``, or None when missing or unreadable (a truncated file means not done)."""
    try:
        st = json.loads((folder / "status.json").read_text())
        return st if isinstance(st, dict) else None
    except (OSError, ValueError):
        return None


def verify_table(folder: Path) -> str | None:
    """None when the run is complete and its ``results.csv`` is the one it wrote; else why not."""
    st = read_status(folder)
    if st is None:
        return "no readable status.json"
    if st.get("status") != "ok":
        return f"status {st.get('status')!r}"
    table = folder / "results.csv"
    if not table.is_file():
        return "results.csv missing"
    if "results_sha256" in st:
        sha, rows = table_digest(table)
        if sha != st["results_sha256"]:
            return (
                f"results.csv changed since the run (sha256 {sha[:12]} != recorded {st['results_sha256'][:12]}, "
                f"{rows} rows, recorded {st.get('results_rows')})"
            )
    return None


def is_done(run: Run) -> bool:
    """True when the run's table is the one it recorded and its checkpoint is the file it was computed with."""
    return verify_table(run.folder) is None and stale_model(run) is None


def stale_model(run: Run) -> str | None:
    """Why a completed run's results belong to other weights than the checkpoint now at its ``model`` path, or
    None. Compared: the sha256 of the checkpoint *file* recorded in ``results.meta.json`` against the file on disk
    now (sidecar or not); without a recorded digest, against the checkpoint's ``.sha256`` sidecar."""
    meta, model = run.folder / "results.meta.json", str(run.params.get("model", ""))
    if not meta.is_file() or model.startswith(("official:", "classical:")):  # no weights file of ours
        return None
    from advmri.models.networks import file_sha256, recorded_sha256

    try:
        got = json.loads(meta.read_text()).get("model_sha256")
    except (OSError, ValueError):
        return "results.meta.json unreadable"
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
        return f"{ename}: {one_line(evalue or '')}"[:2000], full
    if is_disk_full(e):
        return f"DiskFullError: {one_line(disk_full(getattr(e, 'filename', None) or where or '.'))}", True
    return f"{e.__class__.__name__}: {one_line(e)}"[:2000], False


def _free_partial(folder: Path) -> None:
    """After a full disk: remove what the failed run half-wrote (its executed notebook, temporary files), so its
    status can be recorded and nothing half-written remains."""
    for f in [folder / "notebook.ipynb", *folder.glob(".*.tmp")]:
        f.unlink(missing_ok=True)


def execute_run(run: Run, kernel: str = "python3") -> dict:
    """Execute one run's notebook with papermill; never raises (the status says what happened)."""
    import papermill as pm

    from advmri.util.kernels import EncryptedKernelManager

    run.folder.mkdir(parents=True, exist_ok=True)
    (run.folder / "status.json").unlink(missing_ok=True)  # a stale "ok" must not outlive a re-run
    t0 = time.perf_counter()
    status = dict(run_id=run.id, code_version=code_version(), machine=machine())
    try:
        write_text(
            run.folder / "params.json",
            json.dumps(dict(run.params, notebook=str(run.notebook.relative_to(ROOT))), indent=1, sort_keys=True),
        )
        pm.execute_notebook(
            str(run.notebook),
            str(run.folder / "notebook.ipynb"),
            parameters=run.params,
            kernel_name=kernel,
            cwd=str(ROOT),
            progress_bar=False,
            log_output=False,
            kernel_manager_class=EncryptedKernelManager,
        )
        table = run.folder / "results.csv"
        if not table.is_file():
            raise RuntimeError("notebook finished without writing results.csv")
        sha, rows = table_digest(table)
        status.update(status="ok", results_sha256=sha, results_rows=rows)
    except Exception as e:  # a failed run is recorded, the sweep goes on
        if INTERRUPTED.is_set():  # Ctrl-C: the kernel was interrupted, not the run's fault
            status.update(status="interrupted", error="interrupted by the user (Ctrl-C); the next call redoes it")
        else:
            error, full = run_error(e, run.folder / "notebook.ipynb")
            status.update(status="failed", error=error, traceback=traceback.format_exc()[-4000:])
            if full:
                status["disk_full"] = True
                QUEUE_STOPPED.set()  # set here, in the worker: no queued run may start after this one
                _free_partial(run.folder)
                (run.folder / "results.csv").unlink(missing_ok=True)  # no table without its metadata
    status["seconds"] = round(time.perf_counter() - t0, 2)
    try:
        write_text(run.folder / "status.json", json.dumps(status, indent=1))
    except OSError as e:  # even the status does not fit: the run is not done, the next call redoes it
        status["error"] = status.get("error") or f"{run.folder / 'status.json'}: {e}"
    return status


def lock_for(folder: Path) -> FileLock:
    """The sweep folder's :class:`filelock.FileLock` (``.sweep.lock``; one sweep per folder)."""
    from filelock import FileLock

    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / ".sweep.lock"))


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
        write_text(run.folder / "status.json", json.dumps(status, indent=1))
    return status


def _dask_client(engine: str, scheduler: str | None, workers: int, log):
    from distributed import Client, LocalCluster

    if engine == "dask":
        if not scheduler:
            raise SweepError("--engine dask needs --scheduler tcp://HOST:PORT (or use --engine dask-local)")
        client = Client(scheduler, timeout=30)
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
        client = Client(cluster)
    log(f"dask: scheduler {client.scheduler.address}, dashboard {client.dashboard_link}")
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
    if engine != "slurm":
        if slurm:
            raise SweepError(
                f"--{next(iter(slurm)).replace('_', '-')} applies to --engine slurm only (got --engine {engine})"
            )
        return None
    spec = yaml.safe_load(project_path(path).read_text())
    cfg = replace(slurm_block(spec, project_path(path)), **(slurm or {}), **({"jobs": jobs} if jobs else {}))
    validate(cfg, "")
    return cfg.with_device((overrides or {}).get("device"))


def run_sweep(
    path: str | Path,
    jobs: int | None = None,
    results: str | Path = "results",
    overrides: dict | None = None,
    log=print,
    engine: str = "threads",
    scheduler: str | None = None,
    verify: int | str = 0,
    verify_seed: int = 0,
    allow_dirty: bool = False,
    slurm: dict | None = None,
    fresh: bool = False,
    verify_runs: str = "paths",
) -> dict[str, dict]:
    """Run every pending run of a sweep; returns ``{run id: status}`` (skipped runs: ``skipped``).

    ``engine``: ``threads`` (``jobs`` notebooks at a time on this machine), ``dask`` (the cluster of
    ``scheduler``, e.g. ``tcp://HOST:8786`` or a ``dask-jobqueue`` SLURM cluster's address) or
    ``dask-local`` (a ``LocalCluster`` of ``jobs`` single-threaded worker processes) or ``slurm`` (``jobs``
    SLURM jobs; ``slurm``: :class:`advmri.experiments.slurm.SlurmConfig` fields over the YAML's ``slurm:`` block).
    One sweep at a time per sweep folder (a lock file); a second call while one runs stops at once
    with a message instead of doing the same work twice.

    ``verify``: before a completed run is reused, recompute that many seeded passes of it
    (:func:`advmri.experiments.verify.verify_run`) and stop with :class:`advmri.experiments.verify.CacheMismatch` when they differ;
    ``verify_runs``: ``paths`` recomputes one run per code path (:func:`advmri.experiments.verify.choose_runs`), ``all`` every
    reused run. Verification runs in parallel processes (``jobs``).

    ``fresh``: recompute every run; the complete ones are set aside first and put back unless their new results
    complete (interrupted, failed, killed: the committed results stay). Confirm with :func:`confirm_fresh`.

    Runs recorded into the project's own ``results/`` (the committed results) need a clean tree: with uncommitted
    changes to ``lib/`` the sweep stops before any run unless ``allow_dirty`` (``--allow-dirty``)."""
    from filelock import Timeout

    if jobs is not None:
        check_range("jobs", jobs, lo=1, integer=True)
    from advmri.experiments.verify import parse_passes

    verify = parse_passes(verify)
    check_choice("engine", engine, ENGINES)
    name, runs = load_sweep(path, results, overrides)
    slurm_cfg = _engine_config(path, engine, scheduler, jobs, slurm, overrides)
    jobs = jobs or 1
    folder = project_path(results) / name
    lock = lock_for(folder)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SweepError(
            f"{folder}: another sweep is running on this folder ({locks.holder(folder / '.sweep')}; "
            f"lock {lock.lock_file}); wait for it to finish"
        ) from None
    locks.claim(folder / ".sweep")  # the lock file is folder/.sweep.lock: its holder is named as advmri.util.locks does
    try:
        _restore(folder, log)  # a --fresh of an earlier call that did not finish
        if fresh:
            if project_path(results).resolve() == (ROOT / "results").resolve():
                require_clean(allow_dirty, f"{project_path(path)}: --fresh records {len(runs)} run(s) in {folder}")
            _set_aside(runs, folder, log)
        todo = []
        for r in runs:
            why = verify_table(r.folder) or stale_model(r)
            if why is not None:
                todo.append(r)
                if r.folder.is_dir() and why not in ("no readable status.json", "status 'failed'"):
                    log(f"  {r.id}: re-run ({why})")
        if todo and project_path(results).resolve() == (ROOT / "results").resolve():
            require_clean(allow_dirty, f"{project_path(path)}: {len(todo)} run(s) to record in {folder}")
        log(f"sweep {name}: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run")
        check_space(folder, runs, todo)
        out = {r.id: {"status": "skipped"} for r in runs if r not in todo}
        if verify and len(out):
            from advmri.experiments.verify import choose_runs, verify_many

            log(
                f"sweep {name}: verifying {verify} seeded pass(es) of each of {len(out)} reused runs "
                "(at least one per row type)"
            )
            t_verify = time.perf_counter()
            reused = [r.folder for r in runs if r not in todo]
            sample = reused if verify_runs == "all" else choose_runs(reused, verify_seed)
            if len(sample) < len(reused):
                log(
                    f"sweep {name}: one run per code path: {len(sample)} of {len(reused)} reused runs recomputed "
                    "(every table's sha256 is checked; --verify-runs all recomputes a pass of each)"
                )
            reps = verify_many(sample, verify, verify_seed, jobs, log=log)
            done = total = 0
            for r in runs:
                if r.folder.name in reps:
                    rep = out[r.id]["verified"] = reps[r.folder.name]
                    done, total = done + len(rep["passes"]), total + rep["of"]
            out_verify_seconds = time.perf_counter() - t_verify
            log(
                f"sweep {name}: verified {done} of {total} passes ({100 * done / max(total, 1):.0f}%) of "
                f"{len(reps)} of {len(out)} reused runs in {out_verify_seconds:.0f} s"
            )
        if engine == "threads":
            out.update(_run_threads(todo, jobs, log))
        elif engine == "slurm" and todo:
            out.update(_run_on_slurm(todo, slurm_cfg, folder, log))
        elif todo:
            client = _dask_client(engine, scheduler, jobs, log)
            try:
                out.update(_run_on_dask(todo, client, log))
            finally:
                cluster = client.cluster if engine == "dask-local" else None
                client.close()
                if cluster is not None:
                    cluster.close()
    finally:
        if fresh:
            _restore(folder, log)
        locks.release(folder / ".sweep")
        lock.release()
    failed = [k for k, v in out.items() if v["status"] in ("failed", "not run")]
    if failed:
        log(f"sweep {name}: {len(failed)} failed run(s): {failed}; run the sweep again to retry them")
    return out


@cli
def main(argv: list[str] | None = None) -> int:
    from advmri.experiments.slurm import SlurmConfig
    from advmri.util.schema import add_arguments, given

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
    ap.add_argument(
        "--verify",
        default="0",
        metavar="N|all",
        help="recompute N seeded passes (at least one per row type) of reused runs, or all of "
        "them, and stop if they differ (0: trust the recorded sha256)",
    )
    ap.add_argument(
        "--verify-runs",
        default="paths",
        choices=("paths", "all"),
        help="which reused runs --verify recomputes: one per code path (attack, model, data, precision, "
        "target, update rule and options; default) or all",
    )
    ap.add_argument(
        "--allow-dirty",
        action="store_true",
        help="record runs into results/ from a tree with uncommitted changes (stamped +dirty)",
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="recompute every run; complete results are kept aside until the new ones are complete",
    )
    ap.add_argument("--yes", action="store_true", help="do not ask before --fresh replaces complete results")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    add_arguments(ap, SlurmConfig, "SLURM (--engine slurm; over the sweep YAML's slurm: block)")
    a = ap.parse_args(argv)
    overrides = {"device": a.device} if a.device else None
    if a.fresh:
        name, runs = load_sweep(a.config, a.results, overrides)
        confirm_fresh(len(committed_runs(runs)), project_path(a.results) / name, a.yes)
    st = run_sweep(
        a.config,
        a.jobs,
        a.results,
        overrides,
        engine=a.engine,
        scheduler=a.scheduler,
        verify=a.verify,
        allow_dirty=a.allow_dirty,
        slurm=given(a, SlurmConfig),
        fresh=a.fresh,
        verify_runs=a.verify_runs,
    )
    return 1 if any(v["status"] in ("failed", "not run") for v in st.values()) else 0


if __name__ == "__main__":
    # through the imported module, not __main__: cluster workers unpickle its functions by reference
    from advmri.experiments.sweep import main as _main

    sys.exit(_main())
