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
