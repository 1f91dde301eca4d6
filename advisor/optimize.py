"""The budget problems of paper A, reduced to one variable: the data D.

For a fixed target, the configurations that need exactly D env steps form an iso-data curve
(a/utd)^alpha + (b/params)^beta = R, R = D - d_min. Along it log(utd * params) is convex in the
split x = (a/utd)^alpha, with its minimum on the compute-optimal line
alpha (a/utd)^alpha = beta (b/params)^beta, i.e. x = R beta / (alpha + beta) (paper A, Sec. 7).
The advisor trusts the law only within a `Box` around the fitted domain (by default 4x beyond the
fitted utd range and 10x beyond the fitted params range), so the best split is that point
projected onto the box: a closed form for every D. Compute on the curve is C(D) = k D utd params,
k = FLOPs per (update x parameter), and each problem is a 1-D search over D:
- data budget D0: least C(D) over D <= D0;
- compute budget C0: least D with C(D) <= C0;
- total budget: least C(D) + delta D.
The search is a log grid over R, then zoomed grids around the answer: vectorised numpy, no
scipy.optimize (which alone would triple the import time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Coef = tuple[float, float, float, float, float]  # d_min, a, alpha, b, beta
N_GRID = 241
ZOOM_POINTS = 121
ZOOM_LEVELS = 4


@dataclass(frozen=True)
class Box:
    """The (utd, params) region the advisor searches."""

    utd_low: float
    utd_high: float
    params_low: float
    params_high: float

    def contains(self, utd: float, params: float) -> bool:
        """Whether (utd, params) lies in the box, up to round-off (1e-9 relative)."""
        tol = 1e-9
        return (self.utd_low * (1 - tol) <= utd <= self.utd_high * (1 + tol)
                and self.params_low * (1 - tol) <= params <= self.params_high * (1 + tol))

    def on_edge(self, utd: float, params: float) -> tuple[bool, bool]:
        """Whether utd, and params, sit on the box's edge (where the search was stopped)."""
        tol = 1e-9
        return (utd >= self.utd_high * (1 - tol) or utd <= self.utd_low * (1 + tol),
                params >= self.params_high * (1 - tol) or params <= self.params_low * (1 + tol))


UNBOUNDED = Box(1e-12, 1e12, 1e-12, 1e30)


@dataclass(frozen=True)
class Point:
    """A configuration and its predicted cost."""

    utd: float
    params: float
    data: float
    compute: float


class _Curve:
    """Best configuration on each iso-data curve inside a box, vectorised over R."""

    def __init__(self, coef: Coef, k: float, box: Box):
        self.d, self.a, self.alpha, self.b, self.beta = coef
        self.k = k
        # Ranges of the two terms inside the box.
        self.x_lo = (self.a / box.utd_high) ** self.alpha
        self.x_hi = (self.a / box.utd_low) ** self.alpha
        self.y_lo = (self.b / box.params_high) ** self.beta
        self.y_hi = (self.b / box.params_low) ** self.beta
        self.r_lo = self.x_lo + self.y_lo  # least excess data reachable in the box
        self.r_hi = self.x_hi + self.y_hi

    @property
    def data_low(self) -> float:
        """Least data any configuration in the box needs (attained at its largest corner)."""
        return self.d + self.r_lo

    def split(self, r):
        """Utd term x for excess data r: the line's split projected onto the feasible range."""
        r = np.asarray(r, dtype=float)
        x = r * self.beta / (self.alpha + self.beta)
        lo = np.maximum(self.x_lo, r - self.y_hi)
        hi = np.minimum(self.x_hi, r - self.y_lo)
        return np.clip(x, lo, hi)

    def config(self, r):
        x = self.split(r)
        y = np.maximum(np.asarray(r, dtype=float) - x, self.y_lo)
        return self.a * x ** (-1.0 / self.alpha), self.b * y ** (-1.0 / self.beta)

    def log_compute(self, r):
        utd, params = self.config(r)
        return math.log(self.k) + np.log(self.d + r) + np.log(utd) + np.log(params)

    def point(self, r: float) -> Point:
        utd, params = self.config(r)
        data = self.d + r
        return Point(float(utd), float(params), data, self.k * float(utd) * float(params) * data)

    def grid(self, r_max: float | None = None) -> np.ndarray:
        hi = self.r_hi if r_max is None else min(self.r_hi, r_max)
        if not hi >= self.r_lo:
            return np.empty(0)
        if hi <= self.r_lo * (1 + 1e-12):
            return np.array([self.r_lo])
        return np.exp(np.linspace(math.log(self.r_lo), math.log(hi), N_GRID))


