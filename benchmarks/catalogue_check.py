"""Which dmc_bro_ablations.zip tasks ship, on the shipped protocol, and whether family pooling
beats per-task fits on full grids.

Part 1, every task of the archive (40: DMC, MetaWorld, MyoSuite) as the catalogue builds it:
20 thresholds over the published return range (reference.md, 13 DMC tasks) or, without one,
chosen from the data (calibration.calibrate.choose_targets); the shipped D_J method. A law
validates when its leave-one-config-out (LOCO) error is below the log-linear baseline's, neither
exponent sits at a fit bound (0.05, 8), every threshold is reached by at least 5 configurations,
and the LOCO error is at most calibration.catalogue.MAX_SHIPPED_ERROR. `diff` is the LOCO error
minus the baseline's with its standard error over configurations (2,000 bootstrap resamples of
configurations): a margin within one standard error is noise.

Part 2, the DMC family (15 tasks) and the shipped non-DMC tasks: LOCO error of a few-shot fit
(calibration.design.few_shot_fit, the default weights) given every other configuration of the
task and the median prior of the other DMC tasks, against the per-task fit's LOCO; and the error
of few-shot fits from k = 3, 5, 9 configurations (the D-optimal design of `advisor plan --prior`)
on the held-out configurations.

Usage: python benchmarks/catalogue_check.py [DATA_DIR]
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration import design as D  # noqa: E402
from calibration.archives import read_runs  # noqa: E402
from calibration.build import DEFAULT_METHOD  # noqa: E402
from calibration.calibrate import CalibrationError, choose_targets  # noqa: E402
from calibration.catalogue import (  # noqa: E402
    ABLATION_TASKS,
    MAX_SHIPPED_ERROR,
    TARGET_RANGES,
)
from calibration.curves import data_table, thresholds  # noqa: E402
from calibration.fitting import (  # noqa: E402
    ALPHA_BOUNDS,
    fit_laws,
    leave_one_config_out,
    loglinear_leave_one_config_out,
)

M = DEFAULT_METHOD


def family_of(env: str) -> str:
    if env.endswith("-v2-goal-observable"):
        return "metaworld"
    return "myosuite" if env.startswith("myo-") else "dmc"


def errors(pred, data):
    ok = np.isfinite(data) & np.isfinite(pred)
    return np.where(ok, np.abs(pred - data) / np.where(ok, data, 1.0), np.nan)


def check(env, runs):
    rule = "published" if env in TARGET_RANGES else "data"
    try:
        targets = thresholds(*TARGET_RANGES[env]) if rule == "published" else choose_targets(runs)
    except CalibrationError:
        return dict(env=env, rule=rule, verdict="no: the runs do not learn (no thresholds)")
    table = data_table(runs, targets, n_boot=0)
    laws = fit_laws(table, M)
    loco = leave_one_config_out(table, M, laws)
    ll = loglinear_leave_one_config_out(table)
    el, eb = errors(loco, table.data), errors(ll, table.data)
    both = np.isfinite(el) & np.isfinite(eb)
    rng = np.random.default_rng(0)
    n = len(table.utd)
    diffs = []
    for _ in range(2000):
        i = rng.integers(0, n, n)
        diffs.append(el[i][both[i]].mean() - eb[i][both[i]].mean())
    loco_err = float(np.nanmean(el))
    base = float(eb[both].mean())
    alpha, beta = float(laws.coef[0, 2]), float(laws.coef[0, 4])
    reached = int(np.isfinite(table.data).sum(axis=0).min())
    why = []
    if not loco_err < base:
        why.append("LOCO >= log-linear")
    if any(not (ALPHA_BOUNDS[0] * 1.02 < x < ALPHA_BOUNDS[1] * 0.98) for x in (alpha, beta)):
        why.append("exponent at a bound")
    if reached < 5:
        why.append("a threshold reached by < 5 configs")
    if loco_err > MAX_SHIPPED_ERROR:
        why.append(f"LOCO > {100 * MAX_SHIPPED_ERROR:.0f}%")
    return dict(env=env, rule=rule, table=table, laws=laws, loco=loco, loco_err=loco_err,
                base=base, diff=float(np.mean(el[both]) - base), se=float(np.std(diffs)),
                alpha=alpha, beta=beta, reached=reached, lo=targets[0], hi=targets[-1],
                verdict="yes" if not why else "no: " + ", ".join(why))


def few_shot_check(task, members, res):
    t = res[task]["table"]
    n = len(t.utd)
    others = [o for o in members if o != task]
    cen = D.family_centring([res[o]["table"] for o in others])
    prior = D.median_prior([res[o]["laws"] for o in others], cen)
    loco = np.full(t.data.shape, np.nan)
    for i in range(n):
        keep = np.arange(n) != i
        loco[i] = D.few_shot_fit(t, keep, prior, M).predict(t.utd[i:i + 1], t.params[i:i + 1])[0]
    out = dict(full=float(np.nanmean(errors(loco, t.data))), per_task=res[task]["loco_err"])
    thetas = [cen.theta(res[o]["laws"].coef) for o in others]
    for k in (3, 5, 9):
        idx = D.optimal_design(k, t.utd, t.params, thetas, t.data.shape[1], cen, model="prior")
        keep = np.zeros(n, bool)
        keep[idx] = True
        pred = D.few_shot_fit(t, keep, prior, M).predict(t.utd[~keep], t.params[~keep])
        out[k] = float(np.nanmean(errors(pred, t.data[~keep])))
    return out


def main() -> None:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parents[2] / "shared" / "data"
    t0 = time.time()
    print(f"# catalogue check, {_dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    runs = read_runs(data_dir / "dmc_bro_ablations.zip")
    envs = sorted({r.env for r in runs})
    res = {}
    print("\n## Part 1: every task on the shipped protocol (20 thresholds; range published or "
          "from the data)")
    print(f"{'task':<36} {'family':<9} {'thresholds':<10} {'J_lo':>8} {'J_hi':>8} {'LOCO':>6} "
          f"{'loglin':>6} {'diff (SE)':>13} {'alpha':>5} {'beta':>5} {'reach':>5}  validates")
    for env in envs:
        r = res[env] = check(env, [x for x in runs if x.env == env])
        if "table" not in r:
            print(f"{env:<36} {family_of(env):<9} {r['rule']:<10} {'':>8} {'':>8} {'':>6} "
                  f"{'':>6} {'':>13} {'':>5} {'':>5} {'':>5}  {r['verdict']}")
            continue
        ship = " (ships)" if env in ABLATION_TASKS else ""
        print(f"{env:<36} {family_of(env):<9} {r['rule']:<10} {r['lo']:>8.4g} {r['hi']:>8.4g} "
              f"{100 * r['loco_err']:>5.1f}% {100 * r['base']:>5.1f}% "
              f"{100 * r['diff']:>+5.1f} ({100 * r['se']:.1f}) {r['alpha']:>5.2f} "
              f"{r['beta']:>5.2f} {r['reached']:>5}  {r['verdict']}{ship}", flush=True)
    print(f"(part 1 done at {time.time() - t0:.0f} s)")

    dmc = [e for e in envs if family_of(e) == "dmc" and "table" in res[e]]
    print("\n## Part 2: family prior (median of the other DMC tasks) against per-task fits")
    print("full grid: LOCO error of the few-shot fit given all other configs vs the per-task "
          "fit's LOCO; k = 3/5/9: few-shot from the D-optimal k configs, error on the rest")
    print(f"{'task':<36} {'per-task':>8} {'few-shot':>8} {'k=3':>6} {'k=5':>6} {'k=9':>6}")
    rows = {}
    for task in dmc + list(ABLATION_TASKS):
        members = dmc if task in dmc else dmc + [task]
        rows[task] = r = few_shot_check(task, members, res)
        print(f"{task:<36} {100 * r['per_task']:>7.1f}% {100 * r['full']:>7.1f}% "
              f"{100 * r[3]:>5.1f}% {100 * r[5]:>5.1f}% {100 * r[9]:>5.1f}%", flush=True)
    for label, tasks in (("DMC (15)", dmc), ("shipped non-DMC", list(ABLATION_TASKS))):
        a = np.array([[rows[t]["per_task"], rows[t]["full"], rows[t][3], rows[t][5], rows[t][9]]
                      for t in tasks])
        m = a.mean(axis=0)
        better = int((a[:, 1] < a[:, 0]).sum())
        print(f"mean {label:<31} {100 * m[0]:>7.1f}% {100 * m[1]:>7.1f}% {100 * m[2]:>5.1f}% "
              f"{100 * m[3]:>5.1f}% {100 * m[4]:>5.1f}%   ratio to per-task: full grid "
              f"{m[1] / m[0]:.2f}x ({better}/{len(tasks)} tasks better), k=3 {m[2] / m[0]:.2f}x, "
              f"k=5 {m[3] / m[0]:.2f}x, k=9 {m[4] / m[0]:.2f}x")
    print(f"(done at {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
