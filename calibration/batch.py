"""Best batch sizes from a batch x utd x params grid, and the B~ law (paper A Eq. 6.1)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from advisor import laws
from advisor.fitfile import BatchSizeLaw
from calibration.archives import Run
from calibration.curves import DataTable, data_table


def tables_by_batch(runs: list[Run], targets: np.ndarray, n_boot: int, seed: int = 0,
                    step_limit: float | None = None) -> dict[float, DataTable]:
    """One data-to-target table per batch size, each over the same (utd, params) configs in the
    same order (curves cut at `step_limit`, as data_table cuts them); a batch size that misses
    a config raises a one-line error."""
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
        tables[b] = data_table([by_cfg[c] for c in configs], targets, n_boot, seed,
                               step_limit=step_limit)
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


#: Bounds of the B~ fit (fit_batch_law) on alpha_B and beta_B; a fit at the upper one says the
#: grid did not pin that exponent down (calibration.checks). At the lower one, 0, B~ does not
#: fall with that input: the law's form allows no rise.
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
    # An exponent at its lower bound comes back as ~1e-20: B~ does not depend on that input.
    alpha, beta = (0.0 if x < 1e-9 else x for x in (alpha, beta))
    coef = np.array([np.exp(log_a), alpha, b_b, beta])
    pred = laws.batch_size(utd, params, *coef)
    return coef, float(np.mean(np.abs(pred - best) / best))


#: runs_batch_law: fewest configs, and most mean relative error, of a B~ fitted to the batch
#: sizes the runs used (four coefficients; paper A's fitted_bs runs: 0.6-4.9%).
MIN_RUNS_BATCH_CONFIGS = 5
MAX_RUNS_BATCH_ERROR = 0.15


def own_batch_sizes(runs: list[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(utd, params, batch size) per config, sorted, where every (utd, params) ran at one batch
    size and they differ between configs (each config at its own best batch); else None."""
    by_cfg: dict[tuple[float, float], set[float]] = {}
    for r in runs:
        by_cfg.setdefault((r.utd, r.params), set()).add(r.batch_size)
    if any(len(b) != 1 for b in by_cfg.values()) or len({*map(min, by_cfg.values())}) < 2:
        return None
    keys = sorted(by_cfg)
    return (np.array([k[0] for k in keys]), np.array([k[1] for k in keys]),
            np.array([min(by_cfg[k]) for k in keys]))


def runs_batch_law(runs: list[Run]) -> tuple[BatchSizeLaw, str] | None:
    """B~ fitted to the batch sizes the runs used, one per (utd, params), with the note that
    says so; None unless every config has one batch size and they differ between configs.
    ValueError (one line) where those batch sizes cannot make a law: too few configs, one utd
    or one params only, or not following Eq. 6.1 (mean relative error above
    MAX_RUNS_BATCH_ERROR).

    Paper A's BRO runs (fitted_bs.zip) each ran at the "fitted best batch size" of their
    (utd, params): the batch sizes of the archive are a law's outputs, and D_J was measured
    at them, so the B~ that goes with the archive's D_J law is the one that reproduces them."""
    each = own_batch_sizes(runs)
    if each is None:
        return None
    utd, params, used = each
    keys = list(zip(utd, params))
    what = (f"the runs use batch sizes {used.min():g}-{used.max():g}, one per (utd, params), "
            "so B~ must be the law they follow")
    # alpha_B and beta_B apart: two utd at one params, and two params at one utd (not a diagonal)
    crossed = (any(np.sum(params == n) > 1 for n in set(params))
               and any(np.sum(utd == u) > 1 for u in set(utd)))
    if len(keys) < MIN_RUNS_BATCH_CONFIGS or not crossed:
        raise ValueError(f"{what}, but {len(keys)} configs over {len(set(utd))} utd and "
                         f"{len(set(params))} params values cannot fit it: it needs at least "
                         f"{MIN_RUNS_BATCH_CONFIGS} configs, with 2 or more utd at one params and "
                         "2 or more params at one utd, also for a few-shot fit (--prior carries "
                         "no B~); or one batch size for every run")
    coef, relerr = fit_batch_law(utd, params, used)
    if relerr > MAX_RUNS_BATCH_ERROR:
        raise ValueError(f"{what}, but Eq. 6.1 fits them with {100 * relerr:.0f}% mean relative "
                         f"error (at most {100 * MAX_RUNS_BATCH_ERROR:g}%): D_J cannot be told "
                         "apart from the batch size's effect; run every config at one batch "
                         "size, or each at B~ of one law")
    law = BatchSizeLaw(kind="law", source="fitted", a_b=coef[0], alpha_b=coef[1], b_b=coef[2],
                       beta_b=coef[3], relative_error=relerr)
    note = (f"B~ is Eq. 6.1 fitted to the batch size each config's runs used ({len(keys)} "
            f"configs, {used.min():g}-{used.max():g}; mean relative error "
            f"{100 * relerr:.1f}%): D_J was measured at those batch sizes, so they are the "
            "ones its laws hold for.")
    if coef[1] == 0.0:
        note += " alpha_B is 0: those batch sizes do not fall with utd."
    return law, note


