"""The end-to-end pipeline: paths in, labels out; no leakage; grouped CV; caching; persistence."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
import soundfile as sf
import torch
from joblib import Memory
from sklearn.base import clone
from skorch.callbacks import Callback
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, StratifiedGroupKFold, cross_validate

from sersk import CNNLSTM, AudioLoader, AugmentingResampler, BandStandardizer, CNNLSTMClassifier, EmotionPipeline, LogMelTransformer, make_pipeline
from sersk.model_selection import reference_split, speaker_disjoint_split
from sersk.utils.synthetic import make_tone

from predictions import assert_labels_agree_where_decided

SMALL_NET = {
    "net__module__filters": (4, 4, 8, 8),
    "net__module__hidden_size": 8,
    "net__max_epochs": 1,
    "net__device": "cpu",
    "logmel__device": "cpu",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """18 short WAVs: 3 speakers x 2 emotions x 3 clips; each clip a different length."""
    root = tmp_path_factory.mktemp("corpus")
    paths, labels, speakers = [], [], []
    for i in range(18):
        speaker, emotion = f"s{i % 3}", ["low", "high"][(i // 3) % 2]
        path = root / f"{speaker}_{emotion}_{i}.wav"
        wave = make_tone(200 if emotion == "low" else 2000, (10240 + 512 * i) / 16000)
        sf.write(path, wave, 16000)
        paths.append(str(path))
        labels.append(emotion)
        speakers.append(speaker)
    return np.array(paths), np.array(labels), np.array(speakers)


def small_pipeline(**params):
    return make_pipeline(n_augmentations=2, random_state=0).set_params(**{**SMALL_NET, **params})


def small_tuned(random_state=0, memory=None, **params):
    """The tuned preset with the small network; ``params`` set on top (e.g. ``net__crop_frames``)."""
    return make_pipeline("tuned", random_state=random_state, memory=memory).set_params(**{**SMALL_NET, **params})


def test_fits_on_paths_and_predicts_one_label_per_path(corpus, monkeypatch):
    paths, labels, _ = corpus
    calls = {"resample": 0}
    original = AugmentingResampler.fit_resample

    def counting(self, X, y):
        calls["resample"] += 1
        return original(self, X, y)

    monkeypatch.setattr(AugmentingResampler, "fit_resample", counting)
    pipe = small_pipeline().fit(paths, labels)
    assert calls["resample"] == 1
    assert len(pipe[-1].history) == 1
    pred = pipe.predict(paths[:5])
    proba = pipe.predict_proba(paths[:5])
    score = pipe.score(paths, labels)
    assert pred.shape == (5,) and proba.shape == (5, 2)
    assert list(pred) == list(pipe.classes_[proba.argmax(axis=1)])
    assert score == np.mean(pipe.predict(paths) == labels)
    assert calls["resample"] == 1  # never at predict, predict_proba or score


def test_the_network_trains_on_augmented_copies_only(corpus, monkeypatch):
    paths, labels, _ = corpus
    seen = {}
    original = CNNLSTMClassifier.fit

    def spy(self, X, y, **kw):
        seen["n"] = len(X)
        return original(self, X, y, **kw)

    monkeypatch.setattr(CNNLSTMClassifier, "fit", spy)
    small_pipeline().set_params(augment__n_augmentations=3).fit(paths, labels)
    assert seen["n"] == 3 * len(paths)


def test_no_copy_of_a_training_clip_reaches_validation(corpus, monkeypatch):
    paths, labels, speakers = corpus
    seen = {}
    resample, fit = AugmentingResampler.fit_resample, CNNLSTMClassifier.fit

    def spy_resample(self, X, y):
        seen["train_lengths"] = {len(x) for x in X}
        return resample(self, X, y)

    def spy_fit(self, X, y, validation_data=None, **kw):
        seen["valid"] = validation_data
        return fit(self, X, y, validation_data=validation_data, **kw)

    monkeypatch.setattr(AugmentingResampler, "fit_resample", spy_resample)
    monkeypatch.setattr(CNNLSTMClassifier, "fit", spy_fit)
    pipe = small_pipeline().set_params(validation_fraction=0.3)
    pipe.fit(paths, labels, groups=speakers)
    X_val, y_val = seen["valid"]
    # each clip has its own length, so frame counts identify the clips
    train_frames = {1 + (n - 2048) // 512 for n in seen["train_lengths"]}
    assert len(X_val) == 6 and not train_frames & {x.shape[1] for x in X_val}
    assert len(seen["train_lengths"]) == 12
    held = pipe.validation_indices_  # the held-out clips, by position in X
    assert sorted(1 + (len(sf.read(paths[i])[0]) - 2048) // 512 for i in held) == sorted(x.shape[1] for x in X_val)


@pytest.mark.parametrize("validate", [False, True])
def test_a_verbose_pipeline_reports_every_step(corpus, validate, capsys):
    """``verbose=True`` prints imbalanced-learn's line for each step: for the network too when a
    validation set is given (which fits it apart)."""
    paths, labels, _ = corpus
    pipe = small_tuned(verbose=True, net__verbose=0)
    pipe.fit(paths[4:], labels[4:], **({"validation_data": (paths[:4], labels[:4])} if validate else {}))
    out = capsys.readouterr().out
    n = len(pipe.steps)
    assert [f"(step {i} of {n})" in out for i in range(1, n + 1)] == [True] * n
    assert f"(step {n} of {n}) Processing net" in out


def test_grouped_cv_never_trains_on_a_test_speaker(corpus, monkeypatch):
    paths, labels, speakers = corpus
    speaker_of = dict(zip(paths, speakers))
    folds = []
    fit = EmotionPipeline.fit

    @functools.wraps(fit)  # its signature: scikit-learn before 1.8 reads the parameters fit can be given
    def spy(self, X, y=None, **kw):
        folds.append({speaker_of[p] for p in X})
        return fit(self, X, y, **kw)

    monkeypatch.setattr(EmotionPipeline, "fit", spy)
    result = cross_validate(
        small_pipeline(), paths, labels, groups=speakers, cv=LeaveOneGroupOut(), return_indices=True
    )
    for train_speakers, test_idx in zip(folds, result["indices"]["test"]):
        assert not train_speakers & set(speakers[test_idx])
    assert len(folds) == 3


def test_grid_search_with_cached_features(corpus, tmp_path, monkeypatch):
    paths, labels, speakers = corpus
    counts = {"load": 0, "logmel": 0}
    load, logmel = AudioLoader.transform, LogMelTransformer.transform

    def count_load(self, X):
        counts["load"] += 1
        return load(self, X)

    def count_logmel(self, X):
        counts["logmel"] += 1
        return logmel(self, X)

    monkeypatch.setattr(AudioLoader, "transform", count_load)
    monkeypatch.setattr(LogMelTransformer, "transform", count_logmel)
    pipe = small_pipeline().set_params(memory=Memory(tmp_path / "cache", verbose=0))
    grid = {"net__lr": [0.005, 0.01], "net__module__hidden_size": [4, 8]}
    search = GridSearchCV(pipe, grid, cv=StratifiedGroupKFold(n_splits=3), refit=False)
    search.fit(paths, labels, groups=speakers)
    n_folds, n_candidates = 3, 4
    # fitting: each fold's training clips are decoded and featurised once, not once per candidate;
    # scoring decodes and featurises each candidate's test fold (transform is not cached)
    fit_calls = n_folds
    score_calls = n_folds * n_candidates
    assert counts["load"] == fit_calls + score_calls
    assert counts["logmel"] == fit_calls + score_calls
    assert len(search.cv_results_["params"]) == n_candidates


def test_pipeline_and_best_estimator_round_trip_through_joblib(corpus, tmp_path):
    paths, labels, speakers = corpus
    search = GridSearchCV(small_pipeline(), {"net__lr": [0.005, 0.01]}, cv=LeaveOneGroupOut())
    search.fit(paths, labels, groups=speakers)
    joblib.dump(search.best_estimator_, tmp_path / "best.joblib")
    loaded = joblib.load(tmp_path / "best.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(paths), search.best_estimator_.predict_proba(paths))
    assert clone(search.best_estimator_).get_params()["augment__n_augmentations"] == 2


def test_same_seed_same_pipeline(corpus):
    paths, labels, _ = corpus
    a = small_pipeline().fit(paths, labels).predict_proba(paths)
    b = small_pipeline().fit(paths, labels).predict_proba(paths)
    np.testing.assert_array_equal(a, b)


class LikePandasNA:
    """Behaves as pandas' ``NA`` (a pandas string column's missing value): its comparisons give NA,
    which has no truth value."""

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self

    def __ne__(self, other):
        return self

    def __bool__(self):
        raise TypeError("boolean value of NA is ambiguous")


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"y": ["low"] * 5}, "18 clips but y has 5"),
        ({"groups": ["s0"] * 3}, "groups has 3 entries"),
        # numpy turned NaN or None among strings into a class "nan" or "None" (or sorted None with str: TypeError)
        ({"y": ["low", np.nan] * 9}, r"y has a missing label \(None, NaN or NA\) at position 1 \(9 in all\)"),
        ({"y": ["low", None] * 9}, r"y has a missing label \(None, NaN or NA\) at position 1"),
        ({"y": ["low", 1] * 9}, r"y mixes text and numbers \('low' at position 0, 1 at position 1\)"),
        ({"y": ["low", LikePandasNA()] * 9}, r"y has a missing label .* at position 1"),  # was numpy's TypeError
        ({"groups": ["s0", None] * 9}, r"groups has a missing speaker .* at position 1"),  # was: '<' not supported
        ({"X": "one.wav"}, "got a single path 'one.wav': wrap it in a list"),  # was "X has 7 clips but y has 18"
    ],
)
def test_bad_fit_input_fails_before_any_work(corpus, kwargs, problem):
    paths, labels, _ = corpus
    y, X = kwargs.pop("y", labels), kwargs.pop("X", paths)
    pipe = small_pipeline().set_params(validation_fraction=0.3)
    with pytest.raises(ValueError, match=problem):
        pipe.fit(X, y, **kwargs)


@pytest.mark.parametrize(
    "fraction, y, problem",
    [
        (0.3, None, "validation_fraction holds out labelled clips to validate on: fit needs y"),
        ("0.3", "labels", r"validation_fraction='0.3'; expected a float in \(0, 1\)"),
        (1.5, "labels", r"validation_fraction=1.5; expected a float in \(0, 1\)"),
        # was scikit-learn's own "The least populated class in y has only 1 member", validation_fraction unnamed
        (0.3, "a label of one clip", r"validation_fraction=0.3 holds out a share of each label's clips, which these "
         r"labels cannot give \(The least populated class.*\); .* or the speakers \(groups\)"),
    ],
)
def test_a_bad_validation_fraction_or_no_labels_fails_before_any_work(corpus, fraction, y, problem):
    paths, labels, _ = corpus
    if y == "a label of one clip":
        labels = np.where(np.arange(len(labels)) == 0, "lonely", labels)
    with pytest.raises(ValueError, match=problem):
        small_pipeline().set_params(validation_fraction=fraction).fit(paths, labels if y else None)


def twice(X, y):
    """A sampler's function: each clip twice."""
    return np.concatenate([X, X]), np.concatenate([y, y])


