#!/usr/bin/env bash
# Stage 1 of the `minutes` preset on Hopper-v5, shortened to STEPS env steps (default 2,000),
# with the runner's backends on one GPU: threads (one process, a CUDA stream per population),
# loky (a process per population, the GPU time-sliced between them) and, where the MPS control
# daemon is there, loky under MPS. About 4 minutes on one H100. Raw output goes to $OUT.
# Usage on the device machine, from the repository root: bash benchmarks/gpu_backends.sh
set -uo pipefail
OUT="${OUT:-/tmp}"
PY="${PYTHON:-python3}"
STEPS="${STEPS:-2000}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for backend in threads loky; do
  echo "== backend $backend"
  timeout "${LIMIT:-90}" "$PY" benchmarks/minutes_stage.py --steps "$STEPS" --backend "$backend" \
      --out "/tmp/stage-$backend" 2>&1 | grep -v "^\[" | tee -a "$OUT/backends.txt"
done
if command -v nvidia-cuda-mps-control >/dev/null; then
  echo "== backend loky under MPS"
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d; then
    timeout "${LIMIT:-90}" "$PY" benchmarks/minutes_stage.py --steps "$STEPS" --backend loky \
        --out /tmp/stage-mps 2>&1 | grep -v "^\[" | tee -a "$OUT/backends.txt"
    echo quit | nvidia-cuda-mps-control
  else
    echo "MPS daemon did not start"
  fi
else
  echo "no nvidia-cuda-mps-control on this machine"
fi
