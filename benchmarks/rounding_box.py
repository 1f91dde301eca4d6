"""How often does the rounded recommendation leave the trusted box, and does its predicted data
rise with the budget? Over every shipped fit, 121 compute budgets (1e14-1e20 FLOPs) and 25 data
budgets (3e4-3e7 env steps): the recommendations outside `Fit.trusted_box()`, and per fit the
largest rise of the rounded config's predicted data from one compute budget to the next (the
continuous optimum never rises). Session 20 ran it on a rule that took a better neighbour a
rounding step outside the box (commit a7dd992: 274 of 945 outside, rises within 1%) and on
inside-the-box-first (this one: docs/recommend.md, Rounding).

  python benchmarks/rounding_box.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import advisor  # noqa: E402


def main() -> int:
    n = outside = 0
    rises = []
    for fid in advisor.list_fits():
        fid = getattr(fid, "id", fid)
        box = advisor.load_fit(fid).trusted_box()
        data_by_compute = []
        for kind, values in (("compute", np.geomspace(1e14, 1e20, 121)),
                             ("data", np.geomspace(3e4, 3e7, 25))):
            for v in values:
                try:
                    r = advisor.recommend(advisor.Budget(**{kind: float(v)}), fit=fid)
                except advisor.AdvisorError:
                    continue
                n += 1
                tol = 1e-9
                inside = (box.utd_low * (1 - tol) <= r.utd <= box.utd_high * (1 + tol)
                          and box.params_low * (1 - tol) <= r.params <= box.params_high * (1 + tol))
                outside += not inside
                if kind == "compute":
                    data_by_compute.append(r.predicted_data)
        d = np.array(data_by_compute)
        if len(d) > 1:
            rises.append((float(np.max(d[1:] / d[:-1])), fid))
    rises.sort(reverse=True)
    print(f"{n} recommendations over {len(advisor.list_fits())} fits; outside the trusted box: "
          f"{outside}")
    print("largest rise of predicted data with the compute budget: " + ", ".join(
        f"{fid} {100 * (r - 1):+.1f}%" for r, fid in rises[:5]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
