"""advmri.experiments.convergence: every objective evaluation is recorded, curves are best-so-far, and fractions are
taken against the best any setting found."""

from __future__ import annotations

import pandas as pd

from advmri.experiments.convergence import Setting, cell, fractions
from tests.conftest import untrained


def test_cell_records_one_evaluation_per_step(tiny_data, tmp_path):
    spec = str(untrained(tmp_path / "u.pt", "unet", seed=0))
    df = cell(spec, str(tiny_data), 8, Setting("apgd-6", "apgd", 6), boxes=2, eps=0.02, chunk=2)
    assert sorted(df.evaluation.unique()) == list(range(1, 7)) and df.box.nunique() == 2
    for _, g in df.groupby("box"):
        assert g.sort_values("evaluation").best.is_monotonic_increasing


def test_fractions_against_the_best_known():
    a = pd.DataFrame(dict(box=[0, 0, 1, 1], evaluation=[1, 2, 1, 2], best=[1.0, 2.0, 1.0, 4.0]))
    b = pd.DataFrame(dict(box=[0, 1], evaluation=[1, 1], best=[4.0, 2.0]))
    fr = fractions({"a": a, "b": b})
    assert fr.loc[0, "a"] == 0.5 and fr.loc[0, "b"] == 1.0 and fr.loc[1, "a"] == 1.0 and fr.loc[1, "b"] == 0.5


def test_curves_and_markdown(tmp_path):
    from advmri.experiments.convergence import curves, markdown, summary

    for name, best in (("pga-10", [1.0, 2.0]), ("apgd-10", [3.0, 4.0])):
        pd.DataFrame(dict(box=[0, 0], evaluation=[1, 2], best=best)).to_csv(tmp_path / f"unet-8x-{name}.csv")
    c = curves(tmp_path, "unet", 8)
    assert c[c.setting == "pga-10"].median_fraction.tolist() == [0.25, 0.5]
    text = markdown(summary(tmp_path))
    assert "| pga-10 | 50.0% |" in text and "| apgd-10 | 100.0% |" in text
