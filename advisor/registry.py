"""Where fits come from: files shipped with the package, other packages' entry points
(group `advisor.fits`), and paths.

A catalogued file `<algorithm>/<env>.json` must hold the fit id `<algorithm>/<env>`. A package
whose entry point cannot be loaded, or a catalogued file that cannot be read, is reported (a
`FitWarning`, and one line in `advisor fits`) and never hides the other fits.
"""

from __future__ import annotations

import difflib
import os
import warnings
import weakref
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from types import ModuleType

from advisor.errors import FitFileError, UnknownFitError, shown
from advisor.fit import Fit
from advisor.fitfile import FitFile, dump_fit_file, parse_fit_file, read_fit_file

ENTRY_POINT_GROUP = "advisor.fits"
SHIPPED = "value-scaling-advisor"
_MAX_KEY = 4096


class FitWarning(UserWarning):
    """A third-party fit package or file that cannot be used."""


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
def _catalogue() -> tuple[dict[str, tuple[Path, str]], tuple[str, ...]]:
    """(id -> (path, source package), problems). Shipped fits win over entry-point fits."""
    out: dict[str, tuple[Path, str]] = {}
    problems: list[str] = []
    for ep in _entry_points():
        dist = ep.dist.name if getattr(ep, "dist", None) is not None else ep.name
        try:
            target = ep.load()
            if isinstance(target, ModuleType):  # a package whose folder holds the fit files
                # a namespace package (a data folder without __init__.py) has one folder per
                # portion: resources.files() gives a MultiplexedPath, whose str() is no path
                roots = [Path(p) for p in getattr(target, "__path__", ())] or [
                    Path(str(resources.files(target)))]
            else:
                roots = [Path(str(target() if callable(target) else target))]
            missing = [r for r in roots if not r.is_dir()]
            if missing:  # a zipped package (zipimport), a file, a folder that is not there
                zipped = isinstance(target, ModuleType)
                raise FileNotFoundError(f"{missing[0]} is not a folder on disk" + (
                    " (a zipped package's fits cannot be read; install it unzipped)"
                    if zipped else ""))
            found = {k: v for r in roots for k, v in _scan(r).items()}
        except Exception as exc:  # a broken third-party package must not break the advisor
            problems.append(f"fits of package {dist} (entry point {ep.value!r}) cannot be "
                            f"loaded: {type(exc).__name__}: {' '.join(str(exc).split())}")
            continue
        for fit_id, path in found.items():
            out[fit_id] = (path, dist)
    for fit_id, path in _scan(_shipped_root()).items():
        out[fit_id] = (path, SHIPPED)
    for problem in problems:
        warnings.warn(problem, FitWarning, stacklevel=3)
    return out, tuple(problems)


def _entry_points():
    try:
        return list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:
        return []


def catalogue_problems() -> tuple[str, ...]:
    """One line per third-party fit package that could not be loaded."""
    return _catalogue()[1]


def list_fits() -> list[str]:
    """Ids ("<algorithm>/<env>") of every fit shipped or installed by another package."""
    return sorted(_catalogue()[0])


def fit_sources() -> dict[str, str]:
    """Fit id -> the package that provides it."""
    return {k: v[1] for k, v in sorted(_catalogue()[0].items())}


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int, size: int, expected_id: str | None) -> Fit:
    fit = Fit(read_fit_file(path))
    if expected_id is not None and fit.id != expected_id:
        raise FitFileError(f"fit file {path} is listed as {expected_id!r} but holds fit "
                           f"{fit.id!r}; rename the file to {fit.id.split('/')[1]}.json under "
                           f"{fit.id.split('/')[0]}/ or regenerate it")
    return fit


def fit_path(id_or_path: str | os.PathLike) -> Path:
    """The file behind a fit id (shipped or installed) or a path."""
    return _resolve(id_or_path)[0]


def _resolve(id_or_path) -> tuple[Path, str | None]:
    if not isinstance(id_or_path, (str, os.PathLike)):
        raise UnknownFitError(f"fit must be a fit id such as 'bro/h1-crawl-v0', a path to a fit "
                              f"file, a Fit or a FitFile, got {type(id_or_path).__name__} "
                              f"{shown(id_or_path)}")
    key = os.fspath(id_or_path)
    if isinstance(key, bytes):
        raise UnknownFitError("fit must be a str id or path, not bytes")
    if not key or len(key) > _MAX_KEY or "\x00" in key:
        raise UnknownFitError(f"fit {key[:60]!r}{'...' if len(key) > 60 else ''} is not a fit id "
                              "or a usable path")
    cat = _catalogue()[0]
    if key in cat:
        return cat[key][0], key
    try:
        exists = Path(key).exists()
    except OSError:  # e.g. a name longer than the file system allows
        exists = False
    # A path, not an id (ids are algorithm/env): said "does not exist", not "unknown fit"
    looks_like_path = (key.lower().endswith(".json") or key.startswith(("/", "./", "../", "~"))
                       or key.count("/") > 1 or (os.sep != "/" and os.sep in key)
                       or os.path.islink(key))
    if exists or looks_like_path:
        return (Path(key).expanduser() if key.startswith("~") else Path(key)), None
    # typos score above 0.8; the shared 'bro/' prefix alone lifts a wrong id to ~0.6
    close = difflib.get_close_matches(key, list(cat), n=1, cutoff=0.75)
    if not close and "/" not in key:  # an env without its algorithm: 'Hopper-v5'
        close = sorted(i for i in cat if i.split("/", 1)[-1].lower() == key.lower())
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownFitError(
        f"unknown fit {key[:200]!r}{hint} (`advisor fits` lists the {len(cat)} available ids, "
        "or pass a path to a fit file)")


#: id(FitFile) -> (a weak reference to it, its validated Fit): a FitFile is frozen, so a
#: `recommend(..., fit=model)` in a loop validates it once, not every call (120 ms each).
_MODELS: dict[int, tuple[weakref.ref, Fit]] = {}


def _from_model(model: FitFile) -> Fit:
    key = id(model)
    hit = _MODELS.get(key)
    if hit is not None and hit[0]() is model:
        return hit[1]
    fit = Fit(parse_fit_file(dump_fit_file(model), origin=f"fit {model.id}"))
    _MODELS[key] = (weakref.ref(model, lambda _, key=key: _MODELS.pop(key, None)), fit)
    return fit


def load_fit(id_or_path: str | os.PathLike | Fit | FitFile) -> Fit:
    """Load a fit by id (see `list_fits()`) or from a fit-file path (cached per file
    version); a Fit is itself, and a FitFile (parse_fit_file's) is validated as its file's
    text would be."""
    if isinstance(id_or_path, Fit):
        return id_or_path
    if isinstance(id_or_path, FitFile):  # a hostile round: refused in a 119,410-char line
        return _from_model(id_or_path)
    path, expected = _resolve(id_or_path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FitFileError(f"fit file {path} does not exist") from None
    except OSError as exc:
        raise FitFileError(f"fit file {path} cannot be read: {exc.strerror or exc}") from None
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size, expected)
