"""The processor a benchmark ran on, for the first line of its output.

Speeds, and their shares of the matmul rate, differ between the machines a session may get: the
same 2-core allowance has run on at least two processors.
"""

from __future__ import annotations

import os
import platform


def cpu_line() -> str:
    """``model name``, family and model, the L3 cache (``index3``) from Linux's ``/proc`` and ``/sys``, and the usable cores."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        model = f"{fields.get('model name', model)} (family {fields.get('cpu family')}, model {fields.get('model')})"
    except OSError:
        pass
    cache = ""
    index = "/sys/devices/system/cpu/cpu0/cache/index3/size"
    if os.path.exists(index):
        with open(index) as f:
            cache = f", L3 {f.read().strip()}"
    return f"CPU: {model}{cache}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def start_peak_memory() -> float:
    """The process's resident memory now (MiB), from which its peak is counted afresh (Linux's
    ``VmHWM``, reset through ``/proc/self/clear_refs``). ``ru_maxrss`` cannot be reset, and a process
    forked from a larger one starts from the parent's: a child's peak may never exceed it."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mib("VmRSS")


def peak_memory_over(level: float) -> float:
    """The peak resident memory (MiB) since :func:`start_peak_memory` returned ``level``, over it."""
    return _status_mib("VmHWM") - level
