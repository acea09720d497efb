"""sersk.datasets: Emo-DB file names, the real corpus, and the download path against a local server.

Every download test talks to an HTTP server on 127.0.0.1 started by a fixture; nothing leaves
this machine.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import io
import os
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sersk.datasets import fetch_emodb, find_audio_files, get_data_home, load_corpus, parse_emodb_filename
from sersk.datasets import _emodb

CORPUS_HOME = Path(os.environ.get("SERSK_DATA", "/work/shared/data/emodb"))
SYNTHETIC_NAMES = ["03a01Wa.wav", "08b02Tc.wav", "16a05Nb.wav"]


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("03a01Wa.wav", {"speaker": "03", "text": "a01", "emotion": "anger", "version": "a"}),
        ("16b10Lb.wav", {"speaker": "16", "text": "b10", "emotion": "boredom", "version": "b"}),
        ("08a02Ec.wav", {"speaker": "08", "text": "a02", "emotion": "disgust", "version": "c"}),
        ("10a04Ad.wav", {"speaker": "10", "text": "a04", "emotion": "fear", "version": "d"}),
        ("11b01Fa.wav", {"speaker": "11", "text": "b01", "emotion": "happiness", "version": "a"}),
        ("12a07Ta", {"speaker": "12", "text": "a07", "emotion": "sadness", "version": "a"}),
        ("/some/dir/14a07Na.WAV", {"speaker": "14", "text": "a07", "emotion": "neutral", "version": "a"}),
        (Path("x") / "09b03Wb.wav", {"speaker": "09", "text": "b03", "emotion": "anger", "version": "b"}),
    ],
)
def test_parse_emodb_filename(name, expected):
    assert parse_emodb_filename(name) == expected


@pytest.mark.parametrize(
    "name",
    ["", "readme.txt", "3a01Wa.wav", "03a01Xa.wav", "03a01wa.wav", "03a01Wab.wav", "03a01W.wav", "03A01Wa.wav",
     "03a1xWa.wav", "03a01Wa.wav.bak"],
)
def test_parse_emodb_filename_rejects(name):
    with pytest.raises(ValueError, match=r"not an Emo-DB file name: expected NNtttEv\.wav") as info:
        parse_emodb_filename(name)
    assert repr(os.path.basename(name)) in str(info.value)


# --------------------------------------------------------------------------- data home


def test_get_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SERSK_DATA", str(tmp_path / "from_env"))
    assert get_data_home() == tmp_path / "from_env"
    assert get_data_home(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("SERSK_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == tmp_path / "sersk_data"
    assert get_data_home("~/other") == tmp_path / "other"
    assert not (tmp_path / "sersk_data").exists()  # not created


# --------------------------------------------------------------------------- the real corpus


@pytest.fixture(scope="module")
def emodb():
    if not any((CORPUS_HOME / "wav").glob("*.wav")):
        pytest.skip(f"Emo-DB corpus not found under {CORPUS_HOME / 'wav'} (set SERSK_DATA)")
    return fetch_emodb(CORPUS_HOME, download_if_missing=False)


def test_real_corpus(emodb):
    assert len(emodb.filenames) == len(emodb.target) == len(emodb.speaker) == len(emodb.text) == 535
    assert collections.Counter(emodb.target) == {
        "anger": 127,
        "boredom": 81,
        "disgust": 46,
        "fear": 69,
        "happiness": 71,
        "sadness": 62,
        "neutral": 79,
    }
    assert list(emodb.target_names) == sorted(_emodb._recipe.EMOTIONS.values())
    assert sorted(set(emodb.speaker)) == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    assert "disgust" not in set(emodb.target[emodb.speaker == "08"])
    assert len(set(emodb.text)) == 10
    names = [os.path.basename(f) for f in emodb.filenames]
    assert names == sorted(names)
    assert all(os.path.isabs(f) and os.path.isfile(f) for f in emodb.filenames)
    for arr in (emodb.filenames, emodb.target, emodb.speaker, emodb.text, emodb.target_names):
        assert isinstance(arr, np.ndarray) and arr.dtype.kind == "U"
    assert "Burkhardt" in emodb.DESCR and "535" in emodb.DESCR


def test_real_corpus_through_its_wav_folder(emodb):
    np.testing.assert_array_equal(fetch_emodb(CORPUS_HOME / "wav").filenames, emodb.filenames)


def test_embedded_checksums_are_those_of_the_corpus(emodb):
    """The SHA-256 list sersk checks downloads against is the one shipped with the corpus."""
    sums = CORPUS_HOME / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"{sums} not found")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    assert {k.removeprefix("wav/"): v for k, v in listed.items()} == _emodb.EMODB_SHA256
    assert sorted(_emodb.EMODB_SHA256) == [os.path.basename(f) for f in emodb.filenames]


# --------------------------------------------------------------------------- local HTTP server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Keep urllib off any proxy configured in the environment: traffic goes to 127.0.0.1 only."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


class _Server:
    """What the handler serves: path -> (body, header length or None, bytes actually sent)."""

    def __init__(self):
        self.routes: dict[str, tuple[bytes, int | None, int]] = {}
        self.requests: list[str] = []
        self.base = ""

    def serve(self, path: str, body: bytes, *, send: int | None = None) -> str:
        """Serve ``body`` at ``path`` (announcing its full length but sending only ``send`` bytes)."""
        self.routes[path] = (body, len(body), len(body) if send is None else send)
        return self.base + path


@pytest.fixture
def server():
    state = _Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            state.requests.append(self.path)
            if self.path not in state.routes:
                self.send_error(404)
                return
            body, length, send = state.routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body[:send])

        def log_message(self, *args):  # keep the test output quiet
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _wav_bytes(path: Path, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(1600)).astype(np.float32), 16000, subtype="PCM_16")
    return path.read_bytes()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def emodb_zip(tmp_path, monkeypatch) -> bytes:
    """A small Emo-DB-like download.zip: three 0.1 s, 16 kHz clips under wav/, plus a text file.

    Its clips' SHA-256 sums stand in for the 535 of the real corpus while the test runs.
    """
    src = tmp_path / "src"
    src.mkdir()
    members = {f"wav/{name}": _wav_bytes(src / name, i) for i, name in enumerate(SYNTHETIC_NAMES)}
    monkeypatch.setattr(
        _emodb, "EMODB_SHA256", {name[4:]: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    )
    members["erklaerung.txt"] = b"not a clip"
    return _zip(members)


def _assert_nothing_left(home: Path):
    assert not home.exists(), f"left behind: {home} and {sorted(p.name for p in home.iterdir())}"


# --------------------------------------------------------------------------- download path


def test_download_and_cache(server, emodb_zip, tmp_path):
    home = tmp_path / "home"
    url = server.serve("/download.zip", emodb_zip)
    with pytest.raises(FileNotFoundError, match="Emo-DB not found") as info:
        fetch_emodb(home, download_if_missing=False, url=url)
    assert str(home / "wav") in str(info.value) and str(home / "emodb" / "wav") in str(info.value)
    assert "SERSK_DATA" in str(info.value)
    assert not home.exists() and server.requests == []

    data = fetch_emodb(home, download_if_missing=True, url=url, verbose=False)
    assert server.requests == ["/download.zip"]
    assert sorted(p.name for p in home.iterdir()) == ["emodb"]  # no temporary file or folder left
    extracted = home / "emodb" / "wav"
    assert sorted(p.name for p in extracted.iterdir()) == sorted(SYNTHETIC_NAMES)
    assert (home / "emodb" / "erklaerung.txt").is_file()
    assert list(data.filenames) == [str(extracted / n) for n in sorted(SYNTHETIC_NAMES)]
    assert list(data.target) == ["anger", "sadness", "neutral"]
    assert list(data.speaker) == ["03", "08", "16"]
    assert list(data.text) == ["a01", "b02", "a05"]
    assert list(data.target_names) == ["anger", "neutral", "sadness"]
    assert data.DESCR == _emodb.DESCR
    info = sf.info(data.filenames[0])
    assert info.samplerate == 16000 and info.frames == 1600

    again = fetch_emodb(home, download_if_missing=True, url=url, verbose=False)
    assert server.requests == ["/download.zip"]  # found on disk: no second download
    np.testing.assert_array_equal(again.filenames, data.filenames)
    for where in (home, home / "emodb", extracted):  # the home, the download's folder, or wav/ itself
        np.testing.assert_array_equal(fetch_emodb(where, download_if_missing=False).target, data.target)


@pytest.mark.parametrize("how", ["data_home", "SERSK_DATA"])
def test_a_named_folder_without_the_corpus_is_an_error_not_a_download(how, server, emodb_zip, tmp_path, monkeypatch):
    home = tmp_path / "typo"
    url = server.serve("/d.zip", emodb_zip)
    if how == "SERSK_DATA":
        monkeypatch.setenv("SERSK_DATA", str(home))
    with pytest.raises(FileNotFoundError) as info:
        fetch_emodb(home if how == "data_home" else None, url=url)
    message = str(info.value)
    assert f"{how} names {str(home)!r}" in message
    assert all(str(p) in message for p in (home / "wav", home / "emodb" / "wav", home))
    assert "download_if_missing=True" in message
    assert server.requests == [] and not home.exists()
    data = fetch_emodb(home if how == "data_home" else None, download_if_missing=True, url=url, verbose=True)
    assert len(data.filenames) == 3 and all(f.startswith(str(home / "emodb" / "wav")) for f in data.filenames)


def test_only_the_default_location_downloads_by_itself(server, emodb_zip, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SERSK_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    data = fetch_emodb(url=server.serve("/d.zip", emodb_zip), verbose=True)
    assert all(f.startswith(str(tmp_path / "sersk_data" / "emodb" / "wav")) for f in data.filenames)
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: no progress bar


def test_wav_at_home_preferred_and_foreign_file_rejected(tmp_path, server):
    home = tmp_path / "home"
    (home / "wav").mkdir(parents=True)
    _wav_bytes(home / "wav" / "03a01Wa.wav", 0)
    (home / "wav" / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match=r"holds 1 of the 535 clips of the Emo-DB release: scores on it are not"):
        data = fetch_emodb(home, url=server.serve("/x.zip", b""), verbose=False)
    assert list(data.target) == ["anger"] and server.requests == []

    _wav_bytes(home / "wav" / "my_recording.wav", 1)
    with pytest.raises(ValueError, match="'my_recording.wav' is not an Emo-DB file name"):
        fetch_emodb(home, download_if_missing=False)
    with pytest.raises(ValueError, match="'my_recording.wav' is not an Emo-DB file name.*path,label"):
        load_corpus(home)


def _damaged_zip() -> bytes:
    """A zip whose one (compressible, so deflated) member has bytes flipped inside its data."""
    data = bytearray(_zip({"wav/notes.txt": b"".join(b"line %d of a text\n" % i for i in range(2000))}))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("wav/notes.txt")
    start = info.header_offset + 30 + len(info.filename) + 100  # past the local header
    data[start:start + 40] = bytes(b ^ 0x5A for b in data[start:start + 40])
    return bytes(data)


@pytest.mark.parametrize(
    "case",
    ["not_a_zip", "truncated", "damaged_member", "no_wav_folder", "empty_wav_folder", "path_traversal",
     "absolute_path", "wrong_checksum", "missing_clip", "audio_not_in_the_release", "file_and_folder_alike_named",
     "unpacks_too_large", "downloads_too_large"],
)
def test_failed_download_leaves_nothing(case, server, emodb_zip, tmp_path, monkeypatch):
    (tmp_path / "p1" / "other").mkdir(parents=True)  # p1 holds something else: it stays
    home = tmp_path / "p1" / "p2" / "p3" / "home"  # p2, p3 and home are made by the download
    clip = zipfile.ZipFile(io.BytesIO(emodb_zip)).read(f"wav/{SYNTHETIC_NAMES[0]}")
    if case == "not_a_zip":
        url, expected = server.serve("/d.zip", b"<html>not found</html>" * 100), "not a valid zip archive"
    elif case == "truncated":
        url, expected = server.serve("/d.zip", emodb_zip, send=len(emodb_zip) // 2), "truncated"
    elif case == "damaged_member":  # its deflate stream is broken: zlib's error, not zipfile's
        url, expected = server.serve("/d.zip", _damaged_zip()), "not a valid zip archive: Error -3"
    elif case == "no_wav_folder":
        url, expected = server.serve("/d.zip", _zip({f"audio/{SYNTHETIC_NAMES[0]}": clip})), "holds no wav/ folder"
    elif case == "empty_wav_folder":
        url, expected = server.serve("/d.zip", _zip({"wav/readme.txt": b"x"})), "holds no wav/ folder"
    elif case == "path_traversal":
        members = {f"wav/{SYNTHETIC_NAMES[0]}": clip, "../escaped.wav": clip}
        url, expected = server.serve("/d.zip", _zip(members)), "unsafe member path"
    elif case == "absolute_path":
        members = {f"wav/{SYNTHETIC_NAMES[0]}": clip, "/tmp/sersk-absolute.wav": clip}
        url, expected = server.serve("/d.zip", _zip(members)), "unsafe member path"
    elif case == "wrong_checksum":
        archive = zipfile.ZipFile(io.BytesIO(emodb_zip))
        members = {name: archive.read(name) for name in archive.namelist()}
        members[f"wav/{SYNTHETIC_NAMES[1]}"] = members[f"wav/{SYNTHETIC_NAMES[1]}"][:-2] + b"\x00\x01"
        url, expected = server.serve("/d.zip", _zip(members)), rf"1 clip with the wrong SHA-256 sum \({SYNTHETIC_NAMES[1]}\)"
    elif case == "audio_not_in_the_release":  # it was kept, and read as a clip of the corpus
        archive = zipfile.ZipFile(io.BytesIO(emodb_zip))
        members = {name: archive.read(name) for name in archive.namelist()}
        members[f"wav/{SYNTHETIC_NAMES[0]}.flac"] = clip
        url, expected = server.serve("/d.zip", _zip(members)), rf"1 clip not in Emo-DB \({SYNTHETIC_NAMES[0]}.flac\)"
    elif case == "file_and_folder_alike_named":  # was a NotADirectoryError
        members = {f"wav/{SYNTHETIC_NAMES[0]}": clip, "wav/x": b"x", "wav/x/y": b"y"}
        url, expected = server.serve("/d.zip", _zip(members)), "not a valid zip archive"
    elif case == "unpacks_too_large":  # a small archive of a large member was unpacked in full before any check
        monkeypatch.setattr(_emodb, "_MAX_BYTES", 200_000)
        url, expected = server.serve("/d.zip", _zip({f"wav/{SYNTHETIC_NAMES[0]}": bytes(300_000)})), "would unpack to"
    elif case == "downloads_too_large":
        monkeypatch.setattr(_emodb, "_MAX_BYTES", len(emodb_zip) - 1)
        url, expected = server.serve("/d.zip", emodb_zip), "larger than"
    else:
        url, expected = server.serve("/d.zip", _zip({f"wav/{SYNTHETIC_NAMES[0]}": clip})), "2 clips missing"

    with pytest.raises(OSError, match=expected) as info:
        fetch_emodb(home, download_if_missing=True, url=url, verbose=False)
    if case in ("wrong_checksum", "missing_clip"):
        assert "Nothing was kept" in str(info.value)
    assert url in str(info.value)
    assert server.requests == ["/d.zip"]
    _assert_nothing_left(home)
    assert not (tmp_path / "p1" / "p2").exists() and (tmp_path / "p1" / "other").is_dir()
    assert not (tmp_path / "escaped.wav").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_download_is_readable_as_the_umask_says(server, emodb_zip, tmp_path):
    """The corpus folder was made readable by everyone (0755) whatever the umask."""
    home = tmp_path / "home"
    old = os.umask(0o027)
    try:
        fetch_emodb(home, download_if_missing=True, url=server.serve("/d.zip", emodb_zip), verbose=False)
    finally:
        os.umask(old)
    for path in (home / "emodb", home / "emodb" / "wav"):
        assert path.stat().st_mode & 0o777 == 0o750, path
    assert (home / "emodb" / "wav" / SYNTHETIC_NAMES[0]).stat().st_mode & 0o777 == 0o640


def test_http_error(server, tmp_path):
    home = tmp_path / "home"
    url = server.base + "/missing.zip"
    with pytest.raises(ConnectionError, match="could not download Emo-DB") as info:
        fetch_emodb(home, download_if_missing=True, url=url, verbose=False)
    assert url in str(info.value) and "404" in str(info.value) and "SERSK_DATA" in str(info.value)
    _assert_nothing_left(home)


def test_unreachable_url(tmp_path):
    with socket.socket() as sock:  # find a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.zip"
    home = tmp_path / "home"
    with pytest.raises(ConnectionError, match="could not download Emo-DB") as info:
        fetch_emodb(home, download_if_missing=True, url=url, verbose=False)
    assert url in str(info.value) and "download the archive manually" in str(info.value).lower()
    # one clear error: no chained traceback from urllib or the socket
    assert info.value.__cause__ is None and info.value.__suppress_context__
    _assert_nothing_left(home)


def test_a_failed_download_leaves_another_processs_download_alone(server, tmp_path, monkeypatch):
    """The folder a failed download made was removed with all it held: another process downloading
    into it meanwhile lost its partial file."""
    from sersk.datasets import _emodb

    home = tmp_path / "home"  # made by the failing download; the other process finds it there

    def fail_while_another_downloads(url, dest, *, verbose):
        (home / "other-process.zip.part").write_bytes(b"half a download")
        raise ConnectionError("could not download Emo-DB")

    monkeypatch.setattr(_emodb, "_download", fail_while_another_downloads)
    with pytest.raises(ConnectionError):
        fetch_emodb(home, download_if_missing=True, url=server.base + "/d.zip", verbose=False)
    assert [p.name for p in home.iterdir()] == ["other-process.zip.part"]


def test_interrupted_download_leaves_nothing(server, emodb_zip, tmp_path, monkeypatch):
    """A KeyboardInterrupt during extraction removes the partial download and the temporary folder."""
    home = tmp_path / "home"
    url = server.serve("/d.zip", emodb_zip)

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "extractall", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch_emodb(home, download_if_missing=True, url=url, verbose=False)
    _assert_nothing_left(home)


def test_the_release_check_reads_names_in_any_case_and_counts_right(recwarn):
    release = sorted(_emodb.EMODB_SHA256)
    _emodb._warn_if_not_the_release(Path("wav"), [f"/d/{name[:-4]}.WAV" for name in release])  # the whole release
    assert not recwarn.list
    with pytest.warns(UserWarning, match=r"holds 534 of the 535 clips of the Emo-DB release and 1 clip not in it \(03a01Wz.wav\)"):
        _emodb._warn_if_not_the_release(Path("wav"), [f"/d/{name}" for name in release[1:]] + ["/d/03a01Wz.wav"])


def test_a_download_another_process_finished_first_is_used(server, emodb_zip, tmp_path, monkeypatch):
    """Both found an empty emodb/ and downloaded; the other moved its copy in first."""
    home = tmp_path / "home"
    (home / "emodb").mkdir(parents=True)
    verify = _emodb._verify

    def the_other_process_finishes(wav_dir, url):
        verify(wav_dir, url)
        shutil.copytree(wav_dir, home / "emodb" / "wav")

    monkeypatch.setattr(_emodb, "_verify", the_other_process_finishes)
    data = fetch_emodb(home, download_if_missing=True, url=server.serve("/d.zip", emodb_zip), verbose=False)
    assert len(data.filenames) == 3 and all(f.startswith(str(home / "emodb" / "wav")) for f in data.filenames)
    assert sorted(p.name for p in home.iterdir()) == ["emodb"]  # its own copy removed


def test_existing_nonempty_emodb_folder_is_not_clobbered(server, emodb_zip, tmp_path):
    home = tmp_path / "home"
    (home / "emodb").mkdir(parents=True)
    (home / "emodb" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="remove or rename it"):
        fetch_emodb(home, download_if_missing=True, url=server.serve("/d.zip", emodb_zip), verbose=False)
    assert (home / "emodb" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in home.iterdir()) == ["emodb"]


# --------------------------------------------------------------------------- a corpus of your own


@pytest.fixture
def clips(tmp_path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for i, name in enumerate(SYNTHETIC_NAMES):
        _wav_bytes(folder / name, i)
    return folder


def test_a_download_into_a_folder_that_cannot_be_written_says_where_to_point(tmp_path, monkeypatch):
    """An unwritable home (a read-only HOME, with SERSK_DATA unset) gave '[Errno 30] Read-only file
    system: ...' alone."""
    import errno

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(OSError, match=r"cannot download Emo-DB into '.*home' \(Read-only file system\): point "
                                      r"SERSK_DATA or data_home= \(--data-home\) at a folder you can write to"):
        fetch_emodb(tmp_path / "home", download_if_missing=True, url="http://127.0.0.1:9/emodb.zip", verbose=False)


