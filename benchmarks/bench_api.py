"""REST API load benchmark: price history and latest prices at 5,000 products × 3 retailers × 365 days, two tenants.

Builds the apps benchmark's world (`bench_apps.build`) in two tenants, `tenant-a` and `tenant-b`, splitting the
5,000 products between them (2,500 each, SKU-00001… and SKU-02501…: no SKU shared), so the database holds the
same ≈5.5M competitor prices and our daily prices as one tenant of 5,000 would; fills the app views (across
tenants) and makes one read API key per tenant. Then, in the same run:

- **cost of row-level security**: one client, sequentially, times the queries the two routes run
  (`queries.price_history_json`, `queries.latest_prices_json`) for random products of either tenant in two ways,
  interleaved in random order: as the app role proving the product's tenant (what the API does: every table's
  policy applies) and as the owner across tenants (`tenancy.as_owner()`: policies bypassed; the same SQL and,
  SKUs being unique, the same answer, which is checked). Reported per route and way: the call as the route makes
  it (client-side, with the tenant setting of each transaction) and the database's own planning + execution
  time of its JSON query (EXPLAIN ANALYZE, TIMING OFF), p50 / p95 / mean, and the ratios with / without.
- **isolation**: starts `priceintel api` as its own process on loopback (as it runs for users: the app role,
  `--workers` uvicorn processes, default one a core) and checks that each tenant's key gets its own products
  (200) and a 404 for the other tenant's SKU (history) or no rows (latest prices), and that its product list
  holds its SKUs only; the benchmark stops if not.
- **load**: a second process plays `--clients` concurrent clients (asyncio + httpx, one connection each) for
  `--seconds` per route: each request picks a tenant at random, uses its key and asks for a random product of
  that tenant's `/v1/products/{sku}/history` (≈1,460 rows: three listings and ours over a year) or
  `/v1/prices/latest?sku=`. Reported per route (and per tenant): requests/s, latency p50 / p95 / p99 / max,
  errors (any status but 200, or a transport error), the goal (p99 < 200 ms at 50 clients, no error).

Writes reports/benchmarks/api.json (api-quick.json with --quick: 200 products × 60 days). The database is
dropped after.

Usage: python benchmarks/bench_api.py [--quick] [--clients N] [--seconds S] [--workers W] [--rls-samples N]
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
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
from _common import bench_database, bench_parser, run_header, stop_server, write_results  # noqa: E402, I001  (on sys.path as a script)
from bench_apps import build
from sqlalchemy import event

from priceintel.api import keys
from priceintel.apps.serve import app_database_url
from priceintel.db import engine as db_engine
from priceintel.db import queries, tenancy
from priceintel.db import views as db_views

GOAL_P99_MS = 200.0
#: the tenants the products are split between
TENANTS = ("tenant-a", "tenant-b")
#: the routes loaded and the queries they run (JSON answers, as the API gives them)
ROUTES: dict[str, tuple[Callable[[str], str], Callable[[sa.Engine, str], str]]] = {
    "history": (lambda sku: f"/v1/products/{sku}/history", lambda eng, sku: queries.price_history_json(eng, sku)),
    "latest": (lambda sku: f"/v1/prices/latest?sku={sku}", lambda eng, sku: queries.latest_prices_json(eng, sku)),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(ms: list[float], errors: int, seconds: float) -> dict:
    arr = np.array(ms) if ms else np.array([np.nan])
    return {
        "requests": len(ms) + errors,
        "ok": len(ms),
        "errors": errors,
        "requests_per_s": round((len(ms) + errors) / seconds, 1),
        **{f"p{q}_ms": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)},
        "max_ms": round(float(arr.max()), 1),
    }


def _dist(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=float)
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "mean_ms": round(float(a.mean()), 2),
    }


# ------------------------------------------------------------------------------------------- the load (client)


async def _load(base: str, tenants: dict[str, dict], clients: int, seconds: float, seed: int) -> dict:
    """`clients` concurrent loops of GETs for `seconds`: each picks a tenant at random and one of its `paths`,
    with its key; latencies of 200 answers, overall and per tenant."""
    rng = random.Random(seed)
    names = sorted(tenants)
    auth = {t: {"Authorization": f"Bearer {tenants[t]['key']}"} for t in names}
    ms: dict[str, list[float]] = {t: [] for t in names}
    errors = dict.fromkeys(names, 0)
    kinds: dict[str, int] = {}  # what the errors were: a status code or a transport error's name
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def one(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            t = rng.choice(names)
            path = rng.choice(tenants[t]["paths"])
            t0 = time.perf_counter()
            try:
                r = await client.get(path, headers=auth[t])
                kind = "" if r.status_code == 200 else str(r.status_code)
            except httpx.TransportError as err:
                kind = type(err).__name__
            if not kind:
                ms[t].append((time.perf_counter() - t0) * 1000)
            else:
                errors[t] += 1
                kinds[kind] = kinds.get(kind, 0) + 1

    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(clients)))
        took = time.perf_counter() - t0
    out = _stats([v for t in names for v in ms[t]], sum(errors.values()), took)
    out["error_kinds"] = kinds
    out["by_tenant"] = {t: _stats(ms[t], errors[t], took) for t in names}
    return out


def client_main(args: argparse.Namespace) -> None:
    """The client process: reads {tenant: {"key", "skus"}} from stdin, prints one JSON line of results per route."""
    given = json.loads(sys.stdin.read())
    out = {}
    for name, (path_of, _) in ROUTES.items():
        tenants = {t: {"key": v["key"], "paths": [path_of(s) for s in v["skus"]]} for t, v in given.items()}
        asyncio.run(_load(args.base, tenants, min(args.clients, 8), 3.0, args.seed))  # warm-up
        out[name] = asyncio.run(_load(args.base, tenants, args.clients, args.seconds, args.seed))
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------- row-level security


def rls_cost(owner: sa.Engine, app: sa.Engine, skus: dict[str, list[str]], n: int, seed: int) -> dict:
    """Each route's query for `n` random products, timed as the app role in the product's tenant (policies on)
    and as the owner across tenants (policies bypassed), interleaved in random order, one at a time."""
    rng = random.Random(seed + 1)
    sent: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append((statement, parameters))

    def way(name: str, tenant: str) -> tuple[sa.Engine, Any]:
        return (app, tenancy.scope(tenant)) if name == "rls" else (owner, tenancy.as_owner())

    def once(name: str, tenant: str, query: Callable[[sa.Engine, str], str], sku: str) -> tuple[float, float, str]:
        """(ms of the call, ms of the database's planning + execution of its JSON query, the answer)."""
        eng, ctx = way(name, tenant)
        with ctx:
            sent.clear()
            t0 = time.perf_counter()
            answer = query(eng, sku)
            took = (time.perf_counter() - t0) * 1000
            statement, params = next(s for s in reversed(sent) if "json_agg" in s[0])
            with eng.begin() as conn:
                conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + statement, params)
                top = plan.scalar_one()[0]
        return took, top["Planning Time"] + top["Execution Time"], answer

    names = sorted(skus)
    for eng in (owner, app):
        event.listen(eng, "before_cursor_execute", grab)
    out: dict = {
        "samples_per_way": n,
        "app_role": app.url.username,
        "owner_role": owner.url.username,
        "method": (
            "one client, sequential: per sample a random tenant and one of its products, the route's query "
            "(queries.price_history_json / latest_prices_json, as the API calls them) run both ways in random "
            "order: 'rls' = the app role in the product's tenant (get_engine(app URL) in tenancy.scope: the "
            "tenant set and proven in each transaction, every table's policy applied); 'no_rls' = the owner in "
            "tenancy.as_owner() (table owner: policies bypassed, no tenant setting; no tenant filter added: "
            "SKUs are unique across tenants, so the rows are the same and the answers are compared). call_ms = "
            "the whole call seen by the client (history: the SKU check and the JSON query, two transactions); "
            "database_ms = planning + execution of the JSON query by EXPLAIN (ANALYZE, TIMING OFF), run right "
            "after the call. Ratios = rls / no_rls. 10 untimed warm-up samples per route."
        ),
    }
    try:
        for route, (_, query) in ROUTES.items():
            for _ in range(10):  # warm-up: caches, plans, the role lookup of each engine
                t = rng.choice(names)
                for w in ("rls", "no_rls"):
                    once(w, t, query, rng.choice(skus[t]))
            call: dict[str, list[float]] = {"rls": [], "no_rls": []}
            db: dict[str, list[float]] = {"rls": [], "no_rls": []}
            same = 0
            for _ in range(n):
                t = rng.choice(names)
                sku = rng.choice(skus[t])
                order = ["rls", "no_rls"]
                rng.shuffle(order)
                answers = {}
                for w in order:
                    took, in_db, answers[w] = once(w, t, query, sku)
                    call[w].append(took)
                    db[w].append(in_db)
                same += answers["rls"] == answers["no_rls"] and answers["rls"] != "[]"
            res: dict = {}
            for label, times in (("call_ms", call), ("database_ms", db)):
                dist = {w: _dist(v) for w, v in times.items()}
                res[label] = {
                    **dist,
                    "ratio_p50": round(dist["rls"]["p50_ms"] / dist["no_rls"]["p50_ms"], 3),
                    "ratio_p95": round(dist["rls"]["p95_ms"] / dist["no_rls"]["p95_ms"], 3),
                    "extra_p50_ms": round(dist["rls"]["p50_ms"] - dist["no_rls"]["p50_ms"], 2),
                }
            res["same_answers"] = f"{same}/{n}"
            if same != n:
                raise RuntimeError(f"rls_cost {route}: the two ways answered differently ({same}/{n} the same)")
            out[route] = res
            c, d = res["call_ms"], res["database_ms"]
            print(
                f"  rls cost {route:8s} call p50 {c['rls']['p50_ms']:.2f} / {c['no_rls']['p50_ms']:.2f} ms "
                f"(×{c['ratio_p50']})  database p50 {d['rls']['p50_ms']:.2f} / {d['no_rls']['p50_ms']:.2f} ms "
                f"(×{d['ratio_p50']})",
                flush=True,
            )
    finally:
        for eng in (owner, app):
            event.remove(eng, "before_cursor_execute", grab)
    return out


