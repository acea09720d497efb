"""Files: writing them atomically (a temporary file in the target's folder, then moved into place),
and listing the ones a folder holds."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def folder_files(folder: str | os.PathLike[str], extensions: tuple[str, ...]) -> list[str]:
    """The files of ``folder`` (not its subfolders) whose extension, in any case, is in ``extensions``.

    Hidden files are left out (macOS leaves ``._name.wav`` resource files beside files copied to
    other disks); broken links are kept, so that reading them names them rather than dropping them
    unseen. Sorted by name.
    """
    with os.scandir(folder) as entries:
        found = [
            e.path for e in entries
            if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in extensions and _file_or_broken_link(e)
        ]
    return sorted(found, key=os.path.basename)


def _file_or_broken_link(entry: os.DirEntry[str]) -> bool:
    try:
        if entry.is_file():
            return True
    except OSError:  # a link to itself (ELOOP): a broken link
        pass
    return entry.is_symlink() and not os.path.exists(entry.path)


def _new_temporary_file(folder: Path, name: str) -> tuple[int, str]:
    """Create ``.{name}.XXXXXXXX.part`` in ``folder`` (``name`` cut to 100 characters): its
    descriptor and path. It gets the mode a new file gets (0o666 less the umask, applied by the
    system), so the umask is never read: ``os.umask`` can only be read by setting it, which changed
    it for a moment for every thread."""
    for _ in range(100):  # the name cut short: a target name near the system's limit (255 bytes) still fits
        candidate = folder / f".{name[:100]}.{secrets.token_hex(4)}.part"
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), str(candidate)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


# what writing a file can run into that is about where it goes, not what is written
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EIO, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Write a file atomically: yield a temporary file in the target's folder, then move it in place.

    The folder is created if needed. On any exception (Ctrl-C included) the temporary file and the
    folders made for it are removed, and an existing file at ``path`` is left as it was. A file at
    ``path`` that may not be written (read-only) is refused (``PermissionError``), as writing it in
    place would be.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Yields
    ------
    fh : binary file object
    """
    target = Path(os.fspath(path))
    if target.is_dir():
        raise IsADirectoryError(f"{str(target)!r} is a folder; give a file name to write to")
    check_replaceable(target)
    made: list[Path] = []  # the folders this call creates, outermost first
    try:
        folder = Path(os.path.abspath(target.parent))  # "ghost/../out" is "out", whether or not ghost exists
        _make_folders(folder, made)
        mode = target.stat().st_mode & 0o777 if target.exists() else None  # None: a new file's
        try:
            fd, tmp = _new_temporary_file(folder, target.name)
        except OSError as exc:
            raise type(exc)(exc.errno, f"cannot write to {str(target.parent)!r} ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            named = isinstance(exc, OSError) and str(exc.strerror).startswith("cannot write")  # by an inner block
            if isinstance(exc, OSError) and exc.errno in _FULL and not named:  # a full disk or quota: name the file
                raise type(exc)(exc.errno, f"cannot write {str(target)!r} ({exc.strerror})") from None
            raise
    except BaseException:
        for folder in reversed(made):  # deepest first; one another process has filled since stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def file_identity(file: Path) -> tuple[int, int] | str:
    """What tells files apart whatever names they go by: the device and inode number (a path's
    ``resolve()`` keeps the case as given on macOS, where ``a.WAV`` and ``a.wav`` are one file; a hard
    link is the same file too). Where the file system gives no inode number (0: some Windows network
    and virtual drives), the resolved path, in the system's case."""
    stat = file.stat()
    if stat.st_ino == 0:
        return os.path.normcase(os.path.realpath(file))
    return stat.st_dev, stat.st_ino


def check_replaceable(path: Path) -> None:
    """Refuse a file that exists and may not be written (read-only), as writing it in place would:
    moving a new file over it, as ``atomic_output`` does, replaced it all the same."""
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, f"cannot write {str(path)!r} (it is read-only)")


def check_writable_folder(folder: str | os.PathLike) -> None:
    """Raise now the ``OSError`` that writing a file into ``folder`` would raise later (a read-only
    folder, a file in the way), so that a long run does not fail at its end. Leaves nothing behind:
    the folders it had to create are removed again."""
    made: list[Path] = []
    try:
        absolute = Path(os.path.abspath(folder))
        for attempt in range(3):  # a parent that another run's check made and removed meanwhile
            try:
                _make_folders(absolute, made)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        fd, tmp = _new_temporary_file(absolute, "write-check")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write to {os.fspath(folder)!r} ({exc.strerror})") from None
    finally:
        for created in reversed(made):
            with contextlib.suppress(OSError):
                created.rmdir()


def _make_folders(folder: Path, made: list[Path]) -> None:
    """Create ``folder`` (absolute) and its missing parents, appending to ``made`` each one this
    call created, outermost first (a folder another process creates meanwhile is not counted)."""
    for parent in [*reversed(folder.parents), folder]:
        try:
            parent.mkdir()
        except FileExistsError:  # a file in the way: writing under it names the problem
            continue
        except OSError:  # macOS refuses mkdir("/") with EISDIR, Windows mkdir("C:\\") with EACCES
            if parent.is_dir():
                continue
            raise
        made.append(parent)
