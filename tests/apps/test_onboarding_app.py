"""The onboarding app: imports of uploaded files, the one-URL preview on real loopback servers (the replay web of
saved pages and a hostile shop), watch health, and the page in Voila + headless Chromium (desktop and phone)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import sqlalchemy as sa

from _browser import serve_voila
from _receivers import serve_handler
from priceintel import config
from priceintel.apps import landing
from priceintel.apps.onboarding import (
    HEALTH_COLUMNS,
    OnboardingApp,
    import_html,
    preview_html,
    preview_url,
    run_import,
    safe_filename,
    status_counts,
    watch_health,
)
from priceintel.demo.replay import serve_pages
from priceintel.ingest import add_watch
from priceintel.scrape import Fetcher, RawArchive

PAGES = config.shared_data_dir() / "pages"
needs_pages = pytest.mark.skipif(not (PAGES / "truth.csv").is_file(), reason=f"no saved pages at {PAGES}")
#: the amazon.com page of the replay web: price 87.11 (truth.csv)
AMAZON_PAGE = "01efbb747904557e90dcb56d1f255a4034d5206c796539e2ce4d9dd68672c098"
GOOD = b"id,title,price\nA1,Blender,15.00 USD\nA2,Toaster,20 USD\n"
#: row 3 has no title, row 4 an unparsable price
BAD = b"id,title,price\nA1,Blender,15.00 USD\nA2,,3 USD\nA3,Kettle <b>,abc\nA4,Kettle,9.99 USD\n"


def _skus(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT sku FROM dim_product ORDER BY sku")).scalars())


# --- imports -----------------------------------------------------------------------------------------------


def test_good_catalogue_then_the_same_file_again(clean_db, tmp_path):
    res = run_import(clean_db, "catalog", "catalog.csv", GOOD, archive_root=tmp_path)
    assert res["ok"] and res["status"] == "success"
    assert res["counts"] == {"total": 2, "inserted": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert res["errors"].empty and res["rejects_csv"] is None and res["warnings"] == []
    assert res["summary"].startswith("catalog.csv: 2 row(s): 2 inserted") and "/tmp" not in res["summary"]
    assert (tmp_path / "imports" / "catalog").is_dir() and any(  # archived under the upload's own name
        p.name.endswith("-catalog.csv") for p in (tmp_path / "imports" / "catalog").iterdir()
    )
    assert _skus(clean_db) == ["A1", "A2"]
    again = run_import(clean_db, "catalog", "catalog.csv", GOOD, archive_root=tmp_path)
    assert again["counts"]["unchanged"] == 2 and again["counts"]["inserted"] == 0
    with clean_db.connect() as conn:  # each upload is kept where its import_run row says
        paths = conn.exec_driver_sql("SELECT path FROM import_run ORDER BY import_run_id").scalars().all()
    assert len(paths) == 2 and all(Path(p).read_bytes() == GOOD for p in paths) and paths[0] != paths[1]
    page = import_html(again)
    assert 'data-key="unchanged"' in page and "status-success" in page
    # a price without currency is rejected unless the page's default currency is given
    plain = b"id,title,price\nB1,Kettle,12.50\n"
    assert run_import(clean_db, "catalog", "c.csv", plain, archive_root=tmp_path)["counts"]["rejected"] == 1
    res = run_import(clean_db, "catalog", "c.csv", plain, currency="usd", archive_root=tmp_path)
    assert res["status"] == "success" and "B1" in _skus(clean_db)


def test_bad_rows_give_the_errors_table_and_the_rejects_csv(clean_db, tmp_path):
    res = run_import(clean_db, "catalog", "../../up<load>.csv", BAD, archive_root=tmp_path)
    assert res["ok"] and res["status"] == "partial" and res["filename"] == "up<load>.csv"
    assert res["counts"] == {"total": 4, "inserted": 2, "updated": 0, "unchanged": 0, "rejected": 2}
    errors = res["errors"]
    assert list(errors.columns) == ["row", "column", "value", "reason"]
    assert errors["row"].tolist() == [3, 4] and errors["column"].tolist() == ["title", "price"]
    assert errors.iloc[1]["value"] == "abc" and "unparsable price 'abc'" in errors.iloc[1]["reason"]
    assert res["rejects_name"] == "up<load>.rejects.csv"
    assert res["rejects_csv"].decode().splitlines()[0] == "row,column,value,reason"
    page = import_html(res)
    assert "status-partial" in page and "pi-import-errors" in page and 'download="up&lt;load&gt;.rejects.csv"' in page
    assert "<load>" not in page and "Kettle <b>" not in page  # user data escaped
    assert _skus(clean_db) == ["A1", "A4"]


def test_strict_refusal_unreadable_files_and_odd_uploads_are_one_line_messages(clean_db, tmp_path):
    refused = run_import(clean_db, "catalog", "catalog.csv", BAD, strict=True, archive_root=tmp_path)
    assert not refused["ok"] and refused["message"].startswith("catalog.csv: refused (strict): 2 row(s) rejected")
    assert "priceintel-upload" not in refused["message"] and "\n" not in refused["message"]
    assert _skus(clean_db) == []
    latin = "id,title\nA1,Café\n".encode("latin-1")
    res = run_import(clean_db, "catalog", "catalog.csv", latin, archive_root=tmp_path)
    assert not res["ok"] and res["message"].startswith("catalog.csv: not UTF-8 text: byte 0xe9")
    assert "Windows-1252" in res["message"] and "--encoding" not in res["message"]
    assert run_import(clean_db, "catalog", "catalog.csv", latin, encoding="cp1252", archive_root=tmp_path)["ok"]
    with clean_db.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM dim_product WHERE sku = 'A1'")).scalar() == "Café"
    assert run_import(clean_db, "catalog", "x.csv", b"")["message"] == "x.csv: the file is empty"
    assert run_import(clean_db, "catalog", "../", GOOD)["message"] == "the upload has no file name"
    assert run_import(clean_db, "prices", "x.csv", GOOD)["message"].startswith("unknown kind 'prices'")
    wrong = run_import(clean_db, "catalog", "x.csv", b"sku,brand\nA1,Acme\n", archive_root=tmp_path)
    assert wrong["message"] == "x.csv: no title column (title or name); its columns: ['sku', 'brand']"
    assert '<div class="pi-msg-err pi-import-message">' in import_html(wrong)
    assert safe_filename("C:\\Users\\me\\cat\x00.csv") == "cat.csv"


def test_sales_and_watch_list_uploads(clean_db, tmp_path):
    run_import(clean_db, "catalog", "catalog.csv", GOOD, archive_root=tmp_path)
    sales = b"date,sku,units,revenue\n2026-11-01,A1,3,45.00 USD\n2026-11-01,NOPE,1,5 USD\n"
    res = run_import(clean_db, "sales", "sales.csv", sales, archive_root=tmp_path)
    assert res["ok"] and res["counts"]["inserted"] == 1 and res["counts"]["rejected"] == 1, res
    watches = b"url,sku\nhttps://www.walmart.com/ip/123,A1\nnot a url,\nhttps://www.otto.de/p/x-1/,\n"
    res = run_import(clean_db, "watch", "watch.xlsx.csv", watches, archive_root=tmp_path)
    assert res["counts"]["inserted"] == 2 and res["errors"]["row"].tolist() == [3]
    assert any("retailer 'otto' is not in shops.yaml" in w for w in res["warnings"])
    assert set(watch_health(clean_db)["retailer"]) == {"walmart", "otto"}


# --- preview ---------------------------------------------------------------------------------------------


@pytest.fixture()
def hostile():
    """A loopback shop: /captcha answers 429, anything else a product page whose title holds markup."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/robots.txt":
                status, body = 200, b"User-agent: *\nAllow: /\n"
            elif self.path.startswith("/captcha"):
                status, body = 429, b"<html><body>slow down</body></html>"
            else:
                status, body = 200, (
                    b'<html><head><script type="application/ld+json">{"@type": "Product", "name": '
                    b'"Kettle <img src=x onerror=alert(1)>", "sku": "K1", "offers": {"@type": "Offer", '
                    b'"price": "12.50", "priceCurrency": "EUR"}}</script></head><body></body></html>'
                )
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve_handler(Handler) as base:
        yield base


