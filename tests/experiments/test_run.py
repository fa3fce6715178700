"""advmri.experiments.run: the result table's schema, reused adversarial rows (Reuse) against a full
recomputation, the erasure and hallucination runs on the lesion-free twins, mixed geometries, out-of-memory
back-off, thread pinning and concurrent writers of one table."""

from __future__ import annotations

import threading

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, untrained

from advmri.attacks.noise import NoiseConfig
from advmri.attacks.rotation import RotationConfig
from advmri.data.fastmri_h5 import DataFileError
from advmri.experiments.run import RESULT_COLUMNS, AttackRun, Reuse, execute, read_table, write_table
from advmri.experiments.verify import TOLERANCE, compare
from advmri.util.errors import ParameterError


def test_target_is_left_out_of_the_run_id_at_its_default():
    """Runs computed before ``target`` existed keep their ids (and their committed run folders)."""
    d = AttackRun().as_dict()
    assert "target" not in d["noise"] and AttackRun(attack="rotation").as_dict()["noise"] is None
    erasure = AttackRun.from_params("noise", target="healthy")
    assert erasure.as_dict()["noise"]["target"] == "healthy" and erasure.id != AttackRun().id
    assert AttackRun.from_params("rotation", target="lesion").rotation.target == "lesion"
    with pytest.raises(ParameterError, match="target"):
        AttackRun.from_params("noise", target="heathy")


@pytest.mark.parametrize("attack", ["noise", "rotation"])
def test_erasure_and_hallucination_runs(tiny_data, tmp_path, attack):
    untrained(tmp_path / "m.pt", seed=0)
    out = {}
    for target in ("clean", "healthy", "lesion"):
        run = AttackRun.from_params(
            attack,
            model=str(tmp_path / "m.pt"),
            data_dir=str(tiny_data),
            max_targets=2,
            target=target,
            random_draws=1,
            **(
                dict(eps=[0.0, 0.05], steps=3)
                if attack == "noise"
                else dict(max_angle=2.0, angle_step=1.0, bounds=[0.0, 2.0])
            ),
        )
        out[target], _ = execute(run, progress=False)
    clean, erase, hall = out["clean"], out["healthy"], out["lesion"]
    assert len(clean) == len(erase) == len(hall)
    first = clean[clean.param == 0].iloc[0]
    # the twins are other images: at eps 0 / bound 0 the hallucination run scores the lesion-free slices
    assert not np.isclose(hall[hall.param == 0].box_mse.iloc[0], first.box_mse)
    assert np.allclose(erase[erase.param == 0].box_mse.iloc[0], first.box_mse)  # same slices as the paper's
    assert hall.healthy_closer.notna().all() and erase.healthy_closer.notna().all()


def test_twin_targets_need_twins(tiny_copy, tmp_path):
    real, _ = tiny_copy
    for f in (real / "multicoil").glob("*.h5"):
        with h5py.File(f, "a") as hf:
            del hf["reconstruction_rss_healthy"], hf["kspace_healthy"]
    untrained(tmp_path / "m.pt", seed=0)
    kw = dict(model=str(tmp_path / "m.pt"), data_dir=str(real), max_targets=1, eps=[0.01], steps=1)
    with pytest.raises(ParameterError, match=r"target: 'healthy'.*\.h5 lacks"):
        execute(AttackRun.from_params("noise", target="healthy", **kw), progress=False)
    with pytest.raises(DataFileError, match=r"\.h5: no lesion-free twin"):
        execute(AttackRun.from_params("noise", target="lesion", **kw), progress=False)
    df, _ = execute(AttackRun.from_params("noise", target="clean", **kw), progress=False)  # the paper's loss works
    assert df.healthy_closer.isna().all() and df.box_mse.notna().all()


def test_result_table_schema(tiny_data, tmp_path):
    untrained(tmp_path / "m.pt", seed=0)
    for attack in ("noise", "rotation"):
        run = AttackRun(model=str(tmp_path / "m.pt"), data=str(tiny_data), attack=attack, max_targets=2)
        run.noise = NoiseConfig(eps=(0.0, 0.01), steps=2, random_draws=2)
        run.rotation = RotationConfig(max_angle=1.0, angle_step=0.5, bounds=(0.0, 1.0), random_draws=2)
        df, _ = execute(run, progress=False)
        assert list(df.columns) == RESULT_COLUMNS
        assert set(df.kind) == {"adversarial", "random"} | ({"clean"} if attack == "rotation" else set())
        assert df.run_id.nunique() == 1 and df.code_version.iloc[0]
        assert df[["box_ssim", "box_psnr", "img_ssim"]].notna().all().all()
        assert df.lesion_retained.notna().any()
        n_t = df.drop_duplicates(["file", "slice", "bx", "by"]).shape[0]
        assert len(df[df.kind == "adversarial"]) == n_t * 2
        p = write_table(df, tmp_path / f"{attack}.csv")
        assert list(read_table(p).columns) == RESULT_COLUMNS


TRAINED = ROOT / "models" / "varnet-small.pt"


@pytest.mark.skipif(not TRAINED.is_file(), reason="trained small models not present")
def test_adversarial_beats_random_on_trained_model(small_data):
    run = AttackRun(model=str(TRAINED), data=str(small_data), attack="noise", max_targets=3, chunk=8)
    run.noise = NoiseConfig(eps=(0.01,), steps=4, random_draws=2)
    df, _ = execute(run, progress=False)
    adv = df[df.kind == "adversarial"].box_ssim.mean()
    rnd = df[df.kind == "random"].box_ssim.mean()
    assert adv < rnd - 0.05


