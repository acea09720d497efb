"""Saving a model atomically; loading one, refusing anything that is not a fitted sersk model."""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .utils._version import recorded_versions, version_change
from .utils.files import atomic_output

if TYPE_CHECKING:
    from sklearn.ensemble import VotingClassifier

_WRITTEN_BY = ("give a file written by 'sersk train' or joblib.dump of a fitted sersk.make_pipeline() (or of a soft "
               "VotingClassifier of them)")


def _a(word: str) -> str:
    """``word`` with its indefinite article: "an EmotionPipeline", "a dict"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


# how a pickle (protocol 2 or later) or joblib's compressed files (gzip, bz2, xz, lzma, lz4) begin; zlib's
# two-byte header is checked apart, as its first byte alone is an ASCII "x"
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ": "lzma", b"\x5d\x00": "lzma"}  # the module opening each
_JOBLIB_MAGIC = (b"\x80", *_COMPRESSED, b"\x04\x22\x4d\x18")  # lz4's last: no standard module reads it


def _starts_like_joblib(path: str) -> bool:
    """Whether ``path`` begins as joblib writes files; True when it cannot be read (say so as it is)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return True
    return _starts_like_zlib(head) or head.startswith(_JOBLIB_MAGIC)


def _starts_like_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0


def save_model(model: Any, path: str | os.PathLike, *, compress: int | bool | tuple[str, int] = 0) -> None:
    """Save ``model`` with ``joblib.dump``, atomically: the file appears complete or not at all.

    ``joblib.dump(model, path)`` writes in place, so an interrupted save (Ctrl-C, a full disk) leaves
    a truncated file where the last good model was. Here the model is written to a temporary file
    beside ``path`` and moved over it once complete; on any error the temporary file is removed and
    a model already at ``path`` is kept. The folder is created if needed. ``sersk train`` saves this
    way; [`load_model`][sersk.persistence.load_model] reads the file back.

    Parameters
    ----------
    model : object
        What to save, usually a fitted [`EmotionPipeline`][sersk.pipeline.EmotionPipeline].
    path : str or os.PathLike
        The file to write (``~`` expanded).
    compress : int, bool or (str, int), default=0
        As in ``joblib.dump``: a level from 0 (none) to 9, or ``(method, level)``.

    Raises
    ------
    IsADirectoryError
        If ``path`` is a folder.
    PermissionError
        If ``path`` is a file that may not be written (read-only), as writing it in place would.
    OSError
        If the folder cannot be written to; ``path`` is left as it was.

    Examples
    --------
    >>> from sersk import make_pipeline, save_model
    >>> save_model(make_pipeline().fit(paths, labels), "model.joblib")  # doctest: +SKIP
    """
    import joblib

    with atomic_output(os.path.expanduser(os.fspath(path))) as fh:
        joblib.dump(model, fh, compress=compress)