def _minimise(curve: _Curve, objective, r_max: float | None = None) -> Point | None:
    """Least objective(log r) on a log grid, then zoomed grids around the best point (each
    level narrows the bracket 60x; four levels resolve log r to about 1e-9)."""
    u = _argmin_log_r(curve, objective, r_max)
    return None if u is None else curve.point(float(np.exp(u)))


def _argmin_log_r(curve: _Curve, objective, r_max: float | None = None) -> float | None:
    """The log r of _minimise's point."""
    rs = curve.grid(r_max)
    if rs.size == 0:
        return None
    us = np.log(rs)
    i = int(np.argmin(objective(us)))
    u = us[i]
    for _ in range(ZOOM_LEVELS):
        if us.size < 3:
            break
        lo, hi = us[max(i - 1, 0)], us[min(i + 1, us.size - 1)]
        us = np.linspace(lo, hi, ZOOM_POINTS)
        i = int(np.argmin(objective(us)))
        u = us[i]
    return float(u)


def _first_within(f, lo: float, hi: float) -> float:
    """Smallest u in [lo, hi] with f(u) <= 0, given f(lo) > 0 >= f(hi), by zoomed grids."""
    for _ in range(ZOOM_LEVELS + 1):
        us = np.linspace(lo, hi, ZOOM_POINTS)
        ok = f(us) <= 0
        j = int(np.argmax(ok))  # ok[-1] holds, so j is the first grid point within budget
        if j == 0:
            return float(us[0])
        lo, hi = us[j - 1], us[j]
    return float(hi)


def min_compute_within_data(data_budget: float, coef: Coef, k: float, box: Box = UNBOUNDED
                            ) -> Point | None:
    """Least compute reaching the target with at most `data_budget` env steps in the box
    (None if even the box's largest configuration needs more data)."""
    curve = _Curve(coef, k, box)
    if data_budget <= curve.data_low:
        return None
    return _minimise(curve, lambda u: curve.log_compute(np.exp(u)), data_budget - curve.d)


def least_data(coef: Coef, k: float, box: Box = UNBOUNDED) -> float:
    """Least data any configuration in the box needs to reach the target."""
    return _Curve(coef, k, box).data_low


def min_compute(coef: Coef, k: float, box: Box = UNBOUNDED) -> float:
    """Least compute of any configuration in the box that reaches the target."""
    curve = _Curve(coef, k, box)
    p = _minimise(curve, lambda u: curve.log_compute(np.exp(u)))
    return p.compute if p is not None else math.inf


def min_data_within_compute(compute_budget: float, coef: Coef, k: float, box: Box = UNBOUNDED
                            ) -> Point | None:
    """Least data reaching the target with at most `compute_budget` FLOPs in the box."""
    curve = _Curve(coef, k, box)
    rs = curve.grid()
    if rs.size == 0:
        return None
    log_c0 = math.log(compute_budget)

    def over(v):
        return curve.log_compute(np.exp(v)) - log_c0

    ok = curve.log_compute(rs) <= log_c0
    if not ok.any():
        # A budget just above the least compute (min_compute's point, between two grid
        # points): the same zoomed search decides, so that every budget min_compute allows
        # has an answer.
        u_min = _argmin_log_r(curve, lambda u: curve.log_compute(np.exp(u)))
        if u_min is None or not over(u_min) <= 0:
            return None
        lo = math.log(rs[max(int(np.searchsorted(rs, math.exp(u_min))) - 1, 0)])
        return curve.point(math.exp(_first_within(over, lo, u_min) if lo < u_min else u_min))
    i = int(np.argmax(ok))  # the smallest data on the grid within budget
    if i == 0:
        return curve.point(rs[0])
    return curve.point(math.exp(_first_within(over, math.log(rs[i - 1]), math.log(rs[i]))))


