"""The Voila apps with two tenants in one database: a signed-in user sees their own tenant's products only, in
the page and in its CSV export (real Voila, real Chromium, the app role under row-level security). The server keeps
a warm kernel for the price monitor (Voila's kernel pool), so the users are served by kernels that were started,
imported the app and connected before anyone signed in, and learn their viewer from the ticket the server hands
them; a ticket a browser sends itself is replaced."""

from __future__ import annotations

import re
import time

import pytest

from _browser import VOILA_LOGS, login_cookies, serve_voila
from _fixtures_pg import migrated_database
from _tenants import WORLD, load_two_tenants
from priceintel.apps import auth, session

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def tenant_voila(pg_server_url):
    with migrated_database(pg_server_url, "priceintel_tenant_apps") as (url, owner):
        load_two_tenants(owner)
        for tenant in WORLD:
            auth.add_user(owner, f"{tenant}-user", PASSWORD, tenant=tenant)
        with serve_voila(DATABASE_URL=url, PRICEINTEL_APPS_POOL="0,price_monitor=1") as base:
            yield base


def _waiting(base: str) -> list[str]:
    """Ids of the warm kernels that have reached `session.wait_for_viewer` (logged by the server's query socket)."""
    return re.findall(r"warm kernel (\S+) waits for its viewer", VOILA_LOGS[base].read_text(errors="replace"))


def _served_warm(base: str) -> list[str]:
    """Ids of the kernels Voila took from the price monitor's pool for a request."""
    return re.findall(r"Using pre-heated kernel: (\S+) for price_monitor\.ipynb", VOILA_LOGS[base].read_text())


def _pool_ready(base: str, timeout: float = 240) -> str:
    """Wait until a price-monitor kernel is waiting for its viewer and not yet taken; its id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready = [k for k in _waiting(base) if k not in _served_warm(base)]
        if ready:
            return ready[-1]
        time.sleep(0.3)
    raise AssertionError("no warm kernel waits for a viewer:\n" + VOILA_LOGS[base].read_text()[-3000:])


@pytest.mark.parametrize("tenant", list(WORLD))
def test_a_user_sees_their_tenants_products_only(tenant_voila, browser, tenant):
    name, price, own = WORLD[tenant]
    other = next(WORLD[t] for t in WORLD if t != tenant)
    kernel = _pool_ready(tenant_voila)  # a warm kernel has imported the app and waits for its viewer
    page = browser.new_page(anonymous=True, viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page.context.add_cookies(login_cookies(tenant_voila, f"{tenant}-user", PASSWORD))
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
    assert _served_warm(tenant_voila)[-1] == kernel  # the page came from that kernel, not one started for it


def test_a_ticket_the_browser_sends_is_replaced_by_the_servers(tenant_voila, browser):
    """A valid ticket of a globex user, sent by an acme user's browser (as if stolen): the server writes the
    signed-in user's own ticket over it, so the page shows acme's products."""
    acme, globex = WORLD["acme"], WORLD["globex"]
    stolen = session.viewer_ticket("globex-user", 1, 1, "globex")
    # the price monitor from the pool (its ticket sent over Voila's socket), the alerts from a kernel started
    # for the page (its ticket in the kernel's environment)
    for app, table, shown, hidden in (("price_monitor", "prices", acme[0], globex[0]),
                                      ("alerts", "alerts", "acme price fell", "globex price fell")):
        if app == "price_monitor":
            _pool_ready(tenant_voila)
        page = browser.new_page(anonymous=True, viewport={"width": 1440, "height": 900},
                                extra_http_headers={session.VIEWER_HEADER: stolen})
        page.context.add_cookies(login_cookies(tenant_voila, "acme-user", PASSWORD))
        page.goto(f"{tenant_voila}/voila/render/{app}.ipynb", timeout=300_000)
        page.wait_for_selector(f"table.pi-table-{table} tbody tr", timeout=180_000)
        text = page.inner_text("body")
        assert shown in text and hidden not in text and "globex" not in text, app
        page.close()


def test_the_page_holds_its_first_rows_and_the_query_socket_wants_a_kernel(tenant_voila):
    """The price monitor's HTML itself carries its first rows (the apps' template), before any script runs; the
    socket warm kernels read their viewer from refuses a client without the kernel's proof."""
    import asyncio

    import requests
    from tornado.websocket import websocket_connect

    _pool_ready(tenant_voila)
    cookies = {c["name"]: c["value"] for c in login_cookies(tenant_voila, "acme-user", PASSWORD)}
    page = requests.get(f"{tenant_voila}/voila/render/price_monitor.ipynb", cookies=cookies, timeout=300).text
    first = page[page.index('<template class="pi-first-paint-src">'):]
    first = first[:first.index("</template>")]
    assert "pi-first-paint-table" in first and "<tbody><tr>" in first.replace("\n", "")
    assert WORLD["acme"][0] in first and "globex" not in first  # acme's product, none of globex's

    async def refused(query: str) -> int | None:
        ws = f"ws{tenant_voila[4:]}/voila/query/{'1' * 8}-2222-3333-4444-{'5' * 12}{query}"
        conn = await websocket_connect(ws)
        assert await conn.read_message() is None  # closed without a word
        return conn.close_code

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (Playwright's runs in this thread)
        assert pool.submit(asyncio.run, refused("")).result() == 1008
        assert pool.submit(asyncio.run, refused("?proof=" + "0" * 64)).result() == 1008
