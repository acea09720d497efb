"""AudioLoader and read_audio: decoding, mono mix-down, resampling, pass-through and bad files."""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest
import soundfile as sf
from sklearn.base import clone

from sersk import AudioLoader, LogMelTransformer, read_audio
from sersk.exceptions import AudioFileError, InvalidSignalError

from sersk.utils.synthetic import make_tone as tone


def test_reads_real_emodb_clips_as_float32_mono(emodb_sample):
    waves = AudioLoader(normalize=None).fit_transform(emodb_sample)
    assert waves.dtype == object and len(waves) == len(emodb_sample)
    for path, w in zip(emodb_sample, waves):
        ref, rate = sf.read(path, dtype="float32")
        assert rate == 16000 and w.dtype == np.float32 and w.ndim == 1
        np.testing.assert_array_equal(w, ref)


def test_clips_are_peak_normalised_by_default(tmp_path, emodb_sample):
    quiet = tone(440) * 0.02
    sf.write(tmp_path / "quiet.wav", quiet, 16000, subtype="FLOAT")
    waves = AudioLoader().fit_transform([tmp_path / "quiet.wav", quiet, *emodb_sample])
    for w in waves:
        assert np.abs(w).max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(waves[0], quiet / np.abs(quiet).max(), rtol=1e-6)
    assert np.abs(quiet).max() == pytest.approx(0.01)  # the caller's array is not modified


def test_silent_clip_stays_zero():
    out = AudioLoader().fit_transform([np.zeros(4096, np.float32)])[0]
    assert not out.any()


def test_short_file_is_reported_at_load_time_with_its_duration(tmp_path):
    sf.write(tmp_path / "short.wav", tone(440)[:800], 16000)
    with pytest.raises(AudioFileError, match=r"'.*short\.wav' is too short: 0\.050 s \(800 samples at 16000 Hz\)"):
        AudioLoader().transform([tmp_path / "short.wav"])
    assert len(AudioLoader(min_samples=800).transform([tmp_path / "short.wav"])[0]) == 800


def test_paths_in_a_numpy_array_are_named_as_plain_strings(tmp_path):
    """Corpora come as numpy arrays of paths: messages showed np.str_('...short.wav') (and '1 samples')."""
    sf.write(tmp_path / "short.wav", tone(440)[:1], 16000)
    with pytest.raises(AudioFileError, match=r"^audio file '[^']*short\.wav' is too short: .* \(1 sample at 16000 Hz\)"):
        AudioLoader().transform(np.array([str(tmp_path / "short.wav")]))
    with pytest.raises(FileNotFoundError, match=r"^audio file '[^']*missing\.wav' does not exist"):
        AudioLoader().transform(np.array([str(tmp_path / "missing.wav")]))


def test_pad_chunk_files_load_in_full(emodb_wavs):
    path = next(p for p in emodb_wavs if p.name == "14a07Aa.wav")
    w = read_audio(path)
    assert len(w) == sf.info(path).frames and np.abs(w).max() > 0.01


def test_stereo_is_mixed_down(tmp_path):
    left, right = tone(440), tone(660)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(tmp_path / "s.wav"), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_bit_depths_decode_to_the_same_signal(tmp_path, subtype):
    x = tone(440)
    sf.write(tmp_path / "x.wav", x, 16000, subtype=subtype)
    np.testing.assert_allclose(read_audio(tmp_path / "x.wav"), x, atol=1e-2 if subtype == "PCM_U8" else 1e-4)


def test_flac_and_ogg(tmp_path):
    x = tone(440)
    sf.write(tmp_path / "x.flac", x, 16000)
    sf.write(tmp_path / "x.ogg", x, 16000)
    np.testing.assert_allclose(read_audio(tmp_path / "x.flac"), x, atol=1e-4)
    assert abs(len(read_audio(tmp_path / "x.ogg")) - len(x)) < 2000


