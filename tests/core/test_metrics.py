"""advmri.core.metrics against scikit-image (fastMRI's reference): whole-image and box SSIM / PSNR."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from advmri.core import metrics as M
from advmri.core.boxes import Box


def test_metrics_agree_with_skimage():
    g = torch.Generator().manual_seed(3)
    gt = torch.rand(3, 40, 36, generator=g, dtype=torch.float64)
    pred = gt + 0.05 * torch.randn(3, 40, 36, generator=g, dtype=torch.float64)
    for i in range(3):
        a, b = gt[i].numpy(), pred[i].numpy()
        dr = a.max()
        assert M.ssim(pred, gt)[i].item() == pytest.approx(structural_similarity(a, b, data_range=dr), abs=1e-6)
        assert M.psnr(pred, gt)[i].item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=dr), abs=1e-6)
    box = Box(5, 6, 12, 10)
    bm = M.box_metrics(pred, gt, box)
    a, b = gt[0, 6:16, 5:17].numpy(), pred[0, 6:16, 5:17].numpy()
    assert bm["ssim"][0].item() == pytest.approx(structural_similarity(a, b, data_range=gt[0].max().item()), abs=1e-6)
    assert bm["psnr"][0].item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=gt[0].max().item()), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Box metrics against scikit-image on many boxes. The convention (advmri.core.metrics, advmri.core.boxes):
# data range = the maximum of the *full* target image (fastMRI's maxval), not of the box; PSNR, MSE and NMSE on the
# box crop; SSIM (7x7 uniform window, K1 0.01, K2 0.03, sample covariance as fastMRI's skimage defaults) on the box
# crop where each side has >= 7 px, else on the "SSIM box": a side n < 7 grows to min(7, image side) pixels, its
# start moved up by (7 - n) // 2 (so the extra pixels go half before, half after; the odd one after), then shifted
# back inside the image when it would stick out of it (a box at the border grows inwards only).
H, W = 40, 36  # not square: a swapped row/column shows
WIN = 7


def _reference_ssim_window(lo: int, n: int, size: int) -> tuple[int, int]:
    """The documented rule for one axis, written out independently of advmri.core.boxes.ssim_box."""
    if n >= WIN:
        return lo, n
    n2 = min(WIN, size)
    lo2 = lo - (n2 - n) // 2
    return min(max(lo2, 0), size - n2), n2


def _images(seed=7):
    """Two smooth positive targets with different maxima (so the per-image data range matters) and predictions."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    gt = np.stack([gaussian_filter(rng.random((H, W)), 2) * s for s in (1.0, 3.7)])
    pred = gt + 0.03 * gt.max(axis=(1, 2), keepdims=True) * rng.standard_normal(gt.shape)
    return torch.from_numpy(pred), torch.from_numpy(gt)


