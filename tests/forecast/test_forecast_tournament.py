"""Forecast tournament: honest rolling-origin choice, calibration, change probability, frequencies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from priceintel.forecast import calibrate, change, combine
from priceintel.forecast import models as M
from priceintel.forecast import tournament as T
from priceintel.forecast.columns import CHOSEN
from priceintel.forecast.series import ForecastError, clean_series, get_freq


def _steps(n_series: int, n: int, freq: str = "D", seed: int = 0, promo_every: int = 0) -> pd.DataFrame:
    """Step-like price series: a regular price that moves rarely, plus optional promo dips with a flag."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=n, freq={"D": "D", "W": "W-MON", "M": "MS"}[freq])
    frames = []
    for i in range(n_series):
        level = 10 + i + np.cumsum((rng.random(n) < 0.03) * rng.choice([-1, 1], n) * 0.5)
        promo = np.zeros(n)
        if promo_every:
            promo[rng.random(n) < 1 / promo_every] = 1.0
        y = level * (1 - 0.2 * promo)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": np.round(y, 2), "promo": promo}))
    return pd.concat(frames, ignore_index=True)


def _seasonal(n_series: int, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=n, freq="D")
    week = np.array([0, -2, -1, 0, 1, 4, 3.0])
    return pd.concat(
        [
            pd.DataFrame({"unique_id": f"w{i}", "ds": ds, "y": 30 + i + week[ds.dayofweek] + rng.normal(0, 0.3, n)})
            for i in range(n_series)
        ],
        ignore_index=True,
    )


def test_frequency_inference_and_grids():
    assert get_freq(None, pd.Series(pd.date_range("2024-01-01", periods=5, freq="D"))).alias == "D"
    w = get_freq(None, pd.Series(pd.date_range("2024-01-01", periods=5, freq="W-THU")))
    assert (w.alias, w.season) == ("W", 52)
    me = get_freq(None, pd.Series(pd.date_range("2024-01-31", periods=6, freq="ME")))
    assert (me.alias, me.anchor, me.season) == ("M", "end", 12)
    assert get_freq("W-SUN").alias == "W" and get_freq("QS").alias == "Q"
    with pytest.raises(ForecastError, match="freq='fortnightly' is not supported"):
        get_freq("fortnightly")
    with pytest.raises(ForecastError, match="usual step is 3 days"):
        get_freq(None, pd.Series(pd.date_range("2024-01-01", periods=5, freq="3D")))
    # monthly month-end series with a missing month: the gap is filled on the calendar grid
    ds = pd.to_datetime(["2024-01-31", "2024-02-29", "2024-04-30", "2024-05-31"])
    clean, rep = clean_series(pd.DataFrame({"unique_id": "m", "ds": ds, "y": [1.0, 2, 4, 5]}))
    assert clean.attrs["freq"] == "M"
    assert list(clean["ds"].dt.strftime("%m-%d")) == ["01-31", "02-29", "03-31", "04-30", "05-31"]
    assert clean["y"].tolist() == [1, 2, 2, 4, 5] and rep.loc[0, "n_filled"] == 1
    # weekly with a skipped week and an extra regressor column carried along
    wk = pd.DataFrame(
        {
            "unique_id": "w",
            "ds": pd.to_datetime(["2024-01-04", "2024-01-11", "2024-01-25"]),
            "y": [3.0, 2.0, 3.0],
            "promo": [0, 1, 0],
        }
    )
    c2, _ = clean_series(wk)
    assert c2.attrs["freq"] == "W" and len(c2) == 4 and c2["promo"].tolist() == [0, 1, 1, 0]


def test_outliers_are_reported_not_removed():
    df = _steps(1, 60)
    df.loc[30, "y"] = 1000.0
    clean, rep = clean_series(df)
    assert rep.loc[0, "n_outliers"] == 1 and clean["y"].max() == 1000.0


