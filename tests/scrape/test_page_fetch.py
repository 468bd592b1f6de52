"""fetch_page on real loopback servers: every saved page of the replay web extracts exactly as `eval pages` does
offline; a hostile shop's 404s, redirects, captchas, price-less pages and errors get the right outcomes; the
`preview` command prints the record as JSON."""

from __future__ import annotations

import argparse
import json
import socket
from decimal import Decimal

import pytest

from _receivers import QuietHandler, serve_handler
from priceintel import PriceIntelError, config
from priceintel.demo.replay import serve_pages
from priceintel.scrape import Fetcher, RawArchive
from priceintel.scrape.adapters import adapter_for_url
from priceintel.scrape.commands import add_parsers
from priceintel.scrape.evaluate import PAGE_TRUTH_COLUMNS, _read_csv, extract_pages
from priceintel.scrape.page import OUTCOMES, PageError, fetch_page
from priceintel.scrape.shops import Shop, load_shops

PAGES = config.shared_data_dir() / "pages"
needs_pages = pytest.mark.skipif(not (PAGES / "truth.csv").is_file(), reason=f"no saved pages at {PAGES}")


# --- the replay web: same code path as the offline evaluation --------------------------------------------
@pytest.mark.slow
@needs_pages
def test_every_replayed_page_extracts_exactly_as_offline(tmp_path, capsys):
    rows = _read_csv(PAGES / "truth.csv", PAGE_TRUTH_COLUMNS, "truth.csv")
    offline = extract_pages(PAGES, rows)
    archive = RawArchive(tmp_path)
    records = {}
    with serve_pages(PAGES) as (base, index), Fetcher(archive=archive, retries=0, rate_limit_per_host=0) as f:
        for pid, page in index.items():
            shop = Shop(name=page.url.split("/")[2].removeprefix("www."), base_url=base + "/",
                        adapter=adapter_for_url(page.url).name)
            records[pid] = fetch_page(page.local_url, shop, fetcher=f)
    assert set(records) == {r["page_id"] for r in rows}
    disagree = {pid: (rec.price, offline[pid].price) for pid, rec in records.items() if rec.price != offline[pid].price}
    assert not disagree  # same extraction code on the same bytes: exactly the same price
    for rec in records.values():
        assert rec.http_status == 200 and rec.final_url == rec.url and rec.outcome in ("ok", "no_price")
        assert archive.has(rec.page_sha256)  # the raw page went to the archive
        assert (rec.outcome == "ok") == (rec.price is not None)
        if rec.price is not None:
            assert rec.methods["price"]  # how the price was found
        assert json.loads(rec.to_json())["page_sha256"] == rec.page_sha256
    truth = {r["page_id"]: {Decimal(v) for v in r["price_all"].split("|") if v.strip()} for r in rows}
    equal = sum(1 for pid, rec in records.items() if rec.price is not None and Decimal(rec.price) in truth[pid])
    share = equal / len(records)
    with capsys.disabled():
        print(f"\nreplay web: {equal}/{len(records)} pages ({share:.1%}) extracted a price equal to the truth")
    assert share >= 0.85  # 65/70 when written


@needs_pages
def test_proxied_original_urls_give_the_offline_record(tmp_path):
    """Fetched under their real host names (the replay server as HTTP proxy), pages whose currency depends on the
    country domain (.com.tw, .com.ar) give the same price *and* currency as offline."""
    rows = [r for r in _read_csv(PAGES / "truth.csv", PAGE_TRUTH_COLUMNS, "truth.csv")
            if any(h in r["url"] for h in ("pcstore.com.tw", "stockcenter.com.ar", "amazon.de", "ikea.com"))]
    offline = extract_pages(PAGES, rows)
    with serve_pages(PAGES) as (base, index), \
            Fetcher(archive=RawArchive(tmp_path), retries=0, proxies={"http": base}) as f:
        for row in rows:
            page = index[row["page_id"]]
            shop = Shop(name="replay", base_url=page.proxy_url, adapter=adapter_for_url(page.url).name)
            rec = fetch_page(page.proxy_url, shop, fetcher=f)
            want = offline[row["page_id"]]
            assert (rec.price, rec.currency, rec.item_id, rec.gtin) == (want.price, want.currency, want.item_id,
                                                                        want.gtin), row["url"]


