"""AugmentingResampler: the recipe's chain, lazy copies, determinism and its place in a pipeline."""

from __future__ import annotations

import inspect
import pickle
import random
import subprocess
import sys
import warnings
from unittest import mock

import joblib
import numpy as np
import pytest
from imblearn.base import is_sampler
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from sersk import LogMelTransformer, _recipe, augment
from sersk.augment import AugmentedWaveforms, AugmentingResampler
from sersk.exceptions import InvalidSignalError
from sersk.utils.synthetic import make_tone

SR = _recipe.SAMPLE_RATE
QUIET = {"pitch_shift_p": 0.0, "noise_p": 0.0, "time_shift_p": 0.0}


@pytest.fixture
def clips() -> list[np.ndarray]:
    """Three short clips of different lengths."""
    return [make_tone(220.0, 0.5), make_tone(330.0, 0.6, amplitude=0.2), make_tone(440.0, 0.7, amplitude=0.8)]


def _noise_clip(seconds: float = 1.0) -> np.ndarray:
    """A clip with no periodicity, so a time shift has a single best lag (and 0.3 s < half its length)."""
    return (0.1 * np.random.default_rng(1).normal(size=int(seconds * SR))).astype(np.float32)


def _circular_lag(copy: np.ndarray, ref: np.ndarray) -> int:
    """The k for which ``copy`` best matches ``np.roll(ref, k)``, in (-n/2, n/2]."""
    xcorr = np.fft.irfft(np.fft.rfft(copy) * np.conj(np.fft.rfft(ref)), len(ref))
    k = int(np.argmax(xcorr))
    return k - len(ref) if k > len(ref) // 2 else k


def _starts_and_peaks(copies, start):
    return [(start + i, float(np.abs(c).max())) for i, c in enumerate(copies)]


def _mean_over_frames(X):
    return np.stack([seq.mean(axis=1) for seq in X])


