"""calibration.design: subset fits, few-shot fits with a family prior, designs, `advisor plan`."""

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from calibration import design as D
from calibration.curves import DataTable
from calibration.grid import load_grid, load_grid_dict, preset, stage2_units
from calibration.plan_cli import plan as plan_cmd

UTDS = np.array([1.0, 2.0, 5.0, 10.0, 15.0])
PARAMS = np.array([0.55e6, 1.05e6, 2.83e6, 4.92e6, 26.31e6])
CEN = D.Centring(float(np.log(UTDS).mean()), float(np.log(PARAMS).mean()), float(np.log(2e5)))


def law_theta(offsets=(0.0, 0.0, 0.0), alpha=0.8, beta=0.6, m=4):
    """theta in CEN with each of c0, c1, c2 linear across thresholds (zero smoothness penalty)."""
    j = np.arange(m)[:, None]
    shape = np.array([-1.0, -0.3, -0.6]) + np.array([0.25, 0.12, 0.2]) * j
    return np.r_[(shape + np.asarray(offsets)[None, :]).ravel(), alpha, beta]


def table_of(theta, m=4, noise=0.0, seed=0, env="toy") -> DataTable:
    """A 5 x 5 utd x params data-to-target table whose D_J follows `theta` (in CEN) exactly,
    times log-normal noise."""
    u, p = np.meshgrid(UTDS, PARAMS, indexing="ij")
    u, p = u.ravel(), p.ravel()
    coef = CEN.coef(theta, m)
    data = coef[:, 0] + (coef[:, 1] / u[:, None]) ** coef[:, 2] \
        + (coef[:, 3] / p[:, None]) ** coef[:, 4]
    data = data * np.exp(noise * np.random.default_rng(seed).standard_normal(data.shape))
    n = len(u)
    return DataTable(env, u, p, np.full(n, 128.0), np.linspace(100.0, 400.0, m),
                     np.full(n, 1e9), data, np.zeros((0, n, m)), np.full(n, 10))


def test_centring_round_trips_coefficients():
    theta = law_theta()
    assert np.allclose(CEN.theta(CEN.coef(theta, 4)), theta)


def test_subset_fit_recovers_known_laws_from_noise_free_runs():
    theta = law_theta()
    table = table_of(theta)
    keep = D.factorial_design(table.utd, table.params, 3, 3)
    assert len(keep) == 9
    fit = D.subset_fit(table, keep)
    true = CEN.coef(theta, 4)
    assert np.allclose(fit.coef[:, [2, 4]], true[:, [2, 4]], rtol=1e-3)  # exponents
    assert np.allclose(fit.coef[:, [0, 1, 3]], true[:, [0, 1, 3]], rtol=1e-2)
    rest = np.setdiff1d(np.arange(25), keep)
    assert D.holdout_error(table, fit, rest) < 1e-4


def test_few_shot_recovers_a_tasks_offsets_from_three_runs_given_its_family():
    prior = D.FamilyPrior(CEN, law_theta()[:12].reshape(4, 3), 0.8, 0.6)
    table = table_of(law_theta(offsets=(0.4, -0.3, 0.2)))
    keep = D.optimal_design(3, table.utd, table.params, [prior.theta()], 4, CEN, model="offsets")
    for weights in ((np.inf, np.inf), (D.FEW_SHOT_SHAPE_WEIGHT, D.FEW_SHOT_EXPONENT_WEIGHT)):
        fit = D.few_shot_fit(table, keep, prior, shape_weight=weights[0],
                             exponent_weight=weights[1])
        assert D.holdout_error(table, fit, np.setdiff1d(np.arange(25), keep)) < 1e-4


def family(noise=0.05):
    offsets = [(0.0, 0.0, 0.0), (0.5, -0.2, 0.3), (-0.3, 0.4, -0.1)]
    return [table_of(law_theta(o), noise=noise, seed=i, env=f"t{i}") for i, o in enumerate(offsets)]


def test_few_shot_fit_with_all_runs_equals_the_pooled_fit():
    """Pooled fit: shape and exponents shared, 3 offsets per task (design.py docstring). Each
    task's offsets are optimal given the shared quantities, so a few-shot fit of that task on
    all its runs, with the pooled fit as its prior, returns the pooled fit's law for it."""
    tables = family()
    pooled = D.pooled_fit(tables)
    for t in (1, 2):
        few = D.few_shot_fit(tables[t], np.ones(25, bool), pooled.prior,
                             shape_weight=np.inf, exponent_weight=np.inf)
        assert np.allclose(few.coef, pooled.laws[t].coef, rtol=1e-4)
    # Free weights on the shape/exponents would move away from the pooled law: not the same.
    free = D.few_shot_fit(tables[1], np.ones(25, bool), pooled.prior, shape_weight=0.0)
    assert not np.allclose(free.coef, pooled.laws[1].coef, rtol=1e-3)