def min_total(delta: float, coef: Coef, k: float, box: Box = UNBOUNDED) -> Point | None:
    """The configuration in the box with the least total F = C + delta D for the target."""
    curve = _Curve(coef, k, box)
    log_delta = math.log(delta)

    def log_total(u):
        r = np.exp(u)
        return np.logaddexp(curve.log_compute(r), np.log(curve.d + r) + log_delta)

    return _minimise(curve, log_total)


NEAR_POINTS = 121


@dataclass(frozen=True)
class Region:
    """The utd and params ranges of the configurations within a tolerance of the optimum's
    cost, and which of their ends the box cuts (where the law is not used further out)."""

    utd_low: float
    utd_high: float
    params_low: float
    params_high: float
    at_edge: tuple[str, ...]


def near_optimal(coef: Coef, k: float, box: Box, point: Point, cost: str, *,
                 tolerance: float, data_budget: float = math.inf,
                 compute_budget: float = math.inf, total_budget: float = math.inf,
                 delta: float = 0.0) -> Region:
    """The utd and params ranges of every configuration in `box` that reaches the target of
    `coef` at most `tolerance` (relative) above `point`'s `cost`, what its budget problem
    minimised: "data", "compute" or "total" (compute + delta data), within `data_budget`,
    `compute_budget` and `total_budget`.

    In (log utd, log params) every limit is convex (log D, log C and log(C + delta D) are
    log-sums of exponentials of affine functions), so these configurations form a convex set
    and each range is an interval around `point`. For data and compute, whether a utd (or
    params) reaches the set has a closed form, and each end is found on a log grid from
    `point` to the box's edge, then a zoomed one (to about 1e-4 in log units). For total, the
    least total over one axis is taken on a log grid of it (twice: the box, then the
    set's bounding box a cell wider), and each end is interpolated where it crosses the
    limit (to well under 1% of the range)."""
    spent = {"data": point.data, "compute": point.compute,
             "total": point.compute + delta * point.data}[cost] * (1 + tolerance)
    limits = (min(data_budget, spent) if cost == "data" else data_budget,
              min(compute_budget, spent) if cost == "compute" else compute_budget)
    if cost == "total":
        spent = min(spent, total_budget)
    d, a, alpha, b, beta = coef
    axes = ((math.log(box.utd_low), math.log(point.utd), math.log(box.utd_high)),
            (math.log(box.params_low), math.log(point.params), math.log(box.params_high)))
    laws = ((a, alpha, b, beta), (b, beta, a, alpha))  # fixed axis's term, the free one's
    if cost == "total":
        found = _total_ends(coef, k, delta, spent, axes)
    else:
        found = [_ends(_reachable(d, *law, k, axes[1 - i], *limits), axes[i])
                 for i, law in enumerate(laws)]
    names = ("utd_low", "utd_high", "params_low", "params_high")
    (u_lo, u_hi), (n_lo, n_hi) = [  # point inside, whatever exp(log(x)) rounds to
        (min(math.exp(lo), x), max(math.exp(hi), x))
        for ((lo, _), (hi, _)), x in zip(found, (point.utd, point.params))]
    cut = [c for (_, lo_cut), (_, hi_cut) in found for c in (lo_cut, hi_cut)]
    return Region(u_lo, u_hi, n_lo, n_hi, at_edge=tuple(n for n, c in zip(names, cut) if c))


def _reachable(d: float, c_fixed: float, e_fixed: float, c_free: float, e_free: float,
               k: float, free: tuple[float, float, float], data_most: float,
               compute_most: float):
    """ok(v): some configuration with log(fixed axis) = v and log(free axis) in free's range
    needs at most data_most env steps and compute_most FLOPs. The law is symmetric in its two
    axes: data falls along the free one, and compute is convex in its log."""
    def ok(v: np.ndarray) -> np.ndarray:
        c0 = d + (c_fixed * np.exp(-v)) ** e_fixed  # the data with the free axis unbounded
        room = data_most * (1 + _ROUND_OFF) - c0
        with np.errstate(divide="ignore", invalid="ignore"):
            least = np.where(room > 0, math.log(c_free) - np.log(room) / e_free, np.inf)
            cheapest = (math.log(c_free) + np.log((e_free - 1) / c0) / e_free if e_free > 1
                        else np.full_like(v, -np.inf))
        low = np.maximum(least, free[0])
        w = np.clip(cheapest, low, np.maximum(free[2], low))
        compute = k * np.exp(v + w) * (c0 + (c_free * np.exp(-w)) ** e_free)
        return ((low <= free[2] + _ROUND_OFF)
                & (compute <= compute_most * (1 + _ROUND_OFF)))
    return ok


