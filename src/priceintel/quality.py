"""Data checks for the pipeline's `on_finish` hooks and tests; a failure names table, column and rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from priceintel import PriceIntelError
from priceintel.items import OBSERVATION_COLUMNS


class QualityError(PriceIntelError):
    """A data check failed; the message names the check, the table, the column and the row count."""


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one named check on one table."""

    name: str
    table: str
    column: str | None
    failed_rows: int
    passed: bool
    detail: str = ""


def check_observations(obs: pd.DataFrame, table: str = "observations") -> list[CheckResult]:
    """Schema and content checks on the canonical observation frame."""
    results: list[CheckResult] = []
    missing = [c for c in OBSERVATION_COLUMNS if c not in obs.columns]
    results.append(CheckResult("columns_present", table, ",".join(missing) or None, len(missing),
                               not missing, f"missing columns: {missing}" if missing else ""))
    if missing:
        return results
    dup = int(obs.duplicated(["retailer", "item_id", "ds"]).sum())
    results.append(CheckResult("unique_listing_day", table, "retailer,item_id,ds", dup, dup == 0))
    nonpos = int((obs["price"].notna() & (obs["price"] <= 0)).sum())
    results.append(CheckResult("price_positive", table, "price", nonpos, nonpos == 0))
    instock_noprice = int((obs["in_stock"].fillna(False).astype(bool) & obs["price"].isna()).sum())
    results.append(CheckResult("in_stock_has_price", table, "price", instock_noprice,
                               instock_noprice == 0))
    cur = obs["currency"].dropna().astype(str)
    badcur = int((~cur.str.fullmatch(r"[A-Z]{3}")).sum())
    results.append(CheckResult("currency_iso4217", table, "currency", badcur, badcur == 0))
    noid = int(obs["item_id"].isna().sum())
    results.append(CheckResult("item_id_present", table, "item_id", noid, noid == 0))
    return results


def raise_on_failure(results: list[CheckResult]) -> None:
    """Raise QualityError listing every failed check."""
    failed = [r for r in results if not r.passed]
    if failed:
        lines = [f"{r.name}: table {r.table}, column {r.column}: {r.failed_rows} rows {r.detail}".rstrip()
                 for r in failed]
        raise QualityError("data checks failed:\n  " + "\n  ".join(lines))


def results_frame(results: list[CheckResult]) -> pd.DataFrame:
    """Check results as a frame for reports."""
    return pd.DataFrame([r.__dict__ for r in results])


def check_observations_product(product) -> None:
    """Ploomber on_finish hook for the clean task: checks its observations product."""
    obs = pd.read_parquet(str(product["observations"]))
    raise_on_failure(check_observations(obs, table=str(product["observations"])))
