"""The bounded aggregates of every dashboard view: its chart data and its headline figures, one SQL statement
per view (and filter shape) over the app views, with the filters applied in SQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel.apps.filters import Filters
from priceintel.apps.specs import SPECS, ViewSpec, connect, date_key, elasticity_run, read_frame, typed, where_sql
from priceintel.forecast.columns import BOUNDS
from priceintel.forecast.store import sql_names

#: series drawn per chart at most when products are selected
MAX_CHART_SERIES = 24

CHART_COLUMNS = {
    "prices": {"ds": "date", "series": "str", "mean_price": "float", "mean_gap_pct": "float", "n": "int"},
    "forecasts": {
        "ds": "date",
        "series": "str",
        "value": "float",
        **dict.fromkeys(BOUNDS, "float"),
        "n": "int",
    },
    "elasticity": {
        "category": "str",
        "n_products": "int",
        "n_identified": "int",
        "mean_elasticity": "float",
        "mean_change_pct": "float",
        "n_increase": "int",
        "n_decrease": "int",
    },
    "alerts": {"ds": "date", "series": "str", "n": "int"},
}


def _conditions(terms: list[tuple[str, str, Any]], params: dict) -> str:
    """'WHERE …' of the (condition, param, value) terms whose value is set (binding it), or '' without any."""
    conds = []
    for cond, name, value in terms:
        if value:
            conds.append(cond)
            params[name] = value
    return f"WHERE {' AND '.join(conds)}" if conds else ""


def _daily_where(filters: Filters, params: dict) -> str:
    """WHERE of mv_app_prices_daily for date, retailer and category filters."""
    f = filters
    return _conditions(
        [
            ("date_key >= :k_start", "k_start", f.start and date_key(f.start)),
            ("date_key <= :k_end", "k_end", f.end and date_key(f.end)),
            ("retailer = ANY(:retailers)", "retailers", list(f.retailers)),
            ("category = ANY(:categories)", "categories", list(f.categories)),
        ],
        params,
    )


def _where_clause(spec: ViewSpec, filters: Filters, params: dict) -> str:
    """'WHERE …' of the filters of a view (empty without any)."""
    conds = where_sql(spec, filters, params)
    return f"WHERE {' AND '.join(conds)}" if conds else ""


# ------------------------------------------------------------------------------------------- charts


def _prices_chart_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    if not filters.skus:  # the daily rollup: one row per day, retailer and category
        where = _daily_where(filters, params)
        return f"""
                SELECT ds, retailer AS series, sum(price_sum) / NULLIF(sum(n_priced), 0) AS mean_price,
                       sum(gap_sum) / NULLIF(sum(n_gap), 0) AS mean_gap_pct, sum(n_rows) AS n
                FROM mv_app_prices_daily {where} GROUP BY ds, retailer
                UNION ALL
                SELECT ds, 'ours', sum(ours_sum) / NULLIF(sum(n_ours), 0), 0, sum(n_ours)
                FROM mv_app_prices_daily {where} GROUP BY ds
                ORDER BY 1, 2"""
    where = " AND ".join(where_sql(spec, filters, params))
    return f"""
                SELECT ds, retailer AS series, avg(price) AS mean_price, avg(gap_pct) AS mean_gap_pct,
                       count(*) AS n
                FROM mv_app_prices WHERE {where} GROUP BY ds, retailer
                UNION ALL
                SELECT ds, 'ours', avg(our_price), 0, count(our_price)
                FROM (SELECT DISTINCT ds, sku, our_price FROM mv_app_prices WHERE {where}) o GROUP BY ds
                ORDER BY 1, 2"""


#: every bound as a mean % change against the last price ("lo-80" in, "lo-80" out)
_relative_bounds = ",\n".join(f'avg(("{b}" / NULLIF(last_price, 0) - 1) * 100) AS "{b}"' for b in BOUNDS)


def _forecasts_chart_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    if filters.skus:  # the selected listings' own forecasts
        where = " AND ".join(where_sql(spec, filters, params))
        return f"""
                SELECT ds, unique_id AS series, yhat AS value, {sql_names(list(BOUNDS))}, 1 AS n
                FROM mv_app_forecasts
                WHERE {where} AND unique_id IN (SELECT DISTINCT unique_id FROM mv_app_forecasts WHERE {where}
                                                ORDER BY unique_id LIMIT {MAX_CHART_SERIES})
                ORDER BY 2, 1"""
    where = _where_clause(spec, filters, params)
    return f"""
                SELECT ds, retailer AS series, avg(change_pct) AS value,
                       {_relative_bounds}, count(*) AS n
                FROM mv_app_forecasts {where} GROUP BY ds, retailer ORDER BY 2, 1"""


def _elasticity_chart_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    where = " AND ".join(where_sql(spec, filters, params))
    return f"""
                SELECT category, count(*) AS n_products, count(*) FILTER (WHERE identified) AS n_identified,
                       avg(COALESCE(elasticity_pooled, elasticity)) AS mean_elasticity,
                       avg(change_pct) AS mean_change_pct,
                       count(*) FILTER (WHERE change_pct > 0) AS n_increase,
                       count(*) FILTER (WHERE change_pct < 0) AS n_decrease
                FROM mv_app_elasticity WHERE {where} GROUP BY category ORDER BY category"""


def _alerts_chart_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    where = _where_clause(spec, filters, params)
    return f"SELECT ds, severity AS series, count(*) AS n FROM v_app_alerts {where} GROUP BY 1, 2 ORDER BY 1, 2"


_CHART_SQL = {
    "prices": _prices_chart_sql,
    "forecasts": _forecasts_chart_sql,
    "elasticity": _elasticity_chart_sql,
    "alerts": _alerts_chart_sql,
}


def chart(engine: Engine, view: str, filters: Filters) -> pd.DataFrame:
    """The chart data of a view (CHART_COLUMNS), uncached (see queries.chart_frame)."""
    params: dict = {}
    with connect(engine) as conn:
        if view == "elasticity":
            params["run_id"] = elasticity_run(conn, filters)
        sql = _CHART_SQL[view](SPECS[view], filters, params)
        df = read_frame(conn, sql, params)
    return typed(df, CHART_COLUMNS[view])


# ----------------------------------------------------------------------------------------- summary


def _num(v: Any) -> Any:
    """Plain Python number/date (None for NULL/NaN)."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        return None if np.isnan(v) else round(float(v), 4)
    if hasattr(v, "__int__") and not isinstance(v, (date, bool)):
        try:
            return int(v) if float(v) == int(v) else round(float(v), 4)
        except (TypeError, ValueError):
            return v
    return v


