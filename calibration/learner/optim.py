"""AdamW over a flat, member-major parameter buffer, with a learning rate and a skip mask per
member: a handful of whole-buffer operations per step, whatever the number of layers.

Same arithmetic as torch.optim.AdamW (decoupled weight decay, bias correction; tested against
it), but a member whose mask is false keeps its parameters and moments bit for bit, and so does
its step count. Parameters are any tensor whose first dim is the member, (M, ...); they are
updated in place through a 2-D view (M, numel per member), where the per-member values
broadcast over rows.

Three implementations of the same step (`impl`):
  ops       about ten whole-buffer operations (any device; inside a torch.compile'd update
            this is the one to use: it fuses into the update's kernels by itself);
  kernel    where this torch has `_fused_adamw_` (the kernel behind
            torch.optim.AdamW(fused=True)), one single-pass kernel per member, a masked
            member's call skipped on the device through its `found_inf` flag (no host sync):
            M launches per step;
  compiled  the `ops` step through torch.compile (fused.LazyCompiled): one generated kernel
            for all members, whatever M; if compiling fails, that step runs as `ops` and
            later ones as `kernel` on a CPU (`ops` on a GPU, where it is the faster of the two,
            or where there is no such kernel). The default on a GPU (agent.default_optimizer).

With `params_bf16` (a bf16 copy of the parameters, laid out as them: Population.bf16), every
implementation writes the new parameters rounded to it after the step (in the same pass where
`impl` is "compiled"), and takes gradients of any float dtype (those of the bf16 copy).
"""

from __future__ import annotations

import copy
import warnings

import torch

from calibration.learner.fused import LazyCompiled

IMPLS = ("ops", "kernel", "compiled")


class AdamW:
    def __init__(self, params: torch.Tensor, lr: torch.Tensor, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 impl: str = "ops", params_bf16: torch.Tensor | None = None):
        if impl not in IMPLS:
            raise ValueError(f"unknown AdamW implementation {impl!r}; choose one of "
                             f"{', '.join(IMPLS)}")
        # The CUDA kernel takes its learning rate as float32 only (a float64 one was refused on
        # an H100 with torch 2.11), which rounds a float64 population's step (4e-8 apart from
        # the reference after 50 updates, H100): there, and without the kernel, `ops`.
        if impl == "kernel" and not kernel_takes(params.dtype, params.device.type):
            impl = "ops"
        self.impl = impl
        self.params = params.view(params.shape[0], -1)  # (M, K), shares storage with params
        # (M, K) low-precision copy of the parameters (the networks read it), or None
        self.params_bf16 = None if params_bf16 is None else params_bf16.view(self.params.shape)
        self.lr = lr  # (M,)
        self.wd = weight_decay
        self.b1, self.b2 = betas
        self.eps = eps
        self.m = torch.zeros_like(self.params)
        self.v = torch.zeros_like(self.params)
        self.t = torch.zeros(lr.shape, dtype=torch.float32, device=lr.device)  # steps per member
        self.lr_kernel = lr.to(torch.float32) if lr.device.type == "cuda" else lr

    def span(self, lo: int, hi: int) -> AdamW:
        """The optimiser of members lo..hi-1: its parameters, moments, step counts and learning
        rates are views of this one's (Population.span)."""
        part = copy.copy(self)
        for name in ("params", "m", "v", "t", "lr", "lr_kernel", "params_bf16"):
            value = getattr(self, name)
            setattr(part, name, None if value is None else value[lo:hi])
        return part

    @torch.no_grad()
    def step(self, grad: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None,
             tau: float = 0.0, target_bf16: torch.Tensor | None = None) -> None:
        """grad: (M, ...) with the layout of the parameters; mask: (M,) bool. With `target`
        (M, ...) laid out as the parameters: then Polyak averaging, target <- target + tau *
        (params - target) for members in mask, in the same pass where `impl` is "compiled"
        (one kernel reads and writes the target beside the step's buffers), and the target
        rounded to `target_bf16` (its bf16 copy) if given."""
        grad = grad.view(self.params.shape)
        if target is not None:
            target = target.view(self.params.shape)
        if target_bf16 is not None:
            target_bf16 = target_bf16.view(self.params.shape)
        if self.impl == "compiled" and _COMPILED_STEP.failed:  # (warned): the next best
            self.impl = after_failed_compile(self.params.dtype, self.params.device.type)
        if self.impl in ("compiled", "ops"):
            step = _COMPILED_STEP if self.impl == "compiled" else _masked_step
            step(self.params, grad, self.m, self.v, self.t, self.lr, mask, self.b1, self.b2,
                 self.wd, self.eps, target, tau, self.params_bf16, target_bf16)
            return
        grad = grad.to(self.params.dtype)
        self.t += mask.to(self.lr.dtype)
        skip = (~mask).to(torch.float32)  # found_inf: 1 skips the member
        for i in range(self.params.shape[0]):
            try:
                torch.ops.aten._fused_adamw_.tensor_lr(
                    [self.params[i]], [grad[i]], [self.m[i]], [self.v[i]], [], [self.t[i]],
                    lr=self.lr_kernel[i], beta1=self.b1, beta2=self.b2, weight_decay=self.wd,
                    eps=self.eps, amsgrad=False, maximize=False, found_inf=skip[i])
            except RuntimeError as exc:  # a torch whose kernel refuses these inputs
                if i > 0:
                    raise
                warnings.warn(f"the fused AdamW kernel failed ({exc}); using whole-buffer "
                              "operations", RuntimeWarning, stacklevel=2)
                self.impl = "ops"
                self.t -= mask.to(self.lr.dtype)  # counted above; counted again below
                self.step(grad, mask, target, tau, target_bf16)
                return
        if target is not None:
            polyak_(target, self.params, mask, tau)
        _write_copies(self.params, self.params_bf16, target, target_bf16)

    def nan_to_num_(self) -> None:
        """Zero non-finite moments (of diverged members, which stay masked from then on)."""
        self.m.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        self.v.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


