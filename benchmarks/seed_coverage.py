"""How often the shipped 80% interval covers a single seed's D_J, against a seed-averaged run's.

Every D_J behind a fit is read from a config's return curve averaged over its seeds (4 to 67
per config in the archives), so the interval is calibrated for runs averaged over as many
seeds. A user who runs one seed sees more scatter. For every shipped fit (rebuilt from the
archives as shipped) and each config, held out as in the recorded LOCO coverage (its prediction
from a fit without it, its interval from the other configs' residuals, scaled for rows and
columns left out), this checks the seed-averaged D_J (the recorded LOCO coverage, for
comparison) and each seed's own D_J (the same isotonic first crossing, on that seed's curve),
first in the seed-averaged interval, then in the single-seed interval (`Fit.interval(...,
single_seed=True)`: the seed-averaged one scaled by the least factor holding 80% of the other
configs' seeds). A seed that never reaches a threshold within its run counts as a miss where
the interval's top lies inside the run, and is left out where it does not (stricter than the
calibration, which counts it as held once the interval reaches past the run).

Usage: python benchmarks/seed_coverage.py [DATA_DIR] [--only ID ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from calibration.archives import read_runs  # noqa: E402
from calibration.build import DEFAULT_METHOD, build_fit  # noqa: E402
from calibration.catalogue import DEFAULT_STEP_LIMIT, STEP_LIMITS, catalogue  # noqa: E402
from calibration.curves import _forward_fill, curve_crossings, truncate  # noqa: E402
from calibration.intervals import (  # noqa: E402
    CHECK_LEVEL,
    _honest_bounds,
    _least_scale,
    _needed_scale,
    _residuals,
    _seed_residuals,
    calibrate_interval,
    interior_groups,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    print(f"nominal level {CHECK_LEVEL:g}; each config held out (LOCO), its interval from the "
          "other configs only")
    print("| fit | seeds per config | seed-averaged run | single seed | single seed, "
          "single-seed interval | single seed, points |")
    print("|---|---|---|---|---|---|")
    means, singles, scaled, all_hits, all_scaled = [], [], [], [], []
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        archive = Path(args.data_dir) / spec.archive
        built = build_fit(archive, spec.algorithm, spec.env, n_boot=0, name=spec.name)
        t, loco = built.table, built.loco
        _, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco)
        groups = interior_groups(t, preds)
        r = _residuals(t.data, loco)
        ok = np.isfinite(r)
        by_config = {(run.utd, run.params, run.batch_size): run
                     for run in read_runs(archive, env=spec.env)
                     if run.tags.get("passive_critic", "False") == "False"}
        limit = STEP_LIMITS.get(spec.env, DEFAULT_STEP_LIMIT)
        mean_hits, seed_hits, scaled_hits = [], [], []
        n = len(t.utd)
        seed_r, reach = _seed_residuals(t, loco)
        for i in range(n):
            bounds = _honest_bounds(r, ok, np.arange(n) != i, CHECK_LEVEL, groups, None, 1)
            run = by_config.get((t.utd[i], t.params[i], t.batch_size[i]))
            if bounds is None or run is None or not np.isfinite(loco[i]).any():
                continue
            lo, hi = bounds
            keep = np.arange(n) != i
            k = _least_scale(_needed_scale(seed_r[keep], reach[keep], lo, hi), CHECK_LEVEL,
                             n - 1)
            mean_hits.append(((r[i] >= lo) & (r[i] <= hi))[ok[i]])
            steps, values = truncate(run, limit)
            values = _forward_fill(values)
            for s in range(values.shape[1]):
                d = curve_crossings(steps, values[:, s], t.targets)
                with np.errstate(invalid="ignore", divide="ignore"):
                    rs = np.log(d / loco[i])
                hit = (rs >= lo) & (rs <= hi)
                # a seed short of the threshold: a miss where the interval ends inside the run
                miss = ~np.isfinite(d) & np.isfinite(loco[i]) & (loco[i] * np.exp(hi) < steps[-1])
                seed_hits.append(np.concatenate([hit[np.isfinite(rs)], np.zeros(miss.sum(), bool)]))
                hit_k = (rs >= k * lo) & (rs <= k * hi)
                miss_k = ~np.isfinite(d) & np.isfinite(loco[i]) & (
                    loco[i] * np.exp(k * hi) < steps[-1])
                scaled_hits.append(np.concatenate([hit_k[np.isfinite(rs)],
                                                   np.zeros(miss_k.sum(), bool)]))
        if not seed_hits:
            continue
        m, s_, k_ = (np.concatenate(mean_hits).mean(), np.concatenate(seed_hits),
                     np.concatenate(scaled_hits))
        means.append(m)
        singles.append(s_.mean())
        scaled.append(k_.mean())
        all_hits.append(s_)
        all_scaled.append(k_)
        print(f"| {spec.id} | {t.n_seeds.min()}-{t.n_seeds.max()} | {100 * m:.0f}% | "
              f"{100 * s_.mean():.0f}% | {100 * k_.mean():.0f}% | {s_.size} |", flush=True)
    pooled, pooled_k = np.concatenate(all_hits), np.concatenate(all_scaled)
    for name, agg in (("mean", np.mean), ("min", np.min)):
        print(f"| **{name}** | | **{100 * agg(means):.0f}%** | **{100 * agg(singles):.0f}%** | "
              f"**{100 * agg(scaled):.0f}%** | |")
    print(f"| **pooled points** | | | {100 * pooled.mean():.0f}% | {100 * pooled_k.mean():.0f}% "
          f"| {pooled.size} |")


if __name__ == "__main__":
    main()
