"""Adversarial rotation: worst case over small in-plane rotations of the imaged object.

Pipeline (Morshuis et al. 2022), for each angle ``theta``:

1. coil images ``x = ifft2c(k)`` (complex, full FOV);
2. rotate them by ``theta``: 2x bicubic upsampling, reflect padding, bilinear rotation about the
   image centre, crop, 2x bicubic downsampling (not antialiased, as the reference ran; see
   :func:`rotate` for the antialiased and the exact Fourier variants) -- real and imaginary parts
   alike, with torch's ``interpolate``/``grid_sample`` only;
3. ``k' = fft2c(x_rot)``, keep the acquired columns, undersample with the slice's mask;
4. reconstruct, rotate the magnitude output back by ``-theta`` with the same operator;
5. score inside the box against the *unrotated* clean target.

Angles are positive counter-clockwise in the displayed image (rows downwards). All angles of a
slice go through the model as one batch (chunked to bound memory) -- no per-angle loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from advmri.attacks.common import TARGETS, TargetBatch, box_scores
from advmri.core import kspace as K
from advmri.models.networks import Reconstructor
from advmri.util.errors import ParameterError, check_choice, check_range
from advmri.util.perf import run_chunked
from advmri.util.schema import option


def angle_grid(max_deg: float = 4.9, step: float = 0.1) -> tuple[float, ...]:
    """Reference grid: ``-max..max`` in ``step`` increments (99 angles for 4.9/0.1), including 0."""
    n = int(round(max_deg / step))
    return tuple(round(i * step, 6) for i in range(-n, n + 1))


INTERPOLATIONS = ("reference", "antialias", "fourier")
FRAMES = ("coils", "object")  # what turns: the coil images (the paper's) or the object under fixed coils (motion)
MAPS = ("synthetic", "espirit")  # the fixed sensitivities of frame="object" (advmri.attacks.motion.maps_for)


@dataclass
class RotationConfig:
    """Rotation attack parameters. Defaults = the paper's reference settings."""

    max_angle: float = option(4.9, "the angle grid spans -max_angle..max_angle (deg)", lo=0.0, hi=45.0)
    angle_step: float = option(0.1, "spacing of the angle grid (deg)", lo=0.0)
    bounds: tuple[float, ...] = option(
        (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), "angle bounds (deg): the worst angle within each", lo=0.0, many=True
    )
    random_draws: int = option(5, "random-angle baseline draws: uniform angles in [-bound, bound]", lo=0)
    seed: int = option(0, "seed of the random angles", lo=0)
    interpolation: str = option(
        "reference", "reference (as the authors ran it) | antialias | fourier (see rotate)", choices=INTERPOLATIONS
    )
    target: str = option(
        "clean", "clean: worst = largest box MSE | healthy, lesion: worst = closest to the twin", choices=TARGETS
    )
    frame: str = option(
        "coils",
        "coils: rotate the coil images, maps and noise turn with the knee (the paper's) | object: rotate the "
        "object under fixed coil sensitivities (attacks.motion)",
        choices=FRAMES,
    )
    maps: str = option(
        "synthetic",
        "frame=object: sensitivities from the generator (synthetic data) | espirit (sigpy, real data)",
        choices=MAPS,
    )

    def __post_init__(self) -> None:
        check_range("max_angle", self.max_angle, lo=0.0, hi=45.0, lo_open=True)
        check_range("angle_step", self.angle_step, lo=0.0, hi=self.max_angle, lo_open=True)
        self.bounds = tuple(self.bounds) if isinstance(self.bounds, (list, tuple)) else self.bounds
        if not isinstance(self.bounds, tuple) or not self.bounds:
            raise ParameterError(f"bounds: must be a non-empty list of angle bounds (deg), got {self.bounds!r}")
        for b in self.bounds:
            check_range("bounds", b, lo=0.0)
        # the reference searches -4.9..4.9 for the 5 deg bound: a bound may exceed the grid by one step
        if max(self.bounds) > self.max_angle + self.angle_step + 1e-9:
            raise ParameterError(
                f"bounds: {max(self.bounds):g} deg exceeds max_angle {self.max_angle:g} + one "
                f"angle_step; the search would not cover it (raise max_angle)"
            )
        check_range("random_draws", self.random_draws, lo=0, integer=True)
        check_range("seed", self.seed, lo=0, integer=True)
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        check_choice("target", self.target, TARGETS)
        check_choice("frame", self.frame, FRAMES)
        check_choice("maps", self.maps, MAPS)

    @property
    def angles(self) -> tuple[float, ...]:
        """The searched angle grid (deg), ``-max_angle..max_angle`` in ``angle_step`` steps."""
        return angle_grid(self.max_angle, self.angle_step)

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (``bounds`` a tuple)."""
        return asdict(self)


def rotate(x: torch.Tensor, angles_deg: torch.Tensor, interpolation: str = "reference") -> torch.Tensor:
    """Rotate real images ``(B, ch, H, W)`` by ``angles_deg`` ``(B,)`` (degrees, counter-clockwise
    as displayed), about the pixel-grid centre, in pixel units (no distortion for non-square images).

    ``reference``: the authors' pipeline as it ran (torchvision 0.13, whose tensor resize did not
    antialias): 2x bicubic upsampling, reflect padding, bilinear rotation, crop, 2x bicubic
    downsampling without antialiasing. ``antialias``: the same with an antialiased downsampling (what
    current torchvision does; it blurs, so 0 deg is further from the identity). ``fourier``: exact
    band-limited rotation by three Fourier shears (zero padding, no resampling grid): 0 deg is the
    identity up to FFT rounding.
    """
    if interpolation == "fourier":
        return rotate_fourier(x, angles_deg)
    B, C, H, W = x.shape
    up = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    H2, W2 = 2 * H, 2 * W
    p = int(math.ceil(0.5 * math.hypot(H2, W2) * math.sin(math.radians(min(45.0, float(angles_deg.abs().max()) + 1)))))
    p = min(p, H2 - 1, W2 - 1)
    padded = F.pad(up, (p, p, p, p), mode="reflect")
    Hp, Wp = H2 + 2 * p, W2 + 2 * p
    th = torch.deg2rad(angles_deg.to(x.dtype))
    c, s = torch.cos(th)[:, None, None], torch.sin(th)[:, None, None]
    yy, xx = torch.meshgrid(
        torch.arange(Hp, dtype=x.dtype, device=x.device) - (Hp - 1) / 2,
        torch.arange(Wp, dtype=x.dtype, device=x.device) - (Wp - 1) / 2,
        indexing="ij",
    )
    # output pixel (xx, yy) samples the input at R(theta)^-1 (xx, yy); y points down, so a
    # counter-clockwise display rotation is clockwise in (x, y) maths coordinates
    xs = c * xx - s * yy
    ys = s * xx + c * yy
    grid = torch.stack((xs / ((Wp - 1) / 2), ys / ((Hp - 1) / 2)), dim=-1)  # (B, Hp, Wp, 2)
    rot = F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    rot = rot[..., p : p + H2, p : p + W2]
    return F.interpolate(rot, size=(H, W), mode="bicubic", align_corners=False, antialias=interpolation == "antialias")


def _fourier_shear(x: torch.Tensor, factor: torch.Tensor, dim: int) -> torch.Tensor:
    """Shift every line of ``x`` ``(B, ch, H, W)`` along ``dim`` (-1: columns, -2: rows) by ``factor[b]``
    times its centred coordinate on the other axis, by a phase ramp (band-limited, circular)."""
    n, m = x.shape[dim], x.shape[-2 if dim == -1 else -1]
    coord = torch.arange(m, dtype=x.dtype, device=x.device) - (m - 1) / 2
    freq = torch.fft.fftfreq(n, dtype=x.dtype, device=x.device)
    shift = factor.to(x.dtype)[:, None] * coord[None]  # (B, m)
    if dim == -1:
        phase = torch.exp(-2j * math.pi * shift[:, None, :, None] * freq)  # (B, 1, H, W)
    else:
        phase = torch.exp(-2j * math.pi * shift[:, None, None, :] * freq[:, None])  # (B, 1, H, W)
    out: torch.Tensor = torch.fft.ifft(torch.fft.fft(x, dim=dim) * phase, dim=dim).real  # (B, ch, H, W) real
    return out


def rotate_fourier(x: torch.Tensor, angles_deg: torch.Tensor) -> torch.Tensor:
    """Rotation as three shears, x by -tan(t/2), y by sin(t), x by -tan(t/2) (Unser et al. 1995), each
    an exact sub-pixel shift by FFT; zero padding keeps the circular shifts from wrapping."""
    B, C, H, W = x.shape
    th = torch.deg2rad(angles_deg.to(x.dtype))
    p = int(math.ceil(0.5 * math.hypot(H, W) * math.sin(math.radians(min(45.0, float(angles_deg.abs().max()) + 1)))))
    y = F.pad(x, (p, p, p, p))
    a, b = -torch.tan(th / 2), torch.sin(th)
    y = _fourier_shear(_fourier_shear(_fourier_shear(y, -a, -1), -b, -2), -a, -1)
    return y[..., p : p + H, p : p + W]


def rotate_complex(x: torch.Tensor, angles_deg: torch.Tensor, interpolation: str = "reference") -> torch.Tensor:
    """Rotate complex ``(B, coils, H, W)`` images (real and imaginary parts as channels)."""
    B, C = x.shape[:2]
    r = torch.view_as_real(x).permute(0, 1, 4, 2, 3).reshape(B, 2 * C, *x.shape[-2:])
    r = rotate(r, angles_deg, interpolation).reshape(B, C, 2, *x.shape[-2:]).permute(0, 1, 3, 4, 2)
    return torch.view_as_complex(r.contiguous())


def rotated_recon(
    model: Reconstructor, tb: TargetBatch, angles_deg: torch.Tensor, interpolation: str = "reference"
) -> torch.Tensor:
    """Steps 1-4 above for a batch whose item ``n`` is rotated by ``angles_deg[n]`` -> ``(B, H, W)``. A batch
    carrying fixed coil sensitivities (``tb.maps``) rotates the object under them instead of the coil images
    (:func:`advmri.attacks.motion.rotate_object`)."""
    if tb.maps is not None:
        from advmri.attacks.motion import rotate_object

        k = rotate_object(tb.kspace, tb.maps, angles_deg, interpolation)
    else:
        k = K.fft2c(rotate_complex(K.ifft2c(tb.kspace), angles_deg, interpolation))
    keep = (tb.acquired & tb.mask)[:, None, None, :].to(k.real.dtype)
    out = model(k * keep, tb.mask, tb.num_low, tb.crop)
    return rotate(out.unsqueeze(1), -angles_deg, interpolation).squeeze(1)


@torch.inference_mode()
def sweep_angles(
    model: Reconstructor,
    tb: TargetBatch,
    angles: Sequence[float] | torch.Tensor,
    chunk: int = 16,
    interpolation: str = "reference",
    only: set[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Scores for every (item, angle): each metric ``(B, A)``. Items x angles are flattened and
    sent through the model ``chunk`` at a time. ``only``: compute just the passes holding these flat indices
    (``item * A + angle``); the other entries are NaN (the computed ones are those of the full sweep)."""
    ang_all = torch.as_tensor(angles, dtype=torch.float32)  # (A,)
    B, A = len(tb), len(ang_all)
    flat = torch.arange(B * A)  # (B * A,) flat index item * A + angle
    parts: list[tuple[int, int, dict[str, torch.Tensor]]] = []  # (lo, hi, scores of the pass)

    def step(lo: int, hi: int) -> None:
        if only is not None and not set(range(lo, hi)) & only:
            return  # a pass the caller does not need: left NaN
        idx = flat[lo:hi]
        sub = tb.select((idx // A).tolist())
        ang = ang_all[idx % A].to(sub.kspace.device)
        sc = box_scores(rotated_recon(model, sub, ang, interpolation), sub)
        parts.append((lo, hi, {k: v.cpu() for k, v in sc.items()}))  # committed only once the pass succeeded

    run_chunked(B * A, chunk, step, device=tb.kspace.device)  # halves the pass on out-of-memory
    out: dict[str, torch.Tensor] = {}
    for lo, hi, sc in parts:
        for k, v in sc.items():
            out.setdefault(k, torch.full((B * A,), float("nan"), dtype=v.dtype))[lo:hi] = v
    return {k: v.view(B, A) for k, v in out.items()}


@torch.inference_mode()
def sweep_angles_looped(
    model: Reconstructor, tb: TargetBatch, angles: Sequence[float] | torch.Tensor, interpolation: str = "reference"
) -> dict[str, torch.Tensor]:
    """Straightforward reference: one item and one angle per forward pass (for benchmarks/tests)."""
    res: dict[str, list[torch.Tensor]] = {}
    for i in range(len(tb)):
        sub = tb.select([i])
        for a in angles:
            sc = box_scores(
                rotated_recon(model, sub, torch.tensor([float(a)], device=sub.kspace.device), interpolation), sub
            )
            for k, v in sc.items():
                res.setdefault(k, []).append(v.cpu())
    return {k: torch.cat(v).view(len(tb), len(angles)) for k, v in res.items()}


def worst_case(
    scores: dict[str, torch.Tensor],
    angles: Sequence[float] | torch.Tensor,
    bounds: Sequence[float],
    target: str = "clean",
) -> list[dict[str, Any]]:
    """For each item and bound: the angle with the largest box MSE among ``|theta| <= bound``
    (``target`` ``healthy``/``lesion``: the smallest box MSE to the twin, ``twin_mse``).

    Returns rows ``{item, bound, angle, <metrics at that angle>}``.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown attack target {target!r} ({' | '.join(TARGETS)})")
    if target != "clean" and "twin_mse" not in scores:
        raise ValueError(f"target {target!r} needs the lesion-free twin, which these items lack; use target 'clean'")
    crit = scores["box_mse"] if target == "clean" else -scores["twin_mse"]  # (items, angles), larger = worse
    ang = np.asarray(angles, dtype=float)  # (angles,)
    rows: list[dict[str, Any]] = []
    for b in bounds:
        sel = np.nonzero(np.abs(ang) <= b + 1e-9)[0]
        for i in range(scores["box_mse"].shape[0]):
            j = sel[int(torch.argmax(crit[i, sel]))]
            rows.append(
                dict(item=i, bound=float(b), angle=float(ang[j]), **{k: float(v[i, j]) for k, v in scores.items()})
            )
    return rows


def random_angles(bounds: Sequence[float], draws: int, seed: int) -> list[tuple[float, float]]:
    """``(bound, angle)`` pairs: ``draws`` uniform angles in ``[-bound, bound]`` per bound (seeded)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    return [(float(b), float(rng.uniform(-b, b))) for b in bounds for _ in range(draws)]
