"""Choosing the torch device."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None) -> str:
    """Return ``device`` as a string, choosing ``"cuda"`` when it is ``None`` and CUDA is available."""
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device (use 'cpu', 'cuda', 'cuda:0' or None)") from exc
    return device
