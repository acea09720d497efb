"""Prediction over long lists of files, in chunks of bounded memory, optionally skipping bad files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
from sklearn.exceptions import NotFittedError

from .exceptions import AudioFileError, InvalidSignalError
from .io import _is_path, native_name
from .utils._terminal import bar_disabled, tqdm
from .utils.validation import check_bool, check_collection, check_labels, count, is_integer, path_column, plain_path


# Audio decoded at a time by predict_files besides its ``chunk_size`` files, so that long recordings
# make smaller chunks: 256 files of 10 s, 156 MiB of samples at 16 kHz in float32 (and a quarter as
# much again in log-mels).
CHUNK_SECONDS = 2560.0


@dataclass
class BatchPrediction:
    """Predictions for the files that could be read, and the reason each other file was skipped.

    Returned by :func:`predict_files`; each parameter is kept as the attribute of that name.

    Parameters
    ----------
    paths : list of str
        The files predicted, in input order.
    labels : ndarray of shape (n_files,)
        The predicted label of each.
    proba : ndarray of shape (n_files, n_classes)
        Class probabilities, columns in the order of ``classes``.
    classes : ndarray of shape (n_classes,)
        The model's classes.
    errors : dict of str to str, default={}
        Skipped file -> the error it raised.
    """

    paths: list[str]
    labels: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        skipped = f", {len(self.errors)} skipped" if self.errors else ""
        return f"BatchPrediction({count(len(self.paths), 'file')}, classes {list(map(str, self.classes))}{skipped})"

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per predicted file, JSON-ready.

        Returns
        -------
        records : list of dict
            ``path``, ``label`` (the predicted one) and ``proba``, a dict of class -> probability,
            nested as in :func:`~sersk.evaluation.clip_predictions`' records (where ``label`` is the
            true label and ``predicted`` the prediction).
        """
        return [
            {"path": p, "label": str(label), "proba": {str(c): float(q) for c, q in zip(self.classes, row)}}
            for p, label, row in zip(self.paths, self.labels, self.proba)
        ]


def _chunks(paths: list[str], chunk_size: int) -> Iterator[list[str]]:
    """Consecutive paths in chunks of at most ``chunk_size`` files and ``CHUNK_SECONDS`` of audio
    (a longer file makes a chunk of its own), made as they are taken: each file's header is read
    just before its chunk is predicted."""
    chunk: list[str] = []
    seconds = 0.0
    for path in paths:
        duration = _duration(path)
        if chunk and (len(chunk) == chunk_size or seconds + duration > CHUNK_SECONDS):
            yield chunk
            chunk, seconds = [], 0.0
        chunk.append(path)
        seconds += duration
    if chunk:
        yield chunk


def _duration(path: str) -> float:
    """Seconds of audio in the file, from its header; 0 where it cannot be read (decoding it says why)
    and for what is not a regular file (a pipe's header, read here, would be gone for decoding)."""
    try:
        if not os.path.isfile(path):
            return 0.0
        info = sf.info(native_name(path))
    except (RuntimeError, OSError, TypeError, ValueError):  # libsndfile's errors, a name it cannot take
        return 0.0
    return info.frames / info.samplerate if info.samplerate > 0 else 0.0


# What a file can raise that is the file's fault, not the model's: skipped with ``skip_errors``.
_FILE_ERRORS = (AudioFileError, InvalidSignalError, OSError)


