"""The D_J fit's smoothness penalty against none, on the archive fits: held-out error and
exponents (session 23; a hostile tester found the penalty biases the exponents on noise-free
synthetic runs).

For each archive fit (built as shipped, 100 bootstrap resamples: they pick the SimbaV2 batch
per config) and each smoothness strength: mean relative error of D_J one config out (LOCO),
each interior utd row out and each interior params column out (refitted without it), and the
fitted alpha and beta. Usage: python benchmarks/smoothness.py [DATA_DIR] [--lambdas 0,0.1]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.build import DEFAULT_METHOD, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.fitting import fit_laws, leave_one_config_out, relative_errors  # noqa: E402


def interior_out(table, method, key) -> float:
    """Mean relative error of each interior value of `key` (a grid row or column), each
    predicted by a fit without it."""
    errs = []
    for v in np.unique(key)[1:-1]:
        mask = key == v
        fit = fit_laws(table, method, keep=~mask)
        e = relative_errors(fit.predict(table.utd[mask], table.params[mask]), table.data[mask])
        errs.append(e[np.isfinite(e)])
    return float(np.concatenate(errs).mean()) if errs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--lambdas", default="0,0.1")
    args = ap.parse_args()
    lams = [float(x) for x in args.lambdas.split(",")]
    print(f"smoothness strengths {lams}; shipped: {DEFAULT_METHOD.smoothness}")
    print("fit, then per strength: LOCO, interior rows out, interior columns out, alpha, beta")
    for spec in catalogue():
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env,
                          n_boot=100, name=spec.name)
        table, out = built.table, []
        for lam in lams:
            m = dataclasses.replace(DEFAULT_METHOD, smoothness=lam)
            full = fit_laws(table, m)
            loco = relative_errors(leave_one_config_out(table, m, full), table.data)
            out += [np.nanmean(loco), interior_out(table, m, table.utd),
                    interior_out(table, m, table.params), full.coef[0, 2], full.coef[0, 4]]
        print(spec.id, " ".join(f"{x:.3f}" for x in out), flush=True)


if __name__ == "__main__":
    main()
