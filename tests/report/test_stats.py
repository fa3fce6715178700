"""advmri.report.stats (volume-clustered bootstrap, volume-level test, Holm, McNemar), advmri.report.claims, advmri.report.checks."""
import itertools

import numpy as np
import pandas as pd
import pytest

from advmri.report.checks import fit_law
from advmri.report.claims import FAMILY, primary_claims
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
    assert p == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar_exact(a, a)[2] == 1.0


def _paper_like(effect_noise: float, effect_rot: float, volumes: int = 12, boxes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for model, acc, v, b in itertools.product(("unet", "varnet"), (4, 8), range(volumes), range(boxes)):
        base = 25 + rng.normal()
        key = dict(model=model, acceleration=acc, file=f"f{v}", slice=b, bx=b, by=0, bw=8, bh=8, target="clean")
        drop = effect_noise * (1.5 if model == "varnet" else 1.0)
        for kind, param, val in (("adversarial", 0.0, base), ("random", 0.0, base),
                                 ("adversarial", 0.01, base + drop + rng.normal(0, .3)),
                                 ("random", 0.01, base + rng.normal(0, .3))):
            rows.append(dict(key, attack="noise", kind=kind, param=param, box_psnr=val))
        for kind, val in (("adversarial", base + effect_rot + rng.normal(0, .3)), ("random", base + rng.normal(0, .3))):
            rows.append(dict(key, attack="rotation", kind=kind, param=5.0, box_psnr=val))
    return pd.DataFrame(rows)


def test_primary_claims_hold_only_when_the_data_say_so():
    t = primary_claims(_paper_like(-5.0, -1.0))
    assert len(t) == 10 and set(t.claim) == set(FAMILY)
    assert t.holds.all() and (t.p_holm >= t.p).all()
    assert (t.hi < 0).all()  # simultaneous intervals exclude 0
    null = primary_claims(_paper_like(0.0, 0.0, seed=3))
    assert not null.holds.any()
    assert (null.lo < 0).all() and (null.hi > 0).all()
    assert null.level.iloc[0] == pytest.approx(1 - 0.05 / 10)


def test_paired_summary_columns():
    d = pd.DataFrame(dict(g=["a"] * 6, file=list("xxyyzz"), diff=[-1, -2, -1.5, -1, -2, -3.0]))
    s = paired_summary(d, ["g"])
    assert s.loc[0, "boxes"] == 6 and s.loc[0, "volumes"] == 3 and s.loc[0, "worse"] == 6
    assert s.loc[0, "lo"] <= s.loc[0, "mean"] <= s.loc[0, "hi"]


def test_fit_law_recovers_the_constant():
    law = pd.DataFrame(dict(coils=[4, 8, 15, 24], mean=[1.27 / np.sqrt(c) for c in (4, 8, 15, 24)]))
    assert fit_law(law) == pytest.approx(1.27)


def test_budget_law_and_step_sweep_on_constructed_rows():
    from advmri.report.checks import budget_law, step_sweep

    rows = []
    for c in (4, 16):
        for b in range(3):
            rows.append(dict(update="reference", kind="adversarial", param=0.01, coils=c, budget_fraction=1.2 / np.sqrt(c),
                             file=f"f{b}", slice=0, bx=b, by=0, bw=8, bh=8))
    law = budget_law(pd.DataFrame(rows))
    assert list(law.coils) == [4, 16] and np.allclose(law.sqrt_C_times_mean, 1.2)
    assert fit_law(law) == pytest.approx(1.2)
    rows = []
    for steps, mse in ((10, 0.9), (50, 1.0)):
        for b in range(2):
            rows.append(dict(model="unet", acceleration=8, kind="adversarial", param=0.01, update="ours", steps=steps,
                             step_size=0.5, precision="fp32", box_mse=mse * (b + 1), box_psnr=20.0, box_ssim=0.5,
                             file=f"f{b}", slice=0, bx=b, by=0, bw=8, bh=8))
    s = step_sweep(pd.DataFrame(rows)).set_index("steps")
    assert s.loc[10, "mse_vs_best"] == pytest.approx(0.9) and s.loc[50, "mse_vs_best"] == pytest.approx(1.0)
