"""Which of the prices a page prints is the product's current price (generic shops, no structured price).

Candidates are price-named elements (class / id / data-test holding "price") and short texts that are
only an amount and a currency. A candidate is dropped when it is not a selling price:

- crossed out (<s>, <del>, <strike>, a line-through style, a was / old / list / RRP / compare class);
- a quantity: an amount followed by a unit ("500 g", "1.5 l", "20 %", "2 x"), or an amount whose only
  "currency" is a unit letter;
- a unit price ("/kg", "per 100 g"), financing ("/mo", "x 12", "per month", instalments), a former,
  list, RRP or saving amount ("was", "RRP", "save", "off") or a shipping cost, read from its own text
  and the texts just before and after it in the same block.

The rest are scored by where they sit (`_Layout`): in the product's own block (the tree distance to
the page's <h1>, and to its add-to-cart button), not inside a link (product cards), not in a
header / footer / nav / aside or a related-products / recommendations / carousel container that
does not hold the <h1>; price-named elements and prices after the title are preferred. The best
score wins, document order breaking ties. Every rule is generic: no shop, domain or page is named.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Any, NamedTuple

from babel.numbers import get_territory_currencies
from lxml import etree
from price_parser import Price

from priceintel.clean import normalise_currency, parse_price
from priceintel.scrape.layers.page import _memo, _norm_text
from priceintel.scrape.layers.select import _meta_elems, _select
from priceintel.scrape.layers.text import _PRICE_ELEMS, _digit_texts, _first_h1, _raw_text_nodes, _text_nodes

#: an amount with a currency sign or code before or after it
PRICE_TEXT = re.compile(
    r"(?:[$€£¥₹₩₽₺₴₪₫฿]|\b(?:USD|EUR|GBP|CAD|AUD|CHF|SEK|NOK|DKK|PLN|CZK|JPY|INR)\b)\s?\d[\d.,]*"
    r"|\d[\d.,]*\s?(?:[€£₩₽₺₴₪₫฿]|\b(?:USD|EUR|GBP|CHF|SEK|NOK|DKK|PLN|CZK)\b)"
)
NUMBER = re.compile(r"\d(?:[\d.,\u00a0\u202f ]*\d)?")
#: units and counts written after an amount: the amount is a quantity, not a price
_UNITS = (
    r"k?g|mg|gr|grams?|kilos?|lbs?|oz|fl\.?\s?oz|[mcd]?l|litres?|liters?|[cmk]?m|[mc]m[23²³]|m[23²³]|inch(?:es)?|in|ft"
    r"|pcs?|pieces?|pack|pk|ct|count|st|stk|stück|szt|шт|г|кг|мл|л|см|мм|%|x|w|kw|v|mah|wh|gb|tb|mb|hz|[km]hz|db"
)
_QUANTITY = re.compile(r"\d(?:[\d.,]*\d)?\s?(?:" + _UNITS + r")\.?(?![^\W\d_])", re.IGNORECASE)
#: one-letter (or unit-like) "currencies" that are units when nothing else on the page is priced in them
_UNIT_SIGNS = frozenset({"g", "l", "m", "k", "t", "x", "kg", "ml", "cl", "cm", "mm", "oz", "lb", "lbs", "pcs", "pc"})
#: words before an amount marking it as not the current selling price
_NOT_NOW_BEFORE = re.compile(
    r"(?<![^\W\d_])(?:was|were|rrp|msrp|srp|uvp|list(?:\s+price)?|regular(?:\s+price)?|reg\.?|original(?:ly)?|"
    r"before|previous(?:ly)?|save|saving|savings|you\s+save|statt|avant|antes|prima|shipping|delivery|postage|"
    r"versand|env[ií]o|frete|livraison|spedizione|deposit|per|pro|je|instal+ments?|payments?\s+of|cuotas?|"
    r"parcelas?|\d+\s*x|\d+\s*×)\s*[:.]?\s*(?:de\s+)?$",
    re.IGNORECASE,
)
#: words after an amount marking a unit price, financing or a saving
_NOT_NOW_AFTER = re.compile(
    r"^\s*(?:/\s*(?:\d+\s*)?[^\W\d_]{1,6}\.?|per\s|pro\s|je\s|a\s+month|a\s+week|monthly|p\.?\s?m\.?(?![^\W\d_])|"
    r"x\s*\d|×\s*\d|off\b|al\s+mes|por\s+mes|/\s*mes|mensual|shipping|delivery)",
    re.IGNORECASE,
)
#: tags and class / id words of page furniture and other products' blocks (when they do not hold the <h1>)
_OFF_TAGS = frozenset({"header", "footer", "nav", "aside"})
_OFF_WORDS = (
    "recommend",
    "related",
    "carousel",
    "slider",
    "swiper",
    "slick",
    "upsell",
    "up-sell",
    "crosssell",
    "cross-sell",
    "similar",
    "recently",
    "also-",
    "product-card",
    "productcard",
    "product-tile",
    "producttile",
    "breadcrumb",
    "footer",
    "navbar",
    "megamenu",
    "mega-menu",
    "sidebar",
    "minicart",
    "mini-cart",
)
_OFF_RE = re.compile("|".join(re.escape(w) for w in _OFF_WORDS), re.IGNORECASE)
#: class / id tokens of a price that is not the selling price (was, list, unit, shipping …)
_NOT_MAIN_PRICE = frozenset(
    {
        "strike",
        "strikethrough",
        "strikeout",
        "crossed",
        "linethrough",
        "was",
        "regular",
        "old",
        "original",
        "save",
        "saving",
        "savings",
        "shipping",
        "unit",
        "per",
        "msrp",
        "rrp",
        "reg",
        "compare",
        "before",
        "previous",
        "prev",
        "installment",
        "instalment",
        "monthly",
        "financing",
        # the same words run together with "price"
        "oldprice",
        "priceold",
        "wasprice",
        "pricewas",
        "regularprice",
        "priceregular",
        "originalprice",
        "priceoriginal",
        "strikeprice",
        "pricestrike",
        "compareprice",
        "unitprice",
        "priceunit",
    }
)
_TOKEN_SPLIT = re.compile(r"[\s_-]+")
#: what may surround an amount and its currency in a price-only text
_PRICE_REST = re.compile(r"[\s.,:;*/()\-–—]*")
#: a character that is neither a digit, a separator nor punctuation (a sign or a letter beside the amount)
_HAS_SIGN = re.compile(r"[^\d\s.,:;'()\-–—*/+]").search
_STRUCK_TAGS = frozenset({"del", "s", "strike"})


def is_struck(el: Any, marks: tuple[str, ...] = ()) -> bool:
    """Whether an element marks a crossed-out / was / list / unit price.

    `marks`: the shop adapter's own markers (a class word, or `attribute=value`), see `Adapter.struck_marks`.
    """
    if el.tag in _STRUCK_TAGS:
        return True
    style = el.get("style")
    if style and "line-through" in style.replace(" ", "").lower():
        return True
    cls, ident, test = el.get("class"), el.get("id"), el.get("data-test")
    if not (cls or ident or test or marks):
        return False
    marker = f"{cls or ''} {ident or ''} {test or ''}".lower()
    for mark in marks:
        name, eq, value = mark.partition("=")
        if (eq and el.get(name) == value) or (not eq and mark in marker):
            return True
    if not marker.strip():
        return False
    tokens = _TOKEN_SPLIT.split(marker)
    for i, token in enumerate(tokens):
        if token in _NOT_MAIN_PRICE:
            return True
        # "list" marks a list price only as "list-price"; alone it is a layout word
        # (Bootstrap's "list-unstyled", "product-list", an id "price-list" for a block of prices)
        if token == "list" and i + 1 < len(tokens) and tokens[i + 1] == "price":
            return True
    return "listprice" in tokens or "line-through" in marker


def struck_memo(tree: Any, marks: tuple[str, ...] = ()) -> Callable[[Any], bool]:
    """`is_struck`, remembered per element for the page (price elements share their ancestors)."""
    seen: dict = _memo(tree, "struck", dict)

    def struck(el: Any) -> bool:
        found = seen.get(el)
        if found is None:
            found = seen[el] = is_struck(el, marks)
        return found

    return struck


def price_value(text: str) -> str | None:
    """The price text of a candidate, None when it is a quantity or has no currency."""
    if _QUANTITY.search(text):
        return None
    m = PRICE_TEXT.search(text)
    value = m.group(0) if m else text
    parsed = parse_price(value)
    if parsed.amount is None or parsed.amount <= 0 or parsed.currency_raw is None or parsed.unit:
        return None
    raw = parsed.currency_raw.strip().rstrip(".").lower()
    if raw in _UNIT_SIGNS or (len(raw) == 1 and raw.isalpha() and normalise_currency(raw) is None):
        return None  # "500 g", "1.5 l": a unit read as a currency
    if m is None:  # no sign or code: the text must be only an amount and a currency ("131 990 тг.")
        amount_text = Price.fromstring(text).amount_text or ""
        rest = text.replace(amount_text, "", 1).replace(parsed.currency_raw, "", 1)
        if not amount_text or _PRICE_REST.fullmatch(rest) is None:
            return None
    return value


class _Layout:
    """Where the product's own block is: the <h1> and the add-to-cart button, and their ancestors."""

    def __init__(self, tree: Any, parents: list) -> None:
        h1 = _first_h1(tree)
        self.h1 = h1[0] if h1 else None
        self.h1_up = _chain(self.h1)
        self.tree = tree
        self.parents = parents
        self._marks: dict = {}
        self._regions: dict = {}

    @cached_property
    def buy_up(self) -> dict:
        """The page's own add-to-cart button and its ancestors (found on first use), {} without one."""
        return _chain(buy_button(self.tree))

    @cached_property
    def first(self) -> dict:
        """{element: index of the first visible text node whose parent it is}."""
        n = len(self.parents)
        return dict(zip(reversed(self.parents), range(n - 1, -1, -1), strict=True))

    @cached_property
    def last(self) -> dict:
        """{element: index of the last visible text node whose parent it is}."""
        return dict(zip(self.parents, range(len(self.parents)), strict=True))

    def span(self, el: Any) -> tuple[int, int] | None:
        """(first, last) index of the visible text nodes inside an element, None without any."""
        first, last = self.first, self.last
        found = [d for d in el.iter() if d in first]
        if not found:
            return None
        return min(first[d] for d in found), max(last[d] for d in found)

    @cached_property
    def title_at(self) -> int:
        """Text-node index where the <h1> starts (-1 without one: every candidate is "after the title")."""
        span = self.span(self.h1) if self.h1 is not None else None
        return span[0] if span is not None else -1

    def _mark(self, node: Any) -> tuple[int, bool]:
        """(2 page furniture tag, 1 class / id named like other products' blocks, else 0; is a link)."""
        found = self._marks.get(node)
        if found is None:
            tag = node.tag
            if tag in _OFF_TAGS:
                off = 2
            else:
                marker = f"{node.get('class') or ''} {node.get('id') or ''}"
                off = 1 if marker != " " and _OFF_RE.search(marker) else 0
            found = self._marks[node] = (off, tag == "a")
        return found

    def region(self, el: Any) -> tuple[int, int, int, bool]:
        """(tree distance to the <h1>, to the buy button, 2 inside page furniture (header / footer / nav /
        aside) or 1 inside a block named like other products' (related, carousel …) else 0, inside a
        link), the last two counted only below the block shared with the <h1>.

        Built from the parent's region and remembered for the page: candidates share most ancestors.
        """
        known = self._regions
        path = []
        node = el
        while node is not None and node not in known:
            path.append(node)
            node = node.getparent()
        above = known[node] if node is not None else (99, 99, 0, False)
        h1_up, buy_up = self.h1_up, self.buy_up
        for node in reversed(path):
            up_h1, up_buy, up_off, up_link = above
            if node in h1_up:
                to_h1, off, link = h1_up[node], 0, False  # the block shared with the title: not counted
            else:
                node_off, node_link = self._mark(node)
                to_h1 = 99 if up_h1 == 99 else up_h1 + 1
                off, link = max(up_off, node_off), up_link or node_link
            if node in buy_up:
                to_buy = buy_up[node]
            else:
                to_buy = 99 if up_buy == 99 else up_buy + 1
            above = known[node] = (to_h1, to_buy, off, link)
        return above


