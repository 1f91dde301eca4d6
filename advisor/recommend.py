"""Budget -> Recommendation: the compute-optimal utd, critic size and batch size for a budget.

`recommend` solves the continuous problem (advisor.optimize), then picks the configuration a
user can actually run: a width that is a multiple of the fit's width multiple, a batch size that
is a multiple of 16, and a utd that is gradient_steps / train_freq with small integers. Among the
rounded neighbours of the optimum it takes the best one that stays within every budget given;
if none does, it says by how much the closest one exceeds the budget.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Annotated, Callable, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from advisor import optimize
from advisor.errors import (
    AdvisorError,
    BudgetError,
    ConfigError,
    FitFileError,
    InfeasibleBudgetError,
    one_line,
    printable,
    shown,
)
from advisor.fit import Fit, round_batch_size, round_toward
from advisor.fitfile import CHECKS_FAILED_NOTE, MAX_DELTA
from advisor.registry import load_fit

DEFAULT_FIT = "bro/h1-crawl-v0"
#: The interval printed with a recommendation covers this share of new runs.
DEFAULT_LEVEL = 0.8
#: Relative slack when comparing a prediction with a budget (float round-off only).
_SLACK = 1e-9
#: Added to the warning for a utd or critic size below the fitted ones: refitted without their
#: smallest params column or utd row, the archive fits predict more data than those runs
#: needed on 18 and 16 of 23 fits (benchmarks/edge_bias.py), and below 3x3 sub-grids nearly
#: every interval miss is a run that needed less (benchmarks/subgrid_coverage.py).
_BELOW = ", where the law tends to predict more data than runs need"
#: And above the critic sizes: refitted without their largest params column, the archive fits'
#: large misses there are all runs that needed more data than predicted (up to 1.66x;
#: edge_bias.py). Above the utds they go both ways (bro/h1-pole-v0: 0.76x), so no such words.
_ABOVE = ", where its large misses have been runs needing more data than predicted"
#: A fit's recorded coverage (of its 80% interval, with a grid row or column left out whole)
#: under which recommend warns for a configuration in that part of the grid: the README's
#: "fits below 70%".
LOW_COVERAGE = 0.7

# Numbers only (ints are fine); no strings or booleans silently coerced.
StrictFloat = Annotated[float, Strict()]
_UNITS = {"compute": "FLOPs", "data": "env steps", "total": "FLOPs", "delta": "FLOPs per env step"}


def _coverage_warnings(f: Fit, utd: float, params: float) -> list[str]:
    """One warning where the fit's own record says its 80% interval held less than
    LOW_COVERAGE of the runs in the part of the grid (utd, params) sits in (an interior row or
    column, or the edge row or column it lies beyond), each left out whole."""
    pi = f.model.prediction_interval
    if pi is None or not pi.coverage:
        return []
    dom = f.model.domain
    low = []
    for x, rng, axis, line, size in ((utd, dom.utd, "utd", "row", "utd"),
                                     (params, dom.params, "params", "column", "critic size")):
        if x > rng.high * (1 + 1e-9):
            key, what = f"largest_{axis}_{line}_out", f"at its largest {size}, left out of it"
        elif x < rng.low * (1 - 1e-9):
            key, what = f"smallest_{axis}_{line}_out", f"at its smallest {size}, left out of it"
        else:
            key, what = (f"interior_{axis}_{line}s_out", f"at the {size}s between its smallest "
                         "and largest, each left out of it in turn")
        c = pi.coverage.get(key)
        if c is not None and c < LOW_COVERAGE:
            low.append(f"{100 * c:.0f}% of the runs {what}")
    if not low:
        return []
    return [f"the interval is over-confident here: {f.id}'s 80% interval covered only "
            f"{'; and '.join(low)} (recorded in the fit; `advisor show {f.id}`)"]


#: How the warning of Fit.contradicting_runs begins.
CONTRADICTED = "the runs contradict this prediction"


def _contradiction_warnings(f: Fit, utd: float, params: float, target: float, data: float
                            ) -> list[str]:
    """One warning where the fit's runs at a configuration no smaller in utd and params, which
    the law says needs no more data, never got as far as `target` in at least `data` env steps
    (Fit.contradicting_runs)."""
    runs = f.contradicting_runs(utd, params, target, data)
    if not runs:
        return []
    run = min(runs, key=lambda r: (r.utd * r.params, r.utd))
    same = (math.isclose(run.utd, utd, rel_tol=1e-6)
            and math.isclose(run.params, params, rel_tol=1e-6))
    where = ("this configuration's own runs" if same else
             f"{f.id}'s runs at utd {run.utd:.3g}, params {run.params:.3g} (no smaller in "
             f"either, so needing no more data by the law)")
    floor = f.threshold_below(target)
    passed = f"{run.reached:.4g}" if run.reached is not None else "none"
    more = (f"; {len(runs) - 1} more such configuration{'s' if len(runs) > 2 else ''} fell "
            "short of it too" if len(runs) > 1 else "")
    return [f"{CONTRADICTED}: {where} never reached return {floor:.4g} in "
            f"{run.horizon:.4g} env steps (the highest of the fit's thresholds they passed: "
            f"{passed}){more}, against target {target:.4g} in {data:.4g} predicted here: "
            "expect more data, or take a lower target"]


def _pct(p: float) -> str:
    """A percentage to two significant digits, never in e-notation: 2.2, 35, 680, 12000, and
    "<0.01" below that."""
    if 0 < abs(p) < 0.01:
        return "<0.01" if p > 0 else ">-0.01"
    rounded = float(f"{p:.2g}")
    return f"{rounded:.0f}" if abs(rounded) >= 100 else f"{p:.2g}"


def _check_positive(name: str, value: float | None) -> None:
    if value is None:
        return
    if not (math.isfinite(value) and value > 0):
        raise BudgetError(f"{name} must be a positive finite number of {_UNITS[name]}, "
                          f"got {shown(value)}")


def _budget_error(exc: ValidationError) -> BudgetError:
    first = exc.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, BudgetError):
        return BudgetError(str(cause))
    return BudgetError(f"invalid budget: {one_line(exc)}")


class Budget(BaseModel):
    """What you can spend. Give `compute` (FLOPs), `data` (env steps), both, or `total`
    (FLOPs of C + delta * D, with `delta` FLOPs per env step; default: the fit's delta)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    compute: StrictFloat | None = Field(default=None, description="Training FLOPs.")
    data: StrictFloat | None = Field(default=None, description="Environment steps.")
    total: StrictFloat | None = Field(default=None, description="FLOPs of compute + delta * data.")
    delta: StrictFloat | None = Field(default=None, description="FLOPs charged per env step.")

    def __init__(self, *args, **data):
        if args:  # pydantic's own TypeError names no field
            raise BudgetError(f"Budget takes keywords only (compute=FLOPs, data=env steps, "
                              f"total=FLOPs, delta=FLOPs per env step), got {shown(args[0])} by "
                              "position; recommend(1e17) takes a plain number as a compute budget")
        for name, value in data.items():  # ints too large for a float: say so in one line
            if isinstance(value, np.bool_):  # a float subclass to pydantic; True is refused too
                raise BudgetError(f"{name} must be a number of {_UNITS.get(name, 'units')}, "
                                  f"got the boolean {shown(value)}")
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1e308:
                raise BudgetError(f"{name} must be a positive finite number of "
                                  f"{_UNITS.get(name, 'units')}, got an integer of "
                                  f"{len(str(abs(value)))} digits")
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _budget_error(exc) from None

    @classmethod
    def model_validate(cls, obj, **kw) -> Budget:
        try:
            return super().model_validate(obj, **kw)
        except ValidationError as exc:
            raise _budget_error(exc) from None

    @classmethod
    def model_validate_json(cls, json_data, **kw) -> Budget:
        try:
            return super().model_validate_json(json_data, **kw)
        except ValidationError as exc:
            raise _budget_error(exc) from None

    @classmethod
    def model_validate_strings(cls, obj, **kw) -> Budget:
        try:
            return super().model_validate_strings(obj, **kw)
        except ValidationError as exc:
            raise _budget_error(exc) from None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        for name in ("compute", "data", "total", "delta"):
            _check_positive(name, getattr(self, name))
        if self.delta is not None and self.delta > MAX_DELTA:  # C + delta D would overflow
            raise BudgetError(f"delta must be at most {MAX_DELTA:g} FLOPs per env step (as in a "
                              f"fit file), got {self.delta:.4g}")
        if self.total is not None and (self.compute is not None or self.data is not None):
            raise BudgetError("give either total (with optional delta) or compute and/or data, "
                              "not both kinds")
        if self.delta is not None and self.total is None:
            raise BudgetError("delta only applies to a total budget: add total=FLOPs "
                              "(--total on the command line)")
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

    @property
    def cost(self) -> Literal["compute", "data", "total"]:
        """What the problem's answer spends least of at its target: compute for a data budget
        (and for compute + data), data for a compute budget, total for a total budget."""
        return {"data": "compute", "compute": "data", "compute+data": "compute",
                "total": "total"}[self.problem]

    def describe(self) -> str:
        """e.g. 'compute 1e+17 FLOPs and data 8e+05 env steps'."""
        parts = [f"{k} {getattr(self, k):.3g} {_UNITS[k]}"
                 for k in ("compute", "data", "total", "delta") if getattr(self, k) is not None]
        return " and ".join(parts)


class Interval(BaseModel):
    """Where the data a new run needs falls with probability `level` (env steps). Far outside
    the fitted runs `high` may be inf, written "Infinity" in JSON (a string, since JSON has no
    infinity: a bare Infinity is refused by JSON.parse and other strict readers); pydantic
    reads it back as inf, and `advisor export` writes it alike."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    low: float
    high: float
    level: float


#: Near-optimal: at most this much more (relative) of what the budget problem minimises.
NEAR_TOLERANCE = 0.1


class NearOptimal(BaseModel):
    """How flat the optimum is: every utd in utd_low-utd_high and every critic size in
    params_low-params_high (width_low-width_high) belongs to some configuration that reaches
    the target with at most `tolerance` more of `cost` than the optimum, within every limit
    of the budget (but see `over_budget`) and the searched range (the unrounded law: B~ at
    each). `cost` is what the
    problem minimised: "data" (a compute budget), "compute" (a data budget, or compute and
    data), "total". `at_edge` names the ends the searched range cuts (utd_low, utd_high,
    params_low, params_high): the law is not used further out. `fixed`: the axes the user
    fixed ("utd", "width"), whose range is that value. `over_budget`: the problem maximised
    the target, so the optimum spends the whole budget and these configurations reach its
    target with up to `tolerance` more than the budget."""

    tolerance: float
    cost: Literal["data", "compute", "total"]
    utd_low: float
    utd_high: float
    params_low: float
    params_high: float
    width_low: float
    width_high: float
    at_edge: list[str]
    fixed: list[str] = Field(default_factory=list)
    over_budget: bool = False

    def describe(self) -> str:
        """One line: the ranges, what they mean, and which ends the searched range cuts."""
        cut = {"utd_low": "low utd", "utd_high": "high utd", "params_low": "small critics",
               "params_high": "large critics"}
        utd = (f"{self.utd_low:.4g} (fixed)" if "utd" in self.fixed
               else f"{self.utd_low:.2g}-{self.utd_high:.2g}")
        width = (f"{self.width_low:.0f} (fixed)" if "width" in self.fixed
                 else f"{self.width_low:.0f}-{self.width_high:.0f}")
        best = "the best at the fixed " + " and ".join(self.fixed) if self.fixed else "the optimum"
        text = (f"utd {utd}, width {width}  (configurations needing at most "
                f"{100 * self.tolerance:g}% more {self.cost} than {best}"
                + (f", so up to {100 * self.tolerance:g}% over the budget, at its target"
                   if self.over_budget else "")
                + ("" if self.fixed else "; not every pair"))
        if self.at_edge:
            text += "; cut at the searched range for " + " and ".join(
                cut[e] for e in self.at_edge)
        return text + ")"


class Optimum(BaseModel):
    """The unrounded solution of the budget problem (what the laws say is best)."""

    utd: float
    params: float
    width: float
    batch_size: float
    target: float
    data: float
    compute: float
    total: float


class Recommendation(BaseModel):
    """A configuration to run and what it is predicted to cost. Units: data in env steps, compute
    and total in FLOPs, batch_size in transitions, params in critic parameters.

    utd = gradient_steps / train_freq; width, batch_size and utd are rounded (see `optimum` for
    the unrounded solution) and every prediction is for this rounded configuration."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")  # inf: "Infinity"

    fit: str
    problem: str = Field(description="Which budget problem was solved.")
    budget: dict[str, float] = Field(description="The budget as given.")
    target: float = Field(description="Return threshold the configuration reaches.")
    utd: float = Field(description="gradient_steps / train_freq.")
    gradient_steps: int = Field(description="Gradient updates every train_freq env steps.")
    train_freq: int = Field(description="Env steps between rounds of gradient updates.")
    width: int = Field(description="Critic width, a multiple of the fit's width multiple.")
    params: float = Field(description="Critic parameters at that width.")
    batch_size: int = Field(description="B~ at this utd and width, a multiple of 16.")
    learning_rate: float
    env_id: str | None = Field(
        default=None, description="The env the fit's runs were on (advisor calibrate --env, or "
        "advisor fit --env of a CSV of SB3 runs that says their critic), which the rl-zoo and "
        "CleanRL outputs name when given no other; None for fits of published runs.")
    random_steps: int | None = Field(
        default=None, description="Env steps of random actions before the first update, as in "
        "the runs behind the fit (an RL client's learning_starts); None where the fit does not "
        "record it. predicted_data counts them.")
    predicted_data: float
    predicted_compute: float
    predicted_total: float
    delta: float
    interval: Interval | None = Field(
        description="Interval for the data a new run of this configuration needs, the run "
                    "averaged over as many seeds as the fit's runs (its notes say how many).")
    interval_single_seed: Interval | None = Field(
        default=None, description="The same for a run of one seed (wider); None where the fit "
                                  "has no single-seed interval.")
    within_budget: bool = Field(description="Whether the predictions stay within every budget.")
    optimum: Optimum
    near_optimal: NearOptimal | None = Field(
        default=None, description="The utd and critic sizes within 10% of the optimum's cost.")
    extrapolated: bool
    warnings: list[str]


