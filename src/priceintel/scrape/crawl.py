"""Crawl shops: discover product URLs (sitemaps, category pages), fetch, extract into frames."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from itertools import zip_longest
from urllib.parse import urldefrag, urljoin

import lxml.html
import pandas as pd
import requests
from lxml import etree

from priceintel import PriceIntelError
from priceintel.items import Offer
from priceintel.scrape.adapters import Adapter, get_adapter
from priceintel.scrape.extract import extract
from priceintel.scrape.fetch import Fetcher, FetchResult
from priceintel.scrape.limits import DEFAULT_MAX_PAGE_BYTES, BodyTooLarge, gunzip_bounded

__all__ = [
    "CrawlError",
    "ERROR_COLUMNS",
    "OFFER_FRAME_COLUMNS",
    "crawl_site",
    "discover_products",
    "scrape_demo",
    "scrape_shops",
    "scrape_site",
    "set_demo_date",
    "summarise",
]

#: offers frame: every Offer field (methods as JSON text) + fetch provenance
OFFER_FRAME_COLUMNS = Offer.field_names() + ["fetched_at", "status", "page_sha256"]
ERROR_COLUMNS = ["url", "retailer", "kind", "message"]

#: fetch errors of discovery pages (robots Sitemap lines, sitemaps, listing pages) recorded in the errors frame:
#: the hostile ones; an ordinary failure there only means fewer products are found
DISCOVERY_ERROR_KINDS = frozenset({"blocked_address", "too_large", "too_slow"})

_PAGE_MESSAGES = {
    "no_price": "in-stock product page shows no price",
    "blocked": "blocked by a robot check / captcha",
    "truncated": "page truncated (no closing </html>): its price is not trusted",
    "not_found": "not a product page (product not found)",
}


class CrawlError(PriceIntelError):
    """A shop could not be crawled (unreachable, no products found, demo clock refused)."""

    def __init__(self, message: str, kind: str = "crawl_error") -> None:
        super().__init__(message)
        self.kind = kind


def _base(base_url: str) -> str:
    """Base URL with exactly one trailing slash."""
    return base_url.rstrip("/") + "/"


def _dedupe(urls: Iterable[str]) -> list[str]:
    """URLs without fragments, first occurrence kept, order preserved."""
    seen: set[str] = set()
    out = []
    for u in urls:
        u = urldefrag(u)[0]
        if u not in seen:
            seen.add(u)
            out.append(u)
    return out


def _sitemap_locs(body: bytes, url: str, limit: int = DEFAULT_MAX_PAGE_BYTES) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index (gzip accepted, unpacked to at most `limit`
    bytes: BodyTooLarge beyond; a broken gzip file lists nothing)."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gunzip_bounded(body, limit, f"gzipped sitemap {url}")
        except ValueError:
            return [], []
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(recover=True, resolve_entities=False))
    except etree.XMLSyntaxError:
        return [], []
    if root is None:
        return [], []
    locs = [(el.text or "").strip() for el in root.iter("{*}loc")]
    locs = [urljoin(url, loc) for loc in locs if loc]
    if etree.QName(root).localname == "sitemapindex":
        return [], locs
    return locs, []


def _problem(problems: list[dict] | None, url: str, kind: str, message: str | None) -> None:
    """Note a discovery page that failed in a hostile way (DISCOVERY_ERROR_KINDS) in `problems`."""
    if problems is not None and kind in DISCOVERY_ERROR_KINDS:
        problems.append({"url": url, "kind": kind, "message": message or kind})


def _walk(
    fetcher: Fetcher, queue: list[str], seen: set[str], limit: int, kind: str, problems: list[dict] | None = None
) -> Iterator[tuple[str, FetchResult]]:
    """Breadth-first: fetch each URL of `queue` once (until `limit` URLs are seen) and yield (url, result)
    of those that load; the caller may extend `queue` (and reads `seen`) between steps. Hostile failures
    go to `problems`."""
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        res = fetcher.get(url, meta={"kind": kind})
        if res.ok:
            yield url, res
        elif res.error_kind is not None:
            _problem(problems, url, res.error_kind, res.error)


def _sitemap_urls(
    base: str, fetcher: Fetcher, adapter: Adapter, max_sitemaps: int = 200, problems: list[dict] | None = None
) -> list[str]:
    """Product URLs listed by the sitemaps named in robots.txt (or /sitemap.xml)."""
    rp = fetcher.robots(base)
    queue = list(rp.site_maps() or []) if rp is not None else []
    if not queue:
        queue = [urljoin(base, "sitemap.xml")]
    found: list[str] = []
    for sm, res in _walk(fetcher, queue, set(), max_sitemaps, "sitemap", problems):
        try:
            pages, children = _sitemap_locs(res.body, sm, fetcher.max_page_bytes)
        except BodyTooLarge as exc:
            _problem(problems, sm, "too_large", str(exc))
            continue
        found.extend(pages)
        queue.extend(children)
    if adapter.url_pattern or adapter.product_link_pattern:
        found = [u for u in found if adapter.is_product_url(u)]
    return _dedupe(found)


def _links(res: FetchResult) -> tuple[list[str], list[str]]:
    """(all link URLs, rel=next URLs) of an HTML page, absolute."""
    try:
        tree = lxml.html.document_fromstring(res.body)
    except (etree.ParserError, ValueError):
        return [], []
    hrefs = [urljoin(res.url, h) for h in tree.xpath("//a/@href")]
    nxt = [
        urljoin(res.url, h)
        for h in tree.xpath(
            "//a[contains(concat(' ', normalize-space(@rel), ' '), ' next ')]/@href"
            " | //link[contains(concat(' ', normalize-space(@rel), ' '), ' next ')]/@href"
        )
    ]
    return hrefs, nxt


def _category_urls(
    base: str, fetcher: Fetcher, adapter: Adapter, max_pages: int, problems: list[dict] | None = None
) -> list[str]:
    """Product URLs found by walking category pages from the home page, following rel=next."""
    home = fetcher.get(base, meta={"kind": "category"})
    if not home.ok:
        if home.error_kind is not None:
            _problem(problems, base, home.error_kind, home.error)
        return []
    hrefs, nxt = _links(home)
    products = [h for h in hrefs if adapter.is_product_url(h)]
    queue = _dedupe([h for h in hrefs if adapter.is_category_url(h) and h.startswith(base)] + nxt)
    seen = {base}
    for _page, res in _walk(fetcher, queue, seen, max_pages, "category", problems):
        hrefs, nxt = _links(res)
        products.extend(h for h in hrefs if adapter.is_product_url(h))
        queue.extend(
            u for u in nxt + [h for h in hrefs if adapter.is_category_url(h)] if u.startswith(base) and u not in seen
        )
    return _dedupe(products)


def discover_products(
    base_url: str,
    fetcher: Fetcher,
    adapter: Adapter,
    max_pages: int = 2000,
    problems: list[dict] | None = None,
    hosts: Iterable[str] = (),
) -> list[str]:
    """Product page URLs of a shop: robots.txt Sitemap lines / sitemap.xml, else category pages.

    Every request stays within the shop (`Fetcher.scoped` to its base URL and declared `hosts`): Sitemap lines,
    sitemap entries and links elsewhere are refused (blocked_address). Discovery pages that failed in a hostile
    way (DISCOVERY_ERROR_KINDS) are appended to `problems` as {url, kind, message}.
    """
    base = _base(base_url)
    with fetcher.scoped([base], hosts):
        return _discover(base, fetcher, adapter, max_pages, problems)


def _discover(base: str, fetcher: Fetcher, adapter: Adapter, max_pages: int, problems: list[dict] | None) -> list[str]:
    """`discover_products` within the shop's scope."""
    if fetcher.robots(base) is None:
        res = fetcher.get(base)
        kind = res.error_kind if res.error_kind in DISCOVERY_ERROR_KINDS else "unreachable"
        raise CrawlError(f"cannot discover products of {adapter.name} at {base}: {res.error}", kind or "unreachable")
    urls = _sitemap_urls(base, fetcher, adapter, problems=problems)
    if not urls:
        urls = _category_urls(base, fetcher, adapter, max_pages, problems)
    if not urls:
        raise CrawlError(
            f"no {adapter.name} product URLs found at {base} (neither sitemap nor category pages "
            f"list links matching {adapter.url_pattern!r})",
            "no_products",
        )
    return urls


