"""advmri.core.noiselevel: the thermal noise estimated from the outer k-space matches the generator's, and a budget
converts to noise levels."""

from __future__ import annotations

import math

import numpy as np
import torch

from advmri.core.noiselevel import coil_noise_std, noise_fraction
from advmri.data.synth import PRESETS, generate_volume


def test_noise_estimate_matches_the_generators_sigma():
    vol = generate_volume(PRESETS["small"], 7, 0)
    for s in (2, 5, 8):
        k = torch.from_numpy(vol["kspace"][s])  # (coils, rows, cols) complex
        est = coil_noise_std(k)  # per real/imaginary part
        truth = vol["noise_sigma"][s] / math.sqrt(2)
        assert np.allclose(est.numpy(), truth, rtol=0.08), (est, truth)  # every coil within 8%


def test_noise_fraction_is_the_noise_norm_over_the_data_norm():
    g = torch.Generator().manual_seed(0)
    noise = torch.complex(*torch.randn(2, 3, 64, 40, generator=g)) * 0.5  # sigma_c = 0.5
    k = noise.clone()
    k[:, 28:36, 10:30] += 50.0  # a strong centre: the signal
    acq = torch.ones(40, dtype=torch.bool)
    f = noise_fraction(k, acq)
    expect = 0.5 * math.sqrt(2 * 64 * 40) / torch.linalg.vector_norm(k.reshape(3, -1), dim=-1)
    assert torch.allclose(f, expect, rtol=0.1)
    mask = torch.zeros(40, dtype=torch.bool)
    mask[18:22] = True
    sampled = noise_fraction(k, acq, mask)
    assert (sampled < f).all()  # the sampled centre holds most of the signal: less noise relative to it
    assert torch.allclose(coil_noise_std(noise), torch.full((3,), 0.5), rtol=0.15)
