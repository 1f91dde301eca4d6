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


def _dist_info(site, name: str, entry: str) -> None:
    """Metadata that importlib.metadata finds on sys.path: a distribution `name` whose
    `advisor.fits` entry point is `entry` (no pip install needed)."""
    info = site / f"{name}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[advisor.fits]\n{name} = {entry}\n")


def test_fits_in_a_namespace_folder_are_listed_and_a_zipped_package_is_one_warning(tmp_path):
    """A hostile round: a package's fits folder without __init__.py (a namespace package, as
    setuptools' data-folder layouts make) was skipped in silence, and so was a zipped one."""
    import zipfile

    model = advisor.load_fit("bro/h1-stand-v0").model
    site = tmp_path / "site"
    folder = site / "ns_fit_pkg" / "fits" / "nsalg"  # no __init__.py anywhere
    folder.mkdir(parents=True)
    (folder / "h1-stand-v0.json").write_text(
        dump_fit_file(model.model_copy(update={"id": "nsalg/h1-stand-v0"})))
    _dist_info(site, "ns-fit-pkg", "ns_fit_pkg.fits")
    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as z:
        z.writestr("zip_fit_pkg/__init__.py", "")
        z.writestr("zip_fit_pkg/fits/__init__.py", "")
        z.writestr("zip_fit_pkg/fits/zipalg/h1-stand-v0.json",
                   dump_fit_file(model.model_copy(update={"id": "zipalg/h1-stand-v0"})))
    _dist_info(site, "zip-fit-pkg", "zip_fit_pkg.fits")
    env = {**__import__("os").environ,
           "PYTHONPATH": f"{site}{__import__('os').pathsep}{tmp_path / 'zipped.zip'}"}
    res = subprocess.run([sys.executable, "-m", "advisor.cli", "fits"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert any(ln.startswith("nsalg/h1-stand-v0") for ln in res.stdout.splitlines()), res.stdout
    # (the broken packages of `installed` may be installed too, with warnings of their own)
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")
                and ("zip-fit-pkg" in ln or "ns-fit-pkg" in ln)]
    assert len(warnings) == 1 and "zip-fit-pkg" in warnings[0], res.stderr
    assert "not a folder on disk" in warnings[0] and "Traceback" not in res.stderr
