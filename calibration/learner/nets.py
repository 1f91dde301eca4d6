"""Stacked BroNet networks: G independent copies evaluated with one batched matmul per layer.

A network's parameters for all G groups (population member, or member x Q-net for the double
critic) live in ONE flat buffer of shape (G, numel): row g holds every parameter of group g.
Layers are named by role (`BroNet.dense_in`, `Block.norm1`, ...) and are views into that
buffer, so the forward pass reads per layer while the optimiser and the target update see one
2-D tensor (a per-member learning rate or mask is then a broadcast over rows). The layout per
network (reference.md, BRO):
    Dense(w) -> LayerNorm -> ReLU, then `blocks` x [Dense -> LN -> ReLU -> Dense -> LN] + skip,
    then a Dense head.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


class Dense(NamedTuple):
    weight: torch.Tensor  # (G, in, out)
    bias: torch.Tensor  # (G, out)


class Norm(NamedTuple):
    gain: torch.Tensor  # (G, width)
    bias: torch.Tensor  # (G, width)


class Block(NamedTuple):
    dense1: Dense
    norm1: Norm
    dense2: Dense
    norm2: Norm


class BroNet(NamedTuple):
    dense_in: Dense
    norm_in: Norm
    blocks: tuple[Block, ...]
    head: Dense


def critic_params(width: int, obs_dim: int, act_dim: int, blocks: int = 2,
                  quantiles: int = 100) -> int:
    """Exact parameter count of the double BroNet critic (both Q-nets).

    For obs_dim + act_dim = 70 and the defaults this is 8 w^2 + 370 w + 200 (HumanoidBench h1).
    """
    for name, value, low in (("width", width, 1), ("obs_dim", obs_dim, 1),
                             ("act_dim", act_dim, 1), ("blocks", blocks, 0),
                             ("quantiles", quantiles, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be a whole number of at least {low}, got {value!r}")
    return 2 * Layout(obs_dim + act_dim, width, quantiles, blocks).numel


@dataclass(frozen=True)
class Layout:
    """Shape of one BroNet and where each of its parameters sits in a row of the flat buffer."""

    in_dim: int
    width: int
    out_dim: int
    blocks: int

    def _build(self, take: Callable[..., object]) -> BroNet:
        """The network with each parameter made by `take(*shape)`, in buffer order."""
        w = self.width

        def dense(fan_in: int, fan_out: int) -> Dense:
            return Dense(take(fan_in, fan_out), take(fan_out))

        def norm() -> Norm:
            return Norm(take(w), take(w))

        dense_in, norm_in = dense(self.in_dim, w), norm()  # calls in buffer order
        blocks = tuple(Block(dense(w, w), norm(), dense(w, w), norm()) for _ in range(self.blocks))
        return BroNet(dense_in, norm_in, blocks, dense(w, self.out_dim))

    @property
    def numel(self) -> int:
        """Parameters of one group."""
        sizes = []
        self._build(lambda *shape: sizes.append(math.prod(shape)))
        return sum(sizes)

    def views(self, flat: torch.Tensor) -> BroNet:
        """The network whose parameters are views (G, *shape) into `flat` (G, numel)."""
        offset = 0

        def take(*shape: int) -> torch.Tensor:
            nonlocal offset
            n = math.prod(shape)
            view = flat[:, offset:offset + n].view(flat.shape[0], *shape)
            offset += n
            return view

        return self._build(take)

    def init(self, groups: int, generator: torch.Generator) -> torch.Tensor:
        """Flat parameters (groups, numel) of `groups` fresh networks. Dense layers use
        PyTorch's Linear default (uniform in +-1/sqrt(fan_in)); LayerNorm gains 1, biases 0."""
        flat = torch.zeros(groups, self.numel)
        net = self.views(flat)
        for norm in (net.norm_in, *(n for b in net.blocks for n in (b.norm1, b.norm2))):
            norm.gain.fill_(1.0)
        for dense in (net.dense_in, *(d for b in net.blocks for d in (b.dense1, b.dense2)),
                      net.head):
            bound = 1.0 / math.sqrt(dense.weight.shape[1])
            dense.weight.copy_((torch.rand(dense.weight.shape, generator=generator) * 2 - 1)
                               * bound)
            dense.bias.copy_((torch.rand(dense.bias.shape, generator=generator) * 2 - 1) * bound)
        return flat


def leaves(net: BroNet) -> list[torch.Tensor]:
    """The parameter tensors of `net` in buffer order."""
    return list(torch.utils._pytree.tree_leaves(net))


def flat_grad(grads: list[torch.Tensor]) -> torch.Tensor:
    """Per-layer gradients (G, *shape) -> one (G, numel) tensor in buffer order (one copy), in
    the first one's dtype (bf16 networks: the fp32 head's gradients join the body's bf16)."""
    dtype = grads[0].dtype
    return torch.cat([g.reshape(g.shape[0], -1).to(dtype) for g in grads], 1)


def dense(layer: Dense, x: torch.Tensor) -> torch.Tensor:
    return torch.baddbmm(layer.bias.unsqueeze(1), x, layer.weight)


def norm(layer: Norm, x: torch.Tensor, relu: bool = False,
         residual: torch.Tensor | None = None) -> torch.Tensor:
    """LayerNorm with a per-group gain and bias, then ReLU (`relu`), then `residual` + that:
    everything between two matmuls, one function, so that it can be compiled as one region."""
    y = F.layer_norm(x, x.shape[-1:]) * layer.gain.unsqueeze(1) + layer.bias.unsqueeze(1)
    if relu:
        y = F.relu(y)
    return y if residual is None else residual + y


def bronet(net: BroNet, x: torch.Tensor, norm_fn: Callable = norm) -> torch.Tensor:
    """x: (G, B, in) -> (G, B, out). `norm_fn`: `norm`, or a compiled version of it. The head
    computes in its own parameters' dtype (fp32 on a bf16 body: Population.bf16)."""
    h = norm_fn(net.norm_in, dense(net.dense_in, x), True)
    for block in net.blocks:
        r = norm_fn(block.norm1, dense(block.dense1, h), True)
        h = norm_fn(block.norm2, dense(block.dense2, r), False, h)
    return dense(net.head, h.to(net.head.weight.dtype))
