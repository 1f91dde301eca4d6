"""Prediction intervals: calibrated by cross-validation, honest on held-out configurations."""

import json
from dataclasses import replace

import numpy as np
import pytest

import advisor
from advisor.errors import ConfigError
from advisor.fitfile import dump_fit_file
from calibration.catalogue import catalogue
from calibration.curves import DataTable
from calibration.fitting import fit_laws, leave_one_config_out
from calibration.intervals import (
    calibrate_interval,
    conformal_quantiles,
    loco_coverage,
    threshold_offsets,
)

FITS = advisor.list_fits()


@pytest.mark.slow
@pytest.mark.parametrize("spec", catalogue(), ids=lambda s: s.id)
def test_nominal_80_percent_covers_75_to_92_percent_leave_one_config_out(spec, fresh_fits):
    """Measured in CI on fits regenerated from the archives: each config's interval is built
    from the other configs' residuals only, then checked against that config's data. Above
    85%: the scaling for rows and columns left out whole (calibration.intervals) widened it."""
    doc = json.loads((fresh_fits / spec.algorithm / spec.file_name).read_text())
    coverage = doc["prediction_interval"]["coverage"]
    assert 0.75 <= coverage["leave_one_config_out"] <= 0.92, coverage
    # Interior rows and columns of the grid left out whole, each measured without calibrating
    # on itself: no collapse on any fit. (At the edges a single fit may miss a whole row or
    # column that leaves the law: 20% on h1-pole's largest utd; averages below.)
    assert coverage["interior_utd_rows_out"] >= 0.6, coverage
    assert coverage["interior_params_columns_out"] >= 0.5, coverage


@pytest.mark.slow
def test_whole_rows_and_columns_left_out_are_covered_near_80_percent_on_average(fresh_fits):
    """Each interior row or column's interval is built without any of its configs (honest),
    so a column that sits off the law on its own is missed; over the 23 fits the coverage
    must still be near the nominal 80% (docs/intervals.md)."""
    cov = [json.loads((fresh_fits / s.algorithm / s.file_name).read_text())[
        "prediction_interval"]["coverage"] for s in catalogue()]
    rows = np.mean([c["interior_utd_rows_out"] for c in cov])
    cols = np.mean([c["interior_params_columns_out"] for c in cov])
    assert rows >= 0.8 and cols >= 0.75, (rows, cols)
    # The edges, per axis, each built without its own configs (calibration.intervals.
    # edge_coverage): 79% and 82% above the grid, 90% and 71% below (docs/intervals.md).
    edges = {k: np.mean([c[k] for c in cov]) for k in (
        "largest_utd_row_out", "largest_params_column_out", "smallest_utd_row_out",
        "smallest_params_column_out")}
    assert edges["largest_utd_row_out"] >= 0.75 and edges["largest_params_column_out"] >= 0.75
    assert edges["smallest_utd_row_out"] >= 0.8 and edges["smallest_params_column_out"] >= 0.6
    assert np.mean([c["leave_one_config_out"] for c in cov]) <= 0.87


@pytest.mark.parametrize("fit_id", FITS)
def test_interval_contains_the_prediction_and_takes_arrays(fit_id):
    f = advisor.load_fit(fit_id)
    utd = np.array([1.0, 2.0, 4.0])
    params = np.array([1e6, 3e6, 1e7])
    lo, hi = f.interval(utd, params, level=0.8)
    pred = f.data_to_target(utd, params)
    assert lo.shape == hi.shape == (3,)
    assert np.all(lo < pred) and np.all(pred < hi)
    lo9, hi9 = f.interval(utd, params, level=0.9)
    assert np.all(lo9 <= lo) and np.all(hi9 >= hi)
    scalar = f.interval(2.0, 3e6)
    assert isinstance(scalar[0], float) and scalar[0] == pytest.approx(lo[1])


def test_interval_widens_beyond_the_fitted_domain():
    f = advisor.load_fit("bro/h1-crawl-v0")
    dom = f.model.domain
    inside = f.interval(dom.utd.high, dom.params.high)
    outside = f.interval(dom.utd.high * 2, dom.params.high * 4)
    pred_in = f.data_to_target(dom.utd.high, dom.params.high)
    pred_out = f.data_to_target(dom.utd.high * 2, dom.params.high * 4)
    assert outside[1] / pred_out > inside[1] / pred_in
    assert outside[0] / pred_out < inside[0] / pred_in


