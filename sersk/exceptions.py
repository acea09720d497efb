"""Exceptions raised by sersk; each derives from the built-in a caller would catch."""


class AudioFileError(ValueError):
    """An audio file that exists but cannot be used (unreadable, empty, not audio, too short)."""


class InvalidSignalError(ValueError):
    """A waveform or feature sequence with the wrong shape, dtype, length or non-finite values."""


class InconsistentVersionWarning(UserWarning):
    """A model pickled by another version of sersk (or of scikit-learn, skorch or torch) is being unpickled."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that memory ran out: ``MemoryError`` (numpy's, Python's), the
    ``RuntimeError`` of torch's CPU allocator ("can't allocate memory") or CUDA's ``OutOfMemoryError``."""
    return isinstance(exc, MemoryError) or isinstance(exc, RuntimeError) and (
        "can't allocate memory" in str(exc) or type(exc).__name__ == "OutOfMemoryError"
    )


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite; the estimator keeps its previous state."""
