"""`priceintel discover`: propose competitor listings for our catalogue, match them, watch or queue them.

`priceintel.scrape.discover` finds and fetches the candidate pages of each shop (search template, sitemap,
category pages; politely, robots.txt obeyed, at most --max-pages requests a shop). This module reads what the
database knows, matches the candidates and stores the outcome:

1. identifiers first (`match.model.identifier_pairs`: the one GTIN normalisation of `priceintel.items`, else
   brand + MPN): ``auto``, score 1;
2. the rest through `match.rules.match_listings`, scored by `match.model.own_data_model` (the learned model of
   our own data; the hand-weighted rules with --rules or when there is nothing to learn from), one listing per
   product and shop. A product already watched or matched at that shop is taken: a candidate cannot take it.
   Human rejections (review app) are never proposed again.

``auto`` (identifiers, or a score at or above the auto threshold) adds a watch with the sku (`add_watch`);
``review`` (the review band) puts the listing in dim_listing and the pair in product_match with status
review: the queue the review app reads. Confirmed there, the next discover makes it a watch (outcome
``confirmed``); a live run fetches it even before. ``rejected`` stores nothing. URLs already watched, queued
or decided are skipped before any fetch, so a second discover adds nothing. No price is stored here.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel.db.load import load_matches, upsert_listings, upsert_retailers
from priceintel.ingest.watch import add_watch
from priceintel.match.labels import read_labels
from priceintel.match.model import identifier_pairs, own_data_model
from priceintel.match.rules import NO_MODEL_REVIEW_BAND, NO_MODEL_THRESHOLD, match_listings
from priceintel.scrape.discover import (
    CANDIDATE_COLUMNS,
    DEFAULT_MAX_PAGES,
    OUTCOMES,
    REPORT_COLUMNS,
    DiscoverError,
    discover_shop,
    normalise_url,
    report_lines,
    select_shops,
)
from priceintel.scrape.shops import Shop, _bare_host, default_shops_path, load_shops

__all__ = ["Discovery", "adopt_confirmed", "add_parsers", "discover_listings", "match_candidates"]

_KEY = ["retailer", "item_id"]
_LISTING = ["retailer", "item_id", "url", "title", "brand", "gtin", "mpn"]


@dataclass
class Discovery:
    """The outcome of one discover: one REPORT_COLUMNS row per candidate, a summary, shops that failed."""

    report: pd.DataFrame
    summary: dict
    errors: list[str] = field(default_factory=list)


def _catalogue(engine: Engine, skus: list[str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(whole catalogue, the products to search for); DiscoverError when empty or an sku is unknown."""
    sql = "SELECT sku, name, brand, category, gtin, mpn, size FROM dim_product ORDER BY sku"
    products = pd.read_sql(sql, engine, dtype={"gtin": str, "mpn": str})
    if products.empty:
        raise DiscoverError("the catalogue is empty: import it first (priceintel catalog import FILE)")
    if not skus:
        return products, products
    unknown = sorted(set(skus) - set(products["sku"]))
    if unknown:
        raise DiscoverError(f"unknown sku(s) {', '.join(unknown)}: not in the catalogue")
    return products, products[products["sku"].isin(skus)]


def _known_urls(engine: Engine) -> set[str]:
    """Normalised URLs never to fetch again: watched (active or removed), queued, matched or labelled."""
    sql = """SELECT url FROM watch
             UNION SELECT l.url FROM dim_listing l JOIN product_match pm USING (listing_id) WHERE l.url IS NOT NULL
             UNION SELECT l.url FROM dim_listing l JOIN match_label ml USING (listing_id) WHERE l.url IS NOT NULL"""
    with engine.connect() as conn:
        return {normalise_url(u) for u in conn.execute(sa.text(sql)).scalars()}


