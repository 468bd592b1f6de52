"""Product-page extraction in layers: JSON-LD -> embedded JSON -> adapter selectors -> heuristics.

Every field of the returned `Offer` records in `Offer.methods` which layer produced it
(`jsonld`, `json:<path>`, `css:<selector>` / `xpath:<expr>`, `microdata`, `opengraph`,
`heuristic:<rule>`, `url`). Prices are normalised decimal strings ("12.99") with an ISO
currency; `currency_raw` keeps the currency as written. GTINs are kept exactly as found
(digits only, e.g. a 12-digit UPC stays 12 digits) when their check digit is valid, else
dropped: callers compare a UPC-A with a GTIN-13 by left-padding with "0" (`gtin13`).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from urllib.parse import urlsplit
from functools import lru_cache
from typing import Any, Callable, Optional, Union

import lxml.html
from price_parser import Price
from cssselect import HTMLTranslator
from lxml import etree

from priceintel import PriceIntelError
from priceintel.clean import format_amount, parse_price
from priceintel.items import (
    DISCONTINUED, IN_STOCK, LIMITED, OUT_OF_STOCK, PREORDER, Offer,
)
from priceintel.scrape.adapters import Adapter, adapter_for_url, get_adapter

__all__ = ["ExtractError", "extract", "gtin13", "valid_gtin"]

_SCHEMA_AVAIL = {
    "instock": IN_STOCK, "outofstock": OUT_OF_STOCK, "limitedavailability": LIMITED,
    "preorder": PREORDER, "presale": PREORDER, "discontinued": DISCONTINUED,
    "soldout": OUT_OF_STOCK, "onlineonly": IN_STOCK, "instoreonly": IN_STOCK,
    "backorder": PREORDER,
}
_WS = re.compile(r"\s+")
_PRICE_TEXT = re.compile(
    r"(?:[$€£¥₹]|\b(?:USD|EUR|GBP|CAD|AUD)\b)\s?\d[\d.,]*|\d[\d.,]*\s?(?:[€£]|\b(?:USD|EUR|GBP)\b)"
)
#: class/id tokens marking a price that is not the selling price (was, list, unit, shipping …)
_NOT_MAIN_PRICE = frozenset({"strike", "strikethrough", "was", "regular", "list", "old", "original",
                             "save", "savings", "shipping", "unit", "per", "msrp", "rrp", "reg"})
_TOKEN_SPLIT = re.compile(r"[\s_-]+")


class ExtractError(PriceIntelError):
    """The input handed to `extract` cannot be read as a page (wrong type)."""


# --- small helpers ------------------------------------------------------------------------

def _norm_text(text: Any) -> Optional[str]:
    """Whitespace-collapsed string, None when empty."""
    if text is None:
        return None
    s = _WS.sub(" ", str(text)).strip()
    return s or None


def valid_gtin(value: Any) -> Optional[str]:
    """The GTIN-8/12/13/14 digit string if its check digit is valid, else None (kept as found)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        s = str(value)
        s = s.zfill(next((n for n in (8, 12, 13, 14) if n >= len(s)), len(s)))
    else:
        s = re.sub(r"[\s-]", "", str(value))
    if not s.isdigit() or len(s) not in (8, 12, 13, 14):
        return None
    digits = [int(c) for c in s]
    body, check = digits[:-1], digits[-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return s if (10 - total % 10) % 10 == check else None


def gtin13(value: Any) -> Optional[str]:
    """A valid GTIN as 13 digits (UPC-A / GTIN-8 left-padded with zeros); None if invalid or GTIN-14."""
    g = valid_gtin(value)
    if g is None or len(g) > 13:
        return None
    return g.zfill(13)


_ID_PREFIX = re.compile(r"^(?P<tag>[a-zA-Z][\w-]*)?#(?P<id>[A-Za-z_][\w-]*)(?P<rest>(?:\s.*)?)$")


@lru_cache(maxsize=512)
def _compile(selector: str) -> tuple[etree.XPath, Optional[str]]:
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
    return etree.XPath(HTMLTranslator().css_to_xpath(css)), attr


def _select(tree: Any, selector: str) -> Optional[str]:
    """First non-empty text (or attribute) selected, whitespace-normalised."""
    xp, attr = _compile(selector)
    for node in xp(tree):
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


def _name_of(value: Any) -> Optional[str]:
    """`name` of a JSON-LD Thing (brand, seller), or the string itself."""
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("name")
    return _norm_text(value) if isinstance(value, (str, int, float)) else None


def _avail(value: Any, adapter: Adapter) -> Optional[str]:
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

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.values: dict[str, Any] = {}
        self.methods: dict[str, str] = {}

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

    def set_price(self, name: str, value: Any, method: str, hint: Optional[str] = None,
                   hint_method: Optional[str] = None) -> bool:
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
                self.values["currency"] = parsed.currency if parsed.currency_raw else \
                    parse_price(None, raw).currency
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
    scripts = tree.xpath(
        "//script[translate(@type,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz')"
        "='application/ld+json']"
    )
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
    currency = o.get("priceCurrency") or next((s.get("priceCurrency") for s in specs
                                              if s.get("priceCurrency")), None)
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
        for node in tree.iter("script"):
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
    from extruct.w3cmicrodata import MicrodataExtractor

    try:
        items = MicrodataExtractor().extract_items(tree, url)
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
        og = OpenGraphExtractor().extract_items(tree, url)
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
        f.set("availability", props.get("product:availability") or props.get("og:availability"),
              "opengraph")
        f.set("brand", props.get("product:brand"), "opengraph")


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
                    tree, "meta[property='product:price:currency']::attr(content)")
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
        f.set("availability", _select(tree, "[itemprop=availability]::attr(href)")
              or _select(tree, "[itemprop=availability]::attr(content)"), "heuristic:itemprop")
    if f.adapter.name == "generic" and f.values.get("availability") == OUT_OF_STOCK and _buy_button(tree):
        # structured data often reports one sold-out variant while the page still sells the product
        f.values["availability"], f.methods["availability"] = IN_STOCK, "heuristic:buy-button"


