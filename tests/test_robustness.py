"""Hardening: divergence, interruption, property-based checks of the steps, reproducibility."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skorch.callbacks import Callback

from sersk import AudioLoader, AugmentingResampler, BandStandardizer, CNNLSTMClassifier, LogMelTransformer, make_pipeline
from sersk.exceptions import InconsistentVersionWarning, TrainingDiverged
from sersk.utils.synthetic import make_band_energy_sequences

from small_net import SMALL_NET

SMALL = {**SMALL_NET, "device": "cpu", "random_state": 0}


class NaNLoss(torch.nn.CrossEntropyLoss):
    def forward(self, logits, target):
        return super().forward(logits, target) * float("nan")


def ctrl_c() -> None:
    """Ctrl-C, as the terminal sends it (a callback's ``raise KeyboardInterrupt`` is skorch's way to
    stop training early, as EarlyStopping does, not an interrupt)."""
    signal.raise_signal(signal.SIGINT)


@pytest.fixture(autouse=True)
def _ctrl_c_raises(request):
    """Ctrl-C reaches a foreground command; a shell starts background jobs with SIGINT ignored, so
    give the tests the disposition they have in the foreground, whatever this run inherited."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, inherited))


class InterruptInSecondEpoch(Callback):
    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 2:
            ctrl_c()


@pytest.fixture(scope="module")
def fitted():
    X, y = make_band_energy_sequences(40, random_state=0)
    return CNNLSTMClassifier(**SMALL, max_epochs=1).fit(X, y), X, y


def _weights(clf):
    return {k: v.clone() for k, v in clf.module_.state_dict().items()}


def _assert_unchanged(clf, weights, X, proba):
    for k, v in clf.module_.state_dict().items():
        assert torch.equal(v, weights[k]), k
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_diverging_training_stops_with_a_clear_error_and_keeps_the_model(fitted):
    clf, X, y = fitted
    weights, proba = _weights(clf), clf.predict_proba(X)
    clf.set_params(criterion=NaNLoss)
    try:
        with pytest.raises(TrainingDiverged, match="training diverged: the loss is nan at epoch 1"):
            clf.fit(X, y)
    finally:
        clf.set_params(criterion=torch.nn.CrossEntropyLoss)
    _assert_unchanged(clf, weights, X, proba)


class StopAfterTwoEpochs(Callback):
    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt  # skorch's way to stop training, as EarlyStopping does


def _stop():
    raise KeyboardInterrupt()


class StopThroughAHelper(Callback):
    def on_epoch_end(net_callback, net, **kwargs):  # noqa: N805 - not named self
        if len(net.history) == 2: _stop()  # noqa: E701 - one line


def test_a_callback_stops_training_the_skorch_way_and_the_fit_keeps_what_it_trained():
    """skorch's EarlyStopping raises KeyboardInterrupt to end training; sersk took it for Ctrl-C and
    undid the whole fit, so EarlyStopping could not be used at all."""
    from skorch.callbacks import EarlyStopping

    X, y = make_band_energy_sequences(40, random_state=0)
    for stop in (StopAfterTwoEpochs(), StopThroughAHelper()):
        clf = CNNLSTMClassifier(**SMALL, max_epochs=5, callbacks=[("stop", stop)]).fit(X, y)
        assert len(clf.history) == 2 and clf.predict(X).shape == (40,)
    early = CNNLSTMClassifier(**{**SMALL, "lr": 0.05}, max_epochs=30, validation_fraction=0.25,
                              callbacks=[EarlyStopping(patience=1, load_best=True)]).fit(X, y)
    assert 2 <= len(early.history) < 30 and early.predict(X).shape == (40,)


def test_ctrl_c_through_a_python_handler_that_raises_still_aborts_the_fit(fitted):
    """A Python SIGINT handler that raises KeyboardInterrupt (asyncio's second Ctrl-C) raises it
    from a raise instruction: it was taken for a callback's request to stop, and the fit returned a
    partly trained network."""
    clf, X, y = fitted
    weights, proba = _weights(clf), clf.predict_proba(X)

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)  # the autouse fixture sets the disposition back
    clf.set_params(max_epochs=3, callbacks=[("interrupt", InterruptInSecondEpoch())])
    try:
        with pytest.raises(KeyboardInterrupt, match="fit was interrupted"):
            clf.fit(X, y)
    finally:
        clf.set_params(max_epochs=1, callbacks=None)
    _assert_unchanged(clf, weights, X, proba)
    assert signal.getsignal(signal.SIGINT) is handler  # the fit set its recorder back


