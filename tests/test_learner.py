"""The PyTorch population learner (needs the `calibrate` extra)."""

import dataclasses
import json
import threading
import time

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
from calibration.learner.fused import fused_quantile_huber_loss  # noqa: E402
from calibration.learner.graphs import GraphedUpdate  # noqa: E402
from calibration.learner.optim import AdamW  # noqa: E402
from calibration.learner.replay import Replay  # noqa: E402
from calibration.learner.trainer import (  # noqa: E402
    PHASES,
    DivergenceGuard,
    VectorEnvs,
    make_env,
    resolve_device,
)

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: the update's ops are small, and on a shared 2-core machine
    OpenMP threads fighting over the cores made these tests 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("width", [64, 128, 512, 1024])
def test_critic_params_matches_published_humanoidbench_counts(width):
    assert critic_params(width, 51, 19) == 8 * width**2 + 370 * width + 200
    pop = Population(AgentConfig(obs_dim=51, act_dim=19, width=width, actor_width=16), 1, [0], CPU)
    assert pop.critic[0].numel() == critic_params(width, 51, 19)  # both Q-nets of member 0


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
        yield (Batch(torch.randn(m, b, obs_dim, generator=g),
                     torch.rand(m, b, act_dim, generator=g) * 2 - 1,
                     torch.randn(m, b, generator=g), torch.randn(m, b, obs_dim, generator=g),
                     (torch.rand(m, b, generator=g) < 0.05).float()),
               Noise(torch.randn(m, b, act_dim, generator=g),
                     torch.randn(m, b, act_dim, generator=g)))


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
                single.update(batch.member(i), noise.member(i), torch.ones(1, dtype=torch.bool))
    for i, single in enumerate(singles):
        for name in ("critic", "target", "actor", "log_alpha"):
            torch.testing.assert_close(getattr(pop, name)[i:i + 1], getattr(single, name),
                                       rtol=1e-5, atol=1e-6)


def _guarded_run(pop, batches, guard, nan_member=None):
    """Updates as the trainer does them: masks from guard.diverged, a check when due."""
    for it, (batch, noise) in enumerate(batches):
        if it == 0 and nan_member is not None:
            batch.reward[nan_member] = float("nan")
        mask = ~guard.diverged
        guard.record(pop.update(batch, noise, mask)["critic_loss"])
        if guard.due():
            guard.check(pop)


@pytest.mark.parametrize("every", [1, 3])
def test_diverged_member_is_frozen_and_others_go_on(every):
    """A NaN in member 1's data is found at the next check (every `every` updates), member 1 is
    frozen with finite parameters, and members 0 and 2 are exactly those of a clean run."""
    cfg = AgentConfig(obs_dim=4, act_dim=1, width=16, quantiles=3, actor_width=16)
    pop, clean = Population(cfg, 3, [0, 1, 2], CPU), Population(cfg, 3, [0, 1, 2], CPU)
    guard, clean_guard = DivergenceGuard(3, CPU, every), DivergenceGuard(3, CPU, every)
    _guarded_run(pop, list(_batches(3, 8, 4, 1, 4)), guard, nan_member=1)
    _guarded_run(clean, list(_batches(3, 8, 4, 1, 4)), clean_guard)
    assert guard.diverged.tolist() == [False, True, False]
    assert not clean_guard.diverged.any()
    for name in ("critic", "target", "actor", "log_alpha"):
        mine, ref = getattr(pop, name), getattr(clean, name)
        assert torch.isfinite(mine).all()
        torch.testing.assert_close(mine[[0, 2]], ref[[0, 2]], rtol=0, atol=0)
    frozen = pop.actor[1].clone()
    _guarded_run(pop, list(_batches(3, 8, 4, 1, 2, seed=1)), guard)
    assert torch.equal(pop.actor[1], frozen)


@pytest.mark.parametrize("change, needle", [
    # a hostile round: each was accepted and failed deep in torch or numpy, or wrote nonsense
    (dict(learning_rates=[float("nan")]), "learning_rates must be positive and finite"),
    (dict(learning_rates=[-1.0]), "learning_rates must be positive and finite"),
    (dict(steps=-5), "steps must be a whole number from 1"),
    (dict(steps=1.5), "steps must be a whole number from 1"),
    (dict(width=0), "width must be a whole number from 1"),
    (dict(quantiles=0), "quantiles must be a whole number from 1"),
    (dict(batch_size=10**9), "batch_size must be a whole number from 1"),
    (dict(eval_every=0), "eval_every must be a whole number from 1"),
    (dict(eval_episodes=0), "eval_episodes must be a whole number from 1"),
    (dict(critic_blocks=10**6), "critic_blocks must be a whole number from 0"),
    (dict(random_steps=-1), "random_steps must be a whole number from 0"),
    (dict(env_id=None), "env_id must be a Gymnasium id"),
    (dict(name="../../etc"), "name must be a folder path inside the out-dir"),
    (dict(name=""), "name must be a folder path inside the out-dir"),
    (dict(name="/tmp/x"), "name must be a folder path inside the out-dir"),
    # two members whose utds differ beyond 6 digits shared one log file: one was lost
    (dict(utds=[1, 1.0000000001], seeds=[0, 1]), "their logs would share one file"),
])
def test_train_configs_that_cannot_train_are_refused_at_once(change, needle):
    kw = dict(env_id="InvertedPendulum-v5", steps=200, utds=[1], seeds=[0], width=16,
              quantiles=4, actor_width=16, random_steps=100, eval_every=100, device="cpu")
    with pytest.raises(LearnerError, match=needle):
        TrainConfig(**{**kw, **change})


def test_an_out_dir_that_is_a_file_and_bad_critic_sizes_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LearnerError, match="exists and is not a folder"):
        train_population(TrainConfig("InvertedPendulum-v5", 10, [1], [0], device="cpu"),
                         tmp_path / "file")
    for args in ((0, 51, 19), (1.5, 51, 19), (512, -5, 19)):
        with pytest.raises(ValueError, match="must be a whole number of at least"):
            critic_params(*args)
    assert critic_params(512, 51, 19) == 2286792


def test_bad_requests_are_learner_errors(tmp_path):
    with pytest.raises(LearnerError, match="Box"):
        train_population(TrainConfig("CartPole-v1", 10, [1], [0], device="cpu"), tmp_path)
    with pytest.raises(LearnerError, match="unknown or unavailable"):
        train_population(TrainConfig("NoSuchEnv-v0", 10, [1], [0], device="cpu"), tmp_path)
    with pytest.raises(LearnerError, match="one entry per member"):
        TrainConfig("InvertedPendulum-v5", 10, [1, 2], [0])
    with pytest.raises(LearnerError, match="optimizer must be auto or one of ops, kernel, "
                                           "compiled, got 'adam'"):
        TrainConfig("InvertedPendulum-v5", 10, [1], [0], optimizer="adam")
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
    # where the wall time went, by phase of the loop: every phase ran, none exceeds the total
    phases = manifest["phase_s"]
    assert sorted(phases) == sorted(PHASES) and all(v > 0 for v in phases.values())
    assert sum(phases.values()) <= manifest["wall_time_s"] + 0.003  # each rounded to 1 ms
    # on a CPU the updates run as they are launched: the loop never waits for them
    assert manifest["device_wait_s"] == 0 and manifest["steps_device_behind"] == 0


def test_device_wait_counts_the_steps_whose_updates_were_not_done():
    """DeviceWait (the GPU's): no wait before anything is marked or twice for one mark; a step
    whose marked updates are done costs nothing, one whose are not is counted and timed."""
    from calibration.learner.trainer import DeviceWait

    class Event:
        def __init__(self):
            self.done, self.calls = True, []

        def record(self, stream):
            self.calls.append(f"record on {stream}")

        def query(self):
            return self.done

        def synchronize(self):
            self.calls.append("synchronize")
            self.done = True

    wait = DeviceWait(torch.device("cpu"))
    assert wait.event is None
    wait.mark()
    wait.wait(time.perf_counter)  # nothing recorded on a CPU
    wait.event = event = Event()
    wait.stream = lambda: "cuda:1's stream"  # the population's device's, not the current one's
    ticks = iter([1.0, 3.5])
    wait.wait(lambda: next(ticks))  # nothing marked yet
    wait.mark()
    wait.wait(lambda: next(ticks))  # done: no time
    assert (wait.seconds, wait.behind, event.calls) == (0.0, 0, ["record on cuda:1's stream"])
    wait.mark()
    event.done = False
    wait.wait(lambda: next(ticks))
    wait.wait(lambda: next(ticks))  # one wait per mark
    assert (wait.seconds, wait.behind) == (2.5, 1)
    assert event.calls == ["record on cuda:1's stream"] * 2 + ["synchronize"]


