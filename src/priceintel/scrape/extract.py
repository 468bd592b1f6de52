"""Product-page extraction in layers: JSON-LD -> embedded JSON -> adapter selectors -> heuristics.

Every field of the returned `Offer` records in `Offer.methods` which layer produced it
(`jsonld`, `json:<path>`, `css:<selector>` / `xpath:<expr>`, `microdata`, `opengraph`,
`heuristic:<rule>`, `url`). Prices are normalised decimal strings ("12.99") with an ISO
currency; `currency_raw` keeps the currency as written. GTINs are kept exactly as found
(digits only, e.g. a 12-digit UPC stays 12 digits) when their check digit is valid, else
dropped; comparisons use the canonical form `items.normalize_gtin` (one GTIN implementation, in `items`).
"""

from __future__ import annotations

import gc
import json
import re
import threading
from bisect import bisect_right
from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import cssselect
import cssselect.parser
import lxml.html
from cssselect import HTMLTranslator
from lxml import etree
from price_parser import Price

from priceintel import PriceIntelError
from priceintel.clean import AMBIGUOUS_SIGNS, currency_in_context, format_amount, parse_price
from priceintel.items import (
    DISCONTINUED,
    IN_STOCK,
    LIMITED,
    OUT_OF_STOCK,
    PREORDER,
    Offer,
    valid_gtin,
)
from priceintel.scrape.adapters import Adapter, adapter_for_url, get_adapter

__all__ = ["ExtractError", "extract"]

_SCHEMA_AVAIL = {
    "instock": IN_STOCK,
    "outofstock": OUT_OF_STOCK,
    "limitedavailability": LIMITED,
    "preorder": PREORDER,
    "presale": PREORDER,
    "discontinued": DISCONTINUED,
    "soldout": OUT_OF_STOCK,
    "onlineonly": IN_STOCK,
    "instoreonly": IN_STOCK,
    "backorder": PREORDER,
}
_WS = re.compile(r"\s+")
_PRICE_TEXT = re.compile(
    r"(?:[$€£¥₹]|\b(?:USD|EUR|GBP|CAD|AUD)\b)\s?\d[\d.,]*|\d[\d.,]*\s?(?:[€£]|\b(?:USD|EUR|GBP)\b)"
)
#: class/id tokens marking a price that is not the selling price (was, list, unit, shipping …)
_NOT_MAIN_PRICE = frozenset(
    {
        "strike",
        "strikethrough",
        "was",
        "regular",
        "list",
        "old",
        "original",
        "save",
        "savings",
        "shipping",
        "unit",
        "per",
        "msrp",
        "rrp",
        "reg",
    }
)
_TOKEN_SPLIT = re.compile(r"[\s_-]+")


class ExtractError(PriceIntelError):
    """The input handed to `extract` cannot be read as a page (wrong type)."""


# --- small helpers ------------------------------------------------------------------------


def _norm_text(text: Any) -> str | None:
    """Whitespace-collapsed string, None when empty."""
    if text is None:
        return None
    s = _WS.sub(" ", str(text)).strip()
    return s or None


# --- per-page context ----------------------------------------------------------------------


class _PageCtx:
    """The page being extracted: its tree, raw bytes (and lower-cased copy) and a memo for layers."""

    __slots__ = ("ascii_ok", "ids", "low", "memo", "raw", "tree")

    def __init__(self, tree: Any, raw: bytes, ids: bool = True) -> None:
        self.tree = tree
        self.raw = raw
        #: whether the tree was parsed with its id table (XPath id() works)
        self.ids = ids
        self.low = raw.lower()
        #: ASCII attribute names / class words appear as such in the bytes (not UTF-16 and the like)
        self.ascii_ok = b"\x00" not in raw
        self.memo: dict[str, Any] = {}


_LOCAL = threading.local()


def _ctx(tree: Any) -> _PageCtx | None:
    """The context of `tree` when it is the page this thread is extracting, else None."""
    ctx = getattr(_LOCAL, "ctx", None)
    return ctx if ctx is not None and ctx.tree is tree else None


def _memo(tree: Any, key: str, build: Callable[[], Any]) -> Any:
    """`build()` computed once per page (recomputed for a tree outside `extract`)."""
    ctx = _ctx(tree)
    if ctx is None:
        return build()
    if key not in ctx.memo:
        ctx.memo[key] = build()
    return ctx.memo[key]


def _raw_lacks(tree: Any, word: bytes) -> bool:
    """Whether the page's bytes certainly lack `word` (a lower-case ASCII attribute name).

    Attribute names cannot be written with character references, so a name absent from the bytes
    is absent from the tree. False when unsure (no context, non-ASCII-compatible encoding).
    """
    ctx = _ctx(tree)
    if ctx is None or not ctx.ascii_ok:
        return False
    key = "lacks:" + word.decode("ascii")
    if key not in ctx.memo:
        ctx.memo[key] = word not in ctx.low
    return ctx.memo[key]


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ID_PREFIX = re.compile(r"^(?P<tag>[a-zA-Z][\w-]*)?#(?P<id>[A-Za-z_][\w-]*)(?P<rest>(?:\s.*)?)$")


@lru_cache(maxsize=512)
def _compile(selector: str) -> tuple[etree.XPath, str | None]:
    """Compile a CSS (`…::attr(x)` / `…::text`) or `xpath:` selector into (XPath, attribute).

    CSS starting with `#id` (or `tag#id`) is anchored on XPath `id()`: an O(1) lookup in the
    parser's id table instead of a scan of the whole page.
    """
    attr = None
    if selector.startswith("xpath:"):
        return etree.XPath(selector[6:]), None
    css = selector
    m = re.search(r"::attr\(([^)]+)\)\s*$", css)
    if m:
        attr, css = m.group(1).strip(), css[: m.start()]
    elif css.endswith("::text"):
        css = css[: -len("::text")]
    css = css.strip()
    m = _ID_PREFIX.match(css)
    rest = m.group("rest").strip() if m else ""
    if m and "," not in rest and not rest.startswith((">", "+", "~")):
        xpath = f"id('{m.group('id')}')"
        if m.group("tag"):
            xpath += f"[self::{m.group('tag').lower()}]"
        if rest:
            xpath += "/" + HTMLTranslator().css_to_xpath(rest, prefix="descendant::")
        return etree.XPath(xpath), attr
    return etree.XPath(_css_xpath(css)), attr


