import shutil

import h5py
import numpy as np
import pytest

from advmri.data.annotations import AnnotationError, read_annotations
from advmri.data.dataset import AnnotatedSlices
from advmri.data.fastmri_h5 import DataFileError, read_info


@pytest.fixture()
def copy(tiny_data, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    return d, sorted((d / "multicoil").glob("*.h5"))[0]


def test_truncated_hdf5(copy):
    d, f = copy
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFileError, match=f.name):
        read_info(f)
    with pytest.raises(DataFileError, match=f.name):
        AnnotatedSlices(d)


def test_corrupt_hdf5(copy):
    _, f = copy
    f.write_bytes(b"not an hdf5 file at all" * 100)
    with pytest.raises(DataFileError, match=rf"{f.name}.*not a readable HDF5"):
        read_info(f)


def test_missing_kspace(copy):
    _, f = copy
    with h5py.File(f, "a") as hf:
        del hf["kspace"]
    with pytest.raises(DataFileError, match=rf"{f.name}.*missing dataset 'kspace'"):
        read_info(f)


def test_wrong_ndim(copy):
    _, f = copy
    with h5py.File(f, "a") as hf:
        k = hf["kspace"][()]
        del hf["kspace"]
        hf["kspace"] = k[:, 0]
    with pytest.raises(DataFileError, match=rf"{f.name}.*must be 4-D"):
        read_info(f)


def test_nan_kspace(copy):
    d, f = copy
    with h5py.File(f, "a") as hf:
        k = hf["kspace"][()]
        k[:] = np.nan
        hf["kspace"][...] = k
    with pytest.raises(DataFileError, match=rf"{f.name}.*NaN"):
        read_info(f, check_finite=True)
    ds = AnnotatedSlices(d, with_unannotated=True, files=[f.stem])
    with pytest.raises(DataFileError, match=rf"{f.name}.*NaN"):
        ds[0]


def test_stray_file_in_h5_folder(copy):
    d, _ = copy
    (d / "multicoil" / "notes.txt").write_text("x")
    with pytest.raises(DataFileError, match="notes.txt"):
        AnnotatedSlices(d)


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
