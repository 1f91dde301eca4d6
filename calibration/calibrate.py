"""`advisor calibrate`: run a reduced grid on a new task and fit its laws into a fit file.

    from calibration.calibrate import calibrate
    path = calibrate("InvertedPendulum-v5", preset_name="smoke", out_dir="calib/", device="cpu")
    advisor.recommend(advisor.Budget(data=2e4), fit=str(path))

Thresholds are chosen from the data: J_hi is the 30th percentile over configurations of the
best (isotonic) mean return, so about 70% of configurations reach every threshold; J_lo lies 40%
of the way from the median starting return to J_hi; 20 thresholds span [J_lo, J_hi]. Where
returns saturate (that percentile is the highest best return of any configuration, as success
rates at 1 are), J_hi is 90% of the way from the median start to that ceiling instead: a
threshold at the ceiling is reached only when every seed is, and seed resamples reach it early.

With `prior` (`--prior`, calibration.prior) stage 2's D_J is a few-shot fit that borrows from a
family of fits, and 3 stage-2 configurations suffice.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import advisor
from advisor.errors import AdvisorError, OutputError, printable, span
from advisor.files import is_iso_date
from advisor.fit import round_batch_size
from advisor.fitfile import (
    BatchSizeLaw,
    Provenance,
    check_fit_output,
    fit_id_ok,
    write_fit_file,
)
from calibration.architectures import bronet_architecture, bronet_params
from calibration.archives import ArchiveError, Run, env_name, read_runs
from calibration.batch import best_batch_sizes, fit_batch_law, tables_by_batch
from calibration.build import DEFAULT_METHOD, N_BOOT, make_fit_file, one_blas_thread
from calibration.checks import fit_checks
from calibration.curves import data_table, isotonic_curve, seed_mean, thresholds
from calibration.fitting import reporting
from calibration.grid import Grid, GridError, Unit, load_grid, preset, stage1_units, stage2_units
from calibration.outdir import LOCK_NAME, check_out_dir, check_writable, lock_out_dir
from calibration.runner import (
    BACKENDS,
    TRACKER_LOG,
    _default_jobs,
    prepare_out_dir,
    run_units,
    sigint_deferred,
    unit_done,
)

MIN_CONFIGS = 5
#: Where returns saturate, the top threshold's place between the median start and the ceiling.
SATURATED_TOP = 0.9
DEFAULT_DELTA = 1e10


#: --device choices (the whole machine's GPUs are used: no index).
DEVICES = ("auto", "cpu", "cuda")


class CalibrationError(AdvisorError):
    """A calibration that cannot go on (too few finished units, runs that did not learn)."""


def choose_targets(runs: list[Run], n: int = 20, remedy: str | None = None) -> np.ndarray:
    """Thresholds from the data (module docstring gives the rule); `remedy` ends the error of
    runs that did not learn (default: train longer than they did)."""
    starts, bests = [], []
    for r in runs:
        mean = seed_mean(r.values["return"])
        finite = mean[np.isfinite(mean)]
        if not len(finite):  # every seed diverged: this config says nothing about the range
            continue
        curve = isotonic_curve(finite)
        starts.append(curve[0])
        bests.append(curve[-1])
    if not starts:
        raise CalibrationError("no run logged a finite return: every member diverged")
    j_hi = float(np.percentile(bests, 30))
    if j_hi >= max(bests):  # saturated returns (module docstring)
        j_hi = float(np.median(starts) + SATURATED_TOP * (max(bests) - np.median(starts)))
    j_lo = float(np.median(starts) + 0.4 * (j_hi - np.median(starts)))
    if not j_hi > j_lo + 1e-9:
        if remedy is None:
            longest = max((float(r.steps["return"][-1]) for r in runs
                           if len(r.steps.get("return", ()))), default=0.0)
            remedy = (f"these runs took {longest:,.0f} env steps: train longer with --steps "
                      "(the minutes preset runs 10,000 on Hopper-v5)")
        raise CalibrationError(
            "the runs did not learn: returns do not rise above their starting level "
            f"(median start {np.median(starts):.4g}, 30th percentile of best {j_hi:.4g}); "
            f"{remedy}")
    return thresholds(j_lo, j_hi, n)


def fit_id_of(algorithm: str, env_id: str) -> str:
    """`algorithm/env`, env without gymnasium's `module:` prefix; one line if it is not a valid
    fit id (the env name also names folders, so it may not hold '/')."""
    name = env_name(env_id)
    fit_id = f"{algorithm}/{name}"
    if "/" in name and fit_id_ok(f"{algorithm}/{name.replace('/', '-')}"):
        raise CalibrationError(
            f"a namespaced env id ({name}) cannot name a fit or its folders yet: register the "
            "env under a name without '/' in a module of yours (gymnasium.register(id="
            f"'{name.rsplit('/', 1)[-1]}', entry_point=...)) and pass --env "
            f"your_module:{name.rsplit('/', 1)[-1]}")
    if not fit_id_ok(fit_id):
        raise CalibrationError(
            f"cannot name the fit {fit_id!r}: the algorithm and the env name (after any "
            "'module:') must each be 1-100 letters, digits, '_', '.' or '-'; choose another "
            "--algorithm, or register the env under such a name")
    return fit_id


def calibrate(
    env_id: str, *, out_dir: str | Path, algorithm: str = "bro-torch", preset_name: str = "smoke",
    grid_file: str | Path | None = None, steps: int | None = None, seeds: int | None = None,
    device: str = "auto", backend: str = "loky", n_jobs: int | None = None,
    fit_out: str | Path | None = None, delta: float = DEFAULT_DELTA, n_boot: int = N_BOOT,
    quiet: bool = False, echo=None, command: str | None = None, created: str | None = None,
    prior=None, compile: bool | str = "none", eval_background: bool = False,
    bf16: bool = False,
) -> Path:
    """Run stage 1, fit B~, run stage 2, fit D_J; write and return the fit file's path.

    Every input is checked before the first unit trains (names, grid, env, device, memory,
    output paths, the prior); the out-dir is locked while this runs. `prior`: fit ids, fit
    files or a family name (calibration.prior) for a few-shot fit of D_J. `compile`: "regions"
    (the LayerNorm regions and AdamW steps) or "update" (True: each population's whole update)
    through torch.compile (same arithmetic up to rounding; TrainConfig.compile).
    `eval_background`: evaluation episodes in a thread beside training (the same returns;
    TrainConfig.eval_background; on an H100 it did not speed up stage 1 of `minutes`, so it is
    not a CLI option). `bf16`: the networks on bf16 weight copies (TrainConfig.bf16; --bf16)."""
    from calibration.prior import resolve_prior

    _check_types(env_id=(env_id, str), algorithm=(algorithm, str), device=(device, str),
                 out_dir=(out_dir, (str, os.PathLike)), preset_name=(preset_name, str),
                 steps=(steps, (numbers.Integral, type(None))),
                 seeds=(seeds, (numbers.Integral, type(None))),
                 created=(created, (str, type(None))),
                 eval_background=(eval_background, bool), bf16=(bf16, bool))
    steps, seeds = (None if v is None else int(v) for v in (steps, seeds))  # numpy ints too
    if device not in DEVICES:  # as the CLI takes it, so that the recorded command runs
        raise CalibrationError(f"device must be one of {', '.join(DEVICES)}, got {device!r} "
                               "(populations go round-robin over every visible GPU: "
                               "CUDA_VISIBLE_DEVICES picks which)")
    if isinstance(prior, (str, os.PathLike)):  # one id, file or family, not its characters
        prior = [prior]
    echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    say = (lambda s: None) if quiet else echo
    created = created or _dt.date.today().isoformat()
    inputs = [grid_file, *(prior or [])]  # files the fit file must not overwrite
    prior = resolve_prior(prior, own_id=fit_id_of(algorithm, env_id) if prior else None)
    if prior is not None:
        prior.calibration()  # a prior whose interval cannot be calibrated fails here too
    plan = _preflight(env_id, out_dir=out_dir, algorithm=algorithm, preset_name=preset_name,
                      grid_file=grid_file, steps=steps, seeds=seeds, device=device,
                      backend=backend, n_jobs=n_jobs, fit_out=fit_out, delta=delta,
                      n_boot=n_boot, created=created, prior=prior, inputs=inputs)
    command = command or _command(env_id, algorithm, preset_name, grid_file, steps, seeds,
                                  device, out_dir, fit_out, delta, n_boot, created, prior,
                                  compile, bf16)
    with lock_out_dir(plan.out):
        prepare_out_dir(plan.out, plan.grid, env_id)
        return _run(plan, env_id, backend=backend, n_jobs=n_jobs, compile=compile,
                    eval_background=eval_background, bf16=bf16, n_boot=n_boot,
                    delta=delta,
                    quiet=quiet, echo=echo, say=say, command=command, created=created)


@dataclass
class _Plan:
    """What the checks before the first unit established."""

    fit_id: str
    grid: Grid
    out: Path
    fit_path: Path
    device: str  # 'cpu' or 'cuda'
    obs_dim: int
    act_dim: int
    prior: object = None  # calibration.prior.Prior of a few-shot fit
    min_configs: int = MIN_CONFIGS

    def params_of(self, width: int) -> int:
        return bronet_params(width, self.obs_dim + self.act_dim, quantiles=self.grid.quantiles)


def env_dims(env_id: str) -> tuple[int, int]:
    """(obs, action) sizes of `env_id` as the learner will make it, after every check calibrate
    runs on an env (a continuous action space, a flat observation, one API-conforming step);
    CalibrationError (one line) where it fails one. Gymnasium's own warnings on the env (its
    env checker's) are shown where the checks pass, and dropped where our one line says what
    is wrong (they printed, coloured, above it)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dims = _env_dims(env_id)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return dims


def _env_dims(env_id: str) -> tuple[int, int]:
    from calibration.learner.trainer import make_env

    try:
        with sigint_deferred():  # MuJoCo's import starts a probe process (runner)
            env = make_env(env_id, 0)  # unknown ids and discrete actions fail here too
    except AdvisorError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. 'module:Env-v0' whose module is missing
        raise CalibrationError(f"env {env_id!r} cannot be made: {type(exc).__name__}: "
                               f"{' '.join(str(exc).split())}") from None
    try:
        shape = getattr(env.observation_space, "shape", None)
        if shape is None or len(shape) != 1 or shape[0] < 1:
            kind = type(env.observation_space).__name__
            raise CalibrationError(
                f"env {env_id!r} has a {kind} observation space"
                + (f" of shape {shape}" if shape is not None else "")
                + "; the learner needs a flat non-empty vector (a 1-D Box)"
                + ("; flatten it (gymnasium.wrappers.FlattenObservation) in an env you register"
                   if shape is None else ""))
        obs_dim, act_dim = int(shape[0]), int(env.action_space.shape[0])
        try:  # one step, as the learner takes them
            out = env.step(env.action_space.sample())
            if not (isinstance(out, tuple) and len(out) == 5):
                raise TypeError(f"step() returned {len(out) if isinstance(out, tuple) else 1} "
                                "values, not (obs, reward, terminated, truncated, info)")
        except Exception as exc:  # noqa: BLE001 - a user's env
            raise CalibrationError(f"env {env_id!r} fails the gymnasium API: "
                                   f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                                   ) from None
        try:  # every return would be NaN: "every member diverged", said of the wrong thing
            reward = float(out[1])
        except (TypeError, ValueError):
            reward = math.nan
        if not math.isfinite(reward):
            raise CalibrationError(f"env {env_id!r} returned the reward "
                                   f"{printable(repr(out[1]))[:60]} at its first step; the "
                                   "learner needs a finite real number")
    finally:
        env.close()
    return obs_dim, act_dim


def _preflight(env_id, *, out_dir, algorithm, preset_name, grid_file, steps, seeds, device,
               backend, n_jobs, fit_out, delta, n_boot, created, prior=None,
               inputs=()) -> _Plan:
    """Every check a user's input can fail, before anything trains; one line each."""
    import importlib.util

    from advisor.errors import ExportError
    from advisor.integrations.zoo import check_env_id
    from calibration.learner.trainer import resolve_device

    try:  # what recommend --env says of it, before the fit id it also names
        check_env_id(env_id)
    except ExportError as exc:
        raise CalibrationError(str(exc).replace("Humanoid-v5", "Hopper-v5").replace(
            "dm_control/cheetah-run-v0", "your_module:YourEnv-v0")) from None
    fit_id = fit_id_of(algorithm, env_id)
    if os.fspath(out_dir) == "":  # Path("") is the current folder
        raise OutputError("the out-dir is empty: give a folder, e.g. --out-dir calib")
    if not (isinstance(delta, (int, float)) and delta > 0 and math.isfinite(delta)):
        raise CalibrationError(f"delta must be a positive number of FLOPs per env step, got "
                               f"{delta}")
    if not (isinstance(n_boot, int) and 0 <= n_boot <= 10_000):
        raise CalibrationError(f"n_boot must be a whole number from 0 to 10000, got {n_boot!r}")
    if n_jobs is not None and not (isinstance(n_jobs, int) and n_jobs >= 1):
        raise CalibrationError(f"n_jobs must be a positive whole number, got {n_jobs!r}")
    if not is_iso_date(created):
        raise CalibrationError(f"created must be a date YYYY-MM-DD, got {created!r}")
    if backend not in BACKENDS:
        raise GridError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    need = {"ray": "ray", "dask": "dask.distributed"}.get(backend)
    if need and importlib.util.find_spec(need.split(".")[0]) is None:
        raise GridError(f"backend {backend!r} needs {need}: pip install "
                        f"'{'ray[default]' if backend == 'ray' else 'dask[distributed]'}'")
    grid: Grid = (load_grid(grid_file, steps=steps, n_seeds=seeds) if grid_file
                  else preset(preset_name).with_overrides(steps=steps, n_seeds=seeds))
    if grid.configs is not None:
        n_configs, what = len(grid.configs), "in its planned configs"
    else:
        n_configs = len(grid.utds) * len(grid.widths)
        what = f"{len(grid.utds)} utds x {len(grid.widths)} widths ="
    from calibration.prior import MIN_FEW_SHOT_CONFIGS

    min_configs = MIN_CONFIGS if prior is None else MIN_FEW_SHOT_CONFIGS
    if n_configs < min_configs:
        raise GridError(f"the grid has {what} {n_configs} stage-2 configurations; at least "
                        f"{min_configs} are needed to fit D_J"
                        + ("" if prior else " (3 with a family prior, --prior)"))
    dev = resolve_device(device)  # 'cuda' with no GPU fails before anything runs
    _check_versioned(env_id)
    obs_dim, act_dim = env_dims(env_id)
    dev_name = "cpu" if dev.type == "cpu" else "cuda"
    plan = _Plan(fit_id, grid, Path(out_dir), Path(), dev_name, obs_dim, act_dim, prior,
                 min_configs)
    check_memory(plan, stage1_units(grid), n_jobs, "stage 1")
    check_memory(plan, _largest_stage2(grid), n_jobs, "stage 2")
    # the folders this call creates, deepest first: a refused command removes them again
    created = [p for p in [plan.out, *plan.out.parents] if not p.exists()]
    try:
        check_out_dir(plan.out)
        plan.fit_path = _check_fit_out(fit_out, plan.out, fit_id)
        for given in inputs:
            if given is not None and os.path.isfile(given) and os.path.exists(plan.fit_path) \
                    and os.path.samefile(given, plan.fit_path):
                raise OutputError(f"the fit file {plan.fit_path} would overwrite {given}, an "
                                  "input of this calibration; choose another --fit-out")
        check_fit_output(plan.fit_path, "--fit-out", fit_id)  # a grid, a CSV, a shipped fit
    except AdvisorError:
        for folder in created:  # a refused command leaves no empty out-dir behind
            try:
                folder.rmdir()  # only while empty
            except OSError:
                break
        raise
    return plan


def _check_versioned(env_id: str) -> None:
    """An id without its version ('InvertedPendulum') where Gymnasium has versions: gymnasium
    would take the latest with a warning per process, and the fit id would not say which."""
    try:
        from gymnasium.envs.registration import find_highest_version, get_env_id, parse_env_id

        ns, name, version = parse_env_id(env_id)
        latest = find_highest_version(ns, name) if version is None else None
    except Exception:  # noqa: BLE001 - not an id gymnasium parses: make_env says what is wrong
        return
    if latest is not None:
        full = get_env_id(ns, name, latest)
        raise CalibrationError(f"env id {env_id!r} names no version: give it, e.g. --env {full} "
                               "(the latest), so that the runs and the fit id say which")


def _check_types(**values) -> None:
    """calibrate()'s arguments from Python: the wrong type is one line, not a traceback later."""
    for name, (value, kinds) in values.items():
        if (isinstance(value, bool) and kinds is not bool) or not isinstance(value, kinds):
            kinds = kinds if isinstance(kinds, tuple) else (kinds,)
            allowed = " or ".join("None" if k is type(None) else "int" if k is numbers.Integral
                                  else k.__name__ for k in kinds)
            raise CalibrationError(f"{name} must be {allowed}, got {value!r}")


def _check_fit_out(fit_out, out: Path, fit_id: str) -> Path:
    if fit_out is not None and str(fit_out) == "":
        raise OutputError("the fit file path is empty: give a file name, e.g. --fit-out fit.json")
    path = Path(fit_out) if fit_out else out / (fit_id.replace("/", "-") + ".json")
    try:
        is_dir = path.is_dir()
        os.path.realpath(path)
    except OSError as exc:  # a name too long, a loop of links
        raise OutputError(f"cannot write the fit file {path}: {exc.strerror or exc}") from None
    if is_dir:
        raise OutputError(f"cannot write the fit file {path}: it is a directory; give a file name")
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(out))
    own = ("grid.json", LOCK_NAME, BATCH_LAW_FILE, TRACKER_LOG)
    if real in (base / name for name in own) or any(
            base / sub in real.parents for sub in ("runs", "units")):
        raise OutputError(f"cannot write the fit file to {path}: the calibration keeps its own "
                          "files there; choose another --fit-out")
    blocked = next((p for p in [path.parent, *path.parent.parents]
                    if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise OutputError(f"cannot write the fit file {path}: {blocked} is a file, not a "
                          "folder; choose another --fit-out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder of the fit file {path}: "
                          f"{exc.strerror or exc}") from None
    check_writable(path.parent, "the fit file's folder")
    return path


def _largest_stage2(grid: Grid) -> list[Unit]:
    """Stage-2 populations before B~ is known: at worst every utd of a width shares one batch,
    the grid's largest (or the one a planned config names)."""
    biggest = max(grid.batch_sizes)
    return stage2_units(grid, lambda utd, width: biggest)


def unit_memory(grid: Grid, unit: Unit, obs_dim: int, act_dim: int) -> dict[str, float]:
    """Estimated bytes one population needs on its device (float32): replay buffers (training
    and validation), networks with targets, gradients and Adam moments, and one update's
    activations per span of members (the quantile loss compares every pair of quantiles). An
    estimate, to refuse what cannot fit before it runs; the real peak may be somewhat higher."""
    m, f = len(unit.seeds), 4.0
    row = 2 * obs_dim + act_dim + 2  # obs, next_obs, action, reward, done
    replay = m * (grid.steps + grid.steps // 10 + 1) * row * f
    critic = bronet_params(unit.width, obs_dim + act_dim, quantiles=grid.quantiles)
    aw = grid.actor_width
    actor = (obs_dim + 2 * act_dim + 4 * aw + 16) * aw
    nets = m * (5 * critic + 4 * actor) * f  # critic: params, target, grad, 2 moments
    q = grid.quantiles
    # On a GPU each span of members (TrainConfig.spans: the members of utd >= each of the
    # unit's utds) keeps its own CUDA graph and so its own update's activations.
    utds = sorted(unit.utds)
    span_members = sum(sum(1 for u in utds if u >= v) for v in sorted(set(utds)))
    update = span_members * 2 * unit.batch_size * (12 * unit.width + 4 * q * q + 4 * aw) * f
    return {"replay": replay, "networks": nets, "update": update,
            "total": replay + nets + update}


def available_memory(device: str) -> tuple[float, str] | None:
    """(bytes, what) free for training on `device`, or None if it cannot be told."""
    if device == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info()  # another process's share is not free
        return float(free), "free GPU memory"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024, "available memory"
    except OSError:
        pass
    try:
        return (float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")),
                "available memory")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(plan: _Plan, units: list[Unit], n_jobs: int | None, stage: str) -> None:
    """Refuse, in one line, units that would not fit in memory when run n_jobs at a time."""
    have = available_memory(plan.device)
    if have is None or not units:
        return
    est = sorted((unit_memory(plan.grid, u, plan.obs_dim, plan.act_dim) | {"unit": u}
                  for u in units), key=lambda e: -e["total"])
    if n_jobs is None:
        n_jobs = _default_jobs(plan.device)
    k = max(1, min(n_jobs, len(units)))
    where = ""
    if plan.device == "cuda":  # populations go round-robin over the GPUs (runner._unit_device)
        import torch

        k, where = -(-k // max(1, torch.cuda.device_count())), " per GPU"
    need = sum(e["total"] for e in est[:k])
    if need <= have[0]:
        return
    big, u = est[0], est[0]["unit"]
    gib = 2.0**30
    raise MemoryNeedError(
        f"{stage} would need about {need / gib:.3g} GiB of memory ({k} population(s) at "
        f"once{where}; the largest, {len(u.seeds)} members of width {u.width} (actor "
        f"{plan.grid.actor_width}), batch {u.batch_size}, {plan.grid.quantiles} quantiles, "
        f"{plan.grid.steps} steps, needs "
        f"{big['replay'] / gib:.3g} GiB of replay, {big['networks'] / gib:.3g} GiB of networks and "
        f"{big['update'] / gib:.3g} GiB per update), but {have[0] / gib:.3g} GiB of {have[1]} "
        "is there; lower --steps, --seeds, --n-jobs or the grid's widths, actor_width, batch "
        "sizes or quantiles")


#: A CPU calibration whose updates alone take longer than this gets a note before it starts.
SLOW_CPU_S = 30 * 60


def cpu_time_note(plan: _Plan, units1: list[Unit], n_jobs: int | None) -> str | None:
    """One line saying how long the updates of a fresh calibration take on this CPU (timed
    here: calibration.cost), where that is over SLOW_CPU_S; None otherwise. Stage 2 is
    priced at the grid's largest batch size (B~ is not known yet): an upper bound for it."""
    from calibration.cost import cpu_seconds, duration, member_updates

    jobs = max(1, min(n_jobs or _default_jobs("cpu"), len(units1)))
    units2 = _largest_stage2(plan.grid)
    timed: dict[tuple[int, int], float] = {}
    seconds = (cpu_seconds(plan.grid, units1, plan.obs_dim, plan.act_dim, jobs, timed)
               + cpu_seconds(plan.grid, units2, plan.obs_dim, plan.act_dim, jobs, timed))
    if seconds <= SLOW_CPU_S:
        return None
    updates = sum(member_updates(plan.grid, u) for u in (*units1, *units2))
    (w, b), per = max(timed.items())  # the widest shape, its largest batch
    return (f"note: on this CPU the {updates:,} member-updates of this calibration take "
            f"{duration(seconds)} ({jobs} population(s) at once; one member-update at width "
            f"{w}, batch {b} took {per * 1e3:.0f} ms here), env steps not counted; "
            + ("" if plan.grid.name == "cpu" else
               "--preset cpu makes a real fit on a CPU in under an hour on a task SAC learns "
               "in a few thousand steps (Pendulum-v1: 43 min on 2 cores), ")
            + "--preset smoke checks the pipeline in minutes, and a GPU runs the minutes preset "
            "in about 8 min (README, Throughput)")


def _configs(grid: Grid) -> str:
    """A grid's planned stage-2 configs as "(1, 32), (2, 32 at batch 64), ..."."""
    return ", ".join(f"({c.utd:g}, {c.width}" + (f" at batch {c.batch_size})" if c.batch_size
                                                 else ")") for c in grid.configs)


class MemoryNeedError(CalibrationError):
    """A calibration whose populations would not fit in memory."""


def _precisions(records: list[dict]) -> str:
    """What the networks of a stage's populations computed in: "float32", "bf16 weight copies"
    (TrainConfig.bf16) or both, "/"-joined."""
    kinds = {"bf16 weight copies" if r["manifest"].get("config", {}).get("bf16") else "float32"
             for r in records}
    return "/".join(sorted(kinds))


def _compile_modes(records: list[dict]) -> str:
    """The compile modes a stage's populations trained with (a resumed calibration may have
    changed --compile between stages: same arithmetic up to rounding, other speed)."""
    modes = sorted({str(r["manifest"].get("config", {}).get("compile", "none")) for r in records})
    return "/".join(modes) or "none"


def _run(plan: _Plan, env_id: str, *, backend, n_jobs, compile, n_boot, delta, quiet, echo,
         say, command, created, eval_background: bool = False, bf16: bool = False) -> Path:
    grid, out = plan.grid, plan.out
    # Stage 1: batch x utd at the anchor width, batch x width at the anchor utd.
    units1 = stage1_units(grid)
    if plan.device == "cpu" and not (out / "units").is_dir():  # even with --quiet: a warning
        if max(grid.widths) >= 512:  # a second or more per timed update: say what runs
            say("pricing this calibration on this CPU: one update timed at each width and "
                "batch size (a minute at most)")
        note = cpu_time_note(plan, units1, n_jobs)
        if note:
            echo(note)
    say(f"stage 1: {len(units1)} populations (batch x utd, batch x width) on {env_id}, "
        f"{plan.device}{_already(out, units1)}")
    records1 = run_units(env_id, grid, units1, out, device=plan.device, backend=backend,
                         n_jobs=n_jobs, quiet=quiet, echo=echo, compile=compile,
                         eval_background=eval_background, bf16=bf16)
    say(stage_summary("stage 1", records1))
    runs1 = _read(out, units1, env_id, grid)
    coef_b, b_err, b_boot = _batch_law(out, units1, runs1, n_boot, say)

    def batch_of(u: float, w: int) -> int:
        b = float(advisor.laws.batch_size(u, plan.params_of(w), *coef_b))
        if not (math.isfinite(b) and b > 0):
            raise CalibrationError(f"the fitted B~ gives no usable batch size at utd {u:g}, "
                                   f"width {w} ({b}); the stage-1 runs may be too short")
        return round_batch_size(b)

    # Stage 2: utd x width at the fitted batch size.
    units2 = stage2_units(grid, batch_of)
    check_memory(plan, units2, n_jobs, "stage 2")
    say(f"stage 2: {len(units2)} populations (utd x width at the fitted batch size)"
        f"{_already(out, units2)}{_cpu_stage_time(plan, units2, n_jobs) if not quiet else ''}")
    records2 = run_units(env_id, grid, units2, out, device=plan.device, backend=backend,
                         n_jobs=n_jobs, quiet=quiet, echo=echo, compile=compile,
                         eval_background=eval_background, bf16=bf16)
    say(stage_summary("stage 2", records2))
    if "/" in _precisions(records1 + records2):  # an out-dir resumed with bf16 switched
        echo(f"warning: populations trained in float32 and on bf16 weight copies are fitted "
             f"together (stage 1: {_precisions(records1)}; stage 2: {_precisions(records2)}); "
             "for one precision, calibrate into a new out-dir")
    runs2 = _read(out, units2, env_id, grid)
    if len({(r.utd, r.params) for r in runs2}) < plan.min_configs:
        raise CalibrationError(f"only {len(runs2)} finished stage-2 configurations; at least "
                               f"{plan.min_configs} are needed to fit D_J")
    targets = choose_targets(runs2)
    table = data_table(runs2, targets, n_boot=n_boot, step_limit=grid.steps)
    gone = diverged(runs2)
    if gone:  # members whose every logged return is NaN (the learner's divergence flag)
        echo(f"warning: {gone}")
    manifests = [r["manifest"] for r in records1 + records2]
    # Where the runs trained (their manifests), not the --device of this call: a calibration
    # resumed elsewhere to refit only (say with --prior) keeps the runs' devices.
    device_names = sorted({f"{m['device_name']} ({m['device']})" for m in manifests})
    obs_dim, act_dim = plan.obs_dim, plan.act_dim
    arch = bronet_architecture(obs_dim + act_dim, quantiles=grid.quantiles,
                               width_multiple=16 if max(grid.widths) < 256 else 64,
                               whose="this project's learner")
    batch = BatchSizeLaw(kind="law", source="fitted", a_b=float(coef_b[0]),
                         alpha_b=float(coef_b[1]), b_b=float(coef_b[2]), beta_b=float(coef_b[3]),
                         relative_error=b_err)
    notes = [
        f"grid {grid.name} ({grid.digest()}): steps {grid.steps}, seeds {grid.seeds}, "
        f"batch sizes {grid.batch_sizes}, utds {grid.utds}, widths {grid.widths}, anchor width "
        f"{grid.anchor_width}, anchor utd {grid.anchor_utd}, quantiles {grid.quantiles}"
        + ("; batch sizes packed per width" if grid.pack_batch_sizes else "")
        + (f"; stage 2 at (utd, width) {_configs(grid)} only" if grid.configs else ""),
        f"trained on {', '.join(device_names)}; torch "
        f"{manifests[0]['versions'].get('torch')}, gymnasium "
        f"{manifests[0]['versions'].get('gymnasium')}; torch.compile of the update: "
        f"stage 1 {_compile_modes(records1)}, stage 2 {_compile_modes(records2)}"
        # (said only where bf16 was used: float32 fits keep the notes they always had)
        + ("; networks: stage 1 " + _precisions(records1) + ", stage 2 "
           + _precisions(records2) + " (--bf16)"
           if "bf16" in _precisions(records1 + records2) else ""),
        f"thresholds {span(targets[0], targets[-1], '.4g')} chosen from the data "
        "(calibration.calibrate)",
        f"delta {delta:g} FLOPs per env step is a default for simulated tasks; pass --delta",
        # Without times: a resumed calibration writes the same file as an uninterrupted one
        # (the times are printed, and kept in the out-dir's unit manifests).
        stage_summary("stage 1", records1, timing=False),
        stage_summary("stage 2", records2, timing=False),
    ]
    if b_boot != n_boot:  # the recorded command's --n-boot is not the one B~ was fitted with
        notes.append(f"B~ was fitted by an earlier run on this out-dir, with --n-boot "
                     f"{b_boot if b_boot is not None else 'unrecorded'} (kept in "
                     f"{BATCH_LAW_FILE}: stage 2 trained at its batch sizes); the recorded "
                     f"command reproduces this file on this out-dir, while on a new one it "
                     f"fits B~ with --n-boot {n_boot}")
    if gone:
        notes.append(gone)
    resumed = sorted(Unit(**r["unit"]).id for r in (*records1, *records2)
                     if r["manifest"].get("resumed_from"))
    if resumed:  # the recorded command refits these runs; it does not retrain them alike
        notes.append(f"{len(resumed)} population(s) resumed from a checkpoint after an "
                     f"interruption ({', '.join(resumed)}): new episodes from there, so their "
                     "runs match an uninterrupted calibration statistically, not bit for bit; "
                     "the recorded command reproduces this file from these runs")
    # The least-squares fits run about twice as fast on one BLAS thread (as `regenerate`'s do).
    with one_blas_thread(), reporting(say):  # a long --n-boot says how far it is
        fit, _, _ = make_fit_file(
            table, fit_id=plan.fit_id, batch=batch, arch=arch, delta=delta,
            provenance=Provenance(source=f"advisor calibrate runs in {out}", command=command,
                                  project_version=advisor.__version__,
                                  method=DEFAULT_METHOD.describe(), notes=notes),
            n_boot=n_boot, created=created, prior=plan.prior,
            batch_sizes=list(grid.batch_sizes),  # the stage-1 sweep's
            random_steps=grid.random_steps,
            # stage 1's runs at a stage-2 config (other batch sizes) count for how far it got
            reach_tables=[data_table(runs1, targets, n_boot=0, step_limit=grid.steps)])
    # Is the fit fit to use (calibration.checks)? Recorded in its notes; printed here.
    checks = fit_checks(fit, batch_sizes=list(grid.batch_sizes), configs=(table.utd, table.params))
    failed = [c for c in checks if not c.ok]
    for c in checks:
        say(f"check {c}")
    if failed and quiet:  # --quiet silences progress, not this
        for c in failed:
            echo(f"warning: check {c}")
    path = plan.fit_path
    if path.exists():  # e.g. a --prior refit over the free fit: the runs stay, say so
        say(f"replacing the fit file written earlier at {path} (the runs it came from stay in "
            f"{out}: a rerun with its options writes it again; --fit-out FILE keeps both)")
    write_fit_file(fit, path)
    g = fit.goodness_of_fit
    say(f"wrote {path}: leave-one-config-out error {100 * g.leave_one_config_out:.1f}% over "
        f"{g.n_configs} configs" + (f"; {len(failed)} of {len(checks)} fit checks FAILED "
                                    "(above: do not trust what they name; a longer or wider "
                                    "grid may help)" if failed else "; fit checks passed"))
    from advisor.registry import list_fits

    if fit.id in list_fits():  # a new user's: `--fit bro-torch/Pendulum-v1` loaded the shipped
        say(f"note: {fit.id} is also the id of a fit this advisor lists (`advisor fits`): "
            f"--fit {fit.id} names that one; name this file (--fit {path}) to use yours")
    if plan.prior is None and any(c.name == "exponents" for c in failed):
        echo(prior_hint(command, path))
    return path


BATCH_LAW_FILE = "batch_law.json"


def _batch_law(out: Path, units1: list[Unit], runs1: list[Run], n_boot: int,
               say) -> tuple[list[float], float, int | None]:
    """B~ from the stage-1 runs, fitted once per out-dir and kept in OUT/batch_law.json: stage
    2's populations are trained at its batch sizes, so a rerun (another --n-boot, another
    machine's rounding) must plan the same ones rather than train new populations. Returns
    the coefficients, their relative error and the --n-boot they were fitted with."""
    from advisor.files import load_json, read_limited

    path = out / BATCH_LAW_FILE
    ids = sorted(u.id for u in units1)
    if path.exists() or path.is_symlink():
        fix = ("remove it to fit B~ again (stage-2 populations trained at other batch sizes "
               "are then not used)")
        kept = load_json(read_limited(path, "B~ file", CalibrationError), str(path),
                         CalibrationError)
        try:
            coef = [float(x) for x in kept["coefficients"]]
            err = float(kept["relative_error"])
            ok = (len(coef) == 4 and all(math.isfinite(x) for x in coef) and math.isfinite(err)
                  and err >= 0 and coef[0] > 0 and isinstance(kept["stage1_units"], list))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise CalibrationError(f"{path} is not a B~ this calibration wrote; {fix}")
        if kept["stage1_units"] == ids:
            say(f"B~ as fitted when stage 1 finished: a_B={coef[0]:.4g} "
                f"alpha_B={coef[1]:.3g} b_B={coef[2]:.3g} beta_B={coef[3]:.3g}, kept in {path} "
                "(remove it to fit B~ again; stage-2 populations trained at other batch sizes "
                "are then not used)")
            boot = kept.get("n_boot")
            return coef, err, boot if isinstance(boot, int) else None
    targets1 = choose_targets(runs1)
    tables = tables_by_batch(runs1, targets1, n_boot)
    utd, params, best = best_batch_sizes(tables)
    coef_b, b_err = fit_batch_law(utd, params, best)
    coef = [float(x) for x in coef_b]
    say(f"B~ fitted on {len(utd)} configs: a_B={coef[0]:.4g} alpha_B={coef[1]:.3g} "
        f"b_B={coef[2]:.3g} beta_B={coef[3]:.3g} (mean relative error {100 * b_err:.0f}%)")
    from calibration.atomic import atomic_save

    atomic_save(path, text=json.dumps({
        "stage1_units": ids, "coefficients": coef, "relative_error": float(b_err),
        "n_boot": int(n_boot), "configs": len(utd),
        "note": "B~ fitted on stage 1; stage 2 trains at its batch sizes (calibration.calibrate)"},
        indent=1))
    return coef, float(b_err), int(n_boot)


def prior_hint(command: str, fit_path: Path) -> str:
    """What to do when the runs do not determine an exponent (the Hopper `minutes` runs on an
    H100 put alpha at its bound: UTD 1-4 barely mattered in 10k steps). The refit it names
    writes beside `fit_path` (a later --fit-out wins in click), keeping the free fit."""
    from calibration.catalogue import FAMILIES

    family = sorted(FAMILIES)[0]
    beside = fit_path.with_name(f"{fit_path.stem}-{family}{fit_path.suffix}")
    words = shlex.split(command)  # its own --fit-out gives way to the new one (not twice)
    kept = [w for i, w in enumerate(words) if not (
        w == "--fit-out" or w.startswith("--fit-out=") or (i and words[i - 1] == "--fit-out"))]
    command = shlex.join(kept)
    return ("hint: these runs do not determine an exponent; a few-shot fit borrows the "
            f"exponents from a family of fits ({', '.join(sorted(FAMILIES))}) and fits the rest "
            f"to these runs, without training again (beside this fit): {command} --prior "
            f"{family} --fit-out {shlex.quote(str(beside))}")


def _cpu_stage_time(plan: _Plan, units: list[Unit], n_jobs: int | None) -> str:
    """'; about 27 min on this CPU for its 990,000 member-updates ...' for the units of a stage
    not trained yet, priced at their real batch sizes (the note before stage 1 prices stage 2
    at the grid's largest); '' on a GPU or where every unit is done."""
    from calibration.cost import cpu_seconds, duration, member_updates

    todo = [u for u in units if unit_done(plan.out, u) is None]
    if plan.device != "cpu" or not todo:
        return ""
    jobs = max(1, min(n_jobs or _default_jobs("cpu"), len(todo)))
    seconds = cpu_seconds(plan.grid, todo, plan.obs_dim, plan.act_dim, jobs)
    updates = sum(member_updates(plan.grid, u) for u in todo)
    return (f"; {duration(seconds)} on this CPU for {'its' if len(todo) == len(units) else 'their'}"
            f" {updates:,} member-updates (timed here at these batch sizes; env steps not "
            "counted)")


def _already(out: Path, units: list[Unit]) -> str:
    """'; all 6 trained earlier in OUT: nothing to train', '; 2 trained earlier in OUT,
    training the other 4 (1 resumes from its checkpoint: s1_w32_bs32_utd1 at step 2,000)', or ''
    where none is: a rerun says what it skips and what it resumes."""
    from calibration.runner import checkpoint_step

    left = [u for u in units if unit_done(out, u) is None]
    done = len(units) - len(left)
    if done == len(units):
        return f"; all {done} trained earlier in {out}: nothing to train"
    at = {u.id: checkpoint_step(out / "runs" / u.id) for u in left}
    at = {u: step for u, step in at.items() if step}
    resumes = (f" ({len(at)} resume{'s' if len(at) == 1 else ''} from a checkpoint: "
               + ", ".join(f"{u} at step {step:,}" for u, step in at.items()) + ")"
               if at else "")
    if not done:
        return f"; none finished earlier in {out}{resumes}" if at else ""
    return f"; {done} trained earlier in {out}, training the other {len(left)}{resumes}"


def stage_summary(stage: str, records: list[dict], timing: bool = True) -> str:
    """One line on a stage's training, from its units' manifests: populations, member-updates,
    env steps and devices, and with `timing` the span from the first unit's start to the last
    one's end (manifests written before start/end times were recorded give the sum of their
    train times instead) and the member-updates per second over it."""
    manifests = [r["manifest"] for r in records]
    updates = sum(int(m["member_updates"]) for m in manifests)
    steps = sum(int(m["config"]["steps"]) * len(r["unit"]["seeds"])
                for m, r in zip(manifests, records))
    devices = ", ".join(sorted({str(m["device_name"]) for m in manifests}))
    interrupted = any(m.get("resumed_from") for m in manifests)
    if manifests and all("started_unix" in m and "finished_unix" in m for m in manifests):
        span = (max(float(m["finished_unix"]) for m in manifests)
                - min(float(m["started_unix"]) for m in manifests))
        # Populations trained by separate runs of the command (runner.run_units' `run`)
        interrupted = interrupted or len({r["run"] for r in records if "run" in r}) > 1
        how = "from the first population's start to the last one's end"
    else:
        span = sum(float(m["wall_time_s"]) for m in manifests)
        how = "summed over populations"
    pops = f"{len(manifests)} population{'' if len(manifests) == 1 else 's'}"
    if not timing:
        return (f"{stage}: {pops}, {updates:,} member-updates, {steps:,} "
                f"env steps on {devices}")
    if interrupted:  # the span holds the time between runs of the command: no rate
        how += ", across an interruption: not a training time"
    rate = f" = {updates / span:,.0f} member-updates/s" if span > 0 and not interrupted else ""
    return (f"{stage}: {pops}, {updates:,} member-updates, {steps:,} env "
            f"steps in {span:,.0f} s ({how}){rate} on {devices}{_phases(manifests)}")


def _phases(manifests: list[dict]) -> str:
    """'; time by phase ...' over the populations whose manifests time the phases of their
    loop (trainer.PHASES), as shares of their summed train time; '' where none do."""
    timed = [m["phase_s"] for m in manifests if isinstance(m.get("phase_s"), dict)]
    totals: dict[str, float] = {}
    for phases in timed:
        for name, seconds in phases.items():
            totals[name] = totals.get(name, 0.0) + float(seconds)
    whole = sum(totals.values())
    if not timed or whole <= 0:
        return ""
    shares = ", ".join(f"{name} {value / whole:.0%}" for name, value in totals.items())
    return f"; time by phase, summed over populations: {shares}"


def _command(env_id, algorithm, preset_name, grid_file, steps, seeds, device, out_dir, fit_out,
             delta, n_boot, created, prior=None, compile="none", bf16=False) -> str:
    """The `advisor calibrate` command line equivalent to a Python call (the CLI records its own
    parsed parameters instead)."""
    from advisor.fit import number_text

    parts = ["advisor calibrate --env", shlex.quote(env_id), "--algorithm", shlex.quote(algorithm)]
    parts += (["--grid", shlex.quote(str(grid_file))] if grid_file
              else ["--preset", shlex.quote(preset_name)])
    parts += ["--steps", str(steps)] if steps else []
    parts += ["--seeds", str(seeds)] if seeds else []
    mode = {True: "update", False: "none", None: "none"}.get(compile, compile)
    parts += ["--device", device] + (["--compile", mode] if mode != "none" else [])
    parts += ["--bf16"] if bf16 else []
    parts += ["--out-dir", shlex.quote(str(out_dir))]
    parts += ["--fit-out", shlex.quote(str(fit_out))] if fit_out else []
    parts += ["--delta", number_text(float(delta)), "--n-boot", str(n_boot), "--created", created]
    if prior is not None:
        parts += [f"--prior {shlex.quote(p)}" for p in
                  ((prior.family,) if prior.family else tuple(prior.ids))]
    return " ".join(parts)


def diverged(runs: list[Run]) -> str:
    """The runs (one seed of a config) whose member diverged, in words (empty where none): the
    learner logs a diverged member's returns as NaN from then on. One that never logged a finite
    return is left out of its config's average (which then holds fewer seeds than the grid's);
    one that diverged later keeps its last finite return from there, as the curves carry a
    missing evaluation forward."""
    never, later = [], []
    for r in runs:
        values, steps = r.values["return"], r.steps["return"]
        for k in range(values.shape[1]):
            ok = np.isfinite(values[:, k])
            where = f"utd {r.utd:g}, width {r.width}, seed column {k}"
            if not ok.any():
                never.append(where)
            elif not ok[-1]:
                later.append(f"{where} at step {steps[np.flatnonzero(ok)[-1] + 1]:,.0f}")
    if not never and not later:
        return ""

    def listed(items):
        return "; ".join(items[:6]) + (f"; and {len(items) - 6} more" if len(items) > 6 else "")

    total = sum(r.n_seeds for r in runs)
    parts = []
    if never:
        parts.append(f"{len(never)} never logged a finite return, left out of the averages "
                     f"({listed(never)})")
    if later:
        parts.append(f"{len(later)} diverged later, their last finite return carried on "
                     f"({listed(later)})")
    return (f"{len(never) + len(later)} of the {total} stage-2 runs diverged (returns logged "
            f"as NaN): " + "; ".join(parts))


def _read(out: Path, units: list[Unit], env_id: str, grid: Grid | None = None) -> list[Run]:
    """The runs of `units` (all finished), and only theirs: a unit of an earlier B~ left in the
    out-dir is not read. With `grid`, each unit's logs must be whole: a return curve for each
    of its (utd, batch size) configurations, with a column per seed and a row per evaluation
    (a missing or cut file was fitted without a word)."""
    runs = []
    for unit in units:
        fix = f"remove {out / 'units' / (unit.id + '.json')} to train it again"
        try:
            found = read_runs(out / "runs" / unit.id, env=env_id)
        except ArchiveError as exc:
            raise CalibrationError(f"the logs of finished unit {unit.id} cannot be used: {exc}; "
                                   f"{fix}") from None
        if grid is not None:
            stray = _stray(unit, found)
            if stray:
                raise CalibrationError(f"the logs of finished unit {unit.id} hold a run it did "
                                       f"not train ({stray}); remove that run's folder under "
                                       f"{out / 'runs' / unit.id}")
            why = _incomplete(unit, found, grid)
            if why:
                raise CalibrationError(f"the logs of finished unit {unit.id} are incomplete: "
                                       f"{why}; {fix}")
        runs += found
    return runs


def _stray(unit: Unit, runs: list[Run]) -> str | None:
    """A run in a finished unit's folder that the unit did not train (another utd or batch
    size, another width, or a second parameter count), or None: it would be fitted as data."""
    sizes = unit.member_batch_sizes
    want = {(float(u), int(b)) for u, b in zip(unit.utds, sizes)}
    params = sorted({float(r.params) for r in runs})
    for r in runs:
        where = f"utd {r.utd:g}, batch size {r.batch_size:g}, {r.params:.0f} params"
        if (float(r.utd), int(r.batch_size)) not in want:
            return where
        if r.width is not None and int(r.width) != unit.width:
            return f"{where}, width {r.width}"
        if len(params) > 1 and float(r.params) != params[0]:
            return where
    return None


def _incomplete(unit: Unit, runs: list[Run], grid: Grid) -> str | None:
    """What is missing from a finished unit's return curves, or None."""
    sizes = unit.member_batch_sizes
    want: dict[tuple[float, int], int] = {}
    for u, b in zip(unit.utds, sizes):
        want[(float(u), int(b))] = want.get((float(u), int(b)), 0) + 1
    rows = grid.steps // grid.eval_every + (1 if grid.steps % grid.eval_every else 0)
    have = {(float(r.utd), int(r.batch_size)): r for r in runs if "return" in r.values}
    for (u, b), seeds in sorted(want.items()):
        r = have.get((u, b))
        if r is None:
            return f"no return curve for utd {u:g}, batch size {b}"
        shape = np.shape(r.values["return"])
        if shape != (rows, seeds):
            return (f"the return curve of utd {u:g}, batch size {b} has {shape[0]} evaluations "
                    f"of {shape[1] if len(shape) > 1 else 1} seeds, not {rows} of {seeds}")
    return None
