"""LogMelTransformer: fidelity to the recipe, batching, shapes and bad input."""

from __future__ import annotations

import re
import warnings
from decimal import Decimal

import librosa
import numpy as np
import pytest
import torchaudio.functional as AF
from sklearn.base import clone

from sersk import AudioLoader, BandStandardizer, LogMelTransformer, features
from sersk.exceptions import InvalidSignalError

from sersk.utils.synthetic import make_tone as tone

EPS = 2.220446049250313e-16


def reference_mel_power(wave: np.ndarray) -> np.ndarray:
    """Recipe section 2 written independently: numpy rfft + librosa's filterbank, in float64."""
    wave = wave.astype(np.float64)
    n_frames = 1 + (len(wave) - 2048) // 512
    frames = np.stack([wave[i * 512 : i * 512 + 2048] for i in range(n_frames)])
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(2048) / 2048)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    fb = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=128, fmin=0, fmax=8000, htk=True, norm="slaney",
                             dtype=np.float64)
    return fb @ power.T


@pytest.fixture(scope="module")
def emodb_waves(emodb_sample):
    return AudioLoader().fit_transform(emodb_sample)


def test_float64_matches_the_reference_elementwise(emodb_waves):
    out = LogMelTransformer(dtype="float64", top_db=None).fit_transform(emodb_waves)
    for log_mel, wave in zip(out, emodb_waves):
        ref = reference_mel_power(wave)
        assert log_mel.dtype == np.float64 and log_mel.shape == ref.shape
        rel = np.abs((np.exp(log_mel) - EPS) - ref) / ref
        assert rel.max() <= 1e-5


def test_float32_matches_the_reference(emodb_waves):
    """Per clip, the relative error of the mel power (Frobenius norm) is <= 1e-4. Elementwise, the
    quietest bands carry float32 FFT rounding: their log differs by at most 1e-3 (0.1 % in power)."""
    out = LogMelTransformer(top_db=None).fit_transform(emodb_waves)
    for log_mel, wave in zip(out, emodb_waves):
        ref = reference_mel_power(wave)
        assert log_mel.dtype == np.float32
        mel = np.exp(log_mel.astype(np.float64)) - EPS
        assert np.linalg.norm(mel - ref) / np.linalg.norm(ref) <= 1e-4
        assert np.abs(log_mel - np.log(ref + EPS)).max() <= 1e-3


def test_filterbank_matches_torchaudio_and_librosa():
    fb = LogMelTransformer().fit().mel_filters_
    ta = AF.melscale_fbanks(1025, 0.0, 8000.0, 128, 16000, norm="slaney", mel_scale="htk").numpy()
    lr = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=128, fmin=0, fmax=8000, htk=True, norm="slaney",
                             dtype=np.float64).T
    assert fb.shape == (1025, 128)
    np.testing.assert_allclose(fb, lr, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fb, ta, rtol=0, atol=1e-5 * fb.max())  # torchaudio computes in float32


def test_slaney_scale_and_no_norm_match_librosa():
    fb = LogMelTransformer(n_mels=40, f_min=50.0, f_max=7000.0, mel_scale="slaney", norm=None).fit().mel_filters_
    lr = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=40, fmin=50, fmax=7000, htk=False, norm=None,
                             dtype=np.float64).T
    np.testing.assert_allclose(fb, lr, atol=1e-12)


def test_strided_and_reversed_views_give_the_log_mels_of_their_copies():
    clip = tone(300, 0.5) + 0.1 * tone(1234, 0.5)
    views = [clip[::-1], clip[::2], np.asfortranarray(clip)]
    out = LogMelTransformer().fit_transform(views)
    # the copies go in one call too: a clip's last bits may depend on the other clips of its torch
    # call, whose sizes pick the BLAS kernels (seen on an AMD EPYC, 9.5e-7 apart)
    copies = LogMelTransformer().fit_transform([view.copy() for view in views])
    for log_mel, copy in zip(out, copies):
        np.testing.assert_array_equal(log_mel, copy)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_frames", [None, 1, 7])
