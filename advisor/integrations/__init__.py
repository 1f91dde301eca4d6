"""Recommendations in the form RL codebases take them, each checked by running the codebase.

- `advisor.integrations.zoo`: rl-zoo (rl_zoo3) hyperparameter files (`--format zoo`);
- `advisor.integrations.sb3`: Stable-Baselines3 `SAC(...)` keyword arguments;
- `advisor.integrations.cleanrl`: flags for CleanRL's sac_continuous_action.py (`--format args`);
- `advisor.integrations.critic`: the fit's BroNet critic and what each codebase builds of it.

These modules import neither torch nor Stable-Baselines3; `advisor.integrations.sb3_bronet`
(the BroNet critic as an SB3 policy class) does, and is imported only when asked for.
"""
