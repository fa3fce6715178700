"""Numbers the paper's prose cites, computed from the results: no result is typed into ``paper/paper.md``.

The prose writes ``{{value:name}}``; :func:`advmri.paper.build` fills it from the ``values-<part>.json`` files
that the analysis writes beside the tables (a name no file defines stops the build with one line). Rerunning a
sweep and the analysis therefore changes the text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from advmri.atomic import write_text
from advmri.paths import project_path

__all__ = ["write_values", "load_values", "num", "interval", "pct"]


def write_values(folder: str | Path, part: str, values: dict[str, str]) -> Path:
    """``folder/values-<part>.json`` (sorted keys, strings ready to print)."""
    return write_text(project_path(folder) / f"values-{part}.json",
                      json.dumps({k: str(v) for k, v in sorted(values.items())}, indent=1) + "\n")


def load_values(folder: str | Path) -> dict[str, str]:
    """Every ``values-*.json`` of ``folder`` merged (a name defined twice keeps the last file's, sorted by name)."""
    out: dict[str, str] = {}
    for p in sorted(project_path(folder).glob("values-*.json")):
        out.update(json.loads(p.read_text()))
    return out


def num(x: float, digits: int = 3, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals (``+`` for positive values with ``sign``); ``n/a`` for NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def interval(m: float, lo: float, hi: float, digits: int = 2, unit: str = "", sign: bool = True) -> str:
    """``-6.02 dB [-7.17, -5.05]``."""
    u = f" {unit}" if unit else ""
    return f"{num(m, digits, sign)}{u} [{num(lo, digits, sign)}, {num(hi, digits, sign)}]"


def pct(x: float, digits: int = 0) -> str:
    """``0.54`` -> ``54%``."""
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.{digits}f}%"
