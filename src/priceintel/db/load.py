"""Loaders: validate a frame, COPY it into a TEMP staging table, then `INSERT … ON CONFLICT`.

Every loader takes a SQLAlchemy `Connection` inside a transaction (`with engine.begin() as conn`),
so callers can bundle several loads in one transaction. Loads are idempotent: re-loading the same
frame inserts and updates nothing (updates fire only when a value `IS DISTINCT FROM` the stored
one). Bad rows raise `LoadError` naming table, column, count and the first offending rows before
any target table is touched; the caller's transaction then rolls back.
Each loader returns counts `{"staged": n, "inserted": i, "updated": u}`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import priceintel
from priceintel.db.errors import LoadError
from priceintel.db.listings import listing_rows, upsert_listings
from priceintel.db.staging import (
    Col,
    bad_rows,
    check_currency,
    check_lookup,
    check_unique,
    cols,
    distinct,
    empty_counts,
    execute,
    prepare,
    stage,
    upsert_counts,
)
from priceintel.items import to_json
from priceintel.obs import logs

__all__ = [
    "LoadError",
    "HUMAN_STATUSES",
    "MATCH_STATUSES",
    "RUN_STATUSES",
    "ensure_dates",
    "upsert_retailers",
    "upsert_products",
    "upsert_listings",
    "listing_rows",
    "load_matches",
    "load_prices",
    "IMPORT_METHOD",
    "PRICE_LINEAGE",
    "load_sales",
    "make_partitions_ahead",
    "tidy_partitions",
    "start_run",
    "finish_run",
    "record_scrape_run",
    "record_errors",
]

#: product_match statuses; the human ones are never overwritten by automatic matches
MATCH_STATUSES = ("auto", "review", "confirmed", "rejected")
HUMAN_STATUSES = ("confirmed", "rejected")
RUN_STATUSES = ("running", "success", "failed")
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
    return upsert_counts(conn, "dim_date", sql, (e - s).days + 1, {"s": s, "e": e})


_RETAILER_COLS = cols("retailer! name base_url")


def _upsert_dim(
    conn: Connection, df: pd.DataFrame, table: str, cols: Sequence[Col], key: str, what: str, touch: str | None = None
) -> dict:
    """Upsert a dimension keyed by one natural key; only changed rows are updated (`touch` column set to now())."""
    present, conv = prepare(df, table, cols, [key])
    check_unique(table, df, conv, [key], what)
    if conv.empty:
        return empty_counts()
    stg = "stg_" + table.removeprefix("dim_")
    n = stage(conn, stg, present, conv)
    names = [c.name for c in present]
    upd = [c for c in names if c != key]
    sets = [*(f"{c} = excluded.{c}" for c in upd), *([f"{touch} = now()"] if touch else [])]
    conflict = f"DO UPDATE SET {', '.join(sets)} WHERE {distinct(upd)}" if upd else "DO NOTHING"
    sql = f"""INSERT INTO {table} AS t ({", ".join(names)})
              SELECT {", ".join(names)} FROM {stg} ORDER BY {key}
              ON CONFLICT (tenant_id, {key}) {conflict} RETURNING (xmax = 0) AS inserted"""
    return upsert_counts(conn, "fact_sales", sql, n)


def upsert_retailers(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert dim_retailer from a frame [retailer, name, base_url] (absent columns are left alone)."""
    return _upsert_dim(conn, df, "dim_retailer", _RETAILER_COLS, "retailer", "one row per retailer")


_PRODUCT_COLS = cols(
    "sku! name! brand category gtin mpn size unit_cost:numeric(12,2)+ map_price:numeric(12,2)+ msrp:numeric(12,2)+"
)


