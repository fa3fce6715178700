from __future__ import annotations

from pathlib import Path

import signal

import pytest
import torch

torch.set_num_threads(2)

# Started in the background (`cmd &`, nohup), this process ignores SIGINT, and the CLIs it starts would inherit the
# ignore (an ignored signal stays ignored across exec), so the Ctrl-C tests would see no interrupt. A Python handler
# is reset to the default on exec: the children get SIGINT as a user's terminal sends it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Three tiny synthetic volumes (fastMRI layout + fastMRI+ CSV)."""
    from advmri.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("tiny")
    generate_dataset("tiny", 3, seed=5, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    from advmri.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("small")
    generate_dataset("small", 2, seed=11, out=out, progress=False)
    return out


# The fast tier (`python3 tasks.py test`) leaves out every test marked slow; `python3 tasks.py test-slow` runs them
# and CI (.ci/run) runs both. Besides the modules marked slow in their own file (browser, SLURM, Dask, book, faults
# that start processes, the notebooks on the real data, the wheel), these tests took more than 10 s in the fast tier
# (2026-12-02, 2-core CPU, `pytest -m "not slow" --durations=25`: seconds in the comment).
SLOW_TESTS = {
    "tests/test_sweep.py::test_sharded_sweep_equals_unsharded",  # 110
    "tests/test_notebooks.py::test_notebook_runs_with_smoke[07_beyond]",  # 58
    "tests/test_sweep.py::test_two_smoke_sweeps_give_byte_identical_tables",  # 48
    "tests/test_probes.py::test_changed_or_truncated_results_are_not_reused",  # 28
    "tests/test_models.py::test_official_state_dict_layout_loads[unet]",  # 23
    "tests/test_notebooks.py::test_notebook_runs_with_smoke[05_analysis]",  # 21
    "tests/test_verify.py::test_results_of_other_weights_are_recomputed",  # 19
    "tests/test_attacks.py::test_adversarial_beats_random_on_trained_model",  # 18
    "tests/test_probes.py::test_official_weights_sha256_is_recorded",  # 16
    "tests/test_sweep.py::test_sweep_failure_is_recorded_and_only_it_is_redone",  # 14
    "tests/test_probes.py::test_checkpoint_of_the_other_kind_is_named",  # 14
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
