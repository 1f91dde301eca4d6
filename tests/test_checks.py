"""calibration.checks: the verdict `advisor calibrate` prints and records on the fit it writes."""

import advisor
from calibration.checks import fit_checks


def _by_name(checks):
    return {c.name: c for c in checks}


def test_a_shipped_fit_passes_every_check():
    checks = _by_name(fit_checks(advisor.load_fit("simbav2/h1-crawl-v0").model,
                                 batch_sizes=[128, 256, 512, 1024]))
    assert set(checks) == {"exponents", "batch size", "baseline"}
    assert all(c.ok for c in checks.values()), checks


def test_an_exponent_at_its_bound_fails():
    model = advisor.load_fit("bro/h1-crawl-v0").model
    laws = [law.model_copy(update={"beta": 8.0}) if i == 3 else law
            for i, law in enumerate(model.data_to_target.laws)]
    bad = model.model_copy(update={"data_to_target": model.data_to_target.model_copy(
        update={"laws": laws})})
    check = _by_name(fit_checks(bad))["exponents"]
    assert not check.ok and "beta 8 at its upper bound 8" in check.message


def test_a_batch_law_far_from_the_runs_fails():
    """The smoke fit on Hopper the issue quotes: b_B = 1.7e49, beta_B = 14."""
    model = advisor.load_fit("simbav2/h1-crawl-v0").model
    cliff = model.model_copy(update={"batch_size": model.batch_size.model_copy(
        update={"b_b": 1.7e49, "beta_b": 14.0})})
    check = _by_name(fit_checks(cliff, batch_sizes=[128, 256]))["batch size"]
    assert not check.ok and "beyond 4x the runs' batch sizes 128-256" in check.message
    # The same law passes where its batch sizes stay near the runs'.
    assert _by_name(fit_checks(model, batch_sizes=[256, 512]))["batch size"].ok


def test_a_law_no_better_than_log_linear_fails_the_baseline_check():
    check = _by_name(fit_checks(advisor.load_fit("bro/hopper-hop").model))["baseline"]
    assert not check.ok and "not below the log-linear baseline's 23.9%" in check.message


def test_a_free_fit_without_a_baseline_fails_the_baseline_check():
    """A hostile tester's: 5 configs gave a LOCO error of 207% and no baseline (too few
    configs at any target), and the check was left out without a word."""
    model = advisor.load_fit("bro-torch/Pendulum-v1").model
    assert model.provenance.prior is None
    none = model.model_copy(update={"goodness_of_fit": model.goodness_of_fit.model_copy(
        update={"baseline_loglinear_leave_one_config_out": None,
                "leave_one_config_out": 2.074, "n_configs": 5})})
    check = _by_name(fit_checks(none))["baseline"]
    assert not check.ok and check.message.startswith(
        "no log-linear baseline to compare with: at no target do 5 of the 5 configs reach it")
    assert "the law's 207.4% error is not shown to beat it" in check.message
    few = advisor.load_fit("bro-torch/Hopper-v5").model  # few-shot: its family's exponents
    assert few.provenance.prior is not None
    few = few.model_copy(update={"goodness_of_fit": few.goodness_of_fit.model_copy(
        update={"baseline_loglinear_leave_one_config_out": None})})
    assert "baseline" not in _by_name(fit_checks(few))


def test_recommend_warns_on_a_fit_that_failed_its_checks(tmp_path):
    """Fit files record each failed check in their notes; recommend repeats them."""
    from advisor.fitfile import CHECKS_FAILED_NOTE, write_fit_file

    model = advisor.load_fit("simbav2/h1-crawl-v0").model
    note = f"{CHECKS_FAILED_NOTE}: exponents: beta 8 at its upper bound 8 (20 of 20 targets)"
    bad = model.model_copy(update={"provenance": model.provenance.model_copy(
        update={"notes": (*model.provenance.notes, note)})})
    path = write_fit_file(bad, tmp_path / "bad.json")
    rec = advisor.recommend(advisor.Budget(data=1e6), fit=str(path))
    assert any(CHECKS_FAILED_NOTE in w and "beta 8" in w for w in rec.warnings), rec.warnings
    rec = advisor.recommend(advisor.Budget(data=1e6), fit="simbav2/h1-crawl-v0")
    assert not any(CHECKS_FAILED_NOTE in w for w in rec.warnings)


