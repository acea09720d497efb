"""Memory and time of predicting one long recording: decoding, the log-mels and the recipe's network.

Before, a clip was featurised in one torch call and run through the conv blocks whole, so memory
grew with its length without bound (the first block's output alone is 32 KiB a frame). Now the
log-mels of a clip longer than ``batch_frames`` are made in runs of that many frames, and in eval
mode the network runs a clip longer than ``WINDOW_FRAMES`` through its convs in overlapping windows.
"whole" is the code before, "windowed" today's: each (setting, length) runs in a fresh process, on
a random clip, with the recipe's network (random weights: memory and time do not depend on them),
and prints the peak resident memory over the process's level after a warm-up on a 3 s clip (Linux's
VmHWM, reset then), the
seconds taken, and the logits, which must agree between the two settings. The last columns are
decoding alone (``read_audio``) of a 48 kHz stereo 16-bit WAV of that length to 16 kHz mono:
before, the file was read whole with both channels, averaged, and resampled at once; now it is
read in blocks and resampled in pieces (the same samples, up to float rounding: tests/test_io.py).

Run: python benchmarks/bench_long_clip.py [--minutes 1 5 10 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

from _machine import cpu_line, peak_memory_over, start_peak_memory

SAMPLE_RATE = 16000


def one_run(setting: str, minutes: float) -> None:
    import numpy as np
    import torch

    import sersk.nn.module
    from sersk import CNNLSTM, LogMelTransformer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = CNNLSTM().eval()
    logmel = LogMelTransformer(batch_frames=10**9 if setting == "whole" else None).fit()

    def predict(wave: np.ndarray) -> np.ndarray:
        log_mel = torch.from_numpy(logmel.transform([wave])[0])[None]
        with torch.no_grad():
            return net(log_mel, torch.tensor([log_mel.shape[2]])).numpy()

    rng = np.random.default_rng(0)
    predict(rng.uniform(-0.5, 0.5, 3 * SAMPLE_RATE).astype(np.float32))  # warm-up
    wave = rng.uniform(-0.5, 0.5, int(minutes * 60 * SAMPLE_RATE)).astype(np.float32)
    level = start_peak_memory()
    start = time.perf_counter()
    with mock.patch.object(sersk.nn.module, "WINDOW_FRAMES", 10**9) if setting == "whole" else nullcontext():
        logits = predict(wave)
    seconds = time.perf_counter() - start
    peak = peak_memory_over(level)
    print(json.dumps({"setting": setting, "minutes": minutes, "peak_mib": round(peak), "seconds": round(seconds, 2),
                      "logits": logits[0].tolist()}))


def decode_whole(path: str) -> None:
    """``read_audio`` before: the whole file with its channels, averaged, resampled at once."""
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    from sersk.io import _resampling_ratio

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    ratio = _resampling_ratio(rate, SAMPLE_RATE)
    AF.resample(torch.from_numpy(data.mean(axis=1, dtype=np.float32)), ratio.numerator, ratio.denominator)


def decoding_run(setting: str, path: str) -> None:
    from sersk.io import read_audio

    decode = decode_whole if setting == "whole" else read_audio
    decode(stereo_48k_wav(1 / 60, str(Path(path).parent)))  # warm-up: the imports, torchaudio's first resampling
    level = start_peak_memory()
    start = time.perf_counter()
    decode(path)
    seconds = time.perf_counter() - start
    peak = peak_memory_over(level)
    print(json.dumps({"peak_mib": round(peak), "seconds": round(seconds, 2)}))


def stereo_48k_wav(minutes: float, folder: str) -> str:
    import numpy as np
    import soundfile as sf

    path = f"{folder}/stereo48k_{minutes:g}min.wav"
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (int(minutes * 60 * 48000), 2)).astype(np.float32)
    sf.write(path, noise, 48000, subtype="PCM_16")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 10], help="clip lengths")
    args = parser.parse_args()
    print(cpu_line())
    print(f"{'':8}  {'log-mels and network':^48}  {'':16}  {'decoding a 48 kHz stereo WAV':^48}")
    print(f"{'clip':>8}  {'whole (before)':>22}  {'windowed (now)':>22}  {'logits differ by':>16}  "
          f"{'whole (before)':>22}  {'in pieces (now)':>22}")

    def child(*argv: str) -> dict:
        out = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.minutes:
            runs = {setting: child("run", setting, str(minutes)) for setting in ("whole", "windowed")}
            wav = stereo_48k_wav(minutes, folder)
            runs.update({f"decoding {setting}": child("decode", setting, wav) for setting in ("whole", "pieces")})
            cells = {s: f"{runs[s]['peak_mib']:6d} MiB in {runs[s]['seconds']:6.2f} s" for s in runs}
            diff = max(abs(a - b) for a, b in zip(runs["whole"]["logits"], runs["windowed"]["logits"]))
            print(f"{minutes:6g} min  {cells['whole']:>22}  {cells['windowed']:>22}  {diff:16.2e}  "
                  f"{cells['decoding whole']:>22}  {cells['decoding pieces']:>22}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        one_run(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1:2] == ["decode"]:
        decoding_run(sys.argv[2], sys.argv[3])
    else:
        main()
