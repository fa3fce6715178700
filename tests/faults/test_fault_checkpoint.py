"""Swapped or damaged checkpoints without their ``.sha256`` sidecar, and verification coverage: nothing computed
with other weights is reused, a damaged file is refused in one line, ``--verify`` says what it covered."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT

from advmri.experiments.sweep import run_sweep
from advmri.experiments.verify import CacheMismatch, choose_passes, verify_run
from advmri.models.networks import CheckpointError, build, load_checkpoint, save_checkpoint


def _spec(tmp: Path, data: Path, ck: Path) -> Path:
    spec = dict(
        name="ck",
        notebooks={"noise": "notebooks/03_noise_attack.ipynb"},
        grid=dict(model=[str(ck)], acceleration=[8], attack=["noise"]),
        common=dict(data_dir=str(data), max_targets=2, random_draws=1, threads=1, chunk=1),
        per_attack=dict(noise=dict(eps=[0.0, 0.01, 0.02], steps=2)),
    )
    cfg = tmp / "ck.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    return cfg


def _ckpt(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    save_checkpoint(path, build("unet", "tiny"))


@pytest.fixture(scope="module")
def done(tmp_path_factory, tiny_data):
    tmp = tmp_path_factory.mktemp("ck")
    ck = tmp / "m.pt"
    _ckpt(ck, 1)
    cfg = _spec(tmp, tiny_data, ck)
    st = run_sweep(cfg, results=tmp, log=lambda *a: None)
    assert all(v["status"] == "ok" for v in st.values()), st
    return cfg, tmp, ck


def test_swapped_checkpoint_without_sidecar_is_not_reused(done):
    cfg, tmp, ck = done
    original = ck.read_bytes()
    side = Path(str(ck) + ".sha256")
    side_text = side.read_text()
    folder = next(tmp.glob("ck/noise-*"))
    try:
        _ckpt(ck, 2)  # other weights at the same path, and no sidecar to tell
        side.unlink()
        with pytest.raises(CacheMismatch, match=r"computed with another checkpoint file .*re-run the sweep"):
            verify_run(folder, passes=1, log=lambda *a: None)
        logs: list[str] = []
        from advmri.experiments.sweep import load_sweep, stale_model

        _, runs = load_sweep(cfg, tmp)
        assert "computed with other weights" in stale_model(runs[0])
        assert not any("already done" in x and "1 already done" in x for x in logs)
    finally:
        ck.write_bytes(original)
        side.write_text(side_text)
    _, runs = load_sweep(cfg, tmp)
    assert stale_model(runs[0]) is None  # the original file again: reusable


def _flip_tensor_byte(path: Path) -> None:
    """Flip one byte inside the largest tensor's data record of a torch zip checkpoint."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    # local header: 30 bytes + name + extra field, then the (stored, uncompressed) data
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))


def test_flipped_byte_without_sidecar_is_refused_in_one_line(tmp_path):
    ck = tmp_path / "m.pt"
    _ckpt(ck, 4)
    Path(str(ck) + ".sha256").unlink()
    load_checkpoint(ck)  # intact: loads (with the no-sidecar warning)
    _flip_tensor_byte(ck)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(ck)
    msg = str(e.value)
    assert "\n" not in msg and str(ck) in msg and ("damaged" in msg or "not a loadable checkpoint" in msg), msg
    p = subprocess.run(
        [sys.executable, "-c", f"from advmri.models.networks import load_checkpoint; load_checkpoint({str(ck)!r})"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode != 0


def test_verify_all_and_coverage_of_every_row_type(done, capsys):
    cfg, tmp, ck = done
    folder = next(tmp.glob("ck/noise-*"))
    rep = verify_run(folder, passes=1, log=print)
    # chunk 1: one (box, eps) item per pass; 2 boxes x 3 eps = 6 passes; one per eps value at least
    assert rep["of"] == 6 and len(rep["passes"]) >= 3
    out = capsys.readouterr().out
    assert f"verified {len(rep['passes'])} of 6 passes" in out
    assert len(verify_run(folder, passes="all", log=print)["passes"]) == 6
    p = subprocess.run(
        [sys.executable, "-m", "advmri.experiments.verify", str(folder), "--passes", "all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0 and "verified 1 run(s): 6 of 6 passes (100%)" in p.stdout, p.stdout + p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "advmri.experiments.verify", str(tmp)], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 2 and "not a run folder" in p.stderr


def test_a_tampered_value_in_any_row_type_is_caught_by_the_default(done):
    """The default (1 pass, at least one per row type) recomputes a pass of every eps: a changed value in the
    eps-0.02 rows is caught whichever pass the seed picks first."""
    import pandas as pd

    from advmri.experiments.sweep import read_status, table_digest

    cfg, tmp, ck = done
    folder = next(tmp.glob("ck/noise-*"))
    table, status = folder / "results.csv", folder / "status.json"
    before, st_before = table.read_bytes(), status.read_text()
    try:
        df = pd.read_csv(table)
        df.loc[(df["param"] == 0.02) & (df["kind"] == "random"), "box_mse"] *= 1.05
        df.to_csv(table, index=False)
        s = read_status(folder)
        s["results_sha256"], s["results_rows"] = table_digest(table)
        status.write_text(__import__("json").dumps(s))
        for seed in range(3):
            with pytest.raises(CacheMismatch, match="box_mse"):
                verify_run(folder, passes=1, seed=seed, log=lambda *a: None)
    finally:
        table.write_bytes(before)
        status.write_text(st_before)


def test_pass_choice_covers_every_parameter():
    cover = [[0.0], [0.01], [0.02], [0.0], [0.01], [0.02]]
    for seed in range(5):
        chosen = choose_passes(6, 1, seed, "r", cover=cover)
        assert {p for i in chosen for p in cover[i]} == {0.0, 0.01, 0.02} and len(chosen) == 3
    assert choose_passes(6, "all", 0, "r") == list(range(6))
