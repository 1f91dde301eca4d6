"""Coverage of the shipped prediction intervals on held-out configurations, per fit.

For every shipped fit (rebuilt from the archives as shipped), the nominal 80% interval's
coverage when held out are (each interval built without the held-out configs):
  - LOCO: one config at a time;
  - interior rows / columns: each interior utd row or params column of the grid, left out whole
    (its predictions from a fit without it; its interval from the other configs' residuals and
    groups only);
  - the four edges, each left out whole and **fully nested**: the largest utd row, the largest
    params column, the smallest utd row, the smallest params column. The whole fit is rebuilt
    without it (law, LOCO residuals, scaling, widening: what a user's fit would be had the grid
    stopped one step earlier) and its interval, widened as `Fit.interval` widens it, is checked
    on the left-out configs. A cell reads "nested (recorded)": the second figure is what the fit
    file records (`calibration.intervals.edge_coverage`, cheaper: not nested, the other configs'
    residuals come from fits that saw the edge).
Summary rows: the mean and least over fits, how many fits fall below 70%, and the share of all
points covered (pooled). Also prints the factor the group scaling applied at 80%, the interval's
relative width (mean over thresholds) and the mean relative error it wraps. `--no-scale`: the
same without the scaling for rows and columns (the interval before it); `--pooled`: one interval
for every threshold (schema 2) instead of one per band of thresholds; both for comparison.

The thresholds stay the full grid's in the nested fits (a user's grid would pick its own from
its runs): a small optimism.

`--group-correction C` and `--floors UP DOWN`: an alternative tried on 2026-11-29 and not shipped
(docs/intervals.md; benchmarks/subgrid_coverage.py).

`--floors-left-out`: the shipped widening floors were chosen on all the archive fits'
recorded edges (benchmarks/widen_floors.py), so the nested edges above are in sample for them;
with it each fit's nested edges use the floors the same rule chooses from the other fits only
(a first pass computes every fit's recorded edges, as widen_floors.py does), which puts the
edge columns out of sample for the floors as well.

Usage: python benchmarks/intervals.py [DATA_DIR] [--only ID ...] [--no-scale] [--pooled]
       [--group-correction C] [--floors UP DOWN] [--floors-left-out]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import calibration.intervals as intervals  # noqa: E402
from benchmarks.subgrid_coverage import (  # noqa: E402
    add_alternatives,
    refit_without,
    use_alternatives,
    widening,
)
from calibration.build import DEFAULT_METHOD, N_BOOT, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.curves import DataTable  # noqa: E402
from calibration.intervals import (  # noqa: E402
    CHECK_LEVEL,
    _covered,
    _honest_bounds,
    _residuals,
    band_quantiles,
    calibrate_interval,
    interior_groups,
    threshold_offsets,
)

EDGES = (("up", "utd", "largest utd row"), ("up", "params", "largest params column"),
         ("down", "utd", "smallest utd row"), ("down", "params", "smallest params column"))


def nested_edge(t: DataTable, side: str, axis: str, scale: bool = True,
                single_seed: bool = False, pooled: bool = False
                ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Hits (True: covered) of the 80% interval on the outermost row or column of `axis` on
    `side`, from a fit rebuilt without it from scratch, widened as Fit.interval widens.
    `single_seed`: the single-seed interval on each seed's own D_J instead, at the thresholds
    the config's averaged curve reached: (hits of the seeds that reached, hits counting a seed
    that never reached as a miss where the interval's top lies inside the run). (The LOCO
    table of seed_coverage.py also counts seeds at thresholds the averaged curve missed.)"""
    col = getattr(t, axis)
    held = col == (col.max() if side == "up" else col.min())
    s, laws, interval = refit_without(t, held, scale_groups=scale, pooled=pooled)
    lo, hi = threshold_offsets(interval, t.targets)
    u, n = t.utd[held], t.params[held]
    widen = widening(interval, s, u, n)
    pred = laws.predict(u, n)
    if not single_seed:
        r = _residuals(t.data[held], pred)
        ok = np.isfinite(r)
        return _covered(r, lo, hi, widen)[ok]
    lo, hi = threshold_offsets(interval, t.targets, single_seed=True)
    mean_ok = np.isfinite(t.data[held])  # thresholds the config's averaged curve reached
    seeds = t.seed_data[held]  # (n_held, S, m): inf never reached, NaN no such seed
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.log(seeds / pred[:, None, :])
    w = widen[:, :, None]
    reached = np.isfinite(r) & mean_ok[:, None, :]
    hit = (r >= lo * w) & (r <= hi * w)
    short = np.isposinf(seeds) & mean_ok[:, None, :] & np.isfinite(pred)[:, None, :]
    top = pred[:, None, :] * np.exp(hi * w)
    miss = short & (top < t.horizon[held][:, None, None])
    return hit[reached], np.concatenate([hit[reached], np.zeros(int(miss.sum()), bool)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-scale", action="store_true",
                    help="without the scaling for rows and columns left out (LOCO alone)")
    ap.add_argument("--pooled", action="store_true",
                    help="one interval for every threshold (schema 2), not one per band")
    ap.add_argument("--floors-left-out", action="store_true",
                    help="each fit's nested edges with the widening floors chosen without it")
    add_alternatives(ap)
    args = ap.parse_args()
    use_alternatives(args)
    floors = {}
    if args.floors_left_out:
        if args.floors or args.group_correction:
            ap.error("--floors-left-out chooses the shipped interval's floors: give it alone")
        from benchmarks.widen_floors import left_out_floors, recorded_edge_coverage  # noqa: PLC0415

        ids, cov = recorded_edge_coverage(Path(args.data_dir))
        up, down = left_out_floors(cov["up"]), left_out_floors(cov["down"])
        floors = {fit: (u, d) for fit, u, d in zip(ids, up, down, strict=True)}
        print("# widening floors per fit chosen without it (widen_floors.py's rule): "
              + ", ".join(f"{fit} {u:g}/{d:g}" for fit, (u, d) in floors.items()), flush=True)
    where = ("each fit's own, chosen without it (above), in its nested edges; the recorded "
             "figures' " if floors else "")
    print(f"nominal level {CHECK_LEVEL:g}; widening floors {where}{intervals.WIDEN_FLOOR_UP:g} "
          f"above the domain, {intervals.WIDEN_FLOOR_DOWN:g} below; "
          f"fits built as shipped ({N_BOOT} bootstrap resamples); "
          f"{'LOCO residuals alone' if args.no_scale else 'scaled for rows and columns'}"
          f"{f' (level corrected, C {args.group_correction:g})' if args.group_correction else ''}; "
          f"{'one interval for every threshold' if args.pooled else 'an interval per band'}")
    names = ["LOCO", "interior rows", "interior columns"] + [e[2] for e in EDGES] + [
        "scale", "width", "LOCO error", "LOCO, top 5 thresholds",
        "interior columns, top 5 thresholds"]
    print("| fit | " + " | ".join(names) + " |")
    print("|" + "---|" * (len(names) + 1))
    totals, recorded, pooled = [], [], [[] for _ in EDGES]
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env,
                          n_boot=N_BOOT, name=spec.name)
        t, loco = built.table, built.loco
        interval, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco,
                                             scale_groups=not args.no_scale,
                                             pooled=args.pooled)
        cov = interval.coverage
        lo, hi = threshold_offsets(interval, t.targets)
        r_all = _residuals(t.data, loco)
        r = r_all[np.isfinite(r_all)]
        scale = (1.0 if args.no_scale else interior_groups(t, preds).scale(
            *band_quantiles(r_all, CHECK_LEVEL, args.pooled), CHECK_LEVEL))
        width = np.mean(np.exp(hi) - np.exp(lo))
        err = np.nanmean(np.abs(np.exp(r) - 1))
        edges, rec = [], []
        shipped = intervals.WIDEN_FLOOR_UP, intervals.WIDEN_FLOOR_DOWN
        if floors:  # the nested fits' floors; the recorded figures stay the shipped ones'
            intervals.WIDEN_FLOOR_UP, intervals.WIDEN_FLOOR_DOWN = floors[spec.id]
        for k, (side, axis, _) in enumerate(EDGES):
            hits = nested_edge(t, side, axis, scale=not args.no_scale, pooled=args.pooled)
            pooled[k].append(hits)
            edges.append(hits.mean() if hits.size else np.nan)
            what = "utd_row" if axis == "utd" else "params_column"
            rec.append(cov.get(f"{'largest' if side == 'up' else 'smallest'}_{what}_out",
                               np.nan))
        intervals.WIDEN_FLOOR_UP, intervals.WIDEN_FLOOR_DOWN = shipped
        row = [cov["leave_one_config_out"], cov["interior_utd_rows_out"],
               cov["interior_params_columns_out"], *edges, scale, width, err,
               *top_thresholds(t, loco, preds, scale=not args.no_scale, pooled=args.pooled)]
        totals.append(row)
        recorded.append(rec)
        print(f"| {spec.id} | " + " | ".join(_cell(j, v, rec) for j, v in enumerate(row)) + " |",
              flush=True)
    totals, recorded = np.array(totals, float), np.array(recorded, float)
    for name, agg in (("mean", np.nanmean), ("min", np.nanmin)):
        print(f"| **{name}** | " + " | ".join(
            f"**{_cell(j, v, agg(recorded, axis=0))}**"
            for j, v in enumerate(agg(totals, axis=0))) + " |")
    below = [str(int(np.sum(totals[:, j] < 0.7))) if j < 7 or j >= 10 else ""
             for j in range(len(names))]
    print("| **fits below 70%** | " + " | ".join(below) + " |")
    cells = ["", "", ""] + [f"{100 * np.concatenate(h).mean():.0f}% of {np.concatenate(h).size}"
                            if h else "" for h in pooled] + [""] * 5
    print("| **pooled points** | " + " | ".join(cells) + " |")


