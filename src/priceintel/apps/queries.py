"""Dashboard read layer: filters, keyset pages, chart data and headline figures for every app view.

Every query reads the app materialized views of migration 0007 (refreshed by `refresh` after each load,
forecast run and elasticity run) or the live alert view, with the filters in SQL and a unique keyset order,
so a page costs one index range scan whatever its depth. Results go through the in-process `CACHE`
keyed by `load_key(engine)`: a repeated view is instant and a new load is never hidden by the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel.apps.cache import CACHE
from priceintel.db import views as db_views
from priceintel.db.queries import MATCHED
from priceintel.db.views import MATERIALIZED

__all__ = [
    "MATERIALIZED",
    "MAX_LIMIT",
    "SPECS",
    "VIEWS",
    "Filters",
    "Page",
    "ViewSpec",
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

#: the app views, in menu order
VIEWS = ("prices", "forecasts", "elasticity", "alerts")
#: largest page a caller may ask for
MAX_LIMIT = 1000
#: series drawn per chart at most when products are selected
MAX_CHART_SERIES = 24


# ------------------------------------------------------------------------------------------- filters


def _as_date(value: Any, name: str) -> date | None:
    """None, a date, a datetime/Timestamp or an ISO string → date; anything else is a ValueError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"filter {name}={value!r} is not a date (use a date or 'YYYY-MM-DD')")


