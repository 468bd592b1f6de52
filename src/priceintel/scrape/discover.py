"""Discovery, the scraping half: candidate product pages of a shop for our catalogue, fetched and extracted.

Where candidates come from, per shop of `shops.yaml`:

* a `search_url` template (`{gtin}`, `{mpn}`, `{query}`): one search per catalogue product, by GTIN
  first, then MPN, then brand + name, stopping at the first search whose results page links products;
* else its configured `sitemap` and/or `category_urls` (listing pages: `rel=next` and the adapter's
  category links followed); with neither, the robots.txt `Sitemap:` lines (else `/sitemap.xml`), and
  when those list no product, the pages reachable from the home page.

A product link is one the shop's adapter recognises (`Adapter.is_product_url`); an adapter without URL
patterns (the generic one) takes every link to the shop's host and lets extraction tell products apart.
Every request goes through the shop's `Fetcher` (its politeness, robots.txt: a disallowed page is never
requested), at most `max_pages` requests per shop (robots.txt itself aside); URLs already known (watched,
queued for review or decided) are skipped before any fetch. Each fetched product page becomes a
candidate listing (title, brand, GTIN, MPN, item id): nothing is stored here, and no price is kept.
Matching and storing are `priceintel.ingest.discover`'s; `report_lines` prints the outcome.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import pandas as pd

from priceintel import PriceIntelError
from priceintel.scrape.crawl import _base, _dedupe, _links, _sitemap_locs
from priceintel.scrape.fetch import Fetcher, FetchResult
from priceintel.scrape.limits import BodyTooLarge
from priceintel.scrape.page import PageRecord, fetch_offer, shop_fetcher, url_item_id
from priceintel.scrape.shops import Shop, _bare_host, shop_policy

__all__ = [
    "CANDIDATE_COLUMNS",
    "DEFAULT_MAX_PAGES",
    "OUTCOMES",
    "REPORT_COLUMNS",
    "DiscoverError",
    "ShopDiscovery",
    "discover_shop",
    "has_discovery",
    "normalise_url",
    "report_lines",
    "search_attempts",
    "select_shops",
    "url_item_id",
]

#: requests per shop unless --max-pages says otherwise
DEFAULT_MAX_PAGES = 200
#: a candidate listing: the page's identity and what extraction read from it
CANDIDATE_COLUMNS = ["retailer", "url", "item_id", "title", "brand", "gtin", "mpn", "found_by"]
#: product links kept from one search results page (its first ones: the shop's best hits)
SEARCH_LINKS = 5
#: one line per candidate of `priceintel discover`
REPORT_COLUMNS = ["retailer", "url", "sku", "score", "method", "outcome", "message"]
#: auto -> watched; review -> the review queue; rejected -> nothing; skipped -> not a usable product page;
#: confirmed -> a match confirmed in the review app became a watch
OUTCOMES = ("auto", "review", "rejected", "skipped", "confirmed")
_USABLE = frozenset({"ok", "no_price"})


class DiscoverError(PriceIntelError):
    """Discovery cannot start: an unknown retailer or sku, no shop to discover, an empty catalogue."""


@dataclass
class ShopDiscovery:
    """What discovery found at one shop: candidate listings, pages that were not usable, counts."""

    shop: str
    candidates: pd.DataFrame  #: CANDIDATE_COLUMNS
    skipped: list[dict] = field(default_factory=list)  #: REPORT_COLUMNS rows of pages that gave no candidate
    found: int = 0  #: candidate URLs found (before known ones were left out)
    known: int = 0  #: URLs left out because they are already watched / queued / decided
    requests: int = 0  #: pages requested (listing pages + candidate pages)
    over_budget: int = 0  #: candidate URLs not fetched because max_pages was reached
    notes: list[str] = field(default_factory=list)  #: one line per problem (unreachable shop, failed search …)
    error: str | None = None  #: set when the shop could not be reached at all


class _Budget:
    """At most `left` requests."""

    def __init__(self, left: int) -> None:
        self.left = int(left)
        self.used = 0

    def take(self) -> bool:
        """Spend one request; False when none is left."""
        if self.left <= 0:
            return False
        self.left -= 1
        self.used += 1
        return True


def normalise_url(url: str) -> str:
    """A URL as discovery compares it: scheme and host lower-case, no fragment, an empty path as `/`."""
    parts = urlsplit(urldefrag(str(url).strip())[0])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def has_discovery(shop: Shop) -> bool:
    """Whether shops.yaml tells how to discover the shop's products (search_url, sitemap or category_urls)."""
    return bool(shop.search_url or shop.sitemap or shop.category_urls)


