#!/bin/bash
# The checks that need a GPU, in one run: the test suite on CUDA, the GPU training benchmark, and
# the README's and examples' commands timed (time_commands.sh gpu). Needs SERSK_DATA and the
# package importable, with pytest-xdist and pytest-timeout; writes into $1 (default: benchmarks/results/gpu): pytest_cuda.txt,
# bench_train_gpu.txt, timings_gpu.txt, nvidia_smi.csv (GPU use each second) and logs.tgz.
#
# Run: [BUDGET=seconds] [STEPS="tests bench commands"] [LOSO_SPEAKERS="10 11 ..."] bash benchmarks/gpu_check.sh [OUTDIR]
#   Everything stops BUDGET seconds (default 3600) after the start; the tests get at most TEST_S
#   (default 300) and the benchmark BENCH_S (default 120) of it. STEPS picks the steps. With
#   LOSO_SPEAKERS, the recipe's leave-one-speaker-out folds of these speakers (LOSO_ARGS, default
#   "--seed 0 --n-jobs 8", passed to sersk reproduce) run alongside the steps, one process per fold
#   (benchmarks/loso_folds.sh), into OUTDIR/loso.tgz (results, logs; no figures); give the tests
#   fewer WORKERS then.
#   Tests and benchmark are killed 10 s after their limit if SIGTERM does not stop them. On the
#   borrowed GPU machine, benchmarks/device_session.sh sets up `python`, the packages and the corpus
#   and runs this into the folder the machine sends back, so that a run cut short still returns logs.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
START=$(date +%s); DEADLINE=$((START + ${BUDGET:-3600}))
O=$(mkdir -p "${1:-$ROOT/benchmarks/results/gpu}" && cd "${1:-$ROOT/benchmarks/results/gpu}" && pwd)
export PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$O/nvidia_smi.csv" 2>&1 &)
STEPS=${STEPS:-tests bench commands}
if [ -n "${LOSO_SPEAKERS:-}" ]; then
  # shellcheck disable=SC2086
  DEADLINE=$DEADLINE bash "$ROOT/benchmarks/loso_folds.sh" "$O/loso" $LOSO_SPEAKERS -- ${LOSO_ARGS:---seed 0 --n-jobs 8} &
  LOSO_PID=$!
fi
if [[ " $STEPS " == *" tests "* ]]; then
  # A share of the cores per test worker: n workers x all cores each would oversubscribe the CPU.
  WORKERS=${WORKERS:-8}
  (cd "$ROOT" && OMP_NUM_THREADS=${TEST_THREADS:-$(( $(nproc) / WORKERS > 0 ? $(nproc) / WORKERS : 1 ))} timeout -k 10 "${TEST_S:-300}" \
    python -m pytest -v -p no:cacheprovider -n "$WORKERS" --timeout 120 -o addopts="-m 'not slow' -rfEs" tests \
    > "$O/pytest_cuda.txt" 2>&1)
  echo "tests: exit $? after $(( $(date +%s) - START )) s" >> "$O/pytest_cuda.txt"
fi
if [[ " $STEPS " == *" bench "* ]]; then
  (cd "$ROOT" && timeout -k 10 "${BENCH_S:-120}" python benchmarks/bench_train_gpu.py --n-clips 2048 --profile > "$O/bench_train_gpu.txt" 2>&1)
fi
if [[ " $STEPS " == *" commands "* ]]; then
  mkdir -p "$O/logs"
  DEADLINE=$DEADLINE RESULT="$O/timings_gpu.txt" LOGS="$O/logs" bash "$ROOT/benchmarks/time_commands.sh" gpu gpu
  tar czf "$O/logs.tgz" -C "$O/logs" --exclude='*.joblib' . && rm -rf "$O/logs"
fi
if [ -n "${LOSO_PID:-}" ]; then  # one archive: a device machine may send back only a few files
  wait "$LOSO_PID"
  (cd "$O/loso" && tar czf "$O/loso.tgz" folds.txt speaker*/results.json speaker*/*.txt) && rm -rf "$O/loso"
fi
pkill -f "nvidia-smi --query-gpu" 2>/dev/null
echo "gpu_check done after $(( $(date +%s) - START )) s"
