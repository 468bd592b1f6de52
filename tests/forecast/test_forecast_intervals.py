"""Honest intervals on small panels and a choice that never ends worse than the baselines (issue #18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from priceintel.forecast import calibrate, choose
from priceintel.forecast import evaluate as FE
from priceintel.forecast import tournament as T
from priceintel.forecast.arrays import Backtest, Out
from priceintel.forecast.columns import CHOSEN


def _coverage(n: int, level: float, n_eff: int | None = None, seeds: int = 4000, path: int = 1) -> float:
    """Mean coverage of one new error by the symmetric conformal bound of `n` calibration errors (Laplace,
    drawn as `n // path` paths of `path` errors sharing a common part when `path` > 1), over many seeds."""
    rng = np.random.default_rng(7)
    hits = 0
    i = 0 if level < 0.9 else 2
    for _ in range(seeds):
        common = np.repeat(rng.laplace(size=n // path), path) if path > 1 else 0.0
        vals = common + rng.laplace(size=n)
        new = rng.laplace() + (rng.laplace() if path > 1 else 0.0)
        f = calibrate.conformal_factors(vals, "symmetric", n_eff)
        hits += f[i] <= new <= f[i + 1]
    return hits / seeds


def test_finite_sample_rule_covers_small_pools_near_nominal():
    # the ceil((n + 1) level) / n rule: at least nominal, at most 1 / (n + 1) above it
    assert calibrate.conformal_level(0.80, 7) == 1.0 and calibrate.enough_for(0.80, 4)
    assert not calibrate.enough_for(0.95, 18) and calibrate.enough_for(0.95, 19)
    assert 0.79 <= _coverage(30, 0.80) <= 0.80 + 1 / 31 + 0.02
    assert 0.94 <= _coverage(40, 0.95) <= 0.95 + 1 / 41 + 0.015
    # too few errors for 95%: the widest error times the documented tail factor, still near nominal
    assert calibrate.tail_factor(0.95, 7) == pytest.approx(np.log(20) / np.log(8))
    assert calibrate.tail_factor(0.95, 100) == 1.0
    assert 0.93 <= _coverage(10, 0.95) <= 0.995
    # 7 forecast paths of 4 lead times whose errors move together: counting paths (blocks), not points,
    # keeps the 80% band near nominal where counting 28 exchangeable points under-covers
    by_point, by_path = _coverage(28, 0.80, path=4), _coverage(28, 0.80, n_eff=7, path=4)
    assert by_path > by_point and by_path >= 0.78


def _toy_backtest(errors: dict, ok: np.ndarray, h: int = 2) -> Backtest:
    """A 3-window backtest of len(ok) series, every model's point = actual + its error (one per series)."""
    models = list(errors)
    S, K = ok.shape
    actual = np.where(ok[:, :, None], 10.0, np.nan) * np.ones((S, K, h))
    fc = np.full((S, K, len(models), len(Out), h), np.nan)
    for j, m in enumerate(models):
        fc[:, :, j, Out.MEAN, :] = actual + np.asarray(errors[m], float)[:, None, None]
        for o in (Out.LO_80, Out.LO_95):
            fc[:, :, j, o, :] = fc[:, :, j, Out.MEAN, :] - 1
        for o in (Out.HI_80, Out.HI_95):
            fc[:, :, j, o, :] = fc[:, :, j, Out.MEAN, :] + 1
    cut = [pd.Timestamp("2024-01-01") + pd.Timedelta(days=h * k) for k in range(K)]
    dates = np.array([[np.datetime64(c + pd.Timedelta(days=t + 1), "ns") for t in range(h)] for c in cut])
    return Backtest(np.array([f"s{i}" for i in range(S)]), fc, actual, ok, np.ones((S, K)), models, cut, dates, h)


