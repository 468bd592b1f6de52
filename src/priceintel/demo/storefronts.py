"""Three competitor storefronts of the demo world served over HTTP on 127.0.0.1, sharing one clock.

``Storefronts(world, host, ports, faults)`` runs one ``ThreadingHTTPServer`` per
shop (HTTP/1.1 keep-alive, Content-Length). Every shop serves ``/`` (category links),
``/robots.txt`` (disallows ``/cart`` and ``/__demo__/``), ``/sitemap.xml`` (all product URLs),
paginated category pages (24 items, ``<a rel="next">``), product pages, ``/cart`` (200) and a real
404. One simulated clock is shared by the three shops: ``GET /__demo__/clock`` → ``{"date": ...}``,
``POST /__demo__/clock?date=YYYY-MM-DD`` sets it (400 on a bad/out-of-range date), and
``?date=YYYY-MM-DD`` on any page overrides it for that request. Links never carry ``?date``.

URL shapes::

    amazon   /<Slug>/dp/<ASIN>           category /b/<category>?page=N
    walmart  /ip/<slug>/<usItemId>       category /browse/<category>?page=N
    target   /p/<slug>/-/A-<TCIN>        category /c/<category>?page=N

Product-page markup (and the hooks the extractor relies on): `priceintel.demo.templates`; request
handling: `priceintel.demo.shop`.

Faults for error-path tests (``faults=`` or ``Storefronts.set_faults``):
``{"missing_price": {(retailer, item_id), ...}}`` renders that page in stock with no price anywhere;
``{"status": {(retailer, item_id): 500}}`` answers that page with that HTTP status. Transient faults
answer the first N requests of a page badly, then normally: ``retry_after`` (429 + Retry-After),
``burst_503``, ``delay`` (slow answer), ``truncate`` (HTML cut half-way), ``captcha`` (robot-check
page); ``layout_change_after: N`` switches every shop to its redesigned markup after N product
requests. `Storefronts.fault_log` lists each fault served. Product pages carry ``ETag`` /
``Last-Modified`` and answer 304 to a matching ``If-None-Match`` (or ``If-Modified-Since``).

`ensure_storefronts(world_dir)` reuses live shops listed in ``data/demo/storefronts.json`` (written by
`serve`, the foreground server of ``priceintel demo serve``) or starts them in-process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from priceintel.demo.shop import _Handler, _index_world, _Server
from priceintel.demo.world import RETAILERS, DemoError, World, _as_date, ensure_world

__all__ = ["DEFAULT_PORTS", "FAULT_KINDS", "Storefronts", "ensure_storefronts", "serve"]

DEFAULT_PORTS = {"amazon": 8701, "walmart": 8702, "target": 8703}


#: injectable faults: status/missing_price (permanent), and per-page transient ones, each
#: {(retailer, item_id): times} or {(retailer, item_id): (times, arg)}; layout_change_after = N requests
FAULT_KINDS = (
    "missing_price",
    "status",
    "retry_after",
    "burst_503",
    "delay",
    "truncate",
    "captcha",
    "layout_change_after",
)
_FAULT_DEFAULT_ARG = {"retry_after": 1, "burst_503": None, "delay": 0.5, "truncate": None, "captcha": None}


def _fault_spec(kind: str, value: Any) -> tuple[int, Any]:
    """(times, argument) of one transient fault: `times` (int) or `(times, arg)` (Retry-After s, delay s)."""
    times, arg = value if isinstance(value, (tuple, list)) else (value, _FAULT_DEFAULT_ARG[kind])
    if not isinstance(times, int) or times < 1:
        raise DemoError(f"faults: {kind} needs a repeat count >= 1, not {times!r}")
    if kind in ("retry_after", "delay") and (not isinstance(arg, (int, float)) or arg < 0):
        raise DemoError(f"faults: {kind} needs seconds >= 0, not {arg!r}")
    return times, arg


class Storefronts:
    """Three demo shops (amazon, walmart, target) on loopback, sharing one simulated clock."""

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        faults: Mapping[str, Any] | None = None,
    ):
        """Index the world; nothing listens until `start()`."""
        self.world = world
        self.host = host
        self.ports = {r: 0 for r in RETAILERS} if ports is None else dict(ports)
        unknown = set(self.ports) - set(RETAILERS)
        if unknown:
            raise DemoError(f"ports: unknown retailer(s) {', '.join(sorted(unknown))}")
        self._start = world.start
        self._n_days = int(world.params["n_days"])
        self.clock_index = self._n_days - 1
        self._shops = _index_world(world)
        self._servers: dict[str, _Server] = {}
        self._threads: list[threading.Thread] = []
        self._fault_missing: set[tuple[str, str]] = set()
        self._fault_status: dict[tuple[str, str], int] = {}
        self._fault_lock = threading.Lock()
        self.set_faults(faults)

    # --- clock ---------------------------------------------------------------------
    def _day_index(self, value: Any) -> int:
        """Index of a date inside the world; DemoError naming the valid range otherwise."""
        d = _as_date(value, "date")
        i = (d - self._start).days
        if not 0 <= i < self._n_days:
            end = self._start + timedelta(days=self._n_days - 1)
            raise DemoError(
                f"date {d.isoformat()} is outside the demo world ({self._start.isoformat()}..{end.isoformat()})"
            )
        return i

    @property
    def date(self) -> dt.date:
        """The simulated day the shops currently show."""
        return self._start + timedelta(days=self.clock_index)

    def set_date(self, d: Any) -> dt.date:
        """Move the shared simulated clock (date, datetime or YYYY-MM-DD); returns the date."""
        self.clock_index = self._day_index(d)
        return self.date

    def set_faults(self, faults: Mapping[str, Any] | None) -> None:
        """Replace the injected faults: missing_price {(retailer, item_id)}, status {key: code}."""
        faults = dict(faults or {})
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise DemoError(f"faults: unknown kind(s) {', '.join(sorted(unknown))} (known: {', '.join(FAULT_KINDS)})")
        status = {tuple(k): int(v) for k, v in dict(faults.get("status") or {}).items()}
        bad = [v for v in status.values() if not 100 <= v <= 599]
        if bad:
            raise DemoError(f"faults: status {bad[0]} is not an HTTP status code")
        self._fault_missing = {tuple(k) for k in faults.get("missing_price") or ()}
        self._fault_status = status
        self._fault_timed = {
            kind: {tuple(k): _fault_spec(kind, v) for k, v in dict(faults.get(kind) or {}).items()}
            for kind in ("retry_after", "burst_503", "delay", "truncate", "captcha")
        }
        layout = faults.get("layout_change_after")
        if layout is not None and (not isinstance(layout, int) or layout < 0):
            raise DemoError(f"faults: layout_change_after must be a request count >= 0, not {layout!r}")
        self._layout_after = layout
        self._fault_hits: dict[tuple[str, tuple[str, str]], int] = {}
        self._product_requests = 0
        self.fault_log: list[tuple[str, str, str]] = []  # (kind, retailer, item_id) of every fault served

    def _take_fault(self, key: tuple[str, str]) -> tuple[tuple[str, Any] | None, bool]:
        """(fault to serve now or None, whether the redesigned layout is live) for one product request."""
        with self._fault_lock:
            self._product_requests += 1
            layout_v2 = self._layout_after is not None and self._product_requests > self._layout_after
            for kind, specs in self._fault_timed.items():
                spec = specs.get(key)
                if spec is None:
                    continue
                times, arg = spec
                hits = self._fault_hits.get((kind, key), 0)
                if hits < times:
                    self._fault_hits[(kind, key)] = hits + 1
                    self.fault_log.append((kind, key[0], key[1]))
                    return (kind, arg), layout_v2
            return None, layout_v2

    # --- lifecycle ---------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        """{retailer: base_url} of the running shops (empty before start)."""
        return {r: s.base_url for r, s in self._servers.items()}

    def start(self) -> dict[str, str]:
        """Bind and serve every shop in daemon threads; returns {retailer: base_url}."""
        if self._servers:
            return self.urls
        try:
            for retailer in RETAILERS:
                port = int(self.ports.get(retailer, 0))
                try:
                    srv = _Server((self.host, port), _Handler, self, self._shops[retailer])
                except OSError as exc:
                    raise DemoError(
                        f"cannot start the {retailer} demo shop on {self.host}:{port}: {exc.strerror or exc}"
                    ) from exc
                self._servers[retailer] = srv
                th = threading.Thread(
                    target=srv.serve_forever, kwargs={"poll_interval": 0.2}, name=f"demo-{retailer}", daemon=True
                )
                th.start()
                self._threads.append(th)
        except DemoError:
            self.stop()
            raise
        return self.urls

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections and release the ports."""
        for srv in self._servers.values():
            srv.close()
        for th in self._threads:
            th.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Storefronts:
        """Start on entry."""
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        """Stop on exit."""
        self.stop()


