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