def test_skorchs_epoch_scoring_takes_a_metric_of_ones_own():
    """EpochScoring hands predict the validation Dataset, whose labels are encoded: sersk's predict
    refused it ("clip 0 cannot be read as an array"), and its text labels could not be compared."""
    from skorch.callbacks import EpochScoring
    from sklearn.metrics import balanced_accuracy_score

    X, y = make_band_energy_sequences(40, random_state=0)
    X_val, y_val = make_band_energy_sequences(12, random_state=1)

    def uar(net, X, y):
        return balanced_accuracy_score(y, net.predict(X))

    for caching in (True, False):
        clf = CNNLSTMClassifier(**SMALL, max_epochs=2, use_caching=caching, callbacks=[
            EpochScoring("f1_macro", lower_is_better=False), EpochScoring(uar, name="valid_uar", lower_is_better=False),
            EpochScoring("accuracy", on_train=True, name="train_accuracy"),
        ]).fit(X, y, validation_data=(X_val, y_val))
        for name in ("f1_macro", "valid_uar", "train_accuracy"):
            assert all(0 <= score <= 1 for score in clf.history[:, name])
        # the last epoch scored the network as fitted: its predictions of the validation clips
        assert clf.history[-1, "valid_uar"] == pytest.approx(balanced_accuracy_score(y_val, clf.predict(X_val)))
    assert clf.predict(X).dtype == y.dtype  # arrays of clips still get their labels


def test_a_predefined_validation_split_takes_labels_as_fit_does():
    """skorch's predefined_split with the labels as y gives them raised torch's "invalid data type
    'numpy.str_'" (it worked only with labels encoded by hand)."""
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    X, y = make_band_energy_sequences(40, random_state=0)
    X_val, y_val = make_band_energy_sequences(12, random_state=1)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, train_split=predefined_split(Dataset(X_val, y_val))).fit(X, y)
    assert all(0 <= acc <= 1 for acc in clf.history[:, "valid_acc"])
    validated = CNNLSTMClassifier(**SMALL, max_epochs=2).fit(X, y, validation_data=(X_val, y_val))
    assert clf.history[:, "valid_loss"] == pytest.approx(validated.history[:, "valid_loss"])  # the same validation
    with pytest.raises(ValueError, match=r"the validation dataset has labels \['surprise'\] the training data has not"):
        CNNLSTMClassifier(**SMALL, max_epochs=1, train_split=predefined_split(
            Dataset(X_val, np.where(np.arange(12) < 2, "surprise", y_val)))).fit(X, y)


def test_skorchs_save_and_load_of_parameters_into_a_fresh_network_predicts(tmp_path):
    """skorch's pattern, initialize() then load_params(), gave a network that refused to predict
    (NotFittedError) though its weights had loaded; initialize() drew unseeded weights from the
    global generator."""
    from sklearn.exceptions import NotFittedError

    X, y = make_band_energy_sequences(40, random_state=0)
    fitted = CNNLSTMClassifier(**SMALL, max_epochs=1).fit(X, y)
    fitted.save_params(f_params=str(tmp_path / "params.pt"))
    fresh = CNNLSTMClassifier(**SMALL, classes=["class0", "class1"]).initialize()
    fresh.load_params(f_params=str(tmp_path / "params.pt"))
    np.testing.assert_array_equal(fresh.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(fresh.predict(X), fitted.predict(X))
    with pytest.raises(NotFittedError, match=r"built by initialize\(\) .* knows no labels: give classes="):
        CNNLSTMClassifier(**SMALL).initialize().predict(X)
    before = torch.get_rng_state()
    a, b = (CNNLSTMClassifier(**SMALL).initialize().module_.fc.weight for _ in range(2))  # random_state=0
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), before)
    # on a fitted network, new classes build one output each (the old count was built); refused ones change nothing
    weights, proba = _weights(fitted), fitted.predict_proba(X)
    with pytest.raises(ValueError, match="expected a 1-D sequence of distinct labels"):
        fitted.set_params(classes=["class0", "class0", "class1"]).initialize()
    _assert_unchanged(fitted, weights, X, proba)
    with pytest.raises(ValueError, match="module__n_classes=2, but the data has 3"):  # built 2 outputs for 3 labels
        CNNLSTMClassifier(**SMALL, classes=["a", "b", "c"], module__n_classes=2).initialize()
    assert list(fitted.classes_) == ["class0", "class1"]
    three = fitted.set_params(classes=["class0", "class1", "class2"]).initialize()
    assert three.module_.fc.out_features == 3 and three.predict_proba(X).shape == (40, 3)


