"""advmri.data.fingerprint: the same content in other last bits agrees; any real change of a file is told apart."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
from conftest import digest

from advmri.data.fingerprint import differs, fingerprint


def _rewrite(path, name, change) -> None:
    with h5py.File(path, "r+") as f:
        f[name][...] = change(f[name][()])


def test_float32_rounding_agrees_but_a_real_change_does_not(tiny_copy, tmp_path):
    folder, first = tiny_copy
    before = fingerprint(first)
    assert set(before["datasets"]) >= {"kspace", "reconstruction_rss", "ismrmrd_header"}
    assert differs(fingerprint(first), before) is None
    rng = np.random.default_rng(0)
    rounded = tmp_path / "rounded.h5"
    shutil.copy(first, rounded)

    def last_bits(x):  # another CPU's FFT: every value a few float32 ulps away
        return (x * (1 + 3e-7 * rng.standard_normal(x.shape))).astype(x.dtype)

    _rewrite(rounded, "kspace", last_bits)
    _rewrite(rounded, "reconstruction_rss", last_bits)
    assert digest(rounded) != digest(first)
    assert differs(fingerprint(rounded), before) is None
    # a lesion 2% brighter in one small region of one slice
    lesion = tmp_path / "lesion.h5"
    shutil.copy(first, lesion)

    def brighter(x):
        y = x.copy()
        y[1, 4:8, 4:8] *= 1.02
        return y

    _rewrite(lesion, "reconstruction_rss", brighter)
    assert differs(fingerprint(lesion), before) == "reconstruction_rss"
    # one coil of one slice 1% stronger in k-space
    coil = tmp_path / "coil.h5"
    shutil.copy(first, coil)

    def stronger(x):
        y = x.copy()
        y[0, 1] *= 1.01
        return y

    _rewrite(coil, "kspace", stronger)
    assert differs(fingerprint(coil), before) == "kspace"
    # another volume, an attribute, a dataset more
    other = sorted((folder / "multicoil").glob("*.h5"))[1]
    assert differs(fingerprint(other), before) is not None
    with h5py.File(coil, "r+") as f:
        f.attrs["max"] = float(f.attrs["max"]) * 1.01
    assert differs(fingerprint(coil), fingerprint(lesion)) in ("kspace", "reconstruction_rss", "attr max")
    with h5py.File(rounded, "r+") as f:
        f.attrs["max"] = float(f.attrs["max"]) * 1.01
    assert differs(fingerprint(rounded), before) == "attr max"
    with h5py.File(rounded, "r+") as f:
        f["extra"] = np.zeros(3)
    assert differs(fingerprint(rounded), before) == "datasets"
