import pandas as pd
import pytest

from conftest import SHARED
from advmri.core.boxes import Box, flip_y, ssim_box, to_array_box, to_csv_box
from advmri.data.annotations import AnnotationError, box_rows, fetch_fastmri_plus, read_annotations


def test_flip_roundtrip():
    b = to_array_box(10, 30, 20, 8, (320, 320))
    assert b == Box(10, 320 - 30 - 8, 20, 8)
    assert to_csv_box(b, 320) == (10, 30, 20, 8)
    assert flip_y(flip_y(7, 5, 100), 5, 100) == 7


def test_negative_y_is_clipped():
    # negative y on the flipped image = the box runs off the bottom of the array image
    b = to_array_box(5, -4, 10, 10, (320, 320))
    assert b == Box(5, 314, 10, 6)
    assert to_array_box(5, -20, 10, 10, (320, 320)) is None


def test_ssim_box_grows_small_boxes_inside_image():
    assert ssim_box(Box(10, 10, 3, 20), (64, 64)) == Box(8, 10, 7, 20)
    assert ssim_box(Box(0, 62, 2, 2), (64, 64)) == Box(0, 57, 7, 7)
    assert ssim_box(Box(4, 4, 9, 9), (64, 64)) == Box(4, 4, 9, 9)


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
