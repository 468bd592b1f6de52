"""The extractor's fast paths select exactly what the XPaths they replace select.

Extraction walks <body> once (`_scan_body`) instead of evaluating slow XPaths (visible text nodes,
price-named elements, reference-named elements), answers `[itemprop=…]` / `meta[…]` selectors from
per-page lists, and keeps its per-page memo thread-local. Each fast path is compared here with the
original XPath / cssselect result on pages built to hit the awkward cases, and on the shared pages.
"""

from __future__ import annotations

import gc
import gzip
import importlib
import threading

from lxml import etree

from priceintel.config import shared_data_dir
from priceintel.scrape import extract as extract_fn
from priceintel.scrape.layers import page as PAGE
from priceintel.scrape.layers import select as SEL
from priceintel.scrape.layers import structured as STRUCT
from priceintel.scrape.layers import text as TEXT
from priceintel.scrape.layers.page import _PageCtx, _parse
from priceintel.scrape.layers.select import _compile, _select
from priceintel.scrape.layers.text import _PRICE_ELEMS_SLOW, _SKU_ATTR_SLOW, _TEXT_NODES, _price_named, _scan_body

X = importlib.import_module("priceintel.scrape.extract")  # the module (the package re-exports the function)

TRICKY = b"""<!DOCTYPE html><html lang="en"><head><title>T</title>
<meta property="og:title" content="  Og  Title "><meta name="description" content="d">
<meta property="product:price:amount" content="12.50"><meta itemprop="priceCurrency" content="EUR">
</head><body>lead text<div class="Product-Code x" data-qa-ref="n">Ref 77 <b>bold</b> tail</div>
<?php echo 1 ?>after pi
<script>var sku = "A1";</script>script tail<style>.p{}</style>
<noscript>ns text<img src=x>img tail in noscript</noscript>
<p id="PRICE-main">EUR 9,99</p><del class="price-old">10</del><s class="price">11</s>
<span data-test="unitPrice">1 / kg</span><span qa-id="catNumber">CAT 1</span>
<div itemscope itemtype="https://schema.org/Product"><span itemprop="brand">
<span itemprop="name">Acme</span></span><span itemprop="name">Thing</span>
<span itemprop="price" content=" 9.99 ">9,99</span><a itemprop="availability" href="https://schema.org/InStock">in</a>
</div><h1>Title <em>here</em></h1><ul><li>a<li>b</ul>trailing</body></html>"""


def _pages():
    """The tricky page plus every shared real page."""
    pages = [TRICKY]
    root = shared_data_dir() / "pages" / "html"
    pages += [gzip.decompress(p.read_bytes()) for p in sorted(root.glob("*.html.gz"))]
    return pages


