"""Alerts/quality benchmark: detection, rules, dedup store, SQL + pandera checks and webhook delivery.

Loads a demo world's true prices (a perfect scrape) with its true matches into a fresh database, then
times each post-load step on the last day. Writes reports/benchmarks/alerts.json (alerts-quick.json
with --quick).  Usage: python benchmarks/bench_alerts.py [--quick]
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

from priceintel import config
from priceintel.alerts.deliver import deliver_pending
from priceintel.alerts.detect import detect
from priceintel.alerts.rules import load_rules
from priceintel.alerts.store import store_alerts
from priceintel.demo import world as demo
from priceintel.alerts import notify
from priceintel.pipeline import quality
from priceintel.db import engine as db_engine
from priceintel.db import load, migrate, server
from _common import record_resources, run_cli, true_observations  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t0, 3)


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main(quick: bool) -> dict:
    """Run every measurement; return the results dict."""
    n_products, n_days = (100, 60) if quick else (1000, 90)
    out: dict = {"generated_at": datetime.now(timezone.utc).isoformat(), "quick": quick, "cpus": os.cpu_count(),
                 "loadavg_before": os.getloadavg(), "world": {"products": n_products, "days": n_days, "seed": 42}}
    t_all = time.perf_counter()
    world = demo.generate_world(n_products=n_products, n_days=n_days, seed=42)
    obs = true_observations(world)
    matches = world.truth_matches.dropna(subset=["sku"]).assign(method="gtin", score=1.0, status="auto")
    base = server.start_embedded()
    name = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    url = db_engine.create_database(base, name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        migrate.upgrade(url)
        eng = db_engine.get_engine(url)
        with eng.begin() as conn:
            load.ensure_dates(conn, obs.ds.min(), obs.ds.max())
            load.upsert_retailers(conn, pd.DataFrame({"retailer": demo.RETAILERS}))
            load.upsert_products(conn, world.products)
            load.upsert_listings(conn, world.listings[["retailer", "item_id", "url", "title", "brand", "gtin", "mpn"]])
            load.load_matches(conn, matches)
            load.load_prices(conn, obs)
            load.load_sales(conn, world.sales)
        rules = load_rules(config.PROJ_ROOT / "config" / "alert_rules.yaml")
        events, t_detect = _timed(detect, eng)
        found, t_apply = _timed(rules.apply, events)
        as_of = events["ds"].iloc[0]
        first, t_store = _timed(store_alerts, eng, found, as_of)
        again, t_restore = _timed(store_alerts, eng, found, as_of)
        checks, t_sql = _timed(quality.sql_checks, eng)
        frame, t_frame = _timed(quality.validate_frame, obs.reset_index(drop=True), "observations")
        hook = {"webhook": notify.WebhookNotifier(f"http://127.0.0.1:{httpd.server_address[1]}/hook")}
        noon = datetime.combine(as_of, datetime.min.time()).replace(hour=12, tzinfo=timezone.utc)
        sent, t_send = _timed(deliver_pending, eng, hook, rules, noon)
        out.update({
            "listings": int(obs[["retailer", "item_id"]].drop_duplicates().shape[0]),
            "observations": len(obs),
            "detect": {"seconds": t_detect, "events": len(events),
                       "events_by_kind": events.groupby("kind").size().to_dict()},
            "rules_apply": {"seconds": t_apply, "alerts": len(found)},
            "store_first": {"seconds": t_store, "inserted": first.inserted},
            "store_rerun": {"seconds": t_restore, "inserted": again.inserted, "duplicates": again.duplicates},
            "sql_checks": {"seconds": t_sql, "failed": [c.name for c in checks if not c.passed]},
            "pandera_observations": {"seconds": t_frame, "rows": len(obs), "passed": all(r.passed for r in frame)},
            "deliver_webhook": {"seconds": t_send, **sent},
        })
    finally:
        httpd.shutdown()
        db_engine.dispose_engines()
        db_engine.drop_database(base, name)
    out["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    return record_resources(out)


if __name__ == "__main__":
    run_cli("alerts", main)