def test_choice_falls_back_to_the_best_baseline_and_never_picks_a_model_that_loses_to_it():
    ok = np.ones((4, 3), bool)
    ok[3, :2] = False  # series 3 starts late: no backtest before the last window
    errors = {
        "naive": [0.1] * 4,
        "seasonal_naive": [0.3] * 4,
        "window_average": [0.2] * 4,
        "mean": [0.5] * 4,
        "auto_ets": [0.0, 1.0, 1.0, 1.0],
    }  # best on series 0 only; pooled worse than naive
    bt = _toy_backtest(errors, ok)
    got = choose.choose(bt, shrink=0.0)
    names = np.array(bt.models)
    # window 1 and 2 and the final choice: nobody gets auto_ets (the panel says it loses to last value)
    assert set(names[got[:3, 1:].ravel()]) == {"naive"}
    # the short series gets the panel's fallback (the best of last value / seasonal naive / regular price)
    assert names[got[3, 2]] == "naive" and names[got[3, -1]] == "naive"
    assert got[3, 1] == choose.NO_CHOICE  # not in the data yet at window 1
    # a model that does beat the baselines on the panel is chosen
    errors["auto_ets"] = [0.0, 0.05, 0.05, 0.05]
    got = choose.choose(_toy_backtest(errors, ok), shrink=0.0)
    assert set(names[got[:3, 1:].ravel()]) == {"auto_ets"} and names[got[3, 2]] == "naive"


def _steps(n_series: int, n: int, seed: int) -> pd.DataFrame:
    """Cheap step-like prices near $1 with deep promotions (bands would reach below 0 unclipped)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=n, freq="D")
    frames = []
    for i in range(n_series):
        y = np.full(n, 1.0 + 0.1 * i) * np.where(rng.random(n) < 0.2, 0.2, 1.0)
        frames.append(pd.DataFrame({"unique_id": f"c{i}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_price_bands_never_go_below_zero_in_the_backtest_or_the_forecast():
    res = T.run_tournament(_steps(6, 90, 3), h=14, n_windows=3, n_jobs=1, progress=False, models=())
    ev = res.cv[res.cv["chosen_model"].notna()]
    for lo in ("lo-80", "lo-95"):
        for m in ("naive", "mean", CHOSEN):
            assert (ev[f"{m}-{lo}"].dropna() >= 0).all()
        assert (res.forecasts[f"{CHOSEN}-{lo}"] >= 0).all()
    # unclipped, the calibrated bands of these cheap, deeply discounted prices would reach below 0
    assert (ev["naive-lo-95-raw"].dropna() < ev["naive-lo-95"].dropna()).any() or (ev["naive-lo-95"] == 0).any()
    # the calibration frame says which normaliser each model's bands use and from how many paths
    cal = res.calibration
    assert set(cal["normaliser"]) <= set(calibrate.NORMALISERS) and (cal["n_blocks"] <= cal["n"]).all()


def test_eval_reports_winkler_ratios_and_a_goal_row_per_bucket():
    rng = np.random.default_rng(5)
    ds = pd.date_range("2020-01-01", periods=48, freq="MS")
    df = pd.concat(
        [pd.DataFrame({"unique_id": f"r{i}", "ds": ds, "y": 50 + np.cumsum(rng.normal(0, 1, 48))}) for i in range(30)],
        ignore_index=True,
    )
    out = FE.evaluate_frame(df, models="fast", n_windows=5)
    assert set(out["by_horizon"]) == {"h3"} and "Winkler" in out["goal"]
    g = out["by_horizon"]["h3"]
    for lv in (80, 95):
        assert g[f"ratio_winkler_{lv}_to_better_naive"] == pytest.approx(
            g[f"chosen_winkler_{lv}"] / g[f"better_naive_winkler_{lv}"]
        )
    assert g["goal_winkler_met"] == (
        g["ratio_winkler_80_to_better_naive"] <= 1 and g["ratio_winkler_95_to_better_naive"] <= 1
    )
    assert g["goals_met"] == (g["goal_ratio_met"] and g["goal_coverage_met"] and g["goal_winkler_met"])
    assert out["goals_met"] == g["goals_met"]
    # random walks: nothing beats the last value by 5%, and the goal row says so
    assert not g["goal_ratio_met"] and not out["goals_met"]


def test_default_design_always_leaves_a_scored_window():
    # many short monthly series: the history leaves little room, but one window must finish before the last
    ds = pd.date_range("2020-01-01", periods=18, freq="MS")
    df = pd.concat([pd.DataFrame({"unique_id": f"m{i}", "ds": ds, "y": 5.0 + i}) for i in range(20)])
    d = FE.default_design(df)
    assert d["h"] == 3 and d["step"] == 1 and d["n_windows"] >= 4
