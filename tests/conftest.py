import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("ADVISOR_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "fitted_bs.zip").exists():
        pytest.skip(f"published run archives not found in {DATA_DIR} (set ADVISOR_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(scope="session")
def fresh_fits(data_dir, tmp_path_factory) -> Path:
    """Every shipped fit regenerated from the archives by this checkout's code (once a session)."""
    from calibration.build import N_BOOT, regenerate

    out = tmp_path_factory.mktemp("fresh_fits")
    regenerate(data_dir, out, n_boot=N_BOOT, created="2026-11-26", n_jobs=2)
    return out