def select_shops(shops: Mapping[str, Shop], retailers: Sequence[str] | None, source: str = "shops.yaml") -> list[Shop]:
    """The named shops (any of them, configured for discovery or not), else every shop configured for discovery."""
    if retailers:
        unknown = [r for r in retailers if r not in shops]
        if unknown:
            known = ", ".join(sorted(shops)) or "none"
            raise DiscoverError(f"unknown retailer(s) {', '.join(unknown)}: {source} has {known}")
        return [shops[r] for r in dict.fromkeys(retailers)]
    chosen = [s for s in shops.values() if has_discovery(s)]
    if not chosen:
        raise DiscoverError(
            f"no shop in {source} has search_url, sitemap or category_urls: add one, or name shops with --retailer"
        )
    return chosen


def _text(value: Any) -> str | None:
    """A non-empty stripped string, else None (NaN and None included)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def search_attempts(product: Mapping[str, Any]) -> list[tuple[str, dict]]:
    """The searches for one catalogue product, in order: (kind, values for `Shop.search`) by GTIN, MPN, then
    brand + name. Every attempt carries every identifier the product has, so a template needing two is filled."""
    gtin, mpn = _text(product.get("gtin")), _text(product.get("mpn"))
    brand, name = _text(product.get("brand")), _text(product.get("name"))
    words = name if brand is None or (name and brand.lower() in name.lower()) else f"{brand} {name or ''}".strip()
    found = {"gtin": gtin, "mpn": mpn}
    return [(kind, {**found, "query": q}) for kind, q in (("gtin", gtin), ("mpn", mpn), ("query", words)) if q]


def _product_links(res: FetchResult, shop: Shop, hrefs: list[str], nxt: list[str]) -> list[str]:
    """Product links of a listing page: those the adapter recognises, or (adapter without URL patterns) every
    other link to the shop's host that is not the page itself, the home page or a listing page."""
    adapter = shop.get_adapter()
    hosts = {shop.host, _bare_host(res.url)}
    links = [h for h in hrefs if _bare_host(h) in hosts]
    if adapter.url_pattern or adapter.product_link_pattern:
        return _dedupe(h for h in links if adapter.is_product_url(h))
    listing = {normalise_url(u) for u in [res.url, shop.base_url, *nxt, *shop.category_urls]}
    if shop.search_url:
        listing.add(normalise_url(shop.search_url.split("?", 1)[0]))
    return _dedupe(
        h
        for h in links
        if normalise_url(h.split("?", 1)[0]) not in listing
        and normalise_url(h) not in listing
        and (urlsplit(h).path or "/") != "/"
        and not adapter.is_category_url(h)
    )


def _get(fetcher: Fetcher, url: str, kind: str, budget: _Budget, notes: list[str]) -> FetchResult | None:
    """A listing page (search results, sitemap, category) within the budget; None (with a note) when it failed."""
    if not budget.take():
        return None
    res = fetcher.get(url, meta={"kind": kind, "page": "discover"})
    if res.ok:
        return res
    why = res.error if res.status is None else f"HTTP {res.status}"
    notes.append(f"{kind} page {url}: {why}")
    return None


def _search_urls(
    shop: Shop, fetcher: Fetcher, products: Iterable[Mapping[str, Any]], budget: _Budget, notes: list[str]
) -> list[tuple[str, str]]:
    """(product URL, `search:<kind>`) from one search per catalogue product (GTIN, else MPN, else name): the first
    SEARCH_LINKS product links of the first search that lists any."""
    found: list[tuple[str, str]] = []
    searched: set[str] = set()
    for product in products:
        for kind, values in search_attempts(product):
            url = shop.search(**values)
            if url is None or url in searched:
                continue
            searched.add(url)
            if not _allowed(fetcher, url):
                notes.append(f"robots.txt disallows the search page {url}: no search at {shop.name}")
                return found
            res = _get(fetcher, url, "search", budget, notes)
            if res is None:
                if budget.left <= 0:
                    return found
                continue
            hrefs, nxt = _links(res)
            links = _product_links(res, shop, hrefs, nxt)[:SEARCH_LINKS]
            found.extend((link, f"search:{kind}") for link in links)
            if links:
                break
    return found


