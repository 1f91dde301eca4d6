"""`advisor plan`: which configurations to run to calibrate a new task (calibration.design.plan).

`plan_command` is the whole command as a function; `plan` is the click command, meant to be
registered on the `advisor` group (`main.add_command(plan)`). numpy, scipy, pydantic, click only.
"""

from __future__ import annotations

import json
import shlex
import sys

import click

from advisor.cli import Steps
from advisor.errors import AdvisorError
from calibration.grid import MAX_STEPS, MAX_WIDTH, PRESETS

RUN_STEPS = Steps(maximum=MAX_STEPS)  # a grid's steps per run at most


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    items = text.split(",")
    if len(items) > 1 and not items[-1].strip():  # a trailing comma: 1,2,4,
        items = items[:-1]
    if any(not v.strip() for v in items):
        raise click.BadParameter(f"{what} has an empty item: {text!r}; give comma-separated "
                                 "numbers, e.g. 1,2,4")
    try:
        values = [float(v) for v in items]
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from None
    if len(values) < 2 or any(not 0 < v < float("inf") for v in values):
        raise click.BadParameter(f"{what} needs at least two positive finite values, got "
                                 f"{text!r}")
    if len(set(values)) != len(values):
        raise click.BadParameter(f"{what} repeats a value: {text!r}")
    return values


def _widths(text: str | None) -> list[int] | None:
    values = _floats(text, "--widths")
    if values is not None and any(v != int(v) for v in values):
        raise click.BadParameter(f"--widths are whole numbers of units, got {text!r}")
    if values is not None and max(values) > MAX_WIDTH:
        raise click.BadParameter(f"--widths may be at most {MAX_WIDTH:,} units, got {text!r}")
    return None if values is None else [int(v) for v in values]


def format_plan(p, fmt: str = "table") -> str:
    """The plan as a table (one run per line; its notes go to stderr) or JSON (`Plan.to_dict`,
    notes included)."""
    if fmt == "json":
        return json.dumps(p.to_dict(), indent=1)
    lines = [f"{p.k} runs: {p.design}"]
    if p.prior:
        lines.append(f"prior (family): {', '.join(p.prior)}")
    lines.append(f"{'utd':>6} {'width':>6} {'params':>12} {'batch_size':>12} {'steps':>9}  seeds")
    for r in p.runs:
        batch = str(r.batch_size) if r.batch_size else "B~ (stage 1)"
        lines.append(f"{r.utd:>6g} {r.width:>6d} {r.params:>12,d} {batch:>12} {r.steps:>9,d}  "
                     f"{','.join(map(str, r.seeds))}")
    g = p.base
    lines.append(f"stage 1 (B~): batch {g.batch_sizes} x utd {g.utds} at width {g.anchor_width}, "
                 f"and x width {g.widths} at utd {g.anchor_utd:g}")
    return "\n".join(lines)  # the notes: on stderr (plan_command), in the JSON's "notes"


def plan_command(runs: int, *, preset_name: str | None = "reduced", utds: str | None = None,
                 widths: str | None = None, prior: tuple[str, ...] = (),
                 input_dim: int | None = None, steps: int | None = None,
                 seeds: int | None = None, criterion: str = "D", batch_from_prior: bool = False,
                 output: str | None = None, fmt: str = "table", env_id: str | None = None) -> str:
    """Plan `runs` configurations, optionally write them as a grid JSON to `output`, and return
    the text to print. Raises AdvisorError subclasses for user mistakes."""
    # here, not at the top: `advisor --help` loads this module (scipy comes with the design)
    from calibration.design import check_plan_output, few_shot_prior, write_plan
    from calibration.design import plan as make_plan

    if output:  # before the design: a path that would destroy a file is refused at once
        check_plan_output(output)

    p = make_plan(runs, preset_name=preset_name, utds=_floats(utds, "--utds"),
                  widths=_widths(widths),
                  prior=list(prior) or None, input_dim=input_dim, steps=steps, seeds=seeds,
                  criterion=criterion, batch_from_prior=batch_from_prior)
    text = format_plan(p, fmt)
    if fmt == "table":  # note: lines on stderr, as every command's, so stdout stays the plan
        for n in p.notes:
            if output and n.startswith("advisor calibrate cannot run this plan"):
                continue  # write_plan refuses it below, in the same words
            click.echo(f"note: {n}", err=True)
    if output is not None and str(output) == "":
        raise click.BadParameter("the grid file path is empty: give a file name, e.g. -o "
                                 "grid.json")
    if output:
        path = write_plan(p, output)  # refuses a plan calibrate could not run (its note says why)
        priors = ("".join(f" --prior {shlex.quote(i)}" for i in prior)  # as given: dmc
                  if p.prior and few_shot_prior(p) else "")
        env = shlex.quote(env_id) if env_id else "ENV"
        wrote = (f"wrote {path}: advisor calibrate --env {env} --grid {shlex.quote(str(path))} "
                 f"--out-dir DIR{priors}")
        if fmt == "table":
            text += "\n" + wrote
        else:  # stdout stays one JSON document; the line goes to stderr
            click.echo(wrote, err=True)
    return text


