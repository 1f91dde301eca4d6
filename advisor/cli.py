"""`advisor`: a thin click shell over the Python API. Every user mistake exits 2 with one line.

The light commands live here. Commands that need the heavy side (`fit`, `regenerate`,
`calibrate`, `report`, `plot`, `plan`) live next to the code they drive (calibration/cli.py) and
join the group through the entry-point group `advisor.commands`, loaded only when called: this
package never imports `calibration`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import sys
import warnings
from typing import TYPE_CHECKING

import click

from advisor.errors import AdvisorError, printable, span
from advisor.integrations.critic import CRITICS

if TYPE_CHECKING:
    from importlib import metadata

FORMATS = ["table", "json", "yaml", "args", "zoo"]
CRITIC_CHOICES = list(CRITICS)
COMMANDS_GROUP = "advisor.commands"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Number(click.ParamType):
    """A float, as click's, that names an overflow: 1e400 is not silently inf."""

    name = "float"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if math.isinf(v) and "inf" not in str(value).lower():
            self.fail(f"{value} is beyond the largest float (about 1.8e308)", param, ctx)
        return v


NUMBER = _Number()


class Steps(click.ParamType):
    """Env steps, 1 or more: an integer, or a number that is one (5e3, as budgets are written)."""

    name = "integer"

    def __init__(self, maximum: int | None = None):
        self.maximum = maximum  # a run's steps at most (calibration.grid.MAX_STEPS)

    def convert(self, value, param, ctx):
        try:
            v = value if isinstance(value, int) else int(str(value))  # exact, however large
        except ValueError:
            number = NUMBER.convert(value, param, ctx)
            if not math.isfinite(number) or number != int(number):
                self.fail(f"{value!r} is not a whole number of env steps", param, ctx)
            v = int(number)
        if v < 1:
            self.fail(f"must be 1 env step or more, got {value!r}", param, ctx)
        if self.maximum is not None and v > self.maximum:
            self.fail(f"must be at most {self.maximum:.0e} env steps per run, got {value!r}",
                      param, ctx)
        return v


def fail(message: str, code: int = 2):
    """Print `error: message` on one line to stderr and exit (2: the user's mistake)."""
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(code)


def _plugin_commands() -> dict[str, metadata.EntryPoint]:
    from importlib import metadata  # here, not at the top: a Ctrl-C at start gives one line

    try:
        return {ep.name: ep for ep in metadata.entry_points(group=COMMANDS_GROUP)}
    except Exception:  # broken metadata of some installed package
        return {}


