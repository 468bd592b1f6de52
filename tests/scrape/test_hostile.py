"""Hostile pages, hostile clients (issue #17), the fetcher's half: real loopback servers, no mocks.

A hostile shop on 127.0.0.1 (gzip bombs, a 50 MB page, trickles, a redirect chain and sitemaps aiming at an
"internal" server on 127.0.0.2) is scraped through `scrape_shops`: every hostile URL ends in a recorded error of
the right kind, the ordinary pages are extracted (odd titles as plain text), and the internal server is never
reached. Then the parts one by one: the outbound policy, bounded decompression, the limits' settings, the
peer-address check, and the renderer's sandbox flags and request routing.
"""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from _receivers import serve_handler
from priceintel.demo.hostile import HostileShop, gzip_stream
from priceintel.scrape import Fetcher, RawArchive, scrape_site, transport
from priceintel.scrape.archive import ArchiveError
from priceintel.scrape.crawl import _sitemap_locs, scrape_shops
from priceintel.scrape.fetch import ERROR_KINDS
from priceintel.scrape.limits import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_PAGE_BYTES,
    BodyTooLarge,
    LimitError,
    gunzip_bounded,
    max_page_bytes,
    parse_size,
    response_deadline,
)
from priceintel.scrape.outbound import OutboundPolicy, address_problem
from priceintel.scrape.render import RenderError, chromium_flags
from priceintel.scrape.shops import Shop, ShopsError, load_shops, shop_for, shop_policy

CAP = 2_000_000  # small cap and deadline: the test stays fast
DEADLINE = 3.0


