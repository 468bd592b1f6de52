"""The demo catalogue's vocabulary and the items and listings built from it.

8 categories x 4 brands x 10 variants x 6 product types x 6 sizes: a product is one combination,
coded in mixed radix (`_encode` / `_decode`). Listings give each retailer its own ids, URL shapes
and title style (abbreviations, word order, a missing brand) on purpose.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from priceintel.demo.market import _ending
from priceintel.items import gtin_check_digit

#: per category (vocabulary.json): its key, price range (before size and brand), whether items carry an mpn, and its
#: 4 brands (house brand first), 10 variants, 6 product types and 6 sizes (with price multipliers)
_CATEGORIES: list[dict[str, Any]] = [
    {**c, "sizes": [tuple(s) for s in c["sizes"]]}
    for c in json.loads(resources.files("priceintel.demo").joinpath("vocabulary.json").read_text(encoding="utf-8"))
]
_NC, _NB, _NV, _NT, _NS = len(_CATEGORIES), 4, 10, 6, 6
_N_COMBOS = _NC * _NB * _NV * _NT * _NS


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


def _gtin13(body12: np.ndarray) -> np.ndarray:
    """GTIN-13 strings from an int array of 12-digit bodies."""
    return np.array([f"{b:012d}{gtin_check_digit(f'{b:012d}')}" for b in body12.tolist()], dtype=object)


def _unique_ints(rng: np.random.Generator, lo: int, hi: int, n: int, taken: np.ndarray | None = None) -> np.ndarray:
    """`n` distinct ints in [lo, hi) (not in `taken`), in random order."""
    out = np.empty(0, dtype=np.int64)
    taken = np.empty(0, dtype=np.int64) if taken is None else taken
    free = (hi - lo) - np.unique(taken[(taken >= lo) & (taken < hi)]).size
    if n > free:  # drawing would never end
        raise ValueError(f"{n} distinct numbers asked of [{lo}, {hi}), which has {free} free")
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
