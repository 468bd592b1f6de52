"""Walmart: product state in `<script id="__NEXT_DATA__">` (Next.js), HTML selectors as fallback."""

from priceintel.items import IN_STOCK, LIMITED, OUT_OF_STOCK
from priceintel.scrape.adapters.base import Adapter

ADAPTER = Adapter(
    name="walmart",
    domains=("walmart.com", "walmart.ca"),
    url_pattern=r"/ip/(?:[^/]+/)?(?P<item_id>\d{5,})(?:[/?]|$)",
    category_pattern=r"^/(?:browse|cp|shop|c)(?:/|$)",
    json_script="script#__NEXT_DATA__",
    json_path="props.pageProps.initialData.data.product",
    json_fields={
        "item_id": "usItemId",
        "title": "name",
        "brand": "brand",
        "gtin": "upc",
        "mpn": "model",
        "availability": "availabilityStatus",
        "seller": "sellerName",
        "price": "priceInfo.currentPrice.price",
        "price_raw": "priceInfo.currentPrice.priceString",
        "currency": "priceInfo.currentPrice.currencyUnit",
        "list_price": "priceInfo.wasPrice.price",
        "rating": "averageRating",
        "image": "imageInfo.thumbnailUrl",
    },
    selectors={
        "title": ("h1#main-title", "h1[itemprop=name]"),
        "price": ("[itemprop=price]::attr(content)", "span[itemprop=price]"),
        "list_price": ("[data-testid=list-price]", ".strike"),
    },
    availability_map={
        "in_stock": IN_STOCK,
        "out_of_stock": OUT_OF_STOCK,
        "limited_stock": LIMITED,
    },
)