def load_model(path: str | os.PathLike) -> Pipeline | VotingClassifier:
    """Load a fitted sersk model saved with ``joblib.dump`` (as ``sersk train`` saves it).

    A sersk model is a pipeline from audio files to emotions: a scikit-learn (or
    imbalanced-learn) [`Pipeline`][sersk.pipeline.EmotionPipeline] that starts with
    [`AudioLoader`][sersk.io.AudioLoader] and ends with a fitted
    [`CNNLSTMClassifier`][sersk.nn.classifier.CNNLSTMClassifier], as
    [`make_pipeline`][sersk.pipeline.make_pipeline] builds it; or a fitted soft
    ``sklearn.ensemble.VotingClassifier`` of such pipelines (several seeds averaged). Anything else
    is refused, by what it is, whatever methods it has.

    Loading unpickles the file, which can run code: load only files you trust. A model trained on
    a GPU loads and predicts on a machine without one (see the user guide, "Persistence and
    devices").

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    model : sklearn.pipeline.Pipeline or sklearn.ensemble.VotingClassifier
        The fitted pipeline (usually an [`EmotionPipeline`][sersk.pipeline.EmotionPipeline]), or
        the soft vote of several.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a folder.
    ValueError
        If the file is empty or cannot be unpickled (not a joblib or pickle file, truncated), or holds
        something other than a fitted sersk model (an ensemble: not a soft vote, weights that do not
        average, a member that is not a fitted sersk pipeline).

    Examples
    --------
    >>> from sersk import load_model
    >>> model = load_model("model.joblib")  # doctest: +SKIP
    >>> model.predict(["03a01Wa.wav"])  # doctest: +SKIP
    array(['anger'], dtype='<U9')
    """
    import joblib

    name = os.path.expanduser(os.fspath(path))
    if not os.path.exists(name):
        raise FileNotFoundError(f"model file {name!r} does not exist")
    if os.path.isdir(name):
        raise IsADirectoryError(f"model file {name!r} is a folder, not a file")
    if os.path.getsize(name) == 0:
        raise ValueError(f"model file {name!r} is empty (0 bytes); {_WRITTEN_BY}")
    try:
        model = joblib.load(name)
    except PermissionError:
        raise
    except Exception as exc:  # unpickling fails in many ways: EOFError, UnpicklingError, KeyError, ...
        if not _starts_like_joblib(name):  # a text file, audio, ...: the unpickler's error would be noise
            raise ValueError(f"{name!r} is not a sersk model file (not a joblib or pickle file); {_WRITTEN_BY}") from None
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ValueError(f"{name!r} cannot be unpickled ({detail}): {_why_not_unpickled(name, exc)}") from None
    ensemble = sys.modules.get("sklearn.ensemble")  # imported by the unpickling of an ensemble (0.8 s otherwise)
    if ensemble is not None and isinstance(model, ensemble.VotingClassifier):
        _check_seed_average(model, name)
    else:
        _check_pipeline(model, name, "")
    return model


def _why_not_unpickled(name: str, exc: BaseException) -> str:
    """Why a model file that starts like one cannot be unpickled, from the error and the versions it records."""
    saved = _versions_in_file(name)
    change = version_change(saved) if saved else None
    if change:
        return (f"it was saved by {change[0]} (here: {change[1]}), which it may need, or it is truncated or corrupt: "
                "install those versions to load it, or fit it again here")
    if isinstance(exc, (AttributeError, ImportError)):  # a class or module not found: not the file's fault
        return ("it names a class or module that cannot be found here: a step of one's own must be importable where "
                "the model is loaded, and another version of a library (sersk, numpy, imbalanced-learn) may have moved it")
    if saved:
        return f"it is truncated or corrupt (it was saved by the versions of its libraries installed here); {_WRITTEN_BY}"
    return f"it is truncated or corrupt, or needs versions of its libraries that are not installed here; {_WRITTEN_BY}"


class _VersionsFound(Exception):
    """Stops :func:`_versions_in_file`'s reading at the first versions recorded."""


