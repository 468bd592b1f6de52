"""Scale benchmark (#20): N products × 4 retailers × D days of prices loaded, re-loaded, kept up to date and
queried, each against a baseline measured in the same run on the same embedded PostgreSQL.

- **Load.** A year loaded a calendar month at a time (a backfill's files). Raw COPY: the same rows, each month
  written as CSV before the clock starts, copied into a table with no index, key or check (the ceiling). First
  load: `db.load.load_prices` of each month (validation, staging COPY, listing lookups,
  monthly partitions, UPDATE of changed rows, INSERT of new ones), then the app rollups' rebuild. Reload: every
  day loaded again, unchanged (must insert and update nothing).
- **Daily increment.** One new day for every listing, loaded, then the app views brought up to date
  (`db.views.refresh`: the incremental rollups and the forecast/elasticity materialized views).
- **Queries.** The apps' queries (`apps.queries`: first page, filtered pages, chart, summary) and the API's
  (`db.queries`: a product's price history, latest prices, price index), with the apps' cache cleared before
  each call, p50/p95 over `--repeat` calls. The baseline runs the very same functions with `search_path` set to
  a schema `baseline` holding the same rows in one unpartitioned table with no index at all, and the app views
  as plain views computed on read (what a database without partitions, indexes or rollups does).
- **Disk.** fact_price with its partitions and indexes, the app rollups, the baseline table.

Usage: python benchmarks/bench_scale.py [--quick] [--products N] [--days D] [--repeat K]
Writes reports/benchmarks/scale.json (scale-quick.json with --quick). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from _common import record_resources, write_results  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from priceintel.apps import queries as app_queries
from priceintel.apps.filters import Filters
from priceintel.db import engine as db_engine
from priceintel.db import load, migrate, queries, server, staging, views

RETAILERS = ("amazon", "walmart", "target", "bestbuy")
CATEGORIES = 40
SEED = 20


def _listings(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"retailer": np.repeat(RETAILERS, n), "item_id": [f"I{i:06d}" for i in range(n)] * len(RETAILERS)}
    )


def _listing_rows(listings: pd.DataFrame) -> pd.DataFrame:
    """The listings with a url and title, as a scrape's clean stage hands them to the load."""
    return listings.assign(url="https://" + listings["retailer"] + ".example/p/" + listings["item_id"],
                           title="Product " + listings["item_id"])  # fmt: skip