def upsert_products(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert our catalogue (PRODUCT_COLUMNS) into dim_product; updated_at moves only on real changes."""
    return _upsert_dim(conn, df, "dim_product", _PRODUCT_COLS, "sku", "one row per sku", touch="updated_at")


_LISTING_KEYS = ["retailer", "item_id"]


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


_MATCH_COLS = cols("retailer! item_id! sku method score:real status")


def load_matches(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert product_match (MATCH_COLUMNS); auto/review rows never overwrite confirmed/rejected labels.

    A row with no sku means "no match": an existing auto/review match of that listing is deleted.
    Extra counts: `deleted` (such removals) and `protected` (rows skipped to keep a human label).
    """
    table = "product_match"
    if isinstance(df, pd.DataFrame) and "sku" not in df.columns:
        raise LoadError(f"{table}: input frame lacks required column(s) ['sku']; it has {list(df.columns)}")
    _, conv = prepare(df, table, _MATCH_COLS, _LISTING_KEYS)
    present = _MATCH_COLS  # a decision is a whole record: absent method/score are NULL
    for col in ("method", "score", "status"):
        if col not in conv:
            conv[col] = None
    conv["status"] = conv["status"].where(conv["status"].notna(), "auto")
    bad = ~conv["status"].isin(MATCH_STATUSES)
    if bad.any():
        raise bad_rows(table, "status", f"with a status not in {MATCH_STATUSES}", df, bad, _LISTING_KEYS)
    check_unique(table, df, conv, _LISTING_KEYS, "one decision per listing")
    if conv.empty:
        return {**empty_counts(), "deleted": 0, "protected": 0}
    n = stage(conn, "stg_match", present, conv)
    check_lookup(
        conn,
        df,
        table,
        "item_id",
        "with a listing (retailer, item_id) not in dim_listing",
        _unknown_listing_sql("stg_match"),
        _LISTING_KEYS,
    )
    check_lookup(
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
              WHERE (t.status NOT IN ({human}) OR excluded.status IN ({human})) AND {distinct(upd)}
              RETURNING (xmax = 0) AS inserted"""
    return {**upsert_counts(conn, table, sql, n), "deleted": int(deleted), "protected": int(protected)}


# --------------------------------------------------------------------------- facts


#: the tenant of the transaction, computed once per statement (an InitPlan): bulk inserts name it instead of
#: leaving it to the column default, which PostgreSQL evaluates row by row (migration 0014)
TENANT_ONCE = "(SELECT priceintel_tenant())"

_PRICE_COLS = cols(
    "retailer! item_id! ds:date! observed_at:timestamptz! price:numeric(12,2)+ "
    "list_price:numeric(12,2)+ currency in_stock:boolean promo:boolean page_sha256 extraction_method"
)
_PRICE_KEYS = ["retailer", "item_id", "ds"]
#: where a stored price came from (migration 0016): replaced with the price when a load changes it, kept (its
#: gaps filled) when a load leaves the price as it was
PRICE_LINEAGE = ("page_sha256", "extraction_method", "scrape_run_id", "import_run_id")
#: the extraction method of a price imported from a file
IMPORT_METHOD = "import"


def _date_range(conn: Connection, stg: str) -> tuple[date, date]:
    """ensure_dates over the staged `ds` range; returns the range."""
    lo, hi = conn.execute(sa.text(f"SELECT min(ds), max(ds) FROM {stg}")).one()
    ensure_dates(conn, lo, hi)
    return lo, hi


#: months of fact_price partitions made ahead of this one (`make_partitions_ahead`)
PARTITIONS_AHEAD = 2


def make_partitions_ahead(engine: Engine) -> int:
    """Make fact_price's partitions (migration 0017) of this month and the PARTITIONS_AHEAD next, in a short
    transaction of its own: making a partition locks fact_price, which a long load transaction would hold until
    it ends. The load stage calls it before loading. Returns how many were made."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT priceintel_price_partitions(current_date, "
                    "(current_date + make_interval(months => :ahead))::date)"
                ),
                {"ahead": PARTITIONS_AHEAD},
            ).scalar_one()
        )