def _batch(f: Fit, utd: float, params: float) -> int:
    """The batch size to run: B~ rounded to a multiple of 16, or, where the fit's runs all used
    one batch size, that one (the only one its laws hold for, and the one it refuses others
    against)."""
    bs = f.model.batch_size
    if bs.kind == "fixed":
        return max(1, int(round(bs.a_b)))
    return round_batch_size(float(f.batch_size(utd, params)))


#: A lower threshold needing this much more data than the target, at the answer's
#: configuration, is said (at the fits' own runs the laws cross by at most 3%, on
#: bro-torch/Pendulum-v1, and not at all on the other shipped fits).
_CROSS_TOLERANCE = 0.05


def _crossed_target(f: Fit, utd: float, params: float, target: float, data: float,
                    far: bool, within_fitted: bool) -> str:
    """A warning where a lower threshold of the fit needs more data than `target` at (utd,
    params): a run passes every lower threshold first, so the laws, fitted one per threshold,
    do not hold together there (mostly `far` outside the runs, where each extrapolates on its
    own); "" where they do."""
    lower = [j for j in f.thresholds if j < target]
    if not lower or not math.isfinite(data):
        return ""
    need = [float(f.data_to_target(utd, params, j)) for j in lower]
    k = int(np.argmax(need))
    if not need[k] > data * (1 + _CROSS_TOLERANCE):
        return ""
    where = ("this far from the runs the laws per threshold do not hold together"
             if far else "the laws, fitted one per threshold, disagree here")
    return (f"the fit's laws cross here: target {lower[k]:.4g} needs {need[k]:.4g} env steps at "
            f"this configuration, more than the {data:.4g} predicted for {target:.4g}, though a "
            f"run passes {lower[k]:.4g} first; {where}, so read the prediction as at least "
            f"{need[k]:.4g}" + (" (--within-fitted, within_fitted=True in Python, answers "
                                "inside the runs)" if far and not within_fitted else ""))


