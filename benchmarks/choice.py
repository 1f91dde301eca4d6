"""How good are the configurations the laws choose? Regret of held-out choices on the archive grids.

`recommend` picks the (utd, critic size) the law predicts to be cheapest for a target or a
budget. The error and interval tables measure the predictions; this measures the choice: on
each archive grid, at each threshold J, which config a fit picks, and what that config's runs
then cost against the best config of the grid in hindsight (the "oracle").

Each choice is made on half of each config's seeds and scored on the other half (D_J from each
half's mean curve, as the fits read it from all seeds), both ways round, over `--splits` random
halvings (a config of 2k+1 seeds gives k+1 to either half at random): a pick is never scored on
the runs that chose it, so picking the best of one's own noisy runs gets no credit for their
luck. Only the grid's configs can be scored, so every choice picks among them.

The problems, as `recommend` poses them, at each threshold J:
  - total: the least F = C + delta * D_J to reach J (`--total`; C = k * utd * params * D_J,
    the fit's k and delta);
  - data: the least compute C to reach J within the runs' length (`--data` at that length);
  - compute: the least D_J to reach J with compute at most C0, the median over the grid's
    configs of k * utd * params * (the runs' length) (`--compute C0`).
A config predicted to need more steps than its runs took is never picked (the runs cannot say
what it costs): each problem's data is capped at the runs' length.

Choices:
  - law: the law fitted to every config's choosing seeds (what `recommend` uses);
  - law, runs' veto: the law's pick among the configs its runs do not contradict
    (Fit.contradicting_runs, what `recommend` warns of: no run at a config no smaller in utd
    and params that ran at least the predicted steps failed to reach J; where every config is
    vetoed, the law's pick);
  - law, one config out: each config predicted by a fit without it (a config never run);
  - log-linear, one config out: the baseline log D = k0 + k1 log utd + k2 log N (no
    censoring: it cannot learn that a config never reached J);
  - coarse grid, law: each 3x3 sub-grid (three utds by three critic sizes, 16 per fit, as
    `subgrid_coverage.py` takes them: what `advisor calibrate` runs) fitted as the shipped fits
    are; its pick among every config of the full grid, the ones it never ran included;
  - coarse grid, law, runs' veto: its pick among the full grid's configs that the sub-grid's
    runs do not contradict, as above: most configs it picks it never ran, as most of
    `recommend`'s answers are not fitted configurations;
  - coarse grid, law, veto to next run: the same, a failed run also vetoing the configs
    above it up to (not at) the next value the sub-grid ran on each axis (the configs just
    past a failed run, which the plain veto lets through);
  - coarse grid, its best run: the best config the sub-grid ran (nine runs, no law);
  - whole grid, its best run: the best config of the whole grid on the choosing seeds (what
    running every config buys: the floor the seeds' noise leaves);
  - smallest: the config of least utd * params, whatever J;
  - middle: the middle value of each axis (the upper one of an even count), whatever J;
  - random: the mean over the grid's configs.

Scores, per fit (every threshold, and the top fifth of them: a single budget's default target):
  - within 1.25x: the share of thresholds whose pick costs at most 1.25x the oracle; a failure
    counts as a miss. A failure: the pick never reached J on the scoring seeds (over C0 for the
    compute problem), or nothing was picked (every config predicted past its runs' length);
  - failed: the share of failures;
  - regret: geometric mean of the pick's cost over the oracle's, where a failure costs its
    run (to the runs' length, or to C0) and then the oracle's, a lower bound on what it wastes;
    a threshold with no pick is left out of it.
The oracle is the least of noisy costs, so even the whole grid's best run does not reach 1.
Summaries: means over fits; "law against the whole grid's best run": the fits where the law's
within-1.25x share is higher / lower (a sign test's counts).

What the split does not hold out: the thresholds of fits without a published return range, and
the runs a SimbaV2 fit uses per config (those nearest B~), are chosen from all seeds; run
lengths of runs stopped early are the configs' (the same for both halves). Fits are built
without bootstrap resamples (the choices use the laws alone).

Usage: python benchmarks/choice.py [DATA_DIR] [--only ID ...] [--splits N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from advisor.fit import Fit  # noqa: E402
from benchmarks.common import data_parser  # noqa: E402
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

PROBLEMS = ("total", "data", "compute")
CHOICES = ("law", "law, runs' veto", "law, one config out",
           "log-linear, one config out", "coarse grid, law", "coarse grid, law, runs' veto",
           "coarse grid, law, veto to next run", "coarse grid, its best run",
           "whole grid, its best run", "smallest", "middle", "random")
#: Choices that use a law's predictions (the rest read runs, or nothing).
PREDICTED = ("law", "law, runs' veto", "law, one config out",
             "log-linear, one config out", "coarse grid, law", "coarse grid, law, runs' veto",
             "coarse grid, law, veto to next run")
NEAR = 1.25


@dataclass
class Problem:
    """One of PROBLEMS on a grid: `cost(data)` is (n, m) what it minimises when each config
    needs `data` env steps (NaN where it is not allowed: past the runs' length, over C0);
    `failed_cost` (n,) what a config that fails costs before the oracle's run."""

    name: str
    cost: object
    failed_cost: np.ndarray


def problems(t: DataTable, f: Fit) -> dict[str, Problem]:
    """The PROBLEMS on the grid of `t` (its utds, params and runs' lengths)."""
    k, size, horizon = f.compute_per_update_param, t.utd * t.params, t.horizon
    c0 = float(np.median(k * size * horizon))

    def capped(data):
        return np.where(data <= horizon[:, None], data, np.nan)

    def total_flops(data):
        d = capped(data)
        return k * size[:, None] * d + f.delta * d

    def compute_flops(data):
        return k * size[:, None] * capped(data)

    def env_steps(data):
        d = capped(data)
        return np.where(k * size[:, None] * d <= c0, d, np.nan)

    return {"total": Problem("total", total_flops, (k * size + f.delta) * horizon),
            "data": Problem("data", compute_flops, k * size * horizon),
            "compute": Problem("compute", env_steps, np.minimum(horizon, c0 / (k * size)))}


def pick(cost: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """(m,) index of the config of least `cost` per threshold (-1: none allowed has a cost);
    `allowed`: (n,) the configs it may pick."""
    c = np.where(np.isfinite(cost) & (cost > 0), cost, np.inf)
    if allowed is not None:
        c = np.where(allowed[:, None], c, np.inf)
    out = np.argmin(c, axis=0)
    return np.where(np.isfinite(c.min(axis=0)), out, -1)


def _next_up(values: np.ndarray, ran: np.ndarray) -> np.ndarray:
    """(n,) per config the next larger value of its axis among the `ran` configs' (one step of
    the last ratio beyond the largest)."""
    u = np.unique(values[ran])
    ratio = u[-1] / u[-2] if len(u) > 1 else 2.0
    up = np.append(u[1:], u[-1] * ratio)
    return up[np.clip(np.searchsorted(u, values * (1 + 1e-9)) - 1, 0, len(u) - 1)]


def vetoed(t: DataTable, predicted: np.ndarray, ran: np.ndarray | None = None,
           to_next: bool = False) -> np.ndarray:
    """(n, m) where the runs of `t` refute config i reaching threshold j in its `predicted`
    env steps, as Fit.contradicting_runs reads them: a config no smaller in utd and params
    never reached j although it ran at least that long. `ran`: (n,) the configs whose runs
    count (default all); `to_next`: a failed run vetoes every config below the next value the
    runs took on each axis, not only those no larger than itself. Each config is judged at its
    own predicted data; `recommend`'s clear_of_runs counts every run short of the target
    whatever the data (Fit.closing_runs): on the archive grids, whose runs share one length and
    whose picks are capped at it, the two are the same."""
    ran = np.ones(len(t.utd), bool) if ran is None else ran
    if to_next:  # up to (not at) the next value the runs took on each axis
        nu, npar = _next_up(t.utd, ran), _next_up(t.params, ran)
        larger = ((nu[None, :] > t.utd[:, None] * (1 + 1e-9))
                  & (npar[None, :] > t.params[:, None] * (1 + 1e-9)) & ran[None, :])
    else:
        larger = (t.utd[None, :] >= t.utd[:, None]) & (t.params[None, :] >= t.params[:, None]) \
            & ran[None, :]
    never = ~np.isfinite(t.data)
    with np.errstate(invalid="ignore"):
        long = t.horizon[None, :, None] >= predicted[:, None, :]
    return np.any(larger[:, :, None] & never[None, :, :] & long, axis=1)


def pick_vetoed(cost: np.ndarray, veto: np.ndarray) -> np.ndarray:
    """pick(cost) among the configs not vetoed ((n, m)), or where that leaves none with a cost,
    among all (recommend then answers as the law says, and warns)."""
    first, fallback = pick(np.where(veto, np.nan, cost)), pick(cost)
    return np.where(first >= 0, first, fallback)


def regret(observed: np.ndarray, choice: np.ndarray, failed_cost: np.ndarray | None = None
           ) -> np.ndarray:
    """(m,) observed cost of the picked config over the grid's least; a pick without a cost
    (it never reached) is inf, or with `failed_cost`, (its failed run + the least) / the least;
    no pick: inf (a failure, whatever `failed_cost`); no config reached: NaN."""
    best = np.nanmin(np.where(np.isfinite(observed), observed, np.nan), axis=0)
    got = np.array([observed[i, j] if i >= 0 else np.inf for j, i in enumerate(choice)])
    got = np.where(np.isfinite(got), got, np.inf)
    if failed_cost is not None:
        wasted = np.array([failed_cost[i] + best[j] if i >= 0 else np.inf
                           for j, i in enumerate(choice)])
        got = np.where(np.isinf(got), wasted, got)
    return got / best


def choose(t: DataTable, f: Fit) -> dict[str, dict[str, list[np.ndarray]]]:
    """Per problem and choice, its picks ((m,) config indices; the coarse grid's one per
    sub-grid, random's one per config), made from the table `t` alone."""
    u_all, p_all = np.unique(t.utd), np.unique(t.params)
    law = fit_laws(t, DEFAULT_METHOD)
    predicted = {"law": law.predict(t.utd, t.params),
                 "law, one config out": leave_one_config_out(t, DEFAULT_METHOD, law),
                 "log-linear, one config out": loglinear_leave_one_config_out(t)}
    subgrids = []  # (configs the sub-grid ran, its law's predicted data at every config)
    for iu, ip in itertools.product(triples(len(u_all)), triples(len(p_all))):
        keep = np.isin(t.utd, u_all[list(iu)]) & np.isin(t.params, p_all[list(ip)])
        subgrids.append((keep, fit_laws(sub_table(t, keep), DEFAULT_METHOD).predict(t.utd,
                                                                                    t.params)))
    n, m = t.data.shape
    smallest = int(np.argmin(t.utd * t.params))
    middle = int(np.flatnonzero((t.utd == u_all[len(u_all) // 2])
                                & (t.params == p_all[len(p_all) // 2]))[0])
    veto = vetoed(t, predicted["law"])
    sub_veto = [vetoed(t, d, keep) for keep, d in subgrids]
    sub_next = [vetoed(t, d, keep, to_next=True) for keep, d in subgrids]
    out = {}
    for name, prob in problems(t, f).items():
        ran = prob.cost(t.data)
        out[name] = {
            **{c: [pick(prob.cost(d))] for c, d in predicted.items()},
            "law, runs' veto": [pick_vetoed(prob.cost(predicted["law"]), veto)],
            "coarse grid, law": [pick(prob.cost(d)) for _, d in subgrids],
            "coarse grid, law, runs' veto": [pick_vetoed(prob.cost(d), v)
                                             for (_, d), v in zip(subgrids, sub_veto)],
            "coarse grid, law, veto to next run": [pick_vetoed(prob.cost(d), v)
                                                   for (_, d), v in zip(subgrids, sub_next)],
            "coarse grid, its best run": [pick(ran, keep) for keep, _ in subgrids],
            "whole grid, its best run": [pick(ran)],
            "smallest": [np.full(m, smallest)],
            "middle": [np.full(m, middle)],
            "random": [np.full(m, i) for i in range(n)],
        }
    return out


def score(picks: dict[str, dict[str, list[np.ndarray]]], t: DataTable, f: Fit
          ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per problem and choice, (regrets with failures as inf, regrets with failures costed) of
    its `picks` on the table `t` (other seeds of the same configs), concatenated."""
    out = {}
    for name, prob in problems(t, f).items():
        observed = prob.cost(t.data)
        out[name] = {c: tuple(np.concatenate([regret(observed, p, failed)[None] for p in ps])
                              for failed in (None, prob.failed_cost))
                     for c, ps in picks[name].items()}
    return out


def summary(r: np.ndarray, costed: np.ndarray) -> tuple[float, float, float]:
    """(share within NEAR, share failed, geometric mean of the costed regrets) of regrets `r`
    (inf: failed; NaN: not counted) and the same with failures costed."""
    counted = ~np.isnan(r)
    if not counted.any():
        return np.nan, np.nan, np.nan
    r, costed = r[counted], costed[counted]
    ok = np.isfinite(costed)
    return (float(np.mean(r <= NEAR)), float(np.mean(np.isinf(r))),
            float(np.exp(np.mean(np.log(costed[ok])))) if ok.any() else np.nan)


def recorded_table(spec, data_dir: str):
    """The fit of `spec` built as shipped (without bootstrap resamples), and how its D_J table
    was made: (fit, runs, targets, data_table's other arguments)."""
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
    assert len(calls) == 1, f"{spec.id}: {len(calls)} D_J tables built"
    runs, targets, args, kw = calls[0]
    assert np.array_equal(targets, built.table.targets)
    return Fit(built.fit), runs, targets, args, kw


def halves(runs, targets, args, kw, rng: np.random.Generator) -> tuple[DataTable, DataTable]:
    """Two tables of the same configs: D_J of a random half of each config's seeds, and of the
    other half (an odd seed goes to either at random)."""
    parts: tuple[list, list] = ([], [])
    for r in runs:
        order = rng.permutation(r.n_seeds)
        cut = r.n_seeds // 2 + int(r.n_seeds % 2 and rng.integers(2))
        for part, seeds in zip(parts, (np.sort(order[:cut]), np.sort(order[cut:]))):
            part.append(replace(r, values={k: v[:, seeds] for k, v in r.values.items()}))
    return data_table(parts[0], targets, *args, **kw), data_table(parts[1], targets, *args, **kw)


def pairs(runs, targets, args, kw, splits: int):
    """(choosing, scoring) tables of `splits` random halvings (seed 0), each both ways."""
    rng = np.random.default_rng(0)
    for _ in range(splits):
        a, b = halves(runs, targets, args, kw, rng)
        yield a, b
        yield b, a


def parse_args(doc: str, splits: int) -> argparse.Namespace:
    """DATA_DIR, --only and --splits, as this script and contradiction.py take them."""
    ap = data_parser(doc)
    ap.add_argument("--splits", type=int, default=splits, help="random halvings of the seeds")
    return ap.parse_args()


def machine() -> str:
    """The line naming the machine and versions, as the other benchmarks print it."""
    import platform

    import advisor

    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, numpy {np.__version__}, advisor {advisor.__version__}")


def main() -> None:
    args = parse_args(__doc__, 5)
    print(machine())
    print(f"each choice made on a random half of each config's seeds and scored on the other "
          f"half, both ways, {args.splits} halvings (seed 0); cell: share of thresholds within "
          f"{NEAR:g}x of the grid's best config (failures as misses) / share failed / geometric "
          f"mean regret (a failure costs its run, then the best config's)")
    scopes = ("every threshold", "top fifth")
    per = {(s, p): {c: [] for c in CHOICES} for s in scopes for p in PROBLEMS}
    spread: dict[str, dict[str, list[float]]] = {}
    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        f, runs, targets, t_args, t_kw = recorded_table(spec, args.data_dir)
        got: dict = {p: {c: ([], []) for c in CHOICES} for p in PROBLEMS}
        for chosen, seen in pairs(runs, targets, t_args, t_kw, args.splits):
            for p, by_choice in score(choose(chosen, f), seen, f).items():
                for c, (r, costed) in by_choice.items():
                    got[p][c][0].append(r)
                    got[p][c][1].append(costed)
        # the law's share within NEAR per halving (its two directions together): the noise
        spread[spec.id] = {p: [summary(*(np.concatenate([x.ravel() for x in xs[k:k + 2]])
                                         for xs in got[p]["law"]))[0]
                               for k in range(0, 2 * args.splits, 2)] for p in PROBLEMS}
        m = len(targets)
        for scope, cols in zip(scopes, (slice(0, m), slice(m - m // 5, m))):
            for p in PROBLEMS:
                for c in CHOICES:
                    r, costed = (np.concatenate([x[:, cols].ravel() for x in xs])
                                 for xs in got[p][c])
                    per[scope, p][c].append((spec.id, summary(r, costed)))
        print(f"{spec.id}: done", file=sys.stderr, flush=True)
    for scope in scopes:
        for p in PROBLEMS:
            print(f"\n{p} problem, {scope}\n| fit | " + " | ".join(CHOICES) + " |")
            print("|" + "---|" * (len(CHOICES) + 1))
            ids = [i for i, _ in per[scope, p][CHOICES[0]]]
            a = {c: np.array([s for _, s in per[scope, p][c]], float) for c in CHOICES}
            for k, fit_id in enumerate(ids):
                print(f"| {fit_id} | " + " | ".join(_cell(a[c][k]) for c in CHOICES) + " |")
            print("| **mean over fits** | " + " | ".join(
                f"**{_cell(np.nanmean(a[c], axis=0))}**" for c in CHOICES) + " |")
            law, grid = a["law"][:, 0], a["whole grid, its best run"][:, 0]
            print(f"law against the whole grid's best run, within {NEAR:g}x: higher on "
                  f"{int(np.sum(law > grid))} fits, lower on {int(np.sum(law < grid))}, the "
                  f"same on {int(np.sum(law == grid))}")

    print(f"\nthe law's share within {NEAR:g}x, every threshold, per halving (each both ways): "
          "least-most over the halvings\n| fit | " + " | ".join(PROBLEMS) + " |")
    print("|" + "---|" * (len(PROBLEMS) + 1))
    for fit_id, by_problem in spread.items():
        print(f"| {fit_id} | " + " | ".join(
            f"{100 * min(v):.0f}-{100 * max(v):.0f}%" for v in by_problem.values()) + " |")
    widths = {p: [max(v[p]) - min(v[p]) for v in spread.values()] for p in PROBLEMS}
    print("| **median range** | " + " | ".join(
        f"**{100 * np.median(w):.0f} points**" for w in widths.values()) + " |")


def _cell(s) -> str:
    return f"{100 * s[0]:.0f}% / {100 * s[1]:.0f}% / {s[2]:.2f}"


if __name__ == "__main__":
    main()