def _env_input_dim(env_id: str, input_dim: int | None) -> int:
    """--env's obs + action size, checked as calibrate checks the env, or one line."""
    import importlib.util

    if input_dim is not None:
        raise click.UsageError("--env and --input-dim both set the input size: give one")
    if any(importlib.util.find_spec(m) is None for m in ("torch", "gymnasium")):
        raise click.UsageError("--env makes the env as calibrate does, which needs the "
                               "calibrate extra (pip install torch==2.13.0 '.[calibrate]'); "
                               "or give --input-dim N (obs + action sizes)")
    from calibration.calibrate import env_dims

    try:
        obs_dim, act_dim = env_dims(env_id)
    except AdvisorError as exc:
        raise click.BadParameter(str(exc), param_hint="--env") from None
    return obs_dim + act_dim


@click.command("plan")
@click.option("--runs", "runs", required=True, type=click.IntRange(min=1),
              help="Number of stage-2 (utd, width) configurations to run.")
@click.option("--preset", "preset_name",
              type=click.Choice(list(PRESETS)),  # every preset calibrate runs
              default="reduced", show_default=True,
              help="Candidate utd x width configurations (its stage-2 ones: the cpu "
                   "preset's include utd 8), stage 1, steps and seeds.")
@click.option("--utds", help="Candidate UTDs (updates per env step), comma-separated.")
@click.option("--widths", help="Candidate critic widths (units), comma-separated.")
@click.option("--prior", multiple=True, metavar="FIT_OR_FAMILY",
              help="Fit id or file of the task's family (repeat), or a family name (dmc); "
                   "plans for a few-shot fit.")
@click.option("--input-dim", type=click.IntRange(min=1),
              help="Critic input size (obs + action dims) for the parameter count.")
@click.option("--env", "env_id", metavar="ENV_ID",
              help="Count params at this Gymnasium env's input (obs + action), as calibrate "
                   "will; instead of --input-dim.")
@click.option("--steps", type=RUN_STEPS, help="Env steps per run (5000 or 5e3).")
@click.option("--seeds", type=click.IntRange(2, 1000),
              help="Seeds per configuration (2 at least: the fit bootstraps over seeds).")
@click.option("--criterion", type=click.Choice(["D", "I"]), default="D", show_default=True,
              help="D: most information on the law's coefficients; I: least mean prediction "
                   "variance over the candidate grid.")
@click.option("--batch-from-prior", is_flag=True,
              help="Write the prior's B~ into each configuration instead of stage 1's.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write a grid JSON for `advisor calibrate --grid`.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def plan(runs, preset_name, utds, widths, prior, input_dim, env_id, steps, seeds, criterion,
         batch_from_prior, output, fmt):
    """Plan a calibration: which (utd, width) configurations to run, with a family prior or not.

    \b
    Examples:
      advisor plan --runs 5 --preset reduced -o grid.json
      advisor calibrate --env HalfCheetah-v5 --grid grid.json --out-dir calib
      advisor plan --runs 3 --prior dmc --input-dim 261
      advisor plan --runs 6 --preset cpu --env Pendulum-v1
    """
    if env_id is not None:
        input_dim = _env_input_dim(env_id, input_dim)
    try:
        click.echo(plan_command(runs, preset_name=preset_name, utds=utds, widths=widths,
                                prior=prior, input_dim=input_dim, steps=steps, seeds=seeds,
                                criterion=criterion, batch_from_prior=batch_from_prior,
                                output=output, fmt=fmt, env_id=env_id))
    except AdvisorError as exc:  # the advisor group does the same; standalone use needs it too
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