def _as_budget(budget: Budget | float | int) -> Budget:
    if isinstance(budget, Budget):
        # Revalidate: model_copy(update=...) skips validation.
        return Budget(**budget.model_dump(exclude_none=True))
    if isinstance(budget, numbers.Number) and not isinstance(budget, (bool, complex)):
        if isinstance(budget, int):
            return Budget(compute=budget)
        try:
            value = float(budget)
        except OverflowError:  # Fraction(10**400)
            raise BudgetError("compute must be a positive finite number of FLOPs, got a "
                              f"{type(budget).__name__} too large for a float") from None
        except ValueError:  # Decimal("snan")
            raise BudgetError(f"compute must be a positive finite number of FLOPs, got "
                              f"{shown(budget)}") from None
        return Budget(compute=value)
    raise BudgetError(f"budget must be a Budget or a number of FLOPs, got {shown(budget)}")


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
              target: float | None = None, level: float = DEFAULT_LEVEL,
              within_fitted: bool = False, utd: float | str | None = None,
              width: int | None = None, clear_of_runs: bool = False) -> Recommendation:
    """The configuration that spends `budget` best under `fit` (paper A, problems 1 and 2).

    - data only: least compute that reaches `target` within the data budget;
    - compute only: least data that reaches `target` within the compute budget;
    - compute and data: the highest target reachable within both (or `target`, if given);
    - total (C + delta D): the highest target whose least total fits (or `target`).
    `target` defaults to the top fitted threshold for single budgets. A plain number is a compute
    budget in FLOPs. The search stays inside `Fit.trusted_box()` (extrapolated outside the
    fitted domain is flagged), or inside the fitted ranges with `within_fitted` (a budget that
    pulls the answer outside them then gets the best configuration at their edge, or
    InfeasibleBudgetError). `level` is the coverage of the returned interval. `utd` (a number
    or "gradient_steps/train_freq", e.g. 1 or "3/2") and `width` fix those and solve the
    problem over the rest: what a codebase that runs utd 1 should use, say. Where the fit's
    runs contradict the answer for a fixed target (a data or a compute budget, or any budget
    with `target`), a warning says so and names the best configuration clear of every run
    short of the target and of the fitted step past each (Fit.closing_runs);
    `clear_of_runs` answers with it wherever such runs close the law's answer, contradicted or
    not (InfeasibleBudgetError where none fits the budget).
    """
    for name, flag in (("within_fitted", within_fitted), ("clear_of_runs", clear_of_runs)):
        if not isinstance(flag, bool):
            raise ConfigError(f"{name} must be True or False, got {shown(flag)}")
    budget = _as_budget(budget)
    if clear_of_runs and budget.problem in ("compute+data", "total") and target is None:
        raise ConfigError(f"clear_of_runs (--clear-of-runs) needs a fixed target: a "
                          f"{budget.problem} budget without one asks for the highest target it "
                          "reaches; give a target, or a data or a compute budget alone")
    f = load_fit(fit)
    pin = Pin(fraction=None if utd is None else utd_fraction(utd),
              width=None if width is None else _check_width(width))
    # Far from the fitted runs the laws over- and underflow; what that leaves is checked and
    # said in one line (_g4, _check_utd, the interval's warning), not as numpy warnings.
    with np.errstate(all="ignore"):
        try:
            return _recommend(budget, f, target, level, within_fitted, pin=pin,
                              clear=clear_of_runs)
        except InfeasibleBudgetError as exc:
            if not within_fitted:
                raise
            where = f"within the fitted ranges (within_fitted, --within-fitted): {exc}"
            try:  # its figures are the fitted ranges' minimums: say what is beyond them
                beyond = _recommend(budget, f, target, level, False, pin=pin,
                                    clear=clear_of_runs)
            except InfeasibleBudgetError as out:
                why = str(out).split(f" on {f.id}", 1)[-1].split(": ", 1)[-1]
                raise InfeasibleBudgetError(f"{where}; beyond them too: {why}") from None
            except AdvisorError:
                raise InfeasibleBudgetError(where) from None
            raise InfeasibleBudgetError(
                f"{where}; beyond them utd {beyond.gradient_steps}/{beyond.train_freq}, width "
                f"{beyond.width} reaches target {beyond.target:g} within the budget, "
                "extrapolated") from None


class Pin(NamedTuple):
    """What the user fixed: utd as (gradient_steps, train_freq), and the critic width."""

    fraction: tuple[int, int] | None = None
    width: int | None = None

    def text(self) -> str:
        """' at utd 3/2 and width 512', or '' when nothing is fixed."""
        parts = ([f"utd {self.fraction[0]}/{self.fraction[1]}" if self.fraction[1] > 1
                  else f"utd {self.fraction[0]}"] if self.fraction else []) + (
            [f"width {self.width}"] if self.width else [])
        return " at " + " and ".join(parts) if parts else ""

    def box(self, f: Fit, box: optimize.Box, range_name: str) -> optimize.Box:
        """`box` with the fixed axes collapsed onto their values, which must lie in it."""
        where = ("which within_fitted (--within-fitted) keeps to" if range_name == "fitted range"
                 else "where the laws are not used")
        if self.fraction is not None:
            u = self.fraction[0] / self.fraction[1]
            if not box.utd_low * (1 - 1e-9) <= u <= box.utd_high * (1 + 1e-9):
                raise ConfigError(f"{self.text().removeprefix(' at ')} is outside the "
                                  f"{range_name} of {f.id} "
                                  f"({box.utd_low:.3g}-{box.utd_high:.3g}), {where}; fix a "
                                  "utd inside it")
            box = optimize.Box(u, u, box.params_low, box.params_high)
        if self.width is not None:
            n = float(f.params(self.width))
            if not box.params_low * (1 - 1e-9) <= n <= box.params_high * (1 + 1e-9):
                low, high = (float(f.width(x)) for x in (box.params_low, box.params_high))
                raise ConfigError(f"width {self.width} ({n:.3g} params) is outside the "
                                  f"{range_name} of {f.id} (widths {math.ceil(low)}-"
                                  f"{math.floor(high)}, {box.params_low:.3g}-"
                                  f"{box.params_high:.3g} params), {where}; fix a width "
                                  "inside it")
            box = optimize.Box(box.utd_low, box.utd_high, n, n)
        return box


def utd_fraction(utd: float | str) -> tuple[int, int]:
    """`utd` (a positive number, or "gradient_steps/train_freq") as (gradient_steps,
    train_freq) in lowest terms, train_freq at most 4096 and gradient_steps at most 256."""
    from fractions import Fraction

    allowed = ("a positive number of updates per env step that is gradient_steps/train_freq "
               "(gradient_steps <= 256, train_freq <= 4096), e.g. 1, 0.5 or 3/2")
    from decimal import Decimal

    value = None
    try:
        if isinstance(utd, str):
            steps, slash, freq = utd.strip().partition("/")
            if slash:  # both sides: "3/" is not utd 3; "-3/-2" is not 3/2
                value = Fraction(int(steps), int(freq))
                if min(int(steps), int(freq)) <= 0:
                    value = None
            else:
                value = Fraction(steps.strip())
        elif isinstance(utd, bool):
            pass  # True == 1, but is not a utd
        elif isinstance(utd, numbers.Integral):  # numpy integers too
            value = Fraction(int(utd))
        elif isinstance(utd, (numbers.Real, Decimal)):  # numpy floats, Fraction, Decimal
            if math.isfinite(utd):
                value = Fraction(utd) if isinstance(utd, (Fraction, Decimal)) else Fraction(
                    float(utd))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError):
        value = None
    if value is None or value <= 0:
        raise ConfigError(f"utd must be {allowed}; got {shown(utd)}")
    near = value.limit_denominator(_MAX_FREQ)
    if abs(near - value) > value / 10**9 or near.numerator > 256:
        guess = value.limit_denominator(16)
        hint = (f" ({guess.numerator}/{guess.denominator}?)"
                if guess.numerator <= 256 and abs(guess - value) < 1e-3 * value else "")
        raise ConfigError(f"utd must be {allowed}; got {shown(utd)}{hint}")
    return near.numerator, near.denominator


def _check_width(width) -> int:
    if (isinstance(width, bool) or not isinstance(width, numbers.Integral)
            or not 1 <= width <= 10**7):
        raise ConfigError(f"width must be a whole number of units from 1 to 10,000,000; got "
                          f"{shown(width)}")
    return int(width)


def _enough(need: float, kind: str, attempt) -> str:
    """`need` (what the unrounded optimum spends of budget `kind`) as an error prints it: a
    4-digit budget from it up at which the rounded configuration `attempt(budget)` returns is
    within budget, so that the number typed back in as printed is enough (a rounded width, batch
    size or utd fraction can cost more than the optimum did): found by doubling the step up
    from `need`, then bisecting back toward it. `attempt` is None inside such a search."""
    text = _g4(need, "up")
    if attempt is None:
        return text

    def fits(b: float) -> bool:
        try:
            return attempt(b).within_budget
        except AdvisorError:
            return False

    low, step = float(text), 1e-3
    if fits(low):
        return text
    for _ in range(14):  # steps of 0.1% doubling: up to several hundred times the need
        high = float(_g4(low * (1 + step), "up"))
        if fits(high):
            break
        low, step = high, 2 * step
    else:
        return text  # none found (the data of a compute+data budget, say): the optimum's
    for _ in range(8):  # back down, keeping a budget that fits
        mid = float(_g4(math.sqrt(low * high), "up"))
        if not low < mid < high:
            break
        if fits(mid):
            high = mid
        else:
            low = mid
    return _g4(high, "up")


