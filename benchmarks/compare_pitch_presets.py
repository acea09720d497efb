"""signalsmith's `cheaper` preset against its default preset and librosa's phase vocoder.

60 Emo-DB clips (every 9th), each shifted by the same random amount (-2..2 semitones, seed 0) by the
three back ends; prints the mean absolute difference of their log-mels (dB, over the bins within
60 dB of each clip's maximum), of the band profiles, where a 440 Hz tone lands and how far each
shifted clip's energy envelope lags the clip's. Then times each
shifter on those clips, one thread, by turns (median of 5 rounds, ms per clip): audiomentations'
``PitchShift`` as it ships (a new signalsmith processor per clip; its phase vocoder), sersk's
(one processor reused, default and ``cheaper`` presets), and the whole augmentation chain per copy
(half the copies pitch-shifted, as the recipe) with the log-mel of a copy.

Run: python benchmarks/compare_pitch_presets.py   (SERSK_DATA points at the corpus)
Output: benchmarks/results/compare_pitch_presets.txt
"""

from __future__ import annotations

import random
import time

import librosa
import numpy as np
import python_stretch
from audiomentations import PitchShift
from threadpoolctl import threadpool_limits

from sersk import AudioLoader, AugmentingResampler, LogMelTransformer
from sersk.augment import _PitchShift
from sersk.datasets import fetch_emodb

SAMPLE_RATE = 16000
LOUD_DB = 60  # the bins compared: within this many dB of each clip's maximum


def signalsmith_shift(wave: np.ndarray, semitones: float, cheaper: bool) -> np.ndarray:
    stretch = python_stretch.Signalsmith.Stretch()
    stretch.preset(1, SAMPLE_RATE, cheaper)
    stretch.setTransposeSemitones(semitones)
    return stretch.process(wave[None])[0]


def phase_vocoder_shift(wave: np.ndarray, semitones: float) -> np.ndarray:
    shifted = librosa.effects.pitch_shift(wave, sr=SAMPLE_RATE, n_steps=semitones, res_type="soxr_hq")
    return shifted.astype(np.float32)


def log_mels_db(waves: list[np.ndarray]) -> list[np.ndarray]:
    features = LogMelTransformer(device="cpu", top_db=None).fit().transform(waves)
    return [10 / np.log(10) * feature for feature in features]


def mean_loud_difference(these: list[np.ndarray], those: list[np.ndarray]) -> float:
    """Mean |dB difference| over the loud bins of ``these``, clip by clip, on their common frames."""
    differences = []
    for a, b in zip(these, those):
        frames = min(a.shape[1], b.shape[1])
        a, b = a[:, :frames], b[:, :frames]
        loud = a > a.max() - LOUD_DB
        differences.append(np.abs(a - b)[loud].mean())
    return float(np.mean(differences))


def band_profiles(features: list[np.ndarray]) -> np.ndarray:
    return np.stack([feature.mean(axis=1) for feature in features])


