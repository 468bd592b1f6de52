"""Tests for priceintel.scrape: archive, fetcher (real loopback HTTP), adapters, extraction, crawl."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import requests

from priceintel import PriceIntelError
from priceintel.clean import listings_from_observations, offers_to_observations
from priceintel.items import IN_STOCK, LIMITED, OUT_OF_STOCK, PREORDER, Offer
from priceintel.scrape import (
    Adapter,
    ArchiveError,
    CrawlError,
    ExtractError,
    Fetcher,
    RawArchive,
    UnknownRetailerError,
    adapter_for_url,
    discover_products,
    extract,
    get_adapter,
    scrape_demo,
    scrape_site,
    set_demo_date,
)
from priceintel.scrape import adapters as adapters_pkg
from priceintel.scrape.crawl import OFFER_FRAME_COLUMNS, _category_urls
from priceintel.scrape.fetch import parse_retry_after


# ==========================================================================================
# a tiny scriptable HTTP server for odd behaviours
# ==========================================================================================
class _TinyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        srv = self.server
        path = self.path.split("?")[0]
        with srv.lock:
            srv.hits.append((path, dict(self.headers), time.monotonic()))
            queue = srv.routes.get(path)
            if queue is None:
                resp = (404, {}, b"<html><body>nope</body></html>", 0.0)
            elif len(queue) > 1:
                resp = queue.pop(0)
            else:
                resp = queue[0]
        status, headers, body, delay = resp
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class TinyServer:
    """Loopback server whose routes return scripted responses in order (the last one repeats)."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _TinyHandler)
        self.httpd.daemon_threads = True
        self.httpd.lock = threading.Lock()
        self.httpd.routes = {}
        self.httpd.hits = []
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.httpd.lock:
            self.httpd.routes.clear()
            self.httpd.hits.clear()
        self.route("/robots.txt", (200, {}, b"User-agent: *\nDisallow: /private\n"))

    def route(self, path, *responses):
        """Script the responses for a path: (status, headers, body[, delay])."""
        self.httpd.routes[path] = [r if len(r) == 4 else (*r, 0.0) for r in responses]

    def hits(self, path=None):
        return [h for h in self.httpd.hits if path is None or h[0] == path]

    def url(self, path):
        return self.base + path


@pytest.fixture(scope="module")
def tiny_server():
    srv = TinyServer()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def tiny(tiny_server):
    tiny_server.reset()
    return tiny_server


