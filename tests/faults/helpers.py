"""Shared by the fault-injection tests: run a CLI in a subprocess, watch for a moment, inject a signal."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SWEEP = [sys.executable, "-m", "advmri.experiments.sweep", "sweeps/smoke.yaml"]


def digests(results: Path, pattern: str = "smoke/*/*") -> dict[str, str]:
    """sha256 of every file of the runs (lock and token files aside)."""
    return {
        str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(results.glob(pattern))
        if p.is_file()
    }


def wait_for(pred, timeout: float, what: str, step: float = 0.1) -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


class Proc:
    """A CLI in a subprocess whose output lines are collected with the time they arrived."""

    def __init__(self, cmd: list[str], **kw):
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, **kw
        )
        self.lines: list[tuple[float, str, str]] = []
        self._threads = [
            threading.Thread(target=self._read, args=(s, n), daemon=True)
            for s, n in ((self.p.stdout, "out"), (self.p.stderr, "err"))
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream, name: str) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), name, line.rstrip("\n")))

    def has(self, text: str) -> bool:
        return any(text in line for _, _, line in self.lines)

    def first(self, text: str) -> float:
        return next(t for t, _, line in self.lines if text in line)

    def wait(self, timeout: float) -> int:
        rc = self.p.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def text(self, name: str | None = None) -> str:
        return "\n".join(line for _, n, line in self.lines if name in (None, n))

    def err_lines(self) -> list[str]:
        return [line for _, n, line in self.lines if n == "err" and "IPKernelApp" not in line and line.strip()]
