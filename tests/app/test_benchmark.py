"""advmri.app.benchmark: ``advmri benchmark`` on any model (``file.py:factory``) writes a complete, reproducible
robustness card; a bad model or model spec is one line before any work. The user models and the cards are the
fixtures ``model_file`` and ``cards`` of conftest.py (shared with the card, leaderboard and threat tests)."""

from __future__ import annotations

import json

import pytest
from conftest import _bench, cli, one_error_line

REQUIRED_ROW = {
    "threat",
    "acceleration",
    "param",
    "kind",
    "n_boxes",
    "box_psnr",
    "box_ssim",
    "image_ssim",
    "box_psnr_lo",
    "box_psnr_hi",
    "box_ssim_lo",
    "box_ssim_hi",
    "image_ssim_lo",
    "image_ssim_hi",
}


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


@pytest.mark.parametrize(
    "factory,expected",
    [
        ("no_such_factory", "no factory 'no_such_factory' in the file"),
        ("wrong_shape", "output shape (1, 7, 7), expected (1, 48, 48) or larger"),
        ("nan_output", "output has NaN or infinite values"),
        ("complex_output", "output dtype torch.complex64, expected a real floating-point magnitude image"),
        ("not_a_module", "the factory returned int, expected a torch.nn.Module"),
        ("needs_argument", "the factory must take no arguments"),
        ("three_inputs", "cannot tell the model kind from forward(a, b, c)"),
    ],
)
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


def test_a_model_whose_forward_raises_is_one_line_and_leaves_no_folder(tmp_path, tiny_data, capsys):
    from conftest import BROKEN, SIBLING

    (tmp_path / "mynet.py").write_text(SIBLING)
    (tmp_path / "broken.py").write_text(BROKEN)
    from advmri.app.benchmark import main

    rc, err = cli(
        capsys,
        main,
        [
            "--model",
            f"{tmp_path / 'broken.py'}:raises",
            "--data",
            str(tiny_data),
            "--out",
            str(tmp_path / "card"),
            "--smoke",
        ],
    )
    assert rc == 2
    one_error_line(err, "broken.py:raises: forward(", "raised RuntimeError")
    assert not (tmp_path / "card").exists()


def test_every_step_says_when_it_starts(tiny_data, tmp_path, model_file, capsys):
    assert _bench(f"{model_file}:kspace", tiny_data, tmp_path / "card") == 0
    out = [x for x in capsys.readouterr().out.splitlines() if x.startswith("benchmark [")]
    steps = [x for x in out if not x.startswith("benchmark checks")]
    assert len(steps) % 2 == 0 and steps
    for start, done in zip(steps[::2], steps[1::2], strict=True):  # each step: a start line, then its result
        assert start.endswith(": started (one line when done)"), start
        assert done.split(":")[0] == start.split(":")[0] and done.endswith(" s"), (start, done)
