"""Read-side queries for analytics and apps: catalogue, price history, latest prices, counts."""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel.db.errors import QueryError
from priceintel.items import MATCHED_STATUSES

__all__ = [
    "MATCHED",
    "OURS",
    "TABLES",
    "category_listings",
    "competitor_prices",
    "list_products",
    "price_history",
    "price_history_json",
    "latest_prices",
    "latest_prices_json",
    "read_json",
    "our_category_prices",
    "price_vs_ours",
    "daily_price_stats",
    "table_counts",
]

#: SQL condition on product_match.status for a listing matched to a product: `pm.status {MATCHED}`
MATCHED = "IN (" + ", ".join(f"'{s}'" for s in MATCHED_STATUSES) + ")"
#: every stored price with its listing (l), retailer (r), day (d) and, when matched, our product (pm, p): the
#: FROM clause of the queries that start from prices (alert detection, lineage)
PRICE_STAR = f"""fact_price fp
JOIN dim_listing l ON l.listing_id = fp.listing_id
JOIN dim_retailer r ON r.retailer_id = l.retailer_id
JOIN dim_date d ON d.date_key = fp.date_key
LEFT JOIN product_match pm ON pm.listing_id = fp.listing_id AND pm.status {MATCHED}
LEFT JOIN dim_product p ON p.product_id = pm.product_id"""
#: the prices of competitor listings matched to our products, with their product (p), listing (l), retailer (r)
#: and day (d): the FROM clause of every matched-price query
_MATCHED_PRICES = f"""FROM dim_product p
        JOIN product_match pm ON pm.product_id = p.product_id AND pm.status {MATCHED}
        JOIN fact_price fp ON fp.listing_id = pm.listing_id
        JOIN dim_listing l ON l.listing_id = fp.listing_id
        JOIN dim_retailer r ON r.retailer_id = l.retailer_id
        JOIN dim_date d ON d.date_key = fp.date_key"""
#: retailer label of our own price series in `price_history`
OURS = "ours"
#: tables of the star schema, dimensions first
TABLES = [
    "dim_date",
    "dim_retailer",
    "dim_product",
    "dim_listing",
    "product_match",
    "scrape_run",
    "pipeline_run",
    "fact_price",
    "fact_sales",
    "scrape_error",
    "import_run",
    "watch",
    "watch_fetch",
    "dim_listing_history",
    "load_watermark",
]


def _read(engine: Engine, sql: str, params: dict | None = None, dates: tuple[str, ...] = ("ds",)) -> pd.DataFrame:
    """Run sql into a frame; `dates` columns become datetime64[ns]."""
    with engine.connect() as conn:
        df = pd.read_sql(sa.text(sql), conn, params=params or {})
    for col in dates:
        if col in df:
            df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
    return df


def _sku_filter(sku: str | None, alias: str = "sku") -> str:
    """WHERE fragment for an optional sku parameter."""
    return f"WHERE {alias} = :sku" if sku is not None else ""


#: whether the product `:sku` exists (in the caller's tenant)
_SKU_EXISTS = "EXISTS (SELECT 1 FROM dim_product WHERE sku = :sku)"


def _unknown_sku(sku: str) -> QueryError:
    return QueryError(f"unknown sku {sku!r}: it is not in dim_product")


def _require_sku(engine: Engine, sku: str) -> None:
    """Raise QueryError when sku is not in dim_product."""
    with engine.connect() as conn:
        found = conn.execute(sa.text(f"SELECT {_SKU_EXISTS}"), {"sku": sku}).scalar()
    if not found:
        raise _unknown_sku(sku)


def list_products(engine: Engine) -> pd.DataFrame:
    """Our catalogue with the number of matched (auto/confirmed) competitor listings, by sku."""
    return _read(
        engine,
        f"""
        SELECT p.product_id, p.sku, p.name, p.brand, p.category, p.gtin, p.mpn, p.size,
               p.unit_cost::float8 AS unit_cost, p.map_price::float8 AS map_price, p.msrp::float8 AS msrp,
               count(pm.listing_id) AS n_listings
        FROM dim_product p
        LEFT JOIN product_match pm ON pm.product_id = p.product_id AND pm.status {MATCHED}
        GROUP BY p.product_id ORDER BY p.sku""",
        dates=(),
    )


