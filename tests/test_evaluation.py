"""sersk.evaluation and sersk.persistence: the protocols return results and write files only when asked."""

from __future__ import annotations

import json
import os
import re
from unittest import mock

import joblib
import numpy as np
import pytest
import soundfile as sf

from sersk import make_pipeline, predict_files
from sersk.evaluation import evaluate_model, run_leave_one_speaker_out, run_reference_protocol, score_predictions
from sersk.persistence import load_model, save_model
from sersk.utils.synthetic import make_tone

SPEAKERS = ("03", "08", "09")


def tiny_pipeline(random_state=0):
    pipe = make_pipeline(n_augmentations=1, max_epochs=1, device="cpu", random_state=random_state)
    return pipe.set_params(net__module__filters=(4, 4, 8, 8), net__module__hidden_size=8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """24 tones of 0.8 s: 3 speakers x 2 emotions x 4 texts."""
    folder = tmp_path_factory.mktemp("corpus")
    paths, labels, speakers = [], [], []
    for i, speaker in enumerate(SPEAKERS):
        for label, freq in (("anger", 1800.0), ("sadness", 220.0)):
            for text in ("a01", "a02", "a04", "a05"):
                path = folder / f"{speaker}{text}{label[0].upper()}a.wav"
                sf.write(path, make_tone(freq * (1 + 0.05 * i), 0.8), 16000)
                paths.append(str(path))
                labels.append(label)
                speakers.append(speaker)
    return np.array(paths), np.array(labels), np.array(speakers)


def test_score_predictions_is_plain_python():
    scores = score_predictions(np.array(["a", "a", "b", "c"]), np.array(["a", "b", "b", "b"]), labels=["a", "b", "c"])
    assert scores["accuracy"] == 0.5 and scores["uar"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert scores["confusion_matrix"] == {"labels": ["a", "b", "c"], "counts": [[1, 1, 0], [0, 1, 0], [0, 1, 0]]}
    assert json.loads(json.dumps(scores)) == scores


def test_scores_carry_the_accuracys_wilson_interval():
    # a figure on 87 test clips read as exact (an evaluation review): each score now has its interval
    n, correct, z = 87, 70, 1.959963984540054
    p = correct / n
    centre, half = (p + z**2 / (2 * n)) / (1 + z**2 / n), z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    scores = score_predictions(np.repeat(["a", "b"], [correct, n - correct]), ["a"] * n)
    assert scores["accuracy"] == p
    np.testing.assert_allclose(scores["accuracy_ci95"], [centre - half, centre + half], rtol=1e-9)
    assert score_predictions(["a", "a", "b"], ["a", "a", "b"])["accuracy_ci95"][1] == pytest.approx(1.0)


def test_a_speaker_bootstrap_interval_lies_between_the_folds_and_is_seeded():
    from sersk.evaluation import _speaker_bootstrap

    rng = np.random.default_rng(0)
    true = [rng.integers(0, 4, size) for size in (30, 45, 60, 25, 40, 35)]
    pred = [np.where(rng.random(len(t)) < share, t, (t + 1) % 4) for t, share in zip(true, (0.4, 0.6, 0.8, 0.9, 0.7, 0.5))]
    interval = _speaker_bootstrap(true, pred)
    folds = [np.mean(t == p) for t, p in zip(true, pred)]
    assert min(folds) <= interval["accuracy"][0] < interval["accuracy"][1] <= max(folds)
    assert interval["accuracy"][0] < np.mean(np.concatenate(true) == np.concatenate(pred)) < interval["accuracy"][1]
    assert interval == _speaker_bootstrap(true, pred) and interval["n_resamples"] == 2000
    # the UAR of each resample is its pooled recalls' mean: checked on the pooled predictions themselves
    uar = np.mean([np.mean(np.concatenate(pred)[np.concatenate(true) == c] == c) for c in range(4)])
    assert interval["uar"][0] < uar < interval["uar"][1]
    assert _speaker_bootstrap(true[:4], pred[:4]) is None  # four speakers: little more than their range


def test_reference_protocol_returns_results_and_writes_nothing_unless_asked(corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y, _ = corpus
    results = run_reference_protocol(X, y, pipeline=tiny_pipeline(), random_state=0, return_estimator=True)
    assert list(tmp_path.iterdir()) == []
    assert (results["n_train"], results["n_validation"], results["n_test"]) == (16, 2, 6)
    assert results["n_files"] == 6 and 0 <= results["accuracy"] <= 1
    assert len(results["history"]) == 1 and results["history"][0]["valid_loss"] is not None
    assert "reference_accuracy" not in results  # Emo-DB's figure; this corpus is any corpus
    estimator = results.pop("estimator")
    assert list(estimator.classes_) == ["anger", "sadness"]
    json.dumps(results)
    # each test clip's record agrees with the fitted pipeline and with the pooled scores
    records = results["predictions"]
    test_files = [r["path"] for r in records]
    assert len(records) == 6 and set(test_files) <= set(X)
    # the records round to 6 decimals (5e-7), and the protocol predicted in other batches
    np.testing.assert_allclose([list(r["proba"].values()) for r in records], estimator.predict_proba(test_files),
                               atol=1e-5)
    assert [r["predicted"] for r in records] == list(estimator.predict(test_files))
    assert np.mean([r["predicted"] == r["label"] for r in records]) == results["accuracy"]

    figures = tmp_path / "figures"
    run_reference_protocol(X, y, pipeline=tiny_pipeline(), random_state=0, figures_dir=figures)
    assert sorted(p.name for p in figures.iterdir()) == [
        "class_distribution.png", "confusion_matrix.png", "log_mels.png", "training_history.png", "waveform.png",
    ]


def test_reference_protocol_on_too_few_clips_for_a_validation_part_says_so():
    X, y = np.array([f"{i}.wav" for i in range(12)]), np.repeat(["a", "b"], 6)
    with pytest.raises(ValueError, match="leaves no validation clip: a label of n files gives floor"):
        run_reference_protocol(X, y, pipeline=tiny_pipeline(), random_state=0)


def test_leave_one_speaker_out_on_chosen_speakers(corpus, capsys):
    X, y, speakers = corpus
    results = run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), test_speakers=["09"], verbose=1)
    assert results["held_out_speakers"] == ["09"] and results["folds_run"] == "1 of 3"
    assert results["n_speakers"] == 3
    assert not {"published", "project_bar"} & set(results)  # Emo-DB's figures; sersk reproduce adds them
    (fold,) = results["per_speaker"]
    assert fold["speaker"] == "09" and fold["n_files"] == 8
    assert fold["n_train_clips"] == 8 and fold["n_validation_clips"] == 8  # one of the two other speakers validates
    assert sorted(r["path"] for r in fold["predictions"]) == sorted(X[speakers == "09"])
    assert all(r["label"] == y[list(X).index(r["path"])] for r in fold["predictions"])
    assert all(r["predicted"] == max(r["proba"], key=r["proba"].get) for r in fold["predictions"])
    assert "fold 1/1: test speaker 09" in capsys.readouterr().out
    with pytest.raises(ValueError, match="test_speakers 42 are not among the speakers"):
        run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), test_speakers=["42"])
    two = np.where(speakers == "03", "03", "08")
    with pytest.raises(ValueError, match="at least 3 speakers .*; validation_speaker=False .the tuned preset.s. needs two"):
        run_leave_one_speaker_out(X, y, two)
    with pytest.raises(ValueError, match="validation_speaker='no'; expected True or False"):  # "no" meant yes
        run_leave_one_speaker_out(X, y, two, validation_speaker="no")
    with pytest.raises(ValueError, match="skip_errors='no'; expected True or False"):  # "no" skipped files
        predict_files(tiny_pipeline(), X, skip_errors="no")
    for protocol in (lambda **k: run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), **k),
                     lambda **k: run_reference_protocol(X, y, pipeline=tiny_pipeline(), **k)):
        with pytest.raises(ValueError, match=r"random_state=-1; expected an int in \[0, 2\*\*32 - 1\]"):
            protocol(random_state=-1)  # unused with a pipeline given (leave-one-speaker-out), or numpy's error
    results = run_leave_one_speaker_out(  # no validation speaker: two are enough
        X, y, two, pipeline=tiny_pipeline(), test_speakers=["03"], validation_speaker=False
    )
    assert results["n_speakers"] == 2 and results["per_speaker"][0]["n_validation_clips"] == 0
    assert results["speaker_bootstrap_ci95"] is None  # one fold run


