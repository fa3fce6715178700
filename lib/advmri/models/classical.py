"""Classical reconstructions under the same attacks: CG-SENSE, l1-wavelet compressed sensing, total variation
(``classical:tv``, the counterpoint of Genzel et al.), and the zero-filled RSS image (the trivial reconstruction
every learned one must beat; ``classical:zero-filled``).

Both are differentiable with a fixed number of iterations (autograd through the unrolled solver), so
every attack, sweep and notebook treats them like the networks (:class:`ClassicalRecon` is a
:class:`advmri.models.networks.Reconstructor`; model spec ``classical:cg-sense`` / ``classical:l1-wavelet``).

Conventions (as :mod:`advmri.core.kspace`): centred orthonormal 2-D FFTs over ``(rows, cols)``; k-space
``(B, coils, rows, cols)`` complex, masked by column; the output is the magnitude of the coil-combined
image, centre-cropped to the target's ``(H, W)`` (rows carry the 2x readout oversampling, as fastMRI).

* **Sensitivities** from the calibration lines exactly as fastMRI's VarNet starts (its
  ``SensitivityModel`` before the learned refinement): keep the ``num_low`` centre columns, inverse FFT
  per coil, divide by the root-sum-of-squares over coils. So ``sum_c |S_c|^2 = 1`` and ``|S^H x|`` is on
  the scale of the RSS target.
* **CG-SENSE**: ``argmin_x ||M F S x - y||^2 + lam ||x||^2`` by ``iterations`` conjugate-gradient steps
  on the normal equations from ``x = 0`` (early stopping is part of the regularisation).
* **TV**: ``argmin_x 1/2 ||M F S x - y||^2 + lam ||G x||_1`` (anisotropic, circular finite differences) by
  ``iterations`` steps of Chambolle-Pock (:func:`tv_pdhg`); it reaches the minimum sigpy's ``TotalVariationRecon``
  reaches (``tests/models/test_classical.py``). ``lam`` relative, as for l1-wavelet.
* **l1-wavelet**: ``argmin_x 1/2 ||M F S x - y||^2 + lam ||W x||_1`` by FISTA with step 1 (the operator
  norm is <= 1), ``W`` a Daubechies-4 wavelet transform from ``ptwt`` (PyTorch wavelets, differentiable),
  the proximal step applied as sigpy's ``L1Wavelet`` prox does (soft-threshold of the complex coefficients
  of the redundant zero-padded transform, then the inverse). ``lam`` is relative to the largest
  magnitude of the zero-filled SENSE image, so it does not depend on the data's scale.

Why not deepinv: its MRI physics and solvers fit, but ``import deepinv`` imports torchvision, which cannot
be installed beside the pinned CPU torch wheel here (``advmri.app.envcheck`` forbids it); ``ptwt`` needs only
torch and PyWavelets. The CG and FISTA loops are a dozen lines each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from advmri.core import kspace as K
from advmri.models.networks import Reconstructor, zero_filled
from advmri.util.errors import ParameterError, check_choice

TV_ITERATIONS, TV_LAM = 100, 0.01
METHODS: dict[str, dict[str, Any]] = {
    # chosen on 30 slices of the *train* split by whole-image SSIM at 4x and 8x (2026-11-30): CG iterations
    # 4/8/12/20 with lam 0/0.02 (8 best: CG-SENSE semi-converges, more iterations amplify noise); l1 lam
    # 0.001/0.003/0.01/0.03 with 15/30/60 iterations (0.003, 30 best; 4 wavelet levels +0.001 SSIM only)
    "cg-sense": dict(iterations=8, lam=0.0),
    "l1-wavelet": dict(iterations=30, lam=0.003, wavelet="db4", levels=3),
    # TV: chosen as the others on 12 train slices (2026-12-08): at 60 iterations lam 0.001/0.003/0.01/0.03 gave SSIM
    # 0.667/0.702/0.735/0.719 (4x) and 0.461/0.474/0.491/0.487 (8x); at lam 0.01, 30/60/100 iterations 0.692/0.735/
    # 0.762 (4x), 0.468/0.491/0.509 (8x): PDHG is still converging, 100 is the cost we accept (l1-wavelet there:
    # 0.708 / 0.469, CG-SENSE 0.631 / 0.445)
    "tv": dict(iterations=TV_ITERATIONS, lam=TV_LAM),
    # the trivial reconstruction (fastMRI's baseline, the U-Net's input): the leaderboard's reference row
    "zero-filled": dict(),
}


def finite_difference(x: torch.Tensor) -> torch.Tensor:
    """Circular forward differences of ``(B, R, Cols)`` images along rows and columns -> ``(2, B, R, Cols)``
    (sigpy's ``FiniteDifference`` up to the sign and direction, which the l1 norm does not see)."""
    return torch.stack([torch.roll(x, -1, -2) - x, torch.roll(x, -1, -1) - x])


def finite_difference_adjoint(q: torch.Tensor) -> torch.Tensor:
    """The adjoint of :func:`finite_difference`: ``(2, B, R, Cols)`` -> ``(B, R, Cols)``."""
    return (torch.roll(q[0], 1, -2) - q[0]) + (torch.roll(q[1], 1, -1) - q[1])


def low_res_sensitivities(masked_kspace: torch.Tensor, num_low: torch.Tensor | int) -> torch.Tensor:
    """fastMRI's initial sensitivity estimate: centre ``num_low`` columns -> inverse FFT -> / RSS.

    ``masked_kspace`` ``(B, C, R, Cols)`` complex, ``num_low`` int or ``(B,)`` -> ``(B, C, R, Cols)`` complex
    with ``sum_c |S_c|^2 = 1`` wherever the low-resolution RSS is non-zero.
    """
    b, _, _, cols = masked_kspace.shape
    nl = torch.as_tensor(num_low, device=masked_kspace.device).reshape(-1).expand(b)
    col = torch.arange(cols, device=masked_kspace.device)
    pad = (cols - nl + 1) // 2  # fastMRI's get_pad_and_num_low_freqs
    centre = (col[None] >= pad[:, None]) & (col[None] < (pad + nl)[:, None])  # (B, cols)
    low = K.ifft2c(masked_kspace * centre[:, None, None, :])  # (B, C, R, Cols) complex
    return low / K.rss(low, dim=1).clamp_min(1e-12)[:, None]


def _forward(x: torch.Tensor, sens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``M F S x``: image ``(B, R, Cols)`` -> k-space ``(B, C, R, Cols)``."""
    return K.fft2c(sens * x[:, None]) * mask[:, None, None, :]


def _adjoint(y: torch.Tensor, sens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``S^H F^H M y``: k-space ``(B, C, R, Cols)`` -> image ``(B, R, Cols)``."""
    return (sens.conj() * K.ifft2c(y * mask[:, None, None, :])).sum(1)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of the per-item inner product ``<a, b>`` ``(B,)``."""
    return (a.conj() * b).real.flatten(1).sum(1)


def cg_sense(
    y: torch.Tensor, sens: torch.Tensor, mask: torch.Tensor, iterations: int, lam: float = 0.0
) -> torch.Tensor:
    """``iterations`` CG steps on ``(S^H F^H M F S + lam) x = S^H F^H M y`` from ``x = 0`` -> ``(B, R, Cols)``."""
    rhs = _adjoint(y, sens, mask)
    x = torch.zeros_like(rhs)
    r = rhs
    p = r
    rr = _dot(r, r)
    for _ in range(iterations):
        ap = _adjoint(_forward(p, sens, mask), sens, mask) + lam * p
        alpha = rr / _dot(p, ap).clamp_min(1e-30)
        x = x + alpha[:, None, None] * p
        r = r - alpha[:, None, None] * ap
        rr_new = _dot(r, r)
        p = r + (rr_new / rr.clamp_min(1e-30))[:, None, None] * p
        rr = rr_new
    return x


def _soft(c: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Complex soft-threshold of ``c`` ``(2, B, ...)`` (real, imaginary stacked) by ``tau`` ``(B,)``."""
    mag = torch.sqrt(c[0] ** 2 + c[1] ** 2 + 1e-30)
    t = tau.reshape(-1, *([1] * (mag.dim() - 1)))
    return c * (torch.relu(mag - t) / mag)


def wavelet_prox(x: torch.Tensor, tau: torch.Tensor, wavelet: str = "db4", levels: int = 3) -> torch.Tensor:
    """``W^H soft(W x, tau)`` for complex ``x`` ``(B, R, Cols)`` (sigpy's L1Wavelet prox); the approximation
    band is not thresholded."""
    import ptwt

    ri = torch.stack([x.real, x.imag])  # (2, B, R, Cols)
    coeffs = ptwt.wavedec2(ri, wavelet, level=levels, mode="zero")
    details = [type(d)(*(_soft(c, tau) for c in d)) for d in coeffs[1:]]  # approximation band kept as is
    rec = ptwt.waverec2((coeffs[0], *details), wavelet)[..., : x.shape[-2], : x.shape[-1]]  # (2, B, R, Cols)
    return torch.complex(rec[0], rec[1])


def l1_wavelet(
    y: torch.Tensor,
    sens: torch.Tensor,
    mask: torch.Tensor,
    iterations: int,
    lam: float,
    wavelet: str = "db4",
    levels: int = 3,
) -> torch.Tensor:
    """FISTA on ``1/2 ||M F S x - y||^2 + lam * max|S^H F^H M y| * ||W x||_1`` -> ``(B, R, Cols)``."""
    x0 = _adjoint(y, sens, mask)
    tau = lam * x0.abs().flatten(1).amax(1)  # (B,) relative threshold
    x, v, t = x0, x0, 1.0
    for _ in range(iterations):
        grad = _adjoint(_forward(v, sens, mask) - y * mask[:, None, None, :], sens, mask)
        x_new = wavelet_prox(v - grad, tau, wavelet, levels)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        v = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x


def tv_pdhg(y: torch.Tensor, sens: torch.Tensor, mask: torch.Tensor, iterations: int, lam: float) -> torch.Tensor:
    """Chambolle-Pock (PDHG) on ``1/2 ||M F S x - y||^2 + lam * max|S^H F^H M y| * ||G x||_1`` -> ``(B, R, Cols)``.

    ``G``: :func:`finite_difference`; the l1 norm is over the complex magnitude of each difference (anisotropic,
    as sigpy's ``TotalVariationRecon``). Steps ``sigma = tau = 0.99 / 3``: ``||M F S|| <= 1`` (``sum |S|^2 = 1``)
    and ``||G||^2 <= 8``, so ``sigma tau ||[A; G]||^2 < 1``. Starts from the zero-filled SENSE image."""
    x0 = _adjoint(y, sens, mask)
    w = lam * x0.abs().flatten(1).amax(1)[None, :, None, None]  # (1, B, 1, 1) absolute weight of the TV term
    step = 0.99 / 3.0
    ym = y * mask[:, None, None, :]
    x, xbar = x0, x0
    p = torch.zeros_like(ym)  # dual of the data term (B, C, R, Cols)
    q = torch.zeros((2, *x0.shape), dtype=x0.dtype, device=x0.device)  # dual of the TV term
    for _ in range(iterations):
        p = (p + step * (_forward(xbar, sens, mask) - ym)) / (1 + step)
        q = q + step * finite_difference(xbar)
        q = q / torch.clamp(q.abs() / w.clamp_min(1e-30), min=1.0)  # projection onto |q| <= w
        x_new = x - step * (_adjoint(p, sens, mask) + finite_difference_adjoint(q))
        x, xbar = x_new, 2 * x_new - x
    return x


class ClassicalRecon(Reconstructor):
    """A classical method as a :class:`Reconstructor` (no learned parameters; ``kind`` is the method,
    ``config`` is ``classical``; ``precision`` has no effect: it all runs in the input's precision)."""

    def __init__(self, method: str, **overrides: Any) -> None:
        check_choice("model (classical:<method>)", method, sorted(METHODS))
        params = dict(METHODS[method], **overrides)
        super().__init__(nn.Identity(), "classical", params)
        self.kind = method

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | torch.Tensor,
        crop: Sequence[int],
    ) -> torch.Tensor:
        """Masked k-space ``(B, C, R, Cols)`` complex, mask ``(cols,)``/``(B, cols)`` -> magnitude ``(B, H, W)``."""
        if self.kind == "zero-filled":
            return zero_filled(masked_kspace, crop)  # (B, H, W)
        b = masked_kspace.shape[0]
        m = (mask if mask.dim() == 2 else mask[None].expand(b, -1)).to(masked_kspace.real.dtype)
        sens = low_res_sensitivities(masked_kspace, num_low_frequencies)
        p = self.params
        if self.kind == "cg-sense":
            x = cg_sense(masked_kspace, sens, m, p["iterations"], p["lam"])
        elif self.kind == "tv":
            x = tv_pdhg(masked_kspace, sens, m, p["iterations"], p["lam"])
        else:
            x = l1_wavelet(masked_kspace, sens, m, p["iterations"], p["lam"], p["wavelet"], p["levels"])
        return K.center_crop(x, crop).abs()


def parse_spec(spec: str) -> ClassicalRecon:
    """``classical:<method>`` -> the method with its default (tuned) parameters."""
    parts = spec.split(":")
    if len(parts) != 2 or parts[0] != "classical":
        raise ParameterError(f"model: {spec!r}: a classical method is classical:<{'|'.join(METHODS)}>")
    return ClassicalRecon(parts[1])