def top_thresholds(t: DataTable, loco: np.ndarray, preds: dict[str, np.ndarray],
                   scale: bool = True, top: int = 5, pooled: bool = False
                   ) -> tuple[float, float]:
    """LOCO and interior-column coverage (as recorded: each interval built without the
    configs it is checked on) on the `top` highest thresholds only: the default target of a
    single budget is the top one (`pooled`: with one interval for every threshold)."""
    r = _residuals(t.data, loco)
    ok = np.isfinite(r)
    groups = interior_groups(t, preds)
    used = groups if scale else None
    n = len(t.utd)
    loco_hits, col_hits = [], []
    for i in range(n):
        bounds = _honest_bounds(r, ok, np.arange(n) != i, CHECK_LEVEL, used, None, 1,
                                pooled=pooled)
        x = r[i, -top:]
        if bounds is not None:
            lo, hi = bounds
            loco_hits.append(_covered(x, lo[-top:], hi[-top:])[np.isfinite(x)])
    for rows in groups.members["params"]:
        g = groups.residuals["params"][rows][:, -top:]
        bounds = _honest_bounds(r, ok, ~rows, CHECK_LEVEL, used, None, 1, pooled=pooled)
        if bounds is not None:
            lo, hi = bounds
            col_hits.append(_covered(g, lo[-top:], hi[-top:])[np.isfinite(g)])
    return tuple(float(np.concatenate(h).mean()) if h and np.concatenate(h).size else np.nan
                 for h in (loco_hits, col_hits))


def _cell(j: int, v: float, recorded) -> str:
    if j == 7:
        return f"x{v:.2f}"
    if 3 <= j < 7:
        return f"{100 * v:.0f}% ({100 * recorded[j - 3]:.0f}%)"
    return f"{100 * v:.0f}%"


if __name__ == "__main__":
    main()
