"""The quantile-Huber loss with its gradient computed in the same pass (the update's hot spot).

`quantile_huber_loss` in agent.py is the readable definition; autograd through it materialises
the pairwise (..., B, N, N') tensor about a dozen times in the forward pass and again in the
backward pass, and keeps several of them alive in between. Here the forward pass reduces the
pairwise terms to the loss and to d loss / d pred at once, keeps only the (..., B, N) gradient,
and the backward pass is one multiplication. The target is a constant (it is computed without
gradient in the TD update), so it gets no gradient.

Per pair u = target_j - pred_i, with a = |u| and c = min(a, kappa):
    huber(u) = c * (a - c / 2)            (0.5 u^2 inside [-kappa, kappa], linear outside)
    d huber / du = sign(u) * c = clamp(u, -kappa, kappa)
    weight = tau_i if u >= 0 else 1 - tau_i   (= |tau_i - 1{u < 0}|)
On a GPU `loss_and_grad` is torch.compile'd on first use (one generated kernel: the pairwise
terms never reach memory; seconds of compile per shape, cached on disk); on the CPU, or if that
compile fails, it runs eagerly. Inside a compiled update the same fusion happens anyway.
"""

from __future__ import annotations

import threading
import warnings

import torch

COMPILE_ON_GPU = True  # set False to keep the loss eager on GPUs too
# Held while the compiled loss is called outside a CUDA graph (its first call per shape
# compiles, and compiling synchronises the device) and while a graph is captured
# (graphs.GraphedUpdate): populations trained as threads of one process (runner backend
# "threads") then never compile during another's capture, and dynamo never compiles in two
# threads at once.
CUDA_LOCK = threading.RLock()


def loss_and_grad(pred: torch.Tensor, target: torch.Tensor, kappa: float = 1.0,
                  sample_weight: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """pred (..., B, N), target (..., B, N') -> loss (...,) and d loss / d pred (..., B, N).

    The loss is the same as agent.quantile_huber_loss: sum over i, mean over j and B (or, with
    `sample_weight` (..., B), a weighted sum over B)."""
    n, n_target, batch = pred.shape[-1], target.shape[-1], pred.shape[-2]
    tau = (torch.arange(n, device=pred.device, dtype=pred.dtype) + 0.5) / n
    u = target.unsqueeze(-2) - pred.unsqueeze(-1)  # (..., B, N, N'): the one pairwise input
    a = u.abs()
    c = a.clamp(max=kappa)
    weight = torch.where(u < 0, (1 - tau).unsqueeze(-1), tau.unsqueeze(-1))
    if sample_weight is None:
        loss = (weight * (c * (a - 0.5 * c))).sum(-1).sum(-1).sum(-1) / (kappa * n_target * batch)
        grad = (weight * u.clamp(-kappa, kappa)).sum(-1) * (-1.0 / (kappa * n_target * batch))
        return loss, grad
    per_sample = (weight * (c * (a - 0.5 * c))).sum(-1).sum(-1)  # (..., B)
    loss = (per_sample * sample_weight).sum(-1) / (kappa * n_target)
    grad = ((weight * u.clamp(-kappa, kappa)).sum(-1) * (-1.0 / (kappa * n_target))
            * sample_weight.unsqueeze(-1))
    return loss, grad


class LazyCompiled:
    """`fn` through torch.compile, compiled on its first call per shape; if compiling fails,
    `fn` eagerly from then on (warned once). Calls hold CUDA_LOCK (a first call per shape
    compiles, which synchronises the device), so call it first outside CUDA-graph capture
    (GraphedUpdate warms up) and never compile in two threads at once.

    Shapes are static but for the first dim of every tensor argument (the members of a
    population, or its member x Q-net groups; `dynamic_members`), which is compiled as a
    symbol where it is at least 2: a population's spans of members (48, 32 and 16 in the
    `minutes` pole), its critic (2M groups) and its actor (M) share one compile per shape of
    the other dims instead of one each. For the LayerNorm regions and AdamW steps of a
    population of 12 with spans of 12, 8 and 4 on this CPU: 11 graphs and 23 s of compiling
    against 37 and 56 s (benchmarks/compile_count.py). Where that compile fails, the static
    one is tried before eager."""

    def __init__(self, fn, what: str, dynamic_members: bool = True):
        self.fn, self.what = fn, what
        self._compiled = None
        self._mode = None  # "members" or "static": how _compiled was compiled
        self.dynamic_members = dynamic_members and hasattr(torch._dynamo, "maybe_mark_dynamic")

    @property
    def failed(self) -> bool:
        """True once compiling failed (calls run `fn` eagerly from then on)."""
        return self._compiled is self.fn

    def _compile(self, mode: str) -> None:
        self._mode = mode
        self._compiled = torch.compile(self.fn, dynamic=None if mode == "members" else False)

    def __call__(self, *args):
        allow_recompiles()  # in this thread (populations may train as threads)
        with CUDA_LOCK:
            if self._compiled is None:
                self._compile("members" if self.dynamic_members else "static")
            while self._compiled is not self.fn:
                try:
                    if self._mode != "members":
                        return self._compiled(*args)
                    _mark_members(args)  # (allow_recompiles: no other dim turns symbolic)
                    return self._compiled(*args)
                except Exception as exc:  # eager is slower, never wrong
                    if self._mode == "members":
                        self._compile("static")
                        continue
                    warnings.warn(f"compiling {self.what} failed ({type(exc).__name__}: {exc}); "
                                  "using it eagerly", RuntimeWarning, stacklevel=2)
                    self._compiled = self.fn
        return self.fn(*args)


def _mark_members(args) -> None:
    """Dim 0 of every tensor in `args` (nested) symbolic where it is at least 2 (dynamo
    specialises sizes 0 and 1)."""
    for x in torch.utils._pytree.tree_leaves(args):
        if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] >= 2:
            torch._dynamo.maybe_mark_dynamic(x, 0)


