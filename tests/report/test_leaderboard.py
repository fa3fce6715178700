"""advmri.report.leaderboard: cards ranked by robust box PSNR; the committed leaderboard matches its cards."""

from __future__ import annotations

import json

from conftest import ROOT


def test_leaderboard_ranks_cards_by_robust_box_psnr(cards, tmp_path, capsys):
    from advmri.report.leaderboard import main as leaderboard_main

    assert leaderboard_main([str(cards["kspace"]), str(cards["image"] / "card.json"), "--out", str(tmp_path)]) == 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "leaderboard.csv")
    robust = [json.loads((cards[k] / "card.json").read_text()) for k in ("kspace", "image")]
    expect = sorted(
        (
            next(
                r["box_psnr"]
                for r in c["rows"]
                if r["threat"] == "noise" and r["kind"] == "adversarial" and r["param"] == 0.01
            ),
            c["model"]["name"],
        )
        for c in robust
    )[::-1]
    assert list(df["model"]) == [name for _, name in expect] and list(df["rank"]) == [1, 2]
    assert (tmp_path / "leaderboard.md").read_text().startswith("# Leaderboard: robust box PSNR at eps = 0.01, 8x")
    assert leaderboard_main([str(cards["kspace"]), "--acceleration", "4", "--out", str(tmp_path)]) == 2
    assert "has no noise rows at eps 0.01, 4x" in capsys.readouterr().err


def test_committed_leaderboard_matches_its_cards(tmp_path):
    from advmri.report.leaderboard import main as leaderboard_main

    lb = ROOT / "results" / "leaderboard"
    cards = sorted(str(p.parent) for p in (lb / "cards").glob("*/card.json"))
    assert len(cards) == 5, "the committed leaderboard has a card for varnet, unet, cg-sense, l1-wavelet, zero-filled"
    assert leaderboard_main([*cards, "--out", str(tmp_path)]) == 0
    import pandas as pd

    fresh, committed = pd.read_csv(tmp_path / "leaderboard.csv"), pd.read_csv(lb / "leaderboard.csv")
    assert list(fresh.model) == list(committed.model) and list(fresh["rank"]) == list(committed["rank"])
    assert committed.set_index("model").loc["zero-filled", "standing"].startswith("reference")
    assert fresh.robust_box_psnr.round(4).tolist() == committed.robust_box_psnr.round(4).tolist()


def _card(
    name: str, kind: str, clean: float, robust: float, profile: str = "standard", boxes: int = 8, spec: str = ""
) -> dict:
    row = dict(
        threat="noise", acceleration=8, n_boxes=boxes, n_volumes=8, box_psnr_lo=robust - 1, box_psnr_hi=robust + 1
    )
    return dict(
        model=dict(name=name, spec=spec or name, kind=kind, parameters=10),
        profile=profile,
        data=dict(dir="data/synthetic/small/test"),
        rows=[
            dict(row, param=0.0, kind="clean", box_psnr=clean),
            dict(row, param=0.01, kind="adversarial", box_psnr=robust),
            dict(row, param=0.01, kind="random", box_psnr=clean),
        ],
    )


def test_a_trivial_model_cannot_win_and_other_profiles_are_not_ranked(tmp_path):
    from advmri.report.leaderboard import leaderboard, write_leaderboard

    cards = {
        "zf": _card("zero-filled", "classical", 19.96, 19.90, spec="classical:zero-filled"),
        "cnn": _card("untrained-cnn", "user", 19.95, 19.93),  # robust for free, no better than zero-filling
        "unet": _card("unet", "advmri unet (small)", 22.16, 16.28),
        "varnet": _card("varnet", "advmri varnet (small)", 23.15, 15.87),
        "cg": _card("cg-sense", "cg-sense", 21.27, 14.76),
        "smoke": _card("mine", "user", 30.0, 29.0, profile="smoke", boxes=2),
    }
    df = leaderboard(cards)
    by = df.set_index("model")
    assert list(df.model[df["rank"] > 0]) == ["unet", "varnet", "cg-sense"] and list(df["rank"][:3]) == [1, 2, 3]
    assert by.loc["zero-filled", "rank"] == 0 and by.loc["zero-filled", "standing"].startswith("reference")
    assert by.loc["untrained-cnn", "standing"] == "below zero-filled when clean (19.95 < 19.96 dB)"
    assert by.loc["mine", "standing"] == "not comparable (profile smoke vs standard, boxes 2 vs 8)"
    assert by.pareto.to_dict() == {m: m in ("unet", "varnet") for m in by.index}
    files = write_leaderboard(df, tmp_path, 0.01, 8)
    md = files["md"].read_text()
    assert (
        "at least as good as the zero-filled reconstruction when clean" in md and "| 1 ◆ | unet (not audited) |" in md
    )
    page = files["html"].read_text()
    assert page.count("<circle") == 6 and "clean box PSNR (dB)" in page and "stroke-dasharray" in page
    no_ref = leaderboard({k: v for k, v in cards.items() if k != "zf"})
    assert list(no_ref.model[no_ref["rank"] > 0])[0] == "untrained-cnn"  # what robust PSNR alone does
    assert "without a zero-filled reference card" in write_leaderboard(no_ref, tmp_path, 0.01, 8)["md"].read_text()
