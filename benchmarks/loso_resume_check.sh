#!/bin/bash
# A leave-one-speaker-out run cut short, then resumed: `sersk reproduce --speaker-independent` with
# the given options is sent SIGTERM once two folds are in OUTDIR/folds/, then run again with
# --resume (under /usr/bin/time -v). OUTDIR gets part1.log, part2.log and part2_time_v.txt beside
# the run's own outputs; compare its results.json with an uninterrupted run's.
#
# Run: bash benchmarks/loso_resume_check.sh OUTDIR [REPRODUCE-OPTION...]
#   e.g. bash benchmarks/loso_resume_check.sh /tmp/resume --preset tuned --seed 0 --n-jobs 2 --device cpu
set -u
OUT=$1; shift
mkdir -p "$OUT"
CMD=(sersk reproduce --speaker-independent --out-dir "$OUT" "$@")
"${CMD[@]}" > "$OUT/part1.log" 2>&1 &
pid=$!
until [ "$(ls "$OUT/folds" 2>/dev/null | wc -l)" -ge 2 ] || ! kill -0 "$pid" 2>/dev/null; do sleep 5; done
kill -TERM "$pid" 2>/dev/null; wait "$pid"; echo "part 1 exit $?" >> "$OUT/part1.log"
/usr/bin/time -v "${CMD[@]}" --resume > "$OUT/part2.log" 2> "$OUT/part2_time_v.txt"
echo "part 2 exit $?" >> "$OUT/part2.log"
