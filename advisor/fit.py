"""`Fit`: a loaded fit file with its laws ready to evaluate."""

from __future__ import annotations

import math
import numbers
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from advisor import laws
from advisor.errors import ConfigError, TargetError, shown, span
from advisor.fitfile import FitFile, FittedRun
from advisor.optimize import Box

# Columns of a coefficient row: [d_min, a, alpha, b, beta].
_LOG_COLUMNS = np.array([False, True, False, True, False])
#: Recommended batch sizes are multiples of this.
BATCH_MULTIPLE = 16


def round_batch_size(batch_size: float) -> int:
    """A batch size rounded to the nearest multiple of BATCH_MULTIPLE (at least one multiple)."""
    return int(max(BATCH_MULTIPLE, BATCH_MULTIPLE * round(batch_size / BATCH_MULTIPLE)))


def _positive(name: str, value: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf":  # not '512', True or 10**400 (object)
            raise TypeError
        arr = arr.astype(float)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a positive finite number, got {shown(value)}") from None
    if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ConfigError(f"{name} must be a positive finite number, got {shown(value)}")
    return arr


def _positive_pair(utd: ArrayLike, params: ArrayLike, *more: tuple[str, ArrayLike]
                   ) -> list[np.ndarray]:
    """utd, params (and `more` (name, value)) as positive float arrays that broadcast together."""
    arrays = [_positive("utd", utd), _positive("params", params),
              *(_positive(name, value) for name, value in more)]
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        names = ["utd", "params", *(name for name, _ in more)]
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
        raise ConfigError(f"the arrays must broadcast together (numpy rules), got {shapes}"
                          ) from None
    return arrays


def _run_steps(data: float) -> float:
    """`data` as the env steps a run must have lasted: a finite number, 0 or more (0: every
    run), refused in one line otherwise."""
    if isinstance(data, bool) or not isinstance(data, numbers.Real) or not (
            math.isfinite(data) and data >= 0):
        raise ConfigError("data must be a finite number of env steps, 0 or more, got "
                          f"{shown(data)}")
    return float(data)


def _one_config(name: str, utd: float, params: float) -> tuple[float, float]:
    """utd and params (positive) of one configuration as floats, for `name` (a Fit method) to
    refuse anything else in one line."""
    utd_a, params_a = _positive_pair(utd, params)
    if np.ndim(utd_a) or np.ndim(params_a):
        raise ConfigError(f"{name} takes one configuration: scalar utd, params and data")
    return float(utd_a), float(params_a)


def _scalar_or_array(arr: np.ndarray) -> float | np.ndarray:
    return float(arr) if arr.ndim == 0 else arr


def number_text(value: float) -> str:
    """The shortest text that reads back as exactly `value`: 1e+10, not 10000000000.0."""
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if float(text) == value:
            return text
    return repr(value)


def round_toward(x: float, toward: str, digits: int = 6) -> str:
    """`x` to `digits` significant digits, rounded `toward` "down" or "up", as printed: a
    bound, a target or a budget typed back in as printed stays on the right side of `x`."""
    from decimal import Decimal

    s = f"{x:.{digits}g}"
    for _ in range(3):
        v = float(s)
        if not math.isfinite(x) or (v <= x if toward == "down" else v >= x):
            return s
        d = Decimal(s)
        step = Decimal(1).scaleb(d.adjusted() - digits + 1)
        s = f"{float(d - step if toward == 'down' else d + step):.{digits}g}"
    return s


def _printed(x: float) -> float:
    """Half a unit of the 4th significant digit of x (and at least a hair of it): how far a
    number printed with :.4g can lie from x."""
    x = abs(float(x))
    if x == 0.0 or not math.isfinite(x):
        return 1e-9
    return max(1e-9 * max(1.0, x), 0.5 * 10.0 ** (math.floor(math.log10(x)) - 3))


class Fit:
    """A fitted domain. Units: utd in updates per env step, params in critic parameters,
    data in env steps, compute in FLOPs, target in return."""

    def __init__(self, model: FitFile):
        self.model = model
        self.id = model.id
        rows = [[law.d_min, law.a, law.alpha, law.b, law.beta] for law in model.data_to_target.laws]
        self.thresholds = np.array([law.target for law in model.data_to_target.laws])
        # Coefficients stored with a and b in log space so interpolation is linear.
        self._coef = self._to_interp_space(np.array(rows))
        # per segment between thresholds: its slope, for coefficient_table's interpolation
        self._slope = (np.diff(self._coef, axis=0) / np.diff(self.thresholds)[:, None]
                       if len(self.thresholds) > 1 else None)
        self._draws = (
            self._to_interp_space(np.array(model.bootstrap.draws, dtype=float))
            if model.bootstrap.draws else None
        )
        for arr in (self.thresholds, self._coef, self._slope, self._draws):
            if arr is not None:
                arr.setflags(write=False)
        self._read_only = True

    def __setattr__(self, name: str, value) -> None:
        # load_fit hands every caller the same Fit of a file: a change would reach them all.
        # (Its model is a frozen pydantic model whose arrays are read as tuples; its one dict,
        # the recorded coverage, is not a copy to edit either.) A subclass sets its own
        # attributes before Fit.__init__ returns.
        if self.__dict__.get("_read_only"):
            raise AttributeError(f"a Fit is read-only (load_fit shares one per file): cannot set "
                                 f"{name}; for a changed one, edit the fit file and load that")
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Fit is read-only (load_fit shares one per file): cannot delete "
                             f"{name}")

    def __repr__(self) -> str:
        return f"Fit({self.id!r}, targets {span(self.target_min, self.target_max)})"

    @staticmethod
    def _to_interp_space(arr: np.ndarray) -> np.ndarray:
        out = arr.copy()
        out[..., _LOG_COLUMNS] = np.log(out[..., _LOG_COLUMNS])
        return out

    # --- the fitted range and defaults -------------------------------------------------
    @property
    def target_min(self) -> float:
        return float(self.thresholds[0])

    @property
    def target_max(self) -> float:
        return float(self.thresholds[-1])

    @property
    def delta(self) -> float:
        return self.model.delta

    @property
    def learning_rate(self) -> float:
        return self.model.learning_rate

    @cached_property  # recommend() asks on every call: parse the command once
    def env_id(self) -> str | None:
        """The Gymnasium env id the fit's runs were on, as its provenance records the command:
        `advisor calibrate --env ID`, or `advisor fit X.csv --env ID` of runs whose CSV said
        their critic (an SB3 policy's: `advisor tidy` of rl-zoo runs writes it, with
        Gymnasium's ids); None for a fit of published runs or of another CSV."""
        import shlex

        from advisor.fitfile import CSV_BRONET, CSV_MLP

        try:
            words = shlex.split(self.model.provenance.command)
        except ValueError:  # an unbalanced quote: not a command calibrate wrote
            return None
        sb3_runs = (words[:2] == ["advisor", "fit"]
                    and self.model.architecture.description.startswith((CSV_MLP, CSV_BRONET)))
        if not (words[:2] == ["advisor", "calibrate"] or sb3_runs) or "--env" not in words[:-1]:
            return None
        return words[words.index("--env") + 1]

    def check_target(self, target: float | None) -> float:
        """The default target (top threshold) or `target` if it lies in the fitted range."""
        if target is None:
            return self.target_max
        if isinstance(target, (bool, complex)) or not isinstance(target, numbers.Number):
            raise TargetError(f"target must be a finite return, got {shown(target)}")
        try:
            target = float(target)
        except OverflowError:
            target = math.inf
        if not math.isfinite(target):
            raise TargetError(f"target must be a finite return between "
                              f"{round_toward(self.target_min, 'up')} and "
                              f"{round_toward(self.target_max, 'down')}, got {shown(target)}")
        lo, hi = self.target_min, self.target_max
        # Slack so that a bound typed back as printed is taken: to 4 significant digits (as
        # the recommend table, `advisor fits` and `show` print them: 218.6 for 218.587 was
        # refused), then clamped to the range.
        if not lo - _printed(lo) <= target <= hi + _printed(hi):
            # The bounds rounded inward, so that either one typed back as printed is taken
            # (96.7982 for 96.79825 was refused).
            raise TargetError(
                f"target {target:.12g} is outside the fitted range of {self.id}: "
                f"choose a return between {round_toward(lo, 'up')} and "
                f"{round_toward(hi, 'down')}"
            )
        return float(min(max(target, lo), hi))

    # --- coefficients at a target --------------------------------------------------------
    def coefficients(self, target: float | None = None) -> tuple[float, float, float, float, float]:
        """(d_min, a, alpha, b, beta) of D_J at `target`, interpolated between thresholds."""
        row = self._interp(self._coef, self.check_target(target))
        return (float(row[0]), float(math.exp(row[1])), float(row[2]),
                float(math.exp(row[3])), float(row[4]))

    def draw_coefficients(self, target: float | None = None) -> np.ndarray | None:
        """(n_draws, 5) bootstrap coefficient draws at `target`, or None if the fit has none."""
        if self._draws is None:
            return None
        rows = self._interp(self._draws, self.check_target(target))
        rows = rows.copy()
        rows[:, _LOG_COLUMNS] = np.exp(rows[:, _LOG_COLUMNS])
        return rows

    def coefficient_table(self, targets: ArrayLike) -> np.ndarray:
        """(len(targets), 5) rows (d_min, a, alpha, b, beta), interpolated like
        `coefficients`; targets must lie in the fitted range (not checked: internal use)."""
        t = self.thresholds
        targets = np.atleast_1d(np.asarray(targets, dtype=float))
        if len(t) == 1:
            rows = np.repeat(self._coef[:1], len(targets), axis=0)
        else:
            j = np.searchsorted(t, targets, side="right") - 1
            np.clip(j, 0, len(t) - 2, out=j)
            rows = self._coef[j] + (targets - t[j])[:, None] * self._slope[j]
        rows[:, _LOG_COLUMNS] = np.exp(rows[:, _LOG_COLUMNS])
        return rows

    def _interp(self, table: np.ndarray, target: float) -> np.ndarray:
        """Linear interpolation along the threshold axis (axis -2) of `table`."""
        t = self.thresholds
        if len(t) == 1:
            return table[..., 0, :]
        j = int(np.clip(np.searchsorted(t, target, side="right") - 1, 0, len(t) - 2))
        w = (target - t[j]) / (t[j + 1] - t[j])
        return (1.0 - w) * table[..., j, :] + w * table[..., j + 1, :]

    # --- the laws ------------------------------------------------------------------------
    def data_to_target(self, utd: ArrayLike, params: ArrayLike, target: float | None = None,
                       batch_size: ArrayLike | None = None):
        """Predicted env steps D_J(utd, params) to reach return `target` (paper A Eq. 7.1);
        inf where the law overflows (far below the fitted utd or params).

        At the best batch size B~(utd, params), unless `batch_size` says which the run uses:
        then times `advisor.laws.off_batch_factor` (1 within 2x of B~, 1.16x at 4x, 1.36x at
        8x; measured up to about 8x, beyond it extrapolated). A fit whose runs all used one
        batch size refuses any other."""
        utd, params = _positive_pair(utd, params)
        factor = 1.0 if batch_size is None else self._off_batch(utd, params, batch_size)
        with np.errstate(over="ignore"):
            return _scalar_or_array(
                laws.data_to_target(utd, params, *self.coefficients(target)) * factor)

    def _off_batch(self, utd: np.ndarray, params: np.ndarray, batch_size: ArrayLike
                   ) -> np.ndarray:
        """The data factor of a run at `batch_size` instead of B~ (laws.off_batch_factor)."""
        (batch_size,) = _positive_pair(utd, params, ("batch_size", batch_size))[2:]
        if np.any(batch_size < 1):
            raise ConfigError("batch_size is transitions per update and must be at least 1, got "
                              f"{float(batch_size[batch_size < 1].flat[0]):g}")
        bs = self.model.batch_size
        if bs.kind == "fixed":
            if np.any(batch_size != bs.a_b):
                got = batch_size[batch_size != bs.a_b].flat[0] if batch_size.ndim else batch_size
                raise ConfigError(f"the runs behind {self.id} all used batch size {bs.a_b:g}, so "
                                  f"it cannot say what another costs: batch_size must be "
                                  f"{bs.a_b:g} or None, got {float(got):g}")
            return np.ones(np.broadcast_shapes(utd.shape, params.shape, batch_size.shape))
        return laws.off_batch_factor(batch_size, self.batch_size(utd, params))

    def interval(self, utd: ArrayLike, params: ArrayLike, target: float | None = None,
                 level: float = 0.8, single_seed: bool = False,
                 batch_size: ArrayLike | None = None):
        """(low, high) env steps that the data-to-target of a new run at (utd, params) falls
        between with probability `level` (arrays in, arrays out, like `data_to_target`). A
        run is averaged over as many seeds as the fit's runs (its notes say how many);
        `single_seed`: the interval for one seed's D_J instead (wider; None where the fit
        has none calibrated). Fits of schema 3 calibrate it per band of targets.

        For a run at B~(utd, params), or at `batch_size`: both ends move by the factor
        `data_to_target` applies (on the SimbaV2 grid that brings runs beyond 4x of B~ from
        69-74% to 84-93% inside the 80% interval, the slope set on the other task).

        Calibrated from cross-validation residuals and widened outside the fitted domain (see
        `advisor.fitfile.PredictionInterval`). A fit without a calibrated interval (schema 1)
        falls back to the bootstrap spread of the coefficients, which ignores run-to-run noise;
        None if it has neither."""
        utd, params = _positive_pair(utd, params)
        factor = 1.0 if batch_size is None else self._off_batch(utd, params, batch_size)
        pi = self.model.prediction_interval
        if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
            allowed = ("between 0 and 1" if pi is None else  # schema 1: the bootstrap's spread
                       f"between {pi.levels[0]:g} and {pi.levels[-1]:g}")
            raise ConfigError(f"level must be a number {allowed}, got {shown(level)}")
        if not isinstance(single_seed, bool):
            raise ConfigError(f"single_seed must be True or False, got {shown(single_seed)}")
        if pi is None:
            if single_seed:
                return None
            boot = self._bootstrap_interval(utd, params, target, level)
            return boot if boot is None or batch_size is None else (
                _scalar_or_array(boot[0] * factor), _scalar_or_array(boot[1] * factor))
        if not pi.levels[0] <= level <= pi.levels[-1]:
            raise ConfigError(f"level must lie between {pi.levels[0]:g} and {pi.levels[-1]:g} "
                              f"(the levels {self.id} is calibrated for), got {shown(level)}")
        offsets = pi.offsets(level, self.check_target(target), single_seed)
        if offsets is None:
            return None
        lo, hi = offsets
        up, down = self.distance_outside(utd, params)
        scale = 1.0 + pi.widen_up * up + pi.widen_down * down
        pred = laws.data_to_target(utd, params, *self.coefficients(target)) * factor
        with np.errstate(over="ignore", under="ignore"):  # far outside: 0 - inf, said so
            return (_scalar_or_array(pred * np.exp(lo * scale)),
                    _scalar_or_array(pred * np.exp(hi * scale)))

    def _bootstrap_interval(self, utd, params, target, level):
        if not 0 < level < 1:
            raise ConfigError(f"level must lie strictly between 0 and 1, got {shown(level)}")
        draws = self.draw_coefficients(target)
        if draws is None or not len(draws):
            return None
        u, n = np.broadcast_arrays(utd, params)
        sample = laws.data_to_target(u[None], n[None], *(draws[:, i].reshape(
            (-1,) + (1,) * u.ndim) for i in range(5)))
        lo, hi = np.percentile(sample, [50 * (1 - level), 50 * (1 + level)], axis=0)
        return _scalar_or_array(lo), _scalar_or_array(hi)

    def distance_outside(self, utd: ArrayLike, params: ArrayLike
                         ) -> tuple[np.ndarray, np.ndarray]:
        """How far (utd, params) lies beyond the fitted domain, in log units: (above, below),
        above = log(utd / largest fitted utd)+ + log(params / largest fitted params)+, below the
        same under the smallest. Both 0 inside the domain."""
        d = self.model.domain
        utd, params = np.asarray(utd, dtype=float), np.asarray(params, dtype=float)
        up = (np.log(np.maximum(utd / d.utd.high, 1.0))
              + np.log(np.maximum(params / d.params.high, 1.0)))
        down = (np.log(np.maximum(d.utd.low / utd, 1.0))
                + np.log(np.maximum(d.params.low / params, 1.0)))
        return up, down

    def batch_size(self, utd: ArrayLike, params: ArrayLike):
        """Best batch size B~(utd, params) in transitions (paper A Eq. 6.1)."""
        utd, params = _positive_pair(utd, params)
        bs = self.model.batch_size
        if bs.kind == "fixed":
            return _scalar_or_array(np.full(np.broadcast(utd, params).shape, bs.a_b))
        return _scalar_or_array(laws.batch_size(utd, params, bs.a_b, bs.alpha_b, bs.b_b, bs.beta_b))

    def compute(self, utd: ArrayLike, params: ArrayLike, data: ArrayLike):
        """Training FLOPs under the fit's compute definition."""
        utd, params, data = _positive_pair(utd, params, ("data", data))
        cd = self.model.compute  # at the reference batch size (count_real_batch is reserved)
        with np.errstate(over="ignore"):
            out = laws.compute(utd, params, data, cd.flops_per_param_sample,
                               cd.reference_batch_size)
        if not np.all(np.isfinite(out)):
            raise ConfigError("utd x params x data is too large: the compute overflows a float")
        return _scalar_or_array(out)

    @property
    def compute_per_update_param(self) -> float:
        """k in C = k * utd * params * data (FLOPs per update per critic parameter)."""
        cd = self.model.compute
        return cd.flops_per_param_sample * cd.reference_batch_size

    # --- architecture --------------------------------------------------------------------
    @cached_property
    def _poly(self) -> np.poly1d:
        return np.poly1d(self.model.architecture.coefficients)

    def params(self, width: ArrayLike):
        """Critic parameter count at hidden `width` (the fit's architecture)."""
        width = _positive("width", width)
        with np.errstate(over="ignore"):
            out = self._poly(width)
        if not np.all(np.isfinite(out)):
            raise ConfigError(f"width {width.max():g} gives more critic params than a float holds")
        return _scalar_or_array(out)

    def width(self, params: ArrayLike):
        """Hidden width (unrounded) whose critic has `params` parameters."""
        params = _positive("params", params)
        flat = np.atleast_1d(params).ravel()
        smallest = float(self._poly(0.0))
        if np.any(flat <= smallest):
            raise ConfigError(f"no width of {self.id}'s critic has {flat.min():g} params (it "
                              f"has {smallest:g} at width 0 and more above)")
        coef = self._poly.coef  # highest power first
        if len(coef) == 3 and coef[0] > 0:  # a quadratic (every BroNet): its root, stably
            a, b, c = coef
            with np.errstate(all="ignore"):
                disc = np.sqrt(b * b - 4 * a * (c - flat))
                # (-b + disc) / 2a, written without cancelling where b > 0 dominates
                out = np.where(b > 0, 2 * (flat - c) / (b + disc), (disc - b) / (2 * a))
        else:
            out = self._roots(flat)
        with np.errstate(over="ignore", invalid="ignore"):
            exact = np.abs(self._poly(out) - flat) <= 1e-9 * flat
        if np.all(exact):
            return _scalar_or_array(out.reshape(params.shape))
        # Bisection on the increasing polynomial (the schema checks that it increases), where
        # the roots of an ill-conditioned one (a negligible leading coefficient) are wrong.
        lo, hi = np.zeros_like(flat), np.ones_like(flat)
        with np.errstate(over="ignore"):
            while np.any(self._poly(hi) < flat):
                hi = np.where(self._poly(hi) < flat, 2 * hi, hi)
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if not np.any((mid > lo) & (mid < hi)):
                    break
                below = self._poly(mid) < flat
                lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return _scalar_or_array(hi.reshape(params.shape))

    def _roots(self, flat: np.ndarray) -> np.ndarray:
        """The largest positive real root of params(width) = p for each p (nan where none)."""
        out = np.empty_like(flat)
        for i, p in enumerate(flat):
            try:
                with np.errstate(all="ignore"):
                    roots = (self._poly - p).roots
            except np.linalg.LinAlgError:
                out[i] = np.nan
                continue
            real = roots[(np.abs(roots.imag) < 1e-9 * max(1.0, abs(p))) & (roots.real > 0)].real
            out[i] = real.max() if real.size else np.nan
        return out

    def round_width(self, width: float) -> int:
        """The nearest width multiple (at least one) to `width`."""
        width = _positive("width", width)
        if width.ndim:
            raise ConfigError(f"width must be one number, got an array of shape {width.shape}")
        m = self.model.architecture.width_multiple
        return int(max(m, m * round(float(width) / m)))

    # --- domain --------------------------------------------------------------------------
    def in_domain(self, utd: float, params: float) -> bool:
        """Whether (utd, params) lies inside the fitted ranges (else: extrapolated)."""
        return all(self.model.domain.contains(utd, params))

    def threshold_below(self, target: float | None = None) -> float:
        """The highest of the fit's thresholds at or below `target` (default: the top one)."""
        target = self.check_target(target)
        tol = 1e-9 * max(abs(self.target_max - self.target_min), abs(target), 1e-300)
        return float(self.thresholds[self.thresholds <= target + tol].max(
            initial=self.target_min))

    def contradicting_runs(self, utd: float, params: float, target: float | None = None,
                           data: float = 0.0) -> list[FittedRun]:
        """The fitted configurations whose runs contradict a prediction that (utd, params)
        reaches `target` (default: the top threshold) in `data` env steps: utd and params no
        smaller (the law says they need no more data), yet in at least `data` steps, at every
        batch size they ran, their runs never reached the highest threshold at or below
        `target`. Empty where the fit does not record its runs (schema 3 and older)."""
        utd_a, params_a = _one_config("contradicting_runs", utd, params)
        return [r for r, _, _ in self._short_runs(target, _run_steps(data))
                if r.utd >= utd_a * (1 - 1e-9) and r.params >= params_a * (1 - 1e-9)]

    def _short_runs(self, target: float | None, data: float) -> list[tuple[FittedRun, float,
                                                                           float]]:
        """The runs that never reached `target` (the threshold at or below it) in at least
        `data` env steps, each with the corner of what it closes: the next fitted utd and the
        next fitted critic size above its own (one step of the last ratio beyond the
        largest)."""
        runs = self.model.domain.runs or []
        floor = self.threshold_below(target)
        tol = 1e-9 * max(abs(self.target_max - self.target_min), abs(floor), 1e-300)

        def next_up(axis: list[float], v: float) -> float:
            above = [x for x in axis if x > v * (1 + 1e-9)]
            return above[0] if above else v * (axis[-1] / axis[-2] if len(axis) > 1 else 2.0)

        utds, sizes = sorted({r.utd for r in runs}), sorted({r.params for r in runs})
        return [(r, next_up(utds, r.utd), next_up(sizes, r.params)) for r in runs
                if (r.reached is None or r.reached < floor - tol)
                and r.horizon >= data * (1 - 1e-9)]

    def closing_runs(self, utd: float, params: float, target: float | None = None,
                     data: float = 0.0) -> list[FittedRun]:
        """The runs that close (utd, params) for `target` (uncontradicted_boxes): short of it
        in at least `data` env steps, with utd below the next fitted utd above theirs and
        params below the next fitted size above theirs. Empty where the fit records no runs."""
        utd_a, params_a = _one_config("closing_runs", utd, params)
        return [r for r, u, n in self._short_runs(target, _run_steps(data))
                if utd_a < u * (1 - 1e-9) and params_a < n * (1 - 1e-9)]

    def uncontradicted_boxes(self, box: Box, target: float | None = None, data: float = 0.0
                             ) -> list[Box]:
        """The parts of `box` that the fit's runs leave open for reaching `target`, as boxes
        whose union they are. A run that never got there in at least `data` env steps (default
        0: in its whole length) closes every configuration below the next fitted utd and the
        next fitted critic size above its own (closing_runs): the configurations it
        dominates, which by the law need no less data, and those just past it, which are no
        better evidenced. [] where they close all of `box`; [box] where none is short
        (schema 3 and older: no runs recorded)."""
        corners = {(u, n) for _, u, n in self._short_runs(target, _run_steps(data))}
        if not corners:
            return [box]
        # the staircase: corners no other dominates, by utd up (so params down)
        stairs = sorted(c for c in corners
                        if not any(o != c and o[0] >= c[0] and o[1] >= c[1] for o in corners))
        # below stairs[k]'s utd (and at or above the one before), params from stairs[k]'s up
        lows = [box.utd_low] + [u for u, _ in stairs]
        highs = [u for u, _ in stairs] + [box.utd_high]
        floors = [n for _, n in stairs] + [box.params_low]
        out = []
        for u_lo, u_hi, n_lo in zip(lows, highs, floors):
            part = Box(max(u_lo, box.utd_low), min(u_hi, box.utd_high),
                       max(n_lo, box.params_low), box.params_high)
            if part.utd_low <= part.utd_high and part.params_low <= part.params_high:
                out.append(part)
        return out

    def trusted_box(self, within_fitted: bool = False) -> Box:
        """The (utd, params) range recommend() searches: UTD_REACH x beyond the fitted utds,
        PARAMS_REACH x beyond the fitted sizes (advisor.fitfile), and no smaller than the
        critic of the narrowest width the fit can recommend (its width multiple);
        `within_fitted`: the fitted ranges themselves (no extrapolation)."""
        if not isinstance(within_fitted, (bool, np.bool_)):  # not 'yes', read as True
            raise ConfigError(f"within_fitted must be True or False, got {shown(within_fitted)}")
        u_lo, u_hi, n_lo, n_hi = self.model.domain.trusted(*((1.0, 1.0) if within_fitted
                                                             else ()))
        smallest = float(self.params(self.model.architecture.width_multiple))
        return Box(u_lo, u_hi, min(max(n_lo, smallest), n_hi), n_hi)
