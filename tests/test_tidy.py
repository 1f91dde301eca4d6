"""Runs from any codebase's logs: a tidy CSV -> the same fit as the published archive."""

import csv
import json

import numpy as np
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
    assert "params 550000 is too small for a BroNet critic at input 100000" in res.output
    assert "(or check --input-dim)" in res.output and not out.exists()


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
    ([[1, 1e6, 256, 0, -5, 1.0]] + GOOD, HEADER, "line 2: step must not be negative"),
    (GOOD[:2] + [[1, 1e6, 256, 0, "ten", 1.0]], HEADER, "line 4: step must be a number"),
    (GOOD[:3] + [[1, 1e6, 256, 0, 2000, "1e999"]], HEADER, "line 5: return must be finite"),
    ([r for r in GOOD if r[3] == 0], HEADER, "has one seed"),
    ([[0, 1e6, 256, 0, 0, 1.0]] + GOOD, HEADER, "line 2: utd must be positive"),
    ([[1, 1e6, 25.5, 0, 0, 1.0]] + GOOD, HEADER, "line 2: batch_size must be a whole number"),
    (GOOD + [GOOD[0]], HEADER, "logs step 0 twice"),
    # a hostile round: the last 'return' was read silently; steps of 1e100 failed in numpy
    ([r + [0.0] for r in GOOD], HEADER + ["return"], "column 'return' more than once"),
    (GOOD[:3] + [[1, 1e6, 256, 1, 1e100, 1.0]], HEADER, "line 5: step must be at most 1e.15"),
    ([[1, 1e6, 256, -3, 0, 1.0]] + GOOD, HEADER, "line 2: seed must not be negative"),
    ([], HEADER, "has no rows"),
    # a third: these failed after the fit, with numpy warnings or a traceback, and no line
    ([[1e300, 1e6, 256, 0, 0, 1.0]] + GOOD, HEADER, "line 2: utd must lie within 1e-06"),
    ([[1, 1e300, 256, 0, 0, 1.0]] + GOOD, HEADER, "line 2: params must be at most 1e.15"),
])
def test_bad_csvs_are_one_line_errors_naming_the_line(tmp_path, rows, header, needle):
    path = _write_csv(tmp_path / "bad.csv", rows, header)
    with pytest.raises(CsvError, match=needle):
        read_csv_runs(path)
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--input-dim", "10", "-o", str(tmp_path / "f.json")])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and needle.split(":")[0] in res.output


def test_a_width_too_large_for_a_critic_names_its_line(tmp_path):
    """A hostile tester's: width 1e160 with --input-dim overflowed params to inf and ended in
    a traceback ('Residuals are not finite')."""
    header = ["utd", "width", "batch_size", "seed", "step", "return"]
    for width, needle in ((1e160, "line 2: width must be at most 1,000,000 units"),):
        path = _write_csv(tmp_path / "w.csv", [[1, width, 256, 0, 0, 1.0]] + GOOD, header)
        res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                        "--input-dim", "10", "-o", str(tmp_path / "f.json")])
        assert res.exit_code == 2 and res.output.count("\n") == 1 and needle in res.output
    with pytest.raises(CsvError, match="line 2: width 1000000 gives a critic of 8e.15 params"):
        read_csv_runs(_write_csv(tmp_path / "w.csv", [[1, 10**6, 256, 0, 0, 1.0]] + GOOD, header),
                      params_of=lambda w: 8e3 * w**2)


def test_widths_need_an_input_dim_or_a_params_column(tmp_path):
    rows = [[1, 64, 256, s, t, float(t)] for s in (0, 1) for t in (0, 1000)]
    path = _write_csv(tmp_path / "w.csv", rows, ["utd", "width", "batch_size", "seed", "step",
                                                 "return"])
    with pytest.raises(CsvError, match="--input-dim"):
        read_csv_runs(path)
    runs = read_csv_runs(path, params_of=lambda w: 8 * w * w)
    assert runs[0].params == 8 * 64 * 64 and runs[0].width == 64