def _sitemap_pages(shop: Shop, fetcher: Fetcher, budget: _Budget, notes: list[str]) -> list[str]:
    """Product URLs of the configured sitemap, else of the robots.txt Sitemap lines / /sitemap.xml."""
    base = _base(shop.base_url)
    rp = None if shop.sitemap else fetcher.robots(base)
    queue = [shop.sitemap] if shop.sitemap else list((rp.site_maps() if rp is not None else None) or [])
    guessed = not queue  # /sitemap.xml tried on the off chance: its absence is not worth a note
    queue = queue or [urljoin(base, "sitemap.xml")]
    seen: set[str] = set()
    found: list[str] = []
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        res = _get(fetcher, url, "sitemap", budget, [] if guessed and len(seen) == 1 else notes)
        if res is None:
            continue
        try:
            pages, children = _sitemap_locs(res.body, url, fetcher.max_page_bytes)
        except BodyTooLarge as exc:
            notes.append(f"sitemap page {url}: too_large: {exc}")
            continue
        found.extend(pages)
        queue.extend(children)
    adapter = shop.get_adapter()
    if adapter.url_pattern or adapter.product_link_pattern:
        found = [u for u in found if adapter.is_product_url(u)]
    return _dedupe(found)


def _category_pages(shop: Shop, fetcher: Fetcher, start: list[str], budget: _Budget, notes: list[str]) -> list[str]:
    """Product links of listing pages from `start`, following rel=next and the adapter's category links."""
    adapter = shop.get_adapter()
    queue, seen, found = list(start), set(), []
    while queue and budget.left > 0:
        url = queue.pop(0)
        if normalise_url(url) in seen:
            continue
        seen.add(normalise_url(url))
        res = _get(fetcher, url, "category", budget, notes)
        if res is None:
            continue
        hrefs, nxt = _links(res)
        found.extend(_product_links(res, shop, hrefs, nxt))
        hosts = {shop.host, _bare_host(res.url)}
        more = nxt + [h for h in hrefs if adapter.is_category_url(h)]
        queue.extend(u for u in more if _bare_host(u) in hosts and normalise_url(u) not in seen)
    return _dedupe(found)


def candidate_urls(
    shop: Shop, fetcher: Fetcher, products: Iterable[Mapping[str, Any]], budget: _Budget, notes: list[str]
) -> list[tuple[str, str]]:
    """(URL, found_by) of the shop's candidate product pages: search template, else the configured sitemap and/or
    category pages, else the robots.txt sitemap, else the pages reachable from the home page."""
    if shop.search_url:
        found = _search_urls(shop, fetcher, products, budget, notes)
    else:
        found = []
        if shop.sitemap or not shop.category_urls:  # configured category pages alone narrow the search
            found = [(u, "sitemap") for u in _sitemap_pages(shop, fetcher, budget, notes)]
        start = list(shop.category_urls) or ([] if found else [_base(shop.base_url)])
        found += [(u, "category") for u in _category_pages(shop, fetcher, start, budget, notes)]
    first: dict[str, str] = {}
    for url, via in found:
        first.setdefault(normalise_url(url), via)  # the URL as watches store it (scheme and host lower-case)
    return list(first.items())


def _allowed(fetcher: Fetcher, url: str) -> bool:
    """Whether robots.txt lets the fetcher request the URL (the Fetcher refuses it anyway; this spends nothing)."""
    rp = fetcher.robots(url)
    return rp is None or not fetcher.obey_robots or rp.can_fetch(fetcher.user_agent, url)


def _candidate(shop: Shop, url: str, via: str, rec: PageRecord) -> dict:
    """A candidate listing (CANDIDATE_COLUMNS) from a fetched product page's record."""
    values = {"title": rec.title, "brand": rec.brand, "gtin": rec.gtin, "mpn": rec.mpn}
    return {"retailer": shop.name, "url": url, "item_id": rec.item_id or url_item_id(url), **values, "found_by": via}


def _skip(shop: Shop, url: str, message: str) -> dict:
    """A REPORT_COLUMNS row of a page that gave no candidate."""
    return {
        "retailer": shop.name,
        "url": url,
        "sku": None,
        "score": None,
        "method": None,
        "outcome": "skipped",
        "message": message,
    }


