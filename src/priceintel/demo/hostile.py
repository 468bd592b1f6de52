"""A hostile shop on loopback, for the fetcher's hardening tests and benchmark: real HTTP servers, no mocks.

`HostileShop()` serves, on 127.0.0.1 (the configured shop), next to an "internal" server on a second loopback
address (127.0.0.2, standing in for a metadata or intranet service) that counts every request it gets:

==========================  ==============================================================================
path                        what it does
==========================  ==============================================================================
/robots.txt                 `Sitemap:` lines for the shop's sitemap index *and* a sitemap on the internal host
/sitemap-index.xml          the shop's sitemap, a gzipped sitemap bomb and another internal sitemap
/sitemap.xml                every product page below, a product URL on the internal host, and one written so
                            that urllib.parse reads the shop's host and urllib3 the internal one (`a\\@b`)
/sitemap-bomb.xml.gz        ~1 MB of gzip (application/gzip) unpacking to 1 GiB of XML whitespace
/p/kettle-1 … /p/kettle-3   ordinary product pages (JSON-LD name, sku, price in EUR)
/p/formula                  a product titled `=HYPERLINK("http://evil.example","click")` with a price
/p/script                   a product titled `<script>alert(1)</script> <!channel> Kettle` with a price
/p/gzip-bomb                `Content-Encoding: gzip`, ~1 MB on the wire decoding to 1 GiB (generated lazily)
/p/huge                     a 50 MB page, streamed in chunks (no Content-Length)
/p/trickle                  headers at once, then one body byte per `trickle_interval` seconds, forever
/p/slow-headers             the status line, then one header byte per `trickle_interval` seconds, forever
/p/moved                    302 -> /r/1 -> /r/2 -> /r/3 -> a product URL on the internal host
/p/js-probe                 (not in the sitemap) a page whose script writes the price, and whose script,
                            stylesheet, image, frame and fetch() calls all aim at the internal host
==========================  ==============================================================================

`expected_errors()` maps each hostile URL to the fetch error a hardened scraper records for it (`too_large`,
`too_slow`, `blocked_address`); `normal_pages()` lists the pages that must still be extracted. Nothing is
computed per request beyond a few bytes: the compressed bodies repeat one precomputed deflate block.
"""

from __future__ import annotations

import html
import json
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from priceintel.demo.loopback import LoopbackServer, QuietHandler

__all__ = ["HostileShop", "gzip_stream"]