class _CountingLogisticRegression(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        self.n_fit_samples_ = len(X)
        return super().fit(X, y, sample_weight=sample_weight)


def test_defaults_are_the_recipe():
    params = AugmentingResampler().get_params()
    assert params["n_augmentations"] == _recipe.N_AUGMENTATIONS == 75
    assert params["pitch_shift_p"] == _recipe.PITCH_SHIFT_P
    assert tuple(params["pitch_shift_semitones"]) == _recipe.PITCH_SHIFT_SEMITONES
    assert params["noise_p"] == _recipe.NOISE_P
    assert tuple(params["noise_snr_db"]) == _recipe.NOISE_SNR_DB
    assert params["time_shift_p"] == _recipe.TIME_SHIFT_P
    assert tuple(params["time_shift_seconds"]) == _recipe.TIME_SHIFT_SECONDS
    assert params["sample_rate"] == _recipe.SAMPLE_RATE
    assert params["rollover"] is True and params["keep_original"] is False


def test_init_stores_only_and_clones():
    est = AugmentingResampler(pitch_shift_p=5, noise_snr_db=(9, -9), n_augmentations=0)  # invalid: not checked yet
    names = set(inspect.signature(AugmentingResampler).parameters)
    assert set(vars(est)) == names
    assert est.get_params()["noise_snr_db"] == (9, -9)
    twin = clone(AugmentingResampler(n_augmentations=4, random_state=3))
    assert twin.get_params() == AugmentingResampler(n_augmentations=4, random_state=3).get_params()


def test_is_a_sampler_without_transform():
    est = AugmentingResampler()
    assert is_sampler(est)
    assert hasattr(est, "fit_resample") and not hasattr(est, "transform")
    assert est.__sklearn_tags__().sampler_tags.sample_indices


def test_shapes_labels_and_sample_indices(clips):
    y = np.array([3, 1, 2], dtype=np.int16)
    sampler = AugmentingResampler(n_augmentations=4, random_state=0)
    X_res, y_res = sampler.fit_resample(clips, y)
    assert isinstance(X_res, AugmentedWaveforms) and len(X_res) == 12
    assert y_res.dtype == y.dtype and y_res.tolist() == [3] * 4 + [1] * 4 + [2] * 4
    np.testing.assert_array_equal(sampler.sample_indices_, np.repeat([0, 1, 2], 4))
    copies = X_res[:]
    assert [len(c) for c in copies] == [len(clips[i]) for i in sampler.sample_indices_]
    assert all(c.dtype == np.float32 for c in copies)


def test_keep_original_puts_each_original_first(clips):
    sampler = AugmentingResampler(n_augmentations=2, keep_original=True, random_state=0)
    X_res, y_res = sampler.fit_resample(clips, ["a", "b", "c"])
    assert len(X_res) == 9 and y_res.tolist() == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    for i, clip in enumerate(clips):
        np.testing.assert_array_equal(X_res[3 * i], clip)  # unchanged, not normalised
    # the augmented copies are the same as without the originals
    plain, _ = AugmentingResampler(n_augmentations=2, random_state=0).fit_resample(clips, ["a", "b", "c"])
    np.testing.assert_array_equal(X_res[4], plain[2])


def test_every_copy_has_peak_one_and_differs(clips):
    X_res, _ = AugmentingResampler(n_augmentations=4, random_state=0).fit_resample(clips, [0, 1, 2])
    copies = X_res[:]
    for copy in copies:
        assert abs(float(np.abs(copy).max()) - 1.0) < 1e-6
    for i in range(len(copies)):
        for j in range(i + 1, len(copies)):
            assert len(copies[i]) != len(copies[j]) or not np.allclose(copies[i], copies[j])


def test_silent_clip_stays_zero():
    X_res, _ = AugmentingResampler(n_augmentations=2, random_state=0).fit_resample([np.zeros(8000, "float32")], [0])
    for copy in X_res[:]:
        assert np.isfinite(copy).all() and not copy.any()


@pytest.mark.parametrize("rollover", [True, False])
def test_time_shift_alone_is_a_shift_of_at_most_0_3_s(rollover):
    clip = _noise_clip()
    params = dict(QUIET, time_shift_p=1.0, rollover=rollover)
    X_res, _ = AugmentingResampler(n_augmentations=5, random_state=0, **params).fit_resample([clip], [0])
    lags = []
    for copy in X_res[:]:
        k = _circular_lag(copy, clip)
        assert abs(k) <= 0.3 * SR
        expected = np.roll(clip, k)
        if not rollover:
            if k > 0:
                expected[:k] = 0
            elif k < 0:
                expected[k:] = 0
        np.testing.assert_allclose(copy, expected / np.abs(expected).max(), rtol=0, atol=1e-6)
        lags.append(k)
    assert len(set(lags)) > 1


def test_noise_alone_has_the_requested_snr():
    clip = make_tone(300.0, 1.0)
    params = dict(QUIET, noise_p=1.0, noise_snr_db=(10.0, 10.0))
    X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0, **params).fit_resample([clip], [0])
    for copy in X_res[:]:
        scale = np.dot(copy, clip) / np.dot(clip, clip)  # undo the peak normalisation
        noise = copy - scale * clip
        snr = 10 * np.log10(np.sum((scale * clip) ** 2) / np.sum(noise**2))
        assert snr == pytest.approx(10.0, abs=0.5)


def test_same_seed_same_copies_different_seed_different(clips):
    first, _ = AugmentingResampler(n_augmentations=3, random_state=7).fit_resample(clips, [0, 1, 2])
    again, _ = AugmentingResampler(n_augmentations=3, random_state=7).fit_resample(clips, [0, 1, 2])
    other, _ = AugmentingResampler(n_augmentations=3, random_state=8).fit_resample(clips, [0, 1, 2])
    a, b, c = first[:], again[:], other[:]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not any(np.array_equal(u, v) for u, v in zip(a, c))


