"""Best batch sizes from a batch x utd x params grid, and the B~ law (paper A Eq. 6.1)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from advisor import laws
from calibration.archives import Run
from calibration.curves import DataTable, data_table


def tables_by_batch(runs: list[Run], targets: np.ndarray, n_boot: int, seed: int = 0
                    ) -> dict[float, DataTable]:
    """One data-to-target table per batch size, each over the same (utd, params) configs in the
    same order; a batch size that misses a config raises a one-line error."""
    from calibration.archives import ArchiveError

    configs = sorted({(r.utd, r.params) for r in runs})
    tables = {}
    for b in sorted({r.batch_size for r in runs}):
        by_cfg = {(r.utd, r.params): r for r in runs if r.batch_size == b}
        missing = [c for c in configs if c not in by_cfg]
        if missing:
            raise ArchiveError(f"batch size {b:g} has no run at utd {missing[0][0]:g}, params "
                               f"{missing[0][1]:.4g}: a batch grid needs every (utd, params) at "
                               "every batch size")
        tables[b] = data_table([by_cfg[c] for c in configs], targets, n_boot, seed)
    return tables


def best_batch_sizes(tables: dict[float, DataTable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (utd, params), the mean over bootstrap resamples of the batch size with the least data.

    `tables` maps batch size -> DataTable over the same configs and targets. A resample scores
    each batch by its mean log D over thresholds, unreached thresholds counted as twice the
    horizon. Returns (utd, params, best batch) arrays over configs.
    """
    batches = np.array(sorted(tables))
    first = tables[batches[0]]
    scores = []
    for b in batches:
        t = tables[b]
        if not (np.array_equal(t.utd, first.utd) and np.array_equal(t.params, first.params)):
            raise ValueError("batch-size tables must cover the same (utd, params) configs")
        reps = t.boot if t.boot.shape[0] else t.data[None]  # no resamples: the seed mean alone
        boot = np.where(np.isfinite(reps), reps, 2.0 * t.horizon[None, :, None])
        scores.append(np.log(boot).mean(axis=2))  # (R, n)
    best = batches[np.argmin(np.stack(scores), axis=0)]  # (R, n)
    return first.utd, first.params, best.mean(axis=0)


#: Bounds of the B~ fit (fit_batch_law) on alpha_B and beta_B; a fit at one says the grid did
#: not pin that exponent down (calibration.checks).
ALPHA_B_BOUNDS = (0.0, 3.0)
BETA_B_BOUNDS = (0.0, 15.0)


def fit_batch_law(utd: np.ndarray, params: np.ndarray, best: np.ndarray
                  ) -> tuple[np.ndarray, float]:
    """Fit (a_B, alpha_B, b_B, beta_B) in log space; returns them and the mean relative error."""
    ls, ln, y = np.log(utd), np.log(params), np.log(best)
    n_ref = np.exp(ln.mean())

    def resid(t):
        log_a, alpha, log_bn, beta = t  # b_B N^-beta = exp(log_bn) (N / n_ref)^-beta
        return log_a - alpha * ls - np.logaddexp(0.0, log_bn - beta * (ln - np.log(n_ref))) - y

    best_fit = None
    for alpha0, beta0, lbn0 in [(0.3, 0.5, 0.0), (0.1, 2.0, -2.0), (0.5, 1.0, 2.0)]:
        res = least_squares(resid, [y.mean() + 0.5, alpha0, lbn0, beta0],
                            bounds=([-20, ALPHA_B_BOUNDS[0], -30, BETA_B_BOUNDS[0]],
                                    [30, ALPHA_B_BOUNDS[1], 30, BETA_B_BOUNDS[1]]),
                            method="trf")
        if best_fit is None or res.cost < best_fit.cost:
            best_fit = res
    log_a, alpha, log_bn, beta = best_fit.x
    b_b = float(np.exp(log_bn + beta * np.log(n_ref)))
    coef = np.array([np.exp(log_a), alpha, b_b, beta])
    pred = laws.batch_size(utd, params, *coef)
    return coef, float(np.mean(np.abs(pred - best) / best))