def test_each_log_mel_is_its_own_c_ordered_array(dtype, batch_frames):
    clips = [tone(300, seconds) for seconds in (0.2, 0.5, 0.13)]
    for log_mel in LogMelTransformer(dtype=dtype, batch_frames=batch_frames).fit_transform(clips):
        assert log_mel.flags.c_contiguous and log_mel.flags.owndata and log_mel.dtype == dtype


def test_frames_are_full_frames_only():
    lengths = [2048, 2049, 2559, 2560, 16000, 16000 * 3 + 7]
    out = LogMelTransformer().fit_transform([tone(300, n / 16000) for n in lengths])
    assert [o.shape for o in out] == [(128, 1 + (n - 2048) // 512) for n in lengths]


def test_batching_and_order_do_not_change_the_result(emodb_waves):
    one = LogMelTransformer(batch_frames=1).fit_transform(emodb_waves)
    many = LogMelTransformer(batch_frames=4096).fit_transform(emodb_waves)
    reversed_ = LogMelTransformer(batch_frames=300).fit_transform(emodb_waves[::-1])[::-1]
    for a, b, c in zip(one, many, reversed_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-4)


def test_a_long_clip_is_featurised_in_runs_of_batch_frames(monkeypatch):
    """A clip longer than ``batch_frames`` goes through torch in runs of that many frames (a long
    recording took memory in proportion to its length); its ``top_db`` floor is the whole clip's."""
    loud_then_quiet = np.concatenate([tone(440, 1.0), 1e-6 * tone(440, 1.0)])  # the floor lifts the quiet half
    clips = [tone(300, 0.2), loud_then_quiet, tone(500, 0.3)]
    whole = LogMelTransformer(batch_frames=4096).fit_transform(clips)
    calls, log_mel = [], features.LogMelTransformer._log_mel

    def recorded_log_mel(self, frames, filters):
        calls.append(len(frames))
        return log_mel(self, frames, filters)

    monkeypatch.setattr(features.LogMelTransformer, "_log_mel", recorded_log_mel)
    runs = LogMelTransformer(batch_frames=7).fit_transform(clips)
    assert max(calls) <= 7 and sum(calls) == sum(c.shape[1] for c in whole)
    for a, b in zip(runs, whole):
        assert a.shape == b.shape and a.flags.owndata
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    assert np.ptp(whole[1][:, -20:]) == 0  # the quiet half is all at the floor


def test_a_transformer_pickled_with_batch_size_still_transforms(emodb_waves):
    """Before ``batch_frames``, the parameter was ``batch_size`` (clips per call): such a transformer
    has no ``batch_frames`` attribute and reads the default."""
    fitted = LogMelTransformer().fit()
    expected = fitted.transform(emodb_waves[:3])
    del fitted.batch_frames
    fitted.batch_size = 4
    assert "batch_frames" not in vars(fitted) and fitted.get_params()["batch_frames"] is None
    for a, b in zip(fitted.transform(emodb_waves[:3]), expected):
        np.testing.assert_array_equal(a, b)


def test_tone_energy_lands_in_the_right_band():
    log_mel = LogMelTransformer().fit_transform([tone(1000, 1.0)])[0]
    fb = LogMelTransformer().fit().mel_filters_
    expected_band = np.argmax(fb[round(1000 * 2048 / 16000)])
    assert abs(int(np.argmax(log_mel.mean(axis=1))) - expected_band) <= 1


def test_silence_gives_log_eps():
    out = LogMelTransformer().fit_transform([np.zeros(4096, np.float32)])[0]
    np.testing.assert_allclose(out, np.log(EPS), rtol=1e-6)


def test_floor_only_lifts_values_more_than_top_db_under_the_clip_maximum(emodb_waves):
    floored = LogMelTransformer().fit_transform(emodb_waves)
    bare = LogMelTransformer(top_db=None).fit_transform(emodb_waves)
    for f, b in zip(floored, bare):
        floor = b.max() - 80 * np.log(10) / 10
        np.testing.assert_array_equal(f, np.maximum(b, floor).astype(np.float32))


def test_digital_silence_sits_at_the_floor_not_at_log_eps(emodb_waves):
    """A second of exact zeros inside a real clip: its frames land 80 dB under the clip's maximum,
    the bottom of what noise-augmented training copies show, instead of log(eps) = -36."""
    wave = emodb_waves[0]
    middle = len(wave) // 2
    holed = np.concatenate([wave[:middle], np.zeros(16000, np.float32), wave[middle:]])
    out, bare = LogMelTransformer().fit_transform([holed])[0], LogMelTransformer(top_db=None).fit_transform([holed])[0]
    first, last = -(-middle // 512), (middle + 16000 - 2048) // 512  # frames wholly inside the zeros
    assert last - first >= 20
    floor = out.max() - 8 * np.log(10)
    assert np.allclose(bare[:, first : last + 1], np.log(EPS))
    np.testing.assert_allclose(out[:, first : last + 1], floor, rtol=1e-6)
    assert out.min() >= floor - 1e-5 and out.min() > -25
    np.testing.assert_array_equal(out[:, : first - 4], np.maximum(bare[:, : first - 4], np.float32(floor)))


def test_clone_and_params_round_trip():
    t = LogMelTransformer(n_mels=64, f_max=7600.0, dtype="float64", device="cpu")
    assert clone(t).get_params() == t.get_params()
    assert t.set_params(n_mels=32).n_mels == 32


def test_waveforms_as_torch_tensors_are_read_as_arrays():
    """A first version of the missing-value check asked a tensor for its truth value (a diff review)."""
    import torch

    waves = [torch.from_numpy(tone(440)), torch.from_numpy(tone(880))]
    by_tensor = LogMelTransformer(device="cpu").fit_transform(waves)
    by_array = LogMelTransformer(device="cpu").fit_transform([w.numpy() for w in waves])
    assert all(np.array_equal(a, b) for a, b in zip(by_tensor, by_array))


@pytest.mark.parametrize(
    "X, problem",
    [
        ([tone(440), np.zeros(1800, np.float32)], "clip 1 has 1800 samples; at least 2048"),
        ([np.array([np.nan] * 4096, np.float32)], "clip 0 contains 4096 NaN"),
        ([np.zeros((2, 4096), np.float32)], r"clip 0 has shape \(2, 4096\); expected a 1-D"),
        ([np.zeros(0, np.float32)], "clip 0 is empty"),
        ([], "empty"),
        (["a.wav"], r"clip 0 has dtype <U5; expected floating-point samples in \[-1, 1\] \(a file's path\? AudioLoader "
                    "decodes files"),  # paths, which an AudioLoader step decodes (an extensibility review)
        ([tone(440), Decimal("sNaN")], r"clip 1 is Decimal\('sNaN'\), neither a path nor a waveform"),  # was InvalidOperation
    ],
)
def test_bad_waveforms_are_named(X, problem):
    with pytest.raises(InvalidSignalError, match=problem):
        LogMelTransformer().fit(X)
    with pytest.raises(InvalidSignalError, match=problem):
        LogMelTransformer().fit().transform(X)


@pytest.mark.parametrize("where", [0, 3000, 4096 + 600])  # first sample, mid-clip, after the last full frame
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("batch_frames", [None, 4])  # one group for all clips; a group per clip
@pytest.mark.parametrize("chunk_clips", [512, 2])  # clip 2 in the first chunk of clips; in the second
def test_a_non_finite_sample_anywhere_is_named(where, value, batch_frames, chunk_clips, monkeypatch):
    monkeypatch.setattr(features, "_CHUNK_CLIPS", chunk_clips)
    clips = [tone(440, (4096 + 700) / 16000) for _ in range(3)]  # 6 full frames cover 4,608 samples
    clips[2][where] = value
    with pytest.raises(InvalidSignalError, match="clip 2 contains 1 NaN or infinite sample"):
        LogMelTransformer(batch_frames=batch_frames).fit().transform(clips)


@pytest.mark.parametrize("later_problem", ["nan_after_the_frames", "too_short", "none"])
def test_the_first_bad_clip_is_named_whatever_the_later_ones_hold(later_problem):
    clips = [tone(440, (4096 + 700) / 16000) for _ in range(3)]
    clips[0][3000] = np.nan  # inside a frame: found in the log-mels
    if later_problem == "nan_after_the_frames":
        clips[2][4700] = np.nan  # after the last full frame: checked on the samples
    elif later_problem == "too_short":
        clips[2] = clips[2][:100]
    with pytest.raises(InvalidSignalError, match="clip 0 contains 1 NaN"):
        LogMelTransformer().fit().transform(clips)
    with pytest.raises(InvalidSignalError, match="clip 0 has 100 samples"):
        LogMelTransformer().fit().transform([clips[1][:100], clips[0]])


def test_a_nan_sample_between_frames_is_named():
    clip = tone(440, 0.25)  # 4,000 samples; frames of 256 samples every 512 leave gaps
    clip[300] = np.nan  # in the gap after the first frame
    with pytest.raises(InvalidSignalError, match="clip 0 contains 1 NaN or infinite sample"):
        LogMelTransformer(n_fft=256, hop_length=512, n_mels=16).fit().transform([clip])


def test_samples_beyond_float32s_range_are_named():
    clip = tone(440).astype(np.float64)
    clip[5] = 1e39  # finite in float64, inf in float32
    with pytest.raises(InvalidSignalError, match=r"clip 0 has samples beyond float32's range \(largest \|sample\| 1e\+39\)"):
        LogMelTransformer(dtype="float64").fit().transform([clip])


def test_a_failed_fit_leaves_the_transformer_as_it_was():
    t = LogMelTransformer(n_mels=64).fit()
    t.set_params(n_mels=32)
    with pytest.raises(InvalidSignalError, match="clip 0 has 10 samples"):
        t.fit([np.zeros(10, np.float32)])
    assert t.mel_filters_.shape == (1025, 64)
    with pytest.raises(InvalidSignalError):
        LogMelTransformer().fit([np.zeros(10, np.float32)])
    fresh = LogMelTransformer()
    with pytest.raises(InvalidSignalError):
        fresh.fit([np.zeros(10, np.float32)])
    assert not hasattr(fresh, "mel_filters_")


def test_transform_after_set_params_without_fit_asks_for_fit():
    t = LogMelTransformer().fit().set_params(n_fft=1024)
    with pytest.raises(ValueError, match=r"n_fft=1024 changed since fit, which built the filterbank with n_fft=2048; call fit"):
        t.transform([tone(440)])
    with pytest.raises(ValueError, match=r"f_min=3000.0 changed since fit"):
        LogMelTransformer().fit().set_params(f_min=3000.0).transform([tone(440)])
    assert LogMelTransformer().fit().set_params(top_db=None).transform([tone(440)])[0].shape == (128, 28)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"scope": "clip"}, "scope='clip' changed since fit, which standardised with scope='corpus'"),
        ({"scope": "bogus"}, "scope='bogus' changed since fit"),  # fell through to per-speaker statistics
        ({"with_std": False}, "with_std=False changed since fit"),
    ],
)
def test_band_standardizer_refuses_settings_changed_since_fit(change, problem):
    """The next step was trained on what fit's settings gave: a scope changed afterwards silently fed
    it per-clip statistics (or raised AttributeError: no mean_, from a fit with another scope)."""
    X = [np.random.default_rng(i).normal(size=(4, 9)).astype(np.float32) for i in range(3)]
    scaler = BandStandardizer().fit(X).set_params(**change)
    with pytest.raises(ValueError, match=re.escape(problem)):
        scaler.transform(X)
    with pytest.raises(ValueError, match="scope='corpus' changed since fit"):
        BandStandardizer(scope="clip").fit(X).set_params(scope="corpus").transform(X)


