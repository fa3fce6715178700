"""advmri.data.annotations: reading fastMRI+ CSVs (several boxes per slice, labels stripped), bad CSVs named in one
error, fetching offline, and the real file's quirks counted."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import SHARED

from advmri.data.annotations import AnnotationError, box_rows, fetch_fastmri_plus, read_annotations


def test_several_boxes_per_slice_and_labels_stripped(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text(
        "file,slice,study_level,x,y,width,height,label\n"
        "f1,3,No,1,2,10,10,Joint Effusion \n"
        "f1,3,No,40,50,5,5,Meniscus Tear\n"
        "f1,0,Yes,,,,,artifact\n"
    )
    df = read_annotations(p)
    assert list(df.label) == ["Joint Effusion", "Meniscus Tear", "artifact"]
    br = box_rows(df, default_shape=(64, 64))
    assert len(br) == 2 and set(br.slice) == {3}


def test_fetch_offline_gives_clear_error(tmp_path, monkeypatch):
    import requests

    def boom(*a, **k):
        raise requests.ConnectionError("offline")

    monkeypatch.setattr(requests, "get", boom)
    with pytest.raises(AnnotationError, match="local path"):
        fetch_fastmri_plus("640500f", dest=tmp_path)


@pytest.mark.skipif(not (SHARED / "fastmri_plus/knee.csv").is_file(), reason="../shared/fastmri_plus absent")
def test_real_fastmri_plus_file():
    path = SHARED / "fastmri_plus/knee.csv"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = read_annotations(path)
    assert len(df) == len(raw) == 16167
    assert df.study_level.sum() == (raw.study_level == "Yes").sum()
    located = raw[raw.study_level == "No"]
    assert (df.y < 0).sum() == (located.y.astype(int) < 0).sum() > 0
    small = ((located.width.astype(int) < 7) | (located.height.astype(int) < 7)).sum()
    assert ((df.width < 7) | (df.height < 7)).sum() == small > 0
    assert (raw.label != raw.label.str.strip()).sum() > 0 and (df.label == df.label.str.strip()).all()
    br = box_rows(df)
    assert len(br) <= len(located) and (br.by >= 0).all() and (br.by + br.bh <= 320).all()
    # several boxes on one slice exist in the real file
    assert br.groupby(["file", "slice"]).size().max() > 1


def test_csv_missing_columns(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("file,slice,x,y\nfile1,0,1,2\n")
    with pytest.raises(AnnotationError, match=r"bad.csv.*missing column"):
        read_annotations(p)


def test_csv_bad_values(tmp_path):
    p = tmp_path / "bad2.csv"
    p.write_text("file,slice,study_level,x,y,width,height,label\nf,0,No,a,2,3,4,x\n")
    with pytest.raises(AnnotationError, match="bad2.csv"):
        read_annotations(p)
    p.write_text("file,slice,study_level,x,y,width,height,label\nf,0,No,,,,,x\n")
    with pytest.raises(AnnotationError, match=r"bad2.csv.*no box"):
        read_annotations(p)


def test_missing_csv_is_named(tmp_path):
    with pytest.raises(AnnotationError, match="nope.csv"):
        read_annotations(tmp_path / "nope.csv")


@pytest.mark.skipif(not (SHARED / "fastmri_plus" / "knee.csv").is_file(), reason="needs ../shared/fastmri_plus")
def test_real_fastmri_plus_quirks_are_counted():
    rep = {}
    ann = read_annotations(SHARED / "fastmri_plus" / "knee.csv")
    boxes = box_rows(ann, report=rep)
    assert rep["duplicate"] == 5 and rep["empty_box"] == 1
    assert len(boxes) + sum(rep[k] for k in ("study_level", "duplicate", "empty_box", "outside_image")) == len(ann)
