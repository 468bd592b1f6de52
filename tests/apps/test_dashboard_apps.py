"""The four stakeholder apps in headless Chromium, desktop (1440x900) then phone (390x844) on the same page: the
forecasts and elasticity apps' listing detail works (`DETAILS`), filters change what is shown, Prev/Next page
through the database, CSV / Excel / PDF exports download and hold the expected rows, the page never scrolls
sideways on a phone. Screenshots: reports/screenshots/."""

import io
import re
from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from _browser import wait_charts_settled
from priceintel import config
from priceintel.apps import charts as app_charts
from priceintel.apps import views as dashboard
from priceintel.apps import widgets as app_widgets

pytestmark = pytest.mark.slow
SHOTS = config.reports_dir() / "screenshots"
DESKTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def db(pipeline_db):
    eng = sa.create_engine(pipeline_db)

    def scalar(sql: str, **params):
        with eng.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    yield scalar
    eng.dispose()


def _open(browser, base: str, app: str, view: str):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{base}/voila/render/{app}.ipynb", timeout=120_000)
    page.wait_for_selector(f"table.pi-table-{view} tbody tr", timeout=120_000)
    return page


def _rows(page) -> int:
    return int(page.inner_text(".pi-card[data-key=rows] .v").replace(",", ""))


def _changed(page, selector: str, before: str) -> str:
    page.wait_for_function("([s, b]) => document.querySelector(s) && document.querySelector(s).innerText !== b",
                           arg=[selector, before], timeout=60_000)
    return page.inner_text(selector)


def _download(page, kind: str) -> tuple[str, bytes]:
    """Click an export button, then the download link it offers; (file name, bytes)."""
    ext = {"csv": ".csv", "xlsx": ".xlsx", "pdf": ".pdf"}[kind]
    page.click(f"button.pi-export-{kind}")
    link = page.wait_for_selector(f'a.pi-download[download$="{ext}"]', timeout=90_000)
    with page.expect_download(timeout=60_000) as dl:
        link.click()
    d = dl.value
    return d.suggested_filename, open(d.path(), "rb").read()


