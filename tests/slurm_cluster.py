"""A throw-away single-node SLURM (Debian's ``slurm-wlm`` + ``munge``) for the tests, started as root.

    python tests/slurm_cluster.py start   # prints the state folder; partition ``cpu``
    python tests/slurm_cluster.py stop

What works inside a container: ``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``,
``SelectType=select/cons_tres``, ``SlurmUser=root``, one node named by ``hostname`` with ``nproc`` CPUs and
somewhat less than its memory, ``munged`` started as user ``munge`` with a generated key. Every daemon's
state and log lives under one folder (``STATE``), so a second start reuses a running cluster and ``stop``
leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ.get("ADVMRI_SLURM_STATE", "/tmp/advmri-slurm"))
CONF = STATE / "slurm.conf"
PARTITION = "cpu"


def why_not() -> str | None:
    """Why a SLURM cannot be started here (a skip reason), or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "starting slurmctld/slurmd/munged needs root"
    for exe in ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "scancel", "sinfo"):
        if shutil.which(exe) is None:
            return f"{exe} not installed (apt-get install slurm-wlm munge)"
    return None


def _env() -> dict:
    return dict(os.environ, SLURM_CONF=str(CONF))


def _mem_mb() -> int:
    with open("/proc/meminfo") as f:
        total_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    return int(total_kb / 1024 * 0.8)


def _write_conf() -> None:
    host = socket.gethostname()
    for sub in ("spool", "ctld", "log"):
        (STATE / sub).mkdir(parents=True, exist_ok=True)
    CONF.write_text(f"""ClusterName=advmri-test
SlurmctldHost={host}
SlurmUser=root
SlurmctldPort={os.environ.get("ADVMRI_SLURMCTLD_PORT", "6917")}
SlurmdPort={os.environ.get("ADVMRI_SLURMD_PORT", "6918")}
AuthType=auth/munge
StateSaveLocation={STATE}/ctld
SlurmdSpoolDir={STATE}/spool
SlurmctldPidFile={STATE}/slurmctld.pid
SlurmdPidFile={STATE}/slurmd.pid
SlurmctldLogFile={STATE}/log/slurmctld.log
SlurmdLogFile={STATE}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName={host} CPUs={os.cpu_count()} RealMemory={_mem_mb()} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")


def _munge() -> None:
    key = Path("/etc/munge/munge.key")
    if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
        return  # munged already answers
    if not key.is_file():
        subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, capture_output=True)
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    for d in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "munged", "--force"], check=True, capture_output=True)
    for _ in range(50):
        if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("munged did not start")


def running() -> bool:
    return (
        CONF.is_file() and subprocess.run(["sinfo", "-h"], env=_env(), capture_output=True, timeout=20).returncode == 0
    )


def start(timeout: float = 60.0) -> Path:
    """Start munged, slurmctld and slurmd (or reuse them); returns the state folder once the node is idle."""
    reason = why_not()
    if reason:
        raise RuntimeError(reason)
    if running():
        return STATE
    _write_conf()
    _munge()
    subprocess.run(["slurmctld", "-f", str(CONF)], check=True, env=_env())
    subprocess.run(["slurmd", "-f", str(CONF)], check=True, env=_env())
    t0 = time.time()
    while time.time() - t0 < timeout:
        p = subprocess.run(["sinfo", "-h", "-o", "%T"], env=_env(), capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip() in ("idle", "mixed", "allocated"):
            return STATE
        time.sleep(0.5)
    raise RuntimeError(f"slurm node not idle after {timeout:.0f} s (logs in {STATE}/log)")


def stop() -> None:
    """Cancel every job and stop slurmd and slurmctld (munged stays: other users may rely on it)."""
    if CONF.is_file():
        subprocess.run(["scancel", "--full", "-u", "root"], env=_env(), capture_output=True)
    for pid_file in ("slurmd.pid", "slurmctld.pid"):
        f = STATE / pid_file
        try:
            os.kill(int(f.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    time.sleep(1)
    shutil.rmtree(STATE, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["start"]:
        print(start())
    elif sys.argv[1:] == ["stop"]:
        stop()
    else:
        print(__doc__)
        sys.exit(2)
