"""Human review of matches: labels in PostgreSQL, the next run honouring them, the Voila review app."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import sqlalchemy as sa
from _browser import serve_voila

from priceintel import config
from priceintel.items import LISTING_COLUMNS, PRODUCT_COLUMNS
from priceintel.match.rules import match_listings
from priceintel.match import labels as L
from priceintel.apps.match_review import ReviewSession, pair_html


def _load_small_world(engine, seed: int = 4, n_products: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load a small demo world; every non-GTIN match is queued for review. Returns (listings, products)."""
    from priceintel.demo import world as demo
    from priceintel.db import load

    w = demo.generate_world(n_products=n_products, n_days=1, seed=seed)
    m = match_listings(w.listings, w.products)
    m["status"] = m["status"].where(m["method"] == "gtin", "review")
    with engine.begin() as conn:
        load.upsert_retailers(conn, pd.DataFrame({"retailer": sorted(w.listings["retailer"].unique())}))
        load.upsert_products(conn, w.products[PRODUCT_COLUMNS])
        load.upsert_listings(conn, w.listings[LISTING_COLUMNS])
        load.load_matches(conn, m)
    return w.listings, w.products


def _status(engine, retailer, item_id):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            """SELECT p.sku, pm.status, pm.method FROM product_match pm
               JOIN dim_listing l USING (listing_id) JOIN dim_retailer r ON r.retailer_id = l.retailer_id
               JOIN dim_product p ON p.product_id = pm.product_id
               WHERE r.retailer = :r AND l.item_id = :i"""), {"r": retailer, "i": item_id}).first()


def test_labels_are_stored_kept_and_used(clean_db):
    from priceintel.db import load

    listings, products = _load_small_world(clean_db)
    q = L.review_queue(clean_db)
    assert len(q) >= 10 and set(q["retailer"]) <= {"amazon", "walmart"}
    assert {"title", "name", "score", "sku", "item_id"} <= set(q.columns)
    assert len(L.review_queue(clean_db, retailer="amazon")) == (q["retailer"] == "amazon").sum()
    first, second = q.iloc[0], q.iloc[1]
    assert L.record_label(clean_db, first["retailer"], first["item_id"], first["sku"], True)["status"] == "confirmed"
    assert L.record_label(clean_db, second["retailer"], second["item_id"], second["sku"], False)["status"] == "rejected"
    assert tuple(_status(clean_db, first["retailer"], first["item_id"])) == (first["sku"], "confirmed", "human")
    assert _status(clean_db, second["retailer"], second["item_id"])[1] == "rejected"
    labels = L.read_labels(clean_db)
    assert list(labels.columns) == L.LABEL_COLUMNS and sorted(labels["label"]) == [0, 1]
    # the next run: labels passed in, its rows loaded; the human decisions survive
    again = match_listings(listings, products, labels=labels)
    with clean_db.begin() as conn:
        counts = load.load_matches(conn, again)
    assert tuple(_status(clean_db, first["retailer"], first["item_id"])) == (first["sku"], "confirmed", "human")
    assert _status(clean_db, second["retailer"], second["item_id"])[1] == "rejected"
    rej = again[(again["retailer"] == second["retailer"]) & (again["item_id"] == second["item_id"])]
    assert (rej["sku"] != second["sku"]).all()  # the rejected pair is not proposed again
    # a plain re-run without labels cannot overwrite them either
    with clean_db.begin() as conn:
        counts = load.load_matches(conn, match_listings(listings, products))
    assert counts["protected"] >= 1
    assert _status(clean_db, second["retailer"], second["item_id"])[1] == "rejected"
    # a later verdict on the same pair replaces the earlier one, a pair off the queue is a label only
    L.record_label(clean_db, second["retailer"], second["item_id"], second["sku"], False)
    other = products["sku"][products["sku"] != second["sku"]].iloc[0]
    assert L.record_label(clean_db, second["retailer"], second["item_id"], other, False)["status"] == "label only"
    assert len(L.read_labels(clean_db)) == 3
    assert L.stored_labels_or_none(clean_db.url.render_as_string(hide_password=False)).shape[0] == 3
    with pytest.raises(L.LabelError, match="not in dim_listing"):
        L.record_label(clean_db, "amazon", "no-such-item", first["sku"], True)
    with pytest.raises(L.LabelError, match="not in dim_product"):
        L.record_label(clean_db, first["retailer"], first["item_id"], "NO-SKU", True)