def _chain(el: Any | None) -> dict:
    """{element or ancestor: distance from the element}."""
    out: dict = {}
    k = 0
    while el is not None:
        out[el] = k
        el = el.getparent()
        k += 1
    return out


class _Cand(NamedTuple):
    score: float
    order: int
    value: str
    method: str


def _context_rejects(before: str, after: str) -> bool:
    """Whether the words around an amount make it a was / unit / financing / saving / shipping amount."""
    return bool(_NOT_NOW_BEFORE.search(before[-40:]) or _NOT_NOW_AFTER.match(after[:40]))


def _near(a: Any, b: Any) -> bool:
    """Whether two elements sit in one small block (a shared ancestor within two levels of each)."""
    up_a = {a}
    pa = a.getparent()
    if pa is not None:
        up_a.add(pa)
        if pa.getparent() is not None:
            up_a.add(pa.getparent())
    pb = b.getparent()
    return b in up_a or (pb is not None and (pb in up_a or pb.getparent() in up_a))


def _score(layout: _Layout, el: Any, named: bool, after_title: bool) -> float | None:
    """Higher is likelier the product's price; None for a candidate in another product's block."""
    to_h1, to_buy, off, link = layout.region(el)
    if off == 2 and layout.h1 is not None:
        return None
    score = -float(min(to_h1, 40)) if layout.h1 is not None else -20.0 * (off == 2)
    score -= 10 * (off == 1)
    if layout.buy_up:
        score -= min(to_buy, 40) / 4
    if link:
        score -= 10
    if named:
        score += 2
    if after_title:
        score += 3
    return score


