"""Command lines of the project's local servers (JupyterLab, Voila), bound to 127.0.0.1.

Both launchers and the browser tests build their commands here. Running as root (containers,
CI), Jupyter refuses to start without ``--allow-root``; the launchers add it only then, so a
normal user runs exactly what ``jupyter lab`` would.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from advmri.util.paths import ROOT

EXPLORER = ROOT / "notebooks" / "06_explorer.ipynb"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound and released; the caller binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _root_flag() -> list[str]:
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def lab_command(port: int, root_dir: str | Path = ROOT, token: str = "", browser: bool = False) -> list[str]:
    """``jupyter lab`` serving ``root_dir`` on 127.0.0.1:``port`` (``token`` empty: Jupyter makes one)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={root_dir}",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        *_root_flag(),
    ]
    if token:
        cmd.append(f"--IdentityProvider.token={token}")
    if not browser:
        cmd.append("--no-browser")
    return cmd


def voila_command(port: int, notebook: str | Path = EXPLORER, browser: bool = False) -> list[str]:
    """``voila`` serving one notebook as an app on 127.0.0.1:``port`` (code cells hidden)."""
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
        "--Voila.port_retries=0",
        "--show_tracebacks=True",
    ]
    if not browser:
        cmd.append("--no-browser")
    return cmd
