"""Curves -> tables -> laws, on synthetic runs with known laws and on the published archives."""

import numpy as np
import pytest

from advisor import laws
from calibration.archives import ArchiveError, Run, read_runs
from calibration.batch import fit_batch_law
from calibration.curves import crossings, data_table, isotonic_curve, thresholds
from calibration.fitting import (
    REFERENCE,
    Method,
    fit_laws,
    leave_one_config_out,
    relative_errors,
)


def _coef(d_min, utd_term, params_term, alpha=0.9, beta=0.7):
    """Coefficients whose utd term is `utd_term` at utd 1 and params term `params_term` at 1e6."""
    return (d_min, utd_term ** (1 / alpha), alpha, 1e6 * params_term ** (1 / beta), beta)


TRUE = {700.0: _coef(1.0e5, 2.0e5, 1.5e5), 800.0: _coef(1.3e5, 2.6e5, 2.0e5)}


def synthetic_runs(noise=0.0, seed=0):
    """Runs whose mean return rises linearly so that D_J follows TRUE exactly at J=700, 800."""
    rng = np.random.default_rng(seed)
    steps = np.arange(1, 401) * 5_000.0
    runs = []
    for utd in (1, 2, 4, 8):
        for params in (2e5, 6e5, 2e6, 8e6, 3e7):
            d700 = laws.data_to_target(utd, params, *TRUE[700.0])
            d800 = laws.data_to_target(utd, params, *TRUE[800.0])
            slope = 100.0 / (d800 - d700)
            curve = np.minimum(700.0 + slope * (steps - d700), 900.0)
            values = curve[:, None] + noise * rng.standard_normal((len(steps), 4))
            runs.append(Run("bro", "toy", float(utd), params, 256.0, steps={"return": steps},
                            values={"return": values}))
    return runs


def test_isotonic_curve_is_monotone_and_crossing_is_first_step():
    curve = isotonic_curve(np.array([0.0, 5.0, 3.0, 6.0, 10.0]))
    assert np.all(np.diff(curve) >= 0)
    steps = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    assert crossings(steps, curve, np.array([4.0, 6.0, 11.0]))[:2].tolist() == [20.0, 40.0]
    assert np.isnan(crossings(steps, curve, np.array([11.0]))[0])


@pytest.mark.parametrize("method", [Method(), REFERENCE])
def test_fit_recovers_known_laws(method):
    runs = synthetic_runs()
    table = data_table(runs, np.array([700.0, 800.0]), n_boot=5)
    fit = fit_laws(table, method)
    pred = fit.predict(table.utd, table.params)
    # Crossings are quantised to the 5k-step log, so allow that much.
    assert relative_errors(pred, table.data).mean() < 0.01
    for j, t in enumerate((700.0, 800.0)):
        truth = laws.data_to_target(3.0, 1e6, *TRUE[t])
        assert fit.predict([3.0], [1e6])[0, j] == pytest.approx(truth, rel=0.02)


def test_leave_one_config_out_predicts_held_out_configs():
    table = data_table(synthetic_runs(), np.array([700.0, 800.0]), n_boot=3)
    loco = leave_one_config_out(table, Method())
    assert relative_errors(loco, table.data).mean() < 0.05


def test_unreached_thresholds_are_nan_and_censored_fit_respects_the_horizon():
    runs = synthetic_runs()
    table = data_table(runs, np.array([700.0, 800.0, 1400.0]), n_boot=3)
    assert np.isnan(table.data[:, 2]).any()
    fit = fit_laws(table, Method(censored=True))
    pred = fit.predict(table.utd, table.params)[:, 2]
    miss = np.isnan(table.data[:, 2])
    assert np.all(pred[miss] >= table.horizon[miss] * 0.9)


def test_batch_law_fit_recovers_coefficients():
    utd = np.repeat([1.0, 2.0, 4.0, 8.0], 5)
    params = np.tile([2e5, 6e5, 2e6, 8e6, 3e7], 4)
    best = laws.batch_size(utd, params, 1500.0, 0.3, 5e6, 1.0)
    coef, err = fit_batch_law(utd, params, best)
    assert err < 1e-3
    expected = laws.batch_size(3.0, 1e6, 1500.0, 0.3, 5e6, 1.0)
    assert laws.batch_size(3.0, 1e6, *coef) == pytest.approx(expected, rel=1e-3)


