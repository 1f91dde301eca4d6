"""Prediction intervals for the data a new run needs, calibrated by cross-validation.

The law's own error and run-to-run noise both show in leave-one-config-out (LOCO) residuals
r = log(D_observed / D_predicted), the prediction made by a fit that never saw the config. The
interval at level L is split conformal on those residuals: the (1 - L')/2 and (1 + L')/2
quantiles, L' = L (1 + 1/n) for n configs (the finite-sample correction; configs, not points,
are the exchangeable units since a config's thresholds share one noisy curve).

Outside the fitted domain the residuals grow. Refitting without the outermost row (largest or
smallest utd) or column (largest or smallest params) of the grid and predicting it measures how
fast: the interval's log offsets are scaled by 1 + widen * distance (distance in log units beyond
the fitted range), with `widen` the least value that covers `level` of those held-out edge
points, and never below a floor taken from the shipped fits (README, "Intervals").
"""

from __future__ import annotations

import numpy as np

from advisor.fitfile import PredictionInterval
from calibration.curves import DataTable
from calibration.fitting import LawFit, Method, fit_laws

LEVELS = tuple(round(x, 2) for x in np.arange(0.5, 0.951, 0.05))
CHECK_LEVEL = 0.8
#: Floors of the widening per log unit beyond the largest / below the smallest fitted value:
#: about the median of what the 19 shipped fits need (benchmarks/intervals.py), so that a grid
#: whose own edges happen to extrapolate well still gets a wider interval outside its domain.
WIDEN_FLOOR_UP = 0.25
WIDEN_FLOOR_DOWN = 1.0
_WIDEN_GRID = np.concatenate([np.linspace(0, 2, 81), np.linspace(2.1, 50, 480),
                              np.linspace(51, 1000, 950)])


def conformal_quantiles(residuals: np.ndarray, level: float, n_units: int) -> tuple[float, float]:
    """(low, high) log offsets covering `level` of new residuals (low <= 0 <= high)."""
    corrected = min(1.0, level * (1 + 1 / max(n_units, 1)))
    lo, hi = np.quantile(residuals, [(1 - corrected) / 2, (1 + corrected) / 2])
    return min(float(lo), 0.0), max(float(hi), 0.0)


def group_out(table: DataTable, method: Method, laws: LawFit, axis: str,
              values: np.ndarray | None = None) -> np.ndarray:
    """(n, m) predictions of every config from a fit without all configs sharing its `axis`
    value ('utd' or 'params'): a whole row or column of the grid left out at a time."""
    col = getattr(table, axis)
    out = np.full(table.data.shape, np.nan)
    for v in (np.unique(col) if values is None else values):
        keep = col != v
        if len(np.unique(col[keep])) < 1 or keep.sum() < 3:
            continue
        fit = fit_laws(table, method, keep=keep, warm=laws)
        out[~keep] = fit.predict(table.utd[~keep], table.params[~keep])
    return out


