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
def deterministic_cudnn() -> Iterator[None]:
    """Within the block, cuDNN picks deterministic kernels only (restored afterwards).

    A seeded fit on CUDA then gives the same model every time, as it does on the CPU. cuDNN's
    autotuner (``benchmark``) is off for the same reason: it may pick a different kernel each run.
    """
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved
