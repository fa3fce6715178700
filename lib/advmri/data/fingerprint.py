"""Content fingerprints of fastMRI-style HDF5 files: equal data within float32 rounding, whatever its last bits.

The embedded data set is generated on the user's machine (:mod:`advmri.data.synth`, seeded). Its FFTs and
transcendental functions round differently on other CPUs (MKL's and NumPy's kernels are chosen by instruction set
and vendor), so the same seed gives files that are equal to ~1e-7 relative but not byte-identical: their sha256
differ (measured: 16 of the 28 test volumes generated on an Intel Xeon against those of an AMD EPYC). A cache keyed
by sha256 alone would then recompute on every other CPU. :func:`fingerprint` summarises a file's *content* in a
few hundred float64 numbers that such rounding moves by ~1e-7 and any real change (another seed, lesion, coil
count, SNR, geometry) moves by far more than :data:`RTOL`; :func:`differs` compares two.

Per dataset: ``(slices, coils, rows, cols)`` complex k-space -> the energy ``sum |k|^2`` of each (slice, coil);
``(slices, rows, cols)`` real images -> the sum over each cell of a :data:`GRID` x :data:`GRID` grid of each slice
(a lesion changes its cell); anything else (the ISMRMRD header) -> the sha256 of its bytes. Numeric attributes
(``max``, ``norm``, ...) are numbers, the others strings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

__all__ = ["GRID", "RTOL", "fingerprint", "differs"]

GRID = 4
RTOL = 1e-4  # rounding moves these sums by ~1e-7 relative; a real change by percent


def _digits(x: np.ndarray) -> list[float]:
    """Nine significant digits (far below :data:`RTOL`; keeps the recorded fingerprints short)."""
    return [float(f"{v:.9g}") for v in x.ravel()]


def _summary(data: np.ndarray) -> list[float] | str:
    """One dataset's summary (module docstring)."""
    if data.ndim == 4 and np.iscomplexobj(data):  # (slices, coils, rows, cols) complex
        return _digits((np.abs(data.astype(np.complex128)) ** 2).sum(axis=(2, 3)))
    if data.ndim == 3 and np.isrealobj(data):  # (slices, rows, cols) real
        s, h, w = data.shape
        g = min(GRID, h, w)
        cells = data[:, : h // g * g, : w // g * g].astype(np.float64).reshape(s, g, h // g, g, w // g)
        return _digits(cells.sum(axis=(2, 4)))
    return hashlib.sha256(np.asarray(data).tobytes()).hexdigest()


def fingerprint(path: str | Path) -> dict:
    """``{"datasets": {name: summary}, "attrs": {name: value}}`` of the HDF5 file ``path``."""
    import h5py

    with h5py.File(path, "r") as f:
        datasets = {name: _summary(f[name][()]) for name in sorted(f.keys())}
        attrs = {}
        for k in sorted(f.attrs):
            v = np.asarray(f.attrs[k])
            attrs[k] = v.astype(float).ravel().tolist() if np.issubdtype(v.dtype, np.number) else str(v)
    return {"datasets": datasets, "attrs": attrs}


def _close(a: list[float], b: list[float]) -> bool:
    x, y = np.asarray(a, float), np.asarray(b, float)
    scale = float(np.abs(y).max()) if y.size else 0.0
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=RTOL, atol=RTOL * 1e-2 * scale))


def differs(now: dict, recorded: dict) -> str | None:
    """The first dataset or attribute whose content differs beyond :data:`RTOL` (``"kspace"``, ``"attr max"``,
    ``"datasets"`` when the names differ), or None when the two fingerprints describe the same data."""
    for part, label in (("datasets", ""), ("attrs", "attr ")):
        a, b = now.get(part, {}), recorded.get(part, {})
        if sorted(a) != sorted(b):
            return part
        for k in a:
            if isinstance(a[k], str) or isinstance(b[k], str):
                if a[k] != b[k]:
                    return f"{label}{k}"
            elif not _close(a[k], b[k]):
                return f"{label}{k}"
    return None
