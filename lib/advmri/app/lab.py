"""JupyterLab on this project: ``python -m advmri.app.lab [--port N] [--browser]``.

Starts JupyterLab in the project root on 127.0.0.1, with ``--allow-root`` only when running as
root. Set-up (``tasks.py``) makes ``notebooks/*.py`` open as notebooks on double-click (jupytext's
default-viewer setting, in ``.venv/etc/jupyter/labconfig``); ``.venv/bin/jupyter lab`` works as
well for a non-root user.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from advmri.app.servers import free_port, lab_command
from advmri.util.errors import prog


def main(argv: list[str] | None = None) -> int:
    """``python -m advmri.app.lab``: JupyterLab on 127.0.0.1 with its kernels in ``notebooks/``."""
    ap = argparse.ArgumentParser(prog=prog("advmri.app.lab"), description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--browser", action="store_true", help="open a browser tab")
    a = ap.parse_args(argv)
    try:
        return subprocess.run(lab_command(a.port or free_port(), browser=a.browser)).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