def test_prior_weights_interpolate_between_borrowed_and_free():
    tables = family(noise=0.1)
    prior = D.median_prior([D.subset_fit(t, np.ones(25, bool)) for t in tables[1:]], CEN)
    keep = np.ones(25, bool)
    held = D.few_shot_fit(tables[0], keep, prior, shape_weight=np.inf, exponent_weight=np.inf)
    loose = D.few_shot_fit(tables[0], keep, prior, shape_weight=1e-6, exponent_weight=1e-6)
    tight = D.few_shot_fit(tables[0], keep, prior, shape_weight=1e6, exponent_weight=1e6)
    assert np.allclose(tight.coef, held.coef, rtol=1e-2)
    err = [D.holdout_error(tables[0], f, keep) for f in (held, loose)]
    assert err[1] <= err[0] + 1e-9  # more freedom never fits its own runs worse


def test_a_subset_without_any_reached_threshold_is_a_design_error():
    table = table_of(law_theta())
    table.data[:3] = np.nan
    with pytest.raises(D.DesignError, match="nothing to fit"):
        D.subset_fit(table, np.arange(3))


def test_designs_pick_the_expected_configurations():
    u, p = np.meshgrid(UTDS, PARAMS, indexing="ij")
    u, p = u.ravel(), p.ravel()
    corners = D.corner_design(u, p)
    assert {(u[i], p[i]) for i in corners} == {(1, 0.55e6), (1, 26.31e6), (15, 0.55e6),
                                               (15, 26.31e6), (5, 2.83e6)}
    fact = D.factorial_design(u, p, 3, 3)
    assert set(u[fact]) == {1, 5, 15} and set(p[fact]) == {0.55e6, 2.83e6, 26.31e6}
    for model in ("free", "offsets", "prior"):
        idx = D.optimal_design(6, u, p, [law_theta()], 4, CEN, model=model, include=[12])
        assert len(set(idx)) == 6 and 12 in idx


def test_plan_round_trips_through_the_grid_loader_calibrate_uses(tmp_path):
    p = D.plan(5, preset_name="reduced", input_dim=30, steps=50_000, seeds=3)
    assert p.k == 5 and len({(r.utd, r.width) for r in p.runs}) == 5
    assert all(r.steps == 50_000 and r.seeds == (0, 1, 2) for r in p.runs)
    path = D.write_plan(p, tmp_path / "grid.json")
    grid = load_grid(path)  # what `advisor calibrate --grid FILE` calls
    assert grid == p.grid()
    assert [(c.utd, c.width) for c in grid.configs] == [(r.utd, r.width) for r in p.runs]
    units = stage2_units(grid, lambda u, w: 256)
    assert sorted((u, unit.width) for unit in units for u in set(unit.utds)) == \
        sorted((r.utd, r.width) for r in p.runs)
    assert set(grid.utds) == {1, 2, 4} and set(grid.widths) == {128, 256, 512}  # stage 1 axes


def test_plan_on_a_preset_that_names_its_stage_2_configs_chooses_among_them(tmp_path):
    """The cpu preset runs utd 8 in stage 2 only (its configs): `advisor plan --preset cpu`
    chose among utd 1/2/4 x width, the stage-1 axes, and never planned utd 8."""
    cpu = preset("cpu")
    assert cpu.utds == [1, 2, 4] and {c.utd for c in cpu.configs} == {1, 2, 4, 8}
    every = D.plan(12, preset_name="cpu", input_dim=4)
    assert every.design == "every configuration of the 4 utds x 3 widths grid"
    assert sorted((r.utd, r.width) for r in every.runs) == sorted(
        (c.utd, c.width) for c in cpu.configs)
    p = D.plan(5, preset_name="cpu", input_dim=4)
    assert "5 of 4 utds x 3 widths" in p.design and any(r.utd == 8 for r in p.runs)
    grid = load_grid(D.write_plan(p, tmp_path / "grid.json"))
    assert grid.utds == cpu.utds and len(grid.configs) == 5  # stage 1 as the preset's
    with pytest.raises(D.DesignError, match=r"between 1 and the 12 candidate configurations "
                                            r"\(4 utds x 3 widths\), got 13"):
        D.plan(13, preset_name="cpu", input_dim=4)
    # axes given on the command line replace the configs, as before
    assert "5 of 2 utds x 3 widths" in D.plan(5, preset_name="cpu", utds=[1, 4],
                                                input_dim=4).design


def test_grid_configs_are_additive():
    """Grids without planned configs keep their digest (resume) and their stage 2."""
    g = preset("reduced")
    assert g.configs is None
    dumped = g.model_dump()
    del dumped["configs"]
    assert load_grid_dict(dumped).digest() == g.digest()
    units = stage2_units(g, lambda u, w: 128)
    assert sum(len(set(unit.utds)) for unit in units) == len(g.utds) * len(g.widths)
    with pytest.raises(ValueError, match="distinct"):
        load_grid_dict(dict(dumped, configs=[{"utd": 1, "width": 128}] * 2))


