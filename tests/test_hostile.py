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


def test_a_tar_archive_of_runs_reads_as_its_folder_does(tmp_path, monkeypatch):
    """`--runs calib.tgz` (a packed out-dir, as runs/bro-torch-Hopper-v5-minutes.tgz) was
    refused as 'neither a folder nor a zip'; links in it are skipped, an oversized member is
    refused unread, a file that is no archive at all is named."""
    import shutil
    import tarfile

    import calibration.archives as archives

    folder = _folder(tmp_path / "f", _members())
    packed = tmp_path / "runs.tgz"
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(folder, arcname="out/runs")
        link = tarfile.TarInfo("out/runs/evil.npy")
        link.type, link.linkname = tarfile.SYMTYPE, "/dev/zero"
        tar.addfile(link)
    from_tar, from_folder = read_runs(packed, env=ENV), read_runs(folder, env=ENV)
    assert [r.key for r in from_tar] == [r.key for r in from_folder] and from_tar
    for a, b in zip(from_tar, from_folder):
        np.testing.assert_array_equal(a.values["return"], b.values["return"])
    monkeypatch.setattr(archives, "MAX_MEMBER_BYTES", 10)
    with pytest.raises(ArchiveError, match="more than the .* MiB a run file may be"):
        read_runs(packed, env=ENV)
    (tmp_path / "notes.txt").write_text("not runs")
    with pytest.raises(ArchiveError, match="neither a folder nor a zip or tar archive of runs"):
        read_runs(tmp_path / "notes.txt")
    # A zip cut short (a hostile round: "neither ... a zip") is named as one, damaged.
    whole = tmp_path / "whole.zip"
    shutil.make_archive(str(whole.with_suffix("")), "zip", folder)
    (tmp_path / "cut.zip").write_bytes(whole.read_bytes()[:-30])
    with pytest.raises(ArchiveError, match="starts as a zip archive but .* truncated or damaged"):
        read_runs(tmp_path / "cut.zip")


def test_runs_of_a_module_qualified_env_are_read_by_the_name_that_names_the_fit(tmp_path):
    """A hostile round: `advisor calibrate --env mypkg.pointmass:PointMass-v0` wrote runs under
    that id and a fit named bro-torch/PointMass-v0, whose `report --runs OUT` asked for the runs
    of 'PointMass-v0' and was refused: "holds no runs for env 'PointMass-v0'; its envs:
    mypkg.pointmass:PointMass-v0". The name after `module:` now finds them, as the id does."""
    qualified = "mypkg.pointmass:PointMass-v0"
    folder = _folder(tmp_path / "f", {name.replace(f"/{ENV}/", f"/{qualified}/"): data
                                      for name, data in _members(2).items()})
    by_name, by_id = read_runs(folder, env="PointMass-v0"), read_runs(folder, env=qualified)
    assert [r.key for r in by_name] == [r.key for r in by_id] and len(by_name) == 2
    assert {r.env for r in by_name} == {qualified}
    with pytest.raises(ArchiveError, match=f"holds no runs for env 'other:PointMass-v0'; its "
                                           f"envs: {qualified}$"):
        read_runs(folder, env="other:PointMass-v0")  # another module's env of that name
    _folder(folder, {name.replace(f"/{ENV}/", "/other:PointMass-v0/"): data  # a reviewer's
                     for name, data in _members(1).items()})
    with pytest.raises(ArchiveError, match=r"holds runs of 2 envs named 'PointMass-v0' "
                                           rf"\({qualified}, other:PointMass-v0\): pass the id "
                                           "of one as --env, or a folder of its runs alone$"):
        read_runs(folder, env="PointMass-v0")
    assert len(read_runs(folder, env=qualified)) == 2


def test_an_archive_holding_the_same_run_twice_is_refused_naming_both(tmp_path):
    """Two out-dirs packed in one .tgz (as runs/stage1-h100-2026-11-28.tgz) read as one set
    kept the last copy of each run without a word; now both members are named."""
    import shutil

    one = _folder(tmp_path / "both" / "a", _members())
    shutil.copytree(one, tmp_path / "both" / "b")
    with pytest.raises(ArchiveError, match=r"holds the same run twice \(a/.* and b/") as exc:
        read_runs(tmp_path / "both", env=ENV)
    assert "\n" not in str(exc.value)
    assert read_runs(one, env=ENV)  # either folder alone reads
    # later_wins (the report's --runs on a calibrate out-dir): the member whose name sorts
    # later, b/, whatever order a tar lists them in
    import tarfile

    b = tmp_path / "both" / "b"
    for f in b.rglob("*.npy"):
        arr = np.load(f)
        arr[:, 1:] += 1000.0
        np.save(f, arr)
    packed = tmp_path / "both.tar"
    with tarfile.open(packed, "w") as tar:
        tar.add(b, arcname="b")
        tar.add(one, arcname="a")
    for where in (tmp_path / "both", packed):
        runs = read_runs(where, env=ENV, later_wins=True)
        mine = read_runs(b, env=ENV)
        assert [r.key for r in runs] == [r.key for r in mine]
        for r, m in zip(runs, mine):
            np.testing.assert_array_equal(r.values["return"], m.values["return"])


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
    # one seed: every resample is the run
    assert np.array_equal(table.boot[0], table.data, equal_nan=True)


def test_fit_of_runs_that_reach_no_threshold_is_one_line(tmp_path):
    members = {name: _npy(np.c_[np.load(io.BytesIO(d))[:, 0], np.full((40, 2), np.nan)])
               for name, d in _bro_grid(lambda i, u, n: 256).items()}
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "a.zip", members)),
                                    "--algorithm", "x", "--env", ENV, "-o",
                                    str(tmp_path / "f.json"), "--n-boot", "0"])
    assert "nothing to fit" in _one_line_exit_2(res)


def _bro_grid(batch_of) -> dict[str, bytes]:
    """A bro-layout archive of ENV: 3 utd x 3 widths, one batch size per config."""
    member = "runs/w{w}p{n}/utd_{u}/" + ENV + "/return/bs_{b}_lr_0.0003_sep_False.npy"
    return {member.format(w=w, n=n, u=u, b=batch_of(i, u, n)): _npy(_curve(i))
            for i, (u, (w, n)) in enumerate((u, wn) for u in (1, 2, 4)
                                            for wn in ((64, 10_000), (128, 40_000),
                                                       (256, 160_000)))}


