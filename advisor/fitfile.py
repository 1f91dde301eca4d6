"""The fit file: a versioned JSON document validated by a pydantic model.

A fit file is data, never code: it is read with `json.loads`, validated by `FitFile`, and its
content hash is checked on load. `advisor schema` prints `FitFile.model_json_schema()`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from advisor.errors import FitFileError, one_line, span
from advisor.files import (
    MAX_FILE_BYTES,
    atomic_write_bytes,
    is_iso_date,
    load_json,
    read_limited,
)

SCHEMA_VERSION = 4
#: The held-out schemes a prediction interval's `coverage` records (calibration.intervals and,
#: for few-shot fits, calibration.prior).
COVERAGE_KEYS = (
    "leave_one_config_out", "single_seed_leave_one_config_out", "interior_utd_rows_out",
    "interior_params_columns_out", "largest_utd_row_out", "largest_params_column_out",
    "smallest_utd_row_out", "smallest_params_column_out", "prior_family_leave_one_task_out")
FIT_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,100}/[A-Za-z0-9_.\-]{1,100}$"


def fit_id_ok(text: str) -> bool:
    """algorithm/env: FIT_ID_PATTERN, with a letter or digit in each part ('..' and '.' would be
    paths)."""
    return (isinstance(text, str) and re.fullmatch(FIT_ID_PATTERN, text) is not None
            and all(re.search(r"[A-Za-z0-9]", part) for part in text.split("/")))


def _fit_id(text: str) -> str:
    if not fit_id_ok(text):
        raise ValueError("a fit id is algorithm/env, each 1-100 letters, digits, '.', '_' or "
                         "'-' with a letter or digit in each")
    return text


FitId = Annotated[str, Field(pattern=FIT_ID_PATTERN, max_length=200), AfterValidator(_fit_id)]
#: Batch sizes and critic widths a fit may recommend at most.
MAX_BATCH_SIZE = 1e6
MAX_WIDTH = 1e6
#: Versions this package reads (1: no prediction interval; intervals fall back to the bootstrap;
#: 2: one interval for every target; 3: an interval per band of targets, `IntervalBand`;
#: 4: the fitted configurations and how far their runs got, `Domain.runs`).
READABLE_VERSIONS = tuple(range(1, SCHEMA_VERSION + 1))
#: How far beyond the fitted domain the advisor trusts a law (factors on utd and on params).
UTD_REACH = 4.0
PARAMS_REACH = 10.0
#: Exponents of the laws lie in MIN_EXPONENT-MAX_EXPONENT (fits use 0.05-8: an exponent of
#: 1e-30, which a hand edit made, turned the optimiser's answers into nonsense).
MIN_EXPONENT = 0.01
MAX_EXPONENT = 20.0
#: The most env steps a law term may predict inside the trusted range (no run is that long; the
#: shipped fits stay below 1e14 even in their bootstrap draws).
MAX_DATA = 1e20
_MAX_LOG = math.log(MAX_DATA)

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorFit(_Strict):
    """One fit a few-shot fit borrowed from, pinned by its content hash."""

    id: FitId
    content_hash: str = Field(max_length=100)


class Prior(_Strict):
    """The family prior of a few-shot fit: the fits it borrowed exponents and threshold shape
    from, and how (calibration.prior)."""

    family: str | None = Field(default=None, max_length=100,
                               description="The family name given (e.g. 'dmc'), if any.")
    fits: tuple[PriorFit, ...] = Field(min_length=1, max_length=1000)
    method: str = Field(max_length=2000)


#: How a fit of a tidy CSV's own width and params columns describes its critic
#: (calibration.build): no BroNet, so the exports cannot build it; unless its `critic` column
#: says what it is (calibration.tidy.CRITIC_KINDS): a plain MLP (SB3's MlpPolicy) or SB3
#: BroNetSACPolicy's BroNet with a scalar head, which the exports build
#: (advisor.integrations.critic).
CSV_CRITIC = "critic of the CSV's runs"
CSV_MLP = f"{CSV_CRITIC}, a plain MLP"
CSV_BRONET = f"{CSV_CRITIC}, a BroNet with a scalar head"
#: How a note in `Provenance.notes` starts for each check the fit failed when it was made
#: (calibration.checks): "fit check FAILED: <check>: <what>"; `recommend` repeats them.
CHECKS_FAILED_NOTE = "fit check FAILED"


def failed_checks(model: FitFile) -> list[str]:
    """The names of the checks a fit failed when it was made, from its notes ("fit check
    FAILED: <check>: <what>"), in order, each once."""
    names = [n.removeprefix(CHECKS_FAILED_NOTE).lstrip(": ").split(":")[0]
             for n in model.provenance.notes if n.startswith(CHECKS_FAILED_NOTE)]
    return list(dict.fromkeys(names))


#: The largest delta (FLOPs per env step) a fit file or a budget takes.
MAX_DELTA = 1e20


class Provenance(_Strict):
    """Where a fit came from, so that anyone can regenerate it."""

    source: str = Field(description="Run data the fit was computed from (archive name and sha256).")
    command: str = Field(description="The exact command that produced this file.")
    project_version: str = Field(description="value-scaling-advisor version that produced it.")
    method: str = Field(description="Fitting method, in words.")
    notes: tuple[str, ...] = Field(default_factory=tuple)
    prior: Prior | None = Field(
        default=None, description="Few-shot fits only: the family prior (absent otherwise).")


class ComputeDefinition(_Strict):
    """C = flops_per_param_sample * B * utd * params * data, with B the reference batch size
    (paper A drops the real batch size: k = 10 * 256). `count_real_batch` (B the recommended
    batch size instead) is reserved: no fit may set it yet, as recommend() and the optimiser
    assume the reference batch."""

    # FLOPs per parameter per sample of an update: about 6 for a forward and backward pass,
    # 10 in paper A; a value far outside 1-100 is a unit slip, not a compute definition.
    flops_per_param_sample: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False)] = 10.0
    reference_batch_size: Annotated[float, Field(ge=1, le=1e6, allow_inf_nan=False)] = 256.0
    count_real_batch: bool = False

    @field_validator("count_real_batch")
    @classmethod
    def _reference_batch_only(cls, value: bool) -> bool:
        if value:
            raise ValueError("count_real_batch true is not supported yet: recommend() counts "
                             "compute at the reference batch size (paper A's definition)")
        return value


