"""Hostile inputs to the light package: every one gets a one-line AdvisorError (exit 2 at the
CLI), never a traceback. One regression test per failure a hostile tester found."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

import advisor
from advisor.cli import main
from advisor.errors import AdvisorError, BudgetError, FitFileError, OutputError, UnknownFitError
from advisor.files import atomic_write_bytes
from advisor.fitfile import content_hash, read_fit_file

runner = CliRunner()


def _doc(fit_id: str = "bro/h1-crawl-v0") -> dict:
    return json.loads(advisor.registry.fit_path(fit_id).read_text())


def _write(tmp_path, doc: dict, name: str = "fit.json"):
    """A fit file whose content hash is recomputed: it passes the hash check, so only the
    validation of its meaning can refuse it."""
    doc["content_hash"] = content_hash(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _set(doc: dict, dotted: str, value):
    keys = dotted.split(".")
    node = doc
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    node[keys[-1]] = value
    return doc


@pytest.mark.parametrize("where, value", [
    ("domain.utd.low", -5.0),
    ("domain.params.low", 0.0),
    ("data_to_target.laws.3.a", 1e308),
    ("data_to_target.laws.3.alpha", 1e300),
    ("data_to_target.laws.3.b", 1e300),
    ("architecture.coefficients", [8.0, 370.0, 1e12]),
    ("architecture.coefficients", [-8.0, 370.0, 200.0]),
    ("batch_size.a_b", 1e308),
    ("architecture.width_multiple", 10**9),
    ("schema_version", True),
    ("id", "x" * 300 + "/y"),
    # found by a hostile tester: each validated and then failed or overflowed in recommend
    ("prediction_interval.levels", [0.5]),  # every recommend failed: no 0.8 level
    ("delta", 1e308),
    ("domain.utd", {"low": 1e300, "high": 1e300}),
    ("domain.params.high", 1e300),
    # a hostile tester's: these validated and then went into the SB3 kwargs or the notes
    ("learning_rate", 5.0),
    ("learning_rate", 1e30),
    ("goodness_of_fit.n_configs", 0),
    ("goodness_of_fit.n_configs", -1),
    ("bootstrap.n_resamples", 5),  # 100 draws of 5 resamples: `show` said "5 resamples"
    # a hostile tester's, re-hashed: "predicted compute 1.6e-289 FLOPs", "B~ = 0.0"
    ("compute.flops_per_param_sample", 1e-300),
    ("compute.reference_batch_size", 1e-9),
    ("batch_size.a_b", 1e-9),
    # a reviewer's: validate passed it, recommend refused it
    ("compute.count_real_batch", True),
])
def test_fit_files_that_validate_by_type_but_not_by_meaning_are_refused(tmp_path, where, value):
    path = _write(tmp_path, _set(_doc(), where, value))
    with pytest.raises(FitFileError) as err:
        read_fit_file(path)
    assert "\n" not in str(err.value)
    res = runner.invoke(main, ["validate", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(main, ["recommend", "--fit", str(path), "--compute", "1e17"])
    assert res.exit_code == 2 and res.output.startswith("error: ")


def test_a_deeply_nested_fit_file_is_refused(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 20_000 + "]" * 20_000)
    with pytest.raises(FitFileError, match="nested too deeply"):
        read_fit_file(path)


def test_a_fit_file_with_a_huge_integer_is_refused(tmp_path):
    path = tmp_path / "int.json"
    path.write_text('{"schema_version": ' + "9" * 5000 + "}")
    with pytest.raises(FitFileError, match="not a usable JSON document"):
        read_fit_file(path)


def test_fifos_devices_directories_and_huge_files_are_refused_unread(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FitFileError, match="not a regular file"):
        read_fit_file(fifo)  # would hang if opened
    with pytest.raises(FitFileError, match="not a regular file"):
        read_fit_file("/dev/zero")  # would read until out of memory
    with pytest.raises(FitFileError, match="directory"):
        read_fit_file(tmp_path)
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(17 * 2**20)
    with pytest.raises(FitFileError, match="larger than"):
        read_fit_file(big)
    for bad in (fifo, tmp_path):
        res = runner.invoke(main, ["recommend", "--fit", str(bad), "--compute", "1e17"])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output


@pytest.mark.parametrize("fit", [None, 5, b"bro/h1-crawl-v0", "x" * 300, "a/" * 3000, "", "\x00"])
def test_fit_arguments_of_the_wrong_kind_are_one_line_errors(fit):
    with pytest.raises((UnknownFitError, FitFileError)) as err:
        advisor.recommend(1e17, fit=fit)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("make", [
    lambda: advisor.recommend(10**400),
    lambda: advisor.recommend(1e17, target=10**400),
    lambda: advisor.recommend(advisor.Budget(compute=10**400)),
    lambda: advisor.Budget.model_validate_json('{"compute": NaN}'),
    lambda: advisor.Budget.model_validate({"compute": "lots"}),
    lambda: advisor.recommend(advisor.Budget(compute=1e17).model_copy(update={"compute": -5.0})),
    lambda: advisor.recommend("1e17"),
    lambda: advisor.load_fit("bro/h1-crawl-v0").data_to_target(2, 10**400),
    lambda: advisor.load_fit("bro/h1-crawl-v0").interval([1, "a"], 1e6),
])
def test_python_api_mistakes_raise_one_documented_error(make):
    with pytest.raises(AdvisorError) as err:
        make()
    assert "\n" not in str(err.value)


def test_budget_errors_say_what_is_allowed():
    with pytest.raises(BudgetError, match="positive finite number of FLOPs"):
        advisor.Budget.model_validate_json('{"compute": -1}')


@pytest.mark.parametrize("args", [
    ["recommend", "--compute"],
    ["recommend", "--nope", "1"],
    ["recommend", "--compute", "abc"],
    ["recommend", "--format", "xml", "--compute", "1e17"],
    ["nosuchcommand"],
    ["export", "bro/h1-crawl-v0", "--budgets", ""],
    ["export", "nope/x"],
    ["export", "bro/h1-crawl-v0", "--budgets", "1e15,1e15"],
    ["validate", "nope/nothing"],
])
def test_usage_errors_are_one_line_and_exit_2(args):
    res = runner.invoke(main, args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output


def test_validate_takes_a_fit_id_as_well_as_a_path():
    res = runner.invoke(main, ["validate", "bro/dog-run"])
    assert res.exit_code == 0 and "valid fit file for bro/dog-run" in res.output


def test_a_fit_file_copied_under_another_id_is_refused_by_the_catalogue(tmp_path, monkeypatch):
    from advisor import registry

    root = tmp_path / "fits" / "bro"
    root.mkdir(parents=True)
    (root / "renamed.json").write_text(registry.fit_path("bro/h1-crawl-v0").read_text())
    monkeypatch.setattr(registry, "_shipped_root", lambda: tmp_path / "fits")
    registry._catalogue.cache_clear()
    try:
        with pytest.raises(FitFileError, match="holds fit 'bro/h1-crawl-v0'"):
            advisor.load_fit("bro/renamed")
        res = runner.invoke(main, ["fits"])
        assert res.exit_code == 0 and "skipped" in res.output
    finally:
        registry._catalogue.cache_clear()


def test_atomic_writes_follow_links_and_write_through_devices(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_text() == "new"
    atomic_write_bytes("/dev/null", b"x")  # written through, not replaced
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    atomic_write_bytes(fifo, b"through the fifo")
    assert reader.communicate(timeout=10)[0] == b"through the fifo"
    assert not fifo.is_file()
    with pytest.raises(OutputError, match="directory"):
        atomic_write_bytes(tmp_path, b"x")
    with pytest.raises(OutputError, match="empty"):
        atomic_write_bytes("", b"x")
    with pytest.raises(OutputError, match="No space left|cannot write"):
        atomic_write_bytes("/dev/full", b"x")


def test_stdout_to_a_full_device_is_one_line():
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "advisor.cli", "recommend", "--compute",
                              "1e17", "--format", "json"], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr, res.stderr
    assert "cannot write output" in res.stderr


def test_stdout_to_a_closed_pipe_is_quiet():
    proc = subprocess.Popen([sys.executable, "-m", "advisor.cli", "schema"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader went away (like `| head -0`)
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err, err


def test_show_escapes_control_characters_from_the_file(tmp_path):
    """A fit file's strings reach the terminal: escape sequences and newlines are shown
    escaped, not obeyed."""
    doc = _set(_doc(), "provenance.command", "\x1b]0;pwned\x07 advisor fit x")
    doc = _set(doc, "provenance.notes", ["one\ntwo"])
    res = runner.invoke(main, ["show", str(_write(tmp_path, doc))])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert "command:      \\x1b]0;pwned\\x07 advisor fit x" in res.output
    assert "note: one\\ntwo" in res.output


def _refuse(name: str):
    raise ValueError(f"bare {name} in JSON")


def test_an_interval_that_overflows_is_warned_about_not_hidden(tmp_path):
    """Widened far outside the domain, the interval is 0 - inf: that is said, without numpy
    overflow warnings."""
    doc = _set(_doc(), "prediction_interval.widen_up", 1000.0)
    n = len(doc["prediction_interval"]["levels"])
    doc = _set(doc, "prediction_interval.log_high", [20.0] * n)
    doc = _set(doc, "prediction_interval.log_low", [-20.0] * n)
    doc = _set(doc, "prediction_interval.seed_log_high", [20.0] * n)
    doc = _set(doc, "prediction_interval.seed_log_low", [-20.0] * n)
    for band in doc["prediction_interval"]["bands"]:  # what Fit.interval applies (schema 3)
        band.update(log_low=[-20.0] * n, log_high=[20.0] * n, seed_log_low=[-20.0] * n,
                    seed_log_high=[20.0] * n)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = advisor.recommend(advisor.Budget(compute=1e20), fit=str(_write(tmp_path, doc)))
    assert rec.interval.low == 0 and rec.interval.high == float("inf")
    # JSON has no infinity: a string strict readers take, that pydantic reads back as inf
    text = rec.model_dump_json()
    assert json.loads(text, parse_constant=_refuse)["interval"]["high"] == "Infinity"
    assert type(rec).model_validate_json(text).interval.high == float("inf")
    from click.testing import CliRunner

    from advisor.cli import main

    for args in (["recommend", "--fit", str(_write(tmp_path, doc)), "--compute", "1e20",
                  "--format", "json"],
                 ["export", str(_write(tmp_path, doc)), "--budgets", "1e20", "--format", "json"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        assert '"Infinity"' in res.stdout
        json.loads(res.stdout, parse_constant=_refuse)  # no bare Infinity or NaN
    assert any("interval spans a factor of inf (0-inf" in w for w in rec.warnings), rec.warnings


@pytest.mark.parametrize("call", [
    lambda f: f.width(1),  # below the smallest critic: was nan
    lambda f: f.params("512"),  # strings and booleans were read as numbers
    lambda f: f.params(True),
    lambda f: f.params(1e300),  # overflowed to inf with a numpy warning
    lambda f: f.compute(1e200, 1e200, 1e200),
    lambda f: f.data_to_target("2", 1e6),
])
def test_fit_methods_refuse_what_is_not_a_usable_number(call):
    import warnings

    f = advisor.load_fit("bro/h1-crawl-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AdvisorError) as err:
            call(f)
    assert "\n" not in str(err.value)


def test_width_inverts_an_ill_conditioned_params_polynomial(tmp_path):
    """A negligible leading coefficient (valid by the schema) made numpy's roots wrong: the
    fit recommended width 192 (3.7e5 params) for an optimum of 7.8e7 params."""
    doc = _set(_doc(), "architecture.coefficients", [1e-300, 8.0, 370.0, 200.0])
    f = advisor.load_fit(str(_write(tmp_path, doc)))
    for params in (2e5, 7.79e7, 3e8):
        assert f.params(f.width(params)) == pytest.approx(params, rel=1e-9)
    rec = advisor.recommend(advisor.Budget(compute=1e17), fit=str(_write(tmp_path, doc)))
    assert rec.params == pytest.approx(f.params(rec.width), rel=1e-9)
    assert rec.params > 1e7


# --- a hostile round on the Python API and fit files (session 12) ------------------------------
def test_a_fit_whose_utd_range_exceeds_the_rounding_still_recommends(tmp_path):
    """Fitted utds up to 100: the search box reached 400, beyond every gradient_steps <= 256
    candidate, and recommend failed with numpy's 'argmin of an empty sequence'."""
    path = str(_write(tmp_path, _set(_doc(), "domain.utd", {"low": 1.0, "high": 100.0})))
    rec = advisor.recommend(advisor.Budget(compute=8e19), fit=path)
    assert rec.gradient_steps <= 256 and rec.within_budget
    assert any("utd" in w and "extrapolated" in w for w in rec.warnings), rec.warnings
    res = runner.invoke(main, ["recommend", "--fit", path, "--compute", "1e21"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("edit", ["coefficients", "domain"])
def test_degenerate_laws_are_one_line_not_nan(tmp_path, edit):
    """Coefficients that validate one by one (a = b = 1e-300) made every law flat: recommend
    failed on int(nan) or said 'needs at least nan FLOPs'."""
    import warnings

    doc = _doc()
    if edit == "coefficients":
        for law in doc["data_to_target"]["laws"]:
            law["a"] = law["b"] = 1e-300
    else:
        doc["domain"]["utd"] = {"low": 1e6, "high": 1e6}
    path = str(_write(tmp_path, doc))
    for budget in (dict(compute=1e17), dict(data=5e5), dict(total=1e18), dict(compute=1e21)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no numpy warnings either
            try:
                rec = advisor.recommend(advisor.Budget(**budget), fit=path)
            except AdvisorError as exc:
                assert "\n" not in str(exc) and "nan" not in str(exc).replace("(nan)", ""), exc
                continue
        assert rec.within_budget and rec.gradient_steps <= 256


@pytest.mark.parametrize("where, value", [
    ("data_to_target.laws.0.a", True),
    ("data_to_target.laws.0.d_min", "64733.9"),
    ("delta", "2e12"),
    ("architecture.width_multiple", "64"),
    ("architecture.width_multiple", 64.0),
    ("compute.count_real_batch", "no"),
    ("fit_version", True),
    ("random_steps", 2500.0),
    ("random_steps", "2500"),
    ("random_steps", -1),
])
def test_fit_files_keep_json_types_as_they_are(tmp_path, where, value):
    """Strings, booleans and floats were converted into numbers, integers and flags."""
    path = _write(tmp_path, _set(_doc(), where, value))
    with pytest.raises(FitFileError, match=where.split(".")[-1]):
        read_fit_file(path)
    res = runner.invoke(main, ["validate", str(path)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output


def test_control_characters_of_a_fit_note_are_escaped_in_warnings_and_yaml(tmp_path):
    yaml = pytest.importorskip("yaml")
    note = "fit check FAILED: \x1b]0;pwned\x07x: y \x7f \x85 \u2028"
    path = str(_write(tmp_path, _set(_doc(), "provenance.notes", [note])))
    rec = advisor.recommend(advisor.Budget(compute=1e17), fit=path)
    (line,) = [w for w in rec.warnings if "FAILED" in w]
    assert line.isprintable() and "\\x1b]0;pwned\\x07" in line
    res = runner.invoke(main, ["recommend", "--fit", path, "--compute", "1e17", "--format",
                               "zoo", "--env", "Humanoid-v5"])
    assert res.exit_code == 0 and "\x1b" not in res.output
    assert list(yaml.safe_load(res.stdout)) == ["Humanoid-v5"]


@pytest.mark.parametrize("env_id", ["MyEnv\n", "Humanoid-v5\n", "", 5])
def test_env_ids_with_a_newline_empty_or_not_text_are_refused(env_id):
    from advisor.errors import ExportError
    from advisor.integrations import cleanrl, zoo

    rec = advisor.recommend(1e17)
    for make in (lambda: zoo.zoo_yaml(rec, env_id), lambda: cleanrl.cleanrl_flags(rec, env_id)):
        with pytest.raises(ExportError) as err:
            make()
        assert "\n" not in str(err.value) and "rl-zoo" not in str(err.value)
    if isinstance(env_id, str):
        res = runner.invoke(main, ["recommend", "--compute", "1e17", "--format", "args",
                                   "--env", env_id])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output


def test_export_refuses_a_target_outside_the_fit_once():
    for fmt in ("yaml", "json", "zoo"):
        extra = ["--env", "Humanoid-v5"] if fmt == "zoo" else []
        res = runner.invoke(main, ["export", "bro/h1-crawl-v0", "--kind", "data", "--budgets",
                                   "5e5", "--target", "10", "--format", fmt, *extra])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert "target 10 is outside the fitted range" in res.output


def test_a_target_just_outside_the_range_is_printed_as_given():
    with pytest.raises(advisor.errors.TargetError, match="target 449.94 is outside"):
        advisor.recommend(1e17, target=449.94)
    # within what printing to 4 significant digits moves a bound (0.05 at 450): taken
    assert advisor.recommend(1e17, target=449.96).target == 450.0


def test_a_delta_beyond_a_fit_files_bound_is_refused():
    """total = delta = 1.8e308 was 'within budget' with a predicted total of inf."""
    with pytest.raises(BudgetError, match="delta must be at most 1e\\+20"):
        advisor.Budget(total=1.7976931348623157e308, delta=1.7976931348623157e308)


def test_fit_arrays_that_do_not_broadcast_are_one_line():
    f = advisor.load_fit("bro/h1-crawl-v0")
    for call in (lambda: f.data_to_target([1, 2], [1e6, 2e6, 3e6]),
                 lambda: f.interval([1, 2], [1e6, 2e6, 3e6]),
                 lambda: f.batch_size([1, 2], [1e6, 2e6, 3e6]),
                 lambda: f.compute([1, 2], [1e6, 2e6], [1e5, 2e5, 3e5])):
        with pytest.raises(AdvisorError, match="must broadcast together"):
            call()


def test_a_broken_fit_package_is_one_warning_line_in_fits(monkeypatch):
    from advisor import registry

    class Broken:
        name, value, dist = "broken", "my_fits.nope", None

        def load(self):
            raise ModuleNotFoundError("No module named 'my_fits'")

    monkeypatch.setattr(registry, "_entry_points", lambda: [Broken()])
    registry._catalogue.cache_clear()
    try:
        res = runner.invoke(main, ["fits"])
    finally:
        registry._catalogue.cache_clear()
    assert res.exit_code == 0
    warned = [ln for ln in res.stderr.splitlines() if "cannot be loaded" in ln]
    assert len(warned) == 1 and warned[0].startswith("warning: "), res.stderr


def test_show_prints_the_80_percent_interval_recommend_uses(tmp_path):
    """With stored levels 0.5 and 0.95, show printed the 0.95 offsets as the 80% interval."""
    doc = _doc()
    pi = doc["prediction_interval"]
    offsets = dict(log_low=[-0.1, -2.0], log_high=[0.1, 2.0], seed_log_low=[-0.2, -3.0],
                   seed_log_high=[0.2, 3.0])
    pi.update(levels=[0.5, 0.95], **offsets)
    for band in pi["bands"]:
        band.update(offsets)
    path = str(_write(tmp_path, doc))
    f = advisor.load_fit(path)
    low, high = f.interval(2.0, 1e6, level=0.8)
    one_low, one_high = f.interval(2.0, 1e6, level=0.8, single_seed=True)
    mid = f.data_to_target(2.0, 1e6)
    res = runner.invoke(main, ["show", path])
    assert res.exit_code == 0, res.output
    assert f"lies within {low / mid:.2f}x-{high / mid:.2f}x" in res.output, res.output
    assert f"a single seed's run, {one_low / mid:.2f}x-{one_high / mid:.2f}x" in res.output
    top = [line for line in res.output.splitlines() if line.startswith("  targets ")][-1]
    assert top.endswith(f": {low / mid:.2f}x-{high / mid:.2f}x (one seed {one_low / mid:.2f}x-"
                        f"{one_high / mid:.2f}x)"), top


def test_integrations_ask_for_the_fit_a_file_recommendation_came_from(tmp_path):
    """A fit loaded from a file under an id not installed: sac_kwargs(rec) suggested another
    installed fit ('did you mean bro/cheetah-run?')."""
    from advisor.integrations import sb3

    path = str(_write(tmp_path, _set(_doc("bro/cheetah-run"), "id", "mine/cheetah-run")))
    rec = advisor.recommend(1e17, fit=path)
    with pytest.raises(UnknownFitError, match="not installed: pass fit="):
        sb3.sac_kwargs(rec)
    assert sb3.sac_kwargs(rec, fit=path)["batch_size"] == rec.batch_size


def test_ctrl_c_in_a_command_is_one_line_and_exit_130(monkeypatch):
    """Ctrl-C while the heavy side imported printed an empty line, then 'error: aborted'."""
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    import importlib

    monkeypatch.setattr(importlib.import_module("advisor.recommend"), "recommend", interrupted)
    res = runner.invoke(main, ["recommend", "--compute", "1e17"])
    assert res.exit_code == 130 and res.output == "error: interrupted\n", repr(res.output)


def test_ctrl_c_while_click_parses_or_the_cli_imports_is_one_line(monkeypatch, capsys):
    """A hostile round: Ctrl-C while click parsed the group's options printed an empty line and
    'error: aborted'; while the console script imported the CLI, Python's traceback."""
    import click

    from advisor import _console

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(click.Group, "parse_args", interrupted)
        res = runner.invoke(main, ["recommend", "--compute", "1e17"])
    assert res.exit_code == 130 and res.output == "error: interrupted\n", repr(res.output)
    # The console script's entry, interrupted while it imports the CLI.
    with monkeypatch.context() as m:
        import builtins

        real = builtins.__import__

        def fake(name, *a, **kw):
            if name == "advisor.cli":
                raise KeyboardInterrupt
            return real(name, *a, **kw)

        m.setattr(builtins, "__import__", fake)
        with pytest.raises(SystemExit) as exc:
            _console.main()
    assert exc.value.code == 130 and capsys.readouterr().err == "error: interrupted\n"


def test_random_steps_must_stay_below_the_runs_length_and_a_high_one_is_warned(tmp_path):
    """A hostile round: random_steps of 5e6 for runs of 1e6 steps gave learning_starts above
    n_timesteps (SB3 never updated) with no word. A fit file refuses random steps at or past
    its horizon; one below it but at least the predicted data gets a warning."""
    doc = _set(_doc(), "random_steps", 1_000_000)  # h1-crawl's runs are 1e6 steps long
    with pytest.raises(FitFileError, match="random_steps 1000000 must be below the runs' length"):
        read_fit_file(_write(tmp_path, doc))
    path = str(_write(tmp_path, _set(_doc(), "random_steps", 900_000), "high.json"))
    rec = advisor.recommend(advisor.Budget(compute=1e17), fit=path)
    assert rec.predicted_data < 900_000
    assert any("900,000 random env steps before learning" in w for w in rec.warnings)
    assert not any("random env steps" in w
                   for w in advisor.recommend(advisor.Budget(compute=1e17)).warnings)


def test_clients_of_a_file_named_like_a_shipped_fit_ask_for_that_file(tmp_path):
    """A fit file of your own with a shipped fit's id: sb3/zoo helpers looked the id up and used
    the shipped fit's critic in silence (or raised a bare AssertionError); now one line asks
    for fit=, and with it they work."""
    from advisor.errors import UnknownFitError
    from advisor.integrations import sb3

    doc = _set(_doc("bro/cheetah-run"), "architecture.coefficients", [8.0, 2 * (60 + 115), 200.0])
    path = _write(tmp_path, doc)
    rec = advisor.recommend(advisor.Budget(data=5e5), fit=str(path))
    for call in (lambda: sb3.sac_kwargs(rec), lambda: sb3.critic_match(rec, "mlp")):
        with pytest.raises(UnknownFitError, match="made from another file with that id; pass"):
            call()
    assert sb3.sac_kwargs(rec, fit=str(path))["batch_size"] == rec.batch_size


def test_api_calls_with_what_is_not_usable_are_one_line_errors():
    """A hostile tester's: round_width(nan) raised a bare ValueError, sac_kwargs(None) and
    total_timesteps(None) AttributeError, and critic_match took input_dim -1 into its note."""
    from advisor.errors import ConfigError, ExportError
    from advisor.integrations import sb3
    from advisor.integrations.critic import critic_match

    f = advisor.load_fit("bro/h1-crawl-v0")
    rec = advisor.recommend(1e17)
    for call, error in ((lambda: f.round_width(float("nan")), ConfigError),
                        (lambda: f.round_width(-64), ConfigError),
                        (lambda: sb3.sac_kwargs(None), ExportError),
                        (lambda: sb3.total_timesteps({"predicted_data": 1}), ExportError),
                        (lambda: critic_match(rec, "mlp", input_dim=-1), ExportError),
                        (lambda: critic_match(rec, "mlp", input_dim=3.5), ExportError)):
        with pytest.raises(error) as err:
            call()
        assert "\n" not in str(err.value)
    assert f.round_width(3100) == 3072 and f.round_width(1) == 64
    assert critic_match(rec, "mlp", input_dim=70).params_client > 0
    import numpy as np  # a numpy integer is an integer (a reviewer's: it was refused)

    assert critic_match(rec, "mlp", input_dim=np.prod((51,)) + 19) == critic_match(
        rec, "mlp", input_dim=70)


def test_total_timesteps_never_passes_a_data_budget():
    """A hostile tester's: n_timesteps, rounded up to whole rounds of train_freq, passed the
    data budget by a step or two where the prediction sat within a round of it."""
    from advisor.integrations import sb3

    rec = advisor.recommend(advisor.Budget(data=413297.93694009056), fit="bro/cheetah-run")
    assert rec.within_budget and rec.train_freq == 4
    assert rec.predicted_data > 413296  # within one round of the budget
    n = sb3.total_timesteps(rec)
    assert n <= 413297.93694009056 and n % 4 == 0 and n > rec.predicted_data - 4
    rec = advisor.recommend(1e17)  # no data budget: rounded up, as before
    assert sb3.total_timesteps(rec) >= rec.predicted_data


def test_total_timesteps_never_passes_a_compute_or_total_budget():
    """Left alone in session 22: rounded up to whole rounds of train_freq, n_timesteps ran
    past a compute budget (and a total one) by a few 1e-6, on 98 of the budgets tried."""
    from advisor.integrations import sb3

    f = advisor.load_fit("bro/acrobot-swingup")
    for budget in (advisor.Budget(compute=1e15, data=3e5), advisor.Budget(total=3e16)):
        rec = advisor.recommend(budget, fit=f)
        assert rec.within_budget
        n = sb3.total_timesteps(rec)
        assert n % rec.train_freq == 0 and n > rec.predicted_data - rec.train_freq
        compute = f.compute(rec.utd, rec.params, n)
        assert compute <= budget.compute if budget.compute else \
            compute + rec.delta * n <= budget.total
        assert n < rec.predicted_data  # both are budgets that rounding up passed


def test_decimal_and_fraction_budgets_and_targets_are_taken_as_budget_takes_them():
    """A hostile tester's: Budget(compute=Decimal(...)) worked, recommend(Decimal(...)) and
    target=Fraction(...) were refused as not numbers."""
    from decimal import Decimal
    from fractions import Fraction

    base = advisor.recommend(1e17, target=700)
    for budget, target in ((Decimal("1e17"), 700), (1e17, Fraction(700)), (1e17, Decimal(700))):
        rec = advisor.recommend(budget, target=target)
        assert (rec.width, rec.target, rec.predicted_data) == (base.width, 700.0,
                                                               base.predicted_data)
    for bad in (1j, "1e17", True):
        with pytest.raises(BudgetError):
            advisor.recommend(bad)
    with pytest.raises(advisor.errors.TargetError):
        advisor.recommend(1e17, target=1j)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(schema_version=3.0), "schema_version must be an integer"),
    (lambda d: d.pop("schema_version"), "has no schema_version"),
    (lambda d: d["domain"].update(target={"low": -1e9, "high": 1e9}),
     "domain.target -1e.09 to 1e.09 is not the range of the laws' targets, 200-660"),
])
def test_fit_files_with_a_float_version_no_version_or_a_target_range_of_their_own_are_refused(
        tmp_path, edit, message):
    """A hostile tester's: schema_version 3.0 and a file without one loaded as schema 3, and a
    domain.target of -1e9..1e9 (the laws' targets span far less) validated and was shown."""
    doc = _doc("simbav2/h1-stand-v0")
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(FitFileError, match=message):
        read_fit_file(path)
    res = runner.invoke(main, ["validate", str(path)])
    assert res.exit_code == 2 and res.output.count("\n") == 1


def test_a_bootstrap_with_fewer_draws_than_resamples_says_how_many_were_refitted(tmp_path):
    """A resample that reaches too few thresholds is not refitted: fewer draws validate, and
    `show` says how many there are (it said "100 resamples" of a file with none)."""
    path = _write(tmp_path, _set(_doc(), "bootstrap.draws", []))
    res = runner.invoke(main, ["show", str(path)])
    assert res.exit_code == 0, res.output
    assert "100 resamples of each config's seeds (0 refitted: the others reached too few " \
        "thresholds)" in res.output


def test_a_long_budget_list_is_not_echoed_whole():
    """2,000 budgets and a typo echoed a 10 kB error line (a hostile round)."""
    budgets = ",".join(["1e17"] * 2000 + ["x"])
    res = runner.invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", budgets])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and len(res.output) < 400
    assert "budget 'x' is not a number" in res.output and ",1e17,x'" in res.output


def test_an_export_that_fails_midway_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    """A full disk at the third of four rl-zoo files left the first two behind (a hostile
    round): now the new ones are removed and an existing one gets its old content back."""
    import advisor.files

    out = tmp_path / "zoo"
    out.mkdir()
    old = out / "sac_Humanoid-v5_compute_1e15.yml"
    earlier = "# advisor: SAC on Humanoid-v5 from an earlier export\n"  # one it may replace
    old.write_text(earlier)
    real, calls = advisor.files.atomic_write_text, []

    def full_disk(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise OutputError(f"cannot write {path}: No space left on device")
        return real(path, text)

    monkeypatch.setattr(advisor.files, "atomic_write_text", full_disk)
    res = runner.invoke(main, ["export", "bro/h1-crawl-v0", "--format", "zoo", "--env",
                               "Humanoid-v5", "-o", str(out)])
    assert res.exit_code == 2 and "No space left on device" in res.output, res.output
    assert len(calls) == 3 and sorted(p.name for p in out.iterdir()) == [old.name]
    assert old.read_text() == earlier


def test_an_export_keeps_a_users_own_file_or_folder_at_a_files_name(tmp_path):
    """A hostile round: `export -o DIR` replaced a file of the user's named as one of its
    rl-zoo files (`tidy -o` and `fit -o` refuse that); a folder there read "give a file name",
    which -o DIR cannot. Nothing is written where one path is refused."""
    out = tmp_path / "zoo"
    out.mkdir()
    mine = out / "sac_Humanoid-v5_compute_1e16.yml"
    mine.write_text("my notes\n")
    args = ["export", "bro/h1-crawl-v0", "--budgets", "1e15,1e16", "--format", "zoo", "--env",
            "Humanoid-v5", "-o", str(out)]
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and res.output == (
        f"error: -o {out}: {mine} exists and is not an rl-zoo file advisor export wrote; it is "
        "left as it is: choose another path, or remove it first\n")
    assert mine.read_text() == "my notes\n" and sorted(p.name for p in out.iterdir()) == \
        [mine.name]
    mine.unlink()
    mine.mkdir()
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and f"{mine} is a folder, where this command writes a file of " \
        "that name; rename or remove the folder, or choose another -o" in res.output
    mine.rmdir()
    for _ in range(2):  # the second run replaces the first's files
        res = runner.invoke(main, args)
        assert res.exit_code == 0 and res.stdout.split() == [
            str(out / "sac_Humanoid-v5_compute_1e15.yml"), str(mine)], res.output


def test_within_fitted_keeps_the_fitted_ranges_when_maximising_the_target():
    """A hostile tester's: with compute + data, within_fitted=True took a rounded config
    outside the fitted ranges (utd 1/2 on bro/finger-turn, an interval 16,000 times wide)
    where one inside them reached a target 2% lower within the budget."""
    for fit, compute, data in (("bro/finger-turn", 4.08e14, 7e5),
                               ("bro/sweep-v2", 8.64e14, 2.85e5),
                               ("bro/hopper-hop", 6.94e14, 2.2e5)):
        f = advisor.load_fit(fit)
        rec = advisor.recommend(advisor.Budget(compute=compute, data=data), fit=f,
                                within_fitted=True)
        d = f.model.domain
        assert rec.within_budget and d.utd.low <= rec.utd <= d.utd.high, (fit, rec.utd)
        assert d.params.low <= rec.params <= d.params.high, (fit, rec.params)
        assert any(w.startswith("rounding costs target") for w in rec.warnings)
        free = advisor.recommend(advisor.Budget(compute=compute, data=data), fit=f)
        assert free.extrapolated and free.target > rec.target  # the case the test is about


@pytest.mark.parametrize("make, message", [
    (lambda: advisor.recommend(Fraction(10**400)), "a Fraction too large for a float"),
    (lambda: advisor.recommend(Decimal("snan")), "positive finite number of FLOPs"),
    (lambda: advisor.Budget(compute=np.bool_(True)), "got the boolean"),
    (lambda: advisor.Budget(total=1e18, delta=np.bool_(True)), "got the boolean"),
    (lambda: advisor.Budget(1e17), "takes keywords only"),
])
def test_budgets_that_are_not_numbers_or_not_keywords_are_one_line(make, message):
    """A hostile tester's: an OverflowError, a bare ValueError, numpy booleans taken as 1 FLOP,
    pydantic's TypeError for a positional budget."""
    with pytest.raises(BudgetError, match=message) as err:
        make()
    assert "\n" not in str(err.value)


def test_a_loaded_fit_is_read_only():
    """A hostile tester's: load_fit caches one Fit per file, and `f.id = "x"` renamed it for
    every later caller (recommend(...).fit included)."""
    f = advisor.load_fit("bro/h1-crawl-v0")
    with pytest.raises(AttributeError, match="read-only"):
        f.id = "x"
    with pytest.raises(ValueError, match="read-only"):
        f.thresholds[0] = 0.0
    assert advisor.recommend(1e17).fit == "bro/h1-crawl-v0"
    # nor can what its fit file holds be edited in place: the arrays read are tuples
    m = f.model
    before = advisor.recommend(1e17)
    for edit in (lambda: m.prediction_interval.log_high.__setitem__(0, 9.0),
                 lambda: m.prediction_interval.bands[0].log_low.__setitem__(0, -9.0),
                 lambda: m.bootstrap.draws[0][0].__setitem__(0, 1e9),
                 lambda: m.domain.runs.append(m.domain.runs[0]),
                 lambda: m.provenance.notes.append("x")):
        with pytest.raises((TypeError, AttributeError)):
            edit()
    assert advisor.recommend(1e17) == before


def test_a_negative_fraction_utd_a_truthy_multi_input_and_a_tilde_path(tmp_path, monkeypatch):
    """A hostile tester's: utd "-3/-2" was taken as 3/2, multi_input="no" picked
    MultiInputPolicy, and load_fit("~/x.json") said the file does not exist."""
    from advisor.errors import ConfigError, ExportError
    from advisor.integrations.zoo import zoo_hyperparams

    with pytest.raises(ConfigError, match="got '-3/-2'"):
        advisor.recommend(1e17, utd="-3/-2")
    rec = advisor.recommend(1e17)
    with pytest.raises(ExportError, match="multi_input must be True or False"):
        zoo_hyperparams(rec, "Humanoid-v5", critic="mlp", multi_input="no")
    assert zoo_hyperparams(rec, "Humanoid-v5", critic="mlp", multi_input=np.True_)[
        "Humanoid-v5"]["policy"] == "MultiInputPolicy"
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "x.json").write_bytes(advisor.registry.fit_path("bro/h1-crawl-v0").read_bytes())
    assert advisor.load_fit("~/x.json").id == "bro/h1-crawl-v0"


def test_within_fitted_looks_further_when_the_neighbours_fall_short_of_the_target():
    """A second tester's: with the fitted ranges kept, the neighbours inside them reached 0.502
    on bro/myo-pen-twirl-hard where utd 7/6 (train_freq up to 8) reaches 0.508 within budget."""
    rec = advisor.recommend(advisor.Budget(compute=1.03e15, data=5.36e5),
                            fit="bro/myo-pen-twirl-hard", within_fitted=True)
    d = advisor.load_fit("bro/myo-pen-twirl-hard").model.domain
    assert rec.within_budget and d.utd.low <= rec.utd <= d.utd.high
    assert (rec.gradient_steps, rec.train_freq) == (7, 6) and rec.target > 0.505


@pytest.mark.parametrize("env_id", ["mod:", "a:b:c", "mod/ns:Env-v0", "mod.:Env-v0"])
def test_module_env_ids_with_an_empty_or_odd_part_are_refused(env_id):
    """A second tester's: `--env mod:` wrote a zoo file keyed '' and `a:b:c` one keyed 'b:c'."""
    from advisor.errors import ExportError
    from advisor.integrations.zoo import zoo_hyperparams

    with pytest.raises(ExportError, match="one 'module:' prefix"):
        zoo_hyperparams(advisor.recommend(1e17), env_id)
    res = runner.invoke(main, ["recommend", "--compute", "1e17", "--format", "zoo", "--env",
                               env_id])
    assert res.exit_code == 2 and res.output.startswith("error: ")


def test_export_names_zoo_files_without_the_module_prefix(tmp_path):
    """A second tester's: the files were named sac_gymnasium.envs.classic_control:Pendulum-v1_*,
    which Windows cannot create."""
    res = runner.invoke(main, ["export", "bro-torch/Pendulum-v1", "--kind", "data", "--budgets",
                               "2000,4000", "--format", "zoo", "--env",
                               "gymnasium.envs.classic_control:Pendulum-v1", "-o",
                               str(tmp_path)])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(n.startswith("sac_Pendulum-v1_") and ":" not in n
                                   for n in names)


def test_a_misspelt_coverage_scheme_and_deleting_from_a_fit_are_refused(tmp_path):
    """A second tester's: `largest_param_column_out` validated, and silenced the warning that
    reads `largest_params_column_out`; `del fit.model` went through."""
    doc = _doc()
    doc["prediction_interval"]["coverage"]["largest_param_column_out"] = 0.2
    with pytest.raises(FitFileError, match="unknown scheme"):
        read_fit_file(_write(tmp_path, doc))
    f = advisor.load_fit("bro/h1-crawl-v0")
    with pytest.raises(AttributeError, match="read-only"):
        del f.model


def test_show_says_what_the_bootstrap_resampled():
    """SimbaV2's archive columns are 5-seed means: its fits' bootstrap resampled curves, not
    seeds, and `show` said "resamples of seeds" of them (a reviewer's)."""
    lines = {fid: [ln for ln in runner.invoke(main, ["show", fid]).output.splitlines()
                   if ln.startswith("bootstrap:")]
             for fid in ("simbav2/h1-crawl-v0", "bro/h1-crawl-v0")}
    assert lines["simbav2/h1-crawl-v0"] == ["bootstrap:    100 resamples of each config's curves "
                                            "(see notes)"]
    assert lines["bro/h1-crawl-v0"] == ["bootstrap:    100 resamples of each config's seeds"]


def test_export_of_data_budgets_needs_budgets_in_env_steps():
    """A hostile round: `export --kind data` without --budgets read the FLOPs defaults as env
    steps (four entries of 1e15-1e18 env steps, all one configuration)."""
    res = runner.invoke(main, ["export", "bro/h1-crawl-v0", "--kind", "data", "--format", "json"])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "--kind data needs --budgets, in env steps (e.g. --budgets 2e5,5e5,1e6): the " \
           "default budgets are FLOPs" in res.output
    res = runner.invoke(main, ["export", "bro/h1-crawl-v0", "--kind", "total", "--format", "json"])
    assert res.exit_code == 0 and [e["total"] for e in json.loads(res.stdout)["budgets"]] == \
        [1e15, 1e16, 1e17, 1e18]


def test_within_fitted_infeasibility_says_its_range_and_what_reaches_the_target_beyond():
    """A hostile round: with within_fitted, "every configuration needs more than 3.3e5 env
    steps" where `recommend --data 2.6e5` without it answers utd 17/4, width 6464."""
    free = advisor.recommend(advisor.Budget(data=2.6e5))
    with pytest.raises(advisor.InfeasibleBudgetError) as caught:
        advisor.recommend(advisor.Budget(data=2.6e5), within_fitted=True)
    text = str(caught.value)
    assert text.startswith("within the fitted ranges (within_fitted, --within-fitted): data "
                           "budget 2.6e+05 env steps cannot reach target 780")
    assert text.endswith(f"; beyond them utd {free.gradient_steps}/{free.train_freq}, width "
                         f"{free.width} reaches target 780 within the budget, extrapolated")
    assert free.extrapolated and "\n" not in text
    # A review's: where beyond fails too, the figures were the fitted ranges' minimums alone,
    # read as the whole trusted range's; now both, each said which
    with pytest.raises(advisor.InfeasibleBudgetError) as caught:
        advisor.recommend(advisor.Budget(data=1e5), within_fitted=True)
    with pytest.raises(advisor.InfeasibleBudgetError) as free_too:
        advisor.recommend(advisor.Budget(data=1e5))
    inside, beyond = str(caught.value).split("; beyond them too: ")
    assert inside.startswith("within the fitted ranges (within_fitted, --within-fitted): data "
                             "budget 1e+05 env steps cannot reach target 780 on bro/h1-crawl-v0")
    assert str(free_too.value).endswith(f"on bro/h1-crawl-v0: {beyond}")
    assert "the highest target this budget reaches is 530.4" in beyond


def test_a_level_of_the_wrong_type_is_told_the_levels_the_fit_stores():
    with pytest.raises(advisor.ConfigError, match=r"^level must be a number between 0.5 and "
                                                  r"0.95, got '0.8'$"):
        advisor.recommend(1e17, level="0.8")


def test_export_lines_tell_close_budgets_apart(tmp_path):
    """A hostile round: budgets 1.23456789e16 and 1.2345678901e16 both had their warnings
    labelled `compute 1.235e+16:`, while their files were named in full."""
    res = runner.invoke(main, ["export", "bro/h1-crawl-v0", "--budgets",
                               "1.23456789e16,1.2345678901e16", "--format", "zoo", "--env",
                               "Humanoid-v5", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    labels = {line.split(": ", 2)[1] for line in res.stderr.splitlines()
              if line.startswith("warning: compute ")}
    assert labels == {"compute 1.23456789e+16", "compute 1.2345678901e+16"}, res.stderr
