"""Log-mels of all of Emo-DB, timed again and again: on both cores, and on one thread pinned to each core.

Shows whether a slow spell of the machine is sersk's or the cores': a spell that slows the
two-thread run but neither single-core one is the two cores running together slower (as when a
host puts both virtual CPUs on one physical core), not the code. Each line is the best of 3 runs of
each kind, one after the other.

Run: python benchmarks/two_core_trace.py [SECONDS]   (default 150; SERSK_DATA points at the corpus)
"""

from __future__ import annotations

import os
import sys
import time

import torch

from sersk import AudioLoader, LogMelTransformer
from sersk.datasets import fetch_emodb

from _machine import cpu_line  # benchmarks/_machine.py, beside this script


def best_ms(transformer: LogMelTransformer, waves: list, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        transformer.transform(waves)
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 150.0
    waves = list(AudioLoader().fit_transform(fetch_emodb(download_if_missing=False).filenames))
    transformer = LogMelTransformer(device="cpu", top_db=None).fit()
    cores, threads = os.sched_getaffinity(0), torch.get_num_threads()
    first, second = sorted(cores)[:2]
    print(cpu_line())
    print(f"best of 3 transforms of {len(waves)} clips, ms: {threads} threads on cores {sorted(cores)}, then 1 thread on core {first}, then on core {second}")
    start = time.time()
    try:
        while time.time() - start < seconds:
            both = best_ms(transformer, waves)
            torch.set_num_threads(1)
            os.sched_setaffinity(0, {first})
            alone_first = best_ms(transformer, waves)
            os.sched_setaffinity(0, {second})
            alone_second = best_ms(transformer, waves)
            os.sched_setaffinity(0, cores)
            torch.set_num_threads(threads)
            print(f"{time.time() - start:5.0f} s   both {both:6.1f}   core {first} alone {alone_first:6.1f}   core {second} alone {alone_second:6.1f}", flush=True)
    finally:
        os.sched_setaffinity(0, cores)
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