def band_means(X):
    """Each clip's mean log-mel per band: fixed-length features for a scikit-learn classifier."""
    return np.stack([x.mean(axis=1) for x in X])


def test_the_networks_own_validation_fraction_after_augmentation_is_refused(corpus, monkeypatch):
    # it held out augmented copies whose source clips had other copies in training (an evaluation review)
    paths, labels, _ = corpus
    monkeypatch.setattr(AugmentingResampler, "fit_resample", lambda *a, **k: pytest.fail("augmented"))
    with pytest.raises(ValueError, match=r"net__validation_fraction=0.3 would hold out samples made by the 'augment' "
                       r"step \(augmented copies, .*set the pipeline's validation_fraction instead"):
        small_pipeline(net__validation_fraction=0.3).fit(paths, labels)
    monkeypatch.undo()
    from imblearn import FunctionSampler

    duplicating = EmotionPipeline([  # any sampler's samples can share a source clip (a diff review)
        ("load", AudioLoader()), ("dup", FunctionSampler(func=twice, validate=False)),
        ("logmel", LogMelTransformer(device="cpu")), ("net", CNNLSTMClassifier(
            module__filters=(4, 4, 8, 8), module__hidden_size=8, max_epochs=1, device="cpu", validation_fraction=0.25,
        )),
    ])
    with pytest.raises(ValueError, match=r"net__validation_fraction=0.25 would hold out samples made by the 'dup' step"):
        duplicating.fit(paths, labels)
    # scikit-learn's validation_fraction (early stopping's, 0.1 by default) is the final step's own affair
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import FunctionTransformer

    pooled = EmotionPipeline([
        ("load", AudioLoader()), ("augment", AugmentingResampler(n_augmentations=1, random_state=0)),
        ("logmel", LogMelTransformer(device="cpu")), ("pool", FunctionTransformer(band_means)),
        ("clf", SGDClassifier(random_state=0)),
    ])
    assert pooled.fit(paths, labels).predict(paths).shape == (len(paths),)


