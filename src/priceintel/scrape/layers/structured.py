"""Layers (a)–(c2): schema.org JSON-LD, embedded JSON state, adapter selectors, microdata and OpenGraph."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from priceintel.items import IN_STOCK, LIMITED, PREORDER
from priceintel.scrape.adapters import Adapter
from priceintel.scrape.layers.fields import _avail, _Fields, _first
from priceintel.scrape.layers.page import _ctx, _norm_text, _raw_lacks
from priceintel.scrape.layers.select import _compile, _script_elems, _select
from priceintel.scrape.layers.text import _first_h1

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _dig(obj: Any, path: str) -> Any:
    """Follow a dotted path ("a.b.0.c") through dicts/lists; None when any step is missing."""
    if not path:
        return obj
    for key in path.split("."):
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and key.lstrip("-").isdigit():
            idx = int(key)
            obj = obj[idx] if -len(obj) <= idx < len(obj) else None
        else:
            return None
        if obj is None:
            return None
    return obj


def _types(node: dict) -> set[str]:
    """Lower-case schema.org @type names of a JSON-LD node."""
    t = node.get("@type")
    values = t if isinstance(t, list) else [t]
    return {str(v).rsplit("/", 1)[-1].lower() for v in values if v}


def _walk_jsonld(
    obj: Any, out: list[dict], depth: int = 0, listed: set[int] | None = None, in_list: bool = False
) -> None:
    """Collect the top-level nodes of a JSON-LD document (through lists, @graph, mainEntity, variants).

    `listed` receives the `id()` of every node reached through an ItemList (`itemListElement` / `item`):
    other products (related, recommended, a listing), not the page's own."""
    if depth > 12:
        return
    if isinstance(obj, list):
        for item in obj:
            _walk_jsonld(item, out, depth + 1, listed, in_list)
    elif isinstance(obj, dict):
        out.append(obj)
        if in_list and listed is not None:
            listed.add(id(obj))
        for key in ("@graph", "mainEntity", "itemListElement", "item", "hasVariant"):
            if key in obj:
                _walk_jsonld(obj[key], out, depth + 1, listed, in_list or key in ("itemListElement", "item"))


def _loads_lenient(text: str) -> Any:
    """json.loads tolerant of control characters, HTML comments/CDATA and trailing commas."""
    text = text.strip()
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        pass
    cleaned = re.sub(r"^\s*(?:<!--|<!\[CDATA\[)|(?:-->|\]\]>)\s*$", "", text)
    cleaned = re.sub(r",\s*([}\]])", r"\1", cleaned)
    try:
        return json.loads(cleaned, strict=False)
    except json.JSONDecodeError:
        return None


def _layer_jsonld(tree: Any, f: _Fields) -> None:
    """(a) schema.org Product/Offer from <script type="application/ld+json">."""
    # = //script[translate(@type, A-Z, a-z)='application/ld+json'], without XPath's per-node strings
    scripts = [
        el for el in _script_elems(tree) if (el.get("type") or "").translate(_ASCII_LOWER) == "application/ld+json"
    ]
    nodes: list[dict] = []
    listed: set[int] = set()
    for script in scripts:
        data = _loads_lenient(script.text or "")
        if data is not None:
            _walk_jsonld(data, nodes, listed=listed)
    if not nodes:
        return
    products = _main_products(
        tree, [n for n in nodes if _types(n) & {"product", "productgroup", "individualproduct"}], listed
    )
    offers: list[dict] = []
    for p in products:
        m = "jsonld"
        f.set("title", p.get("name"), m)
        f.set("brand", p.get("brand") or p.get("manufacturer"), m)
        for key in ("gtin13", "gtin12", "gtin14", "gtin8", "gtin", "isbn"):
            if f.set("gtin", p.get(key), f"jsonld:{key}"):
                break
        f.set("mpn", p.get("mpn"), m)
        f.set("sku", p.get("sku"), m)
        f.set("image", p.get("image"), m)
        f.set("rating", p.get("aggregateRating"), m)
        offers.extend(_offer_nodes(p.get("offers")))
    if not offers:
        offers = [n for n in nodes if _types(n) & {"offer", "aggregateoffer"}]
    if len(offers) > 1 and not f.has("availability"):
        # variants (sizes, colours): the product is available when any of its offers is
        states = [_avail(o.get("availability"), f.adapter) for o in offers]
        buyable = next((a for a in states if a in (IN_STOCK, LIMITED, PREORDER)), None)
        f.set("availability", buyable or next((a for a in states if a), None), "jsonld:offers")
    for o in offers:
        _apply_offer(o, f)


