"""The ``sersk`` command: train, predict, evaluate and reproduce the reference protocol.

A thin layer over the public API (:func:`sersk.make_pipeline`, :func:`sersk.predict_files`,
:mod:`sersk.datasets`, :mod:`sersk.model_selection`, :mod:`sersk.plotting`): it reads the command
line and the data, chooses where outputs go and writes them atomically (a temporary file in the
target's folder, then :func:`os.replace`), so an interrupted or failed run never leaves a partial
file and never damages an existing one.

Mistakes in the input (a missing file, a malformed CSV, a file that is not a model) end with one
line ``sersk: error: <message>`` on stderr and exit status 2; Ctrl-C exits with 130.

Examples
--------
.. code-block:: console

    $ sersk train path/to/emodb/wav --out model.joblib --n-augmentations 5
    $ sersk predict model.joblib clip1.wav clip2.wav --json
    $ sersk evaluate model.joblib test.csv --out-dir evaluation
    $ sersk reproduce --quick
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import json
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .utils.files import atomic_output

__all__ = ["main"]

PROG = "sersk"

# Published figures the summaries are printed next to.
REFERENCE_ACCURACY = 63.29  # the reference example, speaker-dependent 70/15/15 split, 3 epochs
PUBLISHED_SPEAKER_INDEPENDENT = (
    ("openSMILE + SVM", "73 %"),
    ("ACRNN", "82.8 %"),
    ("ADRNN", "85.4 %"),
)
PROJECT_BAR = "openSMILE ComParE + linear SVM, LOSO: 80.0 % accuracy / 78.6 % UAR"

# What --quick runs: small enough for a few minutes on a 2-core CPU.
QUICK_N_AUGMENTATIONS = 2
QUICK_EPOCHS = 2
QUICK_LOSO_EPOCHS = 1
QUICK_LOSO_FOLDS = 3

FIGURE_CLIPS = 4  # log-mel spectrograms shown in log_mels.png


class LabelledFiles(NamedTuple):
    """Audio files with their labels (and speakers, when known)."""

    paths: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray | None


# ---- input -------------------------------------------------------------------------------------


def read_dataset(data: str | os.PathLike) -> LabelledFiles:
    """Read a data set given on the command line: a folder of Emo-DB WAVs or a CSV file.

    Parameters
    ----------
    data : str or os.PathLike
        A folder of ``.wav`` files named as Emo-DB names them (``03a01Wa.wav``: label and speaker
        are read from the name; a folder holding ``wav/`` works too, e.g. the Emo-DB download), or
        a CSV file with the header ``path,label`` or ``path,label,speaker``. Relative paths in the
        CSV are resolved against the CSV's folder.

    Returns
    -------
    dataset : LabelledFiles
        ``paths`` (str), ``labels`` (str) and ``speakers`` (str, or None when the CSV has no
        ``speaker`` column), each of shape (n_files,).

    Raises
    ------
    FileNotFoundError
        If ``data`` or a file the CSV names does not exist.
    ValueError
        If the folder holds no WAV files or names that are not Emo-DB names, or the CSV lacks a
        column, has an empty cell or no rows.
    """
    from .datasets import parse_emodb_filename

    root = Path(os.fspath(data))
    if not root.exists():
        raise FileNotFoundError(f"DATA {str(root)!r} does not exist; give a folder of Emo-DB WAVs or a CSV file")
    if root.is_file():
        return _read_csv(root)
    wavs = sorted(p for p in root.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    if not wavs and (root / "wav").is_dir():
        wavs = sorted(p for p in (root / "wav").iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    if not wavs:
        raise ValueError(f"DATA folder {str(root)!r} holds no .wav files (nor a wav/ folder with some)")
    fields = []
    for p in wavs:
        try:
            fields.append(parse_emodb_filename(p.name))
        except ValueError as exc:
            hint = "For other file names, list the files in a CSV with the header path,label"
            raise ValueError(f"{exc}. {hint}") from None
    return LabelledFiles(
        np.array([str(p) for p in wavs]),
        np.array([f["emotion"] for f in fields]),
        np.array([f["speaker"] for f in fields]),
    )


def _read_csv(path: Path) -> LabelledFiles:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [(name or "").strip() for name in (reader.fieldnames or [])]
            missing = [c for c in ("path", "label") if c not in header]
            if missing:
                raise ValueError(
                    f"CSV {str(path)!r} has no {' or '.join(repr(c) for c in missing)} column (header: "
                    f"{','.join(header) or 'empty'}); expected the header path,label or path,label,speaker"
                )
            reader.fieldnames = header
            has_speaker = "speaker" in header
            rows = []
            for row in reader:
                if not any((v or "").strip() for k, v in row.items() if k is not None):
                    continue  # blank line
                values = {k: (row.get(k) or "").strip() for k in ("path", "label", "speaker")}
                for column in ("path", "label", "speaker") if has_speaker else ("path", "label"):
                    if not values[column]:
                        raise ValueError(f"CSV {str(path)!r} line {reader.line_num}: the {column!r} cell is empty")
                rows.append((reader.line_num, values))
    except UnicodeDecodeError as exc:
        raise ValueError(f"CSV {str(path)!r} is not UTF-8 text ({exc}); DATA must be a folder or a CSV") from None
    except csv.Error as exc:
        raise ValueError(f"CSV {str(path)!r} cannot be parsed: {exc}") from None
    if not rows:
        raise ValueError(f"CSV {str(path)!r} lists no files: it has a header but no rows")
    paths = []
    missing_files = []
    for line, values in rows:
        file = Path(values["path"]).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if not file.is_file():
            missing_files.append((line, values["path"], file))
        paths.append(str(file))
    if missing_files:
        line, given, file = missing_files[0]
        more = f" (and {len(missing_files) - 1} more missing files)" if len(missing_files) > 1 else ""
        raise FileNotFoundError(f"CSV {str(path)!r} line {line}: audio file {given!r} not found at {str(file)!r}{more}")
    return LabelledFiles(
        np.array(paths),
        np.array([v["label"] for _, v in rows]),
        np.array([v["speaker"] for _, v in rows]) if has_speaker else None,
    )


def parse_param(text: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE``; the value is a Python literal when it parses as one, else a string.

    Parameters
    ----------
    text : str
        E.g. ``"net__module__filters=(4, 4, 8, 8)"`` or ``"augment__noise_p=0.5"``.

    Returns
    -------
    key : str
    value : object

    Examples
    --------
    >>> parse_param("net__module__hidden_size=8")
    ('net__module__hidden_size', 8)
    >>> parse_param("net__device=cpu")
    ('net__device', 'cpu')
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--param {text!r}: expected KEY=VALUE, e.g. net__module__hidden_size=8")
    raw = raw.strip()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = raw
    return key, value


def _set_params(pipeline: Any, params: Sequence[str]) -> None:
    for text in params:
        key, value = parse_param(text)
        try:
            pipeline.set_params(**{key: value})
        except ValueError as exc:
            if not str(exc).startswith("Invalid parameter"):
                raise
            owner, _, name = key.rpartition("__")
            target = pipeline.get_params(deep=True).get(owner, None) if owner else pipeline
            valid = sorted(target.get_params(deep=False)) if hasattr(target, "get_params") else []
            where = f"step/parameter {owner!r}" if owner else "the pipeline"
            hint = f"; valid: {', '.join(valid)}" if valid else ""
            raise ValueError(f"--param {key}: {name!r} is not a parameter of {where}{hint}") from None


def load_model(path: str | os.PathLike) -> Any:
    """Load a fitted sersk model written by ``sersk train`` (or ``joblib.dump``).

    Loading unpickles the file, which can run code: load only models you trust.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    model : fitted pipeline
        Has ``predict_proba`` and ``classes_``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a joblib/pickle file, is truncated, or holds something that is not a
        fitted classifier.
    """
    import joblib

    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"model file {name!r} does not exist")
    if os.path.isdir(name):
        raise IsADirectoryError(f"model file {name!r} is a folder, not a file")
    try:
        model = joblib.load(name)
    except (PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # unpickling fails in many ways: EOFError, UnpicklingError, KeyError, ...
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ValueError(
            f"{name!r} is not a sersk model file ({detail}); give a file written by 'sersk train'"
        ) from None
    missing = [a for a in ("predict_proba", "classes_") if not _has_attr(model, a)]
    if missing:
        raise ValueError(
            f"{name!r} holds a {type(model).__name__}, not a fitted sersk model (it lacks "
            f"{' and '.join(missing)}); give a file written by 'sersk train'"
        )
    return model


def _has_attr(obj: Any, name: str) -> bool:
    try:
        getattr(obj, name)
    except Exception:  # an unfitted pipeline raises from classes_, not only AttributeError
        return False
    return True


# ---- output ------------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    with atomic_output(path) as fh:
        fh.write((json.dumps(data, indent=2, default=_json_default) + "\n").encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


@contextlib.contextmanager
def _interrupt_guard() -> Iterator[None]:
    """Make Ctrl-C end the command even where a library swallows it.

    skorch stops training quietly on KeyboardInterrupt and returns a partly trained network; the
    command must not save or score that as if it were complete. A SIGINT seen inside the block is
    raised again once the block returns.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    seen = []

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if seen:
        raise KeyboardInterrupt