def _day(listings: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """One day's observation of every listing: prices in steps (a regular price, a promotion 15% of days); the
    same day gives the same rows (seeded by the day)."""
    rng = np.random.default_rng([SEED, day.toordinal()])
    n = len(listings)
    regular = 5 + (np.arange(n) % 997) * 0.05
    promo = rng.random(n) < 0.15
    price = np.round(np.where(promo, regular * 0.8, regular), 2)
    priced = rng.random(n) > 0.03
    return pd.DataFrame(
        {
            "retailer": listings["retailer"].to_numpy(),
            "item_id": listings["item_id"].to_numpy(),
            "ds": day,
            "observed_at": day.tz_localize("UTC") + pd.Timedelta(hours=6),
            "price": np.where(priced, price, np.nan),
            "currency": np.where(priced, "USD", None),
            "in_stock": priced,
            "promo": promo & priced,
        }
    )


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _setup(eng: sa.Engine, n: int, listings: pd.DataFrame) -> None:
    skus = [f"S{i:06d}" for i in range(n)]
    products = pd.DataFrame(
        {
            "sku": skus,
            "name": [f"Product {i}" for i in range(n)],
            "category": [f"c{i % CATEGORIES:02d}" for i in range(n)],
        }
    )
    matches = listings.assign(sku=skus * len(RETAILERS), method="gtin", score=1.0, status="auto")
    with eng.begin() as conn:
        load.upsert_retailers(conn, pd.DataFrame({"retailer": list(RETAILERS)}))
        load.upsert_products(conn, products)
        load.upsert_listings(conn, listings)
        load.load_matches(conn, matches)


def _chunks(listings: pd.DataFrame, dates: pd.DatetimeIndex) -> Iterator[pd.DataFrame]:
    """The days' observations a calendar month at a time (a backfill's files)."""
    for _, month in pd.Series(dates, index=dates).groupby(dates.to_period("M")):
        yield pd.concat([_day(listings, d) for d in month], ignore_index=True)


def _raw_copy(eng: sa.Engine, frames: Iterable[pd.DataFrame]) -> dict:
    """COPY of the same rows (each chunk written as CSV before the clock starts) into a table with no index,
    key or check."""
    cols = [c for c in load._PRICE_COLS if c.name in ("retailer", "item_id", "ds", "observed_at", "price",
                                                       "currency", "in_stock", "promo")]  # fmt: skip
    ddl = ", ".join(["_row bigint", *(f"{c.name} {c.pgtype}" for c in cols)])
    names = ", ".join(["_row", *(c.name for c in cols)])
    with eng.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE raw_copy ({ddl})")
    rows, secs = 0, 0.0
    raw = eng.raw_connection()
    try:
        for f in frames:
            present, conv = staging.prepare(f, "fact_price", cols, load._PRICE_KEYS)
            block = staging._csv(conv, present)
            t0 = time.perf_counter()
            with raw.cursor() as cur:
                with cur.copy(f"COPY raw_copy ({names}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(block)
            raw.commit()
            secs += time.perf_counter() - t0
            rows += len(f)
    finally:
        raw.close()
    with eng.begin() as conn:
        conn.exec_driver_sql("DROP TABLE raw_copy")
    return {"rows": rows, "seconds": round(secs, 2), "rows_per_s": round(rows / secs)}


def _load_days(eng: sa.Engine, frames: Iterable[pd.DataFrame]) -> dict:
    """load_prices of each frame in its own transaction; the clock runs only while loading."""
    counts = {"inserted": 0, "updated": 0}
    secs, rows = 0.0, 0
    for f in frames:
        t0 = time.perf_counter()
        with eng.begin() as conn:
            c = load.load_prices(conn, f)
        secs += time.perf_counter() - t0
        rows += len(f)
        counts["inserted"] += c["inserted"]
        counts["updated"] += c["updated"]
    return {"rows": rows, "seconds": round(secs, 2), "rows_per_s": round(rows / secs), **counts}


def _baseline(eng: sa.Engine) -> float:
    """Schema `baseline`: fact_price's rows in one table with no index; the app views as plain views over it."""
    t0 = time.perf_counter()
    names = ("app_prices_source", "app_prices_daily_source", "app_listing_span_source", "v_latest_price",
             "v_price_vs_ours", "v_daily_price_stats")  # fmt: skip
    with eng.begin() as conn:  # the definitions as stored (names unqualified: read before the schema exists)
        defs = {
            v: conn.execute(sa.text("SELECT pg_get_viewdef(CAST(:v AS regclass))"), {"v": v}).scalar().rstrip("; \n")
            for v in names
        }
    with eng.begin() as conn:
        x = conn.exec_driver_sql
        x("DROP SCHEMA IF EXISTS baseline CASCADE")
        x("CREATE SCHEMA baseline")
        x("CREATE TABLE baseline.fact_price AS SELECT * FROM public.fact_price")
        x("ANALYZE baseline.fact_price")
        x("SET LOCAL search_path = baseline, public")  # unqualified fact_price: the baseline's
        for name in ("v_latest_price", "v_price_vs_ours", "v_daily_price_stats"):
            x(f"CREATE VIEW baseline.{name} AS {defs[name]}")
        tenant = " WHERE tenant_id = (SELECT priceintel_tenant())"
        x(f"CREATE VIEW baseline.mv_app_prices AS SELECT * FROM ({defs['app_prices_source']}) s{tenant}")
        for name, source in (("mv_app_prices_daily", "app_prices_daily_source"),
                             ("mv_app_listing_span", "app_listing_span_source")):  # fmt: skip
            body = defs[source].replace("app_prices_all", "baseline.mv_app_prices")
            x(f"CREATE VIEW baseline.{name} AS SELECT * FROM ({body}) s{tenant}")
    return time.perf_counter() - t0


def _queries(n: int) -> dict:
    """name -> call(engine): what the apps and the API run."""
    sku = f"S{n // 2:06d}"
    f_all, f_sku, f_cat = Filters(), Filters(skus=(sku,)), Filters(categories=("c07",))
    return {
        "app prices: first page": lambda e: app_queries.page(e, "prices", f_all),
        "app prices: one product": lambda e: app_queries.page(e, "prices", f_sku),
        "app prices: one category": lambda e: app_queries.page(e, "prices", f_cat),
        "app prices: summary": lambda e: app_queries.summary(e, "prices", f_all),
        "app prices: chart (one category)": lambda e: app_queries.chart_frame(e, "prices", f_cat),
        "api: price history of a product": lambda e: queries.price_history_json(e, sku),
        "api: latest prices of a product": lambda e: queries.latest_prices_json(e, sku),
        "api: price index of a product": lambda e: queries.price_vs_ours(e, sku),
    }


def _time_queries(eng: sa.Engine, calls: dict, repeat: int, budget: float) -> dict:
    out = {}
    for name, call in calls.items():
        secs = []
        for _ in range(repeat):
            app_queries.CACHE.clear()
            t0 = time.perf_counter()
            call(eng)
            secs.append(time.perf_counter() - t0)
            if sum(secs) > budget:  # a slow baseline: a few calls say enough
                break
        ms = sorted(1000 * s for s in secs)
        out[name] = {"calls": len(ms), "p50_ms": round(statistics.median(ms), 1),
                     "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1)}  # fmt: skip
    return out


def _sizes(eng: sa.Engine, baseline: bool = True) -> dict:
    """MB on disk of fact_price (partitions and indexes), the app rollups and (baseline) the baseline table."""
    base = ", pg_total_relation_size('baseline.fact_price') / 1e6" if baseline else ""
    with eng.connect() as conn:
        mb = conn.execute(
            sa.text(f"""SELECT
              (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('fact_price')) / 1e6,
              (SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['app_prices_all', 'app_prices_daily_all',
                      'app_listing_span_all']::regclass[]) c) / 1e6{base}""")
        ).one()
    out = {"fact_price_mb": round(mb[0]), "app_rollups_mb": round(mb[1])}
    return out | ({"baseline_table_mb": round(mb[2])} if baseline else {})


def size_args(products: int, days: int, quick_products: int, quick_days: int) -> tuple[argparse.Namespace, int, int]:
    """The size options (--quick, --products, --days, --repeat): (args, products, days)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--products", type=int)
    ap.add_argument("--days", type=int)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    n = args.products or (quick_products if args.quick else products)
    return args, n, args.days or (quick_days if args.quick else days)


def main() -> dict:
    args, n, days = size_args(50_000, 365, quick_products=2_000, quick_days=60)
    out: dict = {"generated_at": datetime.now(UTC).isoformat(), "quick": args.quick, "products": n,
                 "retailers": len(RETAILERS), "days": days, "cpus": os.cpu_count(),
                 "loadavg_before": os.getloadavg()}  # fmt: skip
    listings = _listings(n)
    dates = pd.date_range("2025-06-01", periods=days + 1)

    def save() -> None:  # what is measured so far (a long run that stops keeps its figures)
        write_results("scale", {**out, "complete": False}, args.quick)

    base = server.start_embedded()
    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    url = db_engine.create_database(base, name)
    try:
        migrate.upgrade(url)
        eng = sa.create_engine(url)  # the owner, no tenant switch: both sides of every comparison alike
        _setup(eng, n, listings)
        with eng.begin() as conn:
            load.upsert_listings(conn, _listing_rows(listings), seen_date=dates[0].date())
        out["raw_copy"] = _raw_copy(eng, _chunks(listings, dates[:-1]))
        save()
        out["first_load"] = _load_days(eng, _chunks(listings, dates[:-1]))
        _, secs = _timed(views.refresh, eng)
        out["first_load"]["app_views_rebuild_s"] = round(secs, 1)
        out["first_load"]["share_of_raw_copy"] = round(
            out["first_load"]["rows_per_s"] / out["raw_copy"]["rows_per_s"], 3
        )
        save()
        new_day = _day(listings, dates[-1])
        t0 = time.perf_counter()
        with eng.begin() as conn:  # the day's listings as the pipeline's load stage upserts them (history)
            load.upsert_listings(conn, _listing_rows(listings), seen_date=dates[-1].date())
        listings_s = time.perf_counter() - t0
        inc = _load_days(eng, [new_day])
        refresh = views.refresh(eng)
        out["daily_increment"] = {"listings_upsert_s": round(listings_s, 2), "prices": inc, "app_views": refresh,
                                  "end_to_end_s": round(time.perf_counter() - t0, 2), "goal_s": 60}  # fmt: skip
        save()
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")  # as autovacuum would have by the time people read
        out["baseline_build_s"] = round(_baseline(eng), 1)
        save()
        out["sizes"] = _sizes(eng)
        calls = _queries(n)
        out["queries"] = _time_queries(eng, calls, args.repeat, budget=120)
        save()
        base_eng = sa.create_engine(url, connect_args={"options": "-c search_path=baseline,public"})
        out["queries_baseline"] = _time_queries(base_eng, calls, args.repeat, budget=60)
        out["queries_goal_p95_ms"] = 200
        out["queries_p95_under_goal"] = all(q["p95_ms"] < 200 for q in out["queries"].values())
        base_eng.dispose()
        save()
        out["reload_unchanged"] = _load_days(eng, _chunks(listings, dates[:-1]))
        out["reload_unchanged"]["vs_first_load"] = round(
            out["reload_unchanged"]["rows_per_s"] / out["first_load"]["rows_per_s"], 2
        )
        _, secs = _timed(views.refresh, eng)
        out["reload_unchanged"]["app_views_refresh_s"] = round(secs, 2)
        save()
        eng.dispose()
    finally:
        db_engine.dispose_engines()
        db_engine.drop_database(base, name)
    out["complete"] = True
    return record_resources(out)


if __name__ == "__main__":
    import json

    results = main()
    path = write_results("scale", results, "--quick" in sys.argv)  # complete
    print(json.dumps(results, indent=2, default=str))
    print(f"written to {path}")
