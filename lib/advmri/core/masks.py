"""Undersampling masks from :mod:`fastmri.data.subsample` (Cartesian, along columns).

Named settings follow the fastMRI knee challenge: ``4x`` = acceleration 4, centre fraction
0.08; ``8x`` = acceleration 8, centre fraction 0.04. Masks are restricted to the acquired
columns (zero outside ``padding_left..padding_right``) as fastMRI's VarNet transform does.
"""

from __future__ import annotations

import zlib

import torch
from fastmri.data.subsample import MaskFunc, create_mask_for_mask_type

CENTER_FRACTIONS = {4: 0.08, 8: 0.04}


def mask_func(
    kind: str = "random", accelerations: tuple[int, ...] = (8,), center_fractions: tuple[float, ...] | None = None
) -> MaskFunc:
    """A fastMRI mask function; ``kind`` is ``random`` or ``equispaced`` (fastMRI's names)."""
    if center_fractions is None:
        center_fractions = tuple(CENTER_FRACTIONS[a] for a in accelerations)
    if kind not in ("random", "equispaced", "equispaced_fraction"):
        raise ValueError(f"unknown mask type {kind!r}")
    return create_mask_for_mask_type(kind, list(center_fractions), list(accelerations))


def slice_seed(fname: str, slice_idx: int) -> int:
    """Deterministic per-slice mask seed (stable across processes, unlike ``hash``)."""
    return zlib.crc32(f"{fname}:{slice_idx}".encode()) & 0x7FFFFFFF


def sample_mask(
    func: MaskFunc, shape: tuple[int, int], padding: tuple[int, int], seed: int
) -> tuple[torch.Tensor, int]:
    """Sample a column mask for k-space of ``shape = (rows, cols)``.

    Returns ``(mask (cols,) bool, num_low_frequencies)``; columns outside ``padding`` are 0.
    """
    rows, cols = shape
    m, num_low = func((1, rows, cols, 2), offset=None, seed=seed)  # (1, 1, cols, 1)
    m = m.reshape(-1).bool()
    m[: padding[0]] = False
    m[padding[1] :] = False
    return m, int(num_low)
