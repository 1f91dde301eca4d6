"""Run logs in the published layouts (zip or folder) -> `Run` records.

Layouts understood (see ../shared/docs/reference.md):
- BRO (`fitted_bs`, `side_critic`, and our own learner's output):
  `<name>/w{width}p{params}/utd_{utd}/{env}/{metric}/bs_{B}_lr_{lr}_..._sep_{bool}_....npy`,
  each (T, 1+S): step column then one column per seed.
- SimbaV2: `<name>/w{width}/utd_{utd}/{env}/{avg_return|critic_loss|val_critic_loss}/bs_{B}.npy`,
  steps in column 0, then columns that are each the mean of 5 seeds (reference.md;
  `Run.seeds_per_column`): no single seed's curve.
- DMC BRO ablations: `ablations_rr/rr{utd}_{size}/{task}.npy`, (40, S) with no step column,
  evaluations every 25k steps starting at 25k; batch size 128.
Arrays are read with `allow_pickle=False`: nothing read from an archive is ever unpickled.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from advisor.errors import AdvisorError


class ArchiveError(AdvisorError):
    """An archive that does not exist or holds no run in a layout we read."""


#: Metric names normalised across layouts.
METRIC_ALIASES = {"avg_return": "return", "val_critic_loss": "validation_critic_loss"}

#: SimbaV2 critic parameter counts per width (reference.md).
SIMBAV2_PARAMS = {128: 604_362, 256: 2_322_634, 512: 9_101_514, 1024: 36_028_618,
                  2048: 143_360_202}

#: Each column of a SimbaV2 run file is the mean of this many seeds (reference.md).
SIMBAV2_SEEDS_PER_COLUMN = 5

#: Critic parameter counts of the DMC BRO ablation sizes (reference.md).
DMC_SIZE_PARAMS = {"xs": 0.55e6, "s": 1.05e6, "sm": 2.83e6, "m": 4.92e6, "l": 26.31e6}
DMC_BATCH_SIZE = 128
DMC_STEP_EVERY = 25_000

#: A number as Python's `f"{x:g}"` writes it (`2`, `0.5`, `1e-05`, `1e+06`): what our learner
#: writes is read back exactly.
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_BRO = re.compile(
    rf"(?:^|/)w(?P<width>\d+)p(?P<params>\d+)/utd_(?P<utd>{_NUM})/(?P<env>[^/]+)/(?P<metric>[^/]+)/"
    rf"bs_(?P<bs>\d+)_lr_(?P<lr>{_NUM})(?P<rest>[^/]*)\.npy$"
)
_SIMBA = re.compile(
    rf"(?:^|/)w(?P<width>\d+)/utd_(?P<utd>{_NUM})/(?P<env>[^/]+)/(?P<metric>[^/]+)/bs_(?P<bs>\d+)\.npy$"
)
_DMC = re.compile(rf"(?:^|/)rr(?P<utd>{_NUM})_(?P<size>[a-z]+)/(?P<env>[^/]+)\.npy$")


@dataclass
class Run:
    """One configuration of one algorithm on one env: curves of each metric over seeds."""

    layout: str
    env: str
    utd: float
    params: float
    batch_size: float
    width: int | None = None
    learning_rate: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> (T,) env steps
    values: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> (T, S)
    seeds_per_column: int = 1  # each column of `values` the mean of this many seeds (SimbaV2: 5)

    @property
    def key(self) -> tuple:
        return (self.layout, self.env, self.utd, self.params, self.batch_size,
                tuple(sorted(self.tags.items())))

    @property
    def n_seeds(self) -> int:
        return self.values["return"].shape[1] if "return" in self.values else 0


def _tags(rest: str) -> dict[str, str]:
    tags = {}
    m = re.search(r"_sep_(True|False)", rest)
    if m:
        tags["passive_critic"] = m.group(1)
    m = re.search(r"_sep_(?:True|False)_(w\d+p\d+)", rest)
    if m and m.group(1) != "w512p1":
        tags["passive_critic_arch"] = m.group(1)
    return tags


def _parse(name: str) -> tuple[dict, str] | None:
    """Parse one member name into run fields and a metric, or None if it is not a run file."""
    if m := _BRO.search(name):
        return dict(layout="bro", env=m["env"], utd=float(m["utd"]), params=float(m["params"]),
                    width=int(m["width"]), batch_size=float(m["bs"]), learning_rate=float(m["lr"]),
                    tags=_tags(m["rest"])), m["metric"]
    if m := _SIMBA.search(name):
        width = int(m["width"])
        if width not in SIMBAV2_PARAMS:
            return None
        return dict(layout="simbav2", env=m["env"], utd=float(m["utd"]),
                    params=float(SIMBAV2_PARAMS[width]), width=width, batch_size=float(m["bs"]),
                    tags={}, seeds_per_column=SIMBAV2_SEEDS_PER_COLUMN), m["metric"]
    if m := _DMC.search(name):
        if m["size"] not in DMC_SIZE_PARAMS:
            return None
        return dict(layout="dmc", env=m["env"], utd=float(m["utd"]),
                    params=DMC_SIZE_PARAMS[m["size"]], batch_size=float(DMC_BATCH_SIZE),
                    tags={"size": m["size"]}), "return"
    return None


#: The largest run file we read (the published ones are under 100 KB); larger is refused unread.
MAX_MEMBER_BYTES = 256 * 2**20


def _members(path: Path):
    """Yield (name, loader) for every .npy in a zip or folder; a zip is closed when the
    generator is (read_runs closes it). Loaders raise ArchiveError naming the member."""
    if path.is_dir():
        for p in sorted(path.rglob("*.npy")):
            name = p.relative_to(path).as_posix()
            yield name, (lambda p=p: _read_file(p))
        return
    if not path.is_file():  # a FIFO would block the read, a device never end it
        raise ArchiveError(f"run archive {path} is not a regular file (a FIFO, socket or "
                           "device); give a zip or tar archive or a folder of runs")
    try:
        zf = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{path} is not a readable zip archive: {exc}") from None
    if zf is None:
        yield from _tar_members(path)
        return
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.filename.endswith(".npy") and not info.is_dir():
                yield info.filename, (lambda info=info: _read_member(zf, info, path))


def _tar_members(path: Path):
    """(name, loader) for every regular .npy file in a tar archive (gzip, bz2 or xz too), such
    as a calibration out-dir packed up; anything else is ArchiveError. Links, devices and
    folders inside are skipped, and a member larger than a run file may be is refused unread."""
    import tarfile

    try:
        tf = tarfile.open(path) if tarfile.is_tarfile(path) else None
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{path} is not a readable tar archive: {_one_line(exc)}") from None
    if tf is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(4)
        except OSError:
            head = b""
        if head == b"PK\x03\x04":  # a zip's first entry, but no directory at its end
            raise ArchiveError(f"{path} starts as a zip archive but cannot be read as one: it "
                               "is truncated or damaged (its central directory is missing); "
                               "copy or download it again")
        raise ArchiveError(f"{path} is neither a folder nor a zip or tar archive of runs (a "
                           "tidy CSV of runs must end in .csv)")
    with tf:
        try:
            # In the archive's order: a compressed stream read backwards starts over
            # (read_runs sorts what it returns).
            infos = [i for i in tf.getmembers() if i.isfile() and i.name.endswith(".npy")]
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"{path} is not a readable tar archive: {_one_line(exc)}") \
                from None
        for info in infos:
            yield info.name, (lambda info=info: _read_tar_member(tf, info, path))


def _read_tar_member(tf, info, archive: Path) -> bytes:
    import tarfile

    if info.size > MAX_MEMBER_BYTES:
        raise ArchiveError(f"{info.name} in {archive} is {info.size / 2**20:.0f} MiB, more than "
                           f"the {MAX_MEMBER_BYTES / 2**20:g} MiB a run file may be")
    try:
        fh = tf.extractfile(info)
        data = fh.read(MAX_MEMBER_BYTES + 1) if fh is not None else b""
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{info.name} in {archive} cannot be read (corrupt tar member: "
                           f"{_one_line(exc)})") from None
    return data


def _read_file(p: Path) -> bytes:
    from advisor.files import read_limited

    return read_limited(p, "run file", ArchiveError, limit=MAX_MEMBER_BYTES)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: Path) -> bytes:
    if info.file_size > MAX_MEMBER_BYTES:
        raise ArchiveError(f"{info.filename} in {archive} is {info.file_size / 2**20:.0f} MiB "
                           f"uncompressed, more than the {MAX_MEMBER_BYTES / 2**20:g} MiB a run "
                           "file may be")
    try:
        with zf.open(info) as fh:
            data = fh.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
            NotImplementedError, ValueError) as exc:
        # BadZipFile: bad CRC or header; RuntimeError: encrypted; NotImplementedError:
        # unsupported compression; zlib.error / EOFError: corrupt or truncated data.
        raise ArchiveError(f"{info.filename} in {archive} cannot be read (corrupt zip member: "
                           f"{_one_line(exc)})") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise ArchiveError(f"{info.filename} in {archive} is larger than the "
                           f"{MAX_MEMBER_BYTES / 2**20:g} MiB a run file may be")
    return data


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def load_array(data: bytes, name: str, archive: Path, has_steps: bool) -> np.ndarray:
    """The (T, columns) float64 array of one run file, or ArchiveError naming it: not a .npy,
    truncated, pickled objects (never loaded), not real numbers, wrong shape, bad step column.
    Non-finite values (diverged or missing seeds) become NaN."""
    where = f"{name} in {archive}"
    if not data.startswith(b"\x93NUMPY"):
        raise ArchiveError(f"{where} is not a .npy file (it does not start with the .npy magic "
                           "bytes)")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "object arrays" in str(exc).lower() or "pickle" in str(exc).lower():
            raise ArchiveError(f"{where} holds Python objects (pickled data), which are never "
                               "loaded; a run file must be a numeric array") from None
        raise ArchiveError(f"{where} is not a readable .npy array: {_one_line(exc)}") from None
    except (EOFError, OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise ArchiveError(f"{where} is not a readable .npy array (truncated or not a .npy "
                           f"file): {_one_line(exc)}") from None
    if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.integer)
                                               or np.issubdtype(arr.dtype, np.floating)
                                               or arr.dtype == bool):
        raise ArchiveError(f"{where} holds {getattr(arr, 'dtype', type(arr))} values; a run "
                           "file holds real numbers")
    need = 2 if has_steps else 1
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < need:
        what = "(steps, 1 + seeds)" if has_steps else "(evaluations, seeds)"
        raise ArchiveError(f"{where} is not a {what} array with at least one seed column: "
                           f"shape {arr.shape}")
    arr = arr.astype(float)
    if has_steps:
        steps = arr[:, 0]
        if not np.isfinite(steps).all() or (steps < 0).any() or (np.diff(steps) < 0).any():
            raise ArchiveError(f"{where} has a step column (column 0) that is not finite, "
                               "non-negative and non-decreasing")
    values = arr[:, 1:] if has_steps else arr
    values[~np.isfinite(values)] = np.nan
    return arr


def env_name(env_id: str) -> str:
    """An env id without gymnasium's `module:` prefix: what names a fit (`algorithm/name`)."""
    return env_id.split(":", 1)[-1]


