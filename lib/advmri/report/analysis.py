"""Sweep analysis: collect result tables, summarise with 95% intervals, write stamped figures/tables."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from advmri.experiments.record import RunRecord
from advmri.experiments.sweep import SweepError
from advmri.report.figures import metric_curves, summarise
from advmri.report.values import interval, num, write_values
from advmri.util.paths import project_path
from advmri.util.provenance import lib_version


def collect(sweep_dir: str | Path, run_ids: list[str] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Completed runs' tables of a sweep folder, concatenated; plus the runs' statuses.

    ``run_ids``: use only these runs (the pipeline passes the runs of the sweep it just ran, so
    tables left by an earlier configuration in the same folder never mix in). With ``None`` every
    completed run is used, and a warning names any model x attack x acceleration that several
    runs cover (stale runs from another configuration would be averaged together)."""
    sweep_dir = project_path(sweep_dir)
    frames, statuses = [], []
    found = RunRecord.in_sweep(sweep_dir)
    for rec in found:
        if run_ids is not None and rec.folder.name not in run_ids:
            continue
        s = rec.read_status()
        if s is None:
            warnings.warn(f"{rec.status_path}: unreadable status (run interrupted?); run skipped", stacklevel=2)
            continue
        statuses.append(s)
        if s.get("status") == "ok":
            why = rec.why_not_done()
            if why is not None:
                raise SweepError(f"{rec.table}: {why}; re-run the sweep to recompute it")
            frames.append(_run_frame(rec))
    if run_ids is not None:
        missing = sorted(set(run_ids) - {rec.folder.name for rec in found})
        if missing:
            warnings.warn(f"{sweep_dir}: runs without a status (not run yet?): {', '.join(missing)}", stacklevel=2)
    if not frames:
        raise FileNotFoundError(f"{sweep_dir}: no completed runs" + (f" among {sorted(run_ids)}" if run_ids else ""))
    df = pd.concat(frames, ignore_index=True)
    # shards of one configuration cover disjoint boxes and concatenate; runs covering the same box
    # (stale runs of another configuration) would be pooled: say so
    key = ["model", "config", "attack", "acceleration", "file", "slice", "bx", "by", "bw", "bh"]
    cover = df.groupby(key)["sweep_run"].nunique()
    if run_ids is None and (cover > 1).any():
        dup = cover[cover > 1].reset_index()
        where = ", ".join(sorted({"/".join(map(str, r)) for r in dup[key[:4]].itertuples(index=False)}))
        warnings.warn(
            f"{sweep_dir}: several runs cover {where} ({len(dup)} boxes); their results are pooled. "
            "Pass run_ids to analyse one configuration.",
            stacklevel=2,
        )
    return df, statuses


def _run_frame(rec: RunRecord) -> pd.DataFrame:
    """A completed run's table with its model label (reference update), run folder, target, variant and data."""
    folder = rec.folder
    return _label_update(rec.read_table(), run_update(folder)).assign(
        sweep_run=folder.name,
        target=run_target(folder),
        variant=run_variant(folder),
        data_dir=run_params(folder).get("data"),
    )


REF_SUFFIX = " (ref. update)"


def run_params(folder: Path) -> dict:
    """A sweep run's resolved parameters (``AttackRun.as_dict()``), stored once per run in its
    ``results.meta.json``; ``{}`` when the run wrote none."""
    return RunRecord(folder).read_meta().get("run") or {}


def run_update(folder: Path) -> str:
    """The noise update (``ours`` / ``reference``) of a sweep run, from its ``results.meta.json`` or else
    its ``params.json``."""
    rec = RunRecord(folder)
    if rec.meta.is_file():
        return (run_params(folder).get("noise") or {}).get("update") or "ours"
    return rec.read_params().get("update", "ours") if rec.params_path.is_file() else "ours"


def run_target(folder: Path) -> str:
    """What the attack of a sweep run pulled toward: ``clean`` (the paper: away from the clean target),
    ``healthy`` (erasure) or ``lesion`` (hallucination, on the lesion-free twins); from ``results.meta.json``
    (runs made before the parameter existed have none there: ``clean``)."""
    p = run_params(folder)
    cfg = p.get(p.get("attack", "noise")) or {}
    return cfg.get("target", "clean")


DEFAULT_VARIANT = "PGA"


