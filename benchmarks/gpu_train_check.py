"""A short real training run of the population trainer (vector envs stepped while the CUDA-graph
update runs, replay, evaluation, logging) to measure end-to-end throughput on the device.

  python benchmarks/gpu_train_check.py [--env HalfCheetah-v5] [--members 16] [--width 512]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.archives import read_runs  # noqa: E402
from calibration.learner.trainer import TrainConfig, train_population  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="HalfCheetah-v5")
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--steps", type=int, default=6_000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cuda-graph", type=int, default=1)
    ap.add_argument("--compile", type=int, default=0, help="torch.compile the whole update")
    ap.add_argument("--optimizer", default="auto", choices=["auto", "ops", "kernel", "compiled"],
                    help="AdamW implementation (calibration/learner/optim.py)")
    ap.add_argument("--vector-env", default="auto", choices=["auto", "sync", "async"])
    args = ap.parse_args()
    cfg = TrainConfig(env_id=args.env, steps=args.steps, utds=[1.0] * args.members,
                      seeds=list(range(args.members)), width=args.width, batch_size=256,
                      random_steps=1_000, eval_every=args.steps // 2, device=args.device,
                      cuda_graph=bool(args.cuda_graph), compile=bool(args.compile),
                      optimizer=args.optimizer, vector_env=args.vector_env, name="check")
    with tempfile.TemporaryDirectory() as out:
        m = train_population(cfg, out, progress=lambda s, r: print(
            f"step {s}: mean eval return {r.mean():.1f}", flush=True))
        runs = read_runs(Path(out) / "check", metrics=("return", "critic_loss",
                                                      "validation_critic_loss"))
    print(json.dumps({k: m[k] for k in ("device", "device_name", "wall_time_s", "env_steps_per_s",
                                        "member_updates", "member_updates_per_s", "diverged",
                                        "phase_s")}))
    print(f"logs read back: {len(runs)} run(s), {runs[0].n_seeds} seeds, metrics "
          f"{sorted(runs[0].values)}")


if __name__ == "__main__":
    main()
