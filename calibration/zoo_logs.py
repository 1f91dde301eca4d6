"""Runs that rl-baselines3-zoo logged, as tidy CSV rows (`advisor tidy LOGS -o runs.csv`).

rl-zoo (`python -m rl_zoo3.train --algo sac --env ENV --eval-freq N ...`) writes a folder per run,
LOGS/sac/ENV_k/, that holds evaluations.npz (its EvalCallback's: `timesteps`, and `results`, a
return per evaluation episode) and ENV/config.yml and ENV/args.yml (the hyperparameters and the
command's arguments, seed included). Each evaluation of a run becomes one row of the tidy CSV
that `advisor fit` reads (calibration.tidy):

    utd         gradient_steps / (train_freq * n_envs) (gradient_steps -1: one update per
                env step collected, utd 1)
    params      the critic's parameters, all its Q-nets, counted as Stable-Baselines3 builds
                it: MlpPolicy's MLP (net_arch's qf layers) or this project's BroNetSACPolicy
                (critic_width, critic_blocks), at the env's obs + action size (--input-dim
                where a run changes what the critic takes in: OBS_CHANGERS)
    width       the critic's hidden width, where an env's critics are of one structure, each
                with its hidden layers of one width, and there are 3 or more widths (a fit
                without --input-dim then learns the critic's params(width)); empty otherwise
                (no_widths says why; the fit then needs --input-dim, and counts widths as
                this project's BroNet)
    critic      with the widths: mlp (MlpPolicy's) or bronet (BroNetSACPolicy's), which the
                fit records and its rl-zoo export builds
    batch_size, seed, step (the evaluation's env steps), return (the mean of its episodes), env

Nothing named in a log is run or imported: the YAML is read with PyYAML's safe loader, which
here takes rl-zoo's OrderedDict tag as a mapping and any other Python tag as its name;
`policy_kwargs` (a Python expression rl-zoo evaluates) is read as literals, `dict(...)` calls
and names only; an env id naming a module needs --input-dim.
"""

from __future__ import annotations

import ast
import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from advisor.files import read_limited
from calibration.archives import ArchiveError
from calibration.checks import MIN_AXIS_VALUES
from calibration.curves import seed_mean
from calibration.tidy import MAX_STEP, MAX_WIDTH, MIN_CSV_WIDTHS

#: SB3's SAC defaults, where config.yml does not set them.
SAC_DEFAULTS = {"train_freq": 1, "gradient_steps": 1, "batch_size": 256, "n_envs": 1,
                "learning_starts": 100}
#: SACPolicy's critic without net_arch: two hidden layers of 256, two Q-nets.
DEFAULT_NET_ARCH = (256, 256)
DEFAULT_N_CRITICS = 2
BRONET_POLICIES = ("advisor.integrations.sb3_bronet.BroNetSACPolicy",
                   "advisor.integrations.sb3_bronet:BroNetSACPolicy")
MLP_POLICIES = ("MlpPolicy", "MultiInputPolicy")
MAX_LOG_BYTES = 64 * 2**20  # an evaluations.npz, unpacked
MAX_YAML_BYTES = 2**20  # config.yml, args.yml: a few hundred bytes as rl-zoo writes them
COLUMNS = ("env", "utd", "width", "params", "critic", "batch_size", "seed", "step", "return")
#: The header lines tidy has written (before the critic column, too): `tidy -o` replaces only
#: a file that starts with one.
TIDY_HEADS = (",".join(COLUMNS).encode() + b"\n",
              b"env,utd,width,params,batch_size,seed,step,return\n")
#: config.yml keys that may differ between the seeds of one configuration.
SEED_FREE = ("n_timesteps",)
#: rl-zoo's algorithm folders (LOGS/ALGO/ENV_k) other than sac: a damaged run there is left out.
OTHER_ALGOS = frozenset({"a2c", "ars", "crossq", "ddpg", "dqn", "her", "ppo", "ppo_lstm",
                         "qrdqn", "td3", "tqc", "trpo"})


class ZooLogError(ArchiveError):
    """rl-zoo logs that cannot be read as runs (no evaluations, an unknown critic, a bad file)."""