class Architecture(_Strict):
    """params(width) = sum_i coefficients[i] * width^(degree - i), for the whole critic."""

    description: str
    coefficients: tuple[FiniteFloat, ...] = Field(min_length=1, description="Highest power first.")
    width_multiple: int = Field(ge=1, le=4096,
                                description="Recommended widths are rounded to this.")

    @model_validator(mode="after")
    def _leading_positive(self) -> Architecture:
        if self.coefficients[0] <= 0:
            raise ValueError("the leading coefficient of params(width) must be positive")
        return self


class Range(_Strict):
    low: FiniteFloat
    high: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low <= self.high:
            raise ValueError(f"range low {self.low} is above high {self.high}")
        return self


class PositiveRange(Range):
    low: PositiveFloat
    high: PositiveFloat


Steps = Annotated[float, Field(gt=0, le=1e15, allow_inf_nan=False)]


class FittedRun(_Strict):
    """One configuration the laws were fitted on, and how far its runs got (schema 4)."""

    utd: PositiveFloat
    params: PositiveFloat
    horizon: Steps = Field(description="The fewest env steps any of its runs took (at every "
                                       "batch size it ran, where it ran several).")
    reached: FiniteFloat | None = Field(
        description="The highest of the fit's thresholds any of its runs' seed-averaged "
                    "return curves reached within their length; null: not even the lowest. "
                    "A configuration with no larger utd and no larger critic needs at least "
                    "as much data by the law, so a prediction that it reaches the next "
                    "threshold above this one in at most `horizon` env steps contradicts "
                    "these runs (`recommend` warns).")


