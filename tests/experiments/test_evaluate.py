"""advmri.experiments.evaluate: box quality covers every located box; batched evaluation equals one slice per
pass."""

from __future__ import annotations

import numpy as np

from advmri.experiments.evaluate import box_quality, quality_table
from advmri.models.networks import build


def test_box_quality_covers_every_located_box(tiny_data):
    from advmri.data.dataset import AnnotatedSlices
    from advmri.experiments.evaluate import box_quality, quality_table, summary

    models = {"unet": build("unet", "tiny").freeze()}
    qb = box_quality(models, tiny_data, accelerations=(8,), progress=False)
    n = len(AnnotatedSlices(tiny_data, acceleration=8))
    assert len(qb) == 2 * n and set(qb.method) == {"zero-filled", "unet"}
    assert qb.box_ssim.between(-1, 1).all() and qb.lesion_retained.notna().any()
    s = summary(quality_table(models, tiny_data, accelerations=(8,), max_slices=2, progress=False), qb)
    assert {"box_ssim", "box_psnr", "boxes"} <= set(s.columns) and (s.boxes == n).all()


def test_batched_evaluation_equals_one_slice_per_pass(quality_specs, tiny_data):
    from advmri.experiments.run import load_model

    models = {k: load_model(v) for k, v in quality_specs.items()}
    one = quality_table(models, tiny_data, (8,), max_slices=6, batch=1, progress=False)
    many = quality_table(models, tiny_data, (8,), max_slices=6, batch=4, progress=False)
    m = one.merge(many, on=["method", "acceleration", "file", "slice"])
    assert len(m) == len(one) == len(many) == 6 * 3
    for c in ("ssim", "psnr", "nmse"):
        assert np.allclose(m[f"{c}_x"], m[f"{c}_y"], rtol=1e-5, atol=1e-6), c
    only = quality_table(models, tiny_data, (8,), max_slices=6, batch=4, only=[5], progress=False)
    assert sorted(only.slice.unique()) == sorted(many.slice.iloc[4 * 3 :].unique())  # the whole batch of slice 5
    b1 = box_quality(models, tiny_data, (8,), batch=1, progress=False)
    b4 = box_quality(models, tiny_data, (8,), batch=4, progress=False)
    assert np.allclose(
        b1.sort_values(["method", "file", "slice", "bx"]).box_mse,
        b4.sort_values(["method", "file", "slice", "bx"]).box_mse,
        rtol=1e-5,
    )
