"""Collection stage: fetch politely, archive raw pages, extract offers, crawl shops."""

from priceintel.scrape.adapters import Adapter, UnknownRetailerError, adapter_for_url, get_adapter
from priceintel.scrape.archive import ArchiveError, RawArchive
from priceintel.scrape.crawl import (
    CrawlError,
    crawl_site,
    discover_products,
    scrape_demo,
    scrape_site,
    set_demo_date,
)
from priceintel.scrape.extract import ExtractError, extract
from priceintel.scrape.fetch import Fetcher, FetchResult
from priceintel.scrape.outbound import OutboundPolicy

__all__ = [
    "Adapter",
    "ArchiveError",
    "CrawlError",
    "ExtractError",
    "FetchResult",
    "Fetcher",
    "OutboundPolicy",
    "RawArchive",
    "UnknownRetailerError",
    "adapter_for_url",
    "crawl_site",
    "discover_products",
    "extract",
    "get_adapter",
    "scrape_demo",
    "scrape_site",
    "set_demo_date",
]
