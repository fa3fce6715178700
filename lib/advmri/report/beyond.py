"""What the paper could not measure (``sweeps/beyond.yaml``): tables and figures.

* :func:`attack_drops`: the clean-target attacks' box-metric drop from the clean reconstruction, per method,
  paired per box (networks and classical reconstructions alike);
* :func:`classical_comparison`: network minus classical drop at equal eps / bound on the classical run's
  boxes, paired per box;
* :func:`stronger_deltas`: a stronger optimiser (restarts, momentum, expectation over masks) minus the
  default 10-step PGA on the same boxes, paired per box;
* erasure / hallucination rates are :func:`advmri.report.analysis.twin_rates`.

Inputs are the concatenated result tables of :func:`advmri.report.analysis.collect` (columns ``target`` and
``variant`` included) of the beyond sweep and the paper sweep. Random draws are averaged per box first;
intervals are 95% volume-clustered bootstrap intervals (:mod:`advmri.report.stats`). Every comparison here is
*exploratory* (uncorrected), except the network-versus-classical family of :func:`classical_comparison`, whose
p-values are Holm-adjusted within it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from advmri.report.analysis import BOX_KEY, DEFAULT_VARIANT, REF_SUFFIX
from advmri.report.stats import holm, volume_test
from advmri.report.values import interval, num, pct, write_values

NETWORKS = ("unet", "varnet")
CLASSICAL = ("cg-sense", "l1-wavelet")


def _ci(x: pd.Series) -> tuple[float, float, float, int]:
    """Mean of ``x`` over boxes (NaN dropped; indexed by :data:`BOX_KEY` among others), its 95% interval from
    resampling volumes (:func:`advmri.report.stats.cluster_bootstrap`), and the number of boxes."""
    from advmri.report.stats import cluster_bootstrap, seed_of

    x = x.dropna()
    files = x.index.get_level_values("file")
    m, lo, hi = cluster_bootstrap(x.to_numpy(float), files, seed=seed_of(len(x), round(float(x.sum()), 9)))
    return m, lo, hi, len(x)


def default_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's attack: target clean, default PGA, our update."""
    return df[(df.target == "clean") & (df.variant == DEFAULT_VARIANT) & ~df.model.str.endswith(REF_SUFFIX)]


def per_box(df: pd.DataFrame, metrics=("box_ssim", "box_mse")) -> pd.DataFrame:
    """Mean over random draws per model x acceleration x attack x variant x param x kind x box."""
    by = ["model", "acceleration", "attack", "variant", "param", "kind"] + BOX_KEY
    return df.groupby(by, dropna=False)[list(metrics)].mean().reset_index()


def _clean(g: pd.DataFrame, attack: str) -> pd.DataFrame:
    """Per-box clean reconstruction: noise at eps 0, rotation's un-rotated reference row."""
    c = g[(g.kind == "adversarial") & (g.param == 0)] if attack == "noise" else g[g.kind == "clean"]
    return c.set_index(BOX_KEY)


def attack_drops(df: pd.DataFrame, metric: str = "box_ssim") -> pd.DataFrame:
    """Per model x acceleration x attack x param of the paper's attack: mean clean, adversarial and random
    ``metric``, the adversarial drop from clean (mean, 95% interval), the random drop, adversarial minus
    random (paired), the median box-MSE ratio adversarial / clean, and the number of boxes."""
    rows = []
    pb = per_box(default_rows(df))
    for (model, acc, attack), g in pb.groupby(["model", "acceleration", "attack"]):
        clean = _clean(g, attack)
        for p in sorted(g.loc[g.kind == "adversarial", "param"].unique()):
            if attack == "noise" and p == 0:
                continue
            adv = g[(g.kind == "adversarial") & (g.param == p)].set_index(BOX_KEY)
            rnd = g[(g.kind == "random") & (g.param == p)].set_index(BOX_KEY)
            drop = _ci(adv[metric] - clean[metric])
            rdrop = _ci(rnd[metric] - clean[metric])
            vs = _ci(adv[metric] - rnd[metric])
            rows.append(
                dict(
                    model=model,
                    acceleration=acc,
                    attack=attack,
                    param=p,
                    clean=clean.loc[adv.index.intersection(clean.index), metric].mean(),
                    adversarial=adv[metric].mean(),
                    random=rnd[metric].mean(),
                    drop=drop[0],
                    drop_lo=drop[1],
                    drop_hi=drop[2],
                    random_drop=rdrop[0],
                    adv_minus_random=vs[0],
                    amr_lo=vs[1],
                    amr_hi=vs[2],
                    mse_ratio=float((adv["box_mse"] / clean["box_mse"]).median()),
                    boxes=drop[3],
                )
            )
    return pd.DataFrame(rows)


