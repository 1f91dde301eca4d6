"""The prepared GPU scripts, on the CPU: their choices and their plumbing (no GPU figures)."""

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_gpu_check_profile_part_profiles_the_cell_at_hoppers_sizes(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "PARTS": "profile",
           "BUDGET": "120", "PROFILE_CELL": "2 16 8"}
    res = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, text=True,
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    first = (tmp_path / "profile.txt").read_text().splitlines()
    head = next(line for line in first if line.startswith("M 2, width 16"))
    assert "batch 8" in head and "obs 11 act 3" in head and "time per update" in head
