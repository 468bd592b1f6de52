"""Product-page extraction in layers: JSON-LD -> embedded JSON -> adapter selectors -> heuristics.

Every field of the returned `Offer` records in `Offer.methods` which layer produced it
(`jsonld`, `json:<path>`, `css:<selector>` / `xpath:<expr>`, `microdata`, `opengraph`,
`heuristic:<rule>`, `url`). Prices are normalised decimal strings ("12.99") with an ISO
currency; `currency_raw` keeps the currency as written. GTINs are kept exactly as found
(digits only, e.g. a 12-digit UPC stays 12 digits) when their check digit is valid, else
dropped; comparisons use the canonical form `items.normalize_gtin` (one GTIN implementation, in `items`).
The item id must be an id (`items.valid_item_id`: 1-128 of letters, digits and `._:/-`): a page's id that
is not (markup, spaces, a spreadsheet formula) is rejected, `Offer.methods["item_id_rejected"]` says where it
came from, and the id comes from the URL or the page's SKU instead (or stays None).

This module is the entry point (`extract`), the page classification (`Offer.page_kind`) and the
garbage-collector pause around a call; the layers and the per-page machinery they share live in
`priceintel.scrape.layers`.
"""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from priceintel import PriceIntelError
from priceintel.items import DISCONTINUED, OUT_OF_STOCK, Offer, valid_item_id
from priceintel.scrape.adapters import Adapter, adapter_for_url, get_adapter
from priceintel.scrape.layers.candidates import page_currency
from priceintel.scrape.layers.fields import _Fields
from priceintel.scrape.layers.heuristics import _layer_heuristics
from priceintel.scrape.layers.page import _LOCAL, _WS, _PageCtx, _parse
from priceintel.scrape.layers.select import _compile, _meta_elems
from priceintel.scrape.layers.sku import _layer_sku
from priceintel.scrape.layers.structured import _layer_embedded, _layer_jsonld, _layer_selectors, _layer_structured
from priceintel.scrape.layers.text import _raw_text_nodes

__all__ = ["ExtractError", "extract"]


class ExtractError(PriceIntelError):
    """The input handed to `extract` cannot be read as a page (wrong type)."""


# --- page classification ------------------------------------------------------------------


def _page_text(tree: Any) -> str:
    """Lower-case <title> + first 3,000 characters of visible body text."""
    title = " ".join(tree.xpath("//title//text()"))
    body = " ".join(_raw_text_nodes(tree)[1][:400])
    return (title + " " + _WS.sub(" ", body)[:3000]).lower()


def _page_kind(tree: Any, raw: bytes, f: _Fields, status: int | None) -> str:
    """product | not_found | blocked | truncated | no_price (see module docstring)."""
    if status in (404, 410):
        return "not_found"
    tail = raw[-4096:].lower()
    if not raw or raw.isspace() or (b"</html" not in tail and b"</body" not in tail):
        return "truncated"  # a price read from half a page is not trusted
    if f.has("price"):
        return "product"
    text = _page_text(tree) if tree is not None else ""
    if any(m in text for m in f.adapter.not_found_markers):
        return "not_found"
    if any(m in text for m in f.adapter.blocked_markers):
        return "blocked"
    if f.values.get("availability") in (OUT_OF_STOCK, DISCONTINUED):
        return "product"
    if f.has("title") or f.has("item_id"):
        return "no_price"
    return "not_found"


_NEEDS_IDS: dict[int, tuple[Adapter, bool]] = {}


def _needs_ids(adapter: Adapter) -> bool:
    """Whether an adapter's selectors (or its JSON script selector) use XPath `id()` (`#id` in CSS).

    Pages of other adapters are parsed without the id table; the selectors extraction itself uses
    never look elements up by id (extruct's microdata `itemref` does: see `layers.structured._microdata_items`).
    """
    cached = _NEEDS_IDS.get(id(adapter))
    if cached is not None and cached[0] is adapter:
        return cached[1]
    selectors = [adapter.json_script] if adapter.json_script else []
    for sel in adapter.selectors.values():
        selectors.extend((sel,) if isinstance(sel, str) else sel)
    needed = any("id(" in _compile(sel)[0].path for sel in selectors)
    _NEEDS_IDS[id(adapter)] = (adapter, needed)
    return needed


_LANG_REGION = re.compile(r"^[a-z]{2,3}[-_]([a-z]{2})\b", re.IGNORECASE)


def _page_country(url: str, tree: Any, default: str | None = None) -> str | None:
    """Two-letter country of a page: its host's country-code TLD, else `default` (the shop's), else the region
    of <html lang> / og:locale."""
    labels = (urlsplit(url).hostname or "").lower().rsplit(".", 1)
    if len(labels) == 2 and len(labels[1]) == 2 and labels[1].isalpha():
        return "gb" if labels[1] == "uk" else labels[1]
    if default:
        return default.lower()
    if tree is None:
        return None
    for lang in (
        tree.get("lang"),
        tree.get("xml:lang"),
        *(el.get("content") for el in _meta_elems(tree) if el.get("property") == "og:locale"),
    ):
        m = _LANG_REGION.match(lang or "")
        if m:
            return m.group(1).lower()
    return None