def test_load_corpus_reads_an_emodb_named_folder_as_fetch_emodb_does(clips):
    home = clips.parent / "home"
    shutil.copytree(clips, home / "wav")
    for folder in (clips, home / "wav"):  # hidden files (macOS's "._" resource files) are not clips
        (folder / "._03a01Wa.wav").write_bytes(b"\x00\x05\x16\x07")
    (clips / "09a01Wa.wav").symlink_to(clips / "gone.wav")  # a broken link is a clip: reading it will say so
    assert str((clips / "09a01Wa.wav").absolute()) in load_corpus(clips).filenames
    (clips / "09a01Wa.wav").unlink()
    for where in (clips, home):
        data = load_corpus(where)
        assert set(data) == {"filenames", "target", "speaker", "text", "target_names", "DESCR"}
        assert list(data.target) == ["anger", "sadness", "neutral"] and list(data.speaker) == ["03", "08", "16"]
        assert list(data.text) == ["a01", "b02", "a05"] and list(data.target_names) == ["anger", "neutral", "sadness"]


def test_load_corpus_reads_a_csv(clips, tmp_path):
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_text(f"path,label,speaker\nclips/{SYNTHETIC_NAMES[0]},angry,s1\n\n{clips / SYNTHETIC_NAMES[1]},calm,s2\n")
    data = load_corpus(csv_path)
    assert list(data.filenames) == [str(clips / n) for n in SYNTHETIC_NAMES[:2]]
    assert list(data.target) == ["angry", "calm"] and list(data.speaker) == ["s1", "s2"] and data.text is None
    assert data.filenames.dtype.kind == data.target.dtype.kind == "U"
    csv_path.write_text(f"path,label\nclips/{SYNTHETIC_NAMES[0]},angry\n")
    assert load_corpus(csv_path).speaker is None
    csv_path.write_text(f"Path,Label,Speaker\nclips/{SYNTHETIC_NAMES[0]},angry,s1\n")  # any case
    assert list(load_corpus(csv_path).speaker) == ["s1"]


