#!/bin/bash
# Wall time and peak RSS of the README's and the examples' commands, one after the other, on this
# machine: the figures next to each command in README.md and examples/. Needs SERSK_DATA (the
# corpus) and the package installed; writes benchmarks/results/timings_<tag>.txt (tag: $1, default
# "cpu"; RESULT overrides the path) and each command's output under a temporary folder (LOGS
# overrides it).
#
# Run: bash benchmarks/time_commands.sh [tag] [readme|examples|all|full|gpu]
#   readme: the README's commands only; examples: the examples only, sized down; all (default):
#   both; full: the examples at the sizes their TIME markers name (about 2 hours on 2 cores);
#   gpu: every command with a GPU TIME marker, the most used first. With DEADLINE (a Unix time)
#   set, each command is stopped at that time (exit 124) and the commands after it are skipped.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="${RESULT:-$ROOT/benchmarks/results/timings_${1:-cpu}.txt}"
W=${LOGS:-$(mktemp -d)}; mkdir -p "$W"
cd "$ROOT"
python - > "$W/quickstart.py" <<'PY'
import re
readme = open("README.md").read()
print(re.search(r"## Quick start\n+```python\n(.*?)```", readme, re.S).group(1))
PY
python - > "$W/emodb.csv" <<'PY'
from sersk.datasets import fetch_emodb
e = fetch_emodb(download_if_missing=False)
print("path,label,speaker")
for p, l, s in zip(e.filenames, e.target, e.speaker):
    print(f"{p},{l},{s}")
PY

run() {  # run NAME COMMAND...: appends the command, its wall time, peak RSS and last lines to $OUT
  local name="$1"; shift
  local log="$W/$(echo "$name" | tr ' /' '__').log"
  local limit=()
  if [ -n "${DEADLINE:-}" ]; then
    local left=$((DEADLINE - $(date +%s)))
    if [ "$left" -le 5 ]; then echo "== $name: skipped, DEADLINE reached" >> "$OUT"; return; fi
    limit=(timeout "$left")
  fi
  echo "== $name: $*" >> "$OUT"
  (cd "$W" && "${limit[@]}" python "$ROOT/benchmarks/timed.py" "$@" > "$log" 2> "$W/time.log")
  tail -1 "$W/time.log" >> "$OUT"
  tail -4 "$log" | sed 's/^/   | /' >> "$OUT"
}

echo "$(date -u +%FT%TZ)  commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "${COMMIT:-unknown}")  $(nproc) cores  $(python -c 'import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')" > "$OUT"
if [ "${2:-all}" = gpu ]; then
  run "reproduce (full recipe)" sersk reproduce --out-dir "$W/full"
  run "quick start (README)" python "$W/quickstart.py"
  run "train" sersk train "$SERSK_DATA/wav" --out "$W/model.joblib" --n-augmentations 5
  run "predict" sersk predict "$W/model.joblib" "$SERSK_DATA/wav"
  run "evaluate" sersk evaluate "$W/model.joblib" "$SERSK_DATA/wav" --out-dir "$W/eval"
  run "leave_one_speaker_out --preset tuned" python "$ROOT/examples/leave_one_speaker_out.py" --preset tuned
  run "reproduce --quick" sersk reproduce --quick --out-dir "$W/quick"
  run "reference_split n5" python "$ROOT/examples/reference_split.py" --n-augmentations 5
  run "reproduce --n-augmentations 20" sersk reproduce --n-augmentations 20 --out-dir "$W/aug20"
  run "leave_one_speaker_out n2 03 08" python "$ROOT/examples/leave_one_speaker_out.py" --n-augmentations 2 --speakers 03 08
  run "dask_gpu_cluster" python "$ROOT/examples/dask_gpu_cluster.py"
  run "grid_search n2 folds 5" python "$ROOT/examples/grid_search.py" --n-augmentations 2 --folds 5
  run "own_corpus n10 folds 5" python "$ROOT/examples/own_corpus.py" "$W/emodb.csv" --n-augmentations 10 --folds 5
  run "reference_split (full size)" python "$ROOT/examples/reference_split.py"
  run "reproduce --speaker-independent" sersk reproduce --speaker-independent --out-dir "$W/loso"
  echo "done $(date -u +%FT%TZ)" >> "$OUT"; exit 0
fi
if [ "${2:-all}" = readme ] || [ "${2:-all}" = all ]; then
  run "reproduce --quick" sersk reproduce --quick --out-dir "$W/quick"
  run "quick start (README)" python "$W/quickstart.py"
  run "train" sersk train "$SERSK_DATA/wav" --out "$W/model.joblib" --n-augmentations 5
  run "predict" sersk predict "$W/model.joblib" "$SERSK_DATA/wav"
  run "evaluate" sersk evaluate "$W/model.joblib" "$SERSK_DATA/wav" --out-dir "$W/eval"
fi
if [ "${2:-all}" = full ]; then
  run "grid_search n2 folds 5" python "$ROOT/examples/grid_search.py" --n-augmentations 2 --folds 5
  run "own_corpus n10 folds 5" python "$ROOT/examples/own_corpus.py" "$W/emodb.csv" --n-augmentations 10 --folds 5
  run "reference_split (full size)" python "$ROOT/examples/reference_split.py"
fi
if [ "${2:-all}" = readme ] || [ "${2:-all}" = full ]; then echo "done $(date -u +%FT%TZ)" >> "$OUT"; exit 0; fi
run "reference_split n5" python "$ROOT/examples/reference_split.py" --n-augmentations 5
run "leave_one_speaker_out n2 03 08" python "$ROOT/examples/leave_one_speaker_out.py" --n-augmentations 2 --speakers 03 08
run "dask_grid_search" python "$ROOT/examples/dask_grid_search.py"
run "dask_gpu_cluster" python "$ROOT/examples/dask_gpu_cluster.py"
run "own_corpus n2 folds 2" python "$ROOT/examples/own_corpus.py" "$W/emodb.csv" --n-augmentations 2 --folds 2
run "grid_search n2 folds 2" python "$ROOT/examples/grid_search.py" --n-augmentations 2 --folds 2
echo "done $(date -u +%FT%TZ)" >> "$OUT"
