"""Waveform helpers shared by the loader and the augmentation (numpy only: workers stay light)."""

from __future__ import annotations

import numpy as np


def peak_normalize(waveform: np.ndarray) -> np.ndarray:
    """Divide a waveform by its largest absolute sample (an all-zero waveform stays zero).

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)

    Returns
    -------
    normalized : ndarray of shape (n_samples,), dtype=float32
        A new array peaking at exactly 1 (or all zeros).
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    peak = np.maximum(waveform.max(), -waveform.min())  # no copy of a long waveform, as np.abs makes
    return waveform / peak if peak > 0 else np.zeros_like(waveform)
