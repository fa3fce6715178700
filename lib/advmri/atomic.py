"""Writing files so that no reader sees half a file and no two writers mix: a temporary file unique
to the writer (process, thread, random suffix) beside the target, renamed into place at the end."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from pathlib import Path
from typing import Iterator

from advmri.paths import project_path


def temp_beside(path: Path) -> Path:
    """A temporary name beside ``path`` that no other writer uses (ends in ``.tmp``)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write(tmp)`` -> ``tmp`` replaces ``p`` on success, is removed on failure."""
    path = project_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return project_path(path)


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail now, not after the work, when ``path`` cannot be written (creates its folder)."""
    from advmri.errors import UserError

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
