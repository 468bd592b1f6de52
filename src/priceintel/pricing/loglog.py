"""Constant-elasticity demand: per-entity (`fit_loglog`) and pooled (`fit_pooled`) log-log regressions of a long
panel named by its columns, and the pricing rules that follow from one elasticity (markup rule, optimal price,
response curve)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from priceintel.pricing.panel import (
    MIN_LOG_PRICE_STD,
    ElasticityError,
    ElasticityWarning,
    check_columns,
    drop_note,
    positive_rows,
    unidentified,
)

#: columns of `fit_loglog`'s result (the entity column comes first, under its own name)
ELASTICITY_COLUMNS = [
    "elasticity",
    "se",
    "ci_lo",
    "ci_hi",
    "n",
    "price_cv",
    "identified",
    "note",
]


@dataclass(frozen=True)
class PriceRecommendation:
    """A recommended price and the reason behind it."""

    price: float
    elasticity: float
    unit_cost: float
    note: str = ""


# --- helpers -------------------------------------------------------------------------------


def _design(df: pd.DataFrame, price: str, controls: Sequence[str], fixed_effects: Sequence[str]) -> pd.DataFrame:
    """Design matrix: const, log price, controls (categoricals become dummies), FE dummies."""
    parts = [pd.Series(1.0, index=df.index, name="const"), np.log(df[price]).rename("log_price")]
    for c in controls:
        col = df[c]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            parts.append(col.astype(float).rename(c))
        else:
            parts.append(pd.get_dummies(col.astype(str), prefix=c, drop_first=True, dtype=float))
    for fe in fixed_effects:
        parts.append(pd.get_dummies(df[fe].astype(str), prefix=fe, drop_first=True, dtype=float))
    X = pd.concat(parts, axis=1)
    # a dummy level absent from this subset would be an all-zero column: drop it
    keep = (X.columns.isin(["const", "log_price"])) | (X.std(axis=0, ddof=0).to_numpy() > 0)
    return X.loc[:, keep]


def _fit_ols(y: np.ndarray, X: pd.DataFrame, groups: np.ndarray | None):
    """OLS with HC1 (or cluster-robust when `groups` is given) standard errors."""
    import statsmodels.api as sm

    model = sm.OLS(y, X.to_numpy(dtype=float))
    if groups is not None:
        return model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    return model.fit(cov_type="HC1")


def with_day_of_week(panel: pd.DataFrame, date: str = "ds", name: str = "dow") -> pd.DataFrame:
    """Copy of `panel` with a day-of-week column (0=Mon) for use as a fixed effect."""
    check_columns(panel, [date], "with_day_of_week")
    out = panel.copy()
    out[name] = pd.to_datetime(out[date]).dt.dayofweek
    return out


# --- per-entity and pooled fits ---------------------------------------------------------------


def fit_loglog(
    panel: pd.DataFrame,
    entity: str = "sku",
    price: str = "price",
    quantity: str = "units",
    controls: Sequence[str] = (),
    fixed_effects: Sequence[str] = (),
    cluster: str | None = None,
    min_log_price_std: float = MIN_LOG_PRICE_STD,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-entity OLS of log(quantity) on log(price) + controls + FE dummies, robust SEs."""
    controls, fixed_effects = list(controls), list(fixed_effects)
    cols = [entity, price, quantity, *controls, *fixed_effects] + ([cluster] if cluster else [])
    check_columns(panel, cols, "fit_loglog")

    rows = []
    for key, grp in panel.groupby(entity, sort=True, dropna=True):
        df, zero_q, bad = positive_rows(grp, price, quantity)
        notes = drop_note(zero_q, bad)
        df = df.dropna(subset=[*controls, *fixed_effects] + ([cluster] if cluster else []))
        n = len(df)
        lp = np.log(df[price].to_numpy()) if n else np.array([])
        price_cv = float(df[price].std(ddof=0) / df[price].mean()) if n else float("nan")
        res: dict[str, Any] = dict(
            elasticity=np.nan, se=np.nan, ci_lo=np.nan, ci_hi=np.nan, n=n, price_cv=price_cv, identified=False
        )
        X = _design(df, price, controls, fixed_effects) if n else None
        why = unidentified(n, lp.std() if n else float("nan"), X, min_log_price_std)
        if why is not None or X is None:
            notes.append(why or "no usable rows")
        else:
            groups = pd.factorize(df[cluster])[0] if cluster else None
            fit = _fit_ols(np.log(df[quantity].to_numpy()), X, groups)
            b, se = float(fit.params[1]), float(fit.bse[1])
            lo, hi = (float(v) for v in np.asarray(fit.conf_int(alpha))[1])
            res.update(elasticity=b, se=se, ci_lo=lo, ci_hi=hi, identified=True)
            if b >= 0:
                notes.append("non-negative elasticity: check for confounding (promotions, seasonality)")
        res["note"] = "; ".join(notes)
        rows.append({entity: key, **res})
    out = pd.DataFrame(rows, columns=[entity, *ELASTICITY_COLUMNS])
    return out.astype({"n": "int64", "identified": bool})


