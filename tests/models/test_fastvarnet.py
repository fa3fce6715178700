"""advmri.models.fastvarnet: the fast E2E-VarNet / U-Net forward equals fastMRI's own (float64 to 1e-12, float32 to
its rounding), gradients included, on random weights, odd sizes, per-sample masks and the committed checkpoint."""

from __future__ import annotations

import copy

import pytest
import torch
from fastmri.models import Unet, VarNet

from advmri.core import kspace as K
from advmri.models import fastvarnet
from advmri.models.networks import build, load_checkpoint
from advmri.util.paths import project_path

TINY = dict(num_cascades=2, chans=4, pools=2, sens_chans=2, sens_pools=2)


def _net(dtype=torch.float64, seed=0, **cfg) -> VarNet:
    torch.manual_seed(seed)
    net = VarNet(**(cfg or TINY)).to(dtype)
    with torch.no_grad():  # fastMRI initialises dc_weight to 1 and convolutions near zero: make every term count
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def _kspace(b, coils, rows, cols, dtype=torch.complex128, per_sample=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    k = torch.view_as_complex(torch.randn(b, coils, rows, cols, 2, generator=g, dtype=torch.float64)).to(dtype)
    masks = torch.rand(b if per_sample else 1, cols, generator=g) < 0.3
    for i in range(masks.shape[0]):
        half = 3 + 2 * i  # different centre widths per sample when per_sample
        masks[i, cols // 2 - half : cols // 2 + half] = True
    masks = masks.expand(b, cols)
    return k * masks[:, None, None, :], masks.reshape(b, 1, 1, cols, 1)


@pytest.mark.parametrize(
    "rows,cols",
    [(64, 48), (64, 50), (66, 50), (63, 47)],  # sign +1, sign -1, both halves odd, odd sizes (shifted FFTs)
)
@pytest.mark.parametrize("nlf", [None, 6])
def test_forward_and_gradients_equal_fastmri_in_float64(rows, cols, nlf):
    net = _net()
    k, mask = _kspace(2, 3, rows, cols, per_sample=nlf is None)
    w = torch.rand(rows, cols, dtype=torch.float64)
    z1, z2 = k.clone().requires_grad_(), k.clone().requires_grad_()
    ref = net(K.to_real(z1), mask, nlf)
    out = fastvarnet.varnet_forward(net, z2, mask, nlf)
    assert out.shape == ref.shape == (2, rows, cols)
    assert float((out - ref).abs().max() / ref.abs().max()) < 1e-12
    params = list(net.parameters())
    g_ref = torch.autograd.grad((ref * w).sum(), [z1, *params])
    g_out = torch.autograd.grad((out * w).sum(), [z2, *params])
    for a, b in zip(g_ref, g_out, strict=True):
        assert float((a - b).abs().max()) <= 1e-10 * float(a.abs().max()) + 1e-14


def test_float32_within_rounding_and_per_sample_centre():
    net = _net(torch.float32, **dict(num_cascades=3, chans=8, pools=3, sens_chans=4, sens_pools=3))
    k, mask = _kspace(3, 4, 96, 64, dtype=torch.complex64, per_sample=True)
    with torch.no_grad():
        ref = net(K.to_real(k), mask, None)
        out = fastvarnet.varnet_forward(net, k, mask, None)
    assert float((out - ref).abs().max() / ref.abs().max()) < 2e-5


def test_unet_forward_equals_fastmri_with_odd_sizes():
    torch.manual_seed(0)
    unet = Unet(2, 3, chans=4, num_pool_layers=3).double().eval()
    x = torch.randn(3, 2, 37, 29, dtype=torch.float64)  # odd: the reflect padding of the up path
    ref = unet(x)
    out = fastvarnet.unet_forward(unet, x)
    assert out.shape == ref.shape and float((out - ref).abs().max()) < 1e-12


def test_fold_unfold_roundtrip():
    x = torch.randn(3, 5, 7, 4)
    folded = fastvarnet.fold(x)
    assert folded.shape == (1, 15, 7, 4) and folded.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(folded[0, 5:10], x[1]) and torch.equal(fastvarnet.unfold(folded, 3), x)


def _both(m, b=2, coils=4, rows=96, cols=64, nlf=8, crop=(48, 48)):
    """A Reconstructor's output on the fast path and with ``impl=fastmri`` (a copy), on the same k-space."""
    k, mask = _kspace(b, coils, rows, cols, dtype=torch.complex64)
    mask1 = mask[0, 0, 0, :, 0]
    with torch.no_grad():
        return m(k, mask1, nlf, crop), copy.deepcopy(m).set_impl("fastmri")(k, mask1, nlf, crop)


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_reconstructor_uses_fast_path_and_falls_back():
    m = build("varnet", "tiny").freeze()
    fast, ref = _both(m)
    assert m.impl == "fast" and _rel(fast, ref) < 2e-5
    m.net.cascades[0].model.unet.down_sample_layers[0].layers[3].p = 0.5  # active dropout in training
    m.net.train()
    assert not fastvarnet.supports(m.net)
    m.net.eval()
    assert fastvarnet.supports(m.net)
    with pytest.raises(ValueError, match="impl"):
        m.set_impl("slow")


def test_unet_reconstructor_fast_equals_fastmri():
    torch.manual_seed(2)
    fast, ref = _both(build("unet", "tiny").freeze(), b=3)
    assert _rel(fast, ref) < 2e-5


@pytest.mark.parametrize("kind", ["varnet", "unet"])
def test_bf16_close_to_fastmri_autocast(kind):
    fast, ref = _both(build(kind, "tiny").freeze().set_precision("bf16"))
    assert fast.dtype == torch.float32
    assert float((fast - ref).norm() / ref.norm()) < 2e-2  # bf16 has 8 bits of mantissa


def test_committed_checkpoint_equals_fastmri():
    path = project_path("models/varnet-small.pt")
    if not path.is_file():
        pytest.skip("no committed VarNet checkpoint")
    m, _ = load_checkpoint(path)
    fast, ref = _both(m.freeze(), b=1, coils=8, rows=256, cols=160, nlf=12, crop=(128, 128))
    assert _rel(fast, ref) < 2e-5