# ------------------------------------------------------------------------------------------- isolation


def isolation(base_url: str, api_keys: dict[str, str], skus: dict[str, list[str]]) -> dict:
    """Each tenant's key against its own and the other tenant's products; RuntimeError on any leak."""
    checks: list[dict] = []

    def items(r: httpx.Response) -> list:
        return r.json().get("items", []) if r.status_code == 200 else []

    with httpx.Client(base_url=base_url, timeout=60) as client:
        for t in TENANTS:
            other = next(o for o in TENANTS if o != t)
            own, foreign = skus[t][0], skus[other][0]
            auth = {"Authorization": f"Bearer {api_keys[t]}"}
            asks: list[tuple[str, str, str, Callable[[httpx.Response], bool]]] = [
                (f"/v1/products/{own}/history", "history of its own", "200 with rows", lambda r: bool(items(r))),
                (f"/v1/products/{foreign}/history", f"history of {other}'s", "404", lambda r: r.status_code == 404),
                (f"/v1/prices/latest?sku={own}", "latest of its own", "200 with rows", lambda r: bool(items(r))),
                (
                    f"/v1/prices/latest?sku={foreign}",
                    f"latest of {other}'s",
                    "200, no rows",
                    lambda r: r.status_code == 200 and not items(r),
                ),
                (
                    "/v1/products",
                    "the product list",
                    "200, exactly its own SKUs",
                    lambda r, mine=frozenset(skus[t]): {p["sku"] for p in items(r)} == mine,
                ),
            ]
            for path, what, expect, good in asks:
                r = client.get(path, headers=auth)
                checks.append(
                    {"key_of": t, "asks": f"{what} {path}", "expect": expect, "status": r.status_code, "ok": good(r)}
                )
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise RuntimeError(f"tenant isolation failed: {failed}")
    return {"checks": checks, "ok": True}


