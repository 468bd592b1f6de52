"""Daily forecasting on long frames `unique_id, ds, y`: cleaning, baselines, ETS, Prophet, backtests.

Every model returns a point forecast and 80%/95% intervals in columns `<model>`,
`<model>-lo-80`, `<model>-hi-80`, `<model>-lo-95`, `<model>-hi-95`. Baseline intervals come
from empirical quantiles of the model's own in-sample k-step-ahead errors; AutoETS uses
statsforecast's levels; Prophet uses quantiles of its predictive samples.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from priceintel import PriceIntelError
from priceintel.items import FORECAST_ID, FORECAST_TARGET, FORECAST_TIME

SEASON = 7  #: weekly seasonality of daily data
WINDOW = 28  #: days in the rolling regular-price level (window_average)
MIN_LENGTH = 2 * SEASON  #: series shorter than this are flagged `too_short`
MIN_RESIDUALS = 5  #: fewest in-sample errors at a horizon to read interval quantiles from
PROPHET_ITER = 2000  #: L-BFGS iteration cap per Prophet fit (bounds the fit time)
PROPHET_SAMPLES = 400  #: predictive samples per Prophet forecast
SEED = 0

BASELINES = ("naive", "seasonal_naive", "window_average")
MODELS = BASELINES + ("auto_ets", "prophet")
DEFAULT_MODELS = BASELINES + ("auto_ets",)
OVERALL = "__all__"  #: unique_id of the overall rows in a metrics frame
METRIC_COLUMNS = ["unique_id", "model", "n", "mae", "rmse", "smape", "mase"]
REPORT_COLUMNS = [
    "unique_id", "start", "end", "n_obs", "length", "n_filled", "n_duplicates", "too_short",
    "constant",
]

ID, DS, Y = FORECAST_ID, FORECAST_TIME, FORECAST_TARGET


class ForecastError(PriceIntelError):
    """Bad input to a forecasting call; the message names the column, row or argument."""


# --- cleaning --------------------------------------------------------------------------------


def clean_series(df: pd.DataFrame, min_length: int = MIN_LENGTH) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regular daily series (duplicates averaged, gaps forward-filled) and a per-series report."""
    if not isinstance(df, pd.DataFrame):
        raise ForecastError(f"clean_series: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in (ID, DS, Y) if c not in df.columns]
    if missing:
        raise ForecastError(
            f"clean_series: column(s) {missing} missing; expected long frame "
            f"[{ID}, {DS}, {Y}], got {list(df.columns)}"
        )
    ds = pd.to_datetime(df[DS], errors="coerce")
    bad = ds.isna() & df[DS].notna()
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise ForecastError(f"clean_series: {DS}={df[DS].iloc[i]!r} in row {df.index[i]!r} is not a date")
    data = pd.DataFrame({
        ID: df[ID].astype(str).to_numpy(),
        DS: ds.dt.normalize().to_numpy(),
        Y: pd.to_numeric(df[Y], errors="coerce").astype(float).to_numpy(),
    }).dropna(subset=[DS])
    n_obs = data.dropna(subset=[Y]).groupby(ID).size()
    dup = data.duplicated([ID, DS], keep="first").groupby(data[ID]).sum()
    data = data.groupby([ID, DS], as_index=False, sort=True)[Y].mean()
    if data.empty:
        return (pd.DataFrame({ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns]"),
                              Y: pd.Series(dtype=float)}),
                pd.DataFrame(columns=REPORT_COLUMNS))
    # full daily grid per series, built without a Python loop
    span = data.groupby(ID)[DS].agg(["min", "max"])
    lengths = ((span["max"] - span["min"]).dt.days + 1).to_numpy()
    ids = np.repeat(span.index.to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = pd.DataFrame({
        ID: ids,
        DS: np.repeat(span["min"].to_numpy(), lengths) + pd.to_timedelta(offsets, unit="D"),
    })
    full = grid.merge(data, on=[ID, DS], how="left")
    was_nan = full[Y].isna()
    full[Y] = full.groupby(ID)[Y].ffill()
    keep = full[Y].notna()  # leading NaNs have nothing to carry forward
    n_filled = (was_nan & keep).groupby(full[ID]).sum()
    full = full[keep].reset_index(drop=True)
    g = full.groupby(ID)[Y]
    idx = span.index
    report = pd.DataFrame({
        ID: idx.to_numpy(),
        "start": full.groupby(ID)[DS].min().reindex(idx).to_numpy(),
        "end": full.groupby(ID)[DS].max().reindex(idx).to_numpy(),
        "n_obs": n_obs.reindex(idx, fill_value=0).to_numpy(),
        "length": g.size().reindex(idx, fill_value=0).to_numpy(),
        "n_filled": n_filled.reindex(idx, fill_value=0).to_numpy().astype(int),
        "n_duplicates": dup.reindex(idx, fill_value=0).to_numpy().astype(int),
    })
    report["too_short"] = report["length"] < min_length
    report["constant"] = (g.nunique().reindex(idx, fill_value=0) <= 1).to_numpy()
    return full, report.reset_index(drop=True)


# --- per-series models ---------------------------------------------------------------------


def _quantile_cols(point: np.ndarray, errors: np.ndarray, levels: Sequence[int]) -> dict:
    """Intervals `point + quantile(errors[:, k])` per horizon, sqrt-scaled where errors are few."""
    h = len(point)
    out = {}
    counts = np.isfinite(errors).sum(axis=0) if errors.size else np.zeros(h, int)
    for lv in levels:
        a = (1 - lv / 100) / 2
        lo = np.full(h, np.nan)
        hi = np.full(h, np.nan)
        last_ok = None
        for k in range(h):
            if counts[k] >= MIN_RESIDUALS:
                col = errors[:, k][np.isfinite(errors[:, k])]
                lo[k], hi[k] = np.quantile(col, [a, 1 - a])
                last_ok = k
            elif last_ok is not None:
                scale = np.sqrt((k + 1) / (last_ok + 1))
                lo[k], hi[k] = lo[last_ok] * scale, hi[last_ok] * scale
        out[f"lo-{lv}"] = point + np.minimum(lo, 0)
        out[f"hi-{lv}"] = point + np.maximum(hi, 0)
    return out


def _ahead(y: np.ndarray, h: int) -> np.ndarray:
    """Matrix A[t, k-1] = y[t + k] (NaN past the end) for in-sample k-step errors."""
    padded = np.concatenate([y, np.full(h, np.nan)])
    return sliding_window_view(padded, h + 1)[: len(y), 1:]


def _level_model(y: np.ndarray, h: int, levels: Sequence[int], level_at: np.ndarray) -> dict:
    """Flat forecast from the last in-sample level, intervals from k-step errors of that level."""
    point = np.full(h, level_at[-1])
    errors = _ahead(y, h) - level_at[:, None]
    return {"mean": point, **_quantile_cols(point, errors, levels)}


def fc_naive(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95)) -> dict:
    """Last value carried forward."""
    return _level_model(y, h, levels, y.astype(float))


