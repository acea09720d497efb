"""Scoring a model, and the two evaluation protocols: the reference split and leave-one-speaker-out.

Each function returns its results as a JSON-ready dict and writes figures only when given a
``figures_dir``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.parse
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import clone
from sklearn.utils import check_consistent_length

from .io import _is_path
from .nn import CNNLSTMClassifier
from .pipeline import speaker_scoped_steps
from .utils._text import printable, repeated
from .utils._version import _library_versions
from .utils.files import atomic_output
from .utils.validation import (
    check_bool, check_labels, check_matches_labels, check_seed, count, path_column, plain_path,
)

__all__ = [
    "PROJECT_BAR",
    "PUBLISHED_SPEAKER_INDEPENDENT",
    "REFERENCE_ACCURACY",
    "clip_predictions",
    "evaluate_model",
    "run_leave_one_speaker_out",
    "run_reference_protocol",
    "score_predictions",
]

REFERENCE_ACCURACY = 0.6329
"""Test accuracy of the reference example (speaker-dependent 70/15/15 split, 75 augmentations, 3 epochs)."""
PUBLISHED_SPEAKER_INDEPENDENT = {
    "openSMILE + SVM": ("accuracy", 0.73), "ACRNN": ("UAR", 0.828), "ADRNN": ("accuracy", 0.854),
}
"""Published speaker-independent figures on Emo-DB, for comparison with leave-one-speaker-out:
system -> (metric, value). ACRNN reports UAR; the others accuracy."""
PROJECT_BAR = "openSMILE ComParE + linear SVM, LOSO: 80.0 % accuracy / 78.6 % UAR"
"""The bar this project measures itself against, leave-one-speaker-out."""

_FIGURE_CLIPS = 4  # log-mel spectrograms shown in log_mels.png


def _check_test_speakers(test_speakers: Any) -> np.ndarray:
    """``test_speakers`` as a non-empty array of distinct speaker names."""
    if isinstance(test_speakers, (str, bytes)):
        raise ValueError(f"test_speakers={test_speakers!r} is a single name; give a list, e.g. [{test_speakers!r}]")
    held_out = np.asarray(test_speakers).astype(str).ravel()
    if held_out.size == 0:
        raise ValueError("test_speakers is empty; give at least one speaker, or None for all")
    if named_twice := repeated(held_out.tolist()):
        raise ValueError(f"test_speakers names {', '.join(named_twice)} more than once; each fold runs once")
    return held_out


def score_predictions(y_true: Any, y_pred: Any, labels: npt.ArrayLike | None = None) -> dict[str, Any]:
    """Accuracy, unweighted average recall, recall per class and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : sequence, optional
        Rows and columns of the confusion matrix; by default the sorted labels of either.

    Returns
    -------
    scores : dict
        ``n_files``, ``accuracy``, ``accuracy_ci95`` (``[low, high]``, the accuracy's 95 % Wilson
        score interval, taking the clips as independent draws: clips of one speaker are not, so for
        other speakers it is too narrow), ``uar`` (unweighted average recall, i.e. balanced
        accuracy), ``recall_per_class`` (over the classes present in ``y_true``) and
        ``confusion_matrix`` (``labels`` and ``counts``, rows true, columns predicted), with plain
        Python values.

    Examples
    --------
    >>> from sersk.evaluation import score_predictions
    >>> scores = score_predictions(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    >>> scores["accuracy"], scores["uar"]
    (0.75, 0.75)
    >>> scores = score_predictions(["a"] * 87, ["a"] * 74 + ["b"] * 13)  # 74 of 87 clips right
    >>> [round(100 * bound, 1) for bound in scores["accuracy_ci95"]]
    [76.1, 91.1]
    """
    from scipy.stats import binomtest
    from sklearn.metrics import confusion_matrix, recall_score
    from sklearn.utils.multiclass import unique_labels

    y_true, y_pred = check_labels(y_true, "y_true"), check_labels(y_pred, "y_pred")
    check_consistent_length(y_true, y_pred)
    if len(y_true) == 0:
        raise ValueError("y_true is empty: nothing to score")
    found: np.ndarray
    try:
        found = unique_labels(y_true, y_pred)  # refuses a mix of strings and numbers, which str() would merge
    except TypeError:  # a mix inside one object array: sorting fails
        raise ValueError("Mix of label input types in y_true and y_pred: labels that cannot be ordered together "
                         "(strings and numbers?)") from None
    if labels is None:
        labels = found
    else:
        labels = check_labels(labels, "labels")
        if named_twice := repeated(labels.tolist()):
            raise ValueError(f"labels names {', '.join(map(str, named_twice))} more than once")
        if len(absent := [c for c in found.tolist() if c not in labels.tolist()]):
            raise ValueError(f"labels lacks {', '.join(map(str, absent))}, which y_true or y_pred hold")
    present = np.unique(y_true)
    recall = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    correct = int(np.sum(y_true == y_pred))
    interval = binomtest(correct, len(y_true)).proportion_ci(confidence_level=0.95, method="wilson")
    return {
        "n_files": int(len(y_true)),
        "accuracy": correct / len(y_true),
        "accuracy_ci95": [float(interval.low), float(interval.high)],
        "uar": float(recall.mean()),  # balanced accuracy, without its warning for a class predicted but absent
        "recall_per_class": {str(c): float(r) for c, r in zip(present, recall)},
        "confusion_matrix": {
            "labels": [str(c) for c in labels],
            "counts": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def _as_classes_kind(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``y`` as labels of the kind of the model's ``classes``: labels read from a file are strings,
    while a model trained on numbers predicts numbers ("1" is then the class 1)."""
    from sklearn.utils.multiclass import unique_labels

    try:
        unique_labels(y, classes)
    except (ValueError, TypeError):  # a mix of strings and numbers
        values = y.tolist()
        lookup = {str(c): c for c in classes.tolist()}
        if all(str(v) in lookup for v in values):
            return np.array([lookup[str(v)] for v in values])
        if classes.dtype.kind in "iu" and all(isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d+\s*", v) for v in values):
            return np.array([int(v) for v in values])  # "7" is the class 7, which the model may not know
        raise ValueError(
            f"the labels {sorted(map(str, set(values)))} and the model's classes {list(map(str, classes))} are of "
            "different kinds (strings and numbers) and not the same names"
        ) from None
    if y.dtype.kind == "f" and classes.dtype.kind in "iu":  # 1.0 (a label column of floats) is the class 1
        with np.errstate(invalid="ignore"):  # -1.0 or 256.0 to uint8 would wrap around to a class: kept as floats
            as_classes = y.astype(classes.dtype)
        if np.array_equal(as_classes, y):
            return as_classes
    return y


def evaluate_model(
    model: Any,
    X: Sequence[str | os.PathLike[str]] | npt.ArrayLike,
    y: Any,
    *,
    speakers: Any = None,
    chunk_size: int = 256,
    skip_errors: bool = False,
    figures_dir: str | os.PathLike | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Score a fitted model on labelled audio files.

    Parameters
    ----------
    model : fitted pipeline
        E.g. from [`load_model`][sersk.persistence.load_model].
    X : sequence of str or os.PathLike
        Audio files (or a one-column table of them, as ``fit`` takes).
    y : array-like of shape (n_files,)
        Their labels. Labels the model never saw count as errors (listed in ``unknown_labels``).
    speakers : array-like of shape (n_files,), optional
        The speaker of each file, for a model that standardises each speaker with that speaker's own
        statistics (``scope="speaker"``): each speaker's files are predicted together. Without them,
        such a model takes all the files as one speaker (see
        [`predict_files`][sersk.batch.predict_files]). Other models ignore them.
    chunk_size : int, default=256
        The most files decoded at a time (see [`predict_files`][sersk.batch.predict_files]: long files
        make smaller chunks, and a model with ``scope="speaker"`` takes each speaker's files at once).
    skip_errors : bool, default=False
        Leave out files that cannot be read or featurised (listed in ``errors``) and score the
        others, instead of raising on the first.
    figures_dir : str or os.PathLike, optional
        When given, ``confusion_matrix.png`` is written there (the folder is created).
    verbose : bool, default=False
        Show a progress bar (on a terminal or in a notebook).

    Returns
    -------
    results : dict
        The scores of [`score_predictions`][sersk.evaluation.score_predictions] over the model's
        classes and the labels of ``y``, plus ``classification_report`` (scikit-learn's, as a
        dict), ``unknown_labels``, ``predictions`` (``path``, ``label``, ``predicted`` per file
        scored) and ``errors`` (each file left out, with its message).
    """
    from sklearn.metrics import classification_report

    from .batch import predict_files

    X, y = list(path_column(X)), check_labels(y, "y")
    check_matches_labels(X, y, noun="file")  # before predicting every file
    classes = np.asarray(model.classes_)
    y = _as_classes_kind(y, classes)
    result = predict_files(
        model, X, speakers=speakers, chunk_size=chunk_size, skip_errors=skip_errors, verbose=verbose
    )
    if result.errors:
        y = y[[plain_path(path) not in result.errors for path in X]]  # the keys predict_files gives
        if not len(y):
            path, message = next(iter(result.errors.items()))
            raise ValueError(f"none of the {count(len(X), 'file')} could be read, nothing to score ({path}: {message})")
    y_pred = np.asarray(result.labels)
    labels = np.union1d(classes, y)
    results = score_predictions(y, y_pred, labels)
    results["unknown_labels"] = [str(c) for c in np.setdiff1d(y, classes)]
    # over the labels of y, as the UAR: a class of the model absent from y would add a recall of 0
    report = classification_report(y, y_pred, labels=np.unique(y), zero_division=0, output_dict=True)
    results["classification_report"] = {
        name: {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()} if isinstance(row, dict)
        else float(row)
        for name, row in report.items()
    }
    results["predictions"] = [
        {"path": p, "label": t, "predicted": q}
        for p, t, q in zip(result.paths, y.tolist(), y_pred.tolist(), strict=True)
    ]
    results["errors"] = dict(result.errors)
    if figures_dir is not None:
        _save_confusion_matrix(y, y_pred, labels, _folder(figures_dir), _headline(results))
    return results


def clip_predictions(
    files: Any, y_true: Any, y_pred: Any, proba: npt.ArrayLike | None = None, classes: npt.ArrayLike | None = None
) -> list[dict[str, Any]]:
    """Each clip's path, label, predicted label and class probabilities, as JSON-ready records.

    Kept in a protocol's results so that runs can be compared clip by clip, or their
    probabilities averaged (an ensemble over seeds), without training again.

    Parameters
    ----------
    files : iterable of str or os.PathLike, of length n_clips
        The clips' files (or names), in order.
    y_true, y_pred : iterable of length n_clips
        True and predicted labels.
    proba : ndarray of shape (n_clips, n_classes), optional
        Class probabilities, columns in the order of ``classes``.
    classes : sequence of labels, optional
        Needed with ``proba``.

    Returns
    -------
    records : list of dict
        ``{"path", "label", "predicted"}`` per clip (as in
        [`evaluate_model`][sersk.evaluation.evaluate_model]), and ``"proba"`` (each class's probability,
        rounded to 6 decimals) when ``proba`` is given.
    """
    # any iterables, generators too; a one-column table's paths (listing a DataFrame gives its column names)
    files, y_true, y_pred = list(path_column(files)), list(y_true), list(y_pred)
    check_consistent_length(files, y_true, y_pred, *([] if proba is None else [proba]))
    records: list[dict[str, Any]] = [
        {"path": str(f), "label": str(t), "predicted": str(p)} for f, t, p in zip(files, y_true, y_pred)
    ]
    if proba is not None:
        if classes is None:
            raise ValueError("clip_predictions needs classes with proba (the order of its columns)")
        names = [str(c) for c in check_labels(classes, "classes", what="class")]
        proba = np.asarray(proba)
        if proba.ndim != 2 or proba.shape[1] != len(names) or len(set(names)) != len(names):
            raise ValueError(
                f"proba has shape {proba.shape} for {len(names)} classes {names}; expected one column per class, "
                "each class named once"
            )
        for record, row in zip(records, proba, strict=True):
            record["proba"] = {c: round(float(v), 6) for c, v in zip(names, row)}
    return records


def _predict(pipeline: Any, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Predicted labels, and the class probabilities when the pipeline gives them."""
    if not hasattr(pipeline, "predict_proba"):
        return np.asarray(pipeline.predict(X)), None
    proba = pipeline.predict_proba(X)
    if isinstance(pipeline[-1], CNNLSTMClassifier):  # its predict is the argmax of predict_proba: one pass
        return pipeline.classes_[proba.argmax(axis=1)], proba
    return np.asarray(pipeline.predict(X)), proba


def run_reference_protocol(
    X: Any,
    y: Any,
    *,
    pipeline: Any = None,
    random_state: int | None = None,
    return_estimator: bool = False,
    figures_dir: str | os.PathLike | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """The reference example's protocol: train, validate and test on a 70/15/15 split per label.

    The split is [`reference_split`][sersk.model_selection.reference_split], at random over
    files, so the same speakers appear in training and test (speaker-dependent). The pipeline
    trains on the training part, is validated on the validation part once per epoch (never
    augmented) and is scored on the test part.

    Parameters
    ----------
    X : sequence of str or os.PathLike
        Audio files, e.g. ``fetch_emodb().filenames``.
    y : array-like of shape (n_files,)
        Their labels.
    pipeline : EmotionPipeline, default=None
        The model to train (cloned first); ``make_pipeline(random_state=random_state)`` when None.
    random_state : int, default=None
        Seeds the split, the default pipeline and the choice of clips for the figures.
    return_estimator : bool, default=False
        Add the fitted pipeline to the results as ``estimator``.
    figures_dir : str or os.PathLike, optional
        When given (the folder is created), write ``class_distribution.png``, ``waveform.png``,
        ``log_mels.png`` (clips of the training part), ``training_history.png`` and
        ``confusion_matrix.png`` (the test part) there.
    verbose : int, default=0
        Print the split sizes when > 0. Progress of the fit itself follows the pipeline's own
        ``verbose``.

    Returns
    -------
    results : dict
        ``protocol``, ``n_train``, ``n_validation``, ``n_test``, the test scores of
        [`score_predictions`][sersk.evaluation.score_predictions], ``history`` (per-epoch losses
        and accuracies), ``predictions`` (each test clip's label, prediction and probabilities,
        see [`clip_predictions`][sersk.evaluation.clip_predictions]), ``wall_time_s`` (and
        ``estimator``). Emo-DB's published figure is ``REFERENCE_ACCURACY``; ``sersk reproduce`` adds it.

    Examples
    --------
    >>> from sersk import make_pipeline
    >>> from sersk.datasets import fetch_emodb
    >>> from sersk.evaluation import run_reference_protocol
    >>> emodb = fetch_emodb()  # doctest: +SKIP
    >>> results = run_reference_protocol(emodb.filenames, emodb.target, random_state=0,
    ...                                  pipeline=make_pipeline(n_augmentations=5, random_state=0))  # doctest: +SKIP
    >>> results["accuracy"]  # doctest: +SKIP
    """
    from .model_selection import reference_split

    start = time.perf_counter()
    check_seed(random_state)
    X, y = np.asarray(path_column(X)), check_labels(y, "y")  # a one-column table: its paths, not (n, 1) rows
    check_matches_labels(X, y, noun="entry", plural="entries")
    pipeline = _clone_or_default(pipeline, random_state)
    if _is_transductive(pipeline):
        raise ValueError(
            "this pipeline standardises each speaker with its own statistics (scope='speaker'), which needs each "
            "clip's speaker; the reference protocol has none: use run_leave_one_speaker_out (sersk reproduce "
            "--speaker-independent)"
        )
    split = reference_split(y, random_state=random_state)
    if len(split.validation) == 0:
        raise ValueError(
            f"the reference split of {len(y)} clips leaves no validation clip: a label of n files gives floor(0.15 n) "
            "of them, none below 7 files"
        )
    if verbose > 0:
        print(f"reference split (70/15/15 per label, seed {random_state}): {len(split.train)} training, "
              f"{len(split.validation)} validation, {len(split.test)} test clips")
    if figures_dir is not None:
        _save_data_figures(pipeline, X, y, split.train, _folder(figures_dir), random_state)
    pipeline.fit(X[split.train], y[split.train], validation_data=(X[split.validation], y[split.validation]))
    net = pipeline[-1]
    y_pred, proba = _predict(pipeline, X[split.test])
    scores = score_predictions(y[split.test], y_pred, net.classes_)
    if figures_dir is not None:
        _save_history(net, _folder(figures_dir) / "training_history.png", "Training, the reference split")
        _save_confusion_matrix(y[split.test], y_pred, net.classes_, _folder(figures_dir), f"test: {_headline(scores)}")
    results = {
        "protocol": "speaker-dependent: reference_split, 70/15/15 per label at random over files",
        "n_train": len(split.train),
        "n_validation": len(split.validation),
        "n_test": len(split.test),
        **scores,
        "history": _history(net),
        "predictions": clip_predictions(X[split.test], y[split.test], y_pred, proba, pipeline.classes_),
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    if return_estimator:
        results["estimator"] = pipeline
    return results


def run_leave_one_speaker_out(
    X: Any,
    y: Any,
    speakers: Any,
    *,
    pipeline: Any = None,
    test_speakers: npt.ArrayLike | None = None,
    validation_speaker: bool = True,
    random_state: int | None = None,
    return_estimator: bool = False,
    figures_dir: str | os.PathLike | None = None,
    fold_dir: str | os.PathLike | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Speaker-independent evaluation: each speaker in turn is the test set.

    In each fold the pipeline trains on the other speakers, one of whom is held out (before
    augmentation) for the per-epoch validation unless ``validation_speaker=False``; the
    predictions of all folds are pooled for the overall scores.

    With a :class:`~sersk.features.BandStandardizer` of ``scope="speaker"`` in the pipeline, each
    fold's training speakers are standardised with their own statistics and so is the test
    speaker, with the statistics of all its clips: a transductive protocol (``transductive`` in
    the results, and in ``protocol``), not comparable with the plain speaker-independent figures.

    Parameters
    ----------
    X : sequence of str or os.PathLike
        Audio files.
    y : array-like of shape (n_files,)
        Their labels.
    speakers : array-like of shape (n_files,)
        The speaker of each file (at least 3 speakers; 2 without ``validation_speaker``). Speakers
        are named as strings in the results (an int speaker 3 becomes ``"3"``).
    pipeline : EmotionPipeline, default=None
        The model to train in each fold (cloned; its ``validation_fraction`` is set so that one
        training speaker validates with ``validation_speaker``, and to None without);
        ``make_pipeline(random_state=random_state)`` when None.
    test_speakers : sequence, default=None
        Run the folds of these speakers only (a quicker, partial evaluation); all when None.
        Compared as strings: Emo-DB's speaker ``"03"`` is not ``3``.
    validation_speaker : bool, default=True
        Hold out one training speaker per fold for the per-epoch validation (the recipe's
        practice). The validation only reports; nothing is chosen on it. ``False`` trains on
        all the other speakers.
    random_state : int, default=None
        Seeds the default pipeline and the choice of clips for the figures.
    return_estimator : bool, default=False
        Add the fitted pipeline of each fold to the results as ``estimator`` (a list).
    figures_dir : str or os.PathLike, optional
        When given (the folder is created), write ``class_distribution.png``, ``waveform.png``,
        ``log_mels.png``, ``training_history_speaker<S>.png`` per fold and the pooled
        ``confusion_matrix.png`` there. ``<S>`` is the speaker id, percent-quoted as in a URL
        (``a/b``: ``a%2Fb``), so that any id names one file in the folder.
    fold_dir : str or os.PathLike, optional
        Write each finished fold's results there, as ``fold_<speaker>.json``, and take the folds
        an earlier call of the same evaluation wrote there instead of training them again: a run
        cut short resumes where it stopped. "The same" means the same clips, labels, speakers,
        pipeline parameters (worker counts and verbosity aside), ``validation_speaker``,
        ``random_state`` (an int or None) and versions of sersk, torch, skorch and scikit-learn (a
        development install's own edits keep its version: start such a run afresh); a fold file of
        any other run is an error, raised before any training. A pipeline parameter that prints as a memory address
        (a callback object) cannot be recognised in a later run, and is refused with ``fold_dir``.
    verbose : int, default=0
        Print a line per fold when > 0. Progress of each fit follows the pipeline's own
        ``verbose``.

    Returns
    -------
    results : dict
        ``protocol``, ``transductive``, ``held_out_speakers``, ``n_speakers``, ``folds_run`` (e.g. "3 of
        10"), the pooled scores of
        [`score_predictions`][sersk.evaluation.score_predictions], ``per_speaker`` (scores, the
        clips trained and validated on, history, wall time and ``predictions`` of each fold, see
        [`clip_predictions`][sersk.evaluation.clip_predictions]), ``mean_speaker_accuracy``, ``mean_speaker_uar``,
        ``wall_time_s`` (and ``estimator``; with ``fold_dir``, ``folds_loaded``: the speakers whose
        fold was read from it, whose ``wall_time_s`` is that of the run that trained them). Emo-DB's
        published figures are ``PUBLISHED_SPEAKER_INDEPENDENT`` and ``PROJECT_BAR``; ``sersk
        reproduce`` adds them.
    """
    start = time.perf_counter()
    check_seed(random_state)
    check_bool(validation_speaker, "validation_speaker")
    check_bool(return_estimator, "return_estimator")
    X, y = np.asarray(path_column(X)), check_labels(y, "y")  # a one-column table: its paths, not (n, 1) rows
    # NaN would become a speaker "nan"
    speakers = check_labels(speakers, "speakers", what="speaker", mixed_as_text=True).astype(str)
    if not len(X) == len(y) == len(speakers):
        raise ValueError(f"X, y and speakers have {len(X)}, {len(y)} and {len(speakers)} entries; they must match")
    all_speakers = np.unique(speakers)
    min_speakers = 3 if validation_speaker else 2
    if len(all_speakers) < min_speakers:
        roles = "one to test, one to validate, one to train" if validation_speaker else "one to test, one to train"
        fewer = "; validation_speaker=False (the tuned preset's) needs two" if validation_speaker else ""
        raise ValueError(
            f"leave-one-speaker-out needs at least {min_speakers} speakers ({roles}); got {len(all_speakers)}{fewer}"
        )
    held_out = all_speakers if test_speakers is None else _check_test_speakers(test_speakers)
    unknown = np.setdiff1d(held_out, all_speakers)
    if len(unknown):
        raise ValueError(f"test_speakers {', '.join(unknown)} are not among the speakers ({', '.join(all_speakers)})")
    template = _clone_or_default(pipeline, random_state)
    transductive = _is_transductive(template)
    folds_done = None
    if fold_dir is not None:
        folds_done = _FoldFiles(fold_dir, _run_key(template, X, y, speakers, validation_speaker, random_state))
        if return_estimator and (loaded := [s for s in held_out if folds_done.has(s)]):
            raise ValueError(
                f"return_estimator=True, but the folds of {', '.join(loaded)} would be read from fold_dir, "
                "without their models; give another fold_dir"
            )
    if verbose > 0:
        print(f"leave-one-speaker-out over {len(all_speakers)} speakers; folds for "
              f"{count(len(held_out), 'held-out speaker')}: {printable(', '.join(held_out))}")
    figures = None if figures_dir is None else _folder(figures_dir)
    if figures is not None:
        _save_data_figures(template, X, y, np.flatnonzero(speakers != held_out[0]), figures, random_state)
    folds, estimators, true_all, pred_all, loaded = [], [], [], [], []
    for k, speaker in enumerate(held_out, 1):
        fold_start = time.perf_counter()
        name = printable(str(speaker))  # as printed: an id read from a CSV can hold control characters
        train, test = np.flatnonzero(speakers != speaker), np.flatnonzero(speakers == speaker)
        if folds_done is not None and folds_done.has(speaker):
            fold, y_pred = folds_done.load(speaker, y.dtype)
            if verbose > 0:
                print(f"\nfold {k}/{len(held_out)}: speaker {name}: accuracy {100 * fold['accuracy']:.2f} %, "
                      f"UAR {100 * fold['uar']:.2f} % (read from {folds_done.path(speaker)})")
            folds.append(fold)
            true_all.append(y[test])
            pred_all.append(y_pred)
            loaded.append(str(speaker))
            continue
        n_train_speakers = len(np.unique(speakers[train]))
        if len(untrained := np.setdiff1d(y[test], y[train])):
            warnings.warn(
                f"the fold of speaker {name} trains on no clip labelled {', '.join(map(repr, untrained.tolist()))} "
                "(only this speaker has them): its clips of those labels count as errors", UserWarning, stacklevel=2,
            )
        if verbose > 0:
            validation = ", one of them held out for validation" if validation_speaker else ""
            print(f"\nfold {k}/{len(held_out)}: test speaker {name} ({len(test)} clips); training on the other "
                  f"{n_train_speakers} speakers{validation}")
        fold, y_pred, fold_pipeline = _train_fold(template, X, y, speakers, train, test, validation_speaker)
        fold["wall_time_s"] = round(time.perf_counter() - fold_start, 1)
        if figures is not None:
            _save_history(fold_pipeline[-1], figures / _fold_figure(speaker),
                          f"Training, leave-one-speaker-out: test speaker {speaker}")
        if folds_done is not None:
            folds_done.save(speaker, fold, y_pred)
        if verbose > 0:
            print(f"fold {k}: speaker {name}: accuracy {100 * fold['accuracy']:.2f} %, UAR {100 * fold['uar']:.2f} %")
        folds.append(fold)
        estimators.append(fold_pipeline)
        true_all.append(y[test])
        pred_all.append(y_pred)
    y_true, y_pred = np.concatenate(true_all), np.concatenate(pred_all)
    pooled = score_predictions(y_true, y_pred, np.unique(y))
    if figures is not None:
        run = "" if len(held_out) == len(all_speakers) else f" over {len(held_out)} of {len(all_speakers)} speakers"
        _save_confusion_matrix(y_true, y_pred, np.unique(y), figures, f"LOSO pooled{run}: {_headline(pooled)}")
    results = {
        "protocol": "speaker-independent: leave-one-speaker-out" + (
            " (validation on one held-out training speaker)" if validation_speaker else " (no validation speaker)"
        ) + (_TRANSDUCTIVE if transductive else ""),
        "transductive": transductive,
        "held_out_speakers": [str(s) for s in held_out],
        "n_speakers": len(all_speakers),
        "folds_run": f"{len(held_out)} of {len(all_speakers)}",
        **pooled,
        "per_speaker": folds,
        "mean_speaker_accuracy": float(np.mean([f["accuracy"] for f in folds])),
        "mean_speaker_uar": float(np.mean([f["uar"] for f in folds])),
        "speaker_bootstrap_ci95": _speaker_bootstrap(true_all, pred_all),
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    if folds_done is not None:
        results["folds_loaded"] = loaded
    if return_estimator:
        results["estimator"] = estimators
    return results


_FOLD_FILES = "fold_*.json"  # a leave-one-speaker-out fold's file in fold_dir (_FoldFiles.path)


_BOOTSTRAP_RESAMPLES = 2000
_BOOTSTRAP_MIN_SPEAKERS = 5  # with fewer, an interval would be little more than the folds' range


def _speaker_bootstrap(true_by_speaker: list[np.ndarray], pred_by_speaker: list[np.ndarray]) -> dict[str, Any] | None:
    """95 % percentile intervals of the pooled accuracy and UAR when the held-out speakers are drawn
    again with replacement (scipy's bootstrap, seeded: the same predictions in the same speaker order
    give the same interval): how much the figures depend on which speakers were recorded. With ten
    speakers it is a rough guide (a percentile bootstrap over few clusters runs narrow); None for
    fewer than five."""
    import inspect

    from scipy.stats import bootstrap

    if len(true_by_speaker) < _BOOTSTRAP_MIN_SPEAKERS:
        return None
    classes = np.unique(np.concatenate(true_by_speaker))
    # per speaker and class: clips, and those predicted right; a resample sums its speakers' rows
    clips = np.array([[np.sum(t == c) for c in classes] for t in true_by_speaker])
    right = np.array([[np.sum((t == c) & (p == c)) for c in classes] for t, p in zip(true_by_speaker, pred_by_speaker)])

    def accuracy(picked: np.ndarray, axis: int = -1) -> np.ndarray:
        return right[picked].sum(axis=(-2, -1)) / clips[picked].sum(axis=(-2, -1))

    def uar(picked: np.ndarray, axis: int = -1) -> np.ndarray:
        seen, hits = clips[picked].sum(axis=-2), right[picked].sum(axis=-2)
        recall = np.divide(hits, seen, out=np.full(seen.shape, np.nan), where=seen > 0)
        return np.nanmean(recall, axis=-1)  # over the classes the drawn speakers recorded

    # scipy 1.15 names the generator rng (SPEC 7); random_state is the older name
    seeding = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    speakers = np.arange(len(true_by_speaker))
    intervals = {
        name: bootstrap((speakers,), statistic, vectorized=True, n_resamples=_BOOTSTRAP_RESAMPLES, method="percentile",
                        **{seeding: np.random.default_rng(0)}).confidence_interval
        for name, statistic in (("accuracy", accuracy), ("uar", uar))
    }
    return {
        **{name: [float(ci.low), float(ci.high)] for name, ci in intervals.items()},
        "n_resamples": _BOOTSTRAP_RESAMPLES,
    }


def _file_part(speaker: Any) -> str:
    """A speaker's name as part of a file name: quoted, so that any name (``../x``, ``a/b``) makes one
    file in the folder meant."""
    return urllib.parse.quote(str(speaker), safe="")


def _fold_figure(speaker: Any) -> str:
    """The name of a leave-one-speaker-out fold's training figure."""
    return f"training_history_speaker{_file_part(speaker)}.png"


def _fold_file(folder: Path, speaker: Any) -> Path:
    """A leave-one-speaker-out fold's file in ``folder`` (``fold_dir``)."""
    return folder / f"fold_{_file_part(speaker)}.json"


class _FoldFiles:
    """The finished folds of one leave-one-speaker-out run in a folder, a JSON file per fold.

    Each file records the run's key (:func:`_run_key`); one with another key is refused when the
    folder is opened, so that folds of different runs are never pooled.
    """

    def __init__(self, folder: str | os.PathLike, key: str):
        self.folder, self.key = Path(os.fspath(folder)), key
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(f"fold_dir {str(self.folder)!r} is a file, not a folder")
        self._saved = {}
        for path in sorted(self.folder.glob(_FOLD_FILES)):
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                speaker, run_key = saved["speaker"], saved["run_key"]
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise ValueError(
                    f"{str(path)!r} is not a fold file sersk wrote ({type(exc).__name__}: {exc})"
                ) from None
            if run_key != key:
                raise ValueError(
                    f"{str(path)!r} holds the fold of speaker {speaker} of another run (other clips, labels, "
                    "speakers, pipeline parameters, seed, validation speaker, or versions of sersk, torch, skorch or "
                    "scikit-learn); remove it, or write the folds to another folder"
                )
            self._saved[str(speaker)] = saved

    def path(self, speaker: Any) -> Path:
        """The speaker's file; its name quoted, so that any name is one file in the folder."""
        return _fold_file(self.folder, speaker)

    def has(self, speaker: Any) -> bool:
        return str(speaker) in self._saved

    def load(self, speaker: Any, dtype: np.dtype) -> tuple[dict[str, Any], np.ndarray]:
        """The fold's results and its predicted labels, in the labels' dtype."""
        saved = self._saved[str(speaker)]
        return saved["fold"], np.asarray(saved["y_pred"], dtype=dtype)

    def save(self, speaker: Any, fold: dict[str, Any], y_pred: np.ndarray) -> None:
        """Write the fold's file; a failed write is a warning (the fold stays in this run's results)."""
        record = {"speaker": str(speaker), "run_key": self.key, "fold": fold, "y_pred": y_pred.tolist()}
        try:
            with atomic_output(self.path(speaker)) as fh:
                fh.write(json.dumps(record).encode("utf-8"))
        except OSError as exc:
            warnings.warn(
                f"could not write {str(self.path(speaker))!r} ({exc}): the fold of speaker {speaker} is in this run's "
                "results, but a later run cannot resume from it", stacklevel=3,
            )


def _run_key(
    pipeline: Any, X: np.ndarray, y: np.ndarray, speakers: np.ndarray, validation_speaker: bool, random_state: Any
) -> str:
    """A digest of what decides a leave-one-speaker-out run's folds: the versions of sersk, torch,
    skorch and scikit-learn (a fitted model's, ``_library_versions``), the clips (absolute paths),
    labels, speakers, the pipeline's parameters (its repr in full, which shows
    those that differ from their defaults; worker counts and verbosity left out),
    ``validation_speaker`` and ``random_state``. Refuse what would give another key in every run: a parameter or seed
    printed with its memory address (a callback object, a RandomState)."""
    if not (random_state is None or isinstance(random_state, (int, np.integer))):
        raise ValueError(
            f"fold_dir needs random_state as an int or None (a later run must be recognised as the same); got "
            f"{type(random_state).__name__}"
        )
    settings = pipeline.get_params(deep=True)
    neutral = {key: None if key.endswith("n_jobs") else 0 for key in settings if key.endswith(("n_jobs", "verbose"))}
    described_pipeline = clone(pipeline).set_params(**neutral).__repr__(N_CHAR_MAX=10**9)
    if address := re.search(r"<[^<>]* at 0x[0-9a-fA-F]+>", described_pipeline):
        raise ValueError(
            f"fold_dir needs a pipeline whose parameters print the same in every run (a later run must be recognised "
            f"as the same); {address.group()} prints its memory address (leave fold_dir out, or give that parameter "
            "a value that prints its settings)"
        )
    described = {
        "versions": _library_versions(),
        "pipeline": described_pipeline,
        "X": [os.path.abspath(plain_path(x)) if _is_path(x) else repr(x) for x in X],
        "y": [repr(v) for v in y.tolist()],
        "speakers": speakers.tolist(), "validation_speaker": bool(validation_speaker),
        "random_state": None if random_state is None else int(random_state),
    }
    return hashlib.sha256(json.dumps(described).encode("utf-8")).hexdigest()


# ---- helpers -----------------------------------------------------------------------------------


_TRANSDUCTIVE = "; transductive: every speaker's log-mels, the test speaker's included, standardised with its own statistics"


def _is_transductive(pipeline: Any) -> bool:
    """Whether a step standardises each speaker with that speaker's own statistics (the test speaker's too)."""
    return bool(speaker_scoped_steps(pipeline))


def _train_fold(
    template: Any, X: np.ndarray, y: np.ndarray, speakers: np.ndarray, train: np.ndarray, test: np.ndarray,
    validation_speaker: bool,
) -> tuple[dict[str, Any], np.ndarray, Any]:
    """Fit a clone of ``template`` on the clips ``train`` (one of their speakers validating, with
    ``validation_speaker``) and score it on the test speaker's clips ``test``: the fold's record (but
    its wall time), its predicted labels and the fitted pipeline."""
    pipeline = clone(template)
    # ceil(fraction * n_groups) = 1: exactly one training speaker validates
    pipeline.set_params(validation_fraction=0.5 / len(np.unique(speakers[train])) if validation_speaker else None)
    if validation_speaker or pipeline.steps_taking_groups():
        pipeline.fit(X[train], y[train], groups=speakers[train])
    else:
        pipeline.fit(X[train], y[train])
    y_pred, proba = _predict(pipeline, X[test])
    n_validation = len(getattr(pipeline, "validation_indices_", ()))
    fold = {
        "speaker": str(speakers[test[0]]),
        "n_train_clips": len(train) - n_validation,
        "n_validation_clips": n_validation,
        **score_predictions(y[test], y_pred, np.unique(y)), "history": _history(pipeline[-1]),
        "predictions": clip_predictions(X[test], y[test], y_pred, proba, pipeline.classes_),
    }
    return fold, y_pred, pipeline


def _clone_or_default(pipeline: Any, random_state: int | None) -> Any:
    from .pipeline import make_pipeline

    return make_pipeline(random_state=random_state) if pipeline is None else clone(pipeline)


def _folder(path: str | os.PathLike) -> Path:
    folder = Path(os.fspath(path))
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"figures_dir {str(folder)!r} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _headline(scores: dict[str, Any]) -> str:
    clips = count(scores["n_files"], "clip")
    return f"accuracy {100 * scores['accuracy']:.1f} %, UAR {100 * scores['uar']:.1f} % ({clips})"


def _history(net: Any) -> list[dict[str, Any]]:
    """Each epoch's row of the network's history, as plain Python numbers (the losses are numpy floats)."""
    keys = ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "dur")
    return [{k: (None if row[k] is None else int(row[k]) if k == "epoch" else float(row[k])) for k in keys if k in row}
            for row in net.history]


def _save_data_figures(pipeline: Any, X: np.ndarray, y: np.ndarray, train: np.ndarray, folder: Path,
                       random_state: int | None) -> None:
    """class_distribution.png (all clips), waveform.png and log_mels.png (a clip per emotion of ``train``)."""
    from .features import LogMelTransformer
    from .io import AudioLoader
    from .plotting import plot_class_distribution, plot_log_mels, plot_waveform, save_figure

    save_figure(plot_class_distribution(y), folder / "class_distribution.png")
    rng = np.random.default_rng(random_state)
    emotions = rng.permutation(np.unique(y[train]))[:_FIGURE_CLIPS]
    picks = [int(rng.choice(train[y[train] == e])) for e in emotions]
    steps = dict(pipeline.steps)
    loader = clone(steps["load"]) if isinstance(steps.get("load"), AudioLoader) else AudioLoader()
    logmel = clone(steps["logmel"]) if isinstance(steps.get("logmel"), LogMelTransformer) else LogMelTransformer()
    waveforms = loader.fit_transform(X[picks])
    titles = [f"{Path(str(X[i])).name} ({y[i]})" for i in picks]
    save_figure(plot_waveform(waveforms[0], sample_rate=loader.sample_rate, title=titles[0]), folder / "waveform.png")
    log_mels = logmel.fit_transform(waveforms)
    figure = plot_log_mels(log_mels, titles=titles, sample_rate=logmel.sample_rate, hop_length=logmel.hop_length,
                           n_fft=logmel.n_fft)
    save_figure(figure, folder / "log_mels.png")


def _save_history(net: Any, path: Path, title: str) -> None:
    from .plotting import plot_training_history, save_figure

    save_figure(plot_training_history(net.history, title=title), path)


def _save_confusion_matrix(y_true: Any, y_pred: Any, labels: Any, folder: Path, title: str) -> None:
    from .plotting import plot_confusion_matrix, save_figure

    y_true, labels = np.asarray(y_true).astype(str), np.asarray(labels).astype(str)
    figure = plot_confusion_matrix(y_true, np.asarray(y_pred).astype(str), labels=labels, title=title)
    # each row's clips: a rare class's right answers are pale in colours of counts
    figure.axes[0].set_yticks(range(len(labels)), [f"{label} (n={np.sum(y_true == label)})" for label in labels])
    save_figure(figure, folder / "confusion_matrix.png")
