"""The widening floors, chosen by one rule and checked leaving each fit out.

`calibration.intervals` widens an interval beyond the fitted domain by at least a floor per log
unit: WIDEN_FLOOR_UP above the largest utd or critic size, WIDEN_FLOOR_DOWN below the smallest.
One rule chooses both: the least floor (on a grid of 0.05) at which the fits' recorded edge
coverage at 80% (`calibration.intervals.edge_coverage`, as a fit file records it: each edge's
interval built without its configs; the mean of the side's utd row and params column)
averages at least 80% over the fits. Chosen on all 23 archive fits it gives the shipped floors;
here each fit's floors are also chosen by the same rule from the other 22 only, and its edge
coverage is read at those floors: how far each fit's left-out floors are from the shipped ones,
and the coverage above and below the grid, mean over fits, with the shipped floors and with
each fit's own left-out ones (the honest figure for the rule).

`--group-correction C`: the alternative interval tried on 2026-11-29 and not shipped (the group
scale's level corrected over the configs it covers; benchmarks/subgrid_coverage.py), for the
floors the same rule picks for it.

  python benchmarks/widen_floors.py [DATA_DIR] [--group-correction C]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from calibration.build import DEFAULT_METHOD, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.intervals import (  # noqa: E402
    CHECK_LEVEL,
    LEVELS,
    WIDEN_FLOOR_DOWN,
    WIDEN_FLOOR_UP,
    edge_coverage,
    group_out,
    interior_groups,
)

CANDIDATES = tuple(float(w) for w in np.round(np.arange(0.0, 3.001, 0.05), 2))


def coverage_at(table, loco, preds, groups, side: str, floor: float) -> float:
    """Mean over the side's two edges (utd row, params column) of the recorded coverage."""
    got = edge_coverage(table, loco, preds, side, floor, groups)
    return float(np.mean(list(got.values()))) if got else float("nan")


def floor_by_rule(coverage: np.ndarray) -> float:
    """The least candidate floor at which the rows' (fits') coverage averages CHECK_LEVEL."""
    ok = np.flatnonzero(np.nanmean(coverage, axis=0) >= CHECK_LEVEL - 1e-12)
    return CANDIDATES[ok[0]] if len(ok) else CANDIDATES[-1]


def recorded_edge_coverage(data: Path, log=None) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every catalogue fit's recorded edge coverage at every candidate floor: (fit ids,
    {"up": (fits, candidates), "down": ...}), fits built without bootstrap resamples."""
    ids, cov = [], {"up": [], "down": []}
    for spec in catalogue():
        built = build_fit(data / spec.archive, spec.algorithm, spec.env, n_boot=0,
                          name=spec.name)
        table, loco = built.table, built.loco
        preds = {axis: group_out(table, DEFAULT_METHOD, built.laws, axis)
                 for axis in ("utd", "params")}
        groups = interior_groups(table, preds)
        for side in cov:
            cov[side].append([coverage_at(table, loco, preds, groups, side, w)
                              for w in CANDIDATES])
        ids.append(spec.id)
        if log:
            log(f"{spec.id}: recorded edge coverage above the grid at floors 0, 0.25, 0.5, 1: "
                + " ".join(f"{cov['up'][-1][CANDIDATES.index(w)]:.0%}" for w in (0, .25, .5, 1))
                + "; below at 0.5, 1, 1.5, 2, 3: "
                + " ".join(f"{cov['down'][-1][CANDIDATES.index(w)]:.0%}"
                           for w in (.5, 1, 1.5, 2, 3)), flush=True)
    return ids, {side: np.array(c, float) for side, c in cov.items()}


def left_out_floors(coverage: np.ndarray) -> list[float]:
    """Each fit's floor chosen by the rule from the other fits' rows of `coverage` only."""
    return [floor_by_rule(np.delete(coverage, i, axis=0)) for i in range(len(coverage))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("ADVISOR_DATA_DIR") or str(
        Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    ap.add_argument("--group-correction", type=float, default=0.0, metavar="C",
                    help="the group scale covers min(1, L (1 + C / n)) of the rows' and "
                         "columns' residuals, n their configs (0: as shipped)")
    args = ap.parse_args()
    if args.group_correction:
        from benchmarks.subgrid_coverage import corrected  # noqa: PLC0415
        from calibration import intervals  # noqa: PLC0415

        intervals.group_scale = corrected(args.group_correction)
        print(f"# the group scale's level corrected over its configs, C {args.group_correction:g}"
              " (not the shipped interval)", flush=True)
    assert CHECK_LEVEL in LEVELS
    data = Path(args.data_dir)
    for spec in catalogue():
        if not (data / spec.archive).exists():
            ap.error(f"{data / spec.archive} does not exist: give the folder of the archives")
    ids, cov = recorded_edge_coverage(data, log=print)
    n = len(ids)
    everyone = np.ones(n, bool)
    shipped = {"up": WIDEN_FLOOR_UP, "down": WIDEN_FLOOR_DOWN}
    for side, where in (("up", "above"), ("down", "below")):
        c = np.array(cov[side])
        mean = np.nanmean(c, axis=0)
        print(f"\n{where} the grid: mean recorded edge coverage over the {n} fits by floor: "
              + ", ".join(f"{w:g}: {mean[i]:.1%}" for i, w in enumerate(CANDIDATES)
                          if i % 5 == 0 or abs(mean[i] - CHECK_LEVEL) < 0.02))
        chosen = floor_by_rule(c[everyone])
        lofo = left_out_floors(c)
        held = np.array([c[i, CANDIDATES.index(lofo[i])] for i in range(n)])
        at_shipped = c[:, CANDIDATES.index(shipped[side])]
        print(f"chosen on all {n} fits: {chosen:g} (shipped: {shipped[side]:g}); chosen leaving "
              f"each fit out: {min(lofo):g}-{max(lofo):g} (" + ", ".join(
                  f"{ids[i]}: {lofo[i]:g}" for i in range(n) if lofo[i] != shipped[side])
              + f"; the others {shipped[side]:g}); recorded edge coverage at 80%, mean over "
              f"fits: {np.nanmean(at_shipped):.1%} with the shipped floor (least "
              f"{np.nanmin(at_shipped):.0%}), {np.nanmean(held):.1%} with each fit's floor chosen "
              f"without it (least {np.nanmin(held):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
