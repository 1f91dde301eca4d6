"""Exports that RL codebases take unchanged: rl-zoo files, Stable-Baselines3 SAC kwargs and CleanRL
flags. The clients themselves run where the `clients` extra is installed (a few hundred CPU steps
on Pendulum-v1 with a tiny synthetic fit); CleanRL runs when ADVISOR_CLEANRL_SAC points at its
sac_continuous_action.py (it is not on PyPI in a usable form)."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import advisor
from advisor.cli import main
from advisor.errors import ExportError
from advisor.fitfile import (
    Architecture,
    BatchSizeLaw,
    Bootstrap,
    DataLaw,
    DataToTarget,
    Domain,
    dump_fit_file,
)
from advisor.integrations import _yaml, cleanrl, sb3, zoo
from advisor.integrations.critic import bronet_shape, critic_match

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
ENV = "Pendulum-v1"
PENDULUM_INPUT = 3 + 1  # obs + action


@pytest.fixture(scope="module")
def pendulum_fit(tmp_path_factory) -> Path:
    """A tiny BroNet fit for Pendulum-v1 (input 4): widths 16-64, a few hundred env steps."""
    base = advisor.load_fit("bro/h1-stand-v0").model
    model = base.model_copy(update=dict(
        id="test/pendulum-v1",
        architecture=Architecture(
            description="BroNet double critic, 2 residual blocks, 100 quantiles, input 4",
            coefficients=[8.0, 2.0 * (PENDULUM_INPUT + 3 + 12 + 100), 200.0], width_multiple=16),
        domain=Domain.model_validate(dict(utd=dict(low=1, high=4),
                                          params=dict(low=8000, high=40000),
                                          target=dict(low=-1200, high=-800))),
        data_to_target=DataToTarget(laws=[
            DataLaw(target=-1200, d_min=100, a=150, alpha=1.0, b=1e6, beta=1.0),
            DataLaw(target=-800, d_min=150, a=300, alpha=1.0, b=2e6, beta=1.0)]),
        batch_size=BatchSizeLaw(kind="fixed", source="fixed", a_b=64),
        delta=1e6, random_steps=50,
        bootstrap=Bootstrap(n_resamples=0, seed=0, draws=[]),
        # one interval for its two thresholds (the bands name h1-stand's)
        prediction_interval=base.prediction_interval.model_copy(update=dict(bands=None)),
    ))
    path = tmp_path_factory.mktemp("fits") / "pendulum-v1.json"
    path.write_text(dump_fit_file(model))
    return path


@pytest.fixture(scope="module")
def rec(pendulum_fit):
    r = advisor.recommend(advisor.Budget(data=400), fit=str(pendulum_fit))
    assert (r.gradient_steps, r.train_freq, r.width) == (5, 2, 32)  # utd > 1, a tiny critic
    return r


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def client_env() -> dict:
    """Subprocesses import this checkout's advisor (rl-zoo imports BroNetSACPolicy by name)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env["OMP_NUM_THREADS"] = "1"  # tiny nets: more threads only spin (13x slower on 2 busy cores)
    return env


