"""`advisor`: a thin click shell over the Python API. Every user mistake exits 2 with one line."""

from __future__ import annotations

import json
import sys

import click

from advisor.errors import AdvisorError

FORMATS = ["table", "json", "yaml", "args"]


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AdvisorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="value-scaling-advisor")
def main() -> None:
    """Compute-optimal critic size, batch size and UTD for value-based deep RL.

    Budgets are FLOPs (--compute, --total) and environment steps (--data); fits are ids such as
    bro/h1-crawl-v0 (see `advisor fits`) or paths to fit files.

    \b
    Examples:
      advisor recommend --compute 1e17
      advisor recommend --fit bro/h1-stand-v0 --data 5e5 --format args
      advisor recommend --fit bro/humanoid-stand --total 1e17 --delta 5e10
    """


@main.command()
@click.option("--fit", "fit_id", default="bro/h1-crawl-v0", show_default=True,
              help="Fit id (see `advisor fits`) or path to a fit file.")
@click.option("--compute", type=float, help="Compute budget in FLOPs (e.g. 1e17).")
@click.option("--data", type=float, help="Data budget in environment steps (e.g. 5e5).")
@click.option("--total", type=float,
              help="Total budget in FLOPs of compute + delta * data (paper A, problem 2).")
@click.option("--delta", type=float,
              help="FLOPs charged per env step with --total (default: the fit's delta).")
@click.option("--target", type=float,
              help="Return to reach (default: the top fitted target for a single budget, the "
                   "highest reachable one for compute+data or total).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, json for programs, yaml for rl-zoo, args for CleanRL.")
def recommend(fit_id, compute, data, total, delta, target, fmt):
    """Recommend utd, critic width and batch size for a budget.

    \b
    --data D           least compute that reaches the target within D env steps
    --compute C        least data that reaches the target within C FLOPs
    --compute C --data D   highest target reachable within both
    --total F [--delta d]  highest target with C + d*D <= F
    """
    from advisor.recommend import Budget
    from advisor.recommend import recommend as _recommend

    budget = Budget(compute=compute, data=data, total=total, delta=delta)
    rec = _recommend(budget, fit=fit_id, target=target)
    click.echo(format_recommendation(rec, fmt))


def format_recommendation(rec, fmt: str) -> str:
    if fmt == "json":
        return rec.model_dump_json(indent=2)
    if fmt == "args":
        utd = rec.utd_rounded
        utd_s = f"{utd:g}" if utd >= 1 else f"{utd:.4g}"
        return (f"--utd {utd_s} --critic-width {rec.width} --batch-size {rec.batch_size} "
                f"--learning-rate {rec.learning_rate:g}")
    if fmt == "yaml":
        if rec.utd_rounded >= 1:
            train_freq, steps = 1, int(rec.utd_rounded)
        else:
            train_freq, steps = int(round(1 / rec.utd_rounded)), 1
        lines = [
            f"# advisor {rec.fit}: target {rec.target:g}, predicted {rec.predicted_data:.3g} env "
            f"steps, {rec.predicted_compute:.3g} FLOPs",
            f"batch_size: {rec.batch_size}",
            f"learning_rate: {rec.learning_rate:g}",
            f"train_freq: {train_freq}",
            f"gradient_steps: {steps}",
            f'policy_kwargs: "dict(net_arch=dict(pi=[256, 256], qf=[{rec.width}, {rec.width}]))"',
        ]
        return "\n".join(lines)
    rows = [
        ("fit", rec.fit), ("problem", rec.problem), ("target (return)", f"{rec.target:.4g}"),
        ("utd", f"{rec.utd:.3g}  (use {rec.utd_rounded:.3g})"),
        ("params", f"{rec.params:.4g}  (width {rec.width}: {rec.params_rounded:.4g})"),
        ("batch_size", f"{rec.batch_size}  (B~ = {rec.batch_size_exact:.1f})"),
        ("learning_rate", f"{rec.learning_rate:g}"),
        ("predicted data", f"{rec.predicted_data:.4g} env steps"
         + (f"  [10-90%: {rec.interval.low:.4g} - {rec.interval.high:.4g}]" if rec.interval else "")),
        ("  at rounded config", f"{rec.predicted_data_rounded:.4g} env steps"),
        ("predicted compute", f"{rec.predicted_compute:.4g} FLOPs"),
        ("predicted total", f"{rec.predicted_total:.4g} FLOPs (delta {rec.delta:.3g})"),
        ("extrapolated", "yes" if rec.extrapolated else "no"),
    ]
    width = max(len(k) for k, _ in rows)
    out = [f"{k:<{width}}  {v}" for k, v in rows]
    out += [f"warning: {w}" for w in rec.warnings]
    return "\n".join(out)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def fits(fmt):
    """List the available fits: shipped ones and those other packages install."""
    from advisor.registry import fit_sources, load_fit

    rows = []
    for fit_id, source in fit_sources().items():
        f = load_fit(fit_id)
        g = f.model.goodness_of_fit
        rows.append(dict(id=fit_id, source=source, target_min=f.target_min,
                         target_max=f.target_max, configs=g.n_configs,
                         loco_error=g.leave_one_config_out, batch_size=f.model.batch_size.source))
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'id':<24} {'targets':>11} {'configs':>7} {'LOCO err':>8} {'B~':>9}  source")
    for r in rows:
        click.echo(f"{r['id']:<24} {r['target_min']:>5g}-{r['target_max']:<5g} {r['configs']:>7} "
                   f"{100 * r['loco_error']:>7.1f}% {r['batch_size']:>9}  {r['source']}")


