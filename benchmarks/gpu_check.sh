#!/usr/bin/env bash
# The prepared device run, in a time budget (BUDGET seconds, default 530) on one GPU. PARTS
# picks what runs, in this order (default: all four):
#   equivalence  CUDA equivalence of the fast paths (benchmarks/gpu_equivalence.py; the
#                compiled update too unless SKIP_COMPILE=1): fails the run above its thresholds;
#   throughput   width 512, batch 256, 100 quantiles, M = 16 and 64 (goal >= 20,000
#                member-updates/s at M = 16), and a `minutes`-sized cell (M = 24, width 128,
#                batch 128: latency-bound), eager, CUDA graph and compiled + graph; a profile;
#   profile      where the GPU time of one update goes at PROFILE_CELL ("48 128 256": the
#                `minutes` stage-1 pole, Hopper's sizes): top kernels, kernels and GPU ms per
#                update, CUDA-graph replay ms (benchmarks/profile_update.py); $OUT/profile.txt;
#   backends     stage 1 of `minutes`, shortened to STEPS (2,000) env steps, for each of
#                BACKENDS (default "threads loky+mps"; add ":regions" or ":update" to
#                compile, e.g. "threads:regions", ":nospans" or ":nopack" for the
#                comparisons without spans or packing, ":evalbg" for evaluation beside
#                training, ":bf16" for bf16 weight copies), LIMIT (90) seconds each
#                (benchmarks/gpu_backends.sh);
#   pick         the `minutes` cell PICK_CELL ("24 128 240": a stage-2 population, Hopper's
#                sizes; "48 128 256" for stage 1) eager, compiled regions and the compiled
#                update, each in a CUDA graph, 1 s each (eager and regions also at 2/3 and 1/3
#                of the members: their spans): MINUTES_COMPILE becomes the mode with the least
#                set-up + 9,000 steps of 4 rounds (benchmarks/pick_compile.py), where that is
#                at least 10% less than eager (unless MINUTES_COMPILE is set); $OUT/pick.json;
#   envs         env stepping on the machine's CPU, idle (benchmarks/env_threads.py): ENVS_MEMBERS
#                ("24 48") Hopper-v5 envs sync, in 2 and 4 threads stepping whole envs, and with their
#                physics run ahead in the threads (the trainer's way); $OUT/envs.txt; ~1 min;
#   minutes      the whole `minutes` preset on ENV_ID (Hopper-v5) with MINUTES_BACKEND
#                (loky+mps) and MINUTES_COMPILE (none, regions or update), evaluation in a
#                thread beside training if MINUTES_EVALBG=1, on bf16 weight copies if
#                MINUTES_BF16=1, a population per (width, batch size) in both stages if
#                MINUTES_NOPACK=1 (MINUTES_JOBS populations at once: 9 runs stage 2's (up to 9) at
#                once), in the time left
#                (goal <= 8 min; >= 10,000 member-updates/s over a stage); its out-dir comes back as
#                $OUT/minutes-out.tgz (resumable) and the fit file as $OUT/bro-torch-*.json,
#                CPU and GPU utilisation each second as $OUT/minutes-out-utilisation.csv;
#                MINUTES_RESUME=path/to/minutes-out.tgz (carried from an earlier call) resumes
#                it: finished populations are kept, the rest run.
# Only equivalence fails the run on a wrong result; the others fail it only if they crash.
# Usage on the device machine, from the repository root:
#   PARTS="equivalence throughput minutes" BUDGET=540 bash benchmarks/gpu_check.sh
set -uo pipefail
OUT="${OUT:-/tmp}"
PY="${PYTHON:-python3}"
BUDGET="${BUDGET:-530}"
PARTS="${PARTS:-equivalence throughput backends minutes}"
ENV_ID="${ENV_ID:-Hopper-v5}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$SECONDS
left() { echo $((BUDGET - (SECONDS - start))); }
status=0
fail() { echo "$1 FAILED (exit $2)"; if [ "$status" -eq 0 ]; then status=$2; fi; }
want() { case " $PARTS " in *" $1 "*) return 0;; *) return 1;; esac; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch, gymnasium, mujoco, os; print('torch', torch.__version__, 'gymnasium',
gymnasium.__version__, 'mujoco', mujoco.__version__, 'cpus', os.cpu_count())" | tee -a "$OUT/gpu.txt"

if want equivalence; then
  echo "== equivalence (fails the run above its thresholds) [$(left) s left]"
  timeout 200 "$PY" benchmarks/gpu_equivalence.py ${SKIP_COMPILE:+--skip-compile} 2>&1 \
      | tee "$OUT/equivalence.txt" || fail equivalence $?
fi

if want throughput; then
  echo "== throughput (goal 20,000 member-updates/s at M=16, width 512) [$(left) s left]"
  timeout 150 "$PY" benchmarks/learner_throughput.py --members 16 64 --widths 512 \
      --seconds 1.0 --max-sequential 16 --compile 16x512 \
      --variants "pop ref" "pop fused" "fused+graph" "kernel+graph" "regions+graph" \
      "cmp+graph" 2>&1 \
      | tee "$OUT/throughput.txt" || fail throughput $?
  timeout 120 "$PY" benchmarks/learner_throughput.py --members 24 --widths 128 \
      --batch-size 128 --seconds 1.0 --max-sequential 0 --compile 24x128 \
      --variants "pop fused" "fused+graph" "kernel+graph" "regions+graph" "cmp+graph" 2>&1 \
      | tee -a "$OUT/throughput.txt" || fail "throughput, minutes cell" $?
  timeout 40 "$PY" benchmarks/profile_update.py 2>&1 | tee -a "$OUT/throughput.txt" \
      || echo "profile failed (not counted)"
