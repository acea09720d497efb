"""sersk: speech emotion recognition as scikit-learn estimators."""

from .augment import AugmentedWaveforms, AugmentingResampler
from .features import LogMelTransformer
from .io import AudioLoader, read_audio
from .nn import CNNLSTM, CNNLSTMClassifier, LeftPadCollate
from .pipeline import EmotionPipeline, make_pipeline

__version__ = "0.1.0"

__all__ = [
    "AudioLoader",
    "AugmentedWaveforms",
    "AugmentingResampler",
    "CNNLSTM",
    "CNNLSTMClassifier",
    "EmotionPipeline",
    "LeftPadCollate",
    "LogMelTransformer",
    "make_pipeline",
    "read_audio",
    "__version__",
]
