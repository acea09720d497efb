"""Training speed and peak memory with oneDNN's primitive cache on (its default) and off (sersk's).

oneDNN reads ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` once per process, so each setting runs in fresh
processes, alternated (off, on, off, on, ...) in this one run. Each process measures a float32
matmul, then trains ``CNNLSTMClassifier()`` (the defaults) for one epoch on clips with Emo-DB's
log-mel lengths (``bench_train.py``'s), and prints its clips/s, the matmul rate, and the peak
resident memory of the process from just before the epoch (``VmHWM``, reset there), then the time to
predict all clips.

Run: python benchmarks/primitive_cache.py [--n-clips 1024] [--repeats 2] [--capacities 0 1024]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

MIB = 2**20


def measure(n_clips: int) -> None:
    """One process: matmul, one training epoch, prediction; one printed line."""
    sys.path.insert(0, os.path.dirname(__file__))
    from bench_train import emodb_length_sequences, matmul_rate
    from memory_trace import peak_bytes, reset_peak

    from sersk import CNNLSTMClassifier

    X, y, _ = emodb_length_sequences(n_clips)
    rate = matmul_rate()
    CNNLSTMClassifier(max_epochs=1, device="cpu", verbose=0, random_state=0).fit(X[:32], y[:32])  # warm-up
    reset_peak()
    t0 = time.perf_counter()
    clf = CNNLSTMClassifier(max_epochs=1, device="cpu", verbose=0, random_state=0).fit(X, y)
    seconds = time.perf_counter() - t0
    peak = peak_bytes()
    t0 = time.perf_counter()
    clf.predict_proba(X)
    predict = time.perf_counter() - t0
    print(f"cache capacity {os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY']:>4s}: {n_clips / seconds:6.1f} clips/s "
          f"(matmul {rate / 1e9:5.1f} GFLOP/s), peak RSS {peak / MIB:5.0f} MiB; predict {n_clips / predict:6.1f} clips/s",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-clips", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--capacities", nargs="+", default=["0", "1024"], help="cache capacities, in this order")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.n_clips)
        return
    print(f"one epoch of CNNLSTMClassifier() on {args.n_clips} clips of Emo-DB lengths, fresh process each", flush=True)
    for _ in range(args.repeats):
        for capacity in args.capacities:
            env = {**os.environ, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": capacity}
            subprocess.run([sys.executable, __file__, "--measure", "--n-clips", str(args.n_clips)], env=env, check=True)


if __name__ == "__main__":
    main()
