#!/bin/bash
# On the borrowed GPU machine, from the repo's root: install the carried wheels, unpack the carried
# corpus and run benchmarks/gpu_check.sh with its output straight under $OUT/gpu, so that a call
# cut short still sends back what was written. Prepare here first (benchmarks/device_bundle.py):
#   python benchmarks/device_bundle.py pack $SERSK_DATA .corpus && python benchmarks/device_bundle.py wheels .whl
# (each prints the payload against the tool's 64 MiB), then run this with the device tool, carry
# [".whl", ".corpus"] and a timeout_s about 120 s above TEST_S (setup, torch's start-up, the summary):
#   COMMIT=<git rev-parse --short HEAD here> BUDGET=300 STEPS=tests WORKERS=6 TEST_THREADS=1 TEST_S=240 \
#     bash benchmarks/device_session.sh
# Every variable is passed on to gpu_check.sh. setup.txt there records the versions and the commit
# (.git does not travel: pass COMMIT). The exit status is tail's: read the result in pytest_cuda.txt.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
O="${OUT:?run it through the device tool, which sets OUT}/gpu"
mkdir -p "$O" /tmp/bin
cd "$ROOT" || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  > "$O/setup.txt" 2>&1 || { cat "$O/setup.txt"; exit 1; }
export PYTHONPATH="/tmp/site:$ROOT" SERSK_DATA=/tmp/emodb PATH="/tmp/bin:$PATH"
# wrappers, not symlinks: a symlink to a venv's python3 outside the venv loses the venv's packages
PY=$(command -v python3)
printf '#!/bin/sh\nexec %s "$@"\n' "$PY" > /tmp/bin/python
printf '#!/bin/sh\nexec %s -c "import sys; from sersk.cli import main; sys.exit(main())" "$@"\n' "$PY" > /tmp/bin/sersk
chmod +x /tmp/bin/python /tmp/bin/sersk
python benchmarks/device_bundle.py unpack .corpus "$SERSK_DATA" >> "$O/setup.txt" 2>&1 || { cat "$O/setup.txt"; exit 1; }
# the versions, and a fresh process's fixed cost (sersk predict and evaluate took 13-16 s here
# against 4-5 s on 2 CPU cores)
python -c "import sys, time; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); \
d = 'cuda' if torch.cuda.is_available() else 'cpu'; torch.zeros(1, device=d).sum().item(); t2 = time.perf_counter(); \
import sklearn, skorch, numpy; print(sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-', \
'sklearn', sklearn.__version__, 'skorch', skorch.__version__, 'numpy', numpy.__version__); \
print(f'startup: import torch {t1 - t0:.1f} s, first tensor on {d} {t2 - t1:.1f} s')" >> "$O/setup.txt" 2>&1
echo "commit ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}" >> "$O/setup.txt"
bash benchmarks/gpu_check.sh "$O"
tail -3 "$O/pytest_cuda.txt" 2>/dev/null
