"""Train a population on a gymnasium task and log it in the published archive layout.

    from calibration.learner import TrainConfig, train_population
    train_population(TrainConfig(env_id="InvertedPendulum-v5", steps=20_000, width=64,
                                 utds=[1, 1], seeds=[0, 1], quantiles=1), "runs/")

Each member has its own training, validation and evaluation environment (seeds differ). Logs:
`<out>/<name>/w{width}p{params}/utd_{utd}/{env}/{metric}/bs_{B}_lr_{lr}_sep_False.npy`, each
(T, 1 + S) with the env step in column 0 and one column per seed of the members sharing
(utd, learning rate); metrics `return`, `critic_loss`, `validation_critic_loss`. A manifest JSON
beside them records the configuration, versions, device, wall time and throughput. Every file is
written atomically (temporary file, then rename) at each log point.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from advisor.errors import AdvisorError
from calibration.atomic import atomic_save as _atomic_save
from calibration.learner.agent import AgentConfig, Noise, Population
from calibration.learner.graphs import GraphedUpdate
from calibration.learner.replay import Replay


class LearnerError(AdvisorError):
    """A training request that cannot run: unknown env, discrete actions, missing device."""


@dataclass
class TrainConfig:
    env_id: str
    steps: int
    utds: list[float]
    seeds: list[int]
    width: int = 512
    batch_size: int = 256
    learning_rates: list[float] | None = None
    quantiles: int = 100
    critic_blocks: int = 2
    actor_width: int = 256
    random_steps: int = 2_500
    eval_every: int = 25_000
    eval_episodes: int = 1
    validation_every: int = 10
    reset_every: int | None = None  # env steps between full parameter resets (None: never)
    buffer_size: int | None = None  # default: steps
    device: str = "auto"
    cuda_graph: bool = True  # replay the update from a CUDA graph on GPUs
    compile: bool = False  # torch.compile the networks and loss (about a minute of warm-up)
    name: str = "population"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.utds) != len(self.seeds):
            raise LearnerError(f"utds ({len(self.utds)}) and seeds ({len(self.seeds)}) must "
                               "have one entry per member")
        if not self.seeds:
            raise LearnerError("a population needs at least one member")
        if any(not (u > 0 and math.isfinite(u)) for u in self.utds):
            raise LearnerError(f"utds must be positive, got {self.utds}")
        if self.learning_rates is not None and len(self.learning_rates) != len(self.seeds):
            raise LearnerError("learning_rates must have one entry per member")


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LearnerError("device 'cuda' was asked for but no CUDA GPU is visible; use "
                           "--device cpu or auto")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise LearnerError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


def make_env(env_id: str, seed: int):
    """A gymnasium env with a continuous (Box) action space, seeded."""
    import gymnasium as gym

    try:
        env = gym.make(env_id)
    except gym.error.Error as exc:
        raise LearnerError(f"unknown or unavailable gymnasium env {env_id!r}: {exc}") from None
    if not isinstance(env.action_space, gym.spaces.Box):
        raise LearnerError(f"env {env_id!r} has a {type(env.action_space).__name__} action "
                           "space; the SAC learner needs continuous (Box) actions")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


class _Envs:
    """One env per member, stepped together; actions in [-1, 1] scaled to the bounds."""

    def __init__(self, env_id: str, seeds: list[int]):
        self.envs = [make_env(env_id, s) for s in seeds]
        self.seeds = seeds
        space = self.envs[0].action_space
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.obs = np.stack([e.reset(seed=s)[0] for e, s in zip(self.envs, seeds)]).astype(
            np.float32)

    def step(self, action: np.ndarray):
        """Returns next_obs for storage, reward, terminated, and resets finished episodes."""
        scaled = self.low + (action + 1.0) * 0.5 * (self.high - self.low)
        next_obs, rew, term, ended = [], [], [], []
        for i, env in enumerate(self.envs):
            o, r, te, tr, _ = env.step(scaled[i])
            next_obs.append(o)
            rew.append(r)
            term.append(te)
            ended.append(te or tr)
        next_obs = np.stack(next_obs).astype(np.float32)
        self.obs = next_obs.copy()
        for i, done in enumerate(ended):
            if done:
                self.obs[i] = self.envs[i].reset()[0]
        return next_obs, np.array(rew, np.float32), np.array(term, np.float32), np.array(ended)


def evaluate(pop: Population, env_id: str, seeds: list[int], episodes: int, device) -> np.ndarray:
    """Mean deterministic return per member over `episodes` episodes."""
    envs = [make_env(env_id, s) for s in seeds]
    space = envs[0].action_space
    low, high = space.low, space.high
    totals = np.zeros(len(envs))
    for ep in range(episodes):
        obs = np.stack([e.reset(seed=s + 7919 * ep)[0] for e, s in zip(envs, seeds)])
        running = np.ones(len(envs), bool)
        while running.any():
            act = pop.act(torch.as_tensor(obs, dtype=torch.float32, device=device), None)
            act = act.cpu().numpy().astype(np.float64)
            for i in np.flatnonzero(running):
                o, r, te, tr, _ = envs[i].step(low + (act[i] + 1) * 0.5 * (high - low))
                totals[i] += r
                obs[i] = o
                if te or tr:
                    running[i] = False
    for e in envs:
        e.close()
    return totals / episodes


def train_population(cfg: TrainConfig, out_dir: str | os.PathLike, progress=None) -> dict:
    """Train every member for cfg.steps env steps; returns the manifest (also written)."""
    device = resolve_device(cfg.device)
    m = len(cfg.seeds)
    envs = _Envs(cfg.env_id, [int(s) for s in cfg.seeds])
    val_envs = _Envs(cfg.env_id, [int(s) + 10_000 for s in cfg.seeds])
    obs_dim = envs.obs.shape[1]
    act_dim = envs.low.shape[0]
    agent_cfg = AgentConfig(obs_dim=obs_dim, act_dim=act_dim, width=cfg.width,
                            quantiles=cfg.quantiles, critic_blocks=cfg.critic_blocks,
                            actor_width=cfg.actor_width)
    lrs = cfg.learning_rates or [agent_cfg.learning_rate] * m
    torch.manual_seed(int(cfg.seeds[0]))
    pop = Population(agent_cfg, m, [int(s) for s in cfg.seeds], device, torch.tensor(lrs),
                     compiled=cfg.compile)
    gen = torch.Generator(device=device).manual_seed(int(sum(cfg.seeds)) + 1)
    np_rng = np.random.default_rng(int(cfg.seeds[0]))
    replay = Replay(m, cfg.buffer_size or cfg.steps, obs_dim, act_dim, device)
    val_replay = Replay(m, cfg.steps // cfg.validation_every + 1, obs_dim, act_dim, device)
    utds = torch.tensor(cfg.utds, dtype=torch.float64)
    credit = torch.zeros(m, dtype=torch.float64)
    diverged = torch.zeros(m, dtype=torch.bool)
    logs: dict[str, list] = {"step": [], "return": [], "critic_loss": [],
                             "validation_critic_loss": []}
    loss_sum = torch.zeros(m, device=device)
    loss_n = 0
    updates = 0
    graphed = None
    t0 = time.perf_counter()
    out = Path(out_dir)
    params = agent_cfg.critic_params

    def log(step: int) -> None:
        nonlocal loss_sum, loss_n
        ret = evaluate(pop, cfg.env_id, [int(s) + 20_000 for s in cfg.seeds], cfg.eval_episodes,
                       device)
        if val_replay.size > 0:
            with torch.no_grad():
                vb = val_replay.sample(cfg.batch_size, gen)
                noise = torch.randn(vb.action.shape, device=device, generator=gen)
                vloss = pop.critic_loss(vb, noise).cpu().numpy()
        else:
            vloss = np.full(m, np.nan)
        closs = (loss_sum / max(loss_n, 1)).cpu().numpy() if loss_n else np.full(m, np.nan)
        dead = diverged.numpy()
        for key, val in (("return", ret), ("critic_loss", closs),
                         ("validation_critic_loss", vloss)):
            val = np.where(dead, np.nan, val)
            logs[key].append(val)
        logs["step"].append(step)
        loss_sum = torch.zeros(m, device=device)
        loss_n = 0
        _write_logs(cfg, out, logs, params, lrs)
        if progress:
            progress(step, ret)

    for step in range(1, cfg.steps + 1):
        obs_t = torch.as_tensor(envs.obs, device=device)
        if step <= cfg.random_steps:
            action = np_rng.uniform(-1, 1, (m, act_dim)).astype(np.float32)
        else:
            noise = torch.randn(m, act_dim, device=device, generator=gen)
            action = pop.act(obs_t, noise).cpu().numpy()
        next_obs, rew, term, _ = envs.step(action)
        replay.add(obs_t, torch.as_tensor(action), torch.as_tensor(rew),
                   torch.as_tensor(next_obs), torch.as_tensor(term))
        if step % cfg.validation_every == 0:
            vobs = torch.as_tensor(val_envs.obs, device=device)
            vnoise = torch.randn(m, act_dim, device=device, generator=gen)
            vact = pop.act(vobs, vnoise).cpu().numpy() if step > cfg.random_steps else \
                np_rng.uniform(-1, 1, (m, act_dim)).astype(np.float32)
            vnext, vrew, vterm, _ = val_envs.step(vact)
            val_replay.add(vobs, torch.as_tensor(vact), torch.as_tensor(vrew),
                           torch.as_tensor(vnext), torch.as_tensor(vterm))
        if step > cfg.random_steps:
            credit += utds
            n_updates = torch.floor(credit + 1e-9)
            credit -= n_updates
            for u in range(int(n_updates.max())):
                mask_cpu = (n_updates > u) & ~diverged
                if not mask_cpu.any():
                    break
                mask = mask_cpu.to(device)
                batch = replay.sample(cfg.batch_size, gen)
                noise = Noise(torch.randn(batch.action.shape, device=device, generator=gen),
                              torch.randn(batch.action.shape, device=device, generator=gen))
                if graphed is None:
                    graphed = GraphedUpdate(pop, batch, noise, mask, cfg.cuda_graph)
                loss, bad = guarded_update(pop, batch, noise, mask, diverged, graphed)
                loss_sum += torch.where(mask & ~bad, loss, torch.zeros_like(loss))
                loss_n += 1
                updates += int(mask_cpu.sum())
        if cfg.reset_every and step % cfg.reset_every == 0 and step < cfg.steps:
            k = step // cfg.reset_every
            fresh = Population(agent_cfg, m, [int(s) + 1_000_003 * k for s in cfg.seeds], device,
                               torch.tensor(lrs), compiled=cfg.compile)
            pop = fresh
            graphed = None
        if step % cfg.eval_every == 0 or step == cfg.steps:
            log(step)

    wall = time.perf_counter() - t0
    manifest = {
        "config": asdict(cfg), "critic_params": params, "obs_dim": obs_dim, "act_dim": act_dim,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        platform.processor() or platform.machine(),
        "versions": _versions(), "wall_time_s": wall,
        "env_steps_per_s": cfg.steps / wall, "member_updates": updates,
        "member_updates_per_s": updates / wall, "diverged": diverged.tolist(),
    }
    _atomic_save(out / cfg.name / "manifest.json", text=json.dumps(manifest, indent=1))
    return manifest


def guarded_update(pop: Population, batch, noise: Noise, mask: torch.Tensor,
                   diverged: torch.Tensor, update=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One population update (`update`: a GraphedUpdate, default the eager one); members whose
    loss is non-finite are marked in `diverged` (CPU bool tensor, updated in place) and frozen.
    Returns (critic loss, newly diverged) on the device."""
    loss = (update or pop.update)(batch, noise, mask)["critic_loss"]
    bad = ~torch.isfinite(loss)
    if bool(bad.any()):
        diverged |= bad.cpu()
        _restore_finite(pop)
    return loss, bad


