"""Test accuracy and training speed with and without batches of similar length, same seeds.

For each seed: the reference's split (70/15/15 per label), the training clips augmented and
featurised once, then two classifiers trained on exactly those clips: the recipe's fully shuffled
batches of 32 (``batch_by_length=False, max_batch_frames=None``) and shuffled batches of similar
length (``batch_by_length=True``, ``max_batch_frames=4608``), each
validated per epoch on the validation clips and scored on the test clips. Each result line is
printed as soon as it is measured.

Run: python benchmarks/batch_by_length.py --n-augmentations 10 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from sersk import AudioLoader, AugmentingResampler, CNNLSTMClassifier, LogMelTransformer
from sersk.datasets import fetch_emodb
from sersk.model_selection import reference_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-augmentations", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    emodb = fetch_emodb(download_if_missing=False)
    waves = AudioLoader().fit_transform(emodb.filenames)
    logmel = LogMelTransformer().fit()
    scores: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for seed in args.seeds:
        split = reference_split(emodb.target, random_state=seed)
        X_aug, y_aug = AugmentingResampler(n_augmentations=args.n_augmentations, random_state=seed, n_jobs=2).fit_resample(
            waves[split.train], emodb.target[split.train]
        )
        X_train = logmel.transform(X_aug)
        X_val, y_val = logmel.transform(waves[split.validation]), emodb.target[split.validation]
        X_test, y_test = logmel.transform(waves[split.test]), emodb.target[split.test]
        for by_length in (False, True):
            t0 = time.perf_counter()
            budget = {"max_batch_frames": 4608 if by_length else None}
            clf = CNNLSTMClassifier(batch_by_length=by_length, random_state=seed, device="cpu", verbose=0, **budget)
            clf.fit(X_train, y_aug, validation_data=(X_val, y_val))
            seconds = time.perf_counter() - t0
            y_pred = clf.predict(X_test)
            acc, uar = np.mean(y_pred == y_test), balanced_accuracy_score(y_test, y_pred)
            scores[by_length].append((acc, uar))
            print(
                f"seed {seed} batch_by_length={by_length!s:5s}: test accuracy {100 * acc:5.1f} %, UAR {100 * uar:5.1f} %; "
                f"valid_acc per epoch {[round(a, 3) for a in clf.history[:, 'valid_acc']]}; "
                f"{len(X_train)} clips x {clf.max_epochs} epochs in {seconds:.0f} s "
                f"({len(X_train) * clf.max_epochs / seconds:.1f} clips/s)",
                flush=True,
            )
    for by_length, rows in scores.items():
        acc, uar = np.array(rows).T * 100
        print(f"batch_by_length={by_length!s:5s}: test accuracy {acc.mean():.1f} +- {acc.std(ddof=1) if len(acc) > 1 else 0:.1f} %, "
              f"UAR {uar.mean():.1f} +- {uar.std(ddof=1) if len(uar) > 1 else 0:.1f} % over seeds {args.seeds}")


if __name__ == "__main__":
    main()
