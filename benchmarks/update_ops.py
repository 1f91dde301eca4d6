"""Operations one eager population update dispatches, by name: on a GPU each is (about) one
kernel launch, and at `minutes` sizes the update is latency-bound, so this count, not FLOPs,
sets its time. Views and allocations (no kernel) are left out. Device-independent: run it
on the CPU. On a GPU the fused quantile-Huber loss is compiled (fused.py): its ~20 eager
operations counted here are one or two kernels there. Compiled paths run their own generated
kernels, which this cannot see: count those with benchmarks/profile_update.py on a GPU.

  python benchmarks/update_ops.py                          # the minutes and M=16 w512 cells
  python benchmarks/update_ops.py --cells 48x128:128,256 --top 10
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.learner_throughput import ACT, OBS, make_inputs  # noqa: E402
from calibration.learner.agent import AgentConfig, Population  # noqa: E402

NO_KERNEL = {"view", "_unsafe_view", "t", "expand", "as_strided", "unsqueeze", "squeeze",
             "transpose", "permute", "slice", "select", "split", "split_with_sizes", "chunk",
             "alias", "detach", "unbind", "reshape", "_reshape_alias", "narrow", "lift_fresh",
             "empty", "empty_like", "empty_strided"}


class Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name not in NO_KERNEL:
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))


def count(m: int, width: int, batch_sizes: list[int], quantiles: int) -> collections.Counter:
    cfg = AgentConfig(obs_dim=OBS, act_dim=ACT, width=width, quantiles=quantiles)
    sizes = [batch_sizes[i % len(batch_sizes)] for i in range(m)]
    pop = Population(cfg, m, list(range(m)), torch.device("cpu"),
                     batch_sizes=sizes if len(batch_sizes) > 1 else None)
    batch, noise, mask = make_inputs(m, max(batch_sizes), torch.device("cpu"))
    pop.update(batch, noise, mask)  # first call outside the count
    with Count() as counter:
        pop.update(batch, noise, mask)
    return counter.calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", nargs="+", default=["16x512:256", "48x128:128,256",
                                                   "24x128:128", "16x64:128,256"],
                    help="MxWIDTH:BATCH[,BATCH...] (several batch sizes: packed)")
    ap.add_argument("--quantiles", type=int, default=100)
    ap.add_argument("--top", type=int, default=6)
    args = ap.parse_args()
    print(f"torch {torch.__version__}; eager fused update (the one a CUDA graph captures); "
          f"quantiles {args.quantiles}; operations per update (views left out)", flush=True)
    for cell in args.cells:
        shape, _, sizes = cell.partition(":")
        m, width = map(int, shape.split("x"))
        calls = count(m, width, [int(b) for b in sizes.split(",")], args.quantiles)
        total = sum(calls.values())
        top = ", ".join(f"{k} {v}" for k, v in calls.most_common(args.top))
        print(f"M {m:>3} width {width:>4} batch {sizes:>8}: {total:>4} operations ({top}); "
              f"AdamW kernel launches {calls['_fused_adamw_']} "
              f"({calls['_fused_adamw_'] / total:.0%})", flush=True)


if __name__ == "__main__":
    main()
