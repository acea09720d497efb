"""A labelled corpus of your own: a folder of Emo-DB-named clips or a CSV ``path,label[,speaker]``."""

from __future__ import annotations

import csv
import os
import unicodedata
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..utils.files import file_identity, folder_files
from ..utils._text import repeated
from ._emodb import _load, _wav_files

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")
"""Extensions of the formats libsndfile (and so ``read_audio``) decodes: the files a folder search finds."""

_CSV_HINT = "for other file names, list the files in a CSV with the header path,label or path,label,speaker"


def load_corpus(path: str | os.PathLike) -> Bunch:
    """Read a labelled corpus: a folder of Emo-DB-named WAV files, or a CSV file listing clips.

    Nothing is decoded; the files a CSV names are only checked to exist.

    Parameters
    ----------
    path : str or os.PathLike
        Either a folder of ``.wav`` files named as Emo-DB names them (``03a01Wa.wav``: the label
        and the speaker are read from the name; a folder holding such a ``wav/`` folder works too,
        e.g. the Emo-DB download), or a CSV file (UTF-8) with the header ``path,label`` or
        ``path,label,speaker``. Relative paths in a CSV are relative to the CSV's folder; ``~`` starts the home folder.

    Returns
    -------
    data : sklearn.utils.Bunch
        The keys of [`fetch_emodb`][sersk.datasets.fetch_emodb]:

        filenames : ndarray of str, shape (n_files,)
            The audio files.
        target : ndarray of str, shape (n_files,)
            The label of each.
        speaker : ndarray of str of shape (n_files,), or None
            The speaker of each; None for a CSV without a ``speaker`` column.
        text : ndarray of str of shape (n_files,), or None
            The Emo-DB sentence of each; None for a CSV.
        target_names : ndarray of str
            The labels present, sorted.
        DESCR : str
            Where the corpus was read from.

    Raises
    ------
    FileNotFoundError
        If ``path``, or a file the CSV names, does not exist.
    ValueError
        If the folder holds no WAV files or names that are not Emo-DB names, or the CSV lacks a
        column, has an empty cell, no rows or a row of more fields than its header, lists a file
        twice, names a folder, or is not UTF-8 text.

    Examples
    --------
    >>> from sersk.datasets import load_corpus
    >>> corpus = load_corpus("my_corpus.csv")  # doctest: +SKIP
    >>> corpus.filenames[:2], corpus.target[:2]  # doctest: +SKIP
    (array(['/data/clips/a.wav', '/data/clips/b.flac'], dtype='<U18'), array(['angry', 'calm'], dtype='<U5'))
    """
    if not os.fspath(path):
        raise ValueError("the corpus path is empty; give a folder of Emo-DB WAV files or a CSV file")
    root = Path(os.fspath(path)).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{str(root)!r} does not exist; give a folder of Emo-DB WAV files or a CSV file")
    if root.is_file():
        if root.suffix.lower() in AUDIO_EXTENSIONS:
            raise ValueError(
                f"{str(root)!r} is an audio file; a corpus is a folder of Emo-DB-named WAV files or a CSV file (to "
                "label audio files, use predict_files or 'sersk predict')"
            )
        return _read_csv(root)
    for folder in (root, root / "wav"):
        if _wav_files(folder):
            data = _load(folder, hint=f"; {_CSV_HINT}")
            data.DESCR = f"Emo-DB-named clips in {folder}"
            return data
    raise ValueError(
        f"the folder {str(root)!r} holds no .wav files directly (nor a wav/ folder with some); for another "
        "layout, such as a folder per class, list the files in a CSV with the header path,label or "
        "path,label,speaker"
    )


