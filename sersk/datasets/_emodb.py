"""Emo-DB (Berlin Database of Emotional Speech): locate, download and list the corpus."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from sklearn.utils import Bunch

from .. import _recipe
from ..utils._terminal import bar_disabled, tqdm
from ..utils.files import folder_files
from ..utils.validation import count
from ._emodb_sha256 import EMODB_SHA256

EMODB_URL = "http://emodb.bilderbar.info/download/download.zip"

_DEFAULT_HOME = "~/sersk_data"
_ENV_VAR = "SERSK_DATA"
_EXTRACTED_DIR = "emodb"  # the download is extracted to <home>/emodb, so the clips land in <home>/emodb/wav
_CHUNK_SIZE = 1 << 20  # 1 MiB
_TIMEOUT = 60.0  # seconds, per socket operation
_MAX_BYTES = 1 << 29  # 512 MiB, downloaded or unpacked: ten times the release's (a 47 MB wav/ folder)
_TMP_PREFIX = ".sersk-emodb-"

_FILENAME_PATTERN = "NNtttEv.wav (e.g. 03a01Wa.wav: speaker 03, text a01, emotion W, version a)"
_FILENAME_RE = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")

DESCR = """\
Emo-DB: the Berlin Database of Emotional Speech
-----------------------------------------------

Ten professional actors (5 female, 5 male) speak ten everyday German sentences in seven
emotional states: anger, boredom, disgust, fear, happiness, sadness and neutral. The public
release holds 535 clips, recorded in an anechoic chamber at TU Berlin and stored as mono
16 kHz, 16-bit WAV files. Every label comes from the file name ``NNtttEv.wav``: ``NN`` the
speaker (03, 08-16), ``ttt`` the text (a01-a07, b01-b03), ``E`` the emotion letter (German
initial: W=Wut/anger, L=Langeweile/boredom, E=Ekel/disgust, A=Angst/fear,
F=Freude/happiness, T=Trauer/sadness, N=neutral) and ``v`` the version of the take.

Reference: F. Burkhardt, A. Paeschke, M. Rolfes, W. F. Sendlmeier, B. Weiss, "A database of
German emotional speech", Proc. Interspeech 2005, Lisbon, pp. 1517-1520.
doi:10.21437/Interspeech.2005-446
"""


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the folder where sersk keeps its data sets.

    The folder is not created.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        The folder to use. When None, the environment variable ``SERSK_DATA`` is used if set,
        else ``~/sersk_data``. A leading ``~`` is expanded.

    Returns
    -------
    data_home : pathlib.Path
        The folder, ``~`` expanded (it may not exist).

    Examples
    --------
    >>> from sersk.datasets import get_data_home
    >>> get_data_home("/tmp/sersk").as_posix()
    '/tmp/sersk'
    """
    if data_home is None:
        data_home = os.environ.get(_ENV_VAR) or _DEFAULT_HOME
    return Path(os.fspath(data_home)).expanduser()


def parse_emodb_filename(name: str | os.PathLike) -> dict[str, str]:
    """Read speaker, text, emotion and version from an Emo-DB file name.

    Emo-DB names follow ``NNtttEv.wav``: characters 1-2 are the speaker, 3-5 the text,
    6 the emotion letter (German initial) and 7 the version of the take.

    Parameters
    ----------
    name : str or os.PathLike
        A file name or path; only the last component is read. The ``.wav`` extension is
        optional.

    Returns
    -------
    fields : dict
        ``speaker`` (e.g. ``"03"``), ``text`` (e.g. ``"a01"``), ``emotion`` (the English
        name, e.g. ``"anger"``) and ``version`` (e.g. ``"a"``).

    Raises
    ------
    ValueError
        If the name does not follow the Emo-DB scheme or the emotion letter is unknown.

    Examples
    --------
    >>> from sersk.datasets import parse_emodb_filename
    >>> parse_emodb_filename("03a01Wa.wav")
    {'speaker': '03', 'text': 'a01', 'emotion': 'anger', 'version': 'a'}
    """
    base = os.path.basename(os.fspath(name))
    stem = base[:-4] if base.lower().endswith(".wav") else base
    match = _FILENAME_RE.match(stem)
    if match is None or match["emotion"] not in _recipe.EMOTIONS:
        letters = ", ".join(f"{k}={v}" for k, v in _recipe.EMOTIONS.items())
        raise ValueError(
            f"{base!r} is not an Emo-DB file name: expected {_FILENAME_PATTERN}, with the emotion "
            f"letter one of {letters}"
        )
    return {
        "speaker": match["speaker"],
        "text": match["text"],
        "emotion": _recipe.EMOTIONS[match["emotion"]],
        "version": match["version"],
    }


