"""Statistics of the paper: volume-clustered bootstrap intervals, tests on volume means, Holm, McNemar.

The unit of resampling is the **volume** (``file``), not the box: boxes of one volume share its anatomy,
coil sensitivities, noise realisation and mask, so they are not independent (93 boxes in 24 volumes).

* :func:`cluster_bootstrap`: mean over boxes and its percentile interval from resampling volumes with
  replacement (the statistic of a resample is the mean over all boxes of the drawn volumes).
* :func:`volume_test`: two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) of the per-volume mean
  differences against 0: one value per volume, so the test's unit is the volume too.
* :func:`holm`: Holm's step-down adjustment of a family of p-values (``statsmodels``); the family's
  simultaneous intervals use the Bonferroni level ``1 - alpha / m``.
* :func:`mcnemar_exact`: paired binary outcomes on the same boxes (``statsmodels``' exact McNemar test).

Every bootstrap is seeded from what it summarises (:func:`seed_of`), so a table does not depend on the order
in which its rows are computed.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "N_BOOT",
    "ALPHA",
    "seed_of",
    "cluster_bootstrap",
    "volume_test",
    "paired_summary",
    "holm",
    "mcnemar_exact",
    "BOX_KEY",
]

N_BOOT = 10_000
ALPHA = 0.05
BOX_KEY = ["file", "slice", "bx", "by", "bw", "bh"]


def seed_of(*key) -> int:
    """A bootstrap seed from the group it summarises (stable across runs and row orders)."""
    return zlib.crc32(repr(tuple(str(k) for k in key)).encode()) & 0x7FFFFFFF


def cluster_bootstrap(
    values: Sequence[float], clusters: Sequence, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``values`` over boxes and its ``level`` percentile interval from
    ``n_boot`` resamples of the clusters (volumes) with replacement. NaN bounds with fewer than 2 clusters."""
    v = np.asarray(values, dtype=float)
    c = np.asarray(clusters)
    ok = np.isfinite(v)
    v, c = v[ok], c[ok]
    if not len(v):
        return float("nan"), float("nan"), float("nan")
    _, inv = np.unique(c, return_inverse=True)
    sums, counts = np.bincount(inv, weights=v), np.bincount(inv).astype(float)
    k = len(sums)
    if k < 2:
        return float(v.mean()), float("nan"), float("nan")
    draw = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))  # (n_boot, volumes drawn)
    stat = sums[draw].sum(1) / counts[draw].sum(1)
    a = (1 - level) / 2
    lo, hi = np.quantile(stat, [a, 1 - a])
    return float(v.mean()), float(lo), float(hi)


def volume_test(values: Sequence[float], clusters: Sequence) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of the per-volume means of ``values`` against 0
    (NaN with fewer than 2 volumes; 1 when every volume mean is 0)."""
    from scipy import stats

    d = pd.DataFrame({"v": np.asarray(values, dtype=float), "c": np.asarray(clusters)}).dropna()
    means = d.groupby("c")["v"].mean().to_numpy()
    if len(means) < 2:
        return float("nan")
    if np.all(means == 0):
        return 1.0
    return float(stats.wilcoxon(means, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_summary(
    d: pd.DataFrame, by: list[str], value: str = "diff", level: float = 0.95, worse_below: float | None = -1e-6
) -> pd.DataFrame:
    """Per group of ``by``: mean of ``value`` over boxes, volume-clustered bootstrap interval at ``level``,
    the volume-level test's p-value, boxes, volumes, and (with ``worse_below``) boxes with ``value`` below it."""
    rows = []
    for key, g in d.groupby(by, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        m, lo, hi = cluster_bootstrap(g[value], g["file"], level, seed=seed_of(*key, value, level))
        row = dict(
            zip(by, key, strict=True),
            mean=m,
            lo=lo,
            hi=hi,
            p=volume_test(g[value], g["file"]),
            boxes=int(g[value].notna().sum()),
            volumes=int(g.loc[g[value].notna(), "file"].nunique()),
        )
        if worse_below is not None:
            row["worse"] = int((g[value] < worse_below).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def holm(p: Sequence[float], alpha: float = ALPHA) -> np.ndarray:
    """Holm-adjusted p-values of a family (``statsmodels.stats.multitest.multipletests``); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    pv = np.asarray(p, dtype=float)
    out = np.full_like(pv, np.nan)
    ok = np.isfinite(pv)
    if ok.any():
        out[ok] = multipletests(pv[ok], alpha=alpha, method="holm")[1]
    return out


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, float]:
    """``(a only, b only, p)``: discordant pairs and the exact two-sided McNemar p-value of paired binary
    outcomes ``a`` and ``b`` on the same units."""
    from statsmodels.stats.contingency_tables import mcnemar

    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n10, n01 = int((x & ~y).sum()), int((~x & y).sum())
    table = [[int((x & y).sum()), n10], [n01, int((~x & ~y).sum())]]
    return n10, n01, float(mcnemar(table, exact=True).pvalue)