class _Group(click.Group):
    """Loads plugin commands lazily; turns every user mistake into one line and exit 2."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(_plugin_commands()))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        ep = _plugin_commands().get(name)
        if ep is None:
            return None
        try:
            return ep.load()
        except KeyboardInterrupt:  # while the heavy side imports: one line, not click's
            raise _Interrupt from None
        except Exception as exc:  # a broken plugin must not break the other commands
            click.echo(f"warning: command {name!r} from {ep.value} cannot be loaded: "
                       f"{_one_line(exc)}", err=True)
            return None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # before click's own handler prints an empty line
            raise _Interrupt from None

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # parsing the group's own options: the same
            return super().make_context(info_name, args, parent=parent, **extra)
        except KeyboardInterrupt:
            raise _Interrupt from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if sys.stdout is None:  # started with stdout closed (`>&-`): writes to it fail, -o works
            sys.stdout = _ClosedStdout()
        for stream in (sys.stdout, sys.stderr):  # a path or note the locale cannot encode
            try:  # (cp1252 on a Windows redirect, latin-1): escaped, not a traceback
                stream.reconfigure(errors="backslashreplace")
            except (AttributeError, ValueError, OSError):
                pass
        try:
            with warnings.catch_warnings(), _sigterm_as_one_line():
                warnings.simplefilter("ignore", ResourceWarning)
                warnings.showwarning = _show_warning
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _Terminated:  # `kill`, a cluster's time limit: outputs are written atomically
            fail("terminated", 143)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            sys.exit(2)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(exc.format_message() + hint)
        except click.Abort:  # click's Ctrl-C (or end of input) where it catches it first
            fail("interrupted", 130)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except AdvisorError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.errno is None:
                raise
            _silence_stdout()
            fail(f"cannot write output: {exc.strerror or exc}", 1)
        except (KeyboardInterrupt, _Interrupt):
            fail("interrupted", 130)
        if not standalone_mode:
            return rv
        _flush_or_fail()
        sys.exit(rv if isinstance(rv, int) else 0)


class _Interrupt(Exception):
    """Ctrl-C in a command that does not handle it itself: one `error: interrupted` line."""


class _Terminated(BaseException):
    """SIGTERM in a command that does not handle it itself (calibrate does: it says what it
    keeps): one `error: terminated` line, exit 143, as a shell reports it."""


@contextlib.contextmanager
def _sigterm_as_one_line():
    """SIGTERM raises _Terminated for the block (in the main thread; the handler before it is
    put back after)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (e.g. a broken third-party fit package) as one `warning:` line."""
    click.echo(f"warning: {_one_line(message)}", err=True)


class _ClosedStdout(io.TextIOBase):
    """sys.stdout when the process started without one: a write is the OSError that a closed
    pipe gives, so the command fails with one `cannot write output` line."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _silence_stdout() -> None:
    """After a failed write to stdout (closed pipe, full disk), point it at /dev/null so that the
    interpreter's final flush does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _flush_or_fail() -> None:
    try:
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        fail(f"cannot write output: {exc.strerror or exc}", 1)


def warn_lines(lines) -> None:
    """One `warning: ...` line per item on stderr, after whatever stdout holds so far."""
    sys.stdout.flush()
    for line in lines:
        click.echo(f"warning: {_one_line(line)}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="value-scaling-advisor")
def main() -> None:
    """Compute-optimal critic size, batch size and UTD for value-based deep RL.

    Budgets are FLOPs (--compute, --total) and environment steps (--data); fits are ids such as
    bro/h1-crawl-v0 (see `advisor fits`) or paths to fit files.

    \b
    Examples:
      advisor recommend --compute 1e17
      advisor recommend --fit bro/quadruped-run --data 5e5 --format args
      advisor recommend --fit bro/humanoid-stand --total 1e17 --delta 5e10
      advisor calibrate --env Hopper-v5 --preset smoke --out-dir calib   (calibrate extra)
    """


@main.command()
@click.option("--fit", "fit_id", default="bro/h1-crawl-v0", show_default=True,
              help="Fit id (see `advisor fits`) or path to a fit file.")
@click.option("--compute", type=NUMBER, help="Compute budget in FLOPs (e.g. 1e17).")
@click.option("--data", type=NUMBER, help="Data budget in environment steps (e.g. 5e5).")
@click.option("--total", type=NUMBER,
              help="Total budget in FLOPs of compute + delta * data (paper A, problem 2).")
@click.option("--delta", type=NUMBER,
              help="FLOPs charged per env step with --total (default: the fit's delta).")
@click.option("--target", type=NUMBER,
              help="Return to reach (default: the top fitted target for a single budget, the "
                   "highest reachable one for compute+data or total).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people; json or yaml for programs (the whole recommendation); zoo "
                   "for an rl-zoo hyperparameter file (--env); args for CleanRL's "
                   "sac_continuous_action.py flags.")
@click.option("--env", "env_id", metavar="ENV_ID",
              help="Gymnasium env id: the key of the rl-zoo file (--format zoo) or CleanRL's "
                   "--env-id (--format args). Default: the env of the fit's runs, for a fit "
                   "made by `advisor calibrate`, or by `advisor fit --env` of a CSV that says "
                   "its runs' critic (`advisor tidy` of rl-zoo runs); other fits need it for "
                   "--format zoo.")
@click.option("--critic", type=click.Choice(CRITIC_CHOICES), default=None,
              help="Critic of the rl-zoo file: bronet (the fit's BroNet, as "
                   "advisor.integrations.sb3_bronet.BroNetSACPolicy) or mlp (MlpPolicy, a plain "
                   "MLP of the same Dense layers); the file says how many params each leaves "
                   "out (for the BroNet fits: the quantile head, and LayerNorm for mlp). "
                   "Default: the fit's own critic: mlp for a fit of plain MLP runs (advisor "
                   "tidy, or a CSV's critic column), which then gets that MLP exactly; bronet "
                   "for every other fit.")
@click.option("--within-fitted", is_flag=True,
              help="Search only the fitted utd and params ranges (by default the search "
                   "reaches 4x beyond the fitted utds and 10x beyond the fitted sizes, "
                   "flagged as extrapolated).")
@click.option("--clear-of-runs", is_flag=True,
              help="Where the fit's runs contradict the answer for a fixed target (--data "
                   "or --compute alone, or any budget with --target: a warning says so and "
                   "names the alternative), answer with the best "
                   "configuration clear of every run short of the target (and of the fitted "
                   "step past each) instead: fewer runs that never reach the target, at more "
                   "cost (README, Choices). Exits 2 where none fits the budget, and with a "
                   "budget that asks for the highest target.")
@click.option("--utd", metavar="UTD",
              help="Fix the utd (e.g. 1, 0.5 or 3/2: gradient_steps/train_freq) and solve for "
                   "the rest: what a codebase that runs that utd should use.")
@click.option("--width", type=int, metavar="WIDTH",
              help="Fix the critic width and solve for the rest.")
@click.option("--level", type=NUMBER, default=0.8, show_default=True,
              help="Level of the prediction interval for the data a new run needs: 0.5 to "
                   "0.95, the levels a fit is calibrated at (its held-out coverage at each: "
                   "docs/intervals.md).")
def recommend(fit_id, compute, data, total, delta, target, fmt, env_id, critic, within_fitted,
              clear_of_runs, utd, width, level):
    """Recommend utd, critic width and batch size for a budget.

    \b
    --data D           least compute that reaches the target within D env steps
    --compute C        least data that reaches the target within C FLOPs
    --compute C --data D   highest target reachable within both
    --total F [--delta d]  highest target with C + d*D <= F

    \b
    Terms: target, a return the runs reach (within the fit's thresholds: `advisor show ID`);
    utd, gradient updates per env step; B~, the batch size the fit finds best at a utd and
    size; compute C, the updates' FLOPs counted at a reference batch of 256 (as the scaling
    law's paper counts them); delta d, FLOPs charged per env step for the environment (the
    fit's default where not given).

    The configuration printed is rounded (width to the fit's multiple, batch size to 16, utd to
    gradient_steps/train_freq) and chosen to stay within every budget given; its predictions
    and the interval for the data a new run needs are for that rounded configuration. The
    near-optimal line gives the utd and widths of configurations that need at most 10% more
    (data, compute or total) than the optimum: below what the laws resolve, so as good.

    \b
    Use it in an RL codebase:
      advisor recommend --data 5e5 --format zoo --env Humanoid-v5 > sac.yml
      python -m rl_zoo3.train --algo sac --env Humanoid-v5 -conf sac.yml
      python sac_continuous_action.py $(advisor recommend --data 5e5 --format args \\
          --env Humanoid-v4)
    table, args and zoo print the warnings (and what the codebase cannot express) on stderr.
    """
    from advisor.recommend import Budget
    from advisor.recommend import recommend as _recommend

    fit, defaulted = fit_id, None
    if fmt in ("zoo", "args") and env_id is None:
        from advisor.registry import load_fit

        fit = load_fit(fit_id)
        env_id = defaulted = fit.env_id  # said below the output, not before an error
    _check_client_options(fmt, env_id, critic)
    budget = Budget(**{k: v for k, v in dict(compute=compute, data=data, total=total,
                                             delta=delta).items() if v is not None})
    rec = _recommend(budget, fit=fit, target=target, within_fitted=within_fitted, utd=utd,
                     width=width, level=level, clear_of_runs=clear_of_runs)
    if fmt == "zoo":
        from advisor.integrations.critic import resolve_critic

        critic = resolve_critic(rec, critic, fit_id)  # the fit's own where not given
    text = format_recommendation(rec, fmt, env_id=env_id, critic=critic, fit=fit_id)
    click.echo(text)
    if defaulted is not None:
        _default_env(fit)
    if fmt in ("table", "args", "zoo"):
        warn_lines(rec.warnings)
    trained, input_dim = env_id, _input_dim(env_id)
    if fmt == "args" and env_id is None:  # CleanRL's script trains its own default env
        from advisor.integrations.cleanrl import CLEANRL_ENV, CLEANRL_ENV_INPUT_DIM

        trained = CLEANRL_ENV
        input_dim = _input_dim(trained) or CLEANRL_ENV_INPUT_DIM  # known without Gymnasium
        note_lines([f"no --env: CleanRL's script trains its own default --env-id, {trained} "
                    "(sac_continuous_action.py); give --env ENV_ID for another"])
    if fmt in ("args", "zoo"):
        note_lines([client_note(rec, fmt, critic=critic, fit=fit_id,
                                input_dim=input_dim), *_zoo_protocol(rec, fmt)])
    if trained is not None:
        note_lines(other_task_note(rec.fit, trained, "--env only names the env in the output"
                                   if env_id is not None else "CleanRL's default env"))


def other_task_note(fit_id: str, env_id: str, how: str = "--env only names the env in the "
                    "output") -> list[str]:
    """A note when --env (or the client's default env) names another task than the fit's: the
    env only keys the output."""
    import re

    def task(name: str) -> str:  # dm_control/cheetah-run-v0, pkg:cheetah-run, cheetah-run
        return re.sub(r"-v\d+$", "", name.split(":", 1)[-1].rsplit("/", 1)[-1]).lower()

    if task(fit_id) == task(env_id):
        return []
    from advisor.integrations.zoo import _gymnasium_probe

    problem = _gymnasium_probe(env_id)[0]
    unknown = problem is not None and "does not know env id" in problem[1]  # Gymnasium lacks it
    return [f"the numbers are {fit_id}'s, a fit of another task than {env_id} ({how}): "
            "they carry over as far as the tasks are alike; `advisor fits` lists the others"
            + ("" if unknown else f", `advisor calibrate --env {env_id}` makes one")]


def _write_all(files: dict) -> list:
    """Write every {path: text} atomically, or none: where one fails (a full disk), the files
    written before it get their old content back, or are removed where they were new."""
    from pathlib import Path

    from advisor.files import atomic_write_bytes, atomic_write_text

    done: list = []
    try:
        for path, text in files.items():
            try:
                old = Path(path).read_bytes() if Path(path).is_file() else None
            except OSError:
                old = None
            atomic_write_text(path, text)
            done.append((path, old))
    except BaseException:
        for path, old in reversed(done):
            try:
                if old is None:
                    Path(path).unlink(missing_ok=True)
                else:
                    atomic_write_bytes(path, old)
            except (OSError, AdvisorError):
                pass
        raise
    return [path for path, _ in done]


def _default_env(fit) -> str | None:
    """The env of a fit's runs (Fit.env_id), for a client output given no --env (with a note
    saying so); None for other fits (rl-zoo then needs --env, CleanRL trains its own default)."""
    if fit.env_id is not None:
        how = fit.model.provenance.command.split()[1]  # calibrate or fit (Fit.env_id)
        note_lines([f"no --env: the output is for {fit.env_id}, the env {fit.id}'s runs were "
                    f"on (advisor {how} --env); give --env ENV_ID for another"])
    return fit.env_id


def _check_client_options(fmt: str, env_id: str | None, critic: str | None) -> None:
    """--env and --critic only where a format uses them; --format zoo needs --env."""
    from advisor.integrations.zoo import check_env_actions, check_env_id

    if env_id is not None and fmt not in ("zoo", "args"):
        raise click.UsageError("--env applies to --format zoo and --format args")
    if critic is not None and fmt != "zoo":
        raise click.UsageError("--critic applies to --format zoo")
    if fmt == "zoo" or env_id is not None:
        check_env_actions(check_env_id(env_id))
    if fmt == "args" and env_id is not None and _dict_obs(env_id):
        raise click.UsageError(
            f"env {env_id} has Dict observations, which CleanRL's sac_continuous_action.py "
            "cannot read (it takes a Box): flatten them in the script "
            "(gymnasium.wrappers.FlattenObservation) or use --format zoo")


def _zoo_protocol(rec, fmt: str) -> list[str]:
    """The rl-zoo file's protocol note (learning_starts, buffer_size), for stderr too (CleanRL's
    is part of its client note)."""
    if fmt != "zoo":
        return []
    from advisor.integrations.sb3 import protocol_notes

    return protocol_notes(rec)


def note_lines(lines) -> None:
    for line in lines:
        click.echo(f"note: {_one_line(line)}", err=True)


def client_note(rec, fmt: str, *, critic: str | None = None, fit=None,
                input_dim: int | None = None) -> str:
    """What the client of `fmt` cannot express of `rec` (args: CleanRL; zoo: the critic), its
    critic counted at `input_dim` (the env's obs + action; default: the fit's)."""
    if fmt == "args":
        from advisor.integrations.cleanrl import cleanrl_note

        return cleanrl_note(rec, fit=fit, input_dim=input_dim)
    from advisor.integrations.critic import critic_match, resolve_critic

    return critic_match(rec, resolve_critic(rec, critic, fit), fit=fit,
                        input_dim=input_dim).note


def _input_dim(env_id: str | None) -> int | None:
    """The env's obs + action size where Gymnasium here makes it (zoo.env_input_dim)."""
    if env_id is None:
        return None
    from advisor.integrations.zoo import env_input_dim

    return env_input_dim(env_id)