# ------------------------------------------------------------------------------------------- the run


def main(
    quick: bool, clients: int, seconds: float, seed: int, workers: int = 2, rls_samples: int | None = None
) -> dict:
    n_products, n_days = (200, 60) if quick else (5000, 365)
    per_tenant = n_products // len(TENANTS)
    n_rls = rls_samples or (60 if quick else 300)
    out: dict = run_header(quick) | {
        "goal": f"p99 < {GOAL_P99_MS:.0f} ms at {clients} clients, error rate 0",
        "world": {
            "products": n_products,
            "retailers": 3,
            "days": n_days,
            "seed": seed,
            "tenants": {
                t: {"products": per_tenant, "skus": f"SKU-{1 + i * per_tenant:05d}..SKU-{(i + 1) * per_tenant:05d}"}
                for i, t in enumerate(TENANTS)
            },
            "split": (
                f"the {n_products:,} products split between {len(TENANTS)} tenants ({per_tenant:,} each, no SKU "
                f"shared): the same rows in total as one tenant of {n_products:,} (not two full copies)"
            ),
        },
        "clients": clients,
        "seconds_per_route": seconds,
        "api_workers": workers,
        "method": (
            "`priceintel api --workers N` in its own processes (uvicorn, the app role); a client process with "
            "asyncio + httpx, one keep-alive connection per client, each client requesting in a loop a random "
            "tenant's random product with that tenant's read key; 3 s of warm-up per route (untimed). Before the "
            "load: the cost of row-level security (`rls_cost`) and the tenant isolation checks (`isolation`)."
        ),
    }
    base, name, url = bench_database("api")
    proc = None
    try:
        eng = db_engine.get_engine(url)
        t_build = time.perf_counter()
        out["build"] = {}
        for i, t in enumerate(TENANTS):
            tenancy.add_tenant(eng, t, plan="enterprise")
            out["build"][t] = build(eng, per_tenant, n_days, seed, tenant=t, first_product=1 + i * per_tenant)
        t0 = time.perf_counter()
        out["build"]["refresh_views"] = db_views.refresh(eng)
        out["build"]["refresh_s"] = round(time.perf_counter() - t0, 2)
        out["build"]["total_s"] = round(time.perf_counter() - t_build, 2)
        with tenancy.as_owner(), eng.connect() as conn:
            out["build"]["database_mb"] = round(
                conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar() / 2**20
            )
        print(f"built two tenants in {out['build']['total_s']} s ({out['build']['database_mb']} MB)", flush=True)
        api_keys: dict[str, str] = {}
        skus: dict[str, list[str]] = {}
        for t in TENANTS:
            with tenancy.scope(t):
                _, api_keys[t] = keys.create_key(eng, f"bench {t}", "read", created_by="bench")
                with eng.connect() as conn:
                    skus[t] = [r[0] for r in conn.exec_driver_sql("SELECT sku FROM dim_product ORDER BY sku")]
        if set(skus[TENANTS[0]]) & set(skus[TENANTS[1]]) or not all(skus.values()):
            raise RuntimeError("the tenants' products overlap or one tenant has none")
        app_eng = db_engine.get_engine(app_database_url(url))
        out["rls_cost"] = rls_cost(eng, app_eng, skus, n_rls, seed)
        port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "PRICEINTEL_API_RATE_PER_MINUTE": "0",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        env.pop(tenancy.TENANT_ENV, None)  # the keys name the tenants
        proc = subprocess.Popen(
            [sys.executable, "-m", "priceintel.cli", "api", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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
        out["isolation"] = isolation(base_url, api_keys, skus)
        print(f"isolation: {len(out['isolation']['checks'])} checks passed", flush=True)
        rng = random.Random(seed)
        given = {t: {"key": api_keys[t], "skus": rng.sample(skus[t], min(250, len(skus[t])))} for t in TENANTS}
        res = subprocess.run(
            [sys.executable, __file__, "--client", "--base", base_url, "--clients", str(clients)]
            + ["--seconds", str(seconds), "--seed", str(seed)],
            input=json.dumps(given),
            capture_output=True,
            text=True,
            check=True,
        )
        out["routes"] = json.loads(res.stdout.strip().splitlines()[-1])
        for r in out["routes"].values():
            r["goal_met"] = bool(r["errors"] == 0 and r["p99_ms"] < GOAL_P99_MS)
        out["goal_met"] = all(r["goal_met"] for r in out["routes"].values())
    finally:
        stop_server(proc, base, name)
    out["loadavg_after"] = os.getloadavg()
    return out


if __name__ == "__main__":
    ap = bench_parser(__doc__, "200 products × 60 days (a smoke run)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per route")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2, help="API worker processes (one a core)")
    ap.add_argument("--rls-samples", type=int, default=None, help="products per way and route (300; quick 60)")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        client_main(a)
        sys.exit(0)
    result = main(a.quick, a.clients, a.seconds, a.seed, a.workers, a.rls_samples)
    write_results("api", result, a.quick)
    summary = {
        "routes": {
            k: {m: v[m] for m in ("requests_per_s", "p50_ms", "p99_ms", "errors")} for k, v in result["routes"].items()
        },
        "rls_cost": {k: result["rls_cost"][k]["call_ms"]["ratio_p50"] for k in ROUTES},
        "isolation": result["isolation"]["ok"],
        "goal_met": result["goal_met"],
    }
    print(json.dumps(summary, indent=1))
