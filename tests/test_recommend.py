"""recommend() against brute force over a dense (utd, params) grid, plus bad budgets."""

import functools
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import advisor
from advisor import laws
from advisor.errors import AdvisorError, BudgetError, InfeasibleBudgetError, TargetError

CASES = ["bro/h1-crawl-v0", "bro/h1-stand-v0", "bro/humanoid-stand", "simbav2/h1-crawl-v0",
         "bro/dog-run"]


def grid(fit, target):
    """D and C over a dense log grid of the box recommend() searches (~0.1% steps)."""
    box = fit.trusted_box()
    s, n = np.meshgrid(np.geomspace(box.utd_low, box.utd_high, 1500),
                       np.geomspace(box.params_low, box.params_high, 1500), indexing="ij")
    d = laws.data_to_target(s, n, *fit.coefficients(target))
    return d, fit.compute_per_update_param * s * n * d


@pytest.mark.parametrize("fit_id", CASES)
@pytest.mark.parametrize("frac", [0.35, 0.6, 0.9])
def test_data_budget_gives_least_compute(fit_id, frac):
    f = advisor.load_fit(fit_id)
    j = f.thresholds[int(frac * (len(f.thresholds) - 1))]
    d, c = grid(f, j)
    data_budget = 1.6 * grid(f, j)[0].min()
    rec = advisor.recommend(advisor.Budget(data=data_budget), fit=fit_id, target=j)
    opt = rec.optimum
    brute = c[d <= data_budget].min()
    assert opt.data <= data_budget * (1 + 1e-9)
    assert f.data_to_target(opt.utd, opt.params, j) == pytest.approx(opt.data)
    assert opt.compute <= brute * (1 + 1e-9)
    assert opt.compute >= brute * 0.97
    # The rounded configuration the user copies stays within the budget too.
    assert rec.within_budget and rec.predicted_data <= data_budget * (1 + 1e-9)
    assert f.data_to_target(rec.utd, rec.params, j) == pytest.approx(rec.predicted_data)


@pytest.mark.parametrize("fit_id", CASES)
@pytest.mark.parametrize("scale", [3.0, 30.0])
def test_compute_budget_gives_least_data(fit_id, scale):
    f = advisor.load_fit(fit_id)
    j = f.target_max
    ref = advisor.recommend(advisor.Budget(data=2.0 * grid(f, j)[0].min()), fit=fit_id)
    budget = scale * ref.optimum.compute
    rec = advisor.recommend(advisor.Budget(compute=budget), fit=fit_id)
    d, c = grid(f, j)
    brute = d[c <= budget].min()
    assert rec.optimum.compute <= budget * (1 + 1e-9)
    assert rec.optimum.data <= brute * (1 + 1e-9)
    assert rec.optimum.data >= brute * 0.99
    assert rec.within_budget and rec.predicted_compute <= budget * (1 + 1e-9)
    assert rec.predicted_data <= brute * 1.05  # rounding costs a few percent at most