@pytest.fixture
def closed_port():
    """A loopback port with nothing listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _html(body: str, head: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>".encode()


# ==========================================================================================
# archive
# ==========================================================================================
def test_archive_put_get_index(tmp_path):
    arc = RawArchive(tmp_path)
    ts = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    sha = arc.put("http://s/p1", 200, {"Content-Type": "text/html"}, b"<html>1</html>", ts, retailer="amazon")
    sha2 = arc.put("http://s/p1-again", 200, {}, b"<html>1</html>", ts + timedelta(hours=13))
    assert sha == sha2 and len(sha) == 64
    obj = tmp_path / "objects" / sha[:2] / f"{sha}.gz"
    assert obj.exists() and gzip.decompress(obj.read_bytes()) == b"<html>1</html>"
    assert len(list((tmp_path / "objects").rglob("*.gz"))) == 1  # content-addressed: stored once
    assert arc.get(sha) == b"<html>1</html>" and arc.has(sha)
    assert arc.partitions() == ["2026-07-01", "2026-07-02"]
    day1 = list(arc.iter_index("2026-07-01"))
    assert day1 == [{"url": "http://s/p1", "status": 200, "headers": {"Content-Type": "text/html"},
                     "fetched_at": "2026-07-01T12:30:00+00:00", "sha256": sha, "size": 14,
                     "meta": {"retailer": "amazon"}}]
    assert [r["url"] for r in arc.iter_index()] == ["http://s/p1", "http://s/p1-again"]
    # explicit partition, naive timestamps taken as UTC
    arc.put("http://s/p2", 404, None, b"", datetime(2026, 1, 1), partition="backfill")
    assert list(arc.iter_index("backfill"))[0]["fetched_at"] == "2026-01-01T00:00:00+00:00"


def test_archive_errors(tmp_path):
    arc = RawArchive(tmp_path)
    with pytest.raises(ArchiveError, match="not a sha256"):
        arc.get("abc")
    with pytest.raises(ArchiveError, match="no archived object"):
        arc.get("0" * 64)
    with pytest.raises(ArchiveError, match="must be bytes"):
        arc.put("http://s", 200, {}, "text")
    with pytest.raises(ArchiveError, match="bad archive partition"):
        arc.put("http://s", 200, {}, b"x", partition="../evil")
    with pytest.raises(ArchiveError, match="no archive index partition"):
        list(arc.iter_index("2020-01-01"))
    assert arc.partitions() == []
    sha = arc.put("http://s", 200, {}, b"body", partition="p")
    path = arc.object_path(sha)
    path.chmod(0o644)
    path.write_bytes(gzip.compress(b"tampered"))
    with pytest.raises(ArchiveError, match="corrupt"):
        arc.get(sha)
    (tmp_path / "index" / "p.jsonl").open("a").write("{broken\n")
    with pytest.raises(ArchiveError, match=r"p.jsonl:2: malformed"):
        list(arc.iter_index("p"))
    assert "RawArchive(" in repr(arc)


def test_archive_default_root_and_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    arc = RawArchive()
    assert arc.root == tmp_path / "raw"

    def work(k):
        for i in range(40):
            arc.put(f"http://s/{k}/{i}", 200, {}, f"body {i % 10}".encode(), partition="t")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(arc.iter_index("t"))
    assert len(records) == 320 and len({r["url"] for r in records}) == 320
    assert len(list((arc.root / "objects").rglob("*.gz"))) == 10
    assert not list((arc.root / "objects").rglob(".tmp-*"))


# ==========================================================================================
# fetcher
# ==========================================================================================
def test_fetch_ok_archived_with_user_agent(tiny, tmp_path):
    tiny.route("/a", (200, {"Content-Type": "text/html"}, b"<html>hello</html>"))
    arc = RawArchive(tmp_path)
    with Fetcher(archive=arc, user_agent="test-bot/1.0") as f:
        res = f.get(tiny.url("/a"), meta={"retailer": "x"})
    assert res.ok and res.status == 200 and res.body == b"<html>hello</html>" and res.text == "<html>hello</html>"
    assert res.sha256 == arc.put("u", 200, {}, b"<html>hello</html>")
    assert res.fetched_at.tzinfo is not None and res.attempts == 1
    assert tiny.hits("/a")[0][1]["User-Agent"] == "test-bot/1.0"
    recs = [r for r in arc.iter_index() if r["url"] == tiny.url("/a")]
    assert recs[0]["status"] == 200 and recs[0]["meta"] == {"retailer": "x", "attempt": 1}
    # robots.txt is archived too
    assert any(r["url"].endswith("/robots.txt") for r in arc.iter_index())


def test_fetch_retries_500_then_200(tiny, tmp_path):
    tiny.route("/flaky", (500, {}, b"oops"), (503, {}, b"busy"), (200, {}, b"<html>ok</html>"))
    arc = RawArchive(tmp_path)
    f = Fetcher(archive=arc, retries=3, backoff=0.01)
    res = f.get(tiny.url("/flaky"))
    assert res.ok and res.body == b"<html>ok</html>" and res.attempts == 3
    statuses = [r["status"] for r in arc.iter_index() if r["url"].endswith("/flaky")]
    assert statuses == [500, 503, 200]  # every response archived


def test_fetch_429_retry_after_honoured_and_capped(tiny):
    tiny.route("/slow", (429, {"Retry-After": "1"}, b""), (200, {}, b"ok"))
    f = Fetcher(retries=2, backoff=0.01)
    res = f.get(tiny.url("/slow"))
    assert res.ok and res.attempts == 2
    hits = tiny.hits("/slow")
    assert hits[1][2] - hits[0][2] >= 0.9  # waited as told
    tiny.route("/slower", (429, {"Retry-After": "3600"}, b""), (200, {}, b"ok"))
    f = Fetcher(retries=2, backoff=0.01, max_retry_after=0.1)
    t0 = time.monotonic()
    assert f.get(tiny.url("/slower")).ok
    assert time.monotonic() - t0 < 5


def test_fetch_gives_up_on_persistent_errors(tiny):
    tiny.route("/down", (503, {}, b"down"))
    tiny.route("/missing", (404, {}, b"missing"))
    f = Fetcher(retries=2, backoff=0.01)
    res = f.get(tiny.url("/down"))
    assert res.status == 503 and res.error_kind == "http_error" and res.attempts == 3 and not res.ok
    assert "HTTP 503" in res.error and tiny.url("/down") in res.error
    res = f.get(tiny.url("/missing"))
    assert res.status == 404 and res.error_kind == "http_error" and res.attempts == 1
    assert len(tiny.hits("/missing")) == 1  # 404 is not retried


def test_robots_disallow_is_obeyed(tiny):
    tiny.route("/private/x", (200, {}, b"secret"))
    f = Fetcher(retries=0)
    res = f.get(tiny.url("/private/x"))
    assert res.error_kind == "robots_disallowed" and res.status is None and not res.ok
    assert "disallows" in res.error
    assert tiny.hits("/private/x") == []  # never fetched
    f.get(tiny.url("/public"))
    assert len(tiny.hits("/robots.txt")) == 1  # robots cached per host
    # obey_robots=False fetches anyway
    assert Fetcher(obey_robots=False).get(tiny.url("/private/x")).body == b"secret"


def test_robots_5xx_disallows_4xx_allows(tiny):
    tiny.route("/robots.txt", (500, {}, b""))
    tiny.route("/page", (200, {}, b"page"))
    assert Fetcher(retries=0).get(tiny.url("/page")).error_kind == "robots_disallowed"
    tiny.route("/robots.txt", (404, {}, b""))
    assert Fetcher(retries=0).get(tiny.url("/page")).ok


def test_rate_limit_and_crawl_delay(tiny):
    tiny.route("/r", (200, {}, b"r"))
    f = Fetcher(rate_limit_per_host=20)  # one request per 50 ms
    for _ in range(5):
        f.get(tiny.url("/r"))
    times = [h[2] for h in tiny.hits("/r")]
    assert times[-1] - times[0] >= 0.18
    tiny.reset()
    tiny.route("/robots.txt", (200, {}, b"User-agent: *\nCrawl-delay: 1\n"))
    tiny.route("/r", (200, {}, b"r"))
    f = Fetcher(max_crawl_delay=0.1)
    for _ in range(3):
        f.get(tiny.url("/r"))
    times = [h[2] for h in tiny.hits("/r")]
    assert times[-1] - times[0] >= 0.18


def test_unreachable_host_never_raises(closed_port):
    f = Fetcher(retries=1, backoff=0.01)
    url = f"http://127.0.0.1:{closed_port}/some/page"
    res = f.get(url)
    assert res.error_kind == "unreachable" and res.status is None and res.url == url
    assert res.error.startswith(f"cannot connect to http://127.0.0.1:{closed_port}/ (connection refused)")
    assert f.robots(url) is None
    # dead host is remembered: the second URL fails fast without new attempts
    t0 = time.monotonic()
    assert f.get(url + "2").error_kind == "unreachable"
    assert time.monotonic() - t0 < 0.5
    res = Fetcher(retries=0, obey_robots=False).get(url)
    assert res.error_kind == "unreachable" and "after 1 attempt(s)" in res.error


def test_timeout_and_invalid_url(tiny):
    tiny.route("/hang", (200, {}, b"late", 1.0))
    res = Fetcher(retries=0, timeout=0.2).get(tiny.url("/hang"))
    assert res.error_kind == "timeout" and "within 0.2s" in res.error
    res = Fetcher().get("ftp://example.com/x")
    assert res.error_kind == "invalid_url" and not res.ok
    res = Fetcher(obey_robots=False).get("http://[::1")
    assert res.error_kind == "invalid_url"


def test_get_many_keeps_order(tiny):
    for i in range(12):
        tiny.route(f"/m{i}", (200, {}, f"page {i}".encode(), 0.01 * (12 - i)))
    f = Fetcher(max_workers=4)
    urls = [tiny.url(f"/m{i}") for i in range(12)] + [tiny.url("/private/no")]
    res = f.get_many(urls, progress=False)
    assert [r.body for r in res[:12]] == [f"page {i}".encode() for i in range(12)]
    assert res[12].error_kind == "robots_disallowed"
    assert f.get_many([]) == []
    with pytest.raises(ValueError, match="meta dicts"):
        f.get_many(urls, meta=[{}])


def test_settings_proxy_and_session(monkeypatch):
    monkeypatch.setenv("PRICEINTEL_HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("PRICEINTEL_RATE_LIMIT", "4")
    f = Fetcher()
    assert f.proxies == {"http": "http://127.0.0.1:3128", "https": "http://127.0.0.1:3128"}
    assert f.session.proxies["http"] == "http://127.0.0.1:3128"
    assert f.min_interval == 0.25
    assert isinstance(f.session, requests.Session) and f.session is f.session
    f.close()
    assert f._sessions == []


def test_parse_retry_after():
    now = datetime(2026, 7, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


# ==========================================================================================
# adapters
# ==========================================================================================
def test_adapter_registry():
    names = set(adapters_pkg.all_adapters())
    assert {"amazon", "walmart", "target", "generic"} <= names
    assert get_adapter("amazon").name == "amazon"
    with pytest.raises(UnknownRetailerError, match="no scraping adapter named 'ebay'.*amazon"):
        get_adapter("ebay")
    assert adapter_for_url("http://127.0.0.1:1/Acme-Thing/dp/B0ABCDEFGH").name == "amazon"
    assert adapter_for_url("http://127.0.0.1:1/ip/acme-thing/123456789").name == "walmart"
    assert adapter_for_url("http://127.0.0.1:1/p/acme-thing/-/A-12345678").name == "target"
    assert adapter_for_url("https://www.walmart.com/cp/whatever").name == "walmart"
    assert adapter_for_url("http://shop.example/item/1").name == "generic"


def test_adapter_patterns_and_availability():
    amazon, walmart, target = (get_adapter(n) for n in ("amazon", "walmart", "target"))
    assert amazon.item_id_from_url("http://h/Acme/dp/B0ABCDEFGH?th=1") == "B0ABCDEFGH"
    assert walmart.item_id_from_url("http://h/ip/slug/987654321") == "987654321"
    assert target.item_id_from_url("http://h/p/slug/-/A-5551234") == "5551234"
    assert target.item_id_from_url("http://h/c/food") is None
    assert target.is_category_url("http://h/c/food?page=2") and not target.is_product_url("http://h/c/food")
    assert get_adapter("generic").item_id_from_url("http://h/x") is None
    assert not get_adapter("generic").is_product_url("http://h/x")
    assert not get_adapter("generic").is_category_url("http://h/x")
    assert amazon.normalise_availability("  Currently unavailable. ") == OUT_OF_STOCK
    assert amazon.normalise_availability("In Stock") == IN_STOCK
    assert amazon.normalise_availability("Only 3 left in stock - order soon.") == LIMITED
    assert walmart.normalise_availability("OUT_OF_STOCK") == OUT_OF_STOCK
    assert walmart.normalise_availability("http://schema.org/PreOrder") == PREORDER
    assert walmart.normalise_availability("who knows") is None
    assert walmart.normalise_availability("") is None


# ==========================================================================================
# extraction (hand-written pages following the demo hooks)
# ==========================================================================================
def _amazon_page(price="$12.99", was=None, in_stock=True, brand_table=True, mpn="AC-100"):
    strike = (f'<span class="a-price a-text-price" data-a-strike="true"><span class="a-offscreen">{was}'
              f"</span></span>") if was else ""
    price_html = (f'<div id="corePrice_feature_div"><span class="a-price priceToPay"><span class="a-offscreen">'
                  f"{price}</span><span aria-hidden=true>$12<sup>99</sup></span></span>{strike}</div>"
                  ) if price else ""
    rows = "<tr><th>Brand</th><td>Acme</td></tr>" if brand_table else ""
    rows += f"<tr><th>Item model number</th><td>{mpn}</td></tr><tr><th>ASIN</th><td>B0ABCDEFGH</td></tr>"
    avail = "In Stock" if in_stock else "Currently unavailable."
    return _html(
        f'<span id="productTitle">  Acme  Widget,\n 2 Pack </span><a id="bylineInfo">Visit the Acme Store</a>'
        f'{price_html}<div id="availability"><span>{avail}</span></div>'
        f'<input type="hidden" id="ASIN" value="B0ABCDEFGH">'
        f'<table id="productDetails_techSpec_section_1">{rows}</table>'
        f'<p>Free shipping on orders over $35</p>',
        "<title>Amazon.com: Acme Widget</title>",
    )


def test_extract_amazon_promo():
    o = extract(_amazon_page(was="$15.99"), "http://h/Acme-Widget/dp/B0ABCDEFGH", "amazon")
    assert isinstance(o, Offer) and o.page_kind == "product" and o.retailer == "amazon"
    assert (o.item_id, o.title, o.brand, o.mpn) == ("B0ABCDEFGH", "Acme Widget, 2 Pack", "Acme", "AC-100")
    assert (o.price, o.list_price, o.currency, o.currency_raw, o.price_raw) == (
        "12.99", "15.99", "USD", "$", "$12.99")
    assert o.availability == IN_STOCK and o.in_stock
    assert o.methods["price"] == "css:#corePrice_feature_div .a-price.priceToPay .a-offscreen"
    assert o.methods["item_id"] == "css:input#ASIN::attr(value)"
    assert o.methods["brand"].startswith("xpath:")
    assert o.gtin is None


def test_extract_amazon_byline_brand_and_out_of_stock():
    o = extract(_amazon_page(price=None, in_stock=False, brand_table=False),
                "http://h/Acme-Widget/dp/B0ABCDEFGH")  # retailer inferred from the URL
    assert o.retailer == "amazon" and o.brand == "Acme" and o.methods["brand"] == "css:a#bylineInfo"
    assert o.price is None and o.availability == OUT_OF_STOCK and o.in_stock is False
    assert o.page_kind == "product"  # out of stock is a valid product page; no price invented


def test_extract_no_price_in_stock_is_flagged_not_invented():
    o = extract(_amazon_page(price=None, in_stock=True), "http://h/Acme/dp/B0ABCDEFGH", "amazon")
    assert o.page_kind == "no_price" and o.price is None and o.list_price is None


def _walmart_page(product: dict) -> bytes:
    state = {"props": {"pageProps": {"initialData": {"data": {"product": product}}}}}
    return _html(f'<h1 itemprop="name">{product.get("name", "")}</h1>'
                 f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(state)}</script>')


def test_extract_walmart_next_data():
    product = {"usItemId": "123456789", "name": "Acme Widget 2pk", "brand": "Acme", "upc": "036000291452",
               "model": "AC-100", "availabilityStatus": "IN_STOCK", "sellerName": "Walmart.com",
               "priceInfo": {"currentPrice": {"price": 1234.5, "priceString": "$1,234.50", "currencyUnit": "USD"},
                             "wasPrice": {"price": 1299.0, "priceString": "$1,299.00", "currencyUnit": "USD"}}}
    o = extract(_walmart_page(product), "http://h/ip/acme-widget/123456789", "walmart")
    assert (o.item_id, o.title, o.brand, o.gtin, o.mpn, o.seller) == (
        "123456789", "Acme Widget 2pk", "Acme", "036000291452", "AC-100", "Walmart.com")
    assert (o.price, o.price_raw, o.list_price, o.currency, o.availability) == (
        "1234.50", "$1,234.50", "1299.00", "USD", IN_STOCK)
    assert o.methods["price"] == "json:priceInfo.currentPrice.price"
    assert o.methods["currency"] == "json:priceInfo.currentPrice.currencyUnit"
    assert o.methods["gtin"] == "json:upc"
    oos = dict(product, availabilityStatus="OUT_OF_STOCK", upc="036000291453",
               priceInfo={"currentPrice": None, "wasPrice": None})
    o = extract(_walmart_page(oos), "http://h/ip/acme-widget/123456789", "walmart")
    assert o.price is None and o.availability == OUT_OF_STOCK and o.page_kind == "product"
    assert o.gtin is None  # bad check digit -> dropped


def _target_page(ld, visible=""):
    return _html(f'<h1 data-test="product-title">Acme Widget</h1>{visible}'
                 f'<script type="application/ld+json">{json.dumps(ld)}</script>')


def test_extract_target_jsonld():
    ld = {"@context": "https://schema.org/", "@type": "Product", "name": "Acme Widget", "sku": "5551234",
          "gtin13": "0036000291452", "mpn": "AC-100", "brand": {"@type": "Brand", "name": "Acme"},
          "offers": {"@type": "Offer", "price": "12.99", "priceCurrency": "USD",
                     "availability": "https://schema.org/InStock", "url": "http://h/p/x/-/A-5551234"}}
    visible = ('<span data-test="product-price">$12.99</span>'
               '<span data-test="product-regular-price">reg $15.99</span>')
    o = extract(_target_page(ld, visible), "http://h/p/acme-widget/-/A-5551234", "target")
    assert (o.item_id, o.sku, o.title, o.brand, o.gtin, o.mpn) == (
        "5551234", "5551234", "Acme Widget", "Acme", "0036000291452", "AC-100")
    assert (o.price, o.list_price, o.currency, o.availability) == ("12.99", "15.99", "USD", IN_STOCK)
    assert o.methods["price"] == "jsonld" and o.methods["item_id"] == "url"
    assert o.methods["gtin"] == "jsonld:gtin13"
    assert o.methods["list_price"] == "css:[data-test=product-regular-price]"


@pytest.mark.parametrize("ld, price, currency, avail, list_price", [
    ({"@graph": [{"@type": "WebPage"}, {"@type": ["Product"], "name": "G", "brand": "B",
                                         "offers": [{"@type": "Offer", "price": 9.5, "priceCurrency": "EUR",
                                                     "availability": "http://schema.org/OutOfStock"}]}]},
     "9.50", "EUR", OUT_OF_STOCK, None),
    ([{"@type": "BreadcrumbList"}, {"@type": "Product", "name": "G", "offers": {
        "@type": "AggregateOffer", "lowPrice": "7.25", "highPrice": "9", "priceCurrency": "GBP",
        "offers": [{"@type": "Offer", "availability": "InStock"}]}}],
     "7.25", "GBP", IN_STOCK, None),
    ({"@type": "Product", "name": "G", "offers": {"@type": "Offer", "priceSpecification": [
        {"@type": "UnitPriceSpecification", "price": 20, "priceCurrency": "USD"},
        {"@type": "UnitPriceSpecification", "price": 25, "priceCurrency": "USD",
         "priceType": "https://schema.org/ListPrice"}]}},
     "20.00", "USD", None, "25.00"),
    ({"@type": "Offer", "price": "3.10", "priceCurrency": "XYZ", "availability": "LimitedAvailability"},
     "3.10", None, LIMITED, None),
])
def test_extract_jsonld_shapes(ld, price, currency, avail, list_price):
    o = extract(_html(f'<script type="application/ld+json">{json.dumps(ld)}</script><h1>G</h1>'),
                "http://shop.example/g")
    assert o.retailer == "generic"
    assert (o.price, o.currency, o.availability, o.list_price) == (price, currency, avail, list_price)
    assert o.methods["price"].startswith("jsonld")
    if currency is None:
        assert o.currency_raw == "XYZ"


def test_extract_lenient_jsonld_and_bad_json():
    bad = '<script type="application/ld+json">{"@type": "Product", "name": "L", "offers": {"price": "5",}}</script>'
    worse = '<script type="application/ld+json">{not json</script>'
    o = extract(_html(worse + bad + '<span itemprop="price" content="5.00">5</span>'), "http://x.example/l")
    assert o.title == "L" and o.price == "5.00" and o.methods["price"] == "jsonld"


def test_extract_microdata_and_opengraph():
    md = _html('<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">Micro</h1>'
               '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
               '<meta itemprop="priceCurrency" content="EUR"><span itemprop="price" content="4.20">4,20 €</span>'
               '<link itemprop="availability" href="https://schema.org/InStock"></div>'
               '<meta itemprop="gtin13" content="4006381333931"></div>')
    o = extract(md, "http://shop.example/m")
    assert (o.title, o.price, o.currency, o.availability, o.gtin) == (
        "Micro", "4.20", "EUR", IN_STOCK, "4006381333931")
    assert o.methods["price"] == "microdata" and o.methods["currency"] == "microdata"
    og = _html("<p>hello</p>", '<meta property="og:title" content="Graph Thing">'
               '<meta property="product:price:amount" content="19.99">'
               '<meta property="product:price:currency" content="GBP">')
    o = extract(og, "http://shop.example/o")
    assert (o.title, o.price, o.currency) == ("Graph Thing", "19.99", "GBP")
    assert o.methods["price"] == "opengraph"


def test_extract_heuristics():
    page = _html('<h1>Plain Thing</h1><div class="old-price"><span class="price">$30.00</span></div>'
                 '<span class="was-price">$25.00</span><div class="product-price">Now $19.50</div>')
    o = extract(page, "http://shop.example/p")
    assert (o.price, o.currency, o.title) == ("19.50", "USD", "Plain Thing")
    assert o.methods["price"] == "heuristic:price-element" and o.methods["title"] == "css:h1"
    o = extract(_html("<h2>Thing</h2><p>Only <b>€8,50</b> today</p>"), "http://shop.example/q")
    assert (o.price, o.currency, o.methods["price"]) == ("8.50", "EUR", "heuristic:text")
    assert o.title is None or o.title  # no h1: title may be absent, never crashes
    # known retailers do not grab arbitrary text prices
    o = extract(_html('<h1 data-test="product-title">T</h1><p>Save $5 today</p>'),
                "http://h/p/t/-/A-1", "target")
    assert o.price is None and o.page_kind == "no_price"


def test_extract_page_kinds():
    url = "http://h/Acme/dp/B0ABCDEFGH"
    captcha = _html("<h4>Enter the characters you see below</h4><form>captcha</form>", "<title>Robot Check</title>")
    assert extract(captcha, url, "amazon").page_kind == "blocked"
    nf = _html("<h1>Looking for something?</h1>", "<title>Page Not Found</title>")
    assert extract(nf, url, "amazon").page_kind == "not_found"
    assert extract(_amazon_page(), url, "amazon", status=404).page_kind == "not_found"
    truncated = _amazon_page(price=None)[:200]
    o = extract(truncated, url, "amazon")
    assert o.page_kind == "truncated" and o.price is None
    # truncated even though the price made it: recorded as truncated, never trusted as a price
    full = _amazon_page()
    assert extract(full[: full.index(b"<table")], url, "amazon").page_kind == "truncated"
    assert extract(full, url, "amazon").page_kind == "product"
    assert extract(b"", url, "amazon").page_kind == "truncated"
    assert extract(_html("<p>nothing here</p>"), "http://shop.example/z").page_kind == "not_found"


def test_extract_input_types_and_encoding():
    page = '<?xml version="1.0" encoding="utf-8"?>' + _amazon_page().decode()
    o = extract(page, "http://h/Acme/dp/B0ABCDEFGH", "amazon")
    assert o.price == "12.99"
    o = extract(bytearray(_amazon_page()), "http://h/Acme/dp/B0ABCDEFGH")
    assert o.price == "12.99"
    with pytest.raises(ExtractError, match="str or bytes"):
        extract(123, "http://h/x")
    with pytest.raises(UnknownRetailerError):
        extract(b"<html></html>", "http://h/x", "nosuchshop")


def test_extract_json_var_adapter_added_at_runtime(monkeypatch):
    """A new retailer is just an Adapter: here registered without touching other code."""
    shop = Adapter(name="jsshop", url_pattern=r"/item/(?P<item_id>\d+)", json_var="window.__STATE__",
                   json_path="product", json_fields={"title": "title", "price": "price.amount",
                                                     "currency": "price.cur", "availability": "stock"},
                   availability_map={"yes": IN_STOCK})
    monkeypatch.setitem(adapters_pkg._registry(), "jsshop", shop)
    page = _html('<script>var x = 1; window.__STATE__ = {"product": {"title": "JS Thing", '
                 '"price": {"amount": 42, "cur": "CAD"}, "stock": "yes"}}; more();</script>')
    o = extract(page, "http://js.example/item/77", "jsshop")
    assert (o.item_id, o.title, o.price, o.currency, o.availability) == ("77", "JS Thing", "42.00", "CAD", IN_STOCK)
    assert o.methods["price"] == "json:price.amount" and o.methods["item_id"] == "url"


# ==========================================================================================
# crawl (fallback walk on the tiny server; everything else on the real demo storefronts)
# ==========================================================================================
def test_discover_falls_back_to_category_pages(tiny):
    tiny.route("/robots.txt", (200, {}, b"User-agent: *\nDisallow: /cart\n"))  # no Sitemap line
    tiny.route("/", (200, {}, _html('<a href="/c/food">Food</a><a href="/cart">Cart</a>')))
    # /c/food?page=2 has the same path: it gets the second scripted answer
    tiny.route("/c/food", (200, {}, _html('<a href="/p/a/-/A-1">a</a><a rel="next" href="/c/food?page=2">n</a>')),
               (200, {}, _html('<a href="/p/c/-/A-3#reviews">c</a>')))
    f = Fetcher(retries=0)
    urls = discover_products(tiny.base, f, get_adapter("target"))
    assert urls == [tiny.url("/p/a/-/A-1"), tiny.url("/p/c/-/A-3")]
    assert tiny.hits("/sitemap.xml")  # tried the default sitemap first


def test_discover_errors(tiny, closed_port):
    f = Fetcher(retries=0)
    with pytest.raises(CrawlError, match="cannot discover products of target") as exc:
        discover_products(f"http://127.0.0.1:{closed_port}", f, get_adapter("target"))
    assert exc.value.kind == "unreachable" and isinstance(exc.value, PriceIntelError)
    tiny.route("/", (200, {}, _html("<p>empty shop</p>")))
    with pytest.raises(CrawlError, match="no target product URLs found") as exc:
        discover_products(tiny.base, f, get_adapter("target"))
    assert exc.value.kind == "no_products"
    offers, errors = scrape_site(tiny.base, "target", f)
    assert offers.empty and errors.kind.tolist() == ["no_products"]
    assert list(offers.columns) == OFFER_FRAME_COLUMNS


def test_discover_sitemap_index_and_gzip(tiny):
    tiny.route("/robots.txt", (200, {}, f"Sitemap: {tiny.base}/sm-index.xml\n".encode()))
    tiny.route("/sm-index.xml", (200, {}, b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                                          b"<sitemap><loc>/sm1.xml.gz</loc></sitemap></sitemapindex>"))
    body = gzip.compress(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                         b"<url><loc>/ip/x/123456</loc></url><url><loc>/help</loc></url></urlset>")
    tiny.route("/sm1.xml.gz", (200, {"Content-Type": "application/octet-stream"}, body))
    urls = discover_products(tiny.base, Fetcher(retries=0), get_adapter("walmart"))
    assert urls == [tiny.url("/ip/x/123456")]


@pytest.fixture
def shop_clock(storefronts):
    """Restore the shared storefronts' simulated day after a test moves it."""
    before = storefronts.date
    yield storefronts
    storefronts.set_date(before)