def _masked_step(params: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor,
                 t: torch.Tensor, lr: torch.Tensor, mask: torch.Tensor, b1: float, b2: float,
                 wd: float, eps: float, target: torch.Tensor | None = None,
                 tau: float = 0.0, params_bf16: torch.Tensor | None = None,
                 target_bf16: torch.Tensor | None = None) -> None:
    """The `ops` step in place: params, grad, m, v (M, K); t, lr, mask (M,); then Polyak
    averaging of `target` (M, K) towards the new parameters, if given; then the parameters
    (and target) rounded to their bf16 copies `params_bf16` (`target_bf16`), if given."""
    grad = grad.to(params.dtype)  # (a bf16 copy's gradient; nothing where dtypes agree)
    maskf = mask.to(lr.dtype)
    t += maskf
    tt = t.to(lr.dtype).clamp(min=1.0)
    # Members that skip get a zero step size and keep their moments (blend weight 0).
    step = (lr * torch.sqrt(1 - b2**tt) / (1 - b1**tt) * maskf).unsqueeze(1)
    decay = (1.0 - lr * wd * maskf).unsqueeze(1)
    eps_t = (eps * torch.sqrt(1 - b2**tt)).unsqueeze(1)
    keep = maskf.unsqueeze(1)
    m.lerp_(grad, keep * (1 - b1))
    v.lerp_(grad * grad, keep * (1 - b2))
    params.mul_(decay)
    params.sub_(step * m / (v.sqrt() + eps_t))
    if target is not None:
        polyak_(target, params, mask, tau)
    _write_copies(params, params_bf16, target, target_bf16)


def _write_copies(params: torch.Tensor, params_bf16: torch.Tensor | None,
                  target: torch.Tensor | None, target_bf16: torch.Tensor | None) -> None:
    """Round the parameters (and target) to their low-precision copies, where there are any.
    Every member's row is written: a masked member's parameters did not change, so neither does
    its copy."""
    if params_bf16 is not None:
        params_bf16.copy_(params)
    if target_bf16 is not None:
        target_bf16.copy_(target)


def polyak_(target: torch.Tensor, params: torch.Tensor, mask: torch.Tensor, tau: float) -> None:
    """target <- target + tau * (params - target) in place, for members (rows) in mask."""
    target.lerp_(params, (tau * mask.to(target.dtype)).view(-1, *[1] * (target.dim() - 1)))


_COMPILED_STEP = LazyCompiled(_masked_step, "the AdamW step")


def kernel_takes(dtype: torch.dtype, device_type: str) -> bool:
    """Whether the `kernel` step is exact for parameters of this dtype on this device type."""
    return has_fused_kernel() and (device_type != "cuda" or dtype == torch.float32)


def after_failed_compile(dtype: torch.dtype, device_type: str) -> str:
    """The implementation a `compiled` step falls back to when it cannot compile: `kernel` on a
    CPU where it is exact; `ops` on a GPU (faster there than a kernel per member, measured in
    a CUDA graph: benchmarks/gpu_adamw.sh) and wherever the kernel is missing or inexact."""
    return "kernel" if device_type != "cuda" and kernel_takes(dtype, device_type) else "ops"


def has_fused_kernel() -> bool:
    try:
        return hasattr(torch.ops.aten._fused_adamw_, "tensor_lr")
    except (AttributeError, RuntimeError):
        return False
