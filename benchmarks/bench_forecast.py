"""Forecast benchmark: held-out accuracy and interval coverage on the demo world and on Dominick's
weekly orange-juice prices, and the speed of a 5,000-series daily backtest + forecast with Prophet's
per-series fit time beside the fast engine's.

Writes reports/benchmarks/forecast.json.  Usage: python benchmarks/bench_forecast.py [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from priceintel import config, demo
from priceintel import forecast as fc
from priceintel import tournament as T

warnings.filterwarnings("ignore")
GOAL_RATIO = 0.95
COVERAGE_TOL = 0.05
OJ_ORIGIN = pd.Timestamp("1989-09-14")  #: Dominick's week 1 (a convention; only the weekly spacing matters)


def oj_frame() -> pd.DataFrame:
    """Dominick's OJ shelf prices as a long weekly frame: series = store x brand, promo flags kept."""
    d = pd.read_csv(config.shared_data_dir() / "oj" / "oj_store_week.csv")
    return pd.DataFrame({
        "unique_id": d["store"].astype(str) + ":" + d["brand"],
        "ds": OJ_ORIGIN + pd.to_timedelta((d["week"] - 1) * 7, unit="D"),
        "y": d["price"].astype(float), "feat": d["feat"].astype(float), "deal": d["deal"].astype(float),
    })


def demo_frame(n_products: int, days: int, seed: int = 42) -> pd.DataFrame:
    """Daily competitor shelf prices of a demo world (out-of-stock days are gaps)."""
    w = demo.generate_world(n_products=n_products, n_days=days, seed=seed)
    p = w.prices
    return pd.DataFrame({"unique_id": p["retailer"] + ":" + p["item_id"].astype(str),
                         "ds": pd.to_datetime(p["ds"]), "y": p["price"].astype(float)})


def _verdict(res: T.TournamentResult, h: int) -> dict:
    """Accuracy table and the goals at the full horizon."""
    s = res.summary()[f"h{h}"]
    ratio = s.get("ratio_mae_to_better_naive")
    c80, c95 = s.get("chosen_coverage_80"), s.get("chosen_coverage_95")
    return {
        "table": res.overall(h).drop(columns="unique_id").round(4).to_dict("records"),
        "by_horizon": {k: {kk: vv for kk, vv in v.items() if kk != "models"}
                       for k, v in res.summary().items() if k.startswith("h")},
        "better_naive": s.get("better_naive"),
        "chosen_mae": s.get("chosen_mae"), "better_naive_mae": s.get("better_naive_mae"),
        "ratio_mae_to_better_naive": ratio, "ratio_mase_to_better_naive": s.get("ratio_mase_to_better_naive"),
        "goal_ratio_met": bool(ratio is not None and ratio <= GOAL_RATIO),
        "coverage_80": c80, "coverage_95": c95,
        "goal_coverage_met": bool(c80 is not None and c95 is not None and abs(c80 - 0.80) <= COVERAGE_TOL
                                  and abs(c95 - 0.95) <= COVERAGE_TOL),
        "p_change": res.summary().get("p_change"),
        "chosen_models": res.summary()["chosen_models"],
        "split": res.params["split"], "params": {k: v for k, v in res.params.items() if k != "split"},
        "timing_s": {k: round(v, 2) for k, v in res.timing.items() if k.endswith("_s")},
        "failures": len(res.failures),
    }


def bench_oj(quick: bool) -> dict:
    """Weekly OJ prices: h = 13 weeks, cut-offs every 4 weeks; with and without promo regressors."""
    df = oj_frame()
    if quick:
        df = df[df["unique_id"].isin(sorted(df["unique_id"].unique())[:30])]
    out = {"series": int(df["unique_id"].nunique()), "weeks": int(df["ds"].nunique()),
           "ds": "1989-09-14 + 7 * (week - 1) days"}
    models = T.FAST_MODELS if quick else T.FULL_MODELS
    nw = 5 if quick else 8
    out["no_regressors"] = _verdict(T.run_tournament(df, h=13, n_windows=nw, step=4, models=models,
                                                     progress=False), 13)
    out["promo_regressors"] = _verdict(T.run_tournament(df, h=13, n_windows=nw, step=4,
                                                        models=(*T.FAST_MODELS, T.REGRESSION),
                                                        regressors=("feat", "deal"), progress=False), 13)
    out["promo_regressors"]["note"] = ("feat/deal of the forecast weeks are used as known in advance "
                                       "(a planned promotion calendar); no other future information")
    return out