@dataclass(frozen=True)
class ZooRun:
    """One rl-zoo run: its configuration and its evaluations."""

    folder: Path
    env: str
    seed: int
    utd: float
    batch_size: int
    params: int
    width: int | None
    steps: np.ndarray
    returns: np.ndarray  # the mean return of each evaluation
    learning_starts: int | None  # env steps of random actions before learning (SB3's 100)
    input_dim: int  # the critic's input, obs + action
    structure: str  # what the critic is besides its width: kind, depth, Q-nets
    settings: dict = field(compare=False, repr=False)  # config.yml but for SEED_FREE keys

    # The CSV's critic column (calibration.tidy.CRITIC_KINDS): mlp or bronet where the rl-zoo
    # export builds that critic, else empty, and why (critic_size)
    critic: str = field(default="", compare=False)
    critic_limit: str | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------
# Reading what rl-zoo wrote, executing nothing


def _yaml(path: Path) -> dict:
    """config.yml or args.yml: a mapping (rl-zoo dumps an OrderedDict, a Python tag)."""
    try:
        import yaml
    except ImportError:
        raise ZooLogError("reading rl-zoo logs needs PyYAML: pip install pyyaml") from None

    class Loader(yaml.SafeLoader):
        pass

    def python_tag(loader, suffix, node):
        if suffix == "object/apply:collections.OrderedDict" and isinstance(
                node, yaml.SequenceNode):
            (pairs,) = loader.construct_sequence(node, deep=True) or ([],)
            return {k: v for k, v in pairs}
        if suffix == "tuple" and isinstance(node, yaml.SequenceNode):
            return list(loader.construct_sequence(node, deep=True))
        return f"<python/{suffix}>"  # a class or object rl-zoo dumped: its name, never built

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", python_tag)
    text = read_limited(path, "rl-zoo file", ZooLogError, limit=MAX_YAML_BYTES)
    try:
        value = yaml.load(text, Loader=Loader)  # a SafeLoader, with the tags above
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else \
            type(exc).__name__
        raise ZooLogError(f"{path} is not YAML rl-zoo wrote: {first}") from None
    if not isinstance(value, dict):
        raise ZooLogError(f"{path} is not a mapping of hyperparameters, as rl-zoo writes it")
    return value


