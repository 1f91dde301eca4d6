"""Write a file atomically: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from advisor.files import atomic_write_bytes


def atomic_save(path: Path, array: np.ndarray | None = None, text: str | None = None) -> None:
    """Save `array` as .npy (never pickled) or `text` as UTF-8, atomically."""
    if array is not None:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_bytes(path, text.encode("utf-8"))
