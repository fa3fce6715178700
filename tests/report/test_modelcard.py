"""advmri.report.modelcard: the committed model cards are generated from the checkpoints."""

from __future__ import annotations

from conftest import ROOT


def test_model_cards_are_generated_from_the_checkpoints():
    from advmri.models.networks import file_sha256
    from advmri.report.modelcard import model_card

    for name in ("varnet-small", "unet-small"):
        committed = (ROOT / "models" / f"{name}.md").read_text()
        assert committed == model_card(ROOT / "models" / f"{name}.pt"), f"models/{name}.md is stale: advmri modelcard"
        assert file_sha256(ROOT / "models" / f"{name}.pt") in committed