@pytest.fixture
def one_thread():
    """Tiny networks on CPU: one torch thread (several spin on a busy machine)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- without the clients ---------------------------------------------------------------------
def test_integrations_import_neither_torch_nor_sb3():
    code = ("import sys, advisor; from advisor.integrations import sb3, zoo, cleanrl; "
            "r = advisor.recommend(1e17); sb3.sac_kwargs(r); zoo.zoo_yaml(r, 'Humanoid-v5'); "
            "cleanrl.cleanrl_flags(r); print([m for m in ('torch', 'stable_baselines3', "
            "'gymnasium', 'rl_zoo3', 'calibration', 'yaml') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=client_env())
    assert out.stdout.strip() == "[]"


@given(st.one_of(st.floats(allow_nan=False), st.integers(-10**20, 10**20), st.booleans(),
                 st.none(), st.text(max_size=30)))
def test_yaml_scalars_read_back_as_the_same_value(x):
    assert yaml.safe_load(f"k: {_yaml.scalar(x)}")["k"] == x


@pytest.mark.parametrize("fit_id", [f for f in advisor.list_fits() if f.startswith("bro/")])
def test_every_bronet_fit_reads_as_its_described_bronet(fit_id):
    fit = advisor.load_fit(fit_id)
    shape = bronet_shape(fit)
    assert (shape.blocks, shape.quantiles) == (2, 100)
    assert fit.model.architecture.description.endswith(f"input {shape.input_dim}")
    for w in (64, 512, 4096):
        assert shape.params(w) == fit.params(w)


def test_simbav2_fits_are_refused_in_one_line():
    rec = advisor.recommend(1e17, fit="simbav2/h1-crawl-v0")
    with pytest.raises(ExportError, match="not a BroNet") as err:
        sb3.sac_kwargs(rec)
    assert "\n" not in str(err.value)
    res = run("recommend", "--fit", "simbav2/h1-crawl-v0", "--compute", "1e17", "--format",
              "zoo", "--env", ENV)
    assert res.exit_code == 2 and "not a BroNet" in res.output and "Traceback" not in res.output
    assert run("recommend", "--fit", "simbav2/h1-crawl-v0", "--compute", "1e17", "--format",
               "args").exit_code == 0


def test_critic_shortfall_is_stated_exactly(rec, pendulum_fit):
    w, q = rec.width, 100
    bro = critic_match(rec, "bronet", fit=pendulum_fit)
    mlp = critic_match(rec, "mlp", fit=pendulum_fit)
    assert bro.params_fit == rec.params == 8 * w * w + 238 * w + 200
    assert bro.shortfall == 2 * (q - 1) * (w + 1)
    assert mlp.shortfall == 2 * (10 * w + (q - 1) * (w + 1))
    assert "99w+99" in bro.note and "109w+99" in mlp.note and "LayerNorm" in mlp.note


def test_zoo_file_is_an_rl_zoo_entry_with_real_numbers(rec, pendulum_fit):
    text = zoo.zoo_yaml(rec, ENV, fit=pendulum_fit)
    doc = yaml.safe_load(text)
    assert list(doc) == [ENV]
    entry = doc[ENV]
    assert entry == zoo.zoo_hyperparams(rec, ENV, fit=pendulum_fit)[ENV]
    assert entry["n_timesteps"] == sb3.total_timesteps(rec) >= rec.predicted_data
    assert isinstance(entry["n_timesteps"], int) and isinstance(entry["learning_rate"], float)
    assert (entry["train_freq"], entry["gradient_steps"]) == (2, 5)
    assert entry["policy"] == sb3.BRONET_POLICY
    assert eval(entry["policy_kwargs"]) == dict(critic_width=32, critic_blocks=2)
    comments = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any("extrapolated: false" in c for c in comments)
    assert sum("warning:" in c for c in comments) == len(rec.warnings) > 0
    assert any("99w+99" in c for c in comments)
    mlp = yaml.safe_load(zoo.zoo_yaml(rec, ENV, critic="mlp", fit=pendulum_fit))[ENV]
    assert mlp["policy"] == "MlpPolicy"
    assert eval(mlp["policy_kwargs"]) == sb3.policy_kwargs(rec, "mlp", fit=pendulum_fit)


def test_zoo_file_of_a_total_budget_says_its_predicted_total_and_delta():
    """A total budget limits C + delta*D: the file's comment gives both (it gave C alone)."""
    import advisor

    r = advisor.recommend(advisor.Budget(total=1e18, delta=1e12), fit="bro/h1-crawl-v0")
    text = zoo.zoo_yaml(r, ENV, fit="bro/h1-crawl-v0")
    assert f"predicted total {r.predicted_total:.4g} FLOPs (delta 1e+12)" in text
    r = advisor.recommend(advisor.Budget(data=5e5), fit="bro/h1-crawl-v0")
    assert "predicted total" not in zoo.zoo_yaml(r, ENV, fit="bro/h1-crawl-v0")


