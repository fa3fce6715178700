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
    assert len(cards) == 4, "the committed leaderboard has a card for varnet, unet, cg-sense and l1-wavelet"
    assert leaderboard_main([*cards, "--out", str(tmp_path)]) == 0
    import pandas as pd

    fresh, committed = pd.read_csv(tmp_path / "leaderboard.csv"), pd.read_csv(lb / "leaderboard.csv")
    assert list(fresh.model) == list(committed.model)
    assert fresh.robust_box_psnr.round(4).tolist() == committed.robust_box_psnr.round(4).tolist()
