"""Coverage of the shipped prediction intervals on held-out configurations, per fit.

For every shipped fit (rebuilt from the archives, no bootstrap): the nominal 80% interval's
coverage when held out are (each interval built without the held-out configs, as shipped)
  - LOCO: one config at a time;
  - rows / columns: each interior utd row or params column of the grid, left out whole (its
    predictions from a fit without it; its interval from the other configs' residuals and
    groups only);
  - edge (honest): the largest utd row and the largest params column, each predicted by a fit
    without it, with the widening chosen on the *other* edge only (and the floor);
  - edge (as shipped): the same points with the shipped widening, which was chosen on them.
Also prints the factor the group scaling applied at 80%, the interval's median relative width
and the mean relative error it wraps.

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
    _least_widen,
    _residuals,
    calibrate_interval,
    conformal_quantiles,
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
            "largest edge, as shipped | scale | median width | LOCO error |")
    print(head)
    print("|" + "---|" * 9)
    totals = []
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env, n_boot=0,
                          name=spec.name)
        t, loco = built.table, built.loco
        interval, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco)
        cov = interval.coverage
        i8 = interval.levels.index(CHECK_LEVEL)
        lo, hi = interval.log_low[i8], interval.log_high[i8]
        r = _residuals(t.data, loco)
        r = r[np.isfinite(r)]
        lo_u, hi_u = conformal_quantiles(r, CHECK_LEVEL, len(t.utd))
        scale = max(lo / lo_u if lo_u < 0 else 1.0, hi / hi_u if hi_u > 0 else 1.0)
        rows, cols = cov["interior_utd_rows_out"], cov["interior_params_columns_out"]
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
        row = [cov["leave_one_config_out"], rows, cols, honest, shipped, scale, width, err]
        totals.append(row)
        print(f"| {spec.id} | " + " | ".join(_cell(j, v) for j, v in enumerate(row)) + " |",
              flush=True)
    for name, agg in (("mean", np.mean), ("min", np.min)):
        print(f"| **{name}** | " + " | ".join(f"**{_cell(j, v)}**" for j, v in
                                              enumerate(agg(totals, axis=0))) + " |")


def _cell(j: int, v: float) -> str:
    return f"x{v:.2f}" if j == 5 else f"{100 * v:.0f}%"


if __name__ == "__main__":
    main()