def test_levels_outside_the_calibrated_range_are_refused():
    f = advisor.load_fit("bro/h1-crawl-v0")
    for level in (0.2, 0.99, float("nan"), "0.8", True):
        with pytest.raises(ConfigError, match="level"):
            f.interval(2.0, 1e6, level=level)


def test_a_schema_1_fit_falls_back_to_the_bootstrap_and_says_so(tmp_path):
    f = advisor.load_fit("bro/h1-stand-v0")
    doc = f.model.model_dump(mode="json")
    doc["schema_version"] = 1
    doc.pop("prediction_interval")
    doc["domain"].pop("runs")  # schema 4 on
    old = type(f.model).model_validate(doc)
    assert "prediction_interval" not in dump_fit_file(old)
    path = tmp_path / "old.json"
    path.write_text(dump_fit_file(old))
    rec = advisor.recommend(advisor.Budget(data=6e5), fit=str(path))
    assert rec.interval is not None
    assert any("no calibrated prediction interval" in w for w in rec.warnings)


def _synthetic_table(seed: int, noise: float = 0.15) -> DataTable:
    """D_J from a known law on a 4x5 grid, with log-normal run-to-run noise."""
    rng = np.random.default_rng(seed)
    utd, params = np.meshgrid([1.0, 2.0, 4.0, 8.0], [2e5, 6e5, 2e6, 6e6, 2e7], indexing="ij")
    utd, params = utd.ravel(), params.ravel()
    targets = np.linspace(100, 200, 5)
    d_min = 1e5 * (1 + np.arange(5) / 4)
    law = d_min + (3.0 / utd[:, None]) ** 0.7 * 1e5 + (2e6 / params[:, None]) ** 0.5 * 1e5
    data = law * np.exp(noise * rng.standard_normal(law.shape))
    n = len(utd)
    return DataTable("synthetic", utd, params, np.full(n, 256.0), targets, np.full(n, 1e7),
                     data, np.zeros((0, n, 5)), np.full(n, 5))


def test_calibrated_interval_covers_new_runs_of_a_known_law():
    """A fit calibrated on one noisy grid covers about 80% of fresh runs of the same law (other
    noise draws), at fitted and at extrapolated configurations."""
    from calibration.build import DEFAULT_METHOD

    table = _synthetic_table(0)
    laws = fit_laws(table, DEFAULT_METHOD)
    loco = leave_one_config_out(table, DEFAULT_METHOD, laws)
    interval, _ = calibrate_interval(table, DEFAULT_METHOD, laws, loco)
    lo, hi = threshold_offsets(interval, table.targets)
    hits = []
    for seed in range(1, 21):
        fresh = _synthetic_table(seed)
        r = np.log(fresh.data / laws.predict(fresh.utd, fresh.params))
        hits.append(((r >= lo) & (r <= hi)).mean())
    assert 0.7 <= np.mean(hits) <= 0.92, np.mean(hits)
    assert 0.7 <= loco_coverage(table, loco) <= 0.92


def test_conformal_quantiles_bracket_zero_and_grow_with_the_level():
    r = np.random.default_rng(0).normal(0.05, 0.1, 500)
    lo8, hi8 = conformal_quantiles(r, 0.8, 20)
    lo9, hi9 = conformal_quantiles(r, 0.9, 20)
    assert lo9 <= lo8 <= 0 <= hi8 <= hi9
    assert np.mean((r >= lo8) & (r <= hi8)) == pytest.approx(0.84, abs=0.03)  # 0.8 * (1 + 1/20)


def test_an_edge_that_sits_off_the_law_is_not_covered_by_its_own_residuals():
    """The recorded edge coverage builds the edge's interval without the edge's configs: a
    largest-utd row that needs 4x the law's data is missed, though its own LOCO residuals,
    were they used, would have widened the interval to cover it."""
    from calibration.build import DEFAULT_METHOD
    from calibration.intervals import edge_coverage

    table = _synthetic_table(0, noise=0.02)
    off = table.utd == table.utd.max()
    table.data[off] *= 4.0
    laws = fit_laws(table, DEFAULT_METHOD)
    loco = leave_one_config_out(table, DEFAULT_METHOD, laws)
    interval, preds = calibrate_interval(table, DEFAULT_METHOD, laws, loco)
    cov = interval.coverage
    assert cov["largest_utd_row_out"] < 0.2, cov
    assert cov["largest_params_column_out"] >= 0.5, cov  # the other axis is not dragged down
    assert set(edge_coverage(table, loco, preds, "up", 0.25)) == {"utd", "params"}


