"""How good are the configurations the laws choose? Regret of held-out choices on the archive grids.

`recommend` picks the (utd, critic size) the law predicts to reach a target at the least cost.
The error and interval tables measure the predictions; this measures the choice: on each
archive grid, at each threshold J, which config a fit picks, and what that config's runs then
cost to reach J against the cheapest config of the grid in hindsight (the "oracle").

Every choice is made on half of each config's seeds and scored on the other half (even-numbered
seeds against odd-numbered ones, then the other way round; D_J from each half's mean curve, as
the fits read it from all seeds): a pick is never scored on the runs that chose it, so picking
the best of one's own noisy runs gets no credit for their luck.

Costs, as `recommend` counts them: compute C = k * utd * params * D_J (the fit's k; a
`--compute` budget) and the total F = C + delta * D_J (the fit's delta; `--total`), both
within the runs' length (a config predicted to need more steps than its runs took is not
picked: `--data` at that length). Data alone is not a choice: D_J falls with utd and size, so
its least is the grid's largest corner.

Choices:
  - law, one config out: each config predicted by a fit without it (LOCO), the cheapest
    predicted picked;
  - log-linear, one config out: the same with the baseline log D = k0 + k1 log utd + k2 log N;
  - coarse grid, law: each 3x3 sub-grid (three utds by three critic sizes, 16 per fit, as
    `subgrid_coverage.py` takes them: what `advisor calibrate` runs) fitted as the shipped fits
    are; its pick among every config of the full grid, the 16 or so it never ran included;
  - coarse grid, its best run: the cheapest config the sub-grid ran (what one picks from those
    nine runs without a law);
  - whole grid, its best run: the cheapest config of the whole grid on the choosing seeds (what
    running every config buys: the floor the seeds' noise leaves);
  - fixed (middle): the grid's middle config (median utd, median size), whatever J;
  - random: the mean over the grid's configs.

Regret is the pick's observed cost over the oracle's (1 = the best config). The oracle is the
least of noisy costs, so even the whole grid's best run does not reach 1 on average. A pick
that never reached J within its runs is a failure, counted apart (the random choice's failures
are its share of configs that never reached J). Thresholds no config reached are skipped. Per
fit: the geometric mean regret over thresholds (failures left out) and the share of thresholds
whose pick is within 1.25x of the oracle (failures count as not); summaries: the mean of those
over fits.

Usage: python benchmarks/choice.py [DATA_DIR] [--only ID ...] [--top]
  --top: the top fifth of each fit's thresholds only (a single budget's default target).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from advisor.fit import Fit  # noqa: E402
from benchmarks.subgrid_coverage import sub_table, triples  # noqa: E402
from calibration import build  # noqa: E402
from calibration.build import DEFAULT_METHOD, build_fit  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402
from calibration.curves import DataTable, data_table  # noqa: E402
from calibration.fitting import (  # noqa: E402
    fit_laws,
    leave_one_config_out,
    loglinear_leave_one_config_out,
)

CHOICES = ("law, one config out", "log-linear, one config out", "coarse grid, law",
           "coarse grid, its best run", "whole grid, its best run", "fixed (middle)", "random")
COSTS = ("compute", "total")
NEAR = 1.25


def costs(t: DataTable, f: Fit, data: np.ndarray, kind: str) -> np.ndarray:
    """(n, m) cost of each config reaching each threshold, when it needs `data` env steps;
    NaN where `data` is NaN or past the config's runs' length (`horizon`): a choice is made
    within the steps the runs took, as a `--compute` budget with `--data` at that length."""
    data = np.where(data <= t.horizon[:, None], data, np.nan)
    c = f.compute_per_update_param * (t.utd * t.params)[:, None] * data
    return c if kind == "compute" else c + f.delta * data


def pick(predicted: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """(m,) index of the config with the least predicted cost per threshold (-1: none
    predicted); `allowed`: (n,) the configs it may pick."""
    p = np.where(np.isfinite(predicted) & (predicted > 0), predicted, np.inf)
    if allowed is not None:
        p = np.where(allowed[:, None], p, np.inf)
    out = np.argmin(p, axis=0)
    return np.where(np.isfinite(p.min(axis=0)), out, -1)


def regret(observed: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """(m,) observed cost of the picked config over the grid's least (inf: the pick never
    reached the threshold; NaN: no pick, or no config reached it)."""
    best = np.nanmin(np.where(np.isfinite(observed), observed, np.nan), axis=0)
    got = np.array([observed[i, j] if i >= 0 else np.nan for j, i in enumerate(choice)])
    got = np.where((choice >= 0) & ~np.isfinite(got), np.inf, got)
    return got / best


def linear_fit_predict(s: DataTable, utd: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The log-linear baseline fitted on `s`, per threshold, at (utd, params)."""
    x = np.column_stack([np.ones(len(s.utd)), np.log(s.utd), np.log(s.params)])
    xq = np.column_stack([np.ones(len(utd)), np.log(utd), np.log(params)])
    out = np.full((len(utd), s.data.shape[1]), np.nan)
    for j in range(s.data.shape[1]):
        rows = np.isfinite(s.data[:, j])
        if rows.sum() >= 4:
            k, *_ = np.linalg.lstsq(x[rows], np.log(s.data[rows, j]), rcond=None)
            out[:, j] = np.exp(xq @ k)
    return out


