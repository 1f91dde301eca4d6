#!/usr/bin/env bash
# Stage 1 of the `minutes` preset on Hopper-v5, shortened to STEPS env steps (default 2,000),
# once per entry of BACKENDS (default "threads loky loky+mps"): threads = one process, a CUDA
# stream per population; loky = a process per population (without MPS the GPU takes them in
# turns); loky+mps = the same under a CUDA MPS daemon (benchmarks/mps.sh). Append ":update"
# (or ":compile") to an entry to torch.compile each whole update, ":regions" to compile only
# the LayerNorm regions and AdamW steps, ":nospans" to update every member in every round,
# masked (no spans of members: the comparison for TrainConfig.spans), ":nopack" to train a
# population per (width, batch size) instead of one per width (the grid's pack_batch_sizes
# off: stage 1 as 6 populations), ":evalbg" to run evaluation episodes in a thread beside
# training (TrainConfig.eval_background), ":bf16" to train on bf16 weight copies
# (TrainConfig.bf16); modes combine ("loky+mps:regions:nospans"). LIMIT (90) seconds each. Raw output in $OUT.
# Usage on the device machine, from the repository root: bash benchmarks/gpu_backends.sh
set -uo pipefail
OUT="${OUT:-/tmp}"
PY="${PYTHON:-python3}"
STEPS="${STEPS:-2000}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
source "$(dirname "$0")/mps.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for entry in ${BACKENDS:-threads loky loky+mps}; do
  name="${entry%%:*}"; flags=""
  IFS=: read -r -a modes <<< "${entry#"$name"}"
  for mode in "${modes[@]}"; do
    case "$mode" in
      "") ;;
      nospans) flags="$flags --no-spans" ;;
      nopack) flags="$flags --no-pack" ;;
      evalbg) flags="$flags --eval-background" ;;
      bf16) flags="$flags --bf16" ;;
      compile) flags="$flags --compile update" ;;
      *) flags="$flags --compile $mode" ;;
    esac
  done
  backend="${name%+mps}"; mps=""
  echo "== $entry [$STEPS steps, limit ${LIMIT:-90} s]" | tee -a "$OUT/backends.txt"
  if [ "$name" != "$backend" ]; then mps_start && mps=1 || continue; fi
  run="/tmp/stage-${entry//[:+]/-}"
  rm -rf "$run" "$run"-utilisation.csv  # an earlier run's would be reported as this one's
  timeout "${LIMIT:-90}" "$PY" benchmarks/minutes_stage.py --steps "$STEPS" --backend "$backend" \
      $flags --out "$run" 2>&1 | grep -v "^\[" | tee -a "$OUT/backends.txt"
  echo "exit ${PIPESTATUS[0]}" | tee -a "$OUT/backends.txt"
  cp "$run"-utilisation.csv "$OUT/" 2>/dev/null || true  # CPU and GPU busy, every second
  [ -n "$mps" ] && mps_stop
done