def _history_query(sku: str, start: date | str | None, end: date | str | None) -> tuple[str, dict]:
    """(SQL, params) of `price_history`."""
    params = {
        "sku": sku,
        "start": pd.Timestamp(start).date() if start is not None else None,
        "end": pd.Timestamp(end).date() if end is not None else None,
    }
    window = (
        "(CAST(:start AS date) IS NULL OR d.date >= CAST(:start AS date)) "
        "AND (CAST(:end AS date) IS NULL OR d.date <= CAST(:end AS date))"
    )
    sql = f"""
        SELECT r.retailer, l.item_id, d.date AS ds, fp.price::float8 AS price, fp.in_stock, fp.promo
        {_MATCHED_PRICES}
        WHERE p.sku = :sku AND {window}
        UNION ALL
        SELECT '{OURS}', NULL, d.date, fs.price::float8, true, fs.promo
        FROM dim_product p
        JOIN fact_sales fs ON fs.product_id = p.product_id
        JOIN dim_date d ON d.date_key = fs.date_key
        WHERE p.sku = :sku AND {window}
        ORDER BY 1, 2, 3"""
    return sql, params


def price_history(
    engine: Engine, sku: str, start: date | str | None = None, end: date | str | None = None
) -> pd.DataFrame:
    """Daily prices of sku: each matched competitor listing plus our own price (retailer 'ours').

    Columns: retailer, item_id, ds, price, in_stock, promo; sorted by retailer, item_id, ds.
    """
    _require_sku(engine, sku)
    sql, params = _history_query(sku, start, end)
    return _read(engine, sql, params).reset_index(drop=True)


def price_history_json(engine: Engine, sku: str, start: date | str | None = None, end: date | str | None = None) -> str:
    """`price_history` as a JSON array of objects, built by PostgreSQL (days as YYYY-MM-DD); the sku checked in
    the same statement (one round trip: the API's most asked-for route)."""
    out = read_json(engine, *_history_query(sku, start, end), order_by="retailer, item_id, ds", only_if=_SKU_EXISTS)
    if out is None:
        raise _unknown_sku(sku)
    return out


_LATEST = """
        SELECT listing_id, retailer, item_id, url, title, sku, match_status, ds, observed_at,
               price::float8 AS price, list_price::float8 AS list_price, currency, in_stock, promo
        FROM v_latest_price {where}
        ORDER BY retailer, item_id"""


def latest_prices(engine: Engine, sku: str | None = None) -> pd.DataFrame:
    """Latest observation per listing (v_latest_price), optionally only the listings matched to sku."""
    return _read(engine, _LATEST.format(where=_sku_filter(sku)), {"sku": sku})


def latest_prices_json(engine: Engine, sku: str | None = None) -> str:
    """`latest_prices` as a JSON array of objects, built by PostgreSQL."""
    return read_json(engine, _LATEST.format(where=_sku_filter(sku)), {"sku": sku}, order_by="retailer, item_id") or "[]"


def read_json(
    engine: Engine, sql: str, params: dict | None = None, order_by: str = "", only_if: str = ""
) -> str | None:
    """The rows of a SELECT as a JSON array of objects, encoded by PostgreSQL: dates as YYYY-MM-DD, timestamps
    ISO 8601 in UTC (`+00:00`), NULL as null (what an API answers without building a frame). `order_by` (output
    column names) orders the array; an aggregate keeps a subquery's order only in practice, not by promise.
    `only_if`: an SQL condition checked in the same statement; None when it is false.

    One statement in one transaction: the session's time zone is set to UTC only when the server did not
    already report a UTC zone for the connection (PostgreSQL sends it at connect and on every change)."""
    order = f" ORDER BY {', '.join(f't.{c.strip()}' for c in order_by.split(','))}" if order_by.strip() else ""
    array = f"coalesce(json_agg(t{order}), '[]'::json)::text"
    wrapped = f"SELECT {f'CASE WHEN {only_if} THEN {array} END' if only_if else array} FROM ({sql}) t"
    with engine.begin() as conn:
        if not _session_in_utc(conn):
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        return conn.execute(sa.text(wrapped), params or {}).scalar_one()


#: time zone names PostgreSQL reports for UTC itself (no offset, no daylight saving)
_UTC_ZONES = frozenset({"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"})


def _session_in_utc(conn: sa.Connection) -> bool:
    """Whether the connection's session time zone is UTC, from the parameter status the server reported (no
    round trip); False when the driver does not say."""
    info = getattr(conn.connection.dbapi_connection, "info", None)
    status = getattr(info, "parameter_status", None)
    return status is not None and status("TimeZone") in _UTC_ZONES


def price_vs_ours(engine: Engine, sku: str | None = None) -> pd.DataFrame:
    """Our price vs each competitor's per product and day (v_price_vs_ours), price_index = theirs / ours."""
    return _read(
        engine,
        f"""
        SELECT sku, ds, retailer, listing_id, our_price::float8 AS our_price,
               competitor_price::float8 AS competitor_price, price_index, in_stock, promo
        FROM v_price_vs_ours {_sku_filter(sku)}
        ORDER BY sku, ds, retailer, listing_id""",
        {"sku": sku},
    )


