"""Accuracy and interval metrics of backtest forecasts: MAE, RMSE, sMAPE, MASE (against the in-sample
seasonal-naive error), coverage, width and Winkler score, per series and overall, per lead-time bucket;
and the lead-balanced backtest scores that the model choice and the combination weights read."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from priceintel.forecast.columns import ID, LEVELS, METRICS, OVERALL, RAW, SCALE, Y, bound, column


def mase_scale(y: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast (NaN when undefined or zero)."""
    if len(y) <= season:
        return float("nan")
    s = float(np.mean(np.abs(y[season:] - y[:-season])))
    return s if s > 0 else float("nan")


def window_scale(y: np.ndarray, season: int) -> float:
    """The MASE scale of a training window: seasonal when it holds more than a season, else (or when
    that is undefined) the one-step naive scale."""
    scale = mase_scale(y, season) if len(y) > season else np.nan
    return scale if np.isfinite(scale) else mase_scale(y, 1)


def winkler(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: int) -> np.ndarray:
    """Winkler interval score per point: the width plus 2 / alpha times the distance outside the bounds."""
    a = 1 - level / 100
    return (hi - lo) + 2 / a * (lo - y) * (y < lo) + 2 / a * (y - hi) * (y > hi)


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


def metric_table(cv: pd.DataFrame, models: list, horizons: list) -> pd.DataFrame:
    """Metrics on scored windows (those with a choice) per series and overall, per lead-time bucket
    (`horizon`: every step up to it). The scored rows are read a column at a time and the per-point
    contributions are not consolidated into one block, so the cv frame is never copied whole."""
    rows = np.flatnonzero(cv["chosen_model"].notna().to_numpy())

    def ev(name: str) -> np.ndarray:
        return cv[name].to_numpy()[rows]

    cols: dict = {}
    for m in models:
        if m in cv.columns:
            cols.update(_point_metrics(ev, m))
    wide = pd.DataFrame(cols, copy=False)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    ids = ev(ID)
    steps = ev("step")
    out = pd.concat(
        [_bucket(wide if (steps <= hz).all() else wide[steps <= hz], ids[steps <= hz], hz) for hz in horizons],
        ignore_index=True,
    )
    out["n"] = out["n"].fillna(0).astype(int)
    order = {m: i for i, m in enumerate(models)}
    out["_o"] = out["model"].map(order)
    out["_a"] = out[ID] != OVERALL
    out = out.sort_values(["horizon", "_a", ID, "_o"]).drop(columns=["_o", "_a"]).reset_index(drop=True)
    return out[[ID, "model", "horizon", *METRICS]]


def _point_metrics(ev: Callable[[str], np.ndarray], m: str) -> dict:
    """Per scored point of model `m`: each metric's contribution ((m, metric) -> array, NaN where undefined).
    `ev(column)`: the column's values at the scored points."""
    y = np.asarray(ev(Y), float)
    scale = np.asarray(ev(SCALE), float)
    good_scale = np.isfinite(scale) & (scale > 0)
    f = np.asarray(ev(m), float)
    ok = np.isfinite(y) & np.isfinite(f)
    e = np.where(ok, y - f, np.nan)
    den = np.abs(y) + np.abs(f)
    cols = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        cols[(m, "n")] = ok.astype(float)
        cols[(m, "mae")] = np.abs(e)
        cols[(m, "rmse")] = e**2
        cols[(m, "smape")] = np.where(ok, np.where(den > 0, 200 * np.abs(e) / np.where(den > 0, den, 1), 0.0), np.nan)
        cols[(m, "mase")] = np.where(ok & good_scale, np.abs(e) / np.where(good_scale, scale, 1), np.nan)
        for lv in LEVELS:
            lo = np.asarray(ev(column(m, bound("lo", lv))), float)
            hi = np.asarray(ev(column(m, bound("hi", lv))), float)
            iok = ok & np.isfinite(lo) & np.isfinite(hi)
            cols[(m, f"coverage_{lv}")] = np.where(iok, (y >= lo) & (y <= hi), np.nan)
            cols[(m, f"width_{lv}")] = np.where(iok, hi - lo, np.nan)
            cols[(m, f"winkler_{lv}")] = np.where(iok, winkler(y, lo, hi, lv), np.nan)
            rlo = np.asarray(ev(column(m, bound("lo", lv), raw=True)), float)
            rhi = np.asarray(ev(column(m, bound("hi", lv), raw=True)), float)
            rok = ok & np.isfinite(rlo) & np.isfinite(rhi)
            cols[(m, f"coverage_{RAW}_{lv}")] = np.where(rok, (y >= rlo) & (y <= rhi), np.nan)
    return cols


def _bucket(part: pd.DataFrame, pid: np.ndarray, hz: int) -> pd.DataFrame:
    """Long metrics (unique_id, model, metrics..., horizon) of one lead-time bucket: per series and overall."""
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
    return long
