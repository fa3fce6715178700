"""advmri.models.networks: checkpoints (round trip, corrupt, mismatched, without sidecar, of the other kind) and
fastMRI's official weights (layout, missing file, sha256 recorded)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from advmri.models.networks import CheckpointError, build, load_checkpoint, load_official, save_checkpoint, sha256_file


def _inputs(b=2):
    g = torch.Generator().manual_seed(0)
    k = torch.view_as_complex(torch.randn(b, 4, 96, 64, 2, generator=g))
    m = torch.zeros(64, dtype=torch.bool)
    m[::4] = True
    m[28:36] = True
    return k * m, m


@pytest.mark.parametrize("kind", ["varnet", "unet"])
def test_save_load_roundtrip_identical(kind, tmp_path):
    torch.manual_seed(1)
    m = build(kind, "tiny").freeze()
    k, mask = _inputs()
    out = m(k, mask, 8, (48, 48))
    digest = save_checkpoint(tmp_path / "m.pt", m, extra={"note": "x"})
    m2, extra = load_checkpoint(tmp_path / "m.pt")
    assert extra == {"note": "x"} and len(digest) == 64
    assert torch.equal(m2.freeze()(k, mask, 8, (48, 48)), out)


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    m = build("varnet", "tiny")
    p = tmp_path / "m.pt"
    save_checkpoint(p, m)
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"m.pt: sha256"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match=r"m.pt: not a loadable"):
        load_checkpoint(p, verify=False)
    # a VarNet state_dict labelled as a UNet
    bad = tmp_path / "bad.pt"
    torch.save(
        {"kind": "unet", "config": "tiny", "params": build("unet", "tiny").params, "state_dict": m.net.state_dict()},
        bad,
    )
    with pytest.raises(CheckpointError, match=r"bad.pt: weights do not fit fastMRI unet/tiny"):
        load_checkpoint(bad)


@pytest.mark.parametrize("kind", ["varnet", "unet"])
def test_official_state_dict_layout_loads(kind, tmp_path):
    # a state_dict with fastMRI's key names and shapes, as the official knee files hold
    ref = build(kind, "paper")
    p = tmp_path / f"{kind}_official.pt"
    torch.save(ref.net.state_dict(), p)
    m = load_official(kind, p)
    k0 = next(iter(ref.net.state_dict()))
    assert torch.equal(m.net.state_dict()[k0], ref.net.state_dict()[k0])
    # wrong shapes (small config) are rejected with the file named
    torch.save(build(kind, "small").net.state_dict(), p)
    with pytest.raises(CheckpointError, match=p.name):
        load_official(kind, p)


def test_official_missing_says_where_to_put_it(tmp_path):
    with pytest.raises(CheckpointError, match="knee_leaderboard_state_dict.pt"):
        load_official("varnet", cache=tmp_path)


# ---------------------------------------------------------------------------------------------
# checkpoints: the other kind, no sidecar, official weights recorded
def test_checkpoint_of_the_other_kind_is_named(tmp_path):
    ck = tmp_path / "m.pt"
    save_checkpoint(ck, build("varnet", "tiny"))
    with pytest.raises(CheckpointError, match=r"m.pt: an advmri checkpoint \(varnet/tiny\)"):
        load_official("unet", ck)
    torch.save({"weights": [1, 2]}, tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match=r"junk.pt: not a unet state_dict"):
        load_official("unet", tmp_path / "junk.pt")
    torch.save(build("unet", "paper").net.state_dict(), tmp_path / "u.pt")
    with pytest.raises(CheckpointError, match=r"u.pt: weights do not fit fastMRI varnet/paper"):
        load_official("varnet", tmp_path / "u.pt")


def test_checkpoint_without_sidecar_warns_and_is_recorded(tiny, tmp_path):
    from advmri.experiments.run import AttackRun, execute, write_meta, write_table

    d, ck = tiny
    Path(str(ck) + ".sha256").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the digest stored inside it verifies it: no warning
        load_checkpoint(ck)
    blob = torch.load(ck, weights_only=True)
    del blob["content_sha256"]  # a checkpoint of an earlier version: no digest inside, no sidecar
    torch.save(blob, ck)
    with pytest.warns(UserWarning, match="integrity is unverified"):
        m, _ = load_checkpoint(ck)
    assert m.sha256 == sha256_file(ck)
    run = AttackRun.from_params(
        "noise", model=str(ck), data_dir=str(d), max_targets=1, eps=[0.01], steps=1, random_draws=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df, ex = execute(run, progress=False)
    table = write_table(df, tmp_path / "r.csv")
    meta = json.loads(write_meta(table, run, ex).read_text())
    assert meta["model_sha256"] == sha256_file(ck) and meta["annotations"]["located"] >= 1


def test_official_weights_sha256_is_recorded(tmp_path):
    p = tmp_path / "knee_official.pt"
    torch.save(build("unet", "paper").net.state_dict(), p)
    assert load_official("unet", p).sha256 == sha256_file(p)


def test_unknown_model_or_config_is_a_parameter_error():
    from advmri.models.networks import build
    from advmri.util.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^config: 'huge' is not one of 'paper', 'small', 'tiny'"):
        build("varnet", "huge")
    with pytest.raises(ParameterError, match=r"^model: 'resnet'"):
        build("resnet")
