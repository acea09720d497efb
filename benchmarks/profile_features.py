"""Where LogMelTransformer's time goes on the CPU: torch.profiler over transforms of all of Emo-DB.

The transformer runs as users call it (CPU defaults, no floor as in bench_features.py). Prints the
torch operators by their own time per transform, and the wall time per transform: what no
operator accounts for is Python and numpy (the clip checks, the per-clip copies).

Run: python benchmarks/profile_features.py [--repeats 5] [--rows 12]   (SERSK_DATA points at the corpus)
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from sersk import AudioLoader, LogMelTransformer
from sersk.datasets import fetch_emodb

from _machine import cpu_line  # benchmarks/_machine.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args()
    waves = AudioLoader().fit_transform(fetch_emodb(download_if_missing=False).filenames)
    transformer = LogMelTransformer(device="cpu", top_db=None).fit()
    transformer.transform(waves)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            transformer.transform(waves)
        wall = (time.perf_counter() - t0) / args.repeats
    events = sorted(prof.key_averages(), key=lambda event: -event.self_cpu_time_total)
    print(cpu_line())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(waves)} clips, batch_frames "
          f"{transformer._batch_frames(torch.device('cpu'))}; per transform, mean of {args.repeats} under the profiler:")
    print(f"  {'operator':32s} {'own ms':>8s} {'calls':>7s}")
    for event in events[: args.rows]:
        print(f"  {event.key:32s} {event.self_cpu_time_total / 1e3 / args.repeats:8.2f} {event.count // args.repeats:7d}")
    ops = sum(event.self_cpu_time_total for event in events) / 1e3 / args.repeats
    print(f"  all torch operators: {ops:.1f} ms; wall time {1e3 * wall:.1f} ms; outside torch: {1e3 * wall - ops:.1f} ms")


if __name__ == "__main__":
    main()
