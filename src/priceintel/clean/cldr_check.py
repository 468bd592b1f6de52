"""Check `parse_price` against prices CLDR itself formats: every symbol of every (sampled) locale, every code.

`cldr_cases()` formats 1234.50 with `babel.numbers.format_currency` for each locale (all, or a seeded
sample) and each currency the locale writes with a symbol of its own (not the bare ISO code), plus
each ISO-4217 code written as a code (pattern "¤¤") in a seeded locale. `check_cldr()` parses every
text with the locale as hint and counts the texts whose amount is 1234.50 and whose currency is
right: the exact code when the symbol is unambiguous or the locale's territory resolves it, else a
candidate of the written symbol.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale
from babel.localedata import locale_identifiers
from babel.numbers import (
    UnknownCurrencyFormatError,
    UnsupportedNumberingSystemError,
    format_currency,
    list_currencies,
)

from priceintel.clean.currencies import country_currencies, territory_of
from priceintel.clean.prices import parse_price

#: the amount every case formats
AMOUNT = Decimal("1234.50")


@dataclass(frozen=True)
class CldrCase:
    """One CLDR-formatted price: locale, ISO code, how it is written ("symbol" or "code"), the text."""

    locale: str
    code: str
    kind: str
    text: str


def _locales(sample: int | None, seed: int) -> list[str]:
    ids = sorted(locale_identifiers())
    if sample is not None and sample < len(ids):
        ids = sorted(random.Random(seed).sample(ids, sample))
    return ids


def cldr_cases(sample: int | None = None, seed: int = 18) -> list[CldrCase]:
    """Every (locale, currency) symbol of the sampled locales, plus every ISO code once, formatted by CLDR."""
    cases: list[CldrCase] = []
    locales = _locales(sample, seed)
    writable = [loc for loc in locales if _writes_prices(loc)]
    for loc in writable:
        for code, symbol in sorted(Locale.parse(loc).currency_symbols.items()):
            if symbol != code and symbol.strip() not in ("", "\u200b", "¤"):
                text = format_currency(AMOUNT, code, locale=loc, currency_digits=False)
                cases.append(CldrCase(loc, code, "symbol", text))
    rng = random.Random(seed)
    for code in sorted(list_currencies()):
        loc = rng.choice(writable)
        text = format_currency(AMOUNT, code, "¤¤ #,##0.00", locale=loc, currency_digits=False)
        cases.append(CldrCase(loc, code, "code", text))
    return cases


def _writes_prices(locale: str) -> bool:
    """Whether Babel can format a price in this locale (a few, e.g. "root", lack the Latin-digit format)."""
    try:
        format_currency(AMOUNT, "EUR", locale=locale, currency_digits=False)
    except (UnknownCurrencyFormatError, UnsupportedNumberingSystemError):
        return False
    return True


def case_ok(case: CldrCase, use_locale: bool = True) -> bool:
    """Whether `parse_price` reads a case's amount and currency (see the module docstring)."""
    parsed = parse_price(case.text, locale=case.locale if use_locale else None)
    if parsed.amount != AMOUNT or case.code not in parsed.currency_candidates:
        return False
    unambiguous = len(parsed.currency_candidates) == 1
    resolved = use_locale and case.code in country_currencies(territory_of(case.locale))
    return parsed.currency == case.code if unambiguous or resolved else True


def check_cldr(sample: int | None = None, seed: int = 18, use_locale: bool = True) -> dict:
    """Share of CLDR-formatted prices `parse_price` recognises, overall and by kind, with the misses."""
    cases = cldr_cases(sample, seed)
    misses = [c for c in cases if not case_ok(c, use_locale)]
    by_kind = {}
    for kind in ("symbol", "code"):
        n = sum(c.kind == kind for c in cases)
        bad = sum(c.kind == kind for c in misses)
        by_kind[kind] = {"n": n, "recognised": round((n - bad) / n, 4) if n else 0.0}
    return {
        "locales": len(_locales(sample, seed)),
        "locales_without_price_format": sum(not _writes_prices(loc) for loc in _locales(sample, seed)),
        "sample_seed": seed if sample is not None else None,
        "with_locale_hint": use_locale,
        "n": len(cases),
        "recognised": round((len(cases) - len(misses)) / len(cases), 4) if cases else 0.0,
        **by_kind,
        "misses": [(c.locale, c.code, c.text) for c in misses],
    }
