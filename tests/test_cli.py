import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import advisor
from advisor.cli import main

runner = CliRunner()


def run(*args):
    return runner.invoke(main, [str(a) for a in args])


def test_recommend_table_shows_the_configuration():
    res = run("recommend", "--compute", "1e17")
    assert res.exit_code == 0, res.output
    assert "utd" in res.output and "batch_size" in res.output and "predicted data" in res.output


def test_recommend_json_matches_the_python_api():
    res = run("recommend", "--fit", "bro/h1-stand-v0", "--data", "5e5", "--format", "json")
    assert res.exit_code == 0
    rec = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-stand-v0")
    assert json.loads(res.output) == json.loads(rec.model_dump_json())


def test_recommend_args_are_cleanrl_flags():
    res = run("recommend", "--fit", "bro/h1-stand-v0", "--data", "5e5", "--format", "args")
    rec = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-stand-v0")
    assert res.stdout.split() == ["--total-timesteps", str(math.ceil(rec.predicted_data)),
                                  "--batch-size", str(rec.batch_size), "--q-lr", "0.0003",
                                  "--policy-lr", "0.0003", "--learning-starts", "2500"]
    assert "note: CleanRL's sac_continuous_action.py" in res.stderr


def test_the_cleanrl_note_prints_the_critic_share_as_a_plain_percentage():
    """It printed '2.8e+02% of the fit's' for the Hopper fit's smallest critic."""
    from advisor.integrations.cleanrl import _percent

    assert [_percent(x) for x in (2.83, 0.45, 0.0052, 31.2)] == ["283%", "45%", "0.52%",
                                                                 "3,120%"]
    res = CliRunner().invoke(main, ["recommend", "--fit", "bro-torch/Hopper-v5", "--data", "1e4",
                                    "--format", "args"])
    assert res.exit_code == 0 and "e+" not in res.output.split("params at ")[1]


def test_recommend_yaml_holds_the_recommendation():
    res = run("recommend", "--total", "1e18", "--format", "yaml")
    assert res.exit_code == 0
    keys = [line.split(":")[0] for line in res.output.splitlines() if not line.startswith(" ")]
    assert {"batch_size", "learning_rate", "gradient_steps", "train_freq", "extrapolated",
            "warnings"} <= set(keys)


def test_fits_and_show_list_and_describe():
    res = run("fits")
    assert res.exit_code == 0 and "bro/h1-crawl-v0" in res.output
    res = run("show", "bro/humanoid-stand")
    assert res.exit_code == 0 and "leave-one-config-out" in res.output and "source:" in res.output
    # The interval's method on a line of its own (escaping control characters had printed
    # our own line break as a literal backslash-n).
    assert "\\n" not in res.output
    assert any(line.startswith("interval method: ") for line in res.output.splitlines())
    # One line per band of targets, as Fit.interval applies them (schema 3).
    bands = [line for line in res.output.splitlines() if line.startswith("  targets ")]
    pi = advisor.load_fit("bro/humanoid-stand").model.prediction_interval
    assert len(bands) == len(pi.bands) == 5
    top = pi.bands[-1]
    assert f"targets {top.target_low:.4g}-{top.target_high:.4g}: " in bands[-1]
    assert f"{np.exp(pi.offsets(0.8, top.target_high)[1]):.2f}x (one seed" in bands[-1]
    # Which configurations' runs stopped short of the top target (domain.runs).
    (runs,) = [line for line in res.output.splitlines() if line.startswith("runs: ")]
    short = [r for r in advisor.load_fit("bro/humanoid-stand").model.domain.runs
             if r.reached < 850]
    assert [(r.utd, round(r.params, -3), r.reached) for r in short] == [
        (1.0, 183_000, pytest.approx(821.05, abs=0.01)),
        (8.0, 183_000, pytest.approx(676.32, abs=0.01))]
    assert runs == ("runs:         17 of 19 configurations reached the top target 850; short "
                    "of it (the highest threshold their runs passed): utd 1 params 1.83e+05 "
                    "(passed 821.1 in 1e+06 steps), utd 8 params 1.83e+05 (passed 676.3 in "
                    "1e+06 steps)"), runs


