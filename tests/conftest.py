import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("ADVISOR_DATA_DIR", ROOT.parent / "shared" / "data"))


NO_DATA = f"published run archives not found in {DATA_DIR} (set ADVISOR_DATA_DIR)"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "fitted_bs.zip").exists():
        pytest.skip(NO_DATA)
    return DATA_DIR


def pytest_terminal_summary(terminalreporter):
    """Say it in the summary when the tests on the published archives did not run."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and NO_DATA in str(r.longrepr[-1])]
    if skipped:
        terminalreporter.write_line(
            f"note: {len(skipped)} tests skipped: {NO_DATA}, e.g. "
            "ADVISOR_DATA_DIR=/path/to/shared/data python -m pytest", yellow=True, bold=True)


@pytest.fixture(scope="session")
def fresh_fits(data_dir, tmp_path_factory) -> Path:
    """Every shipped fit regenerated from the archives by this checkout's code, once a session:
    pytest-xdist's workers share one folder, the first to need it builds it under a lock."""
    from filelock import FileLock

    from calibration.build import N_BOOT, regenerate

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    out = base / "fresh_fits"
    with FileLock(str(base / "fresh_fits.lock")):
        if not (out / "DONE").exists():
            shutil.rmtree(out, ignore_errors=True)
            regenerate(data_dir, out, n_boot=N_BOOT, created="2026-11-26", n_jobs=2)
            (out / "DONE").write_text("")
    return out