def test_scan_body_matches_the_xpaths_it_replaces():
    pages = _pages()
    assert len(pages) == 71  # the shared pages are there: a missing set fails, never skips
    for i, raw in enumerate(pages):
        tree = _parse(raw)
        slow = i % 3 == 0  # the attribute XPaths are slow (~40 ms a page): every third page
        scan = _scan_body(tree, price=slow, sku=slow)
        nodes = _TEXT_NODES(tree)
        assert scan.raws == [str(n) for n in nodes]
        expected_parents = [n.getparent() if not n.is_tail else n.getparent().getparent() for n in nodes]
        assert len(scan.parents) == len(nodes) and all(a is b for a, b in zip(scan.parents, expected_parents))
        assert [scan.h1] == (TEXT._H1(tree) or [None])
        if slow:
            assert scan.price_elems == _PRICE_ELEMS_SLOW(tree) == _price_named(tree)
            assert scan.sku_elems == _SKU_ATTR_SLOW(tree)
        PAGE._LOCAL.ctx = _PageCtx(tree, raw)
        try:
            assert SEL._itemprop_elems(tree) == tree.xpath("descendant-or-self::*[@itemprop]")
            assert SEL._meta_elems(tree) == tree.xpath("//meta")
        finally:
            PAGE._LOCAL.ctx = None
    tree = _parse(TRICKY)
    scan = _scan_body(tree, price=True, sku=True)
    texts = [t.strip() for t in scan.raws]
    assert "after pi" in texts and "script tail" in texts and "var sku" not in "".join(texts)
    assert "ns text" not in texts and "img tail in noscript" not in texts  # both children of <noscript>
    # a processing instruction inside <body>: no text node of its own, its tail is one
    pi = etree.ProcessingInstruction("php", "echo 1")
    pi.tail = "pi tail"
    tree.find(".//h1").append(pi)
    scan = _scan_body(tree, price=True, sku=True)
    assert scan.raws == [str(n) for n in _TEXT_NODES(tree)] and "pi tail" in scan.raws
    assert "echo 1" not in "".join(scan.raws)
    assert scan.price_elems == _PRICE_ELEMS_SLOW(tree) == _price_named(tree) and scan.sku_elems == _SKU_ATTR_SLOW(tree)
    assert [e.get("id") or e.get("data-test") for e in scan.price_elems] == ["PRICE-main", "unitPrice"]
    # class / id only: the span's test-hook attribute (qa-id="catNumber") names no reference
    assert [e.tag for e in scan.sku_elems] == ["div"]


def test_memoised_selectors_match_cssselect():
    selectors = [
        "[itemprop=price]::attr(content)", "[itemprop=price]", "[itemprop=brand] [itemprop=name]",
        "[itemprop=brand]", "[itemprop=availability]::attr(href)", "[itemprop='name']",
        "meta[property='og:title']::attr(content)", "meta[name=description]::attr(content)",
        "meta[itemprop=priceCurrency]::attr(content)", "meta[property='product:price:amount']::attr(content)",
    ]
    for raw in _pages()[:12]:
        tree = _parse(raw)
        PAGE._LOCAL.ctx = _PageCtx(tree, raw)
        try:
            for sel in selectors:
                xp, attr = _compile(sel)
                want = None
                for node in xp(tree):
                    value = node.get(attr) if attr else node.text_content()
                    value = " ".join(str(value or "").split()) or None
                    if value:
                        want = value
                        break
                assert _select(tree, sel) == want, sel
        finally:
            PAGE._LOCAL.ctx = None
    tree = _parse(TRICKY)
    assert _select(tree, "[itemprop=brand] [itemprop=name]") == "Acme"
    assert _select(tree, "[itemprop=price]::attr(content)") == "9.99"
    assert _select(tree, "meta[property='og:title']::attr(content)") == "Og Title"


def test_itemprop_within_itemprop_matches_cssselect():
    raw = b"""<html><body><div><span itemprop="name">outside</span>
    <div itemprop="brand"><section><b itemprop="name">in 1</b><i itemprop="name">in 2</i></section>
    <div itemprop="brand"><u itemprop="name">nested</u></div></div>
    <p><span itemprop="name">outside 2</span></p><div itemprop="offers"><s itemprop="name">other</s></div>
    <span itemprop="brand name">two words</span><div itemprop="brand"><em itemprop="name">in 3</em></div>
    </div></body></html>"""
    for page in (raw, *_pages()[1:]):
        tree = _parse(page)
        PAGE._LOCAL.ctx = _PageCtx(tree, page)
        try:
            for sel in ("[itemprop=brand] [itemprop=name]", "[itemprop=offers] [itemprop=name]"):
                want = _compile(sel)[0](tree)
                got = SEL._itemprop_nodes(tree, *SEL._itemprop_selector(sel)[:2])
                assert got == want, sel
        finally:
            PAGE._LOCAL.ctx = None
    tree = _parse(raw)
    assert [e.text for e in SEL._itemprop_nodes(tree, "name", "brand")] == ["in 1", "in 2", "nested", "in 3"]


