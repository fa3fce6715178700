"""Annotated slice data set for real fastMRI and synthetic files alike.

Built on :class:`fastmri.data.SliceDataset` (file enumeration and raw slice reading, unchanged)
with fastMRI+ annotations joined *per slice and per box*: fastMRI's own
``AnnotatedSliceDataset`` stores the annotation in the shared per-file metadata dict, so every
slice of a volume ends up with the last annotation; here each item owns its box.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from fastmri.data import SliceDataset

from advmri.core.boxes import Box
from advmri.core.masks import mask_func as make_mask_func
from advmri.core.masks import sample_mask, slice_seed
from advmri.data.annotations import box_rows, read_annotations
from advmri.data.fastmri_h5 import DataFileError, VolumeInfo, read_info
from advmri.util.paths import project_path


@dataclass
class SliceSample:
    """One annotated target: a slice and (optionally) one box on it."""

    kspace: torch.Tensor  # (coils, rows, cols) complex64, fully sampled (zeros outside padding)
    masked_kspace: torch.Tensor  # (coils, rows, cols) complex64, kspace * mask
    mask: torch.Tensor  # (cols,) bool
    num_low_frequencies: int
    target: torch.Tensor  # (H, W) float32, reconstruction_rss
    # (H, W) float32, the twin (synthetic data only): the lesion-free image; for lesion_free samples
    # (the twin is attacked, hallucination) the other way round: the image *with* the lesion
    healthy: torch.Tensor | None
    box: Box | None  # array coordinates on target
    label: str
    fname: str
    slice_idx: int
    padding: tuple[int, int]
    max_value: float  # attrs['max'] of the volume (fastMRI's data range for whole-volume metrics)
    path: str | None = None  # the volume's .h5 file


def describe_report(r: dict) -> str:
    """One line from :attr:`AnnotatedSlices.report`: annotation rows -> located boxes, counts by reason."""
    if r.get("annotation_file") is None:
        return "no annotation file"
    parts = [f"{r['rows']} rows in {Path(r['annotation_file']).name}"]
    for key, what in (
        ("study_level", "study-level"),
        ("file_not_in_folder", "file not in the data folder"),
        ("duplicate", "exact duplicates"),
        ("empty_box", "zero/negative size"),
        ("outside_image", "outside the image"),
        ("slice_out_of_range", "slice out of range"),
        ("label_not_selected", "label not selected"),
    ):
        if r.get(key):
            parts.append(f"-{r[key]} {what}")
    parts.append(f"= {r.get('located', 0)} located boxes")
    if r.get("clipped"):
        parts.append(f"({r['clipped']} clipped to the image)")
    return " ".join(parts) + (
        f"; {r['csv_files_in_folder']} of the CSV's {r['files_in_csv']} files are among "
        f"the folder's {r['files_in_folder']}"
    )


def _h5_paths(root: Path, files: Iterable[str] | None) -> tuple[Path, list[Path]]:
    """The folder of ``.h5`` files (``root``, or ``root/multicoil`` when present) and its ``.h5`` files, sorted
    (only those whose stem is in ``files`` when given); raises :class:`DataFileError` when the folder is
    missing, holds other entries (``SliceDataset`` opens every entry) or has no matching file."""
    if not root.is_dir():
        raise DataFileError(f"{root}: data directory not found")
    if (root / "multicoil").is_dir():
        root = root / "multicoil"
    strays = [p.name for p in root.iterdir() if p.suffix != ".h5" or not p.is_file()]
    if strays:
        raise DataFileError(
            f"{root}: holds non-.h5 entries {strays[:3]}; fastmri.data.SliceDataset opens every entry "
            "of its folder, so keep annotations and other files beside it"
        )
    paths = sorted(root.glob("*.h5"))
    if files is not None:
        keep = set(files)
        paths = [p for p in paths if p.stem in keep]
    if not paths:
        raise DataFileError(f"{root}: no .h5 files")
    return root, paths


def _check_twins(infos: dict[str, VolumeInfo]) -> None:
    """Raise :class:`DataFileError` naming the first file without a lesion-free twin (target and k-space)."""
    lacking = [i.path for i in infos.values() if not (i.has_healthy and i.has_healthy_kspace)]
    if lacking:
        raise DataFileError(
            f"{lacking[0]}: no lesion-free twin ('kspace_healthy' and "
            "'reconstruction_rss_healthy'; real fastMRI data has none, synthetic data made "
            "before this version lacks the k-space: regenerate it with --force)"
        )


class AnnotatedSlices(torch.utils.data.Dataset):
    """Items = (file, slice, box) for every located fastMRI+ box of the files under ``root``.

    ``root`` is a folder of fastMRI ``.h5`` files and nothing else (``SliceDataset`` opens every
    entry), or a data-set folder holding such a ``multicoil/`` folder (the synthetic layout).
    ``annotations``: a fastMRI+ CSV path (default ``knee.csv`` beside the ``.h5`` folder). ``with_unannotated``
    also yields slices without boxes (``box=None``). ``acceleration``/``mask_type`` choose the
    fastMRI mask; the mask is seeded per (file, slice) so every run sees the same mask.
    ``lesion_free``: each item is the lesion-free twin of the annotated slice (k-space ``kspace_healthy``,
    target ``reconstruction_rss_healthy``; synthetic data only), and its ``healthy`` field holds the image
    *with* the lesion (what a hallucination attack pulls the box toward).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        annotations: str | os.PathLike | None = None,
        acceleration: int = 8,
        center_fraction: float | None = None,
        mask_type: str = "random",
        with_unannotated: bool = False,
        files: Iterable[str] | None = None,
        labels: Iterable[str] | None = None,
        lesion_free: bool = False,
    ):
        root = project_path(root)
        self.root = root
        root, paths = _h5_paths(root, files)
        self.infos = {p.stem: read_info(p) for p in paths}  # validates every file, clear errors
        self.lesion_free = lesion_free
        if lesion_free:
            _check_twins(self.infos)
        self.raw = SliceDataset(root=root, challenge="multicoil", transform=None)
        self.raw.raw_samples = [s for s in self.raw.raw_samples if s.fname.stem in self.infos]
        self._raw_index = {(s.fname.stem, s.slice_ind): i for i, s in enumerate(self.raw.raw_samples)}
        cf = center_fraction
        self.mask_func = make_mask_func(mask_type, (acceleration,), None if cf is None else (cf,))
        self.acceleration = acceleration

        ann_path = project_path(annotations) if annotations is not None else root.parent / "knee.csv"
        self.annotations = read_annotations(ann_path) if ann_path.is_file() else None
        if annotations is not None and self.annotations is None:
            raise DataFileError(f"{ann_path}: annotation file not found")
        items: list[tuple[str, int, Box | None, str]] = []
        self.annotation_path = ann_path
        # every annotation row is accounted for: kept, or dropped / merged with a reason (in this order)
        self.report: dict[str, Any] = dict(
            annotation_file=str(ann_path) if self.annotations is not None else None, files_in_folder=len(self.infos)
        )
        if self.annotations is not None:
            items += self._box_items(self.annotations, labels)
        if with_unannotated:
            have = {(f, s) for f, s, _, _ in items}
            for f, info in self.infos.items():
                for s in range(info.num_slices):
                    if (f, s) not in have:
                        items.append((f, s, None, ""))
        self.items = sorted(items, key=lambda t: (t[0], t[1], t[2].as_tuple() if t[2] else ()))

    def _box_items(self, ann: pd.DataFrame, labels: Iterable[str] | None) -> list[tuple[str, int, Box, str]]:
        """``(file, slice, box, label)`` of every located box of the annotations ``ann`` on the folder's files
        (with ``labels`` given: of those labels only); counts every dropped row in :attr:`report` by reason."""
        rep = self.report
        rep["rows"] = len(ann)
        rep["files_in_csv"] = int(ann["file"].nunique())
        rep["csv_files_in_folder"] = int(ann["file"].drop_duplicates().isin(self.infos).sum())
        shapes = {k: v.recon_size for k, v in self.infos.items()}
        mine = ann["file"].isin(self.infos)
        rep["file_not_in_folder"] = int((~mine).sum())
        boxes = box_rows(ann[mine], shapes, report=rep)
        in_range = (
            np.array(
                [s < self.infos[f].num_slices for f, s in zip(boxes["file"], boxes["slice"], strict=True)], dtype=bool
            )
            if len(boxes)
            else np.zeros(0, dtype=bool)
        )
        rep["slice_out_of_range"] = int((~in_range).sum())
        boxes = boxes[in_range]
        if labels is not None:
            want = set(labels)
            rep["labels_known"] = sorted(boxes["label"].unique().tolist())
            rep["label_not_selected"] = int((~boxes["label"].isin(want)).sum())
            boxes = boxes[boxes["label"].isin(want)]
        rep["located"] = len(boxes)
        return [(r.file, int(r.slice), Box(r.bx, r.by, r.bw, r.bh), r.label) for r in boxes.itertuples(index=False)]

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        """One line: how the annotation rows became located boxes (counts by reason)."""
        if self.report.get("annotation_file") is None:
            return f"no annotation file ({self.annotation_path} not found; pass --annotations / annotations=)"
        return describe_report(self.report)

    def no_boxes_error(self) -> DataFileError:
        """Why no box is left, with the counts (the first filter that emptied the list is the cause)."""
        r, why = self.report, "no located boxes"
        if r.get("annotation_file") is None:
            return DataFileError(f"{self.root}: {self.describe()}")
        if r.get("rows", 0) == 0:
            why = "the annotation file has no rows"
        elif r.get("csv_files_in_folder", 0) == 0:
            why = "none of the annotated files is in the data folder (real fastMRI+ CSV against other data?)"
        elif r.get("label_not_selected") and r.get("located", 0) == 0:
            why = f"no box has the selected label(s) (labels present: {', '.join(r.get('labels_known', []))})"
        return DataFileError(f"{self.root}: {why}: {self.describe()}")

    def frame(self) -> pd.DataFrame:
        """The items as a table (file, slice, label, box)."""
        return pd.DataFrame(
            [(f, s, lab, *(b.as_tuple() if b else (None,) * 4)) for f, s, b, lab in self.items],
            columns=["file", "slice", "label", "bx", "by", "bw", "bh"],
        )

    def __getitem__(self, i: int) -> SliceSample:
        fname, sl, box, label = self.items[i]
        info = self.infos[fname]
        try:
            kspace, _, target, attrs, _, _ = self.raw[self._raw_index[(fname, sl)]]
        except OSError as e:
            raise DataFileError(f"{info.path}: cannot read slice {sl} ({e})") from e
        if not np.isfinite(kspace).all():
            raise DataFileError(f"{info.path}: 'kspace' slice {sl} contains NaN or Inf")
        if target is None:
            raise DataFileError(f"{info.path}: no 'reconstruction_rss' target (test-split file?)")
        if not np.isfinite(target).all():
            raise DataFileError(
                f"{info.path}: 'reconstruction_rss' slice {sl} contains NaN or Inf "
                f"({int((~np.isfinite(target)).sum())} pixels); every metric would be NaN"
            )
        healthy = None
        if info.has_healthy:
            import h5py

            with h5py.File(info.path, "r") as hf:
                healthy = torch.from_numpy(hf["reconstruction_rss_healthy"][sl])
            if not torch.isfinite(healthy).all():
                raise DataFileError(f"{info.path}: 'reconstruction_rss_healthy' slice {sl} contains NaN or Inf")
        if self.lesion_free:  # the twin is attacked; the image with the lesion is what it must not turn into
            import h5py

            with h5py.File(info.path, "r") as hf:
                kspace = hf["kspace_healthy"][sl]
            if not np.isfinite(kspace).all():
                raise DataFileError(f"{info.path}: 'kspace_healthy' slice {sl} contains NaN or Inf")
            if healthy is None:  # __init__'s _check_twins rules this out; named here should the file change
                raise DataFileError(f"{info.path}: no 'reconstruction_rss_healthy' (the lesion-free twin's target)")
            target, healthy = healthy.numpy(), torch.from_numpy(np.asarray(target, dtype=np.float32))
        k = torch.from_numpy(kspace)  # (coils, rows, cols) complex64
        pad = (info.padding_left, info.padding_right)
        mask, num_low = sample_mask(self.mask_func, (k.shape[-2], k.shape[-1]), pad, slice_seed(fname, sl))
        return SliceSample(
            kspace=k,
            masked_kspace=k * mask.to(k.real.dtype),
            mask=mask,
            num_low_frequencies=num_low,
            target=torch.from_numpy(np.asarray(target, dtype=np.float32)),
            healthy=healthy,
            box=box,
            label=label,
            fname=fname,
            slice_idx=sl,
            padding=pad,
            max_value=float(attrs["max"]),
            path=str(info.path),
        )
