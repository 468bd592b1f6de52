"""Declarative retailer adapter: URL patterns, selectors, embedded-JSON paths, availability words."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from priceintel.items import DISCONTINUED, IN_STOCK, LIMITED, OUT_OF_STOCK, PREORDER

#: a selector is CSS (optionally ending in `::attr(name)` or `::text`) or `xpath:<expression>`
Selector = str | tuple[str, ...]

#: fields an adapter may fill from selectors or embedded JSON
ADAPTER_FIELDS = (
    "item_id",
    "title",
    "brand",
    "gtin",
    "mpn",
    "sku",
    "price",
    "price_raw",
    "list_price",
    "currency",
    "availability",
    "seller",
    "rating",
    "image",
)

#: availability words shared by every adapter (lower-case, matched as substrings, longest first)
COMMON_AVAILABILITY: dict[str, str] = {
    "instock": IN_STOCK,
    "in stock": IN_STOCK,
    "in_stock": IN_STOCK,
    "available": IN_STOCK,
    "add to cart": IN_STOCK,
    "outofstock": OUT_OF_STOCK,
    "out of stock": OUT_OF_STOCK,
    "out_of_stock": OUT_OF_STOCK,
    "sold out": OUT_OF_STOCK,
    "soldout": OUT_OF_STOCK,
    "onlineonly": IN_STOCK,
    "unavailable": OUT_OF_STOCK,
    "not available": OUT_OF_STOCK,
    "currently unavailable": OUT_OF_STOCK,
    "limitedavailability": LIMITED,
    "left in stock": LIMITED,
    "only a few left": LIMITED,
    "preorder": PREORDER,
    "pre-order": PREORDER,
    "pre order": PREORDER,
    "discontinued": DISCONTINUED,
    # other languages (longest phrase wins, so "non disponibile" beats "disponibile")
    "disponibile": IN_STOCK,
    "non disponibile": OUT_OF_STOCK,
    "esaurito": OUT_OF_STOCK,
    "auf lager": IN_STOCK,
    "lieferbar": IN_STOCK,
    "nicht lieferbar": OUT_OF_STOCK,
    "nicht verfügbar": OUT_OF_STOCK,
    "ausverkauft": OUT_OF_STOCK,
    "derzeit nicht auf lager": OUT_OF_STOCK,
    "en stock": IN_STOCK,
    "disponible": IN_STOCK,
    "indisponible": OUT_OF_STOCK,
    "épuisé": OUT_OF_STOCK,
    "rupture de stock": OUT_OF_STOCK,
    "no disponible": OUT_OF_STOCK,
    "agotado": OUT_OF_STOCK,
    "esgotado": OUT_OF_STOCK,
    "indisponível": OUT_OF_STOCK,
    "in voorraad": IN_STOCK,
    "niet op voorraad": OUT_OF_STOCK,
    "uitverkocht": OUT_OF_STOCK,
    "в наличии": IN_STOCK,
    "нет в наличии": OUT_OF_STOCK,
    "brak w magazynie": OUT_OF_STOCK,
    "dostępny": IN_STOCK,
    "niedostępny": OUT_OF_STOCK,
    "på lager": IN_STOCK,
    "i lager": IN_STOCK,
    "slutsåld": OUT_OF_STOCK,
    "utsolgt": OUT_OF_STOCK,
    "udsolgt": OUT_OF_STOCK,
    "在庫あり": IN_STOCK,
    "在庫切れ": OUT_OF_STOCK,
    "有货": IN_STOCK,
    "缺货": OUT_OF_STOCK,
    "售完": OUT_OF_STOCK,
    "품절": OUT_OF_STOCK,
    # more languages; each negative form is longer than the positive one it contains
    "non disponible": OUT_OF_STOCK,
    "verfügbar": IN_STOCK,
    "nicht vorrätig": OUT_OF_STOCK,
    "vergriffen": OUT_OF_STOCK,
    "niet leverbaar": OUT_OF_STOCK,
    "niet beschikbaar": OUT_OF_STOCK,
    "em estoque": IN_STOCK,
    "sem estoque": OUT_OF_STOCK,
    "fora de estoque": OUT_OF_STOCK,
    "disponível": IN_STOCK,
    "en existencia": IN_STOCK,
    "sin existencias": OUT_OF_STOCK,
    "sin stock": OUT_OF_STOCK,
    "in magazzino": IN_STOCK,
    "non in magazzino": OUT_OF_STOCK,
    "na stanju": IN_STOCK,
    "nema na stanju": OUT_OF_STOCK,
    "nije na stanju": OUT_OF_STOCK,
    "na zalogi": IN_STOCK,
    "ni na zalogi": OUT_OF_STOCK,
    "skladem": IN_STOCK,
    "není skladem": OUT_OF_STOCK,
    "vyprodáno": OUT_OF_STOCK,
    "na sklade": IN_STOCK,
    "nie je na sklade": OUT_OF_STOCK,
    "vypredané": OUT_OF_STOCK,
    "raktáron": IN_STOCK,
    "nincs raktáron": OUT_OF_STOCK,
    "elfogyott": OUT_OF_STOCK,
    "varastossa": IN_STOCK,
    "ei varastossa": OUT_OF_STOCK,
    "loppuunmyyty": OUT_OF_STOCK,
    "ikke på lager": OUT_OF_STOCK,
    "slutsålt": OUT_OF_STOCK,
    "în stoc": IN_STOCK,
    "nu este în stoc": OUT_OF_STOCK,
    "stoc epuizat": OUT_OF_STOCK,
    "brak towaru": OUT_OF_STOCK,
    "stokta var": IN_STOCK,
    "stokta yok": OUT_OF_STOCK,
    "tükendi": OUT_OF_STOCK,
    "в наявності": IN_STOCK,
    "немає в наявності": OUT_OF_STOCK,
    "отсутствует": OUT_OF_STOCK,
    "متوفر": IN_STOCK,
    "غير متوفر": OUT_OF_STOCK,
    "نفذت الكمية": OUT_OF_STOCK,
    "在庫なし": OUT_OF_STOCK,
    "品切れ": OUT_OF_STOCK,
    "缺貨": OUT_OF_STOCK,
    "售罄": OUT_OF_STOCK,
    "no stock": OUT_OF_STOCK,
    "out-of-stock": OUT_OF_STOCK,
    "in-stock": IN_STOCK,
}


@dataclass(frozen=True)
class Adapter:
    """One retailer's page conventions; adding a retailer = one module defining `ADAPTER = Adapter(...)`."""

    name: str
    #: host suffixes of the real retailer (e.g. "amazon.com"); loopback demo shops match by URL pattern
    domains: tuple[str, ...] = ()
    #: regex (searched in the URL path) with a named group `item_id`: recognises product pages
    url_pattern: str | None = None
    #: regex for product links on category pages (defaults to url_pattern)
    product_link_pattern: str | None = None
    #: regex for category / listing page links
    category_pattern: str | None = None
    #: field -> selector (or tuple of fallbacks), see `Selector`
    selectors: dict = field(default_factory=dict)
    #: field -> regex whose group 1 is kept from the selected text (e.g. "Visit the (.+) Store")
    field_regex: dict = field(default_factory=dict)
    #: CSS selector of a <script> holding JSON state (e.g. "script#__NEXT_DATA__")
    json_script: str | None = None
    #: JS variable assigned a JSON object in a <script> (e.g. "window.__INITIAL_STATE__")
    json_var: str | None = None
    #: dotted path from the JSON root to the product object
    json_path: str = ""
    #: field -> dotted path inside the product object
    json_fields: dict = field(default_factory=dict)
    #: extra availability words (lower-case) -> schema.org URL, checked before the common ones
    availability_map: dict = field(default_factory=dict)
    #: the shop's own markers of a crossed-out (was / list) price, beside the generic ones: a class word
    #: (matched in class / id / data-test, lower-case) or `attribute=value`
    struck_marks: tuple[str, ...] = ()
    #: lower-case phrases meaning the request was blocked (captcha / robot check)
    blocked_markers: tuple[str, ...] = (
        "robot check",
        "captcha",
        "are you a robot",
        "access denied",
        "enter the characters you see below",
        "verify you are a human",
    )
    #: lower-case phrases meaning the product does not exist
    not_found_markers: tuple[str, ...] = (
        "page not found",
        "looking for something?",
        "product not found",
        "this item is no longer available",
        "couldn't find that page",
        "could not find that page",
    )

    @cached_property
    def _url_re(self) -> re.Pattern | None:
        """Compiled url_pattern."""
        return re.compile(self.url_pattern) if self.url_pattern else None

    @cached_property
    def _link_re(self) -> re.Pattern | None:
        """Compiled product-link pattern (url_pattern when not given)."""
        pat = self.product_link_pattern or self.url_pattern
        return re.compile(pat) if pat else None

    @cached_property
    def _category_re(self) -> re.Pattern | None:
        """Compiled category_pattern."""
        return re.compile(self.category_pattern) if self.category_pattern else None

    @cached_property
    def availability_words(self) -> tuple[tuple[str, str], ...]:
        """(word, schema URL) pairs, common words overridden by the adapter's, longest first."""
        words = {**COMMON_AVAILABILITY, **self.availability_map}
        return tuple(sorted(words.items(), key=lambda kv: (-len(kv[0]), kv[0])))

    def item_id_from_url(self, url: str) -> str | None:
        """The retailer item id in a product URL, None when the URL is not a product page."""
        if self._url_re is None:
            return None
        m = self._url_re.search(urlsplit(url).path)
        return m.group("item_id") if m else None

    def is_product_url(self, url: str) -> bool:
        """Whether a URL (or link path) looks like one of this retailer's product pages."""
        if self._link_re is None:
            return False
        return self._link_re.search(urlsplit(url).path) is not None

    def is_category_url(self, url: str) -> bool:
        """Whether a URL looks like a category / listing page."""
        if self._category_re is None:
            return False
        return self._category_re.search(urlsplit(url).path) is not None

    def matches_host(self, url: str) -> bool:
        """Whether the URL's host is one of the retailer's domains."""
        host = (urlsplit(url).hostname or "").lower()
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def normalise_availability(self, text: str | None) -> str | None:
        """schema.org availability URL for a page's availability text, None when unrecognised."""
        if text is None:
            return None
        t = " ".join(str(text).lower().replace("http://", "https://").split())
        if not t:
            return None
        if t.startswith("https://schema.org/"):
            t = t.rsplit("/", 1)[-1]
        for word, url in self.availability_words:
            if word in t:
                return url
        return None
