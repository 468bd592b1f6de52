"""Price texts -> amount + ISO currency + currency as written (`parse_price`, `ParsedPrice`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

import numpy as np
from babel.numbers import get_currency_precision
from price_parser import Price

from priceintel.clean.cldr import currency_table, normalise_text
from priceintel.clean.currencies import (
    _CODE_RE,
    _NOT_CODES,
    ALL_ISO_CURRENCIES,
    currency_candidates,
    is_currency_token,
    is_quantity_unit,
    is_symbol,
    resolve_currency,
    territory_of,
)

_RESIDUAL_STRIP = " \t\u00a0:;,-–—*/()[]"


@dataclass(frozen=True)
class ParsedPrice:
    """A price read from text: amount, ISO currency (None when unknown) and the currency as written."""

    amount: Decimal | None
    currency: str | None
    currency_raw: str | None
    #: items the amount buys when the text is a multi-buy ("2 for $5" -> amount 5, quantity 2)
    quantity: int | None = None
    #: unit of a unit price ("$0.25/oz" -> "oz")
    unit: str | None = None
    #: every currency the written one may mean, most likely first ("$" -> USD, CAD, AUD, ...)
    currency_candidates: tuple[str, ...] = ()

    @property
    def text(self) -> str | None:
        """Amount as a normalised decimal string ("12.99"), None without an amount."""
        return format_amount(self.amount)


def format_amount(amount: Decimal | None) -> str | None:
    """Normalised decimal string: at least two decimals ("12.9" -> "12.90"), no exponent."""
    if amount is None:
        return None
    if amount.as_tuple().exponent >= -2:  # type: ignore[operator]
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


#: the token right after / before the amount, past separators ("12 €", "Kč 5", "1 234,50Cg.")
_TOKEN_AFTER = re.compile(r"[\s:;,\-–—*/()\[\]]*([^\s\d]+)")
_TOKEN_BEFORE = re.compile(r"([^\s\d]+)[\s:;,\-–—*/()\[\]]*$")
#: the letters / signs a found sign is written inside ("крб." around "р")
_WORD_END = re.compile(r"[^\s\d]*\Z")
_WORD_START = re.compile(r"\A[^\s\d]*")
_UPPER_CODE = re.compile(r"\b[A-Z]{3}\b")
#: a unit after a quantity: two-word units, a word, "%", an inch mark, a multiplication sign
_UNIT_TOKEN = re.compile(r"(?:fl\.? ?oz|sq\.? ?ft|[^\W\d_]+(?:[״\"'][^\W\d_]+)?\.?|%|\"|″|×)")
#: a written number: digits with the group / decimal separators price-parser reads
_NUMBER_RUN = re.compile(r"\d(?:[\d\s'’.,]*\d)?")


def _amount_span(text: str, amount_text: str | None) -> tuple[int, int] | None:
    """Where price-parser's amount text is written in `text` (it drops "'" and reads spaces as " ")."""
    if not amount_text:
        return None
    i = text.find(amount_text)
    if i >= 0:
        return i, i + len(amount_text)
    digits = re.sub(r"\D", "", amount_text)
    for m in _NUMBER_RUN.finditer(text):
        if re.sub(r"\D", "", m.group(0)).startswith(digits) and digits:
            return m.start(), m.end()
    return None