_BUY_WORDS = tuple(
    "add-to-basket|add-to-cart|addtocart|add-to-bag|addtobag|add_to_cart|addtobasket|add_to_basket|"
    "add to basket|add to cart|add to bag".split("|")
)
_BUY_BUTTONS = etree.XPath("//body//button[not(@disabled)] | //body//input[@type='submit'][not(@disabled)]")
#: class words of a block that is not the product's own buy box
_NOT_MAIN = tuple(
    "recommend|carousel|product-card|related|upsell|crosssell|cross-sell|unavailable|disabled|hidden|"
    "sold-out|soldout".split("|")
)


def buy_button(tree: Any) -> Any | None:
    """The page's own enabled add-to-cart button (not one in recommendations), None without one."""

    def find() -> Any | None:
        for el in _BUY_BUTTONS(tree):
            marker = " ".join(str(el.get(a, "")) for a in ("id", "class", "data-test", "data-cy", "name")).lower()
            if not any(w in marker for w in _BUY_WORDS) or el.get("hidden") is not None:
                continue
            chain = [el, *list(el.iterancestors())[:8]]
            if any(any(w in str(a.get("class", "")).lower() for w in _NOT_MAIN) for a in chain):
                continue
            return el
        return None

    return _memo(tree, "buy_button", find)


