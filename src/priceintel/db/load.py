"""Loaders: validate a frame, COPY it into a TEMP staging table, then `INSERT … ON CONFLICT`.

Every loader takes a SQLAlchemy `Connection` inside a transaction (`with engine.begin() as conn`),
so callers can bundle several loads in one transaction. Loads are idempotent: re-loading the same
frame inserts and updates nothing (updates fire only when a value `IS DISTINCT FROM` the stored
one). Bad rows raise `LoadError` naming table, column, count and the first offending rows before
any target table is touched; the caller's transaction then rolls back.
Each loader returns counts `{"staged": n, "inserted": i, "updated": u}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

import priceintel
from priceintel.db.errors import LoadError
from priceintel.items import jsonable, to_json

__all__ = [
    "LoadError",
    "HUMAN_STATUSES",
    "MATCH_STATUSES",
    "RUN_STATUSES",
    "ensure_dates",
    "upsert_retailers",
    "upsert_products",
    "upsert_listings",
    "load_matches",
    "load_prices",
    "load_sales",
    "start_run",
    "finish_run",
    "record_scrape_run",
    "record_errors",
]

#: product_match statuses; the human ones are never overwritten by automatic matches
MATCH_STATUSES = ("auto", "review", "confirmed", "rejected")
HUMAN_STATUSES = ("confirmed", "rejected")
RUN_STATUSES = ("running", "success", "failed")
#: how many offending rows an error message shows
SHOW_ROWS = 5
_MAX_NUMERIC = 1e10  # numeric(12,2) holds |x| < 10^10


@dataclass(frozen=True)
class Col:
    """A staged column: frame name, kind (text|num|int|bool|date|ts), Postgres type, constraints."""

    name: str
    kind: str
    pgtype: str
    required: bool = False
    nonneg: bool = False


# --------------------------------------------------------------------------- validation


def _show(df: pd.DataFrame, mask: pd.Series, cols: Sequence[str]) -> list[dict]:
    """First offending rows as dicts (frame index as `row`) for error messages."""
    shown = [c for c in dict.fromkeys(cols) if c in df.columns]
    out = []
    for idx, rec in df.loc[mask, shown].head(SHOW_ROWS).iterrows():
        out.append({"row": idx, **{k: (None if _isna(v) else jsonable(v)) for k, v in rec.items()}})
    return out


def _isna(v: Any) -> bool:
    """True for None, NaN, NaT and pd.NA (scalars only)."""
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _bad(table: str, column: str, problem: str, df: pd.DataFrame, mask: pd.Series, keys: Sequence[str]) -> LoadError:
    """LoadError: '<table>.<column>: n row(s) <problem>; first rows: [...]'."""
    n = int(mask.sum())
    rows = _show(df, mask, [*keys, column])
    return LoadError(f"{table}.{column}: {n} row(s) {problem}; first rows: {rows}")


def _text(s: pd.Series) -> pd.Series:
    """Object series of str/None (integral floats like 12.0 → '12')."""
    mask = s.notna()
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s.astype(object).where(mask, None)

    def conv(v: Any) -> str | None:
        if _isna(v):
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        if isinstance(v, np.generic):
            v = v.item()
        return str(v)

    return s.map(conv).astype(object)


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _bool(s: pd.Series) -> pd.Series:
    """Object series of True/False/None; unparseable values become the string '?bad'."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype(object)

    def conv(v: Any) -> Any:
        if _isna(v):
            return None
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            return v.strip().lower() in _TRUE
        return "?bad"

    return s.map(conv).astype(object)


