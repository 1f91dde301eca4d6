"""Run archives -> fit files. One function a fit: `build_fit`; `regenerate` does every shipped
fit (calibration.catalogue); `make_fit_file` assembles a fit file from a data-to-target table."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

import advisor
from advisor.errors import AdvisorError, one_line, span
from advisor.fitfile import (
    CSV_CRITIC,
    PARAMS_REACH,
    Architecture,
    BatchSizeLaw,
    Bootstrap,
    ComputeDefinition,
    DataLaw,
    DataToTarget,
    Domain,
    FitFile,
    FittedRun,
    GoodnessOfFit,
    PositiveRange,
    Provenance,
    Range,
    fit_id_ok,
    write_fit_file,
)
from calibration.architectures import (
    bronet_architecture,
    bronet_params_coefficients,
    simbav2_coefficients,
)
from calibration.archives import nearest_batch_runs, read_runs
from calibration.batch import (
    best_batch_sizes,
    fit_batch_law,
    published_batch_note,
    runs_batch_law,
    tables_by_batch,
)
from calibration.catalogue import (
    DELTA,
    DMC_DELTA,
    INPUT_DIM,
    INPUT_DIM_NOTES,
    PUBLISHED_BATCH,
    RANDOM_STEPS,
    TARGET_RANGES,
    catalogue,
)
from calibration.curves import DataTable, curve_crossings, data_table, seed_mean, thresholds
from calibration.fitting import (
    LawFit,
    Method,
    bootstrap_fits,
    bootstrap_progress,
    fit_laws,
    leave_one_config_out,
    loglinear_leave_one_config_out,
    relative_errors,
)
from calibration.intervals import calibrate_interval

#: The D_J method shipped fits use; chosen by leave-one-config-out error (README, "Accuracy").
DEFAULT_METHOD = Method(shared_exponents=True, smoothness=0.1, censored=True, weighted=False)
N_BOOT = 100
#: How `advisor fit` ends the error of runs that did not learn (it cannot train longer).
FIT_REMEDY = ("fit runs that learn (longer ones?), or give thresholds of your own: "
              "--target-range J_MIN J_MAX")
BOOT_SEED = 0
LEARNING_RATE = 3e-4


class BuildError(AdvisorError):
    """Runs that cannot make a fit (unknown env settings, nothing reached a threshold)."""


def _sha256(path: Path) -> str:
    """sha256 of an archive file; of a folder of runs, over its .npy files' relative names and
    contents in name order."""
    h = hashlib.sha256()
    path = Path(path)
    files = sorted(path.rglob("*.npy")) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _round_sig(x: np.ndarray, sig: int = 6) -> list:
    return np.vectorize(lambda v: float(f"{v:.{sig}g}"), otypes=[float])(x).tolist()


@dataclass
class Built:
    """A built fit with what went into it (for reports and tests)."""

    fit: FitFile
    table: DataTable
    laws: LawFit
    loco: np.ndarray


def check_low_target(runs: list, targets) -> None:
    """Refuse thresholds (a user's --target-range) whose lowest every run's mean return holds
    at its first evaluation: D_J there is each run's first evaluation step, the same whatever
    the utd or critic, and a law fitted to it is meaningless (it fitted with 0% error and a
    zero-width interval)."""
    starts, at_first = [], []
    for run in runs:
        steps, mean = run.steps["return"], seed_mean(run.values["return"])
        finite = np.flatnonzero(np.isfinite(mean))
        if len(finite):  # as D_J is read: the first crossing of the isotonic curve
            starts.append(float(mean[finite[0]]))
            at_first.append(curve_crossings(steps, mean, targets[:1])[0] == steps[finite[0]])
    if at_first and all(at_first):
        raise BuildError(f"the lowest threshold {targets[0]:.4g} of --target-range is reached "
                         f"by every run at its first evaluation (first mean returns "
                         f"{min(starts):.4g} to {max(starts):.4g}): the data to reach it says "
                         f"nothing about utd or critic size; start the range above the runs' "
                         f"median first return, {float(np.median(starts)):.4g}")


def check_high_target(runs: list, targets) -> None:
    """Refuse thresholds (a user's --target-range) above every run's best mean return: the
    law would be fitted to thresholds no run reached, and recommend targets no run saw. The
    mean is D_J's: seeds that stopped carried forward (calibration.curves)."""
    from calibration.curves import _forward_fill

    best = [float(np.nanmax(m)) for m in (seed_mean(_forward_fill(r.values["return"]))
                                          for r in runs) if np.isfinite(m).any()]
    if best and targets[-1] > max(best):
        raise BuildError(f"the highest threshold {targets[-1]:.4g} of --target-range is above "
                         f"every run's best mean return (at most {max(best):.4g}): no run "
                         f"reaches it; end the range at or below {max(best):.4g}")


def build_fit(
    archive: str | Path, algorithm: str, env: str, *, method: Method = DEFAULT_METHOD,
    n_boot: int = N_BOOT, seed: int = BOOT_SEED, created: str | None = None,
    command: str | None = None, target_range: tuple[float, float] | None = None,
    delta: float | None = None, input_dim: int | None = None, name: str | None = None,
    prior=None, random_steps: int | None = None, round_steps: float | None = None,
) -> Built:
    """Read `archive`, compute the data-to-target table of `env`, fit the laws, return the fit.

    `name`: the env part of the fit id (default `env`, the archive's name for the task).
    `random_steps`: the runs' random env steps before learning (default: the archive's, where
    the catalogue knows it: RANDOM_STEPS), recorded for clients' learning_starts.
    `prior`: a calibration.prior.Prior (or the list of --prior specs) for a few-shot fit.
    `round_steps`: a tidy CSV's steps are rounded to multiples of it (calibration.tidy)."""
    archive = Path(archive)
    notes: list[str] = []
    fit_env = name or env
    if not fit_id_ok(f"{algorithm}/{fit_env}"):
        raise BuildError(f"fit id {algorithm}/{fit_env!s} is not usable: algorithm and env may "
                         "hold letters, digits, '.', '_' and '-' only, with a letter or digit in "
                         "each (at most 100 each)")
    if prior is not None and not hasattr(prior, "fits"):
        from calibration.prior import resolve_prior

        prior = resolve_prior(prior, data_dirs=[archive.parent],
                              own_id=f"{algorithm}/{fit_env}")
    if archive.suffix.lower() == ".csv":
        return _build_from_csv(archive, algorithm, env, method=method, n_boot=n_boot, seed=seed,
                               created=created, command=command, target_range=target_range,
                               delta=delta, input_dim=input_dim, name=name, prior=prior,
                               random_steps=random_steps, round_steps=round_steps)
    if round_steps is not None:
        raise BuildError(f"--round-steps applies to a tidy CSV (a .csv file), not to "
                         f"{archive.name}")
    runs = read_runs(archive, env=env)  # refuses what is not an archive (a FIFO) unread
    if random_steps is None:
        random_steps = RANDOM_STEPS.get(_sha256(archive))
    layout = runs[0].layout
    if name and name != env:
        notes.append(f"runs of env {env!r} in {archive.name}")
    j_range = target_range or TARGET_RANGES.get(env)
    if j_range is None:
        from calibration.calibrate import SATURATED_TOP, choose_targets

        targets = choose_targets(runs, remedy=FIT_REMEDY)
        notes.append(f"thresholds {span(targets[0], targets[-1], '.4g')} chosen from the data "
                     "(no published return range): the top one is the 30th percentile over "
                     "configurations of the best isotonic mean return (where returns saturate, "
                     f"{100 * SATURATED_TOP:g}% of the way from the median start to the "
                     "ceiling), the bottom one 40% of the way from the median starting return "
                     "to it (calibration.calibrate.choose_targets)")
    else:
        targets = thresholds(*j_range)
        if target_range:
            check_low_target(runs, targets)
            check_high_target(runs, targets)
    batch_relerr = None
    batch_sizes: list[int] | None = None  # those the runs used, where B~ is fitted to them
    reach_tables: list[DataTable] = []  # the configs' runs at other batch sizes

    if layout == "simbav2":
        tables = tables_by_batch(runs, targets, n_boot, seed)
        utd, params, best = best_batch_sizes(tables)
        coef_b, batch_relerr = fit_batch_law(utd, params, best)
        batch = BatchSizeLaw(kind="law", source="fitted", a_b=coef_b[0], alpha_b=coef_b[1],
                             b_b=coef_b[2], beta_b=coef_b[3], relative_error=batch_relerr)
        # D_J at each config from the run whose batch is nearest the fitted B~ (in log).
        picked = nearest_batch_runs(runs, lambda u, n: advisor.laws.batch_size(u, n, *coef_b))
        table = data_table(picked, targets, n_boot, seed)
        reach_tables = list(tables.values())
        arch = Architecture(description="SimbaV2 critic (parameter counts per width as "
                                        "published with its runs)",
                            coefficients=simbav2_coefficients(), width_multiple=64)
        notes.append("D_J per config uses the grid batch size nearest the fitted B~.")
    else:
        if layout == "bro":
            runs = [r for r in runs if r.tags.get("passive_critic", "False") == "False"]
            if not runs:
                raise BuildError(f"{archive} holds only runs with a passive critic for {env!r}; "
                                 "D_J needs runs without one")
        table = data_table(runs, targets, n_boot, seed)
        used = sorted({r.batch_size for r in runs})
        if layout == "dmc" or len(used) == 1:
            batch = BatchSizeLaw(kind="fixed", source="fixed", a_b=float(used[0]))
            notes.append(f"All runs used batch size {used[0]:g}; the fit recommends it "
                         "and cannot say whether another is better"
                         + (" (paper A's published B~ is not used: D_J was measured at this "
                            "batch size)." if env in PUBLISHED_BATCH else "."))
        else:
            try:
                ran = runs_batch_law(runs)
            except ValueError as exc:
                raise BuildError(str(exc)) from None
            if ran is None:  # several batch sizes at some (utd, params): no law to read off
                raise BuildError(f"no batch-size law for {env!r}: its runs use batch sizes "
                                 f"{', '.join(f'{b:g}' for b in used[:6])}"
                                 f"{', ...' if len(used) > 6 else ''}, several at some (utd, "
                                 "params); B~ needs one batch size for every run, or one per "
                                 "(utd, params) (each config at its own best batch)")
            batch, note = ran
            notes.append(note)
            if env in PUBLISHED_BATCH:
                notes.append(published_batch_note(runs, PUBLISHED_BATCH[env]))
            batch_sizes = [int(b) for b in used]
        known = INPUT_DIM.get(env)
        if input_dim is not None and known is not None and input_dim != known:
            if env not in INPUT_DIM_NOTES:  # read off a published table: not a guess to override
                raise BuildError(f"env {env!r} has a critic input of {known} (observations + "
                                 f"actions), not {input_dim}; --input-dim is for envs not in "
                                 "the catalogue")
            notes.append(f"critic input {input_dim} given for this fit (the catalogue's is "
                         f"{known})")
        dim = input_dim or known
        if dim is None:
            raise BuildError(f"no critic input size known for env {env!r}; pass input_dim")
        if input_dim is None and env in INPUT_DIM_NOTES:
            notes.append(INPUT_DIM_NOTES[env])
        arch = bronet_architecture(dim)
        if layout == "dmc":
            notes.append("The DMC runs varied depth as well as width; widths are for the 2-block "
                         "BroNet critic with this task's input size.")

    return _finish(table, archive, algorithm, env, fit_env, batch=batch, arch=arch,
                   fit_delta=delta or DELTA.get(env, DMC_DELTA if layout == "dmc" else 1e11),
                   notes=notes, method=method, n_boot=n_boot, seed=seed, created=created,
                   command=command, target_range=target_range, delta=delta,
                   input_dim=input_dim, name=name, prior=prior, random_steps=random_steps,
                   batch_sizes=batch_sizes, reach_tables=reach_tables)


def _finish(table: DataTable, archive: Path, algorithm: str, env: str, fit_env: str, *,
            batch: BatchSizeLaw, arch: Architecture, fit_delta: float, notes: list[str],
            method: Method, n_boot: int, seed: int, created: str | None, command: str | None,
            target_range, delta, input_dim, name, prior, random_steps,
            batch_sizes: list[int] | None = None, round_steps: float | None = None,
            reach_tables: list[DataTable] = ()) -> Built:
    """The fit file of `table`, with the provenance of `archive` and of the command
    (`batch_sizes`: those the runs used, for the B~ range check; `reach_tables`: the D_J of
    the configs' runs at their other batch sizes, for domain.runs)."""
    fit, laws, loco = make_fit_file(
        table, fit_id=f"{algorithm}/{fit_env}", batch=batch, arch=arch, delta=fit_delta,
        provenance=Provenance(
            source=f"{archive.name} (sha256 {_sha256(archive)})",
            command=command or fit_command(archive, algorithm, env, f"{algorithm}-{fit_env}.json",
                                           n_boot, created, target_range, delta, input_dim,
                                           name, _prior_specs(prior), random_steps,
                                           round_steps),
            project_version=advisor.__version__, method=method.describe(), notes=notes),
        method=method, n_boot=n_boot, seed=seed, created=created, prior=prior,
        random_steps=random_steps, batch_sizes=batch_sizes, reach_tables=reach_tables)
    return Built(fit, table, laws, loco)


def _prior_specs(prior) -> tuple[str, ...]:
    if prior is None:
        return ()
    return (prior.family,) if prior.family else tuple(prior.ids)


def csv_architecture(runs: list, name: str) -> Architecture:
    """params(width) of a CSV's own critic, from its (width, params) pairs: a quadratic (linear
    for one hidden layer), with integer coefficients where those give every pair exactly (a
    count of parameters); what its `critic` column says the critic is (tidy.CRITIC_KINDS) is
    checked and recorded in the description, for the exports to build it."""
    from advisor.fitfile import CSV_BRONET, CSV_MLP, MAX_WIDTH
    from advisor.integrations.critic import (
        MLP_MOST_LAYERS,
        MLP_MOST_QNETS,
        bronet_of,
        mlp_of,
        poly_text,
    )
    from calibration.tidy import CsvError

    pairs = sorted({(r.width, r.params) for r in runs if r.width is not None})
    w, n = np.array(pairs, dtype=float).T
    coef = _whole_polynomial(pairs)
    if coef is None:  # not counts of a whole polynomial: least squares
        coef = np.polyfit(w, n, 2)
        if abs(coef[0]) * w[-1] ** 2 <= 1e-9 * n[-1]:  # linear (one hidden layer): its sign
            coef = np.polyfit(w, n, 1)  # is rounding's, and a schema error when negative
    grid = np.geomspace(1.0, MAX_WIDTH, 400)
    if not (coef[0] > 0 and np.all(np.diff(np.polyval(coef, grid)) > 0)):
        raise CsvError(f"{name}: params do not grow with width as a critic's do (params(width) "
                       f"fitted to the width and params columns: {poly_text(coef)}); check "
                       "the params column (the critic's parameters, all its Q-nets)")
    kinds = {r.tags.get("critic", "") for r in runs}
    if len(kinds) > 1:
        raise CsvError(f"{name}: the critic column names "
                       f"{' and '.join(repr(k) if k else 'no critic' for k in sorted(kinds))} "
                       "for one env's runs, and a fit learns one critic's params(width): give "
                       "every row of the env the same critic (or none)")
    kind = kinds.pop()
    coefficients = [float(c) for c in coef]
    read = {"mlp": (mlp_of, CSV_MLP, f"a plain MLP the export builds (n <= {MLP_MOST_QNETS} "
                    f"Q-nets of L <= {MLP_MOST_LAYERS} hidden layers on d inputs: "
                    "n(L-1)w^2 + n(d+L+1)w + n)"),
            "bronet": (bronet_of, CSV_BRONET, "the SB3 BroNetSACPolicy the export builds "
                       "(n_critics 2, critic_blocks 1 or more, a scalar head)")}.get(kind)
    description = CSV_CRITIC
    if read is not None:
        reader, description, what = read
        if reader(coefficients) is None:
            raise CsvError(f"{name}: the critic column says {kind}, but params(width) = "
                           f"{poly_text(coef)} (fitted to the width and params columns) is not "
                           f"{what}; check the params column, or leave the critic column empty "
                           "(the fit then learns the runs' own critic, which no export builds)")
        description += " (its critic column)"
    return Architecture(description=f"{description}: params(width) fitted to its width and "
                        "params columns", coefficients=coefficients,
                        width_multiple=16 if w[-1] < 256 else 64)


def _whole_polynomial(pairs) -> np.ndarray | None:
    """The quadratic (or, with no square term, linear) polynomial with integer coefficients
    through every (width, params) pair exactly, solved in exact fractions from the first three
    (least squares in floats loses the constant term at widths of 10^5); None where there is
    none (params not whole, or not such a polynomial)."""
    from fractions import Fraction

    try:
        (x0, y0), (x1, y1), (x2, y2) = [(Fraction(x), Fraction(y)) for x, y in pairs[:3]]
    except (ValueError, OverflowError):  # fewer than 3, or not finite
        return None
    d01, d12 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)  # divided differences
    a = (d12 - d01) / (x2 - x0)
    b = d01 - a * (x0 + x1)
    c = y0 - a * x0 * x0 - b * x0
    if any(v.denominator != 1 for v in (a, b, c)):
        return None
    a, b, c = int(a), int(b), int(c)
    if any(a * x * x + b * x + c != y for x, y in pairs):  # exact, in integers
        return None
    return np.array([a, b, c] if a else [b, c], dtype=float)


def _build_from_csv(archive: Path, algorithm: str, env: str, *, method: Method, n_boot: int,
                    seed: int, created: str | None, command: str | None,
                    target_range: tuple[float, float] | None, delta: float | None,
                    input_dim: int | None, name: str | None = None, prior=None,
                    random_steps: int | None = None, round_steps: float | None = None) -> Built:
    """A fit from a tidy CSV of any codebase's runs (calibration.tidy)."""
    from calibration.calibrate import choose_targets
    from calibration.tidy import MIN_CSV_WIDTHS, CsvError, read_csv_runs

    params_of = None
    if input_dim is not None:
        coef = bronet_params_coefficients(input_dim)
        params_of = lambda w: np.polyval(coef, w)  # noqa: E731
    runs = read_csv_runs(archive, env=env, params_of=params_of, round_steps=round_steps)
    notes = [f"runs from the tidy CSV {archive.name}"]
    pairs = {(r.width, r.params) for r in runs if r.width is not None}
    widths = sorted({w for w, _ in pairs})
    said = sorted({r.tags["critic"] for r in runs if "critic" in r.tags})  # the critic column
    if said and (input_dim is not None or not (len(widths) >= MIN_CSV_WIDTHS
                                               and len(pairs) == len(widths))):
        raise CsvError(
            f"{archive.name}: the critic column says {' and '.join(said)}, which a fit records "
            "only where it learns that critic's params(width) from width and params columns at "
            f"{MIN_CSV_WIDTHS} or more widths, without --input-dim (which counts widths as "
            "this project's BroNet, 100 quantiles): "
            + ("drop --input-dim" if input_dim is not None and len(widths) >= MIN_CSV_WIDTHS
               else f"log width and params at {MIN_CSV_WIDTHS}+ widths")
            + ", or leave the critic column empty")
    if input_dim is not None:
        arch = bronet_architecture(input_dim)
        # The trusted range reaches PARAMS_REACH x below the runs, and must hold a width there
        smallest = PARAMS_REACH * float(np.polyval(arch.coefficients, 1))
        least = min(r.params for r in runs)
        if least < smallest:  # a params column holding widths: a cryptic schema error after
            raise CsvError(f"{archive.name}: params {least:g} is too small for a BroNet critic "
                           f"at input {input_dim}: the fit's range reaches {PARAMS_REACH:g}x "
                           f"below its runs, so they need at least {smallest:,.0f} params "
                           "(width 1's, times that); if the column holds critic widths, name "
                           "it width (or check --input-dim)")
    elif len(widths) >= MIN_CSV_WIDTHS and len(pairs) == len(widths):
        arch = csv_architecture(runs, archive.name)
    else:
        raise CsvError(f"cannot tell how critic width maps to params from {archive.name}: give "
                       "--input-dim (BroNet critic), or width and params columns with at least "
                       f"{MIN_CSV_WIDTHS} widths")
    targets = (thresholds(*target_range) if target_range
               else choose_targets(runs, remedy=FIT_REMEDY))
    if target_range:
        check_low_target(runs, targets)
        check_high_target(runs, targets)
    if not target_range:
        notes.append(f"thresholds {span(targets[0], targets[-1], '.4g')} chosen from the data "
                     "(calibration.calibrate.choose_targets)")
    horizon = max(float(r.steps["return"][-1]) for r in runs)
    batches = sorted({r.batch_size for r in runs})
    batch_sizes = None  # those the runs used, where B~ is fitted to them
    reach_tables: list[DataTable] = []  # the configs' runs at other batch sizes
    try:  # each config at its own batch size, as paper A's runs (at their B~)
        ran = runs_batch_law(runs)
    except ValueError as exc:
        raise CsvError(f"{archive.name}: {exc}") from None
    if len(batches) == 1:
        batch = BatchSizeLaw(kind="fixed", source="fixed", a_b=float(batches[0]))
        notes.append(f"All runs used batch size {batches[0]:g}; the fit recommends it and cannot "
                     "say whether another is better.")
        table = data_table(runs, targets, n_boot, seed, step_limit=horizon)
    elif ran is not None:
        batch, note = ran
        notes.append(note)
        table = data_table(runs, targets, n_boot, seed, step_limit=horizon)
        batch_sizes = [int(b) for b in batches]
    else:
        try:
            tables = tables_by_batch(runs, targets, n_boot, seed)
        except AdvisorError:
            at: dict[tuple, set] = {}
            for r in runs:
                at.setdefault((r.utd, r.params), set()).add(r.batch_size)
            (u, n), has = next((k, v) for k, v in sorted(at.items()) if v != set(batches))
            raise CsvError(f"{archive.name} uses several batch sizes but not at every (utd, "
                           f"params): utd {u:g}, params {n:.10g} has batch sizes "
                           f"{', '.join(f'{b:g}' for b in sorted(has))} of "
                           f"{', '.join(f'{b:g}' for b in batches)}; run one batch size "
                           "everywhere, or every batch size at every (utd, params) so that B~ "
                           "can be fitted") from None
        utd, params, best = best_batch_sizes(tables)
        coef_b, relerr = fit_batch_law(utd, params, best)
        batch = BatchSizeLaw(kind="law", source="fitted", a_b=coef_b[0], alpha_b=coef_b[1],
                             b_b=coef_b[2], beta_b=coef_b[3], relative_error=relerr)
        picked = nearest_batch_runs(runs, lambda u, n: advisor.laws.batch_size(u, n, *coef_b))
        table = data_table(picked, targets, n_boot, seed, step_limit=horizon)
        # every batch size's runs, cut where the D_J table cuts them
        reach_tables = list(tables_by_batch(runs, targets, 0, seed, step_limit=horizon).values())
        notes.append("D_J per config uses the batch size nearest the fitted B~.")
    n_cfg = len({(r.utd, r.params) for r in runs})
    need = 5 if prior is None else 3
    if n_cfg < need:
        raise CsvError(f"{archive.name} has {n_cfg} (utd, params) configurations; the law needs "
                       f"at least {need}" + (", or 3 with a few-shot fit's --prior dmc (see "
                                             "`advisor plan --prior dmc`)" if prior is None
                                             else ""))
    return _finish(table, archive, algorithm, env, name or env, batch=batch, arch=arch,
                   fit_delta=delta or 1e11, notes=notes, method=method, n_boot=n_boot,
                   seed=seed, created=created, command=command, target_range=target_range,
                   delta=delta, input_dim=input_dim, name=name, prior=prior,
                   random_steps=random_steps, batch_sizes=batch_sizes, round_steps=round_steps,
                   reach_tables=reach_tables)


def fit_command(archive: str | Path, algorithm: str, env: str, output: str | Path, n_boot: int,
                created: str | None, target_range: tuple[float, float] | None = None,
                delta: float | None = None, input_dim: int | None = None,
                name: str | None = None, priors: tuple[str, ...] = (),
                random_steps: int | None = None, round_steps: float | None = None) -> str:
    """The `advisor fit` command line that rebuilds a fit (as calibration.cli records it)."""
    import shlex

    parts = ["advisor fit", shlex.quote(str(archive)), "--algorithm", shlex.quote(algorithm),
             "--env", shlex.quote(env), "--output", shlex.quote(str(output)),
             "--n-boot", str(n_boot)]
    if target_range:
        parts += ["--target-range", repr(float(target_range[0])), repr(float(target_range[1]))]
    if delta is not None:
        parts += ["--delta", repr(float(delta))]
    if input_dim is not None:
        parts += ["--input-dim", str(input_dim)]
    # in the order `advisor fit` declares its options (recorded_command's): rerunning a
    # recorded command writes the same file
    if created:
        parts += ["--created", shlex.quote(created)]
    if name is not None and name != env:
        parts += ["--name", shlex.quote(name)]
    for p in priors:
        parts += ["--prior", shlex.quote(p)]
    if random_steps is not None and random_steps != RANDOM_STEPS.get(_sha256(archive)):
        parts += ["--random-steps", str(random_steps)]
    if round_steps is not None:
        from advisor.fit import number_text

        parts += ["--round-steps", number_text(float(round_steps))]
    return " ".join(parts)


def make_fit_file(
    table: DataTable, *, fit_id: str, batch: BatchSizeLaw, arch: Architecture, delta: float,
    provenance: Provenance, method: Method = DEFAULT_METHOD, n_boot: int = N_BOOT,
    seed: int = BOOT_SEED, created: str | None = None, prior=None,
    batch_sizes: list[int] | None = None, random_steps: int | None = None,
    reach_tables: list[DataTable] = (),
) -> tuple[FitFile, LawFit, np.ndarray]:
    """Fit D_J on `table`, cross-validate, bootstrap, and assemble the fit file, with the
    verdict of its checks in the notes (calibration.checks; `batch_sizes`: those the runs
    swept, for the B~ range check).

    With `prior` (calibration.prior.Prior) the law is a few-shot fit borrowing from the family
    (calibration.prior), and the interval is at least as wide as the family's few-shot error."""
    targets = table.targets
    if not np.isfinite(table.data).any():
        raise BuildError(f"no run on {table.env} reaches any threshold in {targets[0]:.4g}-"
                         f"{targets[-1]:.4g}: there is nothing to fit")
    if random_steps is not None and np.max(table.horizon) > 0 and (
            random_steps >= np.max(table.horizon)):
        raise BuildError(f"random steps {random_steps} are at least the runs' length "
                         f"({np.max(table.horizon):g} env steps): give the env steps of random "
                         "actions before learning, fewer than the runs took")
    with one_blas_thread():  # hundreds of small least-squares problems: faster on one thread
        if prior is None:
            laws = fit_laws(table, method)
            loco = leave_one_config_out(table, method, laws)
            draws = (bootstrap_fits(table, method, laws) if n_boot
                     else np.zeros((0, len(targets), 5)))
            interval, _ = calibrate_interval(table, method, laws, loco)
        else:
            laws, loco, draws, interval, provenance = _few_shot(table, method, prior, n_boot,
                                                                provenance)
    in_sample = relative_errors(laws.predict(table.utd, table.params), table.data)
    loco_err = relative_errors(loco, table.data)
    head = relative_errors(loco[:, -1:], table.data[:, -1:])
    ll = loglinear_leave_one_config_out(table)
    # Points whose threshold too few other configs reach have no baseline prediction.
    base = relative_errors(ll, np.where(np.isfinite(ll), table.data, np.nan))
    try:
        fit = FitFile(
            id=fit_id, fit_version=1, created=created or _dt.date.today().isoformat(),
            provenance=provenance, compute=ComputeDefinition(), architecture=arch,
            domain=Domain(
                utd=PositiveRange(low=float(table.utd.min()), high=float(table.utd.max())),
                params=PositiveRange(low=float(table.params.min()),
                                     high=float(table.params.max())),
                target=Range(low=float(targets[0]), high=float(targets[-1])),
                horizon=float(np.max(table.horizon)) if np.max(table.horizon) > 0 else None,
                runs=fitted_runs(table, reach_tables)),
            data_to_target=DataToTarget(laws=[
                DataLaw(target=float(t), d_min=float(c[0]), a=float(c[1]), alpha=float(c[2]),
                        b=float(c[3]), beta=float(c[4])) for t, c in zip(targets, laws.coef)]),
            batch_size=batch, delta=delta, learning_rate=LEARNING_RATE,
            random_steps=random_steps,
            bootstrap=Bootstrap(n_resamples=n_boot, seed=seed, draws=_round_sig(draws)),
            goodness_of_fit=GoodnessOfFit(
                n_configs=len(table.utd), n_points=int(np.isfinite(table.data).sum()),
                in_sample=float(in_sample.mean()), leave_one_config_out=float(loco_err.mean()),
                leave_one_config_out_headline=float(head.mean()) if head.size else None,
                baseline_loglinear_leave_one_config_out=(float(base.mean()) if base.size
                                                         else None)),
            prediction_interval=interval,
        )
    except ValidationError as exc:  # e.g. an --input-dim whose widths cannot cover the runs
        raise BuildError(f"these runs and options make no valid fit file: {one_line(exc)}"
                         ) from None
    # Is it fit to use? Recorded (calibration.checks); `recommend` repeats a failure.
    from calibration.checks import check_notes, fit_checks

    notes = [*check_notes(fit_checks(fit, batch_sizes=batch_sizes,
                                     configs=(table.utd, table.params))), seeds_note(table)]
    fit = fit.model_copy(update=dict(provenance=fit.provenance.model_copy(
        update=dict(notes=(*fit.provenance.notes, *notes)))))
    return fit, laws, loco


def fitted_runs(table: DataTable, others: list[DataTable] = ()) -> list[FittedRun] | None:
    """Each config of `table` and the highest threshold any of its runs reached within their
    length, with the fewest env steps any of them took; `others`: tables of the same
    thresholds whose runs at a config of `table` count too (its other batch sizes). None where
    the runs' lengths are unknown."""
    if not np.all(table.horizon > 0):
        return None
    rows: dict[tuple[float, float], list[tuple[float, np.ndarray]]] = {}
    for t in (table, *others):
        assert np.array_equal(t.targets, table.targets)
        for u, n, h, row in zip(t.utd, t.params, t.horizon, t.data):
            rows.setdefault((float(u), float(n)), []).append((float(h), row))
    out = []
    for u, n in zip(table.utd, table.params):
        got = rows[float(u), float(n)]
        hit = np.flatnonzero(np.any([np.isfinite(row) for _, row in got], axis=0))
        out.append(FittedRun(utd=float(u), params=float(n), horizon=min(h for h, _ in got),
                             reached=float(table.targets[hit[-1]]) if hit.size else None))
    return out


def seeds_note(table: DataTable) -> str:
    """What a 'new run' is for the interval: D_J is read from a curve averaged over seeds."""
    s = np.asarray(table.n_seeds, int)
    many = (f"{s.min()} per config" if s.min() == s.max() else
            f"{s.min()} to {s.max()} per config, median {np.median(s):g}")
    k = table.seeds_per_column
    if k > 1:  # SimbaV2's archive: each column already a mean of seeds
        seeds = (f"{k * s.min()}" if s.min() == s.max() else f"{k * s.min()} to {k * s.max()}")
        return (f"Each config's D_J is read from its return curve averaged over its curves "
                f"({many}), each curve published as the mean of {k} seeds (so {seeds} seeds "
                "per config): the interval is for a new run averaged over "
                "as many seeds. The runs hold no single seed's curve, so this fit has no "
                "single-seed interval: a single seed's D_J scatters more than any interval "
                "here says.")
    text = (f"Each config's D_J is read from its return curve averaged over its seeds ({many}): "
            "the interval is for a new run averaged over as many seeds; a single "
            "seed's D_J scatters more")
    sd = table.seed_data
    if sd is None or not np.isfinite(sd).any():
        return text + "."
    cells = np.broadcast_to(np.isfinite(table.data)[:, None, :], sd.shape) & ~np.isnan(sd)
    never = float(np.isinf(sd[cells]).mean()) if cells.any() else 0.0
    return (text + f" (the single-seed interval is for it; {100 * never:.1f}% of the seeds never "
            "reached a threshold their config's averaged curve reached, and are not in it).")


def few_shot_loco(table: DataTable, fam) -> np.ndarray:
    """Leave-one-config-out predictions (configs x targets) of few-shot fits with the family
    prior `fam` (calibration.design.FamilyPrior): the few-shot counterpart of
    calibration.fitting.leave_one_config_out."""
    from calibration.prior import few_shot

    n = len(table.utd)
    loco = np.full(table.data.shape, np.nan)
    for i in range(n):
        keep = np.arange(n) != i
        if np.isfinite(table.data[keep]).any():
            loco[i] = few_shot(table, fam, keep).predict(table.utd[i:i + 1],
                                                         table.params[i:i + 1])[0]
    return loco


def _few_shot(table: DataTable, method: Method, prior, n_boot: int, provenance: Provenance):
    """The few-shot counterpart of make_fit_file's fitting: law, LOCO, bootstrap, interval."""
    from calibration.prior import MIN_FEW_SHOT_CONFIGS, PriorError, few_shot

    n = len(table.utd)
    if n < MIN_FEW_SHOT_CONFIGS:
        raise PriorError(f"a few-shot fit needs at least {MIN_FEW_SHOT_CONFIGS} (utd, params) "
                         f"configurations, got {n}")
    if method != DEFAULT_METHOD:
        raise PriorError("few-shot fits use the shipped method (shared exponents)")
    fam = prior.family_prior(table.data.shape[1])
    laws = few_shot(table, fam)
    loco = few_shot_loco(table, fam)
    total = n_boot if table.boot.size else 0
    draws = []
    for r in range(total):
        if np.isfinite(table.boot[r]).sum() >= 5:
            draws.append(few_shot(table, fam, data=table.boot[r]).coef)
        bootstrap_progress(r + 1, total)
    draws = np.array(draws)
    if not len(draws):
        draws = np.zeros((0, len(table.targets), 5))
    interval, _ = calibrate_interval(table, method, laws, loco,
                                     refit=lambda keep: few_shot(table, fam, keep),
                                     floor=prior.floor(n))
    notes = list(provenance.notes)
    if prior.family:
        notes.append(f"few-shot fit with the {prior.family!r} family prior "
                     f"({', '.join(prior.ids)})")
    provenance = provenance.model_copy(update=dict(
        method=f"{prior.record().method}; {provenance.method}", notes=tuple(notes),
        prior=prior.record()))
    return laws, loco, draws, interval, provenance


def regenerate(data_dir: str | Path, out_dir: str | Path, *, n_boot: int = N_BOOT,
               created: str | None = None, ids: list[str] | None = None, n_jobs: int = 2,
               progress=None) -> list[Path]:
    """Rebuild every shipped fit (or those in `ids`) from the archives in `data_dir`."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    specs = [s for s in catalogue() if ids is None or s.id in ids]
    jobs = [(str(data_dir / s.archive), s.algorithm, s.env, n_boot, created,
             str(out_dir / s.algorithm / s.file_name), s.name) for s in specs]
    if n_jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Small least-squares problems run twice as fast on one BLAS thread per worker.
        with one_blas_thread_env():
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(n_jobs, mp_context=ctx) as pool:
                results = list(pool.map(_build_one, jobs))
    else:
        results = [_build_one(j) for j in jobs]
    paths = []
    for spec, fit in zip(specs, results):
        paths.append(write_fit_file(fit, out_dir / spec.algorithm / spec.file_name))
        if progress:
            progress(spec.id)
    return paths


_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def one_blas_thread_env():
    """Set the BLAS thread variables to 1 for processes spawned inside (they read them before
    numpy loads), restoring them after."""
    saved = {k: os.environ.get(k) for k in _BLAS_VARS}
    os.environ.update({k: "1" for k in _BLAS_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with BLAS on one thread, in this process: the fits' small least-squares
    problems run about twice as fast. Through threadpoolctl where it is installed, else through
    the thread setters of the OpenBLAS libraries numpy and scipy load (Linux); elsewhere the
    block runs unchanged."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
        return
    setters = _openblas_thread_setters()
    saved = [(set_, get()) for set_, get in setters]
    for set_, _ in setters:
        set_(1)
    try:
        yield
    finally:
        for set_, n in saved:
            set_(n)


#: OpenBLAS's thread setter and getter, under the prefixes and suffixes of the numpy and scipy
#: wheels' builds.
_OPENBLAS_SYMBOLS = [(f"{p}openblas_set_num_threads{s}", f"{p}openblas_get_num_threads{s}")
                     for p in ("", "scipy_") for s in ("", "64_")]


def _openblas_thread_setters() -> list:
    """(set, get) of the number of threads of each loaded OpenBLAS (numpy's and scipy's wheels
    each bundle one, with prefixed symbol names)."""
    import ctypes

    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return []
    out = []
    for path in sorted(p for p in paths if p.startswith("/") and "openblas" in
                       os.path.basename(p).lower()):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_SYMBOLS:
            set_, get = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if set_ is not None and get is not None:
                set_.argtypes, set_.restype, get.restype = [ctypes.c_int], None, ctypes.c_int
                out.append((set_, get))
                break
    return out


def _build_one(job) -> FitFile:
    archive, algorithm, env, n_boot, created, output, name = job
    command = fit_command(archive, algorithm, env, output, n_boot, created, name=name)
    return build_fit(archive, algorithm, env, n_boot=n_boot, created=created,
                     command=command, name=name).fit
