"""Written currencies -> ISO-4217 codes, from CLDR (`priceintel.clean.cldr`), with shared signs resolved.

`currency_candidates("kr")` lists every currency a spelling may mean, most likely first;
`normalise_currency(raw, country=...)` picks one; `currency_in_context` re-reads a shared sign ("$",
"kr", "¥") from the page's declared currency or country. No currency spelling is written by hand
here: every symbol, code and name comes from CLDR (every Babel locale) or price-parser's ISO table.

Resolution of a spelling several currencies share, in order:

1. an ISO code stated elsewhere (the page's `priceCurrency`, a code in the same string) that is one of
   the candidates;
2. the caller's country (or the territory of its locale): the candidate that is legal tender there
   (`babel.numbers.get_territory_currencies`), e.g. "$" in CA -> CAD, "¥" in CN -> CNY;
3. the default (`_order`): an ISO-4217 code before a non-ISO one (CLDR's "PRB"); a currency that
   CLDR writes this way and that is legal tender today; then one CLDR writes this way; then one
   legal tender today (only price-parser's table spells it so); then the currency whose English
   (CLDR "en") symbol is exactly this spelling ("$" -> USD, "¥" -> JPY); then the currency of the
   most territories (CLDR territory currencies: "Rs" -> INR, "dollars" -> USD, "kr" -> NOK); then
   the currency the most CLDR locales write this way; then by code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.numbers import get_territory_currencies, list_currencies

from priceintel.clean.cldr import currency_table, cyrillic_contraction, nfkc, unit_like, unit_spellings

#: ISO-4217 codes of the common trading currencies (kept for callers that list "major" currencies)
ISO_CURRENCIES = frozenset(
    "USD EUR GBP JPY CNY CAD AUD NZD CHF SEK NOK DKK PLN CZK HUF RON BGN TRY RUB UAH INR PKR "
    "BRL MXN ARS CLP COP PEN ZAR KRW SGD HKD TWD THB MYR IDR PHP VND ILS AED SAR QAR EGP NGN KES".split()
)

#: every ISO-4217 code CLDR knows (Babel): what a stored price's currency may be
ALL_ISO_CURRENCIES = frozenset(list_currencies())

_CODE_RE = re.compile(r"^[A-Z]{3}$")
#: upper-case English words next to prices that are no currency code
_NOT_CODES = frozenset({"REG", "WAS", "NOW", "NEW", "OFF", "FOR", "VAT", "TAX", "AND", "THE"})


def _variants(key: str) -> list[str]:
    """Other spellings: without / with a final full stop ("лв" -> "лв."), without spaces ("US $" -> "US$")."""
    out = [key[:-1].strip() if key.endswith(".") else key + "."]
    if key.startswith("."):  # right-to-left abbreviations keep their full stop in front (".د.ب")
        out += [key.strip("."), key.strip(".") + "."]
    if " " in key:
        out.append(key.replace(" ", ""))
    return [v for v in out if v and v != key]


def _lookup(key: str) -> dict[str, int]:
    """{ISO code: locales} of one spelling: a symbol as written, a name or code, a symbol in any case."""
    table = currency_table()
    if key in table.symbols:
        return table.symbols[key]
    folded = key.casefold()
    if folded in table.names:
        return table.names[folded]
    if len(key) > 1:
        return table.folded.get(folded, {})
    return {}


def _order(key: str, counts: dict[str, int]) -> tuple[str, ...]:
    """Candidates most likely first (the default rule of the module docstring)."""
    table = currency_table()

    def rank(code: str) -> tuple[bool, bool, bool, bool, bool, int, int, str]:
        current, attested = code in table.current, counts[code] > 0
        return (
            code not in ALL_ISO_CURRENCIES,
            not (current and attested),
            not attested,
            not current,
            table.english.get(code) != key,
            -table.current.get(code, 0),
            -counts[code],
            code,
        )

    return tuple(sorted(counts, key=rank))


@lru_cache(maxsize=8192)
def currency_candidates(raw: str | None, variants: bool = True) -> tuple[str, ...]:
    """Every ISO code a written currency may mean, most likely first; () when it is no currency.

    An ISO code in any case ("usd") is itself; a symbol is looked up as written (NFKC), then
    case-folded when longer than one letter; names and their plurals case-folded. When that finds
    no currency in use today, the spelling without / with a final full stop and without spaces is
    read too ("лв" = "лв.", "US $" = "US$"), unless `variants` is False.
    """
    if raw is None:
        return ()
    key = nfkc(str(raw)).strip()
    if not key:
        return ()
    if len(key) == 3 and key.isalpha() and key.upper() in ALL_ISO_CURRENCIES:
        also = currency_table().symbols.get(key, {})  # a code some locale writes for another ("ANG")
        return (key.upper(), *sorted(c for c in also if c != key.upper()))
    counts = dict(_lookup(key))
    table = currency_table()
    if variants and not any(code in table.current and n for code, n in counts.items()):
        for variant in _variants(key):
            for code, n in _lookup(variant).items():
                counts[code] = counts.get(code, 0) + n
    if variants and not counts:
        counts = cyrillic_contraction(key)
    return _order(key, counts) if counts else ()


def is_symbol(raw: str) -> bool:
    """Whether a spelling is a currency symbol (not only a name) in some CLDR locale or price-parser."""
    key = nfkc(raw).strip()
    table = currency_table()
    return key in table.symbols or (len(key) > 1 and key.casefold() in table.folded)


def is_currency(raw: str | None) -> bool:
    """Whether a token is a currency spelling CLDR (or price-parser's ISO table) knows."""
    return bool(currency_candidates(raw))


@lru_cache(maxsize=8192)
def is_currency_token(token: str | None, before_amount: bool = False, country: str | None = None) -> bool:
    """Whether a token next to an amount is its currency rather than a unit or a word.

    A spelling whose currency is legal tender in `country` always is. A single Latin letter ("Q",
    "R", "L", "G": CLDR symbols) is one before the amount ("Q 12.50") or after it when that letter
    is no unit in any case ("12 D"; "500 G" / "1.5 L" are grams and litres). A name counts only
    after the amount ("5 euros"; not "Cost 5"). An exact CLDR symbol, a currency name or an ISO code
    is one; a unit spelling that is a symbol only in another case ("ft" feet vs "Ft" forint) is not;
    nor is a symbol written in another case that is a unit.
    """
    if token is None:
        return False
    key = nfkc(str(token)).strip()
    cands = currency_candidates(key)
    if not cands:
        return False
    if set(cands) & set(country_currencies(country)):
        return True
    if len(key) == 1 and key.isascii() and key.isalpha():
        return before_amount or not unit_like(key)
    table = currency_table()
    symbol = any(v in table.symbols or v.casefold() in table.folded for v in (key, *_variants(key)))
    code = len(key) == 3 and key.isupper() and key in ALL_ISO_CURRENCIES
    if before_amount and not (symbol or code):
        return False  # names follow the amount ("5 euros"); a word before it is no currency ("Cost 5")
    if key in table.symbols or key.casefold() in table.names or key.rstrip(".") in table.symbols:
        return True
    return not (key in unit_spellings() or unit_like(key))


def is_quantity_unit(token: str) -> bool:
    """Whether a token after an amount is a unit of measure or a count ("g", "ml", "fl oz", "pcs", "%")."""
    return unit_like(token)


def territory_of(locale: str | None) -> str | None:
    """Territory of a locale ("fr_CA" -> "CA", "ja" -> "JP" by CLDR likely subtags); None if unknown."""
    if not locale:
        return None
    try:
        loc = Locale.parse(str(locale).replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    if loc.territory:
        return loc.territory
    likely = str(get_global("likely_subtags").get(loc.language, ""))
    parts = [p for p in likely.split("_") if len(p) == 2 and p.isupper()]
    return parts[-1] if parts else None


@lru_cache(maxsize=1024)
def country_currencies(country: str | None) -> tuple[str, ...]:
    """Currencies legal tender today in a territory ("CA" -> ("CAD",)); () when unknown."""
    if not country or len(str(country)) != 2:
        return ()
    try:
        return tuple(get_territory_currencies(str(country).upper(), tender=True))
    except Exception:  # noqa: BLE001 - babel raises various errors for unknown territories
        return ()


def resolve_currency(
    candidates: tuple[str, ...], country: str | None = None, declared: str | None = None
) -> str | None:
    """One ISO code out of `candidates`: the declared code, else the country's, else the first."""
    if not candidates:
        return None
    declared_iso = str(declared).strip().upper() if declared else None
    if declared_iso in candidates:
        return declared_iso
    local = country_currencies(country)
    for code in candidates:
        if code in local:
            return code
    return candidates[0]


def normalise_currency(raw: str | None, country: str | None = None) -> str | None:
    """ISO-4217 code for a written currency ("$", "usd", "€", "EUR", "руб", "euros"), None when unknown.

    `country` (ISO 3166 alpha-2, e.g. "CA") resolves a shared sign ("$" in CA -> CAD).
    """
    return resolve_currency(currency_candidates(raw), country)


def currency_in_context(
    raw: str | None, iso: str | None, country: str | None = None, declared: str | None = None
) -> str | None:
    """ISO code of a sign several currencies share ("$", "kr", "¥"), read in the page's context.

    `declared` (an ISO code the page states elsewhere, e.g. schema.org priceCurrency or
    og:price:currency) wins when it is one of the sign's currencies; else the `country` (the
    domain's ccTLD or the region of <html lang>) picks one; else `iso` (the sign's default) stays.
    """
    if raw is None:
        return iso
    family = _family(str(raw))
    if len(family) < 2:
        return iso
    declared_iso = normalise_currency(declared) if declared else None
    if declared_iso is not None and (declared_iso in family or declared_iso == iso):
        return declared_iso
    for code in country_currencies(country):
        if code in family:
            return code
    return iso


def _family(raw: str) -> tuple[str, ...]:
    """Candidates of a spelling and of its variant with / without a final full stop ("Kr." and "kr")."""
    key = nfkc(raw).strip()
    out = list(currency_candidates(key)) if key else []
    for variant in _variants(key) if key else ():
        out.extend(c for c in currency_candidates(variant) if c not in out)
    return tuple(out)


class _AmbiguousSigns(Mapping[str, dict[str, str]]):
    """Shared signs ("$", "kr", "¥", "£") -> {country code (lower case): ISO code}, built from CLDR.

    Membership (`"kr" in AMBIGUOUS_SIGNS`) is answered without building the whole mapping.
    """

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and len(_family(key)) > 1

    def __getitem__(self, key: str) -> dict[str, str]:
        family = _family(key)
        if len(family) < 2:
            raise KeyError(key)
        out: dict[str, str] = {}
        for territory in get_global("territory_currencies"):
            for code in country_currencies(territory):
                if code in family:
                    out.setdefault(territory.lower(), code)
        return out

    def __iter__(self) -> Iterator[str]:
        table = currency_table()
        return iter(sorted(k for k, v in table.symbols.items() if len(v) > 1))

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: signs shared by several currencies -> {country code: ISO code} (lazy, from CLDR)
AMBIGUOUS_SIGNS: Mapping[str, dict[str, str]] = _AmbiguousSigns()
