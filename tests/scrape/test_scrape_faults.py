"""Faults of the demo storefronts end in a retried success or a recorded failure; conditional requests;
JavaScript rendering in headless Chromium; the `priceintel scrape` command."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import ThreadingHTTPServer

import pandas as pd
import pytest

from _receivers import QuietHandler
from priceintel import cli
from priceintel.demo.storefronts import Storefronts
from priceintel.demo.world import DemoError
from priceintel.items import IN_STOCK
from priceintel.scrape import Fetcher, RawArchive, extract, get_adapter, scrape_demo

CHROMIUM = "/usr/bin/chromium"


def _pick(world, retailer, i):
    return world.listings[world.listings.retailer == retailer].item_id.iloc[i]


def test_every_fault_ends_in_retried_success_or_recorded_failure(demo_world, tmp_path):
    w = demo_world
    day = w.start + timedelta(days=5)
    faults = {
        "retry_after": {("amazon", _pick(w, "amazon", 0)): (1, 1), ("walmart", _pick(w, "walmart", 0)): (1, 1)},
        "burst_503": {("target", _pick(w, "target", 0)): 2, ("amazon", _pick(w, "amazon", 1)): 2},
        "delay": {("walmart", _pick(w, "walmart", 1)): (1, 0.3)},
        "truncate": {("target", _pick(w, "target", 1)): 1, ("amazon", _pick(w, "amazon", 2)): 5},
        "captcha": {("walmart", _pick(w, "walmart", 2)): 1, ("target", _pick(w, "target", 2)): 5},
        "status": {("walmart", _pick(w, "walmart", 3)): 500},
        "missing_price": {("amazon", _pick(w, "amazon", 3))},
        "layout_change_after": 21,  # one worker: amazon's 5th page is the 21st product request
    }
    arc = RawArchive(tmp_path)
    with Storefronts(w, faults=faults) as fronts, \
            Fetcher(archive=arc, retries=2, backoff=0.01, max_workers=1) as f:
        t0 = time.monotonic()
        offers, errors = scrape_demo(fronts.urls, [day], f)
        elapsed = time.monotonic() - t0
        log = pd.DataFrame(fronts.fault_log, columns=["kind", "retailer", "item_id"])
    assert elapsed >= 1.0  # Retry-After: 1 was honoured before the retry
    # every listing is accounted for exactly once: an offer or a recorded error
    errors = errors.assign(item_id=[get_adapter(r).item_id_from_url(u) for r, u in zip(errors.retailer, errors.url)])
    seen = pd.concat([offers[["retailer", "item_id"]], errors[["retailer", "item_id"]]])
    assert not seen.duplicated().any()
    assert len(seen) == len(w.listings)
    assert set(map(tuple, seen.values)) == set(map(tuple, w.listings[["retailer", "item_id"]].values))
    kinds = {(r.retailer, r.item_id): r.kind for r in errors.itertuples()}
    assert kinds == {
        ("amazon", _pick(w, "amazon", 2)): "truncated",  # truncated on every try: recorded
        ("target", _pick(w, "target", 2)): "blocked",  # robot check on every try: recorded
        ("walmart", _pick(w, "walmart", 3)): "http_error",  # permanent 500 after retries
        ("amazon", _pick(w, "amazon", 3)): "no_price",  # in stock but no price shown
    }
    # transient faults were served and then retried into a success
    recovered = {("amazon", _pick(w, "amazon", 0)), ("walmart", _pick(w, "walmart", 0)),
                 ("target", _pick(w, "target", 0)), ("amazon", _pick(w, "amazon", 1)),
                 ("walmart", _pick(w, "walmart", 1)), ("target", _pick(w, "target", 1)),
                 ("walmart", _pick(w, "walmart", 2))}
    got = set(zip(offers.retailer, offers.item_id))
    assert recovered <= got
    # served: each transient fault once per try (persistent truncate/captcha: first try + one re-fetch)
    assert log.groupby("kind").size().to_dict() == {"retry_after": 2, "burst_503": 4, "delay": 1,
                                                    "truncate": 1 + 2, "captcha": 1 + 2}
    # the redesign went live mid-run: amazon pages of both layouts were extracted
    layouts = {b"corePriceDisplay_desktop_feature_div" in arc.get(r.page_sha256)
               for r in offers.itertuples() if r.retailer == "amazon" and r.price is not None}
    assert layouts == {True, False}
    # every stored offer matches the world's truth, before and after the layout change
    truth = w.prices[w.prices.ds == pd.Timestamp(day)].set_index(["retailer", "item_id"])
    for r in offers.itertuples():
        t = truth.loc[(r.retailer, r.item_id)]
        assert (r.availability == IN_STOCK) == bool(t.in_stock)
        if t.in_stock:
            assert float(r.price) == pytest.approx(t.price)
        else:
            assert r.price is None  # out-of-stock pages show no price and are kept as such


def test_fault_spec_errors(demo_world):
    with pytest.raises(DemoError, match="repeat count"):
        Storefronts(demo_world, faults={"burst_503": {("amazon", "x"): 0}})
    with pytest.raises(DemoError, match="seconds"):
        Storefronts(demo_world, faults={"delay": {("amazon", "x"): (1, -2)}})
    with pytest.raises(DemoError, match="layout_change_after"):
        Storefronts(demo_world, faults={"layout_change_after": -1})


def test_conditional_requests_304_served_from_cache(demo_world, tmp_path):
    item = demo_world.listings.iloc[0]
    arc = RawArchive(tmp_path)
    with Storefronts(demo_world) as fronts, Fetcher(archive=arc, backoff=0.01) as f:
        url = fronts.urls[item.retailer] + item.url
        first = f.get(url)
        assert first.status == 200 and first.headers.get("ETag") and not first.not_modified
        again = f.get(url)
        assert again.status == 304 and again.not_modified and again.body == first.body
        assert again.sha256 == first.sha256
        offer = extract(again.body, url, item.retailer, status=again.status)
        assert offer.page_kind == "product" and offer.item_id == item.item_id
        fronts.set_date(demo_world.start)  # the page changes: a full 200 again
        changed = f.get(url)
        assert changed.status in (200, 304)
        if changed.status == 200:
            assert changed.headers["ETag"] != first.headers["ETag"]
    with Storefronts(demo_world) as fronts, Fetcher(conditional=False) as f:
        url = fronts.urls[item.retailer] + item.url
        assert f.get(url).status == 200 and f.get(url).status == 200
    # archived 304s are in the index too (every response is archived)
    statuses = [x["status"] for x in arc.iter_index()]
    assert 304 in statuses and 200 in statuses


class _JsShop(QuietHandler):
    """A product page whose price exists only after its JavaScript runs."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/robots.txt":
            body = b"User-agent: *\nAllow: /\n"
            ctype = "text/plain"
        else:
            body = (b"<!DOCTYPE html><html><head><title>JS Widget</title></head><body>"
                    b"<h1>JS Widget</h1><div id='buy'></div><script>"
                    b"var cents = 1900 + 99; var ld = {'@context': 'https://schema.org', '@type': 'Product',"
                    b" name: 'JS Widget', sku: 'JSW-1', offers: {'@type': 'Offer', price: (cents / 100).toFixed(2),"
                    b" priceCurrency: 'USD', availability: 'https://schema.org/InStock'}};"
                    b"var s = document.createElement('script'); s.type = 'application/ld+json';"
                    b"s.text = JSON.stringify(ld); document.head.appendChild(s);"
                    b"document.getElementById('buy').innerHTML ="
                    b" '<span class=price>$' + (cents/100).toFixed(2) + '</span>';"
                    b"</script></body></html>")
            ctype = "text/html; charset=utf-8"
        self.reply(200, body, ctype)


