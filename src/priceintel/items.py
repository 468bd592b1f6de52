"""Typed records and the shared column names that every stage agrees on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

# --- availability: schema.org values -------------------------------------------------
IN_STOCK = "https://schema.org/InStock"
OUT_OF_STOCK = "https://schema.org/OutOfStock"
LIMITED = "https://schema.org/LimitedAvailability"
PREORDER = "https://schema.org/PreOrder"
DISCONTINUED = "https://schema.org/Discontinued"

# --- canonical frames -------------------------------------------------------------------
#: our catalogue (dim_product); written by the demo world, loaded into Postgres
PRODUCT_COLUMNS = [
    "sku", "name", "brand", "category", "gtin", "mpn", "size", "unit_cost", "map_price", "msrp",
]
#: one retailer product page (dim_listing); `item_id` is the retailer's own id
LISTING_COLUMNS = ["retailer", "item_id", "url", "title", "brand", "gtin", "mpn"]
#: clean long frame of observations, one row per listing per day (input of fact_price)
OBSERVATION_COLUMNS = [
    "retailer", "item_id", "url", "ds", "observed_at", "price", "list_price", "currency",
    "in_stock", "promo", "title", "brand", "gtin", "mpn", "page_sha256",
]
#: our own daily sales (fact_sales)
SALES_COLUMNS = ["sku", "ds", "units", "revenue", "price", "promo"]
#: listing -> product decisions (product_match)
MATCH_COLUMNS = ["retailer", "item_id", "sku", "method", "score", "status"]
#: forecasting input: long frame
FORECAST_ID, FORECAST_TIME, FORECAST_TARGET = "unique_id", "ds", "y"


@dataclass(frozen=True)
class Offer:
    """One product page as extracted: raw strings beside normalised values, fixed fields."""

    url: str
    retailer: Optional[str] = None
    item_id: Optional[str] = None  #: retailer's own id (ASIN, usItemId, TCIN, …)
    title: Optional[str] = None
    brand: Optional[str] = None
    gtin: Optional[str] = None  #: validated GTIN-8/12/13/14 digits
    mpn: Optional[str] = None
    sku: Optional[str] = None  #: retailer SKU as printed on the page
    price: Optional[str] = None  #: normalised decimal string, e.g. "10500.99"
    price_raw: Optional[str] = None  #: the price text as found on the page
    list_price: Optional[str] = None  #: was / list price, normalised decimal string
    currency: Optional[str] = None  #: ISO-4217 code, e.g. "USD"
    currency_raw: Optional[str] = None  #: currency as written on the page, e.g. "$"
    availability: Optional[str] = None  #: schema.org URL, e.g. IN_STOCK
    seller: Optional[str] = None
    rating: Optional[float] = None
    image: Optional[str] = None
    page_kind: str = "product"  #: product | blocked | not_found | no_price | truncated
    methods: dict = field(default_factory=dict)  #: field name -> extraction method

    @property
    def in_stock(self) -> Optional[bool]:
        """True/False from availability, None when unknown."""
        if self.availability is None:
            return None
        return self.availability in (IN_STOCK, LIMITED, PREORDER)

    def to_dict(self) -> dict:
        """Plain dict (methods included) for frames and JSON."""
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the record's fields, in order."""
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Match:
    """A listing matched to one of our products."""

    retailer: str
    item_id: str
    sku: str
    method: str  #: gtin | fuzzy | model | manual
    score: float
    status: str = "auto"  #: auto | confirmed | rejected | review