def _save_figure(fig: Any, path: Path) -> Path:
    from .plotting import save_figure

    return save_figure(fig, path)


def _peak_rss_mib() -> dict[str, float | None]:
    try:
        import resource  # POSIX only
    except ImportError:  # pragma: no cover - Windows
        return {"self": None, "children": None}
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10  # bytes on macOS, KiB on Linux
    return {
        "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1),
        "children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale, 1),
    }


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


# ---- commands ----------------------------------------------------------------------------------


def _pipeline_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    from . import make_pipeline
    from .utils._device import resolve_device

    try:
        resolve_device(args.device)  # fail now, not after decoding and augmenting
    except ValueError as exc:
        raise ValueError(f"--device {args.device}: {exc}") from None
    kwargs = {
        "n_augmentations": args.n_augmentations,
        "max_epochs": args.epochs,
        "device": args.device,
        "n_jobs": args.n_jobs,
        "random_state": args.seed,
        "verbose": 1,
    }
    kwargs.update(overrides)
    pipeline = make_pipeline(**kwargs)
    _set_params(pipeline, args.param or [])
    if any(p.strip().startswith("net__") for p in args.param or []):
        _check_network_params(pipeline[-1])
    return pipeline


def _check_network_params(net: Any) -> None:
    """Build the network once on the CPU, so a misspelt --param fails now, not after augmentation."""
    from sklearn.base import clone

    try:
        clone(net).set_params(device="cpu", verbose=0).initialize()
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"--param: the network cannot be built with these parameters ({exc})") from None


