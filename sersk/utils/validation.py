"""Validation shared by every sersk step: ragged waveforms and ragged feature sequences."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence, Sized
from numbers import Integral, Number, Real
from typing import Any, TypeGuard

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils._param_validation import Interval

from ..exceptions import InvalidSignalError
from ._text import count

# scikit-learn's constraint for a worker count as joblib reads it: 0 has no meaning
N_JOBS_CONSTRAINT = [Interval(Integral, None, -1, closed="right"), Interval(Integral, 1, None, closed="left"), None]


def path_column(X: Any) -> Any:
    """The paths of a one-column table (a pandas DataFrame) or of an ``(n, 1)`` array of strings or
    objects (paths, or clips), as one column; anything else as it is. A table of several columns is refused, naming them."""
    if hasattr(X, "columns"):  # its one column, not the column names
        if len(X.columns) != 1:
            raise ValueError(
                f"X is a table of {len(X.columns)} columns ({', '.join(map(str, X.columns))}); give the one holding "
                "the audio paths, such as X['path']"
            )
        return X.iloc[:, 0]
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 1 and X.dtype.kind in "OUS":
        return X[:, 0]  # a column vector of paths
    return X


def check_labels(
    values: Any, name: str, *, what: str = "label", n_clips: int | None = None, mixed_as_text: bool = False
) -> np.ndarray:
    """``values`` as a 1-D array of labels (or speakers) with none missing; else a ValueError naming ``name``.

    A missing value (None, NaN, pandas' NA) would otherwise become a class or speaker of its own, or drop out
    of comparisons, since NaN is not equal to itself. Text mixed with numbers is refused, unless
    ``mixed_as_text`` (speakers): then all are returned as text, as speakers are compared.
    """
    # a list's items as given: np.asarray would turn None or NaN among strings into the text "None", "nan"
    items = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    missing: np.ndarray | list[int]
    if items.ndim != 1:
        raise ValueError(
            f"{name} has shape {items.shape}; expected one {what} per clip, shape ({n_clips or 'n_clips'},)"
        )
    if items.dtype.kind == "f":
        missing = np.flatnonzero(np.isnan(items))
    elif items.dtype.kind == "O":
        missing = [i for i, v in enumerate(items.tolist()) if _is_missing(v)]
    else:
        missing = []
    if len(missing):
        raise ValueError(
            f"{name} has a missing {what} (None, NaN or NA) at position {missing[0]}"
            + (f" ({len(missing)} in all)" if len(missing) > 1 else "")
        )
    if items.dtype.kind == "O" and (mixed := _text_and_number(items.tolist())):
        if mixed_as_text:  # sorted as they are, an int against a str raises
            return np.array([str(v) for v in items.tolist()])
        (text, first_text), (number, first_number) = mixed
        raise ValueError(
            f"{name} mixes text and numbers ({first_text!r} at position {text}, {first_number!r} at position "
            f"{number}); give every {what} as text or every {what} as a number"
        )
    values = np.asarray(values)
    if values.dtype.kind == "O" and len(values) and all(
        isinstance(v, (Number, np.number)) and not isinstance(v, complex) for v in values.tolist()
    ):
        values = np.asarray(values.tolist())  # numbers in an object array (a pandas object column) as numbers
    return values


def _is_missing(value: Any) -> bool:
    """Whether ``value`` is None, a NaN, or pandas' ``NA`` (whose comparisons give ``NA``, which has
    no truth value)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pandas' NA
        return True
    except ArithmeticError:  # a signalling decimal NaN
        return True
    except ValueError:  # an array: not a label, which later checks say
        return False


def _text_and_number(items: list[Any]) -> tuple[tuple[int, Any], tuple[int, Any]] | None:
    """The first text item and the first number (position, plain value) when ``items`` mix both
    (numpy would turn the numbers into text, ``1`` into ``"1"``), else None."""
    text = next((i for i, v in enumerate(items) if isinstance(v, (str, np.str_))), None)
    number = next((i for i, v in enumerate(items) if isinstance(v, (Number, np.number))), None)
    if text is None or number is None:
        return None
    return (text, _plain(items[text])), (number, _plain(items[number]))