@main.command()
@click.argument("fit_id")
def show(fit_id):
    """Describe one fit: provenance, domain, laws and goodness of fit."""
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
        f"domain:       utd {m.domain.utd.low:g}-{m.domain.utd.high:g}, params "
        f"{m.domain.params.low:.3g}-{m.domain.params.high:.3g}, target "
        f"{m.domain.target.low:g}-{m.domain.target.high:g}",
        f"compute:      C = {m.compute.flops_per_param_sample:g} * {m.compute.reference_batch_size:g}"
        f" * utd * params * data FLOPs; delta = {m.delta:.3g} FLOPs/env step",
        f"architecture: {m.architecture.description}; params(width) coefficients "
        f"{m.architecture.coefficients}",
        f"batch size:   {bs.kind} ({bs.source}): a_B={bs.a_b:.4g} alpha_B={bs.alpha_b:.3g} "
        f"b_B={bs.b_b:.3g} beta_B={bs.beta_b:.3g}",
        f"accuracy:     mean relative error of D_J: in-sample {100 * g.in_sample:.1f}%, "
        f"leave-one-config-out {100 * g.leave_one_config_out:.1f}% over {g.n_points} points, "
        f"{g.n_configs} configs",
        f"bootstrap:    {m.bootstrap.n_resamples} resamples of seeds",
        "D_J(utd, params) = d_min + (a/utd)^alpha + (b/params)^beta:",
        f"  {'target':>8} {'d_min':>10} {'a':>10} {'alpha':>7} {'b':>10} {'beta':>7}",
    ]
    for law in m.data_to_target.laws:
        lines.append(f"  {law.target:>8.4g} {law.d_min:>10.4g} {law.a:>10.4g} {law.alpha:>7.3f} "
                     f"{law.b:>10.4g} {law.beta:>7.3f}")
    lines += [f"note: {n}" for n in m.provenance.notes]
    click.echo("\n".join(lines))


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=True))
@click.option("--algorithm", required=True, help="Algorithm name, the first half of the fit id.")
@click.option("--env", required=True, help="Environment name as it appears in the archive.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the fit file (written atomically).")
@click.option("--n-boot", default=100, show_default=True, type=click.IntRange(0, 10_000),
              help="Bootstrap resamples of seeds for intervals.")
@click.option("--target-range", nargs=2, type=float, default=None,
              help="J_min J_max for envs not in paper A's Table 2.")
@click.option("--delta", type=float, help="FLOPs per env step (default: paper A's value).")
@click.option("--input-dim", type=int, help="Critic input size (obs + action) for new envs.")
@click.option("--created", help="Creation date to record (default: today).")
def fit(archive, algorithm, env, output, n_boot, target_range, delta, input_dim, created):
    """Fit the laws to runs in the published layout (zip or folder) and write a fit file."""
    from advisor.fitfile import write_fit_file
    from calibration.build import build_fit

    command = "advisor fit " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None
    built = build_fit(archive, algorithm, env, n_boot=n_boot, created=created, command=command,
                      target_range=tuple(target_range) if target_range else None, delta=delta,
                      input_dim=input_dim)
    path = write_fit_file(built.fit, output)
    g = built.fit.goodness_of_fit
    click.echo(f"wrote {path}: {built.fit.id}, leave-one-config-out error "
               f"{100 * g.leave_one_config_out:.1f}% over {g.n_configs} configs", err=True)


