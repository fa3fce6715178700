"""SLURM as a sweep engine (``python -m advmri.experiments.sweep SWEEP.yaml --engine slurm --partition cpu``).

Each SLURM job runs one Dask worker (``dask_jobqueue.SLURMCluster``) that executes one sweep run at a time
(worker resource ``RUN=1``; ``GPU=n`` as well with ``--gpus``/``--device cuda``). Scheduler and workers
talk over TLS with temporary credentials by default; the dashboard is off unless an address is given.
Before anything is queued, the job script goes through ``sbatch --test-only``, so a request SLURM refuses
(unknown partition, more cores than a node has, a bad ``--gres``) is one line with SLURM's own message
and the option that caused it. No worker within ``join_timeout`` seconds: one line with the job ids and
``squeue``'s pending reason, the jobs cancelled, the runs left to resume.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advmri.util.errors import UserError
from advmri.util.schema import option

__all__ = ["SlurmConfig", "SlurmError", "preflight", "pending_reasons", "cancel", "make_cluster", "job_ids"]


class SlurmError(UserError):
    """SLURM refused or could not serve the request; the message carries SLURM's own words."""

    fix = (
        "Change the option the message names (partition, cores, memory, GPUs, account, QOS) to what the site "
        "offers; `sinfo` lists partitions and nodes; pending jobs: see squeue's reason."
    )


@dataclass(frozen=True)
class SlurmConfig:
    """Resources of the SLURM jobs of a sweep (``slurm:`` block of the sweep YAML or the command line)."""

    partition: str | None = option(None, "SLURM partition (sbatch --partition); the site default if unset")
    account: str | None = option(None, "account to charge (sbatch --account)")
    qos: str | None = option(None, "quality of service (sbatch --qos)")
    jobs: int = option(1, "SLURM jobs to submit, one Dask worker each (command line: --jobs)", lo=1, cli=False)
    cores: int = option(2, "CPU cores per job (sbatch --cpus-per-task); each run uses its own 'threads'", lo=1)
    memory: str = option("8GB", "memory per job (sbatch --mem), e.g. 8GB")
    walltime: str = option("01:00:00", "wall-time limit per job (sbatch --time, [D-]HH:MM:SS)")
    gpus: int = option(0, "GPUs per job (sbatch --gres=gpu:N); --device cuda makes it at least 1", lo=0)
    sbatch: tuple[str, ...] = option((), "an extra #SBATCH line, e.g. --sbatch=--constraint=avx512")
    python: str | None = option(
        None,
        "the Python each job runs (default: this one; it must see advmri and "
        "the results folder on the shared file system)",
    )
    interface: str | None = option(
        None, "network interface the scheduler listens on (e.g. ib0; default: dask's choice of this host's address)"
    )
    port: int = option(0, "scheduler port (0: any free one)", lo=0, hi=65535, flag="--scheduler-port")
    join_timeout: float = option(
        300.0, "seconds to wait for a worker (first one, or after all were lost) before cancelling the jobs", lo=1
    )
    tls: bool = option(True, "TLS with temporary credentials between scheduler, workers and this client")
    dashboard: str | None = option(None, "dashboard address, e.g. 127.0.0.1:8787 (default: no dashboard)")

    def with_device(self, device: str | None) -> SlurmConfig:
        """``--device cuda``: one GPU per job at least."""
        from dataclasses import replace

        return replace(self, gpus=max(self.gpus, 1)) if str(device or "").startswith("cuda") else self


