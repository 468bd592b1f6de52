"""Dashboard read layer: filters, keyset pages, chart data and headline figures for every app view.

Every query reads the app materialized views of migration 0007 (refreshed by `refresh` after each load,
forecast run and elasticity run) or the live alert view, with the filters in SQL and a unique keyset order,
so a page costs one index range scan whatever its depth. Results go through the in-process `CACHE`
keyed by `load_key(engine)`: a repeated view is instant and a new load is never hidden by the cache.
The views' specs live in `apps.specs`, the filters in `apps.filters`, chart and summary SQL in `apps.aggregates`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel.apps import aggregates
from priceintel.apps.cache import CACHE
from priceintel.apps.filters import Filters, as_date
from priceintel.apps.specs import (
    ViewSpec,
    connect,
    date_key,
    elasticity_run,
    read_frame,
    typed,
    view_spec,
    where_sql,
)
from priceintel.db import tenancy
from priceintel.db import views as db_views
from priceintel.db.queries import MATCHED

__all__ = [
    "MAX_LIMIT",
    "Page",
    "chart_frame",
    "check_filters",
    "count_rows",
    "filter_options",
    "iter_rows",
    "load_key",
    "page",
    "refresh",
    "summary",
]

#: largest page a caller may ask for
MAX_LIMIT = 1000


@dataclass
class Page:
    """One page of a view: at most `limit` typed rows, the cursor of the next page and whether it exists."""

    rows: pd.DataFrame
    next_cursor: tuple | None
    has_more: bool


# ----------------------------------------------------------------------------------- cache, load key

_LOAD_KEY_SQL = """
SELECT concat_ws('|',
    (SELECT max(refreshed_at)::text FROM app_refresh),
    (SELECT max(run_id)::text FROM pipeline_run),
    (SELECT max(finished_at)::text FROM pipeline_run),
    (SELECT max(run_id)::text FROM forecast_run),
    (SELECT max(run_id)::text FROM elasticity_run),
    (SELECT max(alert_id)::text FROM alert),
    (SELECT max(updated_at)::text FROM alert))
"""


def load_key(engine: Engine) -> str:
    """A short id of the latest data state: changes when a load, model run, alert change or refresh commits."""
    try:
        with engine.connect() as conn:
            raw = conn.execute(sa.text(_LOAD_KEY_SQL)).scalar() or ""
    except sa.exc.ProgrammingError as err:
        reason = " ".join(str(getattr(err, "orig", err)).split()).split(" LINE ")[0]
        raise ValueError(f"the database has no app views ({reason}): run `priceintel init-db`") from None
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def _cached(engine: Engine, kind: str, parts: tuple, compute: Callable[[], Any]) -> Any:
    """CACHE entry (url, tenant, load key, kind, *parts), computed on a miss: one tenant's answer is never
    another's (the API serves every tenant from one process)."""
    key = (str(engine.url), tenancy.current(), load_key(engine), kind, *parts)
    return CACHE.get_or_compute(key, compute)


# ------------------------------------------------------------------------------------ filter options


def _filter_options(engine: Engine) -> dict:
    with engine.connect() as conn:
        retailers = [
            r for (r,) in conn.execute(sa.text("SELECT DISTINCT retailer FROM mv_app_listing_span ORDER BY 1"))
        ]
        categories = [
            c
            for (c,) in conn.execute(
                sa.text(
                    "SELECT DISTINCT COALESCE(category, '(none)') FROM dim_product p WHERE EXISTS "
                    "(SELECT 1 FROM product_match m WHERE m.product_id = p.product_id "
                    f"AND m.status {MATCHED}) "
                    "ORDER BY 1"
                )
            )
        ]
        products = conn.execute(
            sa.text(
                "SELECT p.sku, p.brand, p.name FROM dim_product p WHERE EXISTS (SELECT 1 FROM product_match m "
                f"WHERE m.product_id = p.product_id AND m.status {MATCHED}) ORDER BY p.sku"
            )
        ).all()
        lo, hi = conn.execute(sa.text("SELECT min(ds), max(ds) FROM mv_app_prices_daily")).one()
        flo, fhi = conn.execute(sa.text("SELECT min(ds), max(ds) FROM mv_app_forecasts")).one()
        alo, ahi = conn.execute(sa.text("SELECT min(ds), max(ds) FROM alert")).one()
        elo, ehi = conn.execute(sa.text("SELECT min(window_start), max(window_end) FROM mv_app_elasticity")).one()
    dates = [d for d in (lo, hi, flo, fhi, alo, ahi, elo, ehi) if d is not None]
    return {
        "retailers": retailers,
        "categories": categories,
        "products": [(f"{sku} · {' '.join(x for x in (brand, name) if x)}", sku) for sku, brand, name in products],
        "min_date": min(dates) if dates else None,
        "max_date": max(dates) if dates else None,
        "date_ranges": {"prices": (lo, hi), "forecasts": (flo, fhi), "elasticity": (elo, ehi), "alerts": (alo, ahi)},
    }