def test_review_session_and_html(clean_db):
    _load_small_world(clean_db, seed=6, n_products=8)
    s = ReviewSession(clean_db, limit=3)
    assert len(s.queue) == 3 and "Pair 1 of 3" in s.status()
    row = s.current
    assert s.decide(None) is None and s.done == 0  # skip stores nothing
    res = s.decide(True)
    assert res["label"] is True and s.done == 1
    s.decide(False)
    assert s.current is None and s.decide(True) is None and "empty" in s.status()
    assert len(L.read_labels(clean_db)) == 2
    # the widget panel itself: a click confirms the pair on screen and shows the next one
    from priceintel.apps.match_review import match_review

    panel = match_review(clean_db, limit=5)
    pick, status, pane, buttons, last = panel.children
    before = pane.value
    buttons.children[0].click()
    assert "confirmed" in last.value and pane.value != before and len(L.read_labels(clean_db)) == 3
    buttons.children[1].click()
    assert "rejected" in last.value
    buttons.children[2].click()
    pick.value = pick.options[-1][1]
    assert "Pair 1 of" in status.value
    html = pair_html(pd.Series({**row.to_dict(), "title": "<script>x</script>", "brand": None}))
    assert "&lt;script&gt;" in html and "<script>" not in html and "match-pair" in html


def test_missing_label_table_is_a_clear_error(pg_server_url):
    from priceintel.db.engine import create_database, dispose_engines, drop_database, get_engine

    name = f"priceintel_nolabels_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name)
    try:
        eng = get_engine(url)
        with pytest.raises(L.LabelError, match="priceintel db migrate"):
            L.read_labels(eng)
        assert L.stored_labels_or_none(url) is None
    finally:
        dispose_engines()
        drop_database(pg_server_url, name)


# --- the Voila app in headless Chromium ------------------------------------------------------------


@pytest.fixture(scope="module")
def review_db(pg_server_url):
    """A fresh, migrated database holding a small world with a review queue."""
    from priceintel.db.engine import create_database, dispose_engines, drop_database, get_engine
    from priceintel.db.migrate import upgrade

    name = f"priceintel_review_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    upgrade(url)
    _load_small_world(get_engine(url), seed=5, n_products=6)
    yield url
    dispose_engines()
    drop_database(pg_server_url, name)


@pytest.mark.slow
def test_review_app_confirm_and_reject_in_chromium(review_db, browser):
    from priceintel.db.engine import get_engine

    with serve_voila(DATABASE_URL=review_db) as base:
        eng = get_engine(review_db)
        queued = len(L.review_queue(eng))
        assert queued >= 2
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/voila/render/match_review.ipynb", timeout=120_000)
        page.wait_for_selector("table.match-pair", timeout=120_000)
        assert f"Pair 1 of {queued}" in page.locator(".review-status").inner_text()
        first = page.locator("table.match-pair").inner_text()
        page.locator("button:has-text('Confirm')").click()
        page.wait_for_selector(".review-last", timeout=60_000)
        assert "confirmed" in page.locator(".review-last").inner_text()
        assert page.locator("table.match-pair").inner_text() != first
        page.locator("button:has-text('Reject')").click()
        page.wait_for_function("() => document.querySelector('.review-last').innerText.includes('rejected')",
                               timeout=60_000)
        shots = config.reports_dir() / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "match_review_1280x900.png"), full_page=True)
        page.close()
        labels = L.read_labels(eng)
        assert sorted(labels["label"]) == [0, 1]
        assert len(L.review_queue(eng)) == queued - 2
