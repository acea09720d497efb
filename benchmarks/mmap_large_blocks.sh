#!/usr/bin/env bash
# Peak memory and time of the recipe's first epoch (75 copies, seed 0, 2-core CPU) when, instead of
# sersk's setting (no block ever mapped afresh: mmap off, freed memory kept), blocks of 32 MiB and
# more are mapped afresh and returned when freed (M_MMAP_THRESHOLD = 32 MiB, glibc's largest), and
# smaller blocks stay in the heap when freed. An experiment, not a sersk option.
# Usage: bash benchmarks/mmap_large_blocks.sh OUT_DIR
set -euo pipefail
out=$1
mkdir -p "$out"
/usr/bin/time -v python -c "
import contextlib, ctypes, sys
from unittest import mock
import sersk.nn.classifier

@contextlib.contextmanager
def map_large_blocks():
    libc = ctypes.CDLL('libc.so.6')
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD: freed heap memory kept
    try:
        yield
    finally:
        libc.mallopt(-1, 128 * 1024)
        libc.malloc_trim(0)

from sersk.cli import main
with mock.patch.object(sersk.nn.classifier, 'reuse_freed_memory', map_large_blocks):
    code = main(['reproduce', '--seed', '0', '--n-jobs', '2', '--device', 'cpu', '--epochs', '1',
                 '--out-dir', '$out/mmap32'])
sys.exit(code)
" > "$out/mmap32.log" 2>&1
echo "mmap from 32 MiB: $(grep -E 'Elapsed|Maximum resident|Minor|System time' "$out/mmap32.log" | tr -s ' ' | tr '\n' ';')" >> "$out/summary.txt"
