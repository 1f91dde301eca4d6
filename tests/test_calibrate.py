"""`advisor calibrate`: grid -> runs -> fit file -> recommend, resume after SIGKILL, backends."""

import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("gymnasium")

import gymnasium as gym  # noqa: E402

import advisor  # noqa: E402
from advisor.cli import main  # noqa: E402
from advisor.errors import AdvisorError  # noqa: E402
from calibration.grid import (  # noqa: E402
    GridError,
    Unit,
    load_grid,
    load_grid_dict,
    preset,
    stage1_units,
)
from calibration.runner import prepare_out_dir, run_units  # noqa: E402

ENV = "InvertedPendulum-v5"
# The smoke grid in runs of 300 env steps (60 of them random): the whole pipeline, stages,
# fit and resume, in about 70 s on 2 cores where the preset's 1,000 steps take about 180.
CMD = [sys.executable, "-m", "advisor.cli", "calibrate", "--env", ENV, "--preset", "smoke",
       "--steps", "300", "--device", "cpu", "--quiet", "--n-boot", "20", "--n-jobs", "2"]


def _calibrate(out: Path, timeout=900):
    return subprocess.run(CMD + ["--out-dir", str(out)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One uninterrupted smoke calibration; returns (out_dir, fit text)."""
    out = tmp_path_factory.mktemp("calib") / "run"
    res = _calibrate(out)
    assert res.returncode == 0, res.stderr[-2000:]
    fit_path = Path(res.stdout.strip().splitlines()[-1])
    return out, fit_path.read_text(), fit_path.name


@pytest.mark.slow
def test_smoke_calibration_gives_a_fit_that_recommend_accepts(smoke):
    out, text, name = smoke
    fit = advisor.load_fit(str(out / name))
    assert fit.id == f"bro-torch/{ENV}"
    assert fit.model.batch_size.source == "fitted"
    assert fit.model.goodness_of_fit.n_configs == 9
    notes = " ".join(fit.model.provenance.notes)
    assert "smoke" in notes and "seeds [0, 1]" in notes and "cpu" in notes
    assert "stage 1: 6 populations" in notes and "stage 2: " in notes
    assert "batch sizes packed" not in notes  # smoke does not pack
    assert "torch.compile of the update: stage 1 none, stage 2 none" in notes
    assert "member-updates, " in notes and " s (" not in notes  # no times: resume-proof
    assert "fit checks passed: " in notes or "fit check FAILED: " in notes  # calibration.checks
    rec = advisor.recommend(advisor.Budget(data=3 * fit.data_to_target(4, 4e4)),
                            fit=str(out / name))
    assert rec.batch_size >= 16 and rec.predicted_data > 0
    res = CliRunner().invoke(main, ["validate", str(out / name)])
    assert res.exit_code == 0


@pytest.mark.slow
def test_stage_2_says_what_it_costs_on_this_cpu_at_its_batch_sizes(smoke, tmp_path,
                                                                    monkeypatch):
    """The note before stage 1 prices stage 2 at the grid's largest batch size (53 min for the
    cpu preset, which takes about 45); once B~ is fitted, stage 2's line says what its
    untrained populations cost at their own batch sizes: nothing on a GPU or when all are done."""
    import calibration.calibrate as cal
    import calibration.cost as cost
    from calibration.grid import stage2_units

    monkeypatch.setattr(cost, "seconds_per_member_update", lambda *a, **kw: 1e-3)
    grid = preset("smoke")
    plan = cal._Plan(fit_id="bro/x", grid=grid, out=tmp_path, fit_path=tmp_path / "x.json",
                     device="cpu", obs_dim=4, act_dim=1)
    units = stage2_units(grid, lambda u, w: 32)
    total = sum(cost.member_updates(grid, u) for u in units)
    assert total == 33_600  # 3 widths x 7 updates per step x 2 seeds x 800 learning steps
    assert cal._cpu_stage_time(plan, units, 1) == (
        f"; about 1 min on this CPU for its {total:,} member-updates (timed here at these "
        "batch sizes; env steps not counted)")
    assert cal._cpu_stage_time(dataclasses.replace(plan, device="cuda"), units, 1) == ""
    out = smoke[0]
    done = [Unit(**json.loads(f.read_text())["unit"]) for f in (out / "units").glob("s2_*")]
    assert cal._cpu_stage_time(dataclasses.replace(plan, out=out), done, 1) == ""


RERUN = ["calibrate", "--env", ENV, "--preset", "smoke", "--steps", "300", "--device", "cpu"]


@pytest.mark.slow
def test_rerun_skips_finished_units(smoke, tmp_path, monkeypatch):
    out, text, name = smoke
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    logs = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (copy / "runs").rglob("*.npy")}
    markers = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (copy / "units").glob("*.json")}
    import calibration.runner as runner

    def trained(*a, **kw):
        raise AssertionError("a finished unit was trained again")

    monkeypatch.setattr(runner, "run_unit", trained)
    res = CliRunner().invoke(main, [*RERUN, "--quiet", "--n-boot", "20", "--out-dir", str(copy)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in logs} == logs
    assert {p: (p.stat().st_mtime_ns, p.read_bytes())
            for p in (copy / "units").glob("*.json")} == markers
    # without --quiet, each stage says that it trains nothing
    res = CliRunner().invoke(main, [*RERUN, "--n-boot", "20", "--out-dir", str(copy)])
    assert res.exit_code == 0, (res.output, res.exception)
    for stage in (1, 2):
        n = sum(p.name.startswith(f"s{stage}_") for p in markers)
        assert f"stage {stage}: {n} populations" in res.output
        assert f"; all {n} trained earlier in {copy}: nothing to train" in res.output
    assert "B~ was fitted by an earlier run" not in text  # the same --n-boot: nothing to say
    # another --n-boot refits D_J with it but keeps B~ (stage 2 trained at its batch sizes):
    # the recorded command would not give this B~ on a new out-dir, and the notes say so
    res = CliRunner().invoke(main, [*RERUN, "--quiet", "--n-boot", "10", "--out-dir", str(copy)])
    assert res.exit_code == 0, (res.output, res.exception)
    notes = advisor.load_fit(str(copy / name)).model.provenance.notes
    assert any(n.startswith("B~ was fitted by an earlier run on this out-dir, with --n-boot 20")
               and n.endswith("fits B~ with --n-boot 10") for n in notes), notes
    (copy / "units" / sorted(markers)[0].name).unlink()
    res = CliRunner().invoke(main, [*RERUN, "--quiet", "--n-boot", "20", "--out-dir", str(copy)])
    assert res.exit_code != 0  # the one unit left to train reaches run_unit (patched)


@pytest.mark.slow
def test_sigkill_then_resume_loses_no_unit_and_gives_the_same_fit(smoke):
    out, text, name = smoke
    # Same out-dir path as the uninterrupted run, so the files must match byte for byte.
    shutil.rmtree(out)
    proc = subprocess.Popen(CMD + ["--out-dir", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and len(list((out / "units").glob("*.json"))) < 2:
        time.sleep(0.2)
    finished = {p.name: p.read_text() for p in (out / "units").glob("*.json")}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(finished) >= 2
    res = _calibrate(out)
    assert res.returncode == 0, res.stderr[-2000:]
    for unit, record in finished.items():  # finished units were kept, not retrained
        assert (out / "units" / unit).read_text() == record
    assert (out / name).read_text() == text
    # The command the fit file records reproduces it byte for byte.
    recorded = advisor.load_fit(str(out / name)).model.provenance.command
    argv = shlex.split(recorded)
    assert argv[:2] == ["advisor", "calibrate"] and "--created" in argv
    (out / name).unlink()
    res = subprocess.run([sys.executable, "-m", "advisor.cli", *argv[1:], "--quiet"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / name).read_text() == text


def _stop_after_a_unit(cmd: list[str], out: Path, sig) -> tuple[int, str]:
    """Run `cmd`, send it `sig` once a unit has finished; its exit status and stderr."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "units").glob("*.json")):
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_sigterm_or_ctrl_c_says_what_is_kept_in_one_line(tmp_path, sig, code, word):
    """A cluster's SIGTERM (or Ctrl-C) ends calibrate with one line naming what is kept and how
    to resume, no traceback and no leaked-semaphore warnings from the workers."""
    out = tmp_path / "run"
    returncode, err = _stop_after_a_unit(CMD + ["--out-dir", str(out)], out, sig)
    assert returncode == code, err[-2000:]
    kept = len(list((out / "units").glob("*.json")))
    assert kept >= 1
    lines = err.strip().splitlines()
    assert lines == [f"error: {word}: {kept} finished population(s) kept in {out}; run the same "
                     "command again to resume"], err[-2000:]
    assert (out / "resource_tracker.log").is_file()  # where loky's tracker says what it removed


def test_a_worker_killed_from_outside_is_one_line_saying_what_is_kept(tmp_path):
    """A worker process killed (the OOM killer's SIGKILL, a kill of its pid) ended calibrate
    with joblib's TerminatedWorkerError traceback and nothing said of what was kept."""
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "run"
    proc = subprocess.Popen(CMD + ["--out-dir", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "units").glob("*.json")):
        time.sleep(0.2)
    workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
               if "popen_loky_posix" in " ".join(c.cmdline())]
    assert workers
    workers[0].send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    kept = len(list((out / "units").glob("*.json")))
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err[-2000:]
    assert lines[0].startswith("error: a training worker process was killed (exit codes {"), err
    assert lines[0].endswith(f"): out of memory, or a kill from outside; {kept} finished "
                             f"population(s) kept in {out}; run the same command again to "
                             "resume"), err


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_with_populations_in_threads_is_one_line_not_an_abort(tmp_path, sig, code):
    """A hostile round: with --backend threads, SIGTERM or Ctrl-C printed the line, then the
    interpreter was torn down under the training threads: "terminate called without an
    active exception", exit 134. A rerun resumes and finishes (runs of 300 steps: the rerun
    trains all but a unit of the grid)."""
    out = tmp_path / "run"
    cmd = [*CMD, "--backend", "threads", "--n-jobs", "2", "--out-dir", str(out)]
    returncode, err = _stop_after_a_unit(cmd, out, sig)
    assert returncode == code, err[-2000:]
    assert "terminate called" not in err
    assert err.strip().splitlines()[-1].startswith(
        f"error: {'terminated' if code == 143 else 'interrupted'}: ")
    if sig == signal.SIGTERM:
        res = subprocess.run(cmd[:-2] + ["--quiet", "--out-dir", str(out)], text=True,
                             capture_output=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]


