"""How the shipped 80% interval holds for runs at batch sizes other than the one it predicts.

The laws predict the data a run at B~(utd, params) needs; a user may run another batch size.
The SimbaV2 archive has every (utd, params) at batch sizes 256-2048, of which the fit used the
one nearest B~: the others are runs the D_J fit never saw. For each, the residual
log(D_observed / D_predicted) against the shipped fit and interval (at each threshold the
offsets `Fit.interval` applies there), by distance |log(B / B~)|.

Then paper A's BRO runs with a passive critic (side_critic.zip: utd 2, widths 512-2048, batch
512 or 1024, 2-6 seeds), which the bro/h1-* fits never saw: their D_J against the fit, by
B / B~ with B~ as shipped (fitted to the batch sizes of the fit's runs) and as paper A's
published coefficients would give it. The passive critic does not act, but these runs have
fewer seeds than the fit's (a noisier averaged curve) and may differ otherwise.

Usage: python benchmarks/batch_coverage.py [DATA_DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import advisor  # noqa: E402
from calibration.archives import read_runs  # noqa: E402
from calibration.batch import tables_by_batch  # noqa: E402
from calibration.catalogue import PUBLISHED_BATCH  # noqa: E402
from calibration.curves import data_table  # noqa: E402
from calibration.intervals import threshold_offsets  # noqa: E402

BANDS = ((0.0, 0.35), (0.35, 0.7), (0.7, 1.4), (1.4, np.inf))  # |log(B / B~)|


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    args = ap.parse_args()
    archive = Path(args.data_dir) / "simbav2_model_scaling_linear20_with_base.zip"
    print("coverage of the shipped 80% interval on runs at every batch size of the grid, by "
          "|log(B / B~)| (B within 1.4x, 2x, 4x of B~, further)")
    print("| fit | " + " | ".join(f"{lo:g}-{hi:g}" for lo, hi in BANDS) + " | all |")
    print("|" + "---|" * (len(BANDS) + 2))
    for env in ("h1-crawl-v0", "h1-stand-v0"):
        f = advisor.load_fit(f"simbav2/{env}")
        # the offsets Fit.interval applies at each threshold (its fifth's, schema 3)
        lo_t, hi_t = threshold_offsets(f.model.prediction_interval, f.thresholds)
        rs, ds, los, his = [], [], [], []
        for b, t in tables_by_batch(read_runs(archive, env=env), f.thresholds, 0).items():
            pred = np.array([f.data_to_target(t.utd, t.params, j) for j in f.thresholds]).T
            r = np.log(t.data / pred)
            d = np.abs(np.log(b / np.asarray(f.batch_size(t.utd, t.params))))[:, None]
            ok = np.isfinite(r)
            rs.append(r[ok])
            ds.append(np.broadcast_to(d, r.shape)[ok])
            los.append(np.broadcast_to(lo_t, r.shape)[ok])
            his.append(np.broadcast_to(hi_t, r.shape)[ok])
        r, d = np.concatenate(rs), np.concatenate(ds)
        lo, hi = np.concatenate(los), np.concatenate(his)
        cells = []
        for a, z in BANDS:
            m = (d >= a) & (d < z)
            hit = ((r[m] >= lo[m]) & (r[m] <= hi[m])).mean() if m.any() else np.nan
            cells.append(f"{100 * hit:.0f}% (n {m.sum()}, median {np.median(r[m]):+.2f})")
        cells.append(f"{100 * ((r >= lo) & (r <= hi)).mean():.0f}% (n {r.size})")
        print(f"| simbav2/{env} | " + " | ".join(cells) + " |", flush=True)
    side_critic(Path(args.data_dir) / "side_critic.zip")


def side_critic(archive: Path) -> None:
    print("\nBRO runs with a passive critic (side_critic.zip, utd 2), each (width, batch) pooling "
          "its runs (one per passive critic): residual log(D_observed / D_predicted) over the "
          "thresholds reached, and the share inside the shipped 80% interval (for a run "
          "averaged over as many seeds as the fit's) and its one-seed interval")
    print("| fit | width | batch | seeds | B / B~ shipped | B / B~ published | median residual "
          "| in 80% interval | in one-seed 80% interval |")
    print("|" + "---|" * 9)
    runs = read_runs(archive)
    for env in ("h1-crawl-v0", "h1-pole-v0", "h1-stand-v0"):
        f = advisor.load_fit(f"bro/{env}")
        lo_t, hi_t = threshold_offsets(f.model.prediction_interval, f.thresholds)
        lo_1, hi_1 = threshold_offsets(f.model.prediction_interval, f.thresholds,
                                       single_seed=True)
        for key in sorted({(r.width, r.batch_size) for r in runs if r.env == env}):
            rr = [r for r in runs if r.env == env and (r.width, r.batch_size) == key]
            t = data_table(rr, f.thresholds, 0)
            pred = np.array([[f.data_to_target(r.utd, r.params, j) for j in f.thresholds]
                             for r in rr])
            r = np.log(t.data / pred)
            ok = np.isfinite(r)
            hit = ((r >= lo_t) & (r <= hi_t))[ok]
            one = ((r >= lo_1) & (r <= hi_1))[ok]
            utd, params = rr[0].utd, rr[0].params
            shipped = key[1] / f.batch_size(utd, params)
            published = key[1] / advisor.laws.batch_size(utd, params, *PUBLISHED_BATCH[env])
            print(f"| bro/{env} | {key[0]} | {key[1]:g} | {'+'.join(str(x.n_seeds) for x in rr)} "
                  f"| {shipped:.2f} | {published:.2f} | {np.median(r[ok]):+.2f} "
                  f"| {100 * hit.mean():.0f}% of {hit.size} | {100 * one.mean():.0f}% |",
                  flush=True)


if __name__ == "__main__":
    main()
