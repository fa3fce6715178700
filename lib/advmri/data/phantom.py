"""Knee-like coronal anatomy on a pixel grid (numpy), with insertable fastMRI+ lesion types.

Coordinates are normalised so that the 320x320-style reconstruction crop spans ``[-1, 1]`` in
both directions: ``x`` grows to the right (columns), ``y`` grows downwards (rows), exactly as the
stored ``reconstruction_rss`` arrays are indexed. The full image grid is larger (readout
oversampled 2x: rows span ``[-2, 2]``; columns span ``[-W/H, W/H]``).

Intensities are proton-density-like (no fat saturation): fat and marrow bright, muscle grey,
cartilage intermediate, fluid bright, menisci and cortical bone dark. Subchondral edema hence
appears *darker* than normal marrow, effusion and cartilage defects bright.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

LESION_TYPES = (
    "Meniscus Tear",
    "Cartilage - Partial Thickness loss/defect",
    "Bone- Subchondral edema",
    "Joint Effusion",
)


@dataclass
class Anatomy:
    """Per-volume anatomical and contrast parameters (random within physiological-looking ranges)."""

    leg_half_width: float = 0.62
    fat_thickness: float = 0.07
    bone_scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)  # (x, y)
    tilt_rad: float = 0.0
    joint_gap: float = 0.045
    cartilage: float = 0.028
    contrast: dict[str, float] = field(
        default_factory=lambda: dict(
            fat=1.0, marrow=0.82, cortex=0.06, cartilage=0.55, fluid=0.95, meniscus=0.07, muscle=0.36, tendon=0.1
        )
    )

    @staticmethod
    def random(rng: np.random.Generator) -> Anatomy:
        c = dict(fat=1.0, marrow=0.82, cortex=0.06, cartilage=0.55, fluid=0.95, meniscus=0.07, muscle=0.36, tendon=0.1)
        c = {k: float(v * rng.uniform(0.9, 1.1)) for k, v in c.items()}
        return Anatomy(
            leg_half_width=float(rng.uniform(0.56, 0.7)),
            fat_thickness=float(rng.uniform(0.04, 0.1)),
            bone_scale=float(rng.uniform(0.9, 1.1)),
            shift=(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.08, 0.08))),
            tilt_rad=float(np.deg2rad(rng.uniform(-4, 4))),
            joint_gap=float(rng.uniform(0.035, 0.055)),
            cartilage=float(rng.uniform(0.022, 0.032)),
            contrast=c,
        )


@dataclass
class Lesion:
    """A lesion of a fastMRI+ label type, centred at ``(x, y)`` (normalised) on slices ``[s0, s1)``."""

    label: str
    side: int  # -1 = left of image, +1 = right
    s0: int
    s1: int
    size: float  # relative size factor (0.7 .. 1.4)


# --------------------------------------------------------------------------------------------
# signed distance helpers (negative inside)
def _sd_ellipse(x, y, cx, cy, a, b):
    return (np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2) - 1.0) * min(a, b)


def _sd_box(x, y, cx, cy, hx, hy, r=0.0):
    qx = np.abs(x - cx) - hx + r
    qy = np.abs(y - cy) - hy + r
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r


def _smin(a, b, k):
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _fill(sd, edge):
    """Soft indicator of ``sd < 0`` with an edge width of ``edge`` (about one pixel)."""
    return 0.5 * (1.0 - np.tanh(sd / edge))


def grid(rows: int, cols: int, recon: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ``(x, y)`` coordinates of a ``rows x cols`` image whose centre crop is ``recon``."""
    half = recon / 2.0
    y = (np.arange(rows, dtype=np.float32) - rows / 2 + 0.5) / half
    x = (np.arange(cols, dtype=np.float32) - cols / 2 + 0.5) / half
    return np.meshgrid(x, y)  # each (rows, cols)


def smooth_noise(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field smoothed with ``sigma`` (pixels, per axis)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-8)


