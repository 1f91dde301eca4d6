"""The prepared GPU scripts, on the CPU: their choices and their plumbing (no GPU figures)."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pick_compile import pick, projected  # noqa: E402


def _rates(eager, regions, update, setup=(1.0, 10.0, 60.0), cell="24x128"):
    return {cell: {"fused+graph": eager, "regions+graph": regions, "cmp+graph": update},
            f"{cell} setup_s": dict(zip(("fused+graph", "regions+graph", "cmp+graph"), setup))}


def test_pick_weighs_compile_time_against_the_updates_it_saves():
    # 24 members: 2,400 member-updates/s = 100 updates/s; 36,000 updates = 360 s eager
    times = projected(_rates(2400, 3000, 9600), "24x128", 36_000)
    assert times == pytest.approx({"none": 361.0, "regions": 298.0, "update": 150.0})
    assert pick(_rates(2400, 3000, 9600), "24x128", 36_000) == "update"
    # the same speed-up does not pay for a minute of compiling over 1,000 updates
    assert pick(_rates(2400, 3000, 9600), "24x128", 1_000) == "none"
    # less than 10% saved: eager (nothing to compile, nothing to go wrong)
    assert pick(_rates(2400, 2600, float("nan")), "24x128", 36_000) == "none"
    # a failed variant (nan) or a cell not measured never wins
    assert pick(_rates(2400, float("nan"), float("nan")), "24x128", 36_000) == "none"
    assert pick({}, "24x128", 36_000) == "none"
    assert pick(_rates(float("nan"), 3000, float("nan")), "24x128", 36_000) == "regions"


def test_pick_counts_the_spans_of_members_eager_and_regions_update_on():
    """With rounds on spans (24, 16, 8, 8 members per env step), eager and regions update
    fewer members in later rounds; the compiled whole update (no spans) updates all 24 each
    round. A span whose cell was not measured costs what all members cost (an upper bound)."""
    rates = _rates(2400, 3000, 4000)  # 24x128: 100, 125 and 167 updates/s
    rates["16x128"] = {"fused+graph": 2000.0, "regions+graph": 2400.0}
    rates["8x128"] = {"fused+graph": 1200.0, "regions+graph": 1500.0}
    # eager, per step: 24/2400 + 16/2000 + 2 x 8/1200 = 0.0313 s; 9,000 steps
    times = projected(rates, "24x128", 36_000, rounds=[24, 16, 8, 8])
    assert times["none"] == pytest.approx(1 + 9000 * (0.01 + 0.008 + 2 * 8 / 1200))
    assert times["update"] == pytest.approx(projected(rates, "24x128", 36_000)["update"])
    assert pick(rates, "24x128", 36_000) == "update"  # without spans the compiled one wins
    assert pick(rates, "24x128", 36_000, rounds=[24, 16, 8, 8]) != "update"
    # spans not measured: no cheaper than all members
    bare = _rates(2400, 3000, 4000)
    assert projected(bare, "24x128", 36_000, rounds=[24, 16, 8, 8]) == pytest.approx(
        {mode: t for mode, t in projected(bare, "24x128", 36_000).items()})


def test_gpu_check_pick_part_runs_and_falls_back_to_eager_without_a_gpu(tmp_path):
    """On the CPU the CUDA-graph variants are not measured: the part still runs end to end
    and picks `none`."""
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "PARTS": "pick",
           "BUDGET": "120", "PICK_CELL": "2 16 8"}
    res = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, text=True,
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "pick: MINUTES_COMPILE=none" in res.stdout
    assert json.loads((tmp_path / "pick.json").read_text()) == {}  # nothing measured


def test_gpu_check_envs_part_compares_the_ways_of_stepping_envs(tmp_path):
    """PARTS=envs: sync, threads stepping whole envs and physics ahead, each timed, into
    $OUT/envs.txt."""
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "PARTS": "envs",
           "BUDGET": "120", "ENVS_MEMBERS": "4"}
    res = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, text=True,
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    text = (tmp_path / "envs.txt").read_text()
    for way in ("sync", "2 threads, whole steps", "4 threads, whole steps",
                "2 threads, physics ahead (the trainer's)",
                "4 threads, physics ahead (the trainer's)"):
        assert re.search(rf"  {re.escape(way)}: \d+\.\d\d ms \(", text), way


def test_gpu_check_profile_part_profiles_the_cell_at_hoppers_sizes(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "PARTS": "profile",
           "BUDGET": "120", "PROFILE_CELL": "2 16 8"}
    res = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, text=True,
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    first = (tmp_path / "profile.txt").read_text().splitlines()
    head = next(line for line in first if line.startswith("M 2, width 16"))
    assert "batch 8" in head and "obs 11 act 3" in head and "time per update" in head


def test_minutes_stage_no_pack_trains_a_population_per_batch_size(tmp_path):
    """`--no-pack` (gpu_backends.sh ":nopack"): stage 1 of a grid that packs batch sizes, with
    packing off: one population per (width, batch size), not one per width."""
    script = [sys.executable, "benchmarks/minutes_stage.py"]
    from calibration.grid import PRESETS

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({**PRESETS["smoke"], "pack_batch_sizes": True}))
    res = subprocess.run([*script, "--grid", str(grid), "--device", "cpu", "--steps", "150",
                          "--n-jobs", "2", "--no-pack", "--out", str(tmp_path / "out")],
                         cwd=ROOT, text=True, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "batch sizes a population each" in res.stdout
    units = sorted(p.stem for p in (tmp_path / "out" / "units").iterdir())
    # packed, these would be s1_w16_bs32-64_utd1, s1_w32_bs32-64_utd1-2-4, s1_w64_bs32-64_utd1
    assert units == [f"s1_w{w}_bs{b}_utd{u}" for w, u in ((16, "1"), (32, "1-2-4"), (64, "1"))
                     for b in (32, 64)]
    # the stage on its own clock, and the CPU's utilisation over it (no nvidia-smi here)
    assert "stage 1, on the stage's clock: 6 populations" in res.stdout
    line = next(x for x in res.stdout.splitlines() if x.startswith("  stage 1 ("))
    assert re.search(r"\d+ samples: CPU busy \d+% \(median \d+%, 90th percentile \d+%\) of "
                     r"\d+ cores, GPU busy (not sampled|\d+%)", line), line
    assert (tmp_path / "out-utilisation.csv").read_text().startswith(
        "unix,cpu_busy,gpu_util,gpu_mem_mib")


def test_utilisation_sampler_sees_a_busy_core_and_keeps_its_rows_as_they_come(tmp_path,
                                                                           monkeypatch):
    """benchmarks/utilisation.py: a thread spinning in C (numpy) shows in the CPU column; no
    nvidia-smi leaves the GPU columns empty ('not sampled'); rows are on disk before the
    sampler stops; a stage's window picks its rows; the CLI summarises by stage."""
    import threading

    import benchmarks.utilisation as util

    monkeypatch.setattr(util.shutil, "which", lambda name: None)
    path = tmp_path / "u.csv"
    stop = threading.Event()

    def spin():
        a = np.ones((256, 256))
        while not stop.is_set():
            a @ a

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        with util.Sampler(path, every=0.2) as sampler:
            # the header is on disk as the block starts (CI once raced the thread's first write)
            assert path.read_text().splitlines() == [",".join(util.COLUMNS)]
            while len(path.read_text().splitlines()) < 6:  # header and 5 rows, mid-run
                time.sleep(0.05)
            assert sampler.thread.is_alive()
    finally:
        stop.set()
        spinner.join()
    rows = [r.split(",") for r in path.read_text().splitlines()[1:]]
    busy = [float(r[1]) for r in rows if r[1]]
    assert busy and all(0 <= b <= 1 for b in busy)
    assert max(busy) >= 0.9 / os.cpu_count()  # one core of the machine's, at least
    assert all(r[2] == "" and r[3] == "" for r in rows)
    text = util.summary(path)
    assert text.startswith(f"{len(rows)} samples: CPU busy ") and "GPU busy not sampled" in text
    t = [float(r[0]) for r in rows]
    assert util.summary(path, t[1], t[2]).startswith("2 samples")
    assert util.summary(path, t[-1] + 1) == "no samples"
    out = tmp_path / "out" / "units"
    out.mkdir(parents=True)
    for name, a, b in (("s1_w8_bs8_utd1", t[0], t[1]), ("s1_w16_bs8_utd1", t[0], t[2]),
                       ("s2_w8_bs8_utd1", t[2], t[-1])):
        (out / f"{name}.json").write_text(json.dumps(
            {"manifest": {"started_unix": a, "finished_unix": b}}))
    assert util.stage_windows(out.parent) == {"s1": (t[0], t[2]), "s2": (t[2], t[-1])}
    res = subprocess.run([sys.executable, "benchmarks/utilisation.py", str(path),
                          str(out.parent)], cwd=ROOT, text=True, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert [x.split(":")[0] for x in res.stdout.splitlines()] == [
        "whole run", f"stage 1 ({t[2] - t[0]:.0f} s)", f"stage 2 ({t[-1] - t[2]:.0f} s)"]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    res = subprocess.run([sys.executable, "benchmarks/utilisation.py", str(tmp_path / "bad.csv")],
                         cwd=ROOT, text=True, capture_output=True, timeout=60)
    assert res.returncode == 2 and "is not a utilisation CSV" in res.stderr


def test_minutes_stage_all_no_pack_calibrates_the_preset_unpacked(tmp_path, monkeypatch):
    """`--all --no-pack` (gpu_check.sh MINUTES_NOPACK=1): the whole calibration on the preset
    with packing off, from a grid file written beside the out-dir (steps applied once);
    `--all --no-spans` is refused (spans are a stage-1 comparison)."""
    import benchmarks.minutes_stage as minutes_stage
    import calibration.calibrate as cal
    from calibration.grid import load_grid, preset

    class Reached(Exception):
        pass

    seen = {}

    def calibrate(env_id, **kw):
        seen.update(kw)
        raise Reached

    monkeypatch.setattr(cal, "calibrate", calibrate)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["minutes_stage.py", "--all", "--no-pack", "--device",
                                      "cpu", "--steps", "3000", "--out", str(out)])
    with pytest.raises(Reached):
        minutes_stage.main()
    assert seen["grid_file"] == tmp_path / "out-grid.json" and seen["steps"] is None
    want = {**preset("minutes").with_overrides(steps=3000).model_dump(), "pack_batch_sizes": False}
    assert load_grid(seen["grid_file"]).model_dump() == want
    with pytest.raises(Reached):  # resuming the same run rewrites the same grid
        minutes_stage.main()
    monkeypatch.setattr(sys, "argv", ["minutes_stage.py", "--all", "--no-pack", "--device",
                                      "cpu", "--steps", "4000", "--out", str(out)])
    with pytest.raises(SystemExit) as exc:  # another grid is not written over the first's
        minutes_stage.main()
    assert exc.value.code == 2 and load_grid(seen["grid_file"]).model_dump() == want
    res = subprocess.run([sys.executable, "benchmarks/minutes_stage.py", "--all", "--no-spans",
                          "--device", "cpu"], cwd=ROOT, text=True, capture_output=True,
                         timeout=120)
    assert res.returncode == 2 and "--no-spans is for stage 1 alone" in res.stderr


