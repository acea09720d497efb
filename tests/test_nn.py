"""The CNN-LSTM module, left-padding collation and CNNLSTMClassifier."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sersk import AudioLoader, CNNLSTM, CNNLSTMClassifier, LeftPadCollate, LogMelTransformer
from sersk.nn.collate import padded_frames, split_to_budget
from sersk.utils.synthetic import make_band_energy_sequences

from predictions import assert_labels_agree_where_decided
from small_net import SMALL_NET as SMALL


@pytest.fixture(scope="module")
def emodb_log_mels(emodb_wavs):
    """Real log-mels of 40 clips spanning Emo-DB's range of lengths."""
    lengths = [p.stat().st_size for p in emodb_wavs]
    picks = [emodb_wavs[i] for i in np.argsort(lengths)[:: len(lengths) // 40][:40]]
    X = LogMelTransformer().fit_transform(AudioLoader().fit_transform(picks))
    y = np.array([p.name[5] for p in picks])
    return X, y


def test_batch_norm_momentum_none_keeps_a_cumulative_average_as_torchs_does():
    """``momentum=None`` is an ``nn.BatchNorm2d`` setting (a cumulative average of the batches'
    statistics); the masked batch norm raised TypeError from ``lerp_`` on it."""
    import copy

    torch.manual_seed(0)
    net = CNNLSTM(filters=(4, 4, 8, 8), hidden_size=8).train()
    batches = [(torch.randn(3, 128, 32), torch.tensor([32, 20, 9])) for _ in range(2)]
    per_batch = []
    for x, lengths in batches:  # momentum 1: each batch's own statistics
        alone = copy.deepcopy(net)
        for block in alone.blocks:
            block.bn.momentum = 1.0
        alone(x, lengths)
        per_batch.append([(b.bn.running_mean.clone(), b.bn.running_var.clone()) for b in alone.blocks])
    for block in net.blocks:
        block.bn.momentum = None
    for x, lengths in batches:
        net(x, lengths)
    for level, block in enumerate(net.blocks):
        (mean_a, var_a), (mean_b, var_b) = per_batch[0][level], per_batch[1][level]
        torch.testing.assert_close(block.bn.running_mean, (mean_a + mean_b) / 2)
        torch.testing.assert_close(block.bn.running_var, (var_a + var_b) / 2)


def test_block_shapes_follow_the_recipe():
    net = CNNLSTM()
    h = torch.zeros(2, 1, 128, 87)
    shapes = []
    for block in net.blocks:
        h = block(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes == [(64, 64, 43), (64, 16, 21), (128, 4, 10), (128, 1, 5)]
    assert net.lstm.input_size == 128 and net.lstm.hidden_size == 256
    assert net(torch.zeros(2, 128, 87), torch.tensor([87, 60])).shape == (2, 7)


def test_initialisation_follows_the_recipe():
    net = CNNLSTM()
    hidden = net.lstm.hidden_size
    assert torch.all(net.blocks[0].conv.bias == 0) and torch.all(net.fc.bias == 0)
    bias = net.lstm.bias_ih_l0 + net.lstm.bias_hh_l0
    assert torch.all(bias[hidden : 2 * hidden] == 1) and torch.all(bias[:hidden] == 0)
    w_hh = net.lstm.weight_hh_l0[:hidden]
    torch.testing.assert_close(w_hh @ w_hh.T, torch.eye(hidden), atol=1e-4, rtol=0)
    bound = np.sqrt(6 / (64 * 9 + 64 * 9))  # glorot-uniform limit for a 64->64 3x3 conv
    assert net.blocks[1].conv.weight.abs().max() <= bound


def test_left_padding_puts_real_frames_last():
    seqs = [np.full((3, n), n + 1.0, np.float32) for n in (2, 5, 20)]
    inputs, y = LeftPadCollate(min_frames=16, multiple=1)([(s, i) for i, s in enumerate(seqs)])
    x = inputs["x"]
    assert x.shape == (3, 3, 20) and inputs["lengths"].tolist() == [2, 5, 20] and y.tolist() == [0, 1, 2]
    for row, n in enumerate((2, 5, 20)):
        assert torch.all(x[row, :, 20 - n :] == n + 1) and torch.all(x[row, :, : 20 - n] == 0)
    short, _ = LeftPadCollate(min_frames=16, multiple=16)([(seqs[0], 0)])
    assert short["x"].shape[-1] == 16
    padded, _ = LeftPadCollate(min_frames=16, multiple=16)([(seqs[2], 0)])
    assert padded["x"].shape[-1] == 32
    assert LeftPadCollate()([(seqs[0], None)])[1] is None  # no labels at predict time


def test_masked_network_pads_a_batch_to_whole_pooling_windows_itself():
    torch.manual_seed(0)
    net = CNNLSTM(filters=(4, 4, 4, 4), hidden_size=4, n_classes=2).eval()
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(128, 17)).astype(np.float32), rng.normal(size=(128, 1)).astype(np.float32)
    with torch.no_grad():
        logits = {
            multiple: net(**LeftPadCollate(multiple=multiple)([(a, 0), (b, 0)])[0]) for multiple in (1, net.time_factor)
        }
        louder = net(**LeftPadCollate()([(a, 0), (b + 100, 0)])[0])
    torch.testing.assert_close(logits[1], logits[net.time_factor])  # 17 frames padded as 32 would be
    assert not torch.allclose(louder[1], logits[1][1])  # the 1-frame clip is read, not floored away


def test_numpy_integer_sizes_build_the_network():
    """A grid of np.arange sizes passed the checks, then torch's LSTM refused an int64 hidden_size."""
    X, y = make_band_energy_sequences(8, random_state=0)
    sizes = dict(module__filters=np.array([4, 4, 8, 8]), module__hidden_size=np.int64(8), module__n_mels=np.int64(128),
                 module__pools=np.array([[2, 2], [4, 2], [4, 2], [4, 2]]))
    clf = CNNLSTMClassifier(**sizes, max_epochs=1, verbose=0, random_state=0, device="cpu").fit(X, y)
    assert clf.module_.lstm.hidden_size == 8 and type(clf.module_.lstm.hidden_size) is int
    assert [block.conv.out_channels for block in clf.module_.blocks] == [4, 4, 8, 8]


def test_learns_a_synthetic_task_quickly():
    X, y = make_band_energy_sequences(300, n_classes=3, random_state=0)
    X_test, y_test = make_band_energy_sequences(100, n_classes=3, random_state=1)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=3, random_state=0, device="cpu").fit(X, y)
    assert set(clf.classes_) == {"class0", "class1", "class2"}
    assert clf.score(X_test, y_test) >= 0.95


def test_string_labels_probabilities_and_history():
    X, y = make_band_energy_sequences(64, random_state=0)
    X_val, y_val = make_band_energy_sequences(20, random_state=1)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=0, device="cpu")
    clf.fit(X, y, validation_data=(X_val, y_val))
    proba = clf.predict_proba(X_val)
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert clf.predict(X_val).dtype == y.dtype and set(clf.predict(X_val)) <= {"class0", "class1"}
    np.testing.assert_array_equal(clf.predict(X_val), clf.classes_[proba.argmax(axis=1)])
    assert len(clf.history) == 2
    assert {"train_loss", "train_acc", "valid_loss", "valid_acc"} <= set(clf.history[-1])


def test_training_accuracy_is_skorchs_epoch_scoring_without_the_cached_predictions():
    from skorch.callbacks import EpochScoring

    from sersk.nn.classifier import encoded_accuracy

    X, y = make_band_energy_sequences(90, n_classes=3, random_state=0)
    skorch_train_acc = EpochScoring(encoded_accuracy, name="skorch_train_acc", on_train=True)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=3, batch_size=16, random_state=0, device="cpu",
                            callbacks=[("skorch_train_acc", skorch_train_acc)]).fit(X, y)
    assert clf.history[:, "train_acc"] == pytest.approx(clf.history[:, "skorch_train_acc"], abs=1e-12)
    assert len(set(clf.history[:, "train_acc"])) > 1


@pytest.mark.parametrize("caching", [True, False])
def test_validation_accuracy_with_a_dataset_class_of_ones_own(caching):
    """A dataset class of one's own gets the labels' class indices (as before sersk's datasets kept
    the labels): the validation accuracy, scored on those without caching, read 0 for a while."""
    from skorch.dataset import Dataset

    class MyDataset(Dataset):
        pass

    X, y = make_band_energy_sequences(40, random_state=0)
    X_val, y_val = make_band_energy_sequences(12, random_state=1)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, dataset=MyDataset, use_caching=caching, random_state=0,
                            device="cpu").fit(X, y, validation_data=(X_val, y_val))
    assert clf.history[-1, "valid_acc"] == pytest.approx(np.mean(clf.predict(X_val) == y_val))
    from skorch.helper import predefined_split  # a split of labels, as fit takes them, for this kind of dataset too

    split = CNNLSTMClassifier(**SMALL, max_epochs=1, dataset=MyDataset, use_caching=caching, random_state=0,
                              device="cpu", train_split=predefined_split(Dataset(X_val, y_val))).fit(X, y)
    assert split.history[-1, "valid_acc"] == pytest.approx(np.mean(split.predict(X_val) == y_val))


def test_recipe_optimiser_l2_and_schedule():
    X, y = make_band_energy_sequences(40, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, random_state=0, device="cpu").fit(X, y)
    decay = {}
    names = {id(p): n for n, p in clf.module_.named_parameters()}
    for group in clf.optimizer_.param_groups:
        for p in group["params"]:
            decay[names[id(p)]] = group["weight_decay"]
    assert isinstance(clf.optimizer_, torch.optim.Adam)
    assert decay["blocks.0.conv.weight"] == decay["blocks.0.bn.weight"] == decay["blocks.0.bn.bias"] == 5e-4
    assert decay["lstm.weight_ih_l0"] == decay["lstm.weight_hh_l0"] == decay["fc.weight"] == 5e-4
    assert decay["blocks.0.conv.bias"] == decay["lstm.bias_ih_l0"] == decay["fc.bias"] == 0
    # 3 epochs, x0.1 after epoch 2: the last epoch trains at 0.0005
    assert clf.history[:, "event_lr"] == pytest.approx([0.005, 0.005, 0.0005])


def test_predictions_do_not_depend_on_the_batch(emodb_log_mels):
    X, y = emodb_log_mels
    assert len({x.shape[1] for x in X}) >= 30  # many different lengths
    clf = CNNLSTMClassifier(max_epochs=1, random_state=0, device="cpu", verbose=0).fit(X, y)
    together = clf.predict_proba(X)
    alone = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    alone_labels = [clf.predict(X[i : i + 1])[0] for i in range(len(X))]
    assert_labels_agree_where_decided(together, alone, clf.predict(X), alone_labels)

    switched = clone(clf).fit(X, y).set_params(padding="reference")
    assert switched.module_.padding == "reference"  # the built network follows the parameter
    reference = clone(clf).set_params(padding="reference").fit(X, y)
    together = reference.predict_proba(X)
    alone = np.vstack([reference.predict_proba(X[i : i + 1]) for i in range(len(X))])
    assert np.abs(together - alone).max() > 1e-4  # the reference's padding is batch-dependent


