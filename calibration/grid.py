"""Calibration grids: presets and the reduced (factorised) design of paper A.

B~(utd, params) factorises (Eq. 6.1), so two 2-D sweeps replace the 3-D one:
  stage 1: batch x utd at `anchor_width`, and batch x width at `anchor_utd`;  fit B~;
  stage 2: utd x width, each at its fitted B~ (rounded to a multiple of 16);  fit D_J.
A work unit is one population: members share (width, batch_size) and differ in utd and seed.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from advisor.errors import AdvisorError, one_line


class GridError(AdvisorError):
    """A grid file or preset that does not validate."""


PositiveInt = Field(gt=0)

#: UTDs a grid may hold: from one update per 1000 env steps to 1000 updates per env step.
UTD_RANGE = (1e-3, 1e3)
#: Seeds are passed to numpy, torch and gymnasium (plus offsets for evaluation envs).
MAX_SEED = 2**31 - 1 - 100_000
#: Seeds per configuration a grid may hold.
MAX_SEEDS = 1000
#: The widest critic and the largest batch a grid may name (a BroNet of width 65,536 has
#: about 3.4e10 parameters), and evaluation episodes per log point.
MAX_WIDTH = 2**16
MAX_BATCH_SIZE = 2**20
MAX_EVAL_EPISODES = 1000
#: Env steps of a run (steps, random_steps, eval_every) and quantiles of the critic, at most:
#: far beyond any grid's memory (one-line GiB errors name those), short of a float's range.
MAX_STEPS = 10**12
MAX_QUANTILES = 10**9


def _count(n: int) -> str:
    """A whole number as printed in an error: 100,000, or 'a number of 401 digits'."""
    return f"{n:,}" if n < 10**15 else f"a number of {len(str(n))} digits"


class StageConfig(BaseModel):
    """One stage-2 configuration of a planned design (`advisor plan`). Units: utd in updates per
    env step, width in critic units, batch_size in transitions (None: the fitted B~)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    utd: float = Field(gt=0)
    width: int = Field(gt=0)
    batch_size: int | None = Field(default=None, gt=0)


