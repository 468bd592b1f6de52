"""Deterministic demo world: catalogue, competitor price paths, own sales and ground truth.

``generate_world(n_products, n_days, seed, start) -> World`` (fully vectorised numpy, same
arguments → identical frames); ``World.write(dir)`` / ``World.read(dir)``; ``ensure_world(dir, **params)``.
The vocabulary and listings come from `priceintel.demo.catalogue`, the price paths and demand from
`priceintel.demo.market`; `priceintel.demo.storefronts` serves the world as three shops.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.demo.catalogue import (
    _ALNUM,
    _N_COMBOS,
    _NB,
    _NC,
    _distractor_codes,
    _items,
    _listing_frame,
    _retailer_ids,
    _unique_ints,
)
from priceintel.demo.market import (
    _RETAILER_FACTOR,
    _competitor_prices,
    _demand,
    _ending,
    _own_prices,
    _undercut_caps,
    _war_caps,
)
from priceintel.items import LISTING_COLUMNS, PRODUCT_COLUMNS, SALES_COLUMNS

__all__ = ["DEFAULT_START", "MAX_PRODUCTS", "RETAILERS", "DemoError", "World", "ensure_world", "generate_world"]

RETAILERS = ("amazon", "walmart", "target")
DEFAULT_START = date(2026, 7, 1)
PRICE_COLUMNS = ["retailer", "item_id", "ds", "price", "list_price", "in_stock", "promo"]
TRUTH_MATCH_COLUMNS = ["retailer", "item_id", "sku"]
TRUTH_ELASTICITY_COLUMNS = ["sku", "own_elasticity", "cross_elasticity"]
#: products and their near-duplicate distractors (a tenth as many again, twice) draw distinct 4-digit MPN numbers
#: from 9,000: at 7,000 that takes 4 s; near 7,500 it slows, and beyond it would never end
MAX_PRODUCTS = 7000


class DemoError(PriceIntelError):
    """The demo world or storefronts were asked for something impossible (bad params, files)."""


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
    rng = np.random.default_rng(seed)  # every step draws from it in turn: their order is part of the world
    cat = _catalogue(rng, n)
    lst = _listings(rng, cat)
    dates = pd.date_range(pd.Timestamp(start), periods=d, freq="D").astype("datetime64[ns]")
    own_price, own_promo = _own_prices(rng, cat.products["base_price"].to_numpy(), d)
    shelf, prices = _competitor_truth(rng, lst, own_price, dates)
    sales, truth_el = _sales(rng, cat, own_price, own_promo, shelf[lst.plist], start, dates)
    params = {
        "seed": int(seed),
        "n_products": n,
        "n_days": d,
        "start": start.isoformat(),
        "end": (start + timedelta(days=d - 1)).isoformat(),
    }
    return World(cat.products, lst.listings, prices, sales, lst.truth_matches, truth_el, params)


class _Catalogue(NamedTuple):
    """Our products (PRODUCT_COLUMNS + base_price) with their item attributes, and the distractor items."""

    products: pd.DataFrame
    items: pd.DataFrame
    distractors: pd.DataFrame
    #: distractor listings per retailer
    k_dis: int


def _catalogue(rng: np.random.Generator, n: int) -> _Catalogue:
    """`n` catalogue products (sku, costs, MAP, base price) and a pool of near-duplicate distractor items."""
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
    return _Catalogue(products, prod_items, dis_items, k_dis)


class _Listings(NamedTuple):
    """Every retailer's listings, their truth, and per-listing inputs of the price simulation."""

    listings: pd.DataFrame
    truth_matches: pd.DataFrame
    #: (3, n) row in `listings` of each retailer's listing of each product
    plist: np.ndarray
    #: per listing: its item's MSRP and its retailer's price factor
    msrp: np.ndarray
    factor: np.ndarray


def _listings(rng: np.random.Generator, cat: _Catalogue) -> _Listings:
    """Each retailer lists every product plus ~10% distractors, sorted by its own item id."""
    n = len(cat.products)
    sku = cat.products["sku"].to_numpy()
    frames, truth_sku, msrp_l, factor_l = [], [], [], []
    plist = np.zeros((3, n), dtype=np.int64)
    offset = 0
    for r, retailer in enumerate(RETAILERS):
        dpick = rng.choice(len(cat.distractors), min(cat.k_dis, len(cat.distractors)), replace=False)
        sel = pd.concat([cat.items, cat.distractors.iloc[dpick]], ignore_index=True)
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
    return _Listings(listings, truth_matches, plist, np.concatenate(msrp_l), np.concatenate(factor_l))


def _competitor_truth(
    rng: np.random.Generator, lst: _Listings, own_price: np.ndarray, dates: pd.DatetimeIndex
) -> tuple[np.ndarray, pd.DataFrame]:
    """(shelf price matrix (listing, day), NaN when out of stock; the long `prices` frame)."""
    d = len(dates)
    comp = _competitor_prices(rng, lst.msrp, lst.factor, d)
    cap = np.full(comp["price"].shape, np.inf)
    _war_caps(rng, comp["regular"], lst.plist, d, cap)
    _undercut_caps(rng, own_price, lst.plist, cap)
    in_stock = ~comp["oos"]
    price = np.where(in_stock, np.minimum(comp["price"], cap), np.nan)
    promo = comp["promo"] & in_stock
    list_price = np.where(promo, comp["regular"], np.nan)

    listings = lst.listings
    L = len(listings)
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
    return price, prices


def _sales(
    rng: np.random.Generator,
    cat: _Catalogue,
    own_price: np.ndarray,
    own_promo: np.ndarray,
    comp_price: np.ndarray,
    start: date,
    dates: pd.DatetimeIndex,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(our daily sales as SALES_COLUMNS, the true elasticities behind them)."""
    n, d = own_price.shape
    sku = cat.products["sku"].to_numpy()
    base_price = cat.products["base_price"].to_numpy()
    units, own_e, cross_e = _demand(rng, own_price, base_price, comp_price, cat.products["msrp"].to_numpy(), start)
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
    return sales, truth_el


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
    want: dict[str, Any] = {"n_products": 50, "n_days": 90, "seed": 42, "start": DEFAULT_START}
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
