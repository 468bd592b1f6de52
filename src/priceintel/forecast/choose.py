"""Per-series model choice on earlier backtest errors only.

Each series' mean backtest MASE per model is shrunk toward the model's pooled MASE over all series
(empirical-Bayes style: `(n * own + shrink * pooled) / (n + shrink)`); every lead time weighs the same
in these scores (the errors observed by a cut-off hold more short-lead steps). The combination `combo`
is the default, and a single model replaces it only when its shrunk score is at least `margin` (5%)
lower, so few, noisy windows fall back to the combination instead of chasing noise.
"""

from __future__ import annotations

import numpy as np

from priceintel.forecast.arrays import Backtest
from priceintel.forecast.metrics import lead_balanced_scores
from priceintel.forecast.models import COMBO

SHRINK_STEPS = 50  #: default pooling: a series' own score counts like the pooled one after 50 * h points
COMBO_MARGIN = 0.05  #: a single model replaces the combination only when its backtest MASE is >= 5% lower
NO_CHOICE = -1  #: the choice of a series without evidence (or of a window that is not scored)


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
        choice[:, k] = _choose_at(bt, err, err_s, bt.seen_by(k), shrink, margin)
    return choice


def _choose_at(
    bt: Backtest, err: np.ndarray, err_s: np.ndarray, seen: np.ndarray, shrink: float, margin: float
) -> np.ndarray:
    """(S,) choices from the errors at the `seen` steps (see `choose`)."""
    # every lead time weighs the same (the goal is the MAE over the whole horizon), although the
    # errors observed by the cut-off hold more short-lead than long-lead steps
    raw, _p, _c = lead_balanced_scores(err, seen)  # (S, M)
    own, pooled, _c = lead_balanced_scores(err_s, seen)  # (S, M) own MASE, (M,) pooled MASE
    n_i = (np.isfinite(bt.actual) & seen[None]).sum(axis=(1, 2))[:, None].astype(float)
    blend = (n_i * own + shrink * pooled[None, :]) / (n_i + shrink) if shrink > 0 else own
    # series without a MASE scale (constant history) fall back to their own MAE ranking
    score = np.where(np.isfinite(own).any(axis=1)[:, None], np.where(np.isfinite(own), blend, np.nan), raw)
    score = np.where(np.isfinite(score), score, np.inf)
    best = np.argmin(score, axis=1)
    has = np.isfinite(score).any(axis=1)
    if COMBO in bt.models and margin > 0:
        # the combination is the default: a single model replaces it only when its
        # (pooled, shrunken) backtest error is at least `margin` lower
        combo_j = bt.models.index(COMBO)
        sb = score[np.arange(bt.n_series), best]
        sc_combo = score[:, combo_j]
        best = np.where(np.isfinite(sc_combo) & (sb > (1 - margin) * sc_combo), combo_j, best)
    return np.where(has, best, NO_CHOICE)
