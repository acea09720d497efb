"""Training throughput and peak GPU memory of CNNLSTMClassifier on CUDA.

The GPU counterpart of ``bench_train.py``: the same Emo-DB-length clips, one epoch per
configuration in this process, after a warm-up fit. The baseline is the plain eager masked network
(``sersk.nn._eager.EagerCNNLSTM``), as in ``bench_train.py``. "useful" FLOPs count real frames
only (training = 3x forward) and are set against a float32 matmul measured in the same process.
sersk trains in float32; one row leaves cuDNN's TF32 rounding on (PyTorch's default) to show what
that would gain.

With ``--profile``, it then prints where the default configuration's training steps spend their
time, by torch operator, on the host (self CPU time) and on the GPU: what a faster step must cut.

Run: python benchmarks/bench_train_gpu.py [--n-clips 4096] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from unittest import mock

import torch
from bench_train import emodb_length_sequences, forward_flops, prediction_times

import sersk.nn.classifier
from sersk import CNNLSTM, CNNLSTMClassifier
from sersk.nn._eager import EagerCNNLSTM
from sersk.utils._device import float32_cudnn

@contextlib.contextmanager
def tf32_cudnn(*, deterministic: bool) -> Iterator[None]:
    """sersk's CUDA settings, but with cuDNN's TF32 rounding left on (PyTorch's default)."""
    with float32_cudnn(deterministic=deterministic):
        torch.backends.cudnn.allow_tf32 = True
        yield


CONFIGS = [
    # name, module, random_state (None: cuDNN may pick non-deterministic kernels), batch_by_length, TF32
    ("baseline: eager network, seeded", EagerCNNLSTM, 0, False, False),
    ("fused network, seeded (default)", CNNLSTM, 0, False, False),
    ("fused network, unseeded", CNNLSTM, None, False, False),
    ("fused network, seeded, TF32 convolutions", CNNLSTM, 0, False, True),
    ("fused + batch_by_length=True, seeded", CNNLSTM, 0, True, False),
]


def matmul_rate(n: int = 8192, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
    a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return repeats * 2 * n**3 / (time.perf_counter() - t0)


def train_once(X, y, module, random_state, by_length: bool, tf32: bool = False, padding: str = "masked"):
    clf = CNNLSTMClassifier(module=module, padding=padding, batch_by_length=by_length, max_epochs=1,
                            device="cuda", verbose=0, random_state=random_state)
    settings = mock.patch.object(sersk.nn.classifier, "float32_cudnn", tf32_cudnn) if tf32 else contextlib.nullcontext()
    with settings:
        clf.fit(X[:256], y[:256])  # warm-up: CUDA context, cuDNN plans
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        clf.fit(X, y)
        torch.cuda.synchronize()
    return clf, time.perf_counter() - t0, torch.cuda.max_memory_allocated()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-clips", type=int, default=4096)
    parser.add_argument("--profile", action="store_true", help="also profile the default's training steps")
    args = parser.parse_args()
    X, y, lengths = emodb_length_sequences(args.n_clips)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; {args.n_clips} clips, "
          f"mean {lengths.mean():.1f} frames (Emo-DB lengths), batches of 32")
    rate = matmul_rate()
    print(f"float32 matmul (8192^3): {rate / 1e12:.1f} TFLOP/s")
    net = CNNLSTM()
    useful = 3 * sum(forward_flops(n, net) for n in lengths)
    rows = []
    for name, module, random_state, by_length, tf32 in CONFIGS:
        _, seconds, peak = train_once(X, y, module, random_state, by_length, tf32)
        rows.append((name, seconds, peak))
        print(f"  measured: {name}", flush=True)
    _, seconds, peak = train_once(X, y, CNNLSTM, 0, False, padding="reference")
    rows.append(("padding='reference' (unmasked; for comparison)", seconds, peak))
    print()
    print(f"{'training, one epoch, padding=masked':48s} {'clips/s':>8s} {'speed-up':>8s} {'useful/matmul':>14s} "
          f"{'peak GPU mem':>12s}")
    base = rows[0][1]
    for name, seconds, peak in rows:
        print(f"{name:48s} {args.n_clips / seconds:8.0f} {base / seconds:7.2f}x {useful / seconds / rate:14.1%} "
              f"{peak / 2**20:8.0f} MiB")
    print()
    clf, _, _ = train_once(X[:512], y[:512], CNNLSTM, 0, False)
    print(prediction_times(clf, X, lengths))
    if args.profile:
        profile_training(X[:1024], y[:1024])


def profile_training(X, y) -> None:
    """The default configuration's epoch over ``X`` under torch.profiler: the top operators."""
    from torch.profiler import ProfilerActivity, profile

    clf = CNNLSTMClassifier(max_epochs=1, device="cuda", verbose=0, random_state=0)
    clf.fit(X[:256], y[:256])  # warm-up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        clf.fit(X, y)
        torch.cuda.synchronize()
    steps = -(-len(X) // 32)
    print(f"\nprofile of one epoch, {len(X)} clips ({steps} steps): top operators by host time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    print("top operators by GPU time")
    print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=15))


if __name__ == "__main__":
    main()