def test_cli_zoo_needs_an_env_and_prints_the_file(rec, pendulum_fit):
    args = ["recommend", "--fit", pendulum_fit, "--data", "400", "--format", "zoo"]
    res = run(*args)
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "--env" in res.output
    res = run(*args, "--env", ENV)
    assert res.exit_code == 0
    assert res.stdout.strip() == zoo.zoo_yaml(rec, ENV, fit=pendulum_fit).strip()
    assert "warning:" in res.stderr and "note: SB3 BroNetSACPolicy critic" in res.stderr
    for bad in (["--env", "a b"], ["--format", "json", "--env", ENV],
                ["--format", "table", "--critic", "mlp"]):
        res = run("recommend", "--fit", pendulum_fit, "--data", "400", *bad)
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output


def test_cli_args_are_cleanrl_flags_with_a_note_on_stderr(rec, pendulum_fit):
    res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", "args", "--env",
              ENV)
    assert res.exit_code == 0
    assert res.stdout.split() == ["--env-id", ENV, "--total-timesteps",
                                  str(math.ceil(rec.predicted_data)), "--batch-size", "64",
                                  "--q-lr", "0.0003", "--policy-lr", "0.0003",
                                  "--learning-starts", "50"]
    assert res.stdout.split() == cleanrl.cleanrl_flags(rec, ENV)
    note = [ln for ln in res.stderr.splitlines() if ln.startswith("note:")]
    assert len(note) == 1 and "utd 5/2" in note[0] and "256-256" in note[0]
    assert sum(ln.startswith("warning:") for ln in res.stderr.splitlines()) == len(rec.warnings)


def test_env_ids_are_checked_against_gymnasium_where_installed(pendulum_fit):
    """A discrete env is refused (SAC takes a Box); an id Gymnasium does not know is written
    all the same, with one warning naming Gymnasium's own hint."""
    pytest.importorskip("gymnasium")
    for fmt in ("zoo", "args"):
        res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", fmt,
                  "--env", "CartPole-v1")
        assert res.exit_code == 2 and res.stdout == "", res.output
        assert res.stderr.count("\n") == 1 and "Discrete(2)" in res.stderr
        assert "continuous (Box)" in res.stderr
    res = run("export", pendulum_fit, "--kind", "data", "--budgets", "400", "--format", "zoo",
              "--env", "CartPole-v1")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "Discrete(2)" in res.stderr
    with pytest.raises(ExportError, match="Discrete"):
        zoo.check_env_actions("CartPole-v1")
    zoo._WARNED.discard("pendulum-v1")
    res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", "args", "--env",
              "pendulum-v1")
    assert res.exit_code == 0 and res.stdout.split()[:2] == ["--env-id", "pendulum-v1"]
    hint = [ln for ln in res.stderr.splitlines() if "does not know env id" in ln]
    assert len(hint) == 1 and "Did you mean: `Pendulum`?" in hint[0], res.stderr
    zoo.check_env_actions(ENV)  # a Box env passes


