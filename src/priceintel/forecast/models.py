"""Daily forecasting on long frames `unique_id, ds, y`: cleaning, baselines, ETS, Prophet, backtests.

Every model returns a point forecast and 80%/95% intervals in columns `<model>`,
`<model>-lo-80`, `<model>-hi-80`, `<model>-lo-95`, `<model>-hi-95`. Baseline intervals come
from empirical quantiles of the model's own in-sample k-step-ahead errors; AutoETS uses
statsforecast's levels; Prophet uses quantiles of its predictive samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

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
PROPHET_TIMEOUT = 20.0  #: seconds before a Prophet fit is abandoned (the series gets NaN + a failure)
SEED = 0

BASELINES = ("naive", "seasonal_naive", "window_average")
MODELS = BASELINES + ("auto_ets", "prophet")
DEFAULT_MODELS = BASELINES + ("auto_ets",)
OVERALL = "__all__"  #: unique_id of the overall rows in a metrics frame
METRIC_COLUMNS = ["unique_id", "model", "n", "mae", "rmse", "smape", "mase"]
REPORT_COLUMNS = [
    "unique_id",
    "start",
    "end",
    "n_obs",
    "length",
    "n_filled",
    "n_duplicates",
    "too_short",
    "constant",
    "n_outliers",
]

ID, DS, Y = FORECAST_ID, FORECAST_TIME, FORECAST_TARGET


class ForecastError(PriceIntelError):
    """Bad input to a forecasting call; the message names the column, row or argument."""


# --- cleaning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freq:
    """A regular sampling frequency: fixed steps of `days`, or calendar steps of `months`."""

    alias: str  #: "D", "W", "M", "Q" or "Y"
    days: int = 0
    months: int = 0
    season: int = 1  #: default season length (7 for daily, 52 weekly, 12 monthly, 4 quarterly)
    anchor: str = "start"  #: calendar frequencies: dates at the period "start" or "end"

    def positions(self, ds: pd.Series, origin: pd.Series) -> np.ndarray:
        """Integer step of every date from its series' origin."""
        if self.days:
            return np.floor((ds - origin).dt.days.to_numpy() / self.days + 0.5).astype(np.int64)
        a = ds.dt.year.to_numpy() * 12 + ds.dt.month.to_numpy() - 1
        b = origin.dt.year.to_numpy() * 12 + origin.dt.month.to_numpy() - 1
        return (a - b) // self.months

    def dates(self, origin: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Dates `steps` periods after each origin (datetime64[ns])."""
        origin = pd.DatetimeIndex(origin)
        steps = np.asarray(steps, dtype=np.int64)
        if self.days:
            return (origin + pd.to_timedelta(steps * self.days, unit="D")).to_numpy()
        per = (origin.year.to_numpy() * 12 + origin.month.to_numpy() - 1) + steps * self.months
        out = pd.to_datetime({"year": per // 12, "month": per % 12 + 1, "day": 1})
        if self.anchor == "end":
            out = out + pd.offsets.MonthEnd(0)
        return out.to_numpy()

    def future(self, last: pd.Timestamp, h: int) -> np.ndarray:
        """The `h` dates after `last`."""
        return self.dates(np.repeat(np.datetime64(pd.Timestamp(last)), h), np.arange(1, h + 1))


FREQS = {
    "D": Freq("D", days=1, season=7),
    "W": Freq("W", days=7, season=52),
    "M": Freq("M", months=1, season=12),
    "Q": Freq("Q", months=3, season=4),
    "Y": Freq("Y", months=12, season=1),
}
_ALIASES = {
    "D": "D",
    "1D": "D",
    "B": "D",
    "W": "W",
    "7D": "W",
    "M": "M",
    "MS": "M",
    "ME": "M",
    "Q": "Q",
    "QS": "Q",
    "QE": "Q",
    "Y": "Y",
    "A": "Y",
    "YS": "Y",
    "YE": "Y",
    "AS": "Y",
}


def get_freq(freq: str | Freq | None, ds: pd.Series | None = None) -> Freq:
    """A Freq from an alias ("D", "W", "W-SUN", "M", "MS", "ME", "Q", "Y") or inferred from dates."""
    if isinstance(freq, Freq):
        return freq
    if freq is not None:
        key = str(freq).upper()
        key = "W" if key.startswith("W-") else key
        key = "Q" if key.startswith(("Q-", "QS-", "QE-")) else key
        if key not in _ALIASES:
            raise ForecastError(f"freq={freq!r} is not supported; use one of D, W, M, Q, Y")
        base = FREQS[_ALIASES[key]]
    else:
        base = None
    if ds is None or len(ds) == 0:
        return base or FREQS["D"]
    if base is None:
        days = _median_step_days(ds)
        if days is None or days <= 1.5:
            base = FREQS["D"]
        elif 5 <= days <= 9:
            base = FREQS["W"]
        elif 26 <= days <= 35:
            base = FREQS["M"]
        elif 84 <= days <= 95:
            base = FREQS["Q"]
        elif 360 <= days <= 370:
            base = FREQS["Y"]
        else:
            raise ForecastError(
                f"cannot infer the frequency of {DS}: the usual step is {days:g} days; pass freq="
                "'D', 'W', 'M', 'Q' or 'Y'"
            )
    if base.months:
        d = pd.DatetimeIndex(ds.dropna())
        anchor = "end" if len(d) and d.is_month_end.all() and not d.is_month_start.all() else "start"
        base = replace(base, anchor=anchor)
    return base


def _median_step_days(ds: pd.Series) -> float | None:
    """Typical (10th-percentile) gap in days between consecutive distinct dates of the same series (`ds` indexed
    by id)."""
    ids = np.zeros(len(ds), int) if isinstance(ds.index, pd.RangeIndex) else ds.index  # plain Series: one series
    frame = pd.DataFrame({"i": ids, "d": pd.to_datetime(ds).to_numpy()}).drop_duplicates().sort_values(["i", "d"])
    gaps = frame.groupby("i")["d"].diff().dt.days.dropna()
    gaps = gaps[gaps > 0]
    return float(gaps.quantile(0.1)) if len(gaps) else None  # low quantile: missing periods only lengthen gaps


def clean_series(
    df: pd.DataFrame, min_length: int | None = None, freq: str | Freq | None = None, mark_imputed: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regular series (duplicates averaged, gaps forward-filled) and a per-series report.

    With `mark_imputed` the clean frame has a boolean `imputed` column: True where `y` was
    forward-filled (a missing period, not an observed unchanged value).

    The frequency is inferred from the dates unless `freq` is given; it is stored in
    `clean.attrs["freq"]`. Extra numeric columns (regressors such as promo flags) are kept,
    averaged over duplicates and forward-filled like `y`.
    """
    if not isinstance(df, pd.DataFrame):
        raise ForecastError(f"clean_series: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in (ID, DS, Y) if c not in df.columns]
    if missing:
        raise ForecastError(
            f"clean_series: column(s) {missing} missing; expected long frame [{ID}, {DS}, {Y}], got {list(df.columns)}"
        )
    ds = pd.to_datetime(df[DS], errors="coerce")
    bad = ds.isna() & df[DS].notna()
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise ForecastError(f"clean_series: {DS}={df[DS].iloc[i]!r} in row {df.index[i]!r} is not a date")
    extra = [c for c in df.columns if c not in (ID, DS, Y)]
    data = pd.DataFrame(
        {
            ID: df[ID].astype(str).to_numpy(),
            DS: ds.dt.normalize().to_numpy(),
            Y: pd.to_numeric(df[Y], errors="coerce").astype(float).to_numpy(),
            **{c: pd.to_numeric(df[c], errors="coerce").astype(float).to_numpy() for c in extra},
        }
    ).dropna(subset=[DS])
    fq = get_freq(freq, data.set_index(ID)[DS])
    min_length = 2 * max(fq.season, 2) if min_length is None else min_length
    n_obs = data.dropna(subset=[Y]).groupby(ID).size()
    if data.empty:
        empty = pd.DataFrame(
            {ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns]"), Y: pd.Series(dtype=float)}
        )
        empty.attrs["freq"] = fq.alias
        return empty, pd.DataFrame(columns=REPORT_COLUMNS)
    origin = data.groupby(ID)[DS].transform("min")
    data["_pos"] = fq.positions(data[DS], origin)
    data["_origin"] = origin
    dup = data.duplicated([ID, "_pos"], keep="first").groupby(data[ID]).sum()
    data = data.groupby([ID, "_pos"], as_index=False, sort=True).agg(
        {"_origin": "first", Y: "mean", **{c: "mean" for c in extra}}
    )
    # full regular grid per series, built without a Python loop
    span = data.groupby(ID).agg(origin=("_origin", "first"), last=("_pos", "max"))
    lengths = (span["last"] + 1).to_numpy()
    ids = np.repeat(span.index.to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = pd.DataFrame({ID: ids, "_pos": offsets})
    full = grid.merge(data.drop(columns="_origin"), on=[ID, "_pos"], how="left")
    full.insert(1, DS, fq.dates(np.repeat(span["origin"].to_numpy(), lengths), offsets))
    was_nan = full[Y].isna()
    full[[Y, *extra]] = full.groupby(ID)[[Y, *extra]].ffill()
    keep = full[Y].notna()  # leading NaNs have nothing to carry forward
    n_filled = (was_nan & keep).groupby(full[ID]).sum()
    if mark_imputed:
        full["imputed"] = was_nan
    full = full[keep].drop(columns="_pos").reset_index(drop=True)
    g = full.groupby(ID)[Y]
    idx = span.index
    med = g.transform("median")
    mad = (full[Y] - med).abs().groupby(full[ID]).transform("median")
    outlier = ((full[Y] - med).abs() > 10 * mad.clip(lower=1e-9)) & ((full[Y] - med).abs() > 0.5 * med.abs())
    report = pd.DataFrame(
        {
            ID: idx.to_numpy(),
            "start": full.groupby(ID)[DS].min().reindex(idx).to_numpy(),
            "end": full.groupby(ID)[DS].max().reindex(idx).to_numpy(),
            "n_obs": n_obs.reindex(idx, fill_value=0).to_numpy(),
            "length": g.size().reindex(idx, fill_value=0).to_numpy(),
            "n_filled": n_filled.reindex(idx, fill_value=0).to_numpy().astype(int),
            "n_duplicates": dup.reindex(idx, fill_value=0).to_numpy().astype(int),
        }
    )
    report["too_short"] = report["length"] < min_length
    report["constant"] = (g.nunique().reindex(idx, fill_value=0) <= 1).to_numpy()
    report["n_outliers"] = outlier.groupby(full[ID]).sum().reindex(idx, fill_value=0).to_numpy().astype(int)
    full.attrs["freq"] = fq.alias
    report.attrs["freq"] = fq.alias
    return full, report.reset_index(drop=True)


# --- per-series models ---------------------------------------------------------------------


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


def _quantile_cols(point: np.ndarray, errors: np.ndarray, levels: Sequence[int]) -> dict:
    """Intervals `point + quantile(errors[:, k])` per horizon, sqrt-scaled where errors are few."""
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


def fc_window_average(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95), window: int = WINDOW) -> dict:
    """Rolling median of the last `window` days: the regular-price level, robust to promos."""
    lvl = pd.Series(y).rolling(window, min_periods=min(window, SEASON, len(y))).median().to_numpy()
    lvl[-1] = np.median(y[-window:])
    return _level_model(y, h, levels, lvl)


def fc_seasonal_naive(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95), season: int = SEASON) -> dict:
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


def fc_auto_ets(y: np.ndarray, h: int, levels: Sequence[int] = (80, 95), season: int = SEASON) -> dict:
    """statsforecast AutoETS with weekly seasonality and its own prediction intervals."""
    from statsforecast.models import AutoETS

    res = AutoETS(season_length=season).forecast(y=y.astype(float), h=h, level=list(levels))
    return {k: np.asarray(v, dtype=float) for k, v in res.items()}


def _quiet_prophet() -> None:
    """Silence cmdstanpy/prophet INFO chatter (cmdstanpy installs its own handler on first use)."""
    from cmdstanpy.utils import get_logger

    get_logger().setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)


