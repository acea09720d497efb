"""Peak memory and speed of training on long clips, for several frame budgets.

Each configuration runs in a fresh process (glibc's heap state would carry over otherwise): one
epoch over 320 log-mel sequences whose lengths are drawn from Emo-DB's longest clips (200-277
frames), batches of similar length, printing the peak resident set size of the process (torch
alone takes about 0.8 GB of it) next to clips/s.

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
import soundfile as sf

BUDGETS = ["9216", "6144", "4608", "2304"]


def run_one(budget: str, reuse_memory: bool) -> None:
    import sersk.nn.classifier
    from sersk import CNNLSTMClassifier
    from sersk.datasets import fetch_emodb

    frames = np.array([1 + (sf.info(p).frames - 2048) // 512 for p in fetch_emodb(download_if_missing=False).filenames])
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
    print(f"max_batch_frames={budget:>5s} ({allocator_name:19s}): peak RSS {peak:5.2f} GB, {320 / seconds:5.1f} clips/s",
          flush=True)


def main() -> None:
    if len(sys.argv) == 3:
        run_one(sys.argv[1], sys.argv[2] == "reuse")
        return
    for budget, allocator in [(b, "reuse") for b in BUDGETS] + [("4608", "default")]:
        subprocess.run([sys.executable, __file__, budget, allocator], check=True)


if __name__ == "__main__":
    main()
