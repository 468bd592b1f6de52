"""Scrape subcommands for the CLI: `priceintel preview URL` fetches one product page and prints its record;
`priceintel reextract --out DIR` extracts every archived product page again (`scrape.reextract`).

`cli.py` calls `add_parsers(sub)` with its subparsers; each handler returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit

from priceintel import PriceIntelError

__all__ = ["add_parsers", "cmd_preview", "cmd_reextract"]


class PreviewError(PriceIntelError):
    """`preview` was given an unusable URL or shops file."""


def cmd_preview(args: argparse.Namespace) -> int:
    """Fetch one product page politely and print its PageRecord as indented JSON; exit 1 unless the outcome is ok.

    The shop comes from shops.yaml (`--shops`, else $PRICEINTEL_SHOPS / config/shops.yaml) by `--retailer`
    or the URL's host; an unlisted shop is fetched with the matching (else generic) adapter and default
    politeness, with a warning on stderr. A missing default shops file is not an error (every shop is then
    unlisted); a missing `--shops` file is.
    """
    from priceintel.scrape.page import fetch_page
    from priceintel.scrape.shops import default_shops_path, load_shops, shop_for

    url = str(args.url).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PreviewError(f"preview: {url!r} is not an absolute http(s) URL")
    shops = {} if args.shops is None and not default_shops_path().is_file() else load_shops(args.shops)
    shop, warning = shop_for(shops, url, retailer=args.retailer)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    record = fetch_page(url, shop, render=True if args.render else None, archive_dir=args.archive)
    print(record.to_json(indent=2), flush=True)
    return 0 if record.ok else 1


def cmd_reextract(args: argparse.Namespace) -> int:
    """Extract the archived product pages again into --out (offers.parquet, errors.csv, summary.json), locally
    or on the Dask cluster --cluster; print the summary."""
    import json
    from pathlib import Path

    from priceintel import compute
    from priceintel.scrape.archive import ArchiveError, RawArchive
    from priceintel.scrape.crawl import summarise
    from priceintel.scrape.reextract import reextract

    archive = RawArchive(args.archive, store="local") if args.archive else RawArchive()
    have = archive.partitions()
    if not have:
        raise ArchiveError(f"the raw archive {archive.location} holds no pages (run a scrape first, or give --archive)")
    unknown = sorted(set(args.partition or ()) - set(have))
    if unknown:
        raise ArchiveError(
            f"the raw archive {archive.location} has no partition {', '.join(unknown)} (it has {have[0]} … {have[-1]})"
        )
    offers, errors = reextract(archive, args.partition or None, args.retailer or None, cluster=args.cluster)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    offers.to_parquet(out / "offers.parquet", index=False)
    errors.to_csv(out / "errors.csv", index=False)
    summary = dict(summarise(offers, errors), archive=archive.location, ran_on=compute.describe(args.cluster))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2), flush=True)
    return 0


PREVIEW_DESCRIPTION = (
    "Fetch exactly URL (no crawling), extract the offer with the shop's adapter and print the record: fields, "
    "extraction method per field, outcome (ok | no_price | not_found | redirected | blocked | error). "
    "Exit 0 when ok, 1 otherwise."
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `preview URL [--render] [--retailer R] [--shops PATH] [--archive DIR]` to a CLI's subparsers."""
    p = sub.add_parser(
        "preview",
        help="fetch one product page (robots.txt, politeness, archive) and print what was extracted as JSON",
        description=PREVIEW_DESCRIPTION,
    )
    p.add_argument("url", help="product page URL")
    p.add_argument("--render", action="store_true", help="load the page in headless Chromium first")
    p.add_argument("--retailer", default=None, help="shop name in shops.yaml (default: found from the URL's host)")
    p.add_argument("--shops", default=None, help="shops file (default PRICEINTEL_SHOPS or config/shops.yaml)")
    p.add_argument("--archive", default=None, help="raw-page archive folder (default: the project's data/raw)")
    p.set_defaults(func=cmd_preview)
    p = sub.add_parser(
        "reextract", help="extract every archived product page again (no fetching), locally or on a Dask cluster"
    )
    p.add_argument("--out", required=True, help="folder for offers.parquet, errors.csv, summary.json")
    p.add_argument("--partition", action="append", metavar="DAY", help="only this archive day (repeatable)")
    p.add_argument("--retailer", action="append", help="only this retailer (repeatable)")
    p.add_argument("--archive", default=None, help="the raw archive folder (default data/raw, or the object store)")
    p.add_argument("--cluster", metavar="ADDRESS", help="a Dask scheduler (tcp://host:8786) to extract on")
    p.set_defaults(func=cmd_reextract)
