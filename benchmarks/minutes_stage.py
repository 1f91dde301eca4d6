"""End to end on the device: the `minutes` preset's stage 1 (or the whole calibration), timed.

Stage 1 runs the preset's populations as `advisor calibrate` does (joblib workers sharing the
GPU, env stepping, replay, CUDA-graph updates, evaluation, logs) and prints, per population and
for the stage, member-updates (unmasked) and env steps against wall time; the goal is
>= 10,000 member-updates/s aggregate over the stage. `--all` runs the whole calibration
(stage 1, B~ fit, stage 2, D_J fit; goal <= 8 min wall on one H100). CPU and GPU
utilisation are sampled every second into `<out>-utilisation.csv` beside the out-dir
(benchmarks/utilisation.py) and summarised per stage, over the stage's own clock.

  python benchmarks/minutes_stage.py --steps 5000          # stage 1, shortened (gpu_check.sh)
  python benchmarks/minutes_stage.py --all                 # the full preset, about 8 min
  python benchmarks/minutes_stage.py --steps 2000 --no-pack   # a population per batch size
  python benchmarks/minutes_stage.py --all --no-pack --n-jobs 9   # so, both stages
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from advisor.errors import AdvisorError  # noqa: E402
from benchmarks.utilisation import Sampler, stage_windows, summary  # noqa: E402
from calibration.archives import read_runs  # noqa: E402
from calibration.calibrate import stage_summary  # noqa: E402
from calibration.grid import load_grid, load_grid_dict, preset, stage1_units  # noqa: E402
from calibration.runner import (  # noqa: E402
    _default_jobs,
    env_threads_per_population,
    prepare_out_dir,
    run_units,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="Hopper-v5")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's env steps")
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--out", default=None, help="out-dir (default: a temporary one)")
    ap.add_argument("--all", action="store_true", help="the whole calibration, not stage 1")
    ap.add_argument("--preset", default="minutes", help="another preset (smoke: a CPU dry run)")
    ap.add_argument("--grid", default=None, help="a grid JSON file instead of the preset "
                                                 "(stage 1 only)")
    ap.add_argument("--backend", default="loky", help="runner backend: loky, threads, ...")
    ap.add_argument("--compile", nargs="?", const="update", default="none",
                    choices=["none", "regions", "update"],
                    help="torch.compile: regions (LayerNorm regions + AdamW) or update (whole)")
    ap.add_argument("--no-spans", action="store_true",
                    help="update every member in every round, masked (TrainConfig.spans off): "
                         "the comparison for the spans of members")
    ap.add_argument("--no-pack", action="store_true",
                    help="a population per (width, batch size), not per width (the grid's "
                         "pack_batch_sizes off): stage 1 as 6 populations, the 48-member one "
                         "split in two; no member computes on a larger batch than its own; "
                         "with --all, stage 2 as 9 (the grid as run is written beside --out)")
    ap.add_argument("--eval-background", action="store_true",
                    help="evaluation episodes in a thread beside training, on a copy of the "
                         "actor (TrainConfig.eval_background): the same returns")
    ap.add_argument("--bf16", action="store_true",
                    help="the networks on bf16 weight copies, float32 parameters and moments "
                         "(TrainConfig.bf16): fewer bytes per update, bf16 rounding")
    ap.add_argument("--algorithm", default="bro-torch", help="the fit id's first half (--all)")
    args = ap.parse_args()
    import torch

    if args.all and args.no_spans:
        ap.error("--no-spans is for stage 1 alone: leave out --all")
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.machine()
    try:
        grid = (load_grid(args.grid) if args.grid else preset(args.preset)).with_overrides(
            steps=args.steps)
    except AdvisorError as exc:  # a bad grid file or --steps: one line, exit 2
        ap.error(str(exc))
    if args.no_pack:
        grid = load_grid_dict({**grid.model_dump(), "pack_batch_sizes": False})
    jobs = args.n_jobs or _default_jobs(args.device)
    print(f"backend {args.backend}; compile {args.compile}; "
          f"batch sizes {'packed' if grid.pack_batch_sizes else 'a population each'}; "
          f"evaluation {'in the background' if args.eval_background else 'inline'}; "
          f"networks {'bf16 weight copies' if args.bf16 else 'float32'}; "
          f"spans {'off' if args.no_spans or args.compile == 'update' else 'on'}; "
          f"device {name}; "
          f"torch {torch.__version__}; python {platform.python_version()}; "
          f"env {args.env}; grid {grid.name}: steps {grid.steps}, random {grid.random_steps}, "
          f"seeds {len(grid.seeds)}, widths {grid.widths}, utds {grid.utds}, batch sizes "
          f"{grid.batch_sizes}; {jobs} populations at once, envs stepped in "
          f"{env_threads_per_population(args.device, min(jobs, len(stage1_units(grid))))} "
          "thread(s) each (stage 1)", flush=True)
    out = Path(args.out or tempfile.mkdtemp(prefix="minutes-"))
    samples = out.parent / f"{out.name}-utilisation.csv"
    try:
        with Sampler(samples):
            run(ap, args, grid, out, jobs)
    finally:  # a run cut short (gpu_check.sh's timeout) says it too
        whole = summary(samples) if samples.exists() else "no samples"
        if whole != "no samples":
            print(f"utilisation ({samples}; benchmarks/utilisation.py): whole run {whole}",
                  flush=True)
            for stage, (a, b) in stage_windows(out).items():
                print(f"  stage {stage[1:]} ({b - a:.0f} s, first population's start to last "
                      f"one's end): {summary(samples, a, b)}", flush=True)


def run(ap, args, grid, out: Path, jobs: int) -> None:
    t0 = time.perf_counter()
    if args.all:
        from calibration.calibrate import calibrate
        from calibration.cli import Interrupted, _interruptible

        grid_file = args.grid
        if args.no_pack:  # the grid as run, beside the out-dir (the fit records its path)
            grid_file, text = out.parent / f"{out.name}-grid.json", json.dumps(grid.model_dump())
            if grid_file.exists() and grid_file.read_text() != text:  # not another run's
                ap.error(f"{grid_file} exists and holds another grid: move it or pick --out")
            grid_file.write_text(text)
        try:  # gpu_check.sh's `timeout` ends it with SIGTERM: one line on what is kept
            with _interruptible(out):
                path = calibrate(args.env, out_dir=out, algorithm=args.algorithm,
                                 preset_name=args.preset, grid_file=grid_file,
                                 steps=None if args.no_pack else args.steps, device=args.device,
                                 n_jobs=args.n_jobs, backend=args.backend, compile=args.compile,
                                 eval_background=args.eval_background, bf16=args.bf16)
        except Interrupted as exc:
            print(f"whole calibration: stopped after {time.perf_counter() - t0:.0f} s "
                  f"({exc.message})", flush=True)
            sys.exit(exc.exit_code)
        wall = time.perf_counter() - t0
        print(f"whole calibration: {wall:.0f} s wall ({wall / 60:.1f} min; goal <= 8 min); "
              f"fit file {path}", flush=True)
        import advisor
        from calibration.checks import fit_checks

        checks = fit_checks(advisor.load_fit(str(path)).model, list(grid.batch_sizes))
        for c in checks:
            print(f"  {c}", flush=True)
        print(f"sane fit (calibration.checks): {'met' if all(c.ok for c in checks) else 'NOT met'}",
              flush=True)
        return
    if (out / "units").is_dir() and any((out / "units").iterdir()):
        ap.error(f"{out} holds finished populations: their times would be reported as this "
                 "run's; pass a new --out")
    prepare_out_dir(out, grid, args.env)
    units = stage1_units(grid)
    records = run_units(args.env, grid, units, out, device=args.device, n_jobs=jobs,
                        backend=args.backend, compile=args.compile, spans=not args.no_spans,
                        eval_background=args.eval_background, bf16=args.bf16)
    wall = time.perf_counter() - t0
    total_updates = total_steps = 0
    for record in records:
        unit, man = record["unit"], record["manifest"]
        total_updates += man["member_updates"]
        total_steps += man["config"]["steps"] * len(unit["seeds"])
        runs = read_runs(out / man["config"]["name"], env=args.env)
        final = {f"utd {r.utd:g} bs {r.batch_size:g}": round(float(np.nanmean(
            r.values["return"][-1])), 1) for r in runs}
        sizes = "-".join(str(b) for b in sorted(set(unit.get("batch_sizes")
                                                     or [unit["batch_size"]])))
        print(f"  w{unit['width']:<4} bs{sizes:<8} {len(unit['seeds']):>2} members, "
              f"utd max {max(unit['utds']):g}: {man['wall_time_s']:6.1f} s, "
              f"{man['member_updates']:>9,} member-updates ({man['member_updates_per_s']:,.0f}/s),"
              f" {man['env_steps_per_s']:,.0f} env steps/s per member; final return {final}",
              flush=True)
        phases = man.get("phase_s") or {}
        if phases:  # where that unit's wall time went (trainer.PHASES)
            waited = ""
            if man.get("steps_device_behind"):  # the GPU bounds the loop where most steps wait
                waited = (f"; of act, waiting for the GPU's updates {man['device_wait_s']:.1f} s "
                          f"at {man['steps_device_behind']:,} of {man['config']['steps']:,} "
                          "steps")
            print("      " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()) + waited,
                  flush=True)
    rate = total_updates / wall
    print(f"stage 1: {total_updates:,} member-updates and {total_steps:,} env steps in "
          f"{wall:.1f} s wall = {rate:,.0f} member-updates/s, {total_steps / wall:,.0f} env "
          f"steps/s, workers' start-up included (goal >= 10,000 member-updates/s: "
          f"{'met' if rate >= 10_000 else 'not met'})", flush=True)
    print(stage_summary("stage 1, on the stage's clock", records), flush=True)


if __name__ == "__main__":
    main()