def test_copies_do_not_depend_on_indexing(clips):
    serial, _ = AugmentingResampler(n_augmentations=3, random_state=0).fit_resample(clips, [0, 1, 2])
    whole = serial[:]
    items = [serial[i] for i in range(len(serial))]
    chunks = serial[0:4] + serial[4:5] + serial[5:9]
    picked = serial[np.array([8, 0, 4])]
    for copies in (items, chunks, list(serial)):
        assert len(copies) == len(whole) and all(np.array_equal(u, v) for u, v in zip(copies, whole))
    assert all(np.array_equal(u, whole[i]) for u, i in zip(picked, [8, 0, 4]))
    np.testing.assert_array_equal(serial[-1], whole[-1])
    with pytest.raises(IndexError):
        serial[9]


def test_copies_do_not_depend_on_n_jobs(clips):
    serial, _ = AugmentingResampler(n_augmentations=3, random_state=0, n_jobs=1).fit_resample(clips, [0, 1, 2])
    parallel, _ = AugmentingResampler(n_augmentations=3, random_state=0, n_jobs=2).fit_resample(clips, [0, 1, 2])
    random.seed(5)
    state = random.getstate()
    copies = parallel[:] + parallel[2:7]  # twice, so a worker is reused
    assert random.getstate() == state
    expected = serial[:] + serial[2:7]
    assert len(copies) == len(expected) and all(np.array_equal(u, v) for u, v in zip(copies, expected))


def test_n_jobs_none_follows_joblibs_parallel_config_and_zero_is_refused(clips):
    X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0).fit_resample(clips, [0, 1, 2])
    with mock.patch.object(augment, "Parallel", wraps=augment.Parallel) as parallel:
        X_res[:]
        assert parallel.call_count == 0  # None outside a context: one process, no pool
        with joblib.parallel_config(n_jobs=2):
            copies = X_res[:]
        assert parallel.call_count == 1 and parallel.call_args.kwargs["backend"] == "loky"
    assert all(np.array_equal(u, v) for u, v in zip(copies, X_res[:]))
    with pytest.raises(ValueError, match="'n_jobs' parameter of AugmentingResampler"):
        AugmentingResampler(n_jobs=0).fit_resample(clips, [0, 1, 2])


def test_copies_ignore_other_threads_drawing_from_np_random_and_later_changes_to_the_clips(clips):
    import threading

    clips = [c.copy() for c in clips]
    X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0, keep_original=True).fit_resample(clips, [0, 1, 2])
    expected = X_res[:]
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [np.random.random() for _ in iter(stop.is_set, True)])
    spinner.start()
    try:
        during = X_res[:]
    finally:
        stop.set()
        spinner.join()
    clips[0][:] = 0.0  # the caller reuses its array: the copies, computed when read, do not follow
    after = X_res[:]
    assert all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(expected, during, after))


def test_map_batches_applies_a_function_to_every_copy_in_order(clips):
    X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0, n_jobs=2).fit_resample(clips, [0, 1, 2])
    with mock.patch.object(augment, "_MAP_BATCH_COPIES", 2):  # 5 tasks for 2 workers
        batches = list(X_res.map_batches(_starts_and_peaks))
    assert [len(b) for b in batches] == [2, 2, 2, 2, 1]
    results = [r for b in batches for r in b]
    assert [i for i, _ in results] == list(range(9))
    assert [peak for _, peak in results] == [float(np.abs(c).max()) for c in X_res[:]]


def test_log_mels_made_in_the_workers_equal_those_of_the_copies(clips):
    X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0, n_jobs=2).fit_resample(clips, [0, 1, 2])
    with mock.patch.object(augment, "_MAP_BATCH_COPIES", 2):
        in_workers = LogMelTransformer(device="cpu").fit_transform(X_res)
    here = LogMelTransformer(device="cpu").fit_transform(list(X_res[:]))
    assert len(in_workers) == len(here) == 9
    for u, v in zip(in_workers, here):
        assert u.dtype == np.float32
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)


def test_a_short_copy_is_named_by_its_position_from_a_worker(clips):
    short = [clips[0], make_tone(220.0, 0.05), clips[1]]  # 800 samples: no 2048-sample frame
    X_res, _ = AugmentingResampler(n_augmentations=2, random_state=0, n_jobs=2).fit_resample(short, [0, 1, 2])
    # both copies of the short clip are too short; whichever worker fails first is reported
    positions = [i for i in range(len(X_res)) if len(X_res[i]) == 800]
    assert positions == [2, 3]
    with mock.patch.object(augment, "_MAP_BATCH_COPIES", 1), pytest.raises(InvalidSignalError, match="clip [23] has 800"):
        LogMelTransformer(device="cpu").fit_transform(X_res)