def _restore_finite(pop: Population) -> None:
    """Replace non-finite parameters of diverged members by zeros so the batch stays finite;
    those members are frozen (masked) from now on and logged as NaN."""
    with torch.no_grad():
        for p in (*pop.critic.values(), *pop.actor.values(), *pop.target.values()):
            p.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        for opt in (pop.critic_opt, pop.actor_opt, pop.alpha_opt):
            for buf in (*opt.m, *opt.v):
                buf.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


def _write_logs(cfg: TrainConfig, out: Path, logs: dict, params: int, lrs: list[float]) -> None:
    steps = np.array(logs["step"], dtype=np.float64)[:, None]
    groups: dict[tuple, list[int]] = {}
    for i, (u, lr) in enumerate(zip(cfg.utds, lrs)):
        groups.setdefault((float(u), float(lr)), []).append(i)
    for (u, lr), members in groups.items():
        for metric in ("return", "critic_loss", "validation_critic_loss"):
            values = np.array(logs[metric], dtype=np.float64)[:, members]
            path = (out / cfg.name / f"w{cfg.width}p{params}" / f"utd_{u:g}" / cfg.env_id / metric
                    / f"bs_{cfg.batch_size}_lr_{lr:g}_sep_False.npy")
            _atomic_save(path, np.concatenate([steps, values], axis=1))


def _versions() -> dict:
    import gymnasium

    import advisor

    out = {"value-scaling-advisor": advisor.__version__, "torch": torch.__version__,
           "gymnasium": gymnasium.__version__, "numpy": np.__version__,
           "python": platform.python_version()}
    try:
        import mujoco

        out["mujoco"] = mujoco.__version__
    except ImportError:
        pass
    return out
