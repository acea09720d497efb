"""signalsmith's `cheaper` preset against its default preset and librosa's phase vocoder.

60 Emo-DB clips (every 9th), each shifted by the same random amount (-2..2 semitones, seed 0) by the
three back ends; prints the mean absolute difference of their log-mels (dB, over the bins within
60 dB of each clip's maximum), of the band profiles, and where a 440 Hz tone lands.

Run: python benchmarks/compare_pitch_presets.py   (SERSK_DATA points at the corpus)
Output: benchmarks/results/compare_pitch_presets.txt
"""

from __future__ import annotations

import librosa
import numpy as np
import python_stretch

from sersk import AudioLoader, LogMelTransformer
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


def tone_peak_hz(semitones: float, cheaper: bool) -> float:
    """Where a shifted 440 Hz tone's spectral peak lands (middle 1.5 s, 8x zero-padded FFT)."""
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    middle = signalsmith_shift(tone, semitones, cheaper)[4000:28000]
    spectrum = np.abs(np.fft.rfft(middle, len(middle) * 8))
    return float(np.fft.rfftfreq(len(middle) * 8, 1 / SAMPLE_RATE)[np.argmax(spectrum)])


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
    for shift in (-2, 1, 2):
        for use_cheaper in (False, True):
            print(f"  {shift:+d} st cheaper={use_cheaper}: {tone_peak_hz(shift, use_cheaper):.1f} Hz "
                  f"(exact {440 * 2 ** (shift / 12):.1f})")


if __name__ == "__main__":
    main()
