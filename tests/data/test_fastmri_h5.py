"""advmri.data.fastmri_h5: truncated, corrupt, incomplete or non-finite fastMRI HDF5 files are one error naming
the file (read directly or through the data set)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from advmri.data.dataset import AnnotatedSlices
from advmri.data.fastmri_h5 import DataFileError, read_info


def test_truncated_hdf5(tiny_copy):
    d, f = tiny_copy
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFileError, match=f.name):
        read_info(f)
    with pytest.raises(DataFileError, match=f.name):
        AnnotatedSlices(d)


def test_corrupt_hdf5(tiny_copy):
    _, f = tiny_copy
    f.write_bytes(b"not an hdf5 file at all" * 100)
    with pytest.raises(DataFileError, match=rf"{f.name}.*not a readable HDF5"):
        read_info(f)


def test_missing_kspace(tiny_copy):
    _, f = tiny_copy
    with h5py.File(f, "a") as hf:
        del hf["kspace"]
    with pytest.raises(DataFileError, match=rf"{f.name}.*missing dataset 'kspace'"):
        read_info(f)


def test_wrong_ndim(tiny_copy):
    _, f = tiny_copy
    with h5py.File(f, "a") as hf:
        k = hf["kspace"][()]
        del hf["kspace"]
        hf["kspace"] = k[:, 0]
    with pytest.raises(DataFileError, match=rf"{f.name}.*must be 4-D"):
        read_info(f)


def test_nan_kspace(tiny_copy):
    d, f = tiny_copy
    with h5py.File(f, "a") as hf:
        k = hf["kspace"][()]
        k[:] = np.nan
        hf["kspace"][...] = k
    with pytest.raises(DataFileError, match=rf"{f.name}.*NaN"):
        read_info(f, check_finite=True)
    ds = AnnotatedSlices(d, with_unannotated=True, files=[f.stem])
    with pytest.raises(DataFileError, match=rf"{f.name}.*NaN"):
        ds[0]


def test_zero_slice_volume_and_nan_target_and_missing_max(tiny_copy):
    d, f = tiny_copy
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