fi

if want profile; then
  read -r fm fw fb <<< "${PROFILE_CELL:-48 128 256}"
  echo "== profile: M=$fm width $fw batch $fb, Hopper's sizes [$(left) s left]"
  timeout 90 "$PY" benchmarks/profile_update.py --members "$fm" --width "$fw" \
      --batch-size "$fb" --obs-act 11 3 --rows 25 2>&1 | tee "$OUT/profile.txt" \
      || echo "profile failed (not counted)"
fi

if want backends; then
  echo "== backends, stage 1 of minutes at ${STEPS:-2000} steps [$(left) s left]"
  OUT="$OUT" STEPS="${STEPS:-2000}" LIMIT="${LIMIT:-90}" \
      BACKENDS="${BACKENDS:-threads loky+mps}" bash benchmarks/gpu_backends.sh \
      || fail backends $?
fi

if want pick; then
  read -r pm pw pb <<< "${PICK_CELL:-24 128 240}"
  echo "== pick: eager, compiled regions, compiled update, in a CUDA graph, M=$pm width $pw" \
       "batch $pb [$(left) s left]"
  # the cell and its spans of members (utds 1, 2, 4: 2/3 and 1/3 of the members; eager and
  # regions run later rounds on those, the compiled update on all)
  p2=$((pm * 2 / 3 > 0 ? pm * 2 / 3 : 1)); p1=$((pm / 3 > 0 ? pm / 3 : 1))
  timeout 240 "$PY" benchmarks/learner_throughput.py --members "$pm" $p2 $p1 --widths "$pw" \
      --batch-size "$pb" --obs-act 11 3 --seconds 1.0 --max-sequential 0 --compile "${pm}x${pw}" \
      --variants "fused+graph" "regions+graph" "cmp+graph" --json "$OUT/pick.json" 2>&1 \
      | tee "$OUT/pick.txt" || echo "pick failed (not counted)"
  if [ -z "${MINUTES_COMPILE:-}" ]; then
    MINUTES_COMPILE=$("$PY" benchmarks/pick_compile.py "$OUT/pick.json" --cell "${pm}x${pw}" \
                      --rounds "$pm,$p2,$p1,$p1" 2>>"$OUT/pick.txt" || echo none)
    echo "pick: MINUTES_COMPILE=$MINUTES_COMPILE" >> "$OUT/pick.txt"
    grep '^pick:' "$OUT/pick.txt"
  fi
fi

if want envs; then
  echo "== envs: env stepping on this CPU, idle [$(left) s left]"
  for m in ${ENVS_MEMBERS:-24 48}; do
    timeout 60 "$PY" benchmarks/env_threads.py --env "$ENV_ID" --threads 4 --steps 1000 \
        --members "$m" --blocks 10 2>&1 | tee -a "$OUT/envs.txt" || echo "envs failed (not counted)"
  done
fi

if want minutes; then
  run=/tmp/minutes-out
  if [ -n "${MINUTES_RESUME:-}" ]; then
    tar -xzf "$MINUTES_RESUME" -C /tmp && rm -f "$run/calibrate.lock" \
        && echo "resuming $MINUTES_RESUME: $(ls "$run/units" 2>/dev/null | wc -l) populations done"
  fi
  t=$(( $(left) - 20 ))
  mb="${MINUTES_BACKEND:-loky+mps}"
  echo "== the minutes preset on $ENV_ID, whole calibration, $mb (goal <= 8 min) [limit ${t} s]"
  mps=""
  if [ "$mb" = "loky+mps" ]; then
    source benchmarks/mps.sh && mps_start && mps=1
    mb=loky
  fi
  timeout "$t" "$PY" benchmarks/minutes_stage.py --all --env "$ENV_ID" --out "$run" \
      --backend "$mb" --compile "${MINUTES_COMPILE:-none}" \
      $([ "${MINUTES_EVALBG:-0}" = 1 ] && echo --eval-background) \
      $([ "${MINUTES_BF16:-0}" = 1 ] && echo --bf16) \
      $([ "${MINUTES_NOPACK:-0}" = 1 ] && echo --no-pack) \
      ${MINUTES_JOBS:+--n-jobs "$MINUTES_JOBS"} 2>&1 \
      | tee "$OUT/minutes.txt" \
      || fail "minutes preset" $?
  [ -n "$mps" ] && mps_stop
  # Without population checkpoints (tens of MB each: over what a call brings back).
  tar -czf "$OUT/minutes-out.tgz" --exclude='checkpoint.npz*' -C /tmp minutes-out 2>/dev/null \
      || true
  cp "$run"/*.json "$run"-grid.json "$OUT/" 2>/dev/null || true  # the grid as run, with --no-pack
  cp "$run"-utilisation.csv "$OUT/" 2>/dev/null || true  # CPU and GPU busy, every second
fi
echo "gpu_check: done in $((SECONDS - start)) s, status $status"
exit "$status"