def _truth(world, days):
    """Expected page content per (retailer, item_id, ds) from the demo world."""
    prices = world.prices[world.prices.ds.isin(pd.to_datetime(days))]
    lst = world.listings.drop(columns=["url"])
    return prices.merge(lst, on=["retailer", "item_id"], how="left")


def _none(x):
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else x


def test_scrape_demo_matches_world_truth(demo_world, storefronts, shop_clock, tmp_path):
    days = [demo_world.start + timedelta(days=3), demo_world.start + timedelta(days=4)]
    arc = RawArchive(tmp_path)
    with Fetcher(archive=arc, backoff=0.01) as f:
        offers, errors = scrape_demo(storefronts.urls, days, f)
    truth = _truth(demo_world, days)
    # world pages with no price while in stock would be errors; none expected on these days
    expect_errors = truth[truth.in_stock & truth.price.isna()]
    assert len(errors) == len(expect_errors)
    assert len(offers) == len(truth) - len(expect_errors) == len(demo_world.listings) * 2
    assert set(offers.columns) == set(OFFER_FRAME_COLUMNS) | {"ds"}
    merged = offers.merge(truth, on=["retailer", "item_id", "ds"], suffixes=("", "_true"),
                          how="left", indicator=True, validate="one_to_one")
    assert (merged["_merge"] == "both").all()
    for r in merged.itertuples():
        where = f"{r.retailer}/{r.item_id}/{r.ds.date()}"
        assert r.title == r.title_true and r.brand == _none(r.brand_true), where
        assert r.in_stock == (r.availability == IN_STOCK), where
        if r.in_stock:
            assert float(r.price) == pytest.approx(r.price_true, abs=1e-9), where
            assert r.currency == "USD", where
        else:
            assert r.price is None, where
        if r.promo:
            assert float(r.list_price) == pytest.approx(r.list_price_true), where
        else:
            assert r.list_price is None, where
        if r.retailer != "amazon":  # amazon never shows a GTIN
            assert r.gtin == _none(r.gtin_true), where
        else:
            assert r.gtin is None
        assert r.mpn == _none(r.mpn_true), where
        assert r.page_sha256 and arc.get(r.page_sha256)
        assert r.url.startswith(storefronts.urls[r.retailer]), where
    assert offers.retailer.value_counts().to_dict() == demo_world.listings.retailer.value_counts().mul(2).to_dict()
    # the archive holds every product page with its ds
    recs = [x for x in arc.iter_index() if x["meta"].get("kind") == "product"]
    assert len(recs) == len(offers) and {x["meta"]["ds"] for x in recs} == {d.isoformat() for d in days}

    # clean -> observations agree with the truth frame, promo flag included
    obs, cerr = offers_to_observations(offers)
    assert cerr.empty and len(obs) == len(offers)
    m = obs.merge(truth, on=["retailer", "item_id", "ds"], suffixes=("", "_true"))
    assert (m.in_stock == m.in_stock_true).all() and (m.promo == m.promo_true).all()
    np.testing.assert_allclose(m.price, m.price_true)
    listings = listings_from_observations(obs)
    assert len(listings) == len(demo_world.listings)


