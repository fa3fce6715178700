"""The paper's primary claims: one family, declared here before the reruns, Holm-corrected, volume-clustered.

Family (:data:`FAMILY`; metric :data:`METRIC`, box PSNR: the attack's own objective, box MSE, in dB, defined
for every box, whereas box SSIM needs a 7-pixel window):

1. adversarial minus random k-space noise at ``eps = 0.01`` (the random control on the sampled columns with the
   adversarial per-coil norms), per model x acceleration, paired per box (random draws averaged);
2. worst rotation within 5 deg minus a random angle within 5 deg, per model x acceleration, paired per box;
3. VarNet minus U-Net: the box PSNR drop under noise at ``eps = 0.01`` (adversarial minus the clean
   reconstruction), per acceleration, paired on the same boxes (negative: the VarNet loses more).

Each claim's p-value is the Wilcoxon signed-rank test of the per-volume mean differences
(:func:`advmri.report.stats.volume_test`); the family is Holm-adjusted (:func:`advmri.report.stats.holm`), and its
intervals are volume-clustered bootstrap intervals at the Bonferroni level ``1 - 0.05 / m`` (simultaneous for the
family). A claim *holds* when its Holm-adjusted p-value is below 0.05. Every other comparison in the paper is
exploratory.
"""

from __future__ import annotations

import pandas as pd

from advmri.report.stats import ALPHA, BOX_KEY, cluster_bootstrap, holm, seed_of, volume_test

__all__ = ["METRIC", "PRIMARY_EPS", "PRIMARY_BOUND", "FAMILY", "primary_diffs", "primary_claims", "claims_markdown"]

METRIC = "box_psnr"
PRIMARY_EPS = 0.01
PRIMARY_BOUND = 5.0
FAMILY = ("noise: adversarial - random", "rotation: worst - random", "noise drop: varnet - unet")
NETWORKS = ("unet", "varnet")


def _per_box(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ``METRIC`` over random draws per model x acceleration x attack x param x kind x box."""
    d = df[df.model.isin(NETWORKS)]
    if "target" in d:
        d = d[d.target == "clean"]
    return d.groupby(["model", "acceleration", "attack", "param", "kind"] + BOX_KEY)[METRIC].mean().unstack("kind")


def primary_diffs(df: pd.DataFrame) -> pd.DataFrame:
    """Per-box differences of every claim of the family: columns ``claim, model, acceleration, file, ..., diff``."""
    pb = _per_box(df)
    out = []
    for attack, param, claim in (("noise", PRIMARY_EPS, FAMILY[0]), ("rotation", PRIMARY_BOUND, FAMILY[1])):
        sel = pb.iloc[:0]
        if len(pb):
            idx = pb.index
            here = (idx.get_level_values("attack") == attack) & (idx.get_level_values("param") == param)
            if here.any():
                sel = pb[here].droplevel(["attack", "param"])
        if len(sel) and {"adversarial", "random"} <= set(sel.columns):
            d = (sel["adversarial"] - sel["random"]).dropna().rename("diff").reset_index()
            out.append(d.assign(claim=claim))
    noise = pb.xs("noise", level="attack") if len(pb) and "noise" in pb.index.get_level_values("attack") else None
    if noise is not None and "adversarial" in noise:
        adv = noise["adversarial"].unstack("param")
        if {0.0, PRIMARY_EPS} <= set(adv.columns):
            drop = (adv[PRIMARY_EPS] - adv[0.0]).rename("drop").reset_index()
            wide = drop.pivot_table(index=["acceleration"] + BOX_KEY, columns="model", values="drop")
            if set(NETWORKS) <= set(wide.columns):
                d = (wide["varnet"] - wide["unet"]).dropna().rename("diff").reset_index()
                out.append(d.assign(claim=FAMILY[2], model="varnet - unet"))
    if not out:
        return pd.DataFrame(columns=["claim", "model", "acceleration", *BOX_KEY, "diff"])
    return pd.concat(out, ignore_index=True)[["claim", "model", "acceleration", *BOX_KEY, "diff"]]


def primary_claims(df: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """The family's estimates (mean paired difference in dB over boxes), simultaneous intervals, raw and
    Holm-adjusted p-values, boxes, volumes and whether each claim holds."""
    d = primary_diffs(df)
    groups = list(d.groupby(["claim", "model", "acceleration"], sort=False))
    m = max(len(groups), 1)
    level = 1 - alpha / m
    rows = []
    for (claim, model, acc), g in groups:
        est, lo, hi = cluster_bootstrap(g["diff"], g["file"], level=level, seed=seed_of(claim, model, acc))
        rows.append(
            dict(
                claim=claim,
                model=model,
                acceleration=int(acc),
                estimate=est,
                lo=lo,
                hi=hi,
                p=volume_test(g["diff"], g["file"]),
                boxes=len(g),
                volumes=g["file"].nunique(),
                worse=int((g["diff"] < 0).sum()),
            )
        )
    t = pd.DataFrame(rows)
    if len(t):
        t["p_holm"] = holm(t["p"], alpha)
        t["holds"] = t["p_holm"] < alpha
        t["level"] = level
    return t


def claims_markdown(t: pd.DataFrame, stamp_line: str = "") -> str:
    """The family as a readable table (one row per claim) with its declaration above it."""
    if t.empty:
        return "*(no primary claims: the paper sweep has no completed runs)*\n"
    lvl = float(t["level"].iloc[0])
    d = pd.DataFrame(
        {
            "claim": t["claim"],
            "model": t["model"],
            "acc.": t["acceleration"].map(lambda a: f"{a}x"),
            "box PSNR difference (dB)": [
                f"{e:+.2f} [{lo:+.2f}, {hi:+.2f}]" for e, lo, hi in zip(t.estimate, t.lo, t.hi, strict=True)
            ],
            "boxes worse": [f"{w}/{b}" for w, b in zip(t.worse, t.boxes, strict=True)],
            "volumes": t["volumes"],
            "Holm p": t["p_holm"].map(lambda p: f"{p:.2g}"),
            "holds": t["holds"].map({True: "yes", False: "**no**"}),
        }
    )
    head = (
        f"Primary claims ({len(t)}, one family): paired per box, mean over boxes with a volume-clustered "
        f"bootstrap interval at the Bonferroni level {lvl:.4f} (simultaneous), Wilcoxon signed-rank test on "
        "volume means, Holm-adjusted; eps 0.01 for noise, 5 deg for rotation.\n\n"
    )
    return head + d.to_markdown(index=False) + (f"\n\n<sub>{stamp_line}</sub>\n" if stamp_line else "\n")