def read_runs(
    path: str | Path, env: str | None = None, metrics: tuple[str, ...] = ("return",),
    later_wins: bool = False,
) -> list[Run]:
    """Read every run (optionally of one env: its id, or its name without the `module:` of a
    calibrate out-dir's id, as a fit names it) with the given metrics from an archive.

    Returns runs sorted by (env, utd, params, batch_size). Steps are env steps; values are
    float64 with one column per seed (NaN where a seed has no finite value). A member that
    cannot be read raises ArchiveError naming it, and so does a run the archive holds twice
    (two sets of runs packed together: which to fit?), unless `later_wins`: then the one
    whose member name sorts later is kept (whatever order a tar lists them in). That is for
    a calibrate out-dir's runs/, where a stage-2 unit, listed after stage 1's, may rerun a
    stage-1 config, and stage 2's runs are those D_J was fitted to.
    """
    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"run archive {path} does not exist")
    runs: dict[tuple, Run] = {}
    where: dict[tuple, str] = {}  # (run, metric) -> the member it was read from
    others: set[str] = set()  # envs of the archive not asked for: named if none is
    ids: set[str] = set()  # the env ids read: one, where `env` is a name two modules share
    with contextlib.closing(_members(path)) as members:
        for name, load in members:
            if PurePosixPath(name).name.startswith("._"):
                continue
            parsed = _parse(name)
            if parsed is None:
                continue
            fields, metric = parsed
            metric = METRIC_ALIASES.get(metric, metric)
            if env is not None and env not in (fields["env"], env_name(fields["env"])):
                others.add(fields["env"])
                continue
            ids.add(fields["env"])
            if metric not in metrics:
                continue
            if not (0 < fields["utd"] < math.inf and 0 < fields["params"] < math.inf
                    and fields["batch_size"] > 0):
                raise ArchiveError(f"{name} in {path}: the utd, parameter count and batch size in "
                                   "its name must be positive numbers")
            run = Run(**fields)
            if (run.key, metric) in where:
                first = where[run.key, metric]
                if not later_wins:  # two sets of runs: which to fit?
                    raise ArchiveError(
                        f"{path} holds the same run twice ({first} and {name}); an archive "
                        "holds each configuration once: read the folder of one set of runs (a "
                        "calibrate out-dir's fit is remade by rerunning `advisor calibrate "
                        "--out-dir` on it, or `advisor report --runs` reads it whole)")
                if name < first:  # the member whose name sorts later wins (stage 2's)
                    continue
            where[run.key, metric] = name
            arr = load_array(load(), name, path, has_steps=fields["layout"] != "dmc")
            if fields["layout"] == "dmc":
                steps = DMC_STEP_EVERY * np.arange(1, arr.shape[0] + 1, dtype=float)
                values = arr
            else:
                steps, values = arr[:, 0], arr[:, 1:]
            run = runs.setdefault(run.key, run)
            run.steps[metric] = steps
            run.values[metric] = values
    if env is not None and len(ids) > 1:
        raise ArchiveError(f"{path} holds runs of {len(ids)} envs named {env!r} "
                           f"({', '.join(sorted(ids))}): pass the id of one as --env, or a "
                           "folder of its runs alone")
    if not runs:
        what = f" for env {env!r}" if env else ""
        if others:
            raise ArchiveError(f"{path} holds no runs{what}; its envs: "
                               f"{', '.join(sorted(others))}")
        raise ArchiveError(f"{path} holds no runs{what} in a layout this version reads")
    return sorted(runs.values(), key=lambda r: (r.env, r.utd, r.params, r.batch_size,
                                                sorted(r.tags.items())))


def nearest_batch_runs(runs: list[Run], batch_of) -> list[Run]:
    """One run per (utd, params): the one whose batch size is nearest (in log) to
    batch_of(utd, params), e.g. a fitted B~. Sorted by (utd, params)."""
    best: dict[tuple, Run] = {}
    for r in runs:
        key = (r.utd, r.params)
        want = math.log(float(batch_of(r.utd, r.params)))
        if key not in best or (abs(math.log(r.batch_size) - want)
                               < abs(math.log(best[key].batch_size) - want)):
            best[key] = r
    return [best[k] for k in sorted(best)]
