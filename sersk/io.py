"""AudioLoader: audio file paths -> mono float32 waveforms at one sample rate."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from fractions import Fraction
from numbers import Integral
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from . import _recipe
from .exceptions import AudioFileError, is_out_of_memory
from .utils._terminal import bar_disabled, tqdm
from .utils._version import RecordsSerskVersion
from .utils.audio import peak_normalize
from .utils.validation import (
    N_JOBS_CONSTRAINT, check_collection, check_waveform, count, path_column, plain_path, to_object_array,
)


def _missing_audio_file(name: str) -> FileNotFoundError:
    """The error for an audio file that does not exist; a broken link's names its target."""
    broken = f" (a broken link to {os.readlink(name)!r})" if os.path.islink(name) else ""
    return FileNotFoundError(f"audio file {name!r} does not exist{broken}")


_MAX_RESAMPLING_TERMS = 1_000_000
"""The largest product of a resampling ratio's two terms resampled exactly (11,025 Hz to 16 kHz is
441/640: 282,240); the filter bank takes about 20 bytes per unit of it."""


def _resampling_ratio(file_rate: int, sample_rate: int) -> Fraction:
    """``file_rate / sample_rate``, or the nearest fraction whose terms' product is at most
    ``_MAX_RESAMPLING_TERMS`` when the exact one's is larger."""
    ratio = Fraction(file_rate, sample_rate)
    if ratio.numerator * ratio.denominator <= _MAX_RESAMPLING_TERMS:
        return ratio
    return ratio.limit_denominator(max(1, math.isqrt(int(_MAX_RESAMPLING_TERMS / ratio))))


def read_audio(path: str | os.PathLike, sample_rate: int = _recipe.SAMPLE_RATE) -> np.ndarray:
    """Decode one audio file to a mono float32 waveform at ``sample_rate``.

    Channels are averaged; a file at another rate is resampled (windowed-sinc, torchaudio). A rate
    whose ratio to ``sample_rate`` reduces to no small fraction (44,101 Hz to 16 kHz is
    44101/16000) is resampled by the nearest ratio that does, within 0.05 % (under one cent of
    pitch): torchaudio's filter bank grows with the product of the two terms (gigabytes for
    44101/16000). A multi-channel file is read in blocks and a long one resampled in pieces, so
    decoding needs little memory besides the samples themselves.

    Parameters
    ----------
    path : str or os.PathLike
        Any format libsndfile reads (WAV of any bit depth, FLAC, OGG, ...).
    sample_rate : int, default=16000
        The rate of the returned waveform.

    Returns
    -------
    waveform : ndarray of shape (n_samples,), dtype=float32
        The samples, channels averaged, at ``sample_rate``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (or is a broken link).
    AudioFileError
        If it is a directory, is empty, cannot be decoded, holds no samples or holds NaN or infinite
        samples, or if its samples do not fit in the memory free here.
    """
    if not isinstance(sample_rate, Integral) or isinstance(sample_rate, bool) or sample_rate < 1:
        raise ValueError(f"sample_rate={sample_rate!r}; expected a positive integer (Hz)")
    name = plain_path(path)
    if not os.path.exists(name):
        raise _missing_audio_file(name)
    if os.path.isdir(name):
        raise AudioFileError(f"audio file {name!r} is a directory, not a file")
    with _named_if_out_of_memory(name):
        return _decode_at_rate(name, sample_rate)


def _decode_at_rate(name: str, sample_rate: int) -> np.ndarray:
    """:func:`read_audio`'s work on a file that exists."""
    try:
        waveform, file_rate = _decode_mono(name)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        if os.path.isfile(name) and os.path.getsize(name) == 0:
            raise AudioFileError(f"audio file {name!r} is empty (0 bytes)") from exc
        raise AudioFileError(f"audio file {name!r} cannot be decoded ({exc}); is it an audio file?") from exc
    except UnicodeEncodeError:  # a name in another encoding than the system's (Latin-1 on a UTF-8 system)
        raise AudioFileError(
            f"audio file {name!r} has a name soundfile cannot pass to libsndfile (not valid {sys.getfilesystemencoding()}); "
            "rename it"
        ) from None
    if len(waveform) == 0:
        raise AudioFileError(f"audio file {name!r} holds no samples")
    if not np.isfinite(waveform).all():
        raise AudioFileError(f"audio file {name!r} contains NaN or infinite samples")
    if file_rate != sample_rate:
        rate_ratio = _resampling_ratio(file_rate, sample_rate)
        waveform = _resample(waveform, rate_ratio.numerator, rate_ratio.denominator)
    return np.ascontiguousarray(waveform, dtype=np.float32)


