"""An item id read from a hostile page is checked at extraction (`items.valid_item_id`): one that is no id
(markup, spaces, a spreadsheet formula, control characters) is rejected, noted, and replaced by the URL's id or
the page's SKU; fetch_page on a real loopback shop says so in its message."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from _receivers import serve_handler
from priceintel.items import valid_item_id
from priceintel.scrape import Fetcher, RawArchive
from priceintel.scrape.extract import extract
from priceintel.scrape.page import fetch_page
from priceintel.scrape.shops import Shop

FORMULA = '=HYPERLINK("http://evil.example","x")'


@pytest.mark.parametrize(
    "value, want",
    [
        ("B0ABCDEFGH", "B0ABCDEFGH"),
        ("  123456 ", "123456"),
        (987654, "987654"),
        ("sku_1.2:3/4-5", "sku_1.2:3/4-5"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("", None),
        ("   ", None),
        (FORMULA, None),
        ("+1", None),
        ("@SUM(A1)", None),
        ("AB 12", None),
        ("<b>1</b>", None),
        ("id\x00", None),
        ("\tid", "id"),
        (None, None),
        (True, None),
        (1.5, None),
        ("ＡＢ１", None),
    ],
)
def test_valid_item_id(value, want):
    assert valid_item_id(value) == want


def _page(item_id: str, sku: str | None = None) -> str:
    ld = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "Kettle",
        "sku": sku or item_id,
        "offers": {"@type": "Offer", "price": "19.99", "priceCurrency": "EUR"},
    }
    return (
        f'<!doctype html><html><head><title>Kettle</title><script type="application/ld+json">{json.dumps(ld)}'
        f'</script></head><body><h1>Kettle</h1><input id="ASIN" value="{item_id.replace(chr(34), "&quot;")}">'
        "</body></html>"
    )


def test_a_hostile_id_on_the_page_gives_way_to_the_url_id():
    o = extract(_page(FORMULA), "http://h/Kettle/dp/B0ABCDEFGH", "amazon")
    assert o.item_id == "B0ABCDEFGH" and o.methods["item_id"] == "url"
    assert o.methods["item_id_rejected"] == "css:input#ASIN::attr(value)"
    assert o.sku != FORMULA and o.price == "19.99"  # the page itself is still read
    good = extract(_page("B0ABCDEFGH"), "http://h/Kettle/dp/B0ABCDEFGH", "amazon")
    assert good.item_id == "B0ABCDEFGH" and "item_id_rejected" not in good.methods


def test_a_generic_shop_falls_back_to_a_valid_sku_or_to_no_id():
    assert extract(_page("<b>x</b>", sku="KT-100"), "http://shop.example/p/kettle").item_id == "KT-100"
    o = extract(_page("x", sku="@SUM(A1)\x07"), "http://shop.example/p/kettle")
    assert o.item_id is None and o.price == "19.99" and o.methods["item_id_rejected"] == "jsonld"


@pytest.fixture()
def hostile_shop():
    """A real loopback shop whose product page carries a formula as its SKU / item id."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/robots.txt":
                body, kind = b"User-agent: *\nAllow: /\n", "text/plain"
            else:
                body, kind = _page("x", sku=FORMULA).encode(), "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with serve_handler(Handler) as base:
        yield base


def test_fetch_page_names_the_rejected_id_and_the_url(hostile_shop, tmp_path):
    shop = Shop(name="evil", base_url=hostile_shop + "/")
    url = hostile_shop + "/p/kettle"
    with Fetcher(archive=RawArchive(tmp_path / "raw"), retries=0, rate_limit_per_host=0) as f:
        rec = fetch_page(url, shop, fetcher=f)
    assert rec.outcome == "ok" and rec.price == "19.99" and rec.item_id is None
    assert (
        rec.message == f"price 19.99 EUR; the item id from jsonld on {url} was rejected (an id is 1-128 letters, "
        "digits and ._:/-): no item id"
    )
    assert rec.methods["item_id_rejected"] == "jsonld" and FORMULA not in rec.to_json()
