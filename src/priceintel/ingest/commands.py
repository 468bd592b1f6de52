"""Command-line handlers of the imports: `catalog import`, `sales import`, `watch import|add|list|remove`.

`add_parsers(sub)` adds the subcommands to the `priceintel` parser; each handler takes the parsed arguments,
prints one-line messages and returns the exit code: 0 when the file was imported (rejected rows printed and
written to `<name>.rejects.csv`), 1 when no row could be imported; a refused file (--strict) or an unreadable
one raises a PriceIntelError, which the `priceintel` command prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.engine import Engine

from priceintel.db import engine as db_engine
from priceintel.db import migrate, queries
from priceintel.ingest.catalog import import_catalog
from priceintel.ingest.observations import import_observations
from priceintel.ingest.result import ImportResult
from priceintel.ingest.sales import import_sales
from priceintel.ingest.watch import add_watch, import_watches, list_watches, remove_watch
from priceintel.scrape.shops import default_shops_path, load_shops

__all__ = ["add_parsers"]


def _print(msg: str = "") -> None:
    print(msg, flush=True)


def _engine() -> Engine:
    """The system of record (embedded server started when DATABASE_URL is unset), migrated to head."""
    migrate.upgrade()
    return db_engine.get_engine()


def _known_retailers() -> set[str] | None:
    """Retailers described in shops.yaml (None when there is no shops file: no warning then)."""
    if not default_shops_path().is_file():
        return None
    return set(load_shops())


def _report(result: ImportResult) -> int:
    """Print an import's messages; 1 when nothing could be imported, else 0."""
    for line in result.lines():
        _print(line)
    return 1 if result.status == "failed" else 0


def cmd_catalog_import(args: argparse.Namespace) -> int:
    """Import a catalogue file into dim_product."""
    result = import_catalog(_engine(), args.path, strict=args.strict, encoding=args.encoding, currency=args.currency)
    return _report(result)


def cmd_sales_import(args: argparse.Namespace) -> int:
    """Import a daily sales file into fact_sales."""
    return _report(import_sales(_engine(), args.path, strict=args.strict, encoding=args.encoding))


def cmd_prices_import(args: argparse.Namespace) -> int:
    """Import competitor prices observed elsewhere (retailer, item_id, date, price, …)."""
    return _report(import_observations(_engine(), args.path, strict=args.strict, encoding=args.encoding))


def cmd_watch_import(args: argparse.Namespace) -> int:
    """Import a watch-list file."""
    result = import_watches(
        _engine(), args.path, strict=args.strict, encoding=args.encoding, known_retailers=_known_retailers()
    )
    return _report(result)


def cmd_watch_add(args: argparse.Namespace) -> int:
    """Watch one page."""
    res = add_watch(_engine(), args.url, retailer=args.retailer, sku=args.sku, known_retailers=_known_retailers())
    sku = f", sku {res['sku']}" if res["sku"] else ""
    _print(f"watch {res['watch_id']} {res['action']}: {res['url']} (retailer {res['retailer']}{sku})")
    for warning in res["warnings"]:
        _print(f"warning: {warning}")
    return 0


def _records(df: Any) -> list[dict]:
    """Rows as JSON-safe dicts (timestamps as ISO text)."""
    return json.loads(df.to_json(orient="records", date_format="iso"))


def _emit(df: Any, fmt: str, columns: list[str], empty: str) -> None:
    """Print a frame as JSON, CSV (every column) or a table of `columns` (`empty` when there are no rows)."""
    if fmt == "json":
        _print(json.dumps(_records(df), indent=1))
    elif fmt == "csv":
        _print(df.to_csv(index=False).rstrip("\n"))
    elif df.empty:
        _print(empty)
    else:
        _print(df[columns].astype(object).where(df[columns].notna(), "").to_string(index=False))


def cmd_watch_list(args: argparse.Namespace) -> int:
    """Print the watch list as a table, CSV or JSON."""
    df = list_watches(_engine(), include_inactive=args.all, retailer=args.retailer)
    empty = "no watches" + ("" if args.all else " (active ones; --all shows removed ones too)")
    _emit(df, args.format, ["watch_id", "retailer", "url", "sku", "active", "status"], empty)
    return 0


