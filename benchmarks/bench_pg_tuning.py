"""The embedded server's settings (#20): PostgreSQL's stock settings against `db.server.tuned_settings`, on the
same generated prices, one after the other in one run, each on a fresh embedded server of its own (pgdata
`data/bench-pg/<variant>`, deleted afterwards), nothing else running.

For each variant, as `bench_scale.py` measures them:
- the first load, a calendar month at a time (`db.load.load_prices`), then the app rollups' rebuild;
- one new day end to end (listings upsert with their history, prices, incremental rollups);
- the apps' and the API's queries (the apps' cache cleared before each call), p50/p95 over `--repeat` calls with
  the server's buffers warm, and each query once right after a server restart (shared buffers empty; the
  operating system's page cache is not dropped);
- the settings in force (`SHOW`), the disk used.

Usage: python benchmarks/bench_pg_tuning.py [--products N] [--days D] [--repeat K] [--quick]
Writes reports/benchmarks/pg_tuning.json (pg_tuning-quick.json with --quick). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from _common import record_resources, write_results  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from bench_scale import (_chunks, _day, _listing_rows, _listings, _load_days, _queries, _setup, _sizes, _time_queries,
                         _timed, size_args)

from priceintel import config
from priceintel.apps import queries as app_queries
from priceintel.db import engine as db_engine
from priceintel.db import load, migrate, server, views

SHOWN = ("shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem", "max_wal_size",
         "min_wal_size", "checkpoint_timeout")  # fmt: skip


def _settings(eng: sa.Engine) -> dict:
    with eng.connect() as conn:
        return {name: conn.exec_driver_sql(f"SHOW {name}").scalar() for name in SHOWN}


def _variant(name: str, stock: bool, n: int, days: int, repeat: int) -> dict:
    """Every phase on a fresh server with stock (PRICEINTEL_PG_TUNING=off) or tuned (=on) settings."""
    pgdata = config.data_dir() / "bench-pg" / name
    shutil.rmtree(pgdata, ignore_errors=True)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    old = os.environ.pop(server.TUNING_ENV, None)
    os.environ[server.TUNING_ENV] = "off" if stock else "on"
    out: dict = {"variant": name}
    try:
        base = server.start_embedded(pgdata)
        url = db_engine.create_database(base, "bench")
        migrate.upgrade(url)
        eng = sa.create_engine(url)  # the owner, no tenant switch, as bench_scale
        out["settings"] = _settings(eng)
        listings = _listings(n)
        dates = pd.date_range("2025-06-01", periods=days + 1)
        _setup(eng, n, listings)
        with eng.begin() as conn:
            load.upsert_listings(conn, _listing_rows(listings), seen_date=dates[0].date())
        out["first_load"] = _load_days(eng, _chunks(listings, dates[:-1]))
        _, secs = _timed(views.refresh, eng)
        out["first_load"]["app_views_rebuild_s"] = round(secs, 1)
        t0 = time.perf_counter()
        with eng.begin() as conn:
            load.upsert_listings(conn, _listing_rows(listings), seen_date=dates[-1].date())
        listings_s = time.perf_counter() - t0
        inc = _load_days(eng, [_day(listings, dates[-1])])
        refresh = views.refresh(eng)
        out["daily_increment"] = {"listings_upsert_s": round(listings_s, 2), "prices_s": inc["seconds"],
                                  "app_views": refresh, "end_to_end_s": round(time.perf_counter() - t0, 2)}  # fmt: skip
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        out["sizes"] = _sizes(eng, baseline=False)
        calls = _queries(n)
        out["queries_warm"] = _time_queries(eng, calls, repeat, budget=120)
        eng.dispose()
        db_engine.dispose_engines()
        server.stop_embedded(pgdata)
        server.start_embedded(pgdata)  # shared buffers empty again
        eng = sa.create_engine(url)
        out["queries_after_restart"] = _time_queries(eng, calls, 1, budget=120)
        eng.dispose()
    finally:
        db_engine.dispose_engines()
        server.stop_embedded(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
        os.environ.pop(server.TUNING_ENV, None)
        if old is not None:
            os.environ[server.TUNING_ENV] = old
        app_queries.CACHE.clear()
    return out


def main() -> dict:
    args, n, days = size_args(10_000, 365, quick_products=1_000, quick_days=30)
    out: dict = {"generated_at": datetime.now(UTC).isoformat(), "quick": args.quick, "products": n, "retailers": 4,
                 "days": days, "rows": n * 4 * days, "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
                 "tuned_settings_here": server.tuned_settings()}  # fmt: skip
    for name, stock in (("stock", True), ("tuned", False)):
        out[name] = _variant(name, stock, n, days, args.repeat)
        write_results("pg_tuning", {**out, "complete": False}, args.quick)
    s, t = out["stock"], out["tuned"]
    out["ratios_stock_over_tuned"] = {
        "first_load": round(s["first_load"]["seconds"] / t["first_load"]["seconds"], 2),
        "app_views_rebuild": round(s["first_load"]["app_views_rebuild_s"] / t["first_load"]["app_views_rebuild_s"], 2),
        "daily_increment": round(s["daily_increment"]["end_to_end_s"] / t["daily_increment"]["end_to_end_s"], 2),
        **{f"p95 {q}": round(s["queries_warm"][q]["p95_ms"] / max(t["queries_warm"][q]["p95_ms"], 0.1), 2)
           for q in s["queries_warm"]},  # fmt: skip
    }
    out["loadavg_after"] = os.getloadavg()
    out["complete"] = True
    return record_resources(out)


if __name__ == "__main__":
    import json

    results = main()
    path = write_results("pg_tuning", results, "--quick" in sys.argv)
    print(json.dumps(results, indent=2, default=str))
    print(f"written to {path}")