def run_variant(folder: Path) -> str:
    """The noise optimiser of a sweep run beyond the paper's default 10-step PGA, e.g. ``restarts 2``,
    ``momentum 0.9``, ``mask draws 4`` (joined by ``+``); ``PGA`` for the default (and for rotation runs)."""
    p = run_params(folder)
    if p.get("attack", "noise") != "noise":
        return DEFAULT_VARIANT
    cfg = p.get("noise") or {}
    parts = [
        f"{label} {cfg[k]:g}"
        for k, label in (("restarts", "restarts"), ("momentum", "momentum"), ("mask_draws", "mask draws"))
        if cfg.get(k)
    ]
    return " + ".join(parts) or DEFAULT_VARIANT


def _label_update(df: pd.DataFrame, update: str = "ours") -> pd.DataFrame:
    """Noise runs with the authors' update (``noise.update == 'reference'`` in the run's parameters) are
    told apart from ours by their model label, e.g. ``varnet (ref. update)``, in every table and figure."""
    if df.empty:
        return df
    ref = (df["attack"] == "noise") & (update == "reference")
    if ref.any():
        df = df.copy()
        df.loc[ref, "model"] = df.loc[ref, "model"] + REF_SUFFIX
    return df


def stamp(df: pd.DataFrame, sweep: str) -> dict:
    """Provenance of a results frame: sweep name, run ids and the code versions that computed them."""
    return dict(
        sweep=sweep,
        runs=sorted(df.sweep_run.unique().tolist()),
        result_code_versions=sorted(df.code_version.astype(str).unique().tolist()),
        analysis_code_version=lib_version(),
    )


def _md_table(d: pd.DataFrame, stamp_line: str) -> str:
    return d.to_markdown(index=False, floatfmt=".3f") + f"\n\n<sub>{stamp_line}</sub>\n"


def _fixed_svg_ids(svg: bytes, name: str) -> bytes:
    """Plotly's SVG made byte-stable: its random figure id (``defs-<hex>``, ``clip<hex>...``) replaced by one
    derived from ``name``, and every element's attributes in sorted order (kaleido's first render of a process
    writes them in another order than the later ones)."""
    import hashlib
    import re
    import xml.etree.ElementTree as ET

    found = re.search(rb'id="defs-([0-9a-f]{6})"', svg)
    if found is not None:
        svg = svg.replace(found.group(1), hashlib.sha256(name.encode()).hexdigest()[:6].encode())
    ET.register_namespace("", "http://www.w3.org/2000/svg")
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(svg)
    for el in root.iter():
        el.attrib = dict(sorted(el.attrib.items()))
    return ET.tostring(root, encoding="utf-8", xml_declaration=False)


def save_figure(
    fig,
    folder: Path,
    name: str,
    stamp_line: str,
    formats=("png", "svg"),
    stamp_y: float = -0.22,
    bottom: int = 70,
    size: dict | None = None,
) -> list[Path]:
    """``folder/name.html`` and one static image per format of ``fig``, the stamp line under the plot; a failed
    static export (kaleido missing) is reported and skipped, the html is always written. Returns the files."""
    fig.add_annotation(
        text=stamp_line, xref="paper", yref="paper", x=0, y=stamp_y, showarrow=False, font=dict(size=9, color="grey")
    )
    fig.update_layout(margin=dict(b=bottom))
    for i, trace in enumerate(fig.data):  # plotly draws random ids otherwise: the same figure, other bytes
        trace.uid = f"{name}-{i}"
    fig.write_html(folder / f"{name}.html", include_plotlyjs="cdn", div_id=f"advmri-{name}")
    out = [folder / f"{name}.html"]
    for fmt in formats:
        try:
            data = fig.to_image(format=fmt, **(size or {}))
            if fmt == "svg":
                data = _fixed_svg_ids(data, name)
            (folder / f"{name}.{fmt}").write_bytes(data)
            out.append(folder / f"{name}.{fmt}")
        except Exception as e:  # static export needs kaleido; html is always written
            print(f"static export of {name}.{fmt} failed: {e}")
    return out


