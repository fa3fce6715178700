"""advmri.report.figures: summarise averages the draws per box, then resamples volumes."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from advmri.report.figures import summarise


def _rows(n_boxes=5, draws=3, seed=0):
    """Synthetic result rows: per box a base SSIM; adversarial = base - 0.3, random = base +- small noise."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.9, n_boxes)
    rows = []
    for b in range(n_boxes):
        box = dict(model="m", acceleration=8, attack="noise", param=0.01, file=f"f{b}", slice=b, bx=b, by=1, bw=8, bh=8)
        rows.append(dict(box, kind="adversarial", draw=0, box_ssim=base[b] - 0.3 - 0.01 * b))
        for d in range(draws):
            rows.append(dict(box, kind="random", draw=d, box_ssim=base[b] + 0.001 * (d - 1)))
    return pd.DataFrame(rows), base


def test_summarise_averages_draws_per_box_then_resamples_volumes():
    df, base = _rows(n_boxes=12)
    s = summarise(df, ["kind"], "box_ssim").set_index("kind")
    rnd = base  # the +-0.001 draws average out per box
    assert s.loc["random", "count"] == len(base) and s.loc["random", "volumes"] == len(base)
    assert s.loc["random", "mean"] == pytest.approx(rnd.mean())
    lo, hi = stats.t.interval(0.95, len(rnd) - 1, loc=rnd.mean(), scale=stats.sem(rnd))
    width = s.loc["random", "hi"] - s.loc["random", "lo"]
    assert s.loc["random", "lo"] < rnd.mean() < s.loc["random", "hi"]
    assert 0.7 * (hi - lo) < width < 1.1 * (hi - lo)  # one box per volume: about the t-interval
    # two boxes per volume, identical: the interval is over the 6 volumes, not the 12 boxes
    same = df.assign(file=df["file"].map(lambda f: f"v{int(f[1:]) // 2}"))
    same.loc[same.bx % 2 == 1, "box_ssim"] = same.loc[same.bx % 2 == 0, "box_ssim"].to_numpy()
    s2 = summarise(same, ["kind"], "box_ssim").set_index("kind")
    assert s2.loc["random", "volumes"] == 6
    assert s2.loc["random", "hi"] - s2.loc["random", "lo"] > (hi - lo) * 0.8