def extract(
    html: str | bytes,
    url: str,
    retailer: str | None = None,
    status: int | None = None,
    country: str | None = None,
) -> Offer:
    """Extract one product page into an Offer (fields + `methods` + `page_kind`); never invents a price.

    The page's country settles ambiguous currency signs ("$": USD, ARS, MXN, …): the URL's country-code TLD,
    else `country` (ISO 3166 alpha-2, e.g. the shop's `country` in shops.yaml), else the page's language tag."""
    if isinstance(html, str):
        raw = html.encode("utf-8")
    elif isinstance(html, (bytes, bytearray, memoryview)):
        raw = bytes(html)
    else:
        raise ExtractError(f"extract() needs the page as str or bytes, got {type(html).__name__} for {url}")
    adapter = get_adapter(retailer) if retailer else adapter_for_url(url)
    paused = _gc_pause()
    try:
        ids = _needs_ids(adapter)
        tree = _parse(raw, ids=ids)
        f = _Fields(adapter, lambda: _page_country(url, tree, country), lambda: page_currency(tree, f.country))
        _LOCAL.ctx = _PageCtx(tree, raw, ids) if tree is not None else None
        try:
            return _extract_tree(tree, raw, url, adapter, f, status)
        finally:
            _LOCAL.ctx = None  # release the tree
    finally:
        if paused:
            _gc_resume()


_GC_LOCK = threading.Lock()
#: extract() calls running with the cyclic garbage collector paused by `_gc_pause`
_GC_PAUSED = 0
#: calls ended since the collector was last turned back on (overlapping calls in threads)
_GC_HELD = 0
#: while calls keep overlapping, a full collection after this many of them (cycles are still freed)
_GC_HOLD_LIMIT = 200


def _gc_pause() -> bool:
    """Pause Python's cyclic garbage collector for one extract() call; True when this call holds a pause.

    A parsed page makes thousands of short-lived element proxies, lists and strings: with the
    collector on, their allocation triggers several young-generation collections per page that
    find nothing to free (the page's objects are freed by reference counting when extract()
    returns). Paused, the collector runs once after the call instead. Concurrent calls share one
    pause (counted under a lock); if they keep overlapping, a full collection runs every
    `_GC_HOLD_LIMIT` calls. A collector that was already off (`gc.disable()` by the application)
    is left alone.
    """
    global _GC_PAUSED
    with _GC_LOCK:
        if _GC_PAUSED == 0:
            if not gc.isenabled():
                return False
            gc.disable()
        _GC_PAUSED += 1
        return True


def _gc_resume() -> None:
    """End one `_gc_pause`; the last running call turns the collector back on."""
    global _GC_PAUSED, _GC_HELD
    with _GC_LOCK:
        _GC_PAUSED -= 1
        if _GC_PAUSED == 0:
            _GC_HELD = 0
            gc.enable()
            return
        _GC_HELD += 1
        if _GC_HELD >= _GC_HOLD_LIMIT:  # other calls still running: never hold the collector off for good
            _GC_HELD = 0
            gc.collect()


def _settle_item_id(f: _Fields, adapter: Adapter, url: str) -> None:
    """The offer's item id: the page's when it is a valid id, else the URL's, else the page's SKU (each checked
    by `items.valid_item_id`); the first candidate rejected is noted in `f.methods["item_id_rejected"]` (its
    method), and a SKU that only copied a rejected page id is dropped too."""
    found = f.values.get("item_id")
    if found is not None and valid_item_id(found) is None:
        method = f.methods.pop("item_id")
        del f.values["item_id"]
        f.methods["item_id_rejected"] = method
        if f.values.get("sku") == found:
            del f.values["sku"]
            f.methods.pop("sku", None)
    elif found is not None:
        f.values["item_id"] = valid_item_id(found)
        return
    for value, method in ((adapter.item_id_from_url(url), "url"), (f.values.get("sku"), "jsonld:sku")):
        item = valid_item_id(value)
        if item is not None:
            f.set("item_id", item, method)
            return
        if value is not None and "item_id_rejected" not in f.methods:
            f.methods["item_id_rejected"] = f.methods.get("sku", method) if method == "jsonld:sku" else method


def _extract_tree(tree: Any, raw: bytes, url: str, adapter: Adapter, f: _Fields, status: int | None) -> Offer:
    """The layers over a parsed page (tree None for an empty / unparseable one) -> Offer."""
    if tree is not None:
        steps: list[Callable[[Any, _Fields], None]] = [_layer_jsonld, _layer_embedded, _layer_selectors]
        for step in steps:
            step(tree, f)
        if not f.has("price") and (b"itemprop" in raw or b"og:" in raw or b"product:price" in raw):
            _layer_structured(tree, f, url)
        _layer_heuristics(tree, f)
        _layer_sku(tree, f, url, raw)
    _settle_item_id(f, adapter, url)
    kind = _page_kind(tree, raw, f, status)
    vals = f.values
    methods = {k: v for k, v in f.methods.items() if not k.startswith("_")}
    return Offer(
        url=url,
        retailer=adapter.name,
        item_id=vals.get("item_id"),
        title=vals.get("title"),
        brand=vals.get("brand"),
        gtin=vals.get("gtin"),
        mpn=vals.get("mpn"),
        sku=vals.get("sku"),
        price=vals.get("price"),
        price_raw=vals.get("price_raw"),
        list_price=vals.get("list_price"),
        currency=vals.get("currency"),
        currency_raw=vals.get("currency_raw"),
        availability=vals.get("availability"),
        seller=vals.get("seller"),
        rating=vals.get("rating"),
        image=vals.get("image"),
        page_kind=kind,
        methods=methods,
    )
