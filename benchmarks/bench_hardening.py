"""Hardening benchmark → reports/benchmarks/hardening.json.

A scrape of the hostile shop (`priceintel.demo.hostile.HostileShop`: gzip bombs of 1 GiB, a 50 MB page, body and
header trickles, redirects and sitemaps aiming at an internal server on 127.0.0.2) through `scrape_shops`, in a
child process, with the default limits (8 MB decoded per body, 30 s per response; `--quick`: 2 MB, 3 s). The
parent serves the shop and measures the child: wall time and peak RSS (`os.wait4`), next to a baseline child that
only imports the same modules. Goal: peak RSS < 300 MB and wall < 60 s, every hostile URL recorded with its
error kind, the ordinary pages extracted, no request reaching the internal server.

    .venv/bin/python benchmarks/bench_hardening.py [--quick]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _common import run_cli  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

GOAL = {"peak_rss_mb": 300, "wall_s": 60}
#: (max_page_bytes, deadline seconds)
FULL, QUICK = (8_000_000, 30.0), (2_000_000, 3.0)

_IMPORTS = "from priceintel.scrape import Fetcher\nfrom priceintel.scrape.crawl import scrape_shops\n"
_CHILD = (
    _IMPORTS
    + """import json, sys, time
base, cap, deadline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t0 = time.monotonic()
with Fetcher(max_page_bytes=cap, deadline=deadline, rate_limit_per_host=0, backoff=0.05) as f:
    offers, errors = scrape_shops({"generic": base}, f)
print(json.dumps({"scrape_s": time.monotonic() - t0, "errors": dict(zip(errors["url"], errors["kind"])),
                  "offers": {r.url: [r.title, r.price] for r in offers.itertuples()}}))
"""
)


def _child(code: str, *args: str) -> tuple[float, float, str]:
    """Run `python -c code args` and wait for it: (wall seconds, its peak RSS in MB, its stdout)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode:
        raise SystemExit(f"the child scrape failed with exit code {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, out


def main(quick: bool) -> dict:
    """Serve the hostile shop, scrape it in a child, measure."""
    from priceintel.demo.hostile import HostileShop

    cap, deadline = QUICK if quick else FULL
    load_before = os.getloadavg()
    base_wall, base_rss, _ = _child(_IMPORTS)
    with HostileShop() as shop:
        wall, rss, out = _child(_CHILD, shop.base_url, str(cap), str(deadline))
        result = json.loads(out)
        internal_hits = shop.internal_hits
        expected, normal = shop.expected_errors(), shop.normal_pages()
    offers = {u: tuple(v) for u, v in result["offers"].items()}
    correct = result["errors"] == expected and offers == normal and not internal_hits
    met = correct and rss < GOAL["peak_rss_mb"] and wall < GOAL["wall_s"]
    return {
        "area": "hardening",
        "caps": {"max_page_bytes": cap, "deadline_s": deadline, "trickle_interval_s": 1.0},
        "hostile": {"gzip_bomb_decoded_bytes": 1 << 30, "huge_page_bytes": 50_000_000, "redirect_hops": 4},
        "goal": GOAL,
        "wall_s": round(wall, 2),
        "scrape_s": round(result["scrape_s"], 2),
        "peak_rss_mb": round(rss, 1),
        "baseline_import_rss_mb": round(base_rss, 1),
        "baseline_import_wall_s": round(base_wall, 2),
        "errors_by_url": result["errors"],
        "all_errors_as_expected": result["errors"] == expected,
        "ordinary_pages_extracted": len(offers),
        "ordinary_pages_as_expected": offers == normal,
        "internal_hits": len(internal_hits),
        "met": met,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "quick": quick,
    }


if __name__ == "__main__":
    res = run_cli("hardening", main)
    sys.exit(0 if res["met"] else 1)
