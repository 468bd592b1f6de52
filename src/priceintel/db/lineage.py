"""Where a stored price came from (migration 0016): the queries behind `priceintel lineage PRICE_ID`.

A PRICE ID is fact_price's key written as text, `<listing_id>-<YYYYMMDD>` (`price_id`; `parse_price_id` also
takes `<listing_id>-<YYYY-MM-DD>`). `price_lineage` reads the price with its listing, retailer and matched
product, and what it came from: the scrape run (with its pipeline run and the run id of the logs), the raw
page's content hash and the extraction method, or the import run of a file. It reads as the caller's tenant:
another tenant's price is no price (row-level security, migration 0014).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from priceintel import PriceIntelError
from priceintel.db import tenancy
from priceintel.db.queries import PRICE_STAR

__all__ = ["EXAMPLE_ID", "LineageError", "parse_price_id", "price_id", "price_lineage"]

#: what a PRICE ID looks like, for messages
EXAMPLE_ID = "17-20260702"
_ID = re.compile(r"(\d{1,10})-(\d{4})-?(\d{2})-?(\d{2})")
_MAX_INT = 2**31 - 1  # listing_id is an integer column


class LineageError(PriceIntelError):
    """A malformed PRICE ID, or no such price in this tenant."""


def price_id(listing_id: int, date_key: int) -> str:
    """The PRICE ID of fact_price row (listing_id, date_key): `17-20260702`."""
    return f"{int(listing_id)}-{int(date_key)}"


def parse_price_id(text: str) -> tuple[int, int]:
    """(listing_id, date_key) of a PRICE ID (`17-20260702` or `17-2026-07-02`); LineageError naming it when it is
    malformed."""
    raw = str(text).strip()
    m = _ID.fullmatch(raw)
    problem = None if m else "expected <listing_id>-<YYYYMMDD>"
    if m:
        listing, year, month, day = (int(g) for g in m.groups())
        try:
            date(year, month, day)
        except ValueError:
            problem = f"{year:04d}-{month:02d}-{day:02d} is not a day"
        if not 0 < listing <= _MAX_INT:
            problem = f"listing id {listing} is out of range"
    if problem or not m:
        raise LineageError(f"price id {raw!r} is malformed: {problem} (e.g. {EXAMPLE_ID})")
    return listing, year * 10000 + month * 100 + day


_SQL = f"""
SELECT fp.listing_id, fp.date_key, d.date AS ds, r.retailer, l.item_id, l.url AS listing_url, l.title,
       p.sku, p.name AS product_name, pm.status AS match_status,
       fp.price, fp.list_price, fp.currency::text AS currency, fp.in_stock, fp.promo, fp.observed_at,
       fp.page_sha256, fp.extraction_method, fp.scrape_run_id, fp.import_run_id,
       sr.scrape_run_id IS NOT NULL AS scrape_run_found, sr.started_at AS scrape_started_at,
       sr.finished_at AS scrape_finished_at, sr.code_version AS scrape_code_version, sr.run_key,
       sr.pipeline_run_id, pr.task AS pipeline_task, pr.status AS pipeline_status,
       pr.started_at AS pipeline_started_at, pr.finished_at AS pipeline_finished_at,
       ir.import_run_id IS NOT NULL AS import_run_found, ir.kind AS import_kind, ir.path AS import_path,
       ir.sha256 AS import_sha256, ir.imported_by, ir.started_at AS import_started_at,
       ir.finished_at AS import_finished_at, ir.status AS import_status, ir.code_version AS import_code_version
FROM {PRICE_STAR}
LEFT JOIN scrape_run sr ON sr.scrape_run_id = fp.scrape_run_id
LEFT JOIN pipeline_run pr ON pr.run_id = sr.pipeline_run_id
LEFT JOIN import_run ir ON ir.import_run_id = fp.import_run_id
WHERE fp.listing_id = :listing AND fp.date_key = :day
"""


def price_lineage(bind: Engine | Connection, text_id: str) -> dict[str, Any]:
    """The stored price a PRICE ID names, with where it came from (one row of `_SQL` as a dict, `price_id`
    added). LineageError when the id is malformed or the tenant has no such price."""
    listing, day = parse_price_id(text_id)
    params = {"listing": listing, "day": day}
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            row = conn.execute(sa.text(_SQL), params).mappings().first()
    else:
        row = bind.execute(sa.text(_SQL), params).mappings().first()
    if row is None:
        shown = f"{day // 10000:04d}-{day // 100 % 100:02d}-{day % 100:02d}"
        name = tenancy.current()
        where = f"tenant {name!r}" if name else "the default tenant"
        raise LineageError(
            f"no such price {price_id(listing, day)}: listing {listing} has no price stored on {shown} in {where}"
        )
    return {"price_id": price_id(listing, day), **row}