def test_an_env_gymnasium_cannot_make_here_gets_one_warning(pendulum_fit):
    """A fresh user's `--env Humanoid-v5` without MuJoCo counted the critic at the fit's input
    in silence: Gymnasium knew the id but could not make the env."""
    gymnasium = pytest.importorskip("gymnasium")
    env_id = "AdvisorTest/NeedsAMissingSimulator-v0"
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point="advisor_no_such_simulator:Env")
    zoo._gymnasium_probe.cache_clear()
    zoo._WARNED.discard(env_id)
    res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", "zoo", "--env",
              env_id)
    assert res.exit_code == 0 and "gradient_steps:" in res.stdout, res.output
    lines = [ln for ln in res.stderr.splitlines() if "could not make" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: "), res.stderr
    assert "ModuleNotFoundError" in lines[0] and "counted at the fit's input" in lines[0]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_json_and_yaml_keep_every_field(fmt, pendulum_fit):
    res = run("recommend", "--fit", "bro/h1-crawl-v0", "--compute", "1e17", "--format", fmt)
    assert res.exit_code == 0 and res.stderr == ""
    doc = json.loads(res.stdout) if fmt == "json" else yaml.safe_load(res.stdout)
    rec = advisor.recommend(1e17)
    assert doc == json.loads(rec.model_dump_json())
    assert doc["extrapolated"] is True and doc["warnings"] == rec.warnings


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
        return super().construct_mapping(node, deep)


def test_export_yaml_has_real_numbers_unique_keys_and_sac_entries():
    res = run("export", "bro/h1-crawl-v0", "--budgets", "1e10,1e15,1.5e16,1e18")
    assert res.exit_code == 0
    doc = yaml.load(res.stdout, Loader=_UniqueKeyLoader)
    assert list(doc) == ["compute_1e10", "compute_1e15", "compute_1.5e16", "compute_1e18"]
    assert "error" in doc["compute_1e10"]
    for key in list(doc)[1:]:
        e = doc[key]
        for k in ("compute", "utd", "params", "target", "predicted_data", "predicted_compute"):
            assert isinstance(e[k], float), (key, k, e[k])
        assert isinstance(e["n_timesteps"], int) and isinstance(e["extrapolated"], bool)
        assert set(e["hyperparameters"]) == {"batch_size", "learning_rate", "train_freq",
                                             "gradient_steps", "learning_starts",
                                             "policy_kwargs"}
        assert e["hyperparameters"]["learning_starts"] == 2500  # paper A's random steps
        assert e["policy"] == "MlpPolicy" and "LayerNorm" in e["critic"]
        assert e["warnings"] == advisor.recommend(e["compute"]).warnings
    js = json.loads(run("export", "bro/h1-crawl-v0", "--budgets", "1e10,1e15,1.5e16,1e18",
                        "--format", "json").stdout)["budgets"]
    assert js == [{k: v for k, v in doc[key].items()} for key in doc]


def test_export_zoo_is_one_file_per_budget(tmp_path, pendulum_fit):
    res = run("export", pendulum_fit, "--kind", "data", "--budgets", "400,500", "--format", "zoo",
              "--env", ENV)
    assert res.exit_code == 2 and "one file per budget" in res.output
    res = run("export", pendulum_fit, "--kind", "data", "--budgets", "10,400,500", "--format",
              "zoo", "--env", ENV, "--out-dir", tmp_path / "zoo")
    assert res.exit_code == 0, res.output
    paths = res.stdout.split()
    assert [Path(p).name for p in paths] == [f"sac_{ENV}_data_400.yml", f"sac_{ENV}_data_500.yml"]
    assert "warning: data 10 skipped" in res.stderr
    first = yaml.safe_load(Path(paths[0]).read_text())[ENV]
    assert first["n_timesteps"] == sb3.total_timesteps(
        advisor.recommend(advisor.Budget(data=400), fit=str(pendulum_fit)))
    res = run("export", pendulum_fit, "--kind", "data", "--budgets", "400", "--format", "zoo",
              "--env", ENV)
    assert res.exit_code == 0 and yaml.safe_load(res.stdout)[ENV] == first
    res = run("export", "bro/h1-crawl-v0", "--budgets", "1e16", "--env", ENV)
    assert res.exit_code == 2 and "--format zoo" in res.output


# --- the clients, run ------------------------------------------------------------------------
def _critic_params(model) -> int:
    return sum(p.numel() for p in model.critic.parameters())


def test_sb3_sac_trains_with_sac_kwargs_and_the_stated_critic(rec, pendulum_fit, one_thread):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import SAC

    for critic in ("mlp", "bronet"):
        kwargs = sb3.sac_kwargs(rec, critic=critic, fit=pendulum_fit)
        model = SAC(sb3.sac_policy(critic), ENV, seed=0, device="cpu", **kwargs)
        match = critic_match(rec, critic, fit=pendulum_fit)
        assert _critic_params(model) == match.params_client
        assert rec.params - _critic_params(model) == match.shortfall
        assert model.batch_size == rec.batch_size and model.gradient_steps == 5
        assert model.train_freq.frequency == 2
        norms = sum(type(m).__name__ == "LayerNorm" for m in model.critic.modules())
        assert norms == (2 * (1 + 2 * 2) if critic == "bronet" else 0)
        model.learn(300)
        assert model.num_timesteps == 300
    model = SAC("MlpPolicy", ENV, device="cpu", **sb3.sac_kwargs(rec, fit=pendulum_fit))
    model.learn(sb3.total_timesteps(rec))  # whole rounds of train_freq steps: SB3 runs it exactly
    assert model.num_timesteps == sb3.total_timesteps(rec) == 2 * math.ceil(rec.predicted_data / 2)


def test_the_critic_is_counted_at_the_envs_own_input(one_thread):
    """A fresh user: on Humanoid-v5 the note said 8,564,738 params (at the fit's input 70);
    SB3 built 9,168,898 (at the env's 348 + 17). The CLI now counts at the env's input."""
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("mujoco")
    from stable_baselines3 import SAC

    env = "Humanoid-v5"
    assert zoo.env_input_dim(env) == 365
    rec = advisor.recommend(advisor.Budget(data=5e5))
    match = critic_match(rec, "bronet", input_dim=zoo.env_input_dim(env))
    model = SAC(sb3.sac_policy("bronet"), env, device="cpu", **sb3.sac_kwargs(rec, critic="bronet"))
    assert _critic_params(model) == match.params_client
    assert "at the env's input 365 = obs + action" in match.note
    res = run("recommend", "--data", "5e5", "--format", "zoo", "--env", env)
    assert res.exit_code == 0 and f"{match.params_client:,} params at the env's input" in res.stdout
    assert f"{match.params_client:,} params at the env's input" in res.stderr


def test_sb3_takes_export_entries_unchanged(pendulum_fit, one_thread):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import SAC

    res = run("export", pendulum_fit, "--kind", "data", "--budgets", "400", "--format", "json")
    entry = json.loads(res.stdout)["budgets"][0]
    model = SAC(entry["policy"], ENV, device="cpu", **entry["hyperparameters"])
    model.learn(200)
    assert _critic_params(model) == int(entry["params"]) - (
        2 * (10 * entry["width"] + 99 * (entry["width"] + 1)))


def _zoo_train(env: str, conf: Path, tmp_path: Path, *extra: str):
    """rl-zoo's own trainer on `env` with the hyperparameter file `conf`, logs under tmp_path."""
    return subprocess.run([sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", env,
                           *extra, "-conf", str(conf), "-f", str(tmp_path / "logs"), "--seed",
                           "0", "--device", "cpu", "--eval-freq", "-1", "--verbose", "0"],
                          capture_output=True, text=True, env=client_env(), cwd=tmp_path,
                          timeout=300)


@pytest.mark.parametrize("critic", ["bronet", "mlp"])
def test_rl_zoo_trains_with_the_generated_file(critic, tmp_path, rec, pendulum_fit):
    pytest.importorskip("rl_zoo3")
    from stable_baselines3 import SAC

    conf = tmp_path / "sac.yml"
    res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", "zoo", "--env",
              ENV, "--critic", critic)
    conf.write_text(res.stdout)
    out = _zoo_train(ENV, conf, tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    saved = list((tmp_path / "logs" / "sac").glob(f"{ENV}_*/{ENV}.zip"))
    assert len(saved) == 1, out.stdout[-2000:]
    model = SAC.load(saved[0], device="cpu")
    assert model.num_timesteps == sb3.total_timesteps(rec)  # n_timesteps from the file
    assert model.batch_size == rec.batch_size and model.gradient_steps == rec.gradient_steps
    assert _critic_params(model) == critic_match(rec, critic, fit=pendulum_fit).params_client
    config = (saved[0].parent / ENV / "config.yml").read_text()  # rl-zoo's record of the run
    assert yaml.safe_load(conf.read_text())[ENV]["policy"] in config


def test_rl_zoo_trains_a_calibrated_fits_file_written_without_env(tmp_path):
    """bro-torch/Pendulum-v1 was calibrated on Pendulum-v1 (advisor calibrate, a CPU): its zoo
    file, asked for without --env, is keyed by that env and rl-zoo trains it unchanged."""
    pytest.importorskip("rl_zoo3")
    from stable_baselines3 import SAC

    res = run("recommend", "--fit", "bro-torch/Pendulum-v1", "--data", "3000", "--target", "-900",
              "--utd", "1", "--format", "zoo")  # utd 1: 2,352 updates, not 4,300 at utd 26/3
    assert res.exit_code == 0 and "no --env: the output is for Pendulum-v1" in res.stderr
    conf = tmp_path / "sac.yml"
    conf.write_text(res.stdout)
    (env,) = yaml.safe_load(res.stdout)
    entry = yaml.safe_load(res.stdout)[env]
    out = _zoo_train(env, conf, tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    (saved,) = (tmp_path / "logs" / "sac").glob(f"{env}_*/{env}.zip")
    model = SAC.load(saved, device="cpu")
    assert env == ENV and model.num_timesteps == entry["n_timesteps"]
    assert (model.batch_size, model.gradient_steps) == (entry["batch_size"],
                                                        entry["gradient_steps"])


def test_rl_zoo_trains_a_module_env_id_with_the_files_own_command(tmp_path):
    """A reviewer's: `--env pkg.envs:Env-v0` (an env its module registers on import) keyed the
    file by the whole id, which rl-zoo's registry check refuses, and Gymnasium's probe never
    imported the module (a false "does not know env id" warning). The file is keyed by the
    name, its header's command names the module as a gym package, and that command trains."""
    pytest.importorskip("rl_zoo3")
    module = "gymnasium.envs.classic_control"
    res = run("recommend", "--fit", "bro-torch/Pendulum-v1", "--data", "3000", "--target",
              "-900", "--utd", "1", "--format", "zoo", "--env", f"{module}:{ENV}")
    assert res.exit_code == 0 and "does not know" not in res.stderr, res.stderr
    assert "another task" not in res.stderr and "input 4 = obs + action" in res.stderr
    (env,) = yaml.safe_load(res.stdout)
    command = res.stdout.splitlines()[1].removeprefix("# ").split()
    assert env == ENV and command[command.index("--gym-packages") + 1] == module
    conf = tmp_path / "sac.yml"
    conf.write_text(res.stdout)
    out = _zoo_train(env, conf, tmp_path, "--gym-packages", module)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert len(list((tmp_path / "logs" / "sac").glob(f"{env}_*/{env}.zip"))) == 1


CLEANRL_SAC = os.environ.get("ADVISOR_CLEANRL_SAC")


@pytest.mark.skipif(not CLEANRL_SAC, reason="set ADVISOR_CLEANRL_SAC to CleanRL's "
                                            "cleanrl/sac_continuous_action.py to run it")
def test_cleanrl_sac_runs_with_the_flags(tmp_path, rec, pendulum_fit):
    pytest.importorskip("tyro")
    script = Path(CLEANRL_SAC).resolve()
    repo = script.parent.parent  # cleanrl_utils lives beside cleanrl/
    res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", "args", "--env",
              ENV)
    flags = res.stdout.split()
    # CleanRL expects gymnasium 0.29: on 1.x its `infos["final_observation"]` fails at the first
    # truncation (Pendulum: step 200), so stop before it and start learning early. tyro takes
    # the last value of a repeated flag.
    extra = ["--total-timesteps", "190", "--learning-starts", "50", "--no-cuda"]
    env = client_env()
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env["PYTHONPATH"]])
    out = subprocess.run([sys.executable, str(script), *flags, *extra], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "SPS:" in out.stdout  # it reached the training loop's logging
    events = list((tmp_path / "runs").glob(f"{ENV}__*/events.*"))
    assert events, "no tensorboard log written"
    text = events[0].read_bytes()
    assert re.search(rb"batch_size\|64\|", text) and re.search(rb"q_lr\|0\.0003\|", text)


def test_env_of_another_task_than_the_fit_gets_one_note():
    """A fresh user took --env Humanoid-v5 for a choice of fit: the numbers were h1-crawl's."""
    res = run("recommend", "--data", "5e5", "--format", "args", "--env", "Humanoid-v5")
    notes = [ln for ln in res.stderr.splitlines() if "a fit of another task" in ln]
    assert res.exit_code == 0 and len(notes) == 1 and "bro/h1-crawl-v0's" in notes[0]
    res = run("recommend", "--fit", "bro/cheetah-run", "--data", "5e5", "--format", "args",
              "--env", "dm_control/cheetah-run-v0")
    assert res.exit_code == 0 and "another task" not in res.stderr, res.stderr


def test_learning_starts_follow_the_fits_runs_or_a_note_says_they_do_not(pendulum_fit, tmp_path):
    """A fit that records its runs' random steps (random_steps) sets learning_starts in SB3's
    kwargs, the rl-zoo file and CleanRL's flags; one that does not leaves the clients' defaults
    and every output says so; a run longer than the clients' 1e6-transition replay says that
    too (a hostile round: CleanRL's 5,000 random steps took most of an 8,497-step budget)."""
    from advisor.fitfile import read_fit_file, write_fit_file

    rec = advisor.recommend(advisor.Budget(data=400), fit=str(pendulum_fit))
    assert rec.random_steps == 50 and sb3.sac_kwargs(rec, fit=pendulum_fit)["learning_starts"] == 50
    assert yaml.safe_load(zoo.zoo_yaml(rec, ENV, fit=pendulum_fit))[ENV]["learning_starts"] == 50
    assert cleanrl.cleanrl_flags(rec)[-2:] == ["--learning-starts", "50"]
    assert "learning_starts" not in cleanrl.cleanrl_note(rec) and sb3.protocol_notes(rec) == []
    unrecorded = tmp_path / "unrecorded.json"
    write_fit_file(read_fit_file(pendulum_fit).model_copy(update=dict(random_steps=None)),
                   unrecorded)
    bare = advisor.recommend(advisor.Budget(data=400), fit=str(unrecorded))
    assert bare.random_steps is None
    assert "learning_starts" not in sb3.sac_kwargs(bare, fit=unrecorded)
    assert "learning_starts" not in yaml.safe_load(zoo.zoo_yaml(bare, ENV, fit=unrecorded))[ENV]
    assert "--learning-starts" not in cleanrl.cleanrl_flags(bare)
    assert "learning_starts stays at CleanRL's default 5,000" in cleanrl.cleanrl_note(bare)
    text = zoo.zoo_yaml(bare, ENV, fit=unrecorded)
    assert "# note: learning_starts stays at SB3's default 100" in text
    res = run("recommend", "--fit", unrecorded, "--data", "400", "--format", "zoo", "--env", ENV)
    assert res.exit_code == 0 and "note: learning_starts stays at SB3's default 100" in res.stderr
    long = advisor.recommend(advisor.Budget(data=2e6), fit="bro/h1-crawl-v0")
    assert sb3.total_timesteps(long) > 1_000_000
    (note,) = sb3.protocol_notes(long)
    assert note == (f"SB3's replay buffer keeps the last 1,000,000 of the "
                    f"{sb3.total_timesteps(long):,} transitions (buffer_size "
                    f"{sb3.total_timesteps(long)} keeps them all)")
    steps = cleanrl.cleanrl_steps(long)
    assert f"--buffer-size {steps} keeps them all" in cleanrl.cleanrl_note(long)
    assert cleanrl.cleanrl_flags(long)[1] == str(steps)


@pytest.mark.slow
def test_sb3_takes_the_learning_starts(rec, pendulum_fit, one_thread):
    """SAC(**sac_kwargs(rec)) starts learning after the fit's random steps."""
    pytest.importorskip("stable_baselines3")
    gymnasium = pytest.importorskip("gymnasium")
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", gymnasium.make(ENV), **sb3.sac_kwargs(rec, fit=pendulum_fit),
                device="cpu")
    assert model.learning_starts == rec.random_steps == 50