@needs_pages
def test_preview_of_replayed_pages_and_a_hostile_shop(tmp_path, hostile):
    with serve_pages(PAGES) as (base, index):
        page = index[AMAZON_PAGE]
        # typed into the app: a loopback URL of no configured shop is refused (the server's own network)
        refused = preview_url(page.local_url, archive_dir=tmp_path)
        assert refused["record"]["outcome"] == "error" and "blocked_address" in refused["record"]["message"]
        with Fetcher(archive=RawArchive(tmp_path), retries=0, rate_limit_per_host=0) as f:  # a caller's own fetcher
            res = preview_url(page.local_url, fetcher=f)  # shops.yaml's fallback adapter for the page
        assert res["ok"] and res["record"]["outcome"] == "ok" and res["record"]["price"] == "87.11"
        assert "is not in shops.yaml" in res["warning"]  # 127.0.0.1 is not a listed shop
        fields = res["fields"].set_index("field")
        assert fields.loc["price", "value"] == "87.11" and fields.loc["price", "method"]
        assert fields.loc["item_id", "value"] == "B01GOH7PKA"
        shown = preview_html(res)
        assert "outcome-ok" in shown and "87.11" in shown and "pi-preview-warning" in shown
        with Fetcher(archive=RawArchive(tmp_path), retries=0, rate_limit_per_host=0) as f:
            gone = preview_url(base + "/no/such/product", shops={}, fetcher=f)
            assert gone["ok"] and gone["record"]["outcome"] == "not_found"
            assert gone["record"]["http_status"] == 404 and gone["fields"]["value"].isna().all()
            assert "outcome-not_found" in preview_html(gone)
            blocked = preview_url(hostile + "/captcha/1", shops={}, fetcher=f)
            assert blocked["record"]["outcome"] == "blocked"
            kettle = preview_url(hostile + "/p/kettle", shops={}, fetcher=f)
            assert kettle["record"]["price"] == "12.50" and kettle["record"]["currency"] == "EUR"
            assert "<img" not in preview_html(kettle) and "&lt;img" in preview_html(kettle)
            # asked to render JavaScript with a fetcher that cannot: a message, not a traceback
            assert "render=True" in preview_url(hostile + "/p/x", shops={}, fetcher=f, render=True)["message"]
    assert preview_url("  ")["message"].startswith("type the URL")
    assert preview_url("www.example.com/p/1")["message"].startswith("malformed URL")
    assert '<div class="pi-msg-err pi-preview-message">' in preview_html(preview_url("ftp://x.org/<b>"))