def _dict_obs(env_id: str | None) -> bool:
    """Whether Gymnasium here makes the env with Dict observations (zoo.env_dict_observations)."""
    if env_id is None:
        return False
    from advisor.integrations.zoo import env_dict_observations

    return env_dict_observations(env_id)


def _json_safe(x):
    """x with every non-finite float as the string JSON readers accept ("Infinity", "-Infinity",
    "NaN", as the Recommendation model writes them): JSON has no bare infinity."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def format_recommendation(rec, fmt: str, *, env_id: str | None = None,
                          critic: str | None = None, fit=None) -> str:
    """The recommendation as text: table; json or yaml (every field, extrapolated and warnings
    included); zoo (an rl-zoo hyperparameter file for `env_id`, with `critic`, default the
    fit's own); args (CleanRL flags). `fit` (id, path or Fit) is the fit rec came from, for
    zoo."""
    if fmt == "json":
        return rec.model_dump_json(indent=2)
    if fmt == "yaml":
        from advisor.integrations import _yaml

        return "\n".join(_yaml.dump(rec.model_dump(mode="json")))
    if fmt == "args":
        import shlex

        from advisor.integrations.cleanrl import cleanrl_flags

        return " ".join(shlex.quote(f) for f in cleanrl_flags(rec, env_id))
    if fmt == "zoo":
        from advisor.integrations.zoo import zoo_yaml

        return zoo_yaml(rec, env_id, critic=critic, fit=fit,
                        input_dim=_input_dim(env_id),
                        multi_input=_dict_obs(env_id)).rstrip("\n")
    iv, one = rec.interval, rec.interval_single_seed
    opt = rec.optimum
    rows = [
        ("fit", rec.fit + (f"  (from {fit})" if isinstance(fit, (str, os.PathLike))
                            and str(fit).endswith(".json") else "")),
        ("problem", f"{rec.problem} ({_budget_text(rec.budget)})"),
        ("target (return)", f"{rec.target:.4g}"),
        ("utd", f"{rec.gradient_steps}/{rec.train_freq} = {rec.utd:.4g}  (gradient_steps / "
                f"train_freq; optimum {opt.utd:.3g})"),
        ("width", f"{rec.width}  ({rec.params:.4g} critic params; optimum {opt.params:.3g})"),
        ("batch_size", f"{rec.batch_size}  (B~ = {opt.batch_size:.1f} at the optimum)"),
        ("learning_rate", f"{rec.learning_rate:g}"),
        ("learning_starts", f"{rec.random_steps:,}  (random env steps first, as in the fit's runs)"
         if rec.random_steps is not None else "not recorded by the fit (its runs' random steps)"),
        ("predicted data", f"{rec.predicted_data:.4g} env steps"
         + (f"  [{100 * iv.level:g}% interval: {iv.low:.4g} - {iv.high:.4g}"
            + (f"; one seed: {one.low:.4g} - {one.high:.4g}" if one
               else "; none for one seed in this fit") + "]"
            if iv else "")),
        ("predicted compute", f"{rec.predicted_compute:.4g} FLOPs" + _real_batch_note(rec, fit)),
        ("predicted total", f"{rec.predicted_total:.4g} FLOPs (delta {rec.delta:.3g})"),
        ("within budget", "yes" if rec.within_budget else "NO (see warning)"),
        ("extrapolated", "yes" if rec.extrapolated else "no"),
    ]
    if rec.near_optimal is not None:
        rows.append(("near-optimal", rec.near_optimal.describe()))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _real_batch_note(rec, fit) -> str:
    """What the compute line counts where the batch size is not the reference one: paper A's
    count charges updates at a reference batch (256), whatever batch the runs use."""
    if fit is None:
        return ""
    from advisor.registry import load_fit

    f = load_fit(fit)
    ref = f.model.compute.reference_batch_size
    if f.model.compute.count_real_batch or rec.batch_size == ref:
        return ""
    return (f"  (paper A's count, updates at batch {ref:g}; at batch_size {rec.batch_size} "
            f"they spend about {rec.predicted_compute * rec.batch_size / ref:.3g})")


def _runs_line(m) -> list[str]:
    """`advisor show`'s line on the fitted configurations whose runs stopped short of the top
    target (recorded in domain.runs: `recommend` warns where they contradict an answer)."""
    runs, top = m.domain.runs, m.domain.target.high
    if not runs:
        return [f"runs:         not recorded (schema {m.schema_version}; 4 on records them): "
                "`recommend` cannot check its answers against them"]
    short = [r for r in runs if r.reached is None or r.reached < top]
    text = (f"runs:         {len(runs) - len(short)} of {len(runs)} configurations reached the "
            f"top target {top:.4g}")
    if short:
        text += "; short of it (the highest threshold their runs passed): " + ", ".join(
            f"utd {r.utd:g} params {r.params:.3g} ("
            + (f"passed {r.reached:.4g}" if r.reached is not None else "passed none")
            + f" in {r.horizon:.3g} steps)" for r in short[:4]) + (
            f", and {len(short) - 4} more" if len(short) > 4 else "")
    return [text]


def _budget_text(budget: dict) -> str:
    units = {"compute": "FLOPs", "data": "env steps", "total": "FLOPs", "delta": "FLOPs/step"}
    return ", ".join(f"{k} {v:.3g} {units.get(k, '')}".strip() for k, v in budget.items())


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def fits(fmt):
    """List the available fits: shipped ones and those other packages install.

    A fit file or package that cannot be read is reported in one warning line and skipped.

    \b
    Examples:
      advisor fits                   # id, targets, configs, LOCO error, coverage, source
      advisor fits --format json     # every listed field, for scripts"""
    from advisor.fitfile import failed_checks
    from advisor.registry import FitWarning, catalogue_problems, fit_sources, load_fit

    with warnings.catch_warnings():  # listed below with the other problems, once
        warnings.simplefilter("ignore", FitWarning)
        rows, problems = [], list(catalogue_problems())
    for fit_id, source in fit_sources().items():
        try:
            f = load_fit(fit_id)
        except AdvisorError as exc:
            problems.append(f"{fit_id} from {source} skipped: {exc}")
            continue
        g = f.model.goodness_of_fit
        pi = f.model.prediction_interval
        rows.append(dict(id=fit_id, source=source, target_min=f.target_min,
                         target_max=f.target_max, configs=g.n_configs,
                         loco_error=g.leave_one_config_out,
                         loglinear_error=g.baseline_loglinear_leave_one_config_out,
                         interval_coverage=None if pi is None else pi.coverage.get(
                             "leave_one_config_out"),
                         batch_size=f.model.batch_size.source,
                         failed_checks=failed_checks(f.model)))
    warn_lines(problems)
    if fmt == "json":
        click.echo(json.dumps(_json_safe(rows), indent=2, allow_nan=False))
        return
    head = ["id", "targets", "configs", "LOCO err", "log-lin", "80% cov", "B~", "checks",
            "source"]
    table = [head]
    for r in rows:
        base, cov = r["loglinear_error"], r["interval_coverage"]
        table.append([r["id"], span(r['target_min'], r['target_max'], ".4g"), str(r["configs"]),
                      f"{100 * r['loco_error']:.1f}%",
                      f"{100 * base:.1f}%" if base is not None else "-",
                      f"{100 * cov:.0f}%" if cov is not None else "-",
                      r["batch_size"], "FAILED: " + ", ".join(r["failed_checks"])
                      if r["failed_checks"] else "ok", r["source"]])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:  # id, checks and source left-aligned, numbers right-aligned
        cells = [c.ljust(w) if i in (0, len(head) - 2, len(head) - 1) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        click.echo("  ".join(cells).rstrip())
    click.echo("\nLOCO err: mean relative error of D_J on configs left out one at a time; "
               "log-lin: the same for a log-linear baseline; 80% cov: how often the 80% interval "
               "held on them; checks: those the fit failed when it was made (`advisor show ID` "
               "says how; `recommend` warns of them)")


@main.command()
@click.argument("fit_id")
def show(fit_id):
    """Describe one fit: provenance, domain, laws, goodness of fit and its prediction interval.

    \b
    Examples:
      advisor show bro/h1-crawl-v0
      advisor show calib/bro-torch-Hopper-v5.json   # a fit file by its path"""

    from advisor.registry import load_fit

    f = load_fit(fit_id)
    m = f.model
    g = m.goodness_of_fit
    bs = m.batch_size
    lines = [
        f"{m.id}  (fit version {m.fit_version}, schema {m.schema_version}, created {m.created})",
        f"source:       {m.provenance.source}",
        f"command:      {m.provenance.command}",
        f"method:       {m.provenance.method}",
    ]
    if m.provenance.prior is not None:
        pr = m.provenance.prior
        lines.append(f"prior:        {pr.family + ': ' if pr.family else ''}"
                     + ", ".join(p.id for p in pr.fits))
    lines += [
        f"domain:       utd {m.domain.utd.low:g}-{m.domain.utd.high:g}, params "
        f"{m.domain.params.low:.3g}-{m.domain.params.high:.3g}, target "
        f"{span(m.domain.target.low, m.domain.target.high)}"
        + (f", runs up to {m.domain.horizon:.4g} env steps" if m.domain.horizon else ""),
        *_runs_line(m),
        f"compute:      C = {m.compute.flops_per_param_sample:g} * "
        f"{m.compute.reference_batch_size:g}"
        f" * utd * params * data FLOPs; delta = {m.delta:.3g} FLOPs/env step",
        f"architecture: {m.architecture.description}; params(width) coefficients "
        f"{list(m.architecture.coefficients)}" + _mlp_reading(f),
        (f"batch size:   law ({bs.source}): a_B={bs.a_b:.4g} alpha_B={bs.alpha_b:.3g} "
         f"b_B={bs.b_b:.3g} beta_B={bs.beta_b:.3g}" if bs.kind == "law" else
         f"batch size:   fixed at {bs.a_b:g}, the batch size of every run"
         + ("" if bs.source == "fixed" else f" ({bs.source})"))
        + (f" (mean relative error {100 * bs.relative_error:.1f}%)"
           if bs.relative_error is not None else "")
        + ("; a run at another batch size: Fit.data_to_target(..., batch_size=B)"
           if bs.kind == "law" else ""),
        f"protocol:     learning rate {m.learning_rate:g}; "
        + (f"{m.random_steps:,} random env step{'s' * (m.random_steps != 1)} before learning "
           "(learning_starts)"
           if m.random_steps is not None else "random env steps before learning not recorded"),
        f"accuracy:     mean relative error of D_J: in-sample {100 * g.in_sample:.1f}%, "
        f"leave-one-config-out {100 * g.leave_one_config_out:.1f}% over {g.n_points} points, "
        f"{g.n_configs} configs",
        f"bootstrap:    {m.bootstrap.n_resamples} resamples of each config's "
        + ("seeds" if m.prediction_interval is not None
           and m.prediction_interval.seed_log_low is not None else "curves (see notes)")
        + ("" if len(m.bootstrap.draws) == m.bootstrap.n_resamples else
           f" ({len(m.bootstrap.draws)} refitted: the others reached too few thresholds)"),
        *_interval_lines(m),
        "D_J(utd, params) = d_min + (a/utd)^alpha + (b/params)^beta:",
        f"  {'target':>8} {'d_min':>10} {'a':>10} {'alpha':>7} {'b':>10} {'beta':>7}",
    ]
    for law in m.data_to_target.laws:
        lines.append(f"  {law.target:>8.4g} {law.d_min:>10.4g} {law.a:>10.4g} {law.alpha:>7.3f} "
                     f"{law.b:>10.4g} {law.beta:>7.3f}")
    lines += [f"note: {n}" for n in m.provenance.notes]
    click.echo("\n".join(printable(line) for line in lines))


def _interval_lines(m) -> list[str]:
    import numpy as np

    from advisor.recommend import LOW_COVERAGE

    pi = m.prediction_interval
    if pi is None:
        return ["interval:     none calibrated (schema 1): recommend falls back to the bootstrap "
                "spread, which understates run-to-run noise"]
    # As Fit.interval reads it: interpolated between the stored levels.
    low, high = (np.exp(np.interp(0.8, pi.levels, offsets)) for offsets in (pi.log_low,
                                                                           pi.log_high))
    cov = ", ".join(f"{k.replace('_', ' ')} {100 * v:.0f}%" for k, v in pi.coverage.items())
    one = ("" if pi.seed_log_low is None else "; for a single seed's run, {:.2f}x-{:.2f}x".format(
        *(np.exp(np.interp(0.8, pi.levels, o)) for o in (pi.seed_log_low, pi.seed_log_high))))
    head = ("the 80% interval at any target lies within" if pi.bands else
            "the 80% interval is")
    every = (" (each fifth of the targets: below)" if pi.bands else "")
    lines = [f"interval:     {head} {low:.2f}x-{high:.2f}x the predicted data inside the "
             f"fitted domain{every}, for runs averaged over as many seeds as the fit's (see "
             f"notes){one}",
             f"widening:     d log units beyond the fitted domain, the interval's log offsets "
             f"are scaled by 1 + {pi.widen_up:g} d above it and 1 + {pi.widen_down:g} d below",
             f"coverage:     of the 80% interval{' as applied (by target)' if pi.bands else ''}, "
             f"held out (a config, or a whole row or column; under "
             f"{100 * LOW_COVERAGE:.0f}% for a row or column, `recommend` warns there): {cov}"]
    if pi.bands:
        lines.append("  80% by target:")
    for band in pi.bands or []:
        lo, hi = pi.offsets(0.8, band.target_low)
        seed = pi.offsets(0.8, band.target_low, single_seed=True)
        lines.append(f"  targets {span(band.target_low, band.target_high, '.4g')}: "
                     f"{np.exp(lo):.2f}x-{np.exp(hi):.2f}x" + (
                         "" if seed is None else
                         f" (one seed {np.exp(seed[0]):.2f}x-{np.exp(seed[1]):.2f}x)"))
    return lines + [f"interval method: {pi.method}"]


@main.command()
@click.argument("fit_id")
@click.option("--budgets", default=None,
              help="Comma-separated budgets: FLOPs for --kind compute or total (default "
                   "1e15,1e16,1e17,1e18), env steps for --kind data (no default: e.g. --kind "
                   "data --budgets 2e5,5e5,1e6).")
@click.option("--kind", "budget_kind", type=click.Choice(["compute", "data", "total"]),
              default="compute", show_default=True, help="What the budgets are.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json", "zoo"]), default="yaml",
              show_default=True,
              help="yaml or json: one entry per budget; zoo: rl-zoo files (--env).")
