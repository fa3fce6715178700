"""Bad inputs that used to give a bare exception or a papermill excerpt: each is one line naming the file or
parameter and what to do, and it comes before any run starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml
from helpers import ROOT

from advmri.util.errors import ParameterError, UserError


def _one_line(p: subprocess.CompletedProcess) -> str:
    err = [x for x in p.stderr.splitlines() if x.strip()]
    assert p.returncode == 2 and len(err) == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "---->" not in p.stderr
    return err[0]


def test_negative_slice_index_in_annotations(tmp_path):
    from advmri.data.annotations import AnnotationError, read_annotations

    csv = tmp_path / "knee.csv"
    csv.write_text(
        "file,slice,study_level,x,y,width,height,label\nf1,3,No,1,2,3,4,Effusion\nf1,-1,No,1,2,3,4,Effusion\n"
    )
    with pytest.raises(AnnotationError, match=r"knee.csv: row 3 has slice -1; slice indices start at 0"):
        read_annotations(csv)


def test_training_on_mixed_geometries(tmp_path, tiny_data, small_data):
    mixed = tmp_path / "mixed" / "multicoil"
    mixed.mkdir(parents=True)
    for src in (tiny_data, small_data):
        f = sorted((src / "multicoil").glob("*.h5"))[0]
        shutil.copy(f, mixed / f"{src.name}-{f.name}")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "advmri.models.train",
            "--model",
            "unet",
            "--config",
            "tiny",
            "--data",
            str(mixed.parent),
            "--out",
            str(tmp_path / "c.pt"),
            "--steps",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = _one_line(p)
    assert str(mixed.parent) in line and "volumes of different geometry cannot be trained together" in line
    assert "train on a folder of one geometry" in line, line


def _sweep_file(tmp_path: Path, data: Path, **common) -> Path:
    import torch

    from advmri.models.networks import build, save_checkpoint

    ck = tmp_path / "m.pt"
    torch.manual_seed(0)
    save_checkpoint(ck, build("unet", "tiny"))
    spec = dict(
        name="bad",
        notebooks={"noise": "notebooks/03_noise_attack.ipynb"},
        grid=dict(model=[str(ck)], acceleration=[8], attack=["noise"]),
        common=dict(data_dir=str(data), max_targets=2, random_draws=1, eps=[0.01], steps=1, **common),
    )
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    return cfg


def test_empty_shards_are_refused_before_any_run(tmp_path, tiny_data):
    cfg = _sweep_file(tmp_path, tiny_data)
    spec = yaml.safe_load(cfg.read_text())
    spec["shards"] = 3  # 2 targets in 3 shards
    cfg.write_text(yaml.safe_dump(spec))
    p = subprocess.run(
        [sys.executable, "-m", "advmri.experiments.sweep", str(cfg), "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = _one_line(p)
    assert str(cfg) in line and "3 shards of 2 targets leave shard 2 empty; use at most 2 shards" in line, line
    assert not list(tmp_path.glob("bad/*/params.json"))


def test_twins_the_data_lacks_are_refused_before_any_run(tmp_path, tiny_data):
    data = tmp_path / "real-like"
    shutil.copytree(tiny_data, data)
    for f in (data / "multicoil").glob("*.h5"):
        with h5py.File(f, "a") as hf:
            for k in ("reconstruction_rss_healthy", "kspace_healthy"):
                if k in hf:
                    del hf[k]
    cfg = _sweep_file(tmp_path, data, target="healthy")
    p = subprocess.run(
        [sys.executable, "-m", "advmri.experiments.sweep", str(cfg), "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = _one_line(p)
    assert str(cfg) in line and "target: 'healthy'" in line and "use target: clean" in line, line
    assert not list(tmp_path.glob("bad/*/params.json"))


def test_bf16_on_a_classical_method_is_refused():
    from advmri.experiments.run import AttackRun

    with pytest.raises(ParameterError, match=r"precision: 'bf16' has no effect on classical:cg-sense"):
        AttackRun.from_params("noise", model="classical:cg-sense", data_dir="data", precision="bf16")


def test_explorer_with_one_truncated_store_names_it_and_shows_the_others(tmp_path):
    from advmri.experiments import recons
    from advmri.experiments.smoke import noise_store

    good = noise_store(tmp_path / "a")
    bad = tmp_path / "b.recons.h5"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    logs: list[str] = []
    runs = recons.load_all([good, bad], log=logs.append)
    assert len(runs) == 1 and len(logs) == 1
    assert str(bad) in logs[0] and "damaged or truncated" in logs[0] and "other 1 store" in logs[0]
    with pytest.raises(UserError, match=str(bad)):
        recons.load_all([bad], log=logs.append)


def test_truncated_data_volume_is_named(tmp_path, tiny_data):
    from advmri.data.dataset import AnnotatedSlices
    from advmri.data.fastmri_h5 import DataFileError

    data = tmp_path / "d"
    shutil.copytree(tiny_data, data)
    f = sorted((data / "multicoil").glob("*.h5"))[0]
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DataFileError) as e:
        AnnotatedSlices(data)
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_too_little_space_for_the_pending_runs_is_refused_before_they_start(tmp_path, monkeypatch):
    import advmri.util.atomic as atomic
    from advmri.experiments.sweep import Run, SweepError, check_space

    done, todo = tmp_path / "noise-a-1", tmp_path / "noise-b-2"
    done.mkdir()
    (done / "results.csv").write_bytes(b"x" * 5000)
    runs = [Run("noise-a-1", Path("nb"), {}, done), Run("noise-b-2", Path("nb"), {}, todo)]
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 1000)
    with pytest.raises(SweepError, match=r"1 run\(s\) to do need about 5,000 bytes .* 1,000 bytes free"):
        check_space(tmp_path, runs, runs[1:])
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 10**9)
    check_space(tmp_path, runs, runs[1:])