def _fetch_candidates(
    shop: Shop, fetcher: Fetcher, urls: list[tuple[str, str]], budget: _Budget, out: ShopDiscovery
) -> None:
    """Fetch the candidate pages within the budget (robots-disallowed ones never requested) into `out`."""
    jobs = []
    for url, via in urls:
        if not _allowed(fetcher, url):
            out.skipped.append(_skip(shop, url, f"robots.txt disallows {url}: not fetched"))
        elif budget.take():
            jobs.append((url, via))
        else:
            out.over_budget += 1
    meta = {"page": "discover"}

    def fetch(job: tuple[str, str]) -> PageRecord:
        """One candidate page, in the caller's scope (the shop's outbound policy)."""
        return fetch_offer(job[0], shop, fetcher, meta=meta)[0]

    with ThreadPoolExecutor(max_workers=max(1, shop.concurrency)) as pool:
        futures = [pool.submit(contextvars.copy_context().run, fetch, job) for job in jobs]
        records = [f.result() for f in futures]
    rows = []
    for (url, via), rec in zip(jobs, records):
        if rec.outcome in _USABLE and (rec.title or rec.gtin or rec.mpn):
            rows.append(_candidate(shop, url, via, rec))
        else:
            out.skipped.append(_skip(shop, url, f"{rec.outcome}: {rec.message}"))
    frame = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    out.candidates = frame.drop_duplicates(["retailer", "item_id"]).reset_index(drop=True)


def discover_shop(
    shop: Shop,
    products: Iterable[Mapping[str, Any]],
    known: set[str] | frozenset[str] = frozenset(),
    max_pages: int = DEFAULT_MAX_PAGES,
    fetcher: Fetcher | None = None,
    archive_dir: str | Path | None = None,
) -> ShopDiscovery:
    """Candidate listings of one shop for the catalogue `products` (dicts with sku, name, brand, gtin, mpn).

    `known` holds normalised URLs (`normalise_url`) never to fetch. Without `fetcher`, one with the shop's
    politeness is made (raw pages archived under `archive_dir`, default the project's archive) and closed.
    """
    if max_pages < 1:
        raise DiscoverError(f"--max-pages must be at least 1 (got {max_pages})")
    own = fetcher is None
    fetcher = fetcher if fetcher is not None else shop_fetcher(shop, shop.render_js, archive_dir)
    out = ShopDiscovery(shop.name, pd.DataFrame(columns=CANDIDATE_COLUMNS))
    try:
        with fetcher.scoped(shop_policy(shop)):
            return _discover_shop(shop, products, known, max_pages, fetcher, out)
    finally:
        if own:
            fetcher.close()


def _discover_shop(
    shop: Shop,
    products: Iterable[Mapping[str, Any]],
    known: set[str] | frozenset[str],
    max_pages: int,
    fetcher: Fetcher,
    out: ShopDiscovery,
) -> ShopDiscovery:
    """`discover_shop` within the shop's outbound scope."""
    base = _base(shop.base_url)
    if fetcher.robots(base) is None:
        res = fetcher.get(base)
        out.error = f"{shop.name}: cannot reach {base}: {res.error}"
        return out
    budget = _Budget(max_pages)
    urls = candidate_urls(shop, fetcher, products, budget, out.notes)
    fresh = [(u, v) for u, v in urls if normalise_url(u) not in known]
    out.found, out.known = len(urls), len(urls) - len(fresh)
    _fetch_candidates(shop, fetcher, fresh, budget, out)
    out.requests = budget.used
    if out.over_budget:
        out.notes.append(f"{out.over_budget} candidate page(s) not fetched: --max-pages {max_pages} reached")
    return out


def _cell(value: Any) -> str:
    """A report cell: '-' for missing, scores with 3 decimals."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def report_lines(report: pd.DataFrame, summary: Mapping[str, Any], fmt: str = "table") -> list[str]:
    """The printed result: one line per candidate (retailer, url, sku, score, method, outcome) and a summary
    line (`table`), or one JSON document {"candidates": [...], "summary": {...}} (`json`)."""
    frame = report.reindex(columns=REPORT_COLUMNS).astype(object)
    rows = frame.where(frame.notna(), None).to_dict("records")  # JSON null, never NaN
    if fmt == "json":
        return [json.dumps({"candidates": rows, "summary": dict(summary)}, default=str)]
    lines = []
    for r in rows:
        cells = [_cell(r[c]) for c in REPORT_COLUMNS[:-1]]
        note = f"  ({r['message']})" if r.get("message") else ""
        lines.append("  ".join(cells) + note)
    counts = ", ".join(f"{k} {summary[k]}" for k in OUTCOMES if summary.get(k))
    what = "would be " if summary.get("dry_run") else ""
    lines.append(
        f"discover: {summary.get('shops', 0)} shop(s), {summary.get('requests', 0)} page(s) requested, "
        f"{summary.get('candidates', 0)} candidate(s): {counts or 'nothing new'}; {summary.get('known', 0)} known "
        f"URL(s) skipped; {what}{summary.get('watched', 0)} watch(es) added, {what}{summary.get('queued', 0)} "
        "queued for review" + (" (dry run: nothing written)" if summary.get("dry_run") else "")
    )
    return lines
