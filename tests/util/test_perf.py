"""advmri.util.perf: chunk sizes per device, glibc's freed memory kept, out-of-memory halving."""

import sys

import pytest
import torch

from advmri.experiments.run import AttackRun
from advmri.util.perf import default_chunk, keep_freed_memory


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
    assert logs == [
        "out of memory with 16 items per pass; retrying with 8",
        "out of memory with 8 items per pass; retrying with 4",
        "out of memory with 4 items per pass; retrying with 2",
    ]
    with pytest.raises(torch.OutOfMemoryError):
        run_chunked(3, 1, lambda lo, hi: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory")))
    with pytest.raises(ValueError):  # anything else is not retried
        run_chunked(3, 2, lambda lo, hi: (_ for _ in ()).throw(ValueError("bad")))
