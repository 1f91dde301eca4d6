"""Budget -> Recommendation: the compute-optimal utd, critic size and batch size for a budget."""

from __future__ import annotations

import math
from typing import Annotated, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from advisor import optimize
from advisor.errors import BudgetError, InfeasibleBudgetError
from advisor.fit import Fit
from advisor.fitfile import _one_line
from advisor.registry import load_fit

DEFAULT_FIT = "bro/h1-crawl-v0"
#: Recommendations stay within this factor beyond the fitted utd and params ranges.
UTD_REACH = 4.0
PARAMS_REACH = 10.0

# Numbers only (ints are fine); no strings or booleans silently coerced.
StrictFloat = Annotated[float, Strict()]


def _check_positive(name: str, value: float | None, unit: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"{name} must be a number of {unit}, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise BudgetError(f"{name} must be a positive finite number of {unit}, got {value!r}")


class Budget(BaseModel):
    """What you can spend. Give `compute` (FLOPs), `data` (env steps), both, or `total`
    (FLOPs of C + delta * D, with `delta` FLOPs per env step; default: the fit's delta)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    compute: StrictFloat | None = Field(default=None, description="Training FLOPs.")
    data: StrictFloat | None = Field(default=None, description="Environment steps.")
    total: StrictFloat | None = Field(default=None, description="FLOPs of compute + delta * data.")
    delta: StrictFloat | None = Field(default=None, description="FLOPs charged per env step.")

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            cause = first.get("ctx", {}).get("error")
            if isinstance(cause, BudgetError):
                raise BudgetError(str(cause)) from None
            raise BudgetError(f"invalid budget: {_one_line(exc)}") from None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        _check_positive("compute", self.compute, "FLOPs")
        _check_positive("data", self.data, "env steps")
        _check_positive("total", self.total, "FLOPs")
        _check_positive("delta", self.delta, "FLOPs per env step")
        if self.total is not None and (self.compute is not None or self.data is not None):
            raise BudgetError("give either total (with optional delta) or compute and/or data, "
                              "not both kinds")
        if self.delta is not None and self.total is None:
            raise BudgetError("delta only applies to a total budget: add total=FLOPs")
        if self.total is None and self.compute is None and self.data is None:
            raise BudgetError("a budget needs compute (FLOPs), data (env steps), both, or total")
        return self

    @property
    def problem(self) -> Literal["compute", "data", "compute+data", "total"]:
        if self.total is not None:
            return "total"
        if self.compute is not None and self.data is not None:
            return "compute+data"
        return "compute" if self.compute is not None else "data"


class Interval(BaseModel):
    low: float
    high: float


class Recommendation(BaseModel):
    """A configuration and what it is predicted to cost. Units: data in env steps, compute and
    total in FLOPs, batch_size in transitions, params in critic parameters."""

    model_config = ConfigDict(frozen=True)

    fit: str
    problem: str = Field(description="Which budget problem was solved.")
    target: float = Field(description="Return threshold the configuration reaches.")
    utd: float
    utd_rounded: float
    params: float
    width: int = Field(description="Critic width rounded to the fit's width multiple.")
    params_rounded: float = Field(description="Critic parameters at the rounded width.")
    batch_size: int = Field(description="B~ rounded to a multiple of 16.")
    batch_size_exact: float
    learning_rate: float
    predicted_data: float
    predicted_compute: float
    predicted_total: float
    delta: float
    interval: Interval | None = Field(description="10th-90th percentile of predicted data.")
    predicted_data_rounded: float = Field(
        description="Predicted data at (utd_rounded, params_rounded).")
    extrapolated: bool
    warnings: list[str]


def _round_utd(utd: float) -> float:
    if utd >= 1.0:
        return float(max(1, round(utd)))
    return 1.0 / max(1, round(1.0 / utd))


def _as_budget(budget: Budget | float | int) -> Budget:
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        return Budget(compute=float(budget))
    raise BudgetError(f"budget must be a Budget or a number of FLOPs, got {budget!r}")


def _highest(lo: float, hi: float, feasible: Callable[[float], bool], n_grid: int = 33
             ) -> float | None:
    """Highest target in [lo, hi] with feasible(target); None if none on the grid."""
    if feasible(hi):
        return hi
    grid = np.linspace(lo, hi, n_grid)
    ok = [g for g in grid[:-1] if feasible(g)]
    if not ok:
        return None
    good = ok[-1]
    bad = grid[np.searchsorted(grid, good) + 1]
    for _ in range(40):
        if bad - good <= 1e-9 * max(1.0, abs(hi)):
            break
        mid = 0.5 * (good + bad)
        if feasible(mid):
            good = mid
        else:
            bad = mid
    return float(good)


def recommend(budget: Budget | float, *, fit: str | Fit = DEFAULT_FIT,
              target: float | None = None) -> Recommendation:
    """The configuration that spends `budget` best under `fit` (paper A, problems 1 and 2).

    - data only: least compute that reaches `target` within the data budget;
    - compute only: least data that reaches `target` within the compute budget;
    - compute and data: the highest target reachable within both (or `target`, if given);
    - total (C + delta D): the highest target whose least total fits (or `target`).
    `target` defaults to the top fitted threshold for single budgets. A plain number is a compute
    budget in FLOPs. The search stays within UTD_REACH x beyond the fitted utd range and
    PARAMS_REACH x beyond the fitted params range (flagged `extrapolated` outside the fitted one).
    """
    budget = _as_budget(budget)
    f = load_fit(fit)
    if f.model.compute.count_real_batch:
        raise BudgetError(f"fit {f.id} counts the real batch in compute, which recommend() does "
                          "not support yet; use a fit with the paper-compatible definition")
    k = f.compute_per_update_param
    dom = f.model.domain
    box = optimize.Box.around((dom.utd.low, dom.utd.high), (dom.params.low, dom.params.high),
                              UTD_REACH, PARAMS_REACH)
    delta = budget.delta if budget.delta is not None else f.delta
    problem = budget.problem
    lo_t, hi_t = f.target_min, f.target_max

    if problem == "data":
        j = f.check_target(target)
        point = optimize.min_compute_within_data(budget.data, f.coefficients(j), k, box)
        if point is None:
            def least(t: float) -> float:
                return optimize.least_data(f.coefficients(t), k, box)

            best = _highest(lo_t, hi_t, lambda t: least(t) < budget.data)
            raise InfeasibleBudgetError(
                f"data budget {budget.data:.4g} env steps cannot reach target {j:g} on {f.id}: "
                f"every configuration needs more than {least(j):.4g} env steps"
                + _hint(best, f, f"the lowest target {lo_t:g} needs more than "
                        f"{least(lo_t):.4g} env steps"))
    elif problem == "compute":
        j = f.check_target(target)
        point = optimize.min_data_within_compute(budget.compute, f.coefficients(j), k, box)
        if point is None:
            def least(t: float) -> float:
                return optimize.min_compute(f.coefficients(t), k, box)

            best = _highest(lo_t, hi_t, lambda t: least(t) <= budget.compute)
            raise InfeasibleBudgetError(
                f"compute budget {budget.compute:.4g} FLOPs cannot reach target {j:g} on {f.id}: "
                f"it needs at least {least(j):.4g} FLOPs"
                + _hint(best, f, f"the lowest target {lo_t:g} needs at least "
                        f"{least(lo_t):.4g} FLOPs"))
    elif problem == "compute+data":
        def solve(t: float):
            p = optimize.min_compute_within_data(budget.data, f.coefficients(t), k, box)
            return p if p is not None and p.compute <= budget.compute * (1 + 1e-9) else None

        j = f.check_target(target) if target is not None else _highest(
            lo_t, hi_t, lambda t: solve(t) is not None)
        point = solve(j) if j is not None else None
        if point is None:
            jj = j if j is not None else lo_t
            need = optimize.min_compute_within_data(budget.data, f.coefficients(jj), k, box)
            why = (f"with {budget.data:.4g} env steps it needs at least {need.compute:.4g} FLOPs"
                   if need is not None else "it needs more than "
                   f"{optimize.least_data(f.coefficients(jj), k, box):.4g} env steps")
            raise InfeasibleBudgetError(
                f"compute {budget.compute:.4g} FLOPs and data {budget.data:.4g} env steps cannot "
                f"reach {'target' if target is not None else 'even the lowest target'} {jj:g} "
                f"on {f.id}: {why}")
    else:
        def total_of(t: float) -> optimize.Point:
            return optimize.min_total(delta, f.coefficients(t), k, box)

        def fits_total(t: float) -> bool:
            p = total_of(t)
            return p.compute + delta * p.data <= budget.total * (1 + 1e-9)

        j = f.check_target(target) if target is not None else _highest(lo_t, hi_t, fits_total)
        if j is None or not fits_total(j):
            jj = j if j is not None else lo_t
            p = total_of(jj)
            raise InfeasibleBudgetError(
                f"total budget {budget.total:.4g} FLOPs (delta {delta:.3g} FLOPs per env step) "
                f"cannot reach {'target' if target is not None else 'even the lowest target'} "
                f"{jj:g} on {f.id}: it needs at least {p.compute + delta * p.data:.4g} FLOPs")
        point = total_of(j)

    return _describe(f, problem, j, point, delta, box)


def _hint(best: float | None, f: Fit, lowest: str) -> str:
    if best is None:
        return f"; {lowest}"
    return f"; the highest target this budget reaches is {best:.4g} (use --target/target=)"


def _describe(f: Fit, problem: str, target: float, point: optimize.Point, delta: float,
              box: optimize.Box) -> Recommendation:
    utd, params = point.utd, point.params
    warnings: list[str] = []
    dom = f.model.domain
    extrapolated = not f.in_domain(utd, params)
    if not dom.utd.low * (1 - 1e-9) <= utd <= dom.utd.high * (1 + 1e-9):
        warnings.append(f"utd {utd:.3g} is outside the fitted range {dom.utd.low:g}-"
                        f"{dom.utd.high:g}: extrapolated")
    if not dom.params.low * (1 - 1e-9) <= params <= dom.params.high * (1 + 1e-9):
        warnings.append(f"params {params:.3g} is outside the fitted range {dom.params.low:.3g}-"
                        f"{dom.params.high:.3g}: extrapolated")
    if utd >= box.utd_high * (1 - 1e-9) or utd <= box.utd_low * (1 + 1e-9):
        warnings.append(f"the budget pulls utd to the edge of the trusted range "
                        f"{box.utd_low:.3g}-{box.utd_high:.3g} ({UTD_REACH:g}x beyond the fitted "
                        "utds); the law is not used further out")
    if params >= box.params_high * (1 - 1e-9) or params <= box.params_low * (1 + 1e-9):
        warnings.append(f"the budget pulls params to the edge of the trusted range "
                        f"{box.params_low:.3g}-{box.params_high:.3g} ({PARAMS_REACH:g}x beyond "
                        "the fitted sizes); the law is not used further out")
    bs = f.model.batch_size
    if bs.kind == "fixed":
        warnings.append(f"the runs behind {f.id} all used batch size {bs.a_b:g}, so the fit "
                        "recommends it and cannot tell whether another is better")
    batch_exact = float(f.batch_size(utd, params))
    width_exact = float(f.width(params))
    width = f.round_width(width_exact) if math.isfinite(width_exact) else 0
    params_rounded = float(f.params(width)) if width > 0 else params
    utd_r = _round_utd(utd)
    draws = f.draw_coefficients(target)
    interval = None
    if draws is not None and len(draws):
        from advisor import laws

        sample = laws.data_to_target(utd, params, *(draws[:, i] for i in range(5)))
        lo, hi = np.percentile(sample, [10, 90])
        interval = Interval(low=float(lo), high=float(hi))
    return Recommendation(
        fit=f.id, problem=problem, target=float(target), utd=utd, utd_rounded=utd_r,
        params=params, width=width, params_rounded=params_rounded,
        batch_size=int(max(16, 16 * round(batch_exact / 16))), batch_size_exact=batch_exact,
        learning_rate=f.learning_rate, predicted_data=point.data,
        predicted_compute=point.compute, predicted_total=point.compute + delta * point.data,
        delta=delta, interval=interval,
        predicted_data_rounded=float(f.data_to_target(utd_r, params_rounded, target)),
        extrapolated=extrapolated, warnings=warnings)