def test_a_failed_baseline_check_is_warned_once(tmp_path):
    from advisor.fitfile import CHECKS_FAILED_NOTE, write_fit_file

    model = advisor.load_fit("bro/hopper-hop").model  # fails the baseline check
    note = (f"{CHECKS_FAILED_NOTE}: baseline: leave-one-config-out error 25.4% not below the "
            "log-linear baseline's 23.9%")
    noted = model.model_copy(update={"provenance": model.provenance.model_copy(
        update={"notes": (*model.provenance.notes, note)})})
    rec = advisor.recommend(advisor.Budget(data=2e6), fit=str(write_fit_file(
        noted, tmp_path / "hop.json")))
    assert sum("log-linear" in w for w in rec.warnings) == 1, rec.warnings
    shipped = advisor.recommend(advisor.Budget(data=2e6), fit="bro/hopper-hop")
    assert sum("log-linear" in w for w in shipped.warnings) == 1, shipped.warnings


def test_fit_files_record_their_checks():
    """Every fit made by this project carries the verdict (calibration.build.make_fit_file)."""
    from advisor.fitfile import CHECKS_FAILED_NOTE

    notes = advisor.load_fit("bro/hopper-hop").model.provenance.notes
    assert f"{CHECKS_FAILED_NOTE}: baseline: leave-one-config-out error 25.4%" in " ".join(notes)
    notes = advisor.load_fit("bro/h1-crawl-v0").model.provenance.notes
    assert any(n.startswith("fit checks passed: exponents, batch size, baseline") for n in
               notes), notes


def test_a_step_of_a_batch_law_fails_even_near_the_runs_batch_sizes():
    """Smoke fits on Pendulum-v1 and InvertedPendulum-v5 (a hostile tester's): beta_B 14.4-14.9,
    below the bound 15, with B~ 31-60 at the domain's corners (near the runs' 32 and 64): a step
    between two widths, which the corner check alone let through."""
    model = advisor.load_fit("simbav2/h1-crawl-v0").model
    dom = model.domain
    step = model.model_copy(update={"batch_size": model.batch_size.model_copy(
        update={"a_b": 60.0, "alpha_b": 1e-23, "b_b": dom.params.low * 1.5, "beta_b": 14.4})})
    check = _by_name(fit_checks(step, batch_sizes=[32, 64]))["batch size"]
    assert not check.ok and "beta_B 14.4 above 3" in check.message, check.message
    assert "beyond 4x" not in check.message  # the corner check alone passed it
    # At the bound (15) the message says what the exponent means as the other case does.
    at_bound = step.model_copy(update={"batch_size": step.batch_size.model_copy(
        update={"beta_b": 15.0})})
    check = _by_name(fit_checks(at_bound, batch_sizes=[32, 64]))["batch size"]
    assert "beta_B 15 at its upper bound 15 (B~ moves at least 3.28e+04x per doubling" in (
        check.message), check.message


def test_a_few_shot_fit_whose_family_interval_misses_its_own_runs_fails():
    """A 3-config few-shot fit (a hostile tester's MountainCarContinuous-v0, LOCO error 563%):
    its interval is the family's alone, and covered none of its own held-out configs."""
    from calibration.checks import MIN_OWN_COVERAGE

    model = advisor.load_fit("bro-torch/Hopper-v5").model  # few-shot, 9 configs
    assert "interval" not in _by_name(fit_checks(model))  # its own residuals are in its interval

    def few(coverage):
        pi = model.prediction_interval
        return model.model_copy(update={
            "goodness_of_fit": model.goodness_of_fit.model_copy(update={"n_configs": 3}),
            "prediction_interval": pi.model_copy(update={"coverage": {
                **pi.coverage, "leave_one_config_out": coverage}})})

    check = _by_name(fit_checks(few(0.0)))["interval"]
    assert not check.ok and "covers 0% of the D_J of the fit's own 3 configs" in check.message
    assert _by_name(fit_checks(few(MIN_OWN_COVERAGE)))["interval"].ok


def test_laws_that_cross_between_thresholds_fail_the_targets_check():
    """A hostile tester's: a fit whose D_J falls with the target says a run reaches a higher
    return with less data than a lower one it passes first. Every shipped fit rises (within
    1% on bro-torch/Pendulum-v1) and shows no such check; one with two laws swapped fails."""
    for fit_id in advisor.list_fits():
        assert "targets" not in _by_name(fit_checks(advisor.load_fit(fit_id).model)), fit_id
    model = advisor.load_fit("bro/h1-crawl-v0").model
    laws = list(model.data_to_target.laws)
    top, low = laws[-1], laws[2]
    laws[2] = top.model_copy(update={"target": low.target})
    laws[-1] = low.model_copy(update={"target": top.target})
    crossed = model.model_copy(update={"data_to_target": model.data_to_target.model_copy(
        update={"laws": laws})})
    check = _by_name(fit_checks(crossed))["targets"]
    assert not check.ok and check.message.startswith(
        f"the law says target {laws[3].target:.4g} needs")
    assert f"than target {laws[2].target:.4g} at utd" in check.message
