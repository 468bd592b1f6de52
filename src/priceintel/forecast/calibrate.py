"""Conformal calibration of every model's 80/95% bounds on earlier backtest windows.

Each model's own 95% interval half-width `w` (statsforecast levels, or empirical k-step-error quantiles
for the baselines) scales the error `r = (y - yhat) / w`; ranges of `r` pooled over all series in
finished earlier windows give the calibrated bounds `yhat + q * w` (split-conformal with a normalised
score): per lead time from every earlier window whose step at that lead is observed by the cut-off, once
two such windows exist (pooled over lead times of finished windows before), at the finite-sample level
ceil((n + 1)(1 - a)) / n. The default score is |r| (`INTERVAL_SHAPE` "symmetric": one quantile for both
sides), which needs half the data of equal tails and does not bet on the sign of future errors repeating
that of the few calibration windows (promotions push errors down; a chain-wide price rise pushes every
series up at once, see benchmarks/bench_forecast.py). `interval_shape=` "equal" (equal-tailed),
"shortest" or "auto" (shortest ranges when at least 10% of the errors are exactly zero, equal tails
otherwise) are there for comparison.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from priceintel.forecast.arrays import BOUND_OUTS, Backtest, Out
from priceintel.forecast.columns import BOUNDS
from priceintel.forecast.series import ForecastError

MIN_CALIBRATION = 20  #: fewest earlier errors of a model to calibrate its bounds at all
MIN_STEP_CALIBRATION = 50  #: fewest earlier errors at one lead time to calibrate that lead time alone
STEP_MIN_WINDOWS = 2  #: fewest finished windows before lead times are calibrated one by one
MIN_REL_FLOOR = 0.005  #: the scale is never below 0.5% of the level
INTERVAL_SHAPES = ("symmetric", "equal", "shortest", "auto")
INTERVAL_SHAPE = "symmetric"  #: default of INTERVAL_SHAPES (see conformal_factors)
ATOM_SHARE = 0.10  #: "auto": errors exactly zero this often (unchanged prices) call for shortest ranges


def conformal_factors(vals: np.ndarray, shape: str | None = None) -> np.ndarray:
    """Conformal factors lo80, hi80, lo95, hi95 (nested, around zero), at the finite-sample levels
    of `conformal_level` (ceil((n + 1)(1 - a)) / n).

    `shape` (default `INTERVAL_SHAPE`):
    - "symmetric": the standard split-conformal score |normalised error|; the bound is its
      ceil((n + 1) * level)-th smallest value, on both sides of the forecast. Both tails share one
      quantile, so it needs half the data of equal tails and does not assume that the sign of future
      errors follows the calibration windows (promotions push errors down, a chain-wide price rise
      pushes them all up).
    - "equal": equal-tailed quantiles of the signed errors.
    - "shortest": the shortest ranges holding 80% / 95% (for a point mass at zero with one tail).
    - "auto": "shortest" when at least `ATOM_SHARE` of the errors are exactly zero, else "equal".
    """
    shape = shape or INTERVAL_SHAPE
    if shape not in INTERVAL_SHAPES:
        raise ForecastError(f"interval shape {shape!r}: choose from {list(INTERVAL_SHAPES)}")
    if shape == "auto":
        shape = "shortest" if np.mean(np.abs(vals) < 1e-9) >= ATOM_SHARE else "equal"
    n = len(vals)
    l80, l95 = conformal_level(0.80, n), conformal_level(0.95, n)
    if shape == "symmetric":
        a = np.sort(np.abs(vals))
        q80, q95 = (float(a[max(1, min(n, int(round(lv * n)))) - 1]) for lv in (l80, l95))
        f = np.array([-q80, q80, -q95, q95])
    elif shape == "equal":
        f = np.quantile(vals, [(1 - l80) / 2, (1 + l80) / 2, (1 - l95) / 2, (1 + l95) / 2])
    else:
        f = np.r_[shortest_interval(vals, l80), shortest_interval(vals, l95)]
    return np.array([min(f[0], 0), max(f[1], 0), min(f[2], f[0], 0), max(f[3], f[1], 0)])


def conformal_level(level: float, n: int) -> float:
    """Finite-sample split-conformal level: the ceil((n + 1) * level) / n share of n calibration errors
    (at most 1), so that a new error falls inside with probability >= `level` under exchangeability."""
    if n <= 0:
        return float(level)
    return float(min(1.0, np.ceil((n + 1) * level - 1e-9) / n))


def shortest_interval(vals: np.ndarray, level: float) -> tuple[float, float]:
    """Shortest [lo, hi] holding a `level` share of `vals` (conformal bounds of normalised errors).

    Unlike equal-tailed quantiles this keeps nominal coverage when errors have a point mass at zero
    (prices that usually do not move) and a one-sided tail (temporary promotions).
    """
    v = np.sort(np.asarray(vals, dtype=float))
    n = len(v)
    m = min(n, max(1, int(np.ceil(level * n))))
    widths = v[m - 1 :] - v[: n - m + 1]
    i = int(np.argmin(widths))
    return float(v[i]), float(v[i + m - 1])


def conformal_scale(point: np.ndarray, lo95: np.ndarray, hi95: np.ndarray, scale, rel_floor=MIN_REL_FLOOR):
    """Conformal scale: the model's 95% half-width, floored at half the series' MASE scale and at
    `rel_floor` x the level (a quarter of the model's typical relative width), so that series with a
    flat history cannot blow up the pooled quantiles."""
    hw = (hi95 - lo95) / 2
    sc = np.where(np.isfinite(scale), scale, 0.0) * 0.5
    floor = np.fmax(np.abs(point) * np.fmax(rel_floor, MIN_REL_FLOOR), 1e-9)
    return np.fmax(np.where(np.isfinite(hw), hw, 0.0), np.fmax(floor, sc))


def apply_factors(point: np.ndarray, factor: np.ndarray, width: np.ndarray, native: np.ndarray) -> np.ndarray:
    """A calibrated bound `point + factor * width`; the native bound where there is no factor."""
    return np.where(np.isfinite(factor), point + factor * width, native)


@dataclass
class Calibration:
    """Conformal factors of every model for every window (row K: the final forecast)."""

    rel_floor: np.ndarray  #: (M,) relative floor of each model's scale
    width: np.ndarray  #: (S, K, M, h) the conformal scale of every backtest forecast
    step_factors: np.ndarray  #: (K + 1, M, bound, h) factors per lead time (bound: the order of BOUNDS)
    frame: pd.DataFrame  #: per window and model: n, rel_floor, pooled factors q_lo_80.., per-step `steps`

    def bounds(self, bt: Backtest) -> np.ndarray:
        """(S, K, M, bound, h) calibrated backtest bounds; the native bounds where no calibration exists."""
        cal = np.empty_like(bt.forecasts[:, :, :, 1:, :])
        for i, out in enumerate(BOUND_OUTS):
            f = self.step_factors[: bt.n_windows, :, i, :][None, :, :, :]
            cal[:, :, :, i, :] = apply_factors(bt.point, f, self.width, bt.forecasts[:, :, :, out, :])
        return cal


def relative_floors(bt: Backtest) -> np.ndarray:
    """(M,) per model: a quarter of its typical relative 95% half-width in the first window (fitted on data
    before every cut-off, so no window's calibration depends on data after its own cut-off)."""
    first = bt.forecasts[:, :1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rel = (first[:, :, :, Out.HI_95, :] - first[:, :, :, Out.LO_95, :]) / 2 / np.abs(bt.point[:, :1])
        rel_floor = 0.25 * np.nanmedian(
            np.where(np.isfinite(rel), rel, np.nan).transpose(2, 0, 1, 3).reshape(len(bt.models), -1), axis=1
        )
    return np.where(np.isfinite(rel_floor), rel_floor, MIN_REL_FLOOR)


def conformal_calibration(bt: Backtest, enabled: bool = True, shape: str | None = None) -> Calibration:
    """Conformal factors per model and target window from the normalised errors of pooled earlier windows
    (`enabled` False: none, every bound stays native)."""
    rel_floor = relative_floors(bt)
    w = conformal_scale(
        bt.point,
        bt.forecasts[:, :, :, Out.LO_95, :],
        bt.forecasts[:, :, :, Out.HI_95, :],
        bt.scale[:, :, None, None],
        rel_floor[None, None, :, None],
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (bt.actual[:, :, None, :] - bt.point) / w  # (S, K, M, h) normalised errors
    step_factors = np.full((bt.n_windows + 1, len(bt.models), len(BOUNDS), bt.h), np.nan)
    rows = []
    for k in range(bt.n_windows + 1):
        prior = bt.finished_by(k)
        # per lead time: every earlier window whose step at that lead is dated on or before cut-off k
        # (observed by then, like the errors the model choice uses), not only the finished windows
        seen = bt.seen_by(k)
        for j, m in enumerate(bt.models):
            vals = r[:, prior, j, :].ravel()
            vals = vals[np.isfinite(vals)]
            if enabled and len(vals) >= MIN_CALIBRATION:
                f = conformal_factors(vals, shape)
                step_factors[k, j] = _per_step(r[:, :, j, :], seen, f, shape)
            else:
                f = np.array([np.nan] * len(BOUNDS))
            row = {"window": bt.label(k), "model": m, "n": int(len(vals)), "rel_floor": float(rel_floor[j])}
            row.update({f"q_{b.replace('-', '_')}": f[i] for i, b in enumerate(BOUNDS)})
            rows.append({**row, "steps": step_factors[k, j].T.tolist()})
    return Calibration(rel_floor=rel_floor, width=w, step_factors=step_factors, frame=pd.DataFrame(rows))


def _per_step(r: np.ndarray, seen: np.ndarray, pooled: np.ndarray, shape: str | None) -> np.ndarray:
    """(bound, h) factors of one model: per lead time where enough earlier errors at that lead exist
    (`r`: (S, K, h) normalised errors, `seen`: (K, h)), else the `pooled` factors."""
    out = np.empty((len(pooled), r.shape[-1]))
    for t in range(r.shape[-1]):
        vt = r[:, seen[:, t], t].ravel()
        vt = vt[np.isfinite(vt)]
        enough = len(vt) >= MIN_STEP_CALIBRATION and seen[:, t].sum() >= STEP_MIN_WINDOWS
        out[:, t] = conformal_factors(vt, shape) if enough else pooled
    return out


def final_bounds(point: np.ndarray, native: np.ndarray, scale: float, calib: pd.Series | None) -> dict:
    """Calibrated bounds (bound name -> array) of one final forecast: `native` (bound, h) bounds, `calib`
    the model's final row of the calibration frame (None: not calibrated, the native bounds)."""
    rel_floor = calib["rel_floor"] if calib is not None else MIN_REL_FLOOR
    w = conformal_scale(point, native[BOUNDS.index("lo-95")], native[BOUNDS.index("hi-95")], scale, rel_floor)
    h = len(point)
    f = np.asarray(calib["steps"], dtype=float).T if calib is not None else np.full((len(BOUNDS), h), np.nan)
    return {b: apply_factors(point, f[i], w, native[i]) for i, b in enumerate(BOUNDS)}
