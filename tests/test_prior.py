"""Few-shot fits with a family prior: `advisor fit --prior`, `advisor calibrate --prior`."""

import json
import re
import shlex
import zipfile

import pytest
from click.testing import CliRunner

import advisor
from advisor.cli import main
from calibration.catalogue import FAMILIES
from calibration.prior import FAMILY_DIR, PriorError, resolve_prior

#: Corners and centre of the utd x size grid: what `advisor plan` would have a user run.
CONFIGS = ("rr1_xs", "rr1_l", "rr15_xs", "rr15_l", "rr5_sm")


def _width(fit, level=0.8):
    pi = fit.model.prediction_interval
    i = pi.levels.index(level)
    return pi.log_high[i] - pi.log_low[i]


@pytest.fixture(scope="module")
def few_runs(data_dir, tmp_path_factory):
    """5 configs of DMC humanoid-stand (a task outside the dmc family) as a folder of runs."""
    out = tmp_path_factory.mktemp("few")
    with zipfile.ZipFile(data_dir / "dmc_bro_ablations.zip") as zf:
        for name in zf.namelist():
            if name.endswith("/humanoid-stand.npy") and name.split("/")[-2] in CONFIGS:
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(zf.read(name))
    return out


def _fit(args):
    return CliRunner().invoke(main, ["fit", *map(str, args)])


def test_few_shot_fit_names_its_prior_and_its_interval_is_honest(few_runs, data_dir, tmp_path):
    from calibration.build import build_fit

    res = _fit([few_runs, "--algorithm", "t", "--env", "humanoid-stand", "-o",
                tmp_path / "fs.json", "--n-boot", "5", "--prior", "dmc"])
    assert res.exit_code == 0, res.output
    fs = advisor.load_fit(str(tmp_path / "fs.json"))  # validates schema and content hash
    prior = fs.model.provenance.prior
    assert prior.family == "dmc" and "few-shot" in prior.method
    assert [p.id for p in prior.fits] == sorted(FAMILIES["dmc"])
    assert all(p.content_hash == advisor.load_fit(p.id).model.content_hash for p in prior.fits)
    assert "few-shot" in fs.model.provenance.method
    # At least as wide as the family's own few-shot error at k = 5 ...
    floor = json.loads((FAMILY_DIR / "dmc.json").read_text())
    i = floor["levels"].index(0.8)
    pi = fs.model.prediction_interval
    assert pi.log_low[i] <= floor["by_k"]["5"]["log_low"][i]
    assert pi.log_high[i] >= floor["by_k"]["5"]["log_high"][i]
    assert "prior_family_leave_one_task_out" in pi.coverage
    # ... and wider than the interval of the per-task fit on the task's full 5 x 5 grid, whose
    # error the few-shot fit cannot match (benchmarks/results/catalogue-check-*.txt).
    full = build_fit(data_dir / "dmc_bro_ablations.zip", "t", "humanoid-stand", n_boot=0).fit
    assert _width(fs) > _width(advisor.Fit(full))
    # A free fit on the same 5 configs has a wider interval still: its own error is far larger.
    free = build_fit(few_runs, "t", "humanoid-stand", n_boot=0).fit
    assert free.goodness_of_fit.leave_one_config_out > fs.model.goodness_of_fit.leave_one_config_out
    assert _width(advisor.Fit(free)) > _width(fs)


def test_recorded_command_reproduces_the_few_shot_file(few_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _fit([few_runs, "--algorithm", "t", "--env", "humanoid-stand", "--name", "hs-few",
                "-o", "out/f.json", "--n-boot", "3", "--prior", "dmc"])
    assert res.exit_code == 0, res.output
    first = (tmp_path / "out/f.json").read_bytes()
    doc = json.loads(first)
    assert doc["id"] == "t/hs-few"
    command = doc["provenance"]["command"]
    assert "--prior dmc" in command and "--name hs-few" in command
    (tmp_path / "out/f.json").unlink()
    res = CliRunner().invoke(main, shlex.split(command)[1:])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out/f.json").read_bytes() == first


@pytest.mark.parametrize("prior, message", [
    (["nope/never"], "--prior nope/never"),
    (["bro/dog-run", "bro/cheetah-run"], "at least 5 fits"),
    (["dmc", "bro/h1-crawl-v0"], "names a family"),
])
def test_unusable_prior_is_a_one_line_error(few_runs, tmp_path, prior, message):
    args = [few_runs, "--algorithm", "t", "--env", "humanoid-stand", "-o", tmp_path / "f.json"]
    for p in prior:
        args += ["--prior", p]
    res = _fit(args)
    assert res.exit_code == 2
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "f.json").exists()


