"""Import our catalogue (a CSV/Excel/Parquet file or a Google Merchant Center feed) into dim_product.

Only an id (`id` or `sku`) and a title (`title` or `name`) are required. Optional columns: brand, gtin (also
ean, upc, gtin13, …), mpn, category (or product_type, google_product_category), price (our price: "15.00 USD",
or 15.00 with a currency column or the `currency` argument), sale_price (when given, it is our current price),
cost_of_goods_sold / cost / unit_cost, map / map_price, msrp, availability, link / url, size.

Rejected rows: a repeated id (every copy), a missing id or title, an unparsable or negative amount, a price
without a currency. Warnings (the row still loads): a GTIN with a bad check digit (loaded without gtin), an
unknown availability, a malformed link. Rows are upserted on sku: changed rows are updated, identical rows are
counted unchanged; only the columns the file has are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from priceintel.db import usage
from priceintel.db.staging import cols, distinct, prepare, stage, upsert_counts
from priceintel.ingest.fields import (
    AVAILABILITY_VALUES,
    amounts,
    availability,
    by_unique,
    clean_url,
    gtin_problem,
    pick,
)
from priceintel.ingest.lineage import Checked, run_import
from priceintel.ingest.result import ImportResult, IngestError
from priceintel.ingest.validate import Rule, check_rows, duplicate_rule, required_rule, split
from priceintel.items import valid_gtin

__all__ = ["CATALOG_ALIASES", "import_catalog"]

#: dim_product column -> the file's column names it may come from (first found wins)
CATALOG_ALIASES: dict[str, tuple[str, ...]] = {
    "sku": ("sku", "id", "offer_id"),
    "name": ("title", "name", "product_name"),
    "brand": ("brand", "manufacturer"),
    "gtin": ("gtin", "ean", "upc", "gtin13", "gtin_13", "gtin12", "gtin_12", "gtin14", "gtin_14", "gtin8", "ean13"),
    "mpn": ("mpn",),
    "category": ("category", "product_type", "google_product_category"),
    "price": ("price", "own_price", "regular_price"),
    "sale_price": ("sale_price",),
    "currency": ("currency",),
    "unit_cost": ("cost_of_goods_sold", "cost", "unit_cost"),
    "map_price": ("map", "map_price"),
    "msrp": ("msrp",),
    "availability": ("availability",),
    "url": ("link", "url"),
    "size": ("size",),
}
_AMOUNTS = ("price", "sale_price", "unit_cost", "map_price", "msrp")
_TEXT = ("brand", "category", "mpn", "size")
_COLS = cols(
    "sku! name! brand category gtin mpn size unit_cost:numeric(12,2)+ map_price:numeric(12,2)+ "
    "msrp:numeric(12,2)+ own_price:numeric(12,2)+ currency availability url"
)
_CURRENCY_HINT = "write '15.00 USD', add a currency column or give a default currency (--currency)"


def _columns(path: Path, df: pd.DataFrame) -> dict[str, str]:
    """dim_product column -> the file's column; IngestError naming the file when id or title is missing."""
    found = {target: col for target, aliases in CATALOG_ALIASES.items() if (col := pick(df, aliases))}
    for target, what in (("sku", "id"), ("name", "title")):
        if target not in found:
            names = " or ".join(CATALOG_ALIASES[target][:2])
            raise IngestError(f"{path.name}: no {what} column ({names}); its columns: {list(df.columns)}")
    return found


def _amount_rule(column: str, parsed: pd.DataFrame, with_currency: bool) -> Rule:
    """Reject an unparsable or negative amount (and, for our price, one without a known currency)."""
    kinds = {"unparsable", "negative"} | ({"unknown currency", "no currency"} if with_currency else set())
    bad = parsed["problem"].isin(kinds)

    def reason(value: object, row: int) -> str:
        problem = parsed.at[row, "problem"]
        if problem == "no currency":
            return f"{column} '{value}' has no currency: {_CURRENCY_HINT}"
        if problem == "unknown currency":
            return f"unknown currency in {column} '{value}' (use an ISO code such as USD or EUR)"
        return f"{problem} {column} '{value}'"

    return Rule(column, lambda s: ~bad, reason)


