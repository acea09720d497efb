"""signalsmith's `cheaper` preset against its default preset and librosa's phase vocoder.

60 Emo-DB clips (every 9th), each shifted by the same random amount (-2..2 semitones, seed 0) by the
three back ends; prints the mean absolute difference of their log-mels (dB, over the bins within
60 dB of each clip's maximum), of the band profiles, and where a 440 Hz tone lands.

Run: python benchmarks/compare_pitch_presets.py   (SERSK_DATA points at the corpus)
"""
import numpy as np, python_stretch as ps, librosa, torch
from sersk import AudioLoader, LogMelTransformer
from sersk.datasets import fetch_emodb
e = fetch_emodb(download_if_missing=False); W = AudioLoader().fit_transform(e.filenames[::9])
rng = np.random.default_rng(0); semis = rng.uniform(-2, 2, len(W))
def sig(x, s, cheaper):
    st = ps.Signalsmith.Stretch(); st.preset(1, 16000, cheaper); st.setTransposeSemitones(s); return st.process(x[None])[0]
lm = LogMelTransformer(device="cpu", top_db=None).fit()
db = lambda xs: [10 / np.log(10) * f for f in lm.transform(xs)]
A = db([sig(x, s, False) for x, s in zip(W, semis)])
B = db([sig(x, s, True) for x, s in zip(W, semis)])
C = db([librosa.effects.pitch_shift(x, sr=16000, n_steps=s, res_type="soxr_hq").astype(np.float32) for x, s in zip(W, semis)])
O = db(list(W))
def mad(P, Q):  # mean abs dB difference over the loud part (within 60 dB of each clip's max)
    out = []
    for p, q in zip(P, Q):
        n = min(p.shape[1], q.shape[1]); p, q = p[:, :n], q[:, :n]; m = p > p.max() - 60
        out.append(np.abs(p - q)[m].mean())
    return np.mean(out)
print(f"{len(W)} clips; mean |dB diff| on loud bins: cheaper vs default {mad(A, B):.2f}; phase vocoder vs default {mad(A, C):.2f}; original vs default {mad(A, O):.2f}")
# band energy profile (mean over time) correlation
def prof(P): return np.stack([p.mean(1) for p in P])
print("mean band-profile |diff| dB: cheaper", np.abs(prof(A) - prof(B)).mean().round(3), "pv", np.abs(prof(A) - prof(C)).mean().round(3))
t = np.arange(32000) / 16000; tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
for s in (-2, 1, 2):
    for ch in (False, True):
        y = sig(tone, s, ch)[4000:28000]; f = np.fft.rfftfreq(len(y) * 8, 1 / 16000)[np.argmax(np.abs(np.fft.rfft(y, len(y) * 8)))]
        print(f"  {s:+d} st cheaper={ch}: {f:.1f} Hz (exact {440 * 2 ** (s / 12):.1f})")
