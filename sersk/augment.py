"""AugmentingResampler: each training clip -> independently augmented copies, computed lazily.

The chain is the recipe's augmentation, applied in series with audiomentations:
``PitchShift`` -> ``AddGaussianSNR`` -> ``Shift`` (in seconds, circular by default, no fade), then
each copy is divided by its maximum absolute value.

audiomentations' pitch-shift back ends both keep the length; on a 440 Hz tone shifted by -2 / +1 /
+2 semitones the phase vocoder lands on 392.0 / 466.2 / 493.9 Hz, signalsmith on 392.8 / 466.7 /
494.5 Hz (within 0.2 %), and signalsmith keeps speech aligned in time: on 60 Emo-DB clips a shifted
clip's energy envelope lags the clip's by 0-28 samples (median 7), against 0-519 (median 164) for
the phase vocoder.

``"signalsmith_stretch_cheaper"``, the default, is the same stretcher with signalsmith's own
``cheaper`` preset (shorter blocks, fewer of them), one processor reused per process. On those 60
clips (mean 2.82 s), one thread, on an AMD EPYC: 5.23 ms per clip, against 7.35 ms for the default
preset reused the same way, 7.56 ms for audiomentations' shifter as it ships (a new processor per
clip) and 6.75 ms for its phase vocoder; the recipe's chain takes 3.93 ms per copy (half the copies
shifted) and a copy's log-mel 0.48 ms. Shifted by the same random amounts, the cheaper preset's
log-mels differ from the default preset's by 0.53 dB on average over the bins within 60 dB of each
clip's maximum, against 3.50 dB between the default preset and the phase vocoder (and 4.15 dB
between a clip and its shifted copy); its tones land on 392.9 / 466.4 / 494.5 Hz and its envelopes
lag by 0-39 samples (median 7) (``benchmarks/compare_pitch_presets.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import operator
import os
import random
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from typing import Any, cast

import numpy as np
import python_stretch
from audiomentations import AddGaussianSNR, PitchShift, Shift
from imblearn.base import SamplerMixin
from imblearn.utils._tags import InputTags, SamplerTags, Tags  # imblearn's own samplers build these
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from . import _recipe
from .exceptions import InvalidSignalError
from .utils._state import held_across_forks
from .utils._terminal import bar_disabled, tqdm
from .utils._text import count
from .utils._version import RecordsSerskVersion
from .utils.audio import peak_normalize
from .utils.validation import (
    N_JOBS_CONSTRAINT, check_labels, check_matches_labels, check_waveforms, clip_name, to_object_array,
)

_PROGRESS_LOCK = threading.Lock()  # guards the progress bars of AugmentedWaveforms
# Copies computed per iteration step of an AugmentedWaveforms (as LogMelTransformer's chunks).
_CHUNK_COPIES = 512
# Tasks per worker in one parallel call: few enough to amortise sending the source clips,
# enough to balance clips of different lengths.
_BATCHES_PER_JOB = 4
# Copies per task of map_batches: about a second of work, so a task's overhead is negligible.
_MAP_BATCH_COPIES = 128
# the pitch shifter is shared: one batch of copies at a time per process
_BATCH_LOCK = threading.Lock()
held_across_forks(_PROGRESS_LOCK, _BATCH_LOCK)
_ORIGINAL = -1  # copy index of an unchanged original (keep_original=True)


_SIGNALSMITH_CHEAPER = "signalsmith_stretch_cheaper"


@functools.lru_cache(maxsize=4)
def _stretcher(sample_rate: int, cheaper: bool) -> python_stretch.Signalsmith.Stretch:
    """One signalsmith processor per process, rate and preset, configured as audiomentations does."""
    stretch = python_stretch.Signalsmith.Stretch()
    stretch.preset(1, sample_rate, cheaper)
    return stretch


# released before the interpreter's teardown, where nanobind reports the processors still alive as leaks
atexit.register(_stretcher.cache_clear)


class _PitchShift(PitchShift):
    """audiomentations' ``PitchShift``, reusing one signalsmith processor (reset per clip) for mono clips.

    audiomentations builds and configures a new processor for every clip; reusing one gives the same
    samples (tested) and saves 0.2 of 7.6 ms per clip (``benchmarks/compare_pitch_presets.py``).
    ``method="signalsmith_stretch_cheaper"``
    configures it with signalsmith's ``cheaper`` preset. Callers hold ``_BATCH_LOCK``, so one
    thread at a time uses the processor.
    """

    def __init__(self, min_semitones: float, max_semitones: float, *, method: str, p: float):
        self.cheaper = method == _SIGNALSMITH_CHEAPER
        super().__init__(min_semitones, max_semitones, method="signalsmith_stretch" if self.cheaper else method, p=p)

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        if self.method != "signalsmith_stretch" or samples.ndim != 1:
            return super().apply(samples, sample_rate)
        stretch = _stretcher(int(sample_rate), self.cheaper)
        stretch.reset()
        stretch.setTransposeSemitones(self.parameters["num_semitones"])
        return cast(np.ndarray, stretch.process(samples[np.newaxis, :]))[0]  # typed ArrayLike, returns an ndarray


class _AddGaussianSNR(AddGaussianSNR):
    """audiomentations' ``AddGaussianSNR``, drawing its noise from ``generator`` (set per copy)
    instead of the process-global ``np.random``, which other threads draw from too. Seeded alike,
    it draws the same noise."""

    generator: np.random.RandomState

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        noise = self.generator.normal(0.0, self.parameters["noise_std"], size=samples.shape).astype(np.float32)
        return samples + noise


@dataclass(frozen=True)
class _Chain:
    """The augmentation settings; ``transforms()`` builds the audiomentations chain."""

    pitch_shift_p: float
    pitch_shift_semitones: tuple[float, float]
    pitch_shift_method: str
    noise_p: float
    noise_snr_db: tuple[float, float]
    time_shift_p: float
    time_shift_seconds: tuple[float, float]
    rollover: bool
    sample_rate: int

    def transforms(self) -> list:
        return [
            _PitchShift(*self.pitch_shift_semitones, method=self.pitch_shift_method, p=self.pitch_shift_p),
            _AddGaussianSNR(*self.noise_snr_db, p=self.noise_p),
            Shift(
                *self.time_shift_seconds, shift_unit="seconds", rollover=self.rollover, fade_duration=0.0,
                p=self.time_shift_p,
            ),
        ]


def _copy_seed(seed: int, source: int, copy: int) -> np.ndarray:
    """The seed of one copy, from (seed, source clip, copy) only."""
    return np.random.SeedSequence([seed, source, copy]).generate_state(4)


class _ThreadsRandom:
    """What audiomentations' modules hold as ``random`` once sersk has augmented: the generator a
    sersk augmentation in the calling thread draws from, else Python's ``random`` module itself.
    Pointing the modules at sersk's generator for a batch gave other threads' audiomentations calls
    sersk's numbers meanwhile (and took them from sersk's copies)."""

    def __init__(self) -> None:
        object.__setattr__(self, "local", threading.local())

    def __getattr__(self, name: str) -> Any:
        if name == "local":  # an instance made without __init__ (copy, unpickling)
            raise AttributeError(name)
        return getattr(getattr(self.local, "rng", None) or random, name)

    # a user's ``mock.patch("audiomentations.<module>.random.uniform")`` patches ``random``, as before
    def __setattr__(self, name: str, value: Any) -> None:
        setattr(random, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(random, name)


_THREADS_RANDOM = _ThreadsRandom()
_INSTALL_LOCK = threading.Lock()
held_across_forks(_INSTALL_LOCK)


@contextlib.contextmanager
def _private_python_random(rng: random.Random) -> Iterator[None]:
    """audiomentations' ``random``, in this thread, is ``rng`` for the block.

    audiomentations draws its parameters from the module-global ``random``, which other threads
    also draw from (a Dask worker's size estimates do): seeding the global state alone is then not
    reproducible. Its modules' ``random`` is replaced once by a stand-in that draws from the
    generator of the thread's augmentation, if any, else from ``random`` as before. Its one
    ``np.random`` draw, the noise, comes from :class:`_AddGaussianSNR`'s own generator.
    """
    with _INSTALL_LOCK:  # modules imported since the last batch, too
        for name, module in list(sys.modules.items()):
            if name.partition(".")[0] != "audiomentations":  # (other modules' attributes untouched: scipy warns)
                continue
            held = getattr(module, "random", None)
            # random, or the stand-in of an earlier import of this module (importlib.reload, %autoreload)
            if held is random or (held is not _THREADS_RANDOM and type(held).__qualname__ == "_ThreadsRandom"):
                setattr(module, "random", _THREADS_RANDOM)  # noqa: B010 (a module's attribute)
    outer = getattr(_THREADS_RANDOM.local, "rng", None)
    _THREADS_RANDOM.local.rng = rng
    try:
        yield
    finally:
        _THREADS_RANDOM.local.rng = outer


def _augment_batch(
    waveforms: dict[int, np.ndarray], rows: np.ndarray, chain: _Chain, seed: int
) -> list[np.ndarray]:
    """Compute the copies ``rows`` (source, copy) from their source clips; the caller's RNGs are kept."""
    transforms = chain.transforms()
    noise = next(t for t in transforms if isinstance(t, _AddGaussianSNR))
    out = []
    rng = random.Random()
    with _BATCH_LOCK, _private_python_random(rng):
        for source, copy in rows.tolist():
            x = waveforms[source]
            if copy == _ORIGINAL:
                out.append(x.copy())
                continue
            words = _copy_seed(seed, source, copy)
            noise.generator = np.random.RandomState(words)
            rng.seed(int.from_bytes(words.tobytes(), "little"))
            for transform in transforms:
                x = transform(x, chain.sample_rate)
            if not np.isfinite(x).all():  # the input is finite: the pitch shift or the noise's power overflowed
                # an overflowed pitch shifter stays non-finite after reset(): every later copy would be NaN
                _stretcher.cache_clear()
                raise InvalidSignalError(
                    f"{clip_name(source)} gives non-finite augmented copies: its samples (largest |sample| "
                    f"{np.abs(waveforms[source]).max():.3g}) overflow float32 in the augmentation; expected samples "
                    "in [-1, 1]"
                )
            out.append(peak_normalize(x))
    return out


def _augment_and_apply(
    waveforms: dict[int, np.ndarray], rows: np.ndarray, chain: _Chain, seed: int,
    func: Callable[[list[np.ndarray], int], list[Any]], start: int,
) -> list[Any]:
    """``func`` applied, in this process, to the copies ``rows`` (the first at position ``start``)."""
    return func(_augment_batch(waveforms, rows, chain, seed), start)


def _loky_workers(n_jobs: int | None) -> int:
    """Workers the loky pool below will use: ``n_jobs``, or with ``None`` the active
    :func:`joblib.parallel_config`'s (1 outside one), whatever backend that context names."""
    with parallel_config(backend="loky"):
        return effective_n_jobs(n_jobs)


class AugmentedWaveforms(Sequence):
    """A lazy, read-only sequence of augmented copies, computed when indexed.

    Returned by :meth:`AugmentingResampler.fit_resample`; holds the source clips, the (source, copy)
    table and the chain settings, never the copies. Each copy depends only on the seed, its source
    clip and its copy number, so it is the same however the sequence is indexed or parallelised.

    Parameters
    ----------
    waveforms : ndarray of shape (n_clips,), dtype=object
        The source clips, float32 arrays of shape (n_samples_i,).
    table : ndarray of shape (n_copies, 2), dtype=int64
        Per copy, the index of its source clip and its copy number (``-1``: the unchanged original).
    chain : _Chain
        The augmentation settings.
    seed : int
        The base seed every copy's seed is derived from.
    n_jobs : int, default=None
        Processes used by a slice or a list of indices (joblib, loky); ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context.
    verbose : bool, default=False
        Show one progress bar, over all the copies, while they are computed (on a terminal or in a notebook).

    Notes
    -----
    ``X[i]`` returns one float32 array of shape (n_samples_i,); ``X[a:b]`` and ``X[[i, j, ...]]`` return a
    list of them, computed in parallel; iterating computes 512 copies at a time.
    """

    def __init__(
        self, waveforms: np.ndarray, table: np.ndarray, chain: _Chain, seed: int, *,
        n_jobs: int | None = None, verbose: bool = False,
    ):
        self._waveforms = waveforms
        self._table = table
        self._chain = chain
        self._seed = seed
        self._n_jobs = n_jobs
        self._verbose = verbose
        self._bar: tqdm | None = None
        self._shown: np.ndarray | None = None  # per copy, whether the bar has counted it

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, key: Any) -> Any:
        n = len(self)
        if isinstance(key, slice):
            return self._compute(np.arange(*key.indices(n)))
        if isinstance(key, (Integral, np.integer)):
            i = operator.index(key)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} augmented copies")
            return self._compute(np.array([i % n]))[0]
        idx = np.asarray(key)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise TypeError(f"index with an int, a slice or a 1-D sequence of ints, not {type(key).__name__}")
        if idx.size == 0:
            return []
        if not ((idx >= -n) & (idx < n)).all():
            raise IndexError(f"indices out of range for {n} augmented copies")
        return self._compute(idx.astype(np.int64) % n)

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self), _CHUNK_COPIES):
            yield from self[start : start + _CHUNK_COPIES]

    def map_batches(self, func: Callable[[list[np.ndarray], int], list[Any]]) -> Iterator[list[Any]]:
        """Apply ``func`` to consecutive batches of copies in the processes that compute them.

        Only ``func``'s results travel back to this process, never the copies: a feature step
        (:class:`~sersk.LogMelTransformer` on the CPU) runs where the copies are made, overlapped
        with the augmentation, instead of waiting for them here.

        Parameters
        ----------
        func : callable
            ``func(copies, start) -> list``, where ``copies`` is a list of float32 waveforms and
            ``start`` the position of the first in this sequence; it must be picklable.

        Yields
        ------
        results : list
            ``func``'s result for each batch, in the order of the copies.
        """
        positions = np.arange(len(self))
        parts = [positions[start : start + _MAP_BATCH_COPIES] for start in range(0, len(self), _MAP_BATCH_COPIES)]
        tasks = [(*self._task(part), func, int(part[0])) for part in parts]
        yield from self._run(_augment_and_apply, tasks, parts)

    def _compute(self, positions: np.ndarray) -> list[np.ndarray]:
        """The copies at ``positions``, in order."""
        if positions.size == 0:
            return []
        n_batches = min(positions.size, _loky_workers(self._n_jobs) * _BATCHES_PER_JOB)
        parts = np.array_split(positions, n_batches)
        tasks = [self._task(part) for part in parts]
        return [copy for batch in self._run(_augment_batch, tasks, parts) for copy in batch]

    def _task(self, positions: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray, _Chain, int]:
        """The arguments that compute the copies at ``positions``: each task carries only its source clips."""
        rows = self._table[positions]
        return {s: self._waveforms[s] for s in np.unique(rows[:, 0]).tolist()}, rows, self._chain, self._seed

    def _run(
        self, function: Callable[..., list[Any]], tasks: list[tuple], parts: list[np.ndarray]
    ) -> Iterator[list[Any]]:
        """``function(*task)`` for each task, in parallel when there are workers; yields in order.

        ``parts[i]`` holds the positions task ``i`` computes, for the progress bar.
        """
        if _loky_workers(self._n_jobs) == 1 or len(tasks) == 1:  # no worker to start for a single task
            batches = (function(*task) for task in tasks)
        else:
            # processes, not threads: the chain reseeds the process-global RNGs. Each task carries only
            # its own clips, so joblib's memory-mapping of large arguments through a temporary folder
            # gains nothing; and a full /dev/shm or TMPDIR (a container's 64 MB) failed it as a PicklingError
            parallel = Parallel(n_jobs=self._n_jobs, backend="loky", return_as="generator", max_nbytes=None)
            batches = parallel(delayed(function)(*task) for task in tasks)
        for part, batch in zip(parts, batches):
            self._count_progress(part)
            yield batch

    def _count_progress(self, positions: np.ndarray) -> None:
        """Advance the one bar over all the copies by those at ``positions`` not counted before.

        The bar is shown on a terminal or in a notebook only; it closes once every copy has been
        computed, however many calls (and repeated reads) that took, and copies read again after that
        show none.
        """
        if not self._verbose:
            return
        with _PROGRESS_LOCK:  # threads may read copies of one sequence at once
            if self._shown is None:
                self._bar = tqdm(total=len(self), desc="augmenting", unit="copy", disable=bar_disabled())
                self._shown = np.zeros(len(self), dtype=bool)
            new = np.unique(positions[~self._shown[positions]])
            if new.size == 0:
                return
            self._shown[new] = True
            assert self._bar is not None  # closed only once every copy is shown: then new is empty
            self._bar.update(new.size)
            if self._bar.n >= len(self):
                self._bar.close()
                self._bar = None  # _shown stays: copies read again afterwards start no second bar

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bar": None, "_shown": None}  # a progress bar is not pickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_shown": None, **state})  # pickled by a version without _shown (a cache)

    def __repr__(self) -> str:
        n_clips = len(self._waveforms)
        settings = ", ".join(f"{k}={v!r}" for k, v in asdict(self._chain).items())
        return f"AugmentedWaveforms({len(self)} copies of {n_clips} clips, seed={self._seed}, {settings})"


