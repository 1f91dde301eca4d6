import subprocess
import sys

import pytest


def _python(code: str) -> str:
    """What a fresh interpreter running `code` prints (stripped)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_advisor_does_not_pull_heavy_packages():
    code = ("import sys, advisor; advisor.recommend(1e17); "
            "heavy = [m for m in ('torch', 'gymnasium', 'mujoco', 'calibration', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    assert _python(code) == "[]"


def test_names_load_on_first_use_and_import_advisor_reads_no_numpy():
    """`import advisor` is light (the CLI turns a Ctrl-C while it starts into one line); every
    name in __all__ and every submodule still resolves as an attribute."""
    code = ("import sys, advisor; light = [m for m in ('numpy', 'scipy', 'pydantic') "
            "if m in sys.modules]; import advisor.recommend; names = [n for n in "
            "advisor.__all__ if getattr(advisor, n) is None]; mods = [advisor.laws.__name__, "
            "advisor.fitfile.__name__]; print(light, names, mods, 'Fit' in dir(advisor), "
            "callable(advisor.recommend))")
    assert _python(code) == "[] [] ['advisor.laws', 'advisor.fitfile'] True True"
    import advisor

    assert set(advisor.__all__) == set(advisor._SOURCE) | {"__version__"}
    import advisor.recommend  # the submodule does not shadow the function

    assert callable(advisor.recommend) and advisor.recommend.__module__ == "advisor.recommend"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        advisor.nope  # noqa: B018

    code = ("import importlib, sys, advisor; advisor.recommend; old = advisor.recommend; "
            "m = importlib.reload(sys.modules['advisor.recommend']); importlib.reload(advisor); "
            "print(advisor.recommend is m.recommend, advisor.recommend is not old)")
    assert _python(code) == "True True"  # a reload resolves the names afresh


def test_the_commands_help_loads_no_numpy_scipy_or_torch():
    """A hostile tester's: `advisor --help` loaded every heavy command's module for its one-line
    help, and with them numpy, scipy.optimize and calibration.design (1.1-1.3 s). The heavy
    commands' modules now import their machinery when they run."""
    code = ("import sys; from click.testing import CliRunner; from advisor.cli import main; "
            "res = CliRunner().invoke(main, ['--help']); "
            "assert res.exit_code == 0 and 'calibrate' in res.output and 'plan' in res.output; "
            "print([m for m in ('numpy', 'scipy', 'torch', 'calibration.design') "
            "if m in sys.modules])")
    assert _python(code) == "[]"