def test_pitch_shift_reusing_its_processor_matches_audiomentations(clips):
    from audiomentations import PitchShift

    for x, semitones in [(clips[0], -2.0), (clips[2], 1.3), (clips[1], 0.4), (clips[0], -2.0)]:
        ours = augment._PitchShift(semitones, semitones, method="signalsmith_stretch", p=1.0)(x, SR)
        theirs = PitchShift(semitones, semitones, method="signalsmith_stretch", p=1.0)(x, SR)
        assert ours.shape == x.shape
        np.testing.assert_array_equal(ours, theirs)


def test_cheaper_pitch_shift_moves_a_tone_like_the_default_preset():
    tone = make_tone(440.0, 2.0, amplitude=0.5)
    for semitones in (-2.0, 1.0, 2.0):
        peaks = []
        for method in ("signalsmith_stretch", "signalsmith_stretch_cheaper"):
            shifted = augment._PitchShift(semitones, semitones, method=method, p=1.0)(tone, SR)[4000:28000]
            spectrum = np.abs(np.fft.rfft(shifted, 8 * len(shifted)))
            peaks.append(np.fft.rfftfreq(8 * len(shifted), 1 / SR)[np.argmax(spectrum)])
        expected = 440.0 * 2 ** (semitones / 12)
        assert abs(peaks[1] - expected) / expected < 0.003 and abs(peaks[1] - peaks[0]) / expected < 0.003


def test_callers_global_rngs_are_untouched(clips):
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()
    X_res, _ = AugmentingResampler(n_augmentations=2, random_state=0).fit_resample(clips, [0, 1, 2])
    X_res[:]
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


def test_pickle_round_trip_keeps_the_copies(clips):
    X_res, _ = AugmentingResampler(n_augmentations=2, random_state=0).fit_resample(clips, [0, 1, 2])
    restored = pickle.loads(pickle.dumps(X_res))
    assert len(restored) == len(X_res) and repr(restored) == repr(X_res)
    assert all(np.array_equal(u, v) for u, v in zip(restored[:], X_res[:]))
    assert "6 copies of 3 clips" in repr(X_res)


def test_runs_in_fit_only_in_an_imblearn_pipeline():
    tones = [make_tone(f, 0.5) for f in (200.0, 220.0, 240.0, 2000.0, 2200.0, 2400.0)]
    y = np.array(["low"] * 3 + ["high"] * 3)
    pipe = Pipeline([
        ("augment", AugmentingResampler(n_augmentations=3, random_state=0)),
        ("logmel", LogMelTransformer(device="cpu")),
        ("pool", FunctionTransformer(_mean_over_frames)),
        ("clf", _CountingLogisticRegression()),
    ])
    spy = mock.patch.object(
        AugmentingResampler, "fit_resample", autospec=True, side_effect=AugmentingResampler.fit_resample
    )
    with spy as fit_resample:
        pipe.fit(tones, y)
        assert fit_resample.call_count == 1
        assert pipe.named_steps["clf"].n_fit_samples_ == 3 * len(tones)
        assert pipe.predict(tones).shape == (len(tones),)
        assert pipe.predict_proba(tones).shape == (len(tones), 2)
        assert pipe.score(tones, y) == 1.0
        assert len(pipe[:-1].transform(tones)) == len(tones)
        assert fit_resample.call_count == 1