def test_update_bytes_counts_fused_kernels_by_their_own_traffic():
    """benchmarks/update_bytes.py: the AdamW steps count 7 passes over each optimiser's buffer
    (critic, actor, temperature) and 2 over the target critic's, the loss one kernel; fusing
    the LayerNorm regions makes 21 forward kernels and 13 backward ones (the passes with
    gradients), each counted by its I/O, takes their ops out of the other elementwise group
    and leaves the other groups as they were."""
    from benchmarks.update_bytes import FUSED, REGIONS, REGIONS_BACKWARD, traffic
    from calibration.learner.agent import AgentConfig
    from calibration.learner.nets import Layout

    m, width, obs, act, batch = 3, 16, 5, 2, 8
    moved, ops = traffic(m, width, [batch], 4, obs, act)
    cfg = AgentConfig(obs_dim=obs, act_dim=act, width=width, quantiles=4)
    critic = 2 * Layout(obs + act, width, 4, cfg.critic_blocks).numel
    actor = Layout(obs, cfg.actor_width, 2 * act, cfg.actor_blocks).numel
    # 7 passes over each buffer, and the target's 2 in the critic's step (Polyak averaging)
    assert moved[FUSED["_masked_step"]] == 7 * 4 * m * (critic + actor + 1) + 2 * 4 * m * critic
    assert ops[FUSED["_masked_step"]] == 3 and ops[FUSED["loss_and_grad"]] == 1
    assert ops[REGIONS["norm"]] == 84  # 4 ops x 21 norms: 3 critic passes and 2 actor ones
    assert REGIONS_BACKWARD not in ops
    fused, fused_ops = traffic(m, width, [batch], 4, obs, act, regions=True)
    assert fused_ops[REGIONS["norm"]] == 21 and fused_ops[REGIONS_BACKWARD] == 13
    assert fused[REGIONS["norm"]] < moved[REGIONS["norm"]]

    def backward_io(groups, w):  # dy, x, dx; gain, bias and their gradients (float32)
        return 4 * (3 * groups * batch * w + 4 * groups * w)

    # with gradients: 2 critic passes (critic loss, actor loss) of 5 regions, 1 actor pass of 3
    assert fused[REGIONS_BACKWARD] == (10 * backward_io(2 * m, width)
                                       + 3 * backward_io(m, cfg.actor_width))
    other = "backward and other elementwise"
    assert fused_ops[other] < ops[other] and fused[other] < moved[other]
    for group in moved:
        if group not in (REGIONS["norm"], other):
            assert fused[group] == moved[group], group


