"""The live source: our own catalogue from the database, and today's page of every watched URL and every
matched listing, fetched from the real shops of `shops.yaml` (any other shop on the generic adapter).

`priceintel run --set source=live` runs the same tasks as the demo source: the world task writes the
catalogue the database holds (`priceintel catalog import`), the scrape task fetches today's pages
(`live_scrape`), clean and match treat them like any other offers, and the load task stores today's
observations, one fetch row per watched page (`watch_fetch`) and each watch's status (`record_fetches`).
Forecasts and elasticities read the whole history from the database. A second run on the same day
upserts the same (listing, day): the latest fetch of the day wins, and every fetch is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from priceintel import PriceIntelError, config
from priceintel.db import usage
from priceintel.db.queries import MATCHED
from priceintel.items import PRODUCT_COLUMNS, SALES_COLUMNS, plain
from priceintel.scrape.crawl import ERROR_COLUMNS, OFFER_FRAME_COLUMNS, _offer_row
from priceintel.scrape.health import watch_status
from priceintel.scrape.page import fetch_offer, shop_fetcher, url_item_id
from priceintel.scrape.shops import Shop, default_shops_path, load_shops, shop_for

#: one row per fetch of a watched page (the `fetches` product of the scrape task; table watch_fetch)
FETCH_COLUMNS = [
    "watch_id",
    "retailer",
    "url",
    "fetched_at",
    "http_status",
    "final_url",
    "outcome",
    "price",
    "currency",
    "page_sha256",
    "message",
]
#: days of fetch history that decide a watch's status (N days in a row of 404 = gone, …)
STATUS_DAYS = 3


class LiveError(PriceIntelError):
    """The live source cannot run (no catalogue, nothing to watch, a bad shops file)."""


def live_catalogue(engine: sa.Engine) -> pd.DataFrame:
    """Our catalogue as the database holds it (PRODUCT_COLUMNS); a LiveError when it is empty."""
    cols = ", ".join(f"{c}::float8 AS {c}" if c in ("unit_cost", "map_price", "msrp") else c for c in PRODUCT_COLUMNS)
    df = pd.read_sql(f"SELECT {cols} FROM dim_product ORDER BY sku", engine, dtype={"gtin": str, "mpn": str})
    if df.empty:
        raise LiveError(
            "source=live: the catalogue is empty; import yours first: priceintel catalog import FILE "
            "(CSV, Excel or a Merchant Center feed; only id and title are required)"
        )
    return df


def write_world(engine: sa.Engine, world_dir: Path) -> Path:
    """The world task of the live source: products.csv (our catalogue) and an empty sales.csv (our sales
    are already in the database: `priceintel sales import`)."""
    world_dir.mkdir(parents=True, exist_ok=True)
    live_catalogue(engine).to_csv(world_dir / "products.csv", index=False)
    pd.DataFrame(columns=SALES_COLUMNS).to_csv(world_dir / "sales.csv", index=False)
    return world_dir


def watch_targets(engine: sa.Engine) -> pd.DataFrame:
    """What a live run fetches: every active watch (watch_id, retailer, url, sku) and every matched listing's
    page that no watch names (watch_id NULL, sku of its match)."""
    sql = f"""
        SELECT w.watch_id, w.retailer, w.url, w.sku FROM watch w WHERE w.active
        UNION ALL
        SELECT NULL, r.retailer, l.url, p.sku
        FROM dim_listing l
        JOIN dim_retailer r USING (retailer_id)
        JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status {MATCHED}
        JOIN dim_product p ON p.product_id = pm.product_id
        WHERE l.url ~ '^https?://' AND l.url NOT IN (SELECT url FROM watch)
        ORDER BY 2, 3"""
    df = pd.read_sql(sql, engine)
    df["watch_id"] = df["watch_id"].astype("Int64")
    return df


def _shops(path: str | Path | None) -> dict[str, Shop]:
    """shops.yaml (`path`, else $PRICEINTEL_SHOPS / config/shops.yaml); none when the default file is absent."""
    if path is None and not default_shops_path().is_file():
        return {}
    return load_shops(path)


def _fetch_one(shop: Shop, fetcher: Any, target: dict, day: str) -> tuple[dict | None, dict | None, dict]:
    """(offer row or None, error row or None, fetch row) of one target."""
    record, offer, res = fetch_offer(target["url"], shop, fetcher, meta={"ds": day, "source": "live"})
    fetch = {
        "watch_id": target["watch_id"],
        "retailer": target["retailer"],
        "url": target["url"],
        "fetched_at": record.fetched_at or datetime.now(UTC),
        "http_status": record.http_status,
        "final_url": record.final_url,
        "outcome": record.outcome,
        "price": record.price if record.outcome == "ok" else None,
        "currency": record.currency if record.outcome == "ok" else None,
        "page_sha256": record.page_sha256,
        "message": record.message,
    }
    if record.outcome != "ok" or offer is None:
        error = {
            "url": target["url"],
            "retailer": target["retailer"],
            "kind": record.outcome,
            "message": record.message,
        }
        return None, error, fetch
    if offer.currency is None and shop.currency:  # no currency the page states clearly: the shop's own
        offer = replace(offer, currency=shop.currency, methods={**offer.methods, "currency": "shops.yaml"})
    row = _offer_row(offer, res)
    row.update(retailer=target["retailer"], url=target["url"], item_id=offer.item_id or url_item_id(target["url"]))
    return row, None, fetch


def _scrape_shop(shop: Shop, targets: list[dict], archive: Path, day: str) -> list[tuple]:
    """Fetch one shop's targets with its politeness (rate, concurrency, JS rendering)."""
    with shop_fetcher(shop, shop.render_js, archive) as fetcher:
        with ThreadPoolExecutor(max_workers=max(1, shop.concurrency)) as pool:
            return list(pool.map(lambda t: _fetch_one(shop, fetcher, t, day), targets))