@pytest.mark.parametrize("fit_id", CASES)
def test_compute_and_data_gives_highest_reachable_target(fit_id):
    f = advisor.load_fit(fit_id)
    mid = f.thresholds[len(f.thresholds) // 2]
    data_budget = 1.5 * grid(f, mid)[0].min()
    ref = advisor.recommend(advisor.Budget(data=data_budget), fit=fit_id, target=mid)
    compute_budget = 2.0 * ref.optimum.compute
    rec = advisor.recommend(advisor.Budget(compute=compute_budget, data=data_budget), fit=fit_id)
    assert rec.within_budget
    assert rec.predicted_data <= data_budget * (1 + 1e-9)
    assert rec.predicted_compute <= compute_budget * (1 + 1e-9)
    assert rec.optimum.target >= mid and rec.target <= rec.optimum.target
    # Brute force: no target clearly above ours is reachable anywhere on the grid.
    step = 0.01 * (f.target_max - f.target_min)
    for j in np.linspace(rec.optimum.target + step, f.target_max, 5):
        if j > f.target_max:
            continue
        d, c = grid(f, j)
        assert not np.any((d <= data_budget) & (c <= compute_budget)), j


@pytest.mark.parametrize("fit_id", CASES)
def test_total_budget_gives_highest_target_within_c_plus_delta_d(fit_id):
    f = advisor.load_fit(fit_id)
    lo = advisor.recommend(advisor.Budget(total=1e30), fit=fit_id, target=f.target_min)
    budget = 1.5 * lo.optimum.total
    rec = advisor.recommend(advisor.Budget(total=budget), fit=fit_id)
    opt = rec.optimum
    assert opt.total <= budget * (1 + 1e-9)
    assert rec.within_budget and rec.predicted_total <= budget * (1 + 1e-9)
    d, c = grid(f, opt.target)
    brute = (c + f.delta * d).min()
    assert opt.total <= brute * (1 + 1e-9)
    assert opt.total >= brute * 0.99
    step = 0.01 * (f.target_max - f.target_min)
    if opt.target + step <= f.target_max:
        d, c = grid(f, opt.target + step)
        assert (c + f.delta * d).min() > budget


def test_total_with_custom_delta_changes_the_trade_off():
    cheap = advisor.recommend(advisor.Budget(total=1e19, delta=1e9))
    dear = advisor.recommend(advisor.Budget(total=1e19, delta=1e13))
    assert dear.predicted_data < cheap.predicted_data or dear.target < cheap.target


def test_plain_float_is_a_compute_budget():
    a = advisor.recommend(1e17)
    b = advisor.recommend(advisor.Budget(compute=1e17))
    assert a == b and a.problem == "compute"


def test_an_interval_too_wide_to_inform_is_flagged():
    """Far outside the fitted domain the widened interval can span orders of magnitude (a
    smoke-calibrated fit printed 0.28-2.8e5 env steps): say so instead of printing it bare."""
    f = advisor.load_fit("bro/h1-stand-v0")
    rec = advisor.recommend(advisor.Budget(data=6e5), fit=f, target=500)
    assert not any("interval spans" in w for w in rec.warnings)
    pi = f.model.prediction_interval.model_copy(update={"widen_up": 1000.0,
                                                        "widen_down": 1000.0})
    wide = advisor.Fit(f.model.model_copy(update={"prediction_interval": pi}))
    rec = advisor.recommend(advisor.Budget(compute=1e19), fit=wide, target=500)
    assert rec.extrapolated and rec.interval.high / rec.interval.low > 100
    assert any(w.startswith("the 80% interval spans a factor of") for w in rec.warnings)


def test_recommendation_fields_are_consistent():
    rec = advisor.recommend(advisor.Budget(data=6e5), fit="bro/h1-stand-v0", target=500)
    f = advisor.load_fit("bro/h1-stand-v0")
    assert rec.batch_size % 16 == 0
    assert abs(rec.batch_size - f.batch_size(rec.utd, rec.params)) <= 8
    assert rec.width % f.model.architecture.width_multiple == 0
    assert rec.params == f.params(rec.width)
    assert rec.utd == rec.gradient_steps / rec.train_freq
    assert rec.predicted_data == pytest.approx(f.data_to_target(rec.utd, rec.params, 500))
    assert rec.predicted_compute == pytest.approx(f.compute(rec.utd, rec.params,
                                                            rec.predicted_data))
    assert rec.interval.low < rec.predicted_data < rec.interval.high
    assert rec.predicted_total == pytest.approx(rec.predicted_compute
                                                + f.delta * rec.predicted_data)
    assert rec.learning_rate == 3e-4


def test_extrapolation_is_flagged():
    far = advisor.recommend(advisor.Budget(compute=1e20))
    assert far.extrapolated and any("outside the fitted range" in w for w in far.warnings)


def test_below_the_fitted_range_the_warning_says_which_way_the_law_leans():
    """Below its runs the law predicts more data than runs need (benchmarks/edge_bias.py, the
    smallest edges); above them it does not say so."""
    below = advisor.recommend(advisor.Budget(data=1e6), utd=0.5)
    says = [w for w in below.warnings if w.startswith("utd 0.5 is outside the fitted range")]
    assert says and says[0].endswith(
        ": extrapolated, where the law tends to predict more data than runs need"), says
    small = advisor.recommend(advisor.Budget(data=3e6), width=64)
    assert any(w.startswith("params ") and "predict more data than runs need" in w
               for w in small.warnings), small.warnings
    # width 64 is the best width for this budget anyway: its pin costs nothing and says nothing
    # (it said "fixing width 64 costs 2.7e-13% more compute")
    assert small.width == 64 and not any(w.startswith("fixing") for w in small.warnings)
    above = advisor.recommend(advisor.Budget(compute=1e20))
    assert not any("more data than runs need" in w for w in above.warnings), above.warnings


def test_data_budget_too_small_names_the_smallest_that_works():
    f = advisor.load_fit("bro/h1-crawl-v0")
    with pytest.raises(InfeasibleBudgetError, match="needs more than") as err:
        advisor.recommend(advisor.Budget(data=1e3))
    assert f"{grid(f, f.target_min)[0].min():.3g}"[:3] in str(err.value)


def test_data_budget_between_targets_points_to_the_reachable_one():
    f = advisor.load_fit("bro/h1-crawl-v0")
    mid = grid(f, f.thresholds[8])[0].min() * 1.01
    with pytest.raises(InfeasibleBudgetError, match="highest target this budget reaches"):
        advisor.recommend(advisor.Budget(data=mid))


def test_the_numbers_an_infeasible_budget_prints_work_when_typed_back():
    """The hinted target (printed to 4 digits) is reachable with that budget, and the budget a
    target "needs at least" is enough for it. Before: the hint was rounded to nearest (half the
    hints failed), and a compute budget just above the least compute had no answer."""
    import random
    import re

    rng = random.Random(3)
    hints = needs = 0
    for _ in range(300):
        fid = rng.choice(advisor.list_fits())
        kind = rng.choice(["compute", "data"])
        value = 10 ** (rng.uniform(13, 18) if kind == "compute" else rng.uniform(4, 6.5))
        budget = advisor.Budget(**{kind: value})
        try:
            advisor.recommend(budget, fit=fid)
            continue
        except InfeasibleBudgetError as exc:
            text = str(exc)
        hint = re.search(r"highest target this budget reaches is (\S+) ", text)
        if hint:
            hints += 1
            advisor.recommend(budget, fit=fid, target=float(hint.group(1)))
        target = float(re.search(r"reach target (\S+) on", text).group(1))
        need = re.search(r"needs (?:at least|more than) (\S+) (FLOPs|env steps)", text)
        needs += 1
        key = "compute" if need.group(2) == "FLOPs" else "data"
        advisor.recommend(advisor.Budget(**{key: float(need.group(1))}), fit=fid, target=target)
    assert hints >= 20 and needs >= 50


@pytest.mark.parametrize("kw", [dict(), dict(compute=0.0), dict(data=-5.0),
                                dict(compute=float("nan")), dict(total=float("inf")),
                                dict(total=1e18, compute=1e17), dict(delta=1e11, data=1e5),
                                dict(compute="1e17")])
def test_bad_budgets_are_one_line_budget_errors(kw):
    with pytest.raises(BudgetError) as err:
        advisor.Budget(**kw)
    assert "\n" not in str(err.value)


def test_target_outside_range_is_refused():
    with pytest.raises(TargetError, match="between 450 and 780"):
        advisor.recommend(1e17, target=900)


# Targets as a fraction of the fitted range (a little outside it now and then), or the default.
targets = st.none() | st.floats(min_value=-0.1, max_value=1.1)


OUTCOMES = {"ok": 0, "error": 0, "over": 0}


@functools.lru_cache(maxsize=None)
def _least(fit_id: str) -> dict[str, float]:
    """Budgets of each kind that just reach the lowest target of a fit (the scale of draws)."""
    f = advisor.load_fit(fit_id)
    rec = advisor.recommend(advisor.Budget(data=1.5 * grid(f, f.target_min)[0].min()),
                            fit=fit_id, target=f.target_min)
    return {"data": rec.optimum.data, "compute": rec.optimum.compute, "total": rec.optimum.total}


# Budgets log-uniform from 0.3x to 1000x the least useful one (bad values: tests above).
factors = st.floats(min_value=-0.5, max_value=3.0).map(lambda e: 10.0**e)


# derandomize: the rate checked in the next test is over these draws, and a rate over fresh
# random draws each run sits near its bound often enough to fail a CI run by chance (once in
# about three runs here: 13 over for 120 ok, bound 12).
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(kind=st.sampled_from(["compute", "data", "both", "total"]), x=factors, y=factors,
       target=targets, fit_id=st.sampled_from(CASES))
def test_random_budgets_either_fit_or_raise_one_advisor_error(kind, x, y, target, fit_id):
    least = _least(fit_id)
    f = advisor.load_fit(fit_id)
    if target is not None:
        target = f.target_min + target * (f.target_max - f.target_min)
    kw = {"compute": dict(compute=x * least["compute"]), "data": dict(data=x * least["data"]),
          "both": dict(compute=x * least["compute"], data=y * least["data"]),
          "total": dict(total=x * least["total"])}[kind]
    try:
        rec = advisor.recommend(advisor.Budget(**kw), fit=fit_id, target=target)
    except AdvisorError as exc:
        assert "\n" not in str(exc)
        OUTCOMES["error"] += 1
        return
    assert f.target_min <= rec.target <= f.target_max
    opt = rec.optimum
    box = f.trusted_box()
    assert box.utd_low * 0.999 <= opt.utd <= box.utd_high * 1.001
    assert box.params_low * 0.999 <= opt.params <= box.params_high * 1.001
    assert all(math.isfinite(v) and v > 0 for v in
               (rec.utd, rec.params, rec.predicted_data, rec.predicted_compute))
    # The unrounded optimum always meets the budget; the rounded one does or says it does not.
    for value, limit in ((opt.compute, kw.get("compute")), (opt.data, kw.get("data")),
                         (opt.total, kw.get("total"))):
        assert limit is None or value <= limit * (1 + 1e-6)
    within = all(limit is None or value <= limit * (1 + 1e-6) for value, limit in (
        (rec.predicted_compute, kw.get("compute")), (rec.predicted_data, kw.get("data")),
        (rec.predicted_total, kw.get("total"))))
    assert within == rec.within_budget
    if not within:
        assert any("exceeds" in w for w in rec.warnings)
        OUTCOMES["over"] += 1
    OUTCOMES["ok"] += 1


def test_random_budgets_mostly_give_a_recommendation():
    """Runs after the property test above: most random budgets are feasible (so the checks on
    successes ran), and the rounded configuration rarely has to exceed the budget."""
    total = sum(OUTCOMES[k] for k in ("ok", "error"))
    if total == 0:
        pytest.skip("the property test did not run in this session")
    assert OUTCOMES["ok"] >= 0.5 * total, OUTCOMES
    assert OUTCOMES["over"] <= 0.1 * OUTCOMES["ok"], OUTCOMES


def test_rounded_config_minimises_the_problems_own_cost():
    """With compute to spare, compute+data is the data problem at the top target: the same
    rounded configuration (least compute within the data), inside both budgets."""
    both = advisor.recommend(advisor.Budget(compute=3e16, data=8e5))
    data_only = advisor.recommend(advisor.Budget(data=8e5))
    assert both.target == data_only.target == 780
    assert (both.gradient_steps, both.train_freq, both.width) == (
        data_only.gradient_steps, data_only.train_freq, data_only.width)
    assert both.predicted_data <= 8e5 and both.predicted_compute <= 3e16


def test_issue_example_rounded_config_stays_within_the_compute_budget():
    rec = advisor.recommend(advisor.Budget(compute=1e17))
    assert rec.within_budget and rec.predicted_compute <= 1e17
    f = advisor.load_fit("bro/h1-crawl-v0")
    assert f.compute(rec.utd, rec.params, rec.predicted_data) <= 1e17


def test_fits_no_better_than_loglinear_say_so():
    rec = advisor.recommend(advisor.Budget(data=2e6), fit="bro/hopper-hop")
    assert any("no better than a log-linear baseline" in w for w in rec.warnings)
    rec = advisor.recommend(advisor.Budget(data=8e5), fit="bro/h1-stand-v0")
    assert not any("log-linear" in w for w in rec.warnings)


@pytest.mark.parametrize("fit_id", CASES)
def test_rounded_config_stays_inside_the_trusted_box(fit_id):
    """Rounding to gradient_steps/train_freq and to the width multiple must not step outside
    the region where the law is used (it did: params 3.501e8 past the box's 3.43e8 for
    --compute 1e18 on bro/h1-crawl-v0), budgets pushing to every edge of the box, unless no
    configuration inside it fits the budget: then within budget, and said."""
    f = advisor.load_fit(fit_id)
    box = f.trusted_box()
    tol = 1e-9
    budgets = [advisor.Budget(compute=c) for c in (1e13, 1e15, 1e17, 1e18, 1e20)]
    budgets += [advisor.Budget(data=d) for d in (1.5e5, 3e5, 1e6, 3e6)]
    for budget in budgets:
        try:
            rec = advisor.recommend(budget, fit=fit_id)
        except AdvisorError:
            continue
        inside = (box.utd_low * (1 - tol) <= rec.utd <= box.utd_high * (1 + tol)
                  and box.params_low * (1 - tol) <= rec.params <= box.params_high * (1 + tol))
        said = any("just outside the trusted range" in w for w in rec.warnings)
        assert inside != said, (budget, rec.utd, rec.params, rec.warnings)
        assert inside or rec.within_budget, (budget, rec.utd, rec.params)
    rec = advisor.recommend(advisor.Budget(compute=1e18), fit="bro/h1-crawl-v0")
    assert rec.params <= box.params_high or fit_id != "bro/h1-crawl-v0"


@pytest.mark.parametrize("fit_id, budget", [("bro/h1-crawl-v0", dict(total=5e17)),
                                            ("bro/dog-stand", dict(total=3e16)),
                                            ("bro/h1-stand-v0", dict(compute=3e15, data=2.5e5))])
def test_the_target_reported_is_the_highest_the_rounded_config_reaches(fit_id, budget):
    """A reviewer's: the rounded config's target was the last of 241 grid targets it reached
    (677.68 on bro/h1-crawl-v0 at total 5e17, where it reaches 678.63), with a warning that
    rounding cost target it did not cost. Bisected independently here: the same target."""
    f = advisor.load_fit(fit_id)
    rec = advisor.recommend(advisor.Budget(**budget), fit=fit_id)

    def fits(j: float) -> bool:
        d = float(f.data_to_target(rec.utd, rec.params, j))
        c = float(f.compute(rec.utd, rec.params, d))
        if "total" in budget:
            return c + rec.delta * d <= budget["total"] * (1 + 1e-9)
        return d <= budget["data"] * (1 + 1e-9) and c <= budget["compute"] * (1 + 1e-9)

    lo, hi = f.target_min, rec.optimum.target
    while hi - lo > 1e-7:
        lo, hi = ((lo + hi) / 2, hi) if fits((lo + hi) / 2) else (lo, (lo + hi) / 2)
    assert rec.within_budget and rec.target == pytest.approx(lo, abs=1e-5)
    costs = [w for w in rec.warnings if w.startswith("rounding costs target")]
    assert bool(costs) == (f"{rec.target:.4g}" != f"{rec.optimum.target:.4g}")


def test_a_budget_only_a_config_just_outside_the_box_fits_is_kept_within_budget():
    """bro/cheetah-run, 1e14 FLOPs: every width inside the box exceeds the budget once rounded;
    width 64 (5.06e4 params, 8% below the box) fits it: taken, and warned (found by a hostile
    tester after the box was first enforced: it went over budget instead)."""
    rec = advisor.recommend(advisor.Budget(compute=1e14), fit="bro/cheetah-run")
    assert rec.within_budget and rec.predicted_compute <= 1e14 * 1.001
    assert any("just outside the trusted range" in w for w in rec.warnings)
    both = advisor.recommend(advisor.Budget(compute=1e14, data=1e6), fit="bro/cheetah-run")
    assert both.within_budget and both.target > 670  # not 570: the rounding keeps the target


@pytest.mark.parametrize("fit_id", advisor.list_fits())
def test_the_trusted_box_starts_at_the_narrowest_width_a_fit_can_recommend(fit_id):
    """The search never goes below the critic of one width multiple, which rounding could not
    express anyway (bro/h1-crawl-v0's box began at 1.79e4 params, width 64 has 5.66e4)."""
    f = advisor.load_fit(fit_id)
    box = f.trusted_box()
    assert box.params_low >= f.params(f.model.architecture.width_multiple) * (1 - 1e-12)
    assert box.params_low < box.params_high


@pytest.mark.parametrize("fit_id, kw", [
    ("bro/h1-crawl-v0", dict(compute=3.16e14, data=3.16e5)),
    ("bro/h1-stand-v0", dict(compute=1e15, data=3.16e5)),
    ("bro/walker-run", dict(compute=1e15, data=1e6, target=730)),
    ("bro/humanoid-walk", dict(compute=1e16, data=1e6, target=650)),
])
def test_a_rounded_config_within_budget_is_found_beyond_the_nearest_neighbours(fit_id, kw):
    """Budgets a hostile tester found where the neighbours of the optimum (train_freq <= 4) all
    exceed a budget but another rounded configuration fits (e.g. utd 20/7): within budget."""
    target = kw.pop("target", None)
    rec = advisor.recommend(advisor.Budget(**kw), fit=fit_id, target=target)
    assert rec.within_budget, rec.warnings
    assert rec.predicted_compute <= kw["compute"] * 1.001
    assert rec.predicted_data <= kw["data"] * 1.001


def test_more_data_than_the_longest_fitted_run_is_extrapolated():
    """bro-torch/Hopper-v5's runs end at 10,000 steps: a recommendation predicting 10,667 said
    `extrapolated: False`, though no run measured a crossing that late."""
    fit = advisor.load_fit("bro-torch/Hopper-v5")
    assert fit.model.domain.horizon == 10_000
    rec = advisor.recommend(advisor.Budget(compute=1.5e12), fit=fit)
    assert rec.predicted_data > 10_000 and rec.extrapolated
    assert any("beyond the longest run the fit saw (1e+04 steps)" in w for w in rec.warnings)
    inside = advisor.recommend(advisor.Budget(data=9_000), fit=fit)
    assert inside.predicted_data <= 10_000
    assert not any("beyond the longest run" in w for w in inside.warnings)
    # A fit file written before the field (no horizon) loads and says nothing of it.
    old = fit.model.model_copy(update={"domain": fit.model.domain.model_copy(
        update={"horizon": None})})
    rec = advisor.recommend(advisor.Budget(compute=1.5e12), fit=advisor.Fit(old))
    assert not any("beyond the longest run" in w for w in rec.warnings)


def test_within_fitted_keeps_the_answer_inside_the_fitted_ranges():
    """A hostile tester's: a larger data budget pulled the least-compute answer to utd 0.75,
    outside the fitted 1-8, with no way to stay inside. within_fitted searches the fitted ranges
    only: an answer inside them, at more compute, and the default's warning names the option."""
    free = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-crawl-v0")
    assert free.extrapolated and any("--within-fitted" in w for w in free.warnings)
    inside = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-crawl-v0",
                               within_fitted=True)
    f = advisor.load_fit("bro/h1-crawl-v0")
    utd = inside.gradient_steps / inside.train_freq
    assert f.in_domain(utd, inside.params) and not inside.extrapolated
    assert inside.predicted_data <= 5e5 and inside.predicted_compute > free.predicted_compute
    assert any("edge of the fitted range" in w for w in inside.warnings), inside.warnings
    assert not any("--within-fitted" in w for w in inside.warnings)
    with pytest.raises(advisor.ConfigError, match="within_fitted must be True or False"):
        advisor.recommend(1e17, within_fitted="yes")


