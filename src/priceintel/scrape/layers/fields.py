"""The extraction state: field values (first writer wins), the method that produced each, prices with currency."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property
from typing import Any

from priceintel.clean import AMBIGUOUS_SIGNS, currency_in_context, format_amount, parse_price
from priceintel.items import DISCONTINUED, IN_STOCK, LIMITED, OUT_OF_STOCK, PREORDER, valid_gtin
from priceintel.scrape.adapters import Adapter
from priceintel.scrape.layers.page import _norm_text

_SCHEMA_AVAIL = {
    "instock": IN_STOCK,
    "outofstock": OUT_OF_STOCK,
    "limitedavailability": LIMITED,
    "preorder": PREORDER,
    "presale": PREORDER,
    "discontinued": DISCONTINUED,
    "soldout": OUT_OF_STOCK,
    "onlineonly": IN_STOCK,
    "instoreonly": IN_STOCK,
    "backorder": PREORDER,
}


def _first(value: Any) -> Any:
    """First element of a list (or the value itself)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _name_of(value: Any) -> str | None:
    """`name` of a JSON-LD Thing (brand, seller), or the string itself."""
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("name")
    return _norm_text(value) if isinstance(value, (str, int, float)) else None


def _avail(value: Any, adapter: Adapter) -> str | None:
    """schema.org availability URL from a schema value or page text."""
    value = _norm_text(_first(value))
    if value is None:
        return None
    key = value.rsplit("/", 1)[-1].lower().replace(" ", "")
    if key in _SCHEMA_AVAIL:
        return _SCHEMA_AVAIL[key]
    return adapter.normalise_availability(value)


class _Fields:
    """Accumulates field values (first writer wins) and the method that produced each."""

    def __init__(
        self,
        adapter: Adapter,
        country: Callable[[], str | None] | None = None,
        page_currency: Callable[[], tuple[str, str] | None] | None = None,
    ) -> None:
        self.adapter = adapter
        self._country = country
        self._page_currency = page_currency
        self.values: dict[str, Any] = {}
        self.methods: dict[str, str] = {}

    @cached_property
    def country(self) -> str | None:
        """The page's country (ccTLD, <html lang> or og:locale region), read only when a sign is ambiguous."""
        return self._country() if self._country is not None else None

    @cached_property
    def page_currency(self) -> tuple[str, str] | None:
        """(currency as written, method) of the page's context, read only for a price without a currency."""
        return self._page_currency() if self._page_currency is not None else None

    def has(self, name: str) -> bool:
        """Whether a field already has a value."""
        return self.values.get(name) is not None

    def set(self, name: str, value: Any, method: str) -> bool:
        """Set a field unless already set or the value is empty/invalid; True when stored."""
        if self.has(name) or value is None:
            return False
        if name in ("price", "list_price"):
            return self.set_price(name, value, method)
        if name == "gtin":
            value = valid_gtin(value)
        elif name == "availability":
            value = _avail(value, self.adapter)
        elif name == "rating":
            rating: Any = _first(value) if not isinstance(value, dict) else value.get("ratingValue")
            try:
                value = float(rating)
            except (TypeError, ValueError):
                value = None
        elif name == "image":
            value = _first(value)
            value = value.get("url") if isinstance(value, dict) else value
            value = _norm_text(value)
        elif name in ("brand", "seller"):
            value = _name_of(value)
        else:
            value = _norm_text(_first(value))
        if name in self.adapter.field_regex and isinstance(value, str):
            m = re.search(self.adapter.field_regex[name], value)
            if m:
                value = next((g for g in m.groups() if g), value)
                value = _norm_text(value)
        if value is None:
            return False
        self.values[name] = value
        self.methods[name] = method
        return True

    def set_price(
        self, name: str, value: Any, method: str, hint: str | None = None, hint_method: str | None = None
    ) -> bool:
        """Parse and store a price/list price (and the currency, from its text or the hint)."""
        parsed = parse_price(value)
        if parsed.amount is None or (name == "price" and parsed.amount <= 0):
            return False  # a zero price is a placeholder (no price shown, "call for price"), not a price
        self.values[name] = format_amount(parsed.amount)
        self.methods[name] = method
        if name != "price":
            return True
        if not self.has("price_raw"):
            self.values["price_raw"] = _norm_text(value)
            self.methods["price_raw"] = method
        if not self.has("currency_raw"):
            raw, cur_method = parsed.currency_raw, method
            if raw is None:
                raw = hint or self.values.get("_currency_hint")
                cur_method = (hint_method or method) if hint else self.methods.get("_currency_hint", method)
            if raw is None and self.page_currency is not None:
                raw, cur_method = self.page_currency
            if raw is not None:
                self.values["currency_raw"] = raw
                iso = parsed.currency if parsed.currency_raw else parse_price(None, raw).currency
                if str(raw).strip().rstrip(".").lower() in AMBIGUOUS_SIGNS:  # "$", "kr", "¥": whose?
                    iso = currency_in_context(raw, iso, self.country, self.values.get("_currency_hint"))
                self.values["currency"] = iso
                self.methods["currency"] = cur_method
        return True

    def hint_currency(self, raw: Any, method: str) -> None:
        """Remember a currency given beside a numeric price (e.g. JSON-LD priceCurrency)."""
        raw = _norm_text(raw)
        if raw and "_currency_hint" not in self.values:
            self.values["_currency_hint"] = raw
            self.methods["_currency_hint"] = method
