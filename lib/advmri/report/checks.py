"""The reviewer's checks (``sweeps/checks.yaml``): the authors' budget law, float32 vs bf16, attack strength.

* :func:`budget_law`: the attained per-coil budget fraction of the authors' update (``update: reference``) as a
  function of the coil count ``C``, with the fit ``f(C) = c / sqrt(C)`` and the conversion of our eps to theirs
  (equal attained norms: ``eps_authors = eps_ours / f(C)``);
* :func:`precision_check`: the VarNet in float32 against the paper's bf16 runs on the same boxes;
* :func:`step_sweep`: steps x step size at eps 0.01: how far the paper's 10 steps of 0.5 are from the strongest.

All comparisons here are exploratory (no multiplicity correction); means over boxes with volume-clustered
bootstrap intervals (:mod:`advmri.report.stats`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from advmri.data.fastmri_h5 import read_info
from advmri.report.analysis import BOX_KEY, collect, run_params
from advmri.report.stats import cluster_bootstrap, seed_of
from advmri.report.values import num, pct, write_values
from advmri.util.paths import project_path

__all__ = [
    "collect_checks",
    "budget_law",
    "fit_law",
    "law_figure",
    "precision_check",
    "step_sweep",
    "write_checks",
    "BOUND_CONSTANT",
]

PRECISION_TOLERANCE = {"box_psnr": 0.1, "box_ssim": 0.01}  # on a reported mean (dB, SSIM units), stated in advance
CONVERGED = 0.95  # 10 steps of 0.5 have converged when they reach this share of the strongest setting's box MSE
BOUND_CONSTANT = 1.5  # the update's per-coil norm is at most (1 + step 0.5) / sqrt(C) when energy is even over coils


def _coils(data: str | None) -> int:
    """Coil count of a run's data folder: its first file's k-space, or, when the folder has not been generated
    here, the ``c<C>`` of the name :func:`advmri.app.pipeline.make_coil_data` gives it (``coils/c15/test``)."""
    import re

    from advmri.util.errors import UserError

    if data is None:
        raise UserError("a checks run without its data folder in its metadata: recompute it (the checks sweep)")
    files = sorted(project_path(data).glob("multicoil/*.h5")) or sorted(project_path(data).glob("*.h5"))
    if files:
        return int(read_info(files[0]).num_coils)
    m = re.search(r"(?:^|/)c(\d+)/test/?$", str(data))
    if m:
        return int(m.group(1))
    raise UserError(
        f"{project_path(data)}: data folder of a checks run not found (python -m advmri.app.pipeline --until data)"
    )


def collect_checks(folder: str | Path) -> pd.DataFrame:
    """The checks sweep's rows with the run parameters they differ in: ``steps, step_size, precision, update,
    coils`` (from each run's ``results.meta.json``)."""
    df, _ = collect(folder)
    folder = project_path(folder)
    cols = {}
    for run in df.sweep_run.unique():
        p = run_params(folder / run)
        n = p.get("noise") or {}
        cols[run] = dict(
            steps=n.get("steps"),
            step_size=n.get("step_size"),
            update=n.get("update", "ours"),
            precision=p.get("precision", "fp32"),
            data=p.get("data"),
            coils=_coils(p.get("data")),
        )
    extra = pd.DataFrame.from_dict(cols, orient="index")
    return df.drop(columns=[c for c in extra.columns if c in df.columns]).join(extra, on="sweep_run")


def budget_law(df: pd.DataFrame) -> pd.DataFrame:
    """Per coil count and eps of the reference-update runs: mean, min and max attained budget fraction over
    boxes (adversarial rows, eps > 0), boxes, and ``sqrt(C)`` times the mean (constant if ``f = c / sqrt(C)``)."""
    d = df[(df["update"] == "reference") & (df.kind == "adversarial") & (df.param > 0)]
    g = d.groupby(["coils", "param"])["budget_fraction"]
    t = g.agg(["mean", "min", "max", "count"]).reset_index().rename(columns={"param": "eps", "count": "boxes"})
    t["sqrt_C_times_mean"] = t["mean"] * np.sqrt(t["coils"])
    t["bound 1.5/sqrt(C)"] = BOUND_CONSTANT / np.sqrt(t["coils"])
    return t


def fit_law(law: pd.DataFrame) -> float:
    """Least-squares ``c`` of ``fraction = c / sqrt(C)`` over every (coil count, eps) mean."""
    x = 1 / np.sqrt(law["coils"].to_numpy(float))
    return float((x * law["mean"]).sum() / (x * x).sum())


def law_figure(law: pd.DataFrame, c: float) -> go.Figure:
    """The budget-law figure: attained budget fraction against the coil count, with the fitted ``c / sqrt(C)``."""
    fig = go.Figure()
    for eps, d in law.groupby("eps"):
        fig.add_trace(
            go.Scatter(
                x=d["coils"],
                y=d["mean"],
                mode="markers",
                name=f"measured, eps {eps:g}",
                error_y=dict(type="data", symmetric=False, array=d["max"] - d["mean"], arrayminus=d["mean"] - d["min"]),
            )
        )
    cs = np.linspace(law["coils"].min(), law["coils"].max(), 100)
    fig.add_trace(go.Scatter(x=cs, y=c / np.sqrt(cs), mode="lines", name=f"fit {c:.2f}/sqrt(C)"))
    fig.add_trace(
        go.Scatter(x=cs, y=BOUND_CONSTANT / np.sqrt(cs), mode="lines", line=dict(dash="dash"), name="bound 1.5/sqrt(C)")
    )
    fig.update_layout(
        title="Authors' update: attained per-coil budget fraction vs coil count",
        xaxis_title="coils C",
        yaxis_title="attained fraction of eps ||k_i||",
        width=640,
        height=400,
    )
    return fig


def _mean_ci(d: pd.DataFrame, metric: str, *key) -> str:
    m, lo, hi = cluster_bootstrap(d[metric], d["file"], seed=seed_of(*key, metric))
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def precision_check(checks: pd.DataFrame, paper: pd.DataFrame, eps: float = 0.01) -> pd.DataFrame:
    """VarNet float32 (checks) vs the paper's bf16 runs on the same boxes, at eps 0 (clean) and ``eps``: mean box
    PSNR and box SSIM of each kind in both precisions and their difference (paired per box)."""
    fp = checks[(checks.model == "varnet") & (checks.precision == "fp32") & (checks["update"] == "ours")]
    bf = paper[paper.model == "varnet"]
    rows = []
    for (acc, p, kind), g in fp.groupby(["acceleration", "param", "kind"]):
        if p not in (0.0, eps) or (p == 0 and kind == "random"):
            continue
        a = g.groupby(BOX_KEY)[["box_psnr", "box_ssim"]].mean()
        b = (
            bf[(bf.acceleration == acc) & (bf.param == p) & (bf.kind == kind)]
            .groupby(BOX_KEY)[["box_psnr", "box_ssim"]]
            .mean()
            .reindex(a.index)
        )
        diff = (a - b).reset_index()
        rows.append(
            dict(
                acceleration=acc,
                setting="clean" if p == 0 else f"{kind} {p:g}",
                boxes=len(a),
                psnr_fp32=a.box_psnr.mean(),
                psnr_bf16=b.box_psnr.mean(),
                psnr_diff=_mean_ci(diff, "box_psnr", acc, p, kind),
                max_abs_psnr=float(diff.box_psnr.abs().max()),
                ssim_fp32=a.box_ssim.mean(),
                ssim_bf16=b.box_ssim.mean(),
                ssim_diff=_mean_ci(diff, "box_ssim", acc, p, kind),
                max_abs_ssim=float(diff.box_ssim.abs().max()),
            )
        )
    return pd.DataFrame(rows)


def step_sweep(checks: pd.DataFrame, eps: float = 0.01) -> pd.DataFrame:
    """Steps x step size at ``eps`` (runs without random draws): mean adversarial box PSNR per model x acceleration
    x step size x steps, and box MSE relative to the strongest setting on the same boxes (median over boxes; 1:
    as strong as the best)."""
    d = checks[
        (checks.kind == "adversarial")
        & (checks.param == eps)
        & (checks["update"] == "ours")
        & checks.steps.notna()
        & (checks.precision == np.where(checks.model == "varnet", "bf16", "fp32"))
    ]
    rows = []
    for (model, acc), g in d.groupby(["model", "acceleration"]):
        best = g.groupby(BOX_KEY)["box_mse"].max()
        for (ss, st), h in g.groupby(["step_size", "steps"]):
            h = h.set_index(BOX_KEY)
            rows.append(
                dict(
                    model=model,
                    acceleration=acc,
                    step_size=ss,
                    steps=int(st),
                    boxes=len(h),
                    box_psnr=h.box_psnr.mean(),
                    box_ssim=h.box_ssim.mean(),
                    mse_vs_best=float((h.box_mse / best.reindex(h.index)).median()),
                )
            )
    return pd.DataFrame(rows)


def _law_outputs(
    law: pd.DataFrame, tables: Path, figures: Path, line: str, formats
) -> tuple[dict[str, str], Path, list[Path]]:
    """From :func:`budget_law` (``law``): the values the prose cites (``law_*``), ``budget_law.md`` and the
    ``budget_law`` figure files (html + ``formats``), stamped with ``line``."""
    from advmri.report.analysis import _md_table, save_figure

    c = fit_law(law)
    values = dict(
        law_c=num(c, 2),
        law_f15=num(c / np.sqrt(15), 2),
        law_f8=num(c / np.sqrt(8), 2),
        law_factor15=num(np.sqrt(15) / c, 1),
        law_factor8=num(np.sqrt(8) / c, 1),
        law_coils=", ".join(str(int(x)) for x in sorted(law.coils.unique())),
        law_boxes=str(int(law["boxes"].min())),
    )
    for coils, g in law.groupby("coils"):
        values[f"law_meas_c{int(coils)}"] = num(float(g["mean"].mean()), 2)
    conv = pd.DataFrame({"coils": [4, 8, 15, 24]}).assign(
        attained=lambda t: c / np.sqrt(t.coils), eps_authors_for_ours_0_01=lambda t: 0.01 / (c / np.sqrt(t.coils))
    )
    shown = law.assign(coils=law.coils.astype(int).astype(str), boxes=law.boxes.astype(int).astype(str))
    conv = conv.assign(coils=conv.coils.astype(str))  # (an all-numeric frame prints its integers as floats)
    p = tables / "budget_law.md"
    p.write_text(
        f"Authors' update (`update: reference`): attained fraction of the per-coil budget per coil count "
        f"(U-Net, 8x, the same boxes per coil count); least-squares fit fraction = {c:.3f} / sqrt(C)\n\n"
        + _md_table(shown, line)
        + "\nOur eps -> the authors' eps of equal attained per-coil norm "
        "(eps_authors = eps_ours / f(C)), e.g. for our eps 0.01\n\n" + _md_table(conv, line)
    )
    return values, p, save_figure(law_figure(law, c), figures, "budget_law", line, formats)


def _precision_outputs(prec: pd.DataFrame, tables: Path, line: str) -> tuple[dict[str, str], Path]:
    """From :func:`precision_check` (``prec``): the values the prose cites (``prec_*``, the verdict against
    :data:`PRECISION_TOLERANCE`) and ``precision.md``, stamped with ``line``."""
    from advmri.report.analysis import _md_table

    worst_psnr = float((prec.psnr_fp32 - prec.psnr_bf16).abs().max())
    worst_ssim = float((prec.ssim_fp32 - prec.ssim_bf16).abs().max())
    values = dict(
        prec_max_psnr=num(worst_psnr, 2),
        prec_max_ssim=num(worst_ssim, 3),
        prec_max_box_psnr=num(float(prec.max_abs_psnr.max()), 2),
        prec_boxes=str(int(prec.boxes.min())),
    )
    ok = worst_psnr <= PRECISION_TOLERANCE["box_psnr"] and worst_ssim <= PRECISION_TOLERANCE["box_ssim"]
    values["prec_verdict"] = ("within" if ok else "**outside**") + (
        f" the stated tolerance of {PRECISION_TOLERANCE['box_psnr']:g} dB box PSNR and "
        f"{PRECISION_TOLERANCE['box_ssim']:g} box SSIM on every reported mean"
    )
    p = tables / "precision.md"
    p.write_text(
        "VarNet in float32 (checks sweep) vs bfloat16 autocast (paper sweep) on the same boxes: mean box "
        "PSNR (dB) and box SSIM, and float32 minus bf16 paired per box (mean, 95% volume-clustered "
        "interval; max |difference| over boxes)\n\n" + _md_table(prec, line)
    )
    return values, p


def _steps_outputs(steps: pd.DataFrame, tables: Path, line: str) -> tuple[dict[str, str], Path]:
    """From :func:`step_sweep` (``steps``): the values the prose cites (``steps_*``, the verdict against
    :data:`CONVERGED`) and ``steps.md``, stamped with ``line``."""
    from advmri.report.analysis import _md_table

    values: dict[str, str] = {}
    for (model, acc), g in steps.groupby(["model", "acceleration"]):
        k = f"steps_{model}_{acc}x"
        dflt = g[(g.step_size == 0.5) & (g.steps == 10)]
        best = g.loc[g.mse_vs_best.idxmax()]
        values[k + "_default_vs_best"] = pct(float(dflt.mse_vs_best.iloc[0])) if len(dflt) else "n/a"
        values[k + "_best"] = f"{int(best.steps)} steps of {best.step_size:g}"
        values[k + "_boxes"] = str(int(g.boxes.min()))
    dflt = steps[(steps.step_size == 0.5) & (steps.steps == 10)].mse_vs_best
    values["steps_default_vs_best_min"] = pct(float(dflt.min()))
    values["steps_verdict"] = (
        f"had converged: within {100 * (1 - CONVERGED):.0f}% of the strongest setting's box MSE for every model "
        "and acceleration"
        if len(dflt) and dflt.min() >= CONVERGED
        else f"had **not** converged everywhere (at worst {pct(float(dflt.min()))} of the strongest setting's box MSE)"
    )
    p = tables / "steps.md"
    p.write_text(
        "Attack strength at eps 0.01: steps x step size (fraction of the budget per step); mean "
        "adversarial box PSNR and SSIM, and median box MSE relative to the strongest setting on the same "
        "boxes (1: as strong)\n\n" + _md_table(steps, line)
    )
    return values, p


def write_checks(
    checks_dir: str | Path, paper: pd.DataFrame, tables: str | Path, figures: str | Path, formats=("png",)
) -> dict[str, list[Path]]:
    """``budget_law.md`` (+ figure ``budget_law``), ``precision.md`` and ``steps.md`` from the checks sweep."""
    tables, figures = project_path(tables), project_path(figures)
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    checks = collect_checks(checks_dir)
    line = (
        f"sweep checks · {checks.sweep_run.nunique()} runs · code "
        f"{','.join(sorted(checks.code_version.astype(str).unique()))}"
    )
    out: dict[str, list[Path]] = {"tables": [], "figures": []}
    values: dict[str, str] = {}
    law = budget_law(checks)
    if len(law):
        v, p, figs = _law_outputs(law, tables, figures, line, formats)
        values.update(v)
        out["tables"].append(p)
        out["figures"] += figs
    prec = precision_check(checks, paper)
    if len(prec):
        v, p = _precision_outputs(prec, tables, line)
        values.update(v)
        out["tables"].append(p)
    steps = step_sweep(checks)
    if len(steps):
        v, p = _steps_outputs(steps, tables, line)
        values.update(v)
        out["tables"].append(p)
    out["tables"].append(write_values(tables, "checks", values))
    return out
