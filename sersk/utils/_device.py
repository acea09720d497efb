"""Choosing the torch device."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch


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
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered from 0"
            )
    return device


_cudnn_lock = threading.Lock()
_cudnn_users = 0  # blocks of float32_cudnn entered and not left, in all threads
_deterministic_users = 0  # those of them that asked for deterministic kernels
_cudnn_saved: tuple[str, str, bool, bool] | None = None


def _cudnn_settings() -> tuple[str, str, bool, bool]:
    cudnn = torch.backends.cudnn
    return cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, cudnn.deterministic, cudnn.benchmark


def _set_cudnn_settings(conv: str, rnn: str, deterministic: bool, benchmark: bool) -> None:
    cudnn = torch.backends.cudnn
    cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = conv, rnn
    cudnn.deterministic, cudnn.benchmark = deterministic, benchmark


@contextmanager
def float32_cudnn(*, deterministic: bool) -> Iterator[None]:
    """Within the block, cuDNN computes in float32 as the CPU does; settings restored afterwards.

    cuDNN's convolutions and LSTMs round to TF32 by default (10-bit mantissas) on recent GPUs; off,
    a network on CUDA computes what it computes on the CPU, to float32 rounding, whatever the batch.
    With ``deterministic``, cuDNN also picks deterministic kernels only and its autotuner
    (``benchmark``) is off, so that a seeded fit gives the same model every time.

    The settings are torch's per-operation ``fp32_precision`` ones (reading the older ``allow_tf32``
    fails once a user has set those). Blocks entered by several threads at once are counted: the
    settings change on the first entry and are set back on the last exit; deterministic kernels
    hold while any block that asked for them runs.
    """
    global _cudnn_users, _deterministic_users, _cudnn_saved
    with _cudnn_lock:
        if _cudnn_users == 0:
            _cudnn_saved = _cudnn_settings()
            _set_cudnn_settings("ieee", "ieee", *_cudnn_saved[2:])
        _cudnn_users += 1
        if deterministic:
            _deterministic_users += 1
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        with _cudnn_lock:
            _cudnn_users -= 1
            if deterministic:
                _deterministic_users -= 1
            if _cudnn_users == 0:
                _set_cudnn_settings(*_cudnn_saved)
            elif deterministic and _deterministic_users == 0:
                _set_cudnn_settings("ieee", "ieee", *_cudnn_saved[2:])