def _seeded_table(seed: int, seeds: int = 8, spread: float = 0.35) -> DataTable:
    """_synthetic_table with per-seed D_J scattered `spread` (log) around each config's D_J."""
    t = _synthetic_table(seed, noise=0.05)
    rng = np.random.default_rng(1000 + seed)
    seed_data = t.data[:, None, :] * np.exp(spread * rng.standard_normal(
        (len(t.utd), seeds, t.data.shape[1])))
    return DataTable(t.env, t.utd, t.params, t.batch_size, t.targets, t.horizon, t.data,
                     t.boot, np.full(len(t.utd), seeds), seed_data)


def _calibrated(table: DataTable):
    """(laws, LOCO predictions, interval) of `table`, made as the shipped fits are."""
    from calibration.build import DEFAULT_METHOD

    laws = fit_laws(table, DEFAULT_METHOD)
    loco = leave_one_config_out(table, DEFAULT_METHOD, laws)
    return laws, loco, calibrate_interval(table, DEFAULT_METHOD, laws, loco)[0]


def test_the_single_seed_interval_covers_single_seeds_where_the_averaged_one_does_not():
    """Runs averaged over seeds scatter less than one seed: the seed-averaged interval misses
    fresh single seeds of the same law, the single-seed interval covers about 80% of them."""
    table = _seeded_table(0)
    laws, loco, interval = _calibrated(table)
    lo, hi = threshold_offsets(interval, table.targets)
    s_lo, s_hi = threshold_offsets(interval, table.targets, single_seed=True)
    assert np.all(s_lo < lo) and np.all(s_hi > hi)
    averaged, single = [], []
    for seed in range(1, 11):
        fresh = _seeded_table(seed)
        r = np.log(fresh.seed_data / laws.predict(fresh.utd, fresh.params)[:, None, :])
        averaged.append(((r >= lo) & (r <= hi)).mean())
        single.append(((r >= s_lo) & (r <= s_hi)).mean())
    assert np.mean(averaged) < 0.6 and 0.72 <= np.mean(single) <= 0.9, (averaged, single)
    assert 0.72 <= interval.coverage["single_seed_leave_one_config_out"] <= 0.9


def test_seeds_that_never_reach_are_left_out_and_counted_in_the_note():
    """A seed short of a threshold by its run's end (inf) has no D_J: like an unreached config
    in the seed-averaged interval it is left out (the interval is the one without it), and the
    fit's notes give the share of such seeds."""
    from calibration.build import DEFAULT_METHOD, seeds_note

    table = _seeded_table(0)
    laws = fit_laws(table, DEFAULT_METHOD)
    loco = leave_one_config_out(table, DEFAULT_METHOD, laws)

    def with_seeds(seed_data):
        return DataTable(table.env, table.utd, table.params, table.batch_size, table.targets,
                         table.horizon, table.data, table.boot, table.n_seeds, seed_data)

    stuck, gone = table.seed_data.copy(), table.seed_data.copy()
    stuck[:, ::3], gone[:, ::3] = np.inf, np.nan
    a, _ = calibrate_interval(with_seeds(stuck), DEFAULT_METHOD, laws, loco)
    b, _ = calibrate_interval(with_seeds(gone), DEFAULT_METHOD, laws, loco)
    assert a.seed_log_low == b.seed_log_low and a.seed_log_high == b.seed_log_high
    assert "37.5% of the seeds never reached" in seeds_note(with_seeds(stuck))


def test_a_single_seed_coverage_is_built_without_the_held_out_configs_seeds():
    """Two of 20 configs have seeds far above the law: each, held out, is judged by an interval
    from the other configs' seeds, in which the other one alone (5% of the weight) is too few to
    stretch the top. Were its own seeds in, the two (10%) would pass the top tail (8%):
    measured 81.8% pooled over all configs' seeds, against 84.1% with the leak."""

    table = _seeded_table(0, spread=0.02)
    seed_data = table.seed_data.copy()
    seed_data[:2] *= np.exp(3.0)
    odd = DataTable(table.env, table.utd, table.params, table.batch_size, table.targets,
                    table.horizon, table.data, table.boot, table.n_seeds, seed_data)
    _, _, interval = _calibrated(odd)
    assert interval.coverage["single_seed_leave_one_config_out"] <= 0.83, interval.coverage


