"""Robustness cards on disk: ``card.json`` (the record), ``card.md`` and ``card.html`` (plotly, offline: the
plotly.js of the installed plotly package is written beside it), ``examples/`` (the worst boxes as PNG) and
``runs/`` (the run tables the card summarises).

The reference rows of advmri's own models come from the committed leaderboard cards
(``results/leaderboard/cards/*/card.json``, :data:`REFERENCE_DIR`).
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advmri.util.atomic import write_text
from advmri.util.paths import ROOT

__all__ = [
    "REFERENCE_DIR",
    "write_card",
    "read_card",
    "card_markdown",
    "card_html",
    "reference_cards",
    "reference_table",
    "headline",
    "headline_table",
    "rows_table",
    "figure",
    "worst_examples",
]

REFERENCE_DIR = ROOT / "results" / "leaderboard" / "cards"
KIND_COLOURS = {"clean": "#444444", "adversarial": "#d62728", "random": "#1f77b4"}


def _num(v: Any) -> float:
    """A card value as a float; ``None`` (how strict JSON stores NaN) is NaN."""
    return float("nan") if v is None else float(v)


def headline(card: dict) -> list[dict[str, Any]]:
    """Per acceleration: clean, adversarial and random box PSNR at the card's budget, and the worst rotation at the
    largest bound (the numbers a leaderboard ranks by)."""
    out: list[dict[str, Any]] = []
    rows = pd.DataFrame(card["rows"])
    if rows.empty:
        return out
    for acc, g in rows.groupby("acceleration"):
        h: dict[str, Any] = dict(acceleration=int(acc))
        n = g[g.threat == "noise"]
        pick = lambda d, p, k: d[(np.isclose(d.param, p)) & (d.kind == k)]  # noqa: E731
        for kind, p in (("clean", 0.0), ("adversarial", card["budget"]), ("random", card["budget"])):
            r = pick(n, p, kind)
            if len(r):
                for col in ("box_psnr", "box_psnr_lo", "box_psnr_hi"):  # None (strict JSON) where no interval: NaN
                    h[f"noise_{kind}_{col}"] = _num(r[col].iloc[0])
        rot = g[(g.threat == "rotation") & (g.kind == "adversarial")]
        if len(rot):
            worst = rot[rot.param == rot.param.max()]
            h.update(
                rotation_bound=float(worst.param.iloc[0]), rotation_adversarial_box_psnr=_num(worst.box_psnr.iloc[0])
            )
        out.append(h)
    return out


def read_card(path: str | Path) -> dict:
    """A card from ``card.json`` (or its folder); one-line errors naming the file."""
    from advmri.util.errors import UserError

    p = Path(path)
    p = p / "card.json" if p.is_dir() else p
    try:
        card = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"{p}: card not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: not a robustness card (invalid JSON: {e})") from None
    if not isinstance(card, dict) or "rows" not in card or "model" not in card:
        raise UserError(f"{p}: not a robustness card (no 'model' and 'rows')")
    return card


def reference_cards() -> dict[str, dict]:
    """advmri's committed cards by model name (empty when none are committed)."""
    if not REFERENCE_DIR.is_dir():
        return {}
    return {p.parent.name: read_card(p) for p in sorted(REFERENCE_DIR.glob("*/card.json"))}