#: decoded size of the gzip bombs
BOMB_BYTES = 1 << 30
#: size of the huge page
HUGE_BYTES = 50 * 1000 * 1000
_BLOCK = 1 << 20
_PRODUCTS = {
    "kettle-1": ("Steel kettle 1.7 l", "19.99"),
    "kettle-2": ("Glass kettle 1.5 l", "24.50"),
    "kettle-3": ("Travel kettle 0.5 l", "12.00"),
    "formula": ('=HYPERLINK("http://evil.example","click")', "9.99"),
    "script": ("<script>alert(1)</script> <!channel> Kettle", "14.99"),
}
_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def gzip_stream(prefix: bytes, fill: int, size: int) -> Iterator[bytes]:
    """A valid gzip stream of `prefix` followed by `fill` bytes up to `size` bytes in all, as chunks.

    One 1 MiB block of `fill` is compressed once; after a full flush its deflate bytes are the same every time,
    so the stream repeats them (~1 KB per MiB) instead of compressing a gigabyte. The CRC trailer is computed
    only when a reader gets that far.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    block = bytes([fill]) * _BLOCK
    packed = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    blocks, rest = divmod(max(0, size - len(prefix)), _BLOCK)
    for _ in range(blocks):
        yield packed
    tail = bytes([fill]) * rest
    yield comp.compress(tail) + comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    yield struct.pack("<II", zlib.crc32(tail, crc), (len(prefix) + blocks * _BLOCK + rest) & 0xFFFFFFFF)


def _product_page(item: str, title: str, price: str) -> bytes:
    """A product page with JSON-LD (name, sku, price in EUR) and the title as visible text."""
    data = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": title,
        "sku": item,
        "offers": {
            "@type": "Offer",
            "price": price,
            "priceCurrency": "EUR",
            "availability": "https://schema.org/InStock",
        },
    }
    ld = json.dumps(data).replace("</", "<\\/")
    text = html.escape(title)
    return (
        f'<!doctype html><html lang="de"><head><meta charset="utf-8"><title>{text}</title>'
        f'<script type="application/ld+json">{ld}</script></head>'
        f'<body><h1>{text}</h1><p>Art.-Nr. {item}</p><p class="price">{price} €</p></body></html>'
    ).encode()


def _js_probe(internal: str) -> bytes:
    """A product page whose price is written by a script, and which tries to reach the internal host every way a
    page can: script, stylesheet, image, frame, fetch() and a fetch of a redirect that ends there."""
    script = (
        'document.getElementById("price").innerHTML = \'<span itemprop="price" content="31.50">31,50 €</span>'
        '<meta itemprop="priceCurrency" content="EUR">\';'
        f'fetch("{internal}/api").catch(() => 0); fetch("/p/moved").catch(() => 0);'
    )
    return (
        "<!doctype html><html><head><title>Kettle 7</title>"
        f'<script src="{internal}/x.js"></script><link rel="stylesheet" href="{internal}/x.css"></head>'
        f'<body><h1 itemprop="name">Kettle 7</h1><div id="price"></div><img src="{internal}/i.png">'
        f'<iframe src="{internal}/frame"></iframe><script>{script}</script></body></html>'
    ).encode()


def _urlset(urls: list[str]) -> bytes:
    """A sitemap listing `urls`."""
    locs = "".join(f"<url><loc>{html.escape(u)}</loc></url>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="{_SITEMAP_NS}">{locs}</urlset>'.encode()


def _index(urls: list[str]) -> bytes:
    """A sitemap index listing `urls`."""
    locs = "".join(f"<sitemap><loc>{html.escape(u)}</loc></sitemap>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="{_SITEMAP_NS}">{locs}</sitemapindex>'.encode()


class _Server(LoopbackServer):
    """A loopback server that knows its HostileShop and counts the paths it is asked for."""

    def __init__(self, addr: tuple[str, int], handler: type[QuietHandler], shop: HostileShop) -> None:
        super().__init__(addr, handler)
        self.shop = shop
        self.hits: list[str] = []
        self.hits_lock = threading.Lock()


class _Handler(QuietHandler):
    """Base: counts the request, then routes it."""

    server: _Server
    timeout = 30

    def do_GET(self) -> None:
        """Count, then serve."""
        with self.server.hits_lock:
            self.server.hits.append(self.path)
        try:
            self._route(self.path.split("?", 1)[0])
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client gave up: exactly what a hardened client does

    def _route(self, path: str) -> None:
        raise NotImplementedError

    def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", **headers: str) -> None:
        """A complete response with Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, chunks: Iterator[bytes], ctype: str = "text/html; charset=utf-8", **headers: str) -> None:
        """A 200 response sent with chunked transfer encoding, stopping when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        for chunk in chunks:
            if self.server.shop.stopping.is_set():
                break
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")


class _ShopHandler(_Handler):
    """The hostile shop's routes (see the module docstring)."""

    def _route(self, path: str) -> None:
        shop = self.server.shop
        simple = shop.documents()
        if path in simple:
            body, ctype = simple[path]
            return self._send(200, body, ctype)
        if path.startswith("/p/") and path[3:] in _PRODUCTS:
            return self._send(200, _product_page(path[3:], *_PRODUCTS[path[3:]]))
        if path == "/p/js-probe":
            return self._send(200, _js_probe(shop.internal_url))
        if path == "/p/moved" or path.startswith("/r/"):
            step = 0 if path == "/p/moved" else int(path[3:] or 0)
            target = f"/r/{step + 1}" if step < 3 else shop.internal_url + "/p/secret"
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        return self._hostile(path)

    def _hostile(self, path: str) -> None:
        """The bombs, the huge page and the trickles."""
        if path == "/sitemap-bomb.xml.gz":
            prefix = f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="{_SITEMAP_NS}">'.encode()
            return self._chunked(gzip_stream(prefix, ord(" "), BOMB_BYTES), "application/gzip")
        if path == "/p/gzip-bomb":
            prefix = b"<!doctype html><html><head><title>Bomb</title></head><body>"
            return self._chunked(gzip_stream(prefix, 0, BOMB_BYTES), Content_Encoding="gzip")
        if path == "/p/huge":
            filler = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>\n"
            pieces = (filler for _ in range(HUGE_BYTES // len(filler)))
            return self._chunked(pieces)
        if path == "/p/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"<!doctype html><html><body>")
            return self._drip(b"x")
        if path == "/p/slow-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            return self._drip(b"a")
        self.close_connection = True
        return self._send(404, b"<html><body>no such page</body></html>")

    def _drip(self, byte: bytes) -> None:
        """One byte per trickle_interval until the client hangs up or the shop stops."""
        self.close_connection = True
        while not self.server.shop.stopping.wait(self.server.shop.trickle_interval):
            self.wfile.write(byte)
            self.wfile.flush()


class _InternalHandler(_Handler):
    """The internal service: answers everything, and counts it (a hardened scraper never gets here)."""

    def _route(self, path: str) -> None:
        body = _urlset([self.server.shop.internal_url + "/p/secret-2"]) if path.endswith(".xml") else b"SECRET"
        self._send(200, body, "text/plain")


class HostileShop:
    """The hostile shop on `host` and its internal neighbour on `internal_host` (see the module docstring).

    Use as a context manager (or `start()` / `stop()`); `base_url`, `internal_url`, `internal_hits`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        internal_host: str = "127.0.0.2",
        port: int = 0,
        internal_port: int = 0,
        trickle_interval: float = 1.0,
    ) -> None:
        self.trickle_interval = float(trickle_interval)
        self.stopping = threading.Event()
        self._shop = _Server((host, port), _ShopHandler, self)
        self._internal = _Server((internal_host, internal_port), _InternalHandler, self)
        self.base_url = f"http://{host}:{self._shop.server_address[1]}"
        self.internal_url = f"http://{internal_host}:{self._internal.server_address[1]}"
        self._threads: list[threading.Thread] = []

    def start(self) -> HostileShop:
        """Serve both in daemon threads."""
        for srv in (self._shop, self._internal):
            th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self) -> None:
        """Stop both servers (ending every trickle) and release their ports."""
        self.stopping.set()
        for srv in (self._shop, self._internal):
            srv.close()

    def __enter__(self) -> HostileShop:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def internal_hits(self) -> list[str]:
        """Paths the internal server was asked for (must stay empty)."""
        with self._internal.hits_lock:
            return list(self._internal.hits)

    @property
    def hits(self) -> list[str]:
        """Paths the shop was asked for."""
        with self._shop.hits_lock:
            return list(self._shop.hits)

    def url(self, path: str) -> str:
        """Absolute URL of a path on the shop."""
        return self.base_url + path

    def documents(self) -> dict[str, tuple[bytes, str]]:
        """robots.txt, the sitemaps and the home page: path -> (body, content type)."""
        pages = [self.url(f"/p/{p}") for p in _PRODUCTS]
        pages += [self.url(p) for p in ("/p/gzip-bomb", "/p/huge", "/p/trickle", "/p/slow-headers", "/p/moved")]
        links = "".join(f'<a href="{html.escape(u)}">{html.escape(u)}</a>' for u in pages)
        robots = (
            "User-agent: *\nAllow: /\n"
            f"Sitemap: {self.url('/sitemap-index.xml')}\nSitemap: {self.internal_url}/sitemap-internal.xml\n"
        )
        index = [self.url("/sitemap.xml"), self.url("/sitemap-bomb.xml.gz"), self.internal_url + "/sitemap-2.xml"]
        return {
            "/robots.txt": (robots.encode(), "text/plain; charset=utf-8"),
            "/sitemap-index.xml": (_index(index), "application/xml"),
            "/sitemap.xml": (_urlset([*pages, self.internal_url + "/p/secret", self.ambiguous_url]), "application/xml"),
            "/": (f"<!doctype html><html><body><h1>Hostile</h1>{links}</body></html>".encode(), "text/html"),
        }

    @property
    def ambiguous_url(self) -> str:
        """A URL urllib.parse reads as the shop's product page and urllib3 sends to the internal host."""
        return f"{self.internal_url}\\@{self.base_url.split('//', 1)[1]}/p/kettle-1"

    def normal_pages(self) -> dict[str, tuple[str, str]]:
        """URL -> (title, price) of the pages a scrape must still extract (the two odd titles included)."""
        return {self.url(f"/p/{item}"): info for item, info in _PRODUCTS.items()}

    def expected_errors(self) -> dict[str, str]:
        """URL -> the fetch error a hardened scrape records for it."""
        return {
            self.url("/p/gzip-bomb"): "too_large",
            self.url("/p/huge"): "too_large",
            self.url("/sitemap-bomb.xml.gz"): "too_large",
            self.url("/p/trickle"): "too_slow",
            self.url("/p/slow-headers"): "too_slow",
            self.url("/p/moved"): "blocked_address",
            self.internal_url + "/p/secret": "blocked_address",
            self.ambiguous_url: "blocked_address",
            self.internal_url + "/sitemap-internal.xml": "blocked_address",
            self.internal_url + "/sitemap-2.xml": "blocked_address",
        }
