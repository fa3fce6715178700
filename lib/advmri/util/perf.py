"""CPU/GPU performance settings for the attacks, measured rather than assumed (see bench/RESULTS.md).

On a CPU, one small-VarNet forward pass over 8 coils already saturates the cores, so batching gains
nothing and large batches lose: their intermediates fall out of cache, and glibc returns every
large freed block to the OS, so the next pass page-faults it back (high ``sys`` time).
:func:`keep_freed_memory` stops the latter; :func:`default_chunk` keeps CPU batches small.
"""

from __future__ import annotations

import ctypes
import sys

import torch

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)
_tuned = False


def keep_freed_memory() -> bool:
    """glibc only: serve large allocations from the heap (no per-tensor ``mmap``) and keep freed
    memory up to 2 GiB above the top of the heap instead of trimming it. Process RSS then stays near
    its peak. Idempotent; returns whether the allocator was tuned (False off glibc/Linux)."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _tuned = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        return False
    return _tuned


CPU_CHUNK_NUMEL = 2_000_000  # complex k-space samples per pass that still batch well on CPU


def default_chunk(device: str | torch.device, item_numel: int | None = None) -> int:
    """Items per forward/backward pass when none is given and nothing was measured. CUDA: 16 (attack
    runs measure instead: :func:`cuda_chunk`). CPU: 4, and fewer for large
    items so that a pass holds at most ``CPU_CHUNK_NUMEL`` k-space samples (``item_numel`` = coils x
    rows x cols of one item). Measured (bench/RESULTS.md): small VarNet on 8x256x160 k-space, 2-4
    items per pass are fastest and 16 cost 1.8x more per item; on 15x640x368 (5.2 GB per
    forward+backward) 2 items per pass cost 1.25x more than one."""
    if torch.device(device).type == "cuda":
        return 16
    if item_numel is None:
        return 4
    return max(1, min(4, CPU_CHUNK_NUMEL // max(1, int(item_numel))))


# ------------------------------------------------------------------------------------------
# GPU memory: items per pass sized from a measured peak, halved on out-of-memory
SAFE_FRACTION = 0.7  # of the free GPU memory a pass may plan to use


def is_out_of_memory(e: BaseException) -> bool:
    """True for a CUDA out-of-memory error (``torch.OutOfMemoryError`` or its message)."""
    return isinstance(e, torch.OutOfMemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def cuda_chunk(measure_one, device: str | torch.device, cap: int = 256, log=print) -> int:
    """Items per pass on CUDA from memory: run ``measure_one()`` (one item's forward+backward), read its
    peak (``torch.cuda.max_memory_allocated`` above the baseline) and fit ``SAFE_FRACTION`` of the free
    memory. Paper-size models at fastMRI size thus never plan more than the GPU holds."""
    dev = torch.device(device)
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    measure_one()
    torch.cuda.synchronize(dev)
    peak = max(1, torch.cuda.max_memory_allocated(dev) - base)
    free, total = torch.cuda.mem_get_info(dev)
    n = int(max(1, min(cap, SAFE_FRACTION * free // peak)))
    log(
        f"cuda: one item peaks at {peak / 2**30:.2f} GiB, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free "
        f"-> {n} items per pass"
    )
    return n


def run_chunked(n: int, per_pass: int, step, log=print, device: str | torch.device = "cpu") -> int:
    """Call ``step(lo, hi)`` over ``[0, n)`` in passes of ``per_pass`` items; on out-of-memory the pass is
    retried with half as many items (logged), down to one. ``step`` must only commit its results when it
    returns (a failed pass leaves nothing behind). Returns the items per pass that worked last."""
    lo, k = 0, max(1, per_pass)
    while lo < n:
        hi = min(n, lo + k)
        try:
            step(lo, hi)
        except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
            if not is_out_of_memory(e) or k == 1:
                raise
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
            log(f"out of memory with {k} items per pass; retrying with {k // 2}")
            k //= 2
            continue
        lo = hi
    return k
