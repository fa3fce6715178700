"""One writer per output: a checkpoint, a result table, a sweep folder.

``with exclusive(path, "training"):`` takes ``path.lock`` (:mod:`filelock`, released by the OS if the process
dies) and records its holder (pid, host, start time) in ``path.lock.owner``; a second writer fails at once with
one line naming the path and the holder, or waits up to ``wait`` seconds when asked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from advmri.util.errors import UserError

__all__ = ["Busy", "exclusive", "holder", "claim", "release"]


class Busy(UserError):
    """Another process is writing the same output."""

    fix = (
        "Wait for the holder named in the message to finish (`advmri.models.train --wait SECONDS` waits), "
        "or write to another path."
    )


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
    """Record this process as the holder of ``path``'s lock (pid, host, start time), once it holds it."""
    _owner(Path(path)).write_text(
        json.dumps(dict(pid=os.getpid(), host=socket.gethostname(), started=time.strftime("%Y-%m-%d %H:%M:%S")))
    )


def release(path: str | os.PathLike) -> None:
    """Forget the holder of ``path``'s lock (before the lock itself is released)."""
    _owner(Path(path)).unlink(missing_ok=True)


@contextmanager
def exclusive(path: str | os.PathLike, what: str, wait: float = 0.0, hint: str = "") -> Iterator[None]:
    """Hold ``path``'s lock while the block runs (``what``: the kind of writer, for the message)."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=wait)
    except Timeout:
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
