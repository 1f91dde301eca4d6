#!/usr/bin/env bash
# Which AdamW path an update should use on a GPU: one `_fused_adamw_` launch per member and
# network ("kernel", 2M per update; the GPU default before session 9), the whole-buffer
# operations ("ops": about ten launches over all members) and the compiled whole-buffer step
# ("optc"; the GPU default since, agent.default_optimizer),
# each captured in a CUDA graph as the trainer runs it, at the `minutes` cells (Hopper's sizes:
# stage-1 pole 48x128 batch 256, stage-2 population 24x128 batch 240) and the goal cell
# (16x512, batch 256). Uncompiled paths first for every cell, then the compiled one, in
# BUDGET seconds (default 170). Output: $OUT/adamw.txt and $OUT/adamw-*.json.
set -uo pipefail
OUT="${OUT:-/tmp}"
PY="${PYTHON:-python3}"
BUDGET="${BUDGET:-170}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$SECONDS
left() { echo $((BUDGET - (SECONDS - start))); }
cells=("48 128 256 11 3" "24 128 240 11 3" "16 512 256 51 19")
for variants in "kernel+graph ops+graph" "optc+graph"; do
  for cell in "${cells[@]}"; do
    read -r m w b o a <<< "$cell"
    t=$(left); [ "$t" -gt 10 ] || break 2
    [ "$t" -gt 60 ] && t=60
    echo "== M=$m width $w batch $b (obs $o, act $a): $variants [$(left) s left]" \
        | tee -a "$OUT/adamw.txt"
    # shellcheck disable=SC2086
    timeout "$t" "$PY" benchmarks/learner_throughput.py --members "$m" --widths "$w" \
        --batch-size "$b" --obs-act "$o" "$a" --seconds 1.0 --max-sequential 0 --compile \
        --variants $variants --json "$OUT/adamw-${m}x${w}-${variants%%+*}.json" 2>&1 \
        | tee -a "$OUT/adamw.txt"
  done
done
echo "gpu_adamw: done in $((SECONDS - start)) s"
