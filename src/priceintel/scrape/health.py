"""Health of watches and shops from recent fetch outcomes (pure functions on frames).

`watch_status(fetches, days)` reads each watch's recent fetches (`watch_id`, `fetched_at`, `outcome`,
optional `http_status`; outcomes as `priceintel.scrape.page.OUTCOMES`) one outcome per day (the day's
last fetch, UTC days on which the watch was fetched; days without a fetch are skipped, not failures)
and gives one status per watch:

=========  ===========================================================================================
status     rule (N = `days`)
=========  ===========================================================================================
new        never fetched, or fetched on fewer than N days and never ok yet
blocked    the latest fetch was blocked (robot check / captcha / access refused / robots.txt)
gone       not_found on each of the last N days
moved      redirected (to another product) on each of the last N days
failing    not ok (no_price, error, or a mix of failures) on each of the last N days
ok         otherwise: the latest fetch is ok, or a failure streak shorter than N after an ok
=========  ===========================================================================================

A fetch the hardened fetcher refused or cut short (fetch errors `too_large`, `too_slow`, `blocked_address`, see
docs/scraping.md) has the outcome `error`, like a shop that did not answer: it counts towards `failing`, never as
an extraction failure of the shop.

`since` is when the current state began (the first day of the streak; for ok, the first day of the
latest run of ok days). `shop_extraction_drop(fetches)` flags shops whose share of ok pages today fell
below `ratio` times the median of their own previous days: the quality signal `extraction_rate_drop`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd

from priceintel import PriceIntelError
from priceintel.items import require_columns

__all__ = ["EXTRACTION_DROP", "HealthError", "WATCH_STATUSES", "shop_extraction_drop", "watch_status"]

WATCH_STATUSES = ("new", "ok", "failing", "blocked", "moved", "gone")
WATCH_STATUS_COLUMNS = ["watch_id", "status", "reason", "since", "last_outcome", "last_fetched_at", "days_fetched"]
EXTRACTION_DROP = "extraction_rate_drop"
DROP_COLUMNS = [
    "shop",
    "day",
    "signal",
    "fetches",
    "ok",
    "ok_share",
    "baseline_share",
    "baseline_days",
    "outcomes",
    "message",
]
_OUTCOMES = frozenset({"ok", "no_price", "not_found", "redirected", "blocked", "error"})
#: outcomes about the product (delisted, moved), not about extraction: left out of a shop's ok share
#: outcomes that say nothing about extraction: a delisted or moved product, a shop that did not answer
_NOT_EXTRACTION = frozenset({"not_found", "redirected", "error"})


class HealthError(PriceIntelError):
    """A fetch-outcome frame lacks columns or holds an unknown outcome."""


def _clean(fetches: pd.DataFrame, where: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Copy with tz-aware UTC `fetched_at`, string outcomes validated, a `day` column; sorted by time."""
    require_columns(fetches, ["fetched_at", "outcome", *extra], where, error=HealthError)
    df = fetches.copy()
    df["fetched_at"] = pd.to_datetime(df["fetched_at"], utc=True)
    known = df["outcome"].dropna()
    bad = sorted(set(map(str, known)) - _OUTCOMES)
    if bad:
        raise HealthError(f"{where}: unknown outcome(s) {bad}; expected one of {sorted(_OUTCOMES)}")
    df["day"] = df["fetched_at"].dt.floor("D")
    return df.sort_values("fetched_at", kind="stable")


def _run(values: list[Any], pred: Callable[[Any], bool]) -> int:
    """Length of the trailing run of values satisfying pred."""
    n = 0
    for v in reversed(values):
        if not pred(v):
            break
        n += 1
    return n


def _status_row(wid: Any, rows: pd.DataFrame, days: int) -> dict:
    """Status of one watch from its fetches (sorted; rows without a fetch dropped)."""
    rows = rows.dropna(subset=["fetched_at", "outcome"])
    if rows.empty:
        return {"watch_id": wid, "status": "new", "reason": "never fetched", "since": pd.NaT}
    daily = rows.groupby("day", sort=True).tail(1)
    outs = [str(o) for o in daily["outcome"]]
    times = list(daily["fetched_at"])
    codes = list(daily["http_status"]) if "http_status" in daily else [None] * len(outs)
    last = outs[-1]
    run = _run(outs, lambda o: o == last)
    start = times[-run]
    status, reason = _classify(outs, codes, run, days)
    if status in ("failing", "new"):
        start = times[-_run(outs, lambda o: o != "ok")] if status == "failing" else times[0]
    elif status == "ok" and last != "ok":
        end = len(outs) - _run(outs, lambda o: o != "ok")  # days up to and including the last ok one
        start = times[end - _run(outs[:end], lambda o: o == "ok")]
    return {
        "watch_id": wid,
        "status": status,
        "reason": reason,
        "since": start,
        "last_outcome": last,
        "last_fetched_at": rows["fetched_at"].iloc[-1],
        "days_fetched": len(outs),
    }


def _code(codes: list[Any], n: int) -> str:
    """' (HTTP 404)' naming the HTTP statuses of the last n days, when known."""
    seen = sorted({int(c) for c in codes[-n:] if c is not None and not pd.isna(c)})
    return f" (HTTP {'/'.join(map(str, seen))})" if seen else ""