def test_the_figures_of_a_run_say_what_they_show(corpus, tmp_path, monkeypatch):
    """A cropped PNG of a partial run looked like one of all speakers: the titles name the speakers
    run, the clips scored and, for a fold's training history, its test speaker."""
    from sersk import plotting

    titles, figures = [], []

    def recorded(plot):
        def record(*args, **kwargs):
            titles.append(kwargs.get("title"))
            figures.append(plot(*args, **kwargs))
            return figures[-1]
        return record

    for name in ("plot_confusion_matrix", "plot_training_history"):
        monkeypatch.setattr(plotting, name, recorded(getattr(plotting, name)))
    X, y, speakers = corpus
    run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), test_speakers=["09"], figures_dir=tmp_path)
    assert titles[0] == "Training, leave-one-speaker-out: test speaker 09"
    assert titles[1].startswith("LOSO pooled over 1 of 3 speakers: accuracy ") and titles[1].endswith(" (8 clips)")
    # each row says how many clips it holds (colours are counts: a rare class's right answers look pale)
    assert [t.get_text() for t in figures[1].axes[0].get_yticklabels()] == ["anger (n=4)", "sadness (n=4)"]


@pytest.mark.filterwarnings("ignore:Glyph 27:UserWarning")  # matplotlib's, for the id drawn in a title
def test_a_speakers_figure_is_written_in_the_figures_folder_whatever_its_name(corpus, tmp_path, capsys):
    """Speaker ids come from a CSV: one reading ``../../x`` wrote its training figure two folders up
    (``x.png``), and ``a/b`` a figure into a subfolder; an escape sequence in one was printed as it
    was, to the terminal."""
    X, y, speakers = corpus
    names = {"03": "../../x", "08": "a/b\x1b[2J", "09": "09"}
    odd = np.array([names[s] for s in speakers])
    figures = tmp_path / "out" / "figures"
    run_leave_one_speaker_out(X, y, odd, pipeline=tiny_pipeline(), test_speakers=["../../x", "a/b\x1b[2J"],
                              figures_dir=figures, verbose=1)
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "speaker a/b\\x1b[2J" in printed
    written = [p.relative_to(figures).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    assert all("/" not in name for name in written), written  # every file in the figures folder itself
    assert {"training_history_speaker..%2F..%2Fx.png", "training_history_speakera%2Fb%1B%5B2J.png"} <= set(
        os.listdir(figures))


def test_a_fold_whose_training_lacks_a_label_of_its_test_speaker_warns(corpus):
    """Such a fold's clips of that label can only be errors: its UAR fell with no word why."""
    X, y, speakers = corpus
    y = np.where((speakers == "09") & (np.arange(len(y)) % 8 == 0), "joy", y)  # only speaker 09 has joy
    with pytest.warns(UserWarning, match="the fold of speaker 09 trains on no clip labelled 'joy' .only this speaker"):
        run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), test_speakers=["09"], validation_speaker=False)


