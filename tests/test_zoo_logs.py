"""`advisor tidy`: rl-baselines3-zoo's logs of SAC runs as the tidy CSV that `advisor fit` reads.
rl-zoo itself writes the logs of the first test (two seeds of a few hundred steps on
Pendulum-v1); the others write its files as it does (yaml.dump of an OrderedDict, np.savez) and
count critics against Stable-Baselines3's own."""
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.cli import main
from calibration import zoo_logs
from calibration.tidy import read_csv_runs

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parent.parent
ENV = "Pendulum-v1"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write_run(folder: Path, config: dict, args: dict | None = None, env: str = ENV,
              steps=(100, 200), results=((-1500.0, -1300.0), (-900.0, -700.0))) -> Path:
    """A run folder as rl-zoo writes it: ENV/config.yml, ENV/args.yml (yaml.dump of
    OrderedDicts, as exp_manager._save_config) and EvalCallback's evaluations.npz."""
    (folder / env).mkdir(parents=True, exist_ok=True)
    (folder / env / "config.yml").write_text(yaml.dump(OrderedDict(sorted(config.items()))))
    args = {"algo": "sac", "env": env, "seed": 0, **(args or {})}
    (folder / env / "args.yml").write_text(yaml.dump(OrderedDict(sorted(args.items()))))
    np.savez(folder / "evaluations.npz", timesteps=np.array(steps),
             results=np.array(results), ep_lengths=np.full(np.shape(results), 200))
    return folder


def test_rl_zoo_logs_of_a_generated_file_become_runs_advisor_fit_reads(tmp_path):
    """The loop a user of rl-zoo closes: the advisor's zoo file, rl-zoo training it with
    evaluations (two seeds), `advisor tidy` on its logs, and the CSV reader of `advisor fit`."""
    pytest.importorskip("rl_zoo3")
    from stable_baselines3 import SAC

    conf = tmp_path / "sac.yml"
    res = run("recommend", "--fit", "bro-torch/Pendulum-v1", "--data", "3000", "--target", "-900",
              "--utd", "1", "--format", "zoo", "--env", ENV, "--critic", "bronet")
    assert res.exit_code == 0, res.output
    conf.write_text(res.stdout)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", ENV, "-conf",
         str(conf), "-f", str(tmp_path / "logs"), "--seed", str(seed), "--device", "cpu",
         "--uuid",  # runs started at once would otherwise pick one folder, Pendulum-v1_1
         "--eval-freq", "100", "--eval-episodes", "2", "--verbose", "0", "-params",
         "n_timesteps:300", "learning_starts:100"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        for seed in (3, 4)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]

    csv = tmp_path / "runs.csv"
    res = run("tidy", tmp_path / "logs", "-o", csv)
    assert res.exit_code == 0, res.output
    # one width of a critic too small for the BroNet range a fit at --input-dim would take
    assert res.stderr.splitlines()[-1] == (
        f"wrote {csv}; advisor fit cannot fit these runs yet: it would count their widths as "
        "this project's BroNet at one --input-dim, whose range needs critics of 4,460 params or "
        "more (the CSV gives no widths of their own: 1 width, fewer than the 3 a fit learns "
        "params(width) from; a free fit needs 3 or more critic sizes anyway (its axes check; "
        "advisor plan))")
    assert "widths left empty (1 width, fewer than the 3" in res.stderr
    (r,) = read_csv_runs(csv, env=ENV)
    rows = [dict(zip(zoo_logs.COLUMNS, line.split(","))) for line in csv.read_text().splitlines()]
    assert rows[0] == {c: c for c in zoo_logs.COLUMNS}
    assert {row["seed"] for row in rows[1:]} == {"3", "4"}
    models = [SAC.load(p, device="cpu") for p in sorted((tmp_path / "logs").glob(
        f"sac/{ENV}_*/{ENV}.zip"))]
    critic = {sum(p.numel() for p in m.critic.parameters()) for m in models}
    assert critic == {r.params} and r.utd == 1 and r.n_seeds == 2
    assert r.batch_size == models[0].batch_size
    evals = [np.load(p) for p in sorted((tmp_path / "logs").glob("sac/*/evaluations.npz"))]
    assert list(r.steps["return"]) == [100, 200, 300]
    means = np.stack([e["results"].mean(axis=1) for e in evals], axis=1)  # (steps, seeds)
    assert np.allclose(np.sort(r.values["return"], axis=1), np.sort(means, axis=1))