def _main_products(tree: Any, products: list[dict], listed: set[int]) -> list[dict]:
    """The page's own products first: those not listed in an ItemList (other products') unless every one
    is, and among them the one named like the page's <h1> first (document order otherwise)."""
    own = [p for p in products if id(p) not in listed] or products
    if len(own) > 1:
        h1 = _first_h1(tree)
        title = (_norm_text(h1[0].text_content()) or "").lower() if h1 else ""
        own.sort(key=lambda p: (_norm_text(p.get("name")) or "").lower() != title if title else False)
    return own


def _offer_nodes(value: Any) -> list[dict]:
    """Offer dicts under a Product's `offers` (list, Offer, AggregateOffer with nested offers)."""
    out: list[dict] = []
    for o in value if isinstance(value, list) else [value]:
        if not isinstance(o, dict):
            continue
        nested = o.get("offers")
        if "aggregateoffer" in _types(o) and nested:
            out.extend(_offer_nodes(nested))
        out.append(o)
    return out


def _apply_offer(o: dict, f: _Fields) -> None:
    """Price, list price, currency, availability and seller from one JSON-LD Offer."""
    specs = o.get("priceSpecification")
    specs = specs if isinstance(specs, list) else [specs] if isinstance(specs, dict) else []
    currency = o.get("priceCurrency") or next((s.get("priceCurrency") for s in specs if s.get("priceCurrency")), None)
    if currency:
        f.hint_currency(currency, "jsonld")
    price = o.get("price")
    method = "jsonld"
    if price in (None, ""):
        price = next((s.get("price") for s in specs if s.get("price") is not None and not _is_list_spec(s)), None)
    if price in (None, "") and o.get("lowPrice") is not None:
        price, method = o.get("lowPrice"), "jsonld:lowPrice"
    if price not in (None, "") and not f.has("price"):
        f.set_price("price", price, method, hint=currency, hint_method="jsonld")
    for s in specs:
        if _is_list_spec(s) and s.get("price") is not None and not f.has("list_price"):
            f.set_price("list_price", s.get("price"), "jsonld:ListPrice")
    f.set("availability", o.get("availability"), "jsonld")
    f.set("seller", o.get("seller"), "jsonld")


def _is_list_spec(spec: dict) -> bool:
    """Whether a priceSpecification is a list/strikethrough ("was") price."""
    kind = str(spec.get("priceType", "")).rsplit("/", 1)[-1].lower()
    return kind in ("listprice", "strikethroughprice", "msrp", "srp")


def _embedded_json(tree: Any, adapter: Adapter) -> Any:
    """The adapter's embedded JSON state (script by selector, or a `var = {...}` assignment)."""
    if adapter.json_script:
        xp, _ = _compile(adapter.json_script)
        for node in xp(tree):
            data = _loads_lenient(node.text or "")
            if data is not None:
                return data
    if adapter.json_var:
        pattern = re.compile(re.escape(adapter.json_var) + r"\s*=\s*")
        for node in _script_elems(tree):
            text = node.text or ""
            m = pattern.search(text)
            if m:
                try:
                    return json.JSONDecoder(strict=False).raw_decode(text, m.end())[0]
                except json.JSONDecodeError:
                    continue
    return None


def _layer_embedded(tree: Any, f: _Fields) -> None:
    """(b) embedded JSON state (e.g. Next.js `__NEXT_DATA__`) via the adapter's paths."""
    adapter = f.adapter
    if not adapter.json_fields or not (adapter.json_script or adapter.json_var):
        return
    data = _embedded_json(tree, adapter)
    product = _dig(data, adapter.json_path)
    if not isinstance(product, dict):
        return
    currency_path = adapter.json_fields.get("currency")
    if currency_path:
        f.hint_currency(_dig(product, currency_path), f"json:{currency_path}")
    for name, path in adapter.json_fields.items():
        if name == "currency":
            continue
        value = _dig(product, path)
        if name == "price_raw":
            continue
        if name == "price" and value is not None and not f.has("price"):
            raw = adapter.json_fields.get("price_raw")
            raw_text = _norm_text(_dig(product, raw)) if raw else None
            if f.set_price("price", value, f"json:{path}") and raw_text:
                f.values["price_raw"] = raw_text
                f.methods["price_raw"] = f"json:{raw}"
            continue
        f.set(name, value, f"json:{path}")