def _boxes(n=30, seed=11) -> list[Box]:
    """Seeded random boxes, half of them with a side below the window, plus the border and corner cases."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        small = i % 2 == 0
        w = int(rng.integers(1, WIN + 2)) if small else int(rng.integers(1, W + 1))
        h = int(rng.integers(1, WIN + 2)) if i % 3 else int(rng.integers(1, H + 1))
        out.append(Box(int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1)), w, h))
    out += [
        Box(0, 0, 1, 1),
        Box(W - 1, H - 1, 1, 1),
        Box(0, H - 2, 2, 2),
        Box(W - 3, 0, 3, 12),  # corners, narrow
        Box(0, 5, W, 4),
        Box(4, 0, 5, H),  # full width / height, narrow the other way
        Box(2, 30, 7, 7),
        Box(W - 7, H - 7, 7, 7),
        Box(0, 0, W, H),
        Box(1, 17, 6, 6),
    ]  # exactly the window
    return out


def _reference_box_metrics(pred: np.ndarray, gt: np.ndarray, box: Box) -> dict[str, float]:
    dr = float(gt.max())  # the full target's maximum
    p, g = pred[box.y : box.y + box.h, box.x : box.x + box.w], gt[box.y : box.y + box.h, box.x : box.x + box.w]
    x, w = _reference_ssim_window(box.x, box.w, gt.shape[1])
    y, h = _reference_ssim_window(box.y, box.h, gt.shape[0])
    ps, gs = pred[y : y + h, x : x + w], gt[y : y + h, x : x + w]
    return dict(
        ssim=structural_similarity(
            gs, ps, win_size=WIN, gaussian_weights=False, use_sample_covariance=True, K1=0.01, K2=0.03, data_range=dr
        ),
        psnr=peak_signal_noise_ratio(g, p, data_range=dr),
        mse=float(np.mean((p - g) ** 2)),
        nmse=float(np.sum((p - g) ** 2) / np.sum(g**2)),
    )


def _mismatches(box_metrics, boxes, rel=1e-6) -> list[str]:
    """Every (box, image, metric) where ``box_metrics`` differs from the reference by more than ``rel``."""
    pred, gt = _images()
    bad = []
    for box in boxes:
        got = box_metrics(pred, gt, box)
        for i in range(len(gt)):
            want = _reference_box_metrics(pred[i].numpy(), gt[i].numpy(), box)
            for k, v in want.items():
                if got[k][i].item() != pytest.approx(v, rel=rel, abs=1e-12):
                    bad.append(f"{box} image {i} {k}: {got[k][i].item()} != {v}")
    return bad


BOXES = _boxes()


@pytest.mark.parametrize("box", BOXES, ids=lambda b: f"x{b.x}y{b.y}w{b.w}h{b.h}")
def test_box_metrics_agree_with_skimage_on_the_documented_crop(box):
    assert _mismatches(M.box_metrics, [box]) == []


def test_the_box_set_covers_borders_and_narrow_boxes():
    """The parametrised boxes include every case the rule distinguishes (else the test above proves little)."""
    narrow = [b for b in BOXES if b.w < WIN or b.h < WIN]
    assert len(narrow) >= 15 and any(b.w < WIN and b.h < WIN for b in BOXES)
    assert any(b.x == 0 for b in narrow) and any(b.y == 0 for b in narrow)
    assert any(b.x + b.w == W for b in narrow) and any(b.y + b.h == H for b in narrow)
    assert any(b.w >= WIN and b.h >= WIN for b in BOXES) and Box(0, 0, W, H) in BOXES
    # a narrow box in the interior grows on both sides; one at the border is shifted inside
    assert any(
        _reference_ssim_window(b.x, b.w, W)[0] < b.x and _reference_ssim_window(b.x, b.w, W)[0] + WIN > b.x + b.w
        for b in narrow
    )


def test_ssim_box_follows_the_documented_rule():
    from advmri.core.boxes import ssim_box

    for b in BOXES:
        sb = ssim_box(b, (H, W))
        assert (sb.x, sb.w) == _reference_ssim_window(b.x, b.w, W) and (sb.y, sb.h) == _reference_ssim_window(
            b.y, b.h, H
        )
        assert sb.x <= b.x and sb.y <= b.y and sb.x + sb.w >= b.x + b.w and sb.y + sb.h >= b.y + b.h  # contains it
        assert 0 <= sb.x and sb.x + sb.w <= W and 0 <= sb.y and sb.y + sb.h <= H  # inside the image


def _box_data_range(pred, gt, box):  # a plausible bug: the box's own maximum as data range
    from advmri.core.boxes import ssim_box

    dr = M.crop_box(gt, box).flatten(1).amax(1)
    sb = ssim_box(box, tuple(gt.shape[-2:]))
    return dict(
        ssim=M.ssim(M.crop_box(pred, sb), M.crop_box(gt, sb), dr),
        psnr=M.psnr(M.crop_box(pred, box), M.crop_box(gt, box), dr),
        mse=M.mse(M.crop_box(pred, box), M.crop_box(gt, box)),
        nmse=M.nmse(M.crop_box(pred, box), M.crop_box(gt, box)),
    )


def _grown_from_the_corner(box, shape, window=WIN):  # a narrow box grown to the right / down only
    from advmri.core.boxes import Box as B

    return B(
        min(box.x, shape[1] - max(box.w, window)),
        min(box.y, shape[0] - max(box.h, window)),
        max(box.w, window),
        max(box.h, window),
    )


@pytest.mark.parametrize(
    "bug", ["data range of the box", "window grown from the corner", "K2 = 0.02", "population covariance"]
)
def test_the_comparison_catches_a_broken_metric(bug, monkeypatch):
    """The check can fail: each deliberately broken box metric differs from the reference on some box."""
    metric = M.box_metrics
    if bug == "data range of the box":
        metric = _box_data_range
    elif bug == "window grown from the corner":
        monkeypatch.setattr(M, "ssim_box", _grown_from_the_corner)
    elif bug == "K2 = 0.02":
        monkeypatch.setattr(M, "K2", 0.02)
    else:

        def population(pred, gt, data_range):  # rescales the sample covariance of every window by (n - 1) / n
            n = WIN * WIN
            x, y = pred.unsqueeze(1).double(), gt.unsqueeze(1).double()
            w = torch.ones(1, 1, WIN, WIN, dtype=x.dtype) / n
            conv = torch.nn.functional.conv2d
            ux, uy = conv(x, w), conv(y, w)
            vx, vy = conv(x * x, w) - ux * ux, conv(y * y, w) - uy * uy
            vxy = conv(x * y, w) - ux * uy
            dr = torch.as_tensor(data_range, dtype=x.dtype).reshape(-1, 1, 1, 1)
            c1, c2 = (M.K1 * dr) ** 2, (M.K2 * dr) ** 2
            return (((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))).squeeze(1)

        monkeypatch.setattr(M, "ssim_map", population)
    assert _mismatches(metric, BOXES), f"{bug}: not caught"
