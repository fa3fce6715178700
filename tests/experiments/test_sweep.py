"""advmri.experiments.sweep: failures recorded and redone alone, sharded = unsharded, byte-identical smoke
sweeps, several grids and exclusions, config mistakes named, changed results and other weights recomputed, one
sweep per folder, and the dirty-tree guard of committed results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, untrained

from advmri.experiments.sweep import SweepError, load_sweep, run_sweep
from advmri.util import provenance
from advmri.util.errors import UserError


def test_sweep_failure_is_recorded_and_only_it_is_redone(tmp_path):
    spec = yaml.safe_load((ROOT / "sweeps/smoke.yaml").read_text())
    spec["name"] = "t"
    spec["per_attack"] = {"noise": {"chunk": -1}}  # makes the noise run fail (chunk must be > 0)
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    name, runs = load_sweep(cfg, tmp_path)
    assert name == "t" and len(runs) == 2 and len({r.id for r in runs}) == 2
    st = run_sweep(cfg, jobs=2, results=tmp_path, log=lambda *a: None)
    failed = [k for k, v in st.items() if v["status"] == "failed"]
    ok = [k for k, v in st.items() if v["status"] == "ok"]
    assert len(failed) == 1 and len(ok) == 1 and failed[0].startswith("noise")
    status = json.loads((tmp_path / "t" / failed[0] / "status.json").read_text())
    assert status["status"] == "failed" and "must be >= 1, got -1" in status["error"]
    assert (tmp_path / "t" / ok[0] / "results.csv").is_file()
    ok_mtime = (tmp_path / "t" / ok[0] / "status.json").stat().st_mtime_ns
    fail_mtime = (tmp_path / "t" / failed[0] / "status.json").stat().st_mtime_ns
    st2 = run_sweep(cfg, results=tmp_path, log=lambda *a: None)
    assert st2[ok[0]]["status"] == "skipped"
    assert st2[failed[0]]["status"] == "failed"  # re-executed (and fails again: the cause is still there)
    assert (tmp_path / "t" / ok[0] / "status.json").stat().st_mtime_ns == ok_mtime
    assert (tmp_path / "t" / failed[0] / "status.json").stat().st_mtime_ns > fail_mtime


def test_bad_sweep_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ngrid: {model: [a]}\n")
    with pytest.raises(SweepError, match="bad.yaml"):
        load_sweep(p)


def test_sharded_sweep_equals_unsharded(tmp_path, tiny_data):
    """Shards split the boxes into contiguous parts, one run each; concatenated they give the unsharded
    result (one item per pass, so no float32 batch-composition effect; random draws are seeded per item)."""
    from advmri.report.analysis import collect

    untrained(tmp_path / "m.pt")
    spec = dict(
        name="full",
        notebooks={"noise": "notebooks/03_noise_attack.ipynb", "rotation": "notebooks/04_rotation_attack.ipynb"},
        grid=dict(model=[str(tmp_path / "m.pt")], acceleration=[8], attack=["noise", "rotation"]),
        common=dict(data_dir=str(tiny_data), max_targets=0, chunk=1, random_draws=2),
        per_attack=dict(
            noise=dict(eps=[0.0, 0.01], steps=2), rotation=dict(max_angle=1.0, angle_step=0.5, bounds=[0.0, 1.0])
        ),
    )
    tables = {}
    for name, shards in (("full", 1), ("sharded", 3)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(dict(spec, name=name, shards=shards)))
        _, runs = load_sweep(cfg, tmp_path)
        assert len(runs) == 2 * shards
        st = run_sweep(cfg, jobs=2, results=tmp_path, log=lambda *a: None)
        assert all(v["status"] == "ok" for v in st.values()), st
        df, _ = collect(tmp_path / name)
        tables[name] = df
    key = ["attack", "file", "slice", "bx", "by", "bw", "bh", "param", "kind", "draw"]
    cols = key + ["angle", "box_mse", "box_ssim", "img_ssim"]
    a, b = (tables[k][cols].sort_values(key).reset_index(drop=True) for k in ("full", "sharded"))
    assert tables["sharded"].sweep_run.nunique() == 6 and len(a) == len(b) > 0
    pd.testing.assert_frame_equal(a, b)


def test_two_smoke_sweeps_give_byte_identical_tables(tmp_path):
    """The smoke mode is seeded (data, model initialisation) and its set-up path is fixed: same run ids,
    same tables, from two results folders."""
    import subprocess
    import sys

    tables = []
    for name in ("a", "b"):
        p = subprocess.run(
            [sys.executable, "-m", "advmri.experiments.sweep", "sweeps/smoke.yaml", "--results", str(tmp_path / name)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr[-2000:]
        tables.append({f.parent.name: f.read_bytes() for f in sorted((tmp_path / name).glob("smoke/*/results.csv"))})
    assert len(tables[0]) == 2 and tables[0] == tables[1]


def test_sweep_of_several_grids(tmp_path, tiny_data):
    spec = dict(
        name="multi",
        notebooks={"noise": "notebooks/03_noise_attack.ipynb", "rotation": "notebooks/04_rotation_attack.ipynb"},
        grid=[
            {"model": ["classical:cg-sense", "classical:l1-wavelet"], "attack": "noise", "restarts": [0, 1]},
            {"model": "classical:cg-sense", "attack": "rotation", "max_targets": 2},
            {"model": "classical:cg-sense", "attack": "noise", "eps": [[0.0, 0.03]]},
        ],
        common=dict(data_dir=str(tiny_data), max_targets=1),
        per_attack={"noise": {"eps": [0.0, 0.01]}},
    )
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(spec))
    _, runs = load_sweep(path, tmp_path)
    assert len(runs) == 4 + 1 + 1 and len({r.id for r in runs}) == 6
    assert {r.id.rsplit("-", 2)[0] for r in runs} == {"noise-cg-sense", "noise-l1-wavelet", "rotation-cg-sense"}
    assert [r.params["eps"] for r in runs if r.params.get("restarts") is None and "noise" in r.id] == [[0.0, 0.03]]
    assert next(r for r in runs if "rotation" in r.id).params["max_targets"] == 2  # the grid's own value wins
    spec["grid"] = [{"model": "classical:cg-sense", "attack": "noise"}, {"model": "classical:cg-sense"}]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SweepError, match="every grid"):
        load_sweep(path, tmp_path)
    spec["grid"] = [{"model": "classical:cg-sense", "attack": "noise", "restart": [1]}]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SweepError, match="restarts"):
        load_sweep(path, tmp_path)


def test_a_sweep_into_the_committed_results_refuses_a_dirty_tree(monkeypatch, tmp_path, tiny_data):
    import yaml

    from advmri.experiments import sweep

    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab+dirty")
    cfg = tmp_path / "dirty-guard.yaml"
    cfg.write_text(
        yaml.safe_dump(
            dict(
                name="test-dirty-guard",
                notebooks={"noise": "notebooks/03_noise_attack.ipynb"},
                grid=dict(model=["classical:cg-sense"], attack=["noise"]),
                common=dict(data_dir=str(tiny_data), max_targets=1, eps=[0.0], random_draws=0, steps=1),
            )
        )
    )
    try:
        with pytest.raises(UserError, match="uncommitted changes"):
            sweep.run_sweep(cfg, results=ROOT / "results", log=lambda *a: None)
        assert not list((ROOT / "results" / "test-dirty-guard").glob("*/status.json"))  # nothing recorded
    finally:
        shutil.rmtree(ROOT / "results" / "test-dirty-guard", ignore_errors=True)


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


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda s: s["common"].update(max_target=3), "'max_targets'"),
        (lambda s: s.update({"per-attack": s.pop("per_attack")}), "'per_attack'"),
        (lambda s: s["grid"].update(accel=s["grid"].pop("acceleration")), "'acceleration'"),
        (lambda s: s["per_attack"]["noise"].update(eps=[-0.1]), "eps"),
        (lambda s: s["per_attack"]["rotation"].update(max_angle=1.0), "bounds"),
        (lambda s: s["notebooks"].update(noise="/tmp/elsewhere.ipynb"), "outside the project"),
    ],
)
def test_sweep_config_mistakes_are_named(tmp_path, tiny_data, mutate, needle):
    from advmri.experiments.sweep import SweepError, load_sweep

    with pytest.raises(SweepError, match="s.yaml") as e:
        load_sweep(_sweep(tmp_path, mutate, tiny_data), tmp_path)
    assert needle in str(e.value)


def test_changed_or_truncated_results_are_not_reused(tmp_path):
    from advmri.experiments.sweep import SweepError, is_done, load_sweep, run_sweep
    from advmri.report.analysis import collect

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


def test_sweep_exclude(tmp_path, sweep_spec):
    spec = sweep_spec(tmp_path)
    spec["grid"]["acceleration"] = [4, 8]
    spec["exclude"] = [{"attack": "rotation", "acceleration": 4}]
    cfg = tmp_path / "e.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    _, runs = load_sweep(cfg, tmp_path)
    assert sorted(r.id.rsplit("-", 1)[0] for r in runs) == ["noise-m-4x", "noise-m-8x", "rotation-m-8x"]
    assert all(not r.params["out"].startswith("/") or "tmp" in r.params["out"] for r in runs)
    spec["exclude"] = [{"accelration": 4}]
    cfg.write_text(yaml.safe_dump(spec))
    with pytest.raises(SweepError, match="accelration.*acceleration"):
        load_sweep(cfg, tmp_path)


def test_results_of_other_weights_are_recomputed(tmp_path, sweep_spec):
    cfg = tmp_path / "w.yaml"
    spec = sweep_spec(tmp_path)
    spec["grid"]["attack"] = ["noise"]
    cfg.write_text(yaml.safe_dump(spec))
    assert run_sweep(cfg, results=tmp_path, log=lambda *a: None) and True
    untrained(tmp_path / "m.pt", seed=4)  # retrained: same path, other weights
    logs = []
    st = run_sweep(cfg, results=tmp_path, log=logs.append)
    assert [v["status"] for v in st.values()] == ["ok"]
    assert any("computed with other weights" in line for line in logs)


def test_dask_engine_errors_are_one_line_before_anything_is_announced(tmp_path):
    from advmri.experiments.sweep import SweepError, run_sweep

    said: list[str] = []
    with pytest.raises(SweepError, match="^--engine dask needs --scheduler"):
        run_sweep(ROOT / "sweeps/smoke.yaml", results=tmp_path, log=said.append, engine="dask")
    assert said == []  # not "2 runs ... 2 to run" first
    with pytest.raises(SweepError, match="^--scheduler nonsense: cannot connect to a Dask scheduler there"):
        run_sweep(ROOT / "sweeps/smoke.yaml", results=tmp_path, log=said.append, engine="dask", scheduler="nonsense")
    assert sorted(p.name for p in (tmp_path / "smoke").iterdir()) == []  # no lock debris