def test_update_bytes_counts_autocasts_apart():
    """--amp: bf16 halves the matrix products' bytes, and each weight's cast (4 bytes read, 2
    written per value) is counted as a parameter's cast; without amp there are none."""
    from benchmarks.update_bytes import traffic

    plain, _ = traffic(3, 16, [8], 4, 5, 2)
    amp, amp_ops = traffic(3, 16, [8], 4, 5, 2, amp=True)
    assert not [g for g in plain if "bf16" in g]
    assert amp_ops["bf16 casts of parameters"] > 0 and amp_ops["bf16 casts of activations"] > 0
    assert amp["bf16 casts of parameters"] % 6 == 0
    assert amp["matrix products"] < 0.6 * plain["matrix products"]


def test_update_bytes_counts_bf16_copies_and_gradients():
    """--bf16: an AdamW step reads a bf16 gradient (2 bytes per value) and writes the bf16
    copies (2 each: the critic's and its target's, the actor's; the temperature has none), so
    38 bytes per critic value, 28 per actor value and temperature; the matrix products move
    half the bytes of float32 but for the heads' (float32: a little more than half); no weight
    is cast at its use."""
    from benchmarks.update_bytes import FUSED, traffic
    from calibration.learner.agent import AgentConfig
    from calibration.learner.nets import Layout

    m, width, obs, act = 3, 16, 5, 2
    plain, _ = traffic(m, width, [8], 4, obs, act)
    moved, _ = traffic(m, width, [8], 4, obs, act, bf16=True)
    cfg = AgentConfig(obs_dim=obs, act_dim=act, width=width, quantiles=4)
    critic = 2 * Layout(obs + act, width, 4, cfg.critic_blocks).numel
    actor = Layout(obs, cfg.actor_width, 2 * act, cfg.actor_blocks).numel
    assert moved[FUSED["_masked_step"]] == m * (38 * critic + 28 * actor + 28)
    assert 0.5 < moved["matrix products"] / plain["matrix products"] < 0.55
    assert "bf16 casts of parameters" not in moved


