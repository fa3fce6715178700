"""``advmri leaderboard CARD...``: robustness cards side by side, ranked by robust box PSNR.

The rank is by the adversarial box PSNR at one stated noise budget and acceleration (``--budget``,
``--acceleration``; every card must have that row); the table also shows the clean and random box PSNR, the
drop, the worst rotation and the 95% volume-bootstrap interval of the ranked number. Cards of different
profiles or data are listed with their profile and data, and a warning line says that they are not
comparable. Writes ``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.html`` into ``--out``.
"""

from __future__ import annotations

import argparse
import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.util.atomic import write_text
from advmri.util.errors import UserError, cli, prog

__all__ = ["leaderboard", "write_leaderboard", "main"]


def _row(card: dict, source: str, budget: float, acceleration: int) -> dict:
    rows = pd.DataFrame(card["rows"])
    g = rows[(rows.threat == "noise") & (rows.acceleration == acceleration)]
    pick = lambda p, k: g[np.isclose(g.param, p) & (g.kind == k)]  # noqa: E731
    adv, rnd, clean = pick(budget, "adversarial"), pick(budget, "random"), pick(0.0, "clean")
    if adv.empty or clean.empty:
        raise UserError(
            f"{source}: has no noise rows at eps {budget:g}, {acceleration}x (its budgets: "
            f"{sorted(set(rows[rows.threat == 'noise'].param))}, accelerations: "
            f"{sorted(set(rows.acceleration))}); use --budget / --acceleration"
        )
    rot = rows[(rows.threat == "rotation") & (rows.acceleration == acceleration) & (rows.kind == "adversarial")]
    worst = rot[rot.param == rot.param.max()] if len(rot) else rot
    a = adv.iloc[0]
    return {
        "model": card["model"]["name"],
        "spec": card["model"]["spec"],
        "kind": card["model"]["kind"],
        "parameters": card["model"]["parameters"],
        "profile": card["profile"],
        "data": card["data"]["dir"],
        "boxes": int(a.n_boxes),
        "volumes": int(a.n_volumes),
        "clean_box_psnr": float(clean.box_psnr.iloc[0]),
        "robust_box_psnr": float(a.box_psnr),
        "robust_lo": a.box_psnr_lo,
        "robust_hi": a.box_psnr_hi,
        "random_box_psnr": float(rnd.box_psnr.iloc[0]) if len(rnd) else float("nan"),
        "drop_db": float(clean.box_psnr.iloc[0] - a.box_psnr),
        "rotation_bound": float(worst.param.iloc[0]) if len(worst) else float("nan"),
        "rotation_box_psnr": float(worst.box_psnr.iloc[0]) if len(worst) else float("nan"),
        "checks": _checks(card),
        "card": source,
    }


def _checks(card: dict) -> str:
    """``pass``, ``not audited`` (a card made before the checks) or ``failed: <names>``."""
    a = card.get("audit")
    if not a:
        return "not audited"
    return f"failed: {', '.join(a['failed'])}" if a.get("failed") else "pass"


