"""Reading and writing files safely: size-capped reads of regular files only, JSON with
one-line errors, atomic writes, so that a crash never leaves a half-written file, and a check
that an output path holds no file of the user's (check_replaceable).

A regular file (or a new path) is written to a temporary file beside it and renamed into place.
A symbolic link is followed: its target is replaced, the link stays a link. A path that exists
but is not a regular file (a device such as /dev/stdout, a FIFO) is written through as it is,
never replaced; a directory is refused.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from advisor.errors import OutputError

#: Input files we read (fit files, grids) are small; anything larger is refused unread.
MAX_FILE_BYTES = 16 * 2**20


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (readable 0644); returns the path as given."""
    given = Path(path)
    if os.fspath(path) == "":
        raise OutputError("the output path is empty: give a file name")
    target = Path(os.path.realpath(given))  # follow links: write where the link points
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(f"cannot write {given}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {given}: it is a directory; give a file name")
    try:
        if mode is not None and not stat.S_ISREG(mode):
            with open(target, "wb") as fh:  # a device or FIFO: write through, never replace it
                fh.write(data)
            return given
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {given}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {given}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return given


def check_replaceable(path: str | os.PathLike, heads: bytes | tuple[bytes, ...], what: str,
                      option: str) -> None:
    """OutputError unless `path` is new, a device, or a regular file that starts with one of
    `heads` (one the command wrote before, in this release or an earlier one): a user's own
    file there is never replaced. `what` names such a file, `option` the option that chose
    the path (for the message)."""
    heads = (heads,) if isinstance(heads, bytes) else heads
    try:
        mode = os.stat(path).st_mode  # follows links, as the write does
    except FileNotFoundError:
        return
    except OSError:  # a loop of links, a name too long: the write says so
        return
    if stat.S_ISDIR(mode):
        raise OutputError(f"{option}: {path} is a folder, where this command writes a file of "
                          "that name; rename or remove the folder, or choose another -o")
    if not stat.S_ISREG(mode):
        return
    try:
        with open(path, "rb") as fh:
            start = fh.read(max(map(len, heads)))
    except OSError:
        start = b""
    if not any(start.startswith(head) for head in heads):
        raise OutputError(f"{option}: {path} exists and is not {what}; it is left as it is: "
                          "choose another path, or remove it first")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


class DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return out


def load_json(text: str | bytes, origin: str, error: type[Exception]):
    """json.loads with one-line errors for malformed, too deeply nested or oversized input."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except DuplicateKeyError as exc:
        raise error(f"{origin} is ambiguous: the key {exc.args[0]!r} appears twice in one "
                    "object") from None
    except json.JSONDecodeError as exc:
        raise error(f"{origin} is not valid JSON (truncated or malformed): {exc}") from None
    except RecursionError:
        raise error(f"{origin} is not a usable JSON document: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if "integer string conversion" in str(exc):  # Python's advice is for programmers
            raise error(f"{origin} is not a usable JSON document: it holds an integer of "
                        "thousands of digits") from None
        raise error(f"{origin} is not a usable JSON document: {exc}") from None


def read_limited(path: str | os.PathLike, what: str, error: type[Exception],
                 limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; one-line errors otherwise (missing,
    a directory, a FIFO or device, too large, unreadable)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is not a regular file (a FIFO, socket or device)")
    if st.st_size > limit:
        raise error(f"{what} {path} is {st.st_size / 2**20:.1f} MiB, larger than the "
                    f"{limit / 2**20:g} MiB a {what} may be")
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{what} {path} is larger than the {limit / 2**20:g} MiB a {what} may be")
    return data


def is_iso_date(text) -> bool:
    """YYYY-MM-DD and a real date (date.fromisoformat alone also takes 2026-W48-5 and
    20261127): what fit files record as `created`."""
    import datetime
    import re

    if not (isinstance(text, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True
