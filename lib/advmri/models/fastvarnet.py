"""A fast forward pass for fastMRI's E2E-VarNet and U-Net, over the same modules and weights.

:func:`varnet_forward` computes ``fastmri.models.VarNet.forward`` from the parameters of an unchanged
``VarNet`` (so fastMRI's and advmri's checkpoints load as they are), to float32 rounding, faster:

- **No FFT shifts.** For an even length ``N``, ``fftshift(fft(ifftshift(x)))[k] = s c[k] fft(c x)[k]`` with the
  checkerboard ``c[n] = (-1)^n`` and the sign ``s = (-1)^(N/2)``, and the same for the inverse. The cascades
  therefore carry *modulated* k-space ``c k`` and *modulated* sensitivities ``c S``: every ``fftshift`` (a copy
  per call in fastMRI) disappears, and only the input is modulated once. The final RSS is a magnitude, on
  which ``c`` and ``s`` have no effect. Odd sizes fall back to the shifted FFTs.
- **Native complex arithmetic** instead of fastMRI's real ``(..., 2)`` views with permutes and copies.
- **Channels-last U-Nets**: ``view_as_real`` of a complex ``(b, h, w)`` image *is* a channels-last ``(b, 2, h, w)``
  tensor, so the U-Net input costs no copy; oneDNN's convolutions run without layout reorders, and fastMRI's
  ``InstanceNorm2d`` runs as ``group_norm`` with one group per channel (the same statistics, and a channels-last
  kernel instead of a reshape to ``(1, b*C, h, w)``).
- **Batched centre masking** of the sensitivity network (fastMRI loops over the batch in Python with ``.item()``).

:func:`unet_forward` is the U-Net part alone, used by both. Dropout is only applied by fastMRI's own forward:
the fast path refuses a module in training mode with a non-zero dropout probability (:func:`supports`).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from fastmri.models import Unet, VarNet
from fastmri.models.unet import ConvBlock, TransposeConvBlock
from torch import nn

__all__ = ["supports", "unet_forward", "varnet_forward"]

NORM_EPS = 1e-5  # nn.InstanceNorm2d's default, used by every fastMRI ConvBlock
SLOPE = 0.2  # fastMRI's LeakyReLU negative slope


def supports(net: nn.Module) -> bool:
    """Whether the fast path computes ``net``'s forward exactly: no active dropout anywhere in it."""
    return not any(isinstance(m, nn.Dropout2d) and m.p > 0 and m.training for m in net.modules())


def _norm_act(x: torch.Tensor) -> torch.Tensor:
    """InstanceNorm2d (no affine, no running statistics) + LeakyReLU(0.2) on a folded ``(1, n*C, h, w)`` tensor:
    per-channel batch statistics over ``(h, w)`` of one sample *are* the per-(item, channel) instance statistics."""
    return F.leaky_relu(F.batch_norm(x, None, None, training=True, momentum=0.0, eps=NORM_EPS), SLOPE, inplace=True)


def _conv(x: torch.Tensor, weight: torch.Tensor, n: int, **kw: int) -> torch.Tensor:
    """A convolution applied to each of the ``n`` items folded into the channels: grouped, one group per item."""
    return F.conv2d(x, weight.repeat(n, 1, 1, 1), None, groups=n, **kw)


def _conv_block(block: ConvBlock, x: torch.Tensor, n: int) -> torch.Tensor:
    """fastMRI's ConvBlock: (conv3x3 -> instance norm -> LeakyReLU) twice, on folded ``(1, n*C, h, w)``."""
    x = _norm_act(_conv(x, block.layers[0].weight, n, padding=1))
    return _norm_act(_conv(x, block.layers[4].weight, n, padding=1))


def _transpose_block(block: TransposeConvBlock, x: torch.Tensor, n: int) -> torch.Tensor:
    """fastMRI's TransposeConvBlock: conv-transpose 2x2 stride 2 -> instance norm -> LeakyReLU (folded)."""
    weight = block.layers[0].weight.repeat(n, 1, 1, 1)  # (n*in, out, 2, 2): grouped transpose weight
    return _norm_act(F.conv_transpose2d(x, weight, None, stride=2, groups=n))