def bench_demo(quick: bool) -> dict:
    """Daily demo-world competitor prices: h = 28 days, cut-offs every 14 days."""
    n, days = (30, 150) if quick else (200, 240)
    df = demo_frame(n, days)
    res = T.run_tournament(df, h=28, n_windows=6 if not quick else 4, step=14, progress=False)
    return {"products": n, "days": days, "series": int(df["unique_id"].nunique()), **_verdict(res, 28)}


def bench_speed(quick: bool) -> dict:
    """5,000 daily series x 365 days, h = 28, 3 windows (statsforecast models fitted on the first window and
    forward-filtered on later ones: refit=False): wall time on all cores; Prophet on a sample."""
    n_series, days = (300, 365) if quick else (5000, 365)
    df = demo_frame(n_series // 3 + 1, days, seed=7)
    ids = sorted(df["unique_id"].unique())[:n_series]
    df = df[df["unique_id"].isin(ids)]
    t0 = time.perf_counter()
    res = T.run_tournament(df, h=28, n_windows=3, step=28, n_jobs=-1, progress=True, refit=False)
    wall = time.perf_counter() - t0
    n_fast = len([m for m in res.params["models"] if m != T.COMBO])
    fits = len(ids) * 3 * n_fast
    # Prophet: per-series fit + forecast time on a sample, same data, same horizon
    sample = ids[:: max(1, len(ids) // (5 if quick else 12))][: 5 if quick else 12]
    clean, _ = fc.clean_series(df[df["unique_id"].isin(sample)])
    times, fails = [], 0
    for uid, g in clean.groupby("unique_id"):
        y = g["y"].to_numpy(float)[:-28]
        t = time.perf_counter()
        try:
            fc.fc_prophet(y, 28, start=g["ds"].iloc[0])
        except fc.ForecastError:
            fails += 1
        times.append(time.perf_counter() - t)
    # fast engine: the same per-series fit on the same sample, one core
    fast = {}
    for m in ("auto_ets", "auto_theta", "auto_arima"):
        tt = []
        for uid, g in clean.groupby("unique_id"):
            y = g["y"].to_numpy(float)[:-28]
            t = time.perf_counter()
            T.run_model(m, y, 28, 7, T.seasonal_test(y, 7))
            tt.append(time.perf_counter() - t)
        fast[m] = float(np.median(tt))
    prophet_median = float(np.median(times))
    return {
        "series": len(ids), "days": days, "h": 28, "n_windows": 3, "models": res.params["models"],
        "wall_s": round(wall, 1), "goal_wall_s": 300, "goal_met": bool(wall < 300 and not quick),
        "timing_s": {k: round(v, 2) for k, v in res.timing.items() if k.endswith("_s")},
        "model_fits": fits,
        "per_series_fit_s_median": {"prophet": prophet_median, **fast},
        "prophet_sample": len(times), "prophet_failures": fails,
        "prophet_projected_wall_s_for_all": round(prophet_median * len(ids) * 4 / (os.cpu_count() or 1), 1),
        "accuracy_h28": _verdict(res, 28)["by_horizon"]["h28"],
    }


def main(quick: bool) -> dict:
    """Run all parts and write the JSON."""
    load0 = os.getloadavg()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    out = {"benchmark": "forecast", "quick": quick, "started": started}
    for name, fn in (("oj_weekly", bench_oj), ("demo_daily", bench_demo), ("speed", bench_speed)):
        t = time.perf_counter()
        out[name] = fn(quick)
        out[name]["bench_wall_s"] = round(time.perf_counter() - t, 1)
        print(name, json.dumps({k: v for k, v in out[name].items() if k not in ("table",)}, default=str)[:1500],
              flush=True)
    out["machine"] = {"loadavg_start": load0, "loadavg_end": os.getloadavg(), "cpus": os.cpu_count(),
                      "wall_s": round(time.perf_counter() - t0, 1),
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    dest = config.reports_dir() / "benchmarks" / ("forecast-quick.json" if quick else "forecast.json")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print("wrote", dest)
    return out


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
