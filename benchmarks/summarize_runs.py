"""Summarise the results.json of `sersk reproduce` runs, and their mean and spread over runs.

Leave-one-speaker-out runs are shown per speaker, pooled, and pooled over a subset of speakers:

    python benchmarks/summarize_runs.py benchmarks/results/loso_tuned_seed*/results.json \
        --untouched 09 11 12 14 15 16
    python benchmarks/summarize_runs.py benchmarks/results/reference_split_tuned_seed*/results.json

``--untouched`` names the speakers whose folds no tuning choice ever scored (the ablation's
validation speakers were 03, 08, 10 and 13): their pooled scores are printed on their own.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def pooled(folds: list[dict]) -> tuple[float, float]:
    """Accuracy and UAR of the predictions of these folds together, from their confusion matrices."""
    counts = sum(np.asarray(f["confusion_matrix"]["counts"]) for f in folds)
    recalls = [counts[i, i] / counts[i].sum() for i in range(len(counts)) if counts[i].sum()]
    return float(np.trace(counts) / counts.sum()), float(np.mean(recalls))


def summarize_speakers(results: dict, untouched: list[str]) -> tuple[float, float]:
    """Print a leave-one-speaker-out run per speaker; return its pooled accuracy and UAR."""
    folds = results["per_speaker"]
    labels = folds[0]["confusion_matrix"]["labels"]
    assert all(f["confusion_matrix"]["labels"] == labels for f in folds)
    acc, uar = pooled(folds)
    print(f"  {results['folds_run']} folds")
    print("  speaker  clips  accuracy    UAR   fold time")
    for f in folds:
        print(f"  {f['speaker']:>7}  {f['n_files']:5d}  {100 * f['accuracy']:6.2f} %  {100 * f['uar']:6.2f} %  "
              f"{f['wall_time_s']:6.1f} s")
    print(f"  pooled: accuracy {100 * acc:.2f} %, UAR {100 * uar:.2f} % "
          f"(results.json: {100 * results['accuracy']:.2f} %, {100 * results['uar']:.2f} %)")
    sub = [f for f in folds if f["speaker"] in untouched]
    if sub:
        sub_acc, sub_uar = pooled(sub)
        print(f"  pooled over the {len(sub)} untouched speakers ({', '.join(f['speaker'] for f in sub)}): "
              f"accuracy {100 * sub_acc:.2f} %, UAR {100 * sub_uar:.2f} %")
    return acc, uar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--untouched", nargs="*", default=[])
    args = parser.parse_args()
    runs = []
    for path in args.results:
        with open(path) as fh:
            results = json.load(fh)
        print(f"{path}: seed {results['seed']}, preset {results.get('preset', 'reference')}, "
              f"wall time {results['wall_time_s'] / 60:.1f} min, peak RSS {results['peak_rss_mib']['self']:.0f} MiB")
        if "per_speaker" in results:
            acc, uar = summarize_speakers(results, args.untouched)
        else:
            acc, uar = results["accuracy"], results["uar"]
            print(f"  test accuracy {100 * acc:.2f} %, UAR {100 * uar:.2f} % ({results['n_files']} clips)")
        runs.append((acc, uar))
    if len(runs) > 1:
        acc, uar = np.array(runs).T
        print(f"over {len(runs)} runs: accuracy {100 * acc.mean():.2f} +- {100 * acc.std(ddof=1):.2f} %, "
              f"UAR {100 * uar.mean():.2f} +- {100 * uar.std(ddof=1):.2f} % (mean +- sample std)")


if __name__ == "__main__":
    main()