def test_a_side_of_zero_width_leaves_the_single_seed_interval_finite():
    """A seed-averaged bound of 0 on one side (one-sided residuals) used to need an infinite
    factor: each side now comes from the seeds' own quantiles."""
    from calibration.intervals import LEVELS, single_seed_bounds

    table = _seeded_table(0)
    laws = fit_laws(table, __import__("calibration.build").build.DEFAULT_METHOD)
    loco = laws.predict(table.utd, table.params)
    m = len(table.targets)
    lows = np.array([[0.0] * m] + [[-0.1] * m] * (len(LEVELS) - 1))
    highs = np.array([[0.1] * m] + [[0.2] * m] * (len(LEVELS) - 1))
    lows, highs = single_seed_bounds(table, loco, lows, highs)
    assert np.all((-2 < lows) & (lows <= 0) & (0 <= highs) & (highs < 2)), (lows, highs)


def test_fit_interval_for_one_seed():
    fit = advisor.load_fit("bro/h1-crawl-v0")
    lo, hi = fit.interval(2, 2.3e6, 700)
    s_lo, s_hi = fit.interval(2, 2.3e6, 700, single_seed=True)
    assert s_lo < lo < hi < s_hi
    rec = advisor.recommend(advisor.Budget(compute=1e17), fit="bro/h1-crawl-v0")
    assert rec.interval_single_seed.low < rec.interval.low < rec.interval.high < (
        rec.interval_single_seed.high)
    with pytest.raises(ConfigError, match="single_seed must be True or False"):
        fit.interval(2, 2.3e6, 700, single_seed="yes")


def test_a_fit_file_single_seed_interval_is_validated(tmp_path):
    """Both single-seed lists or neither, as long as the levels, containing the seed-averaged
    interval; a file without them (before them) loads and has no single-seed interval."""
    from advisor.errors import FitFileError
    from advisor.fitfile import parse_fit_file

    doc = json.loads(dump_fit_file(advisor.load_fit("bro/h1-crawl-v0").model))
    pi = doc["prediction_interval"]
    for change, needle in (({"seed_log_high": None}, "come together"),
                           ({"seed_log_low": pi["seed_log_low"][1:]}, "same length"),
                           ({"seed_log_low": [0.0] * len(pi["levels"])}, "must contain")):
        bad = json.loads(json.dumps(doc))
        bad["prediction_interval"].update(change)
        bad.pop("content_hash")
        with pytest.raises(FitFileError, match=needle):
            parse_fit_file(json.dumps(bad))
    from advisor.fitfile import content_hash

    old = json.loads(json.dumps(doc))
    for where in [old["prediction_interval"], *old["prediction_interval"]["bands"]]:
        for key in ("seed_log_low", "seed_log_high"):
            where.pop(key)
    old["content_hash"] = content_hash(old)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    fit = advisor.load_fit(str(path))
    assert fit.interval(2, 2.3e6, 700, single_seed=True) is None
    assert advisor.recommend(1e17, fit=str(path)).interval_single_seed is None


def _spreading_table(seed: int) -> DataTable:
    """A 4x5 grid of one known law at 10 thresholds whose run-to-run noise grows with the
    threshold (log sd 0.03 at the lowest to 0.5 at the highest)."""
    rng = np.random.default_rng(seed)
    utd, params = np.meshgrid([1.0, 2.0, 4.0, 8.0], [2e5, 6e5, 2e6, 6e6, 2e7], indexing="ij")
    utd, params = utd.ravel(), params.ravel()
    m = 10
    targets = np.linspace(100, 200, m)
    d_min = 1e5 * (1 + np.arange(m) / 4)
    law = d_min + (3.0 / utd[:, None]) ** 0.7 * 1e5 + (2e6 / params[:, None]) ** 0.5 * 1e5
    noise = np.linspace(0.03, 0.5, m)
    data = law * np.exp(noise * rng.standard_normal(law.shape))
    n = len(utd)
    return DataTable("synthetic", utd, params, np.full(n, 256.0), targets, np.full(n, 1e7),
                     data, np.zeros((0, n, m)), np.full(n, 5))


