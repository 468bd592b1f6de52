"""Price strings, currencies and availability words beyond the shared cases (written here, not from shared/)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from priceintel.clean import currency_in_context, parse_price
from priceintel.items import IN_STOCK, OUT_OF_STOCK
from priceintel.scrape import extract
from priceintel.scrape.adapters import get_adapter
from priceintel.scrape.adapters.base import COMMON_AVAILABILITY


@pytest.mark.parametrize("text, amount, iso, raw, quantity, unit", [
    ("1.234,56 €", "1234.56", "EUR", "€", None, None),
    ("CHF 1'234.50", "1234.50", "CHF", "CHF", None, None),
    ("¥1,234", "1234", "JPY", "¥", None, None),
    ("R$ 1.234,56", "1234.56", "BRL", "R$", None, None),
    ("$0.25/oz", "0.25", "USD", "$", None, "oz"),
    ("12,99 €/kg", "12.99", "EUR", "€", None, "kg"),
    ("€ 2,50 / 100 g", "2.50", "EUR", "€", None, "100 g"),
    ("2 for $5", "5", "USD", "$", 2, None),
    ("2/$5", "5", "USD", "$", 2, None),
    ("3 für 10 €", "10", "EUR", "€", 3, None),
    ("was $19.99 now $14.99", "14.99", "USD", "$", None, None),
    ("Was £19.99 Now £14.99", "14.99", "GBP", "£", None, None),
    ("Now £14.99 Was £19.99", "14.99", "GBP", "£", None, None),
    ("was $19.99 $14.99", "14.99", "USD", "$", None, None),
    ("Was: $124.95 Now: $0.00", "124.95", "USD", "$", None, None),  # a zero "now" is a placeholder
    ("statt 29,99 € jetzt 19,99 €", "19.99", "EUR", "€", None, None),
    ("from $9.99 - $14.99", "9.99", "USD", "$", None, None),  # a range reads as its lower bound
    ("£5", "5", "GBP", "£", None, None),
    ("kr 149,-", "149", "NOK", "kr", None, None),  # CLDR default for a bare "kr" (SEK with country="SE")
    ("1 234,56 zł", "1234.56", "PLN", "zł", None, None),
    ("reg $15.99", "15.99", "USD", "$", None, None),
])
def test_price_strings_not_in_shared(text, amount, iso, raw, quantity, unit):
    p = parse_price(text)
    assert p.amount == Decimal(amount), text
    assert (p.currency, p.currency_raw, p.quantity, p.unit) == (iso, raw, quantity, unit), text


@pytest.mark.parametrize("text", ["12/25", "1/2", "known $5"])
def test_price_strings_that_are_not_special_forms(text):
    p = parse_price(text)
    assert p.quantity is None and p.unit is None
    assert p.amount == Decimal(text.split("/")[0].split("$")[-1].strip())


@pytest.mark.parametrize("raw, iso, country, declared, want", [
    ("$", "USD", "cl", None, "CLP"),
    ("$", "USD", "ca", None, "CAD"),
    ("$", "USD", None, "MXN", "MXN"),       # the page's own priceCurrency wins
    ("$", "USD", "cl", "EUR", "CLP"),       # a declared code that is no dollar does not
    ("$", "USD", "de", None, "USD"),        # no dollar at home: the sign's default stays
    ("kr", "SEK", "no", None, "NOK"),
    ("Kr.", "SEK", "dk", None, "DKK"),
    ("¥", "JPY", "cn", None, "CNY"),
    ("€", "EUR", "cl", None, "EUR"),        # unambiguous signs are never changed
    (None, None, "cl", None, None),
])
def test_currency_in_context(raw, iso, country, declared, want):
    assert currency_in_context(raw, iso, country, declared) == want


def _page(price: str, lang: str = "en", head: str = "") -> str:
    return (f"<html lang='{lang}'><head><title>P</title>{head}</head><body><h1>Lamp</h1>"
            f"<div class='product-price'>{price}</div></body></html>")


def test_extract_reads_the_dollar_of_the_pages_country():
    assert extract(_page("$229.990"), "https://www.tienda.cl/p/1").currency == "CLP"
    assert extract(_page("$229.990"), "https://www.tienda.cl/p/1").price == "229990.00"
    assert extract(_page("$12.50", lang="es-MX"), "https://shop.example.com/p/1").currency == "MXN"
    og = "<meta property='og:locale' content='en_CA'>"
    assert extract(_page("$12.50", head=og), "https://shop.example.com/p/1").currency == "CAD"
    assert extract(_page("$12.50"), "https://shop.example.com/p/1").currency == "USD"
    assert extract(_page("kr 149,-"), "https://butik.example.no/p/1").currency == "NOK"
    assert extract(_page("€ 12,50"), "https://shop.example.cl/p/1").currency == "EUR"


def test_price_block_named_price_list_is_not_a_list_price():
    html = ("<html><body><h1>Mask</h1><ul id='price-list' class='list-unstyled'>"
            "<li class='price'><span class='amount'>100.00€</span></li></ul>"
            "<div class='related'><div class='prices'><span class='price'>150.00€</span></div></div>"
            "<div class='list-price'>120.00€</div></body></html>")
    assert extract(html, "https://www.shop.example/p/1").price == "100.00"
    struck = "<html><body><h1>M</h1><div class='list-price'>120.00€</div><p class='price'>99.00€</p></body></html>"
    assert extract(struck, "https://www.shop.example/p/1").price == "99.00"


@pytest.mark.parametrize("text, want", [
    ("Non disponible", OUT_OF_STOCK), ("Disponible", IN_STOCK), ("Nema na stanju", OUT_OF_STOCK),
    ("Na stanju", IN_STOCK), ("Není skladem", OUT_OF_STOCK), ("Skladem", IN_STOCK),
    ("Sem estoque", OUT_OF_STOCK), ("Em estoque", IN_STOCK), ("Nincs raktáron", OUT_OF_STOCK),
    ("Ei varastossa", OUT_OF_STOCK), ("Немає в наявності", OUT_OF_STOCK), ("Sofort lieferbar", IN_STOCK),
    ("nu este în stoc", OUT_OF_STOCK), ("Stokta yok", OUT_OF_STOCK), ("غير متوفر", OUT_OF_STOCK),
])
def test_availability_words_in_more_languages(text, want):
    assert get_adapter("generic").normalise_availability(text) == want


def test_every_availability_word_maps_to_itself():
    adapter = get_adapter("generic")
    for word, url in COMMON_AVAILABILITY.items():  # longest phrase wins, so negations are never shadowed
        assert adapter.normalise_availability(word) == url, word
