import json

import pandas as pd

import pytest
import yaml

from conftest import ROOT
from advmri.experiments.sweep import SweepError, load_sweep, run_sweep


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
    from advmri.models.networks import build, save_checkpoint

    save_checkpoint(tmp_path / "m.pt", build("unet", "tiny"))
    spec = dict(name="full", notebooks={"noise": "notebooks/03_noise_attack.ipynb",
                                        "rotation": "notebooks/04_rotation_attack.ipynb"},
                grid=dict(model=[str(tmp_path / "m.pt")], acceleration=[8], attack=["noise", "rotation"]),
                common=dict(data_dir=str(tiny_data), max_targets=0, chunk=1, random_draws=2),
                per_attack=dict(noise=dict(eps=[0.0, 0.01], steps=2),
                                rotation=dict(max_angle=1.0, angle_step=0.5, bounds=[0.0, 1.0])))
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
        p = subprocess.run([sys.executable, "-m", "advmri.experiments.sweep", "sweeps/smoke.yaml", "--results",
                            str(tmp_path / name)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        tables.append({f.parent.name: f.read_bytes() for f in sorted((tmp_path / name).glob("smoke/*/results.csv"))})
    assert len(tables[0]) == 2 and tables[0] == tables[1]