def _recommend(budget: Budget, f: Fit, target: float | None, level: float,
               within_fitted: bool = False, search: bool = True, pin: Pin = Pin(),
               part: optimize.Box | None = None, clear: bool = False) -> Recommendation:
    """recommend() on a loaded fit; `search`: also look for what the messages suggest (other
    budgets, targets, configurations); `part`: search only this part of the range (a box
    inside it, from Fit.uncontradicted_boxes); `clear`: clear_of_runs."""
    k = f.compute_per_update_param
    range_name = "fitted range" if within_fitted else "trusted range"
    full = pin.box(f, f.trusted_box(within_fitted), range_name)
    box = part or full
    on = f.id + pin.text()
    delta = budget.delta if budget.delta is not None else f.delta

    def retry(t: float | None, **kinds):
        """A function of b: the recommendation for the budget `kinds` with b for the one
        given as `...`, at target t, as a user typing b back in gets it (None: no search)."""
        if not search:
            return None
        key = next(name for name, v in kinds.items() if v is ...)
        return lambda b: _recommend(Budget(**{**kinds, key: b}), f, t, level, within_fitted,
                                    search=False, pin=pin)
    problem = budget.problem
    lo_t, hi_t = f.target_min, f.target_max

    if problem == "data":
        j = f.check_target(target)
        point = optimize.min_compute_within_data(budget.data, f.coefficients(j), k, box)
        if point is None:
            def least(t: float) -> float:
                return optimize.least_data(f.coefficients(t), k, box)

            # The same test as the answer's, so that the hinted target is one it accepts.
            best = _highest(lo_t, hi_t, lambda t: optimize.min_compute_within_data(
                budget.data, f.coefficients(t), k, box) is not None)
            raise InfeasibleBudgetError(
                f"data budget {budget.data:.4g} env steps cannot reach target {j:g} on {on}: "
                f"every configuration needs more than {_g4(least(j), 'up')} env steps"
                + _hint(best, lambda t: f"{_g4(least(t), 'up')} env steps", lo_t, hi_t,
                        least, j, "more than"))
    elif problem == "compute":
        j = f.check_target(target)
        point = optimize.min_data_within_compute(budget.compute, f.coefficients(j), k, box)
        if point is None:
            def least(t: float) -> float:
                return optimize.min_compute(f.coefficients(t), k, box)

            best = _highest(lo_t, hi_t, lambda t: optimize.min_data_within_compute(
                budget.compute, f.coefficients(t), k, box) is not None)
            raise InfeasibleBudgetError(
                f"compute budget {budget.compute:.4g} FLOPs cannot reach target {j:g} on {on}: "
                f"it needs at least "
                f"{_enough(least(j), 'compute', retry(target, compute=...))} FLOPs"
                + _hint(best, lambda t: f"{_enough(least(t), 'compute', retry(t, compute=...))}"
                        " FLOPs", lo_t, hi_t, least, j))
    elif problem == "compute+data":
        def solve(t: float):
            p = optimize.min_compute_within_data(budget.data, f.coefficients(t), k, box)
            return p if p is not None and p.compute <= budget.compute * (1 + _SLACK) else None

        j = f.check_target(target) if target is not None else _highest(
            lo_t, hi_t, lambda t: solve(t) is not None)
        point = solve(j) if j is not None else None
        if point is None:
            jj = j if j is not None else lo_t
            need = optimize.min_compute_within_data(budget.data, f.coefficients(jj), k, box)
            again = retry(target, compute=..., data=budget.data)
            why = (f"with {budget.data:.4g} env steps it needs at least "
                   f"{_enough(need.compute, 'compute', again)} FLOPs"
                   if need is not None else "it needs more than "
                   f"{_g4(optimize.least_data(f.coefficients(jj), k, box), 'up')} env steps")
            if target is None:  # where a higher target needs less compute within the data
                def need(t: float) -> float:
                    p = optimize.min_compute_within_data(budget.data, f.coefficients(t), k, box)
                    return p.compute if p is not None else math.inf
                t = _cheapest(lo_t, hi_t, need)
                if t != lo_t:
                    back = retry(t, compute=..., data=budget.data)
                    why += (f"; target {t:g}, the least demanding, needs at least "
                            f"{_enough(need(t), 'compute', back)} FLOPs")
            raise InfeasibleBudgetError(
                f"compute {budget.compute:.4g} FLOPs and data {budget.data:.4g} env steps cannot "
                f"reach {'target' if target is not None else 'even the lowest target'} {jj:g} "
                f"on {on}: {why}")
    else:
        def total_of(t: float) -> optimize.Point:
            return optimize.min_total(delta, f.coefficients(t), k, box)

        def fits_total(t: float) -> bool:
            p = total_of(t)
            return p.compute + delta * p.data <= budget.total * (1 + _SLACK)

        j = f.check_target(target) if target is not None else _highest(lo_t, hi_t, fits_total)
        if j is None or not fits_total(j):
            jj = j if j is not None else lo_t
            p = total_of(jj)
            again = retry(target, total=..., delta=budget.delta)
            why = f"it needs at least {_enough(p.compute + delta * p.data, 'total', again)} FLOPs"
            if target is None:  # where a higher target needs a smaller total
                def need(t: float) -> float:
                    q = total_of(t)
                    return q.compute + delta * q.data
                t = _cheapest(lo_t, hi_t, need)
                if t != lo_t:
                    why += (f"; target {t:g}, the least demanding, needs at least "
                            f"{_enough(need(t), 'total', retry(t, total=..., delta=budget.delta))}"
                            " FLOPs")
            raise InfeasibleBudgetError(
                f"total budget {budget.total:.4g} FLOPs (delta {delta:.3g} FLOPs per env step) "
                f"cannot reach {'target' if target is not None else 'even the lowest target'} "
                f"{jj:g} on {on}: {why}")
        point = total_of(j)

    maximise_target = problem in ("compute+data", "total") and target is None
    # The highest target the budget reaches is the fit's top one: the budget need not bind.
    capped = maximise_target and j >= hi_t - 1e-9 * max(1.0, abs(hi_t))
    if pin.fraction:  # the search's utd is the box's, up to round-off in its closed form
        point = dataclasses.replace(point, utd=box.utd_low)
    if pin.width:
        point = dataclasses.replace(point, params=box.params_low)
    rec = _describe(f, budget, j, point, delta, box, maximise_target, level, range_name, pin,
                    full=full if part else None)
    if capped:  # the optimum need not spend the budget, nor its neighbours exceed it
        near, spent = rec.near_optimal, _spent(budget, rec.optimum)
        cost = near.cost if near else None
        room = cost is not None and getattr(rec.optimum, cost) * (1 + NEAR_TOLERANCE) <= (
            getattr(budget, cost))  # the neighbours' 10% more of the cost still fits
        rec = rec.model_copy(update=dict(
            near_optimal=near.model_copy(update=dict(over_budget=False)) if room else near,
            warnings=[*rec.warnings, *([
                f"the fit's top target, {hi_t:g}, takes only {spent}: its thresholds end "
                "there, so what the rest of the budget would buy is not predicted"]
                if spent else [])]))
    if (pin.fraction or pin.width) and part is None:  # a part's: said by _offer_uncontradicted
        cost = _pin_cost(budget, f, target, level, within_fitted, pin, rec, maximise_target,
                         clear=clear)
        if cost:
            rec = rec.model_copy(update=dict(warnings=[cost, *rec.warnings]))
    if search and not maximise_target:
        rec = _offer_uncontradicted(rec, budget, f, level, within_fitted, pin, box, clear)
    return rec


def _clear_of_runs(rec: Recommendation, budget: Budget, f: Fit, level: float,
                   within_fitted: bool, pin: Pin, box: optimize.Box) -> Recommendation | None:
    """The best answer to `rec`'s problem and target among the configurations clear of the
    fit's runs that never reached it: the open parts of the range `box` that such runs leave
    (Fit.uncontradicted_boxes: each closes what it dominates and the fitted step past it,
    whatever the data, so that what is clear does not change with the budget); the problem is
    solved in each part and rounded, and an answer is kept where it is within the budget and
    inside an open part (its rounding may leave it); None where none is."""
    parts = f.uncontradicted_boxes(box, rec.target)
    best = None
    for part in parts:
        try:
            alt = _recommend(budget, f, rec.target, level, within_fitted, search=False, pin=pin,
                             part=part)
        except AdvisorError:
            continue
        cost = getattr(alt, f"predicted_{budget.cost}")
        if alt.within_budget and any(p.contains(alt.utd, alt.params) for p in parts) and (
                best is None or cost < getattr(best, f"predicted_{budget.cost}")):
            best = alt
    return best


_CLEAR = "clear of such runs (and of the fitted step past each)"


