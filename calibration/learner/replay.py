"""Replay buffers for a population, kept on the training device: one ring buffer per member."""

from __future__ import annotations

import torch

from calibration.learner.agent import Batch


class Replay:
    def __init__(self, members: int, capacity: int, obs_dim: int, act_dim: int, device):
        self.m, self.capacity, self.device = members, capacity, device
        self.obs = torch.zeros(members, capacity, obs_dim, device=device)
        self.next_obs = torch.zeros(members, capacity, obs_dim, device=device)
        self.action = torch.zeros(members, capacity, act_dim, device=device)
        self.reward = torch.zeros(members, capacity, device=device)
        self.done = torch.zeros(members, capacity, device=device)
        self.size = 0
        self.pos = 0
        self._rows = torch.arange(members, device=device).unsqueeze(1)

    def add(self, obs, action, reward, next_obs, done) -> None:
        """One transition per member: tensors (M, ...) on any device."""
        i = self.pos
        self.obs[:, i] = obs.to(self.device)
        self.action[:, i] = action.to(self.device)
        self.reward[:, i] = reward.to(self.device)
        self.next_obs[:, i] = next_obs.to(self.device)
        self.done[:, i] = done.to(self.device)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """An independent batch of `batch_size` for each member, uniformly from its buffer."""
        idx = torch.randint(0, self.size, (self.m, batch_size), device=self.device,
                            generator=generator)
        r = self._rows
        return Batch(self.obs[r, idx], self.action[r, idx], self.reward[r, idx],
                     self.next_obs[r, idx], self.done[r, idx])