def literal(text: str, what: str):
    """A Python expression of literals, `dict(...)` calls and names (kept as their dotted
    text, e.g. 'nn.ReLU'), as rl-zoo writes `policy_kwargs`; ZooLogError for anything else."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ZooLogError(f"{what} {_short(text)} is not a Python expression") from None

    def value(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
                and isinstance(node.operand, ast.Constant) \
                and isinstance(node.operand.value, (int, float)):
            return -node.operand.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.Dict) and None not in node.keys:
            return {value(k): value(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "dict" and not node.args \
                and all(k.arg is not None for k in node.keywords):
            return {k.arg: value(k.value) for k in node.keywords}
        if isinstance(node, (ast.Name, ast.Attribute)):
            return ast.unparse(node)
        raise ZooLogError(f"{what} {_short(text)} holds {_short(ast.unparse(node))}: only "
                          "literals, dict(...) and names are read (nothing in a log is run)")

    try:
        return value(tree)
    except (TypeError, RecursionError):  # a list as a key; nesting past the stack
        raise ZooLogError(f"{what} {_short(text)} is not a dict of literals") from None


def _whole(value, what: str, where: Path, least: int = 1, most: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value != int(value) or not least <= value <= most:
        upto = "" if most == math.inf else f" and at most {most:,.0f}"
        raise ZooLogError(f"{where}: {what} must be a whole number of at least {least}{upto}, "
                          f"got {_short(value)}")
    return int(value)


# --------------------------------------------------------------------------------------------
# The configuration of a run


def utd_of(config: dict, where: Path) -> float:
    """Gradient updates per env step of SB3's off-policy loop: each rollout steps n_envs envs
    train_freq times, then takes gradient_steps updates (-1: as many as transitions)."""
    freq = config.get("train_freq", SAC_DEFAULTS["train_freq"])
    steps = config.get("gradient_steps", SAC_DEFAULTS["gradient_steps"])
    if steps == -1:  # an update per transition collected, however often it trains
        return 1.0
    if isinstance(freq, (list, tuple)):
        if len(freq) != 2 or freq[1] not in ("step", "episode"):
            raise ZooLogError(f"{where}: train_freq {_short(freq)} is not (n, 'step') or "
                              "(n, 'episode')")
        if freq[1] == "episode":
            raise ZooLogError(f"{where}: train_freq {_short(freq)} trains once per episode, so its "
                              "updates per env step vary with episode length: only runs that "
                              "train every n steps, or take gradient_steps -1, have a utd")
        freq = freq[0]
    freq = _whole(freq, "train_freq", where)
    n_envs = _whole(config.get("n_envs", SAC_DEFAULTS["n_envs"]), "n_envs", where)
    return _whole(steps, "gradient_steps (or -1)", where) / (freq * n_envs)


def critic_size(config: dict, input_dim: int, where: Path
                ) -> tuple[int, int | None, str, str, str | None]:
    """(params, width, structure, critic, limit) of the critic SB3 builds from config.yml's
    policy and policy_kwargs at obs + action size `input_dim`: all its Q-nets; width None where
    its hidden layers differ; structure what else a width does not say (depth, Q-nets); critic
    the CSV's critic column (mlp or bronet) where the rl-zoo export builds it, else "" and limit
    says why."""
    from advisor.integrations.critic import MLP_MOST_LAYERS, MLP_MOST_QNETS

    policy = config.get("policy", "MlpPolicy")
    if not isinstance(policy, str):
        raise ZooLogError(f"{where}: policy must be a name, got {_short(policy)}")
    kwargs = config.get("policy_kwargs") or {}
    if isinstance(kwargs, str):
        kwargs = literal(kwargs, f"{where}: policy_kwargs")
    if not isinstance(kwargs, dict):
        raise ZooLogError(f"{where}: policy_kwargs {_short(kwargs)} is not a dict")
    n_critics = _whole(kwargs.get("n_critics", DEFAULT_N_CRITICS), "n_critics", where)
    if policy in BRONET_POLICIES:
        from advisor.integrations.critic import BroNetShape

        width = _whole(kwargs.get("critic_width", 256), "critic_width", where, most=MAX_WIDTH)
        blocks = _whole(kwargs.get("critic_blocks", 2), "critic_blocks", where, least=0,
                        most=1000)
        structure = f"BroNetSACPolicy, {blocks} residual blocks, {n_critics} Q-nets"
        limit = (None if n_critics == 2 and blocks >= 1 else
                 f"{structure}: the export's BroNetSACPolicy has 2 Q-nets and 1 or more blocks")
        return (n_critics * BroNetShape(input_dim, blocks, 1).per_qnet(width, 1), width,
                structure, "" if limit else "bronet", limit)
    if policy not in MLP_POLICIES:
        raise ZooLogError(f"{where}: policy {_short(policy)} builds a critic whose parameters "
                          f"cannot be counted here; read: "
                          f"{', '.join(MLP_POLICIES + BRONET_POLICIES[:1])} (or log params "
                          "yourself in a tidy CSV: advisor fit --help)")
    arch = kwargs.get("net_arch")
    if isinstance(arch, dict):
        arch = arch.get("qf")
    arch = list(DEFAULT_NET_ARCH) if arch is None else arch  # SACPolicy's default
    if not isinstance(arch, list):
        raise ZooLogError(f"{where}: net_arch {_short(arch)} is not a list of widths or a dict "
                          "with qf")
    layers = [_whole(w, "each width of net_arch", where, most=MAX_WIDTH) for w in arch]
    sizes = [input_dim, *layers, 1]
    per_qnet = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    structure = f"{policy} MLP, {len(layers)} hidden layers, {n_critics} Q-nets"
    limit = (None if 1 <= len(layers) <= MLP_MOST_LAYERS and n_critics <= MLP_MOST_QNETS else
             f"{structure}: the export builds MLPs of 1-{MLP_MOST_LAYERS} hidden layers and at "
             f"most {MLP_MOST_QNETS} Q-nets")
    return (n_critics * per_qnet, (layers[0] if layers and len(set(layers)) == 1 else None),
            structure, "" if limit else "mlp", limit)


def _short(value) -> str:
    """A value for a message: its repr, bounded (a YAML alias bomb must not print for ever)."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = 80
    r.maxlevel, r.maxlist, r.maxdict = 2, 4, 4
    text = r.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."



#: Hyperparameters with which rl-zoo changes the env's observations (or SB3 what the critic
#: takes in): the critic's input is then not the env's obs + action size.
OBS_CHANGERS = ("env_wrapper", "vec_env_wrapper", "frame_stack", "env_kwargs")
POLICY_OBS_CHANGERS = ("features_extractor_class", "features_extractor_kwargs")


