"""REST API load benchmark: price history and latest prices at 5,000 products × 3 retailers × 365 days.

Builds the apps benchmark's database (`bench_apps.build`: ≈5.5M competitor prices, our daily prices), fills the
app views, creates a read API key and starts `priceintel api` as its own process on loopback (as it runs for
users: the app role, `--workers` uvicorn processes, default one a core). A second process plays `--clients` concurrent clients (asyncio +
httpx, one connection each) for `--seconds` per route: each request asks for a random product's
`/v1/products/{sku}/history` (≈1,460 rows: three listings and ours over a year) or `/v1/prices/latest?sku=`.
Reported per route: requests/s, latency p50 / p95 / p99 / max, errors (any status but 200, or a transport
error), the goal (p99 < 200 ms at 50 clients, no error). Writes reports/benchmarks/api.json (api-quick.json
with --quick). The database is dropped after.

Not measured yet: two tenants and the cost of row-level security (tenants are still to come, issue #19).

Usage: python benchmarks/bench_api.py [--quick] [--clients N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import numpy as np

from priceintel.api import keys
from priceintel.apps import views as dashboard
from priceintel.db import engine as db_engine
from priceintel.db import migrate, server
from _common import stop_server, write_results  # noqa: E402, I001  (benchmarks/ is on sys.path when run as a script)
from bench_apps import build  # noqa: E402

GOAL_P99_MS = 200.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(ms: list[float], errors: int, seconds: float) -> dict:
    arr = np.array(ms) if ms else np.array([np.nan])
    return {"requests": len(ms) + errors, "ok": len(ms), "errors": errors,
            "requests_per_s": round((len(ms) + errors) / seconds, 1),
            **{f"p{q}_ms": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)},
            "max_ms": round(float(arr.max()), 1)}


async def _load(base: str, key: str, paths: list[str], clients: int, seconds: float, seed: int) -> dict:
    """`clients` concurrent loops of GETs over random `paths` for `seconds`; latencies of 200 answers."""
    rng = random.Random(seed)
    ms: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            path = rng.choice(paths)
            t0 = time.perf_counter()
            try:
                r = await client.get(path)
                ok = r.status_code == 200
            except httpx.TransportError:
                ok = False
            if ok:
                ms.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                                 limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(clients)))
        took = time.perf_counter() - t0
    return _stats(ms, errors, took)


def client_main(args: argparse.Namespace) -> None:
    """The client process: print one JSON line of results per route."""
    skus = json.loads(args.skus)
    routes = {"history": [f"/v1/products/{s}/history" for s in skus],
              "latest": [f"/v1/prices/latest?sku={s}" for s in skus]}
    out = {}
    for name, paths in routes.items():
        asyncio.run(_load(args.base, args.key, paths, min(args.clients, 8), 3.0, args.seed))  # warm-up
        out[name] = asyncio.run(_load(args.base, args.key, paths, args.clients, args.seconds, args.seed))
    print(json.dumps(out))


def main(quick: bool, clients: int, seconds: float, seed: int, workers: int = 2) -> dict:
    n_products, n_days = (200, 60) if quick else (5000, 365)
    out: dict = {"generated_at": datetime.now(UTC).isoformat(), "quick": quick, "cpus": os.cpu_count(),
                 "loadavg_before": os.getloadavg(), "goal": f"p99 < {GOAL_P99_MS:.0f} ms at {clients} clients, "
                                                            "error rate 0",
                 "world": {"products": n_products, "retailers": 3, "days": n_days, "seed": seed},
                 "clients": clients, "seconds_per_route": seconds, "api_workers": workers,
                 "method": ("`priceintel api --workers N` in its own processes (uvicorn, the app role); a client "
                            "process with asyncio + httpx, one keep-alive connection per client, each client "
                            "requesting a random product's route in a loop; 3 s of warm-up per route (untimed)."),
                 "not_measured": "two tenants and the cost of row-level security (tenants are still to come)"}
    base = server.start_embedded()
    name = f"bench_api_{uuid.uuid4().hex[:8]}"
    url = db_engine.create_database(base, name)
    proc = None
    try:
        migrate.upgrade(url)
        eng = db_engine.get_engine(url)
        out["build"] = build(eng, n_products, n_days, seed)
        dashboard.refresh(eng)
        _, key = keys.create_key(eng, "bench", "read", created_by="bench")
        with eng.connect() as conn:
            skus = [r[0] for r in conn.exec_driver_sql("SELECT sku FROM dim_product ORDER BY sku")]
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "PRICEINTEL_API_RATE_PER_MINUTE": "0",
               "NO_PROXY": "127.0.0.1,localhost"}
        proc = subprocess.Popen([sys.executable, "-m", "priceintel.cli", "api", "--port", str(port),
                                 "--workers", str(workers)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("priceintel api did not become ready")
            time.sleep(0.3)
        rng = random.Random(seed)
        sample = rng.sample(skus, min(500, len(skus)))
        res = subprocess.run([sys.executable, __file__, "--client", "--base", base_url, "--key", key,
                              "--skus", json.dumps(sample), "--clients", str(clients), "--seconds", str(seconds),
                              "--seed", str(seed)], capture_output=True, text=True, check=True)
        out["routes"] = json.loads(res.stdout.strip().splitlines()[-1])
        for r in out["routes"].values():
            r["goal_met"] = bool(r["errors"] == 0 and r["p99_ms"] < GOAL_P99_MS)
        out["goal_met"] = all(r["goal_met"] for r in out["routes"].values())
    finally:
        stop_server(proc, base, name)
    out["loadavg_after"] = os.getloadavg()
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 products × 60 days (a smoke run)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per route")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2, help="API worker processes (one a core)")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    ap.add_argument("--skus", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        client_main(a)
        sys.exit(0)
    result = main(a.quick, a.clients, a.seconds, a.seed, a.workers)
    write_results("api", result, a.quick)
    print(json.dumps({k: result.get(k) for k in ("routes", "goal_met")}, indent=1))
