"""The operations page (notebooks/apps/ops.ipynb): is the workbench doing its job? The last scheduled runs and
pipeline tasks, what failed in the last days (runs, fetches by shop and kind, alert deliveries by channel), how
fresh each shop's prices are, and the health of the watched pages per shop.

Everything is read through the kernel's engine, so an app kernel (the app role, bound to the user's tenant) sees
its own tenant's runs, shops and watches only. "Now" is `config.clock_now()` (a simulated calendar shows as
such). A shop is `stale` when its newest price is older than STALE_HOURS, `never` when it has none.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from priceintel import config
from priceintel.apps.widgets import frame_html, refreshing_page, summary_html

#: a shop whose newest price is older than this many hours is stale (a daily run plus a day's slack)
STALE_HOURS = 36
#: days of failures the page counts
FAILURE_DAYS = 7
#: the watch statuses, in the order of the health table (see priceintel.scrape.health)
WATCH_STATUSES = ("ok", "new", "failing", "blocked", "moved", "gone")

OPS_CSS = """<style>
.pi-ops .pi-ops-note { color: #616e7c; font-size: 12px; margin: 4px 0 0; }
.pi-ops h3 { margin: 18px 0 6px; }
</style>"""

_RUNS = """
SELECT run_id, started_at, finished_at, status, trigger, error FROM schedule_run
ORDER BY started_at DESC, run_id DESC LIMIT :n"""
_TASKS = """
SELECT run_id, task, status, started_at, finished_at, errors FROM pipeline_run
ORDER BY started_at DESC, run_id DESC LIMIT :n"""
_FETCH_FAILURES = """
SELECT coalesce(retailer, '(unknown)') AS shop, kind, count(*) AS failures, max(created_at) AS last_seen
FROM scrape_error WHERE created_at >= :since GROUP BY 1, 2 ORDER BY failures DESC, shop, kind"""
_DELIVERY_FAILURES = """
SELECT channel, count(*) AS failures, max(created_at) AS last_seen, (array_agg(error ORDER BY created_at DESC))[1]
       AS last_error
FROM alert_delivery WHERE status = 'failed' AND created_at >= :since GROUP BY channel ORDER BY failures DESC"""
_FRESHNESS = """
SELECT r.retailer AS shop,
       (SELECT max(s.finished_at) FROM scrape_run s WHERE s.retailer = r.retailer) AS last_scrape,
       (SELECT max(f.observed_at) FROM dim_listing l JOIN fact_price f ON f.listing_id = l.listing_id
         WHERE l.retailer_id = r.retailer_id) AS newest_price,
       (SELECT count(*) FROM dim_listing l WHERE l.retailer_id = r.retailer_id) AS listings
FROM dim_retailer r ORDER BY r.retailer"""
_WATCHES = "SELECT retailer AS shop, status, count(*) AS n FROM watch WHERE active GROUP BY 1, 2"


@dataclass(frozen=True)
class OpsReport:
    """What the operations page shows, read at `now`."""

    now: datetime
    runs: pd.DataFrame  # schedule_run, newest first
    tasks: pd.DataFrame  # pipeline_run, newest first
    fetch_failures: pd.DataFrame  # shop, kind, failures, last_seen (last FAILURE_DAYS days)
    delivery_failures: pd.DataFrame  # channel, failures, last_seen, last_error
    freshness: pd.DataFrame  # shop, last_scrape, newest_price, listings, age_hours, state
    watches: pd.DataFrame  # shop, one column per watch status, total

    def cards(self) -> dict[str, Any]:
        """Headline figures: last run and its status, stale shops, failing watches, failures of the last days."""
        last = self.runs.iloc[0] if len(self.runs) else (self.tasks.iloc[0] if len(self.tasks) else None)
        bad_watches = int(self.watches[["failing", "blocked", "gone"]].to_numpy().sum()) if len(self.watches) else 0
        return {
            "last_run": "never" if last is None else _when(last["started_at"]),
            "last_run_status": "—" if last is None else str(last["status"]),
            "stale_shops": int((self.freshness["state"] != "fresh").sum()) if len(self.freshness) else 0,
            "failing_watches": bad_watches,
            "fetch_failures": int(self.fetch_failures["failures"].sum()) if len(self.fetch_failures) else 0,
            "delivery_failures": int(self.delivery_failures["failures"].sum()) if len(self.delivery_failures) else 0,
        }


def _when(ts: Any) -> str:
    """'2026-12-06 14:05 UTC' (or '—')."""
    if ts is None or pd.isna(ts):
        return "—"
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def _minutes(start: Any, end: Any) -> float | None:
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return None
    return round((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 60, 1)


def freshness_state(newest: Any, now: datetime, stale_hours: float = STALE_HOURS) -> tuple[float | None, str]:
    """(age in hours, fresh | stale | never) of a shop's newest price at `now`."""
    if newest is None or pd.isna(newest):
        return None, "never"
    age = (pd.Timestamp(now) - pd.Timestamp(newest)).total_seconds() / 3600
    return round(age, 1), "fresh" if age <= stale_hours else "stale"


def _watch_table(rows: pd.DataFrame) -> pd.DataFrame:
    """shop × watch status counts (every status a column, 0 when none) and a total."""
    if rows.empty:
        return pd.DataFrame(columns=["shop", *WATCH_STATUSES, "total"])
    table = rows.pivot_table(index="shop", columns="status", values="n", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=list(WATCH_STATUSES), fill_value=0).astype(int)
    table["total"] = table.sum(axis=1)
    return table.reset_index().rename_axis(columns=None)


def ops_report(engine: sa.Engine, now: datetime | None = None, runs: int = 10) -> OpsReport:
    """The current tenant's runs, recent failures, freshness per shop and watch health per shop."""
    now = now or config.clock_now()
    since = now - timedelta(days=FAILURE_DAYS)
    with engine.connect() as conn:

        def read(sql: str, **params: Any) -> pd.DataFrame:
            return pd.read_sql_query(sa.text(sql), conn, params=params)

        sched, tasks = read(_RUNS, n=runs), read(_TASKS, n=2 * runs)
        fetches, deliveries = read(_FETCH_FAILURES, since=since), read(_DELIVERY_FAILURES, since=since)
        fresh, watches = read(_FRESHNESS), read(_WATCHES)
    for frame in (sched, tasks):
        frame["minutes"] = [_minutes(s, e) for s, e in zip(frame["started_at"], frame["finished_at"])]
    states = [freshness_state(v, now) for v in fresh["newest_price"]]
    fresh["age_hours"] = [a for a, _ in states]
    fresh["state"] = [s for _, s in states]
    return OpsReport(now, sched, tasks, fetches, deliveries, fresh, _watch_table(watches))


def _shown(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The columns to show, renamed, times as 'YYYY-MM-DD HH:MM UTC'."""
    out = df[list(columns)].copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = [_when(v) for v in out[col]]
    return out.rename(columns=columns)


def report_html(report: OpsReport) -> str:
    """The page's figures: cards, then runs, tasks, failures, freshness and watch health tables."""
    runs = _shown(report.runs, {"started_at": "started", "status": "status", "trigger": "trigger",
                                "minutes": "minutes", "error": "error"})  # fmt: skip
    tasks = _shown(report.tasks, {"task": "task", "status": "status", "started_at": "started", "minutes": "minutes"})
    fetches = _shown(report.fetch_failures, {"shop": "shop", "kind": "kind", "failures": "failures",
                                             "last_seen": "last seen"})  # fmt: skip
    deliveries = _shown(report.delivery_failures, {"channel": "channel", "failures": "failures",
                                                   "last_seen": "last seen", "last_error": "last error"})  # fmt: skip
    fresh = _shown(report.freshness, {"shop": "shop", "state": "state", "newest_price": "newest price",
                                      "age_hours": "age (hours)", "last_scrape": "last scrape",
                                      "listings": "listings"})  # fmt: skip
    stale = "".join(f"<li>{html.escape(str(s))}</li>" for s in report.freshness.query("state != 'fresh'")["shop"])
    return (
        f'<div class="pi-ops-figures" data-now="{report.now.isoformat()}">'
        f"{summary_html(report.cards())}"
        f"<h3>Freshness per shop</h3>{frame_html(fresh, 'pi-table pi-ops-freshness')}"
        f'<p class="pi-ops-note">Stale: the newest price is older than {STALE_HOURS} hours at '
        f"{_when(report.now)}.</p>"
        + (f'<ul class="pi-ops-stale">{stale}</ul>' if stale else "")
        + "<h3>Watched pages per shop</h3>"
        f"{frame_html(report.watches, 'pi-table pi-ops-watches')}"
        f"<h3>Scheduled runs</h3>{frame_html(runs, 'pi-table pi-ops-runs')}"
        f"<h3>Pipeline tasks</h3>{frame_html(tasks, 'pi-table pi-ops-tasks')}"
        f"<h3>Fetch failures, last {FAILURE_DAYS} days</h3>{frame_html(fetches, 'pi-table pi-ops-fetch-failures')}"
        f"<h3>Failed alert deliveries, last {FAILURE_DAYS} days</h3>"
        f"{frame_html(deliveries, 'pi-table pi-ops-delivery-failures')}</div>"
    )


def ops_page(engine: sa.Engine | None = None):
    """The operations page widget (notebooks/apps/ops.ipynb): navigation, the figures and a Refresh button."""
    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    return refreshing_page(
        "ops", "Operations", "Runs, failures and freshness", lambda: report_html(ops_report(engine)), OPS_CSS
    )
