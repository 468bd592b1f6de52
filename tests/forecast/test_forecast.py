"""Forecasting: cleaning, the per-series models (baselines, AutoETS, Prophet) and the tournament's metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from priceintel import PriceIntelError
from priceintel.forecast import tournament as T
from priceintel.forecast.columns import BOUNDS, OVERALL, POINT
from priceintel.forecast.metrics import mase_scale, window_scale
from priceintel.forecast.models import BASELINES, PROPHET, fc_naive, fc_prophet, fc_seasonal_naive, run_model
from priceintel.forecast.series import ForecastError, clean_series

WEEK = np.array([0.0, -2.0, -1.0, 0.0, 1.0, 4.0, 3.0])


def _seasonal(
    uid: str, n: int = 120, level: float = 20.0, noise: float = 0.5, seed: int = 0, start: str = "2026-01-05"
) -> pd.DataFrame:
    """Daily series with a weekly pattern plus noise."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, periods=n, freq="D")
    y = level + WEEK[ds.dayofweek] + rng.normal(0, noise, n)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": y})


def _check_interval_order(res: dict, model: str) -> None:
    """lo-95 <= lo-80 <= point <= hi-80 <= hi-95 wherever defined (`res`: a model's result dict)."""
    vals = np.column_stack([res["lo-95"], res["lo-80"], res[POINT], res["hi-80"], res["hi-95"]])
    vals = vals[np.isfinite(vals).all(axis=1)]
    assert len(vals) > 0
    assert np.all(np.diff(vals, axis=1) >= -1e-9), model


def _future(g: pd.DataFrame, h: int) -> pd.DatetimeIndex:
    return pd.date_range(g["ds"].max() + pd.Timedelta(days=1), periods=h, freq="D")


# --- clean_series ----------------------------------------------------------------------------


def test_clean_series_fills_gaps_averages_duplicates_and_flags():
    a = _seasonal("a", n=30)
    a = a.drop(index=[10, 11, 12])  # a 3-day gap
    a.loc[20, "y"] = np.nan  # a missing value
    a = pd.concat([a, pd.DataFrame({"unique_id": ["a"], "ds": [a.loc[5, "ds"]], "y": [a.loc[5, "y"] + 2]})])
    short = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=5), "y": 1.0 * np.arange(5)})
    const = pd.DataFrame({"unique_id": "k", "ds": pd.date_range("2026-01-01", periods=40), "y": 3.0})
    lead = pd.DataFrame(
        {"unique_id": "l", "ds": pd.date_range("2026-01-01", periods=20), "y": [np.nan, np.nan] + list(np.arange(18.0))}
    )
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


# --- per-series models -----------------------------------------------------------------------


def test_baselines_and_ets_values_and_intervals():
    models = ("naive", "seasonal_naive", "window_average", "auto_ets")
    for uid, level, n, seed in (("a", 20, 120, 1), ("b", 50, 90, 2)):
        g = _seasonal(uid, n=n, level=level, seed=seed)
        y = g["y"].to_numpy()
        f = {m: run_model(m, y, 10, 7, seasonal=True) for m in models}
        assert all(set(r) == {POINT, *BOUNDS} and all(len(v) == 10 for v in r.values()) for r in f.values())
        assert (f["naive"][POINT] == y[-1]).all()
        assert np.allclose(f["window_average"][POINT], np.median(y[-28:]))
        assert np.allclose(f["seasonal_naive"][POINT], np.tile(y[-7:], 2)[:10])
        # ETS learns the weekly shape: close to the true pattern
        truth = level + WEEK[_future(g, 10).dayofweek]
        assert np.mean(np.abs(f["auto_ets"][POINT] - truth)) < 1.0
        for m in models:
            _check_interval_order(f[m], m)
        if uid == "a":
            # naive intervals widen with the horizon; seasonal naive ones are tighter on seasonal data
            width = f["naive"]["hi-95"] - f["naive"]["lo-95"]
            assert width[-1] > width[0]
            assert (f["seasonal_naive"]["hi-80"] - f["seasonal_naive"]["lo-80"]).mean() < (
                f["naive"]["hi-80"] - f["naive"]["lo-80"]
            ).mean()


