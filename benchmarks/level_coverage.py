"""Coverage of the interval at every stored level, held out (not only at 80%).

A fit file stores its interval at levels 0.5-0.95 (`recommend(..., level=0.9)`), but the
widening beyond the fitted domain (`widen_up`, `widen_down`) is calibrated at 0.8 alone and
applied at every level, and benchmarks/intervals.py measures 80% only. Here, per archive fit
and level, as benchmarks/intervals.py measures 80%:

- LOCO: each config's interval built from the other configs' residuals only;
- interior utd rows and params columns, each left out whole;
- the four edges fully nested: the fit rebuilt without the outermost row or column, its
  interval at that level widened as Fit.interval widens it, checked on the row or column.

Fits are built without bootstrap resamples (the interval does not use them; the SimbaV2 fits'
figures move a few points, as in benchmarks/widen_floors.py).

  python benchmarks/level_coverage.py [DATA_DIR] [--only ID ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import data_parser, selected_archives  # noqa: E402
from benchmarks.subgrid_coverage import refit_without, widening  # noqa: E402
from calibration.build import DEFAULT_METHOD, build_fit  # noqa: E402
from calibration.curves import DataTable  # noqa: E402
from calibration.intervals import (  # noqa: E402
    LEVELS,
    _covered,
    _residuals,
    calibrate_interval,
    group_coverage,
    interior_groups,
    loco_coverage,
    threshold_offsets,
)

EDGES = (("up", "utd", "largest utd row"), ("up", "params", "largest params column"),
         ("down", "utd", "smallest utd row"), ("down", "params", "smallest params column"))
COLUMNS = ("LOCO", "interior utd rows", "interior params columns") + tuple(e[2] for e in EDGES)


def nested_edge(t: DataTable, side: str, axis: str, levels) -> dict[float, np.ndarray]:
    """Hits of the interval at each of `levels` on the outermost row or column of `axis` on
    `side`, from one fit rebuilt without it (benchmarks/intervals.py's nested_edge, at every
    level from the same refit)."""
    col = getattr(t, axis)
    held = col == (col.max() if side == "up" else col.min())
    s, laws, interval = refit_without(t, held)
    u, n = t.utd[held], t.params[held]
    widen = widening(interval, s, u, n)
    r = _residuals(t.data[held], laws.predict(u, n))
    ok = np.isfinite(r)
    out = {}
    for level in levels:
        lo, hi = threshold_offsets(interval, t.targets, level=level)
        out[level] = _covered(r, lo, hi, widen)[ok]
    return out


def main() -> int:
    ap = data_parser(__doc__)
    args = ap.parse_args()
    levels = tuple(LEVELS)
    table = {level: [] for level in levels}  # level -> rows of (fit, coverages)
    print("coverage held out, per fit: one column per level " + ", ".join(f"{v:g}" for v in
                                                                          levels), flush=True)
    for spec, path in selected_archives(ap, args):
        built = build_fit(path, spec.algorithm, spec.env, n_boot=0, name=spec.name)
        t, loco = built.table, built.loco
        _, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco)
        groups = interior_groups(t, preds)
        edges = [nested_edge(t, side, axis, levels) for side, axis, _ in EDGES]
        for level in levels:
            row = [loco_coverage(t, loco, level=level, groups=groups),
                   group_coverage(t, loco, groups, "utd", level=level),
                   group_coverage(t, loco, groups, "params", level=level)]
            row += [float(e[level].mean()) if e[level].size else np.nan for e in edges]
            table[level].append(row)
        print(f"{spec.id}: " + "; ".join(
            f"{name} " + "/".join(f"{100 * table[v][-1][j]:.0f}" for v in levels)
            for j, name in enumerate(COLUMNS)), flush=True)
    n = len(table[levels[0]])
    print(f"\n| level | {' | '.join(COLUMNS)} |")
    print("|" + "---|" * (len(COLUMNS) + 1))
    for level in levels:
        c = np.array(table[level], float)
        mean = np.nanmean(c, axis=0)
        short = np.sum(c < level - 0.1, axis=0)
        print(f"| {level:g} | " + " | ".join(f"{100 * m:.0f}% ({k})" for m, k in zip(mean, short))
              + " |")
    print(f"\nmean over {n} fits (in brackets: fits more than 10 points under the level)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
