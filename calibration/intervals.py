"""Prediction intervals for the data a new run needs, calibrated by cross-validation.

The law's own error and run-to-run noise both show in leave-one-config-out (LOCO) residuals
r = log(D_observed / D_predicted), the prediction made by a fit that never saw the config. The
interval at level L is split conformal on those residuals: the (1 - L')/2 and (1 + L')/2
quantiles, L' = L (1 + 1/n) for n configs (the finite-sample correction; configs, not points,
are the exchangeable units since a config's thresholds share one noisy curve). It is computed per
band of thresholds (a fifth of them each, lowest to highest: `threshold_bands`), each band on the
residuals at its own thresholds and corrected over the configs that reach it (Mondrian split
conformal): the law fits some returns better than others (the spread of the residuals is a weak
U over the thresholds), and a pooled quantile over-covers the middle and under-covers the ends
(benchmarks/threshold_coverage.py). Where too few configs reach a band for a finite bound at a
level, that band takes the wider of its extreme residuals and the pooled interval.

A new run between the fitted ones (another utd or critic size) is predicted by a fit that saw no
run at its row or column, and whole rows and columns can sit off the law together (a width that
learns better than its neighbours): LOCO residuals understate that. So the offsets are scaled,
level by level, by the least factor >= 1 that also covers the level's share of the residuals of
the interior rows left out whole, and of the interior columns left out whole (`Groups.scale`).

Outside the fitted domain the residuals grow. Refitting without the outermost row (largest or
smallest utd) or column (largest or smallest params) of the grid and predicting it measures how
fast: the interval's log offsets are scaled by 1 + widen * distance (distance in log units beyond
the fitted range), with `widen` the least value that covers `level` of those held-out edge
points, and never below a floor taken from the shipped fits (docs/intervals.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advisor.errors import AdvisorError
from advisor.fitfile import MAX_LOG_OFFSET, IntervalBand, PredictionInterval
from calibration.curves import DataTable
from calibration.fitting import LawFit, Method, fit_laws

LEVELS = tuple(round(x, 2) for x in np.arange(0.5, 0.951, 0.05))
CHECK_LEVEL = 0.8
#: Bands of thresholds with an interval of their own (fifths: 4 thresholds each of a fit's 20).
BANDS = 5
#: Floors of the widening per log unit beyond the largest / below the smallest fitted value, so
#: that a grid whose own edges happen to extrapolate well still gets a wider interval outside its
#: domain. One rule chooses both: the least floor (steps of 0.05) at which the fits' recorded
#: edge coverage at 80% (edge_coverage) averages 80% over the 23 archive fits. Chosen so for each
#: fit from the other 22 only, the floors come out 0.15-0.3 above and 1.65-2.05 below, and that
#: fit's edge coverage then averages 80.4% above and 80.2% below (benchmarks/widen_floors.py,
#: docs/intervals.md).
WIDEN_FLOOR_UP = 0.25
WIDEN_FLOOR_DOWN = 1.9
#: Scale factors tried for the in-domain offsets (group_scale).
_SCALE_GRID = np.round(np.arange(1.0, 5.0001, 0.01), 2)
_WIDEN_GRID = np.concatenate([np.linspace(0, 2, 81), np.linspace(2.1, 50, 480),
                              np.linspace(51, 1000, 950)])


def threshold_bands(m: int, bands: int = BANDS) -> np.ndarray:
    """The band (0 lowest) of each of `m` thresholds: `bands` bands of equal count as near as
    may be (one per threshold when there are fewer)."""
    k = max(1, min(bands, m))
    return np.minimum(np.arange(m) * k // max(m, 1), k - 1)


def conformal_quantiles(residuals: np.ndarray, level: float, n_units: int) -> tuple[float, float]:
    """(low, high) log offsets covering `level` of new residuals (low <= 0 <= high)."""
    corrected = min(1.0, level * (1 + 1 / max(n_units, 1)))
    lo, hi = np.quantile(residuals, [(1 - corrected) / 2, (1 + corrected) / 2])
    return min(float(lo), 0.0), max(float(hi), 0.0)


def _too_few(level: float, n_units: int) -> bool:
    """Too few exchangeable units for a finite conformal bound at `level` (0.95 with 19: the
    corrected level is 1, up to rounding)."""
    return level * (1 + 1 / max(n_units, 1)) >= 1.0 - 1e-9


def band_quantiles(r: np.ndarray, level: float, pooled: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) log offsets per threshold, (m,) each, from the residuals `r` (configs x
    thresholds, NaN where none): split conformal within each band of thresholds (the
    correction over the configs reaching the band); a band with no residuals, or too few
    configs for the level, takes (at least) the quantiles of all thresholds pooled.
    `pooled`: one interval for every threshold (the schema-2 interval, for comparison)."""
    m = r.shape[1]
    finite = np.isfinite(r)
    p_lo, p_hi = conformal_quantiles(r[finite], level, len(r)) if finite.any() else (0.0, 0.0)
    lo, hi = np.full(m, p_lo), np.full(m, p_hi)
    if pooled:
        return lo, hi
    band = threshold_bands(m)
    for j in np.unique(band):
        cols = band == j
        x = r[:, cols]
        units = int(np.isfinite(x).any(axis=1).sum())
        x = x[np.isfinite(x)]
        if not x.size:
            continue
        b_lo, b_hi = conformal_quantiles(x, level, units)
        if _too_few(level, units):
            b_lo, b_hi = min(b_lo, p_lo), max(b_hi, p_hi)
        lo[cols], hi[cols] = b_lo, b_hi
    return lo, hi


