"""A full disk: one line naming the path and the bytes, nothing half-written (a table never without its
metadata), the run recorded failed, the queued runs reported not run, and a re-run after freeing space completes.
On a small tmpfs when the tests run as root; the writer's ENOSPC is also injected directly."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, SWEEP

from advmri.util.atomic import write_together
from advmri.util.errors import DiskFullError

pytestmark = pytest.mark.slow


def test_injected_enospc_between_table_and_metadata_leaves_neither(tmp_path, monkeypatch):
    table, meta = tmp_path / "r.csv", tmp_path / "r.meta.json"
    real = Path.write_bytes
    calls = []

    def full_on_second(self, data):
        calls.append(self)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_on_second)
    with pytest.raises(DiskFullError) as e:
        write_together({meta: b"{}", table: b"a,b\n1,2\n"})
    msg = str(e.value)
    assert "\n" not in msg and str(meta) in msg and "needs about" in msg and "bytes free" in msg
    assert not table.exists() and not meta.exists() and not list(tmp_path.iterdir())


def test_too_little_space_is_refused_before_writing(tmp_path, monkeypatch):
    import advmri.util.atomic as atomic

    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 100)
    with pytest.raises(DiskFullError, match=r"needs about 8 bytes, 100 bytes free"):
        write_together({tmp_path / "m.json": b"{}", tmp_path / "t.csv": b"a\n1\n2\n"})
    assert not list(tmp_path.iterdir())


@pytest.fixture()
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the injected ENOSPC tests above still run)")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_sweep_on_a_full_disk_records_the_failure_and_resumes_after_space_is_freed(small_fs):
    p = subprocess.run(SWEEP + ["--results", str(small_fs)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    lines = [x for x in p.stdout.splitlines() if "failed" in x and "DiskFullError" in x]
    assert lines and "no space left" in lines[0] and "bytes free" in lines[0], p.stdout
    assert "queued run(s) not run" in p.stdout
    statuses = {f.parent.name: json.loads(f.read_text()) for f in small_fs.glob("smoke/*/status.json")}
    assert [s["status"] for s in statuses.values()] == ["failed"], statuses
    for folder in small_fs.glob("smoke/*/"):  # no table without its metadata, no temporary files left
        assert (folder / "results.csv").exists() == (folder / "results.meta.json").exists() or not (
            folder / "results.csv"
        ).exists()
        assert not list(folder.glob(".*.tmp"))
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    q = subprocess.run(SWEEP + ["--results", str(small_fs)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert q.returncode == 0, q.stdout + q.stderr
    for t in small_fs.glob("smoke/*/results.csv"):
        assert len(pd.read_csv(t)) > 0 and (t.parent / "results.meta.json").is_file()
    assert len(list(small_fs.glob("smoke/*/results.csv"))) == 2