def fc_window_average(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95),
                      window: int = WINDOW) -> dict:
    """Rolling median of the last `window` days: the regular-price level, robust to promos."""
    lvl = pd.Series(y).rolling(window, min_periods=min(window, SEASON, len(y))).median().to_numpy()
    lvl[-1] = np.median(y[-window:])
    return _level_model(y, h, levels, lvl)


def fc_seasonal_naive(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95),
                      season: int = SEASON) -> dict:
    """Same weekday last week."""
    n = len(y)
    if n < season:
        nan = np.full(h, np.nan)
        return {"mean": nan, **{f"{s}-{lv}": nan for lv in levels for s in ("lo", "hi")}}
    k = np.arange(1, h + 1)
    point = y[n - season + (k - 1) % season].astype(float)
    lag = season * np.ceil(k / season).astype(int)  # how far back each horizon looks
    t = np.arange(n)[:, None]
    src = t + k[None, :] - lag[None, :]
    base = np.where(src >= 0, y[np.clip(src, 0, n - 1)], np.nan)
    errors = _ahead(y.astype(float), h) - base
    return {"mean": point, **_quantile_cols(point, errors, levels)}


def fc_auto_ets(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95),
                season: int = SEASON) -> dict:
    """statsforecast AutoETS with weekly seasonality and its own prediction intervals."""
    from statsforecast.models import AutoETS

    res = AutoETS(season_length=season).forecast(y=y.astype(float), h=h, level=list(levels))
    return {k: np.asarray(v, dtype=float) for k, v in res.items()}