def group_out(table: DataTable, method: Method, laws: LawFit, axis: str,
              values: np.ndarray | None = None, refit=None) -> np.ndarray:
    """(n, m) predictions of every config from a fit without all configs sharing its `axis`
    value ('utd' or 'params'): a whole row or column of the grid left out at a time.
    `refit(keep) -> LawFit` fits the kept configs (default: `fit_laws` warm-started at `laws`)."""
    col = getattr(table, axis)
    out = np.full(table.data.shape, np.nan)
    for v in (np.unique(col) if values is None else values):
        keep = col != v
        if len(np.unique(col[keep])) < 1 or keep.sum() < 3 or not np.isfinite(
                table.data[keep]).any():
            continue
        fit = refit(keep) if refit else fit_laws(table, method, keep=keep, warm=laws)
        out[~keep] = fit.predict(table.utd[~keep], table.params[~keep])
    return out


def _residuals(data: np.ndarray, pred: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(data / pred)


def _covered(r: np.ndarray, lo, hi, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Whether each residual lies in [lo scale, hi scale] (lo, hi per threshold broadcast along
    the last axis of `r`; NaN residuals are not covered)."""
    return (r >= lo * scale) & (r <= hi * scale)


def _hits(r: np.ndarray, lo, hi, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """_covered of the finite residuals of `r` (configs x thresholds) only, flattened."""
    return _covered(r, lo, hi, scale)[np.isfinite(r)]


def group_scale(lo, hi, residuals: np.ndarray, level: float) -> float:
    """Least factor k >= 1 (in steps of 0.01, at most 5) for which [k lo, k hi] covers `level`
    of `residuals` (log residuals of rows or columns left out whole, configs x thresholds with
    NaN where none; lo and hi per threshold or one for all); 1 with none."""
    ok = np.isfinite(residuals)
    if not ok.any():
        return 1.0
    x = residuals[ok]
    lo_t = np.broadcast_to(lo, residuals.shape)[ok]
    hi_t = np.broadcast_to(hi, residuals.shape)[ok]
    for k in _SCALE_GRID:
        if ((x >= k * lo_t) & (x <= k * hi_t)).mean() >= level:
            return float(k)
    return float(_SCALE_GRID[-1])


@dataclass(frozen=True)
class Groups:
    """Residuals of the interior rows and columns of a grid, each left out whole: `residuals`
    (n, m) per axis ('utd', 'params'), NaN outside the interior; `members[axis]` the boolean
    (n,) mask of each left-out row or column."""

    residuals: dict[str, np.ndarray]
    members: dict[str, list[np.ndarray]]

    def scale(self, lo, hi, level: float, keep: np.ndarray | None = None) -> float:
        """The least factor covering `level` of the interior rows' residuals and of the interior
        columns' residuals, each axis on its own (of the configs in `keep`)."""
        return max([group_scale(lo, hi, r if keep is None else r[keep], level)
                    for r in self.residuals.values()] or [1.0])


def interior_groups(table: DataTable, preds: dict[str, np.ndarray]) -> Groups:
    """Groups from group_out's predictions ({'utd': rows left out, 'params': columns left out});
    the outermost row and column on each side are left to the widening (calibrate_interval)."""
    residuals, members = {}, {}
    for axis, pred in preds.items():
        col = getattr(table, axis)
        u = np.unique(col)
        r = np.full(table.data.shape, np.nan)
        members[axis] = []
        for v in u[1:-1]:
            rows = col == v
            r[rows] = _residuals(table.data[rows], pred[rows])
            members[axis].append(rows)
        residuals[axis] = r
    return Groups(residuals, members)


def _honest_bounds(r: np.ndarray, ok: np.ndarray, keep: np.ndarray, level: float,
                   groups: Groups | None, floor: tuple[float, float] | None,
                   min_own: int, with_scale: bool = False, pooled: bool = False):
    """The interval built only from configs in `keep`: (lo, hi) per threshold, (m,) each, from
    their LOCO residuals (per band, `band_quantiles`), scaled to cover their interior group
    residuals, at least `floor`; None when nothing calibrates it. `with_scale`: (lo, hi, the
    group scale applied)."""
    n_keep = int(keep.sum())
    m = r.shape[1]
    has_own = bool(ok[keep].any()) and n_keep >= min_own
    if not ok[keep].any() and floor is None:
        return None
    lo, hi = band_quantiles(r[keep], level, pooled) if has_own else (np.zeros(m), np.zeros(m))
    k = 1.0
    if groups is not None and has_own:
        k = groups.scale(lo, hi, level, keep)
        lo, hi = k * lo, k * hi
    if floor is not None:
        lo, hi = np.minimum(lo, floor[0]), np.maximum(hi, floor[1])
    return (lo, hi, k) if with_scale else (lo, hi)


def loco_coverage(table: DataTable, loco: np.ndarray, level: float = CHECK_LEVEL,
                  floor: tuple[float, float] | None = None, min_own: int = 1,
                  groups: Groups | None = None, pooled: bool = False) -> float:
    """Coverage of the interval on each config when it is built from the other configs only
    (honest: the held-out config never calibrates its own interval): their LOCO residuals,
    scaled to cover their residuals in `groups` where given, at least as wide as `floor` (log
    low, log high) where given; with fewer than `min_own` other configs, `floor` alone."""
    r = _residuals(table.data, loco)
    ok = np.isfinite(r)
    n = len(table.utd)
    hits = []
    for i in range(n):
        keep = np.arange(n) != i
        bounds = _honest_bounds(r, ok, keep, level, groups, floor, min_own, pooled=pooled)
        if not ok[i].any() or bounds is None:
            continue
        hits.append(_hits(r[i:i + 1], *bounds))
    return float(np.concatenate(hits).mean()) if hits else float("nan")


def group_coverage(table: DataTable, loco: np.ndarray, groups: Groups, axis: str,
                   level: float = CHECK_LEVEL, floor: tuple[float, float] | None = None,
                   min_own: int = 1, scale: bool = True, pooled: bool = False) -> float:
    """Coverage on the interior rows ('utd') or columns ('params') left out whole, each with an
    interval built without any of its configs (LOCO residuals and group residuals of the other
    configs only, and `floor`): how the interval holds at a new utd or critic size between
    the fitted ones."""
    r = _residuals(table.data, loco)
    ok = np.isfinite(r)
    hits = []
    for rows in groups.members[axis]:
        g = groups.residuals[axis][rows]
        bounds = _honest_bounds(r, ok, ~rows, level, groups if scale else None, floor, min_own,
                                pooled=pooled)
        if np.isfinite(g).any() and bounds is not None:
            hits.append(_hits(g, *bounds))
    return float(np.concatenate(hits).mean()) if hits else float("nan")


def _edge_rows(table: DataTable, preds: dict[str, np.ndarray], side: str
               ) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Per axis with at least 3 values: (mask of the configs in the outermost row or column on
    `side`, (n, m) log residuals of those configs predicted by a fit without it (NaN
    elsewhere), its distance in log units beyond the rest of the grid)."""
    out = {}
    for axis, pred in preds.items():
        col = getattr(table, axis)
        u = np.unique(col)
        if len(u) < 3:
            continue
        v, nb = (u[-1], u[-2]) if side == "up" else (u[0], u[1])
        rows = col == v
        r = np.full(table.data.shape, np.nan)
        r[rows] = _residuals(table.data[rows], pred[rows])
        out[axis] = (rows, r, float(abs(np.log(v / nb))))
    return out


def _edges(table: DataTable, preds: dict[str, np.ndarray], side: str):
    """The outermost row and column on one side, both axes together: (residuals, configs x
    thresholds; each config's distance beyond the rest of the grid, (configs, 1))."""
    parts = [(r[rows], np.full((int(rows.sum()), 1), d))
             for rows, r, d in _edge_rows(table, preds, side).values()]
    if not parts:
        m = table.data.shape[1]
        return np.empty((0, m)), np.empty((0, 1))
    return np.concatenate([r for r, _ in parts]), np.concatenate([d for _, d in parts])


def edge_coverage(table: DataTable, loco: np.ndarray, preds: dict[str, np.ndarray], side: str,
                  floor: float, groups: Groups | None = None, level: float = CHECK_LEVEL,
                  bounds_floor: tuple[float, float] | None = None, min_own: int = 1,
                  pooled: bool = False) -> dict[str, float]:
    """Honest coverage at one side's edges, per axis ('utd': the outermost utd row, 'params':
    the outermost params column): each predicted by a fit without it, its interval built
    without its configs (the LOCO residuals of the others, scaled for their `groups` where
    given) and widened by what the other axis's edge calls for, less the configs the two share
    (at least `floor`). Not fully nested: the other configs' residuals come from fits that saw
    the edge (benchmarks/intervals.py measures the fully nested version)."""
    r = _residuals(table.data, loco)
    ok = np.isfinite(r)
    parts = _edge_rows(table, preds, side)
    out = {}
    for axis, (rows, res, d) in parts.items():
        bounds = _honest_bounds(r, ok, ~rows, level, groups, bounds_floor, min_own,
                                pooled=pooled)
        g = res[rows]
        if bounds is None or not np.isfinite(g).any():
            continue
        widen = floor
        for other, (rows_o, res_o, d_o) in parts.items():
            if other != axis:
                widen = max(floor, _least_widen(res_o[rows_o & ~rows], d_o, *bounds, level))
        out[axis] = float(_hits(g, *bounds, 1 + widen * d).mean())
    return out


def _least_widen(r: np.ndarray, d, lo, hi, level: float) -> float:
    """The least w (on _WIDEN_GRID) at which [lo, hi] times 1 + w d covers `level` of the
    residuals `r` (configs x thresholds, NaN where none; d per config (k, 1) or one)."""
    ok = np.isfinite(r)
    if not ok.any():
        return 0.0
    x = r[ok]
    d_t = np.broadcast_to(d, r.shape)[ok]
    lo_t, hi_t = np.broadcast_to(lo, r.shape)[ok], np.broadcast_to(hi, r.shape)[ok]
    for w in _WIDEN_GRID:
        f = 1 + w * d_t
        if ((x >= lo_t * f) & (x <= hi_t * f)).mean() >= level:
            return float(w)
    return float(_WIDEN_GRID[-1])


def _seed_residuals(table: DataTable, loco: np.ndarray) -> np.ndarray | None:
    """(n, S, m) log residuals of each seed's own D_J against its config's LOCO prediction; NaN
    where the seed did not reach the threshold by its run's end, where a config has fewer
    seeds, or where there is no prediction (the seed-averaged interval leaves out unreached
    points alike). None without per-seed data."""
    if table.seed_data is None or not table.seed_data.size:
        return None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = np.log(table.seed_data / loco[:, None, :])
    r[~np.isfinite(r)] = np.nan
    return r if np.isfinite(r).any() else None


def _seed_offsets(rs: np.ndarray, level: float, scale: float = 1.0
                  ) -> tuple[float, float] | None:
    """(low, high) log offsets holding `level` of single seeds, equal-tailed: the weighted
    quantiles of the seeds' residuals `rs` (configs x seeds x thresholds), each config weighted
    equally (its seeds share its weight), the level corrected for the number of configs (the
    exchangeable units), times `scale` (the group scale of the seed-averaged interval)."""
    per_config = np.isfinite(rs).reshape(len(rs), -1).sum(axis=1)
    units = int((per_config > 0).sum())
    if not units:
        return None
    ok = np.isfinite(rs)
    w = np.broadcast_to((1.0 / np.maximum(per_config, 1))[:, None, None], rs.shape)[ok]
    r = rs[ok]
    order = np.argsort(r)
    r, c = r[order], np.cumsum(w[order]) / w.sum()
    corrected = min(1.0, level * (1 + 1 / units))

    def q(p: float) -> float:
        return float(r[min(int(np.searchsorted(c, p - 1e-12)), len(r) - 1)])

    return min(scale * q((1 - corrected) / 2), 0.0), max(scale * q((1 + corrected) / 2), 0.0)


def band_seed_offsets(rs: np.ndarray, level: float, scale: float = 1.0, pooled: bool = False
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """_seed_offsets per band of thresholds, (m,) each (as band_quantiles does for the
    seed-averaged interval: a band without seeds, or with too few configs reaching it for the
    level, takes at least the offsets of all thresholds pooled); None without any seed."""
    whole = _seed_offsets(rs, level, scale)
    if whole is None:
        return None
    m = rs.shape[2]
    lo, hi = np.full(m, whole[0]), np.full(m, whole[1])
    if pooled:
        return lo, hi
    band = threshold_bands(m)
    for j in np.unique(band):
        cols = band == j
        sub = rs[:, :, cols]
        b = _seed_offsets(sub, level, scale)
        if b is None:
            continue
        units = int(np.isfinite(sub).reshape(len(sub), -1).any(axis=1).sum())
        if _too_few(level, units):
            b = min(b[0], whole[0]), max(b[1], whole[1])
        lo[cols], hi[cols] = b
    return lo, hi


def single_seed_bounds(table: DataTable, loco: np.ndarray, lows: np.ndarray, highs: np.ndarray,
                       scales: dict[float, float] | None = None, pooled: bool = False
                       ) -> tuple[np.ndarray, np.ndarray] | None:
    """The interval for a single seed's D_J, (levels, m) log lows and highs: at least the
    seed-averaged `lows` and `highs` (levels x thresholds), and wide enough on each side for
    the level's share of the fit's single seeds against their configs' LOCO predictions
    (band_seed_offsets, scaled by the level's group scale in `scales` where given). Seeds that
    never reached a threshold are left out, as unreached points are from the seed-averaged
    interval (the fit's notes give their share). None without per-seed data."""
    rs = _seed_residuals(table, loco)
    if rs is None:
        return None
    out_lo, out_hi = [], []
    for level, lo, hi in zip(LEVELS, lows, highs):
        s_lo, s_hi = band_seed_offsets(rs, level, (scales or {}).get(level, 1.0), pooled)
        out_lo.append(np.maximum(np.minimum(lo, s_lo), -20.0))
        out_hi.append(np.minimum(np.maximum(hi, s_hi), 20.0))
    return (np.minimum.accumulate(np.array(out_lo), axis=0),
            np.maximum.accumulate(np.array(out_hi), axis=0))


def single_seed_coverage(table: DataTable, loco: np.ndarray, level: float = CHECK_LEVEL,
                         floor: tuple[float, float] | None = None, min_own: int = 1,
                         groups: Groups | None = None, pooled: bool = False) -> float:
    """Coverage of the single-seed interval on each config's seeds (those that reached) when
    it is built from the other configs only (their LOCO residuals, groups and seeds), as
    loco_coverage does for the seed-averaged one; NaN without per-seed data."""
    rs = _seed_residuals(table, loco)
    if rs is None:
        return float("nan")
    r = _residuals(table.data, loco)
    ok = np.isfinite(r)
    n = len(table.utd)
    hits = []
    for i in range(n):
        keep = np.arange(n) != i
        honest = _honest_bounds(r, ok, keep, level, groups, floor, min_own, with_scale=True,
                                pooled=pooled)
        seeds = (band_seed_offsets(rs[keep], level, honest[2], pooled) if honest is not None
                 else None)
        if seeds is None or not np.isfinite(rs[i]).any():
            continue
        lo, hi = np.minimum(honest[0], seeds[0]), np.maximum(honest[1], seeds[1])
        hits.append(_hits(rs[i], lo, hi))
    return float(np.concatenate(hits).mean()) if hits else float("nan")


@dataclass(frozen=True)
class Floor:
    """Log offsets an interval must at least span, from outside the fit's own configs (e.g.
    the family residuals of a few-shot fit, calibration.prior): log_low[i], log_high[i] at
    levels[i]; `min_own`: fewer configs than this and the fit's own residuals are not used;
    `coverage`: measured coverages to record; `note`: what it is, for the method text."""

    levels: tuple[float, ...]
    log_low: tuple[float, ...]
    log_high: tuple[float, ...]
    min_own: int
    coverage: dict
    note: str

    def at(self, level: float) -> tuple[float, float]:
        return (float(np.interp(level, self.levels, self.log_low)),
                float(np.interp(level, self.levels, self.log_high)))


class IntervalError(AdvisorError):
    """Runs whose held-out residuals make an interval wider than a fit file holds."""


def calibrate_interval(table: DataTable, method: Method, laws: LawFit, loco: np.ndarray,
                       refit=None, floor: Floor | None = None, scale_groups: bool = True,
                       pooled: bool = False
                       ) -> tuple[PredictionInterval, dict[str, np.ndarray]]:
    """The prediction interval of a fit, and the held-out predictions behind it
    ({'utd': rows left out, 'params': columns left out}). `refit(keep) -> LawFit` refits the
    law on some configs (default `fit_laws` warm-started); `floor` widens the interval to at
    least its offsets (and replaces the own residuals below `floor.min_own` configs);
    `scale_groups=False` leaves out the scaling for rows and columns, `pooled=True` the bands
    of thresholds (one interval for every target, as in schema 2): for comparison only."""
    r = _residuals(table.data, loco)
    n_res = int(np.isfinite(r).sum())
    n, m = r.shape
    own = floor is None or (n >= floor.min_own and n_res > 0)
    preds = {axis: group_out(table, method, laws, axis, refit=refit) for axis in ("utd", "params")}
    groups = interior_groups(table, preds)

    def nested(each_pooled: bool):
        """(levels, m) lows and highs, and the group scale per level."""
        scales, lows, highs = {}, [], []
        for level in LEVELS:
            lo, hi = (band_quantiles(r, level, each_pooled) if own
                      else (np.zeros(m), np.zeros(m)))
            if own and scale_groups:
                scales[level] = groups.scale(lo, hi, level)
                lo, hi = scales[level] * lo, scales[level] * hi
            if floor is not None:
                f_lo, f_hi = floor.at(level)
                lo, hi = np.minimum(lo, f_lo), np.maximum(hi, f_hi)
            lows.append(lo)
            highs.append(hi)
        # Nested: a higher level's interval contains a lower one's (the scale can shrink).
        return (np.minimum.accumulate(np.array(lows), axis=0),
                np.maximum.accumulate(np.array(highs), axis=0), scales)

    banded = own and not pooled and m > 1
    lows, highs, scales = nested(not banded)
    seeds = single_seed_bounds(table, loco, lows, highs, scales, pooled=not banded)
    i8 = LEVELS.index(CHECK_LEVEL)
    lo8, hi8 = lows[i8], highs[i8]
    up_r, up_d = _edges(table, preds, "up")
    down_r, down_d = _edges(table, preds, "down")
    widen_up = max(WIDEN_FLOOR_UP, _least_widen(up_r, up_d, lo8, hi8, CHECK_LEVEL))
    widen_down = max(WIDEN_FLOOR_DOWN, _least_widen(down_r, down_d, lo8, hi8, CHECK_LEVEL))
    honest = dict(floor=floor.at(CHECK_LEVEL) if floor else None,
                  min_own=floor.min_own if floor else 1, pooled=not banded)
    used = groups if scale_groups else None
    coverage = {"leave_one_config_out": loco_coverage(table, loco, groups=used, **honest)}
    if seeds is not None:
        coverage["single_seed_leave_one_config_out"] = single_seed_coverage(
            table, loco, groups=used, **honest)
    if floor is not None:
        coverage.update(floor.coverage)
    for axis, name in (("utd", "interior_utd_rows_out"), ("params", "interior_params_columns_out")):
        coverage[name] = group_coverage(table, loco, groups, axis, scale=scale_groups, **honest)
    # The edges, per axis: each side's outermost row with the widening its column calls for,
    # and the other way round (the shipped widening was chosen on both: optimistic there).
    for side, name, floor_w in (("up", "largest", WIDEN_FLOOR_UP),
                                ("down", "smallest", WIDEN_FLOOR_DOWN)):
        edges = edge_coverage(table, loco, preds, side, floor_w, used,
                              bounds_floor=honest["floor"], min_own=honest["min_own"],
                              pooled=honest["pooled"])
        for axis, what in (("utd", "utd_row"), ("params", "params_column")):
            if axis in edges:
                coverage[f"{name}_{what}_out"] = edges[axis]
    own_text = ("split conformal on leave-one-config-out log residuals (finite-sample "
                "corrected over configs)")
    if banded:
        own_text += (f" per band of thresholds ({len(np.unique(threshold_bands(m)))} bands; "
                     "corrected over the configs reaching each)")
    if scale_groups:
        own_text += (", scaled by the least factor >= 1 that also covers the level's share of "
                     "the residuals of the interior rows, and of the interior columns, each left "
                     f"out whole (x{scales.get(CHECK_LEVEL, 1.0):g} at {CHECK_LEVEL:g})")
    widen_text = ("widened beyond the fitted domain by fits without the outermost rows and "
                  f"columns (floors {WIDEN_FLOOR_UP:g} above, {WIDEN_FLOOR_DOWN:g} below)")
    if floor is None:
        text = f"{own_text}; {widen_text}"
    elif own:
        text = f"the wider of {own_text} and {floor.note}; {widen_text}"
    else:
        text = (f"{floor.note} (the fit's own residuals are not used below {floor.min_own} "
                f"configs); {widen_text}")
    widest = max(float(np.abs(x).max()) for x in (lows, highs, *(seeds or ())))
    if widest > MAX_LOG_OFFSET:  # the schema's bound: no law of these runs, or no learning
        raise IntervalError(
            f"the fit's prediction interval would span a factor of e^{widest:.3g} around its "
            f"predictions (its runs held out one configuration at a time miss by that much), "
            f"more than the e^{MAX_LOG_OFFSET:g} a fit file holds: the law does not describe "
            "these runs; fit runs that learn past the thresholds (longer ones?), or give "
            "thresholds of your own (advisor fit --target-range)")
    bands = None
    if banded:
        band = threshold_bands(m)
        bands = []
        for j in np.unique(band):
            c = int(np.flatnonzero(band == j)[0])
            cols = table.targets[band == j]
            bands.append(IntervalBand(
                target_low=float(cols[0]), target_high=float(cols[-1]),
                log_low=_rounded(lows[:, c]), log_high=_rounded(highs[:, c]),
                seed_log_low=None if seeds is None else _rounded(seeds[0][:, c]),
                seed_log_high=None if seeds is None else _rounded(seeds[1][:, c])))
    # The whole interval: with bands, the span of them all (what holds at any target).
    interval = PredictionInterval(
        method=text,
        levels=list(LEVELS), log_low=_rounded(lows.min(axis=1)),
        log_high=_rounded(highs.max(axis=1)), widen_up=_round(widen_up),
        widen_down=_round(widen_down), n_residuals=max(n_res, 1),
        seed_log_low=None if seeds is None else _rounded(seeds[0].min(axis=1)),
        seed_log_high=None if seeds is None else _rounded(seeds[1].max(axis=1)),
        bands=bands,
        coverage={k: _round(v) for k, v in coverage.items() if np.isfinite(v)})
    return interval, preds


def _rounded(x: np.ndarray) -> list[float]:
    return [_round(float(v)) for v in x]


def _round(x: float, sig: int = 6) -> float:
    return float(f"{x:.{sig}g}")


def threshold_offsets(interval: PredictionInterval, targets: np.ndarray,
                      level: float = CHECK_LEVEL, single_seed: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(log low, log high) of `interval` at each of `targets`, (m,) each: what Fit.interval
    applies there inside the fitted domain (its band's offsets where it has bands)."""
    pairs = [interval.offsets(level, float(t), single_seed) for t in targets]
    if any(p is None for p in pairs):
        raise ValueError("the interval has no single-seed offsets")
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
