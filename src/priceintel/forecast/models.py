"""Per-series forecasting models: a point forecast and native 80%/95% bounds from one series' history.

Every model returns a dict with the keys of `columns.OUTPUTS` (`mean`, `lo-80`, `hi-80`, `lo-95`,
`hi-95`). Baseline and price-model bounds are empirical quantiles of the same rule's in-sample k-step
errors; the statsforecast models (AutoETS, AutoTheta, AutoARIMA) and pmdarima use their own levels;
Prophet uses quantiles of its predictive samples. `run_model` runs any of them by name; the tournament
calibrates every model's bounds afterwards.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from priceintel.forecast.columns import LEVELS, POINT, bound, bounds
from priceintel.forecast.series import FREQS, ForecastError, Freq

SEASON = 7  #: weekly seasonality of daily data
WINDOW = 28  #: days in the rolling regular-price level (window_average)
MIN_LENGTH = 2 * SEASON  #: Prophet skips series shorter than this
MIN_RESIDUALS = 5  #: fewest in-sample errors at a horizon to read interval quantiles from
PROPHET_ITER = 2000  #: L-BFGS iteration cap per Prophet fit (bounds the fit time)
PROPHET_SAMPLES = 400  #: predictive samples per Prophet forecast
PROPHET_TIMEOUT = 20.0  #: seconds before a Prophet fit is abandoned (the series gets NaN + a failure)
SEED = 0
MAX_ETS_SEASON = 24  #: statsforecast ETS fits no seasonal component beyond this season length
#: AutoARIMA (both engines) is not fitted on a shorter history: its order search (up to 3 AR + 3 MA terms,
#: differencing, drift) has too few points to choose from, most of its fit time goes to them, and the model
#: is left out for that series and window (no failure; the combination renormalises over the others)
MIN_ARIMA_LENGTH = 30

# --- model names ------------------------------------------------------------------------------

BASELINES = ("naive", "seasonal_naive", "window_average", "mean")  #: backtested beside every model, always
NAIVE_BASELINES = ("naive", "seasonal_naive")  #: the goal compares `chosen` with the better of these
COMBO = "combo"  #: inverse-MASE weighted mean of the other models (computed, not fitted; see forecast.combine)
PRICE_MODELS = ("promo_step", "promo_step_q75")  #: regular price + promo state (see fc_promo_step)
SF_MODELS = ("auto_ets", "auto_theta", "auto_arima")  #: statsforecast models (fit once, forward-filter)
FAST_MODELS = BASELINES + PRICE_MODELS + ("auto_ets", "auto_theta", COMBO)
FULL_MODELS = BASELINES + PRICE_MODELS + ("auto_ets", "auto_theta", "auto_arima", COMBO)
REGRESSION = "regression"  #: level + regressor effects (e.g. planned promo flags) by least squares
PROPHET = "prophet"  #: Prophet (constant and short series skipped, every fit time-boxed)
PM_ARIMA = "pm_auto_arima"  #: pmdarima's auto_arima: the reference engine that statsforecast's AutoARIMA replaces
ALL_MODELS = FULL_MODELS + (REGRESSION, PROPHET, PM_ARIMA)

# --- intervals from a rule's own in-sample errors --------------------------------------------


def _col_quantiles(errors: np.ndarray, qs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolated quantiles of every column's finite values (vectorised) and the counts."""
    finite = np.isfinite(errors)
    counts = finite.sum(axis=0)
    srt = np.sort(np.where(finite, errors, np.inf), axis=0)
    out = np.full((len(qs), errors.shape[1]), np.nan)
    cols = np.arange(errors.shape[1])
    ok = counts > 0
    for i, q in enumerate(qs):
        pos = q * np.maximum(counts - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(counts - 1, 0))
        frac = pos - lo
        a, b = srt[lo, cols], srt[hi, cols]
        with np.errstate(invalid="ignore"):
            val = a + frac * (b - a)
        val = np.where(frac == 0, a, val)
        out[i] = np.where(ok, val, np.nan)
    return out, counts


