from __future__ import annotations

import hashlib
import shutil
import signal
from pathlib import Path

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


# ---------------------------------------------------------------------------------------------
# Shared by several test files. The bad-input probes (CLI or library driven as a user would): a private copy of the
# tiny set with an untrained checkpoint, and the one-error-line check.
def digest(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def cli(capsys, main, argv) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


def one_error_line(err: str, *needles: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, err)


def untrained(path: Path, kind: str = "unet", seed: int | None = None) -> Path:
    """Save an untrained tiny ``kind`` network at ``path`` (weights drawn after ``torch.manual_seed(seed)`` unless
    ``seed`` is None) and return ``path``."""
    from advmri.models.networks import build, save_checkpoint

    if seed is not None:
        torch.manual_seed(seed)
    save_checkpoint(path, build(kind, "tiny"))
    return path


@pytest.fixture()
def tiny_copy(tiny_data, tmp_path) -> tuple[Path, Path]:
    """A private copy of the tiny set (``tmp_path/data``) and its first HDF5 file, to damage."""
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    return d, sorted((d / "multicoil").glob("*.h5"))[0]


@pytest.fixture()
def tiny(tiny_copy, tmp_path):
    """A private copy of the tiny set and an untrained tiny VarNet checkpoint."""
    d, _ = tiny_copy
    return d, untrained(tmp_path / "m.pt", "varnet")


# ---------------------------------------------------------------------------------------------
# Set-ups shared by the test files of one layer. They live here, not in a tests/<layer>/conftest.py: pytest imports
# every conftest.py outside a package as the module ``conftest``, so a second one would replace this module in
# sys.modules and break ``from conftest import ROOT`` in the files collected after it (test_layout.py keeps the
# file names unique).


# attacks (test_noise.py, test_rotation.py): one batch of the tiny set, untrained tiny networks. Module-scoped: the
# tests only read them.
@pytest.fixture(scope="module")
def tiny_batch(tiny_data):
    """The first three located boxes of the tiny set (acceleration 8) as one batch."""
    from advmri.attacks.common import make_batch
    from advmri.data.dataset import AnnotatedSlices

    ds = AnnotatedSlices(tiny_data)
    return make_batch([ds[i] for i in range(min(3, len(ds)))])


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained tiny VarNet (seed 0), frozen."""
    from advmri.models.networks import build

    torch.manual_seed(0)
    return build("varnet", "tiny").freeze()


@pytest.fixture(scope="module")
def tiny_unet():
    """An untrained tiny U-Net (seed 0), frozen."""
    from advmri.models.networks import build

    torch.manual_seed(0)
    return build("unet", "tiny").freeze()


# experiments: runs, sweeps and model tables on the tiny set against untrained tiny U-Nets
@pytest.fixture()
def noise_run(tmp_path, tiny_data):
    """``noise_run(**noise)``: a 3-box noise run (eps 0, 0.01, 0.02; 3 steps; 2 random draws; 1 thread) against an
    untrained tiny U-Net (seed 1) saved once at ``tmp_path/u.pt``; ``noise`` adds or overrides parameters."""
    from advmri.experiments.run import AttackRun

    def make(**noise):
        ck = tmp_path / "u.pt"
        if not ck.is_file():
            untrained(ck, seed=1)
        return AttackRun.from_params(
            "noise",
            model=str(ck),
            data_dir=str(tiny_data),
            max_targets=3,
            eps=[0.0, 0.01, 0.02],
            steps=3,
            random_draws=2,
            threads=1,
            **noise,
        )

    return make


@pytest.fixture(scope="session")
def sweep_spec(tiny_data):
    """``sweep_spec(folder, **extra)``: the spec of sweep ``v`` (a noise and a rotation run, 3 boxes of the tiny set)
    against an untrained tiny U-Net (seed 3) saved once at ``folder/m.pt``; ``extra`` adds top-level keys."""

    def make(folder: Path, **extra) -> dict:
        ck = folder / "m.pt"
        if not ck.is_file():
            untrained(ck, seed=3)
        return dict(
            name="v",
            notebooks={"noise": "notebooks/03_noise_attack.ipynb", "rotation": "notebooks/04_rotation_attack.ipynb"},
            grid=dict(model=[str(ck)], acceleration=[8], attack=["noise", "rotation"]),
            common=dict(data_dir=str(tiny_data), max_targets=3, random_draws=2, threads=1),
            per_attack=dict(
                noise=dict(eps=[0.0, 0.01, 0.02], steps=3),
                rotation=dict(max_angle=1.0, angle_step=0.5, bounds=[0.0, 1.0]),
            ),
            **extra,
        )

    return make


@pytest.fixture(scope="module")
def quality_specs(tmp_path_factory) -> dict[str, str]:
    """The models of the quality-table tests: an untrained tiny U-Net (seed 1) and CG-SENSE."""
    tmp = tmp_path_factory.mktemp("qmodels")
    return {"unet": str(untrained(tmp / "u.pt", seed=1)), "cg-sense": "classical:cg-sense"}


# ---------------------------------------------------------------------------------------------
# User models as a ``file.py:factory`` and their benchmark cards (app.benchmark writes them; report.card,
# report.leaderboard, experiments.threats and models.usermodel read them). Session-scoped: computed once.
MODELS = """
import fastmri
import torch
from torch import nn


class KNet(nn.Module):  # k-space kind: the zero-filled RSS times a learnable scale
    def __init__(self, out=None, fill=None, dtype=None):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.out, self.fill, self.dtype = out, fill, dtype

    def forward(self, masked_kspace, mask):
        img = self.scale * fastmri.rss(fastmri.complex_abs(fastmri.ifft2c(masked_kspace)), dim=1)
        if self.out is not None:
            img = img[:, : self.out, : self.out]
        if self.fill is not None:
            img = img + self.fill
        return img.to(self.dtype) if self.dtype is not None else img


class INet(nn.Module):  # image kind: a residual 3x3 convolution
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return x + 0.1 * self.conv(x)


class Three(nn.Module):
    def forward(self, a, b, c):
        return a


def kspace():
    return KNet()


def image():
    return INet()


def wrong_shape():
    return KNet(out=7)


def nan_output():
    return KNet(fill=float("nan"))


def complex_output():
    return KNet(dtype=torch.complex64)


def not_a_module():
    return 3


def needs_argument(chans):
    return INet()


def three_inputs():
    return Three()
"""


# user models that fail in the ways a newcomer's do (tests/models/test_usermodel.py, tests/app/test_benchmark.py)
BROKEN = """
import pytest
import torch
from torch import nn
from mynet import Net  # a sibling module of this file


def sibling():
    return Net()


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(x)  # the image is 1 channel: conv2d raises


def raises():
    return Raises()


class Complex(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return torch.stack([x * self.w, x * 0], dim=-1)  # (b, 1, H, W, 2): real and imaginary


def complex_out():
    return Complex()
"""
SIBLING = """
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(__import__("torch").ones(()))

    def forward(self, x):
        return x * self.scale
"""


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("models") / "my_models.py"
    p.write_text(MODELS)
    return p


def _bench(model: str, data: Path, out: Path, *extra: str) -> int:
    from advmri.app.benchmark import main as benchmark_main

    return benchmark_main(
        [
            "--model",
            model,
            "--data",
            str(data),
            "--out",
            str(out),
            "--smoke",
            "--threads",
            "1",
            "--acceleration",
            "8",
            *extra,
        ]
    )


@pytest.fixture(scope="session")
def cards(model_file, tiny_data, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cards")
    made = {}
    for kind in ("kspace", "image"):
        assert _bench(f"{model_file}:{kind}", tiny_data, out / kind, "--save-examples", "1") == 0
        made[kind] = out / kind
    return made


# The fast tier (`python3 tasks.py test`) leaves out every test marked slow; `python3 tasks.py test-slow` runs them
# and CI (.ci/run) runs both. Besides the modules marked slow in their own file (browser, SLURM, Dask, book, faults
# that start processes, the notebooks on the real data, the wheel), these tests took more than 10 s in the fast tier
# (2026-12-02, 2-core CPU, `pytest -m "not slow" --durations=25`: seconds in the comment).
SLOW_TESTS = {  # node ids: tests/<layer>/test_<module>.py::test (tests/test_layout.py checks they exist)
    "tests/experiments/test_sweep.py::test_sharded_sweep_equals_unsharded",  # 110
    "tests/test_notebooks.py::test_notebook_runs_with_smoke[07_beyond]",  # 58
    "tests/experiments/test_sweep.py::test_two_smoke_sweeps_give_byte_identical_tables",  # 48
    "tests/experiments/test_sweep.py::test_changed_or_truncated_results_are_not_reused",  # 28
    "tests/models/test_networks.py::test_official_state_dict_layout_loads[unet]",  # 23
    "tests/test_notebooks.py::test_notebook_runs_with_smoke[05_analysis]",  # 21
    "tests/experiments/test_sweep.py::test_results_of_other_weights_are_recomputed",  # 19
    "tests/experiments/test_run.py::test_adversarial_beats_random_on_trained_model",  # 18
    "tests/models/test_networks.py::test_official_weights_sha256_is_recorded",  # 16
    "tests/experiments/test_sweep.py::test_sweep_failure_is_recorded_and_only_it_is_redone",  # 14
    "tests/models/test_networks.py::test_checkpoint_of_the_other_kind_is_named",  # 14
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def box_rows(n_boxes=5, draws=3, seed=0):
    """Synthetic result rows (tests of report.figures and report.analysis): per box a base SSIM; adversarial =
    base - 0.3, random = base +- small noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.9, n_boxes)
    rows = []
    for b in range(n_boxes):
        box = dict(model="m", acceleration=8, attack="noise", param=0.01, file=f"f{b}", slice=b, bx=b, by=1, bw=8, bh=8)
        rows.append(dict(box, kind="adversarial", draw=0, box_ssim=base[b] - 0.3 - 0.01 * b))
        for d in range(draws):
            rows.append(dict(box, kind="random", draw=d, box_ssim=base[b] + 0.001 * (d - 1)))
    return pd.DataFrame(rows), base
