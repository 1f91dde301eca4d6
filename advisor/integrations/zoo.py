"""rl-zoo (rl_zoo3) hyperparameter files from a recommendation.

    advisor recommend --data 5e5 --format zoo --env Humanoid-v5 > sac.yml
    python -m rl_zoo3.train --algo sac --env Humanoid-v5 -conf sac.yml

An env id of the form `module:Env` (an env the module registers on import) keys the file by
`Env` and names the module in the header's command (`--gym-packages module`): rl-zoo checks
`--env` against Gymnasium's registry after importing those packages, and so does not take the
`module:` form itself.

The file has one top-level key, the env id (rl-zoo picks the entry whose key is `--env`), holding
`n_timesteps` (the predicted data, rounded up to whole rounds of train_freq steps), `policy`,
`batch_size`, `learning_rate`, `train_freq`, `gradient_steps` (utd = gradient_steps /
train_freq), `learning_starts` (the random steps of the fit's runs, where it records them) and
`policy_kwargs`, a Python expression string that rl-zoo evaluates. Numbers are
written so that YAML reads numbers. Comments (which rl-zoo ignores) carry the fit, target,
predicted data and compute, the interval, whether the configuration is extrapolated, the
warnings and what the critic lacks.

The critic (see advisor.integrations.sb3): critic="bronet" (default for a BroNet fit) names
`advisor.integrations.sb3_bronet.BroNetSACPolicy`, which rl-zoo imports by its dotted name (so
the value-scaling-advisor package must be importable where rl-zoo runs); critic="mlp" uses the
"MlpPolicy" alias with a plain MLP of the BroNet's Dense layers ("MultiInputPolicy" for an env
whose observations are a Dict, such as goal envs: `multi_input=True`, which the CLI sets from
the env; BroNetSACPolicy reads a Dict as MultiInputPolicy does). A fit of plain MLP runs (`advisor
tidy` of MlpPolicy runs with 3+ widths) gets that MLP: critic="mlp", its default.
"""

from __future__ import annotations

import functools
import numbers
import re
import warnings
from typing import TYPE_CHECKING, Any

from advisor import _mujoco
from advisor.errors import ExportError
from advisor.integrations import _yaml
from advisor.integrations.critic import check_rec, resolve_critic
from advisor.integrations.sb3 import (
    BRONET_POLICY,
    critic_match,
    learning_starts,
    policy_kwargs,
    protocol_notes,
    total_timesteps,
)

if TYPE_CHECKING:
    from advisor.fit import Fit
    from advisor.recommend import Recommendation

__all__ = ["check_env_actions", "check_env_id", "env_dict_observations", "env_input_dim",
           "zoo_hyperparams", "zoo_yaml"]

# Gymnasium ids: [namespace/]name[-vN], e.g. ALE/Pong-v5, dm_control/cheetah-run-v0.
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")  # a dotted name
_ENV_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*(/[A-Za-z0-9_][A-Za-z0-9_.:\-]*)?$")


def check_env_id(env_id: str | None) -> str:
    """The env id, or ExportError when it cannot be a Gymnasium id (one line)."""
    if env_id is None:
        raise ExportError("an rl-zoo file is keyed by env id: give --env ENV_ID (env_id= in "
                          "Python; e.g. Humanoid-v5)")
    if not isinstance(env_id, str):
        raise ExportError(f"the env id must be a string such as 'Humanoid-v5', got "
                          f"{type(env_id).__name__} {env_id!r}")
    if not env_id:
        raise ExportError("the env id is empty: give one such as Humanoid-v5")
    if len(env_id) > 200 or not _ENV_ID.fullmatch(env_id):  # fullmatch: no trailing newline
        raise ExportError(f"env id {env_id!r} is not a Gymnasium id such as Humanoid-v5 or "
                          "dm_control/cheetah-run-v0")
    module, name = split_module(env_id)
    if module is not None and (not _MODULE.fullmatch(module) or not name or ":" in name):
        raise ExportError(f"env id {env_id!r} is not a Gymnasium id: one 'module:' prefix may "
                          "name the module that registers the env, as in "
                          "my_package.envs:MyEnv-v0")
    return env_id


def split_module(env_id: str) -> tuple[str | None, str]:
    """(module, name) of a Gymnasium id: "pkg.envs:Env-v0" -> ("pkg.envs", "Env-v0"), as
    gymnasium.make splits it (it imports the module, which registers the env); (None, id)
    without a module."""
    module, colon, name = env_id.partition(":")
    return (module, name) if colon else (None, env_id)