def test_tournament_is_honest_and_calibrated_on_earlier_windows():
    df = pd.concat([_steps(12, 200, seed=1, promo_every=15), _seasonal(6, 200, seed=2)], ignore_index=True)
    res = T.run_tournament(df.drop(columns="promo"), h=14, n_windows=4, n_jobs=1, progress=False)
    # every baseline is reported beside every model and the chosen one
    models = set(res.metrics["model"])
    assert set(M.BASELINES) | {"auto_ets", "auto_theta", "combo", "chosen"} <= models
    assert sorted(res.metrics["horizon"].unique()) == [7, 14]
    # the first window only chooses: scored rows come from windows 1..3, all models on the same points
    ov = res.overall(14).set_index("model")
    assert (ov["n"] == ov.loc["naive", "n"]).all() and ov.loc["naive", "n"] == 18 * 3 * 14
    assert set(res.cv.loc[res.cv["chosen_model"].notna(), "window"]) == {1, 2, 3}
    # the choice for window k is the best model over windows < k (shrunk to the pooled ranking)
    ch = res.choices
    assert set(ch["window"]) == {1, 2, 3, -1}
    # chosen's error equals the error of the model it picked, row by row
    ev = res.cv[res.cv["chosen_model"].notna()]
    picked = ev.apply(lambda r: r[r["chosen_model"]], axis=1)
    assert np.allclose(picked, ev["chosen"])
    # calibration never uses the window it is applied to: window 1 uses only window 0
    cal = res.calibration.set_index(["window", "model"])
    n0 = cal.loc[(1, "naive"), "n"]
    assert n0 == res.cv[(res.cv["window"] == 0)]["naive"].notna().sum()
    assert cal.loc[(2, "naive"), "n"] == 2 * n0
    # intervals are ordered and the seasonal series favour a seasonal model
    for m in ("chosen", "naive", "auto_ets"):
        v = res.cv[[f"{m}-lo-95", f"{m}-lo-80", m, f"{m}-hi-80", f"{m}-hi-95"]].dropna().to_numpy()
        assert np.all(np.diff(v, axis=1) >= -1e-9)
    final = ch[ch["window"] == -1].set_index("unique_id")["model"]
    assert final[[f"w{i}" for i in range(6)]].isin(["seasonal_naive", "auto_ets", "auto_theta", "combo"]).all()
    assert 0.6 <= ov.loc["chosen", "coverage_80"] <= 0.97 and ov.loc["chosen", "coverage_95"] >= 0.85
    # the final forecast continues each series with calibrated bands and a change probability
    fut = res.forecasts
    assert len(fut) == 18 * 14 and fut["ds"].min() == df["ds"].max() + pd.Timedelta(days=1)
    assert fut["p_change"].between(0, 1).all()
    s = res.summary()
    assert s["h14"]["better_naive"] in ("naive", "seasonal_naive") and s["p_change"]["n"] == 18 * 3
    assert "window 1 only chooses and calibrates" in s["split"]


def test_promo_regressor_beats_naive_on_planned_promos_and_weekly_data():
    df = _steps(10, 160, freq="W", seed=3, promo_every=4)
    plain = T.run_tournament(
        df.drop(columns="promo"), h=8, n_windows=5, step=4, n_jobs=1, progress=False, models=("auto_ets",)
    )
    assert plain.params["freq"] == "W" and plain.params["season_length"] == 52
    reg = T.run_tournament(
        df,
        h=8,
        n_windows=5,
        step=4,
        n_jobs=1,
        progress=False,
        models=("auto_ets", M.REGRESSION),
        regressors=("promo",),
        shrink=1e9,
    )
    o = reg.overall(8).set_index("model")
    assert o.loc["regression", "mae"] < 0.6 * o.loc["naive", "mae"]
    assert o.loc["chosen", "mae"] <= o.loc["naive", "mae"]
    with pytest.raises(ForecastError, match=r"regressor column\(s\) \['nope'\]"):
        T.run_tournament(df, h=8, regressors=("nope",))


def test_refit_free_windows_match_shapes_and_run_in_parallel():
    df = _seasonal(4, 120, seed=5)
    a = T.run_tournament(df, h=7, n_windows=3, n_jobs=2, progress=False, refit=False)
    b = T.run_tournament(df, h=7, n_windows=3, n_jobs=1, progress=False, refit=True)
    assert a.cv.shape == b.cv.shape
    # window 0 is fitted identically either way
    w0a, w0b = a.cv[a.cv["window"] == 0], b.cv[b.cv["window"] == 0]
    assert np.allclose(w0a["auto_ets"], w0b["auto_ets"])
    assert a.params["refit"] is False


