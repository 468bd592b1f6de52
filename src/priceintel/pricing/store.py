"""Stored elasticity estimates and recommended prices (tables of migration 0007), written by the model stage
so the elasticity dashboard reads them instead of refitting demand models on every request."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel import config
from priceintel.db import queries
from priceintel.items import plain
from priceintel.pricing import recommend as pricing

__all__ = ["ESTIMATE_COLUMNS", "recommend_all", "save_elasticity", "store_model_elasticity"]

#: one recommended price per sku (recommend_all)
RECOMMENDATION_COLUMNS = [
    "sku",
    "current_price",
    "recommended_price",
    "change_pct",
    "expected_units",
    "expected_profit",
    "reason",
]
#: columns of elasticity_estimate besides run_id
ESTIMATE_COLUMNS = [
    "sku",
    "elasticity",
    "se",
    "ci_lo",
    "ci_hi",
    "elasticity_pooled",
    "ci_lo_pooled",
    "ci_hi_pooled",
    "cross_elasticity",
    "n",
    "identified",
    "note",
    *RECOMMENDATION_COLUMNS[1:],
]


def save_elasticity(
    engine: Engine,
    estimates: pd.DataFrame,
    window_start: date,
    window_end: date,
    spec: dict | None = None,
    recommendations: pd.DataFrame | None = None,
) -> int:
    """Store one elasticity run: per-sku estimates (fit_demand's `estimates`) joined with optional
    recommendations (sku, current_price, recommended_price, change_pct, expected_units, expected_profit,
    reason); returns the run id."""
    if "sku" not in estimates:
        raise ValueError(f"save_elasticity: estimates need a 'sku' column; they have {list(estimates.columns)}")
    est = estimates.copy()
    cross = [c for c in est.columns if c.startswith("cross[") and not c.endswith("_se")]
    est["cross_elasticity"] = est[cross[0]] if cross else np.nan
    notes = [c for c in ("note", "pool_note") if c in est]
    est["note"] = est[notes].fillna("").astype(str).agg("; ".join, axis=1).str.strip("; ") if notes else None
    if recommendations is not None and len(recommendations):
        est = est.merge(recommendations, on="sku", how="left")
    est = est.reindex(columns=ESTIMATE_COLUMNS)
    rows = [{k: plain(v) for k, v in rec.items()} for rec in est.to_dict("records")]
    for r in rows:
        if r["n"] is not None:
            r["n"] = int(r["n"])
        if r["identified"] is not None:
            r["identified"] = bool(r["identified"])
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.text(
                "INSERT INTO elasticity_run (window_start, window_end, spec, n_products, code_version) "
                "VALUES (:s, :e, CAST(:spec AS jsonb), :n, :v) RETURNING run_id"
            ),
            {
                "s": pd.Timestamp(window_start).date(),
                "e": pd.Timestamp(window_end).date(),
                "spec": json.dumps(spec or {}, default=str),
                "n": len(rows),
                "v": config.code_version(),
            },
        ).scalar_one()
        if rows:
            cols = ", ".join(ESTIMATE_COLUMNS)
            vals = ", ".join(f":{c}" for c in ESTIMATE_COLUMNS)
            conn.execute(
                sa.text(f"INSERT INTO elasticity_estimate (run_id, {cols}) VALUES (:run_id, {vals})"),
                [{"run_id": run_id, **r} for r in rows],
            )
    return int(run_id)


def recommend_all(
    engine: Engine,
    model,
    sales: pd.DataFrame,
    max_change: float = pricing.MAX_CHANGE,
    max_above_lowest: float = pricing.MAX_ABOVE_LOWEST,
    objective: str = "profit",
) -> pd.DataFrame:
    """The recommended price of every estimated product under `pricing.constraints_for` (the elasticity
    app's constraints: unit cost, MAP, ±max_change from our current regular price, at most max_above_lowest
    above the cheapest competitor's latest price). One row per sku; products that cannot be priced get the
    reason only."""
    costs = pd.read_sql(
        "SELECT sku, unit_cost::float8 AS unit_cost, map_price::float8 AS map_price FROM dim_product", engine
    ).set_index("sku")
    comp = queries.competitor_prices(engine, latest=True)
    comp_by_sku = {s: dict(zip(g["retailer"], g["price"])) for s, g in comp.groupby("sku")}
    current = pricing.current_regular_price(sales)
    rows = []
    notes = model.estimates.set_index("sku")["note"] if "note" in model.estimates else pd.Series(dtype=object)
    for sku in model.estimates["sku"]:
        row: dict[str, Any] = {"sku": sku, "current_price": plain(current.get(sku))}
        if sku not in model.fits:
            row["reason"] = f"no recommendation: no demand fit ({plain(notes.get(sku)) or 'too little data'})"
            rows.append(row)
            continue
        try:
            cost = costs.loc[sku]
            c = pricing.constraints_for(
                cost["unit_cost"],
                row["current_price"],
                cost["map_price"],
                comp_by_sku.get(sku, {}),
                max_change,
                max_above_lowest,
            )
            rec = pricing.recommend_for_model(model, sku, c, objective=objective)
            row.update(
                recommended_price=rec.price,
                expected_units=rec.units,
                expected_profit=rec.profit,
                reason=rec.reason,
                change_pct=(rec.price / rec.current_price - 1) * 100 if rec.current_price else None,
            )
        except (KeyError, ValueError, TypeError, pricing.PricingError) as err:
            row["reason"] = f"no recommendation: {' '.join(str(err).split())}"
        rows.append(row)
    return pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)


def store_model_elasticity(engine: Engine, model, sales: pd.DataFrame, spec: dict | None = None) -> int:
    """The model stage's hook: recommendations for every fitted product, then one stored elasticity run
    over the sales window; returns its run id."""
    recs = recommend_all(engine, model, sales)
    ds = pd.to_datetime(sales["ds"])
    return save_elasticity(engine, model.estimates, ds.min().date(), ds.max().date(), spec, recs)