class Grid(BaseModel):
    """A reduced calibration grid. Units: steps in env steps, utd in updates per env step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _numbers_only(cls, data):
        """true is not width 1, nor "1" a utd (pydantic's lax mode takes both); 2e5 steps, a
        float of a whole number in JSON, stays accepted."""
        if isinstance(data, dict):
            for key, value in data.items():
                if key not in cls.model_fields:  # before its value is judged
                    raise ValueError(f"unknown key {key!r}; a grid has "
                                     f"{', '.join(cls.model_fields)}")
                if key == "pack_batch_sizes" and not isinstance(value, bool):
                    raise ValueError(f"pack_batch_sizes must be true or false, got {value!r}")
                if key in ("name", "pack_batch_sizes"):
                    continue
                items = value if isinstance(value, list) else [value]
                rows = [(f"{key}.{i}" if isinstance(value, list) else key, v)
                        for i, v in enumerate(items)]
                if key == "configs" and isinstance(value, list):
                    rows = [(f"configs.{i}.{k}", v) for i, c in enumerate(value)
                            if isinstance(c, dict) for k, v in c.items()]
                for where, v in rows:
                    if isinstance(v, (bool, str)):
                        raise ValueError(f"{where}: {v!r} is not a number")
        return data

    name: str = Field(default="custom", min_length=1, max_length=100,
                      pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="A label (printed, recorded in the fit file).")
    steps: int = Field(gt=0, le=MAX_STEPS, description="Env steps per run.")
    # 2 at least: the fit bootstraps over seeds (as a tidy CSV's configurations need 2).
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(min_length=2,
                                                                  max_length=MAX_SEEDS)
    batch_sizes: list[int] = Field(min_length=2, description="Stage-1 batch sizes.")
    utds: list[float] = Field(min_length=2, description="UTDs (stage 1 at anchor_width, stage 2).")
    widths: list[int] = Field(min_length=2, description="Critic widths (stage 1 and 2).")
    anchor_width: int = Field(gt=0, le=MAX_WIDTH)
    anchor_utd: float = Field(gt=0)
    quantiles: int = Field(default=100, gt=0, le=MAX_QUANTILES)
    actor_width: int = Field(default=256, gt=0, le=MAX_WIDTH)
    random_steps: int = Field(default=2_500, ge=0, le=MAX_STEPS)
    eval_every: int = Field(default=10_000, gt=0, le=MAX_STEPS)
    eval_episodes: int = Field(default=1, gt=0, le=MAX_EVAL_EPISODES)
    configs: list[StageConfig] | None = Field(
        default=None, min_length=1,
        description="Stage-2 configurations to run instead of every utd x width (a planned "
                    "design, calibration.design.plan); None: the full product.")
    pack_batch_sizes: bool = Field(
        default=False,
        description="Train every batch size of a width in one population (each member learns "
                    "from its own first b samples of the largest batch): fewer, larger "
                    "populations, for small networks whose updates are latency-bound; costs "
                    "up to largest/smallest batch times the FLOPs of the smaller batches.")

    @model_validator(mode="after")
    def _check(self) -> Grid:
        if any(b <= 0 for b in self.batch_sizes) or any(w <= 0 for w in self.widths):
            raise ValueError("batch_sizes and widths must be positive")
        widths = [*self.widths, self.anchor_width, *(c.width for c in self.configs or ())]
        if max(widths) > MAX_WIDTH:
            raise ValueError(f"widths may be at most {MAX_WIDTH:,} units, got "
                             f"{_count(max(widths))}")
        sizes = [*self.batch_sizes, *(c.batch_size or 1 for c in self.configs or ())]
        if max(sizes) > MAX_BATCH_SIZE:
            raise ValueError(f"batch sizes may be at most {MAX_BATCH_SIZE:,}, got "
                             f"{_count(max(sizes))}")
        lo, hi = UTD_RANGE
        # the utds, then the stage-2 configs' (named apart: merged, they read as one list)
        for where, utds in (("utds", list(self.utds)),
                            ("configs' utds", [c.utd for c in self.configs or ()])):
            if any(not lo <= u <= hi for u in utds):
                raise ValueError(f"{where} must lie in [{lo:g}, {hi:g}] updates per env step, "
                                 f"got {utds}")
            if any(float(f"{u:g}") != u for u in utds):
                # Folder names carry f"{utd:g}" (6 significant digits): it must read back.
                raise ValueError(f"{where} may have at most 6 significant digits, got {utds}")
        for name in ("utds", "widths", "batch_sizes"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct, got {values}")
        if self.anchor_width not in self.widths:
            raise ValueError(f"anchor_width {self.anchor_width} must be one of widths "
                             f"{self.widths}")
        if self.anchor_utd not in self.utds:
            raise ValueError(f"anchor_utd {self.anchor_utd} must be one of utds {self.utds}")
        if self.random_steps >= self.steps:
            default = ("" if "random_steps" in self.model_fields_set else
                       " (the default: this grid sets none)")
            raise ValueError(f"random_steps {self.random_steps}{default} must be below steps "
                             f"{self.steps}")
        learning_evals = self.steps // self.eval_every - self.random_steps // self.eval_every
        if learning_evals < 2:  # one point is no learning curve: the runs could only fail
            raise ValueError(f"{self.steps} steps with eval_every {self.eval_every} and "
                             f"random_steps {self.random_steps} give {learning_evals} "
                             "evaluation(s) of the learning policy; at least 2 are needed "
                             "(raise --steps, or lower eval_every in a --grid file)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be distinct")
        if self.configs is not None:
            pairs = [(c.utd, c.width) for c in self.configs]
            if len(set(pairs)) != len(pairs):
                raise ValueError("configs must be distinct (utd, width) pairs")
        return self

    def with_overrides(self, steps: int | None = None, n_seeds: int | None = None) -> Grid:
        return load_grid_dict(override(self.model_dump(), steps, n_seeds))

    def digest(self) -> str:
        # A grid without planned configs, or without packing, hashes as before those fields
        # existed (resume keeps working).
        skip = {name for name, off in (("configs", self.configs is None),
                                       ("pack_batch_sizes", not self.pack_batch_sizes)) if off}
        data = self.model_dump(mode="json", exclude=skip or None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PRESETS: dict[str, dict] = {
    # CPU, about a minute on 2 cores: tiny critics, few steps. Used in CI; the fit is rough.
    "smoke": dict(name="smoke", steps=1_000, seeds=[0, 1], batch_sizes=[32, 64],
                  utds=[1, 2, 4], widths=[16, 32, 64], anchor_width=32, anchor_utd=1,
                  quantiles=1, actor_width=32, random_steps=200, eval_every=100,
                  eval_episodes=1),
    # CPU, 42.5 min on 2 cores (Pendulum-v1 in one call, 2026-11-29), on a task that SAC
    # learns in a few thousand steps (classic-control scale): a real fit without a GPU. 1.47M
    # member-updates
    # (stage 1: 6 populations, 484k, batch x utd 1/2/4; stage 2: 12, 990k, utd 1/2/4/8 x
    # width). Stage 2 has a 4th utd because with 3 a utd row left out leaves 2, which cannot
    # pin alpha: the 3-utd fit of Pendulum-v1 erred 1,511% on a row left out, this one 16%
    # (benchmarks/fit_choice.py). Its fit ships as bro-torch/Pendulum-v1 (README).
    "cpu": dict(name="cpu", steps=6_000, seeds=[0, 1, 2, 3], batch_sizes=[64, 128],
                utds=[1, 2, 4], widths=[32, 64, 128], anchor_width=64, anchor_utd=2,
                quantiles=10, actor_width=64, random_steps=500, eval_every=500,
                eval_episodes=2,
                configs=[dict(utd=u, width=w) for w in (32, 64, 128) for u in (1, 2, 4, 8)]),
    # One GPU, a few hours on a MuJoCo task: about 22M member-updates in all (README).
    "reduced": dict(name="reduced", steps=200_000, seeds=[0, 1], batch_sizes=[128, 256, 512],
                    utds=[1, 2, 4], widths=[128, 256, 512], anchor_width=256, anchor_utd=2,
                    eval_every=10_000),
    # Meant for one H100 in <= 8 min wall on Hopper-v5 (any quick MuJoCo task): `advisor
    # calibrate --env Hopper-v5 --preset minutes --device cuda`. Per run 9,000 learning steps.
    # Batch sizes packed: stage 1 = 3 populations, one per width: w128 holds utd 1/2/4 x batch
    # 128/256 x 8 seeds = 48 members, listed by utd, and does 4 rounds of updates per step on
    # spans of 48, 32, 16 and 16 members (TrainConfig.spans); w64 and w256 hold utd 2 x 2
    # batch sizes x 8 seeds and do 2: 1.58M member-updates, 800k env steps (+80k
    # validation). Stage 2 = utd x width at B~: 3 populations of 24 (spans of 24, 16, 8, 8),
    # 1.51M member-updates. Each update is latency-bound (hundreds of small kernels) at these
    # sizes, so wall time follows population updates per step more than FLOPs. Measured on
    # one H100 (README, Throughput): 471 s in all, stages of 235 s and 208 s.
    "minutes": dict(name="minutes", steps=10_000, seeds=list(range(8)), batch_sizes=[128, 256],
                    utds=[1, 2, 4], widths=[64, 128, 256], anchor_width=128, anchor_utd=2,
                    random_steps=1_000, eval_every=1_000, pack_batch_sizes=True),
    # The 3-D grid's axes at paper scale (stage 2 still uses the fitted B~).
    "full": dict(name="full", steps=1_000_000, seeds=[0, 1, 2, 3, 4],
                 batch_sizes=[64, 128, 256, 512, 1024, 2048], utds=[1, 2, 4, 8, 16],
                 widths=[128, 256, 512, 1024, 2048], anchor_width=512, anchor_utd=2,
                 eval_every=25_000),
}


def _whole(x) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            and x == int(x) and x > 0)


def override(data: dict, steps: int | None = None, n_seeds: int | None = None) -> dict:
    """A grid's fields (before validation: a grid file's own steps may be what --steps fixes)
    with its run length and seeds replaced. With other `steps` than the grid's, evaluations
    come every eval_every steps as in the grid, lowered to give at least 10 evaluations and
    raised to give at most the grid's number (smoke's 100 would evaluate 2,000 times in a run
    of 200,000 steps), and random steps are at most a fifth of the run."""
    data = dict(data)
    if steps is not None and not (_whole(data.get("steps")) and data["steps"] == steps):
        fields = Grid.model_fields
        eval_every = data.get("eval_every", fields["eval_every"].default)
        random_steps = data.get("random_steps", fields["random_steps"].default)
        if _whole(eval_every):
            longest = max(1, steps // 10)
            n_evals = (max(10, int(data["steps"]) // int(eval_every))
                       if _whole(data.get("steps")) else 10)
            data["eval_every"] = max(min(int(eval_every), longest), steps // n_evals)
        if _whole(random_steps) or (random_steps == 0 and not isinstance(random_steps, bool)):
            data["random_steps"] = min(int(random_steps), steps // 5)
        data["steps"] = steps
    if n_seeds is not None:
        if not 2 <= n_seeds <= MAX_SEEDS:
            raise GridError(f"seeds must be from 2 to {MAX_SEEDS} per configuration (the fit "
                            f"bootstraps over seeds), got {n_seeds}")
        data["seeds"] = list(range(n_seeds))
    return data


def load_grid_dict(data: dict) -> Grid:
    try:
        return Grid.model_validate(data)
    except ValidationError as exc:
        raise GridError(f"grid does not validate: {one_line(exc)}") from None


def preset(name: str) -> Grid:
    if name not in PRESETS:
        raise GridError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return load_grid_dict(PRESETS[name])


def load_grid(path: str | Path, steps: int | None = None, n_seeds: int | None = None) -> Grid:
    """The grid in a JSON file (or an out-dir's grid.json), with `steps` and `n_seeds`
    overriding its own before it is validated (`override`)."""
    from advisor.files import load_json, read_limited

    path = Path(path)
    data = load_json(read_limited(path, "grid file", GridError), f"grid file {path}", GridError)
    if not isinstance(data, dict):
        raise GridError(f"grid file {path} must hold a JSON object")
    if {"env_id", "grid", "digest"} <= data.keys() and isinstance(data["grid"], dict):
        data = data["grid"]  # an out-dir's record of its grid (OUT/grid.json): its grid
    return load_grid_dict(override(data, steps, n_seeds))


class Unit(BaseModel):
    """One population: members share width and batch size."""

    model_config = ConfigDict(frozen=True)

    stage: Literal[1, 2]
    width: int
    batch_size: int  # the batch sampled (the largest of batch_sizes where those are given)
    utds: list[float]
    seeds: list[int]
    batch_sizes: list[int] | None = None  # per member, where they differ (a packed unit)

    @property
    def member_batch_sizes(self) -> list[int]:
        """Each member's batch size, in the order of utds and seeds."""
        return self.batch_sizes or [self.batch_size] * len(self.seeds)

    @property
    def id(self) -> str:
        utds = "-".join(f"{u:g}" for u in sorted(set(self.utds)))
        sizes = "-".join(str(b) for b in sorted(set(self.member_batch_sizes)))
        return f"s{self.stage}_w{self.width}_bs{sizes}_utd{utds}"


def stage1_units(grid: Grid) -> list[Unit]:
    """Batch x utd at the anchor width, batch x width at the anchor utd, merged per population
    (one per width and batch size, or one per width where the grid packs batch sizes)."""
    members: dict[tuple[int, int], set[float]] = {}
    for b in grid.batch_sizes:
        members.setdefault((grid.anchor_width, b), set()).update(grid.utds)
        for w in grid.widths:
            members.setdefault((w, b), set()).add(grid.anchor_utd)
    return _units(1, members, grid)


def stage2_units(grid: Grid, batch_of) -> list[Unit]:
    """utd x width (or the grid's planned `configs`), each at batch_of(utd, width) (a multiple
    of 16) unless a config names its batch size, grouped per population."""
    pairs = ([(c.utd, c.width, c.batch_size) for c in grid.configs] if grid.configs is not None
             else [(u, w, None) for w in grid.widths for u in grid.utds])
    members: dict[tuple[int, int], set[float]] = {}
    for u, w, b in pairs:
        members.setdefault((w, int(b if b is not None else batch_of(u, w))), set()).add(u)
    return _units(2, members, grid)


def _units(stage: int, members: dict[tuple[int, int], set[float]], grid: Grid) -> list[Unit]:
    """Populations from {(width, batch size): utds}: one per key, or one per width (members
    keeping their batch sizes) where the grid packs batch sizes."""
    if not grid.pack_batch_sizes:
        return [_unit(stage, w, [(u, b) for u in sorted(us)], grid.seeds)
                for (w, b), us in sorted(members.items())]
    by_width: dict[int, list[tuple[float, int]]] = {}
    for (w, b), us in sorted(members.items()):
        by_width.setdefault(w, []).extend((u, b) for u in sorted(us))
    # Members by utd, then batch size: the members of each later round of updates (those with
    # a higher utd) are then the last ones, one span (TrainConfig.spans).
    return [_unit(stage, w, sorted(pairs), grid.seeds) for w, pairs in sorted(by_width.items())]


def _unit(stage: int, width: int, pairs: list[tuple[float, int]], seeds: list[int]) -> Unit:
    """A population of (utd, batch size) pairs x seeds."""
    sizes = [b for _, b in pairs for _ in seeds]
    return Unit(stage=stage, width=width, batch_size=max(sizes),
                utds=[u for u, _ in pairs for _ in seeds], seeds=[s for _ in pairs for s in seeds],
                batch_sizes=sizes if len(set(sizes)) > 1 else None)
