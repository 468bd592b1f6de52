"""The tournament's per-series work, on all cores: every model on every rolling-origin window of a series and
its final forecast from the whole history, in one job per series (`series_job`), so each statsforecast
model is fitted once per series and origin (refit-free runs fit it once per series and forward-filter it on
the later windows and the final forecast). A failing model leaves NaN and a failure record; one series
never sinks the batch. A model the history is too short for (`models.long_enough`) is skipped: NaN, no
failure."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from priceintel.forecast.arrays import FINAL, Out
from priceintel.forecast.columns import ID, OUTPUTS
from priceintel.forecast.combine import combine
from priceintel.forecast.metrics import window_scale
from priceintel.forecast.models import (
    COMBO,
    PROPHET,
    REGRESSION,
    SF_MODELS,
    long_enough,
    run_model,
    seasonal_test,
    sf_refit_free,
)
from priceintel.forecast.series import Freq


class SeriesData(NamedTuple):
    """One clean series as the workers get it."""

    uid: str
    y: np.ndarray  #: values on the regular grid
    x: dict | None  #: regressor name -> values (aligned with y), or None
    start: np.datetime64  #: date of y[0]
    ends: np.ndarray  #: training length at each cut-off


def _failure(uid: str, name: str, window: int, exc: Exception) -> dict:
    return {ID: uid, "model": name, "window": window, "reason": f"{type(exc).__name__}: {exc}"}


def forecast_array(
    name: str, y: np.ndarray, h: int, season: int, seasonal: bool, kw: dict, fitted: dict | None = None
) -> np.ndarray:
    """(Out, h) array of one model's forecast: point and native bounds (NaN where a model gives none).
    `fitted` (refit-free runs): statsforecast models fitted on an earlier window, forward-filtered. A model
    the history is too short for gives NaN."""
    if not long_enough(name, len(y)):
        return np.full((len(OUTPUTS), h), np.nan)
    if fitted is not None and name in SF_MODELS:
        res = sf_refit_free(name, fitted, y, h, season, seasonal)
    else:
        res = run_model(name, y, h, season, seasonal, **kw)
    return np.vstack([np.asarray(res.get(k, np.full(h, np.nan)), dtype=float)[:h] for k in OUTPUTS])


def model_kwargs(name: str, x: dict | None, start, end: int, h: int, freq: Freq, opts: dict) -> dict:
    """Keyword arguments of fc_prophet / fc_regression for a training window ending at `end`: the
    regressors' history and known future (their last value held past the data), Prophet's calendar."""
    if name not in (PROPHET, REGRESSION):
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


def series_job(
    uid: str,
    y: np.ndarray,
    x: dict | None,
    start: np.datetime64,
    ends: np.ndarray,
    h: int,
    models: Sequence[str],
    season: int,
    min_train: int,
    freq: Freq,
    prophet_opts: dict,
    refit: bool = True,
) -> dict:
    """Backtest windows (train lengths `ends`) of one series: forecasts (K, M, Out, h), actuals (K, h),
    which windows had `min_train` points, the MASE scale per window, the seasonality test, failures; and
    `final` (M, Out, h): every model's forecast from the whole history (the combination's row is left NaN:
    its weights come from every series' backtest), for series with at least one backtest window."""
    fitted: dict | None = None if refit else {}
    fails = []
    seasonal = seasonal_test(y[: ends[0]] if len(ends) and ends[0] > 0 else y, season)
    out = np.full((len(ends), len(models), len(Out), h), np.nan)
    actual = np.full((len(ends), h), np.nan)
    ok = np.zeros(len(ends), bool)
    scale = np.full(len(ends), np.nan)
    nonneg = np.zeros(len(ends), bool)
    for k, end in enumerate(ends):
        if end < min_train:
            continue
        ok[k] = True
        nonneg[k] = bool(np.nanmin(y[:end]) >= 0)
        actual[k, : max(0, min(h, len(y) - end))] = y[end : end + h]
        scale[k] = window_scale(y[:end], season)
        for j, name in enumerate(models):
            if name == COMBO:
                continue
            kw = model_kwargs(name, x, start, end, h, freq, prophet_opts)
            try:
                out[k, j] = forecast_array(name, y[:end], h, season, seasonal, kw, fitted)
            except Exception as exc:  # noqa: BLE001 - one series must not sink the batch
                fails.append(_failure(uid, name, k, exc))
        if COMBO in models:
            out[k, list(models).index(COMBO)] = combine(out[k], models)
    final = np.full((len(models), len(Out), h), np.nan)
    if ok.any():
        future_x = {k: np.concatenate([v, np.repeat(v[-1], h)]) for k, v in x.items()} if x else None
        for j, name in enumerate(models):
            if name == COMBO:
                continue
            kw = model_kwargs(name, future_x, start, len(y), h, freq, prophet_opts)
            try:
                final[j] = forecast_array(name, y, h, season, seasonal, kw, fitted)
            except Exception as exc:  # noqa: BLE001
                fails.append(_failure(uid, name, FINAL, exc))
    return {
        "uid": uid,
        "out": out,
        "final": final,
        "actual": actual,
        "ok": ok,
        "scale": scale,
        "nonneg": nonneg,
        "seasonal": seasonal,
        "failures": fails,
    }


def chunk_backtest(items: list, **kw) -> list:
    """Worker: backtest a chunk of series (SeriesData) single-threaded."""
    # scoped: a chunk may run in the pipeline's own process (one job), whose warning filters must stay
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        return [series_job(*it, **kw) for it in items]


def run_parallel(func, items: list, n_jobs: int, progress: bool, desc: str, cluster=None, **kw) -> list:
    """Run `func(chunk, **kw)` over chunks of `items` with a progress bar: on `n_jobs` local processes, or as
    Dask tasks when `cluster` (an address, a cluster or a Client; default $PRICEINTEL_DASK_CLUSTER) is given
    (`priceintel.compute`). The result is the same list in either case, in completion order."""
    from tqdm.auto import tqdm

    from priceintel import compute

    if not items:
        return []
    cluster = compute.resolve(cluster)
    bar = tqdm(total=len(items), desc=desc, disable=not progress, unit="series")
    results = []
    if cluster is not None:
        try:
            with compute.connect(cluster) as client:
                chunks = compute.chunked(items, compute.slots(client) * 8)
                for res in compute.map_chunks(func, chunks, client, **kw):
                    results.extend(res)
                    bar.update(len(res))
        finally:
            bar.close()
        return results
    n_jobs = os.cpu_count() or 1 if n_jobs in (None, -1, 0) else max(1, int(n_jobs))
    chunks = compute.chunked(items, n_jobs * 8)
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