def _warning_rules(df: pd.DataFrame, found: dict[str, str]) -> list[Rule]:
    """GTIN, availability and link problems: reported, the row loads without that value."""
    rules = []
    if "gtin" in found:
        col = found["gtin"]
        problem = by_unique(df[col], gtin_problem)
        rules.append(
            Rule(col, lambda s: problem.isna(), lambda v, r: f"{problem[r]} '{v}' (row loaded without gtin)", "warning")
        )
    if "availability" in found:
        col = found["availability"]
        unknown = df[col].notna() & by_unique(df[col], availability).isna()
        expected = ", ".join(AVAILABILITY_VALUES)
        msg = f"unknown availability '{{value}}' (expected {expected}; row loaded without availability)"
        rules.append(Rule(col, lambda s: ~unknown, msg, "warning"))
    if "url" in found:
        col = found["url"]
        bad = df[col].notna() & by_unique(df[col], clean_url).isna()
        rules.append(Rule(col, lambda s: ~bad, "malformed URL '{value}' (row loaded without url)", "warning"))
    return rules


def _canonical(df: pd.DataFrame, found: dict[str, str], parsed: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The dim_product frame of the kept rows (only the columns the file has)."""
    out = pd.DataFrame({"sku": df[found["sku"]], "name": df[found["name"]]}, index=df.index)
    for target in _TEXT:
        if target in found:
            out[target] = df[found[target]]
    if "gtin" in found:
        out["gtin"] = by_unique(df[found["gtin"]], valid_gtin)
    for target in ("unit_cost", "map_price", "msrp"):
        if target in parsed:
            out[target] = parsed[target]["amount"]
    if "price" in parsed or "sale_price" in parsed:
        own = parsed.get("sale_price", parsed.get("price"))
        assert own is not None
        base = parsed.get("price", own)
        use_sale = own["amount"].notna()
        out["own_price"] = own["amount"].where(use_sale, base["amount"])
        out["currency"] = own["currency"].where(use_sale, base["currency"])
        out["currency"] = out["currency"].where(out["own_price"].notna(), None)
    if "availability" in found:
        out["availability"] = by_unique(df[found["availability"]], availability)
    if "url" in found:
        out["url"] = by_unique(df[found["url"]], clean_url)
    return out


def check_catalog(path: Path, df: pd.DataFrame, currency: str | None = None) -> Checked:
    """Check a catalogue frame (as read): the dim_product rows to load, rejected rows and warnings."""
    found = _columns(path, df)
    cur = df[found["currency"]] if "currency" in found else None
    parsed = {t: amounts(df[found[t]], cur, currency) for t in _AMOUNTS if t in found}
    rules = [
        required_rule(found["sku"], found["sku"]),
        duplicate_rule(df, [found["sku"]], found["sku"]),
        required_rule(found["name"], found["name"]),
        *(_amount_rule(found[t], parsed[t], t in ("price", "sale_price")) for t in parsed),
        *_warning_rules(df, found),
    ]
    kept, rejects, warnings = split(df, check_rows(df, rules))
    parsed = {t: p.loc[kept.index] for t, p in parsed.items()}
    return Checked(_canonical(kept, found, parsed), rejects, warnings)


def _load(conn: Connection, frame: pd.DataFrame, run_id: int) -> dict:
    """Upsert the checked rows into dim_product keyed on sku; a changed row records this import run."""
    present, conv = prepare(frame, "dim_product", _COLS, ["sku"])
    n = stage(conn, "stg_product_import", present, conv)
    names = [c.name for c in present]
    upd = [c for c in names if c != "sku"]
    sets = [*(f"{c} = excluded.{c}" for c in upd), "updated_at = now()", "import_run_id = excluded.import_run_id"]
    sql = f"""INSERT INTO dim_product AS t ({", ".join(names)}, import_run_id)
              SELECT {", ".join(names)}, CAST(:run AS integer) FROM stg_product_import ORDER BY sku
              ON CONFLICT (tenant_id, sku) DO UPDATE SET {", ".join(sets)} WHERE {distinct(upd)}
              RETURNING (xmax = 0) AS inserted"""
    counts = upsert_counts(conn, "dim_product", sql, n, {"run": run_id})
    usage.check_products(conn)  # over the plan's tracked products: the whole import rolls back
    return counts


def import_catalog(
    engine: Engine,
    path: str | Path,
    *,
    strict: bool = False,
    encoding: str | None = None,
    currency: str | None = None,
    archive_root: str | Path | None = None,
    by: str | None = None,
) -> ImportResult:
    """Import a catalogue file into dim_product (see the module docstring); `currency` is the default currency of
    prices written without one; `archive_root` (default: the data dir) receives `imports/catalog/<sha>-<name>`."""
    opts: dict[str, Any] = {"strict": strict, "encoding": encoding, "archive_root": archive_root, "by": by}
    return run_import(engine, "catalog", path, lambda conn, path, df: check_catalog(path, df, currency), _load, **opts)
