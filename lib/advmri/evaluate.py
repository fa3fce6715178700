"""Reconstruction quality of zero-filled, UNet and VarNet on held-out volumes (whole images)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from advmri import metrics as M
from advmri.data.masks import mask_func, slice_seed
from advmri.models import Reconstructor, zero_filled
from advmri.train import SliceCache, h5_folder


@torch.no_grad()
def quality_table(models: dict[str, Reconstructor], data: str | Path, accelerations=(4, 8), max_slices: int = 0,
                  device: str = "cpu", progress: bool = True) -> pd.DataFrame:
    """Per-slice SSIM/PSNR/NMSE for zero-filled and each model at each acceleration.

    Masks are fastMRI random masks seeded per (file, slice) (4x/0.08, 8x/0.04); the data range
    is the volume's ``max`` attribute, as in ``fastmri.evaluate``.
    """
    files = sorted(p.stem for p in h5_folder(data).glob("*.h5"))
    cache = SliceCache(data, files)
    n = len(cache) if max_slices <= 0 else min(max_slices, len(cache))
    rows = []
    for acc in accelerations:
        func = mask_func("random", (acc,))
        for i in tqdm(range(n), desc=f"quality {acc}x", disable=not progress):
            fname, sl = cache.items[i][4], cache.items[i][5]
            k, m, nl, t, mx = cache.batch([i], func, [slice_seed(fname, sl)], device)
            recs = {"zero-filled": zero_filled(k, tuple(t.shape[-2:]))}
            for name, model in models.items():
                recs[name] = model(k, m, nl, tuple(t.shape[-2:]))
            for name, r in recs.items():
                rows.append(dict(method=name, acceleration=acc, file=fname, slice=sl,
                                 ssim=float(M.ssim(r, t, mx)), psnr=float(M.psnr(r, t, mx)), nmse=float(M.nmse(r, t))))
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics per method and acceleration."""
    return df.groupby(["acceleration", "method"])[["ssim", "psnr", "nmse"]].mean().reset_index()