def test_stored_family_calibrations_are_for_the_shipped_fits():
    """A regenerated member fit changes its hash: the stored floor must then be recomputed
    (`python -m calibration.prior DATA_DIR`)."""
    for name, ids in FAMILIES.items():
        doc = json.loads((FAMILY_DIR / f"{name}.json").read_text())
        assert sorted((m["id"], m["content_hash"]) for m in doc["members"]) == sorted(
            (i, advisor.load_fit(i).model.content_hash) for i in ids)
        for k, row in doc["by_k"].items():
            assert row["log_low"][0] <= 0 <= row["log_high"][0]
            assert 0.75 <= row["coverage_leave_one_task_out"] <= 0.95, k


def test_any_set_of_fits_is_calibrated_from_their_archives(data_dir, monkeypatch):
    ids = ["bro/dog-run", "bro/dog-trot", "bro/dog-walk", "bro/humanoid-run", "bro/walker-run"]
    monkeypatch.delenv("ADVISOR_DATA_DIR", raising=False)  # CI sets it: then it would be found
    with pytest.raises(PriorError, match="ADVISOR_DATA_DIR"):
        resolve_prior(ids, data_dirs=[data_dir / "nowhere"]).floor(4)
    floor = resolve_prior(ids, data_dirs=[data_dir]).floor(4)
    lo, hi = floor.at(0.8)
    assert lo < 0 < hi and "5 fits" in floor.note


def test_a_plan_for_a_few_shot_fit_can_be_written(tmp_path):
    from calibration.design import DesignError, plan, write_plan

    p = plan(3, prior=FAMILIES["dmc"])
    assert write_plan(p, tmp_path / "plan.json").exists()
    with pytest.raises(DesignError, match="--prior"):
        write_plan(plan(3), tmp_path / "free.json")


