"""Which code the libraries behind the speed goals run on this processor, and how fast.

Issue 10's goals are ratios: training against torch's float32 matmul (MKL), the log-mels against
librosa (numpy's FFT). MKL picks its kernels by processor, so the ratios move with the machine.
This prints MKL's own description of the code it chose (the header ``MKL_VERBOSE`` prints, from a
child process), oneDNN's and OpenBLAS's (numpy's), then, on 1 and 2 threads:
a 2048^3 float32 product through torch's matmul (MKL), as a oneDNN 1x1 conv (the network's convs'
library; its time includes oneDNN's reorders of the operands) and through numpy (OpenBLAS); and
512 real FFTs of 2048 samples (one group of the log-mel transform) through torch (MKL), numpy
(pocketfft, always one thread: librosa's FFT) and scipy (pocketfft).

Run: python benchmarks/mkl_code_path.py
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import scipy.fft
import torch
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.dirname(__file__))
from _machine import cpu_line  # noqa: E402
from bench_features import best_of  # noqa: E402
from bench_train import _rate, matmul_rate, onednn_gemm_rate  # noqa: E402


def verbose_lines(probe: str, variable: str) -> list[str]:
    """What a child process running ``probe`` prints on stdout with ``variable=1`` in its environment."""
    result = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, variable: "1"}, capture_output=True, text=True
    )
    return result.stdout.splitlines()


def mkl_header() -> str:
    """The first line MKL prints with ``MKL_VERBOSE=1``: its version and the code path it chose."""
    lines = verbose_lines("import torch; a = torch.ones(64, 64); a @ a", "MKL_VERBOSE")
    headers = [line for line in lines if line.startswith("MKL_VERBOSE") and "SGEMM" not in line]
    return headers[0] if headers else "(MKL printed no header)"


def onednn_isa() -> str:
    """The instruction set oneDNN reports it uses (``ONEDNN_VERBOSE=1``)."""
    probe = "import torch; torch.nn.functional.conv2d(torch.ones(1, 256, 1, 256), torch.ones(256, 256, 1, 1))"
    isas = [line.split(",isa:", 1)[1] for line in verbose_lines(probe, "ONEDNN_VERBOSE") if ",isa:" in line]
    return f"oneDNN: {isas[0]}" if isas else "(oneDNN printed no instruction set)"


def numpy_matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    return _rate(lambda: a @ b, 2 * n**3, repeats)


def fft_microseconds(fft, repeats: int = 50) -> float:
    """Microseconds per 2048-sample transform of ``fft`` over a (512, 2048) batch: the best of 5
    means of ``repeats`` calls."""
    fft()
    best, _ = best_of(lambda: [fft() for _ in range(repeats)])
    return 1e6 * best / repeats / 512


def main() -> None:
    print(cpu_line())
    print(f"torch {torch.__version__}, numpy {np.__version__}, scipy {scipy.__version__}")
    print(mkl_header())
    print(onednn_isa())
    for info in threadpool_info():
        if info["internal_api"] == "openblas":
            print(f"OpenBLAS {info['version']} ({info['prefix']}): kernels for {info['architecture']}")
    frames = torch.randn(512, 2048)
    frames_np = frames.numpy()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with threadpool_limits(threads):
            mkl, onednn, openblas = matmul_rate(), onednn_gemm_rate(), numpy_matmul_rate()
            ffts = {
                "torch (MKL)": fft_microseconds(lambda: torch.fft.rfft(frames)),
                "numpy": fft_microseconds(lambda: np.fft.rfft(frames_np)),
                "scipy": fft_microseconds(lambda: scipy.fft.rfft(frames_np, workers=threads)),
            }
        print(f"{threads} thread(s): float32 2048^3 product, GFLOP/s: torch matmul (MKL) {mkl / 1e9:6.1f}, "
              f"oneDNN 1x1 conv {onednn / 1e9:6.1f} ({onednn / mkl:.2f}x MKL), numpy (OpenBLAS) {openblas / 1e9:6.1f}")
        print(f"{threads} thread(s): real FFT of 2048 samples, us each: "
              + ", ".join(f"{name} {us:.2f}" for name, us in ffts.items()))


if __name__ == "__main__":
    main()
