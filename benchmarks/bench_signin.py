"""Sign-in under parallel attack: a real `priceintel apps` Voila server, 200 wrong-password sign-ins at once.

Starts the apps' Voila command (as `priceintel apps` does) on a fresh database of the embedded server, trusting
127.0.0.1 as its reverse proxy so every attempt can claim its own client address in X-Forwarded-For, and
fires three bursts, each of N simultaneous POST /login (one thread each, released together by a barrier):

- spray: one address, N different usernames (the per-address limit: at most 20 attempts get past it);
- pair: one address, one username (the per-(user, address) free failures: at most 5);
- distributed: N addresses, one username (no throttle applies: only the pool of argon2 checks bounds the work).

Per burst: the answers (401 checked and wrong, 429 throttled, 503 busy), the argon2 verifications the server
ran and the most at once (from its /signin-stats), the wall time; and the server's peak RSS (VmHWM of its
process) after start-up and at the end. Writes reports/benchmarks/signin.json (signin-quick.json with --quick,
N = 50). The database is dropped after.

Usage: python benchmarks/bench_signin.py [--quick] [--attempts N]
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from _common import bench_database, bench_parser, run_header, stop_server, write_results  # noqa: E402, I001  (benchmarks/ is on sys.path when run as a script)

from priceintel import config
from priceintel.apps import auth, signin
from priceintel.apps.serve import voila_command
from priceintel.db import engine as db_engine

USER, PASSWORD = "bench-user", "bench-password-1"


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of process `pid`, MiB."""
    line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmHWM:"))
    return round(int(line.split()[1]) / 1024, 1)


def _start(url: str) -> tuple[subprocess.Popen, str]:
    """The apps' Voila command on a free loopback port, trusting 127.0.0.1 as its proxy; (process, base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DATABASE_URL=url, PRICEINTEL_TRUSTED_PROXIES="127.0.0.1")
    proc = subprocess.Popen(
        voila_command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=config.PROJ_ROOT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(base + "/login", timeout=2).status_code == 200:
                return proc, base
        except requests.ConnectionError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("voila did not start within 120 s")


def _xsrf(session: requests.Session, base: str) -> str:
    form = session.get(base + "/login", timeout=30)
    return re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)


def _stats(session: requests.Session, base: str) -> dict:
    return session.get(base + "/signin-stats", timeout=30).json()


def burst(base: str, attempts: list[tuple[str, str]]) -> dict:
    """POST every (username, client address) sign-in with a wrong password at once; answers and timing."""
    with requests.Session() as s:
        token = _xsrf(s, base)
        cookie = s.cookies["_xsrf"]
    start = threading.Barrier(len(attempts))

    def one(attempt: tuple[str, str]) -> tuple[int, float]:
        start.wait(60)
        t0 = time.perf_counter()
        r = requests.post(
            base + "/login",
            data={"username": attempt[0], "password": "wrong", "_xsrf": token},
            headers={"X-Forwarded-For": attempt[1], "Cookie": f"_xsrf={cookie}"},
            allow_redirects=False,
            timeout=120,
        )
        return r.status_code, time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(attempts)) as pool:
        results = list(pool.map(one, attempts))
    wall = time.perf_counter() - t0
    codes = Counter(code for code, _ in results)
    slowest = max(sec for _, sec in results)
    return {
        "attempts": len(attempts),
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "wall_s": round(wall, 2),
        "slowest_answer_s": round(slowest, 2),
    }


def main(quick: bool, n: int | None) -> dict:
    """Start the server, run the three bursts, return the results dict."""
    n = n or (50 if quick else 200)
    out: dict = run_header(quick) | {
        "limits": {
            "free_failures_per_user_and_address": signin.FREE_FAILURES,
            "failures_per_address": signin.MAX_FAILURES_PER_ADDRESS,
            "address_window_s": signin.ADDRESS_WINDOW,
            "concurrent_checks": signin.concurrency(),
            "waiting_checks": signin.MAX_WAITING_CHECKS,
        },
        "argon2": {k: getattr(auth._hasher(), k) for k in ("time_cost", "memory_cost", "parallelism")},
    }
    t_all = time.perf_counter()
    base_url, name, url = bench_database("signin")
    proc = None
    try:
        auth.add_user(db_engine.get_engine(url), USER, PASSWORD)
        proc, base = _start(url)
        with requests.Session() as admin:
            admin.headers["X-Forwarded-For"] = "192.0.2.254"
            r = admin.post(
                base + "/login",
                data={"username": USER, "password": PASSWORD, "_xsrf": _xsrf(admin, base)},
                allow_redirects=False,
                timeout=30,
            )
            assert r.status_code == 302, f"bench sign-in failed: HTTP {r.status_code}"
            out["server_peak_rss_mb_after_start"] = _vm_hwm_mb(proc.pid)
            scenarios = {
                "spray": [(f"sprayed-{i}", "203.0.113.50") for i in range(n)],
                "pair": [(USER, "203.0.113.60")] * n,
                "distributed": [(USER, f"198.51.{100 + i // 250}.{i % 250}") for i in range(n)],
            }
            for label, attempts in scenarios.items():
                before = _stats(admin, base)["password_checks"]
                res = burst(base, attempts)
                after = _stats(admin, base)
                res["argon2_checks_run"] = after["password_checks"]["total"] - before["total"]
                res["most_checks_at_once"] = after["password_checks"]["peak"]
                res["server_peak_rss_mb"] = _vm_hwm_mb(proc.pid)
                out[label] = res
                print(f"  {label:12s} {res}", flush=True)
            out["server_stats"] = _stats(admin, base)
            out["server_peak_rss_mb"] = _vm_hwm_mb(proc.pid)
    finally:
        stop_server(proc, base_url, name)
    out["total_s"] = round(time.perf_counter() - t_all, 1)
    out["loadavg_after"] = os.getloadavg()
    out["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return out


if __name__ == "__main__":
    ap = bench_parser(__doc__, "50 attempts per burst (a smoke run)")
    ap.add_argument("--attempts", type=int, default=None, help="attempts per burst (default 200)")
    args = ap.parse_args(sys.argv[1:])
    res = main(args.quick, args.attempts)
    path = write_results("signin", res, args.quick)
    print(f"wrote {path}; total {res['total_s']} s; server peak RSS {res['server_peak_rss_mb']} MiB; {res['uptime']}")