def fetch_emodb(
    data_home: str | os.PathLike | None = None,
    *,
    download_if_missing: bool | None = None,
    url: str = EMODB_URL,
    verbose: bool = True,
) -> Bunch:
    """Load the file list and labels of Emo-DB, downloading the corpus if needed.

    The WAV files are looked for in ``<data_home>/wav``, then in ``<data_home>/emodb/wav`` (where
    a download is extracted), then in ``<data_home>`` itself (so a path ending in ``wav/`` works).
    Audio is not decoded: pass ``filenames`` to [`AudioLoader`][sersk.io.AudioLoader].

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        The data folder; see [`get_data_home`][sersk.datasets.get_data_home] (``SERSK_DATA``,
        then ``~/sersk_data``).
    download_if_missing : bool, default=None
        What to do when the corpus is not found. ``None`` downloads it only into the default
        location (``~/sersk_data``, when neither ``data_home`` nor ``SERSK_DATA`` names a folder):
        a folder you name is never filled by surprise, and naming one that holds no corpus is an
        error that says where sersk looked. ``True`` downloads into whichever folder is used;
        ``False`` never downloads.

        A download is extracted to a temporary folder, every clip is checked against its SHA-256
        sum (embedded in sersk), and only then is the folder moved to ``<data_home>/emodb``: an
        interrupted (Ctrl-C, a network error) or corrupted download leaves nothing behind. A
        process killed outright (``kill -9``) can leave a hidden ``.sersk-emodb-*`` file or folder
        in the data folder, which is never used: remove it.
    url : str, default=EMODB_URL
        Where to download the zip archive from; it must hold a ``wav/`` folder with the 535
        clips of the public release.
    verbose : bool, default=True
        Show a progress bar while downloading (on a terminal or in a notebook).

    Returns
    -------
    data : sklearn.utils.Bunch
        filenames : ndarray of str, shape (535,)
            Absolute paths of the WAV files, sorted by file name. A folder holding other clips than
            the release's 535 (by name) is read as it is, with a warning.
        target : ndarray of str, shape (535,)
            The emotion of each clip (``"anger"``, ``"boredom"``, ...).
        speaker : ndarray of str, shape (535,)
            The speaker of each clip (``"03"``, ``"08"``, ..., ``"16"``).
        text : ndarray of str, shape (535,)
            The sentence of each clip (``"a01"``, ..., ``"b03"``).
        target_names : ndarray of str
            The emotions present, sorted.
        DESCR : str
            A description of the corpus.

    Raises
    ------
    FileNotFoundError
        If the corpus is not found and is not to be downloaded (see ``download_if_missing``).
    ConnectionError
        If the download fails (no network, HTTP error, truncated transfer).
    OSError
        If the downloaded file is not a valid zip archive, holds no ``wav/`` folder, has unsafe
        member paths, or a clip whose SHA-256 sum is not the published one.
    FileExistsError
        If a download is due but ``<data_home>/emodb`` exists, is not an empty folder, and holds no
        clips.
    ValueError
        If a ``.wav`` file in the corpus folder does not follow the Emo-DB naming scheme, or
        ``download_if_missing`` is not True, False or None.

    Examples
    --------
    >>> from sersk.datasets import fetch_emodb
    >>> emodb = fetch_emodb("path/to/emodb")  # doctest: +SKIP
    >>> emodb.filenames.shape, emodb.target_names  # doctest: +SKIP
    ((535,), array(['anger', 'boredom', 'disgust', 'fear', 'happiness', 'neutral',
           'sadness'], dtype='<U9'))
    """
    if download_if_missing is not None:
        if not isinstance(download_if_missing, (bool, np.bool_)):  # 0 or "no" read as "not False" would download
            raise ValueError(f"download_if_missing={download_if_missing!r}; expected True, False or None")
        download_if_missing = bool(download_if_missing)
    source = "data_home" if data_home is not None else _ENV_VAR if os.environ.get(_ENV_VAR) else None
    home = get_data_home(data_home)
    candidates = [home / "wav", home / _EXTRACTED_DIR / "wav", home]
    wav_dir = _find_wav_dir(candidates)
    if wav_dir is None:
        if download_if_missing is False or (download_if_missing is None and source is not None):
            named = f"{source} names {str(home)!r}" if source else f"the default data home is {str(home)!r}"
            looked = ", ".join(str(c) for c in candidates[:-1]) + f" or {candidates[-1]}"
            hint = f"point data_home= or {_ENV_VAR} at the folder holding Emo-DB's wav/"
            if download_if_missing is None:
                hint += ", or pass download_if_missing=True (--download on the command line) to download it there"
            raise FileNotFoundError(f"Emo-DB not found: {named}, and there are no .wav files in {looked}; {hint}")
        _download_and_extract(url, home, verbose=verbose)
        wav_dir = _find_wav_dir(candidates)
        if wav_dir is None:  # pragma: no cover - _download_and_extract checked for clips
            raise OSError(f"Emo-DB was extracted to {home / _EXTRACTED_DIR} but holds no wav/*.wav")
    corpus = _load(wav_dir)
    _warn_if_not_the_release(wav_dir, corpus.filenames)
    return corpus


