"""Target-like product page: schema.org JSON-LD Product plus `data-test` HTML."""

from __future__ import annotations

import html
from typing import Any

from priceintel.demo.templates.page import canonical, document, money, script_json


def product_page(base_url: str, tcin: str, info: tuple, in_stock: bool, price: float | None, was: float | None) -> str:
    """The page of `tcin` (info = url, title, brand, gtin, mpn, category); the Offer has no price without one."""
    url, title, brand, gtin, mpn, _cat = info
    offer: dict[str, Any] = {"@type": "Offer"}
    if price is not None:
        offer["price"] = f"{price:.2f}"
    offer["priceCurrency"] = "USD"
    offer["availability"] = "https://schema.org/InStock" if in_stock else "https://schema.org/OutOfStock"
    offer["url"] = base_url + url
    ld: dict[str, Any] = {"@context": "https://schema.org/", "@type": "Product", "name": title, "sku": tcin}
    if gtin:
        ld["gtin13"] = gtin
    if mpn:
        ld["mpn"] = mpn
    if brand:
        ld["brand"] = {"@type": "Brand", "name": brand}
    ld["offers"] = offer
    price_html = ""
    if price is not None:
        price_html = f'<span data-test="product-price">{money(price)}</span>'
        if was is not None:
            price_html += f' <span data-test="product-regular-price">reg {money(was)}</span>'
    stock = "In stock" if in_stock else "Out of stock"
    body = (
        f'<h1 data-test="product-title">{html.escape(title)}</h1>'
        f'<div data-test="product-price-block">{price_html}</div>'
        f'<div data-test="fulfillment">{stock}</div>'
        f'<script type="application/ld+json">{script_json(ld)}</script>'
    )
    return document(f"{title} : Target", body, canonical(base_url, url))