def test_short_and_constant_series_do_not_crash():
    short = np.array([1.0, 2, 3, 4])
    s = {m: run_model(m, short, 3, 7, seasonal=False) for m in ("naive", "seasonal_naive")}
    assert (s["naive"][POINT] == 4.0).all() and np.isnan(s["seasonal_naive"][POINT]).all()
    assert np.isnan(s["naive"]["lo-80"]).all()  # too few residuals for intervals: NaN, not a fake width
    const = np.full(30, 5.0)
    k = {m: run_model(m, const, 3, 7, seasonal=False) for m in ("naive", "auto_ets")}
    assert (k["naive"][POINT] == 5).all() and (k["naive"]["lo-95"] == 5).all()
    assert (k["auto_ets"][POINT].round(6) == 5).all()


def test_seasonal_naive_needs_a_season():
    out = fc_seasonal_naive(np.arange(5.0), h=3)
    assert np.isnan(out[POINT]).all() and np.isnan(out["hi-95"]).all()


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ForecastError, match="unknown model 'arima9000'"):
        run_model("arima9000", np.arange(30.0), 3, 7, False)


def test_sparse_residuals_scale_intervals_by_sqrt_horizon():
    y = np.array([10.0, 12, 9, 11, 13, 10, 12, 11])
    f = fc_naive(y, 5, (80,))
    width = f["hi-80"] - f["lo-80"]
    # horizons 1-3 have >= 5 in-sample errors; 4 and 5 reuse horizon 3 scaled by sqrt(k/3)
    assert width[3] == pytest.approx(width[2] * np.sqrt(4 / 3))
    assert width[4] == pytest.approx(width[2] * np.sqrt(5 / 3))
    # MASE needs more than a season of training data; the tournament then scales by the one-step naive error
    assert np.isnan(mase_scale(np.arange(5.0), 7)) and window_scale(np.arange(5.0), 7) == 1.0


def test_prophet_forecast_guards_and_time_box():
    g = _seasonal("a", n=70, seed=4)
    y = g["y"].to_numpy()
    f = run_model(PROPHET, y, 7, 7, False, start=g["ds"].iloc[0])
    truth = 20 + WEEK[_future(g, 7).dayofweek]
    assert np.mean(np.abs(f[POINT] - truth)) < 1.0
    _check_interval_order(f, PROPHET)
    # deterministic: the same call gives the same intervals
    again = run_model(PROPHET, y, 7, 7, False, start=g["ds"].iloc[0])
    assert np.array_equal(again["lo-95"], f["lo-95"])
    with pytest.raises(ForecastError, match="prophet skipped: constant series"):
        fc_prophet(np.full(30, 2.0), 3)
    with pytest.raises(ForecastError, match="shorter"):
        fc_prophet(np.arange(10.0), 3)
    # the box is a timer thread beside the Stan process: give Stan work that takes ~1.5 s (10,500 points), so even on
    # a loaded machine the 1 ms timer fires before the fit ends (70 points fit in ~11 ms: a late timer missed them)
    long = np.tile(y, 150) + np.random.default_rng(0).normal(0, 0.5, 150 * len(y))
    with pytest.raises(ForecastError, match="time-box"):
        fc_prophet(long, 7, timeout=1e-3)


def test_prophet_runs_inside_the_tournament_with_its_guard():
    df = pd.concat(
        [
            _seasonal("a", n=70, seed=4),
            pd.DataFrame({"unique_id": "k", "ds": pd.date_range("2026-01-05", periods=70), "y": 2.0}),
        ]
    )
    res = T.run_tournament(df, h=7, n_windows=3, n_jobs=1, progress=False, models=(PROPHET,))
    assert res.params["models"] == [*BASELINES, PROPHET]
    ev = res.cv[res.cv["chosen_model"].notna()]
    a, k = ev[ev["unique_id"] == "a"], ev[ev["unique_id"] == "k"]
    assert a[PROPHET].notna().all() and k[PROPHET].isna().all() and (k["naive"] == 2).all()
    skipped = [f for f in res.failures if f["model"] == PROPHET]
    assert skipped and all(f["unique_id"] == "k" and "prophet skipped: constant series" in f["reason"] for f in skipped)
    ov = res.overall(7).set_index("model")
    assert ov.loc[PROPHET, "n"] == ov.loc["naive", "n"] // 2 and np.isfinite(ov.loc[PROPHET, "mae"])


