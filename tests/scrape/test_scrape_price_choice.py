"""Which printed price is the product's current price: synthetic generic pages, one rule each.

Every page here is written for the test (no shop's markup): a generic shop (no adapter) without
structured price, so the price comes from `layers.candidates`.
"""

from __future__ import annotations

import pytest

from priceintel.scrape import extract
from priceintel.scrape.layers.candidates import is_struck, price_value
from priceintel.scrape.layers.page import _parse

URL = "https://shop.example/p/widget"


def _html(body: str, head: str = "", lang: str = "en") -> bytes:
    return f'<!DOCTYPE html><html lang="{lang}"><head>{head}</head><body>{body}</body></html>'.encode()


def _price(body: str, head: str = "", url: str = URL, lang: str = "en") -> tuple:
    o = extract(_html(body, head, lang), url)
    return o.price, o.currency


def test_a_unit_or_a_quantity_is_never_a_price():
    o = extract(_html("<h1>Ground coffee</h1><p>500 g</p>"), URL)
    assert o.price is None and o.page_kind != "product"
    assert _price("<h1>Water</h1><p>1.5 l</p><p>6 pcs</p><p>20 %</p>")[0] is None
    for text in ("500 g", "1.5 l", "1,5 L", "250 ml", "12 oz", "2 kg", "30 cm", "6 pcs", "20 %", "2 x", "100 W"):
        assert price_value(text) is None, text
    for text in ("$12.99", "12,99 €", "£450", "2.190 ARS", "CHF 2.25"):
        assert price_value(text) is not None, text
    # the quantity beside the price does not hide the price itself
    assert _price("<h1>Ground coffee</h1><p>500 g</p><p class='price'>€4.99</p>") == ("4.99", "EUR")


#: (rule, page body, the price and currency the extractor must choose)
CURRENT_PRICE_PAGES = [
    ("struck through", "<h1>Lamp</h1><div><s>$40.00</s> <span>$29.99</span></div>", ("29.99", "USD")),
    ("del element", "<h1>Lamp</h1><del class='price'>$40.00</del><span class='price'>$29.99</span>", ("29.99", "USD")),
    (
        "compare-at class and line-through style",
        "<h1>Lamp</h1><span class='price price--compare'>$40.00</span>"
        "<span style='text-decoration: line-through'>$45.00</span><span class='price'>$29.99</span>",
        ("29.99", "USD"),
    ),
    (
        "was / now labels",
        "<h1>Kettle</h1><p><span>Was</span> <span>£30.00</span></p><p><span>Now</span> <span>£24.00</span></p>",
        ("24.00", "GBP"),
    ),
    ("RRP and savings", "<h1>Kettle</h1><p>RRP £35.00</p><p>£24.00</p><p>Save £11.00</p>", ("24.00", "GBP")),
    ("unit price class", "<h1>Olive oil</h1><p class='unit-info'>€12.40/l</p><p>€6.20</p>", ("6.20", "EUR")),
    (
        "unit price beside a quantity",
        "<h1>Olive oil</h1><div><span>€1.24</span> <span>per 100 ml</span></div><div><span>€6.20</span></div>",
        ("6.20", "EUR"),
    ),
    (
        "per-month financing",
        "<h1>Laptop</h1><div class='finance'><span>$41.58</span><span>/mo</span></div>"
        "<div>or 12 x $41.58</div><div><span>$499.00</span></div>",
        ("499.00", "USD"),
    ),
    ("a month, in words", "<h1>Laptop</h1><p>From $41.58 a month</p><p>$499.00</p>", ("499.00", "USD")),
]


@pytest.mark.parametrize("rule, body, expected", CURRENT_PRICE_PAGES, ids=[c[0] for c in CURRENT_PRICE_PAGES])
def test_the_current_price_wins_over_struck_was_unit_and_financing_prices(rule, body, expected):
    assert _price(body) == expected


def test_struck_marks_of_the_generic_layer():
    tree = _parse(_html("<span class='old-price'>1</span><span class='rrp'>2</span><span class='price'>3</span>"))
    assert [is_struck(el) for el in tree.iter("span")] == [True, True, False]


