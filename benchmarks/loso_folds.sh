#!/bin/bash
# Leave-one-speaker-out one fold per process: `sersk reproduce --speaker-independent --speakers S`
# for each speaker S, into OUTDIR/speakerS/ (results.json, figures, log.txt), with each fold's wall
# time and peak RSS appended to OUTDIR/folds.txt as soon as it ends. A run stopped early keeps every
# finished fold; benchmarks/summarize_runs.py --pool OUTDIR/speaker*/results.json pools them.
#
# Run: [DEADLINE=unix-time] bash benchmarks/loso_folds.sh OUTDIR SPEAKER... [-- REPRODUCE-OPTION...]
#   e.g. bash benchmarks/loso_folds.sh benchmarks/results/loso_reference_seed0_gpu 10 11 -- --seed 0
#   With DEADLINE set, the fold running at that time is stopped and the folds after it are skipped.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1; shift
SPEAKERS=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do SPEAKERS+=("$1"); shift; done
[ $# -gt 0 ] && shift
mkdir -p "$OUT"
echo "$(date -u +%FT%TZ)  $(nproc) cores  $(python -c 'import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')  options: $*" >> "$OUT/folds.txt"
for s in "${SPEAKERS[@]}"; do
  limit=()
  if [ -n "${DEADLINE:-}" ]; then
    left=$((DEADLINE - $(date +%s)))
    if [ "$left" -le 30 ]; then echo "speaker $s: skipped, DEADLINE reached" >> "$OUT/folds.txt"; continue; fi
    limit=(timeout "$left")
  fi
  mkdir -p "$OUT/speaker$s"
  "${limit[@]}" python "$ROOT/benchmarks/timed.py" sersk reproduce --speaker-independent --speakers "$s" \
    --out-dir "$OUT/speaker$s" "$@" > "$OUT/speaker$s/log.txt" 2> "$OUT/speaker$s/stderr.txt"
  # the fold's score row (speaker, clips, accuracy %, UAR %); an epoch row of the training table can also
  # start with the speaker's number
  echo "speaker $s: $(tail -1 "$OUT/speaker$s/stderr.txt")  $(grep -m1 -E "^ *$s +[0-9]+ +[0-9.]+ % +[0-9.]+ %" "$OUT/speaker$s/log.txt" | tr -s ' ')" >> "$OUT/folds.txt"
done