def _bones(x, y, an: Anatomy, f: float):
    """Signed distances of femur and tibia; ``f`` in (0, 1] shrinks the bones towards the volume edges."""
    s = an.bone_scale * (0.45 + 0.55 * f)
    g = an.joint_gap / 2 + an.cartilage
    # femur: shaft + metaphysis + two condyles, minus the intercondylar notch
    cond_r = 0.17 * s
    cond_y = -cond_r - g
    femur = _sd_box(x, y, 0.0, -1.1, 0.2 * s, 0.9, r=0.08)
    femur = _smin(femur, _sd_ellipse(x, y, 0.0, cond_y - 0.22 * s, 0.36 * s, 0.28 * s), 0.08)
    for side in (-1, 1):
        femur = _smin(femur, _sd_ellipse(x, y, side * 0.2 * s, cond_y, 0.19 * s, cond_r), 0.05)
    notch = _sd_ellipse(x, y, 0.0, -g - 0.02, 0.055 * s, 0.11 * s * f)
    femur = np.maximum(femur, -notch)
    # tibia: plateau + metaphysis + shaft
    top = g
    tibia = _sd_box(x, y, 0.0, top + 0.11 * s, 0.42 * s, 0.11 * s, r=0.035)
    tibia = _smin(tibia, _sd_ellipse(x, y, 0.0, top + 0.3 * s, 0.34 * s, 0.25 * s), 0.08)
    tibia = _smin(tibia, _sd_box(x, y, 0.03, 1.2, 0.19 * s, 0.9, r=0.08), 0.08)
    return femur, tibia, cond_y, cond_r, s


