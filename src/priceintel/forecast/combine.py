"""The combination `combo`: a weighted mean of the other models' points and bounds.

The combination of window k weights every candidate (every model but seasonal naive) by the inverse of
its pooled, lead-balanced backtest MASE on the errors observed by cut-off k (a rule fixed a priori:
`COMBO_POWER` = 1; inverse-error weighting without correlations, Bates & Granger 1969), with equal
weights until every lead time has evidence (a finished window).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from priceintel.forecast.arrays import Backtest
from priceintel.forecast.metrics import lead_balanced_scores
from priceintel.forecast.models import COMBO

COMBO_POWER = 1.0  #: combination weights proportional to (pooled backtest MASE) ** -1 (fixed a priori)


def combine(res: np.ndarray, models: Sequence[str], weights: dict | None = None) -> np.ndarray:
    """Weighted mean over the first axis of `res` (aligned with `models`) of the members' points and bounds
    (`weights`: model -> weight; default: equal weights on every candidate). A member without a forecast
    is left out and the other weights renormalised."""
    weights = {m: 1.0 for m in combo_candidates(models)} if weights is None else weights
    idx = [j for j, m in enumerate(models) if m in weights]
    w = np.array([weights[models[j]] for j in idx], dtype=float).reshape((-1,) + (1,) * (res.ndim - 1))
    x = res[idx]
    ok = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x * w, 0.0).sum(axis=0) / np.where(ok, w, 0.0).sum(axis=0)


def combo_candidates(models: Sequence[str]) -> list:
    """Models that may join the combination: all but seasonal naive and the combination itself."""
    return [m for m in models if m not in ("seasonal_naive", COMBO)]


def combo_weights(pooled: np.ndarray | None, models: Sequence[str], power: float = COMBO_POWER) -> dict:
    """Combination weights: each candidate's weight is proportional to its pooled backtest MASE
    (`pooled`, aligned with `models`) to the power -`power`, normalised to sum to 1. Without evidence
    (`pooled` None, or a candidate without a finite positive score) every candidate weighs the same."""
    cand = [j for j, m in enumerate(models) if m in combo_candidates(models)]
    if pooled is None or not all(np.isfinite(pooled[j]) and pooled[j] > 0 for j in cand):
        return {models[j]: 1.0 / len(cand) for j in cand}
    w = np.array([float(pooled[j]) ** -power for j in cand])
    w = w / w.sum()
    return {models[j]: float(v) for j, v in zip(cand, w)}


def fill_combination(bt: Backtest) -> dict[int, dict]:
    """Fill the combination's rows of `bt.forecasts`, window by window, and return its weights per window
    label (FINAL: for the final forecast). Windows are processed in order, so the combination's own
    earlier errors are those of its earlier weights; no combination in the models: {}."""
    if COMBO not in bt.models:
        return {}
    j = bt.models.index(COMBO)
    members: dict[int, dict] = {}
    for k in range(bt.n_windows + 1):
        # weights from the pooled MASE (lead-balanced) on the errors dated on or before cut-off k;
        # equal weights until every lead time has evidence (a finished window)
        _own, pooled, complete = lead_balanced_scores(bt.errors(scaled=True), bt.seen_by(k))
        members[bt.label(k)] = combo_weights(pooled if complete else None, bt.models)
        if k < bt.n_windows:
            window = bt.forecasts[:, k].transpose(1, 0, 2, 3)  # (M, S, Out, h)
            bt.forecasts[:, k, j] = combine(window, bt.models, members[k])
    return members
