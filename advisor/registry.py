"""Where fits come from: files shipped with the package, other packages' entry points
(group `advisor.fits`), and paths."""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from types import ModuleType

from advisor.errors import FitFileError, UnknownFitError
from advisor.fit import Fit
from advisor.fitfile import read_fit_file

ENTRY_POINT_GROUP = "advisor.fits"


def _shipped_root() -> Path:
    """advisor/_fits inside a wheel; the repository's fits/ in a source checkout."""
    inside = resources.files("advisor") / "_fits"
    if inside.is_dir():
        return Path(str(inside))
    return Path(__file__).resolve().parent.parent / "fits"


def _scan(root: Path) -> dict[str, Path]:
    found = {}
    if root.is_dir():
        for path in sorted(root.glob("*/*.json")):
            found[f"{path.parent.name}/{path.stem}"] = path
    return found


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, tuple[Path, str]]:
    """id -> (path, source package). Shipped fits win over entry-point fits of the same id."""
    out: dict[str, tuple[Path, str]] = {}
    for ep in _entry_points():
        try:
            target = ep.load()
        except Exception:  # a broken third-party package must not break the advisor
            continue
        if isinstance(target, ModuleType):  # a package whose folder holds the fit files
            root = Path(str(resources.files(target)))
        else:
            root = Path(str(target() if callable(target) else target))
        dist = ep.dist.name if ep.dist is not None else ep.name
        for fit_id, path in _scan(root).items():
            out[fit_id] = (path, dist)
    for fit_id, path in _scan(_shipped_root()).items():
        out[fit_id] = (path, "value-scaling-advisor")
    return out


def _entry_points():
    try:
        return list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:
        return []


def list_fits() -> list[str]:
    """Ids ("<algorithm>/<env>") of every fit shipped or installed by another package."""
    return sorted(_catalogue())


def fit_sources() -> dict[str, str]:
    """Fit id -> the package that provides it."""
    return {k: v[1] for k, v in sorted(_catalogue().items())}


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> Fit:
    return Fit(read_fit_file(path))


def load_fit(id_or_path: str | os.PathLike | Fit) -> Fit:
    """Load a fit by id (see `list_fits()`) or from a fit-file path. Cached per file version."""
    if isinstance(id_or_path, Fit):
        return id_or_path
    key = os.fspath(id_or_path)
    cat = _catalogue()
    if key in cat:
        path = cat[key][0]
    elif key.endswith(".json") or Path(key).is_file():
        path = Path(key)
        if not path.is_file():
            raise FitFileError(f"fit file {path} does not exist")
    else:
        close = difflib.get_close_matches(key, list(cat), n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownFitError(
            f"unknown fit {key!r}{hint} (`advisor fits` lists the {len(cat)} available ids, "
            "or pass a path to a fit file)"
        )
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise FitFileError(f"fit file {path} cannot be read: {exc}") from None
    return _load_cached(str(path.resolve()), mtime)
