"""The BRO-style SAC update for a population, top to bottom (CleanRL style).

One call of `Population.update` does, for every member at once:
  1. critic: quantile-Huber TD loss against the target critic (min of the two Q-nets) with the
     entropy bonus, one AdamW step;
  2. actor: alpha * log pi(a|s) - Q(s, a) with Q the min over the two Q-nets of the mean quantile;
  3. temperature: -log_alpha * (log pi + target_entropy);
  4. target critic: Polyak averaging with tau (in the critic's AdamW pass: optim.AdamW.step).
Members are independent: each loss is a sum over members, so gradients never mix. A per-member
`mask` skips a member's step (used for members with a smaller utd, or diverged members).
The vectorisation (flat stacked parameters, batched matmuls, one-pass AdamW) lives in nets.py
and optim.py; the fused loss in fused.py; the CUDA graph in graphs.py. `quantile_huber_loss`
below is the readable definition the fused loss is tested against.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import torch

from calibration.learner import nets
from calibration.learner.fused import (
    CUDA_LOCK,
    LazyCompiled,
    allow_recompiles,
    fused_quantile_huber_loss,
)
from calibration.learner.optim import IMPLS, AdamW

LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


@dataclass(frozen=True)
class AgentConfig:
    """Hyperparameters of paper A's BRO setup (reference.md)."""

    obs_dim: int
    act_dim: int
    width: int = 512
    critic_blocks: int = 2
    quantiles: int = 100  # 1 = scalar head with a Huber loss
    actor_width: int = 256
    actor_blocks: int = 1
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    gamma: float = 0.99
    tau: float = 5e-3
    init_temperature: float = 1.0
    kappa: float = 1.0

    @property
    def target_entropy(self) -> float:
        return -self.act_dim / 2.0

    @property
    def critic_params(self) -> int:
        return nets.critic_params(self.width, self.obs_dim, self.act_dim, self.critic_blocks,
                                  self.quantiles)