def test_a_bro_archive_at_one_batch_size_is_fixed_at_it(tmp_path):
    """A hostile reviewer's: every run at batch 256 got paper A's published B~ (1,376 at the
    quickstart's config), and batch_size=256 then charged 1.2-1.7x for the batch D_J was
    measured at."""
    import advisor

    out = tmp_path / "f.json"
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "a.zip", _bro_grid(
        lambda i, u, n: 256))), "--algorithm", "x", "--env", ENV, "-o", str(out),
        "--n-boot", "0"])
    assert res.exit_code == 0, res.output
    f = advisor.load_fit(str(out))
    assert f.model.batch_size.kind == "fixed" and f.model.batch_size.a_b == 256
    assert f.data_to_target(2, 4e4, batch_size=256) == f.data_to_target(2, 4e4)
    assert "published B~ is not used" in " ".join(f.model.provenance.notes)


def test_a_bro_archive_with_a_second_batch_size_at_one_config_is_refused(tmp_path):
    """A second reviewer's: one extra run at another batch size sent a user's archive to paper
    A's published B~ (2.2x the data at the batch size every other run used), with a note
    about a batch grid the archive did not have."""
    members = _bro_grid(lambda i, u, n: 256)
    members[MEMBER.format(utd=1, bs=512)] = _npy(_curve(0))  # a second batch at (1, 1e4)
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "a.zip", members)),
                                    "--algorithm", "x", "--env", ENV, "-o",
                                    str(tmp_path / "f.json"), "--n-boot", "0"])
    assert "several at some (utd, params)" in _one_line_exit_2(res)


def test_batch_sizes_that_follow_no_law_are_refused_in_one_line(tmp_path):
    """A hostile reviewer's: alternate configs at 256 and 1024 made a 'B~' of 512 that no run
    used, fitted with 75% error, and the notes said its checks passed."""
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "a.zip", _bro_grid(
        lambda i, u, n: 256 if i % 2 else 1024))), "--algorithm", "x", "--env", ENV,
        "-o", str(tmp_path / "f.json"), "--n-boot", "0"])
    assert "mean relative error (at most 15%)" in _one_line_exit_2(res)


def test_fit_errors_of_the_build_are_one_line(tmp_path):
    # BuildError was raised but never defined (NameError); passive-critic-only archives
    # crashed in data_table.
    members = {k.replace(ENV, "New-v0"): v for k, v in _members().items()}
    res = CliRunner().invoke(main, ["fit", str(_zip(tmp_path / "a.zip", members)), "--algorithm",
                                    "x", "--env", "New-v0", "-o", str(tmp_path / "f.json")])
    # (thresholds now come from the data when no range is known; the batch law is missing)
    assert "no batch-size law for 'New-v0'" in _one_line_exit_2(res)
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
    res = CliRunner().invoke(main, ["report", "bro/h1-stand-v0", "-o", out])
    _one_line_exit_2(res)


def test_a_report_is_written_only_to_an_html_name(tmp_path):
    """HTML went into r.pdf without a word; plot already refused a wrong suffix."""
    res = CliRunner().invoke(main, ["report", "bro/h1-stand-v0", "-o", str(tmp_path / "r.pdf")])
    assert "ending in .html" in _one_line_exit_2(res)
    assert not (tmp_path / "r.pdf").exists()


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


def test_export_errors_hint_at_its_target_option_and_the_target_it_names_works():
    """export had no --target, and its errors left out the hint to pass one; it now has one
    (a fresh-user round), so the hint stays and following it gives the row. (No budget met:
    exit 2, the error on stderr.)"""
    args = ["export", "bro-torch/Hopper-v5", "--kind", "data", "--budgets", "5e3", "--format",
            "json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and res.stdout == "", res.output
    hint = re.search(r"the highest target this budget reaches is (\S+) \(use --target",
                     res.stderr)
    assert hint, res.stderr
    res = CliRunner().invoke(main, [*args, "--target", hint.group(1)])
    (row,) = json.loads(res.stdout)["budgets"]
    assert "error" not in row and row["target"] == float(hint.group(1))


def test_export_delta_is_recommends_for_total_budgets():
    """export --kind total --delta d: each entry is what recommend --total --delta d gives."""
    from advisor import Budget, recommend

    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--kind", "total", "--budgets",
                                    "1e18,3e18", "--delta", "5e10", "--format", "json"])
    assert res.exit_code == 0, res.output
    for row in json.loads(res.stdout)["budgets"]:
        r = recommend(Budget(total=row["total"], delta=5e10), fit="bro/h1-crawl-v0")
        assert (row["width"], row["utd"], row["target"]) == (r.width, r.utd, r.target)
        assert row["predicted_data"] == pytest.approx(r.predicted_data)
        # what a total budget limits, and the delta it was charged at, are in the entry
        assert row["delta"] == 5e10 and row["predicted_total"] == pytest.approx(
            r.predicted_compute + 5e10 * r.predicted_data)
        assert row["predicted_total"] <= row["total"] or not row["within_budget"]
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--delta", "5e10"])
    assert "--delta applies to --kind total" in _one_line_exit_2(res)


@pytest.mark.parametrize("fit, says", [
    ("/nowhere/at/all/fit", "fit file /nowhere/at/all/fit does not exist"),
    ("./myfit.JSON", "fit file myfit.JSON does not exist"),
    ("bro/h1-crawl", "unknown fit 'bro/h1-crawl'; did you mean 'bro/h1-crawl-v0'?"),
])
def test_a_missing_fit_path_is_said_to_be_missing_not_unknown(fit, says):
    """A hostile tester's: an absolute path, or one ending in .JSON, was 'unknown fit'."""
    line = _one_line_exit_2(CliRunner().invoke(main, ["recommend", "--fit", fit, "--compute",
                                                      "1e17"]))
    assert says in line


def test_a_fit_id_of_dots_alone_is_refused():
    """A hostile tester's: `advisor fit --algorithm .. --name ..` made the fit id '../..'."""
    import pydantic

    import advisor
    from advisor.fitfile import FitFile, fit_id_ok

    for bad in ("../..", "./x", "x/..", "-/_", "a" * 101 + "/b", "a/b/c"):
        assert not fit_id_ok(bad), bad
    for good in ("bro/h1-crawl-v0", "bro-torch/Hopper-v5", "a/b", "x.1/_y", "a" * 100 + "/b"):
        assert fit_id_ok(good), good
    doc = advisor.load_fit("bro/h1-crawl-v0").model.model_dump()
    with pytest.raises(pydantic.ValidationError, match="letter or digit in each"):
        FitFile.model_validate({**doc, "id": "../.."})


