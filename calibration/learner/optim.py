"""AdamW over stacked parameters with a learning rate and a skip mask per member.

Same arithmetic as torch.optim.AdamW (decoupled weight decay, bias correction), but a member
whose mask is false keeps its parameters and moments untouched, and so does its step count.
"""

from __future__ import annotations

import torch


class AdamW:
    def __init__(self, params: list[torch.Tensor], lr: torch.Tensor, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 groups_per_member: int = 1):
        self.params = params
        self.lr = lr  # (M,)
        self.wd = weight_decay
        self.b1, self.b2 = betas
        self.eps = eps
        self.k = groups_per_member
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = torch.zeros_like(lr)  # steps taken per member

    def _per_group(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if self.k > 1:
            x = x.repeat_interleave(self.k)
        return x.view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self, grads, mask: torch.Tensor) -> None:
        maskf = mask.to(self.lr.dtype)
        self.t += maskf
        t = self.t.clamp(min=1.0)
        # Members that skip get a zero step size and keep their moments (blend with mask).
        step = self.lr * torch.sqrt(1 - self.b2**t) / (1 - self.b1**t) * maskf
        decay = 1.0 - self.lr * self.wd * maskf
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            keep = self._per_group(maskf, p)
            m.lerp_(g, keep * (1 - self.b1))
            v.lerp_(g * g, keep * (1 - self.b2))
            p.mul_(self._per_group(decay, p))
            p.sub_(self._per_group(step, p) * m / (v.sqrt() + self.eps * torch.sqrt(
                1 - self.b2 ** self._per_group(t, p))))