@click.option("--env", "env_id", metavar="ENV_ID",
              help="Gymnasium env id, the key of the rl-zoo files (--format zoo). Default: "
                   "the env of the fit's runs, where it records one (as for recommend --env).")
@click.option("--critic", type=click.Choice(CRITIC_CHOICES), default=None,
              help="Critic of the rl-zoo files (--format zoo): bronet or mlp (default: the "
                   "fit's own, as for recommend --critic).")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False), default=None,
              help="--format zoo: write one rl-zoo file per budget into this folder.")
@click.option("--delta", type=NUMBER, default=None,
              help="FLOPs charged per env step with --kind total (default: the fit's delta).")
@click.option("--target", type=NUMBER, default=None,
              help="Return to reach, as recommend --target (default: the fit's headline "
                   "target; with --kind total the highest target each budget reaches).")
@click.option("--utd", metavar="UTD",
              help="Fix the utd for every budget, as recommend --utd (e.g. 1 or 3/2).")
@click.option("--width", type=int, metavar="WIDTH",
              help="Fix the critic width for every budget, as recommend --width.")
@click.option("--within-fitted", is_flag=True,
              help="Search only the fitted utd and critic-size ranges, as recommend "
                   "--within-fitted.")
@click.option("--clear-of-runs", is_flag=True,
              help="Where the fit's runs contradict an answer, the best configuration clear "
                   "of them instead, as recommend --clear-of-runs (--kind data or compute, or "
                   "with --target).")
