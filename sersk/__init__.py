"""sersk: speech emotion recognition as scikit-learn estimators."""

from .features import LogMelTransformer
from .io import AudioLoader, read_audio
from .nn import CNNLSTM, CNNLSTMClassifier, LeftPadCollate

__version__ = "0.1.0"

__all__ = [
    "AudioLoader",
    "CNNLSTM",
    "CNNLSTMClassifier",
    "LeftPadCollate",
    "LogMelTransformer",
    "read_audio",
    "__version__",
]
