"""Scraping benchmark → reports/benchmarks/scrape.json.

1. Accuracy: `priceintel eval pages` on the shared real pages (all 70, and the shop-disjoint
   development / held-out halves of `split_pages_by_site_hash()`, see `HELDOUT_NOTE`), `priceintel eval
   prices` on the shared price strings, and field-by-field agreement with the generator's truth on one
   day of the demo storefronts.
2. Throughput of parse + extract in one process, on one core: CPU seconds (`time.process_time`) of
   whole passes over the saved pages (all 70 real pages, the demo pages), several passes, median.
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
from _common import write_results  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from priceintel import (
    config,  # noqa: E402
    demo,
)
from priceintel.items import IN_STOCK  # noqa: E402
from priceintel.scrape import Fetcher, RawArchive, extract, scrape_demo  # noqa: E402
from priceintel.scrape.evaluate import (  # noqa: E402
    evaluate_pages,
    evaluate_prices,
    split_page_ids,
    split_pages_by_site,
    split_pages_by_site_hash,
)

#: what the held-out figure is and is not
HELDOUT_NOTE = (
    "Site-disjoint split without a seed to choose: split_pages_by_site_hash() groups a shop's country domains "
    "(site_key: amazon.com/.de/.co.uk -> amazon), orders the shops by the SHA-256 of their key and fills the "
    "development half in that order until it holds half of the 70 pages (35 pages from 20 shops / 35 pages "
    "from 18 shops, no shop on both sides). The split was fixed before any change of the session that made "
    "it (issue #18, extraction); that session studied errors on the development pages only, made general "
    "rules (no shop, page or domain keys; shop-specific words taken out of the generic layers) and scored "
    "the held-out half once at the end. Caveat: earlier sessions tuned the extractor on all 70 pages, so the "
    "held-out figure is still optimistic; the older seeded splits are kept for comparison.")


#: F1 of the extractor as it was before issue #18's extraction changes, on the same split (scored once)
BEFORE_ISSUE18 = {
    "dev": {"n": 35, "price": 0.9714, "sku": 1.0, "availability": 0.9429},
    "heldout": {"n": 35, "price": 0.9118, "sku": 1.0, "availability": 1.0},
    "all": {"n": 70, "price": 0.942, "sku": 1.0, "availability": 0.9714},
}


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
        out["pages_all"] = _f1s(evaluate_pages(pages))
        dev, held = split_pages_by_site_hash(pages)
        old_dev, old_test = split_pages_by_site(pages, seed=4)
        rand_dev, rand_held = split_page_ids(pages, seed=2026)
        out["heldout"] = {
            "split": "split_pages_by_site_hash()", "note": HELDOUT_NOTE,
            "dev": _f1s(evaluate_pages(pages, dev)), "heldout": _f1s(evaluate_pages(pages, held)),
            "before_issue18": BEFORE_ISSUE18,
            "site_split_seed4": {"split": "split_pages_by_site(seed=4)",
                                 "dev": _f1s(evaluate_pages(pages, old_dev)),
                                 "test": _f1s(evaluate_pages(pages, old_test))},
            "first_look_before_tuning": {"split": "split_page_ids(seed=2026), held-out half", "n": 35,
                                         "price": 0.853, "sku": 0.831, "availability": 0.899},
            "random_halves_after_tuning": {"split": "split_page_ids(seed=2026)",
                                           "dev": _f1s(evaluate_pages(pages, rand_dev)),
                                           "held": _f1s(evaluate_pages(pages, rand_held))},
        }
    if prices.is_file():
        out["prices"] = evaluate_prices(prices)
    out["price_strings"] = price_strings(prices)
    return out


#: how the price-string split was used (issue #18, "currency as written")
PRICE_SPLIT_NOTE = (
    "Development / held-out split of the shared price strings by the parity of sha256(raw_string) "
    "(priceintel.scrape.evaluate.price_case_split). The CLDR currency recognition was developed looking "
    "only at the dev half; the held-out half was scored once at the end: 0.9058 (amount 0.9708). Four "
    "general rules were added after that look (an alphabetic sign inside a word is no currency; a hint's "
    "free text yields symbols and codes only, not name words; Cyrillic contractions of CLDR names, needed "
    "for 'тг.' on two real pages; Hebrew acronyms of CLDR names), so the held-out figure below is no "
    "longer untouched; then four rules deriving variants from the whole CLDR table (ASCII folding, "
    "abbreviation plurals, country-letter prefixes of shared signs, the cent sign) were added looking at dev "
    "only, and held-out was scored a second time; one more derived rule (right-to-left dotted abbreviations in "
    "visual order, e.g. CLDR's IQD sign read as it shows on screen) was added looking at dev only, and held-out "
    "scored a third time (the figure below, unchanged by it). Caveat: the "
    "strings are price-parser's own regression tests (its sign list and amount reading were built on "
    "them), and the project's earlier hand-grown currency table (0.977 on all 595) was grown from them.")


def price_strings(cases: Path) -> dict:
    """Price-string figures: shared strings by split (dev / held-out / all) and CLDR-formatted prices.

    CLDR: every (locale, currency) symbol of every Babel locale and every ISO code, formatted by
    babel.numbers.format_currency(1234.50), parsed with and without the locale as hint
    (priceintel.clean.cldr_check).
    """
    from priceintel.clean.cldr import currency_table
    from priceintel.clean.cldr_check import check_cldr
    from priceintel.scrape.evaluate import PRICE_SPLIT

    t0 = time.perf_counter()
    table = currency_table()
    out: dict = {"currency_table": {"build_seconds": round(time.perf_counter() - t0, 3),
                                    "build_cpu_seconds": table.build_cpu_seconds,
                                    "loadavg": [round(x, 2) for x in os.getloadavg()],
                                    "symbols": len(table.symbols), "names_and_codes": len(table.names)}}
    if cases.is_file():
        out["shared"] = {"split": PRICE_SPLIT, "note": PRICE_SPLIT_NOTE,
                         **{k: evaluate_prices(cases, k) for k in ("dev", "heldout")},
                         "all": evaluate_prices(cases),
                         # price-parser's regression lists: the cases it parses, and its expected failures (9 of
                         # which hold no digit yet expect the amount 1: no parser can read them)
                         "price_parser_cases": evaluate_prices(cases, xfail=False),
                         "price_parser_expected_failures": evaluate_prices(cases, xfail=True)}
    for key, hint in (("cldr_with_locale", True), ("cldr_without_hint", False)):
        res = check_cldr(use_locale=hint)
        out[key] = {**{k: v for k, v in res.items() if k != "misses"}, "misses_first_20": res["misses"][:20]}
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


THROUGHPUT_METHOD = (
    "one process, one thread (one core): every page extract()-ed from its saved bytes (lxml parse + all "
    "layers + Offer) once to warm up, then `passes` whole passes over all pages, each timed with "
    "time.process_time(); pages/s = pages / median pass CPU seconds. parse_only_pages_per_s: the lxml "
    "parse alone, the same way (the ceiling for parse + extract).")


def throughput(pages: list[tuple], passes: int = 5) -> dict:
    """Parse + extract rate over saved pages: median of `passes` timed passes, CPU seconds (= one core)."""
    from priceintel.scrape.layers.page import _parse

    for body, url, retailer in pages:
        extract(body, url, retailer)  # warm-up (imports, compiled selectors)
    cpu, parse_cpu = [], []
    wall0 = time.perf_counter()
    for _ in range(passes):
        t0 = time.process_time()
        for body, url, retailer in pages:
            extract(body, url, retailer)
        cpu.append(time.process_time() - t0)
        t0 = time.process_time()
        for body, _, _ in pages:
            _parse(body)
        parse_cpu.append(time.process_time() - t0)
    n = len(pages)
    med, parse_med = float(np.median(cpu)), float(np.median(parse_cpu))
    return {"pages": n, "passes": passes, "mean_kb": round(float(np.mean([len(b) for b, _, _ in pages])) / 1024, 1),
            "pass_cpu_s": [round(c, 3) for c in cpu], "wall_s": round(time.perf_counter() - wall0, 2),
            "pages_per_s_per_core": round(n / med, 1) if med else None,
            "pages_per_s_per_core_range": [round(n / max(cpu), 1), round(n / min(cpu), 1)],
            "parse_only_pages_per_s": round(n / parse_med, 1) if parse_med else None,
            "method": THROUGHPUT_METHOD}


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
            "goal_pages_per_s_per_core": 100,
            "real_pages": throughput(real_pages(), passes=2 if args.quick else 7),
            "demo_pages": throughput(saved, passes=2 if args.quick else 5),
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
    print(f"wrote {write_results('scrape', result, args.quick)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