def test_packed_batch_sizes_are_logged_per_batch_size(tmp_path):
    cfg = TrainConfig("InvertedPendulum-v5", steps=200, utds=[1, 1, 2], seeds=[0, 1, 0],
                      batch_sizes=[16, 32, 32], width=16, actor_width=16, quantiles=3,
                      random_steps=100, eval_every=100, device="cpu", name="packed")
    manifest = train_population(cfg, tmp_path)
    assert manifest["config"]["batch_sizes"] == [16, 32, 32]
    runs = read_runs(tmp_path / "packed")
    assert sorted((r.utd, r.batch_size, r.n_seeds) for r in runs) == [(1.0, 16, 1), (1.0, 32, 1),
                                                                      (2.0, 32, 1)]
    with pytest.raises(LearnerError, match="batch_sizes"):
        TrainConfig("InvertedPendulum-v5", 10, [1, 1], [0, 1], batch_sizes=[16])


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
    assert bf16.critic.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0.1, atol=0.05)


# --- the fast paths equal the readable ones -------------------------------------------------

@pytest.mark.parametrize("fused", [False, True])
def test_sample_weights_give_each_member_the_mean_over_its_own_batch(fused):
    """Member i weighted 1/b_i on the first b_i of B samples (0 after) gets the loss and
    gradient of the plain loss on those b_i samples alone (float64, 1e-12)."""
    loss = fused_quantile_huber_loss if fused else quantile_huber_loss
    g = torch.Generator().manual_seed(1)
    sizes = [4, 16, 9]
    pred = torch.randn(3, 2, 16, 5, generator=g, dtype=torch.float64).requires_grad_()
    target = torch.randn(3, 1, 16, 5, generator=g, dtype=torch.float64)
    w = torch.zeros(3, 1, 16, dtype=torch.float64)
    for i, b in enumerate(sizes):
        w[i, 0, :b] = 1.0 / b
    got = loss(pred, target, 1.0, w)
    (got_grad,) = torch.autograd.grad(got.sum(), pred)
    for i, b in enumerate(sizes):
        part = pred[i:i + 1, :, :b].detach().requires_grad_()
        ref = quantile_huber_loss(part, target[i:i + 1, :, :b], 1.0)
        (ref_grad,) = torch.autograd.grad(ref.sum(), part)
        torch.testing.assert_close(got[i], ref[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got_grad[i, :, :b], ref_grad[0], rtol=1e-12, atol=1e-12)
        assert (got_grad[i, :, b:] == 0).all()


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("kappa, n, n_target", [(1.0, 7, 9), (0.5, 7, 9), (1.0, 1, 1)])
def test_fused_quantile_huber_equals_the_reference_value_and_gradient(dtype, tol, kappa, n,
                                                                      n_target):
    """Same loss and d loss / d pred to `tol` (relative), target broadcast over both Q-nets,
    with pairs exactly at u = 0 and |u| = kappa (where the branches meet); n = 1 is the
    scalar head."""
    g = torch.Generator().manual_seed(0)
    pred = (torch.randn(3, 2, 16, n, generator=g, dtype=dtype) * 2).requires_grad_()
    target = torch.randn(3, 1, 16, n_target, generator=g, dtype=dtype) * 2
    target[0, 0, 0, 0] = pred[0, 0, 0, 0].detach()
    target[0, 0, 1, 0] = pred[0, 0, 1, 0].detach() + kappa
    weights = torch.rand(3, 2, generator=g, dtype=dtype)  # a non-uniform upstream gradient
    ref = quantile_huber_loss(pred, target, kappa)
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), pred)
    got = fused_quantile_huber_loss(pred, target, kappa)
    (got_grad,) = torch.autograd.grad((got * weights).sum(), pred)
    torch.testing.assert_close(got, ref, rtol=tol, atol=tol)
    torch.testing.assert_close(got_grad, ref_grad, rtol=tol, atol=tol * ref_grad.abs().max())


@pytest.mark.parametrize("impl", ["ops", "kernel",
                                  pytest.param("compiled", marks=pytest.mark.slow)])
def test_flat_adamw_equals_torch_adamw_and_masked_members_keep_their_state(impl):
    """Per member, the flat AdamW (whole-buffer ops, one fused kernel per member, or the ops
    compiled into one kernel for all members) follows
    torch.optim.AdamW (float64, to 1e-12) with the member's own learning rate; a masked member
    keeps parameters, moments and step count bit for bit."""
    g = torch.Generator().manual_seed(0)
    m, shape = 3, (2, 5)
    params = torch.randn(m, *shape, generator=g, dtype=torch.float64)
    lrs = torch.tensor([1e-3, 3e-4, 1e-2], dtype=torch.float64)
    refs = [params[i].clone().requires_grad_() for i in range(m)]
    torch_opts = [torch.optim.AdamW([p], lr=float(lr), weight_decay=0.1) for p, lr in
                  zip(refs, lrs)]
    opt = AdamW(params, lrs, weight_decay=0.1, impl=impl)
    assert opt.impl == impl
    for it in range(20):
        grad = torch.randn(m, *shape, generator=g, dtype=torch.float64)
        mask = torch.tensor([True, it % 3 != 0, True])
        before = (params[1].clone(), opt.m[1].clone(), opt.v[1].clone(), opt.t[1].clone())
        opt.step(grad, mask)
        if not mask[1]:
            after = (params[1], opt.m[1], opt.v[1], opt.t[1])
            assert all(torch.equal(a, b) for a, b in zip(before, after))
        for i in np.flatnonzero(mask.numpy()):
            refs[i].grad = grad[i].clone()
            torch_opts[i].step()
    for i in range(m):
        torch.testing.assert_close(params[i], refs[i].detach(), rtol=1e-12, atol=1e-12)


def _run(pop, n, step=None, seed=0):
    step = step or pop.update
    for it, (batch, noise) in enumerate(_batches(pop.members, 16, 6, 2, n, seed)):
        mask = torch.tensor([True, it % 2 == 0, it % 3 != 0])[:pop.members]
        step(batch, noise, mask)
    return pop


def _assert_same_population(a, b, rtol, atol):
    for name in ("critic", "target", "actor", "log_alpha"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=rtol, atol=atol)


SMALL = AgentConfig(obs_dim=6, act_dim=2, width=32, quantiles=5, actor_width=32)
LRS = torch.tensor([3e-4, 1e-3, 3e-4])


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_fused_update_equals_the_reference_update(float64):
    """Fused loss + AdamW kernels vs the reference loss + whole-buffer AdamW, in float64: every
    buffer within 1e-9 after 50 masked updates. (In float32 Adam's normalisation turns
    last-bit gradient differences near its eps into parameter differences of ~1e-5 within tens
    of updates: see the next test.)"""
    ref = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS, fused=False), 50)
    fast = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS, fused=True), 50)
    assert fast.critic.dtype == torch.float64
    _assert_same_population(fast, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_update_with_the_compiled_optimiser_equals_the_reference_update(float64):
    """Population(optimizer="compiled"): critic, actor and temperature steps each one
    torch.compile'd kernel (here Inductor's CPU code) vs the reference update, float64."""
    ref = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS, fused=False), 20)
    fast = Population(SMALL, 3, [3, 5, 7], CPU, LRS, optimizer="compiled")
    assert {fast.critic_opt.impl, fast.actor_opt.impl, fast.alpha_opt.impl} == {"compiled"}
    _assert_same_population(_run(fast, 20), ref, rtol=1e-9, atol=1e-9)
    from calibration.learner import optim

    assert optim._COMPILED_STEP._compiled is not optim._masked_step  # compiled, no fallback


@pytest.mark.slow
def test_update_with_compiled_regions_equals_the_reference_update(float64):
    """Population(regions=True, optimizer="compiled"): the LayerNorm regions (forward and
    backward) and the AdamW steps compiled (here Inductor's CPU code), the rest eager, vs the
    reference update, float64; and nothing fell back to eager."""
    from calibration.learner import agent, optim

    ref = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS, fused=False), 20)
    fast = Population(SMALL, 3, [3, 5, 7], CPU, LRS, regions=True, optimizer="compiled")
    _assert_same_population(_run(fast, 20, fast.update_fn), ref, rtol=1e-9, atol=1e-9)
    assert agent.COMPILED_NORM._compiled is not nets.norm
    assert optim._COMPILED_STEP._compiled is not optim._masked_step


