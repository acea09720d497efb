"""Choosing the torch device."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch

from ._state import OpenBlocks, held_across_forks


def resolve_device(device: str | torch.device | None) -> str:
    """Return ``device`` as a string, choosing ``"cuda"`` when it is ``None`` and CUDA is available.

    Only the CPU and CUDA devices are supported; an unavailable CUDA device is refused here, with a
    message, rather than deep inside torch at the first tensor moved to it.
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    try:
        parsed = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device (use 'auto', 'cpu', 'cuda' or 'cuda:0')") from exc
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported: sersk runs on 'cpu' or 'cuda' (or 'auto')")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available here; use device='auto' or 'cpu'")
        if missing_cuda_device(parsed):
            raise ValueError(
                f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered from 0"
            )
    return device


def missing_cuda_device(device: str | torch.device) -> bool:
    """Whether ``device`` is a numbered CUDA device beyond those of this machine, which has some."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        return False
    return (
        parsed.type == "cuda" and parsed.index is not None and torch.cuda.is_available()
        and parsed.index >= torch.cuda.device_count()
    )


class _CudnnSettings(NamedTuple):
    """The global settings :func:`float32_cudnn` changes."""

    conv: str  # torch.backends.cudnn.conv.fp32_precision
    rnn: str  # torch.backends.cudnn.rnn.fp32_precision
    legacy_tf32: bool | None  # torch.backends.cudnn.allow_tf32; None where the user's settings make it unreadable
    deterministic: bool
    benchmark: bool


_cudnn_lock = threading.Lock()
held_across_forks(_cudnn_lock)
_cudnn_users = 0  # blocks of float32_cudnn entered and not left, in all threads
_deterministic_users = 0  # those of them that asked for deterministic kernels
_cudnn_saved: _CudnnSettings | None = None


def _cudnn_settings() -> _CudnnSettings:
    cudnn = torch.backends.cudnn
    try:
        legacy_tf32 = cudnn.allow_tf32  # raises once conv and rnn disagree with it (a mix of the two APIs)
    except RuntimeError:
        legacy_tf32 = None
    return _CudnnSettings(
        cudnn.conv.fp32_precision,  # type: ignore[attr-defined]  # torch's CudnnModule makes it at runtime
        cudnn.rnn.fp32_precision,  # type: ignore[attr-defined]
        legacy_tf32, cudnn.deterministic, cudnn.benchmark,
    )


def _set_cudnn_settings(settings: _CudnnSettings) -> None:
    cudnn = torch.backends.cudnn
    if settings.legacy_tf32 is not None:
        cudnn.allow_tf32 = settings.legacy_tf32  # first: it also sets conv and rnn, set next
    cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = settings.conv, settings.rnn  # type: ignore[attr-defined]
    cudnn.deterministic, cudnn.benchmark = settings.deterministic, settings.benchmark


def _float32(saved: _CudnnSettings, *, deterministic: bool) -> _CudnnSettings:
    """``saved`` with cuDNN in IEEE float32, and deterministic kernels if asked."""
    return saved._replace(
        conv="ieee", rnn="ieee",
        # kept readable: torch compares the legacy flag with conv's and rnn's precision on each read
        legacy_tf32=None if saved.legacy_tf32 is None else False,
        **({"deterministic": True, "benchmark": False} if deterministic else {}),
    )


@contextmanager
def float32_cudnn(*, deterministic: bool) -> Iterator[None]:
    """Within the block, cuDNN computes in float32 as the CPU does; settings restored afterwards.

    cuDNN's convolutions and LSTMs round to TF32 by default (10-bit mantissas) on recent GPUs; in
    the block they compute in IEEE float32, so a network on CUDA computes what it computes on the
    CPU, to float32 rounding, whatever the batch. cuBLAS's matmuls are left to the user's
    ``torch.set_float32_matmul_precision`` (float32 by default; torch refuses later reads of it once
    the block changes the setting beside it). With ``deterministic``, cuDNN also picks deterministic
    kernels only and its autotuner (``benchmark``) is off, so that a seeded fit gives the same model
    every time.

    The settings are torch's per-operation ``fp32_precision`` ones; the older ``allow_tf32`` flag is
    set to agree with them, so that code reading it in the block (torch raises when they disagree)
    reads False. Blocks entered by several threads at once are counted: the settings change on the
    first entry and are set back on the last exit; deterministic kernels hold while any block that
    asked for them runs.
    """
    global _cudnn_users, _deterministic_users, _cudnn_saved
    with _cudnn_lock:
        if _cudnn_users == 0:
            _cudnn_saved = _cudnn_settings()
        _cudnn_users += 1
        _deterministic_users += deterministic
        _set_settings_for_open_blocks()
    try:
        yield
    finally:
        with _cudnn_lock:
            _cudnn_users -= 1
            _deterministic_users -= deterministic
            _set_settings_for_open_blocks()


def _set_settings_for_open_blocks() -> None:
    """The saved settings when no block is open, else float32 (deterministic while a block asks)."""
    assert _cudnn_saved is not None  # saved on the first entry, before any call
    if _cudnn_users == 0:
        _set_cudnn_settings(_cudnn_saved)
    else:
        _set_cudnn_settings(_float32(_cudnn_saved, deterministic=_deterministic_users > 0))


_generators_lock = threading.Lock()
held_across_forks(_generators_lock)
_generator_users: dict[str | int, int] = {}  # "cpu", or a CUDA device's index: the blocks open on it
_generators_saved: dict[str | int, torch.Tensor] = {}
_blocks_of_this_thread = OpenBlocks()


def _generator_state(key: str | int) -> torch.Tensor:
    return torch.get_rng_state() if key == "cpu" else torch.cuda.get_rng_state(key)


def _set_generator_state(key: str | int, state: torch.Tensor) -> None:
    if key == "cpu":
        torch.set_rng_state(state)
    else:
        torch.cuda.set_rng_state(state, key)


@contextmanager
def generators_restored(cuda_devices: list[int]) -> Iterator[None]:
    """Within the block, torch's CPU generator (and those of ``cuda_devices``) may be seeded and drawn
    from; afterwards they are as they were. Blocks open in several threads at once are counted: each
    generator is saved on its first entry and restored on its last exit (``torch.random.fork_rng`` in
    each block restored the state it found, which could be another fit's seeded one). A block inside
    another of the same thread restores the state it found, as ``fork_rng`` does.
    """
    keys: list[str | int] = ["cpu", *cuda_devices]
    found = {key: _generator_state(key) for key in keys}  # read before anything is counted: it can fail
    nested = _blocks_of_this_thread.open
    with _generators_lock:
        for key in keys:
            if not _generator_users.get(key):
                _generators_saved[key] = found[key]
            _generator_users[key] = _generator_users.get(key, 0) + 1
    _blocks_of_this_thread.open = nested + 1
    try:
        yield
    finally:
        _blocks_of_this_thread.open = nested
        with _generators_lock:
            ending = [key for key in keys if key in _generator_users]  # not forgotten in a forked child
            for key in ending:
                _generator_users[key] -= 1
            for key in ending:
                if not _generator_users[key]:
                    del _generator_users[key]
                    _set_generator_state(key, _generators_saved.pop(key))
                elif nested:
                    _set_generator_state(key, found[key])


def _forget_other_threads_blocks() -> None:
    """In a child made by ``fork()``: the blocks other threads had open are gone with them, so the
    CPU generator counts the forking thread's only (restored when none is open), and the CUDA ones
    none (CUDA cannot be used in a forked child)."""
    own = _blocks_of_this_thread.open
    for key in list(_generator_users):
        _generator_users[key] = min(_generator_users[key], own) if key == "cpu" else 0
        if not _generator_users[key]:
            del _generator_users[key]
            saved = _generators_saved.pop(key)
            if key == "cpu":
                torch.set_rng_state(saved)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_other_threads_blocks)  # after the locks' (registered first)
