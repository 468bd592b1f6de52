"""Forecast tournament: rolling-origin backtest on all cores, per-series model choice on earlier
windows, conformal interval calibration, price-change probability and the final forecast.

Honesty rules built in:
- cut-offs are calendar dates shared by every series; window `k` is scored on the `h` steps after
  its cut-off, and anything used to make a decision for window `k` comes only from data dated on or
  before cut-off `k`: the model choice uses every backtest error dated up to the cut-off (finished
  windows and the early steps of windows still running), interval calibration uses finished windows;
- a window is scored only when an earlier window has finished (so the first windows choose and
  calibrate only), and every reported accuracy figure (every baseline, every model, and `chosen`)
  is computed on the same scored windows;
- the final forecast uses the choice and calibration from all windows.

Model choice: each series' mean backtest MASE per model is shrunk toward the model's pooled MASE
over all series (empirical-Bayes style: `(n * own + shrink * pooled) / (n + shrink)`); every lead
time weighs the same in these scores (the errors observed by a cut-off hold more short-lead steps).
The combination `combo` is the default, and a single model replaces it only when its shrunk score is
at least `margin` (5%) lower. Few, noisy windows therefore fall back to the combination instead of
chasing noise. The combination of window k weights every model (but seasonal naive) by the inverse
of its pooled, lead-balanced backtest MASE on the errors observed by cut-off k (a rule fixed a
priori: `COMBO_POWER` = 1); equal weights until a window has finished.

Intervals: each model's own 95% interval half-width `w` (statsforecast levels, or empirical
k-step-error quantiles for the baselines) scales the error `r = (y - yhat) / w`; ranges of `r`
pooled over all series in finished earlier windows give the calibrated bounds `yhat + q * w`
(split-conformal with a normalised score): per lead time from every earlier window whose step at that
lead is observed by the cut-off, once two such windows exist (pooled over lead times of finished
windows before), at the finite-sample level ceil((n + 1)(1 - a)) / n. The default score is |r|
(`INTERVAL_SHAPE` "symmetric": one quantile for both sides), which needs half the data of equal
tails and does not bet on the sign of future errors repeating that of the few calibration windows
(promotions push errors down; a chain-wide price rise pushes every series up at once, see
benchmarks/bench_forecast.py). `interval_shape=` "equal" (equal-tailed), "shortest" or "auto"
(shortest ranges when at least 10% of the errors are exactly zero, equal tails otherwise) are there
for comparison.

Change probability: forward-filled (missing) periods are marked by clean_series and never counted as
an unchanged price: labels spanning one are left out of training and scoring.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from priceintel.forecast import models as fc
from priceintel.forecast.models import DS, ID, ForecastError, Y
from priceintel.items import plain_float

LEVELS = (80, 95)
BASELINES = ("naive", "seasonal_naive", "window_average", "mean")
NAIVE_BASELINES = ("naive", "seasonal_naive")  #: the goal compares `chosen` with the better of these
COMBO = "combo"  #: inverse-MASE weighted mean of the other models (computed, not fitted; see combo_weights)
COMBO_POWER = 1.0  #: combination weights proportional to (pooled backtest MASE) ** -1 (fixed a priori)
PRICE_MODELS = ("promo_step", "promo_step_q75")  #: regular price + promo state (see fc_promo_step)
FAST_MODELS = BASELINES + PRICE_MODELS + ("auto_ets", "auto_theta", COMBO)
FULL_MODELS = BASELINES + PRICE_MODELS + ("auto_ets", "auto_theta", "auto_arima", COMBO)
REGRESSION = "regression"  #: level + regressor effects (e.g. planned promo flags) by least squares
PM_ARIMA = "pm_auto_arima"  #: pmdarima's auto_arima: the reference engine that statsforecast's AutoARIMA replaces
ALL_MODELS = FULL_MODELS + (REGRESSION, "prophet", PM_ARIMA)
CHOSEN = "chosen"
OVERALL = fc.OVERALL
SHRINK_STEPS = 50  #: default pooling: a series' own score counts like the pooled one after 50 * h points
COMBO_MARGIN = 0.05  #: a single model replaces the combination only when its backtest MASE is >= 5% lower
MAX_ETS_SEASON = 24  #: statsforecast ETS fits no seasonal component beyond this season length
METRICS = [
    "n",
    "mae",
    "rmse",
    "smape",
    "mase",
    "coverage_80",
    "coverage_95",
    "width_80",
    "width_95",
    "winkler_80",
    "winkler_95",
    "coverage_raw_80",
    "coverage_raw_95",
]


@dataclass
class TournamentResult:
    """Everything a tournament produced (frames are long and keyed by `unique_id`)."""

    cv: pd.DataFrame  #: one row per series, window, step: y, every model (calibrated bounds), chosen
    metrics: pd.DataFrame  #: per series and overall (unique_id == OVERALL), per model and horizon
    forecasts: pd.DataFrame  #: the final forecast: chosen model + naive baselines, intervals, p_change
    choices: pd.DataFrame  #: unique_id, window, cutoff, chosen model (window = -1: the final choice)
    change: pd.DataFrame  #: price-change probability backtest: unique_id, cutoff, p_change, changed
    calibration: pd.DataFrame  #: per model and window: the conformal factors
    report: pd.DataFrame  #: clean_series report (gaps, duplicates, constant, short, outliers)
    failures: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)

    def overall(self, horizon: int | None = None) -> pd.DataFrame:
        """Overall metrics at `horizon` (default: the longest), best MAE first."""
        m = self.metrics[self.metrics[ID] == OVERALL]
        horizon = int(m["horizon"].max()) if horizon is None else horizon
        return m[m["horizon"] == horizon].sort_values("mae").reset_index(drop=True)

    def summary(self) -> dict:
        """Headline figures: chosen vs the better naive baseline, coverage, change-probability skill."""
        out = {}
        for hz, m in self.metrics[self.metrics[ID] == OVERALL].groupby("horizon"):
            m = m.set_index("model")
            base = m.loc[[b for b in NAIVE_BASELINES if b in m.index]]
            best = base["mae"].idxmin() if base["mae"].notna().any() else None
            row = {
                "better_naive": best,
                "better_naive_mae": plain_float(m.loc[best, "mae"]) if best else None,
                "models": {
                    k: {c: plain_float(v[c]) for c in ("mae", "mase", "coverage_80", "coverage_95", "winkler_95")}
                    for k, v in m.iterrows()
                },
            }
            if CHOSEN in m.index and best:
                row["chosen_mae"] = plain_float(m.loc[CHOSEN, "mae"])
                row["chosen_mase"] = plain_float(m.loc[CHOSEN, "mase"])
                row["ratio_mae_to_better_naive"] = plain_float(m.loc[CHOSEN, "mae"] / m.loc[best, "mae"])
                row["ratio_mase_to_better_naive"] = plain_float(m.loc[CHOSEN, "mase"] / m.loc[best, "mase"])
                row["chosen_coverage_80"] = plain_float(m.loc[CHOSEN, "coverage_80"])
                row["chosen_coverage_95"] = plain_float(m.loc[CHOSEN, "coverage_95"])
            out[f"h{int(hz)}"] = row
        if len(self.change):
            ev = self.change[self.change["evaluated"]]
            out["p_change"] = {
                "n": int(len(ev)),
                "observed_rate": plain_float(ev["changed"].mean()),
                "mean_prob": plain_float(ev["p_change"].mean()),
                "brier": plain_float(((ev["p_change"] - ev["changed"]) ** 2).mean()),
                "brier_constant_rate": plain_float(((ev["p_base"] - ev["changed"]) ** 2).mean()),
                "brier_pooled_share": plain_float(((ev["p_share"] - ev["changed"]) ** 2).mean()),
                "method": "pooled table: promo state x steps since last change x own change rate, learned "
                "from every series' history up to each cut-off (the constant rate instead when it "
                "scored better on the latest h origins before the cut-off)",
            }
        out["chosen_models"] = self.choices[self.choices["window"] == -1]["model"].value_counts().to_dict()
        out["split"] = self.params.get("split")
        return out


# --- per-series models ------------------------------------------------------------------------


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


def fc_mean(y: np.ndarray, h: int, levels: Sequence[int] = LEVELS) -> dict:
    """Historic average (mean of the whole history)."""
    lvl = pd.Series(y).expanding().mean().to_numpy()
    return fc._level_model(y, h, levels, lvl)


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
    including any step) carries forward. Intervals: empirical quantiles of the same rule's
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
    ahead = fc._ahead(y, h)  # (n, h): y[t + k]
    with np.errstate(invalid="ignore"):
        same = np.abs(ahead - y[:, None]) <= np.fmax(tol * np.abs(reg), 1e-9)[:, None]
    cont = np.cumprod(same, axis=1).astype(float)  # still in the same spell k steps later
    seen = np.isfinite(ahead) & promo[:, None]
    cnt = seen.sum(axis=0)
    share = np.where(cnt >= 3, (cont * seen).sum(axis=0) / np.maximum(cnt, 1), 0.0)
    hold = share > 0.5  # (h,) lead times at which a promo price usually still holds
    path = np.where(promo[:, None] & ~hold[None, :], reg[:, None], y[:, None])  # (n, h)
    point = path[-1].copy()
    errors = (ahead - path)[window - 1 :]
    return {"mean": point, **fc._quantile_cols(point, errors, levels)}


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
    out = {"mean": point}
    for lv in levels:
        z = norm.ppf(0.5 + lv / 200) * sd * np.sqrt(1 + X.shape[1] / w)
        out[f"lo-{lv}"], out[f"hi-{lv}"] = point - z, point + z
    return out


def _sf(model, y: np.ndarray, h: int, levels: Sequence[int]) -> dict:
    """statsforecast model `.forecast` with our key names."""
    res = model.forecast(y=y.astype(float), h=h, level=list(levels))
    return {k: np.asarray(v, dtype=float) for k, v in res.items()}


SF_MODELS = ("auto_ets", "auto_theta", "auto_arima")  #: statsforecast models (fit once, forward-filter)


def _sf_model(name: str, season: int, seasonal: bool):
    """An unfitted statsforecast model (seasonal ETS restricted to additive seasonality: AZA)."""
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    m = season if seasonal else 1
    if name == "auto_ets":
        return AutoETS(season_length=m, model="AZA") if 1 < m <= MAX_ETS_SEASON else AutoETS(season_length=1)
    if name == "auto_theta":
        return AutoTheta(season_length=m)
    return AutoARIMA(season_length=m, approximation=True, max_p=3, max_q=3, max_P=1, max_Q=1)


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
        return {"mean": flat, **{f"{b}-{lv}": flat.copy() for lv in levels for b in ("lo", "hi")}}
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
        out = {"mean": np.asarray(model.predict(h), dtype=float)}
        for lv in levels:
            _pt, ci = model.predict(h, return_conf_int=True, alpha=1 - lv / 100)
            out[f"lo-{lv}"], out[f"hi-{lv}"] = np.asarray(ci[:, 0], float), np.asarray(ci[:, 1], float)
    return out


def run_model(
    name: str, y: np.ndarray, h: int, season: int, seasonal: bool, levels: Sequence[int] = LEVELS, **prophet_kw
) -> dict:
    """Point forecast and native 80/95% bounds of one model on one series."""
    if name == "naive":
        return fc.fc_naive(y, h, levels)
    if name == "seasonal_naive":
        return fc.fc_seasonal_naive(y, h, levels, season=season)
    if name == "window_average":
        return fc.fc_window_average(y, h, levels, window=max(4, min(fc.WINDOW, 4 * season)))
    if name == "mean":
        return fc_mean(y, h, levels)
    if name == "promo_step":
        return fc_promo_step(y, h, levels, window=regular_windows(season)[0], q=1.0)
    if name == "promo_step_q75":
        return fc_promo_step(y, h, levels, window=regular_windows(season)[1], q=0.75)
    if name in SF_MODELS:
        return _sf(_sf_model(name, season, seasonal), y, h, levels)
    if name == "prophet":
        return fc.fc_prophet(y, h, levels, **prophet_kw)
    if name == REGRESSION:
        return fc_regression(y, h, prophet_kw.get("regressors"), levels)
    if name == PM_ARIMA:
        return fc_pm_auto_arima(y, h, season, seasonal, levels)
    raise ForecastError(f"unknown model {name!r}; choose from {list(ALL_MODELS)}")


def _sf_refit_free(
    name: str, fitted: dict, y: np.ndarray, h: int, season: int, seasonal: bool, levels: Sequence[int] = LEVELS
) -> dict:
    """statsforecast model fitted on the first window, then forward-filtered on later data (no refit)."""
    if name not in fitted:
        model = _sf_model(name, season, seasonal)
        model.fit(y=y.astype(float))
        fitted[name] = model
        res = model.predict(h=h, level=list(levels))
    else:
        res = fitted[name].forward(y=y.astype(float), h=h, level=list(levels))
    return {k: np.asarray(v, dtype=float) for k, v in res.items()}


def _combo(res: np.ndarray, models: Sequence[str], weights: dict | None = None) -> np.ndarray:
    """Weighted mean of the members' points and bounds (`weights`: model -> weight; default: equal
    weights on every candidate, i.e. all models but seasonal naive and the combination itself).
    A member without a forecast is left out and the other weights renormalised."""
    weights = {m: 1.0 for m in combo_candidates(models)} if weights is None else weights
    idx = [j for j, m in enumerate(models) if m in weights]
    w = np.array([weights[models[j]] for j in idx], dtype=float).reshape((-1,) + (1,) * (res.ndim - 1))
    x = res[idx]
    ok = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x * w, 0.0).sum(axis=0) / np.where(ok, w, 0.0).sum(axis=0)


def combo_candidates(models: Sequence[str]) -> list:
    """Models that may join the combination: all but seasonal naive and the combination itself."""
    return [m for m in models if m not in ("seasonal_naive", COMBO)]


def combo_weights(pooled: np.ndarray | None, models: Sequence[str], power: float = COMBO_POWER) -> dict:
    """Combination weights: each candidate's weight is proportional to its pooled backtest MASE
    (`pooled`, aligned with `models`) to the power -`power`, normalised to sum to 1 (inverse-error
    weighting without correlations, Bates & Granger 1969). Without evidence (`pooled` None, or a
    candidate without a finite positive score) every candidate weighs the same."""
    cand = [j for j, m in enumerate(models) if m in combo_candidates(models)]
    if pooled is None or not all(np.isfinite(pooled[j]) and pooled[j] > 0 for j in cand):
        return {models[j]: 1.0 / len(cand) for j in cand}
    w = np.array([float(pooled[j]) ** -power for j in cand])
    w = w / w.sum()
    return {models[j]: float(v) for j, v in zip(cand, w)}


def _one(name, y, h, season, seasonal, prophet_kw, fitted: dict | None = None) -> np.ndarray:
    """(5, h) array: mean, lo-80, hi-80, lo-95, hi-95 (NaN on failure)."""
    if fitted is not None and name in SF_MODELS:
        res = _sf_refit_free(name, fitted, y, h, season, seasonal)
    else:
        res = run_model(name, y, h, season, seasonal, **prophet_kw)
    keys = ("mean", "lo-80", "hi-80", "lo-95", "hi-95")
    return np.vstack([np.asarray(res.get(k, np.full(h, np.nan)), dtype=float)[:h] for k in keys])


def _series_job(
    uid: str,
    y: np.ndarray,
    x: dict | None,
    start: np.datetime64,
    ends: np.ndarray,
    h: int,
    models: Sequence[str],
    season: int,
    min_train: int,
    freq: fc.Freq,
    prophet_opts: dict,
    refit: bool = True,
) -> dict:
    """Backtest windows (train lengths `ends`) of one series."""
    n_models = len(models)
    fitted: dict | None = None if refit else {}
    fails = []
    seasonal = seasonal_test(y[: ends[0]] if len(ends) and ends[0] > 0 else y, season)
    out = np.full((len(ends), n_models, 5, h), np.nan)
    actual = np.full((len(ends), h), np.nan)
    ok = np.zeros(len(ends), bool)
    scale = np.full(len(ends), np.nan)
    for k, end in enumerate(ends):
        if end < min_train:
            continue
        ok[k] = True
        actual[k, : max(0, min(h, len(y) - end))] = y[end : end + h]
        scale[k] = fc._mase_scale(y[:end], season) if end > season else np.nan
        if not np.isfinite(scale[k]):
            scale[k] = fc._mase_scale(y[:end], 1)
        for j, name in enumerate(models):
            if name == COMBO:
                continue
            kw = _prophet_kw(name, x, start, end, h, freq, prophet_opts)
            try:
                out[k, j] = _one(name, y[:end], h, season, seasonal, kw, fitted)
            except Exception as exc:  # noqa: BLE001 - one series must not sink the batch
                fails.append({ID: uid, "model": name, "window": k, "reason": f"{type(exc).__name__}: {exc}"})
        if COMBO in models:
            out[k, list(models).index(COMBO)] = _combo(out[k], models)
    return {"uid": uid, "out": out, "actual": actual, "ok": ok, "scale": scale, "seasonal": seasonal, "failures": fails}


def _prophet_kw(name, x, start, end, h, freq, opts) -> dict:
    """Keyword arguments of fc_prophet / fc_regression for a training window ending at `end`."""
    if name not in ("prophet", REGRESSION):
        return {}
    regs = None
    if x:
        regs = {}
        for k, v in x.items():
            fut = v[end : end + h]
            if len(fut) < h:  # regressors unknown past the data: assume the last value holds
                fut = np.concatenate([fut, np.repeat(v[end - 1], h - len(fut))])
            regs[k] = np.concatenate([v[:end], fut])
    if name == REGRESSION:
        return {"regressors": regs}
    return {"start": pd.Timestamp(start), "freq": freq, "regressors": regs, **opts}


def _final_job(
    uid: str,
    y: np.ndarray,
    x: dict | None,
    start: np.datetime64,
    h: int,
    names: Sequence[str],
    season: int,
    seasonal: bool,
    freq: fc.Freq,
    prophet_opts: dict,
    all_models: Sequence[str] = (),
    weights: dict | None = None,
) -> dict:
    """Final forecasts of `names` from the whole history (`weights`: the combination's weights)."""
    res, fails = {}, []
    weights = {m: 1.0 for m in combo_candidates(all_models)} if weights is None else weights
    if COMBO in names:
        names = list(dict.fromkeys([*weights, *names]))
    for name in names:
        if name == COMBO:
            continue
        kw = _prophet_kw(
            name,
            {k: np.concatenate([v, np.repeat(v[-1], h)]) for k, v in x.items()} if x else None,
            start,
            len(y),
            h,
            freq,
            prophet_opts,
        )
        try:
            res[name] = _one(name, y, h, season, seasonal, kw)
        except Exception as exc:  # noqa: BLE001
            fails.append({ID: uid, "model": name, "window": -1, "reason": f"{type(exc).__name__}: {exc}"})
            res[name] = np.full((5, h), np.nan)
    if COMBO in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res[COMBO] = _combo(np.stack([res[m] for m in weights]), list(weights), weights)
    return {"uid": uid, "final": res, "failures": fails}


def _chunk_backtest(items: list, **kw) -> list:
    """Worker: backtest a chunk of series single-threaded."""
    warnings.filterwarnings("ignore")
    with threadpool_limits(limits=1):
        return [_series_job(*it, **kw) for it in items]


def _parallel(func, items: list, n_jobs: int, progress: bool, desc: str, **kw) -> list:
    """Run `func(chunk, **kw)` over chunks of `items` on `n_jobs` processes with a progress bar."""
    from tqdm.auto import tqdm

    if not items:
        return []
    n_jobs = os.cpu_count() or 1 if n_jobs in (None, -1, 0) else max(1, int(n_jobs))
    n_chunks = min(len(items), max(1, n_jobs * 8))
    chunks = [items[i::n_chunks] for i in range(n_chunks)]
    bar = tqdm(total=len(items), desc=desc, disable=not progress, unit="series")
    results = []
    if n_jobs == 1:
        for ch in chunks:
            results.extend(func(ch, **kw))
            bar.update(len(ch))
    else:
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        for res in par(delayed(func)(ch, **kw) for ch in chunks):
            results.extend(res)
            bar.update(len(res))
    bar.close()
    return results


# --- the tournament ---------------------------------------------------------------------------


def _cutoff_positions(clean: pd.DataFrame, fq: fc.Freq, h: int, n_windows: int, step: int) -> list:
    """Calendar cut-offs (last training date of each window), oldest first."""
    end = clean[DS].max()
    # global steps back from the panel end
    origin = clean[DS].min()
    last = int(fq.positions(pd.Series([end]), pd.Series([origin]))[0])
    pos = [last - h - (n_windows - 1 - k) * step for k in range(n_windows)]
    return [pd.Timestamp(fq.dates(np.array([np.datetime64(origin)]), np.array([p]))[0]) for p in pos]


def run_tournament(
    df: pd.DataFrame,
    h: int,
    n_windows: int = 3,
    step: int | None = None,
    models: Sequence[str] = FAST_MODELS,
    freq: str | None = None,
    season_length: int | None = None,
    horizons: Sequence[int] | None = None,
    regressors: Sequence[str] = (),
    holidays: str | None = None,
    n_jobs: int = -1,
    progress: bool = True,
    min_train: int | None = None,
    calibrate: bool = True,
    shrink: float | None = None,
    refit: bool = True,
    margin: float = COMBO_MARGIN,
    interval_shape: str | None = None,
) -> TournamentResult:
    """Backtest `models` and every baseline on `n_windows` cut-offs, choose per series, forecast `h` ahead."""
    t0 = time.perf_counter()
    if not isinstance(h, (int, np.integer)) or h < 1:
        raise ForecastError(f"horizon h={h!r} must be a positive integer")
    if not isinstance(n_windows, (int, np.integer)) or n_windows < 2:
        raise ForecastError(f"n_windows={n_windows!r} must be an integer >= 2 (one to choose on, one to score)")
    step = h if step is None else step
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ForecastError(f"step={step!r} must be a positive integer")
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise ForecastError(f"unknown model(s) {unknown}; choose from {list(ALL_MODELS)}")
    if interval_shape not in (None, *INTERVAL_SHAPES):
        raise ForecastError(f"interval_shape={interval_shape!r}: choose from {list(INTERVAL_SHAPES)}")
    models = list(dict.fromkeys([*BASELINES, *[m for m in models if m != COMBO], *[m for m in models if m == COMBO]]))
    missing = [r for r in regressors if r not in df.columns]
    if missing:
        raise ForecastError(f"regressor column(s) {missing} not in the frame {list(df.columns)}")
    keep = [ID, DS, Y, *regressors]
    clean, report = fc.clean_series(df[[c for c in keep if c in df.columns]], freq=freq, mark_imputed=True)
    fq = fc.get_freq(clean.attrs.get("freq", freq))
    season = fc._season(fq, season_length)
    if clean.empty:
        raise ForecastError("run_tournament: no series has an observed value")
    horizons = sorted({min(int(x), h) for x in (horizons or _default_horizons(fq, h))} | {h})
    min_train = default_min_train(fq, season, h) if min_train is None else min_train
    cutoffs = _cutoff_positions(clean, fq, h, n_windows, step)
    failures = [
        {ID: u, "model": "*", "window": -1, "reason": "no observed values"}
        for u in report.loc[report["length"] == 0, ID]
    ]
    items = []
    imputed = {}  #: forward-filled (missing) periods: never counted as "price unchanged"
    for uid, g in clean.groupby(ID, sort=True):
        imputed[str(uid)] = g["imputed"].to_numpy(bool)
        y = g[Y].to_numpy(float)
        ds = g[DS].to_numpy()
        ends = np.searchsorted(ds, np.array(cutoffs, dtype="datetime64[ns]"), side="right")
        x = {r: g[r].fillna(0).to_numpy(float) for r in regressors} or None
        items.append((str(uid), y, x, ds[0], ends))
    popts = {"holidays": holidays} if holidays else {}
    kw = dict(h=h, models=models, season=season, min_train=min_train, freq=fq, prophet_opts=popts, refit=refit)
    t1 = time.perf_counter()
    jobs = _parallel(_chunk_backtest, items, n_jobs, progress, "backtest", **kw)
    t2 = time.perf_counter()
    jobs.sort(key=lambda r: r["uid"])
    for r in jobs:
        failures.extend(r["failures"])
    shrink = float(SHRINK_STEPS * h if shrink is None else shrink)
    interval_shape = interval_shape or INTERVAL_SHAPE
    cv, choices, calib = _assemble(jobs, models, cutoffs, h, step, fq, calibrate, shrink, margin, interval_shape)
    if cv.empty:
        raise ForecastError(
            f"run_tournament: no series has {min_train} points before the first cut-off "
            f"{cutoffs[0].date()} (h={h}, n_windows={n_windows}); shorten h or n_windows"
        )
    metrics = _metrics(cv, models + [CHOSEN], horizons)
    change = _change_backtest(items, cutoffs, h, regular_windows(season)[0], imputed)
    # final forecasts: the chosen model plus the naive baselines, from the whole history
    final_choice = choices[choices["window"] == -1].set_index(ID)["model"].to_dict()
    failures.extend(
        {
            ID: u,
            "model": "*",
            "window": -1,
            "reason": f"fewer than {min_train} points before every cut-off: not forecast",
        }
        for (u, *_rest) in items
        if u not in final_choice
    )
    seasonal = {r["uid"]: r["seasonal"] for r in jobs}
    fitems = [
        (u, y, x, s0, h, list(dict.fromkeys([*NAIVE_BASELINES, final_choice[u]])), season, seasonal[u])
        for (u, y, x, s0, _e) in items
        if u in final_choice
    ]
    cweights = choices.attrs.get("combo_weights", {})
    fres = _parallel(
        _chunk_final_wrap,
        fitems,
        n_jobs,
        progress,
        "forecast",
        freq=fq,
        prophet_opts=popts,
        all_models=models,
        weights=cweights.get(-1),
    )
    t3 = time.perf_counter()
    for r in fres:
        failures.extend(r["failures"])
    forecasts = _final_frame(fres, items, final_choice, calib, fq, h, season, imputed)
    params = {
        "h": int(h),
        "n_windows": int(n_windows),
        "step": int(step),
        "models": models,
        "freq": fq.alias,
        "season_length": int(season),
        "horizons": horizons,
        "regressors": list(regressors),
        "holidays": holidays,
        "min_train": int(min_train),
        "calibrate": bool(calibrate),
        "shrink": shrink,
        "margin": float(margin),
        "refit": bool(refit),
        "combo_power": COMBO_POWER,
        "interval_shape": interval_shape,
        "combo_weights": {
            ("final" if k == -1 else f"window {k + 1}"): {m: round(w, 4) for m, w in v.items()}
            for k, v in cweights.items()
        },
        "cutoffs": [str(c.date()) for c in cutoffs],
        "split": _split_text(cutoffs, n_windows, step, h, fq),
    }
    timing = {
        "prepare_s": t1 - t0,
        "backtest_s": t2 - t1,
        "final_s": t3 - t2,
        "total_s": time.perf_counter() - t0,
        "n_series": len(items),
    }
    return TournamentResult(
        cv=cv,
        metrics=metrics,
        forecasts=forecasts,
        choices=choices,
        change=change,
        calibration=calib,
        report=report,
        failures=failures,
        params=params,
        timing=timing,
    )


def default_min_train(fq: fc.Freq, season: int, h: int) -> int:
    """Fewest points a series needs before a cut-off: a season and two more, 2h for daily data (h else), 8."""
    return max(season + 2, 2 * h if fq.alias == "D" else h, 8)


def _split_text(cutoffs: list, n_windows: int, step: int, h: int, fq: fc.Freq) -> str:
    """Plain-words test-set definition of a tournament."""
    first = min(n_windows - 1, int(np.ceil(h / step)))  # 0-based first scored window
    head = "window 1 only chooses and calibrates" if first == 1 else f"windows 1..{first} only choose and calibrate"
    return (
        f"{n_windows} rolling origins at cut-offs {', '.join(str(c.date()) for c in cutoffs)} "
        f"(step {step} x {fq.alias}); each window forecasts the next {h} steps; {head}, windows "
        f"{first + 1}..{n_windows} are scored (cut-offs from {cutoffs[first].date()}); the model choice "
        f"for a window uses only backtest errors dated on or before its cut-off, interval calibration "
        f"only windows finished by it"
    )


def _chunk_final_wrap(items: list, freq, prophet_opts, all_models, weights=None) -> list:
    """Worker: final forecasts of a chunk of series (each with its own model list)."""
    warnings.filterwarnings("ignore")
    with threadpool_limits(limits=1):
        return [
            _final_job(u, y, x, s0, h, names, season, seasonal, freq, prophet_opts, all_models, weights)
            for (u, y, x, s0, h, names, season, seasonal) in items
        ]


def _default_horizons(fq: fc.Freq, h: int) -> list[int]:
    """Lead-time buckets: 7/14/28 days for daily data, 4/8/13 weeks, 3/6/12 months, else h."""
    return {"D": [7, 14, 28], "W": [4, 8, 13], "M": [3, 6, 12], "Q": [1, 2, 4]}.get(fq.alias, [h])


def lead_balanced_scores(err: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Mean backtest error with every lead time weighted equally.

    `err` (series, windows, models, h) absolute errors (scaled for MASE); `seen` (windows, h): the
    steps observed by the cut-off. Returns each series' score (mean over lead times of its mean
    error at that lead; NaN without evidence), the pooled score per model (mean over lead times of
    the mean over all series' errors at that lead), and whether every lead time had evidence.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = np.where(seen[None, :, None, :], err, np.nan)
        own = np.nanmean(np.nanmean(e, axis=1), axis=2)  # (S, M)
        per_lead = np.nanmean(e, axis=(0, 1))  # (M, h)
        pooled = np.nanmean(per_lead, axis=1)  # (M,)
    complete = bool(seen.any(axis=0).all())
    return own, pooled, complete


def _assemble(
    jobs: list,
    models: list,
    cutoffs: list,
    h: int,
    step: int,
    fq: fc.Freq,
    calibrate: bool,
    shrink: float,
    margin: float = 0.0,
    shape: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long cv frame with calibrated bounds and the chosen model; choices; calibration factors."""
    K, M = len(cutoffs), len(models)
    uids = np.array([r["uid"] for r in jobs])
    if not len(jobs):
        return pd.DataFrame(), pd.DataFrame(columns=[ID, "window", "cutoff", "model"]), pd.DataFrame()
    out = np.stack([r["out"] for r in jobs])  # (S, K, M, 5, h)
    act = np.stack([r["actual"] for r in jobs])  # (S, K, h)
    ok = np.stack([r["ok"] for r in jobs])  # (S, K)
    scale = np.stack([r["scale"] for r in jobs])  # (S, K)
    S = len(jobs)
    # windows known before window k: their test steps end on or before cutoff k
    known = np.array([[j < k and j * step + h <= k * step for j in range(K)] for k in range(K)])
    step_dates = np.stack([fq.future(c, h) for c in cutoffs])  # (K, h)
    sc = np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)
    combo_j = models.index(COMBO) if COMBO in models else -1
    members: dict = {}  #: window (-1: final) -> combination weights
    if combo_j >= 0:
        # the combination of window k: weights from the pooled MASE (lead-balanced) on the errors
        # dated on or before cut-off k (equal weights before that); windows are processed in order, so
        # the combination's own earlier errors are those of its earlier weights
        for k in range(K + 1):
            seen = (
                np.ones((K, h), bool)
                if k == K
                else (np.arange(K)[:, None] < k) & (step_dates <= np.datetime64(cutoffs[k], "ns"))
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                e_s = np.abs(out[:, :, :, 0, :] - act[:, :, None, :]) / sc[:, :, None, None]
            _own, pooled, complete = lead_balanced_scores(e_s, seen)
            # equal weights until every lead time has evidence (a finished window)
            members[k if k < K else -1] = combo_weights(pooled if complete else None, models)
            if k < K:
                out[:, k, combo_j] = _combo(out[:, k].transpose(1, 0, 2, 3), models, members[k]).reshape(S, 5, h)
    err = np.abs(out[:, :, :, 0, :] - act[:, :, None, :])  # (S, K, M, h)
    with np.errstate(invalid="ignore", divide="ignore"):
        err_s = err / sc[:, :, None, None]  # scaled errors (MASE points)
    choice = np.full((S, K + 1), -1)  # last column: final choice
    for k in range(K + 1):
        # a window is scored only when an earlier window has finished (the test set); the choice for it
        # uses every backtest error dated on or before its cut-off, including early steps of windows
        # still running (all of them are in the training data of window k)
        if k < K and not known[k].any():
            continue
        seen = (
            np.ones((K, h), bool)
            if k == K
            else (np.arange(K)[:, None] < k) & (step_dates <= np.datetime64(cutoffs[k], "ns"))
        )
        # every lead time weighs the same (the goal is the MAE over the whole horizon), although the
        # errors observed by the cut-off hold more short-lead than long-lead steps
        raw, _p, _c = lead_balanced_scores(err, seen)  # (S, M)
        own, pooled, _c = lead_balanced_scores(err_s, seen)  # (S, M) own MASE, (M,) pooled MASE
        n_i = (np.isfinite(act) & seen[None]).sum(axis=(1, 2))[:, None].astype(float)
        blend = (n_i * own + shrink * pooled[None, :]) / (n_i + shrink) if shrink > 0 else own
        # series without a MASE scale (constant history) fall back to their own MAE ranking
        score = np.where(np.isfinite(own).any(axis=1)[:, None], np.where(np.isfinite(own), blend, np.nan), raw)
        score = np.where(np.isfinite(score), score, np.inf)
        best = np.argmin(score, axis=1)
        has = np.isfinite(score).any(axis=1)
        if combo_j >= 0 and margin > 0:
            # the combination is the default: a single model replaces it only when its
            # (pooled, shrunken) backtest error is at least `margin` lower
            sb = score[np.arange(S), best]
            sc_combo = score[:, combo_j]
            best = np.where(np.isfinite(sc_combo) & (sb > (1 - margin) * sc_combo), combo_j, best)
        choice[:, k] = np.where(has, best, -1)
    # conformal factors per model and target window from pooled earlier windows
    point = out[:, :, :, 0, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rel = (out[:, :1, :, 4, :] - out[:, :1, :, 3, :]) / 2 / np.abs(point[:, :1])
        # per model: a quarter of its typical relative 95% half-width in the first window (fitted on data
        # before every cut-off, so no window's calibration depends on data after its own cut-off)
        rel_floor = 0.25 * np.nanmedian(
            np.where(np.isfinite(rel), rel, np.nan).transpose(2, 0, 1, 3).reshape(len(models), -1), axis=1
        )
    rel_floor = np.where(np.isfinite(rel_floor), rel_floor, 0.005)
    w = _width(point, out[:, :, :, 3, :], out[:, :, :, 4, :], scale[:, :, None, None], rel_floor[None, None, :, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (act[:, :, None, :] - point) / w  # (S, K, M, h)
    factors = np.full((K + 1, M, 4), np.nan)  # lo80, hi80, lo95, hi95 (pooled over lead times)
    step_factors = np.full((K + 1, M, 4, h), np.nan)  # the same per lead time where data suffice
    calib_rows = []
    for k in range(K + 1):
        prior = known[k] if k < K else np.ones(K, bool)
        # per lead time: every earlier window whose step at that lead is dated on or before cut-off k
        # (observed by then, like the errors the model choice uses), not only the finished windows
        seen_t = (
            np.ones((K, h), bool)
            if k == K
            else (np.arange(K)[:, None] < k) & (step_dates <= np.datetime64(cutoffs[k], "ns"))
        )
        for j, m in enumerate(models):
            rv = r[:, prior, j, :]
            vals = rv.ravel()
            vals = vals[np.isfinite(vals)]
            if calibrate and len(vals) >= 20:
                f = _factors(vals, shape)
                for t in range(h):
                    vt = r[:, seen_t[:, t], j, t].ravel()
                    vt = vt[np.isfinite(vt)]
                    step_factors[k, j, :, t] = (
                        _factors(vt, shape)
                        if len(vt) >= MIN_STEP_CALIBRATION and seen_t[:, t].sum() >= STEP_MIN_WINDOWS
                        else f
                    )
            else:
                f = np.array([np.nan] * 4)
            factors[k, j] = f
            calib_rows.append(
                {
                    "window": k if k < K else -1,
                    "model": m,
                    "n": int(len(vals)),
                    "rel_floor": float(rel_floor[j]),
                    "q_lo_80": f[0],
                    "q_hi_80": f[1],
                    "q_lo_95": f[2],
                    "q_hi_95": f[3],
                    "steps": step_factors[k, j].T.tolist(),
                }
            )
    calib = pd.DataFrame(calib_rows)
    # calibrated bounds; where no calibration is available keep the native bounds
    cal = np.empty_like(out[:, :, :, 1:, :])
    for i in range(4):
        f = step_factors[:K, :, i, :][None, :, :, :]
        cal[:, :, :, i, :] = np.where(np.isfinite(f), point + f * w, out[:, :, :, 1 + i, :])
    # long frame
    s_idx, k_idx, t_idx = np.meshgrid(np.arange(S), np.arange(K), np.arange(h), indexing="ij")
    s_idx, k_idx, t_idx = s_idx.ravel(), k_idx.ravel(), t_idx.ravel()
    cut = np.array(cutoffs, dtype="datetime64[ns]")
    cols = {
        ID: uids[s_idx],
        "window": k_idx,
        DS: step_dates[k_idx, t_idx],
        "cutoff": cut[k_idx],
        "step": t_idx + 1,
        Y: act[s_idx, k_idx, t_idx],
        "_scale": scale[s_idx, k_idx],
    }
    for j, m in enumerate(models):
        cols[m] = point[s_idx, k_idx, j, t_idx]
        for i, nm in enumerate(("lo-80", "hi-80", "lo-95", "hi-95")):
            cols[f"{m}-{nm}"] = cal[s_idx, k_idx, j, i, t_idx]
            cols[f"{m}-{nm}-raw"] = out[s_idx, k_idx, j, 1 + i, t_idx]
    ch = choice[s_idx, k_idx]
    has = ch >= 0
    chc = np.where(has, ch, 0)
    cols[CHOSEN] = np.where(has, point[s_idx, k_idx, chc, t_idx], np.nan)
    for i, nm in enumerate(("lo-80", "hi-80", "lo-95", "hi-95")):
        cols[f"{CHOSEN}-{nm}"] = np.where(has, cal[s_idx, k_idx, chc, i, t_idx], np.nan)
        cols[f"{CHOSEN}-{nm}-raw"] = np.where(has, out[s_idx, k_idx, chc, 1 + i, t_idx], np.nan)
    cols["chosen_model"] = np.where(has, np.array(models, dtype=object)[chc], None)
    cv = pd.DataFrame(cols)
    cv = cv[ok[s_idx, k_idx]].reset_index(drop=True)
    rows = []
    for k in range(K + 1):
        for s in range(S):
            if choice[s, k] >= 0:
                rows.append(
                    {
                        ID: uids[s],
                        "window": k if k < K else -1,
                        "cutoff": cutoffs[k] if k < K else pd.NaT,
                        "model": models[choice[s, k]],
                    }
                )
    choices = pd.DataFrame(rows, columns=[ID, "window", "cutoff", "model"])
    # the final interval factors travel with the choices frame
    choices.attrs["final_factors"] = {m: step_factors[K, j].tolist() for j, m in enumerate(models)}
    choices.attrs["combo_weights"] = members
    return cv, choices, calib


MIN_STEP_CALIBRATION = 50  #: fewest earlier errors at one lead time to calibrate that lead time alone
STEP_MIN_WINDOWS = 2  #: fewest finished windows before lead times are calibrated one by one


INTERVAL_SHAPES = ("symmetric", "equal", "shortest", "auto")
INTERVAL_SHAPE = "symmetric"  #: default of INTERVAL_SHAPES (see _factors)
ATOM_SHARE = 0.10  #: "auto": errors exactly zero this often (unchanged prices) call for shortest ranges


def _factors(vals: np.ndarray, shape: str | None = None) -> np.ndarray:
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


def _width(point: np.ndarray, lo95: np.ndarray, hi95: np.ndarray, scale, rel_floor=0.005) -> np.ndarray:
    """Conformal scale: the model's 95% half-width, floored at half the series' MASE scale and at
    `rel_floor` x the level (a quarter of the model's typical relative width), so that series with a
    flat history cannot blow up the pooled quantiles."""
    hw = (hi95 - lo95) / 2
    sc = np.where(np.isfinite(scale), scale, 0.0) * 0.5
    floor = np.fmax(np.abs(point) * np.fmax(rel_floor, 0.005), 1e-9)
    return np.fmax(np.where(np.isfinite(hw), hw, 0.0), np.fmax(floor, sc))


def _metric_block(y, f, scale, lo80, hi80, lo95, hi95, rlo80, rhi80, rlo95, rhi95) -> dict:
    """Accuracy and interval metrics on aligned arrays."""
    ok = np.isfinite(y) & np.isfinite(f)
    if not ok.any():
        return {k: (0 if k == "n" else np.nan) for k in METRICS}
    e = y[ok] - f[ok]
    den = np.abs(y[ok]) + np.abs(f[ok])
    sm = np.where(den > 0, 200 * np.abs(e) / np.where(den > 0, den, 1), 0.0)
    sc = scale[ok]
    mase = np.abs(e)[np.isfinite(sc) & (sc > 0)] / sc[np.isfinite(sc) & (sc > 0)]
    row = {
        "n": int(ok.sum()),
        "mae": float(np.mean(np.abs(e))),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "smape": float(np.mean(sm)),
        "mase": float(np.mean(mase)) if len(mase) else np.nan,
    }
    yy = y[ok]
    for lv, lo, hi, rlo, rhi in ((80, lo80, hi80, rlo80, rhi80), (95, lo95, hi95, rlo95, rhi95)):
        lo, hi, rlo, rhi = lo[ok], hi[ok], rlo[ok], rhi[ok]
        iok = np.isfinite(lo) & np.isfinite(hi)
        a = 1 - lv / 100
        if iok.any():
            lo_, hi_, v = lo[iok], hi[iok], yy[iok]
            row[f"coverage_{lv}"] = float(np.mean((v >= lo_) & (v <= hi_)))
            row[f"width_{lv}"] = float(np.mean(hi_ - lo_))
            row[f"winkler_{lv}"] = float(
                np.mean((hi_ - lo_) + 2 / a * (lo_ - v) * (v < lo_) + 2 / a * (v - hi_) * (v > hi_))
            )
        else:
            row[f"coverage_{lv}"] = row[f"width_{lv}"] = row[f"winkler_{lv}"] = np.nan
        rok = np.isfinite(rlo) & np.isfinite(rhi)
        row[f"coverage_raw_{lv}"] = (
            float(np.mean((yy[rok] >= rlo[rok]) & (yy[rok] <= rhi[rok]))) if rok.any() else np.nan
        )
    return row


def _metrics(cv: pd.DataFrame, models: list, horizons: list) -> pd.DataFrame:
    """Metrics on scored windows (those with a choice) per series and overall, per lead-time bucket."""
    ev = cv[cv["chosen_model"].notna()]
    y = ev[Y].to_numpy(float)
    scale = ev["_scale"].to_numpy(float)
    good_scale = np.isfinite(scale) & (scale > 0)
    cols: dict = {}
    for m in models:
        if m not in ev.columns:
            continue
        f = ev[m].to_numpy(float)
        ok = np.isfinite(y) & np.isfinite(f)
        e = np.where(ok, y - f, np.nan)
        den = np.abs(y) + np.abs(f)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[(m, "n")] = ok.astype(float)
            cols[(m, "mae")] = np.abs(e)
            cols[(m, "rmse")] = e**2
            cols[(m, "smape")] = np.where(
                ok, np.where(den > 0, 200 * np.abs(e) / np.where(den > 0, den, 1), 0.0), np.nan
            )
            cols[(m, "mase")] = np.where(ok & good_scale, np.abs(e) / np.where(good_scale, scale, 1), np.nan)
            for lv in (80, 95):
                a = 1 - lv / 100
                lo, hi = ev[f"{m}-lo-{lv}"].to_numpy(float), ev[f"{m}-hi-{lv}"].to_numpy(float)
                iok = ok & np.isfinite(lo) & np.isfinite(hi)
                cols[(m, f"coverage_{lv}")] = np.where(iok, (y >= lo) & (y <= hi), np.nan)
                cols[(m, f"width_{lv}")] = np.where(iok, hi - lo, np.nan)
                cols[(m, f"winkler_{lv}")] = np.where(
                    iok, (hi - lo) + 2 / a * (lo - y) * (y < lo) + 2 / a * (y - hi) * (y > hi), np.nan
                )
                rlo, rhi = ev[f"{m}-lo-{lv}-raw"].to_numpy(float), ev[f"{m}-hi-{lv}-raw"].to_numpy(float)
                rok = ok & np.isfinite(rlo) & np.isfinite(rhi)
                cols[(m, f"coverage_raw_{lv}")] = np.where(rok, (y >= rlo) & (y <= rhi), np.nan)
    wide = pd.DataFrame(cols, index=ev.index)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    ids = ev[ID].to_numpy()
    steps = ev["step"].to_numpy()
    frames = []
    for hz in horizons:
        part = wide[steps <= hz]
        pid = ids[steps <= hz]
        n = part.xs("n", axis=1, level=1).groupby(pid).sum()
        means = part.groupby(pid).mean()
        overall = part.mean().to_frame().T
        overall.index = [OVERALL]
        n_all = part.xs("n", axis=1, level=1).sum().to_frame().T
        n_all.index = [OVERALL]
        means = pd.concat([overall, means])
        n = pd.concat([n_all, n])
        long = means.stack(level=0, future_stack=True)
        long.index.names = [ID, "model"]
        long = long.reset_index()
        long["n"] = n.stack(future_stack=True).reindex(pd.MultiIndex.from_frame(long[[ID, "model"]])).to_numpy()
        long["rmse"] = np.sqrt(long["rmse"])
        long["horizon"] = int(hz)
        frames.append(long)
    out = pd.concat(frames, ignore_index=True)
    out["n"] = out["n"].fillna(0).astype(int)
    order = {m: i for i, m in enumerate(models)}
    out["_o"] = out["model"].map(order)
    out["_a"] = out[ID] != OVERALL
    out = out.sort_values(["horizon", "_a", ID, "_o"]).drop(columns=["_o", "_a"]).reset_index(drop=True)
    return out[[ID, "model", "horizon", *METRICS]]


# --- probability of a price change --------------------------------------------------------------

PRIOR_STRENGTH = 20.0  #: pseudo-steps of the pooled change rate added to every series' own count


def _changes(y: np.ndarray, tol: float = 0.005) -> np.ndarray:
    """Boolean: did the value change at each step (beyond half a cent)?"""
    return np.abs(np.diff(y)) > tol


def change_probability(y: np.ndarray, h: int, prior_rate: float, strength: float = PRIOR_STRENGTH) -> float:
    """P(the value changes within h steps): shrunken per-step change rate, 1 - (1 - p)^h."""
    c = _changes(np.asarray(y, dtype=float))
    p = (c.sum() + prior_rate * strength) / (len(c) + strength)
    return float(1 - (1 - p) ** h)


CHANGE_RUN_EDGES = (1, 2, 4, 8, 16, 32)  #: bins of the steps since the last change
CHANGE_EXP_EDGES = (0.3, 1.0)  #: bins of the series' own expected changes per horizon so far
CHANGE_CELLS = 2 * (len(CHANGE_RUN_EDGES) + 1) * (len(CHANGE_EXP_EDGES) + 1)
CHANGE_PRIOR = 20.0  #: pseudo-origins of the pooled share added to every cell


def observed_steps(n: int, imputed: np.ndarray | None = None) -> np.ndarray:
    """(n - 1,) booleans: step t -> t + 1 joins two observed (not forward-filled) values."""
    if imputed is None or n < 2:
        return np.ones(max(n - 1, 0), bool)
    imp = np.asarray(imputed, bool)
    return ~imp[1:] & ~imp[:-1]


def change_features(
    y: np.ndarray, h: int, window: int, tol: float = 0.005, imputed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per origin t (causal: uses y[:t+1] only) the state cell, and whether y changed in (t, t+h].

    Cell = promo state (last value more than PROMO_TOL below the max of the last `window` values) x
    steps since the last change (binned) x the series' own change rate so far times h (binned).
    The label is NaN where t + h is past the data, and where any of y[t..t+h] is `imputed`
    (forward-filled: whether the price moved there is unknown, so it is not counted as unchanged);
    the own change rate counts only steps between two observed values.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    ch = np.r_[False, np.abs(np.diff(y)) > tol]
    valid = np.r_[False, observed_steps(n, imputed)]
    idx = np.arange(n)
    run = idx - np.maximum.accumulate(np.where(ch, idx, 0))
    pad = np.r_[np.full(max(window, 1) - 1, -np.inf), y]
    reg = sliding_window_view(pad, max(window, 1)).max(axis=1)
    promo = y < reg * (1 - PROMO_TOL)
    cum = np.cumsum(ch)
    rate = np.cumsum(ch & valid) / np.maximum(np.cumsum(valid), 1)
    cell = (promo.astype(int) * (len(CHANGE_RUN_EDGES) + 1) + np.digitize(run, CHANGE_RUN_EDGES)) * (
        len(CHANGE_EXP_EDGES) + 1
    ) + np.digitize(rate * h, CHANGE_EXP_EDGES)
    label = np.full(n, np.nan)
    if n > h:
        label[: n - h] = (cum[h:] - cum[: n - h]) > 0
        if imputed is not None:
            imp = np.cumsum(np.r_[0, np.asarray(imputed, bool)])  # imputed count before each index
            gap = (imp[h + 1 :] - imp[: n - h]) > 0  # any imputed value in y[t..t+h]
            label[: n - h][gap] = np.nan
    return cell, label


def _change_table(feats: list, ends: list, h: int, upto: int = 0) -> tuple[np.ndarray, float]:
    """Pooled change share per cell from origins whose h-step future ends before each series' end
    (minus `upto` more steps, to hold the most recent origins out)."""
    cut = [max(e - h - upto, 0) for e in ends]
    cells = np.concatenate([c[:m] for (c, _l), m in zip(feats, cut)] or [np.zeros(0, int)])
    labels = np.concatenate([lab[:m] for (_c, lab), m in zip(feats, cut)] or [np.zeros(0)])
    ok = np.isfinite(labels)
    cells, labels = cells[ok].astype(int), labels[ok]
    share = float(labels.mean()) if len(labels) else 0.0
    n = np.bincount(cells, minlength=CHANGE_CELLS)
    k = np.bincount(cells, weights=labels, minlength=CHANGE_CELLS)
    return (k + CHANGE_PRIOR * share) / (n + CHANGE_PRIOR), share


def _change_model(feats: list, ends: list, h: int, p_base: float) -> tuple[np.ndarray | None, float]:
    """The cell table, or None when the constant rate `p_base` predicted the most recent h origins of
    every series better (Brier): the table is fitted on earlier origins and checked on those."""
    held = [
        (c[max(e - 2 * h, 0) : max(e - h, 0)], lab[max(e - 2 * h, 0) : max(e - h, 0)])
        for (c, lab), e in zip(feats, ends)
    ]
    cells = np.concatenate([c for c, _ in held] or [np.zeros(0, int)]).astype(int)
    labels = np.concatenate([lab for _, lab in held] or [np.zeros(0)])
    ok = np.isfinite(labels)
    table, share = _change_table(feats, ends, h)
    if ok.sum() >= 20:
        early, _ = _change_table(feats, ends, h, upto=h)
        if np.mean((early[cells[ok]] - labels[ok]) ** 2) > np.mean((p_base - labels[ok]) ** 2):
            return None, share
    return table, share


def _change_backtest(items: list, cutoffs: list, h: int, window: int = 14, imputed: dict | None = None) -> pd.DataFrame:
    """Change probability at every cut-off vs whether the value changed in the next h steps.

    `p_change`: pooled state-cell table (change_features) learned from every series' history up to
    the cut-off; baselines: `p_base` (pooled per-step rate r, 1 - (1 - r)^h) and `p_share` (pooled
    share of past h-step spans with a change, no state).
    """
    rows = []
    imputed = imputed or {}
    feats = {u: change_features(y, h, window, imputed=imputed.get(u)) for (u, y, x, s0, e) in items}
    obs = {u: observed_steps(len(y), imputed.get(u)) for (u, y, x, s0, e) in items}
    for k in range(len(cutoffs)):
        ends = [(u, y, e[k]) for (u, y, x, s0, e) in items if e[k] >= 3]
        if not ends:
            continue
        n_ch = sum(int((_changes(y[:e]) & obs[u][: e - 1]).sum()) for u, y, e in ends)
        n_st = sum(int(obs[u][: e - 1].sum()) for u, y, e in ends)
        rate = n_ch / n_st if n_st else 0.0
        p_base = 1 - (1 - rate) ** h
        table, share = _change_model([feats[u] for u, _, _ in ends], [e for _, _, e in ends], h, p_base)
        for u, y, e in ends:
            fut = y[e - 1 : e + h]
            imp = imputed.get(u)
            gap = bool(imp is not None and np.asarray(imp[e - 1 : e + h], bool).any())
            rows.append(
                {
                    ID: u,
                    "window": k,
                    "cutoff": cutoffs[k],
                    "p_change": float(table[feats[u][0][e - 1]]) if table is not None else p_base,
                    "p_base": p_base,
                    "p_share": share,
                    "changed": float(_changes(fut).any()) if len(fut) > 1 and not gap else np.nan,
                    "evaluated": k > 0 and len(fut) == h + 1 and not gap,
                }
            )
    return pd.DataFrame(rows, columns=[ID, "window", "cutoff", "p_change", "p_base", "p_share", "changed", "evaluated"])


# --- final forecast frame -------------------------------------------------------------------------


def _final_frame(
    fres: list,
    items: list,
    final_choice: dict,
    calib: pd.DataFrame,
    fq: fc.Freq,
    h: int,
    season: int,
    imputed: dict | None = None,
) -> pd.DataFrame:
    """unique_id, ds, chosen_model, chosen (+ calibrated bounds), naive baselines, p_change."""
    fin = calib[calib["window"] == -1].set_index("model")
    last = {u: (y, s0) for (u, y, x, s0, e) in items}
    window = regular_windows(season)[0]
    imputed = imputed or {}
    feats = {u: change_features(y, h, window, imputed=imputed.get(u)) for u, (y, _s0) in last.items()}
    obs = {u: observed_steps(len(y), imputed.get(u)) for u, (y, _s0) in last.items()}
    n_ch = sum(int((_changes(y) & obs[u]).sum()) for u, (y, _s0) in last.items())
    n_st = sum(int(obs[u].sum()) for u in last)
    p_base = 1 - (1 - (n_ch / n_st if n_st else 0.0)) ** h
    table, _share = _change_model(list(feats.values()), [len(y) for y, _s0 in last.values()], h, p_base)
    frames = []
    for r in fres:
        u = r["uid"]
        y, s0 = last[u]
        scale = fc._mase_scale(y, season) if len(y) > season else np.nan
        scale = scale if np.isfinite(scale) else fc._mase_scale(y, 1)
        end_ds = fq.dates(np.array([s0]), np.array([len(y) - 1]))[0]
        cols = {ID: u, DS: fq.future(pd.Timestamp(end_ds), h), "chosen_model": final_choice[u]}
        for name, arr in [(CHOSEN, r["final"][final_choice[u]])] + [(b, r["final"][b]) for b in NAIVE_BASELINES]:
            src = final_choice[u] if name == CHOSEN else name
            point = arr[0]
            cols[name] = point
            w = _width(point, arr[3], arr[4], scale, fin.loc[src, "rel_floor"] if src in fin.index else 0.005)
            f = (
                np.asarray(fin.loc[src, "steps"], dtype=float).T if src in fin.index else np.full((4, h), np.nan)
            )  # (4, h) per lead-time factors
            for i, nm in enumerate(("lo-80", "hi-80", "lo-95", "hi-95")):
                cols[f"{name}-{nm}"] = np.where(np.isfinite(f[i]), point + f[i] * w, arr[1 + i])
        if np.nanmin(y) >= 0:  # a non-negative history (prices): future bounds below 0 are clipped to 0
            for name in (CHOSEN, *NAIVE_BASELINES):
                for nm in ("lo-80", "lo-95"):
                    cols[f"{name}-{nm}"] = np.maximum(cols[f"{name}-{nm}"], 0.0)
        cols["p_change"] = float(table[feats[u][0][-1]]) if table is not None else p_base
        frames.append(pd.DataFrame(cols))
    if not frames:
        return pd.DataFrame(columns=[ID, DS, "chosen_model", CHOSEN])
    return pd.concat(frames, ignore_index=True)