def test_leave_one_speaker_out_resumes_from_its_fold_files(corpus, tmp_path, pipeline_fits, capsys):
    """With ``fold_dir`` each fold is written as it ends; the same call resumes a run cut short,
    training only the folds missing, and pools them all as an uninterrupted run does. Fold files of
    another run are refused before any training."""
    X, y, speakers = corpus
    uninterrupted = run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline())
    folds = tmp_path / "folds"
    pipeline_fits.count, pipeline_fits.interrupt_at = 0, 2  # Ctrl-C in the second fold
    with pytest.raises(KeyboardInterrupt):
        run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), fold_dir=folds)
    assert [p.name for p in folds.iterdir()] == ["fold_03.json"]
    pipeline_fits.count, pipeline_fits.interrupt_at = 0, None
    resumed = run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), fold_dir=folds, verbose=1)
    assert pipeline_fits.count == 2 and resumed["folds_loaded"] == ["03"]
    assert (f"speaker 03: accuracy {100 * resumed['per_speaker'][0]['accuracy']:.2f} %, UAR "
            f"{100 * resumed['per_speaker'][0]['uar']:.2f} % (read from {folds / 'fold_03.json'})") in capsys.readouterr().out
    for key in ("accuracy", "uar", "confusion_matrix", "held_out_speakers", "folds_run"):
        assert resumed[key] == uninterrupted[key], key
    def untimed(fold):
        return {**fold, "wall_time_s": None, "history": [{**epoch, "dur": None} for epoch in fold["history"]]}

    assert list(map(untimed, resumed["per_speaker"])) == list(map(untimed, uninterrupted["per_speaker"]))
    assert sorted(p.name for p in folds.iterdir()) == ["fold_03.json", "fold_08.json", "fold_09.json"]
    pipeline_fits.count = 0
    with pytest.raises(ValueError, match="fold_03.json' holds the fold of speaker 03 of another run"):
        run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(random_state=1), fold_dir=folds)
    with pytest.raises(ValueError, match="return_estimator=True, but the folds of 03, 08, 09 would be read"):
        run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), fold_dir=folds, return_estimator=True)
    (folds / "fold_10.json").write_text("{")
    with pytest.raises(ValueError, match="fold_10.json' is not a fold file sersk wrote"):
        run_leave_one_speaker_out(X, y, speakers, pipeline=tiny_pipeline(), fold_dir=folds)
    assert pipeline_fits.count == 0


