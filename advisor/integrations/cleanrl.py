"""Flags for CleanRL's cleanrl/sac_continuous_action.py (its tyro `Args`).

    python cleanrl/sac_continuous_action.py $(advisor recommend --data 5e5 --format args \\
        --env Humanoid-v4)

Set: --env-id (given, or the env a calibrated fit was made on), --total-timesteps (the
predicted data, rounded up), --batch-size, --q-lr and --policy-lr (the fit's learning_rate;
CleanRL's default q-lr is 1e-3) and --learning-starts (the random steps of the fit's runs,
where it records them; CleanRL's default is 5,000).

What the script cannot express (`NOT_EXPRESSIBLE`, and `cleanrl_note(rec)` for one
recommendation): it has no flag for the utd (it takes one critic update per env step, utd 1;
--policy-frequency only delays the actor) nor for the critic (SoftQNetwork is a hard-coded
256-256 ReLU MLP with a scalar head, not the fit's BroNet at the recommended width with a
100-quantile head). Follow those by editing the script.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from advisor.errors import AdvisorError
from advisor.integrations.critic import CLEANRL_WIDTH, check_rec, critic_match
from advisor.integrations.sb3 import _most_data, protocol_notes
from advisor.integrations.zoo import check_env_id

if TYPE_CHECKING:
    from advisor.fit import Fit
    from advisor.recommend import Recommendation

__all__ = ["NOT_EXPRESSIBLE", "SCRIPT", "cleanrl_flags", "cleanrl_note"]

SCRIPT = "cleanrl/sac_continuous_action.py"
#: Its Args.learning_starts (random steps before learning) and Args.env_id by default.
CLEANRL_LEARNING_STARTS = 5_000
CLEANRL_ENV = "Hopper-v4"
#: Its critic's input on that env (11 observations + 3 actions), for where Gymnasium is absent.
CLEANRL_ENV_INPUT_DIM = 14
NOT_EXPRESSIBLE = (
    "utd (one critic update per env step, utd 1, no flag) and the critic "
    f"(a hard-coded {CLEANRL_WIDTH}-{CLEANRL_WIDTH} MLP with a scalar head, no width flag)")


def cleanrl_flags(rec: Recommendation, env_id: str | None = None) -> list[str]:
    """Command-line flags sac_continuous_action.py accepts, in its tyro spelling. `env_id`
    defaults to the env of the fit's runs (rec.env_id); where there is none either
    (fits of published runs), no --env-id: the script trains its own default env. The env's
    action space is not checked here (that makes the env):
    `advisor.integrations.zoo.check_env_actions(env_id)` refuses a discrete one, as the CLI
    does."""
    check_rec(rec)
    env_id = rec.env_id if env_id is None else env_id
    flags = []
    if env_id is not None:
        flags += ["--env-id", check_env_id(env_id)]
    lr = f"{rec.learning_rate:g}"
    flags += ["--total-timesteps", str(cleanrl_steps(rec)), "--batch-size", str(rec.batch_size),
              "--q-lr", lr, "--policy-lr", lr]
    if rec.random_steps is not None:
        flags += ["--learning-starts", str(int(rec.random_steps))]
    return flags


def cleanrl_steps(rec: Recommendation) -> int:
    """--total-timesteps: the predicted data, rounded up, or down where rounding up would pass
    a budget (data, compute or total), as sb3.total_timesteps rounds."""
    steps = math.ceil(rec.predicted_data * (1 - 1e-12))
    most = _most_data(rec)
    if steps > most and rec.within_budget:
        steps = max(1, math.floor(most))
    return steps


def cleanrl_note(rec: Recommendation, *, fit: Fit | str | None = None,
                 input_dim: int | None = None) -> str:
    """One line: what of `rec` the flags leave out; `input_dim`: the env's obs + action size
    (its critic's input; default: the fit's)."""
    if rec.gradient_steps == rec.train_freq:
        utd = "the utd 1 matches its one critic update per env step"
    else:
        utd = (f"it cannot take the recommended utd {rec.gradient_steps}/{rec.train_freq} = "
               f"{rec.utd:.3g} (one critic update per env step, utd 1, and no flag for it")
        if rec.gradient_steps == 1:  # one update per vector step of train_freq envs
            utd += (f"; --num-envs {rec.train_freq} would give utd 1/{rec.train_freq} but "
                    f"collects with {rec.train_freq} parallel envs and counts --total-timesteps "
                    "in vector steps")
        utd += ")"
    critic = (f"its critic is a hard-coded {CLEANRL_WIDTH}-{CLEANRL_WIDTH} ReLU MLP with a scalar "
              f"head and no width flag, not the fit's critic at width {rec.width} "
              f"({rec.params:.4g} params)")
    try:
        m = critic_match(rec, "cleanrl", fit=fit, input_dim=input_dim)
        at = (f"input {m.client_input_dim}" if m.client_input_dim is not None
              else f"the fit's input {m.input_dim}")
        critic += f": {m.params_client:,} params at {at}, {_percent(m.share)} of the fit's"
    except AdvisorError:  # a fit that is not a BroNet, or not at hand: the words suffice
        pass
    protocol = protocol_notes(rec, "CleanRL", CLEANRL_LEARNING_STARTS, steps=cleanrl_steps(rec),
                              buffer_option="--buffer-size")
    return (f"CleanRL's sac_continuous_action.py: {utd}; {critic}; edit the script to follow "
            "them" + "".join(f"; {p}" for p in protocol))


def _percent(share: float) -> str:
    """283% (it printed 2.8e+02%), 45%, 0.52%."""
    return f"{100 * share:,.0f}%" if 100 * share >= 10 else f"{100 * share:.2g}%"