def daily_price_stats(engine: Engine, sku: str | None = None) -> pd.DataFrame:
    """Min/median/max competitor price and retailer count per product and day (v_daily_price_stats)."""
    return _read(
        engine,
        f"""
        SELECT sku, ds, min_price::float8 AS min_price, median_price::float8 AS median_price,
               max_price::float8 AS max_price, n_retailers, n_listings
        FROM v_daily_price_stats {_sku_filter(sku)}
        ORDER BY sku, ds""",
        {"sku": sku},
    )


def table_counts(engine: Engine) -> dict[str, int]:
    """Row count of every star-schema table."""
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in TABLES)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(sql)).all()
    except sa.exc.ProgrammingError as err:
        reason = " ".join(str(getattr(err, "orig", err)).split())
        raise QueryError(f"the database has no priceintel schema ({reason}): run `priceintel init-db`") from None
    return {name: int(n) for name, n in rows}


#: `priceintel prices latest`: one row per active watch, its listing's latest observation and the watch status
LATEST_WATCHED_COLUMNS = [
    "retailer",
    "url",
    "sku",
    "price",
    "currency",
    "in_stock",
    "observed_at",
    "watch_status",
    "status_reason",
]


def latest_watched(engine: Engine) -> pd.DataFrame:
    """The latest observation of every watched page (active watches; price NULL when none was stored yet)."""
    sql = """
        SELECT w.retailer, w.url, COALESCE(w.sku, p.sku) AS sku, f.price::float8 AS price, f.currency,
               f.in_stock, f.observed_at, w.status AS watch_status, w.status_reason
        FROM watch w
        LEFT JOIN LATERAL (
            SELECT l.listing_id FROM dim_listing l JOIN dim_retailer r USING (retailer_id)
            WHERE l.url = w.url ORDER BY (r.retailer = w.retailer) DESC, l.last_seen DESC NULLS LAST LIMIT 1
        ) l ON true
        LEFT JOIN LATERAL (
            SELECT fp.price, fp.currency, fp.in_stock, fp.observed_at FROM fact_price fp
            WHERE fp.listing_id = l.listing_id ORDER BY fp.date_key DESC LIMIT 1
        ) f ON true
        LEFT JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status {matched}
        LEFT JOIN dim_product p ON p.product_id = pm.product_id
        WHERE w.active
        ORDER BY w.retailer, w.url"""
    df = _read(engine, sql.format(matched=MATCHED), dates=())
    df["observed_at"] = pd.to_datetime(df["observed_at"], utc=True)
    return df[LATEST_WATCHED_COLUMNS]


def category_listings(engine: Engine) -> pd.DataFrame:
    """Every competitor listing with its latest price and category: our product's when it is matched, else the
    one the classifier gave it (dim_listing.category, NULL when none was confident). Columns retailer, item_id,
    sku (matched only), category, matched, price."""
    sql = f"""
        SELECT DISTINCT ON (l.listing_id) r.retailer, l.item_id, p.sku, COALESCE(p.category, l.category) AS category,
               (p.product_id IS NOT NULL) AS matched, f.price::float8 AS price
        FROM dim_listing l JOIN dim_retailer r USING (retailer_id)
        LEFT JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status {MATCHED}
        LEFT JOIN dim_product p ON p.product_id = pm.product_id
        LEFT JOIN LATERAL (
            SELECT fp.price FROM fact_price fp
            WHERE fp.listing_id = l.listing_id AND fp.price IS NOT NULL ORDER BY fp.date_key DESC LIMIT 1
        ) f ON true
        ORDER BY l.listing_id"""
    df = _read(engine, sql, dates=())
    return df.sort_values(["retailer", "item_id"]).reset_index(drop=True)


def our_category_prices(engine: Engine) -> pd.DataFrame:
    """Our products' current prices by category: sku, category, price (the latest sales price, else the
    catalogue's own price)."""
    sql = """
        SELECT p.sku, p.category, COALESCE(s.price, p.own_price)::float8 AS price
        FROM dim_product p
        LEFT JOIN LATERAL (
            SELECT fs.price FROM fact_sales fs
            WHERE fs.product_id = p.product_id AND fs.price IS NOT NULL ORDER BY fs.date_key DESC LIMIT 1
        ) s ON true
        ORDER BY p.sku"""
    return _read(engine, sql, dates=())


def competitor_prices(engine: Engine, latest: bool = False) -> pd.DataFrame:
    """Prices of every competitor listing matched to one of our products: sku, retailer, ds, price (days without a
    price left out); `latest=True` keeps each (sku, retailer)'s most recent price only."""
    pick = "DISTINCT ON (p.sku, r.retailer)" if latest else ""
    order = "p.sku, r.retailer, fp.date_key DESC" if latest else "p.sku, r.retailer, fp.date_key"
    return _read(
        engine,
        f"""
        SELECT {pick} p.sku, r.retailer, d.date AS ds, fp.price::float8 AS price
        {_MATCHED_PRICES}
        WHERE fp.price IS NOT NULL
        ORDER BY {order}""",
    )