def test_a_runs_fold_key_is_the_same_in_another_process_and_its_files_hold_any_speaker(tmp_path, monkeypatch):
    """The key that matches a later run's folds to an earlier one's: the same in a fresh interpreter,
    blind to worker counts and verbosity, and refused where a setting prints as a memory address."""
    import subprocess
    import sys

    import sersk.evaluation
    import torch
    from skorch.callbacks import EarlyStopping
    from sersk.evaluation import _FoldFiles, _run_key

    X, y, speakers = np.array(["a.wav", "b.wav"]), np.array([1, 2]), np.array(["x/y", "z"])
    key = _run_key(make_pipeline("tuned", random_state=0), X, y, speakers, False, np.int64(0))
    code = ("import numpy as np; from sersk import make_pipeline; from sersk.evaluation import _run_key; "
            "print(_run_key(make_pipeline('tuned', random_state=0), np.array(['a.wav', 'b.wav']), np.array([1, 2]), "
            "np.array(['x/y', 'z']), False, 0))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == key
    busy = make_pipeline("tuned", random_state=0, n_jobs=2, verbose=1)
    assert _run_key(busy, X, y, speakers, False, 0) == key
    assert _run_key(make_pipeline("tuned", random_state=1), X, y, speakers, False, 0) != key
    assert _run_key(make_pipeline("tuned", random_state=0), X, y, speakers, True, 0) != key
    # folds trained by another torch (or skorch, scikit-learn) are not pooled with this one's (an evaluation review)
    with mock.patch.object(torch, "__version__", "2.11.9"):
        assert _run_key(make_pipeline("tuned", random_state=0), X, y, speakers, False, 0) != key
    with pytest.raises(ValueError, match="fold_dir needs random_state as an int or None .*; got RandomState"):
        _run_key(make_pipeline("tuned"), X, y, speakers, False, np.random.RandomState(0))
    stopping = make_pipeline("tuned", random_state=0).set_params(net__callbacks=[("stop", EarlyStopping())])
    with pytest.raises(ValueError, match="<skorch.callbacks.training.EarlyStopping object at 0x[0-9a-f]+> prints its"):
        _run_key(stopping, X, y, speakers, False, 0)
    files = _FoldFiles(tmp_path, key)
    files.save("x/y", {"accuracy": 1.0}, np.array([1, 2]))
    assert [p.name for p in tmp_path.iterdir()] == ["fold_x%2Fy.json"]  # one file in the folder, whatever the name
    fold, y_pred = _FoldFiles(tmp_path, key).load("x/y", y.dtype)
    assert fold == {"accuracy": 1.0} and y_pred.tolist() == [1, 2] and y_pred.dtype == y.dtype

    def unwritable(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sersk.evaluation, "atomic_output", unwritable)
    with pytest.warns(UserWarning, match="fold_z.json' .* a later run cannot resume from it"):
        files.save("z", {"accuracy": 0.5}, np.array([1]))
    assert not files.has("z") and [p.name for p in tmp_path.iterdir()] == ["fold_x%2Fy.json"]


def test_leave_one_speaker_out_by_speaker_is_reported_as_transductive(corpus):
    X, y, speakers = corpus
    pipe = make_pipeline("tuned", max_epochs=1, device="cpu", random_state=0).set_params(
        net__module__filters=(4, 4, 8, 8), net__module__hidden_size=8, net__crop_frames=8,
    )
    plain = run_leave_one_speaker_out(X, y, speakers, pipeline=pipe, test_speakers=["08"])
    assert plain["transductive"] is False and "transductive" not in plain["protocol"]
    pipe.set_params(scale__scope="speaker")
    results = run_leave_one_speaker_out(X, y, speakers, pipeline=pipe, test_speakers=["08"])
    assert results["transductive"] is True and "transductive" in results["protocol"]
    assert results["per_speaker"][0]["n_files"] == 8
    with pytest.raises(ValueError, match="the reference protocol has none"):
        run_reference_protocol(X, y, pipeline=pipe)


def test_a_speaker_scoped_model_predicts_each_speakers_files_together(corpus, tmp_path):
    """A model that standardises each speaker by itself took each chunk of files as one speaker:
    a file's probabilities changed with ``chunk_size`` and with the files beside it. Each speaker's
    files are now predicted together, whatever the chunks, in the files' order; without speakers,
    all files as one speaker, as ``predict`` takes a call's clips; the readable files of a speaker
    with a bad one are predicted together once it is found."""
    X, y, speakers = corpus
    pipe = make_pipeline("tuned", max_epochs=1, device="cpu", random_state=0).set_params(
        net__module__filters=(4, 4, 8, 8), net__module__hidden_size=8, net__crop_frames=8, scale__scope="speaker",
    ).fit(X, y, groups=speakers)
    interleaved = np.argsort(np.arange(len(X)) % 5, kind="stable")  # speakers mixed, no chunk one speaker's
    paths, spoken_by = X[interleaved], speakers[interleaved]
    expected = np.empty((len(X), 2))
    for speaker in SPEAKERS:
        expected[spoken_by == speaker] = pipe.predict_proba(paths[spoken_by == speaker])
    for chunk_size in (3, 256):
        result = predict_files(pipe, paths, speakers=spoken_by, chunk_size=chunk_size)
        assert result.paths == list(paths)
        np.testing.assert_allclose(result.proba, expected, rtol=0, atol=1e-6)
    pooled = predict_files(pipe, paths, chunk_size=3)
    np.testing.assert_allclose(pooled.proba, pipe.predict_proba(paths), rtol=0, atol=1e-6)
    assert np.abs(pooled.proba - expected).max() > 1e-3  # the speakers' own statistics make a difference
    scored = evaluate_model(pipe, paths, y[interleaved], speakers=spoken_by, chunk_size=3)
    assert [p["predicted"] for p in scored["predictions"]] == list(pipe.classes_[expected.argmax(axis=1)])
    # a soft vote of such pipelines: its members standardise each speaker by itself too
    from sklearn.ensemble import VotingClassifier
    from sklearn.preprocessing import LabelEncoder

    vote = VotingClassifier([("a", pipe), ("b", pipe)], voting="soft")
    vote.estimators_, vote.le_ = [pipe, pipe], LabelEncoder().fit(pipe.classes_)
    vote.classes_ = vote.le_.classes_
    np.testing.assert_allclose(predict_files(vote, paths, speakers=spoken_by, chunk_size=3).proba, expected,
                               rtol=0, atol=1e-6)

    bad = tmp_path / "empty.wav"
    bad.touch()
    with_bad = [*paths[:4], str(bad), *paths[4:]]
    result = predict_files(pipe, with_bad, speakers=[*spoken_by[:4], "08", *spoken_by[4:]], chunk_size=3,
                           skip_errors=True)
    assert result.paths == list(paths) and list(result.errors) == [str(bad)]
    np.testing.assert_allclose(result.proba, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="paths has 24 files but speakers has 23 speakers; they must match"):
        predict_files(pipe, paths, speakers=spoken_by[:-1])
    with pytest.raises(ValueError, match="speakers has a missing speaker"):
        predict_files(pipe, paths, speakers=[None, *spoken_by[1:]])


def test_clip_predictions_without_probabilities():
    from sersk.evaluation import clip_predictions

    records = clip_predictions(["a.wav", "b.wav"], np.array(["x", "y"]), np.array(["x", "x"]))
    assert records == [{"path": "a.wav", "label": "x", "predicted": "x"}, {"path": "b.wav", "label": "y", "predicted": "x"}]
    with pytest.raises(ValueError, match="needs classes"):
        clip_predictions(["a.wav"], ["x"], ["x"], proba=np.ones((1, 2)))
    assert clip_predictions(iter(["a.wav"]), (t for t in "x"), iter("y")) == [  # any iterables
        {"path": "a.wav", "label": "x", "predicted": "y"}
    ]
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[2, 1, 1\\]"):  # not truncated
        clip_predictions(["a.wav", "b.wav"], ["x"], ["x"])
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[1, 1, 1, 2\\]"):
        clip_predictions(["a.wav"], ["x"], ["x"], proba=np.ones((2, 2)), classes=["x", "y"])


def test_evaluate_model_and_load_model(corpus, tmp_path):
    X, y, _ = corpus
    path = tmp_path / "model.joblib"
    joblib.dump(tiny_pipeline().fit(X, y), path)
    model = load_model(path)
    labels = np.where(y == "anger", "anger", "calm")  # "calm" was never seen
    results = evaluate_model(model, X, labels, figures_dir=tmp_path / "eval")
    assert results["unknown_labels"] == ["calm"] and results["confusion_matrix"]["labels"] == ["anger", "calm", "sadness"]
    assert [p["path"] for p in results["predictions"]] == list(X)
    assert (tmp_path / "eval" / "confusion_matrix.png").is_file()
    json.dumps(results)
    with pytest.raises(ValueError, match="X has 24 files but y has 23 labels"):  # was scikit-learn's [24, 23]
        evaluate_model(model, X, labels[:-1])


def test_save_model_writes_the_whole_file_or_keeps_the_old_one(corpus, tmp_path, monkeypatch):
    X, y, _ = corpus
    model = tiny_pipeline().fit(X, y)
    path = tmp_path / "models" / "model.joblib"  # the folder is made
    save_model(model, path, compress=3)
    np.testing.assert_array_equal(load_model(path).predict_proba(X), model.predict_proba(X))
    saved = path.read_bytes()

    def interrupted_dump(value, fh, **kwargs):
        fh.write(b"\x80\x04 half a pickle")
        raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "dump", interrupted_dump)
    with pytest.raises(KeyboardInterrupt):
        save_model(tiny_pipeline(random_state=1).fit(X, y), path)
    assert path.read_bytes() == saved  # joblib.dump in place would have left the half pickle
    assert [p.name for p in path.parent.iterdir()] == ["model.joblib"]  # no temporary file left
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save_model(model, tmp_path)


