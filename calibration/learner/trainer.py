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

import hashlib
import json
import math
import numbers
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from advisor import _mujoco
from advisor.errors import AdvisorError
from calibration.atomic import atomic_save as _atomic_save
from calibration.learner import checkpoint
from calibration.learner.agent import AgentConfig, Noise, Population
from calibration.learner.graphs import GraphedUpdate
from calibration.learner.optim import IMPLS
from calibration.learner.replay import Replay

COMPILE_MODES = ("none", "regions", "update")
MAX_SPANS = 8  # spans of members per population, each with its CUDA graph (TrainConfig.spans)
VECTOR_ENVS = ("auto", "sync", "threads", "async")


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
    # Per-member batch sizes (packing several batch sizes into one population; Population);
    # None: every member uses batch_size.
    batch_sizes: list[int] | None = None
    learning_rates: list[float] | None = None
    quantiles: int = 100
    critic_blocks: int = 2
    actor_width: int = 256
    random_steps: int = 2_500
    eval_every: int = 25_000
    eval_episodes: int = 1
    validation_every: int = 10
    buffer_size: int | None = None  # replay capacity per member (default: steps; oldest dropped)
    device: str = "auto"
    cuda_graph: bool = True  # replay the update from a CUDA graph on GPUs
    # torch.compile: "none"; "regions" (LayerNorm regions and AdamW steps: seconds of warm-up;
    # Population.regions); "update" (the whole update: a minute or more). True = "update".
    compile: bool | str = "none"
    amp: bool = False  # bf16 autocast for the networks
    bf16: bool = False  # bf16 weight copies and activations (Population.bf16); not with amp
    optimizer: str = "auto"  # AdamW implementation (Population.optimizer, optim.IMPLS)
    # A round of updates that only some members take (members with a higher utd than others:
    # with utds 1, 2, 4, the second round is for the last two thirds, the third and fourth for
    # the last third) runs on the contiguous span of members that holds them (Population.span,
    # its own CUDA graph), not on every member with the rest masked out: same arithmetic,
    # fewer member-updates computed. Not with compile "update" (a compile per span).
    spans: bool = True
    # How the members' envs step: sync (one after another in this process), threads (chunks of
    # them in env_threads threads: MuJoCo simulates without the GIL; same results as sync),
    # async (a worker process per member), auto (async on a GPU from 8 members, else sync).
    vector_env: str = "auto"
    env_threads: int = 4
    # Evaluation episodes in a thread of their own (a CUDA stream of its own on a GPU), on a
    # copy of the actor taken at the log step, while training goes on: the same returns (the
    # episodes depend only on that copy and the eval envs' seeds), logged when they end (at
    # the next log step at the latest). An episode's steps wait for the GPU one by one, so
    # inline they stall the population for seconds at each log step. Off by default: on a
    # CPU the thread takes a core training would use; on an H100 it did not speed up stage 1
    # of `minutes` (acting took the time evaluation gave back; docs/throughput.md, session 19).
    eval_background: bool = False
    divergence_check_every: int = 100  # updates between host reads of the divergence flags
    name: str = "population"
    # Seconds of training between checkpoints (written at log points, removed at the end; a
    # rerun resumes from the last: learner.checkpoint); None: none.
    checkpoint_s: float | None = 120.0

    def __post_init__(self):
        # Plain Python numbers (numpy ones would not go into the manifest's or a checkpoint's
        # JSON); a seed or batch size that is not a whole number is refused.
        try:
            self.utds = [float(u) for u in self.utds]
            self.seeds = [_whole(s, "seeds") for s in self.seeds]
            if self.batch_sizes is not None:
                self.batch_sizes = [_whole(b, "batch_sizes") for b in self.batch_sizes]
            if self.learning_rates is not None:
                self.learning_rates = [float(x) for x in self.learning_rates]
        except (TypeError, ValueError) as exc:
            raise LearnerError(f"utds, seeds, batch_sizes and learning_rates must be lists of "
                               f"numbers: {exc}") from None
        if len(self.utds) != len(self.seeds):
            raise LearnerError(f"utds ({len(self.utds)}) and seeds ({len(self.seeds)}) must "
                               "have one entry per member")
        if not self.seeds:
            raise LearnerError("a population needs at least one member")
        if any(not (u > 0 and math.isfinite(u)) for u in self.utds):
            raise LearnerError(f"utds must be positive, got {self.utds}")
        if self.batch_sizes is not None and (len(self.batch_sizes) != len(self.seeds)
                                             or min(self.batch_sizes) < 1):
            raise LearnerError(f"batch_sizes must have one positive entry per member, got "
                               f"{self.batch_sizes}")
        if self.learning_rates is not None and len(self.learning_rates) != len(self.seeds):
            raise LearnerError("learning_rates must have one entry per member")
        if self.learning_rates is not None and any(
                not (lr > 0 and math.isfinite(lr)) for lr in self.learning_rates):
            raise LearnerError(f"learning_rates must be positive and finite, got "
                               f"{self.learning_rates}")
        if not isinstance(self.env_id, str) or not self.env_id:
            raise LearnerError(f"env_id must be a Gymnasium id such as 'Hopper-v5', got "
                               f"{self.env_id!r}")
        # Sizes and counts: whole numbers within bounds, or they fail deep in torch (a zero
        # width divides by zero, a negative step count is a negative tensor size).
        # (The bounds are calibration.grid's where a grid sets the field.)
        for field, low, high in (("steps", 1, 10**12), ("width", 1, 2**16),
                                 ("batch_size", 1, 2**20), ("quantiles", 1, 10**9),
                                 ("critic_blocks", 0, 64), ("actor_width", 1, 2**16),
                                 ("random_steps", 0, 10**12), ("eval_every", 1, 10**12),
                                 ("eval_episodes", 1, 1000), ("validation_every", 1, 10**12)):
            value = getattr(self, field)
            if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                    or not low <= value <= high):
                raise LearnerError(f"{field} must be a whole number from {low:,} to {high:,}, "
                                   f"got {value!r}")
            setattr(self, field, int(value))
        parts = self.name.split("/") if isinstance(self.name, str) else [""]
        if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            raise LearnerError(f"name must be a folder path inside the out-dir (such as "
                               f"'population' or 'runs/unit'; no '..', no leading '/'), got "
                               f"{self.name!r}")
        files = _log_files(self, 0, self.learning_rates or [0.0] * len(self.seeds))
        if sum(len(members) for members in files.values()) < len(self.seeds) * len(METRICS):
            raise LearnerError("two members differ in utd or learning rate only beyond 6 "
                               "significant digits, so their logs would share one file; "
                               "round them or make them differ more")
        if self.vector_env not in VECTOR_ENVS:
            raise LearnerError(f"vector_env must be one of {', '.join(VECTOR_ENVS)}, got "
                               f"{self.vector_env!r}")
        if self.env_threads < 1:
            raise LearnerError(f"env_threads must be at least 1, got {self.env_threads}")
        if self.buffer_size is not None and self.buffer_size < 1:
            raise LearnerError(f"buffer_size must be positive, got {self.buffer_size}")
        if isinstance(self.compile, bool):
            self.compile = "update" if self.compile else "none"
        if self.compile not in COMPILE_MODES:
            raise LearnerError(f"compile must be one of {', '.join(COMPILE_MODES)}, got "
                               f"{self.compile!r}")
        if self.optimizer not in ("auto", *IMPLS):
            raise LearnerError(f"optimizer must be auto or one of {', '.join(IMPLS)}, got "
                               f"{self.optimizer!r}")
        for field in ("amp", "bf16"):
            if not isinstance(getattr(self, field), bool):
                raise LearnerError(f"{field} must be True or False, got "
                                   f"{getattr(self, field)!r}")
        if self.amp and self.bf16:
            raise LearnerError("amp (bf16 autocast) and bf16 (bf16 weight copies) are two ways "
                               "to compute in bf16; set at most one")
        if self.divergence_check_every < 1:
            raise LearnerError("divergence_check_every must be at least 1")
        if self.checkpoint_s is not None and not self.checkpoint_s >= 0:
            raise LearnerError(f"checkpoint_s must be None or >= 0 seconds, got "
                               f"{self.checkpoint_s}")


