"""Coverage of the shipped prediction intervals on held-out configurations, per fit.

For every shipped fit (rebuilt from the archives as shipped): the nominal 80% interval's
coverage when held out are (each interval built without the held-out configs, as shipped)
  - LOCO: one config at a time;
  - rows / columns: each interior utd row or params column of the grid, left out whole (its
    predictions from a fit without it; its interval from the other configs' residuals and
    groups only);
  - edge (honest): the largest utd row and the largest params column, each predicted by a fit
    without it, with the widening chosen on the *other* edge only (and the floor);
  - edge (as shipped): the same points with the shipped widening, which was chosen on them;
  - smallest edge (honest): the smallest utd row and params column, as the largest (last column).
Also prints the factor the group scaling applied at 80%, the interval's median relative width
and the mean relative error it wraps. `--no-scale`: the same without the scaling for rows and
columns (the interval before it), for comparison.

Usage: python benchmarks/intervals.py [DATA_DIR] [--only ID ...] [--no-scale]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from calibration.build import DEFAULT_METHOD, N_BOOT, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.intervals import (  # noqa: E402
    CHECK_LEVEL,
    WIDEN_FLOOR_UP,
    _covered,
    _edges,
    _residuals,
    calibrate_interval,
    conformal_quantiles,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-scale", action="store_true",
                    help="without the scaling for rows and columns left out (LOCO alone)")
    args = ap.parse_args()
    print(f"nominal level {CHECK_LEVEL:g}; widening floor above the domain {WIDEN_FLOOR_UP:g}; "
          f"fits built as shipped ({N_BOOT} bootstrap resamples); "
          f"{'LOCO residuals alone' if args.no_scale else 'scaled for rows and columns'}")
    head = ("| fit | LOCO | interior rows | interior columns | largest edge, honest | "
            "largest edge, as shipped | scale | median width | LOCO error | "
            "smallest edge, honest |")
    print(head)
    print("|" + "---|" * 10)
    totals = []
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env,
                          n_boot=N_BOOT, name=spec.name)
        t, loco = built.table, built.loco
        interval, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco,
                                             scale_groups=not args.no_scale)
        cov = interval.coverage
        i8 = interval.levels.index(CHECK_LEVEL)
        lo, hi = interval.log_low[i8], interval.log_high[i8]
        r = _residuals(t.data, loco)
        r = r[np.isfinite(r)]
        lo_u, hi_u = conformal_quantiles(r, CHECK_LEVEL, len(t.utd))
        scale = max(lo / lo_u if lo_u < 0 else 1.0, hi / hi_u if hi_u > 0 else 1.0)
        r_e, d_e = _edges(t, preds, "up")
        shipped = _covered(r_e, lo, hi, 1 + interval.widen_up * d_e).mean()
        width = np.exp(hi) - np.exp(lo)
        err = np.nanmean(np.abs(np.exp(r) - 1))
        row = [cov["leave_one_config_out"], cov["interior_utd_rows_out"],
               cov["interior_params_columns_out"], cov["largest_row_and_column_out"], shipped,
               scale, width, err, cov.get("smallest_row_and_column_out", np.nan)]
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
