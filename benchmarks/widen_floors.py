"""Were the widening floors tuned on the fits they are scored on? Leave each fit out.

`calibration.intervals` widens an interval beyond the fitted domain by at least a floor per log
unit: WIDEN_FLOOR_UP above the largest utd or critic size (about the median of what the
shipped fits need by themselves), WIDEN_FLOOR_DOWN below the smallest (the least of 0.5, 1,
1.5, 2, 3 at which the fits' edge coverage averages 80%). Both were chosen on the 23 archive
fits, and the edge coverage the README reports is on those fits. Here each fit's floors are
chosen by the same rules from the other 22 only, and its edge coverage (as the fit file
records it: `calibration.intervals.edge_coverage`, each edge's interval built without its
configs) is read at those floors: how many fits get other floors, and the coverage above and
below the grid, mean over fits, with the shipped floors and with each fit's own left-out ones.

  python benchmarks/widen_floors.py [DATA_DIR]
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
    _edges,
    _least_widen,
    _residuals,
    band_quantiles,
    edge_coverage,
    group_out,
    interior_groups,
)

DOWN_CANDIDATES = (0.5, 1.0, 1.5, 2.0, 3.0)
UP_CANDIDATES = tuple(np.round(np.arange(0.0, 2.001, 0.05), 2))


def ingredients(table, laws, loco):
    """What a fit's edge coverage and its own widening need: held-out predictions, groups, the
    80% offsets (scaled for rows and columns, as calibrate_interval does)."""
    preds = {axis: group_out(table, DEFAULT_METHOD, laws, axis) for axis in ("utd", "params")}
    groups = interior_groups(table, preds)
    r = _residuals(table.data, loco)
    lo, hi = band_quantiles(r, CHECK_LEVEL)
    scale = groups.scale(lo, hi, CHECK_LEVEL)
    return preds, groups, scale * lo, scale * hi


def coverage_at(table, loco, preds, groups, side: str, floor: float) -> float:
    """Mean over the side's two edges (utd row, params column) of the recorded coverage."""
    got = edge_coverage(table, loco, preds, side, floor, groups)
    return float(np.mean(list(got.values()))) if got else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    args = ap.parse_args()
    assert CHECK_LEVEL in LEVELS
    data = Path(args.data_dir)
    ids, need_up, down_cov, up_cov = [], [], [], []
    for spec in catalogue():
        if not (data / spec.archive).exists():
            ap.error(f"{data / spec.archive} does not exist: give the folder of the archives")
        built = build_fit(data / spec.archive, spec.algorithm, spec.env, n_boot=0,
                          name=spec.name)
        table, loco = built.table, built.loco
        preds, groups, lo8, hi8 = ingredients(table, built.laws, loco)
        up_r, up_d = _edges(table, preds, "up")
        need_up.append(_least_widen(up_r, up_d, lo8, hi8, CHECK_LEVEL))  # its own need
        down_cov.append([coverage_at(table, loco, preds, groups, "down", w)
                         for w in DOWN_CANDIDATES])
        up_cov.append([coverage_at(table, loco, preds, groups, "up", w)
                       for w in UP_CANDIDATES])
        ids.append(spec.id)
        print(f"{spec.id}: needs widen_up {need_up[-1]:.2f} by itself; coverage below the "
              f"grid at floors {DOWN_CANDIDATES}: "
              + " ".join(f"{c:.0%}" for c in down_cov[-1]), flush=True)
    need_up, down_cov, up_cov = np.array(need_up), np.array(down_cov), np.array(up_cov)
    n = len(ids)

    def down_floor(rows: np.ndarray) -> float:
        mean = np.nanmean(down_cov[rows], axis=0)
        ok = np.flatnonzero(mean >= CHECK_LEVEL)
        return DOWN_CANDIDATES[ok[0]] if len(ok) else DOWN_CANDIDATES[-1]

    def up_floor(rows: np.ndarray) -> float:  # the median need, on the candidates' grid
        med = float(np.median(need_up[rows]))
        return float(UP_CANDIDATES[np.argmin(np.abs(np.array(UP_CANDIDATES) - med))])

    everyone = np.ones(n, bool)
    print(f"\nchosen on all {n} fits by these rules: floor up {up_floor(everyone):g}, down "
          f"{down_floor(everyone):g} (shipped: {WIDEN_FLOOR_UP:g}, {WIDEN_FLOOR_DOWN:g})")
    lofo_up, lofo_down, cov_up, cov_down = [], [], [], []
    for i in range(n):
        others = everyone.copy()
        others[i] = False
        lofo_up.append(up_floor(others))
        lofo_down.append(down_floor(others))
        cov_up.append(up_cov[i, UP_CANDIDATES.index(lofo_up[-1])])
        cov_down.append(down_cov[i, DOWN_CANDIDATES.index(lofo_down[-1])])
    shipped_up = up_cov[:, UP_CANDIDATES.index(WIDEN_FLOOR_UP)]
    shipped_down = down_cov[:, DOWN_CANDIDATES.index(WIDEN_FLOOR_DOWN)]
    for side, lofo, shipped_floor, cov, shipped in (
            ("above", lofo_up, WIDEN_FLOOR_UP, cov_up, shipped_up),
            ("below", lofo_down, WIDEN_FLOOR_DOWN, cov_down, shipped_down)):
        other = [(ids[i], lofo[i]) for i in range(n) if lofo[i] != shipped_floor]
        print(f"{side} the grid: each fit's floor chosen without it differs from the shipped "
              f"{shipped_floor:g} on {len(other)} of {n} fits"
              + (f" ({', '.join(f'{i}: {w:g}' for i, w in other)})" if other else "")
              + f"; recorded edge coverage at 80%, mean over fits: {np.nanmean(shipped):.1%} "
              f"with the shipped floor, {np.nanmean(cov):.1%} with each fit's floor chosen "
              f"without it (least {np.nanmin(cov):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