def test_a_params_column_of_widths_is_named_as_such(tmp_path):
    """A hostile tester's: params 64-256 with --input-dim 23 said only that 'params(width)
    must increase with width and cover the trusted params range 6.4-2.56e+03'."""
    rows = [[u, w, 256, s, step, step / 1000 * u * w] for u in (1, 2, 4) for w in (64, 128, 256)
            for s in (0, 1) for step in range(0, 50_001, 5000)]
    path = _write_csv(tmp_path / "p.csv", rows)
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--input-dim", "23", "--n-boot", "0", "-o",
                                    str(tmp_path / "f.json")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert ("params 64 is too small for a BroNet critic at input 23: the fit's range reaches "
            "10x below its runs, so they need at least 4,840 params (width 1's, times that); if "
            "the column holds critic widths, name it width (or check --input-dim)") in res.output


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


def test_too_few_configs_for_a_free_fit_say_a_few_shot_fit_takes_them(tmp_path):
    """A new user's: 3 configs gave 'the law needs at least 5 (see advisor plan)', not that
    `--prior dmc` fits 3 (as `advisor plan` says)."""
    rows = [[u, n, 256, s, step, -1000 + step * u * n / 1e4 + 5 * s] for u, n in
            ((1, 1e5), (2, 1e5), (2, 2e5)) for s in (0, 1) for step in range(0, 5001, 500)]
    path = _write_csv(tmp_path / "three.csv", rows)
    args = ["fit", str(path), "--algorithm", "a", "--env", "e", "--input-dim", "10", "--n-boot",
            "0", "-o", str(tmp_path / "f.json")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and res.output == (
        "error: three.csv has 3 (utd, params) configurations; the law needs at least 5, or 3 "
        "with a few-shot fit's --prior dmc (see `advisor plan --prior dmc`)\n")
    res = CliRunner().invoke(main, [*args, "--prior", "dmc"])
    assert res.exit_code == 0, res.output


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


# A hostile round on CSVs from other codebases (session 21): what exports really look like.

def _text_csv(path, text):
    path.write_bytes(text.encode())
    return path


def _good_text(newline="\n"):
    lines = [",".join(HEADER)] + [",".join(str(v) for v in r) for r in GOOD]
    return newline.join(lines) + newline


def _returns(runs):
    return [(r.utd, r.params, r.batch_size, r.values["return"].tolist()) for r in runs]


def test_cr_line_endings_read_as_lf_and_a_stray_cr_is_named(tmp_path):
    """A file of bare CRs was a csv traceback; a CR inside a line (a column appended to a
    CRLF file) splits the row, so it is refused at its line."""
    lf = read_csv_runs(_text_csv(tmp_path / "lf.csv", _good_text()))
    assert _returns(read_csv_runs(_text_csv(tmp_path / "cr.csv", _good_text("\r")))) == \
        _returns(lf)
    mixed = _good_text().replace("\n", "\r,x\n", 3)  # header and lines 2, 3
    with pytest.raises(CsvError, match=r"^line 1: a carriage return inside the line"):
        read_csv_runs(_text_csv(tmp_path / "mixed.csv", mixed))


def test_an_unclosed_quote_is_refused_not_read_as_one_field(tmp_path):
    """The rows after an opening quote that never closes became one field of an ignored
    column (rows silently lost), or, past 128 KB, a csv traceback."""
    lines = _good_text().splitlines()
    lines[0] += ",name"
    lines[1:] = [ln + ',"run' if i == 1 else ln + ",run" for i, ln in enumerate(lines[1:])]
    with pytest.raises(CsvError, match=r"^lines 3-5: a quoted field in column name holds line"):
        read_csv_runs(_text_csv(tmp_path / "q.csv", "\n".join(lines) + "\n"))
    # on the last line, the open quote takes the commas after it: too few fields, said why
    short = "\n".join(_good_text().splitlines()[:3] + ['1,1e6,256,"0,5000,1'])
    with pytest.raises(CsvError, match=r"^line 4: 4 fields, .*a quote opened and never closed"):
        read_csv_runs(_text_csv(tmp_path / "short.csv", short + "\n"))
    closed = "\n".join(["env," + _good_text().splitlines()[0], '"cheetah,run",1,1e6,256,0,5000'])
    with pytest.raises(CsvError, match=r"^line 2: 6 fields, .*an empty field needs its comma"):
        read_csv_runs(_text_csv(tmp_path / "closed.csv", closed + "\n"))
    long = "\n".join(lines[:3] + [f"1,1e6,256,0,{5000 + k},1.0,x" for k in range(20_000)])
    with pytest.raises(CsvError, match=r"^line 3: .*field.*\(a quote opened and never closed"):
        read_csv_runs(_text_csv(tmp_path / "long.csv", long + "\n"))


def test_empty_env_and_several_envs_without_a_choice_are_refused(tmp_path):
    rows = [r + ["cheetah" if i % 2 else ""] for i, r in enumerate(GOOD)]
    path = _write_csv(tmp_path / "e.csv", rows, HEADER + ["env"])
    with pytest.raises(CsvError, match=r"^line 2: env is empty"):
        read_csv_runs(path, env="cheetah")
    rows = [r + [env] for env in ("a", "b") for r in GOOD]
    path = _write_csv(tmp_path / "ab.csv", rows, HEADER + ["env"])
    with pytest.raises(CsvError, match=r"more than one env \(a on line 2, b on line 6\): choose"):
        read_csv_runs(path)
    assert len(read_csv_runs(path, env="b")) == 1


def test_seeds_must_log_the_same_steps_or_be_rounded_to_them(tmp_path):
    """Steps merged across seeds: a seed logging 1001 where another logged 1000 halved D_J."""
    base = [[1, 1e6, 256, s, step, float(v + 100 * s)] for s in (0, 1)
            for step, v in ((1000, 500), (2000, 600), (3000, 700))]
    drift = [r[:4] + [r[4] + r[3] * 3] + r[5:] for r in base]  # seed 1 logs 1003, 2003, ...
    path = _write_csv(tmp_path / "drift.csv", drift)
    with pytest.raises(CsvError, match="seed 1 logs step 1003 and seed 0 does not.*--round-steps"):
        read_csv_runs(path)
    rounded = read_csv_runs(path, round_steps=1000)
    assert _returns(rounded) == _returns(read_csv_runs(_write_csv(tmp_path / "b.csv", base)))
    # a seed that stops earlier is fine (its last return is carried forward, as the archives)
    short = [r for r in base if not (r[3] == 1 and r[4] == 3000)]
    (run,) = read_csv_runs(_write_csv(tmp_path / "short.csv", short))
    assert run.values["return"].shape == (3, 2) and np.isnan(run.values["return"][2, 1])
    with pytest.raises(CsvError, match=r"line 3: seed 0 of .* logs step 1000 \(rounded to a "
                                       r"multiple of 1000\) twice \(first on line 2\)"):
        read_csv_runs(_write_csv(tmp_path / "dup.csv", [base[0], [*base[0][:4], 1200, 1.0],
                                                        *base[1:]]), round_steps=1000)


def test_a_seed_without_any_finite_return_is_refused_and_empty_means_missing(tmp_path):
    """An all-NaN seed counted towards the 2-seed minimum (every config fitted on one real
    seed, its notes saying 2); an empty return, as pandas writes NaN, is missing like 'nan'."""
    rows = [r[:5] + ["nan" if r[3] == 1 else r[5]] for r in GOOD]
    with pytest.raises(CsvError, match="seed 1 has no finite return"):
        read_csv_runs(_write_csv(tmp_path / "n.csv", rows))
    nan_rows = [r[:5] + ["nan" if (r[3], r[4]) == (1, 1000) else r[5]] for r in GOOD]
    empty = [r[:5] + ["" if (r[3], r[4]) == (1, 1000) else r[5]] for r in GOOD]
    a = read_csv_runs(_write_csv(tmp_path / "a.csv", nan_rows))[0].values["return"]
    b = read_csv_runs(_write_csv(tmp_path / "b.csv", empty))[0].values["return"]
    assert np.array_equal(a, b, equal_nan=True) and np.isnan(a[1, 1])


def test_widths_that_contradict_each_other_or_params_are_refused(tmp_path):
    header = HEADER[:1] + ["width"] + HEADER[1:]
    rows = [r[:1] + [64] + r[1:] for r in GOOD]
    rows[3][1] = 128  # the last row of the config: it used to win silently
    with pytest.raises(CsvError, match="line 5: width 128 differs from width 64 on line 2"):
        read_csv_runs(_write_csv(tmp_path / "w.csv", rows, header))
    rows[3][1] = 64
    path = _write_csv(tmp_path / "wp.csv", rows, header)
    assert read_csv_runs(path, params_of=lambda w: 1e6 * (w / 64) ** 2)[0].width == 64
    with pytest.raises(CsvError, match="line 2: width 64 is a critic of 250000 params for the "
                                       "given input size, but params says 1000000"):
        read_csv_runs(path, params_of=lambda w: 2.5e5)


def test_headers_as_exports_write_them(tmp_path):
    """Upper-case names, a pandas index column (unnamed) and a trailing comma are read; a
    critic_loss the fit does not use may be inf or text; tabs get a hint."""
    lines = _good_text().splitlines()
    text = "\n".join([",Return,UTD,params,Batch_Size,seed,step,critic_loss,".replace(
        "Return,UTD,params,Batch_Size,seed,step", "utd,params,batch_size,seed,step,Return")]
        + [f"{k},{ln},{'inf' if k else 'n/a'}," for k, ln in enumerate(lines[1:])]) + "\n"
    (run,) = read_csv_runs(_text_csv(tmp_path / "pandas.csv", text))
    assert _returns([run]) == _returns(read_csv_runs(_text_csv(tmp_path / "g.csv",
                                                               _good_text())))
    assert "critic_loss" not in run.values  # no finite value: not a metric of the run
    with pytest.raises(CsvError, match="split by tabs: separate columns with commas"):
        read_csv_runs(_text_csv(tmp_path / "t.csv", _good_text().replace(",", "\t")))


def test_a_target_range_no_run_reaches_is_refused(cheetah_csv, tmp_path):
    """--target-range 700 2000 on runs that top out near 900 fitted 16 thresholds no run
    reached, and recommend then promised returns of 1776."""
    res = CliRunner().invoke(main, ["fit", str(cheetah_csv), "--algorithm", "m", "--env",
                                    "cheetah-run", "--target-range", "700", "2000",
                                    "--input-dim", "23", "--n-boot", "0", "-o",
                                    str(tmp_path / "f.json")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "above every run's best mean return" in res.output


def test_report_and_plot_read_the_csv_a_fit_came_from(cheetah_csv, tmp_path):
    """They refused it ('neither a folder nor a zip'): a CSV user never saw the parity plot.
    The CSV's steps are rounded as the fit's recorded --round-steps says."""
    pytest.importorskip("matplotlib")
    lines = cheetah_csv.read_text().splitlines()  # odd seeds log 3 steps late: drift
    drift = _text_csv(tmp_path / "drift.csv", "\n".join(lines[:1] + [
        ",".join(f[:4] + [str(int(f[4]) + 3 * (int(f[3]) % 2))] + f[5:])
        for f in (ln.split(",") for ln in lines[1:])]) + "\n")
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(main, ["fit", str(drift), "--algorithm", "m", "--env",
                                    "cheetah-run", "--target-range", "400", "750",
                                    "--input-dim", "23", "--n-boot", "0", "--round-steps", "10",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    cheetah_csv = drift  # unreadable without the recorded rounding
    from calibration.tidy import _recorded

    assert float(_recorded(advisor.load_fit(str(out)).model.provenance.command,
                           "--round-steps")) == 10
    png = tmp_path / "parity.png"
    res = CliRunner().invoke(main, ["plot", "parity", str(out), "--runs", str(cheetah_csv),
                                    "-o", str(png)])
    assert res.exit_code == 0 and png.stat().st_size > 0, res.output
    from calibration.report import load_context

    ctx = load_context(str(out), cheetah_csv, n_boot=0)
    assert ctx.table is not None and np.isfinite(ctx.table.data).sum() > 0
    res = CliRunner().invoke(main, ["fit", str(tmp_path / "nope.zip"), "--algorithm", "m",
                                    "--env", "e", "--round-steps", "10", "-o",
                                    str(tmp_path / "g.json")])
    assert res.exit_code == 2


def test_mixed_batch_sizes_name_the_config_and_dash_is_not_a_path(tmp_path):
    rows = [[u, n, 256, s, step, float(step) / 100 * u] for u in (1, 2) for n in (1e6, 2e6)
            for s in (0, 1) for step in (1000, 2000, 3000)]
    rows += [[2, 2e6, 512, s, step, float(step) / 100] for s in (0, 1) for step in (1000, 2000)]
    path = _write_csv(tmp_path / "mixed.csv", rows)
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--input-dim", "10", "--n-boot", "0", "--target-range", "25",
                                    "40", "-o", str(tmp_path / "f.json")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "utd 1, params 1000000 has batch sizes 256 of 256, 512" in res.output
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--input-dim", "10", "-o", "-"])
    assert res.exit_code == 2 and "/dev/stdout" in res.output, res.output


def test_the_report_reads_the_csv_as_the_fit_did(cheetah_csv, tmp_path):
    """A second round: the report filtered the CSV by the fit id's env (--name), not the
    recorded --env (another env's rows used silently), and checked widths against params with
    an architecture the fit never had (it fitted one to the file's own columns)."""
    from types import SimpleNamespace

    from calibration.tidy import read_fit_csv

    lines = cheetah_csv.read_text().splitlines()
    halved = [",".join([*ln.split(",")[:5], str(float(ln.split(",")[5]) / 2)]) + ",cheetah"
              for ln in lines[1:]]
    both = _text_csv(tmp_path / "both.csv", "\n".join(
        [lines[0] + ",env"] + [ln + ",cheetah-run" for ln in lines[1:]] + halved) + "\n")
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(main, ["fit", str(both), "--algorithm", "m", "--env", "cheetah-run",
                                    "--name", "cheetah", "--target-range", "400", "750",
                                    "--input-dim", "23", "--n-boot", "0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    mine = read_fit_csv(both, advisor.load_fit(str(out)))
    assert _returns(mine) == _returns(read_csv_runs(both, env="cheetah-run"))
    # width and params columns that no BroNet matches, fitted without --input-dim
    rows = [r[:1] + [w] + r[1:] for w, n in ((64, 1e6), (128, 3e6)) for r in GOOD
            for r in [[r[0], n, *r[2:]]]]
    path = _write_csv(tmp_path / "wp.csv", rows, ["utd", "width", *HEADER[1:]])
    fit = SimpleNamespace(id="a/e", params=lambda w: 8.0 * w * w, model=SimpleNamespace(
        provenance=SimpleNamespace(command=f"advisor fit {path} --algorithm a --env e")))
    assert [r.width for r in read_fit_csv(path, fit)] == [64, 128]
    fit.model.provenance.command += " --input-dim 10"
    with pytest.raises(CsvError, match="width 64 is a critic of 32768 params"):
        read_fit_csv(path, fit)


def test_short_rows_bad_metrics_and_step_grids_a_second_round(tmp_path):
    """A row missing its last fields lost its return silently; an inf critic_loss was kept
    as inf (a log-scaled TD plot failed); a tiny --round-steps overflowed; rounding could
    pass the step limit checked before it; a blank line before the header read as empty."""
    text = _good_text().splitlines()
    short = "\n".join(text[:2] + [text[2].rsplit(",", 1)[0]] + text[3:]) + "\n"
    with pytest.raises(CsvError, match=r"^line 3: 5 fields, fewer than the header's 6"):
        read_csv_runs(_text_csv(tmp_path / "short.csv", short))
    losses = "\n".join([text[0] + ",critic_loss"] + [ln + (",inf" if k else ",0.5")
                                                     for k, ln in enumerate(text[1:])]) + "\n"
    (run,) = read_csv_runs(_text_csv(tmp_path / "loss.csv", losses))
    assert run.values["critic_loss"][0, 0] == 0.5
    assert np.isnan(run.values["critic_loss"]).sum() == 3
    with pytest.raises(CsvError, match="round_steps must be 1 to 1e.15 env steps"):
        read_csv_runs(_text_csv(tmp_path / "g.csv", _good_text()), round_steps=1e-310)
    far = [[1, 1e6, 256, s, step, 1.0] for s in (0, 1) for step in (0, 5e14, 1e15)]
    with pytest.raises(CsvError, match="rounds to 1.2e.15, past 1e.15 env steps"):
        read_csv_runs(_write_csv(tmp_path / "far.csv", far), round_steps=6e14)
    blank_first = "\n,,\n" + _good_text()
    assert _returns(read_csv_runs(_text_csv(tmp_path / "b.csv", blank_first))) == \
        _returns(read_csv_runs(_text_csv(tmp_path / "g2.csv", _good_text())))
    res = CliRunner().invoke(main, ["fit", str(tmp_path / "g.csv"), "--algorithm", "a",
                                    "--env", "e", "--round-steps", "1e-310", "-o",
                                    str(tmp_path / "f.json")])
    assert res.exit_code == 2 and "must be 1 to 1e+15 env steps" in res.output, res.output


def test_td_plot_of_a_csv_without_widths_labels_params(tmp_path):
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    from calibration.report import figure_td

    rows = [[1, n, b, s, step, 1.0, 0.1 * b / n * 1e6] for n in (1e6, 4e6) for b in (128, 256)
            for s in (0, 1) for step in (1000, 2000)]
    runs = read_csv_runs(_write_csv(tmp_path / "td.csv", rows,
                                    HEADER + ["validation_critic_loss"]))
    fig = figure_td(SimpleNamespace(runs=runs, fit=SimpleNamespace(id="a/e")))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["params 1e+06", "params 4e+06"]


def test_text_that_is_not_utf8_names_the_line_or_utf16(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes(_good_text().encode() + b"1,1e6,256,0,9000,1.0\n".replace(b"1.0",
                                                                               b"caf\xe9"))
    with pytest.raises(CsvError, match=r"not UTF-8 text \(byte 0xe9 on line 6\)"):
        read_csv_runs(latin)
    wide = tmp_path / "wide.csv"
    wide.write_bytes(_good_text().encode("utf-16"))
    with pytest.raises(CsvError, match="is UTF-16 text .PowerShell's default"):
        read_csv_runs(wide)


def test_a_second_review_thresholds_rounding_and_widths(tmp_path):
    """check_high_target read the raw mean (seeds that stopped left out), not D_J's carried-
    forward one; build_fit(round_steps=...) recorded a command without it; an archive fit's
    report could not read a width-only CSV."""
    from types import SimpleNamespace

    from calibration.build import BuildError, check_high_target, fit_command
    from calibration.tidy import read_fit_csv

    rows = [[1, 1e6, 256, 0, 1000, 100.0], [1, 1e6, 256, 0, 2000, 1000.0],
            [1, 1e6, 256, 1, 1000, 100.0]]  # seed 1 stopped: D_J's mean peaks at 550
    (run,) = read_csv_runs(_write_csv(tmp_path / "early.csv", rows))
    check_high_target([run], [300.0, 550.0])
    with pytest.raises(BuildError, match="at most 550"):
        check_high_target([run], [300.0, 900.0])
    command = fit_command("r.csv", "a", "e", "f.json", 0, None, round_steps=1000.0)
    assert command.endswith("--round-steps 1e+03")
    widths = [[1, 64, 256, s, t, 1.0 * t] for s in (0, 1) for t in (1000, 2000)]
    path = _write_csv(tmp_path / "w.csv", widths, ["utd", "width", *HEADER[2:]])
    fit = SimpleNamespace(id="bro/e", params=lambda w: 8.0 * w * w, model=SimpleNamespace(
        provenance=SimpleNamespace(command="advisor fit x.zip --algorithm bro --env e")))
    assert read_fit_csv(path, fit)[0].params == 8.0 * 64 * 64


def test_steps_logged_in_millions_are_flagged_by_the_fit_checks(cheetah_csv, tmp_path):
    """A step column in millions of env steps fitted 'runs up to 1 env step' in silence; the
    fit now fails a `steps` check, recorded in the file and repeated by `recommend`."""
    from calibration.checks import fit_checks

    text = cheetah_csv.read_text().splitlines()
    k = text[0].split(",").index("step")
    rows = [r.split(",") for r in text[1:]]
    for r in rows:
        r[k] = repr(int(r[k]) / 1e6)
    path = _write_csv(tmp_path / "millions.csv", rows)
    out = tmp_path / "f.json"
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "bro", "--env",
                                    "cheetah-run", "--target-range", "400", "750", "--input-dim",
                                    "23", "--n-boot", "0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "FAIL steps: the longest run ends at 1 env steps, under 100: a step column in " \
        "thousands or millions of env steps?" in res.output
    fit = advisor.load_fit(str(out))
    assert any("FAILED: steps" in n for n in fit.model.provenance.notes)
    assert [c.name for c in fit_checks(fit.model) if not c.ok] == ["steps"]
    shipped = advisor.load_fit("bro/cheetah-run").model  # the same runs in env steps: silent
    assert "steps" not in [c.name for c in fit_checks(shipped)]


def test_params_in_millions_and_a_single_utd_are_flagged_by_the_fit_checks(cheetah_csv,
                                                                           tmp_path):
    """A hostile tester's: a params column in millions fitted, and `recommend` put 1e5 times
    too little compute within budget; runs at one utd fitted an alpha of noise with every
    check passing. Now a `params` and an `axes` check fail, recorded and repeated."""
    from calibration.checks import fit_checks

    text = cheetah_csv.read_text().splitlines()
    head = text[0].split(",")
    k, u = head.index("params"), head.index("utd")
    shipped = advisor.load_fit("bro/cheetah-run")
    # a width column too, as a codebase logs it (the shipped fit's BroNet widths)
    rows = [[*r, str(round(float(shipped.width(float(r[k])))))] for r in text[1:]
            for r in [r.split(",")]]

    def fit(rows, name):
        out = tmp_path / f"{name}.json"
        csv_path = _write_csv(tmp_path / f"{name}.csv", rows, header=[*HEADER, "width"])
        res = CliRunner().invoke(main, ["fit", str(csv_path),
                                        "--algorithm", "bro", "--env", "cheetah-run",
                                        "--target-range", "400", "750", "--n-boot", "0", "-o",
                                        str(out)])
        assert res.exit_code == 0, res.output
        return res.output, advisor.load_fit(str(out))

    output, millions = fit([[*r[:k], repr(float(r[k]) / 1e6), *r[k + 1:]] for r in rows],
                           "millions")
    assert "FAIL params: the largest critic has 26.31 params, under 1000" in output
    assert "a params column in thousands or millions?" in output
    assert [c.name for c in fit_checks(millions.model) if not c.ok] == ["params"]
    rec = advisor.recommend(advisor.Budget(data=5e5), fit=millions)
    assert any("FAILED: params" in w for w in rec.warnings)
    output, one = fit([r for r in rows if float(r[u]) == 2], "one-utd")
    assert "FAIL axes: the runs have 1 distinct utd (2): alpha is not determined" in output
    assert any("FAILED: axes" in n for n in one.model.provenance.notes)
    table = [c.name for c in fit_checks(shipped.model, configs=([1, 2, 5], [1e5, 1e6, 1e7]))]
    assert "params" not in table and "axes" not in table


def _width_rows(params_of, critic="", widths=(16, 32, 64), utds=(1, 2)):
    """Rows of learning runs at 3 widths, params_of(width) each, with a critic column."""
    return [[u, w, params_of(w), critic, 64, s, step,
             -1500 + 1300 * (1 - np.exp(-step * u * w ** 0.5 * (1 + 0.05 * s) / 4000))]
            for u in utds for w in widths for s in (0, 1) for step in range(200, 4001, 200)]


WIDTH_HEADER = ["utd", "width", "params", "critic", "batch_size", "seed", "step", "return"]


@pytest.mark.parametrize("params_of, critic, needle", [
    # a plain MLP's count and one more param per unit of width: no MLP has it (any critic of
    # an MLP's form reads as one: a LayerNorm MLP's 2w^2 + 22w + 2 as a plain MLP on 8 inputs)
    (lambda w: 2 * (5 * w + w * w + w + w + 1) + w, "mlp",
     "the critic column says mlp, but params(width) = 2w^2 + 15w + 2"),
    # a plain MLP said to be a BroNet (3 hidden layers would read as one residual block)
    (lambda w: 2 * (5 * w + 2 * (w * w + w) + w + 1), "bronet", "the critic column says bronet"),
    (lambda w: 1000 * w - w * w, "", "params do not grow with width as a critic's do"),
    (lambda w: 6 * w + 1 + (w == 32), "", "params do not grow with width as a critic's do"),
    (lambda w: 2 * w * w, "lstm", "line 2: critic must be mlp or bronet (or empty: another "
                                  "critic), got 'lstm'"),
])
def test_the_critic_column_is_checked_against_params(params_of, critic, needle, tmp_path):
    """A hostile tester's: a BroNet with a scalar head has an MLP's params(width), so the fit
    cannot tell them apart (the exports built the wrong critic), and a concave params(width)
    was a pydantic traceback; the CSV's critic column says which, and is checked."""
    path = _write_csv(tmp_path / "w.csv", _width_rows(params_of, critic), WIDTH_HEADER)
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--n-boot", "0", "-o", str(tmp_path / "f.json")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_a_critic_column_of_two_kinds_or_none_is_not_exported_as_either(tmp_path):
    mlp = lambda w: 2 * (5 * w + w * w + w + w + 1)  # noqa: E731 (2 layers, 2 Q-nets, 4 inputs)
    rows = _width_rows(mlp, "mlp", utds=(1,)) + _width_rows(mlp, "bronet", utds=(2,))
    path = _write_csv(tmp_path / "mixed.csv", rows, WIDTH_HEADER)
    args = ["--algorithm", "a", "--env", "Pendulum-v1", "--n-boot", "0", "-o"]
    res = CliRunner().invoke(main, ["fit", str(path), *args, str(tmp_path / "f.json")])
    assert res.exit_code == 2 and "the critic column names 'bronet' and 'mlp'" in res.output
    rows[len(rows) // 2][3] = "mlp"  # one row of a config says another critic than its others
    path = _write_csv(tmp_path / "mixed.csv", rows, WIDTH_HEADER)
    res = CliRunner().invoke(main, ["fit", str(path), *args, str(tmp_path / "f.json")])
    assert res.exit_code == 2 and res.output == (
        "error: line 123: critic 'bronet' differs from 'mlp' on line 122 for the same utd 2, "
        "params 738, batch size 64\n")
    # no critic column: the runs' own critic, with exact integer coefficients, not exported
    path = _write_csv(tmp_path / "none.csv", _width_rows(mlp), WIDTH_HEADER)
    res = CliRunner().invoke(main, ["fit", str(path), *args, str(tmp_path / "f.json")])
    assert res.exit_code == 0, res.output
    assert advisor.load_fit(str(tmp_path / "f.json")).model.architecture.coefficients == (
        2, 14, 2)
    res = CliRunner().invoke(main, ["recommend", "--fit", str(tmp_path / "f.json"), "--data",
                                    "3000", "--format", "zoo", "--env", "Pendulum-v1"])
    assert res.exit_code == 2 and "its CSV did not say what critic that is" in res.output


def test_very_wide_mlps_keep_exact_params_of_width(tmp_path):
    """A hostile tester's: at widths up to 65,536 least squares gave the constant term as
    1.999994, and the critic was no longer read as the MLP it is."""
    mlp = lambda w: 2 * (5 * w + w * w + w + w + 1)  # noqa: E731 (2 layers, 2 Q-nets, 4 inputs)
    path = _write_csv(tmp_path / "wide.csv", _width_rows(mlp, "mlp", widths=(16, 4096, 65536),
                                                         utds=(1, 2, 4)), WIDTH_HEADER)
    res = CliRunner().invoke(main, ["fit", str(path), "--algorithm", "a", "--env", "e",
                                    "--n-boot", "0", "-o", str(tmp_path / "f.json")])
    assert res.exit_code == 0, res.output
    from advisor.integrations.critic import MlpShape, mlp_shape

    fit = advisor.load_fit(str(tmp_path / "f.json"))
    assert fit.model.architecture.coefficients == (2, 14, 2)
    assert mlp_shape(fit) == MlpShape(input_dim=4, layers=2, qnets=2)


def test_a_critic_column_needs_widths_without_input_dim_and_any_case_is_read(tmp_path):
    """A hostile tester's: with --input-dim (widths counted as this project's BroNet) the
    critic column was ignored, and its rl-zoo file built a 100-quantile BroNet's Dense layers
    for MLP runs; "MLP" (as the project writes it) was refused."""
    mlp = lambda w: 2 * (5 * w + w * w + w + w + 1)  # noqa: E731 (2 layers, 2 Q-nets, 4 inputs)
    rows = _width_rows(mlp, "MLP")
    no_width = [[u, n, c, *rest] for u, _, n, c, *rest in rows]
    header = [h for h in WIDTH_HEADER if h != "width"]
    args = ["fit", "--algorithm", "a", "--env", "e", "--n-boot", "0", "-o",
            str(tmp_path / "f.json")]
    res = CliRunner().invoke(main, [*args, str(_write_csv(tmp_path / "p.csv", no_width, header)),
                                    "--input-dim", "4"])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "the critic column says mlp" in res.output and "log width and params" in res.output
    res = CliRunner().invoke(main, [*args, str(_write_csv(tmp_path / "w.csv", rows,
                                                          WIDTH_HEADER))])
    assert res.exit_code == 0, res.output
    assert advisor.load_fit(str(tmp_path / "f.json")).model.architecture.description.startswith(
        "critic of the CSV's runs, a plain MLP")