def test_export_of_an_unknown_fit_exits_2():
    assert "unknown fit" in _one_line_exit_2(CliRunner().invoke(main, ["export", "nope/x"]))


@pytest.mark.parametrize("budgets, says", [
    ("1,000", "budget '000' is not a positive finite number (budgets are separated by commas, "
              "so write 1000 or 1e3, not 1,000)"),
    ("1e16,,1e17", "none empty, got '1e16,,1e17'"),
    ("1e16,", "none empty"),
    ("1e16,abc", "budget 'abc' is not a number"),
])
def test_export_budgets_name_the_field_that_is_wrong(budgets, says):
    """A hostile tester's: `--budgets 1,000` failed with 'compute must be a positive finite
    number of FLOPs, got 0.0', and an empty field was dropped without a word."""
    line = _one_line_exit_2(CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets",
                                                      budgets]))
    assert says in line


def test_export_zoo_to_a_folder_says_each_files_warnings(tmp_path):
    """A hostile tester's: with --out-dir (several budgets) the extrapolation warnings and the
    critic note were not on stderr, as they are for one budget."""
    res = CliRunner().invoke(main, ["export", "bro/h1-crawl-v0", "--budgets", "1e16,1e17",
                                    "--format", "zoo", "--env", "Humanoid-v5", "-o",
                                    str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert len(res.stdout.split()) == 2
    assert "warning: compute 1e+16: utd 0.75 is outside the fitted range" in res.stderr
    assert "warning: compute 1e+17: params 7.98e+07 is outside the fitted range" in res.stderr
    assert res.stderr.count("note: SB3 BroNetSACPolicy critic") == 2  # one per width


# --- calibrate: everything checked before the first unit ---------------------------------------

CAL_ENV = "InvertedPendulum-v5"


@pytest.fixture
def no_training(monkeypatch):
    """calibrate with training replaced by a failure: a check that passes reaches it."""
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")

    def trained(*a, **kw):
        raise AssertionError("a unit was about to train")

    monkeypatch.setattr("calibration.calibrate.run_units", trained)


def _calibrate(*args, out=None):
    out_args = [] if out is None else ["--out-dir", str(out)]
    return CliRunner().invoke(main, ["calibrate", "--device", "cpu", *args, *out_args])


def _grid(tmp_path, **changes) -> str:
    from calibration.grid import preset

    path = tmp_path / "grid.json"
    path.write_text(json.dumps(dict(preset("smoke").model_dump(), **changes)))
    return str(path)


def _big_width_grid(tmp_path) -> str:
    path = _grid(tmp_path, widths=[16, 32, "BIG"])  # json.dumps cannot write the number
    Path(path).write_text(Path(path).read_text().replace('"BIG"', "9" * 5000))
    return path


@pytest.mark.parametrize("case, needle", [
    (lambda t: ["--env", CAL_ENV, "--algorithm", "my algo/../x"], "cannot name the fit"),
    (lambda t: ["--env", ""], "the env id is empty: give one such as Hopper-v5"),
    (lambda t: ["--env", CAL_ENV + " "], f"env id '{CAL_ENV} ' is not a Gymnasium id such as "
     "Hopper-v5 or your_module:YourEnv-v0"),
    (lambda t: ["--env", "dm_control/cheetah-run-v0"],
     "a namespaced env id (dm_control/cheetah-run-v0) cannot name a fit or its folders yet"),
    (lambda t: ["--env", "nosuchmodule:Foo-v0"], "cannot be made: ModuleNotFoundError"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, utds=[1, 2], widths=[16, 32])],
     "2 utds x 2 widths = 4 stage-2 configurations; at least 5"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, seeds=[-1, 0])], "seeds.0"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, utds=[1e-9, 1, 2])], "utds must lie in"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, utds=[1, 1.0000001, 2])],
     "6 significant digits"),
    (lambda t: ["--env", CAL_ENV, "--steps", str(10**12)], "GiB"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, widths=[16, 32, 2**16])], "GiB"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, quantiles=10**9)], "GiB"),
    (lambda t: ["--env", CAL_ENV, "--seeds", "100000"], "2<=x<=1000"),
    (lambda t: ["--env", CAL_ENV, "--seeds", "1"], "2<=x<=1000"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, seeds=[0])],
     "seeds: List should have at least 2"),
    (lambda t: ["--env", CAL_ENV, "--created", "2026-13-45"], "YYYY-MM-DD"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, configs=[
        {"utd": 1, "width": 16}, {"utd": 2, "width": 32}, {"utd": 4, "width": 64}])],
     "the grid has in its planned configs 3 stage-2 configurations; at least 5"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, configs=[
        {"utd": 1e-7, "width": 16}] + [{"utd": 1, "width": w} for w in (16, 32, 64, 128)])],
     "configs' utds must lie in [0.001, 1000] updates per env step, got [1e-07, 1.0, 1.0"),
    # a hostile round: a 401-digit step count was an OverflowError traceback; a comment key
    # was 'not a number'; a huge actor width a memory error that did not name it
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, steps=10**400)],
     "steps: Input should be less than or equal to 1000000000000"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, comment="my grid")],
     "unknown key 'comment'; a grid has name, steps"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, actor_width=10**9)], "actor_width"),
    (lambda t: ["--env", CAL_ENV, "--grid", _grid(t, widths=[16, 32, 10**400])],
     "widths may be at most 65,536 units, got a number of 401 digits"),
    (lambda t: ["--env", CAL_ENV, "--grid", _big_width_grid(t)],
     "holds an integer of thousands of digits"),  # was Python's sys.set_int_max_str_digits()
    (lambda t: ["--env", CAL_ENV, "--preset", "full", "--grid", _grid(t)],
     "--preset and --grid both name the grid"),
    (lambda t: ["--env", "InvertedPendulum"], "names no version: give it, e.g. --env "
     "InvertedPendulum-v5"),
    # a new user's: gymnasium took v1 with a warning, and the fit and clients had no version
    (lambda t: ["--env", "gymnasium.envs.classic_control:Pendulum"], "names no version: give "
     "it, e.g. --env gymnasium.envs.classic_control:Pendulum-v1 (the latest)"),
    (lambda t: ["--env", "PointMass-v0"], "`PointMass` doesn't exist; an env of your own: "
     "register it in a module (gymnasium.register(id='Name-v0', entry_point=...)), make the "
     "module importable (installed, or on PYTHONPATH) and pass --env your_module:Name-v0"),
])
def test_calibrate_refuses_bad_input_before_the_first_unit(case, needle, tmp_path, no_training):
    res = _calibrate(*case(tmp_path), out=tmp_path / "out")
    assert needle in _one_line_exit_2(res)
    assert not (tmp_path / "out" / "runs").exists()