@click.option("--level", type=NUMBER, default=0.8, show_default=True,
              help="Level of the prediction interval, as recommend --level (0.5 to 0.95).")
def export(fit_id, budgets, budget_kind, fmt, env_id, critic, out_dir, delta, target, utd,
           width, within_fitted, clear_of_runs, level):
    """Recommended hyperparameters for several budgets.

    \b
    yaml/json: one entry per budget with `hyperparameters` that Stable-Baselines3 takes as
      SAC(entry["policy"], env, **entry["hyperparameters"]) (a plain MLP critic: MlpPolicy),
      n_timesteps, utd, width, params, the predictions, extrapolated, warnings and `critic`
      (what that critic lacks of the fit's own) and `notes` (learning_starts where the fit
      does not record its runs' random steps; a run longer than SB3's 1e6-transition
      replay), each note also once on stderr, as are the entries that carry warnings
      (by key: `advisor recommend` prints them). Budgets the fit cannot meet carry `error`
      and a warning on stderr (none met: exit 2); a fit whose critic SB3 cannot build
      (SimbaV2) gives policy null, so that SAC fails rather than build another critic.
    zoo: rl-zoo files are keyed by env id, so each budget needs its own file: with one budget
      the file goes to stdout; with --out-dir DIR one file per budget, DIR/sac_ENV_KIND_VALUE.yml
      (replacing only files an export wrote: any other file of that name stops it, unwritten).

    \b
    Examples:
      advisor export bro/h1-crawl-v0 --budgets 1e16,1e17,1e18 > sac.yaml
      advisor export bro/h1-crawl-v0 --kind data --budgets 2e5,5e5 --format json
      advisor export bro/h1-crawl-v0 --budgets 1e16,1e17 --format zoo --env Humanoid-v5 -o zoo/
    """
    from advisor.errors import ExportError
    from advisor.integrations import _yaml
    from advisor.integrations.zoo import check_env_actions, check_env_id
    from advisor.recommend import Budget
    from advisor.recommend import recommend as _recommend
    from advisor.registry import load_fit

    if budgets is None:
        if budget_kind == "data":  # FLOPs read as env steps would be a silent nonsense
            raise click.UsageError("--kind data needs --budgets, in env steps (e.g. --budgets "
                                   "2e5,5e5,1e6): the default budgets are FLOPs")
        budgets = "1e15,1e16,1e17,1e18"
    values, loaded, defaulted = [], None, None
    # What the errors echo of the list: its start and end, not a 10 kB line.
    shown = repr(budgets if len(budgets) <= 80 else f"{budgets[:40]}...{budgets[-30:]}")
    for b in (f.strip() for f in budgets.split(",")) if budgets.strip() else ():
        if not b:  # 1e16,,1e17 or a trailing comma: a budget lost
            raise click.BadParameter(f"budgets must be comma-separated numbers with none empty, "
                                     f"got {shown}", param_hint="--budgets")
        try:
            v = float(b)
            what = "a positive finite number"  # 1,000 reads as 1 and 0: say which field
        except ValueError:
            v, what = math.nan, "a number"
        if not (math.isfinite(v) and v > 0):
            raise click.BadParameter(f"budget {b!r} is not {what} (budgets are separated by "
                                     f"commas, so write 1000 or 1e3, not 1,000), in {shown}",
                                     param_hint="--budgets")
        values.append(v)
    if not values:
        raise click.BadParameter("give at least one budget, e.g. 1e15,1e16",
                                 param_hint="--budgets")
    if len(set(values)) != len(values):
        raise click.BadParameter(f"budgets repeat a value: {shown}", param_hint="--budgets")
    if fmt != "zoo":
        for name, given in (("--env", env_id), ("--critic", critic), ("--out-dir", out_dir)):
            if given is not None:
                raise click.UsageError(f"{name} applies to --format zoo")
    else:
        if out_dir is None and len(values) > 1:
            raise click.UsageError(
                "rl-zoo files are keyed by env id, so each budget needs its own file: give one "
                "budget, or --out-dir DIR to write one file per budget")
        if env_id is None:  # said after the output, not before an error
            loaded = load_fit(fit_id)
            env_id = defaulted = loaded.env_id
        check_env_actions(check_env_id(env_id))
    if delta is not None and budget_kind != "total":
        raise click.UsageError("--delta applies to --kind total")
    extra = {"delta": delta} if delta is not None else {}
    budgets_ = [Budget(**{budget_kind: value}, **extra) for value in values]  # bad values fail

    fit = loaded or load_fit(fit_id)  # an unknown fit fails here, not once per row
    if target is not None:
        fit.check_target(target)  # a target outside the fit's range too: the same for every row
    pin = _pin_of(fit, utd, width, within_fitted)  # the same for every row: refused once
    if clear_of_runs:
        from advisor.errors import ConfigError

        if budget_kind == "total" and target is None:  # as recommend refuses it, once
            raise ConfigError("--clear-of-runs needs a fixed target: --kind total without "
                              "--target asks for the highest target each budget reaches; give "
                              "--target, or --kind data or compute")
        pin = {**pin, "clear_of_runs": True}
    if level != 0.8:  # recommend's default; a level the fit does not store: refused once
        d = fit.model.domain
        fit.interval(d.utd.low, d.params.low, level=level)
        pin = {**pin, "level": level}
    if fmt == "zoo":
        _export_zoo(fit, values, budgets_, budget_kind, env_id, critic, out_dir,
                    target, pin)
        if defaulted is not None:
            _default_env(fit)
        return
    rows, problems = [], []
    for value, budget in zip(values, budgets_):
        try:
            r = _recommend(budget, fit=fit, target=target, **pin)
        except AdvisorError as exc:
            rows.append({budget_kind: value, "error": str(exc)})
            problems.append(f"{budget_kind} {_exact(value)} skipped (its entry carries the error): "
                            f"{exc}")
            continue
        rows.append({budget_kind: value, **_export_entry(r, fit)})
    if len(problems) == len(rows):
        raise ExportError(f"no {budget_kind} budget in {', '.join(f'{v:g}' for v in values)} can "
                          f"be met on {fit.id}: {problems[0].split(': ', 1)[1]}")
    warn_lines(problems)
    sb3_error = next((row["critic"] for row in rows if row.get("policy", "") is None), None)
    if sb3_error is not None:
        warn_lines([f"SB3 cannot build {fit.id}'s critic, so the entries carry policy null: "
                    f"{sb3_error}"])
    if fmt == "json":
        click.echo(json.dumps(_json_safe({"fit": fit.id, "kind": budget_kind, "budgets": rows}),
                              indent=2, allow_nan=False))
    else:
        lines = [_yaml.comment(f"advisor export {fit.id}: one entry per {budget_kind} budget; "
                               "SAC(entry['policy'], env, **entry['hyperparameters'])")]
        for row in rows:
            lines.append(f"{_yaml.key(_entry_key(budget_kind, row[budget_kind]))}:")
            lines += _yaml.dump(row, indent=2)
        click.echo("\n".join(lines))
    # After the output, as recommend's: the last lines a terminal shows.
    notes = {n: None for row in rows for n in row.get("notes", [])}  # once each, in order
    note_lines([f"{n} (entry `notes`)" for n in notes])
    answered = [row for row in rows if "error" not in row]
    warned = [row for row in answered if row.get("warnings")]
    if warned:  # in the file only, they went unseen (a new user's: the 1e18 entry extrapolated)
        note_lines([f"{len(warned)} of {len(answered)} entries carry warnings (entry "
                    f"`warnings`; `advisor recommend --fit {fit.id}` with the budget and this "
                    "export's options prints them): " + ", ".join(
                        _entry_key(budget_kind, row[budget_kind])
                        + (" (extrapolated)" if row.get("extrapolated") else "")
                        for row in warned)])