class Domain(_Strict):
    """The configurations the fit saw; recommendations outside are flagged `extrapolated`."""

    utd: PositiveRange
    params: PositiveRange
    target: Range
    horizon: Steps | None = Field(
        default=None, description="Env steps of the longest run the laws were fitted on: a "
        "prediction of more data than that lies beyond every measured crossing (extrapolated). "
        "Absent in files written before it.")
    runs: tuple[FittedRun, ...] | None = Field(
        default=None, min_length=1, max_length=100_000,
        description="Each configuration the laws were fitted on, once, and how far its runs "
                    "got (schema 4 on; absent before).")

    @model_validator(mode="after")
    def _plausible(self) -> Domain:
        # Far past any RL run; beyond these the laws' powers overflow float64.
        if not (1e-6 <= self.utd.low and self.utd.high <= 1e6):
            raise ValueError("domain utd must lie within 1e-6 - 1e6 updates per env step")
        if not self.params.high <= 1e15:
            raise ValueError("domain params must be at most 1e15")
        return self

    @model_validator(mode="after")
    def _runs_inside(self) -> Domain:
        if self.runs is None:
            return self
        if self.horizon is None:
            raise ValueError("runs need horizon (the longest run's env steps)")
        seen: dict[tuple[float, float], int] = {}
        for k, run in enumerate(self.runs):
            utd_in, params_in = self.contains(run.utd, run.params)
            if not (utd_in and params_in):
                axis, x, rng = (("utd", run.utd, self.utd) if not utd_in
                                else ("params", run.params, self.params))
                raise ValueError(f"runs {k}: {axis} {x:.10g} lies outside the domain's {axis} "
                                 f"range {rng.low:.10g}-{rng.high:.10g}")
            if run.horizon > self.horizon * (1 + 1e-9):
                raise ValueError(f"runs {k} ran {run.horizon:g} env steps, more than the "
                                 f"horizon {self.horizon:g}")
            if (run.utd, run.params) in seen:
                raise ValueError(f"runs {k} repeats the configuration of run "
                                 f"{seen[run.utd, run.params]} (utd {run.utd:.10g}, params "
                                 f"{run.params:.10g}): each configuration once")
            seen[run.utd, run.params] = k
        return self

    def contains(self, utd: float, params: float) -> tuple[bool, bool]:
        """(utd inside the fitted utd range, params inside the fitted params range)."""
        tol = 1e-9
        return (self.utd.low * (1 - tol) <= utd <= self.utd.high * (1 + tol),
                self.params.low * (1 - tol) <= params <= self.params.high * (1 + tol))

    def trusted(self, utd_reach: float = UTD_REACH, params_reach: float = PARAMS_REACH
                ) -> tuple[float, float, float, float]:
        """(utd_low, utd_high, params_low, params_high) of the range the advisor searches:
        `utd_reach` x beyond the fitted utds and `params_reach` x beyond the fitted sizes."""
        return (self.utd.low / utd_reach, self.utd.high * utd_reach,
                self.params.low / params_reach, self.params.high * params_reach)


class DataLaw(_Strict):
    """D_J(utd, params) = d_min + (a / utd)^alpha + (b / params)^beta at one return threshold."""

    target: FiniteFloat
    d_min: NonNegFloat
    a: PositiveFloat
    alpha: Annotated[float, Field(ge=MIN_EXPONENT, le=MAX_EXPONENT, allow_inf_nan=False)]
    b: PositiveFloat
    beta: Annotated[float, Field(ge=MIN_EXPONENT, le=MAX_EXPONENT, allow_inf_nan=False)]


class DataToTarget(_Strict):
    """Per-threshold laws, thresholds increasing; targets between thresholds interpolate the
    coefficients linearly (d_min, alpha, beta) and log-linearly (a, b)."""

    laws: tuple[DataLaw, ...] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _increasing(self) -> DataToTarget:
        targets = [law.target for law in self.laws]
        if any(t1 <= t0 for t0, t1 in zip(targets, targets[1:])):
            raise ValueError("data_to_target thresholds must be strictly increasing")
        return self


class BatchSizeLaw(_Strict):
    """B~(utd, params) = a_b / (utd^alpha_b (1 + b_b params^-beta_b)), paper A Eq. 6.1.

    kind "fixed": the runs used one batch size (`a_b`), alpha_b = b_b = beta_b = 0.
    """

    kind: Literal["law", "fixed"]
    source: Literal["fitted", "published", "fixed"]
    a_b: PositiveFloat
    alpha_b: NonNegFloat = 0.0
    b_b: NonNegFloat = 0.0
    beta_b: NonNegFloat = 0.0
    relative_error: NonNegFloat | None = Field(
        default=None,
        description="Mean relative error of the fit on the batch sizes it was fitted to: the "
                    "measured best batches of a batch grid, or the one batch size each config's "
                    "runs used (the notes say which)."
    )


class Bootstrap(_Strict):
    """Parameter draws from refits on seed-resampled data, for intervals.

    draws[k][j] = [d_min, a, alpha, b, beta] of draw k at threshold j."""

    n_resamples: int = Field(ge=0, le=100_000)
    seed: int = Field(ge=0, le=2**63)
    draws: tuple[tuple[Annotated[tuple[FiniteFloat, ...], Field(min_length=5, max_length=5)],
                       ...], ...] = Field(max_length=100_000)

    @model_validator(mode="after")
    def _a_draw_per_resample_at_most(self) -> Bootstrap:
        # Fewer where a resample reached too few thresholds to be refitted; never more.
        if len(self.draws) > self.n_resamples:
            raise ValueError(f"bootstrap: draws holds {len(self.draws)} but n_resamples is "
                             f"{self.n_resamples}; there is at most one draw per resample")
        return self


#: The widest interval offset a fit file holds: e^20, a factor of 5e8 either way.
MAX_LOG_OFFSET = 20.0
LogLow = Annotated[float, Field(le=0, ge=-MAX_LOG_OFFSET, allow_inf_nan=False)]
LogHigh = Annotated[float, Field(ge=0, le=MAX_LOG_OFFSET, allow_inf_nan=False)]