def check_classes(y: np.ndarray) -> np.ndarray:
    """The sorted classes of the labels ``y``; a ValueError when they are fewer than two."""
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"y holds a single class ({str(classes[0])!r}); at least two are needed to train a classifier"
            if len(classes) else "y is empty: no labels to train on"
        )
    return classes


def ravel_column_vector(y: Any, stacklevel: int = 3) -> Any:
    """``y`` flattened, with scikit-learn's warning, when it is a column vector (shape (n, 1)); else
    ``y``. ``stacklevel`` is the warning's, counted from this function (3: its caller's caller)."""
    if np.asarray(y).shape[1:] == (1,):
        warnings.warn(  # scikit-learn's wording, which its checks look for
            "A column-vector y was passed when a 1d array was expected; it was flattened to shape (n_samples,)",
            DataConversionWarning,
            stacklevel=stacklevel,
        )
        return np.asarray(y).ravel()
    return y


def is_integer(value: Any) -> TypeGuard[int | np.integer[Any]]:
    """An integer (Python's or numpy's), not a boolean."""
    return isinstance(value, (Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_bool(value: Any, name: str) -> None:
    """Refuse a yes/no option that is not a bool: ``"no"``, being true, meant yes."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r}; expected True or False")


def check_seed(random_state: Any) -> None:
    """Refuse a ``random_state`` numpy cannot seed from, by name, before any work."""
    if not (random_state is None or isinstance(random_state, np.random.RandomState)
            or (is_integer(random_state) and 0 <= random_state < 2**32)):
        raise ValueError(
            f"random_state={random_state!r}; expected an int in [0, 2**32 - 1], a numpy RandomState or None"
        )


def is_real(value: Any) -> bool:
    """A real number (Python's or numpy's), not a boolean."""
    return isinstance(value, (Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def plain_path(path: Any) -> str:
    """A path as a plain ``str``, for messages and keys (numpy's ``str_`` shows as ``np.str_('...')``)."""
    return str(os.fsdecode(path))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, for messages (``'low'``, not ``np.str_('low')``)."""
    return value.item() if isinstance(value, np.generic) else value


def to_object_array(items: Sequence[Any]) -> np.ndarray:
    """Pack items (arrays of different shapes) into a 1-D object array without broadcasting."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def check_collection(X: Any, what: str, error: type[ValueError] = ValueError) -> None:
    """Raise ``error`` when ``X`` is None, a sparse matrix, a 0-d array, one path (str, bytes or
    path-like) or one 1-D numeric array where a collection of ``what`` is expected: a string or a signal would
    otherwise be read as clips of one character or one sample each."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise error(f"expected a list of {what}; sparse matrices are not supported")
    if X is None:
        raise error(f"expected a list of {what}, got None")
    if isinstance(X, (str, bytes, os.PathLike)):
        raise error(f"expected a list of {what}, got a single path {plain_path(X)!r}: wrap it in a list")
    if isinstance(X, np.ndarray) and X.ndim == 0:
        raise error(f"expected a list of {what}, got a 0-d array: wrap its element in a list")
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "biuf" and len(X):
        raise error(
            f"expected a list of {what}, got one 1-D array of {count(len(X), 'value')}: for a single clip, "
            "wrap it in a list"
        )


def _as_sequence(X: Any, what: str) -> Sequence[Any] | np.ndarray:
    check_collection(X, what, InvalidSignalError)
    if isinstance(X, np.ndarray):
        if X.dtype == object:
            return path_column(X)  # a one-column table: one clip per row
        return list(X)  # a numeric array: one clip per row (or per leading index)
    if not hasattr(X, "__len__") or not hasattr(X, "__getitem__"):
        try:
            return list(np.asarray(X))
        except Exception:
            raise InvalidSignalError(f"expected a list of {what}, got {type(X).__name__}") from None
    return X


def clip_name(i: int) -> str:
    return f"clip {i}"


def check_waveform(x: Any, index: int, *, min_samples: int = 1, finite: bool = True) -> np.ndarray:
    """Return clip ``index`` as a contiguous 1-D float32 array, or raise naming the clip and the problem.

    ``finite=False`` leaves NaN and infinite samples to the caller (see :func:`check_finite_samples`).
    """
    name = clip_name(index)
    if not hasattr(x, "__len__") and _is_missing(x):  # a table's empty cell (a scalar): read as a 0-d array below
        raise InvalidSignalError(f"{name} is {x!r}, neither a path nor a waveform (a missing value?)")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged nested lists and the like
        raise InvalidSignalError(f"{name} cannot be read as an array: {exc}") from exc
    if arr.dtype.kind != "f":  # a test of one character: this runs once per clip, augmented copies included
        if arr.dtype.kind == "c":
            raise InvalidSignalError(f"{name} holds complex numbers; expected real samples")
        if arr.dtype.kind in "iu":
            raise InvalidSignalError(
                f"{name} has integer dtype {arr.dtype}; expected floating-point samples in [-1, 1] "
                "(scale PCM by its full range, or decode files with AudioLoader)"
            )
        paths = " (a file's path? AudioLoader decodes files into waveforms)" if arr.dtype.kind in "US" else ""
        raise InvalidSignalError(f"{name} has dtype {arr.dtype}; expected floating-point samples in [-1, 1]{paths}")
    if arr.ndim != 1:
        raise InvalidSignalError(
            f"{name} has shape {arr.shape}; expected a 1-D mono signal (AudioLoader mixes stereo files down to "
            "mono; mix an array down yourself, e.g. x.mean(axis=1))"
        )
    if arr.shape[0] < min_samples:
        if arr.shape[0] == 0:
            raise InvalidSignalError(f"{name} is empty (0 samples)")
        raise InvalidSignalError(f"{name} has {arr.shape[0]} samples; at least {min_samples} are needed")
    arr = _as_float32(arr, name, "sample", "; expected samples in [-1, 1]")
    if finite:
        check_finite_samples(arr, index)
    return arr


def _as_float32(arr: np.ndarray, name: str, noun: str, hint: str = "") -> np.ndarray:
    """``arr`` as a C-contiguous float32 array; raise where a finite value is beyond float32's range
    (the cast would make it infinite)."""
    try:
        with np.errstate(over="raise"):
            return np.ascontiguousarray(arr, dtype=np.float32)
    except FloatingPointError:
        raise InvalidSignalError(
            f"{name} has {noun}s beyond float32's range (largest |{noun}| {np.nanmax(np.abs(arr)):.3g}){hint}"
        ) from None


def check_finite_samples(arr: np.ndarray, index: int) -> None:
    """Raise if clip ``index`` holds a NaN or infinite sample, saying how many."""
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InvalidSignalError(f"{clip_name(index)} contains {bad} NaN or infinite samples")


def check_waveforms(X: Any, *, min_samples: int = 1) -> np.ndarray:
    """Validate a collection of mono waveforms.

    Parameters
    ----------
    X : sequence of array-like of shape (n_samples_i,)
        Clips of possibly different lengths (a list, a 1-D object array or a 2-D float array).
    min_samples : int, default=1
        The shortest clip accepted.

    Returns
    -------
    waveforms : ndarray of shape (n_clips,), dtype=object
        Each element a float32 array of shape (n_samples_i,).
    """
    seq = _as_sequence(X, "waveforms")
    if len(seq) == 0:
        raise InvalidSignalError("no clips given: X is empty")
    return to_object_array([check_waveform(x, i, min_samples=min_samples) for i, x in enumerate(seq)])


def rows_as_sequences(X: Any) -> Any:
    """A 2-D numeric array holds one single-band sequence per row: (n, n_frames) -> (n, 1, n_frames)."""
    if not isinstance(X, np.ndarray) and not hasattr(X, "toarray"):
        try:
            array = np.asarray(X)
        except ValueError:  # ragged: a list of sequences of different lengths
            return X
        if array.dtype != object and array.ndim in (2, 3):
            X = array
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype != object:
        return X[:, None, :]
    return X


def check_sequences(X: Any, *, n_features: int | None = None) -> np.ndarray:
    """Validate feature sequences such as log-mel spectrograms.

    Parameters
    ----------
    X : sequence of array-like of shape (n_features, n_frames_i)
        One 2-D array per clip; ``n_frames_i`` may differ between clips.
    n_features : int, optional
        The number of rows each sequence must have (e.g. the number learned in ``fit``).

    Returns
    -------
    sequences : ndarray of shape (n_clips,), dtype=object
        Each element a C-contiguous float32 array of shape (n_features, n_frames_i).
    """
    seq = _as_sequence(X, "feature sequences")
    if len(seq) == 0:
        raise InvalidSignalError("no sequences given: X is empty")
    out = []
    for i, x in enumerate(seq):
        name = clip_name(i)
        try:
            arr = np.asarray(x)
        except Exception as exc:
            raise InvalidSignalError(f"{name} cannot be read as an array: {exc}") from exc
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            paths = (" (a file's path? features come from AudioLoader then LogMelTransformer, as in make_pipeline)"
                     if arr.dtype.kind in "US" else "")
            raise InvalidSignalError(f"{name} has dtype {arr.dtype}; expected real numbers{paths}")
        if arr.ndim != 2:
            raise InvalidSignalError(
                f"{name} has shape {arr.shape}; expected a 2-D (n_features, n_frames) array such as a log-mel"
            )
        if n_features is None:
            n_features = arr.shape[0]
        if arr.shape[0] != n_features:
            one_clip = (
                " (a 2-D array is read as one single-band clip per row: for one clip of shape (bands, frames), "
                "wrap it in a list)" if arr.shape[0] == 1 else ""
            )
            raise InvalidSignalError(f"{name} has {arr.shape[0]} feature rows; expected {n_features}{one_clip}")
        if arr.shape[1] == 0:
            raise InvalidSignalError(f"{name} has 0 frames")
        arr = _as_float32(arr, name, "value")
        if not np.isfinite(arr).all():
            raise InvalidSignalError(f"{name} contains NaN or infinite values")
        out.append(arr)
    return to_object_array(out)


def check_matches_labels(
    X: Sized, y: Sized | None, *, name: str = "X", noun: str = "sample", plural: str | None = None,
    labels_name: str = "y",
) -> None:
    """Raise a ValueError when ``X`` and ``y`` differ in length, naming them ``name`` and
    ``labels_name`` and counting ``X``'s items as ``noun`` (plural ``plural``, else ``noun`` + "s")."""
    if y is not None and len(X) != len(y):
        raise ValueError(
            f"{name} has {count(len(X), noun, plural)} but {labels_name} has {count(len(y), 'label')}; they must match"
        )


def check_unchanged_since_fit(fitted: dict[str, Any] | None, current: dict[str, Any], fit_did: str) -> None:
    """Raise a ValueError naming each setting of ``current`` that differs from ``fitted`` (the values
    fit ``fit_did`` its work with; None: not recorded, nothing to check)."""
    if fitted is None:
        return
    if changed := {k: v for k, v in current.items() if fitted[k] != v}:
        raise ValueError(
            f"{', '.join(f'{k}={v!r}' for k, v in changed.items())} changed since fit, which {fit_did} with "
            f"{', '.join(f'{k}={fitted[k]!r}' for k in changed)}; call fit again"
        )
