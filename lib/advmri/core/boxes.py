"""Boxes in array coordinates and the fastMRI+ up/down flip (pure geometry; no I/O).

Images are indexed ``[row, col]`` = ``[y, x]`` with ``y`` growing downwards, as ``reconstruction_rss`` is stored.
fastMRI+ draws its boxes on the up/down flipped image, so ``y_array = H - y_csv - height`` (:func:`flip_y`).
A box narrower than the SSIM window is grown around its centre for SSIM only (:func:`ssim_box`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSIM_WINDOW", "Box", "flip_y", "to_array_box", "to_csv_box", "ssim_box"]

SSIM_WINDOW = 7  # px; fastMRI's SSIM window (7x7 uniform filter)


@dataclass(frozen=True)
class Box:
    """A box in *array* coordinates: columns ``x..x+w``, rows ``y..y+h`` (half-open)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices to index an image ``img[box.slices]``."""
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def flip_y(y: int, height: int, image_height: int) -> int:
    """fastMRI+ (flipped) <-> array row of a box's top edge. The map is its own inverse.

    fastMRI+ draws its boxes on the up/down flipped 320x320 image: ``y_array = H - y - height``.

    >>> flip_y(10, 30, 320)
    280
    >>> flip_y(flip_y(10, 30, 320), 30, 320)
    10
    """
    return image_height - y - height


def to_array_box(x: int, y: int, w: int, h: int, shape: tuple[int, int]) -> Box | None:
    """Convert a fastMRI+ box to array coordinates (flip, then clip to ``shape``); None if empty."""
    H, W = shape
    ya = flip_y(y, h, H)
    x0, y0 = max(0, x), max(0, ya)
    x1, y1 = min(W, x + w), min(H, ya + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def to_csv_box(box: Box, image_height: int) -> tuple[int, int, int, int]:
    """Array box -> fastMRI+ ``(x, y, width, height)`` on the flipped image."""
    return box.x, flip_y(box.y, box.h, image_height), box.w, box.h


def ssim_box(box: Box, shape: tuple[int, int], window: int = SSIM_WINDOW) -> Box:
    """Grow ``box`` symmetrically to at least ``window`` pixels per side, kept inside ``shape``."""
    H, W = shape

    def grow(lo: int, n: int, size: int) -> tuple[int, int]:
        if n >= window:
            return lo, n
        n2 = min(window, size)
        lo2 = lo - (n2 - n) // 2
        lo2 = min(max(0, lo2), size - n2)
        return lo2, n2

    x, w = grow(box.x, box.w, W)
    y, h = grow(box.y, box.h, H)
    return Box(x, y, w, h)