# --- the tournament's metrics ----------------------------------------------------------------


def test_exact_metrics_on_a_linear_trend():
    n, h = 60, 14
    df = pd.DataFrame({"unique_id": "t", "ds": pd.date_range("2026-01-01", periods=n), "y": np.arange(n, dtype=float)})
    res = T.run_tournament(df, h=h, n_windows=2, n_jobs=1, progress=False, models=())
    assert set(res.metrics["model"]) == {*BASELINES, "chosen"}
    ev = res.cv[res.cv["chosen_model"].notna()]
    assert len(ev) == h and ev["cutoff"].iloc[0] == pd.Timestamp("2026-01-01") + pd.Timedelta(days=n - h - 1)
    met = res.metrics[res.metrics["horizon"] == h].set_index(["unique_id", "model"])
    naive = met.loc[("t", "naive")]
    k = np.arange(1, h + 1)
    assert naive["mae"] == pytest.approx(k.mean())
    assert naive["rmse"] == pytest.approx(np.sqrt((k**2).mean()))
    assert naive["mase"] == pytest.approx(k.mean() / 7)  # seasonal-naive in-sample MAE is 7
    y, f = np.arange(n - h, n), np.full(h, n - h - 1.0)
    assert naive["smape"] == pytest.approx(np.mean(200 * np.abs(y - f) / (y + f)))
    assert met.loc[("t", "seasonal_naive"), "mae"] == pytest.approx(np.mean(7 * np.ceil(k / 7)))
    ov = res.overall(h).set_index("model")
    assert ov.loc["naive", "mae"] == ov["mae"].min()


def test_windows_coverage_and_model_ranking():
    df = pd.concat([_seasonal(u, n=150, noise=1.0, seed=s) for s, u in enumerate("abc")])
    res = T.run_tournament(df, h=7, n_windows=4, step=7, n_jobs=1, progress=False, models=("auto_ets",))
    cv, met = res.cv, res.metrics[res.metrics["horizon"] == 7]
    assert cv.groupby("unique_id")["cutoff"].nunique().tolist() == [4, 4, 4]
    assert {*BASELINES, "auto_ets", "chosen"} == set(met["model"])
    assert set(met["unique_id"]) == {"a", "b", "c", OVERALL}
    overall = res.overall(7).set_index("model")
    assert overall.loc["auto_ets", "n"] == 3 * 3 * 7  # windows 2..4 are scored
    assert overall.loc["seasonal_naive", "mase"] < overall.loc["naive", "mase"]
    assert overall.loc["auto_ets", "mase"] < overall.loc["naive", "mase"]
    assert overall["mase"].idxmin() in ("auto_ets", "seasonal_naive", "chosen")
    for m in overall.index:
        assert 0.55 <= overall.loc[m, "coverage_80"] <= 1.0
        assert overall.loc[m, "coverage_95"] >= overall.loc[m, "coverage_80"]
        assert overall.loc[m, "width_95"] > overall.loc[m, "width_80"] > 0
    # the cutoff of each window is the last training day, and forecasts follow it
    first = cv[cv["unique_id"] == "a"].groupby("cutoff")["ds"].min()
    assert ((first.to_numpy() - first.index.to_numpy()) == np.timedelta64(1, "D")).all()


def test_series_without_any_value_is_reported_not_forecast():
    df = pd.concat(
        [
            _seasonal("a", n=40),
            pd.DataFrame({"unique_id": "void", "ds": pd.date_range("2026-01-01", periods=5), "y": np.nan}),
        ]
    )
    res = T.run_tournament(df, h=2, n_windows=2, n_jobs=1, progress=False, models=())
    assert set(res.forecasts["unique_id"]) == {"a"}
    assert {"unique_id": "void", "model": "*", "window": -1, "reason": "no observed values"} in res.failures