def _quiet_prophet() -> None:
    """Silence cmdstanpy/prophet INFO chatter (cmdstanpy installs its own handler on first use)."""
    from cmdstanpy.utils import get_logger

    get_logger().setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)


def fc_prophet(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95),
               start: Optional[pd.Timestamp] = None, iter_cap: int = PROPHET_ITER) -> dict:
    """Prophet with weekly seasonality, L-BFGS with an iteration cap; quantiles of its samples."""
    if np.nanstd(y) == 0:
        raise ForecastError("prophet skipped: constant series")
    if len(y) < MIN_LENGTH:
        raise ForecastError(f"prophet skipped: series of {len(y)} days is shorter than {MIN_LENGTH}")
    from prophet import Prophet  # lazy: heavy import

    _quiet_prophet()
    start = pd.Timestamp("2000-01-03") if start is None else pd.Timestamp(start)
    hist = pd.DataFrame({"ds": pd.date_range(start, periods=len(y), freq="D"), "y": y})
    m = Prophet(weekly_seasonality=True, yearly_seasonality="auto", daily_seasonality=False,
                uncertainty_samples=PROPHET_SAMPLES)
    m.fit(hist, algorithm="LBFGS", iter=iter_cap)
    fut = m.make_future_dataframe(periods=h, freq="D", include_history=False)
    state = np.random.get_state()
    np.random.seed(SEED)
    try:
        samples = m.predictive_samples(fut)["yhat"]
    finally:
        np.random.set_state(state)
    out = {"mean": m.predict(fut)["yhat"].to_numpy(dtype=float)}
    for lv in levels:
        a = (1 - lv / 100) / 2
        out[f"lo-{lv}"], out[f"hi-{lv}"] = np.quantile(samples, [a, 1 - a], axis=1)
    return out


MODEL_FUNCS: dict[str, Callable[..., dict]] = {
    "naive": fc_naive,
    "seasonal_naive": fc_seasonal_naive,
    "window_average": fc_window_average,
    "auto_ets": fc_auto_ets,
    "prophet": fc_prophet,
}


def _check_args(h: int, models: Iterable[str], level: Iterable[int]) -> tuple[list[str], list[int]]:
    """Validated model names and levels."""
    if not isinstance(h, (int, np.integer)) or h < 1:
        raise ForecastError(f"horizon h={h!r} must be a positive integer")
    models = list(dict.fromkeys(models))
    unknown = [m for m in models if m not in MODEL_FUNCS]
    if unknown:
        raise ForecastError(f"unknown model(s) {unknown}; choose from {list(MODEL_FUNCS)}")
    levels = sorted({int(lv) for lv in level})
    if any(not 0 < lv < 100 for lv in levels):
        raise ForecastError(f"interval levels {levels} must lie strictly between 0 and 100")
    return models, levels


