"""advmri.app.pipeline: the steps' order, the notebooks in the background beside the sweep, the summary."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from advmri.app import pipeline


@pytest.fixture()
def fake_steps(monkeypatch):
    """Every step replaced by one that records when it started and ended (the notebooks take a while)."""
    spans: dict[str, tuple[float, float]] = {}
    threads: dict[str, str] = {}

    def make(step, seconds, fail=False):
        def run(a, overrides):
            t0 = time.perf_counter()
            time.sleep(seconds)
            threads[step] = threading.current_thread().name
            spans[step] = (t0, time.perf_counter())
            if fail:
                raise RuntimeError(f"{step} failed")

        return run

    def install(fail: str | None = None):
        durations = {"data": 0.01, "train": 0.01, "notebooks": 0.4, "sweep": 0.2, "analysis": 0.01, "paper": 0.01}
        funcs = {s: make(s, d, fail == s) for s, d in durations.items()}
        monkeypatch.setattr(pipeline, "_STEP_FUNCS", funcs)
        monkeypatch.setattr(pipeline, "BACKGROUND", set())
        return spans, threads

    return install


def test_notebooks_run_beside_the_sweep_and_finish_before_the_analysis(fake_steps, capsys):
    spans, threads = fake_steps()
    times: dict[str, float] = {}
    pipeline._steps(argparse.Namespace(start="data", until="paper", jobs=2), None, times)
    assert set(times) == set(pipeline.STEPS)
    nb, sweep, analysis = spans["notebooks"], spans["sweep"], spans["analysis"]
    assert nb[0] < sweep[1] and sweep[0] < nb[1]  # they overlap
    assert nb[1] <= analysis[0]  # the analysis waits for them
    assert threads["notebooks"].startswith("advmri-step") and threads["sweep"] == threading.main_thread().name
    out = capsys.readouterr().out
    assert "== notebooks (in the background, beside the steps until analysis)" in out
    assert "waiting for notebooks (in the background)" in out  # the sweep (0.2 s) ended first
    lines = pipeline.summary(times, 1.0).splitlines()
    assert [ln.split()[0] for ln in lines[1:]] == pipeline.STEPS  # in step order
    assert "(in the background, beside the steps until analysis)" in lines[1 + pipeline.STEPS.index("notebooks")]


def test_one_job_runs_the_steps_one_after_another(fake_steps):
    spans, threads = fake_steps()
    times: dict[str, float] = {}
    pipeline._steps(argparse.Namespace(start="data", until="paper", jobs=1), None, times)
    order = sorted(spans, key=lambda s: spans[s][0])
    assert order == pipeline.STEPS
    assert all(spans[a][1] <= spans[b][0] for a, b in zip(order, order[1:], strict=False))
    assert set(threads.values()) == {threading.main_thread().name}
    assert "(in the background" not in pipeline.summary(times, 1.0)


def test_a_failed_background_step_stops_the_job_before_the_analysis(fake_steps):
    spans, _ = fake_steps(fail="notebooks")
    times: dict[str, float] = {}
    with pytest.raises(RuntimeError, match="notebooks failed"):
        pipeline._steps(argparse.Namespace(start="data", until="paper", jobs=2), None, times)
    assert "sweep" in spans and "analysis" not in spans and "paper" not in spans
    assert "notebooks" not in times


def test_until_the_sweep_runs_the_notebooks_in_the_foreground(fake_steps):
    """Without the analysis in the range nothing would wait for a background step: it runs as usual."""
    spans, threads = fake_steps()
    times: dict[str, float] = {}
    pipeline._steps(argparse.Namespace(start="data", until="sweep", jobs=2), None, times)
    assert spans["notebooks"][1] <= spans["sweep"][0]
    assert threads["notebooks"] == threading.main_thread().name
