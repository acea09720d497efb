"""Summarise the results.json of `sersk reproduce` runs, and their mean and spread over runs.

Leave-one-speaker-out runs are shown per speaker, pooled, and pooled over a subset of speakers:

    python benchmarks/summarize_runs.py benchmarks/results/loso_tuned_seed{0,1}/results.json \
        --untouched 11 12 14 15 16
    python benchmarks/summarize_runs.py benchmarks/results/reference_split_tuned_seed*/results.json

``--untouched`` names speakers whose pooled scores are printed on their own: those whose folds no
choice ever scored. The ablation that chose the tuned preset validated on 03, 08, 10 and 13, so
09 11 12 14 15 16 are the six it never scored; candidates screened later under leave-one-speaker-out
and rejected (100 epochs, band offsets; docs/results.md) also scored 09, so 11 12 14 15 16 are the
five that neither scored. The committed summaries give both.
``--pool`` treats the runs as parts of one leave-one-speaker-out run (each holding some of its
folds, as ``benchmarks/loso_folds.sh`` writes them) and pools all their folds together.
``--fold-lines FILE`` adds to ``--pool`` the folds that a ``folds.txt`` of ``loso_folds.sh`` scored
but whose results.json is lost (clips, accuracy and UAR only, no confusion matrix): they count in
the pooled accuracy (correct clips = accuracy x clips) and in the per-fold means, not in the
pooled UAR. A speaker whose fold is also given as a results.json is taken from that file, so
giving one fold's results.json and the run's whole folds.txt prints the per-fold means of a run
whose folds are all kept (``loso_reference_seed0_cpu_zen5_perfold_summary.txt``). A fold's UAR
averages the classes its speaker recorded: over 6 for speaker 08 (no disgust clip), 7 for the rest.
``--ensemble`` also scores the average of the runs' class probabilities, clip by clip (runs
made since the protocols keep each clip's probabilities in ``predictions``). ``--bootstrap`` prints,
for each leave-one-speaker-out run, 95 % intervals of its pooled accuracy and UAR with the speakers
drawn again (as ``sersk reproduce`` now records them, from the folds' ``predictions``).
"""

from __future__ import annotations

import argparse
import json
import re

import numpy as np

from sersk.evaluation import _speaker_bootstrap


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


def print_speaker_bootstrap(results: dict) -> None:
    """The run's speaker-bootstrap intervals, from each fold's predicted and true labels."""
    folds = results["per_speaker"]
    if not all(fold.get("predictions") for fold in folds):
        print("  speakers drawn again (bootstrap): the folds' predictions were not kept")
        return
    true = [np.array([r["label"] for r in fold["predictions"]]) for fold in folds]
    predicted = [np.array([r["predicted"] for r in fold["predictions"]]) for fold in folds]
    interval = _speaker_bootstrap(true, predicted)
    if interval is None:
        return
    low, high = interval["accuracy"]
    uar_low, uar_high = interval["uar"]
    print(f"  speakers drawn again (bootstrap, {interval['n_resamples']} resamples): 95 % interval of the accuracy "
          f"{100 * low:.1f}-{100 * high:.1f} %, of the UAR {100 * uar_low:.1f}-{100 * uar_high:.1f} %")


def fold_lines(path: str) -> list[dict]:
    """The scored folds of a loso_folds.sh folds.txt: speaker, clips, accuracy and UAR."""
    folds = []
    for number, line in enumerate(open(path), 1):
        if "exit 0" not in line:  # a header, a skipped or a failed fold
            continue
        match = re.search(r"exit 0\s+(\d+) (\d+) ([\d.]+) % ([\d.]+) %", line)
        if match is None:  # an older loso_folds.sh could catch an epoch row of the training table here
            raise SystemExit(f"{path}, line {number}: a fold that ended well but has no score row: {line.strip()!r}")
        speaker, n, acc, uar = match.groups()
        folds.append({"speaker": speaker, "n_files": int(n), "accuracy": float(acc) / 100, "uar": float(uar) / 100})
    return folds


def clip_records(results: dict) -> list[dict]:
    """Each test clip's record (path, label, predicted, proba) of one run, over all its folds."""
    if "per_speaker" in results:
        return [r for fold in results["per_speaker"] for r in fold.get("predictions", [])]
    return results.get("predictions", [])