def test_reference_split_matches_the_reference_counts():
    y = np.repeat(list("WLEAFTN"), [127, 81, 46, 69, 71, 62, 79])
    split = reference_split(y, random_state=0)
    assert [len(p) for p in split] == [371, 77, 87]
    assert len(np.unique(np.concatenate(split))) == len(y)
    np.testing.assert_array_equal(reference_split(y, random_state=0).test, split.test)
    assert not np.array_equal(reference_split(y, random_state=1).test, split.test)


def test_speaker_disjoint_split_keeps_speakers_apart():
    rng = np.random.default_rng(0)
    speakers = rng.choice([f"{s:02d}" for s in range(10)], 500)
    y = rng.choice(list("abc"), 500)
    split = speaker_disjoint_split(y, speakers, random_state=0)
    parts = [set(speakers[p]) for p in split]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, split)) == 500
    # speakers may mix text and numbers (compared as text); NaN among them is refused (it fell out of every part)
    for mixed in (["s1", 2, "s3", 4, "s1", 2], np.array(["s1", 2, "s3", 4, "s1", 2], dtype=object)):  # a pandas column
        assert sum(map(len, speaker_disjoint_split(["a", "b"] * 3, mixed, random_state=0))) == 6
    with pytest.raises(ValueError, match=r"groups has a missing speaker \(None, NaN or NA\) at position 2"):
        speaker_disjoint_split(["a", "b"] * 4, list(np.array([1, 2, np.nan, 1, 2, 3, 3, 4], np.float32)), random_state=0)


@pytest.mark.parametrize("random_state", range(6))
def test_speaker_disjoint_split_leaves_a_speaker_for_each_later_part(random_state):
    speakers = np.array(["a", "b"] + ["c"] * 100)  # "c" alone exceeds the test share
    split = speaker_disjoint_split(np.zeros(102), speakers, random_state=random_state)
    assert [len(set(speakers[p])) for p in split] == [1, 1, 1]


