#!/usr/bin/env python3
"""Set-up-free entry points (needs only Python 3.11 and pip).

    python3 tasks.py all    # the main job: set up, data, models, attacks, figures, paper
    python3 tasks.py test   # set up, then the test suite

Set-up creates ``.venv`` and installs: torch pinned to the CPU wheel (2.13.0), fastmri *without*
its declared dependencies (torchvision and pytorch-lightning are never imported by its core),
the real runtime requirements, and advmri itself (editable). It then checks that no
torchvision or nvidia-* package slipped in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TORCH = "torch==2.13.0"
FASTMRI = "fastmri==0.3.0"
STAMP = VENV / ".advmri-installed"


def sh(*cmd: str, **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def setup() -> None:
    reqs = (ROOT / "requirements.txt").read_text() + TORCH + FASTMRI + (ROOT / "pyproject.toml").read_text()
    if STAMP.is_file() and STAMP.read_text() == reqs:
        return
    if not PY.is_file():
        sh(sys.executable, "-m", "venv", str(VENV))
    pip = [str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    sh(*pip, TORCH)
    sh(*pip, "--no-deps", FASTMRI)
    sh(*pip, "-r", "requirements.txt")
    sh(*pip, "--no-deps", "--no-build-isolation", "-e", ".")
    sh(str(PY), "-m", "advmri.envcheck")
    STAMP.write_text(reqs)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("setup", "all", "test", "paper"):
        print(__doc__)
        return 2
    setup()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if argv[0] == "test":
        return subprocess.run([str(PY), "-m", "pytest", "-q", "tests"], cwd=ROOT, env=env).returncode
    if argv[0] in ("all", "paper"):
        return subprocess.run([str(PY), "-m", "advmri.pipeline"], cwd=ROOT, env=env).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