# --- a hostile shop ----------------------------------------------------------------------------------------
def _product(item: str, price: str | None, title: str = "Steel kettle") -> str:
    offer = f', "offers": {{"@type": "Offer", "price": "{price}", "priceCurrency": "EUR"}}' if price else ""
    return (f'<!doctype html><html lang="de"><head><title>{title}</title>'
            f'<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "Product", '
            f'"name": "{title}", "sku": "{item}"{offer}}}</script></head>'
            f'<body><h1>{title}</h1><p>Art.-Nr. {item}</p></body></html>')


CAPTCHA = ("<html><head><title>Robot Check</title></head><body><p>Enter the characters you see below</p>"
           "<form><input name='captcha'></form></body></html>")
SOFT_404 = "<html><head><title>Oops</title></head><body><h1>Product not found</h1></body></html>"
JS_PRICE = ('<!doctype html><html><head><title>Kettle 7</title></head><body><h1>Kettle 7</h1>'
            '<div id="price"></div><script>document.getElementById("price").innerHTML = '
            '\'<span itemprop="price" content="31.50">31,50 €</span><meta itemprop="priceCurrency" content="EUR">\';'
            '</script></body></html>')
ROUTES = {
    "/hp/1001": (200, _product("1001", "19.99")),
    "/hp/1001/": (200, _product("1001", "19.99")),
    "/hp/3003": (200, _product("3003", "5.00", "Another kettle")),
    "/hp/5005": (200, CAPTCHA),
    "/hp/6006": (200, _product("6006", None)),
    "/hp/7007": (500, "<html><body>boom</body></html>"),
    "/hp/8008": (403, "<html><body>Forbidden</body></html>"),
    "/hp/404": (404, "<html><head><title>Not found</title></head><body>404</body></html>"),
    "/hp/410": (410, "<html><body>gone</body></html>"),
    "/hp/soft": (200, SOFT_404),
    "/hp/cut": (200, _product("1234", "9.99").removesuffix("</body></html>")),
    "/hp/7777": (200, JS_PRICE),
    "/": (200, "<html><head><title>Hostile shop</title></head><body><h1>Welcome</h1></body></html>"),
}
REDIRECTS = {"/hp/2002": "/hp/3003", "/hp/1001-old": "/hp/1001/", "/hp/9009": "/"}


