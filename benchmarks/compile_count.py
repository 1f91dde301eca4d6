"""What compiling costs a population that trains on spans of its members (`--compile regions`,
and the compiled AdamW step a GPU uses by default): graphs compiled and seconds spent in the
first calls, with the members' dim symbolic in compiled code (fused.LazyCompiled, the
default) and with every shape static (as before). Each side runs in a fresh process with an
empty Inductor cache, so neither reuses the other's kernels.

One population of M members does what a trainer's first steps do: an update on each span of
`--spans` (the members of each round of updates: 48,32,16 for the `minutes` pole's utds 1, 2
and 4), acting on a batch of one, and a critic loss without gradient (the validation loss).
Device independent in what it counts (graphs); the seconds are this machine's (on a GPU,
Triton's compile times differ).

  python benchmarks/compile_count.py                               # M 12, width 64 (quick)
  python benchmarks/compile_count.py --members 48 --width 128 --batch-size 256 --spans 48,32,16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(args: argparse.Namespace, symbolic: bool) -> dict:
    """Graphs and seconds of compiling, in this process (call in a fresh one)."""
    import torch
    import torch._dynamo.utils

    sys.path.insert(0, str(ROOT))
    from calibration.learner import agent, optim
    from calibration.learner.agent import AgentConfig, Batch, Noise, Population
    from calibration.learner.fused import LazyCompiled

    torch.set_num_threads(1)
    for owner, name in ((agent, "COMPILED_NORM"), (optim, "_COMPILED_STEP")):
        old = getattr(owner, name)
        setattr(owner, name, LazyCompiled(old.fn, old.what, dynamic_members=symbolic))
    obs, act = args.obs_act
    cfg = AgentConfig(obs_dim=obs, act_dim=act, width=args.width, quantiles=args.quantiles,
                      actor_width=args.actor_width)
    m, b = args.members, args.batch_size
    pop = Population(cfg, m, list(range(m)), torch.device("cpu"), regions=True)
    g = torch.Generator().manual_seed(0)

    def inputs(k):
        batch = Batch(torch.randn(k, b, obs, generator=g),
                      torch.rand(k, b, act, generator=g) * 2 - 1, torch.randn(k, b, generator=g),
                      torch.randn(k, b, obs, generator=g), torch.zeros(k, b))
        return batch, Noise(torch.randn(k, b, act, generator=g),
                            torch.randn(k, b, act, generator=g))

    seconds = {}
    start = time.perf_counter()
    for k in args.spans:
        part = pop if k == m else pop.span(m - k, m)
        t = time.perf_counter()
        part.update_fn(*inputs(k), torch.ones(k, dtype=torch.bool))
        seconds[f"update on {k}"] = time.perf_counter() - t
    t = time.perf_counter()
    pop.act(torch.randn(m, obs, generator=g), torch.randn(m, act, generator=g))
    seconds["act"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        batch, noise = inputs(m)
        pop.critic_loss(batch, noise.next_action)
    seconds["validation loss"] = time.perf_counter() - t
    return {"graphs": int(torch._dynamo.utils.counters["stats"]["unique_graphs"]),
            "seconds": time.perf_counter() - start, "by_call": seconds,
            "torch": torch.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=12)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--actor-width", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--quantiles", type=int, default=25)
    ap.add_argument("--obs-act", nargs=2, type=int, default=(11, 3), metavar=("OBS", "ACT"))
    ap.add_argument("--spans", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="members per round, the first all of them (default M, 2M/3, M/3)")
    ap.add_argument("--child", choices=("symbolic", "static"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    m = args.members
    args.spans = args.spans or [m, 2 * m // 3, m // 3]
    if args.spans[0] != m or not all(1 <= k <= m for k in args.spans):
        ap.error(f"--spans must start with M ({m}) and lie in 1..{m}, got {args.spans}")
    if args.child:
        print(json.dumps(measure(args, args.child == "symbolic")))
        return
    print(f"population of {m} members, width {args.width}, actor width {args.actor_width}, "
          f"batch {args.batch_size}, quantiles {args.quantiles}, obs/act {args.obs_act}; "
          f"updates on spans of {','.join(map(str, args.spans))}, then act and a validation "
          f"loss; compiled LayerNorm regions and AdamW steps; this machine's CPU, one thread",
          flush=True)
    results = {}
    for side in ("static", "symbolic"):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, TRITON_CACHE_DIR=cache)
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", side],
                                 env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"the {side} run failed:\n{out.stderr[-2000:]}")
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[side]
        calls = ", ".join(f"{k} {v:.1f} s" for k, v in r["by_call"].items())
        label = "members' dim symbolic" if side == "symbolic" else "every shape static"
        print(f"{label:>22}: {r['graphs']:>3} graphs, {r['seconds']:6.1f} s ({calls})",
              flush=True)
    s, d = results["static"], results["symbolic"]
    print(f"symbolic / static: {d['graphs']} / {s['graphs']} graphs, "
          f"{d['seconds']:.1f} / {s['seconds']:.1f} s ({s['seconds'] / d['seconds']:.1f}x "
          f"less compiling); torch {d['torch']}")


if __name__ == "__main__":
    main()
