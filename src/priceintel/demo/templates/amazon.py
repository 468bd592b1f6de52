"""Amazon-like product page: HTML price blocks only, no structured data."""

from __future__ import annotations

import html

from priceintel.demo.catalogue import _slug
from priceintel.demo.templates.page import canonical, document, money


def product_page(base_url: str, asin: str, info: tuple, in_stock: bool, price: float | None, was: float | None) -> str:
    """The page of `asin` (info = url, title, brand, gtin, mpn, category); no price block without a price."""
    url, title, brand, _gtin, mpn, cat = info
    t = html.escape(title)
    byline = (
        (
            f'<a id="bylineInfo" class="a-link-normal" href="/stores/{_slug(brand)}">'
            f"Visit the {html.escape(brand)} Store</a>"
        )
        if brand
        else ""
    )
    price_html = _price_block(price, was) if price is not None else ""
    avail = "In Stock" if in_stock else "Currently unavailable."
    rows = f"<tr><th>Brand</th><td>{html.escape(brand)}</td></tr>" if brand else ""
    if mpn:
        rows += f"<tr><th>Item model number</th><td>{html.escape(mpn)}</td></tr>"
    rows += f"<tr><th>ASIN</th><td>{asin}</td></tr>"
    body = (
        f'<div id="dp" class="{cat}"><div id="centerCol"><h1 id="title">'
        f'<span id="productTitle" class="a-size-large">{t}</span></h1>{byline}'
        f'{price_html}<div id="availability"><span>{avail}</span></div>'
        f'<input type="hidden" id="ASIN" name="ASIN" value="{asin}">'
        f'<div id="addToCart"><a href="/cart">Add to Cart</a></div></div>'
        f'<div id="prodDetails"><table id="productDetails_techSpec_section_1">{rows}</table>'
        f"</div></div>"
    )
    return document(f"Amazon.com: {title}", body, canonical(base_url, url))


def _price_block(price: float, was: float | None) -> str:
    """`#corePrice_feature_div`: the price to pay, and the struck-through list price on promotion."""
    whole, frac = f"{price:,.2f}".split(".")
    strike = (
        f'<span class="a-size-small">List Price: </span><span class="a-price a-text-price" '
        f'data-a-strike="true"><span class="a-offscreen">{money(was)}</span></span>'
        if was is not None
        else ""
    )
    return (
        f'<div id="corePrice_feature_div"><div class="a-section">'
        f'<span class="a-price priceToPay"><span class="a-offscreen">{money(price)}</span>'
        f'<span aria-hidden="true"><span class="a-price-symbol">$</span>'
        f'<span class="a-price-whole">{whole}<span class="a-price-decimal">.</span></span>'
        f'<span class="a-price-fraction">{frac}</span></span></span>{strike}</div></div>'
    )