def quantile_bounds(point: np.ndarray, errors: np.ndarray, levels: Sequence[int]) -> dict:
    """Bounds `point + quantile(errors[:, k])` per horizon, sqrt-scaled where errors are few."""
    h = len(point)
    out = {}
    if errors.size:
        qs = [q for lv in levels for q in ((1 - lv / 100) / 2, 1 - (1 - lv / 100) / 2)]
        quant, counts = _col_quantiles(errors, qs)
    else:
        quant, counts = np.full((2 * len(levels), h), np.nan), np.zeros(h, int)
    enough = counts >= MIN_RESIDUALS
    # horizons with too few errors reuse the last horizon that had enough, scaled by sqrt(k / k_ok)
    k = np.arange(h)
    last_ok = np.maximum.accumulate(np.where(enough, k, -1))
    scale = np.where(last_ok >= 0, np.sqrt((k + 1) / (np.maximum(last_ok, 0) + 1)), np.nan)
    src = np.maximum(last_ok, 0)
    for i, lv in enumerate(levels):
        lo = np.where(last_ok >= 0, quant[2 * i, src] * scale, np.nan)
        hi = np.where(last_ok >= 0, quant[2 * i + 1, src] * scale, np.nan)
        out[bound("lo", lv)] = point + np.minimum(lo, 0)
        out[bound("hi", lv)] = point + np.maximum(hi, 0)
    return out


def ahead(y: np.ndarray, h: int) -> np.ndarray:
    """Matrix A[t, k-1] = y[t + k] (NaN past the end) for in-sample k-step errors."""
    padded = np.concatenate([y, np.full(h, np.nan)])
    return sliding_window_view(padded, h + 1)[: len(y), 1:]


def _level_model(y: np.ndarray, h: int, levels: Sequence[int], level_at: np.ndarray) -> dict:
    """Flat forecast from the last in-sample level, bounds from k-step errors of that level."""
    point = np.full(h, level_at[-1])
    errors = ahead(y, h) - level_at[:, None]
    return {POINT: point, **quantile_bounds(point, errors, levels)}


# --- baselines ----------------------------------------------------------------------------------


def fc_naive(y: np.ndarray, h: int, levels: Sequence[int] = LEVELS) -> dict:
    """Last value carried forward."""
    return _level_model(y, h, levels, y.astype(float))


def fc_window_average(y: np.ndarray, h: int, levels: Sequence[int] = LEVELS, window: int = WINDOW) -> dict:
    """Rolling median of the last `window` steps: the regular-price level, robust to promos."""
    lvl = pd.Series(y).rolling(window, min_periods=min(window, SEASON, len(y))).median().to_numpy()
    lvl[-1] = np.median(y[-window:])
    return _level_model(y, h, levels, lvl)


def fc_seasonal_naive(y: np.ndarray, h: int, levels: Sequence[int] = LEVELS, season: int = SEASON) -> dict:
    """Same point of the season one season ago (same weekday last week for daily data)."""
    n = len(y)
    if n < season:
        nan = np.full(h, np.nan)
        return {POINT: nan, **{b: nan for b in bounds(levels)}}
    k = np.arange(1, h + 1)
    point = y[n - season + (k - 1) % season].astype(float)
    lag = season * np.ceil(k / season).astype(int)  # how far back each horizon looks
    t = np.arange(n)[:, None]
    src = t + k[None, :] - lag[None, :]
    base = np.where(src >= 0, y[np.clip(src, 0, n - 1)], np.nan)
    errors = ahead(y.astype(float), h) - base
    return {POINT: point, **quantile_bounds(point, errors, levels)}


def fc_mean(y: np.ndarray, h: int, levels: Sequence[int] = LEVELS) -> dict:
    """Historic average (mean of the whole history)."""
    lvl = pd.Series(y).expanding().mean().to_numpy()
    return _level_model(y, h, levels, lvl)


# --- price models -------------------------------------------------------------------------------

#: regular-price windows (short, long) in steps, by season length: daily 2/4 weeks, weekly 8/13 weeks,
#: monthly 3/6 months, quarterly 2/4 quarters; other seasons fall back to (max(3, s // 6), max(4, s // 4))
REGULAR_WINDOWS = {7: (14, 28), 52: (8, 13), 12: (3, 6), 4: (2, 4), 1: (4, 8)}
PROMO_TOL = 0.05  #: a value more than 5% below the regular level is a temporary (promo) price


