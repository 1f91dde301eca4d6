"""Calibration designs: which (utd, width) configurations to run, and how to fit a few of them.

Three pieces, numpy/scipy only, on top of `calibration.fitting`:

- **subset fits**: the law D_J(utd, params) = D_min + (a/utd)^alpha + (b/params)^beta fitted on
  some configurations of a data-to-target table (`subset_fit`), scored on the others
  (`holdout_error`);
- **designs**: which k configurations of a candidate grid to run: the factorised utd x width
  sub-grid of a preset (`factorial_design`), corners (+ centre), random subsets, and a greedy
  D-optimal design on the law's Jacobian (`d_optimal_design`);
- **few-shot fits with a family prior**: a law whose exponents and threshold shape come from
  other tasks (`FamilyPrior`, `family_prior`), with only the per-task terms fitted on k runs
  (`few_shot_fit`).

Coordinates. Every family quantity lives in one fixed centring (`Centring`): with
s = log utd - s_ref, n = log params - n_ref, the law at threshold j reads
    log D_j = L + logsumexp(c0_j, c1_j - alpha s, c2_j - beta n),
so c0_j = log(D_min_j) - L, c1_j = log of the utd term at utd = exp(s_ref) (minus L), and
c2_j = log of the params term at params = exp(n_ref) (minus L). These are the coordinates of
`calibration.fitting` (theta = [c (m x 3), alpha, beta], exponents shared across thresholds),
so residuals and Jacobians are fitting's own.

Pooled fit (precise definition). For a family of tasks with the same number m of thresholds,
the pooled fit minimises the sum over tasks of each task's fitting loss (mean squared log error
+ censored hinge + smoothness, `calibration.fitting._residuals`) over
    c_tjk = shape_jk + offset_tk   (shape shared, one offset per task and term k = 0, 1, 2),
    alpha, beta shared,
with the gauge offset_0k = 0. A few-shot fit of task t with the shape and exponents held
(`few_shot_fit(..., shape_weight=inf, exponent_weight=inf)`) fits the 3 offsets of t alone;
given all of t's runs and the prior of the pooled fit that includes t, it returns the pooled
fit's law for t (each offset block is optimal given the shared quantities, and the other tasks'
terms do not depend on it). The default few-shot fit also lets the shape deviate, penalised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from advisor.errors import AdvisorError
from calibration.curves import DataTable
from calibration.fitting import (
    ALPHA_BOUNDS,
    C_BOUNDS,
    LawFit,
    Method,
    Problem,
    _problem,
    _residuals,
    _to_coef,
    fit_laws,
)
from calibration.grid import Grid, load_grid_dict, preset

#: The D_J method of the shipped fits (calibration.build.DEFAULT_METHOD), restated to keep this
#: module free of build's fit-file imports.
DESIGN_METHOD = Method(shared_exponents=True, smoothness=0.1, censored=True, weighted=False)


class DesignError(AdvisorError):
    """A design or plan that cannot be made or fitted (too few runs, no run reaching a target)."""


def _check_observed(table: DataTable, mask: np.ndarray) -> None:
    if not np.isfinite(table.data[mask]).any():
        raise DesignError(f"none of the {int(mask.sum())} configurations used reaches any "
                          "threshold, so there is nothing to fit")


# --------------------------------------------------------------------------------------------
# Subset fits and hold-out errors


def subset_fit(table: DataTable, keep: np.ndarray, method: Method = DESIGN_METHOD,
               warm: LawFit | None = None) -> LawFit:
    """Fit D_J on the configurations `keep` (bool mask or indices) of `table`, all thresholds.

    A thin wrapper over `calibration.fitting.fit_laws` (multi-start; `warm` adds a start).
    """
    mask = _mask(keep, len(table.utd))
    _check_observed(table, mask)
    fit = fit_laws(table, method, keep=mask)
    if warm is not None:
        other = fit_laws(table, method, keep=mask, warm=warm)
        if _loss_of(other, table, mask, method) < _loss_of(fit, table, mask, method):
            fit = other
    return fit


def holdout_error(table: DataTable, fit: LawFit, test: np.ndarray) -> float:
    """Mean relative error |D_pred - D_obs| / D_obs on configurations `test`: the mean over
    thresholds (with an observed point) of the mean over configurations. NaN if none observed."""
    mask = _mask(test, len(table.utd))
    pred = fit.predict(table.utd[mask], table.params[mask])
    return threshold_mean_error(pred, table.data[mask])


def threshold_mean_error(pred: np.ndarray, data: np.ndarray) -> float:
    """Mean over thresholds of the mean relative error over configs (observed points only)."""
    per = []
    for j in range(data.shape[1]):
        obs = np.isfinite(data[:, j])
        if obs.any():
            per.append(np.mean(np.abs(pred[obs, j] - data[obs, j]) / data[obs, j]))
    return float(np.mean(per)) if per else float("nan")


def _mask(keep, n: int) -> np.ndarray:
    keep = np.asarray(keep)
    if keep.dtype == bool:
        if keep.shape != (n,):
            raise ValueError(f"mask of length {keep.shape} for {n} configurations")
        return keep
    mask = np.zeros(n, bool)
    mask[keep.astype(int)] = True
    return mask


def _loss_of(fit: LawFit, table: DataTable, mask: np.ndarray, method: Method) -> float:
    cen = Centring.of(table, mask)
    prob = cen.problem(table, mask)
    r = _residuals(cen.theta(fit.coef), prob, method)
    return float(r @ r)


# --------------------------------------------------------------------------------------------
# Fixed centring and the few-shot (family prior) fit


@dataclass(frozen=True)
class Centring:
    """Reference point of the log coordinates: s_ref = log utd, n_ref = log params, log_scale =
    log env steps. Family quantities are only comparable in one shared centring."""

    s_ref: float
    n_ref: float
    log_scale: float

    @staticmethod
    def of(table: DataTable, keep: np.ndarray | None = None) -> Centring:
        keep = np.ones(len(table.utd), bool) if keep is None else keep
        d = table.data[keep]
        return Centring(float(np.log(table.utd[keep]).mean()),
                        float(np.log(table.params[keep]).mean()),
                        float(np.nanmean(np.log(d))) if np.isfinite(d).any() else 0.0)

    def problem(self, table: DataTable, keep: np.ndarray, data: np.ndarray | None = None
                ) -> Problem:
        data = table.data if data is None else data
        return _problem(table.utd[keep], table.params[keep], data[keep], table.horizon[keep],
                        np.ones(int(keep.sum()))[:, None] * np.ones(data.shape[1]),
                        log_scale=self.log_scale, s_mean=self.s_ref, n_mean=self.n_ref)

    def theta(self, coef: np.ndarray) -> np.ndarray:
        """fitting's theta [c (m x 3), alpha, beta] of coefficients (d_min, a, alpha, b, beta)
        in this centring (exponents averaged over thresholds)."""
        d, a, al, b, be = (coef[:, k] for k in range(5))
        c0 = np.log(np.maximum(d, 1e-300)) - self.log_scale
        c1 = al * (np.log(a) - self.s_ref) - self.log_scale
        c2 = be * (np.log(b) - self.n_ref) - self.log_scale
        return np.concatenate([np.stack([c0, c1, c2], axis=1).ravel(), [al.mean(), be.mean()]])

    def coef(self, theta: np.ndarray, m: int) -> np.ndarray:
        prob = Problem(np.zeros(0), np.zeros(0), np.zeros((0, m)), np.zeros((0, m)),
                       np.zeros((0, m)), self.log_scale, self.s_ref, self.n_ref)
        return _to_coef(theta, prob, Method(shared_exponents=True), m)


@dataclass(frozen=True)
class FamilyPrior:
    """What a task borrows from its family, in `centring`'s coordinates.

    shape: (m, 3) c_jk up to a per-task offset per term k; alpha, beta: exponents.
    `offsets` (3,) is a typical task's offset (the family median), used as the fit's start and
    for designs chosen before any run. `members`: the tasks it was estimated from.
    """

    centring: Centring
    shape: np.ndarray
    alpha: float
    beta: float
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(3))
    members: tuple[str, ...] = ()

    @property
    def m(self) -> int:
        return self.shape.shape[0]

    def theta(self, offsets: np.ndarray | None = None) -> np.ndarray:
        off = self.offsets if offsets is None else np.asarray(offsets, float)
        c = self.shape + off[None, :]
        return np.concatenate([c.ravel(), [self.alpha, self.beta]])

    def coef(self, offsets: np.ndarray | None = None) -> np.ndarray:
        """(m, 5) law coefficients (d_min, a, alpha, b, beta) for given per-task offsets."""
        return self.centring.coef(self.theta(offsets), self.m)


#: Prior weights of `few_shot_fit` chosen by leave-one-task-out on the 40 dmc_bro_ablations
#: tasks (benchmarks/calibration_design.py): exponents held at the family's, threshold shape
#: lightly shrunk to it (0.1-1 were within 0.5 points of each other; held shape was worst).
FEW_SHOT_SHAPE_WEIGHT = 0.3
FEW_SHOT_EXPONENT_WEIGHT = np.inf


def few_shot_fit(table: DataTable, keep: np.ndarray, prior: FamilyPrior,
                 method: Method = DESIGN_METHOD, shape_weight: float = FEW_SHOT_SHAPE_WEIGHT,
                 exponent_weight: float = FEW_SHOT_EXPONENT_WEIGHT) -> LawFit:
    """Fit task `table` on configurations `keep`, borrowing from `prior`.

    The task's law is c_jk = shape_jk + offset_k + dev_jk, alpha = prior.alpha (1 + e_alpha),
    beta = prior.beta (1 + e_beta). The 3 offsets (log D_min, log utd term, log params term,
    shifted equally at every threshold) are always fitted. The deviations are penalised by a
    Gaussian prior: the loss (fitting's mean squared log error + censored hinge + smoothness)
    gains (shape_weight * sum dev^2 + exponent_weight * (e_alpha^2 + e_beta^2)) / W, W the number
    of observed points, so a weight is the ratio (noise variance of log D) / (prior variance)
    and the prior fades as runs accumulate. A weight of inf holds the quantity at the prior
    (both inf: only the offsets are fitted, the pooled fit's model); 0 frees it
    (shape_weight=0, exponent_weight=inf is "exponents borrowed, every coefficient fitted").
    Defaults: FEW_SHOT_SHAPE_WEIGHT, FEW_SHOT_EXPONENT_WEIGHT."""
    if table.data.shape[1] != prior.m:
        raise ValueError(f"table has {table.data.shape[1]} thresholds, prior {prior.m}")
    if not method.shared_exponents:
        raise ValueError("few-shot fits need a method with shared exponents")
    if shape_weight < 0 or exponent_weight < 0:
        raise ValueError("prior weights must be >= 0 (inf holds a quantity at the prior)")
    mask = _mask(keep, len(table.utd))
    _check_observed(table, mask)
    prob = prior.centring.problem(table, mask)
    m = prior.m
    # theta = base + M phi with phi = (offsets 3 | dev 3m (if shape not held) | e 2 (if free)).
    cols, groups = [], []
    for k in range(3):
        col = np.zeros(3 * m + 2)
        col[np.arange(m) * 3 + k] = 1.0
        cols.append(col)
        groups.append("offset")
    if np.isfinite(shape_weight):
        eye = np.eye(3 * m + 2)
        if shape_weight == 0:  # offsets and free deviations are one and the same: drop offsets
            cols, groups = [], []
        cols += list(eye[:3 * m])
        groups += ["shape"] * (3 * m)
    if np.isfinite(exponent_weight):
        for k, ex in ((3 * m, prior.alpha), (3 * m + 1, prior.beta)):
            col = np.zeros(3 * m + 2)
            col[k] = ex
            cols.append(col)
            groups.append("exponent")
    M = np.array(cols).T
    groups = np.array(groups)
    base = prior.theta(np.zeros(3))
    n_obs = max(int(np.isfinite(prob.y).sum()), 1)
    pen = np.zeros(M.shape[1])
    pen[groups == "shape"] = shape_weight
    pen[groups == "exponent"] = exponent_weight
    pen = np.sqrt(pen / n_obs)
    starts = []
    for off in _offset_starts(prob, prior):
        x0 = np.zeros(M.shape[1])
        if shape_weight > 0:
            x0[groups == "offset"] = off
        else:
            x0[groups == "shape"] = (base[:3 * m] + np.tile(off, m))
        starts.append(x0)
    if shape_weight == 0:
        base = base.copy()
        base[:3 * m] = 0.0
    phi = _solve_penalised(prob, method, base, M, groups, pen, starts, prior)
    theta = base + M @ phi
    return LawFit(table.targets, prior.centring.coef(theta, m), theta, method)


def _offset_starts(prob: Problem, prior: FamilyPrior):
    """Starts: the prior's typical offsets, and the same shifted to the task's data level."""
    yield prior.offsets.copy()
    obs = np.isfinite(prob.y)
    if obs.any():
        shift = np.mean(prob.y[obs] - _law_log(prior.theta(), prior.m, prob)[obs])
        yield prior.offsets + shift


def _law_log(theta: np.ndarray, m: int, prob: Problem) -> np.ndarray:
    c = theta[:3 * m].reshape(m, 3)
    z = np.stack([np.broadcast_to(c[:, 0], (len(prob.s), m)),
                  c[:, 1] - prob.s[:, None] * theta[3 * m],
                  c[:, 2] - prob.n[:, None] * theta[3 * m + 1]])
    return np.logaddexp.reduce(z, axis=0)


def _solve_penalised(prob: Problem, method: Method, base: np.ndarray, M: np.ndarray,
                     groups: np.ndarray, pen: np.ndarray, starts, prior: FamilyPrior
                     ) -> np.ndarray:
    """min over phi of fitting's loss at theta = base + M phi plus sum (pen * phi)^2 over the
    penalised parameters (trust-region least squares, multi-start)."""
    n_phi = M.shape[1]
    lo = np.full(n_phi, 2 * C_BOUNDS[0])
    hi = np.full(n_phi, 2 * C_BOUNDS[1])
    ex = groups == "exponent"
    # e = exponent / prior exponent - 1, so the exponent stays within ALPHA_BOUNDS.
    prior_ex = np.array([prior.alpha, prior.beta])[: ex.sum()]
    lo[ex] = ALPHA_BOUNDS[0] / prior_ex - 1.0
    hi[ex] = ALPHA_BOUNDS[1] / prior_ex - 1.0
    if ex.any():
        base = base.copy()  # exponents enter as prior * (1 + e)
    P = np.diag(pen)[pen > 0]

    def fun(phi):
        return np.concatenate([_residuals(base + M @ phi, prob, method), P @ phi])

    def jac(phi):
        return np.vstack([_residuals(base + M @ phi, prob, method, jac=True)[1] @ M, P])

    return _best_start(fun, jac, starts, lo, hi, max_nfev=400)[0]


# --------------------------------------------------------------------------------------------
# Pooled family fit and family priors


@dataclass
class PooledFit:
    """Joint fit of a family (module docstring): shared shape and exponents, per-task offsets.

    offsets[t] is task t's (3,) offset (offsets[0] = 0, the gauge); `laws[t]` its LawFit."""

    prior: FamilyPrior
    offsets: np.ndarray
    laws: list[LawFit]
    loss: float


def family_centring(tables: list[DataTable]) -> Centring:
    """One centring for a family: mean log utd, log params and log data over all its tables."""
    ls = np.concatenate([np.log(t.utd) for t in tables])
    ln = np.concatenate([np.log(t.params) for t in tables])
    ld = np.concatenate([np.log(t.data[np.isfinite(t.data)]) for t in tables])
    return Centring(float(ls.mean()), float(ln.mean()), float(ld.mean()) if ld.size else 0.0)


def pooled_fit(tables: list[DataTable], method: Method = DESIGN_METHOD,
               keeps: list[np.ndarray] | None = None, centring: Centring | None = None,
               names: tuple[str, ...] = (), fits: list[LawFit] | None = None) -> PooledFit:
    """The pooled fit of a family of tasks (module docstring), each on configs keeps[t].

    `fits` (per-task free fits, optional) give the start; otherwise they are fitted here."""
    if not tables:
        raise ValueError("a pooled fit needs at least one task")
    m = tables[0].data.shape[1]
    if any(t.data.shape[1] != m for t in tables):
        raise ValueError("every task of a family needs the same number of thresholds")
    if not method.shared_exponents:
        raise ValueError("pooled fits need a method with shared exponents")
    T = len(tables)
    keeps = [np.ones(len(t.utd), bool) if k is None else _mask(k, len(t.utd))
             for t, k in zip(tables, keeps or [None] * T)]
    cen = centring or family_centring(tables)
    probs = [cen.problem(t, k) for t, k in zip(tables, keeps)]
    if fits is None:
        fits = [fit_laws(t, method, keep=k) for t, k in zip(tables, keeps)]
    thetas = np.array([cen.theta(f.coef) for f in fits])  # (T, 3m+2)
    c = thetas[:, :3 * m].reshape(T, m, 3)
    off = c.mean(axis=1)  # (T, 3)
    shape0 = np.median(c - off[:, None, :], axis=0) + off[0]
    n_par = 3 * m + 2 + 3 * (T - 1)
    # x = [shape (3m), alpha, beta, offsets of tasks 1..T-1 (3 each)]
    maps = []
    for t in range(T):
        M = np.zeros((3 * m + 2, n_par))
        M[np.arange(3 * m + 2), np.arange(3 * m + 2)] = 1.0
        if t > 0:
            for k in range(3):
                M[np.arange(m) * 3 + k, 3 * m + 2 + 3 * (t - 1) + k] = 1.0
        maps.append(M)

    def fun(x):
        return np.concatenate([_residuals(M @ x, p, method) for M, p in zip(maps, probs)])

    def jac(x):
        return np.concatenate([_residuals(M @ x, p, method, jac=True)[1] @ M
                               for M, p in zip(maps, probs)])

    lo = np.r_[np.full(3 * m, C_BOUNDS[0]), ALPHA_BOUNDS[0], ALPHA_BOUNDS[0],
               np.full(3 * (T - 1), 2 * C_BOUNDS[0])]
    hi = np.r_[np.full(3 * m, C_BOUNDS[1]), ALPHA_BOUNDS[1], ALPHA_BOUNDS[1],
               np.full(3 * (T - 1), 2 * C_BOUNDS[1])]
    starts = []
    for ex in ([np.median(thetas[:, -2]), np.median(thetas[:, -1])],
               np.exp(np.median(np.log(thetas[:, -2:]), axis=0)), [0.5, 0.5], [1.0, 1.0]):
        starts.append(np.r_[shape0.ravel(), ex, (off[1:] - off[0]).ravel()])
    x, loss = _best_start(fun, jac, starts, lo, hi, max_nfev=1000)
    shape = x[:3 * m].reshape(m, 3)
    offsets = np.vstack([np.zeros(3), x[3 * m + 2:].reshape(T - 1, 3)])
    prior = FamilyPrior(cen, shape, float(x[3 * m]), float(x[3 * m + 1]),
                        offsets=np.median(offsets, axis=0), members=tuple(names))
    laws = [LawFit(t.targets, prior.coef(o), prior.theta(o), method)
            for t, o in zip(tables, offsets)]
    return PooledFit(prior, offsets, laws, loss)


def _best_start(fun, jac, starts, lo, hi, max_nfev: int) -> tuple[np.ndarray, float]:
    """Bounded trust-region least squares from each start; the (x, loss) with the least loss."""
    best = (None, np.inf)
    for x0 in starts:
        res = least_squares(fun, np.clip(x0, lo + 1e-9, hi - 1e-9), jac=jac, bounds=(lo, hi),
                            method="trf", x_scale="jac", ftol=1e-10, xtol=1e-10, gtol=1e-10,
                            max_nfev=max_nfev)
        loss = float(res.fun @ res.fun)
        if loss < best[1]:
            best = (res.x, loss)
    return best


def median_prior(fits: list[LawFit], centring: Centring, names: tuple[str, ...] = ()
                 ) -> FamilyPrior:
    """A family prior from per-task free fits: median exponents, median threshold shape
    (c_tjk minus the task's mean over thresholds), median offsets."""
    m = fits[0].coef.shape[0]
    thetas = np.array([centring.theta(f.coef) for f in fits])
    c = thetas[:, :3 * m].reshape(len(fits), m, 3)
    off = c.mean(axis=1)
    return FamilyPrior(centring, np.median(c - off[:, None, :], axis=0),
                       float(np.median(thetas[:, -2])), float(np.median(thetas[:, -1])),
                       offsets=np.median(off, axis=0), members=tuple(names))


# --------------------------------------------------------------------------------------------
# Designs: which configurations of a candidate grid to run


def law_jacobian(theta: np.ndarray, m: int, utd: np.ndarray, params: np.ndarray,
                 centring: Centring) -> np.ndarray:
    """(n, m, 3m + 2) derivative of log D_j at each (utd, params) with respect to fitting's
    theta [c (m x 3), alpha, beta] in `centring`'s coordinates."""
    n = len(utd)
    prob = Problem(np.log(utd) - centring.s_ref, np.log(params) - centring.n_ref,
                   np.zeros((n, m)), np.ones((n, m)), np.full((n, m), np.nan), 0.0,
                   centring.s_ref, centring.n_ref)
    _, jac = _residuals(theta, prob, Method(shared_exponents=True, censored=False), jac=True)
    return jac.reshape(n, m, -1) * np.sqrt(n * m)


def parameter_map(theta: np.ndarray, m: int, model: str = "free") -> tuple[np.ndarray, np.ndarray]:
    """(3m + 2, p) derivative of theta with respect to the fitted parameters of a model, and
    which of them a family prior penalises ("shape", "exponent") or not ("offset", "free").

    model="free": every coefficient and both exponents (a per-task fit, `subset_fit`);
    "offsets": the 3 per-task offsets; "prior": offsets + penalised threshold deviations +
    penalised relative exponent changes (`few_shot_fit` with finite weights)."""
    eye = np.eye(3 * m + 2)
    offs = []
    for k in range(3):
        col = np.zeros(3 * m + 2)
        col[np.arange(m) * 3 + k] = 1.0
        offs.append(col)
    if model == "free":
        return eye, np.array(["free"] * (3 * m + 2))
    if model == "offsets":
        return np.array(offs).T, np.array(["offset"] * 3)
    if model == "prior":
        ex = eye[3 * m:] * theta[3 * m:, None]  # alpha = prior alpha * (1 + e)
        cols = offs + list(eye[:3 * m]) + list(ex)
        return np.array(cols).T, np.array(["offset"] * 3 + ["shape"] * (3 * m) + ["exponent"] * 2)
    raise ValueError(f"model must be 'free', 'offsets' or 'prior', got {model!r}")


def optimal_design(k: int, utd: np.ndarray, params: np.ndarray, thetas: list[np.ndarray],
                   m: int, centring: Centring, model: str = "free", criterion: str = "D",
                   shape_weight: float = 0.1, exponent_weight: float = 0.1,
                   include: np.ndarray | None = None) -> np.ndarray:
    """Indices of k candidate configurations (utd[i], params[i]) for fitting `model`
    (`parameter_map`), chosen greedily and then improved by single exchanges.

    The information of a design S under a plausible law theta is F = sum_{i in S} J_i^T J_i / m
    (J_i: (m, p) derivative of log D at config i) plus, for model="prior", the prior's precision
    diag(weights) (the units of `few_shot_fit`'s penalty). `thetas` are plausible laws (e.g. the
    family's fits, in `centring`); the score is averaged over them (a Bayesian design), so the
    design is chosen before any of the task's runs. criterion="D": maximise mean log det F;
    "I": minimise the mean prediction variance trace(J_c F^-1 J_c^T) over every candidate c and
    threshold. A ridge (1e-6 of the mean diagonal) keeps F invertible below p observations.
    `include`: indices that must be chosen."""
    utd, params = np.asarray(utd, float), np.asarray(params, float)
    n = len(utd)
    if not 1 <= k <= n:
        raise ValueError(f"a design of {k} runs from {n} candidate configurations")
    if criterion not in ("D", "I"):
        raise ValueError(f"criterion must be 'D' or 'I', got {criterion!r}")
    infos, jacs, precs = [], [], []
    for th in thetas:
        M, groups = parameter_map(np.asarray(th, float), m, model)
        J = law_jacobian(th, m, utd, params, centring) @ M  # (n, m, p)
        jacs.append(J)
        infos.append(np.einsum("nmp,nmq->npq", J, J) / m)
        w = np.where(groups == "shape", shape_weight,
                     np.where(groups == "exponent", exponent_weight, 0.0))
        precs.append(np.diag(w))
    infos, jacs, precs = np.array(infos), np.array(jacs), np.array(precs)
    p = infos.shape[-1]
    ridge = 1e-6 * np.mean(np.trace(infos.sum(axis=1), axis1=1, axis2=2)) / p
    base = precs + ridge * np.eye(p)

    def score(sel):
        F = infos[:, sel].sum(axis=1) + base
        if criterion == "D":
            return float(np.mean(np.linalg.slogdet(F)[1]))
        Finv = np.linalg.inv(F)
        return -float(np.mean(np.einsum("tnmp,tpq,tnmq->t", jacs, Finv, jacs)))

    chosen = [] if include is None else [int(i) for i in include]
    fixed = set(chosen)
    while len(chosen) < k:
        rest = [i for i in range(n) if i not in chosen]
        chosen.append(max(rest, key=lambda i: score(chosen + [i])))
    improved = True
    while improved:
        improved = False
        best = score(chosen)
        for pos, i in enumerate(chosen):
            if i in fixed:
                continue
            for j in range(n):
                if j in chosen:
                    continue
                trial = chosen[:pos] + [j] + chosen[pos + 1:]
                s = score(trial)
                if s > best + 1e-9:
                    chosen, best, improved = trial, s, True
                    break
    return np.array(sorted(chosen))


def factorial_design(utd: np.ndarray, params: np.ndarray, n_utd: int = 3, n_params: int = 3
                     ) -> np.ndarray:
    """Indices of the n_utd x n_params sub-grid spread evenly (in rank) over each axis of a
    candidate grid: the stage-2 utd x width design of a preset (3 x 3 for `reduced`)."""
    us, ps = _levels(utd, n_utd), _levels(params, n_params)
    return np.flatnonzero(np.isin(utd, us) & np.isin(params, ps))


def corner_design(utd: np.ndarray, params: np.ndarray, centre: bool = True) -> np.ndarray:
    """Indices of the 4 corners of a candidate grid (smallest and largest utd x params), plus
    the configuration nearest the centre in log space if `centre`."""
    ls, ln = np.log(utd), np.log(params)
    idx = []
    for u in (ls.min(), ls.max()):
        for p in (ln.min(), ln.max()):
            idx.append(int(np.argmin((ls - u) ** 2 + (ln - p) ** 2)))
    if centre:
        z = ((ls - ls.mean()) / max(np.ptp(ls), 1e-12)) ** 2 \
            + ((ln - ln.mean()) / max(np.ptp(ln), 1e-12)) ** 2
        z[idx] = np.inf
        idx.append(int(np.argmin(z)))
    return np.array(sorted(set(idx)))


def random_design(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """k of n configuration indices uniformly at random."""
    return np.sort(rng.choice(n, size=k, replace=False))


def _levels(x: np.ndarray, k: int) -> np.ndarray:
    u = np.unique(x)
    if k >= len(u):
        return u
    return u[np.unique(np.round(np.linspace(0, len(u) - 1, k)).astype(int))]


# --------------------------------------------------------------------------------------------
# advisor plan: the design the evidence supports, as configurations to run

#: Thresholds each plausible law is resampled to (evenly over its target range) for designs.
PLAN_THRESHOLDS = 5
#: Input size assumed for the critic's parameter count when neither --input-dim nor one prior
#: fit's architecture says it.
DEFAULT_INPUT_DIM = 64


@dataclass(frozen=True)
class PlannedRun:
    """One configuration to run. Units: utd updates per env step, width critic units, params
    critic parameters, batch_size transitions (None: the B~ fitted in stage 1), steps env steps."""

    utd: float
    width: int
    params: int
    batch_size: int | None
    steps: int
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """A planned calibration: k stage-2 configurations chosen from a utd x width candidate
    grid (`base`'s axes), and how they were chosen."""

    runs: tuple[PlannedRun, ...]
    base: Grid
    design: str
    model: str
    prior: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def k(self) -> int:
        return len(self.runs)

    def grid(self) -> Grid:
        """The grid `advisor calibrate --grid` runs: base's stage 1, these stage-2 configs."""
        data = self.base.model_dump()
        data["name"] = f"{self.base.name}-plan{self.k}"
        data["configs"] = [dict(utd=r.utd, width=r.width, batch_size=r.batch_size)
                           for r in self.runs]
        return load_grid_dict(data)

    def to_dict(self) -> dict:
        return dict(design=self.design, model=self.model, prior=list(self.prior),
                    notes=list(self.notes),
                    runs=[dict(utd=r.utd, width=r.width, params=r.params,
                               batch_size=r.batch_size, steps=r.steps, seeds=list(r.seeds))
                          for r in self.runs],
                    grid=self.grid().model_dump(mode="json"))


def fit_theta(fit, m: int = PLAN_THRESHOLDS) -> tuple[np.ndarray, Centring]:
    """A fit file's law (advisor.Fit) as theta at m thresholds evenly over its target range, in
    the centring of its own domain (log-midpoints of its utd and params ranges)."""
    dom = fit.model.domain
    cen = Centring(float(np.log(dom.utd.low * dom.utd.high) / 2),
                   float(np.log(dom.params.low * dom.params.high) / 2), 0.0)
    coef = np.array([fit.coefficients(t) for t in np.linspace(fit.target_min, fit.target_max, m)])
    return cen.theta(coef), cen


def plan(k: int, *, preset_name: str | None = "reduced", grid: Grid | None = None,
         utds: list[float] | None = None, widths: list[int] | None = None,
         prior: list | tuple | None = None, input_dim: int | None = None,
         steps: int | None = None, seeds: int | None = None, criterion: str = "D",
         batch_from_prior: bool = False) -> Plan:
    """Choose k configurations to run from a utd x width candidate grid.

    Candidates: `utds` x `widths` if given, else the stage-2 configs of `grid` or of preset
    `preset_name` where it names them, else its axes (the grid also gives stage 1, steps and
    seeds; `steps`, `seeds` override them). The choice is a
    greedy + exchange optimal design (`optimal_design`, criterion "D" or "I") on the law's
    Jacobian, averaged over plausible laws: the `prior` fits (ids or paths of fit files, the
    task's family) if given, else every shipped fit. Each law is placed at the candidate grid's
    log-midpoint in natural log units (a scale-free prior on where the grid sits). With a prior,
    the design is for a few-shot fit (model "prior": per-task offsets + shrunk deviations);
    without, for a free per-task fit. Widths become params through the BroNet critic polynomial
    for `input_dim` (default: the single prior fit's architecture, else 64 inputs).
    `batch_from_prior` writes the prior's B~ (geometric mean over prior fits, rounded to 16)
    into each config; otherwise stage 1's fitted B~ decides, as in `advisor calibrate`."""
    import advisor
    from calibration.architectures import bronet_params_coefficients

    base = grid if grid is not None else (
        preset(preset_name) if preset_name else preset("reduced"))
    over = base.model_dump()
    if utds is not None:
        over["utds"] = sorted({float(u) for u in utds})
        over["anchor_utd"] = _middle(over["utds"])
    if widths is not None:
        over["widths"] = sorted({int(w) for w in widths})
        over["anchor_width"] = _middle(over["widths"])
    base = load_grid_dict(over).with_overrides(steps=steps, n_seeds=seeds)
    if base.configs is not None and utds is None and widths is None:
        # A grid that names its stage-2 configs (the cpu preset: a 4th utd in stage 2 only)
        pairs = sorted({(c.utd, c.width) for c in base.configs}, key=lambda p: (p[1], p[0]))
        cand_u = np.array([u for u, _ in pairs], float)
        cand_w = np.array([w for _, w in pairs], int)
    else:
        cand_u = np.repeat(np.array(base.utds, float), len(base.widths))
        cand_w = np.tile(np.array(base.widths, int), len(base.utds))
    n = len(cand_u)
    n_u, n_w = len(set(cand_u)), len(set(cand_w))
    shape = (f"{n_u} utds x {n_w} widths" if n == n_u * n_w
             else f"{n} stage-2 configurations of the grid")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise DesignError(f"--runs must be between 1 and the {n} candidate configurations "
                          f"({shape}), got {k}")
    from calibration.catalogue import FAMILIES

    given = list(prior or [])
    specs = list(FAMILIES[given[0]]) if len(given) == 1 and given[0] in FAMILIES else given
    for spec in specs:
        if spec in FAMILIES:  # the words calibrate's --prior uses (calibration.prior)
            raise DesignError(f"--prior {spec} names a family; give it alone, or list fits"
                              + (f" (it is given {given.count(spec)} times)"
                                 if given.count(spec) > 1 else ""))
    from calibration.prior import load_prior_fit

    fits = [load_prior_fit(p, DesignError) for p in specs]
    notes = []
    if input_dim is not None:
        if input_dim <= 0:
            raise DesignError(f"--input-dim must be a positive number of inputs, got {input_dim}")
        poly = bronet_params_coefficients(input_dim, quantiles=base.quantiles)
    elif len(fits) == 1:
        poly = list(fits[0].model.architecture.coefficients)
        notes.append(f"params from {fits[0].id}'s critic architecture")
    else:
        poly = bronet_params_coefficients(DEFAULT_INPUT_DIM, quantiles=base.quantiles)
        notes.append(f"params assume a BroNet critic with {DEFAULT_INPUT_DIM} inputs "
                     "(--input-dim N or --env ENV_ID; input_dim= in Python)")
    cand_p = np.polyval(poly, cand_w.astype(float))
    from calibration.calibrate import MIN_CONFIGS
    from calibration.prior import MIN_PRIOR_FITS

    ids = [f.id for f in fits]
    if fits and len(set(ids)) == len(ids) < MIN_PRIOR_FITS and k >= MIN_CONFIGS:
        # calibrate fits such a grid freely: the design is for that fit, not a few-shot one
        notes.append(f"the prior's {len(fits)} fits are too few for a few-shot fit (it takes "
                     f"{MIN_PRIOR_FITS} or more): this design is for the free fit advisor "
                     "calibrate makes of these runs (run it without --prior)")
        prior_fits = []
    else:
        prior_fits = fits
    laws = prior_fits or [advisor.load_fit(i) for i in advisor.list_fits()]
    cen = Centring(float(np.log(cand_u.min() * cand_u.max()) / 2),
                   float(np.log(cand_p.min() * cand_p.max()) / 2), 0.0)
    thetas = [fit_theta(f)[0] for f in laws]
    model = "prior" if prior_fits else "free"
    if k == n:
        idx = np.arange(n)
        design = f"every configuration of the {shape} grid"
    else:
        idx = optimal_design(k, cand_u, cand_p, thetas, PLAN_THRESHOLDS, cen, model=model,
                             criterion=criterion)
        design = (f"{criterion}-optimal for a {'few-shot' if prior_fits else 'free'} fit, {k} "
                  f"of {shape}, averaged over "
                  f"{len(laws)} {'prior' if prior_fits else 'shipped'} laws")
    batches: list[int | None] = [None] * n
    if batch_from_prior:
        if not fits:
            raise DesignError("batch sizes from a prior need --prior fit ids")
        b = np.exp(np.mean([np.log(np.asarray(f.batch_size(cand_u, cand_p), float))
                            for f in fits], axis=0))
        batches = [int(max(16, 16 * round(x / 16))) for x in b]
        notes.append("batch sizes from the prior's B~ (stage 1 still runs and is recorded)")
    order = sorted(idx, key=lambda i: (cand_w[i], cand_u[i]))
    runs = tuple(PlannedRun(float(cand_u[i]), int(cand_w[i]), round(float(cand_p[i])), batches[i],
                            base.steps, tuple(base.seeds)) for i in order)
    p = Plan(runs, base, design, model, tuple(f.id for f in prior_fits), tuple(notes))
    problem = plan_problem(p)
    if problem:  # (a prior too small for calibrate to take was planned as a free fit above)
        notes.append(f"advisor calibrate cannot run this plan: {problem}")
    return Plan(runs, base, design, model, p.prior, tuple(notes))


def few_shot_prior(p: Plan) -> bool:
    """Whether `advisor calibrate --prior` would take the plan's prior (no prior: True)."""
    from calibration.prior import MIN_PRIOR_FITS

    return not p.prior or (len(set(p.prior)) == len(p.prior) >= MIN_PRIOR_FITS)


def _middle(values: list) -> float:
    return sorted(values)[(len(values) - 1) // 2]


def plan_problem(p: Plan) -> str | None:
    """Why `advisor calibrate` could not run plan `p` (one line), or None when it can."""
    from calibration.calibrate import MIN_CONFIGS
    from calibration.prior import MIN_FEW_SHOT_CONFIGS, MIN_PRIOR_FITS

    twice = sorted({i for i in p.prior if p.prior.count(i) > 1})
    if twice:
        return f"--prior names fit {twice[0]} twice"
    if p.prior and len(p.prior) < MIN_PRIOR_FITS and p.k < MIN_CONFIGS:
        return (f"a few-shot fit needs a family prior of at least {MIN_PRIOR_FITS} fits (families "
                f"of 2-4 tasks predicted worse than a free fit); this plan's has {len(p.prior)}, "
                f"and a free fit needs at least {MIN_CONFIGS} configurations")
    if not p.prior and p.k < MIN_CONFIGS:
        return (f"advisor calibrate fits D_J freely and needs at least {MIN_CONFIGS} "
                f"configurations; a plan of {p.k} is for a few-shot fit: plan it with --prior and "
                "run `advisor calibrate --grid PLAN --prior ...`")
    if p.k < MIN_FEW_SHOT_CONFIGS:
        return (f"a few-shot fit needs at least {MIN_FEW_SHOT_CONFIGS} configurations, the plan "
                f"has {p.k}")
    return None


def check_plan_output(path) -> None:
    """OutputError when `path` is a regular file that is not a grid an earlier plan wrote (a CSV
    of runs, a fit file, an out-dir's grid record): writing the plan there would destroy it."""
    from advisor.errors import OutputError
    from advisor.files import load_json, read_limited

    p = Path(path)
    try:
        if not p.is_file():  # new, or a device: fine (a folder: the write says so)
            return
        data = load_json(read_limited(p, "grid file", OutputError), str(p), OutputError)
        if isinstance(data, dict) and not {"env_id", "grid", "digest"} <= data.keys():
            Grid.model_validate(data)
            return
    except (OSError, ValueError):  # unreadable, not JSON, not a grid
        pass
    raise OutputError(f"grid file {p} would replace a file that is not a grid (runs, a fit file, "
                      "an out-dir's record of its grid?); choose another path, or remove it "
                      "first")


def write_plan(p: Plan, path) -> Path:
    """Write `p` as a grid JSON file that `advisor calibrate --grid` accepts (atomically),
    over nothing but an earlier grid file (check_plan_output)."""
    from calibration.atomic import atomic_save

    problem = plan_problem(p)
    if problem:
        raise DesignError(problem)
    path = Path(path)
    check_plan_output(path)
    atomic_save(path, text=json.dumps(p.grid().model_dump(mode="json"), indent=1) + "\n")
    return path
