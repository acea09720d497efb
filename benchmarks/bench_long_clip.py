"""Memory and time of predicting one long recording: the log-mels and the recipe's network.

Before, a clip was featurised in one torch call and run through the conv blocks whole, so memory
grew with its length without bound (the first block's output alone is 32 KiB a frame). Now the
log-mels of a clip longer than ``batch_frames`` are made in runs of that many frames, and in eval
mode the network runs a clip longer than ``WINDOW_FRAMES`` through its convs in overlapping windows.
"whole" is the code before, "windowed" today's: each (setting, length) runs in a fresh process, on
a random clip, with the recipe's network (random weights: memory and time do not depend on them),
and prints the peak resident memory over the process's level after a warm-up on a 3 s clip, the
seconds taken, and the logits, which must agree between the two settings.

Run: python benchmarks/bench_long_clip.py [--minutes 1 5 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from unittest import mock

from _machine import cpu_line

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
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with mock.patch.object(sersk.nn.module, "WINDOW_FRAMES", 10**9) if setting == "whole" else nullcontext():
        logits = predict(wave)
    seconds = time.perf_counter() - start
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"setting": setting, "minutes": minutes, "peak_mib": round(peak), "seconds": round(seconds, 2),
                      "logits": logits[0].tolist()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 10], help="clip lengths")
    args = parser.parse_args()
    print(cpu_line())
    print(f"{'clip':>8}  {'whole (before)':>22}  {'windowed (now)':>22}  largest logit difference")
    for minutes in args.minutes:
        runs = {}
        for setting in ("whole", "windowed"):
            out = subprocess.run([sys.executable, __file__, "run", setting, str(minutes)], check=True,
                                 capture_output=True, text=True).stdout
            runs[setting] = json.loads(out.strip().splitlines()[-1])
        cells = [f"{runs[s]['peak_mib']:6d} MiB in {runs[s]['seconds']:6.2f} s" for s in ("whole", "windowed")]
        diff = max(abs(a - b) for a, b in zip(runs["whole"]["logits"], runs["windowed"]["logits"]))
        print(f"{minutes:6g} min  {cells[0]:>22}  {cells[1]:>22}  {diff:.2e}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        one_run(sys.argv[2], float(sys.argv[3]))
    else:
        main()