@pytest.mark.parametrize("kwargs, built, qf", [
    (None, None, [256, 256]),  # SACPolicy's default critic
    ("dict(net_arch=[64, 64])", dict(net_arch=[64, 64]), [64, 64]),
    ("dict(net_arch=dict(pi=[256, 256], qf=[96, 48, 96]), n_critics=3, activation_fn=nn.Tanh)",
     "tanh", [96, 48, 96]),
    # -params policy_kwargs:"dict(...)": rl-zoo evaluates it, and config.yml holds a mapping
    ({"net_arch": {"pi": [64], "qf": [32, 32]}}, {"net_arch": {"pi": [64], "qf": [32, 32]}},
     [32, 32]),
])
def test_mlp_critics_are_counted_as_sb3_builds_them(kwargs, built, qf, tmp_path):
    pytest.importorskip("stable_baselines3")
    import torch.nn as nn
    from stable_baselines3 import SAC

    if built == "tanh":
        built = dict(net_arch=dict(pi=[256, 256], qf=[96, 48, 96]), n_critics=3,
                     activation_fn=nn.Tanh)
    config = {"batch_size": 64} | ({} if kwargs is None else {"policy_kwargs": kwargs})
    r = zoo_logs.read_run(write_run(tmp_path / f"{ENV}_1", config))
    model = SAC("MlpPolicy", ENV, device="cpu", policy_kwargs=built, learning_starts=10**6)
    assert r.params == sum(p.numel() for p in model.critic.parameters())
    assert r.width == (qf[0] if len(set(qf)) == 1 else None) and r.batch_size == 64


def test_update_to_data_ratio_of_sb3s_loop(tmp_path):
    where = tmp_path / "config.yml"
    assert zoo_logs.utd_of({}, where) == 1
    assert zoo_logs.utd_of({"train_freq": 2, "gradient_steps": 5}, where) == 2.5
    assert zoo_logs.utd_of({"train_freq": [4, "step"], "gradient_steps": 2, "n_envs": 2},
                           where) == 0.25
    assert zoo_logs.utd_of({"train_freq": 8, "gradient_steps": -1, "n_envs": 4}, where) == 1
    with pytest.raises(zoo_logs.ZooLogError, match="trains once per episode"):
        zoo_logs.utd_of({"train_freq": [1, "episode"]}, where)
    with pytest.raises(zoo_logs.ZooLogError, match="gradient_steps .or -1. must be a whole"):
        zoo_logs.utd_of({"gradient_steps": 0.5}, where)


def test_nothing_in_the_logs_is_run(tmp_path):
    """policy_kwargs is a Python expression rl-zoo evaluates, and its YAML may hold Python
    tags: both are read as data only."""
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    run_dir = write_run(tmp_path / "a" / f"{ENV}_1", {"policy_kwargs": f"dict(x={code})"})
    res = run("tidy", tmp_path / "a")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and not marker.exists()
    assert "only literals, dict(...) and names are read (nothing in a log is run)" in res.stderr
    with pytest.raises(zoo_logs.ZooLogError, match=r"^kwargs '\{\[1\]: 2\}' is not a dict of "):
        zoo_logs.literal("{[1]: 2}", "kwargs")  # a list as a key: a TypeError, not a traceback
    config = run_dir / ENV / "config.yml"
    config.write_text(f"!!python/object/apply:os.system [\"touch {marker}\"]\n")
    res = run("tidy", tmp_path / "a")
    assert res.exit_code == 2 and not marker.exists()
    assert res.stderr == (f"error: {config} is not a mapping of hyperparameters, as rl-zoo "
                          "writes it\n")
    config.write_text("batch_size: 64\nreplay_buffer_class: !!python/name:os.system ''\n")
    assert run("tidy", tmp_path / "a").exit_code == 0 and not marker.exists()