@pytest.mark.slow
def test_compiled_regions_compile_once_for_every_span_of_members(float64):
    """The members' dim is a symbol in compiled code (fused.LazyCompiled): rounds on spans of 4,
    3 and 2 members (the trainer's spans of a population with utds 1, 2 and 4) compile no graph
    that the whole population's update did not, and give the reference's parameters."""
    import torch._dynamo.utils

    lrs = torch.tensor([3e-4, 1e-3, 3e-4, 1e-3])
    ref = Population(SMALL, 4, [3, 5, 7, 9], CPU, lrs, fused=False)
    fast = Population(SMALL, 4, [3, 5, 7, 9], CPU, lrs, regions=True, optimizer="compiled")
    spans = [(0, 4), (1, 4), (2, 4)]
    parts = {span: fast.span(*span) for span in spans[1:]} | {spans[0]: fast}
    graphs = None
    for it, (batch, noise) in enumerate(_batches(4, 16, 6, 2, 6)):
        lo, hi = spans[it % 3]
        mask = torch.arange(4) >= lo
        ref.update(batch, noise, mask)
        parts[lo, hi].update_fn(batch.members(lo, hi), noise.members(lo, hi), mask[lo:hi])
        if it == 0:
            graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    _assert_same_population(fast, ref, rtol=1e-9, atol=1e-9)


def test_compiled_adamw_that_cannot_compile_steps_eagerly_then_uses_the_kernel(monkeypatch):
    from calibration.learner import fused, optim

    def broken(*args):
        raise RuntimeError("no compiler here")

    lazy = fused.LazyCompiled(optim._masked_step, "the AdamW step")
    monkeypatch.setattr(lazy, "_compiled", broken)
    monkeypatch.setattr(optim, "_COMPILED_STEP", lazy)
    g = torch.Generator().manual_seed(2)
    params, lrs = torch.randn(3, 4, generator=g), torch.tensor([1e-3, 3e-3, 1e-2])
    ref, opt = AdamW(params.clone(), lrs, 0.1), AdamW(params.clone(), lrs, 0.1, impl="compiled")
    for it in range(3):
        grad, mask = torch.randn(3, 4, generator=g), torch.tensor([True, it != 1, True])
        ref.step(grad, mask)
        if it == 0:
            with pytest.warns(RuntimeWarning, match="compiling the AdamW step failed"):
                opt.step(grad, mask)
        else:
            opt.step(grad, mask)
            assert opt.impl == "kernel"
    torch.testing.assert_close(opt.params, ref.params, rtol=1e-6, atol=1e-7)


def test_adamw_kernel_only_where_it_is_exact():
    """The CUDA kernel rounds its learning rate to float32: a float64 population there takes
    `ops` (the H100 equivalence check measured 4e-8 against the reference, threshold 1e-9);
    float32 on CUDA and any dtype on the CPU keep the kernel where torch has it."""
    from calibration.learner.optim import has_fused_kernel, kernel_takes

    assert not kernel_takes(torch.float64, "cuda")
    assert kernel_takes(torch.float32, "cuda") == has_fused_kernel()
    assert kernel_takes(torch.float64, "cpu") == has_fused_kernel()


def test_auto_optimizer_compiles_on_a_gpu_and_keeps_the_kernel_on_a_cpu():
    """On a GPU the compiled whole-buffer step replaced a kernel per member (1.3-2.0x in a CUDA
    graph on an H100); on a CPU compiling costs more than it saves; a compiled update and the
    reference path take the plain operations; a failed compile falls back to `ops` on a GPU."""
    from calibration.learner.agent import default_optimizer
    from calibration.learner.optim import after_failed_compile, has_fused_kernel

    assert default_optimizer("cuda") == "compiled"
    assert default_optimizer(torch.device("cuda", 0)) == "compiled"
    assert default_optimizer("cpu") == "kernel"
    assert default_optimizer("cpu", regions=True) == "compiled"
    assert default_optimizer("cuda", compiled=True) == "ops"
    assert default_optimizer("cuda", fused=False) == "ops"
    assert Population(SMALL, 2, [0, 1], CPU, optimizer="auto").critic_opt.impl == (
        "kernel" if has_fused_kernel() else "ops")
    assert after_failed_compile(torch.float32, "cuda") == "ops"
    assert after_failed_compile(torch.float64, "cuda") == "ops"
    assert after_failed_compile(torch.float32, "cpu") == ("kernel" if has_fused_kernel()
                                                          else "ops")


def test_adamw_rejects_an_unknown_implementation():
    with pytest.raises(ValueError, match="unknown AdamW implementation 'fast'; choose one of "
                                         "ops, kernel, compiled"):
        AdamW(torch.zeros(2, 3), torch.full((2,), 1e-3), 0.0, impl="fast")


def test_adamw_kernel_that_refuses_its_inputs_falls_back_to_whole_buffer_ops(monkeypatch):
    """A torch whose `_fused_adamw_` refuses the inputs (as float64 did on an H100): the same
    step with whole-buffer ops, warned once, step counts not counted twice."""
    g = torch.Generator().manual_seed(1)
    params, grad = torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)
    lrs, mask = torch.tensor([1e-3, 3e-3]), torch.tensor([True, False])
    ref = AdamW(params.clone(), lrs, 0.1, impl="ops")
    ref.step(grad, mask)
    opt = AdamW(params.clone(), lrs, 0.1, impl="kernel")

    class Refusing:
        @staticmethod
        def tensor_lr(*args, **kwargs):
            raise RuntimeError("expected scalar type Float but found Double")

    monkeypatch.setattr(torch.ops.aten, "_fused_adamw_", Refusing)
    with pytest.warns(RuntimeWarning, match="fused AdamW kernel failed"):
        opt.step(grad, mask)
    assert opt.impl == "ops"
    for a, b in ((opt.params, ref.params), (opt.m, ref.m), (opt.v, ref.v), (opt.t, ref.t)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("fused", [False, True])
def test_packed_batch_sizes_equal_separate_populations(float64, fused):
    """Members with batch sizes 8, 16 and 12 in one population (batches of 16, each member
    learning from its first b samples) end where three single-member populations fed those
    samples alone end: every buffer within 1e-9 after 30 masked updates (float64)."""
    sizes, seeds = [8, 16, 12], [3, 5, 7]
    packed = Population(SMALL, 3, seeds, CPU, LRS, fused=fused, batch_sizes=sizes)
    singles = [Population(SMALL, 1, [s], CPU, LRS[i:i + 1], fused=fused)
               for i, s in enumerate(seeds)]
    for it, (batch, noise) in enumerate(_batches(3, 16, 6, 2, 30, 0)):
        mask = torch.tensor([True, it % 2 == 0, it % 3 != 0])
        packed.update(batch, noise, mask)
        for i, (single, b) in enumerate(zip(singles, sizes)):
            if mask[i]:
                single.update(batch.member(i, b), noise.member(i, b),
                              torch.ones(1, dtype=torch.bool))
    for name in ("critic", "target", "actor", "log_alpha"):
        joined = torch.cat([getattr(single, name) for single in singles])
        torch.testing.assert_close(getattr(packed, name), joined, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="batch sizes"):
        Population(SMALL, 3, seeds, CPU, batch_sizes=[8, 16])


def test_fused_update_tracks_the_reference_update_in_float32():
    """float32, 5 masked updates: every buffer within rtol 1e-4, atol 1e-4."""
    ref = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS, fused=False), 5)
    fast = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS, fused=True), 5)
    _assert_same_population(fast, ref, rtol=1e-4, atol=1e-4)


def test_layers_are_views_of_one_flat_buffer():
    pop = Population(SMALL, 2, [0, 1], CPU)
    for buf, net in ((pop.critic, pop.critic_net), (pop.actor, pop.actor_net),
                     (pop.target, pop.target_net)):
        leaves = nets.leaves(net)
        assert sum(p[0].numel() for p in leaves) * net.dense_in.weight.shape[0] == buf.numel()
        assert all(p.untyped_storage().data_ptr() == buf.untyped_storage().data_ptr()
                   for p in leaves)
    assert pop.critic_net.dense_in.weight.shape == (4, 8, 32)  # (member x Q-net, in, width)
    assert pop.critic_net.head.weight.shape == (4, 32, 5)
    assert pop.actor_net.head.bias.shape == (2, 4)  # mean and log-std of 2 actions
    assert len(pop.critic_net.blocks) == 2