def _obs_changers(config: dict, args: dict) -> str:
    """What of `config` (and the command's --env-kwargs in `args`) can change the critic's
    input, as `key value, ...`; empty where nothing does."""
    kwargs = config.get("policy_kwargs")  # read_run made a string a dict
    found = [(k, config[k]) for k in OBS_CHANGERS if config.get(k)]
    found += [("--env-kwargs", args["env_kwargs"])] if args.get("env_kwargs") else []
    found += [(k, kwargs[k]) for k in POLICY_OBS_CHANGERS
              if isinstance(kwargs, dict) and kwargs.get(k)]
    return ", ".join(f"{k} {_short(v)}" for k, v in found)


def _input_dim(env: str, given: int | None, config: dict, args: dict, where: Path) -> int:
    """The critic's input (obs + action) for `env`: `given` (--input-dim), else what Gymnasium
    here makes of a registered id. An id naming a module (`mod:Env-v0`: a log's module is never
    imported), or a run whose observations rl-zoo or SB3 changed (OBS_CHANGERS), needs
    `given`."""
    if given is not None:
        return given
    changed = _obs_changers(config, args)
    if changed:
        raise ZooLogError(f"{where}: its run sets {changed}, which can change the size of what "
                          "its critic takes in: pass --input-dim N, the obs + action size it "
                          "took in")
    if ":" in env:
        raise ZooLogError(f"{where}: env {_short(env)} names a module, which is not imported "
                          "from a log: pass --input-dim N (the env's obs + action size)")
    from advisor.integrations.zoo import env_input_dim

    dim = env_input_dim(env)
    if dim is None:
        raise ZooLogError(f"{where}: Gymnasium here does not give {_short(env)}'s critic input "
                          "(it cannot make the env, or its spaces are not flat boxes): pass "
                          "--input-dim N, the obs + action size (e.g. 4 for Pendulum-v1: 3 + 1)")
    return dim


@dataclass(frozen=True)
class _Files:
    """What a run folder's YAML says, before its evaluations are read."""

    folder: Path
    config_file: Path
    config: dict
    args_file: Path
    args: dict
    algo: str
    env: str


def _files(folder: Path) -> _Files | None:
    """The YAML of the run rl-zoo logged in `folder`; None where `folder` holds no
    ENV/config.yml (an optuna trial's evaluations, say)."""
    configs = sorted(folder.glob("*/config.yml"))
    if not configs:
        try:
            shut = [d for d in folder.iterdir()
                    if d.is_dir() and not os.access(d, os.R_OK | os.X_OK)]
        except OSError as exc:
            raise ZooLogError(f"{folder} cannot be read: {exc.strerror or exc}") from None
        if shut:
            raise ZooLogError(f"{shut[0]} cannot be read (permission denied): rl-zoo keeps a "
                              "run's config.yml there")
        return None
    if len(configs) > 1:
        raise ZooLogError(f"{folder} holds {len(configs)} ENV/config.yml files, not one: it is "
                          "not a run folder as rl-zoo writes it")
    config = _yaml(configs[0])
    args_file = configs[0].with_name("args.yml")
    args = _yaml(args_file) if args_file.is_file() else {}
    algo, env = args.get("algo", "sac"), args.get("env") or configs[0].parent.name
    for name, value in (("algo", algo), ("env", env)):
        if not isinstance(value, str):
            raise ZooLogError(f"{args_file}: {name} must be a name, got {_short(value)}")
    return _Files(folder, configs[0], config, args_file, args, algo, env)