def _check_offsets(n: int, low: Sequence[float], high: Sequence[float],
                   seed_low: Sequence[float] | None, seed_high: Sequence[float] | None,
                   where: str = "") -> None:
    """Offsets per level: as many as `levels` (n), widening with the level; a single seed's
    interval contains the seed-averaged one."""
    if len(low) != n or len(high) != n:
        raise ValueError(f"{where}levels, log_low and log_high must have the same length")
    if any(b > a for a, b in zip(low, low[1:])) or any(b < a for a, b in zip(high, high[1:])):
        raise ValueError(f"{where}intervals must widen with the level")
    if (seed_low is None) != (seed_high is None):
        raise ValueError(f"{where}seed_log_low and seed_log_high come together")
    if seed_low is None or seed_high is None:
        return
    if len(seed_low) != n or len(seed_high) != n:
        raise ValueError(f"{where}levels, seed_log_low and seed_log_high must have the same "
                         "length")
    if any(s > a + 1e-9 for s, a in zip(seed_low, low)) or any(
            s < a - 1e-9 for s, a in zip(seed_high, high)):
        raise ValueError(f"{where}a single seed's interval must contain the seed-averaged one")
    if any(b > a for a, b in zip(seed_low, seed_low[1:])) or any(
            b < a for a, b in zip(seed_high, seed_high[1:])):
        raise ValueError(f"{where}single-seed intervals must widen with the level")


class IntervalBand(_Strict):
    """The interval for targets in one band of a fit's thresholds, `target_low` to
    `target_high` (fit thresholds, both in the band): log offsets per level as in
    `PredictionInterval`, calibrated on the residuals at those thresholds only. A target
    between two bands gets offsets interpolated between theirs (`PredictionInterval.offsets`)."""

    target_low: FiniteFloat
    target_high: FiniteFloat
    log_low: tuple[LogLow, ...]
    log_high: tuple[LogHigh, ...]
    seed_log_low: tuple[LogLow, ...] | None = None
    seed_log_high: tuple[LogHigh, ...] | None = None


