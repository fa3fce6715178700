"""Where relative paths point: the project root, not the process's working directory.

JupyterLab starts a notebook's kernel in the notebook's folder (``notebooks/``), papermill and the
CLIs wherever they were called from; a parameter such as ``data/synthetic/small/test`` must mean
the same folder in all of them. Every function of advmri that reads or writes a user-given path
passes it through :func:`project_path` (the one place that decides), so notebooks, CLIs and
sweep configs behave identically whatever the current directory. Absolute paths and ``~`` are
kept as given.

The root is the checkout holding ``lib/advmri`` (an editable install, or ``PYTHONPATH=lib``); for an
installed, non-editable copy (``pip install .``, a wheel) it is the current working directory, so that
``advmri benchmark --model examples/my_model.py:make`` means the file the user sees. ``ADVMRI_ROOT``
overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[3]  # lib/advmri/util/paths.py -> the checkout
ROOT = Path(
    os.environ.get("ADVMRI_ROOT") or (_CHECKOUT if (_CHECKOUT / "lib" / "advmri").is_dir() else Path.cwd())
).resolve()


def project_path(path: str | os.PathLike) -> Path:
    """``path`` as an absolute path: relative ones are taken relative to :data:`ROOT`."""
    p = Path(os.fspath(path)).expanduser()
    return p if p.is_absolute() else ROOT / p


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when inside it (for messages and recorded params)."""
    p = project_path(path)
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)