def fc_prophet(
    y: np.ndarray,
    h: int,
    levels: Sequence[int] = (80, 95),
    start: pd.Timestamp | None = None,
    iter_cap: int = PROPHET_ITER,
    freq: Freq = FREQS["D"],
    regressors: dict[str, np.ndarray] | None = None,
    holidays: str | None = None,
    timeout: float = PROPHET_TIMEOUT,
) -> dict:
    """Prophet (L-BFGS, iteration cap, time-box, no Newton fallback); quantiles of its samples.

    `regressors` maps a name to an array of length `len(y) + h` (history then the known future,
    e.g. planned promo flags); `holidays` is a country code ("US") for Prophet's holiday effects.
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


def _run_models(
    y: np.ndarray,
    h: int,
    models: Sequence[str],
    levels: Sequence[int],
    start: pd.Timestamp,
    uid: str,
    failures: list,
    season: int = SEASON,
    freq: Freq = FREQS["D"],
) -> dict:
    """Forecast one series with each model; a failing model gives NaN and a failure record."""
    cols: dict[str, np.ndarray] = {}
    for name in models:
        try:
            if name == "prophet":
                res = fc_prophet(y, h, levels, start=start, freq=freq)
            elif name in ("seasonal_naive", "auto_ets"):
                res = MODEL_FUNCS[name](y, h, levels, season=season)
            else:
                res = MODEL_FUNCS[name](y, h, levels)
        except Exception as exc:  # noqa: BLE001 - one series must not sink the batch
            failures.append({ID: uid, "model": name, "reason": f"{type(exc).__name__}: {exc}"})
            res = {"mean": np.full(h, np.nan)}
        cols[name] = np.asarray(res["mean"], dtype=float)
        for lv in levels:
            for side in ("lo", "hi"):
                cols[f"{name}-{side}-{lv}"] = np.asarray(res.get(f"{side}-{lv}", np.full(h, np.nan)), dtype=float)
    return cols


def _empty_series(report: pd.DataFrame) -> list[dict]:
    """Failure records for series that have no observed value at all."""
    return [{ID: uid, "model": "*", "reason": "no observed values"} for uid in report.loc[report["length"] == 0, ID]]


def _series(df: pd.DataFrame) -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
    """(unique_id, ds, y) arrays per series of a clean frame."""
    for uid, grp in df.groupby(ID, sort=True):
        yield str(uid), grp[DS].to_numpy(), grp[Y].to_numpy(dtype=float)


def forecast(
    df: pd.DataFrame,
    h: int,
    models: Sequence[str] = DEFAULT_MODELS,
    level: Sequence[int] = (80, 95),
    freq: str | None = None,
    season_length: int | None = None,
) -> pd.DataFrame:
    """Forecast every series `h` steps ahead; columns `unique_id, ds, <model>, <model>-lo-80, ...`."""
    models, levels = _check_args(h, models, level)
    clean, report = clean_series(df, freq=freq)
    fq = get_freq(clean.attrs.get("freq", freq))
    season = _season(fq, season_length)
    failures: list = _empty_series(report)
    frames = []
    with threadpool_limits(limits=1):
        for uid, ds, y in _series(clean):
            cols = _run_models(y, h, models, levels, pd.Timestamp(ds[0]), uid, failures, season, fq)
            future = fq.future(pd.Timestamp(ds[-1]), h)
            frames.append(pd.DataFrame({ID: uid, DS: future, **cols}))
    out = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[ID, DS, *_model_columns(models, levels)])
    )
    out = out[[ID, DS, *_model_columns(models, levels)]]
    out.attrs["clean_report"] = report.to_dict("records")
    out.attrs["failures"] = failures
    return out


def _season(fq: Freq, season_length: int | None) -> int:
    """Season length: given, else the frequency's default; must be a positive integer."""
    if season_length is None:
        return fq.season
    if not isinstance(season_length, (int, np.integer)) or season_length < 1:
        raise ForecastError(f"season_length={season_length!r} must be a positive integer")
    return int(season_length)


