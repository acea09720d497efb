"""Pack what a GPU check needs to travel with the repo (Emo-DB, the missing wheels), and unpack it there.

The GPU machine this project borrows receives the working tree and at most 64 MiB in all, and the
repo takes about 15 MiB (results without the figures of the data, which .gitignore keeps out): the
45 MiB of WAVs would leave little room beside it. FLAC stores the same samples in about 30 MiB. Both ``pack`` and ``wheels`` end by printing what would travel with ``.corpus`` and
``.whl`` carried, and fail when it is over the limit. Unpacking writes the WAVs again and checks every file against ``SHA256SUMS``; the few
files whose WAV header FLAC does not reproduce travel as they are.

That machine's image has torch, scikit-learn, numpy, scipy, pytest (with xdist and timeout) and
more, for Python 3.12, but not sersk's other dependencies: ``wheels`` downloads those (``WHEELS``)
at the versions installed here, for Python 3.12 on x86-64, without their own dependencies (3 MiB).
Dask is left out: its tests (CPU only) skip there.

Run:
    python benchmarks/device_bundle.py pack $SERSK_DATA .corpus       # here (.corpus is git-ignored)
    python benchmarks/device_bundle.py wheels .whl                    # here (.whl is git-ignored)
    python benchmarks/device_bundle.py unpack .corpus /tmp/emodb      # there; then SERSK_DATA=/tmp/emodb
    # or, there, all of it and the checks: bash benchmarks/device_session.sh

An ignored folder travels only when the device tool's ``carry`` names it. The source is a corpus
folder holding ``wav/``, ``SHA256SUMS`` and ``README.md``, as the project's shared copy does (a
download by ``fetch_emodb`` has only ``wav/``).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import soundfile as sf

KEPT = ("SHA256SUMS", "README.md")
# sersk's dependencies (and the tests') that the GPU image lacks, with theirs
WHEELS = (
    "skorch", "imbalanced-learn", "sklearn-compat", "soundfile", "cffi", "pycparser", "soxr",
    "audiomentations", "numpy-minmax", "numpy-rms", "python-stretch", "librosa", "audioread", "pooch",
    "decorator", "platformdirs",
)
CARRIED = (".corpus", ".whl")
PAYLOAD_LIMIT = 64 * 2**20  # the device tool's limit on the working tree plus carried folders
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "any")


def _checksums(home: Path) -> dict[str, str]:
    lines = (home / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wav_again(flac: Path, wav: Path) -> None:
    samples, rate = sf.read(flac, dtype="int16")
    sf.write(wav, samples, rate, format="WAV", subtype="PCM_16")


def pack(corpus: Path, bundle: Path) -> None:
    """Write each WAV of ``corpus`` as FLAC, or as itself where its WAV would not come back alike."""
    (bundle / "flac").mkdir(parents=True, exist_ok=True)
    (bundle / "wav").mkdir(exist_ok=True)
    for name in KEPT:
        shutil.copy(corpus / name, bundle / name)
    for name, digest in _checksums(corpus).items():
        wav = corpus / name
        flac = bundle / "flac" / f"{wav.stem}.flac"
        samples, rate = sf.read(wav, dtype="int16")
        sf.write(flac, samples, rate, format="FLAC", subtype="PCM_16")
        _wav_again(flac, bundle / "check.wav")
        if _sha256(bundle / "check.wav") != digest:
            flac.unlink()
            shutil.copy(wav, bundle / "wav" / wav.name)
    (bundle / "check.wav").unlink(missing_ok=True)


def unpack(bundle: Path, corpus: Path) -> int:
    """Write the corpus's WAVs from ``bundle`` and check them; the number of files that differ."""
    (corpus / "wav").mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        shutil.copy(bundle / name, corpus / name)
    for flac in (bundle / "flac").glob("*.flac"):
        _wav_again(flac, corpus / "wav" / f"{flac.stem}.wav")
    for wav in (bundle / "wav").glob("*.wav"):
        shutil.copy(wav, corpus / "wav" / wav.name)
    sums = _checksums(bundle)
    bad = [n for n, d in sums.items() if not (corpus / n).is_file() or _sha256(corpus / n) != d]
    print(f"{len(sums) - len(bad)} of {len(sums)} files match SHA256SUMS" + (f"; differ: {bad[:5]}" if bad else ""))
    return len(bad)


def wheels(target: Path) -> int:
    """Download ``WHEELS`` at the versions installed here, for the GPU machine's Python; pip's status."""
    shutil.rmtree(target, ignore_errors=True)  # one version of each: two stop the install there
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    pins = [f"{name}=={version(name)}" for name in WHEELS]
    return subprocess.run([
        sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
        "3.12", "--implementation", "cp", *platforms, "-d", str(target), *pins,
    ]).returncode


def payload(root: Path) -> int:
    """Bytes that travel to the GPU machine: tracked and untracked-not-ignored files, and ``CARRIED``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = [root / name.decode() for name in listed if name]
    files += [p for folder in CARRIED for p in (root / folder).rglob("*")]
    return sum(p.stat().st_size for p in files if p.is_file() and not p.is_symlink())


def _report_payload() -> int:
    size = payload(Path(__file__).resolve().parent.parent)
    over = size > PAYLOAD_LIMIT
    print(f"payload with {' and '.join(CARRIED)}: {size / 2**20:.1f} MiB of {PAYLOAD_LIMIT / 2**20:.0f} MiB"
          + (": OVER the limit, the device tool will refuse the run" if over else ""))
    return 1 if over else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="action", required=True)
    for name, source in (("pack", "the corpus folder"), ("unpack", "the bundle folder")):
        action = actions.add_parser(name)
        action.add_argument("source", type=Path, help=source)
        action.add_argument("target", type=Path)
    actions.add_parser("wheels").add_argument("target", type=Path)
    args = parser.parse_args()
    if args.action == "pack":
        pack(args.source, args.target)
        return _report_payload()
    if args.action == "wheels":
        return wheels(args.target) or _report_payload()
    return 1 if unpack(args.source, args.target) else 0


if __name__ == "__main__":
    sys.exit(main())