def _span_products(conn, filters: Filters) -> int:
    """Products with a matched listing whose observed span overlaps the date filter (retailer/category too)."""
    f = filters
    p2: dict[str, Any] = {}
    w = _conditions(
        [
            ("last_ds >= :s", "s", f.start),
            ("first_ds <= :e", "e", f.end),
            ("retailer = ANY(:r)", "r", list(f.retailers)),
            ("category = ANY(:c)", "c", list(f.categories)),
        ],
        p2,
    )
    return conn.execute(sa.text(f"SELECT count(DISTINCT product_id) FROM mv_app_listing_span {w}"), p2).scalar()


def _prices_summary_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    if not filters.skus:  # the daily rollup (`products` is counted from the listings' spans)
        where = _daily_where(filters, params)
        return f"""
                SELECT COALESCE(sum(n_rows), 0) AS rows, count(DISTINCT retailer) AS retailers,
                       count(DISTINCT ds) AS days, min(ds) AS first_day, max(ds) AS last_day,
                       sum(price_sum) / NULLIF(sum(n_priced), 0) AS mean_price,
                       sum(gap_sum) / NULLIF(sum(n_gap), 0) AS mean_gap_pct,
                       sum(n_in_stock)::float8 / NULLIF(sum(n_rows), 0) AS in_stock_share,
                       sum(n_promo)::float8 / NULLIF(sum(n_rows), 0) AS promo_share
                FROM mv_app_prices_daily {where}"""
    where = " AND ".join(where_sql(spec, filters, params))
    return f"""
                SELECT count(*) AS rows, count(DISTINCT sku) AS products, count(DISTINCT retailer) AS retailers,
                       count(DISTINCT ds) AS days, min(ds) AS first_day, max(ds) AS last_day,
                       avg(price) AS mean_price, avg(gap_pct) AS mean_gap_pct,
                       avg(in_stock::int)::float8 AS in_stock_share, avg(promo::int)::float8 AS promo_share
                FROM mv_app_prices WHERE {where}"""