def _residuals(data: np.ndarray, pred: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(data / pred)


def _covered(r: np.ndarray, lo: float, hi: float, scale: np.ndarray | float = 1.0) -> np.ndarray:
    return (r >= lo * scale) & (r <= hi * scale)


def loco_coverage(table: DataTable, loco: np.ndarray, level: float = CHECK_LEVEL) -> float:
    """Coverage of the interval on each config when its quantiles come from the other configs'
    LOCO residuals only (honest: the held-out config never calibrates its own interval)."""
    r = _residuals(table.data, loco)
    ok = np.isfinite(r)
    n = len(table.utd)
    hits = []
    for i in range(n):
        others = np.concatenate([r[k][ok[k]] for k in range(n) if k != i])
        if not others.size or not ok[i].any():
            continue
        lo, hi = conformal_quantiles(others, level, n - 1)
        hits.append(_covered(r[i][ok[i]], lo, hi))
    return float(np.concatenate(hits).mean()) if hits else float("nan")


def _edges(table: DataTable, preds: dict[str, np.ndarray], side: str):
    """Residuals and distances (log units beyond the remaining grid) of the outermost rows and
    columns on one side ('up': largest values, 'down': smallest)."""
    rs, ds = [], []
    for axis, pred in preds.items():
        col = getattr(table, axis)
        u = np.unique(col)
        if len(u) < 3:
            continue
        v, nb = (u[-1], u[-2]) if side == "up" else (u[0], u[1])
        r = _residuals(table.data[col == v], pred[col == v])
        ok = np.isfinite(r)
        rs.append(r[ok])
        ds.append(np.full(ok.sum(), abs(np.log(v / nb))))
    if not rs:
        return np.empty(0), np.empty(0)
    return np.concatenate(rs), np.concatenate(ds)


def _least_widen(r: np.ndarray, d: np.ndarray, lo: float, hi: float, level: float) -> float:
    if not r.size:
        return 0.0
    for w in _WIDEN_GRID:
        if _covered(r, lo, hi, 1 + w * d).mean() >= level:
            return float(w)
    return float(_WIDEN_GRID[-1])


def _interior(table: DataTable, pred: np.ndarray, axis: str) -> np.ndarray:
    col = getattr(table, axis)
    u = np.unique(col)
    inner = (col != u[0]) & (col != u[-1])
    r = _residuals(table.data[inner], pred[inner])
    return r[np.isfinite(r)]


def calibrate_interval(table: DataTable, method: Method, laws: LawFit, loco: np.ndarray
                       ) -> tuple[PredictionInterval, dict[str, np.ndarray]]:
    """The prediction interval of a fit, and the held-out predictions behind it
    ({'utd': rows left out, 'params': columns left out})."""
    r = _residuals(table.data, loco)
    r = r[np.isfinite(r)]
    n = len(table.utd)
    bounds = [conformal_quantiles(r, level, n) for level in LEVELS]
    preds = {axis: group_out(table, method, laws, axis) for axis in ("utd", "params")}
    lo8, hi8 = conformal_quantiles(r, CHECK_LEVEL, n)
    up_r, up_d = _edges(table, preds, "up")
    down_r, down_d = _edges(table, preds, "down")
    widen_up = max(WIDEN_FLOOR_UP, _least_widen(up_r, up_d, lo8, hi8, CHECK_LEVEL))
    widen_down = max(WIDEN_FLOOR_DOWN, _least_widen(down_r, down_d, lo8, hi8, CHECK_LEVEL))
    coverage = {"leave_one_config_out": loco_coverage(table, loco)}
    for axis, name in (("utd", "interior_utd_rows_out"), ("params", "interior_params_columns_out")):
        ri = _interior(table, preds[axis], axis)
        if ri.size:
            coverage[name] = float(_covered(ri, lo8, hi8).mean())
    if up_r.size:
        coverage["largest_row_and_column_out"] = float(
            _covered(up_r, lo8, hi8, 1 + widen_up * up_d).mean())
    if down_r.size:
        coverage["smallest_row_and_column_out"] = float(
            _covered(down_r, lo8, hi8, 1 + widen_down * down_d).mean())
    interval = PredictionInterval(
        method=("split conformal on leave-one-config-out log residuals (finite-sample corrected "
                "over configs); widened beyond the fitted domain by fits without the outermost "
                f"rows and columns (floors {WIDEN_FLOOR_UP:g} above, {WIDEN_FLOOR_DOWN:g} below)"),
        levels=list(LEVELS), log_low=[_round(b[0]) for b in bounds],
        log_high=[_round(b[1]) for b in bounds], widen_up=_round(widen_up),
        widen_down=_round(widen_down), n_residuals=int(r.size),
        coverage={k: _round(v) for k, v in coverage.items() if np.isfinite(v)})
    return interval, preds


def _round(x: float, sig: int = 6) -> float:
    return float(f"{x:.{sig}g}")