def test_cuda_graph_falls_back_to_the_eager_update_on_cpu():
    ref = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS), 5)
    pop = Population(SMALL, 3, [3, 5, 7], CPU, LRS)
    (batch, noise), = _batches(3, 16, 6, 2, 1)
    graphed = GraphedUpdate(pop, batch, noise, torch.ones(3, dtype=torch.bool))
    assert graphed.graph is None
    _assert_same_population(_run(pop, 5, graphed), ref, rtol=0, atol=0)


@pytest.mark.slow
def test_compiled_update_equals_the_eager_update(float64):
    """torch.compile of the whole update (one to two minutes to compile on 2 CPU cores) vs
    eager, float64: every buffer within 1e-9 after 10 masked updates."""
    ref = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS), 10)
    fast = Population(SMALL, 3, [3, 5, 7], CPU, LRS, compiled=True)
    _assert_same_population(_run(fast, 10, fast.update_fn), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_compiled_fused_loss_equals_the_eager_one():
    """The GPU path of the fused loss (torch.compile'd loss_and_grad), run here on the CPU."""
    from calibration.learner import fused

    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 2, 8, 5, generator=g), torch.randn(2, 1, 8, 5, generator=g)
    for got, ref in zip(fused.COMPILED_LOSS(pred, target, 1.0),
                        fused.loss_and_grad(pred, target, 1.0)):
        torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-7)


def test_compiled_code_whose_symbolic_compile_fails_compiles_static_shapes_first(monkeypatch):
    """fused.LazyCompiled: where compiling with the members' dim symbolic fails, the static
    compile is tried (no warning: nothing runs eagerly) before eager is."""
    import warnings

    from calibration.learner import fused

    lazy, modes = fused.LazyCompiled(fused.loss_and_grad, "the loss"), []

    def compile_(mode):
        modes.append(mode)
        lazy._mode = mode

        def run(*args):
            if mode == "members":
                raise RuntimeError("no symbolic shapes here")
            return fused.loss_and_grad(*args)

        lazy._compiled = run

    monkeypatch.setattr(lazy, "_compile", compile_)
    pred, target = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = lazy(pred, target, 1.0)
        lazy(pred, target, 1.0)
    assert modes == (["members", "static"] if lazy.dynamic_members else ["static"])
    assert not lazy.failed
    for a, b in zip(got, fused.loss_and_grad(pred, target, 1.0)):
        torch.testing.assert_close(a, b)


def test_compiled_code_called_in_a_thread_gets_the_raised_recompile_limits():
    """Dynamo's settings are per thread: populations trained as threads (backend "threads")
    each call compiled regions with the default limit of 8 shapes unless raised there too."""
    import threading

    from calibration.learner import fused

    lazy, seen = fused.LazyCompiled(fused.loss_and_grad, "the loss"), []

    def worker():
        lazy._compiled = lazy.fn  # no compile needed to see the settings: run eagerly
        lazy(torch.randn(1, 2, 3), torch.randn(1, 2, 3), 1.0)
        seen.append(torch._dynamo.config.recompile_limit)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen and seen[0] >= 64


def test_fused_loss_falls_back_to_eager_when_compiling_fails(monkeypatch):
    from calibration.learner import fused

    def broken(*args):
        raise RuntimeError("no compiler here")

    lazy = fused.LazyCompiled(fused.loss_and_grad, "the fused quantile-Huber loss")
    monkeypatch.setattr(lazy, "_compiled", broken)
    pred, target = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    with pytest.warns(RuntimeWarning, match="quantile-Huber loss failed.*using it eagerly"):
        got = lazy(pred, target, 1.0)
    assert lazy._compiled is fused.loss_and_grad and lazy.failed  # for good: no second try
    for a, b in zip(got, fused.loss_and_grad(pred, target, 1.0)):
        torch.testing.assert_close(a, b)


def test_compiled_update_falls_back_to_eager_when_compiling_fails(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    ref = _run(Population(SMALL, 3, [3, 5, 7], CPU, LRS), 3)
    pop = Population(SMALL, 3, [3, 5, 7], CPU, LRS, compiled=True)
    with pytest.warns(RuntimeWarning, match="torch.compile of the update"):
        _run(pop, 3, pop.update_fn)
    # same update; the compiled configuration uses the whole-buffer AdamW (last-bit rounding)
    _assert_same_population(pop, ref, rtol=1e-5, atol=1e-6)


# --- replay, environments ---------------------------------------------------------------------

def test_replay_is_a_ring_buffer_of_buffer_size_transitions():
    replay = Replay(2, 5, obs_dim=3, act_dim=1, device=CPU)
    for t in range(7):  # 7 transitions into 5 slots: 0 and 1 are overwritten by 5 and 6
        obs = np.full((2, 3), t, np.float32) + np.array([[0], [100]], np.float32)
        replay.add(obs, np.full((2, 1), -t), np.full(2, t), obs + 0.5, np.zeros(2))
    assert replay.size == 5
    batch = replay.sample(200, torch.Generator().manual_seed(0))
    assert set(batch.reward[0].tolist()) == {2, 3, 4, 5, 6}
    torch.testing.assert_close(batch.obs[1, :, 0], batch.reward[1] + 100)
    torch.testing.assert_close(batch.next_obs, batch.obs + 0.5)
    torch.testing.assert_close(batch.action[..., 0], -batch.reward)


def _reference_transitions(env_id, seeds, actions):
    """One env per member stepped in a loop, reset on episode end (the layout before vector
    envs): the transitions the vector envs must reproduce."""
    envs = [make_env(env_id, s) for s in seeds]
    obs = np.stack([e.reset(seed=s)[0] for e, s in zip(envs, seeds)])
    low, high = (envs[0].action_space.low.astype(np.float64),
                 envs[0].action_space.high.astype(np.float64))
    out = []
    for a in actions:
        step = [e.step(low + (a[i] + 1.0) * 0.5 * (high - low)) for i, e in enumerate(envs)]
        next_obs = np.stack([s[0] for s in step])
        out.append((obs.astype(np.float32), next_obs.astype(np.float32),
                    np.array([s[1] for s in step], np.float32),
                    np.array([s[2] for s in step], np.float32),
                    np.array([s[2] or s[3] for s in step])))
        obs = next_obs.copy()
        for i, s in enumerate(step):
            if s[2] or s[3]:
                obs[i] = envs[i].reset()[0]
    return out


@pytest.mark.parametrize("env_id, mode, steps", [
    ("InvertedPendulum-v5", "sync", 60), ("InvertedPendulum-v5", "async", 60),
    ("InvertedPendulum-v5", "threads", 60), ("Pendulum-v1", "sync", 410),
    ("Pendulum-v1", "threads", 410)])
def test_vector_envs_keep_per_member_seeding(env_id, mode, steps):
    """Each way of stepping gives every member the transitions of its own env stepped alone
    (threads: 3 envs in 2 chunks of uneven size): where an episode ends, the stored next
    observation is its final one, not the reset one, and the TD target's `done` is gymnasium's
    `terminated` only, so a time limit (Pendulum-v1's 200 steps: it never terminates)
    bootstraps and a fall (InvertedPendulum-v5) does not."""
    seeds = [3, 11, 5]
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 3, 1)).astype(np.float32)
    ref = _reference_transitions(env_id, seeds, actions)
    envs = VectorEnvs(env_id, seeds, mode == "async", threads=2 if mode == "threads" else 1)
    assert type(envs.vec).__name__ == {"sync": "SyncVectorEnv", "async": "AsyncVectorEnv",
                                       "threads": "ThreadedEnvs"}[mode]
    ends = terminations = 0
    try:
        for (obs, next_obs, rew, term, end), a in zip(ref, actions):
            np.testing.assert_array_equal(envs.obs, obs)
            got_next, got_rew, got_term, ended = envs.step(a)
            np.testing.assert_array_equal(got_next, next_obs)
            np.testing.assert_array_equal(got_rew, rew)
            np.testing.assert_array_equal(got_term, term)
            np.testing.assert_array_equal(ended, end)
            if end.any():  # the next action is taken from a reset observation
                assert not np.array_equal(envs.obs[end], got_next[end])
            ends += int(end.sum())
            terminations += int(term.sum())
    finally:
        envs.close()
    # random actions end InvertedPendulum episodes by falling, Pendulum's only by its limit
    assert ends and terminations == (ends if env_id == "InvertedPendulum-v5" else 0)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Ant-v5", "Reacher-v5", "Humanoid-v5",
                                    "InvertedDoublePendulum-v5"])