def test_no_itemprop_in_bytes_means_no_itemprop_element():
    raw = b"<html><body><h1>x</h1><p class='price'>$5</p></body></html>"
    tree = _parse(raw)
    PAGE._LOCAL.ctx = _PageCtx(tree, raw)
    try:
        assert PAGE._raw_lacks(tree, b"itemprop") and _select(tree, "[itemprop=price]") is None
    finally:
        PAGE._LOCAL.ctx = None
    # a UTF-16 page cannot be checked byte-wise: the gate stays open
    raw16 = "<html><body><p itemprop='price'>5</p></body></html>".encode("utf-16")
    assert not _PageCtx(None, raw16).ascii_ok


def test_extract_in_threads_equals_sequential():
    pages = _pages()[:9]
    urls = [f"https://shop{i}.example/p/{i}" for i in range(len(pages))]
    want = [extract_fn(raw, url).to_dict() for raw, url in zip(pages, urls)]
    got: list = [None] * len(pages)
    errors: list = []

    def run(i: int) -> None:
        try:
            for _ in range(3):
                got[i] = extract_fn(pages[i], urls[i]).to_dict()
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pages))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == want
    assert getattr(PAGE._LOCAL, "ctx", None) is None  # the page context is released after each call
    assert gc.isenabled() and X._GC_PAUSED == 0  # overlapping calls shared one pause and ended it


def test_text_nodes_outside_extract_are_recomputed():
    tree = _parse(TRICKY)
    parents, texts = TEXT._text_nodes(tree)
    assert texts[0] == "lead text" and parents[0].tag == "body"
    other = etree.fromstring("<html><body><p>x</p></body></html>", etree.HTMLParser())
    assert TEXT._text_nodes(other)[1] == ["x"]


def test_scan_without_a_body_and_price_elements_asked_late():
    frameset = _parse(b"<html><head><title>t</title></head><frameset><frame src='a'></frameset></html>")
    assert not TEXT._BODY(frameset)
    scan = _scan_body(frameset, price=True, sku=True)
    assert scan.raws == [] and scan.price_elems == [] and scan.sku_elems == [] and scan.h1 is None
    # the text walk made first (no price elements), then a layer asks for them: the XPath fills in
    tree = _parse(TRICKY)
    PAGE._LOCAL.ctx = _PageCtx(tree, TRICKY)
    try:
        assert TEXT._raw_text_nodes(tree)[1][0] == "lead text"
        assert PAGE._ctx(tree).memo["scan"].price_elems is None
        assert TEXT._PRICE_ELEMS(tree) == _PRICE_ELEMS_SLOW(tree) and len(TEXT._PRICE_ELEMS(tree)) == 2
        assert [TEXT._first_h1(tree)[0].text] == ["Title "]
    finally:
        PAGE._LOCAL.ctx = None


def test_opengraph_reader_matches_extruct():
    from extruct.opengraph import OpenGraphExtractor

    prefixed = (b"<html prefix='fb: http://ogp.me/ns/fb#'><head prefix='my: http://x/ns#'>"
                b"<meta property='og:title' content='T'><meta property='fb:app_id' content='1'>"
                b"<meta property='my:thing' content=''><meta property='other:x' content='n'>"
                b"<meta property='og:title' content='T2'><meta name='og:image' content='no property'>"
                b"</head><body><meta property='og:image' content='in body'></body></html>")
    for raw in [prefixed, TRICKY, b"<html><body><p>no head</p></body></html>", *_pages()[1:]]:
        tree = _parse(raw)
        assert STRUCT._opengraph_items(tree) == list(OpenGraphExtractor().extract_items(tree, "https://x.example/"))
    assert [p for p, _ in STRUCT._opengraph_items(_parse(prefixed))[0]["properties"]] == \
        ["og:title", "fb:app_id", "my:thing", "og:title"]


