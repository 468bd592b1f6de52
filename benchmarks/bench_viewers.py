"""App opening benchmark (#20 item 6): how long a stakeholder waits for data, and what each viewer costs.

Builds a fresh database on the embedded server with the app benchmark's SQL generator (`bench_apps.build`:
products × 3 retailers × days, a forecast run, an elasticity run, alerts), adds one app user and serves the apps
with `priceintel apps`' own Voila settings (`apps.serve.voila_command`, the app role). Headless Chromium (Debian's,
through Playwright, loopback only) then times **navigation → first table row** (the landing page: its run panel):

- **cold**: no kernel pool (`PRICEINTEL_APPS_POOL=0`): Voila starts a kernel for the page, which imports the app,
  connects and queries;
- **warm**: one warm kernel per app (`=1`, the default of `priceintel apps`): the kernel was started, imported the
  app and connected before the viewer came, and waits for the viewer's ticket (`apps.session.wait_for_viewer`);
  each navigation waits until Voila has refilled the pool first;
- **crowd**: 20 viewers open the price monitor at the same moment, with a pool as large as the crowd (`=20`), and
  again with the default pool of 1 (the other 19 wait for kernels started for them). Chromium's 20 pages run on
  the same 2 cores as the server, so the crowd is timed a second time with plain HTTP clients: when each page's HTML
  holds its first paint (what a viewer's own browser draws at once), and when the page is complete;

and the memory: resident (RSS) and unique (USS: what the process alone holds) megabytes of the Voila server and of
every kernel, warm and after its viewer's page rendered, and the total over the crowd. Each timing's
navigation runs in a fresh browser context (no cache). Writes reports/benchmarks/viewers.json
(viewers-quick.json with --quick). The database is dropped after.

Usage: python benchmarks/bench_viewers.py [--quick] [--products N] [--days D] [--repeat R] [--crowd C] [--apps A,B]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from _common import bench_database, bench_parser, finish, run_header, stop_server, write_results  # noqa: E402, I001
from bench_apps import build  # noqa: E402, I001  (benchmarks/ is on sys.path when run as a script)

from priceintel import config
from priceintel.apps import auth
from priceintel.apps import views as dashboard
from priceintel.apps.serve import POOL_ENV, REFILL_ENV, app_database_url, voila_command
from priceintel.db import engine as db_engine

CHROMIUM = "/usr/bin/chromium"
#: loopback only, refused by Chromium itself (a Playwright route would pass every request through this process)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
USER, PASSWORD = "bench-viewer", "bench viewer password"
#: app -> what "the first row" is on it: the first row of any table of the app (the elasticity app shows its
#: estimates' table, or the table of products it could not estimate), the landing page's run panel
APPS = {
    "index": "#pi-latest-run",
    "price_monitor": "table tbody tr",
    "alerts": "table tbody tr",
    "forecasts": "table tbody tr",
    "elasticity": "table tbody tr",
}
GOAL_S = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Voila:
    """`priceintel apps`' Voila on a free loopback port, with a pool spec; logs to a file."""

    def __init__(self, app_url: str, pool: str, refill: str = "") -> None:
        self.port, self.refill = _free_port(), refill
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="bench-voila-", suffix=".log")[1])
        env = dict(os.environ, DATABASE_URL=app_url, **{POOL_ENV: pool, REFILL_ENV: refill})
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(voila_command(self.port), env=env, stdout=subprocess.DEVNULL, stderr=err,
                                         cwd=config.PROJ_ROOT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(self.base + "/login", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError("voila exited: " + self.log.read_text()[-2000:]) from None
                time.sleep(0.3)
        self.cookies = self._login()

    def _login(self) -> list[dict]:
        with requests.Session() as s:
            form = s.get(f"{self.base}/login", timeout=30)
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)
            r = s.post(f"{self.base}/login", data={"username": USER, "password": PASSWORD, "_xsrf": xsrf},
                       allow_redirects=False, timeout=30)
            assert r.status_code == 302, f"login failed: HTTP {r.status_code}"
            return [{"name": c.name, "value": c.value, "url": self.base + "/"} for c in s.cookies]

    def fills(self, app: str) -> int:
        log = self.log.read_text("utf-8", "replace")
        return len(re.findall(rf"Kernel pool of {re.escape(app)}\.ipynb is filled", log))

    def wait_filled(self, app: str, times: int, timeout: float = 600) -> float:
        t0 = time.perf_counter()
        while self.fills(app) < times:
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"pool of {app} not filled {times}x in {timeout} s")
            time.sleep(0.2)
        return time.perf_counter() - t0

    def wait_idle(self, quiet: float = 1.0, timeout: float = 600) -> float:
        """Seconds until the server and every kernel are idle (< 5% CPU together over `quiet` s): the warm
        kernels have imported the app and wait for a viewer."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            procs = [psutil.Process(self.proc.pid), *self.kernels()]
            for proc in procs:
                proc.cpu_percent(None)
            time.sleep(quiet)
            if sum(proc.cpu_percent(None) for proc in procs) < 5:
                return time.perf_counter() - t0
        raise RuntimeError(f"the apps' server was still busy after {timeout} s")

    def kernels(self) -> list[psutil.Process]:
        return [c for c in psutil.Process(self.proc.pid).children(recursive=True)
                if "ipykernel_launcher" in " ".join(c.cmdline())]

    def memory(self) -> dict:
        def mb(p: psutil.Process) -> tuple[float, float]:
            info = p.memory_full_info()
            return round(info.rss / 2**20, 1), round(info.uss / 2**20, 1)

        server_rss, server_uss = mb(psutil.Process(self.proc.pid))
        kernels = []
        for k in self.kernels():
            try:
                kernels.append(mb(k))
            except psutil.NoSuchProcess:  # a viewer's kernel shut down as its page closed
                pass
        return {"server_rss_mb": server_rss, "server_uss_mb": server_uss, "kernels": len(kernels),
                "kernel_rss_mb": [k[0] for k in kernels], "kernel_uss_mb": [k[1] for k in kernels],
                "total_uss_mb": round(server_uss + sum(k[1] for k in kernels), 1)}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.unlink(missing_ok=True)


#: runs in the page from its first byte: the time (ms after navigation start) of the first animation frame in which
#: a visible element matches the app's selector, i.e. the frame that paints the first row
FIRST_ROW_JS = """(() => {
  const sel = %s;
  const tick = () => {
    const shown = [...document.querySelectorAll(sel)].some(e => e.getClientRects().length);
    if (shown) window.__piFirstRow = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


async def _open(browser, voila: Voila, app: str) -> tuple[float, object]:
    """Seconds from navigation start to the first frame showing a row of the app, in a fresh browser context
    (measured in the page: `FIRST_ROW_JS`); (seconds, context) with the context left open."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    await context.add_cookies(voila.cookies)
    await context.add_init_script(FIRST_ROW_JS % json.dumps(APPS[app]))
    page = await context.new_page()
    t0 = time.perf_counter()
    await page.goto(f"{voila.base}/voila/render/{app}.ipynb", wait_until="commit", timeout=300_000)
    try:
        await page.wait_for_function("() => window.__piFirstRow !== undefined", timeout=300_000, polling=100)
    except Exception as exc:
        text = " ".join((await page.inner_text("body")).split())[:600]
        waited = time.perf_counter() - t0
        raise RuntimeError(f"{app}: no {APPS[app]} after {waited:.0f} s; the page says: {text}") from exc
    return await page.evaluate("window.__piFirstRow") / 1000, context


async def _page_times(context) -> dict:
    """Where a page's time went (s after navigation start): the first byte, the first-paint block inserted by the
    apps' template, the first contentful paint, the whole HTML received."""
    page = context.pages[0]
    times = await page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0] || {};
        const mark = performance.getEntriesByName('pi-first-paint')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return {first_byte: nav.responseStart, first_paint_block: mark && mark.startTime,
                first_contentful_paint: fcp && fcp.startTime, html_done: nav.responseEnd};
    }""")
    return {k: (round(v / 1000, 2) if v is not None else None) for k, v in times.items()}


def _stats(values: list[float]) -> dict:
    s = sorted(values)
    p95 = s[min(len(s) - 1, max(0, int(round(0.95 * len(s))) - 1))]
    return {"n": len(s), "median_s": round(statistics.median(s), 2), "p95_s": round(p95, 2),
            "max_s": round(s[-1], 2), "all_s": [round(v, 2) for v in values]}


async def sequential(browser, voila: Voila, repeat: int, warm: bool) -> dict:
    """Each app `repeat` times, one navigation at a time (warm: after the pool has refilled)."""
    out = {}
    for app in APPS:
        times = []
        for i in range(repeat):
            if warm:
                voila.wait_filled(app, i + 1)
                voila.wait_idle()  # the new warm kernel waits for its viewer
            seconds, context = await _open(browser, voila, app)
            times.append(seconds)
            await context.close()
        out[app] = _stats(times)
        print(f"  {app:14s} {'warm' if warm else 'cold'}: median {out[app]['median_s']:5.2f} s  "
              f"max {out[app]['max_s']:5.2f} s", flush=True)
    return out


async def crowd(browser, voila: Voila, n: int, wait_pool: bool) -> dict:
    """n viewers open the price monitor at once; their times and the memory once every page shows rows."""
    out: dict = {}
    if wait_pool:
        out["pool_fill_s"] = round(voila.wait_filled("price_monitor", 1) + voila.wait_idle(), 1)
        out["memory_warm_pool"] = voila.memory()
    results = await asyncio.gather(*[_open(browser, voila, "price_monitor") for _ in range(n)])
    out["first_row"] = _stats([r[0] for r in results])
    pages = [await _page_times(context) for _, context in results]
    out["page_times_median_s"] = {k: round(statistics.median(p[k] for p in pages if p[k] is not None), 2)
                                  for k in pages[0] if any(p[k] is not None for p in pages)}
    time.sleep(1.0)
    out["memory_with_viewers"] = voila.memory()
    for _, context in results:
        await context.close()
    print(f"  crowd of {n} ({'warm pool' if wait_pool else 'pool of 1'}): median {out['first_row']['median_s']} s"
          f"  p95 {out['first_row']['p95_s']} s  total USS {out['memory_with_viewers']['total_uss_mb']} MB",
          flush=True)
    return out


#: the first-paint block in the page's HTML (the apps' Voila template)
FIRST_PAINT_MARK = b'class="pi-first-paint-src"'


async def crowd_http(voila: Voila, n: int) -> dict:
    """n viewers at once as plain HTTP clients (no browser on this machine's cores): seconds until each page's
    HTML holds its first-paint block (what a browser paints at once), and until the page is complete."""
    import httpx

    async def one(client) -> tuple[float, float]:
        t0, first, seen = time.perf_counter(), None, b""
        async with client.stream("GET", f"{voila.base}/voila/render/price_monitor.ipynb") as r:
            async for chunk in r.aiter_bytes():
                if first is None:
                    seen = seen[-64:] + chunk
                    if FIRST_PAINT_MARK in seen:
                        first = time.perf_counter() - t0
        return (first if first is not None else float("nan")), time.perf_counter() - t0

    out: dict = {"pool_fill_s": round(voila.wait_filled("price_monitor", 1) + voila.wait_idle(), 1)}
    cookies = {c["name"]: c["value"] for c in voila.cookies}
    async with httpx.AsyncClient(cookies=cookies, timeout=600) as client:
        results = await asyncio.gather(*[one(client) for _ in range(n)])
    out["first_paint_html"] = _stats([r[0] for r in results])
    out["page_complete"] = _stats([r[1] for r in results])
    out["memory_with_viewers"] = voila.memory()
    print(f"  HTTP crowd of {n} (warm pool, refill {voila.refill or 'default'} s): first paint in the HTML median "
          f"{out['first_paint_html']['median_s']} s "
          f"p95 {out['first_paint_html']['p95_s']} s; page complete p95 {out['page_complete']['p95_s']} s", flush=True)
    return out


async def measure(app_url: str, repeat: int, n_crowd: int) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            for label, pool, warm in (("cold", "0", False), ("warm", "0," + ",".join(f"{a}=1" for a in APPS), True)):
                voila = Voila(app_url, pool)
                try:
                    if warm:
                        for app in APPS:
                            voila.wait_filled(app, 1)
                        voila.wait_idle()
                        out["memory_warm_kernel"] = voila.memory()
                    out[label] = await sequential(browser, voila, repeat, warm)
                finally:
                    voila.stop()
            for refill in ("1", "5"):  # the default refill delay, and a longer one for bursts
                voila = Voila(app_url, f"0,price_monitor={n_crowd}", refill)
                try:
                    out[f"crowd_http_warm_pool_refill_{refill}s"] = await crowd_http(voila, n_crowd)
                finally:
                    voila.stop()
            voila = Voila(app_url, f"0,price_monitor={n_crowd}")
            try:
                out["crowd_warm_pool"] = await crowd(browser, voila, n_crowd, wait_pool=True)
            finally:
                voila.stop()
            voila = Voila(app_url, "0,price_monitor=1")
            try:
                voila.wait_filled("price_monitor", 1)
                voila.wait_idle()
                out["crowd_default_pool"] = await crowd(browser, voila, n_crowd, wait_pool=False)
            finally:
                voila.stop()
        finally:
            await browser.close()
    return out


def main(quick: bool, n_products: int, n_days: int, repeat: int, n_crowd: int, seed: int) -> dict:
    out: dict = run_header(quick, **{
                 "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                 "goal": f"first table row < {GOAL_S:.0f} s after navigation",
                 "world": {"products": n_products, "retailers": 3, "days": n_days, "seed": seed},
                 "method": ("navigation start until the first animation frame in which the app's first row is "
                            "visible, timed in the page (performance.now in a requestAnimationFrame loop from the "
                            "first byte; fresh browser context, signed-in cookie; Chromium runs on the same 2 "
                            "cores): " + ", ".join(f"{a}: {s}" for a, s in APPS.items())
                            + f"; each app {repeat}x; warm kernels counted ready when every process of the server "
                            "is idle (< 5% CPU for 1 s); memory from psutil (RSS and USS, MB)")})
    t_all = time.perf_counter()
    base, name, url = bench_database("viewers")
    try:
        eng = db_engine.get_engine(url)
        out["build"] = build(eng, n_products, n_days, seed)
        dashboard.refresh(eng)
        auth.add_user(eng, USER, PASSWORD, replace=True)
        app_url = app_database_url(url)
        db_engine.dispose_engines()
        out.update(asyncio.run(measure(app_url, repeat, n_crowd)))
        firsts = {a: out["warm"][a]["median_s"] for a in APPS}
        out["goal_met_warm_median"] = all(v < GOAL_S for v in firsts.values())
        out["speedup_median"] = {a: round(out["cold"][a]["median_s"] / out["warm"][a]["median_s"], 1) for a in APPS}
    finally:
        stop_server(None, base, name)
    return finish(out, t_all)


if __name__ == "__main__":
    ap = bench_parser(__doc__, "200 products × 60 days, 1 repeat, a crowd of 4")
    ap.add_argument("--products", type=int, default=None)
    ap.add_argument("--days", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--crowd", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--apps", default=None, help="comma-separated apps to time (default: " + ",".join(APPS) + ")")
    args = ap.parse_args(sys.argv[1:])
    if args.apps:
        for name in set(APPS) - set(args.apps.split(",")):
            del APPS[name]
    q = args.quick
    res = main(q, args.products or (200 if q else 5000), args.days or (60 if q else 365),
               args.repeat or (1 if q else 3), args.crowd or (4 if q else 20), args.seed)
    path = write_results("viewers", res, q)
    print(f"wrote {path}; total {res['total_s']} s; warm medians under {GOAL_S} s: {res['goal_met_warm_median']}")