def set_demo_date(base_url: str, day: date, fetcher: Fetcher | None = None, timeout: float = 10.0) -> date:
    """Set a demo storefront's simulated day (POST /__demo__/clock?date=…); returns the day it reports."""
    day = day.date() if isinstance(day, datetime) else day
    if not isinstance(day, date):
        day = pd.Timestamp(day).date()
    url = urljoin(_base(base_url), f"__demo__/clock?date={day.isoformat()}")
    session = fetcher.session if fetcher is not None else requests
    try:
        resp = session.post(url, timeout=timeout)
    except requests.RequestException as exc:
        raise CrawlError(f"cannot set the demo clock at {url}: {exc.__class__.__name__}", "unreachable") from None
    if resp.status_code != 200:
        raise CrawlError(f"demo clock at {url} answered HTTP {resp.status_code}", "clock")
    try:
        reported = date.fromisoformat(str(resp.json()["date"])[:10])
    except (ValueError, KeyError, TypeError):
        raise CrawlError(f"demo clock at {url} returned no date: {resp.text[:200]!r}", "clock") from None
    if reported != day:
        raise CrawlError(f"demo clock at {url} reports {reported}, expected {day}", "clock")
    return reported


def _offer_row(offer: Offer, res: FetchResult) -> dict:
    """One offers-frame row: Offer fields (methods as JSON) + fetch provenance."""
    row = offer.to_dict()
    row["methods"] = json.dumps(offer.methods, sort_keys=True)
    row["fetched_at"] = res.fetched_at
    row["status"] = res.status
    row["page_sha256"] = res.sha256
    return row


