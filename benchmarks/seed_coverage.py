"""How often the shipped 80% interval covers a single seed's D_J, against a seed-averaged run's.

Every D_J behind a fit is read from a config's return curve averaged over its seeds (4 to 67
per config in the archives), so the interval is calibrated for runs averaged over as many
seeds. A user who runs one seed sees more scatter. For every shipped fit (rebuilt from the
archives as shipped) and each config, held out as in the recorded LOCO coverage (its prediction
from a fit without it, its interval from the other configs' residuals, scaled for rows and
columns left out), this checks the seed-averaged D_J (the recorded LOCO coverage, for
comparison) and each seed's own D_J (the same isotonic first crossing, on that seed's curve),
first in the seed-averaged interval, then in the single-seed interval (`Fit.interval(...,
single_seed=True)`, built from the other configs' seeds). The single-seed interval is
calibrated on the seeds that reach a threshold (as the seed-averaged one on configs that
reach it); its column "never-reaching seeds as misses" also counts a seed that never reached
as a miss where the interval's top lies inside the run (left out where it does not), and the
last column gives the share of seeds that never reached a threshold their config's averaged
curve reached. The single-seed column of the seed-averaged interval counts them that way too.

A second table checks the single-seed interval outside the fitted domain: each of the grid's
four edges (largest and smallest utd row, largest and smallest params column) is left out
whole, the fit is rebuilt without it (benchmarks/intervals.py, nested_edge) and its widened
single-seed interval is checked on every seed of the edge's configs.

Both intervals are the shipped ones: per band of thresholds (`--pooled`: one interval for every
threshold, as schema-2 fits had).

Usage: python benchmarks/seed_coverage.py [DATA_DIR] [--only ID ...] [--no-edges] [--pooled]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.intervals import EDGES, nested_edge  # noqa: E402
from calibration.archives import read_runs  # noqa: E402
from calibration.build import DEFAULT_METHOD, N_BOOT, build_fit  # noqa: E402
from calibration.catalogue import DEFAULT_STEP_LIMIT, STEP_LIMITS, catalogue  # noqa: E402
from calibration.curves import _forward_fill, curve_crossings, truncate  # noqa: E402
from calibration.intervals import (  # noqa: E402
    CHECK_LEVEL,
    _honest_bounds,
    _residuals,
    _seed_residuals,
    band_seed_offsets,
    calibrate_interval,
    interior_groups,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-edges", action="store_true",
                    help="skip the nested edges (the slow part: four refits per fit)")
    ap.add_argument("--pooled", action="store_true",
                    help="one interval for every threshold (schema 2), not one per band")
    args = ap.parse_args()
    print(f"nominal level {CHECK_LEVEL:g}; each config held out (LOCO), its interval from the "
          "other configs only; "
          + ("one interval for every threshold" if args.pooled else "an interval per band of "
             "thresholds"))
    print("| fit | seeds per config | seed-averaged run | single seed | single seed, "
          "single-seed interval | the same, never-reaching seeds as misses | seeds never "
          "reaching | points |")
    print("|---|---|---|---|---|---|---|---|")
    rows, pooled = [], [[] for _ in range(5)]
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        archive = Path(args.data_dir) / spec.archive
        built = build_fit(archive, spec.algorithm, spec.env, n_boot=N_BOOT, name=spec.name)
        t, loco = built.table, built.loco
        if t.seed_data is None:  # SimbaV2's columns are 5-seed means: no single seed's curve
            print(f"| {spec.id} | no single seed's curve | | | | | | |", flush=True)
            continue
        _, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco)
        groups = interior_groups(t, preds)
        r = _residuals(t.data, loco)
        ok = np.isfinite(r)
        by_config = {(run.utd, run.params, run.batch_size): run
                     for run in read_runs(archive, env=spec.env)
                     if run.tags.get("passive_critic", "False") == "False"}
        limit = STEP_LIMITS.get(spec.env, DEFAULT_STEP_LIMIT)
        mean_hits, seed_hits, scaled_hits, strict_hits, never = [], [], [], [], []
        n = len(t.utd)
        seed_r = _seed_residuals(t, loco)
        for i in range(n):
            keep = np.arange(n) != i
            honest = _honest_bounds(r, ok, keep, CHECK_LEVEL, groups, None, 1, with_scale=True,
                                    pooled=args.pooled)
            run = by_config.get((t.utd[i], t.params[i], t.batch_size[i]))
            if honest is None or run is None or not np.isfinite(loco[i]).any():
                continue
            lo, hi, scale = honest
            s_lo, s_hi = band_seed_offsets(seed_r[keep], CHECK_LEVEL, scale, args.pooled)
            s_lo, s_hi = np.minimum(lo, s_lo), np.maximum(hi, s_hi)
            mean_hits.append(((r[i] >= lo) & (r[i] <= hi))[ok[i]])
            steps, values = truncate(run, limit)
            values = _forward_fill(values)
            for s in range(values.shape[1]):
                d = curve_crossings(steps, values[:, s], t.targets)
                with np.errstate(invalid="ignore", divide="ignore"):
                    rs = np.log(d / loco[i])
                reached = np.isfinite(rs)
                short = ~np.isfinite(d) & np.isfinite(loco[i])  # never reached by the run's end
                never.append(short[ok[i]])
                hit = (rs >= lo) & (rs <= hi)
                # a seed short of the threshold: a miss where the interval ends inside the run
                miss = short & (loco[i] * np.exp(hi) < steps[-1])
                seed_hits.append(np.concatenate([hit[reached], np.zeros(miss.sum(), bool)]))
                hit_s = (rs >= s_lo) & (rs <= s_hi)
                scaled_hits.append(hit_s[reached])
                miss_s = short & (loco[i] * np.exp(s_hi) < steps[-1])
                strict_hits.append(np.concatenate([hit_s[reached], np.zeros(miss_s.sum(), bool)]))
        if not seed_hits:
            continue
        row = [np.concatenate(h) for h in (mean_hits, seed_hits, scaled_hits, strict_hits, never)]
        rows.append([x.mean() for x in row])
        for k, x in enumerate(row):
            pooled[k].append(x)
        print(f"| {spec.id} | {t.n_seeds.min()}-{t.n_seeds.max()} | "
              + " | ".join(f"{100 * x.mean():.0f}%" for x in row) + f" | {row[3].size} |",
              flush=True)
    rows = np.array(rows)
    for name, agg in (("mean", np.mean), ("min", np.min), ("max", np.max)):
        print(f"| **{name}** | | " + " | ".join(f"**{100 * x:.0f}%**" for x in agg(rows, axis=0))
              + " | |")
    print("| **pooled points** | | | " + " | ".join(
        f"{100 * np.concatenate(h).mean():.0f}%" for h in pooled[1:]) + " | |")
    if not args.no_edges:
        edges(args)


def edges(args) -> None:
    """The four edges of the grid, each left out whole with the fit rebuilt without it
    (benchmarks/intervals.py, nested_edge), for single seeds in the single-seed interval."""
    print()
    print("Edges, fully nested (the fit rebuilt without the row or column), single seeds in the "
          "single-seed interval, widened as Fit.interval widens it; a cell reads 'seeds that "
          "reached / never-reaching seeds as misses'")
    print("| fit | " + " | ".join(e[2] for e in EDGES) + " |")
    print("|---|" + "---|" * len(EDGES))
    rows, pooled = [], [[[], []] for _ in EDGES]
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env,
                          n_boot=N_BOOT, name=spec.name)
        if built.table.seed_data is None:
            continue
        cells, row = [], []
        for k, (side, axis, _) in enumerate(EDGES):
            reached, strict = nested_edge(built.table, side, axis, single_seed=True,
                                          pooled=args.pooled)
            pooled[k][0].append(reached)
            pooled[k][1].append(strict)
            row.append([reached.mean() if reached.size else np.nan,
                        strict.mean() if strict.size else np.nan])
            cells.append(f"{100 * row[-1][0]:.0f}% / {100 * row[-1][1]:.0f}%")
        rows.append(row)
        print(f"| {spec.id} | " + " | ".join(cells) + " |", flush=True)
    rows = np.array(rows)  # (fits, edges, 2)
    for name, agg in (("mean", np.nanmean), ("min", np.nanmin)):
        print(f"| **{name}** | " + " | ".join(
            f"**{100 * a:.0f}% / {100 * b:.0f}%**" for a, b in agg(rows, axis=0)) + " |")
    print("| **fits below 70%** | " + " | ".join(
        f"{int(np.sum(rows[:, k, 0] < 0.7))} / {int(np.sum(rows[:, k, 1] < 0.7))}"
        for k in range(len(EDGES))) + " |")
    print("| **pooled points** | " + " | ".join(
        f"{100 * np.concatenate(a).mean():.0f}% / {100 * np.concatenate(b).mean():.0f}% of "
        f"{np.concatenate(b).size}" for a, b in pooled) + " |")


if __name__ == "__main__":
    main()
