#!/usr/bin/env bash
# One prepared device run: GPU facts, the CUDA equivalence check, then the throughput table.
# Usage on the device machine: bash benchmarks/gpu_check.sh  (writes $OUT/throughput.txt)
set -u
OUT="${OUT:-/tmp}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 - <<'PY' 2>&1 | tee -a "$OUT/gpu.txt"
import torch
from calibration.learner.agent import AgentConfig, Batch, Noise, Population
dev = torch.device("cuda")
cfg = AgentConfig(obs_dim=51, act_dim=19, width=256, quantiles=100)
pop = Population(cfg, 4, [0, 1, 2, 3], dev)
singles = [Population(cfg, 1, [s], dev) for s in range(4)]
g = torch.Generator(device=dev).manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = False
for it in range(100):
    b = Batch(torch.randn(4, 64, 51, device=dev, generator=g), torch.rand(4, 64, 19, device=dev, generator=g) * 2 - 1,
              torch.randn(4, 64, device=dev, generator=g), torch.randn(4, 64, 51, device=dev, generator=g),
              torch.zeros(4, 64, device=dev))
    n = Noise(torch.randn(4, 64, 19, device=dev, generator=g), torch.randn(4, 64, 19, device=dev, generator=g))
    pop.update(b, n, torch.ones(4, dtype=torch.bool, device=dev))
    for i, s in enumerate(singles):
        sl = slice(i, i + 1)
        s.update(Batch(b.obs[sl], b.action[sl], b.reward[sl], b.next_obs[sl], b.done[sl]),
                 Noise(n.next_action[sl], n.action[sl]), torch.ones(1, dtype=torch.bool, device=dev))
err = max((pop.critic[k][2 * i:2 * i + 2] - s.critic[k]).abs().max().item() for i, s in enumerate(singles) for k in pop.critic)
print(f"CUDA equivalence after 100 updates (TF32 off): max critic parameter difference {err:.2e}")
from calibration.learner.graphs import GraphedUpdate
eager, graphed_pop = Population(cfg, 4, [0, 1, 2, 3], dev), Population(cfg, 4, [0, 1, 2, 3], dev)
gu = None
for it in range(50):
    b = Batch(torch.randn(4, 64, 51, device=dev, generator=g), torch.rand(4, 64, 19, device=dev, generator=g) * 2 - 1,
              torch.randn(4, 64, device=dev, generator=g), torch.randn(4, 64, 51, device=dev, generator=g),
              torch.zeros(4, 64, device=dev))
    n = Noise(torch.randn(4, 64, 19, device=dev, generator=g), torch.randn(4, 64, 19, device=dev, generator=g))
    mask = torch.tensor([True, it % 2 == 0, True, it % 3 == 0], device=dev)
    gu = gu or GraphedUpdate(graphed_pop, b, n, mask)
    eager.update(b, n, mask)
    out = gu(b, n, mask)
err = max((eager.critic[k] - graphed_pop.critic[k]).abs().max().item() for k in eager.critic)
err = max(err, max((eager.actor[k] - graphed_pop.actor[k]).abs().max().item() for k in eager.actor))
print(f"CUDA graph replay vs eager after 50 masked updates: captured={gu.graph is not None}, max parameter difference {err:.2e}")
PY
timeout 420 python3 benchmarks/learner_throughput.py --seconds 1.5 2>&1 | tee "$OUT/throughput.txt"