@lru_cache(maxsize=512)
def _required_attrs(selector: str) -> tuple[bytes, ...]:
    """Attribute names every element chain selected by a CSS selector must carry (lower-case ASCII).

    `.a-price[data-a-strike=true] .a-offscreen` selects nothing on a page without a
    `data-a-strike` attribute: `_select` skips the XPath (a scan of the whole page) when the page's
    bytes lack one of these names. Only attribute tests that require the attribute count: the
    whole selector must be one group, and `:not(…)`, `:is(…)`, `[a!=b]` add nothing.
    """
    if selector.startswith("xpath:"):
        return ()
    css = re.sub(r"::attr\([^)]+\)\s*$|::text\s*$", "", selector).strip()
    try:
        groups = cssselect.parse(css)
    except cssselect.SelectorError:
        return ()
    if len(groups) != 1:
        return ()
    return tuple(dict.fromkeys(_attr_tests(groups[0].parsed_tree, across=True)))


def _attr_tests(node: Any, across: bool) -> list[bytes]:
    """Attribute names a parsed CSS selector requires (every compound when `across`, else the last one)."""
    names: list[bytes] = []
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, cssselect.parser.CombinedSelector):
            stack += [node.selector, node.subselector] if across else [node.subselector]
            continue
        if (
            isinstance(node, cssselect.parser.Attrib)
            and node.namespace is None
            and node.operator != "!="
            and node.attrib.isascii()
        ):
            names.append(node.attrib.lower().encode("ascii"))
        inner = getattr(node, "selector", None)  # Class, Hash, Attrib, Pseudo, Function, Negation…
        if inner is not None:
            stack.append(inner)
    return names


_LEADING_STEP = re.compile(r"^descendant-or-self::(\*|[a-z][a-z0-9]*)\[")
_ATTR_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")


def _css_xpath(css: str) -> str:
    """cssselect's XPath for `css`, its first step reached through a required attribute when there is one.

    `descendant-or-self::*[… and (@data-a-strike = 'true')]/…` tests its predicate on every element
    of the page; `descendant-or-self::*/@data-a-strike/parent::*[…]/…` (same nodes, same order)
    visits only the elements that carry the attribute, which libxml2 does several times faster.
    """
    xpath = HTMLTranslator().css_to_xpath(css)  # raises on a selector that does not parse
    m = _LEADING_STEP.match(xpath)
    groups = cssselect.parse(css)
    if m is None or len(groups) != 1:
        return xpath
    first = groups[0].parsed_tree
    while isinstance(first, cssselect.parser.CombinedSelector):
        first = first.selector
    names = [n.decode() for n in _attr_tests(first, across=False) if _ATTR_NAME.match(n.decode())]
    if not names:
        return xpath
    return f"descendant-or-self::*/@{names[0]}/parent::{m.group(1)}[" + xpath[m.end() :]


_META_CSS = re.compile(
    r"^meta\[(?P<name>property|name|itemprop)=(['\"]?)(?P<value>[^'\"\]]+)\2\](?:::attr\((?P<attr>[^)]+)\))?\s*$"
)
_ITEMPROP_CSS = re.compile(
    r"^\[itemprop=(['\"]?)(?P<outer>[\w-]+)\1\](?:\s+\[itemprop=(['\"]?)(?P<inner>[\w-]+)\3\])?"
    r"(?:::attr\((?P<attr>[^)]+)\)|::text)?\s*$"
)
#: = descendant-or-self::*[@itemprop]: libxml2 steps to the attribute and back faster than it tests a predicate
_ITEMPROP_ELEMS = etree.XPath("descendant-or-self::*/@itemprop/..")


@lru_cache(maxsize=512)
def _itemprop_selector(selector: str) -> tuple[str, str | None, str | None] | None:
    """(itemprop, ancestor itemprop or None, attribute or None) of `[itemprop=x]( [itemprop=y])(::attr(a))`."""
    m = _ITEMPROP_CSS.match(selector.strip())
    if m is None:
        return None
    if m.group("inner"):
        return m.group("inner"), m.group("outer"), m.group("attr")
    return m.group("outer"), None, m.group("attr")


@lru_cache(maxsize=512)
def _meta_selector(selector: str) -> tuple[str, str, str | None] | None:
    """(attribute, value, selected attribute or None) of `meta[attribute='value'](::attr(a))`."""
    m = _META_CSS.match(selector.strip())
    return (m.group("name"), m.group("value"), m.group("attr")) if m else None


def _scripts_and_metas(tree: Any) -> tuple[list, list]:
    """(every <script>, every <meta>) of the page in document order, listed by one walk per page.

    A walk of the whole tree costs about as much as a `tree.iter(tag)` whatever the tag: JSON-LD,
    embedded state, script SKUs and every `meta[…]` selector share this one.
    """

    def build() -> tuple[list, list]:
        scripts: list = []
        metas: list = []
        for el in tree.iter("script", "meta"):
            (scripts if el.tag == "script" else metas).append(el)
        return scripts, metas

    return _memo(tree, "script+meta", build)


def _meta_elems(tree: Any) -> list:
    """Every <meta> of the page in document order (listed once per page)."""
    return _scripts_and_metas(tree)[1]


def _script_elems(tree: Any) -> list:
    """Every <script> of the page in document order (listed once per page)."""
    return _scripts_and_metas(tree)[0]


def _itemprop_elems(tree: Any) -> list:
    """Every element with an itemprop attribute, in document order (listed once per page)."""
    return _memo(tree, "itemprop", lambda: [] if _raw_lacks(tree, b"itemprop") else _ITEMPROP_ELEMS(tree))