def _layer_selectors(tree: Any, f: _Fields) -> None:
    """(c) adapter CSS/XPath selectors."""
    for name, sel in f.adapter.selectors.items():
        if f.has(name):
            continue
        for s in (sel,) if isinstance(sel, str) else sel:
            value = _select(tree, s)
            if value is not None and f.set(name, value, s if s.startswith("xpath:") else f"css:{s}"):
                break


def _layer_structured(tree: Any, f: _Fields, url: str) -> None:
    """(c2) microdata and OpenGraph through extruct (only when no price was found so far)."""
    from extruct.opengraph import OpenGraphExtractor

    try:  # microdata items need an itemscope attribute: skip extruct's document scans without one
        items = [] if _raw_lacks(tree, b"itemscope") else _microdata_items(tree, url)
    except Exception:  # extruct raises assorted errors on odd markup  # noqa: BLE001
        items = []
    if len(items) > 1:  # the product named like the page's <h1> first (other products' items after it)
        h1 = _first_h1(tree)
        title = (_norm_text(h1[0].text_content()) or "").lower() if h1 else ""
        if title:
            items = sorted(items, key=lambda it: _md_title(it) != title)
    for item in items:
        if not isinstance(item, dict):
            continue
        props = item.get("properties", {})
        t = str(item.get("type", "")).rsplit("/", 1)[-1].lower()
        if t == "product":
            f.set("title", props.get("name"), "microdata")
            f.set("brand", _md_name(props.get("brand")), "microdata")
            for key in ("gtin13", "gtin12", "gtin14", "gtin8", "gtin"):
                if f.set("gtin", props.get(key), f"microdata:{key}"):
                    break
            f.set("mpn", props.get("mpn"), "microdata")
            f.set("sku", props.get("sku"), "microdata")
            offers = props.get("offers")
            for o in offers if isinstance(offers, list) else [offers]:
                if isinstance(o, dict):
                    op = o.get("properties", {})
                    if op.get("priceCurrency"):
                        f.hint_currency(_first(op.get("priceCurrency")), "microdata")
                    if not f.has("price") and op.get("price") is not None:
                        f.set_price("price", _first(op.get("price")), "microdata")
                    f.set("availability", op.get("availability"), "microdata")
    try:
        og = _opengraph_items(tree) if tree.tag == "html" else OpenGraphExtractor().extract_items(tree, url)
    except Exception:  # noqa: BLE001
        og = []
    for item in og:
        props = dict(item.get("properties", []))
        f.set("title", props.get("og:title"), "opengraph")
        f.set("image", props.get("og:image"), "opengraph")
        cur = props.get("product:price:currency") or props.get("og:price:currency")
        if cur:
            f.hint_currency(cur, "opengraph")
        amount = props.get("product:price:amount") or props.get("og:price:amount")
        if amount and not f.has("price"):
            f.set_price("price", amount, "opengraph")
        f.set("availability", props.get("product:availability") or props.get("og:availability"), "opengraph")
        f.set("brand", props.get("product:brand"), "opengraph")


#: extruct's item / property XPaths, written with attribute steps instead of predicates (same
#: nodes, same order: libxml2 evaluates a `[@x]` predicate per element much more slowly)
_MD_ITEMS = etree.XPath("descendant-or-self::*/@itemscope/..")  # descendant-or-self::*[@itemscope]
_MD_PROPS = etree.XPath(  # set:difference(.//*[@itemprop], .//*[@itemscope]//*[@itemprop])
    "set:difference(descendant::*/@itemprop/.., descendant::*/@itemscope/../descendant::*/@itemprop/..)",
    namespaces={"set": "http://exslt.org/sets"},
)


