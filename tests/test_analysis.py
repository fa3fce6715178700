"""Statistics behind the paper's tables: unpaired intervals over boxes and paired adversarial-random effects."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from advmri.analysis import paired_effect
from advmri.figures import summarise


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


def test_summarise_averages_draws_per_box_then_t_interval():
    df, base = _rows()
    s = summarise(df, ["kind"], "box_ssim").set_index("kind")
    rnd = base  # the +-0.001 draws average out per box
    assert s.loc["random", "count"] == len(base)
    assert s.loc["random", "mean"] == pytest.approx(rnd.mean())
    lo, hi = stats.t.interval(0.95, len(rnd) - 1, loc=rnd.mean(), scale=stats.sem(rnd))
    assert (s.loc["random", "lo"], s.loc["random", "hi"]) == pytest.approx((lo, hi))


def test_paired_effect_removes_between_box_spread():
    df, base = _rows()
    pe = paired_effect(df).iloc[0]
    diff = -0.3 - 0.01 * np.arange(len(base))
    assert pe["mean"] == pytest.approx(diff.mean())
    assert pe["worse"] == len(base) and pe["count"] == len(base)
    lo, hi = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert (pe["lo"], pe["hi"]) == pytest.approx((lo, hi))
    # far tighter than the unpaired interval of the adversarial rows, whose boxes differ by ~0.6
    un = summarise(df[df.kind == "adversarial"], ["kind"], "box_ssim").iloc[0]
    assert pe["hi"] - pe["lo"] < 0.2 * (un["hi"] - un["lo"])


def test_paired_effect_needs_both_kinds():
    df, _ = _rows()
    with pytest.raises(ValueError, match="adversarial and random"):
        paired_effect(df[df.kind == "adversarial"])
