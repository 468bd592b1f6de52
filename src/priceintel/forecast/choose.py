"""Per-series model choice on earlier backtest errors only.

Each series' mean backtest MASE per model is shrunk toward the model's pooled MASE over all series
(empirical-Bayes style: `(n * own + shrink * pooled) / (n + shrink)`); every lead time weighs the same
in these scores (the errors observed by a cut-off hold more short-lead steps). The combination `combo`
is the default, and a single model replaces it only when its shrunk score is at least `margin` (5%)
lower, so few, noisy windows fall back to the combination instead of chasing noise.

Few windows are weak evidence even on a large panel: the series of a panel share their cut-offs, and an
error of one cut-off (a chain-wide price move, a season) hits most of them at once, so a panel's backtest
holds about as many independent samples as it has origins. A single model therefore replaces the
combination only when it is also ahead origin by origin (`consistent_models`): each origin weighing the same,
its pooled error is at least `margin` below the combination's (geometric mean of the per-origin ratios), and
it is ahead at more than half of the origins, so a model far ahead at one origin and behind at the others,
or ahead only at the origin with the most steps seen, does not replace it. Where the combination is not the
default (it scores worse than the fallback for that series), the best eligible model is chosen as before.

The baselines guard the choice, per panel and per series:
- the panel's fallback is the fallback baseline (`FALLBACKS`: last value or seasonal naive) with the best
  pooled backtest score;
- a model whose pooled backtest score is worse than the fallback's cannot be chosen for any series
  (a model that cannot beat the baselines on the panel is not chosen), and the combination is the
  default only for series where its score is not worse than the fallback's;
- a series with less than one window (h steps) of backtest errors before the cut-off (history too short
  for the models' backtest) gets the fallback, so many short series end no worse than the baselines.
"""

from __future__ import annotations

import warnings

import numpy as np

from priceintel.forecast.arrays import Backtest
from priceintel.forecast.metrics import lead_balanced_scores
from priceintel.forecast.models import COMBO

SHRINK_STEPS = 50  #: default pooling: a series' own score counts like the pooled one after 50 * h points
COMBO_MARGIN = 0.05  #: a single model replaces the combination only when its backtest MASE is >= 5% lower
NO_CHOICE = -1  #: the choice of a series without evidence (or of a window that is not scored)
RATIO_CLIP = 1e-3  #: per-origin error ratios are clipped to [1e-3, 1e3] before their geometric mean
#: the baselines a short or unsure series falls back to: the two the goals compare with (the rolling regular
#: price `window_average` competes like any model; as a fallback it was noisier on small panels)
FALLBACKS = ("naive", "seasonal_naive")


def choose(bt: Backtest, shrink: float, margin: float = 0.0) -> np.ndarray:
    """(S, K + 1) index into `bt.models` of each series' choice per window (column K: the final choice).

    A window is scored only when an earlier window has finished (the test set); the choice for it uses
    every backtest error dated on or before its cut-off, including early steps of windows still running
    (all of them are in the training data of window k).
    """
    err, err_s = bt.errors(), bt.errors(scaled=True)  # (S, K, M, h): absolute errors, MASE points
    choice = np.full((bt.n_series, bt.n_windows + 1), NO_CHOICE)
    for k in range(bt.n_windows + 1):
        if k < bt.n_windows and not bt.finished_by(k).any():
            continue
        ok = np.asarray(bt.ok[:, k] if k < bt.n_windows else bt.ok.any(axis=1), dtype=bool)
        choice[:, k] = _choose_at(bt, err, err_s, bt.seen_by(k), shrink, margin, ok)
    return choice


def fallback_index(models: list, pooled: np.ndarray, raw_pooled: np.ndarray) -> int | None:
    """Index of the fallback baseline: the one of `FALLBACKS` with the best pooled backtest score (MASE, or
    MAE where no MASE exists); None when no fallback baseline is in `models` or none has a score."""
    cand = [j for j, m in enumerate(models) if m in FALLBACKS]
    for sc in (pooled, raw_pooled):
        ok = [j for j in cand if np.isfinite(sc[j])]
        if ok:
            return int(min(ok, key=lambda j: sc[j]))
    return None


def eligible_models(models: list, pooled: np.ndarray, fb: int | None) -> np.ndarray:
    """(M,) the models that may be chosen: the fallback baselines, and each model whose pooled backtest score
    is not worse than the fallback's (every model while the fallback has no pooled score)."""
    if fb is None or not np.isfinite(pooled[fb]):
        return np.ones(len(models), bool)
    with np.errstate(invalid="ignore"):
        beats = np.isfinite(pooled) & (pooled <= pooled[fb])
    return beats | np.isin(np.array(models, dtype=object), FALLBACKS)