def test_calibrate_with_an_unusable_prior_fails_before_running(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    res = CliRunner().invoke(main, ["calibrate", "--env", "InvertedPendulum-v5", "--preset",
                                    "smoke", "--device", "cpu", "--out-dir", str(tmp_path / "o"),
                                    "--prior", "nope/never"])
    assert res.exit_code == 2 and "--prior nope/never" in res.output
    assert not (tmp_path / "o" / "runs").exists()
    # nor one of which the fit to be made is a member: bro/hopper-hop in the dmc family
    res = CliRunner().invoke(main, ["calibrate", "--env", "gymnasium.envs.mujoco:hopper-hop",
                                    "--algorithm", "bro", "--preset", "smoke", "--device", "cpu",
                                    "--out-dir", str(tmp_path / "o"), "--prior", "dmc"])
    assert res.exit_code == 2 and "--prior dmc holds bro/hopper-hop, the fit being made" in \
        res.output, res.output
    assert not (tmp_path / "o" / "runs").exists()


def test_a_free_fit_on_five_configs_is_written_with_its_failed_checks(few_runs, tmp_path):
    """5 configs cannot pin the law down freely: `advisor fit` says so (calibration.checks)."""
    res = _fit([few_runs, "--algorithm", "t", "--env", "humanoid-stand", "-o",
                tmp_path / "free.json", "--n-boot", "0"])
    assert res.exit_code == 0, res.output
    assert "warning: check FAIL baseline" in res.output and (tmp_path / "free.json").exists()


def test_a_prior_may_not_hold_the_fit_being_made(few_runs, tmp_path):
    """A hostile tester's: `advisor fit` of mine/cheetah with --prior mine/cheetah (its own
    earlier fit) and four others wrote a fit whose exponents had learned from its own runs."""
    args = [few_runs, "--algorithm", "bro", "--env", "humanoid-stand", "-o", tmp_path / "f.json"]
    for p in ("bro/humanoid-stand", "bro/dog-run", "bro/dog-trot", "bro/dog-walk",
              "bro/walker-run"):
        args += ["--prior", p]
    res = _fit(args)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "--prior names bro/humanoid-stand, the fit being made" in res.output
    assert not (tmp_path / "f.json").exists()


@pytest.mark.parametrize("spec, hint", [
    ("dmcc", "or did you mean the family 'dmc'?"),
    ("xyz", "--prior also takes a family name (dmc)"),
])
def test_unknown_prior_names_the_family_it_may_mean(spec, hint):
    from calibration.design import DesignError, plan

    with pytest.raises(PriorError, match=f"^--prior {spec}: unknown fit .*{re.escape(hint)}"):
        resolve_prior([spec])
    with pytest.raises(DesignError, match=f"^--prior {spec}: unknown fit .*{re.escape(hint)}"):
        plan(3, prior=[spec])
    res = CliRunner().invoke(main, ["plan", "--runs", "3", "--prior", spec])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and hint in res.output


def test_a_fit_of_a_tidy_csv_can_be_a_prior_member(data_dir, tmp_path, monkeypatch):
    """A hostile round: a member fitted from a CSV failed with 'three.csv is neither a folder
    nor a zip' (its runs were read as an archive), and -o over a --prior file overwrote it."""
    import csv

    from calibration.archives import read_runs

    runs = [r for r in read_runs(data_dir / "dmc_bro_ablations.zip", env="cheetah-run")
            if r.tags.get("passive_critic", "False") == "False"][:4]
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["utd", "params", "batch_size", "seed", "step", "return"])
        for r in runs:
            steps, values = r.steps["return"], r.values["return"]
            for s in range(values.shape[1]):
                w.writerows([r.utd, r.params, int(r.batch_size), s, int(steps[t]),
                             repr(float(values[t, s]))] for t in range(len(steps)))
    base = [path, "--algorithm", "mine", "--input-dim", "23", "--n-boot", "0"]
    res = _fit([*base, "--env", "cheetah", "-o", tmp_path / "member.json", "--prior", "dmc"])
    assert res.exit_code == 0, res.output
    members = ["--prior", tmp_path / "member.json"] + [
        a for fit_id in ("bro/dog-run", "bro/dog-trot", "bro/fish-swim", "bro/walker-run")
        for a in ("--prior", fit_id)]
    monkeypatch.setenv("ADVISOR_DATA_DIR", f"{tmp_path / 'nowhere'}:{data_dir}")  # PATH-like
    monkeypatch.chdir(tmp_path)
    res = _fit([*base, "--env", "other", "-o", tmp_path / "few.json", *members])
    assert res.exit_code == 0, res.output
    assert advisor.load_fit(str(tmp_path / "few.json")).model.provenance.prior is not None
    before = (tmp_path / "member.json").read_bytes()
    res = _fit([*base, "--env", "other", "-o", tmp_path / "member.json", *members])
    assert res.exit_code == 2 and "would overwrite --prior" in res.output, res.output
    assert (tmp_path / "member.json").read_bytes() == before


def test_member_runs_are_looked_for_in_every_data_folder_until_the_hash_matches(data_dir,
                                                                                tmp_path):
    """A hostile tester's: a changed copy of an archive in an earlier data folder hid the right
    one in a later folder, and the error said the archive 'is not in' either."""
    from calibration.prior import member_tables

    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "fitted_bs.zip").write_bytes(b"not the published archive")
    fit = advisor.load_fit("bro/h1-pole-v0")
    (table,) = member_tables([fit], [stale, data_dir])
    assert len(table.utd) == fit.model.goodness_of_fit.n_configs
    with pytest.raises(PriorError, match=r"is not in .*stale \(found changed: .*stale/"
                       r"fitted_bs.zip, another sha256\)"):
        member_tables([fit], [stale])


def test_a_damaged_family_calibration_file_is_one_line(tmp_path, monkeypatch):
    """A reviewer's: a file in calibration/families/ that is not JSON, or lacks its members,
    was a KeyError or JSONDecodeError traceback."""
    from calibration import prior

    monkeypatch.setattr(prior, "FAMILY_DIR", tmp_path)
    (tmp_path / "dmc.json").write_text("{not json")
    with pytest.raises(prior.PriorError, match="is not valid JSON"):
        prior._stored_calibration([("bro/dog-run", "x")])
    (tmp_path / "dmc.json").write_text('{"name": "dmc"}')
    with pytest.raises(prior.PriorError, match="has no members list"):
        prior._stored_calibration([("bro/dog-run", "x")])
