"""Foundation benchmark: demo-world generation, storefront serving and idempotent Postgres loads.

Writes reports/benchmarks/foundation.json.  Usage: python benchmarks/bench_foundation.py [--quick]
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone

import pandas as pd
import requests

from priceintel import demo
from priceintel.db import engine as db_engine
from priceintel.db import load, migrate, server
from _common import record_resources, run_cli, true_observations  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main(quick: bool) -> dict:
    """Run every measurement; return the results dict."""
    sizes = [(50, 90), (500, 365)] if quick else [(50, 90), (5000, 365)]
    out: dict = {"generated_at": datetime.now(timezone.utc).isoformat(), "quick": quick,
                 "loadavg_before": os.getloadavg(), "cpus": os.cpu_count()}
    gen = {}
    for n, d in sizes:
        world, secs = _timed(demo.generate_world, n_products=n, n_days=d, seed=42)
        gen[f"{n}x{d}"] = {"seconds": round(secs, 2), "price_rows": len(world.prices)}
    out["generate_world"] = gen

    small = demo.generate_world(n_products=50, n_days=90, seed=42)
    with demo.Storefronts(small) as shops:
        urls = shops.start()
        paths = small.listings[small.listings.retailer == "target"]["url"].tolist()
        s = requests.Session()
        n_req = 300 if quick else 2000
        t0 = time.perf_counter()
        for i in range(n_req):
            s.get(urls["target"] + paths[i % len(paths)], timeout=5).raise_for_status()
        out["storefront_pages_per_s_single_client"] = round(n_req / (time.perf_counter() - t0), 1)

    world = demo.generate_world(n_products=500 if quick else 5000, n_days=30 if quick else 90, seed=42)
    base = server.start_embedded()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    url = db_engine.create_database(base, name)
    try:
        migrate.upgrade(url)
        eng = db_engine.get_engine(url)
        obs = true_observations(world)
        listings = world.listings[["retailer", "item_id", "url", "title", "brand", "gtin", "mpn"]]
        retailers = pd.DataFrame({"retailer": demo.RETAILERS, "name": [r.title() for r in demo.RETAILERS],
                                  "base_url": None})
        timings = {}
        for attempt in ("first", "reload"):
            t0 = time.perf_counter()
            with eng.begin() as conn:
                load.ensure_dates(conn, obs.ds.min(), obs.ds.max())
                load.upsert_retailers(conn, retailers)
                load.upsert_products(conn, world.products)
                load.upsert_listings(conn, listings)
                counts = load.load_prices(conn, obs)
                load.load_sales(conn, world.sales)
            timings[attempt] = {"seconds": round(time.perf_counter() - t0, 2), "fact_price": counts}
        out["load"] = {"price_rows": len(obs), "sales_rows": len(world.sales), **timings,
                       "rows_per_s_first": round(len(obs) / timings["first"]["seconds"])}
    finally:
        db_engine.dispose_engines()
        db_engine.drop_database(base, name)
    return record_resources(out)


if __name__ == "__main__":
    run_cli("foundation", main)