def tone_peak_hz(semitones: float, shift) -> float:
    """Where a 440 Hz tone shifted by ``shift(wave, semitones)`` peaks (middle 1.5 s, 8x zero-padded FFT)."""
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    middle = shift(tone, semitones)[4000:28000]
    spectrum = np.abs(np.fft.rfft(middle, len(middle) * 8))
    return float(np.fft.rfftfreq(len(middle) * 8, 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def envelope_lag(original: np.ndarray, shifted: np.ndarray, most: int = 1000) -> int:
    """Samples by which ``shifted``'s energy envelope (10 ms moving mean of the squares) lags the
    original's, where their cross-correlation peaks within +-``most``."""
    window = np.ones(SAMPLE_RATE // 100) / (SAMPLE_RATE // 100)
    a, b = (np.convolve(np.square(x[: len(original)]), window, mode="same") for x in (original, shifted))
    a, b = a - a.mean(), b - b.mean()
    lags = np.arange(-most, most + 1)
    return int(lags[np.argmax([np.dot(a[max(0, -k): len(a) - max(0, k)], b[max(0, k): len(b) - max(0, -k)]) for k in lags])])


def ms_per_clip(shift, waves: list[np.ndarray]) -> float:
    """Milliseconds per clip of ``shift(wave)`` over ``waves``."""
    start = time.perf_counter()
    for wave in waves:
        shift(wave)
    return 1000 * (time.perf_counter() - start) / len(waves)


def shifters() -> dict:
    """Each back end, shifting by a draw in -2..2 semitones (p=1)."""
    def made(transform):
        return lambda wave: transform(samples=wave, sample_rate=SAMPLE_RATE)

    return {
        "audiomentations signalsmith (a new processor per clip)": made(PitchShift(-2, 2, method="signalsmith_stretch", p=1)),
        "audiomentations phase vocoder": made(PitchShift(-2, 2, method="librosa_phase_vocoder", p=1)),
        "sersk signalsmith, default preset, reused": made(_PitchShift(-2, 2, method="signalsmith_stretch", p=1)),
        "sersk signalsmith, cheaper preset, reused (default)": made(
            _PitchShift(-2, 2, method="signalsmith_stretch_cheaper", p=1)
        ),
    }


def print_timings(waves: list[np.ndarray], rounds: int = 5) -> None:
    """Each shifter's median ms per clip over ``rounds`` rounds taken by turns; then the recipe's chain
    (AugmentingResampler, one job) per copy and the log-mel per copy."""
    random.seed(0)
    timings: dict[str, list[float]] = {name: [] for name in shifters()}
    chain, log_mel = [], []
    with threadpool_limits(1):
        for name, shift in shifters().items():  # a first pass: caches and processors warm
            shift(waves[0])
        for _ in range(rounds):
            for name, shift in shifters().items():
                timings[name].append(ms_per_clip(shift, waves))
            start = time.perf_counter()
            copies = AugmentingResampler(n_augmentations=4, n_jobs=1, random_state=0).fit_resample(waves, ["x"] * len(waves))[0]
            copies = [np.asarray(copy) for copy in copies]
            chain.append(1000 * (time.perf_counter() - start) / len(copies))
            start = time.perf_counter()
            LogMelTransformer(device="cpu").fit().transform(copies)
            log_mel.append(1000 * (time.perf_counter() - start) / len(copies))
    print(f"pitch shifting, one thread, {len(waves)} clips (mean {np.mean([len(w) for w in waves]) / SAMPLE_RATE:.2f} s), "
          f"median of {rounds} rounds by turns, ms per clip:")
    for name, values in timings.items():
        print(f"  {name:55s} {np.median(values):6.2f}  (rounds {min(values):.2f}-{max(values):.2f})")
    print(f"  the recipe's chain per copy (half pitch-shifted)          {np.median(chain):6.2f}  "
          f"(rounds {min(chain):.2f}-{max(chain):.2f})")
    print(f"  the log-mel of a copy                                     {np.median(log_mel):6.2f}  "
          f"(rounds {min(log_mel):.2f}-{max(log_mel):.2f})")


def main() -> None:
    waves = AudioLoader().fit_transform(fetch_emodb(download_if_missing=False).filenames[::9])
    semitones = np.random.default_rng(0).uniform(-2, 2, len(waves))
    default = log_mels_db([signalsmith_shift(w, s, cheaper=False) for w, s in zip(waves, semitones)])
    cheaper = log_mels_db([signalsmith_shift(w, s, cheaper=True) for w, s in zip(waves, semitones)])
    vocoder = log_mels_db([phase_vocoder_shift(w, s) for w, s in zip(waves, semitones)])
    original = log_mels_db(list(waves))
    print(
        f"{len(waves)} clips; mean |dB diff| on loud bins: cheaper vs default {mean_loud_difference(default, cheaper):.2f}; "
        f"phase vocoder vs default {mean_loud_difference(default, vocoder):.2f}; "
        f"original vs default {mean_loud_difference(default, original):.2f}"
    )
    profile = band_profiles(default)
    print(
        "mean band-profile |diff| dB: cheaper", np.abs(profile - band_profiles(cheaper)).mean().round(3),
        "pv", np.abs(profile - band_profiles(vocoder)).mean().round(3),
    )
    back_ends = {
        "cheaper=False": lambda wave, st: signalsmith_shift(wave, st, cheaper=False),
        "cheaper=True": lambda wave, st: signalsmith_shift(wave, st, cheaper=True),
        "phase vocoder": phase_vocoder_shift,
    }
    for shift in (-2, 1, 2):
        for name, back_end in back_ends.items():
            print(f"  {shift:+d} st {name}: {tone_peak_hz(shift, back_end):.1f} Hz (exact {440 * 2 ** (shift / 12):.1f})")
    for name, back_end in back_ends.items():
        lags = [abs(envelope_lag(w, back_end(w, s))) for w, s in zip(waves, semitones)]
        print(f"  energy-envelope lag behind the clip, {name}: {min(lags)}-{max(lags)} samples (median {np.median(lags):g})")
    print_timings(list(waves))


if __name__ == "__main__":
    main()
