"""Fetch one given product page (no crawling) and say what happened: a `PageRecord` with an outcome.

`fetch_page(url, shop)` goes through the `Fetcher` (robots.txt, per-host politeness, retries, timeouts,
raw-page archive), extracts the offer with the shop's adapter (`extract`, the same code the crawler and
`eval pages` use) and classifies the result:

=============  ==================================================================================
outcome        when
=============  ==================================================================================
ok             a product page with a price
no_price       a product page (or a page with a title / item id) and no price: none is invented
not_found      HTTP 404 / 410, a "product not found" page, or a redirect to the shop's home page
redirected     the final URL is another product (its item id differs from the requested URL's)
blocked        a robot check / captcha page, HTTP 401 / 403 / 429, or robots.txt disallows the URL
error          cannot connect, timeout, HTTP 5xx and other statuses, a truncated page, rendering failed
=============  ==================================================================================

Per-field extraction methods come from `Offer.methods` (`jsonld`, `json:<path>`, `css:<selector>`,
`microdata`, `opengraph`, `heuristic:<rule>`, `url`, …) and are kept in `PageRecord.methods`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from priceintel import PriceIntelError
from priceintel.items import DISCONTINUED, OUT_OF_STOCK, Offer, to_json
from priceintel.scrape.archive import RawArchive
from priceintel.scrape.extract import extract
from priceintel.scrape.fetch import Fetcher, FetchResult
from priceintel.scrape.outbound import OutboundPolicy
from priceintel.scrape.shops import Shop, shop_policy

__all__ = ["OUTCOMES", "PageError", "PageRecord", "fetch_offer", "fetch_page"]

OUTCOMES = ("ok", "no_price", "not_found", "redirected", "blocked", "error")
#: Offer fields a PageRecord carries (with their extraction methods)
RECORD_FIELDS = ("item_id", "title", "price", "list_price", "currency", "availability", "gtin", "mpn", "brand")
_BLOCKING_STATUSES = frozenset({401, 403, 429})


class PageError(PriceIntelError):
    """fetch_page was called with arguments that cannot work together (e.g. render with a non-rendering Fetcher)."""


@dataclass(frozen=True)
class PageRecord:
    """What one fetch of one product page gave: the offer fields, how each was found, and the outcome."""

    url: str
    outcome: str  #: one of OUTCOMES
    message: str
    final_url: str | None = None
    http_status: int | None = None
    retailer: str | None = None  #: the shop's name
    item_id: str | None = None
    title: str | None = None
    price: str | None = None  #: normalised decimal string, never invented
    list_price: str | None = None
    currency: str | None = None
    availability: str | None = None
    gtin: str | None = None
    mpn: str | None = None
    brand: str | None = None
    methods: dict = field(default_factory=dict)  #: field -> extraction method, for the fields above
    page_kind: str | None = None  #: extract()'s classification (product, no_price, blocked, …)
    page_sha256: str | None = None  #: address of the raw body in the archive
    fetched_at: datetime | None = None
    rendered: bool = False

    @property
    def ok(self) -> bool:
        """True when the outcome is ok (a product page with a price)."""
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (datetimes kept)."""
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text (ISO timestamps), indented for printing."""
        return to_json(self.to_dict(), indent=indent, ensure_ascii=False)


def _fetch(fetcher: Fetcher, url: str, meta: dict) -> tuple[FetchResult, str]:
    """(result, final URL after redirects)."""
    res = fetcher.get(url, meta=meta)
    return res, res.final_url or url


# --- classification -------------------------------------------------------------------------
def _same_url(a: str, b: str) -> bool:
    """Whether two URLs name the same page (scheme, `www.`, trailing slash and fragment ignored)."""

    def key(u: str) -> tuple[str, str, str]:
        p = urlsplit(u)
        return ((p.hostname or "").lower().removeprefix("www."), p.path.rstrip("/") or "/", p.query)

    return key(a) == key(b)


def _redirect_outcome(url: str, final: str, shop: Shop) -> tuple[str, str] | None:
    """(outcome, message) when a redirect left the requested product, else None."""
    if _same_url(url, final):
        return None
    adapter = shop.get_adapter()
    want, got = adapter.item_id_from_url(url), adapter.item_id_from_url(final)
    if want is not None and got is not None and want != got:
        return "redirected", f"{url} redirects to another product ({got} instead of {want}): {final}"
    if (urlsplit(final).path or "/") == "/" and (urlsplit(url).path or "/") != "/":
        return "not_found", f"{url} redirects to the shop's home page {final}: the product is gone"
    return None


def _fetch_failure(res: FetchResult) -> tuple[str, str] | None:
    """(outcome, message) for a fetch that gave no page to extract, else None."""
    if res.error_kind is not None and res.status is None:
        if res.error_kind == "robots_disallowed":
            return "blocked", res.error or f"robots.txt disallows {res.url}"
        return "error", f"{res.error_kind}: {res.error}"
    if res.status in (404, 410):
        return "not_found", f"HTTP {res.status} for {res.url}"
    if res.status in _BLOCKING_STATUSES:
        return "blocked", f"HTTP {res.status} for {res.url} (access refused: robot check or rate limit)"
    if res.error_kind is not None:
        return "error", res.error or f"{res.error_kind} for {res.url}"
    return None


def _page_outcome(offer: Offer, url: str) -> tuple[str, str]:
    """(outcome, message) of an extracted page."""
    kind = offer.page_kind
    if kind == "blocked":
        return "blocked", f"robot check / captcha page instead of the product: {url}"
    if kind == "not_found":
        return "not_found", f"not a product page (product not found): {url}"
    if kind == "truncated":
        return "error", f"page truncated (no closing </html>): its price is not trusted: {url}"
    if offer.price is None:
        if offer.availability in (OUT_OF_STOCK, DISCONTINUED):
            return "no_price", f"out of stock and no price shown: {url}"
        return "no_price", f"product page shows no price that could be extracted: {url}"
    return "ok", f"price {offer.price} {offer.currency or '(currency unknown)'}"


def _record(
    url: str, final: str, res: FetchResult, shop: Shop, offer: Offer | None, outcome: tuple[str, str]
) -> PageRecord:
    """Assemble the PageRecord."""
    values: dict[str, Any] = {}
    methods: dict[str, str] = {}
    if offer is not None:
        values = {f: getattr(offer, f) for f in RECORD_FIELDS}
        if outcome[0] != "ok":  # e.g. a truncated page: a price read from it is not trusted
            values["price"] = values["list_price"] = None
        methods = {f: offer.methods[f] for f in RECORD_FIELDS if f in offer.methods and values[f] is not None}
        rejected = offer.methods.get("item_id_rejected")
        if rejected is not None:  # see extract(): a page's "id" with markup, spaces or a formula is no id
            methods["item_id_rejected"] = rejected
            instead = f"the id comes from {methods.get('item_id', '?')}" if values["item_id"] else "no item id"
            outcome = (
                outcome[0],
                f"{outcome[1]}; the item id from {rejected} on {final} was rejected (an id is 1-128 letters, "
                f"digits and ._:/-): {instead}",
            )
    return PageRecord(
        url=url,
        outcome=outcome[0],
        message=outcome[1],
        final_url=final if res.status is not None else None,
        http_status=res.status,
        retailer=shop.name,
        methods=methods,
        page_kind=offer.page_kind if offer is not None else None,
        page_sha256=res.sha256,
        fetched_at=res.fetched_at,
        rendered=res.rendered,
        **values,
    )


def url_item_id(url: str) -> str:
    """A stable listing id for a page whose adapter finds no retailer id: `url-` + 16 hex of its SHA-256."""
    return "url-" + hashlib.sha256(url.encode()).hexdigest()[:16]


def shop_fetcher(
    shop: Shop, render: bool, archive_dir: str | Path | None, allow: OutboundPolicy | None = None
) -> Fetcher:
    """A Fetcher with the shop's politeness, archiving to `archive_dir` (default: the project's raw archive),
    held to `allow` (default: the shop's outbound policy, `shops.shop_policy`)."""
    return Fetcher(
        user_agent=shop.user_agent,
        rate_limit_per_host=shop.requests_per_second,
        max_workers=shop.concurrency,
        archive=RawArchive(archive_dir) if archive_dir is not None else RawArchive(),
        render=render,
        allow=shop_policy(shop) if allow is None else allow,
    )


def fetch_page(
    url: str,
    shop: Shop,
    fetcher: Fetcher | None = None,
    render: bool | None = None,
    archive_dir: str | Path | None = None,
    allow: OutboundPolicy | None = None,
) -> PageRecord:
    """Fetch exactly `url` (no crawling) politely, extract it with the shop's adapter, classify the outcome.

    Without `fetcher`, one is made from the shop's politeness (`requests_per_second`, `concurrency`,
    `user_agent`), rendering JavaScript when `render` (default: the shop's `render_js`), archiving raw
    pages under `archive_dir` (default: the project's raw archive) and held to `allow` (default: the shop's
    outbound policy); it is closed afterwards. A given
    `fetcher` is used as it is (its own politeness, archive and rendering): `render=True` with a Fetcher
    that does not render is a PageError. Network and HTTP failures are outcomes, never exceptions.
    """
    own = fetcher is None
    if fetcher is None:
        fetcher = shop_fetcher(shop, shop.render_js if render is None else bool(render), archive_dir, allow)
    elif render and not fetcher.render:
        raise PageError(f"fetch_page({url!r}, render=True) needs a Fetcher created with render=True")
    try:
        return fetch_offer(url, shop, fetcher)[0]
    finally:
        if own:
            fetcher.close()


def fetch_offer(
    url: str, shop: Shop, fetcher: Fetcher, meta: dict | None = None
) -> tuple[PageRecord, Offer | None, FetchResult]:
    """`fetch_page` on a given Fetcher, also returning the extracted Offer (None when the page was not
    extracted) and the fetch result: what a live run stores. `meta` is archived with the raw page."""
    res, final = _fetch(fetcher, url, {"kind": "product", "retailer": shop.name, "page": "single", **(meta or {})})
    failure = _fetch_failure(res)
    if failure is not None:
        return _record(url, final, res, shop, None, failure), None, res
    moved = _redirect_outcome(url, final, shop)
    if moved is not None:
        return _record(url, final, res, shop, None, moved), None, res
    try:
        status = 200 if res.not_modified else res.status
        offer = extract(res.body, final, shop.retailer, status=status, country=shop.country)
    except Exception as exc:  # noqa: BLE001 - one odd page is an outcome, not a crash of the watch run
        return (
            _record(url, final, res, shop, None, ("error", f"extraction failed on {final}: {exc!r}"[:500])),
            None,
            res,
        )
    return _record(url, final, res, shop, offer, _page_outcome(offer, final)), offer, res
