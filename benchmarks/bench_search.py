"""A grouped grid search run serially and on a 2-worker Dask LocalCluster: wall times and bytes per task.

The search: GridSearchCV over a sersk pipeline, speaker-grouped folds (GroupKFold, one speaker per
fold), on a synthetic corpus of tones written to a temporary folder (or, with --emodb N, the first
N clips of each of 4 Emo-DB speakers). It runs

* serially (one process, torch with every core),
* serially with ``memory=`` (each fold decoded, augmented and featurised once, not once per candidate),
* on a ``LocalCluster`` of 2 worker processes x 1 thread (torch with one thread each) through joblib's
  Dask backend, ``with joblib.parallel_backend("dask"): search.fit(...)``: the first search on a fresh
  cluster (workers import torch and sersk) and a second one.

It prints the wall time of each, the ratio to the serial run, and what was sent to the workers:
the task messages the scheduler sent (a clone of the unfitted pipeline, fold indices, parameters),
the data put on the cluster (joblib scatters the paths and labels once), and the results of any
other tasks, next to the size of the decoded audio a fold would need if it were shipped.

Run: python benchmarks/bench_search.py [--tiny] [--speakers 4 --clips-per-speaker 6 --seconds 1.5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import cloudpickle
import joblib
import numpy as np
import soundfile as sf
import torch
from dask.sizeof import sizeof
from distributed import Client, LocalCluster, WorkerPlugin
from distributed.utils import key_split
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from sersk import AudioLoader, LogMelTransformer, make_pipeline
from sersk.utils.synthetic import make_tone

SAMPLE_RATE = 16000


class DataArrivals(WorkerPlugin):
    """Every piece of data entering a worker's memory: (task name, how it came, bytes)."""

    name = "bench-arrivals"

    def setup(self, worker):
        self.worker, self.log = worker, []

    def transition(self, key, start, finish, **kwargs):
        if finish == "memory" and key in self.worker.data:
            self.log.append((key_split(key), start, sizeof(self.worker.data[key])))


def _scheduler_sent(dask_scheduler) -> int:
    return sum(comm.byte_count for comm in dask_scheduler.stream_comms.values())


def write_corpus(root: Path, n_speakers: int, clips_per_speaker: int, seconds: float):
    """Tones with two 'emotions' (low / high pitch), a different length per clip."""
    paths, labels, speakers = [], [], []
    for s in range(n_speakers):
        for c in range(clips_per_speaker):
            emotion = ("low", "high")[c % 2]
            freq = (220.0 if emotion == "low" else 1800.0) * (1 + 0.02 * s + 0.01 * c)
            path = root / f"spk{s}_{emotion}_{c}.wav"
            sf.write(path, make_tone(freq, seconds * (1 + 0.05 * c)), SAMPLE_RATE)
            paths.append(str(path))
            labels.append(emotion)
            speakers.append(f"spk{s}")
    return np.array(paths), np.array(labels), np.array(speakers)


def emodb_corpus(per_speaker: int):
    from sersk.datasets import fetch_emodb

    emodb = fetch_emodb(download_if_missing=False)
    keep = np.concatenate([np.flatnonzero(emodb.speaker == s)[:per_speaker] for s in np.unique(emodb.speaker)[:4]])
    return np.asarray(emodb.filenames)[keep], np.asarray(emodb.target)[keep], np.asarray(emodb.speaker)[keep]