def test_threaded_envs_run_physics_ahead_with_sync_results_bit_for_bit(env_id, monkeypatch):
    """ThreadedEnvs steps gymnasium's MuJoCo envs' physics ahead in its threads and their
    Python after (PhysicsAhead): observations, rewards, terminations and resets as sync envs,
    bit for bit, over episodes that end, for envs that read the state before simulating
    (Hopper's x, Humanoid's centre of mass, Reacher's reward) or forces after it (Ant's
    contact forces); no env simulated on its own. An action other than the one run ahead
    is simulated as usual."""
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    own = []
    real = MujocoEnv.do_simulation
    monkeypatch.setattr(MujocoEnv, "do_simulation",
                        lambda self, *a: (own.append(1), real(self, *a))[1])
    seeds = [3, 11, 5]
    sync = VectorEnvs(env_id, seeds, threads=1)
    ahead = VectorEnvs(env_id, seeds, threads=2)
    assert ahead.vec.ahead is not None
    rng = np.random.default_rng(0)
    ended = 0
    try:
        for t in range(120):
            a = rng.uniform(-1, 1, (3, sync.low.shape[0])).astype(np.float32)
            n_sync = len(own)
            want = sync.step(a)
            n_ahead = len(own)
            got = ahead.step(a)
            assert len(own) == n_ahead and len(own) - n_sync == 3  # only the sync envs'
            for x, y in zip(want, got):
                np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(sync.obs, ahead.obs)
            ended += int(want[3].sum())
        # physics run ahead with other actions: each env's step simulates its own itself
        simulate = ahead.vec.ahead.simulate
        monkeypatch.setattr(ahead.vec.ahead, "simulate",
                            lambda actions, chunk: simulate(actions * 0.5, chunk))
        for t in range(5):
            a = rng.uniform(-1, 1, (3, sync.low.shape[0])).astype(np.float32)
            n = len(own)
            want, got = sync.step(a), ahead.step(a)
            assert len(own) - n == 6
            for x, y in zip(want, got):
                np.testing.assert_array_equal(x, y)
    finally:
        sync.close()
        ahead.close()
    assert ended  # episodes ended (or reached their time limit) and were reset


def test_async_and_threaded_envs_give_the_same_logs_as_sync_envs(tmp_path):
    kw = dict(steps=150, utds=[1, 2], seeds=[0, 1], width=16, actor_width=16, batch_size=16,
              quantiles=3, random_steps=50, eval_every=75, device="cpu", buffer_size=60,
              env_threads=2)
    for mode in ("sync", "async", "threads"):
        train_population(TrainConfig("InvertedPendulum-v5", vector_env=mode, name=mode, **kw),
                         tmp_path)
    files = sorted(p.relative_to(tmp_path / "sync") for p in (tmp_path / "sync").rglob("*.npy"))
    assert len(files) == 6  # 2 utds x 3 metrics
    for f in files:
        for mode in ("async", "threads"):
            np.testing.assert_array_equal(np.load(tmp_path / "sync" / f),
                                          np.load(tmp_path / mode / f))
    with pytest.raises(LearnerError, match="vector_env must be one of auto, sync, threads, "
                                           "async, got 'pool'"):
        TrainConfig("InvertedPendulum-v5", 10, [1], [0], vector_env="pool")
    with pytest.raises(LearnerError, match="env_threads must be at least 1"):
        TrainConfig("InvertedPendulum-v5", 10, [1], [0], env_threads=0)


def test_a_span_of_members_updates_those_members_as_the_masked_population_does():
    """Population.span(lo, hi): an update of the span changes members lo..hi-1 of the whole
    population exactly as the whole population's update with the others masked out does,
    moments and step counts included; the others keep every buffer bit for bit."""
    whole = Population(SMALL, 3, [3, 5, 7], CPU, LRS, batch_sizes=[16, 8, 16])
    spans = Population(SMALL, 3, [3, 5, 7], CPU, LRS, batch_sizes=[16, 8, 16])
    for it, (batch, noise) in enumerate(_batches(3, 16, 6, 2, 12)):
        lo, hi = [(0, 3), (1, 3), (2, 3), (1, 2)][it % 4]
        mask = torch.zeros(3, dtype=torch.bool)
        mask[lo:hi] = True
        whole.update(batch, noise, mask)
        before = spans.critic.clone()
        part = spans.span(lo, hi)
        assert part.critic.data_ptr() == spans.critic[lo].data_ptr()  # a view, not a copy
        part.update(batch.members(lo, hi), noise.members(lo, hi), mask[lo:hi])
        assert torch.equal(spans.critic[~mask], before[~mask])
    _assert_same_population(spans, whole, rtol=0, atol=0)
    for name in ("critic_opt", "actor_opt", "alpha_opt"):
        for buf in ("m", "v", "t"):
            assert torch.equal(getattr(getattr(spans, name), buf),
                               getattr(getattr(whole, name), buf))
    with pytest.raises(ValueError, match="need 0 <= lo < hi <= 3"):
        spans.span(2, 2)


def _relative_change_error(fast, ref, start, name):
    """Per member: |change of `fast` - change of `ref`| / |change of `ref`| (L2 over the
    member's parameters of buffer `name`, both from `start`)."""
    d_ref = (getattr(ref, name) - start).flatten(1)
    d_fast = (getattr(fast, name) - start).flatten(1)
    return ((d_fast - d_ref).norm(dim=1) / d_ref.norm(dim=1)).max().item()


def _shift_q(pop, level: float) -> None:
    """Put every Q-net's output near `level` (its head's bias; critic and target alike)."""
    for buf in (pop.critic, pop.target):
        pop.critic_layout.views(buf.view(2 * pop.members, -1)).head.bias.data += level
    pop.sync_copies()


@pytest.mark.parametrize("optimizer,q_level", [("ops", 0.0), ("kernel", 0.0), ("ops", 300.0)])
def test_bf16_networks_read_the_copies_the_optimiser_writes_and_stay_near_float32(optimizer,
                                                                                q_level):
    """Population(bf16=True): the networks' bodies are views of bf16 copies, their heads of the
    float32 parameters; after every masked update the copies are the float32 parameters
    rounded (the AdamW steps write them, the target's too); a masked member keeps its
    parameters and copies bit for bit; what the loss sees is float32; and after 50 updates
    each member's parameter change is within 6% of the float32 path's, with Q-values near 0
    and near 300 (Hopper's scale; 1.3-3.3% measured; with the heads in bf16 it was 16% near
    300). The gap grows with more updates (4-5% at 200, 13% at 800): a bf16 run is another
    trajectory, as another seed's is; whether it learns as well is for the device's runs."""
    ref = Population(SMALL, 3, [3, 5, 7], CPU, LRS, optimizer=optimizer)
    fast = Population(SMALL, 3, [3, 5, 7], CPU, LRS, optimizer=optimizer, bf16=True)
    for pop in (ref, fast):
        _shift_q(pop, q_level)
    assert fast.critic.dtype == torch.float32 and fast.critic_bf16.dtype == torch.bfloat16
    *body, head_w, head_b = nets.leaves(fast.critic_net)
    assert all(p.dtype == torch.bfloat16 for p in body)
    assert head_w.dtype == head_b.dtype == torch.float32
    assert head_b.untyped_storage().data_ptr() == fast.critic.untyped_storage().data_ptr()
    start = {name: getattr(ref, name).clone() for name in ("critic", "target", "actor")}
    reward_shift = q_level * (1 - SMALL.gamma)  # so that TD targets stay near q_level
    for it, (batch, noise) in enumerate(_batches(3, 16, 6, 2, 50)):
        batch = dataclasses.replace(batch, reward=batch.reward + reward_shift,
                                    done=batch.done * 0)
        mask = torch.tensor([True, it % 2 == 0, it % 3 != 0])
        before = fast.critic_bf16[~mask].clone()
        ref.update(batch, noise, mask)
        fast.update(batch, noise, mask)
        for name in ("critic", "target", "actor"):
            assert torch.equal(getattr(fast, f"{name}_bf16"),
                               getattr(fast, name).to(torch.bfloat16)), name
        assert torch.equal(fast.critic_bf16[~mask], before)
    for name in start:
        assert _relative_change_error(fast, ref, start[name], name) < 0.06, name
    torch.testing.assert_close(fast.log_alpha, ref.log_alpha, rtol=0, atol=1e-3)
    z = fast.q_values(fast.critic_net, batch.obs, batch.action)
    action, logp = fast.policy(batch.obs, noise.action)
    loss = fast.critic_loss(batch, noise.next_action)
    assert z.dtype == action.dtype == logp.dtype == loss.dtype == torch.float32
    assert abs(z.mean().item() - q_level) < 10