def _prepare(df: pd.DataFrame, table: str, cols: Sequence[Col], keys: Sequence[str]) -> tuple[list[Col], pd.DataFrame]:
    """Validate and convert the frame's columns for COPY; return (present columns, converted frame)."""
    if not isinstance(df, pd.DataFrame):
        raise LoadError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c.name for c in cols if c.required and c.name not in df.columns]
    if missing:
        raise LoadError(f"{table}: input frame lacks required column(s) {missing}; it has {list(df.columns)}")
    present = [c for c in cols if c.name in df.columns]
    out = {}
    for col in present:
        s = df[col.name]
        given = s.notna()
        if col.kind == "text":
            conv = _text(s)
            if col.required:
                given = given & conv.map(lambda v: v is None or v.strip() != "")
                conv = conv.where(given, None)
        elif col.kind in ("num", "int"):
            num = pd.to_numeric(s, errors="coerce").astype(float)
            ok = num.notna() & np.isfinite(num) & (num.abs() < _MAX_NUMERIC)
            if col.kind == "int":
                ok &= num.round() == num
            bad = given & ~ok
            if bad.any():
                what = "an integer" if col.kind == "int" else "a finite number below 1e10"
                raise _bad(table, col.name, f"with a value that is not {what}", df, bad, keys)
            if col.nonneg and (num < 0).any():
                raise _bad(table, col.name, "with a negative value", df, num < 0, keys)
            conv = num.astype(object).where(ok, None)
            if col.kind == "int":
                conv = conv.map(lambda v: None if v is None else int(v))
        elif col.kind == "bool":
            conv = _bool(s)
            bad = conv.map(lambda v: isinstance(v, str))
            if bad.any():
                raise _bad(table, col.name, "with a value that is not a boolean", df, bad, keys)
        elif col.kind in ("date", "ts"):
            ts = (
                pd.to_datetime(s, errors="coerce", utc=(col.kind == "ts"), format="mixed")
                if not pd.api.types.is_datetime64_any_dtype(s)
                else s
            )
            if col.kind == "ts":
                ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
            bad = given & ts.isna()
            if bad.any():
                raise _bad(
                    table,
                    col.name,
                    f"with a value that is not a {'date' if col.kind == 'date' else 'timestamp'}",
                    df,
                    bad,
                    keys,
                )
            if ts.dt.tz is not None:  # ts: UTC wall time; date: the local calendar day
                ts = ts.dt.tz_convert(None) if col.kind == "ts" else ts.dt.tz_localize(None)
            naive = ts.to_numpy("datetime64[us]")
            text = np.datetime_as_string(naive, unit="D" if col.kind == "date" else "us")
            if col.kind == "ts":
                text = np.char.add(text, "+00:00")
            conv = pd.Series(text, index=df.index, dtype=object).where(ts.notna(), None)
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown column kind {col.kind!r}")
        if col.required:
            nulls = conv.isna()
            if nulls.any():
                raise _bad(
                    table, col.name, "with a missing value (NaN/None/empty) in a NOT NULL column", df, nulls, keys
                )
        out[col.name] = conv
    return present, pd.DataFrame(out, index=df.index)


def _check_unique(table: str, df: pd.DataFrame, conv: pd.DataFrame, keys: Sequence[str], what: str) -> None:
    """Raise LoadError when the (converted) frame holds the same key twice."""
    dup = conv.duplicated(list(keys), keep=False)
    if dup.any():
        raise LoadError(
            f"{table}: {int(dup.sum())} row(s) repeat the key ({', '.join(keys)}) — {what}; "
            f"first rows: {_show(df, dup, keys)}"
        )


def _check_currency(table: str, df: pd.DataFrame, conv: pd.DataFrame, keys: Sequence[str]) -> None:
    """Currency must be an ISO-4217 code (3 upper-case letters) and present whenever a price is."""
    if "currency" not in conv:
        if "price" in conv and conv["price"].notna().any():
            raise LoadError(f"{table}.currency: input frame has prices but no currency column")
        return
    cur = conv["currency"]
    bad = cur.notna() & ~cur.astype(str).str.fullmatch(r"[A-Z]{3}")
    if bad.any():
        raise _bad(
            table, "currency", "with a non-ISO-4217 currency (expected 3 upper-case letters, e.g. USD)", df, bad, keys
        )
    if "price" in conv:
        missing = conv["price"].notna() & cur.isna()
        if missing.any():
            raise _bad(table, "currency", "with a price but no currency", df, missing, keys)