def _calibrate_sees(option, runs, tmp_path, monkeypatch):
    """What calibrate() receives as `option`, and the command it records, for each run's args."""
    seen = []

    def calibrate(env_id, **kw):
        seen.append((kw[option], kw["command"]))
        return tmp_path / "fit.json"

    monkeypatch.setattr("calibration.calibrate.calibrate", calibrate)
    for args in runs:
        res = _calibrate("--env", CAL_ENV, *args, out=tmp_path / "o")
        assert res.exit_code == 0, res.output
    return seen


def test_compile_takes_a_mode_a_bare_flag_means_the_whole_update(tmp_path, monkeypatch):
    runs = ([], ["--compile"], ["--compile", "regions"], ["--compile", "none"])
    seen = _calibrate_sees("compile", runs, tmp_path, monkeypatch)
    assert [mode for mode, _ in seen] == ["none", "update", "regions", "none"]
    assert "--compile" not in seen[0][1] and "--compile update" in seen[1][1]
    line = _one_line_exit_2(_calibrate("--env", CAL_ENV, "--compile", "fast", out=tmp_path))
    assert "'fast' is not one of 'none', 'regions', 'update'" in line


def test_bf16_reaches_calibrate_and_the_recorded_command(tmp_path, monkeypatch):
    seen = _calibrate_sees("bf16", ([], ["--bf16"]), tmp_path, monkeypatch)
    assert [flag for flag, _ in seen] == [False, True]
    assert "--bf16" not in seen[0][1] and "--bf16" in seen[1][1]


