"""P(the price changes within the horizon): a pooled table over promo state x steps since the last change x
the series' own change rate, learned from every series' history up to each cut-off (the constant pooled
rate instead when it scored better on the latest h origins before the cut-off).

Forward-filled (missing) periods are marked by clean_series and never counted as an unchanged price:
labels spanning one are left out of training and scoring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from priceintel.forecast.columns import ID
from priceintel.forecast.models import PROMO_TOL

PRIOR_STRENGTH = 20.0  #: pseudo-steps of the pooled change rate added to every series' own count
CHANGE_TOL = 0.005  #: a move of more than half a cent is a change
CHANGE_RUN_EDGES = (1, 2, 4, 8, 16, 32)  #: bins of the steps since the last change
CHANGE_EXP_EDGES = (0.3, 1.0)  #: bins of the series' own expected changes per horizon so far
CHANGE_CELLS = 2 * (len(CHANGE_RUN_EDGES) + 1) * (len(CHANGE_EXP_EDGES) + 1)
CHANGE_PRIOR = 20.0  #: pseudo-origins of the pooled share added to every cell
MIN_HELD_OUT = 20  #: fewest held-out labels to check the table against the constant rate
CHANGE_COLUMNS = [ID, "window", "cutoff", "p_change", "p_base", "p_share", "changed", "evaluated"]


def _changes(y: np.ndarray, tol: float = CHANGE_TOL) -> np.ndarray:
    """Boolean: did the value change at each step (beyond half a cent)?"""
    return np.abs(np.diff(y)) > tol


def change_probability(y: np.ndarray, h: int, prior_rate: float, strength: float = PRIOR_STRENGTH) -> float:
    """P(the value changes within h steps): shrunken per-step change rate, 1 - (1 - p)^h."""
    c = _changes(np.asarray(y, dtype=float))
    p = (c.sum() + prior_rate * strength) / (len(c) + strength)
    return float(1 - (1 - p) ** h)


def observed_steps(n: int, imputed: np.ndarray | None = None) -> np.ndarray:
    """(n - 1,) booleans: step t -> t + 1 joins two observed (not forward-filled) values."""
    if imputed is None or n < 2:
        return np.ones(max(n - 1, 0), bool)
    imp = np.asarray(imputed, bool)
    return ~imp[1:] & ~imp[:-1]


def change_features(
    y: np.ndarray, h: int, window: int, tol: float = CHANGE_TOL, imputed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per origin t (causal: uses y[:t+1] only) the state cell, and whether y changed in (t, t+h].

    Cell = promo state (last value more than PROMO_TOL below the max of the last `window` values) x
    steps since the last change (binned) x the series' own change rate so far times h (binned).
    The label is NaN where t + h is past the data, and where any of y[t..t+h] is `imputed`
    (forward-filled: whether the price moved there is unknown, so it is not counted as unchanged);
    the own change rate counts only steps between two observed values.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    ch = np.r_[False, np.abs(np.diff(y)) > tol]
    valid = np.r_[False, observed_steps(n, imputed)]
    idx = np.arange(n)
    run = idx - np.maximum.accumulate(np.where(ch, idx, 0))
    pad = np.r_[np.full(max(window, 1) - 1, -np.inf), y]
    reg = sliding_window_view(pad, max(window, 1)).max(axis=1)
    promo = y < reg * (1 - PROMO_TOL)
    cum = np.cumsum(ch)
    rate = np.cumsum(ch & valid) / np.maximum(np.cumsum(valid), 1)
    cell = (promo.astype(int) * (len(CHANGE_RUN_EDGES) + 1) + np.digitize(run, CHANGE_RUN_EDGES)) * (
        len(CHANGE_EXP_EDGES) + 1
    ) + np.digitize(rate * h, CHANGE_EXP_EDGES)
    label = np.full(n, np.nan)
    if n > h:
        label[: n - h] = (cum[h:] - cum[: n - h]) > 0
        if imputed is not None:
            imp = np.cumsum(np.r_[0, np.asarray(imputed, bool)])  # imputed count before each index
            gap = (imp[h + 1 :] - imp[: n - h]) > 0  # any imputed value in y[t..t+h]
            label[: n - h][gap] = np.nan
    return cell, label


def _change_table(feats: list, ends: list, h: int, upto: int = 0) -> tuple[np.ndarray, float]:
    """Pooled change share per cell from origins whose h-step future ends before each series' end
    (minus `upto` more steps, to hold the most recent origins out)."""
    cut = [max(e - h - upto, 0) for e in ends]
    cells = np.concatenate([c[:m] for (c, _l), m in zip(feats, cut)] or [np.zeros(0, int)])
    labels = np.concatenate([lab[:m] for (_c, lab), m in zip(feats, cut)] or [np.zeros(0)])
    ok = np.isfinite(labels)
    cells, labels = cells[ok].astype(int), labels[ok]
    share = float(labels.mean()) if len(labels) else 0.0
    n = np.bincount(cells, minlength=CHANGE_CELLS)
    k = np.bincount(cells, weights=labels, minlength=CHANGE_CELLS)
    return (k + CHANGE_PRIOR * share) / (n + CHANGE_PRIOR), share


def _change_model(feats: list, ends: list, h: int, p_base: float) -> tuple[np.ndarray | None, float]:
    """The cell table, or None when the constant rate `p_base` predicted the most recent h origins of
    every series better (Brier): the table is fitted on earlier origins and checked on those."""
    held = [
        (c[max(e - 2 * h, 0) : max(e - h, 0)], lab[max(e - 2 * h, 0) : max(e - h, 0)])
        for (c, lab), e in zip(feats, ends)
    ]
    cells = np.concatenate([c for c, _ in held] or [np.zeros(0, int)]).astype(int)
    labels = np.concatenate([lab for _, lab in held] or [np.zeros(0)])
    ok = np.isfinite(labels)
    table, share = _change_table(feats, ends, h)
    if ok.sum() >= MIN_HELD_OUT:
        early, _ = _change_table(feats, ends, h, upto=h)
        if np.mean((early[cells[ok]] - labels[ok]) ** 2) > np.mean((p_base - labels[ok]) ** 2):
            return None, share
    return table, share


def _fit(ends: list, feats: dict, obs: dict, h: int) -> tuple[np.ndarray | None, float, float]:
    """(table or None, pooled share, constant rate p_base) from the series' histories up to their `ends`
    ((uid, y, end) triples): p_base = 1 - (1 - r)^h with r the pooled per-step change rate over
    observed steps."""
    n_ch = sum(int((_changes(y[:e]) & obs[u][: e - 1]).sum()) for u, y, e in ends)
    n_st = sum(int(obs[u][: e - 1].sum()) for u, y, e in ends)
    rate = n_ch / n_st if n_st else 0.0
    p_base = 1 - (1 - rate) ** h
    table, share = _change_model([feats[u] for u, _, _ in ends], [e for _, _, e in ends], h, p_base)
    return table, share, p_base


def _features(items: list, h: int, window: int, imputed: dict) -> tuple[dict, dict]:
    """Per series: (cells, labels) and the observed steps."""
    feats = {s.uid: change_features(s.y, h, window, imputed=imputed.get(s.uid)) for s in items}
    obs = {s.uid: observed_steps(len(s.y), imputed.get(s.uid)) for s in items}
    return feats, obs


def change_backtest(items: list, cutoffs: list, h: int, window: int = 14, imputed: dict | None = None) -> pd.DataFrame:
    """Change probability at every cut-off vs whether the value changed in the next h steps.

    `items`: the tournament's series (uid, y, ends: training length per cut-off). `p_change`: pooled
    state-cell table (change_features) learned from every series' history up to the cut-off;
    baselines: `p_base` (pooled per-step rate r, 1 - (1 - r)^h) and `p_share` (pooled share of past
    h-step spans with a change, no state).
    """
    rows = []
    imputed = imputed or {}
    feats, obs = _features(items, h, window, imputed)
    for k in range(len(cutoffs)):
        ends = [(s.uid, s.y, s.ends[k]) for s in items if s.ends[k] >= 3]
        if not ends:
            continue
        table, share, p_base = _fit(ends, feats, obs, h)
        for u, y, e in ends:
            fut = y[e - 1 : e + h]
            imp = imputed.get(u)
            gap = bool(imp is not None and np.asarray(imp[e - 1 : e + h], bool).any())
            rows.append(
                {
                    ID: u,
                    "window": k,
                    "cutoff": cutoffs[k],
                    "p_change": float(table[feats[u][0][e - 1]]) if table is not None else p_base,
                    "p_base": p_base,
                    "p_share": share,
                    "changed": float(_changes(fut).any()) if len(fut) > 1 and not gap else np.nan,
                    "evaluated": k > 0 and len(fut) == h + 1 and not gap,
                }
            )
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def final_change(items: list, h: int, window: int, imputed: dict | None = None) -> dict[str, float]:
    """P(change within h steps after the last value) per series, from every series' whole history."""
    imputed = imputed or {}
    feats, obs = _features(items, h, window, imputed)
    table, _share, p_base = _fit([(s.uid, s.y, len(s.y)) for s in items], feats, obs, h)
    return {u: float(table[feats[u][0][-1]]) if table is not None else p_base for u in feats}