def write_outputs(
    df: pd.DataFrame, sweep: str, figures: str | Path, tables: str | Path, formats=("png", "svg")
) -> dict[str, list[Path]]:
    """Figures (html + static) and Markdown tables for the paper, each stamped with the sweep,
    run ids and code version (stamp in the figure title/footer and in ``provenance.json``)."""
    figures, tables = project_path(figures), project_path(tables)
    figures.mkdir(parents=True, exist_ok=True)
    tables.mkdir(parents=True, exist_ok=True)
    st = stamp(df, sweep)
    line = f"sweep {sweep} · {len(st['runs'])} runs · code {','.join(st['result_code_versions'])}"
    written: dict[str, list[Path]] = {"figures": _write_curves(df, figures, line, formats), "tables": []}
    for attack in ("noise", "rotation"):
        d = df[df.attack == attack]
        if not d.empty:
            written["tables"] += _write_attack_tables(d, attack, tables, line)
    written["tables"] += _write_paper_tables(df, tables, line)
    (figures / "provenance.json").write_text(json.dumps(st, indent=1))
    (tables / "provenance.json").write_text(json.dumps(st, indent=1))
    return written


CURVES = [
    ("noise", "box_ssim", "eps"),
    ("noise", "box_psnr", "eps"),
    ("noise", "img_ssim", "eps"),
    ("rotation", "box_ssim", "angle bound (deg)"),
    ("rotation", "box_psnr", "angle bound (deg)"),
]  # (attack, metric, x axis title) of the figures, one per acceleration


def _write_curves(df: pd.DataFrame, figures: Path, line: str, formats) -> list[Path]:
    """The metric-against-strength figures of :data:`CURVES`, one per attack, metric and acceleration."""
    written: list[Path] = []
    for attack, metric, xt in CURVES:
        d = df[df.attack == attack]
        if d.empty:
            continue
        for acc, da in d.groupby("acceleration"):
            fig = metric_curves(da, metric, x_title=xt, title=f"{attack}: {metric.replace('_', ' ')} at {acc}x")
            written += save_figure(
                fig,
                figures,
                f"{attack}_{metric}_{acc}x",
                line,
                formats,
                stamp_y=-0.22,
                bottom=70,
                size=dict(width=640, height=400),
            )
    return written


def _with_clean_rows(d: pd.DataFrame) -> pd.DataFrame:
    """``d`` with its clean rows (the un-rotated reconstruction) as adversarial and random rows of param -1."""
    clean = d[d.kind == "clean"]
    return pd.concat(
        [d[d.kind != "clean"], clean.assign(kind="adversarial", param=-1.0), clean.assign(kind="random", param=-1.0)],
        ignore_index=True,
    )


def _summary_table(d: pd.DataFrame, attack: str, has_clean: bool) -> pd.DataFrame:
    """One attack's metrics per model, acceleration and param, ``mean [lo, hi]`` for each metric and kind."""
    rows = []
    for metric in ("box_psnr", "box_ssim", "img_ssim", "lesion_retained") + (
        ("budget_fraction", "adv_sampled_fraction", "random_sampled_fraction") if attack == "noise" else ()
    ):
        s = summarise(d, ["model", "acceleration", "kind", "param"], metric)
        s["metric"] = metric
        rows.append(s)
    s = pd.concat(rows)
    s["value"] = s.apply(lambda r: f"{r['mean']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]", axis=1)
    wide = s.pivot_table(
        index=["model", "acceleration", "param"], columns=["metric", "kind"], values="value", aggfunc="first"
    )
    wide.columns = [f"{m} {k}" for m, k in wide.columns]
    wide = wide.reset_index()
    if has_clean:
        wide["param"] = wide["param"].map(lambda v: "clean (no rotation)" if v == -1.0 else f"{v:g}")
    return wide.rename(columns={"param": "eps" if attack == "noise" else "bound (deg)"})