@main.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out-dir", default="fits", show_default=True, type=click.Path(file_okay=False))
@click.option("--n-boot", default=100, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--created", help="Creation date to record (default: today).")
@click.option("--only", multiple=True, help="Rebuild only these fit ids.")
@click.option("-j", "--jobs", default=2, show_default=True, type=click.IntRange(1, 256))
def regenerate(data_dir, out_dir, n_boot, created, only, jobs):
    """Rebuild every shipped fit from the published archives in DATA_DIR."""
    from calibration.build import catalogue
    from calibration.build import regenerate as _regenerate

    known = {s.id for s in catalogue()}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise click.BadParameter(f"unknown shipped fit {unknown[0]!r}; choose from "
                                 f"{', '.join(sorted(known))}", param_hint="--only")
    paths = _regenerate(data_dir, out_dir, n_boot=n_boot, created=created,
                        ids=list(only) or None, n_jobs=jobs,
                        progress=lambda i: click.echo(f"  {i}", err=True))
    click.echo(f"wrote {len(paths)} fit files under {out_dir}", err=True)


@main.command()
@click.option("--env", "env_id", required=True,
              help="Any gymnasium id with continuous actions, e.g. HalfCheetah-v5.")
@click.option("--algorithm", default="bro", show_default=True,
              help="First half of the fit id written.")
@click.option("--preset", "preset_name", type=click.Choice(["smoke", "reduced", "full"]),
              default="smoke", show_default=True,
              help="smoke: CPU, minutes, tiny critics (pipeline check). reduced: one GPU, hours. "
                   "full: paper-scale axes.")
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False),
              help="A grid JSON file instead of a preset (see calibration/grid.py: Grid).")
@click.option("--steps", type=click.IntRange(min=1), help="Env steps per run (overrides the grid).")
@click.option("--seeds", type=click.IntRange(min=1), help="Seeds per configuration.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--backend", type=click.Choice(["loky", "ray", "dask"]), default="loky",
              show_default=True, help="joblib backend: loky on one machine, ray/dask on a cluster.")
@click.option("--n-jobs", type=click.IntRange(min=1),
              help="Parallel units (default: one per GPU, or per core on the CPU).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Where runs, done markers and the grid go; rerun to resume.")
@click.option("--fit-out", type=click.Path(dir_okay=False),
              help="Fit file to write (default: OUT_DIR/ALGORITHM-ENV.json).")
@click.option("--delta", type=float, default=1e10, show_default=True,
              help="FLOPs charged per env step in the fit file.")
