"""Aggregate member-updates per second of the population update against a sequential loop.

For each population size M and critic width: the same BRO-style update (double critic with a
quantile head, actor, temperature, Polyak target, AdamW; batch 256) done
  - sequential: M single-member populations updated one after another (plain eager loop);
  - population: one stacked update for all M members (eager);
  - population+graph: the stacked update captured once in a CUDA graph and replayed (GPU only);
  - population+compile: torch.compile of the whole stacked update (cells in --compile);
  - compiled nets+graph: torch.compile of the networks and loss, the update in a CUDA graph
    (cells in --compile; GPU only).
Prints device, versions, both sides of each ratio. Each cell runs for about --seconds.

  python benchmarks/learner_throughput.py                       # GPU defaults
  python benchmarks/learner_throughput.py --device cpu --members 1 8 --widths 64 --quantiles 1
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.learner.agent import AgentConfig, Batch, Noise, Population  # noqa: E402
from calibration.learner.graphs import GraphedUpdate  # noqa: E402

OBS, ACT = 51, 19  # HumanoidBench h1: critic input 70


def make_inputs(m: int, b: int, device, seed: int = 0):
    g = torch.Generator(device=device).manual_seed(seed)
    batch = Batch(torch.randn(m, b, OBS, device=device, generator=g),
                  torch.rand(m, b, ACT, device=device, generator=g) * 2 - 1,
                  torch.randn(m, b, device=device, generator=g),
                  torch.randn(m, b, OBS, device=device, generator=g),
                  (torch.rand(m, b, device=device, generator=g) < 0.01).float())
    noise = Noise(torch.randn(m, b, ACT, device=device, generator=g),
                  torch.randn(m, b, ACT, device=device, generator=g))
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


def slice_member(batch: Batch, noise: Noise, i: int):
    s = slice(i, i + 1)
    return (Batch(batch.obs[s], batch.action[s], batch.reward[s], batch.next_obs[s],
                  batch.done[s]), Noise(noise.next_action[s], noise.action[s]))


def graphed(pop: Population, batch: Batch, noise: Noise, mask):
    """The trainer's CUDA-graph path; raises if capture fails instead of falling back."""
    update = GraphedUpdate(pop, batch, noise, mask, enabled=False)
    update._capture()
    return lambda: update(batch, noise, mask)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--members", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--quantiles", type=int, default=100)
    ap.add_argument("--actor-width", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--max-sequential", type=int, default=64,
                    help="largest M for which the sequential loop is measured")
    ap.add_argument("--compile", nargs="*", default=["16x512", "64x512"],
                    help="MxWIDTH cells to also measure with torch.compile")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast in the population variants")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)")
    print(f"device {name}; torch {torch.__version__}; python {platform.python_version()}; "
          f"batch {args.batch_size}; quantiles {args.quantiles}; actor width {args.actor_width}; "
          f"TF32 on; population variants {'bf16 autocast' if args.amp else 'fp32'}", flush=True)
    print(f"{'M':>3} {'width':>5} {'sequential':>11} {'population':>11} {'ratio':>6} "
          f"{'+graph':>9} {'ratio':>6} {'+compile':>9} {'ratio':>6} {'cmp+graph':>9} {'ratio':>6}"
          "   (member-updates/s)",
          flush=True)
    for width in args.widths:
        for m in args.members:
            cfg = AgentConfig(obs_dim=OBS, act_dim=ACT, width=width, quantiles=args.quantiles,
                              actor_width=args.actor_width)
            batch, noise, mask = make_inputs(m, args.batch_size, device)
            seq = float("nan")
            if m <= args.max_sequential:
                singles = [Population(cfg, 1, [i], device) for i in range(m)]
                parts = [slice_member(batch, noise, i) for i in range(m)]
                one = torch.ones(1, dtype=torch.bool, device=device)

                def sequential():
                    for single, (b, n) in zip(singles, parts):
                        single.update(b, n, one)

                seq = m * timed(sequential, device, args.seconds)
                del singles
            pop = Population(cfg, m, list(range(m)), device, amp=args.amp)
            eager = m * timed(lambda: pop.update(batch, noise, mask), device, args.seconds)
            graph = comp = comp_graph = float("nan")
            if device.type == "cuda":
                try:
                    replay = graphed(pop, batch, noise, mask)
                    graph = m * timed(replay, device, args.seconds)
                except Exception as exc:  # report, do not hide
                    print(f"    CUDA graph failed: {type(exc).__name__}: {exc}"[:300], flush=True)
            if f"{m}x{width}" in args.compile:
                try:
                    fn = torch.compile(pop.update)
                    t = time.perf_counter()
                    fn(batch, noise, mask)
                    sync(device)
                    print(f"    torch.compile warm-up {time.perf_counter() - t:.1f} s", flush=True)
                    comp = m * timed(lambda: fn(batch, noise, mask), device, args.seconds)
                except Exception as exc:
                    print(f"    torch.compile failed: {type(exc).__name__}: {exc}"[:300], flush=True)
                if device.type == "cuda":
                    try:
                        cpop = Population(cfg, m, list(range(m)), device, compiled=True,
                                          amp=args.amp)
                        t = time.perf_counter()
                        replay = graphed(cpop, batch, noise, mask)
                        sync(device)
                        print(f"    compiled nets + capture {time.perf_counter() - t:.1f} s",
                              flush=True)
                        comp_graph = m * timed(replay, device, args.seconds)
                        del cpop
                    except Exception as exc:
                        print(f"    compiled nets + graph failed: {type(exc).__name__}: {exc}"[:300],
                              flush=True)
            print(f"{m:>3} {width:>5} {seq:>11.0f} {eager:>11.0f} {eager / seq:>6.1f} "
                  f"{graph:>9.0f} {graph / seq:>6.1f} {comp:>9.0f} {comp / seq:>6.1f} "
                  f"{comp_graph:>9.0f} {comp_graph / seq:>6.1f}", flush=True)
            pop = None  # free GPU memory before the next cell
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
