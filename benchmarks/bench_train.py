"""Training throughput, peak memory and inference latency of CNNLSTMClassifier on the CPU.

Sequences have Emo-DB's log-mel lengths (drawn from the real corpus's frame counts). Every
configuration trains one epoch on the same clips in this process, next to a float32 matmul
measured before and after them, through torch's BLAS and as a oneDNN 1x1 conv (the convs' library,
1.5-2x as fast on an AMD EPYC); "useful" FLOPs count real frames only (training = 3x forward).

The baseline is sersk as shipped before the fused block (commit 9c6cb66): the plain eager masked
network (``sersk.nn._eager.EagerCNNLSTM``, the same parameters and mathematics) with glibc's
default allocator behaviour. The rows in between separate the changes; "first conv output kept" is
the default network before its first conv was made in parts and again in the backward pass, and
"one group per batch" before masked batches ran as groups of clips of similar length.

Run: python benchmarks/bench_train.py [--n-clips 256]
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from unittest import mock

import numpy as np
import psutil
import soundfile as sf
import torch

import sersk.nn.classifier
import sersk.nn.module
from sersk import CNNLSTM, CNNLSTMClassifier
from sersk.datasets import fetch_emodb
from sersk.nn._eager import EagerCNNLSTM

from _machine import cpu_line  # benchmarks/_machine.py, beside this script


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


def emodb_frame_counts() -> np.ndarray:
    """The recipe's log-mel frame count of each Emo-DB clip (2048-sample frames, hop 512)."""
    return np.array([1 + (sf.info(p).frames - 2048) // 512 for p in fetch_emodb(download_if_missing=False).filenames])


def emodb_length_sequences(n_clips: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random log-mel-like sequences with Emo-DB's frame counts: X (object array), labels, lengths."""
    frames = emodb_frame_counts()
    rng = np.random.default_rng(seed)
    lengths = rng.choice(frames, n_clips)
    X = np.empty(n_clips, dtype=object)
    for i, n in enumerate(lengths):
        X[i] = rng.normal(-5, 2, size=(128, n)).astype(np.float32)
    return X, rng.choice(list("abcdefg"), n_clips), lengths


def prediction_times(clf: CNNLSTMClassifier, X: np.ndarray, lengths: np.ndarray) -> str:
    """Latency of one ~87-frame clip (mean of 20) and the time of all of X, as one printable line."""
    one = X[int(np.argmin(np.abs(lengths - 87)))][None]
    clf.predict_proba(one)
    t0 = time.perf_counter()
    for _ in range(20):
        clf.predict_proba(one)
    single = (time.perf_counter() - t0) / 20
    t0 = time.perf_counter()
    clf.predict_proba(X)
    batch = time.perf_counter() - t0
    return (f"predict (masked): single ~87-frame clip {single * 1e3:.1f} ms; {len(X)} clips in batches "
            f"of 32 {batch:.2f} s ({len(X) / batch:.1f} clips/s)")


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of torch's float32 ``n``^3 matmul (BLAS: MKL in torch's x86 wheels)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return _rate(lambda: a @ b, 2 * n**3, repeats)


def onednn_gemm_rate(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of the same product as a 1x1 convolution, which oneDNN runs (as it runs the network's convs).

    On an AMD EPYC it ran 1.5-2x as fast as torch's matmul: the matmul alone understates what the
    machine's float32 units do there.
    """
    x, w = torch.randn(1, n, 1, n), torch.randn(n, n, 1, 1)
    return _rate(lambda: torch.nn.functional.conv2d(x, w), 2 * n**3, repeats)


def _rate(product, flops: float, repeats: int) -> float:
    product()
    t0 = time.perf_counter()
    for _ in range(repeats):
        product()
    return repeats * flops / (time.perf_counter() - t0)


class PeakRSS:
    """The highest resident set size seen while the block runs (sampled every 5 ms)."""

    def __enter__(self) -> "PeakRSS":
        self.peak, self._stop = 0, threading.Event()
        process = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, process.memory_info().rss)
                time.sleep(0.005)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class OneGroup(CNNLSTM):
    """The default network as it was before masked batches ran in groups of similar length."""

    def forward(self, x, lengths=None):
        with mock.patch.object(sersk.nn.module, "GROUP_COST_FRAMES", 10**9):
            return super().forward(x, lengths)


class FirstConvKept(OneGroup):
    """The default network as it was before the first block's conv was recomputed: its output kept."""

    def forward(self, x, lengths=None):
        with mock.patch.object(sersk.nn.module, "RECOMPUTED_MAX_IN_CHANNELS", 0):
            return super().forward(x, lengths)


# Configurations without the allocator setting run first: glibc's state after the setting was
# used and set back is not that of a fresh process.
CONFIGS = [
    # name, module, CPU allocator setting, batch_by_length
    ("baseline: eager, default allocator (as shipped)", EagerCNNLSTM, False, False),
    ("fused block, default allocator", CNNLSTM, False, False),
    ("eager + freed memory reused", EagerCNNLSTM, True, False),
    ("fused + freed memory, first conv output kept", FirstConvKept, True, False),
    ("fused + freed memory reused, one group per batch", OneGroup, True, False),
    ("+ groups of similar length (new default)", CNNLSTM, True, False),
    ("new default + batch_by_length=True", CNNLSTM, True, True),
]


def train_once(X, y, module, reuse_memory: bool, by_length: bool, padding: str = "masked"):
    clf = CNNLSTMClassifier(
        module=module, padding=padding, batch_by_length=by_length, max_epochs=1, device="cpu", verbose=0,
        random_state=0,
    )
    allocator = contextlib.nullcontext() if reuse_memory else mock.patch.object(
        sersk.nn.classifier, "reuse_freed_memory", contextlib.nullcontext
    )
    with allocator:
        clf.fit(X[:32], y[:32])  # warm-up
        with PeakRSS() as rss:
            t0 = time.perf_counter()
            clf.fit(X, y)
            seconds = time.perf_counter() - t0
    return clf, seconds, rss.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-clips", type=int, default=256)
    args = parser.parse_args()
    X, y, lengths = emodb_length_sequences(args.n_clips)
    print(cpu_line())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.n_clips} clips, "
          f"mean {lengths.mean():.1f} frames (Emo-DB lengths)")
    before, gemm_before = matmul_rate(), onednn_gemm_rate()
    print(f"float32 matmul (2048^3), before: {before / 1e9:7.1f} GFLOP/s; as a oneDNN 1x1 conv "
          f"{gemm_before / 1e9:7.1f} GFLOP/s")
    useful = 3 * sum(forward_flops(n, CNNLSTM()) for n in lengths)
    results = []
    for name, module, reuse_memory, by_length in CONFIGS:
        _, seconds, peak = train_once(X, y, module, reuse_memory, by_length)
        results.append((name, seconds, peak))
        print(f"  measured: {name}")
    _, ref_seconds, ref_peak = train_once(X, y, CNNLSTM, True, False, padding="reference")
    after, gemm_after = matmul_rate(), onednn_gemm_rate()
    rate, gemm = (before + after) / 2, (gemm_before + gemm_after) / 2
    print(f"float32 matmul (2048^3), after:  {after / 1e9:7.1f} GFLOP/s; as a oneDNN 1x1 conv "
          f"{gemm_after / 1e9:7.1f} GFLOP/s; means {rate / 1e9:.1f} and {gemm / 1e9:.1f}")
    print()
    print(f"{'training, one epoch, padding=masked':50s} {'clips/s':>8s} {'speed-up':>8s} {'useful/matmul':>14s} "
          f"{'useful/oneDNN':>14s} {'peak RSS':>9s}")
    base = results[0][1]
    for name, seconds, peak in results + [("padding='reference' (unmasked; for comparison)", ref_seconds, ref_peak)]:
        print(f"{name:50s} {args.n_clips / seconds:8.1f} {base / seconds:7.2f}x {useful / seconds / rate:14.1%} "
              f"{useful / seconds / gemm:14.1%} {peak / 2**20:6.0f} MiB")
    print()
    for name, module in (("one group per batch", OneGroup), ("new default", CNNLSTM)):
        clf, _, _ = train_once(X[:64], y[:64], module, True, False)
        print(f"{name}: {prediction_times(clf, X, lengths)}")


if __name__ == "__main__":
    main()