def _mlp_reading(fit) -> str:
    """"; read as ..." for a fit of plain MLP runs (what the zoo export builds), else ""."""
    from advisor.integrations.critic import mlp_shape

    shape = mlp_shape(fit)
    return "" if shape is None else (f"; read as a {shape.describe()} (SB3's MlpPolicy: "
                                     "--format zoo builds it)")


def _exact(value: float) -> str:
    """A budget in 4 significant digits (10, not 1e+01) where they give it back, else as
    number_text writes it (two budgets' lines must not read alike: 1.23456789e16 and
    1.2345678901e16)."""
    from advisor.fit import number_text

    text = f"{value:.4g}"
    return text if float(text) == value else number_text(value)


def _entry_key(kind: str, value: float) -> str:
    """compute_1e16, data_5e5, compute_1.5e16: the shortest text that reads back as `value`."""
    from advisor.fit import number_text

    text = number_text(value)
    mantissa, e, exponent = text.partition("e")
    short = f"{mantissa}{e}{int(exponent) if e else ''}"
    plain = repr(value).removesuffix(".0")
    return f"{kind}_{plain if len(plain) <= len(short) else short}"


def _export_entry(rec, fit) -> dict:
    """One export entry: SB3 hyperparameters (MlpPolicy), then what the advisor predicts."""
    from advisor.integrations.critic import critic_match
    from advisor.integrations.sb3 import protocol_notes, sac_kwargs, total_timesteps

    try:
        hyper, critic = sac_kwargs(rec, fit=fit), critic_match(rec, "mlp", fit=fit).note
    except AdvisorError as exc:  # a critic SB3 cannot build: leave it to the user
        hyper = dict(batch_size=rec.batch_size, learning_rate=rec.learning_rate,
                     train_freq=rec.train_freq, gradient_steps=rec.gradient_steps)
        critic, policy = str(exc), None  # SAC(None, ...) fails: no default critic in its place
    else:
        policy = "MlpPolicy"
    iv, one = rec.interval, rec.interval_single_seed
    return {"policy": policy, "hyperparameters": hyper,
            "n_timesteps": total_timesteps(rec), "utd": rec.utd, "width": rec.width,
            "params": rec.params, "target": rec.target, "predicted_data": rec.predicted_data,
            "predicted_compute": rec.predicted_compute,
            "predicted_total": rec.predicted_total, "delta": rec.delta,
            "interval": None if iv is None else iv.model_dump(),
            "interval_single_seed": None if one is None else one.model_dump(),
            "within_budget": rec.within_budget, "extrapolated": rec.extrapolated,
            "near_optimal": None if rec.near_optimal is None else rec.near_optimal.model_dump(),
            "warnings": list(rec.warnings), "critic": critic,
            "notes": protocol_notes(rec)}


