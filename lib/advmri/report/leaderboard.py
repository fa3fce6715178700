"""``advmri leaderboard CARD...``: robustness cards side by side, clean and robust quality together.

**The ranking rule** (:func:`leaderboard`): a model is ranked by its adversarial box PSNR at one stated noise budget
and acceleration (``--budget``, ``--acceleration``; every card must have that row) *among the models that are at
least as good as the zero-filled reconstruction when clean* (clean box PSNR >= the zero-filled card's). A model
close to the trivial reconstruction inherits its small drop (zero-filling is linear in the k-space: 2.2 dB at eps
0.01, 8x, against 5.9-7.3 dB for the small networks), so robustness alone is no merit: a model below the trivial
reconstruction when clean is listed, unranked, as "below zero-filled when clean", and the zero-filled card itself is
the reference row. Only cards of one profile, data set and box count are ranked together (those of the first
standard card, else of the first card); the others are listed, unranked, with what differs. Without a zero-filled
card the rule cannot be applied: every comparable card is ranked by robust PSNR and a line says so. ``pareto`` marks
the models no other ranked model beats both clean and robust. The table also shows the random-noise control, the
drop, the worst rotation and the 95% volume-bootstrap interval of the robust number; the HTML page adds the clean-
vs-robust scatter. Writes ``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.html`` into ``--out``.
"""

from __future__ import annotations

import argparse
import html
import os
from pathlib import Path
from typing import Any

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


REFERENCE = "classical:zero-filled"  # the model spec whose card is the reference row


def leaderboard(cards: dict[str, dict], budget: float = 0.01, acceleration: int = 8) -> pd.DataFrame:
    """One row per card (``cards``: source -> card) with ``rank`` (0: unranked), ``standing`` (why, when
    unranked) and ``pareto``; ranked rows first by robust box PSNR, then the reference, then the unranked."""
    if not cards:
        raise UserError("cards: give at least one card.json (or a folder holding one)")
    df = pd.DataFrame([_row(c, src, budget, acceleration) for src, c in cards.items()])
    group = _ranking_group(df)
    ref = df[(df.spec == REFERENCE) & group]
    floor = float(ref.clean_box_psnr.max()) if len(ref) else -np.inf
    standing = []
    for r, same in zip(df.itertuples(), group, strict=True):
        if not same:
            standing.append(f"not comparable ({_differs(r, df[group].iloc[0])})")
        elif r.spec == REFERENCE:
            standing.append("reference (the trivial reconstruction)")
        elif r.clean_box_psnr < floor:
            standing.append(f"below zero-filled when clean ({r.clean_box_psnr:.2f} < {floor:.2f} dB)")
        else:
            standing.append("ranked")
    df["standing"] = standing
    order = {"ranked": 0, "reference": 1, "below": 2, "not": 3}
    df["_o"] = [order[s.split(" ")[0]] for s in df.standing]
    df = df.sort_values(["_o", "robust_box_psnr", "model"], ascending=[True, False, True], ignore_index=True)
    ranked = df.standing == "ranked"
    df.insert(0, "rank", 0)
    df.loc[ranked, "rank"] = range(1, int(ranked.sum()) + 1)
    df["pareto"] = [bool(ok) and _on_front(r, df[ranked]) for r, ok in zip(df.itertuples(), ranked, strict=True)]
    df.attrs["has_reference"] = bool(len(ref))
    return df.drop(columns="_o")


def _ranking_group(df: pd.DataFrame) -> pd.Series:
    """The cards ranked together: those of the first standard card's profile, data and box count."""
    std = df[df.profile == "standard"]
    first = std.iloc[0] if len(std) else df.iloc[0]
    return (df.profile == first.profile) & (df.data == first.data) & (df.boxes == first.boxes)


def _differs(r: Any, first: pd.Series) -> str:
    """What separates row ``r`` from the ranked group (profile, data, boxes)."""
    out = []
    for k in ("profile", "data", "boxes"):
        if getattr(r, k) != first[k]:
            out.append(f"{k} {getattr(r, k)} vs {first[k]}")
    return ", ".join(out)


def _on_front(r: Any, ranked: pd.DataFrame) -> bool:
    """No ranked model is at least as good clean and robust, and better in one."""
    c, a = r.clean_box_psnr, r.robust_box_psnr
    ge = (ranked.clean_box_psnr >= c) & (ranked.robust_box_psnr >= a)
    gt = (ranked.clean_box_psnr > c) | (ranked.robust_box_psnr > a)
    return not bool((ge & gt).any())


def _header(df: pd.DataFrame, budget: float, acceleration: int) -> str:
    """The paragraph under the title: what is ranked, on what, by which rule."""
    g = df[~df.standing.str.startswith("not comparable")]
    first = g.iloc[0]
    rule = (
        "among the models at least as good as the zero-filled reconstruction when clean (clean box PSNR >= the "
        "reference row's: a model near the trivial reconstruction would win on robustness alone)"
        if df.attrs.get("has_reference")
        else "**without a zero-filled reference card** (add `advmri benchmark --model classical:zero-filled`): "
        "robust PSNR alone, which a trivial model can win"
    )
    return (
        f"Ranked by the mean box PSNR under adversarial k-space noise at eps = {budget:g} ({acceleration}x, "
        f"{first.boxes} boxes in {first.volumes} volumes of `{first.data}`, profile {first.profile}) {rule}. "
        "95% intervals from resampling volumes; where they overlap the order is not resolved (a description, "
        "not a tested claim). ◆: on the clean-vs-robust Pareto front of the ranked models."
    )


