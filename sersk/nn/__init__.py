"""The network side: the CNN-LSTM module, left-padding collation and the skorch classifier."""

from .classifier import CNNLSTMClassifier
from .collate import LeftPadCollate
from .module import CNNLSTM, MaskedBatchNorm2d

__all__ = ["CNNLSTM", "CNNLSTMClassifier", "LeftPadCollate", "MaskedBatchNorm2d"]