def fit_pooled(
    panel: pd.DataFrame,
    price: str = "price",
    quantity: str = "units",
    controls: Sequence[str] = (),
    fixed_effects: Sequence[str] = (),
    cluster: str | None = None,
    alpha: float = 0.05,
) -> dict:
    """One elasticity for the whole panel: log(q) ~ log(p) + controls + FE, HC1 or clustered SE."""
    controls, fixed_effects = list(controls), list(fixed_effects)
    cols = [price, quantity, *controls, *fixed_effects] + ([cluster] if cluster else [])
    check_columns(panel, cols, "fit_pooled")
    df, zero_q, bad = positive_rows(panel, price, quantity)
    notes = drop_note(zero_q, bad)
    df = df.dropna(subset=[*controls, *fixed_effects] + ([cluster] if cluster else []))
    if len(df) == 0:
        raise ElasticityError(f"fit_pooled: no rows with positive {price!r} and {quantity!r}")
    lp_std = float(np.log(df[price]).std(ddof=0))
    if lp_std < MIN_LOG_PRICE_STD:
        raise ElasticityError(
            f"fit_pooled: price variation too small to identify (std of log {price!r} = {lp_std:.4f})"
        )
    X = _design(df, price, controls, fixed_effects)
    if len(df) <= X.shape[1]:
        raise ElasticityError(f"fit_pooled: {len(df)} rows for {X.shape[1]} parameters")
    groups = pd.factorize(df[cluster])[0] if cluster else None
    fit = _fit_ols(np.log(df[quantity].to_numpy()), X, groups)
    ci = np.asarray(fit.conf_int(alpha))[1]
    return dict(
        elasticity=float(fit.params[1]),
        se=float(fit.bse[1]),
        ci_lo=float(ci[0]),
        ci_hi=float(ci[1]),
        n=int(len(df)),
        n_params=int(X.shape[1]),
        r2=float(fit.rsquared),
        cov_type="cluster" if cluster else "HC1",
        n_clusters=int(groups.max() + 1) if groups is not None else None,
        note="; ".join(notes),
    )


# --- pricing rules ---------------------------------------------------------------------------


def recommend_price(
    elasticity: float, unit_cost: float, bounds: tuple[float, float] | None = None
) -> PriceRecommendation:
    """Profit-maximising price under constant elasticity, clipped to bounds, with a note."""
    e, c = float(elasticity), float(unit_cost)
    if not np.isfinite(e):
        raise ElasticityError(f"recommend_price: elasticity {elasticity!r} is not a finite number")
    if not np.isfinite(c) or c <= 0:
        raise ElasticityError(f"recommend_price: unit_cost {unit_cost!r} must be a positive number")
    lo, hi = (None, None) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if lo is not None and hi is not None and not lo <= hi:
        raise ElasticityError(f"recommend_price: bounds {bounds!r} are not (low, high) with low <= high")
    if e >= -1:
        if hi is None:
            raise ElasticityError(
                f"recommend_price: elasticity {e:.3f} is inelastic (>= -1); profit grows without "
                "bound in price, so an upper bound is required"
            )
        return PriceRecommendation(hi, e, c, f"inelastic demand (elasticity {e:.3f} >= -1): upper bound returned")
    p = c * e / (1 + e)
    note = f"markup rule p = c*e/(1+e) = {p:.4f}"
    if lo is not None and p < lo:
        p, note = lo, note + f"; clipped to lower bound {lo}"
    elif hi is not None and p > hi:
        p, note = hi, note + f"; clipped to upper bound {hi}"
    return PriceRecommendation(float(p), e, c, note)


def optimal_price(elasticity: float, unit_cost: float, bounds: tuple[float, float] | None = None) -> float:
    """Constant-elasticity optimal price c*e/(1+e) (e < -1) clipped to bounds; warns when inelastic."""
    rec = recommend_price(elasticity, unit_cost, bounds)
    if rec.elasticity >= -1:
        warnings.warn(rec.note, ElasticityWarning, stacklevel=2)
    return rec.price


def response_curve(
    elasticity: float,
    ref_price: float,
    ref_units: float,
    unit_cost: float,
    prices: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Units, revenue and profit over `prices` under constant elasticity through (ref_price, ref_units)."""
    if not (np.isfinite(ref_price) and ref_price > 0):
        raise ElasticityError(f"response_curve: ref_price {ref_price!r} must be positive")
    p = np.asarray(prices, dtype=float)
    if (p <= 0).any() or not np.isfinite(p).all():
        raise ElasticityError("response_curve: prices must be finite and positive")
    units = float(ref_units) * (p / float(ref_price)) ** float(elasticity)
    return pd.DataFrame({"price": p, "units": units, "revenue": p * units, "profit": (p - float(unit_cost)) * units})
