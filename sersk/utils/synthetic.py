"""Small synthetic audio for tests, examples and benchmarks."""

from __future__ import annotations

import numpy as np

from .. import _recipe


def make_tone(
    freq: float, seconds: float = 1.0, *, sample_rate: int = _recipe.SAMPLE_RATE, amplitude: float = 0.5
) -> np.ndarray:
    """A float32 sine tone of ``freq`` Hz lasting ``seconds``."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_band_energy_sequences(
    n_samples: int = 200,
    *,
    n_classes: int = 2,
    n_mels: int = 128,
    frames: tuple[int, int] = (16, 48),
    random_state: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel-like sequences whose class is the frequency region holding extra energy.

    Returns
    -------
    X : ndarray of shape (n_samples,), dtype=object
        Float32 arrays of shape (n_mels, n_frames_i), ``n_frames_i`` drawn from ``frames``.
    y : ndarray of shape (n_samples,)
        String labels ``"class0"``, ``"class1"``, ...
    """
    rng = np.random.default_rng(random_state)
    X = np.empty(n_samples, dtype=object)
    y = rng.integers(0, n_classes, n_samples)
    edges = np.linspace(0, n_mels, n_classes + 1).astype(int)
    for i in range(n_samples):
        seq = rng.normal(-5.0, 1.0, size=(n_mels, int(rng.integers(frames[0], frames[1] + 1))))
        seq[edges[y[i]] : edges[y[i] + 1]] += 3.0
        X[i] = seq.astype(np.float32)
    return X, np.array([f"class{k}" for k in y])