def test_fits_says_which_fits_failed_a_check():
    """A new user took bro/h1-stand-v0 (8.0% LOCO error, the table's best) for the cleanest
    fit; it failed its batch-size check when it was made, which only `recommend` said."""
    rows = {line.split()[0]: line for line in run("fits").output.split("\n\n")[0].splitlines()}
    assert "checks" in rows["id"]
    assert "FAILED: batch size" in rows["bro/h1-stand-v0"]
    assert "FAILED: baseline" in rows["bro/hopper-hop"]
    assert "FAILED" not in rows["bro/h1-crawl-v0"] and " ok " in rows["bro/h1-crawl-v0"]
    listed = {r["id"]: r for r in json.loads(run("fits", "--format", "json").output)}
    assert listed["bro/h1-stand-v0"]["failed_checks"] == ["batch size"]
    assert listed["bro/h1-crawl-v0"]["failed_checks"] == []


def test_fits_table_columns_line_up():
    """Every row's numbers end under their header (they did not on the myo rows, whose targets
    print as 0.3176-0.704)."""
    lines = run("fits").output.split("\n\n")[0].splitlines()
    head = lines[0]
    for name in ("targets", "configs", "LOCO err", "80% cov"):
        end = head.index(name) + len(name)
        for line in lines[1:]:
            assert line[end - 1] != " " and line[end] == " ", (name, line)


