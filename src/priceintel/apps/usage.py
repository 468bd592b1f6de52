"""The usage page (notebooks/apps/usage.ipynb), for admins: the signed-in user's tenant, its plan and the plan's
limits, today's use against each limit and the metered usage of the last days (`db.usage`), as a table and a bar
chart of API requests per day.

Everything is read through the kernel's engine, so an app kernel (the app role, bound to the user's tenant) sees
its own tenant's plan and usage only. A user who is not an admin gets a short message and none of the figures;
a kernel without a signed-in user outside the apps (nbval, JupyterLab) shows the page, as the other apps do.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from priceintel.apps import auth, session
from priceintel.apps.svg import svg_chart
from priceintel.apps.widgets import frame_html, refreshing_page, summary_html
from priceintel.db import usage

#: what a user who is not an admin sees instead of the figures
ADMINS_ONLY = "This page is for admins: ask an admin of your team for the plan and its usage."
#: days of usage the page shows
DAYS = 30
#: (Plan field, what it limits) in the order of the limits table
LIMITS = (
    ("products", "tracked products"),
    ("watches", "watched URLs"),
    ("checks_per_day", "page checks a day"),
    ("requests_per_minute", "API requests a minute"),
)
#: the day table's columns: usage_frame column -> heading
DAY_COLUMNS = {
    "day": "day",
    "requests": "requests",
    "exports": "exports",
    "pages_fetched": "pages fetched",
    "products": "products",
    "watches": "watches",
}

USAGE_CSS = """<style>
.pi-usage .pi-usage-chart { width: 100%; max-width: 100%; overflow-x: auto; margin: 6px 0; }
.pi-usage .pi-usage-chart svg { display: block; height: auto; min-width: 560px; }
.pi-usage .pi-usage-note { color: #616e7c; font-size: 12px; margin: 4px 0 0; }
.pi-usage .pi-usage-refused { padding: 10px 14px; border-radius: 8px; background: #fdf6e3; margin: 10px 0; }
</style>"""


@dataclass(frozen=True)
class UsageReport:
    """What the usage page shows: the tenant, its plan, today's use and the last days' rows (newest first)."""

    tenant: str | None
    plan: usage.Plan
    products: int
    watches: int
    today: dict[str, int]  # requests, exports, pages_fetched of today (UTC)
    checks_left: int | None
    days: pd.DataFrame
    day: date  # today (UTC) when the report was read

    def used(self) -> dict[str, int]:
        """The use measured against each limit: products and active watches now, today's pages and requests."""
        return {
            "products": self.products,
            "watches": self.watches,
            "checks_per_day": self.today["pages_fetched"],
            "requests_per_minute": self.today["requests"],
        }


def usage_report(engine: sa.Engine, days: int = DAYS, today: date | None = None) -> UsageReport:
    """The current tenant's plan, today's use and its usage of the last `days` days (the page's data)."""
    today = today or datetime.now(UTC).date()
    with engine.connect() as conn:
        tenant = conn.execute(
            sa.text("SELECT name FROM tenant WHERE tenant_id = (SELECT priceintel_tenant())")
        ).scalar()
        plan = usage.plan_of(conn)
        counts = conn.execute(
            sa.text("SELECT (SELECT count(*) FROM dim_product) AS products,"
                    " (SELECT count(*) FROM watch WHERE active) AS watches")
        ).one()  # fmt: skip
        row = conn.execute(
            sa.text("SELECT requests, exports, pages_fetched FROM tenant_usage WHERE day = :d"), {"d": today}
        ).first()
    used = {k: int(getattr(row, k) or 0) if row is not None else 0 for k in ("requests", "exports", "pages_fetched")}
    left = None if plan.checks_per_day is None else max(0, plan.checks_per_day - used["pages_fetched"])
    frame = usage.usage_frame(engine, days)
    for col in ("requests", "exports", "pages_fetched", "products", "watches"):
        frame[col] = frame[col].astype("Int64")
    return UsageReport(tenant, plan, int(counts.products), int(counts.watches), used, left, frame, today)


def _number(v: Any) -> str:
    """1,234 (or 'no limit' for None; a rate keeps its decimals)."""
    if v is None:
        return "no limit"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,g}"


def limits_frame(report: UsageReport) -> pd.DataFrame:
    """One row per limit of the plan: what the plan allows, what is used (now or today) and what is left."""
    used, rows = report.used(), []
    for key, label in LIMITS:
        limit = getattr(report.plan, key)
        n = used[key]
        if key == "requests_per_minute":  # a rate: today's requests beside it, nothing "left" to count
            rows.append({"limit": label, "plan allows": _number(limit), "used": f"{n:,} today", "left": "—"})
            continue
        when = "today" if key == "checks_per_day" else "now"
        share = f" ({n / limit:.0%})" if limit else ""
        left = "—" if limit is None else f"{max(0, limit - n):,}"
        rows.append({"limit": label, "plan allows": _number(limit), "used": f"{n:,} {when}{share}", "left": left})
    return pd.DataFrame(rows)


def requests_chart(report: UsageReport, days: int = DAYS) -> str:
    """An SVG bar chart of API requests per day over the last `days` days up to the report's day (0 on days
    without usage); the bars are labelled with the day of the month, the title names the first and last day."""
    span = [report.day - timedelta(days=k) for k in range(days - 1, -1, -1)]
    stored = report.days
    per_day: dict[date, int] = {}
    if len(stored):
        requests = stored["requests"].fillna(0).astype(int)
        per_day = dict(zip(pd.to_datetime(stored["day"]).dt.date, requests))
    data = pd.DataFrame({"day": [d.strftime("%d") for d in span], "requests": [per_day.get(d, 0) for d in span]})
    title = f"API requests per day, {span[0]:%Y-%m-%d} to {span[-1]:%Y-%m-%d} (UTC)"
    return svg_chart(data, "day", "requests", title=title, y_label="requests", kind="bar", width=760, height=240)


def report_html(report: UsageReport, days: int = DAYS) -> str:
    """The page's figures: tenant and plan cards, the limits table, the days table and the requests chart."""
    plan = report.plan
    cards = summary_html(
        {
            "tenant": report.tenant or "(no tenant)",
            "plan": plan.name,
            "requests_today": report.today["requests"],
            "exports_today": report.today["exports"],
            "pages_fetched_today": report.today["pages_fetched"],
            "checks_left_today": "no limit" if report.checks_left is None else report.checks_left,
        }
    )
    table = report.days[list(DAY_COLUMNS)].rename(columns=DAY_COLUMNS)
    return (
        f'<div class="pi-usage-figures" data-tenant="{html.escape(report.tenant or "")}" '
        f'data-plan="{html.escape(plan.name)}">'
        f"{cards}<h3>Plan {html.escape(plan.name)}: limits and today's use</h3>"
        f"{frame_html(limits_frame(report), 'pi-table pi-usage-limits')}"
        '<p class="pi-usage-note">Products and watched URLs are counted now; page checks and requests today (UTC). '
        "A bigger plan allows more: <code>priceintel tenants plan NAME --plan P</code>.</p>"
        f"<h3>The last {days} days</h3>"
        f'<div class="pi-usage-chart">{requests_chart(report, days)}</div>'
        f"{frame_html(table, 'pi-table pi-usage-days')}</div>"
    )


def refusal(engine: sa.Engine) -> str | None:
    """None when this kernel may show the usage page, else what to show instead: admins only; a kernel
    without an app user outside the apps (a notebook, nbval) may."""
    name = session.user()
    if name is not None:
        account = auth.account_of(engine, name)
        if account is not None and account.role != "admin":
            return ADMINS_ONLY
    return session.may_change(engine)  # no user in an app kernel, a removed user, an ended session: say so


def page_html(engine: sa.Engine, days: int = DAYS) -> str:
    """The page's content for this kernel's user: the figures, or the refusal (and nothing of the figures)."""
    refused = refusal(engine)
    if refused:
        return f'<div class="pi-usage-refused pi-msg-err">{html.escape(refused)}</div>'
    return report_html(usage_report(engine, days), days)


def usage_page(engine: sa.Engine | None = None, days: int = DAYS):
    """The usage page widget (notebooks/apps/usage.ipynb): navigation, the figures and a Refresh button (the
    role is checked again on each refresh: a lowered role applies at once)."""
    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    return refreshing_page("usage", "Usage", "Plan and usage", lambda: page_html(engine, days), USAGE_CSS)
