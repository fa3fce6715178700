"""advmri.report.stats: volume-clustered bootstrap, volume-level test, Holm, McNemar, paired summaries."""

import numpy as np
import pandas as pd
import pytest

from advmri.report.stats import cluster_bootstrap, holm, mcnemar_exact, paired_summary, volume_test


def test_cluster_bootstrap_counts_volumes_not_boxes():
    rng = np.random.default_rng(0)
    v = rng.normal(size=20)
    m1, lo1, hi1 = cluster_bootstrap(v, np.arange(20), seed=1)
    dup = np.repeat(v, 5)  # five identical boxes per volume: no more information than one
    m5, lo5, hi5 = cluster_bootstrap(dup, np.repeat(np.arange(20), 5), seed=1)
    assert m1 == pytest.approx(m5) == pytest.approx(v.mean())
    assert hi5 - lo5 == pytest.approx(hi1 - lo1, rel=1e-9)
    naive = cluster_bootstrap(dup, np.arange(100), seed=1)  # treating boxes as independent: far too narrow
    assert naive[2] - naive[1] < 0.6 * (hi5 - lo5)
    assert cluster_bootstrap(v, np.arange(20), seed=1) == (m1, lo1, hi1)  # seeded
    assert lo1 < v.mean() < hi1


def test_cluster_bootstrap_edge_cases():
    assert np.isnan(cluster_bootstrap([1.0, 2.0], ["a", "a"])[1])
    assert np.isnan(cluster_bootstrap([], [])[0])
    assert cluster_bootstrap([1.0, np.nan, 3.0], ["a", "b", "c"])[0] == pytest.approx(2.0)


def test_volume_test_uses_volume_means():
    rng = np.random.default_rng(2)
    shifted = rng.normal(1.0, 1.0, size=30)
    assert volume_test(shifted, np.arange(30)) < 1e-3
    assert volume_test(rng.normal(0, 1, size=30), np.arange(30)) > 0.01
    # duplicating boxes within volumes changes nothing: the test sees one mean per volume
    assert volume_test(np.repeat(shifted, 4), np.repeat(np.arange(30), 4)) == volume_test(shifted, np.arange(30))
    assert np.isnan(volume_test([1.0, 2.0], ["a", "a"]))


def test_holm_against_the_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    got = holm(p)
    ok = p[:4]
    order = np.argsort(ok)
    want = np.empty(4)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * ok[i]))
        want[i] = running
    assert np.allclose(got[:4], want) and np.isnan(got[4])


def test_mcnemar_exact():
    a = np.array([1] * 10 + [0] * 5 + [1] * 3, bool)
    b = np.array([0] * 10 + [0] * 5 + [1] * 3, bool)
    n10, n01, p = mcnemar_exact(a, b)
    assert (n10, n01) == (10, 0)
    assert p == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(a, a)[2] == 1.0


def test_paired_summary_columns():
    d = pd.DataFrame(dict(g=["a"] * 6, file=list("xxyyzz"), diff=[-1, -2, -1.5, -1, -2, -3.0]))
    s = paired_summary(d, ["g"])
    assert s.loc[0, "boxes"] == 6 and s.loc[0, "volumes"] == 3 and s.loc[0, "worse"] == 6
    assert s.loc[0, "lo"] <= s.loc[0, "mean"] <= s.loc[0, "hi"]
