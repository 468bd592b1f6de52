"""Price texts -> amount + ISO currency + currency as written (`parse_price`, `ParsedPrice`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

import numpy as np
from price_parser import Price

from priceintel.clean.currencies import (
    _CODE_RE,
    _EXTRA_LOWER,
    _NOT_CODES,
    _PP_CODES,
    COMPOUND_CURRENCIES,
    normalise_currency,
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


def _residual_currency(text: str, amount_text: str | None, codes: bool = True) -> str | None:
    """A known extra currency token written right next to the amount ("2963yen", "1.198,- Kr").

    An ISO code in any case counts ("1 nzd"); with `codes`, also an unknown upper-case three-letter
    code standing alone next to the amount ("XYZ 12.00"), kept as written.
    """
    rest = text.replace(amount_text, " ", 1) if amount_text else text
    rest = rest.strip(_RESIDUAL_STRIP)
    if not rest:
        return None
    if rest.lower() in _EXTRA_LOWER or rest.upper() in _PP_CODES:
        return rest
    if codes and _CODE_RE.match(rest) and rest not in _NOT_CODES:
        return rest  # an unknown but well-formed ISO-looking code kept as written ("XYZ 12.00")
    words = rest.split()
    for word in (words[0], words[-1]) if len(words) > 1 else ():
        w = word.strip(_RESIDUAL_STRIP)
        if w.lower() in _EXTRA_LOWER and len(w) > 1:
            return w
    return None


def _compound(text: str, sign: str) -> str:
    """Widen a found sign with adjacent letters when they form a known compound ("US $", "$b", "E£")."""
    i = text.find(sign)
    if i < 0:
        return sign
    for k in range(3, 0, -1):  # prefixes like "AU ", "RD", "E"
        for sep in (" ", ""):
            start = i - k - len(sep)
            if start >= 0 and text[start:i] == text[start : start + k] + sep:
                cand = text[start:i] + sign
                if cand in COMPOUND_CURRENCIES and (start == 0 or not text[start - 1].isalpha()):
                    return cand
    after = text[i + len(sign) : i + len(sign) + 1]
    if after and (sign + after) in COMPOUND_CURRENCIES:
        return sign + after
    return sign


def parse_price(text: object, currency_hint: str | None = None, decimal_separator: str | None = None) -> ParsedPrice:
    """Parse a price text ("$1,234.50", "12,99 €", "2963yen", 12.5) into amount + ISO currency + raw currency.

    price-parser reads the amount (either decimal separator; `decimal_separator` forces one) and the
    common currency signs, from the text or else from `currency_hint`; we add local abbreviations
    and names (`EXTRA_CURRENCIES`) and compound signs ("US $", "E£"), kept exactly as written.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        hint = _hint_currency(currency_hint)
        return ParsedPrice(None, normalise_currency(hint), hint)
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        try:
            amount: Decimal | None = Decimal(str(text))
        except InvalidOperation:  # pragma: no cover - str() of a number is always parseable
            amount = None
        hint = _hint_currency(currency_hint)
        return ParsedPrice(amount, normalise_currency(hint), hint)
    s = str(text)
    special = _special_forms(s, currency_hint, decimal_separator)
    if special is not None:
        return special
    parsed = Price.fromstring(s, decimal_separator=decimal_separator)
    amount = parsed.amount
    if amount is not None and amount < 0:
        amount = None
    raw = parsed.currency
    if raw is not None:
        raw = _compound(s, raw)
    else:
        raw = _residual_currency(s, parsed.amount_text)
    if raw is None and currency_hint:
        raw = _hint_currency(currency_hint)
    return ParsedPrice(amount, normalise_currency(raw), _clean_raw(raw))


#: words introducing the current price of a was/now pair, in the languages shops use
_NOW_WORDS = re.compile(
    r"(?<![^\W\d_])(?:now|jetzt|nu|maintenant|ahora|agora|ora|teraz|nyt|nå)\b\s*:?\s*", re.IGNORECASE
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


def _special_forms(s: str, hint: str | None, sep: str | None) -> ParsedPrice | None:
    """Was/now pairs, multi-buys and unit prices, which price-parser reads as their first number."""
    m = _MULTI_BUY.match(s)
    if m and any(c.isdigit() for c in m.group("price")):
        inner = parse_price(m.group("price"), hint, sep)
        if inner.amount is not None and (inner.currency_raw or "/" not in s[m.start("n") : m.start("price")]):
            return replace(inner, quantity=int(m.group("n")))
    now = [w for w in _NOW_WORDS.finditer(s) if any(c.isdigit() for c in s[w.end() :])]
    if now:
        inner = parse_price(s[now[-1].end() :], hint, sep)
        if inner.amount:  # a zero "now" is a placeholder ("Was: $124.95 Now: $0.00"): keep the other
            return inner
    elif _WAS_WORDS.match(s):
        first = Price.fromstring(s, decimal_separator=sep)
        if first.amount_text:
            rest = s[s.find(first.amount_text) + len(first.amount_text) :]
            after = parse_price(rest, hint, sep) if any(c.isdigit() for c in rest) else None
            if after is not None and after.amount:
                return after
    unit = _UNIT.search(s)
    if unit and any(c.isdigit() for c in s[: unit.start()]):
        inner = parse_price(s[: unit.start()], hint, sep)
        if inner.amount is not None:
            return replace(inner, unit=unit.group("unit").strip().rstrip(".").lower())
    return None


def _hint_currency(hint: str | None) -> str | None:
    """The currency in a separate hint text ("GBP", "Price: $ 34.44", "2 069 рублей"), as written."""
    if hint is None or not str(hint).strip():
        return None
    hint = str(hint)
    found = Price.fromstring(hint).currency
    if found is None:
        found = Price.fromstring(None, currency_hint=hint).currency
    if found is not None:
        return _compound(hint, found.strip())
    parsed = Price.fromstring(hint)
    return _residual_currency(hint, parsed.amount_text, codes=False)


def _clean_raw(raw: str | None) -> str | None:
    """Strip a raw currency token; None when empty."""
    if raw is None:
        return None
    raw = str(raw).strip()
    return raw or None