def _microdata_items(tree: Any, url: str) -> list:
    """extruct's `MicrodataExtractor.extract_items`, listing the page's items once instead of twice.

    extruct finds every `[itemscope]` element with one XPath over the whole document to number the
    items, then with the same XPath again to walk them: the second call reuses the first's list.
    Its item and property XPaths are replaced by the faster equivalents `_MD_ITEMS` / `_MD_PROPS`.
    """
    from extruct.w3cmicrodata import MicrodataExtractor

    extractor = MicrodataExtractor()
    extractor._xp_prop = _MD_PROPS
    xp_item = _MD_ITEMS
    found = xp_item(tree)
    ctx = _ctx(tree)
    if ctx is not None and not ctx.ids and any(el.get("itemref") is not None for el in found):
        # extruct resolves `itemref` with XPath id(), which needs the parser's id table
        extractor._extract_property_refs = _property_refs_by_id(extractor, tree)
    last: list = [tree, found]

    def items_once(node: Any) -> list:
        if not last or last[0] is not node:
            last[:] = [node, xp_item(node)]
        return last[1]

    extractor._xp_item = items_once
    return extractor.extract_items(tree, url)


#: what libxml2's HTML parser enters in its id table: every `id`, and `name` on <a> (first one wins)
_ID_HOLDERS = etree.XPath("descendant-or-self::*/@id/.. | descendant-or-self::a/@name/..")


def _property_refs_by_id(extractor: Any, tree: Any) -> Callable[..., Any]:
    """extruct's `_extract_property_refs` (extruct 0.18) for a tree parsed without its id table.

    `id($refid)[1]` becomes a lookup in a map built like libxml2's id table (first element
    in document order with that `id`, or `name` on an <a>); the rest is extruct's own code.
    """
    from functools import partial

    ids: dict[str, Any] = {}
    for el in _ID_HOLDERS(tree):
        for value in (el.get("id"), el.get("name") if el.tag == "a" else None):
            if value is not None:
                ids.setdefault(value, el)

    def refs(node: Any, refid: str, items_seen: Any, base_url: Any, itemids: Any) -> Any:
        ref_node = ids.get(refid)
        if ref_node is None:
            return
        extract_fn = partial(extractor._extract_property, items_seen=items_seen, base_url=base_url, itemids=itemids)
        if ref_node.get("itemprop") is not None and ref_node.get("itemscope") is not None:
            yield from extract_fn(ref_node)  # a full item
        else:
            base_parent_scope = ref_node.xpath("ancestor-or-self::*[@itemscope][1]")
            for prop in ref_node.xpath("descendant-or-self::*[@itemprop]"):
                # skip properties defined in a different scope than the ref_node
                if prop.xpath("ancestor::*[@itemscope][1]") == base_parent_scope:
                    yield from extract_fn(prop)

    return refs


def _opengraph_items(tree: Any) -> list[dict]:
    """extruct's `OpenGraphExtractor.extract_items` for a parsed HTML page, without its two scans of
    the whole document for <head> (libxml2 keeps the only <head> as the root's child)."""
    from extruct.opengraph import _OG_NAMESPACES, _PREFIX_PATTERN

    head = tree.find("head")
    if head is None:
        return []
    namespaces = dict(_PREFIX_PATTERN.findall(tree.get("prefix", "")))
    namespaces.update(dict(_PREFIX_PATTERN.findall(head.get("prefix", ""))))
    props = []
    for el in head.iterchildren("meta"):
        prop, val = el.get("property"), el.get("content")
        if prop is None or val is None:
            continue
        ns = prop.partition(":")[0]
        if ns in _OG_NAMESPACES:
            namespaces[ns] = _OG_NAMESPACES[ns]
        if ns in namespaces:
            props.append((prop, val))
    return [{"namespace": namespaces, "properties": props}] if props else []


def _md_title(item: Any) -> str:
    """Lower-case name of a microdata item ("" when it has none)."""
    props = item.get("properties", {}) if isinstance(item, dict) else {}
    return (_norm_text(_first(props.get("name"))) or "").lower() if isinstance(props, dict) else ""


def _md_name(value: Any) -> Any:
    """Microdata Thing -> its name property (or the value)."""
    value = _first(value)
    if isinstance(value, dict):
        return _first(value.get("properties", {}).get("name"))
    return value
