"""The eps explorer factory: stored reconstructions in, widgets whose ``.value`` drives the figure."""

import numpy as np
import pytest

from advmri.app.widgets import eps_explorer, timed_change
from advmri.core.boxes import Box
from advmri.experiments.recons import RunRecons, TargetRecons


def _run(model="varnet", n=2, params=(0.0, 0.01, 0.02)):
    ts = []
    for j in range(n):
        tgt = np.full((20, 24), 1.0 + j, dtype=np.float32)
        adv = np.stack([tgt + 10 * p for p in params])
        rnd = np.stack([tgt + p for p in params])
        ts.append(
            TargetRecons(
                index=j,
                file=f"f{j}",
                slice=j,
                label="Meniscus Tear",
                box=Box(10 + j, 12, 6, 5),
                window=(8, 28, 6, 30),
                target=tgt,
                healthy=tgt * 0.5,
                adversarial=adv,
                random=rnd,
            )
        )
    return RunRecons("noise", model, "small", 8, list(params), {}, "test", ts)


class FakeLive:
    def __init__(self, run):
        self.calls = []

    def compute(self, t, eps, on_step):
        self.calls.append(eps)
        for i in range(3):
            on_step(i + 1, 3)
        return t.target + 100 * eps, t.target + eps, 0.01


def test_explorer_follows_every_control():
    runs = [_run("varnet"), _run("unet", n=3)]
    w = eps_explorer(runs, live=FakeLive)
    assert w.shown == ("stored", 0.02)  # opens at the largest stored eps
    z = lambda i: np.asarray(w.figure.data[i].z)  # noqa: E731
    assert np.allclose(z(1), 1.2) and np.allclose(z(2), 1.02) and np.allclose(z(0), 1.0)
    assert np.allclose(z(3), 1.0)  # bottom left: clean reconstruction (eps = 0)
    assert np.allclose(z(4), 0.2) and np.allclose(z(5), 0.02)
    titles = [a.text for a in w.figure.layout.annotations]
    assert titles[1] == "adversarial, eps = 0.02" and titles[2].startswith("random, same coil norms")
    assert "f0 · slice 0 · Meniscus Tear" in w.header.value
    # fixed scales: the same zmax for every eps
    zmax = [tr.zmax for tr in w.figure.data]
    w.eps.value = 0.0
    assert w.shown == ("stored", 0.0) and np.allclose(z(1), 1.0)
    assert [tr.zmax for tr in w.figure.data] == zmax
    assert zmax[4] == zmax[5] and zmax[4] != zmax[1]  # differences have their own range
    # target: box outline moves (window coordinates), name in header
    w.target.value = 1
    assert w.figure.layout.shapes[0].x0 == (11 - 6) - 0.5 and "f1 · slice 1" in w.header.value
    # model switch: target list of the other run
    w.model.value = 1
    assert len(w.target.options) == 3 and w.header.value.count("unet") == 1
    # live attack at a value between the stored ones, with progress
    w.live_eps.value = 0.0035
    w.compute.click()
    assert w.shown == ("live", 0.0035) and w.progress.value == w.progress.max == 3
    assert np.allclose(z(1), 1.35) and "live adversarial, eps = 0.0035" in w.figure.layout.annotations[1].text
    w.eps.value = 0.01
    assert w.shown == ("stored", 0.01)


def test_explorer_reports_a_failed_live_attack():
    class Broken:
        def __init__(self, run):
            raise FileNotFoundError("models/x.pt: checkpoint not found")

    w = eps_explorer([_run()], live=Broken)
    w.compute.click()
    assert "checkpoint not found" in w.status.value and w.shown == ("stored", 0.02) and not w.compute.disabled


def test_explorer_needs_stored_runs():
    with pytest.raises(ValueError, match="no stored reconstructions"):
        eps_explorer([])


def test_slider_change_is_fast():
    w = eps_explorer([_run()], live=FakeLive)
    dt = [timed_change(w.eps, v) for v in (0.0, 0.01, 0.02) * 5]
    assert max(dt) < 0.1, dt
