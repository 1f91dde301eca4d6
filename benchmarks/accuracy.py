"""Predictive accuracy of D_J fits on the published runs: our method against the reference recipe.

For each task: mean relative error |D_pred - D_obs| / D_obs over (config, threshold) points,
  in-sample, leave-one-config-out (LOCO), LOCO at the top threshold only,
  extrapolation to the largest utd (fit on the others) and to the largest model (same),
  and the log-linear baseline's LOCO.
Usage: python benchmarks/accuracy.py [DATA_DIR] [--dmc] [--no-reference]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.build import DEFAULT_METHOD, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.fitting import (  # noqa: E402
    REFERENCE,
    fit_laws,
    leave_one_config_out,
    loglinear_leave_one_config_out,
    relative_errors,
)


def holdout(table, method, mask):
    fit = fit_laws(table, method, keep=~mask)
    pred = fit.predict(table.utd[mask], table.params[mask])
    return relative_errors(pred, table.data[mask]).mean()


def evaluate(table, method):
    full = fit_laws(table, method)
    loco = leave_one_config_out(table, method, full)
    return dict(
        in_sample=relative_errors(full.predict(table.utd, table.params), table.data).mean(),
        loco=relative_errors(loco, table.data).mean(),
        loco_top=relative_errors(loco[:, -1:], table.data[:, -1:]).mean(),
        extra_utd=holdout(table, method, table.utd == table.utd.max()),
        extra_params=holdout(table, method, table.params == table.params.max()),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--dmc", action="store_true", help="include the 13 DMC tasks")
    ap.add_argument("--no-reference", action="store_true", help="skip the (slow) reference recipe")
    args = ap.parse_args()
    specs = [s for s in catalogue() if args.dmc or s.archive != "dmc_bro_ablations.zip"]
    methods = {"ours": DEFAULT_METHOD}
    if not args.no_reference:
        methods["reference"] = REFERENCE
    print(f"ours: {DEFAULT_METHOD.describe()}")
    print(f"reference: {REFERENCE.describe()}")
    print(f"{'fit':<22} {'method':<10} {'in-sample':>9} {'LOCO':>7} {'LOCO top':>8} "
          f"{'utd max':>8} {'N max':>7} {'loglin':>7} {'time':>6}")
    sums: dict[str, list] = {m: [] for m in methods}
    for spec in specs:
        # The shipped fits use 100 resamples, which also pick the SimbaV2 batch per config.
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env, n_boot=100,
                          name=spec.name)
        table = built.table
        base = relative_errors(loglinear_leave_one_config_out(table), table.data).mean()
        for name, method in methods.items():
            t = time.perf_counter()
            r = evaluate(table, method)
            sums[name].append(list(r.values()))
            print(f"{spec.id:<22} {name:<10} {100 * r['in_sample']:>8.1f}% "
                  f"{100 * r['loco']:>6.1f}% "
                  f"{100 * r['loco_top']:>7.1f}% {100 * r['extra_utd']:>7.1f}% "
                  f"{100 * r['extra_params']:>6.1f}% {100 * base:>6.1f}% "
                  f"{time.perf_counter() - t:>5.1f}s", flush=True)
    for name, rows in sums.items():
        m = 100 * np.mean(rows, axis=0)
        print(f"{'mean':<22} {name:<10} {m[0]:>8.1f}% {m[1]:>6.1f}% {m[2]:>7.1f}% {m[3]:>7.1f}% "
              f"{m[4]:>6.1f}%")


if __name__ == "__main__":
    main()