def _itemprop_nodes(tree: Any, prop: str, within: str | None) -> list:
    """What cssselect's `[itemprop=within] [itemprop=prop]` (or `[itemprop=prop]`) selects, in document order.

    The page's itemprop elements are listed once (one XPath pass, none at all when the bytes hold
    no `itemprop`) and every itemprop selector filters that list.
    """
    elems = _itemprop_elems(tree)
    out = [el for el in elems if el.get("itemprop") == prop]
    if within is not None and out:
        holders = {el for el in elems if el.get("itemprop") == within}
        if not holders:
            return []
        held: dict = {}  # element -> it or one of its ancestors is a holder (ancestors shared, walked once)

        def under_holder(el: Any) -> bool:
            path = []
            node = el.getparent()
            found = False
            while node is not None:
                if node in held:
                    found = held[node]
                    break
                if node in holders:
                    found = True
                    break
                path.append(node)
                node = node.getparent()
            for node in path:
                held[node] = found
            return found

        out = [el for el in out if under_holder(el)]
    return out


def _select(tree: Any, selector: str) -> str | None:
    """First non-empty text (or attribute) selected, whitespace-normalised."""
    fast = _itemprop_selector(selector)
    meta = _meta_selector(selector) if fast is None else None
    if fast is not None:
        nodes, attr = _itemprop_nodes(tree, fast[0], fast[1]), fast[2]
    elif meta is not None:
        nodes, attr = [el for el in _meta_elems(tree) if el.get(meta[0]) == meta[1]], meta[2]
    else:
        xp, attr = _compile(selector)
        nodes = [] if any(_raw_lacks(tree, name) for name in _required_attrs(selector)) else xp(tree)
    for node in nodes:
        if isinstance(node, str):
            value = node
        elif attr is not None:
            value = node.get(attr)
        else:
            value = node.text_content()
        value = _norm_text(value)
        if value:
            return value
    return None


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


def _walk_jsonld(obj: Any, out: list[dict], depth: int = 0) -> None:
    """Collect the top-level nodes of a JSON-LD document (through lists, @graph, mainEntity, variants)."""
    if depth > 12:
        return
    if isinstance(obj, list):
        for item in obj:
            _walk_jsonld(item, out, depth + 1)
    elif isinstance(obj, dict):
        out.append(obj)
        for key in ("@graph", "mainEntity", "itemListElement", "item", "hasVariant"):
            if key in obj:
                _walk_jsonld(obj[key], out, depth + 1)


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


def _first(value: Any) -> Any:
    """First element of a list (or the value itself)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _name_of(value: Any) -> str | None:
    """`name` of a JSON-LD Thing (brand, seller), or the string itself."""
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("name")
    return _norm_text(value) if isinstance(value, (str, int, float)) else None


def _avail(value: Any, adapter: Adapter) -> str | None:
    """schema.org availability URL from a schema value or page text."""
    value = _norm_text(_first(value))
    if value is None:
        return None
    key = value.rsplit("/", 1)[-1].lower().replace(" ", "")
    if key in _SCHEMA_AVAIL:
        return _SCHEMA_AVAIL[key]
    return adapter.normalise_availability(value)


# --- the extraction state -----------------------------------------------------------------


class _Fields:
    """Accumulates field values (first writer wins) and the method that produced each."""

    def __init__(self, adapter: Adapter, country: Callable[[], str | None] | None = None) -> None:
        self.adapter = adapter
        self._country = country
        self.values: dict[str, Any] = {}
        self.methods: dict[str, str] = {}

    @cached_property
    def country(self) -> str | None:
        """The page's country (ccTLD, <html lang> or og:locale region), read only when a sign is ambiguous."""
        return self._country() if self._country is not None else None

    def has(self, name: str) -> bool:
        """Whether a field already has a value."""
        return self.values.get(name) is not None

    def set(self, name: str, value: Any, method: str) -> bool:
        """Set a field unless already set or the value is empty/invalid; True when stored."""
        if self.has(name) or value is None:
            return False
        if name in ("price", "list_price"):
            return self.set_price(name, value, method)
        if name == "gtin":
            value = valid_gtin(value)
        elif name == "availability":
            value = _avail(value, self.adapter)
        elif name == "rating":
            try:
                value = float(_first(value) if not isinstance(value, dict) else value.get("ratingValue"))
            except (TypeError, ValueError):
                value = None
        elif name == "image":
            value = _first(value)
            value = value.get("url") if isinstance(value, dict) else value
            value = _norm_text(value)
        elif name in ("brand", "seller"):
            value = _name_of(value)
        else:
            value = _norm_text(_first(value))
        if name in self.adapter.field_regex and isinstance(value, str):
            m = re.search(self.adapter.field_regex[name], value)
            if m:
                value = next((g for g in m.groups() if g), value)
                value = _norm_text(value)
        if value is None:
            return False
        self.values[name] = value
        self.methods[name] = method
        return True

    def set_price(
        self, name: str, value: Any, method: str, hint: str | None = None, hint_method: str | None = None
    ) -> bool:
        """Parse and store a price/list price (and the currency, from its text or the hint)."""
        parsed = parse_price(value)
        if parsed.amount is None:
            return False
        self.values[name] = format_amount(parsed.amount)
        self.methods[name] = method
        if name != "price":
            return True
        if not self.has("price_raw"):
            self.values["price_raw"] = _norm_text(value)
            self.methods["price_raw"] = method
        if not self.has("currency_raw"):
            raw, cur_method = parsed.currency_raw, method
            if raw is None:
                raw = hint or self.values.get("_currency_hint")
                cur_method = hint_method if hint else self.methods.get("_currency_hint", method)
            if raw is not None:
                self.values["currency_raw"] = raw
                iso = parsed.currency if parsed.currency_raw else parse_price(None, raw).currency
                if str(raw).strip().rstrip(".").lower() in AMBIGUOUS_SIGNS:  # "$", "kr", "¥": whose?
                    iso = currency_in_context(raw, iso, self.country, self.values.get("_currency_hint"))
                self.values["currency"] = iso
                self.methods["currency"] = cur_method
        return True

    def hint_currency(self, raw: Any, method: str) -> None:
        """Remember a currency given beside a numeric price (e.g. JSON-LD priceCurrency)."""
        raw = _norm_text(raw)
        if raw and "_currency_hint" not in self.values:
            self.values["_currency_hint"] = raw
            self.methods["_currency_hint"] = method