def test_within_fitted_takes_the_nearest_config_outside_where_none_inside_fits():
    """A hostile tester's: compute 2.7e14 and data 1e7 on bro/dog-stand, within_fitted. No
    rounded config inside the fitted ranges fits the compute budget; the answer was utd 1/3 and
    width 128 (2.3e5 params, 0.9 log units under the fitted 5.5e5 and 1.1 under utd 1), called
    'just outside', where utd 1 at width 192 (4.4e5) fits. Now the nearest that fits."""
    f = advisor.load_fit("bro/dog-stand")
    rec = advisor.recommend(advisor.Budget(compute=2.7e14, data=1e7), fit="bro/dog-stand",
                            within_fitted=True)
    assert (rec.gradient_steps, rec.train_freq, rec.width) == (1, 1, 192) and rec.within_budget
    assert f.model.domain.contains(rec.utd, rec.params) == (True, False)
    assert any("just outside the fitted range" in w for w in rec.warnings)


def test_within_fitted_from_the_command_line():
    from click.testing import CliRunner

    from advisor.cli import main

    res = CliRunner().invoke(main, ["recommend", "--data", "5e5", "--within-fitted"])
    assert res.exit_code == 0, res.output
    assert "utd                1/1 = 1" in res.stdout and "extrapolated       no" in res.stdout


@pytest.mark.parametrize("fit, budget, target, back", [
    ("bro/hopper-hop", dict(total=1.0), None, lambda x: dict(total=x)),
    ("bro/humanoid-stand", dict(compute=1.0), None, lambda x: dict(compute=x)),
    ("bro/walker-run", dict(compute=1.0, data=1e6), 540.0, lambda x: dict(compute=x, data=1e6)),
])
def test_a_needed_budget_typed_back_as_printed_is_enough(fit, budget, target, back):
    """'needs at least X' was the unrounded optimum's cost: typed back, X gave a rounded
    configuration over budget (48 of 72 total budgets, a hostile tester). X is now searched up
    from it until the rounded configuration fits; the lowest target's hint as well."""
    with pytest.raises(InfeasibleBudgetError) as err:
        advisor.recommend(advisor.Budget(**budget), fit=fit, target=target)
    needs = re.findall(r"needs at least ([0-9.e+]+) FLOPs", str(err.value))
    assert needs
    x = float(needs[0])
    rec = advisor.recommend(advisor.Budget(**back(x)), fit=fit, target=target)
    assert rec.within_budget, rec.warnings
    if len(needs) > 1:  # "the lowest target T needs at least Y FLOPs"
        low = float(re.search(r"the lowest target ([0-9.]+)", str(err.value)).group(1))
        assert advisor.recommend(advisor.Budget(**back(float(needs[1]))), fit=fit,
                                 target=low).within_budget



def test_an_infeasible_budgets_hint_names_the_least_demanding_target():
    """Where the cost does not rise with the target (returns not monotone in model size), the
    hint named the lowest target although a higher one needs less (a tester, session 23):
    it now names the one that needs least, and the budget it prints reaches that target."""
    with pytest.raises(InfeasibleBudgetError) as err:
        advisor.recommend(advisor.Budget(data=10), fit="bro/hopper-hop")
    m = re.search(r"target ([0-9.]+), the least demanding, needs more than ([0-9.e+]+) env",
                  str(err.value))
    assert m, str(err.value)
    t, x = float(m.group(1)), float(m.group(2))
    f = advisor.load_fit("bro/hopper-hop")
    assert f.target_min < t < f.target_max
    assert advisor.recommend(advisor.Budget(data=1.01 * x), fit=f, target=t).within_budget
    with pytest.raises(InfeasibleBudgetError):  # the lowest target needs more than that
        advisor.recommend(advisor.Budget(data=1.01 * x), fit=f, target=f.target_min)
    # On stick-pull the top target needs the least compute: asked about it, no second
    # sentence about it; asked about a lower one, the hint points up, and its figure suffices.
    with pytest.raises(InfeasibleBudgetError) as err:
        advisor.recommend(advisor.Budget(compute=1), fit="bro/stick-pull-v2")
    assert str(err.value).count("needs at least") == 1, str(err.value)
    with pytest.raises(InfeasibleBudgetError) as err:
        advisor.recommend(advisor.Budget(compute=1), fit="bro/stick-pull-v2", target=0.5)
    m = re.search(r"target ([0-9.]+), the least demanding, needs at least ([0-9.e+]+) FLOPs",
                  str(err.value))
    assert m, str(err.value)
    assert advisor.recommend(advisor.Budget(compute=float(m.group(2))), fit="bro/stick-pull-v2",
                             target=float(m.group(1))).within_budget


