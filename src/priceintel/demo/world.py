"""Deterministic demo world (catalogue, competitor price paths, own sales, ground truth) and
three competitor storefronts served over HTTP on 127.0.0.1.

World: ``generate_world(n_products, n_days, seed, start) -> World`` (fully vectorised numpy,
same arguments → identical frames); ``World.write(dir)`` / ``World.read(dir)``;
``ensure_world(dir, **params)``.

Storefronts: ``Storefronts(world, host, ports, faults)`` runs one ``ThreadingHTTPServer`` per
shop (HTTP/1.1 keep-alive, Content-Length). Every shop serves ``/`` (category links),
``/robots.txt`` (disallows ``/cart`` and ``/__demo__/``), ``/sitemap.xml`` (all product URLs),
paginated category pages (24 items, ``<a rel="next">``), product pages, ``/cart`` (200) and a real
404. One simulated clock is shared by the three shops: ``GET /__demo__/clock`` → ``{"date": ...}``,
``POST /__demo__/clock?date=YYYY-MM-DD`` sets it (400 on a bad/out-of-range date), and
``?date=YYYY-MM-DD`` on any page overrides it for that request. Links never carry ``?date``.

URL shapes::

    amazon   /<Slug>/dp/<ASIN>           category /b/<category>?page=N
    walmart  /ip/<slug>/<usItemId>       category /browse/<category>?page=N
    target   /p/<slug>/-/A-<TCIN>        category /c/<category>?page=N

Product-page hooks (stable; the extractor relies on them):

* amazon (HTML only, no JSON-LD):
  ``<span id="productTitle">``; ``<a id="bylineInfo">Visit the {brand} Store</a>``;
  ``<div id="corePrice_feature_div">`` holding ``<span class="a-price priceToPay"><span
  class="a-offscreen">$12.99</span>…`` and, on promotion, ``<span class="a-price a-text-price"
  data-a-strike="true"><span class="a-offscreen">$15.99</span></span>`` (no price block at all when
  out of stock); ``<div id="availability"><span>In Stock</span></div>`` or
  ``<span>Currently unavailable.</span>``; ``<input type="hidden" id="ASIN" value="...">``;
  ``<table id="productDetails_techSpec_section_1">`` with ``<th>``/``<td>`` rows Brand,
  Item model number (when the mpn is known), ASIN.
* walmart: ``<h1 itemprop="name">`` plus ``<script id="__NEXT_DATA__" type="application/json">``
  with ``props.pageProps.initialData.data.product`` = {usItemId, name, brand?, upc? (12 digits),
  model? (mpn), availabilityStatus "IN_STOCK"|"OUT_OF_STOCK", sellerName "Walmart.com",
  priceInfo {currentPrice: {price, priceString, currencyUnit "USD"} | null,
  wasPrice: {...} | null}}.
* target: ``<script type="application/ld+json">`` schema.org Product {name, sku (TCIN), gtin13,
  mpn?, brand {"@type": "Brand", name}, offers {"@type": "Offer", price (string "12.99", absent
  when there is no price), priceCurrency "USD", availability schema.org InStock|OutOfStock, url}};
  visible ``<h1 data-test="product-title">``, ``<span data-test="product-price">$12.99</span>``
  and on promotion ``<span data-test="product-regular-price">reg $15.99</span>``.

Prices are written ``$1,234.56`` in HTML and ``1234.56`` in JSON. Faults for error-path tests
(``faults=`` or ``Storefronts.set_faults``): ``{"missing_price": {(retailer, item_id), ...}}``
renders that page in stock with no price anywhere; ``{"status": {(retailer, item_id): 500}}``
answers that page with that HTTP status. Transient faults answer the first N requests of a page
badly, then normally: ``retry_after`` (429 + Retry-After), ``burst_503``, ``delay`` (slow answer),
``truncate`` (HTML cut half-way), ``captcha`` (robot-check page); ``layout_change_after: N`` switches
every shop to its redesigned markup after N product requests. `Storefronts.fault_log` lists each
fault served. Product pages carry ``ETag`` / ``Last-Modified`` and answer 304 to a matching
``If-None-Match`` (or ``If-Modified-Since``).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
import signal
import socket
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.items import LISTING_COLUMNS, PRODUCT_COLUMNS, SALES_COLUMNS, gtin_check_digit, is_valid_gtin

__all__ = [
    "DemoError",
    "World",
    "generate_world",
    "ensure_world",
    "Storefronts",
    "ensure_storefronts",
    "serve",
    "RETAILERS",
    "DEFAULT_PORTS",
    "gtin_check_digit",
    "is_valid_gtin",
]

RETAILERS = ("amazon", "walmart", "target")
DEFAULT_PORTS = {"amazon": 8701, "walmart": 8702, "target": 8703}
DEFAULT_START = date(2026, 7, 1)
PAGE_SIZE = 24
PRICE_COLUMNS = ["retailer", "item_id", "ds", "price", "list_price", "in_stock", "promo"]
TRUTH_MATCH_COLUMNS = ["retailer", "item_id", "sku"]
TRUTH_ELASTICITY_COLUMNS = ["sku", "own_elasticity", "cross_elasticity"]


class DemoError(PriceIntelError):
    """The demo world or storefronts were asked for something impossible (bad params, files)."""


# ----------------------------------------------------------------------------------------
# catalogue vocabulary: 8 categories x 4 brands x 10 variants x 6 product types x 6 sizes
# ----------------------------------------------------------------------------------------
_CATEGORIES: list[dict[str, Any]] = [
    dict(
        key="coffee-tea",
        price=(4.0, 9.0),
        mpn=False,
        brands=["Morning Ridge", "Bean & Co", "Highland Roasters", "Copper Kettle"],
        variants=[
            "Dark Roast",
            "Medium Roast",
            "Light Roast",
            "French Roast",
            "Breakfast Blend",
            "Colombian",
            "Espresso",
            "Decaf House Blend",
            "Hazelnut",
            "Vanilla",
        ],
        types=[
            "Ground Coffee",
            "Whole Bean Coffee",
            "Coffee Pods",
            "Cold Brew Concentrate",
            "Instant Coffee",
            "Black Tea Bags",
        ],
        sizes=[("12 oz", 1.0), ("24 oz", 1.8), ("2 lb", 2.4), ("32 ct", 2.2), ("64 ct", 3.9), ("1.5 lb", 1.9)],
    ),
    dict(
        key="snacks",
        price=(2.0, 5.0),
        mpn=False,
        brands=["Crunch Valley", "Golden Harvest", "Snackwise", "Trailhead Foods"],
        variants=[
            "Sea Salt",
            "Barbecue",
            "Sour Cream & Onion",
            "Jalapeno",
            "Honey Mustard",
            "Cheddar",
            "Lightly Salted",
            "Chili Lime",
            "Rosemary",
            "Original",
        ],
        types=["Potato Chips", "Tortilla Chips", "Pretzels", "Granola Bars", "Crackers", "Popcorn"],
        sizes=[("5 oz", 1.0), ("8 oz", 1.4), ("10 oz", 1.7), ("13 oz", 2.1), ("12 ct", 2.6), ("24 ct", 4.6)],
    ),
    dict(
        key="beverages",
        price=(1.5, 4.0),
        mpn=False,
        brands=["Clearbrook", "Fizzwell", "Summit Springs", "Citrus Grove"],
        variants=[
            "Lemon",
            "Lime",
            "Mixed Berry",
            "Peach",
            "Mango",
            "Unsweetened",
            "Grapefruit",
            "Raspberry",
            "Orange",
            "Black Cherry",
        ],
        types=["Sparkling Water", "Spring Water", "Sports Drink", "Iced Tea", "Lemonade", "Juice"],
        sizes=[("1 L", 1.0), ("1.5 L", 1.3), ("2 L", 1.6), ("6 ct", 2.8), ("12 ct", 4.9), ("24 ct", 8.5)],
    ),
    dict(
        key="household",
        price=(3.0, 8.0),
        mpn=True,
        brands=["SparkleHome", "PureNest", "Brightway", "EcoShine"],
        variants=[
            "Lavender",
            "Fresh Scent",
            "Free & Clear",
            "Citrus",
            "Ocean Breeze",
            "Lemon",
            "Unscented",
            "Eucalyptus",
            "Mountain Air",
            "Spring Meadow",
        ],
        types=[
            "All-Purpose Cleaner",
            "Dish Soap",
            "Laundry Detergent",
            "Paper Towels",
            "Trash Bags",
            "Disinfecting Wipes",
        ],
        sizes=[("16 fl oz", 1.0), ("32 fl oz", 1.7), ("64 fl oz", 2.9), ("1 gal", 4.2), ("6 ct", 2.2), ("12 ct", 3.8)],
    ),
    dict(
        key="personal-care",
        price=(3.0, 9.0),
        mpn=False,
        brands=["Dermaglow", "Puretide", "Northwell", "Silkleaf"],
        variants=[
            "Coconut",
            "Aloe",
            "Argan Oil",
            "Tea Tree",
            "Sensitive",
            "Mint",
            "Shea Butter",
            "Charcoal",
            "Oatmeal",
            "Rose",
        ],
        types=["Shampoo", "Conditioner", "Body Wash", "Hand Soap", "Lotion", "Toothpaste"],
        sizes=[
            ("3.4 fl oz", 1.0),
            ("8 fl oz", 1.6),
            ("12 fl oz", 2.1),
            ("16 fl oz", 2.6),
            ("2 ct", 1.9),
            ("3 ct", 2.7),
        ],
    ),
    dict(
        key="pet-supplies",
        price=(5.0, 12.0),
        mpn=True,
        brands=["Happy Paws", "Whisker Farms", "Wild Trail", "Pet Pantry"],
        variants=[
            "Chicken & Rice",
            "Salmon",
            "Beef",
            "Turkey",
            "Lamb",
            "Grain-Free",
            "Senior",
            "Indoor",
            "Small Breed",
            "Large Breed",
        ],
        types=["Dry Dog Food", "Wet Cat Food", "Dog Treats", "Cat Litter", "Puppy Food", "Dental Chews"],
        sizes=[("3 lb", 1.0), ("5 lb", 1.5), ("15 lb", 3.4), ("30 lb", 5.8), ("12 ct", 1.8), ("24 ct", 3.2)],
    ),
    dict(
        key="electronics",
        price=(9.0, 35.0),
        mpn=True,
        brands=["Voltix", "Zentrik", "Auralink", "Nimbus Tech"],
        variants=["Fast Charging", "Braided", "Compact", "Pro", "Ultra", "Slim", "Rugged", "Mini", "Max", "Lite"],
        types=["USB-C Cable", "Wireless Earbuds", "Power Bank", "Wall Charger", "Bluetooth Speaker", "HDMI Cable"],
        sizes=[("3 ft", 1.0), ("6 ft", 1.2), ("10 ft", 1.5), ("1 ct", 1.1), ("2 ct", 1.9), ("3 ct", 2.6)],
    ),
    dict(
        key="baby",
        price=(4.0, 14.0),
        mpn=True,
        brands=["Little Sprout", "Cuddle Bug", "Tiny Steps", "Bumble Baby"],
        variants=[
            "Sensitive",
            "Overnight",
            "Unscented",
            "Organic",
            "Gentle",
            "Hypoallergenic",
            "Calming Lavender",
            "Natural",
            "Ultra Soft",
            "Fragrance-Free",
        ],
        types=["Diapers", "Baby Wipes", "Baby Lotion", "Baby Shampoo", "Baby Wash", "Diaper Cream"],
        sizes=[("8 oz", 1.0), ("16 oz", 1.7), ("12.5 oz", 1.4), ("24 ct", 1.3), ("48 ct", 2.3), ("96 ct", 4.1)],
    ),
]
_NC, _NB, _NV, _NT, _NS = len(_CATEGORIES), 4, 10, 6, 6
_N_COMBOS = _NC * _NB * _NV * _NT * _NS
MAX_PRODUCTS = 8000

_UNIT_LONG = {
    "oz": "Ounce",
    "fl oz": "Fl Oz",
    "lb": "Pound",
    "ct": "Count",
    "L": "Liter",
    "gal": "Gallon",
    "ft": "Feet",
}
_ABBREV = {
    "Medium": "Med",
    "Original": "Orig",
    "Vanilla": "Van",
    "Sparkling": "Sprkl",
    "Laundry": "Lndry",
    "Detergent": "Det",
    "Conditioner": "Cond",
    "Disinfecting": "Disinf",
    "Unscented": "Unscntd",
    "Wireless": "Wrls",
    "Bluetooth": "BT",
    "Charger": "Chrgr",
    "Sensitive": "Sens",
    "Concentrate": "Conc",
    "Lightly": "Lt",
    "Chicken": "Chkn",
    "Breakfast": "Bkfst",
    "Espresso": "Esp",
    "Hypoallergenic": "Hypoallrg",
    "Fragrance-Free": "Frag-Free",
    "Coffee": "Cof",
    "Grapefruit": "Grpfrt",
}
_ABBREV_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, _ABBREV)) + r")\b")
_ALNUM = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_ENDINGS = np.array([0.99, 0.99, 0.49, 0.79, 0.99])
_DOW_EFFECT = np.array([-0.06, -0.08, -0.04, 0.0, 0.07, 0.15, 0.10])  # Mon..Sun
_RETAILER_FACTOR = {"amazon": 0.94, "walmart": 0.92, "target": 0.97}


# ----------------------------------------------------------------------------------------
# GTIN helpers
# ----------------------------------------------------------------------------------------
def _gtin13(body12: np.ndarray) -> np.ndarray:
    """GTIN-13 strings from an int array of 12-digit bodies."""
    return np.array([f"{b:012d}{gtin_check_digit(f'{b:012d}')}" for b in body12.tolist()], dtype=object)


# ----------------------------------------------------------------------------------------
# World
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class World:
    """The generated demo world: catalogue, listings, price truth, own sales and ground truth."""

    products: pd.DataFrame
    listings: pd.DataFrame
    prices: pd.DataFrame
    sales: pd.DataFrame
    truth_matches: pd.DataFrame
    truth_elasticities: pd.DataFrame
    params: dict = field(default_factory=dict)

    @property
    def start(self) -> date:
        """First simulated day."""
        return date.fromisoformat(self.params["start"])

    @property
    def end(self) -> date:
        """Last simulated day (the storefronts' default clock)."""
        return date.fromisoformat(self.params["end"])

    def __repr__(self) -> str:
        """Short summary instead of dumping every frame."""
        return (
            f"World({self.params}, products={len(self.products)}, listings={len(self.listings)}, "
            f"prices={len(self.prices)}, sales={len(self.sales)})"
        )

    def equals(self, other: World) -> bool:
        """True when every frame and the params are equal (dtypes included)."""
        frames = ("products", "listings", "prices", "sales", "truth_matches", "truth_elasticities")
        return self.params == other.params and all(
            getattr(self, f).equals(getattr(other, f))
            and list(getattr(self, f).dtypes) == list(getattr(other, f).dtypes)
            for f in frames
        )

    def write(self, directory: str | Path) -> Path:
        """Write the world as CSV/Parquet/JSON files (truth under `truth/`); returns the dir."""
        d = Path(directory)
        (d / "truth").mkdir(parents=True, exist_ok=True)
        self.products.to_csv(d / "products.csv", index=False)
        self.listings.to_csv(d / "listings.csv", index=False)
        self.sales.to_csv(d / "sales.csv", index=False, date_format="%Y-%m-%d")
        self.prices.to_parquet(d / "prices.parquet", index=False)
        self.truth_matches.to_csv(d / "truth" / "matches.csv", index=False)
        self.truth_elasticities.to_csv(d / "truth" / "elasticities.csv", index=False)
        (d / "params.json").write_text(json.dumps(self.params, indent=2, sort_keys=True) + "\n")
        return d

    @classmethod
    def read(cls, directory: str | Path) -> World:
        """Read a world written by `World.write`, keeping ids/GTINs as strings."""
        d = Path(directory)
        needed = [
            "params.json",
            "products.csv",
            "listings.csv",
            "sales.csv",
            "prices.parquet",
            "truth/matches.csv",
            "truth/elasticities.csv",
        ]
        missing = [n for n in needed if not (d / n).is_file()]
        if missing:
            raise DemoError(f"demo world in {d} is incomplete: missing {', '.join(missing)}")
        strs = {
            c: str
            for c in ("sku", "name", "brand", "category", "gtin", "mpn", "size", "retailer", "item_id", "url", "title")
        }
        kw = dict(dtype=strs, keep_default_na=False, na_values=[""], float_precision="round_trip")
        try:
            params = json.loads((d / "params.json").read_text())
            products = pd.read_csv(d / "products.csv", **kw)
            listings = pd.read_csv(d / "listings.csv", **kw)
            sales = pd.read_csv(d / "sales.csv", parse_dates=["ds"], **kw)
            prices = pd.read_parquet(d / "prices.parquet")
            matches = pd.read_csv(d / "truth" / "matches.csv", **kw)
            elast = pd.read_csv(d / "truth" / "elasticities.csv", **kw)
        except (ValueError, OSError) as exc:
            raise DemoError(f"cannot read demo world in {d}: {exc}") from exc
        sales["ds"] = sales["ds"].astype("datetime64[ns]")
        prices["ds"] = prices["ds"].astype("datetime64[ns]")
        return cls(products, listings, prices, sales, matches, elast, params)


def _ending(x: np.ndarray, ending: np.ndarray | float) -> np.ndarray:
    """Largest price ≤ x with the given cents ending (at least the ending itself)."""
    return np.round(np.maximum(np.floor(x - ending) + ending, ending), 2)


def _spells(
    rng: np.random.Generator, shape: tuple[int, int], p: float, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random on/off spells: (active mask, index of the spell's start day or -1)."""
    n, d = shape
    start = rng.random(shape) < p
    days = np.arange(d)
    dur = rng.integers(lo, hi + 1, size=shape)
    end = np.maximum.accumulate(np.where(start, days + dur - 1, -1), axis=1)
    last = np.maximum.accumulate(np.where(start, days, -1), axis=1)
    return (end >= days) & (last >= 0), last


def _unique_ints(rng: np.random.Generator, lo: int, hi: int, n: int, taken: np.ndarray | None = None) -> np.ndarray:
    """`n` distinct ints in [lo, hi) (not in `taken`), in random order."""
    out = np.empty(0, dtype=np.int64)
    taken = np.empty(0, dtype=np.int64) if taken is None else taken
    while len(out) < n:
        cand = rng.integers(lo, hi, size=2 * (n - len(out)) + 8)
        cand = np.concatenate([out, cand])
        _, first = np.unique(cand, return_index=True)
        cand = cand[np.sort(first)]
        out = cand[~np.isin(cand, taken)][:n]
    return out


def _asins(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` distinct ASIN-like ids: "B0" + 8 uppercase alphanumerics."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        chars = _ALNUM[rng.integers(0, 36, size=(n - len(ids), 8))]
        for row in chars:
            s = "B0" + "".join(row)
            if s not in seen:
                seen.add(s)
                ids.append(s)
    return np.array(ids, dtype=object)


def _slug(text: str, keep_case: bool = False) -> str:
    """URL slug of a title: alphanumerics joined by hyphens, at most 8 words."""
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()[:8]
    s = "-".join(words)
    return s if keep_case else s.lower()


def _size_forms(size: str) -> tuple[str, str]:
    """(amazon long form, walmart compact form) of a size like "12 fl oz"."""
    num, unit = size.split(" ", 1)
    return f"{num} {_UNIT_LONG.get(unit, unit)}", num + unit.replace(" ", "")


def _decode(codes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mixed-radix combo code → (category, brand, variant, type, size) index arrays."""
    s = codes % _NS
    t = codes // _NS % _NT
    v = codes // (_NS * _NT) % _NV
    b = codes // (_NS * _NT * _NV) % _NB
    c = codes // (_NS * _NT * _NV * _NB)
    return c, b, v, t, s


def _encode(c, b, v, t, s) -> np.ndarray:
    """Inverse of `_decode`."""
    return (((c * _NB + b) * _NV + v) * _NT + t) * _NS + s


def _items(
    rng: np.random.Generator, codes: np.ndarray, gtin_bodies: np.ndarray, brand_prefix: dict[tuple[int, int], str]
) -> pd.DataFrame:
    """Attributes (name, brand, size, prices, gtin, mpn) of catalogue-like items from codes."""
    c, b, v, t, s = _decode(codes)
    n = len(codes)
    names, brands, cats, sizes, variants, types, mult, lo, hi, has_mpn = ([] for _ in range(10))
    for ci, bi, vi, ti, si in zip(c.tolist(), b.tolist(), v.tolist(), t.tolist(), s.tolist()):
        cat = _CATEGORIES[ci]
        variants.append(cat["variants"][vi])
        types.append(cat["types"][ti])
        names.append(f"{cat['variants'][vi]} {cat['types'][ti]}")
        brands.append(cat["brands"][bi])
        cats.append(cat["key"])
        sizes.append(cat["sizes"][si][0])
        mult.append(cat["sizes"][si][1])
        lo.append(cat["price"][0])
        hi.append(cat["price"][1])
        has_mpn.append(cat["mpn"])
    brand_premium = 0.85 + 0.1 * b  # house brand (0) cheaper, premium (3) dearer
    raw = rng.uniform(np.array(lo), np.array(hi)) * np.array(mult) * brand_premium
    msrp = _ending(raw + 1.0, 0.99)
    mpn = np.full(n, np.nan, dtype=object)
    digits = _unique_ints(rng, 1000, 10000, n)
    for i in np.flatnonzero(np.array(has_mpn, dtype=bool)).tolist():
        mpn[i] = f"{brand_prefix[(int(c[i]), int(b[i]))]}-{digits[i]}"
    return pd.DataFrame(
        {
            "name": names,
            "brand": brands,
            "category": cats,
            "gtin": _gtin13(gtin_bodies),
            "mpn": mpn,
            "size": sizes,
            "msrp": msrp,
            "variant": variants,
            "type": types,
        }
    )


def _titles(rng: np.random.Generator, retailer: str, items: pd.DataFrame) -> list[str]:
    """Retailer-style titles with light noise (abbreviations, word order, missing brand)."""
    u = rng.random((len(items), 3))
    out = []
    for (brand, name, size, var, typ), (a, b, c) in zip(
        items[["brand", "name", "size", "variant", "type"]].itertuples(index=False, name=None),
        u.tolist(),
    ):
        long_size, compact = _size_forms(size)
        if retailer == "amazon":
            title = f"{brand} {typ}, {var}, {long_size}" if a < 0.15 else f"{brand} {name}, {long_size}"
            if b < 0.3:
                title += " (Pack of 1)"
            elif b < 0.4:
                title += ", Value Size"
        elif retailer == "walmart":
            title = f"{brand} {typ}, {var}, {compact}" if a < 0.15 else f"{brand} {name} {compact}"
            if b < 0.25:
                title = _ABBREV_RE.sub(lambda m: _ABBREV[m.group(0)], title)
        else:
            title = f"{name} - {size}" + ("" if c < 0.1 else f" - {brand}")
            if a < 0.1:
                title = f"{typ} {var} - {size}" + ("" if c < 0.1 else f" - {brand}")
        out.append(title)
    return out


def _listing_frame(rng: np.random.Generator, retailer: str, items: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """One retailer's listings (LISTING_COLUMNS + category) for the given items and ids."""
    n = len(items)
    titles = _titles(rng, retailer, items)
    u = rng.random((n, 3))
    has_mpn = items["mpn"].notna().to_numpy()
    brand = items["brand"].to_numpy(dtype=object).copy()
    if retailer == "amazon":
        urls = [f"/{_slug(t, keep_case=True)}/dp/{i}" for t, i in zip(titles, ids)]
        gtin = np.full(n, np.nan, dtype=object)
        mpn_p = 0.7
    elif retailer == "walmart":
        urls = [f"/ip/{_slug(t)}/{i}" for t, i in zip(titles, ids)]
        gtin = np.where(u[:, 0] < 0.7, items["gtin"].str[1:].to_numpy(dtype=object), np.nan)
        brand[u[:, 2] < 0.05] = np.nan
        mpn_p = 0.6
    else:
        urls = [f"/p/{_slug(t)}/-/A-{i}" for t, i in zip(titles, ids)]
        gtin = items["gtin"].to_numpy(dtype=object)
        mpn_p = 0.5
    mpn = np.where(has_mpn & (u[:, 1] < mpn_p), items["mpn"].to_numpy(dtype=object), np.nan)
    return pd.DataFrame(
        {
            "retailer": retailer,
            "item_id": ids,
            "url": urls,
            "title": titles,
            "brand": brand,
            "gtin": gtin,
            "mpn": mpn,
            "category": items["category"].to_numpy(dtype=object),
        }
    )


def _retailer_ids(rng: np.random.Generator, retailer: str, n: int) -> np.ndarray:
    """`n` distinct item ids in the retailer's format."""
    if retailer == "amazon":
        return _asins(rng, n)
    if retailer == "walmart":
        return np.array([str(x) for x in _unique_ints(rng, 10**8, 10**10, n)], dtype=object)
    return np.array([str(x) for x in _unique_ints(rng, 10**7, 10**8, n)], dtype=object)


def _own_prices(rng: np.random.Generator, base: np.ndarray, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Our daily price (regular steps + own promotions) and promo flags, shape (n, days)."""
    n = len(base)
    steps = np.where(rng.random((n, n_days)) < 1 / 45, rng.uniform(0.85, 1.15, (n, n_days)), 1.0)
    steps[:, 0] = 1.0
    level = np.clip(np.cumprod(steps, axis=1), 0.8, 1.2)
    regular = _ending(base[:, None] * level, 0.99)
    promo, last = _spells(rng, (n, n_days), 1 / 12, 2, 7)
    disc = np.take_along_axis(rng.uniform(0.10, 0.30, (n, n_days)), np.maximum(last, 0), axis=1)
    price = np.where(promo, np.round(regular * (1 - disc), 2), regular)
    return price, promo


def _war_caps(
    rng: np.random.Generator, regular: np.ndarray, plist: np.ndarray, n_days: int, cap: np.ndarray
) -> dict[str, np.ndarray]:
    """Price wars: a leader undercuts a product for a week, the others follow 1–2 days later.

    Lowers `cap` in place and returns the episodes (product, leader, start, cut, lag).
    """
    n = plist.shape[1]
    e = int(rng.poisson(n * n_days / 200))
    prod = rng.integers(0, n, e)
    leader = rng.integers(0, 3, e)
    start = rng.integers(0, n_days, e)
    cut = rng.uniform(0.15, 0.25, e)
    lag = rng.integers(1, 3, e)
    k = np.arange(7)
    lead_listing = plist[leader, prod]
    lead_price = _ending(regular[lead_listing, start] * (1 - cut), 0.99)
    rets = np.arange(3)
    li = plist[rets[None, :], prod[:, None]]  # (e, 3)
    days = start[:, None, None] + k[None, None, :]  # (e, 1, 7)
    is_leader = rets[None, :] == leader[:, None]  # (e, 3)
    follow = lead_price[:, None, None] * (1 + rng.uniform(-0.02, 0.01, (e, 3, 1)))
    vals = np.where(is_leader[:, :, None], lead_price[:, None, None], np.round(follow, 2))
    ok = (days < n_days) & (is_leader[:, :, None] | (k[None, None, :] >= lag[:, None, None]))
    li_b = np.broadcast_to(li[:, :, None], ok.shape)
    days_b = np.broadcast_to(days, ok.shape)
    vals_b = np.broadcast_to(vals, ok.shape)
    np.minimum.at(cap, (li_b[ok], days_b[ok]), vals_b[ok])
    return {"product": prod, "leader": leader, "start": start, "cut": cut, "lag": lag}


def _undercut_caps(
    rng: np.random.Generator, own_price: np.ndarray, plist: np.ndarray, cap: np.ndarray
) -> dict[str, np.ndarray]:
    """Competitor undercuts of our price: 5–14 days just below our own price; lowers `cap`."""
    n, n_days = own_price.shape
    e = int(rng.poisson(n * n_days / 150))
    prod = rng.integers(0, n, e)
    ret = rng.integers(0, 3, e)
    start = rng.integers(0, n_days, e)
    dur = rng.integers(5, 15, e)
    delta = rng.uniform(0.01, 0.06, e)
    k = np.arange(14)
    days = start[:, None] + k[None, :]
    ok = (days < n_days) & (k[None, :] < dur[:, None])
    dclip = np.minimum(days, n_days - 1)
    vals = np.round(own_price[prod[:, None], dclip] * (1 - delta[:, None]), 2)
    li = np.broadcast_to(plist[ret, prod][:, None], ok.shape)
    np.minimum.at(cap, (li[ok], days[ok]), vals[ok])
    return {"product": prod, "retailer": ret, "start": start, "duration": dur, "delta": delta}


def _competitor_prices(
    rng: np.random.Generator, msrp: np.ndarray, factor: np.ndarray, n_days: int, cap: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-listing daily regular price, shelf price, list price, stock and promo (L, days)."""
    n = len(msrp)
    reg0 = msrp * factor * rng.uniform(0.96, 1.04, n)
    events = rng.random((n, n_days)) < 1 / 120
    events[:, 0] = False
    steps = np.where(events, rng.uniform(0.9, 1.1, (n, n_days)), 1.0)
    ending = _ENDINGS[(np.cumsum(events, axis=1) + rng.integers(0, 5, n)[:, None]) % len(_ENDINGS)]
    regular = _ending(reg0[:, None] * np.cumprod(steps, axis=1), ending)
    promo, last = _spells(rng, (n, n_days), 1 / 35, 3, 10)
    disc = np.take_along_axis(rng.uniform(0.10, 0.30, (n, n_days)), np.maximum(last, 0), axis=1)
    price = np.where(promo, np.round(regular * (1 - disc), 2), regular)
    oos, _ = _spells(rng, (n, n_days), 1 / 80, 1, 5)
    return {"regular": regular, "price": price, "promo": promo, "oos": oos}


def _distractor_codes(rng: np.random.Generator, codes: np.ndarray, pool_n: int) -> np.ndarray:
    """Combos not in the catalogue, mostly near-duplicates (other size/variant/brand of a line)."""
    base = codes[rng.integers(0, len(codes), 4 * pool_n + 8)]
    c, b, v, t, s = _decode(base)
    which = rng.random(len(base))
    s = np.where(which < 0.6, (s + rng.integers(1, _NS, len(base))) % _NS, s)
    v = np.where((which >= 0.6) & (which < 0.8), (v + rng.integers(1, _NV, len(base))) % _NV, v)
    b = np.where(which >= 0.8, (b + rng.integers(1, _NB, len(base))) % _NB, b)
    cand = _encode(c, b, v, t, s)
    cand = cand[~np.isin(cand, codes)]
    _, first = np.unique(cand, return_index=True)
    out = cand[np.sort(first)][:pool_n]
    if len(out) < pool_n:  # tiny or nearly exhausted catalogues: fill from any unused combo
        rest = np.setdiff1d(np.arange(_N_COMBOS), np.concatenate([codes, out]))
        out = np.concatenate([out, rng.permutation(rest)[: pool_n - len(out)]])
    return out


def _demand(
    rng: np.random.Generator,
    own_price: np.ndarray,
    base_price: np.ndarray,
    comp_price: np.ndarray,
    fallback: np.ndarray,
    start: date,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(units, own elasticities, cross elasticities): Poisson log-log demand per sku and day.

    `comp_price` is (3, n, days) shelf prices (NaN when out of stock); `fallback` a per-sku
    reference used when no competitor has stock on any day.
    """
    n, d = own_price.shape
    own_e = rng.uniform(-3.5, -1.0, n)
    cross_e = rng.uniform(0.1, 0.8, n)
    baseline = np.exp(rng.uniform(np.log(30), np.log(300), n))
    comp_min = np.fmin.reduce(comp_price, axis=0)
    comp_ref = np.nanmedian(
        np.where(np.isnan(comp_min).all(axis=1, keepdims=True), fallback[:, None], comp_min), axis=1
    )
    comp_min = np.where(np.isnan(comp_min), comp_ref[:, None], comp_min)
    dow = _DOW_EFFECT[(start.weekday() + np.arange(d)) % 7]
    lam = baseline[:, None] * np.exp(
        own_e[:, None] * np.log(own_price / base_price[:, None])
        + cross_e[:, None] * np.log(comp_min / comp_ref[:, None])
        + dow[None, :]
    )
    return rng.poisson(lam).astype(np.int64), own_e, cross_e


def generate_world(n_products: int = 50, n_days: int = 90, seed: int = 42, start: date = DEFAULT_START) -> World:
    """Generate the deterministic demo world (same arguments → identical frames)."""
    if not isinstance(n_products, (int, np.integer)) or not 1 <= n_products <= MAX_PRODUCTS:
        raise DemoError(f"n_products={n_products!r} must be an integer in 1..{MAX_PRODUCTS}")
    if not isinstance(n_days, (int, np.integer)) or n_days < 1:
        raise DemoError(f"n_days={n_days!r} must be a positive integer")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DemoError(f"seed={seed!r} must be a non-negative integer (the world is deterministic)")
    start = _as_date(start, "start")
    n, d = int(n_products), int(n_days)
    rng = np.random.default_rng(seed)

    # --- catalogue ---------------------------------------------------------------
    codes = rng.choice(_N_COMBOS, n, replace=False)
    letters = _ALNUM[10:]
    brand_prefix = {(ci, bi): "".join(letters[rng.integers(0, 26, 2)]) for ci in range(_NC) for bi in range(_NB)}
    k_dis = max(1, round(0.1 * n))
    dcodes = _distractor_codes(rng, codes, min(2 * k_dis, _N_COMBOS - n))
    bodies = _unique_ints(rng, 10**10, 10**11, n + len(dcodes))  # "0" + 11 digits
    items = _items(rng, np.concatenate([codes, dcodes]), bodies, brand_prefix)
    prod_items = items.iloc[:n].reset_index(drop=True)
    dis_items = items.iloc[n:].reset_index(drop=True)

    sku = np.array([f"SKU-{i + 1:05d}" for i in range(n)], dtype=object)
    msrp = prod_items["msrp"].to_numpy()
    unit_cost = np.round(msrp * rng.uniform(0.45, 0.68, n), 2)
    map_price = np.where(rng.random(n) < 0.7, _ending(msrp * rng.uniform(0.85, 0.95, n), 0.99), np.nan)
    base_price = np.maximum(_ending(msrp * rng.uniform(0.9, 1.0, n), 0.99), _ending(unit_cost * 1.15 + 1, 0.99))
    products = pd.DataFrame(
        {
            "sku": sku,
            "name": prod_items["name"],
            "brand": prod_items["brand"],
            "category": prod_items["category"],
            "gtin": prod_items["gtin"],
            "mpn": prod_items["mpn"],
            "size": prod_items["size"],
            "unit_cost": unit_cost,
            "map_price": map_price,
            "msrp": msrp,
            "base_price": base_price,
        }
    )[PRODUCT_COLUMNS + ["base_price"]]

    # --- listings -----------------------------------------------------------------
    frames, truth_sku, msrp_l, factor_l = [], [], [], []
    plist = np.zeros((3, n), dtype=np.int64)
    offset = 0
    for r, retailer in enumerate(RETAILERS):
        dpick = rng.choice(len(dis_items), min(k_dis, len(dis_items)), replace=False)
        sel = pd.concat([prod_items, dis_items.iloc[dpick]], ignore_index=True)
        ids = _retailer_ids(rng, retailer, len(sel))
        lf = _listing_frame(rng, retailer, sel, ids)
        lsku = np.concatenate([sku, np.full(len(dpick), np.nan, dtype=object)])
        order = np.argsort(lf["item_id"].to_numpy().astype(str), kind="stable")
        lf = lf.iloc[order].reset_index(drop=True)
        lsku = lsku[order]
        pos = np.empty(len(order), dtype=np.int64)
        pos[order] = np.arange(len(order))
        plist[r] = offset + pos[:n]
        frames.append(lf)
        truth_sku.append(lsku)
        msrp_l.append(sel["msrp"].to_numpy()[order])
        factor_l.append(np.full(len(sel), _RETAILER_FACTOR[retailer]))
        offset += len(sel)
    listings = pd.concat(frames, ignore_index=True)[LISTING_COLUMNS + ["category"]]
    truth_matches = pd.DataFrame(
        {
            "retailer": listings["retailer"],
            "item_id": listings["item_id"],
            "sku": np.concatenate(truth_sku),
        }
    )

    # --- our own prices, competitor prices ------------------------------------------
    own_price, own_promo = _own_prices(rng, base_price, d)
    comp = _competitor_prices(rng, np.concatenate(msrp_l), np.concatenate(factor_l), d)
    cap = np.full(comp["price"].shape, np.inf)
    _war_caps(rng, comp["regular"], plist, d, cap)
    _undercut_caps(rng, own_price, plist, cap)
    in_stock = ~comp["oos"]
    price = np.where(in_stock, np.minimum(comp["price"], cap), np.nan)
    promo = comp["promo"] & in_stock
    list_price = np.where(promo, comp["regular"], np.nan)

    L = len(listings)
    dates = pd.date_range(pd.Timestamp(start), periods=d, freq="D").astype("datetime64[ns]")
    prices = pd.DataFrame(
        {
            "retailer": np.repeat(listings["retailer"].to_numpy(dtype=object), d),
            "item_id": np.repeat(listings["item_id"].to_numpy(dtype=object), d),
            "ds": np.tile(dates.to_numpy(), L),
            "price": price.ravel(),
            "list_price": list_price.ravel(),
            "in_stock": in_stock.ravel(),
            "promo": promo.ravel(),
        }
    )

    # --- demand ----------------------------------------------------------------------
    units, own_e, cross_e = _demand(rng, own_price, base_price, price[plist], msrp, start)
    sales = pd.DataFrame(
        {
            "sku": np.repeat(sku, d),
            "ds": np.tile(dates.to_numpy(), n),
            "units": units.ravel(),
            "revenue": np.round(units * own_price, 2).ravel(),
            "price": own_price.ravel(),
            "promo": own_promo.ravel(),
        }
    )[SALES_COLUMNS]
    truth_el = pd.DataFrame({"sku": sku, "own_elasticity": own_e, "cross_elasticity": cross_e})
    params = {
        "seed": int(seed),
        "n_products": n,
        "n_days": d,
        "start": start.isoformat(),
        "end": (start + timedelta(days=d - 1)).isoformat(),
    }
    return World(products, listings, prices, sales, truth_matches, truth_el, params)


def _as_date(value: Any, what: str) -> date:
    """A `date` from a date/datetime/Timestamp/ISO string; DemoError naming `what` otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DemoError(f"{what}={value!r} is not a date (expected YYYY-MM-DD)") from None


def ensure_world(directory: str | Path, **params: Any) -> World:
    """Read the world in `directory` if it has the same params, else generate and write it."""
    unknown = set(params) - {"n_products", "n_days", "seed", "start"}
    if unknown:
        raise DemoError(f"unknown demo world parameter(s): {', '.join(sorted(unknown))}")
    want = {"n_products": 50, "n_days": 90, "seed": 42, "start": DEFAULT_START}
    want.update(params)
    want["start"] = _as_date(want["start"], "start")
    d = Path(directory)
    pfile = d / "params.json"
    if pfile.is_file():
        try:
            have = json.loads(pfile.read_text())
        except ValueError:
            have = {}
        same = (
            have.get("n_products") == want["n_products"]
            and have.get("n_days") == want["n_days"]
            and have.get("seed") == want["seed"]
            and have.get("start") == want["start"].isoformat()
        )
        if same:
            try:
                return World.read(d)
            except DemoError:
                pass
    world = generate_world(**want)
    world.write(d)
    return world


# ----------------------------------------------------------------------------------------
# Storefronts
# ----------------------------------------------------------------------------------------
_CATEGORY_PREFIX = {"amazon": "/b/", "walmart": "/browse/", "target": "/c/"}
_SHOP_NAME = {"amazon": "Amazon.com", "walmart": "Walmart.com", "target": "Target"}
_STYLE = "body{font-family:sans-serif;max-width:60em;margin:auto}"


def _money(x: float) -> str:
    """Display price, e.g. "$1,234.50"."""
    return f"${x:,.2f}"


def _script_json(obj: Any) -> str:
    """JSON safe to embed in a <script> element."""
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


@dataclass
class _Shop:
    """Pre-indexed view of one retailer: listing info and (item, day) price matrices."""

    retailer: str
    item_ids: list[str]
    row: dict[str, int]
    info: list[tuple]  # (url, title, brand, gtin, mpn, category)
    categories: dict[str, list[int]]
    price: np.ndarray
    list_price: np.ndarray
    in_stock: np.ndarray
    promo: np.ndarray


def _index_world(world: World) -> dict[str, _Shop]:
    """Index listings by (retailer, item_id) and prices by (row, day) for fast rendering."""
    start = pd.Timestamp(world.start)
    n_days = world.params["n_days"]
    shops: dict[str, _Shop] = {}
    for retailer in RETAILERS:
        lf = world.listings[world.listings["retailer"] == retailer]
        ids = lf["item_id"].tolist()
        row = {i: k for k, i in enumerate(ids)}
        info = [
            tuple(None if (isinstance(x, float) and math.isnan(x)) else x for x in rec)
            for rec in lf[["url", "title", "brand", "gtin", "mpn", "category"]].itertuples(index=False, name=None)
        ]
        cats: dict[str, list[int]] = {c["key"]: [] for c in _CATEGORIES}
        for k, rec in enumerate(info):
            cats.setdefault(rec[5], []).append(k)
        pf = world.prices[world.prices["retailer"] == retailer]
        r = pd.Index(ids).get_indexer(pf["item_id"])
        c = ((pf["ds"] - start).dt.days).to_numpy()
        ok = (r >= 0) & (c >= 0) & (c < n_days)
        shape = (len(ids), n_days)
        mats = {}
        for col, fill in (("price", np.nan), ("list_price", np.nan), ("in_stock", False), ("promo", False)):
            m = np.full(shape, fill, dtype=float if col.endswith("price") else bool)
            m[r[ok], c[ok]] = pf[col].to_numpy()[ok]
            mats[col] = m
        shops[retailer] = _Shop(retailer, ids, row, info, cats, **mats)
    return shops


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its shop and tracks open connections for a clean stop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, fronts: Storefronts, shop: _Shop):
        super().__init__(addr, handler)
        self.fronts = fronts
        self.shop = shop
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        self.base_url = f"http://{addr[0]}:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    """Routes one shop's requests; all state lives on the server / Storefronts."""

    protocol_version = "HTTP/1.1"
    server_version = "DemoShop/1.0"
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def setup(self) -> None:
        """Register the connection so `Storefronts.stop` can close it."""
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            with self.server.conns_lock:
                self.server.conns.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: no per-request logging."""

    # --- plumbing --------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: str | bytes,
        ctype: str = "text/html; charset=utf-8",
        head: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Send a complete response with Content-Length (keep-alive friendly)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(0 if status == 304 else len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache" if extra else "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _page(self, title: str, body: str, head: str = "") -> str:
        """Wrap a body in a minimal HTML document."""
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>{head}</head>"
            f"<body>{body}</body></html>"
        )

    def _canonical(self, url: str) -> str:
        """<link rel=canonical> for a product path."""
        return f'<link rel="canonical" href="{self.server.base_url}{html.escape(url)}">'

    def _error(self, status: int, message: str, head: bool = False) -> None:
        """An HTML error page with a real status code."""
        name = _SHOP_NAME[self.server.shop.retailer]
        self._send(
            status, self._page(f"{status} - {name}", f"<h1>{status}</h1><p>{html.escape(message)}</p>"), head=head
        )

    def do_GET(self) -> None:
        """Serve a GET."""
        self._route("GET")

    def do_HEAD(self) -> None:
        """Serve a HEAD (headers only)."""
        self._route("HEAD")

    def do_POST(self) -> None:
        """Only the demo clock accepts POST."""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._route("POST")

    def _route(self, method: str) -> None:
        """Dispatch on path."""
        head = method == "HEAD"
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        fronts, shop = self.server.fronts, self.server.shop
        if path == "/__demo__/clock":
            return self._clock(method, query)
        if method == "POST":
            return self._error(405, f"{path} does not accept POST")
        day = fronts.clock_index
        if "date" in query:
            try:
                day = fronts._day_index(query["date"][0])
            except DemoError as exc:
                return self._error(400, str(exc), head)
        if path == "/robots.txt":
            return self._send(200, self._robots(), "text/plain; charset=utf-8", head)
        if path == "/sitemap.xml":
            return self._send(200, self._sitemap(), "application/xml; charset=utf-8", head)
        if path == "/":
            return self._send(200, self._home(), head=head)
        if path == "/cart":
            return self._send(
                200, self._page(f"Cart - {_SHOP_NAME[shop.retailer]}", "<h1>Your cart is empty</h1>"), head=head
            )
        prefix = _CATEGORY_PREFIX[shop.retailer]
        if path.startswith(prefix) and path.count("/") == prefix.count("/"):
            return self._category(path[len(prefix) :], query, day, head)
        item_id = self._item_id(path)
        if item_id is not None and item_id in shop.row:
            return self._product(item_id, day, head)
        return self._error(404, f"no page at {path}", head)

    def _item_id(self, path: str) -> str | None:
        """The retailer item id of a product URL path, or None."""
        segs = path.split("/")
        r = self.server.shop.retailer
        if r == "amazon" and len(segs) == 4 and segs[2] == "dp":
            return segs[3]
        if r == "amazon" and len(segs) == 3 and segs[1] == "dp":
            return segs[2]
        if r == "walmart" and len(segs) == 4 and segs[1] == "ip":
            return segs[3]
        if r == "target" and len(segs) == 5 and segs[1] == "p" and segs[3] == "-" and segs[4].startswith("A-"):
            return segs[4][2:]
        return None

    # --- pages -------------------------------------------------------------------
    def _clock(self, method: str, query: dict) -> None:
        """GET reads, POST sets the shared simulated date."""
        fronts = self.server.fronts
        if method == "POST":
            if "date" not in query:
                return self._send(
                    400, _script_json({"error": "POST /__demo__/clock needs ?date=YYYY-MM-DD"}), "application/json"
                )
            try:
                fronts.set_date(query["date"][0])
            except DemoError as exc:
                return self._send(400, _script_json({"error": str(exc)}), "application/json")
        self._send(200, json.dumps({"date": fronts.date.isoformat()}), "application/json", method == "HEAD")

    def _robots(self) -> str:
        """robots.txt: everything but the cart and the demo controls."""
        return f"User-agent: *\nDisallow: /cart\nDisallow: /__demo__/\n\nSitemap: {self.server.base_url}/sitemap.xml\n"

    def _sitemap(self) -> str:
        """All product URLs of the shop."""
        base = self.server.base_url
        locs = "".join(f"<url><loc>{html.escape(base + rec[0])}</loc></url>\n" for rec in self.server.shop.info)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            f"{locs}</urlset>\n"
        )

    def _home(self) -> str:
        """Home page linking every category."""
        shop = self.server.shop
        prefix = _CATEGORY_PREFIX[shop.retailer]
        links = "".join(
            f'<li><a class="category" href="{prefix}{c}">{c.replace("-", " ").title()}</a> ({len(rows)})</li>'
            for c, rows in shop.categories.items()
            if rows
        )
        return self._page(
            _SHOP_NAME[shop.retailer], f'<h1>{_SHOP_NAME[shop.retailer]}</h1><ul id="categories">{links}</ul>'
        )

    def _category(self, cat: str, query: dict, day: int, head: bool) -> None:
        """A paginated category listing (24 a page, rel=next/prev links)."""
        shop = self.server.shop
        if cat not in shop.categories:
            return self._error(404, f"no category {cat!r}", head)
        rows = shop.categories[cat]
        last = max(1, math.ceil(len(rows) / PAGE_SIZE))
        raw = query.get("page", ["1"])[0]
        if not raw.isdigit() or not 1 <= int(raw) <= last:
            return self._error(404, f"category {cat!r} has pages 1..{last}, not {raw!r}", head)
        page = int(raw)
        base = f"{_CATEGORY_PREFIX[shop.retailer]}{cat}"
        items = []
        for k in rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
            url, title = shop.info[k][0], shop.info[k][1]
            p = shop.price[k, day]
            ptxt = _money(p) if shop.in_stock[k, day] and p == p else "Out of stock"
            items.append(
                f'<li class="product" data-item-id="{shop.item_ids[k]}">'
                f'<a href="{html.escape(url)}">{html.escape(title)}</a> '
                f'<span class="price">{ptxt}</span></li>'
            )
        nav = ""
        if page > 1:
            nav += f'<a rel="prev" href="{base}?page={page - 1}">Previous</a> '
        if page < last:
            nav += f'<a rel="next" href="{base}?page={page + 1}">Next</a>'
        title = f"{cat.replace('-', ' ').title()} - page {page} of {last}"
        body = f'<h1>{html.escape(title)}</h1><ul id="results">{"".join(items)}</ul><nav class="pagination">{nav}</nav>'
        self._send(200, self._page(f"{title} - {_SHOP_NAME[shop.retailer]}", body), head=head)

    def _product(self, item_id: str, day: int, head: bool) -> None:
        """A product page in the shop's own markup."""
        shop, fronts = self.server.shop, self.server.fronts
        key = (shop.retailer, item_id)
        status = fronts._fault_status.get(key)
        if status is not None:
            return self._error(status, f"simulated error {status} for {item_id}", head)
        fault, layout_v2 = fronts._take_fault(key)
        if fault is not None:
            kind, arg = fault
            if kind == "delay":
                threading.Event().wait(arg)
            elif kind == "retry_after":
                return self._send(
                    429,
                    self._page("429 Too Many Requests", "<h1>Slow down</h1>"),
                    head=head,
                    extra={"Retry-After": str(arg)},
                )
            elif kind == "burst_503":
                return self._error(503, f"simulated overload for {item_id}", head)
            elif kind == "captcha":
                return self._send(
                    200,
                    self._page(
                        "Robot Check",
                        "<h1>Robot Check</h1><p>Enter the characters you see below</p>"
                        "<form action='/errors/validateCaptcha'><input name='field-keywords'></form>",
                    ),
                    head=head,
                )
        k = shop.row[item_id]
        in_stock = bool(shop.in_stock[k, day])
        price = float(shop.price[k, day])
        promo = bool(shop.promo[k, day])
        was = float(shop.list_price[k, day]) if promo else None
        if not in_stock or price != price:
            price, was = None, None
        if key in fronts._fault_missing:
            in_stock, price, was = True, None, None
        render = {"amazon": self._amazon, "walmart": self._walmart, "target": self._target}
        body = render[shop.retailer](item_id, shop.info[k], in_stock, price, was)
        if layout_v2:  # the redesign: amazon moves its price block, the others rename their wrappers
            body = body.replace('id="corePrice_feature_div"', 'id="corePriceDisplay_desktop_feature_div"')
            body = body.replace('<div id="dp" ', '<div id="dp-v2" ')
        if fault is not None and fault[0] == "truncate":
            body = body[: len(body) // 2]  # a complete response whose HTML stops half-way
        etag = '"' + hashlib.sha1(body.encode("utf-8")).hexdigest()[:20] + '"'
        modified = fronts.date.strftime("%a, %d %b %Y 00:00:00 GMT")
        cond = {"ETag": etag, "Last-Modified": modified}
        if self.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in self.headers and self.headers.get("If-Modified-Since") == modified
        ):
            return self._send(304, b"", head=True, extra=cond)
        self._send(200, body, head=head, extra=cond)

    def _amazon(self, asin: str, info: tuple, in_stock: bool, price: float | None, was: float | None) -> str:
        """Amazon-like HTML: price blocks only, no structured data."""
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
        price_html = ""
        if price is not None:
            whole, frac = f"{price:,.2f}".split(".")
            strike = (
                f'<span class="a-size-small">List Price: </span><span class="a-price a-text-price" '
                f'data-a-strike="true"><span class="a-offscreen">{_money(was)}</span></span>'
                if was is not None
                else ""
            )
            price_html = (
                f'<div id="corePrice_feature_div"><div class="a-section">'
                f'<span class="a-price priceToPay"><span class="a-offscreen">{_money(price)}</span>'
                f'<span aria-hidden="true"><span class="a-price-symbol">$</span>'
                f'<span class="a-price-whole">{whole}<span class="a-price-decimal">.</span></span>'
                f'<span class="a-price-fraction">{frac}</span></span></span>{strike}</div></div>'
            )
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
        return self._page(f"Amazon.com: {title}", body, self._canonical(url))

    def _walmart(self, item_id: str, info: tuple, in_stock: bool, price: float | None, was: float | None) -> str:
        """Walmart-like page: tiny HTML plus the __NEXT_DATA__ JSON state."""
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

        def money(x: float | None) -> dict | None:
            return None if x is None else {"price": x, "priceString": _money(x), "currencyUnit": "USD"}

        product["priceInfo"] = {"currentPrice": money(price), "wasPrice": money(was)}
        state = {
            "props": {"pageProps": {"initialData": {"data": {"product": product}}}},
            "page": "/ip/[...slug]",
            "buildId": "demo",
        }
        body = (
            f'<div id="__next"><h1 itemprop="name">{html.escape(title)}</h1></div>'
            f'<script id="__NEXT_DATA__" type="application/json">{_script_json(state)}</script>'
        )
        return self._page(f"{title} - Walmart.com", body, self._canonical(url))

    def _target(self, tcin: str, info: tuple, in_stock: bool, price: float | None, was: float | None) -> str:
        """Target-like page: schema.org JSON-LD Product plus data-test HTML."""
        url, title, brand, gtin, mpn, _cat = info
        full_url = self.server.base_url + url
        offer: dict[str, Any] = {"@type": "Offer"}
        if price is not None:
            offer["price"] = f"{price:.2f}"
        offer["priceCurrency"] = "USD"
        offer["availability"] = "https://schema.org/InStock" if in_stock else "https://schema.org/OutOfStock"
        offer["url"] = full_url
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
            price_html = f'<span data-test="product-price">{_money(price)}</span>'
            if was is not None:
                price_html += f' <span data-test="product-regular-price">reg {_money(was)}</span>'
        stock = "In stock" if in_stock else "Out of stock"
        body = (
            f'<h1 data-test="product-title">{html.escape(title)}</h1>'
            f'<div data-test="product-price-block">{price_html}</div>'
            f'<div data-test="fulfillment">{stock}</div>'
            f'<script type="application/ld+json">{_script_json(ld)}</script>'
        )
        return self._page(f"{title} : Target", body, self._canonical(url))


#: injectable faults: status/missing_price (permanent), and per-page transient ones, each
#: {(retailer, item_id): times} or {(retailer, item_id): (times, arg)}; layout_change_after = N requests
FAULT_KINDS = (
    "missing_price",
    "status",
    "retry_after",
    "burst_503",
    "delay",
    "truncate",
    "captcha",
    "layout_change_after",
)
_FAULT_DEFAULT_ARG = {"retry_after": 1, "burst_503": None, "delay": 0.5, "truncate": None, "captcha": None}


def _fault_spec(kind: str, value: Any) -> tuple[int, Any]:
    """(times, argument) of one transient fault: `times` (int) or `(times, arg)` (Retry-After s, delay s)."""
    times, arg = value if isinstance(value, (tuple, list)) else (value, _FAULT_DEFAULT_ARG[kind])
    if not isinstance(times, int) or times < 1:
        raise DemoError(f"faults: {kind} needs a repeat count >= 1, not {times!r}")
    if kind in ("retry_after", "delay") and (not isinstance(arg, (int, float)) or arg < 0):
        raise DemoError(f"faults: {kind} needs seconds >= 0, not {arg!r}")
    return times, arg


class Storefronts:
    """Three demo shops (amazon, walmart, target) on loopback, sharing one simulated clock."""

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        faults: Mapping[str, Any] | None = None,
    ):
        """Index the world; nothing listens until `start()`."""
        self.world = world
        self.host = host
        self.ports = {r: 0 for r in RETAILERS} if ports is None else dict(ports)
        unknown = set(self.ports) - set(RETAILERS)
        if unknown:
            raise DemoError(f"ports: unknown retailer(s) {', '.join(sorted(unknown))}")
        self._start = world.start
        self._n_days = int(world.params["n_days"])
        self.clock_index = self._n_days - 1
        self._shops = _index_world(world)
        self._servers: dict[str, _Server] = {}
        self._threads: list[threading.Thread] = []
        self._fault_missing: set[tuple[str, str]] = set()
        self._fault_status: dict[tuple[str, str], int] = {}
        self._fault_lock = threading.Lock()
        self.set_faults(faults)

    # --- clock ---------------------------------------------------------------------
    def _day_index(self, value: Any) -> int:
        """Index of a date inside the world; DemoError naming the valid range otherwise."""
        d = _as_date(value, "date")
        i = (d - self._start).days
        if not 0 <= i < self._n_days:
            end = self._start + timedelta(days=self._n_days - 1)
            raise DemoError(
                f"date {d.isoformat()} is outside the demo world ({self._start.isoformat()}..{end.isoformat()})"
            )
        return i

    @property
    def date(self) -> date:
        """The simulated day the shops currently show."""
        return self._start + timedelta(days=self.clock_index)

    def set_date(self, d: Any) -> date:
        """Move the shared simulated clock (date, datetime or YYYY-MM-DD); returns the date."""
        self.clock_index = self._day_index(d)
        return self.date

    def set_faults(self, faults: Mapping[str, Any] | None) -> None:
        """Replace the injected faults: missing_price {(retailer, item_id)}, status {key: code}."""
        faults = dict(faults or {})
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise DemoError(f"faults: unknown kind(s) {', '.join(sorted(unknown))} (known: {', '.join(FAULT_KINDS)})")
        status = {tuple(k): int(v) for k, v in dict(faults.get("status") or {}).items()}
        bad = [v for v in status.values() if not 100 <= v <= 599]
        if bad:
            raise DemoError(f"faults: status {bad[0]} is not an HTTP status code")
        self._fault_missing = {tuple(k) for k in faults.get("missing_price") or ()}
        self._fault_status = status
        self._fault_timed = {
            kind: {tuple(k): _fault_spec(kind, v) for k, v in dict(faults.get(kind) or {}).items()}
            for kind in ("retry_after", "burst_503", "delay", "truncate", "captcha")
        }
        layout = faults.get("layout_change_after")
        if layout is not None and (not isinstance(layout, int) or layout < 0):
            raise DemoError(f"faults: layout_change_after must be a request count >= 0, not {layout!r}")
        self._layout_after = layout
        self._fault_hits: dict[tuple[str, tuple[str, str]], int] = {}
        self._product_requests = 0
        self.fault_log: list[tuple[str, str, str]] = []  # (kind, retailer, item_id) of every fault served

    def _take_fault(self, key: tuple[str, str]) -> tuple[tuple[str, Any] | None, bool]:
        """(fault to serve now or None, whether the redesigned layout is live) for one product request."""
        with self._fault_lock:
            self._product_requests += 1
            layout_v2 = self._layout_after is not None and self._product_requests > self._layout_after
            for kind, specs in self._fault_timed.items():
                spec = specs.get(key)
                if spec is None:
                    continue
                times, arg = spec
                hits = self._fault_hits.get((kind, key), 0)
                if hits < times:
                    self._fault_hits[(kind, key)] = hits + 1
                    self.fault_log.append((kind, key[0], key[1]))
                    return (kind, arg), layout_v2
            return None, layout_v2

    # --- lifecycle ---------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        """{retailer: base_url} of the running shops (empty before start)."""
        return {r: s.base_url for r, s in self._servers.items()}

    def start(self) -> dict[str, str]:
        """Bind and serve every shop in daemon threads; returns {retailer: base_url}."""
        if self._servers:
            return self.urls
        try:
            for retailer in RETAILERS:
                port = int(self.ports.get(retailer, 0))
                try:
                    srv = _Server((self.host, port), _Handler, self, self._shops[retailer])
                except OSError as exc:
                    raise DemoError(
                        f"cannot start the {retailer} demo shop on {self.host}:{port}: {exc.strerror or exc}"
                    ) from exc
                self._servers[retailer] = srv
                th = threading.Thread(
                    target=srv.serve_forever, kwargs={"poll_interval": 0.2}, name=f"demo-{retailer}", daemon=True
                )
                th.start()
                self._threads.append(th)
        except DemoError:
            self.stop()
            raise
        return self.urls

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections and release the ports."""
        for srv in self._servers.values():
            srv.shutdown()
            with srv.conns_lock:
                conns = list(srv.conns)
            for conn in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            srv.server_close()
        for th in self._threads:
            th.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Storefronts:
        """Start on entry."""
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        """Stop on exit."""
        self.stop()


# ----------------------------------------------------------------------------------------
# registry: reuse running shops, or start them
# ----------------------------------------------------------------------------------------
def _default_registry() -> Path:
    """data/demo/storefronts.json."""
    from priceintel import config

    return config.demo_dir() / "storefronts.json"


def _alive(base_url: str, timeout: float = 1.0) -> bool:
    """True when `base_url` answers GET /__demo__/clock with 200."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        with opener.open(base_url.rstrip("/") + "/__demo__/clock", timeout=timeout) as r:
            return r.status == 200 and "date" in json.loads(r.read().decode("utf-8"))
    except (OSError, ValueError):
        return False


def _registered_urls(registry: Path, world_dir: Path) -> dict[str, str] | None:
    """URLs from the registry when it serves `world_dir` and every shop answers, else None."""
    try:
        reg = json.loads(registry.read_text())
        urls = {str(k): str(v) for k, v in dict(reg["urls"]).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if reg.get("world_dir") and Path(reg["world_dir"]).resolve() != world_dir.resolve():
        return None
    if reg.get("params") is not None and reg["params"] != _world_params(world_dir):
        return None  # the world was regenerated with other parameters: these shops serve a stale one
    if set(urls) != set(RETAILERS) or not all(_alive(u) for u in urls.values()):
        return None
    return urls


def _world_params(world_dir: Path) -> dict | None:
    """The params.json of the world in `world_dir` (None when unreadable)."""
    try:
        return json.loads((world_dir / "params.json").read_text())
    except (OSError, ValueError):
        return None


def _load_world(world_dir: Path) -> World:
    """The world in `world_dir` (generated with default params when there is none)."""
    if (world_dir / "params.json").is_file():
        return World.read(world_dir)
    return ensure_world(world_dir)


def ensure_storefronts(
    world_dir: str | Path, registry: str | Path | None = None
) -> tuple[dict[str, str], Storefronts | None]:
    """Reuse live shops listed in the registry (handle None), else start them in-process."""
    world_dir = Path(world_dir)
    reg = Path(registry) if registry is not None else _default_registry()
    urls = _registered_urls(reg, world_dir)
    if urls is not None:
        return urls, None
    fronts = Storefronts(_load_world(world_dir))
    return fronts.start(), fronts


def serve(
    world_dir: str | Path,
    ports: Mapping[str, int] | None = None,
    registry: str | Path | None = None,
    host: str = "127.0.0.1",
    stop_event: threading.Event | None = None,
) -> None:
    """Serve the shops in the foreground until SIGTERM/SIGINT (or `stop_event`), with a registry."""
    world_dir = Path(world_dir)
    reg = Path(registry) if registry is not None else _default_registry()
    ports = dict(DEFAULT_PORTS if ports is None else ports)
    stop = stop_event or threading.Event()
    fronts = Storefronts(_load_world(world_dir), host=host, ports=ports)
    urls = fronts.start()
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        reg.parent.mkdir(parents=True, exist_ok=True)
        reg.write_text(
            json.dumps(
                {
                    "urls": urls,
                    "pid": os.getpid(),
                    "world_dir": str(world_dir.resolve()),
                    "params": _world_params(world_dir),
                },
                indent=2,
            )
            + "\n"
        )
        for r, u in urls.items():
            print(f"{r:8s} {u}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        fronts.stop()
        try:
            if json.loads(reg.read_text()).get("pid") == os.getpid():
                reg.unlink()
        except (OSError, ValueError):
            pass
