"""Few-shot fits in the product: `advisor fit --prior` and `advisor calibrate --prior`.

A few-shot fit borrows from a family of fits of other tasks (calibration.design, evidence in
benchmarks/results/calibration-design-cpu-2026-11-26.txt and catalogue-check-cpu-2026-11-26.txt):

- the exponents alpha, beta: the family median, held;
- the threshold shape (how each law term changes from the lowest to the highest threshold):
  shrunk toward the family median with weight FEW_SHOT_SHAPE_WEIGHT;
- the 3 per-task offsets (D_min, utd term, params term): fitted freely from the task's runs.

The family is given as fit ids, fit files or a family name (calibration.catalogue.FAMILIES,
e.g. `dmc`); it must hold at least MIN_PRIOR_FITS fits made with shared exponents: on the
published data, priors from families of 2-4 tasks did worse than a free fit.

The interval. With few configs the fit's own leave-one-config-out residuals are few and
optimistic (the prior did part of the fitting). So the interval is at least as wide as the
family's own few-shot error: each member task of the family is fitted few-shot from k of its
configurations (the D-optimal design `advisor plan --prior` would choose on its grid) with the
other members as the prior, and predicts its held-out configurations; the split-conformal
quantiles of those log residuals, pooled over tasks (finite-sample corrected over tasks), are
the family floor for k. The interval takes, level by level, the wider of that floor (k = the
fit's number of configs, at most FAMILY_KS[-1]) and the fit's own LOCO quantiles (used from
MIN_OWN_CONFIGS configs on). Family floors are computed from the members' run archives: stored
for the named families in calibration/families/<name>.json (`python -m calibration.prior
DATA_DIR` rewrites them), computed on the fly for any other set of fits whose archives are
found (next to the archive being fitted, or in $ADVISOR_DATA_DIR, folders separated by
os.pathsep as in PATH).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from advisor.errors import AdvisorError

#: Fewest fits a family prior may hold (families of 2-4 tasks did worse than a free fit).
MIN_PRIOR_FITS = 5
#: Fewest configurations a few-shot fit needs (3 offsets are fitted freely).
MIN_FEW_SHOT_CONFIGS = 3
#: From this many configurations on, the fit's own LOCO residuals also calibrate the interval.
MIN_OWN_CONFIGS = 5
#: Design sizes the family floor is computed for; larger fits use the last one (the few-shot
#: error falls with k, so this errs wide).
FAMILY_KS = tuple(range(3, 13))
FAMILY_DIR = Path(__file__).resolve().parent / "families"
FAMILY_DESIGN = ("D-optimal design of k configurations of the member's own grid for a few-shot "
                 "fit, averaged over the other members' laws (as `advisor plan --prior`)")


class PriorError(AdvisorError):
    """A --prior that cannot be used (unknown fit, too small a family, no calibration)."""


@dataclass(frozen=True)
class Prior:
    """A resolved family prior: the fits (advisor.Fit) and the name given, if a family."""

    fits: tuple
    family: str | None = None
    data_dirs: tuple[Path, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.fits]

    def members(self) -> list[tuple[str, str]]:
        return sorted((f.id, f.model.content_hash) for f in self.fits)

    def record(self):
        """The provenance record (advisor.fitfile.Prior)."""
        from advisor.fitfile import Prior as PriorRecord
        from advisor.fitfile import PriorFit
        from calibration.design import FEW_SHOT_EXPONENT_WEIGHT, FEW_SHOT_SHAPE_WEIGHT

        held = "held at the family median" if np.isinf(FEW_SHOT_EXPONENT_WEIGHT) else \
            f"shrunk with weight {FEW_SHOT_EXPONENT_WEIGHT:g}"
        return PriorRecord(
            family=self.family, fits=[PriorFit(id=i, content_hash=h) for i, h in self.members()],
            method=(f"few-shot fit (calibration.design.few_shot_fit): exponents {held}; "
                    "threshold shape shrunk toward the family median with weight "
                    f"{FEW_SHOT_SHAPE_WEIGHT:g}; the 3 per-task offsets fitted freely; family "
                    f"of {len(self.fits)} fits, each resampled to the task's thresholds evenly "
                    "over its own target range"))

    def family_prior(self, m: int):
        """calibration.design.FamilyPrior at m thresholds (median over the fits)."""
        return family_prior(self.fits, m)

    def floor(self, k: int):
        """calibration.intervals.Floor for a few-shot fit on k configs."""
        from calibration.intervals import Floor

        cal = self.calibration()
        kk = str(min(max(k, FAMILY_KS[0]), FAMILY_KS[-1]))
        row = cal["by_k"][kk]
        name = self.family or f"{len(self.fits)} fits"
        return Floor(
            levels=tuple(cal["levels"]), log_low=tuple(row["log_low"]),
            log_high=tuple(row["log_high"]), min_own=MIN_OWN_CONFIGS,
            coverage={"prior_family_leave_one_task_out": row["coverage_leave_one_task_out"]},
            note=(f"the few-shot error of the prior family ({name}): split conformal on the log "
                  f"residuals of each of its {cal['n_tasks']} tasks fitted few-shot from {kk} "
                  "configs (D-optimal design) with the others as prior, on its held-out "
                  "configs"))

    @cached_property
    def _calibration(self) -> dict:
        stored = _stored_calibration(self.members())
        if stored is not None:
            return stored
        tables = member_tables(self.fits, self.data_dirs)
        return family_calibration(self.fits, tables)

    def calibration(self) -> dict:
        """The family floors (stored, or computed once from the members' archives)."""
        return self._calibration


def load_prior_fit(spec: str, error=None):
    """One --prior fit (id or file); a spec that is neither says so in one line, naming the
    family it may have meant (--prior also takes a family name)."""
    import difflib

    import advisor
    from calibration.catalogue import FAMILIES

    try:
        return advisor.load_fit(spec)
    except AdvisorError as exc:
        close = difflib.get_close_matches(spec, list(FAMILIES), n=1, cutoff=0.6)
        hint = (f"; or did you mean the family {close[0]!r}?" if close
                else f"; --prior also takes a family name ({', '.join(sorted(FAMILIES))})")
        raise (error or PriorError)(f"--prior {spec}: {exc}{hint}") from None


def resolve_prior(specs, data_dirs=(), own_id: str | None = None) -> Prior | None:
    """Fit ids, fit files or one family name -> Prior (None for no specs). Raises PriorError.
    `own_id`: the id of the fit the prior is for, which may not be one of its fits."""
    from calibration.catalogue import FAMILIES

    specs = list(specs or ())
    if not specs:
        return None
    family = None
    ids: list[str] = []
    for spec in specs:
        if spec in FAMILIES:
            if len(specs) > 1:
                raise PriorError(f"--prior {spec} names a family; give it alone, or list fits"
                                 + (f" (it is given {specs.count(spec)} times)"
                                    if specs.count(spec) > 1 else ""))
            family = spec
            ids += FAMILIES[spec]
        else:
            ids.append(spec)
    fits = [load_prior_fit(i, PriorError) for i in ids]
    seen = {}
    for f in fits:
        if f.id in seen:
            raise PriorError(f"--prior names fit {f.id} twice")
        seen[f.id] = f
    if own_id is not None and own_id in seen:  # its own runs would set its exponents
        if family is not None:
            others = " ".join(f"--prior {i}" for i in ids if i != own_id)
            raise PriorError(f"--prior {family} holds {own_id}, the fit being made: a family "
                             f"prior is fits of other tasks; name the others instead: {others}")
        raise PriorError(f"--prior names {own_id}, the fit being made: a family prior is fits "
                         "of other tasks; leave it out")
    if len(fits) < MIN_PRIOR_FITS:
        raise PriorError(
            f"a family prior needs at least {MIN_PRIOR_FITS} fits of other tasks, got "
            f"{len(fits)} (families of 2-4 tasks predicted worse than a free fit); name a family "
            f"({', '.join(sorted(FAMILIES))}) or list more fits")
    for f in fits:
        al = [w.alpha for w in f.model.data_to_target.laws]
        be = [w.beta for w in f.model.data_to_target.laws]
        if np.ptp(al) > 1e-9 * max(al) or np.ptp(be) > 1e-9 * max(be):
            raise PriorError(f"--prior {f.id} has exponents that vary across thresholds; a "
                             "family prior needs fits made with shared exponents")
    dirs = [Path(d) for d in data_dirs]
    # Folders separated by os.pathsep, as PATH: your CSV's folder and the published archives'.
    dirs += [Path(d) for d in os.environ.get("ADVISOR_DATA_DIR", "").split(os.pathsep) if d]
    return Prior(tuple(fits), family, tuple(dirs))


def _fit_coef(fit, m: int) -> np.ndarray:
    """(m, 5) coefficients of an advisor.Fit at m thresholds evenly over its target range."""
    return np.array([fit.coefficients(t) for t in np.linspace(fit.target_min, fit.target_max, m)])


def family_prior(fits, m: int):
    """The median prior (calibration.design.median_prior) of fit files at m thresholds, in a
    centring at the mean log-midpoint of their domains."""
    from calibration.design import Centring, median_prior
    from calibration.fitting import LawFit, Method

    coefs = [_fit_coef(f, m) for f in fits]
    s_mid = [np.log(f.model.domain.utd.low * f.model.domain.utd.high) / 2 for f in fits]
    n_mid = [np.log(f.model.domain.params.low * f.model.domain.params.high) / 2 for f in fits]
    log_d = []
    for c, s, n in zip(coefs, s_mid, n_mid):
        d = c[:, 0] + (c[:, 1] / np.exp(s)) ** c[:, 2] + (c[:, 3] / np.exp(n)) ** c[:, 4]
        log_d.append(np.log(d).mean())
    cen = Centring(float(np.mean(s_mid)), float(np.mean(n_mid)), float(np.mean(log_d)))
    laws = [LawFit(np.arange(m, dtype=float), c, np.zeros(0), Method()) for c in coefs]
    return median_prior(laws, cen, names=tuple(f.id for f in fits))


def few_shot(table, prior, keep=None, data=None):
    """Few-shot LawFit of `table` (optionally on configs `keep`, or replacement `data` such as
    a bootstrap replicate) with calibration.design.FamilyPrior `prior`, the default weights."""
    from calibration.design import few_shot_fit

    if data is not None:
        table = replace(table, data=data)
    keep = np.ones(len(table.utd), bool) if keep is None else keep
    return few_shot_fit(table, keep, prior)


# --------------------------------------------------------------------------------------------
# The family floor: leave-one-task-out few-shot residuals


def member_tables(fits, data_dirs) -> list:
    """Data-to-target tables of the fits' own runs at their own thresholds (no bootstrap), read
    from the archives their provenance names (sha256 checked), looked up in `data_dirs`."""
    from calibration.archives import nearest_batch_runs, read_runs
    from calibration.curves import data_table

    tables = []
    for f in fits:
        prov = f.model.provenance
        try:
            words = shlex.split(prov.command)
            archive_name = Path(words[2]).name
            env = words[words.index("--env") + 1]
            sha = prov.source.split("sha256 ")[1].rstrip(")")
        except (ValueError, IndexError):
            raise PriorError(f"no stored calibration for this prior, and {f.id} does not say "
                             "which run archive it was fitted from; name a family "
                             "(e.g. --prior dmc)") from None
        # the first folder whose file of that name has the recorded sha256, as a search path
        found = [Path(d) / archive_name for d in data_dirs if (Path(d) / archive_name).is_file()]
        path = next((x for x in found if _sha256(x) == sha), None)
        if path is None:
            where = (f"is not in {', '.join(str(d) for d in data_dirs)}" if data_dirs
                     else "was looked for in no folder")
            if found:
                where += (f" (found changed: {', '.join(str(x) for x in found)}, "
                          "another sha256)")
            raise PriorError(
                f"no stored calibration for this prior, and the run archive of {f.id} "
                f"({archive_name}, sha256 {sha[:12]}...) {where}: set "
                "ADVISOR_DATA_DIR to the folder that holds it, or name a family (e.g. --prior "
                "dmc)")
        step_limit = None
        if path.suffix.lower() == ".csv":  # a fit of a tidy CSV, read as `advisor fit` did
            from calibration.tidy import read_fit_csv

            runs = read_fit_csv(path, f)
            step_limit = max(float(r.steps["return"][-1]) for r in runs)
        else:
            runs = read_runs(path, env=env)
        targets = np.array([w.target for w in f.model.data_to_target.laws])
        if runs[0].layout in ("simbav2", "csv"):  # a batch grid: the runs nearest B~, as fitted
            runs = nearest_batch_runs(runs, lambda u, n, f=f: float(f.batch_size(u, n)))
        elif runs[0].layout == "bro":
            runs = [r for r in runs if r.tags.get("passive_critic", "False") == "False"]
        tables.append(data_table(runs, targets, n_boot=0, step_limit=step_limit))
    return tables


def _sha256(path: Path) -> str:
    from calibration.build import _sha256 as sha

    return sha(path)


def family_residuals(fits, tables, ks=FAMILY_KS) -> dict[int, list[np.ndarray]]:
    """{k: [log residuals of member t's held-out configs]} of few-shot fits of each member from
    the k configs `advisor plan --prior` would choose on its grid, the other members as prior."""
    from calibration.design import (
        PLAN_THRESHOLDS,
        Centring,
        DesignError,
        fit_theta,
        optimal_design,
    )

    out: dict[int, list[np.ndarray]] = {k: [] for k in ks}
    for t, (fit, table) in enumerate(zip(fits, tables)):
        others = [f for i, f in enumerate(fits) if i != t]
        prior = family_prior(others, table.data.shape[1])
        thetas = [fit_theta(f)[0] for f in others]
        u, p = table.utd, table.params
        cen = Centring(float(np.log(u.min() * u.max()) / 2), float(np.log(p.min() * p.max()) / 2),
                       0.0)
        for k in ks:
            if k >= len(u):
                continue
            idx = optimal_design(k, u, p, thetas, PLAN_THRESHOLDS, cen, model="prior")
            keep = np.zeros(len(u), bool)
            keep[idx] = True
            try:
                law = few_shot(table, prior, keep)
            except DesignError:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.log(table.data[~keep] / law.predict(u[~keep], p[~keep]))
            out[k].append(r[np.isfinite(r)])
    return out


def family_calibration(fits, tables, ks=FAMILY_KS) -> dict:
    """The family floor for each k (module docstring), with its leave-one-task-out coverage
    at 80% (quantiles from the other tasks' residuals, scored on the task's own)."""
    from calibration.intervals import CHECK_LEVEL, LEVELS, _round, conformal_quantiles

    res = family_residuals(fits, tables, ks)
    by_k = {}
    for k, per_task in res.items():
        if len(per_task) < MIN_PRIOR_FITS - 1:
            continue
        pooled = np.concatenate(per_task)
        T = len(per_task)
        bounds = [conformal_quantiles(pooled, lv, T) for lv in LEVELS]
        hits = []
        for t in range(T):
            rest = np.concatenate([r for i, r in enumerate(per_task) if i != t])
            lo, hi = conformal_quantiles(rest, CHECK_LEVEL, T - 1)
            hits.append((per_task[t] >= lo) & (per_task[t] <= hi))
        err = np.abs(np.expm1(-pooled))  # |D_pred - D_obs| / D_obs
        by_k[str(k)] = dict(log_low=[_round(b[0]) for b in bounds],
                            log_high=[_round(b[1]) for b in bounds], n_residuals=int(pooled.size),
                            coverage_leave_one_task_out=_round(float(np.concatenate(hits).mean())),
                            mean_relative_error=_round(float(err.mean())))
    if not by_k:
        raise PriorError("the prior's tasks have too few configurations to calibrate a few-shot "
                         "interval")
    last = by_k[max(by_k, key=int)]
    for k in ks:  # grids too small for a k: the largest k calibrated (errs wide)
        by_k.setdefault(str(k), last)
    from calibration.design import FEW_SHOT_EXPONENT_WEIGHT, FEW_SHOT_SHAPE_WEIGHT

    return dict(members=[dict(id=f.id, content_hash=f.model.content_hash)
                         for f in sorted(fits, key=lambda f: f.id)],
                n_tasks=len(fits), design=FAMILY_DESIGN,
                shape_weight=FEW_SHOT_SHAPE_WEIGHT,
                exponent_weight=None if np.isinf(FEW_SHOT_EXPONENT_WEIGHT) else
                FEW_SHOT_EXPONENT_WEIGHT,
                levels=list(LEVELS), by_k=by_k)


def _stored_calibration(members: list[tuple[str, str]]) -> dict | None:
    """The stored family calibration whose members are `members`, or None; a file of
    calibration/families/ that is not one (damaged, or put there by hand) is one line."""
    from advisor.files import load_json, read_limited

    for path in sorted(FAMILY_DIR.glob("*.json")):
        doc = load_json(read_limited(path, "family calibration", PriorError),
                        f"family calibration {path}", PriorError)
        try:
            stored = sorted((m["id"], m["content_hash"]) for m in doc["members"])
        except (KeyError, TypeError):
            raise PriorError(f"family calibration {path} has no members list of ids and content "
                             "hashes; remake it with `python -m calibration.prior DATA_DIR`"
                             ) from None
        if stored == members:
            return doc
    return None


def write_family_calibrations(data_dir, fits_dir=None, out_dir=FAMILY_DIR) -> list[Path]:
    """Recompute calibration/families/<name>.json for every named family from the archives in
    `data_dir` (the members are the fits in `fits_dir`, default the installed ones)."""
    import advisor
    from calibration.atomic import atomic_save
    from calibration.catalogue import FAMILIES

    paths = []
    for name, ids in FAMILIES.items():
        fits = [advisor.load_fit(str(Path(fits_dir) / f"{i}.json") if fits_dir else i)
                for i in ids]
        cal = family_calibration(fits, member_tables(fits, [Path(data_dir)]))
        cal = dict(family=name, **cal)
        path = Path(out_dir) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(path, text=json.dumps(cal, indent=1) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    import sys

    for p in write_family_calibrations(sys.argv[1] if len(sys.argv) > 1 else
                                       Path(__file__).resolve().parents[2] / "shared" / "data"):
        print(f"wrote {p}")
