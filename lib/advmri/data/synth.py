"""Deterministic synthetic multi-coil knee data set in the exact fastMRI HDF5 format.

``python -m advmri.data.synth --preset tiny|small|fastmri --volumes N --seed S --out DIR``, or a named set
``python -m advmri.data.synth --set train|test|train-large|test-large`` (:data:`SETS`)

Writes ``DIR/multicoil/<file>.h5`` (fastMRI multi-coil layout, see :mod:`advmri.data.fastmri_h5`;
the folder holds nothing else, since ``fastmri.data.SliceDataset`` opens every entry) plus
``DIR/knee.csv`` (fastMRI+ format: boxes in pixel coordinates of the recon image *flipped
up/down*, i.e. ``y_csv = H - y_array - height``) and ``DIR/knee_file_list.csv`` (every file,
no header, as the fastMRI+ release). Each file also holds ``reconstruction_rss_healthy``: the
RSS target of the same volume without lesions (same coils, phase and noise realisation), and
``kspace_healthy``: that twin's k-space (the input of hallucination attacks, ``target: lesion``).

Physics: the magnitude phantom (:mod:`advmri.data.phantom`) gets a smooth background phase and
is multiplied by smooth complex coil sensitivities; k-space is the centred orthonormal FFT of
each coil image plus complex white Gaussian noise of standard deviation
``sigma = mean tissue RSS / snr`` per coil (orthonormal FFT: the same std in image space),
and is zero outside the acquired columns ``padding_left <= c < padding_right``. The field of
view is oversampled 2x along the readout (rows), as in fastMRI knee.

Same preset, seed and volume index -> bit-identical arrays (numpy ``SeedSequence([seed, i])``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from advmri.core import kspace as K
from advmri.data.fastmri_h5 import write_volume
from advmri.data.phantom import LESION_TYPES, Anatomy, Lesion, grid, render_slice, smooth_noise
from advmri.util.atomic import check_writable
from advmri.util.atomic import write_text as atomic_write_text
from advmri.util.errors import check_choice, check_range, cli, prog
from advmri.util.paths import project_path

CSV_COLUMNS = ["file", "slice", "study_level", "x", "y", "width", "height", "label"]
# label strings exactly as written in the fastMRI+ knee file (note the trailing space)
CSV_LABEL = {lab: lab for lab in LESION_TYPES} | {"Joint Effusion": "Joint Effusion "}


@dataclass(frozen=True)
class Preset:
    """Geometry of a synthetic data set. ``kspace`` = (rows, cols): rows are 2x the recon size."""

    name: str
    coils: int
    kspace: tuple[int, int]
    recon: int
    padding: tuple[int, int]
    slices: int
    snr: float = 40.0


PRESETS = {
    "tiny": Preset("tiny", coils=4, kspace=(96, 64), recon=48, padding=(3, 61), slices=4),
    "small": Preset("small", coils=8, kspace=(256, 160), recon=128, padding=(8, 152), slices=10),
    "fastmri": Preset("fastmri", coils=15, kspace=(640, 368), recon=320, padding=(17, 351), slices=12),
}


@dataclass(frozen=True)
class NamedSet:
    """A data set of the project: preset, volume count, seed and folder (relative to the project root)."""

    preset: str
    volumes: int
    seed: int
    out: str
    purpose: str


# Seed 0 trains, seed 1 tests, and no seed is used for both; volumes are bit-identical per (seed, index), so a
# larger set of a seed begins with the smaller one (train-large holds train, test-large holds test).
SETS = {
    "train": NamedSet("small", 20, 0, "data/synthetic/small/train", "the first small models (every 5th validates)"),
    "test": NamedSet("small", 28, 1, "data/synthetic/small/test", "the article's test set (93 located boxes)"),
    "train-large": NamedSet(
        "small", 150, 0, "data/synthetic/small/train-large", "the model zoo: 120 train, every 5th (30) validates"
    ),
    "test-large": NamedSet("small", 64, 1, "data/synthetic/small/test-large", "the zoo's test set (>= 200 boxes)"),
}


def coil_maps(rng: np.random.Generator, nc: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth complex sensitivities of ``nc`` loops on two rings around the knee. ``(nc, rows, cols)``.

    Magnitude falls off like a small loop's field, ``(1 + d^2/r0^2)^-1.5``; phase is a coil
    constant plus a gentle linear ramp. Normalised so that the RSS of the maps peaks at 1.
    """
    k = np.arange(nc)
    ang = 2 * np.pi * k / nc + rng.uniform(-0.15, 0.15, nc)
    z = np.where(k % 2 == 0, 0.35, -0.35) if nc >= 6 else np.zeros(nc)
    radius = 0.95 * rng.uniform(0.95, 1.05)
    cx, cy = radius * np.cos(ang), 1.3 * radius * np.sin(ang)
    r0 = 0.65
    maps = []
    for i in range(nc):
        d2 = (x - cx[i]) ** 2 + (y - cy[i]) ** 2 + z[i] ** 2
        mag = (1.0 + d2 / r0**2) ** -1.5
        ph = rng.uniform(-np.pi, np.pi) + rng.normal(0, 0.6) * (x - cx[i]) + rng.normal(0, 0.6) * (y - cy[i])
        maps.append(mag * np.exp(1j * ph))
    out = np.stack(maps).astype(np.complex64)  # (nc, rows, cols) complex
    return out / np.sqrt((np.abs(out) ** 2).sum(0)).max()


