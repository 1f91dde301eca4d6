"""How the shipped 80% interval holds for runs at batch sizes other than the one it predicts.

The laws predict the data a run at B~(utd, params) needs; a user may run another batch size
and say so (`Fit.data_to_target(..., batch_size=B)`, `Fit.interval(..., batch_size=B)`: times
`advisor.laws.off_batch_factor`, 1 within 2x of B~ and exp(0.22 (|log(B / B~)| - log 2))
beyond).

1. The SimbaV2 archive has every (utd, params) at batch sizes 256-2048, of which the fit used
   the one nearest B~: the others are runs the D_J fit never saw. For each, the residual
   log(D_observed / D_predicted) against the shipped fit and interval (at each threshold the
   offsets `Fit.interval` applies there), by distance |log(B / B~)|: at B~ (what `interval`
   gives without batch_size), and with batch_size, its slope fitted on the other task alone
   (leave one task out), then with the shipped slope.
2. The choice of the 2x free band: leave-one-task-out error of the slope for other bands.
3. Paper A's BRO runs with a passive critic (side_critic.zip: utd 2, widths 512-2048, batch
   512 or 1024, 2-6 seeds), which neither the bro/h1-* fits nor the slope ever saw: their D_J
   against the fit, by B / B~ with B~ as shipped (fitted to the batch sizes of the fit's runs)
   and as paper A's published coefficients would give it, at B~ and with batch_size. The
   passive critic does not act, but these runs have fewer seeds than the fit's (a noisier
   averaged curve) and may differ otherwise.

Usage: python benchmarks/batch_coverage.py [DATA_DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import advisor  # noqa: E402
from advisor import laws  # noqa: E402
from calibration.archives import read_runs  # noqa: E402
from calibration.batch import batch_residuals, interval_hits, off_batch_slope  # noqa: E402
from calibration.catalogue import PUBLISHED_BATCH  # noqa: E402
from calibration.curves import data_table  # noqa: E402
from calibration.intervals import threshold_offsets  # noqa: E402

BANDS = ((0.0, 0.35), (0.35, 0.7), (0.7, 1.4), (1.4, np.inf))  # |log(B / B~)|
SIMBA = ("h1-crawl-v0", "h1-stand-v0")


def share(hits: np.ndarray) -> str:
    """Coverage of interval_hits: one figure, or the range from counting the thresholds that
    cannot be told (a run that stopped short inside the interval) as misses to as hits."""
    known, n = hits[~np.isnan(hits)], hits.size
    lo, hi = np.sum(known) / n, (np.sum(known) + (n - known.size)) / n
    lo, hi = f"{100 * lo:.0f}", f"{100 * hi:.0f}"
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def excess(log_ratio: np.ndarray, free: float = laws.OFF_BATCH_FREE) -> np.ndarray:
    return np.maximum(np.abs(log_ratio) - np.log(free), 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}, advisor {advisor.__version__}")
    archive = Path(args.data_dir) / "simbav2_model_scaling_linear20_with_base.zip"
    grid, full = {}, {}
    for env in SIMBA:
        f = advisor.load_fit(f"simbav2/{env}")
        r, d, j, c = batch_residuals(f, read_runs(archive, env=env))
        full[env] = (r, d, j, c)
        grid[env] = (f, r[~c], d[~c], j[~c])  # slopes and errors: the thresholds reached
    slopes = {env: off_batch_slope(grid[env][1], grid[env][2]) for env in SIMBA}
    both = off_batch_slope(np.concatenate([grid[e][1] for e in SIMBA]),
                           np.concatenate([grid[e][2] for e in SIMBA]))
    print(f"off-B~ slope (least squares beyond {laws.OFF_BATCH_FREE:g}x of B~): "
          + ", ".join(f"{e} alone {s:.3f}" for e, s in slopes.items())
          + f", both {both:.3f}; shipped advisor.laws.OFF_BATCH_SLOPE {laws.OFF_BATCH_SLOPE:g}")
    print("\ncoverage of the shipped 80% interval on runs at every batch size of the grid, by "
          "|log(B / B~)| (B within 1.4x, 2x, 4x of B~, further): at B~ / with batch_size, slope "
          "from the other task / with batch_size, shipped slope. A threshold a run never "
          "reached is a miss where its last step lies past the interval's upper end; where it "
          "stopped inside the interval it cannot be told, and a range counts those as misses, "
          "then as hits. Medians and slopes are over the thresholds reached")
    print("| fit | " + " | ".join(f"{lo:g}-{hi:g}" for lo, hi in BANDS) + " | all |")
    print("|" + "---|" * (len(BANDS) + 2))
    for env in SIMBA:
        f = grid[env][0]
        r, d, j, c = full[env]
        other = slopes[SIMBA[1 - SIMBA.index(env)]]
        lo, hi = (x[j] for x in threshold_offsets(f.model.prediction_interval, f.thresholds))
        shifted = {s: r - s * excess(d) for s in (0.0, other, laws.OFF_BATCH_SLOPE)}
        cells = []
        for a, z in (*BANDS, (0.0, np.inf)):
            m = (np.abs(d) >= a) & (np.abs(d) < z)
            hits = []
            for x in shifted.values():
                hits.append(share(interval_hits(x[m], c[m], lo[m], hi[m])))
            cells.append(" / ".join(hits) + f" (n {m.sum()}, {c[m].sum()} never reached; "
                         f"median {np.median(r[m & ~c]):+.2f})")
        print(f"| simbav2/{env} | " + " | ".join(cells) + " |", flush=True)

    print("\nfree band around B~ (slope fitted beyond it on one task, mean |residual| on the "
          "other, over the thresholds its runs reached)")
    print("| free band | on h1-crawl-v0 (slope from h1-stand-v0) | on h1-stand-v0 (slope from "
          "h1-crawl-v0) |")
    print("|---|---|---|")
    for free in (1.0, 1.4, 2.0, 2.8, 4.0):
        errs = []
        for env in SIMBA:
            tr = SIMBA[1 - SIMBA.index(env)]
            s = off_batch_slope(grid[tr][1], grid[tr][2], free)
            _, r, d, _ = grid[env]
            errs.append(f"{np.mean(np.abs(r - s * excess(d, free))):.4f} (slope {s:.3f})")
        print(f"| {free:g}x | " + " | ".join(errs) + " |")
    print("| none (at B~) | " + " | ".join(f"{np.mean(np.abs(grid[e][1])):.4f}" for e in SIMBA)
          + " |")
    errs = []
    for env in SIMBA:  # a slope per side (B above B~, below it) instead of one for both
        tr = SIMBA[1 - SIMBA.index(env)]
        _, r_tr, d_tr, _ = grid[tr]
        up_s, down_s = (off_batch_slope(r_tr[m], d_tr[m]) for m in (d_tr > 0, d_tr < 0))
        _, r, d, _ = grid[env]
        errs.append(f"{np.mean(np.abs(r - np.where(d > 0, up_s, down_s) * excess(d))):.4f} "
                    f"(slopes {up_s:.3f} above, {down_s:.3f} below)")
    print("| 2x, a slope per side | " + " | ".join(errs) + " |")
    side_critic(Path(args.data_dir) / "side_critic.zip")


def side_critic(archive: Path) -> None:
    print("\nBRO runs with a passive critic (side_critic.zip, utd 2), each (width, batch) pooling "
          "its runs (one per passive critic): residual log(D_observed / D_predicted) over the "
          "thresholds reached, and the share inside the shipped 80% interval (for a run "
          "averaged over as many seeds as the fit's) and its one-seed interval; at B~ / with "
          "batch_size; thresholds never reached count as in the grid above")
    print("| fit | width | batch | seeds | B / B~ shipped | B / B~ published | median residual "
          "| in 80% interval | in one-seed 80% interval |")
    print("|" + "---|" * 9)
    runs = read_runs(archive)
    for env in ("h1-crawl-v0", "h1-pole-v0", "h1-stand-v0"):
        f = advisor.load_fit(f"bro/{env}")
        pi = f.model.prediction_interval
        lo_t, hi_t = threshold_offsets(pi, f.thresholds)
        lo_1, hi_1 = threshold_offsets(pi, f.thresholds, single_seed=True)
        for key in sorted({(r.width, r.batch_size) for r in runs if r.env == env}):
            rr = [r for r in runs if r.env == env and (r.width, r.batch_size) == key]
            t = data_table(rr, f.thresholds, 0)
            utd, params = rr[0].utd, rr[0].params
            pred = np.array([f.data_to_target(utd, params, j) for j in f.thresholds])
            cens = ~np.isfinite(t.data)  # (runs, thresholds): never reached by the horizon
            at = np.log(np.where(cens, np.asarray(t.horizon, float)[:, None], t.data) / pred)
            ok = ~cens
            shipped = key[1] / f.batch_size(utd, params)
            published = key[1] / laws.batch_size(utd, params, *PUBLISHED_BATCH[env])
            told = at - np.log(laws.off_batch_factor(key[1], f.batch_size(utd, params)))
            cells = []
            for lo, hi in ((lo_t, hi_t), (lo_1, hi_1)):
                cells.append(" / ".join(share(interval_hits(x, cens, lo + 0 * x, hi + 0 * x))
                                        for x in (at, told)))
            print(f"| bro/{env} | {key[0]} | {key[1]:g} | {'+'.join(str(x.n_seeds) for x in rr)} "
                  f"| {shipped:.2f} | {published:.2f} | {np.median(at[ok]):+.2f} / "
                  f"{np.median(told[ok]):+.2f} | {cells[0]} of {ok.sum()} reached, "
                  f"{cens.sum()} not | {cells[1]} |",
                  flush=True)


if __name__ == "__main__":
    main()