def _staged_partitions(conn: Connection, stg: str) -> int:
    """Make the partitions of the months the staged rows fall in (only those months)."""
    return int(
        conn.execute(
            sa.text(
                f"""SELECT COALESCE(sum(priceintel_price_partitions(m, m)), 0)
                    FROM (SELECT DISTINCT date_trunc('month', ds)::date AS m FROM {stg}) x"""
            )
        ).scalar_one()
    )


def tidy_partitions(conn: Connection) -> int:
    """Move rows that reached fact_price's default partition (raw SQL, a restore) into their months' partitions
    (made for those months only); returns how many partitions were made."""
    return int(
        conn.execute(
            sa.text(
                """SELECT COALESCE(sum(priceintel_price_partitions(m, m)), 0) FROM (
                       SELECT DISTINCT to_date((date_key / 100 * 100 + 1)::text, 'YYYYMMDD') AS m
                       FROM fact_price_default) x"""
            )
        ).scalar_one()
    )


def _staged(
    conn: Connection,
    df: pd.DataFrame,
    table: str,
    spec: list,
    keys: list[str],
    unique: str,
    stg: str,
    lookup: tuple[str, str, str],
    check: Callable[[pd.DataFrame], None] | None = None,
) -> tuple[list, int, tuple[date, date] | None]:
    """Check a fact frame, stage it as `stg` and check its keys exist; return (present columns, rows, the
    staged days' range).

    `unique` names the grain in the duplicate-key error, `lookup` is (column, what is wrong, SQL listing
    the staged rows whose key is unknown), `check` runs on the converted frame before staging.
    """
    present, conv = prepare(df, table, spec, keys)
    if check is not None:
        check(conv)
    check_unique(table, df, conv, keys, unique)
    if conv.empty:
        return present, 0, None
    n = stage(conn, stg, present, conv)
    check_lookup(conn, df, table, *lookup, keys)
    return present, n, _date_range(conn, stg)


def _check_run(conn: Connection, table: str, run_table: str, column: str, run_id: int | None) -> None:
    """LoadError unless `run_id` (when given) is a row of `run_table` (checked once per load, not per row)."""
    if run_id is None:
        return
    found = conn.execute(sa.text(f"SELECT 1 FROM {run_table} WHERE {column} = :i"), {"i": int(run_id)}).first()
    if found is None:
        what = run_table.replace("_", " ")
        raise LoadError(f"{table}.{column}: {what} {run_id} is not in {run_table}")


def _lineage_sql(staged: set[str], attrs: list[str]) -> tuple[list[str], list[str]]:
    """(SELECT expressions of the PRICE_LINEAGE columns from `stg_price s`, their ON CONFLICT values): a load
    that changes a price's values (`attrs`) replaces its lineage, one that does not keeps it and fills its gaps."""
    method = "CAST(:method AS text)"
    sel = [
        "s.page_sha256" if "page_sha256" in staged else "CAST(NULL AS text)",
        f"COALESCE(s.extraction_method, {method})" if "extraction_method" in staged else method,
        "CAST(:run AS integer)",
        "CAST(:import_run AS integer)",
    ]
    changed = distinct(attrs)
    new = [f"CASE WHEN {changed} THEN excluded.{c} ELSE COALESCE(t.{c}, excluded.{c}) END" for c in PRICE_LINEAGE]
    return sel, new