class AugmentingResampler(RecordsSerskVersion, SamplerMixin, BaseEstimator):
    """Replace each training clip by independently augmented copies (a sampler: fit only).

    Each copy goes through pitch shift, additive white Gaussian noise and a time shift, in series,
    each applied with its probability and with parameters drawn uniformly from its range, and is then
    divided by its maximum absolute value (an all-zero copy stays zero). The defaults are the reference
    recipe: 75 copies per clip, replacing the originals.

    As an imbalanced-learn sampler it has ``fit_resample`` and no ``transform``: in an
    :class:`imblearn.pipeline.Pipeline` it runs during ``fit`` only and is skipped by ``predict``,
    ``predict_proba``, ``score`` and ``transform``. The copies are not materialised: ``X_res`` is an
    :class:`AugmentedWaveforms` that computes them when indexed, in parallel for a slice.

    Parameters
    ----------
    n_augmentations : int, default=75
        Augmented copies per clip.
    pitch_shift_p : float, default=0.5
        Probability of shifting the pitch of a copy.
    pitch_shift_semitones : tuple of (float, float), default=(-2.0, 2.0)
        Range of the pitch shift, in semitones, within [-24, 24].
    pitch_shift_method : str, default="signalsmith_stretch_cheaper"
        Pitch-shift back end: ``"signalsmith_stretch_cheaper"`` (signalsmith with its ``cheaper``
        preset: a quarter faster, log-mels within 0.5 dB of the default preset's; see
        ``sersk.augment``), or audiomentations' ``"signalsmith_stretch"`` or
        ``"librosa_phase_vocoder"``. signalsmith is faster than the phase vocoder and keeps speech
        aligned in time.
    noise_p : float, default=1.0
        Probability of adding white Gaussian noise.
    noise_snr_db : tuple of (float, float), default=(-20.0, 40.0)
        Range of the signal-to-noise ratio over the whole clip, ``10 log10(sum x^2 / sum n^2)``, in dB.
    time_shift_p : float, default=1.0
        Probability of shifting a copy in time.
    time_shift_seconds : tuple of (float, float), default=(-0.3, 0.3)
        Range of the time shift, in seconds; positive values delay.
    rollover : bool, default=True
        Shift circularly; ``False`` fills the vacated part with zeros.
    keep_original : bool, default=False
        Also output each clip unchanged (not normalised), before its copies.
    sample_rate : int, default=16000
        Rate of the input waveforms, in Hz.
    n_jobs : int, default=None
        Processes used when copies are computed (joblib, loky); ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context. The copies do not depend on it. As with any joblib
        call, the worker processes stay for reuse until idle for 300 s
        (``joblib.externals.loky.get_reusable_executor().shutdown()`` ends them at once).
    random_state : int, RandomState instance or None, default=None
        Seeds the copies; each copy's seed derives from it, its source clip's position in ``X`` and
        its copy number (so the same clip at another position, in another fold, gets other copies).
        ``None`` draws a new seed from ``np.random`` at each call to :meth:`fit_resample`, except
        where a pipeline's ``memory`` returns the copies it cached for the same inputs and
        parameters.
    verbose : bool, default=False
        Show a progress bar while copies are computed.

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_clips * n_copies_per_clip,)
        Index in ``X`` of the source clip of each output, to carry metadata (speakers) along.

    See Also
    --------
    AugmentedWaveforms : The lazy sequence returned as ``X_res``.

    Examples
    --------
    >>> import numpy as np
    >>> from sersk.augment import AugmentingResampler
    >>> from sersk.utils.synthetic import make_tone
    >>> X = [make_tone(220.0, 0.5), make_tone(330.0, 0.8)]
    >>> X_res, y_res = AugmentingResampler(n_augmentations=3, random_state=0).fit_resample(X, ["a", "b"])
    >>> len(X_res), y_res.tolist()
    (6, ['a', 'a', 'a', 'b', 'b', 'b'])
    >>> X_res[3].shape, float(np.abs(X_res[3]).max())
    ((12800,), 1.0)
    """

    _parameter_constraints: dict = {
        "n_augmentations": [Interval(Integral, 1, None, closed="left")],
        "pitch_shift_p": [Interval(Real, 0, 1, closed="both")],
        "pitch_shift_semitones": [tuple, list],
        "pitch_shift_method": [StrOptions({_SIGNALSMITH_CHEAPER, "signalsmith_stretch", "librosa_phase_vocoder"})],
        "noise_p": [Interval(Real, 0, 1, closed="both")],
        "noise_snr_db": [tuple, list],
        "time_shift_p": [Interval(Real, 0, 1, closed="both")],
        "time_shift_seconds": [tuple, list],
        "rollover": ["boolean"],
        "keep_original": ["boolean"],
        "sample_rate": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": N_JOBS_CONSTRAINT,
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_augmentations: int = _recipe.N_AUGMENTATIONS,
        pitch_shift_p: float = _recipe.PITCH_SHIFT_P,
        pitch_shift_semitones: tuple[float, float] = _recipe.PITCH_SHIFT_SEMITONES,
        pitch_shift_method: str = _SIGNALSMITH_CHEAPER,
        noise_p: float = _recipe.NOISE_P,
        noise_snr_db: tuple[float, float] = _recipe.NOISE_SNR_DB,
        time_shift_p: float = _recipe.TIME_SHIFT_P,
        time_shift_seconds: tuple[float, float] = _recipe.TIME_SHIFT_SECONDS,
        rollover: bool = True,
        keep_original: bool = False,
        sample_rate: int = _recipe.SAMPLE_RATE,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ):
        self.n_augmentations = n_augmentations
        self.pitch_shift_p = pitch_shift_p
        self.pitch_shift_semitones = pitch_shift_semitones
        self.pitch_shift_method = pitch_shift_method
        self.noise_p = noise_p
        self.noise_snr_db = noise_snr_db
        self.time_shift_p = time_shift_p
        self.time_shift_seconds = time_shift_seconds
        self.rollover = rollover
        self.keep_original = keep_original
        self.sample_rate = sample_rate
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _check_range(self, name: str, limit: float | None = None) -> tuple[float, float]:
        value = getattr(self, name)
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a (low, high) pair of numbers; got {value!r}") from None
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(f"{name} must be a finite (low, high) pair with low <= high; got {value!r}")
        if limit is not None and not -limit <= low <= high <= limit:
            raise ValueError(f"{name} must lie within [-{limit:g}, {limit:g}]; got {value!r}")
        return low, high

    def _chain(self) -> _Chain:
        """Validate the parameters and gather the chain settings."""
        self._validate_params()
        return _Chain(
            pitch_shift_p=float(self.pitch_shift_p),
            pitch_shift_semitones=self._check_range("pitch_shift_semitones", limit=24),  # audiomentations' limit
            pitch_shift_method=self.pitch_shift_method,
            noise_p=float(self.noise_p),
            # beyond 150 dB the noise or the clip falls below float32's resolution (24 bits, 144 dB)
            noise_snr_db=self._check_range("noise_snr_db", limit=150),
            time_shift_p=float(self.time_shift_p),
            time_shift_seconds=self._check_range("time_shift_seconds"),
            rollover=bool(self.rollover),
            sample_rate=int(self.sample_rate),
        )

    def fit(self, X: Any, y: Any) -> "AugmentingResampler":
        """Check the parameters and the data; use :meth:`fit_resample` to get the copies.

        Parameters
        ----------
        X : sequence of array-like of shape (n_samples_i,)
            Mono float waveforms at ``sample_rate``.
        y : array-like of shape (n_clips,)
            One label per clip.

        Returns
        -------
        self : AugmentingResampler
            The sampler itself.
        """
        self.fit_resample(X, y)
        return self

    def fit_resample(self, X: Any, y: Any) -> tuple[AugmentedWaveforms, np.ndarray]:
        """Plan ``n_augmentations`` augmented copies of each clip, ordered clip by clip.

        Nothing is augmented here: the copies are computed when ``X_res`` is indexed.

        Parameters
        ----------
        X : sequence of array-like of shape (n_samples_i,)
            Mono float waveforms at ``sample_rate`` (a list, a 1-D object array or a 2-D float array).
        y : array-like of shape (n_clips,)
            One label per clip.

        Returns
        -------
        X_res : AugmentedWaveforms of length n_clips * n_copies_per_clip
            The copies of clip 0, then of clip 1, ...; each float32 of shape (n_samples_i,), with the
            original first among its clip's copies when ``keep_original=True``.
        y_res : ndarray of shape (n_clips * n_copies_per_clip,)
            The label of each copy, with the dtype of ``y``.
        """
        return self._fit_resample(X, y)

    def _fit_resample(self, X: Any, y: Any) -> tuple[AugmentedWaveforms, np.ndarray]:
        chain = self._chain()
        if y is None:
            raise ValueError("AugmentingResampler needs the labels y, one per clip, to repeat them for the copies")
        # the copies are computed later, when read: keep the clips as they are now, not the caller's arrays
        waveforms = to_object_array([np.array(w) for w in check_waveforms(X)])
        y = check_labels(y, "y", n_clips=len(waveforms))
        check_matches_labels(waveforms, y)
        self._warn_of_shifts_past_the_clips(chain, waveforms)

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        copies = np.arange(_ORIGINAL if self.keep_original else 0, self.n_augmentations)
        sources = np.arange(len(waveforms))
        self._check_index_fits(len(sources) * len(copies))
        table = np.column_stack([np.repeat(sources, len(copies)), np.tile(copies, len(sources))]).astype(np.int64)
        self.sample_indices_ = table[:, 0].copy()
        X_res = AugmentedWaveforms(waveforms, table, chain, seed, n_jobs=self.n_jobs, verbose=self.verbose)
        return X_res, y[self.sample_indices_]

    def _warn_of_shifts_past_the_clips(self, chain: _Chain, waveforms: np.ndarray) -> None:
        """Warn when every time shift drawn moves some clips by their whole length without rollover:
        their shifted copies are silent."""
        low, high = chain.time_shift_seconds
        shortest = 0.0 if low <= 0 <= high else min(abs(low), abs(high))  # the smallest shift drawn
        if chain.rollover or not chain.time_shift_p or shortest == 0:
            return
        lost = sum(len(w) <= shortest * chain.sample_rate for w in waveforms)
        if lost:
            warnings.warn(
                f"time_shift_seconds={self.time_shift_seconds!r} shifts {count(lost, 'clip')} by at least their "
                f"length ({shortest:g} s or more) with rollover=False: their shifted copies are silent",
                UserWarning, stacklevel=3,
            )

    def _check_index_fits(self, n_copies: int) -> None:
        """Refuse, naming ``n_augmentations``, a number of copies whose index (made at once, the copies
        themselves when read) would not fit in this machine's memory: numpy's MemoryError, or the
        system ending the process, came instead."""
        index_bytes = n_copies * 5 * 8  # the table's two columns, its copy, the labels' index and their take
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # not POSIX
            return
        if index_bytes > memory:
            raise ValueError(
                f"n_augmentations={self.n_augmentations} makes {n_copies:,} copies, whose index alone needs "
                f"{index_bytes / 2**30:,.0f} GiB, more than this machine's {memory / 2**30:,.0f} GiB"
            )

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return Tags(
            estimator_type="sampler",
            target_tags=tags.target_tags,
            input_tags=InputTags(two_d_array=True),  # a 2-D float array is read as one clip per row
            sampler_tags=SamplerTags(sample_indices=True),
        )