class PredictionInterval(_Strict):
    """Where the data-to-target of a new run falls, relative to the law's prediction.

    Split conformal from leave-one-config-out residuals r = log(D_observed / D_predicted): at
    level `levels[i]`, a new run inside the fitted domain needs between D_pred * exp(log_low[i])
    and D_pred * exp(log_high[i]) env steps. Beyond the fitted domain both log offsets grow by the
    factor 1 + widen_up * d_up + widen_down * d_down, where d_up = log(utd / largest fitted utd)+
    + log(params / largest fitted params)+ and d_down the same below the smallest: widen_up and
    widen_down are calibrated on fits that left out the outermost rows and columns of the grid.
    With `bands` (schema 3), the offsets of a target's band replace log_low and log_high, which
    then span every band (the interval that holds at any target)."""

    method: str = Field(max_length=2000)
    levels: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = Field(min_length=1, max_length=100)
    log_low: tuple[LogLow, ...]
    log_high: tuple[LogHigh, ...]
    widen_up: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
    widen_down: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
    n_residuals: int = Field(ge=1)
    seed_log_low: tuple[LogLow, ...] | None = Field(
        default=None, description="The same for a single seed's D_J (the runs behind the fit "
                                  "average several seeds; one seed scatters more); absent where "
                                  "not calibrated.")
    seed_log_high: tuple[LogHigh, ...] | None = None
    bands: tuple[IntervalBand, ...] | None = Field(
        default=None, min_length=1, max_length=100,
        description="Offsets per band of thresholds, lowest first (schema 3); absent where one "
                    "interval serves every target.")
    coverage: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, max_length=20,
        description="Measured coverage of the 80% interval on held-out configurations, by "
                    "scheme (see calibration.intervals): keys among COVERAGE_KEYS.")

    @field_validator("coverage")
    @classmethod
    def _known_schemes(cls, value: dict[str, float]) -> dict[str, float]:
        # recommend warns from these by name: a misspelt one would silence its warning
        unknown = sorted(set(value) - set(COVERAGE_KEYS))
        if unknown:
            raise ValueError(f"coverage has unknown scheme(s) {', '.join(unknown)}; allowed: "
                             f"{', '.join(COVERAGE_KEYS)}")
        return value

    @model_validator(mode="after")
    def _shapes(self) -> PredictionInterval:
        n = len(self.levels)
        if any(b <= a for a, b in zip(self.levels, self.levels[1:])):
            raise ValueError("levels must be strictly increasing")
        if not self.levels[0] <= 0.8 <= self.levels[-1]:  # recommend's level
            raise ValueError(f"levels must span 0.8, the level recommend reports; got "
                             f"{self.levels[0]:g}-{self.levels[-1]:g}")
        _check_offsets(n, self.log_low, self.log_high, self.seed_log_low, self.seed_log_high)
        for k, band in enumerate(self.bands or []):
            _check_offsets(n, band.log_low, band.log_high, band.seed_log_low,
                           band.seed_log_high, f"band {k}: ")
            if (band.seed_log_low is None) != (self.seed_log_low is None):
                raise ValueError(f"band {k}: single-seed offsets must be given in every band "
                                 "or in none, as for the whole interval")
            if band.target_high < band.target_low:
                raise ValueError(f"band {k}: target_high must be at least target_low")
            if k and band.target_low <= self.bands[k - 1].target_high:
                raise ValueError("bands must be in increasing order of target, without overlap")
        if self.bands:
            spans = [("log_low", min, self.log_low, [b.log_low for b in self.bands]),
                     ("log_high", max, self.log_high, [b.log_high for b in self.bands])]
            if self.seed_log_low is not None and self.seed_log_high is not None:
                spans += [("seed_log_low", min, self.seed_log_low,
                           [b.seed_log_low or [] for b in self.bands]),
                          ("seed_log_high", max, self.seed_log_high,
                           [b.seed_log_high or [] for b in self.bands])]
            for name, pick, whole, per_band in spans:
                if any(abs(w - pick(column)) > 1e-9 for w, column in zip(whole, zip(*per_band))):
                    raise ValueError(f"with bands, {name} must be the span of the bands' (their "
                                     f"{'least' if pick is min else 'greatest'} at each level)")
        return self

    def offsets(self, level: float, target: float, single_seed: bool = False
                ) -> tuple[float, float] | None:
        """(log low, log high) at `level` (between the calibrated levels, interpolated) for a
        run toward `target`: with bands, its band's (between two bands, interpolated linearly
        in the target, as the laws' coefficients are; below the first or above the last, the
        nearest band's); None for a single seed where not calibrated."""
        if not math.isfinite(target):
            raise ValueError(f"target must be a finite return, got {target!r}")

        def at(where: PredictionInterval | IntervalBand) -> tuple[float, float] | None:
            lows, highs = ((where.seed_log_low, where.seed_log_high) if single_seed else
                           (where.log_low, where.log_high))
            if lows is None or highs is None:
                return None
            return (float(np.interp(level, self.levels, lows)),
                    float(np.interp(level, self.levels, highs)))

        bands = self.bands
        if not bands:
            return at(self)
        k = int(np.searchsorted([b.target_high for b in bands], target))  # first high >= it
        if k >= len(bands):
            return at(bands[-1])
        if k == 0 or target >= bands[k].target_low:
            return at(bands[k])
        below, above = at(bands[k - 1]), at(bands[k])
        if below is None or above is None:
            return None
        w = (target - bands[k - 1].target_high) / (bands[k].target_low - bands[k - 1].target_high)
        return ((1 - w) * below[0] + w * above[0], (1 - w) * below[1] + w * above[1])


class GoodnessOfFit(_Strict):
    """Mean relative error |D_pred - D_obs| / D_obs over (config, threshold) points."""

    n_configs: int = Field(ge=1)
    n_points: int = Field(ge=1)
    in_sample: NonNegFloat
    leave_one_config_out: NonNegFloat
    leave_one_config_out_headline: NonNegFloat | None = Field(
        default=None, description="Leave-one-config-out error at the top threshold only."
    )
    baseline_loglinear_leave_one_config_out: NonNegFloat | None = None


def _versions_text() -> str:
    *most, last = (str(v) for v in READABLE_VERSIONS)
    return f"{', '.join(most)} or {last}" if most else last


