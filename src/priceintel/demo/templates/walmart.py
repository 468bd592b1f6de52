"""Walmart-like product page: tiny HTML plus the Next.js `__NEXT_DATA__` JSON state."""

from __future__ import annotations

import html
from typing import Any

from priceintel.demo.templates.page import canonical, document, money, script_json


def product_page(
    base_url: str, item_id: str, info: tuple, in_stock: bool, price: float | None, was: float | None
) -> str:
    """The page of `item_id` (info = url, title, brand, gtin, mpn, category); priceInfo prices null without one."""
    url, title, brand, gtin, mpn, _cat = info
    product: dict[str, Any] = {"usItemId": item_id, "name": title}
    if brand:
        product["brand"] = brand
    if gtin:
        product["upc"] = gtin
    if mpn:
        product["model"] = mpn
    product["availabilityStatus"] = "IN_STOCK" if in_stock else "OUT_OF_STOCK"
    product["sellerName"] = "Walmart.com"
    product["canonicalUrl"] = url
    product["priceInfo"] = {"currentPrice": _money_info(price), "wasPrice": _money_info(was)}
    state = {
        "props": {"pageProps": {"initialData": {"data": {"product": product}}}},
        "page": "/ip/[...slug]",
        "buildId": "demo",
    }
    body = (
        f'<div id="__next"><h1 itemprop="name">{html.escape(title)}</h1></div>'
        f'<script id="__NEXT_DATA__" type="application/json">{script_json(state)}</script>'
    )
    return document(f"{title} - Walmart.com", body, canonical(base_url, url))


def _money_info(x: float | None) -> dict | None:
    """A price as the JSON state writes it (None stays null)."""
    return None if x is None else {"price": x, "priceString": money(x), "currencyUnit": "USD"}