def test_load_model_refuses_what_is_not_a_fitted_sersk_model(tmp_path):
    from imblearn.pipeline import Pipeline
    from sklearn.linear_model import LogisticRegression

    cases = {
        "lr.joblib": (LogisticRegression().fit([[0.0], [1.0]], ["a", "b"]), "holds a LogisticRegression from sklearn"),
        "list.joblib": ([1, 2], "holds a list, not a sersk model"),
        "unfitted.joblib": (make_pipeline(), "holds an EmotionPipeline that was never fitted"),
        "other.joblib": (Pipeline([("lr", LogisticRegression())]), r"holds a Pipeline \(LogisticRegression\)"),
    }
    for name, (obj, message) in cases.items():
        joblib.dump(obj, tmp_path / name)
        with pytest.raises(ValueError, match=message):
            load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nothing.joblib")
    joblib.dump(Pipeline([]), tmp_path / "empty.joblib")
    with pytest.raises(ValueError, match="holds a Pipeline with no steps"):
        load_model(tmp_path / "empty.joblib")


def test_load_model_takes_a_soft_vote_of_fitted_sersk_pipelines_and_nothing_else(corpus, tmp_path):
    import copy

    from sklearn.ensemble import VotingClassifier

    X, y, _ = corpus
    members = [("seed0", tiny_pipeline()), ("seed1", tiny_pipeline(random_state=1))]
    vote = VotingClassifier(members, voting="soft").fit(X, y)
    fitted = [vote.named_estimators_[name] for name, _ in members]
    np.testing.assert_allclose(vote.predict_proba(X), np.mean([m.predict_proba(X) for m in fitted], axis=0), atol=1e-6)
    assert not np.allclose(fitted[0].predict_proba(X), fitted[1].predict_proba(X))  # two seeds, two models
    joblib.dump(vote, tmp_path / "seeds.joblib")
    model = load_model(tmp_path / "seeds.joblib")
    result = predict_files(model, X)
    np.testing.assert_allclose(result.proba, vote.predict_proba(X), atol=1e-6)
    assert evaluate_model(model, X, y)["n_files"] == len(X)
    joblib.dump(copy.deepcopy(vote).set_params(weights=[1, 2]), tmp_path / "weighted.joblib")
    assert load_model(tmp_path / "weighted.joblib").weights == [1, 2]
    other = copy.deepcopy(vote)
    other.estimators_[1] = other.estimators_[1][-1]  # the network alone, without the steps before it
    dropped = copy.deepcopy(vote).set_params(seed1="drop")  # after the fit: both fitted members still vote
    cases = {
        "hard.joblib": (VotingClassifier(members, voting="hard"), "voting='hard'; sersk takes voting='soft'"),
        "dropped.joblib": (dropped, "of 2 fitted members whose estimators name 1: it was changed after fitting"),
        "zero.joblib": (copy.deepcopy(vote).set_params(weights=[0, 0]), r"weights=\[0, 0\]; expected one non-negative"),
        "negative.joblib": (copy.deepcopy(vote).set_params(weights=[1, -1]), r"weights=\[1, -1\]"),
        "short.joblib": (copy.deepcopy(vote).set_params(weights=[1]), r"weights=\[1\]"),
        "unfitted.joblib": (VotingClassifier(members, voting="soft"), "holds a VotingClassifier that was never fitted"),
        "member.joblib": (other, "holds as its member 'seed1' a CNNLSTMClassifier from sersk.nn.classifier, not a "
                                 "sersk model"),
    }
    for name, (obj, message) in cases.items():
        joblib.dump(obj, tmp_path / name)
        with pytest.raises(ValueError, match=message):
            load_model(tmp_path / name)