def test_a_scalar_head_fit_is_not_said_to_lack_quantiles(pendulum_fit, tmp_path):
    """A new user's: a smoke calibration's critic (1 quantile) got 'a scalar head instead of 1
    quantiles ... 0w+0 = 0 fewer params per Q-net'."""
    model = advisor.load_fit(str(pendulum_fit)).model
    scalar = model.model_copy(update=dict(architecture=Architecture(
        description="BroNet double critic, 2 residual blocks, scalar head, input 4",
        coefficients=[8.0, 2.0 * (PENDULUM_INPUT + 3 + 12 + 1), 2.0], width_multiple=16)))
    path = tmp_path / "scalar.json"
    path.write_text(dump_fit_file(scalar))
    r = advisor.recommend(advisor.Budget(data=400), fit=str(path))
    bronet = critic_match(r, "bronet", fit=str(path))
    assert bronet.missing == "nothing: the fit's critic has a scalar head too"
    assert bronet.params_client == bronet.params_fit
    mlp = critic_match(r, "mlp", fit=str(path))
    assert mlp.missing.startswith("no LayerNorm: 10w = ") and "quantiles" not in mlp.note


DICT_ENV_MODULE = '''
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DictReach(gym.Env):
    """A goal env's observations: a Dict of Boxes."""

    observation_space = spaces.Dict({"observation": spaces.Box(-1, 1, (5,)),
                                     "desired_goal": spaces.Box(-1, 1, (3,))})
    action_space = spaces.Box(-1, 1, (2,))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), -float(np.sum(action ** 2)), False, False, {}


gym.register("DictReach-v0", entry_point=DictReach, max_episode_steps=50)
'''


