"""Sweeps on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1,
one of them killed while it runs a notebook."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

pytestmark = pytest.mark.slow
DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)


def _kill(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


@pytest.fixture()
def cluster(tmp_path):
    from distributed import Client

    from advmri.app.servers import free_port

    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = {
        "scheduler": _start(
            DASK + ["--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
            tmp_path / "scheduler.log",
        )
    }
    for w in ("w0", "w1"):
        procs[w] = _start(
            WORKER
            + [
                addr,
                "--name",
                w,
                "--nthreads",
                "1",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            tmp_path / f"{w}.log",
        )
    with Client(addr, timeout=60) as c:
        c.wait_for_workers(2, timeout=60)
    yield addr, procs
    for p in procs.values():
        _kill(p)


def _sweep(tmp_path) -> Path:
    spec = yaml.safe_load((ROOT / "sweeps/smoke.yaml").read_text())
    spec["grid"]["acceleration"] = [4, 8]  # four runs, so both workers are busy
    cfg = tmp_path / "smoke.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    return cfg


def test_sweep_on_dask_survives_a_killed_worker(cluster, tmp_path):
    from distributed import Client

    from advmri.experiments.sweep import is_done, load_sweep, run_sweep
    from advmri.report.analysis import collect

    addr, procs = cluster
    cfg = _sweep(tmp_path)
    logs: list[str] = []
    result: dict = {}
    t = threading.Thread(
        target=lambda: result.update(
            run_sweep(cfg, results=tmp_path / "res", engine="dask", scheduler=addr, log=logs.append)
        )
    )
    t.start()
    killed = None
    with Client(addr, timeout=30) as c:  # kill the worker that is running a notebook, mid-run
        t0 = time.time()
        while killed is None and time.time() - t0 < 120:
            busy = {a: ks for a, ks in c.processing().items() if ks}
            names = {a: i["name"] for a, i in c.scheduler_info()["workers"].items()}
            if busy:
                time.sleep(2)  # let its notebook get going
                killed = names[next(iter(busy))]
                _kill(procs[killed])
            time.sleep(0.2)
    t.join(600)
    assert killed is not None and not t.is_alive()
    assert any(line.startswith("dask: scheduler tcp://127.0.0.1") and "dashboard" in line for line in logs), logs
    _, runs = load_sweep(cfg, tmp_path / "res")
    assert set(result) == {r.id for r in runs}
    res = tmp_path / "res" / "smoke"
    assert not list(res.rglob("*.tmp")), "a half-written file was left behind"
    for r in runs:  # each run is either complete and verified, or recorded failed without a table
        st = result[r.id]["status"]
        assert st in ("ok", "failed")
        assert (st == "ok") == is_done(r)
    # a second call finishes whatever the killed worker lost, on the surviving worker
    st2 = run_sweep(cfg, results=tmp_path / "res", engine="dask", scheduler=addr, log=logs.append)
    assert all(v["status"] in ("ok", "skipped") for v in st2.values()), st2
    assert all(is_done(r) for r in runs)
    df, _ = collect(res)
    assert df.sweep_run.nunique() == 4


def test_dask_engine_needs_a_scheduler(tmp_path):
    from advmri.experiments.sweep import SweepError, run_sweep

    with pytest.raises(SweepError, match="--scheduler"):
        run_sweep(ROOT / "sweeps/smoke.yaml", results=tmp_path, engine="dask", log=lambda *a: None)
