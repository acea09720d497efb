"""predict_files on files that fail and on long files: the time of skipping, the memory of a chunk.

1. Skipping bad files. With ``skip_errors=True`` a chunk that fails is now retried in halves, down
   to the files that fail; before, it was retried file by file, a batch per file. 256 Emo-DB clips
   with 1, 8 or 64 empty files among them, both ways in this process, in alternating rounds.
2. Long files. A chunk now holds at most ``CHUNK_SECONDS`` of audio besides ``chunk_size`` files;
   before, 256 files whatever their length. Files of 5 minutes predicted with the default
   ``chunk_size``, each way in a fresh process: the peak resident memory over the process's level
   after a warm-up (Linux's VmHWM, reset then).

The model: the recipe's network trained one epoch on 24 Emo-DB clips with one augmented copy each.

Run: SERSK_DATA=... python benchmarks/bench_predict_files.py [--rounds 3] [--long-files 24]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf
from _machine import cpu_line, peak_memory_over, start_peak_memory

from sersk import batch, make_pipeline, predict_files
from sersk.datasets import fetch_emodb
from sersk.exceptions import AudioFileError, InvalidSignalError


def chunk_retried_file_by_file(model, paths, skip_errors):
    """``_predict_chunk`` before: a failing chunk was retried as one batch per file."""
    try:
        return paths, model.predict_proba(paths), {}
    except (AudioFileError, InvalidSignalError, OSError) as exc:
        if not skip_errors:
            raise
        if len(paths) == 1:
            return [], np.empty((0, len(model.classes_))), {paths[0]: str(exc)}
    return batch._merge_chunks([chunk_retried_file_by_file(model, [p], skip_errors) for p in paths],
                               len(model.classes_))


def fitted_model(emodb):
    pipe = make_pipeline(n_augmentations=1, max_epochs=1, random_state=0, device="cpu").set_params(net__verbose=0)
    return pipe.fit(emodb.filenames[:24], emodb.target[:24])


def skipping(model, emodb, rounds: int, folder: Path) -> None:
    clips = list(emodb.filenames[:256])
    print(f"1. 256 Emo-DB clips with empty files among them, skip_errors=True, {rounds} rounds alternating")
    for n_bad in (1, 8, 64):
        paths = list(clips)
        for k in range(n_bad):
            empty = folder / f"empty{k}.wav"
            empty.touch()
            paths.insert((k + 1) * len(clips) // (n_bad + 1), str(empty))
        times: dict[str, list[float]] = {"file by file (before)": [], "halves (now)": []}
        for _ in range(rounds):
            for name in times:
                retry = chunk_retried_file_by_file if "before" in name else batch._predict_chunk
                with mock.patch.object(batch, "_predict_chunk", retry):
                    start = time.perf_counter()
                    result = predict_files(model, paths, skip_errors=True)
                    times[name].append(time.perf_counter() - start)
                assert len(result.errors) == n_bad and len(result.paths) == len(clips)
        cells = ", ".join(f"{name} {np.median(t):.2f} s (runs {' '.join(f'{x:.2f}' for x in t)})"
                          for name, t in times.items())
        print(f"  {n_bad} empty file{'s' if n_bad > 1 else ''}: {cells}")


def long_files_run(setting: str, folder: str) -> None:
    emodb = fetch_emodb(os.environ.get("SERSK_DATA"))
    model = fitted_model(emodb)
    paths = sorted(str(p) for p in Path(folder).glob("long*.wav"))
    predict_files(model, emodb.filenames[:4])  # warm-up
    level = start_peak_memory()
    limit = float("inf") if setting == "before" else batch.CHUNK_SECONDS
    with mock.patch.object(batch, "CHUNK_SECONDS", limit):
        start = time.perf_counter()
        predict_files(model, paths)
        seconds = time.perf_counter() - start
    peak = peak_memory_over(level)
    print(f"  {setting:6s}: peak {peak:6.0f} MiB over the process's level, {seconds:5.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each way of skipping")
    parser.add_argument("--long-files", type=int, default=24, help="files of 5 minutes for part 2")
    args = parser.parse_args()
    print(cpu_line())
    emodb = fetch_emodb(os.environ.get("SERSK_DATA"))
    with tempfile.TemporaryDirectory() as folder:
        skipping(fitted_model(emodb), emodb, args.rounds, Path(folder))
        rng = np.random.default_rng(0)
        for k in range(args.long_files):
            sf.write(Path(folder) / f"long{k:03d}.wav", rng.uniform(-0.5, 0.5, 5 * 60 * 16000), 16000, subtype="PCM_16")
        print(f"2. {args.long_files} files of 5 minutes, chunk_size=256 (the default), "
              f"CHUNK_SECONDS={batch.CHUNK_SECONDS:g} now; each in a fresh process")
        for setting in ("before", "now"):
            sys.stdout.flush()  # before the child's lines
            subprocess.run([sys.executable, __file__, "long", setting, folder], check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["long"]:
        long_files_run(sys.argv[2], sys.argv[3])
    else:
        main()
