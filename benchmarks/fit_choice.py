"""Free fit or few-shot fit for a calibration's runs: chosen by held-out error, not in-sample.

For an `advisor calibrate` out-dir, fits D_J to its stage-2 runs both ways (free exponents, and
few-shot with a family prior: calibration.prior) and prints the mean relative error of each
when one configuration is left out (LOCO) and when a whole row (a utd) or column (a model
size) of the grid is left out: the held-out runs a shipped fit is judged on sit between and
beyond the fitted ones, so the row and column errors decide (benchmarks/ship_fit.py ships the
one chosen; README, Shipped fits).

  python benchmarks/fit_choice.py CALIB --env Hopper-v5 --prior dmc
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from calibration.build import DEFAULT_METHOD, few_shot_loco  # noqa: E402
from calibration.calibrate import _read, choose_targets  # noqa: E402
from calibration.curves import data_table  # noqa: E402
from calibration.fitting import fit_laws, leave_one_config_out  # noqa: E402
from calibration.grid import Unit, load_grid_dict  # noqa: E402
from calibration.intervals import group_out  # noqa: E402
from calibration.outdir import read_spec  # noqa: E402
from calibration.prior import few_shot, resolve_prior  # noqa: E402


def error(data: np.ndarray, pred: np.ndarray) -> str:
    """Mean relative error exp|log(data / pred)| - 1 over the finite (config, target) cells."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(np.log(data / pred))
    r = r[np.isfinite(r)]
    return f"{np.mean(np.expm1(r)) * 100:9.1f}% (median {np.median(np.expm1(r)) * 100:5.1f}%)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--env", required=True)
    ap.add_argument("--prior", default="dmc", help="the few-shot prior (calibrate --prior)")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared"
                                              / "data"))
    args = ap.parse_args()
    if not (args.out_dir / "grid.json").is_file():
        ap.error(f"{args.out_dir} is not an advisor calibrate out-dir (no grid.json)")
    spec = read_spec(args.out_dir / "grid.json")
    grid = load_grid_dict(spec["grid"])
    units = [Unit(**json.loads(f.read_text())["unit"])
             for f in sorted((args.out_dir / "units").glob("s2_*.json"))]
    if not units:
        ap.error(f"{args.out_dir} has no finished stage-2 populations (units/s2_*.json): "
                 "finish the calibration first")
    runs = _read(args.out_dir, units, args.env, grid)
    table = data_table(runs, choose_targets(runs), n_boot=0, step_limit=grid.steps)
    free = fit_laws(table, DEFAULT_METHOD)
    fam = resolve_prior([args.prior], [args.data_dir]).family_prior(table.data.shape[1])
    shot = few_shot(table, fam)

    def refit(keep):
        return few_shot(table, fam, keep)

    print(f"{args.out_dir}: {len(table.utd)} configs x {len(table.targets)} targets, "
          f"{args.env}; mean relative error (median) of held-out predictions")
    print(f"{'left out':<24}{'free fit':>26}{'few-shot, ' + args.prior:>28}")
    rows = [("one config (LOCO)", leave_one_config_out(table, DEFAULT_METHOD, free),
             few_shot_loco(table, fam))]
    for axis, label in (("utd", "a utd (row)"), ("params", "a model size (column)")):
        rows.append((label, group_out(table, DEFAULT_METHOD, free, axis),
                     group_out(table, DEFAULT_METHOD, shot, axis, refit=refit)))
    for label, a, b in rows:
        print(f"{label:<24}{error(table.data, a):>26}{error(table.data, b):>28}")


if __name__ == "__main__":
    main()
