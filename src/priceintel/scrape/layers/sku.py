"""The retailer's own product reference (SKU) as printed: labelled text, reference-named elements, scripts, URL."""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any
from urllib.parse import urlsplit

from priceintel.scrape.layers.fields import _Fields
from priceintel.scrape.layers.page import _norm_text
from priceintel.scrape.layers.select import _itemprop_elems, _itemprop_nodes, _script_elems
from priceintel.scrape.layers.text import (
    _digit_texts,
    _in_tag,
    _raw_text_nodes,
    _sku_attr_elements,
    _sku_hinted,
    _title_index,
)

#: labels that introduce a retailer's own product reference, in the languages shops use
_SKU_LABELS = (
    r"sku|item\s*(?:#|no\.?|number|code|id)|article\s*(?:no\.?|number|code)|art\.?\s*-?\s*nr\.?|"
    r"artikel\s*-?\s*(?:nr\.?|nummer)|product\s*(?:code|id|no\.?|number|#)|prod(?:uct)?\.?\s*code|"
    r"r[ée]f[ée]rence|r[ée]f\.|c[óo]digo(?:\s+(?:del\s+)?producto)?|codice(?:\s+articolo|\s+prodotto)?|"
    r"cod(?:\s+produs)?|[šs]ifra(?:\s+izdelka|\s+artikla|\s+proizvoda)?|k[óo]d(?:\s+produktu|\s+tovaru)?|"
    r"numer\s+katalogowy|varenummer|varenr\.?|tuotenumero|artikelnr\.?|cikksz[áa]m|"
    r"код(?:\s+товара)?|артикул|арт\.|商品編號|商品编号|商品番号|品番|型番|ad\s*#|ad\s+id|post\s+id|"
    r"item\s+number|listing\s+(?:id|#)|bestell\s*-?\s*(?:nr\.?|nummer)|"
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


_URL_ID = re.compile(r"(?:^|[/_=-]|[a-z](?=\d{6,}))(?P<id>\d{5,})(?:\.html?|\.php|/|$)")


def _is_sku_value(value: str) -> bool:
    """A plausible product reference: has a digit, not a price or a date, not too long."""
    return (
        any(c.isdigit() for c in value)
        and 2 <= len(value) <= 40
        and not re.fullmatch(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d+[.,]\d{2}", value)
    )


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
    # nodes with a digit; most text nodes are blank (indentation), rejected before the regex call
    for i in _digit_texts(tree):
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
