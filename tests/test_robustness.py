"""Hardening: divergence, interruption, property-based checks of the steps, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skorch.callbacks import Callback

from sersk import AudioLoader, AugmentingResampler, CNNLSTMClassifier, LogMelTransformer, make_pipeline
from sersk.exceptions import TrainingDiverged
from sersk.utils.synthetic import make_band_energy_sequences

from small_net import SMALL_NET

SMALL = {**SMALL_NET, "device": "cpu", "random_state": 0}


class NaNLoss(torch.nn.CrossEntropyLoss):
    def forward(self, logits, target):
        return super().forward(logits, target) * float("nan")


class InterruptInSecondEpoch(Callback):
    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


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


def test_a_label_never_seen_in_training_counts_as_an_error_at_score(fitted):
    clf, X, y = fitted
    y_unseen = np.array(["surprise"] * len(y))
    assert clf.score(X, y_unseen) == 0.0
    assert 0.0 <= clf.score(X, y) <= 1.0


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