def test_speaker_disjoint_split_without_validation():
    speakers = np.repeat(list("abcde"), 6)
    split = speaker_disjoint_split(np.zeros(30), speakers, train_size=0.8, validation_size=0.0, random_state=0)
    assert split.validation.size == 0 and split.test.size == 6 and split.train.size == 24
    with pytest.raises(ValueError, match="2 speakers: a speaker-disjoint split into train, validation and test needs at least 3"):
        speaker_disjoint_split(np.zeros(4), ["a", "a", "b", "b"], random_state=0)
    assert speaker_disjoint_split(np.zeros(4), ["a", "a", "b", "b"], train_size=0.5, validation_size=0.0).train.size == 2


def test_held_out_speakers_leave_every_label_in_training():
    """Speaker "b" alone has "disgust": holding "b" out for validation would leave the network no such
    class to score it with. Such a draw is drawn again; a draw that was valid is kept as it was."""
    from sklearn.model_selection import GroupShuffleSplit

    from sersk.model_selection import _validation_split

    speakers = np.repeat(list("abcd"), 4)
    y = np.array(["anger", "sadness"] * 8, dtype=object)
    y[speakers == "b"] = ["anger", "sadness", "disgust", "disgust"]
    for seed in range(20):
        train, held = _validation_split(y, speakers, 0.25, seed)
        assert set(y[held]) <= set(y[train]) and set(speakers[held]).isdisjoint(speakers[train])
        first_train, first_held = next(GroupShuffleSplit(1, test_size=0.25, random_state=seed).split(y, y, speakers))
        if "b" not in speakers[first_held]:
            np.testing.assert_array_equal(held, first_held)
    every_speaker_alone = np.array(["anger", "sadness", "disgust", "fear"]).repeat(4)  # no valid draw exists
    train, held = _validation_split(every_speaker_alone, speakers, 0.25, 0)
    assert len(set(speakers[held])) == 1  # the first draw, for a network (its classes are all of y's)
    with pytest.raises(ValueError, match=r"validation_fraction=0.25 holds out 1 of the 4 speakers \(groups\), and each "
                                         r"of 100 draws .* \(the first: (anger|sadness|disgust|fear)\); hold out fewer"):
        _validation_split(every_speaker_alone, speakers, 0.25, 0, every_label_trained=True)  # a pipeline's


def test_a_pipeline_hold_out_that_always_takes_a_label_out_of_training_says_so(corpus, monkeypatch):
    """Three speakers, one label each but two of them alike: holding out two always left one label to
    train on, and the network blamed y ("y holds a single class"), after augmenting (an extensibility review)."""
    paths, _, speakers = corpus
    labels = np.where(speakers == "s1", "high", "low")
    monkeypatch.setattr(AugmentingResampler, "fit_resample", lambda *a, **k: pytest.fail("augmented"))
    with pytest.raises(ValueError, match=r"validation_fraction=0.34 holds out 2 of the 3 speakers \(groups\), and each "
                                         r"of 100 draws of them took a label's every clip out of training"):
        small_pipeline(validation_fraction=0.34).fit(paths, labels, groups=speakers)


def test_a_label_too_rare_to_split_is_named():
    with pytest.raises(ValueError, match="label 'x' has 1 file"):
        reference_split(["x"] + ["y"] * 20)


@pytest.fixture(scope="module")
def emodb_fold(emodb_wavs):
    """5 training clips per emotion from speakers other than 03; 14 clips of speaker 03 to predict."""
    names = np.array([p.name for p in emodb_wavs])
    emotion, speaker = np.array([n[5] for n in names]), np.array([n[:2] for n in names])
    train = np.concatenate([np.flatnonzero((emotion == e) & (speaker != "03"))[:5] for e in np.unique(emotion)])
    test = np.flatnonzero(speaker == "03")[::3][:14]
    paths = np.array([str(p) for p in emodb_wavs])
    return paths[train], emotion[train], paths[test]


@pytest.fixture
def fitted_reference(emodb_fold):
    """The default pipeline, its network at full size, sized down to one copy and one epoch."""
    X, y, _ = emodb_fold
    return make_pipeline(n_augmentations=1, max_epochs=1, device="cpu", random_state=0).fit(X, y)


def test_emodb_predictions_unchanged_by_peak_normalisation(emodb_fold, fitted_reference):
    """Emo-DB's files already peak at 0.9995-1.0: normalising them at prediction changes nothing.

    (Two fits, with and without it, are not compared: the pitch shifter is not exactly linear in the
    level, and Adam turns rounding-level differences of near-zero gradients into full-size steps.)
    """
    pipe, X_test = fitted_reference, emodb_fold[2]
    normalised = pipe.predict_proba(X_test)
    raw = pipe.set_params(load__normalize=None).predict_proba(X_test)
    np.testing.assert_allclose(normalised, raw, rtol=0, atol=1e-3)
    assert_labels_agree_where_decided(normalised, raw, normalised.argmax(axis=1), raw.argmax(axis=1))