def filter_options(engine: Engine) -> dict:
    """Choices for the filter widgets: retailers, categories, products as (label, sku), min/max date over
    every view, and `date_ranges`: {view: (first, last)} (forecast dates, elasticity windows, ...)."""
    return _cached(engine, "options", (), lambda: _filter_options(engine))


def check_filters(engine: Engine, filters: Filters) -> None:
    """ValueError naming the first retailer, category or sku the database does not know."""
    if not isinstance(filters, Filters):
        raise ValueError(f"filters must be a dashboard.Filters, got {type(filters).__name__}")
    opts = filter_options(engine)
    known = _cached(
        engine,
        "known",
        (),
        lambda: {
            "retailers": set(opts["retailers"]),
            "categories": set(opts["categories"]),
            "skus": {s for _, s in opts["products"]},
        },
    )
    for name in ("retailers", "categories", "skus"):
        unknown = [v for v in getattr(filters, name) if v not in known[name]]
        if unknown:
            sample = ", ".join(sorted(known[name])[:8]) or "none"
            raise ValueError(
                f"filter {name}: unknown {', '.join(map(repr, unknown))} (known: {sample}"
                f"{', …' if len(known[name]) > 8 else ''})"
            )


# ------------------------------------------------------------------------------------------- pages


def _cursor_params(spec: ViewSpec, after: Any) -> dict:
    """Bound params of a cursor; ValueError when it does not fit the view's key."""
    shape = f"({', '.join(spec.key)})"
    if not isinstance(after, (tuple, list)) or len(after) != len(spec.key):
        raise ValueError(f"cursor after={after!r} does not fit view {spec.name!r}: expected {shape}")
    out = {}
    for i, (col, value) in enumerate(zip(spec.key, after)):
        kind = spec.columns[col]
        try:
            if kind == "date":
                value = as_date(value, col)
                if value is None:
                    raise ValueError
                if spec.key_sql[i] == "neg_day":
                    value = -date_key(value)
            elif kind == "int":
                if isinstance(value, bool) or int(value) != value:
                    raise ValueError
                value = int(value)
            elif not isinstance(value, str):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(
                f"cursor after={after!r} does not fit view {spec.name!r}: {col} must be "
                f"a {'date' if kind == 'date' else kind}, expected {shape}"
            ) from None
        out[f"c{i}"] = value
    return out


def _cursor_of(spec: ViewSpec, row: pd.Series) -> tuple:
    """The cursor (plain Python values) of a result row."""
    out = []
    for col in spec.key:
        v = row[col]
        kind = spec.columns[col]
        out.append(pd.Timestamp(v).date() if kind == "date" else int(v) if kind == "int" else str(v))
    return tuple(out)


def _page_sql(spec: ViewSpec, filters: Filters, params: dict, after: Any, limit: int | None) -> str:
    """SELECT of one page (or of every row when limit is None)."""
    conds = where_sql(spec, filters, params)
    if after is not None:
        params.update(_cursor_params(spec, after))
        op = "<" if spec.descending else ">"
        lhs = ", ".join(spec.key_sql)
        rhs = ", ".join(f":c{i}" for i in range(len(spec.key)))
        conds.append(f"({lhs}) {op} ({rhs})" if len(spec.key) > 1 else f"{lhs} {op} {rhs}")
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    lim = f"LIMIT {int(limit) + 1}" if limit is not None else ""
    return f"SELECT {spec.select} FROM {spec.source} {where} ORDER BY {spec.order} {lim}"


def _check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"page limit={limit!r} must be an integer between 1 and {MAX_LIMIT}")
    return int(limit)