def load_prices(
    conn: Connection,
    df: pd.DataFrame,
    scrape_run_id: int | None = None,
    keep_newer: bool = False,
    import_run_id: int | None = None,
) -> dict:
    """Upsert fact_price from an observation frame (one row per listing per day) with its lineage.

    Listings must exist (upsert_listings first); their first_seen/last_seen widen to the loaded days.
    Lineage (PRICE_LINEAGE, migration 0016): the frame's `page_sha256` and `extraction_method` columns,
    `scrape_run_id` and `import_run_id` (a price imported from a file: its method is IMPORT_METHOD unless the
    frame names one). A load that changes a stored price replaces its lineage (what this load does not know
    becomes NULL); one that leaves it unchanged keeps it and fills only what it lacked.
    `keep_newer` (imports of prices observed elsewhere): a stored observation of the same listing and day
    that is newer than the row's stays, and a replaced one no longer names a scrape run.
    """
    table = "fact_price"

    def check(conv: pd.DataFrame) -> None:
        check_currency(table, df, conv, _PRICE_KEYS)
        _check_run(conn, table, "scrape_run", "scrape_run_id", scrape_run_id)
        _check_run(conn, table, "import_run", "import_run_id", import_run_id)

    lookup = (
        "item_id",
        "with a listing (retailer, item_id) not in dim_listing (upsert_listings first)",
        _unknown_listing_sql("stg_price"),
    )
    present, n, days = _staged(
        conn, df, table, _PRICE_COLS, _PRICE_KEYS, "one observation per listing per day", "stg_price", lookup, check
    )
    if not n or days is None:
        return empty_counts()
    _staged_partitions(conn, "stg_price")
    # one price load of a tenant at a time: two loads inserting the same new (listing, day) would make the
    # second fail on the key instead of waiting for the first
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7365120103000 + (SELECT priceintel_tenant()))"))
    method = IMPORT_METHOD if import_run_id is not None else None
    lo, hi = (int(f"{d:%Y%m%d}") for d in days)
    params = {"run": scrape_run_id, "import_run": import_run_id, "method": method, "lo": lo, "hi": hi}
    updated, inserted = _write_prices(conn, present, params, keep_newer)
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
    return {"staged": n, "inserted": inserted, "updated": updated}


def _write_prices(conn: Connection, present: list, params: dict, keep_newer: bool) -> tuple[int, int]:
    """stg_price -> fact_price: the staged rows with their keys resolved (`_px`), then an UPDATE of the stored
    rows they change and a plain INSERT of the new ones, both over the staged days' partitions (:lo to :hi).
    Returns (updated, inserted).

    `INSERT … ON CONFLICT` cannot tell an insert from an update on a partitioned table (its RETURNING has no
    xmax) and its speculative insertion doubled the time of a bulk load. A concurrent load that inserted the
    same new key first makes this one fail with a LoadError (a unique violation) and roll back whole; running
    it again completes it.
    """
    table = "fact_price"
    attrs = [c.name for c in present if c.name not in _PRICE_KEYS and c.name not in PRICE_LINEAGE]
    lineage_sel, lineage_new = _lineage_sql({c.name for c in present}, attrs)
    cols = ["listing_id", "date_key", *attrs, *PRICE_LINEAGE, "tenant_id"]
    sel = ["l.listing_id", "to_char(s.ds, 'YYYYMMDD')::int", *(f"s.{c}" for c in attrs), *lineage_sel, TENANT_ONCE]
    upd = [*attrs, *PRICE_LINEAGE]
    new = [*(f"excluded.{c}" for c in attrs), *lineage_new]
    sets = ", ".join(f"{c} = {v}" for c, v in zip(upd, new))
    newer = " AND t.observed_at <= excluded.observed_at" if keep_newer else ""
    conn.exec_driver_sql("DROP TABLE IF EXISTS pg_temp._px")
    resolved = ", ".join(f"{e} AS {c}" for c, e in zip(cols, sel))
    execute(conn, table, f"CREATE TEMP TABLE _px ON COMMIT DROP AS SELECT {resolved} {_listing_join('stg_price')}",
            params)  # fmt: skip
    conn.exec_driver_sql("ANALYZE _px")
    days_of_t = "t.date_key BETWEEN :lo AND :hi"
    updated = execute(
        conn,
        table,
        f"""UPDATE fact_price t SET {sets} FROM _px excluded
            WHERE t.listing_id = excluded.listing_id AND t.date_key = excluded.date_key AND {days_of_t}
              AND {distinct(upd, new)}{newer}""",
        params,
    )
    inserted = execute(
        conn,
        table,
        f"""INSERT INTO fact_price ({", ".join(cols)}) SELECT {", ".join(cols)} FROM _px x
            WHERE NOT EXISTS (SELECT 1 FROM fact_price t
                              WHERE t.listing_id = x.listing_id AND t.date_key = x.date_key AND {days_of_t})""",
        params,
    )
    conn.exec_driver_sql("DROP TABLE _px")
    return updated, inserted