# --- layers -------------------------------------------------------------------------------


def _layer_jsonld(tree: Any, f: _Fields) -> None:
    """(a) schema.org Product/Offer from <script type="application/ld+json">."""
    # = //script[translate(@type, A-Z, a-z)='application/ld+json'], without XPath's per-node strings
    scripts = [
        el for el in _script_elems(tree) if (el.get("type") or "").translate(_ASCII_LOWER) == "application/ld+json"
    ]
    nodes: list[dict] = []
    for script in scripts:
        data = _loads_lenient(script.text or "")
        if data is not None:
            _walk_jsonld(data, nodes)
    if not nodes:
        return
    products = [n for n in nodes if _types(n) & {"product", "productgroup", "individualproduct"}]
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


def _md_name(value: Any) -> Any:
    """Microdata Thing -> its name property (or the value)."""
    value = _first(value)
    if isinstance(value, dict):
        return _first(value.get("properties", {}).get("name"))
    return value


def _layer_heuristics(tree: Any, f: _Fields) -> None:
    """(d) itemprop/meta prices, then the first prominent currency-looking text in a price element."""
    if not f.has("price"):
        for sel, method in (
            ("[itemprop=price]::attr(content)", "heuristic:itemprop"),
            ("[itemprop=price]", "heuristic:itemprop"),
            ("meta[property='product:price:amount']::attr(content)", "heuristic:meta"),
            ("meta[property='og:price:amount']::attr(content)", "heuristic:meta"),
            ("meta[property='og:price']::attr(content)", "heuristic:meta"),
            ("meta[property='product:price']::attr(content)", "heuristic:meta"),
        ):
            value = _select(tree, sel)
            if value is not None:
                cur = _select(tree, "[itemprop=priceCurrency]::attr(content)") or _select(
                    tree, "meta[property='product:price:currency']::attr(content)"
                )
                if cur:
                    f.hint_currency(cur, method)
                if f.set_price("price", value, method):
                    break
    if not f.has("price") and f.values.get("availability") not in (OUT_OF_STOCK, DISCONTINUED):
        text = _prominent_price(tree, generic=f.adapter.name == "generic")
        if text is not None:
            f.set_price("price", text[0], text[1])
    if not f.has("title"):
        for sel in ("meta[property='og:title']::attr(content)", "h1", "title"):
            if f.set("title", _select(tree, sel), f"heuristic:{sel.split('[')[0].split(':')[0]}"):
                break
    if not f.has("availability"):
        f.set(
            "availability",
            _select(tree, "[itemprop=availability]::attr(href)")
            or _select(tree, "[itemprop=availability]::attr(content)"),
            "heuristic:itemprop",
        )
    if f.adapter.name == "generic" and f.values.get("availability") == OUT_OF_STOCK and _buy_button(tree):
        # structured data often reports one sold-out variant while the page still sells the product
        f.values["availability"], f.methods["availability"] = IN_STOCK, "heuristic:buy-button"


_BUY_WORDS = (
    "add-to-basket",
    "add-to-cart",
    "addtocart",
    "add-to-bag",
    "addtobag",
    "add_to_cart",
    "addtobasket",
    "add_to_basket",
    "add to basket",
    "add to cart",
    "add to bag",
)
_BUY_BUTTONS = etree.XPath("//body//button[not(@disabled)] | //body//input[@type='submit'][not(@disabled)]")
_NOT_MAIN = (
    "recommend",
    "carousel",
    "product-card",
    "related",
    "upsell",
    "crosssell",
    "cross-sell",
    "unavailable",
    "disabled",
    "hidden",
    "sold-out",
    "soldout",
)


def _buy_button(tree: Any) -> bool:
    """Whether the page has an enabled add-to-cart button of its own (not in recommendations)."""
    for el in _BUY_BUTTONS(tree):
        marker = " ".join(str(el.get(a, "")) for a in ("id", "class", "data-test", "data-cy", "name")).lower()
        if not any(w in marker for w in _BUY_WORDS) or el.get("hidden") is not None:
            continue
        chain = [el, *list(el.iterancestors())[:8]]
        if any(any(w in str(a.get("class", "")).lower() for w in _NOT_MAIN) for a in chain):
            continue
        return True
    return False


_PRICE_ELEMS_SLOW = etree.XPath(
    "//body//*[not(self::script or self::style or self::del or self::s or self::strike)]"
    "[contains(translate(@class,'PRICE','price'),'price') or contains(translate(@id,'PRICE','price'),'price')"
    " or contains(translate(@data-test,'PRICE','price'),'price')]"
)


def _PRICE_ELEMS(tree: Any) -> list:
    """Elements (not script/style/struck) whose class, id or data-test contains "price" in any case.

    Collected by the body scan (`_scan_body`); same elements, same order as `_PRICE_ELEMS_SLOW`.
    """
    return _body_scan(tree, price=True).price_elems


#: visible text nodes (struck-through ones are filtered where it matters, see `_struck_text`)
_TEXT_NODES = etree.XPath("//body//text()[not(parent::script or parent::style or parent::noscript)]")
_STRUCK = frozenset({"del", "s", "strike"})


def _struck_text(parent: Any, depth: int = 6) -> bool:
    """Whether a text node (given by its parent element) sits inside <del>/<s>/<strike> (a crossed-out price)."""
    el = parent
    for _ in range(depth):
        if el is None:
            return False
        if el.tag in _STRUCK:
            return True
        el = el.getparent()
    return False


def _prominent_price(tree: Any, generic: bool) -> tuple[str, str] | None:
    """(price text, method) from the first price-named element; any short text only for generic shops."""
    struck = _struck_memo(tree)
    for el in _PRICE_ELEMS(tree):
        if struck(el) or any(struck(a) for a in el.iterancestors()):
            continue
        text = _norm_text(el.text_content()) or ""
        m = _PRICE_TEXT.search(text) if len(text) <= 80 else None
        if m:
            return m.group(0), "heuristic:price-element"
    if generic:
        return _price_element_near_title(tree) or _described_price(tree) or _price_near_title(tree)
    return None


