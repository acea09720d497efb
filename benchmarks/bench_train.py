"""Training throughput and inference latency of CNNLSTMClassifier on the CPU.

Sequences have Emo-DB's log-mel lengths (drawn from the real corpus's frame counts, ~87 on
average). Prints clips/s for shuffled batches of 32 in both padding modes, single-clip and batch
inference latency, and the rate of useful FLOPs (real frames only, training = 3x forward) as a
fraction of a large float32 matmul's rate measured in the same run.

Run: python benchmarks/bench_train.py [--n-clips 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import soundfile as sf
import torch

from sersk import CNNLSTM, CNNLSTMClassifier
from sersk.datasets import fetch_emodb


def forward_flops(n_frames: int, net: CNNLSTM, n_mels: int = 128) -> float:
    """Multiply-adds x 2 of one clip's forward pass over its real frames."""
    flops, f, t, c_in = 0.0, n_mels, n_frames, 1
    for block in net.blocks:
        c_out = block.conv.out_channels
        flops += 2 * f * t * c_out * c_in * 9
        kf, kt = block.pool.kernel_size
        f, t, c_in = f // kf, t // kt, c_out
    hidden = net.lstm.hidden_size
    flops += 2 * t * 4 * hidden * (net.lstm.input_size + hidden) + 2 * hidden * net.fc.out_features
    return flops


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return repeats * 2 * n**3 / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-clips", type=int, default=256)
    args = parser.parse_args()
    frames = np.array([1 + (sf.info(p).frames - 2048) // 512 for p in fetch_emodb(download_if_missing=False).filenames])
    rng = np.random.default_rng(0)
    lengths = rng.choice(frames, args.n_clips)
    X = np.empty(args.n_clips, dtype=object)
    for i, n in enumerate(lengths):
        X[i] = rng.normal(-5, 2, size=(128, n)).astype(np.float32)
    y = rng.choice(list("abcdefg"), args.n_clips)
    print(f"torch threads {torch.get_num_threads()}; {args.n_clips} clips, mean {lengths.mean():.1f} frames")
    peak = matmul_rate()
    print(f"float32 matmul (2048^3):               {peak / 1e9:7.1f} GFLOP/s")
    useful = 3 * sum(forward_flops(n, CNNLSTM()) for n in lengths)
    for padding, by_length in (("reference", False), ("masked", False), ("masked", True)):
        clf = CNNLSTMClassifier(
            padding=padding, batch_by_length=by_length, max_epochs=1, device="cpu", verbose=0, random_state=0
        )
        batches = "by length" if by_length else "shuffled "
        clf.fit(X[:32], y[:32])  # warm-up
        t0 = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t0
        rate = useful / seconds
        print(
            f"train, padding={padding:9s} {batches}: {args.n_clips / seconds:7.1f} clips/s  "
            f"useful {rate / 1e9:5.1f} GFLOP/s = {rate / peak:5.1%} of matmul"
        )
        one = X[int(np.argmin(np.abs(lengths - 87)))][None]
        clf.predict_proba(one)
        t0 = time.perf_counter()
        for _ in range(20):
            clf.predict_proba(one)
        single = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        clf.predict_proba(X)
        batch = time.perf_counter() - t0
        print(
            f"predict, padding={padding:9s}:        single clip {single * 1e3:6.1f} ms; "
            f"{args.n_clips} clips in batches of 32 {batch:5.2f} s ({args.n_clips / batch:6.1f} clips/s)"
        )


if __name__ == "__main__":
    main()