def test_interrupted_fit_raises_and_keeps_the_previous_model(fitted):
    clf, X, y = fitted
    weights, proba = _weights(clf), clf.predict_proba(X)
    clf.set_params(max_epochs=3, callbacks=[("interrupt", InterruptInSecondEpoch())])
    try:
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y)
    finally:
        clf.set_params(max_epochs=1, callbacks=None)
    assert len(clf.history) == 1
    _assert_unchanged(clf, weights, X, proba)


class RaiseInThisFitsSecondEpoch(Callback):
    """Raise ``error`` as the second epoch of a warm-started fit begins, after one epoch trained."""

    def __init__(self, error):
        self.error = error

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 3:  # one epoch before this fit, one in it, the next begun
            if isinstance(self.error, KeyboardInterrupt):
                ctrl_c()
            raise self.error


@pytest.mark.parametrize("error", [TrainingDiverged("diverged"), KeyboardInterrupt()])
def test_a_failed_warm_start_keeps_the_network_and_the_optimizer(error):
    X, y = make_band_energy_sequences(40, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, warm_start=True).fit(X, y)
    clf.set_params(max_epochs=3, callbacks=[("fail", RaiseInThisFitsSecondEpoch(error))])
    weights, proba, adam = _weights(clf), clf.predict_proba(X), _adam_moments(clf)
    assert len(adam) > 0
    with pytest.raises(type(error)):
        clf.fit(X, y)
    _assert_unchanged(clf, weights, X, proba)
    after = _adam_moments(clf)
    assert after.keys() == adam.keys() and all(torch.equal(after[k], adam[k]) for k in adam)
    assert len(clf.history) == 1


class CountEpochs(Callback):
    def initialize(self):
        self.epochs = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_a_failed_warm_start_keeps_the_callbacks_state():
    X, y = make_band_energy_sequences(40, random_state=0)
    count = CountEpochs()
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, warm_start=True, callbacks=[
        ("count", count), ("fail", RaiseInThisFitsSecondEpoch(TrainingDiverged("diverged")))]).fit(X, y)
    assert count.epochs == 1
    with pytest.raises(TrainingDiverged):
        clf.set_params(max_epochs=3).fit(X, y)
    assert count.epochs == 1  # the failed fit's epoch is not counted (early stopping's would have been)


def test_a_warm_start_continues_a_network_built_by_initialize_or_loaded(tmp_path):
    X, y = make_band_energy_sequences(40, n_classes=7, random_state=0)
    trained = CNNLSTMClassifier(**SMALL, max_epochs=1).fit(X, y)
    trained.save_params(f_params=tmp_path / "w.pt")
    loaded = CNNLSTMClassifier(**SMALL, max_epochs=1, warm_start=True, lr=0.0).initialize()
    loaded.load_params(f_params=tmp_path / "w.pt")
    assert list(loaded.fit(X, y).classes_) == sorted(set(y))
    for (name, kept), saved in zip(loaded.module_.named_parameters(), trained.module_.parameters()):
        assert torch.equal(kept, saved), name  # continued from the loaded weights (lr=0: unchanged)
    with pytest.raises(ValueError, match="continues a network of 7 outputs; this fit has 2 classes"):
        CNNLSTMClassifier(**SMALL, warm_start=True).initialize().fit(*make_band_energy_sequences(20, random_state=0))


def _adam_moments(clf):
    return {(i, k): v.clone() for i, state in clf.optimizer_.state_dict()["state"].items() for k, v in state.items()}