_DESCRIPTIONS = etree.XPath(
    "//meta[@property='og:description' or @name='description' or @name='twitter:description']/@content"
)


def _described_price(tree: Any) -> tuple[str, str] | None:
    """A currency-marked price in the page description, kept only when the body prints the same amount."""
    for desc in _DESCRIPTIONS(tree):
        m = _PRICE_TEXT.search(desc or "")
        if not m:
            continue
        amount = parse_price(m.group(0)).amount
        if amount is None or amount <= 0:
            continue
        for text in _text_nodes(tree)[1]:
            if text and len(text) <= 24 and len(_NUMBER.findall(text)) == 1 and parse_price(text).amount == amount:
                return m.group(0), "heuristic:description+body"
    return None


_H1 = etree.XPath("(//body//h1)[1]")


def _first_h1(tree: Any) -> list:
    """`_H1(tree)`: [the first <h1> in <body>] or [], from the page's body scan when it was made."""
    ctx = _ctx(tree)
    scan = ctx.memo.get("scan") if ctx is not None else None
    if scan is None:
        return _H1(tree)
    return [scan.h1] if scan.h1 is not None else []


_UNSTRUCK_TEXT = etree.XPath(
    ".//text()[not(ancestor::s or ancestor::del or ancestor::strike or ancestor::script or ancestor::style)]"
)
_NUMBER = re.compile(r"\d(?:[\d.,\u00a0\u202f ]*\d)?")


def _price_element_near_title(tree: Any) -> tuple[str, str] | None:
    """First price-named element (not struck, not a link) reading as amount + currency, after the <h1>.

    Elements before the title (navigation, banners) are used only when none follows it.
    """
    h1 = _first_h1(tree)
    order = {el: i for i, el in enumerate(tree.iter())} if h1 else {}
    title_at = order.get(h1[0], 0) if h1 else 0
    first: tuple[str, str] | None = None
    struck = _struck_memo(tree)
    for el in _PRICE_ELEMS(tree):
        if struck(el) or any(struck(a) or a.tag == "a" for a in el.iterancestors()):
            continue
        text = _norm_text(" ".join(_UNSTRUCK_TEXT(el))) or ""
        if not text or len(text) > 60 or len(_NUMBER.findall(text)) != 1:
            continue  # one amount only: a was/now pair or a quantity is not a clean price
        m = _PRICE_TEXT.search(text)
        parsed = parse_price(m.group(0) if m else text)
        if parsed.amount is None or parsed.amount <= 0 or parsed.currency_raw is None:
            continue
        value = m.group(0) if m else text
        if order.get(el, 0) >= title_at:
            return value, "heuristic:price-element"
        first = first or (value, "heuristic:price-element")
    return first


_BODY = etree.XPath("//body")


def _bodies(tree: Any) -> list:
    """`//body`: the root's <body> child when there is one (libxml2's HTML parser makes at most one
    <body>, always under <html>), else the XPath (a tree built another way)."""
    body = tree.find("body") if tree.tag == "html" else None
    return [body] if body is not None else _BODY(tree)


_SKIP_TEXT_IN = frozenset({"script", "style", "noscript"})
_NO_PRICE_TAGS = frozenset({"script", "style", "del", "s", "strike"})


class _BodyScan(NamedTuple):
    """One pass over <body>: visible text nodes (parent element + raw text) and attribute-named elements."""

    parents: list
    raws: list[str]
    #: elements whose class / id / data-test holds "price" (None when not collected)
    price_elems: list | None
    #: elements whose class / id / *qa* attribute names a product reference (None when not collected)
    sku_elems: list | None
    #: the first <h1> in <body> (= `_H1`), None without one
    h1: Any = None


def _scan_body(tree: Any, price: bool, sku: bool) -> _BodyScan:
    """Visible text nodes of <body> in document order (= `_TEXT_NODES`), plus, when asked, the
    elements of `_PRICE_ELEMS_SLOW` (`price`) and `_SKU_ATTR_SLOW` (`sku`), in one pass.

    The text of an element comes before its children, its tail after its last descendant: elements
    come from `iter()` (pre-order) and the tails of the elements closed before the next one are
    emitted when the walk climbs back to that element's parent. This replaces XPaths that build a
    string per node (text) or lower-case every attribute of every element with `translate()`
    (price / reference names): each took several milliseconds on a 600 KB page.
    """
    bodies = _bodies(tree)
    if len(bodies) != 1:
        nodes = _TEXT_NODES(tree)
        h1 = _H1(tree)
        return _BodyScan(
            [n.getparent() for n in nodes],
            [str(n) for n in nodes],
            _PRICE_ELEMS_SLOW(tree) if price else None,
            _SKU_ATTR_SLOW(tree) if sku else None,
            h1[0] if h1 else None,
        )
    body = bodies[0]
    parents: list = []
    raws: list[str] = []
    add_parent, add_raw = parents.append, raws.append
    price_elems: list | None = [] if price else None
    sku_elems: list | None = [] if sku else None
    skip, no_price, sku_words = _SKIP_TEXT_IN, _NO_PRICE_TAGS, _SKU_ATTR_WORDS
    h1 = None
    if body.text:
        add_parent(body)
        add_raw(body.text)
    stack = [body]
    push, pop = stack.append, stack.pop
    top = body  # stack[-1]
    elements = body.iter()
    next(elements)  # body itself
    for el in elements:
        parent = el.getparent()
        while top is not parent:  # close the elements that ended before `el`: their tails
            tail = pop().tail
            top = stack[-1]
            if tail and top.tag not in skip:
                add_parent(top)
                add_raw(tail)
        push(el)
        top = el
        tag = el.tag
        if tag.__class__ is not str:  # processing instruction: no text node of its own
            continue
        text = el.text
        if text and tag not in skip:
            add_parent(el)
            add_raw(text)
        if tag == "h1" and h1 is None:
            h1 = el
        if price_elems is not None and tag not in no_price:
            for name in ("class", "id", "data-test"):
                value = el.get(name)
                if value and "price" in value.lower():
                    price_elems.append(el)
                    break
        if sku_elems is not None:
            for name in el.keys():
                if name == "class" or name == "id" or "qa" in name:
                    value = el.get(name).lower()
                    # every reference word holds "product" or "number": one test before five
                    if ("product" in value or "number" in value) and any(w in value for w in sku_words):
                        sku_elems.append(el)
                        break
    while len(stack) > 1:
        tail = pop().tail
        if tail and stack[-1].tag not in skip:
            add_parent(stack[-1])
            add_raw(tail)
    return _BodyScan(parents, raws, price_elems, sku_elems, h1)