def _as_names(value: Any, name: str) -> tuple[str, ...]:
    """None/''/a string/an iterable of strings → a sorted tuple of distinct non-empty strings."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    try:
        items = list(items)
    except TypeError:
        raise ValueError(f"filter {name}={value!r} is not a list of names") from None
    out = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"filter {name} holds {item!r}, which is not a non-empty name")
        out.add(item.strip())
    return tuple(sorted(out))


@dataclass(frozen=True)
class Filters:
    """What every view is filtered by; empty tuples mean "all". Hashable (a cache-key part).

    Dates are inclusive; strings 'YYYY-MM-DD' and lists are accepted and normalised (names sorted).
    """

    start: date | None = None
    end: date | None = None
    retailers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            object.__setattr__(self, name, _as_date(getattr(self, name), name))
        for name in ("retailers", "categories", "skus"):
            object.__setattr__(self, name, _as_names(getattr(self, name), name))
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"filter start {self.start} is after filter end {self.end}")

    def describe(self) -> list[tuple[str, str]]:
        """(label, value) pairs for reports and exports."""

        def names(v: tuple[str, ...]) -> str:
            return ", ".join(v) if v else "all"

        return [
            ("from", str(self.start) if self.start else "first day"),
            ("to", str(self.end) if self.end else "last day"),
            ("retailers", names(self.retailers)),
            ("categories", names(self.categories)),
            ("products", names(self.skus)),
        ]


@dataclass
class Page:
    """One page of a view: at most `limit` typed rows, the cursor of the next page and whether it exists."""

    rows: pd.DataFrame
    next_cursor: tuple | None
    has_more: bool


# ------------------------------------------------------------------------------------------ views


@dataclass(frozen=True)
class ViewSpec:
    """How one view is read: source relation, typed columns, keyset order and filterable columns."""

    name: str
    source: str
    columns: dict[str, str]  # output column -> dtype kind (date|ts|str|float|int|bool)
    key: tuple[str, ...]  # cursor columns (output names), unique together
    key_sql: tuple[str, ...]  # their SQL expressions in the keyset comparison (same order)
    order: str  # ORDER BY clause (matches key_sql and an index)
    descending: bool  # keyset comparison is < instead of >
    date_sql: str | None  # column the date filter applies to (None: handled by the view)
    category_sql: str | None = "category"
    retailer_sql: str | None = "retailer"

    @property
    def select(self) -> str:
        """The SELECT list."""
        return ", ".join(self.columns)


SPECS: dict[str, ViewSpec] = {
    "prices": ViewSpec(
        "prices",
        "mv_app_prices",
        {
            "ds": "date",
            "retailer": "str",
            "sku": "str",
            "name": "str",
            "brand": "str",
            "category": "str",
            "item_id": "str",
            "price": "float",
            "currency": "str",
            "in_stock": "bool",
            "promo": "bool",
            "our_price": "float",
            "gap_pct": "float",
            "listing_id": "int",
        },
        key=("ds", "sku", "retailer", "listing_id"),
        key_sql=("neg_day", "sku", "retailer", "listing_id"),
        order="neg_day, sku, retailer, listing_id",
        descending=False,
        date_sql="neg_day",
    ),
    "forecasts": ViewSpec(
        "forecasts",
        "mv_app_forecasts",
        {
            "ds": "date",
            "retailer": "str",
            "sku": "str",
            "name": "str",
            "brand": "str",
            "category": "str",
            "item_id": "str",
            "unique_id": "str",
            "chosen_model": "str",
            "yhat": "float",
            "lo_80": "float",
            "hi_80": "float",
            "lo_95": "float",
            "hi_95": "float",
            "last_ds": "date",
            "last_price": "float",
            "change_pct": "float",
            "p_change": "float",
            "run_id": "int",
        },
        key=("sku", "retailer", "unique_id", "ds"),
        key_sql=("sku", "retailer", "unique_id", "ds"),
        order="sku, retailer, unique_id, ds",
        descending=False,
        date_sql="ds",
    ),
    "elasticity": ViewSpec(
        "elasticity",
        "mv_app_elasticity",
        {
            "sku": "str",
            "name": "str",
            "brand": "str",
            "category": "str",
            "elasticity": "float",
            "ci_lo": "float",
            "ci_hi": "float",
            "elasticity_pooled": "float",
            "ci_lo_pooled": "float",
            "ci_hi_pooled": "float",
            "cross_elasticity": "float",
            "n": "int",
            "identified": "bool",
            "unit_cost": "float",
            "current_price": "float",
            "recommended_price": "float",
            "change_pct": "float",
            "expected_units": "float",
            "expected_profit": "float",
            "reason": "str",
            "note": "str",
            "window_start": "date",
            "window_end": "date",
            "run_id": "int",
        },
        key=("sku",),
        key_sql=("sku",),
        order="sku",
        descending=False,
        date_sql=None,
        retailer_sql=None,
    ),
    "alerts": ViewSpec(
        "alerts",
        "v_app_alerts",
        {
            "alert_id": "int",
            "ds": "date",
            "severity": "str",
            "state": "str",
            "kind": "str",
            "rule": "str",
            "retailer": "str",
            "item_id": "str",
            "sku": "str",
            "name": "str",
            "brand": "str",
            "category": "str",
            "price": "float",
            "reference_price": "float",
            "value": "float",
            "reason": "str",
            "created_at": "ts",
        },
        key=("ds", "alert_id"),
        key_sql=("ds", "alert_id"),
        order="ds DESC, alert_id DESC",
        descending=True,
        date_sql="ds",
        category_sql="COALESCE(category, '(none)')",
    ),  # as the other views name no category
}

_DTYPES = {"date": "datetime64[ns]", "str": object, "float": "float64", "int": "Int64", "bool": "boolean"}


def _spec(view: str) -> ViewSpec:
    """The spec of a view name; ValueError naming the known views otherwise."""
    spec = SPECS.get(view) if isinstance(view, str) else None
    if spec is None:
        raise ValueError(f"unknown view {view!r}: expected one of {', '.join(VIEWS)}")
    return spec


def _typed(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Frame with exactly `columns` in order and their dtypes (dates datetime64, ints Int64, bools boolean)."""
    out = pd.DataFrame(index=df.index)
    for col, kind in columns.items():
        s = df[col] if col in df else pd.Series([None] * len(df), index=df.index, dtype=object)
        if kind == "date":
            s = pd.to_datetime(s).astype("datetime64[ns]")
        elif kind == "ts":
            s = pd.to_datetime(s, utc=True)
        elif kind == "float":
            s = pd.to_numeric(s, errors="coerce").astype("float64")
        elif kind in ("int", "bool"):
            s = s.astype(_DTYPES[kind])
        else:
            s = s.astype(object).where(s.notna(), None)
        out[col] = s
    return out.reset_index(drop=True)


def _date_key(d: date) -> int:
    """dim_date.date_key of a date (YYYYMMDD)."""
    return d.year * 10000 + d.month * 100 + d.day


