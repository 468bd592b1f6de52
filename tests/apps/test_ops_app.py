"""The operations page (apps.ops, notebooks/apps/ops.ipynb): runs, failures, freshness and watch health per shop.

Without a browser, on a database of two tenants read as the app role in a kernel bound to one: the page's data
(a failed run, fetch failures by shop and kind, a failed alert delivery, a fresh and a stale shop, watch statuses)
and that another tenant sees none of it. In real Voila + headless Chromium on the apps' shared server after the
demo pipeline run: the demo shops' freshness and the run's tasks, desktop then phone (reports/screenshots/ops-*)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from _browser import login_cookies
from _fixtures_apps import app_notebook_code
from _fixtures_pg import migrated_database
from _tenants import load_two_tenants
from priceintel import config
from priceintel.apps import landing
from priceintel.apps import ops as ops_app
from priceintel.apps.serve import app_database_url
from priceintel.db import load, tenancy
from priceintel.db.engine import get_engine

SHOTS = config.reports_dir() / "screenshots"
#: the page's "now": 20 hours after acme's amazon price, 60 after its walmart price
NOW = datetime(2026, 7, 2, 4, 0, tzinfo=UTC)


def _seed(owner) -> None:
    """acme: a failed and a good scheduled run, two pipeline tasks, fetch failures, a failed delivery, a second shop
    whose newest price is 60 hours old, and watches in three states."""
    with tenancy.scope("acme"), owner.begin() as conn:
        x = lambda sql, **p: conn.execute(sa.text(sql), p)  # noqa: E731
        x("""INSERT INTO schedule_run (started_at, finished_at, status, trigger, error) VALUES
             ('2026-07-01 06:00Z', '2026-07-01 06:12Z', 'success', 'cron', NULL),
             ('2026-07-02 03:00Z', '2026-07-02 03:01Z', 'failed', 'cron', 'scrape: shop walmart refused')""")
        x("""INSERT INTO pipeline_run (started_at, finished_at, status, task) VALUES
             ('2026-07-02 03:00Z', '2026-07-02 03:00:30Z', 'success', 'scrape'),
             ('2026-07-02 03:00:30Z', '2026-07-02 03:01Z', 'failed', 'clean')""")
        x("""INSERT INTO scrape_error (url, retailer, kind, message, created_at) VALUES
             ('https://w.example/1', 'walmart', 'blocked', 'captcha', '2026-07-02 03:00Z'),
             ('https://w.example/2', 'walmart', 'blocked', 'captcha', '2026-07-02 03:00Z'),
             ('https://a.example/9', 'amazon', 'timeout', 'slow', '2026-07-01 06:05Z'),
             ('https://a.example/8', 'amazon', 'timeout', 'old', '2026-06-01 06:05Z')""")
        x("""INSERT INTO alert_delivery (channel, kind, status, attempts, error, created_at)
             VALUES ('pager', 'alert', 'failed', 4, 'apprise channel ''pager'' (json://…) failed', '2026-07-01 07:00Z')""")
        x("""INSERT INTO dim_retailer (retailer, name) VALUES ('walmart', 'Walmart')""")
        x("""INSERT INTO dim_listing (retailer_id, item_id, url, title)
             SELECT retailer_id, 'W1', 'https://w.example/1', 'k' FROM dim_retailer WHERE retailer = 'walmart'""")
        load.ensure_dates(conn, "2026-06-29", "2026-06-29")
        x("""INSERT INTO fact_price (listing_id, date_key, observed_at, price, currency)
             SELECT listing_id, 20260629, '2026-06-29 16:00Z', 9.5, 'USD' FROM dim_listing WHERE item_id = 'W1'""")
        x("""INSERT INTO watch (retailer, url, status) VALUES ('amazon', 'https://a.example/B001', 'ok'),
             ('walmart', 'https://w.example/1', 'blocked'), ('walmart', 'https://w.example/2', 'failing'),
             ('walmart', 'https://w.example/3', 'ok')""")


@pytest.fixture(scope="module")
def world(pg_server_url) -> Iterator[dict]:
    with migrated_database(pg_server_url, "priceintel_ops_app") as (url, owner):
        load_two_tenants(owner)
        _seed(owner)
        yield {"owner": owner, "app": get_engine(app_database_url(url))}


@pytest.fixture()
def bound() -> Iterator[None]:
    yield
    tenancy.bind(None)


def test_the_report_shows_runs_failures_freshness_and_watches_of_the_tenant(world, bound):
    tenancy.bind("acme")  # an app kernel of an acme user: the app role, acme's rows only
    report = ops_app.ops_report(world["app"], now=NOW)
    assert list(report.runs["status"]) == ["failed", "success"] and list(report.runs["minutes"]) == [1.0, 12.0]
    assert list(report.tasks["task"]) == ["clean", "scrape"]
    fetches = report.fetch_failures.set_index(["shop", "kind"])["failures"].to_dict()
    assert fetches == {("walmart", "blocked"): 2, ("amazon", "timeout"): 1}  # June's failure is too old
    (delivery,) = report.delivery_failures.to_dict("records")
    assert delivery["channel"] == "pager" and delivery["failures"] == 1 and "json://…" in delivery["last_error"]
    fresh = report.freshness.set_index("shop")
    assert fresh.loc["amazon", ["state", "age_hours"]].tolist() == ["fresh", 20.0]
    assert fresh.loc["walmart", ["state", "age_hours"]].tolist() == ["stale", 60.0]
    watches = report.watches.set_index("shop")
    assert watches.loc["walmart", ["ok", "failing", "blocked", "gone", "total"]].tolist() == [1, 1, 1, 0, 3]
    assert watches.loc["amazon", ["ok", "total"]].tolist() == [1, 1]
    cards = report.cards()
    assert cards == {"last_run": "2026-07-02 03:00 UTC", "last_run_status": "failed", "stale_shops": 1,
                     "failing_watches": 2, "fetch_failures": 3, "delivery_failures": 1}  # fmt: skip
    page = ops_app.report_html(report)
    for text in ("pi-ops-freshness", "stale", "walmart", "scrape: shop walmart refused", "pager", "blocked"):
        assert text in page
    assert '<ul class="pi-ops-stale"><li>walmart</li></ul>' in page

    tenancy.bind("globex")  # another tenant: none of acme's runs, failures, shops or watches
    other = ops_app.ops_report(world["app"], now=NOW)
    assert other.runs.empty and other.tasks.empty and other.fetch_failures.empty and other.watches.empty
    assert other.delivery_failures.empty and list(other.freshness["shop"]) == ["amazon"]
    assert other.cards()["last_run"] == "never" and "walmart" not in ops_app.report_html(other)
    assert ops_app.freshness_state(None, NOW) == (None, "never")


def test_the_widget_refreshes_and_the_landing_page_lists_the_app(world, bound):
    tenancy.bind("acme")
    widget = ops_app.ops_page(world["app"])
    body = next(c for c in widget.children if "pi-ops-body" in c._dom_classes)
    refresh = next(c for c in widget.children[-1].children if "pi-ops-refresh" in c._dom_classes)
    assert "scrape: shop walmart refused" in body.value
    with tenancy.scope("acme"), world["owner"].begin() as conn:
        conn.execute(sa.text("INSERT INTO schedule_run (started_at, status, trigger) VALUES (now(), 'running', 'x')"))
    refresh.click()
    assert "running" in body.value
    assert ("Operations", "ops.ipynb") == next(a[:2] for a in landing.APPS if a[1] == "ops.ipynb")
    code = app_notebook_code("ops.ipynb")
    assert len(code) == 1 and "ops_page()" in "".join(code[0]["source"])


@pytest.mark.slow
def test_the_page_after_the_demo_run_desktop_then_phone(apps_voila, pipeline_db, browser):
    page = browser.new_page(anonymous=True, viewport={"width": 1440, "height": 900})
    page.context.add_cookies(login_cookies(apps_voila))
    page.goto(f"{apps_voila}/voila/render/ops.ipynb", timeout=120_000)
    page.wait_for_selector("table.pi-ops-freshness tbody tr", timeout=120_000)
    with get_engine(pipeline_db).connect() as conn:
        shops = conn.execute(sa.text("SELECT retailer FROM dim_retailer ORDER BY retailer")).scalars().all()
    rows = page.locator("table.pi-ops-freshness tbody tr")
    assert rows.count() == len(shops) >= 3
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == shops
    assert page.locator("table.pi-ops-tasks tbody tr").count() >= 1
    assert page.inner_text(".pi-card[data-key=last_run_status] .v") in ("success", "failed", "running")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ops-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= 391  # no sideways page scroll
    for box in page.locator(".pi-ops .pi-table-box").all():
        assert box.bounding_box()["width"] <= 390  # a wide table scrolls inside its own box
    page.screenshot(path=str(SHOTS / "ops-phone.png"), full_page=True)
    page.close()
