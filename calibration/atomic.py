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


def atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save `arrays` as one uncompressed .npz (never pickled), atomically: written to a
    temporary file in the same folder (no copy in memory: replay buffers are large), then
    renamed over `path`."""
    import os
    import tempfile

    path = Path(path)
    for name, a in arrays.items():  # (np.savez's allow_pickle argument is numpy >= 2.1 only)
        if np.asarray(a).dtype.hasobject:
            raise TypeError(f"{name}: object arrays would be pickled")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
