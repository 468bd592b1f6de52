"""One demo shop over HTTP: the world indexed for fast pages, its server and request handler.

`_Handler` routes a shop's requests (robots.txt, sitemap, home, category and product pages, the search page
`/search?q=…`, cart, the demo clock), serves the injected faults and answers conditional requests; the markup comes from
`priceintel.demo.templates`. All state lives on the server and its `Storefronts`.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from priceintel.demo.catalogue import _CATEGORIES
from priceintel.demo.loopback import LoopbackServer, QuietHandler
from priceintel.demo.templates import PRODUCT_PAGES
from priceintel.demo.templates.page import (
    CATEGORY_PREFIX,
    captcha_page,
    cart_page,
    category_page,
    document,
    error_page,
    home_page,
    money,
    robots,
    script_json,
    sitemap,
    slow_down_page,
)
from priceintel.demo.world import RETAILERS, DemoError, World

if TYPE_CHECKING:
    from priceintel.demo.storefronts import Storefronts

#: products per category page
PAGE_SIZE = 24


@dataclass
class _Shop:
    """Pre-indexed view of one retailer: listing info and (item, day) price matrices."""

    retailer: str
    item_ids: list[str]
    row: dict[str, int]
    info: list[tuple]  # (url, title, brand, gtin, mpn, category)
    categories: dict[str, list[int]]
    price: np.ndarray
    list_price: np.ndarray
    in_stock: np.ndarray
    promo: np.ndarray


def _index_world(world: World) -> dict[str, _Shop]:
    """Index listings by (retailer, item_id) and prices by (row, day) for fast rendering."""
    start = pd.Timestamp(world.start)
    n_days = world.params["n_days"]
    shops: dict[str, _Shop] = {}
    for retailer in RETAILERS:
        lf = world.listings[world.listings["retailer"] == retailer]
        ids = lf["item_id"].tolist()
        row = {i: k for k, i in enumerate(ids)}
        info: list[tuple] = [
            tuple(None if (isinstance(x, float) and math.isnan(x)) else x for x in rec)
            for rec in lf[["url", "title", "brand", "gtin", "mpn", "category"]].itertuples(index=False, name=None)
        ]
        cats: dict[str, list[int]] = {c["key"]: [] for c in _CATEGORIES}
        for k, rec in enumerate(info):
            cats.setdefault(rec[5], []).append(k)
        pf = world.prices[world.prices["retailer"] == retailer]
        r = pd.Index(ids).get_indexer(pf["item_id"])
        c = ((pf["ds"] - start).dt.days).to_numpy()
        ok = (r >= 0) & (c >= 0) & (c < n_days)
        shape = (len(ids), n_days)
        mats = {}
        for col, fill in (("price", np.nan), ("list_price", np.nan), ("in_stock", False), ("promo", False)):
            m = np.full(shape, fill, dtype=float if col.endswith("price") else bool)
            m[r[ok], c[ok]] = pf[col].to_numpy()[ok]
            mats[col] = m
        shops[retailer] = _Shop(retailer, ids, row, info, cats, **mats)
    return shops


class _Server(LoopbackServer):
    """A loopback server that knows its shop."""

    def __init__(self, addr, handler, fronts: Storefronts, shop: _Shop):
        super().__init__(addr, handler)
        self.fronts = fronts
        self.shop = shop
        self.base_url = f"http://{addr[0]}:{self.server_address[1]}"


class _Handler(QuietHandler):
    """Routes one shop's requests; all state lives on the server / Storefronts."""

    server_version = "DemoShop/1.0"
    disable_nagle_algorithm = True
    server: _Server

    # --- plumbing --------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: str | bytes,
        ctype: str = "text/html; charset=utf-8",
        head: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Send a complete response with Content-Length (keep-alive friendly)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(0 if status == 304 else len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache" if extra else "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, message: str, head: bool = False) -> None:
        """An HTML error page with a real status code."""
        self._send(status, error_page(self.server.shop.retailer, status, message), head=head)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._route("GET")

    def do_HEAD(self) -> None:
        """Serve a HEAD (headers only)."""
        self._route("HEAD")

    def do_POST(self) -> None:
        """Only the demo clock accepts POST."""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._route("POST")

    def _route(self, method: str) -> None:
        """Dispatch on path."""
        head = method == "HEAD"
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        fronts, shop = self.server.fronts, self.server.shop
        if path == "/__demo__/clock":
            return self._clock(method, query)
        if method == "POST":
            return self._error(405, f"{path} does not accept POST")
        day = fronts.clock_index
        if "date" in query:
            try:
                day = fronts._day_index(query["date"][0])
            except DemoError as exc:
                return self._error(400, str(exc), head)
        if path == "/robots.txt":
            return self._send(200, robots(self.server.base_url), "text/plain; charset=utf-8", head)
        if path == "/sitemap.xml":
            paths = (rec[0] for rec in shop.info)
            return self._send(200, sitemap(self.server.base_url, paths), "application/xml; charset=utf-8", head)
        if path == "/":
            return self._send(200, home_page(shop.retailer, shop.categories), head=head)
        if path == "/cart":
            return self._send(200, cart_page(shop.retailer), head=head)
        if path == "/search":
            return self._search(query.get("q", [""])[0], head)
        prefix = CATEGORY_PREFIX[shop.retailer]
        if path.startswith(prefix) and path.count("/") == prefix.count("/"):
            return self._category(path[len(prefix) :], query, day, head)
        item_id = self._item_id(path)
        if item_id is not None and item_id in shop.row:
            return self._product(item_id, day, head)
        return self._error(404, f"no page at {path}", head)

    def _item_id(self, path: str) -> str | None:
        """The retailer item id of a product URL path, or None."""
        segs = path.split("/")
        r = self.server.shop.retailer
        if r == "amazon" and len(segs) == 4 and segs[2] == "dp":
            return segs[3]
        if r == "amazon" and len(segs) == 3 and segs[1] == "dp":
            return segs[2]
        if r == "walmart" and len(segs) == 4 and segs[1] == "ip":
            return segs[3]
        if r == "target" and len(segs) == 5 and segs[1] == "p" and segs[3] == "-" and segs[4].startswith("A-"):
            return segs[4][2:]
        return None

    # --- pages -------------------------------------------------------------------
    def _clock(self, method: str, query: dict) -> None:
        """GET reads, POST sets the shared simulated date."""
        fronts = self.server.fronts
        if method == "POST":
            if "date" not in query:
                return self._send(
                    400, script_json({"error": "POST /__demo__/clock needs ?date=YYYY-MM-DD"}), "application/json"
                )
            try:
                fronts.set_date(query["date"][0])
            except DemoError as exc:
                return self._send(400, script_json({"error": str(exc)}), "application/json")
        self._send(200, json.dumps({"date": fronts.date.isoformat()}), "application/json", method == "HEAD")

    def _category(self, cat: str, query: dict, day: int, head: bool) -> None:
        """A paginated category listing (24 a page, rel=next/prev links)."""
        shop = self.server.shop
        if cat not in shop.categories:
            return self._error(404, f"no category {cat!r}", head)
        rows = shop.categories[cat]
        last = max(1, math.ceil(len(rows) / PAGE_SIZE))
        raw = query.get("page", ["1"])[0]
        if not raw.isdigit() or not 1 <= int(raw) <= last:
            return self._error(404, f"category {cat!r} has pages 1..{last}, not {raw!r}", head)
        page = int(raw)
        entries = []
        for k in rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
            p = shop.price[k, day]
            ptxt = money(p) if shop.in_stock[k, day] and p == p else "Out of stock"
            entries.append((shop.item_ids[k], shop.info[k][0], shop.info[k][1], ptxt))
        self._send(200, category_page(shop.retailer, cat, page, last, entries), head=head)

    def _search(self, q: str, head: bool) -> None:
        """Search results: products whose title, brand, GTIN or MPN hold every word of `q` (case-insensitive; a
        GTIN also matches without its leading zeros), at most one page of links."""
        shop = self.server.shop
        words = q.lower().split()
        hits = []
        for k, (url, title, brand, gtin, mpn, _cat) in enumerate(shop.info):
            text = " ".join(str(x) for x in (title, brand, gtin, mpn) if x).lower()
            bare = str(gtin).lstrip("0") if gtin else None
            if words and all(w in text or w.lstrip("0") == bare for w in words):
                hits.append((k, url, title))
        items = "".join(
            f'<li class="product" data-item-id="{shop.item_ids[k]}">'
            f'<a href="{html.escape(url)}">{html.escape(title)}</a></li>'
            for k, url, title in hits[:PAGE_SIZE]
        )
        body = f'<h1>{len(hits)} results for "{html.escape(q)}"</h1><ul id="results">{items}</ul>'
        self._send(200, document(f"Search: {q}", body), head=head)

    def _product(self, item_id: str, day: int, head: bool) -> None:
        """A product page in the shop's own markup (faults, the redesign and conditional requests applied)."""
        shop, fronts = self.server.shop, self.server.fronts
        key = (shop.retailer, item_id)
        status = fronts._fault_status.get(key)
        if status is not None:
            return self._error(status, f"simulated error {status} for {item_id}", head)
        fault, layout_v2 = fronts._take_fault(key)
        if fault is not None and self._answer_fault(fault, item_id, head):
            return None
        body = self._product_body(item_id, day, missing_price=key in fronts._fault_missing)
        if layout_v2:  # the redesign: amazon moves its price block, the others rename their wrappers
            body = body.replace('id="corePrice_feature_div"', 'id="corePriceDisplay_desktop_feature_div"')
            body = body.replace('<div id="dp" ', '<div id="dp-v2" ')
        if fault is not None and fault[0] == "truncate":
            body = body[: len(body) // 2]  # a complete response whose HTML stops half-way
        etag = '"' + hashlib.sha1(body.encode("utf-8")).hexdigest()[:20] + '"'
        modified = fronts.date.strftime("%a, %d %b %Y 00:00:00 GMT")
        cond = {"ETag": etag, "Last-Modified": modified}
        if self.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in self.headers and self.headers.get("If-Modified-Since") == modified
        ):
            return self._send(304, b"", head=True, extra=cond)
        self._send(200, body, head=head, extra=cond)

    def _answer_fault(self, fault: tuple[str, Any], item_id: str, head: bool) -> bool:
        """Serve a transient fault; True when it is the whole answer (delay and truncate only alter the page)."""
        kind, arg = fault
        if kind == "delay":
            threading.Event().wait(arg)
        elif kind == "retry_after":
            self._send(429, slow_down_page(), head=head, extra={"Retry-After": str(arg)})
            return True
        elif kind == "burst_503":
            self._error(503, f"simulated overload for {item_id}", head)
            return True
        elif kind == "captcha":
            self._send(200, captcha_page(), head=head)
            return True
        return False

    def _product_body(self, item_id: str, day: int, missing_price: bool) -> str:
        """The product page as the world has it on `day` (in stock with no price at all when `missing_price`)."""
        shop = self.server.shop
        k = shop.row[item_id]
        in_stock = bool(shop.in_stock[k, day])
        price: float | None = float(shop.price[k, day])
        promo = bool(shop.promo[k, day])
        was = float(shop.list_price[k, day]) if promo else None
        if not in_stock or price != price:
            price, was = None, None
        if missing_price:
            in_stock, price, was = True, None, None
        return PRODUCT_PAGES[shop.retailer](self.server.base_url, item_id, shop.info[k], in_stock, price, was)
