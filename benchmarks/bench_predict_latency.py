"""Latency of a one-clip prediction, the way a service calls a loaded model, and the process's memory.

The baseline is the heap trimmed whenever a prediction ends, as sersk did up to commit 45944b6: a
trim walks the whole heap. Now the end of a prediction trims only when the process has grown by
``TRIM_ON_EXIT_BYTES`` since the last such trim (``sersk.utils._malloc``). Both run in this process on
the same fitted model (the recipe's network, trained one epoch on 24 Emo-DB clips) and the same
decoded clip, in alternating rounds; the resident memory after each round shows whether skipping the
trims lets the process grow.

Run: SERSK_DATA=... python benchmarks/bench_predict_latency.py [--calls 100] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np
from _machine import cpu_line

from sersk import _recipe, make_pipeline
from sersk.datasets import fetch_emodb
from sersk.utils import _malloc


def always_trim() -> None:
    _malloc._LIBC.malloc_trim(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="one-clip predictions per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each setting, alternating")
    args = parser.parse_args()
    emodb = fetch_emodb(os.environ.get("SERSK_DATA"))
    pipe = make_pipeline(n_augmentations=1, max_epochs=1, random_state=0, device="cpu").set_params(net__verbose=0)
    pipe.fit(emodb.filenames[:24], emodb.target[:24])
    clip = pipe.named_steps["load"].transform([emodb.filenames[30]])  # 1 clip, decoded once
    pipe.set_params(load="passthrough")
    print(cpu_line())
    seconds = len(clip[0]) / _recipe.SAMPLE_RATE
    print(f"one clip of {seconds:.2f} s ({Path(emodb.filenames[30]).name}), {args.calls} calls per round")
    for _ in range(20):
        pipe.predict_proba(clip)  # warm-up
    times: dict[str, list[float]] = {"trim at every end (before)": [], "trim once grown (now)": []}
    for _ in range(args.rounds):
        for name in times:
            with mock.patch.object(_malloc, "_trim_if_grown", always_trim) if "before" in name else nullcontext():
                start = time.perf_counter()
                for _ in range(args.calls):
                    pipe.predict_proba(clip)
                times[name].append(1000 * (time.perf_counter() - start) / args.calls)
            resident = _malloc._resident_bytes() / 2**20
            print(f"  {name:28s} {times[name][-1]:6.2f} ms per call; resident {resident:6.0f} MiB")
    before, now = (np.median(v) for v in times.values())
    print(f"median: before {before:.2f} ms, now {now:.2f} ms per call: {before / now:.2f}x")


if __name__ == "__main__":
    main()
