"""``--engine slurm`` against a real single-node SLURM (Debian's slurm-wlm + munge, started here as root):
the smoke sweep byte-identical to the local engine over TLS, a refused request in one line, a job that never
starts, a job cancelled mid-run, Ctrl-C, and a client without the credentials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster
from conftest import ROOT

pytestmark = pytest.mark.slow
SWEEP = [sys.executable, "-m", "advmri.experiments.sweep", "sweeps/smoke.yaml"]


@pytest.fixture(scope="module")
def slurm():
    reason = slurm_cluster.why_not()
    if reason:
        pytest.skip(f"no SLURM here: {reason}")
    ours = not slurm_cluster.running()
    t0 = time.monotonic()
    slurm_cluster.start()
    print(f"single-node SLURM up in {time.monotonic() - t0:.1f} s")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(slurm_cluster.CONF)
    yield slurm_cluster.PARTITION
    subprocess.run(["scancel", "-u", "root"], capture_output=True)
    if ours:
        slurm_cluster.stop()
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def _sweep(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(SWEEP + list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _tables(results: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(results.glob("smoke/*/results.csv"))}


def _queue() -> str:
    return subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def local_tables(tmp_path_factory) -> dict[str, bytes]:
    res = tmp_path_factory.mktemp("threads")
    p = _sweep("--results", str(res))
    assert p.returncode == 0, p.stderr[-2000:]
    return _tables(res)


def test_slurm_sweep_equals_local_engine_over_tls(slurm, local_tables, tmp_path):
    t0 = time.monotonic()
    p = _sweep(
        "--results",
        str(tmp_path),
        "--engine",
        "slurm",
        "--partition",
        slurm,
        "--cores",
        "2",
        "--memory",
        "2GB",
        "--walltime",
        "00:10:00",
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "over TLS" in p.stdout and "tls://" in p.stdout
    assert _tables(tmp_path) == local_tables and len(local_tables) == 2
    assert "Traceback" not in p.stderr
    assert not _queue(), "the sweep left SLURM jobs behind"
    print(f"slurm smoke sweep: {time.monotonic() - t0:.1f} s")


@pytest.mark.parametrize(
    "args, words, option",
    [
        (["--partition", "no-such-partition"], "invalid partition", "--partition"),
        (["--cores", "512"], "Requested node configuration is not available", "--cores"),
        (["--gpus", "1"], "gres", "--gpus"),
    ],
)
def test_refused_request_is_one_line_not_a_hang(slurm, tmp_path, args, words, option):
    t0 = time.monotonic()
    p = _sweep("--results", str(tmp_path), "--engine", "slurm", *args, timeout=60)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1, p.stderr
    assert err[0].startswith("error: sbatch refused the job:") and words.lower() in err[0].lower()
    assert option in err[0]
    assert time.monotonic() - t0 < 60 and not _queue()
    assert not list(tmp_path.glob("smoke/*/status.json"))  # nothing ran, nothing recorded


def test_worker_that_never_joins_is_cancelled_with_squeue_reason(slurm, tmp_path):
    p = _sweep(
        "--results",
        str(tmp_path),
        "--engine",
        "slurm",
        "--partition",
        slurm,
        "--memory",
        "1GB",
        "--sbatch=--begin=now+1hour",
        "--join-timeout",
        "5",
        timeout=120,
    )
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1, p.stdout + p.stderr
    assert "no SLURM worker joined within 5 s" in err[0] and "PENDING (BeginTime)" in err[0], err[0]
    assert "run the sweep again to resume" in err[0]
    assert not _queue(), "pending jobs were not cancelled"
    assert not list(tmp_path.glob("smoke/*/status.json"))


def _wait_for(pred, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _running_job() -> str | None:
    rows = [r.split() for r in _queue().splitlines()]
    return next((r[0] for r in rows if len(r) == 3 and r[2] == "RUNNING"), None)


def test_job_cancelled_mid_run_is_replaced_and_the_run_resumes(slurm, local_tables, tmp_path):
    """scancel the only job while a notebook runs: the sweep submits a new job and the scheduler retries
    the run there (or the next call redoes it); the tables end identical to the local engine's."""
    cmd = SWEEP + [
        "--results",
        str(tmp_path),
        "--engine",
        "slurm",
        "--partition",
        slurm,
        "--memory",
        "2GB",
        "--join-timeout",
        "60",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: list(tmp_path.glob("smoke/*/params.json")), 90, "a run to start")
    job = _running_job()
    assert job, _queue()
    subprocess.run(["scancel", job], check=True)
    out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err
    if proc.returncode != 0:  # recorded failed: the next call resumes it
        assert "run the sweep again" in out + err
        p = _sweep(*cmd[len(SWEEP) :])
        assert p.returncode == 0, p.stdout + p.stderr
    assert _tables(tmp_path) == local_tables
    assert not _queue()


