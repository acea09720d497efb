"""Shared fixtures: the real Emo-DB corpus (via SERSK_DATA) and small synthetic audio."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

# The same examples on every machine and run (a clean clone has no example database), so that a
# run's outcome does not depend on the draw; HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

EMODB_HOME = Path(os.environ.get("SERSK_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"))
EMODB_WAV = EMODB_HOME / "wav"


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def emodb_wavs() -> list[Path]:
    """All Emo-DB WAV paths, sorted; skips when the corpus is not on this machine."""
    paths = sorted(EMODB_WAV.glob("*.wav"))
    if not paths:
        pytest.skip(f"Emo-DB not found under {EMODB_WAV} (set SERSK_DATA)")
    return paths


@pytest.fixture(scope="session")
def emodb_sample(emodb_wavs) -> list[Path]:
    """A dozen real clips of different lengths, including one with a PAD header chunk."""
    picks = emodb_wavs[::45][:11]
    pad = EMODB_WAV / "14a07Aa.wav"
    return picks + [pad]


class PipelineFits:
    """What :func:`pipeline_fits` counts; ``interrupt_at = n`` makes the n-th fit raise KeyboardInterrupt (Ctrl-C)."""

    def __init__(self) -> None:
        self.count = 0
        self.interrupt_at: int | None = None


@pytest.fixture
def pipeline_fits(monkeypatch) -> PipelineFits:
    """Count ``EmotionPipeline.fit`` calls, and interrupt one when asked."""
    from sersk import EmotionPipeline

    fits, fit = PipelineFits(), EmotionPipeline.fit

    def counted(self, *args, **kwargs):
        fits.count += 1
        if fits.count == fits.interrupt_at:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(EmotionPipeline, "fit", counted)
    return fits
