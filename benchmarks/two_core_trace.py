"""Log-mels of all of Emo-DB, timed again and again: on both cores, and on one thread pinned to each core.

Shows whether a slow spell of the machine is sersk's or the cores': a spell that slows the
two-thread run but neither single-core one is the two cores running together slower (as when a
host puts both virtual CPUs on one physical core), not the code. Each line is the best of 3 runs of
each kind, one after the other; at the end, each column's median over the fast lines (both cores
within 1.25x of their fastest) and over the slow ones.

Run: python benchmarks/two_core_trace.py [SECONDS]   (default 150; SERSK_DATA points at the corpus)
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch
from bench_features import best_of

from sersk import AudioLoader, LogMelTransformer
from sersk.datasets import fetch_emodb

from _machine import cpu_line  # benchmarks/_machine.py, beside this script


def summary(rows: list[tuple[float, float, float]]) -> str:
    """Medians of each column over the fast lines (both cores within 1.25x of their fastest) and the slow ones."""
    limit = 1.25 * min(both for both, _, _ in rows)
    lines = []
    for name, part in (("fast", [r for r in rows if r[0] <= limit]), ("slow", [r for r in rows if r[0] > limit])):
        if part:
            both, first, second = np.median(part, axis=0)
            lines.append(f"{name} lines (both cores {'at most' if name == 'fast' else 'over'} {limit:.1f} ms): "
                         f"{len(part)}; medians: both {both:.1f}, first core alone {first:.1f}, second {second:.1f}")
    return "\n".join(lines)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 150.0
    waves = list(AudioLoader().fit_transform(fetch_emodb(download_if_missing=False).filenames))
    transformer = LogMelTransformer(device="cpu", top_db=None).fit()
    cores, threads = os.sched_getaffinity(0), torch.get_num_threads()
    first, second = sorted(cores)[:2]
    print(cpu_line())
    print(f"best of 3 transforms of {len(waves)} clips, ms: {threads} threads on cores {sorted(cores)}, then 1 thread on core {first}, then on core {second}")
    start, rows = time.time(), []

    def best_ms() -> float:
        return 1e3 * best_of(lambda: transformer.transform(waves), repeats=3)[0]

    try:
        while time.time() - start < seconds:
            both = best_ms()
            torch.set_num_threads(1)
            os.sched_setaffinity(0, {first})
            alone_first = best_ms()
            os.sched_setaffinity(0, {second})
            alone_second = best_ms()
            os.sched_setaffinity(0, cores)
            torch.set_num_threads(threads)
            rows.append((both, alone_first, alone_second))
            print(f"{time.time() - start:5.0f} s   both {both:6.1f}   core {first} alone {alone_first:6.1f}   core {second} alone {alone_second:6.1f}", flush=True)
    finally:
        os.sched_setaffinity(0, cores)
        torch.set_num_threads(threads)
    print(summary(rows))


if __name__ == "__main__":
    main()