def classical_comparison(df: pd.DataFrame, metric: str = "box_ssim") -> pd.DataFrame:
    """On the boxes of each classical method's run (per attack and acceleration): every method's drop
    (adversarial minus clean ``metric``) at each eps / bound, and the network's drop minus the classical
    method's, paired per box (negative: the network loses more), with the volume-level Wilcoxon p-value,
    Holm-adjusted over every network-minus-classical row of the table (one family)."""
    pb = per_box(default_rows(df))
    rows = []
    for c in CLASSICAL:
        for (acc, attack), gc in pb[pb.model == c].groupby(["acceleration", "attack"]):
            boxes = _clean(gc, attack).index
            sub = pb[(pb.acceleration == acc) & (pb.attack == attack)]
            drops = {}
            for m, g in sub.groupby("model"):
                clean = _clean(g, attack)
                for p in gc.loc[gc.kind == "adversarial", "param"].unique():
                    if attack == "noise" and p == 0:
                        continue
                    adv = g[(g.kind == "adversarial") & (g.param == p)].set_index(BOX_KEY)
                    d = (adv[metric] - clean[metric]).reindex(boxes)
                    if d.notna().sum():
                        drops[(m, p)] = d
            for (m, p), d in sorted(drops.items()):
                s = _ci(d)
                diff = d - drops[(c, p)] if m != c and (c, p) in drops else None
                vs = _ci(diff) if diff is not None else (np.nan,) * 3 + (0,)
                pv = (
                    volume_test(diff.dropna(), diff.dropna().index.get_level_values("file"))
                    if diff is not None
                    else np.nan
                )
                rows.append(
                    dict(
                        classical_boxes=c,
                        acceleration=acc,
                        attack=attack,
                        param=p,
                        method=m,
                        drop=s[0],
                        drop_lo=s[1],
                        drop_hi=s[2],
                        minus_classical=vs[0],
                        mc_lo=vs[1],
                        mc_hi=vs[2],
                        p=pv,
                        boxes=s[3],
                    )
                )
    out = pd.DataFrame(rows)
    if len(out):  # one family: every network-minus-classical comparison of the table
        out["p_holm"] = holm(out["p"])
    return out


def stronger_deltas(df: pd.DataFrame) -> pd.DataFrame:
    """Each stronger noise optimiser minus the default PGA on the same boxes, per model x acceleration x
    variant x eps > 0: mean box SSIM of both, the paired difference (negative: the stronger attack does
    more damage), its 95% interval, how many boxes the stronger attack made worse (box MSE higher), and
    the median box-MSE ratio stronger / default."""
    d = df[(df.attack == "noise") & (df.target == "clean") & ~df.model.str.endswith(REF_SUFFIX)]
    pb = per_box(d)
    adv = pb[(pb.kind == "adversarial") & (pb.param > 0)]
    base = adv[adv.variant == DEFAULT_VARIANT].set_index(["model", "acceleration", "param"] + BOX_KEY)
    rows = []
    for (model, acc, variant, p), g in adv[adv.variant != DEFAULT_VARIANT].groupby(
        ["model", "acceleration", "variant", "param"]
    ):
        g = g.set_index(["model", "acceleration", "param"] + BOX_KEY)
        b = base.reindex(g.index)
        ok = b.box_ssim.notna()
        if not ok.any():
            continue
        s = _ci((g.box_ssim - b.box_ssim)[ok])
        rows.append(
            dict(
                model=model,
                acceleration=acc,
                variant=variant,
                param=p,
                default=b.box_ssim[ok].mean(),
                stronger=g.box_ssim[ok].mean(),
                delta=s[0],
                lo=s[1],
                hi=s[2],
                worse=int((g.box_mse[ok] > b.box_mse[ok] * (1 + 1e-6)).sum()),
                mse_ratio=float((g.box_mse[ok] / b.box_mse[ok]).median()),
                boxes=s[3],
            )
        )
    return pd.DataFrame(rows)


