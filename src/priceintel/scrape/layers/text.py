"""One walk over <body>: visible text nodes, price- and reference-named elements, the first <h1>.

The walk (`_scan_body`) replaces slow XPaths (kept as `_TEXT_NODES`, `_PRICE_ELEMS_SLOW`, `_SKU_ATTR_SLOW`,
`_H1`, which select the same nodes in the same order) and is made once per page.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from lxml import etree

from priceintel.scrape.layers.page import _ctx, _memo

_PRICE_ELEMS_SLOW = etree.XPath(
    "//body//*[not(self::script or self::style or self::del or self::s or self::strike)]"
    "[contains(translate(@class,'PRICE','price'),'price') or contains(translate(@id,'PRICE','price'),'price')"
    " or contains(translate(@data-test,'PRICE','price'),'price')]"
)

#: class / id words marking an element that holds the product reference: plain English names of a
#: reference (no shop's own markup: test-hook attributes such as data-qa-*, shop-specific class names)
_SKU_ATTR_WORDS = ("product-code", "productcode", "product-number", "article-number", "item-number")
_SKU_ATTR_SLOW = etree.XPath(
    "//body//*[@*[name()='class' or name()='id']["
    + " or ".join(
        f"contains(translate(.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz'),'{w}')"
        for w in _SKU_ATTR_WORDS
    )
    + "]]"
)
#: the same words as bytes, looked for in the page's lower-cased bytes (`_sku_hinted`)
_SKU_ATTR_HINTS = tuple(w.encode("ascii") for w in _SKU_ATTR_WORDS)


def _PRICE_ELEMS(tree: Any) -> list:
    """Elements (not script/style/struck) whose class, id or data-test contains "price" in any case.

    Collected by the body scan (`_scan_body`); same elements, same order as `_PRICE_ELEMS_SLOW`.
    """
    elems = _body_scan(tree, price=True).price_elems
    assert elems is not None  # a scan asked for price elements always lists them
    return elems


#: visible text nodes (struck-through ones are filtered where it matters, see `candidates.is_struck`)
_TEXT_NODES = etree.XPath("//body//text()[not(parent::script or parent::style or parent::noscript)]")


_H1 = etree.XPath("(//body//h1)[1]")


def _first_h1(tree: Any) -> list:
    """`_H1(tree)`: [the first <h1> in <body>] or [], from the page's body scan when it was made."""
    ctx = _ctx(tree)
    scan = ctx.memo.get("scan") if ctx is not None else None
    if scan is None:
        return _H1(tree)
    return [scan.h1] if scan.h1 is not None else []


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
    #: elements whose class / id names a product reference (None when not collected)
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
            for name in ("class", "id"):
                value = el.get(name)
                if value:
                    value = value.lower()
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


def _price_named(tree: Any) -> list:
    """The elements of `_PRICE_ELEMS_SLOW`, by a walk over <body>'s elements (the XPath's `translate()` of
    three attributes of every element cost several milliseconds on a large page; unrolled `get`s, about
    half of the walk's cost, are the cheapest test found)."""
    bodies = _bodies(tree)
    if len(bodies) != 1:
        return _PRICE_ELEMS_SLOW(tree)
    body = bodies[0]
    out: list = []
    add = out.append
    for el in body.iter(etree.Element):  # elements only: no comments, processing instructions
        value = el.get("class")
        if value is not None and "price" in value.lower():
            add(el)
            continue
        value = el.get("id")
        if value is not None and "price" in value.lower():
            add(el)
            continue
        value = el.get("data-test")
        if value is not None and "price" in value.lower():
            add(el)
    no_price = _NO_PRICE_TAGS
    return [el for el in out if el is not body and el.tag not in no_price]


def _sku_hinted(tree: Any, raw: bytes = b"") -> bool:
    """Whether the page's bytes hold one of the reference words (any case) at all."""
    ctx = _ctx(tree)
    if ctx is None:
        low = raw.lower()
        return any(k in low for k in _SKU_ATTR_HINTS)
    if "sku_hinted" not in ctx.memo:
        # two regex scans with a literal prefix ("product", "number") instead of one `in` per word
        low = ctx.low
        # three plain substring tests cover the five words ("-number": product-, article-, item-number) and
        # cost less than the patterns; only a page that passes them is searched for the words themselves
        ctx.memo["sku_hinted"] = (b"-number" in low or b"productcode" in low or b"product-code" in low) and any(
            _in_class_or_id(low, m.start())
            for pattern in (_SKU_HINT_PRODUCT, _SKU_HINT_NUMBER)
            for m in pattern.finditer(low)
        )
    return ctx.memo["sku_hinted"]


#: the start of a start tag up to a position inside its class or id value
_IN_CLASS_OR_ID = re.compile(rb"""\s(?:class|id)\s*=\s*(?:"[^"]*|'[^']*|[^\s"'>]*)\Z""")


def _in_class_or_id(low: bytes, pos: int) -> bool:
    """Whether `pos` of the page's lower-cased bytes lies in a class or id attribute of a start tag (the
    word found there in a script, a style sheet or text needs no element walk)."""
    start = low.rfind(b"<", 0, pos)
    if start < 0 or low.rfind(b">", start, pos) >= 0:
        return False
    return _IN_CLASS_OR_ID.search(low, start, pos) is not None


#: the `_SKU_ATTR_HINTS` words, as two patterns that start with a literal (fast to scan for)
_SKU_HINT_PRODUCT = re.compile(rb"product(?:-code|code|-number)")
_SKU_HINT_NUMBER = re.compile(rb"number(?:(?<=article-number)|(?<=item-number))")


def _body_scan(tree: Any, price: bool = False) -> _BodyScan:
    """The page's body scan, made once (price elements added by XPath if a later caller needs them)."""
    ctx = _ctx(tree)
    scan = ctx.memo.get("scan") if ctx is not None else None
    if scan is None:
        scan = _scan_body(tree, price=price, sku=_sku_hinted(tree))
    elif price and scan.price_elems is None:
        scan = scan._replace(price_elems=_price_named(tree))
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


def _sku_attr_elements(tree: Any) -> list:
    """Elements in <body> with a class / id naming a product reference, in document order."""
    scan = _body_scan(tree)
    return scan.sku_elems if scan.sku_elems is not None else _SKU_ATTR_SLOW(tree)


_DIGIT = re.compile(r"\d").search


def _digit_texts(tree: Any) -> list[int]:
    """Indexes of the visible text nodes holding a digit (most are blank indentation), listed once per page."""

    def build() -> list[int]:
        raws = _raw_text_nodes(tree)[1]
        has_digit = _DIGIT
        return [i for i, raw in enumerate(raws) if not raw.isspace() and has_digit(raw)]

    return _memo(tree, "digit_texts", build)