def _write_attack_tables(d: pd.DataFrame, attack: str, tables: Path, line: str) -> list[Path]:
    """``<attack>.md`` (:func:`_summary_table`), ``<attack>_paired.md`` (:func:`paired_effect`) and
    ``<attack>_per_label.md`` (box SSIM by label at the largest setting) of one attack's rows ``d``."""
    has_clean = bool(len(d[d.kind == "clean"]))
    if has_clean:  # the reference row: the un-rotated reconstruction, shown as bound "clean"
        d = _with_clean_rows(d)
    p = tables / f"{attack}.md"
    p.write_text(_md_table(_summary_table(d, attack, has_clean), line))
    written = [p]
    d = d[d.param >= 0]
    pe = (
        paired_effect(d)
        .drop(columns="attack")
        .rename(
            columns={
                "param": "eps" if attack == "noise" else "bound (deg)",
                "mean": "adv - random",
                "worse": "boxes worse",
                "count": "boxes",
            }
        )
    )
    p = tables / f"{attack}_paired.md"
    p.write_text(
        "Box SSIM, adversarial minus random, paired per box (mean, 95% volume-clustered bootstrap "
        "interval, volume-level Wilcoxon p; exploratory, uncorrected: the primary family is in "
        "`primary`)\n\n" + _md_table(pe, line)
    )
    written.append(p)
    # per-label breakdown at the largest setting
    top = d[d.param == d.param.max()]
    lab = summarise(top, ["model", "label", "kind"], "box_ssim")[
        ["model", "label", "kind", "mean", "lo", "hi", "count"]
    ]
    p = tables / f"{attack}_per_label.md"
    p.write_text(
        f"Box SSIM by label at {'eps' if attack == 'noise' else 'bound'} = {d.param.max()}\n\n" + _md_table(lab, line)
    )
    written.append(p)
    return written


def _write_paper_tables(df: pd.DataFrame, tables: Path, line: str) -> list[Path]:
    """``primary.md`` (the primary claims), the paper's values, ``small_boxes.md`` and, with clean rows,
    ``rotation_zero_vs_clean.md``."""
    from advmri.report.claims import claims_markdown, primary_claims

    claims = primary_claims(df)
    p = tables / "primary.md"
    p.write_text(claims_markdown(claims, line))
    written = [p, write_values(tables, "paper", paper_values(df, claims, height=image_height(df)))]
    p = tables / "small_boxes.md"
    p.write_text(
        f"Box SSIM by box size: boxes at least {SSIM_WIN} px wide and high, and the smaller ones, whose SSIM "
        f"is computed on the box grown symmetrically to {SSIM_WIN} px (clipped to the image), so it also "
        "scores tissue outside the lesion (mean, 95% volume-clustered bootstrap interval; exploratory)\n\n"
        + _md_table(small_box_split(df), line)
    )
    written.append(p)
    if (df.kind == "clean").any():
        z = zero_vs_clean(df).rename(columns={"mean": "mean rel. box MSE", "max": "max rel. box MSE", "count": "boxes"})
        p = tables / "rotation_zero_vs_clean.md"
        p.write_text(
            "Rotation by 0 deg and back vs the clean reconstruction: box MSE ratio - 1 per box\n\n" + _md_table(z, line)
        )
        written.append(p)
    return written


BOX_KEY = ["file", "slice", "bx", "by", "bw", "bh"]


def paired_effect(df: pd.DataFrame, metric: str = "box_ssim") -> pd.DataFrame:
    """Adversarial minus random ``metric`` *per box* (random draws averaged first), summarised per
    model x acceleration x attack x param: mean difference, 95% volume-clustered bootstrap interval, the
    volume-level Wilcoxon p-value (uncorrected: exploratory unless :func:`primary_claims` lists it), and how
    many boxes got worse than under random."""
    from advmri.report.stats import paired_summary

    by = ["model", "acceleration", "attack", "param"]
    per = df.groupby(by + BOX_KEY + ["kind"], dropna=False)[metric].mean().unstack("kind")
    if not {"adversarial", "random"} <= set(per.columns):
        raise ValueError(f"paired_effect needs adversarial and random rows for {metric}")
    d = (per["adversarial"] - per["random"]).dropna().rename("diff").reset_index()
    out = paired_summary(d, by).rename(columns={"boxes": "count"})
    return out[by + ["mean", "lo", "hi", "p", "worse", "count", "volumes"]]


SSIM_WIN = 7  # advmri.core.metrics.WIN


def paper_values(
    df: pd.DataFrame, claims: pd.DataFrame, eps: float = 0.01, bound: float = 5.0, height: int | None = None
) -> dict[str, str]:
    """The paper sweep's numbers the prose cites (:mod:`advmri.report.values`): per network and acceleration the
    clean, adversarial and random box PSNR / SSIM at ``eps``, the rotation's drop at ``bound``, each primary claim,
    the attained budget and sampled fractions, the box counts and (with the image ``height``) :func:`flip_effect`."""
    v = _network_values(df, eps, bound)
    v.update(_claim_values(claims))
    v.update(_fraction_values(df, eps))
    boxes = df[BOX_KEY].drop_duplicates()
    v["n_boxes"], v["n_volumes"] = str(len(boxes)), str(boxes.file.nunique())
    small = boxes[(boxes.bw < SSIM_WIN) | (boxes.bh < SSIM_WIN)]
    v["n_small_boxes"] = str(len(small))
    if height:
        f = flip_effect(df, height)
        v.update(
            flip_moved=str(f["moved"]),
            flip_no_overlap=str(f["no_overlap"]),
            flip_median_shift=num(f["median_shift"], 0),
            flip_max_shift=num(f["max_shift"], 0),
            flip_median_iou=num(f["median_iou"], 2),
            flip_height=str(height),
        )
    return v