# ----------------------------------------------------------------------------------------
# registry: reuse running shops, or start them
# ----------------------------------------------------------------------------------------
def _default_registry() -> Path:
    """data/demo/storefronts.json."""
    from priceintel import config

    return config.demo_dir() / "storefronts.json"


def _alive(base_url: str, timeout: float = 1.0) -> bool:
    """True when `base_url` answers GET /__demo__/clock with 200."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        with opener.open(base_url.rstrip("/") + "/__demo__/clock", timeout=timeout) as r:
            return r.status == 200 and "date" in json.loads(r.read().decode("utf-8"))
    except (OSError, ValueError):
        return False


def _registered_urls(registry: Path, world_dir: Path) -> dict[str, str] | None:
    """URLs from the registry when it serves `world_dir` and every shop answers, else None."""
    try:
        reg = json.loads(registry.read_text())
        urls = {str(k): str(v) for k, v in dict(reg["urls"]).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if reg.get("world_dir") and Path(reg["world_dir"]).resolve() != world_dir.resolve():
        return None
    if reg.get("params") is not None and reg["params"] != _world_params(world_dir):
        return None  # the world was regenerated with other parameters: these shops serve a stale one
    if set(urls) != set(RETAILERS) or not all(_alive(u) for u in urls.values()):
        return None
    return urls


def _world_params(world_dir: Path) -> dict | None:
    """The params.json of the world in `world_dir` (None when unreadable)."""
    try:
        return json.loads((world_dir / "params.json").read_text())
    except (OSError, ValueError):
        return None


def _load_world(world_dir: Path) -> World:
    """The world in `world_dir` (generated with default params when there is none)."""
    if (world_dir / "params.json").is_file():
        return World.read(world_dir)
    return ensure_world(world_dir)


def ensure_storefronts(
    world_dir: str | Path, registry: str | Path | None = None
) -> tuple[dict[str, str], Storefronts | None]:
    """Reuse live shops listed in the registry (handle None), else start them in-process."""
    world_dir = Path(world_dir)
    reg = Path(registry) if registry is not None else _default_registry()
    urls = _registered_urls(reg, world_dir)
    if urls is not None:
        return urls, None
    fronts = Storefronts(_load_world(world_dir))
    return fronts.start(), fronts


def serve(
    world_dir: str | Path,
    ports: Mapping[str, int] | None = None,
    registry: str | Path | None = None,
    host: str = "127.0.0.1",
    stop_event: threading.Event | None = None,
) -> None:
    """Serve the shops in the foreground until SIGTERM/SIGINT (or `stop_event`), with a registry."""
    world_dir = Path(world_dir)
    reg = Path(registry) if registry is not None else _default_registry()
    ports = dict(DEFAULT_PORTS if ports is None else ports)
    stop = stop_event or threading.Event()
    fronts = Storefronts(_load_world(world_dir), host=host, ports=ports)
    urls = fronts.start()
    old: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        reg.parent.mkdir(parents=True, exist_ok=True)
        reg.write_text(
            json.dumps(
                {
                    "urls": urls,
                    "pid": os.getpid(),
                    "world_dir": str(world_dir.resolve()),
                    "params": _world_params(world_dir),
                },
                indent=2,
            )
            + "\n"
        )
        for r, u in urls.items():
            print(f"{r:8s} {u}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        fronts.stop()
        try:
            if json.loads(reg.read_text()).get("pid") == os.getpid():
                reg.unlink()
        except (OSError, ValueError):
            pass
