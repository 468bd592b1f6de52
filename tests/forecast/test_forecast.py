"""Forecasting: cleaning, baselines, AutoETS, Prophet, rolling-origin backtests and metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from priceintel import PriceIntelError
from priceintel.forecast.models import (
    BASELINES,
    OVERALL,
    ForecastError,
    backtest,
    best_model,
    clean_series,
    fc_prophet,
    fc_seasonal_naive,
    forecast,
)

WEEK = np.array([0.0, -2.0, -1.0, 0.0, 1.0, 4.0, 3.0])


def _seasonal(uid: str, n: int = 120, level: float = 20.0, noise: float = 0.5, seed: int = 0,
              start: str = "2026-01-05") -> pd.DataFrame:
    """Daily series with a weekly pattern plus noise."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, periods=n, freq="D")
    y = level + WEEK[ds.dayofweek] + rng.normal(0, noise, n)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": y})


def _check_interval_order(fc: pd.DataFrame, model: str) -> None:
    """lo-95 <= lo-80 <= point <= hi-80 <= hi-95 wherever defined."""
    cols = [f"{model}-lo-95", f"{model}-lo-80", model, f"{model}-hi-80", f"{model}-hi-95"]
    vals = fc[cols].dropna().to_numpy()
    assert len(vals) > 0
    assert np.all(np.diff(vals, axis=1) >= -1e-9), model


# --- clean_series ----------------------------------------------------------------------------


def test_clean_series_fills_gaps_averages_duplicates_and_flags():
    a = _seasonal("a", n=30)
    a = a.drop(index=[10, 11, 12])  # a 3-day gap
    a.loc[20, "y"] = np.nan  # a missing value
    a = pd.concat([a, pd.DataFrame({"unique_id": ["a"], "ds": [a.loc[5, "ds"]], "y": [a.loc[5, "y"] + 2]})])
    short = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=5), "y": 1.0 * np.arange(5)})
    const = pd.DataFrame({"unique_id": "k", "ds": pd.date_range("2026-01-01", periods=40), "y": 3.0})
    lead = pd.DataFrame({"unique_id": "l", "ds": pd.date_range("2026-01-01", periods=20),
                         "y": [np.nan, np.nan] + list(np.arange(18.0))})
    raw = pd.concat([a, short, const, lead], ignore_index=True)
    raw["ds"] = raw["ds"] + pd.Timedelta(hours=9)  # times of day are normalised away
    clean, rep = clean_series(raw)
    rep = rep.set_index("unique_id")
    ca = clean[clean["unique_id"] == "a"].reset_index(drop=True)
    assert len(ca) == 30 and (ca["ds"].diff().dropna() == pd.Timedelta(days=1)).all()
    assert (ca["ds"].dt.hour == 0).all()
    assert ca.loc[10:12, "y"].tolist() == [ca.loc[9, "y"]] * 3  # forward-filled
    assert ca.loc[20, "y"] == ca.loc[19, "y"]
    assert ca.loc[5, "y"] == pytest.approx(a.loc[5, "y"] + 1)  # duplicates (y, y + 2) averaged
    assert rep.loc["a", "n_filled"] == 4 and rep.loc["a", "n_duplicates"] == 1
    assert rep.loc["a", "length"] == 30 and not rep.loc["a", "too_short"]
    assert rep.loc["s", "too_short"] and not rep.loc["s", "constant"]
    assert rep.loc["k", "constant"] and not rep.loc["k", "too_short"]
    assert rep.loc["l", "length"] == 18 and rep.loc["l", "n_filled"] == 0  # leading NaNs dropped
    assert rep.loc["l", "start"] == pd.Timestamp("2026-01-03")


def test_clean_series_errors_name_the_problem():
    with pytest.raises(ForecastError, match=r"\['y'\] missing"):
        clean_series(pd.DataFrame({"unique_id": ["a"], "ds": ["2026-01-01"]}))
    with pytest.raises(ForecastError, match="'not a day' in row 1"):
        clean_series(pd.DataFrame({"unique_id": ["a", "a"], "ds": ["2026-01-01", "not a day"], "y": [1, 2]}))
    with pytest.raises(PriceIntelError):
        clean_series([1, 2, 3])
    clean, rep = clean_series(pd.DataFrame({"unique_id": [], "ds": [], "y": []}))
    assert clean.empty and rep.empty


# --- forecast --------------------------------------------------------------------------------


