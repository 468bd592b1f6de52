"""Markup the three shops share: the HTML document, utility and error pages, home and category pages,
robots.txt and the sitemap. Every function returns the text of a response body."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

#: path of a shop's category pages (`<prefix><category>?page=N`)
CATEGORY_PREFIX = {"amazon": "/b/", "walmart": "/browse/", "target": "/c/"}
SHOP_NAME = {"amazon": "Amazon.com", "walmart": "Walmart.com", "target": "Target"}
_STYLE = "body{font-family:sans-serif;max-width:60em;margin:auto}"


def money(x: float) -> str:
    """Display price, e.g. "$1,234.50"."""
    return f"${x:,.2f}"


def script_json(obj: Any) -> str:
    """JSON safe to embed in a <script> element."""
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def document(title: str, body: str, head: str = "") -> str:
    """Wrap a body in a minimal HTML document."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>{head}</head>"
        f"<body>{body}</body></html>"
    )


def canonical(base_url: str, url: str) -> str:
    """<link rel=canonical> for a product path."""
    return f'<link rel="canonical" href="{base_url}{html.escape(url)}">'


def error_page(retailer: str, status: int, message: str) -> str:
    """An HTML error page (sent with that status)."""
    return document(f"{status} - {SHOP_NAME[retailer]}", f"<h1>{status}</h1><p>{html.escape(message)}</p>")


def cart_page(retailer: str) -> str:
    """The (always empty) cart."""
    return document(f"Cart - {SHOP_NAME[retailer]}", "<h1>Your cart is empty</h1>")


def slow_down_page() -> str:
    """The body of a 429 answer."""
    return document("429 Too Many Requests", "<h1>Slow down</h1>")


def captcha_page() -> str:
    """A robot-check page (answered with status 200, as shops do)."""
    return document(
        "Robot Check",
        "<h1>Robot Check</h1><p>Enter the characters you see below</p>"
        "<form action='/errors/validateCaptcha'><input name='field-keywords'></form>",
    )


def robots(base_url: str) -> str:
    """robots.txt: everything but the cart and the demo controls."""
    return f"User-agent: *\nDisallow: /cart\nDisallow: /__demo__/\n\nSitemap: {base_url}/sitemap.xml\n"


def sitemap(base_url: str, paths: Iterable[str]) -> str:
    """The sitemap of the given product paths."""
    locs = "".join(f"<url><loc>{html.escape(base_url + path)}</loc></url>\n" for path in paths)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{locs}</urlset>\n"
    )


def home_page(retailer: str, categories: Mapping[str, list[int]]) -> str:
    """Home page linking every category that has items (with its item count)."""
    prefix = CATEGORY_PREFIX[retailer]
    links = "".join(
        f'<li><a class="category" href="{prefix}{c}">{c.replace("-", " ").title()}</a> ({len(rows)})</li>'
        for c, rows in categories.items()
        if rows
    )
    return document(SHOP_NAME[retailer], f'<h1>{SHOP_NAME[retailer]}</h1><ul id="categories">{links}</ul>')


def category_page(
    retailer: str, category: str, page: int, last: int, entries: Iterable[tuple[str, str, str, str]]
) -> str:
    """Page `page` of `last` of a category: entries (item_id, url, title, price text), rel=prev/next links."""
    base = f"{CATEGORY_PREFIX[retailer]}{category}"
    items = [
        f'<li class="product" data-item-id="{item_id}">'
        f'<a href="{html.escape(url)}">{html.escape(title)}</a> '
        f'<span class="price">{price_text}</span></li>'
        for item_id, url, title, price_text in entries
    ]
    nav = ""
    if page > 1:
        nav += f'<a rel="prev" href="{base}?page={page - 1}">Previous</a> '
    if page < last:
        nav += f'<a rel="next" href="{base}?page={page + 1}">Next</a>'
    title = f"{category.replace('-', ' ').title()} - page {page} of {last}"
    body = f'<h1>{html.escape(title)}</h1><ul id="results">{"".join(items)}</ul><nav class="pagination">{nav}</nav>'
    return document(f"{title} - {SHOP_NAME[retailer]}", body)