def test_render_true_builds_the_price_with_javascript(tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _JsShop)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/widget"
    try:
        with Fetcher(backoff=0.01) as plain:
            raw = plain.get(url)
        assert extract(raw.body, url).price is None and not raw.rendered
        arc = RawArchive(tmp_path)
        with Fetcher(render=True, archive=arc, backoff=0.01) as f:
            res = f.get(url)
        assert res.ok and res.rendered
        offer = extract(res.body, url)
        assert (offer.price, offer.currency, offer.sku) == ("19.99", "USD", "JSW-1")
        assert offer.methods["price"] == "jsonld"
        assert any(x["meta"].get("rendered") for x in arc.iter_index())
        with Fetcher(render=True, chromium="/nonexistent/chromium") as f:
            bad = f.get(url)
        assert bad.error_kind == "render_failed" and "Chromium" in bad.error
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow
def test_scrape_cli_filters_progress_and_summary(demo_world, storefronts, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path / "data"))
    ids = demo_world.listings[demo_world.listings.retailer == "target"].item_id.iloc[:2].tolist()
    argv = ["scrape", "--url", f"target={storefronts.urls['target']}", "--url",
            f"amazon={storefronts.urls['amazon']}", "--retailer", "target", "--out", str(tmp_path / "out")]
    for i in ids:
        argv += ["--product", i]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "target" in captured.err  # the tqdm bar, labelled by retailer
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pages"] == 2 and summary["by_retailer"] == {"target": summary["products"]}
    assert summary["products"] + summary["errors"] == 2
    assert f"pages 2  products {summary['products']}" in captured.out
    offers = pd.read_parquet(tmp_path / "out" / "offers.parquet")
    assert set(offers.item_id) <= set(ids)
    assert any((tmp_path / "data" / "raw").rglob("*.gz"))  # pages archived under the data dir
    # limit and errors by kind: a shop that is down is recorded, not a traceback
    assert cli.main(["scrape", "--url", "walmart=http://127.0.0.1:9", "--no-progress",
                     "--out", str(tmp_path / "o2")]) == 0
    out = capsys.readouterr().out
    assert "errors 1 (unreachable 1)" in out
    assert cli.main(["scrape", "--url", "bad"]) == 2
    assert "RETAILER=" in capsys.readouterr().err