_SALES_COLS = cols("sku! ds:date! units:integer!+ revenue:numeric(14,2) price:numeric(12,2)+ promo:boolean")


def load_sales(conn: Connection, df: pd.DataFrame) -> dict:
    """Upsert fact_sales (SALES_COLUMNS): our own daily units, revenue, shelf price and promo flag."""
    lookup = (
        "sku",
        "with a sku not in dim_product (upsert_products first)",
        "SELECT s._row FROM stg_sales s LEFT JOIN dim_product p ON p.sku = s.sku "
        "WHERE p.product_id IS NULL ORDER BY s._row",
    )
    present, n, _ = _staged(
        conn, df, "fact_sales", _SALES_COLS, ["sku", "ds"], "one row per sku per day", "stg_sales", lookup
    )
    if not n:
        return empty_counts()
    attrs = [c.name for c in present if c.name not in ("sku", "ds")]
    cols = ["product_id", "date_key", *attrs, "tenant_id"]
    sel = ["p.product_id", "to_char(s.ds, 'YYYYMMDD')::int", *(f"s.{c}" for c in attrs), TENANT_ONCE]
    sql = f"""INSERT INTO fact_sales AS t ({", ".join(cols)})
              SELECT {", ".join(sel)} FROM stg_sales s JOIN dim_product p ON p.sku = s.sku
              ORDER BY 1, 2
              ON CONFLICT (product_id, date_key) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in attrs)}
              WHERE {distinct(attrs)}
              RETURNING (xmax = 0) AS inserted"""
    return upsert_counts(conn, "fact_sales", sql, n)


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
    pipeline_run_id: int | None = None,
    run_key: str | None = None,
) -> int:
    """Insert a scrape_run row (one crawl of one retailer); return its scrape_run_id. `pipeline_run_id`: the
    pipeline_run that loads it; `run_key`: the run id of the logs (default: the one bound, `obs.logs.current`)."""
    for name, value in (("pages", pages), ("offers", offers), ("errors", errors)):
        if int(value) < 0:
            raise LoadError(f"scrape_run.{name}: must be >= 0, got {value}")
    return int(
        conn.execute(
            sa.text(
                """INSERT INTO scrape_run (started_at, finished_at, retailer, pages, offers, errors, error_summary,
                                   code_version, pipeline_run_id, run_key)
           VALUES (COALESCE(:sa, now()), :fa, :r, :p, :o, :e, CAST(:es AS jsonb), :v, :pr, :rk)
           RETURNING scrape_run_id"""
            ),
            {
                "pr": None if pipeline_run_id is None else int(pipeline_run_id),
                "rk": run_key if run_key is not None else logs.current().get("run_id"),
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


_ERROR_COLS = cols("url retailer kind! message")


def record_errors(conn: Connection, scrape_run_id: int | None, errors_df: pd.DataFrame) -> dict:
    """Append scrape errors [url, retailer, kind, message]; rows already recorded for the run are skipped."""
    table = "scrape_error"
    present, conv = prepare(errors_df, table, _ERROR_COLS, ["url", "kind"])
    _check_run(conn, table, "scrape_run", "scrape_run_id", scrape_run_id)
    if conv.empty:
        return empty_counts()
    n = stage(conn, "stg_error", present, conv)
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
    return upsert_counts(conn, table, sql, n, {"run": scrape_run_id})