_BUY_WORDS = ("add-to-basket", "add-to-cart", "addtocart", "add-to-bag", "addtobag", "add_to_cart",
              "addtobasket", "add_to_basket", "add to basket", "add to cart", "add to bag")
_BUY_BUTTONS = etree.XPath("//body//button[not(@disabled)] | //body//input[@type='submit'][not(@disabled)]")
_NOT_MAIN = ("recommend", "carousel", "product-card", "related", "upsell", "crosssell", "cross-sell",
             "unavailable", "disabled", "hidden", "sold-out", "soldout")


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


_PRICE_ELEMS = etree.XPath(
    "//body//*[not(self::script or self::style or self::del or self::s or self::strike)]"
    "[contains(translate(@class,'PRICE','price'),'price') or contains(translate(@id,'PRICE','price'),'price')"
    " or contains(translate(@data-test,'PRICE','price'),'price')]"
)
#: visible text nodes (struck-through ones are filtered where it matters, see `_struck_text`)
_TEXT_NODES = etree.XPath("//body//text()[not(parent::script or parent::style or parent::noscript)]")
_STRUCK = frozenset({"del", "s", "strike"})


def _struck_text(node: Any, depth: int = 6) -> bool:
    """Whether a text node sits inside <del>/<s>/<strike> (a crossed-out price)."""
    el = node.getparent()
    for _ in range(depth):
        if el is None:
            return False
        if el.tag in _STRUCK:
            return True
        el = el.getparent()
    return False


def _prominent_price(tree: Any, generic: bool) -> Optional[tuple[str, str]]:
    """(price text, method) from the first price-named element; any short text only for generic shops."""
    for el in _PRICE_ELEMS(tree):
        if _is_struck(el) or any(_is_struck(a) for a in el.iterancestors()):
            continue
        text = _norm_text(el.text_content()) or ""
        m = _PRICE_TEXT.search(text) if len(text) <= 80 else None
        if m:
            return m.group(0), "heuristic:price-element"
    if generic:
        return _price_element_near_title(tree) or _described_price(tree) or _price_near_title(tree)
    return None


_DESCRIPTIONS = etree.XPath("//meta[@property='og:description' or @name='description'"
                            " or @name='twitter:description']/@content")


def _described_price(tree: Any) -> Optional[tuple[str, str]]:
    """A currency-marked price in the page description, kept only when the body prints the same amount."""
    for desc in _DESCRIPTIONS(tree):
        m = _PRICE_TEXT.search(desc or "")
        if not m:
            continue
        amount = parse_price(m.group(0)).amount
        if amount is None or amount <= 0:
            continue
        for text in _text_nodes(tree)[1]:
            if text and len(text) <= 24 and len(_NUMBER.findall(text)) == 1 and \
                    parse_price(text).amount == amount:
                return m.group(0), "heuristic:description+body"
    return None


_H1 = etree.XPath("(//body//h1)[1]")
_UNSTRUCK_TEXT = etree.XPath(".//text()[not(ancestor::s or ancestor::del or ancestor::strike"
                             " or ancestor::script or ancestor::style)]")