def test_other_rates_are_resampled(tmp_path):
    x44 = tone(440, seconds=1.0, sample_rate=44100)
    sf.write(tmp_path / "x.wav", x44, 44100, subtype="FLOAT")
    y = read_audio(tmp_path / "x.wav", 16000)
    assert len(y) == 16000
    # the tone keeps its pitch: its spectrum peaks at 440 Hz
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert abs(peak_hz - 440) < 2
    np.testing.assert_allclose(y[100:-100], tone(440)[100:-100], atol=2e-3)


def test_an_odd_rate_is_resampled_by_a_near_ratio_of_small_terms(tmp_path, monkeypatch):
    """44101/16000 is irreducible: torchaudio's filter bank for it takes gigabytes. Its nearest
    small-termed ratio gives the same tone, in a few megabytes."""
    import math

    import sersk.io

    calls = []
    resample = sersk.io.AF.resample
    monkeypatch.setattr(sersk.io.AF, "resample", lambda x, orig, new: calls.append((orig, new)) or resample(x, orig, new))
    sf.write(tmp_path / "x.wav", tone(440, seconds=1.0, sample_rate=44101), 44101, subtype="FLOAT")
    y = read_audio(tmp_path / "x.wav", 16000)
    (orig, new), = calls
    assert orig * new // math.gcd(orig, new) ** 2 <= 1_000_000 and abs(orig / new / (44101 / 16000) - 1) < 1e-5
    assert abs(len(y) - 16000) <= 1
    np.testing.assert_allclose(y[100:15900], tone(440)[100:15900], atol=5e-3)  # a 2 ppm drift of phase


@pytest.mark.parametrize("rate", [48000, 44100, 8000, 11025])
def test_a_long_file_is_decoded_and_resampled_in_pieces_with_the_whole_files_samples(rate, tmp_path, monkeypatch):
    """A multi-channel file is read in blocks and a long waveform resampled in pieces (a whole
    10-minute 48 kHz stereo file took 1 GiB): the samples are those of the file decoded at once."""
    import torch

    import sersk.io

    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, (3 * rate + 17, 2)).astype(np.float32)
    sf.write(tmp_path / "x.wav", stereo, rate, subtype="FLOAT")
    ratio = sersk.io._resampling_ratio(rate, 16000)
    whole = sersk.io.AF.resample(torch.from_numpy(stereo.mean(axis=1)), ratio.numerator, ratio.denominator).numpy()
    pieces = []
    resample = sersk.io.AF.resample
    monkeypatch.setattr(sersk.io.AF, "resample", lambda x, orig, new: pieces.append(len(x)) or resample(x, orig, new))
    monkeypatch.setattr(sersk.io, "_DECODE_BLOCK", 1000)
    monkeypatch.setattr(sersk.io, "_RESAMPLE_BLOCK", 5000)
    y = read_audio(tmp_path / "x.wav")
    assert len(pieces) > 2 and max(pieces) < 2 * 5000 < len(stereo)  # pieces of about the block, not the file
    assert y.shape == whole.shape and y.flags.c_contiguous
    np.testing.assert_allclose(y, whole, rtol=0, atol=1e-6)


