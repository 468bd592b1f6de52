"""The history of each listing's title, url, seller and availability (migration 0018, docs/history.md).

`dim_listing_history` holds one row (a version) per listing and period of days in which those attributes stayed
the same: `valid_from` (first day observed with them), `valid_to` (first day observed with others, exclusive;
None for the current version) and `last_seen`. `db.listings.upsert_listings` records every row it loads as an
observation of its listing on a day.

Reading: `listing_history` (every version of one listing), `listing_on` (the version in effect on a day, the
query of `listing_as_of(day)`), and the command `priceintel listing-history RETAILER ITEM_ID [--on DATE] [--json]`
(`add_parsers`). Reads run as the caller's tenant: another tenant's listing is no listing (row-level security).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from priceintel import PriceIntelError
from priceintel.db import tenancy
from priceintel.items import jsonable

__all__ = ["HistoryError", "add_parsers", "listing_history", "listing_on", "parse_day", "render"]


class HistoryError(PriceIntelError):
    """An unknown listing, a day it was not observed by, or a malformed day."""


# --- reading --------------------------------------------------------------------------------------------------

_VERSIONS = """
SELECT h.listing_id, r.retailer, l.item_id, h.valid_from, h.valid_to, h.last_seen, h.title, h.url, h.seller,
       h.in_stock, h.recorded_at
FROM dim_listing l
JOIN dim_retailer r ON r.retailer_id = l.retailer_id
LEFT JOIN dim_listing_history h ON h.listing_id = l.listing_id
WHERE r.retailer = :retailer AND l.item_id = :item
ORDER BY h.valid_from
"""


def parse_day(text: Any) -> date:
    """A day from `YYYY-MM-DD` text (or a date); HistoryError naming it otherwise."""
    if isinstance(text, date):
        return text
    raw = str(text).strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise HistoryError(f"{raw!r} is not a day: use YYYY-MM-DD, e.g. 2026-07-03") from None


def _read(bind: Engine | Connection, sql: str, params: dict) -> list[dict]:
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
    return [dict(r) for r in bind.execute(sa.text(sql), params).mappings()]


def _where() -> str:
    name = tenancy.current()
    return f"tenant {name!r}" if name else "the default tenant"


def listing_history(bind: Engine | Connection, retailer: str, item_id: str) -> list[dict]:
    """Every version of a listing, oldest first (dicts: listing_id, retailer, item_id, valid_from, valid_to,
    last_seen, title, url, seller, in_stock, recorded_at); HistoryError when the tenant has no such listing."""
    retailer, item_id = str(retailer).strip().lower(), str(item_id).strip()
    rows = _read(bind, _VERSIONS, {"retailer": retailer, "item": item_id})
    if not rows:
        raise HistoryError(f"no listing {retailer} {item_id} in {_where()}")
    return [r for r in rows if r["valid_from"] is not None]


def listing_on(bind: Engine | Connection, retailer: str, item_id: str, day: Any) -> dict:
    """The version of a listing in effect on `day` (as `listing_as_of(day)` reads it); HistoryError when the tenant
    has no such listing, the day is malformed or precedes the listing's first observation."""
    on = parse_day(day)
    versions = listing_history(bind, retailer, item_id)
    for v in versions:
        if v["valid_from"] <= on and (v["valid_to"] is None or on < v["valid_to"]):
            return v
    first = f"its history starts {versions[0]['valid_from']}" if versions else "it has no history yet"
    raise HistoryError(f"listing {retailer.strip().lower()} {item_id.strip()} was not observed by {on}: {first}")


# --- the command ----------------------------------------------------------------------------------------------


def _stock(v: bool | None) -> str:
    return {True: "in stock", False: "out of stock", None: "stock unknown"}[v]


def _version_line(v: dict) -> str:
    until = f"to {v['valid_to']}" if v["valid_to"] is not None else "current"
    parts = [
        f"title {v['title']!r}" if v["title"] is not None else "title unknown",
        _stock(v["in_stock"]),
        f"seller {v['seller']!r}" if v["seller"] is not None else "seller unknown",
    ]
    return f"  {v['valid_from']} {until} (last seen {v['last_seen']}): {', '.join(parts)}\n    url {v['url'] or '-'}"


def render(versions: list[dict], on: date | None = None) -> str:
    """A listing's versions (or the one in effect `on` a day) as lines for a person."""
    head = versions[0] if versions else {}
    name = f"{head.get('retailer')} {head.get('item_id')} (listing {head.get('listing_id')})"
    if on is not None:
        return "\n".join([f"{name} on {on}:", _version_line(versions[0])])
    return "\n".join([f"{name}: {len(versions)} version(s)", *(_version_line(v) for v in versions)])


def cmd_listing_history(args: argparse.Namespace) -> int:
    """Print a listing's history, or how it looked on a day."""
    from priceintel.db import engine as db_engine
    from priceintel.db import migrate

    on = parse_day(args.on) if args.on is not None else None  # a bad day fails before the database is touched
    migrate.upgrade()
    engine = db_engine.get_engine()
    if on is None:
        versions = listing_history(engine, args.retailer, args.item_id)
        if not versions:
            raise HistoryError(f"listing {args.retailer} {args.item_id} has no history yet (it was never observed)")
    else:
        versions = [listing_on(engine, args.retailer, args.item_id, on)]
    if args.json:
        print(json.dumps(jsonable(versions if on is None else versions[0]), indent=1, default=str), flush=True)
    else:
        print(render(versions, on), flush=True)
    return 0


def add_parsers(sub: Any) -> None:
    """Add `listing-history RETAILER ITEM_ID [--on DATE] [--json]` to a subparsers object."""
    p = sub.add_parser(
        "listing-history", help="how a competitor listing's title, url, seller and availability changed over time"
    )
    p.add_argument("retailer", metavar="RETAILER", help="the retailer key, e.g. amazon")
    p.add_argument("item_id", metavar="ITEM_ID", help="the retailer's own id of the listing (ASIN, TCIN, …)")
    p.add_argument("--on", metavar="DATE", default=None, help="only the listing as it was on this day (YYYY-MM-DD)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_listing_history)
