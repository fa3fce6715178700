"""advmri.data.synth: the synthetic fastMRI-format knee set is deterministic, in fastMRI's layout (read by fastMRI's
own SliceDataset), its lesions lie in the y-flipped boxes; the CLI refuses a non-empty folder and zero slices."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli, one_error_line
from fastmri.data import SliceDataset

from advmri.core import kspace as K
from advmri.core.boxes import Box, to_array_box
from advmri.data.annotations import read_annotations
from advmri.data.synth import PRESETS, generate_dataset, generate_volume


def test_generator_is_deterministic():
    a = generate_volume(PRESETS["tiny"], 3, 1)
    b = generate_volume(PRESETS["tiny"], 3, 1)
    c = generate_volume(PRESETS["tiny"], 4, 1)
    assert np.array_equal(a["kspace"], b["kspace"]) and np.array_equal(a["target"], b["target"])
    assert a["annotations"] == b["annotations"]
    assert not np.array_equal(a["kspace"], c["kspace"])


def test_files_written_twice_are_identical(tmp_path):
    generate_dataset("tiny", 1, seed=2, out=tmp_path / "a", progress=False)
    generate_dataset("tiny", 1, seed=2, out=tmp_path / "b", progress=False)
    fa, fb = (sorted((tmp_path / d / "multicoil").glob("*.h5"))[0] for d in "ab")
    with h5py.File(fa) as ha, h5py.File(fb) as hb:
        for key in ("kspace", "reconstruction_rss", "reconstruction_rss_healthy"):
            assert np.array_equal(ha[key][()], hb[key][()])
    assert (tmp_path / "a/knee.csv").read_text() == (tmp_path / "b/knee.csv").read_text()


def test_fastmri_layout(tiny_data):
    p = PRESETS["tiny"]
    f = sorted((tiny_data / "multicoil").glob("*.h5"))[0]
    with h5py.File(f) as hf:
        ks, rec = hf["kspace"], hf["reconstruction_rss"]
        assert ks.dtype == np.complex64 and ks.shape == (p.slices, p.coils, *p.kspace)
        assert rec.dtype == np.float32 and rec.shape == (p.slices, p.recon, p.recon)
        for a in (
            "acquisition",
            "max",
            "norm",
            "patient_id",
            "padding_left",
            "padding_right",
            "encoding_size",
            "recon_size",
        ):
            assert a in hf.attrs
        k = hf["kspace"][()]
        pl, pr = hf.attrs["padding_left"], hf.attrs["padding_right"]
        assert np.abs(k[..., :pl]).max() == 0 and np.abs(k[..., pr:]).max() == 0 and np.abs(k[..., pl:pr]).min() > 0
        # the stored target is the RSS of the fully sampled k-space, centre-cropped
        t = K.rss_recon(torch.from_numpy(k[1]), (p.recon, p.recon)).numpy()
        assert np.allclose(t, rec[1], rtol=1e-5, atol=1e-6)
        assert np.isclose(hf.attrs["max"], rec[()].max())


def test_fastmri_slicedataset_reads_files_unmodified(tiny_data):
    ds = SliceDataset(tiny_data / "multicoil", challenge="multicoil")
    assert len(ds) == 3 * PRESETS["tiny"].slices
    kspace, mask, target, attrs, fname, sl = ds[0]
    assert kspace.shape == (PRESETS["tiny"].coils, *PRESETS["tiny"].kspace) and target.shape == (48, 48)
    # fastMRI derives the padding from the ISMRMRD header; it must agree with ours
    assert (attrs["padding_left"], attrs["padding_right"]) == PRESETS["tiny"].padding
    assert tuple(attrs["recon_size"]) == (48, 48, 1) and tuple(attrs["encoding_size"]) == (*PRESETS["tiny"].kspace, 1)


def _lesion_mass(diff: np.ndarray, box: Box) -> float:
    return float(diff[box.slices].sum() / diff.sum())


def test_y_flip_puts_lesion_inside_converted_box(small_data):
    """The inserted lesion lies inside the y-flipped box and *not* inside the un-flipped one."""
    df = read_annotations(small_data / "knee.csv")
    rows = df[~df.study_level]
    assert len(rows) > 0
    checked = 0
    for r in rows.itertuples():
        with h5py.File(small_data / "multicoil" / f"{r.file}.h5") as hf:
            t, h = hf["reconstruction_rss"][r.slice], hf["reconstruction_rss_healthy"][r.slice]
        others = rows[(rows.file == r.file) & (rows.slice == r.slice)]
        if len(others) > 1:
            continue  # one lesion per slice keeps the mass test clean
        H = t.shape[0]
        diff = np.abs(t - h)
        right = to_array_box(r.x, r.y, r.width, r.height, t.shape)
        wrong = Box(int(r.x), int(r.y), int(r.width), int(r.height))  # forgetting the flip
        assert _lesion_mass(diff, right) > 0.8
        if abs((H - r.y - r.height) - r.y) > r.height:  # the two boxes do not overlap
            assert _lesion_mass(diff, wrong) < 0.2
        checked += 1
    assert checked > 0


def test_study_level_and_file_list(tiny_data):
    df = read_annotations(tiny_data / "knee.csv")
    files = (tiny_data / "knee_file_list.csv").read_text().split()
    assert sorted(files) == sorted(p.stem for p in (tiny_data / "multicoil").glob("*.h5"))
    assert set(df.file) <= set(files)
    assert df[df.study_level][["x", "y", "width", "height"]].isna().all().all()


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


def test_named_sets_keep_training_and_test_seeds_apart_and_generate_by_name(tmp_path, capsys):
    from advmri.data.synth import SETS, main

    train_seeds = {s.seed for n, s in SETS.items() if n.startswith("train")}
    test_seeds = {s.seed for n, s in SETS.items() if n.startswith("test")}
    assert not train_seeds & test_seeds
    assert SETS["train-large"].volumes >= 125 and SETS["test-large"].volumes >= 60
    assert main(["--set", "train", "--out", str(tmp_path / "t"), "--slices", "1"]) == 0
    names = (tmp_path / "t" / "knee_file_list.csv").read_text().split()
    assert len(names) == SETS["train"].volumes and names[0] == "file_synth0_0000"
    with pytest.raises(SystemExit):
        main(["--volumes", "1"])  # neither --out nor --set
    assert "--out is required" in capsys.readouterr().err