def _sku_hinted(tree: Any, raw: bytes = b"") -> bool:
    """Whether the page's bytes hold one of the reference words (any case) at all."""
    ctx = _ctx(tree)
    if ctx is None:
        low = raw.lower()
        return any(k in low for k in _SKU_ATTR_HINTS)
    if "sku_hinted" not in ctx.memo:
        # two regex scans with a literal prefix ("product", "number") instead of one `in` per word
        ctx.memo["sku_hinted"] = bool(_SKU_HINT_PRODUCT.search(ctx.low) or _SKU_HINT_NUMBER.search(ctx.low))
    return ctx.memo["sku_hinted"]


#: the `_SKU_ATTR_HINTS` words, as two patterns that start with a literal (fast to scan for)
_SKU_HINT_PRODUCT = re.compile(rb"product(?:-reference|-code|code)")
_SKU_HINT_NUMBER = re.compile(rb"number(?:(?<=catnumber)|(?<=article-number))")


def _body_scan(tree: Any, price: bool = False) -> _BodyScan:
    """The page's body scan, made once (price elements added by XPath if a later caller needs them)."""
    ctx = _ctx(tree)
    scan = ctx.memo.get("scan") if ctx is not None else None
    if scan is None:
        scan = _scan_body(tree, price=price, sku=_sku_hinted(tree))
    elif price and scan.price_elems is None:
        scan = scan._replace(price_elems=_PRICE_ELEMS_SLOW(tree))
    if ctx is not None:
        ctx.memo["scan"] = scan
    return scan


def _page_texts(tree: Any) -> tuple[list, list[str], list[str | None]]:
    """(parents, raw texts, normalised texts) of the visible text nodes, built once per page.

    Shared by every layer that reads the visible text (memo of the page being extracted).
    """

    def build() -> tuple[list, list[str], list[str | None]]:
        parents, raws = _raw_text_nodes(tree)
        # " ".join(s.split()) == _norm_text(s): str.split() and re's \s share one whitespace set
        return parents, raws, [" ".join(t.split()) or None for t in raws]

    return _memo(tree, "text_nodes", build)


def _raw_text_nodes(tree: Any) -> tuple[list, list[str]]:
    """(parents, raw texts) of the visible text nodes, walked once per page."""
    scan = _body_scan(tree)
    return scan.parents, scan.raws


def _text_nodes(tree: Any) -> tuple[list, list[str | None]]:
    """(parent element of each visible text node, its normalised text), built once per page."""
    parents, _, texts = _page_texts(tree)
    return parents, texts


def _title_index(tree: Any, parents: list) -> int | None:
    """Index of the first text node inside the page's first <h1> (parent at most 3 levels below it)."""
    h1 = _first_h1(tree)
    if not h1:
        return None
    h1 = h1[0]
    inside = {h1}
    level = [h1]
    for _ in range(3):
        level = [child for el in level for child in el]
        inside.update(level)
    for i, parent in enumerate(parents):
        if parent in inside:
            return i
    return None


def _price_near_title(tree: Any) -> tuple[str, str] | None:
    """The first price-only text at or after the product title (<h1>), outside links; else the first one."""
    parents, texts = _text_nodes(tree)
    title_at = _title_index(tree, parents)
    first: tuple[str, str] | None = None
    for i, parent in enumerate(parents):
        text = texts[i]
        if (
            not text
            or len(text) > 40
            or not any(c.isdigit() for c in text)
            or _in_tag(parent, "a")
            or _struck_text(parent)
        ):
            continue
        m = _PRICE_TEXT.search(text)
        value = m.group(0) if m else (text if len(text) <= 24 and _is_price_text(text) else None)
        if value is None:
            continue
        if title_at is None:
            return value, "heuristic:text"
        if i >= title_at:
            return value, "heuristic:text-after-title"
        first = first or (value, "heuristic:text")
    return first


def _in_tag(parent: Any, tag: str, depth: int = 4) -> bool:
    """Whether a text node (given by its parent element) sits inside `tag` within a few levels."""
    el = parent
    for _ in range(depth):
        if el is None:
            return False
        if el.tag == tag:
            return True
        el = el.getparent()
    return False


_PRICE_REST = re.compile(r"[\s.,:;*/()\-–—]*")


def _is_price_text(text: str) -> bool:
    """A short text that is only an amount and a currency ("131 990 тг.", "1.199,- Kr")."""
    parsed = parse_price(text)
    if parsed.amount is None or parsed.amount <= 0 or parsed.currency_raw is None:
        return False
    amount_text = Price.fromstring(text).amount_text or ""
    rest = text.replace(amount_text, "", 1).replace(parsed.currency_raw, "", 1)
    return _PRICE_REST.fullmatch(rest) is not None


def _struck_memo(tree: Any) -> Callable[[Any], bool]:
    """`_is_struck`, remembered per element for the page (price elements share their ancestors)."""
    seen: dict = _memo(tree, "struck", dict)

    def struck(el: Any) -> bool:
        found = seen.get(el)
        if found is None:
            found = seen[el] = _is_struck(el)
        return found

    return struck


def _is_struck(el: Any) -> bool:
    """Whether an element marks a struck-through / was / list / unit price."""
    if el.get("data-a-strike") == "true" or el.tag in ("del", "s", "strike"):
        return True
    marker = " ".join(str(el.get(a, "")) for a in ("class", "id", "data-test")).lower()
    if "text-price" in marker:
        return True
    tokens = _TOKEN_SPLIT.split(marker)
    for i, token in enumerate(tokens):
        if token in _NOT_MAIN_PRICE:
            # "list" marks a list price only as "list-price"; alone it is a layout word
            # (Bootstrap's "list-unstyled", "product-list", an id "price-list" for a block of prices)
            if token != "list" or (i + 1 < len(tokens) and tokens[i + 1] == "price"):
                return True
    return "listprice" in tokens