def test_a_multi_channel_file_cut_short_decodes_what_it_holds(tmp_path, monkeypatch):
    """A cut MP3 still claims its frames: reading it in blocks counted each short block as full,
    returning uninitialised memory or repeated audio as samples."""
    import sersk.io

    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile writes no MP3")
    stereo = np.random.default_rng(0).uniform(-0.5, 0.5, (20000, 2)).astype(np.float32)
    sf.write(tmp_path / "x.mp3", stereo, 16000, format="MP3")
    (tmp_path / "cut.mp3").write_bytes((tmp_path / "x.mp3").read_bytes()[:8000])
    decoded, _ = sf.read(tmp_path / "cut.mp3", dtype="float32")
    assert len(decoded) < 20000 == sf.info(tmp_path / "cut.mp3").frames
    for block in (1000, 1 << 20):
        monkeypatch.setattr(sersk.io, "_DECODE_BLOCK", block)
        np.testing.assert_allclose(read_audio(tmp_path / "cut.mp3"), decoded.mean(axis=1), rtol=0, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
@pytest.mark.parametrize("channels", [1, 2])
def test_a_named_pipe_is_read(channels, tmp_path):
    """A pipe cannot seek: soundfile then needs the number of frames to read, from the header."""
    import threading

    samples = np.random.default_rng(0).uniform(-0.5, 0.5, (1600, channels)).astype(np.float32)
    sf.write(tmp_path / "x.wav", samples, 16000, subtype="FLOAT")
    os.mkfifo(tmp_path / "pipe")
    writer = threading.Thread(target=lambda: (tmp_path / "pipe").write_bytes((tmp_path / "x.wav").read_bytes()))
    writer.start()
    try:
        np.testing.assert_array_equal(read_audio(tmp_path / "pipe"), samples.mean(axis=1, dtype=np.float32))
    finally:
        writer.join(timeout=10)


def test_resampling_in_pieces_has_torchaudios_length_past_float32s_integers(monkeypatch):
    """torchaudio counts its output in float32: past 2**23 samples a float64 count is one more, and
    the last piece, counted by torchaudio, was one short of what was kept from it."""
    import torch

    import sersk.io

    monkeypatch.setattr(sersk.io, "_RESAMPLE_BLOCK", 1800)
    waveform = np.random.default_rng(0).uniform(-0.5, 0.5, 3400).astype(np.float32)
    whole = sersk.io.AF.resample(torch.from_numpy(waveform), 3, 16000).numpy()
    assert len(whole) > 2**23
    pieces = sersk.io._resample(waveform, 3, 16000)  # was: could not broadcast input array
    assert pieces.shape == whole.shape
    np.testing.assert_allclose(pieces, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("stage, error", [
    ("_decode_mono", MemoryError("Unable to allocate 6.44 GiB for an array with shape (1728000000,)")),
    ("_resample", MemoryError("Unable to allocate 6.44 GiB for an array with shape (1728000000,)")),
    ("_resample", RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")),
    ("peak_normalize", MemoryError()),
])
def test_a_file_too_long_for_memory_is_named(stage, error, tmp_path, monkeypatch):
    """numpy's MemoryError and torch's allocator error name no file, and skip_errors skipped neither;
    as an AudioFileError naming the file, it is skipped like any bad file."""
    import sersk.io

    def no_memory(*args):
        raise error

    sf.write(tmp_path / "long.wav", tone(440, sample_rate=8000), 8000)
    monkeypatch.setattr(sersk.io, stage, no_memory)
    reason = r"here \(" + re.escape(str(error)) + r"\)$" if str(error) else "here$"
    with pytest.raises(AudioFileError, match=r"'.*long.wav' is too long to decode in the memory free " + reason):
        AudioLoader().transform([str(tmp_path / "long.wav")])


def test_a_torch_error_that_is_not_memory_stays_itself(tmp_path, monkeypatch):
    import sersk.io

    def broken(*args):
        raise RuntimeError("Expected 3D tensor")

    sf.write(tmp_path / "x.wav", tone(440, sample_rate=8000), 8000)
    monkeypatch.setattr(sersk.io, "_resample", broken)
    with pytest.raises(RuntimeError, match="Expected 3D tensor"):
        read_audio(tmp_path / "x.wav")


def test_read_audio_refuses_a_sample_rate_that_is_not_a_positive_integer(tmp_path):
    sf.write(tmp_path / "x.wav", tone(440), 16000)
    for rate in (0, 22050.5, True):
        with pytest.raises(ValueError, match=rf"sample_rate={rate!r}; expected a positive integer"):
            read_audio(tmp_path / "x.wav", rate)


def test_bytes_paths_are_read_as_paths(tmp_path):
    sf.write(tmp_path / "x.wav", tone(440), 16000, subtype="FLOAT")
    out = AudioLoader(normalize=None).fit_transform([os.fsencode(tmp_path / "x.wav"), np.bytes_(os.fsencode(tmp_path / "x.wav"))])
    np.testing.assert_array_equal(out[0], read_audio(tmp_path / "x.wav"))
    np.testing.assert_array_equal(out[1], out[0])


def test_arrays_pass_through_and_mix_with_paths(tmp_path):
    x = tone(440)
    sf.write(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    out = AudioLoader(normalize=None).fit_transform([x.astype(np.float64), tmp_path / "x.wav", str(tmp_path / "x.wav")])
    assert all(o.dtype == np.float32 for o in out)
    np.testing.assert_array_equal(out[0], x)
    np.testing.assert_array_equal(out[1], out[2])
    (same,) = AudioLoader(normalize=None).fit_transform([x])
    assert not np.shares_memory(same, x)  # a new array, as from a file: changing one leaves the other


def test_parallel_decoding_gives_the_same_result(emodb_sample):
    a = AudioLoader(n_jobs=1).fit_transform(emodb_sample)
    b = AudioLoader(n_jobs=2).fit_transform(emodb_sample)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_clone_round_trips():
    loader = AudioLoader(sample_rate=8000, n_jobs=2)
    assert clone(loader).get_params() == loader.get_params()


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        AudioLoader().fit_transform([tmp_path / "nope.wav"])
    (tmp_path / "link.wav").symlink_to(tmp_path / "gone.wav")
    with pytest.raises(FileNotFoundError, match=r"link\.wav' does not exist \(a broken link to .*gone\.wav'\)"):
        read_audio(tmp_path / "link.wav")


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        (lambda p: p.write_text("this is not audio"), "cannot be decoded"),
    ],
    ids=["directory", "zero-bytes", "text"],
)
def test_bad_files_name_the_file_and_problem(tmp_path, make, problem):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioFileError, match=rf"bad\.wav.*{problem}"):
        AudioLoader().fit_transform([path])


def test_a_truncated_wav_gives_the_samples_it_holds(tmp_path, emodb_wavs):
    data = emodb_wavs[0].read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 2])  # the header still promises the full length
    w = read_audio(path)  # libsndfile reads what is there
    assert 0 < len(w) < sf.info(emodb_wavs[0]).frames