def test_same_seed_same_model_and_global_rng_untouched():
    X, y = make_band_energy_sequences(48, random_state=0)
    state = torch.get_rng_state()
    a = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=3, device="cpu").fit(X, y)
    assert torch.equal(state, torch.get_rng_state())
    b = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=3, device="cpu").fit(X, y)
    c = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=4, device="cpu").fit(X, y)
    for (name, pa), pb, pc in zip(a.module_.state_dict().items(), b.module_.state_dict().values(),
                                  c.module_.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.module_.fc.weight, c.module_.fc.weight)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_bad_validation_data_is_named_as_such():
    """Paths given as a plain Pipeline's net__validation_data read "clip 0 has dtype <U5", as if a
    training clip were bad (an extensibility review)."""
    X, y = make_band_energy_sequences(8, random_state=0)
    with pytest.raises(ValueError, match=r"validation_data\[0\]: clip 0 has dtype <U5; expected real numbers \(a file's path"):
        CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu").fit(X, y, validation_data=(["a.wav"], ["class0"]))


def test_validation_data_only_reports_and_leaves_the_seeded_training_as_it_was():
    X, y = make_band_energy_sequences(48, random_state=0)
    X_val, y_val = make_band_energy_sequences(16, random_state=1)
    plain = CNNLSTMClassifier(**SMALL, max_epochs=3, random_state=3, device="cpu").fit(X, y)
    validated = CNNLSTMClassifier(**SMALL, max_epochs=3, random_state=3, device="cpu").fit(
        X, y, validation_data=(X_val, y_val))
    assert validated.history_[-1, "valid_loss"] is not None
    for (name, a), b in zip(plain.module_.state_dict().items(), validated.module_.state_dict().values()):
        assert torch.equal(a, b), name  # each validation pass drew from the training's generator


def test_a_checkpoint_pickled_during_fit_leaves_the_validation_data_out(tmp_path):
    from skorch.callbacks import Checkpoint

    X, y = make_band_energy_sequences(24, random_state=0)
    X_val, y_val = make_band_energy_sequences(400, random_state=1)
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path), f_pickle="net.pkl", f_params=None,
                            f_optimizer=None, f_criterion=None, f_history=None)
    CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu", callbacks=[checkpoint]).fit(
        X, y, validation_data=(X_val, y_val))
    saved = pickle.loads((tmp_path / "net.pkl").read_bytes())
    assert not hasattr(saved, "_valid_dataset")
    assert (tmp_path / "net.pkl").stat().st_size < sum(x.nbytes for x in X_val) / 4  # not the validation clips
    assert saved.predict(X[:4]).shape == (4,)  # and it predicts


def test_random_state_takes_an_int_or_a_random_state_instance_and_refuses_others():
    X, y = make_band_energy_sequences(48, random_state=0)
    a, b = (CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=np.random.RandomState(5), device="cpu").fit(X, y)
            for _ in range(2))
    assert torch.equal(a.module_.fc.weight, b.module_.fc.weight)  # each instance drew the same seed
    a.fit(X, y)  # the instance has moved on: another seed
    assert not torch.equal(a.module_.fc.weight, b.module_.fc.weight)
    for bad in (1.5, "0", True, -1, 2**32, np.random.default_rng(0)):
        with pytest.raises(ValueError, match=r"random_state=.*expected an int in \[0, 2\*\*32 - 1\], a numpy RandomState"):
            CNNLSTMClassifier(**SMALL, random_state=bad).fit(X, y)
    generator = np.random.RandomState(5)
    with pytest.raises(ValueError, match="single class"):  # a failed fit draws no seed
        CNNLSTMClassifier(**SMALL, random_state=generator).fit(X, np.zeros(len(X)))
    assert generator.randint(2**31) == np.random.RandomState(5).randint(2**31)


def test_unseeded_fits_differ_and_no_fit_or_prediction_moves_the_global_generators(monkeypatch):
    X, y = make_band_energy_sequences(48, random_state=0)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: pytest.fail("every CUDA generator reseeded"))
    unseeded = [CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu").fit(X, y) for _ in range(2)]
    assert not torch.equal(unseeded[0].module_.fc.weight, unseeded[1].module_.fc.weight)
    seeded = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    seeded.predict_proba(X)
    assert torch.equal(state, torch.get_rng_state())


def test_concurrent_predictions_keep_the_device_parameter():
    from joblib import Parallel, delayed

    X, y = make_band_energy_sequences(48, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0).fit(X, y)  # device "auto"
    expected = clf.predict_proba(X)
    results = Parallel(n_jobs=4, backend="threading")(delayed(clf.predict_proba)(X) for _ in range(8))
    assert clf.get_params()["device"] == "auto" and "_device_users" not in vars(clf)
    assert all(np.allclose(r, expected, atol=1e-6) for r in results)
    clf._device_requested, clf._device_users, clf.device = "auto", 1, "cpu"  # as while another thread predicts
    state = clf.__getstate__()
    assert state["device"] == "auto" and "_device_users" not in state and "_device_requested" not in state
    clf.device = clf.__dict__.pop("_device_requested")
    del clf._device_users


def test_a_failed_call_keeps_the_device_bookkeeping_of_predictions_running_in_other_threads():
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0).fit(X, y)  # device "auto"
    with pytest.raises(RuntimeError):
        with clf._unchanged_on_error():
            clf._device_requested, clf._device_users, clf.device = "auto", 1, "cpu"  # a prediction begins
            raise RuntimeError("boom")
    assert (clf.device, clf._device_users, clf._device_requested) == ("cpu", 1, "auto")  # still running
    with pytest.raises(RuntimeError):
        with clf._unchanged_on_error():
            clf.device = clf.__dict__.pop("_device_requested")  # the prediction ends
            del clf._device_users
            raise RuntimeError("boom")
    assert clf.device == "auto" and "_device_users" not in vars(clf) and "_device_requested" not in vars(clf)
    assert clf.get_params()["device"] == "auto"


def test_joblib_round_trip_of_classifier_and_pipeline(tmp_path):
    X, y = make_band_energy_sequences(48, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))

    rng = np.random.default_rng(0)
    waves = [rng.normal(scale=0.1 + 0.4 * (i % 2), size=16000).astype(np.float32) for i in range(24)]
    labels = np.array(["quiet", "loud"] * 12)
    pipe = Pipeline([("logmel", LogMelTransformer()), ("net", clone(clf))]).fit(waves, labels)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "pipe.joblib").predict(waves), pipe.predict(waves))


def test_pickled_classifier_holds_its_optimizer_once_and_resumes_its_schedule(tmp_path):
    """The LR scheduler is pickled without the optimizer it refers to: that second copy, outside
    skorch's handling of CUDA tensors, made a model trained on CUDA fail to load without CUDA."""
    X, y = make_band_energy_sequences(48, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, random_state=0, device="cpu").fit(X, y)
    found = []

    class TorchStateFinder(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, (torch.Tensor, torch.optim.Optimizer, torch.nn.Module)):
                found.append(type(obj).__name__)
            return None

    TorchStateFinder(io.BytesIO()).dump(clf.callbacks_)
    assert found == []
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    loaded.set_params(warm_start=True, max_epochs=1).fit(X, y)  # the third epoch, after the x0.1 step
    assert [row["event_lr"] for row in loaded.history] == pytest.approx([0.005, 0.005, 0.0005])


def test_a_failed_set_params_leaves_the_estimator_as_it_was():
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu").fit(X, y)
    before, module = clf.get_params(deep=False), clf.module_
    with pytest.raises(ValueError, match="hidden_size"):
        clf.set_params(max_epochs=7, module__hidden_size=-1)  # skorch rebuilds the fitted module at once
    after = clf.get_params(deep=False)
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert clf.get_params()["module__hidden_size"] == 16 and clf.module_ is module
    assert len(clf.set_params(warm_start=True).fit(X, y).history) == 2
    with pytest.raises(ValueError, match="unexpected argument.*foo__bar"):
        clf.set_params(foo__bar=1)
    assert len(clf.set_params(warm_start=False).fit(X, y).history) == 1  # the refused key was kept, and refused again


