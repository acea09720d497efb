"""Prediction over long lists of files, in chunks of bounded memory, optionally skipping bad files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm


@dataclass
class BatchPrediction:
    """Predictions for the files that could be read, and the reason each other file was skipped.

    Attributes
    ----------
    paths : list of str
        The files predicted, in input order.
    labels : ndarray of shape (n_files,)
        The predicted label of each.
    proba : ndarray of shape (n_files, n_classes)
        Class probabilities, columns in the order of ``classes``.
    classes : ndarray of shape (n_classes,)
    errors : dict of str to str
        Skipped file -> the error it raised.
    """

    paths: list[str]
    labels: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per predicted file: ``path``, ``label`` and one probability per class."""
        return [
            {"path": p, "label": str(label), **{str(c): float(q) for c, q in zip(self.classes, row)}}
            for p, label, row in zip(self.paths, self.labels, self.proba)
        ]


def _predict_chunk(model: Any, paths: list[str], skip_errors: bool) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Probabilities of one chunk; with ``skip_errors``, a failing chunk is retried file by file."""
    try:
        return paths, model.predict_proba(paths), {}
    except (ValueError, OSError) as exc:
        if not skip_errors:
            raise
        if len(paths) == 1:
            return [], np.empty((0, len(model.classes_))), {paths[0]: str(exc)}
    kept, probas, errors = [], [], {}
    for path in paths:
        ok, proba, err = _predict_chunk(model, [path], skip_errors)
        kept += ok
        probas.append(proba)
        errors.update(err)
    return kept, np.concatenate(probas), errors


def predict_files(
    model: Any,
    paths: Sequence[str | os.PathLike],
    *,
    chunk_size: int = 256,
    skip_errors: bool = False,
    verbose: bool = False,
) -> BatchPrediction:
    """Predict a long list of audio files chunk by chunk.

    Only ``chunk_size`` files are decoded and featurised at a time, so memory stays bounded
    however many files there are.

    Parameters
    ----------
    model : fitted pipeline
        Anything with ``predict_proba(paths)`` and ``classes_``, e.g. a fitted
        :func:`~sersk.make_pipeline`.
    paths : sequence of str or os.PathLike
        Audio files.
    chunk_size : int, default=256
        Files per chunk.
    skip_errors : bool, default=False
        Skip files that cannot be read or featurised (missing, empty, not audio, too short) and
        report them in ``errors``, instead of raising on the first.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    prediction : BatchPrediction

    Examples
    --------
    >>> result = predict_files(joblib.load("model.joblib"), paths, skip_errors=True)  # doctest: +SKIP
    >>> result.errors  # doctest: +SKIP
    {'broken.wav': "audio file 'broken.wav' cannot be decoded ..."}
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size}; expected a positive integer")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("no files given: the list of paths is empty")
    classes = np.asarray(model.classes_)
    kept: list[str] = []
    probas: list[np.ndarray] = []
    errors: dict[str, str] = {}
    with tqdm(total=len(paths), desc="predicting", unit="file", disable=not verbose) as bar:
        for start in range(0, len(paths), chunk_size):
            chunk = paths[start : start + chunk_size]
            ok, proba, err = _predict_chunk(model, chunk, skip_errors)
            kept += ok
            probas.append(proba)
            errors.update(err)
            bar.update(len(chunk))
    proba = np.concatenate(probas) if probas else np.empty((0, len(classes)))
    return BatchPrediction(kept, classes[proba.argmax(axis=1)] if len(proba) else classes[:0], proba, classes, errors)
