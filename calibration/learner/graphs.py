"""Replay the population update from a CUDA graph: one launch instead of hundreds.

The update reads fixed ("static") input tensors; each step copies the new batch, noise and mask
into them and replays the graph captured once. It captures `pop.update_fn` (the eager update, or
the compiled one), so the fused loss and the AdamW kernels are inside the graph. Same arithmetic
as the update it captures (benchmarks/gpu_equivalence.py, run by gpu_check.sh); on the CPU, or
if capture fails, it falls back to that update.
"""

from __future__ import annotations

import warnings

import torch

from calibration.learner.agent import Batch, Noise, Population
from calibration.learner.fused import CUDA_LOCK


class GraphedUpdate:
    def __init__(self, pop: Population, batch: Batch, noise: Noise, mask: torch.Tensor,
                 enabled: bool = True):
        self.pop = pop
        self.graph = None
        self.static = (Batch(*(t.clone() for t in (batch.obs, batch.action, batch.reward,
                                                   batch.next_obs, batch.done))),
                       Noise(noise.next_action.clone(), noise.action.clone()), mask.clone())
        if not enabled or pop.device.type != "cuda":
            return
        try:
            self._capture()
        except Exception as exc:  # keep training: eager is slower, never wrong
            warnings.warn(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); "
                          "using the eager update", RuntimeWarning, stacklevel=2)
            self.graph = None

    def _capture(self) -> None:
        # One warm-up and capture at a time per process (populations trained as threads, runner
        # backend "threads", keep replaying their own graphs on their own streams meanwhile).
        with CUDA_LOCK:
            self._capture_locked()

    def _capture_locked(self) -> None:
        batch, noise, mask = self.static
        # Warm-up on a side stream with every member masked out: no parameter changes.
        off = torch.zeros_like(mask)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.pop.update_fn(batch, noise, off)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # thread_local: other threads' CUDA work during this capture is allowed (and not
        # captured); a stream of its own, since torch's default capture stream is per process.
        with torch.cuda.graph(graph, stream=torch.cuda.Stream(),
                              capture_error_mode="thread_local"):
            self.out = self.pop.update_fn(batch, noise, mask)
        self.graph = graph

    def __call__(self, batch: Batch, noise: Noise, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.graph is None:
            return self.pop.update_fn(batch, noise, mask)
        sb, sn, sm = self.static
        for dst, src in ((sb.obs, batch.obs), (sb.action, batch.action), (sb.reward, batch.reward),
                         (sb.next_obs, batch.next_obs), (sb.done, batch.done),
                         (sn.next_action, noise.next_action), (sn.action, noise.action),
                         (sm, mask)):
            dst.copy_(src)
        self.graph.replay()
        return self.out
