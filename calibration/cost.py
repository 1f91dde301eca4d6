"""What a calibration costs before it runs: member-updates per population, and on a CPU a time
estimate from updates timed here.

A population's cost is its member-updates (each member's utd times its learning steps) times
the time one member-update takes at its width and batch size. On a CPU that time is measured
in a second or so per shape (`seconds_per_member_update`: a small population's update, one
torch thread, as the runner trains); env stepping and evaluation are left out, so the estimate
is a floor. On a GPU an eager update outside its CUDA graph says little about the graphed one,
so nothing is timed there (README, Throughput, has the measured GPU figures).
"""

from __future__ import annotations

import time

from calibration.grid import Grid, Unit

#: Members of the population timed for each shape: enough for the per-member cost of a
#: stacked update, small enough to time a width-512 critic in about a second on one core.
PROBE_MEMBERS = 2


def member_updates(grid: Grid, unit: Unit) -> int:
    """Member-updates `unit` computes: each member's utd times its learning steps (the steps
    after the random ones), as the trainer counts them."""
    return int(sum(unit.utds) * (grid.steps - grid.random_steps))


def seconds_per_member_update(grid: Grid, width: int, batch_size: int, obs_dim: int,
                              act_dim: int, updates: int = 2) -> float:
    """Seconds one member-update takes on this CPU at (width, batch_size), timed on a
    population of PROBE_MEMBERS with one torch thread after one warm-up update."""
    import torch

    from calibration.learner.agent import AgentConfig, Batch, Noise, Population

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m, b = PROBE_MEMBERS, batch_size
        cfg = AgentConfig(obs_dim=obs_dim, act_dim=act_dim, width=width,
                          quantiles=grid.quantiles, actor_width=grid.actor_width)
        pop = Population(cfg, m, list(range(m)), torch.device("cpu"))
        g = torch.Generator().manual_seed(0)
        batch = Batch(torch.randn(m, b, obs_dim, generator=g),
                      torch.rand(m, b, act_dim, generator=g) * 2 - 1,
                      torch.randn(m, b, generator=g), torch.randn(m, b, obs_dim, generator=g),
                      torch.zeros(m, b))
        noise = Noise(torch.randn(m, b, act_dim, generator=g),
                      torch.randn(m, b, act_dim, generator=g))
        mask = torch.ones(m, dtype=torch.bool)
        pop.update(batch, noise, mask)  # warm-up: first-call allocations
        t = time.perf_counter()
        for _ in range(updates):
            pop.update(batch, noise, mask)
        return (time.perf_counter() - t) / (updates * m)
    finally:
        torch.set_num_threads(threads)


def cpu_seconds(grid: Grid, units: list[Unit], obs_dim: int, act_dim: int, n_jobs: int,
                timed: dict[tuple[int, int], float] | None = None) -> float:
    """Wall seconds the updates of `units` take on this CPU, n_jobs populations at once (each
    on one core): the units laid out longest first on the workers. `timed` caches seconds per
    member-update by (width, batch size) across calls."""
    timed = {} if timed is None else timed
    costs = []
    for u in units:
        key = (u.width, u.batch_size)  # a packed unit computes at its largest batch
        if key not in timed:
            timed[key] = seconds_per_member_update(grid, *key, obs_dim, act_dim)
        costs.append(member_updates(grid, u) * timed[key])
    free = [0.0] * max(1, n_jobs)
    for c in sorted(costs, reverse=True):
        free[free.index(min(free))] += c
    return max(free)


def duration(seconds: float) -> str:
    """'about 45 min', 'about 3.2 h', 'about 2.5 days'."""
    if seconds < 3600:
        return f"about {max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"about {seconds / 3600:.2g} h"
    return f"about {seconds / 86400:.2g} days"