def test_every_input_a_user_can_get_wrong_is_one_line(tmp_path):
    def error(*args):
        res = run("tidy", *args)
        assert res.exit_code == 2 and res.stderr.startswith("error: "), res.output
        assert res.stderr.count("\n") == 1 and len(res.stderr) < 1000, res.stderr
        return res.stderr

    (tmp_path / "empty").mkdir()
    assert "holds no evaluations.npz: train with rl-zoo's --eval-freq N" in error(
        tmp_path / "empty")
    bare = write_run(tmp_path / "bare" / f"{ENV}_1", {})
    (bare / "evaluations.npz").unlink()
    assert "(1 run folder without evaluations.npz (trained with --eval-freq -1, or stopped " \
           "before its first evaluation) left out, e.g." in error(tmp_path / "bare")
    write_run(tmp_path / "td3" / f"{ENV}_1", {}, args={"algo": "td3"})
    assert "holds no SAC run with evaluations (only SAC runs, --algo sac, are read; 1 run " \
           "of another algorithm than SAC left out" in error(tmp_path / "td3")
    write_run(tmp_path / "pol" / f"{ENV}_1", {"policy": "mypkg.MyPolicy"})
    assert "policy 'mypkg.MyPolicy' builds a critic whose parameters cannot be counted" in \
        error(tmp_path / "pol")
    write_run(tmp_path / "env" / "My-v0_1", {}, env="My-v0")
    assert "Gymnasium here does not give 'My-v0''s critic input (it cannot make the env, or its " \
           "spaces are not flat boxes): pass --input-dim N" in error(tmp_path / "env")
    assert run("tidy", tmp_path / "env", "--input-dim", "7").exit_code == 0
    assert "holds no run of env 'Other-v0'; its envs: 'My-v0'" in error(
        tmp_path / "env", "--env", "Other-v0", "--input-dim", "7")
    write_run(tmp_path / "twice" / f"{ENV}_1", {})
    write_run(tmp_path / "twice" / f"{ENV}_2", {})
    assert "are the same configuration with the same seed 0: remove one" in error(
        tmp_path / "twice")
    write_run(tmp_path / "shape" / f"{ENV}_1", {}, steps=(100, 200, 300))
    assert "holds timesteps of shape (3,) and results of shape (2, 2)" in error(
        tmp_path / "shape")
    write_run(tmp_path / "inf" / f"{ENV}_1", {}, results=((-1.0, np.inf), (0.0, 1.0)))
    assert "a return is infinite (a NaN one is read as missing)" in error(tmp_path / "inf")
    write_run(tmp_path / "neg" / f"{ENV}_1", {}, steps=(-100, 200))
    assert "its timesteps must be finite, not negative and at most 1e+15" in error(
        tmp_path / "neg")
    write_run(tmp_path / "dup" / f"{ENV}_1", {}, steps=(100, 100))
    assert "its timesteps do not increase from one evaluation to the next" in error(
        tmp_path / "dup")
    write_run(tmp_path / "nan" / f"{ENV}_1", {}, results=np.full((2, 2), np.nan))
    assert "every return is NaN (a run that diverged from the start)" in error(tmp_path / "nan")
    write_run(tmp_path / "wide" / f"{ENV}_1", {"policy_kwargs": "dict(net_arch=[1e23])"})
    assert "each width of net_arch must be a whole number of at least 1 and at most 1,000,000" \
        in error(tmp_path / "wide")
    assert run("tidy", tmp_path / "missing").exit_code == 2
    assert "-o is empty" in error(tmp_path / "env", "--input-dim", "7", "-o", "")
    log = tmp_path / "env" / "My-v0_1" / "evaluations.npz"
    before = log.read_bytes()
    assert f"-o {log} would replace {log}, a file of the rl-zoo logs in {tmp_path / 'env'}" in \
        error(tmp_path / "env", "--input-dim", "7", "-o", log)
    assert log.read_bytes() == before