def _forecasts_summary_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    where = _where_clause(spec, filters, params)
    # hash aggregates per series first: count(DISTINCT) over every forecast row would sort them
    return f"""
                SELECT COALESCE(sum(n), 0) AS rows, count(*) AS series, count(DISTINCT sku) AS products,
                       (SELECT count(*) FROM (SELECT DISTINCT ds FROM mv_app_forecasts {where}) d) AS days,
                       min(lo) AS first_day, max(hi) AS last_day,
                       sum(change_sum) / NULLIF(sum(change_n), 0) AS mean_change_pct,
                       avg(p_change) AS mean_p_change, max(run_id) AS run_id
                FROM (SELECT unique_id, sku, count(*) AS n, min(ds) AS lo, max(ds) AS hi,
                             sum(change_pct) AS change_sum, count(change_pct) AS change_n,
                             max(p_change) AS p_change, max(run_id) AS run_id
                      FROM mv_app_forecasts {where} GROUP BY unique_id, sku) s"""


def _elasticity_summary_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    where = " AND ".join(where_sql(spec, filters, params))
    return f"""
                SELECT count(*) AS rows, count(*) AS products, count(*) FILTER (WHERE identified) AS identified,
                       avg(COALESCE(elasticity_pooled, elasticity)) AS mean_elasticity,
                       count(*) FILTER (WHERE change_pct > 0) AS price_increases,
                       count(*) FILTER (WHERE change_pct < 0) AS price_decreases,
                       avg(change_pct) AS mean_change_pct, min(window_start) AS window_start,
                       max(window_end) AS window_end, max(run_id) AS run_id
                FROM mv_app_elasticity WHERE {where}"""


def _alerts_summary_sql(spec: ViewSpec, filters: Filters, params: dict) -> str:
    where = _where_clause(spec, filters, params)
    return f"""
                SELECT count(*) AS rows, count(*) FILTER (WHERE state = 'new') AS new,
                       count(*) FILTER (WHERE state = 'acknowledged') AS acknowledged,
                       count(*) FILTER (WHERE state = 'resolved') AS resolved,
                       count(*) FILTER (WHERE severity = 'critical') AS critical,
                       count(*) FILTER (WHERE severity = 'warning') AS warning,
                       count(DISTINCT sku) AS products, min(ds) AS first_day, max(ds) AS last_day
                FROM v_app_alerts {where}"""


_SUMMARY_SQL = {
    "prices": _prices_summary_sql,
    "forecasts": _forecasts_summary_sql,
    "elasticity": _elasticity_summary_sql,
    "alerts": _alerts_summary_sql,
}


def summary(engine: Engine, view: str, filters: Filters) -> dict:
    """The headline figures of a view as plain Python values, uncached (see queries.summary)."""
    params: dict = {}
    with connect(engine) as conn:
        if view == "elasticity":
            params["run_id"] = elasticity_run(conn, filters)
        sql = _SUMMARY_SQL[view](SPECS[view], filters, params)
        out = dict(conn.execute(sa.text(sql), params).mappings().one())
        if view == "prices" and not filters.skus:
            out["products"] = _span_products(conn, filters)
    return {k: _num(v) for k, v in out.items()}