def test_a_csv_read_by_a_relative_path_gives_absolute_file_paths(clips, tmp_path, monkeypatch):
    (tmp_path / "corpus.csv").write_text(f"path,label\nclips/{SYNTHETIC_NAMES[0]},angry\n")
    monkeypatch.chdir(tmp_path)
    (file,) = load_corpus("corpus.csv").filenames
    assert file == str(clips / SYNTHETIC_NAMES[0])  # still names the clip from another working folder


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("path,emotion\na.wav,anger\n", ValueError, "no 'label' column"),
        # the first line as written (it was shown lower-cased), and the delimiter named
        ("Clips/A.wav,Anger\n", ValueError, r"no 'path' or 'label' column \(first line: Clips/A\.wav,Anger\)"),
        ("path;label\na.wav;anger\n", ValueError, "cells are separated by commas, not ';'"),
        ("path\tlabel\na.wav\tanger\n", ValueError, "cells are separated by commas, not '\\\\t'"),
        ("path,label\n", ValueError, "lists no files"),
        ("path,label\nclips/03a01Wa.wav,\n", ValueError, "line 2: the 'label' cell is empty"),
        ("path,label\nclips/03a01Wa.wav,a\ngone.wav,b\n", FileNotFoundError, "line 3: audio file 'gone.wav' not found"),
        ("path,label,speaker\nclips/03a01Wa.wav,happy,sad,03\n", ValueError, "line 2: more fields than the header's 3"),
        ("path,label\nclips/03a01Wa.wav,x\n./clips/03a01Wa.wav,y\n", ValueError, "twice \\(lines 2 and 3\\)"),
        ("path,label\nclips/03a01Wa.wav,x\nclips,y\n", ValueError, "line 3: 'clips' is a folder"),
        # a quote never closed swallowed the rest of the file into one cell: "the 'label' cell is empty"
        ('path,label\nclips/03a01Wa.wav,x\n"clips/08b02Tc.wav,y\nclips/16a05Nb.wav,z\n', ValueError,
         "line 3: a quote opened in the 'path' cell is not closed \\(the cell runs on to the end of line 4\\)"),
        ('path,label\nclips/03a01Wa.wav,x\n"clips/08b02Tc.wav,y\n', ValueError, "line 3: a quote opened in the 'path' cell"),
        ('path,label\nclips/03a01Wa.wav,"x\n', ValueError, "line 2: a quote opened in the 'label' cell"),
        ('path,label\nclips/03a01Wa.wav,x\n"clips/08b02Tc.wav,y', ValueError, "line 3: a quote opened there is not closed"),
    ],
)
def test_load_corpus_names_what_is_wrong_in_a_csv(text, error, match, clips, tmp_path):
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_text(text)
    with pytest.raises(error, match=match) as info:
        load_corpus(csv_path)
    assert str(csv_path) in str(info.value)


