"""Figures of a fit against the runs it came from, and a self-contained HTML report.

Needs the `plot` extra (matplotlib). Every figure is a function `figure_<kind>(ctx) -> Figure`;
`advisor plot KIND FIT -o file.png` writes one, `advisor report FIT -o report.html` all of them.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import advisor
from advisor import laws, optimize
from advisor.errors import AdvisorError, printable, span
from advisor.fit import Fit
from advisor.recommend import Budget, Recommendation, recommend
from calibration.archives import Run, nearest_batch_runs, read_runs
from calibration.curves import DataTable, data_table

KINDS = ("data", "parity", "frontier", "batch", "td")
TITLES = {
    "data": "Data to reach a target against UTD and model size",
    "parity": "Predicted against measured data (leave one configuration out)",
    "frontier": "Compute-optimal line and data-compute frontier",
    "batch": "Best batch size B~ against UTD",
    "td": "TD overfitting: late-training TD error against batch size",
}


class ReportError(AdvisorError):
    """A figure that cannot be drawn from what was given."""


@dataclass
class Context:
    """A fit, optionally its runs, and a budget whose recommendation is marked."""

    fit: Fit
    runs: list[Run] = field(default_factory=list)
    budget: Budget | None = None
    table: DataTable | None = None
    rec: Recommendation | None = None
    no_table: str = "the runs are not given: pass --runs ARCHIVE_OR_DIR"  # why table is None
    # Set where the runs (a file or folder) are not those whose sha256 the fit records: what
    # is drawn compares the fit with runs it was not made from (parity: the fit as it is).
    foreign: str | None = None
    # Set where the runs hold configurations besides those a calibrate fit was fitted on (a
    # planned grid's stage 1): they are left out of the table, so that the parity figure
    # refits what the fit was made from and its error is the one the fit file records.
    left_out: str | None = None
    # The parity figure's held-out predictions, computed once per context (a refit per
    # configuration: about a minute for a large archive) and reused by every later figure.
    held_out: np.ndarray | None = field(default=None, repr=False)

    @property
    def env(self) -> str:
        return self.fit.id.split("/", 1)[1]


def load_context(fit: str, runs: str | Path | None = None, budget: Budget | None = None,
                 n_boot: int = 30, target: float | None = None, within_fitted: bool = False,
                 clear_of_runs: bool = False) -> Context:
    """The fit, its runs (if given) and the recommendation for `budget` (at `target`, with
    `within_fitted` and `clear_of_runs`, as recommend's; if given)."""
    f = advisor.load_fit(fit)
    ctx = Context(f, budget=budget)
    source = printable(f.model.provenance.source).split(" (sha256", 1)[0]
    ctx.no_table = (f"the runs are not given: pass --runs ARCHIVE_OR_DIR (this fit was made from "
                    f"{source[:160]}{'...' if len(source) > 160 else ''})")
    if runs is not None:
        metrics = ("return", "critic_loss", "validation_critic_loss")
        step_limit = None
        if Path(runs).suffix.lower() == ".csv":  # a tidy CSV, as `advisor fit` read it
            from calibration.tidy import read_fit_csv

            ctx.runs = read_fit_csv(runs, f)
            step_limit = max(float(r.steps["return"][-1]) for r in ctx.runs)
        else:  # later_wins: a calibrate out-dir's runs/ may hold a config in both stages
            ctx.runs = read_runs(runs, env=ctx.env, metrics=metrics, later_wins=True)
        ctx.foreign = _foreign(f, Path(runs))  # after the read: the runs are a usable input
        # D_J comes from runs without a passive critic, as the shipped fits do.
        with_return = [r for r in ctx.runs if "return" in r.values
                       and r.tags.get("passive_critic", "False") == "False"]
        if not with_return:
            ctx.no_table = f"{runs} holds no return curves without a passive critic for {ctx.env}"
        else:
            table = data_table(nearest_batch_runs(with_return, f.batch_size), f.thresholds,
                               n_boot=n_boot, step_limit=step_limit)
            if np.isfinite(table.data).any():
                ctx.table = table
                if _recorded_sha256(f) is None:  # a calibrate fit's: judged by its configs
                    ctx.foreign = _other_configs(f, Path(runs), table)
                    if ctx.foreign is None:
                        ctx.table, ctx.left_out = _fitted_configs(f, table)
                bs = f.model.batch_size
                other = sorted({int(b) for b in table.batch_size} - {int(bs.a_b)})
                if ctx.foreign and bs.kind == "fixed" and other:
                    ctx.foreign += (f"; its runs used batch size {int(bs.a_b)} and these "
                                    f"{', '.join(map(str, other))}, predicted at "
                                    f"{int(bs.a_b)} (the fit cannot say how batch size moves "
                                    "D_J)")
            else:
                ctx.no_table = (f"no run in {runs} reaches any of the fit's thresholds "
                                f"({span(f.target_min, f.target_max, '.4g')})")
    if budget is not None:
        ctx.rec = recommend(budget, fit=f, target=target, within_fitted=within_fitted,
                            clear_of_runs=clear_of_runs)
    return ctx


def _recorded_sha256(f: Fit):
    """The match of `source (sha256 HEX)` in f's provenance, or None (a calibrate fit's)."""
    import re

    return re.fullmatch(r"(.*) \(sha256 ([0-9a-f]{64})\)", f.model.provenance.source)


def _foreign(f: Fit, runs: Path) -> str | None:
    """Why `runs` are not the run data `f` was made from, where both are known: its provenance
    records a sha256 (of an archive, or of a folder's .npy files: calibration.build._sha256)
    and that of `runs` differs; else None."""
    from calibration.build import _sha256

    recorded = _recorded_sha256(f)
    # a regular file or a folder only (a FIFO would block, /dev/zero never end): read_runs
    # refuses the others in one line
    if recorded is None or not (runs.is_file() or runs.is_dir()) \
            or _sha256(runs) == recorded.group(2):
        return None
    return (f"{runs.name} is not the run data {f.id} was made from ({printable(recorded.group(1))}"
            f", sha256 {recorded.group(2)[:12]}...)")


def _other_configs(f: Fit, runs: Path, table: DataTable) -> str | None:
    """Why `runs` are not the run data `f` was made from, judged by the configurations (utd,
    params) its file records it was fitted on (schema 4; a calibrate fit records no sha256 of
    its out-dir): None where the runs hold every one of them (a calibrate out-dir holds stage
    1's too, some at other configurations where its grid planned them), or where the file
    records none."""
    fitted = f.model.domain.runs
    if not fitted:
        return None
    theirs = {_config_key(r.utd, r.params) for r in fitted}
    given = {_config_key(u, n) for u, n in zip(table.utd.tolist(), table.params.tolist())}
    if theirs <= given:
        return None
    others = len(given - theirs)
    return (f"{printable(runs.name)} is not the run data {f.id} was made from: they hold "
            f"{len(given & theirs)} of the {len(theirs)} configurations (utd, params) it was "
            f"fitted on" + (f", and {others} other{'s' if others > 1 else ''}" if others else ""))


def _fitted_configs(f: Fit, table: DataTable) -> tuple[DataTable, str | None]:
    """`table` without the configurations `f` was not fitted on (a planned grid's stage 1 holds
    some that stage 2, which the fit is made from, does not), and a line saying how many were
    left out (None: none)."""
    theirs = {_config_key(r.utd, r.params) for r in f.model.domain.runs or ()}
    keep = np.array([_config_key(u, n) in theirs
                     for u, n in zip(table.utd.tolist(), table.params.tolist())])
    if not theirs or keep.all():
        return table, None
    n = int((~keep).sum())
    return table.rows(keep), (f"{n} configuration{'s' if n > 1 else ''} (utd, params) of these "
                              f"runs {'are' if n > 1 else 'is'} not among the {int(keep.sum())} "
                              f"{f.id} was fitted on (a planned grid's stage 1) and "
                              f"{'are' if n > 1 else 'is'} left out of the figures")


def _config_key(utd: float, params: float) -> tuple[float, float]:
    """A configuration as a fit file records it (6 significant digits)."""
    return float(f"{utd:.6g}"), float(f"{params:.6g}")


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ReportError("plots need matplotlib: pip install '.[plot]' in the repository"
                          ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(f: Fit, utd, params, target):
    draws = f.draw_coefficients(target)
    if draws is None or not len(draws):
        return None
    sample = laws.data_to_target(np.asarray(utd)[None, :], np.asarray(params)[None, :],
                                 *(draws[:, i, None] for i in range(5)))
    return np.percentile(sample, [10, 90], axis=0)


def figure_data(ctx: Context):
    plt = _plt()
    f = ctx.fit
    target = float(f.thresholds[len(f.thresholds) * 3 // 4])
    dom = f.model.domain
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    utds = sorted({*np.geomspace(dom.utd.low, dom.utd.high, 4)} if ctx.table is None
                  else set(ctx.table.utd))
    params = sorted({*np.geomspace(dom.params.low, dom.params.high, 4)} if ctx.table is None
                    else set(ctx.table.params))
    j = int(np.argmin(np.abs(f.thresholds - target)))
    cmap = plt.get_cmap("viridis")
    for ax, xs_name, groups, xs_all in ((axes[0], "utd", params, utds),
                                        (axes[1], "params", utds, params)):
        grid = np.geomspace(min(xs_all) / 1.3, max(xs_all) * 1.3, 80)
        for g_i, g in enumerate(groups):
            color = cmap(g_i / max(1, len(groups) - 1))
            u, n = ((grid, np.full_like(grid, g)) if xs_name == "utd"
                    else (np.full_like(grid, g), grid))
            label = f"N={g:.3g}" if xs_name == "utd" else f"UTD={g:g}"
            ax.plot(grid, f.data_to_target(u, n, target), color=color, label=label)
            band = _band(f, u, n, target)
            if band is not None:
                ax.fill_between(grid, band[0], band[1], color=color, alpha=0.15)
            if ctx.table is not None:
                t = ctx.table
                sel = (t.params == g) if xs_name == "utd" else (t.utd == g)
                x = t.utd[sel] if xs_name == "utd" else t.params[sel]
                y = t.data[sel, j]
                lo, hi = (np.nanpercentile(t.boot[:, sel, j], [10, 90], axis=0)
                          if len(t.boot) else (y, y))  # no bootstrap (n_boot 0): no bars
                ok = np.isfinite(y)
                ax.errorbar(x[ok], y[ok], yerr=[np.clip(y[ok] - lo[ok], 0, None),
                                                np.clip(hi[ok] - y[ok], 0, None)],
                            fmt="o", color=color, capsize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("UTD (updates per env step)" if xs_name == "utd" else "critic parameters N")
        ax.set_ylabel(f"env steps to reach return {target:.4g}")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    points = "runs it was not made from" if ctx.foreign else "runs"
    points = "" if ctx.table is None else f"points: {points}, 10-90% bootstrap; "
    fig.suptitle(f"{f.id}: D_J against UTD and model size ({points}bands: fit 10-90%)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def figure_parity(ctx: Context):
    if ctx.table is None:
        raise ReportError(f"the parity plot needs measured data to target: {ctx.no_table}")
    from calibration.build import DEFAULT_METHOD
    from calibration.fitting import leave_one_config_out, relative_errors

    plt = _plt()
    t = ctx.table
    record = ctx.fit.model.provenance.prior
    # a fixed-batch fit predicts at its own batch size (it cannot say how another moves D_J)
    at_batch = None if ctx.fit.model.batch_size.kind == "fixed" else t.batch_size
    if ctx.held_out is not None:
        loco = ctx.held_out
    elif ctx.foreign:  # runs the fit never saw: held out already, predicted by the fit as it is
        loco = np.stack([ctx.fit.data_to_target(t.utd, t.params, float(target),
                                                batch_size=at_batch)
                         for target in t.targets], axis=1)
    else:
        try:
            loco = (leave_one_config_out(t, DEFAULT_METHOD) if record is None
                    else _few_shot_loco(t, record))  # a few-shot fit: with its family prior
        except (ValueError, FloatingPointError) as exc:  # least squares on runs it cannot fit
            raise ReportError(f"the parity figure refits {ctx.fit.id} without each "
                              f"configuration of these runs, and a refit failed ({exc}): are "
                              "they the runs it was made from?") from None
    ctx.held_out = loco
    # A run whose first logged return is already above a threshold reaches it at step 0: no
    # point on log axes, and no relative error (runs a fit was made from start below them).
    at_start = int((t.data <= 0).sum())
    ok = np.isfinite(t.data) & (t.data > 0)
    if not ok.any():
        f = ctx.fit
        raise ReportError(f"the parity figure has no point to draw: every threshold of {f.id} "
                          f"({span(f.target_min, f.target_max, '.4g')}) these runs reach, they "
                          "reach at step 0, with their first return")
    err = relative_errors(loco, np.where(ok, t.data, np.nan)).mean()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sc = ax.scatter(t.data[ok], loco[ok], c=np.broadcast_to(t.targets, t.data.shape)[ok], s=12,
                    cmap="plasma")
    lim = np.array([t.data[ok].min() / 1.3, t.data[ok].max() * 1.3])
    ax.plot(lim, lim, "k--", lw=1)
    title = (f"{ctx.fit.id}: leave-one-config-out error {100 * err:.1f}%" if not ctx.foreign
             else f"{ctx.fit.id} on runs it was not made from: error {100 * err:.1f}%")
    pi = ctx.fit.model.prediction_interval
    if pi is not None:
        # The 80% prediction interval: measured within [pred e^low, pred e^high], i.e. the
        # prediction within [measured e^-high, measured e^-low].
        lo = float(np.interp(0.8, pi.levels, pi.log_low))
        hi = float(np.interp(0.8, pi.levels, pi.log_high))
        ax.fill_between(lim, lim * np.exp(-hi), lim * np.exp(-lo), color="gray", alpha=0.15,
                        label="80% prediction interval" + (
                            "\n(the widest over targets, inside the\nfitted domain; a point is "
                            "judged by\nthe interval recommend gives it)" if ctx.foreign else
                            "\n(the widest over targets; a point\nis judged by its own "
                            "target's)" if pi.bands else ""))
        if ctx.foreign:  # the interval recommend gives, widened outside the fitted domain
            low, high = (np.stack(x, axis=1) for x in zip(*(
                ctx.fit.interval(t.utd, t.params, float(target), 0.8, batch_size=at_batch)
                for target in t.targets)))
            outside = (t.data[ok] < low[ok]) | (t.data[ok] > high[ok])
        else:
            band_lo, band_hi = (np.broadcast_to(x, t.data.shape)[ok] for x in zip(*(
                pi.offsets(0.8, float(target)) for target in t.targets)))
            r = np.log(t.data[ok] / loco[ok])
            outside = (r < band_lo) | (r > band_hi)
        ax.scatter(t.data[ok][outside], loco[ok][outside], facecolors="none", edgecolors="k",
                   s=30, lw=0.7, label=f"outside ({100 * outside.mean():.0f}%)")
        ax.legend(fontsize=7, loc="upper left")
        held = None if ctx.foreign else pi.coverage.get("leave_one_config_out")
        title += (f"\n80% interval holds {100 * (1 - outside.mean()):.0f}% of these points"
                  + (f"\n({100 * held:.0f}% when no config calibrates its own)" if held else ""))
    if at_start:
        title += (f"\n({at_start} point{'s' if at_start > 1 else ''} reached at step 0, "
                  "before any update, not drawn)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured env steps to target")
    ax.set_ylabel("predicted env steps (" + ("the fit as it is" if ctx.foreign
                                             else "fit without that config") + ")")
    fig.colorbar(sc, ax=ax, label="target return")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def _few_shot_loco(table, record):
    """Leave-one-config-out predictions of a few-shot fit, with the prior its provenance
    records (a family, or fit ids)."""
    from calibration.build import few_shot_loco
    from calibration.prior import PriorError, resolve_prior

    try:
        prior = resolve_prior([record.family] if record.family else [f.id for f in record.fits])
    except PriorError as exc:
        raise ReportError(f"the parity plot refits this few-shot fit with its prior: {exc}") \
            from None
    return few_shot_loco(table, prior.family_prior(table.data.shape[1]))


def _shade_near_optimal(ax, ctx: Context, box) -> None:
    """Shade the configurations `recommend` calls near-optimal (rec.near_optimal): those that
    reach its target with at most 10% more of what the problem minimised, within the budget."""
    r, f, budget = ctx.rec, ctx.fit, ctx.budget
    if r.near_optimal is None or budget is None:
        return
    near, o = r.near_optimal, r.optimum
    u = np.geomspace(box.utd_low, box.utd_high, 300)
    n = np.geomspace(box.params_low, box.params_high, 300)
    uu, nn = np.meshgrid(u, n)
    with np.errstate(all="ignore"):
        d = f.data_to_target(uu, nn, o.target)
        c = f.compute(uu, nn, d)
    most = 1 + near.tolerance
    inside = {"data": (d <= most * o.data) & (c <= (budget.compute or np.inf)),
              "compute": (c <= most * o.compute) & (d <= (budget.data or np.inf)),
              "total": c + r.delta * d <= most * o.total}[near.cost]
    if inside.any():
        ax.contourf(nn, uu, inside.astype(float), levels=[0.5, 1.5], colors=["black"],
                    alpha=0.15)
        ax.plot([], [], color="black", alpha=0.3, lw=6,
                label=f"near-optimal: ≤{100 * near.tolerance:g}% more {near.cost}")


def figure_frontier(ctx: Context):
    plt = _plt()
    f = ctx.fit
    dom = f.model.domain
    box = f.trusted_box()
    k = f.compute_per_update_param
    delta = ctx.rec.delta if ctx.rec is not None else f.delta  # the recommendation's (--delta)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    cmap = plt.get_cmap("plasma")
    targets = np.linspace(f.target_min, f.target_max, 4)
    all_c: list[float] = []
    frontier: list = []
    for i, target in enumerate(targets):
        coef = f.coefficients(target)
        low = optimize.least_data(coef, k, box)
        pts = [optimize.min_compute_within_data(d, coef, k, box)
               for d in np.geomspace(low * 1.02, low * 6, 40)]
        pts = [p for p in pts if p is not None]
        color = cmap(i / len(targets))
        axes[0].plot([p.params for p in pts], [p.utd for p in pts], color=color,
                     label=f"J={target:.4g}")
        axes[1].plot([p.compute for p in pts], [p.data for p in pts], color=color,
                     label=f"J={target:.4g}")
        all_c += [p.compute for p in pts]
        frontier = pts
    axes[0].add_patch(plt.Rectangle((dom.params.low, dom.utd.low), dom.params.high - dom.params.low,
                                    dom.utd.high - dom.utd.low, fill=False, ls=":", color="gray",
                                    label="fitted domain"))
    if frontier:
        # Iso-total lines C + delta D = F through three points of the top target's frontier.
        cs = np.geomspace(min(all_c) / 3, max(all_c) * 3, 200)
        for p in frontier[len(frontier) // 5:: max(1, len(frontier) * 3 // 10)][:3]:
            total = p.compute + delta * p.data
            d = (total - cs) / delta
            ok = d > 0
            axes[1].plot(cs[ok], d[ok], color="gray", lw=0.8, ls="--")
            axes[1].annotate(f"C+δD={total:.2g}", (p.compute, p.data * 1.15), fontsize=7,
                             color="gray")
    if frontier and ctx.budget is not None and ctx.budget.total is not None:
        cs = np.geomspace(min(all_c) / 3, max(all_c) * 3, 200)
        d = (ctx.budget.total - cs) / delta
        axes[1].plot(cs[d > 0], d[d > 0], color="black", lw=1.0, ls="--",
                     label=f"your budget C+δD={ctx.budget.total:.2g}")
    if ctx.rec is not None:
        r = ctx.rec
        _shade_near_optimal(axes[0], ctx, box)
        axes[0].plot(r.params, r.utd, "k*", ms=14, label="recommended")
        axes[1].plot(r.predicted_compute, r.predicted_data, "k*", ms=14, label="recommended")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    if ctx.rec is not None:  # the star whole, not cut at a corner of the axes
        r = ctx.rec
        for ax, (x, y) in ((axes[0], (r.params, r.utd)),
                           (axes[1], (r.predicted_compute, r.predicted_data))):
            (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
            ax.set_xlim(min(x0, x / 1.6), max(x1, x * 1.6))
            ax.set_ylim(min(y0, y / 1.6), max(y1, y * 1.6))
    for ax in axes:
        ax.legend(fontsize=7)
    axes[0].set_xlabel("critic parameters N")
    axes[0].set_ylabel("UTD")
    axes[0].set_title("compute-optimal (N, UTD) as the data budget grows", fontsize=10)
    axes[1].set_xlabel("compute C (FLOPs)")
    axes[1].set_ylabel("data D (env steps)")
    axes[1].set_title(f"least compute per data budget; dashed: C + δD, δ={delta:.2g}",
                      fontsize=10)
    fig.suptitle(f.id, fontsize=10)
    fig.tight_layout()
    return fig


def figure_batch(ctx: Context):
    plt = _plt()
    f = ctx.fit
    dom = f.model.domain
    fig, ax = plt.subplots(figsize=(6, 4.2))
    utd = np.geomspace(dom.utd.low, dom.utd.high, 60)
    params = sorted({r.params for r in ctx.runs}) or list(np.geomspace(dom.params.low,
                                                                       dom.params.high, 4))
    cmap = plt.get_cmap("viridis")
    batches = sorted({r.batch_size for r in ctx.runs if "return" in r.values})
    measured = None
    if len(batches) > 1:
        from calibration.batch import best_batch_sizes, tables_by_batch

        with_return = [r for r in ctx.runs if "return" in r.values]
        try:
            tables = tables_by_batch(with_return, f.thresholds, n_boot=20)
        except AdvisorError:  # not a full batch grid: no measured best batches to show
            tables = {}
        if len(tables) > 1:
            measured = best_batch_sizes(tables)
    used = None  # one batch size per config, differing between them: the ones B~ was fitted to
    if measured is None:
        from calibration.batch import own_batch_sizes

        used = own_batch_sizes([r for r in ctx.runs if "return" in r.values
                                and r.tags.get("passive_critic", "False") == "False"])
    for i, n in enumerate(params):
        color = cmap(i / max(1, len(params) - 1))
        ax.plot(utd, f.batch_size(utd, np.full_like(utd, n)), color=color, label=f"N={n:.3g}")
        if measured is not None:
            sel = measured[1] == n
            ax.plot(measured[0][sel], measured[2][sel], "o", color=color)
        if used is not None:
            sel = used[1] == n
            ax.plot(used[0][sel], used[2][sel], "x", color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("UTD (updates per env step)")
    ax.set_ylabel("best batch size (transitions)")
    bs = f.model.batch_size
    src = {"published": "paper A's coefficients", "fitted": "fitted", "fixed": "fixed"}[bs.source]
    ax.set_title(f"{f.id}: B~ ({src})" + ("; points: measured best" if measured else "")
                 + ("; crosses: the batch sizes the runs used" if used is not None else ""),
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_td(ctx: Context):
    runs = [r for r in ctx.runs if "validation_critic_loss" in r.values]
    if not runs:
        raise ReportError("the TD-overfitting plot needs runs that carry validation_critic_loss "
                          "(side_critic, SimbaV2 or this project's learner)")
    plt = _plt()
    utd = min(r.utd for r in runs)
    runs = [r for r in runs if r.utd == utd]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    def size(r) -> str:  # runs without a width (a CSV of params) are labelled by params
        return f"width {r.width}" if r.width else f"params {r.params:.3g}"

    sizes = [label for _, label in sorted({(r.params, size(r)) for r in runs})]
    cmap = plt.get_cmap("viridis")
    for i, w in enumerate(sizes):
        color = cmap(i / max(1, len(sizes) - 1))
        for ax, metric in ((axes[0], "validation_critic_loss"), (axes[1], "critic_loss")):
            late: dict[float, list[float]] = {}  # batch -> late-training means of its runs
            for r in runs:
                if size(r) == w and metric in r.values:
                    v = r.values[metric]
                    late.setdefault(r.batch_size, []).append(
                        float(np.nanmean(v[int(0.8 * len(v)):])))
            xs = sorted(late)
            if xs:
                ax.plot(xs, [np.mean(late[b]) for b in xs], "o-", color=color, label=w)
    for ax, name, metric in ((axes[0], "validation TD error", "validation_critic_loss"),
                             (axes[1], "training TD error", "critic_loss")):
        ax.set_xlabel("batch size (transitions)")
        ax.set_ylabel(f"{name} (late-training mean)")
        if not ax.get_lines():  # a CSV may log one of the two
            ax.text(0.5, 0.5, f"no run logs {metric}", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"{ctx.fit.id}: TD error against batch size at UTD {utd:g}, one line per "
                 "critic size (validation left, training right)", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"data": figure_data, "parity": figure_parity, "frontier": figure_frontier,
           "batch": figure_batch, "td": figure_td}


FORMATS = ("png", "svg", "pdf")


def save_figure(kind: str, ctx: Context, out: str | Path) -> Path:
    """Draw one figure and write it atomically; the format follows the file's suffix."""
    if kind not in FIGURES:
        raise ReportError(f"unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ReportError(f"cannot write a figure to {str(out)!r}: give a file name ending in "
                          f"{', '.join('.' + f for f in FORMATS)}")
    fig = _draw(kind, ctx)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    _plt().close(fig)
    from advisor.files import atomic_write_bytes

    return atomic_write_bytes(out, buf.getvalue())


def _draw(kind: str, ctx: Context):
    """FIGURES[kind](ctx) without numpy's warnings about configurations that reach no target
    (their points are simply not drawn)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        fig = FIGURES[kind](ctx)
    for ax in fig.axes:
        _short_log_ticks(ax)
    fig.tight_layout()  # again: the labels' widths changed (every figure lays itself out so)
    return fig


def _short_log_ticks(ax) -> None:
    """On a base-10 log axis that spans under two decades, ticks at 1, 2 and 5 times powers of
    ten labelled as plain numbers (2000, 5000, 10000), no minor labels: matplotlib labels
    minor ticks there as 3x10^3 and 4x10^3, which ran into each other."""
    from matplotlib import ticker

    for axis, lims in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        scale = axis.get_scale()
        if scale != "log" or getattr(axis.get_transform(), "base", 10) != 10:
            continue
        low, high = sorted(lims)
        if not (low > 0 and np.log10(high / low) < 2):
            continue
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: _tick_text(v)))
        axis.set_minor_formatter(ticker.NullFormatter())


def _tick_text(v: float) -> str:
    """2000, 0.5, 10^4, 2x10^5 (mathtext where a plain number would be long)."""
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:g}"
    exponent = int(np.floor(np.log10(abs(v))))
    mantissa = round(v / 10.0**exponent, 6)
    lead = "" if mantissa == 1 else rf"{mantissa:g}\times"
    return rf"${lead}10^{{{exponent}}}$"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def render_report(ctx: Context, missing: list[tuple[str, str]] | None = None,
                  progress: Callable[[int, int, str], None] | None = None) -> str:
    """A single HTML page, images embedded, readable offline at laptop width. `missing`, where
    given, gets (kind, why) for each figure the page says is not drawn; `progress`, where
    given, is called (i, n, title) before the i-th of the n figures is drawn."""
    f = ctx.fit
    m = f.model
    g = m.goodness_of_fit
    sections = []
    for i, kind in enumerate(KINDS, 1):
        if progress is not None:
            progress(i, len(KINDS), TITLES[kind])
        try:
            img = f'<img alt="{kind}" src="data:image/png;base64,{_png(_draw(kind, ctx))}">'
        except ReportError as exc:
            img = f'<p class="note">Not drawn: {html.escape(str(exc))}.</p>'
            if missing is not None:
                missing.append((kind, str(exc)))
        sections.append(f"<section><h2>{TITLES[kind]}</h2>{img}</section>")
    rec = ""
    if ctx.rec is not None:
        r = ctx.rec
        iv = (f" ({100 * r.interval.level:g}% interval {r.interval.low:.3g}-"
              f"{r.interval.high:.3g})" if r.interval else "")
        rec = (f"<p><b>Recommended</b> for {html.escape(ctx.budget.describe())}: "
               f"UTD {r.gradient_steps}/{r.train_freq} (gradient steps per env steps), width "
               f"{r.width} ({r.params:.3g} critic params), batch {r.batch_size}, target "
               f"{r.target:.4g}; predicted {r.predicted_data:.3g} env steps{iv} and "
               f"{r.predicted_compute:.3g} FLOPs"
               + ("" if r.within_budget else " (over budget: see the warnings)") + ".</p>"
               + (f"<p>Near-optimal: {html.escape(r.near_optimal.describe())}; shaded in the "
                  f"figure '{TITLES['frontier']}'.</p>" if r.near_optimal else "")
               + "".join(f"<p class='note'>{html.escape(w)}</p>" for w in r.warnings))
    pr = m.provenance.prior
    prior = ("" if pr is None else
             f"<br>prior: {html.escape((pr.family + ': ') if pr.family else '')}"
             f"{html.escape(', '.join(p.id for p in pr.fits))}")
    # What the fit says of itself (what it is good for, why a prior, timings), as `show` does.
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in m.provenance.notes)
    meta = (f"<p>{html.escape(m.provenance.source)}<br>method: {html.escape(m.provenance.method)}"
            f"{prior}<br>mean relative error of D_J: in-sample {100 * g.in_sample:.1f}%, leave "
            f"one config out {100 * g.leave_one_config_out:.1f}% ({g.n_configs} configs).</p>"
            + (f"<details><summary>notes ({len(m.provenance.notes)})</summary><ul>{notes}</ul>"
               "</details>" if notes else ""))
    if ctx.foreign:
        meta += (f"<p class='note'>{html.escape(ctx.foreign)}: the figures compare the fit "
                 "with these runs, and parity predicts them with the fit as it is.</p>")
    if ctx.left_out:
        meta += f"<p class='note'>{html.escape(ctx.left_out)}.</p>"
    style = ("body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;"
             "color:#222}img{max-width:100%;height:auto;border:1px solid #ddd}"
             "h2{font-size:1.1em;margin-top:2em}.note{color:#a33}")
    return (f"{REPORT_HEAD}<meta name='viewport' "
            f"content='width=device-width,initial-scale=1'><title>{html.escape(f.id)} fit report"
            f"</title><style>{style}</style></head><body><h1>{html.escape(f.id)}</h1>{meta}{rec}"
            + "".join(sections) + "</body></html>\n")


#: How every report page starts: `write_report` replaces only a file that starts so, or as
#: pages did before they carried the generator tag (_EARLIER_HEAD).
REPORT_HEAD = ("<!doctype html><html><head><meta charset='utf-8'>"
               "<meta name='generator' content='advisor report'>")
_EARLIER_HEAD = (b"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
                 b"content='width=device-width,initial-scale=1'><title>")


def check_report_output(out: str | Path) -> None:
    """OutputError when `out` holds a file that is not a report page (a page of the user's
    named report.html, the default): it is kept."""
    from advisor.files import check_replaceable

    check_replaceable(out, (REPORT_HEAD.encode(), _EARLIER_HEAD), "a report advisor report wrote",
                      f"-o {out}")


def write_report(ctx: Context, out: str | Path,
                 missing: list[tuple[str, str]] | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> Path:
    """Write the report atomically (a link is followed, a device written through; a file
    that is not a report page is kept: check_report_output); `missing` and `progress` as
    render_report's."""
    from advisor.files import atomic_write_text

    check_report_output(out)
    return atomic_write_text(out, render_report(ctx, missing, progress))
