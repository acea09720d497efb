"""Log-mels of all of Emo-DB with today's LogMelTransformer next to an earlier revision's, in one process.

The earlier ``sersk/features.py`` is read from git (``git show REV:sersk/features.py``) and run
with today's clip checks and helpers. The two run in turns, 7 times each, so that a slow spell of
the machine hits both; the best time of each is printed with the largest difference between them.
Then librosa, as in bench_features.py (no floor on either side there), best of 5 in a block after
them: each version's speed-up over librosa, on the same machine at the same time.

Run: python benchmarks/featurise_before_after.py [REV]   (default f237330, before the frame-stacking
rewrite; SERSK_DATA points at the corpus)
"""

from __future__ import annotations

import subprocess
import sys
import time
import types

import numpy as np
import torch
from bench_features import best_of, librosa_log_mels

from sersk import AudioLoader, LogMelTransformer
from sersk.datasets import fetch_emodb


def transformer_at(rev: str) -> type:
    source = subprocess.run(["git", "show", f"{rev}:sersk/features.py"], capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType("sersk._features_before")
    module.__package__ = "sersk"
    exec(compile(source, f"{rev}:sersk/features.py", "exec"), module.__dict__)
    return module.LogMelTransformer


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "f237330"
    waves = AudioLoader().fit_transform(fetch_emodb(download_if_missing=False).filenames)
    versions = {  # librosa's settings: no floor
        f"{rev} (before)": transformer_at(rev)(device="cpu", top_db=None).fit(),
        "today": LogMelTransformer(device="cpu", top_db=None).fit(),
    }
    times: dict[str, list[float]] = {name: [] for name in versions}
    outputs = {}
    for _ in range(7):
        for name, transformer in versions.items():
            t0 = time.perf_counter()
            outputs[name] = transformer.transform(waves)
            times[name].append(time.perf_counter() - t0)
    print(f"{len(waves)} clips, torch threads: {torch.get_num_threads()}; best of 7, run in turns")
    for name, seconds in times.items():
        print(f"  {name:18s} {min(seconds):6.3f} s   (all: {' '.join(f'{s:.3f}' for s in seconds)})")
    before, today = (min(t) for t in times.values())
    diff = max(float(np.abs(a - b).max()) for a, b in zip(*outputs.values()))
    print(f"  speed-up: {before / today:.2f}x; largest log-mel difference {diff:.2e}")
    librosa_s, _ = best_of(lambda: librosa_log_mels(waves))
    print(f"librosa {librosa_s:.3f} s (best of 5): {librosa_s / before:.2f}x for {rev}, {librosa_s / today:.2f}x today")


if __name__ == "__main__":
    main()