def make_search(args, n_folds: int, memory=None) -> GridSearchCV:
    # n_jobs=1: the parallelism is the search's; sersk's own decoding/augmentation pools stay off
    pipe = make_pipeline(
        n_augmentations=args.n_augmentations, max_epochs=args.epochs, batch_size=16, device="cpu",
        n_jobs=1, random_state=0, memory=memory,
    ).set_params(net__module__filters=tuple(args.filters))
    grid = {"net__lr": [0.001, 0.005], "net__module__hidden_size": args.hidden_sizes}
    return GridSearchCV(pipe, grid, cv=GroupKFold(n_folds), scoring="accuracy")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def kib(n: float) -> str:
    return f"{n / 1024:8.1f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="3 speakers x 4 clips of 0.8 s, 1 copy, a tiny network")
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--clips-per-speaker", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--emodb", type=int, default=0, metavar="N",
                        help="N real Emo-DB clips of each of 4 speakers (the corpus in $SERSK_DATA)")
    parser.add_argument("--n-augmentations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--filters", type=int, nargs=4, default=(8, 8, 16, 16))
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[16, 32])
    args = parser.parse_args()
    if args.tiny:
        args.speakers, args.clips_per_speaker, args.seconds = 3, 4, 0.8
        args.n_augmentations, args.filters, args.hidden_sizes = 1, (4, 4, 8, 8), [8]

    with tempfile.TemporaryDirectory() as tmp:
        if args.emodb:
            paths, labels, speakers = emodb_corpus(args.emodb)
        else:
            paths, labels, speakers = write_corpus(Path(tmp), args.speakers, args.clips_per_speaker, args.seconds)
        n_folds = len(np.unique(speakers))
        n_candidates = 2 * len(args.hidden_sizes)
        waves = AudioLoader().fit_transform(paths)
        audio_bytes = sum(w.nbytes for w in waves)
        logmel_bytes = sum(m.nbytes for m in LogMelTransformer(device="cpu").fit_transform(waves))
        print(
            f"corpus: {len(paths)} clips, {n_folds} speakers ({n_folds} folds), "
            f"{audio_bytes / len(paths) / 4 / SAMPLE_RATE:.2f} s per clip; "
            f"grid: {n_candidates} candidates x {n_folds} folds = {n_candidates * n_folds} fits + refit; "
            f"{args.n_augmentations} copies per clip, {args.epochs} epoch(s), filters {tuple(args.filters)}"
        )
        print(f"decoded audio: {kib(audio_bytes)} for the corpus, {kib(audio_bytes * (n_folds - 1) / n_folds)} "
              f"per training fold; log-mels {kib(logmel_bytes)}")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{os.cpu_count()} CPU cores (load average {load} before the runs: other processes skew the times); "
              f"serial runs use torch with {torch.get_num_threads()} threads\n")

        make_search(args, n_folds).estimator.fit(paths, labels)  # warm-up: torch's first use
        serial, t_serial = timed(lambda: make_search(args, n_folds).fit(paths, labels, groups=speakers))
        with tempfile.TemporaryDirectory() as cache:
            cached, t_cached = timed(
                lambda: make_search(args, n_folds, memory=cache).fit(paths, labels, groups=speakers)
            )

        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = Client(cluster)
        t_start = time.perf_counter() - t0
        try:
            with joblib.parallel_backend("dask"):
                _, t_cold = timed(lambda: make_search(args, n_folds).fit(paths, labels, groups=speakers))
            client.register_plugin(DataArrivals())
            sent_before = client.run_on_scheduler(_scheduler_sent)
            with joblib.parallel_backend("dask"):
                dask, t_dask = timed(lambda: make_search(args, n_folds).fit(paths, labels, groups=speakers))
            sent = client.run_on_scheduler(_scheduler_sent) - sent_before
            arrivals = [e for log in client.run(lambda dask_worker: dask_worker.plugins[DataArrivals.name].log).values()
                        for e in log]
        finally:
            client.close()
            cluster.close()

    print(f"{'serial':40s} {t_serial:7.1f} s")
    print(f"{'serial, features cached (memory=)':40s} {t_cached:7.1f} s   serial/this {t_serial / t_cached:4.2f}x")
    print(f"{'Dask LocalCluster start':40s} {t_start:7.1f} s")
    print(f"{'Dask, 2 workers x 1 thread, first search':40s} {t_cold:7.1f} s   serial/this {t_serial / t_cold:4.2f}x")
    print(f"{'Dask, 2 workers x 1 thread, next search':40s} {t_dask:7.1f} s   serial/this {t_serial / t_dask:4.2f}x")

    computed = Counter(name for name, how, _ in arrivals if how not in ("released", "flight"))
    fit_tasks = sum(n for name, n in computed.items() if "_fit_and_score" in name)
    other = {name: n for name, n in computed.items() if "_fit_and_score" not in name}
    inputs = sum(nbytes for _, how, nbytes in arrivals if how in ("released", "flight"))
    other_bytes = sum(nbytes for name, how, nbytes in arrivals if name in other and how not in ("released", "flight"))
    n_tasks = sum(computed.values())
    print(f"\nsent to the workers in the second Dask search ({fit_tasks} fit tasks, {n_tasks} tasks in all):")
    print(f"  task messages from the scheduler      {kib(sent)} in all, {kib(sent / max(n_tasks, 1))} per task")
    print(f"  inputs put on the cluster             {kib(inputs)} in all (the paths and labels: scattered once, "
          "copied between workers)")
    print(f"  the unfitted pipeline each fit carries {kib(len(cloudpickle.dumps(clone(dask.estimator))))} pickled")
    print(f"  per fit task, messages + inputs       {kib((sent + inputs) / max(fit_tasks, 1))}"
          f"   vs decoded audio of a training fold {kib(audio_bytes * (n_folds - 1) / n_folds)}")
    if other:
        print(f"  other tasks: {sum(other.values())} ({', '.join(sorted(other))}): their results, decoded audio, "
              f"moved {kib(other_bytes)} between processes")

    same = dask.best_params_ == serial.best_params_
    gap = np.abs(dask.cv_results_["mean_test_score"] - serial.cv_results_["mean_test_score"]).max()
    print(f"\nbest parameters serial {serial.best_params_}, Dask {dask.best_params_} "
          f"({'same' if same else 'DIFFERENT'}); largest difference in mean test accuracy {gap:.4f}")
    print(f"cached run: same best parameters as serial: {cached.best_params_ == serial.best_params_}")


if __name__ == "__main__":
    main()