def _near_inside(f, rec, budget, s, n):
    """Which configurations (utd s, params n: arrays) are in near_optimal's set."""
    d = laws.data_to_target(s, n, *f.coefficients(rec.optimum.target))
    c = f.compute_per_update_param * s * n * d
    opt, most = rec.optimum, 1 + rec.near_optimal.tolerance
    keep = not rec.near_optimal.over_budget  # within every limit of the budget
    compute = budget.compute if budget.compute is not None and keep else np.inf
    total = budget.total if budget.total is not None and keep else np.inf
    return {"data": (d <= most * opt.data) & (c <= (budget.compute or np.inf)),
            "compute": (c <= most * opt.compute) & (d <= (budget.data or np.inf))
                       & (c <= compute),
            "total": c + rec.delta * d <= min(most * opt.total, total)}[rec.near_optimal.cost]


@pytest.mark.parametrize("fit_id", CASES)
@pytest.mark.parametrize("kind", ["compute", "data", "compute+data", "total",
                                  "compute+data, target", "total, target"])
def test_near_optimal_ranges_match_brute_force(fit_id, kind):
    """Each end of the near-optimal ranges is reached (a fine scan along the other axis, just
    inside the end, finds a configuration within 10% of the optimum's cost and the budget)
    and nothing on a dense grid of the box lies further out (0.1% in log units both ways;
    the set can end in a thin sliver that a 2-D grid misses, hence the scans). With a target
    and a budget 3% above what it needs, the set keeps to the budget (a reviewer found it
    10% over a compute budget beside a data one, and over a total one)."""
    f = advisor.load_fit(fit_id)
    least = advisor.recommend(advisor.Budget(total=1e30), fit=f, target=f.target_max).optimum
    target = None
    if kind.endswith(", target"):
        target = (f.target_min + f.target_max) / 2
        need = advisor.recommend(advisor.Budget(total=1e30), fit=f, target=target).optimum
        data = 1.5 * need.data
        cheapest = advisor.recommend(advisor.Budget(data=data), fit=f, target=target).optimum
    budget = {"compute": lambda: advisor.Budget(compute=3 * least.compute),
              "data": lambda: advisor.Budget(data=3 * least.data),
              "compute+data": lambda: advisor.Budget(compute=2 * least.compute,
                                                     data=2 * least.data),
              "total": lambda: advisor.Budget(total=2 * least.total),
              "compute+data, target": lambda: advisor.Budget(compute=1.03 * cheapest.compute,
                                                             data=data),
              "total, target": lambda: advisor.Budget(total=1.03 * need.total)}[kind]()
    rec = advisor.recommend(budget, fit=f, target=target)
    near, box = rec.near_optimal, f.trusted_box()
    assert near.cost == {"compute": "data", "total": "total"}.get(kind.split(",")[0], "compute")
    assert not (target and near.over_budget)
    assert near.utd_low <= rec.optimum.utd <= near.utd_high
    assert near.params_low <= rec.optimum.params <= near.params_high
    assert near.width_low == pytest.approx(f.width(near.params_low))
    utds = np.geomspace(box.utd_low, box.utd_high, 200_000)
    params = np.geomspace(box.params_low, box.params_high, 200_000)
    tol = 1e-3
    for end, inward in ((near.utd_low, 1), (near.utd_high, -1)):
        assert _near_inside(f, rec, budget, end * math.exp(inward * tol), params).any()
    for end, inward in ((near.params_low, 1), (near.params_high, -1)):
        assert _near_inside(f, rec, budget, utds, end * math.exp(inward * tol)).any()
    s, n = np.meshgrid(np.geomspace(box.utd_low, box.utd_high, 1500),
                       np.geomspace(box.params_low, box.params_high, 1500), indexing="ij")
    inside = _near_inside(f, rec, budget, s, n)
    assert s[inside].min() >= near.utd_low * math.exp(-tol)
    assert s[inside].max() <= near.utd_high * math.exp(tol)
    assert n[inside].min() >= near.params_low * math.exp(-tol)
    assert n[inside].max() <= near.params_high * math.exp(tol)


def test_near_optimal_names_the_ends_the_searched_range_cuts():
    """Near hopper-hop's smallest critics the set runs into the trusted box (cut there, and
    said so); with within_fitted it stays inside the fitted ranges, cut at their edge."""
    f = advisor.load_fit("bro/hopper-hop")
    rec = advisor.recommend(1e14, fit=f)
    near, box = rec.near_optimal, f.trusted_box()
    assert near.at_edge == ["params_low"] and near.params_low == pytest.approx(box.params_low)
    assert "cut at the searched range for small critics" in near.describe()
    rec = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-crawl-v0", within_fitted=True)
    near, dom = rec.near_optimal, advisor.load_fit("bro/h1-crawl-v0").model.domain
    assert near.utd_low == pytest.approx(dom.utd.low) and "utd_low" in near.at_edge
    assert dom.params.low <= near.params_low <= near.params_high <= dom.params.high
    wide = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-crawl-v0").near_optimal
    assert wide.utd_low < dom.utd.low and "utd_low" not in wide.at_edge


def test_near_optimal_is_in_every_output_format():
    from click.testing import CliRunner

    from advisor.cli import main

    run = CliRunner()
    table = run.invoke(main, ["recommend", "--compute", "1e17"]).output
    line = next(x for x in table.splitlines() if x.startswith("near-optimal"))
    assert re.search(r"utd [\d.]+-[\d.]+, width \d+-\d+ .*at most 10% more data", line)
    import json

    out = json.loads(run.invoke(main, ["recommend", "--compute", "1e17", "--format", "json"]
                                ).stdout)
    assert out["near_optimal"]["cost"] == "data" and out["near_optimal"]["utd_low"] < out["utd"]
    zoo = run.invoke(main, ["recommend", "--compute", "1e17", "--format", "zoo", "--env",
                            "Hopper-v5"]).output
    assert "# near-optimal: utd " in zoo


@pytest.mark.parametrize("fit_id", ["bro/h1-crawl-v0", "bro/dog-run", "simbav2/h1-stand-v0"])
def test_a_fixed_utd_or_width_solves_the_problem_over_the_other(fit_id):
    """recommend(utd=...) keeps that utd and finds the least data within the compute budget
    over critic sizes (brute force over a dense grid of them), and width=... the reverse."""
    f = advisor.load_fit(fit_id)
    box = f.trusted_box()
    budget = 3 * advisor.recommend(advisor.Budget(total=1e30), fit=f,
                                   target=f.target_max).optimum.compute
    target = f.target_max
    rec = advisor.recommend(budget, fit=f, utd="3/2")
    assert (rec.gradient_steps, rec.train_freq, rec.optimum.utd) == (3, 2, 1.5)
    n = np.geomspace(box.params_low, box.params_high, 200_000)
    d = f.data_to_target(1.5, n, target)
    brute = d[f.compute(1.5, n, d) <= budget].min()
    assert brute * (1 - 1e-5) <= rec.optimum.data <= brute * (1 + 1e-4)
    assert rec.within_budget and rec.width % f.model.architecture.width_multiple == 0
    assert rec.near_optimal.utd_low == rec.near_optimal.utd_high == 1.5
    assert "utd 1.5 (fixed)" in rec.near_optimal.describe()
    width = int(rec.width)
    rec = advisor.recommend(budget, fit=f, width=width)
    assert rec.width == width and rec.optimum.params == pytest.approx(f.params(width))
    u = np.geomspace(box.utd_low, box.utd_high, 200_000)
    d = f.data_to_target(u, f.params(width), target)
    brute = d[f.compute(u, f.params(width), d) <= budget].min()
    assert brute * (1 - 1e-5) <= rec.optimum.data <= brute * (1 + 1e-4)
    both = advisor.recommend(advisor.Budget(data=10 * f.model.domain.horizon), fit=f,
                             utd=1, width=width)
    assert (both.utd, both.width) == (1, width) and both.near_optimal is None
    assert both.predicted_data == pytest.approx(f.data_to_target(1, f.params(width), target))


def test_a_fixed_utd_is_named_where_the_budget_falls_short_and_the_need_is_enough():
    with pytest.raises(InfeasibleBudgetError, match=r"on bro/h1-crawl-v0 at utd 1: it needs at "
                       r"least ([\d.e+]+) FLOPs") as err:
        advisor.recommend(1e13, utd=1)
    need = float(re.search(r"needs at least ([\d.e+]+) FLOPs", str(err.value)).group(1))
    assert advisor.recommend(need, utd=1).within_budget
    with pytest.raises(InfeasibleBudgetError, match="at utd 3/2 and width 512: "):
        advisor.recommend(advisor.Budget(data=1e4), utd=1.5, width=512)


