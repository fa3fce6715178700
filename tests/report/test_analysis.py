"""advmri.report.analysis: paired adversarial-random effects, twin (erasure) rates paired per box, and collecting
only the given runs."""

import numpy as np
import pandas as pd
import pytest
from conftest import box_rows

from advmri.report.analysis import paired_effect
from advmri.report.figures import summarise


def test_paired_effect_removes_between_box_spread():
    df, base = box_rows()
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
    df, _ = box_rows()
    with pytest.raises(ValueError, match="adversarial and random"):
        paired_effect(df[df.kind == "adversarial"])


def _fake_run(folder, rid, status="ok", n=2):
    import json

    from advmri.experiments.run import RESULT_COLUMNS, write_table

    d = folder / rid
    d.mkdir(parents=True)
    rows = [
        {c: 0 for c in RESULT_COLUMNS}
        | dict(
            run_id=rid,
            model="varnet",
            config="small",
            attack="noise",
            acceleration=8,
            kind="adversarial",
            file=f"f{i}",
            box_ssim=0.5,
        )
        for i in range(n)
    ]
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


def test_twin_rates_pair_per_box():
    import pandas as pd

    from advmri.report.analysis import twin_rates

    rows = []
    for b, (adv, rnd) in enumerate([(1, (0, 0)), (1, (1, 0)), (0, (0, 0))]):
        box = dict(
            file=f"f{b}",
            slice=b,
            bx=1,
            by=2,
            bw=3,
            bh=4,
            model="unet",
            acceleration=8,
            attack="noise",
            target="healthy",
            param=0.01,
        )  # one volume per box: intervals resample volumes
        rows.append(dict(box, kind="adversarial", draw=0, healthy_closer=adv, lesion_retained=0.2))
        rows += [dict(box, kind="random", draw=d, healthy_closer=r, lesion_retained=0.9) for d, r in enumerate(rnd)]
    rows.append(dict(rows[0], kind="clean", param=0.0, healthy_closer=0.0, lesion_retained=1.0))
    t = twin_rates(pd.DataFrame(rows))
    r = t[t.param == 0.01].iloc[0]
    assert r.adversarial == pytest.approx(2 / 3) and r.random == pytest.approx(1 / 6)
    assert r.adv_minus_random == pytest.approx(0.5) and r.boxes == 3 and r.lo <= 0.5 <= r.hi
    # boxes 0 and 1 are erased only under the attack (box 1 by half of its random draws, not by most)
    assert (r.only_adversarial, r.only_random) == (2, 0) and r.p_mcnemar == pytest.approx(0.5)
    assert r.lesion_retained_adv == pytest.approx(0.2) and r.lesion_retained_random == pytest.approx(0.9)
    c = t[t.param == -1.0].iloc[0]  # the clean reconstruction's own rate
    assert c.adversarial == 0 and c.boxes == 1


def test_an_unchanged_figure_is_written_byte_identically(tmp_path):
    """The main job must not dirty the clone when nothing changed: plotly's random ids are fixed."""
    import plotly.graph_objects as go

    from advmri.report.analysis import save_figure

    def make():
        return go.Figure(go.Scatter(x=[0, 1, 2], y=[3, 1, 2], name="a")).add_scatter(x=[0, 1], y=[1, 1], name="b")

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        save_figure(make(), d, "fig", "stamp", formats=("svg",))
    for f in ("fig.html", "fig.svg"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert b'id="defs-' in (a / "fig.svg").read_bytes()
