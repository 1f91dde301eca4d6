"""Coverage of the interval a coarse 3x3 grid gives, on runs between and beyond its configs.

`advisor calibrate`'s presets run 3 UTDs x 3 widths, and a user's held-out runs sit between and
beyond them. The archive grids (5x5; 4x4 for the h1 fits) stand in for that: for each archive
fit, every 3x3 sub-grid of three UTDs and three params values (on a 5-value axis the spaced
0, 2, 4 and the contiguous 0-2, 1-3, 2-4; on a 4-value axis 0-2, 1-3, 0/1/3 and 0/2/3: 16 per
fit) is fitted as the shipped fits are (the law, leave-one-config-out, `calibrate_interval`),
and its 80% interval, widened outside the sub-grid as `Fit.interval` widens it, is checked on
every config of the full grid the sub-grid left out:

  - between: inside the sub-grid's utd and params range (a UTD or critic size between two it
    ran; only the spaced sub-grids have these);
  - above / below: beyond its largest (smallest) utd or params, and not beyond the other side.

A cell is the share of the held-out points (config x threshold, thresholds the config
reached) inside the interval, pooled over a fit's sub-grids; the last row counts the misses
by side (runs that needed less data than the interval's low end / more than its high end).
Also the mean log width of the 80% interval at the sub-grid's own configs (log high - log
low, mean over thresholds and sub-grids). The thresholds stay the full grid's (a user's grid
would choose its own).

`--group-correction C` replaces the group scale's level L of the shipped interval by
min(1, L (1 + C / n)), n the configs in the rows or columns left out (C = 1: the split
conformal correction the LOCO quantile uses), for comparison: tried on 2026-11-29 and not
shipped (docs/intervals.md).

`--floors UP DOWN`: other widening floors (raising the one below does not mend the misses below:
docs/intervals.md, On a coarse grid).

Usage: python benchmarks/subgrid_coverage.py [DATA_DIR] [--only ID ...] [--group-correction C]
       [--floors UP DOWN]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import calibration.intervals as intervals  # noqa: E402
from calibration.build import DEFAULT_METHOD, N_BOOT, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.curves import DataTable  # noqa: E402
from calibration.fitting import fit_laws, leave_one_config_out  # noqa: E402

KINDS = ("between", "above", "below")


def sub_table(t: DataTable, keep: np.ndarray) -> DataTable:
    return t.rows(keep)


def refit_without(t: DataTable, held: np.ndarray, **calibrate):
    """The fit of `t` rebuilt from scratch without the configs in `held`, as a user's fit of
    the rest would be: (its table, its laws, its calibrated interval). `calibrate`: options
    of `calibrate_interval` (the alternatives the scripts compare)."""
    s = sub_table(t, ~held)
    laws = fit_laws(s, DEFAULT_METHOD)
    interval, _ = intervals.calibrate_interval(
        s, DEFAULT_METHOD, laws, leave_one_config_out(s, DEFAULT_METHOD, laws), **calibrate)
    return s, laws, interval


def outside(s: DataTable, utd: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log distances of configs (utd, params) above and below the utds and critic sizes of the
    table `s`, summed over the two axes, as Fit.distance_outside measures them."""
    up = (np.log(np.maximum(utd / s.utd.max(), 1))
          + np.log(np.maximum(params / s.params.max(), 1)))
    down = (np.log(np.maximum(s.utd.min() / utd, 1))
            + np.log(np.maximum(s.params.min() / params, 1)))
    return up, down


