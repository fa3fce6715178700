"""advmri.util.locks: one writer per output, no files left behind (after success, failure or a full disk), and
removing the lock file never lets two writers in."""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from advmri.util.errors import UserError
from advmri.util.locks import Busy, Lock, LockTimeout, exclusive


def test_exclusive_leaves_no_lock_files_after_success_or_failure(tmp_path):
    out = tmp_path / "t.csv"
    with exclusive(out, "attack"):
        assert Path(str(out) + ".lock").is_file() and Path(str(out) + ".lock.owner").is_file()
        with pytest.raises(Busy, match=r"t\.csv: another attack is writing it \(pid \d+ on "):
            with exclusive(out, "attack"):
                pass
    with pytest.raises(RuntimeError):
        with exclusive(out, "attack"):
            raise RuntimeError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _count(path: str, n: int) -> None:
    for _ in range(n):
        with exclusive(path, "counter", wait=60):
            p = Path(path)
            v = int(p.read_text()) if p.exists() else 0
            p.write_text(str(v + 1))


def test_removing_the_lock_file_never_admits_two_writers(tmp_path):
    """Four processes each increment a counter 40 times under the lock, which is created and removed each time:
    a lost update would show two writers at once."""
    path = str(tmp_path / "n.txt")
    procs = [mp.get_context("spawn").Process(target=_count, args=(path, 40)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert Path(path).read_text() == "160"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["n.txt"]


def test_lock_times_out_and_is_reusable(tmp_path):
    a, b = Lock(tmp_path / "x.lock"), Lock(tmp_path / "x.lock")
    a.acquire()
    with pytest.raises(LockTimeout):
        b.acquire(timeout=0.2)
    a.release()
    assert not (tmp_path / "x.lock").exists()
    with b:
        assert b.is_locked
    assert not b.is_locked and not (tmp_path / "x.lock").exists()


def test_full_disk_at_the_lock_is_one_line_naming_the_file(tmp_path, monkeypatch):
    out = tmp_path / "t.csv"
    real = Path.write_text

    def full(self, *a, **k):
        if self.name.endswith(".lock.owner"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(UserError, match=r"t\.csv\.lock\.owner: cannot record the lock's holder \(no space left"):
        with exclusive(out, "attack"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(UserError, match=r"ro/t\.csv\.lock: cannot create the lock file"):
        with exclusive(ro / "t.csv", "attack"):
            pass


def test_attack_on_a_really_full_disk_is_one_line_without_debris(tmp_path, tiny_data):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the injected ENOSPC test above still runs)")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill it to the last block
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        os.close(fd)
        cmd = [sys.executable, "-m", "advmri", "attack", "--model", "classical:cg-sense", "--data", str(tiny_data)]
        p = subprocess.run(
            [*cmd, "--max-targets", "1", "--steps", "1", "--eps", "0.01", "--out", str(mnt / "x.csv")],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        err = [x for x in p.stderr.splitlines() if x.strip()]
        assert p.returncode == 2 and len(err) == 1, p.stderr
        assert str(mnt / "x.csv") in err[0] and "no space left" in err[0].lower() and "internal" not in err[0]
        assert sorted(x.name for x in mnt.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
