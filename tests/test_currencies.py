"""Currencies as written: CLDR symbols, codes and names of every locale; units and quantities are no prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from priceintel.clean import AMBIGUOUS_SIGNS, currency_candidates, normalise_currency, parse_price
from priceintel.clean.cldr import currency_table, unit_spellings
from priceintel.clean.cldr_check import check_cldr
from priceintel.clean.cldr_derived import visual_order
from priceintel.clean.currencies import territory_of


def test_prices_cldr_formats_in_a_sample_of_locales_are_all_recognised():
    # generated from CLDR: every currency symbol of 150 seeded random locales + every ISO code
    res = check_cldr(sample=150, seed=18)
    assert res["n"] > 3000 and res["code"]["n"] >= 290
    assert res["recognised"] == 1.0, res["misses"][:20]


@pytest.mark.parametrize(
    "text, amount, iso, raw",
    [
        ("US$ 5", "5", "USD", "US$"),
        ("C$ 5", "5", "CAD", "C$"),
        ("NZ$ 12.50", "12.50", "NZD", "NZ$"),
        ("R$ 1.234,56", "1234.56", "BRL", "R$"),
        ("HK$ 88", "88", "HKD", "HK$"),
        ("1 234 руб.", "1234", "RUB", "руб."),
        ("500 ₽", "500", "RUB", "₽"),
        ("12 лв", "12", "BGN", "лв"),
        ("12,50 zł", "12.50", "PLN", "zł"),
        ("120 Kč", "120", "CZK", "Kč"),
        ("¥1,234", "1234", "JPY", "¥"),
        ("1,200円", "1200", "JPY", "円"),
        ("100元", "100", "CNY", "元"),
        ("₩5,000", "5000", "KRW", "₩"),
        ("₹500", "500", "INR", "₹"),
        ("৳500", "500", "BDT", "৳"),
        ("Rs 500", "500", "INR", "Rs"),
        ("＄12", "12", "USD", "$"),  # full-width signs read through NFKC
        ("￥1,200", "1200", "JPY", "¥"),
        ("5 euros", "5", "EUR", "euro"),  # price-parser's match is kept as written, as "руб" of "рублей"
        ("5 Ringgit", "5", "MYR", "Ringgit"),  # names and plurals, any case
        ("12 Euro", "12", "EUR", "Euro"),
        ("500 yen", "500", "JPY", "yen"),
        ("10 dollars", "10", "USD", "dollars"),
        ("500 рублей", "500", "RUB", "руб"),
        ("1 бат", "1", "THB", "бат"),
        ("Q 12.50", "12.50", "GTQ", "Q"),  # a one-letter CLDR symbol before the amount
        ("1 234,50 FCFP", "1234.50", "XPF", "FCFP"),
        ("Bs.S1.234,50", "1234.50", "VES", "Bs.S"),
        ("1 ر.س", "1", "SAR", "ر.س"),
    ],
)
def test_currency_spellings_from_cldr(text, amount, iso, raw):
    p = parse_price(text)
    assert p.amount == Decimal(amount), text
    assert (p.currency, p.currency_raw) == (iso, raw), text
    assert iso in p.currency_candidates


@pytest.mark.parametrize(
    "text",
    [
        "500 g",
        "1.5 l",
        "1 L",
        "12 x 500 ml",
        "2 kg",
        "250 ml",
        "16.00 ft",
        "20%",
        "6 pcs",
        "12 oz",
        "5 in stock",
        "500 G",
        "3 × 200 g",
        "2 fl oz",
        "1,5 кг",
    ],
)
def test_units_and_quantities_are_no_prices(text):
    p = parse_price(text)
    assert p.amount is None and p.currency is None and p.currency_raw is None, p


@pytest.mark.parametrize(
    "text, amount, iso, unit",
    [
        ("€4.99/kg", "4.99", "EUR", "kg"),
        ("$5.00 (500 g)", "5.00", "USD", None),
        ("12.99 (500 g)", "12.99", None, None),  # an amount followed by a bracket is a price
    ],
)
def test_prices_next_to_units_stay_prices(text, amount, iso, unit):
    p = parse_price(text)
    assert (p.amount, p.currency, p.unit) == (Decimal(amount), iso, unit)


def test_single_letters_are_no_currency_after_an_amount_when_they_are_units():
    assert parse_price("1 L").amount is None  # litre, not the Honduran lempira
    p = parse_price("1 L", country="HN")  # unless the country's own currency is written so
    assert (p.amount, p.currency, p.currency_raw) == (Decimal(1), "HNL", "L")
    assert parse_price("500 G", locale="fr_HT").currency == "HTG"
    assert parse_price("200Q").currency == "GTQ"  # "Q" is no unit in any case


def test_shared_signs_keep_every_candidate_and_resolve_by_code_country_and_default():
    assert currency_candidates("$")[0] == "USD" and {"CAD", "AUD", "MXN"} <= set(currency_candidates("$"))
    assert {"SEK", "NOK", "DKK"} <= set(currency_candidates("kr"))
    assert parse_price("$12.50").currency == "USD"
    assert parse_price("$12.50", country="CA").currency == "CAD"
    assert parse_price("$12.50", locale="es_MX").currency == "MXN"
    assert parse_price("$12.50 CAD").currency == "CAD"  # an ISO code in the string wins
    assert parse_price("¥1,000").currency == "JPY"
    assert parse_price("¥1,000", country="CN").currency == "CNY"
    assert parse_price("kr 149", country="SE").currency == "SEK"
    assert parse_price("12 €", country="US").currency == "EUR"  # an unambiguous sign is never changed
    assert normalise_currency("kr", country="DK") == "DKK"
    assert "kr" in AMBIGUOUS_SIGNS and "€" not in AMBIGUOUS_SIGNS
    assert AMBIGUOUS_SIGNS["¥"]["cn"] == "CNY"


def test_codes_names_and_unknowns():
    assert normalise_currency("usd") == "USD" and normalise_currency("PTE") == "PTE"
    assert normalise_currency("Euros") == "EUR"
    assert normalise_currency("grams") is None
    assert currency_candidates("") == () and currency_candidates(None) == ()
    p = parse_price("Mode of Payment *", currency_hint="$")  # words are no currency
    assert p.amount is None and p.currency_raw == "$"


def test_letters_inside_words_and_names_in_free_hint_text_are_no_currency():
    assert parse_price("Номер товара: 17").currency_raw is None  # "р" of "товара" is no rouble sign
    assert parse_price("4.5", currency_hint="3 von 5 Sternen").currency_raw is None  # "von": a won only in Hungarian
    assert parse_price("2 400", currency_hint="2 069 руб.").currency == "RUB"


def test_cyrillic_contractions_of_cldr_names():
    assert parse_price("1 299 грн").currency == "UAH"  # contraction of "гривня"
    p = parse_price("12 500 тг.", country="KZ")  # "тенге" (or "тугрик": the country decides)
    assert (p.amount, p.currency, p.currency_raw) == (Decimal(12500), "KZT", "тг.")
    assert {"KZT", "MNT"} <= set(p.currency_candidates)
    assert parse_price("7 долл.").currency == "USD"
    for text in ("5 млн", "12 тыс.", "3 мес.", "2 уп."):  # million, thousand, months, packs
        assert parse_price(text).currency_raw is None, text


def test_hebrew_acronyms_of_cldr_names():
    for text in ("99 ש״ח", '99 ש"ח', "99 ש'ח"):  # "שקל חדש", with gershayim or the marks typed for it
        p = parse_price(text)
        assert (p.amount, p.currency) == (Decimal(99), "ILS"), text
    for text in ("5 ק״ג", '2 מ"ל'):  # kilogram, millilitre: CLDR Hebrew units, no currency acronyms
        assert parse_price(text).amount is None, text


def test_locale_territories():
    assert territory_of("fr_CA") == "CA" and territory_of("ja") == "JP" and territory_of("pt-BR") == "BR"
    assert territory_of("zz_bogus!") is None and territory_of(None) is None


def test_currency_table_is_built_once_from_cldr():
    table = currency_table()
    assert currency_table() is table  # cached for the process
    assert len(table.symbols) > 350 and len(table.names) > 1000
    assert table.build_seconds > 0  # its speed is measured in benchmarks, not here (15 s in one traced CI run)
    assert {"g", "kg", "L", "ml", "oz", "lb", "%"} <= unit_spellings()


def test_threads_asking_at_once_wait_for_one_build():
    """The live scraper's fetch threads parse their first prices at the same moment: one build serves them all."""
    import threading
    import time

    from priceintel.clean.cldr import _built_once

    builds = []

    def build():
        builds.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every thread to ask while it runs
        return object()

    get = _built_once(build)
    got = []
    threads = [threading.Thread(target=lambda: got.append(get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(got) == 8 and all(g is got[0] for g in got)


@pytest.mark.parametrize(
    "text, amount, iso, raw",
    [
        ("12,50 zl", "12.50", "PLN", "zl"),  # 1. ASCII folding: "zł" without its stroke
        ("120 Kc", "120", "CZK", "Kc"),  # "Kč" without its caron
        ("KShs 1,000", "1000", "KES", "KShs"),  # 2. plural of "Ksh", any case
        ("TShs 5,000", "5000", "TZS", "TShs"),
        ("45 E£", "45", "EGP", "E£"),  # 3. country-letter prefix: "EG£" (CLDR) -> EGP holds "£" -> "E£"
        ("J¥1000", "1000", "JPY", "J¥"),
        ("Nkr 200", "200", "NOK", "Nkr"),
        ("99¢", "0.99", "USD", "¢"),  # the cent sign: hundredths of a dollar
        ("1 ع.د", "1", "IQD", "ع.د"),  # 4. visual order: CLDR's "د.ع." with its parts as shown on screen
        ("12 س.ر", "12", "SAR", "س.ر"),
    ],
)
def test_spellings_derived_from_cldr(text, amount, iso, raw):
    p = parse_price(text)
    assert (p.amount, p.currency, p.currency_raw) == (Decimal(amount), iso, raw), p


def test_derived_spellings_keep_every_candidate_and_stay_derived():
    table = currency_table()
    assert set(table.derived) == {"ascii_folding", "abbreviation_plurals", "country_prefixes", "visual_order"}
    assert all(n > 0 for n in table.derived.values())
    assert table.symbols["zl"] == {"PLN": 0}  # weight 0: derived, written by no locale
    assert {"SYP", "SSP", "SHP"} <= set(currency_candidates("S£"))  # a shared derived form stays ambiguous
    assert parse_price("S£ 5", country="SY").currency == "SYP"
    assert parse_price("99¢", country="CA").currency == "CAD"
    assert parse_price("¢99").currency_raw is None  # "¢" before the amount is Costa Rica's typed "₡", no cent
    assert currency_candidates("Les") == () and currency_candidates("krs") == ()  # no plural of two letters
    assert visual_order("د.ع.\u200f") == "ع.د" and visual_order("₪") is None and visual_order("Fr.") is None
    assert visual_order("ش.ج") == "ج.ش" and visual_order("S.R") is None  # right-to-left scripts only
    for text in ("5 d", "3 DK"):  # no one-letter folds ("đ"), no prefix of a one-letter sign ("kr" / "K")
        assert parse_price(text).currency_raw is None, text