def widening(interval, s: DataTable, utd: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(k, 1) factors on the log offsets of configs (utd, params), as Fit.interval widens them
    beyond the utds and critic sizes of the table `s` the interval was fitted on."""
    up, down = outside(s, utd, params)
    return (1 + interval.widen_up * up + interval.widen_down * down)[:, None]


def triples(k: int) -> list[tuple[int, ...]]:
    """Which three of an axis's k values (indices, ascending) a sub-grid keeps."""
    if k == 5:
        return [(0, 2, 4), (0, 1, 2), (1, 2, 3), (2, 3, 4)]
    if k == 4:
        return [(0, 1, 2), (1, 2, 3), (0, 1, 3), (0, 2, 3)]
    return [tuple(range(k))] if k == 3 else []


def subgrid_sides(t: DataTable, iu: tuple[int, ...], ip: tuple[int, ...]
                  ) -> tuple[dict[str, np.ndarray], float]:
    """The sub-grid of the utd values at indices `iu` and params values at `ip` of `t`: fit it,
    calibrate its interval, and return, per kind of held-out config (KINDS), where each finite
    residual of the configs left out lies against the widened 80% interval (-1 below its low
    end: the run needed less data; 0 inside; 1 above its high end), and the interval's mean log
    width at the sub-grid's configs."""
    u_all, p_all = np.unique(t.utd), np.unique(t.params)
    keep = np.isin(t.utd, u_all[list(iu)]) & np.isin(t.params, p_all[list(ip)])
    held = ~keep
    s, laws, interval = refit_without(t, held)
    lo, hi = intervals.threshold_offsets(interval, t.targets)
    u, n = t.utd[held], t.params[held]
    widen = widening(interval, s, u, n)
    up, down = outside(s, u, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.log(t.data[held] / laws.predict(u, n))
    side = np.where(r < lo * widen, -1, np.where(r > hi * widen, 1, 0)).astype(np.int8)
    ok = np.isfinite(r)
    where = {"between": (up == 0) & (down == 0), "above": (up > 0) & (down == 0),
             "below": (down > 0) & (up == 0)}
    return ({k: side[w[:, None] & ok] for k, w in where.items()},
            float(np.mean(hi - lo)))


def corrected(correction: float):
    """intervals.group_scale with its level corrected over the configs it covers."""
    shipped = intervals.group_scale

    def group_scale(lo, hi, residuals, level):
        n = int(np.isfinite(residuals).any(axis=1).sum())
        return shipped(lo, hi, residuals, min(1.0, level * (1 + correction / max(n, 1))))
    return group_scale


def add_alternatives(ap: argparse.ArgumentParser) -> None:
    """The options for an interval other than the shipped one (for comparison)."""
    ap.add_argument("--group-correction", type=float, default=0.0, metavar="C",
                    help="the group scale covers min(1, L (1 + C / n)) of the rows' and "
                         "columns' residuals, n their configs (0: as shipped)")
    ap.add_argument("--floors", type=float, nargs=2, metavar=("UP", "DOWN"),
                    help="widening floors instead of the shipped ones")


def use_alternatives(args: argparse.Namespace) -> None:
    """Patch calibration.intervals for this process as add_alternatives' options say."""
    if args.group_correction:
        intervals.group_scale = corrected(args.group_correction)
    if args.floors:
        intervals.WIDEN_FLOOR_UP, intervals.WIDEN_FLOOR_DOWN = args.floors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    add_alternatives(ap)
    args = ap.parse_args()
    use_alternatives(args)
    scale = (f"level L (1 + {args.group_correction:g} / n)" if args.group_correction
             else "as shipped")
    print(f"nominal level {intervals.CHECK_LEVEL:g}; fits built as shipped ({N_BOOT} bootstrap "
          f"resamples); every 3x3 sub-grid fitted and calibrated as the shipped fits are; group "
          f"scale {scale}; widening floors {intervals.WIDEN_FLOOR_UP:g} above, "
          f"{intervals.WIDEN_FLOOR_DOWN:g} below")
    print("| fit | sub-grids | between | above | below | 80% log width |")
    print("|---|---|---|---|---|---|")
    per_fit, pooled, widths = [], {k: [] for k in KINDS}, []
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        t = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env,
                      n_boot=N_BOOT, name=spec.name).table
        hits, w, count = {k: [] for k in KINDS}, [], 0
        for iu, ip in itertools.product(triples(len(np.unique(t.utd))),
                                         triples(len(np.unique(t.params)))):
            h, width = subgrid_sides(t, iu, ip)
            count += 1
            w.append(width)
            for k in KINDS:
                hits[k].append(h[k])
        row = {k: np.concatenate(hits[k]) if hits[k] else np.zeros(0, np.int8) for k in KINDS}
        for k in KINDS:
            pooled[k].append(row[k])
        cover = [(row[k] == 0).mean() if row[k].size else np.nan for k in KINDS]
        per_fit.append(cover + [float(np.mean(w))])
        widths.extend(w)
        print(f"| {spec.id} | {count} | " + " | ".join(
            f"{100 * c:.0f}% of {row[k].size}" for c, k in zip(cover, KINDS))
            + f" | {np.mean(w):.2f} |", flush=True)
    a = np.array(per_fit, float)
    print("| **mean over fits** | | " + " | ".join(
        f"**{100 * v:.0f}%**" for v in np.nanmean(a[:, :3], axis=0))
        + f" | **{np.nanmean(a[:, 3]):.2f}** |")
    print("| **least** | | " + " | ".join(
        f"**{100 * v:.0f}%**" for v in np.nanmin(a[:, :3], axis=0))
        + f" | **{np.nanmin(a[:, 3]):.2f}** |")
    print("| **fits below 70%** | | " + " | ".join(
        str(int(np.sum(a[:, j] < 0.7))) for j in range(3)) + " | |")
    print("| **pooled points** | | " + " | ".join(
        f"{100 * (np.concatenate(pooled[k]) == 0).mean():.0f}% of {np.concatenate(pooled[k]).size}"
        for k in KINDS) + f" | median {np.median(widths):.2f} |")
    print("| **missed: needed less / more data** | | " + " | ".join(
        f"{np.sum(np.concatenate(pooled[k]) < 0)} / {np.sum(np.concatenate(pooled[k]) > 0)}"
        for k in KINDS) + " | |")


if __name__ == "__main__":
    main()