def test_scrape_site_faults_limits_and_item_ids(demo_world):
    from priceintel.demo.storefronts import Storefronts

    amazon_id = demo_world.listings.query("retailer == 'amazon'").item_id.iloc[0]
    walmart_ids = demo_world.listings.query("retailer == 'walmart'").item_id.tolist()
    faults = {"missing_price": {("amazon", amazon_id)}, "status": {("walmart", walmart_ids[0]): 500,
                                                                 ("walmart", walmart_ids[1]): 404}}
    with Storefronts(demo_world, faults=faults) as fronts, Fetcher(retries=1, backoff=0.01) as f:
        day = demo_world.start + timedelta(days=2)
        assert set_demo_date(fronts.urls["amazon"], day, f) == day
        offers, errors = scrape_site(fronts.urls["amazon"], "amazon", f, item_ids=[amazon_id, "B0NOTTHERE"])
        assert offers.empty
        assert errors.kind.tolist() == ["no_price"] and amazon_id in errors.message.iloc[0]
        offers, errors = scrape_site(fronts.urls["walmart"], "walmart", f, limit=4)
        kinds = dict(zip(errors.url.str.rsplit("/", n=1).str[-1], errors.kind))
        assert kinds == {walmart_ids[0]: "http_error", walmart_ids[1]: "not_found"}
        assert len(offers) == 2 and offers.status.tolist() == [200, 200]
        assert str(offers.fetched_at.dt.tz) == "UTC"
        with pytest.raises(CrawlError, match="outside|HTTP 400") as exc:
            set_demo_date(fronts.urls["amazon"], demo_world.start - timedelta(days=1), f)
        assert exc.value.kind == "clock"
        with pytest.raises(CrawlError, match="no storefront URL"):
            scrape_demo(fronts.urls, [day], f, retailers=["ebay"])


