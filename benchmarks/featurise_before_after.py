"""Log-mels of all of Emo-DB with today's LogMelTransformer next to an earlier revision's, in one process.

The earlier ``sersk/features.py`` is read from git (``git show REV:sersk/features.py``) and run
with today's helpers (``check_waveform`` and the rest). The two and librosa (as in bench_features.py,
no floor on any side) run in turns, best of 5 each per round, in 10 rounds: only the times of one
round compare, since a slow spell of this machine lasts minutes. Prints each round's times and
ratios, their medians, and the largest log-mel difference between the two versions.

Run: python benchmarks/featurise_before_after.py [REV]   (default f237330, before the frame-stacking
rewrite; SERSK_DATA points at the corpus)
"""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import torch
from bench_features import best_of, librosa_log_mels

from sersk import AudioLoader, LogMelTransformer
from sersk.datasets import fetch_emodb


ROUNDS = 10


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
    outputs = {name: transformer.transform(waves) for name, transformer in versions.items()}
    diff = max(float(np.abs(a - b).max()) for a, b in zip(*outputs.values()))
    contenders = {name: (lambda t=transformer: t.transform(waves)) for name, transformer in versions.items()}
    contenders["librosa"] = lambda: librosa_log_mels(waves)
    print(f"{len(waves)} clips, torch threads: {torch.get_num_threads()}; best of 5 each in each of {ROUNDS} rounds, "
          "in turns (the order reversed every other round)")
    speed_ups, librosa_ratios = [], []
    for turn in range(ROUNDS):
        names = list(contenders) if turn % 2 == 0 else list(contenders)[::-1]
        best = {name: best_of(contenders[name])[0] for name in names}
        before, today = (best[name] for name in versions)
        speed_ups.append(before / today)
        librosa_ratios.append(best["librosa"] / today)
        print(f"round {turn + 1:2d}: " + "  ".join(f"{name} {1e3 * s:6.1f} ms" for name, s in best.items())
              + f"   today {speed_ups[-1]:.3f}x the before; librosa/today {librosa_ratios[-1]:.2f}x")
    print(f"speed-up over {rev}: median {np.median(speed_ups):.3f}x ({min(speed_ups):.3f}-{max(speed_ups):.3f}); "
          f"today over librosa: median {np.median(librosa_ratios):.2f}x; largest log-mel difference {diff:.2e}")

if __name__ == "__main__":
    main()