def test_tables_carry_both_sampled_fractions(noise_run):
    df, _ = execute(noise_run(), progress=False)
    live = df[df.param > 0]
    assert np.allclose(live.random_sampled_fraction / live.adv_sampled_fraction, 1, atol=1e-3)
    assert df[df.param == 0].adv_sampled_fraction.isna().all()


@pytest.mark.parametrize("update", ["ours", "reference"])
def test_reusing_adversarial_rows_agrees_with_a_full_recomputation(noise_run, update):
    run = noise_run(update=update)
    full, _ = execute(run, progress=False)
    full = full.assign(code_version="0123456789ab")  # as from a clean tree (rows of a +dirty one are never reused)
    reuse = Reuse(full)
    again, _ = execute(run, progress=False, reuse=reuse)
    if update == "ours":  # the noise ends on the budget sphere: only the control is computed
        assert reuse.reused > 0  # (passes with an item inside its ball are recomputed)
    else:  # the reference update ends inside the ball: every pass recomputed, rows identical
        assert reuse.reused == 0 and len(reuse.recomputed_rows) == (full.kind == "adversarial").sum()
    m = compare(again, full)
    assert not m["bad"].any(), m[m["bad"]].head()
    assert len(again) == len(full)
    pd.testing.assert_frame_equal(again[full.columns].iloc[:0], full.iloc[:0])


def test_a_tampered_boundary_row_is_recomputed(noise_run):
    """A row whose noise is not on the sphere cannot be reused (its norms are unknown)."""
    run = noise_run()
    full, _ = execute(run, progress=False)
    t = full.assign(code_version="0123456789ab")
    t.loc[(t.kind == "adversarial") & (t.param > 0), "budget_fraction"] = 0.9
    reuse = Reuse(t)
    execute(run, progress=False, reuse=reuse)
    assert reuse.reused == 0 and reuse.recomputed > 0
    assert TOLERANCE["rtol"] <= 1e-4


def test_attack_run_survives_simulated_oom_with_identical_results(tiny_data, tmp_path, monkeypatch):
    """A GPU that holds only one item per pass: the run backs off to 1 and gives the chunk=1 results."""
    import advmri.experiments.run as R

    ck = untrained(tmp_path / "m.pt")
    kw = dict(model=str(ck), data_dir=str(tiny_data), max_targets=2, eps=[0.0, 0.01, 0.02], steps=2, random_draws=2)
    ref, _ = R.execute(R.AttackRun.from_params("noise", chunk=1, **kw), progress=False)
    real = R.adversarial_noise

    def small_gpu(model, tb, eps, cfg, on_step=None, mask_func=None):
        if len(tb) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, tb, eps, cfg, on_step, mask_func)

    monkeypatch.setattr(R, "adversarial_noise", small_gpu)
    got, _ = R.execute(R.AttackRun.from_params("noise", chunk=4, **kw), progress=False)
    cols = ["file", "slice", "param", "kind", "draw", "box_mse", "box_ssim"]
    a = ref[cols].sort_values(cols[:5]).reset_index(drop=True)
    b = got[cols].sort_values(cols[:5]).reset_index(drop=True)
    assert len(a) == len(b) == 2 * 3 * 3
    pd.testing.assert_frame_equal(a, b)  # nothing lost, nothing counted twice, random draws identical


def test_concurrent_writers_of_one_table_never_mix(tmp_path):
    from advmri.experiments.run import RESULT_COLUMNS, read_table, write_table

    out = tmp_path / "t.csv"
    frames = [pd.DataFrame([{c: (i if c != "file" else "x" * 2000) for c in RESULT_COLUMNS}] * 400) for i in range(2)]
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


def test_mixed_geometries_are_attacked_per_group(tiny_data, tmp_path):
    """Real fastMRI volumes differ in coils / columns: the run batches per geometry instead of failing."""
    from dataclasses import replace

    from advmri.data.synth import PRESETS, generate_dataset
    from advmri.experiments.run import AttackRun, execute

    d = tmp_path / "mixed"
    generate_dataset("tiny", 1, seed=3, out=d / "a", progress=False)
    generate_dataset(replace(PRESETS["tiny"], coils=3), 1, seed=4, out=d / "b", progress=False, first_index=1)
    (d / "multicoil").mkdir()
    for sub in ("a", "b"):
        for p in (d / sub / "multicoil").glob("*.h5"):
            p.rename(d / "multicoil" / p.name)
    pd.concat([pd.read_csv(d / sub / "knee.csv") for sub in ("a", "b")]).to_csv(d / "knee.csv", index=False)
    ck = untrained(tmp_path / "m.pt", "varnet")
    run = AttackRun.from_params(
        "noise", model=str(ck), data_dir=str(d), max_targets=0, eps=[0.0, 0.01], steps=1, random_draws=1
    )
    df, ex = execute(run, progress=False)
    assert df["file"].nunique() == 2 and len(df) == len(ex["targets"]) * 2 * 2
    assert df.box_ssim.notna().all()


def test_threads_are_pinned_per_run_and_restored(tiny_data, tmp_path):
    from advmri.experiments.run import AttackRun, execute

    untrained(tmp_path / "m.pt", seed=3)
    seen = []
    import advmri.experiments.run as R

    real = R.adversarial_noise

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    before = torch.get_num_threads()
    R.adversarial_noise = spy
    try:
        run = AttackRun.from_params(
            "noise",
            model=str(tmp_path / "m.pt"),
            data_dir=str(tiny_data),
            max_targets=1,
            eps=[0.01],
            steps=1,
            random_draws=1,
            threads=1,
        )
        execute(run, progress=False)
    finally:
        R.adversarial_noise = real
    assert seen and set(seen) == {1} and torch.get_num_threads() == before
    with pytest.raises(Exception, match="threads"):
        AttackRun.from_params("noise", threads=0)