def cmd_train(args: argparse.Namespace) -> int:
    """``sersk train``: fit the recipe's pipeline on DATA and save it to --out."""
    import joblib

    data = read_dataset(args.data)
    pipeline = _pipeline_from_args(
        args,
        batch_size=args.batch_size,
        lr=args.lr,
        padding=args.padding,
        validation_fraction=args.validation_fraction,
    )
    groups = data.speakers if args.validation_fraction is not None and data.speakers is not None else None
    classes = np.unique(data.labels)
    speakers = f", {len(np.unique(data.speakers))} speakers" if data.speakers is not None else ""
    print(f"training on {len(data.paths)} clips, {len(classes)} classes ({', '.join(classes)}){speakers}")
    if args.validation_fraction is not None:
        unit = "speakers" if groups is not None else "clips"
        print(f"validation: {args.validation_fraction:g} of the {unit}, held out before augmentation")
    start = time.perf_counter()
    with atomic_output(args.out) as fh:
        with _interrupt_guard():
            pipeline.fit(data.paths, data.labels, groups=groups)
        joblib.dump(pipeline, fh)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


def _format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    """``sersk predict``: label audio files with a trained model."""
    from . import predict_files

    model = load_model(args.model)
    result = predict_files(
        model, args.files, chunk_size=args.chunk_size, skip_errors=args.skip_errors, verbose=sys.stderr.isatty()
    )
    if args.json:
        print(json.dumps({"predictions": result.to_records(), "errors": result.errors}, indent=2))
    else:
        classes = [str(c) for c in result.classes]
        rows = [
            [p, str(label), *(f"{q:.3f}" for q in proba)]
            for p, label, proba in zip(result.paths, result.labels, result.proba)
        ]
        print(_format_table(["path", "label", *classes], rows))
    for path, message in result.errors.items():
        _err(f"skipped {path}: {message}")
    if result.errors:
        _err(f"{len(result.errors)} of {len(args.files)} files skipped")
        return 1
    return 0