def test_a_damaged_evaluations_file_is_one_line(tmp_path):
    """A hostile round: a run killed while saving (an empty or cut file), a .npy under the
    name, arrays of other shapes, and a compressed file that unpacks to gigabytes gave
    tracebacks, `error: interrupted` or gigabytes of memory."""
    folder = write_run(tmp_path / f"{ENV}_1", {})
    npz = folder / "evaluations.npz"
    good = npz.read_bytes()

    def error():
        res = run("tidy", tmp_path)
        assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
        return res.stderr

    bad = f"error: {npz} is not an EvalCallback's evaluations (an .npz of timesteps and results)"
    for damaged in (b"", good[:len(good) // 2]):
        npz.write_bytes(damaged)
        assert error().startswith(bad)
    np.save(npz.with_suffix(".npy"), np.zeros(3))
    npz.write_bytes(npz.with_suffix(".npy").read_bytes())
    assert error() == f"{bad}: it holds one array\n"
    with open(npz, "wb") as fh:
        np.savez(fh, timesteps=np.array(5), results=np.zeros((1, 2)))
    assert "holds timesteps of shape () and results of shape (1, 2)" in error()
    with open(npz, "wb") as fh:  # 1.3 MB on disk, 160 MB unpacked
        np.savez_compressed(fh, timesteps=np.array([1]), results=np.zeros((1, 20_000_000)))
    assert "it unpacks to 160,000," in error()


def test_what_a_log_names_is_never_imported_or_grown(tmp_path):
    """A hostile round: an env id naming a module (`this:Pendulum-v1`) was imported by the
    probe of its size, a wrapped env's critic was counted at the bare env's input, and a YAML
    alias bomb hung while its value was printed."""
    write_run(tmp_path / "mod" / "Pendulum-v1_1", {}, args={"env": "this:Pendulum-v1"})
    res = run("tidy", tmp_path / "mod")
    assert res.exit_code == 2 and "Beautiful is better" not in res.output
    assert "env 'this:Pendulum-v1' names a module, which is not imported from a log: pass " \
           "--input-dim N" in res.stderr
    write_run(tmp_path / "wrap" / f"{ENV}_1", {"frame_stack": 2})
    res = run("tidy", tmp_path / "wrap")
    assert res.exit_code == 2 and "its run sets frame_stack 2, which can change the size of " \
        "what its critic takes in: pass --input-dim N" in res.stderr
    res = run("tidy", tmp_path / "wrap", "--input-dim", "8")
    mlp = 2 * ((8 + 1) * 256 + 257 * 256 + 257)  # SB3's default critic, 256-256, at input 8
    assert res.exit_code == 0 and f",,{mlp},,256," in res.stdout
    run_dir = write_run(tmp_path / "bomb" / f"{ENV}_1", {})
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    for name, line in (("args.yml", "algo: *i"), ("config.yml", "policy: *i"),
                       ("config.yml", "train_freq: *i")):
        (run_dir / ENV / name).write_text("\n".join(levels + [line, "seed: 0"]) + "\n")
        res = run("tidy", tmp_path / "bomb")
        assert res.exit_code == 2 and len(res.stderr) < 600, res.stderr[:300]
        (run_dir / ENV / name).write_text(yaml.dump(OrderedDict(
            {"algo": "sac", "env": ENV, "seed": 0} if name == "args.yml" else {})))


def test_other_algorithms_and_stray_evaluations_are_left_out_with_a_note(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path / "sac" / f"{ENV}_{seed + 1}", {}, args={"seed": seed})
    write_run(tmp_path / "td3" / f"{ENV}_1", {}, args={"algo": "td3"})
    trial = tmp_path / "optuna" / "trial_1"
    trial.mkdir(parents=True)
    (tmp_path / "sac" / f"{ENV}_1" / "evaluations.npz").replace(trial / "evaluations.npz")
    for seed in (0, 1):
        write_run(tmp_path / "sac" / f"{ENV}_{seed + 1}", {"policy_kwargs": {"net_arch": None}},
                  args={"seed": seed})
    write_run(tmp_path / "sac" / "My-v0_1", {}, env="My-v0")  # not made here: --env skips it
    res = run("tidy", tmp_path, "--env", ENV)
    assert res.exit_code == 0, res.output
    assert "note: 1 run of another algorithm than SAC left out, e.g." in res.stderr
    assert "note: 1 evaluations.npz outside a run folder (no ENV/config.yml beside it: an " \
           "optuna trial's?) left out" in res.stderr
    assert f"{ENV}: 2 runs, 1 configuration" in res.stderr
    mlp = 2 * ((4 + 1) * 256 + 257 * 256 + 257)  # net_arch None: SB3's default, 256-256
    assert res.stdout.count(f",,{mlp},,256,") == 4
    td3 = tmp_path / "td3" / f"{ENV}_1" / "evaluations.npz"  # left out, and still not replaced
    res = run("tidy", tmp_path, "--env", ENV, "-o", td3)
    assert res.exit_code == 2 and f"-o {td3} would replace {td3}, a file of the rl-zoo logs" in \
        res.stderr
    monitor = tmp_path / "sac" / f"{ENV}_1" / "0.monitor.csv"  # not read, but rl-zoo's
    monitor.write_text("#\n")
    res = run("tidy", tmp_path, "--env", ENV, "-o", monitor)
    assert res.exit_code == 2 and "a file of the rl-zoo logs" in res.stderr
    assert monitor.read_text() == "#\n"


def test_tidy_keeps_a_users_file_at_o_and_names_a_csv_advisor_fit_reads(tmp_path):
    """A hostile round: `tidy -o notes.json` replaced a fit file of the user's with the CSV, and
    `-o out.txt` printed a next command (`advisor fit out.txt`) that advisor fit refuses."""
    for seed in (0, 1):
        write_run(tmp_path / "logs" / f"{ENV}_{seed + 1}", {}, args={"seed": seed})
    mine = tmp_path / "precious.csv"
    mine.write_text("utd,width,batch_size,seed,step,return\n1,64,256,0,1000,-800\n")
    res = run("tidy", tmp_path / "logs", "-o", mine)
    assert res.exit_code == 2 and res.stderr == (
        f"error: -o {mine}: {mine} exists and is not a CSV advisor tidy wrote; it is left as it "
        "is: choose another path, or remove it first\n")
    assert mine.read_text().startswith("utd,width,batch_size")
    res = run("tidy", tmp_path / "logs", "-o", tmp_path / "out.txt")
    assert res.exit_code == 2 and "the CSV's name must end in .csv, as advisor fit reads it" \
        in res.stderr and not (tmp_path / "out.txt").exists()
    longer = tmp_path / "longer.csv"  # a review's: a header that starts as tidy's does
    longer.write_text(",".join(zoo_logs.COLUMNS) + "_std\n1,2\n")
    res = run("tidy", tmp_path / "logs", "-o", longer)
    assert res.exit_code == 2 and longer.read_text().endswith("_std\n1,2\n")
    res = run("tidy", tmp_path / "logs", "-o", "/dev/null")  # a device: no suffix to have
    assert res.exit_code == 0, res.output
    earlier = tmp_path / "earlier.csv"  # written by tidy before the critic column
    earlier.write_text("env,utd,width,params,batch_size,seed,step,return\n")
    assert run("tidy", tmp_path / "logs", "-o", earlier).exit_code == 0
    ours = tmp_path / "RUNS.CSV"  # any case, as advisor fit reads it
    for _ in range(2):  # the second replaces the first: a CSV tidy wrote
        res = run("tidy", tmp_path / "logs", "-o", ours)
        assert res.exit_code == 0, res.output
    assert len(read_csv_runs(ours, env=ENV)) == 1


def test_runs_of_several_envs_keep_an_env_column_advisor_fit_selects(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path / f"{ENV}_{seed + 1}", {"gradient_steps": 2}, args={"seed": seed})
        write_run(tmp_path / f"My-v0_{seed + 1}", {}, args={"seed": seed}, env="My-v0")
    res = run("tidy", tmp_path, "--input-dim", "4")
    assert res.exit_code == 2 and "choose one with --env" in res.stderr
    res = run("tidy", tmp_path, "--input-dim", "4", "--env", "My-v0", "-o", tmp_path / "my.csv")
    assert res.exit_code == 0 and "My-v0: 2 runs, 1 configuration" in res.stderr
    res = run("tidy", tmp_path, "-o", tmp_path / "all.csv")  # My-v0 is not registered here
    assert res.exit_code == 2 and "does not give 'My-v0''s critic input" in res.stderr
    (pendulum,) = read_csv_runs(tmp_path / "my.csv", env="My-v0")
    assert pendulum.utd == 1 and pendulum.n_seeds == 2


BRONET = "advisor.integrations.sb3_bronet.BroNetSACPolicy"


def write_grid(logs: Path, policy: str, kwargs: str) -> None:
    """Runs that learn at utd 1 and 2, critic widths 16, 32 and 64 (`kwargs` formats {w}), two
    seeds each."""
    k = 0
    for utd in (1, 2):
        for width in (16, 32, 64):
            for seed in (0, 1):
                k += 1
                steps = np.arange(200, 4001, 200)
                speed = utd * width ** 0.5 * (1 + 0.05 * seed) / 4000
                ret = -1500 + 1300 * (1 - np.exp(-steps * speed))
                write_run(logs / f"{ENV}_{k}", {
                    "gradient_steps": utd, "batch_size": 64, "learning_starts": 150,
                    "policy": policy, "policy_kwargs": f"dict({kwargs.format(w=width)})"},
                    args={"seed": seed}, steps=steps, results=np.stack([ret, ret + 10], 1))


@pytest.mark.parametrize("policy, kwargs, layers, qnets, train", [
    ("MlpPolicy", "net_arch=dict(pi=[64, 64], qf=[{w}, {w}])", 2, 2, True),  # rl-zoo trains it
    ("MlpPolicy", "net_arch=dict(pi=[64, 64], qf=[{w}]), n_critics=3", 1, 3, False),  # linear
    # one residual block on 4 inputs, scalar head: 4w^2 + 28w + 2, an MLP's form (3 layers on 10)
    (BRONET, "critic_width={w}, critic_blocks=1", None, None, False),
])
def test_three_widths_give_advisor_fit_the_critics_params_of_width(policy, kwargs, layers,
                                                                   qnets, train, tmp_path):
    """With 3 or more widths of one critic the CSV gives them and says which critic it is, a
    fit without --input-dim learns its params(width) (a polynomial: exact), and its rl-zoo file
    builds that critic at the recommended width: rl-zoo trains it, and SB3's critic has the
    fit's params."""
    import advisor
    from advisor.integrations.critic import BroNetShape, MlpShape, bronet_shape, mlp_shape

    write_grid(tmp_path / "logs", policy, kwargs)
    res = run("tidy", tmp_path / "logs", "-o", tmp_path / "runs.csv")
    assert res.exit_code == 0, res.output
    command = res.stderr.splitlines()[-1].split("next: ")[1]
    assert command == (f"advisor fit {tmp_path / 'runs.csv'} --algorithm sb3-sac --env {ENV} "
                       "-o FIT.json --random-steps 150")
    fit_path = tmp_path / "fit.json"
    res = run(*command.replace("FIT.json", str(fit_path)).split()[1:], "--n-boot", "0")
    assert res.exit_code == 0, res.output
    fit = advisor.load_fit(str(fit_path))
    if policy == BRONET:
        shape, critic = BroNetShape(input_dim=4, blocks=1, quantiles=1), "bronet"
        counts = {w: shape.params(w) for w in (16, 32, 48, 64)}
        assert bronet_shape(fit) == shape and mlp_shape(fit) is None
        assert fit.model.architecture.coefficients == (4, 28, 2)  # exact integers
    else:
        shape, critic = MlpShape(input_dim=4, layers=layers, qnets=qnets), "mlp"
        counts = {w: qnets * ((4 + 1) * w + (layers - 1) * (w + 1) * w + (w + 1))
                  for w in (16, 32, 48, 64)}
        assert mlp_shape(fit) == shape
        assert (f"read as a plain MLP, {layers} hidden layer{'s' * (layers > 1)} x {qnets} "
                "Q-nets, input 4" in run("show", fit_path).stdout)
    assert {w: float(fit.params(w)) for w in counts} == counts
    assert fit.model.random_steps == 150

    other = "bronet" if critic == "mlp" else "mlp"
    res = run("recommend", "--fit", fit_path, "--data", "3000", "--target", "-400", "--format",
              "zoo", "--env", ENV, "--critic", other)
    if critic == "mlp":  # an MLP is no BroNet; the mlp critic of a BroNet fit drops LayerNorm
        assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
        assert "critic is a plain MLP" in res.stderr and "--critic mlp" in res.stderr
    else:
        assert res.exit_code == 0 and "no LayerNorm" in res.stderr, res.output
    res = run("recommend", "--fit", fit_path, "--data", "3000", "--target", "-400", "--format",
              "zoo", "--width", "48")  # the fit's own critic and env by default
    assert res.exit_code == 0, res.output
    assert (f"no --env: the output is for {ENV}, the env sb3-sac/{ENV}'s runs were on (advisor "
            "fit --env)" in res.stderr)
    ((key, entry),) = yaml.safe_load(res.stdout).items()
    assert key == ENV
    rec = advisor.recommend(advisor.Budget(data=3000), fit=str(fit_path), target=-400, width=48)
    assert rec.width == 48 and rec.params == counts[48]  # a width none of the runs had
    assert entry["learning_starts"] == 150
    if critic == "mlp":
        assert entry["policy"] == "MlpPolicy" and entry["policy_kwargs"] == (
            f"dict(net_arch=dict(pi=[256, 256], qf={[48] * layers}), n_critics={qnets})")
    else:
        assert entry["policy"] == BRONET
        assert entry["policy_kwargs"] == "dict(critic_width=48, critic_blocks=1)"
    assert f"{counts[48]:,} params, 100.0% of the fit's" in res.stderr
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import SAC

    if not train:  # SB3 builds the file's critic
        from advisor.integrations.sb3_bronet import BroNetSACPolicy

        kwargs = zoo_logs.literal(entry["policy_kwargs"], "the file's policy_kwargs")
        model = SAC(BroNetSACPolicy if critic == "bronet" else "MlpPolicy", ENV, device="cpu",
                    policy_kwargs=kwargs, learning_starts=10**6)
        assert sum(p.numel() for p in model.critic.parameters()) == counts[48]
        return
    pytest.importorskip("rl_zoo3")
    (tmp_path / "sac.yml").write_text(res.stdout)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", ENV, "-conf",
         str(tmp_path / "sac.yml"), "-f", str(tmp_path / "zoo"), "--device", "cpu",
         "--verbose", "0", "-params", "n_timesteps:200", "learning_starts:100"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    (saved,) = (tmp_path / "zoo").glob(f"sac/{ENV}_*/{ENV}.zip")
    model = SAC.load(saved, device="cpu")
    assert sum(p.numel() for p in model.critic.parameters()) == counts[48]


def test_runs_no_law_describes_are_one_line_not_a_schema_traceback(tmp_path):
    """A hostile round's: `advisor tidy` of 18 rl-zoo Pendulum runs of 1,000 steps (too short to
    learn; tests/data/zoo-pendulum-1000-steps.csv), fitted as tidy printed, gave a pydantic
    traceback: its held-out residuals reach e^22, past the e^20 a fit file holds."""
    csv = Path(__file__).parent / "data" / "zoo-pendulum-1000-steps.csv"
    res = run("fit", csv, "--algorithm", "sb3-sac", "--env", ENV, "-o", tmp_path / "f.json",
              "--random-steps", "100", "--n-boot", "0")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert res.stderr.startswith("error: the fit's prediction interval would span a factor of "
                                 "e^22.4 around its predictions")
    assert not (tmp_path / "f.json").exists()


def test_links_settings_depths_and_what_changes_the_critics_input(tmp_path):
    """A second hostile round: linked run folders were skipped unsaid; runs differing in other
    hyperparameters were merged as seeds; critics of other depths shared a width column; env
    kwargs, VecEnv wrappers and feature extractors were counted at the bare env's input; a
    damaged run of another env failed --env; train_freq per episode with gradient_steps -1
    (utd 1 exactly) was refused."""
    import os

    real = write_run(tmp_path / "elsewhere" / f"{ENV}_9", {}, args={"seed": 1})
    write_run(tmp_path / "logs" / f"{ENV}_1", {})
    os.symlink(real, tmp_path / "logs" / f"{ENV}_2")
    os.symlink(tmp_path / "logs", tmp_path / "logs" / "loop")  # a link loop ends
    res = run("tidy", tmp_path / "logs")
    assert res.exit_code == 0 and f"{ENV}: 2 runs, 1 configuration" in res.stderr, res.output

    write_run(tmp_path / "lr" / f"{ENV}_1", {"learning_rate": 3e-4})
    write_run(tmp_path / "lr" / f"{ENV}_2", {"learning_rate": 1e-3}, args={"seed": 1})
    res = run("tidy", tmp_path / "lr")
    assert res.exit_code == 2 and "share utd, critic and batch size but differ in learning_rate " \
        "(0.0003 and 0.001), so a fit would take them for seeds of one configuration" in res.stderr

    k = 0
    for qf in ([32, 32], [64, 64], [128, 128, 128]):
        for seed in (0, 1):
            k += 1
            write_run(tmp_path / "depth" / f"{ENV}_{k}",
                      {"policy_kwargs": f"dict(net_arch=dict(pi=[64], qf={qf}))"},
                      args={"seed": seed})
    res = run("tidy", tmp_path / "depth")
    assert res.exit_code == 0 and "widths left empty (its critics are of 2 structures (" \
        "MlpPolicy MLP, 2 hidden layers, 2 Q-nets; MlpPolicy MLP, 3 hidden layers, 2 Q-nets))" \
        in res.stderr
    assert {row.split(",")[2] for row in res.stdout.splitlines()[1:]} == {""}

    for i, (key, value) in enumerate((("env_kwargs", {"exclude_current_positions": False}),
                                      ("vec_env_wrapper", "VecFrameStack"),
                                      ("policy_kwargs", "dict(features_extractor_class=Mine)"))):
        write_run(tmp_path / f"obs{i}" / f"{ENV}_1", {key: value})
        res = run("tidy", tmp_path / f"obs{i}")
        assert res.exit_code == 2 and "which can change the size of what its critic takes in: " \
                                      "pass --input-dim N" in res.stderr, res.output
    write_run(tmp_path / "obs3" / f"{ENV}_1", {}, args={"env_kwargs": {"a": 1}})
    assert "its run sets --env-kwargs {'a': 1}" in run("tidy", tmp_path / "obs3").stderr

    write_run(tmp_path / "iso" / f"{ENV}_1", {})
    other = write_run(tmp_path / "iso" / "MountainCarContinuous-v0_1", {},
                      env="MountainCarContinuous-v0")
    (other / "MountainCarContinuous-v0" / "config.yml").write_text("[unclosed\n")
    res = run("tidy", tmp_path / "iso", "--env", ENV)
    assert res.exit_code == 0 and "note: 1 damaged run of another env or algorithm left out" in \
        res.stderr
    assert run("tidy", tmp_path / "iso").exit_code == 2  # asked for: its damage is an error

    where = tmp_path / "config.yml"
    assert zoo_logs.utd_of({"train_freq": [1, "episode"], "gradient_steps": -1}, where) == 1
    with pytest.raises(zoo_logs.ZooLogError, match="or take gradient_steps -1, have a utd"):
        zoo_logs.utd_of({"train_freq": [1, "episode"], "gradient_steps": 4}, where)


def test_a_hand_edited_critic_no_export_builds_is_one_line(tmp_path):
    """A hostile tester's: coefficients edited (hash recomputed) into an MLP of a million hidden
    layers wrote an 8 MB rl-zoo file; a fit whose description says a plain MLP or a BroNet with
    a scalar head, with a params(width) no such critic the exports build has, is one line."""
    import json

    import advisor
    from advisor.fitfile import CSV_BRONET, CSV_MLP, content_hash

    fit = advisor.load_fit("bro-torch/Pendulum-v1")
    for description, coefficients in ((CSV_MLP, [2e6, 2000010.0, 2.0]),
                                      (CSV_MLP, [1e6, 6e6, 1e6]),
                                      (CSV_BRONET, [8.0, 370.0, 200.0])):  # 100 quantiles
        doc = json.loads(fit.model.model_dump_json())
        doc["architecture"]["description"] = f"{description} (its critic column): edited"
        doc["architecture"]["coefficients"] = coefficients
        doc["domain"]["runs"] = None
        w = np.array([16.0, 1024.0])
        low, high = np.polyval(coefficients, w)
        doc["domain"]["params"] = {"low": low, "high": high}
        doc["content_hash"] = content_hash(doc)
        path = tmp_path / "edited.json"
        path.write_text(json.dumps(doc))
        res = run("recommend", "--fit", path, "--data", "1e5", "--format", "zoo", "--env", ENV)
        assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output[-500:]
        assert "is no such critic the exports build" in res.stderr


def test_a_critic_the_export_cannot_build_gets_no_critic_column(tmp_path):
    """A hostile tester's: BroNetSACPolicy runs with 3 Q-nets were labelled bronet, which the
    fit then refused ("check the params column"); the column is left empty, and tidy says why."""
    write_grid(tmp_path / "logs", BRONET, "critic_width={w}, critic_blocks=1, n_critics=3")
    res = run("tidy", tmp_path / "logs", "-o", tmp_path / "runs.csv")
    assert res.exit_code == 0, res.output
    assert ("critic left empty (BroNetSACPolicy, 1 residual blocks, 3 Q-nets: the export's "
            "BroNetSACPolicy has 2 Q-nets and 1 or more blocks)") in res.stderr
    rows = [dict(zip(zoo_logs.COLUMNS, line.split(","))) for line in
            (tmp_path / "runs.csv").read_text().splitlines()[1:]]
    assert {r["critic"] for r in rows} == {""} and {r["width"] for r in rows} == {"16", "32", "64"}
    command = res.stderr.splitlines()[-1].split("next: ")[1]
    fit = tmp_path / "fit.json"
    res = run(*command.replace("FIT.json", str(fit)).split()[1:], "--n-boot", "0")
    assert res.exit_code == 0, res.output
    res = run("recommend", "--fit", fit, "--data", "3000", "--target", "-400", "--format",
              "zoo", "--env", ENV)
    assert res.exit_code == 2 and "its CSV did not say what critic that is" in res.stderr