def _whole(x, name: str) -> int:
    if float(x) != int(x):
        raise ValueError(f"{name} holds {x}, not a whole number")
    return int(x)


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


def gym_make(env_id: str):
    """gymnasium.make(env_id), MuJoCo's warnings going to stderr (each once) rather than into
    a MUJOCO_LOG.TXT in the folder the run started in (advisor._mujoco)."""
    import importlib

    import gymnasium as gym

    module, _, name = env_id.rpartition(":")
    try:
        if module:  # an env of the user's: its module may import MuJoCo
            importlib.import_module(module)
        spec = gym.spec(name)
    except Exception:  # noqa: BLE001 - gym.make says what is wrong with the id
        spec = None
    _mujoco.warnings_to_stderr(spec)
    return gym.make(env_id)


def make_env(env_id: str, seed: int):
    """A gymnasium env with a continuous (Box) action space, seeded."""
    import warnings

    import gymnasium as gym
    from gymnasium.envs.registration import parse_env_id

    module, colon, name = env_id.partition(":") if ":" in env_id else ("", "", env_id)
    try:
        unversioned = parse_env_id(name)[2] is None
    except gym.error.Error:  # not an id gymnasium parses: make says what is wrong
        unversioned = False
    caught: list = []
    try:
        if unversioned:  # gymnasium may fall back to a version, with a warning: refused below
            # (only here: catch_warnings swaps global state, which threads making envs share)
            with warnings.catch_warnings(record=True) as caught:
                env = gym_make(env_id)
        else:
            env = gym_make(env_id)
    except gym.error.Error as exc:
        hint = ""
        if isinstance(exc, (gym.error.NameNotFound, gym.error.NamespaceNotFound)):
            hint = (f"; {module} was imported, and registers no such id (pass the id its "
                    "gymnasium.register(id=...) gives)" if colon else
                    "; an env of your own: register it in a module (gymnasium.register(id="
                    "'Name-v0', entry_point=...)), make the module importable (installed, or "
                    "on PYTHONPATH) and pass --env your_module:Name-v0")
        raise LearnerError(f"unknown or unavailable gymnasium env {env_id!r}: "
                           f"{str(exc).rstrip('.')}{hint}") from None
    if unversioned and env.spec is not None and env.spec.version is not None:
        env.close()  # gymnasium fell back to a version (and warned): the fit needs the id
        raise LearnerError(f"env id {env_id!r} names no version: give it, e.g. --env "
                           f"{module}{colon}{env.spec.id} (the latest), so that the runs and "
                           "the fit id say which")
    for w in caught:  # an unversioned env's own, and gymnasium's checker's: passed on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        env.close()
        raise LearnerError(f"env {env_id!r} has a {type(space).__name__} action "
                           "space; the SAC learner needs continuous (Box) actions")
    if len(space.shape) != 1 or space.shape[0] < 1 or not (
            np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        env.close()
        raise LearnerError(f"env {env_id!r} has a Box action space of shape {space.shape} "
                           f"with bounds {np.min(space.low):g} to {np.max(space.high):g}; the "
                           "learner needs a non-empty 1-D Box with finite bounds")
    try:
        out = env.reset(seed=seed)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"reset() returned {type(out).__name__}, not (obs, info)")
    except Exception as exc:  # noqa: BLE001 - a user's env: say which call failed and how
        env.close()
        raise LearnerError(f"env {env_id!r} fails the gymnasium API: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())}") from None
    env.action_space.seed(seed)
    return env