def _predict_chunk(model: Any, paths: list[str], skip_errors: bool) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Probabilities of one chunk; with ``skip_errors``, a failing chunk is retried as two halves,
    down to the files that fail: a few bad files cost a few smaller batches, not one per file."""
    try:
        return paths, model.predict_proba(paths), {}
    except _FILE_ERRORS as exc:
        if not skip_errors:
            raise
        if len(paths) == 1:
            return [], np.empty((0, len(model.classes_))), {paths[0]: str(exc)}
    half = len(paths) // 2
    return _merge_chunks([_predict_chunk(model, part, skip_errors) for part in (paths[:half], paths[half:])],
                         len(model.classes_))


def _merge_chunks(
    results: list[tuple[list[str], np.ndarray, dict[str, str]]], n_classes: int
) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """The kept paths, their probabilities and the errors of several chunks, in chunk order."""
    kept: list[str] = [path for ok, _, _ in results for path in ok]
    probas = [proba for _, proba, _ in results]
    errors = {path: message for _, _, err in results for path, message in err.items()}
    return kept, np.concatenate(probas) if probas else np.empty((0, n_classes)), errors


def predict_files(
    model: Any,
    paths: Sequence[str | os.PathLike[str]] | npt.ArrayLike,
    *,
    speakers: Any = None,
    chunk_size: int = 256,
    skip_errors: bool = False,
    verbose: bool = False,
    client: Any = None,
) -> BatchPrediction:
    """Predict a long list of audio files chunk by chunk, here or on a Dask cluster.

    Only ``chunk_size`` files, and at most ``CHUNK_SECONDS`` (about 43 minutes) of audio, are decoded
    and featurised at a time, so memory stays bounded however many files there are (a long file
    takes memory for its own samples and log-mels only); a model with ``scope="speaker"`` takes each
    speaker's files at once instead (see ``speakers``). With ``client``, the chunks run on the workers of a Dask cluster:
    the model is sent to each worker once, each task carries only its chunk's paths, and at most
    two chunks per worker thread are pending at a time.

    Parameters
    ----------
    model : fitted pipeline
        Anything with ``predict_proba(paths)`` and ``classes_``, e.g. a fitted
        :func:`~sersk.make_pipeline`; a bare network or a pipeline that starts from arrays is
        refused.
    paths : sequence of str or os.PathLike
        Audio files (or a one-column table of them, as ``fit`` takes).
    speakers : array-like of shape (n_files,), optional
        The speaker of each file (compared as text where text and numbers mix, as ``fit`` compares
        them), for a model that standardises each speaker with that speaker's own statistics
        (``scope="speaker"``, in the pipeline or in an ensemble's members): each speaker's files
        are then predicted together, in one chunk however many they are (the files that can be
        read, with ``skip_errors``). Without speakers, such a model takes all the files as one
        speaker, in one chunk (one task with ``client``), as its ``predict`` takes the clips of a
        call. Other models do not use them (their number is still checked).
    chunk_size : int, default=256
        The most files per chunk (long files make smaller chunks); a model with
        ``scope="speaker"`` takes each speaker's files at once, whatever ``chunk_size``.
    skip_errors : bool, default=False
        Skip files that cannot be read or featurised (missing, empty, not audio, too short) and
        report them in ``errors``, instead of raising on the first.
    verbose : bool, default=False
        Show a progress bar (on a terminal or in a notebook).
    client : dask.distributed.Client, default=None
        Run the chunks on this client's cluster (needs the ``dask`` extra: ``pip install -e ".[dask]"``). The workers
        read the files themselves, so ``paths`` must name files they can open (a shared filesystem
        or mount). The result is the same as without a client. The chunks are made here, from the
        files' headers: a file this process cannot open counts as no audio (its chunk is bounded by
        ``chunk_size`` only).

    Returns
    -------
    prediction : BatchPrediction
        The predictions in input order, and the files skipped.

    Examples
    --------
    >>> result = predict_files(joblib.load("model.joblib"), paths, skip_errors=True)  # doctest: +SKIP
    >>> result.errors  # doctest: +SKIP
    {'broken.wav': "audio file 'broken.wav' cannot be decoded ..."}
    >>> from dask.distributed import Client  # doctest: +SKIP
    >>> with Client("tcp://scheduler:8786") as client:  # doctest: +SKIP
    ...     result = predict_files(model, paths, client=client, verbose=True)
    """
    if not (is_integer(chunk_size) and chunk_size >= 1):
        raise ValueError(f"chunk_size={chunk_size!r}; expected a positive integer")
    check_bool(skip_errors, "skip_errors")
    check_collection(paths, "paths")
    paths = list(path_column(paths))
    if (bad := next((i for i, p in enumerate(paths) if not _is_path(p)), None)) is not None:
        raise ValueError(f"paths[{bad}] is {paths[bad]!r}, not a path (str, bytes or os.PathLike)")
    paths = [plain_path(p) for p in paths]
    if not paths:
        raise ValueError("no files given: the list of paths is empty")
    if speakers is not None:
        speakers = check_labels(speakers, "speakers", what="speaker", n_clips=len(paths), mixed_as_text=True)
        if len(speakers) != len(paths):
            raise ValueError(
                f"paths has {count(len(paths), 'file')} but speakers has {count(len(speakers), 'speaker')}; "
                "they must match (one speaker per file)"
            )
    _check_reads_files(model)
    try:
        classes = np.asarray(model.classes_)
    except AttributeError:
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet: fit it before predicting") from None
    groups = _speaker_groups(speakers, len(paths)) if standardises_speakers(model) else None
    chunks = _chunks(paths, chunk_size) if groups is None else ([paths[i] for i in group] for group in groups)
    predict = _predict_chunk if groups is None else _predict_speaker
    with tqdm(total=len(paths), desc="predicting", unit="file", disable=bar_disabled(verbose)) as bar:
        if client is None:
            results = []
            for chunk in chunks:
                results.append(predict(model, chunk, skip_errors))
                bar.update(len(chunk))
        else:
            results = _predict_chunks_on_cluster(client, model, chunks, skip_errors, bar, predict)
    if groups is not None:
        results = _in_input_order(results, groups, paths, len(classes))
    kept, proba, errors = _merge_chunks(results, len(classes))
    return BatchPrediction(kept, classes[proba.argmax(axis=1)] if len(proba) else classes[:0], proba, classes, errors)


def _check_reads_files(model: Any) -> None:
    """Refuse a model that starts from arrays (a bare network, a pipeline from log-mels): with
    ``skip_errors`` every file would be skipped, each with the model's complaint about its input."""
    from .augment import AugmentingResampler
    from .features import BandStandardizer, LogMelTransformer
    from .nn import CNNLSTMClassifier

    first = model.steps[0][1] if hasattr(model, "steps") and model.steps else model
    if isinstance(first, (CNNLSTMClassifier, LogMelTransformer, BandStandardizer, AugmentingResampler)):
        starts = "" if first is model else f" starts with {type(first).__name__}, which"
        raise ValueError(
            f"predict_files reads audio files, but this {type(model).__name__}{starts} takes arrays: predict from "
            "files with a pipeline that starts with an AudioLoader (sersk.make_pipeline), or call predict_proba "
            "on the arrays"
        )