def _model_columns(models: Sequence[str], levels: Sequence[int]) -> list[str]:
    """Column names of the forecasts of `models` at `levels`."""
    return [c for m in models for c in [m, *[f"{m}-{s}-{lv}" for lv in levels for s in ("lo", "hi")]]]


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
    step: int | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    level: Sequence[int] = (80, 95),
    freq: str | None = None,
    season_length: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rolling-origin backtest: (cv frame with `cutoff` and `y`, metrics per model/series/overall)."""
    models, levels = _check_args(h, list(BASELINES) + list(models), level)
    if not isinstance(n_windows, (int, np.integer)) or n_windows < 1:
        raise ForecastError(f"n_windows={n_windows!r} must be a positive integer")
    step = h if step is None else step
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ForecastError(f"step={step!r} must be a positive integer")
    clean, report = clean_series(df, freq=freq)
    fq = get_freq(clean.attrs.get("freq", freq))
    season = _season(fq, season_length)
    failures: list = _empty_series(report)
    frames = []
    with threadpool_limits(limits=1):
        for uid, ds, y in _series(clean):
            n = len(y)
            for w in range(n_windows):
                end = n - h - (n_windows - 1 - w) * step
                if end < 2:
                    failures.append(
                        {ID: uid, "model": "*", "reason": f"window {w}: {n} days leave fewer than 2 to train on"}
                    )
                    continue
                train = y[:end]
                cols = _run_models(train, h, models, levels, pd.Timestamp(ds[0]), uid, failures, season, fq)
                frames.append(
                    pd.DataFrame(
                        {
                            ID: uid,
                            DS: ds[end : end + h],
                            "cutoff": ds[end - 1],
                            Y: y[end : end + h],
                            "_scale": _mase_scale(train, season),
                            **{k: v[: min(h, n - end)] for k, v in cols.items()},
                        }
                    )
                )
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
        "rmse": float(np.sqrt(np.mean(e**2))) if ok.any() else np.nan,
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
            ints = {lv: (g[f"{m}-lo-{lv}"].to_numpy(float), g[f"{m}-hi-{lv}"].to_numpy(float)) for lv in levels}
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