def test_predictions_do_not_depend_on_the_recording_level(emodb_fold, fitted_reference, tmp_path):
    pipe, X_test = fitted_reference, emodb_fold[2]
    waves = AudioLoader(normalize=None).transform(X_test)
    quiet_files = []
    for i, wave in enumerate(waves):
        quiet_files.append(tmp_path / f"quiet{i}.wav")
        sf.write(quiet_files[-1], wave * 0.03, 16000, subtype="FLOAT")
    expected = pipe.predict_proba(X_test)
    for quiet in ([w * np.float32(0.03) for w in waves], quiet_files):
        proba = pipe.predict_proba(quiet)
        np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-5)
        assert_labels_agree_where_decided(proba, expected, pipe.predict(quiet), pipe.predict(X_test))
    # without the loader's normalisation, the same clips at -30 dB read differently
    pipe.set_params(load__normalize=None)
    assert not np.allclose(pipe.predict_proba(quiet_files), expected, atol=1e-2)


def test_a_single_class_is_refused_before_any_decoding():
    with pytest.raises(ValueError, match=r"y holds a single class \('anger'\)"):
        make_pipeline().fit(["missing1.wav", "missing2.wav"], np.array(["anger", "anger"]))


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"net__lr": "abc"}, "lr='abc'; expected a non-negative number"),  # was torch's TypeError from Adam
        ({"net__batch_size": 0}, "batch_size=0; expected a positive integer"),  # was torch's sampler's
        ({"net__max_epochs": 0}, "max_epochs=0; expected a positive integer"),
        ({"logmel__n_mels": 64}, r"logmel__n_mels=64 is too few bands for the network's frequency pools \[2, 4, 4, 4\]"),
        # the log-mels took 8 kHz audio for 16 kHz, with no error
        ({"load__sample_rate": 8000}, r"the steps disagree on the sample rate \(load__sample_rate=8000, "
                                      r"augment__sample_rate=16000, logmel__sample_rate=16000\)"),
    ],
)
def test_a_bad_network_option_is_named_before_any_decoding(params, problem):
    """Files that do not exist: an error about them would mean the decoding had started."""
    with pytest.raises(ValueError, match=problem):
        make_pipeline().set_params(**params).fit(["missing1.wav", "missing2.wav"], ["anger", "joy"])
    if "logmel__n_mels" in params:  # a number of numpy's type, as a parameter grid gives
        with pytest.raises(ValueError, match="is too few bands"):
            make_pipeline().set_params(logmel__n_mels=np.int64(64)).fit(["missing1.wav", "missing2.wav"], ["anger", "joy"])


def test_a_fitted_pipeline_refuses_to_predict_once_its_steps_disagree_on_the_sample_rate(corpus):
    X, y, _ = corpus
    pipe = small_tuned(net__crop_frames=16).fit(X, y)
    pipe.set_params(load__sample_rate=8000)  # the loader keeps no record of the rate it was fitted at
    for method in (pipe.predict, pipe.predict_proba, lambda X: pipe.score(X, y)):
        with pytest.raises(ValueError, match=r"disagree on the sample rate \(load__sample_rate=8000, logmel__sample_rate=16000\)"):
            method(X)
    pipe.set_params(load__sample_rate=16000)
    assert len(pipe.predict(X)) == len(X)


class MeanOverTime(torch.nn.Module):
    """A network of a user's own: no frequency pools."""

    time_factor = 1

    def __init__(self, n_mels, n_classes, padding):
        super().__init__()
        self.fc = torch.nn.Linear(n_mels, n_classes)

    def forward(self, x, lengths):
        return self.fc(x.mean(dim=2))


