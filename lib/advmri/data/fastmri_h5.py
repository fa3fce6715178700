"""fastMRI multi-coil HDF5 files: writing (with a real ISMRMRD header) and validated reading.

Layout (as in the fastMRI knee multi-coil release):

* ``kspace``: ``(slices, coils, rows, cols)`` complex64, rows = readout (2x oversampled);
* ``reconstruction_rss``: ``(slices, H, W)`` float32, the RSS of the fully sampled coil images,
  centre-cropped to the recon size;
* ``ismrmrd_header``: ISMRMRD XML; ``encoding/encodedSpace/matrixSize`` = (rows, cols, 1),
  ``encoding/reconSpace/matrixSize`` = (H, W, 1), ``encodingLimits/kspace_encoding_step_1``
  gives the acquired phase-encoding lines, from which fastMRI derives ``padding_left/right``;
* attrs ``acquisition``, ``max``, ``norm``, ``patient_id`` (+ ``padding_left``,
  ``padding_right``, ``encoding_size``, ``recon_size`` for convenience).

Synthetic files add ``reconstruction_rss_healthy`` (the lesion-free twin target) and ``kspace_healthy``
(the twin's k-space).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from advmri.util.atomic import atomic_path
from advmri.util.errors import UserError

ISMRMRD_NS = "http://www.ismrm.org/ISMRMRD"


class DataFileError(UserError):
    """A data file is missing, unreadable or not in the fastMRI layout. The message names the file."""

    fix = (
        "Replace the named .h5 file (truncated or not a fastMRI multi-coil file), or regenerate the embedded set "
        "(`python -m advmri.data.synth ... --force`)."
    )


def ismrmrd_header(
    encoding_size: tuple[int, int],
    recon_size: tuple[int, int],
    padding_left: int,
    padding_right: int,
    num_coils: int,
    num_slices: int,
    fov_mm: tuple[float, float] = (280.0, 140.0),
) -> bytes:
    """ISMRMRD XML header in the form fastMRI's ``SliceDataset`` parses.

    fastMRI computes ``padding_left = enc_cols // 2 - center`` and
    ``padding_right = padding_left + maximum + 1`` from ``kspace_encoding_step_1``; we invert that.
    """
    rows, cols = encoding_size
    h, w = recon_size
    acquired = padding_right - padding_left
    center = cols // 2 - padding_left
    maximum = acquired - 1
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="{ISMRMRD_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <studyInformation><studyTime>00:00:00</studyTime></studyInformation>
  <measurementInformation><patientPosition>HFS</patientPosition><protocolName>advmri_synthetic_CORPD_FBK</protocolName></measurementInformation>
  <acquisitionSystemInformation>
    <systemVendor>advmri</systemVendor><systemModel>synthetic</systemModel>
    <systemFieldStrength_T>3.0</systemFieldStrength_T><receiverChannels>{num_coils}</receiverChannels>
  </acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>127744000</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{rows}</x><y>{cols}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{fov_mm[0]:.1f}</x><y>{fov_mm[1] * cols / max(h, 1) * 2:.1f}</y><z>3.0</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{h}</x><y>{w}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{fov_mm[1]:.1f}</x><y>{fov_mm[1]:.1f}</y><z>3.0</z></fieldOfView_mm>
    </reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{maximum}</maximum><center>{center}</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>{num_slices - 1}</maximum><center>0</center></slice>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>
""".encode()