def _process(retailer: str, res: FetchResult) -> tuple[dict | None, dict | None]:
    """(offer row, None) for a product page, else (None, error row)."""
    if res.error_kind is not None and res.status is None:
        return None, {"url": res.url, "retailer": retailer, "kind": res.error_kind, "message": res.error}
    if res.status in (404, 410):
        return None, {
            "url": res.url,
            "retailer": retailer,
            "kind": "not_found",
            "message": f"HTTP {res.status} for {res.url}",
        }
    if res.error_kind is not None:
        return None, {"url": res.url, "retailer": retailer, "kind": res.error_kind, "message": res.error}
    offer = extract(res.body, res.url, retailer, status=res.status)
    if offer.page_kind != "product":
        msg = f"{_PAGE_MESSAGES.get(offer.page_kind, offer.page_kind)}: {res.url}"
        return None, {"url": res.url, "retailer": retailer, "kind": offer.page_kind, "message": msg}
    return _offer_row(offer, res), None


#: page kinds fetched a second time before they are recorded as failures
REFETCH_KINDS = frozenset({"blocked", "truncated"})


def _scrape_jobs(
    jobs: list[tuple[str, str]], fetcher: Fetcher, progress: bool, meta: dict | None = None, desc: str = "scrape"
) -> tuple[list[dict], list[dict]]:
    """Fetch and extract (retailer, url) jobs; (offer rows, error rows)."""
    metas = [dict(meta or {}, retailer=r, kind="product") for r, _ in jobs]
    results = fetcher.get_many([u for _, u in jobs], meta=metas, progress=progress, desc=desc)
    outcome = [_process(retailer, res) for (retailer, _), res in zip(jobs, results)]
    # a robot check or a page cut short is often transient: fetch those once more, at the end
    again = [i for i, (_, err) in enumerate(outcome) if err is not None and err["kind"] in REFETCH_KINDS]
    if again:
        retry = fetcher.get_many(
            [jobs[i][1] for i in again],
            meta=[dict(metas[i], refetch=True) for i in again],
            progress=False,
            desc=f"{desc} (again)",
        )
        for i, res in zip(again, retry):
            outcome[i] = _process(jobs[i][0], res)
    offers = [row for row, _ in outcome if row is not None]
    errors = [err for _, err in outcome if err is not None]
    return offers, errors