# --- SKU as printed on the page ------------------------------------------------------------

#: labels that introduce a retailer's own product reference, in the languages shops use
_SKU_LABELS = (
    r"sku|item\s*(?:#|no\.?|number|code|id)|article\s*(?:no\.?|number|code)|art\.?\s*-?\s*nr\.?|"
    r"artikel\s*-?\s*(?:nr\.?|nummer)|product\s*(?:code|id|no\.?|number|#)|prod(?:uct)?\.?\s*code|"
    r"r[ée]f[ée]rence|r[ée]f\.|c[óo]digo(?:\s+(?:del\s+)?producto)?|codice(?:\s+articolo|\s+prodotto)?|"
    r"cod(?:\s+produs)?|[šs]ifra(?:\s+izdelka|\s+artikla|\s+proizvoda)?|k[óo]d(?:\s+produktu|\s+tovaru)?|"
    r"numer\s+katalogowy|varenummer|varenr\.?|tuotenumero|artikelnr\.?|cikksz[áa]m|"
    r"код(?:\s+товара)?|артикул|арт\.|商品編號|商品编号|商品番号|品番|型番|ad\s*#|ad\s+id|post\s+id|"
    r"(?:ebay\s+)?item\s+number|listing\s+(?:id|#)|bestell\s*-?\s*(?:nr\.?|nummer)|"
    r"id\s+produ(?:to|cto|ct|it)|produkt\s*-?\s*(?:nr\.?|nummer|id)|num[ée]ro\s+d'article"
)
#: short labels that also introduce other codes (promo, accessory): used only when nothing better shows
_WEAK_SKU_LABELS = frozenset({"cod", "ref", "art", "арт", "код", "kód", "kod"})
_SKU_LABELLED = re.compile(
    r"(?<![\w])(?=[a-zšćč#\u0400-\u04ff\u4e00-\u9fff])"  # cheap first-letter check before the labels
    r"(?P<label>" + _SKU_LABELS + r")\s*[:#：〈№.–-]?\s*[:#：]?\s*"
    r"(?P<v>[A-Za-z0-9][A-Za-z0-9._/-]{0,38}[A-Za-z0-9])",
    re.IGNORECASE,
)
#: class / id / data-* attribute words marking an element that holds the product reference
_SKU_ATTR_WORDS = ("product-reference", "product-code", "productcode", "catnumber", "article-number")


_SKU_ATTR_SLOW = etree.XPath(
    "//body//*[@*[contains(translate(name(),'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'qa')"
    " or name()='class' or name()='id']["
    + " or ".join(
        f"contains(translate(.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'{w}')"
        for w in _SKU_ATTR_WORDS
    )
    + "]]"
)


def _sku_attr_elements(tree: Any) -> list:
    """Elements in <body> with a class / id / *qa* attribute naming a product reference, in document order."""
    scan = _body_scan(tree)
    return scan.sku_elems if scan.sku_elems is not None else _SKU_ATTR_SLOW(tree)


_URL_ID = re.compile(r"(?:^|[/_=-]|[a-z](?=\d{6,}))(?P<id>\d{5,})(?:\.html?|\.php|/|$)")