def _page(engine: Engine, spec: ViewSpec, filters: Filters, after: Any, limit: int) -> Page:
    params: dict = {}
    with connect(engine) as conn:
        if spec.name == "elasticity":
            params["run_id"] = elasticity_run(conn, filters)
        sql = _page_sql(spec, filters, params, after, limit)
        df = read_frame(conn, sql, params)
    has_more = len(df) > limit
    rows = typed(df.iloc[:limit], spec.columns)
    nxt = _cursor_of(spec, rows.iloc[-1]) if has_more else None
    return Page(rows=rows, next_cursor=nxt, has_more=has_more)


def page(engine: Engine, view: str, filters: Filters, after: tuple | None = None, limit: int = 50) -> Page:
    """One page of a view under the filters, in the view's unique keyset order (cached per load).

    `after` is the previous page's `next_cursor` (None: the first page). The database reads only the page:
    a keyset range scan on the view's index, `limit + 1` rows to know whether another page follows.
    """
    spec = view_spec(view)
    limit = _check_limit(limit)
    check_filters(engine, filters)
    if after is not None:
        _cursor_params(spec, after)  # validate before the cache key uses it
        after = tuple(after)
    return _cached(engine, "page", (view, filters, after, limit), lambda: _page(engine, spec, filters, after, limit))


def iter_rows(engine: Engine, view: str, filters: Filters, chunksize: int = 50_000) -> Iterator[pd.DataFrame]:
    """Every row of a view under the filters, in order, as typed frames of at most chunksize rows
    (a server-side cursor: the table is streamed, never read whole into the database client)."""
    spec = view_spec(view)
    check_filters(engine, filters)
    params: dict = {}
    with connect(engine) as conn:
        if spec.name == "elasticity":
            params["run_id"] = elasticity_run(conn, filters)
        sql = _page_sql(spec, filters, params, None, None)
        res = conn.execution_options(stream_results=True, max_row_buffer=chunksize).execute(sa.text(sql), params)
        cols = list(res.keys())
        while True:
            chunk = res.fetchmany(chunksize)
            if not chunk:
                break
            yield typed(pd.DataFrame(chunk, columns=cols), spec.columns)


def count_rows(engine: Engine, view: str, filters: Filters) -> int:
    """How many rows the view holds under the filters (from the summary, so cached and cheap)."""
    return int(summary(engine, view, filters)["rows"])


# ------------------------------------------------------------------------------------------- charts


def chart_frame(engine: Engine, view: str, filters: Filters) -> pd.DataFrame:
    """Bounded data of the view's chart (cached per load).

    prices: per day and retailer the mean price and mean gap % vs ours, plus our mean price ('ours');
    forecasts: per forecast day the selected listings' forecast with 80/95% bands (at most 24 series), or
    without products, per retailer the mean forecast change % vs the last price with mean bands;
    elasticity: per category the number of products, identified ones, mean elasticity and recommended change;
    alerts: alerts per day and severity.
    """
    view_spec(view)
    check_filters(engine, filters)
    return _cached(engine, "chart", (view, filters), lambda: aggregates.chart(engine, view, filters))


# ----------------------------------------------------------------------------------------- summary


def summary(engine: Engine, view: str, filters: Filters) -> dict:
    """Headline figures of the view under the filters (cached per load); always has `rows`.

    prices: rows, products, retailers, days, first/last day, mean price, mean gap % vs ours, in-stock and
    promo shares (without a product filter `products` counts products whose listings' observed span
    overlaps the dates); forecasts: rows, series, products, days, mean forecast change %, mean P(change),
    run; elasticity: products, identified, mean elasticity, recommended increases/decreases, window, run;
    alerts: rows by state and severity, products, first/last day.
    """
    view_spec(view)
    check_filters(engine, filters)
    return _cached(engine, "summary", (view, filters), lambda: aggregates.summary(engine, view, filters))


def refresh(
    engine: Engine, views: Iterable[str] | None = None, concurrently: bool | None = None, full: bool = False
) -> dict:
    """`db.views.refresh` (the incremental rollups and the materialized views, app_refresh stamps) and clear this
    process's cache; returns seconds per view."""
    timings = db_views.refresh(engine, views, concurrently, full=full)
    CACHE.clear()
    return timings