def _anatomy_frame(x: np.ndarray, y: np.ndarray, an: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates in the anatomy's frame: shifted by ``an.shift``, then rotated by ``an.tilt_rad``."""
    ct = np.cos(an.tilt_rad)
    st = np.sin(an.tilt_rad)
    xs, ys = x - an.shift[0], y - an.shift[1]
    return ct * xs + st * ys, -st * xs + ct * ys


def _soft_tissue(
    x: np.ndarray, y: np.ndarray, an: Anatomy, f: float, muscle_tex: np.ndarray, edge: float
) -> np.ndarray:
    """Leg (muscle inside a subcutaneous fat layer) and the collateral ligaments; zero outside the leg.

    ``f`` in (0, 1] narrows the leg towards the volume edges, ``edge`` is the soft edge width (:func:`_fill`).
    """
    c = an.contrast
    # leg: muscle inside a subcutaneous fat layer, slightly wider around the joint
    hw = an.leg_half_width * (1.0 + 0.08 * np.exp(-(y**2) / 0.3)) * (0.85 + 0.15 * f)
    leg = np.abs(x) / hw - 1.0
    skin = _fill(leg * hw, edge)
    muscle_in = _fill((leg * hw + an.fat_thickness), edge)
    img = c["fat"] * (skin - muscle_in) + c["muscle"] * muscle_in * (1.0 + 0.12 * muscle_tex)
    # collateral ligaments / tendons: dark bands at the joint margins
    for side in (-1, 1):
        lig = _sd_box(x, y, side * 0.47 * an.bone_scale, 0.0, 0.012, 0.25, r=0.01)
        img = img * (1 - _fill(lig, edge)) + c["tendon"] * _fill(lig, edge)
    return img


def _joint(
    img: np.ndarray, x: np.ndarray, y: np.ndarray, an: Anatomy, bones: tuple, marrow_tex: np.ndarray, edge: float
) -> np.ndarray:
    """Paint joint fluid, menisci, cartilage and bone (cortex, textured marrow) over ``img``.

    ``bones`` is :func:`_bones`' ``(femur, tibia, cond_y, cond_r, s)``.
    """
    c = an.contrast
    femur, tibia, cond_y, cond_r, s = bones
    # joint fluid in the joint space and recesses
    joint = _sd_box(x, y, 0.0, 0.0, 0.42 * s, an.joint_gap / 2 + an.cartilage + 0.01, r=0.02)
    w = _fill(joint, edge)
    img = img * (1 - w) + c["fluid"] * 0.85 * w
    # menisci: dark wedges at the joint margins
    for side in (-1, 1):
        men = _sd_ellipse(x, y, side * 0.37 * s, 0.0, 0.085 * s, an.joint_gap / 2 + an.cartilage)
        w = _fill(men, edge)
        img = img * (1 - w) + c["meniscus"] * w
    # cartilage: a layer around the distal femur and the tibial plateau
    for bone, keep in ((femur, y > cond_y - 0.02), (tibia, y < an.joint_gap / 2 + an.cartilage + 0.06 * s)):
        w = _fill(bone - an.cartilage, edge) * keep
        img = img * (1 - w) + c["cartilage"] * w
    # bone: dark cortex, textured marrow
    for bone in (femur, tibia):
        wb = _fill(bone, edge)
        wm = _fill(bone + 0.018, edge)
        img = img * (1 - wb) + c["cortex"] * (wb - wm) + c["marrow"] * (1.0 + 0.12 * marrow_tex) * wm
    return img


def _insert_lesion(
    sick: np.ndarray, les: Lesion, x: np.ndarray, y: np.ndarray, an: Anatomy, bones: tuple, edge: float
) -> np.ndarray:
    """``sick`` with the lesion ``les`` painted in (a new array). ``bones`` as in :func:`_joint`."""
    c = an.contrast
    femur, tibia, cond_y, cond_r, s = bones
    k = les.size
    sx = les.side
    if les.label == "Meniscus Tear":
        # a bright oblique line through the meniscus (fluid signal inside the dark meniscus)
        cx, cy = sx * 0.37 * s, 0.0
        u = (x - cx) * np.cos(0.5) + (y - cy) * np.sin(0.5) * sx
        v = -(x - cx) * np.sin(0.5) * sx + (y - cy) * np.cos(0.5)
        sd = _sd_box(u, v, 0.0, 0.0, 0.06 * s * k, 0.006, r=0.004)
        men = _fill(_sd_ellipse(x, y, cx, cy, 0.085 * s, an.joint_gap / 2 + an.cartilage), edge)
        w = _fill(sd, edge * 1.2) * men
        sick = sick * (1 - w) + c["fluid"] * w
    elif les.label == "Cartilage - Partial Thickness loss/defect":
        # fluid filling a notch in the femoral condyle cartilage
        cx = sx * 0.2 * s
        cy = cond_y + cond_r + an.cartilage * 0.8
        sd = _sd_ellipse(x, y, cx, cy, 0.045 * k, an.cartilage * 0.8)
        w = _fill(sd, edge) * _fill(femur - an.cartilage, edge) * (1 - _fill(femur, edge))
        sick = sick * (1 - w) + c["fluid"] * w
    elif les.label == "Bone- Subchondral edema":
        # ill-defined low-signal marrow region under the tibial plateau
        cx, cy = sx * 0.2 * s, an.joint_gap / 2 + an.cartilage + 0.07 * s
        r = ((x - cx) / (0.08 * k)) ** 2 + ((y - cy) / (0.05 * k)) ** 2
        w = np.exp(-r * 1.5) * _fill(tibia + 0.018, edge)
        sick = sick * (1 - 0.6 * w)
    elif les.label == "Joint Effusion":
        # distended recess lateral to the joint, fluid signal
        cx, cy = sx * 0.5 * an.bone_scale, -0.12
        sd = _sd_ellipse(x, y, cx, cy, 0.06 * k, 0.14 * k)
        w = _fill(sd, edge) * (1 - _fill(femur, edge))
        sick = sick * (1 - w) + c["fluid"] * w
    else:  # pragma: no cover - guarded by LESION_TYPES
        raise ValueError(f"unknown lesion type {les.label!r}")
    return sick


def render_slice(
    x: np.ndarray,
    y: np.ndarray,
    an: Anatomy,
    t: float,
    marrow_tex: np.ndarray,
    muscle_tex: np.ndarray,
    lesions: list[Lesion],
    slice_idx: int,
    edge: float,
) -> tuple[np.ndarray, np.ndarray, list[tuple[Lesion, np.ndarray]]]:
    """Render one coronal slice at through-plane position ``t`` in ``[-0.5, 0.5]``.

    Returns ``(healthy, with_lesions, [(lesion, support), ...])`` magnitude images on the grid
    (rows, cols) float32, and the soft support of each lesion present on this slice.
    """
    x, y = _anatomy_frame(x, y, an)
    f = float(np.sqrt(max(0.0, 1.0 - (t / 0.58) ** 2)))
    img = _soft_tissue(x, y, an, f, muscle_tex, edge)
    bones = _bones(x, y, an, f)
    img = _joint(img, x, y, an, bones, marrow_tex, edge)

    healthy = img.astype(np.float32)
    sick = healthy.copy()
    supports = []
    for les in lesions:
        if not les.s0 <= slice_idx < les.s1:
            continue
        before = sick.copy()
        sick = _insert_lesion(sick, les, x, y, an, bones, edge)
        supports.append((les, np.abs(sick - before)))
    return healthy, sick.astype(np.float32), supports
