"""Code version and run identity, stamped on every result table and figure."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from advmri import __version__
from advmri.util.paths import ROOT


def code_version() -> str:
    """``<git commit>[+dirty]`` of the working tree, or ``advmri-<version>`` outside git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "lib"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"advmri-{__version__}"


def lib_version() -> str:
    """``<commit>[+dirty]`` of the last commit that changed ``lib/`` (the code that computes), or
    ``advmri-<version>`` outside git. Derived outputs (the article, its figures and tables) are stamped with it,
    not with HEAD: committing those outputs moves HEAD, and a HEAD stamp would change them again on every run
    (the main job would never leave the clone clean)."""
    try:
        rev = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", "lib"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()[:12]
        if not rev:
            raise OSError("no commit touches lib/")
        dirty = code_version().endswith("+dirty")
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"advmri-{__version__}"


# advmri's own kernels whose float32 rounding differs from earlier releases: a run recorded under another tag counts
# as computed on another machine (verification then uses the cross-machine tolerances). varnet-fast-1: the
# E2E-VarNet forward of advmri.models.fastvarnet (2026-12-07) instead of fastMRI's.
KERNELS = "varnet-fast-1"


def machine() -> str:
    """What the float32 rounding of a run depends on besides its code, data and thread count: the CPU model
    and instruction-set flags (hashed), torch's version and advmri's :data:`KERNELS`. Two machines with one
    fingerprint compute bit-identical results; others differ in the last bits, which the PGA amplifies
    (:mod:`advmri.experiments.verify`)."""
    import platform

    import torch

    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not flags:
                model = " ".join(value.split())
            if key.strip() == "flags":
                flags = hashlib.sha256(" ".join(sorted(value.split())).encode()).hexdigest()[:8]
                break
    except OSError:
        pass
    return f"{model} [{flags or platform.machine()}] torch {torch.__version__} kernels {KERNELS}"


def is_dirty(version: str) -> bool:
    """True for a code version recorded from a tree with uncommitted changes (``...+dirty``)."""
    return version.endswith("+dirty")


def dirty_results(tables: Path) -> list[str]:
    """The ``+dirty`` code versions that computed the results behind ``tables`` (its ``*provenance.json``)."""
    import json

    return sorted(
        {
            v
            for p in Path(tables).glob("*provenance.json")
            for v in json.loads(p.read_text()).get("result_code_versions", [])
            if is_dirty(v)
        }
    )


def require_clean(allow_dirty: bool, what: str) -> str:
    """The code version, after refusing (one line naming ``what``) to record results from a tree with
    uncommitted changes to ``lib/`` unless ``allow_dirty`` (``--allow-dirty``; the version then says ``+dirty``)."""
    from advmri.util.errors import UserError

    version = code_version()
    if is_dirty(version) and not allow_dirty:
        raise UserError(
            f"{what}: the code in {ROOT / 'lib'} has uncommitted changes, so results would not be "
            "traceable to a commit; commit them (or pass --allow-dirty, which the paper then shows)"
        )
    return version


def run_id(params: dict) -> str:
    """Deterministic short id of a parameter set (same parameters -> same id)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