def test_a_csv_naming_one_file_by_two_names_is_refused(clips, tmp_path):
    """Keyed on the resolved path, two names of one file (a hard link here; a.WAV and a.wav on macOS)
    passed as two clips, which could land in training and test."""
    os.link(clips / "03a01Wa.wav", clips / "other_name.wav")
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_text("path,label\nclips/03a01Wa.wav,x\nclips/other_name.wav,y\n")
    with pytest.raises(ValueError, match="twice \\(lines 2 and 3\\)"):
        load_corpus(csv_path)


def test_a_csv_on_a_drive_without_inode_numbers_is_read(clips, tmp_path, monkeypatch):
    """Some Windows network and virtual drives give every file inode 0: every CSV of two files or
    more was refused as listing a file twice."""
    real_stat = Path.stat

    def no_inode(self, *args, **kwargs):
        st = real_stat(self, *args, **kwargs)
        return os.stat_result((st.st_mode, 0, *tuple(st)[2:]))

    monkeypatch.setattr(Path, "stat", no_inode)
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_text(f"path,label\nclips/{SYNTHETIC_NAMES[0]},x\nclips/{SYNTHETIC_NAMES[1]},y\n")
    assert len(load_corpus(csv_path).filenames) == 2
    csv_path.write_text(f"path,label\nclips/{SYNTHETIC_NAMES[0]},x\n./clips/{SYNTHETIC_NAMES[0]},y\n")
    with pytest.raises(ValueError, match="twice \\(lines 2 and 3\\)"):  # told apart by their resolved paths
        load_corpus(csv_path)