def test_a_log_eps_that_rounds_to_zero_is_refused_in_fit():
    with pytest.raises(ValueError, match="log_eps=1e-50 rounds to 0 in float32"):
        LogMelTransformer(log_eps=1e-50).fit()
    silence = LogMelTransformer(log_eps=1e-50, dtype="float64", top_db=None).fit().transform([np.zeros(4096, np.float32)])
    np.testing.assert_allclose(silence[0], np.log(1e-50))


def test_samples_that_overflow_the_power_spectrum_are_named():
    clips = [tone(440), tone(440) * np.float32(1e20)]  # finite, but their squares overflow float32
    message = r"clip 1 overflows the float32 power spectrum \(largest \|sample\| 5e\+19\)"
    with pytest.raises(InvalidSignalError, match=message):
        LogMelTransformer().fit().transform(clips)
    assert np.isfinite(LogMelTransformer(dtype="float64").fit().transform(clips)[1]).all()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"f_min": 9000.0}, "f_min=9000.0"),
        ({"f_max": 9000.0}, "f_max=9000.0"),
        ({"n_mels": 0}, "'n_mels' parameter"),
        ({"window": "boxcar"}, "'window' parameter"),
        ({"top_db": -10.0}, "'top_db' parameter"),
        ({"log_eps": 1e300}, "log_eps=1e[+]300 overflows float32"),  # was blamed on the samples in transform
    ],
)
def test_bad_parameters_fail_in_fit(params, match):
    t = LogMelTransformer(**params)  # __init__ stores, does not check
    with pytest.raises(ValueError, match=match):
        t.fit()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hop_length": 0}, "'hop_length' parameter"),  # was ZeroDivisionError
        ({"window": "Hann"}, "'window' parameter"),  # was KeyError: 'Hann'
        ({"dtype": "float16"}, "'dtype' parameter"),  # was KeyError
        ({"batch_frames": 0}, "'batch_frames' parameter"),  # was range()'s error
        ({"top_db": -5.0}, "'top_db' parameter"),  # made every log-mel constant
        ({"log_eps": 1e-50}, "rounds to 0"),
    ],
)
def test_parameters_set_after_fit_are_checked_in_transform(params, match):
    t = LogMelTransformer(device="cpu").fit().set_params(**params)
    with pytest.raises(ValueError, match=match):
        t.transform([tone(440)])


