"""CSS / XPath selection on a parsed page, with fast paths for `#id`, `[itemprop=…]` and `meta[…]` selectors."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import cssselect
import cssselect.parser
from cssselect import HTMLTranslator
from lxml import etree

from priceintel.scrape.layers.page import _memo, _norm_text, _raw_lacks

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
        value: str | None
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
