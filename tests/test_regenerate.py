"""The committed fit files are what our own code computes from the published archives."""

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli import main
from advisor.registry import _shipped_root
from calibration.catalogue import catalogue

# The recorded command names the paths it was run with (here a temporary folder).
SKIP = {"created", "content_hash", "provenance.command"}


def _compare(a, b, path=""):
    if path == ".bootstrap.draws" and a is not None and b is not None:
        # Refits on resampled seeds: on an ill-conditioned fit (bro/h1-pole-v0) another numpy
        # or BLAS moves a few resamples' optimum by up to 1-2% (numpy 2.4.6 / scipy 1.17.1
        # against the files' first build: 3% of its draws' numbers past 1e-4), so at most 5%
        # of the numbers may move, and the spread of each coefficient stays within 2%.
        import numpy as np

        x, y = np.asarray(a, float), np.asarray(b, float)
        assert x.shape == y.shape, path
        moved = ~np.isclose(x, y, rtol=1e-4, atol=1e-9)  # a draw shuffled or corrupted: many
        assert moved.mean() <= 0.05, (path, f"{moved.mean():.1%} of the draws moved")
        qx, qy = (np.quantile(v, [0.1, 0.5, 0.9], axis=0) for v in (x, y))
        np.testing.assert_allclose(qx, qy, rtol=2e-2, err_msg=path)
        return
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if f"{path}.{k}".lstrip(".") in SKIP:
                continue
            _compare(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _compare(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        # Identical on one machine; a different BLAS or scipy may move the last digits.
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9), (path, a, b)
    else:
        assert a == b, path


@pytest.mark.slow
def test_committed_fits_match_a_fresh_regeneration(fresh_fits):
    for spec in catalogue():
        rel = f"{spec.algorithm}/{spec.file_name}"
        fresh = json.loads((fresh_fits / rel).read_text())
        shipped = json.loads((_shipped_root() / rel).read_text())
        _compare(fresh, shipped)


def test_regenerate_command_writes_the_named_fits(data_dir, tmp_path):
    res = CliRunner().invoke(main, ["regenerate", str(data_dir), "-o", str(tmp_path), "--only",
                                    "bro/h1-stand-v0", "--n-boot", "3", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in tmp_path.rglob("*.json")] == ["h1-stand-v0.json"]


def test_running_the_recorded_command_reproduces_the_file(data_dir, tmp_path, monkeypatch):
    """`advisor fit` records the command that made the file; running it again (as recorded)
    rewrites the same bytes."""
    import shlex

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["fit", str(data_dir / "fitted_bs.zip"), "--algorithm", "bro",
                                    "--env", "h1-pole-v0", "-o", "out/f.json", "--n-boot", "4"])
    assert res.exit_code == 0, res.output
    first = (tmp_path / "out/f.json").read_bytes()
    command = json.loads(first)["provenance"]["command"]
    assert command.startswith("advisor fit ") and "--created" in command
    (tmp_path / "out/f.json").unlink()
    res = CliRunner().invoke(main, shlex.split(command)[1:])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out/f.json").read_bytes() == first


def test_fit_command_writes_a_loadable_fit(data_dir, tmp_path):
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(main, ["fit", str(data_dir / "fitted_bs.zip"), "--algorithm", "mine",
                                    "--env", "h1-stand-v0", "-o", str(out), "--n-boot", "5"])
    assert res.exit_code == 0, res.output
    import advisor

    rec = advisor.recommend(advisor.Budget(data=6e5), fit=str(out))
    assert rec.fit == "mine/h1-stand-v0"


def test_fit_command_on_unknown_env_is_a_clear_error(data_dir, tmp_path):
    res = CliRunner().invoke(main, ["fit", str(data_dir / "fitted_bs.zip"), "--algorithm", "x",
                                    "--env", "nope-v0", "-o", str(tmp_path / "f.json")])
    assert res.exit_code == 2 and "holds no runs" in res.output


def test_fit_without_bootstrap_works_for_a_batch_grid(data_dir, tmp_path):
    out = tmp_path / "simba.json"
    archive = data_dir / "simbav2_model_scaling_linear20_with_base.zip"
    res = CliRunner().invoke(main, ["fit", str(archive),
                                    "--algorithm", "s", "--env", "h1-stand-v0", "-o", str(out),
                                    "--n-boot", "0"])
    assert res.exit_code == 0, res.output
    import advisor

    rec = advisor.recommend(advisor.Budget(data=6e5), fit=str(out))
    # The prediction interval comes from cross-validation, not from the bootstrap.
    assert rec.interval is not None and rec.batch_size >= 16


RUNS = Path(__file__).resolve().parent.parent / "runs"


@pytest.mark.slow
@pytest.mark.parametrize("fit_id, runs, folder", [
    ("bro-torch/Hopper-v5", "bro-torch-Hopper-v5-minutes.tgz", "minutes-out"),
    ("bro-torch/Pendulum-v1", "cpu-Pendulum-v1.tgz", "cpu-out")])
def test_a_shipped_bro_torch_fit_is_what_calibrate_makes_of_its_runs(fit_id, runs, folder,
                                                                      tmp_path):
    """fits/bro-torch/*.json from the out-dirs their calibrations left (committed under runs/:
    our own runs, not a published archive; Hopper-v5's from an H100, Pendulum-v1's from this
    project's 2-core CPU machine): the recorded command, run again on it, trains nothing and
    writes the same fit, up to the lines benchmarks/ship_fit.py added (timings, why a prior or
    not) and the out-dir's path."""
    import shlex
    import subprocess
    import sys
    import tarfile

    with tarfile.open(RUNS / runs) as tar:
        tar.extractall(tmp_path, filter="data")
    out = tmp_path / folder
    shipped = json.loads((_shipped_root() / f"{fit_id}.json").read_text())
    words = shlex.split(shipped["provenance"]["command"])
    recorded = words[words.index("--out-dir") + 1]
    words[words.index("--out-dir") + 1] = str(out)
    assert words[:2] == ["advisor", "calibrate"]
    assert ("--prior" in words) == (fit_id == "bro-torch/Hopper-v5")  # Pendulum's is free
    res = subprocess.run([sys.executable, "-m", "advisor.cli", *words[1:], "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "stage 1:" not in res.stderr  # quiet, and nothing trained
    fresh = json.loads((out / (fit_id.replace("/", "-") + ".json")).read_text())
    fresh_notes, shipped_notes = (f["provenance"].pop("notes") for f in (fresh, shipped))
    assert shipped_notes[:len(fresh_notes)] == fresh_notes
    assert all(n.startswith("shipped with its timings: stage ")
               for n in shipped_notes[len(fresh_notes):len(fresh_notes) + 2])
    commands = [f["provenance"].pop("command") for f in (fresh, shipped)]
    # the same command but the out-dir (it recorded --delta 10000000000.0 once: README's claim)
    assert commands[0].replace(str(out), recorded) == commands[1]
    for f in (fresh, shipped):
        f["provenance"].pop("source")
    _compare(fresh, shipped)


def test_only_a_fit_not_made_from_the_archives_says_so(data_dir, tmp_path):
    """--only bro-torch/Hopper-v5 (listed by `advisor fits`) was an 'unknown shipped fit'."""
    res = CliRunner().invoke(main, ["regenerate", str(data_dir), "-o", str(tmp_path), "--only",
                                    "bro-torch/Hopper-v5"])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "is shipped but not made from the published archives" in res.output


@pytest.mark.parametrize("fit_id", ["bro/sweep-v2", "bro/h1-pole-v0"])
def test_a_shipped_fits_recorded_command_writes_the_shipped_fit(fit_id, data_dir, tmp_path,
                                                                   monkeypatch):
    """The command `regenerate` records (calibration.build.fit_command) is the one `advisor fit`
    records: with --name (sweep-v2) it wrote --name before --created, so rerunning it changed
    the file (a hostile round); fitted_bs.zip's random steps are recorded from its contents."""
    import shlex

    shipped = (_shipped_root() / f"{fit_id}.json").read_bytes()
    words = shlex.split(json.loads(shipped)["provenance"]["command"])
    assert words[2].startswith("../shared/data/")  # as recorded, beside a checkout
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(Path(data_dir).resolve())
    (tmp_path / "checkout").mkdir()
    monkeypatch.chdir(tmp_path / "checkout")
    res = CliRunner().invoke(main, words[1:])
    assert res.exit_code == 0, res.output
    fresh = json.loads((tmp_path / "checkout" / "fits" / f"{fit_id}.json").read_bytes())
    ship = json.loads(shipped)
    # The recorded command and date word for word; the numbers as _compare allows: with
    # another numpy or BLAS than the files were built with, their last digits move (bytes
    # were compared before numpy 2.4.6 / scipy 1.17.1 moved sweep-v2's 16th digits).
    assert fresh["provenance"]["command"] == ship["provenance"]["command"]
    assert fresh["created"] == ship["created"]
    _compare(fresh, ship)


def test_random_steps_come_from_the_archives_contents_not_its_name(data_dir, tmp_path):
    """fitted_bs.zip's runs take 2,500 random steps (reference.md): a copy under another name
    records them too (it was keyed by file name), and --random-steps at or past the runs'
    length is refused in one line."""
    import shutil

    renamed = tmp_path / "paper_a_runs.zip"
    shutil.copy(data_dir / "fitted_bs.zip", renamed)
    out = tmp_path / "f.json"
    res = CliRunner().invoke(main, ["fit", str(renamed), "--algorithm", "bro", "--env",
                                    "h1-pole-v0", "--n-boot", "0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["random_steps"] == 2500 and "--random-steps" not in doc["provenance"]["command"]
    res = CliRunner().invoke(main, ["fit", str(renamed), "--algorithm", "bro", "--env",
                                    "h1-pole-v0", "--n-boot", "0", "-o", str(out),
                                    "--random-steps", "1500000"])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "random steps 1500000 are at least the runs' length" in res.output
