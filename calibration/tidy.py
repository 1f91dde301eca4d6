"""Runs from any RL codebase: a tidy CSV, one row per logged evaluation.

Columns (header required, any order, extra columns ignored):
    utd, width or params, batch_size, seed, step, return
    optional: critic_loss, validation_critic_loss, env, critic
`step` is env steps at the evaluation, `return` the evaluation return; `width` is the critic
hidden width (params then come from the fit's architecture), `params` the critic parameter
count (both Q-nets). `critic` says what the runs' critic is, where a fit learns params(width)
from the width and params columns: `mlp` (a plain MLP, as SB3's MlpPolicy builds) or `bronet`
(SB3 BroNetSACPolicy's, a scalar head), which the rl-zoo export then builds at the recommended
width; empty: another critic (CRITIC_KINDS; `advisor tidy` writes it). Any logger can write the
file (wandb, TensorBoard and CSV exports: rename the columns). The seeds of a configuration log
the same steps (one may stop earlier: its last return is carried forward, as the published
archives do); `round_steps` snaps steps that a logger jittered to a common grid. A return of
`nan` or an empty one is missing (a diverged or stopped seed: its last finite return is carried
forward); a seed without any finite return is an error. Every problem is one line naming the
first bad line of the file (the header is line 1).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from advisor.errors import shown
from advisor.files import read_limited
from calibration.archives import ArchiveError, Run

REQUIRED = ("utd", "batch_size", "seed", "step", "return")
SIZE_COLUMNS = ("width", "params")
OPTIONAL_METRICS = ("critic_loss", "validation_critic_loss")
MAX_CSV_BYTES = 512 * 2**20
MAX_STEP = 1e15  # env steps: a fit file's horizon at most
#: Distinct widths, each with one params, from which a fit without --input-dim learns the
#: critic's params(width), a quadratic (calibration.build).
MIN_CSV_WIDTHS = 3
#: What the `critic` column may say of the runs' critic (empty: not said).
CRITIC_KINDS = ("mlp", "bronet")


#: The ranges a fit file's domain allows (advisor.fitfile.Domain), checked row by row.
MIN_UTD, MAX_UTD = 1e-6, 1e6
MAX_PARAMS = 1e15
MAX_WIDTH = 1e6


class CsvError(ArchiveError):
    """A run CSV with a missing column, a bad value or a configuration that cannot be fitted."""


def _number(text: str, column: str, row: int, *, positive: bool = False,
            nonneg: bool = False, integer: bool = False) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise CsvError(f"line {row}: {column} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        if column in ("return", *OPTIONAL_METRICS) and math.isnan(value):
            return math.nan  # a diverged run logs NaN: kept as missing
        raise CsvError(f"line {row}: {column} must be finite, got {text!r}")
    if positive and not value > 0:
        raise CsvError(f"line {row}: {column} must be positive, got {text!r}")
    if nonneg and value < 0:
        raise CsvError(f"line {row}: {column} must not be negative, got {text!r}")
    if integer and value != int(value):
        raise CsvError(f"line {row}: {column} must be a whole number, got {text!r}")
    return value


def _seed(text: str, row: int) -> int:
    """A seed exactly, however large (64-bit seeds differ beyond a float's 2^53)."""
    try:
        value = int(text)
    except ValueError:  # "3.0", "1e3", or not a number: read as the other columns are
        return int(_number(text, "seed", row, nonneg=True, integer=True))
    if value < 0:
        raise CsvError(f"line {row}: seed must not be negative, got {text!r}")
    return value


def _line_breaks(text: str) -> None:
    """A carriage return inside a line of a file with LF endings (a column appended to a CRLF
    file) splits a row in two: say where, rather than read half-rows."""
    if "\r" not in text or "\n" not in text:
        return
    import re

    stray = re.search("\r(?!\n)", text)
    if stray:
        raise CsvError(f"line {text.count(chr(10), 0, stray.start()) + 1}: a carriage return "
                       "inside the line (mixed line endings); save the file with LF or CRLF "
                       "endings")


#: What sets params(width) where `advisor fit` reads a CSV (a row's width and params disagree).
INPUT_DIM_HINT = "check the critic's input size (--input-dim)"


def _size(row: dict, line: int, params_of, check: bool = True,
          hint: str = INPUT_DIM_HINT) -> tuple[float, int | None]:
    """(params, width) of a row; width None where the file has no width column; `hint`
    ends the message where a row's width and params disagree."""
    width = None
    if row.get("width", "") != "":
        width = int(_number(row["width"], "width", line, positive=True, integer=True))
        if width > MAX_WIDTH:
            raise CsvError(f"line {line}: width must be at most {MAX_WIDTH:,.0f} units, got "
                           f"{row['width']!r}")
    if row.get("params", "") != "":
        params = _number(row["params"], "params", line, positive=True)
        if params > MAX_PARAMS:
            raise CsvError(f"line {line}: params must be at most {MAX_PARAMS:.0e}, got "
                           f"{row['params']!r}")
        if width is not None and params_of is not None and check:
            implied = float(params_of(width))
            if abs(implied - params) > 0.01 * params:
                raise CsvError(f"line {line}: width {width} is a critic of {implied:.6g} params "
                               f"for the given input size, but params says {params:.10g}; drop "
                               f"the width column to fit by params alone, or {hint}")
        return params, width
    if width is None:
        raise CsvError(f"line {line}: width and params are both empty")
    if params_of is None:
        raise CsvError(f"line {line}: params is empty; give every row its params, or pass the "
                       "critic input size (--input-dim) so that widths give them")
    with np.errstate(over="ignore"):
        params = float(params_of(width))
    if not params <= MAX_PARAMS:
        raise CsvError(f"line {line}: width {width} gives a critic of {params:.3g} params, more "
                       f"than {MAX_PARAMS:.0e}")
    return params, width


def _recorded(command: str | None, option: str) -> str | None:
    """The value of `option` in a fit's recorded `advisor fit` command; None where it has none
    or the command cannot be read."""
    import shlex

    try:
        words = shlex.split(command or "")
        return words[words.index(option) + 1]
    except (ValueError, IndexError):
        return None


def read_fit_csv(path: str | Path, fit) -> list[Run]:
    """The runs of the tidy CSV `fit` (an advisor Fit) was made from, read as its recorded
    `advisor fit` command read them: the rows of its --env, its --round-steps, and widths
    turned into params by its architecture (checked against a params column, unless that
    architecture was fitted to the file's own width and params columns)."""
    command = fit.model.provenance.command
    round_steps = _recorded(command, "--round-steps")
    try:
        round_steps = None if round_steps is None else float(round_steps)
    except ValueError:
        round_steps = None
    # A CSV fitted without --input-dim had width and params columns, and its architecture was
    # fitted to them: its rows are not checked against it (any other fit's is a BroNet's or
    # the paper's, which widths must match).
    source = _recorded(command, "fit") or ""  # the runs `advisor fit` read
    own = _recorded(command, "--input-dim") is None and source.lower().endswith(".csv")
    return read_csv_runs(path, env=_recorded(command, "--env") or fit.id.split("/", 1)[1],
                         params_of=lambda w: float(fit.params(w)), round_steps=round_steps,
                         check_widths=not own,
                         hint=f"check that these are the runs {fit.id} was made from (its "
                              "critic turns widths into params)")


def _shown(width: int | None) -> str:
    return "(empty)" if width is None else str(width)


def _config(key: tuple) -> str:
    utd, params, batch = key
    return f"utd {utd:g}, params {params:.10g}, batch size {batch:g}"


def read_csv_runs(path: str | Path, *, env: str | None = None, params_of=None,
                  round_steps: float | None = None, check_widths: bool = True,
                  hint: str = INPUT_DIM_HINT) -> list[Run]:
    """Runs (one per utd, critic size and batch size) from a tidy CSV.

    `params_of(width)` turns widths into critic parameter counts (needed when the CSV has a
    `width` column and no `params`; with both, each row's must agree within 1% unless not
    `check_widths`; `hint` ends the message where they do not). `env` selects
    rows of that env when the CSV has an `env` column (needed when it names several).
    `round_steps` (1 or more) rounds each step to the nearest multiple of it first.
    Configurations need at least 2 seeds (the fit bootstraps over seeds), which log the same
    steps."""
    if round_steps is not None and not 1 <= round_steps <= MAX_STEP:
        raise CsvError(f"round_steps must be 1 to {MAX_STEP:g} env steps, got {round_steps!r}")
    data = read_limited(path, "run CSV", CsvError, limit=MAX_CSV_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        what = ("UTF-16 text (PowerShell's default: write it with -Encoding utf8)"
                if data[:2] in (b"\xff\xfe", b"\xfe\xff") else
                f"not UTF-8 text (byte {data[exc.start]:#04x} on line {line})")
        raise CsvError(f"run CSV {path} is {what}; save it as UTF-8") from None
    _line_breaks(text)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] = []
    try:
        while not any(header) and (fields := next(reader, None)) is not None:
            header = [h.strip().lower() for h in fields]  # blank lines before it are skipped
    except csv.Error as exc:
        raise CsvError(f"run CSV {path}, line {reader.line_num}: {exc}") from None
    if not any(header):
        raise CsvError(f"run CSV {path} is empty: it needs a header line with "
                       f"{', '.join(REQUIRED)} and width or params")
    named = [h for h in header if h]  # unnamed columns (a pandas index) are extra columns
    twice = sorted({h for h in named if named.count(h) > 1})
    if twice:  # which one was meant?
        raise CsvError(f"run CSV {path} has the column {twice[0]!r} more than once; each "
                       "column name may appear once")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        sep = next((name for ch, name in (("\t", "tabs"), (";", "semicolons"))
                    if len(named) == 1 and ch in named[0]), None)
        hint = f" (its header is one column split by {sep}: separate columns with commas)" \
            if sep else ""
        raise CsvError(f"run CSV {path} has no column {missing[0]!r}; needed: "
                       f"{', '.join(REQUIRED)} and width or params (found: {', '.join(named)})"
                       + hint)
    if not any(c in header for c in SIZE_COLUMNS):
        raise CsvError(f"run CSV {path} needs a width or a params column (found: "
                       f"{', '.join(named)})")
    if "params" not in header and params_of is None:
        raise CsvError(f"run CSV {path} gives critic widths only: pass the critic input size "
                       "(--input-dim) so that widths can be turned into parameter counts")
    metrics = ("return",) + tuple(m for m in OPTIONAL_METRICS if m in header)
    # config -> seed -> step -> metric values; where each config and seed was first seen
    points: dict[tuple, dict[int, dict[float, tuple]]] = {}
    widths: dict[tuple, tuple[int | None, int]] = {}
    kinds: dict[tuple, tuple[str, int]] = {}  # config -> (its critic column, first line)
    first_line: dict[tuple, int] = {}
    envs: set[str] = set()
    env_line = 0  # where the first env was named
    n_rows = 0
    end = reader.line_num  # the line the last row (or the header) ended on
    needed = max(i for i, h in enumerate(header) if h) + 1  # fields up to the last named
    rows = iter(reader)
    while True:
        try:
            fields = next(rows, None)
        except csv.Error as exc:  # a field past the size limit: a quote never closed
            raise CsvError(f"line {end + 1}: {exc} (a quote opened and never closed?)") from None
        if fields is None:
            break
        line, begin, end = reader.line_num, end + 1, reader.line_num
        if not any(f.strip() for f in fields):
            continue  # a blank line
        if line > begin:  # a quoted field held line breaks
            col = next((h or f"number {k + 1}" for k, (h, f) in enumerate(zip(
                header, fields, strict=False)) if "\n" in f or "\r" in f), "past the header's")
            raise CsvError(f"lines {begin}-{line}: a quoted field in column {col} holds line "
                           "breaks; fields may not span lines (or a quote was never closed)")
        if len(fields) > len(header):
            raise CsvError(f"line {line}: {len(fields)} fields, more than the header's "
                           f"{len(header)} columns (a comma at the end of the rows only?)")
        if len(fields) < needed:
            # a quote never closed takes the rest of the file: the last field, with its commas
            quoted = bool(fields) and ("," in fields[-1] or fields[-1].endswith(("\n", "\r")))
            raise CsvError(f"line {line}: {len(fields)} fields, fewer than the header's "
                           f"{len(header)} columns ("
                           + ("a quote opened and never closed holds the commas after it"
                              if quoted else "an empty field needs its comma") + ")")
        row = {h: f.strip() for h, f in zip(header, fields, strict=False) if h}
        if "env" in header:
            if row.get("env", "") == "":
                raise CsvError(f"line {line}: env is empty; every row of a file with an env "
                               "column names its env")
            if env is None and envs and row["env"] not in envs:
                raise CsvError(f"run CSV {path} holds runs of more than one env ("
                               f"{next(iter(envs))} on line {env_line}, {row['env']} on line "
                               f"{line}): choose one with --env")
            if not envs:
                env_line = line
            envs.add(row["env"])
            if env is not None and row["env"] != env:
                continue
        n_rows += 1
        utd = _number(row.get("utd", ""), "utd", line, positive=True)
        if not MIN_UTD <= utd <= MAX_UTD:
            raise CsvError(f"line {line}: utd must lie within {MIN_UTD:g} - {MAX_UTD:g} updates "
                           f"per env step, got {row['utd']!r}")
        batch = _number(row.get("batch_size", ""), "batch_size", line, positive=True,
                        integer=True)
        seed = _seed(row.get("seed", ""), line)
        step = _number(row.get("step", ""), "step", line, nonneg=True)
        if step > MAX_STEP:
            raise CsvError(f"line {line}: step must be at most {MAX_STEP:g} env steps, got "
                           f"{row['step']!r}")
        if round_steps is not None:
            step = float(round(step / round_steps) * round_steps)
            if step > MAX_STEP:
                raise CsvError(f"line {line}: step {row['step']} rounds to {step:g}, past "
                               f"{MAX_STEP:g} env steps")
        params, width = _size(row, line, params_of, check_widths, hint)
        key = (utd, params, batch)
        kind = row.get("critic", "").lower()  # MLP, BroNet: as the project writes them
        if kind not in ("", *CRITIC_KINDS):
            raise CsvError(f"line {line}: critic must be {' or '.join(CRITIC_KINDS)} (or empty: "
                           f"another critic), got {shown(kind)}")
        if kinds.setdefault(key, (kind, line))[0] != kind:
            raise CsvError(f"line {line}: critic {shown(kind)} differs from "
                           f"{shown(kinds[key][0])} on line {kinds[key][1]} for the same "
                           f"{_config(key)}")
        first_line.setdefault(key, line)
        seen = widths.setdefault(key, (width, line))
        if seen[0] != width:
            raise CsvError(f"line {line}: width {_shown(width)} differs from width "
                           f"{_shown(seen[0])} on line {seen[1]} for the same {_config(key)}")
        # (line, return, then the optional metrics): a tuple, as big files hold millions
        values = [line, _number(row["return"], "return", line)
                  if row.get("return", "") != "" else math.nan]
        for m in metrics[1:]:  # not fitted: what is not a finite number is missing
            try:
                value = float(row.get(m, ""))
            except ValueError:
                value = math.nan
            values.append(value if math.isfinite(value) else math.nan)
        seeds = points.setdefault(key, {})
        if step in seeds.setdefault(seed, {}):
            how = f" (rounded to a multiple of {round_steps:g})" if round_steps else ""
            raise CsvError(f"line {line}: seed {seed} of {_config(key)} logs step {step:g}"
                           f"{how} twice (first on line {seeds[seed][step][0]})")
        seeds[seed][step] = tuple(values)
    if n_rows == 0:
        what = f" for env {env!r} (envs in the file: {', '.join(sorted(envs))})" if envs else ""
        raise CsvError(f"run CSV {path} has no rows{what}")
    runs = []
    name = env or (envs.pop() if len(envs) == 1 else Path(path).stem)
    for key in sorted(points):
        seeds = points[key]
        where = f"{_config(key)} (first on line {first_line[key]})"
        if len(seeds) < 2:
            raise CsvError(f"{where} has one seed ({next(iter(seeds))}); every configuration "
                           "needs at least 2 seeds")
        steps = np.array(sorted({s for per in seeds.values() for s in per}), dtype=float)
        for seed, per in seeds.items():
            mine = sorted(per)
            if mine != list(steps[:len(mine)]):
                gap = next(float(s) for s, t in zip(steps, mine, strict=False) if s != t)
                has = next(o for o in seeds if gap in seeds[o])
                raise CsvError(
                    f"{where}: seed {has} logs step {gap:g} and seed {seed} does not, though it "
                    f"logs steps after it; the seeds of a configuration must log the same steps "
                    f"(one may stop earlier; a row with an empty return marks a missing "
                    f"evaluation); where a logger's steps drift, advisor fit --round-steps N "
                    f"rounds them to multiples of N")
            if not any(math.isfinite(v[1]) for v in per.values()):
                raise CsvError(f"{where}: seed {seed} has no finite return; remove its rows")
        run = Run(layout="csv", env=name, utd=key[0], params=key[1], batch_size=key[2],
                  width=widths[key][0], tags={"critic": kinds[key][0]} if kinds[key][0] else {})
        for k, m in enumerate(metrics, start=1):
            arr = np.full((len(steps), len(seeds)), np.nan)
            for j, seed in enumerate(sorted(seeds)):
                for t, s in enumerate(steps):
                    if s in seeds[seed]:
                        arr[t, j] = seeds[seed][s][k]
            if m == "return" or np.isfinite(arr).any():
                run.steps[m] = steps
                run.values[m] = arr
        runs.append(run)
    return runs