def _classify(outs: list[str], codes: list[Any], run: int, days: int) -> tuple[str, str]:
    """(status, reason) from the daily outcomes (latest last) and the length of the latest outcome's run."""
    last = outs[-1]
    if last == "blocked":
        return "blocked", f"blocked (robot check, captcha or access refused) on the latest fetch, {run} day(s) in a row"
    if last == "not_found" and run >= days:
        return "gone", f"product not found on each of the last {run} days{_code(codes, run)}"
    if last == "redirected" and run >= days:
        return "moved", f"redirected to another product on each of the last {run} days"
    bad = _run(outs, lambda o: o != "ok")
    if bad >= days:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(Counter(outs[-bad:]).items()))
        return "failing", f"no usable price on each of the last {bad} days ({counts}){_code(codes, bad)}"
    if last == "ok":
        return "ok", f"price extracted on the latest fetch ({run} day(s) in a row)"
    if "ok" not in outs:
        return "new", f"fetched on {len(outs)} day(s), not ok yet (latest: {last}); judged after {days} days"
    return "ok", f"latest fetch {last} for {bad} day(s) after an ok one; failing after {days} days in a row"


def watch_status(fetches: pd.DataFrame, days: int = 3) -> pd.DataFrame:
    """One row per watch: status (new | ok | failing | blocked | moved | gone), reason, since (see module docs).

    `fetches` has columns fetched_at, outcome, optional watch_id (absent = one watch, id None) and
    http_status. Rows with no fetched_at / outcome (a watch never fetched) make that watch `new`.
    """
    if not isinstance(days, int) or days < 1:
        raise HealthError(f"watch_status: days must be a whole number >= 1 (got {days!r})")
    df = _clean(fetches, "watch_status(fetches)")
    if "watch_id" in df.columns:
        groups = list(df.groupby("watch_id", sort=True, dropna=False))
    else:
        groups = [(None, df)] if len(df) else []
    rows = [_status_row(wid, group, days) for wid, group in groups]
    out = pd.DataFrame(rows, columns=WATCH_STATUS_COLUMNS)
    out["since"] = pd.to_datetime(out["since"], utc=True)
    out["last_fetched_at"] = pd.to_datetime(out["last_fetched_at"], utc=True)
    out["days_fetched"] = out["days_fetched"].fillna(0).astype(int)
    return out


def _drop_row(shop: Any, daily: pd.DataFrame, day: pd.Timestamp, today: pd.DataFrame, cfg: dict) -> dict | None:
    """The extraction_rate_drop row of one shop on `day`, or None when its ok share held up."""
    n, ok = len(today), int((today["outcome"] == "ok").sum())
    if n < cfg["min_fetches"]:
        return None
    before = daily[(daily.index < day) & (daily.index >= day - pd.Timedelta(days=cfg["baseline_days"]))]
    before = before[before["n"] >= cfg["min_fetches"]]
    if len(before) < cfg["min_baseline_days"]:
        return None
    baseline = float(before["share"].median())
    share = ok / n
    if not share < cfg["ratio"] * baseline:
        return None
    counts = dict(sorted(Counter(map(str, today["outcome"])).items()))
    bad = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "ok") or "none"
    return {
        "shop": shop,
        "day": day,
        "signal": EXTRACTION_DROP,
        "fetches": n,
        "ok": ok,
        "ok_share": round(share, 4),
        "baseline_share": round(baseline, 4),
        "baseline_days": len(before),
        "outcomes": counts,
        "message": f"shop {shop}: {EXTRACTION_DROP}: ok share {share:.0%} on {day.date()} ({ok} of {n}) vs a median "
        f"of {baseline:.0%} over its previous {len(before)} day(s); failures today: {bad}",
    }


def shop_extraction_drop(
    fetches_by_shop: pd.DataFrame,
    ratio: float = 0.5,
    min_fetches: int = 5,
    baseline_days: int = 14,
    min_baseline_days: int = 2,
    as_of: Any = None,
) -> pd.DataFrame:
    """Shops whose extraction success collapsed today: the quality signal `extraction_rate_drop`.

    `fetches_by_shop` has a `shop` (or `retailer`) column, fetched_at and outcome. Per shop and UTC day,
    the ok share is ok fetches / fetches, leaving out not_found and redirected (a delisted or moved
    product says nothing about extraction) and error (the shop did not answer: an outage, recorded per watch
    and seen by the freshness check, not a broken extractor). A shop is flagged on `as_of` (default: the
    latest day in the frame) when it had at least `min_fetches` fetches that day and its ok share is below
    `ratio` times the median share of its previous `baseline_days` days (days with at least `min_fetches`
    fetches, at least `min_baseline_days` of them). Returns one row per flagged shop (DROP_COLUMNS), empty when none.
    """
    col = "shop" if "shop" in getattr(fetches_by_shop, "columns", ()) else "retailer"
    df = _clean(fetches_by_shop, "shop_extraction_drop(fetches_by_shop)", (col,))
    df = df[df["outcome"].notna() & ~df["outcome"].isin(_NOT_EXTRACTION)]
    if df.empty:
        return pd.DataFrame(columns=DROP_COLUMNS)
    if as_of is None:
        day = df["day"].max()
    else:
        t = pd.Timestamp(as_of)
        day = (t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")).floor("D")
    cfg = {"ratio": ratio, "min_fetches": min_fetches, "baseline_days": baseline_days}
    cfg["min_baseline_days"] = min_baseline_days
    rows = []
    for shop, group in df.groupby(col, sort=True):
        daily = group.groupby("day").agg(n=("outcome", "size"), ok=("outcome", lambda s: int((s == "ok").sum())))
        daily["share"] = daily["ok"] / daily["n"]
        row = _drop_row(shop, daily, day, group[group["day"] == day], cfg)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows, columns=DROP_COLUMNS)