@pytest.mark.parametrize("critic, policy", [("bronet", sb3.BRONET_POLICY),
                                            ("mlp", "MultiInputPolicy")])
def test_rl_zoo_trains_an_env_with_dict_observations(critic, policy, tmp_path, rec,
                                                     pendulum_fit, monkeypatch):
    """Goal envs observe a Dict: the zoo file named MlpPolicy (SB3 refuses it there) or a
    BroNet policy that failed with "'dict' object has no attribute 'flatten'"."""
    pytest.importorskip("rl_zoo3")
    (tmp_path / "dictenv.py").write_text(DICT_ENV_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import dictenv  # noqa: F401  (registers DictReach-v0 here, for the CLI's probe)

    assert zoo.env_dict_observations("DictReach-v0") and zoo.env_input_dim("DictReach-v0") == 10
    res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", "zoo", "--env",
              "DictReach-v0", "--critic", critic)
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout)["DictReach-v0"]["policy"] == policy
    conf = tmp_path / "sac.yml"
    conf.write_text(res.stdout)
    env = client_env()
    env["PYTHONPATH"] += os.pathsep + str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env",
                          "DictReach-v0", "--gym-packages", "dictenv", "-conf", str(conf),
                          "-f", str(tmp_path / "logs"), "--seed", "0", "--device", "cpu",
                          "--eval-freq", "-1", "--verbose", "0"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    (saved,) = (tmp_path / "logs" / "sac").glob("DictReach-v0_*/DictReach-v0.zip")
    from stable_baselines3 import SAC

    model = SAC.load(saved, device="cpu")
    assert model.num_timesteps == sb3.total_timesteps(rec)
    assert _critic_params(model) == critic_match(rec, critic, fit=pendulum_fit,
                                                 input_dim=10).params_client
    res = run("recommend", "--fit", pendulum_fit, "--data", "400", "--format", "args", "--env",
              "DictReach-v0")
    assert res.exit_code == 2 and "Dict observations, which CleanRL" in res.output