def test_resource_tracker_writes_to_the_out_dir_not_the_terminal(tmp_path):
    """loky's resource tracker outlives the calibration by a moment; its warnings about
    semaphores a stopped run left (removed by it all the same) go to OUT/resource_tracker.log.
    Here a process leaves a semaphore behind on purpose (exit without clean-up)."""
    code = ("import os, sys; from pathlib import Path\n"
            "from calibration.runner import _tracker_output_to\n"
            "from joblib.externals.loky.backend.context import get_context\n"
            "_tracker_output_to(Path(sys.argv[1]))\n"
            "lock = get_context('loky').Lock()\n"
            "import multiprocessing\n"  # the standard library's tracker (torch.compile's pools)
            "lock2 = multiprocessing.get_context('spawn').Lock()\n"
            "print('started', flush=True); os._exit(0)\n")
    log = tmp_path / "resource_tracker.log"
    res = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout == "started\n", res.stderr
    deadline = time.time() + 30  # the tracker ends when the last writer is gone
    while time.time() < deadline and not ("leaked semlock" in log.read_text()
                                          and "leaked semaphore" in log.read_text()):
        time.sleep(0.1)
    assert "leaked semlock" in log.read_text() and "leaked semaphore" in log.read_text()
    assert "leaked" not in res.stderr


def test_ray_backend_runs_units_on_a_local_ray(tmp_path):
    ray = pytest.importorskip("ray")
    grid = load_grid_dict(dict(preset("smoke").model_dump(), steps=300, random_steps=100,
                               eval_every=100))
    units = [Unit(stage=1, width=16, batch_size=32, utds=[1.0], seeds=[0]),
             Unit(stage=1, width=16, batch_size=64, utds=[1.0], seeds=[0])]
    from calibration.runner import prepare_out_dir

    prepare_out_dir(tmp_path, grid, ENV)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        records = run_units(ENV, grid, units, tmp_path, device="cpu", backend="ray", n_jobs=2,
                            quiet=True)
    finally:
        ray.shutdown()
    assert [r["unit"]["batch_size"] for r in records] == [32, 64]
    assert all((tmp_path / "units" / f"{u.id}.json").exists() for u in units)


def test_threads_backend_trains_the_same_runs_as_processes(tmp_path):
    """Populations as threads of one process (one CUDA stream each on a GPU) give the runs
    that one process per population gives: same logs, bit for bit, on the CPU."""
    import numpy as np

    from calibration.archives import read_runs
    from calibration.runner import prepare_out_dir

    grid = load_grid_dict(dict(preset("smoke").model_dump(), steps=300, random_steps=100,
                               eval_every=100))
    units = [Unit(stage=1, width=16, batch_size=32, utds=[1.0, 2.0], seeds=[0, 0]),
             Unit(stage=1, width=32, batch_size=32, utds=[1.0], seeds=[1])]
    logs = {}
    for backend in ("loky", "threads"):
        out = tmp_path / backend
        prepare_out_dir(out, grid, ENV)
        lines = []
        records = run_units(ENV, grid, units, out, device="cpu", backend=backend, n_jobs=2,
                            echo=lines.append)
        assert [r["unit"]["width"] for r in records] == [16, 32]
        assert any("--backend loky runs them in parallel" in x for x in lines) == (
            backend == "threads")
        assert all(r["manifest"]["finished_unix"] >= r["manifest"]["started_unix"]
                   for r in records)
        # Both ways the two populations train at once (not one after the other in-process).
        (a0, a1), (b0, b1) = sorted((r["manifest"]["started_unix"], r["manifest"]["finished_unix"])
                                    for r in records)
        assert b0 < a1, (a0, a1, b0, b1)
        logs[backend] = [run.values for u in units
                         for run in read_runs(out / "runs" / u.id, env=ENV)]
    assert len(logs["loky"]) == len(logs["threads"]) == 3
    for a, b in zip(logs["loky"], logs["threads"]):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_compile_option_reaches_each_population(tmp_path, monkeypatch):
    import calibration.learner.trainer as trainer
    from calibration.runner import prepare_out_dir

    seen = []

    def fake_train(cfg, out_dir, progress=None):
        seen.append(cfg.compile)
        return {"device_name": "cpu", "versions": {}, "config": {"steps": cfg.steps},
                "member_updates": 0, "wall_time_s": 1.0}

    monkeypatch.setattr(trainer, "train_population", fake_train)
    grid = preset("smoke")
    unit = Unit(stage=1, width=16, batch_size=32, utds=[1.0], seeds=[0])
    for compile in ("none", "regions", "update"):
        out = tmp_path / compile
        prepare_out_dir(out, grid, ENV)
        run_units(ENV, grid, [unit], out, device="cpu", n_jobs=1, quiet=True, compile=compile)
    assert seen == ["none", "regions", "update"]
    from calibration.calibrate import _command

    def line(compile):
        return _command(ENV, "bro", "smoke", None, None, None, "cuda", "out", None, 1e10, 100,
                        "2026-11-26", compile=compile)

    assert "--device cuda --compile update --out-dir out" in line(True)
    assert "--device cuda --compile regions --out-dir out" in line("regions")
    assert "--compile" not in line("none") + line(False)
    bf16 = _command(ENV, "bro", "smoke", None, None, None, "cuda", "out", None, 1e10, 100,
                    "2026-11-26", compile="regions", bf16=True)
    assert "--compile regions --bf16 --out-dir out" in bf16 and "--bf16" not in line("regions")


@pytest.mark.parametrize("option", ["eval_background", "bf16"])
def test_benchmark_options_reach_each_population(tmp_path, monkeypatch, option):
    """calibrate(eval_background=True) and calibrate(bf16=True) -> run_units -> each
    population's TrainConfig."""
    import calibration.calibrate as cal
    import calibration.learner.trainer as trainer
    from calibration.runner import prepare_out_dir

    seen = []
    monkeypatch.setattr(trainer, "train_population", lambda cfg, out_dir, progress=None: (
        seen.append(getattr(cfg, option)) or {"device_name": "cpu", "versions": {},
                                              "config": {"steps": cfg.steps},
                                              "member_updates": 0, "wall_time_s": 1.0}))
    grid = preset("smoke")
    unit = Unit(stage=1, width=16, batch_size=32, utds=[1.0], seeds=[0])
    for flag in (False, True):
        out = tmp_path / str(flag)
        prepare_out_dir(out, grid, ENV)
        run_units(ENV, grid, [unit], out, device="cpu", n_jobs=1, quiet=True,
                  **{option: flag})
    assert seen == [False, True]

    class Reached(Exception):
        pass

    def stop(*args, **kwargs):
        seen.append(kwargs[option])
        raise Reached

    monkeypatch.setattr(cal, "run_units", stop)
    with pytest.raises(Reached):
        cal.calibrate(ENV, out_dir=tmp_path / "cal", device="cpu", quiet=True, **{option: True})
    assert seen[-1] is True
    with pytest.raises(cal.CalibrationError, match=f"{option} must be bool, got 'no'"):
        cal.calibrate(ENV, out_dir=tmp_path / "cal2", device="cpu", quiet=True,
                      **{option: "no"})


