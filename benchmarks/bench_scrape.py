"""Scraping benchmark → reports/benchmarks/scrape.json.

1. Accuracy: `priceintel eval pages` on the shared real pages (all 70, and the fixed dev / held-out
   halves of `split_page_ids(seed=2026)`), `priceintel eval prices` on the shared price strings, and
   field-by-field agreement with the generator's truth on one day of the demo storefronts.
2. Throughput of parse + extract, CPU seconds of this process (so per core): saved demo pages and the
   real pages.
3. Crawl of 5,000 products × 3 demo shops over loopback (discovery + fetch + archive + extract),
   politeness off (no rate limit) → pages/s; politeness on (a per-host rate limit) on a subset →
   the achieved per-host rate and the smallest gap between two requests to one host.

    .venv/bin/python benchmarks/bench_scrape.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from priceintel import config, demo  # noqa: E402
from priceintel.items import IN_STOCK  # noqa: E402
from priceintel.scrape import Fetcher, RawArchive, extract, scrape_demo  # noqa: E402
from priceintel.scrape.evaluate import evaluate_pages, evaluate_prices, split_page_ids  # noqa: E402

OUT = config.PROJ_ROOT / "reports" / "benchmarks" / "scrape.json"


def _f1s(res: dict) -> dict:
    """Compact {field: {precision, recall, f1}} of an evaluate_pages result."""
    return {"n": res["n"], **{k: {m: res[k][m] for m in ("precision", "recall", "f1")}
                              for k in ("price", "sku", "availability")}}


def accuracy() -> dict:
    """Extraction and price-parsing figures on the shared data (skipped when it is absent)."""
    pages = config.shared_data_dir() / "pages"
    prices = config.shared_data_dir() / "prices" / "price_strings.csv"
    out: dict = {}
    if (pages / "truth.csv").is_file():
        dev, held = split_page_ids(pages)
        out["pages_all"] = _f1s(evaluate_pages(pages))
        out["pages_dev_half"] = _f1s(evaluate_pages(pages, dev))
        out["pages_heldout_half"] = _f1s(evaluate_pages(pages, held))
        out["pages_split"] = "split_page_ids(seed=2026): sorted page ids shuffled, 35 dev / 35 held out"
    if prices.is_file():
        out["prices"] = evaluate_prices(prices)
    return out


def demo_truth(world: demo.World, fronts: demo.Storefronts, tmp: Path) -> tuple[dict, list[tuple]]:
    """Field agreement with the generator on one day; returns (figures, saved pages for throughput)."""
    day = world.start + timedelta(days=min(3, int(world.params["n_days"]) - 1))
    arc = RawArchive(tmp / "truth-raw")
    with Fetcher(archive=arc, backoff=0.01, max_workers=8) as f:
        offers, errors = scrape_demo(fronts.urls, [day], f, progress=False)
    truth = world.prices[world.prices.ds == pd.Timestamp(day)].merge(
        world.listings.drop(columns=["url"]), on=["retailer", "item_id"])
    m = offers.merge(truth, on=["retailer", "item_id"], suffixes=("", "_true"))
    checks = {
        "title": m.title == m.title_true,
        "brand": m.brand.fillna("") == m.brand_true.fillna(""),
        "mpn": m.mpn.fillna("") == m.mpn_true.fillna(""),
        "gtin": np.where(m.retailer == "amazon", m.gtin.isna(), m.gtin.fillna("") == m.gtin_true.fillna("")),
        "in_stock": (m.availability == IN_STOCK) == m.in_stock.astype(bool),
        "price": np.where(m.in_stock.astype(bool), np.isclose(pd.to_numeric(m.price), m.price_true),
                          m.price.isna()),
        "list_price": np.where(m.promo.astype(bool), np.isclose(pd.to_numeric(m.list_price), m.list_price_true),
                               m.list_price.isna()),
    }
    expected_errors = int((truth.in_stock & truth.price.isna()).sum())
    figures = {"pages": int(len(offers) + len(errors)), "offers": int(len(offers)),
               "errors": int(len(errors)), "expected_errors": expected_errors,
               "field_accuracy": {k: round(float(np.mean(v)), 4) for k, v in checks.items()},
               "all_fields_match": bool(all(np.all(v) for v in checks.values())
                                        and len(errors) == expected_errors)}
    saved = [(arc.get(r.page_sha256), r.url, r.retailer) for r in offers.itertuples()]
    return figures, saved


def throughput(pages: list[tuple], repeat: int = 1) -> dict:
    """Parse + extract rate over saved pages, in CPU seconds of this process (= per core)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeat):
        for body, url, retailer in pages:
            extract(body, url, retailer)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = len(pages) * repeat
    return {"pages": n, "mean_kb": round(float(np.mean([len(b) for b, _, _ in pages])) / 1024, 1),
            "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "pages_per_cpu_second": round(n / cpu, 1) if cpu else None}


def real_pages() -> list[tuple]:
    """The shared real pages as (body, url, None) for the throughput measurement."""
    import csv
    import gzip

    root = config.shared_data_dir() / "pages"
    if not (root / "truth.csv").is_file():
        return []
    with (root / "truth.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [(gzip.decompress((root / r["file"]).read_bytes()), r["url"], None) for r in rows]


def crawl(world: demo.World, fronts: demo.Storefronts, tmp: Path, rate: float, limit: int | None,
          tag: str) -> dict:
    """One crawl of every shop (discovery + product pages) with `rate` requests/s per host (0 = off)."""
    day = world.start
    arc = RawArchive(tmp / f"crawl-{tag}")
    with Fetcher(archive=arc, backoff=0.05, max_workers=16, rate_limit_per_host=rate, trace=True) as f:
        t0 = time.perf_counter()
        offers, errors = scrape_demo(fronts.urls, [day], f, product_limit=limit, progress=False)
        wall = time.perf_counter() - t0
        trace = list(f.trace or [])
    recs = [x for x in arc.iter_index() if x["meta"].get("kind") == "product"]
    out = {"rate_limit_per_host": rate, "product_limit_per_shop": limit, "wall_s": round(wall, 2),
           "product_pages": len(recs), "offers": int(len(offers)), "errors": int(len(errors)),
           "pages_per_s": round(len(recs) / wall, 1)}
    if rate:
        # request send times per host (robots.txt, sitemap and product pages alike)
        per_host = {}
        hosts = {urlsplit(u).netloc: r for r, u in fronts.urls.items()}
        for host, r in hosts.items():
            ts = np.sort(np.array([t for h, t in trace if h == host]))
            if len(ts) > 1:
                gaps = np.diff(ts)
                in_window = np.searchsorted(ts, ts + 1.0, side="left") - np.arange(len(ts))
                per_host[r] = {"requests": int(len(ts)),
                               "achieved_rate": round(float((len(ts) - 1) / (ts[-1] - ts[0])), 2),
                               "max_requests_in_any_1s": int(in_window.max()),
                               "min_gap_s": round(float(gaps.min()), 4),
                               "median_gap_s": round(float(np.median(gaps)), 4)}
        out["per_host"] = per_host
        # holds when no one-second window saw more than `rate` requests to one host and no two
        # requests to one host were sent closer than 1/rate
        out["limit_holds"] = bool(per_host) and all(
            v["max_requests_in_any_1s"] <= rate and v["min_gap_s"] >= 1 / rate - 1e-4 for v in per_host.values())
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write reports/benchmarks/scrape.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run (200 products)")
    args = ap.parse_args(argv)
    n_products = 200 if args.quick else 5000
    polite_rate, polite_limit = (20.0, 40) if args.quick else (50.0, 500)
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    result: dict = {"quick": args.quick, "python": platform.python_version(), "cpus": os.cpu_count()}
    result["accuracy"] = accuracy()
    print("accuracy", json.dumps(result["accuracy"]), flush=True)
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        small = demo.generate_world(n_products=50, n_days=7, seed=42)
        with demo.Storefronts(small) as fronts:
            result["demo_truth"], saved = demo_truth(small, fronts, tmp)
        print("demo_truth", json.dumps(result["demo_truth"]), flush=True)
        result["extract_throughput"] = {
            "demo_pages": throughput(saved, repeat=2 if args.quick else 5),
            "real_pages": throughput(real_pages()),
        }
        print("throughput", json.dumps(result["extract_throughput"]), flush=True)
        t0 = time.perf_counter()
        big = demo.generate_world(n_products=n_products, n_days=1, seed=42)
        result["world_seconds"] = round(time.perf_counter() - t0, 2)
        with demo.Storefronts(big) as fronts:
            result["crawl_politeness_off"] = crawl(big, fronts, tmp, 0.0, None, "off")
            print("crawl off", json.dumps(result["crawl_politeness_off"]), flush=True)
            result["crawl_politeness_on"] = crawl(big, fronts, tmp, polite_rate, polite_limit, "on")
            print("crawl on", json.dumps(result["crawl_politeness_on"]), flush=True)
        result["crawl_products"] = n_products
    result["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    result["loadavg_before"] = [round(x, 2) for x in load_before]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
