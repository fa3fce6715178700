"""advmri.experiments.ledger and ``advmri replay``: a card replays bit-exactly from its stored perturbations; a changed
perturbation file, a changed table value, another model and a missing or malformed ledger are each caught."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from advmri.app.replay import main as replay_main
from advmri.experiments.ledger import LedgerError, replay
from tests.conftest import _bench, one_error_line, untrained


@pytest.fixture(scope="module")
def card(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("ledger")
    spec = untrained(root / "u.pt", "unet", seed=0)
    assert _bench(str(spec), tiny_data, root / "card") == 0
    return root / "card", spec


def _copy(card, tmp_path):
    folder = tmp_path / "card"
    shutil.copytree(card[0], folder)
    return folder


def test_card_replays_bit_exactly(card, capsys):
    r = replay(card[0])
    assert r.holds and r.exact and r.rows > 0 and r.max_rel_diff == 0.0
    led = json.loads((card[0] / "ledger.json").read_text())
    assert {e["eps"] for e in led["entries"]} == {0.01}  # the headline budget only
    assert replay_main([str(card[0] / "card.json")]) == 0
    assert "card holds" in capsys.readouterr().out


def test_changed_perturbation_is_caught(card, tmp_path, capsys):
    folder = _copy(card, tmp_path)
    with np.load(folder / "ledger.npz") as f:
        arrays = {k: f[k].copy() for k in f.files}
    arrays["z0"][0, 0, 0, 0] += 1e-3 * float(np.abs(arrays["z0"]).max())
    np.savez_compressed(folder / "ledger.npz", **arrays)
    with pytest.raises(LedgerError, match="sha256 differs"):
        replay(folder)
    led = json.loads((folder / "ledger.json").read_text())  # the tamperer also rewrites the digest
    import hashlib

    led["npz_sha256"] = hashlib.sha256((folder / "ledger.npz").read_bytes()).hexdigest()
    (folder / "ledger.json").write_text(json.dumps(led))
    assert replay_main([str(folder)]) == 1
    assert "card does not hold" in capsys.readouterr().out


def test_changed_table_value_is_caught(card, tmp_path):
    folder = _copy(card, tmp_path)
    path = sorted((folder / "runs").glob("noise-*.csv"))[0]
    df = pd.read_csv(path)
    i = df.index[(df.kind == "adversarial") & np.isclose(df.param, 0.01)][0]
    df.loc[i, "box_ssim"] = df.loc[i, "box_ssim"] * (1 + 1e-7)
    df.to_csv(path, index=False)
    r = replay(folder)
    assert not r.holds and "box_ssim" in r.bad[0]


def test_another_model_is_caught(card, tmp_path):
    other = untrained(tmp_path / "other.pt", "unet", seed=1)
    with pytest.raises(LedgerError, match="not that of the card's model"):
        replay(card[0], str(other))


@pytest.mark.parametrize("damage", ["missing", "malformed", "newer"])
def test_missing_or_malformed_ledger_is_one_line(card, tmp_path, capsys, damage):
    folder = _copy(card, tmp_path)
    js = folder / "ledger.json"
    if damage == "missing":
        (folder / "ledger.npz").unlink()
    elif damage == "malformed":
        js.write_text("{not json")
    else:
        js.write_text(json.dumps(dict(json.loads(js.read_text()), ledger_version=99)))
    assert replay_main([str(folder)]) == 2
    one_error_line(capsys.readouterr().err, "ledger")