def _metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, recall_score

    present = np.unique(y_true)
    recall = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return {
        "n_files": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uar": float(balanced_accuracy_score(y_true, y_pred)),
        "recall_per_class": {str(c): float(r) for c, r in zip(present, recall)},
        "confusion_matrix": {
            "labels": [str(c) for c in labels],
            "counts": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``sersk evaluate``: score a trained model on labelled DATA; write a confusion matrix."""
    from sklearn.metrics import classification_report

    from . import predict_files
    from .plotting import plot_confusion_matrix

    model = load_model(args.model)
    data = read_dataset(args.data)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out-dir {str(out_dir)!r} is a file, not a folder")
    unknown = np.setdiff1d(data.labels, np.asarray(model.classes_).astype(str))
    if len(unknown):
        _err(f"warning: labels {', '.join(unknown)} in DATA are not among the model's classes; they count as errors")
    result = predict_files(model, data.paths, chunk_size=args.chunk_size, verbose=sys.stderr.isatty())
    y_pred = result.labels.astype(str)
    labels = np.union1d(np.asarray(model.classes_).astype(str), data.labels)
    metrics = _metrics(data.labels, y_pred, labels)
    report = classification_report(data.labels, y_pred, labels=labels, zero_division=0, digits=3)
    print(f"files     {metrics['n_files']}")
    print(f"accuracy  {100 * metrics['accuracy']:.2f} %")
    print(f"UAR       {100 * metrics['uar']:.2f} %  (unweighted average recall = balanced accuracy)")
    print()
    print(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = plot_confusion_matrix(
        data.labels, y_pred, labels=labels,
        title=f"accuracy {100 * metrics['accuracy']:.1f} %, UAR {100 * metrics['uar']:.1f} %",
    )
    png = _save_figure(fig, out_dir / "confusion_matrix.png")
    metrics.update(
        model=str(args.model),
        data=str(args.data),
        classification_report=classification_report(
            data.labels, y_pred, labels=labels, zero_division=0, output_dict=True
        ),
    )
    _write_json(out_dir / "metrics.json", metrics)
    print(f"wrote {png} and {out_dir / 'metrics.json'}")
    return 0


def _history(net: Any) -> list[dict[str, Any]]:
    keys = ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "dur")
    return [{k: row[k] for k in keys if k in row} for row in net.history]


def _data_figures(emodb: Any, train: np.ndarray, out_dir: Path, device: str, seed: int) -> list[Path]:
    """class_distribution.png, waveform.png and log_mels.png, from the corpus and its training part."""
    from . import AudioLoader, LogMelTransformer
    from .plotting import plot_class_distribution, plot_log_mels, plot_waveform

    written = [_save_figure(plot_class_distribution(emodb.target), out_dir / "class_distribution.png")]
    rng = np.random.default_rng(seed)
    emotions = rng.permutation(np.unique(emodb.target[train]))[:FIGURE_CLIPS]
    picks = [int(rng.choice(train[emodb.target[train] == e])) for e in emotions]
    waveforms = AudioLoader().fit_transform(emodb.filenames[picks])
    titles = [f"{Path(emodb.filenames[i]).name} ({emodb.target[i]})" for i in picks]
    written.append(_save_figure(plot_waveform(waveforms[0], title=titles[0]), out_dir / "waveform.png"))
    log_mels = LogMelTransformer(device=device).fit_transform(waveforms)
    written.append(_save_figure(plot_log_mels(log_mels, titles=titles), out_dir / "log_mels.png"))
    return written


def _reproduce_speaker_dependent(args: argparse.Namespace, emodb: Any, out_dir: Path) -> dict[str, Any]:
    from .model_selection import reference_split
    from .plotting import plot_confusion_matrix, plot_training_history

    X, y = emodb.filenames, emodb.target
    split = reference_split(y, random_state=args.seed)
    print(f"reference split (70/15/15 per label, seed {args.seed}): {len(split.train)} training, "
          f"{len(split.validation)} validation, {len(split.test)} test clips")
    _data_figures(emodb, split.train, out_dir, args.device, args.seed)
    pipeline = _pipeline_from_args(args)
    with _interrupt_guard():
        pipeline.fit(X[split.train], y[split.train], validation_data=(X[split.validation], y[split.validation]))
        y_pred = pipeline.predict(X[split.test]).astype(str)
    net = pipeline[-1]
    metrics = _metrics(y[split.test], y_pred, np.asarray(net.classes_).astype(str))
    _save_figure(plot_training_history(net.history), out_dir / "training_history.png")
    _save_figure(
        plot_confusion_matrix(
            y[split.test], y_pred, labels=net.classes_,
            title=f"test: accuracy {100 * metrics['accuracy']:.1f} %, UAR {100 * metrics['uar']:.1f} %",
        ),
        out_dir / "confusion_matrix.png",
    )
    return {
        "protocol": "speaker-dependent: reference_split, 70/15/15 per label at random over files",
        "n_train": len(split.train), "n_validation": len(split.validation), "n_test": len(split.test),
        **metrics,
        "history": _history(net),
        "reference_accuracy": REFERENCE_ACCURACY / 100,
    }


def _reproduce_speaker_independent(args: argparse.Namespace, emodb: Any, out_dir: Path) -> dict[str, Any]:
    from .plotting import plot_confusion_matrix, plot_training_history

    X, y, speakers = emodb.filenames, emodb.target, emodb.speaker
    all_speakers = np.unique(speakers)
    held_out = all_speakers[:QUICK_LOSO_FOLDS] if args.quick else all_speakers
    print(f"leave-one-speaker-out over {len(all_speakers)} speakers; folds for "
          f"{len(held_out)} held-out speaker(s): {', '.join(held_out)}")
    first_train = np.flatnonzero(speakers != held_out[0])
    _data_figures(emodb, first_train, out_dir, args.device, args.seed)
    folds, true_all, pred_all = [], [], []
    for k, speaker in enumerate(held_out, 1):
        train, test = np.flatnonzero(speakers != speaker), np.flatnonzero(speakers == speaker)
        n_train_speakers = len(np.unique(speakers[train]))
        # ceil(fraction * n_groups) = 1: exactly one training speaker validates
        pipeline = _pipeline_from_args(args, validation_fraction=0.5 / n_train_speakers)
        print(f"\nfold {k}/{len(held_out)}: test speaker {speaker} ({len(test)} clips); training on the other "
              f"{n_train_speakers} speakers, one of them held out for validation")
        start = time.perf_counter()
        with _interrupt_guard():
            pipeline.fit(X[train], y[train], groups=speakers[train])
            y_pred = pipeline.predict(X[test]).astype(str)
        net = pipeline[-1]
        fold = {"speaker": str(speaker), "n_train_clips": len(train), **_metrics(y[test], y_pred, np.unique(y))}
        fold.update(history=_history(net), wall_time_s=round(time.perf_counter() - start, 1))
        _save_figure(plot_training_history(net.history), out_dir / f"training_history_speaker{speaker}.png")
        print(f"fold {k}: speaker {speaker}: accuracy {100 * fold['accuracy']:.2f} %, UAR {100 * fold['uar']:.2f} %")
        folds.append(fold)
        true_all.append(y[test])
        pred_all.append(y_pred)
    y_true, y_pred = np.concatenate(true_all), np.concatenate(pred_all)
    pooled = _metrics(y_true, y_pred, np.unique(y))
    _save_figure(
        plot_confusion_matrix(
            y_true, y_pred, labels=np.unique(y),
            title=f"LOSO pooled: accuracy {100 * pooled['accuracy']:.1f} %, UAR {100 * pooled['uar']:.1f} %",
        ),
        out_dir / "confusion_matrix.png",
    )
    return {
        "protocol": "speaker-independent: leave-one-speaker-out (validation on one held-out training speaker)",
        "held_out_speakers": [str(s) for s in held_out],
        "folds_run": f"{len(held_out)} of {len(all_speakers)}",
        **pooled,
        "per_speaker": folds,
        "mean_speaker_accuracy": float(np.mean([f["accuracy"] for f in folds])),
        "mean_speaker_uar": float(np.mean([f["uar"] for f in folds])),
        "published": {name: figure for name, figure in PUBLISHED_SPEAKER_INDEPENDENT},
        "project_bar": PROJECT_BAR,
    }


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``sersk reproduce``: the reference protocol on Emo-DB, end to end, with figures."""
    from . import __version__, _recipe
    from .datasets import fetch_emodb
    from .utils._device import resolve_device

    start = time.perf_counter()
    if args.quick:
        default_augmentations = QUICK_N_AUGMENTATIONS
        default_epochs = QUICK_LOSO_EPOCHS if args.speaker_independent else QUICK_EPOCHS
    else:
        default_augmentations, default_epochs = _recipe.N_AUGMENTATIONS, _recipe.MAX_EPOCHS
    if args.n_augmentations is None:
        args.n_augmentations = default_augmentations
    if args.epochs is None:
        args.epochs = default_epochs
    device = resolve_device(args.device)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out-dir {str(out_dir)!r} is a file, not a folder")
    emodb = fetch_emodb(args.data_home, download_if_missing=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    quick = " (QUICK: a smoke run, not comparable to published figures)" if args.quick else ""
    print(f"Emo-DB: {len(emodb.filenames)} clips, {len(np.unique(emodb.speaker))} speakers; "
          f"{args.n_augmentations} augmentations per training clip, {args.epochs} epoch(s), device {device}{quick}")
    if args.speaker_independent:
        results = _reproduce_speaker_independent(args, emodb, out_dir)
    else:
        results = _reproduce_speaker_dependent(args, emodb, out_dir)
    wall = time.perf_counter() - start
    results = {
        "command": "sersk reproduce" + (" --speaker-independent" if args.speaker_independent else ""),
        "quick": bool(args.quick),
        "seed": args.seed,
        "n_augmentations": args.n_augmentations,
        "epochs": args.epochs,
        "params": dict(parse_param(p) for p in args.param or []),
        "device": device,
        **results,
        "wall_time_s": round(wall, 1),
        "peak_rss_mib": _peak_rss_mib(),
        "versions": {"sersk": __version__, "python": platform.python_version()},
    }
    _write_json(out_dir / "results.json", results)
    print()
    print(_summary(results, out_dir))
    return 0


def _summary(results: dict[str, Any], out_dir: Path) -> str:
    pct = lambda v: f"{100 * v:6.2f} %"  # noqa: E731
    setting = f"{results['n_augmentations']} augmentations, {results['epochs']} epoch(s), seed {results['seed']}"
    if results["quick"]:
        setting += ", QUICK run"
    lines = ["=" * 78]
    if "per_speaker" in results:
        lines.append(f"Speaker-independent (leave-one-speaker-out), {setting}")
        if results["quick"]:
            speakers = ", ".join(results["held_out_speakers"])
            lines.append(f"  folds run: {results['folds_run']} (held-out speakers {speakers})")
        lines.append("  speaker  clips  accuracy       UAR")
        for fold in results["per_speaker"]:
            lines.append(f"  {fold['speaker']:>7}  {fold['n_files']:5d}  {pct(fold['accuracy'])}  {pct(fold['uar'])}")
        lines.append(f"  pooled   {results['n_files']:5d}  {pct(results['accuracy'])}  {pct(results['uar'])}")
        published = ", ".join(f"{n} {f}" for n, f in PUBLISHED_SPEAKER_INDEPENDENT)
        lines.append(f"  published speaker-independent: {published}")
        lines.append(f"  this project's bar: {PROJECT_BAR}")
    else:
        lines.append(f"Speaker-dependent reference protocol (70/15/15 per label), {setting}")
        lines.append(f"  clips: {results['n_train']} training / {results['n_validation']} validation / "
                     f"{results['n_test']} test")
        lines.append(f"  test accuracy {pct(results['accuracy'])}   (reference: {REFERENCE_ACCURACY:.2f} %, "
                     f"75 augmentations, 3 epochs)")
        lines.append(f"  test UAR      {pct(results['uar'])}")
    if results["quick"]:
        lines.append("  QUICK run: fewer augmentations/epochs (and folds) than the recipe; a smoke test, "
                     "not a measurement")
    rss = results["peak_rss_mib"]
    peak = "unknown" if rss["self"] is None else f"{rss['self']:.0f} MiB"
    if rss["children"]:
        peak += f" (child processes {rss['children']:.0f} MiB)"
    lines.append(f"  wall time {results['wall_time_s']:.1f} s; peak RSS {peak}")
    lines.append(f"  outputs: {out_dir}/ (results.json, *.png)")
    lines.append("=" * 78)
    return "\n".join(lines)


# ---- command line ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with every error as one line ``sersk: error: ...`` after the usage, as usual."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        see = f" (see '{self.prog} --help')"
        self.exit(2, f"{PROG}: error: {' '.join(message.split())}{see}\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text}")
    return value


def _add_training_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    p.add_argument("--n-augmentations", type=_positive_int, default=75 if defaults else None, metavar="N",
                   help="augmented copies per training clip (recipe: 75)")
    p.add_argument("--epochs", type=_positive_int, default=3 if defaults else None, metavar="N",
                   help="training epochs (recipe: 3)")
    p.add_argument("--device", default="auto", metavar="{auto,cpu,cuda}",
                   help="where features and the network run (default: auto, CUDA when available)")
    p.add_argument("--seed", type=int, default=0, help="random_state of augmentation, network and splits (default: 0)")
    p.add_argument("--n-jobs", type=int, default=None, metavar="N", help="workers for decoding and augmentation")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="set any pipeline parameter, e.g. net__module__hidden_size=8 or augment__noise_p=0.5 "
                        "(VALUE is read as a Python literal, else as a string); repeatable")


def build_parser() -> argparse.ArgumentParser:
    """The ``sersk`` argument parser, with its four subcommands.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from . import __version__

    parser = _Parser(prog=PROG, description="Speech emotion recognition on Emo-DB with the 2-D CNN-LSTM recipe.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    data_help = ("a folder of WAVs with Emo-DB names (e.g. 03a01Wa.wav; labels and speakers are read from the "
                 "names) or a CSV file with the header path,label[,speaker] (relative paths are relative to the CSV)")

    p = sub.add_parser("train", help="train the CNN-LSTM pipeline and save it",
                       description="Train the recipe's pipeline (load -> augment -> log-mel -> CNN-LSTM) on DATA.")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("--out", required=True, metavar="MODEL", help="where to save the fitted model (joblib), atomically")
    _add_training_options(p, defaults=True)
    p.add_argument("--batch-size", type=_positive_int, default=32, metavar="N", help="mini-batch size (recipe: 32)")
    p.add_argument("--lr", type=float, default=0.005, help="Adam learning rate (recipe: 0.005)")
    p.add_argument("--padding", choices=("masked", "reference"), default="masked",
                   help="batch padding: masked (batch-independent predictions) or the reference's unmasked zeros")
    p.add_argument("--validation-fraction", type=_fraction, default=None, metavar="F",
                   help="hold out this fraction of the speakers (of the clips, when speakers are unknown) "
                        "before augmentation, for per-epoch validation")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="predict the emotion of audio files",
                       description="Predict the emotion of audio files with a model saved by 'sersk train'. "
                                   "Exit status 1 when a file was skipped. Load only models you trust.")
    p.add_argument("model", metavar="MODEL", help="a model file written by 'sersk train'")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument("--json", action="store_true", help="print JSON: {'predictions': [...], 'errors': {...}}")
    p.add_argument("--skip-errors", action="store_true",
                   help="skip files that cannot be read (reported on stderr) instead of stopping")
    p.add_argument("--chunk-size", type=_positive_int, default=256, metavar="N", help="files decoded at a time")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score a model on labelled data",
                       description="Accuracy, unweighted average recall and a classification report of MODEL "
                                   "on DATA; writes confusion_matrix.png and metrics.json.")
    p.add_argument("model", metavar="MODEL", help="a model file written by 'sersk train'")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("--out-dir", default="sersk-evaluate", metavar="DIR", help="output folder (default: sersk-evaluate)")
    p.add_argument("--chunk-size", type=_positive_int, default=256, metavar="N", help="files decoded at a time")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reproduce", help="the reference protocol on Emo-DB, end to end",
                       description="Train and test on Emo-DB as the reference does (70/15/15 per label), or "
                                   "leave-one-speaker-out with --speaker-independent; writes figures and "
                                   "results.json. Downloads Emo-DB when it is missing.")
    p.add_argument("--speaker-independent", action="store_true", help="leave-one-speaker-out over the 10 speakers")
    p.add_argument("--quick", action="store_true",
                   help=f"a small run for a few minutes on a CPU: {QUICK_N_AUGMENTATIONS} augmentations, "
                        f"{QUICK_EPOCHS} epochs ({QUICK_LOSO_EPOCHS} epoch and {QUICK_LOSO_FOLDS} folds with "
                        "--speaker-independent), unless given")
    p.add_argument("--out-dir", default="outputs/reproduce", metavar="DIR",
                   help="output folder (default: outputs/reproduce)")
    p.add_argument("--data-home", default=None, metavar="DIR",
                   help="folder holding Emo-DB's wav/ (default: $SERSK_DATA, else ~/sersk_data)")
    _add_training_options(p, defaults=False)
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sersk`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        0 on success; 1 when ``predict`` skipped files; 2 on a usage or input error (the message
        is printed as ``sersk: error: ...``, without a traceback); 130 on Ctrl-C.

    Examples
    --------
    >>> main(["predict", "model.joblib", "clip.wav"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # FileNotFoundError, ConnectionError, ... are OSErrors
        _err(f"error: {' '.join(str(exc).split()) or type(exc).__name__}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
