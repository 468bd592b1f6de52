"""Layer (d): heuristic price (itemprop/meta, the likeliest printed price: `candidates`), title, stock."""

from __future__ import annotations

from typing import Any

from lxml import etree

from priceintel.clean import parse_price
from priceintel.items import DISCONTINUED, IN_STOCK, OUT_OF_STOCK
from priceintel.scrape.adapters import Adapter
from priceintel.scrape.layers.candidates import NUMBER, PRICE_TEXT, best_price, buy_button, struck_memo
from priceintel.scrape.layers.fields import _Fields
from priceintel.scrape.layers.page import _norm_text
from priceintel.scrape.layers.select import _select
from priceintel.scrape.layers.text import _PRICE_ELEMS, _text_nodes


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
        text = _prominent_price(tree, f.adapter)
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


def _buy_button(tree: Any) -> bool:
    """Whether the page has an enabled add-to-cart button of its own (not in recommendations)."""
    return buy_button(tree) is not None


def _prominent_price(tree: Any, adapter: Adapter) -> tuple[str, str] | None:
    """(price text, method): for a generic shop the likeliest current price among the page's candidates
    (`candidates.best_price`), else a price in the description confirmed by the body; for a known shop
    only the first price-named element that is not crossed out."""
    if adapter.name == "generic":
        return best_price(tree, adapter.struck_marks) or _described_price(tree)
    struck = struck_memo(tree, adapter.struck_marks)
    for el in _PRICE_ELEMS(tree):
        if struck(el) or any(struck(a) for a in el.iterancestors()):
            continue
        text = _norm_text(el.text_content()) or ""
        m = PRICE_TEXT.search(text) if len(text) <= 80 else None
        if m:
            return m.group(0), "heuristic:price-element"
    return None


_DESCRIPTIONS = etree.XPath(
    "//meta[@property='og:description' or @name='description' or @name='twitter:description']/@content"
)


def _described_price(tree: Any) -> tuple[str, str] | None:
    """A currency-marked price in the page description, kept only when the body prints the same amount."""
    for desc in _DESCRIPTIONS(tree):
        m = PRICE_TEXT.search(desc or "")
        if not m:
            continue
        amount = parse_price(m.group(0)).amount
        if amount is None or amount <= 0:
            continue
        for text in _text_nodes(tree)[1]:
            if text and len(text) <= 24 and len(NUMBER.findall(text)) == 1 and parse_price(text).amount == amount:
                return m.group(0), "heuristic:description+body"
    return None