def test_scrape_demo_unreachable_shop_and_category_walk(demo_world, storefronts, shop_clock, closed_port):
    urls = dict(storefronts.urls, walmart=f"http://127.0.0.1:{closed_port}")
    days = [demo_world.start, demo_world.start + timedelta(days=1)]
    with Fetcher(retries=1, backoff=0.01) as f:
        offers, errors = scrape_demo(urls, days, f, retailers=["walmart", "target"], product_limit=3)
        assert set(offers.retailer) == {"target"} and len(offers) == 6
        assert sorted(offers.ds.dt.date.unique()) == days
        assert errors.kind.tolist() == ["unreachable", "unreachable"]
        assert errors.message.str.contains(f"cannot connect to http://127.0.0.1:{closed_port}/").all()
        assert sorted(errors.ds.dt.date) == days and errors.ds.dtype == "datetime64[ns]"
        # set_demo_date against a dead shop is a clear error
        with pytest.raises(CrawlError, match="cannot set the demo clock"):
            set_demo_date(urls["walmart"], days[0])
        # category walking finds exactly the sitemap's product URLs
        for retailer in ("amazon", "target"):
            base = storefronts.urls[retailer] + "/"
            adapter = get_adapter(retailer)
            walked = _category_urls(base, f, adapter, max_pages=100)
            assert sorted(walked) == sorted(discover_products(base, f, adapter))


