"""The apps' views: price rollups kept incrementally after every load, model views refreshed after model runs.

Readers (the apps, the API) read per-tenant views (`mv_app_prices`, …) over relations holding every tenant's
rows (migrations 0014, 0017):

- **Incremental tables** `app_prices_all` (one row per matched listing and day), `app_prices_daily_all` (sums
  per day, retailer and category) and `app_listing_span_all` (per listing: first, last and last priced day).
  Triggers queue in `app_pending` the (listing, day) pairs whose rows may have changed, whoever wrote them
  (a bulk statement queues its days);
  `refresh` recomputes exactly those rows of `app_prices_all` from its definition (`app_prices_source`) and
  moves the sums and spans by the difference between the rows it removed and the rows it wrote. Only a span
  whose first, last or last priced day was removed is recomputed from its listing's rows. A full rebuild runs
  when everything is queued (a TRUNCATE) or when the queue is a large part of the table (a first load).
- **Materialized views** `mv_app_forecasts_all` (the latest forecast run) and `mv_app_elasticity_all` (the
  elasticity runs): small, refreshed whole.

Each refresh runs as the owner, across tenants, one at a time (an advisory lock); readers key their caches on
`app_refresh`, which a refresh stamps for every view whose rows it may have changed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from priceintel.db import tenancy

#: the rollups kept incrementally (reader view -> table)
INCREMENTAL = {
    "mv_app_prices": "app_prices_all",
    "mv_app_prices_daily": "app_prices_daily_all",
    "mv_app_listing_span": "app_listing_span_all",
}
#: the materialized views refreshed whole (reader view -> materialized view), in refresh order
MATERIALIZED = {"mv_app_forecasts": "mv_app_forecasts_all", "mv_app_elasticity": "mv_app_elasticity_all"}
#: every app view, in refresh order (later ones read earlier ones)
APP_VIEWS = (*INCREMENTAL, *MATERIALIZED)
#: relations that hold every tenant's rows or feed them: never readable by the apps' role (`db.roles`); the
#: incremental tables are (their row-level security shows a role its tenant's rows)
ALL_TENANTS = (
    *MATERIALIZED.values(),
    "app_prices_source",
    "app_prices_daily_source",
    "app_listing_span_source",
    "app_pending",
)
#: work_mem / maintenance_work_mem of the refresh transaction
REFRESH_WORK_MEM = "256MB"
#: a queue longer than this share of app_prices_all rebuilds the rollups whole (cheaper than row by row)
REBUILD_SHARE = 0.25
#: pg_advisory_xact_lock key: one refresh at a time
_LOCK_KEY = 7_365_120_101


def refresh(
    engine: Engine, views: Iterable[str] | None = None, concurrently: bool | None = None, full: bool = False
) -> dict:
    """Bring the app views (all, or the named ones) up to date; returns seconds per view.

    The incremental rollups apply what `app_pending` queued (all three together whichever of them is named);
    full=True rebuilds them whole. Materialized views are refreshed CONCURRENTLY (readers never blocked) when
    they already have rows and plainly when empty (the first fill, much faster); concurrently=True/False forces
    the choice. Every view whose rows may have changed is ANALYZEd (rebuilds) and stamped in app_refresh.
    """
    wanted = set(APP_VIEWS) if views is None else set(views)
    unknown = wanted - set(APP_VIEWS)
    if unknown:
        raise ValueError(f"refresh: unknown view(s) {sorted(unknown)}; expected some of {', '.join(APP_VIEWS)}")
    timings: dict[str, float] = {}
    with tenancy.as_owner(), engine.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        # the refresh diffs and aggregates with joins and sorts: give them memory
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'")
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{REFRESH_WORK_MEM}'")
        if wanted & set(INCREMENTAL):  # nothing queued: nothing to do (0 s)
            timings.update(dict.fromkeys(INCREMENTAL, 0.0) | apply_pending(conn, full=full))
        for name, held in MATERIALIZED.items():
            if name not in wanted:
                continue
            t0 = time.perf_counter()
            conc = concurrently
            if conc is None:
                conc = conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {held})")).scalar()
            conn.exec_driver_sql(f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if conc else ''}{held}")
            conn.exec_driver_sql(f"ANALYZE {held}")
            timings[name] = round(time.perf_counter() - t0, 3)
            _stamp(conn, name, held, timings[name])
    return {name: timings[name] for name in APP_VIEWS if name in timings}


def _stamp(conn: Connection, name: str, held: str, seconds: float) -> None:
    conn.execute(
        sa.text("""
        INSERT INTO app_refresh (name, refreshed_at, n_rows, seconds)
        VALUES (CAST(:n AS text), clock_timestamp(),
                (SELECT reltuples::bigint FROM pg_class WHERE relname::text = CAST(:held AS text)), :s)
        ON CONFLICT (name) DO UPDATE SET refreshed_at = excluded.refreshed_at, n_rows = excluded.n_rows,
                                         seconds = excluded.seconds"""),
        {"n": name, "held": held, "s": seconds},
    )


# ------------------------------------------------------------------------------------------- incremental


def apply_pending(conn: Connection, full: bool = False) -> dict[str, float]:
    """Apply app_pending to the incremental rollups (in the caller's transaction, as the owner); returns
    seconds per rollup, empty when nothing was queued."""
    t0 = time.perf_counter()
    x = conn.exec_driver_sql
    x(
        "CREATE TEMP TABLE _pend ON COMMIT DROP AS WITH d AS (DELETE FROM app_pending RETURNING listing_id, date_key) "
        "SELECT DISTINCT listing_id, date_key FROM d"
    )
    queued, everything = conn.execute(
        sa.text("SELECT count(*), bool_or(listing_id IS NULL AND date_key IS NULL) FROM _pend")
    ).one()
    if not queued and not full:
        x("DROP TABLE _pend")
        return {}
    if not (full or everything):
        n_keys = _keys(conn)
        stored = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE relname = 'app_prices_all'")).scalar()
        full = n_keys > REBUILD_SHARE * max(float(stored or 0), 0.0) and n_keys > 100_000
    timings = _rebuild(conn, t0) if full or everything else _incremental(conn, t0)
    x("DROP TABLE IF EXISTS _keys")
    x("DROP TABLE _pend")
    for name, held in INCREMENTAL.items():
        _stamp(conn, name, held, timings[name])
    return timings


def _keys(conn: Connection) -> int:
    """Temp table `_keys`: the (listing, day) pairs to recompute, from the queue `_pend`: queued pairs, every
    stored or source day of a queued listing, every stored or source listing of a queued day. Returns its size."""
    days = sorted(
        conn.execute(sa.text("SELECT date_key FROM _pend WHERE listing_id IS NULL AND date_key IS NOT NULL")).scalars()
    )
    # queued days as constants: fact_price's partitions are pruned when planning, its BRIN and ix_app_prices_day
    # find the day's rows
    by_day = (
        "UNION SELECT listing_id, date_key FROM app_prices_all WHERE date_key = ANY(:days) "
        "UNION SELECT listing_id, date_key FROM fact_price WHERE date_key = ANY(:days)"
        if days
        else ""
    )
    conn.execute(
        sa.text(f"""CREATE TEMP TABLE _keys ON COMMIT DROP AS
         SELECT listing_id, date_key FROM _pend WHERE listing_id IS NOT NULL AND date_key IS NOT NULL
         UNION SELECT a.listing_id, a.date_key FROM app_prices_all a
               JOIN _pend p ON p.listing_id = a.listing_id AND p.date_key IS NULL
         UNION SELECT f.listing_id, f.date_key FROM fact_price f
               JOIN _pend p ON p.listing_id = f.listing_id AND p.date_key IS NULL
         {by_day}"""),
        {"days": days} if days else {},
    )
    conn.exec_driver_sql("ANALYZE _keys")
    return int(conn.execute(sa.text("SELECT count(*) FROM _keys")).scalar_one())


#: what the rollups are computed from: ANALYZEd before a rebuild, so its joins are planned on the data as it is
_SOURCES = ("fact_price", "fact_sales", "product_match", "dim_product", "dim_listing", "dim_retailer", "dim_date")


def _rebuild(conn: Connection, t0: float) -> dict[str, float]:
    """Every rollup from its definition: TRUNCATE, its keys and indexes dropped, INSERT, then the keys and
    indexes made again (a sorted build, much faster than row by row); readers wait for the commit."""
    x = conn.exec_driver_sql
    x(f"ANALYZE {', '.join(_SOURCES)}")
    x(f"TRUNCATE {', '.join(INCREMENTAL.values())}")
    timings = {}
    for name, table in INCREMENTAL.items():
        keys = conn.execute(
            sa.text("""SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                       WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u')"""),
            {"t": table},
        ).all()
        indexes = conn.execute(
            sa.text("""SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                       WHERE x.indrelid = CAST(:t AS regclass)
                         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)"""),
            {"t": table},
        ).all()
        for key, _ in keys:
            x(f"ALTER TABLE {table} DROP CONSTRAINT {key}")
        for index, _ in indexes:
            x(f"DROP INDEX {index}")
        x(f"INSERT INTO {table} SELECT * FROM {table.removesuffix('_all')}_source")
        for key, definition in keys:
            x(f"ALTER TABLE {table} ADD CONSTRAINT {key} {definition}")
        for _, definition in indexes:
            x(definition)
        x(f"ANALYZE {table}")
        timings[name] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
    return timings