def test_bf16_spans_and_checkpoints_keep_the_copies_in_step():
    """bf16 populations: an update of a span changes the whole population's members and their
    bf16 copies as the masked update does, bit for bit; a population restored from another's
    checkpoint arrays (float32 only: numpy has no bf16) gets its copies rounded anew and
    updates as the original does."""
    from calibration.learner.checkpoint import population_tensors, restore_population

    whole = Population(SMALL, 3, [3, 5, 7], CPU, LRS, bf16=True)
    spans = Population(SMALL, 3, [3, 5, 7], CPU, LRS, bf16=True)
    for it, (batch, noise) in enumerate(_batches(3, 16, 6, 2, 8)):
        lo, hi = [(0, 3), (1, 3), (2, 3), (1, 2)][it % 4]
        mask = torch.zeros(3, dtype=torch.bool)
        mask[lo:hi] = True
        whole.update(batch, noise, mask)
        part = spans.span(lo, hi)
        assert part.critic_bf16.data_ptr() == spans.critic_bf16[lo].data_ptr()
        part.update(batch.members(lo, hi), noise.members(lo, hi), mask[lo:hi])
    _assert_same_population(spans, whole, rtol=0, atol=0)
    for name in ("critic_bf16", "target_bf16", "actor_bf16"):
        assert torch.equal(getattr(spans, name), getattr(whole, name)), name
    saved = {k: v.detach().clone().numpy() for k, v in population_tensors(whole).items()}
    fresh = Population(SMALL, 3, [0, 1, 2], CPU, LRS, bf16=True)
    restore_population(fresh, saved)
    (batch, noise), = _batches(3, 16, 6, 2, 1, seed=9)
    for pop in (whole, fresh):
        pop.update(batch, noise, torch.ones(3, dtype=torch.bool))
    _assert_same_population(fresh, whole, rtol=0, atol=0)
    with pytest.raises(ValueError, match="choose one"):
        Population(SMALL, 1, [0], CPU, bf16=True, amp=True)
    with pytest.raises(LearnerError, match="set at most one"):
        TrainConfig("InvertedPendulum-v5", 10, [1], [0], bf16=True, amp=True)
    with pytest.raises(LearnerError, match="bf16 must be True or False, got 'no'"):
        TrainConfig("InvertedPendulum-v5", 10, [1], [0], bf16="no")


def test_a_checkpoint_written_before_bf16_existed_still_resumes():
    """A setting added later (bf16) is left out of the compared configuration at the value old
    checkpoints were written with, so they still match; any other value does not."""
    from calibration.learner.checkpoint import comparable

    plain = TrainConfig("InvertedPendulum-v5", 10, [1], [0])
    assert "bf16" not in comparable(plain)
    assert comparable(TrainConfig("InvertedPendulum-v5", 10, [1], [0], bf16=True))["bf16"]


@pytest.mark.slow
def test_bf16_with_compiled_regions_stays_near_float32():
    """bf16 copies with the LayerNorm regions and AdamW steps compiled (LayerNorm in float32
    inside the region, bf16 in and out): within 6% of the float32 path's parameter change
    after 20 updates, nothing fell back to eager, and the copies are the parameters rounded."""
    from calibration.learner import agent, optim

    ref = Population(SMALL, 3, [3, 5, 7], CPU, LRS)
    fast = Population(SMALL, 3, [3, 5, 7], CPU, LRS, regions=True, bf16=True)
    start = {name: getattr(ref, name).clone() for name in ("critic", "target", "actor")}
    _run(ref, 20)
    _run(fast, 20, fast.update_fn)
    for name in start:
        assert _relative_change_error(fast, ref, start[name], name) < 0.06, name
        assert torch.equal(getattr(fast, f"{name}_bf16"), getattr(fast, name).to(torch.bfloat16))
    assert agent.COMPILED_NORM._compiled is not nets.norm
    assert optim._COMPILED_STEP._compiled is not optim._masked_step


def test_rounds_on_spans_of_members_give_the_logs_of_masked_rounds(tmp_path, monkeypatch):
    """Members with utds 1, 2 and 0.5: the trainer's later rounds (and the half-utd member's
    skipped ones) run on spans of members (TrainConfig.spans), and every log is what the
    whole population with masks writes, bit for bit; the manifest counts the same updates."""
    kw = dict(steps=120, utds=[0.5, 1, 2, 2], seeds=[0, 1, 2, 3], width=16, actor_width=16,
              batch_size=16, quantiles=3, random_steps=40, eval_every=40, device="cpu",
              vector_env="sync")
    made = []
    span = Population.span
    monkeypatch.setattr(Population, "span",
                        lambda self, lo, hi: made.append((lo, hi)) or span(self, lo, hi))
    masked = train_population(TrainConfig("InvertedPendulum-v5", name="masked", spans=False,
                                          **kw), tmp_path)
    assert made == []
    spans = train_population(TrainConfig("InvertedPendulum-v5", name="spans", **kw), tmp_path)
    assert masked["member_updates"] == spans["member_updates"] == 80 * (0.5 + 1 + 2 + 2)
    assert sorted(made) == [(1, 4), (2, 4)]  # one population (and graph) per span
    a, b = _logs(tmp_path / "masked"), _logs(tmp_path / "spans")
    assert a.keys() == b.keys() and len(a) == 9  # 3 utds x 3 metrics
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_logged_critic_loss_is_each_members_mean_over_its_own_updates(tmp_path, monkeypatch):
    """Members with utds 1 and 4 in one population: the utd-1 member takes part in one round of
    four, and its logged critic loss is the mean of its own updates' losses (it was the sum
    over its updates divided by every round: a quarter of its loss)."""
    from calibration.learner import trainer

    seen = []
    graphed = trainer.GraphedUpdate

    class Recording(graphed):
        def __call__(self, batch, noise, mask):
            out = super().__call__(batch, noise, mask)
            seen.append((out["critic_loss"].clone(), mask.clone()))
            return out

    monkeypatch.setattr(trainer, "GraphedUpdate", Recording)
    kw = dict(steps=60, utds=[1, 4], seeds=[0, 1], width=8, actor_width=8, batch_size=8,
              quantiles=3, random_steps=40, eval_every=20, device="cpu", vector_env="sync",
              spans=False, checkpoint_s=None)
    train_population(TrainConfig("InvertedPendulum-v5", name="run", **kw), tmp_path)
    assert len(seen) == 4 * 20  # rounds of the 20 learning steps, before the log at step 60
    losses = torch.stack([loss for loss, _ in seen]).numpy()
    took = torch.stack([mask for _, mask in seen]).numpy()
    assert took.sum(0).tolist() == [20, 80]
    want = [losses[took[:, i], i].mean() for i in range(2)]
    logs = _logs(tmp_path / "run")
    for i, utd in enumerate((1, 4)):
        (got,) = [v for k, v in logs.items()
                  if f"utd_{utd}/" in str(k) and k.parent.name == "critic_loss"]
        assert got[-1, 0] == 60  # rows of (step, value)
        np.testing.assert_allclose(got[-1, 1], want[i], rtol=1e-6)


def test_irregular_masks_make_at_most_max_spans_spans(tmp_path, monkeypatch):
    """Utds 0.5 to 6 on 9 members give more distinct spans than MAX_SPANS: rounds past the cap
    run on the narrowest span made that holds their members, or on all; the logs are those of
    the masked rounds still."""
    from calibration.learner import trainer

    made = []
    graphed = trainer.GraphedUpdate
    monkeypatch.setattr(trainer, "GraphedUpdate",
                        lambda pop, *a, **kw: made.append(pop.members) or graphed(pop, *a, **kw))
    monkeypatch.setattr(trainer, "MAX_SPANS", 3)
    kw = dict(steps=60, utds=[0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6], seeds=list(range(9)),
              width=8, actor_width=8, batch_size=8, quantiles=1, random_steps=40, eval_every=20,
              device="cpu", vector_env="sync", checkpoint_s=None)
    off = train_population(TrainConfig("InvertedPendulum-v5", name="off", spans=False, **kw),
                           tmp_path)
    assert made == [9]
    made.clear()
    on = train_population(TrainConfig("InvertedPendulum-v5", name="on", **kw), tmp_path)
    assert len([n for n in made if n < 9]) == 3 and made.count(9) <= 1
    assert off["member_updates"] == on["member_updates"]
    a, b = _logs(tmp_path / "off"), _logs(tmp_path / "on")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("every", [1, 100])