class VectorEnvs:
    """One env per member in a gymnasium vector env, stepped together; actions in [-1, 1] are
    scaled to the bounds. `asynchronous` runs each env in a worker process (AsyncVectorEnv);
    `threads` > 1 steps chunks of them in that many threads of this process (ThreadedEnvs);
    otherwise all in this one (SyncVectorEnv). Seeding is per member and the same every way:
    env i is reset with seeds[i] once, and an ended episode is reset (unseeded) in the step
    that ends it, so `obs` is always the observation the next action is taken from."""

    def __init__(self, env_id: str, seeds: list[int], asynchronous: bool = False,
                 threads: int = 1):
        import gymnasium as gym

        make_env(env_id, seeds[0]).close()  # unknown ids and discrete actions fail here
        fns = [partial(gym_make, env_id) for _ in seeds]
        mode = gym.vector.AutoresetMode.SAME_STEP
        if asynchronous:
            self.vec = gym.vector.AsyncVectorEnv(fns, context="spawn", autoreset_mode=mode)
        elif threads > 1 and len(seeds) > 1:
            self.vec = ThreadedEnvs(fns, threads)
        else:
            self.vec = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
        space = self.vec.single_action_space
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.reset(seeds)

    def reset(self, seeds: list[int]) -> None:
        """New episodes, env i reset with seeds[i]."""
        self.obs = self.vec.reset(seed=[int(s) for s in seeds])[0].astype(np.float32)

    def step(self, action: np.ndarray):
        """Returns next_obs for storage (the final observation where an episode ended), reward,
        terminated and ended; `obs` moves on (to a reset observation where one ended)."""
        scaled = self.low + (action + 1.0) * 0.5 * (self.high - self.low)
        obs, rew, term, trunc, info = self.vec.step(scaled)
        next_obs = obs.copy()
        ended = term | trunc
        if ended.any():
            for i in np.flatnonzero(ended):
                next_obs[i] = info["final_obs"][i]
        self.obs = obs.astype(np.float32)
        return (next_obs.astype(np.float32), rew.astype(np.float32), term.astype(np.float32),
                ended)

    def close(self) -> None:
        self.vec.close()


class ThreadedEnvs:
    """SyncVectorEnv's work (same-step autoreset) with its envs split into `threads` chunks of
    consecutive envs, each chunk stepped by one thread of a pool; each env is only ever touched
    by its chunk's thread, so the results are SyncVectorEnv's, bit for bit (tested). Only what
    VectorEnvs uses: reset, step (info holds final_obs), close.

    MuJoCo releases Python's GIL while it simulates, but a quarter of an env's step is Python
    (Hopper-v5: 26 of 108 us on this project's CPU), and threads that each step whole envs
    take the GIL back and forth around every simulation. So where every env is one of
    gymnasium's own MuJoCo envs (PhysicsAhead.applies), the physics of all envs runs first, in
    the chunks' threads, and then each env's step in this thread with its simulation replaced
    by that result: the same arithmetic, so again SyncVectorEnv's results bit for bit (tested
    on 5 envs). Which way is faster: benchmarks/env_threads.py (README, Throughput)."""

    def __init__(self, fns, threads: int):
        from concurrent.futures import ThreadPoolExecutor

        self.envs = [fn() for fn in fns]
        self.single_action_space = self.envs[0].action_space
        k = min(threads, len(self.envs))
        edges = np.linspace(0, len(self.envs), k + 1).round().astype(int)
        self.chunks = [range(a, b) for a, b in zip(edges[:-1], edges[1:])]
        self.pool = ThreadPoolExecutor(k, thread_name_prefix="envs")
        self.ahead = PhysicsAhead(self.envs) if PhysicsAhead.applies(self.envs) else None

    def reset(self, seed: list[int]):
        if self.ahead is not None:
            self.ahead.forget()
        return np.stack([env.reset(seed=int(s))[0] for env, s in zip(self.envs, seed)]), {}

    def step(self, actions: np.ndarray):
        n = len(self.envs)
        obs, final = [None] * n, [None] * n
        rew, term, trunc = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)

        def run(chunk: range) -> None:
            for i in chunk:
                o, rew[i], term[i], trunc[i], _ = self.envs[i].step(actions[i])
                if term[i] or trunc[i]:
                    final[i] = o
                    o = self.envs[i].reset()[0]
                obs[i] = o

        if self.ahead is None:
            for _ in self.pool.map(run, self.chunks):  # re-raises an env's exception here
                pass
        else:
            for _ in self.pool.map(partial(self.ahead.simulate, actions), self.chunks):
                pass
            run(range(n))
        return np.stack(obs), rew, term, trunc, {"final_obs": final}

    def close(self) -> None:
        self.pool.shutdown()
        for env in self.envs:
            env.close()


class PhysicsAhead:
    """Runs gymnasium MuJoCo envs' physics ahead of their step() calls, in any thread.

    `simulate(actions, chunk)` copies each env's MjData to a spare, applies its action and
    steps the spare as the env's own do_simulation would (mj_step over frame_skip frames, then
    mj_rnePostConstraint); C calls that release the GIL, so chunks run in parallel. The env's
    next step() then finds its do_simulation replaced: given that action and frame count it
    swaps the stepped spare in as the env's data instead of simulating (anything read before
    the simulation, such as Hopper's x position, was read from the data as it was), so the
    step computes its observation, reward and termination from exactly the state its own
    simulation would have made. Any other call (another action, a second simulation in one
    step, no simulation run ahead) simulates as usual. Only for gymnasium's own MuJoCo envs
    without rendering (a renderer holds the first MjData; another env may keep references to
    its data)."""

    def __init__(self, envs: list):
        import mujoco

        self.mj = mujoco
        self.raw = [env.unwrapped for env in envs]
        self.spare = [mujoco.MjData(u.model) for u in self.raw]
        self.ready: list[np.ndarray | None] = [None] * len(envs)  # the action run ahead
        for i, u in enumerate(self.raw):
            u.do_simulation = partial(self._swap, i)  # shadows the class's method

    @staticmethod
    def applies(envs: list) -> bool:
        import gymnasium

        try:  # without mujoco installed, gymnasium's MuJoCo module refuses to import
            from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
        except (ImportError, gymnasium.error.DependencyNotInstalled):
            return False

        def plain(u) -> bool:  # simulates as MujocoEnv does, and draws nothing
            cls = type(u)
            return (isinstance(u, MujocoEnv) and u.render_mode is None
                    and cls.__module__.startswith("gymnasium.envs.mujoco.")
                    and cls.do_simulation is MujocoEnv.do_simulation
                    and cls._step_mujoco_simulation is MujocoEnv._step_mujoco_simulation
                    and "do_simulation" not in vars(u))

        return all(plain(e.unwrapped) for e in envs)

    def forget(self) -> None:
        """Drop what was run ahead and not stepped (the envs are about to be reset)."""
        self.ready = [None] * len(self.raw)

    def simulate(self, actions: np.ndarray, chunk: range) -> None:
        mj = self.mj
        for i in chunk:
            u, d = self.raw[i], self.spare[i]
            mj.mj_copyData(d, u.model, u.data)
            d.ctrl[:] = actions[i]
            mj.mj_step(u.model, d, nstep=u.frame_skip)
            mj.mj_rnePostConstraint(u.model, d)
            self.ready[i] = actions[i]

    def _swap(self, i: int, ctrl, n_frames) -> None:
        u, ready = self.raw[i], self.ready[i]
        self.ready[i] = None
        if (ready is None or n_frames != u.frame_skip or np.shape(ctrl) != ready.shape
                or not np.array_equal(ctrl, ready)):
            type(u).do_simulation(u, ctrl, n_frames)
            return
        u.data, self.spare[i] = self.spare[i], u.data