def plain_batches(dataset, batch_size, collate_fn, shuffle=False):
    """A loader of a user's own that takes only what it needs (no ``generator``)."""
    for start in range(0, len(dataset), batch_size):
        yield collate_fn([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def test_a_loader_of_ones_own_gets_no_generator():
    """The validation loader's own generator is a DataLoader argument: given to any iterator, it
    made one that does not take it fail (TypeError: unexpected keyword argument 'generator')."""
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu").fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.set_params(iterator_valid=plain_batches).predict_proba(X), expected)


def test_a_partial_data_loader_still_gets_the_validation_generator():
    """A DataLoader wrapped in functools.partial takes the generator too: without it, validating
    draws from torch's global generator and shifts a seeded fit's masks."""
    import functools

    X, y = make_band_energy_sequences(24, random_state=0)
    groups = np.arange(24) % 6
    kwargs = dict(**SMALL, max_epochs=3, batch_size=4, random_state=0, validation_fraction=0.34, freq_mask_bands=2,
                  time_mask_frames=2, device="cpu")
    plain = CNNLSTMClassifier(**kwargs, iterator_valid=torch.utils.data.DataLoader).fit(X, y, groups=groups)
    wrapped = CNNLSTMClassifier(**kwargs, iterator_valid=functools.partial(torch.utils.data.DataLoader)).fit(
        X, y, groups=groups
    )
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in wrapped.history]


def test_set_params_on_a_fitted_network_keeps_its_weights():
    """skorch rebuilt a fitted network, with new random weights, for any ``module__`` or
    ``criterion__`` key, the value it had included (``set_params(**get_params())`` turned a fitted
    model into a random one), and refused loader, dataset and optimizer classes on a built network
    with "Something went wrong". Same values now change nothing, and loader settings and a new
    optimizer keep the weights; a new module value still builds the network anew."""
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu", criterion__label_smoothing=0.1).fit(X, y)
    proba, module, optimizer = clf.predict_proba(X), clf.module_, clf.optimizer_
    weights = {name: value.clone() for name, value in module.state_dict().items()}
    clf.set_params(**clf.get_params())
    assert clf.module_ is module and clf.optimizer_ is optimizer  # nothing rebuilt, the optimizer's state kept
    clf.set_params(iterator_valid__batch_size=4, iterator_train__shuffle=False, optimizer=torch.optim.SGD)
    assert all(torch.equal(value, weights[name]) for name, value in clf.module_.state_dict().items())
    # batches of 4 may sum in another order (oneDNN picks kernels by batch size on an AVX-512 Xeon: 6e-8)
    np.testing.assert_allclose(clf.predict_proba(X), proba, atol=1e-6)
    assert type(clf.optimizer_) is torch.optim.SGD and clf.iterator_valid__batch_size == 4
    with pytest.warns(UserWarning, match="iterator_valid__shuffle=True"):  # skorch's check, made at once
        clf.set_params(iterator_valid__shuffle=True)
    clf.set_params(iterator_valid__shuffle=False)
    clf.set_params(module__hidden_size=8)  # a new value: a new network, to fit again
    assert clf.module_.lstm.hidden_size == 8 and clf.fit(X, y).predict_proba(X).shape == proba.shape
    with pytest.raises(NotFittedError):
        CNNLSTMClassifier().classes_  # was AttributeError: no attribute 'classes_seen_'


def test_a_network_saved_on_a_cuda_device_this_machine_lacks_loads_on_the_cpu(monkeypatch):
    """skorch falls back to the CPU only without CUDA: a network saved on device="cuda:1" failed to
    load on a machine with one GPU, in torch's unpickler, as if the file were corrupt."""
    from skorch.exceptions import DeviceWarning

    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu").fit(X, y)
    proba = clf.predict_proba(X)
    clf.device = "cuda:1"  # as fitted on a second GPU (its tensors are on the CPU here)
    saved = pickle.dumps(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.warns(DeviceWarning, match="saved on device='cuda:1', which this machine lacks .1 CUDA device"):
        loaded = pickle.loads(saved)
    monkeypatch.undo()
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


def test_a_training_clip_longer_than_the_frame_budget_is_named_in_a_warning():
    """Such a clip trains as a batch of its own, whose memory the budget does not bound (it said so
    in the docstring only: a corpus of long recordings ran out of memory with no word of why)."""
    import warnings

    X, y = make_band_energy_sequences(6, random_state=0)
    X[4] = np.tile(X[4], (1, 20))[:, :300]
    kwargs = dict(**SMALL, max_epochs=1, device="cpu", max_batch_frames=256)
    with pytest.warns(UserWarning, match=r"longer than max_batch_frames=256 \(1; the longest, clip 4: 300 frames\) "
                      "train one to a batch.*crop_frames=N"):
        CNNLSTMClassifier(**kwargs).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CNNLSTMClassifier(**kwargs, crop_frames=200).fit(X, y)  # trains on windows within the budget
        CNNLSTMClassifier(**{**kwargs, "max_batch_frames": None}).fit(X, y)


def test_clone_params_and_grid_search():
    clf = CNNLSTMClassifier(**{**SMALL, "module__hidden_size": 12}, device="cpu", optimizer__weight_decay=1e-3)
    params = clone(clf).get_params()
    assert params["module__hidden_size"] == 12 and params["optimizer__weight_decay"] == 1e-3
    assert params["padding"] == "masked" and params["lr"] == 0.005 and params["batch_size"] == 32
    clf.set_params(module__hidden_size=10, lr=0.01)
    assert clf.module__hidden_size == 10 and clf.lr == 0.01
    X, y = make_band_energy_sequences(60, random_state=0)
    search = GridSearchCV(
        CNNLSTMClassifier(**SMALL, device="cpu", random_state=0),
        {"lr": [0.005, 0.01], "max_epochs": [1, 2], "module__hidden_size": [8, 16]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert search.best_estimator_.module_.lstm.hidden_size == search.best_params_["module__hidden_size"]


def test_validation_fraction_holds_out_whole_groups(monkeypatch):
    X, y = make_band_energy_sequences(60, random_state=0)
    groups = np.repeat(np.arange(12), 5)
    seen = {}
    original = CNNLSTMClassifier.get_split_datasets

    def spy(self, X_, y_=None, **kw):
        train, valid = original(self, X_, y_, **kw)
        seen["train"] = {id(x) for x in train.X}
        seen["valid"] = {id(x) for x in valid.X}
        return train, valid

    monkeypatch.setattr(CNNLSTMClassifier, "get_split_datasets", spy)
    CNNLSTMClassifier(**SMALL, max_epochs=1, validation_fraction=0.25, random_state=0, device="cpu").fit(
        X, y, groups=groups
    )
    group_of = {id(x): g for x, g in zip(X, groups)}
    train_groups = {group_of[i] for i in seen["train"]}
    valid_groups = {group_of[i] for i in seen["valid"]}
    assert valid_groups and not train_groups & valid_groups


def test_the_networks_own_hold_out_may_take_a_labels_clips_out_of_training():
    """The network's classes are all of y's, so a speaker hold-out that leaves a label untrained trains
    and is scored (a diff review: a refusal meant for the pipeline's hold-out had reached it), with a
    warning naming the label (a third review: it was silent)."""
    X, _ = make_band_energy_sequences(8, random_state=0)
    y, groups = np.array(["x", "y", "x", "y", "x", "z", "x", "z"]), np.repeat(["A", "B"], 4)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, validation_fraction=0.5, random_state=0, device="cpu")
    with pytest.warns(UserWarning, match=r"validation_fraction=0.5 holds out every clip of [yz]: the network trains on "
                                         r"none of them") as warned:
        clf.fit(X, y, groups=groups)
    assert warned[0].filename == __file__  # it points at the caller's fit
    assert list(clf.classes_) == ["x", "y", "z"] and clf.history[-1, "valid_acc"] is not None


@pytest.mark.parametrize(
    "X, y, problem",
    [
        ([], [], "empty"),
        ([np.zeros((128, 0), np.float32), np.zeros((128, 20), np.float32)], ["a", "b"], "clip 0 has 0 frames"),
        ([np.full((128, 20), np.nan, np.float32), np.zeros((128, 20), np.float32)], ["a", "b"], "clip 0 contains NaN"),
        ([np.zeros((128, 20)), np.full((128, 20), 1e300)], ["a", "b"], r"clip 1 has values beyond float32's range \(largest"),
        ([np.zeros((128, 20), np.float32), np.zeros((64, 20), np.float32)], ["a", "b"], "clip 1 has 64 feature rows"),
        ([np.zeros((128, 20), np.float32)] * 2, ["a", "a"], "single class"),
        ([np.zeros((128, 20), np.float32)] * 3, ["a", "b"], "3 samples but y has 2"),
        # numpy made NaN among strings a class "nan", and mixed labels text ("1")
        ([np.zeros((128, 20), np.float32)] * 3, ["a", "b", np.nan], r"missing label \(None, NaN or NA\) at position 2"),
        ([np.zeros((128, 20), np.float32)] * 3, ["a", "b", None], r"missing label \(None, NaN or NA\) at position 2"),
        ([np.zeros((128, 20), np.float32)] * 3, ["a", "b", 1], "y mixes text and numbers"),
        # an extensibility review: these named neither module__pools, nor the 2-D reading, nor paths for features
        ([np.zeros(20, np.float32)] * 2, ["a", "b"], r"n_mels=1 is too few bands for the frequency pools .* "
         r"module__pools in a CNNLSTMClassifier\); a 2-D array of shape \(clips, frames\) is read as one single-band"),
        (["a.wav", "b.wav"], ["a", "b"], r"clip 0 has dtype <U5; expected real numbers \(a file's path\? features come "
         "from AudioLoader then LogMelTransformer"),
        ([np.zeros(20, np.float32), np.zeros(30, np.float32)], ["a", "b"], "expected a 2-D"),
    ],
)
def test_bad_input_fails_before_training_and_keeps_the_fitted_state(X, y, problem):
    good_X, good_y = make_band_energy_sequences(32, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(good_X, good_y)
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    history = len(clf.history)
    with pytest.raises(ValueError, match=problem):
        clf.fit(X, y)
    assert len(clf.history) == history
    for k, v in clf.module_.state_dict().items():
        assert torch.equal(v, before[k])
    assert list(clf.classes_) == ["class0", "class1"]


@pytest.mark.parametrize(
    "sizes, problem",
    [
        (dict(filters=(0, 2), pools=((2, 2), (2, 2))), r"filters=\(0, 2\); expected a positive integer per block"),
        (dict(filters=(2, 2), pools=((0, 2), (2, 2))), r"pools=\(\(0, 2\), \(2, 2\)\); expected a pair of positive"),
        (dict(filters=(2, 2), pools=((2.0, 2), (2, 2))), r"pools=\(\(2.0, 2\), \(2, 2\)\); expected a pair"),
        (dict(filters=(2, 2), pools=((2, 2, 2), (2, 2))), r"expected a pair of positive integers \(frequency, time\)"),
        (dict(filters=(2,), pools=((2, 2), (2, 2))), "filters has 1 blocks but pools has 2"),
        (dict(hidden_size=0), r"hidden_size=0; expected a positive integer"),
    ],
)
def test_bad_network_sizes_are_named_before_torch_sees_them(sizes, problem):
    """They failed inside torch (a conv weight of size 0), as a ZeroDivisionError, or a TypeError from max_pool2d."""
    X, y = make_band_energy_sequences(8, random_state=0)
    with pytest.raises(ValueError, match=problem):
        CNNLSTMClassifier(**{f"module__{k}": v for k, v in sizes.items()}, max_epochs=1, verbose=0, device="cpu").fit(X, y)


def test_get_params_and_clone_keep_the_device_asked_for_while_a_fit_runs():
    from skorch.callbacks import Callback

    from sklearn.base import clone

    seen = []

    class Peek(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append((net.get_params()["device"], clone(net).device, net.device))

    X, y = make_band_energy_sequences(8, random_state=0)
    CNNLSTMClassifier(**SMALL, max_epochs=1, device="auto", callbacks=[("peek", Peek())]).fit(X, y)
    assert seen == [("auto", "auto", "cuda" if torch.cuda.is_available() else "cpu")]  # skorch runs on the resolved one


def test_a_device_set_while_a_fit_runs_is_taken_when_it_ends():
    """A callback's set_params(device="auto") set the unresolved name mid-fit: torch failed on "auto"."""
    from skorch.callbacks import Callback

    class SetDevice(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.set_params(device=net.get_params()["device"] if len(net.history) == 1 else "cpu")

    X, y = make_band_energy_sequences(8, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=3, device="auto", callbacks=[("set", SetDevice())]).fit(X, y)
    assert len(clf.history) == 3 and clf.device == "cpu" and "_device_requested" not in vars(clf)


class AveragePooling(CNNLSTM):
    """A researcher's variant: average-pooling blocks."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for block in self.blocks:
            block.pool = torch.nn.AvgPool2d(block.pool.kernel_size, block.pool.stride)


class WithoutTimeFactor(torch.nn.Module):
    """A network of one's own that pools no time, and so declares no time_factor (test_pipeline's
    MeanOverTime declares 1)."""

    def __init__(self, n_mels, n_classes, padding):
        super().__init__()
        self.fc = torch.nn.Linear(n_mels, n_classes)

    def forward(self, x, lengths):
        return self.fc(x.mean(dim=2))


class OverlappingPooling(CNNLSTM):
    """Max-pooling windows that overlap: the masked path pools side by side."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks[1].pool = torch.nn.MaxPool2d((3, 2), stride=(2, 2), padding=(1, 0))


class TakesOtherArguments(torch.nn.Module):
    def __init__(self, bands, outputs):
        super().__init__()


def test_networks_of_ones_own_either_train_or_say_what_sersk_needs():
    """A subclass's average pooling was silently max-pooled by the masked path; a module without
    time_factor raised AttributeError; one taking other arguments, a bare TypeError."""
    X, y = make_band_energy_sequences(16, random_state=0)
    for module, pooling in ((AveragePooling, "AvgPool2d"), (OverlappingPooling, r"MaxPool2d\(kernel_size=\(3, 2\)")):
        with pytest.raises(TypeError, match=r"padding='masked' runs each block as .* whose windows tile the input, "
                                            rf"fused; this block has Conv2d.*MaskedBatchNorm2d.* and {pooling}"):
            CNNLSTMClassifier(**SMALL, module=module, max_epochs=1, device="cpu").fit(X, y)
    reference = CNNLSTMClassifier(**SMALL, module=AveragePooling, padding="reference", max_epochs=1, device="cpu")
    assert reference.fit(X, y).predict(X).shape == (16,)  # unmasked, it pools as the subclass says
    assert CNNLSTMClassifier(module=WithoutTimeFactor, max_epochs=1, device="cpu", verbose=0).fit(X, y).predict(X).shape == (16,)
    with pytest.raises(TypeError, match=r"module=TakesOtherArguments is built as TakesOtherArguments\(n_mels=..., "
                                        r"n_classes=..., padding=...\)"):
        CNNLSTMClassifier(module=TakesOtherArguments, max_epochs=1, device="cpu", verbose=0).fit(X, y)


class Bidirectional(CNNLSTM):
    """A researcher's variant: a bidirectional LSTM, whose backward half reads what follows a step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        lstm = self.lstm
        self.lstm = torch.nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True, bidirectional=True)
        self.fc = torch.nn.Linear(2 * lstm.hidden_size, self.fc.out_features)


class DropoutAfterLSTM(torch.nn.Module):
    """A causal layer of one's own around an LSTM: the masked path runs it as written."""

    def __init__(self, lstm):
        super().__init__()
        self.inner, self.dropout = lstm, torch.nn.Dropout(0.1)

    def forward(self, x):
        out, state = self.inner(x)
        return self.dropout(out), state


class LSTMInside:
    """A CNNLSTM variant whose ``lstm`` sits inside a layer of one's own, ``wrapper``."""

    wrapper: type

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lstm = self.wrapper(self.lstm)


class WrappedLSTM(LSTMInside, CNNLSTM):
    wrapper = DropoutAfterLSTM


class WrappedBidirectional(LSTMInside, Bidirectional):
    wrapper = DropoutAfterLSTM


class TimeFirstLSTM(torch.nn.Module):
    """A causal layer of one's own that runs a time-first LSTM on batch-first steps."""

    def __init__(self, lstm):
        super().__init__()
        self.inner = torch.nn.LSTM(lstm.input_size, lstm.hidden_size)

    def forward(self, x):
        out, state = self.inner(x.transpose(0, 1))
        return out.transpose(0, 1), state


class TimeFirstInside(LSTMInside, CNNLSTM):
    wrapper = TimeFirstLSTM


class SaysBidirectional(WrappedLSTM):
    """A layer of one's own that declares it reads both ways."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lstm.bidirectional = True


class ForwardOfOtherArguments(torch.nn.Module):
    def __init__(self, n_mels, n_classes, padding):
        super().__init__()
        self.fc = torch.nn.Linear(n_mels, n_classes)

    def forward(self, X, lengths):
        return self.fc(X.mean(dim=2))


def test_networks_sersk_cannot_run_as_written_are_refused_with_what_it_needs():
    """An extensibility review: a bidirectional LSTM under masked padding read the padding moved
    behind each clip (batched predictions differed from single ones by 0.005), and a forward of
    other argument names failed deep inside torch in the first step."""
    X, y = make_band_energy_sequences(16, random_state=0)
    with pytest.raises(TypeError, match=r"padding='masked' moves each clip's padding behind its real steps .* this "
                                        r"network has LSTM\(.*bidirectional=True\): .* padding='reference'"):
        CNNLSTMClassifier(**SMALL, module=Bidirectional, max_epochs=1, device="cpu").fit(X, y)
    reference = CNNLSTMClassifier(**SMALL, module=Bidirectional, padding="reference", max_epochs=1, device="cpu")
    assert reference.fit(X, y).predict(X).shape == (16,)
    wrapped = CNNLSTMClassifier(**SMALL, module=WrappedLSTM, max_epochs=1, device="cpu")  # refused by a first version
    assert wrapped.fit(X, y).predict(X).shape == (16,)
    loaded = pickle.loads(pickle.dumps(wrapped))  # unpickling flattened self.lstm's weights: a wrapper has none
    np.testing.assert_array_equal(loaded.predict_proba(X), wrapped.predict_proba(X))
    for module in (WrappedBidirectional, SaysBidirectional):  # a bidirectional LSTM inside; a declared one
        with pytest.raises(TypeError, match=r"padding='masked' moves each clip's padding .* this network has "
                                            r"DropoutAfterLSTM\("):
            CNNLSTMClassifier(**SMALL, module=module, max_epochs=1, device="cpu").fit(X, y)
    time_first = CNNLSTMClassifier(**SMALL, module=TimeFirstInside, max_epochs=1, device="cpu")  # batch-first outside
    assert time_first.fit(X, y).predict(X).shape == (16,)
    with pytest.raises(TypeError, match=r"module=ForwardOfOtherArguments: sersk calls forward\(x=..., lengths=...\), "
                                        r"x the batch's features .*ForwardOfOtherArguments.forward\(X, lengths\) cannot"):
        CNNLSTMClassifier(module=ForwardOfOtherArguments, max_epochs=1, device="cpu", verbose=0).fit(X, y)


def test_a_scheduler_beside_the_networks_own_is_refused_and_one_in_its_place_is_the_only_one():
    """An added LRScheduler ran beside the default step schedule: the rates compounded (an
    extensibility review: 0.005, 0.0025, 0.000125, ... for a halving ExponentialLR)."""
    from skorch.callbacks import EarlyStopping, LRScheduler
    from torch.optim.lr_scheduler import ExponentialLR, StepLR

    X, y = make_band_energy_sequences(16, random_state=0)
    halving = LRScheduler(ExponentialLR, gamma=0.5)
    for callbacks in ([halving], [("mine", LRScheduler)], [["mine", halving]]):
        with pytest.raises(ValueError, match=r"callbacks holds .* beside the network's own schedule, lr_scheduler "
                                             r"\(lr_schedule='step'\).*callbacks__lr_scheduler=None"):
            CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks=callbacks, device="cpu").fit(X, y)
    for dropped in ({}, {"callbacks__lr_scheduler": None}):  # skorch: "duplicate user-set callback name" either way
        with pytest.raises(ValueError, match=r"callbacks names one lr_scheduler \(LRScheduler\), the name of the "
                                             r"network's own schedule: pass yours as callbacks__lr_scheduler="):
            CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks=[("lr_scheduler", halving)], device="cpu", **dropped).fit(X, y)
    # the names skorch gives two unnamed ones: both dropped, the network's own schedule alone runs
    two = CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks=[halving, LRScheduler(ExponentialLR, gamma=0.5)],
                            callbacks__LRScheduler_1=None, callbacks__LRScheduler_2=None, device="cpu")
    assert len(two.fit(X, y).history) == 1
    with pytest.raises(ValueError, match=r"callbacks__lr_scheduler__policy='ReduceLROnPlateau': the network's own "
                                         r"schedule is lr_schedule's"):  # torch's TypeError ('last_epoch') before
        CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks__lr_scheduler__policy="ReduceLROnPlateau", device="cpu").fit(X, y)
    same = CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks__lr_scheduler__policy="StepLR", device="cpu")
    assert len(same.fit(X, y).history) == 1  # its own policy, named: as before

    class MyStep(StepLR):
        pass

    mine = CNNLSTMClassifier(**SMALL, max_epochs=2, callbacks__lr_scheduler__policy=MyStep,
                             callbacks__lr_scheduler__step_size=1, device="cpu").fit(X, y)
    assert mine.optimizer_.param_groups[0]["lr"] == pytest.approx(0.00005)  # a subclass of its own: as before
    with pytest.raises(ValueError, match=r"callbacks names one lr_scheduler \(EarlyStopping\), the name of the "
                                         r"network's own schedule: give it another name$"):  # not a scheduler
        CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks=[("lr_scheduler", EarlyStopping(monitor="train_loss"))],
                          device="cpu").fit(X, y)
    for settings in ({"callbacks__lr_scheduler": LRScheduler(ExponentialLR, gamma=0.5)},
                     {"callbacks": [LRScheduler(ExponentialLR, gamma=0.5)], "callbacks__lr_scheduler": None}):
        clf = CNNLSTMClassifier(**SMALL, max_epochs=4, device="cpu", **settings).fit(X, y)
        assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(0.005 / 2**4)  # halved 4 times, nothing else


def test_frequency_masks_that_could_blank_every_band_are_refused():
    """The tuned preset's 16-band masks on 13 MFCCs zeroed two thirds of each clip's bands, silently."""
    X, y = make_band_energy_sequences(16, n_mels=13, random_state=0)
    small = {**SMALL, "module__pools": ((1, 2),) * len(SMALL["module__filters"])}
    with pytest.raises(ValueError, match=r"freq_mask_bands=16 masks up to 30 bands of each training clip \(2 masks of "
                                         r"fewer than 16\), but the features have 13: .*freq_mask_bands=1"):
        CNNLSTMClassifier(**small, freq_mask_bands=16, max_epochs=1, device="cpu").fit(X, y)
    assert CNNLSTMClassifier(**small, freq_mask_bands=7, max_epochs=1, device="cpu").fit(X, y).predict(X).shape == (16,)


def test_a_callback_watching_validation_scores_needs_a_validation_set_before_training():
    """skorch's EarlyStopping and Checkpoint failed at the first epoch's end with "Key 'valid_loss' was
    not found in history": sersk validates on nothing unless told to."""
    from skorch.callbacks import Checkpoint, EarlyStopping

    from skorch.callbacks import Callback, LRScheduler
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    class ValidLossIfAny(Callback):
        """A callback of one's own that reads a validation score only where there is one."""

        monitor = "valid_loss"

        def on_epoch_end(self, net, **kwargs):
            net.history.record("seen", "valid_loss" in net.history[-1])

    X, y = make_band_energy_sequences(16, random_state=0)
    plateau = LRScheduler(ReduceLROnPlateau, monitor="valid_loss")
    class Patient(EarlyStopping):
        def __init__(self, **kwargs):
            super().__init__(**{"patience": 2, **kwargs})

    class BuiltOnce(Callback):  # a callback of one's own is built by the fit alone (a review: it was built twice)
        built = 0

        def __init__(self):
            type(self).built += 1
            assert type(self).built == 1

    class OnTrainingLoss(EarlyStopping):  # given as a class: built as the fit builds it, not read off its parent
        def __init__(self, patience=3):
            super().__init__(monitor="train_loss", patience=patience)

    for callback, monitor in ((EarlyStopping(), "valid_loss"), (Checkpoint(dirname="unused"), "valid_loss_best"),
                              (EarlyStopping, "valid_loss"), (plateau, "valid_loss"), (Patient, "valid_loss")):
        with pytest.raises(ValueError, match=rf"the callback '{callback.__name__ if isinstance(callback, type) else type(callback).__name__}' "
                                             rf"watches '{monitor}', which only a validation set records, and this fit "
                                             r"validates on nothing"):
            CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks=[callback], callbacks__lr_scheduler=None,
                              device="cpu").fit(X, y)
    with pytest.raises(ValueError, match=r"the callback 's' watches 'valid_loss'"):  # its policy set by parameters
        CNNLSTMClassifier(**SMALL, max_epochs=1, callbacks=[("s", LRScheduler)], callbacks__s__policy="ReduceLROnPlateau",
                          callbacks__s__monitor="valid_loss", callbacks__lr_scheduler=None, device="cpu").fit(X, y)
    # as the fit would run them (a diff review: these were refused): set to watch the training loss, dropped,
    # replaced, or a callback of one's own
    for settings in ({"callbacks": [("es", EarlyStopping())], "callbacks__es__monitor": "train_loss"},
                     {"callbacks": [("es", EarlyStopping())], "callbacks__es": None},
                     {"callbacks": [("es", EarlyStopping())], "callbacks__es": EarlyStopping(monitor="train_loss")},
                     {"callbacks": [ValidLossIfAny()]}, {"callbacks": [OnTrainingLoss]},
                     {"callbacks": [("once", BuiltOnce)]}):
        assert len(CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu", **settings).fit(X, y).history) == 1
    stopped = CNNLSTMClassifier(**SMALL, max_epochs=2, callbacks=[EarlyStopping()], validation_fraction=0.25,
                                device="cpu").fit(X, y)
    assert len(stopped.history) == 2 and stopped.history[-1, "valid_loss"] > 0


class SevenOutputs(torch.nn.Module):
    """A network of one's own that ignores n_classes."""

    time_factor = 1

    def __init__(self, n_mels, n_classes, padding):
        super().__init__()
        self.fc = torch.nn.Linear(n_mels, 7)

    def forward(self, x, lengths):
        return self.fc(x.mean(dim=2))


class LogitsAndState(SevenOutputs):
    def forward(self, x, lengths):
        return self.fc(x.mean(dim=2)), None


def test_a_network_returning_other_than_one_logit_per_class_is_refused_in_its_first_step():
    """It trained silently on 2 classes with 7 outputs, and predict_proba failed later with numpy's
    broadcast error (an extensibility review)."""
    X, y = make_band_energy_sequences(8, random_state=0)
    with pytest.raises(ValueError, match=r"module=SevenOutputs returned shape \(8, 7\) for a batch of 8 clips; "
                                         r"expected a tensor of shape \(8, 2\): one logit per class"):
        CNNLSTMClassifier(module=SevenOutputs, max_epochs=1, verbose=0, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match=r"module=LogitsAndState returned a tuple for a batch of 8 clips"):
        CNNLSTMClassifier(module=LogitsAndState, max_epochs=1, verbose=0, device="cpu").fit(X, y)


def test_a_module_instance_is_refused_rather_than_silently_rebuilt():
    from sersk.nn import CNNLSTM

    X, y = make_band_energy_sequences(8, random_state=0)
    with pytest.raises(ValueError, match="module= takes a class, .*got an instance of CNNLSTM"):
        CNNLSTMClassifier(module=CNNLSTM(n_classes=5), max_epochs=1, verbose=0, device="cpu").fit(X, y)


def test_predict_checks_the_number_of_bands():
    X, y = make_band_energy_sequences(32, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="clip 0 has 64 feature rows; expected 128"):
        clf.predict([np.zeros((64, 20), np.float32)])
    with pytest.raises(ValueError, match=r"clip 0 has 1 feature rows; expected 128 \(a 2-D array is read as one single-band clip per row: .* wrap it in a list\)"):
        clf.predict(X[0])  # one clip, not wrapped in a list


def test_unfitted_predict_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CNNLSTMClassifier().predict([np.zeros((128, 20), np.float32)])


def test_auto_device_is_resolved_at_run_time_and_kept_as_a_parameter(tmp_path):
    X, y = make_band_energy_sequences(32, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0)
    assert clf.get_params()["device"] == "auto"
    clf.fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert clf.device == "auto" and next(clf.module_.parameters()).device.type == expected
    joblib.dump(clf, tmp_path / "auto.joblib")
    loaded = joblib.load(tmp_path / "auto.joblib")
    assert loaded.device == "auto"
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("deterministic", [True, False])
def test_float32_cudnn_holds_its_settings_in_the_block_only(deterministic):
    from sersk.utils._device import _cudnn_settings, float32_cudnn

    before = _cudnn_settings()
    with pytest.raises(RuntimeError, match="inside"):
        with float32_cudnn(deterministic=deterministic):
            inside = _cudnn_settings()
            assert (inside.conv, inside.rnn, inside.legacy_tf32) == ("ieee", "ieee", False)
            expected = (True, False) if deterministic else (before.deterministic, before.benchmark)
            assert (inside.deterministic, inside.benchmark) == expected
            raise RuntimeError("inside")
    assert _cudnn_settings() == before


USER_TF32_SETTINGS = {
    "torch's defaults": "",
    "legacy cuDNN flag off": "torch.backends.cudnn.allow_tf32 = False",
    "TF32 matmuls": "torch.set_float32_matmul_precision('high')",
    "new API, one operation": "torch.backends.cudnn.conv.fp32_precision = 'ieee'",
    "new API, globally": "torch.backends.fp32_precision = 'tf32'",
}


@pytest.mark.parametrize("setting", USER_TF32_SETTINGS.values(), ids=USER_TF32_SETTINGS)
def test_float32_cudnn_leaves_every_precision_setting_readable_that_was(setting):
    # torch raises on reading a legacy flag that disagrees with the newer per-operation settings;
    # other code (a callback, another library) reading them during a fit must not start failing
    code = f"""
import torch
from sersk.utils._device import float32_cudnn

def reads():
    out = []
    for read in (lambda: torch.backends.cudnn.allow_tf32, lambda: torch.backends.cuda.matmul.allow_tf32,
                 torch.get_float32_matmul_precision):
        try:
            out.append(read())
        except RuntimeError:
            out.append("unreadable")
    return out + [torch.backends.cudnn.conv.fp32_precision, torch.backends.cudnn.rnn.fp32_precision]

{setting}
before = reads()
with float32_cudnn(deterministic=False):
    inside = reads()
after = reads()
assert after == before, (before, after)
assert inside[3:] == ["ieee", "ieee"], inside
for was, now in zip(before[:3], inside[:3]):
    assert now != "unreadable" or was == "unreadable", (before, inside)
print(before, inside)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_float32_cudnn_counts_overlapping_blocks():
    from sersk.utils._device import _cudnn_settings, float32_cudnn

    before = _cudnn_settings()
    first, second = float32_cudnn(deterministic=True), float32_cudnn(deterministic=False)
    first.__enter__()
    second.__enter__()
    assert _cudnn_settings()._replace(conv="?", rnn="?", legacy_tf32=None) == before._replace(
        conv="?", rnn="?", legacy_tf32=None, deterministic=True, benchmark=False
    )
    first.__exit__(None, None, None)  # left before the other block, as another thread may
    assert _cudnn_settings() == before._replace(conv="ieee", rnn="ieee", legacy_tf32=False)  # float32; not deterministic
    second.__exit__(None, None, None)
    assert _cudnn_settings() == before


def test_unavailable_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = make_band_energy_sequences(16, random_state=0)
    with pytest.raises(ValueError, match="CUDA is not available"):
        CNNLSTMClassifier(**SMALL, device="cuda").fit(X, y)


def test_a_fitted_auto_device_net_takes_module_criterion_and_loaded_params(tmp_path):
    # skorch rebuilds or loads these on self.device, which must be a concrete device by then
    X, y = make_band_energy_sequences(32, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0).fit(X, y)
    assert clf.device == "auto"
    clf.save_params(f_params=tmp_path / "w.pt", f_optimizer=tmp_path / "o.pt")
    expected = clf.predict_proba(X)
    clf.set_params(module__hidden_size=8, criterion__reduction="sum")
    assert clf.module_.lstm.hidden_size == 8 and clf.criterion_.reduction == "sum" and clf.device == "auto"
    clf.set_params(module__hidden_size=SMALL["module__hidden_size"], criterion__reduction="mean")
    clf.load_params(f_params=tmp_path / "w.pt", f_optimizer=tmp_path / "o.pt")
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    clf.set_params(device="cpu")
    assert clf.device == "cpu" and clf.get_params()["device"] == "cpu"


def test_a_failed_load_params_leaves_the_weights_as_they_were(tmp_path):
    X, y = make_band_energy_sequences(32, random_state=0)
    other = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=1, device="cpu").fit(X, y)
    other.save_params(f_params=tmp_path / "w.pt")
    (tmp_path / "o.pt").write_bytes(b"not an optimizer")
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    expected = clf.predict_proba(X)
    with pytest.raises(pickle.UnpicklingError):
        clf.load_params(f_params=tmp_path / "w.pt", f_optimizer=tmp_path / "o.pt")
    np.testing.assert_array_equal(clf.predict_proba(X), expected)  # the other net's weights were kept


@pytest.mark.parametrize("device", ["meta", "mps", "cuda:99"])
def test_an_unsupported_or_absent_device_is_refused_before_any_work(device):
    from sersk.utils._device import resolve_device

    match = "numbered from 0" if torch.cuda.is_available() and device == "cuda:99" else device
    with pytest.raises(ValueError, match=match):
        resolve_device(device)
    X, y = make_band_energy_sequences(16, random_state=0)
    with pytest.raises(ValueError, match=match):
        CNNLSTMClassifier(**SMALL, device=device).fit(X, y)


def test_similar_length_batches_cover_every_clip_once_and_stay_shuffled():
    from sersk.nn.collate import SimilarLengthBatchSampler

    lengths = np.random.default_rng(0).integers(16, 300, 1000)
    sampler = SimilarLengthBatchSampler(lengths, batch_size=32, pool_batches=10)
    torch.manual_seed(0)
    first = list(sampler)
    second = list(sampler)
    assert len(first) == len(sampler) and sorted(i for b in first for i in b) == list(range(1000))
    assert first != second
    spread = np.mean([np.ptp(lengths[b]) for b in first])
    assert spread < 0.25 * np.ptp(lengths)  # batches hold clips of similar length


def test_batch_by_length_trains_and_is_seeded():
    X, y = make_band_energy_sequences(64, random_state=0, frames=(16, 120))
    a = CNNLSTMClassifier(**SMALL, max_epochs=1, batch_by_length=True, random_state=0, device="cpu").fit(X, y)
    b = CNNLSTMClassifier(**SMALL, max_epochs=1, batch_by_length=True, random_state=0, device="cpu").fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_split_to_budget_keeps_order_and_equal_parts_within_the_frame_budget():
    lengths = np.array([10, 300, 40, 280, 35, 20, 290, 15])
    batch = list(range(8))
    assert split_to_budget(batch, lengths, None) == [batch]
    assert split_to_budget(batch, lengths, 8 * 304) == [batch]
    parts = split_to_budget(batch, lengths, 700, min_frames=16, multiple=16)
    assert [i for part in parts for i in part] == batch  # the input order is kept
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # equal sizes
    for part in parts:
        assert len(part) == 1 or len(part) * padded_frames(lengths[part], 16, 16) <= 700
    # clips over the budget alone; those between them together where they fit
    assert split_to_budget(batch, lengths, 100) == [[0], [1], [2], [3], [4, 5], [6], [7]]
    # one long clip does not break the rest of its batch into single clips
    assert split_to_budget(range(8), np.array([100] * 7 + [1000]), 900) == [[0, 1, 2, 3, 4, 5, 6], [7]]


@pytest.mark.parametrize("batch_by_length", [False, True])
def test_max_batch_frames_bounds_every_training_batch(batch_by_length, monkeypatch):
    X, y = make_band_energy_sequences(40, random_state=0)  # 16 bands, 20-60 frames
    seen = []
    original = LeftPadCollate.__call__

    def recording(self, batch):
        inputs, target = original(self, batch)
        seen.append(tuple(inputs["x"].shape))
        return inputs, target

    monkeypatch.setattr(LeftPadCollate, "__call__", recording)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, batch_size=16, max_batch_frames=256, device="cpu",
                            random_state=0, batch_by_length=batch_by_length)
    clf.fit(X, y)
    assert sum(shape[0] for shape in seen) == 2 * 40
    assert all(shape[0] * shape[2] <= 256 for shape in seen)
    with pytest.raises(ValueError, match="max_batch_frames=0"):
        clone(clf).set_params(max_batch_frames=0).fit(X, y)


# ---- crops, masks and windows (the tuned preset's training) ----------------------------------------------


def test_training_collate_crops_and_masks_within_each_clip_and_is_seeded():
    from sersk.nn.collate import TrainingCollate

    rng = np.random.default_rng(0)
    clips = [rng.normal(size=(32, n)).astype(np.float32) + 10 for n in (20, 64, 100, 300)]
    collate = TrainingCollate(48, freq_mask_bands=8, time_mask_frames=6, min_frames=16, multiple=16)
    torch.manual_seed(0)
    inputs, _ = collate([(x, 0) for x in clips])
    assert inputs["lengths"].tolist() == [20, 48, 48, 48]  # longer clips cut to 48 frames; short ones whole
    assert inputs["x"].shape == (4, 32, 48)
    for row, clip in zip(inputs["x"], clips):
        n = min(clip.shape[1], 48)
        real = row[:, 48 - n :].numpy()
        assert (row[:, : 48 - n] == 0).all()  # left padding untouched
        kept = real != 0  # masked cells are 0 (the clips hold no zeros)
        bands, frames = (~kept).all(axis=1), (~kept).all(axis=0)
        assert np.array_equal(~kept, bands[:, None] | frames[None, :])  # masks cover whole bands and frames
        assert 0 < bands.sum() <= 2 * 7 and 0 < frames.sum() <= 2 * 5  # 2 masks each, narrower than 8 and 6
        # every unmasked frame is a contiguous window of the clip
        starts = [s for s in range(clip.shape[1] - n + 1) if np.allclose(clip[:, s : s + n][kept], real[kept])]
        assert starts
    torch.manual_seed(0)
    again, _ = collate([(x, 0) for x in clips])
    assert torch.equal(again["x"], inputs["x"])
    torch.manual_seed(1)
    assert not torch.equal(collate([(x, 0) for x in clips])[0]["x"], inputs["x"])


def test_random_spans_stay_in_each_rows_positions_with_uniform_widths():
    from sersk.nn.collate import random_spans

    torch.manual_seed(0)
    sizes, offsets = torch.tensor([5, 20, 64]), torch.tensor([59, 44, 0])
    masks = random_spans(sizes, 12, 3, 64, offsets=offsets)
    for mask, size, offset in zip(masks, sizes.tolist(), offsets.tolist()):
        assert not mask[:offset].any() and mask.sum() <= 3 * (min(12, size) - 1)
    one_span = random_spans(torch.full((4000,), 20), 12, 1, 20)
    assert one_span.sum(dim=1).max() == 11
    assert one_span.sum(dim=1).float().mean() == pytest.approx(5.5, abs=0.2)  # floor(U * 12): 0..11
    assert one_span[:, 0].any() and not one_span[:, -1].any()  # as in torchaudio: the last position stays


def test_warp_bands_moves_a_peak_and_keeps_the_identity():
    from sersk.nn.collate import warp_bands

    x = torch.zeros(64, 3)
    x[20] = 1.0
    torch.testing.assert_close(warp_bands(x, 1.0), x)
    assert int(warp_bands(x, 1.1)[:, 0].argmax()) == 22  # band 20 moves up to 22
    assert int(warp_bands(x, 0.9)[:, 0].argmax()) == 18
    ramp = torch.arange(64.0)[:, None].repeat(1, 2)
    squeezed = warp_bands(ramp, 0.8)  # past the top band: the top band
    torch.testing.assert_close(squeezed[:51, 0], torch.arange(51.0) / 0.8, atol=1e-5, rtol=0)
    assert (squeezed[51:] == 63).all()
    with pytest.raises(ValueError, match="factor=0"):
        warp_bands(x, 0)


def test_training_collate_warps_bands_with_the_seeded_generator():
    from sersk.nn.collate import TrainingCollate

    clips = [np.tile(np.arange(32, dtype=np.float32)[:, None], (1, 40)) for _ in range(8)]
    collate = TrainingCollate(freq_warp=0.2, min_frames=16, multiple=16)
    torch.manual_seed(0)
    warped = collate([(x, 0) for x in clips])[0]["x"]
    slopes = (warped[:, 10, -1] - warped[:, 9, -1]).numpy()  # 1 / factor for a ramp
    assert np.all((slopes > 1 / 1.2 - 1e-5) & (slopes < 1 / 0.8 + 1e-5)) and np.ptp(slopes) > 0.01
    torch.manual_seed(0)
    assert torch.equal(collate([(x, 0) for x in clips])[0]["x"], warped)


def test_random_band_offset_is_a_smooth_curve_of_the_asked_spread():
    from sersk.nn.collate import random_band_offset

    torch.manual_seed(0)
    curves = torch.stack([random_band_offset(129, 0.5)[:, 0] for _ in range(400)])
    assert curves.shape == (400, 129)
    # 5 knots at bands 0, 32, 64, 96, 128, straight lines between them
    second_difference = curves[:, 2:] - 2 * curves[:, 1:-1] + curves[:, :-2]
    off_knot = np.setdiff1d(np.arange(127), [31, 63, 95])
    assert second_difference[:, off_knot].abs().max() < 1e-5
    assert 0.45 < curves[:, ::32].std() < 0.55


def test_training_collate_offsets_each_clip_by_one_curve_over_its_real_frames():
    from sersk.nn.collate import TrainingCollate

    clips = [np.zeros((32, 20 + 5 * i), dtype=np.float32) for i in range(4)]
    collate = TrainingCollate(band_offset=0.3, min_frames=16, multiple=16)
    torch.manual_seed(0)
    inputs = collate([(x, 0) for x in clips])[0]
    x, lengths = inputs["x"], inputs["lengths"]
    for row, n in enumerate(lengths.tolist()):
        real = x[row, :, -n:]
        assert torch.equal(real, real[:, :1].expand_as(real)) and real.abs().max() > 0  # constant in time
        assert not x[row, :, : x.shape[-1] - n].any()  # padding untouched
    assert not torch.equal(x[0, :, -1], x[1, :, -1])  # a fresh curve per clip


def test_crop_windows_cover_each_clip_with_half_overlap():
    from sersk.nn.collate import crop_windows

    windows = crop_windows([10, 64, 100], 64)
    assert windows == [(0, 0, 10), (1, 0, 64), (2, 0, 64), (2, 32, 96), (2, 36, 100)]


def test_cropped_training_predicts_the_window_average_independently_of_the_batch(emodb_log_mels):
    X, y = emodb_log_mels
    clf = CNNLSTMClassifier(
        **SMALL, max_epochs=1, crop_frames=64, freq_mask_bands=16, time_mask_frames=12, random_state=0, device="cpu"
    ).fit(X, y)
    together = clf.predict_proba(X)
    alone = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together.sum(axis=1), 1, atol=1e-5)
    long = int(np.argmax([x.shape[1] for x in X]))
    windows = [X[long][:, s : s + 64] for s in range(0, X[long].shape[1] - 64 + 1, 32)]
    if (X[long].shape[1] - 64) % 32:
        windows.append(X[long][:, -64:])
    expected = np.mean([clf.set_params(predict_windows=False).predict_proba([w])[0] for w in windows], axis=0)
    np.testing.assert_allclose(clf.set_params(predict_windows=True).predict_proba(X[long : long + 1])[0], expected,
                               atol=1e-5)
    whole = clf.set_params(predict_windows=False).predict_proba(X[long : long + 1])[0]
    assert np.abs(whole - expected).max() > 1e-4


def test_delta_channels_are_batch_independent_and_add_only_first_conv_weights(emodb_log_mels):
    X, y = emodb_log_mels
    plain = sum(p.numel() for p in CNNLSTM().parameters())
    assert sum(p.numel() for p in CNNLSTM(deltas=True).parameters()) == plain + 2 * 9 * 64
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, module__deltas=True, crop_frames=64, random_state=0,
                            device="cpu").fit(X, y)
    assert clf.module_.blocks[0].conv.in_channels == 3
    together = clf.predict_proba(X)
    alone = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    other = clone(clf).set_params(module__deltas=False).fit(X, y)
    assert np.abs(other.predict_proba(X) - together).max() > 1e-4
    # a network pickled before the option existed has no ``deltas`` attribute: it reads the default
    before = other.predict_proba(X[:3])
    del other.module_.deltas
    assert "deltas" not in vars(other.module_)
    np.testing.assert_array_equal(other.predict_proba(X[:3]), before)


def test_mix_batch_mixes_pairs_and_keeps_the_longer_length():
    from sersk.nn.classifier import mix_batch

    torch.manual_seed(0)
    x = torch.zeros(4, 2, 32)
    for row, n in enumerate((8, 16, 24, 32)):
        x[row, :, 32 - n :] = row + 1
    lengths, y = torch.tensor([8, 16, 24, 32]), torch.arange(4)
    mixed, y_other, lam = mix_batch({"x": x, "lengths": lengths}, y, 0.4)
    assert 0 <= lam <= 1
    perm = y_other  # labels are the row numbers here
    torch.testing.assert_close(mixed["x"], lam * x + (1 - lam) * x[perm])
    assert mixed["lengths"].tolist() == torch.maximum(lengths, lengths[perm]).tolist()


def test_mixup_loss_weighs_each_label_of_a_pair(monkeypatch):
    import sersk.nn.classifier as classifier

    X, y = make_band_energy_sequences(40, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, mixup_alpha=0.4, random_state=0, device="cpu").fit(X, y)
    dataset = clf.get_dataset(X, y)  # the labels as fit takes them; each item encoded
    inputs, y_batch = next(iter(clf.get_iterator(dataset, training=False)))
    perm = torch.arange(len(y_batch)).flip(0)
    monkeypatch.setattr(classifier, "mix_batch", lambda x, t, alpha: (x, t[perm], 0.3))
    step = clf.train_step_single((inputs, y_batch))
    ce = torch.nn.functional.cross_entropy
    expected = 0.3 * ce(step["y_pred"], y_batch) + 0.7 * ce(step["y_pred"], y_batch[perm])
    torch.testing.assert_close(step["loss"], expected)
    assert not torch.isclose(step["loss"], ce(step["y_pred"], y_batch))


def test_mixup_is_a_seeded_parameter_that_changes_training():
    X, y = make_band_energy_sequences(40, random_state=0)
    params = dict(**SMALL, max_epochs=2, random_state=0, device="cpu")
    mixed = CNNLSTMClassifier(**params, mixup_alpha=0.4).fit(X, y)
    again = clone(mixed).fit(X, y)
    plain = CNNLSTMClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(mixed.predict_proba(X), again.predict_proba(X))
    assert np.abs(mixed.predict_proba(X) - plain.predict_proba(X)).max() > 1e-4
    assert clone(mixed).get_params()["mixup_alpha"] == 0.4


def test_cosine_schedule_and_label_smoothing_are_parameters():
    X, y = make_band_energy_sequences(40, random_state=0)
    clf = CNNLSTMClassifier(
        **SMALL, max_epochs=4, lr_schedule="cosine", criterion__label_smoothing=0.1, random_state=0, device="cpu"
    ).fit(X, y)
    lrs = clf.history[:, "event_lr"]
    assert lrs[0] == pytest.approx(0.005) and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert clf.criterion_.label_smoothing == 0.1
    assert clone(clf).get_params()["criterion__label_smoothing"] == 0.1


def test_skorchs_optimizer_lr_and_group_rates_are_what_trains():
    """The schedule started every group from ``lr``: optimizer__lr and per-group rates were ignored."""
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, optimizer__lr=0.1, max_epochs=3, random_state=0, device="cpu").fit(X, y)
    assert clf.history[:, "event_lr"] == pytest.approx([0.1, 0.1, 0.01])
    clf.set_params(warm_start=True, max_epochs=1).fit(X, y)  # the schedule goes on from 0.1
    assert clf.history[-1, "event_lr"] == pytest.approx(0.01)
    clf.set_params(lr=0.02).fit(X, y)  # a new rate for every group, its schedule at its fifth epoch
    assert clf.history[-1, "event_lr"] == pytest.approx(0.0002)
    grouped = CNNLSTMClassifier(**SMALL, optimizer__param_groups=[("fc.*", {"lr": 0.05})], max_epochs=1,
                                random_state=0, device="cpu").fit(X, y)
    assert [group["lr"] for group in grouped.optimizer_.param_groups] == pytest.approx([0.05, 0.005])


@pytest.mark.parametrize("new_rate", [{"optimizer__lr": 0.03}, {"optimizer__param_groups__0__lr": 0.03}])
def test_a_rate_set_between_warm_starts_is_the_new_start_of_the_schedule(new_rate):
    """optimizer__lr set between warm starts was ignored: the schedule went back to its old start."""
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, warm_start=True, random_state=0, device="cpu").fit(X, y)
    clf.set_params(max_epochs=1, **new_rate).fit(X, y)  # the third epoch of a schedule starting at 0.03
    assert clf.history[-1, "event_lr"] == pytest.approx(0.003)
    assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(0.003)


def test_a_new_rate_equal_to_the_scheduled_one_is_still_a_new_start():
    """Told apart by value, set_params(lr=5e-4) after two epochs (where the schedule stood) restarted it at 5e-3."""
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, warm_start=True, random_state=0, device="cpu").fit(X, y)
    clf.set_params(lr=0.0005, max_epochs=1).fit(X, y)
    assert clf.history[-1, "event_lr"] == pytest.approx(0.00005)


def test_a_warm_start_replays_its_schedule_with_no_warning_and_no_process_wide_filter():
    """The replay silenced torch's "lr_scheduler.step() before optimizer.step()" with catch_warnings,
    whose filter is the process's: threads warm-starting at once could leave it in place."""
    import warnings
    from unittest import mock

    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, warm_start=True, random_state=0, device="cpu").fit(X, y)
    clf = pickle.loads(pickle.dumps(clf))  # a loaded model's optimizer has not stepped in this process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with mock.patch.object(warnings, "simplefilter", wraps=warnings.simplefilter) as simplefilter:
            clf.set_params(max_epochs=1).fit(X, y)
    assert not [call for call in simplefilter.call_args_list if call.args[:1] == ("ignore",)]
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]
    assert clf.history[-1, "event_lr"] == pytest.approx(0.0005)  # the third epoch of the schedule


def test_a_warm_start_resumes_the_schedule_at_its_rate_whatever_another_callback_did():
    """A rate changed by a user's callback was taken for a new start: the decay compounded at each
    warm start (1.25e-05 at the third epoch). The schedule's own rate is taken up again (documented)."""
    from skorch.callbacks import Callback

    class Halve(Callback):
        def on_epoch_end(self, net, **kwargs):
            for group in net.optimizer_.param_groups:
                group["lr"] /= 2

    class Record(Callback):
        def on_epoch_begin(self, net, **kwargs):
            net.history.record("lr_used", net.optimizer_.param_groups[0]["lr"])

    X, y = make_band_energy_sequences(16, random_state=0)
    callbacks = [("halve", Halve()), ("record", Record())]
    warm = CNNLSTMClassifier(**SMALL, max_epochs=2, warm_start=True, callbacks=callbacks, random_state=0, device="cpu")
    warm.fit(X, y).fit(X, y)
    assert warm.history[:, "lr_used"] == pytest.approx([0.005, 0.0025, 0.0005, 0.00025])


def test_a_new_lr_trains_after_the_callbacks_were_rebuilt():
    """With the callbacks rebuilt between warm starts, a new lr was ignored (the scheduler kept no
    record of the rate it had left)."""
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=2, warm_start=True, random_state=0, device="cpu").fit(X, y)
    clf.set_params(callbacks__lr_scheduler__step_size=2)  # rebuilds the callbacks on the next fit
    clf.set_params(lr=0.02, max_epochs=1).fit(X, y)
    assert clf.history[-1, "event_lr"] == pytest.approx(0.002)
    clf.fit(X, y)  # and with no new rate, the schedule goes on from its start
    assert clf.history[-1, "event_lr"] == pytest.approx(0.002)


def test_a_cosine_over_warm_starts_with_its_total_length_continues_one_long_fit():
    X, y = make_band_energy_sequences(16, random_state=0)
    params = dict(**SMALL, lr_schedule="cosine", random_state=0, device="cpu")
    long_fit = CNNLSTMClassifier(**params, max_epochs=4).fit(X, y)
    warm = CNNLSTMClassifier(**params, max_epochs=2, warm_start=True, callbacks__lr_scheduler__T_max=4)
    warm.fit(X, y).fit(X, y)
    assert warm.history[:, "event_lr"] == pytest.approx(long_fit.history[:, "event_lr"])
    # without it, the second fit's cosine is 2 epochs long and rises again past them (documented)
    short = CNNLSTMClassifier(**params, max_epochs=2, warm_start=True).fit(X, y).fit(X, y)
    assert short.history[-1, "event_lr"] > short.history[-2, "event_lr"]


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"crop_frames": 0}, "crop_frames=0"),
        ({"freq_mask_bands": -1}, "freq_mask_bands=-1"),
        ({"time_mask_frames": 2.5}, "time_mask_frames=2.5"),
        ({"lr_schedule": "linear"}, "lr_schedule='linear'"),
        ({"mixup_alpha": -1.0}, "mixup_alpha=-1.0"),
        ({"freq_warp": 1.5}, "freq_warp=1.5"),
        ({"band_offset": -0.1}, "band_offset=-0.1"),
        ({"mixup_alpha": True}, "mixup_alpha=True"),
        ({"max_epochs": True}, "max_epochs=True"),  # was one epoch
        ({"batch_size": 0}, "batch_size=0; expected a positive integer"),  # was torch's sampler's error
        ({"lr": -0.1}, "lr=-0.1"),
        # the yes/no options took any string, "no" for yes (compile="no" compiled the network)
        ({"warm_start": "no"}, "warm_start='no'; expected True or False"),
        ({"compile": "no"}, "compile='no'; expected True or False"),
        ({"batch_by_length": "no"}, "batch_by_length='no'"),
        ({"predict_windows": 0}, "predict_windows=0"),
        # the weights were blamed on the learning rate ("training diverged ... lower the learning rate")
        ({"class_weight": {"class0": -1.0}}, r"class_weight\['class0'\]=-1.0; expected a non-negative number"),
        ({"class_weight": {"class0": float("nan")}}, r"class_weight\['class0'\]=nan"),
        ({"class_weight": {"class0": "x"}}, r"class_weight\['class0'\]='x'"),  # was float()'s error
        ({"class_weight": {"class0": 0, "class1": 0}}, "weighs every class 0"),
        ({"module__padding": "reference"}, "module__padding='reference', but padding='masked'"),  # was ignored
        # a misspelled callback given to the constructor was ignored (set_params refused it)
        ({"callbacks__lr_schedular__step_size": 1}, "callbacks__lr_schedular__step_size: there is no callback "
                                                    "named 'lr_schedular'; the callbacks are"),
        # torch divided by zero in the first epoch, or the rate turned negative
        ({"callbacks__valid_accc": None}, "callbacks__valid_accc: there is no callback named 'valid_accc'"),  # a switch-off
        ({"callbacks__lr_scheduler__step_size": 0}, "callbacks__lr_scheduler__step_size=0; expected a positive"),
        ({"lr_schedule": "cosine", "callbacks__lr_scheduler__T_max": 0}, "callbacks__lr_scheduler__T_max=0"),
        ({"callbacks__lr_scheduler__gamma": -1}, "callbacks__lr_scheduler__gamma=-1; expected a positive number"),
        # skorch's "'str' object is not callable", torch's sampler's error, a TypeError at a comparison
        ({"optimizer": "adam"}, "optimizer='adam'; expected a class"),
        ({"criterion": "CrossEntropyLoss"}, "criterion='CrossEntropyLoss'; expected a class"),
        ({"train_split": "0.2"}, "train_split='0.2'; expected None or a callable"),
        ({"iterator_train__batch_size": 0}, "iterator_train__batch_size=0; expected a positive integer"),
        ({"iterator_valid__batch_size": "4"}, "iterator_valid__batch_size='4'"),
    ],
)
def test_bad_training_options_are_named(params, problem):
    X, y = make_band_energy_sequences(8, random_state=0)
    with pytest.raises(ValueError, match=problem):
        CNNLSTMClassifier(**SMALL, **params, device="cpu").fit(X, y)