def test_an_interval_per_band_of_thresholds_holds_where_the_noise_grows_with_the_target():
    """One interval for every threshold over-covers the quiet low thresholds and misses the
    noisy top ones; the interval per band covers about 80% of fresh runs in each band."""
    from calibration.build import DEFAULT_METHOD

    table = _spreading_table(0)
    laws = fit_laws(table, DEFAULT_METHOD)
    loco = leave_one_config_out(table, DEFAULT_METHOD, laws)
    banded, _ = calibrate_interval(table, DEFAULT_METHOD, laws, loco)
    pooled, _ = calibrate_interval(table, DEFAULT_METHOD, laws, loco, pooled=True)
    assert len(banded.bands) == 5 and pooled.bands is None
    assert [b.target_low for b in banded.bands] == list(table.targets[::2])
    hits = {"banded": [], "pooled": []}
    for seed in range(1, 21):
        fresh = _spreading_table(seed)
        r = np.log(fresh.data / laws.predict(fresh.utd, fresh.params))
        for name, interval in (("banded", banded), ("pooled", pooled)):
            lo, hi = threshold_offsets(interval, table.targets)
            hits[name].append(((r >= lo) & (r <= hi)).mean(axis=0))
    by_band = {k: np.mean(v, axis=0).reshape(5, 2).mean(axis=1) for k, v in hits.items()}
    assert by_band["pooled"][0] > 0.97 and by_band["pooled"][-1] < 0.7, by_band
    assert np.all((by_band["banded"] >= 0.7) & (by_band["banded"] <= 0.95)), by_band
    lo, hi = threshold_offsets(banded, table.targets)
    assert hi[0] - lo[0] < (hi[-1] - lo[-1]) / 3  # narrow where the runs agree


def test_fit_interval_takes_the_band_of_its_target():
    """Fit.interval applies the offsets of the band its target falls in (a target between two
    bands: interpolated linearly, so the interval does not jump as the target rises); a
    schema-2 file (one interval) still loads and applies its one interval at every target."""
    fit = advisor.load_fit("bro/h1-crawl-v0")
    pi = fit.model.prediction_interval
    assert pi.bands and len(pi.bands) == 5
    i = pi.levels.index(0.8)
    for band in pi.bands:
        for target in (band.target_low, band.target_high):
            lo, hi = fit.interval(2, 2.3e6, target)
            pred = fit.data_to_target(2, 2.3e6, target)
            assert np.log(lo / pred) == pytest.approx(band.log_low[i])
            assert np.log(hi / pred) == pytest.approx(band.log_high[i])
    a, b = pi.bands[0], pi.bands[1]
    between = a.target_high + 0.25 * (b.target_low - a.target_high)
    assert pi.offsets(0.8, between) == pytest.approx(
        (0.75 * a.log_low[i] + 0.25 * b.log_low[i], 0.75 * a.log_high[i] + 0.25 * b.log_high[i]))
    # continuous in the target: no step at a band's edge, on either the data or the interval
    targets = np.linspace(fit.target_min, fit.target_max, 2001)
    highs = np.array([fit.interval(2, 2.3e6, t)[1] for t in targets])
    assert np.max(np.abs(np.diff(np.log(highs)))) < 0.01
    below, above = pi.offsets(0.8, fit.target_min - 1), pi.offsets(0.8, fit.target_max + 1)
    assert below == (a.log_low[i], a.log_high[i])
    assert above == (pi.bands[-1].log_low[i], pi.bands[-1].log_high[i])
    with pytest.raises(ValueError, match="finite"):
        pi.offsets(0.8, float("nan"))
    # the whole interval spans every band (what holds at any target)
    assert pi.log_low[i] == min(band.log_low[i] for band in pi.bands)
    assert pi.log_high[i] == max(band.log_high[i] for band in pi.bands)

    from advisor.fitfile import content_hash

    doc = json.loads(dump_fit_file(fit.model))
    doc["schema_version"] = 2
    doc["prediction_interval"].pop("bands")
    doc["domain"].pop("runs")  # schema 4 on
    doc["content_hash"] = content_hash(doc)
    old = advisor.fitfile.parse_fit_file(json.dumps(doc))
    assert old.prediction_interval.offsets(0.8, a.target_low) == (pi.log_low[i], pi.log_high[i])


