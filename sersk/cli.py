"""The ``sersk`` command: train, predict, evaluate and reproduce the reference protocol.

Argument parsing and printing over the public API: each subcommand checks its arguments, calls
[`load_corpus`][sersk.datasets.load_corpus], [`fetch_emodb`][sersk.datasets.fetch_emodb],
[`make_pipeline`][sersk.pipeline.make_pipeline], [`load_model`][sersk.persistence.load_model],
[`predict_files`][sersk.batch.predict_files] or a function of [`sersk.evaluation`][sersk.evaluation],
and prints the result. Files are written atomically (a temporary file in the target's folder, then
moved into place), so an interrupted or failed run never leaves a partial file and never damages
an existing one.

Mistakes in the input (a missing file, a malformed CSV, a file that is not a model) end with one
line ``sersk: error: <message>`` on stderr and exit status 2; Ctrl-C exits with 130, SIGTERM with 143.

Examples
--------
```console
$ sersk train path/to/emodb/wav --out model.joblib --n-augmentations 5
$ sersk predict model.joblib clip1.wav clips/ --json
$ sersk evaluate model.joblib test.csv --out-dir evaluation
$ sersk reproduce --quick
```
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import errno
import json
import os
import platform
import shlex
import signal
import sys
import threading
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import is_out_of_memory
from .utils._terminal import on_terminal
from .utils._text import count, printable, repeated
from .utils.files import atomic_output, check_replaceable, check_writable_folder, file_identity

__all__ = ["build_parser", "main", "parse_param"]

PROG = "sersk"

# What --quick runs: a smoke run of the whole protocol, far smaller than the recipe.
PRESET_NAMES = ("reference", "tuned")  # sersk.pipeline.PRESETS, named here so that --help does not import torch
QUICK_N_AUGMENTATIONS = 2
QUICK_EPOCHS = 2
QUICK_LOSO_EPOCHS = 1
QUICK_LOSO_FOLDS = 3


# ---- arguments ---------------------------------------------------------------------------------


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
    """Apply ``--param KEY=VALUE`` options; an unknown key is named, with the closest valid ones."""
    for text in params:
        key, value = parse_param(text)
        try:
            pipeline.set_params(**{key: value})
        except ValueError as exc:
            if not str(exc).startswith("Invalid parameter"):
                raise
            owner, _, name = key.rpartition("__")
            target = pipeline.get_params(deep=True).get(owner) if owner else pipeline
            if not hasattr(target, "get_params"):
                raise ValueError(
                    f"--param {key}: {owner!r} is not a step of the pipeline or one of its estimators (its steps: "
                    f"{', '.join(step for step, _ in pipeline.steps)}){_presets_with_step(owner)}"
                ) from None
            valid = sorted(p for p in target.get_params(deep=False) if not p.startswith("_"))
            close = [f"{owner}__{c}" if owner else c for c in difflib.get_close_matches(name, valid, n=3)]
            if not owner:  # a step's parameter given without the step's name
                close += [f"{step}__{name}" for step, est in pipeline.steps if name in _param_names(est)]
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            where = f"{owner!r} ({type(target).__name__})" if owner else "the pipeline"
            steps = "" if owner else (
                f" (a step's parameters start with its name: {', '.join(f'{step}__' for step, _ in pipeline.steps)})"
            )
            raise ValueError(
                f"--param {key}: {name!r} is not a parameter of {where}.{hint} Valid: {', '.join(valid)}{steps}."
            ) from None


def _presets_with_step(name: str) -> str:
    """Which presets' pipelines have a step ``name``, as a hint ("; --preset tuned has it"), or "";
    for the augment step, which ``--n-augmentations`` adds or leaves out, that option."""
    from .pipeline import make_pipeline

    if name == "augment":  # the stored copies' step, which --n-augmentations adds or leaves out
        return "; --n-augmentations N (1 or more) adds it"
    having = [preset for preset in PRESET_NAMES if name in dict(make_pipeline(preset).steps)]
    return f"; --preset {' or '.join(having)} has it" if having else ""


def _param_names(estimator: Any) -> list[str]:
    return list(estimator.get_params(deep=False)) if hasattr(estimator, "get_params") else []


def _steps_taking(param: str, steps: list[tuple[str, Any]]) -> dict[str, Any]:
    """The steps (name -> step) that take the parameter ``param``."""
    return {name: step for name, step in steps if param in _param_names(step)}


def _arg_type(convert: Callable[[str], Any], accepts: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: the text converted by ``convert`` if ``accepts`` takes it; else an error
    saying what was ``expected``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


_positive_int = _arg_type(int, lambda value: value >= 1, "a positive integer")
_non_negative_int = _arg_type(int, lambda value: value >= 0, "an integer >= 0")
_seed = _arg_type(int, lambda value: 0 <= value < 2**32, "an integer in [0, 2**32) (numpy's seeds)")
_n_jobs = _arg_type(int, lambda value: value != 0, "a number of workers, 1 or more (-1 for all cores)")
_positive_float = _arg_type(float, lambda value: 0 < value < np.inf, "a positive number")
_fraction = _arg_type(float, lambda value: 0 < value < 1, "a fraction strictly between 0 and 1")


def _device(text: str) -> str:
    from .utils._device import resolve_device

    try:
        resolve_device(text)  # fail now, not after decoding and augmenting
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _run_on(model: Any, device: str | None, model_file: str) -> None:
    """``--device``: the steps of the model's pipelines (an ensemble's members) that take a device run
    on ``device``; without it, each step's saved device is checked here, before any file is read."""
    from .persistence import fitted_members
    from .utils._device import resolve_device

    for member, pipeline in fitted_members(model):
        devices = _steps_taking("device", pipeline.steps)
        if device is not None:
            pipeline.set_params(**{f"{name}__device": device for name in devices})
            continue
        for name, step in devices.items():
            try:
                resolve_device(step.device)
            except ValueError as exc:  # "device='cuda' but CUDA is not available here; use device=..."
                where = f"step {name!r}" if member is None else f"member {member!r}'s step {name!r}"
                text = str(exc)
                if " but " in text:
                    reason = text.split(" but ", 1)[1].split("; use ", 1)[0]
                    message = f"{model_file!r} runs its {where} on device={str(step.device)!r}, and {reason}"
                else:
                    message = f"{model_file!r} cannot run its {where} here ({text})"
                raise ValueError(f"{message}: add --device auto") from None


