"""Target: schema.org JSON-LD Product; visible `data-test` price spans as fallback."""

from priceintel.scrape.adapters.base import Adapter

ADAPTER = Adapter(
    name="target",
    domains=("target.com",),
    url_pattern=r"/p/(?:[^/]+/)?-/A-(?P<item_id>\d+)(?:[/?#]|$)",
    category_pattern=r"^/(?:c|category)(?:/|$)",
    selectors={
        "title": ("h1[data-test=product-title]", "h1"),
        "price": "[data-test=product-price]",
        "list_price": "[data-test=product-regular-price]",
        "availability": ("[data-test=fulfillment]", "[data-test=fulfillment-availability]"),
    },
)