# --- watch health ----------------------------------------------------------------------------------------


def _fetch(engine, watch_id: int, day: int, outcome: str, price: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO watch_fetch (watch_id, fetched_at, date_key, outcome, price, currency) "
                "VALUES (:w, :t, :d, :o, :p, 'USD')"
            ),
            {"w": watch_id, "t": datetime(2026, 11, day, 4, tzinfo=UTC), "d": 20261100 + day, "o": outcome,
             "p": price},
        )


def test_watch_health_filters_counts_and_latest_fetch(clean_db):
    a = add_watch(clean_db, "https://www.walmart.com/ip/1")["watch_id"]
    b = add_watch(clean_db, "https://www.walmart.com/ip/2")["watch_id"]
    c = add_watch(clean_db, "https://www.target.com/p/-/A-3")["watch_id"]
    _fetch(clean_db, a, 1, "ok", "10.00")
    _fetch(clean_db, a, 2, "ok", "9.50")
    _fetch(clean_db, b, 2, "blocked", None)
    with clean_db.begin() as conn:
        conn.execute(sa.text("UPDATE watch SET status = 'failing' WHERE watch_id = :b"), {"b": b})
    df = watch_health(clean_db)
    assert list(df.columns) == HEALTH_COLUMNS and len(df) == 3
    rows = df.set_index("watch_id")
    assert rows.loc[a, "last_price"] == 9.5 and rows.loc[a, "last_outcome"] == "ok"
    assert str(rows.loc[a, "last_fetched"]) == "2026-11-02 04:00:00" and rows.loc[a, "last_currency"] == "USD"
    assert rows.loc[b, "last_outcome"] == "blocked" and rows.loc[b, "last_price"] != rows.loc[b, "last_price"]
    assert df[df["watch_id"] == c]["last_fetched"].isna().all()
    assert status_counts(df) == {"watches": 3, "new": 2, "failing": 1}
    assert watch_health(clean_db, retailer="walmart")["watch_id"].tolist() == [a, b]
    assert watch_health(clean_db, status="failing")["watch_id"].tolist() == [b]
    assert watch_health(clean_db, retailer="target", status="failing").empty
    assert list(watch_health(clean_db, retailer="nobody").columns) == HEALTH_COLUMNS


# --- the widgets without a browser ------------------------------------------------------------------------


@needs_pages
def test_the_page_widgets_import_preview_add_and_refresh(clean_db, tmp_path):
    fetcher = Fetcher(archive=RawArchive(tmp_path), retries=0, rate_limit_per_host=0)  # may fetch loopback pages
    app = OnboardingApp(clean_db, shops={}, fetcher=fetcher, archive_dir=tmp_path, archive_root=tmp_path)
    assert app.import_btn.disabled and "no rows" in app.h_table.value
    now = datetime.now(UTC)
    app.upload.value = ({"name": "catalog.csv", "type": "text/csv", "size": len(BAD), "content": memoryview(BAD),
                         "last_modified": now},)
    assert not app.import_btn.disabled and "catalog.csv" in app.chosen.value
    res = app.do_import()
    assert res["counts"]["rejected"] == 2 and "pi-import-errors" in app.result.value
    app.kind.value = "watch"
    assert app.currency.layout.display == "none"
    with serve_pages(PAGES) as (_base, index):
        app.url.value = index[AMAZON_PAGE].local_url
        app.preview_btn.click()
        assert "87.11" in app.preview_out.value and not app.add_btn.disabled
        app.sku.value = "NOPE"
        app.add_btn.click()
        assert "unknown sku" in app.add_msg.value
        app.sku.value = "A1"
        app.add_btn.click()
    assert "added" in app.add_msg.value and "not in shops.yaml" in app.add_msg.value
    assert index[AMAZON_PAGE].local_url in app.h_table.value and 'data-key="new"' in app.h_table.value
    retailer = app.h_retailer.options[-1][1]
    app.h_retailer.value = retailer
    app.h_status.value = "ok"
    assert "no rows" in app.h_table.value
    app.h_status.value = ""
    assert len(app.refresh_health()) == 1
    app.url.value = "https://elsewhere.example/p/1"
    assert app.add_btn.disabled  # the preview was of another URL


