"""Test accuracy of the two padding modes on the reference's split (70/15/15 per label, seeded).

Both classifiers train on the same augmented, featurised training clips and validate on the same
validation clips. Test accuracy is measured predicting in batches of 32 and one clip at a time.

Run: python benchmarks/padding_modes.py --n-augmentations 5 --seed 0
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sersk import AudioLoader, AugmentingResampler, CNNLSTMClassifier, LogMelTransformer
from sersk.datasets import fetch_emodb
from sersk.model_selection import reference_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-augmentations", type=int, default=75)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    emodb = fetch_emodb(download_if_missing=False)
    split = reference_split(emodb.target, random_state=args.seed)
    waves = AudioLoader().fit_transform(emodb.filenames)
    logmel = LogMelTransformer().fit()
    t0 = time.perf_counter()
    X_aug, y_aug = AugmentingResampler(n_augmentations=args.n_augmentations, random_state=args.seed, n_jobs=2).fit_resample(
        waves[split.train], emodb.target[split.train]
    )
    X_train = logmel.transform(X_aug)
    print(f"augmented {len(split.train)} clips x {args.n_augmentations} and featurised: {time.perf_counter() - t0:.1f} s")
    X_val, y_val = logmel.transform(waves[split.validation]), emodb.target[split.validation]
    X_test, y_test = logmel.transform(waves[split.test]), emodb.target[split.test]

    for padding in ("masked", "reference"):
        t0 = time.perf_counter()
        clf = CNNLSTMClassifier(padding=padding, random_state=args.seed, device="cpu", verbose=0)
        clf.fit(X_train, y_aug, validation_data=(X_val, y_val))
        train_s = time.perf_counter() - t0
        batched = np.mean(clf.predict(X_test) == y_test)
        alone = np.mean(np.array([clf.predict(X_test[i : i + 1])[0] for i in range(len(X_test))]) == y_test)
        print(
            f"padding={padding:9s} train {len(X_train)} clips x {clf.max_epochs} epochs in {train_s:6.0f} s "
            f"({len(X_train) * clf.max_epochs / train_s:.1f} clips/s); valid_acc per epoch "
            f"{[round(a, 3) for a in clf.history[:, 'valid_acc']]}; test accuracy: batches of 32 "
            f"{batched:.3f}, one clip at a time {alone:.3f}  (n_test={len(y_test)})"
        )


if __name__ == "__main__":
    main()
