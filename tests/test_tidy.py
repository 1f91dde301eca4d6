"""Runs from any codebase's logs: a tidy CSV -> the same fit as the published archive."""

import csv
import json

import pytest
from click.testing import CliRunner

import advisor
from advisor.cli import main
from calibration.archives import read_runs
from calibration.tidy import CsvError, read_csv_runs

HEADER = ["utd", "params", "batch_size", "seed", "step", "return"]


def _write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def cheetah_csv(data_dir, tmp_path_factory):
    """The published cheetah-run runs, exported as a tidy CSV (one row per evaluation)."""
    rows = []
    for run in read_runs(data_dir / "dmc_bro_ablations.zip", env="cheetah-run"):
        steps, values = run.steps["return"], run.values["return"]
        for s in range(values.shape[1]):
            for t in range(len(steps)):
                rows.append([run.utd, run.params, int(run.batch_size), s, int(steps[t]),
                             repr(float(values[t, s]))])
    return _write_csv(tmp_path_factory.mktemp("csv") / "cheetah.csv", rows)


def test_csv_of_the_published_runs_gives_the_shipped_fit(cheetah_csv, tmp_path):
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(main, ["fit", str(cheetah_csv), "--algorithm", "bro", "--env",
                                    "cheetah-run", "--target-range", "400", "750", "--input-dim",
                                    "23", "--delta", "1e11", "--n-boot", "0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    mine = json.loads(out.read_text())
    shipped = advisor.load_fit("bro/cheetah-run").model.model_dump(mode="json")
    for mine_law, shipped_law in zip(mine["data_to_target"]["laws"],
                                     shipped["data_to_target"]["laws"], strict=True):
        for key, value in shipped_law.items():
            assert mine_law[key] == pytest.approx(value, rel=1e-6), key
    assert mine["architecture"] == shipped["architecture"]
    assert mine["batch_size"]["kind"] == "fixed" and mine["batch_size"]["a_b"] == 128
    assert mine["goodness_of_fit"]["leave_one_config_out"] == pytest.approx(
        shipped["goodness_of_fit"]["leave_one_config_out"], rel=1e-6)
    rec = advisor.recommend(advisor.Budget(data=5e5), fit=str(out))
    assert rec.fit == "bro/cheetah-run"


def test_an_input_dim_whose_widths_cannot_cover_the_runs_is_one_line(cheetah_csv, tmp_path):
    """The fit file's own check (params(width) covers the trusted range) was a pydantic
    traceback after the whole fit."""
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(main, ["fit", str(cheetah_csv), "--algorithm", "bro", "--env",
                                    "cheetah-run", "--target-range", "400", "750", "--input-dim",
                                    "100000", "--n-boot", "0", "-o", str(out)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "no valid fit file" in res.output and not out.exists()


def test_csv_thresholds_come_from_the_data_when_no_range_is_given(cheetah_csv, tmp_path):
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(main, ["fit", str(cheetah_csv), "--algorithm", "mine", "--env",
                                    "cheetah", "--input-dim", "23", "--n-boot", "0",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    f = advisor.load_fit(str(out))
    assert 0 < f.target_min < f.target_max
    assert any("chosen from the data" in n for n in f.model.provenance.notes)


GOOD = [[1, 1e6, 256, s, step, 10.0 * step / 1000 + s] for s in (0, 1) for step in (0, 1000)]


@pytest.mark.parametrize("rows, header, needle", [
    (GOOD, ["utd", "params", "batch_size", "seed", "step"], "no column 'return'"),
    (GOOD, ["utd", "batch_size", "seed", "step", "return", "x"], "width or a params column"),
    ([[1, 1e6, 256, 0, -5, 1.0]] + GOOD, HEADER, "row 1: step must not be negative"),
    (GOOD[:2] + [[1, 1e6, 256, 0, "ten", 1.0]], HEADER, "row 3: step must be a number"),
    (GOOD[:3] + [[1, 1e6, 256, 0, 2000, "1e999"]], HEADER, "row 4: return must be finite"),
    ([r for r in GOOD if r[3] == 0], HEADER, "has one seed"),
    ([[0, 1e6, 256, 0, 0, 1.0]] + GOOD, HEADER, "row 1: utd must be positive"),
    ([[1, 1e6, 25.5, 0, 0, 1.0]] + GOOD, HEADER, "row 1: batch_size must be a whole number"),
    (GOOD + [GOOD[0]], HEADER, "logs step 0 twice"),
    # a hostile round: the last 'return' was read silently; steps of 1e100 failed in numpy
    ([r + [0.0] for r in GOOD], HEADER + ["return"], "column 'return' more than once"),
    (GOOD[:3] + [[1, 1e6, 256, 1, 1e100, 1.0]], HEADER, "row 4: step must be at most 1e.15"),
    ([[1, 1e6, 256, -3, 0, 1.0]] + GOOD, HEADER, "row 1: seed must not be negative"),
    ([], HEADER, "has no rows"),
])
def test_bad_csvs_are_one_line_errors_naming_the_row(tmp_path, rows, header, needle):
    path = _write_csv(tmp_path / "bad.csv", rows, header)
    with pytest.raises(CsvError, match=needle):
        read_csv_runs(path)
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--input-dim", "10", "-o", str(tmp_path / "f.json")])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and needle.split(":")[0] in res.output


def test_widths_need_an_input_dim_or_a_params_column(tmp_path):
    rows = [[1, 64, 256, s, t, float(t)] for s in (0, 1) for t in (0, 1000)]
    path = _write_csv(tmp_path / "w.csv", rows, ["utd", "width", "batch_size", "seed", "step",
                                                 "return"])
    with pytest.raises(CsvError, match="--input-dim"):
        read_csv_runs(path)
    runs = read_csv_runs(path, params_of=lambda w: 8 * w * w)
    assert runs[0].params == 8 * 64 * 64 and runs[0].width == 64


def test_large_seeds_stay_distinct(tmp_path):
    """64-bit seeds were read as floats: 2^53 and 2^53 + 1 merged and 'logged a step twice'."""
    big = [2**53, 2**53 + 1]
    rows = [[1, 1e6, 256, big[s], step, 10.0 * step / 1000 + s] for s in (0, 1)
            for step in (0, 1000)]
    (run,) = read_csv_runs(_write_csv(tmp_path / "big.csv", rows))
    assert run.values["return"].shape == (2, 2)


def test_fit_output_over_its_input_csv_is_refused(tmp_path):
    path = _write_csv(tmp_path / "runs.csv", GOOD)
    before = path.read_bytes()
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--input-dim", "10", "-o", str(path)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "not a fit file" in res.output and path.read_bytes() == before


def test_runs_that_do_not_learn_say_what_fit_can_do(tmp_path):
    """'train longer with --steps' was said to `advisor fit`, which has no --steps."""
    rows = [[u, n, 256, s, step, 1.0] for u in (1, 2, 4) for n in (1e6, 2e6, 4e6) for s in (0, 1)
            for step in (1000, 2000, 3000)]
    path = _write_csv(tmp_path / "flat.csv", rows)
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--input-dim", "10", "--n-boot", "0", "-o",
                                    str(tmp_path / "f.json")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "did not learn" in res.output and "--target-range" in res.output
    assert "--steps" not in res.output


def test_an_env_the_archive_lacks_is_named_with_those_it_has(data_dir, tmp_path):
    res = CliRunner().invoke(main, ["fit", str(data_dir / "dmc_bro_ablations.zip"),
                                    "--algorithm", "bro", "--env", "nosuch", "-o",
                                    str(tmp_path / "f.json")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "no runs for env 'nosuch'; its envs: acrobot-swingup," in res.output


def test_csv_of_runs_each_at_its_own_batch_size_fits_b_to_them(data_dir, tmp_path):
    """paper A's h1-pole runs, each config at its own batch size (48-768), as a CSV: B~ is
    the law of those batch sizes, as in the shipped fit; alternating ones are refused."""
    rows, odd = [], []
    for i, run in enumerate(read_runs(data_dir / "fitted_bs.zip", env="h1-pole-v0")):
        steps, values = run.steps["return"], run.values["return"]
        for s in range(values.shape[1]):
            for t in range(len(steps)):
                row = [run.utd, run.params, int(run.batch_size), s, int(steps[t]),
                       repr(float(values[t, s]))]
                rows.append(row)
                odd.append([*row[:2], 256 if i % 2 else 1024, *row[3:]])
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(main, ["fit", str(_write_csv(tmp_path / "pole.csv", rows)),
                                    "--algorithm", "bro", "--env", "h1-pole-v0", "--n-boot", "0",
                                    "--input-dim", "70", "-o", str(out)])
    assert res.exit_code == 0, res.output
    mine = json.loads(out.read_text())["batch_size"]
    shipped = advisor.load_fit("bro/h1-pole-v0").model.batch_size.model_dump(mode="json")
    assert mine.pop("kind") == shipped.pop("kind") == "law" and mine.pop("source") == "fitted"
    shipped.pop("source")
    assert mine == pytest.approx(shipped, rel=1e-6, abs=1e-12)
    res = CliRunner().invoke(main, ["fit", str(_write_csv(tmp_path / "odd.csv", odd)),
                                    "--algorithm", "bro", "--env", "h1-pole-v0", "--n-boot", "0",
                                    "--input-dim", "70", "-o", str(tmp_path / "odd.json")])
    assert res.exit_code == 2 and "mean relative error (at most 15%)" in res.output
