"""How the interval holds two grid steps beyond the runs, not only one.

benchmarks/intervals.py checks the widened interval one grid step beyond a fit's runs (the fit
rebuilt without its outermost utd row or params column). The search's trusted box reaches
further: 4x beyond the fitted utds and 10x beyond the fitted critic sizes. Here each fit is
also rebuilt without its two outermost rows (columns) on a side, and its 80% interval, widened
as Fit.interval widens it, is checked on both: the nearer one step out, the outermost two
steps out. Distances are in log units beyond the refitted grid (the widening's d). Fits are
built without bootstrap resamples (the interval does not use them).

  python benchmarks/far_edge.py [DATA_DIR] [--only ID ...]
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
from calibration.build import build_fit  # noqa: E402
from calibration.curves import DataTable  # noqa: E402
from calibration.intervals import _covered, _residuals, threshold_offsets  # noqa: E402

SIDES = (("up", "utd", "above the largest utds"), ("up", "params", "above the largest sizes"),
         ("down", "utd", "below the smallest utds"),
         ("down", "params", "below the smallest sizes"))


def two_out(t: DataTable, side: str, axis: str):
    """(hits one step out, hits two steps out, their distances in log units, median log
    residual of each) of the 80% interval of a fit rebuilt without the two outermost values of
    `axis` on `side`; None where the axis has fewer than 5 values (3 left to fit)."""
    col = getattr(t, axis)
    values = np.unique(col)
    if len(values) < 5:
        return None
    far, near = (values[-1], values[-2]) if side == "up" else (values[0], values[1])
    held = (col == far) | (col == near)
    s, laws, interval = refit_without(t, held)
    lo, hi = threshold_offsets(interval, t.targets)
    out = []
    for v in (near, far):
        rows = col == v
        u, n = t.utd[rows], t.params[rows]
        widen = widening(interval, s, u, n)
        r = _residuals(t.data[rows], laws.predict(u, n))
        ok = np.isfinite(r)
        # the distance beyond the refitted grid, read back from the widening's factor
        dist = float(np.median((widen[:, 0] - 1) / (interval.widen_up if side == "up"
                                                     else interval.widen_down)))
        out.append((_covered(r, lo, hi, widen)[ok], dist, float(np.median(r[ok]))
                    if ok.any() else np.nan))
    return out


def main() -> int:
    ap = data_parser(__doc__)
    args = ap.parse_args()
    rows = {name: [] for *_, name in SIDES}
    for spec, path in selected_archives(ap, args):
        t = build_fit(path, spec.algorithm, spec.env, n_boot=0, name=spec.name).table
        cells = []
        for side, axis, name in SIDES:
            got = two_out(t, side, axis)
            if got is None:
                cells.append(f"{name}: fewer than 5 values")
                continue
            (h1, d1, r1), (h2, d2, r2) = got
            rows[name].append((h1.mean() if h1.size else np.nan, h2.mean() if h2.size
                               else np.nan, d1, d2, r1, r2))
            cells.append(f"{name}: one step out (d {d1:.2f}) {100 * h1.mean():.0f}%, median "
                         f"log residual {r1:+.2f}; two steps out (d {d2:.2f}) "
                         f"{100 * h2.mean():.0f}%, {r2:+.2f}")
        print(f"{spec.id}: " + "; ".join(cells), flush=True)
    print("\n| side | fits | one step out: coverage (fits < 70%) | two steps out: coverage "
          "(fits < 70%) | median d one / two steps | median log residual one / two steps |")
    print("|---|---|---|---|---|---|")
    for *_, name in SIDES:
        a = np.array(rows[name], float)
        if not len(a):
            continue
        print(f"| {name} | {len(a)} | {100 * np.nanmean(a[:, 0]):.0f}% "
              f"({int(np.sum(a[:, 0] < 0.7))}) | {100 * np.nanmean(a[:, 1]):.0f}% "
              f"({int(np.sum(a[:, 1] < 0.7))}) | {np.median(a[:, 2]):.2f} / "
              f"{np.median(a[:, 3]):.2f} | {np.nanmedian(a[:, 4]):+.2f} / "
              f"{np.nanmedian(a[:, 5]):+.2f} |")
    print("\nmean over the fits whose axis has 5 values or more; the 80% interval, widened as "
          "Fit.interval widens it, of a fit rebuilt without both rows (columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