def test_empty_mel_filters_are_warned_of():
    with pytest.warns(UserWarning, match="14 of the 128 mel filters are empty: n_fft=256"):
        LogMelTransformer(n_fft=256, device="cpu").fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogMelTransformer(device="cpu").fit()  # the recipe's: none


def test_fit_transform_reads_a_lazy_sequence_once():
    class CountingClips:
        def __init__(self, clips):
            self.clips, self.reads = clips, 0

        def __len__(self):
            return len(self.clips)

        def __getitem__(self, key):
            self.reads += 1
            return self.clips[key]

    clips = CountingClips([tone(440), tone(880)])
    LogMelTransformer().fit_transform(clips)
    assert clips.reads == 1  # one chunk, read once


def test_band_standardizer_uses_training_statistics_or_each_clips_own():
    from sersk import BandStandardizer

    rng = np.random.default_rng(0)
    offsets = np.linspace(-30, 0, 8)[:, None]
    train = [rng.normal(size=(8, n)) * 3 + offsets for n in (20, 35, 50)]
    scaler = BandStandardizer().fit(train)
    frames = np.hstack(scaler.transform(train))
    np.testing.assert_allclose(frames.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(frames.std(axis=1), 1, atol=1e-3)
    louder = [train[0] + 5]  # a new clip is standardised with the training statistics, not its own
    np.testing.assert_allclose(scaler.transform(louder)[0], scaler.transform(train[:1])[0] + 5 / scaler.scale_[:, None],
                               rtol=1e-4, atol=1e-4)
    own = BandStandardizer(scope="clip").fit(train).transform(louder)[0]
    np.testing.assert_allclose(own.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(own.std(axis=1), 1, atol=1e-3)
    centred = BandStandardizer(with_std=False).fit(train)
    assert (centred.scale_ == 1).all()
    with pytest.raises(InvalidSignalError, match="clip 0 has 4 feature rows; expected 8"):
        scaler.transform([np.zeros((4, 10))])


def test_band_standardizer_by_speaker_uses_each_speakers_own_statistics():
    from sersk import BandStandardizer

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(8, 20 + 5 * i)) * (1 + i % 2) + 10 * (i % 3) for i in range(9)]
    speakers = np.array(["a", "b", "c"] * 3)
    scaler = BandStandardizer(scope="speaker")
    Z = scaler.fit_transform(X, groups=speakers)
    for speaker in "abc":
        frames = np.hstack([z for z, s in zip(Z, speakers) if s == speaker])
        np.testing.assert_allclose(frames.mean(axis=1), 0, atol=1e-5)
        np.testing.assert_allclose(frames.std(axis=1), 1, atol=1e-3)
    again = scaler.transform(X, groups=speakers)
    assert all(np.array_equal(a, b) for a, b in zip(Z, again))
    one_call = scaler.transform([x for x, s in zip(X, speakers) if s == "b"])  # no groups: the call is one speaker
    assert all(np.array_equal(a, b) for a, b in zip(one_call, Z[speakers == "b"]))
    with pytest.raises(ValueError, match="needs the speaker of each clip"):
        BandStandardizer(scope="speaker").fit(X)
    with pytest.raises(ValueError, match="groups has 3 entries but X has 9 clips"):
        scaler.transform(X, groups=speakers[:3])
    with pytest.raises(ValueError, match=r"groups has shape \(\); expected one speaker per clip, shape \(9,\)"):
        BandStandardizer(scope="speaker").fit(X, groups="a")
    with pytest.raises(ValueError, match="groups has a missing speaker .None, NaN or NA. at position 0"):  # was: None out
        scaler.transform(X, groups=np.array([np.nan] * 3 + [1.0] * 6))