@pytest.mark.parametrize(
    "setting, problem",
    [({"optimizer__lr": -1.0}, "Invalid learning rate: -1.0"), ({"optimizer__weight_decay": -1.0}, "weight_decay"),
     ({"optimizer__betas": (1.5, 0.9)}, "beta")],
)
def test_a_warm_start_refuses_optimizer_settings_torch_refuses(setting, problem):
    """set_params writes optimizer__* into the fitted optimizer, where torch never checks them: a
    negative learning rate trained the network backwards, with no error."""
    X, y = make_band_energy_sequences(8, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    before = clf.predict_proba(X)
    clf.set_params(warm_start=True, **setting)
    with pytest.raises(ValueError, match=f"warm_start=True continues with optimizer settings Adam refuses: .*{problem}"):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    clf.set_params(optimizer__lr=0.001, optimizer__weight_decay=0.0, optimizer__betas=(0.9, 0.999)).fit(X, y)
    assert len(clf.history) == 2  # valid settings train on


def test_balanced_class_weights_follow_the_training_labels():
    X, y = make_band_energy_sequences(40, random_state=0)
    y = np.where(np.arange(40) < 30, "common", "rare")
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, class_weight="balanced", random_state=0, device="cpu").fit(X, y)
    np.testing.assert_allclose(clf.class_weight_, [40 / (2 * 30), 40 / (2 * 10)])
    np.testing.assert_allclose(clf.criterion_.weight.numpy(), clf.class_weight_)
    plain = clone(clf).set_params(class_weight=None).fit(X, y)
    assert plain.class_weight_ is None and plain.criterion_.weight is None
    by_label = clone(clf).set_params(class_weight={"rare": 5.0}).fit(X, y)
    np.testing.assert_allclose(by_label.criterion_.weight.numpy(), [1.0, 5.0])
    with pytest.raises(ValueError, match="class_weight='auto'"):
        clone(clf).set_params(class_weight="auto").fit(X, y)
    with pytest.raises(ValueError, match=r"class_weight names \['rar'\], which are not among the classes"):
        clone(clf).set_params(class_weight={"rar": 5.0}).fit(X, y)
    every = clone(clf).set_params(class_weight={"common": 1.0, "rare": 5.0, "absent": 2.0}).fit(X, y)
    np.testing.assert_allclose(every.criterion_.weight.numpy(), [1.0, 5.0])  # a label this y lacks is fine
    warm = clone(clf).set_params(warm_start=True).fit(X, y).set_params(class_weight=None).fit(X, y)
    assert warm.class_weight_ is None and warm.criterion_.weight is None  # the weighted loss is not kept