class WiderCNNLSTM(CNNLSTM):
    """The recipe's network, subclassed with arguments passed on (no pools of its own declared)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)


def test_the_band_check_is_the_recipe_networks_only():
    waves = [make_tone(200 + 300 * (i % 2), 0.8) for i in range(8)]
    pipe = EmotionPipeline([
        ("logmel", LogMelTransformer(n_mels=32)), ("net", CNNLSTMClassifier(module=MeanOverTime, max_epochs=1, verbose=0)),
    ])
    assert pipe.fit(waves, ["a", "b"] * 4).predict(waves).shape == (8,)
    pipe = EmotionPipeline([  # the recipe's pools, though its signature does not say so
        ("logmel", LogMelTransformer(n_mels=32)), ("net", CNNLSTMClassifier(module=WiderCNNLSTM, max_epochs=1, verbose=0)),
    ])
    with pytest.raises(ValueError, match=r"logmel__n_mels=32 is too few bands for the network's frequency pools"):
        pipe.fit(["missing.wav"] * 2, ["a", "b"])  # before any decoding


# ---- presets ---------------------------------------------------------------------------------------------


def test_presets_pick_ordinary_step_parameters():
    from sersk.pipeline import PRESETS

    reference, tuned = make_pipeline(), make_pipeline(preset="tuned")
    assert [name for name, _ in reference.steps] == ["load", "augment", "logmel", "net"]
    assert [name for name, _ in tuned.steps] == ["load", "logmel", "scale", "net"]
    assert reference.get_params()["augment__n_augmentations"] == 75
    assert reference.get_params()["net__max_epochs"] == 3
    assert reference.get_params()["net__crop_frames"] is None
    params = tuned.get_params()
    for name, value in PRESETS["tuned"].items():
        assert params[name] == value
    assert clone(tuned).get_params()["net__criterion__label_smoothing"] == 0.1
    # explicit arguments win over the preset's values; stored copies add the augment step, with the originals
    stored = make_pipeline("tuned", n_augmentations=2, max_epochs=1)
    assert [name for name, _ in stored.steps] == ["load", "augment", "logmel", "scale", "net"]
    assert stored.get_params()["augment__n_augmentations"] == 2 and stored.get_params()["augment__keep_original"]
    assert make_pipeline("tuned", max_epochs=1).get_params()["net__max_epochs"] == 1
    # 0 copies: no augment step in either preset (it was accepted, then refused by fit as an invalid parameter)
    for preset in ("reference", "tuned"):
        assert "augment" not in make_pipeline(preset, n_augmentations=0).named_steps
    with pytest.raises(ValueError, match=r"n_augmentations=-1; expected an integer >= 0"):  # was refused by fit only
        make_pipeline(n_augmentations=-1)


def test_an_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="preset='fast'; expected one of 'reference', 'tuned'"):
        make_pipeline(preset="fast")


def test_tuned_preset_fits_searches_and_predicts_independently_of_the_batch(corpus):
    paths, labels, speakers = corpus
    pipe = make_pipeline("tuned", random_state=0).set_params(
        **{**SMALL_NET, "net__max_epochs": 2}, net__crop_frames=16, net__time_mask_frames=4
    )
    search = GridSearchCV(pipe, {"scale__scope": ["corpus", "clip"]},
                          cv=LeaveOneGroupOut(), error_score="raise")
    search.fit(paths, labels, groups=speakers)
    assert set(search.cv_results_["param_scale__scope"]) == {"corpus", "clip"}
    best = search.best_estimator_
    assert best[-1].max_epochs == 2
    together = best.predict_proba(paths)
    alone = np.vstack([best.predict_proba(paths[i : i + 1]) for i in range(len(paths))])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert_labels_agree_where_decided(
        together, alone, best.predict(paths), [best.predict(paths[i : i + 1])[0] for i in range(len(paths))]
    )
    scaler = best.named_steps["scale"]
    assert scaler.scope != "corpus" or scaler.mean_.shape == (128,)


def test_speaker_scope_standardises_each_training_and_validation_speaker_by_itself(corpus, monkeypatch):
    paths, labels, speakers = corpus
    seen = {}
    fit = CNNLSTMClassifier.fit

    def spy(self, X, y, **kwargs):
        seen["train"], seen["valid"] = X, kwargs.get("validation_data", (None,))[0]
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(CNNLSTMClassifier, "fit", spy)
    pipe = make_pipeline("tuned", validation_fraction=0.3, random_state=0).set_params(
        **SMALL_NET, scale__scope="speaker", net__crop_frames=16
    )
    pipe.fit(paths, labels, groups=speakers)
    assert (len(seen["train"]), len(seen["valid"])) == (12, 6)  # one whole speaker validates
    logmels = pipe.named_steps["logmel"].transform(pipe.named_steps["load"].transform(paths))
    own = BandStandardizer(scope="speaker").fit_transform(logmels, groups=speakers)
    by_length = {z.shape[1]: z for z in own}  # every clip has its own length
    for z in [*seen["train"], *seen["valid"]]:
        np.testing.assert_allclose(z, by_length[z.shape[1]], atol=1e-5)
    with pytest.raises(ValueError, match="needs the speaker of each clip"):
        clone(pipe).set_params(validation_fraction=None).fit(paths, labels)
    stored_copies = make_pipeline("tuned", n_augmentations=1).set_params(scale__scope="speaker")
    assert pipe.steps_taking_groups() == ["scale"] and stored_copies.steps_taking_groups() == []
    with pytest.raises(ValueError, match="'scale' has scope='speaker' but comes after a sampler"):
        stored_copies.fit(paths, labels, groups=speakers)  # refused before decoding a clip
    with pytest.raises(ValueError, match="this pipeline has neither"):
        stored_copies.set_params(scale__scope="corpus").fit(paths, labels, groups=speakers)


def test_speaker_scope_in_a_grouped_search(corpus):
    paths, labels, speakers = corpus
    pipe = small_tuned(scale__scope="speaker", net__crop_frames=16)
    search = GridSearchCV(pipe, {"net__lr": [0.005, 0.001]}, cv=LeaveOneGroupOut(), error_score="raise")
    search.fit(paths, labels, groups=speakers, scale__groups=speakers)  # groups for the splitter, scale__groups for fit
    assert search.cv_results_["mean_test_score"].shape == (2,)
    with pytest.raises(ValueError, match="needs the speaker of each clip"):
        search.fit(paths, labels, groups=speakers)


def test_with_metadata_routing_a_search_sends_the_speakers_to_the_pipeline(corpus):
    import sklearn
    from sklearn.model_selection import cross_val_score

    paths, labels, speakers = corpus
    with sklearn.config_context(enable_metadata_routing=True):
        # a speaker-disjoint validation part in each fit (without routing, groups reach the splitter only)
        search = GridSearchCV(small_pipeline(validation_fraction=0.4), {"net__lr": [0.005]}, cv=LeaveOneGroupOut())
        search.fit(paths, labels, groups=speakers)
        held = search.best_estimator_.validation_indices_
        assert len(held) and set(speakers[held]).isdisjoint(np.delete(speakers, held))
        # speaker-scope standardisation, in fit and in scoring, with no per-step settings
        tuned = small_tuned(scale__scope="speaker", net__crop_frames=16)
        scores = cross_val_score(tuned, paths, labels, cv=LeaveOneGroupOut(), params={"groups": speakers})
        assert scores.shape == (3,)
        routed = clone(tuned).fit(paths, labels, groups=speakers).predict_proba(paths, groups=speakers)
    plain = clone(tuned).fit(paths, labels, groups=speakers)  # the same fit without routing
    logmels = plain.named_steps["logmel"].transform(plain.named_steps["load"].transform(paths))
    expected = plain[-1].predict_proba(plain.named_steps["scale"].transform(logmels, groups=speakers))
    np.testing.assert_array_equal(routed, expected)


def test_with_metadata_routing_requests_set_by_the_user_are_kept(corpus):
    import sklearn
    from sklearn.utils.fixes import parse_version

    paths, labels, speakers = corpus
    with sklearn.config_context(enable_metadata_routing=True):
        # opted out: the search's speakers are not used, so validation holds out clips of every speaker
        pipe = small_pipeline(validation_fraction=0.4).set_fit_request(groups=False)
        search = GridSearchCV(pipe, {"net__lr": [0.005]}, cv=LeaveOneGroupOut()).fit(paths, labels, groups=speakers)
        held = search.best_estimator_.validation_indices_
        assert set(speakers[held]) == set(np.delete(speakers, held)) == set(speakers)
        # the step takes the speakers under another name; other metadata travels beside them
        tuned = small_tuned(scale__scope="speaker", net__crop_frames=16)
        tuned.named_steps["scale"].set_fit_request(groups="speakers").set_transform_request(groups="speakers")
        params = {"groups": speakers, "speakers": speakers}
        if parse_version(sklearn.__version__) >= parse_version("1.8"):  # routes sample_weight to the default scorer
            tuned[-1].set_score_request(sample_weight=True)
            params["sample_weight"] = np.ones(len(labels))
        scores = cross_validate(tuned, paths, labels, cv=LeaveOneGroupOut(), params=params)
        assert scores["test_score"].shape == (3,)


@pytest.mark.parametrize("cached", [False, True])
def test_a_failed_refit_leaves_every_step_as_it_was(cached, corpus, tmp_path):
    """A late failure (here: validation labels the training clips lack) used to leave the refitted
    transformers before the network of the fit before."""
    paths, labels, _ = corpus
    pipe = small_tuned(memory=str(tmp_path) if cached else None, net__crop_frames=8)
    pipe.fit(paths[:12], labels[:12])
    steps = list(pipe.steps)
    mean, history, proba = pipe.named_steps["scale"].mean_.copy(), len(pipe[-1].history_), pipe.predict_proba(paths)
    with pytest.raises(ValueError, match="validation labels"):
        pipe.fit(paths[6:], labels[6:], validation_data=(paths[:2], ["unseen", "unseen"]))
    assert [step for _, step in pipe.steps] == [step for _, step in steps]  # the same objects
    np.testing.assert_array_equal(pipe.named_steps["scale"].mean_, mean)  # refitted on other clips, then put back
    assert len(pipe[-1].history_) == history
    np.testing.assert_allclose(pipe.predict_proba(paths), proba, atol=1e-6)


def test_a_refused_set_params_changes_no_step(corpus):
    """scikit-learn's Pipeline sets the steps one after the other: a value the network refused left
    the steps set before it changed (a scaler standardising per clip before a network trained on
    the corpus's statistics); the keys set after a refused one were never a problem."""
    paths, labels, _ = corpus
    pipe = small_tuned(net__crop_frames=8).fit(paths[:12], labels[:12])
    proba, lr = pipe.predict_proba(paths), pipe[-1].lr
    with pytest.raises(TypeError, match="bogus"):  # the built network refuses an unknown module argument
        pipe.set_params(scale__scope="clip", net__module__bogus=1)
    # the network set first (a key new to it; a new module, with new weights), the scaler's key refused
    for first in ({"net__lr": 0.1}, {"net__iterator_train__num_workers": 3}, {"net__module__hidden_size": 5}):
        with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
            pipe.set_params(**first, scale__bogus=1)
    assert pipe.named_steps["scale"].scope == "corpus" and pipe[-1].lr == lr
    assert not hasattr(pipe[-1], "iterator_train__num_workers") and pipe[-1].module__hidden_size == SMALL_NET["net__module__hidden_size"]
    np.testing.assert_array_equal(pipe.predict_proba(paths), proba)


def test_one_model_predicts_from_several_threads_as_from_one(corpus):
    """A service shares one loaded model between its threads: the device bookkeeping, the allocator
    setting and the network's state must not mix the calls up."""
    from concurrent.futures import ThreadPoolExecutor

    paths, labels, _ = corpus
    pipe = small_tuned(net__crop_frames=8).fit(paths, labels)
    pipe.set_params(net__device="auto")  # resolved by each call: the calls share that bookkeeping
    clips = [[path] for path in paths] * 3  # one clip per call, as a request brings it
    alone = [pipe.predict_proba(clip) for clip in clips]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(pipe.predict_proba, clips))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    assert pipe[-1].device == "auto" and "_device_users" not in vars(pipe[-1])  # put back as asked


