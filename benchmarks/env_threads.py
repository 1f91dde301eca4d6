"""Do populations trained as threads (`advisor calibrate --backend threads`) step their
environments in parallel? Only if the simulator releases Python's GIL while it works. Steps
N gymnasium envs (one per thread, the way each population's loop steps its own vector env)
one after another and then in N threads at once, and prints both rates and their ratio, for
the raw simulator call (mj_step) and for the whole env.step. Then the trainer's VectorEnvs of
--members envs (a population's), stepped with random actions: sync against threads
(`TrainConfig(vector_env="threads", env_threads=K)`, what `advisor calibrate` uses on a GPU),
2 and --threads of them, each thread stepping its chunk of envs whole, or, the trainer's way
for gymnasium's own MuJoCo envs (trainer.PhysicsAhead), the physics of every env run ahead in
the threads and the envs' Python after it in one; the ways interleaved in --blocks blocks of
--vector-steps steps, so that a slow spell of a shared machine hits each alike.

  python benchmarks/env_threads.py [--env Hopper-v5] [--threads 2] [--steps 3000] [--members 48]
"""

from __future__ import annotations

import argparse
import os
import threading
import time


def rate(fns, threaded: bool) -> float:
    """Seconds to run all `fns`, one after another or in threads at once."""
    t = time.perf_counter()
    if threaded:
        threads = [threading.Thread(target=f) for f in fns]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    else:
        for f in fns:
            f()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="Hopper-v5")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--members", type=int, default=48)
    ap.add_argument("--vector-steps", type=int, default=40, help="steps per block")
    ap.add_argument("--blocks", type=int, default=25, help="blocks per way, interleaved")
    args = ap.parse_args()
    import gymnasium as gym
    import mujoco

    envs = [gym.make(args.env) for _ in range(args.threads)]
    for i, env in enumerate(envs):
        env.reset(seed=i)

    def sim(env):
        def run():
            raw = env.unwrapped
            for _ in range(args.steps):
                mujoco.mj_step(raw.model, raw.data, nstep=raw.frame_skip)
        return run

    def step(env):
        def run():
            action = env.action_space.sample()
            for _ in range(args.steps):
                if any(env.step(action)[2:4]):
                    env.reset()
        return run

    print(f"{args.env}, {args.threads} envs x {args.steps} steps, {os.cpu_count()} cpus",
          flush=True)
    for label, make in (("mj_step", sim), ("env.step", step)):
        seq = rate([make(e) for e in envs], threaded=False)
        par = rate([make(e) for e in envs], threaded=True)
        n = args.threads * args.steps
        print(f"{label:>9}: one after another {n / seq:,.0f} steps/s, {args.threads} threads at "
              f"once {n / par:,.0f} steps/s ({seq / par:.2f}x)", flush=True)
    vector(args)


def vector(args) -> None:
    import sys
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from calibration.learner.trainer import VectorEnvs

    m = args.members
    rng = np.random.default_rng(0)
    ways = {"sync": VectorEnvs(args.env, list(range(m)), threads=1)}
    for k in sorted({2, args.threads}):
        ways[f"{k} threads, whole steps"] = whole = VectorEnvs(args.env, list(range(m)),
                                                                threads=k)
        if whole.vec.ahead is not None:  # each thread steps its chunk of envs whole again
            for u in whole.vec.ahead.raw:
                del u.do_simulation
            whole.vec.ahead = None
        ahead = VectorEnvs(args.env, list(range(m)), threads=k)
        if ahead.vec.ahead is not None:
            ways[f"{k} threads, physics ahead (the trainer's)"] = ahead
        else:
            print(f"{args.env} is not one of gymnasium's own MuJoCo envs: no physics ahead")
            ahead.close()
    act_dim = ways["sync"].low.shape[0]
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for _ in range(args.blocks):  # interleaved, so that a slow spell hits every way alike
            for name, envs in ways.items():
                acts = rng.uniform(-1, 1, (args.vector_steps, m, act_dim))
                t = time.perf_counter()
                for a in acts:
                    envs.step(a)
                times[name].append((time.perf_counter() - t) / len(acts))
    finally:
        for envs in ways.values():
            envs.close()
    base = float(np.median(times["sync"]))
    print(f"VectorEnvs of {m} members, {args.blocks} interleaved blocks of "
          f"{args.vector_steps} steps each way; median (quartiles) per population step:")
    for name, t in times.items():
        q1, med, q3 = np.percentile(t, [25, 50, 75])
        print(f"  {name}: {med * 1e3:.2f} ms ({q1 * 1e3:.2f}-{q3 * 1e3:.2f}; "
              f"{m / med:,.0f} env steps/s, {base / med:.2f}x sync)", flush=True)


if __name__ == "__main__":
    main()
