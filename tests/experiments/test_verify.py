"""advmri.experiments.verify: the verified cache reproduces a run and catches a changed value (also at the
rotation's recorded angles), the seeded choice of passes and of one run per code path; the rotation table's clean
reference row."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from advmri.experiments.sweep import read_status, run_sweep, table_digest
from advmri.experiments.verify import CacheMismatch, choose_passes, verify_run


@pytest.fixture(scope="module")
def done_sweep(tmp_path_factory, sweep_spec):
    tmp = tmp_path_factory.mktemp("verify")
    cfg = tmp / "v.yaml"
    cfg.write_text(yaml.safe_dump(sweep_spec(tmp)))
    st = run_sweep(cfg, results=tmp, log=lambda *a: None)
    assert all(v["status"] == "ok" for v in st.values()), st
    return cfg, tmp


def test_verified_cache_reproduces_and_catches_a_changed_value(done_sweep):
    cfg, tmp = done_sweep
    logs = []
    st = run_sweep(cfg, results=tmp, log=logs.append, verify=2)
    assert all(v["status"] == "skipped" for v in st.values())
    reps = [v["verified"] for v in st.values()]
    assert all(r["rows"] > 0 and len(r["passes"]) == min(2, r["of"]) for r in reps), reps
    assert sum(line.startswith("  ") and "verified" in line for line in logs) == 2  # one line per run
    assert any(line.startswith("sweep v: verified") and "passes (" in line for line in logs)  # and the coverage
    with pytest.raises(Exception, match="verify"):
        run_sweep(cfg, results=tmp, log=logs.append, verify=-1)
    # a committed value altered *and* its recorded sha256 updated: only recomputation can tell
    folder = next(p.parent for p in (tmp / "v").glob("noise-*/results.csv"))
    table = folder / "results.csv"
    df = pd.read_csv(table)
    original = table.read_bytes()
    try:
        df["box_mse"] = df["box_mse"] * 1.01
        df.to_csv(table, index=False)
        s = read_status(folder)
        s["results_sha256"], s["results_rows"] = table_digest(table)
        (folder / "status.json").write_text(json.dumps(s))
        with pytest.raises(CacheMismatch, match=r"results\.csv: committed result not reproduced.*box_mse"):
            verify_run(folder, passes=1, log=lambda *a: None)
    finally:
        table.write_bytes(original)
        s["results_sha256"], s["results_rows"] = table_digest(table)
        (folder / "status.json").write_text(json.dumps(s))


def test_reports_verified_beforehand_are_reused_only_while_the_table_is_unchanged(done_sweep):
    """The main job verifies its chosen runs in one pool, then each sweep reuses those reports, but only for a run
    whose table still has the verified sha256: one altered since (digest updated) is recomputed, and caught."""
    from advmri.experiments.verify import verify_many

    cfg, tmp = done_sweep
    folders = sorted(p.parent for p in (tmp / "v").glob("*/results.csv"))
    reports = {
        str(f.resolve()): rep for f, rep in zip(folders, _by_folder(verify_many(folders, 1), folders), strict=True)
    }
    assert all(
        rep["table_sha256"] == table_digest(f / "results.csv")[0]
        for f, rep in zip(folders, reports.values(), strict=True)
    )
    logs: list[str] = []
    st = run_sweep(cfg, results=tmp, log=logs.append, verify=1, verify_plan=folders, verified=reports)
    assert all(v["verified"] == reports[str(f.resolve())] for v, f in zip(_in_order(st, folders), folders, strict=True))
    assert not any(line.startswith("  [") for line in logs)  # nothing recomputed
    assert any(f"({len(folders)} of them verified above" in line for line in logs)
    folder = next(f for f in folders if f.name.startswith("noise-"))
    table, status = folder / "results.csv", folder / "status.json"
    original, original_status = table.read_bytes(), status.read_bytes()
    try:
        df = pd.read_csv(table)
        df["box_mse"] = df["box_mse"] * 1.01
        df.to_csv(table, index=False)
        s = read_status(folder)
        s["results_sha256"], s["results_rows"] = table_digest(table)
        status.write_text(json.dumps(s))
        with pytest.raises(CacheMismatch, match="box_mse"):
            run_sweep(cfg, results=tmp, log=lambda *a: None, verify=1, verify_plan=folders, verified=reports)
    finally:
        table.write_bytes(original)
        status.write_bytes(original_status)


def _by_folder(reports: dict[str, dict], folders) -> list[dict]:
    return [reports[f.name] for f in folders]


def _in_order(statuses: dict[str, dict], folders) -> list[dict]:
    return [statuses[read_status(f)["run_id"]] for f in folders]


def test_the_cover_of_the_committed_runs_exercises_every_feature_with_fewer_runs():
    from advmri.experiments.verify import choose_cover, choose_runs, features, run_of

    folders = sorted(p.parent for p in (ROOT / "results").glob("*/*/params.json") if p.parent.parent.name != "cards")
    folders = [f for f in folders if (f / "status.json").is_file()]
    cover = choose_cover(folders)
    every = set().union(*(features(run_of(f), f.parent.name) for f in folders))
    assert set().union(*(features(run_of(f), f.parent.name) for f in cover)) == every
    assert {f.parent.name for f in cover} == {f.parent.name for f in folders}  # a run of every sweep
    assert len(cover) < len(choose_runs(folders))


def test_pass_choice_is_seeded_and_distinct():
    a = choose_passes(50, 3, 0, "run-a")
    assert a == choose_passes(50, 3, 0, "run-a") and len(set(a)) == 3
    assert a != choose_passes(50, 3, 0, "run-b") or a != choose_passes(50, 3, 1, "run-a")
    assert choose_passes(2, 5, 0, "x") == [0, 1]


def test_rotation_table_has_the_clean_reference_row(done_sweep):
    _, tmp = done_sweep
    df = pd.read_csv(next((tmp / "v").glob("rotation-*/results.csv")))
    clean = df[df.kind == "clean"]
    boxes = df.drop_duplicates(["file", "slice", "bx", "by", "bw", "bh"])
    assert len(clean) == len(boxes) and (clean.param == 0).all() and clean.angle.isna().all()
    # reference interpolation: rotating by 0 deg stays within a few % of the clean reconstruction
    zero = df[(df.kind == "adversarial") & (df.param == 0)].merge(
        clean, on=["file", "slice", "bx", "by"], suffixes=("", "_c")
    )
    assert np.all(np.abs(zero.box_mse / zero.box_mse_c - 1) < 0.25)
    assert "params" not in df.columns  # parameters are stored once per run, not per row


def test_rotation_rows_are_verified_at_their_recorded_angles(done_sweep):
    """Verification recomputes the passes holding each bound's recorded worst angle (in the run's batches, so
    bit for bit) and catches a changed value there; ``passes='all'`` repeats the whole search."""
    from advmri.experiments.run import execute, read_table
    from advmri.experiments.verify import run_of

    _, tmp = done_sweep
    folder = next(p.parent for p in (tmp / "v").glob("rotation-*/results.csv"))
    run, table = run_of(folder), read_table(folder / "results.csv")
    fast, _ = execute(run, progress=False, subset=[0], recorded=table)
    full, _ = execute(run, progress=False, subset=[0])
    key = ["kind", "param", "draw"]
    cols = ["angle", "box_mse", "box_ssim", "img_ssim"]
    assert np.array_equal(
        fast.sort_values(key)[cols].to_numpy(float), full.sort_values(key)[cols].to_numpy(float), equal_nan=True
    )  # bit for bit
    original = (folder / "results.csv").read_bytes()
    s = read_status(folder)
    try:
        df = table.copy()
        worst = (df.kind == "adversarial") & (df.param == 1.0)
        df.loc[worst, "box_ssim"] = df.loc[worst, "box_ssim"] - 0.01
        df.to_csv(folder / "results.csv", index=False)
        s["results_sha256"], s["results_rows"] = table_digest(folder / "results.csv")
        (folder / "status.json").write_text(json.dumps(s))
        with pytest.raises(CacheMismatch, match="box_ssim"):
            verify_run(folder, passes="all", log=lambda *a: None)
        with pytest.raises(CacheMismatch, match="box_ssim"):
            verify_run(folder, passes=1, log=lambda *a: None)
    finally:
        (folder / "results.csv").write_bytes(original)
        s["results_sha256"], s["results_rows"] = table_digest(folder / "results.csv")
        (folder / "status.json").write_text(json.dumps(s))


def test_one_run_per_code_path_is_verified(tmp_path, tiny_data):
    """Runs that differ only in numbers share a code path; one of them (seeded) is recomputed."""
    from advmri.attacks.noise import NoiseConfig
    from advmri.experiments.run import AttackRun
    from advmri.experiments.verify import choose_runs, code_path

    a = AttackRun(model="m.pt", data=str(tiny_data), noise=NoiseConfig(eps=(0.0, 0.01), steps=3))
    b = AttackRun(model="m.pt", data=str(tiny_data), acceleration=4, noise=NoiseConfig(eps=(0.0, 0.02), steps=5))
    c = AttackRun(model="m.pt", data=str(tiny_data), noise=NoiseConfig(update="reference"))
    assert code_path(a) == code_path(b) != code_path(c)
    folders = []
    for i, r in enumerate((a, b, c)):
        f = tmp_path / f"run{i}"
        f.mkdir()
        p = dict(
            r.as_dict()["noise"],
            model=r.model,
            data_dir=r.data,
            acceleration=r.acceleration,
            notebook="notebooks/03_noise_attack.ipynb",
        )
        (f / "params.json").write_text(json.dumps(p))
        folders.append(f)
    chosen = choose_runs(folders, seed=0)
    assert len(chosen) == 2 and folders[2] in chosen
    assert chosen == choose_runs(folders, seed=0)  # seeded
    assert {tuple(choose_runs(folders, seed=s)) for s in range(8)} >= {
        (folders[0], folders[2]),
        (folders[1], folders[2]),
    }


def test_the_cover_recomputes_the_cheapest_runs_that_exercise_every_feature(tmp_path, tiny_data):
    """Every feature value (model on data, update rule, target, option, sweep) is in a chosen run, and among runs
    with the same features the cheapest (recorded seconds per box) is chosen; one per code path needs more."""
    from advmri.attacks.noise import NoiseConfig
    from advmri.experiments.record import CONTROL_COLUMNS, RESULT_COLUMNS
    from advmri.experiments.run import AttackRun
    from advmri.experiments.verify import choose_cover, choose_runs, features

    columns = list(RESULT_COLUMNS) + list(CONTROL_COLUMNS)

    d = str(tiny_data)
    runs = {  # name: (run, recorded seconds); 2 boxes each
        "u-ours": (AttackRun(model="u.pt", data=d, noise=NoiseConfig()), 100.0),
        "u-ours-cheap": (AttackRun(model="u.pt", data=d, noise=NoiseConfig(steps=2)), 10.0),
        "v-ours": (AttackRun(model="v.pt", data=d, noise=NoiseConfig()), 50.0),
        "u-ref": (AttackRun(model="u.pt", data=d, noise=NoiseConfig(update="reference")), 20.0),
        "v-ref": (AttackRun(model="v.pt", data=d, noise=NoiseConfig(update="reference")), 500.0),
        "v-healthy": (AttackRun(model="v.pt", data=d, noise=NoiseConfig(target="healthy")), 900.0),
        "u-healthy": (AttackRun(model="u.pt", data=d, noise=NoiseConfig(target="healthy")), 30.0),
    }
    folders = []
    for name, (r, seconds) in runs.items():
        f = tmp_path / "sweep" / name
        f.mkdir(parents=True)
        p = dict(r.as_dict()["noise"], model=r.model, data_dir=r.data, notebook="notebooks/03_noise_attack.ipynb")
        (f / "params.json").write_text(json.dumps(p))
        (f / "status.json").write_text(json.dumps(dict(status="ok", seconds=seconds)))
        table = pd.DataFrame({c: [0, 0] for c in columns}).assign(file="a.h5", bx=[1, 2], attack="noise")
        table.to_csv(f / "results.csv", index=False)  # two boxes
        folders.append(f)
    chosen = choose_cover(folders, seed=0)
    names = [f.name for f in chosen]
    assert set().union(*(features(run_of_(f), "sweep") for f in chosen)) == set().union(
        *(features(run_of_(f), "sweep") for f in folders)
    )
    assert "u-ours-cheap" in names and "u-ours" not in names  # the same features, 10x cheaper
    assert "v-ref" not in names and "v-healthy" not in names  # their features come cheaper from u-ref, u-healthy
    assert names == ["u-ours-cheap", "v-ours", "u-ref", "u-healthy"], names
    assert chosen == choose_cover(folders, seed=0)
    assert len(choose_runs(folders, seed=0)) == 6 > len(chosen)  # every combination: one run per code path


def run_of_(folder):
    from advmri.experiments.verify import run_of

    return run_of(folder)


def test_bf16_runs_are_deferred_only_on_a_cpu_without_bf16_units():
    from advmri.experiments.verify import bf16_units, defer_emulated

    assert bf16_units("processor: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n")
    assert bf16_units("flags : fpu avx512_bf16\n")
    assert not bf16_units("processor: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    paper = sorted(p.parent for p in (ROOT / "results" / "paper").glob("*/params.json"))
    keep, deferred = defer_emulated(paper, native=False)
    assert deferred and all("varnet" in f.name for f in deferred)  # the paper's VarNet runs are bf16, the U-Net's fp32
    assert sorted(keep + deferred) == paper
    assert defer_emulated(paper, native=True) == (paper, [])