def test_extract_printed_sku_labels_url_ids_and_buy_button():
    # a labelled reference after the title beats a structured internal sku; links are ignored
    page = _html('<a href="/x">Acc. cod. 11111</a><h1>Throw</h1><p>Product code: 64981901</p>',
                 '<script type="application/ld+json">{"@type":"Product","name":"Throw","sku":"237972452",'
                 '"offers":{"price":"150","priceCurrency":"GBP","availability":"OutOfStock"}}</script>')
    o = extract(page, "https://shop.example/throw/p3969033")
    assert (o.sku, o.methods["sku"]) == ("64981901", "heuristic:sku-label")
    assert o.availability == OUT_OF_STOCK
    # label and value in sibling elements, multilingual label
    o = extract(_html("<h1>Maska</h1><ul><li><strong>Šifra:</strong> 0638</li></ul>"), "https://si.example/m")
    assert o.sku == "0638"
    # printed text of an itemprop=sku wins over its content attribute
    o = extract(_html('<h1>Cam</h1><span itemprop="sku" content="4667999">466/7999</span>'), "https://a.example/c")
    assert o.sku == "466/7999"
    # fallbacks: a "sku" in inline script state, then the query string, then the URL path
    o = extract(_html("<h1>M</h1><script>var s = {\"sku\":\"1236291\"};</script>"), "https://m.example/p/oven")
    assert (o.sku, o.methods["sku"]) == ("1236291", "json:sku")
    o = extract(_html("<h1>Deal</h1>"), "https://g.example/store/36064?pid=262388")
    assert (o.sku, o.methods["sku"]) == ("262388", "url:query")
    o = extract(_html("<h1>Dress</h1>"), "https://e.example/umstandskleid-p400138908.html")
    assert (o.sku, o.methods["sku"]) == ("400138908", "url")
    # structured data says one variant is sold out, but the page sells the product
    ld = ('<script type="application/ld+json">{"@type":"Product","name":"Boot","offers":{"price":"136.00",'
          '"priceCurrency":"GBP","availability":"https://schema.org/OutOfStock"}}</script>')
    buy = '<h1>Boot</h1><form><button id="add-to-basket-button" type="submit">Add to basket</button></form>'
    assert extract(_html(buy, ld), "https://s.example/boot").availability == IN_STOCK
    rec = ('<h1>Boot</h1><div class="recommendations"><button class="add-to-basket">Add</button></div>')
    assert extract(_html(rec, ld), "https://s.example/boot").availability == OUT_OF_STOCK
    # several offers: available when any offer is
    multi = ('<script type="application/ld+json">{"@type":"Product","name":"Dress","offers":['
             '{"price":"89.50","priceCurrency":"EUR","availability":"OutOfStock"},'
             '{"price":"89.50","priceCurrency":"EUR","availability":"InStock"}]}</script>')
    o = extract(_html("<h1>Dress</h1>", multi), "https://z.example/d")
    assert o.availability == IN_STOCK and o.methods["availability"] == "jsonld:offers"