def test_change_probability_is_calibrated_on_step_series():
    df = _steps(40, 300, seed=7, promo_every=0)
    res = T.run_tournament(df.drop(columns="promo"), h=28, n_windows=3, step=28, n_jobs=1, progress=False, models=())
    pc = res.summary()["p_change"]
    assert abs(pc["mean_prob"] - pc["observed_rate"]) < 0.2
    assert change.change_probability(np.ones(50), 10, prior_rate=0.0) == 0.0
    assert 0 < change.change_probability(np.r_[np.ones(25), 2 * np.ones(25)], 10, prior_rate=0.05) < 1


def test_tournament_argument_errors():
    df = _seasonal(1, 40)
    with pytest.raises(ForecastError, match="n_windows=1 must be an integer >= 2"):
        T.run_tournament(df, h=7, n_windows=1)
    with pytest.raises(ForecastError, match="unknown model"):
        T.run_tournament(df, h=7, models=("xgboost",))
    with pytest.raises(ForecastError, match="horizon"):
        T.run_tournament(df, h=0)
    with pytest.raises(ForecastError, match="step"):
        T.run_tournament(df, h=7, step=0)
    with pytest.raises(ForecastError, match="no series has"):
        T.run_tournament(df, h=14, n_windows=3)


def test_short_series_are_reported_and_skipped():
    df = pd.concat([_seasonal(3, 120, seed=1), _seasonal(1, 12, seed=2).assign(unique_id="tiny")])
    df.loc[df["unique_id"] == "tiny", "ds"] = df.loc[df["unique_id"] == "tiny", "ds"] + pd.Timedelta(days=108)
    res = T.run_tournament(df, h=7, n_windows=3, n_jobs=1, progress=False, models=("auto_theta",))
    assert "tiny" not in set(res.forecasts["unique_id"])
    assert any(f["unique_id"] == "tiny" and "not forecast" in f["reason"] for f in res.failures)


def test_final_bounds_of_price_series_stay_non_negative():
    df = _steps(6, 60, seed=11, promo_every=6).drop(columns="promo")
    res = T.run_tournament(df, h=14, n_windows=3, n_jobs=1, progress=False, models=())
    for m in ("chosen", "naive", "seasonal_naive"):
        assert (res.forecasts[f"{m}-lo-95"] >= 0).all()


