"""Is the law biased beyond its runs? Each shipped fit's largest params column and largest utd
row of the grid left out whole, the law refitted on the rest (its method as shipped) and asked
for the configs left out: the median of D_observed / D_predicted over their (config,
threshold) points, over the top five thresholds alone, and the share of points above 1 (the
runs needed more data than predicted). Above 1 in most fits: extrapolated predictions lean
optimistic, and an interval widened alike up and down misses on the high side. Then the same
for the smallest params column and utd row: below its runs the law leans the other way (more
data than the runs needed), which `recommend`'s warning for a utd or size below the fitted
ones says.

  python benchmarks/edge_bias.py [DATA_DIR] [--only ID ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.subgrid_coverage import sub_table  # noqa: E402
from calibration.build import DEFAULT_METHOD, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.fitting import fit_laws  # noqa: E402

EDGES = (("params", "largest", "largest params column"), ("utd", "largest", "largest utd row"),
         ("params", "smallest", "smallest params column"), ("utd", "smallest", "smallest utd row"))


def edge_ratios(table, axis: str, side: str = "largest"
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """(D_obs / D_pred at every point of the held-out edge, the same at the top 5 thresholds),
    the edge being the largest (`side` 'largest') or smallest value of `axis` ('params' or
    'utd'); None if too few remain."""
    values = getattr(table, axis)
    held = values == (values.max() if side == "largest" else values.min())
    if held.all() or len(np.unique(values[~held])) < 2:
        return None
    laws = fit_laws(sub_table(table, ~held), DEFAULT_METHOD)
    pred = laws.predict(table.utd[held], table.params[held])
    ratio = table.data[held] / pred
    top = ratio[:, -5:]
    return ratio[np.isfinite(ratio)], top[np.isfinite(top)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*", default=None, help="fit ids")
    args = ap.parse_args()
    data = Path(args.data_dir)
    print("| fit | held out | points | median D_obs/D_pred | top 5 thresholds | share above 1 |")
    print("|---|---|---|---|---|---|")
    medians = {what: [] for _, _, what in EDGES}
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        if not (data / spec.archive).exists():
            ap.error(f"{data / spec.archive} does not exist: give the folder of the archives")
        table = build_fit(data / spec.archive, spec.algorithm, spec.env, n_boot=0,
                          name=spec.name).table
        for axis, side, what in EDGES:
            got = edge_ratios(table, axis, side)
            if got is None or not len(got[0]):
                continue
            ratio, top = got
            medians[what].append(float(np.median(ratio)))
            print(f"| {spec.id} | {what} | {len(ratio)} | {np.median(ratio):.2f} | "
                  f"{np.median(top) if len(top) else float('nan'):.2f} | "
                  f"{(ratio > 1).mean():.0%} |", flush=True)
    for _, _, what in EDGES:
        m = np.array(medians[what])
        if len(m):
            print(f"{what}: median ratio above 1 in {(m > 1).sum()} of {len(m)} fits; median of "
                  f"the medians {np.median(m):.2f} ({m.min():.2f}-{m.max():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
