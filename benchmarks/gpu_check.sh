#!/usr/bin/env bash
# One prepared device run, about 6 minutes on one H100 (each part has its own time limit):
#   1. GPU facts;
#   2. CUDA equivalence of the fast paths (benchmarks/gpu_equivalence.py): the script exits
#      non-zero if any difference exceeds its stated threshold;
#   3. throughput at M=16, width 512, batch 256, 100 quantiles (goal >= 20,000 member-updates/s);
#   4. stage 1 of the `minutes` preset end to end on Hopper-v5, shortened to 5,000 env steps
#      (goal >= 10,000 member-updates/s aggregate over the stage).
# Parts 3 and 4 measure; they fail the run only if they crash. Raw output goes to $OUT.
# Usage on the device machine, from the repository root: bash benchmarks/gpu_check.sh
set -euo pipefail
OUT="${OUT:-/tmp}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
fail() { echo "$1 FAILED (exit $2)"; if [ "$status" -eq 0 ]; then status=$2; fi; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, 'gymnasium',
gymnasium.__version__, 'mujoco', mujoco.__version__)" | tee -a "$OUT/gpu.txt"

echo "== equivalence (fails the run above its thresholds)"
timeout 130 "$PY" benchmarks/gpu_equivalence.py 2>&1 | tee "$OUT/equivalence.txt" \
    || fail equivalence $?

echo "== throughput, M=16 width 512 (goal 20,000 member-updates/s)"
timeout 200 "$PY" benchmarks/learner_throughput.py --members 16 --widths 512 --seconds 1.5 \
    --compile 16x512 --variants "pop ref" "pop fused" "ref+graph" "fused+graph" "cmp+graph" \
    2>&1 | tee "$OUT/throughput.txt" || fail throughput $?

echo "== minutes preset, stage 1, 5,000 steps (goal 10,000 member-updates/s aggregate)"
timeout 220 "$PY" benchmarks/minutes_stage.py --steps 5000 --out "$OUT/minutes-run" 2>&1 \
    | tee "$OUT/minutes.txt" || fail "minutes stage" $?

exit "$status"
