"""advmri.app.replay: the replay CLI on a folder without a card is one line naming the file (exit 2)."""

from __future__ import annotations

from advmri.app.replay import main
from tests.conftest import one_error_line


def test_replay_of_a_folder_without_ledger_is_one_line(tmp_path, capsys):
    (tmp_path / "card.json").write_text("{}")
    assert main([str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, "ledger.json", "not found")
