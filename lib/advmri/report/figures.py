"""Plotly figures for the notebooks and the paper (functions: data in, ``go.Figure`` out)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from advmri.core.boxes import Box

# kaleido 0.2.1 (self-contained, offline static export) is deprecated in plotly 6 but still supported;
# its warnings would otherwise fill every notebook's output
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(plotly|kaleido)(\.|$)")
warnings.filterwarnings("ignore", message=r"(?s).*[Kk]aleido", category=DeprecationWarning)

COLORS = {
    "varnet": "#1f77b4",
    "unet": "#d62728",
    "zero-filled": "#7f7f7f",
    "varnet (ref. update)": "#7fb8e0",
    "unet (ref. update)": "#f0a0a0",
}


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    boxes: Sequence[Box | None] | None = None,
    cols: int | None = None,
    zmax: float | None = None,
    height: int = 300,
) -> go.Figure:
    """Grey-scale images side by side (array orientation, row 0 at the top), boxes outlined."""
    n = len(images)
    cols = cols or n
    rows = int(np.ceil(n / cols))
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.02, vertical_spacing=0.08
    )
    for i, img in enumerate(images):
        r, c = i // cols + 1, i % cols + 1
        img = np.asarray(img, dtype=float)
        fig.add_trace(
            go.Heatmap(
                z=img,
                colorscale="gray",
                showscale=False,
                zmin=0,
                zmax=zmax if zmax is not None else float(np.percentile(img, 99.5)),
            ),
            row=r,
            col=c,
        )
        b = boxes[i] if boxes is not None else None
        if b is not None:
            fig.add_shape(
                type="rect",
                x0=b.x - 0.5,
                x1=b.x + b.w - 0.5,
                y0=b.y - 0.5,
                y1=b.y + b.h - 0.5,
                line=dict(color="yellow", width=2),
                row=r,
                col=c,
            )
        fig.update_xaxes(visible=False, row=r, col=c)
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{i + 1 if i else ''}", row=r, col=c)
    fig.update_layout(height=height * rows, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def zoom(img: np.ndarray, box: Box, margin: int = 6) -> np.ndarray:
    """Crop around a box (with margin) for a close-up."""
    H, W = img.shape[-2:]
    y0, y1 = max(0, box.y - margin), min(H, box.y + box.h + margin)
    x0, x1 = max(0, box.x - margin), min(W, box.x + box.w + margin)
    return np.asarray(img)[..., y0:y1, x0:x1]


def summarise(df: pd.DataFrame, by: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean over boxes of ``metric`` (random draws averaged per box first) and its 95% interval from resampling
    volumes (:func:`advmri.report.stats.cluster_bootstrap`); columns ``mean, lo, hi, count`` (boxes), ``volumes``."""
    from advmri.report.stats import cluster_bootstrap, seed_of

    key = list(by) + ["file", "slice", "bx", "by", "bw", "bh"]
    per_box = df.groupby(key, dropna=False)[metric].mean().reset_index()
    rows = []
    for k, g in per_box.groupby(list(by), dropna=False):
        k = k if isinstance(k, tuple) else (k,)
        m, lo, hi = cluster_bootstrap(g[metric], g["file"], seed=seed_of(*k, metric))
        rows.append(
            dict(
                zip(by, k, strict=True),
                mean=m,
                std=float(g[metric].std()),
                count=int(g[metric].notna().sum()),
                volumes=int(g.loc[g[metric].notna(), "file"].nunique()),
                lo=lo,
                hi=hi,
            )
        )
    return pd.DataFrame(rows, columns=list(by) + ["mean", "std", "count", "volumes", "lo", "hi"])


def metric_curves(df: pd.DataFrame, metric: str = "box_ssim", x_title: str = "eps", title: str = "") -> go.Figure:
    """Metric vs attack parameter per model, adversarial solid, random dashed, 95% bands; a ``clean``
    kind (the rotation runs' un-rotated reconstruction) is a dotted horizontal reference line."""
    s = summarise(df, ["model", "kind", "param"], metric)
    fig = go.Figure()
    xs = sorted(s.loc[s.kind != "clean", "param"].unique()) or [0.0]
    for (model, kind), d in s.groupby(["model", "kind"]):
        d = d.sort_values("param")
        col = COLORS.get(model, "black")
        if kind == "clean":
            fig.add_trace(
                go.Scatter(
                    x=[xs[0], xs[-1]],
                    y=[d["mean"].iloc[0]] * 2,
                    mode="lines",
                    name=f"{model} clean (no rotation)",
                    line=dict(color=col, dash="dot"),
                )
            )
            continue
        dash = "solid" if kind == "adversarial" else "dash"
        fig.add_trace(
            go.Scatter(
                x=d.param,
                y=d["mean"],
                mode="lines+markers",
                name=f"{model} {kind}",
                line=dict(color=col, dash=dash),
                error_y=dict(
                    type="data", symmetric=False, array=d.hi - d["mean"], arrayminus=d["mean"] - d.lo, visible=True
                ),
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=metric.replace("_", " "),
        height=380,
        margin=dict(l=50, r=10, t=50, b=40),
    )
    return fig


def angle_profile(angles: Sequence[float], scores: np.ndarray, metric: str = "box_ssim") -> go.Figure:
    """Box metric as a function of the rotation angle for one target."""
    fig = go.Figure(go.Scatter(x=list(angles), y=list(scores), mode="lines"))
    fig.update_layout(xaxis_title="rotation angle (deg)", yaxis_title=metric.replace("_", " "), height=300)
    return fig