ONEDNN_CONV_TWICE = """
import sersk, torch
conv = torch.nn.Conv2d(2, 8, 3, padding=1).to(memory_format=torch.channels_last)
x = torch.randn(2, 2, 16, 16).contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    conv(x), conv(x)
"""


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
@pytest.mark.parametrize("user_setting, cached", [(None, False), ("1024", True)])
def test_importing_sersk_turns_onednn_primitive_cache_off_unless_the_user_set_it(user_setting, cached):
    """The same convolution twice: oneDNN makes its kernel again (nothing cached, nothing left
    pinned in the heap mid-step) unless the user chose a cache capacity."""
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    env["ONEDNN_VERBOSE"] = "profile_create"
    if user_setting is not None:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = user_setting
    run = subprocess.run([sys.executable, "-c", ONEDNN_CONV_TWICE], env=env, capture_output=True, text=True, check=True)
    created = [line for line in run.stdout.splitlines() if ",convolution," in line and "create:cache_" in line]
    assert len(created) == 2
    assert ("create:cache_hit" in created[1]) == cached


def test_a_model_whose_lstm_weights_share_one_block_pickles_each_weight_once():
    # cuDNN keeps the LSTM's weights as views of one block (emulated here on the CPU); pickle wrote
    # the whole block once per weight
    X, y = make_band_energy_sequences(32, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    separate = len(pickle.dumps(clf))
    weights = clf.module_.lstm._flat_weights
    block = torch.cat([w.detach().reshape(-1) for w in weights])
    start = 0
    for w in weights:
        w.data = block[start : start + w.numel()].view_as(w)
        start += w.numel()
    expected = clf.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(clf))
    assert len(pickle.dumps(clf)) < 1.05 * separate  # 1.22x larger before, for this small network
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    optimized = {id(p) for group in loaded.optimizer_.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in loaded.module_.parameters()}  # still the network's own parameters