# the files evaluate and reproduce write into --out-dir (the figures' names: sersk.evaluation)
_EVALUATE_OUTPUTS = ("metrics.json", "confusion_matrix.png")
_REPRODUCE_OUTPUTS = ("results.json", "class_distribution.png", "waveform.png", "log_mels.png", "confusion_matrix.png")


def _out_dir(path: str, outputs: Iterable[str] = ()) -> Path:
    """``--out-dir``, checked writable before any work whose results it will hold, and without a
    read-only file among ``outputs`` (the names this run will write), which the run would be refused
    to replace at its end."""
    out_dir = Path(path)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out-dir {str(out_dir)!r} is a file, not a folder")
    _check_writable(out_dir, "--out-dir")
    _check_outputs_replaceable(out_dir, outputs)
    return out_dir


def _check_outputs_replaceable(out_dir: Path, outputs: Iterable[str]) -> None:
    """Refuse, naming ``--out-dir``, a read-only file among ``outputs`` in ``out_dir``."""
    with _naming("--out-dir"):
        for name in sorted(set(outputs)):
            check_replaceable(out_dir / name)


# ---- output ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _outputs_together(out_dir: Path) -> Iterator[Path]:
    """A hidden folder in ``out_dir`` for a run's files; once the block ends without an error, each
    is moved into ``out_dir`` (a rename, over the last run's), so that a run cut short (an error,
    Ctrl-C, a full disk) leaves the last run's set as it was, not this run's figures beside the last
    run's scores; none is moved if one would replace a read-only file. The folder is removed after,
    whatever happened."""
    import shutil
    import tempfile

    made = not out_dir.exists()  # a folder this run makes is removed again if the run fails
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".sersk-run-", dir=out_dir))
    try:
        yield staged
        files = sorted(staged.iterdir())
        for file in files:  # all or none: a read-only file of the last run's is kept, as a save keeps it
            check_replaceable(out_dir / file.name)
        for file in files:
            os.replace(file, out_dir / file.name)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    shutil.rmtree(staged, ignore_errors=True)


def _write_json(path: Path, data: Any) -> None:
    with atomic_output(path) as fh:
        fh.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))


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


class _Terminated(BaseException):
    """SIGTERM, raised where the command is, so that what it was writing is removed on the way out."""


