"""Run archives -> fit files. One function a fit: `build_fit`; `regenerate` does every shipped
fit (calibration.catalogue); `make_fit_file` assembles a fit file from a data-to-target table."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import advisor
from advisor.errors import AdvisorError
from advisor.fitfile import (
    FIT_ID_PATTERN,
    Architecture,
    BatchSizeLaw,
    Bootstrap,
    ComputeDefinition,
    DataLaw,
    DataToTarget,
    Domain,
    FitFile,
    GoodnessOfFit,
    PositiveRange,
    Provenance,
    Range,
    write_fit_file,
)
from calibration.architectures import bronet_params_coefficients, simbav2_coefficients
from calibration.archives import nearest_batch_runs, read_runs
from calibration.batch import best_batch_sizes, fit_batch_law, tables_by_batch
from calibration.catalogue import (
    DELTA,
    DMC_DELTA,
    INPUT_DIM,
    PUBLISHED_BATCH,
    TARGET_RANGES,
    catalogue,
)
from calibration.curves import DataTable, data_table, thresholds
from calibration.intervals import calibrate_interval
from calibration.fitting import (
    LawFit,
    Method,
    bootstrap_fits,
    fit_laws,
    leave_one_config_out,
    loglinear_leave_one_config_out,
    relative_errors,
)

#: The D_J method shipped fits use; chosen by leave-one-config-out error (README, "Accuracy").
DEFAULT_METHOD = Method(shared_exponents=True, smoothness=0.1, censored=True, weighted=False)
N_BOOT = 100
BOOT_SEED = 0
LEARNING_RATE = 3e-4


class BuildError(AdvisorError):
    """Runs that cannot make a fit (unknown env settings, nothing reached a threshold)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _round_sig(x: np.ndarray, sig: int = 6) -> list:
    return np.vectorize(lambda v: float(f"{v:.{sig}g}"), otypes=[float])(x).tolist()


@dataclass
class Built:
    """A built fit with what went into it (for reports and tests)."""

    fit: FitFile
    table: DataTable
    laws: LawFit
    loco: np.ndarray