def test_load_model_refuses_a_pipeline_with_a_step_never_fitted(corpus, tmp_path):
    from sersk.features import BandStandardizer

    X, y, _ = corpus
    pipe = make_pipeline("tuned", max_epochs=1, random_state=0).set_params(net__module__filters=(4, 4, 4, 4),
                                                                           net__module__hidden_size=4, net__verbose=0)
    pipe.fit(X, y).set_params(scale=BandStandardizer())  # the fitted step replaced by a new one
    joblib.dump(pipe, tmp_path / "model.joblib")
    with pytest.raises(ValueError, match="whose step 'scale' was never fitted"):
        load_model(tmp_path / "model.joblib")


def test_predict_files_refuses_a_single_path_and_does_not_skip_a_model_error(tmp_path):
    class ModelOnAMissingDevice:
        classes_ = np.array(["a", "b"])

        def predict_proba(self, paths):
            raise ValueError("device='cuda' but CUDA is not available here")

    with pytest.raises(ValueError, match="got a single path .*: wrap it in a list"):
        predict_files(ModelOnAMissingDevice(), "clip.wav")
    with pytest.raises(ValueError, match="CUDA is not available"):  # the model's fault: not a skipped file
        predict_files(ModelOnAMissingDevice(), ["a.wav", "b.wav"], skip_errors=True)
    from sersk import CNNLSTMClassifier, LogMelTransformer
    from sersk.pipeline import EmotionPipeline

    for takes_arrays in (CNNLSTMClassifier(), EmotionPipeline([("logmel", LogMelTransformer()), ("net", CNNLSTMClassifier())])):
        with pytest.raises(ValueError, match="reads audio files, but this .* takes arrays"):  # every file was skipped
            predict_files(takes_arrays, ["a.wav", "b.wav"], skip_errors=True)