def _residual_currency(
    text: str, amount_text: str | None, codes: bool = True, country: str | None = None, names: bool = True
) -> str | None:
    """A currency token written right next to the amount ("2963yen", "1.198,- Kr", "1 руб.", "Q 12").

    Any CLDR symbol, name or ISO code counts (`is_currency_token`), either as all the text beside
    the amount or as the token touching it; with `codes`, also an unknown upper-case three-letter
    code standing alone next to the amount ("XYZ 12.00"), kept as written. Without `names`, a token
    beside the amount counts only as a symbol or an upper-case code (a hint is free text: "16 von 5"
    is no Hungarian won).
    """
    span = _amount_span(text, amount_text)
    start, end = span if span else (len(text), len(text))
    whole = (text[:start] + " " + text[end:]).strip()
    rest = whole.strip(_RESIDUAL_STRIP)
    if not rest:
        return None
    for cand in dict.fromkeys((whole, rest)):  # "S/" as written, else without the punctuation
        if is_currency_token(cand, 0 <= text.find(cand) < start, country):
            return cand
    if codes and _CODE_RE.match(rest) and rest not in _NOT_CODES:
        return rest  # an unknown but well-formed ISO-looking code kept as written ("XYZ 12.00")
    if span is None:
        return None
    after = _TOKEN_AFTER.match(text[end:])
    before = _TOKEN_BEFORE.search(text[:start])
    if _unit_after(text[end:]):
        after = None  # "2 fl oz": the unit, not "fl" (florin)
    for m, prefix in ((after, False), (before, True)):
        token = m.group(1).strip(_RESIDUAL_STRIP) if m else ""
        lower_code = len(token) == 3 and not token.isupper() and token.upper() in ALL_ISO_CURRENCIES
        if not names and not (is_symbol(token) or token in ALL_ISO_CURRENCIES):
            continue
        if len(token) > 1 and not lower_code and is_currency_token(token, prefix, country):
            return token
    return None


def _inside_word(text: str, sign: str) -> bool:
    """Whether an alphabetic sign only ever ends or sits inside a word ("р" in "Номер товара").

    A sign starting a word stays ("руб" of "рублей", "yen" of "2963yen").
    """
    if not sign[:1].isalpha():
        return False
    starts = [m.start() for m in re.finditer(re.escape(sign), text)]
    return bool(starts) and all(i > 0 and text[i - 1].isalpha() for i in starts)


def _unit_after(rest: str) -> str | None:
    """A unit of two words written first after the amount ("fl oz", "sq ft"), else None."""
    words = rest.split()[:2]
    if len(words) == 2 and is_quantity_unit(" ".join(words)):
        return " ".join(words)
    return None


def _compound(text: str, sign: str) -> str:
    """Widen a found sign with adjacent letters when together they are a currency ("US $", "Bs.S", "£IL")."""
    i = text.find(sign)
    if i < 0:
        return sign
    head = _WORD_END.findall(text[:i])[0]
    tail = _WORD_START.findall(text[i + len(sign) :])[0]
    word = (head + sign + tail).strip(_RESIDUAL_STRIP)
    if word != sign and sign in word and (is_symbol(word) or word in ALL_ISO_CURRENCIES):
        return word  # the whole token around the sign is a CLDR symbol ("крб." around "р", "S/")
    for k in range(3, 0, -1):  # prefixes like "AU ", "RD", "E"
        for sep in (" ", ""):
            start = i - k - len(sep)
            if start >= 0 and text[start:i] == text[start : start + k] + sep:
                cand = text[start:i] + sign
                if (
                    text[start : start + k].isalpha()
                    and (start == 0 or not text[start - 1].isalpha())
                    and currency_candidates(text[start : start + k] + sign)
                ):
                    return cand
    j = i + len(sign)
    for k in range(4, 0, -1):  # suffixes like "b", ".", ".S", "IL" that make a CLDR symbol
        tail = text[j : j + k]
        if len(tail) == k and all(c.isalpha() or c == "." for c in tail) and not text[j + k : j + k + 1].isalpha():
            if is_symbol(sign + tail) or sign + tail in ALL_ISO_CURRENCIES:  # "MK" + "N": the code MKN
                return sign + tail
    return sign