def test_collector_paused_during_extract_only():
    inside: list[bool] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            inside.append(getattr(PAGE._LOCAL, "ctx", None) is not None)

    raw = _pages()[1]
    threshold = gc.get_threshold()
    gc.callbacks.append(seen)
    gc.set_threshold(50)  # a collection every 50 allocations: many during a page if not paused
    try:
        extract_fn(raw, "https://shop.example/p/1")
        assert gc.isenabled() and X._GC_PAUSED == 0
        junk = [[i] for i in range(500)]  # the collector runs again once the call is over
        assert junk and inside and not any(inside)
        gc.disable()  # an application that turned the collector off keeps it off
        extract_fn(raw, "https://shop.example/p/1")
        assert not gc.isenabled() and X._GC_PAUSED == 0
    finally:
        gc.enable()
        gc.set_threshold(*threshold)
        gc.callbacks.remove(seen)


def test_overlapping_calls_still_collect_cycles():
    full: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    raw = TRICKY
    limit = X._GC_HOLD_LIMIT
    assert X._gc_pause()  # another thread inside extract() all along
    gc.callbacks.append(seen)
    X._GC_HOLD_LIMIT = 3
    try:
        for _ in range(2):
            extract_fn(raw, "https://shop.example/p/1")
        assert not gc.isenabled() and not full
        extract_fn(raw, "https://shop.example/p/1")  # the third call while the pause is held
        assert not gc.isenabled() and full == [1] and X._GC_HELD == 0
    finally:
        X._GC_HOLD_LIMIT = limit
        gc.callbacks.remove(seen)
        X._gc_resume()
    assert gc.isenabled() and X._GC_PAUSED == 0


def test_attribute_gate_on_css_selectors():
    assert SEL._required_attrs(".a-price.a-text-price[data-a-strike=true] .a-offscreen") == (b"data-a-strike",)
    assert SEL._required_attrs("#x h1[itemProp=name] [data-q]::attr(href)") == (b"data-q", b"itemprop")
    for free in ("div[a!=b]", "a, b[c]", "xpath://*[@x]", "a:not([x])", "p:is([q])", "bad[["):
        assert SEL._required_attrs(free) == ()
    selectors = [".a-price.a-text-price[data-a-strike=true] .a-offscreen", "h1[itemprop=name]",
                 "[data-test] span", "span[qa-id]", "div[data-qa-ref=n]::attr(class)"]
    for raw in [TRICKY, *_pages()[1:]]:
        tree = _parse(raw)
        want = [_select(tree, sel) for sel in selectors]  # outside extract: no gate, the XPath runs
        PAGE._LOCAL.ctx = _PageCtx(tree, raw)
        try:
            assert [_select(tree, sel) for sel in selectors] == want
        finally:
            PAGE._LOCAL.ctx = None
    tree = _parse(TRICKY)
    assert [_select(tree, sel) for sel in selectors[3:]] == ["CAT 1", "Product-Code x"]


def test_css_reached_through_a_required_attribute_selects_what_cssselect_does():
    from cssselect import HTMLTranslator

    selectors = [".a-price.a-text-price[data-a-strike=true] .a-offscreen", "h1[itemprop=name]",
                 "[data-test] span", "span[QA-ID]", "[itemprop=brand] [itemprop=name]", "div span[qa-id]",
                 "a[href^='https']", "[class~=price]::text"]
    assert SEL._css_xpath("h1[itemprop=name]").startswith("descendant-or-self::*/@itemprop/parent::h1[")
    assert SEL._css_xpath("div span[x]") == HTMLTranslator().css_to_xpath("div span[x]")  # first step has none
    for raw in [TRICKY, *_pages()[1:]]:
        tree = _parse(raw)
        for sel in selectors:
            css = sel.removesuffix("::text")
            assert _compile(sel)[0](tree) == etree.XPath(HTMLTranslator().css_to_xpath(css))(tree), sel
    tree = _parse(TRICKY)
    assert [e.text for e in _compile("span[QA-ID]")[0](tree)] == ["CAT 1"]