def test_make_env_passes_an_envs_warnings_on_and_names_a_module_without_the_id(tmp_path,
                                                                                 monkeypatch):
    """A reviewer's: the check of unversioned ids swallowed every warning of an env registered
    without a version, and `mypkg:Typo-v0` was told to pass `your_module:Name-v0`."""
    pytest.importorskip("gymnasium")
    from calibration.learner.trainer import LearnerError, make_env

    (tmp_path / "warny.py").write_text(
        "import warnings, numpy as np, gymnasium as gym\n"
        "from gymnasium import spaces\n"
        "class W(gym.Env):\n"
        "    def __init__(self, **kw):\n"
        "        warnings.warn('warny says so')\n"
        "        self.observation_space = spaces.Box(-1, 1, (2,), np.float32)\n"
        "        self.action_space = spaces.Box(-1, 1, (1,), np.float32)\n"
        "    def reset(self, *, seed=None, options=None):\n"
        "        super().reset(seed=seed)\n"
        "        return np.zeros(2, np.float32), {}\n"
        "    def step(self, a):\n"
        "        return np.zeros(2, np.float32), 0.0, False, False, {}\n"
        "gym.register('Warny', entry_point=W)\n"
        "gym.register('WarnyV-v0', entry_point=W)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for env_id in ("warny:Warny", "warny:WarnyV-v0"):
        with pytest.warns(UserWarning, match="warny says so"):
            make_env(env_id, 0).close()
    with pytest.raises(LearnerError, match=r"'warny:WarnyV' names no version: give it, e.g. "
                                           r"--env warny:WarnyV-v0 \(the latest\)"):
        make_env("warny:WarnyV", 0)
    with pytest.raises(LearnerError, match=r"`Typo` doesn't exist; warny was imported, and "
                                           r"registers no such id \(pass the id its "
                                           r"gymnasium.register\(id=...\) gives\)$"):
        make_env("warny:Typo-v0", 0)


def _run_in(folder: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)


def test_making_a_mujoco_env_leaves_no_mujoco_log_in_the_users_folder(tmp_path):
    """Noticed in session 36: reading HalfCheetah-v5's size for a zoo file (and calibrating on
    it) wrote MuJoCo's MUJOCO_LOG.TXT into the folder the command ran in. Each case runs in a
    fresh process (MuJoCo's warning handler is process-wide) in a folder of its own."""
    pytest.importorskip("mujoco")
    pytest.importorskip("gymnasium")
    env_id = "HalfCheetah-v5"
    folders = {k: tmp_path / k for k in ("plain", "zoo", "learner", "cli")}
    for folder in folders.values():
        folder.mkdir()
    plain = _run_in(folders["plain"], f"import gymnasium; gymnasium.make({env_id!r}).close()")
    assert plain.returncode == 0, plain.stderr
    if not (folders["plain"] / "MUJOCO_LOG.TXT").exists():
        pytest.skip(f"this MuJoCo makes {env_id} without a warning: nothing to keep out")
    zoo = _run_in(folders["zoo"], "from advisor.integrations.zoo import env_input_dim; "
                                  f"print(env_input_dim({env_id!r}))")
    assert zoo.returncode == 0 and zoo.stdout.split() == ["23"], zoo.stderr
    assert "WARNING" not in zoo.stdout + zoo.stderr  # the probe only reads the spaces
    learner = _run_in(folders["learner"],
                      "from calibration.learner.trainer import VectorEnvs, make_env\n"
                      f"make_env({env_id!r}, 0).close()\n"
                      f"VectorEnvs({env_id!r}, [0, 1]).vec.close()\n")
    assert learner.returncode == 0, learner.stderr
    # the warning is still said, once, on stderr
    assert learner.stderr.count("MuJoCo warning: compiler attribute 'settotalmass'") == 1
    cli = _run_in(folders["cli"], "from advisor.cli import main; main(['recommend', "
                                  f"'--compute', '1e17', '--format', 'zoo', '--env', {env_id!r}])")
    assert cli.returncode == 0 and "at the env's input 23 = obs + action" in cli.stderr, cli.stderr
    for name in ("zoo", "learner", "cli"):
        assert os.listdir(folders[name]) == [], name


def test_mujoco_warnings_on_stderr_say_each_once_whatever_its_time(capsys, monkeypatch):
    """MuJoCo says a simulation warning once per episode, its time in the text: a long
    unstable run would print one line per episode."""
    from advisor import _mujoco

    monkeypatch.setattr(_mujoco, "_SHOWN", set())
    for dof, time_ in ((3, "0.1234"), (5, "12.5"), (3, "1e-3")):
        _mujoco._to_stderr(f"Nan, Inf or huge value in QACC at DOF {dof}. The simulation is "
                           f"unstable. Time = {time_}.")
    _mujoco._to_stderr("another kind")
    said = " (its repeats in this process are not shown)"
    assert capsys.readouterr().err.splitlines() == [  # another DOF is said (a review's)
        "MuJoCo warning: Nan, Inf or huge value in QACC at DOF 3. The simulation is unstable. "
        f"Time = 0.1234.{said}", "MuJoCo warning: Nan, Inf or huge value in QACC at DOF 5. The "
        f"simulation is unstable. Time = 12.5.{said}", f"MuJoCo warning: another kind{said}"]


def test_steps_may_be_written_as_a_number_that_is_whole(tmp_path, monkeypatch):
    """A new user's: `--steps 5e3` was "'5e3' is not a valid integer range", where --data 5e5
    is taken; the command recorded says 5000."""
    seen = _calibrate_sees("steps", (["--steps", "5e3"], ["--steps", "300"],
                                     ["--steps", "1e12"]), tmp_path, monkeypatch)
    assert [steps for steps, _ in seen] == [5000, 300, 10**12]  # the most a grid takes
    assert "--steps 5000" in seen[0][1]
    res = CliRunner().invoke(main, ["plan", "--runs", "6", "--preset", "cpu", "--steps", "5e3",
                                    "--format", "json"])
    assert res.exit_code == 0 and {r["steps"] for r in json.loads(res.stdout)["runs"]} == {5000}
    for bad, says in (("5.5", "'5.5' is not a whole number of env steps"),
                      ("0", "must be 1 env step or more, got '0'"),
                      ("abc", "'abc' is not a number"),
                      # a hostile round's: "grid does not validate: steps: Input should be ..."
                      (str(2**53 + 1), "must be at most 1e+12 env steps per run, got "
                                       f"'{2**53 + 1}'")):
        assert says in _one_line_exit_2(_calibrate("--env", CAL_ENV, "--steps", bad,
                                                   out=tmp_path / "o"))
    res = CliRunner().invoke(main, ["plan", "--runs", "5", "--steps", "1e30", "--input-dim", "23"])
    assert res.exit_code == 2 and "--steps': must be at most 1e+12 env steps per run, got " \
        "'1e30'" in res.output


def test_the_memory_refusal_says_what_it_needs_and_what_there_is(tmp_path, no_training):
    line = _one_line_exit_2(_calibrate("--env", CAL_ENV, "--steps", str(10**12),
                                       out=tmp_path / "o"))
    need, have = map(float, re.findall(r"about ([\d.e+]+) GiB.* ([\d.e+]+) GiB of available",
                                       line)[0])
    assert need > 1e3 and 0 < have < need


@pytest.mark.parametrize("content", ["[]", '"a string"', "{", "dir"])
def test_a_grid_file_that_is_not_an_object_is_one_line(content, tmp_path, no_training):
    path = tmp_path / "g.json"
    path.mkdir() if content == "dir" else path.write_text(content)
    line = _one_line_exit_2(_calibrate("--env", CAL_ENV, "--grid", str(path),
                                       out=tmp_path / "o"))
    assert "g.json" in line


@pytest.mark.parametrize("content", ["[]", '"a string"', "{", "dir", "{}", '{"name": "x"}',
                                     '{"env_id": "x", "grid": 1, "digest": "d"}',
                                     '{"env_id": "x", "grid": {"name": "smoke"}, "digest": "d"}'])
def test_an_out_dir_whose_grid_json_is_not_ours_is_refused(content, tmp_path, no_training):
    """A hostile tester's: '{"name": "x"}' was 'results of a different calibration (env None
    there)', whose hint (--grid OUT/grid.json) then failed too."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "grid.json").mkdir() if content == "dir" else (out / "grid.json").write_text(content)
    line = _one_line_exit_2(_calibrate("--env", CAL_ENV, out=out))
    assert "grid.json" in line and "different calibration" not in line, line


def test_bad_out_dirs_and_fit_files_are_refused_before_training(tmp_path, no_training):
    (tmp_path / "file").write_text("x")
    cases = [
        (["--out-dir", ""], "out-dir is empty"),
        (["--out-dir", str(tmp_path / "file" / "o")], "cannot create the out-dir"),
        (["--out-dir", str(tmp_path / "o"), "--fit-out", ""], "fit file path is empty"),
        (["--out-dir", str(tmp_path / "o"), "--fit-out", str(tmp_path)], "is a directory"),
        (["--out-dir", str(tmp_path / "o"), "--fit-out", str(tmp_path / "o" / "grid.json")],
         "keeps its own files"),
        # a hostile round: B~'s record and another calibration's grid were overwritten
        (["--out-dir", str(tmp_path / "o"), "--fit-out",
          str(tmp_path / "o" / "batch_law.json")], "keeps its own files"),
        (["--out-dir", str(tmp_path / "o"), "--fit-out", str(tmp_path / "other" / "grid.json")],
         "not a fit file"),
        (["--out-dir", str(tmp_path / "o"), "--fit-out", str(tmp_path / "file")],
         "not a fit file"),
        (["--out-dir", str(tmp_path / "o"), "--fit-out", str(tmp_path / "file" / "f.json")],
         "file is a file, not a folder"),
    ]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "grid.json").write_text('{"name": "smoke"}')
    for args, needle in cases:
        assert needle in _one_line_exit_2(_calibrate("--env", CAL_ENV, *args)), args
    assert (tmp_path / "file").read_text() == "x"
    from calibration.calibrate import calibrate

    with pytest.raises(Exception, match="exists and is not a folder"):
        calibrate(CAL_ENV, out_dir=tmp_path / "file", device="cpu")


def test_an_out_dir_that_cannot_be_written_is_refused(tmp_path, no_training, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:  # root writes anyway: then fail the write check itself
        out.chmod(0o555)
    else:
        def denied(*a, **kw):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("tempfile.mkstemp", denied)
    try:
        line = _one_line_exit_2(_calibrate("--env", CAL_ENV, out=out))
    finally:
        out.chmod(0o755)
    assert "cannot write in the out-dir" in line and "Permission denied" in line


def test_a_done_marker_that_is_a_folder_is_refused(tmp_path, no_training):
    (tmp_path / "o" / "units" / "s1_x.json").mkdir(parents=True)
    assert "is not a file" in _one_line_exit_2(_calibrate("--env", CAL_ENV, out=tmp_path / "o"))


def test_a_locked_out_dir_is_refused_naming_the_holder(tmp_path, no_training):
    from calibration.outdir import OutDirBusyError, lock_out_dir

    out = tmp_path / "o"
    out.mkdir()
    with lock_out_dir(out):
        line = _one_line_exit_2(_calibrate("--env", CAL_ENV, out=out))
        assert f"in use by another advisor calibrate (pid {os.getpid()})" in line
        with pytest.raises(OutDirBusyError):
            with lock_out_dir(out):
                pass
    with lock_out_dir(out):  # released when the holder is done
        pass


def test_a_lock_file_that_is_a_symlink_is_refused_not_followed(tmp_path, no_training):
    """A hostile round: calibrate.lock linked to another file got our pid written into it."""
    out, precious = tmp_path / "o", tmp_path / "precious.txt"
    out.mkdir()
    precious.write_text("keep me")
    (out / "calibrate.lock").symlink_to(precious)
    line = _one_line_exit_2(_calibrate("--env", CAL_ENV, out=out))
    assert "calibrate.lock is a symbolic link; remove it" in line
    assert precious.read_text() == "keep me"


def test_a_fit_out_name_too_long_is_one_line_naming_it(tmp_path):
    name = "b" * 300 + ".json"
    line = _one_line_exit_2(_calibrate("--env", CAL_ENV, "--fit-out", str(tmp_path / name),
                                       out=tmp_path / "o"))
    assert f"cannot write the fit file {tmp_path / name}" in line and "too long" in line


def test_a_damaged_done_marker_is_refused_not_trained_over(tmp_path):
    """Markers are written last and atomically: one that cannot be read was damaged later, and
    training the unit again would overwrite the logs it finished (a hostile round saw a
    truncated marker retrain a finished GPU population on the CPU)."""
    from calibration.grid import GridError, Unit
    from calibration.runner import unit_done

    unit = Unit(stage=1, width=16, batch_size=32, utds=[1.0], seeds=[0])
    marker = tmp_path / "units" / f"{unit.id}.json"
    assert unit_done(tmp_path, unit) is None  # no marker: not done
    marker.parent.mkdir()
    manifest = {"device_name": "cpu", "versions": {}, "config": {"steps": 10}}
    for record, needle in [({"unit": unit.model_dump(mode="json")}, "no usable manifest"),
                           ({"unit": unit.model_dump(mode="json"), "manifest": None},
                            "no usable manifest"),
                           ([], "not the done marker"), ("x", "not the done marker"),
                           ({"unit": dict(unit.model_dump(mode="json"), width=32),
                             "manifest": manifest}, "not the done marker")]:
        marker.write_text(json.dumps(record))
        with pytest.raises(GridError, match=needle) as err:
            unit_done(tmp_path, unit)
        assert "remove it to train that population again" in str(err.value)
        assert "\n" not in str(err.value)
    marker.write_text('{"unit": ')
    with pytest.raises(GridError, match="not a done marker; restore it"):
        unit_done(tmp_path, unit)
    marker.write_text(json.dumps({"unit": unit.model_dump(mode="json"), "manifest": manifest}))
    assert unit_done(tmp_path, unit) is not None
    # a marker written before units could pack batch sizes (no batch_sizes key) still counts
    old = {k: v for k, v in unit.model_dump(mode="json").items() if k != "batch_sizes"}
    marker.write_text(json.dumps({"unit": old, "manifest": manifest}))
    assert unit_done(tmp_path, unit) is not None
    # a packed unit whose marker lists the same members in another order (by batch size, as
    # before members were listed by utd) counts; one with a member of another utd does not
    packed = Unit(stage=1, width=16, batch_size=64, utds=[1.0, 2.0, 1.0, 2.0],
                  seeds=[0, 0, 0, 0], batch_sizes=[32, 32, 64, 64])
    now = Unit(stage=1, width=16, batch_size=64, utds=[1.0, 1.0, 2.0, 2.0],
               seeds=[0, 0, 0, 0], batch_sizes=[32, 64, 32, 64])
    assert now.id == packed.id
    marker = tmp_path / "units" / f"{now.id}.json"
    marker.write_text(json.dumps({"unit": packed.model_dump(mode="json"), "manifest": manifest}))
    assert unit_done(tmp_path, now) is not None
    other = packed.model_dump(mode="json")
    other["utds"] = [1.0, 2.0, 2.0, 2.0]
    marker.write_text(json.dumps({"unit": other, "manifest": manifest}))
    with pytest.raises(GridError, match="not the done marker"):
        unit_done(tmp_path, now)


def test_a_truncated_log_of_a_finished_unit_names_the_marker_to_remove(tmp_path):
    from calibration.calibrate import CalibrationError, _read
    from calibration.grid import Unit

    unit = Unit(stage=1, width=16, batch_size=32, utds=[1.0], seeds=[0])
    log = tmp_path / "runs" / unit.id / "w16p100" / "utd_1" / CAL_ENV / "return" / \
        "bs_32_lr_0.0003_sep_False.npy"
    log.parent.mkdir(parents=True)
    log.write_bytes(_npy(_curve(0))[:100])
    with pytest.raises(CalibrationError, match=rf"remove .*units/{unit.id}\.json"):
        _read(tmp_path, [unit], CAL_ENV)


def test_one_blas_thread_pins_and_restores():
    from calibration.build import _openblas_thread_setters, one_blas_thread

    setters = _openblas_thread_setters()
    if not setters:
        pytest.skip("no OpenBLAS loaded that we can pin")
    before = [get() for _, get in setters]
    with one_blas_thread():
        assert [get() for _, get in setters] == [1] * len(setters)
    assert [get() for _, get in setters] == before


# --- calibrate: one run per out-dir, no orphans ------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("children", [1, 2])
def test_ctrl_c_at_a_terminal_while_workers_start_is_one_line(tmp_path, children):
    """A hostile round: Ctrl-C at a terminal goes to the whole process group; workers caught
    starting (mid-import) or idle printed 50-120 lines of tracebacks, even segfaults, under the
    one-line error. They now start with SIGINT blocked; the parent stops them. So do the
    processes started before them: glfw's library probe (MuJoCo's import, while the env is
    checked) and the resource trackers (`children` 1: caught as the first one starts)."""
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "advisor.cli", "calibrate", "--env", CAL_ENV,
                             "--preset", "smoke", "--device", "cpu", "--quiet", "--n-jobs", "2",
                             "--out-dir", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(_children(proc.pid)) < children:
        time.sleep(0.005)
    workers = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: interrupted"), \
        err[-3000:]
    time.sleep(1)
    assert not [w for w in workers if _alive(w)]


@pytest.mark.slow
def test_kill_9_of_calibrate_stops_its_workers_and_a_second_run_is_refused(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "advisor.cli", "calibrate", "--env", CAL_ENV, "--preset",
           "smoke", "--device", "cpu", "--quiet", "--n-jobs", "2", "--out-dir", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list((out / "runs").rglob("*.npy")):
            time.sleep(0.2)  # until the workers are training (their first logs are written)
        workers = [p for p in _children(proc.pid)
                   if b"loky" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert workers, "no loky worker found"
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert f"in use by another advisor calibrate (pid {proc.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        markers = {p.name: p.read_bytes() for p in (out / "units").glob("*.json")}
        t = time.time()
        while time.time() - t < 10 and any(map(_alive, workers)):
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "workers outlived their calibration"
        assert time.time() - t < 5
        time.sleep(1)
        assert {p.name: p.read_bytes() for p in (out / "units").glob("*.json")} == markers
    finally:
        try:  # the workers share the session's process group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("argv", [
    ["fit", "{bad}", "--algorithm", "a", "--env", "b", "-o", "{tmp}/q.json"],
    ["report", "bro/h1-crawl-v0", "--runs", "{bad}", "-o", "{tmp}/q.html"],
])
@pytest.mark.parametrize("bad", ["fifo", "/dev/zero"])
def test_run_archives_that_are_fifos_or_devices_are_refused_unread(tmp_path, argv, bad):
    """A FIFO blocked `advisor fit` forever and /dev/zero ate memory until killed (in
    zipfile.is_zipfile); fit files already had this check, run archives now do."""
    if bad == "fifo":
        bad = str(tmp_path / "runs.fifo")
        os.mkfifo(bad)
    args = [a.format(bad=bad, tmp=tmp_path) for a in argv]
    res = subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2, res.stderr[-1000:]
    assert res.stderr.count("\n") == 1 and "not a regular file" in res.stderr, res.stderr
    assert not list(tmp_path.glob("q.*"))


@pytest.mark.parametrize("argv", [["recommend", "--compute", "1e17"], ["fits"], ["schema"],
                                  ["recommend", "--compute", "1e17", "--format", "args"]])
def test_a_closed_stdout_is_one_line_not_a_traceback(argv):
    """`advisor recommend >&-`: Python starts with sys.stdout None; that was an AttributeError
    traceback from every command."""
    res = subprocess.run([sys.executable, "-m", "advisor.cli", *argv], capture_output=False,
                         stderr=subprocess.PIPE, text=True, timeout=120,
                         preexec_fn=lambda: os.close(1))
    assert res.returncode == 1
    assert res.stderr == "error: cannot write output: standard output is closed\n", res.stderr


@pytest.mark.parametrize("extra, needle", [
    (["--delta", "-1"], "--delta"), (["--delta", "nan"], "--delta"), (["--delta", "0"], "--delta"),
    (["--target-range", "100", "50"], "J_MIN < J_MAX"),
    (["--target-range", "nan", "50"], "returns within +-1e+15"),
    (["--target-range", "-1e308", "1e308"], "returns within +-1e+15"),
    (["--created", "2026-13-45"], "YYYY-MM-DD"), (["--created", "x" * 50], "YYYY-MM-DD"),
    (["--input-dim", "20000"], "critic input of 7"),
    # a hostile tester's: a range below the runs' starting returns fitted with 0% error and
    # gave zero-width intervals
    (["--target-range", "-100", "50"], "is reached by every run at its first evaluation"),
])
def test_fit_options_that_make_no_valid_fit_are_one_line_errors(tmp_path, data_dir, extra,
                                                                 needle):
    """These were pydantic tracebacks (exit 1) after the whole fit, or silently replaced
    (`--delta 0` became the default while the file recorded `--delta 0.0`)."""
    archive = data_dir / "dmc_bro_ablations.zip"
    out = tmp_path / "g.json"
    res = CliRunner().invoke(main, ["fit", str(archive), "--algorithm", "bro", "--env",
                               "acrobot-swingup", "-o", str(out), "--n-boot", "0", *extra])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and needle in res.output, \
        res.output
    assert not out.exists()


@pytest.mark.parametrize("widths", ["inf,64", "64,1e400", "64.9,128.2", "16,1e19"])
def test_plan_widths_must_be_finite_whole_numbers(widths):
    res = CliRunner().invoke(main, ["plan", "--runs", "3", "--widths", widths])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "--widths" in res.output, \
        res.output


def test_plot_budget_of_both_kinds_names_the_options_it_has():
    """plot and report have no --delta; the message named one."""
    res = CliRunner().invoke(main, ["plot", "frontier", "bro/h1-crawl-v0", "--total", "1e18",
                                    "--compute", "1e17", "-o", "x.png"])
    line = _one_line_exit_2(res)
    assert "--total" in line and "delta" not in line


def _hopper_out_dir(tmp_path) -> Path:
    import tarfile

    runs = Path(__file__).resolve().parent.parent / "runs" / "bro-torch-Hopper-v5-minutes.tgz"
    with tarfile.open(runs) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "minutes-out"


HOPPER = ("--env", "Hopper-v5", "--algorithm", "bro-torch", "--preset", "minutes")



@pytest.mark.parametrize("damage, needle", [
    ("remove", "no return curve for utd 1, batch size {b}"),
    ("rows", "the return curve of utd 1, batch size {b} has 2 evaluations of 8 seeds, not 10 of 8"),
    ("seeds", "the return curve of utd 1, batch size {b} has 10 evaluations of 4 seeds, not 10 "
              "of 8"),
])
def test_a_finished_unit_with_missing_logs_is_refused_not_fitted(tmp_path, damage, needle):
    """The Hopper out-dir behind bro-torch/Hopper-v5 with one return curve removed, cut to 2
    of its 10 evaluations, or to 4 of its 8 seeds: fitted without a word before (8 configs)."""
    pytest.importorskip("gymnasium")
    out = _hopper_out_dir(tmp_path)
    (unit_dir,) = (out / "runs").glob("s2_w128_*")  # its batch sizes are the fitted B~'s
    unit = unit_dir.name
    (curve,) = (unit_dir / "w128p164296" / "utd_1" / "Hopper-v5" / "return").glob("bs_*.npy")
    needle = needle.format(b=curve.name.split("_")[1])
    if damage == "remove":
        curve.unlink()
    else:
        values = np.load(curve, allow_pickle=False)
        # rows: evaluations; columns: the env step, then one per seed
        np.save(curve, values[:2] if damage == "rows" else values[:, :1 + 4])
    line = _one_line_exit_2(_calibrate(*HOPPER, "--prior", "dmc", "--quiet", out=out))
    assert f"the logs of finished unit {unit} are incomplete: {needle}" in line, line
    assert f"remove {out / 'units' / unit}.json to train it again" in line


@pytest.mark.parametrize("where", ["utd_8", "width"])
def test_a_stray_run_in_a_finished_unit_is_refused_not_fitted(tmp_path, where):
    """A hostile round: a return log copied into a finished unit's folder under utd 8 (or
    under another width) was fitted as a tenth configuration, the domain widened to utd 1-8."""
    import shutil

    pytest.importorskip("gymnasium")
    out = _hopper_out_dir(tmp_path)
    (unit_dir,) = (out / "runs").glob("s2_w128_*")
    src = unit_dir / "w128p164296" / "utd_1"
    dst = (unit_dir / "w128p164296" / "utd_8" if where == "utd_8"
           else unit_dir / "w64p9999" / "utd_1")
    shutil.copytree(src, dst)
    line = _one_line_exit_2(_calibrate(*HOPPER, "--prior", "dmc", "--quiet", out=out))
    assert f"the logs of finished unit {unit_dir.name} hold a run it did not train" in line
    assert ("utd 8, batch size" if where == "utd_8" else "9999 params") in line
    assert f"remove that run's folder under {unit_dir}" in line


def test_a_fit_says_which_populations_resumed_from_a_checkpoint(tmp_path):
    """A hostile round: a population resumed from its checkpoint trains new episodes from
    there, so the fit differs from an uninterrupted calibration's; the file did not say so."""
    pytest.importorskip("gymnasium")
    out = _hopper_out_dir(tmp_path)
    (marker,) = (out / "units").glob("s2_w64_*.json")
    record = json.loads(marker.read_text())
    record["manifest"]["resumed_from"] = [5000]
    marker.write_text(json.dumps(record))
    res = _calibrate(*HOPPER, "--prior", "dmc", "--quiet", out=out)
    assert res.exit_code == 0, res.output
    notes = json.loads((out / "bro-torch-Hopper-v5.json").read_text())["provenance"]["notes"]
    (note,) = [n for n in notes if "resumed from a checkpoint" in n]
    assert note.startswith(f"1 population(s) resumed from a checkpoint after an interruption "
                           f"({marker.stem})")