def parse_price(
    text: object,
    currency_hint: str | None = None,
    decimal_separator: str | None = None,
    *,
    country: str | None = None,
    locale: str | None = None,
) -> ParsedPrice:
    """Parse a price text ("$1,234.50", "12,99 €", "2963yen", 12.5) into amount + ISO currency + raw currency.

    price-parser reads the amount (either decimal separator; `decimal_separator` forces one) and the
    common currency signs, from the text or else from `currency_hint`; every other currency CLDR
    writes (symbols, codes, names, in every locale) is recognised next to the amount, kept exactly
    as written in `currency_raw`, with its ISO code in `currency` and all codes it may mean in
    `currency_candidates`. `country` ("CA") or `locale` ("fr_CA") resolves a shared sign ("$" ->
    CAD). An amount next to a unit of measure and no currency ("500 g", "1.5 l", "12 x 500 ml") is
    a quantity, not a price: amount None.
    """
    country = country or territory_of(locale)
    if text is None or (isinstance(text, float) and np.isnan(text)):
        hint = _hint_currency(currency_hint, country)
        return _with_currency(ParsedPrice(None, None, hint), hint, "", country)
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        try:
            amount: Decimal | None = Decimal(str(text))
        except InvalidOperation:  # pragma: no cover - str() of a number is always parseable
            amount = None
        hint = _hint_currency(currency_hint, country)
        return _with_currency(ParsedPrice(amount, None, hint), hint, "", country)
    s = normalise_text(str(text))
    special = _special_forms(s, currency_hint, decimal_separator, country)
    if special is not None:
        return special
    parsed = Price.fromstring(s, decimal_separator=decimal_separator)
    amount = parsed.amount
    if amount is not None and amount < 0:
        amount = None
    raw = parsed.currency
    if raw is not None and _inside_word(s, raw):
        raw = None  # a letter inside a word ("р" of "товара") is no currency sign
    if raw is not None:
        raw = _compound(s, raw)
        span = _amount_span(s, parsed.amount_text)
        at = span[0] if span else -1
        if not is_currency_token(raw, 0 <= s.find(raw) < at, country) and not _CODE_RE.match(raw):
            raw = None  # price-parser's sign is a unit here ("1.5 L")
    if raw is None and amount is not None:
        cents = _cents(s, amount, parsed.amount_text, country)
        if cents is not None:
            return cents
    if raw is None:
        raw = _residual_currency(s, parsed.amount_text, country=country)
    if raw is None and amount is not None and _is_quantity(s, parsed.amount_text):
        amount = None
    if raw is None and currency_hint:
        raw = _hint_currency(currency_hint, country)
    return _with_currency(ParsedPrice(amount, None, _clean_raw(raw)), raw, s, country)


#: U+00A2 CENT SIGN right after an amount ("99¢", "99 ¢")
_CENT_AFTER = re.compile(r"\s?¢")


def _cents(text: str, amount: Decimal, amount_text: str | None, country: str | None) -> ParsedPrice | None:
    """An amount in cents ("99¢" -> 0.99 USD), else None.

    The cent sign (U+00A2 CENT SIGN) is no currency of its own: it writes hundredths of a dollar, so
    "99¢" is 0.99 of a currency legal tender today that CLDR writes "$" and whose minor unit is a
    hundredth (ISO-4217 exponent 2, `babel.numbers.get_currency_precision`), resolved like "$" (country,
    else USD). Only after the amount: a "¢" before it is how Costa Rica types its colón sign "₡".
    """
    span = _amount_span(text, amount_text)
    if span is None or not _CENT_AFTER.match(text, span[1]) or "$" in text:
        return None
    current = currency_table().current
    cands = tuple(c for c in currency_candidates("$") if c in current and get_currency_precision(c) == 2)
    return ParsedPrice(amount / 100, resolve_currency(cands, country), "¢", currency_candidates=cands)


def _with_currency(parsed: ParsedPrice, raw: str | None, text: str, country: str | None) -> ParsedPrice:
    """Fill the ISO code and candidates of the written currency; a code in the text resolves a shared sign."""
    cands = currency_candidates(raw) if raw else ()
    declared = next((w for w in _UPPER_CODE.findall(text) if w in cands), None) if len(cands) > 1 else None
    currency = resolve_currency(cands, country, declared)
    return ParsedPrice(parsed.amount, currency, parsed.currency_raw, parsed.quantity, parsed.unit, cands)


