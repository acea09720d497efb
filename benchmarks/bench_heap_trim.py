"""Resident memory and speed of training under several heap-trim rules (one process each).

One epoch over 2,400 log-mel sequences with Emo-DB's lengths, fully shuffled batches of 32, freed
memory kept for reuse (sersk's CPU default). The rules: ``grow:N``, trim once the process has
grown by N MiB over its level after the first step since the last trim (sersk's rule,
``TRIM_GROWTH_BYTES`` = 1024 MiB); ``every:N``, trim every N steps (sersk's rule before, N = 10);
``never``. Prints the resident memory every 15 steps, its peak (sampled every 20 ms), the number
of trims within the fit and clips/s.

Run: python benchmarks/bench_heap_trim.py [RULE ...]   (default: grow:1024 every:10 never)
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from unittest import mock

import numpy as np
import psutil
from skorch.callbacks import Callback

RULES = ["grow:1024", "every:10", "never"]


class PrintRSS(Callback):
    def initialize(self):
        self.steps = 0
        return self

    def on_batch_end(self, net, **kwargs):
        self.steps += 1
        if self.steps % 15 == 0:
            print(f"  step {self.steps:3d}: RSS {psutil.Process().memory_info().rss / 1e9:.2f} GB", flush=True)


def run_one(rule: str) -> None:
    from sersk import CNNLSTMClassifier
    from sersk.utils import _malloc

    from bench_train import emodb_frame_counts

    frames = emodb_frame_counts()
    rng = np.random.default_rng(0)
    lengths = rng.choice(frames, 2400)
    X = np.empty(len(lengths), dtype=object)
    for i, n in enumerate(lengths):
        X[i] = rng.normal(-5, 2, size=(128, n)).astype(np.float32)
    y = rng.choice(list("abcdefg"), len(X))

    libc, trims, steps, peak = _malloc._LIBC, [0], [0], [0]

    class CountingLibc:  # glibc, counting the trims made within the fit
        mallopt = staticmethod(libc.mallopt)

        @staticmethod
        def malloc_trim(pad):
            trims[0] += _malloc._depth > 0
            return libc.malloc_trim(pad)

    def every_n_steps(n: int):
        def step_done():
            if _malloc._depth:
                steps[0] += 1
                if steps[0] % n == 0:
                    CountingLibc.malloc_trim(0)
        return step_done

    kind, _, value = rule.partition(":")
    patches = [mock.patch.object(_malloc, "_LIBC", CountingLibc)]
    if kind == "grow":
        patches.append(mock.patch.object(_malloc, "TRIM_GROWTH_BYTES", int(value) << 20))
    elif kind == "every":
        patches.append(mock.patch("sersk.nn.classifier.step_done", every_n_steps(int(value))))
    else:
        patches.append(mock.patch.object(_malloc, "TRIM_GROWTH_BYTES", 1 << 50))

    def sample():
        me = psutil.Process()
        while True:
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    print(f"rule {rule}", flush=True)
    for p in patches:
        p.start()
    t0 = time.perf_counter()
    CNNLSTMClassifier(max_epochs=1, device="cpu", verbose=0, random_state=0, train_split=None,
                      callbacks=[("rss", PrintRSS())]).fit(X, y)
    speed = len(X) / (time.perf_counter() - t0)
    print(f"  {rule}: peak RSS {peak[0] / 1e9:.2f} GB, {trims[0]} trims, {speed:.1f} clips/s", flush=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        run_one(sys.argv[2])
        return
    for rule in sys.argv[1:] or RULES:
        subprocess.run([sys.executable, __file__, "--one", rule], check=True)


if __name__ == "__main__":
    main()
