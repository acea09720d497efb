"""sersk: speech emotion recognition as scikit-learn estimators.

Names are imported lazily (PEP 562): ``import sersk`` is cheap, and worker processes that only
augment audio never load torch.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# oneDNN (torch's CPU convolutions) caches a compiled kernel for every input shape, made in the
# middle of a training step: with batches of many lengths these small allocations pin the heap's
# holes, and a full-size fit peaked ~0.5 GB higher. Off unless the user set it; read by oneDNN once,
# when torch first runs a CPU convolution (docs/performance.md).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")

_EXPORTS = {
    "AudioLoader": "io",
    "read_audio": "io",
    "AugmentedWaveforms": "augment",
    "AugmentingResampler": "augment",
    "BatchPrediction": "batch",
    "predict_files": "batch",
    "LogMelTransformer": "features",
    "BandStandardizer": "features",
    "CNNLSTM": "nn",
    "CNNLSTMClassifier": "nn",
    "LeftPadCollate": "nn",
    "EmotionPipeline": "pipeline",
    "make_pipeline": "pipeline",
    "load_model": "persistence",
    "save_model": "persistence",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sersk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
