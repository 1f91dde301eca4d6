"""Write a file atomically: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np


def atomic_save(path: Path, array: np.ndarray | None = None, text: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if array is not None:
                buf = io.BytesIO()
                np.save(buf, array, allow_pickle=False)
                fh.write(buf.getvalue())
            else:
                fh.write(text.encode())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
