"""Layer (d): heuristic price (itemprop/meta, price-named elements, price text near the title), title, stock."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lxml import etree
from price_parser import Price

from priceintel.clean import parse_price
from priceintel.items import DISCONTINUED, IN_STOCK, OUT_OF_STOCK
from priceintel.scrape.layers.fields import _Fields
from priceintel.scrape.layers.page import _memo, _norm_text
from priceintel.scrape.layers.select import _select
from priceintel.scrape.layers.text import _PRICE_ELEMS, _first_h1, _in_tag, _struck_text, _text_nodes, _title_index

_PRICE_TEXT = re.compile(
    r"(?:[$€£¥₹]|\b(?:USD|EUR|GBP|CAD|AUD)\b)\s?\d[\d.,]*|\d[\d.,]*\s?(?:[€£]|\b(?:USD|EUR|GBP)\b)"
)
#: class/id tokens marking a price that is not the selling price (was, list, unit, shipping …)
_NOT_MAIN_PRICE = frozenset(
    {
        "strike",
        "strikethrough",
        "was",
        "regular",
        "list",
        "old",
        "original",
        "save",
        "savings",
        "shipping",
        "unit",
        "per",
        "msrp",
        "rrp",
        "reg",
    }
)
_TOKEN_SPLIT = re.compile(r"[\s_-]+")


def _layer_heuristics(tree: Any, f: _Fields) -> None:
    """(d) itemprop/meta prices, then the first prominent currency-looking text in a price element."""
    if not f.has("price"):
        for sel, method in (
            ("[itemprop=price]::attr(content)", "heuristic:itemprop"),
            ("[itemprop=price]", "heuristic:itemprop"),
            ("meta[property='product:price:amount']::attr(content)", "heuristic:meta"),
            ("meta[property='og:price:amount']::attr(content)", "heuristic:meta"),
            ("meta[property='og:price']::attr(content)", "heuristic:meta"),
            ("meta[property='product:price']::attr(content)", "heuristic:meta"),
        ):
            value = _select(tree, sel)
            if value is not None:
                cur = _select(tree, "[itemprop=priceCurrency]::attr(content)") or _select(
                    tree, "meta[property='product:price:currency']::attr(content)"
                )
                if cur:
                    f.hint_currency(cur, method)
                if f.set_price("price", value, method):
                    break
    if not f.has("price") and f.values.get("availability") not in (OUT_OF_STOCK, DISCONTINUED):
        text = _prominent_price(tree, generic=f.adapter.name == "generic")
        if text is not None:
            f.set_price("price", text[0], text[1])
    if not f.has("title"):
        for sel in ("meta[property='og:title']::attr(content)", "h1", "title"):
            if f.set("title", _select(tree, sel), f"heuristic:{sel.split('[')[0].split(':')[0]}"):
                break
    if not f.has("availability"):
        f.set(
            "availability",
            _select(tree, "[itemprop=availability]::attr(href)")
            or _select(tree, "[itemprop=availability]::attr(content)"),
            "heuristic:itemprop",
        )
    if f.adapter.name == "generic" and f.values.get("availability") == OUT_OF_STOCK and _buy_button(tree):
        # structured data often reports one sold-out variant while the page still sells the product
        f.values["availability"], f.methods["availability"] = IN_STOCK, "heuristic:buy-button"


_BUY_WORDS = (
    "add-to-basket",
    "add-to-cart",
    "addtocart",
    "add-to-bag",
    "addtobag",
    "add_to_cart",
    "addtobasket",
    "add_to_basket",
    "add to basket",
    "add to cart",
    "add to bag",
)
_BUY_BUTTONS = etree.XPath("//body//button[not(@disabled)] | //body//input[@type='submit'][not(@disabled)]")
_NOT_MAIN = (
    "recommend",
    "carousel",
    "product-card",
    "related",
    "upsell",
    "crosssell",
    "cross-sell",
    "unavailable",
    "disabled",
    "hidden",
    "sold-out",
    "soldout",
)


def _buy_button(tree: Any) -> bool:
    """Whether the page has an enabled add-to-cart button of its own (not in recommendations)."""
    for el in _BUY_BUTTONS(tree):
        marker = " ".join(str(el.get(a, "")) for a in ("id", "class", "data-test", "data-cy", "name")).lower()
        if not any(w in marker for w in _BUY_WORDS) or el.get("hidden") is not None:
            continue
        chain = [el, *list(el.iterancestors())[:8]]
        if any(any(w in str(a.get("class", "")).lower() for w in _NOT_MAIN) for a in chain):
            continue
        return True
    return False


def _prominent_price(tree: Any, generic: bool) -> tuple[str, str] | None:
    """(price text, method) from the first price-named element; any short text only for generic shops."""
    struck = _struck_memo(tree)
    for el in _PRICE_ELEMS(tree):
        if struck(el) or any(struck(a) for a in el.iterancestors()):
            continue
        text = _norm_text(el.text_content()) or ""
        m = _PRICE_TEXT.search(text) if len(text) <= 80 else None
        if m:
            return m.group(0), "heuristic:price-element"
    if generic:
        return _price_element_near_title(tree) or _described_price(tree) or _price_near_title(tree)
    return None


_DESCRIPTIONS = etree.XPath(
    "//meta[@property='og:description' or @name='description' or @name='twitter:description']/@content"
)


def _described_price(tree: Any) -> tuple[str, str] | None:
    """A currency-marked price in the page description, kept only when the body prints the same amount."""
    for desc in _DESCRIPTIONS(tree):
        m = _PRICE_TEXT.search(desc or "")
        if not m:
            continue
        amount = parse_price(m.group(0)).amount
        if amount is None or amount <= 0:
            continue
        for text in _text_nodes(tree)[1]:
            if text and len(text) <= 24 and len(_NUMBER.findall(text)) == 1 and parse_price(text).amount == amount:
                return m.group(0), "heuristic:description+body"
    return None


_UNSTRUCK_TEXT = etree.XPath(
    ".//text()[not(ancestor::s or ancestor::del or ancestor::strike or ancestor::script or ancestor::style)]"
)
_NUMBER = re.compile(r"\d(?:[\d.,\u00a0\u202f ]*\d)?")


def _price_element_near_title(tree: Any) -> tuple[str, str] | None:
    """First price-named element (not struck, not a link) reading as amount + currency, after the <h1>.

    Elements before the title (navigation, banners) are used only when none follows it.
    """
    h1 = _first_h1(tree)
    order = {el: i for i, el in enumerate(tree.iter())} if h1 else {}
    title_at = order.get(h1[0], 0) if h1 else 0
    first: tuple[str, str] | None = None
    struck = _struck_memo(tree)
    for el in _PRICE_ELEMS(tree):
        if struck(el) or any(struck(a) or a.tag == "a" for a in el.iterancestors()):
            continue
        text = _norm_text(" ".join(_UNSTRUCK_TEXT(el))) or ""
        if not text or len(text) > 60 or len(_NUMBER.findall(text)) != 1:
            continue  # one amount only: a was/now pair or a quantity is not a clean price
        m = _PRICE_TEXT.search(text)
        parsed = parse_price(m.group(0) if m else text)
        if parsed.amount is None or parsed.amount <= 0 or parsed.currency_raw is None:
            continue
        value = m.group(0) if m else text
        if order.get(el, 0) >= title_at:
            return value, "heuristic:price-element"
        first = first or (value, "heuristic:price-element")
    return first


def _price_near_title(tree: Any) -> tuple[str, str] | None:
    """The first price-only text at or after the product title (<h1>), outside links; else the first one."""
    parents, texts = _text_nodes(tree)
    title_at = _title_index(tree, parents)
    first: tuple[str, str] | None = None
    for i, parent in enumerate(parents):
        text = texts[i]
        if (
            not text
            or len(text) > 40
            or not any(c.isdigit() for c in text)
            or _in_tag(parent, "a")
            or _struck_text(parent)
        ):
            continue
        m = _PRICE_TEXT.search(text)
        value = m.group(0) if m else (text if len(text) <= 24 and _is_price_text(text) else None)
        if value is None:
            continue
        if title_at is None:
            return value, "heuristic:text"
        if i >= title_at:
            return value, "heuristic:text-after-title"
        first = first or (value, "heuristic:text")
    return first


_PRICE_REST = re.compile(r"[\s.,:;*/()\-–—]*")


def _is_price_text(text: str) -> bool:
    """A short text that is only an amount and a currency ("131 990 тг.", "1.199,- Kr")."""
    parsed = parse_price(text)
    if parsed.amount is None or parsed.amount <= 0 or parsed.currency_raw is None:
        return False
    amount_text = Price.fromstring(text).amount_text or ""
    rest = text.replace(amount_text, "", 1).replace(parsed.currency_raw, "", 1)
    return _PRICE_REST.fullmatch(rest) is not None


def _struck_memo(tree: Any) -> Callable[[Any], bool]:
    """`_is_struck`, remembered per element for the page (price elements share their ancestors)."""
    seen: dict = _memo(tree, "struck", dict)

    def struck(el: Any) -> bool:
        found = seen.get(el)
        if found is None:
            found = seen[el] = _is_struck(el)
        return found

    return struck


def _is_struck(el: Any) -> bool:
    """Whether an element marks a struck-through / was / list / unit price."""
    if el.get("data-a-strike") == "true" or el.tag in ("del", "s", "strike"):
        return True
    marker = " ".join(str(el.get(a, "")) for a in ("class", "id", "data-test")).lower()
    if "text-price" in marker:
        return True
    tokens = _TOKEN_SPLIT.split(marker)
    for i, token in enumerate(tokens):
        if token in _NOT_MAIN_PRICE:
            # "list" marks a list price only as "list-price"; alone it is a layout word
            # (Bootstrap's "list-unstyled", "product-list", an id "price-list" for a block of prices)
            if token != "list" or (i + 1 < len(tokens) and tokens[i + 1] == "price"):
                return True
    return "listprice" in tokens