def test_cost_counts_member_updates_and_lays_units_on_the_workers(monkeypatch):
    from calibration import cost

    grid = preset("minutes")
    pole = next(u for u in stage1_units(grid) if u.width == 128)
    assert cost.member_updates(grid, pole) == (1 + 2 + 4) * 16 * 9_000  # 48 members
    calls = []
    monkeypatch.setattr(cost, "seconds_per_member_update",
                        lambda g, w, b, o, a: calls.append((w, b)) or 1e-3 * w / 64)
    units = stage1_units(grid)
    timed = {}
    one = cost.cpu_seconds(grid, units, 11, 3, 1, timed)
    assert one == pytest.approx(sum(cost.member_updates(grid, u) * 1e-3 * u.width / 64
                                    for u in units))
    three = cost.cpu_seconds(grid, units, 11, 3, 3, timed)
    assert three == pytest.approx(cost.member_updates(grid, pole) * 2e-3)  # the long pole
    assert sorted(calls) == [(64, 256), (128, 256), (256, 256)]  # each shape timed once
    assert [cost.duration(s) for s in (20, 1500, 3 * 3600, 4 * 86400)] == [
        "about 1 min", "about 25 min", "about 3 h", "about 4 days"]


def test_a_slow_cpu_calibration_says_how_long_before_it_starts(tmp_path, monkeypatch):
    """On the CPU, a grid whose updates alone take over SLOW_CPU_S gets one line first, from
    updates timed here; the smoke preset does not."""
    import calibration.calibrate as cal

    class Reached(Exception):
        pass

    monkeypatch.setattr(cal, "run_units", lambda *a, **kw: (_ for _ in ()).throw(Reached()))
    notes = {}
    for name in ("minutes", "smoke"):
        lines = []
        with pytest.raises(Reached):
            cal.calibrate("Hopper-v5", out_dir=tmp_path / name, device="cpu", preset_name=name,
                          echo=lines.append)
        notes[name] = [x for x in lines if x.startswith("note: on this CPU")]
    assert notes["smoke"] == [] and len(notes["minutes"]) == 1
    # stage 1's 1,584,000 and stage 2's 1,512,000 (3 x 3 configs x 8 seeds x 7 x 9,000 / 3)
    assert "the 3,096,000 member-updates of this calibration take about" in notes["minutes"][0]
    assert "one member-update at width 256, batch 256 took" in notes["minutes"][0]
    assert "--preset cpu makes a real fit on a CPU" in notes["minutes"][0]  # a new user's
    lines = []
    with pytest.raises(Reached):
        cal.calibrate("Hopper-v5", out_dir=tmp_path / "q", device="cpu", preset_name="minutes",
                      echo=lines.append, quiet=True)
    # --quiet silences progress, not this warning (a hostile round: training started unwarned)
    assert len([x for x in lines if x.startswith("note: on this CPU")]) == 1, lines


def test_compile_modes_are_checked_and_old_booleans_still_read():
    from calibration.learner.trainer import LearnerError, TrainConfig

    assert TrainConfig(ENV, 10, [1], [0], compile=True).compile == "update"
    assert TrainConfig(ENV, 10, [1], [0], compile=False).compile == "none"
    with pytest.raises(LearnerError, match="compile must be one of none, regions, update, got "
                                           "'fast'"):
        TrainConfig(ENV, 10, [1], [0], compile="fast")
    with pytest.raises(LearnerError, match="compile must be one of"):
        TrainConfig(ENV, 10, [1], [0], compile=["update"])


def test_mps_daemon_is_found_by_its_control_pipe(tmp_path, monkeypatch):
    from calibration.runner import mps_running

    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path))
    assert not mps_running()
    os.mkfifo(tmp_path / "control")
    assert mps_running()


def test_time_left_lays_the_remaining_units_on_the_workers():
    """The H100 run of `minutes` stage 1 (before it packed batch sizes): six populations at
    once; when the first 8-member one ended after 262 s, the two 24-member ones had about
    3 x 262 - 262 s to go."""
    from calibration.runner import _Progress

    grid = load_grid_dict(dict(preset("minutes").model_dump(), pack_batch_sizes=False))
    units = stage1_units(grid)
    sizes = sorted(len(u.seeds) for u in units)
    assert sizes == [8, 8, 8, 8, 24, 24]
    small = next(u for u in units if len(u.seeds) == 8)
    lines = []
    for n_jobs, expected in ((8, 3 * 262.0 - 262.0), (1, (4 + 2 * 3) * 262.0 - 262.0)):
        progress = _Progress(len(units), 0, units, grid, False, lines.append, n_jobs)
        assert progress.time_left(0.0) is None and lines[-1].endswith("ended or logged twice")
        progress.finished[small.id] = 262.0
        assert progress.time_left(262.0) == pytest.approx(expected)
    progress.update({"unit": small.model_dump(mode="json"),
                     "manifest": {"config": {"steps": grid.steps}, "wall_time_s": 262.0}})
    assert "min left" in lines[-1]


def test_stage_summary_reads_the_manifests():
    from calibration.calibrate import stage_summary

    def record(seeds, updates, start, end):
        return {"unit": {"seeds": seeds},
                "manifest": {"member_updates": updates, "config": {"steps": 1000},
                             "device_name": "NVIDIA H100 80GB HBM3", "wall_time_s": end - start,
                             "started_unix": start, "finished_unix": end}}

    line = stage_summary("stage 1", [record([0, 1], 4000, 100.0, 110.0),
                                     record([0], 1000, 105.0, 120.0)])
    assert line == ("stage 1: 2 populations, 5,000 member-updates, 3,000 env steps in 20 s "
                    "(from the first population's start to the last one's end) = 250 "
                    "member-updates/s on NVIDIA H100 80GB HBM3")
    timed = record([0], 1000, 0.0, 10.0)
    timed["manifest"]["phase_s"] = {"act": 1.0, "update": 6.0, "env": 2.0, "store": 0.0,
                                    "eval_log": 1.0}
    assert stage_summary("s", [timed]).endswith(
        "; time by phase, summed over populations: act 10%, update 60%, env 20%, store 0%, "
        "eval_log 10%")
    old = record([0], 1000, 0.0, 8.0)
    del old["manifest"]["started_unix"]
    assert "in 8 s (summed over populations) = 125 member-updates/s" in stage_summary("s", [old])
    assert stage_summary("s", [old], timing=False) == (
        "s: 1 population, 1,000 member-updates, 1,000 env steps on NVIDIA H100 80GB HBM3")
    # a hostile round: a stage finished in a second run of the command, an hour later, gave
    # "in 3,673 s ... = 2 member-updates/s"; across runs (or a resumed population) no rate
    first, second = record([0], 1000, 0.0, 10.0), record([0], 1000, 3600.0, 3610.0)
    first["run"], second["run"] = "11-0.0", "12-3600.0"
    assert "member-updates/s" in stage_summary("s", [first, record([0], 1000, 5.0, 9.0)])
    gap = stage_summary("s", [first, second])
    assert gap.endswith("in 3,610 s (from the first population's start to the last one's end, "
                        "across an interruption: not a training time) on NVIDIA H100 80GB HBM3")
    resumed = record([0], 1000, 0.0, 100.0)
    resumed["manifest"]["resumed_from"] = [500]
    assert "across an interruption" in stage_summary("s", [resumed])
    assert "member-updates/s" not in stage_summary("s", [resumed])


def test_stage1_design_is_the_factorised_grid():
    grid = preset("smoke")
    units = stage1_units(grid)
    pairs = {(u.width, u.batch_size, utd) for u in units for utd in u.utds}
    expected = ({(grid.anchor_width, b, u) for b in grid.batch_sizes for u in grid.utds}
                | {(w, b, grid.anchor_utd) for b in grid.batch_sizes for w in grid.widths})
    assert pairs == expected


