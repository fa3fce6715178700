"""advmri.app.live: the live attack behind the explorer reproduces a stored (smoke) reconstruction store."""

import numpy as np
import pytest

from advmri.experiments import recons


def test_store_round_trip_and_live_attack_on_a_tiny_run(tmp_path):
    path = __import__("advmri.experiments.smoke", fromlist=["noise_store"]).noise_store(tmp_path)
    rr = recons.load(path)
    assert rr.params == [0.0, 0.01] and rr.attack == "noise" and len(rr.targets) == 2
    t = rr.targets[0]
    assert t.adversarial.shape == (2, *t.target.shape) and t.target.dtype == np.float32
    # eps = 0 is the clean reconstruction: the live attack reproduces the stored one (float16 rounding)
    from advmri.app.live import LiveAttack

    live = LiveAttack(rr)
    adv, rnd, _ = live.compute(t, 0.0)
    assert np.allclose(adv, t.adversarial[0], rtol=0, atol=2e-3 * t.target.max())
    adv1, _, _ = live.compute(t, 0.01)
    assert np.allclose(adv1, t.adversarial[1], rtol=0, atol=2e-3 * t.target.max())
    with pytest.raises(ValueError, match="eps"):
        live.compute(t, -0.1)