def _shop_names(shops: dict[str, Shop], targets: pd.DataFrame) -> list[str]:
    """The shop (`shop_for`'s name: the configured shop, else the retailer) of each target."""
    return [shop_for(shops, url, retailer=r)[0].name for url, r in zip(targets["url"], targets["retailer"])]


def live_shops(engine: sa.Engine, shops_path: str | Path | None = None) -> list[str]:
    """The shops a live run fetches today (those of the active watches and matched listings), sorted."""
    return sorted(set(_shop_names(_shops(shops_path), watch_targets(engine))))


def live_scrape(
    engine: sa.Engine,
    data_dir: Path,
    shops_path: str | Path | None = None,
    log: Callable[[str], None] = print,
    only: Collection[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fetch today's page of every target, shops in parallel, each at its own pace: (offers, errors, fetches);
    `only`: the targets of these shops alone (a shard of the run, `pipeline.shards`).

    Pages with no extractable price, 404s, redirects to another product and robot checks are errors and
    fetch rows, never offers: nothing is stored as a price that was not extracted as one. The tenant's plan
    allows so many page checks a day (`db.usage`): pages beyond what is left of it are not fetched but recorded
    as `plan_limit` errors; the pages fetched are metered.
    """
    targets = watch_targets(engine)
    if targets.empty:
        raise LiveError(
            "source=live: nothing to watch; add competitor pages first: priceintel watch import FILE "
            "(columns retailer,url[,sku]) or priceintel watch add URL"
        )
    shops = _shops(shops_path)
    if only is not None:
        wanted = set(only)
        targets = targets[[name in wanted for name in _shop_names(shops, targets)]]
    targets, over = _within_plan(engine, targets, log)
    groups: dict[str, tuple[Shop, list[dict]]] = {}
    warned: set[str] = set()
    for t in targets.to_dict("records"):
        t = {k: plain(v) for k, v in t.items()}
        shop, warning = shop_for(shops, t["url"], retailer=t["retailer"])
        if warning and shop.name not in warned:
            warned.add(shop.name)
            log(f"warning: {warning}")
        groups.setdefault(shop.name, (shop, []))[1].append(t)
    now = config.clock_now()  # PRICEINTEL_CLOCK: a simulated or backfilled day; fetch times move with it
    shift = now - datetime.now(UTC)
    day = now.date().isoformat()
    archive = Path(data_dir) / "raw"
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(groups)))) as pool:
        done = list(pool.map(lambda g: _scrape_shop(g[0], g[1], archive, day), groups.values()))
    rows = [r for shop_rows in done for r in shop_rows]
    if abs(shift.total_seconds()) > 1:
        for row in (part for r in rows for part in r if part is not None and "fetched_at" in part):
            row["fetched_at"] = pd.Timestamp(row["fetched_at"]) + shift
    offers = pd.DataFrame([o for o, _, _ in rows if o is not None], columns=OFFER_FRAME_COLUMNS)
    offers["fetched_at"] = pd.to_datetime(offers["fetched_at"], utc=True)
    offers["status"] = offers["status"].astype("Int64")
    errors = pd.DataFrame([*(e for _, e, _ in rows if e is not None), *over], columns=ERROR_COLUMNS)
    fetches = fetch_frame([f for _, _, f in rows])
    usage.record(engine, pages_fetched=len(rows))
    return offers, errors, fetches


def _within_plan(
    engine: sa.Engine, targets: pd.DataFrame, log: Callable[[str], None]
) -> tuple[pd.DataFrame, list[dict]]:
    """(the targets the plan's page checks left today allow, error rows of the others)."""
    left = usage.checks_left(engine)
    if left is None or len(targets) <= left:
        return targets, []
    plan = usage.plan_of(engine)
    log(f"warning: plan {plan.name} allows {plan.checks_per_day:,} page checks a day; {left:,} left today, "
        f"{len(targets):,} pages to check: the other {len(targets) - left:,} wait for tomorrow")  # fmt: skip
    message = f"plan {plan.name}: {plan.checks_per_day:,} page checks a day used up; checked again tomorrow (UTC)"
    over = [
        {"url": t["url"], "retailer": t["retailer"], "kind": "plan_limit", "message": message}
        for t in targets.iloc[left:].to_dict("records")
    ]
    return targets.iloc[:left], over


def fetch_frame(rows: list[dict] | None = None) -> pd.DataFrame:
    """The fetches product (FETCH_COLUMNS; empty for the demo source)."""
    df = pd.DataFrame(rows or [], columns=FETCH_COLUMNS)
    df["watch_id"] = df["watch_id"].astype("Int64")
    df["http_status"] = df["http_status"].astype("Int64")
    df["fetched_at"] = pd.to_datetime(df["fetched_at"], utc=True)
    return df


def record_fetches(conn: sa.Connection, fetches: pd.DataFrame, scrape_run_id: int | None) -> dict:
    """Store the watched pages' fetches (watch_fetch; a fetch already stored is not stored twice) and set each
    fetched watch's status from its last `STATUS_DAYS` days of fetches. Returns counts."""
    watched = fetches[fetches["watch_id"].notna()]
    if watched.empty:
        return {"fetches": 0, "statuses": {}}
    rows = [
        {
            "w": int(r["watch_id"]),
            "t": r["fetched_at"].to_pydatetime(),
            "d": int(r["fetched_at"].strftime("%Y%m%d")),
            "s": plain(r["http_status"]),
            "f": plain(r["final_url"]),
            "o": r["outcome"],
            "p": plain(r["price"]),
            "c": plain(r["currency"]),
            "h": plain(r["page_sha256"]),
            "run": scrape_run_id,
            "m": plain(r["message"]),
        }
        for _, r in watched.iterrows()
    ]
    inserted = conn.execute(
        sa.text(
            """INSERT INTO watch_fetch (watch_id, fetched_at, date_key, http_status, final_url, outcome, price,
                                        currency, page_sha256, scrape_run_id, message)
               VALUES (:w, :t, :d, :s, :f, :o, CAST(:p AS numeric), :c, :h, :run, :m)
               ON CONFLICT (watch_id, fetched_at) DO NOTHING"""
        ),
        rows,
    ).rowcount
    ids = sorted({int(w) for w in watched["watch_id"]})
    history = pd.read_sql(
        sa.text(
            "SELECT watch_id, fetched_at, outcome, http_status FROM watch_fetch "
            "WHERE watch_id = ANY(:ids) AND fetched_at >= CAST(:ref AS timestamptz) - make_interval(days => :days) "
            "AND fetched_at <= :ref"
        ),
        conn,
        params={"ids": ids, "days": STATUS_DAYS * 3, "ref": watched["fetched_at"].max().to_pydatetime()},
    )
    status = watch_status(history, days=STATUS_DAYS)
    for r in status.itertuples(index=False):
        conn.execute(
            sa.text(
                """UPDATE watch SET status = :s, status_reason = :why, updated_at = now(),
                       status_since = CASE WHEN status = :s THEN status_since ELSE COALESCE(:since, now()) END
                   WHERE watch_id = :w"""
            ),
            {"s": r.status, "why": plain(r.reason), "since": plain(r.since), "w": int(r.watch_id)},
        )
    return {"fetches": int(inserted or 0), "statuses": status["status"].value_counts().to_dict()}


def watch_labels(engine: sa.Engine, listings: pd.DataFrame) -> pd.DataFrame:
    """Known matches from the watch list: a watch with a sku makes its page's listing that product
    (retailer, item_id, sku, label=True), as a confirmed label."""
    watched = pd.read_sql("SELECT url, sku FROM watch WHERE active AND sku IS NOT NULL", engine)
    out = listings[["retailer", "item_id", "url"]].merge(watched, on="url")[["retailer", "item_id", "sku"]]
    return out.assign(label=1).drop_duplicates(["retailer", "item_id"]).reset_index(drop=True)
