import fastmri
import torch

from advmri.core import kspace as K


def test_fft_roundtrip_and_parseval():
    x = torch.randn(2, 3, 16, 12, dtype=torch.complex64)
    k = K.fft2c(x)
    assert torch.allclose(K.ifft2c(k), x, atol=1e-5)
    assert torch.allclose(k.abs().pow(2).sum(), x.abs().pow(2).sum(), rtol=1e-4)  # orthonormal


def test_fft_is_centred():
    x = torch.ones(1, 16, 16, dtype=torch.complex64)
    k = K.fft2c(x)
    assert k.abs().argmax().item() == 8 * 16 + 8  # DC in the centre


def test_rss_matches_fastmri_and_crop():
    x = torch.randn(4, 20, 18, dtype=torch.complex64)
    r = K.rss(x)
    ref = fastmri.rss(fastmri.complex_abs(torch.view_as_real(x)), dim=0)
    assert torch.allclose(r, ref, atol=1e-6)
    assert K.center_crop(r, (10, 10)).shape == (10, 10)


def test_column_mask():
    m = K.column_mask(10, 2, 7)
    assert m.tolist() == [False] * 2 + [True] * 5 + [False] * 3
    k = torch.ones(2, 3, 10, dtype=torch.complex64)
    assert K.apply_column_mask(k, m)[..., 0].abs().sum() == 0
