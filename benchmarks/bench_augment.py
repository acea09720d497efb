"""Augmentation + log-mels of the reference training set: sersk's lazy AugmentingResampler next to
plain approaches (every augmented waveform materialised in a list first).

Modes: ``sersk`` (today: the log-mels are computed in the worker processes that make the copies,
``AugmentedWaveforms.map_batches``); ``copies_here`` (sersk before: each slice of copies is sent back
and featurised in this process while the workers wait); ``plain`` (audiomentations in 2 loky
processes, one task per source clip, copies kept in a list, then ``LogMelTransformer``); ``baseline``
(the same, serial, on fewer clips).

The training set is the reference's size, 371 clips, drawn at random per emotion in proportion to
Emo-DB's label counts (``np.random.default_rng(0)``), not the reference's exact split. Each approach
runs in a fresh subprocess, so its wall time and peak memory are its own; memory is the peak
proportional set size (PSS: shared library pages split between the processes sharing them) summed
over the process tree (the process and its joblib workers), sampled every 250 ms from
``/proc/PID/smaps_rollup``, next to
``getrusage`` (``ru_maxrss``, resident set, of the process and of its largest worker once reaped).

Run: python benchmarks/bench_augment.py [--n-clips 371] [--n-augmentations 75]
     (SERSK_DATA points at the corpus; see README)
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import threading
import time

from collections.abc import Sequence

import numpy as np
import psutil
from joblib import Parallel, delayed

from _machine import cpu_line  # benchmarks/_machine.py, beside this script

MODES = {
    "sersk": "sersk: lazy X_res -> LogMelTransformer (log-mels made in the workers)",
    "copies_here": "lazy X_res, copies sent back, log-mels made here (before)",
    "plain": "plain port: 2 loky processes, a task per clip, list",
    "baseline": "baseline: list of all copies (serial) -> fit_transform",
}


def pick_clips(target: np.ndarray, n_clips: int, seed: int = 0) -> np.ndarray:
    """``n_clips`` indices drawn per label in proportion to the label counts (largest remainders)."""
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(target, return_counts=True)
    quota = counts * n_clips / counts.sum()
    take = np.floor(quota).astype(int)
    take[np.argsort(take - quota)[: n_clips - take.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(target == lab), k, replace=False) for lab, k in zip(labels, take)]
    return np.sort(np.concatenate(picks))


def pss(proc: psutil.Process) -> int:
    """Proportional set size in bytes, from ``smaps_rollup`` (Linux; psutil reads the full ``smaps``,
    about 16 ms per call for a process that imported torch, which would take a core's tenth from
    the run being measured)."""
    with open(f"/proc/{proc.pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


class _CopiesHere(Sequence):
    """Hides an AugmentedWaveforms behind a plain sequence: the path sersk took before this change
    (each slice's copies computed in the workers, sent back, featurised in this process)."""

    def __init__(self, lazy):
        self._lazy = lazy

    def __len__(self):
        return len(self._lazy)

    def __getitem__(self, key):
        return self._lazy[key]


def _augment_clip(wave: np.ndarray, n_augmentations: int, seed: int) -> list:
    """The plain port's task: all the copies of one clip, with audiomentations' chain."""
    from audiomentations import AddGaussianSNR, Compose, PitchShift, Shift

    from sersk import _recipe

    np.random.seed(seed)
    random.seed(seed)
    chain = Compose([
        PitchShift(*_recipe.PITCH_SHIFT_SEMITONES, p=_recipe.PITCH_SHIFT_P),
        AddGaussianSNR(*_recipe.NOISE_SNR_DB, p=_recipe.NOISE_P),
        Shift(*_recipe.TIME_SHIFT_SECONDS, shift_unit="seconds", rollover=True, fade_duration=0.0,
              p=_recipe.TIME_SHIFT_P),
    ])
    copies = []
    for _ in range(n_augmentations):
        c = chain(wave, _recipe.SAMPLE_RATE)
        copies.append(c / np.abs(c).max())
    return copies


class TreeMemorySampler(threading.Thread):
    """Peak summed PSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, 0, threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._done.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += pss(proc)
                except (psutil.Error, OSError):
                    pass
            self.peak = max(self.peak, total)
            self._done.wait(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def run_mode(mode: str, n_clips: int, n_augmentations: int, n_jobs: int) -> dict:
    """One approach, in this (fresh) process; returns its figures."""
    from joblib.externals.loky import get_reusable_executor

    from sersk import AudioLoader, LogMelTransformer, _recipe
    from sersk.augment import AugmentingResampler
    from sersk.datasets import fetch_emodb
    from sersk.utils._device import resolve_device

    emodb = fetch_emodb(download_if_missing=False)
    idx = pick_clips(emodb.target, n_clips)
    waves = AudioLoader().fit_transform(emodb.filenames[idx])
    y = emodb.target[idx]
    pss_loaded = pss(psutil.Process())
    sampler = TreeMemorySampler()
    sampler.start()
    t0 = time.perf_counter()
    if mode == "baseline":
        copies = [c for i, w in enumerate(waves) for c in _augment_clip(w, n_augmentations, i)]
        X_res = copies
        log_mels = LogMelTransformer().fit_transform(X_res)
    elif mode == "plain":
        tasks = (delayed(_augment_clip)(w, n_augmentations, i) for i, w in enumerate(waves))
        X_res = [c for copies in Parallel(n_jobs=n_jobs, backend="loky")(tasks) for c in copies]
        log_mels = LogMelTransformer().fit_transform(X_res)
    elif mode == "copies_here":
        X_res, _ = AugmentingResampler(n_augmentations=n_augmentations, n_jobs=n_jobs, random_state=0).fit_resample(
            waves, y
        )
        log_mels = LogMelTransformer().fit_transform(_CopiesHere(X_res))
    else:
        X_res, _ = AugmentingResampler(n_augmentations=n_augmentations, n_jobs=n_jobs, random_state=0).fit_resample(
            waves, y
        )
        log_mels = LogMelTransformer().fit_transform(X_res)
    wall = time.perf_counter() - t0
    peak_tree = sampler.stop()
    get_reusable_executor().shutdown(wait=True)  # reap the workers so RUSAGE_CHILDREN counts them
    assert len(log_mels) == n_clips * n_augmentations
    return {
        "mode": mode, "n_clips": n_clips, "n_copies": len(log_mels), "wall_s": wall,
        "audio_s": float(sum(map(len, waves)) / _recipe.SAMPLE_RATE),
        "pss_loaded_mb": pss_loaded / 2**20, "peak_tree_mb": peak_tree / 2**20,
        "maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,
        "maxrss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10,
        "device": resolve_device(None),
    }


def spawn(mode: str, n_clips: int, n_augmentations: int, n_jobs: int) -> dict:
    cmd = [sys.executable, __file__, "--mode", mode, "--n-clips", str(n_clips),
           "--n-augmentations", str(n_augmentations), "--n-jobs", str(n_jobs)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-clips", type=int, default=371, help="training clips (default: the reference's 371)")
    parser.add_argument("--n-augmentations", type=int, default=75, help="copies per clip (default: the recipe's 75)")
    parser.add_argument("--n-jobs", type=int, default=-1, help="AugmentingResampler's n_jobs (default: all cores)")
    parser.add_argument("--baseline-clips", type=int, default=None,
                        help="clips for the baseline (default: --n-clips up to 60, else 40)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    parser.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)  # internal: one approach, as JSON
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.n_clips, args.n_augmentations, args.n_jobs)))
        return

    baseline_clips = args.baseline_clips or (args.n_clips if args.n_clips <= 60 else 40)
    print(cpu_line())
    print(f"n_jobs: {args.n_jobs}, copies per clip: {args.n_augmentations}")  # the cores: cpu_line
    if baseline_clips != args.n_clips:
        print(f"the baseline runs on {baseline_clips} clips (not {args.n_clips}): it would take too long / too "
              "much memory at full size; compare clips/s and memory per 1000 copies")
    header = (f"{'approach':70s} {'clips':>5s} {'copies':>6s} {'wall s':>8s} {'copies/s':>9s} "
              f"{'peak PSS MiB':>12s} {'MiB/1000 copies':>15s} {'maxrss self/child MiB':>22s}")
    print(header)
    for mode in args.modes.split(","):
        n = baseline_clips if mode == "baseline" else args.n_clips
        r = spawn(mode, n, args.n_augmentations, args.n_jobs)
        extra = (r["peak_tree_mb"] - r["pss_loaded_mb"]) / r["n_copies"] * 1000
        print(f"{MODES[mode]:70s} {n:5d} {r['n_copies']:6d} {r['wall_s']:8.1f} {r['n_copies'] / r['wall_s']:9.1f} "
              f"{r['peak_tree_mb']:12.0f} {extra:15.1f} {r['maxrss_self_mb']:11.0f}/{r['maxrss_children_mb']:<10.0f}",
              flush=True)
    print(f"(log-mel device: {r['device']}; 'MiB/1000 copies' = (peak tree PSS - PSS after loading the clips) "
          "per 1000 copies; the peak includes each worker's own imports)")


if __name__ == "__main__":
    main()
