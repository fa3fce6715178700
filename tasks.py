#!/usr/bin/env python3
"""Set-up-free entry points (needs only Python 3.11 and pip).

    python3 tasks.py all    # the main job: set up, data, models, attacks, figures, paper
    python3 tasks.py test   # set up, then the test suite (the fast tier: every test not marked slow)
    python3 tasks.py test-slow  # the slow tier (CI runs both: .ci/run)
    python3 tasks.py lint   # ruff check, ruff format --check and mypy (configured in pyproject.toml; CI runs it first)
    python3 tasks.py paper  # set up, then build the article (HTML book + PDF) from the committed results
    python3 tasks.py setup  # only the set-up: .venv and (as root, with apt-get) chromium for the article's PDF

Set-up creates ``.venv`` and installs: torch pinned to the CPU wheel (2.13.0), fastmri *without*
its declared dependencies (torchvision and pytorch-lightning are never imported by its core),
the real runtime requirements, and advmri itself (editable). It then checks that no
torchvision or nvidia-* package slipped in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TORCH = "torch==2.13.0"
FASTMRI = "fastmri==0.3.0"
STAMP = VENV / ".advmri-installed"
LABCONFIG = VENV / "etc" / "jupyter" / "labconfig" / "default_setting_overrides.json"


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
    # fastmri without its declared torchvision / pytorch-lightning: pip's resolver would then report them as
    # "broken" on every later install (an ERROR line although nothing is wrong); --no-warn-conflicts keeps it quiet
    sh(*pip, "--no-deps", FASTMRI)
    sh(*pip, "--no-warn-conflicts", "-r", "requirements.txt")
    sh(*pip, "--no-warn-conflicts", "--no-deps", "--no-build-isolation", "-e", ".")
    sh(str(PY), "-m", "advmri.app.envcheck")
    # JupyterLab of this venv opens notebooks/*.py as notebooks on double-click (jupytext's documented
    # default-viewer setting, written to the venv's own labconfig, not to the user's home)
    sh(str(VENV / "bin" / "jupytext-config"), "--settings-file", str(LABCONFIG), "set-default-viewer", "python")
    STAMP.write_text(reqs)


# Debian packages the tests use: chromium for the browser tests (Playwright cannot download browsers here),
# slurm-wlm and munge for the tests against a real single-node SLURM (tests/slurm_cluster.py)
SYSTEM = {"chromium": "chromium", "slurmctld": "slurm-wlm", "munged": "munge"}


def system_packages(only: tuple[str, ...] = ()) -> None:
    """Install the Debian packages of :data:`SYSTEM` (or the ``only`` ones) that are missing (as root with
    apt-get; else a warning)."""
    missing = [
        pkg
        for exe, pkg in SYSTEM.items()
        if (not only or exe in only)
        and shutil.which(exe) is None
        and not (exe == "chromium" and os.environ.get("ADVMRI_CHROMIUM"))
    ]
    if not missing:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        log = VENV / "apt.log"  # apt's own output (hundreds of lines) goes here; a failure shows its tail
        print(f"+ apt-get install {' '.join(missing)} (output: {log.relative_to(ROOT)})", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        with open(log, "w") as out:
            for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
                if subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT).returncode:
                    tail = log.read_text().strip().splitlines()[-5:]
                    raise SystemExit(f"{' '.join(cmd)} failed (see {log}):\n" + "\n".join(tail))
    else:
        print(
            f"warning: {', '.join(missing)} not installed; the tests that need them are skipped or fail "
            f"(apt-get install {' '.join(missing)}; or set ADVMRI_CHROMIUM=/path/to/chromium)",
            file=sys.stderr,
        )


def lint() -> int:
    """ruff (lint, then format check) and mypy on the library, as configured in pyproject.toml; 0 when all pass."""
    bin_ = VENV / "bin"
    checks = [[str(bin_ / "ruff"), "check", "."], [str(bin_ / "ruff"), "format", "--check", "."], [str(bin_ / "mypy")]]
    failed = []
    for cmd in checks:
        print("+", " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode:
            failed.append(" ".join([Path(cmd[0]).name, *cmd[1:2]]))
    if failed:
        print(f"lint: {', '.join(failed)} failed (see above)", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("setup", "all", "test", "test-slow", "paper", "lint"):
        print(__doc__)
        return 2
    setup()
    if argv[0] == "setup":  # what the main job needs besides the venv: a headless chromium prints the article's PDF
        system_packages(only=("chromium",))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if argv[0] == "lint":
        return lint()
    if argv[0] in ("test", "test-slow"):
        system_packages()
        tier = "not slow" if argv[0] == "test" else "slow"
        return subprocess.run(
            [str(PY), "-m", "pytest", "-q", "-m", tier, "--durations=10", "tests"], cwd=ROOT, env=env
        ).returncode
    if argv[0] in ("all", "paper"):
        system_packages(only=("chromium",))  # the PDF of the article is printed by a headless chromium
        step = ["--from", "paper"] if argv[0] == "paper" else []
        return subprocess.run([str(PY), "-m", "advmri.app.pipeline", *step], cwd=ROOT, env=env).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
