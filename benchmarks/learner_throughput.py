"""Aggregate member-updates per second of the population update, old paths against new.

For each population size M and critic width, the same BRO-style update (double critic with a
quantile head, actor, temperature, Polyak target, AdamW) done as
  sequential   M single-member populations one after another, reference loss, eager: the
               baseline of every ratio;
  pop ref      one stacked update, the reference (materialised) quantile-Huber loss, eager
               (the population path before the fused loss);
  pop fused    one stacked update, fused loss (fused.py), the default AdamW
               (agent.default_optimizer: compiled on a GPU, a kernel per member on a CPU), eager;
  pop kernel   pop fused with one single-pass AdamW kernel per member (optimizer="kernel";
               the GPU default until session 9's measurement);
  pop ops      pop fused with the whole-buffer AdamW (Population optimizer="ops": about ten
               operations over all members' parameters);
  ref+graph    pop ref captured in a CUDA graph (GPU only; the old fast path);
  fused+graph  pop fused captured in a CUDA graph (GPU only; the trainer's default on a GPU);
  kernel+graph pop kernel captured in a CUDA graph (GPU only);
  ops+graph    pop ops captured in a CUDA graph (GPU only);
  optc         pop fused with the AdamW steps compiled into one kernel each for all members
               (Population optimizer="compiled"; seconds to compile) instead of one per member;
  optc+graph   optc captured in a CUDA graph (GPU only);
  regions      optc with the LayerNorm regions (LayerNorm, gain, bias, ReLU, skip; forward and
               backward) compiled too (Population regions=True; `--compile regions`);
  regions+graph  regions captured in a CUDA graph (GPU only);
  compiled     torch.compile of the whole fused update (cells in --compile);
  cmp+graph    the compiled update captured in a CUDA graph (cells in --compile; GPU only).
All populations share flat parameter buffers and the one-pass AdamW (the per-tensor AdamW is
gone), so "pop ref" isolates the loss. Prints device, versions, both sides of each ratio
(member-updates/s of the variant and of the sequential loop). Each cell runs about --seconds.

  python benchmarks/learner_throughput.py                       # GPU defaults
  python benchmarks/learner_throughput.py --members 16 --widths 512 --bf16 \
      --variants "fused+graph" "regions+graph"                   # bf16 weight copies
  python benchmarks/learner_throughput.py --device cpu --members 1 4 16 --widths 64 \
      --quantiles 25 --batch-size 64 --actor-width 64 --compile 16x64
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.learner.agent import AgentConfig, Batch, Noise, Population  # noqa: E402
from calibration.learner.graphs import GraphedUpdate  # noqa: E402

OBS, ACT = 51, 19  # HumanoidBench h1: critic input 70
VARIANTS = ("pop ref", "pop fused", "pop kernel", "pop ops", "ref+graph", "fused+graph",
            "kernel+graph", "ops+graph", "optc", "optc+graph", "regions", "regions+graph",
            "compiled", "cmp+graph")


def make_inputs(m: int, b: int, device, seed: int = 0, obs: int = OBS, act: int = ACT):
    g = torch.Generator(device=device).manual_seed(seed)
    batch = Batch(torch.randn(m, b, obs, device=device, generator=g),
                  torch.rand(m, b, act, device=device, generator=g) * 2 - 1,
                  torch.randn(m, b, device=device, generator=g),
                  torch.randn(m, b, obs, device=device, generator=g),
                  (torch.rand(m, b, device=device, generator=g) < 0.01).float())
    noise = Noise(torch.randn(m, b, act, device=device, generator=g),
                  torch.randn(m, b, act, device=device, generator=g))
    return batch, noise, torch.ones(m, dtype=torch.bool, device=device)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step, device, seconds: float, min_iters: int = 3) -> float:
    """Calls of `step` per second over about `seconds` (after three warm-up calls)."""
    for _ in range(3):
        step()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        if n >= min_iters:
            sync(device)
            dt = time.perf_counter() - t0
            if dt >= seconds:
                return n / dt


def graphed(pop: Population, batch: Batch, noise: Noise, mask):
    """The trainer's CUDA-graph path; raises if capture fails instead of falling back."""
    update = GraphedUpdate(pop, batch, noise, mask, enabled=False)
    update._capture()
    return lambda: update(batch, noise, mask)


SETUP_S: dict[str, float] = {}  # the last measure()'s set-up and first call, by variant