#: the sums of app_prices_daily_all: column -> expression over a signed row (s = +1 written, -1 removed)
_DAILY = {
    "n_rows": "sum(s)",
    "n_priced": "sum(s * (price IS NOT NULL)::int)",
    "price_sum": "sum(s * price)",
    "n_gap": "sum(s * (gap_pct IS NOT NULL)::int)",
    "gap_sum": "sum(s * gap_pct)",
    "n_in_stock": "sum(s * (in_stock IS TRUE)::int)",
    "n_promo": "sum(s * (promo IS TRUE)::int)",
    "n_ours": "sum(s * (our_price IS NOT NULL)::int)",
    "ours_sum": "sum(s * our_price)",
}
#: a sum column -> the count saying whether any value is left (NULL when none, as sum() of no rows)
_SUM_OF = {"price_sum": "n_priced", "gap_sum": "n_gap", "ours_sum": "n_ours"}


def _incremental(conn: Connection, t0: float) -> dict[str, float]:
    x = conn.exec_driver_sql
    timings = {}
    x("""CREATE TEMP TABLE _old ON COMMIT DROP AS
         WITH d AS (DELETE FROM app_prices_all a USING _keys k
                    WHERE a.listing_id = k.listing_id AND a.date_key = k.date_key RETURNING a.*)
         SELECT * FROM d""")
    x("""CREATE TEMP TABLE _new ON COMMIT DROP AS
         WITH i AS (INSERT INTO app_prices_all SELECT s.* FROM app_prices_source s
                    JOIN _keys k ON s.listing_id = k.listing_id AND s.date_key = k.date_key RETURNING *)
         SELECT * FROM i""")
    timings["mv_app_prices"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    signed = "(SELECT 1 AS s, * FROM _new UNION ALL SELECT -1 AS s, * FROM _old) x"
    group = "tenant_id, date_key, ds, retailer, category"
    sets = []
    for col in _DAILY:
        if col in _SUM_OF:
            n = _SUM_OF[col]
            sets.append(
                f"{col} = CASE WHEN t.{n} + excluded.{n} = 0 THEN NULL "
                f"ELSE COALESCE(t.{col}, 0) + COALESCE(excluded.{col}, 0) END"
            )
        else:
            sets.append(f"{col} = t.{col} + excluded.{col}")
    x(f"""INSERT INTO app_prices_daily_all AS t ({group}, {", ".join(_DAILY)})
          SELECT {group}, {", ".join(f"{e} AS {c}" for c, e in _DAILY.items())} FROM {signed} GROUP BY {group}
          ON CONFLICT (tenant_id, date_key, retailer, category) DO UPDATE SET {", ".join(sets)}""")
    x("DELETE FROM app_prices_daily_all WHERE n_rows = 0")
    timings["mv_app_prices_daily"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    _spans(conn)
    timings["mv_app_listing_span"] = round(time.perf_counter() - t0, 3)
    for table in ("_old", "_new"):
        x(f"DROP TABLE {table}")
    return timings


def _spans(conn: Connection) -> None:
    """Move app_listing_span_all by _old -> _new: counts by the difference, first/last/last priced day by
    LEAST/GREATEST; a listing that lost one of those days (or changed product) is recomputed from its rows."""
    x = conn.exec_driver_sql
    x("""CREATE TEMP TABLE _exact ON COMMIT DROP AS
         SELECT DISTINCT o.listing_id FROM _old o
         LEFT JOIN app_listing_span_all sp ON sp.listing_id = o.listing_id
         LEFT JOIN _new n ON n.listing_id = o.listing_id AND n.date_key = o.date_key
         WHERE sp.listing_id IS NULL
            OR (n.listing_id IS NULL AND (o.ds IN (sp.first_ds, sp.last_ds) OR o.date_key = sp.last_priced_key))
            OR (n.listing_id IS NOT NULL AND o.date_key = sp.last_priced_key AND n.price IS NULL)
            OR (n.listing_id IS NOT NULL AND ROW(n.tenant_id, n.product_id, n.sku, n.retailer, n.category)
                IS DISTINCT FROM ROW(o.tenant_id, o.product_id, o.sku, o.retailer, o.category))""")
    x("DELETE FROM app_listing_span_all t USING _exact e WHERE t.listing_id = e.listing_id")
    x("""INSERT INTO app_listing_span_all
         SELECT s.* FROM _exact e, LATERAL (SELECT * FROM app_listing_span_source v
                                           WHERE v.listing_id = e.listing_id) s""")
    x("""INSERT INTO app_listing_span_all AS t
             (tenant_id, listing_id, product_id, sku, retailer, category, first_ds, last_ds, n_days,
              last_priced_ds, last_priced_key)
         SELECT n.tenant_id, COALESCE(n.listing_id, o.listing_id), n.product_id, n.sku, n.retailer, n.category,
                n.lo, n.hi, COALESCE(n.c, 0) - COALESCE(o.c, 0), n.lp_ds, n.lp_key
         FROM (SELECT listing_id, min(tenant_id) AS tenant_id, min(product_id) AS product_id, min(sku) AS sku,
                      min(retailer) AS retailer, min(category) AS category, min(ds) AS lo, max(ds) AS hi,
                      count(*) AS c, max(ds) FILTER (WHERE price IS NOT NULL) AS lp_ds,
                      max(date_key) FILTER (WHERE price IS NOT NULL) AS lp_key
               FROM _new GROUP BY listing_id) n
         FULL JOIN (SELECT listing_id, count(*) AS c FROM _old GROUP BY listing_id) o USING (listing_id)
         WHERE COALESCE(n.listing_id, o.listing_id) NOT IN (SELECT listing_id FROM _exact)
         ON CONFLICT (listing_id) DO UPDATE SET
             n_days = t.n_days + excluded.n_days,
             first_ds = LEAST(t.first_ds, excluded.first_ds), last_ds = GREATEST(t.last_ds, excluded.last_ds),
             last_priced_ds = GREATEST(t.last_priced_ds, excluded.last_priced_ds),
             last_priced_key = GREATEST(t.last_priced_key, excluded.last_priced_key)""")
    x("DELETE FROM app_listing_span_all WHERE n_days <= 0")
    x("DROP TABLE _exact")
