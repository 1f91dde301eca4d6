"""Memory traffic of one population update as a GPU runs it by default (eager update in a CUDA
graph, the quantile-Huber loss and the AdamW steps each one compiled kernel), counted on the
CPU: every other operation reads its inputs and writes its outputs once (bytes of each tensor
argument and result); the loss kernel reads its predictions and targets and writes the loss and
its gradient; an AdamW step reads parameters, gradients and both moments and writes
parameters and moments (7 passes over its buffer; the critic's 9, with the target's Polyak
averaging in the same pass; with `--bf16`, a bf16 gradient read and the bf16 copies
written). Views and allocations move nothing.

At a memory bandwidth BW that traffic takes at least bytes / BW: a floor on the update's time,
and so a ceiling on member-updates/s, for this path whatever the launch overhead. Where the
floor is far below the measured time the update is latency- or compute-bound; where it is near
it, only fusing more (compiled regions, the compiled update) or moving fewer bytes helps.

  python benchmarks/update_bytes.py                    # the minutes cells and M=16 width 512
  python benchmarks/update_bytes.py --cells 16x512:256 --regions --bandwidth 4.8e12  # H200
  python benchmarks/update_bytes.py --cells 16x512:256 --amp     # bf16 autocast, casts apart
  python benchmarks/update_bytes.py --cells 16x512:256 --regions --bf16  # bf16 weight copies
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.update_ops import NO_KERNEL  # noqa: E402
from calibration.learner import nets  # noqa: E402
from calibration.learner.agent import AgentConfig, Batch, Noise, Population  # noqa: E402

#: Frames whose operations run as one compiled kernel on a GPU, counted by their own traffic.
FUSED = {"loss_and_grad": "loss (one kernel)", "_masked_step": "AdamW steps (one kernel each)"}
#: Frames whose operations are the LayerNorm regions' forward (`--compile regions` fuses them).
REGIONS = {"norm": "LayerNorm regions, forward"}
#: Their backward passes, one kernel each with `--regions` (compiled regions fuse both ways).
REGIONS_BACKWARD = "LayerNorm regions, backward"


def _nbytes(x) -> int:
    return x.numel() * x.element_size() if isinstance(x, torch.Tensor) else 0


def _where() -> str | None:
    """The innermost FUSED or REGIONS frame this operation runs in, if any."""
    f = sys._getframe(2)
    while f is not None:
        name = f.f_code.co_name
        if name in FUSED or name in REGIONS:
            return name
        f = f.f_back
    return None


def _casts_bf16(args, out) -> bool:
    """A dtype conversion to or from bf16 (what autocast adds around each matrix product)."""
    dtypes = {x.dtype for x in (*args, out) if isinstance(x, torch.Tensor)}
    return torch.bfloat16 in dtypes and len(dtypes) > 1


class Traffic(TorchDispatchMode):
    """Bytes read and written per group of operations."""

    def __init__(self, parameters: tuple[torch.Tensor, ...] = ()):
        super().__init__()
        # (start, end) addresses of the parameter buffers: a cast of a view into one of them
        # is a parameter's (autocast recasts every weight at each use)
        self.ranges = [(p.data_ptr(), p.data_ptr() + _nbytes(p)) for p in parameters]
        self.bytes = collections.Counter()
        self.ops = collections.Counter()
        self.counting = True

    def _cast_group(self, x) -> str:
        inside = isinstance(x, torch.Tensor) and any(a <= x.data_ptr() < b
                                                     for a, b in self.ranges)
        return "bf16 casts of parameters" if inside else "bf16 casts of activations"

    @contextlib.contextmanager
    def off(self):
        """Operations in this block are not counted (a fused region counts its own I/O)."""
        self.counting = False
        try:
            yield
        finally:
            self.counting = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in NO_KERNEL or not self.counting:
            return out
        where = _where()
        if where in FUSED:
            return out  # counted whole, by the fused kernel's inputs and outputs (below)
        group = REGIONS.get(where) or (
            "matrix products" if "mm" in name else
            self._cast_group(args[0]) if name == "_to_copy" and _casts_bf16(args, out) else
            "backward and other elementwise")
        leaves = torch.utils._pytree.tree_leaves((args, kwargs, out))
        self.bytes[group] += sum(_nbytes(x) for x in leaves)
        self.ops[group] += 1
        return out


def traffic(m: int, width: int, batch_sizes: list[int], quantiles: int, obs: int, act: int,
            regions: bool = False, amp: bool = False, bf16: bool = False
            ) -> tuple[collections.Counter, collections.Counter]:
    """Bytes and operations per group for one update; `regions`: the LayerNorm regions as one
    kernel each way, as `--compile regions` runs them: forward I/O input, skip, output, gain
    and bias; backward I/O output gradient, input, gain and bias, and their gradients (a
    compiler may split a backward in two, the reductions over the batch apart, reading some
    of these twice: so a floor for that path); `amp`: the networks under bf16 autocast
    (Population.amp), its casts counted apart; `bf16`: the networks on bf16 copies of the
    weights written by the AdamW steps (Population.bf16)."""
    import benchmarks.update_ops  # noqa: F401 - NO_KERNEL
    from calibration.learner import fused, optim

    cfg = AgentConfig(obs_dim=obs, act_dim=act, width=width, quantiles=quantiles)
    sizes = [batch_sizes[i % len(batch_sizes)] for i in range(m)]
    pop = Population(cfg, m, list(range(m)), torch.device("cpu"), optimizer="ops",
                     batch_sizes=sizes if len(batch_sizes) > 1 else None, amp=amp, bf16=bf16)
    b = max(batch_sizes)
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(m, b, obs, generator=g), torch.rand(m, b, act, generator=g) * 2 - 1,
                  torch.randn(m, b, generator=g), torch.randn(m, b, obs, generator=g),
                  torch.zeros(m, b))
    noise = Noise(torch.randn(m, b, act, generator=g), torch.randn(m, b, act, generator=g))
    mask = torch.ones(m, dtype=torch.bool)
    pop.update(batch, noise, mask)
    counter = Traffic((pop.critic, pop.target, pop.actor))
    kernels = collections.Counter()
    loss_fn, step_fn = fused.loss_and_grad, optim._masked_step

    def loss_io(pred, target, kappa=1.0, sample_weight=None):
        out = loss_fn(pred, target, kappa, sample_weight)
        # reads pred, target (and weights); writes the loss and d loss / d pred
        moved = sum(_nbytes(x) for x in (pred, target, sample_weight, *out))
        counter.bytes[FUSED["loss_and_grad"]] += moved
        kernels[FUSED["loss_and_grad"]] += 1
        return out

    def step_io(params, grad, m_, v, t, lr, mask, b1, b2, wd, eps, target=None, tau=0.0,
                params_bf16=None, target_bf16=None):
        step_fn(params, grad, m_, v, t, lr, mask, b1, b2, wd, eps, target, tau, params_bf16,
                target_bf16)
        # reads and writes parameters and moments, reads the gradient; the critic's step reads
        # and writes the target too (Polyak averaging, same pass); writes the bf16 copies
        moved = (2 * (_nbytes(params) + _nbytes(m_) + _nbytes(v) + _nbytes(target))
                 + _nbytes(grad) + _nbytes(params_bf16) + _nbytes(target_bf16))
        counter.bytes[FUSED["_masked_step"]] += moved
        kernels[FUSED["_masked_step"]] += 1

    fused.loss_and_grad, optim._masked_step = loss_io, step_io
    norm = pop._norm

    class Region(torch.autograd.Function):
        """A LayerNorm region as one kernel each way, counted by its I/O: forward reads x, the
        skip, gain and bias and writes y; backward reads dy, x, gain and bias and writes dx,
        d gain and d bias (the skip's gradient is dy itself: nothing moves)."""

        @staticmethod
        def forward(ctx, x, gain, bias, residual, relu):
            ctx.relu, ctx.skip = relu, residual is not None
            ctx.save_for_backward(x, gain, bias)
            with counter.off():
                y = norm(nets.Norm(gain, bias), x, relu, residual)
            counter.bytes[REGIONS["norm"]] += sum(_nbytes(t) for t in (x, residual, y, gain,
                                                                       bias))
            kernels[REGIONS["norm"]] += 1
            return y

        @staticmethod
        def backward(ctx, dy):
            saved = [t.detach().requires_grad_(True) for t in ctx.saved_tensors]
            with counter.off(), torch.enable_grad():
                y = norm(nets.Norm(*saved[1:]), saved[0], ctx.relu)
                dx, dgain, dbias = torch.autograd.grad(y, saved, dy)
            counter.bytes[REGIONS_BACKWARD] += sum(_nbytes(t) for t in (dy, *saved, dx, dgain,
                                                                         dbias))
            kernels[REGIONS_BACKWARD] += 1
            return dx, dgain, dbias, dy if ctx.skip else None, None

    def norm_io(layer, x, relu=False, residual=None):
        if not torch.is_grad_enabled():  # forward only: no backward to count
            with counter.off():
                y = norm(layer, x, relu, residual)
            counter.bytes[REGIONS["norm"]] += sum(_nbytes(t) for t in (x, residual, y, *layer))
            kernels[REGIONS["norm"]] += 1
            return y
        return Region.apply(x, layer.gain, layer.bias, residual, relu)

    if regions:
        pop._norm = norm_io
    try:
        with counter:
            pop.update(batch, noise, mask)
    finally:
        fused.loss_and_grad, optim._masked_step = loss_fn, step_fn
    counter.ops.update(kernels)
    return counter.bytes, counter.ops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", nargs="+", default=["16x512:256", "48x128:128,256",
                                                   "24x128:240"],
                    help="MxWIDTH:BATCH[,BATCH...] (several batch sizes: packed)")
    ap.add_argument("--quantiles", type=int, default=100)
    ap.add_argument("--obs-act", nargs=2, type=int, default=None, metavar=("OBS", "ACT"),
                    help="observation and action sizes (default: 51 19 at width 512, "
                         "Hopper's 11 3 otherwise)")
    ap.add_argument("--bandwidth", type=float, default=3.35e12,
                    help="bytes/s (default: an H100 SXM's HBM3, 3.35 TB/s)")
    ap.add_argument("--regions", action="store_true",
                    help="also with the LayerNorm regions fused, forward and backward "
                         "(`--compile regions`)")
    ap.add_argument("--amp", action="store_true",
                    help="also with the networks under bf16 autocast (Population.amp)")
    ap.add_argument("--bf16", action="store_true",
                    help="also with the networks on bf16 weight copies (Population.bf16); with "
                         "--regions, that way too")
    args = ap.parse_args()
    print(f"torch {torch.__version__}; one update as the GPU default path runs it (loss and "
          f"AdamW steps fused, the rest eager); quantiles {args.quantiles}; floor at "
          f"{args.bandwidth / 1e12:.2f} TB/s", flush=True)
    for cell in args.cells:
        shape, _, sizes = cell.partition(":")
        m, width = map(int, shape.split("x"))
        obs, act = args.obs_act or ((51, 19) if width >= 512 else (11, 3))
        variants = ([(False, False, False)] + [(True, False, False)] * args.regions
                    + [(False, True, False)] * args.amp + [(False, False, True)] * args.bf16
                    + [(True, False, True)] * (args.bf16 and args.regions))
        for regions, amp, bf16 in variants:
            moved, ops = traffic(m, width, [int(b) for b in sizes.split(",")],
                                 args.quantiles, obs, act, regions, amp, bf16)
            total = sum(moved.values())
            floor = total / args.bandwidth
            parts = ", ".join(f"{k} {v / 1e9:.2f} GB ({ops[k]} ops)"
                              for k, v in moved.most_common())
            print(f"M {m:>3} width {width:>4} batch {sizes:>8} (obs {obs}, act {act})"
                  f"{', regions fused' if regions else ''}{', bf16 autocast' if amp else ''}"
                  f"{', bf16 weight copies' if bf16 else ''}: "
                  f"{total / 1e9:.2f} GB per update "
                  f"-> at least {floor * 1e3:.2f} ms, at most {m / floor:,.0f} "
                  f"member-updates/s; {parts}", flush=True)


if __name__ == "__main__":
    main()
