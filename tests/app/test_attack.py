"""Bad inputs and faults, by kind (issue: no silent wrong result, no lost data).

Each probe drives the CLI or library as a user would and checks: a single ``error: <name>: ...`` line
and exit status 2 for a bad input, untouched files for a refused write, and counts for every
annotation row that is dropped or merged. Each test fails on the code before the fix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, SHARED
from advmri.data.annotations import read_annotations, box_rows
from advmri.data.dataset import AnnotatedSlices
from advmri.data.fastmri_h5 import DataFileError, read_info
from advmri.models.networks import CheckpointError, build, load_checkpoint, load_official, save_checkpoint, sha256_file


def digest(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def cli(capsys, main, argv) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


def one_error_line(err: str, *needles: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, err)


@pytest.fixture()
def tiny(tiny_data, tmp_path):
    """A private copy of the tiny set and an untrained tiny VarNet checkpoint."""
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    ck = tmp_path / "m.pt"
    save_checkpoint(ck, build("varnet", "tiny"))
    return d, ck


# ---------------------------------------------------------------------------------------------
# data loss
def test_train_never_overwrites_a_checkpoint(tiny, capsys):
    from advmri.models.train import main

    d, ck = tiny
    before, side = digest(ck), Path(str(ck) + ".sha256").read_text()
    rc, err = cli(capsys, main, ["--model", "varnet", "--config", "tiny", "--data", str(d), "--out", str(ck),
                                 "--steps", "1"])
    assert rc == 2
    one_error_line(err, str(ck), "--force")
    assert digest(ck) == before and Path(str(ck) + ".sha256").read_text() == side
    rc, err = cli(capsys, main, ["--model", "varnet", "--config", "tiny", "--data", str(d), "--out", str(ck),
                                 "--steps", "1", "--resume"])
    assert rc == 2
    one_error_line(err, "resume.pt", "nothing to resume")
    assert digest(ck) == before


def test_interrupted_training_leaves_no_model_at_the_final_path(tiny_data, tmp_path):
    from advmri.models.train import train

    out = tmp_path / "u.pt"
    kw = dict(val_interval=100, save_every=2, progress=False, val_every_nth=3)
    train("unet", "tiny", tiny_data, out, steps=6, batch=2, stop_at=3, **kw)
    assert not out.exists() and not Path(str(out) + ".sha256").exists()
    assert Path(str(out) + ".resume.pt").is_file()
    train("unet", "tiny", tiny_data, out, steps=6, batch=2, resume=True, **kw)
    assert out.is_file() and load_checkpoint(out)[1]["step"] == 6


def test_attack_out_onto_an_input_or_existing_file_is_refused(tiny, capsys):
    from advmri.app.attack import main

    d, ck = tiny
    csv = d / "knee.csv"
    before = digest(csv)
    base = ["--model", str(ck), "--data", str(d), "--max-targets", "1", "--eps", "0.01", "--steps", "1"]
    rc, err = cli(capsys, main, base + ["--out", str(csv)])
    assert rc == 2 and digest(csv) == before
    one_error_line(err, "out:", "input")
    existing = d.parent / "r.csv"
    existing.write_text("keep me")
    rc, err = cli(capsys, main, base + ["--out", str(existing)])
    assert rc == 2 and existing.read_text() == "keep me"
    one_error_line(err, "--force")


def test_concurrent_writers_of_one_table_never_mix(tmp_path):
    from advmri.experiments.run import RESULT_COLUMNS, read_table, write_table

    out = tmp_path / "t.csv"
    frames = [pd.DataFrame([{c: (i if c != "file" else "x" * 2000) for c in RESULT_COLUMNS}] * 400)
              for i in range(2)]
    errors = []

    def writer(df):
        try:
            for _ in range(5):
                write_table(df, out)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=writer, args=(f,)) for f in frames]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    got = read_table(out)
    assert len(got) == 400 and got["file"].nunique() == 1  # one writer's table, whole
    assert not list(tmp_path.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------
# parameters: one line naming the parameter, exit 2, before any work
@pytest.mark.parametrize("extra,needle", [
    (["--eps", "-0.01"], "eps"), (["--eps", "nan"], "eps"), (["--eps", "inf"], "eps"),
    (["--steps", "0"], "steps"), (["--steps", "-3"], "steps"), (["--step-size", "0"], "step_size"),
    (["--step-size", "-0.5"], "step_size"), (["--restarts", "-1"], "restarts"),
    (["--random-draws", "-1"], "random_draws"), (["--acceleration", "3"], "acceleration"),
    (["--attack", "rotation", "--max-angle", "2"], "bounds"), (["--attack", "rotation", "--angle-step", "0"], "angle_step"),
    (["--max-targets", "-1"], "max_targets"), (["--chunk", "0"], "chunk"),
])
def test_attack_parameters_are_checked(tiny, capsys, tmp_path, extra, needle):
    from advmri.app.attack import main

    d, ck = tiny
    out = tmp_path / "o.csv"
    rc, err = cli(capsys, main, ["--model", str(ck), "--data", str(d), "--out", str(out)] + extra)
    assert rc == 2 and not out.exists()
    one_error_line(err, needle)


@pytest.mark.parametrize("model,out,needle", [
    ("official:vit", "o.csv", "vit"), (None, "o.xlsx", ".xlsx"), ("missing.pt", "o.csv", "missing.pt"),
])
def test_attack_model_and_output_specs(tiny, capsys, tmp_path, model, out, needle):
    from advmri.app.attack import main

    d, ck = tiny
    rc, err = cli(capsys, main, ["--model", model or str(ck), "--data", str(d), "--out", str(tmp_path / out)])
    assert rc == 2 and not (tmp_path / out).exists()
    one_error_line(err, needle)


def test_unwritable_out_fails_before_the_attack(tiny, capsys, tmp_path):
    from advmri.app.attack import main

    d, ck = tiny
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, err = cli(capsys, main, ["--model", str(ck), "--data", str(d), "--out", str(blocker / "sub" / "o.csv")])
    assert rc == 2
    one_error_line(err, "not writable")


def test_debug_flag_shows_the_traceback(tiny, tmp_path):
    from advmri.app.attack import main
    from advmri.util.errors import ParameterError

    d, ck = tiny
    with pytest.raises(ParameterError, match="steps"):
        main(["--model", str(ck), "--data", str(d), "--out", str(tmp_path / "o.csv"), "--steps", "0", "--debug"])


# ---------------------------------------------------------------------------------------------
# sweep configs
def _sweep(tmp_path, mutate, data=None) -> Path:
    spec = yaml.safe_load((ROOT / "sweeps/paper.yaml").read_text())
    spec["name"] = "probe"
    if data is not None:  # the embedded test set need not exist (the fast tier never generates it)
        spec["common"]["data_dir"] = str(data)
    mutate(spec)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


@pytest.mark.parametrize("mutate,needle", [
    (lambda s: s["common"].update(max_target=3), "'max_targets'"),
    (lambda s: s.update({"per-attack": s.pop("per_attack")}), "'per_attack'"),
    (lambda s: s["grid"].update(accel=s["grid"].pop("acceleration")), "'acceleration'"),
    (lambda s: s["per_attack"]["noise"].update(eps=[-0.1]), "eps"),
    (lambda s: s["per_attack"]["rotation"].update(max_angle=1.0), "bounds"),
    (lambda s: s["notebooks"].update(noise="/tmp/elsewhere.ipynb"), "outside the project"),
])
def test_sweep_config_mistakes_are_named(tmp_path, tiny_data, mutate, needle):
    from advmri.experiments.sweep import SweepError, load_sweep

    with pytest.raises(SweepError, match="s.yaml") as e:
        load_sweep(_sweep(tmp_path, mutate, tiny_data), tmp_path)
    assert needle in str(e.value)


def test_changed_or_truncated_results_are_not_reused(tmp_path):
    from advmri.report.analysis import collect
    from advmri.experiments.sweep import SweepError, is_done, load_sweep, run_sweep

    cfg = ROOT / "sweeps/smoke.yaml"
    st = run_sweep(cfg, results=tmp_path, log=lambda *a: None)
    assert all(v["status"] == "ok" for v in st.values())
    _, runs = load_sweep(cfg, tmp_path)
    r = runs[0]
    table = r.folder / "results.csv"
    data = table.read_bytes()
    table.write_bytes(data[: len(data) // 2])
    assert not is_done(r)
    with pytest.raises(SweepError, match="changed since the run"):
        collect(tmp_path / "smoke")
    (runs[1].folder / "status.json").write_text('{"status": "o')  # truncated
    assert not is_done(runs[1])
    st2 = run_sweep(cfg, results=tmp_path, log=lambda *a: None)
    assert {v["status"] for v in st2.values()} == {"ok"}  # both recomputed, none crashed the sweep
    assert is_done(r) and is_done(runs[1])


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path):
    from advmri.experiments.sweep import SweepError, lock_for, run_sweep

    lock = lock_for(tmp_path / "smoke")
    with lock:
        with pytest.raises(SweepError, match="another sweep is running"):
            run_sweep(ROOT / "sweeps/smoke.yaml", results=tmp_path, log=lambda *a: None)
    assert not list((tmp_path / "smoke").glob("*/status.json"))  # nothing was run


# ---------------------------------------------------------------------------------------------
# data and annotations: every dropped or merged row counted
def test_annotation_rows_are_accounted_for(tiny):
    d, _ = tiny
    csv = d / "knee.csv"
    df = pd.read_csv(csv)
    f = df.loc[~df.study_level.eq("Yes"), "file"].iloc[0]
    extra = pd.DataFrame([
        df[~df.study_level.eq("Yes")].iloc[0].to_dict(),  # exact duplicate
        dict(file=f, slice=0, study_level="No", x=5, y=5, width=0, height=4, label="Meniscus Tear"),  # empty
        dict(file=f, slice=0, study_level="No", x=5, y=5, width=-3, height=4, label="Meniscus Tear"),  # negative
        dict(file=f, slice=0, study_level="No", x=500, y=5, width=4, height=4, label="Meniscus Tear"),  # outside
        dict(file=f, slice=99, study_level="No", x=5, y=5, width=4, height=4, label="Meniscus Tear"),  # slice
        dict(file="file_not_here", slice=0, study_level="No", x=5, y=5, width=4, height=4, label="x"),
    ])
    pd.concat([df, extra]).to_csv(csv, index=False)
    ds = AnnotatedSlices(d)
    r = ds.report
    assert (r["duplicate"], r["empty_box"], r["outside_image"], r["slice_out_of_range"], r["file_not_in_folder"]) \
        == (1, 2, 1, 1, 1)
    assert r["located"] == len(ds) == r["rows"] - sum(r[k] for k in (
        "study_level", "duplicate", "empty_box", "outside_image", "slice_out_of_range", "file_not_in_folder"))
    text = ds.describe()
    assert "exact duplicates" in text and "zero/negative size" in text and "outside the image" in text


@pytest.mark.parametrize("case,needle", [
    ("no_csv", "no annotation file"), ("other_files", "none of the annotated files is in the data folder"),
    ("label", "no box has the selected label"),
])
def test_no_boxes_error_says_why(tiny, capsys, tmp_path, case, needle):
    from advmri.app.attack import main

    d, ck = tiny
    args = ["--model", str(ck), "--data", str(d), "--out", str(tmp_path / "o.csv")]
    if case == "no_csv":
        (d / "knee.csv").unlink()
    elif case == "other_files":
        df = pd.read_csv(d / "knee.csv")
        df["file"] = "file1000000"
        df.to_csv(d / "knee.csv", index=False)
    else:
        args += ["--labels", "Nothing"]
    rc, err = cli(capsys, main, args)
    assert rc == 2
    one_error_line(err, needle)


def test_zero_slice_volume_and_nan_target_and_missing_max(tiny):
    d, _ = tiny
    f = sorted((d / "multicoil").glob("*.h5"))[0]
    with h5py.File(f, "a") as hf:
        t = hf["reconstruction_rss"][()]
        t[0, 3, 3] = np.nan
        hf["reconstruction_rss"][...] = t
    ds = AnnotatedSlices(d, with_unannotated=True, files=[f.stem])
    first = [i for i, it in enumerate(ds.items) if it[1] == 0][0]
    with pytest.raises(DataFileError, match=rf"{f.name}.*reconstruction_rss' slice 0 contains NaN"):
        ds[first]
    with h5py.File(f, "a") as hf:
        del hf.attrs["max"]
    with pytest.raises(DataFileError, match=rf"{f.name}: missing attribute 'max'"):
        read_info(f)
    with h5py.File(f, "a") as hf:
        k = hf["kspace"][()]
        del hf["kspace"], hf["reconstruction_rss"]
        hf["kspace"] = k[:0]
    with pytest.raises(DataFileError, match=rf"{f.name}: 'kspace' has no slices"):
        read_info(f)


def test_synth_refuses_a_non_empty_folder_and_zero_slices(tiny, capsys, tmp_path):
    from advmri.data.synth import main

    d, _ = tiny
    n_before = len(list((d / "multicoil").glob("*.h5")))
    rc, err = cli(capsys, main, ["--preset", "tiny", "--volumes", "1", "--out", str(d)])
    assert rc == 2 and len(list((d / "multicoil").glob("*.h5"))) == n_before
    one_error_line(err, "--force")
    rc, _ = cli(capsys, main, ["--preset", "tiny", "--volumes", "1", "--out", str(d), "--force"])
    assert rc == 0 and len(list((d / "multicoil").glob("*.h5"))) == 1  # no old volume beside the new CSV
    assert set(pd.read_csv(d / "knee.csv").file) <= {p.stem for p in (d / "multicoil").glob("*.h5")}
    empty = tmp_path / "z"
    rc, err = cli(capsys, main, ["--preset", "tiny", "--volumes", "1", "--slices", "0", "--out", str(empty)])
    assert rc == 2 and not list(empty.rglob("*.tmp")) and not list(empty.rglob("*.h5"))
    one_error_line(err, "slices")


def test_mixed_geometries_are_attacked_per_group(tiny_data, tmp_path):
    """Real fastMRI volumes differ in coils / columns: the run batches per geometry instead of failing."""
    from advmri.data.synth import PRESETS, generate_dataset
    from dataclasses import replace
    from advmri.experiments.run import AttackRun, execute

    d = tmp_path / "mixed"
    generate_dataset("tiny", 1, seed=3, out=d / "a", progress=False)
    generate_dataset(replace(PRESETS["tiny"], coils=3), 1, seed=4, out=d / "b", progress=False, first_index=1)
    (d / "multicoil").mkdir()
    for sub in ("a", "b"):
        for p in (d / sub / "multicoil").glob("*.h5"):
            p.rename(d / "multicoil" / p.name)
    pd.concat([pd.read_csv(d / sub / "knee.csv") for sub in ("a", "b")]).to_csv(d / "knee.csv", index=False)
    ck = tmp_path / "m.pt"
    save_checkpoint(ck, build("varnet", "tiny"))
    run = AttackRun.from_params("noise", model=str(ck), data_dir=str(d), max_targets=0, eps=[0.0, 0.01], steps=1,
                                random_draws=1)
    df, ex = execute(run, progress=False)
    assert df["file"].nunique() == 2 and len(df) == len(ex["targets"]) * 2 * 2
    assert df.box_ssim.notna().all()


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
    run = AttackRun.from_params("noise", model=str(ck), data_dir=str(d), max_targets=1, eps=[0.01], steps=1,
                                random_draws=0)
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


@pytest.mark.skipif(not (SHARED / "fastmri_plus" / "knee.csv").is_file(), reason="needs ../shared/fastmri_plus")
def test_real_fastmri_plus_quirks_are_counted():
    rep = {}
    ann = read_annotations(SHARED / "fastmri_plus" / "knee.csv")
    boxes = box_rows(ann, report=rep)
    assert rep["duplicate"] == 5 and rep["empty_box"] == 1
    assert len(boxes) + sum(rep[k] for k in ("study_level", "duplicate", "empty_box", "outside_image")) == len(ann)