def ensemble_scores(runs: list[dict]) -> tuple[float, float, int]:
    """Accuracy and UAR of the runs' probabilities averaged clip by clip, and the number of clips."""
    records = [{r["path"]: r for r in clip_records(results)} for results in runs]
    files = sorted(records[0])
    if not files or any(sorted(r) != files for r in records) or any("proba" not in r[f] for r in records for f in files):
        raise SystemExit("--ensemble needs runs with probabilities for the same clips (results.json 'predictions')")
    labels = sorted(records[0][files[0]]["proba"])
    if any(sorted(r[f]["proba"]) != labels or r[f]["label"] != records[0][f]["label"] for r in records for f in files):
        raise SystemExit("--ensemble needs runs with the same classes and labels")
    mean = np.array([[np.mean([r[f]["proba"][c] for r in records]) for c in labels] for f in files])
    y_true = np.array([records[0][f]["label"] for f in files])
    y_pred = np.array(labels)[mean.argmax(axis=1)]
    recalls = [np.mean(y_pred[y_true == c] == c) for c in labels if (y_true == c).any()]
    return float(np.mean(y_pred == y_true)), float(np.mean(recalls)), len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--untouched", nargs="*", default=[])
    parser.add_argument("--pool", action="store_true", help="pool the folds of all runs (parts of one LOSO run)")
    parser.add_argument("--fold-lines", nargs="*", default=[], metavar="FILE",
                        help="with --pool: also the folds scored in these loso_folds.sh folds.txt files")
    parser.add_argument("--ensemble", action="store_true", help="also score the runs' averaged probabilities")
    parser.add_argument("--bootstrap", action="store_true",
                        help="also a 95 %% interval of each leave-one-speaker-out run, its speakers drawn again")
    args = parser.parse_args()
    runs, loaded = [], []
    for path in args.results:
        with open(path) as fh:
            results = json.load(fh)
        loaded.append(results)
        transductive = " (TRANSDUCTIVE: each speaker standardised by itself)" if results.get("transductive") else ""
        print(f"{path}: seed {results['seed']}, preset {results.get('preset', 'reference')}{transductive}, "
              f"wall time {results['wall_time_s'] / 60:.1f} min, peak RSS {results['peak_rss_mib']['self']:.0f} MiB")
        if "per_speaker" in results:
            acc, uar = summarize_speakers(results, args.untouched)
            if args.bootstrap:
                print_speaker_bootstrap(results)
        else:
            acc, uar = results["accuracy"], results["uar"]
            print(f"  test accuracy {100 * acc:.2f} %, UAR {100 * uar:.2f} % ({results['n_files']} clips)")
        runs.append((acc, uar))
    if args.pool:
        if not all("per_speaker" in results for results in loaded):
            raise SystemExit("--pool pools the folds of leave-one-speaker-out runs; a run of the reference split has none")
        folds = [f for results in loaded for f in results.get("per_speaker", [])]
        lines = [f for path in args.fold_lines for f in fold_lines(path)]
        superseded = sorted(f["speaker"] for f in lines if f["speaker"] in {g["speaker"] for g in folds})
        if superseded:
            print(f"folds.txt lines for {', '.join(superseded)} left out: their results.json is given")
            lines = [f for f in lines if f["speaker"] not in superseded]
        speakers = [f["speaker"] for f in folds + lines]
        if len(set(speakers)) != len(speakers):
            raise SystemExit(f"--pool needs each speaker's fold once; got {sorted(speakers)}")
        acc, uar = pooled(folds)
        print(f"pooled over {len(folds)} folds ({', '.join(sorted(f['speaker'] for f in folds))}; their confusion "
              f"matrices summed): {sum(f['n_files'] for f in folds)} clips, accuracy {100 * acc:.2f} %, UAR {100 * uar:.2f} %")
        if args.bootstrap:
            print_speaker_bootstrap({"per_speaker": folds})
        if lines:
            every = folds + lines
            for f in lines:
                print(f"  {f['speaker']:>7}  {f['n_files']:5d}  {100 * f['accuracy']:6.2f} %  {100 * f['uar']:6.2f} %  (folds.txt)")
            n = sum(f["n_files"] for f in every)
            correct = sum(round(f["accuracy"] * f["n_files"]) for f in every)
            accs, uars = np.array([f["accuracy"] for f in every]), np.array([f["uar"] for f in every])
            print(f"all {len(every)} folds ({', '.join(sorted(speakers))}): pooled accuracy {100 * correct / n:.2f} % "
                  f"({correct} of {n} clips); per fold: accuracy {100 * accs.mean():.2f} +- {100 * accs.std(ddof=1):.2f} %, "
                  f"UAR {100 * uars.mean():.2f} +- {100 * uars.std(ddof=1):.2f} % (mean +- sample std)")
    elif len(runs) > 1:
        fold_sets = {tuple(sorted(f["speaker"] for f in r["per_speaker"])) for r in loaded if "per_speaker" in r}
        if len(fold_sets) > 1:
            print("note: these runs held out different speakers; their scores are not of one test set")
        acc, uar = np.array(runs).T
        print(f"over {len(runs)} runs: accuracy {100 * acc.mean():.2f} +- {100 * acc.std(ddof=1):.2f} %, "
              f"UAR {100 * uar.mean():.2f} +- {100 * uar.std(ddof=1):.2f} % (mean +- sample std)")
    if args.ensemble:
        acc, uar, n = ensemble_scores(loaded)
        print(f"ensemble of {len(loaded)} runs (mean probabilities, {n} clips): accuracy {100 * acc:.2f} %, "
              f"UAR {100 * uar:.2f} %")


if __name__ == "__main__":
    main()
