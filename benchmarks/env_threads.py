"""Do populations trained as threads (`advisor calibrate --backend threads`) step their
environments in parallel? Only if the simulator releases Python's GIL while it works. Steps
N gymnasium envs (one per thread, the way each population's loop steps its own vector env)
one after another and then in N threads at once, and prints both rates and their ratio, for
the raw simulator call (mj_step) and for the whole env.step. Then the trainer's VectorEnvs of
--members envs (a population's), stepped with random actions: sync against threads
(`TrainConfig(vector_env="threads", env_threads=K)`, what `advisor calibrate` uses on a GPU).

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
    ap.add_argument("--vector-steps", type=int, default=300)
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
    actions = np.random.default_rng(0).uniform(-1, 1, (args.vector_steps, m, 1))
    base = None
    for threads in sorted({1, 2, args.threads}):
        envs = VectorEnvs(args.env, list(range(m)), threads=threads)
        acts = np.broadcast_to(actions, (*actions.shape[:2], envs.low.shape[0]))
        try:
            envs.step(acts[0])
            t = time.perf_counter()
            for a in acts[1:]:
                envs.step(a)
            dt = (time.perf_counter() - t) / (len(acts) - 1)
        finally:
            envs.close()
        base = base or dt
        print(f"VectorEnvs, {m} members, {'sync' if threads == 1 else f'{threads} threads'}: "
              f"{dt * 1e3:.2f} ms per population step ({m / dt:,.0f} env steps/s, "
              f"{base / dt:.2f}x sync)", flush=True)


if __name__ == "__main__":
    main()