def test_ctrl_c_cancels_every_submitted_job(slurm, tmp_path):
    cmd = SWEEP + ["--results", str(tmp_path), "--engine", "slurm", "--partition", slurm, "--memory", "1GB"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _running_job() is not None, 90, "the job to run")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "cancelling SLURM job" in out and err.strip().splitlines()[-1] == "error: interrupted"
    _wait_for(
        lambda: not _queue() or all(r.split()[2] in ("COMPLETING", "CANCELLED") for r in _queue().splitlines()),
        30,
        "the jobs to be cancelled",
    )


def test_scheduler_refuses_a_client_without_the_credentials(slurm, tmp_path):
    from distributed import Client
    from distributed.security import Security

    from advmri.experiments.slurm import SlurmConfig, make_cluster

    cluster = make_cluster(SlurmConfig(partition=slurm), tmp_path, "advmri-tls-test")
    try:
        addr = cluster.scheduler_address
        assert addr.startswith("tls://")
        with pytest.raises(Exception):  # noqa: B017 - plain TCP to a TLS listener
            Client(addr.replace("tls://", "tcp://"), timeout=5)
        with pytest.raises(Exception, match="(?i)certificate|ssl|tls"):  # credentials of another cluster
            Client(addr, security=Security.temporary(), timeout=5)
        with Client(cluster, timeout=10) as c:  # ours get in
            port = c.scheduler_info()["services"].get("dashboard")
        # no dashboard unless asked: the scheduler's HTTP routes (health) listen on the loopback only, without
        # the dashboard's pages
        import socket
        import urllib.error
        import urllib.request

        host_ip = addr.split("://")[1].rsplit(":", 1)[0]
        if port and host_ip not in ("127.0.0.1", "localhost"):
            with pytest.raises(OSError):
                socket.create_connection((host_ip, port), timeout=3)
        if port:
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5)
            assert e.value.code == 404
    finally:
        cluster.close()


# -- without a SLURM: the schema, the contradictions, the shared-folder check --------------------------------


def _yaml_with(tmp_path, block: dict) -> Path:
    import yaml

    spec = yaml.safe_load((ROOT / "sweeps/smoke.yaml").read_text())
    spec["slurm"] = block
    cfg = tmp_path / "smoke.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    return cfg


@pytest.mark.parametrize(
    "block, words",
    [
        ({"partiton": "cpu"}, "slurm: unknown key 'partiton'"),
        ({"cores": 0}, "slurm.cores"),
        ({"cores": "two"}, "slurm.cores: must be int"),
        ({"tls": "yes"}, "slurm.tls: must be true or false"),
    ],
)
def test_bad_slurm_block_is_one_line_naming_file_and_key(tmp_path, block, words):
    cfg = _yaml_with(tmp_path, block)
    p = subprocess.run(
        [sys.executable, "-m", "advmri.experiments.sweep", str(cfg), "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1, p.stderr
    assert str(cfg) in err[0] and words in err[0], err[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--engine", "dask-local", "--scheduler", "tcp://127.0.0.1:1"], "--engine dask-local starts its own cluster"),
        (["--partition", "cpu"], "--partition applies to --engine slurm only"),
        (["--engine", "slurm", "--cores", "0"], "cores"),
    ],
)
def test_contradictory_engine_options_are_refused(tmp_path, args, words):
    p = _sweep("--results", str(tmp_path), *args, timeout=120)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1 and words in err[0], p.stderr
    assert not list(tmp_path.glob("smoke/*/status.json"))


def test_cli_over_yaml_over_defaults_and_device_cuda_adds_a_gpu(tmp_path):
    import yaml

    from advmri.experiments.sweep import _engine_config

    cfg = _yaml_with(tmp_path, {"cores": 4, "memory": "3GB", "partition": "batch"})
    c = _engine_config(cfg, "slurm", None, None, {"cores": 1}, None)
    assert (c.cores, c.memory, c.partition, c.jobs, c.gpus, c.tls) == (1, "3GB", "batch", 1, 0, True)
    c = _engine_config(cfg, "slurm", None, 3, None, {"device": "cuda"})
    assert (c.cores, c.jobs, c.gpus) == (4, 3, 1)
    assert yaml.safe_load(cfg.read_text())["slurm"]["cores"] == 4  # the file is not touched


def test_every_slurm_field_has_an_option_and_help():
    import argparse

    from advmri.experiments.slurm import SlurmConfig
    from advmri.util.schema import add_arguments, describe

    ap = argparse.ArgumentParser()
    add_arguments(ap, SlurmConfig)
    flags = {s for a in ap._actions for s in a.option_strings}
    for name, flag, _, helptext in describe(SlurmConfig):
        assert helptext, name
        assert flag in flags or name == "jobs", name  # jobs: the sweep's own --jobs


def test_worker_that_cannot_see_the_results_folder_says_which_host_and_path(tmp_path):
    from advmri.experiments.sweep import shared_folder_problem

    (tmp_path / ".sweep-token").write_text("abc")
    assert shared_folder_problem(tmp_path, "abc") is None
    why = shared_folder_problem(tmp_path, "another")
    assert "sees another" in why and str(tmp_path) in why and "host " in why
    why = shared_folder_problem(tmp_path / "missing", "abc")
    assert "cannot read the results folder" in why and str(tmp_path / "missing") in why