class _Hostile(QuietHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/robots.txt":
            self.reply(200, b"User-agent: *\nDisallow: /private/\n", "text/plain")
        elif self.path in REDIRECTS:
            self.reply(301, headers={"Location": REDIRECTS[self.path]})
        else:
            status, body = ROUTES.get(self.path, (404, "<html><body>no</body></html>"))
            self.reply(status, body.encode("utf-8"), "text/html; charset=utf-8")


@pytest.fixture(scope="module")
def hostile():
    with serve_handler(_Hostile) as base:
        yield base


@pytest.fixture()
def hostile_shops(hostile, tmp_path):
    """shops.yaml naming the hostile shop, with a custom adapter file (item ids from /p/<id>)."""
    (tmp_path / "hostile_adapter.py").write_text(
        "from priceintel.scrape.adapters.base import Adapter\n"
        "ADAPTER = Adapter(name='hostile_test', url_pattern=r'/hp/(?P<item_id>\\d+)')\n"
    )
    path = tmp_path / "shops.yaml"
    path.write_text(f"shops:\n  hostile:\n    base_url: {hostile}/\n    adapter: hostile_adapter.py\n"
                    f"    requests_per_second: 200\n    currency: EUR\n    country: DE\n")
    return path


EXPECTED = [
    ("/hp/1001", "ok", "price 19.99 EUR"),
    ("/hp/1001-old", "ok", "price 19.99 EUR"),  # a redirect to the same product is fine
    ("/hp/2002", "redirected", "redirects to another product (3003 instead of 2002)"),
    ("/hp/9009", "not_found", "redirects to the shop's home page"),
    ("/hp/404", "not_found", "HTTP 404"),
    ("/hp/410", "not_found", "HTTP 410"),
    ("/hp/soft", "not_found", "product not found"),
    ("/hp/5005", "blocked", "robot check / captcha"),
    ("/hp/8008", "blocked", "HTTP 403"),
    ("/private/hp/1", "blocked", "robots.txt of"),
    ("/hp/6006", "no_price", "no price"),
    ("/hp/7007", "error", "HTTP 500"),
    ("/hp/cut", "error", "page truncated"),
]


@pytest.mark.parametrize(("path", "outcome", "message"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_hostile_shop_outcomes(hostile, hostile_shops, tmp_path, path, outcome, message):
    shop = load_shops(hostile_shops)["hostile"]
    url = hostile + path
    with Fetcher(archive=RawArchive(tmp_path / "raw"), retries=0) as f:
        rec = fetch_page(url, shop, fetcher=f)
    assert rec.outcome == outcome and rec.outcome in OUTCOMES
    assert message in rec.message, rec.message
    assert rec.url == url and rec.retailer == "hostile"
    if outcome != "ok":
        assert rec.price is None  # never a price on a failure
    if rec.http_status is not None:
        assert RawArchive(tmp_path / "raw").has(rec.page_sha256)


def test_hostile_shop_record_fields(hostile, hostile_shops, tmp_path):
    shop = load_shops(hostile_shops)["hostile"]
    rec = fetch_page(hostile + "/hp/1001-old", shop, archive_dir=tmp_path / "raw")  # makes its own polite Fetcher
    assert rec.ok and rec.http_status == 200 and rec.final_url == hostile + "/hp/1001/"
    assert (rec.item_id, rec.title, rec.price, rec.currency) == ("1001", "Steel kettle", "19.99", "EUR")
    assert rec.methods["price"] == "jsonld" and rec.methods["title"] == "jsonld"
    assert rec.page_kind == "product" and rec.fetched_at is not None and not rec.rendered
    assert RawArchive(tmp_path / "raw").get(rec.page_sha256).startswith(b"<!doctype html>")
    moved = fetch_page(hostile + "/hp/2002", shop, archive_dir=tmp_path / "raw")
    assert moved.final_url == hostile + "/hp/3003" and moved.price is None and moved.item_id is None


def test_unreachable_shop_is_an_error_outcome(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    shop = Shop(name="dead", base_url=f"http://127.0.0.1:{port}/")
    with Fetcher(retries=0) as f:
        rec = fetch_page(f"http://127.0.0.1:{port}/p/1", shop, fetcher=f)
    assert rec.outcome == "error" and "connection refused" in rec.message
    assert rec.http_status is None and rec.final_url is None and rec.page_sha256 is None


def test_render_needs_a_rendering_fetcher(hostile):
    shop = Shop(name="hostile", base_url=hostile + "/")
    with pytest.raises(PageError, match="needs a Fetcher created with render=True"):
        with Fetcher() as f:
            fetch_page(hostile + "/hp/1001", shop, fetcher=f, render=True)


@pytest.mark.slow
def test_render_js_price_in_headless_chromium(hostile, hostile_shops, tmp_path):
    shop = load_shops(hostile_shops)["hostile"]
    plain = fetch_page(hostile + "/hp/7777", shop, archive_dir=tmp_path)
    assert plain.outcome == "no_price"  # the price only exists after the script ran
    rendered = fetch_page(hostile + "/hp/7777", shop, render=True, archive_dir=tmp_path)
    assert rendered.rendered and rendered.outcome == "ok" and rendered.price == "31.50"


# --- the preview command -------------------------------------------------------------------------------
def _preview(argv):
    parser = argparse.ArgumentParser(prog="priceintel")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["preview", *argv])
    return args.func(args)


def test_preview_prints_the_record(hostile, hostile_shops, tmp_path, capsys):
    code = _preview([hostile + "/hp/1001", "--shops", str(hostile_shops), "--archive", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["outcome"] == "ok" and out["price"] == "19.99" and out["currency"] == "EUR"
    assert out["retailer"] == "hostile" and out["methods"]["price"] == "jsonld" and out["http_status"] == 200
    assert set(out) >= {"url", "final_url", "item_id", "title", "list_price", "availability", "gtin", "mpn", "brand",
                        "page_sha256", "fetched_at", "message"}

    code = _preview([hostile + "/hp/404", "--shops", str(hostile_shops), "--archive", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["outcome"] == "not_found"  # still prints the JSON

    code = _preview([hostile + "/hp/1001", "--retailer", "elsewhere", "--shops", str(hostile_shops),
                     "--archive", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["retailer"] == "elsewhere"
    assert captured.err.startswith("warning: retailer elsewhere is not in shops.yaml: fetched with the ")
    assert captured.err.rstrip().endswith("adapter and default politeness (1 request/s)")


def test_preview_bad_input(hostile, tmp_path):
    with pytest.raises(PriceIntelError, match="'ftp://x/p/1' is not an absolute http"):
        _preview(["ftp://x/p/1"])
    with pytest.raises(PriceIntelError, match="shops file not found"):
        _preview([hostile + "/hp/1001", "--shops", str(tmp_path / "missing.yaml")])