def test_extract_generic_price_heuristics():
    # local currency written after the amount, struck old price skipped, nav prices before the title ignored
    page = _html('<nav><span>Sale from 4 тг.</span></nav><h1>Fridge</h1><s>144 990 тг.</s>'
                 '<span class="ok_pr">131 990 тг.</span>')
    o = extract(page, "https://kz.example/fridge")
    assert (o.price, o.currency_raw) == ("131990.00", "тг.")
    # a price in the description, confirmed by the same amount printed in the body
    page = _html('<h1>Goose floss</h1><span style="font-size:27px">294</span><span>元</span>',
                 '<meta property="og:description" content="直購價：$294。嚴選">')
    o = extract(page, "https://tw.example/M1.htm")
    assert (o.price, o.methods["price"]) == ("294.00", "heuristic:description+body")
    # og:price meta
    o = extract(_html("<h1>Set</h1>", '<meta property="og:price" content="2,900원~">'), "http://kr.example/d/1")
    assert o.price == "2900.00"
    # Italian availability words on Amazon
    page = _amazon_page(price=None, in_stock=False).replace(b"Currently unavailable.", b"Non disponibile.")
    assert extract(page, "http://h/Acme/dp/B0ABCDEFGH", "amazon").availability == OUT_OF_STOCK
