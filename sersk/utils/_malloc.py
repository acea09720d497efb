"""Keep freed memory for reuse while the network trains or predicts on the CPU (glibc only).

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
returns it to the system on ``free``. The network's first block makes tensors of 90-300 MB per
step, so each training step would page-fault and zero gigabytes again (measured before this module:
a third of the CPU time in the kernel, 168 million minor page faults for a 10-minute run). Within
:func:`reuse_freed_memory`, large blocks come from the heap and freed memory stays there for the
next step. On exit glibc's defaults for both settings are set again and the heap is trimmed, so the
memory goes back to the system; within the block, :func:`step_done` trims it every few training
steps, so that fragmentation cannot grow it without bound. One thing stays changed, as glibc offers no way back: the mmap
threshold no longer adapts (it keeps the value it had, 128 KiB to 32 MiB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_KEEP_UP_TO = 2**31 - 1  # the largest value mallopt takes: glibc never trims by itself while inside

# Training steps between two trims of the heap: freed blocks of one step's sizes are reused by the
# next steps, while memory lost to fragmentation (batches of different lengths leave holes that
# fit no later tensor) goes back to the system. Measured on 2,400 Emo-DB-length clips
# (benchmarks/bench_heap_trim.py): without trims the process grew to 4.4 GB in 75 steps (21 GB over
# a full-size fit); trimming every 10 steps kept it at 0.9-3.5 GB and cost 4 % of the speed.
TRIM_EVERY_STEPS = 10

_lock = threading.Lock()
_depth = 0
_steps = 0


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim, libc.gnu_get_libc_version  # noqa: B018 (glibc, not musl)
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


_LIBC = _glibc()


def step_done() -> None:
    """Count one training step inside :func:`reuse_freed_memory`; trim the heap every few steps."""
    global _steps
    if _LIBC is None or _depth == 0:
        return
    _steps += 1
    if _steps % TRIM_EVERY_STEPS == 0:
        _LIBC.malloc_trim(0)


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, serve large allocations from the heap and keep freed memory (glibc).

    Nested and concurrent uses are counted: the settings change on the first entry and are set back
    on the last exit. Elsewhere than on glibc it does nothing.
    """
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _LIBC.mallopt(_M_MMAP_MAX, 0)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _LIBC.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                _LIBC.malloc_trim(0)