def test_wav_with_no_samples(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioFileError, match="empty.wav.*no samples"):
        read_audio(tmp_path / "empty.wav")


def test_nan_in_file_is_rejected(tmp_path):
    x = tone(440)
    x[10] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="nan.wav.*NaN"):
        read_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize(
    "X, problem",
    [
        ([], "empty"),
        ("a.wav", "single path"),
        (None, "expected a list of audio paths or waveforms, got None"),  # was "iteration over a 0-d array"
        # was "clip 0 has shape (); expected a 1-D mono signal (... mix an array down yourself ...)"
        (np.zeros(4096, np.float32), "got one 1-D array of 4096 values: for a single clip, wrap it in a list"),
        ([np.zeros((2, 100), np.float32)], r"clip 0 has shape \(2, 100\)"),
        ([np.array([0.1, np.inf], np.float32)], "clip 0 contains 1 NaN or infinite"),
        ([np.zeros(5000, np.float32), np.r_[np.zeros(4000), -np.inf, np.nan].astype(np.float32)],
         "clip 1 contains 2 NaN or infinite"),
        ([np.zeros(10, np.int16)], "integer dtype"),
        ([np.zeros(2047, np.float32)], "clip 0 has 2047 samples; at least 2048 are needed"),
        (np.array(None), "got a 0-d array: wrap its element in a list"),  # was "TypeError: len() of unsized object"
    ],
)
def test_bad_arrays_are_named(X, problem):
    with pytest.raises((ValueError, InvalidSignalError), match=problem):
        AudioLoader(min_samples=1 if "2047" not in problem else 2048).fit_transform(X)


