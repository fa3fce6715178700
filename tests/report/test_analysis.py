"""Statistics behind the paper's tables: unpaired intervals over boxes and paired adversarial-random effects."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from advmri.report.analysis import paired_effect
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


def test_paired_effect_removes_between_box_spread():
    df, base = _rows()
    pe = paired_effect(df).iloc[0]
    diff = -0.3 - 0.01 * np.arange(len(base))
    assert pe["mean"] == pytest.approx(diff.mean())
    assert pe["worse"] == len(base) and pe["count"] == len(base)
    assert pe["lo"] < diff.mean() < pe["hi"] and pe["hi"] < 0
    assert pe["p"] == pytest.approx(2 / 2 ** len(diff))  # Wilcoxon, exact: every volume worse
    # far tighter than the unpaired interval of the adversarial rows, whose boxes differ by ~0.6
    un = summarise(df[df.kind == "adversarial"], ["kind"], "box_ssim").iloc[0]
    assert pe["hi"] - pe["lo"] < 0.2 * (un["hi"] - un["lo"])


def test_paired_effect_needs_both_kinds():
    df, _ = _rows()
    with pytest.raises(ValueError, match="adversarial and random"):
        paired_effect(df[df.kind == "adversarial"])


def _fake_run(folder, rid, status="ok", n=2):
    import json

    from advmri.experiments.run import RESULT_COLUMNS, write_table

    d = folder / rid
    d.mkdir(parents=True)
    rows = [{c: 0 for c in RESULT_COLUMNS} | dict(run_id=rid, model="varnet", config="small", attack="noise",
                                                   acceleration=8, kind="adversarial", file=f"f{i}", box_ssim=0.5)
            for i in range(n)]
    write_table(pd.DataFrame(rows, columns=RESULT_COLUMNS), d / "results.csv")
    (d / "status.json").write_text(json.dumps(dict(run_id=rid, status=status)))


def test_collect_uses_only_the_given_runs_and_warns_on_pooled_configurations(tmp_path):
    from advmri.report.analysis import collect

    _fake_run(tmp_path, "noise-old-aaaa", n=3)
    _fake_run(tmp_path, "noise-new-bbbb", n=2)
    _fake_run(tmp_path, "noise-bad-cccc", status="failed")
    df, st = collect(tmp_path, ["noise-new-bbbb"])
    assert set(df.sweep_run) == {"noise-new-bbbb"} and len(df) == 2 and len(st) == 1
    with pytest.warns(UserWarning, match="several runs cover varnet/small/noise/8"):
        df, st = collect(tmp_path)
    assert len(df) == 5 and len(st) == 3
    with pytest.raises(FileNotFoundError, match="no completed runs"):
        with pytest.warns(UserWarning, match="without a status"):
            collect(tmp_path, ["noise-bad-cccc", "noise-missing-dddd"])