def _warn_if_not_the_release(wav_dir: Path, filenames: np.ndarray) -> None:
    """Warn when a folder holds other clips than the release's 535 (by name; nothing is hashed)."""
    names = {os.path.splitext(os.path.basename(f))[0] + ".wav" for f in filenames}  # 03a01Fa.WAV too
    missing, unknown = sorted(set(EMODB_SHA256) - names), sorted(names - set(EMODB_SHA256))
    if missing or unknown:
        extra = f" and {count(len(unknown), 'clip')} not in it ({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''})"
        warnings.warn(
            f"{str(wav_dir)!r} holds {len(names) - len(unknown)} of the {len(EMODB_SHA256)} clips of the Emo-DB release"
            f"{extra if unknown else ''}: scores on it are not comparable with published ones",
            UserWarning,
            stacklevel=3,
        )


def _wav_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [Path(p) for p in folder_files(folder, (".wav",))]


def _find_wav_dir(candidates: list[Path]) -> Path | None:
    for folder in candidates:
        if _wav_files(folder):
            return folder
    return None


def _load(wav_dir: Path, hint: str = "") -> Bunch:
    """The Bunch of an Emo-DB-named folder of clips; ``hint`` ends the message for a foreign name."""
    paths = _wav_files(wav_dir)
    try:
        fields = [parse_emodb_filename(p.name) for p in paths]
    except ValueError as exc:
        raise ValueError(f"{exc} (in {str(wav_dir)!r}){hint}") from None
    target = np.array([f["emotion"] for f in fields], dtype=str)
    return Bunch(
        filenames=np.array([str(p.absolute()) for p in paths], dtype=str),
        target=target,
        speaker=np.array([f["speaker"] for f in fields], dtype=str),
        text=np.array([f["text"] for f in fields], dtype=str),
        target_names=np.unique(target),
        DESCR=DESCR,
    )


def _network_error(url: str, exc: BaseException) -> ConnectionError:
    # a URLError wraps the socket error ("[Errno 111] Connection refused"); an HTTPError says its status
    reason = exc.reason if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError) else exc
    return ConnectionError(
        f"could not download Emo-DB from {url}: {reason}. Download the archive manually, extract it "
        f"so that the clips are in <folder>/wav/*.wav, and set the {_ENV_VAR} environment "
        "variable (or pass data_home=) to that folder."
    )


