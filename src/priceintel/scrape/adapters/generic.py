"""Generic fallback for unknown shops: structured data + heuristics, a few common selectors."""

from priceintel.scrape.adapters.base import Adapter

ADAPTER = Adapter(
    name="generic",
    selectors={
        "title": ("meta[property='og:title']::attr(content)", "h1"),
        "brand": (
            "meta[property='product:brand']::attr(content)",
            "[itemprop=brand] [itemprop=name]",
            "[itemprop=brand]",
        ),
        "image": "meta[property='og:image']::attr(content)",
        "availability": ("meta[property='product:availability']::attr(content)", "[itemprop=availability]::attr(href)"),
    },
)