def _where(spec: ViewSpec, filters: Filters, params: dict, alias: str = "") -> list[str]:
    """SQL conditions (and bound params) of the filters for one view."""
    a = f"{alias}." if alias else ""
    out: list[str] = []
    if spec.date_sql == "neg_day":
        if filters.start:
            out.append(f"{a}neg_day <= :neg_start")
            params["neg_start"] = -_date_key(filters.start)
        if filters.end:
            out.append(f"{a}neg_day >= :neg_end")
            params["neg_end"] = -_date_key(filters.end)
    elif spec.date_sql:
        if filters.start:
            out.append(f"{a}{spec.date_sql} >= :start")
            params["start"] = filters.start
        if filters.end:
            out.append(f"{a}{spec.date_sql} <= :end")
            params["end"] = filters.end
    for values, col, pname in (
        (filters.retailers, spec.retailer_sql, "retailers"),
        (filters.categories, spec.category_sql, "categories"),
        (filters.skus, "sku", "skus"),
    ):
        if not values:
            continue
        if col is None:  # elasticity: products with a matched listing at one of the retailers
            out.append(
                f"EXISTS (SELECT 1 FROM mv_app_listing_span s WHERE s.sku = {a}sku AND s.retailer = ANY(:{pname}))"
            )
        elif len(values) == 1:
            out.append(f"{a}{col} = :{pname}")
        else:
            out.append(f"{a}{col} = ANY(:{pname})")
        params[pname] = values[0] if (col is not None and len(values) == 1) else list(values)
    if spec.name == "elasticity":
        out.append(f"{a}run_id = :run_id")
    return out


def _elasticity_run(conn, filters: Filters) -> int | None:
    """The latest elasticity run whose estimation window overlaps the date filter."""
    sql = (
        "SELECT max(run_id) FROM elasticity_run er WHERE (CAST(:s AS date) IS NULL OR window_end >= :s) "
        "AND (CAST(:e AS date) IS NULL OR window_start <= :e) "
        "AND EXISTS (SELECT 1 FROM mv_app_elasticity m WHERE m.run_id = er.run_id)"
    )
    return conn.execute(sa.text(sql), {"s": filters.start, "e": filters.end}).scalar()


def _connect(engine: Engine):
    """A connection with custom plans forced (filters differ in selectivity: a generic plan can be slow)."""
    conn = engine.connect()
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    return conn


def _read(conn, sql: str, params: dict) -> pd.DataFrame:
    """Rows of sql as a frame (column names from the cursor)."""
    res = conn.execute(sa.text(sql), params)
    return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


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
    """CACHE entry (url, load key, kind, *parts), computed on a miss."""
    key = (str(engine.url), load_key(engine), kind, *parts)
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
                value = _as_date(value, col)
                if value is None:
                    raise ValueError
                if spec.key_sql[i] == "neg_day":
                    value = -_date_key(value)
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
    conds = _where(spec, filters, params)
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
    with _connect(engine) as conn:
        if spec.name == "elasticity":
            params["run_id"] = _elasticity_run(conn, filters)
        sql = _page_sql(spec, filters, params, after, limit)
        df = _read(conn, sql, params)
    has_more = len(df) > limit
    rows = _typed(df.iloc[:limit], spec.columns)
    nxt = _cursor_of(spec, rows.iloc[-1]) if has_more else None
    return Page(rows=rows, next_cursor=nxt, has_more=has_more)


def page(engine: Engine, view: str, filters: Filters, after: tuple | None = None, limit: int = 50) -> Page:
    """One page of a view under the filters, in the view's unique keyset order (cached per load).

    `after` is the previous page's `next_cursor` (None: the first page). The database reads only the page:
    a keyset range scan on the view's index, `limit + 1` rows to know whether another page follows.
    """
    spec = _spec(view)
    limit = _check_limit(limit)
    check_filters(engine, filters)
    if after is not None:
        _cursor_params(spec, after)  # validate before the cache key uses it
        after = tuple(after)
    return _cached(engine, "page", (view, filters, after, limit), lambda: _page(engine, spec, filters, after, limit))