def _choose_lesions(rng: np.random.Generator, slices: int) -> list[Lesion]:
    n = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.3, 0.35, 0.25]))
    out: list[Lesion] = []
    used = set()
    lo, hi = int(round(0.2 * slices)), max(int(round(0.8 * slices)), int(round(0.2 * slices)) + 1)
    while len(out) < n:
        label = LESION_TYPES[int(rng.integers(len(LESION_TYPES)))]
        side = int(rng.choice([-1, 1]))
        if (label, side) in used:
            continue
        used.add((label, side))
        s0 = int(rng.integers(lo, hi))
        s1 = min(slices, s0 + int(rng.integers(1, 4)))
        out.append(Lesion(label, side, s0, s1, float(rng.uniform(0.8, 1.3))))
    return out


def _box(support: np.ndarray, recon: int, margin: int) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x, y, w, h)`` in *array* coordinates of a lesion's support in the crop."""
    if support.max() <= 1e-3:
        return None
    mask = support > 0.25 * support.max()
    rows, cols = np.nonzero(mask)
    y0, y1 = max(0, rows.min() - margin), min(recon, rows.max() + 1 + margin)
    x0, x1 = max(0, cols.min() - margin), min(recon, cols.max() + 1 + margin)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


@dataclass
class _Draws:
    """The random draws of a volume that precede its slices, in the generator's order (``rng`` continues)."""

    rng: np.random.Generator
    x: np.ndarray
    y: np.ndarray
    anatomy: Anatomy
    marrow: np.ndarray
    muscle: np.ndarray
    lesions: list[Lesion]
    maps: torch.Tensor  # (coils, rows, cols) complex


