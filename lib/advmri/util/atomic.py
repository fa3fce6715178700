"""Writing files so that no reader sees half a file and no two writers mix: a temporary file unique
to the writer (process, thread, random suffix) beside the target, renamed into place at the end."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from advmri.util.paths import project_path

if TYPE_CHECKING:
    from advmri.util.errors import DiskFullError


def temp_beside(path: Path) -> Path:
    """A temporary name beside ``path`` that no other writer uses (ends in ``.tmp``)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}.tmp")


def free_bytes(folder: str | os.PathLike) -> int:
    """Free bytes for this user on the file system of ``folder`` (its nearest existing parent)."""
    import shutil

    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def disk_full(path: str | os.PathLike, need: int | None = None) -> DiskFullError:
    """The one-line error for a write that found no space (names the path, the bytes needed and free)."""
    from advmri.util.errors import DiskFullError

    path = project_path(path)
    needs = f"needs about {need:,} bytes, " if need else ""
    return DiskFullError(
        f"{path}: no space left on its file system ({needs}{free_bytes(path.parent):,} bytes free); "
        "free some space and run again (nothing was half-written)"
    )


def is_disk_full(e: BaseException) -> bool:
    """True for an ``OSError`` that means no space (``ENOSPC``) or no quota (``EDQUOT``)."""
    import errno

    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write(tmp)`` -> ``tmp`` replaces ``p`` on success, is removed on failure
    (a full file system: :class:`advmri.util.errors.DiskFullError` naming ``p``)."""
    path = project_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(path) from e
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_together(files: dict[Path, bytes]) -> None:
    """Write several files so that they appear together or not at all: free space checked for all of them
    first, every one written to its temporary name, then all renamed (the last one is the one readers
    take as the sign of completion, e.g. a result table after its metadata)."""
    need = sum(len(b) for b in files.values())
    first = next(iter(files))
    if free_bytes(first.parent) < need + 64 * 1024:  # a margin for file system blocks
        raise disk_full(first, need)
    temps: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temps[path] = temp_beside(path)
            temps[path].write_bytes(data)
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(first, need) from e
        raise
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a writer-unique temporary file renamed into place); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return project_path(path)


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail now, not after the work, when ``path`` cannot be written (creates its folder)."""
    from advmri.util.errors import UserError

    path = project_path(path)
    if path.is_dir():
        raise UserError(f"{path}: {what} is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = temp_beside(path)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"{path}: {what} not writable ({e.strerror or e})") from e
    return path
