"""Conformal calibration of every model's 80/95% bounds on earlier backtest windows.

An error `y - yhat` is divided by a scale `w` (`normaliser_width`: the model's own 95% half-width, the
price level, or the series' own naive-error scale, each growing with sqrt(lead time) where it does not
already); ranges of `r = (y - yhat) / w` pooled over all series in finished earlier windows give the
calibrated bounds `yhat + q * w` (split-conformal with a normalised score): per lead time from every
earlier window whose step at that lead is observed by the cut-off, once two such windows exist (pooled over
lead times of finished windows before). For each model and window the normaliser whose bands score the
lowest mean Winkler score on those same earlier errors is used, so bands of step-like prices are no wider
than the pooled errors need.

Small pools (few series or origins): the bound is the ceil((n + 1)(1 - a)) / n share of the pooled
absolute scaled errors, with n the number of forecast paths (series x window: the h errors of one path
move together, so they count once), and when n is too small for the level (n < 4 at 80%, n < 19 at 95%)
the widest error times `tail_factor` (ln(1 / a) / ln(n + 1), an exponential-tail extrapolation). Lower
bounds of series whose history is non-negative (prices) are clipped at 0.

The default score is |r| (`INTERVAL_SHAPE` "symmetric": one quantile for both sides), which needs half
the data of equal tails and does not bet on the sign of future errors repeating that of the few
calibration windows (promotions push errors down; a chain-wide price rise pushes every series up at once,
see benchmarks/bench_forecast.py). `interval_shape=` "equal" (equal-tailed), "shortest" or "auto"
(shortest ranges when at least 10% of the errors are exactly zero, equal tails otherwise) are there for
comparison.
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
NORMALISERS = ("model", "level", "series")  #: error scales tried per model and window (see normaliser_width)
COUNT_PATHS = True  #: the finite-sample rule counts forecast paths (series x window), not single errors
ATOM_SHARE = 0.10  #: "auto": errors exactly zero this often (unchanged prices) call for shortest ranges


def conformal_factors(vals: np.ndarray, shape: str | None = None, n_eff: int | None = None) -> np.ndarray:
    """Conformal factors lo80, hi80, lo95, hi95 (nested, around zero), at the finite-sample levels
    of `conformal_level` (ceil((n + 1)(1 - a)) / n), with n = `n_eff` (default: the number of errors) when
    the errors come from fewer independent blocks than there are errors.

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
    ne = n if n_eff is None else max(1, min(n, int(n_eff)))
    l80, l95 = conformal_level(0.80, ne), conformal_level(0.95, ne)
    if shape == "symmetric":
        a = np.sort(np.abs(vals))
        q80, q95 = (symmetric_quantile(a, lv, ne) for lv in (0.80, 0.95))
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


def enough_for(level: float, n: int) -> bool:
    """True when `n` exchangeable calibration errors can hold `level` by the finite-sample rule
    (ceil((n + 1) * level) <= n, e.g. n >= 4 for 80%, n >= 19 for 95%)."""
    return n > 0 and np.ceil((n + 1) * level - 1e-9) <= n


def tail_factor(level: float, n: int) -> float:
    """How far past the widest of `n` calibration errors the `level` quantile lies when `n` is too small for
    the level (see `enough_for`): the widest of n exchangeable errors sits near the 1 - 1 / (n + 1)
    quantile, and under an exponential tail quantiles grow as ln(1 / (1 - p)), so the factor is
    ln(1 / (1 - level)) / ln(n + 1), at least 1 (e.g. 1.44 for 95% from 7 errors, 4.3 from 1 error)."""
    return float(max(1.0, np.log(1 / (1 - level)) / np.log(max(n, 1) + 1)))


def symmetric_quantile(a: np.ndarray, level: float, n_eff: int) -> float:
    """The conformal bound of sorted absolute errors `a` at `level`: the ceil((n_eff + 1) * level) / n_eff
    share of them (`n_eff` <= len(a): how many independent blocks the errors come from, e.g. one per
    series and window, as the errors of one forecast path move together); when `n_eff` is too small for
    the level, the widest error times `tail_factor`."""
    n = len(a)
    if not enough_for(level, n_eff):
        return float(a[-1]) * tail_factor(level, n_eff)
    share = conformal_level(level, n_eff)
    return float(a[max(1, min(n, int(np.ceil(share * n - 1e-9)))) - 1])


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
        if bt.nonneg is not None:  # prices (a non-negative history up to the cut-off) never go below 0
            lows = [BOUNDS.index(b) for b in BOUNDS if b.startswith("lo")]
            nn = bt.nonneg[:, :, None, None, None]
            cal[:, :, :, lows, :] = np.where(nn, np.fmax(cal[:, :, :, lows, :], 0.0), cal[:, :, :, lows, :])
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


def normaliser_width(
    kind: str, point: np.ndarray, lo95: np.ndarray, hi95: np.ndarray, scale, rel_floor, lead: np.ndarray
) -> np.ndarray:
    """The scale that normalises errors before they are pooled (`lead`: 1..h, broadcast on the last axis):
    - "model": the model's own 95% half-width (`conformal_scale`);
    - "level": the price level |point| x sqrt(lead) / 100 (errors in percent of the price: promotions and
      price steps are proportional to the price, also for series whose own history never moved);
    - "series": the series' own naive-error scale (its MASE scale) x sqrt(lead), floored at
      `MIN_REL_FLOOR` x the level.
    """
    grow = np.sqrt(lead)
    if kind == "model":
        return conformal_scale(point, lo95, hi95, scale, rel_floor)
    level = np.fmax(np.abs(point), 1e-9)
    if kind == "level":
        return level * grow / 100
    sc = np.where(np.isfinite(scale), scale, 0.0)
    return np.fmax(sc, MIN_REL_FLOOR * level) * grow