@pytest.mark.parametrize("args, needle", [
    (["--env", "NoSuchEnv-v0"], "unknown or unavailable"),
    (["--env", "CartPole-v1"], "continuous"),
    (["--env", ENV, "--device", "cuda"], "no CUDA GPU"),
])
def test_bad_calibrate_input_exits_2(args, needle, tmp_path):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = CliRunner().invoke(main, ["calibrate", *args, "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


class _Env(gym.Env):
    """A gymnasium env whose spaces or API a user got wrong (a hostile tester's list)."""

    def __init__(self, act_shape=(2,), obs_shape=(3,), low=-1.0, old_api=False, reward=0.0,
                 dict_obs=False):
        self.action_space = gym.spaces.Box(low, 1.0, act_shape)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, obs_shape)
        if dict_obs:
            self.observation_space = gym.spaces.Dict({"x": self.observation_space})
        self.old_api, self.reward = old_api, reward

    def reset(self, seed=None, options=None):
        obs = self.observation_space.sample()
        return obs if self.old_api == "reset" else (obs, {})

    def step(self, action):
        obs = self.observation_space.sample()
        return ((obs, 0.0, False, {}) if self.old_api == "step"
                else (obs, self.reward, False, False, {}))

    def close(self):
        pass


@pytest.mark.parametrize("kwargs, needle", [
    (dict(act_shape=()), "non-empty 1-D Box"),  # was an IndexError traceback
    (dict(act_shape=(2, 2)), "non-empty 1-D Box"),  # a worker's broadcasting traceback
    (dict(low=-np.inf), "finite bounds"),  # trained on NaN actions
    (dict(obs_shape=(0,)), "non-empty vector"),  # a worker's ZeroDivisionError
    (dict(old_api="reset"), "gymnasium API"),
    (dict(old_api="step"), "gymnasium API"),
    # with gymnasium's env checker on, its coloured WARN line came above our one line
    (dict(old_api="reset", env_checker=True), "gymnasium API"),
    # a hostile round: trained a whole stage, then "every member diverged"
    (dict(reward=float("nan")), "returned the reward nan at its first step"),
    (dict(reward="high"), "returned the reward 'high' at its first step"),
    (dict(dict_obs=True), "a Dict observation space; the learner needs a flat non-empty vector "
                          "(a 1-D Box); flatten it"),  # said "of shape None"
])
def test_envs_the_learner_cannot_drive_are_refused_before_training(tmp_path, kwargs, needle):
    env_id = f"Hostile{abs(hash(str(kwargs)))}-v0"
    kwargs = dict(kwargs)
    checked = kwargs.pop("env_checker", False)  # gymnasium.register's default: on
    gym.register(id=env_id, entry_point=lambda **_: _Env(**kwargs),
                 disable_env_checker=not checked, order_enforce=checked)
    try:
        res = CliRunner().invoke(main, ["calibrate", "--env", env_id, "--preset", "smoke",
                                        "--device", "cpu", "--out-dir", str(tmp_path / "o")])
    finally:
        gym.registry.pop(env_id, None)
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert needle in res.output
    assert not (tmp_path / "o" / "runs").exists()


class _FailingEnv(_Env):
    """A simulator that raises mid-run (after the check's first steps)."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps > 60:
            raise RuntimeError("boom in step\nsecond line")
        return super().step(action)


def test_an_env_that_raises_mid_run_gives_one_line_and_its_traceback_is_kept(tmp_path):
    """A hostile tester's: an env whose step raised after the pre-run check printed 112 lines
    of joblib traceback and exited 1, saying nothing of what was kept."""
    env_id = "FailingMidRun-v0"
    gym.register(id=env_id, entry_point=_FailingEnv, disable_env_checker=True,
                 order_enforce=False)
    out = tmp_path / "o"
    try:
        res = CliRunner().invoke(main, ["calibrate", "--env", env_id, "--preset", "smoke",
                                        "--device", "cpu", "--n-jobs", "1", "--quiet",
                                        "--steps", "300", "--out-dir", str(out)])
    finally:
        gym.registry.pop(env_id, None)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error: ")]
    assert "stopped at an error in training: RuntimeError: boom in step second line (" in line
    assert "test_calibrate.py:" in line and "in step)" in line  # where it was raised
    assert "0 finished population(s) kept" in line and "run the same command again" in line
    (log,) = (out / "errors").glob("*.txt")
    assert f"its traceback is in {log}" in line
    assert "Traceback" in log.read_text() and "boom in step" in log.read_text()


@pytest.mark.slow
def test_an_env_raising_under_the_threads_backend_exits_2_not_abort(tmp_path):
    """A reviewer's: with --backend threads the other populations' threads still trained when
    the interpreter was torn down after the one-line error: exit 134 ("terminate called
    without an active exception")."""
    (tmp_path / "raising_env.py").write_text(
        "import gymnasium as gym, numpy as np, os\n"
        "class E(gym.Env):\n"
        "    def __init__(self):\n"
        "        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,))\n"
        "        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,))\n"
        "        self.n = 0\n"
        "    def reset(self, seed=None, options=None):\n"
        "        return np.zeros(3, np.float32), {}\n"
        "    def step(self, a):\n"
        "        self.n += 1\n"
        "        if self.n > 120 and os.environ.get('RAISE'):\n"
        "            raise RuntimeError('boom in step')\n"
        "        return np.zeros(3, np.float32), 0.0, False, self.n % 50 == 0, {}\n"
        "gym.register('Raising-v0', entry_point=E)\n")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "advisor.cli", "calibrate", "--env", "raising_env:Raising-v0",
           "--preset", "smoke", "--device", "cpu", "--quiet", "--steps", "300", "--backend",
           "threads", "--n-boot", "5", "--out-dir", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get(
        "PYTHONPATH", "")]), RAISE="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.count("\n") == 1 and "boom in step" in res.stderr
    assert "terminate called" not in res.stderr and list((out / "errors").glob("*.txt"))


def test_an_out_dir_with_runs_but_no_grid_json_is_refused(tmp_path):
    """Done markers match on width, batch size, utds and seeds only: without grid.json, a
    finished population of another grid (other steps) was taken for this one's."""
    out = tmp_path / "o"
    (out / "units").mkdir(parents=True)
    (out / "units" / "s1_w32_bs32_utd1.json").write_text("{}")
    with pytest.raises(GridError, match="no grid.json"):
        prepare_out_dir(out, preset("smoke"), ENV)
    assert not (out / "grid.json").exists()


def test_the_fit_file_may_not_overwrite_the_grid_it_calibrates(tmp_path):
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps(preset("smoke").model_dump(mode="json")))
    res = CliRunner().invoke(main, ["calibrate", "--env", ENV, "--grid", str(grid), "--device",
                                    "cpu", "--out-dir", str(tmp_path / "o"), "--fit-out",
                                    str(grid)])
    assert res.exit_code == 2 and "would overwrite" in res.output, res.output
    assert json.loads(grid.read_text())["name"] == "smoke"


def test_the_fit_file_may_not_replace_a_shipped_fit_and_leaves_no_out_dir(tmp_path):
    """--fit-out fits/bro/hopper-hop.json wrote this env's fit over the shipped one; a refused
    command also left its new out-dir behind, empty."""
    from advisor.registry import fit_path

    shipped = fit_path("bro/hopper-hop")
    before = shipped.read_bytes()
    res = CliRunner().invoke(main, ["calibrate", "--env", ENV, "--device", "cpu", "--out-dir",
                                    str(tmp_path / "o" / "a" / "b"), "--fit-out", str(shipped)])
    assert res.exit_code == 2 and "is the file of bro/hopper-hop, a fit value-scaling-advisor " \
        "ships" in res.output, res.output
    assert shipped.read_bytes() == before and not (tmp_path / "o").exists()


@pytest.mark.parametrize("change, needle", [
    (dict(widths=[True, 32, 64]), "widths.0"),  # trained width-1 critics
    (dict(utds=["1", 2, 4]), "utds.0"),
    (dict(eval_every=1000), "at least 2 are needed"),  # one evaluation: could only fail
    # a hostile round: each of these validated, then trained (or hung, or printed oddly)
    (dict(pack_batch_sizes="yes"), "pack_batch_sizes must be true or false"),
    (dict(eval_episodes=10**9), "eval_episodes: Input should be less than or equal to 1000"),
    (dict(name="a\nb"), "name: String should match pattern"),
    (dict(name="x" * 101), "name: String should have at most 100 characters"),
    (dict(widths=[16, 10**12]), "widths may be at most 65,536 units"),
    (dict(batch_sizes=[32, 2**21]), "batch sizes may be at most 1,048,576"),
])
def test_grid_values_of_the_wrong_kind_or_one_evaluation_are_refused(change, needle):
    with pytest.raises(GridError, match=needle):
        load_grid_dict(dict(preset("smoke").model_dump(), **change))


@pytest.mark.parametrize("name, steps, eval_every", [
    ("smoke", 500, 50),  # shorter: at least 10 evaluations
    ("smoke", 200_000, 20_000),  # longer: the grid's 10 evaluations, not 2,000
    ("reduced", 50_000, 5_000), ("reduced", 1_000_000, 50_000),  # its 20 at most
    ("minutes", 10_000, 1_000),
])
def test_steps_override_keeps_the_number_of_evaluations_sane(name, steps, eval_every):
    grid = preset(name).with_overrides(steps=steps)
    assert grid.steps == steps and grid.eval_every == eval_every
    assert 10 <= steps // grid.eval_every <= max(10, preset(name).steps // preset(name).eval_every)