def _spells(n_series: int, n: int, seed: int = 0) -> pd.DataFrame:
    """Daily prices: a regular price with rare steps, and promo spells of 4-8 days at 10-30% off."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=n, freq="D")
    frames = []
    for i in range(n_series):
        regular = (8 + i) * np.cumprod(np.where(rng.random(n) < 1 / 90, rng.uniform(0.9, 1.1, n), 1.0))
        y = np.round(regular, 2)
        t = 0
        while t < n:
            if rng.random() < 1 / 25:
                d = int(rng.integers(4, 9))
                y[t : t + d] = np.round(regular[t : t + d] * (1 - rng.uniform(0.1, 0.3)), 2)
                t += d
            t += 1
        frames.append(pd.DataFrame({"unique_id": f"p{i}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_promo_step_model_beats_naive_on_step_and_promo_prices():
    df = _spells(24, 200, seed=4)
    res = T.run_tournament(df, h=14, n_windows=5, step=7, n_jobs=1, progress=False, models=M.PRICE_MODELS)
    for hz in (7, 14):
        o = res.overall(hz).set_index("model")
        assert o.loc["promo_step", "mae"] < 0.9 * o.loc["naive", "mae"]
        assert o.loc["chosen", "mae"] < 0.95 * min(o.loc["naive", "mae"], o.loc["seasonal_naive", "mae"])
    # one series in a promo at the forecast origin: the promo price holds a few days, then the regular price
    y = np.r_[np.full(60, 10.0), 8.0, 8.0, 10, 10, 10, 10, 10, 8, 8, 8, 8, 8, 10, 10, 10, 10, 10, 10, 8, 8, 8, 8]
    y = np.r_[y, np.full(30, 10.0), 7.5, 7.5]
    f = M.fc_promo_step(y, 10, window=14)
    assert f["mean"][0] == 7.5 and f["mean"][-1] == 10.0
    assert np.all(f["lo-95"] <= f["lo-80"]) and np.all(f["lo-80"] <= f["mean"]) and np.all(f["mean"] <= f["hi-80"])
    # not in a promo: the last (regular) value carries forward, including a fresh step up
    assert np.all(M.fc_promo_step(np.r_[np.full(40, 10.0), 11.0], 5, window=14)["mean"] == 11.0)


def test_choice_for_a_window_never_sees_data_after_its_cutoff():
    df = pd.concat([_spells(8, 150, seed=5), _seasonal(4, 150, seed=6)], ignore_index=True)
    kw = {
        "h": 14,
        "n_windows": 5,
        "step": 7,
        "n_jobs": 1,
        "progress": False,
        "models": ("auto_theta", *M.PRICE_MODELS, M.COMBO),
    }
    a = T.run_tournament(df, **kw)
    cut = pd.Timestamp(a.params["cutoffs"][3])
    # scramble everything after window 3's cut-off: its choices (and earlier ones) must not change
    b_df = df.copy()
    late = b_df["ds"] > cut
    b_df.loc[late, "y"] = b_df.loc[late, "y"].to_numpy()[::-1] * 3.0
    b = T.run_tournament(b_df, **kw)
    ca = a.choices.set_index(["window", "unique_id"])["model"]
    cb = b.choices.set_index(["window", "unique_id"])["model"]
    for k in (2, 3):
        assert ca.loc[k].equals(cb.loc[k])
    # so are the combination's weights up to window 3 (from errors dated up to each cut-off)
    for k in (1, 2, 3, 4):
        assert a.params["combo_weights"][f"window {k}"] == b.params["combo_weights"][f"window {k}"]
    # calibration for window 3 is identical too; the scored actuals of window 3 do differ
    fa = a.calibration.set_index(["window", "model"]).loc[3, ["q_lo_80", "q_hi_95"]]
    fb = b.calibration.set_index(["window", "model"]).loc[3, ["q_lo_80", "q_hi_95"]]
    assert np.allclose(fa.to_numpy(float), fb.to_numpy(float), equal_nan=True)
    ya = a.cv[a.cv["window"] == 3]["y"].to_numpy()
    yb = b.cv[b.cv["window"] == 3]["y"].to_numpy()
    assert not np.allclose(ya, yb)
    assert "on or before" in a.params["split"]


def test_combination_is_the_default_unless_a_model_is_clearly_better():
    df = _seasonal(6, 120, seed=8)
    kw = {"h": 7, "n_windows": 4, "n_jobs": 1, "progress": False, "models": ("auto_ets", M.COMBO)}
    never = T.run_tournament(df, margin=1.0, **kw)  # nothing can be 100% better: the combination, unless...
    # ...it loses to the fallback baseline: on these seasonal series seasonal naive beats the combination
    # (which averages in non-seasonal members), so the combination is not the default (issue #18 guard)
    assert M.COMBO not in set(never.choices["model"])
    assert set(never.choices["model"]) <= {"seasonal_naive", "auto_ets"}
    free = T.run_tournament(df, margin=0.0, shrink=0.0, **kw)  # plain per-series argmin
    assert free.params["margin"] == 0.0 and M.COMBO in free.params["models"]
    ev = free.cv[free.cv["chosen_model"].notna()]
    assert np.allclose(ev.apply(lambda r: r[r["chosen_model"]], axis=1), ev["chosen"])
    # seasonal series: seasonal models beat the combination (which averages in non-seasonal members)
    assert set(free.choices.loc[free.choices["window"] == -1, "model"]) <= {"seasonal_naive", "auto_ets", M.COMBO}


def test_interval_shapes_for_price_errors():
    # a point mass at zero with a one-sided tail: the shortest 80% range keeps 80%, equal tails do not
    vals = np.r_[np.zeros(75), -np.linspace(0.1, 2.0, 22), np.linspace(0.1, 0.5, 3)]
    lo, hi = calibrate.shortest_interval(vals, 0.80)
    assert np.mean((vals >= lo) & (vals <= hi)) == pytest.approx(0.80, abs=0.011)
    eq = np.quantile(vals, [0.1, 0.9])
    assert np.mean((vals >= eq[0]) & (vals <= eq[1])) > 0.85
    f = calibrate.conformal_factors(vals, "auto")  # the zero mass picks the shortest ranges, 80 inside 95
    # finite-sample conformal level: ceil(101 * 0.8) / 100 = 0.81 of the 100 errors
    assert calibrate.conformal_level(0.80, 100) == pytest.approx(0.81) and calibrate.conformal_level(0.95, 10) == 1.0
    lo81, _hi81 = calibrate.shortest_interval(vals, 0.81)
    assert f[2] <= f[0] <= 0 <= f[1] <= f[3] and f[0] == pytest.approx(lo81)
    cont = np.random.default_rng(0).normal(size=400)  # no zero mass: equal-tailed quantiles
    q = calibrate.conformal_level(0.80, 400)
    expect = np.quantile(cont, [(1 - q) / 2, (1 + q) / 2])
    assert np.allclose(calibrate.conformal_factors(cont, "auto")[[0, 1]], expect)


def test_symmetric_intervals_are_split_conformal_on_absolute_errors():
    rng = np.random.default_rng(3)
    cal = np.r_[-rng.exponential(1.0, 300), rng.exponential(0.2, 100)]  # promo dips: a long lower tail
    f = calibrate.conformal_factors(cal)  # the default shape
    assert calibrate.INTERVAL_SHAPE == "symmetric"
    a = np.sort(np.abs(cal))
    # the bound is the ceil((n + 1) * level)-th smallest |error|, on both sides
    assert f[1] == -f[0] == a[int(np.ceil(401 * 0.80)) - 1] and f[3] == -f[2] == a[int(np.ceil(401 * 0.95)) - 1]
    # equal tails read the upper bound from the short upper tail: a chain-wide price rise (every
    # error shifted up) falls outside them far more often than outside the symmetric bounds
    eq = calibrate.conformal_factors(cal, "equal")
    new = rng.permutation(np.r_[-rng.exponential(1.0, 3000), rng.exponential(0.2, 1000)]) + 0.6
    cov = {k: np.mean((new >= v[2]) & (new <= v[3])) for k, v in {"sym": f, "eq": eq}.items()}
    assert cov["sym"] > cov["eq"] + 0.1
    # exchangeable new errors: the symmetric 80% / 95% bounds hold at least their level (up to noise)
    same = np.r_[-rng.exponential(1.0, 30000), rng.exponential(0.2, 10000)]
    assert np.mean(np.abs(same) <= f[1]) > 0.78 and np.mean(np.abs(same) <= f[3]) > 0.94
    with pytest.raises(ForecastError, match="interval shape 'wide'"):
        calibrate.conformal_factors(cal, "wide")
    with pytest.raises(ForecastError, match="interval_shape='wide'"):
        T.run_tournament(_seasonal(2, 60, seed=1), h=7, interval_shape="wide", progress=False)


def test_change_probability_uses_promo_state_and_beats_a_constant_rate():
    df = _spells(30, 240, seed=9)
    res = T.run_tournament(df, h=7, n_windows=6, step=14, n_jobs=1, progress=False, models=())
    pc = res.summary()["p_change"]
    assert pc["brier"] < 0.9 * min(pc["brier_constant_rate"], pc["brier_pooled_share"])
    # features are causal: the cell at t does not change when later values change
    y = _spells(1, 120, seed=1)["y"].to_numpy()
    c1, lab1 = change.change_features(y, 7, 14)
    y2 = y.copy()
    y2[80:] = y2[80:] * 2
    c2, lab2 = change.change_features(y2, 7, 14)
    assert np.array_equal(c1[:80], c2[:80]) and np.isnan(lab1[-7:]).all()
    # the final forecast carries one probability per series
    assert res.forecasts.groupby("unique_id")["p_change"].first().between(0, 1).all()


def test_combination_weights_come_from_earlier_windows_only():
    df = pd.concat([_spells(10, 150, seed=3), _seasonal(4, 150, seed=4)], ignore_index=True)
    res = T.run_tournament(
        df, h=14, n_windows=5, step=7, n_jobs=1, progress=False, models=("auto_theta", *M.PRICE_MODELS, M.COMBO)
    )
    wts = res.params["combo_weights"]
    cand = combine.combo_candidates(res.params["models"])
    assert res.params["combo_power"] == combine.COMBO_POWER == 1.0
    assert wts["window 1"] == {m: pytest.approx(1 / len(cand), abs=1e-4) for m in cand}  # no evidence yet
    cv = res.cv

    def inverse_mase(rows):  # pooled MASE per lead time, mean over lead times, weights ~ 1 / MASE
        e = pd.DataFrame({m: (rows["y"] - rows[m]).abs() / rows["_scale"] for m in cand})
        per_lead = e.groupby(rows["step"]).mean()
        if len(per_lead) < 14:
            return pd.Series(1 / len(cand), index=cand)
        w = 1 / per_lead.mean()
        return w / w.sum()

    weighted = 0
    for k in range(1, 5):
        cut = pd.Timestamp(res.params["cutoffs"][k])
        # recompute from the cv frame: only errors of earlier windows dated on or before cut-off k
        expect = inverse_mase(cv[(cv["window"] < k) & (cv["ds"] <= cut) & cv["y"].notna()])
        got = pd.Series(wts[f"window {k + 1}"])
        assert np.allclose(got[cand], expect[cand], atol=1e-4)
        weighted += expect.std() > 0.01
        # the combination's forecasts in window k are that weighted mean
        w = cv[cv["window"] == k]
        assert np.allclose(w[M.COMBO], w[cand].to_numpy() @ got[cand].to_numpy() / got.sum(), rtol=2e-3)
    assert weighted >= 2  # windows 3-5 follow a finished window: unequal weights
    # the final weights use every window, and the worst model weighs least
    final = pd.Series(wts["final"])
    expect = inverse_mase(cv[cv["y"].notna()])
    assert np.allclose(final[cand], expect[cand], atol=1e-4) and final.idxmin() == expect.idxmin()
    assert res.forecasts["chosen"].notna().all()


def test_pooled_calibration_reaches_nominal_coverage_with_few_windows():
    # random walks with very different scales; 3 monthly lead times, 6 origins one month apart: each
    # lead time is calibrated on the normalised errors pooled over all series and every earlier window
    rng = np.random.default_rng(11)
    n, n_series = 60, 150
    ds = pd.date_range("2020-01-01", periods=n, freq="MS")
    df = pd.concat(
        [
            pd.DataFrame(
                {"unique_id": f"r{i}", "ds": ds, "y": 100 + np.cumsum(rng.normal(0, 0.2 + 3 * rng.random(), n))}
            )
            for i in range(n_series)
        ],
        ignore_index=True,
    )
    res = T.run_tournament(df, h=3, n_windows=6, step=1, n_jobs=1, progress=False, models=())
    m = res.overall(3).set_index("model")
    for model in ("naive", CHOSEN):
        assert abs(m.loc[model, "coverage_80"] - 0.80) <= 0.05, m.loc[model]
        assert abs(m.loc[model, "coverage_95"] - 0.95) <= 0.05, m.loc[model]
    # the last lead time of the first scored window is calibrated on one finished window, its first
    # lead time on every earlier window (errors observed by the cut-off)
    assert (res.calibration["n"] > 0).any()


def test_forward_filled_periods_are_not_counted_as_unchanged_prices():
    y = np.r_[np.full(20, 10.0), np.full(20, 12.0)]
    imputed = np.zeros(40, bool)
    imputed[15:19] = True  # a 4-day gap before the price is seen again (still 10: forward-filled)
    _c, lab = change.change_features(y, 3, 14)
    _c2, lab2 = change.change_features(y, 3, 14, imputed=imputed)
    # unmarked, the filled days look like an unchanged price; marked, no label spans them
    assert (lab[12:17] == 0).all() and np.isnan(lab2[12:19]).all()
    assert lab2[11] == 0 and lab2[19] == 1 and lab2[25] == 0 and np.isnan(lab2[-3:]).all()
    assert change.observed_steps(5, np.array([0, 1, 0, 0, 0], bool)).tolist() == [False, False, True, True]
    # a tournament on prices with missing days: clean_series marks them, and no backtest label spans one
    df = _spells(6, 120, seed=2)
    drop = df.sample(frac=0.15, random_state=0).index
    gappy = df.drop(index=drop)
    clean, rep = clean_series(gappy, mark_imputed=True)
    assert int(clean["imputed"].sum()) == int(rep["n_filled"].sum()) > 0
    res = T.run_tournament(gappy, h=7, n_windows=4, step=14, n_jobs=1, progress=False, models=())
    ch = res.change.merge(clean[["unique_id", "ds", "imputed"]], on="unique_id")
    span = ch[(ch["ds"] >= ch["cutoff"]) & (ch["ds"] <= ch["cutoff"] + pd.Timedelta(days=7))]
    gap = span.groupby(["unique_id", "window"])["imputed"].any()
    ev = res.change.set_index(["unique_id", "window"])
    assert gap.any() and not ev.loc[gap[gap].index, "evaluated"].any()
    assert ev.loc[gap[gap].index, "changed"].isna().all()
    assert ev.loc[gap[~gap].index].query("window > 0")["evaluated"].all()


@pytest.mark.slow
@pytest.mark.untraced
def test_pmdarima_reference_engine_agrees_with_the_fast_engine():
    rng = np.random.default_rng(11)
    e = rng.normal(0, 1.0, 260)
    y = np.empty(260)
    y[0] = 0.0
    for t in range(1, 260):
        y[t] = 0.7 * y[t - 1] + e[t]
    y += 50
    pm_res = M.run_model(M.PM_ARIMA, y[:240], 20, 7, False)
    sf_res = M.run_model("auto_arima", y[:240], 20, 7, False)
    # nested bounds around the point, widening with the lead time
    assert np.all(pm_res["lo-95"] <= pm_res["lo-80"]) and np.all(pm_res["lo-80"] <= pm_res["mean"])
    assert np.all(pm_res["mean"] <= pm_res["hi-80"]) and np.all(pm_res["hi-80"] <= pm_res["hi-95"])
    assert (pm_res["hi-95"] - pm_res["lo-95"])[-1] > (pm_res["hi-95"] - pm_res["lo-95"])[0]
    # both engines fit an AR-type model to an AR(1): the same forecasts up to the search's small differences
    assert np.max(np.abs(pm_res["mean"] - sf_res["mean"])) < 0.5
    assert np.mean(np.abs(pm_res["mean"] - y[240:])) < 1.5 * np.mean(np.abs(np.full(20, y[239]) - y[240:])) + 0.5
    flat = M.fc_pm_auto_arima(np.full(40, 3.0), 5, 7, False)  # constant: flat, zero-width, like statsforecast
    assert np.all(flat["mean"] == 3.0) and np.all(flat["lo-95"] == flat["hi-95"])
    with pytest.raises(ForecastError, match="no gaps; got 40 values, 1 missing"):
        M.fc_pm_auto_arima(np.r_[np.arange(39.0), np.nan], 5, 7, False)
    short = M.fc_pm_auto_arima(np.array([1.0, 2, 1, 3, 2, 2, 3, 1, 2, 3]), 3, 7, True)  # too short for m=7
    assert np.all(np.isfinite(short["mean"]))
    # in the tournament: scored beside the baselines on every window, the flat series included
    df = _seasonal(1, 70, seed=4)
    df = pd.concat([df, pd.DataFrame({"unique_id": "flat", "ds": df["ds"].unique(), "y": 5.0})], ignore_index=True)
    res = T.run_tournament(df, h=7, n_windows=3, n_jobs=1, progress=False, models=(M.PM_ARIMA,))
    assert M.PM_ARIMA in res.params["models"] and M.PM_ARIMA in set(res.metrics["model"])
    assert not [f for f in res.failures if f["model"] == M.PM_ARIMA]
    ev = res.cv[res.cv["chosen_model"].notna()]
    assert ev[M.PM_ARIMA].notna().all() and len(ev) == ev["naive"].notna().sum()