@contextlib.contextmanager
def _named_if_out_of_memory(name: str) -> Iterator[None]:
    """Within the block, running out of memory (numpy's ``MemoryError``, the ``RuntimeError`` of
    torch's CPU allocator: neither names a file) raises an :class:`AudioFileError` naming ``name``,
    which ``skip_errors`` skips like any bad file."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise _too_long(name, exc) from exc


def _too_long(name: str, exc: Exception) -> AudioFileError:
    """The error for a file whose samples do not fit in the memory free here."""
    reason = f" ({' '.join(str(exc).split())})" if str(exc) else ""
    return AudioFileError(f"audio file {name!r} is too long to decode in the memory free here{reason}")


# Frames of a multi-channel file read at a time, and samples resampled at a time: a long recording
# is decoded in bounded memory besides its samples (a whole 10-minute 48 kHz stereo file took 1 GiB).
_DECODE_BLOCK = 1 << 20
_RESAMPLE_BLOCK = 1 << 21


def native_name(name: str) -> str | bytes:
    """``name`` as libsndfile takes it: on POSIX, the bytes the system stores. soundfile encodes a
    str strictly in the file system's encoding, so a name Python decoded with surrogate escapes (a
    non-ASCII name in an ASCII or Latin-1 locale) could not be opened."""
    return os.fsencode(name) if os.name != "nt" else name


def _decode_mono(name: str) -> tuple[np.ndarray, int]:
    """The file's samples as float32, its channels averaged, and its rate; a multi-channel file is
    read in blocks into one array, so that it is never in memory with all its channels at once."""
    with sf.SoundFile(native_name(name)) as f:
        if f.seekable():
            f.seek(0)  # as sf.read does: an MP3's first frames decode differently without it
        if f.channels == 1:
            return f.read(f.frames, dtype="float32"), f.samplerate  # the header's count: a pipe has no other
        mono = np.empty(f.frames, dtype=np.float32)
        block = np.empty((min(_DECODE_BLOCK, f.frames), f.channels), dtype=np.float32)
        filled = 0
        while filled < len(mono):
            got = f.read(out=block[: len(mono) - filled])  # the frames decoded: fewer where the file is cut short
            if not len(got):
                break
            np.mean(got, axis=1, dtype=np.float32, out=mono[filled : filled + len(got)])
            filled += len(got)
        return mono[:filled], f.samplerate


def _resample(waveform: np.ndarray, orig: int, new: int) -> np.ndarray:
    """torchaudio's windowed-sinc resampling by ``new / orig`` (in lowest terms), in pieces of about
    ``_RESAMPLE_BLOCK`` samples: each starts on a multiple of ``orig`` (where the filter's phases
    restart) and is resampled with a margin on both sides wider than the filter, so that the samples
    kept are those of the whole waveform at once."""
    step = orig * max(1, _RESAMPLE_BLOCK // orig)
    width = math.ceil(6 * orig / (0.99 * min(orig, new)))  # torchaudio's, for its default filter
    margin = orig * (width // orig + 2)
    if len(waveform) <= step + 2 * margin:
        return AF.resample(torch.from_numpy(waveform), orig, new).numpy()
    # torchaudio's length, computed in float32 as it does (a float64 ceil differs past 2**23 samples)
    out = np.empty(int(torch.ceil(torch.as_tensor(new * len(waveform) / orig))), dtype=np.float32)
    for start in range(0, len(waveform), step):
        first, last = max(0, start - margin), min(len(waveform), start + step + margin)
        piece = waveform[first:last]
        if last == len(waveform):  # zeros after the end, as torchaudio pads: enough output to keep
            piece = np.concatenate([piece, np.zeros(margin, dtype=np.float32)])
        piece = AF.resample(torch.from_numpy(piece), orig, new).numpy()
        kept = (start - first) // orig * new
        at = start // orig * new
        count = min(step // orig * new, len(out) - at)
        out[at : at + count] = piece[kept : kept + count]
    return out


def _is_path(item: Any) -> bool:
    """Whether a clip of ``X`` is a file to read (a path, in bytes too, as ``open`` takes) rather than samples."""
    return isinstance(item, (str, bytes, os.PathLike))


def _as_items(X: Any) -> list[Any]:
    check_collection(X, "audio paths or waveforms")
    X = path_column(X)
    items = list(X) if hasattr(X, "__iter__") else list(np.asarray(X))
    if not items:
        raise ValueError("no audio given: the list of paths is empty")
    return items


class AudioLoader(RecordsSerskVersion, TransformerMixin, BaseEstimator):
    """Decode audio files into mono float32 waveforms at one sample rate, peak-normalised.

    A stateless first step for a pipeline that starts from file paths. Stereo is mixed down to mono
    and files at another rate are resampled to ``sample_rate``. Arrays already decoded pass through
    (checked to be 1-D and finite).

    Every clip is divided by its peak by default, in ``fit`` and ``predict`` alike, so the network
    sees the loudness it was trained on: the recipe peak-normalises each augmented training copy,
    and a corpus recorded at a lower level (peaks of 0.01-0.5 are common) would otherwise reach
    prediction tens of dB quieter than anything seen in training. Emo-DB's files already peak at
    0.9995-1.0, so there it changes nothing but rounding.

    Parameters
    ----------
    sample_rate : int, default=16000
        Rate of the returned waveforms, in Hz. Files at other rates are resampled; arrays carry no
        rate, so they are taken to be at this one already (resample them first).
    normalize : {"peak"} or None, default="peak"
        ``"peak"``: divide each clip by its maximum absolute sample (an all-zero clip stays zero).
        ``None``: keep the recorded level.
    min_samples : int, default=2048
        The shortest clip accepted, in samples at ``sample_rate``: one analysis window of the
        log-mel features. A shorter file is an error naming it and its duration.
    n_jobs : int, default=None
        Number of threads decoding files in parallel (``None`` means 1, ``-1`` all cores).
    verbose : bool, default=False
        Show a progress bar while decoding (on a terminal or in a notebook).

    Examples
    --------
    >>> from sersk import AudioLoader
    >>> waves = AudioLoader().fit_transform(["03a01Fa.wav"])  # doctest: +SKIP
    >>> waves[0].dtype  # doctest: +SKIP
    dtype('float32')
    """

    _parameter_constraints: dict = {
        "sample_rate": [Interval(Integral, 1, None, closed="left")],
        "normalize": [StrOptions({"peak"}), None],
        "min_samples": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": N_JOBS_CONSTRAINT,
        "verbose": ["boolean"],
    }

    def __init__(
        self,
        *,
        sample_rate: int = _recipe.SAMPLE_RATE,
        normalize: str | None = "peak",
        min_samples: int = _recipe.N_FFT,
        n_jobs: int | None = None,
        verbose: bool = False,
    ):
        self.sample_rate = sample_rate
        self.normalize = normalize
        self.min_samples = min_samples
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X: Any = None, y: Any = None) -> "AudioLoader":
        """Check the parameters and the form of ``X``; nothing is decoded or learned.

        Parameters
        ----------
        X : sequence of (str, os.PathLike or array-like), optional
            What :meth:`transform` will get; arrays among it are checked, paths are not opened.
        y : ignored
            Not used, present for API consistency.

        Returns
        -------
        self : AudioLoader
            The loader itself.
        """
        self._validate_params()
        if X is not None:
            for i, item in enumerate(_as_items(X)):
                if not _is_path(item):
                    check_waveform(item, i, min_samples=self.min_samples)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Decode each path (or check each waveform).

        Parameters
        ----------
        X : sequence of (str, os.PathLike or array-like of shape (n_samples_i,))
            Audio file paths, already decoded waveforms, or a mix; also a one-column table (a pandas
            DataFrame) or an array of shape (n_clips, 1) of paths.

        Returns
        -------
        waveforms : ndarray of shape (n_clips,), dtype=object
            Each element a float32 array of shape (n_samples_i,), peak-normalised unless
            ``normalize=None``.
        """
        self._validate_params()
        items = _as_items(X)
        # threads, explicitly: under joblib's Dask backend, files must not fan out to the cluster
        waves = Parallel(n_jobs=self.n_jobs, backend="threading", return_as="generator")(
            delayed(self._load_one)(item, i) for i, item in enumerate(items)
        )
        bar = tqdm(waves, total=len(items), desc="decoding", unit="file", disable=bar_disabled(self.verbose))
        return to_object_array(list(bar))

    def _load_one(self, item: Any, index: int) -> np.ndarray:
        if not _is_path(item):
            waveform = check_waveform(item, index, min_samples=self.min_samples)
            if self.normalize is None and np.may_share_memory(waveform, item):
                waveform = waveform.copy()  # never the caller's own array, as from a file
            return self._normalized(waveform)
        waveform = read_audio(item, self.sample_rate)  # names the file if it runs out of memory
        if len(waveform) < self.min_samples:
            raise AudioFileError(
                f"audio file {plain_path(item)!r} is too short: {len(waveform) / self.sample_rate:.3f} s "
                f"({count(len(waveform), 'sample')} at {self.sample_rate} Hz); at least "
                f"{self.min_samples / self.sample_rate:.3f} s ({self.min_samples} samples, one analysis "
                "window) are needed"
            )
        with _named_if_out_of_memory(plain_path(item)):
            return self._normalized(waveform)

    def _normalized(self, waveform: np.ndarray) -> np.ndarray:
        return peak_normalize(waveform) if self.normalize == "peak" else waveform

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = True  # a 2-D float array is read as one clip per row
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # waveforms come out float32 whatever came in
        return tags
