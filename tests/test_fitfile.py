import json

import pytest
from click.testing import CliRunner

import advisor
from advisor.cli import main
from advisor.errors import FitFileError
from advisor.fitfile import SCHEMA_VERSION, content_hash, dump_fit_file, read_fit_file
from advisor.registry import load_fit


@pytest.fixture()
def fit_path(tmp_path):
    src = load_fit("bro/h1-crawl-v0")
    path = tmp_path / "fit.json"
    path.write_text(dump_fit_file(src.model))
    return path


def test_round_trip_keeps_every_field(fit_path):
    model = read_fit_file(fit_path)
    assert model == load_fit("bro/h1-crawl-v0").model
    assert advisor.load_fit(str(fit_path)).data_to_target(2, 1e6) == pytest.approx(
        advisor.load_fit("bro/h1-crawl-v0").data_to_target(2, 1e6))


def test_tampered_number_is_rejected_by_the_hash(fit_path):
    doc = json.loads(fit_path.read_text())
    doc["data_to_target"]["laws"][0]["d_min"] *= 0.5
    fit_path.write_text(json.dumps(doc))
    with pytest.raises(FitFileError, match="content hash does not match its contents .edited "
                                           "or corrupted.; restore the original, or remake it "
                                           "with the command in its provenance"):
        read_fit_file(fit_path)


@pytest.mark.parametrize("created", ["2024-13-45", "20261127", "2026-W48-5", "yesterday"])
def test_created_must_be_a_real_iso_date(fit_path, created):
    """A hostile round: a hand-made file whose `created` was 2024-13-45 validated (its hash
    recomputed, as a tool writing fit files would)."""
    doc = json.loads(fit_path.read_text())
    doc["created"] = created
    doc["content_hash"] = content_hash(doc)
    fit_path.write_text(json.dumps(doc))
    with pytest.raises(FitFileError, match=f"created must be a date YYYY-MM-DD, got '{created}'"):
        read_fit_file(fit_path)