def evaluate(pop: Population, envs: list, seeds: list[int], episodes: int, device,
             threads: int = 1, stop: threading.Event | None = None,
             ahead: PhysicsAhead | None = None) -> np.ndarray:
    """Mean deterministic return per member over `episodes` episodes (one env per member);
    `threads` > 1 steps chunks of the envs in that many threads (same returns), their physics
    alone where `ahead` (a PhysicsAhead of `envs`) is given. `stop`, once set, ends it early
    (BackgroundEval.close: the returns are then meaningless)."""
    space = envs[0].action_space
    low, high = space.low, space.high
    totals = np.zeros(len(envs))
    pool, k = None, min(threads, len(envs))
    if k > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(k, thread_name_prefix="eval")
    try:
        for ep in range(episodes):
            if ahead is not None:
                ahead.forget()
            obs = np.stack([e.reset(seed=s + 7919 * ep)[0] for e, s in zip(envs, seeds)])
            running = np.ones(len(envs), bool)
            while running.any() and not (stop is not None and stop.is_set()):
                act = pop.act(torch.as_tensor(obs, dtype=torch.float32, device=device), None)
                act = np.nan_to_num(act.cpu().numpy().astype(np.float64))
                scaled = low + (act + 1) * 0.5 * (high - low)

                def run(chunk) -> None:  # each env is stepped by one thread only
                    for i in chunk:
                        o, r, te, tr, _ = envs[i].step(scaled[i])
                        totals[i] += r
                        obs[i] = o
                        if te or tr:
                            running[i] = False

                live = np.flatnonzero(running)
                if pool is None:
                    run(live)
                elif ahead is not None:  # the physics in the threads, the envs' Python here
                    for _ in pool.map(partial(ahead.simulate, scaled), np.array_split(live, k)):
                        pass
                    run(live)
                else:
                    for _ in pool.map(run, np.array_split(live, k)):
                        pass
    finally:
        if pool is not None:
            pool.shutdown()
    return totals / episodes


class BackgroundEval:
    """Evaluation episodes (`evaluate`) in one worker thread, on a copy of the actor, while the
    population trains on. `submit` hands over the next evaluation; `collect` waits for the one
    in flight and returns what was submitted with it and its returns (in submission order: at
    most one is in flight). On a GPU the worker runs on a stream of its own, after the copy."""

    def __init__(self, envs: list, seeds: list[int], episodes: int, device, threads: int,
                 ahead: PhysicsAhead | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.args = (envs, seeds, episodes, device, threads)
        self.ahead = ahead
        self.device = device
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="evaluate")
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.pending = None  # (future, what was submitted with it)

    def submit(self, pop: Population, **extra) -> None:
        """Evaluate `pop`'s actor as it is now (the worker gets a copy of it)."""
        if self.pending is not None:
            raise RuntimeError("collect() the evaluation in flight first")
        actor = pop.frozen_actor()
        ready = None
        if self.stream is not None:
            ready = torch.cuda.Event()
            # on the population's device's current stream (not the current device's: a unit on
            # cuda:1 in a loky worker runs without torch.cuda.device), after the copy
            ready.record(torch.cuda.current_stream(self.device))
        self.pending = (self.pool.submit(self._run, actor, ready), extra)

    def _run(self, actor: Population, ready) -> np.ndarray:
        if self.stream is None:
            return evaluate(actor, *self.args, stop=self.stop, ahead=self.ahead)
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            self.stream.wait_event(ready)
            return evaluate(actor, *self.args, stop=self.stop, ahead=self.ahead)

    def collect(self) -> tuple[np.ndarray, dict] | None:
        """(returns, extra) of the evaluation in flight (waits for it), or None if none is; an
        exception the episodes raised is raised here."""
        if self.pending is None:
            return None
        future, extra = self.pending
        self.pending = None
        return future.result(), extra

    def close(self) -> None:
        """End the evaluation in flight early (its returns are dropped) and the worker."""
        self.stop.set()
        self.pool.shutdown(wait=True)


