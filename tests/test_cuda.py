"""A fit on CUDA: seeded, featurised as on the CPU, and loadable without CUDA; skipped without a GPU.

The network's training pass on CUDA is checked against the eager recipe in test_nn_equivalence.py.

CI has no GPU, so these run only where a person (or the GPU check in
``benchmarks/gpu_check.sh``) runs the tests on a machine with one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch

from sersk import CNNLSTMClassifier, LogMelTransformer
from sersk.utils.synthetic import make_band_energy_sequences

from small_net import SMALL_NET as SMALL

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _cudnn_settings():
    from sersk.utils._device import _cudnn_settings

    return _cudnn_settings()


def test_seeded_cuda_fit_is_reproducible_and_restores_cudnn_settings():
    X, y = make_band_energy_sequences(48, random_state=0)
    settings = _cudnn_settings()
    a = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=3, device="cuda").fit(X, y)
    assert _cudnn_settings() == settings
    b = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=3, device="cuda").fit(X, y)
    assert next(a.module_.parameters()).is_cuda
    for (name, pa), pb in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_cuda_features_match_the_cpu_features():
    rng = np.random.default_rng(0)
    waves = [rng.normal(scale=0.3, size=n).astype(np.float32) for n in (4000, 16000, 9000)]
    on_cuda = LogMelTransformer(device="cuda").fit_transform(waves)
    on_cpu = LogMelTransformer(device="cpu").fit_transform(waves)
    for a, b in zip(on_cuda, on_cpu):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
        assert a.flags.c_contiguous and a.flags.owndata and a.dtype == np.float32


def test_model_fitted_on_cuda_predicts_the_same_on_a_machine_without_cuda(tmp_path):
    X, y = make_band_energy_sequences(48, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=0).fit(X, y)  # device "auto": CUDA here
    assert next(clf.module_.parameters()).is_cuda
    joblib.dump(clf, tmp_path / "clf.joblib")
    joblib.dump((X, clf.predict_proba(X)), tmp_path / "data.joblib")
    script = (
        "import joblib, numpy as np, torch; assert not torch.cuda.is_available();"
        f"clf = joblib.load({str(tmp_path / 'clf.joblib')!r}); X, proba = joblib.load({str(tmp_path / 'data.joblib')!r});"
        "np.testing.assert_allclose(clf.predict_proba(X), proba, atol=1e-5);"
        "print(next(clf.module_.parameters()).device)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cpu"


def test_a_loaded_cuda_model_keeps_its_lstm_weights_in_one_block(tmp_path):
    X, y = make_band_energy_sequences(48, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cuda").fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert not [w for w in caught if "contiguous chunk" in str(w.message)]


@pytest.mark.parametrize("random_state", [0, None])
def test_cuda_predictions_do_not_depend_on_the_batch_and_leave_tf32_as_it_was(random_state):
    X, y = make_band_energy_sequences(64, frames=(16, 120), random_state=0)
    settings = _cudnn_settings()
    clf = CNNLSTMClassifier(max_epochs=1, random_state=random_state, device="cuda", verbose=0).fit(X, y)
    together = clf.predict_proba(X)
    alone = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert _cudnn_settings() == settings


@pytest.mark.parametrize("fitted_on, moved_to", [("cpu", "auto"), ("cuda", "cpu")])
def test_a_fitted_model_follows_a_new_device_setting(fitted_on, moved_to):
    X, y = make_band_energy_sequences(48, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device=fitted_on).fit(X, y)
    expected = clf.predict_proba(X)
    clf.set_params(device=moved_to)
    kind = "cuda" if moved_to == "auto" else moved_to
    assert next(clf.module_.parameters()).device.type == kind
    assert all(v.device.type == kind for s in clf.optimizer_.state.values() for k, v in s.items() if k != "step")
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-5)
    clf.set_params(warm_start=True).fit(X, y)  # trains on, on the new device
