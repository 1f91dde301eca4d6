"""Run logs in the published layouts (zip or folder) -> `Run` records.

Layouts understood (see ../shared/docs/reference.md):
- BRO (`fitted_bs`, `side_critic`, and our own learner's output):
  `<name>/w{width}p{params}/utd_{utd}/{env}/{metric}/bs_{B}_lr_{lr}_..._sep_{bool}_....npy`,
  each (T, 1+S): step column then one column per seed.
- SimbaV2: `<name>/w{width}/utd_{utd}/{env}/{avg_return|critic_loss|val_critic_loss}/bs_{B}.npy`,
  steps in column 0, one column per seed.
- DMC BRO ablations: `ablations_rr/rr{utd}_{size}/{task}.npy`, (40, S) with no step column,
  evaluations every 25k steps starting at 25k; batch size 128.
Arrays are read with `allow_pickle=False`: nothing read from an archive is ever unpickled.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
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

#: Critic parameter counts of the DMC BRO ablation sizes (reference.md).
DMC_SIZE_PARAMS = {"xs": 0.55e6, "s": 1.05e6, "sm": 2.83e6, "m": 4.92e6, "l": 26.31e6}
DMC_BATCH_SIZE = 128
DMC_STEP_EVERY = 25_000

_BRO = re.compile(
    r"(?:^|/)w(?P<width>\d+)p(?P<params>\d+)/utd_(?P<utd>[\d.]+)/(?P<env>[^/]+)/(?P<metric>[^/]+)/"
    r"bs_(?P<bs>\d+)_lr_(?P<lr>[\d.eE+-]+)(?P<rest>[^/]*)\.npy$"
)
_SIMBA = re.compile(
    r"(?:^|/)w(?P<width>\d+)/utd_(?P<utd>[\d.]+)/(?P<env>[^/]+)/(?P<metric>[^/]+)/bs_(?P<bs>\d+)\.npy$"
)
_DMC = re.compile(r"(?:^|/)rr(?P<utd>[\d.]+)_(?P<size>[a-z]+)/(?P<env>[^/]+)\.npy$")


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
                    tags={}), m["metric"]
    if m := _DMC.search(name):
        if m["size"] not in DMC_SIZE_PARAMS:
            return None
        return dict(layout="dmc", env=m["env"], utd=float(m["utd"]),
                    params=DMC_SIZE_PARAMS[m["size"]], batch_size=float(DMC_BATCH_SIZE),
                    tags={"size": m["size"]}), "return"
    return None


def _members(path: Path):
    """Yield (name, loader) for every .npy in a zip or folder."""
    if path.is_dir():
        for p in sorted(path.rglob("*.npy")):
            yield p.relative_to(path).as_posix(), (lambda p=p: p.read_bytes())
    elif zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        for name in sorted(zf.namelist()):
            if name.endswith(".npy"):
                yield name, (lambda name=name: zf.read(name))
    else:
        raise ArchiveError(f"{path} is neither a folder nor a zip archive of runs")


def read_runs(
    path: str | Path, env: str | None = None, metrics: tuple[str, ...] = ("return",),
) -> list[Run]:
    """Read every run (optionally of one env) with the given metrics from an archive.

    Returns runs sorted by (env, utd, params, batch_size). Steps are env steps; values are
    float64 with one column per seed.
    """
    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"run archive {path} does not exist")
    runs: dict[tuple, Run] = {}
    for name, load in _members(path):
        if PurePosixPath(name).name.startswith("._"):
            continue
        parsed = _parse(name)
        if parsed is None:
            continue
        fields, metric = parsed
        metric = METRIC_ALIASES.get(metric, metric)
        if metric not in metrics or (env is not None and fields["env"] != env):
            continue
        arr = np.load(io.BytesIO(load()), allow_pickle=False).astype(float)
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise ArchiveError(f"{name} in {path} is not a (steps, seeds) array: shape {arr.shape}")
        if fields["layout"] == "dmc":
            steps = DMC_STEP_EVERY * np.arange(1, arr.shape[0] + 1, dtype=float)
            values = arr
        else:
            steps, values = arr[:, 0], arr[:, 1:]
        run = Run(**fields)
        run = runs.setdefault(run.key, run)
        run.steps[metric] = steps
        run.values[metric] = values
    if not runs:
        what = f" for env {env!r}" if env else ""
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