def quantile_huber_loss(pred: torch.Tensor, target: torch.Tensor, kappa: float = 1.0,
                        sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Quantile-regression Huber loss (Dabney et al. 2018), averaged over the batch.

    pred: (..., B, N) predicted quantiles at fractions tau_i = (2i + 1) / 2N;
    target: (..., B, N') target samples. Returns (...,): sum over i, mean over j and B.
    With N = N' = 1 this is the Huber loss scaled by 1/2 (tau = 0.5). `sample_weight`
    (..., B), broadcastable, replaces the mean over B by a weighted sum (a member whose batch
    is the first b of B samples: 1/b on those, 0 after).
    """
    n = pred.shape[-1]
    tau = (torch.arange(n, device=pred.device, dtype=pred.dtype) + 0.5) / n
    u = target.unsqueeze(-2) - pred.unsqueeze(-1)  # (..., B, N, N')
    abs_u = u.abs()
    huber = torch.where(abs_u <= kappa, 0.5 * u * u, kappa * (abs_u - 0.5 * kappa))
    weight = (tau.unsqueeze(-1) - (u.detach() < 0).to(pred.dtype)).abs()
    per_sample = (weight * huber / kappa).mean(-1).sum(-1)
    if sample_weight is None:
        return per_sample.mean(-1)
    return (per_sample * sample_weight).sum(-1)


@dataclass
class Batch:
    """Transitions for every member: obs (M, B, o), action (M, B, a), reward/done (M, B)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor

    def member(self, i: int, batch_size: int | None = None) -> Batch:
        """Member i's transitions (its first `batch_size`) as a batch of one member."""
        return Batch(*(t[i:i + 1, :batch_size] for t in (self.obs, self.action, self.reward,
                                                         self.next_obs, self.done)))

    def members(self, lo: int, hi: int) -> Batch:
        """Members lo..hi-1's transitions (views; Population.span)."""
        return Batch(*(t[lo:hi] for t in (self.obs, self.action, self.reward, self.next_obs,
                                          self.done)))


@dataclass
class Noise:
    """Standard normal draws for the two actor samples of an update, (M, B, a) each."""

    next_action: torch.Tensor
    action: torch.Tensor

    def member(self, i: int, batch_size: int | None = None) -> Noise:
        """Member i's draws (its first `batch_size`) for a population of one."""
        return Noise(self.next_action[i:i + 1, :batch_size], self.action[i:i + 1, :batch_size])

    def members(self, lo: int, hi: int) -> Noise:
        """Members lo..hi-1's draws (views; Population.span)."""
        return Noise(self.next_action[lo:hi], self.action[lo:hi])


@dataclass
class Population:
    """M agents with stacked parameters, each network in one flat member-major buffer:
    critic and target (M, 2, P) (both Q-nets of a member side by side), actor (M, P_actor),
    log_alpha (M,). `critic_net`, `target_net` and `actor_net` are views of those buffers by
    layer (nets.BroNet, groups 2M for the critics), `log_alpha_leaf` a view of log_alpha;
    gradients are taken w.r.t. those views, the optimisers write the buffers."""

    cfg: AgentConfig
    members: int
    seeds: list[int]
    device: torch.device
    learning_rates: torch.Tensor | None = None  # (M,), default cfg.learning_rate
    fused: bool = True  # fused loss (fused.py) and single-pass AdamW kernels; False: reference
    compiled: bool = False  # torch.compile the whole update (`update_fn`)
    # torch.compile only what lies between two matmuls (nets.norm: LayerNorm, gain and bias,
    # ReLU, skip; forward and backward), a few small compiles per population shape instead of
    # one large one; the matmuls and the rest stay eager. Ignored when `compiled`.
    regions: bool = False
    amp: bool = False  # bf16 autocast for the networks; parameters, optimiser and loss stay fp32
    # bf16 weights and activations: the networks read bf16 copies of the critic, target and actor
    # (`critic_bf16`, ...), written by the AdamW steps from the fp32 parameters (which, with the
    # moments, the temperature and the loss, stay fp32), and compute in bf16 (LayerNorm
    # statistics in fp32 inside the op); gradients come back in bf16. Halves the bytes of the
    # matrix products and activations without autocast's recasting of every weight at each use.
    # The heads (the last dense layer: Q-values, the policy's mean and log-std) read the fp32
    # parameters and compute in fp32: in bf16 a Q-value near 300 is only known to +-1, and the
    # error in the parameters' change grew from 3% to 16% (Q near 0 and near 300, 50 updates).
    bf16: bool = False
    # AdamW implementation (optim.IMPLS) of the critic and actor steps (and, when "compiled",
    # the temperature's); "auto": see `default_optimizer`.
    optimizer: str = "auto"
    # Per-member batch sizes (packing): batches hold max(batch_sizes) samples per member and
    # member i learns from its first batch_sizes[i] of them (weighted means, same arithmetic as
    # a population of that batch size). None: every member uses the whole batch.
    batch_sizes: list[int] | None = None
    critic: torch.Tensor = field(init=False)
    target: torch.Tensor = field(init=False)
    actor: torch.Tensor = field(init=False)
    log_alpha: torch.Tensor = field(init=False)

    def __post_init__(self):
        cfg, m = self.cfg, self.members
        if len(self.seeds) != m:
            raise ValueError(f"need {m} seeds, got {len(self.seeds)}")
        self.critic_layout = nets.Layout(cfg.obs_dim + cfg.act_dim, cfg.width, cfg.quantiles,
                                         cfg.critic_blocks)
        self.actor_layout = nets.Layout(cfg.obs_dim, cfg.actor_width, 2 * cfg.act_dim,
                                        cfg.actor_blocks)
        critics, actors = [], []
        for seed in self.seeds:  # each member's initial parameters depend only on its seed
            g = torch.Generator().manual_seed(int(seed))
            critics.append(self.critic_layout.init(2, g))
            actors.append(self.actor_layout.init(1, g))
        self.critic = torch.stack(critics).to(self.device)
        self.target = self.critic.clone()
        self.actor = torch.cat(actors).to(self.device)
        self.log_alpha = torch.full((m,), math.log(cfg.init_temperature), device=self.device)
        self.critic_bf16 = self.target_bf16 = self.actor_bf16 = None
        if self.bf16:
            if self.amp:
                raise ValueError("amp (bf16 autocast) and bf16 (bf16 weight copies) are two ways "
                                 "to compute in bf16; choose one")
            self.critic_bf16, self.target_bf16, self.actor_bf16 = (
                x.to(torch.bfloat16) for x in (self.critic, self.target, self.actor))
        lr = (torch.full((m,), cfg.learning_rate) if self.learning_rates is None
              else torch.as_tensor(self.learning_rates))
        self.learning_rates = lr.to(self.device, self.critic.dtype)
        impl = self.optimizer
        if impl not in ("auto", *IMPLS):
            raise ValueError(f"unknown optimizer {impl!r}; choose auto or one of "
                             f"{', '.join(IMPLS)}")
        if impl == "auto":
            impl = default_optimizer(self.device, fused=self.fused, compiled=self.compiled,
                                     regions=self.regions)
        self.critic_opt = AdamW(self.critic, self.learning_rates, cfg.weight_decay, impl=impl,
                                params_bf16=self.critic_bf16)
        self.actor_opt = AdamW(self.actor, self.learning_rates, cfg.weight_decay, impl=impl,
                               params_bf16=self.actor_bf16)
        self.alpha_opt = AdamW(self.log_alpha, self.learning_rates, 0.0,
                               impl="compiled" if impl == "compiled" else "ops")
        self.sample_weight = None  # (M, B) where members' batch sizes differ
        if self.batch_sizes is not None:
            sizes = [int(b) for b in self.batch_sizes]
            if len(sizes) != m or min(sizes) < 1:
                raise ValueError(f"need {m} positive batch sizes, got {self.batch_sizes}")
            if len(set(sizes)) > 1:
                w = torch.zeros(m, max(sizes), dtype=self.critic.dtype)
                for i, b in enumerate(sizes):
                    w[i, :b] = 1.0 / b
                self.sample_weight = w.to(self.device)
        self._wire()

    def _wire(self) -> None:
        """The layer views of the buffers, the loss and the update function."""
        m = self.members
        critic, target, actor = self._net_buffers()
        self.critic_net = self._views(self.critic_layout, critic, self.critic, 2 * m)
        self.target_net = self._views(self.critic_layout, target, self.target, 2 * m)
        self.actor_net = self._views(self.actor_layout, actor, self.actor, m)
        for p in (*nets.leaves(self.critic_net), *nets.leaves(self.actor_net)):
            p.requires_grad_(True)  # leaf views: the optimisers write the buffers below them
        self.log_alpha_leaf = self.log_alpha.view(m).requires_grad_(True)
        self._loss = fused_quantile_huber_loss if self.fused else quantile_huber_loss
        self._norm = COMPILED_NORM if self.regions and not self.compiled else nets.norm
        self.update_fn = self.update
        if self.compiled:
            self.update_fn = compile_update(self.update)
        elif self.regions or self.critic_opt.impl == "compiled":
            self.update_fn = _first_call_locked(self.update)

    @staticmethod
    def _views(layout: nets.Layout, buffer: torch.Tensor, params: torch.Tensor,
               groups: int) -> nets.BroNet:
        """The network on `buffer` (its parameters or their bf16 copy), its head always on the
        fp32 parameters `params` (the copy's head rows are written, never read)."""
        net = layout.views(buffer.view(groups, -1))
        if buffer is params:
            return net
        return net._replace(head=layout.views(params.view(groups, -1)).head)

    def _net_buffers(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The buffers the networks read: critic, target and actor, or their bf16 copies."""
        if self.bf16:
            return self.critic_bf16, self.target_bf16, self.actor_bf16
        return self.critic, self.target, self.actor

    @torch.no_grad()
    def sync_copies(self) -> None:
        """Round the parameters to their bf16 copies (after they were written other than by an
        optimiser step: a restored checkpoint). Nothing without `bf16`."""
        if self.bf16:
            for copy_, master in ((self.critic_bf16, self.critic),
                                  (self.target_bf16, self.target),
                                  (self.actor_bf16, self.actor)):
                copy_.copy_(master)

    def span(self, lo: int, hi: int) -> Population:
        """Members lo..hi-1 as a population of their own whose every tensor (parameters,
        target, moments, step counts, learning rates) is a view of this one's: its update
        changes those members here, and costs what hi - lo members cost. A round of updates
        that only some members take (those with a higher utd: trainer) runs on the span that
        holds them instead of on all members with the rest masked out."""
        if not 0 <= lo < hi <= self.members:
            raise ValueError(f"need 0 <= lo < hi <= {self.members}, got {lo}, {hi}")
        part = copy.copy(self)
        part.members, part.seeds = hi - lo, self.seeds[lo:hi]
        for name in ("critic", "target", "actor", "log_alpha", "learning_rates", "critic_bf16",
                     "target_bf16", "actor_bf16"):
            value = getattr(self, name)
            setattr(part, name, None if value is None else value[lo:hi])
        for name in ("critic_opt", "actor_opt", "alpha_opt"):
            setattr(part, name, getattr(self, name).span(lo, hi))
        if self.sample_weight is not None:
            part.sample_weight = self.sample_weight[lo:hi]
        if self.batch_sizes is not None:
            part.batch_sizes = self.batch_sizes[lo:hi]
        part._wire()
        return part

    def frozen_actor(self) -> Population:
        """This population with a copy of its actor as it is now (BackgroundEval): `act` on it
        gives what `act` on this one gives now, whatever this one's updates do later."""
        part = copy.copy(self)
        part.actor = self.actor.detach().clone()
        if self.bf16:
            part.actor_bf16 = self.actor_bf16.detach().clone()
        part.actor_net = part._views(self.actor_layout, part._net_buffers()[2], part.actor,
                                     part.members)
        return part

    # --- networks -----------------------------------------------------------------------
    def q_values(self, net: nets.BroNet, obs: torch.Tensor, action: torch.Tensor
                 ) -> torch.Tensor:
        """(M, B, o), (M, B, a) -> quantiles (M, 2, B, N) of both Q-nets."""
        m, b = obs.shape[:2]
        if self.bf16:  # before the copy for both Q-nets below: half its bytes
            obs, action = obs.to(torch.bfloat16), action.to(torch.bfloat16)
        x = torch.cat([obs, action], -1).unsqueeze(1).expand(m, 2, b, -1).reshape(2 * m, b, -1)
        return self._forward(net, x).view(m, 2, b, -1)

    def _forward(self, net: nets.BroNet, x: torch.Tensor) -> torch.Tensor:
        if self.bf16:
            return nets.bronet(net, x.to(torch.bfloat16), self._norm).float()
        if not self.amp:
            return nets.bronet(net, x, self._norm)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return nets.bronet(net, x, self._norm).float()

    def policy(self, obs: torch.Tensor, noise: torch.Tensor | None):
        """tanh-Gaussian action and its log-probability; noise None -> the mean action."""
        out = self._forward(self.actor_net, obs)
        mean, log_std = out.chunk(2, -1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        if noise is None:
            return torch.tanh(mean), None
        pre = mean + log_std.exp() * noise
        action = torch.tanh(pre)
        logp = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - torch.log1p(-action.pow(2) + 1e-6).sum(-1)
        return action, logp

    # --- the update ---------------------------------------------------------------------
    def critic_loss(self, batch: Batch, noise: torch.Tensor) -> torch.Tensor:
        """Per-member TD loss (M,), both Q-nets summed."""
        cfg = self.cfg
        alpha = self.log_alpha.exp()
        with torch.no_grad():
            next_action, next_logp = self.policy(batch.next_obs, noise)
            z_next = self.q_values(self.target_net, batch.next_obs, next_action).min(1).values
            z_next = z_next - (alpha[:, None] * next_logp).unsqueeze(-1)
            target = (batch.reward.unsqueeze(-1)
                      + cfg.gamma * (1.0 - batch.done).unsqueeze(-1) * z_next)
        z = self.q_values(self.critic_net, batch.obs, batch.action)
        w = None if self.sample_weight is None else self.sample_weight.unsqueeze(1)
        return self._loss(z, target.unsqueeze(1), cfg.kappa, w).sum(1)

    def batch_mean(self, x: torch.Tensor) -> torch.Tensor:
        """(M, B) -> (M,): the mean over each member's own batch."""
        return x.mean(-1) if self.sample_weight is None else (x * self.sample_weight).sum(-1)

    def update(self, batch: Batch, noise: Noise, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """One gradient step for members where mask (M,) is true. Returns per-member metrics."""
        cfg = self.cfg
        # 1. critic
        loss_c = self.critic_loss(batch, noise.next_action)
        grads = torch.autograd.grad(loss_c.sum(), nets.leaves(self.critic_net))
        # with 4. target critic: Polyak averaging towards the new critic, in the same pass (the
        # actor's and temperature's steps below leave the critic as it is now)
        self.critic_opt.step(nets.flat_grad(grads), mask, self.target, cfg.tau, self.target_bf16)
        # 2. actor (the critic is held fixed: gradients go to the actor only)
        action, logp = self.policy(batch.obs, noise.action)
        q = self.q_values(self.critic_net, batch.obs, action).mean(-1).min(1).values  # (M, B)
        alpha = self.log_alpha.exp()
        loss_a = self.batch_mean(alpha[:, None] * logp - q)
        grads = torch.autograd.grad(loss_a.sum(), nets.leaves(self.actor_net))
        self.actor_opt.step(nets.flat_grad(grads), mask)
        # 3. temperature
        entropy_gap = self.batch_mean(logp.detach() + cfg.target_entropy)
        loss_t = -(self.log_alpha_leaf * entropy_gap)
        (grad_t,) = torch.autograd.grad(loss_t.sum(), [self.log_alpha_leaf])
        self.alpha_opt.step(grad_t, mask)
        return {"critic_loss": loss_c.detach(), "actor_loss": loss_a.detach(),
                "temperature": alpha, "entropy": -self.batch_mean(logp.detach())}

    @torch.no_grad()
    def act(self, obs: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.policy(obs.unsqueeze(1), None if noise is None else noise.unsqueeze(1))[0][:, 0]

    @torch.no_grad()
    def nonfinite_members(self) -> torch.Tensor:
        """(M,) bool on the device: members with a non-finite parameter or temperature."""
        m = self.members
        finite = (torch.isfinite(self.critic.view(m, -1)).all(1)
                  & torch.isfinite(self.actor.view(m, -1)).all(1)
                  & torch.isfinite(self.log_alpha))
        return ~finite

    @torch.no_grad()
    def nan_to_num_(self) -> None:
        """Zero every non-finite parameter and moment (of diverged members, which are then
        frozen by their mask) so that they cannot turn later arithmetic into NaN."""
        for buf in (self.critic, self.target, self.actor, self.log_alpha, self.critic_bf16,
                    self.target_bf16, self.actor_bf16):
            if buf is not None:
                buf.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        for opt in (self.critic_opt, self.actor_opt, self.alpha_opt):
            opt.nan_to_num_()


COMPILED_NORM = LazyCompiled(nets.norm, "the LayerNorm regions")


def default_optimizer(device, *, fused: bool = True, compiled: bool = False,
                      regions: bool = False) -> str:
    """The AdamW implementation (optim.IMPLS) a Population uses when told "auto".

    - "ops" on the reference path and in a compiled update, which fuses the optimiser itself;
    - "compiled" with compiled `regions`, and on a GPU: one generated kernel for all members.
      In a CUDA graph on one H100 (benchmarks/gpu_adamw.sh, torch 2.11) the update ran 1.85-1.98
      times as many member-updates/s as with "kernel" at the `minutes` cells (24 and 48 members
      at width 128) and 1.28 times at 16 members of width 512; "ops" gave 1.65-1.77 and 1.05.
      Per-member kernels (2 launches per member and update) had been half the GPU time;
    - "kernel" on a CPU, where compiling costs more than it saves."""
    if compiled or not fused:
        return "ops"
    if regions or torch.device(device).type == "cuda":
        return "compiled"
    return "kernel"


def _first_call_locked(update):
    """`update` whose first call holds CUDA_LOCK: it compiles the backward passes of compiled
    regions (the forward passes compile under the lock in LazyCompiled), so that threads
    sharing a process never compile during another's graph capture."""
    done = False

    def call(*args):
        nonlocal done
        if done:
            return update(*args)
        with CUDA_LOCK:
            out = update(*args)
        done = True
        return out

    return call


def compile_update(update):
    """torch.compile the whole update. Where this torch can trace `torch.autograd.grad`
    (dynamo's `trace_autograd_ops`), the update is one graph; if that fails to compile it is
    compiled with a graph break at each gradient; if that fails too, the eager update is used.
    Each fallback is warned about. A one-graph compile fails before anything runs; with graph
    breaks a failure midway can leave that first update partly applied (then redone eagerly)."""
    tries = []
    if hasattr(torch._dynamo.config, "trace_autograd_ops"):
        tries.append(("one graph", {"trace_autograd_ops": True}))
    tries.append(("graph breaks at each gradient", {}))
    current = {"fn": None}

    def call(*args):
        if current["fn"] is not None:
            return current["fn"](*args)
        # Dynamo compiles in one thread at a time (populations trained as threads, runner
        # backend "threads", compile one after another; processes compile in parallel).
        with CUDA_LOCK:
            return first_call(*args)

    def first_call(*args):
        allow_recompiles()  # one compile per population shape in this process
        for label, options in tries:
            compiled = torch.compile(update, dynamic=False)

            def run(*a, compiled=compiled, options=options):
                with torch._dynamo.config.patch(**options):
                    return compiled(*a)

            try:
                out = run(*args)
            except Exception as exc:  # noqa: BLE001 - keep training: eager is never wrong
                warnings.warn(f"torch.compile of the update ({label}) failed: "
                              f"{type(exc).__name__}: {str(exc)[:200]}", RuntimeWarning,
                              stacklevel=2)
                torch._dynamo.reset()
                continue
            current["fn"] = run
            return out
        current["fn"] = update
        return update(*args)

    return call