class FitFile(_Strict):
    """One fitted domain: (algorithm, environment)."""

    schema_version: Literal[READABLE_VERSIONS] = SCHEMA_VERSION  # type: ignore[valid-type]
    id: FitId
    fit_version: int = Field(ge=1, le=10**6)
    created: str = Field(description="ISO date the fit was produced (YYYY-MM-DD).",
                         max_length=40)
    provenance: Provenance
    compute: ComputeDefinition
    architecture: Architecture
    domain: Domain
    data_to_target: DataToTarget
    batch_size: BatchSizeLaw
    delta: PositiveFloat = Field(le=MAX_DELTA, description="FLOPs charged per env step.")
    learning_rate: PositiveFloat = Field(le=1.0, description="The runs' learning rate "
                                         "(Adam's step size: above 1 is no learning rate).")
    random_steps: int | None = Field(
        default=None, ge=0, le=10**12,
        description="Env steps of uniformly random actions before the first update in the runs "
                    "behind the fit: an RL client's learning_starts. Absent where not recorded.")
    bootstrap: Bootstrap
    goodness_of_fit: GoodnessOfFit
    prediction_interval: PredictionInterval | None = Field(
        default=None, description="Calibrated interval for new runs (schema 2; absent in 1).")
    content_hash: str = Field(default="",
                              description="sha256 of the canonical JSON without this field.")

    @field_validator("created")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        if not is_iso_date(value):
            raise ValueError(f"created must be a date YYYY-MM-DD, got {value!r}")
        return value

    @field_validator("schema_version", mode="before")
    @classmethod
    def _integer_version(cls, value):
        # true == 1 and 3.0 == 3 in Python, but neither is a version number
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"schema_version must be an integer ({_versions_text()}), got "
                             f"{value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FitFile:
        n = len(self.data_to_target.laws)
        targets = [law.target for law in self.data_to_target.laws]
        dom = self.domain.target
        if (dom.low, dom.high) != (min(targets), max(targets)):
            raise ValueError(f"domain.target {span(dom.low, dom.high)} is not the range of the "
                             f"laws' targets, {span(min(targets), max(targets))}")
        for k, draw in enumerate(self.bootstrap.draws):
            if len(draw) != n:
                raise ValueError(f"bootstrap draw {k} has {len(draw)} thresholds, expected {n}")
        horizon = self.domain.horizon
        if self.random_steps is not None and horizon is not None and self.random_steps >= horizon:
            raise ValueError(f"random_steps {self.random_steps} must be below the runs' length "
                             f"(domain.horizon {horizon:g} env steps): runs that never learn")
        pi = self.prediction_interval
        if pi is not None and pi.bands:
            if self.schema_version < 3:
                raise ValueError(f"prediction_interval.bands needs schema_version 3, not "
                                 f"{self.schema_version}")
            laws = self.data_to_target.laws
            targets = {law.target for law in laws}
            for k, band in enumerate(pi.bands):
                if band.target_low not in targets or band.target_high not in targets:
                    raise ValueError(f"prediction_interval band {k}: target_low and target_high "
                                     "must be thresholds of data_to_target")
            index = {law.target: j for j, law in enumerate(laws)}
            ends = [(index[b.target_low], index[b.target_high]) for b in pi.bands]
            if ends[0][0] != 0 or ends[-1][1] != len(laws) - 1 or any(
                    low != high + 1 for (_, high), (low, _) in zip(ends, ends[1:])):
                raise ValueError("prediction_interval.bands must cover every threshold, from "
                                 f"the lowest ({laws[0].target:g}) to the highest "
                                 f"({laws[-1].target:g}), each band starting at the threshold "
                                 "after the last one's")
        runs = self.domain.runs
        if runs is not None:
            if self.schema_version < 4:
                raise ValueError(f"domain.runs needs schema_version 4, not "
                                 f"{self.schema_version}")
            if len(runs) != self.goodness_of_fit.n_configs:
                raise ValueError(f"domain.runs holds {len(runs)} configurations, not the "
                                 f"{self.goodness_of_fit.n_configs} of goodness_of_fit.n_configs")
            for k, run in enumerate(runs):
                if run.reached is not None and run.reached not in set(targets):
                    raise ValueError(f"domain.runs {k}: reached {run.reached:.10g} is not a "
                                     "threshold of data_to_target (each run's highest target "
                                     "reached is one of them, or null)")
        _check_meaning(self)
        return self