def check_env_actions(env_id: str) -> None:
    """Where Gymnasium is installed, ExportError when `env_id`'s action space is not continuous
    (SB3's and CleanRL's SAC take a Box only), and one warning when Gymnasium here does not
    know the id (it may be registered where the output is used: rl-zoo's --gym-packages).
    The CLI calls it; the functions above stay free of Gymnasium (it makes the env)."""
    problem = _gymnasium_probe(env_id)[0]
    if problem is None:
        return
    kind, text = problem
    if kind == "error":
        raise ExportError(text)
    if env_id not in _WARNED:  # once per id and process
        _WARNED.add(env_id)
        warnings.warn(text, UserWarning, stacklevel=2)


_WARNED: set[str] = set()


def env_input_dim(env_id: str) -> int | None:
    """obs + action size of `env_id` (what a critic takes in) where Gymnasium here makes it
    with flat Box spaces (or a Dict of them: flattened and joined, as SB3 reads it); None
    otherwise. The CLI counts the client's critic at it."""
    return _gymnasium_probe(env_id)[1]


def env_dict_observations(env_id: str) -> bool:
    """Whether Gymnasium here makes `env_id` with a Dict observation space (goal envs): SB3
    needs MultiInputPolicy there, and CleanRL's SAC cannot read it."""
    return _gymnasium_probe(env_id)[2]


@functools.lru_cache(maxsize=64)
def _gymnasium_probe(env_id: str) -> tuple[tuple[str, str] | None, int | None, bool]:
    """(problem, input size, Dict observations) of `env_id` where Gymnasium is installed. The
    problem for SAC:
    ("error", ...) when the env's action space is not continuous (SB3's and CleanRL's SAC
    take a Box only), ("warning", ...) when Gymnasium here does not know the id (it may be
    registered where the file is used: rl-zoo's --gym-packages) or cannot make it (its own
    dependencies missing here, such as MuJoCo: the critic is then counted at the fit's input),
    None when fine or when Gymnasium is absent."""
    try:
        import gymnasium
    except Exception:  # not installed (the advisor does not need it) or broken
        return None, None, False
    module, name = split_module(env_id)
    try:
        if module is not None:  # gymnasium.spec does not import it; gymnasium.make does
            import importlib

            importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's module, or not installed here
        return ("warning", f"module {module!r} of env id {env_id!r} cannot be imported here "
                           f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); the "
                           "output names the env all the same, its action space unchecked and "
                           "a critic's params counted at the fit's input"), None, False
    try:
        spec = gymnasium.spec(name)
    except gymnasium.error.Error as exc:
        return ("warning", f"Gymnasium {gymnasium.__version__} here does not know env id "
                           f"{env_id!r} ({' '.join(str(exc).split())}); the output names it all "
                           "the same, for a codebase that registers it"), None, False
    try:
        with warnings.catch_warnings(), _mujoco.quiet(spec):  # no MUJOCO_LOG.TXT here
            warnings.simplefilter("ignore")
            env = gymnasium.make(env_id)
    except Exception as exc:  # e.g. Box2D or MuJoCo not installed here
        why = (str(exc).strip().splitlines() or [""])[0][:160]
        return ("warning", f"Gymnasium here could not make {env_id!r} "
                           f"({type(exc).__name__}{': ' + why if why else ''}): its action space "
                           "is not checked, and a critic's params are counted at the fit's input, "
                           "not the env's"), None, False
    try:
        space, obs = env.action_space, env.observation_space
    finally:
        try:
            env.close()
        except Exception:
            pass
    if not isinstance(space, gymnasium.spaces.Box):
        return ("error", f"env {env_id} has a {space} action space; SAC (SB3, rl-zoo, "
                         "CleanRL's sac_continuous_action.py) needs a continuous (Box) one, "
                         "e.g. Humanoid-v5 or Pendulum-v1"), None, False
    box = gymnasium.spaces.Box
    nested = isinstance(obs, gymnasium.spaces.Dict)
    parts = list(obs.spaces.values()) if nested else [obs]
    flat = all(isinstance(p, box) and len(p.shape) == 1 for p in parts) and len(space.shape) == 1
    return (None, int(sum(p.shape[0] for p in parts) + space.shape[0]) if flat else None,
            nested)