def test_plan_with_a_family_prior_plans_a_few_shot_fit(tmp_path):
    p = D.plan(3, prior=["bro/dog-run", "bro/dog-walk"], batch_from_prior=True)
    assert p.model == "prior" and p.prior == ("bro/dog-run", "bro/dog-walk")
    assert all(r.batch_size == 128 for r in p.runs)  # the DMC fits' fixed batch
    with pytest.raises(D.DesignError, match="at least 5"):
        D.write_plan(p, tmp_path / "unused.json")
    assert not (tmp_path / "unused.json").exists()


def test_a_prior_too_small_for_a_few_shot_fit_plans_the_free_fit_calibrate_makes():
    """A hostile round: a prior of 2 fits and 5 runs printed "D-optimal for a few-shot fit"
    (widths 128 and 512 only, which a free fit's axes check refuses) above a note that
    calibrate fits the grid freely. The design is now the free fit's, as without --prior."""
    small = D.plan(5, prior=["bro/h1-crawl-v0", "bro/h1-pole-v0"], input_dim=23)
    free = D.plan(5, input_dim=23)
    assert small.model == "free" and small.prior == () and small.runs == free.runs
    assert small.design == free.design and small.design.startswith("D-optimal for a free fit")
    assert len({r.width for r in small.runs}) == 3
    assert any("too few for a few-shot fit (it takes 5 or more): this design is for the free "
               "fit" in n for n in small.notes)
    assert D.plan_problem(small) is None