def _closed_by(f: Fit, rec: Recommendation, run) -> str:
    """How `run` (Fit.closing_runs) closes `rec`'s configuration, in words."""
    under = run.utd >= rec.utd * (1 - 1e-9) and run.params >= rec.params * (1 - 1e-9)
    passed = f"{run.reached:.4g}" if run.reached is not None else "none"
    return (f"{'no larger in utd and size than' if under else 'within a fitted step past'} the "
            f"runs at utd {run.utd:.3g}, params {run.params:.3g}, which never reached return "
            f"{f.threshold_below(rec.target):.4g} in {run.horizon:.4g} env steps (the highest "
            f"of the fit's thresholds they passed: {passed})")


def _offer_uncontradicted(rec: Recommendation, budget: Budget, f: Fit, level: float,
                          within_fitted: bool, pin: Pin, box: optimize.Box, take: bool
                          ) -> Recommendation:
    """`rec`, where its runs contradict it, with the contradiction warning naming the best
    configuration clear of the runs short of its target (_clear_of_runs); with `take`
    (clear_of_runs), that configuration's Recommendation wherever such runs close `rec`'s,
    saying why (and `rec` where none does). The law's answer is the default: on the archive
    grids, picking among configurations the runs leave open cuts the picks that never reach a
    target of a data budget but costs more on the rest (benchmarks/choice.py, the README's
    Choices), so it is offered, not imposed."""
    if take:
        closing = f.closing_runs(rec.utd, rec.params, rec.target)
        if not closing:
            note = ([f"clear_of_runs: {f.id} records no runs (schema "
                     f"{f.model.schema_version}), so it excludes nothing"]
                    if f.model.domain.runs is None else [])
            return rec.model_copy(update=dict(warnings=[*note, *rec.warnings])) if note else rec
        run = min(closing, key=lambda r: (  # one it dominates first, then the smallest
            not (r.utd >= rec.utd * (1 - 1e-9) and r.params >= rec.params * (1 - 1e-9)),
            r.utd * r.params, r.utd))
        best = _clear_of_runs(rec, budget, f, level, within_fitted, pin, box)
        if best is None:
            raise InfeasibleBudgetError(
                f"no configuration{pin.text()} within the budget is clear of the runs short of "
                f"target {rec.target:g} (and of the fitted step past each): the law's answer, "
                f"utd {rec.gradient_steps}/{rec.train_freq} and width {rec.width}, is "
                f"{_closed_by(f, rec, run)}; without clear_of_runs (--clear-of-runs) the law's "
                "answer is given")
        more = (getattr(best, f"predicted_{budget.cost}")
                / getattr(rec, f"predicted_{budget.cost}"))
        why = (f"clear_of_runs: the law's answer, utd {rec.gradient_steps}/{rec.train_freq} and "
               f"width {rec.width}, is {_closed_by(f, rec, run)}; this is the best "
               f"configuration{pin.text()} {_CLEAR}, at {more:.3g}x its {budget.cost}")
        cost = (_pin_cost(budget, f, rec.target, level, within_fitted, pin, best, False,
                          clear=True) if pin.fraction or pin.width else None)
        return best.model_copy(update=dict(warnings=[why, *([cost] if cost else []),
                                                     *best.warnings]))
    at = [i for i, w in enumerate(rec.warnings) if w.startswith(CONTRADICTED)]
    if not at:
        return rec
    best = _clear_of_runs(rec, budget, f, level, within_fitted, pin, box)
    if best is None:
        offer = f"; no configuration{pin.text()} within the budget is {_CLEAR}"
    else:
        more = (getattr(best, f"predicted_{budget.cost}")
                / getattr(rec, f"predicted_{budget.cost}"))
        offer = (f"; the best configuration{pin.text()} {_CLEAR}: utd {best.gradient_steps}/"
                 f"{best.train_freq}, width {best.width}"
                 f"{' (extrapolated)' if best.extrapolated else ''}, predicted "
                 f"{best.predicted_data:.4g} env steps and {best.predicted_compute:.4g} FLOPs, "
                 f"{more:.3g}x this one's {budget.cost} (clear_of_runs=True, --clear-of-runs, "
                 "answers with it)")
    warnings = list(rec.warnings)
    warnings[at[0]] += offer
    return rec.model_copy(update=dict(warnings=warnings))


def _pin_cost(budget: Budget, f: Fit, target: float | None, level: float,
              within_fitted: bool, pin: Pin, rec: Recommendation, maximise_target: bool,
              clear: bool = False) -> str | None:
    """What fixing utd or width costs against the best configuration without it (`clear`:
    the best clear of the runs short of the target, where they close the law's): more
    of what the problem minimises, or a lower target where it maximises the target; None where
    it costs under 0.05% (it was printed as "costs 2.7e-13% more")."""
    try:
        unpinned = _recommend(budget, f, target, level, within_fitted, search=clear, clear=clear)
    except AdvisorError:
        return None
    free = unpinned.optimum
    moved = clear and unpinned.warnings[:1] != [] and unpinned.warnings[0].startswith(
        "clear_of_runs: the law's answer")
    fixed, best = rec.optimum, (f"the best configuration{' clear of such runs' if moved else ''}"
                                f" without it (utd {free.utd:.3g}, width {free.width:.0f}")
    what = "fixing " + pin.text().removeprefix(" at ")
    if maximise_target and fixed.target < free.target - 1e-9 * max(1.0, abs(free.target)):
        return (f"{what} reaches target {fixed.target:.4g} where {best}) reaches "
                f"{free.target:.4g}")
    cost = budget.cost
    units = "env steps" if cost == "data" else "FLOPs"
    spent, least = getattr(fixed, cost), getattr(free, cost)
    if spent <= least * (1 + 5e-4):  # the pin is (up to round-off) the best anyway: no cost
        return None
    return (f"{what} costs {_pct(100 * (spent / least - 1))}% more {cost} than {best}: "
            f"{least:.4g} {units})")


def _hint(best: float | None, needs: Callable[[float], str], lo: float, hi: float,
          need: Callable[[float], float], asked: float, verb: str = "at least") -> str:
    """The end of an infeasible budget's error: the highest target it reaches, or, where it
    reaches none, the target needing least (`need`, on _highest's grid) and what it needs
    (`needs(target)`, only then: its search costs); nothing where that is the target `asked`
    about. The least demanding is the lowest target where the cost rises with the target;
    where it does not (returns not monotone in model size), a higher target can need less."""
    if best is None:
        t = _cheapest(lo, hi, need)
        if need(t) >= need(asked) * (1 - 1e-6):  # asked about the least demanding itself
            return ""
        name = f"the lowest target {t:g}" if t == lo else f"target {t:g}, the least demanding,"
        return f"; {name} needs {verb} {needs(t)}"
    return f"; the highest target this budget reaches is {_g4(best, 'down')}{TARGET_HINT}"


def _cheapest(lo: float, hi: float, need: Callable[[float], float], n_grid: int = 33) -> float:
    """The target of [lo, hi] (on _highest's grid, as printed: 4 significant digits) that
    needs least; the lowest on ties."""
    grid = [lo, *(t for t in (float(f"{g:.4g}") for g in np.linspace(lo, hi, n_grid)[1:])
                  if lo < t <= hi)]
    needs = [need(t) for t in grid]
    i = int(np.argmin(needs))
    return grid[i] if needs[i] < needs[0] * (1 - 1e-9) else lo


#: How to ask for that target (left out where there is no way to, as in `advisor export`).
TARGET_HINT = " (use --target/target=)"


def _g4(x: float, toward: str) -> str:
    """`x` to 4 significant digits, rounded `toward` "down" or "up": a hinted target (down) is
    always reachable, and a needed budget (up) is never below `x` (_enough makes it enough for
    the rounded configuration too)."""
    if math.isnan(x):  # a degenerate fit file: coefficients that validate one by one
        raise FitFileError("the fit's laws give no finite answer here (nan): its coefficients "
                           "are degenerate; refit it, or use another fit")
    return round_toward(x, toward, 4)


