"""Numbers the paper's prose cites, computed from the results: no result is typed into ``paper/paper.md``.

The prose writes ``{{value:name}}``; :func:`advmri.report.paper.build` fills it from the ``values-<part>.json`` files
that the analysis writes beside the tables (a name no file defines stops the build with one line). Rerunning a
sweep and the analysis therefore changes the text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from advmri.util.atomic import write_text
from advmri.util.paths import project_path

__all__ = ["write_values", "load_values", "num", "interval", "pct", "read_md_table", "from_tables", "fill_values"]


def write_values(folder: str | Path, part: str, values: dict[str, str]) -> Path:
    """``folder/values-<part>.json`` (sorted keys, strings ready to print)."""
    return write_text(
        project_path(folder) / f"values-{part}.json",
        json.dumps({k: str(v) for k, v in sorted(values.items())}, indent=1) + "\n",
    )


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


def pct(x: float, digits: int = 0, sign: bool = False) -> str:
    """``0.54`` -> ``54%`` (``+54%`` with ``sign``)."""
    if x is None or math.isnan(x):
        return "n/a"
    return f"{100 * x:+.{digits}f}%" if sign else f"{100 * x:.{digits}f}%"


def read_md_table(path: str | Path) -> list[dict[str, str]]:
    """The rows of the first pipe table in a Markdown file (as written by ``DataFrame.to_markdown``)."""
    lines = [ln.strip() for ln in project_path(path).read_text().splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return []
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    head = cells[0]
    # every pipe line of the file: rows of a later table can have another number of cells (cut to the header's)
    return [dict(zip(head, row, strict=False)) for row in cells[2:]]


def from_tables(tables: str | Path, models: str | Path | None = None) -> dict[str, str]:
    """Values the prose cites that the generated tables (and the checkpoints' training records) hold:
    model quality, the interpolation check, the rotation pipeline at 0 degrees, the training stop."""
    t = project_path(tables)
    out: dict[str, str] = {}
    if (t / "quality.md").is_file():
        for r in read_md_table(t / "quality.md"):
            key = f"{r['method']}_{r['acceleration']}x".replace("-", "_")
            out[f"q_ssim_{key}"] = num(float(r["ssim"]))
            out[f"q_box_ssim_{key}"] = num(float(r["box_ssim"]))
    if (t / "interpolation.md").is_file():
        rows = read_md_table(t / "interpolation.md")
        at = {(r["interpolation"], float(r["bound"])): r for r in rows}
        top = max(float(r["bound"]) for r in rows)
        ref = float(at[("reference", top)]["drop_vs_clean"])
        for kind in ("reference", "antialias", "fourier"):
            if (kind, top) in at:
                drop = float(at[(kind, top)]["drop_vs_clean"])
                out[f"interp_drop_{kind}"] = num(drop, sign=True)
                out[f"interp_zero_rel_{kind}"] = pct(float(at[(kind, 0.0)]["box_mse_rel_to_clean"]), 1, sign=True)
                out[f"interp_zero_ratio_{kind}"] = num(1 + float(at[(kind, 0.0)]["box_mse_rel_to_clean"]), 4)
                out[f"interp_shift_{kind}"] = pct(drop / ref - 1, 0, sign=True)
        out["interp_bound"] = num(top, 0)
    if (t / "rotation_zero_vs_clean.md").is_file():
        rows = read_md_table(t / "rotation_zero_vs_clean.md")
        for r in rows:
            out[f"zero_clean_{r['model']}_{r['acceleration']}x"] = pct(float(r["mean rel. box MSE"]), 1, sign=True)
        out["zero_clean_max"] = pct(max(abs(float(r["mean rel. box MSE"])) for r in rows), 0)
    if models is not None:
        from advmri.models.networks import load_checkpoint

        for kind in ("unet", "varnet"):
            p = project_path(models) / f"{kind}-small.pt"
            if p.is_file():
                extra = load_checkpoint(p)[1]
                gains = extra.get("history", {}).get("doubling_gain") or []
                if gains:
                    out[f"train_gain_{kind}"] = num(gains[-1][1], 3, sign=True)
                out[f"train_steps_{kind}"] = str(extra.get("step", ""))
    return out


def fill_values(text: str, tables: str | Path, source: str | Path, models: str | Path | None = None) -> str:
    """Every ``{{value:name}}`` of ``text`` from :func:`load_values` and :func:`from_tables`; a name neither
    defines stops with one line naming ``source``."""
    import re

    from advmri.util.errors import UserError

    values = {**load_values(tables), **from_tables(tables, models)}

    def value(m: re.Match) -> str:
        if m.group(1) not in values:
            raise UserError(
                f"{source}: {{{{value:{m.group(1)}}}}} is not computed by the analysis "
                f"(values-*.json in {project_path(tables)}); rerun it or fix the name"
            )
        return values[m.group(1)]

    return re.sub(r"\{\{value:([\w.-]+)\}\}", value, text)