def write_volume(
    path: str | os.PathLike,
    kspace: np.ndarray,
    target: np.ndarray,
    padding: tuple[int, int],
    patient_id: str,
    acquisition: str = "CORPD_FBK",
    extra_datasets: dict[str, np.ndarray] | None = None,
    extra_attrs: dict | None = None,
) -> None:
    """Write one volume atomically (to ``path + '.tmp'``, then rename).

    ``kspace`` ``(slices, coils, rows, cols)`` complex64, ``target`` ``(slices, H, W)`` float32.
    """
    path = Path(path)
    s, nc, rows, cols = kspace.shape
    h, w = target.shape[-2:]
    if s < 1:
        raise DataFileError(f"{path}: a volume needs at least one slice, got {s}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as hf:
        hf.create_dataset("kspace", data=kspace.astype(np.complex64))
        hf.create_dataset("reconstruction_rss", data=target.astype(np.float32))
        for k, v in (extra_datasets or {}).items():
            hf.create_dataset(k, data=v)
        hf.create_dataset(
            "ismrmrd_header",
            data=np.bytes_(ismrmrd_header((rows, cols), (h, w), padding[0], padding[1], nc, s)),
        )
        hf.attrs["acquisition"] = acquisition
        hf.attrs["max"] = float(target.max())
        hf.attrs["norm"] = float(np.linalg.norm(target))
        hf.attrs["patient_id"] = patient_id
        hf.attrs["padding_left"] = int(padding[0])
        hf.attrs["padding_right"] = int(padding[1])
        hf.attrs["encoding_size"] = np.array([rows, cols, 1], dtype=np.int64)
        hf.attrs["recon_size"] = np.array([h, w, 1], dtype=np.int64)
        for k, v in (extra_attrs or {}).items():
            hf.attrs[k] = v


@dataclass(frozen=True)
class VolumeInfo:
    """Metadata of one validated fastMRI volume."""

    path: Path
    num_slices: int
    num_coils: int
    encoding_size: tuple[int, int]
    recon_size: tuple[int, int]
    padding_left: int
    padding_right: int
    has_target: bool
    has_healthy: bool  # reconstruction_rss_healthy: the lesion-free twin's target (synthetic data)
    has_healthy_kspace: bool = False  # kspace_healthy: the twin's k-space (synthetic data)


def _query(root: etree.Element, *names: str) -> str:
    node = root
    for n in names:
        child = node.find(f"{{{ISMRMRD_NS}}}{n}")
        if child is None:
            raise KeyError("/".join(names))
        node = child
    return node.text or ""


def _matrix_size(root: etree.Element, space: str) -> tuple[int, int]:
    """The ``(x, y)`` matrix size of the header's ``encodedSpace`` or ``reconSpace``."""
    x, y = (int(_query(root, "encoding", space, "matrixSize", a)) for a in ("x", "y"))
    return x, y


def _check_kspace(path: Path, hf: h5py.File) -> h5py.Dataset:
    """The file's ``kspace`` dataset, checked to be 4-D ``(slices, coils, rows, cols)``, complex, non-empty."""
    if "kspace" not in hf:
        raise DataFileError(f"{path}: missing dataset 'kspace' (has {sorted(hf.keys())})")
    ks = hf["kspace"]
    if ks.ndim != 4:
        raise DataFileError(
            f"{path}: 'kspace' must be 4-D (slices, coils, rows, cols) for multi-coil data, got shape {ks.shape}"
        )
    if not np.issubdtype(ks.dtype, np.complexfloating):
        raise DataFileError(f"{path}: 'kspace' must be complex, got dtype {ks.dtype}")
    if ks.shape[0] < 1:
        raise DataFileError(f"{path}: 'kspace' has no slices (shape {ks.shape})")
    return ks


def _header_geometry(path: Path, hf: h5py.File, width: int) -> tuple[tuple[int, int], int, int]:
    """From the ``ismrmrd_header``: the recon size ``(x, y)`` and the acquired columns ``[pl, pr)``
    (fastMRI's ``padding_left/right``), checked to lie within the k-space ``width``."""
    if "ismrmrd_header" not in hf:
        raise DataFileError(f"{path}: missing dataset 'ismrmrd_header'")
    try:
        root = etree.fromstring(hf["ismrmrd_header"][()])
        enc = _matrix_size(root, "encodedSpace")
        rec = _matrix_size(root, "reconSpace")
        center = int(_query(root, "encoding", "encodingLimits", "kspace_encoding_step_1", "center"))
        maximum = int(_query(root, "encoding", "encodingLimits", "kspace_encoding_step_1", "maximum"))
    except (etree.ParseError, KeyError, ValueError) as e:
        raise DataFileError(f"{path}: unreadable ismrmrd_header ({e})") from e
    pl = enc[1] // 2 - center
    pr = pl + maximum + 1
    if not 0 <= pl < pr <= width:
        raise DataFileError(f"{path}: acquired columns [{pl}, {pr}) outside k-space width {width}")
    return rec, pl, pr


def _check_target(path: Path, hf: h5py.File, num_slices: int) -> bool:
    """Whether the file has a ``reconstruction_rss``; if so, checked to be 3-D with ``num_slices`` images and
    to come with the ``max`` attribute."""
    has_target = "reconstruction_rss" in hf
    if has_target:
        tg = hf["reconstruction_rss"]
        if tg.ndim != 3 or tg.shape[0] != num_slices:
            raise DataFileError(f"{path}: 'reconstruction_rss' shape {tg.shape} does not match {num_slices} slices")
        if "max" not in hf.attrs:
            raise DataFileError(
                f"{path}: missing attribute 'max' (fastMRI's data range of "
                f"'reconstruction_rss'; has {sorted(hf.attrs)})"
            )
    return has_target


def read_info(path: str | os.PathLike, check_finite: bool = False) -> VolumeInfo:
    """Open and validate a fastMRI multi-coil file; raise :class:`DataFileError` naming the file.

    Checks: readable HDF5, a 4-D complex ``kspace``, a parseable ``ismrmrd_header`` and, if
    present, a 3-D ``reconstruction_rss`` with one image per slice. With ``check_finite`` the
    whole k-space is scanned for NaN/Inf (slice readers check each slice they load anyway).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        hf = h5py.File(path, "r")
    except OSError as e:
        raise DataFileError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {e}") from e
    with hf:
        ks = _check_kspace(path, hf)
        rec, pl, pr = _header_geometry(path, hf, ks.shape[-1])
        has_target = _check_target(path, hf, ks.shape[0])
        if check_finite:
            for i in range(ks.shape[0]):
                if not np.isfinite(ks[i]).all():
                    raise DataFileError(f"{path}: 'kspace' slice {i} contains NaN or Inf")
        return VolumeInfo(
            path=path,
            num_slices=int(ks.shape[0]),
            num_coils=int(ks.shape[1]),
            encoding_size=(int(ks.shape[2]), int(ks.shape[3])),
            recon_size=(int(rec[0]), int(rec[1])),
            padding_left=int(pl),
            padding_right=int(pr),
            has_target=has_target,
            has_healthy="reconstruction_rss_healthy" in hf,
            has_healthy_kspace="kspace_healthy" in hf and hf["kspace_healthy"].shape == ks.shape,
        )