def build_fit(
    archive: str | Path, algorithm: str, env: str, *, method: Method = DEFAULT_METHOD,
    n_boot: int = N_BOOT, seed: int = BOOT_SEED, created: str | None = None,
    command: str | None = None, target_range: tuple[float, float] | None = None,
    delta: float | None = None, input_dim: int | None = None,
) -> Built:
    """Read `archive`, compute the data-to-target table of `env`, fit the laws, return the fit."""
    archive = Path(archive)
    notes: list[str] = []
    if not re.match(FIT_ID_PATTERN, f"{algorithm}/{env}"):
        raise BuildError(f"fit id {algorithm}/{env!s} is not usable: algorithm and env may hold "
                         "letters, digits, '.', '_' and '-' only (at most 100 each)")
    if archive.suffix.lower() == ".csv":
        return _build_from_csv(archive, algorithm, env, method=method, n_boot=n_boot, seed=seed,
                               created=created, command=command, target_range=target_range,
                               delta=delta, input_dim=input_dim)
    runs = read_runs(archive, env=env)
    layout = runs[0].layout
    j_range = target_range or TARGET_RANGES.get(env)
    if j_range is None:
        raise BuildError(f"no return range known for env {env!r}; pass target_range=(J_min, J_max)")
    targets = thresholds(*j_range)
    batch_relerr = None

    if layout == "simbav2":
        tables = tables_by_batch(runs, targets, n_boot, seed)
        utd, params, best = best_batch_sizes(tables)
        coef_b, batch_relerr = fit_batch_law(utd, params, best)
        batch = BatchSizeLaw(kind="law", source="fitted", a_b=coef_b[0], alpha_b=coef_b[1],
                             b_b=coef_b[2], beta_b=coef_b[3], relative_error=batch_relerr)
        # D_J at each config from the run whose batch is nearest the fitted B~ (in log).
        picked = nearest_batch_runs(runs, lambda u, n: advisor.laws.batch_size(u, n, *coef_b))
        table = data_table(picked, targets, n_boot, seed)
        arch = Architecture(description="SimbaV2 critic (reference.md parameter counts)",
                            coefficients=simbav2_coefficients(), width_multiple=64)
        notes.append("D_J per config uses the grid batch size nearest the fitted B~.")
    else:
        if layout == "bro":
            runs = [r for r in runs if r.tags.get("passive_critic", "False") == "False"]
            if not runs:
                raise BuildError(f"{archive} holds only runs with a passive critic for {env!r}; "
                                 "D_J needs runs without one")
        table = data_table(runs, targets, n_boot, seed)
        if layout == "dmc":
            batch = BatchSizeLaw(kind="fixed", source="fixed", a_b=float(runs[0].batch_size))
            notes.append(f"All runs used batch size {runs[0].batch_size:g}; the fit recommends it "
                         "and cannot say whether another is better.")
        elif env in PUBLISHED_BATCH:
            a_b, alpha_b, b_b, beta_b = PUBLISHED_BATCH[env]
            batch = BatchSizeLaw(kind="law", source="published", a_b=a_b, alpha_b=alpha_b,
                                 b_b=b_b, beta_b=beta_b)
            notes.append("B~ coefficients are paper A's (Appendix D.1): the raw batch grid is "
                         "not public.")
        else:
            raise BuildError(f"no batch-size law for {env!r}: the archive has one batch per "
                             "config and no published coefficients exist")
        dim = input_dim or INPUT_DIM.get(env)
        if dim is None:
            raise BuildError(f"no critic input size known for env {env!r}; pass input_dim")
        arch = Architecture(
            description=f"BroNet double critic, 2 residual blocks, 100 quantiles, input {dim}",
            coefficients=bronet_params_coefficients(dim), width_multiple=64)
        if layout == "dmc":
            notes.append("The DMC runs varied depth as well as width; widths are for the 2-block "
                         "BroNet critic with this task's input size.")

    fit, laws, loco = make_fit_file(
        table, fit_id=f"{algorithm}/{env}", batch=batch, arch=arch,
        delta=delta or DELTA.get(env, DMC_DELTA if layout == "dmc" else 1e11),
        provenance=Provenance(
            source=f"{archive.name} (sha256 {_sha256(archive)})",
            command=command or fit_command(archive, algorithm, env, f"{algorithm}-{env}.json",
                                           n_boot, created, target_range, delta, input_dim),
            project_version=advisor.__version__, method=method.describe(), notes=notes),
        method=method, n_boot=n_boot, seed=seed, created=created)
    return Built(fit, table, laws, loco)


