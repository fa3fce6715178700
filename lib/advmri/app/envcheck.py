"""Check the installed environment: CPU torch pin honoured, no torchvision / nvidia-* packages.

``python -m advmri.app.envcheck`` exits non-zero (and says why) when the install pulled in a
package that only an unpinned torch or fastmri's declared dependencies would bring.
"""

from __future__ import annotations

import sys
from importlib import metadata

FORBIDDEN_PREFIXES = ("nvidia-", "torchvision", "pytorch-lightning", "lightning")


def forbidden_packages() -> list[str]:
    """Installed distributions that must not be there (``torchvision``, ``nvidia-*``: the CPU wheel pulls none)."""
    names = sorted({(d.metadata["Name"] or "").lower() for d in metadata.distributions()})
    return [n for n in names if n.startswith(FORBIDDEN_PREFIXES)]


def main(argv: list[str] | None = None) -> int:
    """``python -m advmri.app.envcheck``: exit 1 naming the forbidden packages, else 0 (no options)."""
    if argv:
        print(f"error: envcheck takes no options, got {argv[0]!r}", file=sys.stderr)
        return 2
    bad = forbidden_packages()
    import fastmri  # noqa: F401  (fastmri's core must import without its declared extras)
    import torch

    print(
        f"torch {torch.__version__}, fastmri {metadata.version('fastmri')}, cuda available: {torch.cuda.is_available()}"
    )
    if bad:
        print(f"envcheck: forbidden packages installed: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
