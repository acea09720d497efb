"""One GPU per Dask worker: a grid search whose fits each run on their own worker's GPU.

Each worker process sees exactly one GPU (``CUDA_VISIBLE_DEVICES`` set to one device), so inside it
``"cuda"`` is that GPU. sersk's steps default to ``device="auto"``, resolved where they run, at
every fit and predict: a pipeline built here, even on a machine without a GPU, trains on the GPU of
whichever worker runs it, and a model fitted on a GPU loads and predicts on a CPU-only machine.

The cluster is

* dask-cuda's ``LocalCUDACluster`` when dask-cuda is installed (``pip install dask-cuda``): one
  worker per visible GPU;
* otherwise the same by hand: a ``SpecCluster`` with one ``Nanny`` per GPU, each started with its
  own ``CUDA_VISIBLE_DEVICES``;
* with no GPU here, two CPU workers started the same way (``CUDA_VISIBLE_DEVICES=""``), so the
  script runs anywhere.

On several machines, start the workers from the shell instead (see docs/scaling.md)::

    dask scheduler --host 10.0.0.1
    dask cuda worker tcp://10.0.0.1:8786                          # dask-cuda: one worker per GPU
    CUDA_VISIBLE_DEVICES=0 dask worker tcp://10.0.0.1:8786 --nthreads 1 --name gpu0 &   # or by hand
    CUDA_VISIBLE_DEVICES=1 dask worker tcp://10.0.0.1:8786 --nthreads 1 --name gpu1 &

and pass ``--scheduler tcp://10.0.0.1:8786``. Run::

    python examples/dask_gpu_cluster.py [--scheduler ADDRESS] [--data FOLDER_OF_EMODB_WAVS]

As it is, it took 8 s on a 2-core AMD EPYC without a GPU, peak 0.9 GB (benchmarks/results/timings_2026-12-01_zen5_examples.txt); not yet timed with a GPU.
<!-- TIME: python examples/dask_gpu_cluster.py  (one GPU) -->
"""

from __future__ import annotations

import argparse
import re
import logging
import os
import tempfile
from pathlib import Path

import joblib
import numpy as np
import soundfile as sf
import torch
from dask.distributed import Client, Nanny, Scheduler, SpecCluster
from sklearn.model_selection import GridSearchCV, GroupKFold

from sersk import make_pipeline, predict_files
from sersk.utils.synthetic import make_tone


def one_worker_per_gpu():
    """A cluster on this machine with one single-threaded worker process per GPU (2 CPU workers without one)."""
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        pass
    else:
        return LocalCUDACluster(host="127.0.0.1", threads_per_worker=1, dashboard_address=None)
    n_gpus = torch.cuda.device_count()
    devices = [str(i) for i in range(n_gpus)] or ["", ""]  # no GPU: two CPU workers
    workers = {
        (f"gpu{d}" if d else f"cpu{i}"): {
            "cls": Nanny,
            "options": {
                "nthreads": 1, "host": "127.0.0.1", "env": {"CUDA_VISIBLE_DEVICES": d}, "silence_logs": logging.WARNING,
            },
        }
        for i, d in enumerate(devices)
    }
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.WARNING)


def describe_device():
    """Run on a worker: what it sees."""
    import torch

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": name}


def synthetic_corpus(root: Path):
    paths, labels, speakers = [], [], []
    for i in range(24):
        speaker, emotion = f"s{i % 4}", ("low", "high")[(i // 4) % 2]
        path = root / f"{speaker}_{emotion}_{i}.wav"
        sf.write(path, make_tone((220.0 if emotion == "low" else 1800.0) * (1 + 0.02 * i), 1.0), 16000)
        paths.append(str(path))
        labels.append(emotion)
        speakers.append(speaker)
    return np.array(paths), np.array(labels), np.array(speakers)


def main() -> None:
    description = re.sub(r"<!--.*?-->\n", "", __doc__)  # the timing script's markers
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler", help="address of a running scheduler whose workers each see one GPU")
    parser.add_argument("--data", help="a folder of Emo-DB WAVs, or a CSV path,label,speaker, that every worker can read")
    parser.add_argument("--n-augmentations", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            from sersk.datasets import load_corpus

            corpus = load_corpus(args.data)
            paths, labels, speakers = corpus.filenames, corpus.target, corpus.speaker
            if speakers is None:
                parser.error(f"--data {args.data}: no speakers (give Emo-DB file names, or a CSV with a speaker "
                             "column); the search holds out whole speakers")
            small_net = {}
        else:
            paths, labels, speakers = synthetic_corpus(Path(tmp))
            small_net = {"net__module__filters": (8, 8, 16, 16), "net__module__hidden_size": 16}

        with Client(args.scheduler) if args.scheduler else Client(one_worker_per_gpu()) as client:
            for worker, seen in client.run(describe_device).items():
                print(f"{worker}: {seen}")
            # No device is named: "auto" resolves on each worker. n_jobs=1: one fit per worker.
            pipe = make_pipeline(n_augmentations=args.n_augmentations, n_jobs=1, random_state=0).set_params(**small_net)
            search = GridSearchCV(
                pipe, {"net__lr": [0.001, 0.005]}, cv=GroupKFold(4), scoring="balanced_accuracy",
                refit=False,  # the refit would run on this machine; fit the best model on a worker instead
            )
            with joblib.parallel_backend("dask"):
                search.fit(paths, labels, groups=speakers)
            print(f"best: {search.best_params_}, mean cross-validated UAR {search.best_score_:.3f} (chose it)")

            def fit_best(params):  # runs on a worker, on its GPU; comes back loadable on a CPU-only client
                return make_pipeline(n_augmentations=args.n_augmentations, n_jobs=1, random_state=0).set_params(
                    **{**small_net, **params}
                ).fit(paths, labels)

            model = client.submit(fit_best, search.best_params_).result()
            joblib.dump(model, Path(tmp) / "model.joblib")  # predicts wherever it is loaded, GPU or not
            result = predict_files(model, paths, chunk_size=8, client=client)
            accuracy = np.mean(result.labels == labels)
            print(f"predicted {len(result.paths)} files on the workers; accuracy {accuracy:.3f} (on the clips it was trained on)")


if __name__ == "__main__":
    main()
