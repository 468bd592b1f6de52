"""The Voila apps with two tenants in one database: a signed-in user sees their own tenant's products only, in
the page and in its CSV export (real Voila, real Chromium, the app role under row-level security)."""

from __future__ import annotations

import pytest

from _browser import login_cookies, serve_voila
from _fixtures_pg import migrated_database
from _tenants import WORLD, load_two_tenants
from priceintel.apps import auth

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def tenant_voila(pg_server_url):
    with migrated_database(pg_server_url, "priceintel_tenant_apps") as (url, owner):
        load_two_tenants(owner)
        for tenant in WORLD:
            auth.add_user(owner, f"{tenant}-user", PASSWORD, tenant=tenant)
        with serve_voila(DATABASE_URL=url) as base:
            yield base


@pytest.mark.parametrize("tenant", list(WORLD))
def test_a_user_sees_their_tenants_products_only(tenant_voila, browser, tenant):
    name, price, own = WORLD[tenant]
    other = next(WORLD[t] for t in WORLD if t != tenant)
    page = browser.new_page(anonymous=True, viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page.context.add_cookies(login_cookies(tenant_voila, f"{tenant}-user", PASSWORD))
    # the module's own Voila server: its first kernel pays the imports (slow on a busy 2-core machine)
    page.goto(f"{tenant_voila}/voila/render/price_monitor.ipynb", timeout=300_000)
    page.wait_for_selector("table.pi-table-prices tbody tr", timeout=180_000)
    text = page.inner_text("body")
    assert name in text and other[0] not in text and other[2] not in text
    page.click("button.pi-export-csv")
    link = page.wait_for_selector('a.pi-download[download$=".csv"]', timeout=90_000)
    with page.expect_download(timeout=60_000) as dl:
        link.click()
    exported = open(dl.value.path(), encoding="utf-8").read()
    assert name in exported and other[0] not in exported
    page.close()