# --------------------------------------------------------------------------- staging


def _stage(conn: Connection, name: str, cols: Sequence[Col], frame: pd.DataFrame) -> int:
    """(Re)create TEMP table `name` (ON COMMIT DROP) with a `_row` column and COPY the frame in."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{name}")
    ddl = ", ".join(["_row bigint", *(f"{c.name} {c.pgtype}" for c in cols)])
    conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({ddl}) ON COMMIT DROP")
    names = ", ".join(["_row", *(c.name for c in cols)])
    columns = [list(range(len(frame)))] + [frame[c.name].tolist() for c in cols]
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
            for row in zip(*columns):
                copy.write_row(row)
    return len(frame)


def _pos_mask(df: pd.DataFrame, positions: Iterable[int]) -> pd.Series:
    """Boolean mask over df selecting the given 0-based positions."""
    mask = np.zeros(len(df), dtype=bool)
    mask[list(positions)] = True
    return pd.Series(mask, index=df.index)


def _check_lookup(
    conn: Connection, df: pd.DataFrame, table: str, column: str, problem: str, sql: str, keys: Sequence[str]
) -> None:
    """Run sql (returning `_row` of staged rows whose lookup failed); raise LoadError if any."""
    rows = conn.execute(sa.text(sql)).scalars().all()
    if rows:
        raise _bad(table, column, problem, df, _pos_mask(df, rows), keys)


def _counts(conn: Connection, table: str, sql: str, staged: int, params: dict | None = None) -> dict:
    """Execute an `INSERT … RETURNING (xmax = 0) AS inserted` wrapped in a counting CTE."""
    wrapped = f"WITH w AS ({sql}) SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w"
    try:
        ins, upd = conn.execute(sa.text(wrapped), params or {}).one()
    except DBAPIError as err:
        raise LoadError(f"{table}: PostgreSQL rejected the load: {' '.join(str(err.orig).split())}") from None
    return {"staged": staged, "inserted": int(ins), "updated": int(upd)}


def _distinct(cols: Sequence[str], new: Sequence[str] | None = None) -> str:
    """`(t.a, t.b) IS DISTINCT FROM (new_a, new_b)` (new defaults to excluded.<col>)."""
    new = new or [f"excluded.{c}" for c in cols]
    left = ", ".join(f"t.{c}" for c in cols)
    right = ", ".join(new)
    if len(cols) == 1:
        return f"t.{cols[0]} IS DISTINCT FROM {right}"
    return f"ROW({left}) IS DISTINCT FROM ROW({right})"


def _empty() -> dict:
    """Counts of a load with nothing staged."""
    return {"staged": 0, "inserted": 0, "updated": 0}


# --------------------------------------------------------------------------- dimensions


def ensure_dates(conn: Connection, start: date | str | pd.Timestamp, end: date | str | pd.Timestamp) -> dict:
    """Insert every day from start to end (inclusive) into dim_date; existing days are kept."""
    s, e = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if e < s:
        raise LoadError(f"dim_date: end {e} is before start {s}")
    sql = """
        INSERT INTO dim_date AS t (date_key, date, year, quarter, month, day, dow, iso_week, is_weekend)
        SELECT to_char(d, 'YYYYMMDD')::int, d::date, extract(year FROM d), extract(quarter FROM d),
               extract(month FROM d), extract(day FROM d), extract(isodow FROM d), extract(week FROM d),
               extract(isodow FROM d) IN (6, 7)
        FROM generate_series(CAST(:s AS date), CAST(:e AS date), interval '1 day') AS g(d)
        ON CONFLICT (date_key) DO NOTHING
        RETURNING (xmax = 0) AS inserted"""
    return _counts(conn, "dim_date", sql, (e - s).days + 1, {"s": s, "e": e})


_RETAILER_COLS = [
    Col("retailer", "text", "text", required=True),
    Col("name", "text", "text"),
    Col("base_url", "text", "text"),
]


def _upsert_dim(
    conn: Connection, df: pd.DataFrame, table: str, cols: Sequence[Col], key: str, what: str, touch: str | None = None
) -> dict:
    """Upsert a dimension keyed by one natural key; only changed rows are updated (`touch` column set to now())."""
    present, conv = _prepare(df, table, cols, [key])
    _check_unique(table, df, conv, [key], what)
    if conv.empty:
        return _empty()
    stg = "stg_" + table.removeprefix("dim_")
    n = _stage(conn, stg, present, conv)
    names = [c.name for c in present]
    upd = [c for c in names if c != key]
    sets = [*(f"{c} = excluded.{c}" for c in upd), *([f"{touch} = now()"] if touch else [])]
    conflict = f"DO UPDATE SET {', '.join(sets)} WHERE {_distinct(upd)}" if upd else "DO NOTHING"
    sql = f"""INSERT INTO {table} AS t ({", ".join(names)})
              SELECT {", ".join(names)} FROM {stg} ORDER BY {key}
              ON CONFLICT ({key}) {conflict} RETURNING (xmax = 0) AS inserted"""
    return _counts(conn, table, sql, n)


def upsert_retailers(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert dim_retailer from a frame [retailer, name, base_url] (absent columns are left alone)."""
    return _upsert_dim(conn, df, "dim_retailer", _RETAILER_COLS, "retailer", "one row per retailer")


