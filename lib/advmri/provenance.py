"""Code version and run identity, stamped on every result table and figure."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from advmri import __version__
from advmri.paths import ROOT


def code_version() -> str:
    """``<git commit>[+dirty]`` of the working tree, or ``advmri-<version>`` outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "lib"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"advmri-{__version__}"


def run_id(params: dict) -> str:
    """Deterministic short id of a parameter set (same parameters -> same id)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