def test_a_rerun_with_another_n_boot_plans_the_same_stage_2(tmp_path, monkeypatch):
    """B~ is fitted once per out-dir (OUT/batch_law.json): rerunning the Hopper calibration with
    --n-boot 10 refitted B~ from other seed resamples, planned stage-2 populations at other
    batch sizes and started training them on the CPU for hours."""
    pytest.importorskip("gymnasium")
    out = _hopper_out_dir(tmp_path)
    (out / "batch_law.json").unlink(missing_ok=True)  # as an out-dir from before B~ was kept

    def trained(*a, **kw):
        raise AssertionError("a unit was about to train")

    monkeypatch.setattr("calibration.runner.run_unit", trained)
    res = _calibrate(*HOPPER, "--prior", "dmc", "--fit-out", str(tmp_path / "a.json"), out=out)
    assert res.exit_code == 0, res.output
    assert "B~ fitted on 5 configs" in res.output and (out / "batch_law.json").is_file()
    res = _calibrate(*HOPPER, "--prior", "dmc", "--n-boot", "10", "--fit-out",
                     str(tmp_path / "b.json"), out=out)
    assert res.exit_code == 0, res.output
    assert "B~ as fitted when stage 1 finished" in res.output
    a, b = (json.loads((tmp_path / f).read_text())["batch_size"] for f in ("a.json", "b.json"))
    assert a == b
    (out / "batch_law.json").write_text('{"coefficients": [1, 2]}')
    line = _one_line_exit_2(_calibrate(*HOPPER, "--prior", "dmc", "--quiet", out=out))
    assert "batch_law.json is not a B~ this calibration wrote; remove it to fit B~ again" in line