def test_steps_and_seeds_override_a_grid_file_before_it_is_validated(tmp_path):
    """A hostile round: a grid file was validated before --steps replaced its run length, so
    --steps could not fix a file without steps, or with random_steps past its own steps."""
    from calibration.grid import load_grid

    base = {k: v for k, v in preset("smoke").model_dump(mode="json").items() if k != "steps"}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(base))
    with pytest.raises(GridError, match="steps: Field required"):
        load_grid(path)
    assert load_grid(path, steps=1000).steps == 1000
    path.write_text(json.dumps(dict(base, steps=100, random_steps=200)))
    grid = load_grid(path, steps=1000, n_seeds=3)
    assert (grid.steps, grid.random_steps, grid.seeds) == (1000, 200, [0, 1, 2])
    # --steps equal to the file's own changes nothing (a resume adding it was refused)
    path.write_text(json.dumps(dict(base, steps=5000, eval_every=500, random_steps=400)))
    assert load_grid(path, steps=5000) == load_grid(path)
    res = CliRunner().invoke(main, ["calibrate", "--env", ENV, "--grid", str(tmp_path / "no.json"),
                                    "--steps", "1000", "--device", "cpu", "--out-dir",
                                    str(tmp_path / "o")])
    assert res.exit_code == 2 and "no.json" in res.output and "Traceback" not in res.output


def test_a_grid_may_write_whole_numbers_as_json_floats():
    """2e5 steps in a grid file is a float in JSON: still a whole number of steps."""
    grid = load_grid_dict(dict(preset("smoke").model_dump(), steps=1000.0, widths=[16.0, 32, 64]))
    assert grid.steps == 1000 and isinstance(grid.steps, int) and grid.widths == [16, 32, 64]


def test_a_grid_file_with_a_key_twice_is_refused(tmp_path):
    text = json.dumps(preset("smoke").model_dump(mode="json"))
    path = tmp_path / "g.json"
    path.write_text(text[:-1] + ', "steps": 5000}')
    with pytest.raises(GridError, match="'steps' appears twice"):
        load_grid(path)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(env_id=123), "env_id must be str"), (dict(device=None), "device must be str"),
    (dict(steps="100"), "steps must be int or None"), (dict(out_dir=None), "out_dir must be"),
    (dict(created=20250101), "created must be"), (dict(created="2026-W48-5"), "YYYY-MM-DD"),
    (dict(algorithm=None), "algorithm must be str"),
    # the recorded command said --device cuda:0, which the CLI refuses
    (dict(device="cuda:0"), "device must be one of auto, cpu, cuda, got 'cuda:0'"),
])
def test_calibrate_from_python_checks_its_argument_types(tmp_path, kwargs, needle):
    from calibration.calibrate import calibrate

    args = {**dict(env_id=ENV, out_dir=str(tmp_path / "o"), device="cpu"), **kwargs}
    with pytest.raises(AdvisorError, match=needle):
        calibrate(args.pop("env_id"), **args)


def test_numpy_integers_pass_the_type_check(tmp_path):
    import torch

    from calibration.calibrate import calibrate

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    # The device check comes after the grid is built with them: its error is the device's.
    with pytest.raises(AdvisorError, match="no CUDA GPU"):
        calibrate(ENV, out_dir=str(tmp_path / "o"), device="cuda", steps=np.int64(1000),
                  seeds=np.int32(2))


def test_a_prior_given_as_one_string_is_one_prior_not_its_letters(tmp_path):
    from calibration.calibrate import calibrate

    # A bad backend stops it after the prior is read: the error is the backend's.
    with pytest.raises(GridError, match="unknown backend"):
        calibrate(ENV, out_dir=str(tmp_path / "o"), device="cpu", prior="dmc", backend="x")