def find_audio_files(paths: str | os.PathLike | list[str | os.PathLike]) -> list[str]:
    """Expand folders into the audio files they hold; files are kept as they are.

    Parameters
    ----------
    paths : str, os.PathLike or list of them
        Audio files and folders. A folder stands for its audio files (extensions in
        ``AUDIO_EXTENSIONS``; not its subfolders, nor hidden files such as macOS's ``._name.wav``
        resource files), sorted by name. A broken link is kept, so that reading it reports it.

    Returns
    -------
    files : list of str
        In the order given. Files are not checked to exist (a caller may skip missing ones).

    Raises
    ------
    ValueError
        If a folder holds no audio file.

    Examples
    --------
    >>> from sersk.datasets import find_audio_files
    >>> find_audio_files(["clips/", "extra.wav"])  # doctest: +SKIP
    ['clips/a.flac', 'clips/b.wav', 'extra.wav']
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[str] = []
    for item in paths:
        name = os.fspath(item)
        if not os.path.isdir(name):
            files.append(name)
            continue
        found = folder_files(name, AUDIO_EXTENSIONS)
        if not found:
            raise ValueError(f"the folder {name!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
        files += found
    return files


def _unclosed_quote(path: Path) -> int | None:
    """The line of the row whose quote the file never closes (csv's strict reading runs out of data
    in it), or None."""
    previous = 0
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            for _ in reader:
                previous = reader.line_num
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return previous + 1
    return None


def _read_csv(path: Path) -> Bunch:
    columns, rows = _csv_rows(path)
    files = _csv_files(path, rows)
    target = np.array([v["label"] for _, v in rows], dtype=str)
    return Bunch(
        filenames=np.array(files, dtype=str),
        target=target,
        speaker=np.array([v["speaker"] for _, v in rows], dtype=str) if "speaker" in columns else None,
        text=None,
        target_names=np.unique(target),
        DESCR=f"Labelled audio files listed in {path}",
    )


def _csv_rows(path: Path) -> tuple[tuple[str, ...], list[tuple[int, dict[str, str]]]]:
    """The CSV's columns (path, label[, speaker]) and its rows, each with the line it ends on and its
    stripped cells; a ValueError naming the line for a header or row that cannot be used."""
    previous = 0  # the last line of the last row read: the next row starts after it
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = _csv_header(path, reader)
            reader.fieldnames = header
            previous = reader.line_num
            columns = ("path", "label", "speaker") if "speaker" in header else ("path", "label")
            rows = []
            for row in reader:
                first, previous = previous + 1, reader.line_num
                if not any((v or "").strip() for k, v in row.items() if k is not None):
                    continue  # a blank line
                if any((v or "").strip() for v in row.get(None) or []):  # csv puts surplus fields under None
                    raise ValueError(
                        f"the CSV {str(path)!r}, line {reader.line_num}: more fields than the header's "
                        f"{len(header)} ({','.join(header)}); quote a cell that holds a comma"
                    )
                for column in columns:
                    if "\n" in (cell := row.get(column) or "") or "\r" in cell:  # a quote never closed: the cell ran on
                        raise ValueError(
                            f"the CSV {str(path)!r}, line {first}: a quote opened in the {column!r} cell is not closed "
                            f"(the cell runs on to the end of line {reader.line_num})"
                        )
                values = {k: (row.get(k) or "").strip() for k in columns}
                for column in columns:
                    if not values[column]:
                        if (opened := _unclosed_quote(path)) is not None:  # it swallowed the last row's other cells
                            raise ValueError(
                                f"the CSV {str(path)!r}, line {opened}: a quote opened there is not closed"
                            )
                        raise ValueError(f"the CSV {str(path)!r}, line {reader.line_num}: the {column!r} cell is empty")
                rows.append((reader.line_num, values))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not a UTF-8 CSV file ({exc}); save it as UTF-8") from None
    except csv.Error as exc:
        raise ValueError(f"the CSV {str(path)!r}, line {previous + 1}: cannot be parsed ({exc})") from None
    if not rows:
        raise ValueError(f"the CSV {str(path)!r} lists no files: it has a header but no rows")
    return columns, rows


def _csv_header(path: Path, reader: csv.DictReader) -> list[str]:
    """The header's column names, stripped and lower-cased (Path,Label,Speaker too), once checked."""
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    if named_twice := repeated([c for c in header if c]):
        named = ", ".join(map(repr, named_twice))
        raise ValueError(f"the CSV {str(path)!r} names the column {named} twice in its header")
    if missing := [c for c in ("path", "label") if c not in header]:
        given = ",".join(name or "" for name in reader.fieldnames or []) or "empty"
        delimiter = next((d for d in ";\t|" if d in given), None)
        hint = f"; cells are separated by commas, not {delimiter!r}" if delimiter else ""
        raise ValueError(
            f"the CSV {str(path)!r} has no {' or '.join(repr(c) for c in missing)} column (first line: "
            f"{given}); expected the header path,label or path,label,speaker{hint}"
        )
    return header


def _in_other_unicode_form(file: Path) -> Path | None:
    """The file a missing name stands for with its folders' and its own names in the other Unicode
    normal form, if there is one: macOS writes names decomposed (NFD, "a" + combining diaeresis),
    where a name typed elsewhere is composed (NFC, "ä"); they look the same and compare unequal."""
    found = Path(file.anchor)
    for part in file.parts[1:] if file.anchor else file.parts:
        found = next((found / name for name in _unicode_forms(part) if (found / name).exists()), None)  # type: ignore[assignment]
        if found is None:
            return None
    return found if found.is_file() else None


def _unicode_forms(name: str) -> list[str]:
    """``name`` as given, then composed and decomposed (those that differ)."""
    return list(dict.fromkeys([name, unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name)]))


def _csv_files(path: Path, rows: list[tuple[int, dict[str, str]]]) -> list[str]:
    """Each row's audio file, made absolute (a relative path is relative to the CSV's folder), once
    checked to be a file that exists and is listed once."""
    files, missing_files = [], []
    first_line: dict[tuple[int, int] | str, int] = {}
    for line, values in rows:
        file = (path.parent / Path(values["path"]).expanduser()).absolute()
        if not file.exists():
            file = _in_other_unicode_form(file) or file
        if file.is_dir():
            raise ValueError(
                f"the CSV {str(path)!r}, line {line}: {values['path']!r} is a folder ({str(file)!r}); "
                "each row names one audio file"
            )
        if not file.is_file():
            missing_files.append((line, values["path"], file))
        elif (seen := first_line.setdefault(file_identity(file), line)) != line:
            raise ValueError(
                f"the CSV {str(path)!r} lists {str(file)!r} twice (lines {seen} and {line}); each clip must appear "
                "once, or it could be trained on and tested on"
            )
        files.append(str(file))
    if missing_files:
        line, given, file = missing_files[0]
        more = f" (and {len(missing_files) - 1} more missing)" if len(missing_files) > 1 else ""
        hint = "; paths are separated by '/' here, not '\\'" if "\\" in given and os.sep == "/" else ""
        raise FileNotFoundError(
            f"the CSV {str(path)!r}, line {line}: audio file {given!r} not found at {str(file)!r}{more}{hint}"
        )
    return files
