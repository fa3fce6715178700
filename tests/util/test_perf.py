import sys

import pandas as pd
import torch

import pytest

from advmri.util.perf import default_chunk, keep_freed_memory
from advmri.experiments.run import AttackRun


def test_default_chunk_by_device_and_run_override():
    assert default_chunk("cpu") == 4 and default_chunk("cuda") == 16
    assert default_chunk("cpu", 8 * 256 * 160) == 4  # small preset
    assert default_chunk("cpu", 15 * 640 * 368) == 1  # fastmri preset: one item per pass
    assert default_chunk("cuda", 15 * 640 * 368) == 16
    assert AttackRun(device="cpu").items_per_pass(8 * 256 * 160) == 4
    assert AttackRun(device="cpu", chunk=7).items_per_pass(15 * 640 * 368) == 7
    with pytest.raises(ValueError, match="chunk.*must be >= 1"):
        AttackRun(chunk=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_tunes_glibc_once():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent


def test_out_of_memory_halves_the_pass_and_loses_nothing():
    from advmri.util.perf import run_chunked

    done, logs = [], []

    def step(lo, hi):
        if hi - lo > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        done.extend(range(lo, hi))

    k = run_chunked(21, 16, step, log=logs.append)
    assert done == list(range(21)) and k == 2
    assert logs == ["out of memory with 16 items per pass; retrying with 8",
                    "out of memory with 8 items per pass; retrying with 4",
                    "out of memory with 4 items per pass; retrying with 2"]
    with pytest.raises(torch.OutOfMemoryError):
        run_chunked(3, 1, lambda lo, hi: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory")))
    with pytest.raises(ValueError):  # anything else is not retried
        run_chunked(3, 2, lambda lo, hi: (_ for _ in ()).throw(ValueError("bad")))


def test_attack_run_survives_simulated_oom_with_identical_results(tiny_data, tmp_path, monkeypatch):
    """A GPU that holds only one item per pass: the run backs off to 1 and gives the chunk=1 results."""
    import advmri.experiments.run as R
    from advmri.models.networks import build, save_checkpoint

    ck = tmp_path / "m.pt"
    save_checkpoint(ck, build("unet", "tiny"))
    kw = dict(model=str(ck), data_dir=str(tiny_data), max_targets=2, eps=[0.0, 0.01, 0.02], steps=2, random_draws=2)
    ref, _ = R.execute(R.AttackRun.from_params("noise", chunk=1, **kw), progress=False)
    real = R.adversarial_noise

    def small_gpu(model, tb, eps, cfg, on_step=None, mask_func=None):
        if len(tb) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, tb, eps, cfg, on_step, mask_func)

    monkeypatch.setattr(R, "adversarial_noise", small_gpu)
    got, _ = R.execute(R.AttackRun.from_params("noise", chunk=4, **kw), progress=False)
    cols = ["file", "slice", "param", "kind", "draw", "box_mse", "box_ssim"]
    a = ref[cols].sort_values(cols[:5]).reset_index(drop=True)
    b = got[cols].sort_values(cols[:5]).reset_index(drop=True)
    assert len(a) == len(b) == 2 * 3 * 3
    pd.testing.assert_frame_equal(a, b)  # nothing lost, nothing counted twice, random draws identical