def test_a_fit_file_bands_are_validated():
    from advisor.errors import FitFileError
    from advisor.fitfile import content_hash, parse_fit_file

    doc = json.loads(dump_fit_file(advisor.load_fit("bro/h1-crawl-v0").model))
    targets = [law["target"] for law in doc["data_to_target"]["laws"]]

    def broken(change):
        bad = json.loads(json.dumps(doc))
        change(bad)
        bad["content_hash"] = content_hash(bad)
        return json.dumps(bad)

    def overlap(d):
        d["prediction_interval"]["bands"][1]["target_low"] = targets[0]

    def not_a_threshold(d):
        d["prediction_interval"]["bands"][0]["target_high"] = targets[0] + 1e-3

    def old_schema(d):
        d["schema_version"] = 2
        d["domain"].pop("runs")  # schema 4 on

    def narrower_seed(d):
        d["prediction_interval"]["bands"][2]["seed_log_high"] = [0.0] * len(
            d["prediction_interval"]["levels"])

    def one_band_without_seeds(d):
        d["prediction_interval"]["bands"][3].pop("seed_log_low")
        d["prediction_interval"]["bands"][3].pop("seed_log_high")

    def short(d):
        d["prediction_interval"]["bands"].pop()

    def gap(d):
        d["prediction_interval"]["bands"].pop(2)

    def outside_the_whole(d):
        d["prediction_interval"]["bands"][1]["log_high"] = [
            x + 1.0 for x in d["prediction_interval"]["log_high"]]
        d["prediction_interval"]["bands"][1]["seed_log_high"] = [
            x + 1.0 for x in d["prediction_interval"]["seed_log_high"]]

    def wider_than_every_band(d):
        d["prediction_interval"]["seed_log_low"] = [
            x - 1.0 for x in d["prediction_interval"]["seed_log_low"]]

    for change, needle in ((short, "must cover every threshold"),
                           (gap, "must cover every threshold"),
                           (outside_the_whole, "log_high must be the span of the bands'"),
                           (wider_than_every_band, "seed_log_low must be the span of the bands'"),
                           (overlap, "increasing order of target"),
                           (not_a_threshold, "must be thresholds"),
                           (old_schema, "needs schema_version 3"),
                           (narrower_seed, "band 2: a single seed's interval must contain"),
                           (one_band_without_seeds, "every band or in none")):
        with pytest.raises(FitFileError, match=needle):
            parse_fit_file(broken(change))