def test_a_3d_array_of_equal_length_clips_is_read_as_a_list_of_them():
    X, y = make_band_energy_sequences(24, random_state=0, frames=(32, 32))
    stacked = np.stack(list(X))
    assert stacked.ndim == 3
    a = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    b = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(stacked, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(stacked))
    assert not hasattr(b, "partial_fit")  # skorch's would skip sersk's checks and label encoding
    with pytest.raises(AttributeError) as raised:
        b.partial_fit(X, y)
    assert "fit with warm_start=True continues training" in str(raised.value.__cause__)  # what to use instead


def test_a_failed_move_to_the_device_leaves_the_device_asked_for(monkeypatch):
    X, y = make_band_energy_sequences(16, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0).fit(X, y)

    def out_of_memory(self):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(CNNLSTMClassifier, "_move_to_device", out_of_memory)
    with pytest.raises(RuntimeError, match="out of memory"):
        clf.predict(X)
    assert clf.device == "auto" and "_device_requested" not in clf.__dict__
    monkeypatch.undo()
    assert clf.predict(X).shape == (16,) and clf.device == "auto"


@pytest.mark.slow  # compiling takes about half a minute on 2 cores
def test_a_compiled_network_trains_as_the_eager_one():
    """skorch's ``compile=True`` (torch.compile) on the CPU: the same first epoch, up to rounding."""
    X, y = make_band_energy_sequences(32, random_state=0)
    kwargs = dict(**SMALL, max_epochs=2, device="cpu", random_state=0)
    eager = CNNLSTMClassifier(**kwargs).fit(X, y)
    compiled = CNNLSTMClassifier(**kwargs, compile=True).fit(X, y)
    assert compiled.history[0]["train_loss"] == pytest.approx(eager.history[0]["train_loss"], rel=1e-5)
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), atol=1e-2)