def _expression(value: Any) -> str:
    """A Python expression for `value` in the zoo's `dict(...)` style."""
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={_expression(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_expression(v) for v in value) + "]"
    return repr(value)


def zoo_hyperparams(rec: Recommendation, env_id: str | None = None, *,
                    critic: str | None = None, fit: Fit | str | None = None,
                    multi_input: bool = False) -> dict[str, dict[str, Any]]:
    """{env_id: hyperparameters}, as rl-zoo reads the file (policy_kwargs a string);
    `env_id` defaults to the env of the fit's runs (rec.env_id; fits of published
    runs have none: pass one); `critic` to the fit's own (critic.default_critic: "bronet", or
    "mlp" for a fit of MLP runs); `multi_input`: the env's observations are a Dict (the mlp
    critic then names SB3's MultiInputPolicy). The env's action space is not checked here
    (that makes the env): `check_env_actions(env_id)` refuses a discrete one, as the CLI does."""
    check_rec(rec)
    env_id = check_env_id(rec.env_id if env_id is None else env_id)
    critic = resolve_critic(rec, critic, fit)
    kwargs = policy_kwargs(rec, critic, fit=fit)
    if not (isinstance(multi_input, numbers.Integral) and multi_input in (0, 1)) and not (
            type(multi_input).__module__ == "numpy" and type(multi_input).__name__
            in ("bool", "bool_")):  # "no" is truthy
        raise ExportError(f"multi_input must be True or False, got {multi_input!r}")
    mlp = "MultiInputPolicy" if multi_input else "MlpPolicy"
    return {split_module(env_id)[1]: {  # rl-zoo's --env: the name, its module a gym package
        "n_timesteps": total_timesteps(rec),
        "policy": BRONET_POLICY if critic == "bronet" else mlp,
        "batch_size": rec.batch_size,
        "learning_rate": float(rec.learning_rate),
        "train_freq": rec.train_freq,
        "gradient_steps": rec.gradient_steps,
        **learning_starts(rec),
        "policy_kwargs": _expression(kwargs),
    }}


def zoo_yaml(rec: Recommendation, env_id: str | None = None, *, critic: str | None = None,
             fit: Fit | str | None = None, input_dim: int | None = None,
             multi_input: bool = False) -> str:
    """The text of an rl-zoo hyperparameter file for `env_id` (see the module docstring;
    default: the env of the fit's runs, as zoo_hyperparams) with `critic` (default: the
    fit's own, as zoo_hyperparams);
    `input_dim`: the env's obs + action size, at which the critic's params are counted in the
    comments (default: the fit's; the CLI passes `env_input_dim(env_id)`); `multi_input`: as
    zoo_hyperparams (the CLI passes `env_dict_observations(env_id)`). As there, the env's
    action space is `check_env_actions(env_id)`'s to check."""
    from advisor.recommend import _UNITS  # not at import: check_env_id stays light

    critic = resolve_critic(rec, critic, fit)
    entry = zoo_hyperparams(rec, env_id, critic=critic, fit=fit, multi_input=multi_input)
    module = split_module(rec.env_id if env_id is None else env_id)[0]
    env_id = next(iter(entry))
    packages = f" --gym-packages {module}" if module else ""
    match = critic_match(rec, critic, fit=fit, input_dim=input_dim)
    iv, one = rec.interval, rec.interval_single_seed
    c = _yaml.comment
    lines = [
        c(f"advisor: SAC on {env_id} from fit {rec.fit} (budget: "
          + ", ".join(f"{k} {v:.4g}" + (f" {_UNITS[k]}" if k in _UNITS else "")
                      for k, v in rec.budget.items()) + ")"),
        c(f"python -m rl_zoo3.train --algo sac --env {env_id}{packages} -conf THIS_FILE"),
        c(f"target {rec.target:.4g}; predicted data {rec.predicted_data:.4g} env steps"
          + (f" ({100 * iv.level:g}% interval {iv.low:.4g}-{iv.high:.4g}"
             + (f"; one seed {one.low:.4g}-{one.high:.4g}" if one else "") + ")" if iv else "")
          + f"; predicted compute {rec.predicted_compute:.4g} FLOPs"
          + (f"; predicted total {rec.predicted_total:.4g} FLOPs (delta {rec.delta:.3g})"
             if "total" in rec.budget else "") + "; within budget: "
          f"{'yes' if rec.within_budget else 'no'}"),
        c(f"utd {rec.gradient_steps}/{rec.train_freq} = {rec.utd:.4g} (gradient_steps / "
          f"train_freq); width {rec.width}; params {rec.params:.4g}"),
        c(match.note),
        c(f"extrapolated: {'true' if rec.extrapolated else 'false'}"),
    ] + ([c(f"near-optimal: {rec.near_optimal.describe()}")] if rec.near_optimal else []) + [
        c(f"note: {n}") for n in protocol_notes(rec)] + [
        c(f"warning: {w}") for w in rec.warnings]
    return "\n".join(lines + _yaml.dump(entry)) + "\n"
