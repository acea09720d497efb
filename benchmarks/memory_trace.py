"""Where the recipe's resident memory goes while it trains on the CPU: one line per training step.

Runs the steps of ``make_pipeline(random_state=SEED)`` on the reference split's training clips (seed
0) one after the other, as ``sersk reproduce`` does, and trains the network for the given number of
epochs. For each training step it writes the
padded batch shape, the process's peak resident memory during the step (``VmHWM``, reset before the
step through ``/proc/self/clear_refs``), the resident memory after it, and glibc's own account of its
heap after it (``mallinfo2``: bytes in use, free bytes held, bytes in mmapped blocks). The summary
splits the peak into what is in use and what the heap holds free.

Run: python benchmarks/memory_trace.py OUT.tsv [N_AUGMENTATIONS] [EPOCHS]   (default 75, 1)
"""

from __future__ import annotations

import ctypes
import sys
import time

import numpy as np
from skorch.callbacks import Callback

from sersk import make_pipeline
from sersk.datasets import fetch_emodb
from sersk.model_selection import reference_split
from sersk.utils._malloc import _LIBC, _resident_bytes

SEED = 0
MIB = 2**20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
    )]


_LIBC.mallinfo2.restype = _Mallinfo2


def heap() -> tuple[int, int, int]:
    """Bytes in use (heap + mmapped), free bytes the heap holds, bytes in mmapped blocks."""
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks, info.hblkhd


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


class MemoryTrace(Callback):
    def __init__(self, out):
        self.out = out

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            reset_peak()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        x = batch[0]["x"] if isinstance(batch[0], dict) else batch[0]
        used, free, mapped = heap()
        self.out.write(f"{x.shape[0]}\t{x.shape[-1]}\t{peak_bytes() / MIB:.0f}\t{_resident_bytes() / MIB:.0f}\t"
                       f"{used / MIB:.0f}\t{free / MIB:.0f}\t{mapped / MIB:.0f}\n")
        self.out.flush()


def main() -> None:
    path = sys.argv[1]
    n_augmentations = int(sys.argv[2]) if len(sys.argv) > 2 else 75
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    emodb = fetch_emodb(download_if_missing=False)
    X, y = np.asarray(emodb.filenames), np.asarray(emodb.target)
    split = reference_split(y, random_state=SEED)
    with open(path, "w") as out:
        out.write("batch\tframes\tpeak_mib\tresident_mib\theap_used_mib\theap_free_mib\tmmapped_mib\n")
        pipe = make_pipeline(n_augmentations=n_augmentations, max_epochs=epochs, device="cpu", n_jobs=2,
                             random_state=SEED)
        net = pipe["net"].set_params(callbacks=[("memory_trace", MemoryTrace(out))])
        t0 = time.perf_counter()
        # the pipeline's own steps, one after the other, as EmotionPipeline.fit runs them
        waves = pipe["load"].fit_transform(X[split.train])
        copies, y_copies = pipe["augment"].fit_resample(waves, y[split.train])
        log_mels = pipe["logmel"].fit_transform(copies)
        del waves, copies
        X_val = pipe["logmel"].transform(pipe["load"].transform(X[split.validation]))
        used, free, _ = heap()
        print(f"after featurisation ({time.perf_counter() - t0:.0f} s): resident {_resident_bytes() / MIB:.0f} MiB, "
              f"heap in use {used / MIB:.0f} MiB, free {free / MIB:.0f} MiB; "
              f"log-mels {sum(x.nbytes for x in log_mels) / MIB:.0f} MiB", flush=True)
        reset_peak()
        net.fit(log_mels, y_copies, validation_data=(X_val, y[split.validation]))
    trace = np.loadtxt(path, skiprows=1, ndmin=2)
    top = trace[np.argmax(trace[:, 2])]
    print(f"{len(trace)} steps; highest peak {top[2]:.0f} MiB at a step of {top[0]:.0f} x {top[1]:.0f} frames, "
          f"when the heap held {top[4]:.0f} MiB in use and {top[5]:.0f} MiB free after the step")
    print(f"process peak since featurisation: {peak_bytes() / MIB:.0f} MiB")


if __name__ == "__main__":
    main()