def _taken(engine: Engine, retailers: list[str]) -> pd.DataFrame:
    """Listings that already hold a product at these shops (_LISTING + sku): watches with an sku, matches
    that are not rejected. Matching keeps their products out of reach of new candidates."""
    sql = """SELECT w.retailer, 'watch:' || w.watch_id AS item_id, w.url, NULL AS title, NULL AS brand,
                    NULL AS gtin, NULL AS mpn, w.sku
             FROM watch w WHERE w.active AND w.sku IS NOT NULL AND w.retailer = ANY(:r)
             UNION ALL
             SELECT r.retailer, l.item_id, l.url, l.title, l.brand, l.gtin, l.mpn, p.sku
             FROM product_match pm JOIN dim_listing l USING (listing_id) JOIN dim_retailer r USING (retailer_id)
             JOIN dim_product p USING (product_id)
             WHERE pm.status <> 'rejected' AND r.retailer = ANY(:r)"""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {"r": retailers}).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=[*_LISTING, "sku"]).drop_duplicates(_KEY)


def _stack(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The rows of `frames` (their `columns`) in one frame; empty frames simply add nothing."""
    return pd.DataFrame([r for f in frames for r in f.reindex(columns=columns).to_dict("records")], columns=columns)


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    """(retailer, item_id) of a frame's rows."""
    return pd.MultiIndex.from_arrays([frame["retailer"].astype(str), frame["item_id"].astype(str)])


def _thresholds(model: Any) -> tuple[float, float]:
    """(auto threshold, lowest review score) of the learned model, else of the rules."""
    if model is None:
        return NO_MODEL_THRESHOLD, NO_MODEL_REVIEW_BAND[0]
    return float(model.threshold), float(min(model.review_low, model.threshold))


def match_candidates(
    candidates: pd.DataFrame,
    products: pd.DataFrame,
    taken: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    use_model: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Match candidate listings (CANDIDATE_COLUMNS) to the catalogue: (frame retailer, item_id, sku, score,
    method, outcome; info with the thresholds and the scorer). See the module docstring for the stages."""
    cols = ["retailer", "item_id", "sku", "score", "method", "outcome"]
    taken = taken if taken is not None else pd.DataFrame(columns=[*_LISTING, "sku"])
    labels = labels if labels is not None else pd.DataFrame(columns=["retailer", "item_id", "sku", "label"])
    no = labels[labels["label"].astype(int) == 0]
    no_keys = set(zip(no["retailer"].astype(str), no["item_id"].astype(str), no["sku"].astype(str)))
    ids = identifier_pairs(candidates, products)
    keep = np.array([k not in no_keys for k in zip(ids["retailer"], ids["item_id"], ids["sku"])], dtype=bool)
    ids = ids.loc[keep].drop_duplicates(_KEY)
    found = ids.assign(score=1.0, method=ids["via"], outcome="auto")[cols]
    rest = candidates[~_keys(candidates).isin(_keys(ids))]
    info: dict[str, Any] = {"scorer": "rules", "threshold": NO_MODEL_THRESHOLD, "review_low": NO_MODEL_REVIEW_BAND[0]}
    if rest.empty:
        return found.reset_index(drop=True), info
    held = _stack([taken, candidates.merge(ids[[*_KEY, "sku"]], on=_KEY)], [*_LISTING, "sku"])
    held = held[~_keys(held).isin(_keys(rest))].drop_duplicates(_KEY)
    listings = _stack([held, rest], _LISTING)
    pairs = _stack([held.assign(label=1), no], [*_KEY, "sku", "label"])
    model = own_data_model(listings, products, labels=labels) if use_model else None
    threshold, low = _thresholds(model)
    info = {"scorer": "learned" if model is not None else "rules", "threshold": threshold, "review_low": low}
    res = match_listings(
        listings, products, threshold=threshold, review_band=(0.0, threshold), labels=pairs, model=model
    )
    res = res[_keys(res).isin(_keys(rest)) & (res["status"] != "confirmed")]
    outcome = (
        pd.Series("rejected", index=res.index)
        .mask(res["score"] >= low, "review")
        .mask(res["score"] >= threshold, "auto")
    )
    scored = res.assign(outcome=outcome)[cols]
    return _stack([found, scored], cols), info


def _report(shops_found: list, matched: pd.DataFrame, candidates: pd.DataFrame, skus: list[str] | None) -> pd.DataFrame:
    """REPORT_COLUMNS rows: every candidate with its match (or rejected), then the pages that gave none."""
    rows = candidates[[*_KEY, "url"]].merge(matched, on=_KEY, how="left")
    rows["outcome"] = rows["outcome"].fillna("rejected")
    rows["message"] = None
    rows.loc[rows["sku"].isna(), "message"] = "no catalogue product comes close"
    rows.loc[(rows["outcome"] == "rejected") & rows["sku"].notna(), "message"] = "scores below the review band"
    if skus:
        outside = rows["outcome"].isin(["auto", "review"]) & ~rows["sku"].isin(skus)
        rows.loc[outside, "message"] = "its product is not one of --sku"
        rows.loc[outside, "outcome"] = "rejected"
    skipped = pd.DataFrame([r for found in shops_found for r in found.skipped], columns=REPORT_COLUMNS)
    return _stack([rows, skipped], REPORT_COLUMNS)


def _store(engine: Engine, report: pd.DataFrame, candidates: pd.DataFrame) -> tuple[int, int]:
    """Watch the auto candidates, queue the review ones; (watches added, pairs queued)."""
    added = 0
    for r in report[report["outcome"] == "auto"].itertuples(index=False):
        added += add_watch(engine, str(r.url), retailer=str(r.retailer), sku=str(r.sku))["action"] != "unchanged"
    review = report[report["outcome"] == "review"]
    if review.empty:
        return added, 0
    listings = candidates.merge(review[["retailer", "url", "sku", "score", "method"]], on=["retailer", "url"])
    with engine.begin() as conn:
        upsert_retailers(conn, listings[["retailer"]].drop_duplicates())
        upsert_listings(conn, listings[_LISTING])
        load_matches(conn, listings[[*_KEY, "sku", "method", "score"]].assign(status="review"))
    return added, len(listings)


def adopt_confirmed(engine: Engine, shops: list[Shop], dry_run: bool = False) -> pd.DataFrame:
    """Matches confirmed in the review app of these shops' pages that no watch names become watches with the
    sku (REPORT_COLUMNS rows, outcome confirmed)."""
    sql = """SELECT r.retailer, l.url, p.sku FROM product_match pm JOIN dim_listing l USING (listing_id)
             JOIN dim_retailer r USING (retailer_id) JOIN dim_product p USING (product_id)
             WHERE pm.status = 'confirmed' AND r.retailer = ANY(:r) AND l.url ~ '^https?://'
               AND l.url NOT IN (SELECT url FROM watch) ORDER BY r.retailer, l.url"""
    by_name = {s.name: s for s in shops}
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {"r": list(by_name)}).all()
    out = []
    for retailer, url, sku in rows:
        if _bare_host(url) != by_name[retailer].host:
            continue
        if not dry_run:
            add_watch(engine, url, retailer=retailer, sku=sku)
        out.append(dict(zip(REPORT_COLUMNS, [retailer, url, sku, 1.0, "human", "confirmed", "confirmed in review"])))
    return pd.DataFrame(out, columns=REPORT_COLUMNS)


def discover_listings(
    engine: Engine,
    shops: dict[str, Shop],
    *,
    retailers: list[str] | None = None,
    skus: list[str] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    dry_run: bool = False,
    use_model: bool = True,
    archive_dir: str | Path | None = None,
    source: str = "shops.yaml",
) -> Discovery:
    """Discover, match and store candidate listings of the shops (see the module docstring)."""
    chosen = select_shops(shops, retailers, source)
    products, wanted = _catalogue(engine, skus)
    adopted = adopt_confirmed(engine, chosen, dry_run)
    known = _known_urls(engine)
    search = wanted.to_dict("records")
    found = [discover_shop(s, search, known, max_pages, archive_dir=archive_dir) for s in chosen]
    candidates = _stack([f.candidates for f in found], CANDIDATE_COLUMNS)
    taken = _taken(engine, [s.name for s in chosen])
    held = _keys(candidates).isin(_keys(taken))  # the same item as a watched / queued listing, at another URL
    candidates = candidates[~held].reset_index(drop=True)
    matched = pd.DataFrame(columns=["retailer", "item_id", "sku", "score", "method", "outcome"])
    info: dict[str, Any] = {}
    if len(candidates):
        matched, info = match_candidates(candidates, products, taken, read_labels(engine), use_model)
    report = _report(found, matched, candidates, skus)
    watched, queued = (0, 0) if dry_run else _store(engine, report, candidates)
    report = _stack([adopted, report], REPORT_COLUMNS)
    counts = report["outcome"].value_counts()
    summary = {
        "shops": len(chosen),
        "requests": sum(f.requests for f in found),
        "candidates": len(candidates),
        **{k: int(counts.get(k, 0)) for k in OUTCOMES},
        "known": sum(f.known for f in found) + int(held.sum()),
        "watched": (int((report["outcome"] == "auto").sum()) if dry_run else watched) + len(adopted),
        "queued": int((report["outcome"] == "review").sum()) if dry_run else queued,
        "dry_run": dry_run,
        **info,
        "notes": [n for f in found for n in f.notes],
    }
    return Discovery(report, summary, [f.error for f in found if f.error])


def cmd_discover(args: argparse.Namespace) -> int:
    """Run discovery and print one line per candidate and a summary; exit 1 when a shop could not be reached."""
    from priceintel.db import engine as db_engine
    from priceintel.db import migrate

    path = Path(args.shops) if args.shops else default_shops_path()
    shops = load_shops(path)
    select_shops(shops, args.retailer, str(path))  # a wrong --retailer fails before the database is touched
    migrate.upgrade()
    result = discover_listings(
        db_engine.get_engine(),
        shops,
        retailers=args.retailer,
        skus=args.sku,
        max_pages=args.max_pages,
        dry_run=args.dry_run,
        use_model=not args.rules,
        archive_dir=args.archive,
        source=str(path),
    )
    for line in report_lines(result.report, result.summary, args.format):
        print(line, flush=True)
    for note in result.summary["notes"] if args.format == "table" else []:
        print(f"note: {note}", flush=True)
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr, flush=True)
    return 1 if result.errors else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `discover [--retailer R ...] [--sku S ...] [--max-pages N] [--shops PATH] [--dry-run] [--format F]`."""
    p = sub.add_parser(
        "discover",
        help="propose competitor listings for the catalogue (search / sitemap / category pages), match and watch them",
        description="Find candidate product pages of the shops of shops.yaml that have search_url, sitemap or "
        "category_urls (or the shops named by --retailer), fetch them politely, match them to the catalogue "
        "(identifiers first, then the learned score) and watch the sure ones (auto), queue the uncertain ones "
        "for the review app (review). Exit 0, 1 when a shop could not be reached, 2 on an error.",
    )
    p.add_argument("--retailer", action="append", default=None, help="shop of shops.yaml (repeatable)")
    p.add_argument("--sku", action="append", default=None, help="only propose listings of this product (repeatable)")
    p.add_argument("--max-pages", type=int, default=DEFAULT_MAX_PAGES, help="requests per shop at most (200)")
    p.add_argument("--shops", default=None, help="shops file (default PRICEINTEL_SHOPS or config/shops.yaml)")
    p.add_argument("--dry-run", action="store_true", help="fetch and match, print, write nothing")
    p.add_argument("--format", choices=("table", "json"), default="table", help="table lines or one JSON document")
    p.add_argument("--rules", action="store_true", help="score with the hand-weighted rules, not the learned model")
    p.add_argument("--archive", default=None, help="raw-page archive folder (default: the project's data/raw)")
    p.set_defaults(func=cmd_discover)
