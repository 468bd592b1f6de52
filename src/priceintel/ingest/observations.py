"""Import competitor prices observed elsewhere (another scraper, a data vendor, a partner's feed) into fact_price.

One row per listing and day. Required columns: retailer, item_id (or id, sku_at_retailer), date (or ds, day),
price ("12.99", "12.99 EUR", "€12,99"). Optional: currency (ISO code or sign; else the price's own), url, title,
brand, gtin, mpn, list_price, in_stock (yes/no, 1/0, true/false) or availability (in stock, out of stock, …),
promo, observed_at (a timestamp; default: the day itself, 00:00 UTC, so a re-import changes nothing).

Rejected rows: a missing retailer, item id or date, an unreadable or future-dated day, a price that is
missing, unparsable, zero or negative or has no currency, an unknown currency, an unreadable flag, and every
copy of a repeated (retailer, item id, date). A retailer not yet in dim_retailer is added (with a warning);
a listing not yet in dim_listing is created. The import is idempotent: loading the same rows again changes
nothing (fact_price is upserted and unchanged rows are skipped), and an observation already stored for the
same listing and day that is newer (a later scrape) is kept; and it is recorded in import_run with the
file's SHA-256 and archived like every import (`ingest.lineage`). Each stored price names its import run and the
method `import` (fact_price's lineage: `priceintel lineage PRICE_ID`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from priceintel.db import load
from priceintel.ingest.fields import amounts, availability, clean_url, dates, find_columns, flags
from priceintel.ingest.lineage import Checked, run_import
from priceintel.ingest.result import ImportResult, Issue
from priceintel.ingest.validate import Rule, check_rows, duplicate_rule, required_rule, split

__all__ = ["OBSERVATION_ALIASES", "check_observations", "import_observations"]

#: observation column -> the file's column names it may come from (first found wins)
OBSERVATION_ALIASES: dict[str, tuple[str, ...]] = {
    "retailer": ("retailer", "shop", "store", "competitor"),
    "item_id": ("item_id", "id", "retailer_item_id", "asin", "listing_id"),
    "ds": ("date", "ds", "day", "observed_on"),
    "price": ("price", "current_price", "sale_price"),
    "currency": ("currency", "currency_code"),
    "list_price": ("list_price", "regular_price", "was_price"),
    "in_stock": ("in_stock", "instock", "available"),
    "availability": ("availability", "stock_status"),
    "promo": ("promo", "on_promo", "promotion"),
    "observed_at": ("observed_at", "fetched_at", "timestamp"),
    "url": ("url", "link"),
    "title": ("title", "name"),
    "brand": ("brand",),
    "gtin": ("gtin", "ean", "upc"),
    "mpn": ("mpn",),
}
_REQUIRED = ("retailer", "item_id", "ds", "price")
_RETAILER = r"[a-z0-9][a-z0-9_.-]{0,63}"
_FIRST_DAY = pd.Timestamp("1990-01-01")
#: the availability states (`fields.availability`: Merchant Center names) that count as in stock
_STOCKED = {"in_stock", "preorder"}


def _columns(path: Path, df: pd.DataFrame) -> dict[str, str]:
    return find_columns(path, df, OBSERVATION_ALIASES, _REQUIRED, "observations need retailer, item_id, date, price")


def _parsed(df: pd.DataFrame, found: dict[str, str]) -> dict[str, Any]:
    retailer = df[found["retailer"]].map(lambda v: str(v).strip().lower(), na_action="ignore")
    currency = df[found["currency"]] if "currency" in found else None
    out: dict[str, Any] = {
        "retailer": retailer,
        "ds": dates(df[found["ds"]]),
        "price": amounts(df[found["price"]], currency),
    }
    if "list_price" in found:
        out["list_price"] = amounts(df[found["list_price"]], currency)
    for flag in ("in_stock", "promo"):
        if flag in found:
            out[flag] = flags(df[found[flag]])
    if "availability" in found and "in_stock" not in found:
        state = df[found["availability"]].map(availability, na_action="ignore")
        out["in_stock"] = state.map(lambda s: s in _STOCKED, na_action="ignore").where(
            state.notna() | df[found["availability"]].isna(), "?"
        )
    if "url" in found:
        out["url"] = df[found["url"]].map(clean_url, na_action="ignore")
    if "observed_at" in found:
        out["observed_at"] = pd.to_datetime(df[found["observed_at"]], errors="coerce", utc=True, format="mixed")
    return out


def _rules(df: pd.DataFrame, found: dict[str, str], p: dict[str, Any]) -> list[Rule]:
    retailer, item, ds, price = (found[k] for k in _REQUIRED)
    day, amount = p["ds"], p["price"]
    today = pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
    keys = pd.DataFrame({retailer: p["retailer"], item: df[item], ds: day.dt.strftime("%Y-%m-%d")}, index=df.index)
    valid_name = p["retailer"].isna() | p["retailer"].astype(str).str.fullmatch(_RETAILER)
    rules = [
        required_rule(retailer, retailer),
        Rule(retailer, lambda s: valid_name, "retailer '{value}': use letters, digits, . _ - (e.g. amazon)"),
        required_rule(item, item),
        required_rule(ds, ds),
        Rule(ds, lambda s: s.isna() | day.notna(), "unreadable date '{value}' (use YYYY-MM-DD)"),
        Rule(ds, lambda s: day.isna() | ((day >= _FIRST_DAY) & (day <= today)), "date '{value}' is out of range"),
        required_rule(price, price),
        Rule(
            price,
            lambda s: s.isna() | amount["problem"].isna(),
            lambda value, row: f"{amount['problem'][row]} price '{value}'",
        ),
        Rule(price, lambda s: ~(amount["amount"] == 0), "zero price '{value}' (no price is no observation)"),
        duplicate_rule(keys, [retailer, item, ds], f"{retailer}, {item} and {ds}"),
    ]
    if "list_price" in p:
        lp = p["list_price"]
        rules.append(
            Rule(
                found["list_price"],
                lambda s: s.isna() | lp["problem"].isna(),
                lambda value, row: f"{lp['problem'][row]} list price '{value}'",
            )
        )
    for flag in ("in_stock", "promo"):
        column = found.get(flag) or (found.get("availability") if flag == "in_stock" else None)
        if flag in p and column:
            rules.append(_flag_rule(column, flag, p[flag]))
    if "url" in p:
        url = p["url"]
        raw = df[found["url"]]
        rules.append(
            Rule(
                found["url"],
                lambda s: raw.isna() | url.notna(),
                "url '{value}' is not an absolute http(s) URL",
                level="warning",
            )
        )
    return rules


def _flag_rule(column: str, flag: str, values: pd.Series) -> Rule:
    """Reject a yes/no cell that reads as neither."""
    bad = values == "?"
    return Rule(column, lambda s: ~bad, f"unreadable {flag} '{{value}}'")


def _known_retailers(conn: Connection) -> set[str]:
    return set(conn.execute(sa.text("SELECT retailer FROM dim_retailer")).scalars())


def check_observations(conn: Connection, path: Path, df: pd.DataFrame) -> Checked:
    """Check an observations frame (as read): the rows to load (OBSERVATION_COLUMNS), rejects and warnings."""
    found = _columns(path, df)
    p = _parsed(df, found)
    kept, rejects, warnings = split(df, check_rows(df, _rules(df, found, p)))
    idx = kept.index
    known = _known_retailers(conn)
    for name in sorted(set(p["retailer"][idx]) - known):
        row = int(p["retailer"][idx][p["retailer"][idx] == name].index[0])
        warnings.append(
            Issue(row, found["retailer"], name, f"new retailer '{name}' added to dim_retailer", level="warning")
        )
    # without a time of observation, the day itself (00:00 UTC): a re-import then changes nothing
    day_start = p["ds"][idx].dt.tz_localize("UTC")
    out = pd.DataFrame(
        {
            "retailer": p["retailer"][idx],
            "item_id": kept[found["item_id"]].astype(str).str.strip(),
            "ds": p["ds"][idx].dt.date,
            "observed_at": p["observed_at"][idx].fillna(day_start) if "observed_at" in p else day_start,
            "price": p["price"]["amount"][idx],
            "currency": p["price"]["currency"][idx],
        },
        index=idx,
    )
    if "list_price" in p:
        out["list_price"] = p["list_price"]["amount"][idx]
    for flag in ("in_stock", "promo"):
        if flag in p:
            out[flag] = p[flag][idx].astype(object).where(p[flag][idx].notna(), None)
    for attr in ("url", "title", "brand", "gtin", "mpn"):
        if attr in found:
            out[attr] = p["url"][idx] if attr == "url" else kept[found[attr]]
    return Checked(out, rejects, warnings)


def _load(conn: Connection, frame: pd.DataFrame, run_id: int) -> dict:
    """New retailers, then the listings and their history (attributes kept when a cell is empty), then fact_price
    upserted."""
    retailers = pd.DataFrame({"retailer": sorted(set(frame["retailer"]) - _known_retailers(conn))})
    if len(retailers):
        retailers["name"] = retailers["retailer"].str.title()
        retailers["base_url"] = None
        load.upsert_retailers(conn, retailers)
    cols = ("retailer", "item_id", "ds", "url", "title", "brand", "gtin", "mpn", "in_stock")
    # one row per listing and day: the listing keeps each attribute's newest non-empty value, and its history the
    # title, url and availability of every day (an old day imported late lands in its place: db.history)
    load.upsert_listings(conn, frame[[c for c in cols if c in frame.columns]])
    load.ensure_dates(conn, min(frame["ds"]), max(frame["ds"]))
    price_cols = [
        c
        for c in ("retailer", "item_id", "ds", "observed_at", "price", "list_price", "currency", "in_stock", "promo")
        if c in frame.columns
    ]
    counts = load.load_prices(conn, frame[price_cols], keep_newer=True, import_run_id=run_id)  # its lineage
    return {"inserted": counts.get("inserted", 0), "updated": counts.get("updated", 0)}


def import_observations(engine: Engine, path: str | Path, **options: Any) -> ImportResult:
    """Import a file of competitor price observations into fact_price (see the module docstring); `options` are
    `run_import`'s: strict, encoding, archive_root, by."""
    return run_import(engine, "prices", path, check_observations, _load, **options)
