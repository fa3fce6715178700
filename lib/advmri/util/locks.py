"""One writer per output: a checkpoint, a result table, a sweep folder.

``with exclusive(path, "training"):`` takes ``path.lock`` (:class:`Lock`: ``flock`` on the file, released by the
OS if the process dies) and records its holder (pid, host, start time) in ``path.lock.owner``; a second writer
fails at once with one line naming the path and the holder, or waits up to ``wait`` seconds when asked. Both
files are removed when the lock is released (also after a failure), so no debris is left beside the output;
a full disk or an unwritable folder is one line naming the lock's path.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from advmri.util.errors import UserError

__all__ = ["Busy", "Lock", "LockTimeout", "exclusive", "holder", "claim", "release"]


class Busy(UserError):
    """Another process is writing the same output."""

    fix = (
        "Wait for the holder named in the message to finish (`advmri.models.train --wait SECONDS` waits), "
        "or write to another path."
    )


class LockTimeout(Exception):
    """The lock was not free within the timeout."""


class Lock:
    """An exclusive inter-process lock on the file ``lock_file`` (``flock``; created when missing and *removed on
    release*). Removing a lock file is safe because a taker checks, once it holds the lock, that the path still
    names the file it locked (the inode), and starts again otherwise. Not re-entrant."""

    def __init__(self, lock_file: str | os.PathLike) -> None:
        self.lock_file = str(lock_file)
        self._fd: int | None = None

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, timeout: float = 0.0, poll: float = 0.05) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (:class:`LockTimeout` after that)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            fd = _open_lock(self.lock_file)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise LockTimeout(self.lock_file) from None
                time.sleep(poll)
                continue
            if _names(fd, self.lock_file):
                self._fd = fd
                return
            os.close(fd)  # the holder removed it between our open and our flock: lock the new file

    def release(self) -> None:
        """Remove the lock file and release the lock (nothing when not held)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.lock_file)
        except FileNotFoundError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _open_lock(lock_file: str) -> int:
    """Open (create) the lock file; a full disk or a read-only folder is one line naming it."""
    try:
        return os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"{lock_file}: cannot create the lock file ({e.strerror or e})") from None


def _names(fd: int, lock_file: str) -> bool:
    """Whether the path ``lock_file`` still names the file open as ``fd``."""
    try:
        st = os.stat(lock_file)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_ino, st.st_dev) == (own.st_ino, own.st_dev)


def _owner(path: Path) -> Path:
    return Path(str(path) + ".lock.owner")


def holder(path: str | os.PathLike) -> str:
    """``'pid 123 on host, since 2026-12-01 12:00:00'`` of the process holding ``path``'s lock (as it wrote it)."""
    try:
        h = json.loads(_owner(Path(path)).read_text())
        return f"pid {h['pid']} on {h['host']}, since {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def claim(path: str | os.PathLike) -> None:
    """Record this process as the holder of ``path``'s lock (pid, host, start time), once it holds it. A disk
    too full for these few bytes is one line naming the file (and leaves no partial file)."""
    owner = _owner(Path(path))
    info = dict(pid=os.getpid(), host=socket.gethostname(), started=time.strftime("%Y-%m-%d %H:%M:%S"))
    try:
        owner.write_text(json.dumps(info))
    except OSError as e:
        owner.unlink(missing_ok=True)
        why = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise UserError(f"{owner}: cannot record the lock's holder ({why}); free space or write elsewhere") from None


def release(path: str | os.PathLike) -> None:
    """Forget the holder of ``path``'s lock (before the lock itself is released)."""
    _owner(Path(path)).unlink(missing_ok=True)


@contextmanager
def exclusive(path: str | os.PathLike, what: str, wait: float = 0.0, hint: str = "") -> Iterator[None]:
    """Hold ``path``'s lock while the block runs (``what``: the kind of writer, for the message)."""
    path = Path(path)
    made = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{path.parent}: cannot create the output folder ({e.strerror or e})") from None
    try:
        with _held(path, what, wait, hint):
            yield
    finally:
        if made:  # a folder made for an output that never came is not left behind empty
            try:
                path.parent.rmdir()
            except OSError:
                pass


@contextmanager
def _held(path: Path, what: str, wait: float, hint: str) -> Iterator[None]:
    """:func:`exclusive`'s lock and holder record around the block."""
    lock = Lock(str(path) + ".lock")
    try:
        lock.acquire(timeout=wait)
    except LockTimeout:
        raise Busy(
            f"{path}: another {what} is writing it ({holder(path)}); "
            f"{hint or 'wait for it to finish, or write elsewhere'}"
        ) from None
    try:
        claim(path)
        yield
    finally:
        release(path)
        lock.release()