_NUMBER = re.compile(r"\d(?:[\d.,\u00a0\u202f ]*\d)?")


def _price_element_near_title(tree: Any) -> Optional[tuple[str, str]]:
    """First price-named element (not struck, not a link) reading as amount + currency, after the <h1>.

    Elements before the title (navigation, banners) are used only when none follows it.
    """
    h1 = _H1(tree)
    order = {el: i for i, el in enumerate(tree.iter())} if h1 else {}
    title_at = order.get(h1[0], 0) if h1 else 0
    first: Optional[tuple[str, str]] = None
    for el in _PRICE_ELEMS(tree):
        if _is_struck(el) or any(_is_struck(a) or a.tag == "a" for a in el.iterancestors()):
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


_NODE_CACHE: list = [None, None]


def _text_nodes(tree: Any) -> tuple[list, list]:
    """Visible text nodes of the page and their normalised texts (cached for the last tree)."""
    cached = _NODE_CACHE
    entry = cached[1] if cached[0] is tree else None
    if entry is None:
        nodes = _TEXT_NODES(tree)
        entry = (nodes, [_norm_text(n) for n in nodes])
        cached[0], cached[1] = tree, entry
    return entry


def _title_index(tree: Any, nodes: list) -> Optional[int]:
    """Index of the first text node inside the page's first <h1>, None without one."""
    h1 = _H1(tree)
    if not h1:
        return None
    h1 = h1[0]
    for i, n in enumerate(nodes):
        parent = n.getparent()
        for _ in range(4):
            if parent is None:
                break
            if parent is h1:
                return i
            parent = parent.getparent()
    return None


def _price_near_title(tree: Any) -> Optional[tuple[str, str]]:
    """The first price-only text at or after the product title (<h1>), outside links; else the first one."""
    nodes, texts = _text_nodes(tree)
    title_at = _title_index(tree, nodes)
    first: Optional[tuple[str, str]] = None
    for i, node in enumerate(nodes):
        text = texts[i]
        if not text or len(text) > 40 or not any(c.isdigit() for c in text) or _in_tag(node, "a") \
                or _struck_text(node):
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


def _in_tag(node: Any, tag: str, depth: int = 4) -> bool:
    """Whether a text node sits inside `tag` within a few levels."""
    el = node.getparent()
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


def _is_struck(el: Any) -> bool:
    """Whether an element marks a struck-through / was / list / unit price."""
    if el.get("data-a-strike") == "true" or el.tag in ("del", "s", "strike"):
        return True
    marker = " ".join(str(el.get(a, "")) for a in ("class", "id", "data-test")).lower()
    return "text-price" in marker or bool(_NOT_MAIN_PRICE.intersection(_TOKEN_SPLIT.split(marker)))


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
    r"(?P<v>[A-Za-z0-9][A-Za-z0-9._/-]{0,38}[A-Za-z0-9])", re.IGNORECASE)
#: class / id / data-* attribute words marking an element that holds the product reference
_SKU_ATTR = etree.XPath(
    "//body//*[@*[contains(translate(name(),'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'qa')"
    " or name()='class' or name()='id']"
    "[contains(translate(.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'product-reference')"
    " or contains(translate(.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'product-code')"
    " or contains(translate(.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'productcode')"
    " or contains(translate(.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'catnumber')"
    " or contains(translate(.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'article-number')]]"
)
_URL_ID = re.compile(r"(?:^|[/_=-]|[a-z](?=\d{6,}))(?P<id>\d{5,})(?:\.html?|\.php|/|$)")


