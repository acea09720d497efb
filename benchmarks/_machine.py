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