def test_truncated_file_is_rejected(fit_path):
    text = fit_path.read_text()
    fit_path.write_text(text[: len(text) // 2])
    with pytest.raises(FitFileError, match="not valid JSON"):
        read_fit_file(fit_path)


def test_future_schema_version_asks_for_an_upgrade(fit_path):
    doc = json.loads(fit_path.read_text())
    doc["schema_version"] = SCHEMA_VERSION + 1
    doc["content_hash"] = content_hash(doc)
    fit_path.write_text(json.dumps(doc))
    with pytest.raises(FitFileError, match="newer.*upgrade"):
        read_fit_file(fit_path)


@pytest.mark.parametrize("alpha", [-1.0, 1e-30])
def test_schema_violation_names_the_field(fit_path, alpha):
    """1e-30 too (a hostile round: an exponent that small, rehashed, validated and made the
    optimiser call budgets infeasible that a grid search met); fits use 0.05-8."""
    doc = json.loads(fit_path.read_text())
    doc["data_to_target"]["laws"][3]["alpha"] = alpha
    doc["content_hash"] = content_hash(doc)
    fit_path.write_text(json.dumps(doc))
    with pytest.raises(FitFileError, match=r"data_to_target\.laws\.3\.alpha.*0\.01"):
        read_fit_file(fit_path)


def test_non_object_and_missing_files_are_one_line_errors(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(FitFileError, match="JSON object"):
        read_fit_file(tmp_path / "list.json")
    with pytest.raises(FitFileError, match="does not exist"):
        advisor.load_fit(str(tmp_path / "nope.json"))


def test_cli_validate_accepts_good_and_rejects_bad(fit_path, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(fit_path)])
    assert ok.exit_code == 0 and "ok:" in ok.output
    bad = tmp_path / "bad.json"
    bad.write_text(fit_path.read_text().replace('"d_min": ', '"d_min": 1', 1))
    res = runner.invoke(main, ["validate", str(bad)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_schema_command_prints_the_generated_json_schema():
    res = CliRunner().invoke(main, ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert schema["title"] == "FitFile"
    assert "data_to_target" in schema["properties"]


def test_a_shipped_fit_is_not_replaced_by_a_fit_of_another_id(tmp_path):
    """`calibrate --fit-out fits/bro/hopper-hop.json` wrote bro/Pendulum-v1 over the shipped
    fit in silence (then `advisor fits` skipped it). A listed fit's file takes only its own id;
    any other path, and the same id (regenerate), are as before."""
    from advisor.errors import OutputError
    from advisor.fitfile import check_fit_output, write_fit_file
    from advisor.registry import fit_path

    shipped = fit_path("bro/hopper-hop")
    before = shipped.read_bytes()
    other = load_fit("bro/h1-crawl-v0").model
    with pytest.raises(OutputError, match=r"is the file of bro/hopper-hop, a fit "
                                          r"value-scaling-advisor ships; writing "
                                          r"bro/h1-crawl-v0 there would replace it"):
        write_fit_file(other, shipped)
    assert shipped.read_bytes() == before
    check_fit_output(shipped, fit_id="bro/hopper-hop")  # its own id: regenerate's case
    runs = tmp_path / "runs.csv"
    runs.write_text("utd,params,batch_size,seed,step,return\n")  # refused before it is read
    res = CliRunner().invoke(main, ["fit", str(runs), "--algorithm", "bro", "--env",
                                    "walker-run", "-o", str(shipped)])
    assert res.exit_code == 2 and res.output.startswith(f"error: -o {shipped} is the file of "
                                                        "bro/hopper-hop"), res.output
    copy = tmp_path / "hopper-hop.json"
    copy.write_bytes(before)
    write_fit_file(other, copy)  # a fit file of the user's own: replaced as before
    assert read_fit_file(copy).id == "bro/h1-crawl-v0"


def test_validate_by_id_checks_the_file_holds_that_id(tmp_path, monkeypatch):
    """`advisor validate ID` passed a listed file holding another fit, which show and
    recommend refuse."""
    import advisor.registry as registry

    wrong = tmp_path / "bro" / "hopper-hop.json"
    wrong.parent.mkdir()
    wrong.write_bytes(registry.fit_path("bro/h1-crawl-v0").read_bytes())
    monkeypatch.setattr(registry, "_catalogue",
                        lambda: ({"bro/hopper-hop": (wrong, "some-package")}, ()))
    res = CliRunner().invoke(main, ["validate", "bro/hopper-hop"])
    assert res.exit_code == 2 and "is listed as 'bro/hopper-hop' but holds fit " \
        "'bro/h1-crawl-v0'" in res.output, res.output
    res = CliRunner().invoke(main, ["validate", str(wrong)])  # a path: no id to hold
    assert res.exit_code == 0 and "valid fit file for bro/h1-crawl-v0" in res.output


def test_fitted_runs_are_checked_against_the_domain_and_the_thresholds(fit_path):
    """Each fit records its configs, once each, and the highest threshold their runs reached;
    a file whose runs lie outside its domain, ran longer than its horizon, repeat a config,
    miss one, reached a target that is not one of its thresholds, or come with an older
    schema, is refused with a line naming the run; a file written before the field (schema 3)
    reads, and finds no contradicting runs."""
    doc = json.loads(fit_path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION == 4
    runs, horizon = doc["domain"]["runs"], doc["domain"]["horizon"]
    targets = [law["target"] for law in doc["data_to_target"]["laws"]]
    assert len(runs) == doc["goodness_of_fit"]["n_configs"]
    assert all(r["reached"] is None or r["reached"] in targets for r in runs)
    assert max(r["horizon"] for r in runs) <= horizon
    k = next(i for i, r in enumerate(runs) if r["reached"] is not None)
    top = doc["domain"]["utd"]["high"]

    def edited(change):
        bad = json.loads(json.dumps(doc))
        change(bad)
        bad["content_hash"] = content_hash(bad)
        fit_path.write_text(json.dumps(bad))
        return fit_path

    for change, message in (
            (lambda d: d["domain"]["runs"][k].update(utd=top * (1 + 1e-8)),
             f"domain: runs {k}: utd {top * (1 + 1e-8):.10g} lies outside the domain's utd "
             "range"),
            (lambda d: d["domain"]["runs"][k].update(reached=runs[k]["reached"] + 0.5),
             f"domain.runs {k}: reached .* is not a threshold"),
            (lambda d: d["domain"]["runs"][k].update(horizon=horizon * 2),
             f"domain: runs {k} ran .* env steps, more than the horizon"),
            (lambda d: d["domain"]["runs"].append(dict(runs[k], reached=None)),
             f"domain: runs {len(runs)} repeats the configuration of run {k}"),
            (lambda d: d["domain"]["runs"].pop(), f"holds {len(runs) - 1} configurations, not"),
            (lambda d: d["domain"].update(runs=[]), "domain.runs"),
            (lambda d: d["domain"].pop("horizon"), "domain: runs need horizon"),
            (lambda d: d.update(schema_version=3), "domain.runs needs schema_version 4")):
        with pytest.raises(FitFileError, match=message):
            read_fit_file(edited(change))
        res = CliRunner().invoke(main, ["validate", str(fit_path)])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output

    def schema_3(d):
        del d["domain"]["runs"]
        d["schema_version"] = 3

    old = advisor.load_fit(str(edited(schema_3)))
    assert old.model.domain.runs is None
    assert old.contradicting_runs(1.0, 1e5, targets[-1], 1.0) == []
    box = old.trusted_box()
    assert old.uncontradicted_boxes(box, targets[-1], 1.0) == [box]
    budget = advisor.Budget(data=old.model.domain.horizon)
    rec = advisor.recommend(budget, fit=old, clear_of_runs=True)
    assert rec.warnings[0] == (f"clear_of_runs: {old.id} records no runs (schema 3), so it "
                               "excludes nothing")
    assert rec.model_copy(update=dict(warnings=rec.warnings[1:])) == advisor.recommend(budget,
                                                                                      fit=old)
    shown = CliRunner().invoke(main, ["show", str(fit_path)]).output
    assert ("runs:         not recorded (schema 3; 4 on records them): `recommend` cannot "
            "check its answers against them") in shown.splitlines()


def test_a_fit_file_with_a_byte_order_mark_loads(tmp_path):
    """A reviewer's: validating from the JSON text refused a UTF-8 byte-order mark that
    json.loads (and so the fit file reader before) takes."""
    from advisor.registry import fit_path

    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + fit_path("bro/humanoid-stand").read_bytes())
    fit = advisor.load_fit(str(path))
    assert fit.id == "bro/humanoid-stand" and isinstance(fit.model.domain.runs, tuple)