@pytest.mark.parametrize("kw, message", [
    (dict(utd="1/3x"), "utd must be a positive number"), (dict(utd=0), "utd must be"),
    (dict(utd=float("nan")), "utd must be"), (dict(utd="1/0"), "utd must be"),
    (dict(utd=True), "utd must be"), (dict(utd=0.3333), r"\(1/3\?\)"),
    (dict(utd=100), r"utd 100 is outside the trusted range of bro/h1-crawl-v0 \(0.25-32\)"),
    (dict(utd=0.5, within_fitted=True), "outside the fitted range"),
    (dict(width=0), "width must be a whole number"), (dict(width=64.5), "width must be"),
    (dict(width=10**6), "width 1000000 .* is outside the trusted range")])
def test_a_fixed_utd_or_width_that_cannot_be_used_is_a_one_line_config_error(kw, message):
    with pytest.raises(advisor.errors.ConfigError, match=message) as err:
        advisor.recommend(1e17, **kw)
    assert "\n" not in str(err.value)


def test_fixed_utd_and_width_from_the_command_line():
    from click.testing import CliRunner

    from advisor.cli import main

    run = CliRunner()
    out = run.invoke(main, ["recommend", "--compute", "1e17", "--utd", "1/2", "--width", "4096"])
    assert out.exit_code == 0 and "1/2 = 0.5" in out.output and "width              4096" in (
        out.output)
    bad = run.invoke(main, ["recommend", "--compute", "1e17", "--utd", "half"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "utd must be" in bad.output


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(kind=st.sampled_from(["compute", "data", "both", "total"]), x=factors, y=factors,
       steps=st.integers(1, 16), freq=st.integers(1, 4), width=st.sampled_from(
           [None, 64, 256, 1000, 4096]), fit_id=st.sampled_from(CASES))
def test_random_budgets_with_a_fixed_utd_or_width_keep_it_or_raise_one_error(
        kind, x, y, steps, freq, width, fit_id):
    least = _least(fit_id)
    kw = {"compute": dict(compute=x * least["compute"]), "data": dict(data=x * least["data"]),
          "both": dict(compute=x * least["compute"], data=y * least["data"]),
          "total": dict(total=x * least["total"])}[kind]
    try:
        rec = advisor.recommend(advisor.Budget(**kw), fit=fit_id, utd=f"{steps}/{freq}",
                                width=width)
    except AdvisorError as exc:
        assert "\n" not in str(exc)
        return
    g = math.gcd(steps, freq)
    assert (rec.gradient_steps, rec.train_freq) == (steps // g, freq // g)
    assert width is None or rec.width == width
    near = rec.near_optimal
    if width is not None:  # both fixed: nothing is left to vary
        assert near is None
    else:
        assert near.utd_low == near.utd_high == rec.utd and near.fixed == ["utd"]
        assert near.params_low <= rec.optimum.params <= near.params_high
    if rec.within_budget:
        for value, limit in ((rec.predicted_compute, kw.get("compute")),
                             (rec.predicted_data, kw.get("data")),
                             (rec.predicted_total, kw.get("total"))):
            assert limit is None or value <= limit * (1 + 1e-6)


def test_export_with_a_fixed_utd_keeps_it_in_every_entry():
    import json

    from click.testing import CliRunner

    from advisor.cli import main

    run = CliRunner()
    out = run.invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e16,1e17", "--utd", "1",
                            "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)["budgets"]
    assert [r["hyperparameters"]["gradient_steps"] / r["hyperparameters"]["train_freq"]
            for r in rows] == [1, 1]
    assert rows[1]["width"] == advisor.recommend(1e17, utd=1).width
    bad = run.invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e16", "--width", "9"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    assert "width 9 (" in bad.output and "is outside the trusted range" in bad.output


@pytest.mark.parametrize("fit_id, budget, kw", [
    ("bro/cheetah-run", advisor.Budget(data=5e5), dict(utd=1)),
    ("bro/finger-turn", advisor.Budget(data=316000), dict(within_fitted=True)),
    ("bro/h1-crawl-v0", advisor.Budget(data=5e5), dict(utd=2)),
    ("bro/dog-run", advisor.Budget(data=3e6), dict(utd="1/2")),
])
def test_near_optimal_survives_an_optimum_a_hair_past_its_limit(fit_id, budget, kw):
    """A hostile tester's: where the optimum's data sat a hair over the data budget
    (500000.0000000004) or its utd over the box's edge, the set shrank to the optimum alone
    ('width 3072 (fixed)', which no one fixed), in 88 of 305 fixed-utd data budgets."""
    f = advisor.load_fit(fit_id)
    rec = advisor.recommend(budget, fit=f, **kw)
    near = rec.near_optimal
    box = f.trusted_box(kw.get("within_fitted", False))
    n = np.geomspace(box.params_low, box.params_high, 400_000)
    # every width near-optimal at the optimum's utd, by a fine scan
    inside = _near_inside(f, rec, budget, np.full_like(n, rec.optimum.utd), n)
    assert inside.any() and near.params_low < near.params_high
    assert near.params_low <= n[inside].min() * 1.001
    assert near.params_high >= n[inside].max() / 1.001
    assert "(fixed)" not in near.describe().split("width ", 1)[1].split("  ")[0]


def test_a_fixed_utd_says_what_it_costs_against_the_best_without_it():
    """A hostile tester's: recommend(1e17, utd=32) needs far more data than the free optimum,
    and nothing said so; 'optimum' and 'near-optimal' spoke of the best at utd 32."""
    free = advisor.recommend(1e17).optimum
    rec = advisor.recommend(1e17, utd=32)
    cost = rec.warnings[0]
    pct = 100 * (rec.optimum.data / free.data - 1)
    assert cost.startswith(f"fixing utd 32 costs {pct:.2g}% more data than the best "
                           f"configuration without it (utd {free.utd:.3g}, width "
                           f"{free.width:.0f}: {free.data:.4g} env steps)")
    assert "than the best at the fixed utd" in rec.near_optimal.describe()
    top = advisor.recommend(advisor.Budget(total=4e17))
    rec = advisor.recommend(advisor.Budget(total=4e17), utd="14/3")
    assert rec.warnings[0] == (f"fixing utd 14/3 reaches target {rec.optimum.target:.4g} where "
                               f"the best configuration without it (utd {top.optimum.utd:.3g}, "
                               f"width {top.optimum.width:.0f}) reaches {top.optimum.target:.4g}")
    assert "over the budget" in top.near_optimal.describe()
    assert not any(w.startswith("fixing") for w in advisor.recommend(1e17).warnings)
    far = advisor.recommend(advisor.Budget(compute=1e12), fit="bro-torch/Pendulum-v1",
                            utd="3/7", target=-600)  # a hostile tester's '6.8e+02% more'
    assert re.match(r"fixing utd 3/7 costs \d+% more data than", far.warnings[0]), far.warnings


def test_a_budget_past_the_top_target_is_not_said_to_be_spent():
    """A new user's: total 1e17 on bro/humanoid-stand reaches the top threshold, 850, with 35%
    of the budget, and the near-optimal line said its configurations go 'up to 10% over the
    budget'. Now a warning says what share it takes and the line does not."""
    fit = advisor.load_fit("bro/humanoid-stand")
    rec = advisor.recommend(advisor.Budget(total=1e17, delta=5e10), fit=fit)
    assert rec.target == fit.target_max and rec.predicted_total < 0.5e17
    assert not rec.near_optimal.over_budget
    assert "over the budget" not in rec.near_optimal.describe()
    share = f"{100 * rec.optimum.total / 1e17:.2g}% of the total ({rec.optimum.total:.4g} of"
    assert [w for w in rec.warnings if w.startswith(
        f"the fit's top target, 850, takes only {share} 1e+17 FLOPs)")]
    both = advisor.recommend(advisor.Budget(compute=3e16, data=8e5))  # data binds, not compute
    said = [w for w in both.warnings if w.startswith("the fit's top target")]
    assert len(said) == 1 and "of the compute" in said[0] and "of the data" not in said[0]
    spent = advisor.recommend(advisor.Budget(total=3e16, delta=5e10), fit=fit)
    assert spent.target < fit.target_max and spent.near_optimal.over_budget
    assert not [w for w in spent.warnings if w.startswith("the fit's top target")]
    # A second tester's: at the top target with under 10% to spare, the neighbours still go
    # over the budget, and what is left is rounding, not room: no warning either.
    for total in (3.49e16, 3.6e16):
        tight = advisor.recommend(advisor.Budget(total=total, delta=5e10), fit=fit)
        assert tight.target == fit.target_max and tight.near_optimal.over_budget
        assert not [w for w in tight.warnings if w.startswith("the fit's top target")]
    tiny = advisor.recommend(advisor.Budget(compute=1e20, data=1e6))  # no e-notation
    assert [w for w in tiny.warnings if w.startswith(
        "the fit's top target, 780, takes only <0.01% of the compute (")]
    from click.testing import CliRunner

    from advisor.cli import main

    res = CliRunner().invoke(main, ["recommend", "--fit", "bro/humanoid-stand", "--total",
                                    "1e17", "--delta", "5e10"])
    assert res.exit_code == 0 and "warning: the fit's top target, 850, takes only" in res.output


def test_a_utd_of_any_numeric_type_is_read_or_refused_in_one_line():
    """A hostile tester's: numpy integers overflowed, numpy floats raised TypeError, Decimal
    was refused, '3/' read as 3, and 10**400 was printed whole in the error."""
    from decimal import Decimal

    for utd in (np.int64(2), np.float32(1.5), Decimal("1.5"), " 3 / 2 ", "2/4"):
        rec = advisor.recommend(1e17, utd=utd)
        assert rec.utd == float(Decimal(str(utd).replace(" ", "")) if "/" not in str(utd)
                                else {" 3 / 2 ": 1.5, "2/4": 0.5}[utd])
    for utd in ("3/", "/2", Decimal("NaN"), 10**400, "1e400", np.float64("inf")):
        with pytest.raises(advisor.errors.ConfigError, match="utd must be") as err:
            advisor.recommend(1e17, utd=utd)
        assert len(str(err.value)) < 250


def test_recommend_warns_where_the_fits_own_record_says_its_interval_misses():
    """A reviewer's: the Quickstart's answer (a critic 2.3x past bro/h1-crawl-v0's largest)
    printed an "80% interval" where that fit's interval, its largest params column left out,
    covered 41% of the runs; nothing said so. The warning names the recorded coverage of the
    part of the grid the configuration sits in, under LOW_COVERAGE only."""
    from advisor.recommend import LOW_COVERAGE

    rec = advisor.recommend(1e17)
    cov = advisor.load_fit("bro/h1-crawl-v0").model.prediction_interval.coverage
    assert rec.params > advisor.load_fit("bro/h1-crawl-v0").model.domain.params.high
    assert cov["largest_params_column_out"] < LOW_COVERAGE
    (line,) = [w for w in rec.warnings if "over-confident" in w]
    assert f"{100 * cov['largest_params_column_out']:.0f}% of the runs at its largest critic " \
           "size, left out of it" in line
    # inside the runs, where this fit's record holds: no such warning
    inside = advisor.recommend(1e17, within_fitted=True)
    assert not any("over-confident" in w for w in inside.warnings)
    # an interior critic size of a fit whose interior columns are covered 55%
    rec = advisor.recommend(3e15, fit="bro/humanoid-stand")
    d = advisor.load_fit("bro/humanoid-stand").model.domain
    assert d.params.low <= rec.params <= d.params.high
    assert any("of the runs at the critic sizes between its smallest and largest" in w
               for w in rec.warnings)


def test_a_prediction_its_own_runs_contradict_is_warned():
    """bro/walker-run's runs at utd 2 and its smallest critic (5.5e5 params) got no further
    than 710 of its top target 730 in 1e6 env steps; with 7.7e5 env steps the law picks utd 2
    at 3.5e5 params, predicted to get there in 7.5e5. Since D_J falls with utd and size, runs
    no smaller that never got there in more steps than predicted contradict the prediction,
    and the answer says so; at a target between two thresholds only the one at or below it
    counts (those runs reached 710, so 720 is not contradicted)."""
    rec = advisor.recommend(advisor.Budget(data=7.7e5), fit="bro/walker-run")
    (warning,) = [w for w in rec.warnings if "contradict" in w]
    assert warning.startswith(
        "the runs contradict this prediction: bro/walker-run's runs at utd 2, params 5.5e+05 "
        "(no smaller in either, so needing no more data by the law) never reached return 730 "
        "in 1e+06 env steps (the highest of the fit's thresholds they passed: 710), against "
        f"target 730 in {rec.predicted_data:.4g} predicted here: expect more data, or take a "
        "lower target; ")
    f = advisor.load_fit("bro/walker-run")
    runs = f.model.domain.runs
    picked = f.contradicting_runs(rec.utd, rec.params, rec.target, rec.predicted_data)
    assert picked == [r for r in runs if r.utd >= rec.utd and r.params >= rec.params
                      and (r.reached is None or r.reached < rec.target)
                      and r.horizon >= rec.predicted_data] and len(picked) == 1
    # past the runs' length nothing contradicts it; nor at a target they reached, nor between
    # that threshold and the next (their runs may have got there)
    assert f.contradicting_runs(rec.utd, rec.params, rec.target, 1.1e6) == []
    assert f.contradicting_runs(rec.utd, rec.params, 710, rec.predicted_data) == []
    assert f.contradicting_runs(rec.utd, rec.params, 720, rec.predicted_data) == []
    assert f.contradicting_runs(rec.utd, rec.params, None, rec.predicted_data) == picked
    with pytest.raises(AdvisorError, match="utd"):
        f.contradicting_runs(-1, rec.params, None, 7e5)
    # at a fitted configuration: its own runs
    from advisor.recommend import _contradiction_warnings

    (own,) = _contradiction_warnings(f, 2.0, 5.5e5, 730, 7e5)
    assert own.startswith("the runs contradict this prediction: this configuration's own runs "
                          "never reached return 730 in 1e+06 env steps (the highest of the "
                          "fit's thresholds they passed: 710), against target 730 in 7e+05")
    # between two thresholds, the one below the target is what the runs never reached
    (between,) = _contradiction_warnings(f, 1.0, 5.5e5, 700, 7e5)
    assert "own runs never reached return 690 in 1e+06 env steps (the highest of the fit's " \
           "thresholds they passed: 670)" in between and "target 700 in 7e+05" in between
    assert f.threshold_below(700) == 690 and f.threshold_below(710) == 710
    assert f.threshold_below() == 730
    quick = advisor.recommend(advisor.Budget(compute=1e17))  # the Quickstart's: none of it
    assert not [w for w in quick.warnings if "contradict" in w]


def test_runs_leave_open_what_they_do_not_dominate_or_border():
    """bro/walker-run's runs short of 730 in 1e6 env steps are utd 1 and 2 at 5.5e5 params:
    they close every configuration below the next fitted utd above 2 (5) and the next fitted
    size (1.05e6), and the open rest is two boxes; runs shorter than the data, or a target every
    run reached, close nothing; a box inside the closed part is closed whole; every point of
    the open boxes is clear of contradicting runs, and every other one is below the corner."""
    from advisor.optimize import Box

    f = advisor.load_fit("bro/walker-run")
    box = f.trusted_box()
    assert f.uncontradicted_boxes(box, 730, 7e5) == [
        Box(box.utd_low, 5.0, 1.05e6, box.params_high),
        Box(5.0, box.utd_high, box.params_low, box.params_high)]
    assert f.uncontradicted_boxes(box, 730, 1.1e6) == [box]  # longer than the runs: open
    assert f.uncontradicted_boxes(box, 670, 7e5) == [box]  # they all reached 670
    # at 700 (the fit's threshold below it: 690) only utd 1 at 5.5e5 fell short (it reached
    # 670); at 730 both it and utd 2 did, and the corner (2, 1.05e6) of the first is under
    # the corner (5, 1.05e6) of the second
    assert f.uncontradicted_boxes(box, 700, 7e5) == [
        Box(box.utd_low, 2.0, 1.05e6, box.params_high),
        Box(2.0, box.utd_high, box.params_low, box.params_high)]
    inside = Box(1.0, 4.0, 1e5, 1e6)
    assert f.uncontradicted_boxes(inside, 730, 7e5) == []
    rng = np.random.default_rng(0)
    for u, n in zip(np.exp(rng.uniform(np.log(box.utd_low), np.log(box.utd_high), 400)),
                    np.exp(rng.uniform(np.log(box.params_low), np.log(box.params_high), 400))):
        open_ = any(b.utd_low <= u <= b.utd_high and b.params_low <= n <= b.params_high
                    for b in f.uncontradicted_boxes(box, 730, 7e5))
        assert open_ == (not (u < 5.0 and n < 1.05e6)), (u, n)
        if open_:
            assert not f.contradicting_runs(u, n, 730, 7e5)


def test_a_contradicted_answer_offers_the_best_configuration_clear_of_the_runs():
    """Where runs contradict the answer to a data (or compute) budget, the warning names the
    answer to the same problem among the configurations they leave open: within the budget,
    contradicted by no run, and the best of the open boxes' answers; the answer itself stays
    the law's. Where none of the open configurations fits the budget, it says so; problems
    that maximise the target are left as they are."""
    from advisor.recommend import _recommend

    f = advisor.load_fit("bro/walker-run")
    budget = advisor.Budget(data=7.7e5)
    rec = advisor.recommend(budget, fit=f)
    (warning,) = [w for w in rec.warnings if "contradict" in w]
    offer = re.search(r"; the best configuration clear of such runs \(and of the fitted step "
                      r"past each\): utd (\d+)/(\d+), width (\d+), predicted (\S+) env steps "
                      r"and (\S+) FLOPs, (\S+)x this one's compute \(clear_of_runs=True, "
                      r"--clear-of-runs, answers with it\)$", warning)
    assert offer, warning
    steps, freq, width = (int(x) for x in offer.groups()[:3])
    utd, params = steps / freq, float(f.params(width))
    data = float(f.data_to_target(utd, params, 730))
    compute = float(f.compute(utd, params, data))
    assert data <= 7.7e5 and not f.contradicting_runs(utd, params, 730, data)
    assert offer.group(4) == f"{data:.4g}" and offer.group(5) == f"{compute:.4g}"
    assert offer.group(6) == f"{compute / rec.predicted_compute:.3g}" and compute > \
        rec.predicted_compute
    answers = [_recommend(budget, f, 730, 0.8, search=False, part=part)
               for part in f.uncontradicted_boxes(f.trusted_box(), 730)]
    assert min(a.predicted_compute for a in answers if a.within_budget) == compute
    assert (steps, freq, width) == (1, 1, 384)  # utd 1 at 1.05e6 params reached 730
    # with utd fixed, the offer keeps it
    pinned = advisor.recommend(budget, fit=f, utd=2)
    (warning,) = [w for w in pinned.warnings if "contradict" in w]
    assert "; the best configuration at utd 2 clear of such runs (and of the fitted step " \
        "past each): utd 2/1, width " in warning
    # a compute budget where every open configuration needs more
    short = advisor.recommend(advisor.Budget(compute=1.143e15), fit=f)
    (warning,) = [w for w in short.warnings if "contradict" in w]
    assert warning.endswith("take a lower target; no configuration within the budget is clear "
                            "of such runs (and of the fitted step past each)")
    # the highest target within a compute and a data budget: no offer
    both = advisor.recommend(advisor.Budget(compute=1e16, data=7.7e5), fit=f)
    assert not [w for w in both.warnings if "clear of such runs" in w]


def test_clear_of_runs_answers_with_the_configuration_the_warning_offers():
    """clear_of_runs=True answers with the configuration the contradiction warning offers, a
    whole recommendation (interval, near-optimal ranges inside the open part), and says first
    what it replaced; where the runs do not contradict the answer it changes nothing; where no
    open configuration fits the budget it refuses in one line; a budget that maximises the
    target is refused, and so is anything but True or False. The CLI takes it as
    --clear-of-runs, on recommend and export."""
    import json

    from click.testing import CliRunner

    from advisor.cli import main

    f = advisor.load_fit("bro/walker-run")
    budget = advisor.Budget(data=7.7e5)
    law = advisor.recommend(budget, fit=f)
    clear = advisor.recommend(budget, fit=f, clear_of_runs=True)
    offered = re.search(r"utd (\d+)/(\d+), width (\d+), predicted",
                        next(w for w in law.warnings if "contradict" in w))
    assert (clear.gradient_steps, clear.train_freq, clear.width) == tuple(
        int(x) for x in offered.groups())
    assert clear.warnings[0] == (
        "clear_of_runs: the law's answer, utd 2/1 and width 192, is no larger in utd and size "
        "than the runs at utd 2, params 5.5e+05, which never reached return 730 in 1e+06 env "
        "steps (the highest of the fit's thresholds they passed: 710); this is the best "
        "configuration clear of such runs (and of the fitted step past each), at "
        f"{clear.predicted_compute / law.predicted_compute:.3g}x its compute")
    assert not f.contradicting_runs(clear.utd, clear.params, 730, clear.predicted_data)
    assert not f.closing_runs(clear.utd, clear.params, 730)
    assert clear.predicted_data <= 7.7e5 and clear.interval is not None
    assert clear.near_optimal.params_low >= 1.05e6 * (1 - 1e-9)
    assert "params_low" in clear.near_optimal.at_edge
    assert ("clear_of_runs holds params at the edge of the part of the trusted range that the "
            "runs short of the target leave open (params 1.05e+06-2.63e+08 there)"
            in clear.warnings)
    assert not any("contradict this prediction" in w for w in clear.warnings)
    pinned = advisor.recommend(budget, fit=f, utd=2, clear_of_runs=True)
    assert (pinned.gradient_steps, pinned.train_freq) == (2, 1) and pinned.params >= 1.05e6
    cost = 100 * (pinned.optimum.compute / clear.optimum.compute - 1)
    assert pinned.warnings[1] == (  # against the clear answer without the pin, not the law's
        f"fixing utd 2 costs {cost:.2g}% more compute than the best configuration clear of such "
        f"runs without it (utd {clear.optimum.utd:.3g}, width {clear.optimum.width:.0f}: "
        f"{clear.optimum.compute:.4g} FLOPs)")
    # a reviewer's: a pinned answer already clear was charged against the law's answer
    hop = advisor.load_fit("bro/hopper-hop")
    free = advisor.recommend(advisor.Budget(data=1e6), fit=hop, target=288.68,
                             clear_of_runs=True)
    fixed = advisor.recommend(advisor.Budget(data=1e6), fit=hop, target=288.68, utd=2,
                              clear_of_runs=True)
    assert (free.utd, free.width) == (fixed.utd, fixed.width) == (2.0, 128)
    assert not [w for w in fixed.warnings if w.startswith("fixing")], fixed.warnings
    # a reviewer's: at an open edge the nearest neighbours were few and dear; the wider
    # candidates' best is taken where it costs less (45/2 at width 384 cost 17% more)
    stick = advisor.load_fit("bro/stick-pull-v2")
    far = advisor.recommend(advisor.Budget(data=1e6), fit=stick, clear_of_runs=True)
    dear = float(stick.compute(22.5, float(stick.params(384)),
                               float(stick.data_to_target(22.5, float(stick.params(384)),
                                                          far.target))))
    assert far.within_budget and far.predicted_compute < 0.9 * dear
    plain = advisor.Budget(data=3e5)  # utd 6, width 384: clear of every run short of 730
    assert advisor.recommend(plain, fit=f, clear_of_runs=True) == advisor.recommend(plain, fit=f)
    with pytest.raises(InfeasibleBudgetError, match=r"^no configuration within the budget is "
                       r"clear of the runs short of target 730 \(and of the fitted step past "
                       r"each\): the law's answer, utd 3/2 and width 192, is no larger in utd "
                       r"and size than the runs at utd 2, params 5.5e\+05"):
        advisor.recommend(advisor.Budget(compute=1.143e15), fit=f, clear_of_runs=True)
    # a reviewer's: what is clear does not hang on the data the law's answer predicts, so
    # with less compute, where the law's answer (utd 1, width 192) is predicted past the runs'
    # 1e6 env steps and no run contradicts it, it is still no larger than a run short of 730
    # (9.5e14 FLOPs: at 1e15 the rounding now takes utd 7/6, predicted inside the runs' steps)
    less = advisor.recommend(advisor.Budget(compute=9.5e14), fit=f)
    assert less.predicted_data > 1e6 and not [w for w in less.warnings if "contradict" in w]
    with pytest.raises(InfeasibleBudgetError, match="no configuration within the budget"):
        advisor.recommend(advisor.Budget(compute=9.5e14), fit=f, clear_of_runs=True)
    with pytest.raises(AdvisorError, match="clear_of_runs .* needs a fixed target: a total "):
        advisor.recommend(advisor.Budget(total=1e17), fit=f, clear_of_runs=True)
    advisor.recommend(advisor.Budget(total=1e17), fit=f, target=700, clear_of_runs=True)
    with pytest.raises(AdvisorError, match="clear_of_runs must be True or False, got 1"):
        advisor.recommend(budget, fit=f, clear_of_runs=1)

    def cli(*args):
        return CliRunner().invoke(main, list(args))

    res = cli("recommend", "--fit", "bro/walker-run", "--data", "7.7e5", "--clear-of-runs",
              "--format", "json")
    assert res.exit_code == 0 and json.loads(res.output) == json.loads(clear.model_dump_json())
    res = cli("recommend", "--fit", "bro/walker-run", "--compute", "1.143e15", "--clear-of-runs")
    assert res.exit_code == 2 and res.output.startswith("error: no configuration within") \
        and res.output.count("\n") == 1, res.output
    res = cli("export", "bro/walker-run", "--kind", "data", "--budgets", "3e5,7.7e5",
              "--clear-of-runs", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["budgets"]
    assert [(r["utd"], r["width"]) for r in rows] == [
        (r.utd, r.width) for r in (advisor.recommend(plain, fit=f), clear)]
    res = cli("export", "bro/walker-run", "--budgets", "1e17", "--kind", "total",
              "--clear-of-runs")
    assert res.exit_code == 2 and "--clear-of-runs needs a fixed target" in res.output \
        and res.output.count("\n") == 1, res.output


def test_offers_lie_in_the_open_boxes_inside_the_searched_range():
    """A reviewer's: where no rounded neighbour inside an open box fitted the budget, the
    offer was a rounded configuration outside it (in the closed part, or below the trusted
    range, even cheaper than the answer). Every offer, over the fits with contradicted
    answers, a range of budgets and targets, pins and within_fitted, lies in an open box of
    the range searched, at the answer's predicted data, and costs no less than the answer."""
    from advisor.recommend import utd_fraction

    pattern = re.compile(r"clear of such runs \(and of the fitted step past each\): utd "
                         r"(\d+)/(\d+), width (\d+), .*, (\S+)x this one's")
    seen = 0
    for fit_id in ("bro/hopper-hop", "bro/walker-run", "bro/myo-pen-twirl-hard"):
        f = advisor.load_fit(fit_id)
        for kw in ({}, {"within_fitted": True}, {"utd": 2}):
            for budget, target in [(advisor.Budget(data=d), None)
                                   for d in (4e5, 7e5, 9.5e5, 1e6)] + [
                    (advisor.Budget(compute=c), t) for c in (3e14, 5.62e14, 1.47e15, 1e16)
                    for t in (None, f.thresholds[-3])]:
                try:
                    rec = advisor.recommend(budget, fit=f, target=target, **kw)
                except AdvisorError:
                    continue
                offer = [m for w in rec.warnings if (m := pattern.search(w))]
                if not offer:
                    continue
                steps, freq, width = (int(x) for x in offer[0].groups()[:3])
                utd, params = steps / freq, float(f.params(width))
                box = f.trusted_box(kw.get("within_fitted", False))
                if "utd" in kw:
                    u = utd_fraction(kw["utd"])
                    assert (steps, freq) == u
                parts = f.uncontradicted_boxes(box, rec.target)
                assert any(p.utd_low * (1 - 1e-9) <= utd <= p.utd_high * (1 + 1e-9)
                           and p.params_low * (1 - 1e-9) <= params <= p.params_high * (1 + 1e-9)
                           for p in parts), (fit_id, budget, target, kw, offer[0].group(0))
                assert float(offer[0].group(4)) >= 1 - 1e-3
                seen += 1
    assert seen >= 10


def test_what_is_clear_of_the_runs_does_not_move_with_the_budget():
    """A reviewer's: clear_of_runs once stepped in only where runs contradicted the law's
    answer, so an answer just past a short run came back as it was for one data budget, and a
    larger budget, whose answer was contradicted, cost 2.2x the compute (4.7x with a width
    fixed). What is clear is now the same for every budget (Fit.closing_runs), so more data
    never costs more compute; closing_runs and contradicting_runs take data 0 (every run, as
    long as it ran) and refuse a negative one."""
    for fit_id, target, kw in (("bro/myo-pen-twirl-hard", 0.704, {}),
                               ("bro/stick-pull-v2", 0.8347, {"width": 256}),
                               ("bro/walker-run", None, {})):
        f = advisor.load_fit(fit_id)
        least = math.inf
        for d in np.geomspace(3e5, 2e6, 16):
            try:
                rec = advisor.recommend(advisor.Budget(data=float(d)), fit=f, target=target,
                                        clear_of_runs=True, **kw)
            except InfeasibleBudgetError:
                continue
            assert not f.closing_runs(rec.utd, rec.params, rec.target), (fit_id, d)
            assert rec.predicted_compute <= least * (1 + 1e-9), (fit_id, d)
            least = rec.predicted_compute
        assert math.isfinite(least)
    f = advisor.load_fit("bro/walker-run")
    (own,) = f.contradicting_runs(2, 5.5e5, 730)  # data 0: the default
    assert (own.utd, own.params, own.reached) == (2.0, 5.5e5, 710.0)
    assert f.closing_runs(3, 6e5, 730) == [own]  # within a fitted step past it (utd 5, 1.05e6)
    assert f.closing_runs(5, 6e5, 730) == [] and f.closing_runs(3, 1.05e6, 730) == []
    assert f.closing_runs(3, 6e5, 730, data=1.1e6) == []  # longer than the runs
    for bad in (-1.0, math.nan, "7e5", True):
        with pytest.raises(AdvisorError, match="data must be a finite number of env steps, 0 "
                                               "or more"):
            f.closing_runs(3, 6e5, 730, data=bad)


@pytest.mark.parametrize("batch", [100, 10, 1000])
def test_a_fit_of_one_batch_size_recommends_that_one_exactly(tmp_path, batch):
    """A hostile round: a fit whose runs all used batch 100 recommended 96 (B~ rounded to a
    multiple of 16), while its warning said it recommends 100 and data_to_target refused 96."""
    from advisor.fitfile import BatchSizeLaw, dump_fit_file

    model = advisor.load_fit("bro/dog-trot").model
    assert model.batch_size.kind == "fixed"
    path = tmp_path / "fixed.json"
    path.write_text(dump_fit_file(model.model_copy(update=dict(
        id="test/fixed", batch_size=BatchSizeLaw(kind="fixed", source="fixed", a_b=batch)))))
    rec = advisor.recommend(advisor.Budget(compute=1e16), fit=str(path))
    assert rec.batch_size == batch and rec.optimum.batch_size == batch
    f = advisor.load_fit(str(path))
    assert f.data_to_target(rec.utd, rec.params, rec.target, batch_size=rec.batch_size) == (
        pytest.approx(rec.predicted_data))


def test_laws_that_cross_far_from_the_runs_are_named():
    """A hostile round: far below dog-trot's runs (utd 0.25, 8e4 params) its laws said 580
    needs less data than 428, and recommend offered 580 after refusing 450 as too dear. The
    answer now says so; inside the runs they cross by at most 3% (bro-torch/Pendulum-v1) and
    no warning is given (checked on 15 compute and 13 data budgets per fit in review)."""
    rec = advisor.recommend(advisor.Budget(compute=3.5e14), fit="bro/dog-trot")
    crossed = [w for w in rec.warnings if w.startswith("the fit's laws cross here")]
    assert len(crossed) == 1 and "read the prediction as at least" in crossed[0]
    f = advisor.load_fit("bro/dog-trot")
    lower = max(float(f.data_to_target(rec.utd, rec.params, j)) for j in f.thresholds
                if j < rec.target)
    assert lower > rec.predicted_data and f"{lower:.4g}" in crossed[0]
    for fit_id in ("bro/dog-trot", "bro/h1-crawl-v0", "bro-torch/Pendulum-v1"):
        f = advisor.load_fit(fit_id)
        for budget in (advisor.Budget(compute=1e15), advisor.Budget(data=3e5),
                       advisor.Budget(compute=1e16)):
            for target in (None, float(f.thresholds[len(f.thresholds) // 2])):
                try:
                    rec = advisor.recommend(budget, fit=fit_id, within_fitted=True,
                                            target=target)
                except advisor.AdvisorError:
                    continue
                assert not any("laws cross" in w for w in rec.warnings), (fit_id, rec.warnings)
    # Pendulum-v1's laws cross by 3% at its largest run at target -591.6 (a reviewer's):
    # under the 5% said
    rec = advisor.recommend(advisor.Budget(compute=1e16), fit="bro-torch/Pendulum-v1",
                            within_fitted=True, target=-591.6)
    assert not any("laws cross" in w for w in rec.warnings), rec.warnings


def test_a_rounding_that_costs_over_the_tolerance_looks_further_and_says_what_it_costs():
    """A new user's few-shot Pendulum-v1 fit (tests/data, from a smoke calibration with
    --prior dmc): at 1,000 env steps its optimum utd 0.369 was rounded to 1/2 at 1.36x the
    optimum's compute, where 3/8 (train_freq 8, past the neighbours) costs 1.10x; and a rounding
    dearer than the near-optimal tolerance is said (cheetah-run's optimum sits on the trusted
    range's edge, width 67, and the nearest width inside is 128: 2.6x the compute)."""
    from pathlib import Path

    from advisor.recommend import _pct

    path = Path(__file__).parent / "data" / "pendulum-smoke-dmc.json"
    rec = advisor.recommend(advisor.Budget(data=1000), fit=str(path))
    assert (rec.gradient_steps, rec.train_freq) == (3, 8) and rec.within_budget
    assert rec.predicted_compute < 1.11 * rec.optimum.compute
    rec = advisor.recommend(advisor.Budget(data=3.16e6), fit="bro/cheetah-run")
    said = [w for w in rec.warnings if w.startswith("rounding costs ")]
    ratio = rec.predicted_compute / rec.optimum.compute
    assert ratio > 1.1 and len(said) == 1 and f"{_pct(100 * (ratio - 1))}% more compute" in said[0]
    rec = advisor.recommend(advisor.Budget(compute=1e17), fit="bro/h1-crawl-v0")
    assert not any(w.startswith("rounding costs ") for w in rec.warnings)


def test_a_fitfile_is_a_fit_and_huge_wrong_values_are_not_repeated_whole():
    """A hostile round: recommend(1e17, fit=fit.model) (a FitFile, what parse_fit_file gives)
    was refused in a 119,410-character line; a million-character target, level or
    within_fitted was repeated whole in its error."""
    f = advisor.load_fit("bro/h1-crawl-v0")
    assert advisor.recommend(1e17, fit=f.model).width == advisor.recommend(1e17, fit=f).width
    for kw in (dict(target="x" * 10**6), dict(level="y" * 10**6),
               dict(within_fitted="z" * 10**6), dict(fit=object())):
        with pytest.raises(advisor.AdvisorError) as err:
            advisor.recommend(1e17, **{"fit": f, **kw})
        msg = str(err.value)
        assert len(msg) < 200 and ("..." in msg or "fit" in kw), msg[:300]


def test_a_fitfile_is_validated_once_not_at_every_call():
    """recommend(..., fit=model) in a loop validated the FitFile each call (120 ms); it is
    frozen, so the first call's Fit serves the next ones, and a new FitFile gets its own."""
    from advisor.fitfile import dump_fit_file, parse_fit_file
    from advisor.registry import load_fit

    model = advisor.load_fit("bro/h1-crawl-v0").model
    assert load_fit(model) is load_fit(model)
    copy = parse_fit_file(dump_fit_file(model))
    assert load_fit(copy) is not load_fit(model) and load_fit(copy).id == model.id
