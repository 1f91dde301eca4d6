"""Do populations trained as threads (`advisor calibrate --backend threads`) step their
environments in parallel? Only if the simulator releases Python's GIL while it works. Steps
N gymnasium envs (one per thread, the way each population's loop steps its own vector env)
one after another and then in N threads at once, and prints both rates and their ratio, for
the raw simulator call (mj_step) and for the whole env.step.

  python benchmarks/env_threads.py [--env Hopper-v5] [--threads 2] [--steps 3000]
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


if __name__ == "__main__":
    main()