def markdown(df: pd.DataFrame, budget: float, acceleration: int) -> str:
    f = lambda v: "–" if not np.isfinite(v) else f"{v:.2f}"  # noqa: E731
    lines = [
        f"# Leaderboard: robust box PSNR at eps = {budget:g}, {acceleration}x",
        "",
        _header(df, budget, acceleration),
        "",
        "| rank | model | kind | parameters | clean | robust [95% CI] | random | drop (dB) | worst rotation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in df.itertuples():
        rot = f"{f(r.rotation_box_psnr)} (<= {r.rotation_bound:g} deg)" if np.isfinite(r.rotation_bound) else "–"
        flag = "" if r.checks == "pass" else f" ({r.checks})"
        rank = f"{r.rank}{'⚠' if r.checks.startswith('failed') else ''}{' ◆' if r.pareto else ''}" if r.rank else "–"
        name = r.model + flag + ("" if r.standing == "ranked" else f": *{r.standing}*")
        lines.append(
            f"| {rank} | {name} | {r.kind} | {r.parameters:,} | {f(r.clean_box_psnr)} | "
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
    write_text(files["md"], markdown(df, budget, acceleration))
    write_text(files["csv"], df.to_csv(index=False, float_format="%.6g"))
    write_text(files["html"], page(df, budget, acceleration))
    return files


COLUMNS = {  # csv column -> the HTML table's heading
    "rank": "rank",
    "model": "model",
    "kind": "kind",
    "clean_box_psnr": "clean box PSNR (dB)",
    "robust_box_psnr": "robust box PSNR (dB)",
    "random_box_psnr": "random-noise control (dB)",
    "drop_db": "drop (dB)",
    "rotation_box_psnr": "worst rotation (dB)",
    "checks": "masking checks",
    "standing": "standing",
}


def page(df: pd.DataFrame, budget: float, acceleration: int) -> str:
    """The HTML page: the rule, the clean-vs-robust scatter and the table (model names link to their cards)."""
    f = lambda v: "–" if not np.isfinite(v) else f"{v:.2f}"  # noqa: E731
    head = "".join(f"<th>{html.escape(h)}</th>" for h in COLUMNS.values())
    body = []
    for r in df.itertuples():
        cells = {k: getattr(r, k) for k in COLUMNS}
        cells["rank"] = (str(r.rank) + (" ◆" if r.pareto else "")) if r.rank else "–"
        cells["model"] = f"<a href='{html.escape(r.card.replace('card.json', 'card.md'))}'>{html.escape(r.model)}</a>"
        row = [v if k == "model" else html.escape(f(v) if isinstance(v, float) else str(v)) for k, v in cells.items()]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>advmri leaderboard</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:14px}table{border-collapse:collapse}svg text{font-size:12px}</style></head>"
        f"<body><h1>Leaderboard: robust box PSNR at eps = {budget:g}, {acceleration}x</h1>"
        f"<p>{html.escape(_header(df, budget, acceleration)).replace('**', '')}</p>"
        f"{scatter(df)}<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>"
    )


def scatter(df: pd.DataFrame, w: int = 560, h: int = 360, pad: int = 48) -> str:
    """Clean (x) against robust (y) box PSNR as an inline SVG: ranked models filled, the reference and the
    unranked hollow; the dashed line marks the reference's clean PSNR (the ranking's floor)."""
    x, y = df.clean_box_psnr.to_numpy(float), df.robust_box_psnr.to_numpy(float)
    lo, hi = float(min(x.min(), y.min())) - 1, float(max(x.max(), y.max())) + 1
    sx = lambda v: pad + (v - lo) / (hi - lo) * (w - 2 * pad)  # noqa: E731
    sy = lambda v: h - pad - (v - lo) / (hi - lo) * (h - 2 * pad)  # noqa: E731
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' "
        "aria-label='clean against robust box PSNR'>",
        f"<line x1='{sx(lo)}' y1='{sy(lo)}' x2='{sx(hi)}' y2='{sy(hi)}' stroke='#ddd'/>",
        f"<text x='{w / 2}' y='{h - 10}' text-anchor='middle'>clean box PSNR (dB)</text>",
        f"<text x='14' y='{h / 2}' transform='rotate(-90 14 {h / 2})' text-anchor='middle'>robust box PSNR (dB)</text>",
    ]
    for t in np.arange(np.ceil(lo), hi, 2.0):
        parts.append(f"<text x='{sx(t)}' y='{h - pad + 16}' text-anchor='middle'>{t:.0f}</text>")
        parts.append(f"<text x='{pad - 6}' y='{sy(t) + 4}' text-anchor='end'>{t:.0f}</text>")
    ref = df[df.standing.str.startswith("reference")]
    if len(ref):
        c = sx(float(ref.clean_box_psnr.iloc[0]))
        parts.append(f"<line x1='{c}' y1='{pad}' x2='{c}' y2='{h - pad}' stroke='#999' stroke-dasharray='4 3'/>")
    for r, cx, cy in zip(df.itertuples(), x, y, strict=True):
        fill = "#1f77b4" if r.rank else "none"
        parts.append(
            f"<circle cx='{sx(cx):.1f}' cy='{sy(cy):.1f}' r='5' fill='{fill}' stroke='#1f77b4'>"
            f"<title>{html.escape(r.model)}: clean {cx:.2f}, robust {cy:.2f} dB ({html.escape(r.standing)})"
            f"</title></circle><text x='{sx(cx) + 7:.1f}' y='{sy(cy) - 6:.1f}'>{html.escape(r.model)}</text>"
        )
    return "".join(parts) + "</svg>"


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
