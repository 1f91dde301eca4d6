"""Learning curves -> data-to-target tables: isotonic curves, thresholds, crossings, bootstrap.

Reference recipe (reference.md, steps 1-5): truncate at the env's step limit; mean over seeds;
increasing isotonic regression of mean return against env step; D_J = first logged step whose
isotonic value is >= J (no interpolation), NaN if never reached; bootstrap over seed columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from advisor.errors import AdvisorError
from calibration.archives import Run
from calibration.catalogue import DEFAULT_STEP_LIMIT, STEP_LIMITS

N_THRESHOLDS = 20


class CurveError(AdvisorError):
    """Runs that give no usable learning curve (nothing logged within the step limit)."""


def thresholds(j_min: float, j_max: float, n: int = N_THRESHOLDS) -> np.ndarray:
    """`n` return thresholds evenly spaced in [j_min, j_max] (reference recipe step 4)."""
    return np.linspace(j_min, j_max, n)


def isotonic_curve(mean_return: np.ndarray) -> np.ndarray:
    """Increasing isotonic regression of a mean-return curve (reference recipe step 2)."""
    return isotonic_regression(mean_return, increasing=True).x


def crossings(steps: np.ndarray, curve: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """First logged step whose (monotone) curve value is >= each target; NaN if never."""
    idx = np.searchsorted(curve, targets, side="left")  # curve is non-decreasing
    out = np.full(len(targets), np.nan)
    ok = idx < len(curve)
    out[ok] = steps[idx[ok]]
    return out


def seed_mean(values: np.ndarray) -> np.ndarray:
    """Mean over seed columns (T, S) -> (T,) of the finite values; NaN where no seed has one
    (without numpy's empty-slice warnings)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def curve_crossings(steps: np.ndarray, mean_return: np.ndarray, targets: np.ndarray
                    ) -> np.ndarray:
    """D_J of one mean-return curve: isotonic regression from its first finite value on (steps
    before it were not evaluated: no target is reached there), then first crossings. An all-NaN
    curve reaches no target."""
    finite = np.flatnonzero(np.isfinite(mean_return))
    if not len(finite):
        return np.full(len(targets), np.nan)
    k = finite[0]
    tail = mean_return[k:]
    if not np.isfinite(tail).all():  # gaps after the first value: carry the last value forward
        tail = _forward_fill(tail[:, None])[:, 0]
    return crossings(steps[k:], isotonic_curve(tail), targets)


@dataclass
class DataTable:
    """D_J over configurations and thresholds, with bootstrap replicates.

    data[i, j]: env steps for config i to reach targets[j] (NaN: not reached by `horizon[i]`).
    boot[r, i, j]: the same on bootstrap resample r of the seed columns.
    seed_data[i, s, j]: the same on seed s's own curve (inf: not reached by `horizon[i]`; NaN:
    no seed s, as configs with fewer seeds are padded); None where not computed, or where the
    runs hold no single seed's curve.
    seeds_per_column: each curve column (`n_seeds` of them) is the mean of this many seeds
    (SimbaV2's archive: 5); then there is no seed_data.
    """

    env: str
    utd: np.ndarray
    params: np.ndarray
    batch_size: np.ndarray
    targets: np.ndarray
    horizon: np.ndarray
    data: np.ndarray
    boot: np.ndarray
    n_seeds: np.ndarray
    seed_data: np.ndarray | None = None
    seeds_per_column: int = 1

    def rows(self, keep: np.ndarray) -> DataTable:
        """The table of configurations `keep` (a bool mask or indices) only."""
        return DataTable(self.env, self.utd[keep], self.params[keep], self.batch_size[keep],
                         self.targets, self.horizon[keep], self.data[keep], self.boot[:, keep],
                         self.n_seeds[keep],
                         None if self.seed_data is None else self.seed_data[keep],
                         self.seeds_per_column)


def truncate(run: Run, step_limit: float, metric: str = "return") -> tuple[np.ndarray, np.ndarray]:
    steps, values = run.steps[metric], run.values[metric]
    keep = steps <= step_limit
    return steps[keep], values[keep]


def data_table(
    runs: list[Run], targets: np.ndarray, n_boot: int = 100, seed: int = 0,
    step_limit: float | None = None,
) -> DataTable:
    """Data-to-target table of `runs` (one env) at `targets`, with `n_boot` seed resamples."""
    envs = {r.env for r in runs}
    if len(envs) != 1:
        raise ValueError(f"data_table needs runs of one env, got {sorted(envs)}")
    env = envs.pop()
    limit = step_limit if step_limit is not None else STEP_LIMITS.get(env, DEFAULT_STEP_LIMIT)
    rng = np.random.default_rng(seed)
    n, m = len(runs), len(targets)
    data = np.full((n, m), np.nan)
    boot = np.full((n_boot, n, m), np.nan)
    horizon = np.zeros(n)
    per_column = max((r.seeds_per_column for r in runs), default=1)
    seed_data = np.full((n, max((r.n_seeds for r in runs), default=0), m), np.nan)
    n_seeds = np.zeros(n, int)  # those with a finite return: a diverged one is all NaN
    for i, run in enumerate(runs):
        steps, values = truncate(run, limit)
        if not len(steps):
            raise CurveError(f"the run at utd {run.utd:g}, params {run.params:.4g}, batch size "
                             f"{run.batch_size:g} on {env} has no logged step within the step "
                             f"limit {limit:g}")
        values = _forward_fill(values)
        n_seeds[i] = int(np.isfinite(values).any(axis=0).sum())
        horizon[i] = steps[-1]
        data[i] = curve_crossings(steps, seed_mean(values), targets)
        s = values.shape[1]
        for k in range(s if per_column == 1 else 0):  # no single seed's curve otherwise
            if np.isfinite(values[:, k]).any():  # inf: this seed did not reach it by horizon
                d = curve_crossings(steps, values[:, k], targets)
                seed_data[i, k] = np.where(np.isnan(d), np.inf, d)
        cols = rng.integers(0, s, size=(n_boot, s))
        means = seed_mean(values[:, cols]).T  # (n_boot, T)
        for r in range(n_boot):
            boot[r, i] = curve_crossings(steps, means[r], targets)
    return DataTable(env, np.array([r.utd for r in runs]), np.array([r.params for r in runs]),
                     np.array([r.batch_size for r in runs]), np.asarray(targets, float), horizon,
                     data, boot, n_seeds, seed_data if per_column == 1 else None, per_column)


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Seeds that stopped early are forward-filled (the archives do it; our own logs may not)."""
    if not np.isnan(values).any():
        return values
    out = values.copy()
    for t in range(1, len(out)):
        gap = np.isnan(out[t])
        out[t, gap] = out[t - 1, gap]
    return out