def fit_regrets(chosen: DataTable, seen: DataTable, f: Fit) -> dict[str, dict[str, list]]:
    """Per cost kind and choice, the (m,) regrets of its picks (the coarse grid's: one array
    per sub-grid; random's: one per config). Every choice is made on `chosen` (D_J of some
    seeds of each config) and scored on `seen` (the same configs' other seeds)."""
    u_all, p_all = np.unique(chosen.utd), np.unique(chosen.params)
    utd, params = chosen.utd, chosen.params
    subgrids = []  # (configs the sub-grid ran, its law's predicted data at every config)
    for iu, ip in itertools.product(triples(len(u_all)), triples(len(p_all))):
        keep = np.isin(utd, u_all[list(iu)]) & np.isin(params, p_all[list(ip)])
        laws = fit_laws(sub_table(chosen, keep), DEFAULT_METHOD)
        subgrids.append((keep, laws.predict(utd, params)))
    law = fit_laws(chosen, DEFAULT_METHOD)
    loco = leave_one_config_out(chosen, DEFAULT_METHOD, law)
    linear = loglinear_leave_one_config_out(chosen)
    middle = np.argmin(np.abs(np.log(utd / np.median(u_all)))
                       + np.abs(np.log(params / np.median(p_all))))
    n, m = chosen.data.shape
    out = {}
    for kind in COSTS:
        observed = costs(seen, f, seen.data, kind)
        ran = costs(chosen, f, chosen.data, kind)

        def score(predicted, allowed=None, observed=observed):
            return regret(observed, pick(predicted, allowed))

        out[kind] = {
            "law, one config out": [score(costs(chosen, f, loco, kind))],
            "log-linear, one config out": [score(costs(chosen, f, linear, kind))],
            "coarse grid, law": [score(costs(chosen, f, d, kind)) for _, d in subgrids],
            "coarse grid, its best run": [score(ran, keep) for keep, _ in subgrids],
            "whole grid, its best run": [score(ran)],
            "fixed (middle)": [regret(observed, np.full(m, middle))],
            "random": [regret(observed, np.full(m, i)) for i in range(n)],
        }
    return out


def split_tables(spec, data_dir: str) -> tuple[Fit, DataTable, DataTable]:
    """The fit of `spec` built as shipped (without bootstrap resamples), and two tables of its
    configs at its thresholds: D_J of each config's even-numbered seeds, and of its odd ones."""
    calls = []

    def recording(runs, targets, *args, **kw):
        calls.append((runs, targets, args, kw))
        return data_table(runs, targets, *args, **kw)

    build.data_table = recording
    try:
        built = build_fit(Path(data_dir) / spec.archive, spec.algorithm, spec.env, n_boot=0,
                          name=spec.name)
    finally:
        build.data_table = data_table
    runs, targets, args, kw = calls[-1]  # the D_J table (SimbaV2's B~ tables come first)
    assert np.array_equal(targets, built.table.targets)
    halves = []
    for first in (0, 1):
        some = [replace(r, values={k: v[:, first::2] for k, v in r.values.items()})
                for r in runs]
        halves.append(data_table(some, targets, *args, **kw))
    return Fit(built.fit), *halves


def summary(r: np.ndarray) -> tuple[float, float, float]:
    """(geometric mean regret of the picks that reached, share within NEAR, share failed) of
    an array of regrets (NaN: not counted)."""
    r = r[~np.isnan(r)]
    if not r.size:
        return np.nan, np.nan, np.nan
    ok = np.isfinite(r)
    gm = float(np.exp(np.mean(np.log(r[ok])))) if ok.any() else np.nan
    return gm, float(np.mean(r <= NEAR)), float(np.mean(~ok))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--top", action="store_true",
                    help="the top fifth of each fit's thresholds only")
    args = ap.parse_args()
    print(f"regret = the pick's cost / the grid's least, per threshold "
          f"({'top fifth of the thresholds' if args.top else 'every threshold'}), each choice "
          f"made on half of each config's seeds and scored on the other half (both ways); "
          f"cell: geometric mean regret of the picks that reached / share within {NEAR:g}x of "
          f"the least / share of picks that never reached (fits built without bootstrap "
          f"resamples: the choices use the laws alone)")
    per = {kind: {c: [] for c in CHOICES} for kind in COSTS}
    rows: dict[str, list[str]] = {kind: [] for kind in COSTS}
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        f, even, odd = split_tables(spec, args.data_dir)
        m = even.data.shape[1]
        cols = slice(m - m // 5, m) if args.top else slice(0, m)
        both = [fit_regrets(even, odd, f), fit_regrets(odd, even, f)]
        for kind in COSTS:
            cells = []
            for c in CHOICES:
                s = summary(np.concatenate([r[cols] for one in both for r in one[kind][c]]))
                per[kind][c].append(s)
                cells.append(f"{s[0]:.2f} / {100 * s[1]:.0f}% / {100 * s[2]:.0f}%")
            rows[kind].append(f"| {spec.id} | " + " | ".join(cells) + " |")
        print(f"{spec.id}: done", file=sys.stderr, flush=True)
    for kind in COSTS:
        print(f"\n{kind}\n| fit | " + " | ".join(CHOICES) + " |")
        print("|" + "---|" * (len(CHOICES) + 1))
        print("\n".join(rows[kind]))
        a = {c: np.array(v, float) for c, v in per[kind].items()}
        print("| **mean over fits** | " + " | ".join(
            f"**{np.nanmean(a[c][:, 0]):.2f} / {100 * np.nanmean(a[c][:, 1]):.0f}% / "
            f"{100 * np.nanmean(a[c][:, 2]):.0f}%**" for c in CHOICES) + " |")
        print(f"| **fits whose picks are within {NEAR:g}x less than half the time** | "
              + " | ".join(str(int(np.sum(a[c][:, 1] < 0.5))) for c in CHOICES) + " |")


if __name__ == "__main__":
    main()