def _network_values(df: pd.DataFrame, eps: float, bound: float) -> dict[str, str]:
    """Per network and acceleration: clean, adversarial and random box PSNR / SSIM of the noise attack at ``eps``,
    the rotation's drop against clean at ``bound``."""
    v: dict[str, str] = {}
    mean = df.groupby(["model", "acceleration", "attack", "kind", "param"])[["box_psnr", "box_ssim"]].mean()

    def get(model: str, acc: int, a: str, k: str, p: float, m: str) -> float:
        """The mean ``m`` of one model, acceleration, attack, kind and param (NaN when there is none)."""
        return float(mean[m].get((model, acc, a, k, p), float("nan")))

    for (model, acc), _ in df.groupby(["model", "acceleration"]):
        key = f"{model.replace(REF_SUFFIX, '_ref')}_{acc}x"
        for m, short, dg in (("box_psnr", "psnr", 2), ("box_ssim", "ssim", 3)):
            v[f"noise_{key}_clean_{short}"] = num(get(model, acc, "noise", "adversarial", 0.0, m), dg)
            v[f"noise_{key}_adv_{short}"] = num(get(model, acc, "noise", "adversarial", eps, m), dg)
            v[f"noise_{key}_rnd_{short}"] = num(get(model, acc, "noise", "random", eps, m), dg)
            v[f"rot_{key}_drop_{short}"] = num(
                get(model, acc, "rotation", "adversarial", bound, m) - get(model, acc, "rotation", "clean", 0.0, m),
                dg,
                sign=True,
            )
    return v


def _claim_values(claims: pd.DataFrame) -> dict[str, str]:
    """Each primary claim's estimate, boxes worse and Holm-adjusted p, and the family's summary."""
    v: dict[str, str] = {}
    for r in claims.itertuples():
        tag = {"noise: adversarial - random": "noise", "rotation: worst - random": "rot"}.get(r.claim, "model")
        key = f"claim_{tag}_{r.model if tag != 'model' else 'varnet_unet'}_{r.acceleration}x"
        v[key] = interval(r.estimate, r.lo, r.hi, 2, "dB")
        v[key + "_worse"] = f"{r.worse}/{r.boxes}"
        v[key + "_p"] = f"{r.p_holm:.1g}"
    if len(claims):
        v["claims_n"] = str(len(claims))
        v["claims_holding"] = str(int(claims.holds.sum()))
        v["claims_level"] = num(float(claims.level.iloc[0]) * 100, 1) + "%"
        v["claims_max_p"] = f"{claims.p_holm.max():.1g}"
        failing = claims[~claims.holds]
        v["claims_summary"] = (
            f"all {len(claims)} primary claims hold (largest Holm-adjusted p = {claims.p_holm.max():.1g})"
            if failing.empty
            else f"{int(claims.holds.sum())} of {len(claims)} primary claims hold; not supported: "
            + "; ".join(
                f"{r.claim}, {r.model} {r.acceleration}x (Holm p = {r.p_holm:.2g})" for r in failing.itertuples()
            )
        )
    return v