def leaderboard(cards: dict[str, dict], budget: float = 0.01, acceleration: int = 8) -> pd.DataFrame:
    """One row per card (``cards``: source -> card), ranked by ``robust_box_psnr`` (highest first)."""
    if not cards:
        raise UserError("cards: give at least one card.json (or a folder holding one)")
    df = pd.DataFrame([_row(c, src, budget, acceleration) for src, c in cards.items()])
    df = df.sort_values(["robust_box_psnr", "model"], ascending=[False, True], ignore_index=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    return df


def _comparable(df: pd.DataFrame) -> str:
    if df.profile.nunique() > 1 or df.data.nunique() > 1 or df.boxes.nunique() > 1:
        return (
            "**Not comparable**: the cards differ in profile, data or boxes "
            f"({', '.join(sorted(set(df.profile)))}; {', '.join(sorted(set(df.data)))}); rank with care.\n\n"
        )
    return ""


def markdown(df: pd.DataFrame, budget: float, acceleration: int) -> str:
    f = lambda v: "–" if not np.isfinite(v) else f"{v:.2f}"  # noqa: E731
    lines = [
        f"# Leaderboard: robust box PSNR at eps = {budget:g}, {acceleration}x",
        "",
        f"Ranked by the mean box PSNR under adversarial k-space noise at eps = {budget:g} ({acceleration}x, "
        f"{df.boxes.iloc[0]} boxes in {df.volumes.iloc[0]} volumes of `{df.data.iloc[0]}`, profile "
        f"{df.profile.iloc[0]}); 95% intervals from resampling volumes. The intervals overlap where the ranking "
        "is not resolved; it is a description, not a tested claim.",
        "",
        _comparable(df)
        + "| rank | model | kind | parameters | clean | robust [95% CI] | random | drop (dB) | worst rotation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in df.itertuples():
        rot = f"{f(r.rotation_box_psnr)} (<= {r.rotation_bound:g} deg)" if np.isfinite(r.rotation_bound) else "–"
        flag = "" if r.checks == "pass" else f" ({r.checks})"
        mark = "⚠" if r.checks.startswith("failed") else ""
        lines.append(
            f"| {r.rank}{mark} | {r.model}{flag} | {r.kind} | {r.parameters:,} | {f(r.clean_box_psnr)} | "
            f"{f(r.robust_box_psnr)} [{f(r.robust_lo)}, {f(r.robust_hi)}] | {f(r.random_box_psnr)} | "
            f"{f(r.drop_db)} | {rot} |"
        )
    if df.checks.str.startswith("failed").any():
        lines += [
            "",
            "⚠ a card with a failed check for gradient masking: its robust number comes from an attack the "
            "model can fool, so its rank is not a finding (see the card's checks and adaptive number).",
        ]
    lines += ["", "Cards: " + ", ".join(f"[{m}]({c})" for m, c in zip(df.model, df.card, strict=True))]
    return "\n".join(lines) + "\n"


def write_leaderboard(
    df: pd.DataFrame, out: Path, budget: float, acceleration: int, relative_to: Path | None = None
) -> dict[str, Path]:
    """Write ``leaderboard.md``, ``.csv`` and ``.html`` into ``out`` (card paths relative to ``relative_to``)."""
    out.mkdir(parents=True, exist_ok=True)
    if relative_to is not None:
        df = df.assign(card=[os.path.relpath(Path(c).resolve(), relative_to.resolve()) for c in df.card])
    files = {"md": out / "leaderboard.md", "csv": out / "leaderboard.csv", "html": out / "leaderboard.html"}
    md = markdown(df, budget, acceleration)
    write_text(files["md"], md)
    write_text(files["csv"], df.to_csv(index=False, float_format="%.6g"))
    write_text(
        files["html"],
        "<!doctype html><html><head><meta charset='utf-8'><title>advmri leaderboard</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:3px 6px}"
        "table{border-collapse:collapse}</style></head><body>"
        f"<h1>Leaderboard: robust box PSNR at eps = {budget:g}, {acceleration}x</h1>"
        f"<p>{html.escape(md.split(chr(10))[2])}</p>"
        + df.drop(columns=["spec"]).to_html(index=False, float_format=lambda v: f"{v:.2f}")
        + "</body></html>",
    )
    return files


@cli
def main(argv: list[str] | None = None) -> int:
    """Collect robustness cards into a ranked table (md/html/csv)."""
    from advmri.report.card import read_card

    ap = argparse.ArgumentParser(prog=prog("advmri.report.leaderboard"), description=__doc__.split("\n\n")[0])
    ap.add_argument("cards", nargs="+", help="card.json files or folders holding one")
    ap.add_argument("--budget", type=float, default=0.01, help="noise budget eps to rank at (default: 0.01)")
    ap.add_argument("--acceleration", type=int, default=8, choices=(4, 8), help="acceleration to rank at (default: 8)")
    ap.add_argument("--out", default="leaderboard", help="folder for leaderboard.md/.csv/.html (default: leaderboard)")
    a = ap.parse_args(argv)
    cards = {}
    for c in a.cards:
        p = Path(c) / "card.json" if Path(c).is_dir() else Path(c)
        cards[str(p)] = read_card(p)
    df = leaderboard(cards, a.budget, a.acceleration)
    out = Path(a.out)
    files = write_leaderboard(df, out, a.budget, a.acceleration, relative_to=out)
    print(markdown(df, a.budget, a.acceleration))
    print(f"-> {files['md']}, {files['csv'].name}, {files['html'].name}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(None))
