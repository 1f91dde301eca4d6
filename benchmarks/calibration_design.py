"""Calibration designs on the published grids: how many runs, which ones, and what a family adds.

For every task of three published grids
  dmc40   dmc_bro_ablations.zip: 40 tasks (DMC 15, MetaWorld 15, MyoSuite 10) at utd
          {1,2,5,10,15} x 5 critic sizes, batch 128, 10 seeds; 5 thresholds from 40% to 80% of
          the task's best return (the best isotonic mean return over configurations);
  bro4    fitted_bs.zip: h1-crawl/pole/stand + humanoid-stand, utd {1,2,4,8} x widths
          128-2048 at their best batch (16-20 configs); the shipped 20 thresholds;
  simbav2 the SimbaV2 batch x utd x width grid, D_J at the grid batch nearest the fitted B~
          (as the shipped fits): utd {1,2,4,8} x 5 widths; the shipped 20 thresholds;
it fits the law on a subset of the configurations and predicts the configurations left out.
Error = mean relative error |D_pred - D_obs| / D_obs over the configurations not used, averaged
over thresholds, then over tasks; predictions are capped at the run length (an observed D never
exceeds it; without the cap one wild extrapolation dominates any mean; raw output has both).
The reference is the full per-task fit (the shipped method), leave-one-config-out (LOCO).

Designs (free per-task fit, calibration.design.subset_fit): `factorial` (the `reduced` preset's
stage 2, a 3 x 3 utd x width sub-grid spread over each axis; 2 x 2 = the corners), `corners+centre`,
`random` (mean of R draws), `D-opt`/`I-opt` (greedy + exchange on the law's Jacobian, averaged
over the OTHER tasks' fits of the family, so chosen before any of the task's runs).
Few-shot (calibration.design.few_shot_fit): exponents and threshold shape borrowed from the
median of the other tasks of the family (leave-one-task-out), per-task offsets fitted from
k <= 5 runs; shape and exponent deviations penalised with weights w_shape, w_exp (inf = held,
0 = free). Weights are selected by held-out families (for each dmc40 family, the weights best on
the other two; bro4 and simbav2 use the weights best on all of dmc40), never on the task scored.

Usage: python benchmarks/calibration_design.py [DATA_DIR] [--full] [--jobs 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import os
import platform
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration import design as D  # noqa: E402
from calibration.archives import read_runs  # noqa: E402
from calibration.batch import best_batch_sizes, fit_batch_law  # noqa: E402
from calibration.catalogue import TARGET_RANGES  # noqa: E402
from calibration.curves import data_table, isotonic_curve, thresholds  # noqa: E402
from calibration.fitting import (  # noqa: E402
    ALPHA_BOUNDS,
    fit_laws,
    leave_one_config_out,
    loglinear_leave_one_config_out,
)

METHOD = D.DESIGN_METHOD
KS = (3, 4, 5, 6, 9, 12)
FEW_KS = (3, 4, 5)
SHAPE_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0, np.inf)
EXP_WEIGHTS = (0.1, 1.0, np.inf)


# ------------------------------------------------------------------------------------------
# Grids


def family_of(env: str) -> str:
    if env.endswith("-v2-goal-observable"):
        return "metaworld"
    if env.startswith("myo-"):
        return "myosuite"
    return "dmc"


def dmc40(data_dir: Path) -> dict:
    runs = read_runs(data_dir / "dmc_bro_ablations.zip")
    out = {}
    for env in sorted({r.env for r in runs}):
        rs = [r for r in runs if r.env == env]
        best = max(isotonic_curve(np.nanmean(r.values["return"], axis=1))[-1] for r in rs)
        out[env] = dict(table=data_table(rs, np.linspace(0.4, 0.8, 5) * best, n_boot=0),
                        family=family_of(env), grid="dmc40")
    return out


def bro4(data_dir: Path) -> dict:
    out = {}
    for env in ("h1-crawl-v0", "h1-pole-v0", "h1-stand-v0", "humanoid-stand"):
        rs = [r for r in read_runs(data_dir / "fitted_bs.zip", env=env)
              if r.tags.get("passive_critic", "False") == "False"]
        out[f"bro/{env}"] = dict(table=data_table(rs, thresholds(*TARGET_RANGES[env]), n_boot=0),
                                 family="bro-h1", grid="bro4")
    return out


def simbav2(data_dir: Path) -> tuple[dict, list[str]]:
    """The shipped fits' tables (batch nearest the fitted B~, 100 resamples pick the best
    batch), and a check of the factorised stage-1 design for B~ itself."""
    path = data_dir / "simbav2_model_scaling_linear20_with_base.zip"
    out, notes = {}, []
    for env in ("h1-crawl-v0", "h1-stand-v0"):
        runs = read_runs(path, env=env)
        targets = thresholds(*TARGET_RANGES[env])
        by_batch: dict[float, list] = defaultdict(list)
        for r in runs:
            by_batch[r.batch_size].append(r)
        tables = {b: data_table(rs, targets, 100, 0) for b, rs in by_batch.items()}
        utd, params, best = best_batch_sizes(tables)
        coef_b, err_full = fit_batch_law(utd, params, best)
        from advisor.laws import batch_size
        fitted_b = np.asarray(batch_size(utd, params, *coef_b))
        batches = np.array(sorted(tables))
        chosen = [batches[np.argmin(np.abs(np.log(batches) - np.log(fb)))] for fb in fitted_b]
        picked = [next(r for r in by_batch[b] if r.utd == u and r.params == p)
                  for b, u, p in zip(chosen, utd, params)]
        out[f"simbav2/{env}"] = dict(table=data_table(picked, targets, n_boot=0),
                                     family="simbav2", grid="simbav2")
        # Stage 1 of the reduced design: batch x utd at the middle width, batch x width at the
        # middle utd (the preset's anchors), B~ fitted there and scored on every config.
        us, ps = np.unique(utd), np.unique(params)
        anchor_p, anchor_u = ps[len(ps) // 2], us[len(us) // 2 - 1]
        s1 = (params == anchor_p) | (utd == anchor_u)
        coef_s1, _ = fit_batch_law(utd[s1], params[s1], best[s1])
        pred_s1 = np.asarray(batch_size(utd, params, *coef_s1))
        err_s1 = float(np.mean(np.abs(pred_s1 - best) / best))
        notes.append(f"simbav2/{env} B~: full 3-D grid fit {100 * err_full:.1f}% mean relative "
                     f"error over {len(utd)} configs ({4 * len(utd)} runs); stage-1 factorised "
                     f"design ({int(s1.sum())} configs, {4 * int(s1.sum())} runs) "
                     f"{100 * err_s1:.1f}%")
    return out, notes


# ------------------------------------------------------------------------------------------
# Per-task work (run in worker processes)


def capped_error(table, fit, test) -> tuple[float, float]:
    pred = fit.predict(table.utd[test], table.params[test])
    capped = np.minimum(pred, table.horizon[test][:, None])
    return (D.threshold_mean_error(capped, table.data[test]),
            D.threshold_mean_error(pred, table.data[test]))


def reference_job(job) -> dict:
    name, table = job
    full = fit_laws(table, METHOD)
    loco = leave_one_config_out(table, METHOD, full)
    ll = loglinear_leave_one_config_out(table)
    ins = full.predict(table.utd, table.params)
    cap = np.minimum(loco, table.horizon[:, None])
    return dict(name=name, full=full,
                loco=D.threshold_mean_error(cap, table.data),
                loco_raw=D.threshold_mean_error(loco, table.data),
                loglin=D.threshold_mean_error(np.minimum(ll, table.horizon[:, None]), table.data),
                loglin_points=int(np.isfinite(ll).sum()), points=int(np.isfinite(table.data).sum()),
                in_sample=D.threshold_mean_error(ins, table.data),
                alpha=float(full.coef[0, 2]), beta=float(full.coef[0, 4]))


def _try(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except D.DesignError:
        return None


def design_job(job) -> list[dict]:
    name, table, others, n_random, quick = job  # others: list of (table, full fit) of family
    n = len(table.utd)
    m = table.data.shape[1]
    cen = D.family_centring([t for t, _ in others])
    thetas = [cen.theta(f.coef) for _, f in others]
    prior = D.median_prior([f for _, f in others], cen)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    recs = []

    def score(design, k, model, variant, keep, fit):
        if fit is None:  # no run of the design reached a threshold: predict "not within the run"
            e = raw = D.threshold_mean_error(
                np.repeat(table.horizon[~keep][:, None], m, axis=1), table.data[~keep])
            recs.append(dict(name=name, design=design, k=k, model=model, variant=variant, err=e,
                             raw=raw, failed=True))
            return
        e, raw = capped_error(table, fit, ~keep)
        recs.append(dict(name=name, design=design, k=k, model=model, variant=variant, err=e,
                         raw=raw))

    def mask(idx):
        keep = np.zeros(n, bool)
        keep[idx] = True
        return keep

    # Free per-task fits on designed subsets.
    designs = {"factorial 3x3": D.factorial_design(table.utd, table.params, 3, 3),
               "factorial 2x2 (corners)": D.factorial_design(table.utd, table.params, 2, 2),
               "corners+centre": D.corner_design(table.utd, table.params)}
    for k in KS:
        if k >= n - 2:
            continue
        designs[f"D-opt k={k}"] = D.optimal_design(k, table.utd, table.params, thetas, m, cen,
                                                   model="free", criterion="D")
        if not quick:
            designs[f"I-opt k={k}"] = D.optimal_design(k, table.utd, table.params, thetas, m,
                                                       cen, model="free", criterion="I")
    for dname, idx in designs.items():
        keep = mask(idx)
        score(dname.split(" k=")[0], int(keep.sum()), "free", "", keep,
              _try(D.subset_fit, table, keep, METHOD))
    randoms = {}
    for k in KS:
        if k >= n - 2:
            continue
        randoms[k] = [D.random_design(k, n, rng) for _ in range(n_random)]
        for r, idx in enumerate(randoms[k]):
            keep = mask(idx)
            score("random", k, "free", f"draw {r}", keep, _try(D.subset_fit, table, keep, METHOD))

    # Few-shot fits with the family prior (leave-one-task-out).
    few = {"corners+centre": D.corner_design(table.utd, table.params)}
    for k in FEW_KS:
        few[f"D-opt k={k}"] = D.optimal_design(k, table.utd, table.params, thetas, m, cen,
                                               model="prior", criterion="D")
        few[f"I-opt k={k}"] = D.optimal_design(k, table.utd, table.params, thetas, m, cen,
                                               model="prior", criterion="I")
        for r, idx in enumerate(randoms.get(k, [])[:2]):
            few[f"random k={k} draw {r}"] = idx
    weights = list(itertools.product(SHAPE_WEIGHTS, EXP_WEIGHTS))
    if quick:
        weights = [(0.0, np.inf), (np.inf, np.inf), (0.1, 0.1), (0.3, 0.3)]
    for dname, idx in few.items():
        keep = mask(idx)
        label = dname.split(" k=")[0]
        for ws, we in weights:
            fit = _try(D.few_shot_fit, table, keep, prior, METHOD, shape_weight=ws,
                       exponent_weight=we)
            score(label, int(keep.sum()), "few-shot", f"{ws:g}/{we:g}", keep, fit)
    # Pooled (joint) family prior at one setting, for comparison with the median prior.
    pooled = D.pooled_fit([t for t, _ in others], METHOD, fits=[f for _, f in others]).prior
    for dname in ("corners+centre", "D-opt k=3", "D-opt k=5"):
        keep = mask(few[dname])
        for ws, we in ((0.0, np.inf), (np.inf, np.inf), (0.1, 0.1)):
            fit = _try(D.few_shot_fit, table, keep, pooled, METHOD, shape_weight=ws,
                       exponent_weight=we)
            score(dname.split(" k=")[0], int(keep.sum()), "few-shot pooled", f"{ws:g}/{we:g}",
                  keep, fit)
    return recs


def _map(fn, jobs, n_jobs):
    if n_jobs <= 1:
        return [fn(j) for j in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fn, jobs, chunksize=1))


# ------------------------------------------------------------------------------------------
# Report


def pct(x: float) -> str:
    return f"{100 * x:.1f}%" if np.isfinite(x) else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?",
                    default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--full", action="store_true",
                    help="every prior weight (18), I-optimal free designs and 6 random draws "
                         "(the committed results; about 28 min on 2 busy cores, else about 12)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", help="raw output file (default benchmarks/results/"
                                  "calibration-design-cpu-<date>.txt)")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    out_path = Path(args.out) if args.out else (
        Path(__file__).resolve().parent / "results"
        / f"calibration-design-cpu-{_dt.date.today().isoformat()}.txt")
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    t0 = time.perf_counter()
    say(f"# calibration designs, {_dt.datetime.now().isoformat(timespec='seconds')}")
    say(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, jobs {args.jobs}, "
        f"{'full' if args.full else 'quick'} run")
    say(f"method: {METHOD.describe()}")
    tasks = dmc40(data_dir)
    tasks.update(bro4(data_dir))
    simba, s1_notes = simbav2(data_dir)
    tasks.update(simba)
    say(f"grids read in {time.perf_counter() - t0:.0f}s: " + ", ".join(
        f"{g} {sum(v['grid'] == g for v in tasks.values())} tasks"
        for g in ("dmc40", "bro4", "simbav2")))

    refs = {r["name"]: r for r in _map(reference_job, [(k, v["table"]) for k, v in tasks.items()],
                                       args.jobs)}
    say(f"reference fits and LOCO done at {time.perf_counter() - t0:.0f}s")
    n_random = 6 if args.full else 3
    jobs = []
    for name, v in tasks.items():
        others = [(tasks[o]["table"], refs[o]["full"]) for o in tasks
                  if o != name and tasks[o]["family"] == v["family"]]
        jobs.append((name, v["table"], others, n_random, not args.full))
    recs = [r for rs in _map(design_job, jobs, args.jobs) for r in rs]
    say(f"designs and few-shot fits done at {time.perf_counter() - t0:.0f}s")

    # Per-task reference and validation table.
    say()
    say("## Per task: full per-task fit (reference) and whether its law validates")
    say("LOCO / log-linear LOCO: capped threshold-mean relative error; 'validates' = LOCO below "
        f"the log-linear baseline and both exponents inside the fit bounds {ALPHA_BOUNDS} "
        "(not pinned at a bound)")
    say(f"{'task':<38} {'family':<10} {'n':>3} {'in-sample':>9} {'LOCO':>7} {'raw':>8} "
        f"{'loglin':>7} {'alpha':>6} {'beta':>6}  validates")
    for name, v in tasks.items():
        r = refs[name]
        bounded = all(ALPHA_BOUNDS[0] * 1.01 < x < ALPHA_BOUNDS[1] * 0.99
                      for x in (r["alpha"], r["beta"]))
        beats = np.isfinite(r["loglin"]) and r["loco"] < r["loglin"]
        why = [] if beats else ["LOCO >= log-linear" if np.isfinite(r["loglin"])
                                else "log-linear undefined"]
        if not bounded:
            why.append("exponent at a bound")
        r["validates"] = not why
        say(f"{name:<38} {v['family']:<10} {len(v['table'].utd):>3} {pct(r['in_sample']):>9} "
            f"{pct(r['loco']):>7} {pct(r['loco_raw']):>8} {pct(r['loglin']):>7} "
            f"{r['alpha']:>6.2f} {r['beta']:>6.2f}  "
            f"{'yes' if not why else 'no: ' + ', '.join(why)}")

    # Aggregates.
    def tasks_of(grid, fam=None):
        return [n for n, v in tasks.items()
                if v["grid"] == grid and (fam is None or v["family"] == fam)]

    by = defaultdict(dict)  # (design, k, model, variant) -> task -> errors (mean over draws)
    for r in recs:
        variant = r["variant"] if not r["variant"].startswith("draw") else ""
        key = (r["design"], r["k"], r["model"], variant)
        by[key].setdefault(r["name"], []).append((r["err"], r["raw"]))
    agg = {key: {t: np.mean(v, axis=0) for t, v in d.items()} for key, d in by.items()}

    def mean_over(key, names, col=0):
        vals = [agg[key][t][col] for t in names if t in agg.get(key, {})]
        return float(np.mean(vals)) if len(vals) == len(names) else float("nan")

    def ref_mean(names, col="loco"):
        return float(np.mean([refs[t][col] for t in names]))

    # Few-shot weights selected by held-out families.
    fam_sets = {"dmc": tasks_of("dmc40", "dmc"), "metaworld": tasks_of("dmc40", "metaworld"),
                "myosuite": tasks_of("dmc40", "myosuite")}
    weight_keys = sorted({k[3] for k in agg if k[2] == "few-shot"})

    def select(design, k, train):
        cands = [(mean_over((design, k, "few-shot", w), train), w) for w in weight_keys]
        cands = [c for c in cands if np.isfinite(c[0])]
        return min(cands)[1] if cands else None

    say()
    say("## Designs (free per-task fit) and few-shot fits, by grid")
    say("error on the configurations not used, capped, mean over task x threshold; ratio = "
        "error / the full per-task fit's LOCO error on the same tasks")
    rows = []
    few_designs = ["corners+centre", "D-opt", "I-opt", "random"]
    for grid, groups in (("dmc40", [None, "dmc", "metaworld", "myosuite"]),
                         ("bro4", [None]), ("simbav2", [None])):
        for fam in groups:
            names = tasks_of(grid, fam)
            n_cfg = int(np.median([len(tasks[t]["table"].utd) for t in names]))
            label = f"{grid} ({n_cfg})" if fam is None else f"{grid}/{fam}"
            ref = ref_mean(names)
            rows.append((label, "full per-task fit, LOCO (reference)", n_cfg - 1, ref, ref,
                         ref_mean(names, "loco_raw")))
            for key in sorted({k[:2] for k in agg if k[2] == "free"}, key=lambda x: (x[1], x[0])):
                e = mean_over((*key, "free", ""), names)
                if np.isfinite(e):
                    rows.append((label, f"{key[0]}, free fit", key[1], e, ref,
                                 mean_over((*key, "free", ""), names, 1)))
            few_keys = sorted({k[:2] for k in agg if k[2] == "few-shot"},
                              key=lambda x: (x[1], few_designs.index(x[0])))
            for design, k in few_keys:
                for fixed, wname in (("0/inf", "exponents borrowed"),
                                     ("inf/inf", "exponents + shape borrowed"),
                                     ("0.1/0.1", "shrunk to family (w 0.1/0.1)")):
                    e = mean_over((design, k, "few-shot", fixed), names)
                    if np.isfinite(e):
                        rows.append((label, f"few-shot {design}, {wname}", k, e, ref,
                                     mean_over((design, k, "few-shot", fixed), names, 1)))
                # weights selected on held-out families
                if grid == "dmc40":
                    parts = []
                    for f, fnames in fam_sets.items():
                        if fam is not None and f != fam:
                            continue
                        train = [t for g, tn in fam_sets.items() if g != f for t in tn]
                        w = select(design, k, train)
                        if w is None:
                            continue
                        parts += [(agg[(design, k, "few-shot", w)][t], w) for t in fnames]
                    if parts:
                        e = float(np.mean([p[0][0] for p in parts]))
                        ws = sorted({p[1] for p in parts})
                        rows.append((label, f"few-shot {design}, weights from held-out "
                                            f"families ({', '.join(ws)})", k, e, ref,
                                     float(np.mean([p[0][1] for p in parts]))))
                else:
                    w = select(design, k, tasks_of("dmc40"))
                    if w is not None:
                        e = mean_over((design, k, "few-shot", w), names)
                        rows.append((label, f"few-shot {design}, weights from dmc40 ({w})", k,
                                     e, ref, mean_over((design, k, "few-shot", w), names, 1)))
            for key in sorted({k for k in agg if k[2] == "few-shot pooled"}):
                e = mean_over(key, names)
                if np.isfinite(e):
                    rows.append((label, f"few-shot {key[0]}, pooled prior {key[3]}", key[1], e,
                                 ref, mean_over(key, names, 1)))
    say(f"{'grid':<18} {'design':<72} {'k':>3} {'error':>7} {'ref':>7} {'ratio':>6} "
        f"{'uncapped':>9}")
    for label, what, k, e, ref, raw in rows:
        say(f"{label:<18} {what:<72} {k:>3} {pct(e):>7} {pct(ref):>7} {e / ref:>5.2f}x "
            f"{pct(raw):>9}")

    fails = defaultdict(int)
    for r in recs:
        if r.get("failed"):
            fails[(r["design"], r["k"], r["model"])] += 1
    say()
    say("designs whose runs reached no threshold (predicted 'not within the run'): "
        + (", ".join(f"{d} k={k} {m}: {c}" for (d, k, m), c in sorted(fails.items())) or "none"))
    say()
    say("## Stage 1 (B~) of the factorised design on the SimbaV2 batch grid")
    for note in s1_notes:
        say(note)

    say()
    say("## All few-shot weights (w_shape/w_exp), dmc40, mean error (capped)")
    for design, k in sorted({k[:2] for k in agg if k[2] == "few-shot"},
                            key=lambda x: (few_designs.index(x[0]), x[1])):
        vals = [(w, mean_over((design, k, "few-shot", w), tasks_of("dmc40")))
                for w in weight_keys]
        vals = [v for v in vals if np.isfinite(v[1])]
        if vals:
            say(f"{design:<15} k={k}: " + "  ".join(f"{w} {pct(e)}" for w, e in vals))

    say()
    say("## Markdown (README)")
    say("Error on the configurations not used (capped at the run length), mean over task x "
        "threshold; the reference is the full per-task fit's leave-one-config-out error.")
    say()
    say("| grid (configs) | design | runs k | error | full-grid LOCO | ratio |")
    say("|---|---|---|---|---|---|")
    for label, what, k, e, ref, raw in rows:
        if "/" in label or "pooled" in what or "I-opt, free" in what:
            continue
        if what.startswith("random") and k not in (5, 9):
            continue
        if what.startswith("few-shot") and not ("held-out" in what or "from dmc40" in what
                                               or "exponents borrowed" in what):
            continue
        if what.startswith("few-shot random"):
            continue
        say(f"| {label} | {what} | {k} | {pct(e)} | {pct(ref)} | {e / ref:.2f}x |")
    say()
    say(f"total {time.perf_counter() - t0:.0f}s")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