def test_get_params_reports_the_schedule_values_a_user_set():
    from sersk import make_pipeline

    assert CNNLSTMClassifier().get_params()["callbacks__lr_scheduler__step_size"] == 2  # the recipe's
    for net in (CNNLSTMClassifier(callbacks__lr_scheduler__step_size=3),
                CNNLSTMClassifier().set_params(callbacks__lr_scheduler__step_size=3)):
        assert net.get_params()["callbacks__lr_scheduler__step_size"] == 3  # was 2, a fresh default's
    tuned = make_pipeline("tuned").set_params(net__callbacks__lr_scheduler__T_max=100)
    schedule = {key: value for key, value in tuned.get_params().items() if "lr_scheduler__" in key}
    copy = make_pipeline("tuned").set_params(**schedule)  # as a search sets what it read
    assert copy.get_params()["net__callbacks__lr_scheduler__T_max"] == 100
    assert dict(copy[-1].callbacks_)["lr_scheduler"].kwargs["T_max"] == 100


@pytest.mark.parametrize("setting", [{"classes": ["a", "b"]}, {"class_weight": {"a": 2.0, "b": 1.0}}])
def test_labels_named_as_text_against_integer_codes_point_at_the_wrapper(setting):
    X, _ = make_band_energy_sequences(12, random_state=0)
    codes = np.array([0, 1] * 6)  # what VotingClassifier or StackingClassifier fit their members on
    # integers given directly are not always a wrapper's codes (an extensibility review): both causes are named
    with pytest.raises(ValueError, match=r"y holds integers and these names are text: give both of one kind \(integer "
                                         r"codes are what VotingClassifier, StackingClassifier"):
        CNNLSTMClassifier(**SMALL, max_epochs=1, **setting).fit(X, codes)
    with pytest.raises(ValueError, match=r"not among classes=\['a', 'c'\]$"):  # text labels: no such hint
        CNNLSTMClassifier(**SMALL, max_epochs=1, classes=["a", "c"]).fit(X, np.array(["a", "b"] * 6))
    with pytest.raises(ValueError, match=r"not among classes=\['a', 'b'\]$"):  # bools are labels, not codes
        CNNLSTMClassifier(**SMALL, max_epochs=1, classes=["a", "b"]).fit(X, np.array([True, False] * 6))