def _cat(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """Concatenate the channels of each folded item.

    ``(1, n*Ca, h, w)`` and ``(1, n*Cb, h, w)`` -> ``(1, n*(Ca+Cb), h, w)``, channels-last."""
    h, w = a.shape[-2:]
    a5 = a.permute(0, 2, 3, 1).reshape(1, h, w, n, -1)  # channels-last memory: a view
    b5 = b.permute(0, 2, 3, 1).reshape(1, h, w, n, -1)
    return torch.cat([a5, b5], dim=-1).reshape(1, h, w, -1).permute(0, 3, 1, 2)


def fold(x: torch.Tensor) -> torch.Tensor:
    """``(n, C, h, w)`` -> the folded channels-last ``(1, n*C, h, w)`` on which :func:`unet_folded` runs."""
    n, c, h, w = x.shape
    return x.permute(2, 3, 0, 1).contiguous().reshape(1, h, w, n * c).permute(0, 3, 1, 2)


def unfold(x: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`fold`: ``(1, n*C, h, w)`` -> ``(n, C, h, w)`` (a strided view)."""
    _, nc, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(h, w, n, nc // n).permute(2, 3, 0, 1)


def unet_folded(unet: Unet, x: torch.Tensor, n: int) -> torch.Tensor:
    """fastMRI's ``Unet.forward`` for ``n`` items folded into the channels of one channels-last sample.

    ``(1, n*in_chans, h, w)`` -> ``(1, n*out_chans, h, w)``. The same operations in the same order (average
    pooling, reflect padding of odd sizes, skip concatenation); the batch lives in the channels so that
    instance norm is a batch norm and every tensor stays channels-last (oneDNN's fast kernels, no reorders).
    """
    stack = []
    out = x
    for layer in unet.down_sample_layers:
        out = _conv_block(layer, out, n)
        stack.append(out)
        out = F.avg_pool2d(out, kernel_size=2, stride=2, padding=0)
    out = _conv_block(unet.conv, out, n)
    for transpose_conv, conv in zip(unet.up_transpose_conv, unet.up_conv, strict=True):
        skip = stack.pop()
        out = _transpose_block(transpose_conv, out, n)
        pad = [0, int(out.shape[-1] != skip.shape[-1]), 0, int(out.shape[-2] != skip.shape[-2])]
        if any(pad):
            out = F.pad(out, pad, "reflect")
        out = _cat(out, skip, n)
        if isinstance(conv, nn.Sequential):  # the last level: ConvBlock then a 1x1 convolution with bias
            out = _conv_block(conv[0], out, n)
            last = cast(nn.Conv2d, conv[1])
            bias = last.bias.repeat(n) if last.bias is not None else None
            out = F.conv2d(out, last.weight.repeat(n, 1, 1, 1), bias, groups=n)
        else:
            out = _conv_block(conv, out, n)
    return out


def unet_forward(unet: Unet, x: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """fastMRI's ``Unet.forward`` on ``(b, in_chans, h, w)`` -> ``(b, out_chans, h, w)`` (:func:`unet_folded`);
    ``bf16``: under bfloat16 autocast, returned in ``x``'s dtype."""
    return unfold(_unet_at(unet, fold(x), x.shape[0], bf16), x.shape[0])


def _unet_at(unet: Unet, x: torch.Tensor, n: int, bf16: bool) -> torch.Tensor:
    """:func:`unet_folded`, under bfloat16 autocast when ``bf16`` (float64 inputs never autocast), in ``x``'s dtype."""
    if not bf16 or x.dtype == torch.float64:
        return unet_folded(unet, x, n)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
        out = unet_folded(unet, x, n)
    return out.to(x.dtype)


def _norm_unet(norm_unet: nn.Module, image: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """fastMRI's NormUnet on complex ``(b, h, w)`` images -> complex ``(b, h, w)``.

    Real and imaginary parts are normalised separately (mean, unbiased std over the image), padded to a
    multiple of 16 (zeros, centred), passed through the U-Net as 2 channels, unpadded and un-normalised.
    ``bf16``: the U-Net alone runs under bfloat16 autocast and hands float32 back (as advmri's
    ``MixedPrecisionUnet``); the normalisation stays float32.
    """
    b, h, w = image.shape
    x = torch.view_as_real(image.permute(1, 2, 0).contiguous())  # (h, w, b, 2) real: the folded layout
    mean = x.mean(dim=(0, 1), keepdim=True)  # (1, 1, b, 2)
    std = x.std(dim=(0, 1), keepdim=True)
    x = ((x - mean) / std).reshape(1, h, w, 2 * b).permute(0, 3, 1, 2)  # (1, b*2, h, w) channels-last
    hm, wm = ((h - 1) | 15) + 1, ((w - 1) | 15) + 1
    hp, wp = ((hm - h) // 2, (hm - h + 1) // 2), ((wm - w) // 2, (wm - w + 1) // 2)
    if hm != h or wm != w:
        x = F.pad(x, [wp[0], wp[1], hp[0], hp[1]])
    x = _unet_at(norm_unet.unet, x, b, bf16)[..., hp[0] : hm - hp[1], wp[0] : wm - wp[1]]
    x = x.permute(0, 2, 3, 1).reshape(h, w, b, 2) * std + mean  # (h, w, b, 2)
    return torch.view_as_complex(x.contiguous()).permute(2, 0, 1)  # (b, h, w) complex


def checkerboard(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """``(-1)^(r + c)`` as a real ``(rows, cols)`` tensor: the modulation that turns plain FFTs into centred ones."""
    r = 1 - 2 * (torch.arange(rows, device=device) % 2)
    c = 1 - 2 * (torch.arange(cols, device=device) % 2)
    return (r[:, None] * c[None, :]).float()


def _sign(rows: int, cols: int) -> float:
    """``(-1)^(rows/2 + cols/2)``: the constant of the modulated centred FFT for even sizes."""
    return -1.0 if (rows // 2 + cols // 2) % 2 else 1.0


def _center_lines(mask: torch.Tensor, num_low_frequencies: int | None) -> torch.Tensor:
    """fastMRI's ``get_pad_and_num_low_freqs`` + ``batched_mask_center`` as one ``(b, 1, 1, cols)`` real mask."""
    cols = mask.shape[-2]
    m = mask[:, 0, 0, :, 0]  # (b, cols) bool
    if num_low_frequencies is None or num_low_frequencies == 0:
        sq = m.to(torch.int8)
        cent = cols // 2
        left = torch.argmin(sq[:, :cent].flip(1), dim=1)
        right = torch.argmin(sq[:, cent:], dim=1)
        nlf = torch.max(2 * torch.min(left, right), torch.ones_like(left))
    else:
        nlf = torch.full((m.shape[0],), int(num_low_frequencies), dtype=torch.long, device=m.device)
    pad = (cols - nlf + 1) // 2
    idx = torch.arange(cols, device=m.device)
    keep = (idx[None, :] >= pad[:, None]) & (idx[None, :] < (pad + nlf)[:, None])  # (b, cols)
    return keep[:, None, None, :].float()


def _sensitivities(
    net: VarNet, kspace: torch.Tensor, mask: torch.Tensor, nlf: int | None, bf16: bool = False
) -> torch.Tensor:
    """fastMRI's SensitivityModel on complex ``(b, coils, rows, cols)`` k-space -> maps ``(b, coils, rows, cols)``."""
    sens = net.sens_net
    if sens.mask_center:
        kspace = kspace * _center_lines(mask, nlf)
    b, nc, rows, cols = kspace.shape
    images = _ifft2c(kspace)  # (b, coils, rows, cols) complex
    maps = _norm_unet(sens.norm_unet, images.reshape(b * nc, rows, cols), bf16).view(b, nc, rows, cols)
    return maps / _abs2(maps).sum(dim=1, keepdim=True).sqrt()


def _abs2(x: torch.Tensor) -> torch.Tensor:
    """``|x|^2`` of a complex tensor as a real tensor of the same shape (no square root, so no kink at 0)."""
    return x.real.square() + x.imag.square()


def _ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal inverse FFT over the last two dims (fastMRI's ``ifft2c`` on complex tensors)."""
    shifted = torch.fft.ifftshift(kspace, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(shifted, norm="ortho"), dim=(-2, -1))


def _fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal FFT over the last two dims (fastMRI's ``fft2c`` on complex tensors)."""
    shifted = torch.fft.ifftshift(image, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(shifted, norm="ortho"), dim=(-2, -1))


class _SensReduce(torch.autograd.Function):
    """``sum_c x_c conj(S_c)``: coil images ``(b, coils, h, w)`` -> image ``(b, h, w)``, complex.

    With a hand-written backward: autograd's would materialise ``conj`` of the full-size operands on every
    call (a copy each); here the caller passes ``conj(S)`` once for all cascades, and only the small image's
    gradient is conjugated. ``sens_conj`` must equal ``sens.conj()`` (its gradient flows through ``sens``).
    """

    @staticmethod
    def forward(ctx, x, sens, sens_conj):
        ctx.save_for_backward(x, sens)
        return (x * sens_conj).sum(dim=1)

    @staticmethod
    def backward(ctx, grad):
        x, sens = ctx.saved_tensors
        gx = grad[:, None] * sens if ctx.needs_input_grad[0] else None
        gs = grad.conj().resolve_conj()[:, None] * x if ctx.needs_input_grad[1] else None
        return gx, gs, None


class _SensExpand(torch.autograd.Function):
    """``u S_c``: image ``(b, h, w)`` -> coil images ``(b, coils, h, w)``, complex (see :class:`_SensReduce`)."""

    @staticmethod
    def forward(ctx, image, sens, sens_conj):
        ctx.save_for_backward(image, sens_conj)
        return image[:, None] * sens

    @staticmethod
    def backward(ctx, grad):
        image, sens_conj = ctx.saved_tensors
        gi = (grad * sens_conj).sum(dim=1) if ctx.needs_input_grad[0] else None
        gs = grad * image.conj().resolve_conj()[:, None] if ctx.needs_input_grad[1] else None
        return gi, gs, None


def varnet_forward(
    net: VarNet,
    masked_kspace: torch.Tensor,  # (b, coils, rows, cols) complex
    mask: torch.Tensor,  # (b, 1, 1, cols, 1) bool, fastMRI's layout
    num_low_frequencies: int | None = None,
    bf16: bool = False,
) -> torch.Tensor:  # (b, rows, cols) real magnitude
    """``fastmri.models.VarNet.forward`` on complex k-space, to float32 rounding (see the module docstring).

    ``bf16``: the U-Nets (sensitivity and cascades) run under bfloat16 autocast; FFTs, coil combination and
    data consistency stay float32, as with advmri's ``MixedPrecisionUnet`` on fastMRI's forward.
    """
    rows, cols = masked_kspace.shape[-2:]
    sens = _sensitivities(net, masked_kspace, mask, num_low_frequencies, bf16)  # (b, coils, rows, cols) complex
    m = mask[..., 0].to(masked_kspace.real.dtype)  # (b, 1, 1, cols) real
    even = rows % 2 == 0 and cols % 2 == 0
    if even:  # work on modulated k-space c*k and maps c*S (module docstring): no shifts in the cascades
        cb = checkerboard(rows, cols, masked_kspace.device).to(masked_kspace.real.dtype)
        s = _sign(rows, cols)
        ref = masked_kspace * cb
        sens_c = sens * cb
    else:
        ref, sens_c, s = masked_kspace, sens, 1.0
    sens_conj = sens_c.conj().resolve_conj()  # (b, coils, rows, cols) complex, used by every cascade
    current = ref
    for cascade in net.cascades:
        w = cascade.dc_weight  # (1,)
        if even:  # sum_c IFFT(c k)_c conj(c S_c) * s, then FFT(u S c) * s, with -1 and s folded into the image
            image = _SensReduce.apply(torch.fft.ifft2(current, norm="ortho"), sens_c, sens_conj)  # (b, rows, cols)
            update = _norm_unet(cascade.model, image if s > 0 else -image, bf16) * -s
            model = torch.fft.fft2(_SensExpand.apply(update, sens_c, sens_conj), norm="ortho")  # minus model term
        else:
            image = _SensReduce.apply(_ifft2c(current), sens_c, sens_conj)
            model = _fft2c(_SensExpand.apply(-_norm_unet(cascade.model, image, bf16), sens_c, sens_conj))
        current = torch.addcmul(model + ref * (m * w), current, 1 - m * w)
    coil_images = torch.fft.ifft2(current, norm="ortho") if even else _ifft2c(current)
    return _abs2(coil_images).sum(dim=1).sqrt()