def _draws(preset: Preset, seed: int, index: int) -> _Draws:
    """Anatomy, textures, lesions and coil sensitivities of volume ``index`` (seeded by ``(seed, index)``)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    rows, cols = preset.kspace
    S, H = preset.slices, preset.recon
    x, y = grid(rows, cols, H)
    an = Anatomy.random(rng)
    sig = H / 128.0
    marrow = smooth_noise(rng, (S, rows, cols), (0.8, 1.2 * sig, 1.2 * sig))
    muscle = smooth_noise(rng, (S, rows, cols), (0.8, 10 * sig, 1.0 * sig))
    lesions = _choose_lesions(rng, S)
    maps = torch.from_numpy(coil_maps(rng, preset.coils, x, y))  # (coils, rows, cols) complex
    return _Draws(rng, x, y, an, marrow, muscle, lesions, maps)


def true_maps(path: str | Path) -> torch.Tensor:
    """The coil sensitivities a synthetic file was made with, ``(coils, rows, cols)`` complex (one set for all
    slices; full field of view, RSS peaking at 1), regenerated from its attributes (preset geometry, seed) and
    the volume index in its name. Raises ``ValueError`` for a file this generator did not write."""
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as f:
        if "synthetic_seed" not in f.attrs:
            raise ValueError(f"{path}: not a synthetic volume (no synthetic_seed attribute); estimate its maps")
        seed = int(f.attrs["synthetic_seed"])
        _, coils, rows, cols = f["kspace"].shape
        slices = f["kspace"].shape[0]
        recon = f["reconstruction_rss"].shape[-1]
    index = int(path.stem.rsplit("_", 1)[-1])
    preset = Preset("maps", coils, (rows, cols), recon, (0, cols), slices)
    return _draws(preset, seed, index).maps


def generate_volume(preset: Preset, seed: int, index: int) -> dict:
    """Generate one volume. Returns arrays (kspace, targets) and annotation rows (fastMRI+ format)."""
    d = _draws(preset, seed, index)
    rng, x, y, an, marrow, muscle, lesions, maps = d.rng, d.x, d.y, d.anatomy, d.marrow, d.muscle, d.lesions, d.maps
    rows, cols = preset.kspace
    S, H = preset.slices, preset.recon
    pc = rng.normal(0, 0.4, 6)
    colmask = K.column_mask(cols, *preset.padding)
    edge = 0.7 / (H / 2)
    name = f"file_synth{seed}_{index:04d}"

    kspace = np.zeros((S, preset.coils, rows, cols), np.complex64)
    target = np.zeros((S, H, H), np.float32)
    healthy_t = np.zeros((S, H, H), np.float32)
    kspace_h = np.zeros_like(kspace)
    sigmas = np.zeros(S)  # the complex noise's standard deviation per slice (each part: sigma / sqrt 2)
    ann = []
    for s in range(S):
        t = (s + 0.5) / S - 0.5
        healthy, sick, supports = render_slice(x, y, an, t, marrow[s], muscle[s], lesions, s, edge)
        phase = pc[0] + pc[1] * x + pc[2] * y + pc[3] * x * y + pc[4] * (x**2 - y**2) + pc[5] * t
        ph = torch.from_numpy(np.exp(1j * phase).astype(np.complex64))
        coil_h = maps * (torch.from_numpy(healthy) * ph)  # (coils, rows, cols) complex
        coil_s = maps * (torch.from_numpy(sick) * ph)
        signal = K.center_crop(K.rss(coil_s), (H, H))
        sigma = float(signal[signal > 0.1 * signal.max()].mean()) / preset.snr
        sigmas[s] = sigma
        g = torch.from_numpy(rng.standard_normal((2, preset.coils, rows, cols)).astype(np.float32))
        noise = torch.complex(g[0], g[1]) * (sigma / np.sqrt(2.0))
        k_s = K.apply_column_mask(K.fft2c(coil_s) + noise, colmask)
        k_h = K.apply_column_mask(K.fft2c(coil_h) + noise, colmask)
        kspace[s] = k_s.numpy()
        kspace_h[s] = k_h.numpy()
        target[s] = K.rss_recon(k_s, (H, H)).numpy()
        healthy_t[s] = K.rss_recon(k_h, (H, H)).numpy()
        for les, sup in supports:
            sup_c = K.center_crop(torch.from_numpy(sup), (H, H)).numpy()
            box = _box(sup_c, H, margin=max(1, H // 64))
            if box is None:
                continue
            bx, by, bw, bh = box
            ann.append([name, s, "No", bx, H - by - bh, bw, bh, CSV_LABEL[les.label]])
    if any(les.label == "Joint Effusion" for les in lesions):
        ann.append([name, 0, "Yes", None, None, None, None, CSV_LABEL["Joint Effusion"]])
    return dict(
        name=name,
        kspace=kspace,
        target=target,
        healthy=healthy_t,
        kspace_healthy=kspace_h,
        annotations=ann,
        noise_sigma=sigmas,
        anatomy=an,
        lesions=lesions,
    )


def generate_dataset(
    preset: Preset | str,
    volumes: int,
    seed: int,
    out: str | Path,
    first_index: int = 0,
    progress: bool = True,
    force: bool = False,
) -> list[Path]:
    """Generate ``volumes`` files into ``out/multicoil`` plus ``out/knee.csv`` and ``out/knee_file_list.csv``.

    A folder that already holds a data set is refused unless ``force``; then its volumes and CSVs
    are removed first, so no old volume survives beside the new ``knee.csv``.
    """
    if isinstance(preset, str):
        check_choice("preset", preset, sorted(PRESETS))
        preset = PRESETS[preset]
    check_range("volumes", volumes, lo=1, integer=True)
    check_range("slices", preset.slices, lo=1, integer=True)
    check_range("seed", seed, lo=0, integer=True)
    out = project_path(out)
    h5dir = out / "multicoil"
    old = sorted(h5dir.glob("*.h5")) + [p for p in (out / "knee.csv", out / "knee_file_list.csv") if p.is_file()]
    if old and not force:
        raise FileExistsError(f"{out}: already holds a data set ({len(old)} files); pass --force to replace it")
    for p in old:
        p.unlink()
    check_writable(out / "knee.csv", "out")
    h5dir.mkdir(parents=True, exist_ok=True)
    files, rows = [], []
    for i in tqdm(range(first_index, first_index + volumes), desc=f"synth {preset.name}", disable=not progress):
        vol = generate_volume(preset, seed, i)
        path = h5dir / f"{vol['name']}.h5"
        write_volume(
            path,
            vol["kspace"],
            vol["target"],
            preset.padding,
            patient_id=hashlib.sha256(vol["name"].encode()).hexdigest()[:16],
            extra_datasets={"reconstruction_rss_healthy": vol["healthy"], "kspace_healthy": vol["kspace_healthy"]},
            extra_attrs={"synthetic_preset": preset.name, "synthetic_seed": seed, "synthetic_snr": preset.snr},
        )
        files.append(path)
        rows += vol["annotations"]
    df = pd.DataFrame(rows, columns=CSV_COLUMNS)
    for c in ("x", "y", "width", "height"):
        df[c] = df[c].astype("Int64")
    atomic_write_text(out / "knee_file_list.csv", "".join(f"{p.stem}\n" for p in files))
    atomic_write_text(out / "knee.csv", df.to_csv(index=False))  # last: its presence marks a complete set
    return files


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog("advmri.data.synth"), description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=sorted(SETS), default=None, help="a named set: its preset, volumes, seed, folder")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--volumes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--slices", type=int, default=None, help="override the preset's slices per volume")
    ap.add_argument("--out", default=None, help="output folder (required without --set)")
    ap.add_argument("--force", action="store_true", help="replace a data set already in --out")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    a = ap.parse_args(argv)
    if a.set is not None:
        named = SETS[a.set]
        a.preset, a.volumes, a.seed, a.out = named.preset, named.volumes, named.seed, a.out or named.out
    if a.out is None:
        ap.error("--out is required (or name a --set)")
    if a.slices is not None:
        check_range("slices", a.slices, lo=1, integer=True)
    preset = PRESETS[a.preset] if a.slices is None else replace(PRESETS[a.preset], slices=a.slices)
    t0 = time.perf_counter()
    files = generate_dataset(preset, a.volumes, a.seed, project_path(a.out), force=a.force)
    dt = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in files)
    print(
        f"wrote {len(files)} volumes ({asdict(preset)}) to {a.out}: "
        f"{dt / max(len(files), 1):.2f} s/volume, {size / max(len(files), 1) / 2**20:.1f} MiB/volume"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
