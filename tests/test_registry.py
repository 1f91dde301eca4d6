"""Fits shipped by other packages (entry-point group `advisor.fits`), broken ones included."""

import json
import subprocess
import sys
import textwrap

import pytest

import advisor
from advisor.fitfile import dump_fit_file

PIP = [sys.executable, "-m", "pip"]


def _package(root, name: str, module: str, entry: str, fits: dict[str, str]):
    pkg = root / name
    (pkg / module / "fits").mkdir(parents=True)
    (pkg / module / "__init__.py").write_text("")
    (pkg / module / "fits" / "__init__.py").write_text("")
    for rel, text in fits.items():
        (pkg / module / "fits" / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / module / "fits" / rel).write_text(text)
    (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.0.1"
        [project.entry-points."advisor.fits"]
        {name} = "{entry}"
        [tool.setuptools.package-data]
        "*" = ["*/*.json"]
    """))
    return pkg


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A good fit package, one whose fit file is truncated, one whose entry point names a
    module that does not exist."""
    root = tmp_path_factory.mktemp("pkgs")
    model = advisor.load_fit("bro/h1-stand-v0").model.model_copy(
        update={"id": "testalg/h1-stand-v0"})
    good = _package(root, "advisor-test-fits", "advisor_test_fits", "advisor_test_fits.fits",
                    {"testalg/h1-stand-v0.json": dump_fit_file(model)})
    truncated = _package(root, "advisor-broken-fits", "advisor_broken_fits",
                         "advisor_broken_fits.fits",
                         {"broken/h1-stand-v0.json": dump_fit_file(model)[:500]})
    missing = _package(root, "advisor-missing-fits", "advisor_missing_fits",
                       "advisor_no_such_module.fits", {})
    names = ["advisor-test-fits", "advisor-broken-fits", "advisor-missing-fits"]
    subprocess.run(PIP + ["install", "-q", "--no-deps", str(good), str(truncated), str(missing)],
                   check=True)
    yield
    subprocess.run(PIP + ["uninstall", "-q", "-y", *names], check=True)


def _advisor(*args):
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_fits_from_an_installed_package_are_listed_and_recommend(installed):
    res = _advisor("fits")
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("testalg/h1-stand-v0"))
    assert line.rstrip().endswith("advisor-test-fits")
    rec = _advisor("recommend", "--fit", "testalg/h1-stand-v0", "--data", "6e5", "--format", "json")
    assert rec.returncode == 0 and json.loads(rec.stdout)["fit"] == "testalg/h1-stand-v0"


def test_broken_packages_are_one_warning_each_and_hide_nothing(installed):
    res = _advisor("fits")
    assert res.returncode == 0, res.stderr
    listed = {ln.split()[0] for ln in res.stdout.splitlines()[1:] if ln.strip()}
    assert set(advisor.list_fits()) <= listed | {"broken/h1-stand-v0"}
    assert "bro/h1-crawl-v0" in listed and "testalg/h1-stand-v0" in listed
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert any("broken/h1-stand-v0" in w and "not valid JSON" in w for w in warnings), warnings
    assert any("advisor-missing-fits" in w and "advisor_no_such_module" in w
               for w in warnings), warnings
    assert "Traceback" not in res.stderr
    bad = _advisor("recommend", "--fit", "broken/h1-stand-v0", "--data", "6e5")
    lines = bad.stderr.splitlines()
    assert bad.returncode == 2 and "truncated" in bad.stderr
    assert [ln for ln in lines if not ln.startswith("warning: ")] == [lines[-1]]
    assert lines[-1].startswith("error: ")