def test_a_member_that_diverges_is_logged_alike_with_and_without_spans(tmp_path, every):
    """A hostile round: member 0 (utd 1, learning rate 1e10) blows up; the second round of each
    step is the span of members 1 and 2, which does not compute member 0's loss. Flags came
    from masked members' losses without spans, so with checks after each round a log point
    saw member 0 diverged without spans (NaN) and finite with them. Flags now come from the
    members that took the round, and each check also reads which parameters are non-finite."""
    kw = dict(steps=70, utds=[1, 2, 2], seeds=[0, 1, 2], learning_rates=[1e10, 3e-4, 3e-4],
              width=16, actor_width=16, batch_size=16, quantiles=3, random_steps=50,
              eval_every=1, divergence_check_every=every, device="cpu", vector_env="sync",
              checkpoint_s=None)
    off = train_population(TrainConfig("InvertedPendulum-v5", name="off", spans=False, **kw),
                           tmp_path)
    on = train_population(TrainConfig("InvertedPendulum-v5", name="on", **kw), tmp_path)
    assert off["diverged"] == on["diverged"] == [True, False, False]
    assert off["member_updates"] == on["member_updates"]
    a, b = _logs(tmp_path / "off"), _logs(tmp_path / "on")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    ret = next(v for k, v in a.items() if "utd_1/" in str(k) and "return" in str(k))
    assert np.isnan(ret[-1, 1])  # logged as diverged


CKPT_KW = dict(steps=300, utds=[1, 2], seeds=[0, 1], width=16, actor_width=16, batch_size=16,
               quantiles=3, random_steps=50, eval_every=50, device="cpu", checkpoint_s=0,
               buffer_size=120)  # a ring buffer that has wrapped by the checkpoint


class _Stop(Exception):
    pass


def _train_until(tmp_path, name: str, stop_at: int, **kw):
    """Train, interrupted (as by a crash) at the log point of step `stop_at`."""
    def progress(step, ret):
        if step == stop_at:
            raise _Stop

    with pytest.raises(_Stop):
        train_population(TrainConfig("InvertedPendulum-v5", name=name, **{**CKPT_KW, **kw}),
                         tmp_path, progress=progress)


def _logs(run_dir):
    return {p.relative_to(run_dir): np.load(p) for p in sorted(run_dir.rglob("*.npy"))}


def test_interrupted_population_resumes_from_its_checkpoint(tmp_path):
    """A run stopped at step 200 resumes from its checkpoint at 150: the logs up to 150 are the
    uninterrupted run's, it takes the same number of member-updates, logs every step once,
    records where it resumed and removes its checkpoint when it ends."""
    from calibration.learner.checkpoint import FILE

    full = train_population(TrainConfig("InvertedPendulum-v5", name="full", **CKPT_KW), tmp_path)
    assert not (tmp_path / "full" / FILE).exists()
    _train_until(tmp_path, "cut", 200)
    with np.load(tmp_path / "cut" / FILE, allow_pickle=False) as z:
        meta, data = json.loads(str(z["meta"])), z["replay.data"]
    # step 150 of a 120-row ring: full, next write at row 30
    assert (meta["step"], meta["replay.size"], meta["replay.pos"]) == (150, 120, 30)
    assert data.shape[:2] == (2, 120) and np.isfinite(data).all()
    res = train_population(TrainConfig("InvertedPendulum-v5", name="cut", **CKPT_KW), tmp_path)
    assert res["resumed_from"] == [150] and "resumed_from" not in full
    assert res["member_updates"] == full["member_updates"] == 250 + 2 * 250
    assert not (tmp_path / "cut" / FILE).exists()
    a, b = _logs(tmp_path / "full"), _logs(tmp_path / "cut")
    assert a.keys() == b.keys() and len(a) == 6
    for key in a:
        assert a[key].shape == b[key].shape == (6, 2)  # steps, one seed per utd
        np.testing.assert_array_equal(a[key][:3], b[key][:3])  # steps 50-150
        assert np.isfinite(b[key][3:]).all()


def test_resuming_is_deterministic_from_the_checkpoint(tmp_path):
    """Two resumes of one checkpoint give the same logs bit for bit: what the run carries over
    comes from the file (replay, networks, optimisers, generators, credit), nothing from the
    interrupted process."""
    import shutil

    _train_until(tmp_path, "a", 200)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for name in ("a", "b"):
        train_population(TrainConfig("InvertedPendulum-v5", name=name, **CKPT_KW), tmp_path)
    a, b = _logs(tmp_path / "a"), _logs(tmp_path / "b")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_checkpoint_restores_every_population_tensor_in_place():
    from calibration.learner.checkpoint import population_tensors, restore_tensors

    pop = Population(SMALL, 2, [0, 1], CPU, LRS[:2])
    for batch, noise in _batches(2, 8, 6, 2, 3, 0):
        pop.update(batch, noise, torch.ones(2, dtype=torch.bool))
    saved = {k: v.detach().clone().numpy() for k, v in population_tensors(pop).items()}
    assert {"critic", "target", "actor", "log_alpha", "critic_opt.m", "actor_opt.v",
            "alpha_opt.t"} <= saved.keys()
    fresh = Population(SMALL, 2, [5, 6], CPU, LRS[:2])
    views = [p.data_ptr() for p in nets.leaves(fresh.critic_net)]
    restore_tensors(population_tensors(fresh), saved)
    for k, v in population_tensors(fresh).items():
        np.testing.assert_array_equal(v.detach().numpy(), saved[k])
    assert [p.data_ptr() for p in nets.leaves(fresh.critic_net)] == views  # views still alias


@pytest.mark.parametrize("bad", ["other config", "torn file"])
def test_checkpoint_of_another_run_is_set_aside(tmp_path, bad):
    from calibration.learner.checkpoint import FILE

    _train_until(tmp_path, "run", 200)
    path = tmp_path / "run" / FILE
    kw = {}
    if bad == "torn file":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        kw = {"batch_size": 32}
    with pytest.warns(RuntimeWarning, match="training from the start"):
        res = train_population(TrainConfig("InvertedPendulum-v5", name="run",
                                           **{**CKPT_KW, **kw}), tmp_path)
    assert "resumed_from" not in res
    # the set-aside file is removed with the rest when the run ends
    assert not (tmp_path / "run" / (FILE + ".stale")).exists() and not path.exists()
    # and what is left to read is this run's logs only (not the other attempt's, partial)
    names = {p.name for p in (tmp_path / "run").rglob("*.npy")}
    assert names == {f"bs_{kw.get('batch_size', 16)}_lr_0.0003_sep_False.npy"}, names
    with pytest.raises(LearnerError, match="checkpoint_s"):
        TrainConfig("InvertedPendulum-v5", 10, [1], [0], checkpoint_s=-1)


def test_set_aside_logs_are_removed_inside_the_run_folder_only(tmp_path):
    from calibration.learner.checkpoint import remove_logs

    run = tmp_path / "run"
    (run / "w8p1" / "utd_1" / "E" / "return").mkdir(parents=True)
    (run / "w8p1" / "utd_1" / "E" / "return" / "bs_8.npy").write_bytes(b"x")
    (run / "keep.npy").write_bytes(b"x")
    (tmp_path / "outside.npy").write_bytes(b"x")
    remove_logs(run, ["w8p1/utd_1/E/return/bs_8.npy", "../outside.npy", "manifest.json", 3])
    assert sorted(p.name for p in run.iterdir()) == ["keep.npy"]  # emptied folders gone
    assert (tmp_path / "outside.npy").exists()
    remove_logs(run, "not a list")


