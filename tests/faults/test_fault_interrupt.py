"""Ctrl-C in a sweep and a --fresh sweep: a message within 2 s, queued runs cancelled, the running one stopped
and recorded interrupted, exit 130; --fresh interrupted or killed at any moment keeps the complete results."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import ROOT, SWEEP, Proc, digests, wait_for

pytestmark = pytest.mark.slow


def _started(results: Path) -> bool:  # a run's kernel is executing (its params are written first)
    return any(results.glob("smoke/*/params.json"))


def test_ctrl_c_stops_the_running_run_and_cancels_the_queue(tmp_path):
    p = Proc(SWEEP + ["--results", str(tmp_path)])
    wait_for(lambda: _started(tmp_path), 120, "the first run to start")
    time.sleep(2.0)  # inside the notebook
    t_sig = time.monotonic()
    p.p.send_signal(signal.SIGINT)
    rc = p.wait(90)
    assert rc == 130, p.text()
    assert p.first("interrupted: stopping 1 running run(s)") - t_sig < 2.0
    assert "1 queued run(s) cancelled" in p.text("out")
    assert p.err_lines()[-1] == "error: interrupted"
    st = [json.loads(f.read_text()) for f in tmp_path.glob("smoke/*/status.json")]
    assert [s["status"] for s in st] == ["interrupted"], st  # the queued run never started
    assert not list(tmp_path.glob("smoke/*/results.csv"))
    again = subprocess.run(SWEEP + ["--results", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 already done, 2 to run" in again.stdout, again.stdout + again.stderr


@pytest.fixture(scope="module")
def _complete_once(tmp_path_factory) -> Path:
    res = tmp_path_factory.mktemp("complete")
    p = subprocess.run(SWEEP + ["--results", str(res)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return res


@pytest.fixture()
def complete(_complete_once, tmp_path) -> tuple[Path, dict]:
    """A complete smoke sweep of its own (a copy of one computed once for this module)."""
    import shutil

    res = tmp_path / "results"
    shutil.copytree(_complete_once, res)
    return res, digests(res)


def test_fresh_asks_first_and_without_a_terminal_needs_yes(complete):
    results, before = complete
    p = subprocess.run(
        SWEEP + ["--results", str(results), "--fresh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    err = [x for x in p.stderr.splitlines() if x.strip()]
    assert (
        p.returncode == 2
        and len(err) == 1
        and "--fresh recomputes and replaces the results of 2 complete" in err[0]
        and "add --yes" in err[0]
    ), p.stderr
    assert digests(results) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_fresh_interrupted_or_killed_keeps_the_complete_results(complete, sig):
    results, before = complete
    p = Proc(SWEEP + ["--results", str(results), "--fresh", "--yes"])
    wait_for(lambda: p.has("set aside"), 120, "the complete runs to be set aside")
    wait_for(lambda: _started(results), 120, "the first recomputation to start")
    time.sleep(2.0)
    p.p.send_signal(sig)
    rc = p.wait(90)
    assert rc == (130 if sig == signal.SIGINT else -9), p.text()
    if sig == signal.SIGKILL:  # nothing could run on the way out: the next call restores first
        q = subprocess.run(SWEEP + ["--results", str(results)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert q.returncode == 0 and "restored" in q.stdout and "2 already done, 0 to run" in q.stdout, q.stdout
    else:
        assert "restored 2 run(s)" in p.text("out")
    assert digests(results) == before
    assert not (results / "smoke" / ".fresh-backup").exists()


def test_fresh_to_completion_replaces_and_leaves_no_backup(complete):
    results, before = complete
    p = subprocess.run(
        SWEEP + ["--results", str(results), "--fresh", "--yes"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0 and "2 complete run(s) set aside" in p.stdout, p.stdout + p.stderr
    assert not (results / "smoke" / ".fresh-backup").exists()
    now = digests(results)
    tables = [k for k in before if k.endswith("results.csv")]
    assert len(tables) == 2 and all(now[k] == before[k] for k in tables)  # seeded smoke: identical tables