def _check_meaning(fit: FitFile) -> None:
    """Numbers that validate one by one but make no sense together: laws that overflow, batch
    sizes or widths that cannot exist, inside the range the advisor searches."""
    u_lo, u_hi, n_lo, n_hi = fit.domain.trusted()
    rows = np.array([[w.d_min, w.a, w.alpha, w.b, w.beta] for w in fit.data_to_target.laws])
    if fit.bootstrap.draws:
        draws = np.array(fit.bootstrap.draws, dtype=float).reshape(-1, 5)
        if not (np.all(draws[:, [1, 3]] > 0) and np.all(draws[:, [2, 4]] >= MIN_EXPONENT)
                and np.all(draws[:, [2, 4]] <= MAX_EXPONENT) and np.all(draws[:, 0] >= 0)):
            raise ValueError("bootstrap draws must have d_min >= 0, a, b > 0 and exponents in "
                             f"[{MIN_EXPONENT:g}, {MAX_EXPONENT:g}]")
        rows = np.concatenate([rows, draws])
    with np.errstate(all="ignore"):
        log_x = rows[:, 2] * (np.log(rows[:, 1]) - math.log(u_lo))
        log_y = rows[:, 4] * (np.log(rows[:, 3]) - math.log(n_lo))
    if not (np.all(log_x < _MAX_LOG) and np.all(log_y < _MAX_LOG)
            and np.all(rows[:, 0] < math.exp(_MAX_LOG))):
        raise ValueError(f"data_to_target: the law predicts more than {MAX_DATA:g} env steps "
                         f"inside the trusted range (utd {u_lo:.3g}-{u_hi:.3g}, params "
                         f"{n_lo:.3g}-{n_hi:.3g}); check d_min, a, b and the exponents")
    bs = fit.batch_size
    if bs.kind == "law":
        def log_b(u: float, n: float) -> float:
            log_term = math.log(bs.b_b) - bs.beta_b * math.log(n) if bs.b_b > 0 else -math.inf
            return float(math.log(bs.a_b) - bs.alpha_b * math.log(u)
                         - np.logaddexp(0.0, log_term))

        for u, n in [(u, n) for u in (u_lo, u_hi) for n in (n_lo, n_hi)]:
            if not log_b(u, n) <= math.log(MAX_BATCH_SIZE):  # small B~ is rounded up to 16
                raise ValueError(f"batch_size: B~ is {math.exp(min(log_b(u, n), 700)):.3g} "
                                 f"transitions at utd {u:.3g}, params {n:.3g} (inside the "
                                 f"trusted range); it must be at most {MAX_BATCH_SIZE:g}")
        d = fit.domain  # where the runs were, B~ under one transition is no batch size
        for u, n in [(u, n) for u in (d.utd.low, d.utd.high)
                     for n in (d.params.low, d.params.high)]:
            if not log_b(u, n) >= 0:
                raise ValueError(f"batch_size: B~ is {math.exp(max(log_b(u, n), -700)):.3g} "
                                 f"transitions at utd {u:.3g}, params {n:.3g}, where the runs "
                                 "were; it must be at least 1")
    elif not 1 <= bs.a_b <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size: a fixed batch size must lie between 1 and "
                         f"{MAX_BATCH_SIZE:g}, got {bs.a_b:g}")
    widths = np.geomspace(1.0, MAX_WIDTH, 400)
    params = np.polyval(fit.architecture.coefficients, widths)
    if not (np.all(np.diff(params) > 0) and params[0] <= n_lo and params[-1] >= n_hi):
        raise ValueError("architecture: params(width) must increase with width and cover the "
                         f"trusted params range {n_lo:.3g}-{n_hi:.3g} with widths between 1 and "
                         f"{MAX_WIDTH:g}")