@click.option("--n-boot", type=click.IntRange(0, 10_000), default=100, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress lines (for CI).")
def calibrate(env_id, algorithm, preset_name, grid_file, steps, seeds, device, backend, n_jobs,
              out_dir, fit_out, delta, n_boot, quiet):
    """Calibrate a new task: run a reduced grid, fit B~ and D_J, write a fit file.

    Stage 1 sweeps batch x utd at one width and batch x width at one utd and fits B~; stage 2
    runs utd x width at the fitted batch size and fits D_J. Every finished population is saved
    atomically under --out-dir: run the same command again to resume after a crash.

    
    Example:
      advisor calibrate --env InvertedPendulum-v5 --preset smoke --device cpu --out-dir calib
      advisor recommend --fit calib/bro-InvertedPendulum-v5.json --data 2e4
    """
    try:
        from calibration.calibrate import calibrate as _calibrate
    except ImportError as exc:
        raise click.UsageError(f"calibrate needs the calibrate extra ({exc.name} is missing): "
                               "pip install 'value-scaling-advisor[calibrate]'") from None
    path = _calibrate(env_id, out_dir=out_dir, algorithm=algorithm, preset_name=preset_name,
                      grid_file=grid_file, steps=steps, seeds=seeds, device=device,
                      backend=backend, n_jobs=n_jobs, fit_out=fit_out, delta=delta,
                      n_boot=n_boot, quiet=quiet)
    click.echo(str(path))


def _budget_options(f):
    f = click.option("--total", type=float, help="Mark the recommendation for this total budget.")(f)
    f = click.option("--data", type=float, help="Mark the recommendation for this data budget.")(f)
    f = click.option("--compute", type=float,
                     help="Mark the recommendation for this compute budget.")(f)
    return f


def _maybe_budget(compute, data, total):
    if compute is None and data is None and total is None:
        return None
    from advisor.recommend import Budget

    return Budget(compute=compute, data=data, total=total)


def _report_module():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.UsageError("plots need matplotlib: pip install "
                               "'value-scaling-advisor[plot]'") from None
    from calibration import report

    return report


@main.command()
@click.argument("fit_id")
@click.option("--runs", type=click.Path(exists=True),
              help="Run archive or folder (published layout) to plot the fit against.")
@click.option("-o", "--output", default="report.html", show_default=True,
              type=click.Path(dir_okay=False))
@_budget_options
def report(fit_id, runs, output, compute, data, total):
    """Write a self-contained HTML report of a fit: laws against runs, parity, frontier, B~,
    TD overfitting, and the recommendation for a budget.

    \b
    Example:
      advisor report simbav2/h1-crawl-v0 --runs ../shared/data/simbav2_model_scaling_linear20_with_base.zip \\
          --compute 1e17 -o report.html
    """
    rep = _report_module()
    ctx = rep.load_context(fit_id, runs, _maybe_budget(compute, data, total))
    path = rep.write_report(ctx, output)
    click.echo(f"wrote {path}", err=True)


@main.command()
@click.argument("kind", type=click.Choice(["data", "parity", "frontier", "batch", "td"]))
@click.argument("fit_id")
@click.option("--runs", type=click.Path(exists=True), help="Run archive or folder.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="PNG (or any format matplotlib writes) to create.")
@_budget_options
def plot(kind, fit_id, runs, output, compute, data, total):
    """Write one figure of the report. KIND: data, parity, frontier, batch or td."""
    rep = _report_module()
    ctx = rep.load_context(fit_id, runs, _maybe_budget(compute, data, total))
    click.echo(f"wrote {rep.save_figure(kind, ctx, output)}", err=True)


@main.command()
@click.argument("fit_id")
@click.option("--budgets", default="1e15,1e16,1e17,1e18", show_default=True,
              help="Comma-separated budgets.")
@click.option("--kind", "budget_kind", type=click.Choice(["compute", "data", "total"]),
              default="compute", show_default=True, help="What the budgets are.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
def export(fit_id, budgets, budget_kind, fmt):
    """A per-budget table of recommended hyperparameters (rl-zoo style), one entry per budget.
    Budgets the fit cannot meet are listed with the reason."""
    from advisor.recommend import Budget
    from advisor.recommend import recommend as _recommend

    try:
        values = [float(b) for b in budgets.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(f"budgets must be comma-separated numbers, got {budgets!r}",
                                 param_hint="--budgets") from None
    rows = []
    for value in values:
        budget = Budget(**{budget_kind: value})
        try:
            r = _recommend(budget, fit=fit_id)
        except AdvisorError as exc:
            rows.append({budget_kind: value, "error": str(exc)})
            continue
        rows.append({budget_kind: value, "target": r.target, "utd": r.utd_rounded,
                     "critic_width": r.width, "batch_size": r.batch_size,
                     "learning_rate": r.learning_rate, "predicted_data": r.predicted_data,
                     "predicted_compute": r.predicted_compute, "extrapolated": r.extrapolated})
    if fmt == "json":
        click.echo(json.dumps({"fit": fit_id, "budgets": rows}, indent=2))
        return
    lines = [f"# advisor export {fit_id}: one entry per {budget_kind} budget"]
    for row in rows:
        key = f"{budget_kind}_{row[budget_kind]:.3g}".replace("+", "")
        lines.append(f"{key}:")
        for k, v in row.items():
            if k == budget_kind:
                continue
            text = json.dumps(v) if isinstance(v, str) else (f"{v:g}" if isinstance(v, float)
                                                               else str(v).lower())
            lines.append(f"  {k}: {text}")
    click.echo("\n".join(lines))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
def validate(path):
    """Check a fit file: JSON, schema, version and content hash."""
    from advisor.fitfile import read_fit_file

    model = read_fit_file(path)
    click.echo(f"ok: {path} is a valid fit file for {model.id} (schema {model.schema_version}, "
               f"{model.content_hash[:19]}...)")


@main.command()
def schema():
    """Print the JSON Schema of fit files (generated from the pydantic model)."""
    from advisor.fitfile import FitFile

    click.echo(json.dumps(FitFile.model_json_schema(), indent=2))


if __name__ == "__main__":
    main()
