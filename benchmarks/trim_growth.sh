#!/usr/bin/env bash
# Peak memory and time of the recipe's first epoch (75 copies, seed 0, 2-core CPU) under several
# heap-trim thresholds (sersk.utils._malloc.TRIM_GROWTH_BYTES, in MiB), one run after the other.
# Usage: bash benchmarks/trim_growth.sh OUT_DIR MIB [MIB ...]
set -euo pipefail
out=$1; shift
mkdir -p "$out"
for mib in "$@"; do
  /usr/bin/time -v python -c "
import sys
import sersk.utils._malloc as malloc
malloc.TRIM_GROWTH_BYTES = $mib << 20
from sersk.cli import main
sys.exit(main(['reproduce', '--seed', '0', '--n-jobs', '2', '--device', 'cpu', '--epochs', '1',
               '--out-dir', '$out/grow_$mib']))
" > "$out/grow_$mib.log" 2>&1
  echo "grow $mib MiB: $(grep -E 'Elapsed|Maximum resident' "$out/grow_$mib.log" | tr -s ' ' | tr '\n' ';')" >> "$out/summary.txt"
done