def content_hash(doc: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of `doc` without `content_hash`."""
    body = {k: v for k, v in doc.items() if k != "content_hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _arrays_as_tuples(x):
    """A parsed JSON document with every array a tuple (what strict validation of the
    schema's tuple fields takes)."""
    if isinstance(x, list):
        return tuple(_arrays_as_tuples(v) for v in x)
    if isinstance(x, dict):
        return {k: _arrays_as_tuples(v) for k, v in x.items()}
    return x


def parse_fit_file(text: str | bytes, origin: str = "fit file") -> FitFile:
    """Parse and validate a fit file's text; raises FitFileError with one line on any problem."""
    if len(text) > MAX_FILE_BYTES:
        raise FitFileError(f"{origin} is larger than {MAX_FILE_BYTES / 2**20:g} MiB")
    doc = load_json(text, origin, FitFileError)
    if not isinstance(doc, dict):
        raise FitFileError(f"{origin} must hold a JSON object, not {type(doc).__name__}")
    if "schema_version" not in doc:
        raise FitFileError(f"{origin} has no schema_version: a fit file says which schema it "
                           f"follows (1 to {SCHEMA_VERSION})")
    version = doc.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise FitFileError(
            f"{origin} has schema version {version}, newer than the {SCHEMA_VERSION} this "
            "value-scaling-advisor reads; upgrade the package"
        )
    try:
        # JSON types as they are (no "2e12"); arrays as tuples: a loaded fit is shared
        # (load_fit caches one per file), so its arrays cannot be edited in place.
        model = FitFile.model_validate(_arrays_as_tuples(doc), strict=True)
    except ValidationError as exc:
        raise FitFileError(
            f"{origin} does not match the fit-file schema: {one_line(exc)}") from None
    if not model.content_hash:
        raise FitFileError(f"{origin} has no content_hash; a fit file records one: remake it "
                           "with the command in its provenance (or `advisor fit`)")
    expected = content_hash(doc)
    if model.content_hash != expected:
        raise FitFileError(
            f"{origin} content hash does not match its contents (edited or corrupted); "
            "restore the original, or remake it with the command in its provenance"
        )
    return model


def read_fit_file(path: str | os.PathLike) -> FitFile:
    """Read and validate a fit file (a regular file of at most MAX_FILE_BYTES)."""
    data = read_limited(path, "fit file", FitFileError)
    return parse_fit_file(data, origin=f"fit file {path}")


def dump_fit_file(model: FitFile) -> str:
    """The canonical text of a fit file, with its content hash filled in."""
    doc = model.model_dump(mode="json")
    if doc.get("prediction_interval") is None:  # schema 1 files have no such key
        doc.pop("prediction_interval", None)
    if doc["provenance"].get("prior") is None:  # only few-shot fits have one
        doc["provenance"].pop("prior", None)
    if doc.get("random_steps") is None:  # recorded where known (files before it lack the key)
        doc.pop("random_steps", None)
    pi = doc.get("prediction_interval")
    if pi is not None and pi.get("seed_log_low") is None:  # files before it lack the keys
        pi.pop("seed_log_low", None)
        pi.pop("seed_log_high", None)
    if pi is not None and pi.get("bands") is None:  # schema 3 on
        pi.pop("bands", None)
    if doc["domain"].get("runs") is None:  # schema 4 on
        doc["domain"].pop("runs", None)
    for band in (pi or {}).get("bands") or []:
        if band.get("seed_log_low") is None:
            band.pop("seed_log_low", None)
            band.pop("seed_log_high", None)
    _check_finite(doc)
    doc["content_hash"] = content_hash(doc)
    # One line per bootstrap draw keeps files small and diffs readable.
    draws = doc["bootstrap"]["draws"]
    doc["bootstrap"]["draws"] = [f"@@DRAW{i}@@" for i in range(len(draws))]
    text = json.dumps(doc, indent=1, sort_keys=False, allow_nan=False)
    for i, draw in enumerate(draws):
        text = text.replace(f'"@@DRAW{i}@@"', json.dumps(draw, separators=(",", ":")), 1)
    return text + "\n"


def write_fit_file(model: FitFile, path: str | os.PathLike) -> Path:
    """Write a fit file atomically (over an earlier fit file, never over another file, nor over
    a shipped or installed fit of another id)."""
    check_fit_output(path, fit_id=model.id)
    return atomic_write_bytes(path, dump_fit_file(model).encode("utf-8"))


#: Keys every fit file has, of any schema version: what tells one from other JSON.
_FIT_KEYS = {"schema_version", "id", "data_to_target"}


def check_fit_output(path: str | os.PathLike, what: str = "the fit file",
                     fit_id: str | None = None) -> None:
    """OutputError when `path` is a regular file that is not a fit file (a CSV or archive of
    runs, a grid, a calibration's own record): writing the fit there would destroy it; or,
    given the `fit_id` to be written, the file of a shipped or installed fit of another id
    (`advisor fits` would lose it). An earlier fit file (even a corrupt one), a new path or a
    device (/dev/stdout) is fine."""
    from advisor.errors import OutputError

    if str(path) == "-":  # not stdout: a file literally named "-"
        raise OutputError(f"{what} -: give a file path (or /dev/stdout to print the fit)")
    p = Path(path)
    try:
        if not p.is_file():  # follows links: a link to a CSV is the CSV
            return
    except OSError:  # a name too long, a loop of links: the write will say so
        return
    try:  # the bounded read and load every fit file gets
        doc = load_json(read_limited(p, what, OutputError), str(p), OutputError)
    except OutputError:  # too large, not JSON: not a fit file
        doc = None
    if isinstance(doc, dict) and _FIT_KEYS <= doc.keys():
        if fit_id is not None:
            _check_catalogue_output(p, fit_id, what)
        return
    raise OutputError(f"{what} {p} would replace a file that is not a fit file (an input, a "
                      "grid or a calibration's record?); choose another path, or remove it first")


def _check_catalogue_output(p: Path, fit_id: str, what: str) -> None:
    """OutputError when `p` is the file of a listed fit (shipped, or installed by a package)
    whose id is not `fit_id`."""
    from advisor.errors import OutputError
    from advisor.registry import fit_path, fit_sources

    try:
        here = p.resolve()
    except OSError:
        return
    for listed, package in fit_sources().items():
        if listed != fit_id and fit_path(listed).resolve() == here:
            raise OutputError(f"{what} {p} is the file of {listed}, a fit {package} ships; "
                              f"writing {fit_id} there would replace it: choose another path")


def _check_finite(obj: object) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError("fit file would contain a non-finite number")
    if isinstance(obj, dict):
        for v in obj.values():
            _check_finite(v)
    elif isinstance(obj, list):
        for v in obj:
            _check_finite(v)