def _fraction_values(df: pd.DataFrame, eps: float) -> dict[str, str]:
    """The attained budget fraction of the reference update, the sampled fractions, and box MSE at equal attained
    norm (ours at ``eps`` against the reference update at ``2 eps``)."""
    v: dict[str, str] = {}
    noise = df[(df.attack == "noise") & (df.param > 0)]
    ref = noise[noise.model.str.endswith(REF_SUFFIX) & (noise.kind == "adversarial")].budget_fraction
    if len(ref):
        v["ref_fraction_min"], v["ref_fraction_max"] = (
            num(ref.groupby(noise.model).mean().min(), 2),
            num(ref.groupby(noise.model).mean().max(), 2),
        )
    for col, short in (("adv_sampled_fraction", "adv"), ("random_sampled_fraction", "rnd")):
        if col in noise:
            ours = noise[~noise.model.str.endswith(REF_SUFFIX)][col]
            v[f"sampled_fraction_{short}_min"] = num(float(ours.min()), 4)
            refc = noise[noise.model.str.endswith(REF_SUFFIX)][col]
            if len(refc):
                v[f"sampled_fraction_ref_{short}"] = num(float(refc.mean()), 3)
    for m in ("unet", "varnet"):  # equal attained norm: ours at eps vs the reference update at 2 eps
        mse = (
            df[(df.attack == "noise") & (df.kind == "adversarial") & (df.acceleration == 8)]
            .groupby(["model", "param"])["box_mse"]
            .mean()
        )
        at_eps, at_2eps = mse.get((m, eps)), mse.get((m + REF_SUFFIX, 2 * eps))
        if at_eps is not None and at_2eps is not None:
            v[f"equal_norm_{m}"] = f"{num(at_eps, 4)} vs {num(at_2eps, 4)} ({100 * (at_2eps / at_eps - 1):+.1f}%)"
    return v


def image_height(df: pd.DataFrame) -> int | None:
    """Height of the reconstructed images of a sweep's runs (from the first run's data folder), or None."""
    from advmri.data.fastmri_h5 import read_info

    for data in df["data_dir"].dropna().unique() if "data_dir" in df else []:
        files = sorted(project_path(data).glob("multicoil/*.h5"))
        if files:
            return int(read_info(files[0]).recon_size[0])
    return None


def flip_effect(boxes: pd.DataFrame, height: int) -> dict[str, float]:
    """Where boxes would land if the fastMRI+ ``y`` were used without the up/down flip (as the authors' code does):
    the CSV's ``y`` is ``height - by - bh``; per box the vertical shift ``|height - 2 by - bh|`` and the overlap
    (intersection over union) of the two boxes. Returns counts and the median shift."""
    b = boxes[BOX_KEY].drop_duplicates()
    y_csv = height - b.by - b.bh
    shift = (y_csv - b.by).abs()
    inter = (b.bh - shift).clip(lower=0)
    iou = inter / (2 * b.bh - inter)
    return dict(
        boxes=len(b),
        moved=int((shift > 0).sum()),
        no_overlap=int((iou == 0).sum()),
        median_shift=float(shift.median()),
        max_shift=float(shift.max()),
        median_iou=float(iou.median()),
    )


def small_box_split(df: pd.DataFrame, eps: float = 0.01, bound: float = 5.0) -> pd.DataFrame:
    """Box SSIM of boxes >= :data:`SSIM_WIN` px on both sides and of the smaller (grown) ones, with counts:
    noise at eps 0 and ``eps``, rotation clean and at ``bound``, per model x acceleration x kind."""
    from advmri.report.figures import summarise

    d = df[
        ((df.attack == "noise") & df.param.isin([0.0, eps]))
        | ((df.attack == "rotation") & ((df.kind == "clean") | (df.param == bound)))
    ]
    d = d.assign(
        box_size=((d.bw >= SSIM_WIN) & (d.bh >= SSIM_WIN)).map({True: f">= {SSIM_WIN} px", False: "grown"}),
        setting=[
            ("clean" if (k == "clean" or (a == "noise" and p == 0)) else f"{k} {p:g}")
            for a, k, p in zip(d.attack, d.kind, d.param, strict=True)
        ],
    )
    d = d[~((d.attack == "noise") & (d.param == 0) & (d.kind == "random"))]
    s = summarise(d, ["model", "acceleration", "attack", "setting", "box_size"], "box_ssim")
    s["box SSIM"] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in zip(s["mean"], s["lo"], s["hi"], strict=True)]
    w = s.pivot_table(
        index=["model", "acceleration", "attack", "setting"],
        columns="box_size",
        values=["box SSIM", "count"],
        aggfunc="first",
    )
    w.columns = [f"{a} ({b})" if a == "box SSIM" else f"boxes ({b})" for a, b in w.columns]
    return w.reset_index()


