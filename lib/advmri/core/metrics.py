"""Image quality: SSIM, PSNR, NMSE on whole images and inside a box (torch, batched).

Conventions (fastMRI's ``evaluate``): SSIM with a 7x7 uniform window, K1=0.01, K2=0.03 and
the sample covariance (``use_sample_covariance``) as scikit-image's default; ``data_range`` is the
*target's* maximum (for a box: the maximum of the full target image, not of the box). PSNR =
``10 log10(data_range^2 / MSE)``. NMSE = ``||gt - pred||^2 / ||gt||^2``.

Box metrics are computed on the box crop; SSIM on a box narrower than the 7-px window uses the
window box grown around it (:func:`advmri.core.boxes.ssim_box`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advmri.core.boxes import Box, ssim_box

WIN = 7
K1, K2 = 0.01, 0.03


def ssim_map(pred: torch.Tensor, gt: torch.Tensor, data_range: torch.Tensor | float) -> torch.Tensor:
    """SSIM map (valid region) of ``(batch, H, W)`` images; matches ``skimage.metrics.structural_similarity``."""
    x = pred.unsqueeze(1).double()
    y = gt.unsqueeze(1).double()
    dr = torch.as_tensor(data_range, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    w = torch.ones(1, 1, WIN, WIN, dtype=x.dtype, device=x.device) / WIN**2
    np_ = WIN * WIN
    cov_norm = np_ / (np_ - 1)
    ux, uy = F.conv2d(x, w), F.conv2d(y, w)
    uxx, uyy, uxy = F.conv2d(x * x, w), F.conv2d(y * y, w), F.conv2d(x * y, w)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (K1 * dr) ** 2, (K2 * dr) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.squeeze(1)


def ssim(pred: torch.Tensor, gt: torch.Tensor, data_range: torch.Tensor | float | None = None) -> torch.Tensor:
    """Mean SSIM per image, ``(batch, H, W)`` -> ``(batch,)``. ``data_range`` defaults to ``gt.max()`` per image.

    Like scikit-image, the mean is over the valid region (borders of half a window cropped).
    """
    if data_range is None:
        data_range = gt.flatten(1).amax(1)
    return ssim_map(pred, gt, data_range).flatten(1).mean(1).to(pred.dtype)


def mse(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean squared error per item: ``(batch, ...)`` -> ``(batch,)``.

    >>> mse(torch.ones(2, 3, 3), torch.zeros(2, 3, 3))
    tensor([1., 1.])
    """
    return (pred - gt).pow(2).flatten(1).mean(1)


def psnr(pred: torch.Tensor, gt: torch.Tensor, data_range: torch.Tensor | float | None = None) -> torch.Tensor:
    """PSNR in dB per item against ``data_range`` (default: the maximum of each ``gt`` item, as fastMRI).

    >>> psnr(torch.full((1, 4, 4), 0.9), torch.ones(1, 4, 4))
    tensor([20.0000])
    """
    if data_range is None:
        data_range = gt.flatten(1).amax(1)
    dr = torch.as_tensor(data_range, dtype=pred.dtype, device=pred.device)
    return 10 * torch.log10(dr**2 / mse(pred, gt))


def nmse(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Normalised MSE per item, ``||pred - gt||^2 / ||gt||^2`` (fastMRI's NMSE).

    >>> nmse(torch.zeros(1, 2, 2), torch.ones(1, 2, 2))
    tensor([1.])
    """
    return (pred - gt).pow(2).flatten(1).sum(1) / gt.pow(2).flatten(1).sum(1)


def crop_box(x: torch.Tensor, box: Box) -> torch.Tensor:
    """``(..., H, W)`` -> ``(..., h, w)`` inside ``box`` (array coordinates)."""
    return x[(..., *box.slices)]


def box_metrics(pred: torch.Tensor, gt: torch.Tensor, box: Box) -> dict[str, torch.Tensor]:
    """SSIM/PSNR/MSE/NMSE inside ``box`` for ``(batch, H, W)`` images (data range: full target max)."""
    dr = gt.flatten(1).amax(1)
    sb = ssim_box(box, (gt.shape[-2], gt.shape[-1]))  # (H, W)
    p, g = crop_box(pred, box), crop_box(gt, box)
    return dict(
        ssim=ssim(crop_box(pred, sb), crop_box(gt, sb), dr),
        psnr=psnr(p, g, dr),
        mse=mse(p, g),
        nmse=nmse(p, g),
    )


def image_metrics(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Whole-image SSIM/PSNR/MSE/NMSE for ``(batch, H, W)`` images."""
    return dict(ssim=ssim(pred, gt), psnr=psnr(pred, gt), mse=mse(pred, gt), nmse=nmse(pred, gt))
