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


# ---------------------------------------------------------------------------------------------
# Adjointness: <A x, y> = <x, A^H y> for every linear operator of advmri.core.kspace, with complex random x, y.
# The centred orthonormal FFT F (fft2c) has F^H = ifft2c and keeps the norm; the column mask M (apply_column_mask) is
# a self-adjoint projection; the masked FFT M F has the adjoint F^H M; the SENSE operator E x = M F (S x) built
# from these primitives (as advmri.models.classical does) has E^H y = sum_c conj(S_c) F^H M y_c; the centre crop C
# has as adjoint the zero-padding around the crop (fastMRI's offset (size - crop) // 2).
import pytest  # noqa: E402

SHAPES = [(16, 16), (12, 10), (9, 14), (15, 7)]  # square, non-square, odd sizes
COILS = [1, 4, 15]


def _crandn(*shape, g, dtype=torch.complex128):
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    return torch.complex(torch.randn(*shape, generator=g, dtype=real), torch.randn(*shape, generator=g, dtype=real))


def _dot(a, b):
    """<a, b> = sum conj(a) b (complex)."""
    return (a.conj() * b).sum()


def adjoint_gap(A, AH, x, y) -> float:
    """|<A x, y> - <x, A^H y>| relative to the larger of the two: rounding-level iff AH is the adjoint of A."""
    lhs, rhs = _dot(A(x), y), _dot(x, AH(y))
    return float((lhs - rhs).abs() / max(lhs.abs(), rhs.abs()))


def norm_gap(A, x) -> float:
    return float((A(x).abs().pow(2).sum().sqrt() / x.abs().pow(2).sum().sqrt() - 1).abs())


def _mask(cols, g):
    m = torch.rand(cols, generator=g) < 0.4
    m[cols // 2] = True
    return m


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-12), (torch.complex64, 1e-5)], ids=["c128", "c64"])
def test_centred_fft_is_orthonormal_and_ifft_is_its_adjoint(shape, dtype, tol):
    g = torch.Generator().manual_seed(sum(shape))
    x, y = _crandn(3, *shape, g=g, dtype=dtype), _crandn(3, *shape, g=g, dtype=dtype)
    assert K.fft2c(x).dtype == dtype
    assert adjoint_gap(K.fft2c, K.ifft2c, x, y) < tol
    assert adjoint_gap(K.ifft2c, K.fft2c, x, y) < tol
    assert norm_gap(K.fft2c, x) < tol and norm_gap(K.ifft2c, x) < tol  # ||F x|| = ||x||
    assert float((K.ifft2c(K.fft2c(x)) - x).abs().max()) < 10 * tol  # F^H F = I


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-12), (torch.complex64, 1e-5)], ids=["c128", "c64"])
def test_masked_fft_and_its_adjoint(shape, dtype, tol):
    g = torch.Generator().manual_seed(3 * sum(shape))
    mask = _mask(shape[1], g)
    x, y = _crandn(2, 4, *shape, g=g, dtype=dtype), _crandn(2, 4, *shape, g=g, dtype=dtype)

    def M(k):
        return K.apply_column_mask(k, mask)

    assert adjoint_gap(M, M, x, y) < tol  # self-adjoint
    assert torch.equal(M(M(x)), M(x))  # a projection
    assert adjoint_gap(lambda v: M(K.fft2c(v)), lambda k: K.ifft2c(M(k)), x, y) < tol
    # the (batch, cols) mask form of apply_column_mask: per item
    m2 = torch.stack([mask, _mask(shape[1], g)])[:, None, None, :]
    assert adjoint_gap(lambda k: K.apply_column_mask(k, m2), lambda k: K.apply_column_mask(k, m2), x, y) < tol


def _sense(sens, mask):
    """E x = M F (S x) and E^H y = sum_c conj(S_c) F^H M y_c from advmri.core.kspace's primitives."""

    def E(x):  # (B, R, C) -> (B, coils, R, C)
        return K.apply_column_mask(K.fft2c(sens * x[:, None]), mask)

    def EH(y):
        return (sens.conj() * K.ifft2c(K.apply_column_mask(y, mask))).sum(1)

    return E, EH


