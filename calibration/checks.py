"""Is a fitted law fit to use? The checks `advisor calibrate` runs on the fit it writes.

A calibration grid that is too short, too noisy or too narrow still gives a fit: least squares
always returns something. These say where it should not be trusted:
  exponents   every D_J exponent (alpha, beta) strictly inside the bounds of the fit
              (calibration.fitting.ALPHA_BOUNDS): one at a bound was not determined by the runs;
  batch size  B~'s exponents at most 3 (B~ moving more than 8x per doubling of utd or params
              is a step between two of the grid's points, not a trend: a smoke fit on Hopper
              had b_B = 1.7e49, beta_B = 14, and smoke fits on Pendulum and InvertedPendulum
              beta_B 14.4-14.9), and B~ at the corners of the fitted domain within 4x of the
              batch sizes the runs used: a B~ that recommends batch sizes far from any run is a
              fit of noise;
  baseline    leave-one-config-out error below the log-linear baseline's: otherwise the law's
              curvature, which is what sets the trade-offs it recommends, is not supported
              (a free fit whose runs give the baseline nothing to predict fails it too);
  interval    (few-shot fits of fewer than calibration.prior.MIN_OWN_CONFIGS configs, whose
              interval is the family's alone) at least half of the fit's own configs, each
              held out, inside the 80% interval: otherwise the family does not describe this
              task, and the interval says nothing about it;
  steps       (shown only when it fails) the longest run at least MIN_HORIZON env steps: runs
              shorter than that are most likely steps logged in millions (or thousands, for
              runs under 100k steps: a CSV's step column), and every data figure the fit
              gives is then off by as much; a larger unit slips through.
  params      (shown only when it fails) the largest critic at least MIN_PARAMS parameters:
              fewer is a params column in millions (or thousands), and every compute figure
              is then off by as much;
  targets     (shown only when it fails) D_J rising with the target inside the fitted domain,
              within MAX_TARGET_DROP from one threshold to the next: a run passes a lower
              target first, so laws that cross give answers that contradict each other;
  axes        (free fits, shown only when it fails) at least MIN_AXIS_VALUES distinct utds
              and critic sizes: with fewer, the law's offsets absorb any exponent along that
              axis, which the fit then sets from noise.

    problems = [c for c in fit_checks(fit, batch_sizes=[128, 256]) if not c.ok]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advisor import laws
from advisor.fitfile import CHECKS_FAILED_NOTE, FitFile
from calibration.batch import ALPHA_B_BOUNDS, BETA_B_BOUNDS
from calibration.fitting import ALPHA_BOUNDS

#: B~ at the domain's corners may lie this factor beyond the batch sizes the runs used.
BATCH_SPAN = 4.0
#: B~'s exponents above this are a step between grid points (8x per doubling), not a law.
MAX_BATCH_EXPONENT = 3.0
#: A family-only interval must cover at least this share of the fit's own held-out configs.
MIN_OWN_COVERAGE = 0.5
#: The longest run must reach this many env steps: less is a step column in other units.
MIN_HORIZON = 100.0
#: The largest critic must have this many parameters: fewer is a params column in other units.
MIN_PARAMS = 1000.0
#: D_J may fall this much from one threshold to the next inside the domain (noise, not a law).
MAX_TARGET_DROP = 0.05
#: A free fit needs this many distinct values of utd, and of params, to determine each exponent.
MIN_AXIS_VALUES = 3
_AT_BOUND = 1e-3  # relative distance to a bound that counts as on it


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.message}"


def _at_bound(x: float, lo: float, hi: float) -> str | None:
    if x >= hi * (1 - _AT_BOUND):
        return f"at its upper bound {hi:g}"
    if x <= lo * (1 + _AT_BOUND) + 1e-12:
        return f"at its lower bound {lo:g}"
    return None


def fit_checks(fit: FitFile, batch_sizes: list[int] | None = None,
               configs: tuple[object, object] | None = None) -> list[Check]:
    """The checks of the module docstring on one fit file; `batch_sizes`: those the runs used
    (without them the batch-size range check is skipped); `configs`: the (utd, params) of the
    fitted configurations (without them the axes check is skipped)."""
    out = []
    lo, hi = ALPHA_BOUNDS
    n_laws = len(fit.data_to_target.laws)
    at: dict[str, int] = {}  # "beta 8 at its upper bound 8" -> targets where it is
    for law in fit.data_to_target.laws:
        for name, x in (("alpha", law.alpha), ("beta", law.beta)):
            where = _at_bound(x, lo, hi)
            if where:
                key = f"{name} {x:.3g} {where}"
                at[key] = at.get(key, 0) + 1
    bad = [f"{key} ({count} of {n_laws} targets)" for key, count in at.items()]
    alphas = sorted({round(law.alpha, 3) for law in fit.data_to_target.laws})
    betas = sorted({round(law.beta, 3) for law in fit.data_to_target.laws})
    prior = fit.provenance.prior
    held = (f" (held at the {prior.family + ' family' if prior.family else 'prior'}'s "
            "medians: a few-shot fit does not fit them)" if prior is not None else "")
    out.append(Check("exponents", not bad, "; ".join(bad) if bad else
                     f"alpha {_span(alphas)}, beta {_span(betas)}, inside ({lo:g}, {hi:g})"
                     + held))

    bs = fit.batch_size
    if bs.kind == "law" and bs.source == "fitted":
        bad = []
        for name, x, (b_lo, b_hi) in (("alpha_B", bs.alpha_b, ALPHA_B_BOUNDS),
                                      ("beta_B", bs.beta_b, BETA_B_BOUNDS)):
            if x >= b_hi * (1 - _AT_BOUND):
                bad.append(f"{name} {x:.3g} at its upper bound {b_hi:g} (B~ moves at least "
                           f"{2 ** x:.3g}x per doubling: the runs did not determine it)")
            elif x > MAX_BATCH_EXPONENT:
                bad.append(f"{name} {x:.3g} above {MAX_BATCH_EXPONENT:g} (B~ moves "
                           f"{2 ** x:.3g}x per doubling: a step between the grid's points, "
                           "not a trend)")
        dom = fit.domain
        corners = np.array([[u, n] for u in (dom.utd.low, dom.utd.high)
                            for n in (dom.params.low, dom.params.high)])
        b = laws.batch_size(corners[:, 0], corners[:, 1], bs.a_b, bs.alpha_b, bs.b_b, bs.beta_b)
        span = f"B~ {np.min(b):.3g}-{np.max(b):.3g} over the fitted domain"
        if batch_sizes:
            b_min, b_max = min(batch_sizes) / BATCH_SPAN, max(batch_sizes) * BATCH_SPAN
            if not (np.all(np.isfinite(b)) and np.min(b) >= b_min and np.max(b) <= b_max):
                bad.append(f"{span}, beyond {BATCH_SPAN:g}x the runs' batch sizes "
                           f"{min(batch_sizes)}-{max(batch_sizes)}")
        out.append(Check("batch size", not bad, "; ".join(bad) if bad else
                         f"{span} (a_B {bs.a_b:.3g}, alpha_B {bs.alpha_b:.3g}, b_B {bs.b_b:.3g}, "
                         f"beta_B {bs.beta_b:.3g})"))

    g = fit.goodness_of_fit
    base = g.baseline_loglinear_leave_one_config_out
    if base is not None:
        loco = g.leave_one_config_out
        out.append(Check("baseline", loco < base,
                         f"leave-one-config-out error {100 * loco:.1f}% "
                         f"{'below' if loco < base else 'not below'} the log-linear baseline's "
                         f"{100 * base:.1f}%"))
    elif prior is None:  # a free fit's curvature, with nothing to compare it to
        out.append(Check("baseline", False,
                         "no log-linear baseline to compare with: "
                         + (f"at no target do 5 of the {g.n_configs} configs reach it"
                            if g.n_configs >= 5 else f"it needs 5 configs, the fit has "
                            f"{g.n_configs}")
                         + " (one held out, 4 to fit the baseline); the law's "
                         f"{100 * g.leave_one_config_out:.1f}% error is not shown to beat it "
                         "(run more configs)"))
    from calibration.prior import MIN_OWN_CONFIGS

    pi = fit.prediction_interval
    own = None if pi is None else pi.coverage.get("leave_one_config_out")
    if prior is not None and g.n_configs < MIN_OWN_CONFIGS and own is not None:
        ok = own >= MIN_OWN_COVERAGE
        out.append(Check("interval", ok,
                         f"the 80% interval, the family's alone (fewer than {MIN_OWN_CONFIGS} "
                         f"configs), covers {100 * own:.0f}% of the D_J of the fit's own "
                         f"{g.n_configs} configs, each held out"
                         + ("" if ok else ": the family does not describe this task; run "
                            "more configurations or fit without --prior")))
    horizon = fit.domain.horizon
    if horizon is not None and horizon < MIN_HORIZON:  # silent when it passes: notes unchanged
        out.append(Check("steps", False,
                         f"the longest run ends at {horizon:g} env steps, under {MIN_HORIZON:g}: "
                         "a step column in thousands or millions of env steps? (steps must "
                         "count env steps, or every data figure of the fit is off by as "
                         "much; runs this short say little in any case)"))
    largest = fit.domain.params.high
    if largest < MIN_PARAMS:
        out.append(Check("params", False,
                         f"the largest critic has {largest:g} params, under {MIN_PARAMS:g}: a "
                         "params column in thousands or millions? (params must count the "
                         "critic's parameters, or every compute figure of the fit is off by "
                         "as much)"))
    drop = _largest_drop(fit)
    if drop is not None and drop[0] > MAX_TARGET_DROP:  # silent when it passes
        share, lower, higher, u, n = drop
        out.append(Check("targets", False,
                         f"the law says target {higher:.4g} needs {100 * share:.0f}% less data "
                         f"than target {lower:.4g} at utd {u:.3g}, params {n:.3g} (inside the "
                         "fitted domain), though a run passes the lower target first: the "
                         "thresholds' laws cross, so answers near them contradict each other"))
    if configs is not None and prior is None:
        for name, values, exponent in (("utd", configs[0], "alpha"),
                                       ("params", configs[1], "beta")):
            distinct = sorted({float(v) for v in np.asarray(values, float).ravel()})
            if len(distinct) < MIN_AXIS_VALUES:
                out.append(Check("axes", False,
                                 f"the runs have {len(distinct)} distinct {name} "
                                 f"({', '.join(f'{v:.3g}' for v in distinct)}): {exponent} is not "
                                 f"determined by them ({MIN_AXIS_VALUES} at least; or fit "
                                 "with --prior, which takes it from a family)"))
    return out


def _largest_drop(fit: FitFile, n: int = 9) -> tuple[float, float, float, float, float] | None:
    """(share, lower target, higher target, utd, params) of the largest relative fall of D_J
    from one threshold to the next on an n x n log grid over the fitted domain; None where no
    threshold's law predicts less than the one below it."""
    d = fit.domain
    u = np.geomspace(d.utd.low, d.utd.high, n)[:, None]
    p = np.geomspace(d.params.low, d.params.high, n)[None, :]
    rows = fit.data_to_target.laws
    with np.errstate(all="ignore"):
        data = np.array([laws.data_to_target(u, p, w.d_min, w.a, w.alpha, w.b, w.beta)
                         for w in rows])
        fall = 1 - data[1:] / data[:-1]
    if not np.any(fall > 0):
        return None
    k, i, j = np.unravel_index(int(np.nanargmax(fall)), fall.shape)
    return (float(fall[k, i, j]), rows[k].target, rows[k + 1].target, float(u[i, 0]),
            float(p[0, j]))


def _span(values: list[float]) -> str:
    return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"


def check_notes(checks: list[Check]) -> list[str]:
    """The notes a fit file records: one per failed check ("fit check FAILED: name: what"),
    or one saying which passed."""
    failed = [c for c in checks if not c.ok]
    if not failed:
        return [f"fit checks passed: {', '.join(c.name for c in checks)} (calibration.checks)"]
    return [f"{CHECKS_FAILED_NOTE}: {c.name}: {c.message}" for c in failed]
