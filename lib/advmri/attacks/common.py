"""Batches of attack targets and box-restricted losses/metrics computed for a whole batch at once.

A :class:`TargetBatch` stacks slices of equal geometry, each with its own box, so that one
forward/backward pass serves many boxes (and, by repetition, many eps values or angles).
Box losses use per-item weight maps instead of crops, which keeps every item in one tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from advmri.core import metrics as M
from advmri.core.boxes import Box, ssim_box
from advmri.data.dataset import SliceSample

_TensorMap = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TargetBatch:
    kspace: torch.Tensor  # (B, coils, rows, cols) complex, fully sampled
    mask: torch.Tensor  # (B, cols) bool, undersampling mask
    acquired: torch.Tensor  # (B, cols) bool, columns padding_left..padding_right
    num_low: torch.Tensor  # (B,) long
    target: torch.Tensor  # (B, H, W) float
    healthy: torch.Tensor | None  # (B, H, W) float, the twin (lesion-free; for lesion-free items: with the lesion)
    boxes: list[Box]
    samples: list[SliceSample]
    # (B, coils, rows, cols) complex: fixed coil sensitivities, for the object-frame rotation (attacks.motion)
    maps: torch.Tensor | None = None

    @property
    def crop(self) -> tuple[int, int]:
        """The image size ``(H, W)`` of the targets (and reconstructions)."""
        return (self.target.shape[-2], self.target.shape[-1])

    def __len__(self) -> int:
        return self.kspace.shape[0]

    def _apply(self, data: _TensorMap, masks: _TensorMap, boxes: list[Box], samples: list[SliceSample]) -> TargetBatch:
        """A new batch: ``data`` applied to k-space, target and twin, ``masks`` to mask, acquired and num_low."""
        return TargetBatch(
            data(self.kspace),
            masks(self.mask),
            masks(self.acquired),
            masks(self.num_low),
            data(self.target),
            None if self.healthy is None else data(self.healthy),
            boxes,
            samples,
            None if self.maps is None else data(self.maps),
        )

    def with_maps(self, maps: torch.Tensor) -> TargetBatch:
        """The same batch carrying fixed coil sensitivities ``maps`` ``(B, coils, rows, cols)`` complex."""
        return TargetBatch(
            self.kspace,
            self.mask,
            self.acquired,
            self.num_low,
            self.target,
            self.healthy,
            self.boxes,
            self.samples,
            maps.to(self.kspace.device, self.kspace.dtype),
        )

    def to(self, device: torch.device | str) -> TargetBatch:
        """The same batch with every tensor on ``device``."""

        def f(t: torch.Tensor) -> torch.Tensor:
            return t.to(device)

        return self._apply(f, f, self.boxes, self.samples)

    def double(self) -> TargetBatch:
        """The same batch in double precision (complex128 k-space, float64 images); masks unchanged."""

        def f(t: torch.Tensor) -> torch.Tensor:
            return t.to(torch.complex128 if t.is_complex() else torch.float64)

        return self._apply(f, _same, self.boxes, self.samples)

    def repeat(self, n: int) -> TargetBatch:
        """Each item ``n`` times in a row (item-major): index ``i * n + j``."""

        def r(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(n, dim=0)

        return self._apply(r, r, [b for b in self.boxes for _ in range(n)], [s for s in self.samples for _ in range(n)])

    def select(self, idx: Sequence[int]) -> TargetBatch:
        """The items at positions ``idx`` (in that order)."""
        ix = torch.as_tensor(list(idx), dtype=torch.long)  # (len(idx),)

        def f(t: torch.Tensor) -> torch.Tensor:
            return t[ix.to(t.device)]

        return self._apply(f, f, [self.boxes[i] for i in idx], [self.samples[i] for i in idx])


def _same(t: torch.Tensor) -> torch.Tensor:
    """The tensor itself (fields a conversion leaves alone)."""
    return t


def _geometry(s: SliceSample) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(s.kspace.shape), tuple(s.target.shape)


def geometry_groups(samples: Sequence[SliceSample]) -> list[list[int]]:
    """Positions of ``samples`` grouped by (k-space shape, image shape), in order of first appearance
    (real fastMRI volumes differ in coils and columns; each group is one batchable set)."""
    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(_geometry(s), []).append(i)
    return list(groups.values())


def make_batch(samples: Sequence[SliceSample]) -> TargetBatch:
    """Stack samples of equal k-space and recon geometry (each must have a box)."""
    groups = geometry_groups(samples)
    if len(groups) != 1:
        desc = "; ".join(
            f"{_geometry(samples[g[0]])}: {', '.join(sorted({samples[i].fname for i in g})[:3])}" for g in groups
        )
        raise ValueError(
            f"cannot batch slices of different geometry (k-space, image): {desc}; "
            "batch each group separately (advmri.attacks.common.geometry_groups)"
        )
    boxes = [s.box for s in samples if s.box is not None]
    if len(boxes) != len(samples):
        missing = next(s for s in samples if s.box is None)
        raise ValueError(
            f"{missing.fname} slice {missing.slice_idx}: every attack target needs a box (study-level rows have none)"
        )
    cols = samples[0].kspace.shape[-1]
    acq = torch.zeros(len(samples), cols, dtype=torch.bool)  # (B, cols)
    for i, s in enumerate(samples):
        acq[i, s.padding[0] : s.padding[1]] = True
    twins = [s.healthy for s in samples if s.healthy is not None]
    healthy = torch.stack(twins) if len(twins) == len(samples) else None  # (B, H, W) float, or None
    return TargetBatch(
        kspace=torch.stack([s.kspace for s in samples]),
        mask=torch.stack([s.mask for s in samples]),
        acquired=acq,
        num_low=torch.tensor([s.num_low_frequencies for s in samples]),
        target=torch.stack([s.target for s in samples]),
        healthy=healthy,
        boxes=boxes,
        samples=list(samples),
    )


def box_weights(boxes: Sequence[Box], shape: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """``(B, H, W)`` float: 1 inside each item's box."""
    w = torch.zeros(len(boxes), *shape, device=device)
    for i, b in enumerate(boxes):
        w[(i, *b.slices)] = 1.0
    return w