def test_plan_click_command_on_a_standalone_group(tmp_path):
    group = click.Group("advisor")
    group.add_command(plan_cmd)
    out = tmp_path / "g.json"
    res = CliRunner().invoke(group, ["plan", "--runs", "5", "--utds", "1,2,4,8",
                                     "--widths", "128,256,512", "--input-dim", "30",
                                     "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert len(load_grid(out).configs) == 5 and "wrote" in res.output
    res = CliRunner().invoke(group, ["plan", "--runs", "4", "--format", "json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert len(doc["runs"]) == 4
    assert any("cannot run this plan" in n and "at least 5 configurations" in n
               for n in doc["notes"])
    # With -o, stdout stays one JSON document and the "wrote" line goes to stderr.
    res = CliRunner().invoke(group, ["plan", "--runs", "5", "--utds", "1,2,4,8", "--widths",
                                     "128,256,512", "--input-dim", "30", "--format", "json",
                                     "-o", str(tmp_path / "j.json")])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["runs"]) == 5
    assert res.stderr.startswith(f"wrote {tmp_path / 'j.json'}: advisor calibrate")
    # A prior of 2 fits: printed, with the reason calibrate would refuse it, and -o refuses it.
    args = ["plan", "--runs", "3", "--prior", "bro/dog-run", "--prior", "bro/dog-walk"]
    res = CliRunner().invoke(group, args)
    # notes on stderr, as every command's (a new user found one on stdout)
    assert res.exit_code == 0 and "note: advisor calibrate cannot run this plan" in res.stderr
    assert "at least 5 fits" in res.stderr and res.stderr.count("cannot run") == 1
    assert "note:" not in res.stdout
    res = CliRunner().invoke(group, [*args, "-o", str(tmp_path / "no.json")])
    assert res.exit_code == 2 and "at least 5 fits" in res.output
    assert res.output.count("at least 5 fits") == 1  # the error, not a note too (a hostile round)
    # 5 runs with that prior: a free fit can run the grid: written, without --prior in the hint.
    res = CliRunner().invoke(group, ["plan", "--runs", "5", "--preset", "smoke", "--prior",
                                     "bro/h1-crawl-v0", "--prior", "bro/h1-stand-v0", "-o",
                                     str(tmp_path / "free.json")])
    assert res.exit_code == 0 and "this design is for the free fit advisor calibrate makes" \
        in res.stderr
    assert "--prior" not in res.stdout.splitlines()[-1]
    # The same fit five times, and a family name among fits: as calibrate says.
    res = CliRunner().invoke(group, ["plan", "--runs", "3", *["--prior", "bro/dog-run"] * 5,
                                     "-o", str(tmp_path / "twice.json")])
    assert res.exit_code == 2 and "names fit bro/dog-run twice" in res.output
    res = CliRunner().invoke(group, ["plan", "--runs", "3", "--prior", "dmc", "--prior",
                                     "bro/dog-run"])
    assert res.exit_code == 2 and "names a family; give it alone" in res.output
    res = CliRunner().invoke(group, ["plan", "--runs", "5"])
    assert res.exit_code == 0 and "cannot run" not in res.output
    # Every preset calibrate takes, minutes included: its packed stage 1 stays in the grid.
    res = CliRunner().invoke(group, ["plan", "--runs", "5", "--preset", "minutes", "-o",
                                     str(tmp_path / "minutes.json")])
    assert res.exit_code == 0, res.output
    grid = load_grid(tmp_path / "minutes.json")
    assert grid.pack_batch_sizes and grid.steps == 10_000 and len(grid.configs) == 5
    res = CliRunner().invoke(group, ["plan", "--runs", "40"])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "between 1 and" in res.output


def test_plan_output_never_replaces_a_file_that_is_not_a_grid(tmp_path):
    """A hostile tester's: `plan -o runs.csv` (or a fit file, shipped ones included) replaced
    the file with the grid. Only a new path or an earlier grid file is written."""
    import advisor

    group = click.Group("advisor")
    group.add_command(plan_cmd)
    args = ["plan", "--runs", "5", "--utds", "1,2,4,8", "--widths", "128,256,512",
            "--input-dim", "30", "-o"]
    runs = tmp_path / "runs.csv"
    runs.write_text("utd,width,batch_size,seed,step,return\n1,128,256,0,1000,5\n")
    fit = tmp_path / "fit.json"
    fit.write_bytes(advisor.registry.fit_path("bro/cheetah-run").read_bytes())
    record = tmp_path / "grid.json"  # an out-dir's record of its grid
    record.write_text(json.dumps({"env_id": "Hopper-v5", "grid": {}, "digest": "x"}))
    for victim in (runs, fit, record):
        before = victim.read_bytes()
        res = CliRunner().invoke(group, [*args, str(victim)])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert "would replace a file that is not a grid" in res.output
        assert victim.read_bytes() == before
    plan = tmp_path / "plan.json"
    assert CliRunner().invoke(group, [*args, str(plan)]).exit_code == 0
    assert CliRunner().invoke(group, [*args, str(plan)]).exit_code == 0  # an earlier plan
    assert len(load_grid(plan).configs) == 5


def test_plan_axes_with_an_empty_item_are_refused():
    """A hostile tester's: --utds 1,,2 was read as 1,2 silently (a trailing comma is fine)."""
    group = click.Group("advisor")
    group.add_command(plan_cmd)
    res = CliRunner().invoke(group, ["plan", "--runs", "5", "--utds", "1,,2,4"])
    assert res.exit_code == 2 and "--utds has an empty item: '1,,2,4'" in res.output
    assert CliRunner().invoke(group, ["plan", "--runs", "5", "--utds", "1,2,4,"]).exit_code == 0


def test_plan_axes_that_repeat_a_value_say_so():
    """--utds 2,2,2 read as 'utds: List should have at least 2 items after validation'."""
    group = click.Group("advisor")
    group.add_command(plan_cmd)
    for option in ("--utds", "--widths"):
        res = CliRunner().invoke(group, ["plan", "--runs", "5", option, "2,2,4"])
        assert res.exit_code == 2 and f"{option} repeats a value: '2,2,4'" in res.output, \
            res.output


def test_plan_counts_params_at_an_envs_input_with_env(tmp_path):
    """A hostile tester's: `plan --preset cpu` counted params at 64 inputs (13,908 at width
    32) where Pendulum-v1's critic takes 4 (10,068, as the shipped fit counts them). The env
    is made and checked as calibrate makes it (a second tester's: plan and calibrate differed)."""
    pytest.importorskip("gymnasium")
    pytest.importorskip("torch")
    import advisor

    group = click.Group("advisor")
    group.add_command(plan_cmd)
    res = CliRunner().invoke(group, ["plan", "--runs", "6", "--preset", "cpu", "--env",
                                     "Pendulum-v1", "--format", "json", "-o",
                                     str(tmp_path / "g.json")])
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)["runs"]
    # the command to run next names the env given (a new user's: it said --env ENV)
    assert res.stderr == (f"wrote {tmp_path / 'g.json'}: advisor calibrate --env Pendulum-v1 "
                          f"--grid {tmp_path / 'g.json'} --out-dir DIR\n")
    fit = advisor.load_fit("bro-torch/Pendulum-v1")
    assert {r["width"]: r["params"] for r in runs} == {
        w: pytest.approx(float(fit.params(w))) for w in {r["width"] for r in runs}}
    for args, said in ((["--env", "Pendulum-v1", "--input-dim", "4"], "give one"),
                       (["--env", "CartPole-v1"], "has a Discrete action space; the SAC learner "
                        "needs continuous (Box) actions"),  # as calibrate says it
                       (["--env", "no such"], "unknown or unavailable gymnasium env")):
        res = CliRunner().invoke(group, ["plan", "--runs", "6", "--preset", "cpu", *args])
        assert res.exit_code == 2 and said in res.output, res.output
