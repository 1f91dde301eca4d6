"""Data-to-target tables -> fitted laws.

The law (paper A Eq. 7.1) at threshold j is fitted in log space:
    log D_ij = log(d_min_j + (a_j/utd_i)^alpha_j + (b_j/params_i)^beta_j)
written, with centred inputs s = log utd - mean, n = log params - mean and a data scale S, as
    log(D/S) = logsumexp(c0_j, c1_j - alpha_j s, c2_j - beta_j n),
so residuals and Jacobian are a few vectorised numpy lines and one trust-region least-squares
problem fits every threshold at once. Options beyond the reference recipe (chosen by
leave-one-config-out error):
- `shared_exponents`: one (alpha, beta) for all thresholds of a task (pooling across thresholds);
- `smoothness`: a penalty on second differences of (c0, c1, c2) across thresholds;
- `censored`: configs that never reach J still say D_J > horizon (a one-sided squared hinge);
- `weighted`: weights 1/(bootstrap variance of log D + floor), normalised to mean 1.
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from calibration.curves import DataTable

ALPHA_BOUNDS = (0.05, 8.0)
C_BOUNDS = (-25.0, 25.0)


@dataclass(frozen=True)
class Method:
    """How to fit D_J. The reference recipe is Method(False, 0.0, False, False)."""

    shared_exponents: bool = True
    smoothness: float = 0.0
    censored: bool = True
    weighted: bool = False
    var_floor: float = 0.01

    def describe(self) -> str:
        parts = ["mean squared log error, trust-region least squares, multi-start"]
        parts.append("exponents shared across thresholds" if self.shared_exponents
                     else "exponents per threshold")
        if self.smoothness:
            parts.append(f"second-difference smoothness {self.smoothness:g} across thresholds")
        if self.censored:
            parts.append("unreached thresholds as right-censored hinge")
        if self.weighted:
            parts.append(f"weights 1/(bootstrap var of log D + {self.var_floor:g})")
        return "; ".join(parts)


REFERENCE = Method(shared_exponents=False, smoothness=0.0, censored=False, weighted=False)


@dataclass
class Problem:
    """Arrays of one fit: configs x thresholds in centred log space."""

    s: np.ndarray  # (n,)
    n: np.ndarray  # (n,)
    y: np.ndarray  # (n, m) log(D / scale); NaN where unobserved
    w: np.ndarray  # (n, m) weights of observed points, 0 elsewhere
    cens: np.ndarray  # (n, m) log(horizon / scale) where censored, NaN elsewhere
    log_scale: float
    s_mean: float
    n_mean: float


def _problem(utd, params, data, horizon, weights, log_scale=None, s_mean=None, n_mean=None):
    ls, ln = np.log(utd), np.log(params)
    s_mean = ls.mean() if s_mean is None else s_mean
    n_mean = ln.mean() if n_mean is None else n_mean
    log_scale = np.nanmean(np.log(data)) if log_scale is None else log_scale
    obs = np.isfinite(data)
    y = np.where(obs, np.log(np.where(obs, data, 1.0)) - log_scale, np.nan)
    w = np.where(obs, weights, 0.0)
    cens = np.where(~obs, (np.log(horizon) - log_scale)[:, None], np.nan)
    return Problem(ls - s_mean, ln - n_mean, y, w, cens, log_scale, s_mean, n_mean)


def _unpack(theta: np.ndarray, m: int, shared: bool):
    c = theta[: 3 * m].reshape(m, 3)
    if shared:
        alpha = np.full(m, theta[3 * m])
        beta = np.full(m, theta[3 * m + 1])
    else:
        alpha, beta = theta[3 * m: 4 * m], theta[4 * m: 5 * m]
    return c, alpha, beta


def _predict(c, alpha, beta, s, n):
    """log(D/scale) (n, m) and the softmax weights of the three terms."""
    z = np.stack([np.broadcast_to(c[:, 0], (len(s), len(c))),
                  c[:, 1] - s[:, None] * alpha, c[:, 2] - n[:, None] * beta])
    zmax = z.max(axis=0)
    e = np.exp(z - zmax)
    tot = e.sum(axis=0)
    return zmax + np.log(tot), e / tot


def _residuals(theta, prob: Problem, method: Method, jac: bool = False):
    """Residual vector (and Jacobian) whose sum of squares is the loss:
    sqrt(w/W) (pred - y) at observed points, max(0, horizon - pred)/sqrt(W) at censored points,
    sqrt(smoothness) * second differences of c across thresholds."""
    n_cfg, m = prob.y.shape
    shared = method.shared_exponents
    c, alpha, beta = _unpack(theta, m, shared)
    pred, p = _predict(c, alpha, beta, prob.s, prob.n)
    wsum = prob.w.sum()
    obs = prob.w > 0
    sw = np.sqrt(prob.w[obs] / wsum)
    parts = [sw * (pred[obs] - prob.y[obs])]
    cens = np.isfinite(prob.cens) & method.censored
    short = np.maximum(0.0, prob.cens[cens] - pred[cens]) / np.sqrt(wsum)
    parts.append(short)
    smooth = method.smoothness > 0 and m >= 3
    if smooth:
        d2 = (c[2:] - 2 * c[1:-1] + c[:-2]).ravel()
        parts.append(np.sqrt(method.smoothness) * d2)
    r = np.concatenate(parts)
    if not jac:
        return r
    n_par = len(theta)
    # d pred_ij / d theta, laid out (n_cfg, m, n_par), then picked at observed/censored points.
    dp = np.zeros((n_cfg, m, n_par))
    jj = np.arange(m)
    for k in range(3):
        dp[:, jj, 3 * jj + k] = p[k]
    if shared:
        dp[:, :, 3 * m] = -p[1] * prob.s[:, None]
        dp[:, :, 3 * m + 1] = -p[2] * prob.n[:, None]
    else:
        dp[:, jj, 3 * m + jj] = -p[1] * prob.s[:, None]
        dp[:, jj, 4 * m + jj] = -p[2] * prob.n[:, None]
    rows = [sw[:, None] * dp[obs]]
    active = (short > 0)[:, None]
    rows.append(np.where(active, -dp[cens] / np.sqrt(wsum), 0.0))
    if smooth:
        js = np.zeros((m - 2, 3, n_par))
        for k in range(3):
            idx = np.arange(m - 2)
            js[idx, k, 3 * idx + k] += 1.0
            js[idx, k, 3 * (idx + 1) + k] -= 2.0
            js[idx, k, 3 * (idx + 2) + k] += 1.0
        rows.append(np.sqrt(method.smoothness) * js.reshape(-1, n_par))
    return r, np.concatenate(rows)


def _loss(theta, prob: Problem, method: Method) -> float:
    r = _residuals(theta, prob, method)
    return float(r @ r)


def _bounds(m: int, shared: bool):
    k = 2 if shared else 2 * m
    return [C_BOUNDS] * (3 * m) + [ALPHA_BOUNDS] * k


def _starts(prob: Problem, shared: bool):
    m = prob.y.shape[1]
    # Lowest observed log D per threshold; 0 where no config reached it (no nanmin warning).
    ymin = np.where(np.isfinite(prob.y), prob.y, np.inf).min(axis=0)
    ymin = np.where(np.isfinite(ymin), ymin, 0.0)
    for a0, b0 in [(0.5, 0.5), (1.5, 0.5), (0.5, 1.5), (1.5, 1.5)]:
        c = np.stack([ymin - 0.7, ymin - 1.5, ymin - 1.0], axis=1)
        k = 1 if shared else m
        yield np.concatenate([c.ravel(), np.full(k, a0), np.full(k, b0)])


def _solve(prob: Problem, method: Method, x0s) -> tuple[np.ndarray, float]:
    """Trust-region least squares (Gauss-Newton steps converge in tens of iterations)."""
    m = prob.y.shape[1]
    lo, hi = np.array(_bounds(m, method.shared_exponents)).T
    best = (None, np.inf)
    for x0 in x0s:
        res = least_squares(
            lambda t: _residuals(t, prob, method), np.clip(x0, lo, hi),
            jac=lambda t: _residuals(t, prob, method, jac=True)[1],
            bounds=(lo, hi), method="trf", x_scale="jac", ftol=1e-9, xtol=1e-9, gtol=1e-9,
            max_nfev=400,
        )
        loss = float(res.fun @ res.fun)
        if loss < best[1]:
            best = (res.x, loss)
    return best


@dataclass
class LawFit:
    """Fitted D_J laws: coef[j] = (d_min, a, alpha, b, beta) at targets[j]."""

    targets: np.ndarray
    coef: np.ndarray
    theta: np.ndarray
    method: Method

    def predict(self, utd, params) -> np.ndarray:
        """(len(utd), m) predicted env steps."""
        d, a, al, b, be = (self.coef[:, k] for k in range(5))
        utd = np.asarray(utd, float)[:, None]
        params = np.asarray(params, float)[:, None]
        return d + (a / utd) ** al + (b / params) ** be


def _to_coef(theta, prob: Problem, method: Method, m: int) -> np.ndarray:
    c, alpha, beta = _unpack(theta, m, method.shared_exponents)
    d_min = np.exp(prob.log_scale + c[:, 0])
    log_a = (prob.log_scale + c[:, 1]) / alpha + prob.s_mean
    log_b = (prob.log_scale + c[:, 2]) / beta + prob.n_mean
    return np.stack([d_min, np.exp(log_a), alpha, np.exp(log_b), beta], axis=1)


def _weights(table: DataTable, method: Method, data: np.ndarray) -> np.ndarray:
    if not method.weighted:
        return np.ones_like(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.nanvar(np.log(table.boot), axis=0)
    var = np.where(np.isfinite(var), var, np.nanmedian(var))
    w = 1.0 / (var + method.var_floor)
    return w / w[np.isfinite(data)].mean()


def fit_laws(table: DataTable, method: Method = Method(), data: np.ndarray | None = None,
             keep: np.ndarray | None = None, warm: LawFit | None = None,
             starts: int | None = None) -> LawFit:
    """Fit D_J at every threshold of `table` (optionally on rows `keep`, or on replacement
    `data` such as a bootstrap replicate). `warm` adds a start from an earlier fit."""
    data = table.data if data is None else data
    keep = np.ones(len(data), bool) if keep is None else keep
    if not method.shared_exponents and not method.smoothness and data.shape[1] > 1:
        # Separable: one small problem per threshold is far faster than one large one.
        parts = []
        for j in range(data.shape[1]):
            sub = DataTable(table.env, table.utd, table.params, table.batch_size,
                            table.targets[j:j + 1], table.horizon, table.data[:, j:j + 1],
                            table.boot[:, :, j:j + 1], table.n_seeds)
            w = None if warm is None else LawFit(warm.targets[j:j + 1], warm.coef[j:j + 1],
                                                 warm.theta, warm.method)
            parts.append(fit_laws(sub, method, data=data[:, j:j + 1], keep=keep, warm=w,
                                  starts=starts))
        return LawFit(table.targets, np.concatenate([p.coef for p in parts]),
                      np.concatenate([p.theta for p in parts]), method)
    weights = _weights(table, method, data)
    prob = _problem(table.utd[keep], table.params[keep], data[keep], table.horizon[keep],
                    weights[keep])
    m = data.shape[1]
    if warm is not None:
        x0s = [_from_coef(warm.coef, prob, method)]
    else:
        x0s = list(_starts(prob, method.shared_exponents))[:starts]
    theta, _ = _solve(prob, method, x0s)
    return LawFit(table.targets, _to_coef(theta, prob, method, m), theta, method)


def _from_coef(coef: np.ndarray, prob: Problem, method: Method) -> np.ndarray:
    """Initial theta (in `prob`'s centring) from law coefficients."""
    d, a, al, b, be = (coef[:, k] for k in range(5))
    c0 = np.log(np.maximum(d, 1e-300)) - prob.log_scale
    c1 = al * (np.log(a) - prob.s_mean) - prob.log_scale
    c2 = be * (np.log(b) - prob.n_mean) - prob.log_scale
    c = np.clip(np.stack([c0, c1, c2], axis=1), *C_BOUNDS)
    if method.shared_exponents:
        ex = [np.clip(al.mean(), *ALPHA_BOUNDS), np.clip(be.mean(), *ALPHA_BOUNDS)]
    else:
        ex = list(np.clip(al, *ALPHA_BOUNDS)) + list(np.clip(be, *ALPHA_BOUNDS))
    return np.concatenate([c.ravel(), ex])


def relative_errors(pred: np.ndarray, data: np.ndarray) -> np.ndarray:
    """|pred - data| / data at observed points (flattened)."""
    obs = np.isfinite(data)
    return np.abs(pred[obs] - data[obs]) / data[obs]


def leave_one_config_out(table: DataTable, method: Method, full: LawFit | None = None
                         ) -> np.ndarray:
    """(n, m) predictions of each config from a fit on all the others."""
    full = full or fit_laws(table, method)
    n = len(table.utd)
    out = np.full(table.data.shape, np.nan)
    for i in range(n):
        keep = np.arange(n) != i
        # Two starts per fold: from the full fit, and the first default start.
        cold = fit_laws(table, method, keep=keep, starts=1)
        warm = fit_laws(table, method, keep=keep, warm=full)
        best = min((cold, warm), key=lambda f: _objective(f, table, method, keep))
        out[i] = best.predict(table.utd[i:i + 1], table.params[i:i + 1])[0]
    return out


def _objective(fit: LawFit, table: DataTable, method: Method, keep: np.ndarray) -> float:
    prob = _problem(table.utd[keep], table.params[keep], table.data[keep], table.horizon[keep],
                    _weights(table, method, table.data)[keep])
    return _loss(_from_coef(fit.coef, prob, method), prob, method)


def loglinear_leave_one_config_out(table: DataTable) -> np.ndarray:
    """Baseline: log D = k0 + k1 log utd + k2 log params per threshold, leave-one-config-out."""
    n, m = table.data.shape
    X = np.column_stack([np.ones(n), np.log(table.utd), np.log(table.params)])
    out = np.full((n, m), np.nan)
    for i in range(n):
        for j in range(m):
            rows = np.isfinite(table.data[:, j]) & (np.arange(n) != i)
            if rows.sum() < 4:
                continue
            k, *_ = np.linalg.lstsq(X[rows], np.log(table.data[rows, j]), rcond=None)
            out[i, j] = np.exp(X[i] @ k)
    return out


#: Where bootstrap refits say how far they are (set by `reporting`; None: silent).
_PROGRESS: ContextVar = ContextVar("bootstrap_progress", default=None)


@contextlib.contextmanager
def reporting(echo, every_s: float = 15.0):
    """Within the block, bootstrap refits (the long part of a fit at a large --n-boot) echo a
    line on how far they are, at most every `every_s` seconds: nothing for a quicker fit."""
    start = last = time.monotonic()

    def say(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every_s and done < total:
            last = now
            left = (now - start) / done * (total - done)
            echo(f"fitting: bootstrap refit {done:,} of {total:,}, about {left:.0f} s left")

    token = _PROGRESS.set(say)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def bootstrap_progress(done: int, total: int) -> None:
    """Tell `reporting`'s echo, if any, that `done` of `total` refits are done."""
    say = _PROGRESS.get()
    if say is not None:
        say(done, total)


def bootstrap_fits(table: DataTable, method: Method, full: LawFit) -> np.ndarray:
    """(R, m, 5) coefficients refitted on each bootstrap replicate, warm-started from `full`."""
    draws = []
    total = table.boot.shape[0]
    for r in range(total):
        data = table.boot[r]
        if np.isfinite(data).sum() >= 5:
            draws.append(fit_laws(table, method, data=data, warm=full).coef)
        bootstrap_progress(r + 1, total)
    return np.array(draws)