def _run_models(y: np.ndarray, h: int, models: Sequence[str], levels: Sequence[int],
                start: pd.Timestamp, uid: str, failures: list) -> dict:
    """Forecast one series with each model; a failing model gives NaN and a failure record."""
    cols: dict[str, np.ndarray] = {}
    for name in models:
        try:
            if name == "prophet":
                res = fc_prophet(y, h, levels, start=start)
            else:
                res = MODEL_FUNCS[name](y, h, levels)
        except Exception as exc:  # noqa: BLE001 - one series must not sink the batch
            failures.append({ID: uid, "model": name, "reason": f"{type(exc).__name__}: {exc}"})
            res = {"mean": np.full(h, np.nan)}
        cols[name] = np.asarray(res["mean"], dtype=float)
        for lv in levels:
            for side in ("lo", "hi"):
                cols[f"{name}-{side}-{lv}"] = np.asarray(res.get(f"{side}-{lv}", np.full(h, np.nan)),
                                                         dtype=float)
    return cols


def _empty_series(report: pd.DataFrame) -> list[dict]:
    """Failure records for series that have no observed value at all."""
    return [{ID: uid, "model": "*", "reason": "no observed values"}
            for uid in report.loc[report["length"] == 0, ID]]


def _series(df: pd.DataFrame) -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
    """(unique_id, ds, y) arrays per series of a clean frame."""
    for uid, grp in df.groupby(ID, sort=True):
        yield str(uid), grp[DS].to_numpy(), grp[Y].to_numpy(dtype=float)


def forecast(
    df: pd.DataFrame,
    h: int,
    models: Sequence[str] = DEFAULT_MODELS,
    level: Sequence[int] = (80, 95),
) -> pd.DataFrame:
    """Forecast every series `h` days ahead; columns `unique_id, ds, <model>, <model>-lo-80, ...`."""
    models, levels = _check_args(h, models, level)
    clean, report = clean_series(df)
    failures: list = _empty_series(report)
    frames = []
    with threadpool_limits(limits=1):
        for uid, ds, y in _series(clean):
            cols = _run_models(y, h, models, levels, pd.Timestamp(ds[0]), uid, failures)
            future = pd.date_range(pd.Timestamp(ds[-1]) + pd.Timedelta(days=1), periods=h, freq="D")
            frames.append(pd.DataFrame({ID: uid, DS: future, **cols}))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[ID, DS, *_model_columns(models, levels)])
    out = out[[ID, DS, *_model_columns(models, levels)]]
    out.attrs["clean_report"] = report.to_dict("records")
    out.attrs["failures"] = failures
    return out


def _model_columns(models: Sequence[str], levels: Sequence[int]) -> list[str]:
    """Column names of the forecasts of `models` at `levels`."""
    return [c for m in models for c in
            [m, *[f"{m}-{s}-{lv}" for lv in levels for s in ("lo", "hi")]]]


# --- backtesting -----------------------------------------------------------------------------


def _mase_scale(y: np.ndarray, season: int = SEASON) -> float:
    """In-sample MAE of the seasonal-naive forecast (NaN when undefined or zero)."""
    if len(y) <= season:
        return float("nan")
    s = float(np.mean(np.abs(y[season:] - y[:-season])))
    return s if s > 0 else float("nan")


