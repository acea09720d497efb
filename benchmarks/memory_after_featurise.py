"""Resident memory of this process after the recipe's augmentation and log-mels, before training.

Draws the reference split's 371 training clips' worth of Emo-DB files (the first 371), makes 75
augmented copies of each with their log-mels (2 worker processes), and prints the resident memory
before, after, and after ``malloc_trim`` (glibc), next to the bytes the log-mels themselves hold.

Run: python benchmarks/memory_after_featurise.py [N_AUGMENTATIONS]   (default 75)
"""

from __future__ import annotations

import ctypes
import sys
import time

import numpy as np

from sersk import AudioLoader, AugmentingResampler, LogMelTransformer
from sersk.datasets import fetch_emodb
from sersk.utils._malloc import _resident_bytes


def resident_gib() -> float:
    return _resident_bytes() / 2**30


def main() -> None:
    n_augmentations = int(sys.argv[1]) if len(sys.argv) > 1 else 75
    waves = AudioLoader().fit_transform(fetch_emodb(download_if_missing=False).filenames[:371])
    print(f"before: {resident_gib():.2f} GiB")
    copies, _ = AugmentingResampler(n_augmentations=n_augmentations, random_state=0, n_jobs=2).fit_resample(
        waves, np.zeros(len(waves))
    )
    t0 = time.perf_counter()
    log_mels = LogMelTransformer().fit_transform(copies)
    data = sum(x.nbytes for x in log_mels) / 2**30
    print(f"{len(log_mels)} log-mels ({data:.2f} GiB of data) in {time.perf_counter() - t0:.0f} s: "
          f"{resident_gib():.2f} GiB")
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    print(f"after malloc_trim: {resident_gib():.2f} GiB")


if __name__ == "__main__":
    main()