def test_a_failed_fit_of_a_pipeline_given_a_tuple_of_steps_raises_its_own_error(corpus):
    paths, labels, _ = corpus
    steps = tuple(small_tuned(net__crop_frames=8).steps)
    pipe = EmotionPipeline(steps)
    with pytest.raises(ValueError, match="validation labels"):  # not a TypeError from restoring the tuple
        pipe.fit(paths, labels, validation_data=(paths[:2], ["unseen", "unseen"]))
    assert pipe.steps is steps



def test_cached_fit_misses_when_a_file_is_rewritten_under_the_same_name(corpus, tmp_path, monkeypatch):
    paths, labels, _ = corpus
    copies = []
    for path in paths:  # files of this test's own, to rewrite
        copies.append(str(tmp_path / Path(path).name))
        shutil.copy(path, copies[-1])
    decoded = []
    load = AudioLoader.transform
    monkeypatch.setattr(AudioLoader, "transform", lambda self, X: decoded.append(len(X)) or load(self, X))
    memory = Memory(tmp_path / "cache", verbose=0)
    first = small_pipeline(memory=memory).fit(copies, labels)
    shutil.copy(paths[1], copies[0])  # other audio under the same name
    stamp = os.stat(copies[0])
    os.utime(copies[0], ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))  # even on a coarse clock
    cached = small_pipeline(memory=memory).fit(copies, labels)
    assert len(decoded) == 2  # a miss: the files were decoded again, not the old audio returned
    again = small_pipeline(memory=memory).fit(np.array(copies), labels)  # files unchanged: a hit
    assert len(decoded) == 2
    small_pipeline(memory=memory).fit([os.fsencode(c) for c in copies], labels)  # paths in bytes: the same files
    assert len(decoded) == 2
    uncached = small_pipeline().fit(copies, labels)
    np.testing.assert_array_equal(cached.predict_proba(paths), uncached.predict_proba(paths))
    np.testing.assert_array_equal(again.predict_proba(paths), uncached.predict_proba(paths))
    assert not np.array_equal(cached.predict_proba(paths), first.predict_proba(paths))