def _build_from_csv(archive: Path, algorithm: str, env: str, *, method: Method, n_boot: int,
                    seed: int, created: str | None, command: str | None,
                    target_range: tuple[float, float] | None, delta: float | None,
                    input_dim: int | None) -> Built:
    """A fit from a tidy CSV of any codebase's runs (calibration.tidy)."""
    from calibration.calibrate import choose_targets
    from calibration.tidy import CsvError, read_csv_runs

    params_of = None
    if input_dim is not None:
        coef = bronet_params_coefficients(input_dim)
        params_of = lambda w: np.polyval(coef, w)  # noqa: E731
    runs = read_csv_runs(archive, env=env, params_of=params_of)
    notes = [f"runs from the tidy CSV {archive.name}"]
    pairs = {(r.width, r.params) for r in runs if r.width is not None}
    widths = sorted({w for w, _ in pairs})
    if input_dim is not None:
        arch = Architecture(
            description=f"BroNet double critic, 2 residual blocks, 100 quantiles, input {input_dim}",
            coefficients=bronet_params_coefficients(input_dim), width_multiple=64)
    elif len(widths) >= 3 and len(pairs) == len(widths):
        w, n = np.array(sorted(pairs), dtype=float).T
        coef = np.polyfit(w, n, 2)
        arch = Architecture(description="critic of the CSV's runs: params(width) fitted to its "
                            "width and params columns", coefficients=[float(c) for c in coef],
                            width_multiple=16 if max(widths) < 256 else 64)
    else:
        raise CsvError(f"cannot tell how critic width maps to params from {archive.name}: give "
                       "--input-dim (BroNet critic), or width and params columns with at least "
                       "3 widths")
    targets = thresholds(*target_range) if target_range else choose_targets(runs)
    if not target_range:
        notes.append(f"thresholds {targets[0]:.4g}-{targets[-1]:.4g} chosen from the data "
                     "(calibration.calibrate.choose_targets)")
    horizon = max(float(r.steps["return"][-1]) for r in runs)
    batches = sorted({r.batch_size for r in runs})
    if len(batches) == 1:
        batch = BatchSizeLaw(kind="fixed", source="fixed", a_b=float(batches[0]))
        notes.append(f"All runs used batch size {batches[0]:g}; the fit recommends it and cannot "
                     "say whether another is better.")
        table = data_table(runs, targets, n_boot, seed, step_limit=horizon)
    else:
        try:
            tables = tables_by_batch(runs, targets, n_boot, seed)
        except AdvisorError:
            raise CsvError(f"{archive.name} uses several batch sizes but not at every (utd, "
                           "params): run one batch size everywhere, or every batch size at every "
                           "(utd, params) so that B~ can be fitted") from None
        utd, params, best = best_batch_sizes(tables)
        coef_b, relerr = fit_batch_law(utd, params, best)
        batch = BatchSizeLaw(kind="law", source="fitted", a_b=coef_b[0], alpha_b=coef_b[1],
                             b_b=coef_b[2], beta_b=coef_b[3], relative_error=relerr)
        picked = nearest_batch_runs(runs, lambda u, n: advisor.laws.batch_size(u, n, *coef_b))
        table = data_table(picked, targets, n_boot, seed, step_limit=horizon)
        notes.append("D_J per config uses the batch size nearest the fitted B~.")
    if len({(r.utd, r.params) for r in runs}) < 5:
        raise CsvError(f"{archive.name} has {len({(r.utd, r.params) for r in runs})} (utd, "
                       "params) configurations; the law needs at least 5 (see `advisor plan`)")
    fit, laws, loco = make_fit_file(
        table, fit_id=f"{algorithm}/{env}", batch=batch, arch=arch, delta=delta or 1e11,
        provenance=Provenance(
            source=f"{archive.name} (sha256 {_sha256(archive)})",
            command=command or fit_command(archive, algorithm, env, f"{algorithm}-{env}.json",
                                           n_boot, created, target_range, delta, input_dim),
            project_version=advisor.__version__, method=method.describe(), notes=notes),
        method=method, n_boot=n_boot, seed=seed, created=created)
    return Built(fit, table, laws, loco)


def fit_command(archive: str | Path, algorithm: str, env: str, output: str | Path, n_boot: int,
                created: str | None, target_range: tuple[float, float] | None = None,
                delta: float | None = None, input_dim: int | None = None) -> str:
    """The `advisor fit` command line that rebuilds a fit (as calibration.cli records it)."""
    import shlex

    parts = ["advisor fit", shlex.quote(str(archive)), "--algorithm", shlex.quote(algorithm),
             "--env", shlex.quote(env), "--output", shlex.quote(str(output)),
             "--n-boot", str(n_boot)]
    if target_range:
        parts += ["--target-range", repr(float(target_range[0])), repr(float(target_range[1]))]
    if delta is not None:
        parts += ["--delta", repr(float(delta))]
    if input_dim is not None:
        parts += ["--input-dim", str(input_dim)]
    if created:
        parts += ["--created", shlex.quote(created)]
    return " ".join(parts)