def _fmt(v: Any, lo: Any = None, hi: Any = None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    s = f"{v:.{digits}f}"
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return s


def rows_table(card: dict) -> pd.DataFrame:
    """The card's rows as a display table (means with 95% volume-bootstrap intervals)."""
    out = []
    for r in card["rows"]:
        d = dict(
            threat=r["threat"],
            acceleration=f"{r['acceleration']}x",
            param=f"{r['param']:g}",
            kind=r["kind"],
            boxes=r["n_boxes"],
            volumes=r["n_volumes"],
            box_psnr=_fmt(r["box_psnr"], r["box_psnr_lo"], r["box_psnr_hi"]),
            box_ssim=_fmt(r["box_ssim"], r["box_ssim_lo"], r["box_ssim_hi"], 3),
            image_ssim=_fmt(r["image_ssim"], r["image_ssim_lo"], r["image_ssim_hi"], 3),
        )
        for k in ("erasure_rate", "hallucination_rate"):
            if k in r:
                d[k] = _fmt(r[k])
        out.append(d)
    return pd.DataFrame(out).fillna("–")


def headline_table(card: dict, name: str | None = None) -> pd.DataFrame:
    """Per acceleration: clean, adversarial and random box PSNR at the budget, and the worst rotation."""
    rows = []
    for h in headline(card):
        rows.append(
            {
                "model": name or card["model"]["name"],
                "acceleration": f"{h['acceleration']}x",
                "clean box PSNR": _fmt(h.get("noise_clean_box_psnr")),
                f"adversarial eps={card['budget']:g}": _fmt(
                    h.get("noise_adversarial_box_psnr"),
                    h.get("noise_adversarial_box_psnr_lo"),
                    h.get("noise_adversarial_box_psnr_hi"),
                ),
                f"random eps={card['budget']:g}": _fmt(h.get("noise_random_box_psnr")),
                "worst rotation": (
                    f"{_fmt(h['rotation_adversarial_box_psnr'])} (<= {h['rotation_bound']:g} deg)"
                    if "rotation_bound" in h
                    else "–"
                ),
            }
        )
    return pd.DataFrame(rows)


def _md(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)\n"
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def reference_table(card: dict) -> pd.DataFrame:
    """The headline rows of advmri's committed cards at this card's budget."""
    refs = reference_cards()
    parts = [headline_table(c, name) for name, c in refs.items() if c["budget"] == card["budget"]]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def checks_table(card: dict) -> pd.DataFrame:
    """The card's checks (:mod:`advmri.experiments.audit`): check, verdict, what was measured."""
    a = card.get("audit")
    if not a:
        return pd.DataFrame([dict(check="(none)", verdict="not audited", detail="a card made before the checks")])
    return pd.DataFrame([dict(check=c["name"], verdict=c["verdict"], detail=c["detail"]) for c in a["checks"]])


def audit_line(card: dict) -> str:
    """One sentence: the naive vs adaptive box PSNR on the audited boxes, and the failed checks."""
    a = card.get("audit")
    if not a:
        return "This card has no checks for gradient masking (made before they existed): treat it with care."
    failed = a["failed"]
    head = (
        f"**Failed checks: {', '.join(failed)}** — the white-box number above is not trustworthy; "
        if failed
        else "Every check passed; "
    )
    return (
        f"{head}on {a['boxes']} audited boxes the naive white-box attack gives box PSNR "
        f"{_num(a['naive_box_psnr']):.2f} dB and the adaptive evaluation ({', '.join(a['attacks'])}) "
        f"{_num(a['adaptive_box_psnr']):.2f} dB."
    )


def card_markdown(card: dict, examples: Sequence[str] = ()) -> str:
    """The card as Markdown: model, data, headline, every row, the references, the examples."""
    m, d = card["model"], card["data"]
    files = ", ".join(f"`{p}` (sha256 `{h[:16]}…`)" for p, h in m["files"].items()) or "none (no weights)"
    lines = [
        f"# Robustness card: {m['name']}",
        "",
        f"- **Model**: `{m['spec']}`, {m['kind']}, {m['parameters']:,} parameters; files: {files}",
        f"- **Data**: `{d['dir']}`, {d['boxes']} boxes in {d['volumes']} volumes",
        f"- **Profile**: {card['profile']}; advmri {card['advmri_version']}; {card['seconds']:.0f} s",
        "- **Threat models**: "
        + "; ".join(f"{k}: {_threat_line(v)}" for k, v in card["settings"]["threat_models"].items()),
        "",
        "Box metrics are means over the attacked boxes, with 95% intervals from resampling volumes "
        "(the unit of resampling; boxes of one volume are not independent). Random rows average each box's draws. "
        "These intervals are descriptive: no comparison below is a tested claim.",
        "",
        f"## Headline (noise budget eps = {card['budget']:g})",
        "",
        _md(headline_table(card)),
        "## Checks for gradient masking",
        "",
        audit_line(card),
        "",
        _md(checks_table(card)),
        "## Reference: advmri's own models (committed leaderboard cards)",
        "",
        _md(reference_table(card)),
        "## Every row",
        "",
        _md(rows_table(card)),
    ]
    if examples:
        lines += ["## Worst boxes", "", "Target, clean, adversarial and random reconstruction; the box in red.", ""]
        lines += [f"![{Path(e).stem}]({e})" for e in examples]
    return "\n".join(lines) + "\n"


def _threat_line(t: dict) -> str:
    if t.get("threat") == "rotation":
        return f"bounds {t['bounds']} deg, grid {t['grid']}, {t['interpolation']} interpolation"
    return (
        f"eps {t['eps']}, {t['steps']} PGA steps of {t['step_size']:g}, {t['update']} update, "
        f"target {t['target']}, mask {'known' if t['mask_known'] else 'unknown'}"
    )


def figure(card: dict):
    """The card's curves: box PSNR and SSIM against eps / bound, adversarial vs random, per acceleration."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = pd.DataFrame(card["rows"])
    threats = [t for t in ("noise", "rotation") if t in set(rows.threat)]
    fig = make_subplots(
        rows=2,
        cols=max(len(threats), 1),
        shared_xaxes=False,
        subplot_titles=[f"{t}: box {m}" for m in ("PSNR (dB)", "SSIM") for t in threats],
    )
    dash = {4: "solid", 8: "dot"}
    for c, t in enumerate(threats, 1):
        g = rows[rows.threat == t]
        for acc in sorted(set(g.acceleration)):
            for kind in ("adversarial", "random"):
                clean = g[(g.acceleration == acc) & (g.kind == "clean")].assign(param=0.0)
                d = pd.concat([clean, g[(g.acceleration == acc) & (g.kind == kind)]]).sort_values("param")
                for r, metric in enumerate(("box_psnr", "box_ssim"), 1):
                    fig.add_trace(
                        go.Scatter(
                            x=d.param,
                            y=d[metric],
                            mode="lines+markers",
                            name=f"{kind} {acc}x",
                            legendgroup=f"{kind}{acc}",
                            showlegend=(r == 1 and c == 1),
                            line=dict(color=KIND_COLOURS[kind], dash=dash.get(acc, "dash")),
                            error_y=dict(
                                type="data",
                                symmetric=False,
                                array=d[f"{metric}_hi"] - d[metric],
                                arrayminus=d[metric] - d[f"{metric}_lo"],
                            ),
                        ),
                        row=r,
                        col=c,
                    )
        for r in (1, 2):
            fig.update_xaxes(title_text="eps (relative per coil)" if t == "noise" else "bound (degrees)", row=r, col=c)
    fig.update_layout(
        height=640,
        width=520 * max(len(threats), 1),
        template="plotly_white",
        title=f"{card['model']['name']}: box metrics under attack (95% volume-bootstrap intervals)",
    )
    return fig


def card_html(card: dict, examples: Sequence[Path] = ()) -> str:
    """A standalone page: the curves (plotly, from ``plotly.min.js`` beside the page), tables, example images."""
    fig = figure(card).to_html(include_plotlyjs="directory", full_html=False, config={"displaylogo": False})
    imgs = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.stem)}</figcaption></figure>'
        for p in examples
    )
    m = card["model"]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Robustness card: {html.escape(m['name'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}</style></head><body>"
        f"<h1>Robustness card: {html.escape(m['name'])}</h1>"
        f"<p>Model <code>{html.escape(m['spec'])}</code> ({html.escape(m['kind'])}, {m['parameters']:,} parameters); "
        f"data <code>{html.escape(card['data']['dir'])}</code>, {card['data']['boxes']} boxes in "
        f"{card['data']['volumes']} volumes; profile {card['profile']}; "
        f"advmri {html.escape(card['advmri_version'])}.</p>"
        f"<div id='curves'>{fig}</div>"
        f"<h2>Headline (eps = {card['budget']:g})</h2>{headline_table(card).to_html(index=False)}"
        f"<h2>Checks for gradient masking</h2><p>{html.escape(audit_line(card)).replace('**', '')}</p>"
        f"{checks_table(card).to_html(index=False)}"
        f"<h2>Reference: advmri's own models</h2>{reference_table(card).to_html(index=False)}"
        f"<h2>Every row</h2><p>Means over boxes with 95% intervals from resampling volumes.</p>"
        f"{rows_table(card).to_html(index=False)}" + (f"<h2>Worst boxes</h2>{imgs}" if imgs else "") + "</body></html>"
    )


def _panel(img, vmax: float, box: tuple[int, int, int, int], title: str, scale: int = 2):
    """A grayscale PIL image (0..vmax), the box outlined in red, ``scale``-times enlarged, a title above."""
    from PIL import Image, ImageDraw

    a = np.clip(np.asarray(img, dtype=np.float32) / max(vmax, 1e-12), 0, 1)
    im = Image.fromarray((a * 255).astype(np.uint8)).convert("RGB")
    im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    x, y, w, h = (v * scale for v in box)
    canvas = Image.new("RGB", (im.width, im.height + 16), "white")
    canvas.paste(im, (0, 16))
    d = ImageDraw.Draw(canvas)
    d.rectangle([x, y + 16, x + w - 1, y + 16 + h - 1], outline=(255, 0, 0))
    d.text((2, 2), title, fill=(0, 0, 0))
    return canvas


def worst_examples(extras: dict, card: dict, n: int, folder: Path) -> list[Path]:
    """PNGs of the ``n`` boxes with the lowest adversarial box PSNR at the card's budget (noise runs): target,
    clean, adversarial and random reconstruction side by side, the box in red."""
    from PIL import Image

    cands = []
    for label, (df, ex) in extras["images"].items():
        d = df[(df.kind == "adversarial") & np.isclose(df.param, card["budget"])]
        cands += [(r.box_psnr, label, r, ex) for r in d.itertuples()]
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    eps = next(e for e in card["settings"]["eps"] if np.isclose(e, card["budget"]))
    for rank, (_psnr, label, r, ex) in enumerate(sorted(cands, key=lambda c: (c[0], c[1]))[:n], 1):
        pos = next(
            i
            for i, s in enumerate(ex["samples"])
            if (s.fname, s.slice_idx, s.box.x, s.box.y, s.box.w, s.box.h) == (r.file, r.slice, r.bx, r.by, r.bw, r.bh)
        )
        s, ti = ex["samples"][pos], ex["targets"][pos]
        panels = [
            ("target", s.target),
            ("clean", ex["images"].get((ti, 0.0, "adversarial"))),
            (f"adversarial eps={eps:g}", ex["images"].get((ti, eps, "adversarial"))),
            (f"random eps={eps:g}", ex["images"].get((ti, eps, "random"))),
        ]
        vmax = float(s.target.max())
        tiles = [_panel(img, vmax, (r.bx, r.by, r.bw, r.bh), t) for t, img in panels if img is not None]
        sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * len(tiles), tiles[0].height), "white")
        x = 0
        for t in tiles:
            sheet.paste(t, (x, 0))
            x += t.width + 4
        tag = re.sub(r"[^A-Za-z0-9]+", "_", str(r.label)).strip("_")
        p = folder / f"worst{rank:02d}-{label}-{Path(r.file).stem}-s{r.slice}-{tag}.png"
        sheet.save(p, optimize=True)
        paths.append(p)
    return paths


def write_card(out: Path, card: dict, extras: dict, save_examples: int = 0) -> dict[str, Path]:
    """Write ``card.json``, ``card.md``, ``card.html`` (+ ``plotly.min.js``), ``runs/*.csv``, ``examples/*.png``."""
    import plotly

    out.mkdir(parents=True, exist_ok=True)
    examples = worst_examples(extras, card, save_examples, out / "examples") if save_examples else []
    for label, df in extras.get("tables", {}).items():
        (out / "runs").mkdir(exist_ok=True)
        write_text(out / "runs" / f"{label}.csv", df.to_csv(index=False))
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not (out / "plotly.min.js").is_file() or (out / "plotly.min.js").stat().st_size != js.stat().st_size:
        shutil.copyfile(js, out / "plotly.min.js")
    files = {"json": out / "card.json", "md": out / "card.md", "html": out / "card.html"}
    write_text(files["md"], card_markdown(card, [str(p.relative_to(out)) for p in examples]))
    write_text(files["html"], card_html(card, examples))
    write_text(files["json"], json.dumps(card, indent=1, allow_nan=True) + "\n")  # last: a card.json means complete
    return files