def test_landing_lists_the_onboarding_app():
    assert "onboarding.ipynb" in [nb for _, nb, _, _ in landing.APPS]
    assert 'data-app="onboarding"' in landing.landing_html(None)
    assert (config.PROJ_ROOT / "notebooks" / "apps" / "onboarding.ipynb").is_file()  # served by `priceintel apps`


# --- the Voila app in headless Chromium ------------------------------------------------------------------


@pytest.fixture(scope="module")
def onboarding_db(pg_server_url):
    """A fresh, migrated, empty database."""
    from priceintel.db.engine import create_database, dispose_engines, drop_database
    from priceintel.db.migrate import upgrade

    name = f"priceintel_onboarding_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    upgrade(url)
    yield url
    dispose_engines()
    drop_database(pg_server_url, name)


@pytest.mark.slow
@needs_pages
def test_onboarding_app_in_chromium(onboarding_db, browser, tmp_path):
    from priceintel.db.engine import get_engine

    upload = tmp_path / "catalog.csv"
    upload.write_bytes(BAD)
    shots = config.reports_dir() / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    shops = tmp_path / "shops.yaml"  # the replayed shop is configured on loopback: the app may fetch it
    with serve_pages(PAGES) as (replay, index), \
            serve_voila(DATABASE_URL=onboarding_db, PRICEINTEL_DATA_DIR=str(tmp_path / "data"),
                        PRICEINTEL_SHOPS=str(shops)) as base:
        shops.write_text(f"shops:\n  replay:\n    base_url: {replay}/\n    adapter: amazon\n")
        url = index[AMAZON_PAGE].local_url
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/voila/render/onboarding.ipynb", timeout=180_000)
        page.wait_for_selector(".pi-onboarding .pi-health table", timeout=180_000)
        # upload a catalogue with two bad rows through the file chooser (the FileUpload's <input type=file> is
        # not in the document: its button opens the chooser)
        with page.expect_file_chooser(timeout=60_000) as chooser:
            page.locator(".pi-upload button:has-text('Choose file')").click()
        chooser.value.set_files(str(upload))
        page.wait_for_function("() => document.querySelector('.pi-upload-chosen').innerText.includes('catalog.csv')",
                               timeout=60_000)
        page.locator(".pi-upload button:has-text('Import')").click()
        page.wait_for_selector(".pi-import-result", timeout=120_000)
        assert page.inner_text(".pi-card[data-key=inserted] .v") == "2"
        assert page.inner_text(".pi-card[data-key=rejected] .v") == "2"
        errors = page.inner_text("table.pi-import-errors")
        assert "unparsable price 'abc'" in errors and "missing title" in errors
        assert page.locator("a.pi-download").get_attribute("download") == "catalog.rejects.csv"
        # preview a replayed page, then watch it
        page.locator(".pi-preview-url input").fill(url)
        page.locator("button:has-text('Preview')").click()
        page.wait_for_selector("table.pi-preview-fields", timeout=180_000)
        assert "87.11" in page.inner_text("table.pi-preview-fields")
        assert "ok" in page.inner_text(".pi-preview-outcome")
        page.locator(".pi-add-sku input").fill("A1")
        page.locator("button:has-text('Add to watch list')").click()
        page.wait_for_function("() => document.querySelector('.pi-add-msg').innerText.includes('added')",
                               timeout=60_000)
        page.wait_for_function(f"() => document.querySelector('table.pi-health-table').innerText.includes('{url}')",
                               timeout=60_000)
        page.screenshot(path=str(shots / "onboarding_1440x900.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(1500)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(shots / "onboarding_390x844.png"), full_page=True)
        for part in ("preview-section", "health-section"):
            page.locator(f".pi-{part}").screenshot(path=str(shots / f"onboarding_{part}_390.png"))
        page.close()
    health = watch_health(get_engine(onboarding_db))
    assert health["url"].tolist() == [url] and health["sku"].tolist() == ["A1"]
