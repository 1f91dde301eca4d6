"""Stacked BroNet networks: G independent copies evaluated with one batched matmul per layer.

Parameters live in plain dicts of tensors whose first dim is the group (population member, or
member x Q-net for the double critic), so a population update is a handful of `baddbmm` calls
instead of G small kernels each. The layout per network (reference.md, BRO):
    Dense(w) -> LayerNorm -> ReLU, then `blocks` x [Dense -> LN -> ReLU -> Dense -> LN] + skip,
    then a Dense head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]


def critic_params(width: int, obs_dim: int, act_dim: int, blocks: int = 2,
                  quantiles: int = 100) -> int:
    """Exact parameter count of the double BroNet critic (both Q-nets).

    For obs_dim + act_dim = 70 and the defaults this is 8 w^2 + 370 w + 200 (HumanoidBench h1).
    """
    return 2 * bronet_size(obs_dim + act_dim, width, quantiles, blocks)


def bronet_size(in_dim: int, width: int, out_dim: int, blocks: int) -> int:
    dense_in = in_dim * width + width
    ln = 2 * width
    block = 2 * (width * width + width) + 2 * ln
    head = width * out_dim + out_dim
    return dense_in + ln + blocks * block + head


def init_bronet(groups: int, in_dim: int, width: int, out_dim: int, blocks: int,
                generator: torch.Generator, device, head_scale: float = 1.0) -> Params:
    """Stacked parameters of `groups` BroNets. Dense layers use orthogonal-like scaled
    uniform init (PyTorch's Linear default); LayerNorm gains 1, biases 0."""

    def dense(name: str, fan_in: int, fan_out: int, scale: float = 1.0):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(groups, fan_in, fan_out, generator=generator) * 2 - 1) * bound * scale
        b = (torch.rand(groups, fan_out, generator=generator) * 2 - 1) * bound * scale
        p[f"{name}.w"], p[f"{name}.b"] = w, b

    def norm(name: str):
        p[f"{name}.g"] = torch.ones(groups, width)
        p[f"{name}.b"] = torch.zeros(groups, width)

    p: Params = {}
    dense("in", in_dim, width)
    norm("in_ln")
    for k in range(blocks):
        dense(f"b{k}.d1", width, width)
        norm(f"b{k}.ln1")
        dense(f"b{k}.d2", width, width)
        norm(f"b{k}.ln2")
    dense("head", width, out_dim, head_scale)
    return {k: v.to(device) for k, v in p.items()}


def _dense(p: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    return torch.baddbmm(p[f"{name}.b"].unsqueeze(1), x, p[f"{name}.w"])


def _norm(p: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    x = F.layer_norm(x, x.shape[-1:])
    return x * p[f"{name}.g"].unsqueeze(1) + p[f"{name}.b"].unsqueeze(1)


def bronet(p: Params, x: torch.Tensor, blocks: int) -> torch.Tensor:
    """x: (G, B, in) -> (G, B, out)."""
    h = F.relu(_norm(p, "in_ln", _dense(p, "in", x)))
    for k in range(blocks):
        r = F.relu(_norm(p, f"b{k}.ln1", _dense(p, f"b{k}.d1", h)))
        h = h + _norm(p, f"b{k}.ln2", _dense(p, f"b{k}.d2", r))
    return _dense(p, "head", h)


def count(p: Params) -> int:
    """Parameters of one group member."""
    return sum(v[0].numel() for v in p.values())