def ssim_weights(
    boxes: Sequence[Box], shape: tuple[int, int], device: torch.device | str | None = None
) -> torch.Tensor:
    """``(B, H-6, W-6)`` float: 1 at the SSIM-map positions whose 7x7 window lies inside the
    (grown) SSIM box, so a masked mean of the full SSIM map equals SSIM of the box crop."""
    H, W = shape
    w = torch.zeros(len(boxes), H - M.WIN + 1, W - M.WIN + 1, device=device)
    for i, b in enumerate(boxes):
        s = ssim_box(b, shape)
        w[i, s.y : s.y + s.h - M.WIN + 1, s.x : s.x + s.w - M.WIN + 1] = 1.0
    return w


def masked_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-item weighted mean of ``(B, ...)`` ``x`` with weights ``w`` of the same shape -> ``(B,)``."""
    return (x * w).flatten(1).sum(1) / w.flatten(1).sum(1)


def box_scores(recon: torch.Tensor, tb: TargetBatch) -> dict[str, torch.Tensor]:
    """Box and whole-image metrics of ``recon`` ``(B, H, W)`` against ``tb.target`` (and the twin)."""
    t = tb.target
    dr = t.flatten(1).amax(1)
    wb = box_weights(tb.boxes, tb.crop, t.device)
    ws = ssim_weights(tb.boxes, tb.crop, t.device)
    err = (recon - t).pow(2)
    box_mse = masked_mean(err, wb)
    out = dict(
        box_ssim=masked_mean(M.ssim_map(recon, t, dr).to(recon.dtype), ws),
        box_psnr=10 * torch.log10(dr**2 / box_mse),
        box_mse=box_mse,
        img_ssim=M.ssim(recon, t, dr),
        img_psnr=M.psnr(recon, t, dr),
        img_mse=M.mse(recon, t),
    )
    if tb.healthy is not None:
        lesion = (t - tb.healthy) * wb
        denom = lesion.pow(2).flatten(1).sum(1)
        # 1: the lesion is reconstructed as in the target; 0: erased (looks like the healthy twin)
        retained = ((recon - tb.healthy) * lesion).flatten(1).sum(1) / denom.clamp_min(1e-12)
        out["lesion_retained"] = torch.where(denom > 0, retained, torch.full_like(retained, float("nan")))
        out["twin_mse"] = masked_mean((recon - tb.healthy).pow(2), wb)  # box MSE to the twin
        # 1: the box is closer to the twin than to the truth (erasure; on lesion-free items: hallucination)
        out["healthy_closer"] = (out["twin_mse"] < box_mse).float()
    return out


def attack_loss(
    recon: torch.Tensor, target: torch.Tensor, wb: torch.Tensor, ws: torch.Tensor | None, kind: str = "mse"
) -> torch.Tensor:
    """Per-item loss to *maximise*: ``mse`` (box MSE), ``ssim`` (1 - box SSIM) or ``mse+ssim``
    (box MSE normalised by the target's box energy, plus 1 - SSIM). ``(B,)``."""
    mse = masked_mean((recon - target).pow(2), wb)
    if kind == "mse":
        return mse
    if ws is None:
        raise ValueError(f"attack loss {kind!r} needs the SSIM weights ws (advmri.attacks.common.ssim_weights)")
    dr = target.flatten(1).amax(1)  # (B,)
    ssim_term = 1 - masked_mean(M.ssim_map(recon, target, dr).to(recon.dtype), ws)
    if kind == "ssim":
        return ssim_term
    if kind == "mse+ssim":
        return mse / masked_mean(target.pow(2), wb).clamp_min(1e-12) + ssim_term
    raise ValueError(f"unknown attack loss {kind!r}")


TARGETS = ("clean", "healthy", "lesion")


def objective(
    recon: torch.Tensor,
    tb: TargetBatch,
    wb: torch.Tensor,
    ws: torch.Tensor | None,
    kind: str = "mse",
    target: str = "clean",
) -> torch.Tensor:
    """Per-item attack objective to *maximise* ``(B,)``. ``clean`` (the paper): push the box away from the
    clean target (:func:`attack_loss`). ``healthy`` (erasure) and ``lesion`` (hallucination, on the lesion-free
    twins): pull the box toward the twin ``tb.healthy``, i.e. maximise minus the same loss against it."""
    if target == "clean":
        return attack_loss(recon, tb.target, wb, ws, kind)
    if target not in TARGETS:
        raise ValueError(f"unknown attack target {target!r} ({' | '.join(TARGETS)})")
    if tb.healthy is None:
        raise ValueError(
            f"target {target!r} pulls toward the lesion-free twin, which {tb.samples[0].fname} lacks "
            "(real fastMRI data has none); use target 'clean'"
        )
    return -attack_loss(recon, tb.healthy, wb, ws, kind)