def backtest(
    df: pd.DataFrame,
    h: int = 14,
    n_windows: int = 1,
    step: Optional[int] = None,
    models: Sequence[str] = DEFAULT_MODELS,
    level: Sequence[int] = (80, 95),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rolling-origin backtest: (cv frame with `cutoff` and `y`, metrics per model/series/overall)."""
    models, levels = _check_args(h, list(BASELINES) + list(models), level)
    if not isinstance(n_windows, (int, np.integer)) or n_windows < 1:
        raise ForecastError(f"n_windows={n_windows!r} must be a positive integer")
    step = h if step is None else step
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ForecastError(f"step={step!r} must be a positive integer")
    clean, report = clean_series(df)
    failures: list = _empty_series(report)
    frames = []
    with threadpool_limits(limits=1):
        for uid, ds, y in _series(clean):
            n = len(y)
            for w in range(n_windows):
                end = n - h - (n_windows - 1 - w) * step
                if end < 2:
                    failures.append({ID: uid, "model": "*", "reason":
                                     f"window {w}: {n} days leave fewer than 2 to train on"})
                    continue
                train = y[:end]
                cols = _run_models(train, h, models, levels, pd.Timestamp(ds[0]), uid, failures)
                frames.append(pd.DataFrame({
                    ID: uid, DS: ds[end:end + h], "cutoff": ds[end - 1], Y: y[end:end + h],
                    "_scale": _mase_scale(train), **{k: v[: min(h, n - end)] for k, v in cols.items()},
                }))
    mcols = _model_columns(models, levels)
    if not frames:
        raise ForecastError(f"backtest: no series is long enough for h={h}, n_windows={n_windows}")
    cv = pd.concat(frames, ignore_index=True)
    metrics = _metrics(cv, models, levels)
    cv = cv[[ID, DS, "cutoff", Y, *mcols]]
    cv.attrs["clean_report"] = report.to_dict("records")
    cv.attrs["failures"] = failures
    return cv, metrics


def _metric_row(y: np.ndarray, f: np.ndarray, scale: np.ndarray, ints: dict) -> dict:
    """Accuracy and interval metrics of one model on a set of points."""
    ok = np.isfinite(f) & np.isfinite(y)
    e = y[ok] - f[ok]
    denom = np.abs(y[ok]) + np.abs(f[ok])
    sm = np.where(denom > 0, 200 * np.abs(e) / np.where(denom > 0, denom, 1), 0.0)
    sc = np.abs(e) / scale[ok]
    row = {
        "n": int(ok.sum()),
        "mae": float(np.mean(np.abs(e))) if ok.any() else np.nan,
        "rmse": float(np.sqrt(np.mean(e ** 2))) if ok.any() else np.nan,
        "smape": float(np.mean(sm)) if ok.any() else np.nan,
        "mase": float(np.nanmean(sc)) if np.isfinite(sc).any() else np.nan,
    }
    for lv, (lo, hi) in ints.items():
        iok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(y)
        row[f"coverage_{lv}"] = float(np.mean((y[iok] >= lo[iok]) & (y[iok] <= hi[iok]))) if iok.any() else np.nan
        row[f"width_{lv}"] = float(np.mean(hi[iok] - lo[iok])) if iok.any() else np.nan
    return row


def _metrics(cv: pd.DataFrame, models: Sequence[str], levels: Sequence[int]) -> pd.DataFrame:
    """Metrics per (series, model) and overall (unique_id == OVERALL)."""
    rows = []
    groups = [(uid, g) for uid, g in cv.groupby(ID, sort=True)] + [(OVERALL, cv)]
    for uid, g in groups:
        y, scale = g[Y].to_numpy(float), g["_scale"].to_numpy(float)
        for m in models:
            ints = {lv: (g[f"{m}-lo-{lv}"].to_numpy(float), g[f"{m}-hi-{lv}"].to_numpy(float))
                    for lv in levels}
            rows.append({ID: uid, "model": m, **_metric_row(y, g[m].to_numpy(float), scale, ints)})
    cols = METRIC_COLUMNS + [f"{k}_{lv}" for lv in levels for k in ("coverage", "width")]
    return pd.DataFrame(rows, columns=cols)


def best_model(metrics: pd.DataFrame, by: str = "mase") -> str:
    """Model with the lowest overall `by` (MASE by default; MAE when MASE is undefined)."""
    if not isinstance(metrics, pd.DataFrame) or not {"model", by}.issubset(metrics.columns):
        raise ForecastError(f"best_model: expected a metrics frame with 'model' and {by!r} columns")
    overall = metrics[metrics[ID] == OVERALL] if ID in metrics.columns else metrics
    for col in (by, "mae"):
        ok = overall[overall[col].notna()] if col in overall.columns else overall.iloc[:0]
        if not ok.empty:
            return str(ok.sort_values([col, "model"]).iloc[0]["model"])
    raise ForecastError("best_model: no model has a finite metric")
