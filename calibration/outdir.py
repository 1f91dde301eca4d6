"""The out-dir of a calibration: created and checked before anything runs, and locked while a
calibration writes to it (calibration.runner describes the layout)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from advisor.errors import OutputError
from calibration.grid import GridError

LOCK_NAME = "calibrate.lock"


@contextlib.contextmanager
def lock_out_dir(out_dir: Path):
    """Hold an exclusive lock on OUT for the duration (a lock file holding our pid): a second
    calibration into the same OUT fails at once with one line naming the holder's pid. The
    lock goes with the process, however it ends."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run unlocked
        yield
        return
    path = out_dir / LOCK_NAME
    if path.is_symlink():  # opening it would write our pid into whatever it points at
        raise OutputError(f"the lock file {path} is a symbolic link; remove it (the "
                          "calibration makes its own)")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise OutputError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise OutDirBusyError(f"{out_dir} is in use by another advisor calibrate (pid "
                                  f"{holder}); wait for it to finish or use another --out-dir"
                                  ) from None
        except OSError as exc:
            raise OutputError(f"cannot lock {path}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


class OutDirBusyError(GridError):
    """An out-dir that another calibration is writing to."""


def read_spec(path: Path) -> dict:
    """The grid spec an earlier run wrote, or GridError naming what else is there."""
    from advisor.files import load_json, read_limited

    what = "an out-dir's grid.json"
    data = load_json(read_limited(path, "grid.json", GridError), str(path), GridError)
    if not isinstance(data, dict):
        raise GridError(f"{path} is not {what} (it holds a JSON {type(data).__name__}); use a "
                        "new --out-dir, or remove the file if nothing else is there")
    if not (isinstance(data.get("env_id"), str) and isinstance(data.get("grid"), dict)
            and isinstance(data.get("digest"), str)):
        raise GridError(f"{path} is not {what} (advisor calibrate writes one with env_id, grid "
                        "and digest); use a new --out-dir, or remove the file if nothing else "
                        "is there")
    return data


def check_out_dir(out_dir: Path) -> None:
    """Create OUT (and parents) and check that files can be created in it and that its
    `runs` and `units` entries, where present, are folders: one line if not."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot use {out_dir} as the out-dir: it exists and is not a "
                          "folder") from None
    except OSError as exc:
        raise OutputError(f"cannot create the out-dir {out_dir}: {exc.strerror or exc}") from None
    try:
        check_writable(out_dir, "the out-dir")
    except OutputError as exc:
        if not (out_dir / "units").is_dir():
            raise
        # a finished calibration on a read-only mount: a refit writes its lock and records
        raise OutputError(f"{exc}; a refit (--prior, --fit-out) writes there too: copy the "
                          "out-dir to a writable folder and rerun the command on the copy"
                          ) from None
    for sub in ("runs", "units"):
        p = out_dir / sub
        if (p.exists() or p.is_symlink()) and not p.is_dir():
            raise OutputError(f"{p} is not a folder; this out-dir was not written by advisor "
                              "calibrate: use a new --out-dir")
    units = out_dir / "units"
    if units.is_dir():
        for marker in units.glob("*.json"):
            if not marker.is_file():
                raise OutputError(f"{marker} is not a file (a unit's done marker must be one); "
                                  "remove it to train that unit again")


def check_writable(folder: Path, what: str) -> None:
    """Create and remove a temporary file in `folder` (as root, permissions do not say it)."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".advisor-write-check.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT and Path(folder).is_dir():  # /proc: there, but no files
            why = "it takes no new files (a system folder such as /proc or /sys)"
        raise OutputError(f"cannot write in {what} {folder}: {why}") from None