def _is_quantity(text: str, amount_text: str | None) -> bool:
    """Whether the amount is a quantity: a unit of measure right after it, or "x" / "×" before it."""
    span = _amount_span(text, amount_text)
    if span is None:
        return False
    after = text[span[1] :].strip()
    before = text[: span[0]].strip()
    m = _UNIT_TOKEN.match(after)
    if m and is_quantity_unit(m.group(0)):
        return True
    return before[-1:] in ("x", "×") and (len(before) == 1 or not before[-2].isalpha())


#: words introducing the current price of a was/now pair, in the languages shops use
_NOW_WORDS = re.compile(
    r"(?<![^\W\d_])(?:now|jetzt|nu|maintenant|ahora|agora|ora|teraz|nyt|nå)\b(?:\s*:\s*|\s+)", re.IGNORECASE
)
#: words introducing a former / list price
_WAS_WORDS = re.compile(
    r"^\s*(?:was|before|statt|avant|antes|prima|era|przed|f[öo]rr|tidligere|aiemmin)\b", re.IGNORECASE
)
#: "2 for $5", "3 für 10 €", "2/$5": a multi-buy (quantity, then the price of all of them)
_MULTI_BUY = re.compile(r"^\s*(?P<n>\d{1,3})\s*(?:for|für|pour|por|per|voor|za|/)\s*(?P<price>.*\d.*)$", re.IGNORECASE)
#: "/oz", "per kg", "/100 g" after the amount: a unit price
_UNIT = re.compile(
    r"(?:/|\bper\s+|\bpro\s+|\bje\s+|\bpar\s+)\s*(?P<unit>(?:\d+\s*)?[^\W\d_]{1,6}\.?)\s*$", re.IGNORECASE
)


def _special_forms(s: str, hint: str | None, sep: str | None, country: str | None) -> ParsedPrice | None:
    """Was/now pairs, multi-buys and unit prices, which price-parser reads as their first number."""
    m = _MULTI_BUY.match(s)
    if m and any(c.isdigit() for c in m.group("price")):
        inner = parse_price(m.group("price"), hint, sep, country=country)
        if inner.amount is not None and (inner.currency_raw or "/" not in s[m.start("n") : m.start("price")]):
            return replace(inner, quantity=int(m.group("n")))
    now = [w for w in _NOW_WORDS.finditer(s) if any(c.isdigit() for c in s[w.end() :])]
    if now:
        inner = parse_price(s[now[-1].end() :], hint, sep, country=country)
        if inner.amount:  # a zero "now" is a placeholder ("Was: $124.95 Now: $0.00"): keep the other
            return inner
    elif _WAS_WORDS.match(s):
        first = Price.fromstring(s, decimal_separator=sep)
        if first.amount_text:
            rest = s[s.find(first.amount_text) + len(first.amount_text) :]
            after = parse_price(rest, hint, sep, country=country) if any(c.isdigit() for c in rest) else None
            if after is not None and after.amount:
                return after
    unit = _UNIT.search(s)
    if unit and any(c.isdigit() for c in s[: unit.start()]):
        inner = parse_price(s[: unit.start()], hint, sep, country=country)
        if inner.amount is not None:
            return replace(inner, unit=unit.group("unit").strip().rstrip(".").lower())
    return None


def _hint_currency(hint: str | None, country: str | None = None) -> str | None:
    """The currency in a separate hint text ("GBP", "Price: $ 34.44", "2 069 рублей"), as written."""
    if hint is None or not str(hint).strip():
        return None
    hint = str(hint)
    found = Price.fromstring(hint).currency
    if found is None:
        found = Price.fromstring(None, currency_hint=hint).currency
    if found is not None and not _inside_word(hint, found.strip()):
        return _compound(hint, found.strip())
    parsed = Price.fromstring(hint)
    return _residual_currency(hint, parsed.amount_text, codes=False, country=country, names=False)


def _clean_raw(raw: str | None) -> str | None:
    """Strip a raw currency token; None when empty."""
    if raw is None:
        return None
    raw = str(raw).strip()
    return raw or None
