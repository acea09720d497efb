"""The CPU allocator setting: large freed blocks are reused inside the block, and only there."""

from __future__ import annotations

import resource

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


def test_freed_blocks_are_reused_inside_and_returned_outside():
    outside = faults_per_allocation()
    with reuse_freed_memory(), reuse_freed_memory():  # nested: set once, set back once
        inside = faults_per_allocation()
    after = faults_per_allocation()
    assert outside >= FRESH  # glibc maps each block afresh
    assert inside < 1  # the freed block is reused
    assert after >= FRESH
    assert _malloc._depth == 0


def test_settings_are_set_back_after_an_error():
    with pytest.raises(RuntimeError), reuse_freed_memory():
        raise RuntimeError("boom")
    assert _malloc._depth == 0
    assert faults_per_allocation() >= FRESH
