"""Replay buffers for a population, kept on the training device: one ring buffer per member.

All members' buffers are one tensor (M, capacity, D) whose rows hold a transition's
obs | action | reward | next_obs | done, so adding a step of every member is one host-to-device
copy (asynchronous from pinned memory on a GPU) and sampling a batch for every member is one
gather.
"""

from __future__ import annotations

import numpy as np
import torch

from calibration.learner.agent import Batch


class Replay:
    def __init__(self, members: int, capacity: int, obs_dim: int, act_dim: int, device):
        self.m, self.capacity, self.device = members, capacity, torch.device(device)
        self.widths = (obs_dim, act_dim, 1, obs_dim, 1)
        self.data = torch.zeros(members, capacity, sum(self.widths), device=self.device)
        self.size = 0
        self.pos = 0
        self._rows = torch.arange(members, device=self.device).unsqueeze(1)

    def add(self, obs, action, reward, next_obs, done) -> None:
        """One transition per member: arrays (M, ...) (numpy or CPU tensors)."""
        row = np.concatenate([np.asarray(obs, np.float32).reshape(self.m, -1),
                              np.asarray(action, np.float32).reshape(self.m, -1),
                              np.asarray(reward, np.float32).reshape(self.m, 1),
                              np.asarray(next_obs, np.float32).reshape(self.m, -1),
                              np.asarray(done, np.float32).reshape(self.m, 1)], 1)
        row = torch.from_numpy(row)
        if self.device.type == "cuda":  # no host sync: the copy is queued behind the updates
            row = row.pin_memory()
        self.data[:, self.pos].copy_(row, non_blocking=True)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """An independent batch of `batch_size` for each member, uniformly from its buffer."""
        idx = torch.randint(0, self.size, (self.m, batch_size), device=self.device,
                            generator=generator)
        obs, action, reward, next_obs, done = self.data[self._rows, idx].split(self.widths, -1)
        return Batch(obs, action, reward.squeeze(-1), next_obs, done.squeeze(-1))
