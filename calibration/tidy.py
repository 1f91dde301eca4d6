"""Runs from any RL codebase: a tidy CSV, one row per logged evaluation.

Columns (header required, any order, extra columns ignored):
    utd, width or params, batch_size, seed, step, return
    optional: critic_loss, validation_critic_loss, env
`step` is env steps at the evaluation, `return` the evaluation return; `width` is the critic
hidden width (params then come from the fit's architecture), `params` the critic parameter
count (both Q-nets). Any logger can write it (wandb, TensorBoard and CSV exports: rename the
columns). Every problem is one line naming the first bad row (1 = the first line after the
header).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from advisor.files import read_limited
from calibration.archives import ArchiveError, Run

REQUIRED = ("utd", "batch_size", "seed", "step", "return")
SIZE_COLUMNS = ("width", "params")
OPTIONAL_METRICS = ("critic_loss", "validation_critic_loss")
MAX_CSV_BYTES = 512 * 2**20
MAX_STEP = 1e15  # env steps: a fit file's horizon at most


class CsvError(ArchiveError):
    """A run CSV with a missing column, a bad value or a configuration that cannot be fitted."""


def _number(text: str, column: str, row: int, *, positive: bool = False,
            nonneg: bool = False, integer: bool = False) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise CsvError(f"row {row}: {column} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        if column in ("return", *OPTIONAL_METRICS) and text.strip().lower() == "nan":
            return math.nan  # a diverged run logs NaN: kept as missing
        raise CsvError(f"row {row}: {column} must be finite, got {text!r}")
    if positive and not value > 0:
        raise CsvError(f"row {row}: {column} must be positive, got {text!r}")
    if nonneg and value < 0:
        raise CsvError(f"row {row}: {column} must not be negative, got {text!r}")
    if integer and value != int(value):
        raise CsvError(f"row {row}: {column} must be a whole number, got {text!r}")
    return value


def _seed(text: str, row: int) -> int:
    """A seed exactly, however large (64-bit seeds differ beyond a float's 2^53)."""
    try:
        value = int(text)
    except ValueError:  # "3.0", "1e3", or not a number: read as the other columns are
        return int(_number(text, "seed", row, nonneg=True, integer=True))
    if value < 0:
        raise CsvError(f"row {row}: seed must not be negative, got {text!r}")
    return value


def read_csv_runs(path: str | Path, *, env: str | None = None, params_of=None) -> list[Run]:
    """Runs (one per utd, critic size and batch size) from a tidy CSV.

    `params_of(width)` turns widths into critic parameter counts (needed when the CSV has a
    `width` column and no `params`). `env` selects rows of that env when the CSV has an `env`
    column. Configurations need at least 2 seeds (the fit bootstraps over seeds)."""
    data = read_limited(path, "run CSV", CsvError, limit=MAX_CSV_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvError(f"run CSV {path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if not header:
        raise CsvError(f"run CSV {path} is empty: it needs a header line with "
                       f"{', '.join(REQUIRED)} and width or params")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:  # csv keeps the last of them: which one was meant?
        raise CsvError(f"run CSV {path} has the column {twice[0]!r} more than once; each "
                       "column name may appear once")
    if missing:
        raise CsvError(f"run CSV {path} has no column {missing[0]!r}; needed: "
                       f"{', '.join(REQUIRED)} and width or params (found: {', '.join(header)})")
    if not any(c in header for c in SIZE_COLUMNS):
        raise CsvError(f"run CSV {path} needs a width or a params column (found: "
                       f"{', '.join(header)})")
    if "params" not in header and params_of is None:
        raise CsvError(f"run CSV {path} gives critic widths only: pass the critic input size "
                       "(--input-dim) so that widths can be turned into parameter counts")
    metrics = ("return",) + tuple(m for m in OPTIONAL_METRICS if m in header)
    points: dict[tuple, dict[int, dict[float, dict[str, float]]]] = {}
    widths: dict[tuple, int | None] = {}
    envs = set()
    n_rows = 0
    for i, raw in enumerate(reader, start=1):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            raise CsvError(f"row {i}: more fields than the header has columns")
        if "env" in row:
            envs.add(row["env"])
            if env is not None and row["env"] != env:
                continue
        n_rows += 1
        utd = _number(row["utd"], "utd", i, positive=True)
        batch = _number(row["batch_size"], "batch_size", i, positive=True, integer=True)
        seed = _seed(row["seed"], i)
        step = _number(row["step"], "step", i, nonneg=True)
        if step > MAX_STEP:
            raise CsvError(f"row {i}: step must be at most {MAX_STEP:g} env steps, got "
                           f"{row['step']!r}")
        width = None
        if row.get("params", "") != "":
            params = _number(row["params"], "params", i, positive=True)
            if row.get("width", "") != "":
                width = int(_number(row["width"], "width", i, positive=True, integer=True))
        else:
            if row.get("width", "") == "":
                raise CsvError(f"row {i}: width and params are both empty")
            width = int(_number(row["width"], "width", i, positive=True, integer=True))
            params = float(params_of(width))
        key = (utd, params, batch)
        widths[key] = width
        values = {m: _number(row.get(m, ""), m, i) if row.get(m, "") != "" else math.nan
                  for m in metrics}
        if math.isnan(values["return"]) and row["return"].lower() != "nan":
            raise CsvError(f"row {i}: return is empty")
        seeds = points.setdefault(key, {})
        if step in seeds.setdefault(seed, {}):
            raise CsvError(f"row {i}: seed {seed} of utd {utd:g}, params {params:.6g}, batch size "
                           f"{batch:g} logs step {step:g} twice")
        seeds[seed][step] = values
    if n_rows == 0:
        what = f" for env {env!r} (envs in the file: {', '.join(sorted(envs))})" if envs else ""
        raise CsvError(f"run CSV {path} has no rows{what}")
    runs = []
    name = env or (envs.pop() if len(envs) == 1 else Path(path).stem)
    for key in sorted(points):
        utd, params, batch = key
        seeds = points[key]
        if len(seeds) < 2:
            raise CsvError(f"utd {utd:g}, params {params:.6g}, batch size {batch:g} has one seed "
                           f"({next(iter(seeds))}); every configuration needs at least 2 seeds")
        steps = np.array(sorted({s for per in seeds.values() for s in per}), dtype=float)
        run = Run(layout="csv", env=name, utd=utd, params=params, batch_size=batch,
                  width=widths[key])
        for m in metrics:
            arr = np.full((len(steps), len(seeds)), np.nan)
            for j, seed in enumerate(sorted(seeds)):
                for t, s in enumerate(steps):
                    if s in seeds[seed]:
                        arr[t, j] = seeds[seed][s][m]
            if m == "return" or np.isfinite(arr).any():
                run.steps[m] = steps
                run.values[m] = arr
        runs.append(run)
    return runs
