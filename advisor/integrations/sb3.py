"""Stable-Baselines3 SAC keyword arguments from a recommendation (imports neither torch nor SB3).

    from stable_baselines3 import SAC
    from advisor.integrations import sb3

    SAC("MlpPolicy", env, **sb3.sac_kwargs(rec)).learn(sb3.total_timesteps(rec))
    SAC(sb3.sac_policy("bronet"), env, **sb3.sac_kwargs(rec, critic="bronet"))

What SB3 can build of the fit's critic (see advisor.integrations.critic):

- critic="mlp" (the default, for the "MlpPolicy" alias): SB3's ContinuousCritic is a plain MLP
  (`create_mlp`) on concat(features, action), and `policy_kwargs` only sets its layer widths
  (`net_arch`), activation and number of Q-nets: no LayerNorm, no residual skips, and a
  features extractor sees the observation alone. So "mlp" gives the BroNet's Dense layers as a
  plain MLP (1 + 2 blocks hidden layers of the recommended width, 2 Q-nets): per Q-net
  (2 + 4 blocks) w LayerNorm params and (quantiles - 1)(w + 1) head params fewer than the fit's.
- critic="bronet": the fit's BroNet needs a policy class, `BroNetSACPolicy` in
  advisor.integrations.sb3_bronet (imports torch and SB3; pass it as the policy, or
  "advisor.integrations.sb3_bronet.BroNetSACPolicy" in an rl-zoo file). SAC learns a scalar Q,
  so the 100-quantile head becomes one output: (quantiles - 1)(w + 1) fewer params per Q-net.

A fit of plain MLP runs (`advisor tidy` of rl-zoo's MlpPolicy runs, 3+ widths; see
advisor.integrations.critic.MlpShape) gets that MLP from critic="mlp", exactly; "bronet" raises
ExportError there.

`critic_match(rec, critic)` states the structure and the exact shortfall. The actor is SB3's
default (256-256 MLP): the fits say nothing about it. Other fits that are not BroNets (SimbaV2)
raise ExportError.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from advisor.errors import ExportError
from advisor.integrations.critic import (
    CRITICS,
    CriticMatch,
    bronet_shape,
    check_rec,
    critic_match,
    fit_of,
    mlp_shape,
)

if TYPE_CHECKING:
    from advisor.fit import Fit
    from advisor.recommend import Recommendation

__all__ = ["ACTOR_NET_ARCH", "BRONET_POLICY", "CriticMatch", "critic_match", "learning_starts",
           "policy_kwargs", "protocol_notes", "sac_kwargs", "sac_policy", "total_timesteps"]

#: SB3's default actor (the fits do not describe the actor).
ACTOR_NET_ARCH = [256, 256]
#: Where the BroNet policy lives (the dotted name rl-zoo resolves with importlib).
BRONET_POLICY = "advisor.integrations.sb3_bronet.BroNetSACPolicy"


def _check_critic(critic: str) -> None:
    if critic not in CRITICS:
        raise ExportError(f"critic must be one of {', '.join(CRITICS)}, got {critic!r}")


def total_timesteps(rec: Recommendation) -> int:
    """The predicted data in env steps, rounded up to whole rounds of train_freq steps (SB3
    collects train_freq steps between updates, so `learn(n)` runs n exactly; rl-zoo's
    n_timesteps), or down where rounding up would pass a budget (data, compute or total)."""
    check_rec(rec)
    rounds = math.ceil(rec.predicted_data * (1 - 1e-12) / rec.train_freq)
    most = _most_data(rec)
    if rounds * rec.train_freq > most and rec.within_budget:
        # rounded up past a budget: the last whole round within it (< train_freq short)
        rounds = max(1, math.floor(most / rec.train_freq))
    return int(rounds * rec.train_freq)


def _most_data(rec: Recommendation) -> float:
    """The most env steps rec's configuration may run within its budget: compute and total
    grow in proportion to the data at a fixed configuration."""
    most = rec.budget.get("data", math.inf)
    for spent, cost in (("compute", rec.predicted_compute), ("total", rec.predicted_total)):
        limit = rec.budget.get(spent)
        if limit is not None and cost > 0:
            most = min(most, limit * rec.predicted_data / cost)
    return most


def policy_kwargs(rec: Recommendation, critic: str = "mlp", *, fit: Fit | str | None = None
                  ) -> dict[str, Any]:
    """SACPolicy keyword arguments that build the critic: for "mlp" the MlpPolicy's net_arch
    (actor 256-256, critic the BroNet's Dense layers at rec.width; for a fit of MLP runs, that
    MLP: critic.mlp_shape) and n_critics; for "bronet" BroNetSACPolicy's critic_width and
    critic_blocks."""
    _check_critic(critic)
    f = fit_of(rec, fit)
    mlp = mlp_shape(f)
    if mlp is not None:  # a fit of MLP runs: that MLP (a bronet critic raises ExportError)
        if critic == "bronet":
            bronet_shape(f)
        return dict(net_arch=dict(pi=list(ACTOR_NET_ARCH), qf=[rec.width] * mlp.layers),
                    n_critics=mlp.qnets)
    shape = bronet_shape(f)
    if critic == "bronet":
        return dict(critic_width=rec.width, critic_blocks=shape.blocks)
    return dict(net_arch=dict(pi=list(ACTOR_NET_ARCH), qf=[rec.width] * shape.hidden_layers),
                n_critics=2)


def sac_kwargs(rec: Recommendation, *, critic: str = "mlp", fit: Fit | str | None = None
               ) -> dict[str, Any]:
    """Keyword arguments for `SAC(policy, env, **sac_kwargs(rec))`: batch_size, learning_rate,
    train_freq and gradient_steps (utd = gradient_steps / train_freq), learning_starts (the
    random steps of the fit's runs, where the fit records them: rec.random_steps; else SB3's
    default, 100) and policy_kwargs.

    critic="mlp" (default) works with the "MlpPolicy" alias: a plain MLP with the BroNet's
    Dense layers (for a fit of plain MLP runs, that MLP); critic="bronet" needs
    `sac_policy("bronet")` (BroNetSACPolicy). Neither has a BroNet fit's 100-quantile head;
    `critic_match(rec, critic).note` says what is missing. `fit` (a Fit, id or path) is needed
    when rec came from a fit file that is not installed."""
    check_rec(rec)
    return dict(batch_size=rec.batch_size, learning_rate=rec.learning_rate,
                train_freq=rec.train_freq, gradient_steps=rec.gradient_steps,
                **learning_starts(rec), policy_kwargs=policy_kwargs(rec, critic, fit=fit))


def learning_starts(rec: Recommendation) -> dict[str, int]:
    """{"learning_starts": the fit's runs' random steps} where the fit records them, else {}."""
    return {} if rec.random_steps is None else {"learning_starts": int(rec.random_steps)}


#: SB3's and CleanRL's default replay capacity (buffer_size), in transitions.
CLIENT_BUFFER = 1_000_000


def protocol_notes(rec: Recommendation, client: str = "SB3", default_starts: int = 100, *,
                   steps: int | None = None, buffer_option: str = "buffer_size") -> list[str]:
    """What of the fit's runs the client's defaults leave different: learning_starts where the
    fit does not record its random steps, and a replay capacity below the run's length (SB3
    and CleanRL keep the last 1e6 transitions; this project's learner keeps every one).
    `steps`: the env steps the client runs (default SB3's, total_timesteps(rec))."""
    notes = []
    if rec.random_steps is None:
        notes.append(f"learning_starts stays at {client}'s default {default_starts:,} (the fit "
                     "does not record how many random steps its runs took first)")
    steps = total_timesteps(rec) if steps is None else steps
    if steps > CLIENT_BUFFER:
        notes.append(f"{client}'s replay buffer keeps the last {CLIENT_BUFFER:,} of the "
                     f"{steps:,} transitions ({buffer_option} {steps} keeps them all)")
    return notes


def sac_policy(critic: str = "mlp"):
    """The policy to pass to SAC with `sac_kwargs(rec, critic=critic)`: "MlpPolicy", or the
    BroNetSACPolicy class (imports torch and SB3)."""
    _check_critic(critic)
    if critic == "mlp":
        return "MlpPolicy"
    from advisor.integrations.sb3_bronet import BroNetSACPolicy

    return BroNetSACPolicy