def _versions_in_file(path: str) -> dict[str, str]:
    """The library versions the first sersk estimator of a model file records, read without
    importing or running anything the file names: each class or function stands in as a stub.

    Empty when none are found before reading fails (an lz4 file; a table or list the stubs cannot
    stand for; the raw bytes of an array that joblib writes after its header).
    """
    import pickle

    class Stub:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __setitem__(self, key: Any, value: Any) -> None:  # a dict subclass's items (OrderedDict)
            pass

        def append(self, item: Any) -> None:  # a list subclass's items
            pass

        def extend(self, items: Any) -> None:
            pass

        def __setstate__(self, state: Any) -> None:
            for part in state if isinstance(state, tuple) else (state,):
                versions = recorded_versions(part) if isinstance(part, dict) else {}
                if versions:
                    raise _VersionsFound({str(k): str(v) for k, v in versions.items()})

    class Reader(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> type:
            return Stub

        def persistent_load(self, pid: Any) -> None:
            return None

    try:
        with _open_uncompressed(path) as fh:
            Reader(fh).load()
    except _VersionsFound as found:
        return found.args[0]
    except Exception:  # a file that cannot be read this way: nothing to say about its versions
        pass
    return {}


def _open_uncompressed(path: str) -> IO[bytes]:
    """``path`` opened for reading, decompressed as joblib compresses (zlib, gzip, bz2, xz, lzma)."""
    import importlib

    from joblib.compressor import BinaryZlibFile

    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, module in _COMPRESSED.items():
        if head.startswith(magic):
            return importlib.import_module(module).open(path, "rb")
    if _starts_like_zlib(head):
        return BinaryZlibFile(path, "rb")
    return open(path, "rb")


def _check_pipeline(model: Any, name: str, member: str) -> None:
    """Refuse ``model`` unless it is a fitted sersk pipeline (``member``: where it sits in the file)."""
    from .io import AudioLoader
    from .nn import CNNLSTMClassifier

    kind = type(model).__name__
    if not isinstance(model, Pipeline):
        what = f"{kind} from {type(model).__module__}" if not isinstance(model, (dict, list, tuple)) else kind
        raise ValueError(f"{name!r} holds {member}{_a(what)}, not a sersk model (a pipeline); {_WRITTEN_BY}")
    if not model.steps:
        raise ValueError(f"{name!r} holds {member}{_a(kind)} with no steps, not a sersk model; {_WRITTEN_BY}")
    first, last = model.steps[0][1], model.steps[-1][1]
    if not isinstance(first, AudioLoader) or not isinstance(last, CNNLSTMClassifier):
        steps = " -> ".join(type(step).__name__ for _, step in model.steps)
        raise ValueError(
            f"{name!r} holds {member}{_a(kind)} ({steps}), not a sersk model, which goes from AudioLoader to "
            f"CNNLSTMClassifier; {_WRITTEN_BY}"
        )
    try:
        check_is_fitted(last, "classes_seen_")
    except NotFittedError:
        raise ValueError(f"{name!r} holds {member}{_a(kind)} that was never fitted; {_WRITTEN_BY}") from None
    for step_name, step in model.steps[:-1]:
        try:
            if step not in (None, "passthrough"):
                check_is_fitted(step)
        except NotFittedError:
            raise ValueError(
                f"{name!r} holds {member}{_a(kind)} whose step {step_name!r} was never fitted; {_WRITTEN_BY}"
            ) from None


def fitted_members(model: Any) -> list[tuple[str | None, Any]]:
    """The fitted pipelines a model predicts with: each member of a soft vote with its name, else
    the model itself, named None.

    Parameters
    ----------
    model : Pipeline or VotingClassifier
        A fitted model, as :func:`load_model` returns.

    Returns
    -------
    members : list of (str or None, estimator)
        The fitted members (``estimators_``) of a vote, dropped ones left out, with their names;
        else ``[(None, model)]``.
    """
    if not hasattr(model, "estimators_"):
        return [(None, model)]
    return list(zip(_member_names(model), model.estimators_))


def _member_names(model: "VotingClassifier") -> list[str]:
    """The names of a vote's members that are not dropped, in order (those its ``fit`` fitted)."""
    return [label for label, estimator in model.estimators if estimator != "drop"]


def _check_seed_average(model: "VotingClassifier", name: str) -> None:
    """Refuse a ``VotingClassifier`` unless it averages probabilities of fitted sersk pipelines, with
    weights that average."""
    refit = "fit a VotingClassifier(voting='soft') of sersk pipelines and save it with joblib.dump"
    if model.voting != "soft":
        raise ValueError(f"{name!r} holds a VotingClassifier with voting={model.voting!r}; sersk takes "
                         "voting='soft', whose probabilities are the members' average (set_params(voting='soft') "
                         "on the fitted ensemble, then save it again)")
    try:
        check_is_fitted(model, "estimators_")
    except NotFittedError:
        raise ValueError(f"{name!r} holds a VotingClassifier that was never fitted; {refit}") from None
    if len(_member_names(model)) != len(model.estimators_):  # its members were set after the fit
        raise ValueError(f"{name!r} holds a VotingClassifier of {len(model.estimators_)} fitted members whose "
                         f"estimators name {len(_member_names(model))}: it was changed after fitting; {refit}")
    if model.weights is not None:
        weights = np.asarray(model.weights, dtype=float)
        used = weights[[estimator != "drop" for _, estimator in model.estimators]] if weights.shape == (
            len(model.estimators),) else None
        if used is None or not np.isfinite(used).all() or (used < 0).any() or used.sum() <= 0:
            raise ValueError(f"{name!r} holds a VotingClassifier with weights={model.weights!r}; expected one "
                             "non-negative weight per member, not all zero")
    for label, member in fitted_members(model):
        _check_pipeline(member, name, f"as its member {label!r} ")