COLORS = {"unet": "#d62728", "varnet": "#1f77b4", "cg-sense": "#2ca02c", "l1-wavelet": "#9467bd"}


def erasure_figure(rates: pd.DataFrame, attack: str = "noise") -> go.Figure:
    """Erasure (left) and hallucination (right) rate vs eps / bound per method: adversarial solid,
    random of equal strength dashed (:func:`advmri.report.analysis.twin_rates` output)."""
    titles = {"healthy": "erasure: closer to the lesion-free twin", "lesion": "hallucination: closer to the lesion"}
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(titles.values()), shared_yaxes=True)
    r = rates[(rates.attack == attack) & (rates.param >= 0)]
    for j, (target, _) in enumerate(titles.items(), start=1):
        for model, g in r[r.target == target].groupby("model"):
            g = g.sort_values("param")
            col = COLORS.get(model, "black")
            fig.add_trace(
                go.Scatter(
                    x=g.param,
                    y=g.adversarial,
                    name=f"{model} adversarial",
                    legendgroup=model,
                    showlegend=j == 1,
                    line=dict(color=col),
                ),
                row=1,
                col=j,
            )
            fig.add_trace(
                go.Scatter(
                    x=g.param,
                    y=g.random,
                    name=f"{model} random",
                    legendgroup=model,
                    showlegend=j == 1,
                    line=dict(color=col, dash="dash"),
                ),
                row=1,
                col=j,
            )
    fig.update_yaxes(title_text="fraction of boxes", range=[-0.02, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="eps" if attack == "noise" else "bound (deg)")
    fig.update_layout(height=380, width=900, margin=dict(t=60))
    return fig


def drops_figure(drops: pd.DataFrame, attack: str = "noise") -> go.Figure:
    """Box SSIM drop from the clean reconstruction vs eps / bound per method (95% interval as error bars)."""
    fig = go.Figure()
    for model, g in drops[drops.attack == attack].groupby("model"):
        g = g.sort_values("param")
        fig.add_trace(
            go.Scatter(
                x=g.param,
                y=g["drop"],
                name=f"{model} ({int(g.boxes.max())} boxes)",
                line=dict(color=COLORS.get(model, "black")),
                error_y=dict(
                    type="data", symmetric=False, array=g.drop_hi - g["drop"], arrayminus=g["drop"] - g.drop_lo
                ),
            )
        )
    fig.update_layout(
        xaxis_title="eps" if attack == "noise" else "bound (deg)", yaxis_title="box SSIM drop", height=380, width=640
    )
    return fig


def _fmt(d: pd.DataFrame, cols: dict[str, tuple[str, str, str]]) -> pd.DataFrame:
    """``{new: (mean, lo, hi)}`` -> one ``mean [lo, hi]`` text column each (mean alone where lo is NaN)."""
    d = d.copy()
    for new, (m, lo, hi) in cols.items():
        d[new] = [
            f"{a:.3f}" if np.isnan(b) else f"{a:.3f} [{b:.3f}, {c:.3f}]"
            for a, b, c in zip(d[m], d[lo], d[hi], strict=True)
        ]
        d = d.drop(columns=[m, lo, hi])
    return d


def _classical_table(comp: pd.DataFrame, drops: pd.DataFrame, tables: Path, line: str) -> Path:
    """``classical.md``: :func:`classical_comparison` (``comp``) and, below it, :func:`attack_drops` (``drops``),
    stamped with ``line``."""
    from advmri.report.analysis import _md_table

    t = _fmt(
        comp,
        {
            "drop (adv - clean)": ("drop", "drop_lo", "drop_hi"),
            "method - classical": ("minus_classical", "mc_lo", "mc_hi"),
        },
    )
    t["Holm p"] = [("" if np.isnan(v) else f"{v:.2g}") for v in t.pop("p_holm")]
    t = t.drop(columns="p")
    t = t.rename(columns={"param": "eps / bound", "classical_boxes": "boxes of"})
    d = _fmt(
        drops,
        {
            "drop (adv - clean)": ("drop", "drop_lo", "drop_hi"),
            "adv - random": ("adv_minus_random", "amr_lo", "amr_hi"),
        },
    )
    p = tables / "classical.md"
    p.write_text(
        "Box SSIM drop from the clean reconstruction under the paper's attacks, every method on the "
        "boxes of a classical run, paired per box (mean, 95% volume-clustered bootstrap interval; "
        "method - classical < 0: the method loses more than the classical reconstruction on the same "
        "boxes; Holm p: Wilcoxon on volume means, Holm-adjusted over the table's comparisons)\n\n"
        + _md_table(t, line)
        + "\nEach method on its own boxes: clean, adversarial and random box SSIM, "
        "the drop, adversarial minus random, median box-MSE ratio adversarial / clean\n\n"
        + _md_table(d.rename(columns={"param": "eps / bound"}), line)
    )
    return p


def _stronger_table(st: pd.DataFrame, tables: Path, line: str) -> Path:
    """``stronger.md``: :func:`stronger_deltas` (``st``), stamped with ``line``."""
    from advmri.report.analysis import _md_table

    t = _fmt(st, {"stronger - default": ("delta", "lo", "hi")}).rename(
        columns={
            "param": "eps",
            "default": "default PGA box SSIM",
            "stronger": "stronger box SSIM",
            "worse": "boxes worse (MSE)",
            "mse_ratio": "median MSE ratio",
        }
    )
    p = tables / "stronger.md"
    p.write_text(
        "Stronger noise attacks at the same per-coil budget minus the default 10-step PGA (paper "
        "sweep) on the same boxes: box SSIM paired per box (mean, 95% interval; < 0: stronger)\n\n" + _md_table(t, line)
    )
    return p


def _beyond_figures(
    tw: pd.DataFrame, drops: pd.DataFrame, comp: pd.DataFrame
) -> tuple[pd.DataFrame, list[tuple[str, go.Figure]]]:
    """The twin rates of the default-variant rows ``tw`` (empty without twin columns) and the ``(name, figure)``
    pairs: erasure / hallucination per attack, classical-drop per attack on the cg-sense boxes."""
    from advmri.report.analysis import twin_rates

    figs = []
    rates = twin_rates(tw) if tw.healthy_closer.notna().any() else pd.DataFrame()
    if len(rates) and {"healthy", "lesion"} & set(rates.target):
        figs.append(("erasure_noise", erasure_figure(rates, "noise")))
        if ((rates.attack == "rotation") & rates.target.isin(["healthy", "lesion"])).any():
            figs.append(("erasure_rotation", erasure_figure(rates, "rotation")))
    classical_models = set(CLASSICAL) & set(drops.model) if len(drops) else set()
    if classical_models:
        for attack in ("noise", "rotation"):
            boxes = comp[(comp.attack == attack) & (comp.classical_boxes == "cg-sense")] if len(comp) else comp
            if len(boxes):
                figs.append((f"classical_{attack}", drops_figure(boxes.rename(columns={"method": "model"}), attack)))
    return rates, figs


def write_beyond(df: pd.DataFrame, tables, figures, stamp: dict, formats=("png",)) -> dict[str, list]:
    """``erasure.md``, ``classical.md``, ``stronger.md`` in ``tables`` and the erasure / classical-drop
    figures in ``figures`` (html + ``formats``), each stamped with the runs and code versions
    (``beyond_provenance.json`` beside them)."""
    import json

    from advmri.report.analysis import save_figure, write_twin_rates
    from advmri.util.paths import project_path

    tables, figures = project_path(tables), project_path(figures)
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    line = (
        f"sweeps {', '.join(stamp['sweeps'])} · {len(stamp['runs'])} runs · code "
        f"{','.join(stamp['result_code_versions'])}"
    )
    out: dict[str, list] = {"tables": [], "figures": []}
    tw = df[df.variant == DEFAULT_VARIANT]
    p = write_twin_rates([tw], tables, line)
    if p:
        out["tables"].append(p)
    drops = attack_drops(df)
    comp = classical_comparison(df)
    if len(comp):
        out["tables"].append(_classical_table(comp, drops, tables, line))
    st = stronger_deltas(df)
    if len(st):
        out["tables"].append(_stronger_table(st, tables, line))
    rates, figs = _beyond_figures(tw, drops, comp)
    for name, fig in figs:
        out["figures"] += save_figure(fig, figures, name, line, formats, stamp_y=-0.25, bottom=80)
    for folder in (tables, figures):
        (folder / "beyond_provenance.json").write_text(json.dumps(stamp, indent=1))
    out["tables"].append(write_values(tables, "beyond", beyond_values(rates, drops, comp, st)))
    return out


def _key(*parts) -> str:
    parts = tuple(str(p).replace(REF_SUFFIX, "_ref") if isinstance(p, str) else p for p in parts)
    return "_".join(re.sub(r"[^\w.]+", "_", f"{p:g}" if isinstance(p, float) else str(p)).strip("_") for p in parts)


def beyond_values(rates: pd.DataFrame, drops: pd.DataFrame, comp: pd.DataFrame, st: pd.DataFrame) -> dict[str, str]:
    """The beyond sweep's numbers the prose cites (:mod:`advmri.report.values`): erasure / hallucination rates
    (``tw_<task>_<model>_<attack>_<param>_{adv,rnd,diff,p}``), drops and network-minus-classical differences
    (``cl_<boxes of>_<attack>_<param>_<method>_{drop,minus,p}``) and stronger-attack deltas
    (``st_<model>_<variant>_<param>_{delta,default,stronger}``)."""
    v: dict[str, str] = {}
    task = {"healthy": "erasure", "lesion": "halluc", "clean": "paper"}
    for r in rates.itertuples() if len(rates) else []:
        k = _key("tw", task[r.target], r.model, r.attack, "clean" if r.param == -1.0 else float(r.param))
        v[k + "_adv"] = pct(r.adversarial)
        if not pd.isna(r.random):
            v[k + "_rnd"] = pct(r.random)
            v[k + "_diff"] = interval(r.adv_minus_random, r.lo, r.hi, 2)
            v[k + "_p"] = f"{r.p_mcnemar:.2g}"
        v[k + "_boxes"] = str(int(r.boxes))
    for r in comp.itertuples() if len(comp) else []:
        k = _key("cl", r.classical_boxes, r.attack, float(r.param), r.method)
        v[k + "_drop"] = num(r.drop, 2, sign=True)
        if not pd.isna(r.minus_classical):
            v[k + "_minus"] = interval(r.minus_classical, r.mc_lo, r.mc_hi, 2)
            v[k + "_p"] = f"{r.p_holm:.2g}"
        v[_key("cl", r.classical_boxes, "boxes")] = (
            str(int(r.boxes))
            if r.method == r.classical_boxes
            else v.get(_key("cl", r.classical_boxes, "boxes"), str(int(r.boxes)))
        )
    for r in drops.itertuples() if len(drops) else []:
        v[_key("drop", r.model, r.attack, float(r.param), "mse_ratio")] = num(r.mse_ratio, 1)
    for r in st.itertuples() if len(st) else []:
        k = _key("st", r.model, r.variant, float(r.param))
        v[k + "_delta"] = interval(r.delta, r.lo, r.hi, 3)
        v[k + "_default"], v[k + "_stronger"] = num(r.default, 2), num(r.stronger, 2)
        v[k + "_mse_ratio"] = num(r.mse_ratio, 2)
    return v