def standardises_speakers(model: Any) -> bool:
    """Whether a step of ``model`` (of a member, for an ensemble) standardises each speaker with that
    speaker's own statistics (``scope="speaker"``): its prediction of a file depends on which of the
    speaker's files come with it.

    Parameters
    ----------
    model : Pipeline or VotingClassifier
        A fitted model.

    Returns
    -------
    bool
        True when a step (of a member) has ``scope="speaker"``.
    """
    from .persistence import fitted_members
    from .pipeline import speaker_scoped_steps

    return any(hasattr(member, "steps") and speaker_scoped_steps(member) for _, member in fitted_members(model))


def _speaker_groups(speakers: np.ndarray | None, n_files: int) -> list[list[int]]:
    """The positions of each speaker's files, speakers in order of their first file; all files as one
    speaker without ``speakers``."""
    if speakers is None:
        return [list(range(n_files))]
    _, first, inverse = np.unique(speakers, return_index=True, return_inverse=True)
    return [np.flatnonzero(inverse == k).tolist() for k in np.argsort(first)]


def _predict_speaker(model: Any, paths: list[str], skip_errors: bool) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """``_predict_chunk`` of one speaker's files, all predicted together: once the failing files are
    found, those that can be read are predicted again as one call, since the model standardises them
    with the statistics of the files it is given."""
    kept, proba, errors = _predict_chunk(model, paths, skip_errors)
    if errors and kept:
        proba = model.predict_proba(kept)
    return kept, proba, errors


def _in_input_order(
    results: list[tuple[list[str], np.ndarray, dict[str, str]]], groups: list[list[int]], paths: list[str],
    n_classes: int,
) -> list[tuple[list[str], np.ndarray, dict[str, str]]]:
    """The results of chunks of the files at ``groups``' positions in ``paths``, as one result in
    the files' order (the errors, too)."""
    positions: list[int] = []
    for (kept, _, _), group in zip(results, groups, strict=True):
        remaining = iter(group)  # the kept files are a subsequence of the group's
        positions.extend(next(i for i in remaining if paths[i] == path) for path in kept)
    kept, proba, errors = _merge_chunks(results, n_classes)
    order = np.argsort(positions, kind="stable")
    first: dict[str, int] = {}
    for i, path in enumerate(paths):
        first.setdefault(path, i)
    return [([kept[i] for i in order], proba[order], dict(sorted(errors.items(), key=lambda e: first[e[0]])))]


def _predict_chunks_on_cluster(
    client: Any, model: Any, chunks: Iterable[list[str]], skip_errors: bool, bar: tqdm, predict: Callable[..., Any]
) -> list[tuple[list[str], np.ndarray, dict[str, str]]]:
    """``predict`` (:func:`_predict_chunk`, or :func:`_predict_speaker`) of every chunk on the client's
    workers; results in chunk order.

    The model is scattered to every worker once; a task carries its chunk's paths only. At most two
    chunks per worker thread are pending, so neither the scheduler nor the workers hold the whole
    list. The first error (without ``skip_errors``) cancels the pending chunks and is raised here.
    """
    from distributed import as_completed

    n_threads = max(1, sum(client.nthreads().values()))  # with no worker yet, tasks wait for one
    model_future = client.scatter(model, broadcast=True, hash=False)
    todo = iter(enumerate(chunks))
    in_flight: dict[str, tuple[int, int, Any]] = {}
    completed = as_completed()

    def submit_next() -> None:
        following = next(todo, None)
        if following is not None:
            future = client.submit(predict, model_future, following[1], skip_errors, pure=False)
            in_flight[future.key] = (following[0], len(following[1]), future)
            completed.add(future)

    results: dict[int, Any] = {}
    try:
        for _ in range(2 * n_threads):
            submit_next()  # the chunks are made as they are sent: making one may raise
        for future in completed:
            i, n_files, _ = in_flight.pop(future.key)
            results[i] = future.result()  # raises the chunk's error
            bar.update(n_files)
            submit_next()
    finally:
        if in_flight:
            client.cancel([future for *_, future in in_flight.values()])
        model_future.release()
    return [results[i] for i in sorted(results)]
