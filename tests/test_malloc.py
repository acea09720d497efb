"""The CPU allocator setting: large freed blocks are reused inside the block, and only there."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sersk.utils import _malloc
from sersk.utils._malloc import reuse_freed_memory

pytestmark = pytest.mark.skipif(_malloc._LIBC is None, reason="glibc only")

SIZE = 64 * 2**20  # far above glibc's largest mmap threshold (32 MiB)
# a freshly mapped block faults at least once per (huge) page: 32 times if the kernel backs it
# with transparent 2 MiB pages, 16,384 times with 4 KiB pages
FRESH = SIZE // (2 * 2**20)


def faults_per_allocation(rounds: int = 4) -> float:
    """Minor page faults per allocation of a fresh 64 MiB block, written in full."""
    np.ones(SIZE // 8)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        np.ones(SIZE // 8)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds


def in_a_fresh_process(check) -> None:
    """Run ``check``, a function of this module, in a new interpreter. This one's heap holds what
    earlier tests freed (a training run leaves hundreds of MiB), and glibc serves a large block from a
    free chunk of the heap before it maps one, whatever the settings: the fault counts would measure
    the tests that ran before, not the settings."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import {__name__} as m; m.{check.__name__}()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_freed_blocks_are_reused_inside_and_returned_outside():
    in_a_fresh_process(check_freed_blocks_are_reused_inside_and_returned_outside)


def test_settings_are_set_back_after_an_error():
    in_a_fresh_process(check_settings_are_set_back_after_an_error)


def check_freed_blocks_are_reused_inside_and_returned_outside():
    outside = faults_per_allocation()
    with reuse_freed_memory(), reuse_freed_memory():  # nested: set once, set back once
        # the fault count is the whole process's: another thread's faults can land in one
        # measurement, so the least of three is read
        inside = min(faults_per_allocation() for _ in range(3))
    after = faults_per_allocation()
    assert outside >= FRESH  # glibc maps each block afresh
    assert inside < 1  # the freed block is reused
    assert after >= FRESH
    assert _malloc._depth == 0


def check_settings_are_set_back_after_an_error():
    with pytest.raises(RuntimeError), reuse_freed_memory():
        raise RuntimeError("boom")
    assert _malloc._depth == 0
    assert faults_per_allocation() >= FRESH


def test_the_heap_is_trimmed_only_once_it_has_grown_past_the_limit(monkeypatch):
    class FakeLibc:
        trims = 0

        def mallopt(self, option, value):
            return 1

        def malloc_trim(self, pad):
            FakeLibc.trims += 1
            return 1

    limit, on_exit = _malloc.TRIM_GROWTH_BYTES, _malloc.TRIM_ON_EXIT_BYTES
    resident = iter([
        5 * limit,              # entering the first block: what its end compares with
        5 * limit,              # the first step's working set: the level
        5 * limit + limit,      # grown by exactly the limit: kept
        6 * limit + 1,          # past it: trimmed
        5 * limit,              # the first step after the trim: the new level
        6 * limit,              # kept
        6 * limit,              # leaving: grown by far more than on_exit since entering: trimmed
        5 * limit,              # after that trim
        5 * limit + on_exit - 1,  # leaving a block that grew the process by less: kept (a trim costs ~2 ms)
        5 * limit + on_exit,      # leaving one that grew it by on_exit: trimmed
        5 * limit,
    ])
    monkeypatch.setattr(_malloc, "_LIBC", FakeLibc())
    monkeypatch.setattr(_malloc, "_resident_bytes", lambda: next(resident))
    monkeypatch.setattr(_malloc, "_trimmed_at", None)
    _malloc.step_done()  # outside the block: not counted
    assert FakeLibc.trims == 0
    with reuse_freed_memory():
        trims_at_each_step = []
        for _ in range(5):
            _malloc.step_done()
            trims_at_each_step.append(FakeLibc.trims)
    assert trims_at_each_step == [0, 0, 1, 1, 1]
    assert FakeLibc.trims == 2  # and once more when the block ends
    with reuse_freed_memory():
        pass
    assert FakeLibc.trims == 2
    with reuse_freed_memory():
        pass
    assert FakeLibc.trims == 3


def test_the_settings_the_process_started_with_come_back(monkeypatch):
    calls = []
    monkeypatch.setattr(_malloc._LIBC, "mallopt", lambda option, value: calls.append((option, value)))
    monkeypatch.setattr(_malloc, "_startup_environment", lambda: {
        "GLIBC_TUNABLES": "glibc.malloc.mmap_max=0:glibc.malloc.arena_max=2", "MALLOC_TRIM_THRESHOLD_": "65536",
    })
    with reuse_freed_memory():
        pass
    assert calls[-2:] == [(_malloc._M_MMAP_MAX, 0), (_malloc._M_TRIM_THRESHOLD, 65536)]
    monkeypatch.setattr(_malloc, "_startup_environment", lambda: {})
    with reuse_freed_memory():
        pass
    assert calls[-2:] == [(_malloc._M_MMAP_MAX, 65536), (_malloc._M_TRIM_THRESHOLD, 128 * 1024)]
    monkeypatch.setattr(_malloc, "_startup_environment", lambda: {
        "MALLOC_MMAP_MAX_": "-5", "MALLOC_TRIM_THRESHOLD_": "4294967296",  # refused by glibc; beyond a C int
    })
    with reuse_freed_memory():
        pass
    assert calls[-2:] == [(_malloc._M_MMAP_MAX, 65536), (_malloc._M_TRIM_THRESHOLD, 2**31 - 1)]


def test_no_malloc_settings_where_proc_cannot_be_read(monkeypatch):
    """Without /proc (some sandboxes), the first block raised after counting itself: every later CPU fit failed."""
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: path != "/proc/self/statm" and access(path, mode))
    assert _malloc._glibc() is None
