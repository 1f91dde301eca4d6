"""`advisor calibrate`: run a reduced grid on a new task and fit its laws into a fit file.

    from calibration.calibrate import calibrate
    path = calibrate("InvertedPendulum-v5", preset="smoke", out_dir="calib/", device="cpu")
    advisor.recommend(advisor.Budget(data=2e4), fit=str(path))

Thresholds are chosen from the data: J_hi is the 30th percentile over configurations of the
best (isotonic) mean return, so about 70% of configurations reach every threshold; J_lo lies 40%
of the way from the median starting return to J_hi; 20 thresholds span [J_lo, J_hi]. Where
returns saturate (that percentile is the highest best return of any configuration, as success
rates at 1 are), J_hi is 90% of the way from the median start to that ceiling instead: a
threshold at the ceiling is reached only when every seed is, and seed resamples reach it early.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path

import numpy as np

import advisor
from advisor.errors import AdvisorError
from advisor.fit import round_batch_size
from advisor.fitfile import Architecture, BatchSizeLaw, Provenance, write_fit_file
from calibration.architectures import bronet_params, bronet_params_coefficients
from calibration.archives import Run, read_runs
from calibration.batch import best_batch_sizes, fit_batch_law, tables_by_batch
from calibration.build import DEFAULT_METHOD, N_BOOT, make_fit_file
from calibration.curves import data_table, isotonic_curve, thresholds
from calibration.grid import Grid, load_grid, preset, stage1_units, stage2_units
from calibration.runner import prepare_out_dir, run_units

MIN_CONFIGS = 5
#: Where returns saturate, the top threshold's place between the median start and the ceiling.
SATURATED_TOP = 0.9
DEFAULT_DELTA = 1e10


class CalibrationError(AdvisorError):
    """A calibration that cannot go on (too few finished units, runs that did not learn)."""


def choose_targets(runs: list[Run], n: int = 20) -> np.ndarray:
    """Thresholds from the data (module docstring gives the rule)."""
    starts, bests = [], []
    for r in runs:
        curve = isotonic_curve(np.nanmean(r.values["return"], axis=1))
        starts.append(curve[0])
        bests.append(curve[-1])
    j_hi = float(np.percentile(bests, 30))
    if j_hi >= max(bests):  # saturated returns (module docstring)
        j_hi = float(np.median(starts) + SATURATED_TOP * (max(bests) - np.median(starts)))
    j_lo = float(np.median(starts) + 0.4 * (j_hi - np.median(starts)))
    if not j_hi > j_lo + 1e-9:
        raise CalibrationError(
            "the runs did not learn: returns do not rise above their starting level "
            f"(median start {np.median(starts):.4g}, 30th percentile of best {j_hi:.4g}); "
            "train longer with --steps")
    return thresholds(j_lo, j_hi, n)


def calibrate(
    env_id: str, *, out_dir: str | Path, algorithm: str = "bro", preset_name: str = "smoke",
    grid_file: str | Path | None = None, steps: int | None = None, seeds: int | None = None,
    device: str = "auto", backend: str = "loky", n_jobs: int | None = None,
    fit_out: str | Path | None = None, delta: float = DEFAULT_DELTA, n_boot: int = N_BOOT,
    quiet: bool = False, echo=None, command: str | None = None, prior=None,
) -> Path:
    """Run stage 1, fit B~, run stage 2, fit D_J; write and return the fit file's path.

    `prior`: fit ids, fit files or a family name (calibration.prior): stage 2's D_J is then a
    few-shot fit, which needs calibration.prior.MIN_FEW_SHOT_CONFIGS configurations, not
    MIN_CONFIGS."""
    from calibration.learner.trainer import make_env, resolve_device
    from calibration.prior import MIN_FEW_SHOT_CONFIGS, resolve_prior

    prior = resolve_prior(prior)  # an unusable --prior fails before anything runs ...
    if prior is not None:
        prior.calibration()  # ... and so does one whose interval cannot be calibrated
    min_configs = MIN_CONFIGS if prior is None else MIN_FEW_SHOT_CONFIGS

    echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    say = (lambda s: None) if quiet else echo
    dev = resolve_device(device)  # 'cuda' with no GPU fails before anything runs
    env = make_env(env_id, 0)  # unknown ids and discrete actions fail here too
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    if not (delta > 0 and np.isfinite(delta)):
        raise CalibrationError(f"delta must be a positive number of FLOPs per env step, got {delta}")
    grid: Grid = load_grid(grid_file) if grid_file else preset(preset_name)
    grid = grid.with_overrides(steps=steps, n_seeds=seeds)
    out = Path(out_dir)
    prepare_out_dir(out, grid, env_id)
    dev_name = "cpu" if dev.type == "cpu" else "cuda"

    def params_of(width: int) -> int:
        return bronet_params(width, obs_dim + act_dim, quantiles=grid.quantiles)

    # Stage 1: batch x utd at the anchor width, batch x width at the anchor utd.
    units1 = stage1_units(grid)
    say(f"stage 1: {len(units1)} populations (batch x utd, batch x width) on {env_id}, {dev_name}")
    run_units(env_id, grid, units1, out, device=dev_name, backend=backend, n_jobs=n_jobs,
              quiet=quiet, echo=echo)
    runs1 = _read(out, "s1_", env_id)
    targets1 = choose_targets(runs1)
    tables = tables_by_batch(runs1, targets1, n_boot)
    utd, params, best = best_batch_sizes(tables)
    coef_b, b_err = fit_batch_law(utd, params, best)
    say(f"B~ fitted on {len(utd)} configs: a_B={coef_b[0]:.4g} alpha_B={coef_b[1]:.3g} "
        f"b_B={coef_b[2]:.3g} beta_B={coef_b[3]:.3g} (mean relative error {100 * b_err:.0f}%)")

    def batch_of(u: float, w: int) -> int:
        return round_batch_size(float(advisor.laws.batch_size(u, params_of(w), *coef_b)))

    # Stage 2: utd x width at the fitted batch size.
    units2 = stage2_units(grid, batch_of)
    say(f"stage 2: {len(units2)} populations (utd x width at the fitted batch size)")
    run_units(env_id, grid, units2, out, device=dev_name, backend=backend, n_jobs=n_jobs,
              quiet=quiet, echo=echo)
    runs2 = _read(out, "s2_", env_id)
    if len({(r.utd, r.params) for r in runs2}) < min_configs:
        raise CalibrationError(f"only {len(runs2)} finished stage-2 configurations; at least "
                               f"{min_configs} are needed to fit D_J")
    targets = choose_targets(runs2)
    table = data_table(runs2, targets, n_boot=n_boot, step_limit=grid.steps)
    manifests = [json.loads(p.read_text())["manifest"] for p in sorted((out / "units").glob("*.json"))]
    device_names = sorted({m["device_name"] for m in manifests})
    arch = Architecture(
        description=(f"BroNet double critic (this project's learner), 2 residual blocks, "
                     f"{grid.quantiles} quantiles, input {obs_dim + act_dim}"),
        coefficients=bronet_params_coefficients(obs_dim + act_dim, quantiles=grid.quantiles),
        width_multiple=16 if max(grid.widths) < 256 else 64)
    batch = BatchSizeLaw(kind="law", source="fitted", a_b=float(coef_b[0]),
                         alpha_b=float(coef_b[1]), b_b=float(coef_b[2]), beta_b=float(coef_b[3]),
                         relative_error=b_err)
    command = command or _command(env_id, algorithm, preset_name, grid_file, steps, seeds,
                                  device, out_dir, fit_out, delta, n_boot, prior)
    notes = [
        f"grid {grid.name} ({grid.digest()}): steps {grid.steps}, seeds {grid.seeds}, "
        f"batch sizes {grid.batch_sizes}, utds {grid.utds}, widths {grid.widths}, anchor width "
        f"{grid.anchor_width}, anchor utd {grid.anchor_utd}, quantiles {grid.quantiles}",
        f"trained on {', '.join(device_names)} ({dev_name}); torch "
        f"{manifests[0]['versions'].get('torch')}, gymnasium {manifests[0]['versions'].get('gymnasium')}",
        f"thresholds {targets[0]:.4g}-{targets[-1]:.4g} chosen from the data (calibration.calibrate)",
        f"delta {delta:g} FLOPs per env step is a default for simulated tasks; pass --delta",
    ]
    fit, _, _ = make_fit_file(
        table, fit_id=f"{algorithm}/{env_id}", batch=batch, arch=arch, delta=delta,
        provenance=Provenance(source=f"advisor calibrate runs in {out}", command=command,
                              project_version=advisor.__version__,
                              method=DEFAULT_METHOD.describe(), notes=notes),
        n_boot=n_boot, created=_dt.date.today().isoformat(), prior=prior)
    path = Path(fit_out) if fit_out else out / f"{algorithm}-{env_id}.json"
    write_fit_file(fit, path)
    g = fit.goodness_of_fit
    say(f"wrote {path}: leave-one-config-out error {100 * g.leave_one_config_out:.1f}% over "
        f"{g.n_configs} configs")
    return path


def _command(env_id, algorithm, preset_name, grid_file, steps, seeds, device, out_dir, fit_out,
             delta, n_boot, prior=None) -> str:
    """The `advisor calibrate` command line equivalent to a Python call (the CLI records its own
    parsed parameters instead)."""
    import shlex

    parts = ["advisor calibrate --env", shlex.quote(env_id), "--algorithm", shlex.quote(algorithm)]
    parts += (["--grid", shlex.quote(str(grid_file))] if grid_file
              else ["--preset", shlex.quote(preset_name)])
    parts += ["--steps", str(steps)] if steps else []
    parts += ["--seeds", str(seeds)] if seeds else []
    parts += ["--device", device, "--out-dir", shlex.quote(str(out_dir))]
    parts += ["--fit-out", shlex.quote(str(fit_out))] if fit_out else []
    parts += ["--delta", repr(float(delta)), "--n-boot", str(n_boot)]
    if prior is not None:
        specs = (prior.family,) if prior.family else tuple(prior.ids)
        parts += [f"--prior {shlex.quote(p)}" for p in specs]
    return " ".join(parts)


def _read(out: Path, prefix: str, env_id: str) -> list[Run]:
    runs = []
    for unit_dir in sorted((out / "runs").glob(f"{prefix}*")):
        if (out / "units" / f"{unit_dir.name}.json").exists():
            runs += read_runs(unit_dir, env=env_id)
    if not runs:
        raise CalibrationError(f"no finished {prefix[:2]} units under {out}; nothing to fit")
    return runs