def measure(name: str, make_step, m: int, device, seconds: float) -> float:
    """Member-updates/s of one variant; nan (and a line saying why) if it fails. Its set-up
    time (compiling, capturing, the first call) goes to SETUP_S[name]."""
    SETUP_S.pop(name, None)
    try:
        t = time.perf_counter()
        step = make_step()
        step()
        sync(device)
        setup = time.perf_counter() - t
        SETUP_S[name] = round(setup, 2)
        if setup > 5:
            print(f"    {name}: set-up and first call {setup:.1f} s", flush=True)
        return m * timed(step, device, seconds)
    except Exception as exc:  # report, do not hide
        print(f"    {name} failed: {type(exc).__name__}: {exc}"[:300], flush=True)
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--members", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--quantiles", type=int, default=100)
    ap.add_argument("--actor-width", type=int, default=256)
    ap.add_argument("--obs-act", type=int, nargs=2, default=[OBS, ACT], metavar=("OBS", "ACT"),
                    help="observation and action sizes (default HumanoidBench h1's; Hopper: 11 3)")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--max-sequential", type=int, default=64,
                    help="largest M for which the sequential loop is measured")
    ap.add_argument("--compile", nargs="*", default=["16x512", "64x512"],
                    help="MxWIDTH cells to also measure with torch.compile")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--threads", type=int, default=None)
    precision = ap.add_mutually_exclusive_group()
    precision.add_argument("--amp", action="store_true",
                           help="bf16 autocast in the population variants")
    precision.add_argument("--bf16", action="store_true",
                           help="bf16 weight copies and activations in the population variants "
                                "(Population.bf16: float32 parameters and moments)")
    ap.add_argument("--json", help="also write the rates to this file: {'MxWIDTH': {variant: "
                                   "member-updates/s}, 'MxWIDTH setup_s': {variant: seconds}} "
                                   "(gpu_check.sh's pick part reads it)")
    args = ap.parse_args()
    rates: dict[str, dict[str, float]] = {}
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch._dynamo.config.recompile_limit = 64  # one compile per cell and variant
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.processor() or platform.machine()} "
                 f"({torch.get_num_threads()} threads)")
    print(f"device {name}; torch {torch.__version__}; python {platform.python_version()}; "
          f"batch {args.batch_size}; quantiles {args.quantiles}; actor width {args.actor_width}; "
          f"obs {args.obs_act[0]}, act {args.obs_act[1]}; "
          f"TF32 on; population variants "
          f"{'bf16 autocast' if args.amp else 'bf16 weight copies' if args.bf16 else 'fp32'}",
          flush=True)
    print("member-updates/s; in brackets the ratio to the sequential loop of the same row",
          flush=True)
    print(f"{'M':>3} {'width':>5} {'sequential':>10}" + "".join(f" {v:>17}" for v in VARIANTS),
          flush=True)
    for width in args.widths:
        for m in args.members:
            obs, act = args.obs_act
            cfg = AgentConfig(obs_dim=obs, act_dim=act, width=width, quantiles=args.quantiles,
                              actor_width=args.actor_width)
            batch, noise, mask = make_inputs(m, args.batch_size, device, obs=obs, act=act)
            seq = float("nan")
            if m <= args.max_sequential:
                singles = [Population(cfg, 1, [i], device, fused=False) for i in range(m)]
                parts = [(batch.member(i), noise.member(i)) for i in range(m)]
                one = torch.ones(1, dtype=torch.bool, device=device)

                def sequential():
                    for single, (b, n) in zip(singles, parts):
                        single.update(b, n, one)

                seq = m * timed(sequential, device, args.seconds)
                del singles

            def pop(**kw):
                return Population(cfg, m, list(range(m)), device, amp=args.amp, bf16=args.bf16,
                                  **kw)

            def update_of(**kw):
                p = pop(**kw)
                return lambda: p.update_fn(batch, noise, mask)

            def graph_of(**kw):
                return graphed(pop(**kw), batch, noise, mask)

            makers = {"pop ref": lambda: update_of(fused=False),
                      "pop fused": lambda: update_of(),
                      "ref+graph": lambda: graph_of(fused=False),
                      "fused+graph": lambda: graph_of(),
                      "pop kernel": lambda: update_of(optimizer="kernel"),
                      "kernel+graph": lambda: graph_of(optimizer="kernel"),
                      "pop ops": lambda: update_of(optimizer="ops"),
                      "ops+graph": lambda: graph_of(optimizer="ops"),
                      "optc": lambda: update_of(optimizer="compiled"),
                      "optc+graph": lambda: graph_of(optimizer="compiled"),
                      "regions": lambda: update_of(regions=True),
                      "regions+graph": lambda: graph_of(regions=True),
                      "compiled": lambda: update_of(compiled=True),
                      "cmp+graph": lambda: graph_of(compiled=True)}
            cells = []
            for variant in VARIANTS:
                gpu_only = variant.endswith("graph")
                compiled = variant.startswith(("compiled", "cmp"))
                if (variant not in args.variants or (gpu_only and device.type != "cuda")
                        or (compiled and f"{m}x{width}" not in args.compile)):
                    cells.append(f" {'':>17}")
                    continue
                rate = measure(variant, makers[variant], m, device, args.seconds)
                rates.setdefault(f"{m}x{width}", {})[variant] = rate
                if variant in SETUP_S:
                    rates.setdefault(f"{m}x{width} setup_s", {})[variant] = SETUP_S[variant]
                cells.append(f" {rate:>9.0f} ({rate / seq:>5.1f}x)")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            print(f"{m:>3} {width:>5} {seq:>10.0f}" + "".join(cells), flush=True)
            if args.json:  # after each cell: a later crash keeps what was measured
                Path(args.json).write_text(json.dumps(rates, indent=1) + "\n")


if __name__ == "__main__":
    main()
