"""Choosing the torch device."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def resolve_device(device: str | torch.device | None) -> str:
    """Return ``device`` as a string, choosing ``"cuda"`` when it is ``None`` and CUDA is available."""
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    try:
        kind = torch.device(device).type
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device (use 'auto', 'cpu', 'cuda' or 'cuda:0')") from exc
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='auto' or 'cpu'")
    return device


@contextmanager
def float32_cudnn(*, deterministic: bool) -> Iterator[None]:
    """Within the block, cuDNN computes in float32 as the CPU does; settings restored afterwards.

    cuDNN's convolutions and LSTMs round to TF32 by default (10-bit mantissas) on recent GPUs; off,
    a network on CUDA computes what it computes on the CPU, to float32 rounding, whatever the batch.
    With ``deterministic``, cuDNN also picks deterministic kernels only and its autotuner
    (``benchmark``) is off, so that a seeded fit gives the same model every time.
    """
    cudnn = torch.backends.cudnn
    saved = cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark
    cudnn.allow_tf32 = False
    if deterministic:
        cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved
