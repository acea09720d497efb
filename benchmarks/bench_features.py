"""Log-mel throughput on all of Emo-DB: sersk's LogMelTransformer next to librosa, same settings.

Four rounds, best of 5 each per round, in turns; each round also times sersk on one torch thread,
which shows whether the round fell in one of the machine's slow two-core spells. Then a sweep of
``batch_frames``.

Run: python benchmarks/bench_features.py   (SERSK_DATA points at the corpus; see README)
"""

from __future__ import annotations

import time

import librosa
import numpy as np
import torch

from sersk import AudioLoader, LogMelTransformer
from sersk.datasets import fetch_emodb

from _machine import cpu_line  # benchmarks/_machine.py, beside this script


def librosa_log_mels(waves):
    return [
        np.log(
            librosa.feature.melspectrogram(
                y=w, sr=16000, n_fft=2048, hop_length=512, window="hamming", center=False, power=2.0,
                n_mels=128, fmin=0.0, fmax=8000.0, htk=True, norm="slaney",
            )
            + 2.220446049250313e-16
        )
        for w in waves
    ]


def best_of(fn, repeats=5):
    """Best of ``repeats`` runs, one after the other: the first absorbs what the previous block left
    behind (librosa's BLAS threads spin on after it returns, and slow torch's first run by half)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def on_one_thread(fn):
    """``fn()`` with torch on one thread; the thread count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    paths = fetch_emodb(download_if_missing=False).filenames
    t0 = time.perf_counter()
    waves = AudioLoader().fit_transform(paths)
    load_s = time.perf_counter() - t0
    n = len(waves)
    print(cpu_line())
    print(f"clips: {n}, audio: {sum(map(len, waves)) / 16000:.1f} s, torch threads: {torch.get_num_threads()}")
    print(f"decode (AudioLoader):    {load_s:7.3f} s  {n / load_s:8.1f} clips/s")

    librosa_log_mels(waves[:5])  # warm-up (imports, caches)
    transformer = LogMelTransformer(device="cpu", top_db=None).fit()  # librosa's settings: no floor
    transformer.transform(waves[:5])
    ours, theirs = transformer.transform(waves), librosa_log_mels(waves)
    err = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))
    # sersk and librosa in turns, best of 5 each per round: this machine's speed drifted by a fifth
    # within minutes, so only the two times of one round compare
    # sersk on one thread too: this machine has spells in which its two cores together run at about
    # 1.2x one core instead of 1.7x (benchmarks/two_core_trace.py); the last column shows the spell
    contenders = {
        "sersk": lambda: transformer.transform(waves),
        "librosa": lambda: librosa_log_mels(waves),
        "sersk, 1 thread": lambda: on_one_thread(lambda: transformer.transform(waves)),
    }
    ratios = []
    for turn in range(4):
        names = list(contenders) if turn % 2 == 0 else list(contenders)[::-1]
        best = {name: best_of(contenders[name])[0] for name in names}
        ratios.append(best["librosa"] / best["sersk"])
        print(
            f"round {turn + 1}: log-mel sersk (CPU) {1e3 * best['sersk']:6.1f} ms ({n / best['sersk']:6.0f} clips/s), "
            f"librosa {1e3 * best['librosa']:6.1f} ms ({n / best['librosa']:4.0f} clips/s): {ratios[-1]:5.2f} x"
            f"   (sersk on 1 thread {1e3 * best['sersk, 1 thread']:6.1f} ms: "
            f"{best['sersk, 1 thread'] / best['sersk']:.2f} x slower)"
        )
    print(
        f"speed-up sersk/librosa:  {np.median(ratios):5.2f} x median of 4 rounds ({min(ratios):.2f}-{max(ratios):.2f} x)"
        f"   (max |log-mel difference| {err:.2e})"
    )
    # best of 5 in each of 4 rounds, in ascending and descending order by turns: the order alone
    # moved single runs by a fifth
    default = transformer._batch_frames(torch.device("cpu"))
    sizes = sorted({256, 384, 512, 1024, 2048, default})
    swept = {size: LogMelTransformer(device="cpu", top_db=None, batch_frames=size).fit() for size in sizes}
    rounds: dict[int, list[float]] = {size: [] for size in sizes}
    for turn in range(4):
        for size in sizes if turn % 2 == 0 else sizes[::-1]:
            rounds[size].append(best_of(lambda: swept[size].transform(waves))[0])
    print("sersk by batch_frames (frames per torch call), best of 5 in each of 4 rounds, ms:")
    for size in sizes:
        mark = "  (the CPU default)" if size == default else ""
        times = " ".join(f"{1e3 * t:6.1f}" for t in rounds[size])
        print(f"  {size:5d}: {times}   best {min(rounds[default]) / min(rounds[size]):5.2f} x the default's best{mark}")


if __name__ == "__main__":
    main()