def test_archive_errors_are_clear(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        read_runs(tmp_path / "missing.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveError, match="holds no runs"):
        read_runs(tmp_path / "empty")


def test_published_archives_read_in_every_layout(data_dir):
    bro = read_runs(data_dir / "fitted_bs.zip")
    assert len(bro) == 71 and {r.env for r in bro} == {"h1-crawl-v0", "h1-pole-v0", "h1-stand-v0",
                                                         "humanoid-stand"}
    simba = read_runs(data_dir / "simbav2_model_scaling_linear20_with_base.zip", env="h1-crawl-v0")
    assert {r.batch_size for r in simba} == {256.0, 512.0, 1024.0, 2048.0}
    dmc = read_runs(data_dir / "dmc_bro_ablations.zip", env="dog-run")
    assert len(dmc) == 25 and dmc[0].steps["return"][0] == 25_000
    side = read_runs(data_dir / "side_critic.zip", metrics=("validation_critic_loss",))
    assert all("validation_critic_loss" in r.values for r in side)


def test_reference_thresholds_are_twenty_evenly_spaced():
    t = thresholds(450, 780)
    assert len(t) == 20 and t[0] == 450 and t[-1] == 780


def _runs_at(batches):
    steps = np.arange(1, 5) * 1e4
    return [Run("bro", "toy", u, n, b, steps={"return": steps},
                values={"return": np.ones((4, 2))}) for (u, n), b in batches.items()]


def test_runs_batch_law_fits_the_batch_sizes_the_runs_used():
    from calibration.batch import runs_batch_law

    grid = [(u, n) for u in (1.0, 2.0, 4.0, 8.0) for n in (5e5, 2e6, 8e6, 3.2e7)]
    truth = {c: float(laws.batch_size(*c, 1500.0, 0.3, 5e6, 1.0)) for c in grid}
    law, note = runs_batch_law(_runs_at(truth))
    assert law.source == "fitted" and law.relative_error < 1e-3
    assert law.alpha_b == pytest.approx(0.3, rel=1e-2) and "16 configs" in note
    # one batch everywhere, or several at a config: not a law's outputs
    assert runs_batch_law(_runs_at({c: 256.0 for c in grid})) is None
    two = _runs_at(truth) + _runs_at({grid[0]: 64.0})
    assert runs_batch_law(two) is None
    # too few configs, or one utd: the law's exponents would be made up
    with pytest.raises(ValueError, match="4 configs over 1 utd and 4 params values"):
        runs_batch_law(_runs_at({c: b for c, b in truth.items() if c[0] == 1.0}))
    with pytest.raises(ValueError, match="needs at least 5 configs"):
        runs_batch_law(_runs_at({c: truth[c] for c in grid[:3:2]}))
    # a diagonal (utd and params rising together) cannot tell alpha_B from beta_B
    with pytest.raises(ValueError, match="2 or more utd at one params"):
        runs_batch_law(_runs_at({(u, n): truth[(u, n)] for u, n in zip(
            (1.0, 2.0, 4.0, 8.0, 16.0), (5e5, 2e6, 8e6, 3.2e7, 1.28e8)) if (u, n) in truth}
            | {(16.0, 1.28e8): 100.0}))


def test_interval_hits_count_a_run_that_stopped_short_only_when_it_went_past_the_interval():
    from calibration.batch import interval_hits

    r = np.array([0.0, 0.5, 0.5, -0.1])  # the last two never reached: lower bounds
    cens = np.array([False, False, True, True])
    hits = interval_hits(r, cens, np.full(4, -0.2), np.full(4, 0.2))
    assert hits[:3].tolist() == [1.0, 0.0, 0.0] and np.isnan(hits[3])
    # stopped short below the interval's low end: it may yet land inside, unknown
    assert np.isnan(interval_hits(np.array([-0.5]), np.array([True]), np.array([-0.2]),
                                  np.array([0.2]))[0])


def test_bootstrap_refits_say_how_far_they_are_inside_reporting():
    """A hostile tester's: `advisor fit --n-boot 10000` printed nothing for minutes. Refits
    (bootstrap_progress) tell `reporting`'s echo; outside it they are silent."""
    from calibration.fitting import bootstrap_progress, reporting

    lines = []
    bootstrap_progress(1, 10)  # no reporting: nothing, and no error
    with reporting(lines.append, every_s=0.0):
        for r in range(10):
            bootstrap_progress(r + 1, 10)
    bootstrap_progress(2, 10)
    assert len(lines) == 9 and lines[0].startswith("fitting: bootstrap refit 1 of 10, about ")
    assert lines[-1].startswith("fitting: bootstrap refit 9 of 10") and lines[-1].endswith("left")
    with reporting(lines.append):  # a fit quicker than 15 s says nothing
        bootstrap_progress(5, 10)
    assert len(lines) == 9