def test_band_standardizer_centres_a_constant_band_with_eps_zero_and_forgets_old_statistics():
    from sersk import BandStandardizer

    X = [np.vstack([np.arange(5.0), np.full(5, 3.0)])]
    Z = BandStandardizer(eps=0).fit_transform(X)[0]
    np.testing.assert_array_equal(Z[1], 0.0)  # centred, not 0 / 0
    assert np.isfinite(BandStandardizer(scope="clip", eps=0).fit_transform(X)[0]).all()
    scaler = BandStandardizer().fit(X).set_params(scope="clip").fit(X)
    assert not hasattr(scaler, "mean_") and not hasattr(scaler, "scale_")


def test_filter_blocks_reproduce_the_dense_product():
    from sersk.features import filter_blocks, mel_filterbank

    filters = mel_filterbank(n_fft=2048, n_mels=40, sample_rate=16000, f_min=300.0, f_max=6000.0)
    filters[:, 35:] = 0.0  # a block of empty bands still yields its (zero) columns
    power = np.random.default_rng(0).random((3, 5, filters.shape[0]))
    blocks = filter_blocks(filters, 16)
    assert [bands for _, bands in blocks] == [slice(0, 16), slice(16, 32), slice(32, 40)]
    assert sum(b.stop - b.start for b, _ in blocks) < filters.shape[0]  # the 300 Hz-6 kHz bins only
    blocked = np.concatenate([power[..., bins] @ filters[bins, bands] for bins, bands in blocks], axis=-1)
    np.testing.assert_allclose(blocked, power @ filters, rtol=1e-12)