def test_an_out_dirs_grid_record_is_taken_as_a_grid(tmp_path):
    """OUT/grid.json (env, grid, digest) given back as --grid was 'env_id is not a number'."""
    from calibration.grid import load_grid, preset
    from calibration.runner import prepare_out_dir

    grid = preset("smoke").with_overrides(steps=500)
    prepare_out_dir(tmp_path / "o", grid, CAL_ENV)
    assert load_grid(tmp_path / "o" / "grid.json") == grid


def test_the_cpu_time_note_is_shown_with_quiet(tmp_path, no_training):
    """--quiet hid the 'about N days on this CPU' note, and training started all the same."""
    res = _calibrate("--env", CAL_ENV, "--preset", "minutes", "--quiet", out=tmp_path / "o")
    assert "a unit was about to train" in str(res.exception)
    assert "note: on this CPU the 3,096,000 member-updates" in res.output, res.output


def test_a_grid_error_names_every_field_it_misses_and_the_default_it_used():
    """A hostile tester's: `{}` said "steps: Field required (and 6 more)" without naming the
    six, and steps 1000 with no random_steps said "random_steps must be below steps"."""
    from calibration.grid import PRESETS, GridError, load_grid_dict

    with pytest.raises(GridError) as err:
        load_grid_dict({})
    assert ("steps: Field required (and 6 more: seeds, batch_sizes, utds, widths, anchor_width, "
            "anchor_utd)") in str(err.value)
    with pytest.raises(GridError) as err:
        load_grid_dict({**{k: v for k, v in PRESETS["smoke"].items() if k != "random_steps"},
                        "steps": 1000})
    assert "random_steps 2500 (the default: this grid sets none) must be below steps 1000" in \
        str(err.value)
    with pytest.raises(GridError) as err:
        load_grid_dict({**PRESETS["smoke"], "random_steps": 1000, "steps": 1000})
    assert "random_steps 1000 must be below steps 1000" in str(err.value)


def test_sigterm_in_any_command_is_one_line_and_exit_143():
    """A hostile tester's: `advisor fit --n-boot 10000` killed with SIGTERM exited 143 without a
    word. Here recommend terminates itself mid-command; calibrate keeps its own handler."""
    code = ("import os, signal, sys, advisor.recommend\n"
            "r = sys.modules['advisor.recommend']\n"
            "real = r.recommend\n"
            "def stop(*a, **k):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real(*a, **k)\n"
            "r.recommend = stop\n"
            "from advisor.cli import main\n"
            "main(['recommend', '--compute', '1e17'])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert res.returncode == 143 and res.stderr == "error: terminated\n", res.stderr
    assert res.stdout == ""
