"""The PyTorch population learner (needs the `calibrate` extra)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from calibration.archives import read_runs  # noqa: E402
from calibration.learner import (  # noqa: E402
    AgentConfig,
    Batch,
    LearnerError,
    Noise,
    Population,
    TrainConfig,
    critic_params,
    nets,  # noqa: E402
    quantile_huber_loss,
    train_population,
)
from calibration.learner.trainer import guarded_update, resolve_device  # noqa: E402

CPU = torch.device("cpu")


@pytest.mark.parametrize("width", [64, 128, 512, 1024])
def test_critic_params_matches_published_humanoidbench_counts(width):
    assert critic_params(width, 51, 19) == 8 * width**2 + 370 * width + 200
    pop = Population(AgentConfig(obs_dim=51, act_dim=19, width=width, actor_width=16), 1, [0], CPU)
    assert 2 * nets.count(pop.critic) == critic_params(width, 51, 19)


def test_humanoid_stand_count():
    assert critic_params(512, 67, 21) == 2_305_224


def _reference_qr_huber(pred, target, kappa):
    n = pred.shape[-1]
    total = 0.0
    for b in range(pred.shape[0]):
        for i in range(n):
            tau = (i + 0.5) / n
            for j in range(target.shape[-1]):
                u = target[b, j] - pred[b, i]
                h = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                total += abs(tau - (u < 0)) * h / kappa / target.shape[-1]
    return total / pred.shape[0]


@pytest.mark.parametrize("kappa", [1.0, 0.5])
def test_quantile_huber_loss_matches_a_direct_sum(kappa):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 5, generator=g) * 2, torch.randn(3, 7, generator=g) * 2
    got = quantile_huber_loss(pred, target, kappa).item()
    assert got == pytest.approx(_reference_qr_huber(pred.numpy(), target.numpy(), kappa), rel=1e-5)


def test_quantile_huber_pushes_quantiles_towards_their_fractions():
    pred = torch.zeros(1, 4, requires_grad=True)
    target = torch.linspace(-3, 3, 1001).unsqueeze(0)
    opt = torch.optim.SGD([pred], lr=0.5)
    for _ in range(2000):
        opt.zero_grad()
        quantile_huber_loss(pred, target).backward()
        opt.step()
    q = pred.detach().squeeze()
    assert torch.all(q[1:] > q[:-1])  # ordered quantiles
    assert q.mean().abs() < 0.1  # symmetric target


def _batches(m, b, obs_dim, act_dim, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield (Batch(torch.randn(m, b, obs_dim, generator=g), torch.rand(m, b, act_dim, generator=g) * 2 - 1,
                     torch.randn(m, b, generator=g), torch.randn(m, b, obs_dim, generator=g),
                     (torch.rand(m, b, generator=g) < 0.05).float()),
               Noise(torch.randn(m, b, act_dim, generator=g), torch.randn(m, b, act_dim, generator=g)))


def test_population_equals_single_member_runs():
    """M members updated together == M single runs with the same seeds, batches and noise,
    including members that skip updates (a smaller utd)."""
    cfg = AgentConfig(obs_dim=6, act_dim=2, width=32, quantiles=5, actor_width=32)
    seeds = [3, 5, 7]
    pop = Population(cfg, 3, seeds, CPU, torch.tensor([3e-4, 1e-3, 3e-4]))
    singles = [Population(cfg, 1, [s], CPU, torch.tensor([lr])) for s, lr in
               zip(seeds, [3e-4, 1e-3, 3e-4])]
    for it, (batch, noise) in enumerate(_batches(3, 16, 6, 2, 300)):
        mask = torch.tensor([True, it % 2 == 0, it % 3 != 0])
        pop.update(batch, noise, mask)
        for i, single in enumerate(singles):
            if mask[i]:
                sl = slice(i, i + 1)
                single.update(Batch(batch.obs[sl], batch.action[sl], batch.reward[sl],
                                    batch.next_obs[sl], batch.done[sl]),
                              Noise(noise.next_action[sl], noise.action[sl]),
                              torch.ones(1, dtype=torch.bool))
    for i, single in enumerate(singles):
        for k in pop.critic:
            torch.testing.assert_close(pop.critic[k][2 * i:2 * i + 2], single.critic[k],
                                       rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(pop.target[k][2 * i:2 * i + 2], single.target[k],
                                       rtol=1e-5, atol=1e-6)
        for k in pop.actor:
            torch.testing.assert_close(pop.actor[k][i:i + 1], single.actor[k], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(pop.log_alpha[i:i + 1], single.log_alpha, rtol=1e-5, atol=1e-6)


def test_diverged_member_is_frozen_and_others_go_on():
    cfg = AgentConfig(obs_dim=4, act_dim=1, width=16, quantiles=1, actor_width=16)
    pop = Population(cfg, 3, [0, 1, 2], CPU)
    diverged = torch.zeros(3, dtype=torch.bool)
    batches = list(_batches(3, 8, 4, 1, 3))
    batch, noise = batches[0]
    batch.reward[1] = float("nan")
    guarded_update(pop, batch, noise, torch.ones(3, dtype=torch.bool), diverged)
    assert diverged.tolist() == [False, True, False]
    frozen = pop.actor["in.w"][1].clone()
    batch, noise = batches[1]
    loss, bad = guarded_update(pop, batch, noise, ~diverged, diverged)
    assert torch.isfinite(loss[[0, 2]]).all() and not bad.any()
    assert torch.equal(pop.actor["in.w"][1], frozen)
    assert all(torch.isfinite(p).all() for p in pop.critic.values())


def test_bad_requests_are_learner_errors(tmp_path):
    with pytest.raises(LearnerError, match="Box"):
        train_population(TrainConfig("CartPole-v1", 10, [1], [0], device="cpu"), tmp_path)
    with pytest.raises(LearnerError, match="unknown or unavailable"):
        train_population(TrainConfig("NoSuchEnv-v0", 10, [1], [0], device="cpu"), tmp_path)
    with pytest.raises(LearnerError, match="one entry per member"):
        TrainConfig("InvertedPendulum-v5", 10, [1, 2], [0])
    if not torch.cuda.is_available():
        with pytest.raises(LearnerError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(LearnerError, match="unknown device"):
        resolve_device("tpu")


def test_logs_use_the_published_layout_and_read_back(tmp_path):
    cfg = TrainConfig("InvertedPendulum-v5", steps=300, utds=[1, 1, 2], seeds=[0, 1, 2], width=16,
                      actor_width=16, batch_size=16, quantiles=3, random_steps=100,
                      eval_every=100, device="cpu", name="tiny")
    manifest = train_population(cfg, tmp_path)
    assert manifest["member_updates"] == 2 * 200 + 2 * 200  # utd 1 twice, utd 2 once
    runs = read_runs(tmp_path / "tiny", metrics=("return", "critic_loss",
                                                "validation_critic_loss"))
    assert sorted((r.utd, r.n_seeds) for r in runs) == [(1.0, 2), (2.0, 1)]
    run = runs[0]
    assert run.params == critic_params(16, 4, 1, quantiles=3)
    assert run.steps["return"].tolist() == [100.0, 200.0, 300.0]
    assert np.isfinite(run.values["validation_critic_loss"][1:]).all()
    assert (tmp_path / "tiny" / "manifest.json").exists()


@pytest.mark.slow
def test_population_learns_inverted_pendulum_on_cpu(tmp_path):
    torch.set_num_threads(1)
    cfg = TrainConfig("InvertedPendulum-v5", steps=12_000, utds=[1, 1], seeds=[0, 1], width=64,
                      actor_width=64, batch_size=64, quantiles=1, random_steps=1_000,
                      eval_every=2_000, eval_episodes=3, device="cpu", name="learn")
    train_population(cfg, tmp_path)
    (run,) = read_runs(tmp_path / "learn")
    final = run.values["return"][-1]
    assert final.mean() >= 500, final


def test_bf16_autocast_population_tracks_fp32():
    cfg = AgentConfig(obs_dim=6, act_dim=2, width=32, quantiles=5, actor_width=32)
    fp32 = Population(cfg, 2, [0, 1], CPU)
    bf16 = Population(cfg, 2, [0, 1], CPU, amp=True)
    for batch, noise in _batches(2, 16, 6, 2, 20):
        mask = torch.ones(2, dtype=torch.bool)
        a = fp32.update(batch, noise, mask)["critic_loss"]
        b = bf16.update(batch, noise, mask)["critic_loss"]
    assert all(p.dtype == torch.float32 for p in bf16.critic.values())
    torch.testing.assert_close(a, b, rtol=0.1, atol=0.05)