def _evaluations(npz: Path) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps, mean return per evaluation) of EvalCallback's evaluations.npz."""
    import zipfile

    raw = read_limited(npz, "rl-zoo file", ZooLogError, limit=MAX_LOG_BYTES)
    bad = f"{npz} is not an EvalCallback's evaluations (an .npz of timesteps and results)"
    try:
        data = np.load(io.BytesIO(raw), allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ZooLogError(f"{bad}: it holds one array")
        with data:
            size = sum(i.file_size for i in data.zip.infolist())
            if size > MAX_LOG_BYTES:  # a compressed file can unpack to any size
                raise ZooLogError(f"{bad}: it unpacks to {size:,} bytes, more than the "
                                  f"{MAX_LOG_BYTES:,} read")
            steps, results = data["timesteps"], data["results"]
            if steps.dtype.kind not in "iuf" or results.dtype.kind not in "iuf":
                raise ZooLogError(f"{bad}: its arrays hold {steps.dtype} and {results.dtype}, "
                                  "not real numbers")
            steps, results = np.asarray(steps, float), np.asarray(results, float)
    except ZooLogError:
        raise
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ZooLogError(f"{bad}: {why}") from None
    if steps.ndim != 1 or results.ndim != 2 or len(results) != len(steps) or not len(steps) \
            or not results.shape[1]:
        raise ZooLogError(f"{npz} holds timesteps of shape {steps.shape} and results of shape "
                          f"{results.shape}: not one row of episode returns per evaluation")
    if not (np.isfinite(steps).all() and (steps >= 0).all() and (steps <= MAX_STEP).all()):
        raise ZooLogError(f"{npz}: its timesteps must be finite, not negative and at most "
                          f"{MAX_STEP:g}")
    if np.isinf(results).any():
        raise ZooLogError(f"{npz}: a return is infinite (a NaN one is read as missing)")
    if (np.diff(steps) <= 0).any():
        raise ZooLogError(f"{npz}: its timesteps do not increase from one evaluation to the next")
    if np.isnan(results).all():
        raise ZooLogError(f"{npz}: every return is NaN (a run that diverged from the start): "
                          "remove the run")
    return steps, seed_mean(results)  # NaN episodes (a diverged policy): missing


def read_run(folder: Path, input_dim: int | None = None, files: _Files | None = None) -> ZooRun:
    """The SAC run rl-zoo logged in `folder` (which holds evaluations.npz)."""
    files = files or _files(folder)
    if files is None:
        raise ZooLogError(f"{folder} holds no ENV/config.yml: it is not a run folder as rl-zoo "
                          "writes it")
    config, args = dict(files.config), files.args
    if isinstance(config.get("policy_kwargs"), str):  # as rl-zoo writes it: an expression
        config["policy_kwargs"] = literal(config["policy_kwargs"],
                                          f"{files.config_file}: policy_kwargs")
    if files.algo != "sac":
        raise ZooLogError(f"{folder} is an rl-zoo {_short(files.algo)} run: only SAC runs "
                          "(--algo sac) are read")
    if "seed" not in args:
        raise ZooLogError(f"{folder} has no args.yml with the run's seed")
    seed = _whole(args["seed"], "seed", files.args_file, least=0)
    utd = utd_of(config, files.config_file)
    batch_size = _whole(config.get("batch_size", SAC_DEFAULTS["batch_size"]), "batch_size",
                        files.config_file)
    input_dim = _input_dim(files.env, input_dim, config, args, files.config_file)
    params, width, structure, critic, limit = critic_size(config, input_dim, files.config_file)
    steps, returns = _evaluations(folder / "evaluations.npz")
    starts = config.get("learning_starts", SAC_DEFAULTS["learning_starts"])
    starts = starts if isinstance(starts, int) and not isinstance(starts, bool) else None
    return ZooRun(folder, files.env, seed, utd, batch_size, int(params), width, steps, returns,
                  starts, input_dim, structure,
                  {k: v for k, v in config.items() if k not in SEED_FREE}, critic, limit)


# --------------------------------------------------------------------------------------------
# A folder of runs, and the CSV


def _walk(logs: Path, names: tuple[str, ...]) -> list[Path]:
    """Files of these names under `logs`, folder links followed (each folder once: a link loop
    ends), in a stable order."""
    found, seen = [], set()
    for top, dirs, files in os.walk(logs, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        found += [Path(top) / f for f in sorted(files) if f in names]
    return found


def log_files(logs: str | Path) -> list[Path]:
    """Every file under `logs` that rl-zoo writes and tidy reads (an output must replace none,
    read or left out)."""
    return _walk(Path(logs), ("evaluations.npz", "config.yml", "args.yml"))


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def read_runs(logs: str | Path, env: str | None = None, input_dim: int | None = None
              ) -> tuple[list[ZooRun], list[str]]:
    """Every SAC run under `logs` (a log folder, its sac/ folder or one run's), optionally of
    `env` only, and notes on what was left out (runs without evaluations, of other
    algorithms, damaged runs of other envs or algorithms, evaluations outside a run folder)."""
    logs = Path(logs)
    if not logs.is_dir():
        raise ZooLogError(f"{logs} is not a folder of rl-zoo logs (what -f / --log-folder named)")
    files = _walk(logs, ("evaluations.npz", "config.yml"))
    folders = sorted({f.parent for f in files if f.name == "evaluations.npz"})
    bare = sorted({f.parent.parent for f in files if f.name == "config.yml"} - set(folders))
    notes = []

    def note(items, one, many):
        if items:
            notes.append(f"{_plural(len(items), one, many)} left out, e.g. {items[0]}")

    note(bare, "run folder without evaluations.npz (trained with --eval-freq -1, or stopped "
               "before its first evaluation)", "run folders without evaluations.npz (trained "
               "with --eval-freq -1, or stopped before their first evaluation)")
    if not folders:
        raise ZooLogError(f"{logs} holds no evaluations.npz: train with rl-zoo's --eval-freq N "
                          "(and --eval-episodes, 5 by default) so that it logs returns"
                          + (f" ({notes[0]})" if notes else ""))
    found, damaged = [], []
    for folder in folders:
        try:
            found.append((folder, _files(folder)))
        except ZooLogError:
            # a damaged run that is not asked for (another env, or another algorithm's folder)
            try:
                names = {d.name for d in folder.iterdir() if d.is_dir()}
            except OSError:
                names = set()
            if (env is not None and env not in names) or folder.parent.name in OTHER_ALGOS:
                damaged.append(folder)
                continue
            raise
    note(damaged, "damaged run of another env or algorithm", "damaged runs of other envs or "
         "algorithms")
    note([f for f, x in found if x is None], "evaluations.npz outside a run folder (no "
         "ENV/config.yml beside it: an optuna trial's?)", "evaluations.npz files outside a "
         "run folder (no ENV/config.yml beside them: an optuna trial's?)")
    found = [x for _, x in found if x is not None]
    note([x.folder for x in found if x.algo != "sac"], "run of another algorithm than SAC",
         "runs of other algorithms than SAC")
    found = [x for x in found if x.algo == "sac"]
    envs = sorted({x.env for x in found})
    if not found:
        raise ZooLogError(f"{logs} holds no SAC run with evaluations (only SAC runs, --algo sac, "
                          f"are read; {'; '.join(notes)})")
    if env is not None:
        found = [x for x in found if x.env == env]
        if not found:
            raise ZooLogError(f"{logs} holds no run of env {_short(env)}; its envs: "
                              f"{', '.join(map(_short, envs))}")
    elif input_dim is not None and len(envs) > 1:
        raise ZooLogError(f"--input-dim counts one env's critic, and {logs} holds runs of "
                          f"{', '.join(map(_short, envs))}: choose one with --env")
    runs = [read_run(x.folder, input_dim, x) for x in found]
    seen: dict[tuple, ZooRun] = {}
    for r in runs:
        first = seen.setdefault((r.env, r.utd, r.params, r.batch_size), r)
        if first is r:
            continue
        if r.seed == first.seed:
            raise ZooLogError(f"{first.folder} and {r.folder} are the same configuration with "
                              f"the same seed {r.seed}: remove one (rl-zoo's --seed picks each "
                              "run's)")
        differ = sorted(k for k in {*first.settings, *r.settings}
                        if first.settings.get(k) != r.settings.get(k))
        if differ:
            k = differ[0]
            raise ZooLogError(
                f"{first.folder} and {r.folder} share utd, critic and batch size but differ in "
                f"{', '.join(differ)} ({_short(first.settings.get(k))} and "
                f"{_short(r.settings.get(k))}), so a fit would take them for seeds of one "
                "configuration: tidy a folder of one setting")
    return runs, notes


def no_widths(runs: list[ZooRun], env: str) -> str | None:
    """Why the CSV gives no widths of `env`'s runs, or None where it does: a fit learns the
    critic's params(width) from them only where its critics are of one structure (kind,
    depth, Q-nets), each with its hidden layers of one width, a width has one params, and
    there are MIN_CSV_WIDTHS widths or more (calibration.build)."""
    mine = [r for r in runs if r.env == env]
    structures = sorted({r.structure for r in mine})
    if any(r.width is None for r in mine):
        return "some critics' hidden layers differ in width"
    if len(structures) > 1:
        return f"its critics are of {len(structures)} structures ({'; '.join(structures)})"
    widths = {r.width for r in mine}
    if len({(r.width, r.params) for r in mine}) > len(widths):
        return "a width has critics of different params (their inputs differ)"
    if len(widths) < MIN_CSV_WIDTHS:
        return (f"{_plural(len(widths), 'width', 'widths')}, fewer than the {MIN_CSV_WIDTHS} "
                f"a fit learns params(width) from; a free fit needs {MIN_AXIS_VALUES} or more "
                "critic sizes anyway (its axes check; advisor plan)")
    return None


def with_widths(runs: list[ZooRun], env: str) -> bool:
    """Whether the CSV gives `env`'s widths (see no_widths)."""
    return no_widths(runs, env) is None


def tidy_csv(runs: list[ZooRun]) -> str:
    """The tidy CSV of `runs`: one row per evaluation."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    shown = {env: with_widths(runs, env) for env in {r.env for r in runs}}
    for r in sorted(runs, key=lambda r: (r.env, r.utd, r.params, r.batch_size, r.seed)):
        for step, ret in zip(r.steps.tolist(), r.returns.tolist()):
            writer.writerow([r.env, f"{r.utd:.10g}", r.width if shown[r.env] else "",
                             r.params, r.critic if shown[r.env] else "", r.batch_size, r.seed,
                             f"{step:.10g}", repr(ret)])
    return out.getvalue()


def not_fittable(runs: list[ZooRun], env: str) -> str | None:
    """Why `advisor fit` cannot read `env`'s runs from the CSV as they are, or None."""
    mine = [r for r in runs if r.env == env]
    dims = {r.input_dim for r in mine}
    reason = no_widths(runs, env)
    if reason is None:
        return None
    if len(dims) > 1:
        why = f"their critics take inputs of sizes {', '.join(map(str, sorted(dims)))}"
    else:
        from advisor.fitfile import PARAMS_REACH
        from calibration.architectures import bronet_architecture

        least = PARAMS_REACH * float(np.polyval(bronet_architecture(min(dims)).coefficients, 1))
        if min(r.params for r in mine) >= least:
            return None
        why = f"whose range needs critics of {least:,.0f} params or more"
    return (f"it would count their widths as this project's BroNet at one --input-dim, {why} "
            f"(the CSV gives no widths of their own: {reason})")


def fit_command(runs: list[ZooRun], env: str, csv_path: str) -> str:
    """The `advisor fit` command for `env`'s runs in the CSV at `csv_path` (where
    `not_fittable` is None)."""
    import shlex

    mine = [r for r in runs if r.env == env]
    starts = {r.learning_starts for r in mine}
    return (f"advisor fit {csv_path} --algorithm sb3-sac --env {shlex.quote(env)} -o FIT.json"
            + ("" if with_widths(runs, env) else f" --input-dim {mine[0].input_dim}")
            + (f" --random-steps {starts.pop()}" if len(starts) == 1 and None not in starts
               else ""))


def summary(runs: list[ZooRun]) -> list[str]:
    """A line per env: its configurations and seeds, and those with one seed (advisor fit needs
    two or more each)."""
    lines = []
    for env in sorted({r.env for r in runs}):
        mine = [r for r in runs if r.env == env]
        configs: dict[tuple, list[int]] = {}
        for r in mine:
            configs.setdefault((r.utd, r.params, r.batch_size), []).append(r.seed)
        single = [k for k, s in configs.items() if len(s) < 2]
        lines.append(f"{env}: {len(mine)} run{'s' if len(mine) > 1 else ''}, {len(configs)} "
                     f"configuration{'s' if len(configs) > 1 else ''} (utd, params, batch size)"
                     + (f"; {len(single)} with one seed (advisor fit needs 2 or more each), "
                        f"e.g. utd {single[0][0]:g}, params {single[0][1]:,}, batch size "
                        f"{single[0][2]}" if single else "")
                     + ("" if (why := no_widths(runs, env)) is None else
                        f"; widths left empty ({why}): the fit counts widths as this project's "
                        "BroNet (--input-dim)")
                     + ("" if why is not None or mine[0].critic_limit is None else
                        f"; critic left empty ({mine[0].critic_limit}): the fit learns its "
                        "params(width), and --format zoo cannot build it"))
    return lines