_LIMITS_RAISED = threading.local()


def allow_recompiles(limit: int = 256, total: int = 2048) -> None:
    """One compile per shape: a worker process (or threads sharing one) may train more shapes
    than dynamo's default limit of 8 per function, past which it would run eagerly with a
    warning (a compiled region, nets.norm, sees about ten shapes per population: critic and
    actor, with and without gradients, acting; six populations in one process reach 60).
    And no automatic dynamic shapes: a dim that changes between calls gets a compile of its
    own, not a symbol (only LazyCompiled's marked members' dim is one; a symbolic width or
    batch size would make slower kernels: a LayerNorm over a symbolic width). Dynamo's
    settings are per thread: called in each thread that calls compiled code."""
    if getattr(_LIMITS_RAISED, "done", False):
        return
    _LIMITS_RAISED.done = True
    config = torch._dynamo.config
    for names, value in ((("recompile_limit", "cache_size_limit"), limit),
                         (("accumulated_recompile_limit", "accumulated_cache_size_limit"), total)):
        for name in names:  # the names changed across versions
            if hasattr(config, name) and getattr(config, name) < value:
                setattr(config, name, value)
    if hasattr(config, "automatic_dynamic_shapes"):
        config.automatic_dynamic_shapes = False


COMPILED_LOSS = LazyCompiled(loss_and_grad, "the fused quantile-Huber loss")


class _QuantileHuber(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pred: torch.Tensor, target: torch.Tensor, kappa: float,
                sample_weight: torch.Tensor | None) -> torch.Tensor:
        use_compiled = pred.is_cuda and COMPILE_ON_GPU and not torch.compiler.is_compiling()
        loss, grad = (COMPILED_LOSS if use_compiled else loss_and_grad)(
            pred, target.detach(), kappa, sample_weight)
        ctx.save_for_backward(grad)
        ctx.pred_shape = pred.shape
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        (grad,) = ctx.saved_tensors
        grad_pred = grad_loss.unsqueeze(-1).unsqueeze(-1) * grad
        return grad_pred.sum_to_size(ctx.pred_shape), None, None, None


def fused_quantile_huber_loss(pred: torch.Tensor, target: torch.Tensor, kappa: float = 1.0,
                              sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Same value and gradient (w.r.t. pred) as agent.quantile_huber_loss, one pairwise pass."""
    return _QuantileHuber.apply(pred, target, kappa, sample_weight)
