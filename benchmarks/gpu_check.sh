#!/usr/bin/env bash
# One prepared device run inside a time budget (BUDGET seconds, default 530), on one GPU:
#   1. GPU facts;
#   2. CUDA equivalence of the trainer's fast paths (benchmarks/gpu_equivalence.py; the
#      compiled path too unless SKIP_COMPILE=1): exits non-zero above its thresholds;
#   3. throughput at width 512, batch 256, 100 quantiles, M = 16 and 64 (goal >= 20,000
#      member-updates/s at M=16), fp32 and bf16 autocast; a profile of the M=16 update;
#   4. the whole `minutes` preset on Hopper-v5 (`advisor calibrate --preset minutes
#      --algorithm bro-torch`; goal <= 8 min wall and >= 10,000 member-updates/s over a stage)
#      in the time left; its out-dir comes back as $OUT/minutes-out.tgz (resumable) and the
#      fit file as $OUT/bro-torch-Hopper-v5.json.
# Parts 3 and 4 measure; they fail the run only if they crash. Raw output goes to $OUT.
# Usage on the device machine, from the repository root: bash benchmarks/gpu_check.sh
set -uo pipefail
OUT="${OUT:-/tmp}"
PY="${PYTHON:-python3}"
BUDGET="${BUDGET:-530}"
ENV_ID="${ENV_ID:-Hopper-v5}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$SECONDS
left() { echo $((BUDGET - (SECONDS - start))); }
status=0
fail() { echo "$1 FAILED (exit $2)"; if [ "$status" -eq 0 ]; then status=$2; fi; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch, gymnasium, mujoco, os; print('torch', torch.__version__, 'gymnasium',
gymnasium.__version__, 'mujoco', mujoco.__version__, 'cpus', os.cpu_count())" | tee -a "$OUT/gpu.txt"

echo "== equivalence (fails the run above its thresholds) [$(left) s left]"
timeout 120 "$PY" benchmarks/gpu_equivalence.py ${SKIP_COMPILE:+--skip-compile} 2>&1 \
    | tee "$OUT/equivalence.txt" || fail equivalence $?

echo "== throughput, width 512 (goal 20,000 member-updates/s at M=16) [$(left) s left]"
timeout 100 "$PY" benchmarks/learner_throughput.py --members 16 64 --widths 512 --seconds 1.0 \
    --max-sequential 16 --compile --variants "pop ref" "pop fused" "ref+graph" "fused+graph" \
    2>&1 | tee "$OUT/throughput.txt" || fail throughput $?
timeout 40 "$PY" benchmarks/learner_throughput.py --members 16 --widths 512 --seconds 1.0 \
    --max-sequential 16 --compile --amp --variants "pop fused" "fused+graph" \
    2>&1 | tee -a "$OUT/throughput.txt" || fail "throughput bf16" $?
timeout 40 "$PY" benchmarks/profile_update.py 2>&1 | tee -a "$OUT/throughput.txt" \
    || echo "profile failed (not counted)"

run=/tmp/minutes-out
t=$(( $(left) - 20 ))
echo "== the minutes preset on $ENV_ID, whole calibration (goal <= 8 min) [limit ${t} s]"
timeout "$t" "$PY" benchmarks/minutes_stage.py --all --env "$ENV_ID" --out "$run" 2>&1 \
    | tee "$OUT/minutes.txt" || fail "minutes preset" $?
tar -czf "$OUT/minutes-out.tgz" -C /tmp minutes-out 2>/dev/null || true
cp "$run"/*.json "$OUT/" 2>/dev/null || true
echo "gpu_check: done in $((SECONDS - start)) s, status $status"
exit "$status"
