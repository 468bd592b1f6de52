"""The usage page (apps.usage, notebooks/apps/usage.ipynb) and the metering of the apps' exports.

Without a browser, on a small database of two tenants read as the app role in a kernel bound to one (as an app
kernel does): the page's data, who may see it, and an export counted in `tenant_usage` (a failure to count never
breaks the download). In real Voila + headless Chromium on the apps' shared server: an admin of a tenant on the
pro plan sees the plan, its limits and the seeded usage rows, desktop then phone; a viewer sees that the page is
for admins and none of the figures. Screenshots: reports/screenshots/usage-*.png."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from _browser import login_cookies
from _fixtures_apps import app_notebook_code
from _fixtures_pg import migrated_database
from _tenants import load_two_tenants
from priceintel import config
from priceintel.apps import auth, landing, session
from priceintel.apps import usage as usage_app
from priceintel.apps.serve import app_database_url
from priceintel.apps.widgets import DashboardPanel
from priceintel.db import tenancy, usage
from priceintel.db.engine import get_engine

PASSWORD = "correct horse battery"
SHOTS = config.reports_dir() / "screenshots"
TODAY = datetime.now(UTC).date()
#: days ago -> (requests, exports, pages fetched) seeded into the tenant's usage
SEEDED = {0: (5, 0, 120), 1: (7, 2, 30), 3: (12, 1, 45)}


def _seed(owner, tenant: str) -> None:
    """The tenant on the pro plan with SEEDED usage, an admin and a viewer (`<tenant>-admin`, `<tenant>-viewer`)."""
    tenancy.set_plan(owner, tenant, "pro")
    with tenancy.scope(tenant):
        for ago, (requests, exports, pages) in SEEDED.items():
            usage.record(owner, requests=requests, exports=exports, pages_fetched=pages,
                         day=TODAY - timedelta(days=ago))
    auth.add_user(owner, f"{tenant}-admin", PASSWORD, role="admin", tenant=tenant, replace=True)
    auth.add_user(owner, f"{tenant}-viewer", PASSWORD, role="viewer", tenant=tenant, replace=True)


@pytest.fixture(scope="module")
def world(pg_server_url) -> Iterator[dict]:
    """Tenants acme (pro, seeded usage, an admin and a viewer) and globex; the owner's and the app role's engines."""
    with migrated_database(pg_server_url, "priceintel_usage_app") as (url, owner):
        load_two_tenants(owner)
        _seed(owner, "acme")
        yield {"owner": owner, "app": get_engine(app_database_url(url))}


@pytest.fixture()
def kernel(monkeypatch) -> Iterator[None]:
    """A kernel without a signed-in user or tenant afterwards, whatever the test signed in."""
    monkeypatch.delenv(session.APP_KERNEL_ENV, raising=False)
    yield
    session._USER.clear()
    session._SESSION.clear()
    tenancy.bind(None)


def test_the_report_holds_the_tenants_plan_today_and_last_days(world, kernel):
    tenancy.bind("acme")  # an app kernel of an acme user: the app role, acme's rows only
    report = usage_app.usage_report(world["app"])
    assert report.tenant == "acme" and report.plan == usage.PLANS["pro"]
    assert (report.products, report.watches) == (2, 0)
    assert report.today == {"requests": 5, "exports": 0, "pages_fetched": 120}
    assert report.checks_left == 20_000 - 120
    assert [d.isoformat() for d in report.days["day"]] == [
        (TODAY - timedelta(days=ago)).isoformat() for ago in sorted(SEEDED)
    ]
    assert list(report.days["requests"]) == [SEEDED[ago][0] for ago in sorted(SEEDED)]
    limits = usage_app.limits_frame(report).set_index("limit")
    assert limits.loc["tracked products"].tolist() == ["5,000", "2 now (0%)", "4,998"]
    assert limits.loc["watched URLs"].tolist() == ["10,000", "0 now (0%)", "10,000"]
    assert limits.loc["page checks a day"].tolist() == ["20,000", "120 today (1%)", "19,880"]
    assert limits.loc["API requests a minute"].tolist() == ["600", "5 today", "—"]
    page = usage_app.report_html(report)
    assert 'data-tenant="acme"' in page and 'data-plan="pro"' in page and "pages fetched" in page
    chart = usage_app.requests_chart(report)
    assert chart.count("<rect") == usage_app.DAYS  # a bar a day, 0 on days without usage
    assert f"{TODAY:%d}: 5</title>" in chart and f"{TODAY - timedelta(days=2):%d}: 0</title>" in chart
    assert f"{TODAY - timedelta(days=usage_app.DAYS - 1):%Y-%m-%d} to {TODAY:%Y-%m-%d}" in chart

    tenancy.bind("globex")  # another tenant: its own (free) plan and no usage at all
    other = usage_app.usage_report(world["app"])
    assert (other.tenant, other.plan.name, other.checks_left, len(other.days)) == ("globex", "free", 500, 0)
    assert "globex" in usage_app.report_html(other) and "no rows" in usage_app.report_html(other)
    tenancy.bind(None)
    default = usage_app.limits_frame(usage_app.usage_report(world["owner"]))  # the owner's default: enterprise
    assert set(default["plan allows"]) == {"no limit"} and set(default["left"]) == {"—"}


def test_admins_only_and_a_kernel_without_a_user(world, kernel, monkeypatch):
    app = world["app"]
    session.sign_in_kernel("acme-viewer", tenant="acme")
    assert usage_app.refusal(app) == usage_app.ADMINS_ONLY
    shown = usage_app.page_html(app)
    assert "for admins" in shown and "pi-usage-figures" not in shown and "20,000" not in shown
    auth.set_role(world["owner"], "acme-viewer", "analyst")
    try:
        assert usage_app.refusal(app) == usage_app.ADMINS_ONLY  # analysts neither
    finally:
        auth.set_role(world["owner"], "acme-viewer", "viewer")
    session.sign_in_kernel("acme-admin", tenant="acme")
    assert usage_app.refusal(app) is None and "20,000" in usage_app.page_html(app)
    widget = usage_app.usage_page(app)
    body = next(c for c in widget.children if "pi-usage-body" in c._dom_classes)
    refresh = next(c for c in widget.children[-1].children if "pi-usage-refresh" in c._dom_classes)
    assert "19,880" in body.value
    auth.set_role(world["owner"], "acme-admin", "viewer")
    try:
        refresh.click()  # a lowered role applies at the next refresh: the figures go
        assert "for admins" in body.value and "19,880" not in body.value
    finally:
        auth.set_role(world["owner"], "acme-admin", "admin")
    refresh.click()
    assert "19,880" in body.value
    session._USER.clear()
    tenancy.bind(None)
    assert usage_app.refusal(world["owner"]) is None  # a notebook (nbval, JupyterLab): shown
    monkeypatch.setenv(session.APP_KERNEL_ENV, "1")  # an app kernel nobody signed in to: nothing shown
    assert "no signed-in user" in usage_app.page_html(app)


def _exports_today(engine) -> int:
    frame = usage.usage_frame(engine, 1)
    return int(frame["exports"].sum()) if len(frame) else 0


def test_an_apps_export_is_metered_and_a_failure_to_meter_never_breaks_it(world, kernel, monkeypatch, caplog):
    app = world["app"]
    tenancy.bind("globex")  # globex has no usage yet: its export is the first of the day
    panel = DashboardPanel(app, "prices", "Prices")
    panel.export("csv")
    assert 'class="pi-download"' in panel.downloads.value
    assert _exports_today(app) == 1
    with tenancy.scope("acme"):
        assert _exports_today(app) == SEEDED[0][1]  # acme's count is its own

    def broken(*_a, **_k):
        raise RuntimeError("tenant_usage is gone")

    with monkeypatch.context() as m, caplog.at_level(logging.WARNING, logger="priceintel.apps.widgets"):
        m.setattr(usage, "record", broken)
        panel.downloads.value = ""
        panel.export("xlsx")
    assert 'class="pi-download"' in panel.downloads.value and 'download="prices' in panel.downloads.value
    assert "could not record an export" in caplog.text
    assert _exports_today(app) == 1  # not counted, but downloaded


def test_the_landing_page_lists_the_usage_app_and_its_notebook_calls_the_page():
    assert ("Usage", "usage.ipynb") == next(a[:2] for a in landing.APPS if a[1] == "usage.ipynb")
    code = app_notebook_code("usage.ipynb")
    assert len(code) == 1 and "usage_page()" in "".join(code[0]["source"])


# --- the page in Voila + headless Chromium (the apps' shared server, a tenant of its own) ----------------------

TENANT = "usage-pro"


@pytest.fixture(scope="module")
def usage_voila(apps_voila, pipeline_db) -> str:
    """The shared apps server, its database holding tenant usage-pro (pro plan, seeded usage, admin, viewer)."""
    owner = get_engine(pipeline_db)
    tenancy.ensure_tenant(owner, TENANT)
    _seed(owner, TENANT)
    return apps_voila


def _open(browser, base: str, user: str, viewport: dict):
    page = browser.new_page(anonymous=True, viewport=viewport)
    page.context.add_cookies(login_cookies(base, user, PASSWORD))
    page.goto(f"{base}/voila/render/usage.ipynb", timeout=120_000)
    return page


@pytest.mark.slow
def test_an_admin_sees_the_plan_limits_and_usage_desktop_then_phone(usage_voila, browser):
    page = _open(browser, usage_voila, f"{TENANT}-admin", {"width": 1440, "height": 900})
    page.wait_for_selector("table.pi-usage-days tbody tr", timeout=120_000)
    assert page.inner_text(".pi-card[data-key=tenant] .v") == TENANT
    assert page.inner_text(".pi-card[data-key=plan] .v") == "pro"
    assert page.inner_text(".pi-card[data-key=checks_left_today] .v") == "19,880"
    limits = page.inner_text("table.pi-usage-limits")
    for text in ("tracked products", "5,000", "10,000", "page checks a day", "20,000", "120 today", "600"):
        assert text in limits
    rows = page.locator("table.pi-usage-days tbody tr")
    assert rows.count() == len(SEEDED)
    assert rows.first.locator("td").all_inner_texts()[:4] == [TODAY.isoformat(), "5", "0", "120"]
    assert page.locator(".pi-usage-chart svg rect").count() == usage_app.DAYS
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "usage-desktop.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= 391  # no sideways page scroll
    overflow = page.evaluate("""() => [...document.querySelectorAll('*')].filter(e => {
        const cs = getComputedStyle(e);
        return ['auto', 'scroll'].includes(cs.overflowY) && e.clientHeight > innerHeight / 2
               && e.scrollHeight > e.clientHeight + 1; }).map(e => e.scrollWidth - e.clientWidth)""")
    assert not overflow or max(overflow) <= 1, overflow  # nor does Voila's inner scroller
    for box in page.locator(".pi-usage .pi-table-box").all():
        assert box.bounding_box()["width"] <= 390  # a wide table scrolls inside its own box
    chart = page.locator(".pi-usage-chart")
    assert chart.bounding_box()["width"] <= 390  # the chart keeps readable labels and scrolls in its own box
    assert chart.evaluate("b => b.scrollWidth > b.clientWidth")
    page.screenshot(path=str(SHOTS / "usage-phone.png"), full_page=True)
    page.close()


@pytest.mark.slow
def test_a_viewer_is_told_the_page_is_for_admins(usage_voila, browser):
    page = _open(browser, usage_voila, f"{TENANT}-viewer", {"width": 390, "height": 844})
    page.wait_for_selector(".pi-usage-refused", timeout=120_000)
    assert "for admins" in page.inner_text(".pi-usage-refused")
    assert page.locator(".pi-usage-figures, table.pi-usage-limits, table.pi-usage-days, .pi-card").count() == 0
    body = page.inner_text("body")
    assert "20,000" not in body and "19,880" not in body and TENANT not in body
    page.close()