def test_predict_files_makes_smaller_chunks_of_long_files_and_halves_a_failing_one(tmp_path, monkeypatch):
    """Chunks hold at most ``chunk_size`` files and ``CHUNK_SECONDS`` of audio (files of a long
    recording each were decoded 256 at a time); with ``skip_errors`` a failing chunk is retried in
    halves (it was retried file by file: a batch per file)."""
    import os
    from pathlib import Path

    from sersk import batch
    from sersk.exceptions import AudioFileError

    names = ["0s", "1s", "missing", "2s", "3s", "4long", "5s", "6s", "7s"]
    for name in names:
        if name != "missing":  # no header: counted as no audio; its decoding names it
            sf.write(tmp_path / f"{name}.wav", np.zeros(16000 * (3 if "long" in name else 1), np.float32), 16000)
    calls = []

    class Recorder:
        classes_ = np.array(["x", "y"])

        def predict_proba(self, paths):
            calls.append([Path(p).stem for p in paths])
            if any("missing" in p for p in paths):
                raise AudioFileError("audio file 'missing.wav' does not exist")
            return np.full((len(paths), 2), 0.5)

    monkeypatch.setattr(batch, "CHUNK_SECONDS", 4.0)
    result = predict_files(Recorder(), [str(tmp_path / f"{n}.wav") for n in names], chunk_size=3, skip_errors=True)
    assert calls == [["0s", "1s", "missing"], ["0s"], ["1s", "missing"], ["1s"], ["missing"],
                     ["2s", "3s"], ["4long", "5s"], ["6s", "7s"]]
    assert [Path(p).stem for p in result.paths] == [n for n in names if n != "missing"]
    assert [Path(p).stem for p in result.errors] == ["missing"]
    if hasattr(os, "mkfifo"):  # POSIX
        os.mkfifo(tmp_path / "pipe.wav")
        assert batch._duration(str(tmp_path / "pipe.wav")) == 0.0  # not opened: its header would be gone for decoding


def test_batch_prediction_records_hold_the_path_label_and_each_class_probability():
    from sersk.batch import BatchPrediction

    result = BatchPrediction(["a.wav", "b.wav"], np.array(["x", "y"]), np.array([[0.75, 0.25], [0.5, 0.5]]),
                             np.array(["x", "y"]))
    assert result.to_records() == [
        {"path": "a.wav", "label": "x", "proba": {"x": 0.75, "y": 0.25}},
        {"path": "b.wav", "label": "y", "proba": {"x": 0.5, "y": 0.5}},
    ]
    assert result.errors == {}

    class Uniform:
        classes_ = np.array(["x", "y"])

        def predict_proba(self, paths):
            return np.full((len(paths), 2), 0.5)

    # paths from a numpy array come back (and go into JSON records) as plain str, not np.str_
    from_array = predict_files(Uniform(), np.array(["a.wav", "b.wav"]))
    assert [type(record["path"]) for record in from_array.to_records()] == [str, str]
    # a one-column table of paths, as fit and predict take it (was: "paths[0] is array(['a.wav']), not a path")
    assert predict_files(Uniform(), np.array([["a.wav"], ["b.wav"]])).paths == ["a.wav", "b.wav"]
    scores = evaluate_model(Uniform(), np.array([["a.wav"], ["b.wav"]]), ["x", "y"])
    assert [record["path"] for record in scores["predictions"]] == ["a.wav", "b.wav"]
    # a class named like a record's own key keeps its probability (it replaced the path)
    named = BatchPrediction(["a.wav"], np.array(["path"]), np.array([[0.75, 0.25]]), np.array(["label", "path"]))
    assert named.to_records() == [{"path": "a.wav", "label": "path", "proba": {"label": 0.75, "path": 0.25}}]