def published_batch_note(runs: list[Run], published: tuple[float, float, float, float]) -> str:
    """How far paper A's published B~ coefficients are from the batch sizes the runs used."""
    by_cfg = {(r.utd, r.params): r.batch_size for r in runs}
    utd, params, used = (np.array(v, dtype=float) for v in zip(*((u, n, b) for (u, n), b
                                                                    in sorted(by_cfg.items()))))
    pub = laws.batch_size(utd, params, *published)
    a_b, alpha_b, b_b, beta_b = published
    return (f"Paper A's published B~ coefficients (Appendix D.1: a_B {a_b:g}, alpha_B "
            f"{alpha_b:g}, b_B {b_b:g}, beta_B {beta_b:g}) give {np.min(pub / used):.2g}x-"
            f"{np.max(pub / used):.2g}x these batch sizes (mean relative error "
            f"{100 * np.mean(np.abs(pub / used - 1)):.0f}%); this fit does not use them.")


def batch_residuals(fit, runs: list[Run]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Of a batch grid's runs (every (utd, params) at every batch size) against `fit`
    (advisor.Fit), at every threshold: log(D_observed / D_predicted at B~), log(B / B~) of the
    run's batch size, the index of the threshold in fit.thresholds, and whether the run never
    reached it (then the residual is log(horizon / D_predicted), a lower bound: right-censored);
    flat arrays of the same length."""
    res, far, which, cens = [], [], [], []
    for b, t in tables_by_batch(runs, fit.thresholds, 0).items():
        pred = np.array([fit.data_to_target(t.utd, t.params, j) for j in fit.thresholds]).T
        censored = ~np.isfinite(t.data)
        seen = np.where(censored, np.asarray(t.horizon, float)[:, None], t.data)
        r = np.log(seen / pred)
        d = np.broadcast_to(np.log(b / np.asarray(fit.batch_size(t.utd, t.params)))[:, None],
                            r.shape)
        ok = np.isfinite(r)
        res.append(r[ok])
        far.append(d[ok])
        which.append(np.broadcast_to(np.arange(r.shape[1]), r.shape)[ok])
        cens.append(censored[ok])
    return tuple(np.concatenate(x) for x in (res, far, which, cens))


def interval_hits(residual: np.ndarray, censored: np.ndarray, low: np.ndarray,
                  high: np.ndarray) -> np.ndarray:
    """Per residual: 1 inside [low, high], 0 outside, NaN where it cannot be told (a run that
    stopped before reaching the threshold, and before the interval's upper end). A censored
    residual is a lower bound: past `high` it is a miss."""
    inside = ((residual >= low) & (residual <= high)).astype(float)
    return np.where(censored, np.where(residual > high, 0.0, np.nan), inside)


def off_batch_slope(residual: np.ndarray, log_ratio: np.ndarray,
                    free: float = laws.OFF_BATCH_FREE) -> float:
    """Least-squares slope, through the origin, of `residual` (log D_observed / D_predicted
    at B~) on max(0, |log(B / B~)| - log(free)): the data a run pays per unit of log distance
    from B~ beyond `free` times it (advisor.laws.OFF_BATCH_SLOPE)."""
    x = np.maximum(np.abs(log_ratio) - np.log(free), 0.0)
    if not np.any(x > 0):
        raise ValueError("no run lies beyond the free band around B~: nothing to fit a slope to")
    return float(np.sum(x * residual) / np.sum(x * x))
