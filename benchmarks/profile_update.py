"""Where the GPU time of one population update goes: the eager fused update (the one the
trainer captures in a CUDA graph) under torch.profiler, top kernels by GPU time, and the GPU
time per update against the CUDA-graph replay's wall time.

  python benchmarks/profile_update.py                  # M=16, width 512 on a GPU
  python benchmarks/profile_update.py --members 48 --width 128 --obs-act 11 3   # minutes' pole
  python benchmarks/profile_update.py --device cpu --width 64 --quantiles 25   # dry run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.learner_throughput import ACT, OBS, make_inputs, sync  # noqa: E402
from calibration.learner.agent import AgentConfig, Population  # noqa: E402
from calibration.learner.graphs import GraphedUpdate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--quantiles", type=int, default=100)
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--obs-act", type=int, nargs=2, default=[OBS, ACT], metavar=("OBS", "ACT"),
                    help="observation and action sizes (default HumanoidBench h1; Hopper: 11 3)")
    args = ap.parse_args()
    obs, act = args.obs_act
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = AgentConfig(obs_dim=obs, act_dim=act, width=args.width, quantiles=args.quantiles)
    pop = Population(cfg, args.members, list(range(args.members)), device)
    batch, noise, mask = make_inputs(args.members, args.batch_size, device, obs=obs, act=act)
    for _ in range(3):
        pop.update_fn(batch, noise, mask)
    sync(device)
    cuda = device.type == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for _ in range(args.updates):
            pop.update_fn(batch, noise, mask)
        sync(device)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = prof.key_averages()
    total = sum(getattr(e, "self_device_time_total" if cuda else "self_cpu_time_total", 0)
                for e in events)
    n_kernels = sum(e.count for e in events
                    if cuda and e.device_type == torch.autograd.DeviceType.CUDA)
    print(f"M {args.members}, width {args.width}, batch {args.batch_size}, quantiles "
          f"{args.quantiles}, obs {obs} act {act}: {total / args.updates / 1000:.2f} ms of "
          f"{'GPU' if cuda else 'CPU'} time per update; {n_kernels / args.updates:.0f} kernels "
          "per update", flush=True)
    print(events.table(sort_by=key, row_limit=args.rows, max_name_column_width=60), flush=True)
    if cuda:
        graphed = GraphedUpdate(pop, batch, noise, mask, enabled=False)
        graphed._capture()
        for _ in range(3):
            graphed(batch, noise, mask)
        sync(device)
        t = time.perf_counter()
        for _ in range(args.updates):
            graphed(batch, noise, mask)
        sync(device)
        print(f"CUDA-graph replay: {(time.perf_counter() - t) / args.updates * 1000:.2f} ms per "
              "update wall", flush=True)


if __name__ == "__main__":
    main()
