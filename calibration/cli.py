"""The `advisor` commands that drive the heavy side: fit, regenerate, calibrate, report, plot.

They join the `advisor` group through the entry-point group `advisor.commands` (pyproject.toml),
so `advisor/` never imports this package. Each command is a thin shell over one function.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import os
import shlex
import sys
from pathlib import Path

import click

from advisor.cli import NUMBER, Steps
from advisor.errors import AdvisorError, OutputError
from calibration.grid import MAX_STEPS, PRESETS
from calibration.runner import BACKENDS

#: calibrate.DEVICES, written here so that `advisor --help` need not import numpy
#: (tests/test_calibrate.py checks the two agree)
DEVICES = ("auto", "cpu", "cuda")

RUN_STEPS = Steps(maximum=MAX_STEPS)  # a grid's steps per run at most


def recorded_command(ctx: click.Context, skip: tuple[str, ...] = ()) -> str:
    """The command line that reproduces this invocation, built from the parsed parameters (not
    from sys.argv): arguments in order, then every option that has a value, long names."""
    parts = ["advisor", ctx.info_name]
    options = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in skip or value is None or value is False or value == ():
            continue
        if isinstance(param, click.Argument):
            parts.append(shlex.quote(str(value)))
            continue
        name = max(param.opts, key=len)
        if value is True:
            options.append(name)
        elif isinstance(value, tuple):
            if param.multiple:
                options += [f"{name} {shlex.quote(_text(v))}" for v in value]
            else:
                options.append(f"{name} " + " ".join(shlex.quote(_text(v)) for v in value))
        else:
            options.append(f"{name} {shlex.quote(_text(value))}")
    return " ".join(parts + options)


def _text(value) -> str:
    from advisor.fit import number_text  # here: `advisor --help` loads this module, not numpy

    return number_text(value) if isinstance(value, float) else str(value)


def _today() -> str:
    return _dt.date.today().isoformat()


def _positive_finite(ctx, param, value):
    """A click callback for --delta: None, or a float > 0 and finite."""
    if value is not None and not 0 < value < float("inf"):
        raise click.BadParameter(f"must be a positive finite number of FLOPs per env step, got "
                                 f"{value!r}")
    return value


def _step_grid(ctx, param, value):
    """A click callback: None, or env steps from 1 to MAX_STEP."""
    from calibration.tidy import MAX_STEP

    if value is not None and not 1 <= value <= MAX_STEP:
        raise click.BadParameter(f"must be 1 to {MAX_STEP:g} env steps, got {value!r}")
    return value


def _iso_date(ctx, param, value):
    """A click callback: None, or a date YYYY-MM-DD (what fit files record as `created`)."""
    from advisor.files import is_iso_date

    if value is not None and not is_iso_date(value):
        raise click.BadParameter(f"must be a date YYYY-MM-DD, got {value!r}")
    return value


MAX_RETURN = 1e15  # a return threshold's size at most (--target-range)


def _target_range(ctx, param, value):
    """A click callback: None, or finite J_MIN < J_MAX."""
    if value:
        lo, hi = value
        if not (abs(lo) <= MAX_RETURN and abs(hi) <= MAX_RETURN and lo < hi):
            raise click.BadParameter(f"needs J_MIN < J_MAX, returns within +-{MAX_RETURN:g}, "
                                     f"got {lo!r} {hi!r}")
    return value


@click.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=True))
@click.option("--algorithm", required=True, help="Algorithm name, the first half of the fit id.")
@click.option("--env", required=True, help="Environment name as it appears in the archive.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the fit file (written atomically).")
@click.option("--n-boot", default=100, show_default=True, type=click.IntRange(0, 10_000),
              help="Bootstrap resamples of seeds (coefficient spread shown in reports).")
@click.option("--target-range", nargs=2, type=NUMBER, default=None, callback=_target_range,
              metavar="J_MIN J_MAX", help="J_min J_max for envs not in paper A's Table 2.")
@click.option("--delta", type=NUMBER, callback=_positive_finite,
              help="FLOPs charged per env step, the exchange rate of --total budgets (default: "
                   "paper A's value for its tasks, else 1e11, its value for every DMC task).")
@click.option("--input-dim", type=click.IntRange(1, 100_000),
              help="Critic input size (obs + action) for new envs.")
@click.option("--created", callback=_iso_date,
              help="Creation date to record, YYYY-MM-DD (default: today).")
@click.option("--name", help="Env part of the fit id (default: --env, the archive's name).")
@click.option("--prior", multiple=True, metavar="FIT_OR_FAMILY",
              help="Few-shot fit: borrow exponents and threshold shape from these fits (ids or "
                   "files, repeat the option) or a family (dmc); fit only the 3 per-task "
                   "offsets. For a task with only a few configurations (3 or more).")
@click.option("--random-steps", type=click.IntRange(0, 10**12), default=None,
              help="Env steps of random actions your runs took before learning, recorded so "
                   "that exports set learning_starts (default: 2,500 for fitted_bs.zip, paper "
                   "A's; unrecorded otherwise).")
@click.option("--round-steps", type=NUMBER, callback=_step_grid, metavar="N",
              help="Tidy CSV only: round each step to the nearest multiple of N, for loggers "
                   "whose seeds log at drifting steps (10003, 9998, ... with N 1000).")
@click.pass_context
def fit(ctx, archive, algorithm, env, output, n_boot, target_range, delta, input_dim, created,
        name, prior, random_steps, round_steps):
    """Fit the laws to runs (ARCHIVE: a zip, .tgz or folder in the published layout, or a tidy
    CSV) and write a fit file; `advisor calibrate` refits its own out-dir (rerun it there).

    \b
    A tidy CSV (a file ending in .csv): a header, then a row per evaluation:
      utd, width or params, batch_size, seed, step, return
      optional: env (the rows of --env are read), critic, critic_loss,
                validation_critic_loss
      step    env steps at the evaluation
      return  its mean return; nan or empty: missing (the seed's last
              return is carried forward)
      width   the hidden width of a BroNet critic (this project's: 2
              residual blocks; needs --input-dim, unless params is given)
      params  the critic's parameter count, both Q-nets (give it for any
              other critic, e.g. an MLP: widths alone count as BroNet's)
      width and params both, at 3+ widths, without --input-dim: the fit
              learns your critic's params(width) and recommends its widths
      critic  with those: mlp (a plain MLP, SB3's MlpPolicy) or bronet
              (SB3 BroNetSACPolicy's), which --format zoo then builds
    Each (utd, params, batch_size) needs 2 or more seeds logging the same
    steps (one may stop earlier; --round-steps aligns drifting ones).
    rl-baselines3-zoo's logs: `advisor tidy LOGS -o runs.csv` writes one.

    The file records the exact command that reproduces it (with --created filled in). A fit
    whose exponents sit at a bound, that predicts held-out configs no better than a log-linear
    baseline (or has too few configs to compare), whose D_J falls as the target rises inside
    its runs, or whose B~ is a step between grid points, is written with a warning
    (calibration.checks)."""
    from advisor.fitfile import check_fit_output, write_fit_file
    from calibration.build import build_fit
    from calibration.fitting import reporting

    # not over the runs it reads (a CSV, an archive), a shipped fit of another id, ...
    check_fit_output(output, "-o", fit_id=f"{algorithm}/{name or env}" if name or env else None)
    for given in prior:  # nor over a fit it borrows from
        if os.path.isfile(given) and os.path.exists(output) and os.path.samefile(given, output):
            raise OutputError(f"-o {output} would overwrite --prior {given}, an input of this "
                              "fit; choose another -o")
    ctx.params["created"] = created = created or _today()
    with reporting(lambda line: click.echo(line, err=True)):  # a long --n-boot says so
        built = build_fit(archive, algorithm, env, n_boot=n_boot, created=created,
                          command=recorded_command(ctx),
                          target_range=tuple(target_range) if target_range else None,
                          delta=delta, input_dim=input_dim, name=name,
                          prior=list(prior) or None, random_steps=random_steps,
                          round_steps=round_steps)
    path = write_fit_file(built.fit, output)
    g = built.fit.goodness_of_fit
    click.echo(f"wrote {path}: {built.fit.id}, leave-one-config-out error "
               f"{100 * g.leave_one_config_out:.1f}% over {g.n_configs} configs", err=True)
    from calibration.checks import fit_checks

    # as calibrate's (without the batch-size range)
    for check in fit_checks(built.fit, configs=(built.table.utd, built.table.params)):
        if not check.ok:
            click.echo(f"warning: check {check}", err=True)


@click.command()
@click.argument("logs", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Where to write the CSV, a name ending in .csv (atomically; it replaces "
                   "only a CSV tidy wrote; default: standard output).")
@click.option("--env", help="Read the runs of this env only (default: every env, with an env "
                            "column that advisor fit --env selects).")
@click.option("--input-dim", type=click.IntRange(1, 100_000),
              help="The critic's input size (obs + action) to count its parameters at, in place "
                   "of the env's as Gymnasium here makes it: needed for an env it cannot make, "
                   "one named with its module (mod:Env-v0), and runs that change what the "
                   "critic takes in (env_wrapper, vec_env_wrapper, frame_stack, env_kwargs, a "
                   "features_extractor_class).")
def tidy(logs, output, env, input_dim):
    """Turn rl-baselines3-zoo's logs of SAC runs into the tidy CSV that `advisor fit` reads.

    LOGS: the folder rl-zoo's -f / --log-folder named (or its sac/ folder, or one run's). Each
    run needs evaluations, so train with --eval-freq N (and --eval-episodes K), a grid of
    utd (gradient_steps) and critic width (3 or more of each), 2 or more seeds each:

    \b
      for utd in 1 2 4; do for width in 64 128 256; do for seed in 0 1; do
        python -m rl_zoo3.train --algo sac --env Pendulum-v1 -f logs \\
          --seed $seed --eval-freq 1000 --eval-episodes 5 -params \\
          n_timesteps:20000 gradient_steps:$utd \\
          "policy_kwargs:dict(net_arch=dict(pi=[256, 256], qf=[$width, $width]))"
      done; done; done
      advisor tidy logs -o runs.csv    # prints the advisor fit command

    \b
    A row per evaluation: env, utd (gradient_steps / (train_freq * n_envs)),
    width (where an env's critics are of one structure, each with its hidden
    layers of one width, and it has 3 or more widths), params (the critic,
    all its Q-nets, as SB3 builds MlpPolicy's net_arch or BroNetSACPolicy's
    critic_width and critic_blocks), critic (with the widths: mlp or
    bronet, which the fit records and --format zoo builds), batch_size,
    seed, step, return (the mean over its episodes). Runs of other algorithms, runs without
    evaluations and damaged runs of other envs are left out with a note;
    runs of one configuration that differ in another hyperparameter are
    refused (a fit would take them for seeds). Nothing named in the logs is
    run or imported: policy_kwargs is read as literals only."""
    from calibration import zoo_logs

    if output == "":
        raise OutputError("-o is empty: give the CSV's file name (or leave -o out for stdout)")
    runs, notes = zoo_logs.read_runs(logs, env=env, input_dim=input_dim)
    text = zoo_logs.tidy_csv(runs)
    if output:
        from advisor.files import atomic_write_text, check_replaceable

        target, root = os.path.realpath(output), os.path.realpath(logs)
        log = next((f for f in zoo_logs.log_files(logs) if os.path.realpath(f) == target), None)
        if log is None and os.path.isfile(target) and target.startswith(root + os.sep):
            log = Path(output)  # a model, monitor.csv, ...: whatever rl-zoo keeps there
        if log is not None:
            raise OutputError(f"-o {output} would replace {log}, a file of the rl-zoo logs in "
                              f"{logs}; choose another -o")
        device = os.path.exists(target) and not os.path.isfile(target)  # /dev/stdout
        if not device and not output.lower().endswith(".csv"):  # as advisor fit reads it
            raise OutputError(f"-o {output}: the CSV's name must end in .csv, as advisor fit "
                              "reads it, e.g. -o runs.csv (leave -o out for standard output)")
        # a file of the user's that is not an earlier tidy CSV (its whole header line) is kept
        check_replaceable(output, zoo_logs.TIDY_HEADS, "a CSV advisor tidy wrote",
                          f"-o {output}")
        atomic_write_text(output, text)
    else:
        click.echo(text, nl=False)
    for line in notes:
        click.echo(f"note: {line}", err=True)
    for line in zoo_logs.summary(runs):
        click.echo(line, err=True)
    envs = sorted({r.env for r in runs})
    where = shlex.quote(output) if output else "RUNS.csv"
    done = f"wrote {output}" if output else "the CSV is above"
    if len(envs) > 1:
        click.echo(f"{done}; next: advisor fit {where} --env ENV ... (a fit per env: "
                   f"{', '.join(envs)})", err=True)
    elif (why := zoo_logs.not_fittable(runs, envs[0])) is not None:
        click.echo(f"{done}; advisor fit cannot fit these runs yet: {why}", err=True)
    else:
        click.echo(f"{done}; next: {zoo_logs.fit_command(runs, envs[0], where)}", err=True)


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out-dir", default="fits", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--n-boot", default=100, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--created", callback=_iso_date,
              help="Creation date to record, YYYY-MM-DD (default: today).")
@click.option("--only", multiple=True, help="Rebuild only these fit ids.")
@click.option("-j", "--jobs", default=2, show_default=True, type=click.IntRange(1, 256))
def regenerate(data_dir, out_dir, n_boot, created, only, jobs):
    """Rebuild every shipped fit from the published archives in DATA_DIR.

    Each file records the `advisor fit` command that rebuilds it alone."""
    from calibration.build import regenerate as _regenerate
    from calibration.catalogue import catalogue

    known = {s.id for s in catalogue()}
    unknown = [i for i in only if i not in known]
    if unknown:
        from advisor.registry import list_fits

        what = (f"{unknown[0]!r} is shipped but not made from the published archives (its "
                "provenance names the command that made it: `advisor show`)"
                if unknown[0] in list_fits() else f"unknown shipped fit {unknown[0]!r}")
        raise click.BadParameter(f"{what}; choose from {', '.join(sorted(known))}",
                                 param_hint="--only")
    paths = _regenerate(data_dir, out_dir, n_boot=n_boot, created=created or _today(),
                        ids=list(only) or None, n_jobs=jobs,
                        progress=lambda i: click.echo(f"  {i}", err=True))
    click.echo(f"wrote {len(paths)} fit files under {out_dir}", err=True)


def _need_extra(extra: str, modules: tuple[str, ...], what: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        torch = ("torch==2.13.0 " if "torch" in missing or extra in ("calibrate", "clients")
                 else "")  # pinned: an unpinned torch pulls a multi-GB CUDA build (README)
        raise click.UsageError(f"the {extra} extra is needed for {what} ({missing[0]} is not "
                               f"installed): pip install {torch}'.[{extra}]' in the repository")


@click.command()
@click.option("--env", "env_id", required=True,
              help="Any gymnasium id with continuous actions, e.g. HalfCheetah-v5; an env of "
                   "your own as your_module:YourEnv-v0 (the module registers it with "
                   "gymnasium.register and is importable).")
@click.option("--algorithm", default="bro-torch", show_default=True,
              help="First half of the fit id written (ALGORITHM/ENV); the default names "
                   "this project's learner, apart from the bro/ fits of published runs.")
@click.option("--preset", "preset_name",
              type=click.Choice(list(PRESETS)), default="smoke",
              show_default=True,
              help="smoke: CPU, minutes, tiny critics (pipeline check). cpu: 2 CPU cores, "
                   "about 43 min, Pendulum-scale (a real fit without a GPU). minutes: one GPU, "
                   "minutes, Hopper-scale (low thresholds only). reduced: one GPU, hours. full: "
                   "paper-scale axes.")
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False),
              help="A grid JSON file instead of a preset (see calibration/grid.py: Grid).")
@click.option("--steps", type=RUN_STEPS,
              help="Env steps per run (overrides the grid's; evaluations every eval_every "
                   "steps as in the grid, lowered to give 10 at least and raised to give the "
                   "grid's number at most; random steps a fifth of the run at most).")
@click.option("--seeds", type=click.IntRange(2, 1000),
              help="Seeds per configuration (2 at least: the fit bootstraps over seeds).")
@click.option("--device", type=click.Choice(DEVICES), default="auto",
              show_default=True,
              help="cuda: populations go round-robin over every visible GPU "
                   "(CUDA_VISIBLE_DEVICES picks which); auto: cuda where there is one.")
@click.option("--backend", type=click.Choice(BACKENDS), default="loky",
              show_default=True,
              help="joblib backend: loky (a process per population) or threads (populations as "
                   "threads, each on its own CUDA stream: one GPU) on one machine; ray/dask on "
                   "a cluster.")
@click.option("--n-jobs", type=click.IntRange(min=1),
              help="Populations trained at once (default: up to 8 per GPU, at most half the "
                   "CPU cores; one per core on the CPU).")
@click.option("--compile", "compile_update", type=click.Choice(["none", "regions", "update"]),
              is_flag=False, flag_value="update", default=None,
              help="torch.compile (GPU: fewer, fused kernels; the same arithmetic up to "
                   "rounding): 'update' (the default of a bare --compile) each population's "
                   "whole update, about a minute of compiling per population shape; 'regions' "
                   "the LayerNorm regions and AdamW steps only, seconds (on an H100, with "
                   "--bf16, stage 1 of minutes trained in 196 s against 235 s without either; "
                   "README, Throughput). With none, a GPU still compiles the AdamW step alone "
                   "(measured 1.3-2x the update).")
@click.option("--bf16", is_flag=True,
              help="Train the networks on bf16 copies of their weights, which the AdamW steps "
                   "write (float32 parameters, moments and heads): fewer bytes per update, "
                   "bf16 rounding. On an H100, stage 1 of minutes with it and --compile "
                   "regions learned as float32 did (mean final return 222 against 224, "
                   "+-10, one run each); its effect on stage 2 and the fit is not measured "
                   "yet. The fit file says which stages used it.")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Where runs, done markers and the grid go; rerun to resume.")
@click.option("--fit-out", type=click.Path(dir_okay=False),
              help="Fit file to write (default: OUT_DIR/ALGORITHM-ENV.json).")
@click.option("--delta", type=NUMBER, default="1e10", show_default=True, callback=_positive_finite,
              help="FLOPs charged per env step in the fit file: the exchange rate of --total "
                   "budgets (C + delta * data). Paper A used 5e10 to 2e12 for its DMC and "
                   "HumanoidBench tasks; the default suits a cheap simulator such as "
                   "gymnasium's MuJoCo tasks. Set what an env step costs you.")
@click.option("--n-boot", type=click.IntRange(0, 10_000), default=100, show_default=True,
              help="Bootstrap resamples of seeds: D_J's coefficient spread (report bands) and, "
                   "on the first run, B~'s best batch per config (B~ is then kept in "
                   "OUT_DIR/batch_law.json, so stage 2's plan never changes).")
@click.option("--created", callback=_iso_date,
              help="Creation date to record, YYYY-MM-DD (default: today).")
@click.option("--prior", multiple=True, metavar="FIT_OR_FAMILY",
              help="Few-shot fit of stage 2: borrow exponents and threshold shape from these "
                   "fits (ids or files, repeat the option) or a family (dmc); then 3 stage-2 "
                   "configurations suffice (see `advisor plan --prior`).")
@click.option("--quiet", is_flag=True, help="No progress lines (for CI).")
@click.pass_context
def calibrate(ctx, env_id, algorithm, preset_name, grid_file, steps, seeds, device, backend,
              n_jobs, compile_update, bf16, out_dir, fit_out, delta, n_boot, created, prior,
              quiet):
    """Calibrate a new task: run a reduced grid, fit B~ and D_J, write a fit file.

    Needs the calibrate extra (torch, gymnasium[mujoco], joblib, psutil):
    pip install torch==2.13.0 '.[calibrate]' in the repository (torch pinned: README).

    Stage 1 sweeps batch x utd at one width and batch x width at one utd and fits B~; stage 2
    runs utd x width at the fitted batch size and fits D_J. Every input (names, grid, env,
    device, memory, output paths) is checked before the first population trains. Every
    finished population is saved atomically under --out-dir, which is locked while the command
    runs, and an unfinished one keeps a checkpoint every 2 minutes of training: run the same
    command again to resume after a crash. On a finished out-dir nothing trains: add --prior
    to refit its runs in seconds (it replaces the fit file there; --fit-out FILE keeps both).
    The fit file records the command that reproduces it (with --created filled in). The fit
    is then checked (exponents not at a bound, B~ near the batch sizes run, better than a
    log-linear baseline, D_J rising with the target): a failed check is printed (even with
    --quiet), recorded in the file, and repeated by `advisor recommend`.

    \b
    Example:
      advisor calibrate --env InvertedPendulum-v5 --preset smoke --device cpu --out-dir calib
      advisor recommend --fit calib/bro-torch-InvertedPendulum-v5.json --data 1000
    """
    from click.core import ParameterSource

    if grid_file and ctx.get_parameter_source("preset_name") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--preset and --grid both name the grid: give one of them")
    _need_extra("calibrate", ("torch", "gymnasium", "joblib"), "advisor calibrate")
    import warnings

    from calibration.calibrate import calibrate as _calibrate
    from calibration.runner import one_line_warning

    warnings.formatwarning = one_line_warning  # as the workers print theirs
    ctx.params["created"] = created = created or _today()
    skip = ("quiet", "n_jobs", "backend") + (("preset_name",) if grid_file else ())
    with _interruptible(out_dir):
        path = _calibrate(env_id, out_dir=out_dir, algorithm=algorithm, preset_name=preset_name,
                          grid_file=grid_file, steps=steps, seeds=seeds, device=device,
                          backend=backend, n_jobs=n_jobs, fit_out=fit_out, delta=delta,
                          n_boot=n_boot, quiet=quiet, created=created,
                          prior=list(prior) or None, compile=compile_update or "none",
                          bf16=bf16, command=recorded_command(ctx, skip=skip))
    click.echo(str(path))


class Interrupted(click.ClickException):
    """Ctrl-C or SIGTERM during a calibration: one line saying what is kept; exit 130 / 143."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class _Terminated(KeyboardInterrupt):
    pass


@contextlib.contextmanager
def _interruptible(out_dir):
    """SIGTERM (a cluster's time limit, `kill`) ends the calibration as Ctrl-C does, and either
    says what is kept: the finished populations, and the checkpoints of unfinished ones."""
    import signal
    import threading
    from pathlib import Path

    def terminate(signum, frame):
        raise _Terminated

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if main else None

    def kept() -> str:
        units = Path(out_dir) / "units"
        done = len(list(units.glob("*.json"))) if units.is_dir() else 0
        partial = len(list(Path(out_dir, "runs").glob("*/checkpoint.npz")))
        return (f"{done} finished population(s) kept in {out_dir}"
                + (f", {partial} unfinished one(s) with a checkpoint" if partial else "")
                + "; run the same command again to resume")

    from calibration.runner import PopulationFailed

    try:
        yield None
    except PopulationFailed as exc:
        failed = PopulationFailed(f"{exc}; {kept()}")
        _leave_now_if_threads_train(str(failed), 2)
        raise failed from None
    except Exception as exc:
        if type(exc).__name__ not in ("TerminatedWorkerError", "BrokenProcessPool"):
            raise
        # A worker process killed from outside: the OOM killer, or a kill of its pid.
        codes = str(exc).split("The exit codes of the workers are ", 1)[-1].split("\n")[0]
        raise click.ClickException(
            "a training worker process was killed"
            + (f" (exit codes {codes})" if codes != str(exc) else "")
            + ": out of memory, or a kill from outside; " + kept()) from None
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        code = 143 if isinstance(exc, _Terminated) else 130
        if Path(out_dir).is_dir():
            stopped = Interrupted(f"{what}: {kept()}", code)
        else:  # stopped while the inputs were checked: nothing to keep or resume
            stopped = Interrupted(f"{what} before anything was written to {out_dir}", code)
        _leave_now_if_threads_train(stopped.format_message(), stopped.exit_code)
        raise stopped from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _leave_now_if_threads_train(message: str, code: int) -> None:
    """Where populations train on in threads of this process (backend "threads"), tearing the
    interpreter down under them aborts ("terminate called without an active exception", exit
    134): what they finished is on disk (atomic writes) and the rest resumes from
    checkpoints, so say `message` and leave at once with `code`."""
    from calibration.runner import THREADS_TRAINING

    if not THREADS_TRAINING.is_set():
        return
    import os
    import sys

    click.echo(f"error: {message}", err=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _budget_options(f):
    f = click.option("--clear-of-runs", is_flag=True,
                     help="Where the fit's runs contradict the marked answer, mark the best "
                          "configuration clear of them, as recommend --clear-of-runs.")(f)
    f = click.option("--within-fitted", is_flag=True,
                     help="Search the marked recommendation inside the fitted utd and "
                          "critic-size ranges only, as recommend --within-fitted.")(f)
    f = click.option("--target", type=NUMBER,
                     help="Return the marked recommendation reaches, as recommend --target "
                          "(needs a budget option).")(f)
    f = click.option("--delta", type=NUMBER,
                     help="FLOPs per env step of the --total budget (default: the fit's), "
                          "as recommend --delta; the frontier's iso-total lines use it, and "
                          "one of them is that budget.")(f)
    f = click.option("--total", type=NUMBER,
                     help="Mark the recommendation for this total budget.")(f)
    f = click.option("--data", type=NUMBER, help="Mark the recommendation for this data budget.")(f)
    f = click.option("--compute", type=NUMBER,
                     help="Mark the recommendation for this compute budget.")(f)
    return f


def _maybe_budget(compute, data, total, delta=None, target=None, within_fitted=False,
                  clear_of_runs=False):
    if compute is None and data is None and total is None:
        for name, given in (("--delta", delta), ("--target", target),
                            ("--within-fitted", within_fitted or None),
                            ("--clear-of-runs", clear_of_runs or None)):
            if given is not None:
                raise click.UsageError(f"{name} applies to the marked recommendation: give a "
                                       "budget too (--compute, --data or --total)")
        return None
    from advisor.recommend import Budget

    if delta is not None and total is None:
        raise click.UsageError("--delta applies to --total")

    if total is not None and (compute is not None or data is not None):
        raise click.UsageError("give either --total or --compute and/or --data, not both kinds")
    return Budget(**{k: v for k, v in dict(compute=compute, data=data, total=total,
                                           delta=delta).items() if v is not None})


def _check_html(output: str) -> None:
    """The report is one HTML file: its name ends in .html (or it is a device: /dev/stdout)."""
    path = Path(output)
    if path.suffix.lower() not in (".html", ".htm") and not (
            path.exists() and not path.is_file() and not path.is_dir()):
        raise click.BadParameter(f"the report is HTML: give a file name ending in .html, got "
                                 f"{output!r}", param_hint="'-o'")


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _drawing_progress():
    """A line per figure on a terminal (a report takes 20 s to a minute); none in a pipe or a
    log, where the `wrote` line and the notes are the output."""
    if not _stderr_is_terminal():
        return None
    return lambda i, n, title: click.echo(f"drawing figure {i}/{n}: {title}", err=True)


def _report_module():
    _need_extra("plot", ("matplotlib",), "plots")
    from calibration import report

    return report


@click.command()
@click.argument("fit_id")
@click.option("--runs", type=click.Path(exists=True),
              help="Runs to plot the fit against: a zip or tar archive (.tgz too) or a "
                   "folder, in the published layout or an advisor calibrate out-dir's, or the "
                   "tidy CSV an `advisor fit` read (.csv).")
@click.option("-o", "--output", default="report.html", show_default=True,
              type=click.Path(dir_okay=False),
              help="The HTML file to write (one self-contained page, figures inside); it "
                   "replaces only an earlier report page.")
@_budget_options
def report(fit_id, runs, output, compute, data, total, delta, target, within_fitted,
           clear_of_runs):
    """Write a self-contained HTML report of a fit: laws against runs, parity, frontier, B~,
    TD overfitting, and the recommendation for a budget.

    \b
    Example:
      advisor report simbav2/h1-crawl-v0 \\
          --runs ../shared/data/simbav2_model_scaling_linear20_with_base.zip \\
          --compute 1e17 -o report.html
    """
    _check_html(output)
    rep = _report_module()
    rep.check_report_output(output)  # before the figures are drawn (a minute)
    budget = _maybe_budget(compute, data, total, delta, target, within_fitted, clear_of_runs)
    ctx = rep.load_context(fit_id, runs, budget, target=target, within_fitted=within_fitted,
                           clear_of_runs=clear_of_runs)
    _warn_foreign(ctx)
    missing: list[tuple[str, str]] = []
    path = rep.write_report(ctx, output, missing, _drawing_progress())
    for kind, why in missing:  # the page says so too; a reader of the terminal should know
        click.echo(f"note: the {kind} figure is not drawn: {why}", err=True)
    click.echo(f"wrote {path}", err=True)


def _warn_foreign(ctx, kind: str | None = None) -> None:
    """The foreign runs' warning, where a figure compares the fit with them (the report's,
    plot data and parity: not td, which draws the runs alone), and the note of configurations
    left out."""
    if ctx.foreign and ctx.table is not None and kind in (None, "data", "parity"):
        how = ("" if kind == "data" else
               " (parity: predicted by the fit as it is, nothing refitted)")
        click.echo(f"warning: {ctx.foreign}: the figures compare the fit with these runs{how}",
                   err=True)
    if ctx.left_out and kind in (None, "data", "parity"):
        click.echo(f"note: {ctx.left_out}", err=True)


@click.command()
@click.argument("kind", metavar="KIND",
                type=click.Choice(["data", "parity", "frontier", "batch", "td"]))
@click.argument("fit_id")
@click.option("--runs", type=click.Path(exists=True),
              help="Runs: a zip or tar archive (.tgz too) or a folder, in the published layout "
                   "or an advisor calibrate out-dir's, or a tidy CSV (.csv) (parity and td need "
                   "them).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="PNG, SVG or PDF to create.")
@_budget_options
def plot(kind, fit_id, runs, output, compute, data, total, delta, target, within_fitted,
         clear_of_runs):
    """Write one figure of the report for FIT_ID.

    \b
    KIND:
      data      data to reach a target against UTD and model size: the laws, with the
                runs' measurements where --runs is given
      parity    predicted against measured data to target, each config held out (--runs)
      frontier  the compute-optimal line and the data-compute frontier (a budget option
                marks its recommendation)
      batch     the best batch size B~ against UTD
      td        TD overfitting: late-training TD error against batch size (--runs with
                validation losses: side_critic.zip, SimbaV2, or this project's learner)

    \b
    Example (the fit's provenance names its archive; `advisor show FIT_ID` prints it):
      advisor plot parity bro/h1-crawl-v0 \\
          --runs ${ADVISOR_DATA_DIR:-../shared/data}/fitted_bs.zip -o parity.png
    """
    rep = _report_module()
    budget = _maybe_budget(compute, data, total, delta, target, within_fitted, clear_of_runs)
    ctx = rep.load_context(fit_id, runs, budget, target=target, within_fitted=within_fitted,
                           clear_of_runs=clear_of_runs)
    _warn_foreign(ctx, kind)
    if kind != "frontier" and budget is not None:
        click.echo(f"note: the {kind} figure draws no recommendation: a budget marks one on "
                   "the frontier figure only", err=True)
    if kind == "frontier" and ctx.rec is not None:  # what recommend would warn of, as it does
        for w in ctx.rec.warnings:
            click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {rep.save_figure(kind, ctx, output)}", err=True)


__all__ = ["AdvisorError", "calibrate", "fit", "plot", "recorded_command", "regenerate", "report",
           "tidy"]
