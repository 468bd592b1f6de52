"""Forecast tournament: rolling-origin backtest of every model and baseline on all cores, per-series model
choice on earlier windows, conformal interval calibration, price-change probability and the final forecast.

The one forecasting engine: the pipeline's model stage, `priceintel eval forecast` and the benchmarks all
run `run_tournament`. Its steps live in their own modules: `series` (frequency, cleaning), `models` (the
per-series models), `backtest` (every model on every window and on the whole history, in parallel),
`combine` (the combination), `choose` (the per-series choice), `calibrate` (conformal bounds), `metrics` and
`change` (P(price change)).

Honesty rules built in:
- cut-offs are calendar dates shared by every series; window `k` is scored on the `h` steps after
  its cut-off, and anything used to make a decision for window `k` comes only from data dated on or
  before cut-off `k`: the model choice uses every backtest error dated up to the cut-off (finished
  windows and the early steps of windows still running), interval calibration uses finished windows;
- a window is scored only when an earlier window has finished (so the first windows choose and
  calibrate only), and every reported accuracy figure (every baseline, every model, and `chosen`)
  is computed on the same scored windows;
- the final forecast uses the choice and calibration from all windows.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from priceintel import compute
from priceintel.forecast.arrays import BOUND_OUTS, FINAL, Backtest, Out, stack
from priceintel.forecast.backtest import SeriesData, chunk_backtest, run_parallel
from priceintel.forecast.calibrate import INTERVAL_SHAPE, INTERVAL_SHAPES, conformal_calibration, final_bounds
from priceintel.forecast.change import change_backtest, final_change
from priceintel.forecast.choose import COMBO_MARGIN, NO_CHOICE, SHRINK_STEPS, choose
from priceintel.forecast.columns import BOUNDS, CHOSEN, DS, ID, LEVELS, OVERALL, SCALE, Y, bound, column
from priceintel.forecast.combine import COMBO_POWER, combine, fill_combination
from priceintel.forecast.metrics import metric_table, window_scale
from priceintel.forecast.models import ALL_MODELS, BASELINES, COMBO, FAST_MODELS, NAIVE_BASELINES, regular_windows
from priceintel.forecast.series import ForecastError, Freq, clean_series, get_freq, season_length
from priceintel.items import plain_float

CHOICE_COLUMNS = [ID, "window", "cutoff", "model"]
WINKLERS = tuple(f"winkler_{lv}" for lv in LEVELS)  #: the interval scores of the summary (lower is better)


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
        out: dict = {}
        for hz, m in self.metrics[self.metrics[ID] == OVERALL].groupby("horizon"):
            out[f"h{int(hz)}"] = _horizon_summary(m.set_index("model"))
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
        out["chosen_models"] = self.choices[self.choices["window"] == FINAL]["model"].value_counts().to_dict()
        out["split"] = self.params.get("split")
        return out


def _horizon_summary(m: pd.DataFrame) -> dict:
    """Headline figures of one lead-time bucket (`m`: overall metrics indexed by model)."""
    base = m.loc[[b for b in NAIVE_BASELINES if b in m.index]]
    best = base["mae"].idxmin() if base["mae"].notna().any() else None
    row = {
        "better_naive": best,
        "better_naive_mae": plain_float(m.loc[best, "mae"]) if best else None,
        "models": {
            k: {c: plain_float(v[c]) for c in ("mae", "mase", "coverage_80", "coverage_95", *WINKLERS)}
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
        for w in WINKLERS:  # interval score of the chosen bands against the better naive baseline's bands
            row[f"chosen_{w}"] = plain_float(m.loc[CHOSEN, w])
            row[f"better_naive_{w}"] = plain_float(m.loc[best, w])
            row[f"ratio_{w}_to_better_naive"] = plain_float(m.loc[CHOSEN, w] / m.loc[best, w])
    return row


# --- the tournament ---------------------------------------------------------------------------


@dataclass
class Panel:
    """The clean input of a tournament and its design."""

    report: pd.DataFrame  #: clean_series report
    fq: Freq
    season: int
    horizons: list[int]  #: lead-time buckets of the metrics
    min_train: int  #: fewest points before a cut-off for a window to run
    cutoffs: list  #: calendar cut-offs, oldest first
    items: list[SeriesData]  #: the series, sorted by id
    imputed: dict  #: uid -> forward-filled (missing) periods: never counted as "price unchanged"
    failures: list  #: series without any observed value


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
    cluster: Any = None,
) -> TournamentResult:
    """Backtest `models` and every baseline on `n_windows` cut-offs, choose per series, forecast `h` ahead. The
    per-series backtests run on `n_jobs` local processes, or on the Dask cluster `cluster` (an address such as
    tcp://host:8786, a cluster or a Client; default $PRICEINTEL_DASK_CLUSTER) with identical results."""
    t0 = time.perf_counter()
    step = _check_arguments(h, n_windows, step, models, interval_shape)
    models = _model_list(models)
    panel = _panel(df, h, n_windows, step, freq, season_length, horizons, regressors, min_train)
    popts = {"holidays": holidays} if holidays else {}
    kw = dict(h=h, models=models, season=panel.season, min_train=panel.min_train, freq=panel.fq, prophet_opts=popts)
    t1 = time.perf_counter()
    jobs = run_parallel(chunk_backtest, panel.items, n_jobs, progress, "backtest", cluster=cluster, refit=refit, **kw)
    t2 = time.perf_counter()
    jobs.sort(key=lambda r: r["uid"])
    failures = panel.failures + [f for r in jobs for f in r["failures"]]
    shrink = float(SHRINK_STEPS * h if shrink is None else shrink)
    interval_shape = interval_shape or INTERVAL_SHAPE
    cv, choices, calib = _assemble(
        jobs, models, panel.cutoffs, h, step, panel.fq, calibrate, shrink, margin, interval_shape
    )
    if cv.empty:
        raise ForecastError(
            f"run_tournament: no series has {panel.min_train} points before the first cut-off "
            f"{panel.cutoffs[0].date()} (h={h}, n_windows={n_windows}); shorten h or n_windows"
        )
    metrics = metric_table(cv, models + [CHOSEN], panel.horizons)
    change = change_backtest(panel.items, panel.cutoffs, h, regular_windows(panel.season)[0], panel.imputed)
    # final forecasts: the chosen model plus the naive baselines, from the whole history
    final_choice = choices[choices["window"] == FINAL].set_index(ID)["model"].to_dict()
    failures.extend(
        {
            ID: s.uid,
            "model": "*",
            "window": FINAL,
            "reason": f"fewer than {panel.min_train} points before every cut-off: not forecast",
        }
        for s in panel.items
        if s.uid not in final_choice
    )
    weights = choices.attrs.get("combo_weights", {})
    fres = _final_forecasts(jobs, final_choice, models, weights.get(FINAL))
    t3 = time.perf_counter()
    forecasts = _final_frame(fres, panel, final_choice, calib, h)
    params = _design_params(panel, h, n_windows, step, models, regressors, holidays)
    params.update(calibrate=bool(calibrate), shrink=shrink, margin=float(margin), refit=bool(refit))
    params.update(combo_power=COMBO_POWER, interval_shape=interval_shape)
    params.update(_outcome_params(panel, weights, n_windows, step, h))
    timing: dict[str, Any] = {
        "prepare_s": t1 - t0,
        "backtest_s": t2 - t1,
        "final_s": t3 - t2,
        "total_s": time.perf_counter() - t0,
    }
    timing["n_series"] = len(panel.items)
    timing["backtest_on"] = compute.describe(cluster)
    return TournamentResult(cv, metrics, forecasts, choices, change, calib, panel.report, failures, params, timing)


def _design_params(panel: Panel, h, n_windows, step, models, regressors, holidays) -> dict:
    """The design part of a tournament's parameters (then the choice and calibration settings follow)."""
    return {
        "h": int(h),
        "n_windows": int(n_windows),
        "step": int(step),
        "models": models,
        "freq": panel.fq.alias,
        "season_length": int(panel.season),
        "horizons": panel.horizons,
        "regressors": list(regressors),
        "holidays": holidays,
        "min_train": int(panel.min_train),
    }


def _outcome_params(panel: Panel, weights: dict, n_windows: int, step: int, h: int) -> dict:
    """The last parameters: the combination weights per window, the cut-offs and the split in words."""
    return {
        "combo_weights": {
            ("final" if k == FINAL else f"window {k + 1}"): {m: round(w, 4) for m, w in v.items()}
            for k, v in weights.items()
        },
        "cutoffs": [str(c.date()) for c in panel.cutoffs],
        "split": _split_text(panel.cutoffs, n_windows, step, h, panel.fq),
    }


def _check_arguments(h, n_windows, step, models: Sequence[str], interval_shape: str | None) -> int:
    """One-line errors for a bad horizon, number of windows, step, model name or interval shape; the step."""
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
    return int(step)


def _model_list(models: Sequence[str]) -> list[str]:
    """Every baseline, then the requested models, the combination last."""
    return list(dict.fromkeys([*BASELINES, *[m for m in models if m != COMBO], *[m for m in models if m == COMBO]]))


def _panel(df, h, n_windows, step, freq, season_len, horizons, regressors, min_train) -> Panel:
    """Clean the series (missing periods marked) and lay out the design: cut-offs, lead-time buckets,
    minimum training length, and each series' training length at every cut-off."""
    missing = [r for r in regressors if r not in df.columns]
    if missing:
        raise ForecastError(f"regressor column(s) {missing} not in the frame {list(df.columns)}")
    keep = [ID, DS, Y, *regressors]
    clean, report = clean_series(df[[c for c in keep if c in df.columns]], freq=freq, mark_imputed=True)
    fq = get_freq(clean.attrs.get("freq", freq))
    season = season_length(fq, season_len)
    if clean.empty:
        raise ForecastError("run_tournament: no series has an observed value")
    horizons = sorted({min(int(x), h) for x in (horizons or _default_horizons(fq, h))} | {h})
    min_train = default_min_train(fq, season, h) if min_train is None else min_train
    cutoffs = _cutoff_positions(clean, fq, h, n_windows, step)
    items, imputed = [], {}
    for uid, g in clean.groupby(ID, sort=True):
        imputed[str(uid)] = g["imputed"].to_numpy(bool)
        ds = g[DS].to_numpy()
        ends = np.searchsorted(ds, np.array(cutoffs, dtype="datetime64[ns]"), side="right")
        x = {r: g[r].fillna(0).to_numpy(float) for r in regressors} or None
        items.append(SeriesData(str(uid), g[Y].to_numpy(float), x, ds[0], ends))
    failures = [
        {ID: u, "model": "*", "window": FINAL, "reason": "no observed values"}
        for u in report.loc[report["length"] == 0, ID]
    ]
    return Panel(report, fq, season, horizons, min_train, cutoffs, items, imputed, failures)


def _cutoff_positions(clean: pd.DataFrame, fq: Freq, h: int, n_windows: int, step: int) -> list:
    """Calendar cut-offs (last training date of each window), oldest first."""
    end = clean[DS].max()
    # global steps back from the panel end
    origin = clean[DS].min()
    last = int(fq.positions(pd.Series([end]), pd.Series([origin]))[0])
    pos = [last - h - (n_windows - 1 - k) * step for k in range(n_windows)]
    return [pd.Timestamp(fq.dates(np.array([np.datetime64(origin)]), np.array([p]))[0]) for p in pos]


def default_min_train(fq: Freq, season: int, h: int) -> int:
    """Fewest points a series needs before a cut-off: a season and two more, 2h for daily data (h else), 8."""
    return max(season + 2, 2 * h if fq.alias == "D" else h, 8)


def _default_horizons(fq: Freq, h: int) -> list[int]:
    """Lead-time buckets: 7/14/28 days for daily data, 4/8/13 weeks, 3/6/12 months, else h."""
    return {"D": [7, 14, 28], "W": [4, 8, 13], "M": [3, 6, 12], "Q": [1, 2, 4]}.get(fq.alias, [h])


def _split_text(cutoffs: list, n_windows: int, step: int, h: int, fq: Freq) -> str:
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


# --- from backtest arrays to frames ---------------------------------------------------------------


def _assemble(
    jobs: list,
    models: list,
    cutoffs: list,
    h: int,
    step: int,
    fq: Freq,
    calibrate: bool,
    shrink: float,
    margin: float = 0.0,
    shape: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long cv frame with calibrated bounds and the chosen model; choices; calibration factors."""
    if not len(jobs):
        return pd.DataFrame(), pd.DataFrame(columns=CHOICE_COLUMNS), pd.DataFrame()
    bt = stack(jobs, models, cutoffs, h, step, fq)
    for r in jobs:  # stacked now; the final forecasts need only r["final"] (3/4 of the jobs' memory goes)
        del r["out"], r["actual"]
    weights = fill_combination(bt)  # first: the choice and the calibration see the combination
    choice = choose(bt, shrink, margin)
    cal = conformal_calibration(bt, calibrate, shape)
    cv = _cv_frame(bt, choice, cal.bounds(bt))
    choices = _choices_frame(bt, choice)
    # the final interval factors travel with the choices frame
    choices.attrs["final_factors"] = {m: cal.step_factors[bt.n_windows, j].tolist() for j, m in enumerate(models)}
    choices.attrs["combo_weights"] = weights
    return cv, choices, cal.frame


def _cv_frame(bt: Backtest, choice: np.ndarray, cal: np.ndarray) -> pd.DataFrame:
    """One row per series, window and step (windows with enough training data): y, every model's point with
    calibrated and native (`-raw`) bounds, and the chosen model's (NaN where the window is not scored).

    Only the kept rows are gathered, each float column straight into one preallocated block: the frame is the
    only copy of its values (at 50,000 series, 4 M rows of about a hundred columns) and has a few blocks, not one
    per column."""
    grid = np.meshgrid(np.arange(bt.n_series), np.arange(bt.n_windows), np.arange(bt.h), indexing="ij")
    s, k, t = (a.ravel() for a in grid)
    keep = bt.ok[s, k]
    s, k, t = s[keep], k[keep], t[keep]
    keys = {
        ID: bt.uids[s],
        "window": k,
        DS: bt.step_dates[k, t],
        "cutoff": np.array(bt.cutoffs, dtype="datetime64[ns]")[k],
        "step": t + 1,
    }
    ch = choice[s, k]
    has = ch != NO_CHOICE
    chc = np.where(has, ch, 0)

    def chosen(a: np.ndarray) -> np.ndarray:  # the chosen model's values, NaN where the window is not scored
        return np.where(has, a, np.nan)

    def columns() -> Iterator[tuple[str, np.ndarray]]:  # one ordering: each name beside its values, made lazily
        yield Y, bt.actual[s, k, t]
        yield SCALE, bt.scale[s, k]
        for j, m in enumerate(bt.models):
            yield m, bt.point[s, k, j, t]
            for i, (b, out) in enumerate(zip(BOUNDS, BOUND_OUTS, strict=True)):
                yield column(m, b), cal[s, k, j, i, t]
                yield column(m, b, raw=True), bt.forecasts[s, k, j, out, t]
        yield CHOSEN, chosen(bt.forecasts[s, k, chc, Out.MEAN, t])
        for i, (b, out) in enumerate(zip(BOUNDS, BOUND_OUTS, strict=True)):
            yield column(CHOSEN, b), chosen(cal[s, k, chc, i, t])
            yield column(CHOSEN, b, raw=True), chosen(bt.forecasts[s, k, chc, out, t])

    n_columns = 2 + (len(bt.models) + 1) * (1 + 2 * len(BOUNDS))
    values = np.empty((len(s), n_columns), order="F")  # column-major: each column contiguous, as pandas keeps it
    names: list[str] = []
    for at, (name, col) in enumerate(columns()):
        values[:, at] = col  # one column's gather alive at a time
        names.append(name)
    assert len(names) == n_columns, (len(names), n_columns)
    frame = pd.DataFrame(values, columns=names, copy=False)
    for i, (name, col) in enumerate(keys.items()):
        frame.insert(i, name, col)
    chosen_model = np.array(bt.models, dtype=object)[chc]
    chosen_model[~has] = None
    frame["chosen_model"] = chosen_model
    return frame


def _choices_frame(bt: Backtest, choice: np.ndarray) -> pd.DataFrame:
    """unique_id, window, cutoff, model of every choice made (window FINAL: the final choice)."""
    rows = []
    for k in range(bt.n_windows + 1):
        for s in range(bt.n_series):
            if choice[s, k] != NO_CHOICE:
                cutoff = bt.cutoffs[k] if k < bt.n_windows else pd.NaT
                rows.append({ID: bt.uids[s], "window": bt.label(k), "cutoff": cutoff, "model": bt.models[choice[s, k]]})
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)


def _final_forecasts(jobs: list, final_choice: dict, models: list, weights) -> list:
    """The chosen model and the naive baselines of every chosen series, from its whole history: taken from
    the backtest jobs (which fitted every model on the whole history too), the combination from its final
    weights (`weights`, None: equal)."""
    out = []
    for r in jobs:
        u = r["uid"]
        if u not in final_choice:
            continue
        names = list(dict.fromkeys([*NAIVE_BASELINES, final_choice[u]]))
        res = {m: r["final"][models.index(m)] for m in names if m != COMBO}
        if COMBO in names:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res[COMBO] = combine(r["final"], models, weights)
        out.append({"uid": u, "final": res})
    return out


def _final_frame(fres: list, panel: Panel, final_choice: dict, calib: pd.DataFrame, h: int) -> pd.DataFrame:
    """unique_id, ds, chosen_model, chosen (+ calibrated bounds), naive baselines, p_change."""
    fin = calib[calib["window"] == FINAL].set_index("model")
    series = {s.uid: s for s in panel.items}
    p_change = final_change(panel.items, h, regular_windows(panel.season)[0], panel.imputed)
    frames = []
    for r in fres:
        u = r["uid"]
        y = series[u].y
        scale = window_scale(y, panel.season)
        end_ds = panel.fq.dates(np.array([series[u].start]), np.array([len(y) - 1]))[0]
        cols = {ID: u, DS: panel.fq.future(pd.Timestamp(end_ds), h), "chosen_model": final_choice[u]}
        for name in (CHOSEN, *NAIVE_BASELINES):
            src = final_choice[u] if name == CHOSEN else name
            arr = r["final"][src]
            cols[name] = arr[Out.MEAN]
            calibrated = final_bounds(
                arr[Out.MEAN], arr[list(BOUND_OUTS)], scale, fin.loc[src] if src in fin.index else None
            )
            cols.update({column(name, b): v for b, v in calibrated.items()})
        if np.nanmin(y) >= 0:  # a non-negative history (prices): future bounds below 0 are clipped to 0
            for name in (CHOSEN, *NAIVE_BASELINES):
                for lo in (bound("lo", lv) for lv in LEVELS):
                    cols[column(name, lo)] = np.maximum(cols[column(name, lo)], 0.0)
        cols["p_change"] = p_change[u]
        frames.append(pd.DataFrame(cols))
    if not frames:
        return pd.DataFrame(columns=[ID, DS, "chosen_model", CHOSEN])
    return pd.concat(frames, ignore_index=True)