def cmd_prices_latest(args: argparse.Namespace) -> int:
    """Print the latest observation of every watched page (for people and scripts)."""
    df = queries.latest_watched(_engine())
    cols = ["retailer", "sku", "price", "currency", "in_stock", "observed_at", "watch_status", "url"]
    _emit(df, args.format, cols, "no watched pages: priceintel watch import FILE or watch add URL")
    return 0


def cmd_watch_remove(args: argparse.Namespace) -> int:
    """Stop watching a page (or delete it with --purge)."""
    n = remove_watch(_engine(), args.target, purge=args.purge)
    if args.purge:
        _print(f"watch {args.target} deleted with its fetch history")
    else:
        _print(f"watch {args.target} removed" if n else f"watch {args.target} was already removed")
    return 0


def _add_import(sub: Any, what: str, handler: Any) -> argparse.ArgumentParser:
    """`import PATH [--strict] [--encoding E]`."""
    imp = sub.add_parser("import", help=f"import {what} from a CSV, TSV, Excel, Parquet or feed file")
    imp.add_argument("path", help="the file to import")
    imp.add_argument("--strict", action="store_true", help="refuse the whole file if any row is rejected")
    imp.add_argument("--encoding", default=None, help="text encoding of a CSV that is not UTF-8, e.g. cp1252")
    imp.set_defaults(func=handler)
    return imp


def _add_watch(sub: Any) -> None:
    """`watch import|add|list|remove`."""
    w = sub.add_parser("watch", help="the competitor pages we watch: import, add, list, remove")
    wsub = w.add_subparsers(dest="watch_action", required=True)
    _add_import(wsub, "watched pages (url, retailer, sku)", cmd_watch_import)
    add = wsub.add_parser("add", help="watch one competitor page")
    add.add_argument("url")
    add.add_argument("--retailer", default=None, help="shop name (default: from the host, www.walmart.com -> walmart)")
    add.add_argument("--sku", default=None, help="our product the page is compared with")
    add.set_defaults(func=cmd_watch_add)
    ls = wsub.add_parser("list", help="list the watched pages")
    ls.add_argument("--format", choices=["table", "csv", "json"], default="table")
    ls.add_argument("--all", action="store_true", help="also removed (inactive) watches")
    ls.add_argument("--retailer", default=None, help="only this retailer")
    ls.set_defaults(func=cmd_watch_list)
    rm = wsub.add_parser("remove", help="stop watching a page (by url or id)")
    rm.add_argument("target", metavar="URL_OR_ID")
    rm.add_argument("--purge", action="store_true", help="delete it and its fetch history instead")
    rm.set_defaults(func=cmd_watch_remove)


def add_parsers(sub: Any) -> None:
    """Add `catalog import`, `sales import`, `watch import|add|list|remove` and `prices latest` to a subparsers
    object."""
    c = sub.add_parser("catalog", help="our catalogue: import it from a file or a Merchant Center feed")
    imp = _add_import(c.add_subparsers(dest="catalog_action", required=True), "our catalogue", None)
    imp.add_argument("--currency", default=None, help="currency of prices written without one, e.g. USD")
    imp.set_defaults(func=cmd_catalog_import)
    s = sub.add_parser("sales", help="our daily sales: import them from a file")
    _add_import(s.add_subparsers(dest="sales_action", required=True), "daily sales", cmd_sales_import)
    _add_watch(sub)
    p = sub.add_parser("prices", help="competitor prices: import ones observed elsewhere; the latest of every watch")
    psub = p.add_subparsers(dest="prices_action", required=True)
    _add_import(psub, "competitor prices observed elsewhere (retailer, item_id, date, price)", cmd_prices_import)
    latest = psub.add_parser("latest", help="retailer, url, sku, price, currency, stock, when, watch status")
    latest.add_argument("--format", choices=["table", "csv", "json"], default="table")
    latest.set_defaults(func=cmd_prices_latest)
