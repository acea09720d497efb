"""What LogMelTransformer's floor (top_db=80) changes on Emo-DB: the share of log-mel values it lifts
on the clean clips, and how far below its maximum the quietest value of a noise-augmented training
copy sits (the recipe's chain, 2 copies of every 5th clip, seed 0).

Run: python benchmarks/log_mel_floor.py   (SERSK_DATA points at the corpus)
Output: benchmarks/results/log_mel_floor.txt
"""

from __future__ import annotations

import numpy as np

from sersk import AudioLoader, AugmentingResampler, LogMelTransformer
from sersk.datasets import fetch_emodb

TOP_DB = 80.0
TO_DB = 10 / np.log(10)  # natural-log power -> dB


def depth_db(log_mels: np.ndarray) -> float:
    """dB between a log-mel's maximum and its quietest value."""
    return float(TO_DB * (log_mels.max() - log_mels.min()))


def lifted_share(log_mels: np.ndarray) -> float:
    """Share of the values more than TOP_DB under the maximum (those the floor lifts)."""
    return float(np.mean(TO_DB * (log_mels.max() - log_mels) > TOP_DB))


def main() -> None:
    waves = AudioLoader().fit_transform(fetch_emodb(download_if_missing=False).filenames)
    bare = LogMelTransformer(top_db=None, device="cpu").fit()
    clean = bare.transform(waves)
    shares = [lifted_share(x) for x in clean]
    print(f"{len(clean)} clean clips: the floor lifts {100 * np.mean(shares):.2f} % of the values on average "
          f"(clips {100 * min(shares):.2f}-{100 * max(shares):.2f} %); depth {min(map(depth_db, clean)):.1f}-"
          f"{max(map(depth_db, clean)):.1f} dB")
    sources = waves[::5]
    copies, _ = AugmentingResampler(n_augmentations=2, random_state=0).fit_resample(sources, ["x"] * len(sources))
    augmented = bare.transform(copies)
    shares = [lifted_share(x) for x in augmented]
    depths = [depth_db(x) for x in augmented]
    print(f"{len(augmented)} augmented copies of {len(sources)} clips: the quietest value sits {min(depths):.1f}-"
          f"{max(depths):.1f} dB under the copy's maximum (median {np.median(depths):.1f}); the floor lifts "
          f"{100 * np.mean(shares):.3f} % of their values on average")


if __name__ == "__main__":
    main()
