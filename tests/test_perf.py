import sys

import pytest

from advmri.perf import default_chunk, keep_freed_memory
from advmri.run import AttackRun


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