class DivergenceGuard:
    """Finds members whose critic loss turned non-finite without a host sync per update.

    `record` accumulates the flags on the device (of the members that took the round: the
    others' losses are not computed on a span of members); `check` (every `every` rounds, at the
    end of an env step, and before each log) reads them, and which members have non-finite
    parameters, on the host, marks those members in `diverged`
    (they are masked out from then on) and zeroes every non-finite parameter and moment so that
    the population's arithmetic stays finite. Trade-off: a member that diverges keeps being
    updated, with NaN, for up to `every` - 1 more updates and acts with NaN (sanitised to 0)
    until the check; members never mix, so the others are unaffected, and the member is logged
    as NaN either way. every=1 checks after each update (a host sync each)."""

    def __init__(self, members: int, device, every: int = 100):
        self.diverged = torch.zeros(members, dtype=torch.bool)  # on the host
        self._flags = torch.zeros(members, dtype=torch.bool, device=device)
        self.every = every
        self._pending = 0

    def record(self, loss: torch.Tensor, took: torch.Tensor | None = None) -> torch.Tensor:
        """Flag the members whose `loss` (M,) is non-finite, of those that `took` (M,) the
        round where given; returns those flags (device)."""
        bad = ~torch.isfinite(loss)
        if took is not None:
            bad &= took
        self._flags |= bad
        self._pending += 1
        return bad

    def state(self) -> dict[str, np.ndarray]:
        """For a checkpoint: what `restore` takes back."""
        return {"guard.diverged": self.diverged.numpy(), "guard.flags": self._flags.cpu().numpy(),
                "guard.pending": np.array(self._pending)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.diverged.copy_(torch.from_numpy(arrays["guard.diverged"]))
        self._flags.copy_(torch.from_numpy(arrays["guard.flags"]))
        self._pending = int(arrays["guard.pending"])

    def due(self) -> bool:
        return self._pending >= self.every

    def check(self, pop: Population) -> None:
        self._pending = 0
        # Also members whose parameters are non-finite: one that blew up in its last update
        # shows it in a loss only when it next updates (a lower-utd member, rounds later).
        new = (self._flags | pop.nonfinite_members()).cpu()
        if bool(new.any()):
            self.diverged |= new
            self._flags.zero_()
            pop.nan_to_num_()


class DeviceWait:
    """Whether the device keeps up with the loop: on a GPU an event is recorded after each
    step's update launches and waited on before the next step acts. `seconds` is the time
    waited (part of the act phase), `behind` the steps at which the updates were not done yet:
    near none means the CPU's work (envs, launches) bounds the loop, most means the GPU does.
    The wait sleeps (a blocking event), leaving its core to other work, where a host sync
    would spin. Nothing is recorded on a CPU, where updates run as they are launched."""

    def __init__(self, device: torch.device):
        self.event = torch.cuda.Event(blocking=True) if device.type == "cuda" else None
        self.device = device
        self.recorded = False
        self.seconds, self.behind = 0.0, 0

    def mark(self) -> None:
        """After a step's updates are launched."""
        if self.event is not None:
            self.event.record(self.stream())
            self.recorded = True

    def stream(self):
        """The population's device's current stream, where its updates were launched (a unit
        on cuda:1 in a loky worker runs without torch.cuda.device: not the current device's)."""
        return torch.cuda.current_stream(self.device)

    def wait(self, clock) -> None:
        """Before the next step acts: until the marked updates are done."""
        if not self.recorded:
            return
        self.recorded = False
        if not self.event.query():
            tick = clock()
            self.behind += 1
            self.event.synchronize()
            self.seconds += clock() - tick


PHASES = ("act", "update", "env", "store", "eval_log")
"""Phases of a training step timed in the manifest's `phase_s` (seconds over the run): act
(policy forward and its host sync: on a GPU, the wait for the device's updates first, also
in the manifest alone as `device_wait_s`, with `steps_device_behind`), update (sampling and
launching the step's updates; all of their work on the CPU), env (stepping the training and
validation envs), store (replay writes, divergence checks), eval_log (evaluation episodes,
validation loss, log files)."""


def _lap(phases: dict, name: str, tick: float, clock) -> float:
    now = clock()
    phases[name] += now - tick
    return now


def train_population(cfg: TrainConfig, out_dir: str | os.PathLike, progress=None) -> dict:
    """Train every member for cfg.steps env steps; returns the manifest (also written).

    Each env step: (1) act with the current policy (the one host sync of a step), (2) launch
    the step's updates, which sample the replay as it was before this step's transition, (3)
    step the environments while the device works through the updates, (4) store the
    transitions. On a GPU (2) is asynchronous, so env stepping and updates overlap."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise LearnerError(f"out_dir {os.fspath(out_dir)} exists and is not a folder")
    device = resolve_device(cfg.device)
    m = len(cfg.seeds)
    seeds = [int(s) for s in cfg.seeds]
    asynchronous = (cfg.vector_env == "async"
                    or (cfg.vector_env == "auto" and device.type == "cuda" and m >= 8))
    threads = cfg.env_threads if cfg.vector_env == "threads" else 1
    envs = VectorEnvs(cfg.env_id, seeds, asynchronous, threads)
    val_envs = VectorEnvs(cfg.env_id, [s + 10_000 for s in seeds])
    eval_seeds = [s + 20_000 for s in seeds]
    eval_envs = [make_env(cfg.env_id, s) for s in eval_seeds]
    eval_ahead = (PhysicsAhead(eval_envs) if _eval_threads(cfg) > 1
                  and PhysicsAhead.applies(eval_envs) else None)
    background = (BackgroundEval(eval_envs, eval_seeds, cfg.eval_episodes, device,
                                 _eval_threads(cfg), eval_ahead)
                  if cfg.eval_background else None)
    try:
        return _train(cfg, out_dir, progress, device, envs, val_envs, eval_envs, eval_seeds,
                      background, eval_ahead)
    finally:
        if background is not None:
            background.close()  # before its envs close
        for e in (envs, val_envs, *eval_envs):
            e.close()


def _eval_threads(cfg: TrainConfig) -> int:
    """Threads that step the evaluation envs: the training envs' when they step in threads."""
    return cfg.env_threads if cfg.vector_env == "threads" else 1


def _train(cfg: TrainConfig, out_dir, progress, device, envs: VectorEnvs, val_envs: VectorEnvs,
           eval_envs: list, eval_seeds: list[int], background: BackgroundEval | None,
           eval_ahead: PhysicsAhead | None = None) -> dict:
    m = len(cfg.seeds)
    obs_dim = envs.obs.shape[1]
    act_dim = envs.low.shape[0]
    agent_cfg = AgentConfig(obs_dim=obs_dim, act_dim=act_dim, width=cfg.width,
                            quantiles=cfg.quantiles, critic_blocks=cfg.critic_blocks,
                            actor_width=cfg.actor_width)
    lrs = cfg.learning_rates or [agent_cfg.learning_rate] * m
    torch.manual_seed(int(cfg.seeds[0]))
    pop = Population(agent_cfg, m, [int(s) for s in cfg.seeds], device, torch.tensor(lrs),
                     compiled=cfg.compile == "update", regions=cfg.compile == "regions",
                     amp=cfg.amp, bf16=cfg.bf16, batch_sizes=cfg.batch_sizes,
                     optimizer=cfg.optimizer)
    sample_size = max(cfg.batch_sizes) if cfg.batch_sizes else cfg.batch_size
    gen = torch.Generator(device=device).manual_seed(stream_seed(cfg))
    np_rng = np.random.default_rng(int(cfg.seeds[0]))
    replay = Replay(m, cfg.buffer_size or cfg.steps, obs_dim, act_dim, device)
    val_replay = Replay(m, cfg.steps // cfg.validation_every + 1, obs_dim, act_dim, device)
    utds = torch.tensor(cfg.utds, dtype=torch.float64)
    credit = torch.zeros(m, dtype=torch.float64)
    guard = DivergenceGuard(m, device, cfg.divergence_check_every)
    logs: dict[str, list] = {"step": [], "return": [], "critic_loss": [],
                             "validation_critic_loss": []}
    # Each member's critic losses since the last log and how many updates they came from (a
    # member with a lower utd than its population's highest takes part in fewer rounds).
    loss_sum = torch.zeros(m, device=device)
    loss_count = torch.zeros(m, device=device)
    updates = 0
    # CUDA graphs (or eager updates) by the span of members they update: (0, m) is everyone.
    graphed: dict[tuple[int, int], GraphedUpdate] = {}
    use_spans = cfg.spans and cfg.compile != "update"
    first = 1  # the first env step this attempt takes
    resumed: list[int] = []  # the steps earlier attempts had reached
    wall_before = 0.0  # training time of earlier attempts
    # Wall time by phase of the loop: where a slow run spends it. On a GPU "act" includes the
    # wait for the previous step's updates (its .cpu() is the step's one host sync).
    phases = dict.fromkeys(PHASES, 0.0)
    device_wait = DeviceWait(device)
    clock = time.perf_counter
    started = time.time()
    out = Path(out_dir)
    params = agent_cfg.critic_params
    ckpt_path = out / cfg.name / checkpoint.FILE
    replays = {"replay": replay, "val_replay": val_replay}
    for tmp in ckpt_path.parent.glob(f".{checkpoint.FILE}.*.tmp"):  # a write that was killed
        tmp.unlink(missing_ok=True)
    found = checkpoint.load(ckpt_path, cfg) if cfg.checkpoint_s is not None else None
    if found is not None:
        why = _unfit_checkpoint(*found, pop, replays, m)
        if why:
            checkpoint.set_aside(ckpt_path, why)
            found = None
    if found is None:  # from the start: logs an earlier attempt left are rewritten, not read
        checkpoint.remove_logs(out / cfg.name, sorted(_log_files(cfg, params, lrs)))

    def save_checkpoint(step: int) -> None:
        arrays = {f"pop.{k}": v.detach().cpu().numpy()
                  for k, v in checkpoint.population_tensors(pop).items()}
        for key, rep_ in replays.items():
            arrays[f"{key}.data"] = rep_.data[:, :rep_.size].cpu().numpy()
        arrays.update({"gen": gen.get_state().numpy(), "credit": credit.numpy(),
                       **guard.state(), "loss_sum": loss_sum.cpu().numpy(),
                       "loss_count": loss_count.cpu().numpy(),
                       "logs.step": np.array(logs["step"], dtype=np.int64)})
        for key in ("return", "critic_loss", "validation_critic_loss"):
            arrays[f"logs.{key}"] = np.array(logs[key], dtype=np.float64).reshape(-1, m)
        meta = {"config": checkpoint.as_json(checkpoint.comparable(cfg)), "step": step,
                "updates": updates,
                "np_rng": np_rng.bit_generator.state, "phases": phases,
                "device_wait": [device_wait.seconds, device_wait.behind],
                "wall_s": wall_before + clock() - t0, "started_unix": started,
                "resumed": resumed, "log_files": sorted(_log_files(cfg, params, lrs)),
                **{f"{k}.pos": r.pos for k, r in replays.items()},
                **{f"{k}.size": r.size for k, r in replays.items()}}
        checkpoint.save(ckpt_path, arrays, meta)

    if found is not None:
        arrays, meta = found
        checkpoint.restore_population(pop, arrays, "pop.")
        for key, rep_ in replays.items():
            rep_.size, rep_.pos = int(meta[f"{key}.size"]), int(meta[f"{key}.pos"])
            data = arrays[f"{key}.data"]
            if data.shape[0] != m or data.shape[1] != rep_.size or data.shape[1] > rep_.capacity:
                raise LearnerError(f"checkpoint {ckpt_path}: {key} has shape {data.shape}; "
                                   "remove the file to train from the start")
            rep_.data[:, :rep_.size].copy_(torch.from_numpy(data))
        try:
            gen.set_state(torch.from_numpy(arrays["gen"]))
        except RuntimeError:  # written on another device type: a fresh stream, deterministic
            gen.manual_seed(stream_seed(cfg) + int(meta["step"]))
        np_rng.bit_generator.state = meta["np_rng"]
        credit.copy_(torch.from_numpy(arrays["credit"]))
        guard.restore(arrays)
        loss_sum.copy_(torch.from_numpy(arrays["loss_sum"]))
        if "loss_count" in arrays:
            loss_count.copy_(torch.from_numpy(arrays["loss_count"]))
        else:  # written before counts per member: its rounds since the last log, for everyone
            loss_count.fill_(float(meta["loss_n"]))
        updates = int(meta["updates"])
        logs["step"] = [int(x) for x in arrays["logs.step"]]
        for key in ("return", "critic_loss", "validation_critic_loss"):
            logs[key] = list(arrays[f"logs.{key}"])
        phases.update(meta["phases"])
        waited = meta.get("device_wait")  # written before session 20: none recorded
        if isinstance(waited, list) and len(waited) == 2:
            device_wait.seconds, device_wait.behind = float(waited[0]), int(waited[1])
        wall_before, started = float(meta["wall_s"]), float(meta["started_unix"])
        first = int(meta["step"]) + 1
        resumed = [*meta["resumed"], first - 1]
        # New episodes: a step's env state is not in the checkpoint.
        envs.reset([s + 30_000 + first for s in seeds_of(cfg)])
        val_envs.reset([s + 40_000 + first for s in seeds_of(cfg)])
    t0 = clock()
    last_checkpoint = t0

    def act(obs: np.ndarray) -> np.ndarray:
        noise = torch.randn(m, act_dim, device=device, generator=gen)
        action = pop.act(torch.as_tensor(obs, device=device), noise).cpu().numpy()
        return np.nan_to_num(action)  # a diverged member acts with NaN until the next check

    def record(step: int, ret: np.ndarray, closs: np.ndarray, vloss: np.ndarray,
               dead: np.ndarray) -> None:
        """One row of the logs (members that diverged by `step` as NaN), written out."""
        for key, val in (("return", ret), ("critic_loss", closs),
                         ("validation_critic_loss", vloss)):
            logs[key].append(np.where(dead, np.nan, val))
        logs["step"].append(step)
        _write_logs(cfg, out, logs, params, lrs)
        if progress:
            progress(step, ret)

    def collect() -> None:
        """Log the background evaluation in flight, if one is (waits for it)."""
        done = background.collect() if background is not None else None
        if done is not None:
            ret, row = done
            record(ret=ret, **row)

    def log(step: int) -> None:
        nonlocal loss_sum, loss_count
        guard.check(pop)
        ret = None
        if background is None:
            ret = evaluate(pop, eval_envs, eval_seeds, cfg.eval_episodes, device,
                           _eval_threads(cfg), ahead=eval_ahead)
        if val_replay.size > 0:
            with torch.no_grad():
                vb = val_replay.sample(sample_size, gen)
                noise = torch.randn(vb.action.shape, device=device, generator=gen)
                vloss = pop.critic_loss(vb, noise).cpu().numpy()
        else:
            vloss = np.full(m, np.nan)
        closs = torch.where(loss_count > 0, loss_sum / loss_count.clamp(min=1),
                            torch.full_like(loss_sum, math.nan)).cpu().numpy()
        dead = guard.diverged.numpy().copy()
        loss_sum = torch.zeros(m, device=device)
        loss_count = torch.zeros(m, device=device)
        if background is None:
            record(step, ret, closs, vloss, dead)
            return
        collect()  # the previous log step's, then this one's in flight
        background.submit(pop, step=step, closs=closs, vloss=vloss, dead=dead)

    for step in range(first, cfg.steps + 1):
        learning = step > cfg.random_steps
        # 1. act with the current policy, once the device is done with the last step's updates
        tick = clock()
        device_wait.wait(clock)
        obs = envs.obs
        action = act(obs) if learning else np_rng.uniform(-1, 1, (m, act_dim)).astype(np.float32)
        validating = step % cfg.validation_every == 0
        if validating:
            vobs = val_envs.obs
            vact = act(vobs) if learning else np_rng.uniform(-1, 1, (m, act_dim)).astype(
                np.float32)
        tick = _lap(phases, "act", tick, clock)
        # 2. launch this step's updates (asynchronous on a GPU)
        if learning and replay.size > 0:
            credit += utds
            n_updates = torch.floor(credit + 1e-9)
            credit -= n_updates
            rounds = int(n_updates.max())
            masks_cpu = (n_updates > torch.arange(rounds, dtype=torch.float64)[:, None]) \
                & ~guard.diverged
            masks = (masks_cpu.pin_memory() if device.type == "cuda" else masks_cpu).to(
                device, non_blocking=True)
            for u in range(rounds):
                if not masks_cpu[u].any():
                    break
                batch = replay.sample(sample_size, gen)
                noise = Noise(torch.randn(batch.action.shape, device=device, generator=gen),
                              torch.randn(batch.action.shape, device=device, generator=gen))
                lo, hi = _span(masks_cpu[u]) if use_spans else (0, m)
                if (lo, hi) not in graphed and sum(k != (0, m) for k in graphed) >= MAX_SPANS:
                    # irregular masks (fractional utds, diverged members): the narrowest span
                    # made so far that holds these members (masks skip the others), or all
                    lo, hi = min((k for k in graphed if k[0] <= lo and k[1] >= hi),
                                 key=lambda k: k[1] - k[0], default=(0, m))
                args = (batch.members(lo, hi), noise.members(lo, hi), masks[u][lo:hi])
                if (lo, hi) not in graphed:
                    part = pop if (lo, hi) == (0, m) else pop.span(lo, hi)
                    graphed[lo, hi] = GraphedUpdate(part, *args, enabled=cfg.cuda_graph)
                loss = graphed[lo, hi](*args)["critic_loss"]
                if (lo, hi) != (0, m):
                    loss = torch.nn.functional.pad(loss, (lo, m - hi))
                # The members that took the round, spans or not (a masked member's loss is not
                # computed on a span): the same flags either way.
                bad = guard.record(loss, masks[u])
                took = masks[u] & ~bad
                loss_sum += torch.where(took, loss, torch.zeros_like(loss))
                loss_count += took
                updates += int(masks_cpu[u].sum())
            device_wait.mark()
        tick = _lap(phases, "update", tick, clock)
        # 3. step the environments while the device works, 4. store the transitions
        next_obs, rew, term, _ = envs.step(action)
        if validating:
            vnext, vrew, vterm, _ = val_envs.step(vact)
        tick = _lap(phases, "env", tick, clock)
        replay.add(obs, action, rew, next_obs, term)
        if validating:
            val_replay.add(vobs, vact, vrew, vnext, vterm)
        if guard.due():
            guard.check(pop)
        tick = _lap(phases, "store", tick, clock)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            log(step)
            checkpoint_due = (cfg.checkpoint_s is not None and step < cfg.steps
                              and clock() - last_checkpoint >= cfg.checkpoint_s)
            if step == cfg.steps or checkpoint_due:
                collect()  # a checkpoint holds every logged row; the end waits for the last
            if checkpoint_due:
                save_checkpoint(step)
                last_checkpoint = clock()
            _lap(phases, "eval_log", tick, clock)

    wall = wall_before + clock() - t0
    manifest = {
        "config": asdict(cfg), "critic_params": params, "obs_dim": obs_dim, "act_dim": act_dim,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        platform.processor() or platform.machine(),
        "versions": _versions(), "wall_time_s": wall,
        "started_unix": round(started, 3), "finished_unix": round(time.time(), 3),
        "env_steps_per_s": cfg.steps / wall, "member_updates": updates,
        "member_updates_per_s": updates / wall, "diverged": guard.diverged.tolist(),
        "phase_s": {k: round(v, 3) for k, v in phases.items()},
        "device_wait_s": round(device_wait.seconds, 3),
        "steps_device_behind": device_wait.behind,
        "critic_loss": CRITIC_LOSS_LOGGED,
    }
    if resumed:  # the steps it resumed from (learner.checkpoint); wall_time_s sums the attempts
        manifest["resumed_from"] = resumed
    _atomic_save(out / cfg.name / "manifest.json", text=json.dumps(manifest, indent=1))
    checkpoint.clean(ckpt_path.parent)
    return manifest


def _span(row: torch.Tensor) -> tuple[int, int]:
    """The smallest contiguous span lo..hi-1 of members holding every true entry of `row`."""
    on = torch.nonzero(row).flatten()
    return int(on[0]), int(on[-1]) + 1


def _unfit_checkpoint(arrays: dict, meta: dict, pop: Population, replays: dict,
                      m: int) -> str | None:
    """Why a checkpoint that reads cannot be restored into this run (None if it can): every
    array there, of the shape it must have, checked before anything is overwritten."""
    try:
        want = {f"pop.{k}": tuple(v.shape) for k, v in checkpoint.population_tensors(pop).items()}
        for key, rep_ in replays.items():
            size = int(meta[f"{key}.size"])
            if not (0 <= int(meta[f"{key}.pos"]) < rep_.capacity and 0 <= size <= rep_.capacity):
                return f"holding a {key} position or size outside its capacity"
            want[f"{key}.data"] = (m, size, rep_.data.shape[2])
        n_logs = len(arrays["logs.step"])
        want.update({"credit": (m,), "guard.diverged": (m,), "guard.flags": (m,),
                     "guard.pending": (), "loss_sum": (m,), "logs.step": (n_logs,),
                     **({"loss_count": (m,)} if "loss_count" in arrays else {}),
                     **{f"logs.{k}": (n_logs, m)
                        for k in ("return", "critic_loss", "validation_critic_loss")}})
        for key, shape in want.items():
            if tuple(arrays[key].shape) != shape:
                return f"holding {key} of shape {arrays[key].shape}, not {shape}"
        missing = [k for k in ("step", "updates", "np_rng", "phases", "wall_s",
                               "started_unix", "resumed") if k not in meta]
        if "loss_count" not in arrays and "loss_n" not in meta:
            missing.append("loss_count")
        if missing:
            return f"without {', '.join(missing)}"
        if "gen" not in arrays:
            return "without its random generator"
    except (KeyError, TypeError, ValueError) as exc:
        return f"incomplete ({type(exc).__name__}: {exc})"
    return None


def stream_seed(cfg: TrainConfig) -> int:
    """The seed of a population's device generator (replay indices, update and action noise):
    from its members (seeds, utds, batch sizes) and width, so that the populations of one
    calibration draw apart (seeded with the sum of the seeds, the minutes preset's w64 and
    w256 populations, seeds 0-7 each and the same shapes, drew the same replay indices and
    noise), while one configuration run two ways (another name, spans, vector env or
    evaluation thread) draws alike. A member's draws still depend on its population: one
    stream serves all members (a stream per member would cost a kernel per member and draw)."""
    text = json.dumps([[int(s) for s in cfg.seeds], [float(u) for u in cfg.utds], cfg.width,
                       cfg.batch_size, cfg.batch_sizes and [int(b) for b in cfg.batch_sizes]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def seeds_of(cfg: TrainConfig) -> list[int]:
    return [int(s) for s in cfg.seeds]


METRICS = ("return", "critic_loss", "validation_critic_loss")
#: What a logged critic_loss is, in the manifest (runs written before session 13 lack it: theirs
#: was each member's sum over its updates divided by its population's rounds of updates;
#: benchmarks/rescale_critic_loss.py corrects those).
CRITIC_LOSS_LOGGED = "each member's mean over its own updates since the previous log"


def _log_files(cfg: TrainConfig, params: int, lrs: list[float]) -> dict[str, list[int]]:
    """The population's log files, relative to its run folder (published layout), each with
    the members it holds."""
    groups: dict[tuple, list[int]] = {}
    sizes = cfg.batch_sizes or [cfg.batch_size] * len(cfg.seeds)
    for i, (u, lr, b) in enumerate(zip(cfg.utds, lrs, sizes)):
        groups.setdefault((float(u), float(lr), int(b)), []).append(i)
    return {f"w{cfg.width}p{params}/utd_{u:g}/{cfg.env_id}/{metric}/bs_{b}_lr_{lr:g}_sep_False.npy":
            members for (u, lr, b), members in groups.items() for metric in METRICS}


def _write_logs(cfg: TrainConfig, out: Path, logs: dict, params: int, lrs: list[float]) -> None:
    steps = np.array(logs["step"], dtype=np.float64)[:, None]
    for rel, members in _log_files(cfg, params, lrs).items():
        metric = rel.split("/")[-2]
        values = np.array(logs[metric], dtype=np.float64)[:, members]
        _atomic_save(out / cfg.name / rel, np.concatenate([steps, values], axis=1))


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
