"""Peak memory of training: one step of the longest batch, then one epoch under several frame budgets.

Each configuration runs in a fresh process (glibc's heap state would carry over otherwise).

1. One training step (forward, backward, Adam) on 32 clips of 288 frames, the most the default
   budget lets through, with glibc's default allocator (so that freed memory goes back at once and
   the peak is what the step holds): the peak resident memory over the process's level before the
   step, for the network before the memory rewrites (eager), the fused block without its in-place
   gradient, and today's network.
2. One epoch over 320 log-mel sequences whose lengths are drawn from Emo-DB's longest clips
   (200-277 frames), batches of similar length, printing the peak resident set size of the process
   in GiB (importing torch takes 0.58 GiB of it: results/vmsize_after_import.txt) next to clips/s.

Run: python benchmarks/bench_memory.py
"""

from __future__ import annotations

import contextlib
import resource
import subprocess
import sys
import time
from unittest import mock

import numpy as np

BUDGETS = ["9216", "6144", "4608", "2304"]
STEP_NETWORKS = {
    "eager": "the eager network (the fused block's baseline)",
    "fused-copy": "fused block, input gradient in new memory",
    "fused-kept": "fused block, input gradient in the conv output",
    "fused": "fused block, first conv made in parts and again (today)",
}


def step_peak(network: str) -> None:
    import torch

    import sersk.nn.module
    from sersk.nn import CNNLSTM
    from sersk.nn._eager import EagerCNNLSTM
    from sersk.utils._malloc import _resident_bytes

    torch.manual_seed(0)
    model = (EagerCNNLSTM if network == "eager" else CNNLSTM)()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)

    def step(batch: int, frames: int) -> None:
        x = torch.randn(batch, 128, frames)
        lengths = torch.full((batch,), frames)  # every clip at the longest: one group of 32 x 288 frames
        loss = torch.nn.functional.cross_entropy(model(x, lengths), torch.randint(0, 7, (batch,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    fused = sersk.nn.module.masked_bn_relu_pool
    copy = mock.patch.object(sersk.nn.module, "masked_bn_relu_pool",
                             lambda *args, consume_input, **kwargs: fused(*args, consume_input=False, **kwargs))
    keep = mock.patch.object(sersk.nn.module, "RECOMPUTED_MAX_IN_CHANNELS", 0)  # the first conv's output kept
    with contextlib.ExitStack() as patches:
        if network == "fused-copy":
            patches.enter_context(copy)
        if network in ("fused-copy", "fused-kept"):
            patches.enter_context(keep)
        step(2, 32)  # warm-up: kernels, the optimiser's state
        before = _resident_bytes() / 2**20
        t0 = time.perf_counter()
        step(32, 288)
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"one step, 32 x 288 frames, {STEP_NETWORKS[network]:55s}: {peak - before:5.0f} MiB over the process "
          f"({before:.0f} MiB), {seconds:4.2f} s", flush=True)


def run_one(budget: str, reuse_memory: bool) -> None:
    import sersk.nn.classifier
    from sersk import CNNLSTMClassifier

    from bench_train import emodb_frame_counts

    frames = emodb_frame_counts()
    rng = np.random.default_rng(0)
    lengths = rng.choice(frames[frames >= 200], 320)
    X = np.empty(320, dtype=object)
    for i, n in enumerate(lengths):
        X[i] = rng.normal(-5, 2, size=(128, n)).astype(np.float32)
    y = rng.choice(list("abcdefg"), 320)
    allocator = contextlib.nullcontext() if reuse_memory else mock.patch.object(
        sersk.nn.classifier, "reuse_freed_memory", contextlib.nullcontext
    )
    with allocator:
        clf = CNNLSTMClassifier(max_epochs=1, device="cpu", verbose=0, random_state=0, batch_by_length=True,
                                max_batch_frames=int(budget))
        t0 = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    allocator_name = "freed memory reused" if reuse_memory else "glibc default"
    print(f"max_batch_frames={budget:>5s} ({allocator_name:19s}): peak RSS {peak:5.2f} GiB, {320 / seconds:5.1f} clips/s",
          flush=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "step":
        step_peak(sys.argv[2])
        return
    if len(sys.argv) == 3:
        run_one(sys.argv[1], sys.argv[2] == "reuse")
        return
    for network in STEP_NETWORKS:
        subprocess.run([sys.executable, __file__, "step", network], check=True)
    for budget, allocator in [(b, "reuse") for b in BUDGETS] + [("4608", "default")]:
        subprocess.run([sys.executable, __file__, budget, allocator], check=True)


if __name__ == "__main__":
    main()
