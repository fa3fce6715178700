"""Two writers on one output: the second stops at once with one line naming the path and the holder."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, SWEEP, Proc, wait_for

pytestmark = pytest.mark.slow


def _train(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "advmri.models.train",
        "--model",
        "unet",
        "--config",
        "tiny",
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        "5000",
        "--val-interval",
        "5000",
        *extra,
    ]


def test_second_trainer_on_the_same_checkpoint_stops_at_once(tmp_path, tiny_data):
    out = tmp_path / "c.pt"
    first = Proc(_train(tiny_data, out, "--seed", "1"))
    owner = Path(str(out) + ".lock.owner")
    wait_for(owner.is_file, 60, "the first trainer to take the lock")
    t0 = time.monotonic()
    second = subprocess.run(_train(tiny_data, out, "--seed", "2"), cwd=ROOT, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    err = [x for x in second.stderr.splitlines() if x.strip()]
    assert second.returncode == 2 and len(err) == 1, second.stderr
    assert str(out) in err[0] and f"pid {first.p.pid} on " in err[0] and "since " in err[0], err[0]
    assert "--wait" in err[0] and took < 30
    assert first.p.poll() is None  # the first one goes on, untouched
    first.p.send_signal(signal.SIGINT)
    first.wait(60)
    assert not owner.exists()  # released on the way out


def test_second_sweep_on_the_same_folder_names_the_holder(tmp_path):
    first = Proc(SWEEP + ["--results", str(tmp_path)])
    wait_for(lambda: (tmp_path / "smoke" / ".sweep.lock.owner").is_file(), 60, "the first sweep's lock")
    second = subprocess.run(SWEEP + ["--results", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    err = [x for x in second.stderr.splitlines() if x.strip()]
    assert second.returncode == 2 and len(err) == 1 and "another sweep is running" in err[0], second.stderr
    assert f"pid {first.p.pid}" in err[0]
    assert first.wait(300) == 0


def test_negative_wait_is_refused(tmp_path, tiny_data):
    p = subprocess.run(
        _train(tiny_data, tmp_path / "c.pt", "--wait", "-1"), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    err = [x for x in p.stderr.splitlines() if x.strip()]
    assert p.returncode == 2 and len(err) == 1 and "wait" in err[0], p.stderr
    assert not (tmp_path / "c.pt").exists()