class FailAtFirstEpochEnd(Callback):
    def on_epoch_end(self, net, **kwargs):
        raise RuntimeError("failed on purpose")


def test_a_failed_fit_leaves_a_random_state_instance_at_its_draws(corpus):
    paths, labels, _ = corpus

    def seeded():
        # the hold-out draws from the generator too, before any step is fitted
        return make_pipeline(
            n_augmentations=2, validation_fraction=0.4, random_state=np.random.RandomState(3)
        ).set_params(**SMALL_NET)

    pipe = seeded().set_params(net__callbacks=[("fail", FailAtFirstEpochEnd())])
    generator = pipe.random_state
    before = generator.get_state()[1].copy()
    with pytest.raises(RuntimeError, match="failed on purpose"):
        pipe.fit(paths, labels)  # after the augmentation and a first epoch drew from it
    np.testing.assert_array_equal(generator.get_state()[1], before)
    retried = pipe.set_params(net__callbacks=None).fit(paths, labels)
    fresh = seeded().fit(paths, labels)
    np.testing.assert_array_equal(retried.validation_indices_, fresh.validation_indices_)
    np.testing.assert_array_equal(retried.predict_proba(paths), fresh.predict_proba(paths))


def test_metadata_given_to_predict_or_score_without_routing_is_refused_by_name(corpus):
    paths, labels, speakers = corpus
    pipe = small_pipeline().fit(paths, labels)
    for method, args in (("score", (paths, labels)), ("predict", (paths,)), ("predict_proba", (paths,))):
        # score dropped the speakers silently (a speaker-scoped scaler then pooled them); predict failed in the network
        with pytest.raises(TypeError, match=rf"{method}\(\) got 'groups', which reach the steps only with .* routing on"):
            getattr(pipe, method)(*args, groups=speakers)


def test_a_pipeline_has_the_prediction_methods_of_its_last_step_only():
    features = EmotionPipeline([("load", AudioLoader()), ("logmel", LogMelTransformer())])
    for method in ("predict", "predict_proba", "score"):  # hasattr picks methods in scorers and ensembles
        assert not hasattr(features, method) and hasattr(make_pipeline(), method)