def zero_vs_clean(df: pd.DataFrame) -> pd.DataFrame:
    """Rotation runs: box MSE of the reconstruction rotated by 0 deg (and back) relative to the clean,
    un-rotated one, per model x acceleration: mean and max over boxes of ``mse(0 deg) / mse(clean) - 1``.
    0 for an exact rotation; the interpolation's own error otherwise."""
    r = df[df.attack == "rotation"]
    zero = r[(r.kind == "adversarial") & (r.param == 0)]
    clean = r[r.kind == "clean"]
    m = zero.merge(clean, on=["model", "acceleration", *BOX_KEY], suffixes=("", "_clean"))
    m["rel"] = m["box_mse"] / m["box_mse_clean"] - 1
    return m.groupby(["model", "acceleration"])["rel"].agg(["mean", "max", "count"]).reset_index()


def interpolation_effect(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rotation results of one model under several interpolations (``{name: table}``, same boxes):
    per interpolation and bound, the mean box SSIM of the worst angle and of the clean reconstruction,
    the drop against clean, and box MSE at 0 deg relative to clean (0 for an exact rotation)."""
    out = []
    for name, df in frames.items():
        r = df[df.attack == "rotation"]
        clean = r[r.kind == "clean"].set_index(BOX_KEY)
        adv = r[r.kind == "adversarial"]
        for b, d in adv.groupby("param"):
            d = d.set_index(BOX_KEY)
            c = clean.loc[d.index]
            out.append(
                dict(
                    interpolation=name,
                    model=d.model.iloc[0],
                    bound=b,
                    boxes=len(d),
                    worst_box_ssim=d.box_ssim.mean(),
                    clean_box_ssim=c.box_ssim.mean(),
                    drop_vs_clean=(d.box_ssim - c.box_ssim).mean(),
                    box_mse_rel_to_clean=(d.box_mse / c.box_mse - 1).mean(),
                )
            )
    return pd.DataFrame(out)


def run_interpolation(folder: Path) -> str:
    """Markdown table of one interpolation run folder's worst-case rotation effect per bound."""
    return (run_params(folder).get("rotation") or {}).get("interpolation", "?")


def write_interpolation(df: pd.DataFrame, interpolation_dir: str | Path, tables: str | Path) -> Path | None:
    """``tables/interpolation.md``: :func:`interpolation_effect` of the runs in ``interpolation_dir`` (other
    interpolations) beside the rotation rows of ``df`` (the reference interpolation) for the same model and
    acceleration, restricted to the boxes all of them cover. None when that sweep has no completed run."""
    folder = project_path(interpolation_dir)
    try:
        other, _ = collect(folder)
    except FileNotFoundError:
        return None
    frames = {}
    for run, d in other.groupby("sweep_run"):
        frames[run_interpolation(folder / run)] = d
    first = next(iter(frames.values()))
    ref = df[
        (df.attack == "rotation") & (df.model == first.model.iloc[0]) & (df.acceleration == first.acceleration.iloc[0])
    ]
    frames = {"reference": ref, **frames}
    common = set.intersection(*(set(map(tuple, d[BOX_KEY].drop_duplicates().to_numpy())) for d in frames.values()))
    frames = {k: d[d[BOX_KEY].apply(tuple, axis=1).isin(common)] for k, d in frames.items()}
    eff = interpolation_effect(frames)
    p = project_path(tables) / "interpolation.md"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        f"Rotation attack, {first.model.iloc[0]} at {first.acceleration.iloc[0]}x, {len(common)} boxes: "
        "the interpolation's effect (box MSE at 0 deg relative to clean: 0 for an exact rotation)\n\n"
        + eff.to_markdown(index=False, floatfmt=".4f")
        + f"\n\n<sub>runs {', '.join(sorted(other.sweep_run.unique()))}</sub>\n"
    )
    return p


TWIN_TASK = {
    "clean": "paper attack (away from the clean target)",
    "healthy": "erasure (toward the lesion-free twin)",
    "lesion": "hallucination (lesion-free twin toward the lesion)",
}


