"""Amazon: HTML-only price blocks (`#corePrice_feature_div`, `#availability`, `input#ASIN`)."""

from priceintel.items import IN_STOCK, OUT_OF_STOCK
from priceintel.scrape.adapters.base import Adapter

#: details tables, looked up through the id index (fast on large pages)
_TECH = "id('productDetails_techSpec_section_1 productDetails_detailBullets_sections1')"

ADAPTER = Adapter(
    name="amazon",
    domains=("amazon.com", "amazon.co.uk", "amazon.de", "amazon.ca"),
    url_pattern=r"/dp/(?P<item_id>[A-Z0-9]{10})(?:[/?]|$)",
    category_pattern=r"^/(?:b|s|c|category)(?:/|$)",
    selectors={
        "title": "#productTitle",
        "brand": (
            f"xpath:{_TECH}//tr[normalize-space(th)='Brand']/td",
            "a#bylineInfo",
        ),
        "price": (
            "#corePrice_feature_div .a-price.priceToPay .a-offscreen",
            "#corePriceDisplay_desktop_feature_div .a-price.priceToPay .a-offscreen",
            "#priceblock_ourprice",
            "#priceblock_dealprice",
        ),
        "list_price": (
            "#corePrice_feature_div .a-price.a-text-price[data-a-strike=true] .a-offscreen",
            ".a-price.a-text-price[data-a-strike=true] .a-offscreen",
        ),
        "availability": "#availability",
        "item_id": (
            "input#ASIN::attr(value)",
            f"xpath:{_TECH}//tr[normalize-space(th)='ASIN']/td",
        ),
        "mpn": f"xpath:{_TECH}//tr[normalize-space(th)='Item model number']/td",
        "seller": "#sellerProfileTriggerId",
        "image": "img#landingImage::attr(src)",
    },
    struck_marks=("a-text-price", "data-a-strike=true"),
    field_regex={"brand": r"^(?:Visit the\s+)?(.+?)(?:\s+Store)?$|^Brand:\s*(.+)$"},
    availability_map={
        "in stock": IN_STOCK,
        "currently unavailable": OUT_OF_STOCK,
        "temporarily out of stock": OUT_OF_STOCK,
    },
)
