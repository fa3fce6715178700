"""Reconstruction quality of zero-filled, UNet and VarNet on held-out volumes (whole images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from advmri.core import metrics as M
from advmri.core.masks import mask_func, slice_seed
from advmri.models.networks import Reconstructor, zero_filled
from advmri.models.train import SliceCache, h5_folder


def _batches(n: int, batch: int, only: list[int] | None) -> list[list[int]]:
    """Positions ``0..n-1`` in consecutive batches of ``batch``; with ``only``: just the batches holding them
    (a verification sample recomputes whole batches, so its rows are computed exactly as in the full table)."""
    chunks = [list(range(lo, min(lo + batch, n))) for lo in range(0, n, batch)]
    return chunks if only is None else [c for c in chunks if set(c) & set(only)]


@torch.no_grad()
def quality_table(
    models: dict[str, Reconstructor],
    data: str | Path,
    accelerations=(4, 8),
    max_slices: int = 0,
    device: str = "cpu",
    progress: bool = True,
    batch: int = 1,
    only: list[int] | None = None,
) -> pd.DataFrame:
    """Per-slice SSIM/PSNR/NMSE for zero-filled and each model at each acceleration, ``batch`` slices per
    forward pass (``only``: the batches holding these slice positions).

    Masks are fastMRI random masks seeded per (file, slice) (4x/0.08, 8x/0.04); the data range
    is the volume's ``max`` attribute, as in ``fastmri.evaluate``.
    """
    import h5py

    folder = h5_folder(data)
    files = sorted(p.stem for p in folder.glob("*.h5"))
    order = []  # (file, slice) of every position, in SliceDataset's order, read from the headers only
    for f in files:
        with h5py.File(folder / f"{f}.h5", "r") as h:
            order += [(f, sl) for sl in range(h["kspace"].shape[0])]
    n = len(order) if max_slices <= 0 else min(max_slices, len(order))
    chunks = _batches(n, batch, only)
    needed = sorted({order[i][0] for c in chunks for i in c})  # a verification sample loads its volumes only
    cache = SliceCache(data, needed)
    at = {(Path(c[4]).stem, c[5]): j for j, c in enumerate(cache.items)}
    rows = []
    for acc in accelerations:
        func = mask_func("random", (acc,))
        for pos in tqdm(chunks, desc=f"quality {acc}x", disable=not progress, unit="batch"):
            ids = [at[order[i]] for i in pos]
            names = [(cache.items[i][4], cache.items[i][5]) for i in ids]
            k, m, nl, t, mx = cache.batch(ids, func, [slice_seed(f, sl) for f, sl in names], device)
            crop = tuple(t.shape[-2:])
            recs = {"zero-filled": zero_filled(k, crop)} | {
                name: model(k, m, nl, crop) for name, model in models.items()
            }
            for name, r in recs.items():  # (batch, H, W) each
                ssim, psnr, nmse = M.ssim(r, t, mx), M.psnr(r, t, mx), M.nmse(r, t)
                rows += [
                    dict(
                        method=name,
                        acceleration=acc,
                        file=f,
                        slice=sl,
                        ssim=float(ssim[j]),
                        psnr=float(psnr[j]),
                        nmse=float(nmse[j]),
                    )
                    for j, (f, sl) in enumerate(names)
                ]
    return pd.DataFrame(rows)


@torch.no_grad()
def box_quality(
    models: dict[str, Reconstructor],
    data: str | Path,
    accelerations=(4, 8),
    batch: int = 4,
    device: str = "cpu",
    progress: bool = True,
    max_boxes: int = 0,
    only: list[int] | None = None,
) -> pd.DataFrame:
    """Clean reconstruction quality inside every located fastMRI+ box: one row per (method, acceleration,
    box) with box SSIM / PSNR / MSE and ``lesion_retained`` (1: the lesion as in the target, 0: as in
    the lesion-free twin; synthetic data only); ``max_boxes > 0``: only the first that many. Masks as the attacks use
    them (:class:`advmri.data.dataset.AnnotatedSlices`), so this is the attacks' clean starting point."""
    from advmri.attacks.common import box_scores, make_batch
    from advmri.data.dataset import AnnotatedSlices

    rows: list[dict[str, Any]] = []
    for acc in accelerations:
        ds = AnnotatedSlices(data, acceleration=acc)
        n = len(ds) if max_boxes <= 0 else min(max_boxes, len(ds))
        for ids in tqdm(_batches(n, batch, only), desc=f"box quality {acc}x", disable=not progress, unit="batch"):
            tb = make_batch([ds[i] for i in ids]).to(device)
            y = tb.kspace * tb.mask[:, None, None, :].to(tb.kspace.real.dtype)
            recs = {"zero-filled": zero_filled(y, tb.crop)} | {
                name: model(y, tb.mask, tb.num_low, tb.crop) for name, model in models.items()
            }
            for name, r in recs.items():
                sc = box_scores(r, tb)
                for j, s in enumerate(tb.samples):
                    box = s.box
                    assert box is not None, "an AnnotatedSlices sample always has its box"
                    keys = ("box_ssim", "box_psnr", "box_mse", "lesion_retained")
                    scores = {k: float(sc[k][j]) for k in keys if k in sc}
                    where = dict(file=s.fname, slice=s.slice_idx, label=s.label, bx=box.x, by=box.y, bw=box.w, bh=box.h)
                    rows.append(dict(method=name, acceleration=acc, **where, **scores))
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame, boxes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean metrics per method and acceleration; with ``boxes`` (:func:`box_quality`) also the mean clean
    box SSIM / PSNR and lesion retention over the located boxes, and their number."""
    out = df.groupby(["acceleration", "method"])[["ssim", "psnr", "nmse"]].mean().reset_index()
    if boxes is not None and len(boxes):
        cols = [c for c in ("box_ssim", "box_psnr", "lesion_retained") if c in boxes]
        b = boxes.groupby(["acceleration", "method"])[cols].mean()
        b["boxes"] = boxes.groupby(["acceleration", "method"]).size()
        out = out.merge(b.reset_index(), on=["acceleration", "method"], how="left")
    return out