@pytest.mark.parametrize("coils", COILS)
@pytest.mark.parametrize("shape", SHAPES)
def test_sense_operator_and_its_adjoint(coils, shape):
    g = torch.Generator().manual_seed(coils * 100 + sum(shape))
    sens = _crandn(2, coils, *shape, g=g)
    E, EH = _sense(sens, _mask(shape[1], g))
    x, y = _crandn(2, *shape, g=g), _crandn(2, coils, *shape, g=g)
    assert adjoint_gap(E, EH, x, y) < 1e-12
    # normalised sensitivities and a full mask: E is an isometry (sum_c |S_c|^2 = 1)
    sens = sens / K.rss(sens, dim=1)[:, None]
    E, EH = _sense(sens, torch.ones(shape[1], dtype=torch.bool))
    assert norm_gap(E, x) < 1e-12 and float((EH(E(x)) - x).abs().max()) < 1e-12


def _zero_pad(y, shape):
    """The adjoint of the centre crop: y placed at fastMRI's crop offset in zeros of ``shape``."""
    out = torch.zeros(*y.shape[:-2], *shape, dtype=y.dtype)
    r0, c0 = (shape[0] - y.shape[-2]) // 2, (shape[1] - y.shape[-1]) // 2
    out[..., r0 : r0 + y.shape[-2], c0 : c0 + y.shape[-1]] = y
    return out


@pytest.mark.parametrize("full,crop", [((16, 16), (8, 8)), ((15, 12), (8, 7)), ((9, 14), (9, 3)), ((7, 7), (7, 7))])
def test_centre_crop_and_zero_padding_are_adjoint(full, crop):
    g = torch.Generator().manual_seed(sum(full) + sum(crop))
    x, y = _crandn(2, *full, g=g), _crandn(2, *crop, g=g)
    assert adjoint_gap(lambda v: K.center_crop(v, crop), lambda v: _zero_pad(v, full), x, y) < 1e-12
    assert torch.equal(K.center_crop(_zero_pad(y, full), crop), y)  # C C^H = I


def test_real_views_keep_the_inner_product():
    g = torch.Generator().manual_seed(0)
    x, y = _crandn(3, 5, 4, g=g), _crandn(3, 5, 4, g=g)
    assert torch.allclose((K.to_real(x) * K.to_real(y)).sum(), _dot(x, y).real, rtol=1e-13)
    assert torch.equal(K.to_complex(K.to_real(x)), x)


def _backward_fft2c(x):  # a wrong normalisation: torch's default "backward" FFT, centred like fft2c
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="backward"), dim=(-2, -1))


def _backward_ifft2c(k):
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="backward"), dim=(-2, -1))


def _uncentred_ifft2c(k):  # orthonormal, but without the centring shifts: not the adjoint of fft2c
    return torch.fft.ifft2(k, norm="ortho")


@pytest.mark.parametrize("broken", ["backward FFT pair", "uncentred adjoint", "SENSE without conj", "mask not applied"])
def test_the_checks_catch_a_broken_operator(broken):
    """The checks can fail: a wrongly normalised FFT, an adjoint with the other centring, a SENSE adjoint
    without the complex conjugate, and an adjoint that forgets the mask are all far from rounding."""
    g = torch.Generator().manual_seed(5)
    shape = (9, 14)
    x, y = _crandn(2, *shape, g=g), _crandn(2, *shape, g=g)
    if broken == "backward FFT pair":
        assert torch.allclose(_backward_ifft2c(_backward_fft2c(x)), x)  # it still inverts ...
        assert adjoint_gap(_backward_fft2c, _backward_ifft2c, x, y) > 0.1  # ... but is not unitary
        assert norm_gap(_backward_fft2c, x) > 0.1
    elif broken == "uncentred adjoint":
        assert adjoint_gap(K.fft2c, _uncentred_ifft2c, x, y) > 0.1
    else:
        sens, mask = _crandn(2, 4, *shape, g=g), _mask(shape[1], g)
        E, EH = _sense(sens, mask)
        if broken == "SENSE without conj":
            wrong = lambda k: (sens * K.ifft2c(K.apply_column_mask(k, mask))).sum(1)  # noqa: E731
        else:
            wrong = lambda k: (sens.conj() * K.ifft2c(k)).sum(1)  # noqa: E731
        yk = _crandn(2, 4, *shape, g=g)
        assert adjoint_gap(E, EH, x, yk) < 1e-12 and adjoint_gap(E, wrong, x, yk) > 0.1
