"""Resident memory over the training steps, for several heap-trim intervals (one process each).

One epoch over 2,400 log-mel sequences with Emo-DB's lengths, fully shuffled batches of 32, freed
memory kept for reuse (sersk's CPU default); the heap is trimmed every N steps (N = 10 is sersk's
``TRIM_EVERY_STEPS``; a large N means never within the run). Prints the process's resident memory
every 15 steps and clips/s.

Run: python benchmarks/bench_heap_trim.py [N ...]   (default: 10 40 100000)
"""

from __future__ import annotations

import subprocess
import sys
import time
from unittest import mock

import numpy as np
import psutil
import soundfile as sf
from skorch.callbacks import Callback


class PrintRSS(Callback):
    def initialize(self):
        self.steps = 0
        return self

    def on_batch_end(self, net, **kwargs):
        self.steps += 1
        if self.steps % 15 == 0:
            print(f"  step {self.steps:3d}: RSS {psutil.Process().memory_info().rss / 1e9:.2f} GB", flush=True)


def run_one(trim_every: int) -> None:
    from sersk import CNNLSTMClassifier
    from sersk.datasets import fetch_emodb
    from sersk.utils import _malloc

    frames = np.array([1 + (sf.info(p).frames - 2048) // 512 for p in fetch_emodb(download_if_missing=False).filenames])
    rng = np.random.default_rng(0)
    lengths = rng.choice(frames, 2400)
    X = np.empty(len(lengths), dtype=object)
    for i, n in enumerate(lengths):
        X[i] = rng.normal(-5, 2, size=(128, n)).astype(np.float32)
    y = rng.choice(list("abcdefg"), len(X))
    print(f"trim every {trim_every} steps", flush=True)
    with mock.patch.object(_malloc, "TRIM_EVERY_STEPS", trim_every):
        t0 = time.perf_counter()
        CNNLSTMClassifier(max_epochs=1, device="cpu", verbose=0, random_state=0, callbacks=[("rss", PrintRSS())]).fit(X, y)
    print(f"  {len(X) / (time.perf_counter() - t0):.1f} clips/s", flush=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        run_one(int(sys.argv[2]))
        return
    for n in sys.argv[1:] or ["10", "40", "100000"]:
        subprocess.run([sys.executable, __file__, "--one", n], check=True)


if __name__ == "__main__":
    main()
