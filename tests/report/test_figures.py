"""advmri.report.figures: summarise averages the draws per box, then resamples volumes."""

import pytest
from conftest import box_rows
from scipy import stats

from advmri.report.figures import summarise


def test_summarise_averages_draws_per_box_then_resamples_volumes():
    df, base = box_rows(n_boxes=12)
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
