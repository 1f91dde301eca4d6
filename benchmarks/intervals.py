"""Coverage of the shipped prediction intervals on held-out configurations, per fit.

For every shipped fit (rebuilt from the archives, no bootstrap): the nominal 80% interval's
coverage when held out are
  - LOCO: one config at a time, its interval built from the other configs' residuals only;
  - rows / columns: every interior utd row or params column of the grid at once;
  - edge (honest): the largest utd row and the largest params column, each predicted by a fit
    without it, with the widening chosen on the *other* edge only (and the floor);
  - edge (as shipped): the same points with the shipped widening, which was chosen on them.
Also prints the interval's median relative width and the mean relative error it wraps.

Usage: python benchmarks/intervals.py [DATA_DIR] [--only ID ...]
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
    WIDEN_FLOOR_UP,
    _covered,
    _interior,
    _least_widen,
    _residuals,
    calibrate_interval,
    conformal_quantiles,
    loco_coverage,
)


def edge_points(table, pred, axis):
    col = getattr(table, axis)
    u = np.unique(col)
    r = _residuals(table.data[col == u[-1]], pred[col == u[-1]])
    ok = np.isfinite(r)
    return r[ok], np.full(ok.sum(), abs(np.log(u[-1] / u[-2])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    print(f"nominal level {CHECK_LEVEL:g}; widening floor above the domain {WIDEN_FLOOR_UP:g}")
    head = ("| fit | LOCO | interior rows | interior columns | largest edge, honest | "
            "largest edge, as shipped | median width | LOCO error |")
    print(head)
    print("|" + "---|" * 8)
    totals = []
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env, n_boot=0,
                          name=spec.name)
        t, loco = built.table, built.loco
        interval, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco)
        r = _residuals(t.data, loco)
        r = r[np.isfinite(r)]
        lo, hi = conformal_quantiles(r, CHECK_LEVEL, len(t.utd))
        rows = _covered(_interior(t, preds["utd"], "utd"), lo, hi).mean()
        cols = _covered(_interior(t, preds["params"], "params"), lo, hi).mean()
        e_u, e_p = edge_points(t, preds["utd"], "utd"), edge_points(t, preds["params"], "params")
        honest = []
        for (r_e, d_e), (r_o, d_o) in ((e_u, e_p), (e_p, e_u)):
            w = max(WIDEN_FLOOR_UP, _least_widen(r_o, d_o, lo, hi, CHECK_LEVEL))
            honest.append(_covered(r_e, lo, hi, 1 + w * d_e))
        honest = np.concatenate(honest).mean()
        r_all = np.concatenate([e_u[0], e_p[0]])
        d_all = np.concatenate([e_u[1], e_p[1]])
        shipped = _covered(r_all, lo, hi, 1 + interval.widen_up * d_all).mean()
        width = np.exp(hi) - np.exp(lo)
        err = np.nanmean(np.abs(np.exp(r) - 1))
        row = [loco_coverage(t, loco), rows, cols, honest, shipped, width, err]
        totals.append(row)
        print(f"| {spec.id} | " + " | ".join(f"{100 * v:.0f}%" for v in row) + " |", flush=True)
    mean = np.mean(totals, axis=0)
    print("| **mean** | " + " | ".join(f"**{100 * v:.0f}%**" for v in mean) + " |")


if __name__ == "__main__":
    main()