@pytest.mark.parametrize("args, needle", [
    (["recommend", "--compute", "-1"], "positive"),
    (["recommend", "--compute", "nan"], "positive"),
    (["recommend", "--data", "inf"], "positive"),
    (["recommend"], "needs compute"),
    (["recommend", "--compute", "1e17", "--fit", "bro/h1-crowl-v0"], "did you mean"),
    (["recommend", "--compute", "1e17", "--target", "5000"], "between"),
    (["recommend", "--data", "10"], "needs more than"),
    (["recommend", "--total", "1e18", "--data", "1e5"], "not both"),
    (["recommend", "--delta", "1e9", "--data", "1e6"], "--total on the command line"),
    (["show", "nope/nope"], "unknown fit"),
    (["validate", "/nonexistent/fit.json"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(args, needle):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert needle in res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("error:")]) == 1


def test_help_teaches_the_budget_problems():
    res = run("recommend", "--help")
    assert "highest target" in res.output and "FLOPs" in res.output


@pytest.mark.parametrize("args, needle", [
    (["--compute", "1e400"], "1e400 is beyond the largest float"),
    (["--data", "-1e999"], "-1e999 is beyond the largest float"),
    (["--compute", "1e17", "--target", "1e309"], "'--target': 1e309 is beyond"),
    (["--compute", "inf"], "compute must be a positive finite number of FLOPs, got inf"),
    (["--compute", "x1"], "'x1' is not a number"),
])
def test_an_overflowing_number_is_named_as_such_not_as_inf(args, needle):
    """float('1e400') is inf: the error says what was typed and why, not 'got inf'."""
    res = run("recommend", *args)
    assert res.exit_code == 2 and needle in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["abc", "",
                                                                                    "1e400"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flag=st.sampled_from(["--compute", "--data", "--total"]), x=numbers,
       target=st.none() | st.floats(allow_nan=True))
def test_random_cli_budgets_exit_0_or_2_without_traceback(flag, x, target):
    args = ["recommend", flag, str(x)]
    if target is not None:
        args += ["--target", str(target)]
    res = run(*args)
    assert res.exit_code in (0, 2), res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_a_missing_extra_is_named_with_the_install_command_for_a_checkout():
    import click

    from calibration.cli import _need_extra

    with pytest.raises(click.UsageError) as info:
        _need_extra("plot", ("json", "no_such_module_xyz"), "plots")
    assert info.value.message == ("the plot extra is needed for plots (no_such_module_xyz is not "
                                  "installed): pip install '.[plot]' in the repository")
    _need_extra("plot", ("json",), "plots")  # present: nothing said
    with pytest.raises(click.UsageError) as info:  # torch pinned: unpinned is a CUDA build
        _need_extra("calibrate", ("no_such_module_xyz",), "calibration")
    assert info.value.message.endswith("pip install torch==2.13.0 '.[calibrate]' in the "
                                       "repository")


def test_a_far_off_fit_id_gets_no_suggestion():
    from advisor.errors import UnknownFitError
    from advisor.registry import _resolve

    with pytest.raises(UnknownFitError) as info:  # shares only the 'bro/' prefix
        _resolve("bro/nope")
    assert "did you mean" not in str(info.value)
    with pytest.raises(UnknownFitError, match="did you mean 'bro/dog-run'"):
        _resolve("bro/dog-rn")


def test_an_env_without_its_algorithm_is_pointed_to_its_fits():
    from advisor.errors import UnknownFitError
    from advisor.registry import _resolve

    with pytest.raises(UnknownFitError, match="did you mean 'bro-torch/Hopper-v5'"):
        _resolve("Hopper-v5")
    with pytest.raises(UnknownFitError, match="did you mean 'bro/h1-stand-v0' or "
                                              "'simbav2/h1-stand-v0'"):
        _resolve("H1-Stand-v0")


def test_another_task_note_suggests_calibrate_only_for_an_env_gymnasium_knows():
    pytest.importorskip("gymnasium")
    res = run("recommend", "--compute", "1e17", "--format", "zoo", "--env", "Humanoid-v5")
    assert "`advisor calibrate --env Humanoid-v5` makes one" in res.stderr
    res = run("recommend", "--compute", "1e17", "--format", "zoo", "--env", "Humanoidd-v5")
    assert res.exit_code == 0 and "does not know env id 'Humanoidd-v5'" in res.stderr
    assert "a fit of another task than Humanoidd-v5" in res.stderr
    assert "advisor calibrate" not in res.stderr  # it would fail on that id


def test_cleanrl_flags_without_env_say_which_env_cleanrl_trains():
    """--format args without --env: CleanRL's script then trains its own default env, not the
    fit's task: a note says so (with --env there is none of it)."""
    res = run("recommend", "--compute", "1e17", "--format", "args")
    assert res.exit_code == 0 and "--env-id" not in res.stdout
    assert "note: no --env: CleanRL's script trains its own default --env-id, Hopper-v4" in (
        res.stderr)
    assert "a fit of another task than Hopper-v4" in res.stderr  # h1-crawl's numbers
    res = run("recommend", "--fit", "bro-torch/Hopper-v5", "--data", "1e4", "--target", "150",
              "--format", "args")
    assert res.exit_code == 0 and "another task" not in res.stderr  # Hopper, v4 or v5
    res = run("recommend", "--fit", "bro/h1-crawl-v0", "--compute", "1e17", "--format", "args",
              "--env", "h1-crawl-v0")
    assert res.exit_code == 0 and "no --env" not in res.stderr


def test_a_calibrated_fit_keys_its_client_output_by_its_own_env_without_env(tmp_path):
    """A fit `advisor calibrate --env Pendulum-v1` made knows its env: rl-zoo files and CleanRL
    flags default to it (a note says so), where an archive fit's zoo output needs --env."""
    pytest.importorskip("gymnasium")
    fit = advisor.load_fit("bro-torch/Pendulum-v1")
    assert fit.env_id == "Pendulum-v1" and advisor.load_fit("bro/h1-crawl-v0").env_id is None
    said = ("note: no --env: the output is for Pendulum-v1, the env bro-torch/Pendulum-v1's "
            "runs were on (advisor calibrate --env)")
    res = run("recommend", "--fit", "bro-torch/Pendulum-v1", "--data", "4000", "--format", "zoo")
    assert res.exit_code == 0 and said in res.stderr, res.output
    assert '\n"Pendulum-v1":\n  n_timesteps: ' in res.stdout
    res = run("recommend", "--fit", "bro-torch/Pendulum-v1", "--data", "4000", "--format", "args")
    assert res.exit_code == 0 and res.stdout.startswith("--env-id Pendulum-v1 ") and said in (
        res.stderr)
    assert "another task" not in res.stderr and "Hopper-v4" not in res.stderr
    res = run("export", "bro-torch/Pendulum-v1", "--kind", "data", "--budgets", "4000",
              "--format", "zoo")
    assert res.exit_code == 0 and '\n"Pendulum-v1":\n' in res.stdout and said in res.stderr
    # --env still wins (with the other-task note), and a fit file at a path works the same
    res = run("recommend", "--fit", "bro-torch/Pendulum-v1", "--data", "4000", "--format", "zoo",
              "--env", "InvertedPendulum-v5")
    assert '\n"InvertedPendulum-v5":\n' in res.stdout and "no --env" not in res.stderr
    path = tmp_path / "mine.json"
    from advisor.fitfile import write_fit_file

    write_fit_file(fit.model, path)
    assert advisor.load_fit(str(path)).env_id == "Pendulum-v1"
    res = run("recommend", "--data", "4e5", "--format", "zoo")  # bro/h1-crawl-v0: no env
    assert res.exit_code == 2 and "give --env ENV_ID" in res.output
    # a budget it cannot meet: the error alone, no note about the output first (a tester's)
    res = run("recommend", "--fit", "bro-torch/Pendulum-v1", "--data", "100", "--format", "args")
    assert res.exit_code == 2 and res.output.startswith("error: data budget 100 env steps")
    res = run("export", "bro-torch/Pendulum-v1", "--kind", "data", "--budgets", "100",
              "--format", "zoo")
    assert res.exit_code == 2 and res.output.startswith("error: data budget 100 env steps")


def test_a_calibrated_fits_recommendation_carries_its_env_to_the_python_exports():
    """rec.env_id: the Python zoo and CleanRL outputs default to it as the CLI does, and a
    fit of published runs (no env) still needs one for rl-zoo and leaves CleanRL its own."""
    pytest.importorskip("gymnasium")
    from advisor.errors import ExportError
    from advisor.integrations.cleanrl import cleanrl_flags
    from advisor.integrations.zoo import zoo_hyperparams, zoo_yaml

    rec = advisor.recommend(advisor.Budget(data=4000), fit="bro-torch/Pendulum-v1")
    assert rec.env_id == "Pendulum-v1"
    assert list(zoo_hyperparams(rec)) == ["Pendulum-v1"]
    text = zoo_yaml(rec)
    assert '\n"Pendulum-v1":\n  n_timesteps: ' in text and "--env Pendulum-v1 -conf" in text
    assert text.startswith("# advisor: SAC on Pendulum-v1 from fit bro-torch/Pendulum-v1 "
                           "(budget: data 4000 env steps)\n")  # was "(data budget: data 4000)"
    assert list(zoo_hyperparams(rec, "InvertedPendulum-v5")) == ["InvertedPendulum-v5"]
    assert cleanrl_flags(rec)[:2] == ["--env-id", "Pendulum-v1"]
    assert cleanrl_flags(rec, "InvertedPendulum-v5")[:2] == ["--env-id", "InvertedPendulum-v5"]
    archive = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-crawl-v0")
    assert archive.env_id is None and "--env-id" not in cleanrl_flags(archive)
    with pytest.raises(ExportError, match="keyed by env id: give --env ENV_ID .env_id= in Python"):
        zoo_yaml(archive)
    assert advisor.Recommendation.model_validate_json(rec.model_dump_json()).env_id == (
        "Pendulum-v1")


def test_export_names_on_stderr_the_entries_that_carry_warnings():
    """A new user's: yaml and json entries kept their warnings in the file, and the 1e18 one,
    extrapolated, went unseen."""
    for fmt in ("yaml", "json"):
        res = run("export", "simbav2/h1-crawl-v0", "--budgets", "1e16,1e17,1e18", "--format",
                  fmt)
        assert res.exit_code == 0, res.output
        (line,) = [ln for ln in res.stderr.splitlines() if "entries carry warnings" in ln]
        assert line.startswith("note: 1 of 3 entries") and line.endswith(
            ": compute_1e18 (extrapolated)"), line


def test_export_searches_inside_the_fitted_ranges_with_within_fitted():
    """A hostile tester's: export's warnings named --within-fitted, which export did not have."""
    def rows(*extra):
        res = run("export", "bro/h1-crawl-v0", "--budgets", "1e16,1e18", "--format", "json",
                  *extra)
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)["budgets"], res.stderr

    free, _ = rows()
    assert all(e["extrapolated"] for e in free)
    assert any("--within-fitted" in w for e in free for w in e["warnings"])
    inside, _ = rows("--within-fitted")
    fit = advisor.load_fit("bro/h1-crawl-v0")
    dom = fit.model.domain
    assert not any(e["extrapolated"] for e in inside)
    assert all(dom.utd.low <= e["utd"] <= dom.utd.high for e in inside)
    assert all(dom.params.low <= e["params"] <= dom.params.high for e in inside)
    assert [e["utd"] for e in inside] == [
        advisor.recommend(b, fit=fit, within_fitted=True).utd for b in (1e16, 1e18)]
    res = run("export", "bro/h1-crawl-v0", "--budgets", "1e16,1e17", "--within-fitted",
              "--utd", "16")  # one line on the pin, not "no budget can be met" (a tester's)
    assert res.exit_code == 2 and res.output == (
        "error: utd 16 is outside the fitted range of bro/h1-crawl-v0 (1-8), which "
        "within_fitted (--within-fitted) keeps to; fix a utd inside it\n"), res.output


def test_python_dash_m_advisor_runs_the_cli():
    """A hostile tester's: `python -m advisor` had no __main__ module."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "advisor", "recommend", "--compute", "1e17",
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["width"] == advisor.recommend(1e17).width
    res = subprocess.run([sys.executable, "-m", "advisor", "recommend", "--compute", "-1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_level_sets_the_interval_of_recommend_and_export_as_in_python():
    """A hostile tester's: the CLI had no --level, so it could not print the 90% interval
    that recommend(..., level=0.9) returns."""
    import advisor

    rec = advisor.recommend(1e17, level=0.9)
    res = CliRunner().invoke(main, ["recommend", "--compute", "1e17", "--level", "0.9",
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["interval"] == rec.interval.model_dump()
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e17",
                                    "--level", "0.9", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["budgets"][0]["interval"] == rec.interval.model_dump()
    for cmd in (["recommend", "--compute", "1e17"], ["export", "bro/h1-crawl-v0"]):
        res = CliRunner().invoke(main, [*cmd, "--level", "0.99"])
        assert res.exit_code == 2 and res.output.count("\n") == 1
        assert "level must lie between 0.5 and 0.95" in res.output


def test_cleanrl_default_env_is_counted_at_its_own_input_without_gymnasium(monkeypatch):
    """A new user's, on the light install: with no --env and no Gymnasium, CleanRL's critic
    on its default Hopper-v4 was counted at the fit's input 70, not Hopper-v4's 14."""
    from advisor.integrations import zoo

    monkeypatch.setattr(zoo, "_gymnasium_probe", lambda env_id: (None, None, False))
    res = run("recommend", "--compute", "1e17", "--format", "args")
    assert res.exit_code == 0 and "params at input 14," in res.stderr, res.stderr
    # another env that cannot be made here: counted at the fit's input, and said so
    res = run("recommend", "--compute", "1e17", "--format", "args", "--env", "Walker2d-v4")
    assert res.exit_code == 0 and "params at the fit's input " in res.stderr, res.stderr


def test_a_terminal_that_cannot_encode_a_path_gets_it_escaped_not_a_traceback(tmp_path):
    """A hostile round: with stdout in latin-1 or cp1252 (a Windows redirect), a fit file named
    in Japanese ended `advisor validate` in a 40-line UnicodeEncodeError, exit 1."""
    import os
    import shutil
    import subprocess
    import sys

    from advisor.registry import _shipped_root

    path = tmp_path / "日本.json"
    shutil.copy(_shipped_root() / "bro" / "h1-stand-v0.json", path)
    for encoding in ("latin-1", "cp1252"):
        res = subprocess.run([sys.executable, "-m", "advisor", "validate", str(path)],
                             capture_output=True, timeout=120,
                             env={**os.environ, "PYTHONIOENCODING": encoding})
        out = res.stdout.decode(encoding)
        assert res.returncode == 0 and "Traceback" not in res.stderr.decode(encoding), res.stderr
        assert "\\u65e5\\u672c.json" in out and out.startswith("ok: "), out


def test_a_fit_of_seed_means_has_no_one_seed_interval_and_says_why():
    """A reviewer's: SimbaV2's archive columns are each the mean of 5 seeds (reference.md),
    so its fits had a "single seed" interval calibrated on 5-seed means; now none, and the
    notes and the CLI say so."""
    f = advisor.load_fit("simbav2/h1-crawl-v0")
    rec = advisor.recommend(advisor.Budget(compute=1e17), fit=f)
    assert rec.interval is not None and rec.interval_single_seed is None
    assert any("each curve published as the mean of 5 seeds" in n for n in f.model.provenance.notes)
    assert "single_seed_leave_one_config_out" not in f.model.prediction_interval.coverage
    res = run("recommend", "--fit", "simbav2/h1-crawl-v0", "--compute", "1e17")
    assert res.exit_code == 0 and "none for one seed in this fit" in res.output, res.output
    bro = advisor.recommend(advisor.Budget(compute=1e17), fit="bro/h1-crawl-v0")
    assert bro.interval_single_seed is not None