def _pin_of(fit, utd, width, within_fitted: bool = False) -> dict:
    """recommend's utd=, width= and within_fitted= keywords, checked against `fit` once."""
    from advisor.recommend import Pin, utd_fraction

    pin = {k: v for k, v in dict(utd=utd, width=width).items() if v is not None}
    if pin:
        fraction = None if utd is None else utd_fraction(utd)
        Pin(fraction=fraction, width=width).box(
            fit, fit.trusted_box(within_fitted),
            "fitted range" if within_fitted else "trusted range")
    return {**pin, **({"within_fitted": True} if within_fitted else {})}


def _export_zoo(fit, values, budgets_, kind, env_id, critic, out_dir, target=None,
                pin: dict | None = None) -> None:
    from pathlib import Path

    from advisor.errors import ExportError
    from advisor.files import check_replaceable
    from advisor.integrations.critic import bronet_shape, critic_match, default_critic, mlp_shape
    from advisor.integrations.zoo import zoo_yaml
    from advisor.recommend import recommend as _recommend

    critic = critic or default_critic(fit)  # the fit's own where not given
    if critic == "bronet" or mlp_shape(fit) is None:
        bronet_shape(fit)  # a critic rl-zoo cannot build fails before any file is written
    if out_dir is None:  # exactly one budget (checked): the file to stdout
        rec = _recommend(budgets_[0], fit=fit, target=target, **(pin or {}))
        click.echo(zoo_yaml(rec, env_id, critic=critic, fit=fit, input_dim=_input_dim(env_id),
                            multi_input=_dict_obs(env_id)).rstrip("\n"))
        warn_lines(rec.warnings)
        note_lines([critic_match(rec, critic, fit=fit, input_dim=_input_dim(env_id)).note,
                    *_zoo_protocol(rec, "zoo"), *other_task_note(fit.id, env_id)])
        return
    from advisor.integrations.zoo import split_module

    slug = split_module(env_id)[1].replace("/", "_")  # the file's key; no ':' in file names
    files, problems = {}, []
    shared_notes: dict[str, None] = {}  # each note once, in order
    for value, budget in zip(values, budgets_):
        try:
            rec = _recommend(budget, fit=fit, target=target, **(pin or {}))
        except AdvisorError as exc:
            problems.append(f"{kind} {_exact(value)} skipped: {exc}")
            continue
        path = Path(out_dir) / f"sac_{slug}_{_entry_key(kind, value)}.yml"
        files[path] = zoo_yaml(rec, env_id, critic=critic, fit=fit, input_dim=_input_dim(env_id),
                               multi_input=_dict_obs(env_id))
        # as with one budget: each file's warnings on stderr, named by its budget
        problems += [f"{kind} {_exact(value)}: {w}" for w in rec.warnings]
        notes = [critic_match(rec, critic, fit=fit, input_dim=_input_dim(env_id)).note,
                 *_zoo_protocol(rec, "zoo")]
        shared_notes.update(dict.fromkeys(n for n in notes if n))
    for path in files:  # before any file is written
        check_replaceable(path, b"# advisor: SAC on ", "an rl-zoo file advisor export wrote",
                          f"-o {out_dir}")
    written = _write_all(files)
    warn_lines(problems)
    note_lines([*shared_notes, *other_task_note(fit.id, env_id)])
    if not written:
        raise ExportError(f"no {kind} budget in {', '.join(f'{v:g}' for v in values)} can be "
                          f"met on {fit.id}; no file written")
    for path in written:
        click.echo(str(path))


@main.command()
@click.argument("fit")
def validate(fit):
    """Check a fit file (a path, or the id of a shipped or installed fit): JSON, schema, version,
    meaning (laws finite over the trusted range) and content hash.

    \b
    Examples:
      advisor validate mine-cheetah.json      # exit 0 and "ok", or exit 2 and what is wrong
      advisor validate bro/h1-crawl-v0"""
    from advisor.fitfile import read_fit_file
    from advisor.registry import fit_path, load_fit

    path = fit_path(fit)
    model = read_fit_file(path)
    load_fit(fit)  # an id's file must hold that id; the laws must mean something
    click.echo(f"ok: {path} is a valid fit file for {model.id} (schema {model.schema_version}, "
               f"{model.content_hash[:19]}...)")


@main.command()
def schema():
    """Print the JSON Schema of fit files (generated from the pydantic model).

    \b
    Example:
      advisor schema > fit.schema.json   # for an editor or a JSON Schema validator"""
    from advisor.fitfile import FitFile

    click.echo(json.dumps(FitFile.model_json_schema(), indent=2))


if __name__ == "__main__":
    main()
