"""Does `recommend`'s warning that a fit's own runs contradict a prediction mean anything?

`recommend` warns where runs at a configuration no smaller in utd and params, which the law says
need no more data, never reached the target in more env steps than it predicts
(`Fit.contradicting_runs`, from the fit's `domain.runs`). Here, on the 23 archive grids, held
out as `choice.py` holds out (a fit and its runs on a random half of each config's seeds, scored
on the other half, both ways): the law fitted to the choosing half picks, for each of the three
problems of `choice.py` and each threshold, the grid configuration of least predicted cost; the
rule, read off the choosing half's runs, flags the pick (by its own runs, or only by runs at
larger configs) or not; the other half says whether the pick reached the threshold within its
problem's limits. If flagged picks fail far more often than the others, the warning carries
information a user should heed. `recommend`'s answers are mostly not fitted configurations, so
what bears on its warning is the rate for picks flagged by larger configs only.

The rule here is `Fit.contradicting_runs` at the grid's thresholds, on the runs that make the
D_J table (a SimbaV2 config's runs at the batch size nearest B~ only, where a shipped fit's
`domain.runs` counts every batch size: so more flags there than a shipped fit gives). Grid
picks are fitted configurations, so most flags are the pick's own runs; `recommend`'s answers
are mostly between or beyond them, where the warning is rarer.

Usage: python benchmarks/contradiction.py [DATA_DIR] [--only ID ...] [--splits N]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import benchmarks.choice as choice  # noqa: E402
from calibration.build import DEFAULT_METHOD  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.curves import DataTable  # noqa: E402
from calibration.fitting import fit_laws  # noqa: E402


def contradicted(t: DataTable, i: int, j: int, data: float) -> str:
    """Which runs of `t` refute config i reaching threshold j in `data` env steps, as
    Fit.contradicting_runs reads them: configs no smaller in utd and params that never reached
    it although they ran at least `data` steps. "own": config i's own runs among them;
    "larger": only others; "": none."""
    hit = ((t.utd >= t.utd[i]) & (t.params >= t.params[i]) & ~np.isfinite(t.data[:, j])
           & (t.horizon >= data))
    return "own" if hit[i] else "larger" if hit.any() else ""


#: How a pick is flagged, in the order printed.
FLAGS = {"own": "flagged by its own runs", "larger": "flagged by larger configs only",
         "": "not flagged"}


def main() -> None:
    args = choice.parse_args(__doc__, 1)
    print(choice.machine())
    counts = {p: {k: np.zeros(2, int) for k in FLAGS} for p in choice.PROBLEMS}  # [ok, failed]
    print(f"picks of the law fitted to a random half of each config's seeds, scored on the "
          f"other half, both ways, {args.splits} halving(s) (seed 0)")
    print("| fit | " + " | ".join(FLAGS.values()) + " |")
    print("|" + "---|" * (len(FLAGS) + 1))
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        f, runs, targets, t_args, t_kw = choice.recorded_table(spec, args.data_dir)
        mine = {k: np.zeros(2, int) for k in FLAGS}
        for chosen, seen in choice.pairs(runs, targets, t_args, t_kw, args.splits):
            predicted = fit_laws(chosen, DEFAULT_METHOD).predict(chosen.utd, chosen.params)
            scoring = choice.problems(seen, f)
            for name, prob in choice.problems(chosen, f).items():
                observed = scoring[name].cost(seen.data)
                for j, i in enumerate(choice.pick(prob.cost(predicted))):
                    if i < 0 or not np.isfinite(observed[:, j]).any():
                        continue
                    flag = contradicted(chosen, i, j, predicted[i, j])
                    failed = int(not np.isfinite(observed[i, j]))
                    counts[name][flag][failed] += 1
                    mine[flag][failed] += 1
        print(f"| {spec.id} | " + " | ".join(_share(mine[k]) for k in FLAGS) + " |", flush=True)
    for name, c in counts.items():
        print(f"{name} problem: " + "; ".join(f"{FLAGS[k]}: {_share(c[k])}" for k in FLAGS))


def _share(row: np.ndarray) -> str:
    n = int(row.sum())
    return f"{row[1]} of {n} failed ({100 * row[1] / n:.0f}%)" if n else "no picks"


if __name__ == "__main__":
    main()
