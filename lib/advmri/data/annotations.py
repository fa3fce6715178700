"""fastMRI+ annotations: reading, validation, the up/down flip, and box policies.

fastMRI+ boxes are given in pixel coordinates of the ``reconstruction_rss`` image *flipped
up/down* (the annotators' viewer flipped it). On the arrays stored in the HDF5 files::

    y_array = H - y_csv - height        (x unchanged; H = recon height, 320 for fastMRI knee)

Policies (documented and tested):

* **study-level rows** (``study_level == "Yes"``, empty box) carry no location: they are kept in
  :func:`read_annotations` output (``box`` = None) but never yield a box target.
* **boxes outside the image** (negative ``y_csv`` etc.) are clipped to ``[0, H) x [0, W)``;
  a box that clips to nothing is dropped.
* **boxes smaller than the 7-px SSIM window** are scored as they are for MSE/PSNR; for SSIM
  the window box is grown symmetrically around the box centre to at least 7x7 (and clipped),
  see :func:`advmri.core.boxes.ssim_box`.
* **several boxes per slice**: each box is a separate target (one data-set item per box).
* **labels** are stripped of surrounding white space (the release has ``"Joint Effusion "``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

from advmri.core.boxes import to_array_box
from advmri.util.errors import UserError
from advmri.util.paths import project_path

REQUIRED_COLUMNS = ("file", "slice", "study_level", "x", "y", "width", "height", "label")

FASTMRI_PLUS_URL = "https://raw.githubusercontent.com/microsoft/fastmri-plus/{version}/Annotations/knee.csv"
# sha256 of the knee.csv files we know; a fetched file must match.
KNOWN_SHA256 = {
    "640500f": "c1f4a083646cec815b67f005f8d7764313d1b82a028b90c272a4d000330d065b",
}


class AnnotationError(UserError):
    """A fastMRI+ CSV is missing, malformed or cannot be fetched. The message names the file."""

    fix = (
        "Fix the named row or column of the fastMRI+ CSV (or take the published file); "
        "boxes are in flipped 320x320 coordinates."
    )


def read_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """Read a fastMRI+ knee CSV into a clean frame.

    Columns: ``file, slice, study_level (bool), x, y, width, height (Int64, NA for study
    level), label (stripped), row (line index in the file)``. Raises :class:`AnnotationError`
    naming the file for a missing file, unparseable CSV, missing columns or bad values.
    """
    path = project_path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    try:
        df = pd.read_csv(path, dtype={"file": str, "label": str, "study_level": str}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: not a readable CSV ({e})") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise AnnotationError(f"{path}: missing column(s) {missing}; a fastMRI+ CSV has {list(REQUIRED_COLUMNS)}")
    df = df[list(REQUIRED_COLUMNS)].copy()
    df["row"] = range(len(df))
    df["label"] = df["label"].fillna("").str.strip()
    sl = df["study_level"].fillna("No").str.strip().str.lower()
    if not sl.isin(["yes", "no"]).all():
        bad = df.loc[~sl.isin(["yes", "no"]), "study_level"].iloc[0]
        raise AnnotationError(f"{path}: study_level must be Yes/No, got {bad!r}")
    df["study_level"] = sl.eq("yes")
    try:
        df["slice"] = pd.to_numeric(df["slice"], errors="raise").astype("Int64")
        for c in ("x", "y", "width", "height"):
            df[c] = pd.to_numeric(df[c], errors="raise").astype("Int64")
    except (ValueError, TypeError) as e:
        raise AnnotationError(f"{path}: non-integer slice or box value ({e})") from e
    neg = df["slice"].notna() & (df["slice"] < 0)
    if neg.any():
        r = df.loc[neg].iloc[0]
        raise AnnotationError(
            f"{path}: row {int(r['row']) + 2} has slice {int(r['slice'])}; slice indices start at 0 "
            f"(fix the row, or remove it)"
        )
    nobox = ~df["study_level"] & df[["x", "y", "width", "height"]].isna().any(axis=1)
    if nobox.any():
        raise AnnotationError(f"{path}: row {int(df.loc[nobox, 'row'].iloc[0]) + 2} is not study-level but has no box")
    return df


def box_rows(
    df: pd.DataFrame,
    shapes: dict[str, tuple[int, int]] | None = None,
    default_shape=(320, 320),
    report: dict | None = None,
) -> pd.DataFrame:
    """Located boxes only, in array coordinates (``bx, by, bw, bh``), per the policies above.

    ``shapes`` maps file name -> recon (H, W) (fastMRI knee: 320x320). Dropped or merged rows are
    counted by reason in ``report`` (when given): ``study_level`` (no box), ``duplicate`` (exact
    repeats of an earlier row, kept once), ``empty_box`` (width or height <= 0), ``outside_image``
    (clips to nothing); ``clipped`` counts kept boxes that clipping changed.
    """
    rep = report if report is not None else {}
    boxes = df.loc[~df["study_level"]]
    rep["study_level"] = int(len(df) - len(boxes))
    dup = boxes.duplicated(subset=["file", "slice", "x", "y", "width", "height", "label"], keep="first")
    rep["duplicate"] = int(dup.sum())
    boxes = boxes.loc[~dup]
    out, empty, outside, clipped = [], 0, 0, 0
    for r in boxes.itertuples(index=False):
        if int(r.width) <= 0 or int(r.height) <= 0:
            empty += 1
            continue
        shape = (shapes or {}).get(r.file, default_shape)
        b = to_array_box(int(r.x), int(r.y), int(r.width), int(r.height), shape)
        if b is None:
            outside += 1
            continue
        c = (b.w, b.h) != (int(r.width), int(r.height))
        clipped += c
        out.append((r.file, int(r.slice), r.label, b.x, b.y, b.w, b.h, c, r.row))
    rep.update(empty_box=empty, outside_image=outside, clipped=int(clipped))
    return pd.DataFrame(out, columns=["file", "slice", "label", "bx", "by", "bw", "bh", "clipped", "row"])


def fetch_fastmri_plus(
    version: str = "640500f", dest: str | os.PathLike = "data/fastmri_plus", timeout: float = 20
) -> Path:
    """Download the fastMRI+ knee CSV of ``version`` (checksum-verified) or raise a clear error.

    Offline, pass a local copy to :func:`read_annotations` instead (``--annotations PATH``).
    """
    import requests

    dest = Path(dest)
    out = dest / f"knee_{version}.csv"
    if out.is_file():
        return out
    url = FASTMRI_PLUS_URL.format(version=version)
    try:
        resp = requests.get(url, timeout=timeout)
        resp.raise_for_status()
    except requests.RequestException as e:
        raise AnnotationError(
            f"could not download fastMRI+ annotations {version} from {url} ({e.__class__.__name__}). "
            "Offline? Download knee.csv from the fastMRI+ repository elsewhere and pass its local path."
        ) from e
    digest = hashlib.sha256(resp.content).hexdigest()
    want = KNOWN_SHA256.get(version)
    if want is not None and digest != want:
        raise AnnotationError(f"{url}: sha256 {digest} does not match the known {want}; refusing to use it")
    dest.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(resp.content)
    os.replace(tmp, out)
    return out
