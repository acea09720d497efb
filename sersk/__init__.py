"""sersk: speech emotion recognition as scikit-learn estimators."""

from .augment import AugmentedWaveforms, AugmentingResampler
from .batch import BatchPrediction, predict_files
from .features import LogMelTransformer
from .io import AudioLoader, read_audio
from .nn import CNNLSTM, CNNLSTMClassifier, LeftPadCollate
from .pipeline import EmotionPipeline, make_pipeline

__version__ = "0.1.0"

__all__ = [
    "AudioLoader",
    "AugmentedWaveforms",
    "AugmentingResampler",
    "BatchPrediction",
    "CNNLSTM",
    "CNNLSTMClassifier",
    "EmotionPipeline",
    "LeftPadCollate",
    "LogMelTransformer",
    "make_pipeline",
    "predict_files",
    "read_audio",
    "__version__",
]
