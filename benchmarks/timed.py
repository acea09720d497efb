"""Run a command; print its wall time, the peak RSS of its largest process and its exit status.

``/usr/bin/time -f "wall %e s  peak RSS %M KB  exit %x"`` in Python, for machines without GNU
time; the line goes to stderr, last. A SIGTERM (from ``timeout``) is passed on to the command,
which then reports exit 124, as ``timeout`` does.

Run: python benchmarks/timed.py COMMAND [ARG ...]
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time


def main() -> int:
    t0 = time.perf_counter()
    child = subprocess.Popen(sys.argv[1:])
    stopped = []

    def stop(signum, frame):
        stopped.append(signum)
        child.terminate()

    signal.signal(signal.SIGTERM, stop)
    code = child.wait()
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    code = 124 if stopped else code
    print(f"   wall {wall:.2f} s  peak RSS {peak_kb} KB  exit {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