def _memory_mb(memory: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*", memory, re.I)
    if not m:
        raise SlurmError(f"memory: {memory!r} is not a size such as 8GB or 512MB")
    scale = {"": 1 / 2**20, "K": 1 / 1024, "M": 1, "G": 1024, "T": 2**20}[m.group(2).upper()]
    return max(1, int(float(m.group(1)) * scale))


# SLURM's message -> the option that caused it (sbatch --test-only / sbatch answers)
_CAUSES = (
    (r"partition", "--partition"),
    (r"gres|generic resource|gpu", "--gpus"),
    (r"account", "--account"),
    (r"qos", "--qos"),
    (r"time limit|walltime|--time", "--walltime"),
    (r"memory|mem", "--memory"),
    (r"node configuration|cpus|cores|processors", "--cores / --memory"),
)


def _cause(message: str) -> str:
    low = message.lower()
    return next((opt for pat, opt in _CAUSES if re.search(pat, low)), "the #SBATCH options")


def _slurm_words(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()] or lines
    return "; ".join(dict.fromkeys(ln.replace("sbatch: error: ", "") for ln in errors))[:400]


def preflight(cfg: SlurmConfig, script: str, workdir: Path) -> None:
    """``sbatch --test-only`` the job script: SLURM's verdict on the request without queueing anything."""
    if shutil.which("sbatch") is None:
        raise SlurmError("--engine slurm: sbatch not found on PATH (run the sweep on a SLURM login node)")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "job-script.sh"
    path.write_text(script)
    try:
        p = subprocess.run(["sbatch", "--test-only", str(path)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise SlurmError("sbatch --test-only did not answer within 60 s (is slurmctld reachable?)") from None
    if p.returncode != 0:
        words = _slurm_words(p.stderr or p.stdout)
        raise SlurmError(f"sbatch refused the job: {words} (check {_cause(words)}; job script {path})")


def pending_reasons(job_ids: list[str], name: str | None = None) -> str:
    """``'123 PENDING (Resources), 124 RUNNING (None)'`` from ``squeue`` for these jobs (or job name)."""
    sel = ["-j", ",".join(job_ids)] if job_ids else ["-n", name or ""]
    try:
        p = subprocess.run(["squeue", "-h", "-o", "%i %T %r", *sel], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "squeue did not answer"
    rows = [ln.split(None, 2) for ln in p.stdout.splitlines() if ln.strip()]
    if p.returncode != 0 and not rows:
        return f"squeue: {_slurm_words(p.stderr)}"
    return (
        ", ".join(f"{r[0]} {r[1]} ({r[2] if len(r) > 2 else '?'})" for r in rows)
        or "no such jobs in squeue (they ended: see the job logs)"
    )


def cancel(job_ids: list[str], name: str | None = None) -> None:
    """scancel these jobs (and any job of this name: ones still being submitted)."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)
    if name:
        subprocess.run(
            ["scancel", "-n", name, "-u", os.environ.get("USER") or _user()], capture_output=True, timeout=60
        )


def _user() -> str:
    import getpass

    return getpass.getuser()


def make_cluster(cfg: SlurmConfig, workdir: Path, name: str) -> Any:
    """A ``SLURMCluster`` (nothing submitted yet) whose jobs ask for exactly ``cfg``'s resources."""
    import signal

    import dask

    handler = signal.getsignal(signal.SIGINT)
    from dask_jobqueue import SLURMCluster  # its runner module sets SIGINT to sys.exit() (exit status 0) on import

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)  # Ctrl-C stays a KeyboardInterrupt: jobs cancelled, exit 130

    resources = f"RUN=1,GPU={cfg.gpus}" if cfg.gpus else "RUN=1"
    # no dashboard unless asked; the scheduler's own HTTP routes (health) stay on the loopback
    sched: dict[str, Any] = {
        "dashboard": cfg.dashboard is not None,
        "port": cfg.port,
        "dashboard_address": cfg.dashboard or "127.0.0.1:0",
    }
    if cfg.interface:
        sched["interface"] = cfg.interface
    workdir.mkdir(parents=True, exist_ok=True)
    extra = ([f"--qos={cfg.qos}"] if cfg.qos else []) + ([f"--gres=gpu:{cfg.gpus}"] if cfg.gpus else [])
    with dask.config.set({"jobqueue.slurm.shared-temp-directory": str(workdir)}):
        return SLURMCluster(
            name=name,
            job_name=name,
            cores=cfg.cores,
            processes=1,
            memory=f"{_memory_mb(cfg.memory)}MB",
            job_cpu=cfg.cores,
            job_mem=f"{_memory_mb(cfg.memory)}M",
            walltime=cfg.walltime,
            queue=cfg.partition,
            account=cfg.account,
            job_extra_directives=[*extra, *cfg.sbatch],
            worker_extra_args=["--resources", resources],
            python=cfg.python or sys.executable,
            scheduler_options=sched,
            security=True if cfg.tls else None,
            protocol="tls://" if cfg.tls else "tcp://",
            log_directory=str(workdir / "logs"),
            local_directory=str(workdir / "worker-space"),
            shared_temp_directory=str(workdir),
        )


def job_ids(cluster: Any) -> list[str]:
    """The SLURM job ids the cluster has submitted so far."""
    return [str(j.job_id) for j in list(cluster.workers.values()) if getattr(j, "job_id", None)]
