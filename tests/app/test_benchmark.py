"""advmri as a tool: any model (``file.py:factory``), threat models as objects, ``advmri benchmark`` cards,
``advmri leaderboard``, the console script, model cards and the wheel."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from advmri.app.benchmark import main as benchmark_main

ROOT = Path(__file__).resolve().parents[1]

MODELS = '''
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
'''


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("models") / "my_models.py"
    p.write_text(MODELS)
    return p


def _bench(model: str, data: Path, out: Path, *extra: str) -> int:
    return benchmark_main(["--model", model, "--data", str(data), "--out", str(out), "--smoke", "--threads", "1",
                           "--acceleration", "8", *extra])


@pytest.fixture(scope="module")
def cards(model_file, tiny_data, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cards")
    made = {}
    for kind in ("kspace", "image"):
        assert _bench(f"{model_file}:{kind}", tiny_data, out / kind, "--save-examples", "1") == 0
        made[kind] = out / kind
    return made


REQUIRED_ROW = {"threat", "acceleration", "param", "kind", "n_boxes", "box_psnr", "box_ssim", "image_ssim",
                "box_psnr_lo", "box_psnr_hi", "box_ssim_lo", "box_ssim_hi", "image_ssim_lo", "image_ssim_hi"}


@pytest.mark.parametrize("kind", ["kspace", "image"])
def test_benchmark_writes_a_complete_card(cards, model_file, kind):
    card = json.loads((cards[kind] / "card.json").read_text())
    assert {"model", "data", "advmri_version", "seconds", "rows"} <= set(card)
    m = card["model"]
    assert m["spec"] == f"{model_file}:{kind}" and m["kind"] == f"user ({kind})"
    assert m["parameters"] == (1 if kind == "kspace" else 10)
    import hashlib

    assert list(m["files"].values()) == [hashlib.sha256(model_file.read_bytes()).hexdigest()]
    assert card["data"]["boxes"] == 2 and card["profile"] == "smoke"
    rows = card["rows"]
    assert all(REQUIRED_ROW <= set(r) for r in rows)
    assert {r["threat"] for r in rows} == {"noise", "rotation"}
    assert {r["kind"] for r in rows} == {"clean", "adversarial", "random"}
    noise = {(r["kind"], r["param"]): r for r in rows if r["threat"] == "noise"}
    clean, adv, rnd = noise[("clean", 0.0)], noise[("adversarial", 0.01)], noise[("random", 0.01)]
    # the attack is stronger than the energy-matched random control, which barely moves the reconstruction
    assert adv["box_psnr"] < rnd["box_psnr"] - 1.0
    assert rnd["box_psnr"] <= clean["box_psnr"] + 0.1
    # the synthetic data has lesion-free twins: erasure and hallucination rates are on the noise rows
    assert all("erasure_rate" in r and "hallucination_rate" in r for r in noise.values())
    assert 0.0 <= adv["hallucination_rate"] <= 1.0
    rot = [r for r in rows if r["threat"] == "rotation" and r["kind"] == "adversarial"]
    assert sorted(r["param"] for r in rot) == [1.0, 2.0]
    md = (cards[kind] / "card.md").read_text()
    assert "Robustness card" in md and "Headline" in md and "resampling volumes" in md
    assert len(list((cards[kind] / "examples").glob("*.png"))) == 1 and "![worst01" in md
    assert (cards[kind] / "runs" / "noise-8x.csv").is_file()


def test_benchmark_is_reproducible_and_keeps_an_existing_card(cards, model_file, tiny_data, tmp_path, capsys):
    first = json.loads((cards["kspace"] / "card.json").read_text())
    assert _bench(f"{model_file}:kspace", tiny_data, tmp_path / "again", "--save-examples", "1") == 0
    again = json.loads((tmp_path / "again" / "card.json").read_text())
    assert again["rows"] == first["rows"] and again["settings"] == first["settings"]
    before = (tmp_path / "again" / "card.json").read_bytes()
    assert _bench(f"{model_file}:kspace", tiny_data, tmp_path / "again") == 2  # no --force
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "card.json: exists; use --force" in err and "\n" not in err
    assert (tmp_path / "again" / "card.json").read_bytes() == before


@pytest.mark.parametrize("factory,expected", [
    ("no_such_factory", "no factory 'no_such_factory' in the file"),
    ("wrong_shape", "output shape (1, 7, 7), expected (1, 48, 48) or larger"),
    ("nan_output", "output has NaN or infinite values"),
    ("complex_output", "output dtype torch.complex64, expected a real floating-point magnitude image"),
    ("not_a_module", "the factory returned int, expected a torch.nn.Module"),
    ("needs_argument", "the factory must take no arguments"),
    ("three_inputs", "cannot tell the model kind from forward(a, b, c)"),
])
def test_a_bad_model_is_one_line_naming_file_and_factory(model_file, tiny_data, tmp_path, capsys, factory, expected):
    assert _bench(f"{model_file}:{factory}", tiny_data, tmp_path / "card") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: "), err
    assert expected in err, err
    if factory != "no_such_factory":
        assert f"{model_file}:{factory}" in err
    assert not (tmp_path / "card" / "card.json").exists()


def test_model_spec_errors_before_any_work(model_file, tiny_data, tmp_path, capsys):
    assert _bench(str(tmp_path / "missing.py") + ":make", tiny_data, tmp_path / "c") == 2
    assert "missing.py: model file not found" in capsys.readouterr().err
    assert _bench(f"{model_file}:kspace:volume", tiny_data, tmp_path / "c") == 2
    assert "kind 'volume' is not one of kspace, image" in capsys.readouterr().err
    assert _bench("classical:cg-sense", tiny_data, tmp_path / "c", "--model-kind", "image") == 2
    assert "model-kind: only for a file.py:factory model" in capsys.readouterr().err
    assert _bench("classical:cg-sense", tiny_data, tmp_path / "c", "--budget", "0.3") == 2
    assert "budget: 0.3 is not one of the noise budgets" in capsys.readouterr().err


def test_kind_is_detected_or_given(model_file):
    from advmri.models.usermodel import load_user_model

    assert load_user_model(f"{model_file}:kspace").model_kind == "kspace"
    assert load_user_model(f"{model_file}:image").model_kind == "image"
    assert load_user_model(f"{model_file}:three_inputs:kspace").model_kind == "kspace"  # given, not detected
    a, b = load_user_model(f"{model_file}:image"), load_user_model(f"{model_file}:image")
    assert torch.equal(a.net.conv.weight, b.net.conv.weight)  # the factory runs seeded


def test_threat_objects_perturb_a_batch_within_their_budgets(model_file, tiny_data):
    from advmri.attacks.common import make_batch
    from advmri.attacks.noise import coil_norms
    from advmri.data.dataset import AnnotatedSlices
    from advmri.experiments.run import AttackRun, load_model
    from advmri.experiments.threats import KspaceNoise, RandomNoise, Rotation

    model = load_model(f"{model_file}:image")
    ds = AnnotatedSlices(str(tiny_data), acceleration=8)
    tb = make_batch([ds[0], ds[1]])
    noise = KspaceNoise(eps=(0.0, 0.01), steps=2, random_draws=1)
    z = noise.perturb(model, tb, 0.01)  # (batch, coils, rows, cols) complex
    assert z.shape == tb.kspace.shape
    assert bool((coil_norms(z) <= 0.01 * coil_norms(tb.kspace) * (1 + 1e-5)).all())
    assert bool((z * ~tb.acquired[:, None, None, :]).abs().max() == 0)  # only on the acquired columns
    zr = RandomNoise(draws=1).perturb(tb, z, 0.01)
    masked = lambda x: coil_norms(x * tb.mask[:, None, None, :])  # noqa: E731
    assert torch.allclose(masked(zr), masked(z), rtol=1e-4)  # the control delivers the attack's energy
    assert noise.reconstruct(model, tb, z).shape == tb.target.shape
    angles, rec = Rotation(bounds=(0.0, 2.0), max_angle=2.0, angle_step=1.0).perturb(model, tb, 2.0)
    assert rec.shape == tb.target.shape and bool((angles.abs() <= 2.0).all())
    run = noise.run(f"{model_file}:image", str(tiny_data), 8, max_targets=2)
    same = AttackRun.from_params("noise", model=f"{model_file}:image", data_dir=str(tiny_data), acceleration=8,
                                 max_targets=2, eps=[0.0, 0.01], steps=2, random_draws=1)
    assert run.id == same.id
    d = noise.describe()
    assert d["threat"] == "noise" and d["eps"] == (0.0, 0.01) and "mask applied after the noise" in d["budget"]
    assert Rotation().describe()["grid"] == "-4.9..4.9 deg in 0.1 deg steps"


def test_leaderboard_ranks_cards_by_robust_box_psnr(cards, tmp_path, capsys):
    from advmri.report.leaderboard import main as leaderboard_main

    assert leaderboard_main([str(cards["kspace"]), str(cards["image"] / "card.json"), "--out", str(tmp_path)]) == 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "leaderboard.csv")
    robust = [json.loads((cards[k] / "card.json").read_text()) for k in ("kspace", "image")]
    expect = sorted((next(r["box_psnr"] for r in c["rows"] if r["threat"] == "noise" and r["kind"] == "adversarial"
                          and r["param"] == 0.01), c["model"]["name"]) for c in robust)[::-1]
    assert list(df["model"]) == [name for _, name in expect] and list(df["rank"]) == [1, 2]
    assert (tmp_path / "leaderboard.md").read_text().startswith("# Leaderboard: robust box PSNR at eps = 0.01, 8x")
    assert leaderboard_main([str(cards["kspace"]), "--acceleration", "4", "--out", str(tmp_path)]) == 2
    assert "has no noise rows at eps 0.01, 4x" in capsys.readouterr().err


def test_card_html_opens_offline_in_the_browser(cards):
    import shutil

    from playwright.sync_api import sync_playwright

    exe = os.environ.get("ADVMRI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "no chromium: `apt-get install chromium` (tasks.py test does it) or set ADVMRI_CHROMIUM"

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(cards["image"]))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = b.new_page()
                page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("data:", base)) else None)
                page.goto(f"{base}/card.html")
                page.wait_for_selector("#curves .main-svg", timeout=20_000)  # drawn by the local plotly.js
                assert page.locator("#curves .scatterlayer .trace").count() >= 4
                assert "Robustness card" in page.inner_text("h1")
                assert page.locator("img[alt^='worst01']").count() == 1
            finally:
                b.close()
    finally:
        srv.shutdown()
    assert not outside, outside


def test_console_script_dispatches_to_every_command(capsys):
    from advmri.app.cli import COMMANDS, main

    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("advmri 0.1.0")
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in COMMANDS)
    for name in ("attack", "benchmark", "leaderboard", "sweep", "verify"):
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: advmri {name}")
    assert main(["benchmrk"]) == 2
    assert "did you mean 'benchmark'" in capsys.readouterr().err


def test_model_cards_are_generated_from_the_checkpoints():
    from advmri.report.modelcard import model_card
    from advmri.models.networks import file_sha256

    for name in ("varnet-small", "unet-small"):
        committed = (ROOT / "models" / f"{name}.md").read_text()
        assert committed == model_card(ROOT / "models" / f"{name}.pt"), f"models/{name}.md is stale: advmri modelcard"
        assert file_sha256(ROOT / "models" / f"{name}.pt") in committed


def test_committed_leaderboard_matches_its_cards(tmp_path):
    from advmri.report.leaderboard import main as leaderboard_main

    lb = ROOT / "results" / "leaderboard"
    cards = sorted(str(p.parent) for p in (lb / "cards").glob("*/card.json"))
    assert len(cards) == 4, "the committed leaderboard has a card for varnet, unet, cg-sense and l1-wavelet"
    assert leaderboard_main([*cards, "--out", str(tmp_path)]) == 0
    import pandas as pd

    fresh, committed = pd.read_csv(tmp_path / "leaderboard.csv"), pd.read_csv(lb / "leaderboard.csv")
    assert list(fresh.model) == list(committed.model)
    assert fresh.robust_box_psnr.round(4).tolist() == committed.robust_box_psnr.round(4).tolist()


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs(tmp_path, tiny_data):
    """``python -m pip wheel .`` -> a fresh venv (its dependencies from this one, by a .pth line) -> ``advmri``."""
    import site
    import sysconfig

    import shutil

    src, dist = tmp_path / "src", tmp_path / "dist"  # built from a copy: setuptools writes build/ beside the sources
    for name in ("lib", "pyproject.toml", "README.md"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(src)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("advmri-0.1.0-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    assert here in site.getsitepackages() or here
    Path(purelib, "deps-from-advmri-venv.pth").write_text(here + "\n")  # appended: the wheel's own files win
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
                   check=True,
                   capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.run([str(py), "-c", "import advmri; print(advmri.__file__)"], check=True, capture_output=True,
                           text=True, env=env, cwd=tmp_path).stdout.strip()
    assert where.startswith(purelib), where  # the installed wheel, not this checkout's lib/
    for args, expect in ((["--version"], "advmri 0.1.0"), (["--help"], "benchmark"),
                         (["benchmark", "--help"], "usage: advmri benchmark")):
        r = subprocess.run([str(venv / "bin" / "advmri"), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
        assert r.returncode == 0 and expect in r.stdout, r.stderr
    # the installed tool on a model file and data given relative to the working directory
    rel_data = os.path.relpath(tiny_data, ROOT)
    r = subprocess.run([str(venv / "bin" / "advmri"), "benchmark", "--model", "examples/zero_filled.py:make", "--data",
                        rel_data, "--smoke", "--acceleration", "8", "--threats", "noise", "--out", str(tmp_path / "card")],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "card" / "card.json").read_text())
    assert card["model"]["name"] == "zero_filled:make" and card["model"]["parameters"] == 0


def test_a_card_without_intervals_renders(cards):
    """A single-volume (smoke) card stores no interval as JSON null; the headline and markdown still render
    (regression: notebook 08's smoke run raised ``float(None)``)."""
    from advmri.report.card import headline
    from advmri.report.card import card_markdown

    card = json.loads((cards["kspace"] / "card.json").read_text())
    for row in card["rows"]:
        for key in list(row):
            if key.endswith(("_lo", "_hi")):
                row[key] = None
    h = headline(card)
    assert h and all(h_["noise_clean_box_psnr_lo"] != h_["noise_clean_box_psnr_lo"] for h_ in h)  # NaN
    assert "## Headline" in card_markdown(card, [])