def _is_sku_value(value: str) -> bool:
    """A plausible product reference: has a digit, not a price or a date, not too long."""
    return (
        any(c.isdigit() for c in value)
        and 2 <= len(value) <= 40
        and not re.fullmatch(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d+[.,]\d{2}", value)
    )


_HAS_DIGIT = re.compile(r"\d")
_SKU_ATTR_HINTS = (b"product-reference", b"product-code", b"productcode", b"catnumber", b"article-number")


def _visible_sku(tree: Any, raw: bytes = b"") -> tuple[str, str] | None:
    """(reference, method) from a labelled text ("Product code: 64981901") or a reference-named element."""
    for el in _sku_attr_elements(tree) if _sku_hinted(tree, raw) else ():
        text = _norm_text(el.text_content())
        if text and len(text) <= 60:
            m = _SKU_LABELLED.search(text)
            value = m.group("v") if m else text.rsplit(" ", 1)[-1]
            if _is_sku_value(value):
                return value, "heuristic:sku-element"
    parents, raws = _raw_text_nodes(tree)
    # one regex pass over the short texts holding a digit and the text just before each; adjacent
    # nodes joined by a space so a label and its value in sibling elements
    # ("<strong>Šifra:</strong> 0638") read as one, others by "\x00"
    keep: list[int] = []
    parts: list[str] = []
    starts: list[int] = []
    pos, prev = 0, -2
    has_digit = _HAS_DIGIT.search
    # nodes with a digit; most text nodes are blank (indentation), rejected before the regex call
    for i in [i for i, raw in enumerate(raws) if not raw.isspace() and has_digit(raw)]:
        text = " ".join(raws[i].split())
        if len(text) > 200:
            continue
        if i - 1 > prev:  # the text before it, unless already kept
            before = " ".join(raws[i - 1].split()) if i > 0 else ""
            if before and len(before) <= 200:
                parts.append((" " if i - 1 == prev + 1 else "\x00") + before)
                starts.append(pos + 1)
                pos += len(before) + 1
                keep.append(i - 1)
                prev = i - 1
        parts.append((" " if i == prev + 1 else "\x00") + text)
        starts.append(pos + 1)
        pos += len(text) + 1
        keep.append(i)
        prev = i
    joined = "".join(parts)
    title_at: int | None = None
    first: tuple[str, str] | None = None
    after: tuple[str, str] | None = None
    strong: tuple[str, str] | None = None
    for m in _SKU_LABELLED.finditer(joined):
        i = keep[bisect_right(starts, m.start()) - 1]
        if not _is_sku_value(m.group("v")) or "\x00" in m.group(0) or _in_tag(parents[i], "a", 2):
            continue  # links name other products' codes
        if title_at is None:
            title_at = _title_index(tree, parents) or 0
        cand = (m.group("v"), "heuristic:sku-label")
        weak = m.group("label").lower().rstrip(".") in _WEAK_SKU_LABELS
        if i >= title_at and not weak:
            return cand
        if not weak:
            strong = strong or cand
        elif i >= title_at:
            after = after or cand
        first = first or cand
    return strong or after or first


_JSON_SKU = re.compile(r'"(?:sku|productSku|product_sku|articleNumber)"\s*:\s*"([A-Za-z0-9][\w./-]{1,38})"')
_QUERY_ID = re.compile(
    r"(?:^|&)(?:pid|sku|product_?id|products_id|item_?id|itemid|id)=([A-Za-z0-9-]{3,40})(?:&|$)", re.IGNORECASE
)


def _script_sku(tree: Any) -> str | None:
    """The first `"sku": "…"` value in the page's inline scripts (analytics / state objects)."""
    for node in _script_elems(tree):
        text = node.text or ""
        if "sku" in text or "articleNumber" in text:
            m = _JSON_SKU.search(text)
            if m and _is_sku_value(m.group(1)):
                return m.group(1)
    return None


def _layer_sku(tree: Any, f: _Fields, url: str, raw: bytes = b"") -> None:
    """The SKU as printed: visible labelled reference, else structured sku, else an id in the URL."""
    itemprop = _itemprop_nodes(tree, "sku", None) + _itemprop_nodes(tree, "productID", None)
    if len(itemprop) > 1:  # document order, as the XPath union
        order = {el: i for i, el in enumerate(_itemprop_elems(tree))}
        itemprop.sort(key=order.__getitem__)
    printed = None
    for el in itemprop:
        text = next((t for t in map(_norm_text, el.itertext()) if t), None)
        if text and " " in text:
            text = text.split(" ", 1)[0]  # the reference, not the caption printed after it
        content = _norm_text(el.get("content"))
        if text and _is_sku_value(text) and len(text) <= 40:
            printed = (text, "microdata:sku-text")
            break
        if content and _is_sku_value(content):
            printed = (content, "microdata:sku")
            break
    if f.adapter.name != "generic" and f.has("item_id"):
        f.set("sku", f.values["item_id"], f.methods["item_id"])  # a known retailer's own id
        return
    visible = _visible_sku(tree, raw)
    structured = f.values.get("sku")
    for cand in (printed, visible):
        if cand is not None and structured is not None and cand[0] != str(structured):
            # the page prints a reference the structured data does not use: keep what is shown
            f.values["sku"], f.methods["sku"] = cand
            break
    for cand in (printed, visible):
        if cand is not None and not f.has("sku"):
            f.set("sku", cand[0], cand[1])
    if not f.has("sku"):
        f.set("sku", _script_sku(tree), "json:sku")
    if not f.has("sku"):
        parts = urlsplit(url)
        q = _QUERY_ID.search(parts.query)
        if q and _is_sku_value(q.group(1)):
            f.set("sku", q.group(1), "url:query")
    if not f.has("sku"):
        ids = list(_URL_ID.finditer(urlsplit(url).path))
        if ids:  # the last id-like number of the path
            f.set("sku", ids[-1].group("id"), "url")


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


# --- entry point --------------------------------------------------------------------------


def _html_parser(encoding: str | None, ids: bool = True) -> Any:
    """lxml HTML parser whose every element is an `HtmlElement` (`ids`: keep the id table for XPath id()).

    lxml.html's default class lookup is a Python callback run for every element proxy (it only picks
    form / input / label subclasses, which extraction never uses); a fixed class keeps that in C.
    """
    parser = lxml.html.HTMLParser(remove_comments=True, collect_ids=ids, encoding=encoding)
    parser.set_element_class_lookup(
        etree.ElementDefaultClassLookup(
            element=lxml.html.HtmlElement,
            comment=lxml.html.HtmlComment,
            pi=lxml.html.HtmlProcessingInstruction,
            entity=lxml.html.HtmlEntity,
        )
    )
    return parser


_PARSERS: dict[tuple[str | None, bool], Any] = {
    (enc, ids): _html_parser(enc, ids) for enc in (None, "utf-8", "cp1252") for ids in (True, False)
}
_DECLARED_CHARSET = re.compile(rb"<meta[^>]+charset\s*=", re.IGNORECASE)


def _parse(raw: bytes, ids: bool = True) -> Any:
    """lxml HTML tree (None for an empty/unparseable document).

    The page's own <meta charset> wins; undeclared pages are read as UTF-8 (cp1252 if not UTF-8).
    `ids=False` skips the parser's id table (~6% of the parse): XPath `id()` then finds nothing.
    """
    if not raw or raw.isspace():  # = not raw.strip(), without copying the page
        return None
    if _DECLARED_CHARSET.search(raw[:4096]):
        encoding = None
    else:
        try:
            raw.isascii() or raw.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    try:
        return lxml.html.document_fromstring(raw, parser=_PARSERS[(encoding, ids)])
    except (etree.ParserError, ValueError):
        return None


_NEEDS_IDS: dict[int, tuple[Adapter, bool]] = {}


def _needs_ids(adapter: Adapter) -> bool:
    """Whether an adapter's selectors (or its JSON script selector) use XPath `id()` (`#id` in CSS).

    Pages of other adapters are parsed without the id table; the selectors extraction itself uses
    never look elements up by id (extruct's microdata `itemref` does: see `_microdata_items`).
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


def _page_country(url: str, tree: Any) -> str | None:
    """Two-letter country of a page: its host's country-code TLD, else the region of <html lang> / og:locale."""
    labels = (urlsplit(url).hostname or "").lower().rsplit(".", 1)
    if len(labels) == 2 and len(labels[1]) == 2 and labels[1].isalpha():
        return "gb" if labels[1] == "uk" else labels[1]
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
) -> Offer:
    """Extract one product page into an Offer (fields + `methods` + `page_kind`); never invents a price."""
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
        f = _Fields(adapter, lambda: _page_country(url, tree))
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
    if not f.has("item_id"):
        item = adapter.item_id_from_url(url)
        if item is not None:
            f.set("item_id", item, "url")
        else:
            f.set("item_id", f.values.get("sku"), "jsonld:sku")
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