def test_grid_file_that_does_not_validate_is_refused(tmp_path):
    bad = tmp_path / "grid.json"
    bad.write_text(json.dumps(dict(preset("smoke").model_dump(), anchor_width=999)))
    res = CliRunner().invoke(main, ["calibrate", "--env", ENV, "--grid", str(bad), "--device",
                                    "cpu", "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 2 and "anchor_width 999" in res.output
    with pytest.raises(GridError, match="not valid JSON"):
        (tmp_path / "g2.json").write_text("{")
        from calibration.grid import load_grid

        load_grid(tmp_path / "g2.json")


def test_an_out_dir_of_a_preset_before_it_changed_is_resumed_by_its_own_grid_json(tmp_path):
    """The cpu preset's stage 2 gained utd 8 (2026-11-29): an out-dir of the old preset is
    refused under --preset cpu, and the error names --grid OUT/grid.json, which loads the grid
    that out-dir holds (the same digest: it resumes)."""
    from calibration.runner import prepare_out_dir

    out = tmp_path / "o"
    old = load_grid_dict(dict(preset("cpu").model_dump(), configs=None))
    prepare_out_dir(out, old, "Pendulum-v1")
    res = CliRunner().invoke(main, ["calibrate", "--env", "Pendulum-v1", "--preset", "cpu",
                                    "--device", "cpu", "--out-dir", str(out)])
    assert res.exit_code == 2 and "different calibration (configs null there" in res.output
    assert f"--grid {out / 'grid.json'} runs the grid it holds" in " ".join(res.output.split())
    assert load_grid(out / "grid.json").digest() == old.digest()
    prepare_out_dir(out, load_grid(out / "grid.json"), "Pendulum-v1")  # taken: a resume


def test_out_dir_of_another_grid_is_refused_and_kept(tmp_path):
    out = tmp_path / "o"
    from calibration.runner import prepare_out_dir

    prepare_out_dir(out, preset("smoke"), ENV)
    (out / "keep.txt").write_text("results")
    res = CliRunner().invoke(main, ["calibrate", "--env", ENV, "--preset", "smoke", "--steps",
                                    "500", "--device", "cpu", "--out-dir", str(out)])
    assert res.exit_code == 2 and "different calibration" in res.output
    # it names what differs: steps (and with them eval_every and random_steps)
    assert "(eval_every 100 there, 50 here; random_steps 200 there, 100 here; steps 1000 " \
           "there, 500 here)" in " ".join(res.output.split())
    assert (out / "keep.txt").read_text() == "results"
    res = CliRunner().invoke(main, ["calibrate", "--env", "Hopper-v5", "--preset", "smoke",
                                    "--device", "cpu", "--out-dir", str(out)])
    assert res.exit_code == 2 and f"env {ENV!r} there, 'Hopper-v5' here" in res.output


def test_minutes_preset_validates_and_its_units_build():
    """The GPU preset's grid and populations as its comment counts them, and its largest
    population builds and updates (on the CPU, tiny batch: shapes, not speed)."""
    import torch

    from calibration.grid import stage2_units
    from calibration.learner import AgentConfig, Batch, Noise, Population, TrainConfig

    grid = preset("minutes")
    units = stage1_units(grid)  # batch sizes packed: one population per width
    assert sorted(len(u.seeds) for u in units) == [16, 16, 48]
    steps = grid.steps - grid.random_steps
    assert sum(max(u.utds) for u in units) == 8  # population updates per learning step
    assert steps * sum(sum(u.utds) for u in units) == 1_584_000  # member-updates, stage 1
    unpacked = stage1_units(load_grid_dict(dict(grid.model_dump(), pack_batch_sizes=False)))
    assert sum(max(u.utds) for u in unpacked) == 16

    def members(us):
        return sorted((u.width, utd, b, seed) for u in us
                      for utd, b, seed in zip(u.utds, u.batch_sizes or [u.batch_size] * len(
                          u.seeds), u.seeds))

    assert members(units) == members(unpacked)  # the same runs, fewer populations
    units2 = stage2_units(grid, lambda utd, width: 256 // int(utd))  # B~ apart for every utd
    assert len(units2) == 3 and sum(max(u.utds) for u in units2) == 12
    assert len({u.id for u in units + units2}) == 6
    for unit in units + units2:
        TrainConfig(env_id="Hopper-v5", steps=grid.steps, utds=list(unit.utds),
                    seeds=list(unit.seeds), width=unit.width, batch_size=unit.batch_size,
                    batch_sizes=unit.batch_sizes,
                    quantiles=grid.quantiles, actor_width=grid.actor_width,
                    random_steps=grid.random_steps, eval_every=grid.eval_every, device="cpu")
    big = max(units, key=lambda u: len(u.seeds))
    m = len(big.seeds)
    pop = Population(AgentConfig(obs_dim=11, act_dim=3, width=big.width, quantiles=grid.quantiles,
                                 actor_width=grid.actor_width), m, list(range(m)),
                     torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(m, 4, 11, generator=g), torch.rand(m, 4, 3, generator=g) * 2 - 1,
                  torch.randn(m, 4, generator=g), torch.randn(m, 4, 11, generator=g),
                  torch.zeros(m, 4))
    noise = Noise(torch.randn(m, 4, 3, generator=g), torch.randn(m, 4, 3, generator=g))
    loss = pop.update(batch, noise, torch.ones(m, dtype=torch.bool))["critic_loss"]
    assert loss.shape == (m,) and torch.isfinite(loss).all()


@pytest.mark.slow
def test_few_shot_calibration_reuses_the_runs_and_records_its_prior(smoke, tmp_path):
    """`--prior dmc` makes stage 2's D_J a few-shot fit; finished units are not rerun."""
    out, _, _ = smoke
    fit_out = tmp_path / "few.json"
    res = subprocess.run(CMD + ["--out-dir", str(out), "--prior", "dmc", "--fit-out",
                                str(fit_out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    fit = advisor.load_fit(str(fit_out))
    assert fit.model.provenance.prior.family == "dmc"
    assert "--prior dmc" in fit.model.provenance.command
    assert "prior_family_leave_one_task_out" in fit.model.prediction_interval.coverage
    # The report's parity plot holds configs out the way this fit was made (it refitted them
    # freely, and its title named another error than the fit's).
    from calibration.report import figure_parity, load_context

    fig = figure_parity(load_context(str(fit_out), runs=out / "runs"))
    loco = fit.model.goodness_of_fit.leave_one_config_out
    assert f"leave-one-config-out error {100 * loco:.1f}%" in fig.axes[0].get_title()


@pytest.mark.slow
def test_the_prior_hint_gives_its_own_fit_out_once(tmp_path):
    """A hostile tester's: given --fit-out, the hint's command held it and then another."""
    from calibration.calibrate import prior_hint

    fit = tmp_path / "a b" / "f.json"
    hint = prior_hint(f"advisor calibrate --env X --fit-out '{fit}' --delta 1e11", fit)
    assert hint.endswith(f"advisor calibrate --env X --delta 1e11 --prior dmc --fit-out "
                         f"'{fit.with_name('f-dmc.json')}'") and hint.count("--fit-out") == 1


def test_an_exponent_the_runs_cannot_determine_gets_a_prior_hint(smoke, tmp_path, monkeypatch):
    """A free fit failing its exponent check says how to refit the same runs few-shot (the
    Hopper minutes runs put alpha at its bound); the few-shot refit it names runs from the
    same out-dir without training and gets no such hint."""
    import calibration.calibrate as cal
    from calibration.checks import Check

    out, _, _ = smoke
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "calibrate.lock").unlink(missing_ok=True)
    monkeypatch.setattr(cal, "fit_checks", lambda fit, batch_sizes, configs=None: [
        Check("exponents", False, "alpha 8 at its upper bound 8 (20 of 20 targets)")])
    lines = []
    cal.calibrate(ENV, out_dir=copy, device="cpu", steps=300, quiet=True, echo=lines.append,
                  n_boot=5, command="advisor calibrate --env X --out-dir D")
    hints = [line for line in lines if line.startswith("hint: ")]
    free = copy / f"bro-torch-{ENV}.json"
    beside = copy / f"bro-torch-{ENV}-dmc.json"
    assert len(hints) == 1 and hints[0].endswith(
        "without training again (beside this fit): advisor calibrate --env X --out-dir D "
        f"--prior dmc --fit-out {beside}"), lines
    lines.clear()  # the refit it names gets no such hint and keeps the free fit
    before = free.read_bytes()
    cal.calibrate(ENV, out_dir=copy, device="cpu", steps=300, quiet=False, echo=lines.append,
                  n_boot=5, prior="dmc", fit_out=beside)
    assert not [line for line in lines if line.startswith("hint: ")], lines
    assert free.read_bytes() == before and advisor.load_fit(str(beside)).model.provenance
    lines.clear()  # without --fit-out it says it replaces the free one
    cal.calibrate(ENV, out_dir=copy, device="cpu", steps=300, quiet=False, echo=lines.append,
                  n_boot=5, prior="dmc")
    assert sum("replacing the fit file written earlier" in line for line in lines) == 1, lines


@pytest.mark.slow
def test_a_refit_elsewhere_names_the_device_the_runs_trained_on(smoke, tmp_path):
    """Runs trained on a GPU, refitted on a CPU (all units finished): the fit names the GPU
    from the runs' manifests, not the refit's --device (it said 'H100 (cpu)')."""
    out, _, _ = smoke
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "calibrate.lock").unlink(missing_ok=True)
    for path in (copy / "units").glob("*.json"):
        record = json.loads(path.read_text())
        record["manifest"].update(device="cuda", device_name="Test GPU 80GB")
        path.write_text(json.dumps(record))
    res = subprocess.run(CMD + ["--out-dir", str(copy), "--fit-out", str(tmp_path / "f.json")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    notes = advisor.load_fit(str(tmp_path / "f.json")).model.provenance.notes
    trained = [n for n in notes if n.startswith("trained on ")]
    assert trained and trained[0].startswith("trained on Test GPU 80GB (cuda); torch "), notes


@pytest.mark.slow
def test_a_diverged_member_is_said_and_noted_not_fitted_in_silence(smoke, tmp_path):
    """A hostile tester's: a stage-2 member whose returns are all NaN (what the learner logs
    for a diverged one) was left out of its config's average without a word, and the notes
    still said 2 seeds per config."""
    out, _, _ = smoke
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "calibrate.lock").unlink(missing_ok=True)
    path = sorted(copy.glob("runs/s2_*/*/utd_*/*/return/*.npy"))[0]
    arr = np.load(path)
    arr[:, 1] = np.nan  # column 0 holds the steps: the first seed diverged
    np.save(path, arr)
    res = subprocess.run(CMD + ["--out-dir", str(copy), "--fit-out", str(tmp_path / "f.json")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (line,) = [ln for ln in res.stderr.splitlines() if "never logged a finite return" in ln]
    assert line.startswith("warning: 1 of the 18 stage-2 runs diverged (returns logged as NaN): "
                           "1 never logged a finite return, left out of the averages (utd ")
    assert line.endswith(", seed column 0)")
    notes = advisor.load_fit(str(tmp_path / "f.json")).model.provenance.notes
    assert line.removeprefix("warning: ") in notes
    assert any("averaged over its seeds (1 to 2 per config" in n for n in notes), notes


def test_members_that_diverge_later_are_named_too():
    """A reviewer's: a member logged as NaN from its divergence on (not from the start) went
    unnamed; its last finite return is carried on, as a missing evaluation is."""
    from calibration.archives import Run
    from calibration.calibrate import diverged

    def run(utd, nan_from):
        values = np.ones((5, 2))
        values[nan_from:, 1] = np.nan
        return Run("x", "e", utd, 1e5, 256, width=32, steps={"return": np.arange(5) * 1000.0},
                   values={"return": values})

    assert diverged([run(1.0, 5)]) == ""
    assert diverged([run(1.0, 0), run(2.0, 3)]) == (
        "2 of the 4 stage-2 runs diverged (returns logged as NaN): 1 never logged a finite "
        "return, left out of the averages (utd 1, width 32, seed column 1); 1 diverged later, "
        "their last finite return carried on (utd 2, width 32, seed column 1 at step 3,000)")


def test_env_threads_use_the_cores_left_on_a_gpu_and_none_on_the_cpu(monkeypatch):
    from calibration.runner import env_threads_per_population

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert env_threads_per_population("cpu", 1) == 1  # loky already fills the cores
    assert env_threads_per_population("cuda", 3) == 4  # capped
    assert env_threads_per_population("cuda:1", 8) == 2
    assert env_threads_per_population("cuda", 32) == 1


def test_progress_reads_running_populations_logs_before_any_unit_ends(tmp_path):
    """Every POLL_S the runner reads the populations' `return` logs: a running unit that has
    logged twice goes on at its own rate, a queued one at the running ones' time per
    member-step, and the line says what share of env steps is done."""
    import time

    import numpy as np

    from calibration.runner import _Progress, logged_step

    grid = load_grid_dict(dict(preset("smoke").model_dump(), steps=1000))
    units = [u for u in stage1_units(grid) if len(u.seeds) == 2][:2]
    a, b = units
    run = tmp_path / "runs" / a.id / "w16p100" / "utd_1" / ENV / "return"
    assert logged_step(tmp_path / "runs" / a.id) == 0
    lines = []
    progress = _Progress(2, 0, units, grid, False, lines.append, n_jobs=1, out_dir=tmp_path)

    def log_at(steps, seconds):  # a's log holds `steps`, read `seconds` after the start
        np.save(run / "bs_32_lr_0.0003_sep_False.npy",
                np.array([[float(t), 1.0] for t in steps]))
        progress.t0 = time.perf_counter() - seconds
        progress.poll()

    run.mkdir(parents=True)
    log_at([100], 10.0)
    assert logged_step(tmp_path / "runs" / a.id) == 100
    assert progress.time_left(10.0) is None  # one log: no rate yet
    assert lines[-1].startswith("[0/2 units, 5% of env steps]")  # 200 of 2 x 2 x 1,000
    log_at([100, 200], 20.0)  # 10 env steps/s: 100 s for a's 1,000 steps
    # one worker: a takes 100 s, then b (2 members) 2,000 member-steps at 1/20 s each: 100 s
    assert progress.time_left(20.0) == pytest.approx(180.0, rel=0.01)
    assert "about 3.0 min left" in lines[-1] and len(lines) == 3
    log_at([100, 200], 25.0)  # nothing moved: no line
    assert len(lines) == 3
    # Resumed with a finished unit of 2 x 1,000 member-steps: it counts in the share, as it
    # does in the units (before: [1/3 units, 0%] mixed the two bases).
    # Without a checkpoint a's logs are of an attempt that starts over: not done (a hostile
    # round: "[2/6 units, 50%]" where 20% were).
    over = _Progress(3, 1, units, grid, False, lines.append, n_jobs=1, out_dir=tmp_path,
                     earlier_steps=2000)
    assert lines[-1].startswith("[1/3 units, 33% of env steps] 0 env steps/s"), lines[-1]
    over.t0 = time.perf_counter() - 10.0
    over.poll()  # the old logs, unchanged: neither done nor a rate (a reviewer's: 180/s)
    assert over.seen == {} and lines[-1].startswith("[1/3 units, 33% of env steps] 0 env")
    np.save(run / "bs_32_lr_0.0003_sep_False.npy", np.array([[100.0, 1.0]]))  # rewritten
    over.poll()
    assert over.seen[a.id][3] == 100 and lines[-1].startswith("[1/3 units, 37% of env steps]")
    np.save(run / "bs_32_lr_0.0003_sep_False.npy", np.array([[100.0, 1.0], [200.0, 1.0]]))
    # With one at step 200, a's 200 steps count in the share too, but not in the rate (a
    # hostile round: 2,620 env steps/s shown where 620 were made).
    from calibration.learner import checkpoint

    checkpoint.save(tmp_path / "runs" / a.id / checkpoint.FILE, {}, {"step": 200})
    resumed = _Progress(3, 1, units, grid, False, lines.append, n_jobs=1, out_dir=tmp_path,
                        earlier_steps=2000)
    assert lines[-1].startswith("[1/3 units, 40% of env steps] 0 env steps/s"), lines[-1]
    np.save(run / "bs_32_lr_0.0003_sep_False.npy", np.array([[100.0, 1.0], [200.0, 1.0],
                                                              [300.0, 1.0]]))
    resumed.t0 = time.perf_counter() - 10.0
    resumed.poll()  # 100 new steps x 2 members in 10 s
    assert lines[-1].startswith("[1/3 units, 43% of env steps] 20 env steps/s"), lines[-1]
    resumed.update({"unit": a.model_dump(mode="json"),
                    "manifest": {"config": {"steps": 1000}, "wall_time_s": 10.0}})
    assert lines[-1].startswith("[2/3 units, 67% of env steps]")


def test_a_rerun_says_which_populations_resume_from_a_checkpoint(tmp_path):
    """A hostile tester's: a rerun said only '2 trained earlier, training the other 4', not
    which one resumes from a checkpoint (and from where) and which starts over."""
    from calibration.calibrate import _already
    from calibration.learner import checkpoint

    units = stage1_units(preset("smoke"))
    assert _already(tmp_path, units) == ""
    (tmp_path / "runs" / units[1].id).mkdir(parents=True)
    checkpoint.save(tmp_path / "runs" / units[1].id / checkpoint.FILE, {}, {"step": 2000})
    (tmp_path / "runs" / units[2].id).mkdir(parents=True)
    (tmp_path / "runs" / units[2].id / checkpoint.FILE).write_bytes(b"torn")  # starts over
    assert _already(tmp_path, units) == (f"; none finished earlier in {tmp_path} (1 resumes "
                                         f"from a checkpoint: {units[1].id} at step 2,000)")


def test_the_fit_says_how_each_stage_compiled_its_update():
    """A calibration resumed with another --compile records both (same arithmetic up to
    rounding, other speed)."""
    from calibration.calibrate import _compile_modes

    rec = [{"manifest": {"config": {"compile": mode}}} for mode in ("update", "none", "update")]
    assert _compile_modes(rec) == "none/update"
    assert _compile_modes(rec[:1]) == "update"
    assert _compile_modes([{"manifest": {"config": {}}}]) == "none"  # older manifests


def test_the_fit_says_which_stages_trained_on_bf16_copies():
    """TrainConfig.bf16 (bf16 rounding, not only speed) is named per stage; older manifests and
    float32 runs read as float32."""
    from calibration.calibrate import _precisions

    rec = [{"manifest": {"config": {"bf16": flag}}} for flag in (True, False)]
    assert _precisions(rec) == "bf16 weight copies/float32"
    assert _precisions(rec[:1]) == "bf16 weight copies"
    assert _precisions([{"manifest": {"config": {}}}]) == "float32"


def test_ship_fit_adds_the_timings_and_refuses_a_fit_that_fails_its_checks(smoke, tmp_path,
                                                                             monkeypatch):
    """benchmarks/ship_fit.py: the shipped copy is the fit plus a timed line per stage (the
    fit calibrate wrote has none: resume-proof), and loads; a fit failing a check is refused."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks.ship_fit as ship_fit
    from calibration.checks import Check

    out, text, name = smoke
    shipped = tmp_path / "fits" / "bro" / f"{ENV}.json"
    monkeypatch.setattr(ship_fit, "fit_checks", lambda fit, batch_sizes: [Check("x", True, "ok")])
    assert ship_fit.main([str(out / name), "--out-dir", str(out), "-o", str(shipped)]) == 0
    original, copy = advisor.load_fit(str(out / name)), advisor.load_fit(str(shipped))
    added = copy.model.provenance.notes[len(original.model.provenance.notes):]
    assert copy.model.provenance.notes[:len(added) * -1] == original.model.provenance.notes
    assert [n.split(":")[1] for n in added] == [" stage 1", " stage 2"]
    assert all(" s (from the first population's start" in n for n in added)
    # each line is the stage's summary with times, from its done markers (with a rate, unless
    # the module's SIGKILL test has since resumed this out-dir: across an interruption)
    from calibration.calibrate import stage_summary

    markers = [json.loads(m.read_text()) for m in sorted((out / "units").glob("*.json"))]
    assert list(added) == [ship_fit.SHIPPED + stage_summary(
        f"stage {k}", [r for r in markers if r["unit"]["stage"] == k]) for k in (1, 2)]
    assert all(("member-updates/s" in n) != ("across an interruption" in n) for n in added)
    assert copy.model.goodness_of_fit == original.model.goodness_of_fit
    assert (out / name).read_text() == text  # the calibrated file is left as it was
    noted = tmp_path / "noted.json"
    assert ship_fit.main([str(out / name), "--out-dir", str(out), "-o", str(noted), "--note",
                          "why a prior", "--note", "where the stages ran"]) == 0
    assert advisor.load_fit(str(noted)).model.provenance.notes[-2:] == (
        "why a prior", "where the stages ran")
    assert ship_fit.main([str(out / name), "--out-dir", str(out), "-o",
                          str(tmp_path / "empty.json"), "--note", " "]) == 2
    # Only a fit calibrate made from this out-dir, and only once (a shipped copy shipped again
    # doubled its notes; a published fit took the out-dir's timings).
    from advisor.registry import fit_path

    for other in (noted, fit_path("bro/walker-run")):
        assert ship_fit.main([str(other), "--out-dir", str(out), "-o",
                              str(tmp_path / "again.json")]) == 2
    assert not (tmp_path / "again.json").exists()

    monkeypatch.setattr(ship_fit, "fit_checks",
                        lambda fit, batch_sizes: [Check("exponents", False, "at a bound")])
    refused = tmp_path / "refused.json"
    assert ship_fit.main([str(out / name), "--out-dir", str(out), "-o", str(refused)]) == 2
    assert not refused.exists()
    assert ship_fit.main([str(out / name), "--out-dir", str(tmp_path), "-o", str(refused)]) == 2


def test_memory_estimate_counts_an_update_per_span_of_members():
    """A population with utds 1, 2 and 4 runs its rounds on spans of 6, 4 and 2 members, each
    with its own CUDA graph (and activations) on a GPU: twice the update memory of one utd."""
    from calibration.calibrate import unit_memory
    from calibration.grid import Unit, preset

    grid = preset("smoke")
    one = Unit(stage=1, width=32, batch_size=64, utds=[2.0] * 6, seeds=[0, 1] * 3)
    three = Unit(stage=1, width=32, batch_size=64, utds=[1.0, 1.0, 2.0, 2.0, 4.0, 4.0],
                 seeds=[0, 1] * 3)
    a, b = (unit_memory(grid, u, 11, 3) for u in (one, three))
    assert b["update"] == pytest.approx(2 * a["update"])
    assert b["replay"] == a["replay"] and b["networks"] == a["networks"]


def test_runs_that_did_not_learn_say_how_long_they_were():
    """A hostile round: --steps 10 trained, then said 'train longer with --steps' with no
    number; the error now gives the runs' length."""
    from calibration.archives import Run
    from calibration.calibrate import CalibrationError, choose_targets

    flat = [Run("ours", ENV, u, 1e4, 32, steps={"return": np.array([0.0, 5.0, 10.0])},
                values={"return": np.full((3, 2), 9.0)}) for u in (1, 2)]
    with pytest.raises(CalibrationError, match="these runs took 10 env steps: train longer "
                                               "with --steps"):
        choose_targets(flat)
    with pytest.raises(CalibrationError, match="did not learn.*; fit longer ones$"):
        choose_targets(flat, remedy="fit longer ones")


def test_inputs_a_hostile_round_found_unclear(tmp_path):
    """--fit-out under a file said 'File exists'; --prior dmc twice said 'give it alone'
    without saying it was given twice; a Ctrl-C while the inputs were checked said
    populations were kept in an out-dir that did not exist."""
    from calibration.cli import Interrupted, _interruptible

    (tmp_path / "afile").write_text("x")
    res = CliRunner().invoke(main, ["calibrate", "--env", ENV, "--device", "cpu", "--out-dir",
                                    str(tmp_path / "o"), "--fit-out",
                                    str(tmp_path / "afile" / "fit.json")])
    assert res.exit_code == 2 and f"{tmp_path / 'afile'} is a file, not a folder" in res.output
    res = CliRunner().invoke(main, ["calibrate", "--env", ENV, "--device", "cpu", "--out-dir",
                                    str(tmp_path / "o"), "--prior", "dmc", "--prior", "dmc"])
    assert res.exit_code == 2 and "(it is given 2 times)" in res.output, res.output
    with pytest.raises(Interrupted, match="^interrupted before anything was written to "):
        with _interruptible(str(tmp_path / "never")):
            raise KeyboardInterrupt
    (tmp_path / "there").mkdir()
    with pytest.raises(Interrupted, match="0 finished population"):
        with _interruptible(str(tmp_path / "there")):
            raise KeyboardInterrupt


def test_a_workers_warning_prints_as_one_warning_line():
    """A corrupt checkpoint set aside printed Python's two-line warning (file, line number,
    source) from inside a worker; workers and the CLI print `warning: ...` lines."""
    from calibration.learner import checkpoint

    code = ("import warnings; from calibration.runner import one_line_warning; "
            "warnings.formatwarning = one_line_warning; "
            "warnings.warn_explicit('checkpoint x is unreadable\\n(BadZipFile): moved', "
            f"RuntimeWarning, {checkpoint.__file__!r}, 125); "
            "warnings.warn('another package', DeprecationWarning, stacklevel=1)")
    res = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                         text=True, timeout=120)
    ours, *theirs = res.stderr.splitlines()
    assert ours == "warning: checkpoint x is unreadable (BadZipFile): moved"
    assert theirs == ["<string>:1: DeprecationWarning: another package"]  # Python's own form


def test_a_finished_out_dir_that_cannot_be_written_says_how_to_refit_it(tmp_path,
                                                                         monkeypatch):
    """A refit of a calibration kept on a read-only mount said only 'cannot write in the
    out-dir', though --help presents a refit as seconds without training."""
    import tempfile

    from advisor.errors import OutputError
    from calibration.outdir import check_out_dir

    def read_only(*a, **kw):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError, match="Read-only file system$"):
        check_out_dir(tmp_path)  # not a calibration's: as before
    (tmp_path / "units").mkdir()
    with pytest.raises(OutputError, match="Read-only file system; a refit .* copy the out-dir "
                                          "to a writable folder"):
        check_out_dir(tmp_path)


@pytest.mark.slow
def test_the_cpu_presets_pendulum_runs_fit_as_the_readme_says(tmp_path):
    """runs/cpu-Pendulum-v1.tgz is the out-dir `advisor calibrate --env Pendulum-v1 --preset cpu`
    left on this project's 2-core CPU machine (42.5 min in one call). Run again on it,
    calibrate trains nothing and writes the free fit the README
    describes (bro-torch/Pendulum-v1), every check passed; with --prior dmc, the few-shot fit
    that loses to the log-linear baseline (README, presets)."""
    import tarfile

    runs = Path(__file__).resolve().parent.parent / "runs"
    with tarfile.open(runs / "cpu-Pendulum-v1.tgz") as tar:
        tar.extractall(tmp_path, filter="data")
    out = tmp_path / "cpu-out"
    cmd = [sys.executable, "-m", "advisor.cli", "calibrate", "--env", "Pendulum-v1",
           "--algorithm", "bro-torch", "--preset", "cpu", "--device", "cpu", "--out-dir",
           str(out), "--created", "2026-11-29"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stderr.count("nothing to train") == 2 and "= 527 member-updates/s" in res.stderr
    assert "stage 2: 12 populations, 990,000 member-updates" in res.stderr
    assert "= 610 member-updates/s" in res.stderr  # one call: stage 1 918 s, stage 2 1,622 s
    free = advisor.load_fit(str(out / "bro-torch-Pendulum-v1.json")).model
    law, gof = free.data_to_target.laws[0], free.goodness_of_fit
    assert (round(law.alpha, 3), round(law.beta, 3)) == (0.774, 0.281)
    assert (round(100 * gof.leave_one_config_out, 1),
            round(100 * gof.baseline_loglinear_leave_one_config_out, 1)) == (13.8, 14.9)
    assert any(n.startswith("fit checks passed") for n in free.provenance.notes)
    assert "thresholds -993.8 to -189.5 chosen from the data" in " ".join(free.provenance.notes)
    # Negative returns read as ranges ("-994.604--191.62" read as a typo).
    shown = CliRunner().invoke(main, ["show", str(out / "bro-torch-Pendulum-v1.json")]).output
    assert "target -993.765 to -189.522," in shown and "targets -993.8 to -866.8:" in shown
    assert repr(advisor.load_fit(str(out / "bro-torch-Pendulum-v1.json"))).endswith(
        "targets -993.765 to -189.522)")
    res = subprocess.run(cmd + ["--prior", "dmc", "--fit-out", str(tmp_path / "few.json")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    few = advisor.load_fit(str(tmp_path / "few.json")).model.goodness_of_fit
    assert round(100 * few.leave_one_config_out, 1) == 15.2
    assert "check FAIL baseline" in res.stderr


def test_the_calibrate_commands_choices_are_the_modules_own():
    """A reviewer's: --preset, --backend and --device were lists written again in the CLI."""
    from calibration import cli as ccli
    from calibration.calibrate import DEVICES
    from calibration.grid import PRESETS
    from calibration.runner import BACKENDS

    params = {p.name: p for p in ccli.calibrate.params}
    assert tuple(params["preset_name"].type.choices) == tuple(PRESETS)
    assert tuple(params["backend"].type.choices) == BACKENDS
    assert tuple(params["device"].type.choices) == DEVICES == ccli.DEVICES


def test_a_system_folder_that_takes_no_files_is_named_as_such():
    """A hostile tester's: --fit-out /proc/x.json said '/proc: No such file or directory'."""
    from advisor.errors import OutputError
    from calibration.outdir import check_writable

    if not Path("/proc").is_dir():
        pytest.skip("no /proc")
    with pytest.raises(OutputError, match=r"^cannot write in the fit file's folder /proc: it "
                                          r"takes no new files \(a system folder"):
        check_writable(Path("/proc"), "the fit file's folder")


@pytest.mark.slow
def test_a_fit_whose_id_the_advisor_lists_says_which_one_fit_names(smoke, tmp_path,
                                                                    monkeypatch):
    """A new user's: a smoke calibration on Pendulum-v1 wrote bro-torch/Pendulum-v1, the id of
    the shipped fit, and `--fit bro-torch/Pendulum-v1` then loaded the shipped one unsaid."""
    import advisor.registry as registry
    import calibration.calibrate as cal

    out, _, _ = smoke
    monkeypatch.setattr(registry, "list_fits", lambda: [f"bro-torch/{ENV}"])
    lines = []
    mine = tmp_path / "mine.json"
    cal.calibrate(ENV, out_dir=out, device="cpu", preset_name="smoke", steps=300, n_boot=20,
                  n_jobs=2, fit_out=mine, echo=lines.append)
    notes = [x for x in lines if "is also the id of a fit" in x]
    assert len(notes) == 1 and f"--fit bro-torch/{ENV} names that one" in notes[0], lines
    assert f"(--fit {mine}) to use yours" in notes[0]
    res = CliRunner().invoke(main, ["recommend", "--fit", str(mine), "--data", "2e4"])
    assert res.output.splitlines()[0].endswith(f"bro-torch/{ENV}  (from {mine})"), res.output