@pytest.mark.skipif(os.name == "nt" or sys.platform == "darwin", reason="file names in the locale's encoding (macOS: always UTF-8)")
def test_a_non_ascii_file_name_decodes_in_an_ascii_locale(tmp_path):
    """In an ASCII (or Latin-1) locale Python decodes such a name with surrogate escapes, and
    soundfile, encoding it strictly, could not open it ("a name soundfile cannot pass to libsndfile")."""
    import subprocess

    sf.write(tmp_path / "M\u00e4dchen.wav", tone(440), 16000)
    code = (
        "import os, sys; from sersk import read_audio; from sersk.batch import _duration; "
        f"name = os.path.join({str(tmp_path)!r}, os.listdir({str(tmp_path)!r})[0]); "
        "print(sys.getfilesystemencoding(), len(read_audio(name)), _duration(name) > 0)"
    )
    env = {**os.environ, "PYTHONUTF8": "0", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.split() == ["ascii", str(len(tone(440))), "True"]


def test_a_one_column_table_of_waveforms_is_one_clip_per_row():
    clips = [np.full(4096, 0.1, np.float32), np.full(5000, -0.2, np.float32)]
    column = np.empty((2, 1), dtype=object)  # as a DataFrame's column of clips gives it (df[["clip"]].values)
    column[0, 0], column[1, 0] = clips
    assert [len(x) for x in AudioLoader().fit_transform(column)] == [4096, 5000]
    mels = LogMelTransformer(device="cpu").fit().transform(column)  # was "clip 0 has dtype object"
    assert [m.shape[1] for m in mels] == [5, 6]
    one = np.empty((), dtype=object)
    one[()] = clips[0]
    with pytest.raises(InvalidSignalError, match="got a 0-d array"):  # was "TypeError: len() of unsized object"
        LogMelTransformer(device="cpu").fit().transform(one)


def test_decoding_bar_only_when_verbose_and_on_a_terminal(tmp_path, capsys, monkeypatch):
    sf.write(tmp_path / "x.wav", tone(440), 16000)
    AudioLoader(verbose=True).transform([tmp_path / "x.wav"])  # stderr is not a terminal here
    assert "decoding" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    AudioLoader().transform([tmp_path / "x.wav"])
    assert "decoding" not in capsys.readouterr().err
    AudioLoader(verbose=True).transform([tmp_path / "x.wav"])
    assert "decoding" in capsys.readouterr().err


class _Table:
    """The part of a pandas DataFrame that AudioLoader reads: ``columns`` and ``iloc[:, j]``."""

    def __init__(self, **columns):
        self.columns = list(columns)
        self._data = list(columns.values())
        self.iloc = self

    def __getitem__(self, key):
        return self._data[key[1]]

    def __iter__(self):  # as a DataFrame iterates: its column names
        return iter(self.columns)


def test_a_table_or_a_column_of_paths_reads_the_paths(tmp_path):
    paths = []
    for i in range(2):
        sf.write(tmp_path / f"{i}.wav", tone(440.0 + 100 * i), 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    expected = AudioLoader().transform(paths)
    for X in (_Table(path=paths), np.array(paths)[:, None]):
        assert all(np.array_equal(a, b) for a, b in zip(AudioLoader().transform(X), expected))
    with pytest.raises(ValueError, match=r"table of 2 columns \(path, label\); give the one holding the audio paths"):
        AudioLoader().transform(_Table(path=paths, label=["a", "b"]))


@pytest.mark.skipif(os.name == "nt", reason="POSIX file names are bytes")
def test_a_file_name_in_another_encoding_is_decoded(tmp_path):
    """Such a name (a Latin-1 name on a UTF-8 system) reaches Python with surrogate escapes; it is
    passed to libsndfile as the bytes the system stores (it was "a name soundfile cannot pass")."""
    import soundfile as sf

    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.wav")
    sf.write(os.path.join(tmp_path, "ok.wav"), np.zeros(4000, np.float32), 16000)
    os.rename(os.path.join(tmp_path, "ok.wav"), raw)
    assert len(read_audio(os.fsdecode(raw))) == 4000
