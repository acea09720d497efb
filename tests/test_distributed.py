"""Scaling out on Dask: searches through joblib's Dask backend, predict_files(client=...), pickling.

One real ``dask.distributed.LocalCluster`` (2 worker processes, 1 thread each, 127.0.0.1 only)
serves the whole module. The workers run torch with one thread (Dask sets ``OMP_NUM_THREADS=1``),
so the local runs they are compared with use one thread too: float sums in the convolutions
depend on the thread count.
"""

from __future__ import annotations

import pickle
import sys
import threading

import joblib
import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, RandomizedSearchCV, cross_validate

from sersk import AudioLoader, AugmentingResampler, make_pipeline, predict_files
from sersk.utils.synthetic import make_tone

from predictions import assert_labels_agree_where_decided

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
from dask.sizeof import sizeof  # noqa: E402
from distributed.utils import key_split  # noqa: E402

SAMPLE_RATE = 16000
CLIP_SECONDS = 0.8
DECODED_CLIP_BYTES = int(CLIP_SECONDS * SAMPLE_RATE) * 4  # one decoded float32 clip: 51,200 bytes
SMALL = {
    "net__module__filters": (4, 4, 8, 8),
    "net__module__hidden_size": 8,
    "net__max_epochs": 1,
    "net__batch_size": 8,
    "net__device": "cpu",
    "logmel__device": "cpu",
    "augment__n_augmentations": 1,
}
# The search comparisons switch the random augmentations off: see test_augmentation_on_a_worker_matches_local.
NO_RANDOM_AUGMENTATION = {"augment__pitch_shift_p": 0.0, "augment__noise_p": 0.0, "augment__time_shift_p": 0.0}
GRID = {"net__lr": [0.001, 0.01]}
SCORING = ["accuracy", "neg_log_loss"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 tones of 0.8 s: 3 speakers x 2 emotions x 2 clips, as paths on a filesystem the workers share."""
    root = tmp_path_factory.mktemp("corpus")
    paths, labels, speakers = [], [], []
    for i in range(12):
        speaker, emotion = f"s{i % 3}", ["low", "high"][(i // 3) % 2]
        path = root / f"{speaker}_{emotion}_{i}.wav"
        sf.write(path, make_tone((220.0 if emotion == "low" else 1800.0) * (1 + 0.03 * i), CLIP_SECONDS), SAMPLE_RATE)
        paths.append(str(path))
        labels.append(emotion)
        speakers.append(speaker)
    return np.array(paths), np.array(labels), np.array(speakers)


@pytest.fixture(scope="module")
def cluster():
    """A real cluster: 2 worker processes x 1 thread, every socket on 127.0.0.1, no dashboard."""
    # functions and plugins defined here travel by value: the workers cannot import this test module
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield cluster, client
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def client(cluster):
    return cluster[1]


@pytest.fixture
def one_torch_thread():
    """Run local computations with one torch thread, as each Dask worker does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted(corpus):
    """A small fitted pipeline whose steps choose their device where they run (``device="auto"``)."""
    paths, labels, _ = corpus
    auto = {"net__device": "auto", "logmel__device": "auto"}
    return make_pipeline(random_state=0).set_params(**{**SMALL, **auto}).fit(paths, labels)


def small_pipeline(**params):
    # n_jobs=1: no loky pool for augmentation in the refit, which runs on the client inside the Dask block
    return make_pipeline(n_jobs=1, random_state=0).set_params(**{**SMALL, **NO_RANDOM_AUGMENTATION, **params})


class DataArrivals(distributed.WorkerPlugin):
    """Records every piece of data that enters a worker's memory: (task name, how it came, bytes)."""

    name = "sersk-test-arrivals"

    def setup(self, worker):
        self.worker, self.log = worker, []

    def transition(self, key, start, finish, **kwargs):
        if finish == "memory" and key in self.worker.data:
            self.log.append((key_split(key), start, sizeof(self.worker.data[key])))


def _scheduler_sent(dask_scheduler) -> int:
    return sum(comm.byte_count for comm in dask_scheduler.stream_comms.values())


def record_arrivals(client, run):
    """Run ``run()``; return what entered the workers' memory and the task bytes the scheduler sent."""
    client.register_plugin(DataArrivals())
    before = client.run_on_scheduler(_scheduler_sent)
    result = run()
    sent = client.run_on_scheduler(_scheduler_sent) - before
    arrivals = client.run(lambda dask_worker: dask_worker.plugins[DataArrivals.name].log)
    client.unregister_worker_plugin(DataArrivals.name)
    return result, [entry for log in arrivals.values() for entry in log], sent


# ---- 1. searches on the cluster give the local results -------------------------------------------


@pytest.mark.parametrize(
    "make_search",
    [
        lambda pipe: GridSearchCV(pipe, GRID, cv=GroupKFold(3), scoring=SCORING, refit="neg_log_loss"),
        lambda pipe: RandomizedSearchCV(
            pipe, {"net__lr": [0.001, 0.003, 0.01, 0.03]}, n_iter=2, cv=GroupKFold(3), scoring=SCORING,
            refit="neg_log_loss", random_state=0,
        ),
    ],
    ids=["GridSearchCV", "RandomizedSearchCV"],
)
def test_search_on_dask_matches_the_local_search(corpus, client, one_torch_thread, make_search):
    paths, labels, speakers = corpus
    local = make_search(small_pipeline()).fit(paths, labels, groups=speakers)
    with joblib.parallel_backend("dask"):
        remote = make_search(small_pipeline()).fit(paths, labels, groups=speakers)
    assert remote.best_params_ == local.best_params_
    assert remote.cv_results_["params"] == local.cv_results_["params"]
    for name in SCORING:
        for k in range(3):
            key = f"split{k}_test_{name}"
            np.testing.assert_allclose(remote.cv_results_[key], local.cv_results_[key], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(remote.cv_results_[f"rank_test_{name}"], local.cv_results_[f"rank_test_{name}"])
    # the candidates really differ, so the choice of the best one is a real check
    assert np.ptp(local.cv_results_["mean_test_neg_log_loss"]) > 1e-4
    np.testing.assert_allclose(remote.predict_proba(paths), local.predict_proba(paths), rtol=0, atol=1e-6)


def test_cross_validate_on_dask_ships_paths_and_parameters_not_audio(corpus, client, one_torch_thread):
    paths, labels, speakers = corpus
    pipe = small_pipeline()
    local = cross_validate(pipe, paths, labels, groups=speakers, cv=GroupKFold(3), scoring=SCORING)

    def run():
        with joblib.parallel_backend("dask"):
            return cross_validate(pipe, paths, labels, groups=speakers, cv=GroupKFold(3), scoring=SCORING)

    remote, arrivals, sent = record_arrivals(client, run)
    for name in SCORING:
        np.testing.assert_allclose(remote[f"test_{name}"], local[f"test_{name}"], rtol=0, atol=1e-6)
    fits = [entry for entry in arrivals if "_fit_and_score" in entry[0]]
    assert len(fits) >= 1
    # inputs put on the cluster (joblib scatters the arguments over 1 kB once): the paths and labels,
    # a few kB, where the decoded corpus is 12 x 51 kB
    inputs = sum(nbytes for _, how, nbytes in arrivals if how in ("released", "flight"))
    assert inputs < 16_000 < DECODED_CLIP_BYTES
    # what the scheduler sent the workers (task specs: a clone of the unfitted pipeline, fold indices,
    # parameters), per fold: less than one decoded clip
    assert len(pickle.dumps(clone(pipe))) < 10_000
    assert sent / 3 < DECODED_CLIP_BYTES


def test_no_decoded_audio_crosses_the_wire_in_a_search(corpus, client):
    paths, labels, speakers = corpus

    def run():
        with joblib.parallel_backend("dask"):
            return cross_validate(small_pipeline(), paths, labels, groups=speakers, cv=GroupKFold(3))

    _, arrivals, _ = record_arrivals(client, run)
    tasks = {name for name, how, _ in arrivals if how not in ("released", "flight")}
    assert max(nbytes for _, _, nbytes in arrivals) < DECODED_CLIP_BYTES
    assert all("_fit_and_score" in name for name in tasks), tasks


def _augment_on_a_busy_worker(paths, labels):
    """Augmented copies, computed while another thread of the process uses dask.sizeof (as a worker's
    event loop does for every result it stores)."""
    stop = threading.Event()

    def measure():
        while not stop.is_set():
            sizeof(list(range(64)))  # samples the list with the global `random`

    thread = threading.Thread(target=measure)
    thread.start()
    try:
        waves = AudioLoader().fit_transform(paths)
        copies, _ = AugmentingResampler(n_augmentations=20, random_state=0).fit_resample(waves, labels)
        return [copy.copy() for copy in copies]
    finally:
        stop.set()
        thread.join()


def test_augmentation_on_a_worker_matches_local(corpus, client):
    paths, labels, _ = corpus
    waves = AudioLoader().fit_transform(paths)
    local, _ = AugmentingResampler(n_augmentations=20, random_state=0).fit_resample(waves, labels)
    remote = client.submit(_augment_on_a_busy_worker, paths, labels, pure=False).result()
    for a, b in zip(local, remote):
        np.testing.assert_array_equal(a, b)


# ---- 2. fitted models travel to workers -------------------------------------------------------------


def test_fitted_pipeline_round_trips_to_a_worker_and_picks_its_device(corpus, client, fitted, one_torch_thread):
    paths, _, _ = corpus
    future = client.submit(lambda m, p: (m.predict(p), m.predict_proba(p), m[-1].device), fitted, list(paths))
    labels, proba, device = future.result()
    here = fitted.predict_proba(paths)
    np.testing.assert_allclose(proba, here, rtol=0, atol=1e-6)
    assert_labels_agree_where_decided(proba, here, labels, fitted.predict(paths))
    assert device == "auto"  # resolved on the worker at each fit/predict, not fixed on the client


# ---- 4. batch prediction on the cluster --------------------------------------------------------------


class PendingChunks(distributed.SchedulerPlugin):
    """The most prediction chunks the scheduler held at once, submitted but not finished."""

    name = "sersk-test-pending-chunks"

    def __init__(self):
        self.pending, self.most = set(), 0

    def transition(self, key, start, finish, *args, **kwargs):
        if not str(key).startswith("_predict_chunk-"):
            return
        if finish in ("waiting", "queued", "no-worker", "processing"):
            self.pending.add(key)
        else:
            self.pending.discard(key)
        self.most = max(self.most, len(self.pending))


def test_predict_files_on_dask_matches_local_and_bounds_the_chunks_in_flight(
    corpus, cluster, fitted, one_torch_thread, capsys, monkeypatch
):
    local_cluster, client = cluster
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # the bar shows on a terminal only
    paths = list(corpus[0]) * 4  # 48 files, 12 chunks of 4
    plugin = PendingChunks()
    local_cluster.scheduler.add_plugin(plugin)
    try:
        remote = predict_files(fitted, paths, chunk_size=4, client=client, verbose=True)
    finally:
        local_cluster.scheduler.remove_plugin(name=PendingChunks.name)
    local = predict_files(fitted, paths, chunk_size=4)
    assert remote.paths == local.paths == paths
    np.testing.assert_allclose(remote.proba, local.proba, rtol=0, atol=1e-6)
    assert_labels_agree_where_decided(remote.proba, local.proba, remote.labels, local.labels)
    np.testing.assert_array_equal(remote.classes, local.classes)
    assert remote.errors == local.errors == {}
    assert 1 <= plugin.most <= 2 * sum(client.nthreads().values())
    assert "48/48" in capsys.readouterr().err


def test_predict_files_on_dask_skips_or_raises_on_bad_files_like_local(corpus, client, fitted, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    paths = [*corpus[0][:5], str(broken), *corpus[0][5:8]]
    remote = predict_files(fitted, paths, chunk_size=3, skip_errors=True, client=client)
    local = predict_files(fitted, paths, chunk_size=3, skip_errors=True)
    assert remote.paths == local.paths and len(remote.paths) == 8
    assert remote.errors == local.errors and list(remote.errors) == [str(broken)]
    with pytest.raises(Exception) as local_error:
        predict_files(fitted, paths, chunk_size=3)
    with pytest.raises(type(local_error.value), match="broken.wav"):
        predict_files(fitted, paths, chunk_size=3, client=client)