def regular_windows(season: int) -> tuple[int, int]:
    """(short, long) regular-price windows for a season length."""
    return REGULAR_WINDOWS.get(int(season), (max(3, season // 6), max(4, season // 4)))


def fc_promo_step(
    y: np.ndarray, h: int, levels: Sequence[int] = LEVELS, window: int = 14, q: float = 1.0, tol: float = PROMO_TOL
) -> dict:
    """Regular price with promo state: a step-aware price model.

    The regular level at t is the `q` quantile (1.0: the maximum) of the last `window` values. When
    the last value is more than `tol` below it (a temporary promotion or dip) the forecast keeps
    the last value for the lead times at which the series' own history says such a spell usually
    still lasts (continuation share > 0.5, the MAE-optimal choice between the two values), and
    returns to the regular level after; otherwise the last value (the current regular price,
    including any step) carries forward. Bounds: empirical quantiles of the same rule's
    in-sample k-step errors at every past origin.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    window = max(1, min(int(window), n))
    win = sliding_window_view(y, window)
    reg = np.full(n, np.nan)
    reg[window - 1 :] = win.max(axis=1) if q >= 1 else np.quantile(win, q, axis=1)
    with np.errstate(invalid="ignore"):
        promo = np.isfinite(reg) & (y < reg * (1 - tol))
    future = ahead(y, h)  # (n, h): y[t + k]
    with np.errstate(invalid="ignore"):
        same = np.abs(future - y[:, None]) <= np.fmax(tol * np.abs(reg), 1e-9)[:, None]
    cont = np.cumprod(same, axis=1).astype(float)  # still in the same spell k steps later
    seen = np.isfinite(future) & promo[:, None]
    cnt = seen.sum(axis=0)
    share = np.where(cnt >= 3, (cont * seen).sum(axis=0) / np.maximum(cnt, 1), 0.0)
    hold = share > 0.5  # (h,) lead times at which a promo price usually still holds
    path = np.where(promo[:, None] & ~hold[None, :], reg[:, None], y[:, None])  # (n, h)
    point = path[-1].copy()
    errors = (future - path)[window - 1 :]
    return {POINT: point, **quantile_bounds(point, errors, levels)}


def fc_regression(
    y: np.ndarray, h: int, regressors: dict | None, levels: Sequence[int] = LEVELS, window: int | None = None
) -> dict:
    """Intercept + regressor effects by least squares on the last max(h, 4(p+1)) points.

    `regressors` maps names to arrays of length len(y) + h (history, then the known future such as a
    promo calendar). Without regressors this is the mean of the last window. Bounds: normal quantiles
    of the in-window residual spread (then calibrated by the tournament).
    """
    from scipy.stats import norm

    xs = [np.asarray(v, dtype=float) for v in (regressors or {}).values()]
    n = len(y)
    X = np.column_stack([np.ones(n + h), *xs]) if xs else np.ones((n + h, 1))
    if len(X) != n + h:
        raise ForecastError(f"regression: regressors need {n + h} values (history + horizon), got {len(X)}")
    w = min(n, window or max(h, 4 * X.shape[1]))
    Xt, yt = X[n - w : n], y[n - w :]
    beta = np.linalg.lstsq(Xt, yt, rcond=None)[0]
    point = X[n:] @ beta
    resid = yt - Xt @ beta
    sd = float(np.sqrt(np.sum(resid**2) / max(w - X.shape[1], 1)))
    out = {POINT: point}
    for lv in levels:
        z = norm.ppf(0.5 + lv / 200) * sd * np.sqrt(1 + X.shape[1] / w)
        out[bound("lo", lv)], out[bound("hi", lv)] = point - z, point + z
    return out


# --- statsforecast and pmdarima -----------------------------------------------------------------


def seasonal_test(y: np.ndarray, season: int) -> bool:
    """True when the first differences have a significant autocorrelation at the season lag (90%)."""
    if season <= 1:
        return False
    d = np.diff(np.asarray(y, dtype=float))
    n = len(d)
    if n < 3 * season:
        return False
    d = d - d.mean()
    den = float(d @ d)
    if den <= 0:
        return False
    acf = np.array([float(d[k:] @ d[:-k]) / den for k in range(1, season + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    return bool(abs(acf[-1]) > limit)


def long_enough(name: str, n: int) -> bool:
    """False when model `name` is skipped on a history of `n` points (see `MIN_ARIMA_LENGTH`)."""
    return n >= MIN_ARIMA_LENGTH if name in ("auto_arima", PM_ARIMA) else True


def _as_floats(res: dict) -> dict:
    """A statsforecast result with float arrays (its keys are already ours: mean, lo-80, ...)."""
    return {k: np.asarray(v, dtype=float) for k, v in res.items()}


def sf_model(name: str, season: int, seasonal: bool):
    """An unfitted statsforecast model (seasonal ETS restricted to additive seasonality: AZA)."""
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    m = season if seasonal else 1
    if name == "auto_ets":
        return AutoETS(season_length=m, model="AZA") if 1 < m <= MAX_ETS_SEASON else AutoETS(season_length=1)
    if name == "auto_theta":
        return AutoTheta(season_length=m)
    return AutoARIMA(season_length=m, approximation=True, max_p=3, max_q=3, max_P=1, max_Q=1)


def sf_refit_free(
    name: str, fitted: dict, y: np.ndarray, h: int, season: int, seasonal: bool, levels: Sequence[int] = LEVELS
) -> dict:
    """statsforecast model fitted on the first window (kept in `fitted`), then forward-filtered on later
    data (no refit)."""
    if name not in fitted:
        model = sf_model(name, season, seasonal)
        model.fit(y=y.astype(float))
        fitted[name] = model
        res = model.predict(h=h, level=list(levels))
    else:
        res = fitted[name].forward(y=y.astype(float), h=h, level=list(levels))
    return _as_floats(res)


def fc_pm_auto_arima(y: np.ndarray, h: int, season: int, seasonal: bool, levels: Sequence[int] = LEVELS) -> dict:
    """pmdarima's auto_arima (stepwise, the search of R's forecast::auto.arima) with the same order limits
    as the statsforecast AutoARIMA of the tournament (p, q <= 3; P, Q <= 1; seasonal only for seasons up to
    `MAX_ETS_SEASON` that pass `seasonal_test`). Kept as the reference engine: benchmarks/bench_forecast.py
    measures both engines' fit time and accuracy side by side, and statsforecast is the default because
    it is as accurate and many times faster."""
    import pmdarima as pm

    y = np.asarray(y, dtype=float)
    if len(y) < 4 or not np.isfinite(y).all():
        raise ForecastError(
            f"pm_auto_arima: needs at least 4 observed values and no gaps; got {len(y)} values, "
            f"{int((~np.isfinite(y)).sum())} missing"
        )
    if np.all(y == y[0]):  # constant history: the flat forecast with zero-width bounds (as statsforecast gives)
        flat = np.full(h, y[0])
        return {POINT: flat, **{b: flat.copy() for b in bounds(levels)}}
    m = int(season) if seasonal and 1 < season <= MAX_ETS_SEASON and len(y) > 3 * season else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pm.auto_arima(
            y,
            seasonal=m > 1,
            m=m,
            max_p=3,
            max_q=3,
            max_P=1,
            max_Q=1,
            stepwise=True,
            suppress_warnings=True,
            error_action="ignore",
        )
        out = {POINT: np.asarray(model.predict(h), dtype=float)}
        for lv in levels:
            _pt, ci = model.predict(h, return_conf_int=True, alpha=1 - lv / 100)
            out[bound("lo", lv)], out[bound("hi", lv)] = np.asarray(ci[:, 0], float), np.asarray(ci[:, 1], float)
    return out


# --- Prophet --------------------------------------------------------------------------------------


def _quiet_prophet() -> None:
    """Silence cmdstanpy/prophet INFO chatter (cmdstanpy installs its own handler on first use)."""
    from cmdstanpy.utils import get_logger

    get_logger().setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)


def fc_prophet(
    y: np.ndarray,
    h: int,
    levels: Sequence[int] = LEVELS,
    start: pd.Timestamp | None = None,
    iter_cap: int = PROPHET_ITER,
    freq: Freq = FREQS["D"],
    regressors: dict[str, np.ndarray] | None = None,
    holidays: str | None = None,
    timeout: float = PROPHET_TIMEOUT,
) -> dict:
    """Prophet (L-BFGS, iteration cap, time-box, no Newton fallback); quantiles of its samples.

    Guards: a constant series and one shorter than `MIN_LENGTH` are skipped, and a fit that exceeds
    `timeout` seconds is abandoned (each raises ForecastError: the tournament records a failure and
    leaves the model out for that series and window). `regressors` maps a name to an array of length
    `len(y) + h` (history then the known future, e.g. planned promo flags); `holidays` is a country
    code ("US") for Prophet's holiday effects.
    """
    if np.nanstd(y) == 0:
        raise ForecastError("prophet skipped: constant series")
    if len(y) < MIN_LENGTH:
        raise ForecastError(f"prophet skipped: series of {len(y)} points is shorter than {MIN_LENGTH}")
    from prophet import Prophet  # lazy: heavy import

    _quiet_prophet()
    start = pd.Timestamp("2000-01-03") if start is None else pd.Timestamp(start)
    dates = freq.dates(np.repeat(np.datetime64(start), len(y) + h), np.arange(len(y) + h))
    hist = pd.DataFrame({"ds": dates[: len(y)], "y": y})
    fut = pd.DataFrame({"ds": dates[len(y) :]})
    m = Prophet(
        weekly_seasonality=freq.alias == "D",
        yearly_seasonality="auto",
        daily_seasonality=False,
        uncertainty_samples=PROPHET_SAMPLES,
    )
    for name, values in (regressors or {}).items():
        values = np.asarray(values, dtype=float)
        if len(values) != len(y) + h:
            raise ForecastError(
                f"prophet: regressor {name!r} has {len(values)} values; expected {len(y) + h} (history + horizon)"
            )
        if np.nanstd(values[: len(y)]) > 0:
            m.add_regressor(name)
            hist[name], fut[name] = values[: len(y)], values[len(y) :]
    if holidays:
        m.add_country_holidays(country_name=holidays)
    try:  # each optimize call (L-BFGS, then Prophet's Newton fallback) is time-boxed
        m.fit(hist, algorithm="LBFGS", iter=iter_cap, timeout=timeout)
    except TimeoutError:
        raise ForecastError(f"prophet skipped: fit exceeded the {timeout:g} s time-box") from None
    state = np.random.get_state()
    np.random.seed(SEED)
    try:
        samples = m.predictive_samples(fut)["yhat"]
    finally:
        np.random.set_state(state)
    out = {POINT: m.predict(fut)["yhat"].to_numpy(dtype=float)}
    for lv in levels:
        a = (1 - lv / 100) / 2
        out[bound("lo", lv)], out[bound("hi", lv)] = np.quantile(samples, [a, 1 - a], axis=1)
    return out


# --- by name ------------------------------------------------------------------------------------


def run_model(
    name: str, y: np.ndarray, h: int, season: int, seasonal: bool, levels: Sequence[int] = LEVELS, **extra
) -> dict:
    """Point forecast and native bounds of one model on one series. `extra`: fc_prophet's keyword
    arguments for Prophet (start, freq, regressors, holidays), `regressors` for the regression."""
    if name == "naive":
        return fc_naive(y, h, levels)
    if name == "seasonal_naive":
        return fc_seasonal_naive(y, h, levels, season=season)
    if name == "window_average":
        return fc_window_average(y, h, levels, window=max(4, min(WINDOW, 4 * season)))
    if name == "mean":
        return fc_mean(y, h, levels)
    if name == "promo_step":
        return fc_promo_step(y, h, levels, window=regular_windows(season)[0], q=1.0)
    if name == "promo_step_q75":
        return fc_promo_step(y, h, levels, window=regular_windows(season)[1], q=0.75)
    if name in SF_MODELS:
        return _as_floats(sf_model(name, season, seasonal).forecast(y=y.astype(float), h=h, level=list(levels)))
    if name == PROPHET:
        return fc_prophet(y, h, levels, **extra)
    if name == REGRESSION:
        return fc_regression(y, h, extra.get("regressors"), levels)
    if name == PM_ARIMA:
        return fc_pm_auto_arima(y, h, season, seasonal, levels)
    raise ForecastError(f"unknown model {name!r}; choose from {list(ALL_MODELS)}")
