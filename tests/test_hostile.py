"""Hostile input to the heavy side: malformed archives, curves that never learn, bad output
paths, calibrations that must fail before the first unit trains, locks and orphaned workers.

Every case here once gave a traceback, trained for nothing, or lost or mixed results; each must
now give one line (exit 2 at the CLI) or behave as the comment says.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.cli import main
from calibration.archives import ArchiveError, _parse, read_runs
from calibration.curves import data_table

ROOT = Path(__file__).resolve().parent.parent
ENV = "h1-crawl-v0"  # a shipped fit's env, so that report/plot can use synthetic runs
MEMBER = f"runs/w64p10000/utd_{{utd}}/{ENV}/return/bs_{{bs}}_lr_0.0003_sep_False.npy"


def _npy(arr, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


def _curve(seed: int, n_seeds: int = 2, t: int = 40, top: float = 900.0) -> np.ndarray:
    steps = np.linspace(25_000, 1_000_000, t)
    rng = np.random.default_rng(seed)
    vals = top * (1 - np.exp(-steps[:, None] / (2e5 * (1 + seed % 3)))) + rng.normal(
        0, 5, (t, n_seeds))
    return np.c_[steps, vals]


def _members(n: int = 6) -> dict[str, bytes]:
    return {MEMBER.format(utd=u, bs=b): _npy(_curve(i))
            for i, (u, b) in enumerate([(u, b) for u in (1, 2, 4) for b in (128, 256)][:n])}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _folder(path: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def _one_line_exit_2(res) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


FIRST = MEMBER.format(utd=1, bs=128)
BAD_MEMBERS = {
    "truncated": (lambda d: d[: len(d) // 2], "not a readable .npy"),
    "not npy": (lambda d: b"hello, world", "not a .npy file"),
    "object": (lambda d: _npy(np.array([{"a": 1}], dtype=object), allow_pickle=True),
               "Python objects"),
    "strings": (lambda d: _npy(np.array([["a", "b"]])), "real numbers"),
    "complex": (lambda d: _npy(_curve(0).astype(complex)), "real numbers"),
    "1-D": (lambda d: _npy(_curve(0)[:, 0]), "at least one seed column"),
    "steps only": (lambda d: _npy(_curve(0)[:, :1]), "at least one seed column"),
    "empty": (lambda d: _npy(np.zeros((0, 3))), "at least one seed column"),
    "NaN steps": (lambda d: _npy(np.c_[np.full(40, np.nan), _curve(0)[:, 1:]]), "step column"),
    "decreasing steps": (lambda d: _npy(_curve(0)[::-1]), "step column"),
}


@pytest.mark.parametrize("kind", BAD_MEMBERS)
@pytest.mark.parametrize("container", ["zip", "folder"])
def test_a_malformed_member_gives_one_line_naming_it(kind, container, tmp_path):
    mutate, needle = BAD_MEMBERS[kind]
    members = _members()
    members[FIRST] = mutate(members[FIRST])
    make = _zip if container == "zip" else _folder
    archive = make(tmp_path / ("a.zip" if container == "zip" else "a"), members)
    with pytest.raises(ArchiveError, match=needle) as err:
        read_runs(archive, env=ENV)
    assert "bs_128_lr_0.0003_sep_False.npy" in str(err.value) and "\n" not in str(err.value)
    res = CliRunner().invoke(main, ["fit", str(archive), "--algorithm", "x", "--env", ENV,
                                    "-o", str(tmp_path / "f.json"), "--n-boot", "0"])
    assert "bs_128_lr_0.0003_sep_False.npy" in _one_line_exit_2(res)


def test_a_member_with_a_bad_crc_gives_one_line_naming_it(tmp_path):
    members = _members()
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    raw = bytearray(path.read_bytes())
    at = raw.index(members[FIRST]) + 200  # inside the first member's data, past the header
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="corrupt zip member") as err:
        read_runs(path, env=ENV)
    assert FIRST in str(err.value)


def test_a_zip_that_is_not_one_and_a_folder_member_that_is_not_a_file(tmp_path):
    (tmp_path / "half.zip").write_bytes(_zip(tmp_path / "a.zip", _members()).read_bytes()[:300])
    with pytest.raises(ArchiveError, match="half.zip"):
        read_runs(tmp_path / "half.zip")
    folder = _folder(tmp_path / "f", _members())
    (folder / FIRST).unlink()
    (folder / FIRST).mkdir()
    with pytest.raises(ArchiveError, match="is a directory"):
        read_runs(folder, env=ENV)
    (folder / FIRST).rmdir()
    os.symlink("/dev/zero", folder / FIRST)  # would never end without the regular-file check
    with pytest.raises(ArchiveError, match="not a regular file"):
        read_runs(folder, env=ENV)


def test_the_zip_is_closed_after_reading_and_after_an_error(tmp_path, monkeypatch):
    opened = []

    class Tracked(zipfile.ZipFile):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            opened.append(self)

    good = _zip(tmp_path / "good.zip", _members())
    members = _members()
    members[FIRST] = b"junk"
    bad = _zip(tmp_path / "bad.zip", members)
    monkeypatch.setattr("calibration.archives.zipfile.ZipFile", Tracked)
    assert len(read_runs(good, env=ENV)) == 6
    with pytest.raises(ArchiveError):
        read_runs(bad, env=ENV)
    assert len(opened) == 2 and all(z.fp is None for z in opened)


def test_a_name_with_a_non_positive_utd_is_refused_not_divided_by(tmp_path):
    members = {MEMBER.format(utd=0, bs=128): _npy(_curve(0))}
    with pytest.raises(ArchiveError, match="must be positive"):
        read_runs(_zip(tmp_path / "a.zip", members), env=ENV)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-3, 1e3).map(lambda u: float(f"{u:.6g}")))
def test_every_grid_utd_the_learner_writes_is_read_back_exactly(utd):
    # The learner names folders utd_{utd:g}; 1e-05 and 1e+06 forms were once silently skipped.
    parsed = _parse(f"runs/s1/w16p100/utd_{utd:g}/Env-v0/return/bs_32_lr_0.0003_sep_False.npy")
    assert parsed is not None and parsed[0]["utd"] == utd
    for form in ("1e-09", "1e+06", "2.5E-3"):
        assert _parse(f"w16p1/utd_{form}/E/return/bs_32_lr_1e-4_sep_False.npy")[0]["utd"] == \
            float(form)


# --- curves that never learn, a single seed --------------------------------------------------


def _runs(tmp_path, transform) -> list:
    members = {name: _npy(transform(np.load(io.BytesIO(data))))
               for name, data in _members().items()}
    return read_runs(_zip(tmp_path / "t.zip", members), env=ENV)


def test_all_nan_returns_reach_no_target_without_warnings(tmp_path):
    def nan(a):
        a = a.copy()
        a[:, 1:] = np.nan
        return a

    runs = _runs(tmp_path, nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = data_table(runs, np.linspace(100, 800, 5), n_boot=10)
    assert np.isnan(table.data).all() and np.isnan(table.boot).all()
    assert (table.horizon == 1_000_000).all()


def test_leading_nan_rows_are_not_evaluated_yet_and_one_seed_is_fine(tmp_path):
    def late_one_seed(a):
        a = a[:, :2].copy()
        a[:5, 1] = np.nan  # first 5 evaluations missing
        return a

    runs = _runs(tmp_path, late_one_seed)
    assert all(r.n_seeds == 1 for r in runs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = data_table(runs, np.linspace(-1e9, 800, 5), n_boot=10)
    steps = runs[0].steps["return"]
    assert (table.data[:, 0] == steps[5]).all()  # even the lowest target: not before step 6
    assert np.array_equal(table.boot[0], table.data, equal_nan=True)  # one seed: every resample is the run


def test_fit_of_runs_that_reach_no_threshold_is_one_line(tmp_path):
    members = {name: _npy(np.c_[np.load(io.BytesIO(d))[:, 0], np.full((40, 2), np.nan)])
               for name, d in _members().items()}
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "a.zip", members)),
                                    "--algorithm", "x", "--env", ENV, "-o",
                                    str(tmp_path / "f.json"), "--n-boot", "0"])
    assert "nothing to fit" in _one_line_exit_2(res)


def test_fit_errors_of_the_build_are_one_line(tmp_path):
    # BuildError was raised but never defined (NameError); passive-critic-only archives
    # crashed in data_table.
    members = {k.replace(ENV, "New-v0"): v for k, v in _members().items()}
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "a.zip", members)), "--algorithm",
                                    "x", "--env", "New-v0", "-o", str(tmp_path / "f.json")])
    assert "no return range known" in _one_line_exit_2(res)
    members = {k.replace("sep_False", "sep_True"): v for k, v in _members().items()}
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "b.zip", members)), "--algorithm",
                                    "x", "--env", ENV, "-o", str(tmp_path / "f.json")])
    assert "passive critic" in _one_line_exit_2(res)


# --- report, plot, export ----------------------------------------------------------------------


def test_report_of_runs_that_never_learn_draws_what_it_can(tmp_path):
    pytest.importorskip("matplotlib")
    from calibration import report

    members = {name: _npy(np.c_[np.load(io.BytesIO(d))[:, 0], np.full((40, 2), np.nan)])
               for name, d in _members().items()}
    ctx = report.load_context(f"bro/{ENV}", _zip(tmp_path / "a.zip", members), n_boot=5)
    assert ctx.table is None
    with pytest.raises(report.ReportError, match="reaches any of the fit's thresholds"):
        report.figure_parity(ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert report.save_figure("data", ctx, tmp_path / "d.png").stat().st_size > 1000
    res = CliRunner().invoke(main, ["report", f"bro/{ENV}", "--runs", str(tmp_path / "a.zip"),
                                    "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert "Not drawn: the parity plot needs measured data" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("out, needle", [
    ("", "give a file name"),
    ("p.xyz", "ending in .png"),
    ("{file}/x.png", "cannot write"),
    ("{tmp}", "is a directory"),
])
def test_plot_and_report_to_a_bad_output_path_are_one_line(out, needle, tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "file").write_text("x")
    out = out.format(file=tmp_path / "file", tmp=tmp_path)
    res = CliRunner().invoke(main, ["plot", "batch", f"bro/{ENV}", "-o", out])
    assert needle in _one_line_exit_2(res)
    if out != "p.xyz":  # a report may have any name
        res = CliRunner().invoke(main, ["report", "bro/h1-stand-v0", "-o", out])
        _one_line_exit_2(res)


def _cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], env=env,
                          stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("args", [["recommend", "--compute", "1e17"],
                                  ["export", "bro/h1-crawl-v0"], ["fits"], ["--help"]])
def test_stdout_on_a_full_disk_is_one_line_not_a_traceback(args):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        res = _cli(*args, stdout=full)
    assert res.returncode == 1
    assert res.stderr.strip() == "error: cannot write output: No space left on device"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(1e14, 1e20), min_size=2, max_size=4, unique=True))
def test_export_yaml_never_repeats_a_key(budgets):
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets",
                                    ",".join(repr(b) for b in budgets)])
    if res.exit_code == 2:  # values that print alike are refused as repeats
        assert "repeat" in res.output
        return
    assert res.exit_code == 0, res.output
    keys = [line for line in res.output.splitlines() if re.match(r"^\S.*:$", line)]
    assert len(keys) == len(set(keys)) == len(budgets)


def test_export_of_an_unknown_fit_exits_2():
    assert "unknown fit" in _one_line_exit_2(CliRunner().invoke(main, ["export", "nope/x"]))