def test_scores_compare_labels_as_they_are_and_refuse_missing_or_mixed_ones():
    assert score_predictions([0, 1, 1], [0.0, 1.0, 0.0])["accuracy"] == pytest.approx(2 / 3)  # was 0: "1" != "1.0"
    for y_true, y_pred, labels, match in [
        (np.array([1, 2], dtype=object), np.array(["1", 2], dtype=object), None, r"y_pred mixes text and numbers \(.1. at position 0, 2 at position 1\)"),
        (["a", None], ["a", "a"], None, "y_true has a missing label .None, NaN or NA. at position 1"),
        ([0.0, np.nan], [0.0, 0.0], None, "y_true has a missing label"),
        (list(np.array([0, np.nan], np.float32)), [0.0, 0.0], None, "y_true has a missing label .* at position 1"),
        (["a", "b"], ["a", "b"], ["a"], "labels lacks b"),
        (["a", "b"], ["a", "b"], ["a", "b", "a"], "labels names a more than once"),
        ([], [], None, "empty"),
    ]:
        with pytest.raises(ValueError, match=match):
            score_predictions(y_true, y_pred, labels)


def test_protocols_and_batch_prediction_refuse_inputs_that_would_pair_wrongly():
    from sklearn.exceptions import NotFittedError

    from sersk.evaluation import clip_predictions

    files = [f"{i}.wav" for i in range(24)]
    y = np.array(["a", "b"] * 12)
    with pytest.raises(ValueError, match="X has 28 entries but y has 24"):  # was: trained on mismatched pairs
        run_reference_protocol(files + files[:4], y)
    with pytest.raises(ValueError, match="speakers has a missing speaker"):  # was: a speaker named "nan"
        run_leave_one_speaker_out(files, y, np.array([np.nan] * 8 + [1.0] * 8 + [2.0] * 8))
    with pytest.raises(ValueError, match=r"proba has shape \(1, 3\) for 2 classes"):  # was: a column dropped
        clip_predictions(["a.wav"], ["x"], ["x"], proba=np.ones((1, 3)), classes=["x", "y"])
    with pytest.raises(NotFittedError, match="not fitted"):
        predict_files(make_pipeline(), ["a.wav"])
    with pytest.raises(ValueError, match=r"paths\[1\] is None"):
        predict_files(make_pipeline(), ["a.wav", None])
    with pytest.raises(ValueError, match="chunk_size=1.5"):
        predict_files(make_pipeline(), ["a.wav"], chunk_size=1.5)


def test_load_model_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "gone.joblib"))):  # named as expanded
        load_model("~/gone.joblib")


def test_a_model_of_number_labels_is_scored_with_labels_read_as_text(corpus, tmp_path):
    X, y, _ = corpus
    numbers = (y == "anger").astype(int)
    model = tiny_pipeline().fit(X, numbers)
    expected = evaluate_model(model, X, numbers)
    for labels in (numbers.astype(str), numbers.astype(object)):  # a CSV's labels; a pandas object column
        results = evaluate_model(model, iter(X), labels)  # X may be any iterable
        assert results["accuracy"] == expected["accuracy"] and results["confusion_matrix"]["labels"] == ["0", "1"]
    with pytest.raises(ValueError, match="different kinds .strings and numbers. and not the same names"):
        evaluate_model(model, X, np.where(numbers == 1, "anger", "0"))
    unseen = evaluate_model(model, X, np.where(numbers == 1, "7", "0"))  # "7": a class the model does not know
    assert unseen["unknown_labels"] == ["7"] and unseen["confusion_matrix"]["labels"] == ["0", "1", "7"]
    as_floats = evaluate_model(model, X, numbers.astype(float), figures_dir=tmp_path)  # 1.0 is the class 1
    assert as_floats["confusion_matrix"] == expected["confusion_matrix"] and as_floats["unknown_labels"] == []
    assert [p["label"] for p in as_floats["predictions"]] == numbers.tolist()
    from sersk.evaluation import _as_classes_kind

    small = np.array([0, 1], dtype=np.uint8)  # 256.0 or -1.0 cast to uint8 would wrap around to a class
    assert _as_classes_kind(np.array([1.0, 256.0, -1.0]), small).tolist() == [1.0, 256.0, -1.0]
    assert _as_classes_kind(np.array([1.0, 0.0]), small).dtype == np.uint8