@pytest.mark.parametrize(
    "params, name",
    [
        ({"pitch_shift_p": 1.5}, "pitch_shift_p"),
        ({"noise_p": -0.1}, "noise_p"),
        ({"time_shift_p": 2}, "time_shift_p"),
        ({"pitch_shift_semitones": (2.0, -2.0)}, "pitch_shift_semitones"),
        ({"pitch_shift_semitones": (-30.0, 2.0)}, "pitch_shift_semitones"),
        ({"noise_snr_db": (40.0, -20.0)}, "noise_snr_db"),
        # the copies overflowed float32, and the log-mel step blamed the clip's samples
        ({"noise_snr_db": (-1000.0, -900.0)}, r"noise_snr_db must lie within \[-150, 150\]"),
        ({"time_shift_seconds": (0.3,)}, "time_shift_seconds"),
        ({"n_augmentations": 0}, "n_augmentations"),
        ({"sample_rate": 0}, "sample_rate"),
    ],
)
def test_bad_parameters_are_named_before_any_work(params, name):
    with mock.patch("sersk.augment.check_waveforms") as check:
        with pytest.raises(ValueError, match=name):
            AugmentingResampler(**params).fit_resample([make_tone(220.0, 0.5)], [0])
    check.assert_not_called()


def test_a_number_of_copies_whose_index_cannot_fit_in_memory_is_named(monkeypatch):
    """A mistyped n_augmentations=10**8 raised numpy's MemoryError, or the system ended the process."""
    import os

    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**20}[name])  # 4 GiB
    clips = [make_tone(220.0, 0.5)] * 10
    with pytest.raises(ValueError, match=r"n_augmentations=100000000 makes 1,000,000,000 copies, whose index alone "
                                         r"needs 37 GiB, more than this machine's 4 GiB"):
        AugmentingResampler(n_augmentations=10**8).fit_resample(clips, [0] * 10)
    assert len(AugmentingResampler(n_augmentations=75).fit_resample(clips, [0] * 10)[0]) == 750


def test_long_clips_reach_the_workers_without_a_temporary_folder(tmp_path, monkeypatch):
    """joblib memory-maps arguments over 1 MB (16 s of audio) through a temporary folder: a full or
    unusable one (a container's 64 MB /dev/shm) failed the copies with a PicklingError."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(blocker))
    clips = [make_tone(220.0, 20.0), make_tone(330.0, 20.0)]
    X_res, _ = AugmentingResampler(n_augmentations=2, n_jobs=2, random_state=0).fit_resample(clips, [0, 1])
    alone = AugmentingResampler(n_augmentations=2, n_jobs=1, random_state=0).fit_resample(clips, [0, 1])[0]
    assert all(np.array_equal(a, b) for a, b in zip(X_res[0:4], alone[0:4]))


def test_time_shifts_past_a_clips_length_without_rollover_are_warned_of():
    """The copies of a clip shifted by its whole length without rollover are silent; nothing said so."""
    clips = [make_tone(220.0, 0.5), make_tone(330.0, 2.0)]
    with pytest.warns(UserWarning, match=r"shifts 1 clip by at least their length \(1 s or more\) with rollover=False"):
        AugmentingResampler(time_shift_seconds=(1.0, 1.5), rollover=False).fit_resample(clips, [0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AugmentingResampler(time_shift_seconds=(1.0, 1.5), rollover=True).fit_resample(clips, [0, 1])
        AugmentingResampler(time_shift_seconds=(-0.3, 0.3), rollover=False).fit_resample(clips, [0, 1])


def test_bad_data_is_rejected(clips):
    with pytest.raises(ValueError, match="X has 3 samples but y has 2"):
        AugmentingResampler().fit_resample(clips, [0, 1])
    with pytest.raises(ValueError, match="needs the labels y"):
        AugmentingResampler().fit_resample(clips, None)
    with pytest.raises(ValueError, match=r"y has a missing label \(None, NaN or NA\) at position 1"):
        AugmentingResampler().fit_resample(clips, ["a", np.nan, "b"])  # was the label "nan" on a clip's copies
    with pytest.raises(ValueError, match="clip 1"):
        AugmentingResampler().fit_resample([clips[0], np.zeros((2, 100), "float32")], [0, 1])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_clip_that_overflows_the_augmentation_is_named_and_leaves_later_copies_finite(n_jobs):
    """Finite samples near 1e19 overflow the pitch shift or the noise's float32 power: the copies were
    all NaN, and the next step named a copy's position, not the clip. The shared pitch shifter kept a
    non-finite state: every later pitch-shifted copy of the process came out NaN too."""
    clip = make_tone(220.0, 0.5)
    resampler = AugmentingResampler(n_augmentations=4, pitch_shift_p=1.0, n_jobs=n_jobs, random_state=0)
    X, _ = resampler.fit_resample([clip, clip * 1e19], [0, 1])
    with pytest.raises(InvalidSignalError, match=r"clip 1 gives non-finite augmented copies: .* \(largest \|sample\| 5e\+18\)"):
        list(X)
    if n_jobs == 1:  # this process's pitch shifter overflowed (joblib ends a pool whose task failed)
        X, _ = resampler.fit_resample([clip] * 8, [0] * 8)
        assert all(np.isfinite(copy).all() for copy in X)


def test_import_sersk_and_augmenting_never_load_torch():
    # the promise of sersk/__init__.py: augmentation workers stay light
    code = """