def test_a_warm_start_refuses_other_classes_or_bands_and_classes_fixes_the_outputs():
    X, y = make_band_energy_sequences(40, n_classes=3, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, warm_start=True).fit(X, y)
    two = y != y[0]
    with pytest.raises(ValueError, match="warm_start=True continues a network trained on classes"):
        clf.fit(X[two], y[two])
    with pytest.raises(ValueError, match="trained on 128 bands; this fit's sequences have 64"):
        clf.fit([x[:64] for x in X], y)
    every = CNNLSTMClassifier(**SMALL, max_epochs=1, warm_start=True, classes=np.unique(y)).fit(X[two], y[two])
    assert list(every.classes_) == list(np.unique(y)) and every.predict_proba(X).shape == (len(X), 3)
    every.fit(X, y)  # the same classes: continues
    with pytest.raises(ValueError, match="are not among classes"):
        CNNLSTMClassifier(**SMALL, classes=np.unique(y)[:2]).fit(X, y)
    with pytest.raises(ValueError, match="module__n_classes=5, but the data has 3"):
        CNNLSTMClassifier(**SMALL, module__n_classes=5).fit(X, y)
    with pytest.raises(ValueError, match="max_epochs=0; expected a positive integer"):
        CNNLSTMClassifier(**SMALL, max_epochs=0).fit(X, y)


def test_an_optimizer_setting_on_a_fitted_net_is_recorded_and_spares_the_biases():
    X, y = make_band_energy_sequences(40, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1).fit(X, y)
    clf.set_params(optimizer__weight_decay=0.1)
    assert clf.get_params()["optimizer__weight_decay"] == 0.1
    decays = sorted(group["weight_decay"] for group in clf.optimizer_.param_groups)
    assert decays == [0.0, 0.0, 0.0, 0.1]  # the three bias groups keep none
    with pytest.raises(ValueError, match="Invalid parameter .nonexistent."):
        clf.set_params(optimizer__weight_decay=0.9, nonexistent=1)
    assert clf.get_params()["optimizer__weight_decay"] == 0.1
    assert sorted(group["weight_decay"] for group in clf.optimizer_.param_groups) == decays
    clf.set_params(optimizer__weight_decay=0.2, module__hidden_size=8)  # the optimizer is built anew
    assert sorted(group["weight_decay"] for group in clf.optimizer_.param_groups) == [0.0, 0.0, 0.0, 0.2]


