"""A speaker-grouped grid search and batch prediction on a Dask cluster.

The search goes through joblib's Dask backend, which scikit-learn already speaks: each
(candidate, fold) fit is one task on a worker. Workers receive file paths and parameters and read
the audio themselves, so the files must be on a filesystem every worker can read.

Run it on this machine (a LocalCluster of 2 worker processes on 127.0.0.1 and a small synthetic
corpus)::

    python examples/dask_grid_search.py

or on a running cluster with a folder of Emo-DB WAVs every worker can read (heavier: the full
recipe has 75 augmented copies per clip; --n-augmentations keeps it small)::

    python examples/dask_grid_search.py --scheduler tcp://10.0.0.1:8786 --data /shared/emodb/wav

As it is, it took 8 s on a 2-core AMD EPYC, peak 0.9 GB (benchmarks/results/timings_2026-12-01_zen5_examples.txt).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import joblib
import numpy as np
import soundfile as sf
from dask.distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, GroupKFold

from sersk import make_pipeline, predict_files
from sersk.datasets import load_corpus
from sersk.utils.synthetic import make_tone


def synthetic_corpus(root: Path):
    """24 tones of about a second: 4 'speakers' x 2 'emotions' (low and high pitch) x 3 clips."""
    paths, labels, speakers = [], [], []
    for i in range(24):
        speaker, emotion = f"s{i % 4}", ("low", "high")[(i // 4) % 2]
        path = root / f"{speaker}_{emotion}_{i}.wav"
        sf.write(path, make_tone((220.0 if emotion == "low" else 1800.0) * (1 + 0.02 * i), 0.8 + 0.02 * i), 16000)
        paths.append(str(path))
        labels.append(emotion)
        speakers.append(speaker)
    return np.array(paths), np.array(labels), np.array(speakers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler", help="address of a running scheduler, e.g. tcp://10.0.0.1:8786")
    parser.add_argument("--data", help="a folder of Emo-DB WAVs, or a CSV path,label,speaker, that every worker can read")
    parser.add_argument("--n-augmentations", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            corpus = load_corpus(args.data)
            paths, labels, speakers = corpus.filenames, corpus.target, corpus.speaker
            if speakers is None:
                parser.error(f"--data {args.data}: no speakers (give Emo-DB file names, or a CSV with a speaker "
                             "column); the search holds out whole speakers")
            small_net = {}
        else:
            paths, labels, speakers = synthetic_corpus(Path(tmp))  # a LocalCluster's workers share this disk
            small_net = {"net__module__filters": (8, 8, 16, 16), "net__module__hidden_size": 16}
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            client = Client(LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None))
        with client:
            print(f"{len(client.nthreads())} workers: {client.nthreads()}")
            # device="auto" (the default): each worker trains on its own GPU if it has one, else its CPU.
            # n_jobs=1: parallelism comes from the workers, one fit per worker thread.
            pipe = make_pipeline(
                n_augmentations=args.n_augmentations, max_epochs=args.epochs, n_jobs=1, random_state=0
            ).set_params(**small_net)
            search = GridSearchCV(
                pipe, {"net__lr": [0.001, 0.005]}, cv=GroupKFold(len(np.unique(speakers))),
                scoring=["accuracy", "balanced_accuracy"], refit="balanced_accuracy",
            )
            with joblib.parallel_backend("dask"):
                search.fit(paths, labels, groups=speakers)  # the refit runs here, on this machine
            for params, acc, uar in zip(
                search.cv_results_["params"],
                search.cv_results_["mean_test_accuracy"],
                search.cv_results_["mean_test_balanced_accuracy"],
            ):
                print(f"{params}: accuracy {acc:.3f}, UAR {uar:.3f}")
            print(f"best: {search.best_params_}")

            # batch prediction: the model goes to each worker once; chunks of paths stream through
            result = predict_files(search.best_estimator_, paths, chunk_size=8, client=client, verbose=True)
            print(f"predicted {len(result.paths)} files; accuracy {np.mean(result.labels == labels):.3f}")


if __name__ == "__main__":
    main()
