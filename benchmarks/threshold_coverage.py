"""Does the interval need a scale per threshold? Coverage of the 80% interval by threshold band.

Schema-2 fits had one interval (log offsets per level) for every threshold; schema-3 fits have
one per fifth of the thresholds. For each shipped fit (rebuilt from the archives as shipped;
every catalogue fit has 20 thresholds), the thresholds are cut into five bands of equal count
(lowest to highest; the default target of a single budget is the top one), and the coverage of the
interval is measured per band, held out as recorded (each interval built without the configs
it is checked on):
  - LOCO: one config at a time;
  - groups: each interior utd row and each interior params column, left out whole.
Three ways to build the interval are compared on the same splits:
  - pooled: as schema-2 fits shipped it (one quantile over all thresholds, scaled for rows and
    columns);
  - per band: as shipped since schema 3 (calibration.intervals: split conformal within each
    band, Mondrian, the finite-sample correction over the configs that reach the band; a band
    too few configs reach for the level takes at least the pooled interval);
  - normalised: residuals divided by a spread per band (median |r| of the band, shrunk
    towards the fit's with a weight of 5 configs), one quantile of those, times the band's
    spread.
Each method then gets its own row/column factor (the least k >= 1 at which its bounds cover
the level's share of the kept configs' interior row and column residuals, as the shipped
interval's is found).
Also printed: the residual spread per band relative to the fit's median |r|, and the mean log
width (hi - lo in log offsets) of the one-config-out intervals. Summary rows: the mean over
fits per band, and how many (fit, band) cells fall below 70%.

The choice among the ways, left out task by task: the rule (fewest (fit, band) cells below 70%,
LOCO and groups together; then the least mean log width) picks a way from the other fits only,
and the fit left out is scored with the way picked without it. The last lines print which way
each fold picked and those held-out coverages (what the choice is worth on a task it never saw).

Usage: python benchmarks/threshold_coverage.py [DATA_DIR] [--only ID ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from calibration.build import DEFAULT_METHOD, N_BOOT, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.intervals import (  # noqa: E402
    CHECK_LEVEL,
    _honest_bounds,
    _residuals,
    calibrate_interval,
    conformal_quantiles,
    interior_groups,
    threshold_bands,
)

BANDS = 5  # as calibration.intervals.BANDS
SHRINK = 5.0  # pseudo-configs of the fit's own spread in a band's (normalised)
WAYS = ("pooled", "per band", "normalised")


def bands_of(m: int) -> np.ndarray:
    return threshold_bands(m, BANDS)


def band_bounds(r, ok, keep, groups, way: str, band: np.ndarray):
    """(lo, hi) per band of the interval built from the configs in `keep` only, each method
    with its own row/column factor."""
    if way == "per band":  # as shipped (calibration.intervals)
        lo, hi = _honest_bounds(r, ok, keep, CHECK_LEVEL, groups, None, 1)
        first = [int(np.flatnonzero(band == j)[0]) for j in range(BANDS)]
        return lo[first], hi[first]
    lo, hi, k = _honest_bounds(r, ok, keep, CHECK_LEVEL, groups, None, 1, with_scale=True,
                               pooled=True)
    lo, hi = float(lo[0]), float(hi[0])
    if way == "pooled":
        return np.full(BANDS, lo), np.full(BANDS, hi)
    rk, n_keep = r[keep], int(keep.sum())
    whole = np.nanmedian(np.abs(rk))
    spread = np.ones(BANDS)
    for j in range(BANDS):
        x = rk[:, band == j]
        x = x[np.isfinite(x)]
        own = np.median(np.abs(x)) if x.size else whole
        n_j = x.size / max(1, int((band == j).sum()))  # configs' worth of residuals
        spread[j] = (n_j * own + SHRINK * whole) / (n_j + SHRINK) / whole
    z = rk / spread[band][None, :]
    a, b = conformal_quantiles(z[np.isfinite(z)], CHECK_LEVEL, n_keep)
    los, his = a * spread, b * spread
    own_k = groups.scale(los[band], his[band], CHECK_LEVEL, keep)
    return own_k * los, own_k * his


def by_rule(out: dict, fits: np.ndarray) -> str:
    """The way the rule picks on the fits in `fits` (a boolean mask over out's rows)."""
    def key(way):
        loco, groups, width = (np.asarray(x, float)[fits] for x in out[way])
        return int(np.sum(loco < 0.7) + np.sum(groups < 0.7)), float(np.mean(width))
    return min(WAYS, key=key)


def left_out_choice(out: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per fit, the way picked without it, and its LOCO and groups coverage by band with it."""
    n = len(out[WAYS[0]][0])
    picked = [by_rule(out, np.arange(n) != i) for i in range(n)]
    loco = np.array([out[w][0][i] for i, w in enumerate(picked)], float)
    groups = np.array([out[w][1][i] for i, w in enumerate(picked)], float)
    return picked, loco, groups


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    print(f"nominal level {CHECK_LEVEL:g}; {BANDS} threshold bands, lowest to highest; each "
          "interval built without the configs it is checked on")
    cols = " | ".join(f"{w}: LOCO / groups by band" for w in WAYS)
    print(f"| fit | residual spread by band | {cols} |")
    print("|---|---|" + "---|" * len(WAYS))
    out = {w: ([], [], []) for w in WAYS}
    spreads = []
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        built = build_fit(Path(args.data_dir) / spec.archive, spec.algorithm, spec.env,
                          n_boot=N_BOOT, name=spec.name)
        t, loco = built.table, built.loco
        _, preds = calibrate_interval(t, DEFAULT_METHOD, built.laws, loco)
        r = _residuals(t.data, loco)
        ok = np.isfinite(r)
        groups = interior_groups(t, preds)
        n, m = r.shape
        band = bands_of(m)
        med = np.nanmedian(np.abs(r))
        spreads.append([np.nanmedian(np.abs(r[:, band == j])) / med for j in range(BANDS)])
        cells = []
        for way in WAYS:
            hits, width = np.full(r.shape, np.nan), []
            for i in range(n):
                lo, hi = band_bounds(r, ok, np.arange(n) != i, groups, way, band)
                hits[i] = np.where(ok[i], (r[i] >= lo[band]) & (r[i] <= hi[band]), np.nan)
                width.append(np.mean(hi[band] - lo[band]))
            ghits = []
            for axis in ("utd", "params"):
                for rows in groups.members[axis]:
                    g = groups.residuals[axis][rows]
                    lo, hi = band_bounds(r, ok, ~rows, groups, way, band)
                    ghits.append(np.where(np.isfinite(g), (g >= lo[band]) & (g <= hi[band]),
                                          np.nan))
            g = np.concatenate(ghits) if ghits else np.full((0, m), np.nan)
            by_loco = [np.nanmean(hits[:, band == j]) for j in range(BANDS)]
            by_group = [np.nanmean(g[:, band == j]) if g.size else np.nan for j in range(BANDS)]
            out[way][0].append(by_loco)
            out[way][1].append(by_group)
            out[way][2].append(np.mean(width))
            cells.append(" ".join(f"{100 * x:.0f}" for x in by_loco) + " / "
                         + " ".join(f"{100 * x:.0f}" for x in by_group))
        print(f"| {spec.id} | " + " ".join(f"{x:.2f}" for x in spreads[-1]) + " | "
              + " | ".join(cells) + " |", flush=True)
    print("| **mean** | " + " ".join(f"{x:.2f}" for x in np.nanmean(spreads, axis=0)) + " | "
          + " | ".join(" ".join(f"{100 * x:.0f}" for x in np.nanmean(out[w][0], axis=0))
                       + " / " + " ".join(f"{100 * x:.0f}"
                                          for x in np.nanmean(out[w][1], axis=0))
                       for w in WAYS) + " |")
    print("| **(fit, band) cells below 70%** | | " + " | ".join(
        f"{int(np.sum(np.array(out[w][0]) < 0.7))} / {int(np.sum(np.array(out[w][1]) < 0.7))}"
        for w in WAYS) + " |")
    print("| **mean log width** | | " + " | ".join(f"{np.mean(out[w][2]):.3f}" for w in WAYS)
          + " |")
    if len(spreads) < 3:
        return
    picked, loco, groups = left_out_choice(out)
    ids = [spec.id for spec in catalogue() if not args.only or spec.id in args.only]
    everyone = by_rule(out, np.ones(len(picked), bool))
    print(f"\nthe rule on every fit picks: {everyone}; leaving each fit out it picks "
          + ", ".join(f"{w} ({sum(p == w for p in picked)} fits"
                      + (": " + ", ".join(i for i, p in zip(ids, picked, strict=True) if p == w)
                         if w != everyone else "") + ")"
                      for w in WAYS if w in picked))
    print("each fit scored with the way picked without it: mean over fits by band, LOCO "
          + " ".join(f"{100 * x:.0f}" for x in np.nanmean(loco, axis=0)) + " / groups "
          + " ".join(f"{100 * x:.0f}" for x in np.nanmean(groups, axis=0))
          + f"; (fit, band) cells below 70%: {int(np.sum(loco < 0.7))} / "
          f"{int(np.sum(groups < 0.7))}")


if __name__ == "__main__":
    main()