def _is_sku_value(value: str) -> bool:
    """A plausible product reference: has a digit, not a price or a date, not too long."""
    return (any(c.isdigit() for c in value) and 2 <= len(value) <= 40
            and not re.fullmatch(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d+[.,]\d{2}", value))


_HAS_DIGIT = re.compile(r"\d")
_SKU_ATTR_HINTS = (b"product-reference", b"product-code", b"productcode", b"catnumber", b"article-number")


def _visible_sku(tree: Any, raw: bytes = b"") -> Optional[tuple[str, str]]:
    """(reference, method) from a labelled text ("Product code: 64981901") or a reference-named element."""
    low_raw = raw.lower()
    hinted = any(k in low_raw for k in _SKU_ATTR_HINTS)
    for el in _SKU_ATTR(tree) if hinted else ():
        text = _norm_text(el.text_content())
        if text and len(text) <= 60:
            m = _SKU_LABELLED.search(text)
            value = m.group("v") if m else text.rsplit(" ", 1)[-1]
            if _is_sku_value(value):
                return value, "heuristic:sku-element"
    nodes, texts = _text_nodes(tree)
    n = len(texts)
    digits = [bool(t) and len(t) <= 200 and _HAS_DIGIT.search(t) is not None for t in texts]
    keep = [i for i, t in enumerate(texts)
            if t and len(t) <= 200 and (digits[i] or (i + 1 < n and digits[i + 1]))]
    # one regex pass over the short texts near a number; adjacent nodes joined by a space so a label
    # and its value in sibling elements ("<strong>Šifra:</strong> 0638") read as one
    parts, starts, pos, prev = [], [], 0, -2
    for i in keep:
        sep = " " if i == prev + 1 else "\x00"
        parts.append(sep + texts[i])
        starts.append(pos + 1)
        pos += len(texts[i]) + 1
        prev = i
    joined = "".join(parts)
    title_at: Optional[int] = None
    first: Optional[tuple[str, str]] = None
    after: Optional[tuple[str, str]] = None
    strong: Optional[tuple[str, str]] = None
    for m in _SKU_LABELLED.finditer(joined):
        i = keep[bisect_right(starts, m.start()) - 1]
        if not _is_sku_value(m.group("v")) or "\x00" in m.group(0) or _in_tag(nodes[i], "a", 2):
            continue  # links name other products' codes
        if title_at is None:
            title_at = _title_index(tree, nodes) or 0
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
_QUERY_ID = re.compile(r"(?:^|&)(?:pid|sku|product_?id|products_id|item_?id|itemid|id)=([A-Za-z0-9-]{3,40})(?:&|$)",
                       re.IGNORECASE)


def _script_sku(tree: Any) -> Optional[str]:
    """The first `"sku": "…"` value in the page's inline scripts (analytics / state objects)."""
    for node in tree.iter("script"):
        text = node.text or ""
        if "sku" in text or "articleNumber" in text:
            m = _JSON_SKU.search(text)
            if m and _is_sku_value(m.group(1)):
                return m.group(1)
    return None


def _layer_sku(tree: Any, f: _Fields, url: str, raw: bytes = b"") -> None:
    """The SKU as printed: visible labelled reference, else structured sku, else an id in the URL."""
    itemprop = tree.xpath("//*[@itemprop='sku' or @itemprop='productID']")
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
        m = None
        for m in _URL_ID.finditer(urlsplit(url).path):
            pass
        if m is not None:
            f.set("sku", m.group("id"), "url")


# --- page classification ------------------------------------------------------------------

def _page_text(tree: Any) -> str:
    """Lower-case <title> + first 3,000 characters of visible body text."""
    title = " ".join(tree.xpath("//title//text()"))
    body = " ".join(t for t in _TEXT_NODES(tree)[:400])
    return (title + " " + _WS.sub(" ", body)[:3000]).lower()


def _page_kind(tree: Any, raw: bytes, f: _Fields, status: Optional[int]) -> str:
    """product | not_found | blocked | truncated | no_price (see module docstring)."""
    if status in (404, 410):
        return "not_found"
    tail = raw[-4096:].lower()
    if not raw.strip() or (b"</html" not in tail and b"</body" not in tail):
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

_PARSERS: dict[Optional[str], Any] = {
    enc: lxml.html.HTMLParser(remove_comments=True, collect_ids=True, encoding=enc)
    for enc in (None, "utf-8", "cp1252")
}
_DECLARED_CHARSET = re.compile(rb"<meta[^>]+charset\s*=", re.IGNORECASE)


def _parse(raw: bytes) -> Any:
    """lxml HTML tree (None for an empty/unparseable document).

    The page's own <meta charset> wins; undeclared pages are read as UTF-8 (cp1252 if not UTF-8).
    """
    if not raw.strip():
        return None
    if _DECLARED_CHARSET.search(raw[:4096]):
        encoding = None
    else:
        try:
            raw.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    try:
        return lxml.html.document_fromstring(raw, parser=_PARSERS[encoding])
    except (etree.ParserError, ValueError):
        return None


def extract(
    html: Union[str, bytes],
    url: str,
    retailer: Optional[str] = None,
    status: Optional[int] = None,
) -> Offer:
    """Extract one product page into an Offer (fields + `methods` + `page_kind`); never invents a price."""
    if isinstance(html, str):
        raw = html.encode("utf-8")
    elif isinstance(html, (bytes, bytearray, memoryview)):
        raw = bytes(html)
    else:
        raise ExtractError(f"extract() needs the page as str or bytes, got {type(html).__name__} for {url}")
    adapter = get_adapter(retailer) if retailer else adapter_for_url(url)
    f = _Fields(adapter)
    tree = _parse(raw)
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
