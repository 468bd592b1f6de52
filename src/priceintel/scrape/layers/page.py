"""Per-page machinery of extraction: HTML parsing, the page being extracted (thread-local) and its memo."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import lxml.html
from lxml import etree

_WS = re.compile(r"\s+")


def _norm_text(text: Any) -> str | None:
    """Whitespace-collapsed string, None when empty."""
    if text is None:
        return None
    s = _WS.sub(" ", str(text)).strip()
    return s or None


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