def iter_rows(engine: Engine, view: str, filters: Filters, chunksize: int = 50_000) -> Iterator[pd.DataFrame]:
    """Every row of a view under the filters, in order, as typed frames of at most chunksize rows
    (a server-side cursor: the table is streamed, never read whole into the database client)."""
    spec = _spec(view)
    check_filters(engine, filters)
    params: dict = {}
    with _connect(engine) as conn:
        if spec.name == "elasticity":
            params["run_id"] = _elasticity_run(conn, filters)
        sql = _page_sql(spec, filters, params, None, None)
        res = conn.execution_options(stream_results=True, max_row_buffer=chunksize).execute(sa.text(sql), params)
        cols = list(res.keys())
        while True:
            chunk = res.fetchmany(chunksize)
            if not chunk:
                break
            yield _typed(pd.DataFrame(chunk, columns=cols), spec.columns)


def count_rows(engine: Engine, view: str, filters: Filters) -> int:
    """How many rows the view holds under the filters (from the summary, so cached and cheap)."""
    return int(summary(engine, view, filters)["rows"])


# ------------------------------------------------------------------------------------------- charts

_CHART_COLUMNS = {
    "prices": {"ds": "date", "series": "str", "mean_price": "float", "mean_gap_pct": "float", "n": "int"},
    "forecasts": {
        "ds": "date",
        "series": "str",
        "value": "float",
        "lo_80": "float",
        "hi_80": "float",
        "lo_95": "float",
        "hi_95": "float",
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


def _daily_where(filters: Filters, params: dict) -> str:
    """WHERE of mv_app_prices_daily for date, retailer and category filters."""
    conds = []
    if filters.start:
        conds.append("date_key >= :k_start")
        params["k_start"] = _date_key(filters.start)
    if filters.end:
        conds.append("date_key <= :k_end")
        params["k_end"] = _date_key(filters.end)
    if filters.retailers:
        conds.append("retailer = ANY(:retailers)")
        params["retailers"] = list(filters.retailers)
    if filters.categories:
        conds.append("category = ANY(:categories)")
        params["categories"] = list(filters.categories)
    return f"WHERE {' AND '.join(conds)}" if conds else ""


def _chart(engine: Engine, view: str, filters: Filters) -> pd.DataFrame:
    spec = SPECS[view]
    params: dict = {}
    with _connect(engine) as conn:
        if view == "prices" and not filters.skus:
            where = _daily_where(filters, params)
            sql = f"""
                SELECT ds, retailer AS series, sum(price_sum) / NULLIF(sum(n_priced), 0) AS mean_price,
                       sum(gap_sum) / NULLIF(sum(n_gap), 0) AS mean_gap_pct, sum(n_rows) AS n
                FROM mv_app_prices_daily {where} GROUP BY ds, retailer
                UNION ALL
                SELECT ds, 'ours', sum(ours_sum) / NULLIF(sum(n_ours), 0), 0, sum(n_ours)
                FROM mv_app_prices_daily {where} GROUP BY ds
                ORDER BY 1, 2"""
        elif view == "prices":
            where = " AND ".join(_where(spec, filters, params))
            sql = f"""
                SELECT ds, retailer AS series, avg(price) AS mean_price, avg(gap_pct) AS mean_gap_pct,
                       count(*) AS n
                FROM mv_app_prices WHERE {where} GROUP BY ds, retailer
                UNION ALL
                SELECT ds, 'ours', avg(our_price), 0, count(our_price)
                FROM (SELECT DISTINCT ds, sku, our_price FROM mv_app_prices WHERE {where}) o GROUP BY ds
                ORDER BY 1, 2"""
        elif view == "forecasts" and filters.skus:
            where = " AND ".join(_where(spec, filters, params))
            sql = f"""
                SELECT ds, unique_id AS series, yhat AS value, lo_80, hi_80, lo_95, hi_95, 1 AS n
                FROM mv_app_forecasts
                WHERE {where} AND unique_id IN (SELECT DISTINCT unique_id FROM mv_app_forecasts WHERE {where}
                                                ORDER BY unique_id LIMIT {MAX_CHART_SERIES})
                ORDER BY 2, 1"""
        elif view == "forecasts":
            conds = _where(spec, filters, params)
            where = f"WHERE {' AND '.join(conds)}" if conds else ""
            sql = f"""
                SELECT ds, retailer AS series, avg(change_pct) AS value,
                       avg((lo_80 / NULLIF(last_price, 0) - 1) * 100) AS lo_80,
                       avg((hi_80 / NULLIF(last_price, 0) - 1) * 100) AS hi_80,
                       avg((lo_95 / NULLIF(last_price, 0) - 1) * 100) AS lo_95,
                       avg((hi_95 / NULLIF(last_price, 0) - 1) * 100) AS hi_95, count(*) AS n
                FROM mv_app_forecasts {where} GROUP BY ds, retailer ORDER BY 2, 1"""
        elif view == "elasticity":
            params["run_id"] = _elasticity_run(conn, filters)
            where = " AND ".join(_where(spec, filters, params))
            sql = f"""
                SELECT category, count(*) AS n_products, count(*) FILTER (WHERE identified) AS n_identified,
                       avg(COALESCE(elasticity_pooled, elasticity)) AS mean_elasticity,
                       avg(change_pct) AS mean_change_pct,
                       count(*) FILTER (WHERE change_pct > 0) AS n_increase,
                       count(*) FILTER (WHERE change_pct < 0) AS n_decrease
                FROM mv_app_elasticity WHERE {where} GROUP BY category ORDER BY category"""
        else:
            conds = _where(spec, filters, params)
            where = f"WHERE {' AND '.join(conds)}" if conds else ""
            sql = f"SELECT ds, severity AS series, count(*) AS n FROM v_app_alerts {where} GROUP BY 1, 2 ORDER BY 1, 2"
        df = _read(conn, sql, params)
    return _typed(df, _CHART_COLUMNS[view])


def chart_frame(engine: Engine, view: str, filters: Filters) -> pd.DataFrame:
    """Bounded data of the view's chart (cached per load).

    prices: per day and retailer the mean price and mean gap % vs ours, plus our mean price ('ours');
    forecasts: per forecast day the selected listings' forecast with 80/95% bands (at most 24 series), or
    without products, per retailer the mean forecast change % vs the last price with mean bands;
    elasticity: per category the number of products, identified ones, mean elasticity and recommended change;
    alerts: alerts per day and severity.
    """
    _spec(view)
    check_filters(engine, filters)
    return _cached(engine, "chart", (view, filters), lambda: _chart(engine, view, filters))


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


def _summary(engine: Engine, view: str, filters: Filters) -> dict:
    spec = SPECS[view]
    params: dict = {}
    with _connect(engine) as conn:
        if view == "prices" and not filters.skus:
            where = _daily_where(filters, params)
            row = (
                conn.execute(
                    sa.text(f"""
                SELECT COALESCE(sum(n_rows), 0) AS rows, count(DISTINCT retailer) AS retailers,
                       count(DISTINCT ds) AS days, min(ds) AS first_day, max(ds) AS last_day,
                       sum(price_sum) / NULLIF(sum(n_priced), 0) AS mean_price,
                       sum(gap_sum) / NULLIF(sum(n_gap), 0) AS mean_gap_pct,
                       sum(n_in_stock)::float8 / NULLIF(sum(n_rows), 0) AS in_stock_share,
                       sum(n_promo)::float8 / NULLIF(sum(n_rows), 0) AS promo_share
                FROM mv_app_prices_daily {where}"""),
                    params,
                )
                .mappings()
                .one()
            )
            out = dict(row)
            span = []
            p2: dict = {}
            if filters.start:
                span.append("last_ds >= :s")
                p2["s"] = filters.start
            if filters.end:
                span.append("first_ds <= :e")
                p2["e"] = filters.end
            if filters.retailers:
                span.append("retailer = ANY(:r)")
                p2["r"] = list(filters.retailers)
            if filters.categories:
                span.append("category = ANY(:c)")
                p2["c"] = list(filters.categories)
            w = f"WHERE {' AND '.join(span)}" if span else ""
            out["products"] = conn.execute(
                sa.text(f"SELECT count(DISTINCT product_id) FROM mv_app_listing_span {w}"), p2
            ).scalar()
        elif view == "prices":
            where = " AND ".join(_where(spec, filters, params))
            out = dict(
                conn.execute(
                    sa.text(f"""
                SELECT count(*) AS rows, count(DISTINCT sku) AS products, count(DISTINCT retailer) AS retailers,
                       count(DISTINCT ds) AS days, min(ds) AS first_day, max(ds) AS last_day,
                       avg(price) AS mean_price, avg(gap_pct) AS mean_gap_pct,
                       avg(in_stock::int)::float8 AS in_stock_share, avg(promo::int)::float8 AS promo_share
                FROM mv_app_prices WHERE {where}"""),
                    params,
                )
                .mappings()
                .one()
            )
        elif view == "forecasts":
            conds = _where(spec, filters, params)
            where = f"WHERE {' AND '.join(conds)}" if conds else ""
            # hash aggregates per series first: count(DISTINCT) over every forecast row would sort them
            out = dict(
                conn.execute(
                    sa.text(f"""
                SELECT COALESCE(sum(n), 0) AS rows, count(*) AS series, count(DISTINCT sku) AS products,
                       (SELECT count(*) FROM (SELECT DISTINCT ds FROM mv_app_forecasts {where}) d) AS days,
                       min(lo) AS first_day, max(hi) AS last_day,
                       sum(change_sum) / NULLIF(sum(change_n), 0) AS mean_change_pct,
                       avg(p_change) AS mean_p_change, max(run_id) AS run_id
                FROM (SELECT unique_id, sku, count(*) AS n, min(ds) AS lo, max(ds) AS hi,
                             sum(change_pct) AS change_sum, count(change_pct) AS change_n,
                             max(p_change) AS p_change, max(run_id) AS run_id
                      FROM mv_app_forecasts {where} GROUP BY unique_id, sku) s"""),
                    params,
                )
                .mappings()
                .one()
            )
        elif view == "elasticity":
            params["run_id"] = _elasticity_run(conn, filters)
            where = " AND ".join(_where(spec, filters, params))
            out = dict(
                conn.execute(
                    sa.text(f"""
                SELECT count(*) AS rows, count(*) AS products, count(*) FILTER (WHERE identified) AS identified,
                       avg(COALESCE(elasticity_pooled, elasticity)) AS mean_elasticity,
                       count(*) FILTER (WHERE change_pct > 0) AS price_increases,
                       count(*) FILTER (WHERE change_pct < 0) AS price_decreases,
                       avg(change_pct) AS mean_change_pct, min(window_start) AS window_start,
                       max(window_end) AS window_end, max(run_id) AS run_id
                FROM mv_app_elasticity WHERE {where}"""),
                    params,
                )
                .mappings()
                .one()
            )
        else:
            conds = _where(spec, filters, params)
            where = f"WHERE {' AND '.join(conds)}" if conds else ""
            out = dict(
                conn.execute(
                    sa.text(f"""
                SELECT count(*) AS rows, count(*) FILTER (WHERE state = 'new') AS new,
                       count(*) FILTER (WHERE state = 'acknowledged') AS acknowledged,
                       count(*) FILTER (WHERE state = 'resolved') AS resolved,
                       count(*) FILTER (WHERE severity = 'critical') AS critical,
                       count(*) FILTER (WHERE severity = 'warning') AS warning,
                       count(DISTINCT sku) AS products, min(ds) AS first_day, max(ds) AS last_day
                FROM v_app_alerts {where}"""),
                    params,
                )
                .mappings()
                .one()
            )
    return {k: _num(v) for k, v in out.items()}


def summary(engine: Engine, view: str, filters: Filters) -> dict:
    """Headline figures of the view under the filters (cached per load); always has `rows`.

    prices: rows, products, retailers, days, first/last day, mean price, mean gap % vs ours, in-stock and
    promo shares (without a product filter `products` counts products whose listings' observed span
    overlaps the dates); forecasts: rows, series, products, days, mean forecast change %, mean P(change),
    run; elasticity: products, identified, mean elasticity, recommended increases/decreases, window, run;
    alerts: rows by state and severity, products, first/last day.
    """
    _spec(view)
    check_filters(engine, filters)
    return _cached(engine, "summary", (view, filters), lambda: _summary(engine, view, filters))


# ------------------------------------------------------------------------------------------ refresh


def refresh(engine: Engine, views: Iterable[str] | None = None, concurrently: bool | None = None) -> dict:
    """`db.views.refresh` (the app materialized views, ANALYZE, app_refresh stamp) and clear this process's cache;
    returns seconds per view."""
    timings = db_views.refresh(engine, views, concurrently)
    CACHE.clear()
    return timings