def twin_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Erasure / hallucination rates: per model x acceleration x attack x target x param, the fraction of boxes
    whose reconstruction is closer (box MSE) to the twin than to the truth (``healthy_closer``; erasure: the
    twin is lesion-free; hallucination: the truth is lesion-free and the twin has the lesion), under the
    adversarial perturbation and under random ones of equal strength (draws averaged per box), their paired
    difference per box with a 95% volume-clustered bootstrap interval, the exact McNemar test of the paired binary
    outcomes (boxes erased only under the adversarial / only under the random perturbation, a box counting as
    randomly erased when most of its draws were; box-level, exploratory), and mean ``lesion_retained`` (1: as
    the truth, 0: as the twin).
    Rotation runs' clean rows (the un-rotated reconstruction) are the bound ``clean``."""
    from advmri.report.stats import cluster_bootstrap, mcnemar_exact, seed_of

    d = df[df.healthy_closer.notna()].copy()
    if "target" not in d:
        d["target"] = "clean"
    by = ["model", "acceleration", "attack", "target", "param"]
    rows = []
    for key, g in d[d.kind != "clean"].groupby(by):
        per = g.groupby(BOX_KEY + ["kind"])[["healthy_closer", "lesion_retained"]].mean().unstack("kind")
        if "adversarial" not in per["healthy_closer"] or "random" not in per["healthy_closer"]:
            continue
        a, r = per["healthy_closer"]["adversarial"], per["healthy_closer"]["random"]
        diff = (a - r).dropna()
        n = len(diff)
        m, lo, hi = cluster_bootstrap(diff.to_numpy(), diff.index.get_level_values("file"), seed=seed_of(*key))
        both = pd.concat([a, r], axis=1, keys=["a", "r"]).dropna()
        # paired binary outcomes per box: adversarial vs random (a box counts as random-erased when most draws were)
        only_adv, only_rnd, p_mcnemar = mcnemar_exact(both["a"] > 0.5, both["r"] > 0.5)
        rows.append(
            dict(
                zip(by, key, strict=True),
                adversarial=a.mean(),
                random=r.mean(),
                adv_minus_random=m,
                lo=lo,
                hi=hi,
                only_adversarial=only_adv,
                only_random=only_rnd,
                p_mcnemar=p_mcnemar,
                lesion_retained_adv=per["lesion_retained"]["adversarial"].mean(),
                lesion_retained_random=per["lesion_retained"]["random"].mean(),
                boxes=n,
            )
        )
    out = pd.DataFrame(rows)
    clean = d[d.kind == "clean"]
    if len(clean):
        c = (
            clean.groupby(by[:-1])
            .agg(
                adversarial=("healthy_closer", "mean"),
                lesion_retained_adv=("lesion_retained", "mean"),
                boxes=("healthy_closer", "size"),
            )
            .reset_index()
            .assign(param=-1.0)
        )
        out = pd.concat([out, c], ignore_index=True)
    return out.sort_values(by, ignore_index=True) if len(out) else out


def write_twin_rates(frames: list[pd.DataFrame], tables: str | Path, stamp_line: str = "") -> Path | None:
    """``tables/erasure.md``: :func:`twin_rates` of the given result tables (the ``beyond`` sweep, and the paper
    sweep for the paper attack's own erasure rate on the same boxes). None when no row has a twin."""
    df = pd.concat([f for f in frames if f is not None and len(f)], ignore_index=True) if frames else pd.DataFrame()
    if df.empty or df.healthy_closer.notna().sum() == 0:
        return None
    t = twin_rates(df)
    t["task"] = t["target"].map(TWIN_TASK)
    t["param"] = t["param"].map(lambda v: "clean (no rotation)" if v == -1.0 else f"{v:g}")
    p = project_path(tables) / "erasure.md"
    p.parent.mkdir(parents=True, exist_ok=True)
    cols = [
        "model",
        "acceleration",
        "attack",
        "task",
        "param",
        "adversarial",
        "random",
        "adv_minus_random",
        "lo",
        "hi",
        "only_adversarial",
        "only_random",
        "p_mcnemar",
        "lesion_retained_adv",
        "lesion_retained_random",
        "boxes",
    ]
    p.write_text(
        "Fraction of boxes closer (box MSE) to the twin than to the truth: erasure (twin lesion-free) and "
        "hallucination (truth lesion-free, twin with the lesion); adversarial vs random of equal strength, "
        "paired per box (mean, 95% volume-clustered bootstrap interval; exact McNemar test of the boxes "
        "erased only under one of the two; exploratory, uncorrected)\n\n" + _md_table(t[cols], stamp_line)
    )
    return p


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """Mean box SSIM per model x attack x kind x param (for closing notes and the README)."""
    return df.groupby(["model", "acceleration", "attack", "kind", "param"])["box_ssim"].mean().unstack("kind")