_PRODUCT_COLS = [
    Col("sku", "text", "text", required=True),
    Col("name", "text", "text", required=True),
    Col("brand", "text", "text"),
    Col("category", "text", "text"),
    Col("gtin", "text", "text"),
    Col("mpn", "text", "text"),
    Col("size", "text", "text"),
    Col("unit_cost", "num", "numeric(12,2)", nonneg=True),
    Col("map_price", "num", "numeric(12,2)", nonneg=True),
    Col("msrp", "num", "numeric(12,2)", nonneg=True),
]


def upsert_products(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert our catalogue (PRODUCT_COLUMNS) into dim_product; updated_at moves only on real changes."""
    return _upsert_dim(conn, df, "dim_product", _PRODUCT_COLS, "sku", "one row per sku", touch="updated_at")


_LISTING_COLS = [
    Col("retailer", "text", "text", required=True),
    Col("item_id", "text", "text", required=True),
    Col("url", "text", "text"),
    Col("title", "text", "text"),
    Col("brand", "text", "text"),
    Col("gtin", "text", "text"),
    Col("mpn", "text", "text"),
]
_LISTING_KEYS = ["retailer", "item_id"]


def _unknown_retailer_sql(stg: str) -> str:
    """SQL returning `_row` of staged rows whose retailer is not in dim_retailer."""
    return (
        f"SELECT s._row FROM {stg} s LEFT JOIN dim_retailer r ON r.retailer = s.retailer "
        "WHERE r.retailer_id IS NULL ORDER BY s._row"
    )


def _listing_join(stg: str) -> str:
    """FROM clause resolving staged (retailer, item_id) to dim_listing `l`."""
    return (
        f"FROM {stg} s JOIN dim_retailer r ON r.retailer = s.retailer "
        "JOIN dim_listing l ON l.retailer_id = r.retailer_id AND l.item_id = s.item_id"
    )


def _unknown_listing_sql(stg: str) -> str:
    """SQL returning `_row` of staged rows whose (retailer, item_id) is not in dim_listing."""
    return (
        f"SELECT s._row FROM {stg} s LEFT JOIN dim_retailer r ON r.retailer = s.retailer "
        "LEFT JOIN dim_listing l ON l.retailer_id = r.retailer_id AND l.item_id = s.item_id "
        "WHERE l.listing_id IS NULL ORDER BY s._row"
    )


def upsert_listings(conn: Connection, df: pd.DataFrame, seen_date: date | str | None = None) -> dict:
    """Upsert dim_listing (LISTING_COLUMNS); NULLs keep known values; seen_date widens first/last_seen."""
    present, conv = _prepare(df, "dim_listing", _LISTING_COLS, _LISTING_KEYS)
    _check_unique("dim_listing", df, conv, _LISTING_KEYS, "one row per listing")
    if conv.empty:
        return _empty()
    n = _stage(conn, "stg_listing", present, conv)
    _check_lookup(
        conn,
        df,
        "dim_listing",
        "retailer",
        "with a retailer not in dim_retailer (upsert_retailers first)",
        _unknown_retailer_sql("stg_listing"),
        _LISTING_KEYS,
    )
    attrs = [c.name for c in present if c.name not in _LISTING_KEYS]
    seen = None if seen_date is None else pd.Timestamp(seen_date).date()
    cols = ["retailer_id", "item_id", *attrs, "first_seen", "last_seen"]
    sel = ["r.retailer_id", "s.item_id", *(f"s.{c}" for c in attrs), "CAST(:seen AS date)", "CAST(:seen AS date)"]
    new = [
        *(f"COALESCE(excluded.{c}, t.{c})" for c in attrs),
        "LEAST(t.first_seen, excluded.first_seen)",
        "GREATEST(t.last_seen, excluded.last_seen)",
    ]
    upd = [*attrs, "first_seen", "last_seen"]
    sets = ", ".join(f"{c} = {v}" for c, v in zip(upd, new))
    sql = f"""INSERT INTO dim_listing AS t ({", ".join(cols)})
              SELECT {", ".join(sel)} FROM stg_listing s JOIN dim_retailer r ON r.retailer = s.retailer
              ORDER BY r.retailer_id, s.item_id
              ON CONFLICT (retailer_id, item_id) DO UPDATE SET {sets} WHERE {_distinct(upd, new)}
              RETURNING (xmax = 0) AS inserted"""
    return _counts(conn, "dim_listing", sql, n, {"seen": seen})


_MATCH_COLS = [
    Col("retailer", "text", "text", required=True),
    Col("item_id", "text", "text", required=True),
    Col("sku", "text", "text"),
    Col("method", "text", "text"),
    Col("score", "num", "real"),
    Col("status", "text", "text"),
]


def load_matches(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert product_match (MATCH_COLUMNS); auto/review rows never overwrite confirmed/rejected labels.

    A row with no sku means "no match": an existing auto/review match of that listing is deleted.
    Extra counts: `deleted` (such removals) and `protected` (rows skipped to keep a human label).
    """
    table = "product_match"
    if isinstance(df, pd.DataFrame) and "sku" not in df.columns:
        raise LoadError(f"{table}: input frame lacks required column(s) ['sku']; it has {list(df.columns)}")
    _, conv = _prepare(df, table, _MATCH_COLS, _LISTING_KEYS)
    present = _MATCH_COLS  # a decision is a whole record: absent method/score are NULL
    for col in ("method", "score", "status"):
        if col not in conv:
            conv[col] = None
    conv["status"] = conv["status"].where(conv["status"].notna(), "auto")
    bad = ~conv["status"].isin(MATCH_STATUSES)
    if bad.any():
        raise _bad(table, "status", f"with a status not in {MATCH_STATUSES}", df, bad, _LISTING_KEYS)
    _check_unique(table, df, conv, _LISTING_KEYS, "one decision per listing")
    if conv.empty:
        return {**_empty(), "deleted": 0, "protected": 0}
    n = _stage(conn, "stg_match", present, conv)
    _check_lookup(
        conn,
        df,
        table,
        "item_id",
        "with a listing (retailer, item_id) not in dim_listing",
        _unknown_listing_sql("stg_match"),
        _LISTING_KEYS,
    )
    _check_lookup(
        conn,
        df,
        table,
        "sku",
        "with a sku not in dim_product",
        "SELECT s._row FROM stg_match s LEFT JOIN dim_product p ON p.sku = s.sku "
        "WHERE s.sku IS NOT NULL AND p.product_id IS NULL ORDER BY s._row",
        [*_LISTING_KEYS, "sku"],
    )
    human = ", ".join(f"'{s}'" for s in HUMAN_STATUSES)
    deleted = conn.execute(
        sa.text(
            f"""DELETE FROM product_match t USING (SELECT l.listing_id {_listing_join("stg_match")}
                                                WHERE s.sku IS NULL) x
            WHERE t.listing_id = x.listing_id AND t.status NOT IN ({human})"""
        )
    ).rowcount
    upd = ["product_id", "method", "score", "status"]
    protected = conn.execute(
        sa.text(
            f"""SELECT count(*) {_listing_join("stg_match")} JOIN dim_product p ON p.sku = s.sku
            JOIN product_match t ON t.listing_id = l.listing_id
            WHERE t.status IN ({human}) AND s.status NOT IN ({human})
              AND ROW(t.product_id, t.method, t.score, t.status)
                  IS DISTINCT FROM ROW(p.product_id, s.method, s.score, s.status)"""
        )
    ).scalar_one()
    sets = ", ".join([*(f"{c} = excluded.{c}" for c in upd), "updated_at = now()"])
    sql = f"""INSERT INTO product_match AS t (listing_id, product_id, method, score, status)
              SELECT l.listing_id, p.product_id, s.method, s.score, s.status
              {_listing_join("stg_match")} JOIN dim_product p ON p.sku = s.sku
              ORDER BY l.listing_id
              ON CONFLICT (listing_id) DO UPDATE SET {sets}
              WHERE (t.status NOT IN ({human}) OR excluded.status IN ({human})) AND {_distinct(upd)}
              RETURNING (xmax = 0) AS inserted"""
    return {**_counts(conn, table, sql, n), "deleted": int(deleted), "protected": int(protected)}


# --------------------------------------------------------------------------- facts


_PRICE_COLS = [
    Col("retailer", "text", "text", required=True),
    Col("item_id", "text", "text", required=True),
    Col("ds", "date", "date", required=True),
    Col("observed_at", "ts", "timestamptz", required=True),
    Col("price", "num", "numeric(12,2)", nonneg=True),
    Col("list_price", "num", "numeric(12,2)", nonneg=True),
    Col("currency", "text", "text"),
    Col("in_stock", "bool", "boolean"),
    Col("promo", "bool", "boolean"),
    Col("page_sha256", "text", "text"),
]
_PRICE_KEYS = ["retailer", "item_id", "ds"]


def _date_range(conn: Connection, stg: str) -> dict:
    """ensure_dates over the staged `ds` range."""
    lo, hi = conn.execute(sa.text(f"SELECT min(ds), max(ds) FROM {stg}")).one()
    return ensure_dates(conn, lo, hi)


def load_prices(conn: Connection, df: pd.DataFrame, scrape_run_id: int | None = None) -> dict:
    """Upsert fact_price from an observation frame (one row per listing per day).

    Listings must exist (upsert_listings first); their first_seen/last_seen widen to the loaded days.
    """
    table = "fact_price"
    present, conv = _prepare(df, table, _PRICE_COLS, _PRICE_KEYS)
    _check_currency(table, df, conv, _PRICE_KEYS)
    _check_unique(table, df, conv, _PRICE_KEYS, "one observation per listing per day")
    if scrape_run_id is not None:
        found = conn.execute(
            sa.text("SELECT 1 FROM scrape_run WHERE scrape_run_id = :i"), {"i": int(scrape_run_id)}
        ).first()
        if found is None:
            raise LoadError(f"{table}.scrape_run_id: scrape run {scrape_run_id} is not in scrape_run")
    if conv.empty:
        return _empty()
    n = _stage(conn, "stg_price", present, conv)
    _check_lookup(
        conn,
        df,
        table,
        "item_id",
        "with a listing (retailer, item_id) not in dim_listing (upsert_listings first)",
        _unknown_listing_sql("stg_price"),
        _PRICE_KEYS,
    )
    _date_range(conn, "stg_price")
    attrs = [c.name for c in present if c.name not in _PRICE_KEYS]
    cols = ["listing_id", "date_key", *attrs, "scrape_run_id"]
    sel = ["l.listing_id", "to_char(s.ds, 'YYYYMMDD')::int", *(f"s.{c}" for c in attrs), "CAST(:run AS integer)"]
    upd = [*attrs, "scrape_run_id"]
    new = [*(f"excluded.{c}" for c in attrs), "COALESCE(excluded.scrape_run_id, t.scrape_run_id)"]
    sets = ", ".join(f"{c} = {v}" for c, v in zip(upd, new))
    sql = f"""INSERT INTO fact_price AS t ({", ".join(cols)})
              SELECT {", ".join(sel)} {_listing_join("stg_price")}
              ORDER BY 1, 2
              ON CONFLICT (listing_id, date_key) DO UPDATE SET {sets} WHERE {_distinct(upd, new)}
              RETURNING (xmax = 0) AS inserted"""
    counts = _counts(conn, table, sql, n, {"run": scrape_run_id})
    conn.execute(
        sa.text(
            f"""UPDATE dim_listing t SET first_seen = LEAST(t.first_seen, x.lo), last_seen = GREATEST(t.last_seen, x.hi)
            FROM (SELECT l.listing_id, min(s.ds) AS lo, max(s.ds) AS hi {_listing_join("stg_price")}
                  GROUP BY l.listing_id) x
            WHERE t.listing_id = x.listing_id
              AND ROW(t.first_seen, t.last_seen)
                  IS DISTINCT FROM ROW(LEAST(t.first_seen, x.lo), GREATEST(t.last_seen, x.hi))"""
        )
    )
    return counts


_SALES_COLS = [
    Col("sku", "text", "text", required=True),
    Col("ds", "date", "date", required=True),
    Col("units", "int", "integer", required=True, nonneg=True),
    Col("revenue", "num", "numeric(14,2)"),
    Col("price", "num", "numeric(12,2)", nonneg=True),
    Col("promo", "bool", "boolean"),
]


def load_sales(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert fact_sales (SALES_COLUMNS): our own daily units, revenue, shelf price and promo flag."""
    table = "fact_sales"
    present, conv = _prepare(df, table, _SALES_COLS, ["sku", "ds"])
    _check_unique(table, df, conv, ["sku", "ds"], "one row per sku per day")
    if conv.empty:
        return _empty()
    n = _stage(conn, "stg_sales", present, conv)
    _check_lookup(
        conn,
        df,
        table,
        "sku",
        "with a sku not in dim_product (upsert_products first)",
        "SELECT s._row FROM stg_sales s LEFT JOIN dim_product p ON p.sku = s.sku "
        "WHERE p.product_id IS NULL ORDER BY s._row",
        ["sku", "ds"],
    )
    _date_range(conn, "stg_sales")
    attrs = [c.name for c in present if c.name not in ("sku", "ds")]
    cols = ["product_id", "date_key", *attrs]
    sel = ["p.product_id", "to_char(s.ds, 'YYYYMMDD')::int", *(f"s.{c}" for c in attrs)]
    sql = f"""INSERT INTO fact_sales AS t ({", ".join(cols)})
              SELECT {", ".join(sel)} FROM stg_sales s JOIN dim_product p ON p.sku = s.sku
              ORDER BY 1, 2
              ON CONFLICT (product_id, date_key) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in attrs)}
              WHERE {_distinct(attrs)}
              RETURNING (xmax = 0) AS inserted"""
    return _counts(conn, table, sql, n)


# --------------------------------------------------------------------------- run bookkeeping


def _jsonb(v: Any) -> str | None:
    """JSON text for a jsonb column: None stays NULL; missing values become null; keys sorted."""
    return None if v is None else to_json(v, sort_keys=True)


def start_run(conn: Connection, task: str, params: dict | None = None, code_version: str | None = None) -> int:
    """Insert a pipeline_run row with status 'running'; return its run_id."""
    if not task:
        raise LoadError("pipeline_run.task: a task name is required")
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO pipeline_run (task, params, code_version) "
                "VALUES (:t, CAST(:p AS jsonb), :v) RETURNING run_id"
            ),
            {"t": task, "p": _jsonb(params), "v": code_version or priceintel.__version__},
        ).scalar_one()
    )


def finish_run(
    conn: Connection, run_id: int, status: str = "success", counts: dict | None = None, errors: Any = None
) -> None:
    """Close pipeline_run `run_id` with status (success|failed), counts and errors."""
    if status not in RUN_STATUSES:
        raise LoadError(f"pipeline_run.status: {status!r} is not one of {RUN_STATUSES}")
    res = conn.execute(
        sa.text(
            """UPDATE pipeline_run SET finished_at = now(), status = :s, counts = CAST(:c AS jsonb),
                  errors = CAST(:e AS jsonb) WHERE run_id = :i"""
        ),
        {"s": status, "c": _jsonb(counts), "e": _jsonb(errors), "i": int(run_id)},
    )
    if res.rowcount == 0:
        raise LoadError(f"pipeline_run.run_id: run {run_id} does not exist")


def record_scrape_run(
    conn: Connection,
    retailer: str | None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    pages: int = 0,
    offers: int = 0,
    errors: int = 0,
    error_summary: dict | None = None,
    code_version: str | None = None,
) -> int:
    """Insert a scrape_run row (one crawl of one retailer); return its scrape_run_id."""
    for name, value in (("pages", pages), ("offers", offers), ("errors", errors)):
        if int(value) < 0:
            raise LoadError(f"scrape_run.{name}: must be >= 0, got {value}")
    return int(
        conn.execute(
            sa.text(
                """INSERT INTO scrape_run (started_at, finished_at, retailer, pages, offers, errors, error_summary,
                                   code_version)
           VALUES (COALESCE(:sa, now()), :fa, :r, :p, :o, :e, CAST(:es AS jsonb), :v) RETURNING scrape_run_id"""
            ),
            {
                "sa": started_at,
                "fa": finished_at,
                "r": retailer,
                "p": int(pages),
                "o": int(offers),
                "e": int(errors),
                "es": _jsonb(error_summary),
                "v": code_version or priceintel.__version__,
            },
        ).scalar_one()
    )


_ERROR_COLS = [
    Col("url", "text", "text"),
    Col("retailer", "text", "text"),
    Col("kind", "text", "text", required=True),
    Col("message", "text", "text"),
]


def record_errors(conn: Connection, scrape_run_id: int | None, errors_df: pd.DataFrame) -> dict:
    """Append scrape errors [url, retailer, kind, message]; rows already recorded for the run are skipped."""
    table = "scrape_error"
    present, conv = _prepare(errors_df, table, _ERROR_COLS, ["url", "kind"])
    if (
        scrape_run_id is not None
        and conn.execute(
            sa.text("SELECT 1 FROM scrape_run WHERE scrape_run_id = :i"), {"i": int(scrape_run_id)}
        ).first()
        is None
    ):
        raise LoadError(f"{table}.scrape_run_id: scrape run {scrape_run_id} is not in scrape_run")
    if conv.empty:
        return _empty()
    n = _stage(conn, "stg_error", present, conv)
    names = [c.name for c in present]
    same = " AND ".join(
        [
            "e.scrape_run_id IS NOT DISTINCT FROM CAST(:run AS integer)",
            *(f"e.{c} IS NOT DISTINCT FROM s.{c}" for c in names),
        ]
    )
    sql = f"""INSERT INTO scrape_error (scrape_run_id, {", ".join(names)})
              SELECT DISTINCT CAST(:run AS integer), {", ".join(f"s.{c}" for c in names)} FROM stg_error s
              WHERE NOT EXISTS (SELECT 1 FROM scrape_error e WHERE {same})
              RETURNING true AS inserted"""
    return _counts(conn, table, sql, n, {"run": scrape_run_id})