def test_rescale_critic_loss_turns_old_logs_into_each_members_mean(tmp_path):
    """benchmarks/rescale_critic_loss.py: logs as the learner wrote them before session 13 (a
    member's loss sum over the population's rounds: utd / highest utd times its mean) become
    the logs the learner writes now, bit for bit up to rounding; a second run leaves them be;
    fractional utds are refused."""
    from benchmarks.rescale_critic_loss import rescale_run
    from calibration.learner import TrainConfig, train_population

    kw = dict(steps=60, utds=[1, 4], seeds=[0, 1], width=8, actor_width=8, batch_size=8,
              quantiles=3, random_steps=40, eval_every=20, device="cpu", vector_env="sync",
              checkpoint_s=None)
    train_population(TrainConfig("InvertedPendulum-v5", name="run", **kw), tmp_path)
    run = tmp_path / "run"
    now = {p: np.load(p) for p in run.rglob("critic_loss/*.npy")}
    assert len(now) == 2
    for path, logs in now.items():  # as the learner logged them before
        utd = float(path.parent.parent.parent.name.removeprefix("utd_"))
        old = logs.copy()
        old[:, 1:] *= utd / 4
        np.save(path, old)
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["critic_loss"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert sorted(f for _, f in rescale_run(run)) == [1.0, 4.0]
    for path, logs in now.items():
        np.testing.assert_allclose(np.load(path), logs, rtol=1e-12, equal_nan=True)
    assert rescale_run(run) == []  # its manifest now says what its critic_loss is
    manifest = json.loads((run / "manifest.json").read_text())
    assert "rescaled" in json.dumps(manifest)
    del manifest["critic_loss"]
    manifest["config"]["utds"] = [0.5, 4]
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="not all whole numbers"):
        rescale_run(run)


