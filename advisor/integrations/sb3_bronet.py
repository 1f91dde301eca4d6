"""The fit's BroNet critic for Stable-Baselines3 SAC (imports torch and stable_baselines3).

SB3's SACPolicy builds its critic in `make_critic` as a ContinuousCritic of plain MLPs, and no
`policy_kwargs` key can replace it, so the BroNet comes in a policy class:

    SAC(BroNetSACPolicy, env, policy_kwargs=dict(critic_width=512, critic_blocks=2), ...)
    # rl-zoo: policy: advisor.integrations.sb3_bronet.BroNetSACPolicy

Each Q-net is the BroNet of calibration/learner/nets.py (Dense -> LayerNorm -> ReLU, `blocks`
residual blocks [Dense -> LayerNorm -> ReLU -> Dense -> LayerNorm] + skip, Dense head) with a
scalar head, since SB3's SAC learns a scalar Q: (quantiles - 1)(width + 1) fewer parameters per
Q-net than the fit's 100-quantile critic. The actor stays SB3's MLP (`net_arch`).

The `advisor` package stays free of torch at import: the classes are defined, and torch and
stable_baselines3 imported, on the first access to one of them (module `__getattr__`), which is
how rl-zoo and SB3's loader reach them by dotted name.
"""

from __future__ import annotations

from typing import Any

_LAZY = ("BroNet", "BroNetCritic", "BroNetSACPolicy")  # defined on first access


def __getattr__(name: str):
    if name in _LAZY:
        _define()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define() -> None:
    import torch as th
    from gymnasium import spaces
    from stable_baselines3.common.policies import BaseModel, ContinuousCritic
    from stable_baselines3.common.preprocessing import get_action_dim
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor
    from stable_baselines3.sac.policies import SACPolicy
    from torch import nn

    class BroNet(nn.Module):
        """Dense(in -> w) -> LN -> ReLU, `blocks` x ([Dense -> LN -> ReLU -> Dense -> LN] + skip),
        Dense(w -> out)."""

        def __init__(self, in_dim: int, width: int, blocks: int, out_dim: int = 1):
            super().__init__()
            self.stem = nn.Sequential(nn.Linear(in_dim, width), nn.LayerNorm(width), nn.ReLU())
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.ReLU(),
                              nn.Linear(width, width), nn.LayerNorm(width))
                for _ in range(blocks))
            self.head = nn.Linear(width, out_dim)

        def forward(self, x: th.Tensor) -> th.Tensor:
            h = self.stem(x)
            for block in self.blocks:
                h = h + block(h)
            return self.head(h)


    class BroNetCritic(ContinuousCritic):
        """ContinuousCritic whose Q-nets are BroNets (forward and q1_forward are SB3's)."""

        def __init__(self, observation_space: spaces.Space, action_space: spaces.Box,
                     net_arch: list[int], features_extractor: BaseFeaturesExtractor,
                     features_dim: int, activation_fn: type[nn.Module] = nn.ReLU,
                     normalize_images: bool = True, n_critics: int = 2,
                     share_features_extractor: bool = True, critic_width: int = 256,
                     critic_blocks: int = 2):
            # Skip ContinuousCritic.__init__ (it builds the MLP Q-nets); keep its attributes.
            BaseModel.__init__(self, observation_space, action_space,
                               features_extractor=features_extractor,
                               normalize_images=normalize_images)
            self.share_features_extractor = share_features_extractor
            self.n_critics = n_critics
            in_dim = features_dim + get_action_dim(self.action_space)
            self.q_networks: list[nn.Module] = []
            for idx in range(n_critics):
                q_net = BroNet(in_dim, critic_width, critic_blocks, 1)
                self.add_module(f"qf{idx}", q_net)
                self.q_networks.append(q_net)


    class BroNetSACPolicy(SACPolicy):
        """SACPolicy with a BroNet critic of `critic_width` and `critic_blocks` residual blocks;
        `net_arch` sets the actor only. A Dict observation space (goal envs) is read as SB3's
        MultiInputPolicy reads it (CombinedExtractor: each key flattened and concatenated)."""

        def __init__(self, observation_space: spaces.Space, *args: Any, critic_width: int = 256,
                     critic_blocks: int = 2, **kwargs: Any):
            if int(critic_width) < 1 or int(critic_blocks) < 0:
                raise ValueError(f"critic_width must be >= 1 and critic_blocks >= 0, got "
                                 f"{critic_width}, {critic_blocks}")
            if isinstance(observation_space, spaces.Dict):
                kwargs.setdefault("features_extractor_class", CombinedExtractor)
            self.critic_width = int(critic_width)
            self.critic_blocks = int(critic_blocks)
            super().__init__(observation_space, *args, **kwargs)

        def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None
                        ) -> ContinuousCritic:
            critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
            return BroNetCritic(**critic_kwargs, critic_width=self.critic_width,
                                critic_blocks=self.critic_blocks).to(self.device)

        def _get_constructor_parameters(self) -> dict[str, Any]:
            data = super()._get_constructor_parameters()
            data.update(critic_width=self.critic_width, critic_blocks=self.critic_blocks)
            return data

    for cls in (BroNet, BroNetCritic, BroNetSACPolicy):
        cls.__qualname__ = cls.__name__  # picklable by reference, as if defined at top level
        cls.__module__ = __name__
        globals()[cls.__name__] = cls
