"""Keep freed memory for reuse while the network trains or predicts on the CPU (glibc only).

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
returns it to the system on ``free``. The network's first block makes tensors of 90-300 MB per
step, so each training step would page-fault and zero gigabytes again (measured before this module:
a third of the CPU time in the kernel, 168 million minor page faults for a 10-minute run). Within
:func:`reuse_freed_memory`, large blocks come from the heap and freed memory stays there for the
next step. On exit glibc's defaults for both settings are set again and, when the process has grown
by ``TRIM_ON_EXIT_BYTES`` or more since the last such trim, the heap is trimmed, so the memory goes
back to the system (a trim walks the whole heap: trimming after every one-clip prediction made it
1.6 times slower, ``benchmarks/bench_predict_latency.py``); within the block, :func:`step_done`
trims it whenever the process has grown by ``TRIM_GROWTH_BYTES`` over a step's working set, so that
fragmentation cannot grow it without bound. One thing stays changed, as glibc offers no way back:
the mmap threshold no longer adapts (it keeps the value it had, 128 KiB to 32 MiB). "glibc's
defaults" are those the process started with: ``MALLOC_MMAP_MAX_`` and ``MALLOC_TRIM_THRESHOLD_``
or their ``GLIBC_TUNABLES`` entries when its environment set them (Dask's workers start with a trim
threshold of their own). glibc cannot report its settings, so a ``mallopt`` call of the user's own
is set back to those.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ._state import OpenBlocks, held_across_forks

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_KEEP_UP_TO = 2**31 - 1  # the largest value mallopt takes: glibc never trims by itself while inside

# Growth of the resident memory, in bytes, that triggers a trim, counted from its level at the end of
# the first training step after the last trim (or after entering). Batches of different lengths
# leave holes in the heap that later tensors do not fit, so the process creeps up: measured on
# 2,400 Emo-DB-length clips (benchmarks/bench_heap_trim.py), from 2.9 to 3.2 GB over 75 steps
# without trims. A trim returns the free pages, and the next steps fault their working set in
# again: trimming every 10 steps ran at 52.7 against 55.7 clips/s there, and in a full-size fit its
# page faults took a fifth of the CPU time. So sersk trims only when the process has grown this much.
TRIM_GROWTH_BYTES = 1 << 30
# Growth of the resident memory since the last trim on leaving a block (or since the first block)
# that makes the end of a block trim the heap.
TRIM_ON_EXIT_BYTES = 32 << 20

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_lock = threading.Lock()
held_across_forks(_lock)
_depth = 0
_blocks_of_this_thread = OpenBlocks()
_level: int | None = None  # resident bytes after the first step since the last trim
_trimmed_at: int | None = None  # resident bytes after the last trim on leaving a block (or the least since)


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or not os.access("/proc/self/statm", os.R_OK):
        return None  # (the growth that decides a trim is read from /proc, missing in some sandboxes)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim, libc.gnu_get_libc_version  # noqa: B018 (glibc, not musl)
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


_LIBC = _glibc()


@functools.lru_cache(maxsize=1)
def _startup_environment() -> dict[str, str]:
    """The environment the process started with, which glibc read its malloc settings from (read once)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return {}
    return dict(entry.decode(errors="replace").split("=", 1) for entry in entries if b"=" in entry)


def _startup_setting(variable: str, tunable: str, default: int) -> int:
    """One malloc setting as the process started: its ``GLIBC_TUNABLES`` entry, else its variable,
    else glibc's default."""
    environment = _startup_environment()
    tunables = dict(item.split("=", 1) for item in environment.get("GLIBC_TUNABLES", "").split(":") if "=" in item)
    for text in (tunables.get(f"glibc.malloc.{tunable}"), environment.get(variable)):
        if text is None:
            continue
        try:
            value = int(text, 0)
        except (TypeError, ValueError):
            continue
        if value >= 0:  # glibc ignores a negative one; mallopt takes a C int
            return min(value, _KEEP_UP_TO)
    return default


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_BYTES


def step_done() -> None:
    """Count one training step inside :func:`reuse_freed_memory`; trim the heap once it has grown.

    Trims when the resident memory exceeds its level after the first step since the last trim by
    more than ``TRIM_GROWTH_BYTES``.
    """
    global _level
    if _LIBC is None or _depth == 0:
        return
    resident = _resident_bytes()
    if _level is None:
        _level = resident
    elif resident > _level + TRIM_GROWTH_BYTES:
        _LIBC.malloc_trim(0)
        _level = None


def _trim_if_grown() -> None:
    """Trim the heap if the process has grown by ``TRIM_ON_EXIT_BYTES`` since the last such trim (or
    since the first block began: ``_trimmed_at`` is set then)."""
    global _trimmed_at
    assert _LIBC is not None and _trimmed_at is not None  # called on glibc, after the first block set it
    resident = _resident_bytes()
    if resident >= _trimmed_at + TRIM_ON_EXIT_BYTES:
        _LIBC.malloc_trim(0)
        _trimmed_at = _resident_bytes()  # what the process holds now, the program's own memory included
    else:
        _trimmed_at = min(_trimmed_at, resident)


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, serve large allocations from the heap and keep freed memory (glibc).

    Nested and concurrent uses are counted: the settings change on the first entry and are set back
    on the last exit, to those the process started with. Elsewhere than on glibc it does nothing.
    """
    global _depth, _level, _trimmed_at
    if _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _level = None
            if _trimmed_at is None:  # the first block: growth is counted from here
                _trimmed_at = _resident_bytes()
            _LIBC.mallopt(_M_MMAP_MAX, 0)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO)
    own = _blocks_of_this_thread.open
    _blocks_of_this_thread.open = own + 1
    try:
        yield
    finally:
        _blocks_of_this_thread.open = own
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set_startup_settings()
                _trim_if_grown()


def _set_startup_settings() -> None:
    """glibc's settings as the process started with them."""
    assert _LIBC is not None
    _LIBC.mallopt(_M_MMAP_MAX, _startup_setting("MALLOC_MMAP_MAX_", "mmap_max", _DEFAULT_MMAP_MAX))
    _LIBC.mallopt(_M_TRIM_THRESHOLD,
                  _startup_setting("MALLOC_TRIM_THRESHOLD_", "trim_threshold", _DEFAULT_TRIM_THRESHOLD))


def _forget_other_threads_blocks() -> None:
    """In a child made by ``fork()``: the blocks other threads had open are gone with them, so only
    the forking thread's count, and with none open the process's own settings are back (a child
    forked while another thread trained kept sersk's settings for its life, its freed memory never
    given back)."""
    global _depth
    own = _blocks_of_this_thread.open
    if _depth and not own and _LIBC is not None:
        _set_startup_settings()
    _depth = own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_other_threads_blocks)  # after the lock's (registered first)
