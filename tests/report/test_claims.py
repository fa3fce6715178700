"""advmri.report.claims: the primary claims hold only when the data say so."""

import itertools

import numpy as np
import pandas as pd
import pytest

from advmri.report.claims import FAMILY, primary_claims


def _paper_like(effect_noise: float, effect_rot: float, volumes: int = 12, boxes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for model, acc, v, b in itertools.product(("unet", "varnet"), (4, 8), range(volumes), range(boxes)):
        base = 25 + rng.normal()
        key = dict(model=model, acceleration=acc, file=f"f{v}", slice=b, bx=b, by=0, bw=8, bh=8, target="clean")
        drop = effect_noise * (1.5 if model == "varnet" else 1.0)
        for kind, param, val in (
            ("adversarial", 0.0, base),
            ("random", 0.0, base),
            ("adversarial", 0.01, base + drop + rng.normal(0, 0.3)),
            ("random", 0.01, base + rng.normal(0, 0.3)),
        ):
            rows.append(dict(key, attack="noise", kind=kind, param=param, box_psnr=val))
        for kind, val in (
            ("adversarial", base + effect_rot + rng.normal(0, 0.3)),
            ("random", base + rng.normal(0, 0.3)),
        ):
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