def test_minutes_stage_bf16_trains_every_population_on_bf16_copies(tmp_path):
    """`--bf16` (gpu_backends.sh ":bf16", gpu_check.sh MINUTES_BF16=1) reaches every
    population's TrainConfig, and the header says so."""
    from calibration.grid import PRESETS

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({**PRESETS["smoke"], "widths": [16, 32], "anchor_width": 16}))
    res = subprocess.run([sys.executable, "benchmarks/minutes_stage.py", "--grid", str(grid),
                          "--device", "cpu", "--steps", "120", "--n-jobs", "1", "--bf16",
                          "--out", str(tmp_path / "out")],
                         cwd=ROOT, text=True, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "networks bf16 weight copies" in res.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "out" / "units").iterdir()]
    assert records and all(r["manifest"]["config"]["bf16"] is True for r in records)


def test_stage_returns_compares_the_shipped_stage_runs_config_by_config():
    """benchmarks/stage_returns.py on the stage-1 runs in runs/: the configs all sets share,
    each set's mean over them equal to the runs' own, and a set against itself zero apart."""
    from calibration.archives import read_runs

    script = [sys.executable, "benchmarks/stage_returns.py"]
    res = subprocess.run(script, cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("10 configs in every set")
    base = read_runs(ROOT / "runs" / "bro-torch-Hopper-v5-minutes.tgz")
    stage1 = [r for r in base if (r.width, r.batch_size) in
              {(w, b) for w in (64, 128, 256) for b in (128, 256)}]
    final = np.mean([r.values["return"][-1].mean() for r in stage1])
    assert f"[0] final {final:6.1f}" in res.stdout
    tgz = ROOT / "runs" / "stage1-h100-2026-11-28.tgz"
    res = subprocess.run(script + [f"a={tgz}::regions-bf16", f"b={tgz}::regions-bf16"], cwd=ROOT,
                         text=True, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1].count("( +0.0 ±") == 2
    for spec, says in ((f"a={tgz}", "holds the same run twice"),
                       (f"a={tgz}::nope", "has no folder 'nope'; its folders: regions-bf16, "),
                       ("a=runs/nope.tgz::x", "No such file")):
        res = subprocess.run(script + [spec], cwd=ROOT, text=True, capture_output=True,
                             timeout=120)
        assert res.returncode == 2 and says in res.stderr.splitlines()[-1], res.stderr
        assert "Traceback" not in res.stderr