def test_a_label_never_seen_in_training_counts_as_an_error_at_score(fitted):
    clf, X, y = fitted
    y_unseen = np.array(["surprise"] * len(y))
    assert clf.score(X, y_unseen) == 0.0
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_samples=st.integers(2048, 12000),
    amplitude=st.floats(1e-4, 1e2),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_log_mels_of_any_length_amplitude_and_float_dtype(n_samples, amplitude, dtype, seed):
    x = (amplitude * np.random.default_rng(seed).uniform(-1, 1, n_samples)).astype(dtype)
    out = LogMelTransformer().fit_transform([x])[0]
    assert out.shape == (128, 1 + (n_samples - 2048) // 512) and out.dtype == np.float32
    assert np.isfinite(out).all()
    # power scales with amplitude squared: log-mels shift by 2 log(scale) wherever power >> eps
    scaled = LogMelTransformer().fit_transform([x.astype(np.float32) * 2])[0]
    loud = out > np.log(1e-10)
    assert loud.any()  # something to compare
    np.testing.assert_allclose(scaled[loud] - out[loud], 2 * np.log(2), atol=1e-3)


@settings(max_examples=20, deadline=None)
@given(n_samples=st.integers(1, 5000), dtype=st.sampled_from([np.float16, np.float32, np.float64]))
def test_loader_passes_any_float_waveform_through_as_float32(n_samples, dtype):
    x = np.random.default_rng(n_samples).uniform(-1, 1, n_samples).astype(dtype)
    out = AudioLoader(normalize=None, min_samples=1).fit_transform([x])[0]
    assert out.dtype == np.float32 and out.shape == (n_samples,)
    np.testing.assert_array_equal(out, x.astype(np.float32))


@settings(max_examples=10, deadline=None)
@given(n_samples=st.integers(4000, 16000), amplitude=st.floats(1e-3, 10.0), seed=st.integers(0, 1000))
def test_augmented_copies_keep_length_and_have_peak_one(n_samples, amplitude, seed):
    x = (amplitude * np.random.default_rng(seed).uniform(-1, 1, n_samples)).astype(np.float32)
    X_res, y_res = AugmentingResampler(n_augmentations=2, random_state=seed).fit_resample([x], ["a"])
    copies = X_res[0:2]
    assert list(y_res) == ["a", "a"]
    for c in copies:
        assert c.shape == (n_samples,) and np.isfinite(c).all()
        assert np.abs(c).max() == pytest.approx(1.0, abs=1e-6)


def test_whole_pipeline_is_reproducible_whatever_n_jobs(emodb_wavs):
    # exact on any processor because 16 copies make one task, which runs in this process either way;
    # past _MAP_BATCH_COPIES copies, workers with another torch thread count would make the log-mels
    paths = [str(p) for p in emodb_wavs[::60][:8]]
    labels = [p.split("/")[-1][5] for p in paths]
    params = {"net__module__filters": (4, 4, 8, 8), "net__module__hidden_size": 8, "net__max_epochs": 1}
    fits = [
        make_pipeline(n_augmentations=2, n_jobs=n_jobs, random_state=0, device="cpu").set_params(**params).fit(paths, labels)
        for n_jobs in (1, 2)
    ]
    for a, b in zip(fits[0][-1].module_.state_dict().values(), fits[1][-1].module_.state_dict().values()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(fits[0].predict_proba(paths), fits[1].predict_proba(paths))


def _fitted_network():
    X, y = make_band_energy_sequences(16, random_state=0)
    return CNNLSTMClassifier(**SMALL_NET, max_epochs=1, device="cpu").fit(X, y)


@pytest.mark.parametrize(
    "make",
    [AudioLoader, AugmentingResampler, lambda: LogMelTransformer().fit(), BandStandardizer, CNNLSTMClassifier,
     _fitted_network, lambda: make_pipeline("tuned")],
    ids=["AudioLoader", "AugmentingResampler", "LogMelTransformer", "BandStandardizer", "CNNLSTMClassifier",
         "fitted CNNLSTMClassifier", "EmotionPipeline"],
)
def test_a_model_pickled_by_another_sersk_version_warns_when_loaded(make, monkeypatch):
    """scikit-learn warns for its own estimators only (those defined in ``sklearn``): a sersk model
    of another version loaded silently."""
    import pickle
    import warnings

    from sersk.utils import _version

    data = pickle.dumps(make())
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = pickle.loads(data)  # the same version: no warning
    assert "_sersk_version" not in vars(loaded) and "_library_versions" not in vars(loaded)
    monkeypatch.setattr(_version, "__version__", "99.0")
    with pytest.warns(InconsistentVersionWarning, match=r"saved by sersk \d.* is loaded by sersk 99\.0: it may not predict"):
        pickle.loads(data)
    monkeypatch.undo()
    # another scikit-learn (or skorch, or torch) than the one it was saved by: named too (it loaded silently)
    import sklearn

    monkeypatch.setattr(sklearn, "__version__", "9.9")
    with pytest.warns(InconsistentVersionWarning, match=r"saved by scikit-learn \d[^ ]* is loaded by scikit-learn "
                      r"9\.9: it may not"):
        pickle.loads(data)
    monkeypatch.undo()
    # a pickle of an earlier sersk, which recorded sersk's version only, is compared on it
    state = {**AudioLoader().__getstate__(), "_sersk_version": "0.0.1"}
    del state["_library_versions"]
    with pytest.warns(InconsistentVersionWarning, match=r"saved by sersk 0\.0\.1 is loaded by sersk \d"):
        AudioLoader.__new__(AudioLoader).__setstate__(state)


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_a_model_file_that_cannot_be_unpickled_names_the_versions_it_was_saved_by(compress, tmp_path, monkeypatch):
    """Unpickling can fail before any estimator's recorded versions are read (a class another version
    moved or renamed); load_model could only say that versions might be the cause. It reads them
    from the file now, without running it."""
    import sklearn

    from sersk import features, load_model, save_model

    path = tmp_path / "m.joblib"
    monkeypatch.setattr(sklearn, "__version__", "9.9")
    save_model(make_pipeline("tuned"), path, compress=compress)
    monkeypatch.undo()
    monkeypatch.delattr(features, "LogMelTransformer")  # as if it had moved in this version
    with pytest.warns(InconsistentVersionWarning), pytest.raises(  # the warning: steps unpickled before the failure
            ValueError, match=r"cannot be unpickled \(AttributeError: .*LogMelTransformer.*\): it was "
                       r"saved by scikit-learn 9\.9 \(here: scikit-learn \d[^)]*\), which it may need"):
        load_model(path)
    # saved by the versions installed here, the file is corrupt; and one that records none is either
    monkeypatch.undo()
    save_model(make_pipeline("tuned").set_params(net=_fitted_network()), path)  # pickle frames end before arrays
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"it is truncated or corrupt \(it was saved by the versions of its "
                       r"libraries installed here\)"):
        load_model(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"it is truncated or corrupt, or needs versions of its libraries"):
        load_model(path)
    # the same versions, a class not found (a step of one's own, a class moved in a dev install): not corrupt
    save_model(make_pipeline("tuned"), path)
    monkeypatch.delattr(features, "LogMelTransformer")
    with pytest.raises(ValueError, match=r"\(AttributeError: .*\): it names a class or module that cannot be found "
                                         r"here: a step of one's own must be importable"):
        load_model(path)


def test_a_model_of_another_version_warns_once_per_load_under_pythons_default_filter(tmp_path):
    """Every estimator of a pipeline warns; shown from one place, Python prints it once (it printed
    it twice: from the pickle machinery and from the network's own __setstate__)."""

    code = f"""
import joblib, warnings
import sersk.utils._version as version
from sersk import make_pipeline
joblib.dump(make_pipeline("tuned"), {str(tmp_path / "m.joblib")!r})
version.__version__ = "99.0"
joblib.load({str(tmp_path / "m.joblib")!r})
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("InconsistentVersionWarning") == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX's")
def test_a_child_forked_while_other_threads_use_sersk_finds_its_locks_free_and_its_state_whole():
    """A ``multiprocessing`` fork while another thread augmented copied the held lock into the child,
    which then waited for ever at its first augmentation; and audiomentations' modules were left
    drawing from that thread's private generator. A fit open in another thread at the fork kept the
    child's own seeded fit from restoring torch's generator, and sersk's malloc settings in force
    for the child's life. (A concurrency review and a diff review.)
    Run in a fresh interpreter that runs no parallel torch operation: a child forked after torch's
    parallel work can hang in torch's OpenMP runtime, whatever sersk does."""
    code = """
import os, random, sys, threading, time
import torch
from sersk import augment
from sersk.nn import classifier
from sersk.utils import _device, _malloc
locks = [augment._BATCH_LOCK, augment._PROGRESS_LOCK, _malloc._lock, _device._cudnn_lock,
         _device._generators_lock, classifier._DEVICE_LOCK]
import audiomentations  # its modules are the ones sersk points at a private generator
inside, fit_open, done = threading.Event(), threading.Event(), threading.Event()
def augmenting():
    with augment._BATCH_LOCK, augment._private_python_random(random.Random(0)):
        for lock in locks[1:]:
            lock.acquire()
        inside.set()
        time.sleep(0.5)  # the fork comes meanwhile
        for lock in locks[1:]:
            lock.release()
def fitting():
    with _device.generators_restored([]), _malloc.reuse_freed_memory():
        torch.manual_seed(5)
        fit_open.set()
        done.wait()
threads = [threading.Thread(target=fitting), threading.Thread(target=augmenting)]
threads[0].start()
fit_open.wait()
threads[1].start()
inside.wait()
pid = os.fork()
if pid == 0:
    free = all(lock.acquire(timeout=5) and (lock.release() or True) for lock in locks)
    drawing = [m for n, m in list(sys.modules.items()) if n.startswith("audiomentations") and hasattr(m, "random")]
    whole = bool(drawing)
    for module in drawing:  # each draws from the process's random, not the augmenting thread's generator
        random.seed(3)
        whole &= module.random.random() == random.Random(3).random()
    before = torch.get_rng_state()
    with _device.generators_restored([]):
        torch.manual_seed(1)
    restored = torch.equal(torch.get_rng_state(), before) and _malloc._depth == 0
    os._exit(0 if (free, whole, restored) == (True, True, True) else 10 + 4 * free + 2 * whole + restored)
_, status = os.waitpid(pid, 0)
done.set()
for thread in threads:  # ended before the interpreter (a thread still in torch as it shuts down aborts it)
    thread.join()
sys.exit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