import sys
import numpy as np
import sersk
from sersk import AugmentingResampler
from sersk.utils.synthetic import make_tone
X, _ = AugmentingResampler(n_augmentations=2, random_state=0).fit_resample([make_tone(300.0, 0.5)], ["a"])
assert len(X[:]) == 2
assert "torch" not in sys.modules, "torch was loaded"
assert {"CNNLSTMClassifier", "make_pipeline", "__version__"} <= set(dir(sersk))
try:
    sersk.NoSuchThing
except AttributeError as exc:
    assert "no attribute 'NoSuchThing'" in str(exc)
else:
    raise AssertionError("no AttributeError")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_another_threads_audiomentations_calls_keep_their_numbers_while_sersk_augments(clips, monkeypatch):
    """sersk pointed audiomentations' modules at its own generator for a whole batch: a user's
    audiomentations transform in another thread meanwhile drew sersk's numbers, and took them from
    sersk's copies (a concurrency review: 16 of 36 copies differed)."""
    import threading

    from audiomentations import Gain

    labels = np.array(["a", "b", "a"])

    def copies():
        X_res, _ = AugmentingResampler(n_augmentations=3, random_state=0).fit_resample(clips, labels)
        return [x.copy() for x in X_res[:]]

    def user_draw():  # the user's own seeded augmentation parameters
        random.seed(7)
        gain = Gain(p=1.0)
        gain.randomize_parameters(clips[0], 16000)
        return gain.parameters["amplitude_ratio"]

    alone, expected = copies(), user_draw()
    drawn = []
    apply = augment._PitchShift.apply

    def apply_while_the_user_draws(self, samples, sample_rate):  # the user's thread runs mid-batch
        if not drawn:
            thread = threading.Thread(target=lambda: drawn.append(user_draw()))
            thread.start()
            thread.join()
        return apply(self, samples, sample_rate)

    monkeypatch.setattr(augment._PitchShift, "apply", apply_while_the_user_draws)
    together = copies()
    assert drawn == [expected]
    assert all(np.array_equal(a, b) for a, b in zip(alone, together))


def test_a_users_patch_of_audiomentations_random_leaves_serks_copies_alone(clips):
    """sersk's stand-in for audiomentations' ``random`` took a user's ``mock.patch`` of
    ``audiomentations.<module>.random.uniform`` as its own attribute, so sersk's copies drew from the
    user's mock (a review's find); the patch reaches ``random``, as it did before the stand-in."""
    import audiomentations.augmentations.shift as shift_module

    labels = np.array(["a", "b", "a"])

    def copies():
        X_res, _ = AugmentingResampler(n_augmentations=2, random_state=0).fit_resample(clips, labels)
        return [x.copy() for x in X_res[:]]

    alone = copies()  # installs the stand-in
    with mock.patch("audiomentations.augmentations.shift.random.uniform", return_value=0.0):
        assert shift_module.random.uniform(1, 2) == 0.0 and random.uniform(1, 2) == 0.0
        patched = copies()
    assert all(np.array_equal(a, b) for a, b in zip(alone, patched))
    assert random.uniform(1, 2) != 0.0  # and the patch is undone
