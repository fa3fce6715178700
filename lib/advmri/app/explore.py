"""The eps explorer as a standalone app: ``python -m advmri.app.explore [--port N] [--browser]``.

Serves ``notebooks/06_explorer.ipynb`` with Voila on 127.0.0.1 (no code shown, no notebook
to open). It reads the reconstructions that the sweep stored, so it needs no attack to open.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from advmri.app.servers import EXPLORER, free_port, voila_command
from advmri.util.errors import prog


def main(argv: list[str] | None = None) -> int:
    """``python -m advmri.app.explore``: serve the explorer notebook as a Voila app on 127.0.0.1."""
    ap = argparse.ArgumentParser(prog=prog("advmri.app.explore"), description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    ap.add_argument("--browser", action="store_true", help="open a browser tab")
    a = ap.parse_args(argv)
    if not EXPLORER.is_file():
        print(f"error: {EXPLORER}: explorer notebook not found", file=sys.stderr)
        return 2
    port = a.port or free_port()
    print(f"explorer: http://127.0.0.1:{port}/  (Ctrl-C stops it)", flush=True)
    try:
        return subprocess.run(voila_command(port, browser=a.browser)).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