def test_forecast_baselines_and_ets_shapes_values_and_intervals():
    df = pd.concat([_seasonal("a", seed=1), _seasonal("b", n=90, level=50, seed=2)])
    fc = forecast(df, h=10)
    assert list(fc.columns[:7]) == ["unique_id", "ds", "naive", "naive-lo-80", "naive-hi-80",
                                    "naive-lo-95", "naive-hi-95"]
    assert {"auto_ets", "auto_ets-hi-95", "window_average-lo-80", "seasonal_naive-hi-80"} <= set(fc.columns)
    assert fc.groupby("unique_id").size().tolist() == [10, 10]
    for uid, g in df.groupby("unique_id"):
        f = fc[fc["unique_id"] == uid].reset_index(drop=True)
        assert f.loc[0, "ds"] == g["ds"].max() + pd.Timedelta(days=1)
        assert (f["naive"] == g["y"].iloc[-1]).all()
        assert np.allclose(f["window_average"], np.median(g["y"].iloc[-28:]))
        last_week = g["y"].iloc[-7:].to_numpy()
        assert np.allclose(f["seasonal_naive"], np.tile(last_week, 2)[:10])
        # ETS learns the weekly shape: close to the true pattern
        truth = (20 if uid == "a" else 50) + WEEK[f["ds"].dt.dayofweek]
        assert np.mean(np.abs(f["auto_ets"] - truth)) < 1.0
    for m in ("naive", "seasonal_naive", "window_average", "auto_ets"):
        _check_interval_order(fc, m)
    # naive intervals widen with the horizon; seasonal naive ones are tighter on seasonal data
    a = fc[fc["unique_id"] == "a"]
    assert (a["naive-hi-95"] - a["naive-lo-95"]).iloc[-1] > (a["naive-hi-95"] - a["naive-lo-95"]).iloc[0]
    assert (a["seasonal_naive-hi-80"] - a["seasonal_naive-lo-80"]).mean() < (
        a["naive-hi-80"] - a["naive-lo-80"]).mean()
    assert fc.attrs["failures"] == []
    assert len(fc.attrs["clean_report"]) == 2


def test_forecast_short_and_constant_series_do_not_crash():
    short = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=4), "y": [1.0, 2, 3, 4]})
    const = pd.DataFrame({"unique_id": "k", "ds": pd.date_range("2026-01-01", periods=30), "y": 5.0})
    fc = forecast(pd.concat([short, const]), h=3)
    s = fc[fc["unique_id"] == "s"]
    assert (s["naive"] == 4.0).all() and s["seasonal_naive"].isna().all()
    assert s["naive-lo-80"].isna().all()  # too few residuals for intervals: NaN, not a fake width
    k = fc[fc["unique_id"] == "k"]
    assert (k["naive"] == 5).all() and (k["naive-lo-95"] == 5).all() and (k["auto_ets"].round(6) == 5).all()


def test_seasonal_naive_needs_a_season():
    out = fc_seasonal_naive(np.arange(5.0), h=3)
    assert np.isnan(out["mean"]).all() and np.isnan(out["hi-95"]).all()


def test_forecast_argument_errors():
    df = _seasonal("a", n=30)
    with pytest.raises(ForecastError, match="unknown model"):
        forecast(df, h=3, models=("naive", "arima9000"))
    with pytest.raises(ForecastError, match="positive integer"):
        forecast(df, h=0)
    with pytest.raises(ForecastError, match="between 0 and 100"):
        forecast(df, h=3, level=(80, 100))


def test_prophet_forecast_and_guards():
    df = pd.concat([
        _seasonal("a", n=70, seed=4),
        pd.DataFrame({"unique_id": "k", "ds": pd.date_range("2026-01-01", periods=30), "y": 2.0}),
    ])
    fc = forecast(df, h=7, models=("naive", "prophet"))
    a = fc[fc["unique_id"] == "a"]
    truth = 20 + WEEK[a["ds"].dt.dayofweek]
    assert np.mean(np.abs(a["prophet"] - truth)) < 1.0
    _check_interval_order(a, "prophet")
    k = fc[fc["unique_id"] == "k"]
    assert k["prophet"].isna().all() and (k["naive"] == 2).all()
    assert fc.attrs["failures"] == [
        {"unique_id": "k", "model": "prophet", "reason": "ForecastError: prophet skipped: constant series"}
    ]
    # deterministic: the same call gives the same intervals
    again = forecast(df[df["unique_id"] == "a"], h=7, models=("prophet",))
    assert np.allclose(again["prophet-lo-95"], a["prophet-lo-95"])
    with pytest.raises(ForecastError, match="shorter"):
        fc_prophet(np.arange(10.0), 3)


# --- backtest --------------------------------------------------------------------------------