def _download(url: str, dest: Path, *, verbose: bool) -> None:
    """Stream ``url`` into the already open-able file ``dest``, in chunks, with a progress bar."""
    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT)  # noqa: S310 - the URL is the caller's choice
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _network_error(url, exc) from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > _MAX_BYTES:  # said before a byte is read
            raise OSError(f"the download from {url} is larger than {_MAX_BYTES >> 20} MiB ({total >> 20} MiB): not "
                          "the Emo-DB archive; not downloaded")
        received = 0
        with open(dest, "wb") as fh, tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="Downloading Emo-DB",
            disable=bar_disabled(verbose),
        ) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK_SIZE)
                except (OSError, http.client.HTTPException) as exc:
                    raise _network_error(url, exc) from None
                if not chunk:
                    break
                received += len(chunk)
                if received > _MAX_BYTES:
                    raise OSError(f"the download from {url} is larger than {_MAX_BYTES >> 20} MiB: not the Emo-DB "
                                  "archive; stopped")
                fh.write(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise _network_error(url, OSError(f"transfer truncated: received {received} of {total} bytes"))


def _check_members(archive: zipfile.ZipFile, url: str, root: Path) -> None:
    """Refuse members with absolute paths, drive letters or ``..`` (path traversal), and an archive
    that would unpack to more than ``_MAX_BYTES``."""
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > _MAX_BYTES:
        raise OSError(f"the archive at {url} would unpack to {unpacked >> 20} MiB: not the Emo-DB archive; "
                      "refusing to extract it")
    root = root.resolve()
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        unsafe = name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None or ".." in parts
        if not unsafe:
            target = (root / name).resolve()
            unsafe = target != root and root not in target.parents
        if unsafe:
            raise OSError(
                f"the archive at {url} holds an unsafe member path {info.filename!r} (absolute or "
                "with '..'); refusing to extract it"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(wav_dir: Path, url: str) -> None:
    """Check every clip of an extracted download against the published SHA-256 sums, and that its
    wav/ folder holds no other audio (``03a01Wa.wav.flac`` would be read as a clip)."""
    from ._files import AUDIO_EXTENSIONS  # it reads Emo-DB's folders with this module's functions

    found = {p.name: p for p in _wav_files(wav_dir)}
    missing = sorted(set(EMODB_SHA256) - set(found))
    unexpected = sorted({Path(p).name for p in folder_files(wav_dir, AUDIO_EXTENSIONS)} - set(EMODB_SHA256))
    wrong = sorted(name for name, path in found.items() if name in EMODB_SHA256 and _sha256(path) != EMODB_SHA256[name])
    problems = []
    for what, names in (("with the wrong SHA-256 sum", wrong), ("missing", missing), ("not in Emo-DB", unexpected)):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            problems.append(f"{len(names)} {'clip' if len(names) == 1 else 'clips'} {what} ({', '.join(names[:3])}{more})")
    if problems:
        raise OSError(
            f"the archive downloaded from {url} is not the Emo-DB release sersk knows: {'; '.join(problems)}. "
            "Nothing was kept; try again later, or download and check the corpus by hand"
        )


def _download_and_extract(url: str, home: Path, *, verbose: bool) -> None:
    """Download the zip at ``url`` and move its contents, complete, to ``<home>/emodb``."""
    # the outermost folder this call creates (home or one above it): a failed download removes it
    # again, and each folder between, while empty
    created = next((folder for folder in reversed((home, *home.parents)) if not folder.exists()), None)
    final = home / _EXTRACTED_DIR
    try:
        home.mkdir(parents=True, exist_ok=True)
        if final.exists() and not (final.is_dir() and not any(final.iterdir())):
            raise FileExistsError(
                f"{final} exists but holds no wav/*.wav clips; remove or rename it so that Emo-DB can be "
                f"downloaded there, or point {_ENV_VAR} / data_home at the folder holding wav/"
            )
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".zip.part", dir=home)
    except OSError as exc:  # a folder that cannot be written, not the FileExistsError above
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise OSError(
            exc.errno, f"cannot download Emo-DB into {str(home)!r} ({exc.strerror}): point {_ENV_VAR} or data_home= "
            "(--data-home) at a folder you can write to, or at one holding Emo-DB's wav/",
        ) from None
    os.close(fd)
    tmp_zip = Path(tmp_name)
    tmp_dir: Path | None = None
    try:
        _download(url, tmp_zip, verbose=verbose)
        tmp_dir = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=home))  # private (0700): a staging folder
        extracted = tmp_dir / _EXTRACTED_DIR  # made as the user's umask says, as the clips are
        extracted.mkdir()
        try:
            with zipfile.ZipFile(tmp_zip) as archive:
                _check_members(archive, url, extracted)
                archive.extractall(extracted)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError,
                NotADirectoryError, IsADirectoryError, FileExistsError) as exc:  # the last 3: a file and folder alike named
            raise OSError(f"the file downloaded from {url} is not a valid zip archive: {exc}") from None
        if not _wav_files(extracted / "wav"):
            raise OSError(
                f"the archive at {url} holds no wav/ folder with .wav files; expected the Emo-DB "
                "download.zip, whose clips are in wav/"
            )
        _verify(extracted / "wav", url)
        try:
            with contextlib.suppress(FileNotFoundError):  # an empty folder, checked above (or gone meanwhile)
                final.rmdir()
            os.replace(extracted, final)
        except OSError:
            # Another process may have finished the same download first: use its copy.
            if not _wav_files(final / "wav"):
                raise
    finally:
        tmp_zip.unlink(missing_ok=True)
        if tmp_dir is not None and tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
        if created is not None and not final.exists():  # the failed download made them: leave nothing behind
            for folder in (home, *home.parents):  # each while empty: another process's download may be in it
                if folder == created.parent:
                    break
                try:
                    folder.rmdir()
                except OSError:  # not empty: another process uses it
                    break
