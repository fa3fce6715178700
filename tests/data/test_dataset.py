"""advmri.data.dataset: annotated slices own their boxes, masks per acceleration, the lesion-free twins, every
dropped or merged annotation row counted, and a stray file in the data folder named."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from advmri.core import kspace as K
from advmri.core.boxes import Box
from advmri.data.dataset import AnnotatedSlices
from advmri.data.fastmri_h5 import DataFileError


def test_stray_file_in_h5_folder(tiny_copy):
    d, _ = tiny_copy
    (d / "multicoil" / "notes.txt").write_text("x")
    with pytest.raises(DataFileError, match="notes.txt"):
        AnnotatedSlices(d)


def test_lesion_free_items_are_the_twins(tiny_data):
    sick, twin = AnnotatedSlices(tiny_data), AnnotatedSlices(tiny_data, lesion_free=True)
    assert len(sick) == len(twin) > 0
    a, b = sick[0], twin[0]
    assert (a.fname, a.slice_idx, a.box) == (b.fname, b.slice_idx, b.box) and torch.equal(a.mask, b.mask)
    assert torch.equal(b.target, a.healthy) and torch.equal(b.healthy, a.target)  # roles swapped
    assert not torch.equal(a.kspace, b.kspace)
    # the stored twin k-space is the twin target's: its RSS reconstruction is reconstruction_rss_healthy
    assert torch.allclose(K.rss_recon(b.kspace, tuple(b.target.shape)), b.target, rtol=1e-4, atol=1e-6)
    # the two k-spaces differ only by the lesion: inside the box the targets differ, far outside they agree
    diff = (a.target - b.target).abs()
    assert diff[a.box.slices].max() > 10 * diff.mean()


# ---------------------------------------------------------------------------------------------
# data and annotations: every dropped or merged row counted
def test_annotation_rows_are_accounted_for(tiny_copy):
    d, _ = tiny_copy
    csv = d / "knee.csv"
    df = pd.read_csv(csv)
    f = df.loc[~df.study_level.eq("Yes"), "file"].iloc[0]
    extra = pd.DataFrame(
        [
            df[~df.study_level.eq("Yes")].iloc[0].to_dict(),  # exact duplicate
            dict(file=f, slice=0, study_level="No", x=5, y=5, width=0, height=4, label="Meniscus Tear"),  # empty
            dict(file=f, slice=0, study_level="No", x=5, y=5, width=-3, height=4, label="Meniscus Tear"),  # negative
            dict(file=f, slice=0, study_level="No", x=500, y=5, width=4, height=4, label="Meniscus Tear"),  # outside
            dict(file=f, slice=99, study_level="No", x=5, y=5, width=4, height=4, label="Meniscus Tear"),  # slice
            dict(file="file_not_here", slice=0, study_level="No", x=5, y=5, width=4, height=4, label="x"),
        ]
    )
    pd.concat([df, extra]).to_csv(csv, index=False)
    ds = AnnotatedSlices(d)
    r = ds.report
    assert (r["duplicate"], r["empty_box"], r["outside_image"], r["slice_out_of_range"], r["file_not_in_folder"]) == (
        1,
        2,
        1,
        1,
        1,
    )
    assert (
        r["located"]
        == len(ds)
        == r["rows"]
        - sum(
            r[k]
            for k in (
                "study_level",
                "duplicate",
                "empty_box",
                "outside_image",
                "slice_out_of_range",
                "file_not_in_folder",
            )
        )
    )
    text = ds.describe()
    assert "exact duplicates" in text and "zero/negative size" in text and "outside the image" in text


def test_annotated_slices_items_own_their_boxes(small_data):
    ds = AnnotatedSlices(small_data)
    fr = ds.frame()
    assert len(ds) == len(fr) > 0
    # fastMRI's AnnotatedSliceDataset bug: all slices of a volume share one annotation. Ours:
    for i in range(len(ds)):
        s = ds[i]
        assert s.box == Box(*fr.loc[i, ["bx", "by", "bw", "bh"]].astype(int)) and s.label == fr.loc[i, "label"]
        assert s.masked_kspace.shape == s.kspace.shape and s.mask.dtype == torch.bool
        assert not s.mask[: s.padding[0]].any() and not s.mask[s.padding[1] :].any()
    assert fr.groupby("file")[["bx", "by"]].nunique().max().max() > 1 or len(fr.file.unique()) == len(fr)


def test_masks_accelerations(small_data):
    for acc in (4, 8):
        ds = AnnotatedSlices(small_data, acceleration=acc)
        s = ds[0]
        frac = s.mask.float().mean().item()
        assert 0.5 / acc < frac < 2.0 / acc
        assert AnnotatedSlices(small_data, acceleration=acc)[0].mask.equal(s.mask)  # seeded per slice