@contextlib.contextmanager
def _threads_within_the_cpu_quota() -> Iterator[None]:
    """Within the block, torch runs at most as many threads as the CPUs this process may use: a
    container's CPU quota, which torch does not read (on a 64-core host allowing 2 CPUs it ran 64
    threads), and the affinity; unless ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` says how many.
    Set back after: ``main`` may run inside a host process."""
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        yield
        return
    import torch
    from joblib import cpu_count

    before = torch.get_num_threads()
    allowed = max(1, cpu_count())  # loky's count: the quota, the affinity and the machine's cores
    if before > allowed:
        torch.set_num_threads(allowed)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, ``timeout``, a job scheduler) raises :class:`_Terminated`.

    Its default action ends the process at once, leaving a half-written output's temporary file.
    A handler set by the caller (or outside the main thread, where none can be set) is left alone.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _unencodable_characters_escaped() -> Iterator[None]:
    """Within the block, stdout and stderr write a character their encoding lacks as an escape (``\\u0433``).

    Output redirected to a file or a pipe where the locale is not UTF-8 (Windows' ANSI code page)
    failed on a path or label outside it: the table ended in an encoding error. Python's stderr
    escapes already; a stream set to another error handler by the caller is left alone. The
    setting is the process's: another thread's output is escaped too while ``main`` runs.
    """
    changed = [stream for stream in (sys.stdout, sys.stderr)
               if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure")]
    for stream in changed:
        stream.reconfigure(errors="backslashreplace")
    try:
        yield
    finally:
        for stream in changed:
            with contextlib.suppress(OSError, ValueError):  # closed, or a pipe whose reader is gone
                stream.reconfigure(errors="strict")


@contextlib.contextmanager
def _warnings_printable() -> Iterator[None]:
    """Within the block, a warning's message is written with its control characters escaped, as the
    command's own messages are (matplotlib's "Glyph 27 (\\x1b) missing from font" put a label's
    escape sequence on the terminal). The setting is the process's, as Python's is."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        stream = sys.stderr if file is None else file
        if stream is not None:  # pythonw: nowhere to write
            with contextlib.suppress(OSError):
                stream.write(warnings.formatwarning(printable(str(message)), category, filename, lineno, line))

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _stdout_is_gone() -> bool:
    """Whether stdout can no longer be written: its reader stopped (Windows reports that as EINVAL
    when the output still held is flushed again)."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        return exc.errno in (errno.EINVAL, errno.EPIPE)
    except (ValueError, AttributeError):  # closed, or None (pythonw): not a closed pipe
        return False
    return False


def _reader_gone() -> int:
    """Exit status 141 after the reader of the output stopped early (``| head``): not the user's error."""
    with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141  # 128 + SIGPIPE (13), as a shell reports it; Windows has no signal.SIGPIPE


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
    print(f"{PROG}: {printable(message)}", file=sys.stderr)


def _interval(bounds: list[float]) -> str:
    """A 95 % interval of a score, as printed: ``95 % interval 70.9-87.5 %``."""
    return f"95 % interval {100 * bounds[0]:.1f}-{100 * bounds[1]:.1f} %"


def _format_table(header: list[str], rows: list[list[str]]) -> str:
    header, rows = [printable(c) for c in header], [[printable(c) for c in row] for row in rows]
    widths = [max(map(_columns, [h, *(r[i] for r in rows)])) for i, h in enumerate(header)]
    lines = []
    for row in [header, *rows]:
        pads = [" " * (w - _columns(c)) for c, w in zip(row, widths)]
        cells = [c + pad if i < 2 else pad + c for i, (c, pad) in enumerate(zip(row, pads))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _columns(text: str) -> int:
    """The columns ``text`` takes in a terminal: two for a wide character (Chinese, Japanese, Korean),
    none for a combining mark (the accents of a decomposed name, as macOS writes them) or a format
    character (a zero-width joiner)."""
    return sum(
        0 if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf")
        else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


# ---- commands ----------------------------------------------------------------------------------


def _pipeline_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    from .pipeline import make_pipeline

    kwargs = {
        "preset": args.preset,
        "n_augmentations": args.n_augmentations,
        "max_epochs": args.epochs,
        "device": args.device,
        "n_jobs": args.n_jobs,
        "random_state": args.seed,
        "verbose": 1,
        **overrides,
    }
    pipeline = make_pipeline(**kwargs)
    _set_params(pipeline, args.param)
    pipeline.check_speaker_scope_order()  # refused here, before any work
    if any(p.strip().startswith("net__") for p in args.param):
        _check_network_params(pipeline[-1])
    return pipeline


def _check_network_params(net: Any) -> None:
    """Build the network once on the CPU, so a misspelt --param fails now, not after augmentation;
    torch's global generator, which the weights' initialisation draws from, is left as it was."""
    from sklearn.base import clone

    try:
        clone(net).set_params(device="cpu", verbose=0).initialize()  # which leaves the generator as it was
    except (TypeError, ValueError, AttributeError, MemoryError, RuntimeError) as exc:  # a network too large, too
        if isinstance(exc, RuntimeError) and not is_out_of_memory(exc):
            raise
        raise ValueError(f"--param: the network cannot be built with these parameters ({_abridged(exc)})") from None


@contextlib.contextmanager
def _skip_errors_hint(skip_errors: bool, what: str, missing: type[OSError] = FileNotFoundError) -> Iterator[None]:
    """Within the block, a file's error (unreadable, too short, ``missing``: a missing file by
    default, not an output that cannot be written) says what ``--skip-errors`` does, unless it was
    given: then the error got past the files' check (a later step's limit), where it cannot help."""
    from .exceptions import AudioFileError, InvalidSignalError

    try:
        yield
    except (AudioFileError, InvalidSignalError, missing) as exc:
        names_no_file = isinstance(exc, OSError) and exc.errno is not None and exc.filename is None
        if skip_errors or names_no_file:  # a system error of no file (no temporary folder): not the data's
            raise
        raise type(exc)(f"{exc} (--skip-errors {what})") from exc


@contextlib.contextmanager
def _naming(option: str) -> Iterator[None]:
    """An ``OSError`` raised in the block, its message led by ``option`` (its errno kept: a full disk
    is the machine's limit, exit status 71)."""
    try:
        yield
    except OSError as exc:
        raise type(exc)(exc.errno, f"{option}: {exc.strerror}") from None


def _check_writable(folder: Path, option: str) -> None:
    """Refuse, naming ``option``, a folder where the command could not write its output."""
    with _naming(option):
        check_writable_folder(folder)


def _check_out_file(path: str) -> None:
    """``--out``, checked writable before the training whose model it will hold."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"--out {path!r} is a folder; give a file name to write to")
    with _naming("--out"):
        check_replaceable(target)
    _check_writable(target.parent, "--out")


def _check_out_not_an_input(path: str, data: str, filenames: Iterable[str]) -> None:
    """Refuse an ``--out`` that is DATA or one of its files, which the model would replace (by any
    name: ``~``, a hard link, another case on macOS)."""
    out = Path(path).expanduser()
    if not out.is_file():  # a new file cannot be an input
        return
    identity = file_identity(out)
    if identity == file_identity(Path(data).expanduser()):
        raise ValueError(f"--out {path!r} is DATA: the model would replace it; give another file name")
    for name in filenames:
        with contextlib.suppress(OSError):  # a listed file that is missing or unreadable is not --out
            if file_identity(Path(name)) == identity:
                raise ValueError(f"--out {path!r} is one of the files DATA lists ({name}): the model would replace "
                                 "it; give another file name")


def _check_temporary_folder() -> None:
    """Stop before any work where no temporary folder can be written: torch's optimizer asks for one
    (importing torch._dynamo), so training failed only after the decoding and augmentation."""
    import tempfile

    try:
        tempfile.gettempdir()
    except FileNotFoundError as exc:
        raise OSError(f"{exc.strerror}: set TMPDIR to a folder you can write to") from None


def cmd_train(args: argparse.Namespace) -> int:
    """``sersk train``: fit a preset's pipeline on DATA and save it to --out."""
    import joblib

    from .datasets import load_corpus
    from .pipeline import speaker_scoped_steps

    _check_temporary_folder()
    _check_out_file(args.out)
    data = load_corpus(args.data)
    _check_out_not_an_input(args.out, args.data, data.filenames)
    pipeline = _pipeline_from_args(
        args, batch_size=args.batch_size, lr=args.lr, padding=args.padding,
        validation_fraction=args.validation_fraction,
    )
    skipped: dict[str, str] = {}
    if args.skip_errors:
        print(f"reading the {count(len(data.filenames), 'file')} once, to leave out those that cannot be used")
        skipped = _unreadable(data.filenames, pipeline.named_steps.get("load"))
    if skipped:
        keep = np.array([path not in skipped for path in data.filenames])
        for path, message in skipped.items():
            _err(f"skipped {path}: {message}")
        if lost := sorted(set(data.target) - set(data.target[keep])):
            _err(f"warning: every clip labelled {', '.join(repr(str(c)) for c in lost)} was skipped: the model has no "
                 "such class")
        data.update(filenames=data.filenames[keep], target=data.target[keep], target_names=np.unique(data.target[keep]),
                    speaker=None if data.speaker is None else data.speaker[keep],
                    text=None if data.get("text") is None else data.text[keep])
        if not len(data.filenames):
            raise ValueError(f"none of the {count(len(skipped), 'file')} of DATA {args.data!r} could be read")
    classes = data.target_names
    if len(classes) < 2:
        left = " once the skipped files are left out" if skipped else ""
        raise ValueError(f"DATA {args.data!r} holds a single label ({classes[0]}){left}; training needs at least two")
    # the speakers, for a speaker-disjoint validation part and for a step such as scope='speaker'
    uses_speakers = args.validation_fraction is not None or pipeline.steps_taking_groups()
    groups = data.speaker if uses_speakers else None
    if data.speaker is None and speaker_scoped_steps(pipeline):  # fit's own error would give Python advice
        raise ValueError(
            f"scope='speaker' needs each clip's speaker, and DATA {args.data!r} gives none: use Emo-DB's file names "
            "or a CSV with a speaker column"
        )
    speakers = "" if data.speaker is None else f", {count(len(np.unique(data.speaker)), 'speaker')}"
    held_out = " (less those held out to validate)" if args.validation_fraction is not None else ""
    print(f"training on {count(len(data.filenames), 'clip')}{held_out}, {len(classes)} classes "
          f"({printable(', '.join(classes))}){speakers}")
    if same := [c for c in classes if sum(c.casefold() == other.casefold() for other in classes) > 1]:
        _err(f"warning: labels that differ only in case are separate classes: {', '.join(same)}")
    params = pipeline.get_params()
    print(f"preset {args.preset}: {_setting(params)}, device {_device_of(params)}")
    if args.validation_fraction is not None:
        unit = "speakers" if groups is not None else "clips"
        print(f"validation: {args.validation_fraction:g} of the {unit} (rounded up), held out before augmentation")
    start = time.perf_counter()
    with _interrupt_guard():
        with _skip_errors_hint(args.skip_errors, "trains on the other files"):
            pipeline.fit(data.filenames, data.target, groups=groups)
    if len(held := pipeline.validation_indices_):
        held_speakers = "" if groups is None else f" of {count(len(np.unique(groups[held])), 'speaker')}"
        print(f"validated on {count(len(held), 'clip')}{held_speakers}")
    # --device chose where to train; the saved model picks its device where it is loaded. The
    # progress shown while training was this run's: the saved model predicts without bars of its
    # own (predict_files, and sersk predict, show one for the whole list)
    pipeline.set_params(
        verbose=False,
        **{f"{name}__device": "auto" for name in _steps_taking("device", pipeline.steps)},
        **{f"{name}__verbose": False for name in _steps_taking("verbose", pipeline.steps[:-1])},
    )
    with atomic_output(args.out) as fh:  # opened once trained: a run killed before leaves no temporary file
        joblib.dump(pipeline, fh)
    print(f"wrote {args.out} (trained and saved in {time.perf_counter() - start:.1f} s)")
    if skipped:
        _err(f"{count(len(skipped), 'file')} of {len(data.filenames) + len(skipped)} skipped; trained on the others")
        return 1
    return 0


def _unreadable(files: Sequence[str], loader: Any) -> dict[str, str]:
    """The files the pipeline's ``loader`` step cannot use (unreadable, too short, ...), with its message."""
    from sklearn.base import clone

    from .exceptions import AudioFileError, InvalidSignalError
    from .io import AudioLoader

    reader = clone(loader).set_params(n_jobs=1, verbose=False) if isinstance(loader, AudioLoader) else AudioLoader()
    errors = {}
    for path in files:
        try:
            reader.fit_transform([path])
        except (AudioFileError, InvalidSignalError, OSError) as exc:
            errors[path] = str(exc)
    return errors


def cmd_predict(args: argparse.Namespace) -> int:
    """``sersk predict``: label audio files (and every audio file of a folder) with a trained model."""
    from .batch import predict_files, standardises_speakers
    from .datasets import find_audio_files
    from .io import _missing_audio_file
    from .persistence import load_model

    if tables := [f for f in args.files if f.lower().endswith(".csv")]:
        raise ValueError(
            f"{tables[0]!r} is a CSV: predict takes audio files or folders of them (a labelled CSV is scored by "
            f"'sersk evaluate MODEL {tables[0]}')"
        )
    files = find_audio_files(args.files)
    if not args.skip_errors:
        for file in files:
            if not os.path.exists(file):
                raise FileNotFoundError(f"{_missing_audio_file(file)} (--skip-errors skips such files)")
    model = load_model(args.model)
    _run_on(model, args.device, args.model)
    speakers = [os.path.dirname(os.path.abspath(file)) for file in files] if args.speaker_per_folder else None
    if standardises_speakers(model) and speakers is None:
        _err("note: this model standardises each speaker with their own statistics (scope='speaker'): the files "
             "given are standardised together, as one speaker's (--speaker-per-folder takes each folder's files "
             "as one speaker's)")
    with _skip_errors_hint(args.skip_errors, "skips such files", OSError):  # predicting writes no file
        result = predict_files(
            model, files, speakers=speakers, chunk_size=args.chunk_size, skip_errors=args.skip_errors,
            verbose=on_terminal(sys.stderr),
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
    if result.errors:  # a file named twice is skipped twice, with one entry in errors
        _err(f"{len(files) - len(result.paths)} of {count(len(files), 'file')} skipped")
        return 1
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``sersk evaluate``: score a trained model on labelled DATA; write a confusion matrix."""
    from sklearn.metrics import classification_report

    from .batch import standardises_speakers
    from .datasets import load_corpus
    from .evaluation import evaluate_model
    from .persistence import load_model

    data = load_corpus(args.data)
    out_dir = _out_dir(args.out_dir, _EVALUATE_OUTPUTS)
    model = load_model(args.model)
    _run_on(model, args.device, args.model)
    if data.speaker is None and standardises_speakers(model):
        _err(f"note: this model standardises each speaker with their own statistics (scope='speaker'), and DATA "
             f"{args.data!r} names no speakers: its files are standardised together, as one speaker's (Emo-DB's "
             "file names or a CSV with a speaker column name them)")
    # written first: a report that cannot be printed (a closed pipe, a stream that cannot encode it) loses no
    # scores
    with _outputs_together(out_dir) as staged:
        with _skip_errors_hint(args.skip_errors, "scores the other files"):
            results = evaluate_model(
                model, data.filenames, data.target, speakers=data.speaker, chunk_size=args.chunk_size,
                skip_errors=args.skip_errors, figures_dir=staged, verbose=on_terminal(sys.stderr),
            )
        _write_json(staged / "metrics.json", {"model": str(args.model), "data": str(args.data), **results})
    if results["unknown_labels"]:
        _err(f"warning: the model never saw the labels {', '.join(results['unknown_labels'])} of DATA; "
             "their clips count as errors")
    y_true = [p["label"] for p in results["predictions"]]
    y_pred = [p["predicted"] for p in results["predictions"]]
    print(f"files     {results['n_files']}")
    print(f"accuracy  {100 * results['accuracy']:.2f} %  ({_interval(results['accuracy_ci95'])}, clips taken as independent)")
    print(f"UAR       {100 * results['uar']:.2f} %  (unweighted average recall = balanced accuracy)")
    print()
    # the labels of DATA, as the UAR averages over them (a class of the model absent from DATA has no recall)
    present = sorted(set(y_true))
    print(classification_report(y_true, y_pred, labels=present, target_names=[printable(str(c)) for c in present],
                                zero_division=0, digits=3))
    print(f"wrote {out_dir / 'confusion_matrix.png'} and {out_dir / 'metrics.json'}")
    for path, message in results["errors"].items():
        _err(f"skipped {path}: {message}")
    if results["errors"]:
        _err(f"{count(len(results['errors']), 'file')} of {len(data.filenames)} skipped; the scores are the others'")
        return 1
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``sersk reproduce``: the reference protocol on Emo-DB (or DATA), end to end, with figures."""
    from .evaluation import _FOLD_FILES, _fold_figure, _fold_file, run_leave_one_speaker_out, run_reference_protocol
    from .pipeline import VALIDATION_SPEAKER

    start = time.perf_counter()
    _check_reproduce_options(args)
    _check_temporary_folder()
    out_dir = _out_dir(args.out_dir)
    pipeline = _pipeline_from_args(args, **_quick_sizes(args))
    params = pipeline.get_params()
    corpus, name = _corpus_to_reproduce(args)
    device = _device_of(params)
    fold_dir = out_dir / "folds"
    if args.speaker_independent and not args.resume and (done := sorted(fold_dir.glob(_FOLD_FILES))):
        raise ValueError(
            f"{str(fold_dir)!r} holds {count(len(done), 'finished fold')} of an earlier run: add --resume to keep "
            "them and run the others, or remove that folder (or choose another --out-dir)"
        )
    test_speakers = None
    outputs = list(_REPRODUCE_OUTPUTS)
    if args.speaker_independent:  # the figures of the folds this run trains (a resumed fold draws none)
        test_speakers = args.speakers or (np.unique(corpus.speaker)[:QUICK_LOSO_FOLDS] if args.quick else None)
        held_out = np.unique(corpus.speaker) if test_speakers is None else test_speakers
        outputs += [_fold_figure(s) for s in held_out if not (args.resume and _fold_file(fold_dir, s).exists())]
    else:
        outputs.append("training_history.png")
    _check_outputs_replaceable(out_dir, outputs)
    quick = " (QUICK: a smoke run, not comparable to published figures)" if args.quick else ""
    n_speakers = "" if corpus.speaker is None else f", {count(len(np.unique(corpus.speaker)), 'speaker')}"
    print(f"{name}: {count(len(corpus.filenames), 'clip')}{n_speakers}; preset {args.preset}: "
          f"{_setting(params)}, device {device}{quick}")
    # leave-one-speaker-out writes each fold's figure as the fold ends, as its fold file, for --resume
    together = contextlib.nullcontext(out_dir) if args.speaker_independent else _outputs_together(out_dir)
    with together as staged, _interrupt_guard():
        if args.speaker_independent:
            results = run_leave_one_speaker_out(
                corpus.filenames, corpus.target, corpus.speaker, pipeline=pipeline, random_state=args.seed,
                test_speakers=test_speakers, figures_dir=staged, fold_dir=fold_dir, verbose=1,
                validation_speaker=VALIDATION_SPEAKER[args.preset],
            )
        else:
            results = run_reference_protocol(
                corpus.filenames, corpus.target, pipeline=pipeline, random_state=args.seed, figures_dir=staged,
                verbose=1,
            )
        results = _reproduce_record(args, params, device, results, start)
        _write_json(staged / "results.json", results)
    print()
    print(_summary(results, out_dir, f"preset {args.preset}, {_setting(params)}"))
    return 0


def _reproduce_record(
    args: argparse.Namespace, params: dict[str, Any], device: str, results: dict[str, Any], start: float
) -> dict[str, Any]:
    """What ``results.json`` holds: the command, its settings, the protocol's results, the published
    figures (Emo-DB's only), time, memory and versions."""
    from . import __version__
    from .evaluation import PROJECT_BAR, PUBLISHED_SPEAKER_INDEPENDENT, REFERENCE_ACCURACY

    emodb_figures: dict[str, Any] = {}  # the published figures, Emo-DB's only
    if args.data is None and args.speaker_independent:
        emodb_figures = {"published": dict(PUBLISHED_SPEAKER_INDEPENDENT), "project_bar": PROJECT_BAR}
    elif args.data is None:
        emodb_figures = {"reference_accuracy": REFERENCE_ACCURACY}
    return {
        "command": shlex.join([PROG, *args.argv]),
        "corpus": "Emo-DB" if args.data is None else str(args.data),
        "preset": args.preset,
        "quick": bool(args.quick),
        "seed": args.seed,
        "n_augmentations": params.get("augment__n_augmentations", 0),
        "epochs": params["net__max_epochs"],
        "params": dict(parse_param(p) for p in args.param),
        "device": device,
        **results,
        **emodb_figures,  # the library's protocols take any corpus; these figures are Emo-DB's
        "wall_time_s": round(time.perf_counter() - start, 1),
        "peak_rss_mib": _peak_rss_mib(),
        "versions": {"sersk": __version__, "python": platform.python_version()},
    }


def _check_reproduce_options(args: argparse.Namespace) -> None:
    """Refuse ``sersk reproduce`` options that only make sense with another, and a speaker named twice."""
    if args.speakers and not args.speaker_independent:
        raise ValueError("--speakers names the held-out speakers of --speaker-independent; add that option")
    if args.resume and not args.speaker_independent:
        raise ValueError("--resume continues a --speaker-independent run cut short; add that option")
    if args.data is not None and (args.data_home is not None or args.download):
        raise ValueError("--data names the corpus to run on; --data-home and --download are Emo-DB's: drop them")
    if named_twice := repeated(args.speakers or []):
        raise ValueError(f"--speakers names {' '.join(named_twice)} more than once")


def _quick_sizes(args: argparse.Namespace) -> dict[str, int]:
    """With ``--quick``, the copies and epochs the options leave unset (``make_pipeline``'s names)."""
    sizes = {}
    if args.quick and args.n_augmentations is None and args.preset == "reference":
        sizes["n_augmentations"] = QUICK_N_AUGMENTATIONS
    if args.quick and args.epochs is None:
        sizes["max_epochs"] = QUICK_LOSO_EPOCHS if args.speaker_independent else QUICK_EPOCHS
    return sizes


def _corpus_to_reproduce(args: argparse.Namespace) -> tuple[Any, str]:
    """Emo-DB, or the corpus ``--data`` names, checked against ``--speakers``; and its name for messages."""
    from .datasets import fetch_emodb, load_corpus

    if args.data is None:
        with warnings.catch_warnings(record=True) as caught:  # a folder holding part of the release
            warnings.simplefilter("always", UserWarning)
            corpus, name = fetch_emodb(args.data_home, download_if_missing=True if args.download else None), "Emo-DB"
        for warning in caught:
            _err(f"warning: {warning.message}")
    else:
        corpus, name = load_corpus(args.data), repr(str(args.data))
        if args.speaker_independent and corpus.speaker is None:
            raise ValueError(
                f"{name} names no speakers: leave-one-speaker-out needs the speaker of each clip (a CSV with the "
                "header path,label,speaker, or Emo-DB file names)"
            )
    if unknown := sorted(set(args.speakers or []) - set(corpus.speaker if corpus.speaker is not None else [])):
        raise ValueError(
            f"--speakers {' '.join(unknown)}: not among {name}'s speakers ({' '.join(np.unique(corpus.speaker))})"
        )
    return corpus, name


def _setting(params: dict[str, Any]) -> str:
    """The augmentation and epochs a pipeline's parameters give, as the commands print them."""
    if n := params.get("augment__n_augmentations", 0):
        where = "beside" if params.get("augment__keep_original") else "in place of"
        copies = f"{count(n, 'augmented copy', 'augmented copies')} {where} each training clip"
    elif any(params.get(f"net__{name}") for name in ("crop_frames", "freq_mask_bands", "time_mask_frames")):
        copies = "no stored copies (crops and masks drawn every epoch)"
    else:
        copies = "no augmentation"
    return f"{copies}, {count(params['net__max_epochs'], 'epoch')}"


def _device_of(params: dict[str, Any]) -> str:
    from .utils._device import resolve_device

    return resolve_device(params["net__device"])  # --device, or --param net__device=...


def _summary(results: dict[str, Any], out_dir: Path, setting: str) -> str:
    from .evaluation import PROJECT_BAR, PUBLISHED_SPEAKER_INDEPENDENT, REFERENCE_ACCURACY

    def pct(v: float) -> str:
        return f"{100 * v:6.2f} %"

    setting += f", seed {results['seed']}"
    if results["quick"]:
        setting += ", QUICK run"
    lines = ["=" * 78]
    if "per_speaker" in results:
        lines.append(f"Speaker-independent (leave-one-speaker-out), {setting}")
        if results.get("transductive"):
            lines.append("  TRANSDUCTIVE: every speaker, the test speaker included, was standardised with its own "
                         "statistics;\n  not comparable with the plain speaker-independent figures below")
        if len(results["per_speaker"]) < results["n_speakers"]:
            speakers = printable(", ".join(results["held_out_speakers"]))
            lines.append(f"  PARTIAL: {results['folds_run']} folds run (held-out speakers {speakers}); "
                         "pooled over those only")
        lines.append("  speaker  clips  accuracy       UAR")
        for fold in results["per_speaker"]:
            speaker = printable(str(fold["speaker"]))
            lines.append(f"  {speaker:>7}  {fold['n_files']:5d}  {pct(fold['accuracy'])}  {pct(fold['uar'])}")
        lines.append(f"  pooled   {results['n_files']:5d}  {pct(results['accuracy'])}  {pct(results['uar'])}")
        if bootstrap := results.get("speaker_bootstrap_ci95"):
            lines.append(f"  speakers drawn again (bootstrap): accuracy {_interval(bootstrap['accuracy'])}, "
                         f"UAR {_interval(bootstrap['uar'])}")
        if "published" in results:  # Emo-DB's
            published = ", ".join(
                f"{name} {100 * value:.1f} % {metric}"
                for name, (metric, value) in PUBLISHED_SPEAKER_INDEPENDENT.items()
            )
            lines.append(f"  published speaker-independent: {published}")
            lines.append(f"  this project's bar: {PROJECT_BAR}")
    else:
        lines.append(f"Speaker-dependent reference protocol (70/15/15 per label), {setting}")
        lines.append(f"  clips: {results['n_train']} training / {results['n_validation']} validation / "
                     f"{results['n_test']} test")
        reference = (f"   (reference: {100 * REFERENCE_ACCURACY:.2f} %, 75 augmentations, 3 epochs)"
                     if "reference_accuracy" in results else "")  # Emo-DB's
        lines.append(f"  test accuracy {pct(results['accuracy'])}{reference}")
        lines.append(f"                ({_interval(results['accuracy_ci95'])}, clips taken as independent)")
        lines.append(f"  test UAR      {pct(results['uar'])}")
    if results["quick"]:
        lines.append("  QUICK run: fewer augmentations/epochs (and folds) than the recipe; a smoke test, "
                     "not a measurement")
    rss = results["peak_rss_mib"]
    peak = "unknown" if rss["self"] is None else f"{rss['self']:.0f} MiB"
    if rss["children"]:
        peak += f" (child processes {rss['children']:.0f} MiB)"
    lines.append(f"  wall time {results['wall_time_s']:.1f} s; peak RSS {peak}")
    if loaded := results.get("folds_loaded"):
        lines.append(f"  resumed: the folds of {', '.join(loaded)} were read from {out_dir / 'folds'}/ (their "
                     "time is not in the wall time)")
    if results.get("corpus", "Emo-DB") != "Emo-DB":
        lines.append(f"  corpus: {results['corpus']}")
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


class _SubcommandParser(_Parser):
    """A subcommand's parser: options may come between its positional arguments, as GNU tools allow
    (``sersk predict MODEL a.wav --json b.wav``; argparse alone stops the files at the option), and
    an unknown argument is named under the subcommand's usage, with the closest option."""

    _intermixing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        if self._intermixing:  # argparse's intermixed parsing calls this twice: positionals, then the rest
            return super().parse_known_args(args, namespace)
        args = list(sys.argv[1:] if args is None else args)
        # Python 3.11's intermixed parsing drops a "--": what follows it is parsed as stand-ins that
        # cannot be options (no argument holds a NUL), then put back
        cut = args.index("--") if "--" in args else len(args)
        if cut < len(args) and cut and (action := self._option_taking_values(args[cut - 1])) is not None:
            at_least = "at least " if action.nargs == "+" else ""  # argparse's words: "--" is no option's value
            self.error(f"argument {'/'.join(action.option_strings)}: expected {at_least}one argument")
        stand_ins = {f"\0{i}": arg for i, arg in enumerate(args[cut + 1 :])}
        self._intermixing = True
        try:
            namespace, extras = self.parse_known_intermixed_args(args[:cut] + list(stand_ins), namespace)
        finally:
            self._intermixing = False
        self._put_back(namespace, stand_ins)
        unknown = next((arg for arg in extras if arg.startswith("-")), "")  # not one after "--": a stand-in
        extras = [stand_ins.get(arg, arg) for arg in extras]
        if extras:  # named here, under this subcommand's usage, rather than under the top level's
            options = [o for action in self._actions for o in action.option_strings]
            close = difflib.get_close_matches(unknown, options, n=1) if unknown else []
            self.error(f"unrecognized arguments: {' '.join(extras)}" + (f"; did you mean {close[0]}?" if close else ""))
        return namespace, extras

    def _option_taking_values(self, arg: str) -> argparse.Action | None:
        """The option ``arg`` names (in full or by a unique prefix, as argparse reads it) when it takes
        values it was not given in the same argument (``--opt=value``); else None."""
        if not arg.startswith("-") or "=" in arg:
            return None
        actions = self._option_string_actions
        matches = {actions[arg]} if arg in actions else {actions[name] for name in actions if name.startswith(arg)}
        action = matches.pop() if len(matches) == 1 else None
        return action if action is not None and action.nargs != 0 else None

    def _put_back(self, namespace: argparse.Namespace, stand_ins: dict[str, str]) -> None:
        """Replace the stand-ins of the arguments after ``--`` in the positionals' values; those that a
        list option took after its values (``--speakers 03 -- 08``) are unrecognized, as in argparse."""
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            values = value if isinstance(value, list) else [value]
            if not any(isinstance(v, str) and v in stand_ins for v in values):
                continue
            if action.option_strings:
                self.error(f"unrecognized arguments: {' '.join(stand_ins[v] for v in values if v in stand_ins)}")
            back = [stand_ins.get(v, v) if isinstance(v, str) else v for v in values]
            setattr(namespace, action.dest, back if isinstance(value, list) else back[0])


def _add_training_options(p: argparse.ArgumentParser, *, quick: bool) -> None:
    unset = "the preset's, or --quick's" if quick else "the preset's"
    p.add_argument("--preset", choices=PRESET_NAMES, default="reference",
                   help="reference: the recipe as published; tuned: the same network trained for "
                        "speaker-independent accuracy on a small budget (default: reference)")
    p.add_argument("--n-augmentations", type=_non_negative_int, default=None, metavar="N",
                   help=f"stored augmented copies per training clip, 0 for none (default: {unset}; reference 75, "
                        "tuned none: its augmentation is drawn afresh every epoch)")
    p.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                   help=f"training epochs (default: {unset}; reference 3, tuned 60)")
    p.add_argument("--device", type=_device, default="auto", metavar="{auto,cpu,cuda}",
                   help="where features and the network run (default: auto, CUDA when available); a saved model "
                        "chooses its device again where it is loaded")
    p.add_argument("--seed", type=_seed, default=0, metavar="N",
                   help="random_state of augmentation, network and splits (default: 0)")
    p.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                   help="workers for decoding (threads) and augmentation (processes, each with torch loaded: "
                        "the largest one's peak resident memory was 0.55-1.0 GiB in docs/results.md's runs that "
                        "record a worker's own) "
                        "(-1: all the CPUs the process may use; default: 1)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="set any pipeline parameter, e.g. net__module__hidden_size=8 or augment__noise_p=0.5 "
                        "(VALUE is read as a Python literal, else as a string); repeatable")


_DATA_HELP = ("a folder of WAVs with Emo-DB names (e.g. 03a01Wa.wav; labels and speakers are read from the "
              "names) or a CSV file with the header path,label[,speaker] (relative paths are relative to the CSV)")

_MODEL_HELP = ("a model file written by 'sersk train' (or joblib.dump of a fitted sersk model); loading it runs "
               "the code its pickle holds: load only models you trust")


def _add_train(sub: Any) -> None:
    """``sersk train``'s parser."""
    p = sub.add_parser("train", help="train the CNN-LSTM pipeline and save it",
                       description="Train a preset's pipeline (the recipe's: load -> augment -> log-mel -> CNN-LSTM) on DATA.")
    p.add_argument("data", metavar="DATA", help=_DATA_HELP)
    p.add_argument("--out", required=True, metavar="MODEL", help="where to save the fitted model (joblib), atomically; it predicts "
                        "without progress bars of its own")
    _add_training_options(p, quick=False)
    p.add_argument("--batch-size", type=_positive_int, default=32, metavar="N", help="mini-batch size (recipe: 32)")
    p.add_argument("--lr", type=_positive_float, default=0.005, metavar="RATE",
                   help="Adam learning rate (recipe: 0.005)")
    p.add_argument("--padding", choices=("masked", "reference"), default="masked",
                   help="batch padding: masked (batch-independent predictions) or the reference's unmasked zeros")
    p.add_argument("--skip-errors", action="store_true",
                   help="leave out the files that cannot be read (reported on stderr; exit status 1) and train on "
                        "the others, instead of stopping")
    p.add_argument("--validation-fraction", type=_fraction, default=None, metavar="F",
                   help="hold out this fraction of the speakers (of the clips, when speakers are unknown) "
                        "before augmentation, for per-epoch validation")
    p.set_defaults(func=cmd_train)


def _add_predict(sub: Any) -> None:
    """``sersk predict``'s parser."""
    p = sub.add_parser("predict", help="predict the emotion of audio files",
                       description="Predict the emotion of audio files with a model saved by 'sersk train' "
                                   "(or joblib.dump of a fitted sersk pipeline, or of a soft VotingClassifier of them). "
                                   "Exit status 1 when a file was skipped.")
    p.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="audio files, or folders standing for the audio files they hold (not their subfolders)")
    p.add_argument("--json", action="store_true", help="print JSON: {'predictions': [...], 'errors': {...}}")
    p.add_argument("--skip-errors", action="store_true",
                   help="skip files that cannot be read (reported on stderr) instead of stopping")
    p.add_argument("--speaker-per-folder", action="store_true",
                   help="the files of each folder are one speaker's: a model with scale__scope=speaker standardises "
                        "each folder's files with their own statistics (without it, all the files as one speaker's); "
                        "other models are unaffected")
    _add_chunk_and_device_options(p)
    p.set_defaults(func=cmd_predict)


def _add_chunk_and_device_options(p: argparse.ArgumentParser) -> None:
    """``--chunk-size`` and ``--device`` of the commands that predict with a saved model."""
    p.add_argument("--chunk-size", type=_positive_int, default=256, metavar="N",
                   help="the most files decoded at a time; long files make smaller chunks, and a model with "
                        "scale__scope=speaker takes each speaker's files at once (default: 256)")
    p.add_argument("--device", type=_device, default=None, metavar="{auto,cpu,cuda}",
                   help="where features and the network run (default: as the model was saved; 'sersk train' "
                        "saves auto, CUDA when available)")


def _add_evaluate(sub: Any) -> None:
    """``sersk evaluate``'s parser."""
    p = sub.add_parser("evaluate", help="score a model on labelled data",
                       description="Accuracy, unweighted average recall and a classification report of MODEL "
                                   "on DATA; writes confusion_matrix.png and metrics.json. Exit status 1 when a "
                                   "file was skipped.")
    p.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    p.add_argument("data", metavar="DATA", help=_DATA_HELP)
    p.add_argument("--out-dir", default="sersk-evaluate", metavar="DIR", help="output folder (default: sersk-evaluate)")
    p.add_argument("--skip-errors", action="store_true",
                   help="leave out files that cannot be read (reported on stderr) and score the others, instead of "
                        "stopping")
    _add_chunk_and_device_options(p)
    p.set_defaults(func=cmd_evaluate)


def _add_reproduce(sub: Any) -> None:
    """``sersk reproduce``'s parser."""
    p = sub.add_parser("reproduce", help="the reference protocol on Emo-DB (or your corpus), end to end",
                       description="Train and test on Emo-DB (or on DATA, with --data) as the reference does "
                                   "(70/15/15 per label), or leave-one-speaker-out with --speaker-independent; "
                                   "writes figures and results.json.")
    p.add_argument("--speaker-independent", action="store_true",
                   help="leave-one-speaker-out over the speakers (Emo-DB's 10)")
    p.add_argument("--data", default=None, metavar="DATA",
                   help=f"run on this corpus instead of Emo-DB: {_DATA_HELP}; --speaker-independent needs its "
                        "speakers. Emo-DB's published figures are then left out")
    p.add_argument("--quick", action="store_true",
                   help=f"a small smoke run of the protocol: {QUICK_N_AUGMENTATIONS} augmentations (reference preset), "
                        f"{QUICK_EPOCHS} epochs ({QUICK_LOSO_EPOCHS} epoch and {QUICK_LOSO_FOLDS} folds with "
                        "--speaker-independent), unless given")
    p.add_argument("--speakers", nargs="+", metavar="S",
                   help="with --speaker-independent: run the folds of these held-out speakers only, e.g. "
                        f"--speakers 03 08 (default: all; with --quick, the first {QUICK_LOSO_FOLDS})")
    p.add_argument("--resume", action="store_true",
                   help="with --speaker-independent: keep the folds an earlier run of the same command finished "
                        "(each is written to DIR/folds/ as it ends) and run the others: a run cut short goes on")
    p.add_argument("--out-dir", default="outputs/reproduce", metavar="DIR",
                   help="output folder (default: outputs/reproduce)")
    p.add_argument("--data-home", default=None, metavar="DIR",
                   help="the folder holding Emo-DB's wav/ (or wav/ itself); default: $SERSK_DATA, else "
                        "~/sersk_data, where Emo-DB is downloaded when missing")
    p.add_argument("--download", action="store_true",
                   help="download Emo-DB into --data-home / $SERSK_DATA when it is not there "
                        "(without it, only the default ~/sersk_data is downloaded into)")
    _add_training_options(p, quick=True)
    p.set_defaults(func=cmd_reproduce)


def build_parser() -> argparse.ArgumentParser:
    """The ``sersk`` argument parser, with its four subcommands.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Speech emotion recognition with the 2-D CNN-LSTM recipe, on Emo-DB or a corpus of your own.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_SubcommandParser,
                                help="train, predict, evaluate or reproduce; 'sersk COMMAND --help' for its options")
    sub.required = True
    _add_train(sub)
    _add_predict(sub)
    _add_evaluate(sub)
    _add_reproduce(sub)
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
        0 on success; 1 when ``predict``, ``train`` or ``evaluate`` skipped files (``--skip-errors``);
        2 on a usage or input error (the message is printed as ``sersk: error: ...``, without a
        traceback); 71 when the machine ran out of memory or disk space; 130 on Ctrl-C; 141 when
        the reader of the output stopped early (``| head``); 143 on SIGTERM. While it runs, stdout
        escapes what its encoding cannot write (``\\u0433``).

    Examples
    --------
    >>> main(["predict", "model.joblib", "clip.wav"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    with _unencodable_characters_escaped(), _warnings_printable():  # a file name in a usage error, too
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, usage errors
            return exc.code if isinstance(exc.code, int) else 2
        args.argv = argv  # what results.json records as the command
        return _run(args)


# the machine's limits, not the command's mistakes: exit status 71 (sysexits' EX_OSERR), which a
# scheduler can tell from a usage error (2)
EXIT_OUT_OF_RESOURCES = 71
_OUT_OF_RESOURCES = {errno.ENOMEM, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _out_of_resources(what: str, exc: BaseException, args: argparse.Namespace) -> int:
    """Say which resource ran out, and what of the command's options asks for less of it."""
    lower = []
    if what == "out of memory":
        if hasattr(args, "batch_size"):
            lower.append("--batch-size (or --param net__max_batch_frames=N)")
        elif hasattr(args, "param"):
            lower.append("--param net__max_batch_frames=N")
        if hasattr(args, "chunk_size"):
            lower.append("--chunk-size")
        if getattr(args, "n_jobs", None) not in (None, 1):
            lower.append("--n-jobs")
    hint = f": lower {' or '.join(lower)}" if lower else ""
    _err(f"error: {what} ({_abridged(exc)}){hint}")
    return EXIT_OUT_OF_RESOURCES


def _abridged(exc: BaseException) -> str:
    """An error's message on one line, its first 40 words (torch's run on), with the file an OSError names."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename!r}" if exc.filename is not None else "")
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split()[:40])


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; turn its interruptions and errors into an exit status."""
    try:
        with _terminate_as_exception(), _threads_within_the_cpu_quota():
            return args.func(args)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"\n{PROG}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        return _reader_gone()
    except (MemoryError, RuntimeError) as exc:
        worker_killed = type(exc).__name__ == "TerminatedWorkerError" and "SIGKILL" in str(exc)  # by the system
        if not (is_out_of_memory(exc) or worker_killed):
            raise
        if worker_killed:
            exc = RuntimeError("a worker process was killed, as the system kills a process that runs out of memory")
        return _out_of_resources("out of memory", exc, args)
    except (ValueError, OSError) as exc:  # FileNotFoundError, ConnectionError, ... are OSErrors
        if isinstance(exc, OSError) and exc.errno == errno.EINVAL and _stdout_is_gone():
            return _reader_gone()  # a closed pipe, as Windows reports it
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
            return _out_of_resources("out of memory" if exc.errno == errno.ENOMEM else "out of disk space", exc, args)
        # a message of sersk's own with an errno reads without its "[Errno 28] " prefix
        own = isinstance(exc, OSError) and exc.errno is not None and exc.strerror and exc.filename is None
        message = exc.strerror if isinstance(exc, OSError) and own else exc
        _err(f"error: {' '.join(str(message).split()) or type(exc).__name__}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