def test_related_products_carousel_prices_are_not_the_product_price():
    carousel = (
        "<section class='related-products'><ul>"
        "<li><a href='/a'>Mug</a><span class='price'>$5.00</span></li>"
        "<li><a href='/b'>Plate</a><span class='price'>$7.00</span></li></ul></section>"
    )
    # the other products' block comes before the product's own price in the document
    body = (
        f"<header><span class='price'>Cart $0.00</span></header>{carousel}"
        "<main><div class='product'><h1>Teapot</h1><div><span class='price'>$32.00</span>"
        "<button class='add-to-cart'>Add to cart</button></div></div></main>"
    )
    assert _price(body) == ("32.00", "USD")
    # product cards linked from the page, after the title, in a carousel
    body = (
        "<div class='pdp'><h1>Teapot</h1><p>$32.00</p></div>"
        "<div class='carousel'><a href='/c'><span>$3.00</span></a></div>"
    )
    assert _price(body) == ("32.00", "USD")


def test_price_currency_from_the_page_context():
    # a price printed without a currency: the structured data's currency, og:price:currency, the page's signs
    ld = (
        '<script type="application/ld+json">{"@type":"Product","name":"Jar",'
        '"offers":{"@type":"Offer","price":"7.50"}}</script>'
    )
    o = extract(_html("<h1>Jar</h1>", ld + '<meta property="og:price:currency" content="EUR">'), URL)
    assert (o.price, o.currency, o.methods["currency"]) == ("7.50", "EUR", "page:meta")
    o = extract(_html("<h1>Jar</h1><p>Delivery from €3.00</p><p>Gift card €20</p>", ld), URL)
    assert (o.price, o.currency, o.methods["currency"]) == ("7.50", "EUR", "page:prices")
    o = extract(_html("<h1>Jar</h1>", ld), "https://shop.example.de/p/jar")
    assert (o.price, o.currency, o.methods["currency"]) == ("7.50", "EUR", "page:country")
    o = extract(_html("<h1>Jar</h1>", ld, lang="en-GB"), URL)
    assert (o.currency, o.currency_raw) == ("GBP", "GBP")
    # a "$" read in the page's country
    assert _price("<h1>Mate</h1><p>$ 2.190</p>", url="https://tienda.example.com.ar/p/mate")[1] == "ARS"


def test_structured_data_of_the_main_product_wins():
    ld = (
        '<script type="application/ld+json">[{"@type":"ItemList","itemListElement":['
        '{"@type":"ListItem","item":{"@type":"Product","name":"Other","offers":{"price":"3","priceCurrency":"USD"}}}]},'
        '{"@type":"Product","name":"Teapot","offers":{"price":"32","priceCurrency":"USD"}}]</script>'
    )
    o = extract(_html("<h1>Teapot</h1><p>$99.00</p>", ld), URL)
    assert (o.price, o.title, o.methods["price"]) == ("32.00", "Teapot", "jsonld")
    two = (
        '<script type="application/ld+json">[{"@type":"Product","name":"Saucer","offers":{"price":"4",'
        '"priceCurrency":"USD"}},{"@type":"Product","name":"Teapot","offers":{"price":"32","priceCurrency":"USD"}}]'
        "</script>"
    )
    assert extract(_html("<h1>Teapot</h1>", two), URL).price == "32.00"


@pytest.mark.parametrize("marks, struck", [((), False), (("a-text-price",), True), (("data-x=true",), True)])
def test_adapter_struck_marks(marks, struck):
    tree = _parse(_html("<span class='a-text-price' data-x='true'>$1</span>"))
    assert is_struck(tree.find(".//span"), marks) is struck


def test_zero_price_is_a_placeholder():
    ld = (
        '<script type="application/ld+json">{"@type":"Product","name":"Vase",'
        '"offers":{"@type":"Offer","price":"0.00","priceCurrency":"EUR"}}</script>'
    )
    o = extract(_html("<h1>Vase</h1><p class='price'>€19.00</p>", ld), URL)
    assert (o.price, o.methods["price"]) == ("19.00", "heuristic:price-element")


def test_reference_words_come_from_class_or_id_only():
    # a shop's test-hook attribute is not a generic reference marker; a class naming a product code is
    hook = "<h1>Top</h1><span data-qa-qualifier='product-reference'>7901/312</span>"
    assert extract(_html(hook), URL).sku != "7901/312"
    named = "<h1>Top</h1><span class='product-code'>AB-1234</span>"
    o = extract(_html(named), URL)
    assert (o.sku, o.methods["sku"]) == ("AB-1234", "heuristic:sku-element")


def test_split_prices_are_read_whole():
    # superscript cents, and a currency sign in an element of its own
    assert _price("<h1>Drill</h1><div class='price'>$49<sup>99</sup></div>") == ("49.99", "USD")
    assert _price("<h1>Drill</h1><div><span>€</span><span>49,99</span></div>") == ("49.99", "EUR")
    # a bare number without a currency stays out
    assert _price("<h1>Drill</h1><div><span>Qty</span><span>2</span></div>")[0] is None
