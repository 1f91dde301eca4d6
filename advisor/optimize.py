"""The budget problems of paper A, solved on the compute-optimal line.

For a fixed target the least utd*params that reaches D env steps lies on the line
alpha (a/utd)^alpha = beta (b/params)^beta (laws.compute_optimal_point), so every problem reduces
to one variable: the excess data R = D - d_min, used here as u = log R. On the line

    log C(u) = log k + log(d_min + e^u) + log a + log b - u p - log(beta/(alpha+beta))/alpha
               - log(alpha/(alpha+beta))/beta,          p = 1/alpha + 1/beta,

which falls while R < p D and rises after (only possible when p < 1), so:
- data budget D0: least compute at D = min(D0, D*), D* = d_min / (1 - p) if p < 1 (closed form);
- compute budget C0: least data is the root of C(u) = C0 on the falling branch (bisection);
- total F0 = C + delta D: minimise over u (grid, then golden section), compare with F0.
The 1-D solvers are a few lines of plain Python: scipy.optimize alone would triple import time.
Here k = FLOPs per (update x parameter), e.g. 10 * 256 for paper A's compute definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Coef = tuple[float, float, float, float, float]  # d_min, a, alpha, b, beta


@dataclass(frozen=True)
class Point:
    """A configuration on the compute-optimal line and its predicted cost."""

    utd: float
    params: float
    data: float
    compute: float


def _line_consts(coef: Coef, k: float) -> tuple[float, float]:
    """(log of the constant part of C(u) minus log D, p)."""
    _, a, alpha, b, beta = coef
    s = alpha + beta
    const = (math.log(k) + math.log(a) + math.log(b) - math.log(beta / s) / alpha
             - math.log(alpha / s) / beta)
    return const, 1.0 / alpha + 1.0 / beta


def log_compute_on_line(u, coef: Coef, k: float):
    """log C at excess data R = e^u on the compute-optimal line (numpy-friendly)."""
    const, p = _line_consts(coef, k)
    return const + np.log(coef[0] + np.exp(u)) - p * u


def point_at(data: float, coef: Coef, k: float, excess: float | None = None) -> Point:
    """The compute-optimal (utd, params) that needs exactly `data` env steps. Pass `excess`
    (data - d_min) when known: recomputing it loses precision when it is tiny."""
    d, a, alpha, b, beta = coef
    r = data - d if excess is None else excess
    utd = a * (r * beta / (alpha + beta)) ** (-1.0 / alpha)
    params = b * (r * alpha / (alpha + beta)) ** (-1.0 / beta)
    return Point(utd, params, data, k * utd * params * data)


def data_turning_point(coef: Coef) -> float:
    """Data D* beyond which more data costs more compute on the line (inf when p >= 1)."""
    d, _, alpha, _, beta = coef
    p = 1.0 / alpha + 1.0 / beta
    return d / (1.0 - p) if p < 1.0 else math.inf


def min_compute_within_data(data_budget: float, coef: Coef, k: float) -> Point | None:
    """Least compute reaching the target with at most `data_budget` env steps (None if
    data_budget <= d_min, the data no configuration can beat)."""
    if data_budget <= coef[0] * (1 + 1e-12):
        return None
    return point_at(min(data_budget, data_turning_point(coef)), coef, k)


def min_compute(coef: Coef, k: float) -> float:
    """Infimum of compute over all configurations (0 when p > 1)."""
    d, _, alpha, _, beta = coef
    p = 1.0 / alpha + 1.0 / beta
    const, _ = _line_consts(coef, k)
    if p > 1.0:
        return 0.0
    if p == 1.0:
        return math.exp(const)  # limit as R -> inf of (d + R) R^-1 * e^const
    return point_at(data_turning_point(coef), coef, k).compute


def min_data_within_compute(compute_budget: float, coef: Coef, k: float) -> Point | None:
    """Least data reaching the target with at most `compute_budget` FLOPs (None if no
    configuration reaches it within that compute)."""
    d = coef[0]
    log_c0 = math.log(compute_budget)
    d_star = data_turning_point(coef)
    u_hi = math.log(d_star - d) if math.isfinite(d_star) else None
    if u_hi is not None and log_compute_on_line(u_hi, coef, k) > log_c0:
        return None

    def f(u: float) -> float:
        return float(log_compute_on_line(u, coef, k)) - log_c0

    # Bracket the root on the falling branch: C -> inf as R -> 0.
    scale = math.log(max(d, 1.0))
    lo = scale - 5.0
    while f(lo) < 0:
        lo -= 5.0
        if lo < -700:
            break
    if u_hi is None:
        u_hi = lo + 5.0
        while f(u_hi) > 0:
            u_hi += 5.0
            if u_hi > 700:
                return None
    u = _bisect_decreasing(f, lo, u_hi)
    return point_at(d + math.exp(u), coef, k, excess=math.exp(u))


def min_total(delta: float, coef: Coef, k: float) -> Point:
    """The configuration with the least total F = C + delta D for the target."""
    d = coef[0]
    scale = math.log(max(d, 1.0))
    us = np.linspace(scale - 30.0, scale + 30.0, 241)

    def log_total(u):
        lc = log_compute_on_line(u, coef, k)
        ld = np.log(d + np.exp(u)) + math.log(delta)
        return np.logaddexp(lc, ld)

    vals = log_total(us)
    i = int(np.argmin(vals))
    lo, hi = us[max(i - 1, 0)], us[min(i + 1, len(us) - 1)]
    u = _golden_min(lambda u: float(log_total(u)), float(lo), float(hi))
    return point_at(d + math.exp(u), coef, k, excess=math.exp(u))


def _bisect_decreasing(f, lo: float, hi: float, tol: float = 1e-12) -> float:
    """Root of a decreasing f with f(lo) >= 0 >= f(hi)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= tol * (1.0 + abs(lo)):
            break
    return 0.5 * (lo + hi)


def _golden_min(f, lo: float, hi: float, tol: float = 1e-10) -> float:
    """Minimum of a unimodal f on [lo, hi] by golden-section search."""
    g = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = f(x1), f(x2)
    while hi - lo > tol * (1.0 + abs(lo)):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = f(x2)
    return 0.5 * (lo + hi)