# --- rounding ------------------------------------------------------------------------------
def utd_fractions(utd: float, max_freq: int = 4, max_steps: int = 256) -> list[tuple[int, int]]:
    """(gradient_steps, train_freq) pairs in lowest terms around `utd`: for each train_freq up
    to max(max_freq, 1/utd + 1), the gradient step counts just below and above utd * train_freq."""
    _check_utd(utd)
    out = set()
    for q in range(1, max(max_freq, min(math.ceil(1.0 / utd), _MAX_FREQ) + 1) + 1):
        base = math.floor(utd * q)
        for p in (base - 1, base, base + 1, base + 2):
            if 1 <= p <= max_steps:
                g = math.gcd(p, q)
                out.add((p // g, q // g))
    return sorted(out or {_clipped(utd, max_steps)}, key=lambda pq: (pq[0] / pq[1], pq[1]))


_MAX_FREQ = 4096  # train_freq candidates stop here however small the utd


def _check_utd(utd: float) -> None:
    """The optimum's utd: a degenerate fit file (coefficients that validate one by one) can
    give nan or 0; say so in one line rather than fail in the rounding."""
    if not (math.isfinite(utd) and utd > 0):
        raise FitFileError(f"the fit's laws give no usable utd here ({utd}): its coefficients "
                           "are degenerate; refit it, or use another fit")


def _clipped(utd: float, max_steps: int) -> tuple[int, int]:
    """The one candidate left when utd lies beyond every (gradient_steps <= max_steps,
    train_freq) pair: the nearest, max_steps / 1 (or 1 / _MAX_FREQ below)."""
    return (max_steps, 1) if utd >= 1 else (1, _MAX_FREQ)


def _width_candidates(f: Fit, params: float) -> np.ndarray:
    m = f.model.architecture.width_multiple
    w = float(f.width(params))
    base = math.floor(w / m) if math.isfinite(w) else 1
    return np.array(sorted({m * max(1, k) for k in range(base - 1, base + 3)}), dtype=float)


_WIDE = 100.0  # an interval wider than this factor (high / low) is flagged as uninformative


def _wide_fractions(utd: float, max_freq: int = 8, max_steps: int = 256,
                    count: int = 160) -> list[tuple[int, int]]:
    """(gradient_steps, train_freq) in lowest terms within 2x of `utd`, train_freq up to
    `max_freq`: the `count` nearest to utd in log."""
    _check_utd(utd)
    out = {}
    for q in range(1, max_freq + 1):
        for p in range(max(1, math.floor(utd * q / 2)), min(max_steps, math.ceil(utd * q * 2)) + 1):
            g = math.gcd(p, q)
            out[(p // g, q // g)] = abs(math.log(p / q / utd))
    if not out:
        return [_clipped(utd, max_steps)]
    return sorted(sorted(out, key=out.get)[:count], key=lambda pq: (pq[0] / pq[1], pq[1]))


def _wide_widths(f: Fit, params: float, count: int = 40) -> np.ndarray:
    """Width multiples within 2x of the width of `params` (at most `count`, nearest first)."""
    m = f.model.architecture.width_multiple
    w = float(f.width(params))
    if not math.isfinite(w):
        return _width_candidates(f, params)
    ks = range(max(1, math.floor(w / m / 2)), math.ceil(2 * w / m) + 1)
    near = sorted(ks, key=lambda k: abs(math.log(k * m / w)))[:count]
    return np.array(sorted(m * k for k in near), dtype=float)


class _Rounded(NamedTuple):
    gradient_steps: int
    train_freq: int
    width: int
    target: float
    within_budget: bool
    excess: str | None  # which budget it exceeds and by how much (not within budget)
    outside_box: bool
    distance: float  # log units outside the box, utd and params summed (0 inside)

    def rank(self, strict: bool = False) -> tuple:
        """Larger is better: within budget, then inside the box, then (`strict`) nearer it,
        then a higher target."""
        return (self.within_budget, not self.outside_box, -self.distance if strict else 0.0,
                self.target)


def _cost_of(f: Fit, budget: Budget, r: _Rounded, delta: float) -> float:
    """What `budget`'s problem minimises (data, compute or total) for the rounded `r`."""
    utd, params = r.gradient_steps / r.train_freq, float(f.params(r.width))
    data = float(f.data_to_target(utd, params, r.target))
    compute = float(f.compute(utd, params, data))
    return {"data": data, "compute": compute, "total": compute + delta * data}[budget.cost]


#: Where the rounded neighbours cost over NEAR_TOLERANCE more than the optimum, a wider
#: candidate (train_freq up to 8, widths within 2x) replaces them if it costs this much less.
WIDER_GAIN = 0.05


def _point_cost(budget: Budget, point: optimize.Point, delta: float) -> float:
    """What `budget`'s problem minimises for the unrounded `point`."""
    return {"data": point.data, "compute": point.compute,
            "total": point.compute + delta * point.data}[budget.cost]


def _rounded(f: Fit, budget: Budget, target: float, point: optimize.Point, delta: float,
             maximise_target: bool, box: optimize.Box, wide: bool = False,
             strict: bool = False, pin: Pin = Pin()) -> _Rounded:
    """The rounded configuration to recommend. The candidates are the neighbours of the
    optimum (train_freq up to 4, the widths around it), or with `wide` every utd with
    train_freq up to 8 and every width within 2x of it. For a given target, the neighbour
    best for the problem within the budget is taken, inside `box` (where the law is trusted)
    where one inside fits. Taking a better one a rounding step outside instead was tried
    (session 20): predicted data then never rose with the compute budget by more than 1%
    (inside-first: 16% on bro/hopper-hop near 2e14 FLOPs, where the optimum is pinned to the
    box's edge, 10x below the smallest run, and the neighbour inside is a whole width multiple
    further), but 384 of 3,105 recommendations over 24 fits left the box, against 29
    (benchmarks/rounding_box.py): the box wins. Where none inside fits, with `strict`
    (within_fitted: the box is the fitted ranges, which the user asked to stay in), the
    nearest outside that fits. For the highest target,
    candidates inside the box come first where one reaches within 1% of the fitted range of
    the best; each candidate's reach is bisected to the budget's edge. What `pin` fixes is
    the only candidate on its axis."""
    fracs = ([pin.fraction] if pin.fraction else _wide_fractions(point.utd) if wide
             else utd_fractions(point.utd))
    u = np.array([p / q for p, q in fracs])
    widths = (np.array([float(pin.width)]) if pin.width else _wide_widths(f, point.params)
              if wide else _width_candidates(f, point.params))
    n = np.asarray(f.params(widths), dtype=float)
    uu, nn = np.meshgrid(u, n, indexing="ij")  # (n_utd, n_width)
    k = f.compute_per_update_param
    flat_u, flat_n = uu.ravel(), nn.ravel()
    tol = 1e-9
    inside = ((flat_u >= box.utd_low * (1 - tol)) & (flat_u <= box.utd_high * (1 + tol))
              & (flat_n >= box.params_low * (1 - tol)) & (flat_n <= box.params_high * (1 + tol)))

    with np.errstate(divide="ignore"):
        distance = (np.maximum(0.0, np.log(box.utd_low / flat_u))
                    + np.maximum(0.0, np.log(flat_u / box.utd_high))
                    + np.maximum(0.0, np.log(box.params_low / flat_n))
                    + np.maximum(0.0, np.log(flat_n / box.params_high)))
    distance = np.where(inside, 0.0, distance)

    def nearest(allowed: np.ndarray) -> np.ndarray:
        """Of `allowed`, with `strict`, those inside the box, or where none is, those nearest
        it (without `strict`: all of them)."""
        if not strict or not allowed.any():
            return allowed
        if (allowed & inside).any():
            return allowed & inside
        return allowed & (distance <= distance[allowed].min() + 1e-12)

    def config(i: int, target_i: float, fits: bool, excess: str | None = None) -> _Rounded:
        return _Rounded(*fracs[i // len(widths)], int(widths[i % len(widths)]), target_i, fits,
                        excess, not bool(inside[i]), float(distance[i]))

    def costs(targets: np.ndarray):
        """data, compute, total: (n_targets, n_candidates)."""
        coef = f.coefficient_table(targets)
        d = (coef[:, 0, None] + (coef[:, 1, None] / flat_u) ** coef[:, 2, None]
             + (coef[:, 3, None] / flat_n) ** coef[:, 4, None])
        c = k * flat_u * flat_n * d
        return d, c, c + delta * d

    def costs_each(targets: np.ndarray):
        """data, compute, total of candidate i at targets[:, i]: (n_targets, n_candidates)."""
        coef = f.coefficient_table(targets.ravel()).reshape(*targets.shape, 5)
        d = (coef[..., 0] + (coef[..., 1] / flat_u) ** coef[..., 2]
             + (coef[..., 3] / flat_n) ** coef[..., 4])
        c = k * flat_u * flat_n * d
        return d, c, c + delta * d

    def within(d, c, t, slack: float = _SLACK):
        ok = np.ones(d.shape, bool)
        if budget.data is not None:
            ok &= d <= budget.data * (1 + slack)
        if budget.compute is not None:
            ok &= c <= budget.compute * (1 + slack)
        if budget.total is not None:
            ok &= t <= budget.total * (1 + slack)
        return ok

    if maximise_target:
        grid = np.linspace(f.target_min, target, 241)
        d, c, t = costs(grid)
        ok = within(d, c, t)
        # reach[i]: the last grid target candidate i reaches within budget (D grows with it).
        last_ok = np.where(ok, np.arange(len(grid))[:, None], -1).max(axis=0)
        reach = np.where(last_ok >= 0, grid[np.maximum(last_ok, 0)], -np.inf)
        # Each candidate's reach lies between its last grid target and the next: narrowed by
        # 31 targets at a time (each cuts the bracket 32x), five times: to 2^-25 of a grid step
        # (1/240 of the targets up to the optimum's), far below any target a user tells apart,
        # in 5 vectorised steps where halving took 48 (three times compute+data's time).
        open_ = (last_ok >= 0) & (last_ok < len(grid) - 1)
        if open_.any():
            lo, hi = reach.copy(), grid[np.minimum(last_ok + 1, len(grid) - 1)]
            steps = np.linspace(0.0, 1.0, 33)[1:-1, None]
            cols = np.arange(lo.size)
            for _ in range(5):
                mids = np.where(open_, lo + steps * (hi - lo), grid[0])  # (31, n)
                fits = within(*costs_each(mids), slack=0.0)  # to the budget, not past it
                n_fit = fits.sum(axis=0)  # D grows with the target: the first n_fit fit
                lo = np.where(open_ & (n_fit > 0), mids[np.maximum(n_fit - 1, 0), cols], lo)
                hi = np.where(open_ & (n_fit < len(steps)),
                              mids[np.minimum(n_fit, len(steps) - 1), cols], hi)
            reach = np.where(open_, lo, reach)
        # strict: inside the fitted ranges, as asked; where no candidate there reaches any
        # target within budget, the nearest ones outside
        reach = np.where(nearest(np.isfinite(reach)), reach, -np.inf)
        if np.isfinite(reach).any():
            best = reach.max()
            tie = np.flatnonzero(reach >= best - 1e-12)
            # Inside the box, a target within 1% of the fitted range below the best is as good.
            near = inside & (reach >= best - 0.01 * (f.target_max - f.target_min))
            if not inside[tie].any() and near.any():
                best = reach[near].max()
                tie = np.flatnonzero(near & (reach >= best - 1e-12))
            elif inside[tie].any():
                tie = tie[inside[tie]]
            _, c_best, t_best = costs(np.array([best]))
            # Ties on the target: the problem's own objective (least compute within the data
            # budget for compute+data, least total for total).
            cost = c_best if budget.problem == "compute+data" else t_best
            return config(int(tie[np.argmin(cost[0, tie])]), float(best), True)
    d, c, t = (x[0] for x in costs(np.array([target])))
    ok = within(d, c, t)
    objective = {"data": d, "compute": c, "total": t}[budget.cost]
    for allowed in (ok & inside, nearest(ok)):
        if allowed.any():
            return config(int(np.flatnonzero(allowed)[np.argmin(objective[allowed])]), target,
                          True)
    # Nothing rounded fits: the least excess over any budget.
    ratios = [x / b for x, b in ((d, budget.data), (c, budget.compute), (t, budget.total))
              if b is not None]
    i = int(np.argmin(np.max(ratios, axis=0)))
    over = [f"{name} by {_pct(100 * (x[i] / b - 1))}% ({x[i]:.4g} > {b:.4g} {_UNITS[name]})"
            for name, x, b in (("data", d, budget.data), ("compute", c, budget.compute),
                               ("total", t, budget.total)) if b is not None and x[i] > b]
    return config(i, target, False, "; ".join(over))


def _spent(budget: Budget, optimum: Optimum) -> str:
    """The share the unrounded `optimum` spends of each budget it leaves more than the
    near-optimal tolerance of ("35% of the total (3.481e+16 of 1e+17 FLOPs)"); "" where none
    (rounding alone moves a configuration a few percent)."""
    parts = [(name, x, b) for name, x, b in (
        ("total", optimum.total, budget.total), ("compute", optimum.compute, budget.compute),
        ("data", optimum.data, budget.data))
        if b is not None and x * (1 + NEAR_TOLERANCE) < b]
    return " and ".join(f"{_pct(100 * x / b)}% of the {name} ({x:.4g} of {b:.4g} "
                        f"{_UNITS[name]})" for name, x, b in parts)


def _near_optimal(f: Fit, budget: Budget, target: float, point: optimize.Point, delta: float,
                  box: optimize.Box, pin: Pin = Pin(), maximise_target: bool = False
                  ) -> NearOptimal | None:
    """NearOptimal around the unrounded optimum `point` (None where the fit's laws give no
    finite answer there, or where utd and width are both fixed: nothing is left to vary)."""
    if pin.fraction and pin.width:
        return None
    cost = budget.cost
    # With a target given, the neighbours keep to every budget (a compute budget beside the
    # data one, a total one); maximising the target, the optimum spends its budget, and they
    # may take `tolerance` more of its cost (over_budget).
    keep = not maximise_target
    region = optimize.near_optimal(
        f.coefficients(target), f.compute_per_update_param, box, point, cost,
        tolerance=NEAR_TOLERANCE, delta=delta,
        data_budget=budget.data if budget.data is not None else math.inf,
        compute_budget=(budget.compute if budget.compute is not None
                        and (cost == "data" or keep) else math.inf),
        total_budget=budget.total if budget.total is not None and keep else math.inf)
    if pin.fraction:  # exactly what was fixed, for describe()'s "(fixed)"
        region = dataclasses.replace(region, utd_low=box.utd_low, utd_high=box.utd_high)
    if pin.width:
        region = dataclasses.replace(region, params_low=box.params_low,
                                     params_high=box.params_high)
    values = (region.utd_low, region.utd_high, region.params_low, region.params_high)
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None
    widths = f.width(np.array([region.params_low, region.params_high]))
    return NearOptimal(tolerance=NEAR_TOLERANCE, cost=cost, utd_low=region.utd_low,
                       utd_high=region.utd_high, params_low=region.params_low,
                       params_high=region.params_high,
                       width_low=float(widths[0]), width_high=float(widths[1]),
                       at_edge=[e for e in region.at_edge if not (
                           pin.fraction and e.startswith("utd") or pin.width
                           and e.startswith("params"))],
                       fixed=[name for name, v in (("utd", pin.fraction), ("width", pin.width))
                              if v],
                       over_budget=maximise_target)


def _describe(f: Fit, budget: Budget, target: float, point: optimize.Point, delta: float,
              box: optimize.Box, maximise_target: bool, level: float,
              range_name: str = "trusted range", pin: Pin = Pin(),
              full: optimize.Box | None = None) -> Recommendation:
    """The Recommendation of the rounded configuration near `point`, the optimum in `box`;
    `full`: the whole searched range where `box` is a part of it (clear_of_runs)."""
    strict = range_name == "fitted range"
    rounded = _rounded(f, budget, target, point, delta, maximise_target, box, strict=strict,
                       pin=pin)
    # Look further where the neighbours miss the budget or the box, or (highest target) fall
    # short of the optimum's target by more than the 1% of the range the box may cost.
    short = maximise_target and rounded.target < target - 0.01 * (f.target_max - f.target_min)
    if not rounded.within_budget or rounded.outside_box or short:
        wider = _rounded(f, budget, target, point, delta, maximise_target, box, wide=True,
                         pin=pin)
        if wider.rank(strict) > rounded.rank(strict):
            rounded = wider
    elif not maximise_target and (full is not None or _cost_of(f, budget, rounded, delta) > (
            1 + NEAR_TOLERANCE) * _point_cost(budget, point, delta)):
        # A part's optimum sits on an edge the runs drew, where the neighbours inside it are
        # few: the wider candidates' best where it costs less (up to 17% less on
        # bro/stick-pull-v2 --data 1e6 --clear-of-runs, a reviewer's). So too where the
        # neighbours cost more than the near-optimal tolerance over the optimum (utd 1/2 at
        # 1.36x the compute of utd 0.369 on a few-shot Pendulum-v1 fit, where 3/8 costs
        # 1.10x: a new user's), where the wider one costs WIDER_GAIN less: utd 9/8 in place
        # of 1/1 for 0.4% less compute (bro/h1-crawl-v0 --data 5e5 --within-fitted) is a
        # stranger ratio for a difference the laws do not resolve.
        wider = _rounded(f, budget, target, point, delta, maximise_target, box, wide=True,
                         pin=pin)
        gain = 1.0 if full is not None else 1.0 + WIDER_GAIN
        if wider.rank(strict) >= rounded.rank(strict) and gain * _cost_of(
                f, budget, wider, delta) < _cost_of(f, budget, rounded, delta):
            rounded = wider
    steps, freq, width, target_r, within, excess, outside_box, _ = rounded
    utd_r = steps / freq
    params_r = float(f.params(width))
    data_r = float(f.data_to_target(utd_r, params_r, target_r))
    compute_r = float(f.compute(utd_r, params_r, data_r))
    warnings: list[str] = []
    dom = f.model.domain
    utd_in, params_in = dom.contains(utd_r, params_r)
    stay = ("" if range_name == "fitted range" else
            " (--within-fitted, within_fitted=True in Python, searches inside it)")
    if not utd_in:
        warnings.append(f"utd {utd_r:.3g} is outside the fitted range {dom.utd.low:g}-"
                        f"{dom.utd.high:g}: extrapolated"
                        f"{_BELOW if utd_r < dom.utd.low else ''}"  # above: misses both ways
                        f"{'' if pin.fraction else stay}")
        stay = "" if not pin.fraction else stay
    if not params_in:
        warnings.append(f"params {params_r:.3g} is outside the fitted range "
                        f"{dom.params.low:.3g}-{dom.params.high:.3g}: extrapolated"
                        f"{_BELOW if params_r < dom.params.low else _ABOVE}{stay}")
    warnings += _coverage_warnings(f, utd_r, params_r)
    warnings += _contradiction_warnings(f, utd_r, params_r, target_r, data_r)
    beyond = dom.horizon is not None and data_r > dom.horizon * (1 + 1e-9)
    if beyond:
        warnings.append(f"the predicted data {data_r:.4g} env steps is beyond the longest run "
                        f"the fit saw ({dom.horizon:.4g} steps): extrapolated")
    utd_edge, params_edge = box.on_edge(point.utd, point.params)
    utd_edge, params_edge = utd_edge and not pin.fraction, params_edge and not pin.width
    if full is not None:  # a part of the range: its own edges are where the runs close it
        on_full = full.on_edge(point.utd, point.params)
        for name, at, low, high, whole in (
                ("utd", utd_edge, box.utd_low, box.utd_high, on_full[0]),
                ("params", params_edge, box.params_low, box.params_high, on_full[1])):
            if at and not whole:
                warnings.append(f"clear_of_runs holds {name} at the edge of the part of the "
                                f"{range_name} that the runs short of the target leave open "
                                f"({name} {low:.3g}-{high:.3g} there)")
        utd_edge, params_edge = utd_edge and on_full[0], params_edge and on_full[1]
        outside_box = outside_box and not full.contains(utd_r, params_r)
    whole = full or box  # the range the messages name
    beyond_edge = ("the search stops there (within_fitted)" if range_name == "fitted range"
                   else "the law is not used further out")
    if utd_edge:
        warnings.append(f"the budget pulls utd to the edge of the {range_name} "
                        f"{whole.utd_low:.3g}-{whole.utd_high:.3g}; {beyond_edge}")
    if params_edge:
        warnings.append(f"the budget pulls params to the edge of the {range_name} "
                        f"{whole.params_low:.3g}-{whole.params_high:.3g}; {beyond_edge}")
    if outside_box and within:
        warnings.append(f"rounded to utd {steps}/{freq} and width {width} ({params_r:.3g} params), "
                        f"just outside the {range_name} (utd {whole.utd_low:.3g}-"
                        f"{whole.utd_high:.3g}, params {whole.params_low:.3g}-"
                        f"{whole.params_high:.3g}): no rounded configuration tried inside it "
                        "(train_freq up to 8, widths within 2x) does as well within the budget")
    for note in f.model.provenance.notes:  # "fit check FAILED: <check>: <what>"
        check = note.removeprefix(CHECKS_FAILED_NOTE).lstrip(": ").split(":")[0]
        if note.startswith(CHECKS_FAILED_NOTE) and check != "baseline":  # that one: below
            warnings.append(f"{f.id}: {printable(note)} (when it was made; do not trust what "
                            "it names)")
    g = f.model.goodness_of_fit
    base = g.baseline_loglinear_leave_one_config_out
    if base is not None and g.leave_one_config_out >= base:
        warnings.append(f"on {f.id} the law predicts held-out runs no better than a log-linear "
                        f"baseline (leave-one-config-out error {100 * g.leave_one_config_out:.1f}% "
                        f"vs {100 * base:.1f}%): the trade-off it recommends is weakly supported")
    bs = f.model.batch_size
    if bs.kind == "fixed":
        warnings.append(f"the runs behind {f.id} all used batch size {bs.a_b:g}, so the fit "
                        "recommends it and cannot tell whether another is better")
    if not within:
        warnings.append(f"no rounded configuration near the optimum stays within the budget: "
                        f"utd {steps}/{freq}, width {width}"
                        + (f" (outside the {range_name})" if outside_box else "")
                        + f" exceeds {excess} (widths are "
                        f"multiples of {f.model.architecture.width_multiple}, utd is "
                        f"gradient_steps/train_freq); the unrounded optimum in `optimum` fits")
    elif f"{target_r:.4g}" != f"{target:.4g}":  # a loss that shows: not 577.00626 of 577.00641
        warnings.append(f"rounding costs target: the rounded configuration reaches {target_r:.4g} "
                        f"within the budget, the unrounded optimum {target:.4g}")
    low_high = f.interval(utd_r, params_r, target_r, level)
    interval = None if low_high is None else Interval(
        low=float(low_high[0]), high=float(low_high[1]), level=level)
    one = f.interval(utd_r, params_r, target_r, level, single_seed=True)
    one_seed = None if one is None else Interval(low=float(one[0]), high=float(one[1]),
                                                 level=level)
    if interval is not None and not interval.high <= interval.low * _WIDE:  # or 0 - inf
        factor = interval.high / interval.low if interval.low > 0 else math.inf
        warnings.append(f"the {100 * level:g}% interval spans a factor of "
                        f"{factor:.3g} ({interval.low:.3g}-"
                        f"{interval.high:.3g} env steps): this far from the fitted runs the "
                        "predicted data says little; run a configuration inside the fitted range")
    if not maximise_target:
        least = _point_cost(budget, point, delta)
        spent = {"data": data_r, "compute": compute_r,
                 "total": compute_r + delta * data_r}[budget.cost]
        if spent > (1 + NEAR_TOLERANCE) * least:
            tried = ", ".join(x for x, fixed in (("train_freq up to 8", pin.fraction),
                                                  ("widths within 2x", pin.width)) if not fixed)
            tried = tried or "the fixed utd and width"
            warnings.append(
                f"rounding costs {_pct(100 * (spent / least - 1))}% more {budget.cost}: utd "
                f"{steps}/{freq} and width {width} need {spent:.4g} {_UNITS[budget.cost]} where "
                f"the unrounded optimum in `optimum` (utd {point.utd:.3g}, width "
                f"{float(f.width(point.params)):.0f}) needs {least:.4g}; no rounded "
                f"configuration tried ({tried}) costs less within the budget inside the "
                f"{range_name}")
    crossed = _crossed_target(f, utd_r, params_r, target_r, data_r,
                              far=not (utd_in and params_in) or beyond,
                              within_fitted=range_name == "fitted range")
    if crossed:
        warnings.append(crossed)
    starts = f.model.random_steps
    if starts is not None and starts >= data_r:
        warnings.append(f"the fit's runs take {starts:,} random env steps before learning, as "
                        f"many as the predicted data ({data_r:.4g} env steps): a run with "
                        "learning_starts this high never updates")
    if f.model.prediction_interval is None:
        warnings.append(f"{f.id} carries no calibrated prediction interval (schema version "
                        f"{f.model.schema_version}); the interval is the bootstrap spread of the "
                        "coefficients only and understates run-to-run noise")
    width_exact = float(f.width(point.params))
    near = _near_optimal(f, budget, target, point, delta, box, pin, maximise_target)
    return Recommendation(
        fit=f.id, problem=budget.problem, budget=budget.model_dump(exclude_none=True),
        target=target_r, utd=utd_r, gradient_steps=steps, train_freq=freq, width=width,
        params=params_r, batch_size=_batch(f, utd_r, params_r),
        learning_rate=f.learning_rate, env_id=f.env_id, random_steps=f.model.random_steps,
        predicted_data=data_r, predicted_compute=compute_r,
        predicted_total=compute_r + delta * data_r, delta=delta, interval=interval,
        interval_single_seed=one_seed, within_budget=within,
        optimum=Optimum(utd=point.utd, params=point.params, width=width_exact,
                        batch_size=float(f.batch_size(point.utd, point.params)), target=target,
                        data=point.data, compute=point.compute,
                        total=point.compute + delta * point.data),
        near_optimal=near, extrapolated=not (utd_in and params_in) or beyond, warnings=warnings)