_UNSTRUCK_TEXT = etree.XPath(
    ".//text()[not(ancestor::s or ancestor::del or ancestor::strike or ancestor::script or ancestor::style)]"
)


_CENTS = re.compile(r"\s*\d{2}\s*")


def _element_text(el: Any) -> str:
    """The element's text outside struck-through parts; superscript cents after the units read as decimals
    ("$12<sup>99</sup>" -> "$12.99")."""
    pieces: list[str] = []
    for piece in _UNSTRUCK_TEXT(el):
        parent = piece.getparent()
        if (
            pieces
            and not piece.is_tail
            and parent is not None
            and parent.tag == "sup"
            and _CENTS.fullmatch(piece)
            and pieces[-1].rstrip()[-1:].isdigit()
        ):
            pieces[-1] = pieces[-1].rstrip() + "." + piece.strip()
            continue
        pieces.append(piece)
    return _norm_text(" ".join(pieces)) or ""


def best_price(tree: Any, marks: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(price text, method) of the likeliest current price among the page's candidates, None without one."""
    parents, raws = _raw_text_nodes(tree)
    layout = _Layout(tree, parents)
    struck = struck_memo(tree, marks)
    texts = _Texts(raws)
    found = [
        c
        for c in (_best_element(tree, layout, struck, parents, texts), _best_text(layout, struck, parents, texts))
        if c is not None
    ]
    if not found:
        return None
    best = max(found, key=lambda c: (c.score, -c.order))
    return best.value, best.method


def _better(cand: _Cand, best: _Cand | None) -> _Cand:
    """The higher-scored of two candidates, the earlier one on a tie."""
    return cand if best is None or (cand.score, -cand.order) > (best.score, -best.order) else best


def _best_element(
    tree: Any, layout: _Layout, struck: Callable[[Any], bool], parents: list, texts: _Texts
) -> _Cand | None:
    """The best price-named element holding one amount with its currency (not struck, not a was / unit /
    financing amount by its words)."""
    best: _Cand | None = None
    values: dict[str, str | None] = {}  # price_value of a text (nested price elements repeat it)
    for el in _PRICE_ELEMS(tree):
        span = layout.span(el)
        pos = span[0] if span is not None else 0
        score = _score(layout, el, named=True, after_title=pos >= layout.title_at)
        # the text, parse and word checks are spent only on a candidate that could win
        if score is None or (best is not None and (score, -pos) <= (best.score, -best.order)):
            continue
        if _struck_up(el, struck, depth=8):
            continue
        text = _element_text(el)
        if not text or len(text) > 60 or len(NUMBER.findall(text)) != 1:
            continue  # one amount only: a was/now pair or a quantity is not a clean price
        value = values[text] if text in values else values.setdefault(text, price_value(text))
        if value is None:
            continue
        before, _, after = text.partition(value)
        if span is not None:
            before, after = _with_neighbours(span[0], span[1], parents, texts, before, after)
        if _context_rejects(before, after):
            continue
        best = _better(_Cand(score, pos, value, "heuristic:price-element"), best)
    return best


class _Texts:
    """The visible texts, whitespace-normalised on first use (None for a blank one)."""

    def __init__(self, raws: list[str]) -> None:
        self.raws = raws
        self._norm: dict[int, str | None] = {}

    def __len__(self) -> int:
        return len(self.raws)

    def __getitem__(self, i: int) -> str | None:
        if i in self._norm:
            return self._norm[i]
        text = self._norm[i] = " ".join(self.raws[i].split()) or None
        return text


def _best_text(layout: _Layout, struck: Callable[[Any], bool], parents: list, texts: _Texts) -> _Cand | None:
    """The best short text that is only an amount and a currency (not struck, not a was / unit /
    financing amount by its words or its neighbours')."""
    best: _Cand | None = None
    seen: dict[str, str | None] = {}  # price_value of a text (pages repeat their prices)
    for i in _digit_texts(layout.tree):
        text, parent = texts[i], parents[i]
        if not text or len(text) > 40:
            continue
        if _BARE_AMOUNT.fullmatch(text):  # "12,99" beside a "€" of its own, else no price
            signed = _with_sign(i, parents, texts)
            if signed is None:
                continue
            text = signed
        elif not (PRICE_TEXT.search(text) or (len(text) <= 24 and _HAS_SIGN(text))):
            continue  # parse only what can hold a currency: a sign or code, or a word beside the amount
        pos = i
        after_title = pos >= layout.title_at
        score = _score(layout, parent, named=False, after_title=after_title)
        # texts come in document order, so a later one wins only with a higher score: the parse and the
        # word checks are spent only on a candidate that could win
        if score is None or (best is not None and score <= best.score) or _struck_up(parent, struck):
            continue
        value = seen[text] if text in seen else seen.setdefault(text, price_value(text))
        if value is None:
            continue
        before, _, after = text.partition(value)
        if _context_rejects(*_with_neighbours(i, i, parents, texts, before, after)):
            continue
        method = "heuristic:text-after-title" if after_title and layout.h1 is not None else "heuristic:text"
        best = _better(_Cand(score, pos, value, method), best)
    return best


_BARE_AMOUNT = re.compile(r"\d{1,3}(?:[.,\u00a0\u202f ]?\d{3})*(?:[.,]\d{1,2})?")
_SIGN_ONLY = re.compile(r"[$€£¥₹₩₽₺₴₪₫฿]|[A-Z]{3}")


def _with_sign(i: int, parents: list, texts: _Texts) -> str | None:
    """A bare amount joined to the currency sign or code printed alone just before or after it, in its block."""
    for j in (i - 1, i + 1):
        sign = texts[j] if 0 <= j < len(texts) else None
        if sign and _SIGN_ONLY.fullmatch(sign) and _near(parents[j], parents[i]):
            return f"{sign} {texts[i]}" if j < i else f"{texts[i]} {sign}"
    return None


def _with_neighbours(first: int, last: int, parents: list, texts: _Texts, before: str, after: str) -> tuple[str, str]:
    """A candidate's own text before / after its amount, widened with the texts just before and after it
    when they sit in the same small block."""
    i = first - 1
    while i > 0 and i > first - 4 and texts[i] is None:  # blank text between elements
        i -= 1
    if i >= 0 and texts[i] and _near(parents[i], parents[first]):
        before = f"{texts[i]} {before}"
    i = last + 1
    while i < len(texts) - 1 and i < last + 4 and texts[i] is None:
        i += 1
    if i < len(texts) and texts[i] and _near(parents[i], parents[last]):
        after = f"{after} {texts[i]}"
    return before, after


def _struck_up(el: Any, struck: Callable[[Any], bool], depth: int = 6) -> bool:
    """Whether an element or one of its few nearest ancestors is struck through."""
    for _ in range(depth):
        if el is None:
            return False
        if struck(el):
            return True
        el = el.getparent()
    return False


_CURRENCY_METAS = ("product:price:currency", "og:price:currency")


def page_currency(tree: Any, country: str | None) -> tuple[str, str] | None:
    """(currency as written, method) the page prices in, for a price read without one.

    The page's declared currency (`product:price:currency` / `og:price:currency` meta, a microdata
    `priceCurrency`), else the sign or code most of its visible prices carry, else the currency of
    its country (ccTLD, <html lang> region: see `extract._page_country`). None when nothing tells.
    """
    if tree is None:
        return None
    for el in _meta_elems(tree):
        if el.get("property") in _CURRENCY_METAS and (el.get("content") or "").strip():
            return el.get("content").strip(), "page:meta"
    declared = _select(tree, "[itemprop=priceCurrency]::attr(content)")
    if declared:
        return declared, "page:itemprop"
    counts: Counter = Counter()
    for text in _text_nodes(tree)[1]:
        if text and len(text) <= 40:
            for m in PRICE_TEXT.finditer(text):
                raw = parse_price(m.group(0)).currency_raw
                if raw:
                    counts[raw] += 1
    if counts:
        return counts.most_common(1)[0][0], "page:prices"
    if country:
        try:
            found = get_territory_currencies(country.upper())
        except Exception:  # an unknown region  # noqa: BLE001
            found = []
        if found:
            return found[0], "page:country"
    return None
