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
    """Items per forward/backward pass when none is given. CUDA: 16. CPU: 4, and fewer for large
    items so that a pass holds at most ``CPU_CHUNK_NUMEL`` k-space samples (``item_numel`` = coils x
    rows x cols of one item). Measured (bench/RESULTS.md): small VarNet on 8x256x160 k-space, 2-4
    items per pass are fastest and 16 cost 1.8x more per item; on 15x640x368 (5.2 GB per
    forward+backward) 2 items per pass cost 1.25x more than one."""
    if torch.device(device).type == "cuda":
        return 16
    if item_numel is None:
        return 4
    return max(1, min(4, CPU_CHUNK_NUMEL // max(1, int(item_numel))))
