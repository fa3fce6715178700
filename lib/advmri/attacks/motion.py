"""Physical in-plane rotation: the knee turns, the receive coils stay where they are.

The paper's rotation (:mod:`advmri.attacks.rotation`, ``frame="coils"``) rotates the *coil images*, so the coil
sensitivities and the thermal noise turn with the anatomy. In a scanner the coils are fixed to the table. This
module rotates the *object* under fixed sensitivities ``S`` (``frame="object"``):

* coil images ``x = ifft2c(k)`` (orthonormal, centred; full field of view) are split into the object
  ``m = sum_c conj(S_c) x_c / sum_c |S_c|^2`` (least squares) and the residual ``r = x - S m``, the part of the
  coil images no object can produce (thermal noise outside the maps' range, and model error of the maps);
* the object is rotated, ``m' = R(theta) m`` (:func:`advmri.attacks.rotation.rotate_complex`; the band-limited
  ``fourier`` interpolation is exact at 0 degrees), and re-imaged through the same maps: ``x' = S m' + r``;
* ``k' = fft2c(x')``. At 0 degrees ``k' = k`` (to float rounding with ``fourier``).

Noise: the thermal noise is not drawn afresh (a new draw would make 0 degrees differ from the acquisition):
its part inside the maps' range rotates with ``m`` and the rest stays with the coils. Rotation by Fourier shears
is unitary on band-limited images, so white noise keeps its variance; only the smooth variance map of the coil
combination moves by the rotation (measured in the tests). Maps: the generator's true maps for synthetic data
(:func:`advmri.data.synth.true_maps`), ESPIRiT (sigpy) from the auto-calibration columns for real data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from advmri.attacks.common import TargetBatch
from advmri.attacks.rotation import FRAMES, MAPS, rotate_complex
from advmri.core import kspace as K
from advmri.util.errors import ParameterError, check_choice


def split_object(img: torch.Tensor, maps: torch.Tensor, floor: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Coil images ``(B, coils, rows, cols)`` complex -> object ``(B, rows, cols)`` complex (least squares under
    ``maps``; 0 where ``sum |S|^2 < floor``) and residual ``img - maps * object`` ``(B, coils, rows, cols)``."""
    energy = (maps.abs() ** 2).sum(1)  # (B, rows, cols)
    obj = (maps.conj() * img).sum(1) / energy.clamp_min(floor)  # (B, rows, cols) complex
    obj = torch.where(energy >= floor, obj, torch.zeros_like(obj))
    return obj, img - maps * obj[:, None]


def rotate_object(
    kspace: torch.Tensor, maps: torch.Tensor, angles_deg: torch.Tensor, interpolation: str = "fourier"
) -> torch.Tensor:
    """Fully sampled k-space ``(B, coils, rows, cols)`` complex of an object rotated by ``angles_deg`` ``(B,)``
    (counter-clockwise as displayed, about the image centre) under the fixed ``maps`` ``(B, coils, rows, cols)``."""
    obj, res = split_object(K.ifft2c(kspace), maps)
    turned = rotate_complex(obj[:, None], angles_deg, interpolation)[:, 0]  # (B, rows, cols) complex
    return K.fft2c(maps * turned[:, None] + res)


def espirit_maps(kspace: torch.Tensor, calib: int = 24, thresh: float = 0.02) -> torch.Tensor:
    """ESPIRiT sensitivities (sigpy's ``EspiritCalib``, first eigenvector, no cropping so every pixel has a map)
    from the central ``calib`` x ``calib`` k-space of each fully sampled slice ``(B, coils, rows, cols)``."""
    try:
        from sigpy.mri.app import EspiritCalib
    except ImportError as e:  # pragma: no cover - sigpy is a requirement
        raise ParameterError("maps: espirit needs sigpy (pip install sigpy)") from e
    out = [
        torch.from_numpy(
            EspiritCalib(k.cpu().numpy(), calib_width=calib, thresh=thresh, crop=0.0, show_pbar=False).run()
        )
        for k in kspace
    ]
    return torch.stack(out).to(kspace.device, kspace.dtype)  # (B, coils, rows, cols) complex


def maps_for(kspace: torch.Tensor, files: Sequence[str | None], method: str = "synthetic") -> torch.Tensor:
    """Sensitivities ``(B, coils, rows, cols)`` for a batch: ``synthetic`` regenerates the generator's maps of
    each item's file (``files[i]``: the ``.h5`` path), ``espirit`` estimates them from the k-space."""
    check_choice("maps", method, MAPS)
    if method == "espirit":
        return espirit_maps(kspace)
    from advmri.data.synth import true_maps

    cache: dict[str, torch.Tensor] = {}
    out = []
    for f in files:
        if f is None:
            raise ParameterError("maps: synthetic maps need each item's file; use maps=espirit")
        if f not in cache:
            try:
                cache[f] = true_maps(f)
            except ValueError as e:
                raise ParameterError(f"maps: {e}") from e
        out.append(cache[f])
    return torch.stack(out).to(kspace.device, kspace.dtype)


def with_frame(tb: TargetBatch, frame: str, maps: str = "synthetic") -> TargetBatch:
    """``tb`` as the rotation of ``frame`` needs it: unchanged for ``coils``; for ``object`` carrying fixed
    sensitivities (``maps``: from each item's file, or ESPIRiT), unless it already does."""
    check_choice("frame", frame, FRAMES)
    if frame == "coils" or tb.maps is not None:
        return tb
    return tb.with_maps(maps_for(tb.kspace, [s.path for s in tb.samples], maps))


def noise_std(img: torch.Tensor, region: tuple[slice, slice]) -> float:
    """Standard deviation of the real and imaginary parts of coil images ``(..., rows, cols)`` in ``region``
    (an object-free corner: thermal noise only)."""
    v = torch.view_as_real(img[..., region[0], region[1]])
    return float(np.sqrt(float(v.double().var())))