def consistent_models(models: list, err_s: np.ndarray, seen: np.ndarray, margin: float = COMBO_MARGIN) -> np.ndarray:
    """(M,) the models that beat the combination origin by origin: with each origin (window with evidence in
    `seen` (K, h)) weighing the same, the geometric mean of the model's to the combination's pooled,
    lead-balanced MASE (on the points where both have a forecast) is at most 1 - `margin`, and the model is
    ahead at more than half of the origins. The combination itself and the fallback baselines are always True
    (every model is, without a combination)."""
    if COMBO not in models:
        return np.ones(len(models), bool)
    out = np.isin(np.array(models, dtype=object), (*FALLBACKS, COMBO))
    c = models.index(COMBO)
    base = err_s[:, :, c : c + 1, :]
    both = np.isfinite(err_s) & np.isfinite(base)  # (S, K, M, h) points where the model and the combination exist
    logs = []
    for k in np.flatnonzero(seen.any(axis=1)):
        m = both[:, k] & seen[k][None, None, :]  # (S, M, h)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # lead-balanced pooled MASE of each model and of the combination on the same points at origin k
            own = np.nanmean(np.nanmean(np.where(m, err_s[:, k], np.nan), axis=0), axis=1)
            ref = np.nanmean(np.nanmean(np.where(m, base[:, k], np.nan), axis=0), axis=1)
        tiny = 1e-12  # both perfect: a tie
        logs.append(np.log(np.clip((own + tiny) / (ref + tiny), RATIO_CLIP, 1 / RATIO_CLIP)))
    if not logs:
        return out
    r = np.array(logs)  # (origins, M), NaN where the model has no forecast at an origin
    n = np.isfinite(r).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ahead = np.nanmean(r, axis=0) <= np.log(1 - margin)
    wins = np.where(np.isfinite(r), r < 0, False).sum(axis=0)
    return out | ((n > 0) & ahead & (2 * wins > n))


def _choose_at(
    bt: Backtest, err: np.ndarray, err_s: np.ndarray, seen: np.ndarray, shrink: float, margin: float, ok: np.ndarray
) -> np.ndarray:
    """(S,) choices from the errors at the `seen` steps (see `choose`); `ok`: (S,) the series is forecast."""
    # every lead time weighs the same (the goal is the MAE over the whole horizon), although the
    # errors observed by the cut-off hold more short-lead than long-lead steps
    raw, raw_pooled, _c = lead_balanced_scores(err, seen)  # (S, M)
    own, pooled, _c = lead_balanced_scores(err_s, seen)  # (S, M) own MASE, (M,) pooled MASE
    n_i = (np.isfinite(bt.actual) & seen[None]).sum(axis=(1, 2))[:, None].astype(float)
    blend = (n_i * own + shrink * pooled[None, :]) / (n_i + shrink) if shrink > 0 else own
    # series without a MASE scale (constant history) fall back to their own MAE ranking
    score = np.where(np.isfinite(own).any(axis=1)[:, None], np.where(np.isfinite(own), blend, np.nan), raw)
    fb = fallback_index(bt.models, pooled, raw_pooled)
    score = np.where(np.isfinite(score) & eligible_models(bt.models, pooled, fb)[None, :], score, np.inf)
    best = np.argmin(score, axis=1)
    has = np.isfinite(score).any(axis=1)
    if COMBO in bt.models and margin > 0:
        # the combination is the default: a single model replaces it only when its (pooled, shrunken)
        # backtest error is at least `margin` lower, and only where the combination beats the fallback
        rows = np.arange(bt.n_series)
        combo_j = bt.models.index(COMBO)
        sc_combo = score[:, combo_j]
        # and beats the combination at most origins, not only on the pool (`consistent_models`)
        clear = consistent_models(bt.models, err_s, seen, margin)[best]
        keep = np.isfinite(sc_combo) & ((score[rows, best] > (1 - margin) * sc_combo) | ~clear)
        if fb is not None:
            keep &= sc_combo <= score[:, fb]
        best = np.where(keep, combo_j, best)
    choice = np.where(has, best, NO_CHOICE)
    if fb is not None:  # too little history for the models' backtest: the fallback baseline
        short = n_i[:, 0] < bt.h
        choice = np.where(ok & (short | ~has), fb, choice)
    return choice