def test_seeded_fits_in_two_threads_at_once_leave_the_global_generator_as_it_was():
    """Each fit restored the generator state it found on entry, which could be the other fit's
    seeded one: the second to finish left it there (found by a concurrency review, with
    GridSearchCV on joblib's threading backend)."""
    import threading

    from skorch.callbacks import Callback

    class Gate(Callback):  # holds a fit in the block where its generator is seeded
        def __init__(self, entered, go):
            self.entered, self.go = entered, go

        def on_train_begin(self, net, **kwargs):
            self.entered.set()
            assert self.go.wait(60)

    X, y = make_band_energy_sequences(24, random_state=0)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    events = [threading.Event() for _ in range(4)]
    fits = [
        threading.Thread(target=CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=seed, device="cpu",
                                                  callbacks=[("gate", Gate(entered, go))]).fit, args=(X, y))
        for seed, (entered, go) in enumerate([events[:2], events[2:]])
    ]
    fits[0].start()
    assert events[0].wait(60)  # the first fit has seeded the generator
    fits[1].start()
    assert events[2].wait(60)  # the second found that seeded state on entry
    events[1].set()
    fits[0].join()  # the first ends, then the second
    events[3].set()
    fits[1].join()
    assert torch.equal(torch.get_rng_state(), before)


def test_a_fresh_fit_and_scoring_set_no_process_wide_warning_filter(monkeypatch):
    """``warnings.catch_warnings`` saves and restores the process's filter list: two threads
    entering and leaving at once left one's "ignore UserWarning" in place for good (a concurrency
    review caught it with 8 threads). A fresh fit and ``score_predictions`` enter none now."""
    import sys
    import warnings

    from sersk.evaluation import score_predictions

    entered = []
    catch_warnings = warnings.catch_warnings

    def recorded(*args, **kwargs):
        entered.append(sys._getframe(1).f_globals["__name__"])
        return catch_warnings(*args, **kwargs)

    monkeypatch.setattr(warnings, "catch_warnings", recorded)
    X, y = make_band_energy_sequences(24, random_state=0)
    clf = CNNLSTMClassifier(**SMALL, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    scores = score_predictions(["a", "a", "b"], ["a", "c", "b"])  # a class predicted, absent from y_true
    assert scores["uar"] == 0.75
    assert not [name for name in entered if name.startswith("sersk")], entered
    clf.set_params(warm_start=True).fit(X, y)  # a warm start replays the schedule, warnings silenced
    assert len(clf.history) == 2


def test_the_generator_blocks_nest_in_a_thread_and_a_failed_entry_counts_nothing(monkeypatch):
    """A block inside another of the same thread restores what it found, as torch's fork_rng does
    (the counted blocks restored only at the outermost exit, so an inner seeding leaked into the
    outer block's draws); a block whose entry fails leaves no count behind (later blocks restored
    nothing). Found by a diff review."""
    from sersk.utils import _device

    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    with _device.generators_restored([]):
        first = torch.rand(1)
        with _device.generators_restored([]):
            torch.manual_seed(99)
            torch.rand(5)
        second = torch.rand(1)
    assert torch.equal(torch.cat([first, second]), expected)

    def failing(device):
        raise RuntimeError("CUDA error: initialization error")

    monkeypatch.setattr(torch.cuda, "get_rng_state", failing)
    with pytest.raises(RuntimeError, match="initialization error"):
        with _device.generators_restored([0]):
            pass
    before = torch.get_rng_state()
    with _device.generators_restored([]):
        torch.manual_seed(1)
    assert torch.equal(torch.get_rng_state(), before)