def test_backtest_exact_metrics_on_a_linear_trend():
    n, h = 60, 14
    df = pd.DataFrame({"unique_id": "t", "ds": pd.date_range("2026-01-01", periods=n), "y": np.arange(n, dtype=float)})
    cv, met = backtest(df, h=h, n_windows=1, models=())
    assert set(met["model"]) == set(BASELINES)
    assert len(cv) == h and cv["cutoff"].iloc[0] == pd.Timestamp("2026-01-01") + pd.Timedelta(days=n - h - 1)
    naive = met[(met["unique_id"] == "t") & (met["model"] == "naive")].iloc[0]
    k = np.arange(1, h + 1)
    assert naive["mae"] == pytest.approx(k.mean())
    assert naive["rmse"] == pytest.approx(np.sqrt((k ** 2).mean()))
    assert naive["mase"] == pytest.approx(k.mean() / 7)  # seasonal-naive in-sample MAE is 7
    y, f = np.arange(n - h, n), np.full(h, n - h - 1.0)
    assert naive["smape"] == pytest.approx(np.mean(200 * np.abs(y - f) / (y + f)))
    snaive = met[(met["unique_id"] == "t") & (met["model"] == "seasonal_naive")].iloc[0]
    assert snaive["mae"] == pytest.approx(np.mean(7 * np.ceil(k / 7)))
    assert best_model(met) == "naive"


def test_backtest_windows_coverage_and_model_ranking():
    df = pd.concat([_seasonal(u, n=150, noise=1.0, seed=s) for s, u in enumerate("abc")])
    cv, met = backtest(df, h=7, n_windows=4, step=7, models=("auto_ets",))
    assert cv.groupby("unique_id")["cutoff"].nunique().tolist() == [4, 4, 4]
    assert {"naive", "seasonal_naive", "window_average", "auto_ets"} == set(met["model"])
    assert set(met["unique_id"]) == {"a", "b", "c", OVERALL}
    overall = met[met["unique_id"] == OVERALL].set_index("model")
    assert overall.loc["auto_ets", "n"] == 3 * 4 * 7
    assert overall.loc["seasonal_naive", "mase"] < overall.loc["naive", "mase"]
    assert overall.loc["auto_ets", "mase"] < overall.loc["naive", "mase"]
    assert best_model(met) in ("auto_ets", "seasonal_naive")
    for m in overall.index:
        assert 0.55 <= overall.loc[m, "coverage_80"] <= 1.0
        assert overall.loc[m, "coverage_95"] >= overall.loc[m, "coverage_80"]
        assert overall.loc[m, "width_95"] > overall.loc[m, "width_80"] > 0
    # the cutoff of each window is the last training day, and forecasts follow it
    first = cv[cv["unique_id"] == "a"].groupby("cutoff")["ds"].min()
    assert ((first.to_numpy() - first.index.to_numpy()) == np.timedelta64(1, "D")).all()


def test_backtest_skips_series_too_short_and_reports_it():
    df = pd.concat([_seasonal("ok", n=60), _seasonal("tiny", n=8)])
    cv, met = backtest(df, h=7, n_windows=1)
    assert set(cv["unique_id"]) == {"ok"}
    assert any(f["unique_id"] == "tiny" for f in cv.attrs["failures"])
    with pytest.raises(ForecastError, match="no series is long enough"):
        backtest(_seasonal("tiny", n=8), h=7)
    with pytest.raises(ForecastError, match="n_windows"):
        backtest(df, h=7, n_windows=0)
    with pytest.raises(ForecastError, match="step"):
        backtest(df, h=7, step=0)


def test_best_model_errors_and_fallback_to_mae():
    with pytest.raises(ForecastError, match="metrics frame"):
        best_model(pd.DataFrame({"x": [1]}))
    met = pd.DataFrame({"unique_id": [OVERALL] * 2, "model": ["naive", "auto_ets"],
                        "mase": [np.nan, np.nan], "mae": [2.0, 1.0]})
    assert best_model(met) == "auto_ets"
    with pytest.raises(ForecastError, match="no model"):
        best_model(met.assign(mae=np.nan))


def test_sparse_residuals_scale_intervals_by_sqrt_horizon_and_mase_needs_a_season():
    y = np.array([10.0, 12, 9, 11, 13, 10, 12, 11])
    fc = forecast(pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=8), "y": y}),
                  h=5, models=("naive",))
    width = (fc["naive-hi-80"] - fc["naive-lo-80"]).to_numpy()
    # horizons 1-3 have >= 5 in-sample errors; 4 and 5 reuse horizon 3 scaled by sqrt(k/3)
    assert width[3] == pytest.approx(width[2] * np.sqrt(4 / 3))
    assert width[4] == pytest.approx(width[2] * np.sqrt(5 / 3))
    cv, met = backtest(pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=12),
                                     "y": np.arange(12.0)}), h=7)
    assert met["mase"].isna().all() and met["mae"].notna().any()  # 5 training days: no seasonal scale


def test_series_without_any_value_is_reported_not_forecast():
    df = pd.concat([_seasonal("a", n=30),
                    pd.DataFrame({"unique_id": "void", "ds": pd.date_range("2026-01-01", periods=5), "y": np.nan})])
    fc = forecast(df, h=2, models=("naive",))
    assert set(fc["unique_id"]) == {"a"}
    assert {"unique_id": "void", "model": "*", "reason": "no observed values"} in fc.attrs["failures"]