def _phone_checks(page, app: str) -> None:
    """Desktop screenshot, then the same page at phone size: no sideways page scroll, filters stacked,
    the wide table scrolls inside its own box."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_selector(".pi-dashboard .pi-table-box tbody tr", timeout=60_000)
    page.wait_for_selector(".pi-dashboard .js-plotly-plot", timeout=60_000)
    page.wait_for_function("() => document.querySelector('.pi-dashboard .js-plotly-plot .main-svg')"
                           ".getBoundingClientRect().width > 1000", timeout=30_000)  # the chart fills the width
    wait_charts_settled(page)  # every chart done drawing, e.g. the detail after a switch of listing
    page.evaluate("() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    start, end = page.locator(".pi-filter-start").bounding_box(), page.locator(".pi-filter-end").bounding_box()
    assert abs(start["y"] - end["y"]) < 5  # side by side on a desktop
    page.screenshot(path=str(SHOTS / f"{app}-desktop.png"))
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(600)
    page.evaluate("() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    # Voila scrolls an inner panel, not the window: no page-size scroller may scroll sideways either
    overflow = page.evaluate("""() => [...document.querySelectorAll('*')].filter(e => {
        const cs = getComputedStyle(e);
        return ['auto', 'scroll'].includes(cs.overflowY) && e.clientHeight > innerHeight / 2
               && e.scrollHeight > e.clientHeight + 1; }).map(e => e.scrollWidth - e.clientWidth)""")
    assert overflow and max(overflow) <= 1, overflow
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot .main-svg')]"
                           ".every(s => s.getBoundingClientRect().width <= 390)", timeout=15_000)  # charts follow
    start, end = page.locator(".pi-filter-start").bounding_box(), page.locator(".pi-filter-end").bounding_box()
    assert end["y"] >= start["y"] + start["height"] - 1  # stacked on a phone
    assert end["x"] + end["width"] <= PHONE["width"]
    box = page.locator(".pi-dashboard .pi-table-box").first
    assert box.evaluate("b => b.scrollWidth > b.clientWidth")  # the table scrolls inside its box
    assert box.bounding_box()["width"] <= PHONE["width"]
    page.screenshot(path=str(SHOTS / f"{app}-phone.png"))


def test_price_monitor_filters_pages_exports_and_phone(apps_voila, browser, db):
    page = _open(browser, apps_voila, "price_monitor", "prices")
    table = "table.pi-table-prices"
    total = db("""SELECT count(*) FROM fact_price fp JOIN product_match pm ON pm.listing_id = fp.listing_id
                  AND pm.status IN ('auto', 'confirmed')""")
    assert _rows(page) == total
    assert "page 1 · rows 1–25" in page.inner_text(".pi-page-status")
    assert page.locator(f"{table} tbody tr").count() == 25
    assert page.locator(".pi-view-prices .js-plotly-plot .scatterlayer .trace").count() >= 2  # retailers + ours

    # keyset pages: Next shows rows 26-50, Prev brings page 1 back unchanged
    first = page.inner_text(table)
    page.click("button.pi-next")
    second = _changed(page, table, first)
    assert "page 2 · rows 26–50" in page.inner_text(".pi-page-status")
    page.click("button.pi-prev")
    assert _changed(page, table, second) == first
    page.select_option(".pi-page-size select", "50")
    # the status and the table are two widgets updated one after the other: wait for the rows themselves
    page.wait_for_function("(s) => document.querySelectorAll(s).length === 50", arg=f"{table} tbody tr",
                           timeout=60_000)
    assert "page 1 · rows 1–50" in page.inner_text(".pi-page-status")

    # filters: one retailer, then a later start date; figures and rows follow the database
    page.select_option(".pi-filter-retailers select", ["amazon"])
    page.wait_for_function("() => [...document.querySelectorAll('table.pi-table-prices tbody tr')]"
                           ".every(r => r.children[1].innerText === 'amazon')", timeout=60_000)
    amazon = db("""SELECT count(*) FROM fact_price fp JOIN product_match pm ON pm.listing_id = fp.listing_id
                   AND pm.status IN ('auto', 'confirmed') JOIN dim_listing l ON l.listing_id = fp.listing_id
                   JOIN dim_retailer r ON r.retailer_id = l.retailer_id WHERE r.retailer = 'amazon'""")
    page.wait_for_function("(n) => document.querySelector('.pi-card[data-key=rows] .v').innerText"
                           ".replace(/,/g, '') === String(n)", arg=amazon, timeout=60_000)
    lo, hi = db("SELECT min(d.date) FROM fact_price fp JOIN dim_date d USING (date_key)"), \
        db("SELECT max(d.date) FROM fact_price fp JOIN dim_date d USING (date_key)")
    start = lo + (hi - lo) / 2
    page.fill(".pi-filter-start input", start.isoformat())
    page.locator(".pi-filter-start input").press("Enter")
    expected = db("""SELECT count(*) FROM fact_price fp JOIN product_match pm ON pm.listing_id = fp.listing_id
                     AND pm.status IN ('auto', 'confirmed') JOIN dim_listing l ON l.listing_id = fp.listing_id
                     JOIN dim_retailer r ON r.retailer_id = l.retailer_id JOIN dim_date d USING (date_key)
                     WHERE r.retailer = 'amazon' AND d.date >= :s""", s=start)
    assert 0 < expected < amazon
    page.wait_for_function("(n) => document.querySelector('.pi-card[data-key=rows] .v').innerText"
                           ".replace(/,/g, '') === String(n)", arg=expected, timeout=60_000)

    # exports of exactly this view
    name, data = _download(page, "csv")
    assert name == f"prices_{start.isoformat()}_{hi.isoformat()}.csv"
    csv = pd.read_csv(io.BytesIO(data), parse_dates=["ds"])
    assert len(csv) == expected and set(csv["retailer"]) == {"amazon"}
    assert csv["ds"].min().date() >= start and {"sku", "price", "our_price", "gap_pct"} <= set(csv.columns)
    name, data = _download(page, "xlsx")
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None)
    assert list(sheets)[:1] == ["prices"] and len(sheets["prices"]) == expected
    assert pd.api.types.is_datetime64_any_dtype(sheets["prices"]["ds"])  # typed columns, not text
    assert pd.api.types.is_float_dtype(sheets["prices"]["price"])
    assert set(sheets["prices"]["retailer"]) == {"amazon"}
    name, data = _download(page, "pdf")
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 1

    # a reversed date range is refused in words, with no stale rows left on screen
    page.fill(".pi-filter-end input", (start - (hi - lo) / 4).isoformat())
    page.locator(".pi-filter-end input").press("Enter")
    page.wait_for_selector(".pi-msg-err", timeout=60_000)
    assert "after filter end" in page.inner_text(".pi-msg-err")
    page.wait_for_function("(s) => document.querySelectorAll(s).length === 0", arg=f"{table} tbody tr",
                           timeout=60_000)
    page.click("button.pi-reset")
    page.wait_for_function("(n) => document.querySelector('.pi-card[data-key=rows] .v') && document.querySelector("
                           "'.pi-card[data-key=rows] .v').innerText.replace(/,/g, '') === String(n)", arg=total,
                           timeout=60_000)
    _phone_checks(page, "price_monitor")
    page.close()


def _forecasts_detail(page) -> None:
    """The forecasts app's listing detail at 1440x900: chart with bands, backtest and models tables, the note;
    switching retailer then product changes the backtest and the note."""
    page.wait_for_selector("table.backtest tbody tr", timeout=120_000)
    page.wait_for_selector(".fc-detail .js-plotly-plot .scatterlayer .trace", timeout=60_000)
    assert page.locator(".fc-detail .js-plotly-plot .scatterlayer .trace").count() >= 4  # observed, 95%, 80%, fc
    models = page.locator("table.models").inner_text()
    for m in ("chosen", "naive", "seasonal_naive", "auto_ets"):
        assert m in models
    note = page.locator(".fc-note").inner_text()
    assert "Chosen model" in note and "P(price changes" in note
    before = page.locator("table.backtest").inner_text() + note
    retailer = page.locator(".fc-detail select").nth(1)
    retailer.select_option(index=retailer.locator("option").count() - 1)
    product = page.locator(".fc-detail select").first
    product.select_option(index=product.locator("option").count() - 1)
    page.wait_for_function(
        "(b) => (document.querySelector('table.backtest').innerText"
        " + document.querySelector('.fc-note').innerText) !== b", arg=before, timeout=60_000)


def _elasticity_detail(page) -> None:
    """The elasticity app's detail at 1440x900: estimates with intervals, the recommendation, and a what-if price
    that changes the what-if text."""
    page.wait_for_selector("table.elasticity-table tbody tr", timeout=120_000)
    page.wait_for_selector(".el-detail .js-plotly-plot .scatterlayer .trace", timeout=60_000)
    assert page.locator("table.elasticity-table tbody tr").count() >= 5
    assert "[" in page.locator("table.elasticity-table tbody tr").first.inner_text()  # intervals shown
    reco = page.locator(".recommendation").inner_text()
    assert "Recommended price: $" in reco and "elasticity" in reco
    whatif = page.locator(".whatif")
    before = whatif.inner_text()
    box = page.locator(".el-detail .widget-text input[type=number]").first
    current = float(box.input_value())
    box.fill(f"{current * 1.2:.2f}")
    box.press("Enter")
    page.wait_for_function("(b) => document.querySelector('.whatif').innerText !== b", arg=before,
                           timeout=60_000)
    assert f"{current * 1.2:.2f}" in whatif.inner_text()


#: what one page load of an app also checks at desktop size, before its filters (the phone checks then cover
#: every chart of the page, the detail's included)
DETAILS = {"forecasts": _forecasts_detail, "elasticity": _elasticity_detail}


@pytest.mark.parametrize("app,view,field,column", [
    ("forecasts", "forecasts", "retailers", "retailer"),
    ("elasticity", "elasticity", "categories", "category"),
    ("alerts", "alerts", "retailers", "retailer"),
], ids=["forecasts", "elasticity", "alerts"])
def test_app_filter_export_and_phone(apps_voila, browser, db, app, view, field, column):
    page = _open(browser, apps_voila, app, view)
    if app in DETAILS:
        DETAILS[app](page)
    before_rows = _rows(page)
    options = page.locator(f".pi-filter-{field} select option").all_inner_texts()
    assert options
    pick = options[-1]
    page.select_option(f".pi-filter-{field} select", [pick])
    page.wait_for_function("(n) => document.querySelector('.pi-card[data-key=rows] .v').innerText"
                           ".replace(/,/g, '') !== String(n)", arg=before_rows, timeout=60_000)
    rows = _rows(page)
    assert 0 < rows < before_rows
    if view == "alerts":
        assert rows == db("SELECT count(*) FROM alert WHERE retailer = :r", r=pick)
    if view == "elasticity":
        assert rows == db("""SELECT count(*) FROM elasticity_estimate e JOIN dim_product p USING (sku)
                             WHERE e.run_id = (SELECT max(run_id) FROM elasticity_run)
                             AND COALESCE(p.category, '(none)') = :c""", c=pick)
    name, data = _download(page, "csv")
    csv = pd.read_csv(io.BytesIO(data))
    assert name.startswith(view) and len(csv) == rows and set(csv[column]) == {pick}
    shown = page.locator(f"table.pi-table-{view} tbody tr").count()
    assert shown == min(rows, 25)
    _phone_checks(page, app)
    if app == "elasticity":
        assert page.locator(".recommendation").is_visible()
    if app == "forecasts":
        assert page.locator("table.backtest tbody tr").count() >= 1
    page.close()


def test_panel_logic_without_a_browser(pipeline_env, on_pipeline_db):
    """The same panel driven from Python: pages, filters, product box, bad dates, exports, formatting."""
    from priceintel.db.engine import get_engine

    eng = get_engine(on_pipeline_db)
    p = app_widgets.dashboard_panel(eng, "prices", "Prices")
    total = dashboard.summary(eng, "prices", dashboard.Filters())["rows"]
    assert p.span[0] <= p.span[1] and f'<div class="v">{total:,}</div>' in p.cards.value
    assert p.prev_btn.disabled and not p.next_btn.disabled and "rows 1–25" in p.status.value
    page1 = p.table.value
    p.next_page()
    assert "page 2 · rows 26–50" in p.status.value and p.table.value != page1 and not p.prev_btn.disabled
    p.prev_page()
    assert p.table.value == page1 and p.prev_btn.disabled
    p.prev_page()  # nothing before page 1
    assert p.table.value == page1
    label, sku = p.options["products"][0]
    p.product.value = label[:5]  # still typing: filter unchanged
    assert p._sku is None
    p.product.value = label
    assert p._sku == sku and p.filters().skus == (sku,)
    shown = pd.read_html(io.StringIO(p.table.value))[0]
    assert set(shown["sku"]) == {sku} and "listing_id" not in shown  # keys for the database stay hidden
    p.product.value = sku  # a bare SKU works too
    assert p._sku == sku
    csv = pd.read_csv(io.BytesIO(p.export_bytes("csv")[0]))
    assert len(csv) == dashboard.summary(eng, "prices", p.filters())["rows"] and set(csv["sku"]) == {sku}
    p.export("xlsx")
    assert 'download="prices_' in p.downloads.value and ".xlsx" in p.downloads.value
    p.end.value = p.start.value - timedelta(days=1)
    assert "after filter end" in p.message.value and p.table.value == "" and p.next_btn.disabled
    assert all(b.disabled for b in p.export_buttons.values())
    whole_span = p.span
    p.span = (whole_span[0], whole_span[0])  # as if the app had opened before the later days were loaded
    p.reset()
    assert p._sku is None and p.message.value == "" and f'<div class="v">{total:,}</div>' in p.cards.value
    assert p.span == whole_span and (p.start.value, p.end.value) == whole_span  # reset re-reads the data's span
    with pytest.raises(ValueError, match="csv, xlsx or pdf"):
        p.export_bytes("doc")
    for view in dashboard.VIEWS:
        assert app_charts.view_figure(view, dashboard.chart_frame(eng, view, dashboard.Filters())) is not None
    assert app_charts.view_figure("prices", pd.DataFrame()) is None
    cards = app_widgets.summary_html({"in_stock_share": 0.5, "mean_gap_pct": -1.25, "run_id": 3, "rows": 1200,
                                      "first_day": pd.Timestamp("2026-07-01"), "nested": {"x": 1}})
    assert "50%" in cards and "-1.2%" in cards and "#3" in cards and "1,200" in cards and "2026-07-01" in cards
    assert "nested" not in cards
    table = app_widgets.frame_html(pd.DataFrame({"name": ["<b>"], "price": [1.5], "ok": [True], "n": [None]}))
    assert "&lt;b&gt;" in table and '<td class="num">1.50</td>' in table and "<td>yes</td>" in table
    assert "no rows" in app_widgets.frame_html(pd.DataFrame({"a": []}))
    link = app_widgets.download_link(b"a,b\n1,2\n", "x.csv", "text/csv")
    assert 'download="x.csv"' in link and "data:text/csv;base64,YSxiCjEsMgo=" in link and "(8 B)" in link