def make_fit_file(
    table: DataTable, *, fit_id: str, batch: BatchSizeLaw, arch: Architecture, delta: float,
    provenance: Provenance, method: Method = DEFAULT_METHOD, n_boot: int = N_BOOT,
    seed: int = BOOT_SEED, created: str | None = None,
) -> tuple[FitFile, LawFit, np.ndarray]:
    """Fit D_J on `table`, cross-validate, bootstrap, and assemble the fit file."""
    targets = table.targets
    if not np.isfinite(table.data).any():
        raise BuildError(f"no run on {table.env} reaches any threshold in {targets[0]:.4g}-"
                         f"{targets[-1]:.4g}: there is nothing to fit")
    laws = fit_laws(table, method)
    loco = leave_one_config_out(table, method, laws)
    in_sample = relative_errors(laws.predict(table.utd, table.params), table.data)
    loco_err = relative_errors(loco, table.data)
    head = relative_errors(loco[:, -1:], table.data[:, -1:])
    base = relative_errors(loglinear_leave_one_config_out(table), table.data)
    draws = bootstrap_fits(table, method, laws) if n_boot else np.zeros((0, len(targets), 5))
    interval, _ = calibrate_interval(table, method, laws, loco)
    fit = FitFile(
        id=fit_id, fit_version=1, created=created or _dt.date.today().isoformat(),
        provenance=provenance, compute=ComputeDefinition(), architecture=arch,
        domain=Domain(
            utd=PositiveRange(low=float(table.utd.min()), high=float(table.utd.max())),
            params=PositiveRange(low=float(table.params.min()), high=float(table.params.max())),
            target=Range(low=float(targets[0]), high=float(targets[-1]))),
        data_to_target=DataToTarget(laws=[
            DataLaw(target=float(t), d_min=float(c[0]), a=float(c[1]), alpha=float(c[2]),
                    b=float(c[3]), beta=float(c[4])) for t, c in zip(targets, laws.coef)]),
        batch_size=batch, delta=delta, learning_rate=LEARNING_RATE,
        bootstrap=Bootstrap(n_resamples=n_boot, seed=seed, draws=_round_sig(draws)),
        goodness_of_fit=GoodnessOfFit(
            n_configs=len(table.utd), n_points=int(np.isfinite(table.data).sum()),
            in_sample=float(in_sample.mean()), leave_one_config_out=float(loco_err.mean()),
            leave_one_config_out_headline=float(head.mean()) if head.size else None,
            baseline_loglinear_leave_one_config_out=float(base.mean()) if base.size else None),
        prediction_interval=interval,
    )
    return fit, laws, loco


def regenerate(data_dir: str | Path, out_dir: str | Path, *, n_boot: int = N_BOOT,
               created: str | None = None, ids: list[str] | None = None, n_jobs: int = 2,
               progress=None) -> list[Path]:
    """Rebuild every shipped fit (or those in `ids`) from the archives in `data_dir`."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    specs = [s for s in catalogue() if ids is None or s.id in ids]
    jobs = [(str(data_dir / s.archive), s.algorithm, s.env, n_boot, created,
             str(out_dir / s.algorithm / f"{s.env}.json")) for s in specs]
    if n_jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Small least-squares problems run twice as fast on one BLAS thread per worker.
        with one_blas_thread_env():
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(n_jobs, mp_context=ctx) as pool:
                results = list(pool.map(_build_one, jobs))
    else:
        results = [_build_one(j) for j in jobs]
    paths = []
    for spec, fit in zip(specs, results):
        paths.append(write_fit_file(fit, out_dir / spec.algorithm / f"{spec.env}.json"))
        if progress:
            progress(spec.id)
    return paths


_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def one_blas_thread_env():
    """Set the BLAS thread variables to 1 for processes spawned inside (they read them before
    numpy loads), restoring them after."""
    saved = {k: os.environ.get(k) for k in _BLAS_VARS}
    os.environ.update({k: "1" for k in _BLAS_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with BLAS on one thread, in this process: the fits' small least-squares
    problems run about twice as fast. Through threadpoolctl where it is installed, else through
    the thread setters of the OpenBLAS libraries numpy and scipy load (Linux); elsewhere the
    block runs unchanged."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
        return
    setters = _openblas_thread_setters()
    saved = [(set_, get()) for set_, get in setters]
    for set_, _ in setters:
        set_(1)
    try:
        yield
    finally:
        for set_, n in saved:
            set_(n)


#: OpenBLAS's thread setter and getter, under the prefixes and suffixes of the numpy and scipy
#: wheels' builds.
_OPENBLAS_SYMBOLS = [(f"{p}openblas_set_num_threads{s}", f"{p}openblas_get_num_threads{s}")
                     for p in ("", "scipy_") for s in ("", "64_")]


def _openblas_thread_setters() -> list:
    """(set, get) of the number of threads of each loaded OpenBLAS (numpy's and scipy's wheels
    each bundle one, with prefixed symbol names)."""
    import ctypes

    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return []
    out = []
    for path in sorted(p for p in paths if p.startswith("/") and "openblas" in
                       os.path.basename(p).lower()):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_SYMBOLS:
            set_, get = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if set_ is not None and get is not None:
                set_.argtypes, set_.restype, get.restype = [ctypes.c_int], None, ctypes.c_int
                out.append((set_, get))
                break
    return out


def _build_one(job) -> FitFile:
    archive, algorithm, env, n_boot, created, output = job
    command = fit_command(archive, algorithm, env, output, n_boot, created)
    return build_fit(archive, algorithm, env, n_boot=n_boot, created=created,
                     command=command).fit