def _edit_checkpoint(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(path, **arrays)


def test_checkpoint_that_does_not_fit_the_run_is_set_aside_before_anything_is_restored(tmp_path):
    from calibration.learner.checkpoint import FILE

    _train_until(tmp_path, "run", 200)
    path = tmp_path / "run" / FILE
    _edit_checkpoint(path, credit=np.zeros(5))  # 2 members
    (tmp_path / "run" / f".{FILE}.abc.tmp").write_bytes(b"half")  # a write that was killed
    with pytest.warns(RuntimeWarning, match="holding credit of shape"):
        res = train_population(TrainConfig("InvertedPendulum-v5", name="run", **CKPT_KW),
                               tmp_path)
    assert "resumed_from" not in res
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["manifest.json", "w16p2790"]


def test_checkpoint_from_another_device_type_resumes_with_a_fresh_generator(tmp_path):
    """A CUDA generator's state (16 bytes) does not fit a CPU generator: the run resumes with a
    generator seeded from its seeds and step, deterministically."""
    import shutil

    from calibration.learner.checkpoint import FILE

    _train_until(tmp_path, "a", 200)
    _edit_checkpoint(tmp_path / "a" / FILE, gen=np.zeros(16, np.uint8))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for name in ("a", "b"):
        res = train_population(TrainConfig("InvertedPendulum-v5", name=name, **CKPT_KW),
                               tmp_path)
        assert res["resumed_from"] == [150]
    a, b = _logs(tmp_path / "a"), _logs(tmp_path / "b")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_numpy_numbers_in_the_config_become_plain_ones(tmp_path):
    cfg = TrainConfig("InvertedPendulum-v5", 10, np.array([1.0, 2.0]), [np.int64(0), 1],
                      batch_sizes=[np.int32(8), 16])
    assert cfg.seeds == [0, 1] and type(cfg.seeds[0]) is int and cfg.utds == [1.0, 2.0]
    assert json.dumps(cfg.batch_sizes) == "[8, 16]"
    with pytest.raises(LearnerError, match="seeds holds 1.5, not a whole number"):
        TrainConfig("InvertedPendulum-v5", 10, [1], [1.5])


def test_a_run_from_the_start_clears_the_logs_an_earlier_attempt_left(tmp_path, monkeypatch):
    """Logs of an attempt that died without a checkpoint are not read as this run's before
    its first log point (progress lines, a crash before then)."""
    import calibration.learner.trainer as trainer

    _train_until(tmp_path, "run", 100, checkpoint_s=None)
    logged = sorted((tmp_path / "run").rglob("*.npy"))
    assert len(logged) == 6 and all(np.load(p).shape[0] == 2 for p in logged)  # steps 50, 100

    def first_log(*args):
        raise _Stop

    monkeypatch.setattr(trainer, "_write_logs", first_log)
    with pytest.raises(_Stop):  # stopped at its first log point, before writing it
        train_population(TrainConfig("InvertedPendulum-v5", name="run", **CKPT_KW), tmp_path)
    assert not list((tmp_path / "run").rglob("*.npy"))


BG_KW = dict(steps=160, utds=[1, 2, 2], seeds=[0, 1, 2], learning_rates=[1e10, 3e-4, 3e-4],
             width=16, actor_width=16, batch_size=16, quantiles=3, random_steps=40,
             eval_every=20, device="cpu", vector_env="sync", checkpoint_s=None)


def test_evaluation_in_the_background_logs_what_inline_evaluation_logs(tmp_path, monkeypatch):
    """TrainConfig.eval_background: the episodes run in a thread of their own on a copy of the
    actor while training goes on; every log (returns, losses, a member that diverged midway)
    is the inline run's, bit for bit, and progress sees every log step once, in order."""
    from calibration.learner import trainer

    where = []
    evaluate = trainer.evaluate

    def late(*a, **kw):  # in the background, episodes that start after training has moved on
        where.append(threading.current_thread().name)
        if where[-1] != "MainThread":
            time.sleep(0.3)
        return evaluate(*a, **kw)

    monkeypatch.setattr(trainer, "evaluate", late)
    seen = {"inline": [], "background": []}
    for name in seen:
        res = train_population(TrainConfig("InvertedPendulum-v5", name=name,
                                           eval_background=name == "background", **BG_KW),
                               tmp_path, progress=lambda s, r, n=name: seen[n].append(s))
        assert res["diverged"] == [True, False, False]
    assert seen["inline"] == seen["background"] == list(range(20, 161, 20))
    assert where[:8] == ["MainThread"] * 8
    assert len(where) == 16 and all(w.startswith("evaluate") for w in where[8:])
    a, b = _logs(tmp_path / "inline"), _logs(tmp_path / "background")
    assert a.keys() == b.keys() and len(a) == 6
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    ret = next(v for k, v in a.items() if "utd_1/" in str(k) and "return" in str(k))
    assert np.isnan(ret[-1, 1]) and np.isfinite(ret[0, 1])  # member 0: diverged midway


def test_background_evaluation_resumes_from_a_checkpoint_like_inline(tmp_path):
    """With checkpoints, each one waits for the evaluation in flight (a checkpoint holds every
    logged row): stopped at step 200 and resumed, the logs are the inline run's."""
    from calibration.learner.checkpoint import FILE

    _train_until(tmp_path, "cut", 200, eval_background=True)
    assert (tmp_path / "cut" / FILE).exists()
    res = train_population(TrainConfig("InvertedPendulum-v5", name="cut", eval_background=True,
                                       **CKPT_KW), tmp_path)
    assert res["resumed_from"] == [150]
    _train_until(tmp_path, "inline", 200)
    train_population(TrainConfig("InvertedPendulum-v5", name="inline", **CKPT_KW), tmp_path)
    a, b = _logs(tmp_path / "inline"), _logs(tmp_path / "cut")
    assert a.keys() == b.keys() and len(a) == 6
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("bf16", [False, True])
def test_frozen_actor_acts_as_the_actor_did_when_it_was_copied(bf16):
    pop = Population(SMALL, 3, [3, 5, 7], CPU, LRS, bf16=bf16)
    obs = torch.randn(3, SMALL.obs_dim)
    frozen = pop.frozen_actor()
    before = pop.act(obs, None)
    assert frozen.actor.data_ptr() != pop.actor.data_ptr()
    if bf16:  # its body on a copy of the bf16 copy, its head on the copy of the parameters
        assert frozen.actor_bf16.data_ptr() != pop.actor_bf16.data_ptr()
    for batch, noise in _batches(3, 16, SMALL.obs_dim, SMALL.act_dim, 4):
        pop.update(batch, noise, torch.ones(3, dtype=torch.bool))
    assert torch.equal(frozen.act(obs, None), before)
    assert not torch.equal(pop.act(obs, None), before)


def test_populations_of_one_calibration_draw_apart():
    """The device generator's seed (trainer.stream_seed) differs between the populations of a
    calibration that share their members' seeds (the minutes preset's w64 and w256 units,
    seeds 0-7 each, drew one stream when it was the sum of the seeds) and is the same for
    one configuration run two ways (the tests above compare such runs log for log)."""
    from dataclasses import replace

    from calibration.learner.trainer import stream_seed

    cfg = TrainConfig("Hopper-v5", steps=10_000, name="s1_w64", width=64, utds=[2.0] * 16,
                      seeds=list(range(8)) * 2, batch_sizes=[128] * 8 + [256] * 8,
                      batch_size=256)
    other = {stream_seed(replace(cfg, **kw)) for kw in (
        dict(width=256, name="s1_w256"), dict(utds=[1.0] * 16), dict(seeds=list(range(1, 17))),
        dict(batch_sizes=[256] * 16))}
    assert len(other) == 4 and stream_seed(cfg) not in other
    for kw in (dict(name="other"), dict(spans=False), dict(vector_env="threads"),
               dict(eval_background=True)):
        assert stream_seed(replace(cfg, **kw)) == stream_seed(cfg)


def test_threaded_envs_without_mujoco_step_whole_envs():
    """A reviewer's: PhysicsAhead.applies imported gymnasium's MuJoCo module, which refuses to
    import without mujoco: threaded Pendulum envs failed on a machine without it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['mujoco'] = None; import numpy as np; "
            "from calibration.learner.trainer import VectorEnvs; "
            "e = VectorEnvs('Pendulum-v1', [0, 1], threads=2); "
            "e.step(np.zeros((2, 1), np.float32)); print(type(e.vec).__name__, e.vec.ahead)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ThreadedEnvs None"


@pytest.mark.parametrize("obs, act, blocks, quantiles, width", [
    (51, 19, 2, 100, 512), (3, 1, 2, 10, 32), (11, 3, 1, 4, 96), (67, 21, 3, 1, 1024)])
def test_the_three_bronet_parameter_counts_agree(obs, act, blocks, quantiles, width):
    """A reviewer's: the critic's count is written three times (the learner's Layout, the
    fit's architecture polynomial, the advisor's BroNetShape for the exports); they must agree
    with the network the learner builds."""
    from advisor.integrations.critic import BroNetShape
    from calibration.architectures import bronet_params

    built = Population(AgentConfig(obs_dim=obs, act_dim=act, width=width, actor_width=16,
                                   critic_blocks=blocks, quantiles=quantiles), 1, [0], CPU)
    count = built.critic[0].numel()
    assert count == critic_params(width, obs, act, blocks, quantiles)
    assert count == bronet_params(width, obs + act, blocks, quantiles)
    assert count == BroNetShape(obs + act, blocks, quantiles).params(width)