def _offers_frame(rows: list[dict]) -> pd.DataFrame:
    """Offers frame with OFFER_FRAME_COLUMNS (fetched_at tz-aware UTC)."""
    df = pd.DataFrame(rows, columns=OFFER_FRAME_COLUMNS)
    df["fetched_at"] = pd.to_datetime(df["fetched_at"], utc=True)
    df["status"] = df["status"].astype("Int64")
    return df


def _errors_frame(rows: list[dict], with_ds: bool = False) -> pd.DataFrame:
    """Error frame with url, retailer, kind, message (+ ds)."""
    cols = ERROR_COLUMNS + (["ds"] if with_ds else [])
    df = pd.DataFrame(rows, columns=cols)
    if with_ds:
        df["ds"] = pd.to_datetime(df["ds"]).astype("datetime64[ns]")
    return df


def _select_urls(urls: list[str], adapter: Adapter, limit: int | None, item_ids: Iterable[str] | None) -> list[str]:
    """Restrict URLs to the wanted item ids, then to the first `limit`."""
    if item_ids is not None:
        wanted = {str(i) for i in item_ids}
        urls = [u for u in urls if adapter.item_id_from_url(u) in wanted]
    return urls[:limit] if limit is not None else urls


def scrape_site(
    base_url: str,
    retailer: str,
    fetcher: Fetcher,
    limit: int | None = None,
    item_ids: Iterable[str] | None = None,
    urls: list[str] | None = None,
    progress: bool = False,
    hosts: Iterable[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fetch + extract every product page of one shop -> (offers_df, errors_df).

    Every request stays on the shop (its base URL's origin and host, plus declared `hosts`; see
    `discover_products`): a product URL elsewhere is the error blocked_address, as are hostile discovery pages.
    """
    adapter = get_adapter(retailer)
    problems: list[dict] = []
    with fetcher.scoped([_base(base_url)], hosts):
        if urls is None:
            try:
                urls = discover_products(base_url, fetcher, adapter, problems=problems, hosts=hosts)
            except CrawlError as exc:
                rows = [{"url": base_url, "retailer": retailer, "kind": exc.kind, "message": str(exc)}]
                return _offers_frame([]), _errors_frame(rows + [dict(p, retailer=retailer) for p in problems])
        urls = _select_urls(list(urls), adapter, limit, item_ids)
        offers, errors = _scrape_jobs([(retailer, u) for u in urls], fetcher, progress, desc=retailer)
    return _offers_frame(offers), _errors_frame([dict(p, retailer=retailer) for p in problems] + errors)


#: name used in docs/architecture.md
crawl_site = scrape_site


def _retailer_names(urls: Mapping[str, str], retailers: Iterable[str] | None, what: str) -> list[str]:
    """The retailers to scrape (all of `urls` when None); a config CrawlError naming any without a URL."""
    names = list(retailers) if retailers is not None else list(urls)
    unknown = [r for r in names if r not in urls]
    if unknown:
        raise CrawlError(f"no {what} URL for retailer(s) {unknown}; have {sorted(urls)}", "config")
    return names


def scrape_demo(
    urls: Mapping[str, str],
    days: Iterable[date],
    fetcher: Fetcher,
    retailers: Iterable[str] | None = None,
    product_limit: int | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scrape demo shops once per simulated day -> (offers_df with `ds`, errors_df with `ds`)."""
    names = _retailer_names(urls, retailers, "storefront")
    days = [pd.Timestamp(d).date() for d in days]
    with fetcher.scoped([_base(urls[r]) for r in names]):  # each shop's discovery is scoped to that shop alone
        return _scrape_demo_days(urls, names, days, fetcher, product_limit, progress)


def _scrape_demo_days(
    urls: Mapping[str, str],
    names: list[str],
    days: list[date],
    fetcher: Fetcher,
    product_limit: int | None,
    progress: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`scrape_demo` within the shops' scope."""
    errors: list[dict] = []
    product_urls: dict[str, list[str]] = {}
    for r in names:
        adapter = get_adapter(r)
        problems: list[dict] = []
        try:
            found = discover_products(urls[r], fetcher, adapter, problems=problems)
            product_urls[r] = _select_urls(found, adapter, product_limit, None)
        except CrawlError as exc:
            errors.extend({"url": urls[r], "retailer": r, "kind": exc.kind, "message": str(exc), "ds": d} for d in days)
        errors.extend(dict(p, retailer=r, ds=days[0]) for p in problems if days)
    frames = []
    for d in days:
        live = []
        for r in product_urls:
            try:
                set_demo_date(urls[r], d, fetcher)
                live.append(r)
            except CrawlError as exc:
                errors.append({"url": urls[r], "retailer": r, "kind": exc.kind, "message": str(exc), "ds": d})
        # interleave the shops so that every host is busy at once (each keeps its own rate limit)
        queues = [[(r, u) for u in product_urls[r]] for r in live]
        jobs = [job for group in zip_longest(*queues) for job in group if job is not None]
        offers, errs = _scrape_jobs(jobs, fetcher, progress, meta={"ds": d.isoformat()}, desc=str(d))
        df = _offers_frame(offers)
        df["ds"] = pd.Timestamp(d)
        frames.append(df)
        errors.extend(dict(e, ds=d) for e in errs)
    offers_df = pd.concat(frames, ignore_index=True) if frames else _offers_frame([]).assign(ds=pd.NaT)
    offers_df["ds"] = pd.to_datetime(offers_df["ds"]).astype("datetime64[ns]")
    return offers_df, _errors_frame(errors, with_ds=True)


def scrape_shops(
    urls: Mapping[str, str],
    fetcher: Fetcher,
    retailers: Iterable[str] | None = None,
    item_ids: Iterable[str] | None = None,
    limit: int | None = None,
    progress: bool = False,
    hosts: Mapping[str, Iterable[str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scrape several shops ({retailer: base_url}) once, optionally only some item ids / the first `limit`;
    each shop's requests stay on that shop (plus its declared `hosts[retailer]`, see `scrape_site`)."""
    names = _retailer_names(urls, retailers, "shop")
    wanted = None if item_ids is None else [str(i) for i in item_ids]
    offers, errors = [], []
    for r in names:
        extra = (hosts or {}).get(r, ())
        o, e = scrape_site(urls[r], r, fetcher, limit=limit, item_ids=wanted, progress=progress, hosts=extra)
        offers.append(o)
        errors.append(e)
    offers_df = pd.concat(offers, ignore_index=True) if offers else _offers_frame([])
    errors_df = pd.concat(errors, ignore_index=True) if errors else _errors_frame([])
    return offers_df, errors_df


def summarise(offers: pd.DataFrame, errors: pd.DataFrame) -> dict:
    """Closing summary of a scrape: pages, products, prices, errors by kind."""
    kinds = errors["kind"].value_counts().sort_index() if len(errors) else pd.Series(dtype=int)
    return {
        "pages": int(len(offers) + len(errors)),
        "products": int(offers[["retailer", "item_id"]].drop_duplicates().shape[0]) if len(offers) else 0,
        "prices": int(offers["price"].notna().sum()) if len(offers) else 0,
        "errors": int(len(errors)),
        "errors_by_kind": {str(k): int(v) for k, v in kinds.items()},
        "by_retailer": {str(k): int(v) for k, v in offers["retailer"].value_counts().sort_index().items()}
        if len(offers)
        else {},
    }