def test_a_csv_name_in_the_other_unicode_form_finds_its_file(clips, tmp_path):
    """macOS writes names decomposed (NFD); a CSV typed elsewhere names them composed (NFC): the file,
    visibly there, was "not found"."""
    import unicodedata

    composed, folder = "M\u00e4dchen.wav", "J\u00fcrgen"
    shutil.copy(clips / SYNTHETIC_NAMES[0], clips / unicodedata.normalize("NFD", composed))
    (clips / unicodedata.normalize("NFD", folder)).mkdir()  # a folder in the other form, a file as typed
    shutil.copy(clips / SYNTHETIC_NAMES[1], clips / unicodedata.normalize("NFD", folder) / composed)
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_text(f"path,label\nclips/{composed},x\nclips/{folder}/{composed},y\n")
    files = load_corpus(csv_path).filenames
    assert all(Path(f).is_file() for f in files)  # macOS's own file system finds either form itself
    assert [unicodedata.normalize("NFC", Path(f).name) for f in files] == [composed, composed]


def test_a_csv_that_is_not_utf8_asks_for_utf8(tmp_path):
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_bytes("path,label\nclips/03a01Wa.wav,\u00e9nerv\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"is not a UTF-8 CSV file \(.*\); save it as UTF-8$"):
        load_corpus(csv_path)


def test_load_corpus_names_the_line_the_csv_reader_fails_at(clips, tmp_path):
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_text(f'path,label\nclips/03a01Wa.wav,x\n"{"x" * 200_000}')  # a quote never closed, at length
    with pytest.raises(ValueError, match="corpus.csv', line 3: cannot be parsed \\(field larger than field limit"):
        load_corpus(csv_path)


def test_a_csv_with_windows_paths_gets_a_hint(clips, tmp_path):
    table = tmp_path / "data.csv"
    table.write_text("path,label\nclips\\03a01Wa.wav,anger\n")
    with pytest.raises(FileNotFoundError, match=r"not found at .*; paths are separated by '/' here, not '\\'$"):
        load_corpus(table)


def test_load_corpus_missing_or_empty(clips, tmp_path):
    with pytest.raises(ValueError, match="03a01Wa.wav' is an audio file; a corpus is a folder .* or a CSV file"):
        load_corpus(clips / "03a01Wa.wav")
    with pytest.raises(FileNotFoundError, match="nowhere' does not exist"):
        load_corpus(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="holds no .wav files directly .* a folder per class, list the files in a CSV"):
        load_corpus(tmp_path)


def test_find_audio_files(clips, tmp_path):
    (clips / "notes.txt").write_text("x")
    (clips / "sub").mkdir()
    sf.write(clips / "sub" / "deeper.wav", np.zeros(100, np.float32), 16000)
    sf.write(clips / "a.flac", np.zeros(100, np.float32), 16000)
    (clips / "._03a01Wa.wav").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource file: hidden, not audio
    (clips / "b.WAV").symlink_to(tmp_path / "moved.wav")  # a broken link: kept, so that reading it says so
    (clips / "c.wav").symlink_to(clips / "a.flac")
    (clips / "d.wav").symlink_to(clips / "d.wav")  # a link to itself: a broken link, not an error for the folder
    assert find_audio_files([clips, "x.wav"]) == [str(clips / "03a01Wa.wav"), str(clips / "08b02Tc.wav"),
                                                   str(clips / "16a05Nb.wav"), str(clips / "a.flac"),
                                                   str(clips / "b.WAV"), str(clips / "c.wav"), str(clips / "d.wav"),
                                                   "x.wav"]
    assert find_audio_files(str(clips / "sub")) == [str(clips / "sub" / "deeper.wav")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no audio files"):
        find_audio_files([tmp_path / "empty"])


def test_splits_refuse_labels_or_speakers_that_would_index_wrongly():
    from sersk.model_selection import reference_split, speaker_disjoint_split

    with pytest.raises(ValueError, match=r"y has shape \(10, 2\)"):  # was: indices of the flattened array
        reference_split(np.array(["a", "b"] * 10).reshape(10, 2))
    with pytest.raises(ValueError, match="groups has a missing speaker"):  # was: NaN clips in no part
        speaker_disjoint_split(["a"] * 20, [np.nan] * 10 + [1.0] * 5 + [2.0] * 5)
    with pytest.raises(ValueError, match="y is empty"):
        reference_split([])


def test_odd_arguments_to_the_corpus_readers_are_refused(clips, tmp_path):
    with pytest.raises(ValueError, match="download_if_missing=0; expected True, False or None"):  # 0 downloaded
        fetch_emodb(tmp_path / "none", download_if_missing=0)
    with pytest.raises(ValueError, match="corpus path is empty"):  # was: the working folder
        load_corpus("")
    csv_path = tmp_path / "twice.csv"
    csv_path.write_text(f"path,label,label\nclips/{SYNTHETIC_NAMES[0]},a,b\n")
    with pytest.raises(ValueError, match="names the column 'label' twice"):  # was: the last one kept
        load_corpus(csv_path)