def test_scripts_and_metas_listed_in_one_walk():
    for raw in [TRICKY, *_pages()[1:]]:
        tree = _parse(raw)
        scripts, metas = SEL._scripts_and_metas(tree)
        assert scripts == list(tree.iter("script")) and metas == list(tree.iter("meta"))


def test_id_table_only_for_adapters_that_use_it():
    from priceintel.scrape.adapters import get_adapter

    assert X._needs_ids(get_adapter("amazon")) and X._needs_ids(get_adapter("walmart"))
    assert not X._needs_ids(get_adapter("generic"))
    raw = b"<html><body><p id='x'>a</p></body></html>"
    assert [p.text for p in _parse(raw).xpath("id('x')")] == ["a"]
    assert _parse(raw, ids=False).xpath("id('x')") == [] and _parse(raw, ids=False).find(".//p").text == "a"
    assert _parse(b" \n\t ") is None and _parse(b"") is None


ITEMREF = b"""<html><body>
<div itemscope itemtype="https://schema.org/Product" itemref="pr br nothere dup an">
<span itemprop="name">Thing</span></div>
<p id="pr"><span itemprop="sku">SKU-1</span>
<span itemscope itemtype="https://schema.org/Thing"><span itemprop="sku">not mine</span></span></p>
<div id="br" itemprop="brand" itemscope itemtype="https://schema.org/Brand"><span itemprop="name">Acme</span></div>
<span id="dup"><meta itemprop="gtin13" content="4006381333931"></span>
<span id="dup"><meta itemprop="gtin13" content="0000000000000"></span>
<a name="an" href="/x"><meta itemprop="mpn" content="M-9"></a>
</body></html>"""


def test_microdata_matches_extruct_without_the_id_table():
    from extruct.w3cmicrodata import MicrodataExtractor

    url = "https://shop.example/p/1"
    pages = [raw for raw in [ITEMREF, TRICKY, *_pages()[1:]] if b"itemscope" in raw.lower()]
    assert len(pages) > 10
    for raw in pages:
        want = MicrodataExtractor().extract_items(_parse(raw), url)
        for ids in (True, False):
            tree = _parse(raw, ids=ids)
            PAGE._LOCAL.ctx = _PageCtx(tree, raw, ids)
            try:
                assert STRUCT._microdata_items(tree, url) == want
            finally:
                PAGE._LOCAL.ctx = None
    item = MicrodataExtractor().extract_items(_parse(ITEMREF), url)[0]["properties"]
    assert item["sku"] == "SKU-1" and item["brand"]["properties"]["name"] == "Acme"
    assert item["gtin13"] == "4006381333931" and item["mpn"] == "M-9"
    # what the lookup stands in for: extruct alone finds no reference in a tree without the id table
    assert "sku" not in MicrodataExtractor().extract_items(_parse(ITEMREF, ids=False), url)[0]["properties"]


def test_reference_words_hint_only_in_class_or_id_values():
    from priceintel.scrape.layers.text import _in_class_or_id

    def at(page: bytes) -> bool:
        return _in_class_or_id(page, page.index(b"product-code"))

    assert at(b'<div class="a product-code b">') and at(b"<span id='product-code'>")
    assert at(b"<div class=product-code>") and at(b'<div\nclass = "x product-code">')
    assert not at(b'<div data-x="product-code">') and not at(b'<div data-id="product-code">')
    assert not at(b'<script>var a="product-code"</script>') and not at(b"<p>product-code</p>")
    # on the real pages the hint is set wherever the slow XPath finds a reference-named element
    for raw in _pages():
        tree = _parse(raw)
        PAGE._LOCAL.ctx = _PageCtx(tree, raw)
        try:
            assert TEXT._sku_hinted(tree) or not _SKU_ATTR_SLOW(tree)
        finally:
            PAGE._LOCAL.ctx = None
