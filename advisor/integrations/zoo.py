"""rl-zoo (rl_zoo3) hyperparameter files from a recommendation.

    advisor recommend --data 5e5 --format zoo --env Humanoid-v5 > sac.yml
    python -m rl_zoo3.train --algo sac --env Humanoid-v5 -conf sac.yml

The file has one top-level key, the env id (rl-zoo picks the entry whose key is `--env`), holding
`n_timesteps` (the predicted data, rounded up to whole rounds of train_freq steps), `policy`,
`batch_size`, `learning_rate`, `train_freq`, `gradient_steps` (utd = gradient_steps /
train_freq) and `policy_kwargs`, a Python expression string that rl-zoo evaluates. Numbers are
written so that YAML reads numbers. Comments (which rl-zoo ignores) carry the fit, target,
predicted data and compute, the interval, whether the configuration is extrapolated, the
warnings and what the critic lacks.

The critic (see advisor.integrations.sb3): critic="bronet" (default) names
`advisor.integrations.sb3_bronet.BroNetSACPolicy`, which rl-zoo imports by its dotted name (so
the value-scaling-advisor package must be importable where rl-zoo runs); critic="mlp" uses the
"MlpPolicy" alias with a plain MLP of the BroNet's Dense layers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from advisor.errors import ExportError
from advisor.integrations import _yaml
from advisor.integrations.sb3 import (
    BRONET_POLICY,
    critic_match,
    policy_kwargs,
    total_timesteps,
)

if TYPE_CHECKING:
    from advisor.fit import Fit
    from advisor.recommend import Recommendation

__all__ = ["check_env_id", "zoo_hyperparams", "zoo_yaml"]

# Gymnasium ids: [namespace/]name[-vN], e.g. ALE/Pong-v5, dm_control/cheetah-run-v0.
_ENV_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*(/[A-Za-z0-9_][A-Za-z0-9_.:\-]*)?$")


def check_env_id(env_id: str | None) -> str:
    """The env id, or ExportError when it cannot be a Gymnasium id (one line)."""
    if not env_id:
        raise ExportError("an rl-zoo file is keyed by env id: give --env ENV_ID (e.g. "
                          "--env Humanoid-v5)")
    if len(env_id) > 200 or not _ENV_ID.match(env_id):
        raise ExportError(f"env id {env_id!r} is not a Gymnasium id such as Humanoid-v5 or "
                          "dm_control/cheetah-run-v0")
    return env_id


def _expression(value: Any) -> str:
    """A Python expression for `value` in the zoo's `dict(...)` style."""
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={_expression(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_expression(v) for v in value) + "]"
    return repr(value)


def zoo_hyperparams(rec: Recommendation, env_id: str, *, critic: str = "bronet",
                    fit: Fit | str | None = None) -> dict[str, dict[str, Any]]:
    """{env_id: hyperparameters}, as rl-zoo reads the file (policy_kwargs a string)."""
    env_id = check_env_id(env_id)
    kwargs = policy_kwargs(rec, critic, fit=fit)
    return {env_id: {
        "n_timesteps": total_timesteps(rec),
        "policy": BRONET_POLICY if critic == "bronet" else "MlpPolicy",
        "batch_size": rec.batch_size,
        "learning_rate": float(rec.learning_rate),
        "train_freq": rec.train_freq,
        "gradient_steps": rec.gradient_steps,
        "policy_kwargs": _expression(kwargs),
    }}


def zoo_yaml(rec: Recommendation, env_id: str, *, critic: str = "bronet",
             fit: Fit | str | None = None) -> str:
    """The text of an rl-zoo hyperparameter file for `env_id` (see the module docstring)."""
    entry = zoo_hyperparams(rec, env_id, critic=critic, fit=fit)
    match = critic_match(rec, critic, fit=fit)
    iv = rec.interval
    c = _yaml.comment
    lines = [
        c(f"advisor: SAC on {env_id} from fit {rec.fit} ({rec.problem} budget: "
          + ", ".join(f"{k} {v:.4g}" for k, v in rec.budget.items()) + ")"),
        c(f"python -m rl_zoo3.train --algo sac --env {env_id} -conf THIS_FILE"),
        c(f"target {rec.target:.4g}; predicted data {rec.predicted_data:.4g} env steps"
          + (f" ({100 * iv.level:g}% interval {iv.low:.4g}-{iv.high:.4g})" if iv else "")
          + f"; predicted compute {rec.predicted_compute:.4g} FLOPs; within budget: "
          f"{'yes' if rec.within_budget else 'no'}"),
        c(f"utd {rec.gradient_steps}/{rec.train_freq} = {rec.utd:.4g} (gradient_steps / "
          f"train_freq); width {rec.width}; params {rec.params:.4g}"),
        c(match.note),
        c(f"extrapolated: {'true' if rec.extrapolated else 'false'}"),
    ] + [c(f"warning: {w}") for w in rec.warnings]
    return "\n".join(lines + _yaml.dump(entry)) + "\n"