def _binds(host: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((host, 0))
    except OSError:
        return False
    return True


needs_second_loopback = pytest.mark.skipif(not _binds("127.0.0.2"), reason="127.0.0.2 cannot be bound here")


@pytest.fixture()
def hostile():
    if not _binds("127.0.0.2"):
        pytest.skip("127.0.0.2 cannot be bound here (Linux routes all of 127/8 to lo)")
    with HostileShop(trickle_interval=0.5) as shop:
        yield shop


def _fetcher(**kw) -> Fetcher:
    return Fetcher(max_page_bytes=CAP, deadline=DEADLINE, retries=0, rate_limit_per_host=0, backoff=0.01, **kw)


# --- the whole scrape ------------------------------------------------------------------------------------
def test_hostile_shop_scrape_records_every_hostile_url(hostile, tmp_path):
    archive = RawArchive(tmp_path / "raw")
    with _fetcher(archive=archive, max_workers=8) as f:
        offers, errors = scrape_shops({"generic": hostile.base_url}, f)
    kinds = dict(zip(errors["url"], errors["kind"]))
    assert kinds == hostile.expected_errors(), errors[["url", "kind", "message"]].to_string()
    assert set(errors["kind"]) <= set(ERROR_KINDS)
    for row in errors.itertuples():  # each message names the problem and the URL
        assert row.url in row.message, row.message
    moved = errors.set_index("url").loc[hostile.url("/p/moved"), "message"]
    assert "redirect from" in moved and hostile.internal_url + "/p/secret" in moved and "loopback" in moved
    bomb = errors.set_index("url").loc[hostile.url("/p/gzip-bomb"), "message"]
    assert "larger than the 2 MB limit" in bomb and "PRICEINTEL_MAX_PAGE_BYTES" in bomb
    trickle = errors.set_index("url").loc[hostile.url("/p/trickle"), "message"]
    assert "3s deadline" in trickle
    # the rest of the run is intact: every ordinary page extracted, the odd titles merely text
    got = {r.url: (r.title, r.price) for r in offers.itertuples()}
    assert got == hostile.normal_pages()
    assert got[hostile.url("/p/formula")][0] == '=HYPERLINK("http://evil.example","click")'
    assert got[hostile.url("/p/script")][0] == "<script>alert(1)</script> <!channel> Kettle"
    # nothing from the internal server was fetched, and no oversized body was archived
    assert hostile.internal_hits == []
    assert all(rec["size"] <= CAP for rec in archive.iter_index())
    assert not any(rec["url"].endswith(("/p/gzip-bomb", "/p/huge", "/p/trickle")) for rec in archive.iter_index())


def test_direct_fetches_of_the_hostile_pages(hostile):
    with _fetcher() as f:
        bomb = f.get(hostile.url("/p/gzip-bomb"))
        assert bomb.error_kind == "too_large" and bomb.body == b"" and bomb.status == 200 and not bomb.ok
        slow = f.get(hostile.url("/p/slow-headers"))
        assert slow.error_kind == "too_slow" and slow.body == b"" and hostile.url("/p/slow-headers") in slow.error
        ok = f.get(hostile.url("/p/kettle-1"))
        assert ok.ok and b"Steel kettle" in ok.body
    assert hostile.internal_hits == []


# --- the outbound policy ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_address_problems(address, why):
    import ipaddress

    assert why in address_problem(ipaddress.ip_address(address))


def test_policy_checks_without_sending_anything():
    open_policy = OutboundPolicy.default()
    assert open_policy.check("http://93.184.216.34/p/1").allowed  # a public address: fine (checked, not fetched)
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.5:8080/x",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ):
        verdict = open_policy.check(url)
        assert not verdict.allowed and url in verdict.reason, (url, verdict)
    assert "cloud metadata" in open_policy.check("http://169.254.169.254/").reason
    assert "resolves to 127.0.0.1" in open_policy.check("http://2130706433/").reason  # decimal IP: resolved, refused
    # default policy: the loopback origin the caller names is trusted for that request only
    assert open_policy.check("http://127.0.0.1:9/a", requested="http://127.0.0.1:9/").trusted
    assert not open_policy.check("http://127.0.0.1:10/a", requested="http://127.0.0.1:9/").allowed
    assert not open_policy.check("http://10.0.0.5/", requested="http://10.0.0.5/").allowed  # private: never so

    shop = OutboundPolicy.for_sites(
        ["https://www.acme.example/", "http://127.0.0.1:8701/"], ["cdn.acme-static.example"]
    )
    assert shop.check("http://127.0.0.1:8701/p/1").trusted  # the configured origin: any address
    for url in (
        "http://127.0.0.1:8702/",
        "http://127.0.0.2:8701/",
        "https://127.0.0.1:8701/",
        "http://localhost:8701/",
    ):
        assert not shop.check(url).allowed, url  # only that exact scheme + host + port
    assert "not one of the shop's hosts" in shop.check("https://evil.example/").reason
    for name in ("https://acme.example/x", "https://m.acme.example/x", "https://cdn.acme-static.example/s.xml"):
        assert shop.check(name).allowed, name  # in scope (.example names never resolve: nothing to refuse)
    assert not shop.check("https://x.cdn.acme-static.example/").allowed  # exact name: no subdomains
    assert OutboundPolicy.for_sites([], ["*.cdn.example"]).check("https://a.cdn.example/").allowed
    assert not OutboundPolicy.for_sites([], ["*.cdn.example"]).check("https://cdn.example/").allowed
    assert not shop.check("ftp://acme.example/").allowed
    # urllib.parse reads 127.0.0.1:8701 here, urllib3 (which sends it) 127.0.0.2: refused, whichever is right
    assert "ambiguous URL" in shop.check("http://127.0.0.2\\@127.0.0.1:8701/p/1").reason


def test_shops_yaml_hosts_validated_and_policy(tmp_path):
    path = tmp_path / "shops.yaml"
    path.write_text(
        "shops:\n  acme:\n    base_url: https://www.acme.example/\n"
        "    hosts: [cdn.acme-static.example, '*.acme.co.uk', 'http://10.0.0.5:8080']\n"
    )
    shop = load_shops(path)["acme"]
    assert shop.hosts == ["cdn.acme-static.example", "*.acme.co.uk", "http://10.0.0.5:8080"]
    policy = shop_policy(shop)
    assert policy.check("http://10.0.0.5:8080/sitemap.xml").trusted  # a declared origin may be private
    assert not policy.check("http://10.0.0.5:8081/").allowed
    for bad in ("'http://x.example/path'", "'not a host'", "'*.'", "'ftp://x'"):
        path.write_text(f"shops:\n  acme:\n    base_url: https://www.acme.example/\n    hosts: [{bad}]\n")
        with pytest.raises(ShopsError, match=r"shop 'acme', field hosts\.?0?: .*(origin|host name)"):
            load_shops(path)
    # a URL of a shop not in shops.yaml trusts no origin: public hosts, or the loopback URL named itself
    fallback, warning = shop_for({}, "http://127.0.0.1:9999/p/1")
    assert warning and not shop_policy(fallback).check("http://127.0.0.1:9999/p/1").trusted
    assert shop_policy(fallback).check("http://127.0.0.1:9999/p/1", requested="http://127.0.0.1:9999/p/1").trusted
    configured = Shop(name="local", base_url="http://127.0.0.1:9999/")
    assert shop_policy(configured).check("http://127.0.0.1:9999/p/1").trusted


def test_fetcher_allow_and_redirect_hops(hostile):
    # a fetcher made for the shop: the internal address is refused before anything is sent (no robots.txt either)
    with _fetcher(allow=[hostile.base_url]) as f:
        res = f.get(hostile.internal_url + "/p/secret")
        assert res.error_kind == "blocked_address" and res.status is None and "127.0.0.2" in res.error
        assert f.robots(hostile.internal_url + "/") is None
        moved = f.get(hostile.url("/p/moved"))
        assert moved.error_kind == "blocked_address" and f"redirect from {hostile.url('/r/3')} refused" in moved.error
    # the default policy: a loopback URL named directly is fine, a redirect to another loopback address is not
    with _fetcher() as f:
        assert f.get(hostile.url("/p/kettle-2")).ok
        assert f.get(hostile.url("/p/moved")).error_kind == "blocked_address"
        assert f.get(hostile.internal_url + "/p/secret").ok  # the caller named it: a direct call is trusted
    assert hostile.internal_hits == ["/robots.txt", "/p/secret"]  # only that last, explicit request


def test_scrape_site_scope_and_declared_hosts(hostile):
    """scrape_site with the internal origin declared as one of the shop's hosts may reach it (and only then)."""
    with _fetcher() as f:
        _offers, errors = scrape_site(hostile.base_url, "generic", f, hosts=[hostile.internal_url])
    assert list(errors.loc[errors.kind == "blocked_address", "url"]) == [hostile.ambiguous_url]  # ambiguous: never
    assert {"/sitemap-internal.xml", "/sitemap-2.xml", "/p/secret", "/p/secret-2"} <= set(hostile.internal_hits)


class _Tiny(BaseHTTPRequestHandler):
    """Scripted answers: path -> (status, headers, body)."""

    protocol_version = "HTTP/1.1"
    routes: dict = {}
    hits: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.hits.append(self.path)
        status, headers, body = self.routes.get(self.path, (404, {}, b"no"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def tiny():
    _Tiny.routes, _Tiny.hits = {}, []
    with serve_handler(_Tiny) as base:
        yield base


def test_encodings_declared_sizes_and_redirect_loops(tiny):
    page = b"<html><body>" + b"kettle " * 1000 + b"</body></html>"
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    _Tiny.routes.update(
        {
            "/robots.txt": (200, {}, b"User-agent: *\nAllow: /\n"),
            "/gz": (200, {"Content-Encoding": "gzip"}, gzip.compress(page) + gzip.compress(b"<!-- 2nd member -->")),
            "/deflate": (200, {"Content-Encoding": "deflate"}, zlib.compress(page)),
            "/raw-deflate": (200, {"Content-Encoding": "deflate"}, raw.compress(page) + raw.flush()),
            "/declared": (200, {"Content-Length": str(50_000_000)}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/bad-gzip": (200, {"Content-Encoding": "gzip"}, b"\x1f\x8b not really gzip"),
        }
    )
    with _fetcher() as f:
        assert f.get(tiny + "/gz").body == page + b"<!-- 2nd member -->"
        assert f.get(tiny + "/deflate").body == page and f.get(tiny + "/raw-deflate").body == page
        declared = f.get(tiny + "/declared")
        assert declared.error_kind == "too_large" and "declares 50 MB (Content-Length)" in declared.error
        loop = f.get(tiny + "/loop")
        assert loop.error_kind == "invalid_url" and "more than 10 redirects" in loop.error
        assert f.get(tiny + "/bad-gzip").error_kind == "invalid_url"
    assert _Tiny.hits.count("/loop") == 11


def test_robots_redirect_to_an_internal_address_is_not_followed(tiny, hostile):
    _Tiny.routes.update(
        {
            "/robots.txt": (302, {"Location": hostile.internal_url + "/robots.txt"}, b""),
            "/p/1": (200, {}, b"<html>ok</html>"),
        }
    )
    with _fetcher() as f:
        assert f.get(tiny + "/p/1").ok  # robots.txt unavailable (RFC 9309): no restrictions
    assert hostile.internal_hits == []


def test_peer_address_checked_after_connect(tiny):
    """A connection that must reach a public address (the name passed the policy check) and reaches loopback is
    closed before a byte is sent: the defence against DNS rebinding."""
    sess = requests.Session()
    sess.mount("http://", transport.GuardedAdapter(max_retries=0))
    with transport.exchange(time.monotonic() + 5) as ex:
        ex.require_public_peer = True
        with pytest.raises(requests.ConnectionError):
            sess.get(tiny + "/p/1", timeout=5)
    assert ex.blocked is not None and "127.0.0.1" in ex.blocked and "loopback" in ex.blocked
    assert _Tiny.hits == []


# --- bounded decompression and the settings ----------------------------------------------------------------
def test_gzip_stream_and_bounded_gunzip(tmp_path):
    small = b"".join(gzip_stream(b"<urlset>", ord(" "), 3 * (1 << 20) + 5))
    assert gzip.decompress(small) == b"<urlset>" + b" " * (3 * (1 << 20) + 5 - 8)  # a valid gzip file
    assert len(small) < 10_000
    assert gunzip_bounded(small, 4 << 20, "x") == gzip.decompress(small)
    with pytest.raises(BodyTooLarge, match="sitemap s.xml.gz unpacks to more than 1 MB"):
        gunzip_bounded(small, 1_000_000, "sitemap s.xml.gz")
    with pytest.raises(ValueError, match="not valid gzip"):
        gunzip_bounded(small[:100], 1 << 30, "x")
    with pytest.raises(BodyTooLarge):
        _sitemap_locs(small, "http://s/s.xml.gz", limit=1_000_000)
    assert _sitemap_locs(gzip.compress(b"<urlset><url><loc>/a</loc></url></urlset>"), "http://s/x") == (
        ["http://s/a"],
        [],
    )
    # an archive object that unpacks beyond the archive's read limit is an error, not a memory spike
    arc = RawArchive(tmp_path)
    sha = arc.put("http://s/p", 200, {}, b"page")
    path = arc.object_path(sha)
    path.chmod(0o644)
    path.write_bytes(small)
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        arc.get(sha, limit=1_000_000)


def test_limit_settings(monkeypatch):
    monkeypatch.delenv("PRICEINTEL_MAX_PAGE_BYTES", raising=False)
    monkeypatch.delenv("PRICEINTEL_FETCH_DEADLINE", raising=False)
    assert max_page_bytes() == DEFAULT_MAX_PAGE_BYTES == 8_000_000 and response_deadline() == DEFAULT_DEADLINE == 30
    assert parse_size("2MB") == 2_000_000 and parse_size("512KiB") == 524_288 and parse_size("8_000") == 8000
    monkeypatch.setenv("PRICEINTEL_MAX_PAGE_BYTES", "3mb")
    monkeypatch.setenv("PRICEINTEL_FETCH_DEADLINE", "12.5")
    f = Fetcher()
    assert (f.max_page_bytes, f.deadline) == (3_000_000, 12.5)
    assert (Fetcher(max_page_bytes=1000, deadline=2).max_page_bytes, Fetcher(deadline=2).deadline) == (1000, 2.0)
    monkeypatch.setenv("PRICEINTEL_MAX_PAGE_BYTES", "lots")
    with pytest.raises(LimitError, match="PRICEINTEL_MAX_PAGE_BYTES='lots' is not a size in bytes"):
        Fetcher()
    monkeypatch.setenv("PRICEINTEL_MAX_PAGE_BYTES", "1MB")
    monkeypatch.setenv("PRICEINTEL_FETCH_DEADLINE", "-1")
    with pytest.raises(LimitError, match="PRICEINTEL_FETCH_DEADLINE='-1' must be a positive number"):
        Fetcher()


# --- the renderer ------------------------------------------------------------------------------------------
def test_chromium_sandbox_only_dropped_for_root():
    assert "--no-sandbox" not in chromium_flags(euid=1000)
    assert "--no-sandbox" in chromium_flags(euid=0)


def test_rendering_requests_are_held_to_the_policy(hostile, tmp_path):
    """The browser renders the price the page's script writes, while its script, stylesheet, image, frame and
    fetch() calls aimed at the internal host (one through a redirect chain) are aborted."""
    try:
        with _fetcher(render=True, archive=RawArchive(tmp_path)) as f, f.scoped([hostile.base_url]):
            res = f.get(hostile.url("/p/js-probe"))
            moved = f.get(hostile.url("/p/moved"))
    except RenderError as exc:  # pragma: no cover - no Chromium on this machine
        pytest.skip(str(exc))
    assert res.rendered and res.ok, res.error
    assert b'itemprop="price" content="31.50"' in res.body
    assert moved.error_kind == "blocked_address"
    assert hostile.internal_hits == []
    assert hostile.hits.count("/r/3") == 2  # the fetcher's chain, and the page's fetch("/p/moved"): both stopped