def test_edge_bias_script_refits_without_the_largest_model_and_reads_the_ratio(data_dir):
    """benchmarks/edge_bias.py on bro/h1-crawl-v0: its largest model column left out, the
    refitted law under-predicts every point of it (README: median 1.24x)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "benchmarks/edge_bias.py", str(data_dir), "--only",
                          "bro/h1-crawl-v0"], cwd=root, text=True, capture_output=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    rows = [r for r in res.stdout.splitlines() if r.startswith("| bro/h1-crawl-v0 |")]
    assert rows[0] == "| bro/h1-crawl-v0 | largest params column | 80 | 1.24 | 1.30 | 100% |"
    assert rows[1].startswith("| bro/h1-crawl-v0 | largest utd row | ")


def test_a_coarse_sub_grid_is_checked_between_and_beyond_its_configs():
    """benchmarks/subgrid_coverage.py on a known law (4 UTDs x 5 sizes): the sub-grid of UTDs
    1-4 and sizes 2e5/2e6/2e7 leaves 6 configs between its values (UTD 1-4 at 6e5 and 6e6) and
    5 above it (UTD 8), none below; its 80% interval, widened above, holds most of them, and
    the group correction (the alternative tried) widens it."""
    import benchmarks.subgrid_coverage as sub

    table = _synthetic_table(0, noise=0.1)
    assert sub.triples(5)[0] == (0, 2, 4) and sub.triples(4)[0] == (0, 1, 2)
    sides, width = sub.subgrid_sides(table, (0, 1, 2), (0, 2, 4))
    assert {k: v.size for k, v in sides.items()} == {"between": 30, "above": 25, "below": 0}
    assert set(np.concatenate(list(sides.values()))) <= {-1, 0, 1}
    assert (sides["between"] == 0).mean() >= 0.7 and (sides["above"] == 0).mean() >= 0.7, sides
    import calibration.intervals as intervals

    shipped = intervals.group_scale
    try:
        intervals.group_scale = sub.corrected(1.0)
        _, wider = sub.subgrid_sides(table, (0, 1, 2), (0, 2, 4))
    finally:
        intervals.group_scale = shipped
    assert wider > width > 0


def test_choice_script_picks_from_one_table_and_scores_on_another():
    """benchmarks/choice.py on a known law: picks made on one noisy grid, scored on another
    draw of it. A pick that never reached a threshold is a failure (inf, or its run's cost and
    then the best config's), nothing picked is a failure, a config predicted past its runs'
    length is not picked, and the law's picks beat a random config's."""
    from types import SimpleNamespace

    import benchmarks.choice as choice

    f = SimpleNamespace(compute_per_update_param=2560.0, delta=1e11)
    chosen, seen = _synthetic_table(0, noise=0.05), _synthetic_table(1, noise=0.05)
    size = seen.utd * seen.params
    probs = choice.problems(seen, f)
    assert set(probs) == set(choice.PROBLEMS)
    observed = probs["total"].cost(seen.data)
    assert np.allclose(observed, (2560.0 * size[:, None] + 1e11) * seen.data)
    short = replace(seen, horizon=np.where(np.arange(len(size)) == 0, 1e5, 1e7))
    capped = choice.problems(short, f)["data"].cost(seen.data)
    assert np.isnan(capped[0]).all() and np.isfinite(capped[1:]).all()
    c0 = np.median(2560.0 * size * 1e7)
    steps = probs["compute"].cost(seen.data)
    assert np.array_equal(np.isfinite(steps), 2560.0 * size[:, None] * seen.data <= c0)
    best = choice.pick(observed)
    assert np.array_equal(best, np.nanargmin(observed, axis=0))
    assert np.array_equal(choice.pick(observed, np.arange(len(size)) == 3), np.full(5, 3))
    assert np.allclose(choice.regret(observed, best), 1.0)
    gone = observed.copy()
    gone[best[0], 0] = np.nan  # the pick never reached the first threshold
    failed = probs["total"].failed_cost
    assert choice.regret(gone, best)[0] == np.inf
    wasted = choice.regret(gone, best, failed)
    assert np.isclose(wasted[0], (failed[best[0]] + np.nanmin(gone[:, 0])) / np.nanmin(gone[:, 0]))
    assert np.allclose(wasted[1:], 1.0)
    assert np.isinf(choice.regret(observed, np.full(5, -1), failed)).all()  # no pick: failed
    assert choice.summary(np.array([1.0, np.inf, 2.0, np.nan]),
                          np.array([1.0, 4.0, 2.0, np.nan])) == pytest.approx((1 / 3, 1 / 3, 2.0))

    picks = choice.choose(chosen, f)
    assert set(picks) == set(choice.PROBLEMS)
    assert all(set(v) == set(choice.CHOICES) for v in picks.values())
    assert len(picks["total"]["coarse grid, law"]) == 16
    assert len(picks["total"]["random"]) == len(size)
    assert (picks["total"]["smallest"][0] == np.argmin(size)).all()
    scored = choice.score(picks, seen, f)
    other = choice.score(picks, _synthetic_table(2, noise=0.05), f)
    assert not np.array_equal(scored["total"]["law"][0], other["total"]["law"][0])
    law = choice.summary(*scored["total"]["law"])
    rand = choice.summary(*scored["total"]["random"])
    assert law[1] == 0 and law[0] > rand[0] and law[2] < rand[2], (law, rand)


def test_choice_script_halves_each_configs_seeds():
    """Each config's seeds go to one half or the other, an odd one to either."""
    import benchmarks.choice as choice
    from calibration.archives import Run

    rng = np.random.default_rng(0)
    steps = np.arange(1, 11) * 1e4
    runs = [Run("bro", "synthetic", utd=u, params=1e5, batch_size=256.0,
                steps={"return": steps},
                values={"return": np.cumsum(rng.random((10, s)), axis=0) * 20})
            for u, s in ((1.0, 5), (2.0, 4), (4.0, 3))]
    sizes = set()
    for _ in range(8):
        a, b = choice.halves(runs, np.array([20.0, 60.0]), (), {"n_boot": 0}, rng)
        assert list(a.n_seeds + b.n_seeds) == [5, 4, 3] and a.n_seeds[1] == b.n_seeds[1] == 2
        sizes.add(int(a.n_seeds[0]))
        assert np.isfinite(a.data[:, 0]).all() and np.isfinite(b.data[:, 0]).all()
    assert sizes == {2, 3}


def test_choice_script_vetoes_what_failed_runs_dominate_or_border():
    """choice.py's runs' veto: a config that never reached a threshold vetoes, there, every
    config no larger (and with `to_next`, every one below the next utd and size the runs
    took); runs shorter than the prediction, or outside the sub-grid, veto nothing; where every
    config is vetoed the law's pick stands."""
    import benchmarks.choice as choice

    table = _synthetic_table(0, noise=0.05)
    predicted = np.full(table.data.shape, 1e5)
    assert not choice.vetoed(table, predicted).any()
    mid = int(np.flatnonzero((table.utd == 2.0) & (table.params == 6e5))[0])
    table.data[mid, 4] = np.nan  # utd 2 at 6e5 never reached the top threshold
    below = (table.utd <= 2.0) & (table.params <= 6e5)
    assert np.array_equal(choice.vetoed(table, predicted)[:, 4], below)
    assert not choice.vetoed(table, predicted)[:, :4].any()
    near = (table.utd < 4.0) & (table.params < 2e6)  # up to the next utd and size
    assert np.array_equal(choice.vetoed(table, predicted, to_next=True)[:, 4], near)
    long = np.full(table.data.shape, 2e7)  # predicted beyond the runs' 1e7 steps
    assert not choice.vetoed(table, long).any()
    others = np.arange(len(table.utd)) != mid  # a sub-grid without that config
    assert not choice.vetoed(table, predicted, others).any()
    # on a sub-grid of utd 1, 4 and sizes 2e5, 2e6: a failure at (1, 2e5) vetoes up to (4, 2e6)
    sub = np.isin(table.utd, [1.0, 4.0]) & np.isin(table.params, [2e5, 2e6])
    table.data[:, 4] = 1e5
    corner = int(np.flatnonzero((table.utd == 1.0) & (table.params == 2e5))[0])
    table.data[corner, 4] = np.nan
    assert np.array_equal(choice.vetoed(table, predicted, sub, to_next=True)[:, 4],
                          (table.utd < 4.0) & (table.params < 2e6))
    cost = np.arange(1.0, len(table.utd) + 1)[:, None] * np.ones((1, 5))
    veto = np.zeros(cost.shape, bool)
    veto[0, :] = True
    assert np.array_equal(choice.pick_vetoed(cost, veto), np.full(5, 1))
    assert np.array_equal(choice.pick_vetoed(cost, np.ones(cost.shape, bool)), np.zeros(5))


def test_contradiction_script_flags_picks_that_runs_no_smaller_refute():
    """benchmarks/contradiction.py's rule, as Fit.contradicting_runs reads domain.runs: a
    config is flagged at a threshold where a config no smaller in utd and params never reached
    it in at least the predicted steps."""
    import benchmarks.contradiction as contradiction

    table = _synthetic_table(0, noise=0.05)
    big = int(np.argmax(table.utd * table.params))
    small = int(np.argmin(table.utd * table.params))
    assert contradiction.contradicted(table, small, 4, 1e5) == ""
    table.data[big, 4] = np.nan  # the largest config never reached the top threshold
    assert contradiction.contradicted(table, small, 4, 1e5) == "larger"
    assert contradiction.contradicted(table, big, 4, 1e5) == "own"
    assert contradiction.contradicted(table, small, 3, 1e5) == ""  # it reached that one
    assert contradiction.contradicted(table, small, 4, 2e7) == ""  # beyond its runs' length


def test_choices_left_out_fit_by_fit_use_the_other_fits_only():
    """benchmarks' leave-one-task-out choices (the widening floors, the interval per band):
    each fold's choice is the rule's on the other fits, never on the one it scores."""
    from benchmarks.threshold_coverage import by_rule, left_out_choice
    from benchmarks.widen_floors import CANDIDATES, floor_by_rule, left_out_floors

    # Coverage rising with the floor; fit 0 alone needs a high floor to reach 80%.
    need = np.array([1.0, 0.2, 0.2, 0.2])
    coverage = np.array([[0.6 + 0.2 * (w >= n) for w in CANDIDATES] for n in need])
    assert floor_by_rule(coverage) == 1.0  # the mean reaches 0.8 only where fit 0 does
    assert left_out_floors(coverage) == [0.2, 1.0, 1.0, 1.0]

    good, bad = [0.8] * 5, [0.6] * 5
    out = {"pooled": ([bad, good, good], [good] * 3, [1.0] * 3),
           "per band": ([good, bad, good], [good] * 3, [1.0] * 3),
           "normalised": ([good, good, [0.65] + good[1:]], [good] * 3, [2.0] * 3)}
    assert by_rule(out, np.ones(3, bool)) == "normalised"  # 1 cell under 70% against 5
    picked, loco, groups = left_out_choice(out)
    assert picked == ["pooled", "per band", "normalised"]  # each fold drops its own misses
    assert loco.tolist() == [bad, bad, [0.65] + good[1:]] and groups.tolist() == [good] * 3