def conformal_calibration(bt: Backtest, enabled: bool = True, shape: str | None = None) -> Calibration:
    """Conformal factors per model and target window from the normalised errors of pooled earlier windows
    (`enabled` False: none, every bound stays native). For each model and window the normaliser of
    `NORMALISERS` whose calibrated bands have the lowest mean Winkler score on those same earlier errors is
    used (a choice between three scales made on calibration errors only)."""
    rel_floor = relative_floors(bt)
    lead = np.arange(1, bt.h + 1, dtype=float)
    lo95, hi95 = bt.forecasts[:, :, :, Out.LO_95, :], bt.forecasts[:, :, :, Out.HI_95, :]
    sc, rf = bt.scale[:, :, None, None], rel_floor[None, None, :, None]
    widths = {kind: normaliser_width(kind, bt.point, lo95, hi95, sc, rf, lead) for kind in NORMALISERS}
    err = bt.actual[:, :, None, :] - bt.point  # (S, K, M, h) signed errors
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = {kind: err / w for kind, w in widths.items()}
    width = widths[NORMALISERS[0]].copy()
    step_factors = np.full((bt.n_windows + 1, len(bt.models), len(BOUNDS), bt.h), np.nan)
    rows = []
    for k in range(bt.n_windows + 1):
        prior, seen = bt.finished_by(k), bt.seen_by(k)
        for j, m in enumerate(bt.models):
            row = {"window": bt.label(k), "model": m, "rel_floor": float(rel_floor[j])}
            fit = _best_normaliser(err[:, prior, j], widths, ratios, j, prior, seen, shape) if enabled else None
            f = np.full(len(BOUNDS), np.nan)
            if fit is not None:
                kind, f, step_factors[k, j], row["n"], row["n_blocks"] = fit
                row["normaliser"] = kind
                if k < bt.n_windows:
                    width[:, k, j] = widths[kind][:, k, j]
            row.update({f"q_{b.replace('-', '_')}": f[i] for i, b in enumerate(BOUNDS)})
            rows.append({**row, "steps": step_factors[k, j].T.tolist()})
    frame = pd.DataFrame(rows)
    for col, fill in (("n", 0), ("n_blocks", 0), ("normaliser", NORMALISERS[0])):
        frame[col] = frame[col].fillna(fill) if col in frame else fill
    frame[["n", "n_blocks"]] = frame[["n", "n_blocks"]].astype(int)
    return Calibration(rel_floor=rel_floor, width=width, step_factors=step_factors, frame=frame)


def _best_normaliser(
    err: np.ndarray, widths: dict, ratios: dict, j: int, prior: np.ndarray, seen: np.ndarray, shape: str | None
) -> tuple | None:
    """(normaliser, pooled factors, (bound, h) factors, n errors, n blocks) of model `j` with the lowest mean
    80% + 95% Winkler score on its earlier errors `err` (S, P, h); None with fewer than `MIN_CALIBRATION`."""
    best, best_score = None, np.inf
    for kind in NORMALISERS:
        block = ratios[kind][:, prior, j, :]
        vals = block[np.isfinite(block)]
        # one forecast path (a series in a window) is one block: its h errors move together
        n_blocks = int(np.isfinite(block).any(axis=-1).sum())
        if len(vals) < MIN_CALIBRATION:
            continue
        f = conformal_factors(vals, shape, n_blocks if COUNT_PATHS else None)
        steps = _per_step(ratios[kind][:, :, j, :], seen, f, shape)
        score = _calibration_winkler(err, widths[kind][:, prior, j, :], steps)
        if best is None or score < best_score - 1e-12:
            best, best_score = (kind, f, steps, int(len(vals)), n_blocks), score
    return best


def _calibration_winkler(err: np.ndarray, w: np.ndarray, steps: np.ndarray) -> float:
    """Mean 80% + 95% Winkler score of bands `steps` (bound, h) x width `w` around the forecasts with errors
    `err` (both (S, P, h)), over the finite errors."""
    total = np.zeros_like(err)
    for i, lv in ((0, 80), (2, 95)):
        lo, hi = steps[i][None, None, :] * w, steps[i + 1][None, None, :] * w
        a = 1 - lv / 100
        total = total + (hi - lo) + 2 / a * (np.fmax(lo - err, 0) + np.fmax(err - hi, 0))
    ok = np.isfinite(total)
    return float(total[ok].mean()) if ok.any() else np.inf


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
    kind = str(calib.get("normaliser", NORMALISERS[0])) if calib is not None else NORMALISERS[0]
    h = len(point)
    lo95, hi95 = native[BOUNDS.index("lo-95")], native[BOUNDS.index("hi-95")]
    w = normaliser_width(kind, point, lo95, hi95, scale, rel_floor, np.arange(1, h + 1, dtype=float))
    f = np.asarray(calib["steps"], dtype=float).T if calib is not None else np.full((len(BOUNDS), h), np.nan)
    return {b: apply_factors(point, f[i], w, native[i]) for i, b in enumerate(BOUNDS)}