#: Relative slack for the optimum itself, which its search leaves a hair past a limit (data
#: 500000.0000000004 for a budget of 5e5) or the box's edge (utd 15.000000000000002).
_ROUND_OFF = 1e-9


def _ends(ok, axis: tuple[float, float, float]) -> list[tuple[float, bool]]:
    """The interval around axis[1] where ok holds, within axis[0]-axis[2]: each end as (log
    value, whether it is the axis's own end). Both ends are searched at once: a grid from
    axis[1] to each edge, then one over the cell where ok stops."""
    near = np.array([axis[1], axis[1]])  # the last point known inside, toward each edge
    far = np.array([axis[0], axis[2]])  # the first point past it (the edges, at first)
    done = np.zeros(2, bool)
    for level in range(2):
        grid = near[:, None] + (far - near)[:, None] * _UNIT  # (2 ends, NEAR_POINTS)
        grid[:, -1] = far
        inside = ok(grid.ravel()).reshape(grid.shape)
        inside[:, 0] |= level == 0  # the optimum itself, whatever its round-off
        for e in np.flatnonzero(~done):
            if inside[e].all():
                near[e], done[e] = far[e], True
                continue
            i = int(np.argmin(inside[e]))  # the first grid point outside
            if i == 0:
                done[e] = True
            else:
                near[e], far[e] = grid[e, i - 1], grid[e, i]
    return [(float(near[e]), abs(float(near[e]) - edge) <= _ROUND_OFF)
            for e, edge in enumerate((axis[0], axis[2]))]


_UNIT = np.linspace(0.0, 1.0, NEAR_POINTS)


def _total_ends(coef: Coef, k: float, delta: float, most: float,
                axes: tuple[tuple[float, float, float], ...]) -> list[list[tuple[float, bool]]]:
    """_ends of the set where compute + delta * data <= most, from the least total along the
    other axis on a log grid (the box, then the set's bounding box a cell wider)."""
    d, a, alpha, b, beta = coef
    spans = [(axis[0], axis[2]) for axis in axes]
    found: list[list[tuple[float, bool]]] = []
    for _ in range(2):
        lu, ln = (np.linspace(lo, hi, NEAR_POINTS) for lo, hi in spans)
        data = d + (a * np.exp(-lu))[None, :] ** alpha + (b * np.exp(-ln))[:, None] ** beta
        total = (k * np.exp(lu)[None, :] * np.exp(ln)[:, None] + delta) * data
        over = [np.log(total.min(axis=0) / most), np.log(total.min(axis=1) / most)]
        found, new_spans = [], []
        for x, o, axis in zip((lu, ln), over, axes):
            i = int(np.clip(np.searchsorted(x, axis[1]), 1, x.size - 1))
            inside = o <= 0
            inside[i - 1:i + 1] |= True  # the optimum sits between these two points
            lo_i, hi_i = i - 1, i
            while lo_i > 0 and inside[lo_i - 1]:
                lo_i -= 1
            while hi_i < x.size - 1 and inside[hi_i + 1]:
                hi_i += 1
            ends = []
            for j, out in ((lo_i, lo_i - 1), (hi_i, hi_i + 1)):
                if not 0 <= out < x.size:
                    ends.append((float(x[j]), float(x[j]) == axis[0 if out < 0 else 2]))
                    continue
                share = 0.0 if o[j] > 0 else o[j] / (o[j] - o[out])  # where it crosses 0
                ends.append((float(x[j] + share * (x[out] - x[j])), False))
            found.append(ends)
            new_spans.append((x[max(lo_i - 1, 0)], x[min(hi_i + 1, x.size - 1)]))
        spans = new_spans
    return found
