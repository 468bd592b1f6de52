"""Tests for priceintel.demo: world generation and persistence (world, market), the loopback storefronts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from priceintel import PriceIntelError
from priceintel.demo.market import _war_caps
from priceintel.demo.storefronts import Storefronts, ensure_storefronts, serve
from priceintel.demo.world import MAX_PRODUCTS, DemoError, RETAILERS, World, ensure_world, generate_world
from priceintel.items import LISTING_COLUMNS, PRODUCT_COLUMNS, SALES_COLUMNS, gtin_check_digit, is_valid_gtin

FRAMES = ("products", "listings", "prices", "sales", "truth_matches", "truth_elasticities")


@pytest.fixture(scope="module")
def mid_world() -> World:
    """A medium world with enough products/days for statistical checks."""
    return generate_world(n_products=60, n_days=120, seed=3)


@pytest.fixture(scope="module")
def http():
    """A keep-alive HTTP session."""
    with requests.Session() as s:
        yield s


# ----------------------------------------------------------------------------- world
def test_generation_is_deterministic_and_seed_dependent():
    a = generate_world(n_products=15, n_days=10, seed=11)
    b = generate_world(n_products=15, n_days=10, seed=11)
    c = generate_world(n_products=15, n_days=10, seed=12)
    for f in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, f), getattr(b, f))
    assert a.equals(b)
    assert not a.equals(c)
    assert not a.products["gtin"].equals(c.products["gtin"])


def test_gtin_helpers():
    assert gtin_check_digit("400638133393") == 1  # 4006381333931 is a textbook GTIN-13
    assert is_valid_gtin("4006381333931")
    assert is_valid_gtin("036000291452")  # UPC-A
    assert not is_valid_gtin("4006381333932")
    assert not is_valid_gtin("12345")
    assert not is_valid_gtin(None)


def test_products_catalogue(mid_world):
    p = mid_world.products
    assert list(p.columns) == PRODUCT_COLUMNS + ["base_price"]
    assert p["sku"].tolist() == [f"SKU-{i:05d}" for i in range(1, 61)]
    assert p["gtin"].str.fullmatch(r"0\d{12}").all()
    assert p["gtin"].map(is_valid_gtin).all() and p["gtin"].is_unique
    assert p["gtin"].str[1:].map(is_valid_gtin).all()  # 12-digit UPC form is valid too
    assert 5 <= p["category"].nunique() <= 8 and p["brand"].nunique() >= 15
    mpn = p["mpn"].dropna()
    assert 0 < len(mpn) < len(p) and mpn.str.fullmatch(r"[A-Z]{2}-\d{4}").all()
    assert set(p.loc[p["mpn"].notna(), "category"]) <= {"household", "pet-supplies", "electronics", "baby"}
    assert p["size"].str.fullmatch(r"\d+(\.\d+)? (oz|fl oz|lb|ct|L|gal|ft)").all()
    assert p["map_price"].isna().any() and p["map_price"].notna().any()
    assert (p["map_price"].dropna() <= p.loc[p["map_price"].notna(), "msrp"]).all()
    assert (p["unit_cost"] < p["base_price"]).all() and (p["base_price"] <= p["msrp"]).all()
    assert not p.duplicated(["brand", "name", "size"]).any()


def test_listings_and_truth(mid_world):
    w = mid_world
    lst, tm = w.listings, w.truth_matches
    assert list(lst.columns) == LISTING_COLUMNS + ["category"]
    assert lst[["retailer", "item_id"]].equals(tm[["retailer", "item_id"]])
    assert not lst.duplicated(["retailer", "item_id"]).any()
    n = len(w.products)
    for r in RETAILERS:
        t = tm[tm["retailer"] == r]
        assert sorted(t["sku"].dropna()) == sorted(w.products["sku"])  # every product everywhere
        n_dis = t["sku"].isna().sum()
        assert n_dis == round(0.1 * n)
    dis = lst[tm["sku"].isna().to_numpy()]
    assert not set(dis["gtin"].dropna()) & set(w.products["gtin"])
    assert not set(dis["gtin"].dropna().str.zfill(13)) & set(w.products["gtin"])
    ids = dict(tuple(lst.groupby("retailer")))
    assert ids["amazon"]["item_id"].str.fullmatch(r"B0[0-9A-Z]{8}").all()
    assert ids["walmart"]["item_id"].str.fullmatch(r"\d{9,10}").all()
    assert ids["target"]["item_id"].str.fullmatch(r"\d{8}").all()
    assert ids["amazon"]["url"].str.fullmatch(r"/[A-Za-z0-9-]+/dp/B0[0-9A-Z]{8}").all()
    assert ids["walmart"]["url"].str.fullmatch(r"/ip/[a-z0-9-]+/\d{9,10}").all()
    assert ids["target"]["url"].str.fullmatch(r"/p/[a-z0-9-]+/-/A-\d{8}").all()
    # gtin policy: amazon never, target always GTIN-13, walmart mostly as 12-digit UPC
    assert ids["amazon"]["gtin"].isna().all()
    assert ids["target"]["gtin"].map(is_valid_gtin).all() and ids["target"]["gtin"].str.len().eq(13).all()
    wg = ids["walmart"]["gtin"].dropna()
    assert 0.5 < len(wg) / len(ids["walmart"]) < 0.9 and wg.str.len().eq(12).all()
    assert wg.map(is_valid_gtin).all()
    joined = lst.assign(sku=tm["sku"]).merge(w.products[["sku", "gtin", "brand", "mpn"]], on="sku",
                                               suffixes=("", "_p"))
    wj = joined[(joined["retailer"] == "walmart") & joined["gtin"].notna()]
    assert (wj["gtin"] == wj["gtin_p"].str[1:]).all()
    tj = joined[joined["retailer"] == "target"]
    assert (tj["gtin"] == tj["gtin_p"]).all()
    mj = joined[joined["mpn"].notna()]
    assert len(mj) > 0 and (mj["mpn"] == mj["mpn_p"]).all()
    # titles differ per retailer on purpose
    titles = joined.pivot(index="sku", columns="retailer", values="title")
    assert (titles["amazon"] != titles["walmart"]).all() and (titles["walmart"] != titles["target"]).all()
    assert titles["target"].str.contains(" - ").all()
    # distractors are near-duplicates of real lines (same brand+category) in most cases
    prod_lines = set(zip(w.products["brand"], w.products["category"]))
    near = [(b, c) in prod_lines for b, c in zip(dis["brand"], dis["category"])]
    assert np.mean(near) > 0.5
    assert set(w.truth_elasticities["sku"]) == set(w.products["sku"])


def test_price_dynamics(mid_world):
    w = mid_world
    pr = w.prices
    assert list(pr.columns) == ["retailer", "item_id", "ds", "price", "list_price", "in_stock", "promo"]
    assert len(pr) == len(w.listings) * w.params["n_days"]
    assert str(pr["ds"].dtype) == "datetime64[ns]"
    assert pr["ds"].min() == pd.Timestamp("2026-07-01") and pr["ds"].max() == pd.Timestamp(w.params["end"])
    promo = pr[pr["promo"]]
    assert 0.05 < len(promo) / len(pr) < 0.35
    disc = 1 - promo["price"] / promo["list_price"]
    assert (disc > 0).all() and disc.median() > 0.08
    assert pr.loc[~pr["promo"], "list_price"].isna().all()
    oos = pr[~pr["in_stock"]]
    assert 0 < len(oos) / len(pr) < 0.15
    assert oos["price"].isna().all() and not oos["promo"].any()
    assert pr.loc[pr["in_stock"], "price"].notna().all()
    cents = pr["price"].dropna() * 100
    assert np.allclose(cents, cents.round())
    # regular prices use retail endings
    regular = pr.loc[pr["in_stock"] & ~pr["promo"], "price"]
    endings = (regular * 100).round().astype(int) % 100
    assert endings.isin([99, 49, 79]).mean() > 0.6
    # competitor undercuts of our own price
    tm = w.truth_matches.dropna()
    own = w.sales[["sku", "ds", "price"]].rename(columns={"price": "own"})
    m = pr.merge(tm, on=["retailer", "item_id"]).merge(own, on=["sku", "ds"])
    below = m[m["price"] < m["own"]]
    assert 0.05 < len(below) / len(m) < 0.8
    assert ((m["own"] - m["price"]) / m["own"]).between(0.0, 0.07).sum() > 50


def test_price_war_episodes_lead_and_follow():
    rng = np.random.default_rng(0)
    n, days = 20, 60
    regular = np.full((60, days), 10.99)
    plist = np.arange(60).reshape(3, n)
    cap = np.full((60, days), np.inf)
    ep = _war_caps(rng, regular, plist, days, cap)
    assert len(ep["product"]) > 0
    for prod, leader, start, lag in zip(ep["product"], ep["leader"], ep["start"], ep["lag"]):
        lead_row = cap[plist[leader, prod]]
        assert lead_row[start] <= 10.99 * 0.85 + 1e-9
        for r in range(3):
            if r != leader and start + lag < days:
                assert cap[plist[r, prod], start + lag] <= 10.99 * 0.85 * 1.01 + 1e-9
    assert np.isinf(cap).mean() > 0.5  # most listing-days are untouched


def test_wars_show_up_in_generated_prices(mid_world):
    pr = mid_world.prices
    lst = mid_world.listings.assign(sku=mid_world.truth_matches["sku"])
    reg = pr.merge(lst[["retailer", "item_id", "sku"]], on=["retailer", "item_id"]).dropna(subset=["sku"])
    reg = reg.sort_values(["retailer", "item_id", "ds"])
    typical = reg.groupby(["retailer", "item_id"])["price"].transform("median")
    deep_non_promo = reg[(reg["price"] < 0.86 * typical) & ~reg["promo"]]
    assert len(deep_non_promo) > 0  # cuts that are not flagged promotions (wars)


def test_sales_respond_to_price(mid_world):
    s = mid_world.sales
    assert list(s.columns) == SALES_COLUMNS
    assert len(s) == 60 * 120 and str(s["ds"].dtype) == "datetime64[ns]"
    assert str(s["units"].dtype) == "int64" and s["promo"].dtype == bool
    assert np.allclose(s["revenue"], (s["units"] * s["price"]).round(2))
    assert s.groupby("sku")["units"].mean().between(15, 1000).all()
    assert (s.groupby("sku")["price"].std() > 0).all() and s["promo"].mean() > 0.1
    s = s[s["units"] > 0].copy()
    s["lp"], s["lq"] = np.log(s["price"]), np.log(s["units"])
    for c in ("lp", "lq"):
        s[c] -= s.groupby("sku")[c].transform("mean")
    slope = (s["lp"] * s["lq"]).sum() / (s["lp"] ** 2).sum()
    truth = mid_world.truth_elasticities
    assert truth["own_elasticity"].between(-3.5, -1.0).all()
    assert truth["cross_elasticity"].between(0.1, 0.8).all()
    assert slope < 0 and abs(slope - truth["own_elasticity"].mean()) < 0.4
    per_sku = s.groupby("sku")[["lp", "lq"]].apply(lambda g: (g.lp * g.lq).sum() / (g.lp ** 2).sum())
    est = per_sku.to_frame("est").join(truth.set_index("sku"))
    assert np.corrcoef(est["est"], est["own_elasticity"])[0, 1] > 0.8


def test_write_read_round_trip(tmp_path, demo_world):
    out = demo_world.write(tmp_path / "w")
    assert {p.name for p in out.iterdir()} >= {"products.csv", "listings.csv", "sales.csv",
                                                "prices.parquet", "params.json", "truth"}
    assert {p.name for p in (out / "truth").iterdir()} == {"matches.csv", "elasticities.csv"}
    assert "sku" not in pd.read_csv(out / "listings.csv").columns  # no truth in listings
    back = World.read(out)
    for f in FRAMES:
        pd.testing.assert_frame_equal(getattr(back, f), getattr(demo_world, f))
    assert back.params == demo_world.params and back.equals(demo_world)
    assert back.products["gtin"].str.startswith("0").all()
    assert back.listings.loc[back.listings["retailer"] == "walmart", "gtin"].dropna().str.len().eq(12).all()
    assert back.start == date(2026, 7, 1) and back.end == date(2026, 7, 21)


def test_read_errors(tmp_path, demo_world):
    with pytest.raises(DemoError, match="missing .*products.csv"):
        World.read(tmp_path)
    d = demo_world.write(tmp_path / "bad")
    (d / "prices.parquet").write_bytes(b"not parquet")
    with pytest.raises(PriceIntelError, match="cannot read demo world"):
        World.read(d)


def test_ensure_world_reuses_or_regenerates(tmp_path):
    d = tmp_path / "world"
    w1 = ensure_world(d, n_products=8, n_days=5, seed=1)
    stamp = (d / "products.csv").stat().st_mtime_ns
    w2 = ensure_world(d, n_products=8, n_days=5, seed=1, start="2026-07-01")
    assert w2.equals(w1) and (d / "products.csv").stat().st_mtime_ns == stamp
    w3 = ensure_world(d, n_products=9, n_days=5, seed=1)
    assert len(w3.products) == 9 and json.loads((d / "params.json").read_text())["n_products"] == 9
    (d / "sales.csv").unlink()  # damaged world with matching params is regenerated
    assert ensure_world(d, n_products=9, n_days=5, seed=1).equals(w3)
    with pytest.raises(DemoError, match="unknown demo world parameter"):
        ensure_world(d, products=3)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(n_products=0), "n_products"), (dict(n_products=10 ** 6), "n_products"),
    (dict(n_days=0), "n_days"), (dict(start="July 1st"), "start"), (dict(seed=None), "seed"),
])
def test_bad_parameters(kwargs, msg):
    with pytest.raises(DemoError, match=msg):
        generate_world(**kwargs)


def test_the_largest_world_generates():
    """The largest world the limit admits finishes (8,000 once asked for more distinct 4-digit MPN numbers, for
    products and their near-duplicate distractors, than there are, and never ended)."""
    n = MAX_PRODUCTS
    t0 = time.perf_counter()
    w = generate_world(n_products=n, n_days=30, seed=42)
    assert time.perf_counter() - t0 < 60  # loose; speed is measured in benchmarks
    assert len(w.products) == n and w.products["sku"].is_unique and w.products["gtin"].is_unique
    assert len(w.listings) == 3 * (n + n // 10) and not w.listings.duplicated(["retailer", "item_id"]).any()
    assert len(w.prices) == len(w.listings) * 30 and len(w.sales) == n * 30
    assert w.products["mpn"].dropna().is_unique
    assert not w.products.duplicated(["brand", "name", "size"]).any()
    with pytest.raises(DemoError, match=f"1..{n}"):
        generate_world(n_products=n + 1)


def test_distinct_numbers_beyond_the_pool_are_refused():
    from priceintel.demo.catalogue import _unique_ints

    rng = np.random.default_rng(0)
    got = _unique_ints(rng, 0, 10, 8, taken=np.array([3, 3, 12]))
    assert len(set(got.tolist())) == 8 and 3 not in got.tolist()
    with pytest.raises(ValueError, match=r"10 distinct numbers asked of \[0, 10\), which has 9 free"):
        _unique_ints(rng, 0, 10, 10, taken=np.array([3, 3, 12]))


# ----------------------------------------------------------------------------- HTTP helpers
def _shown_price(retailer: str, page: str) -> tuple[float | None, float | None, bool]:
    """(price, was price, in stock) as each shop's markup shows it."""
    if retailer == "amazon":
        m = re.search(r'class="a-price priceToPay"><span class="a-offscreen">\$([\d,.]+)<', page)
        was = re.search(r'data-a-strike="true"><span class="a-offscreen">\$([\d,.]+)<', page)
        stock = '<div id="availability"><span>In Stock</span></div>' in page
        num = (lambda x: float(x.group(1).replace(",", "")) if x else None)
        return num(m), num(was), stock
    if retailer == "walmart":
        blob = re.search(r'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', page).group(1)
        prod = json.loads(blob)["props"]["pageProps"]["initialData"]["data"]["product"]
        cur, was = prod["priceInfo"]["currentPrice"], prod["priceInfo"]["wasPrice"]
        return (cur["price"] if cur else None, was["price"] if was else None,
                prod["availabilityStatus"] == "IN_STOCK")
    blob = re.search(r'<script type="application/ld\+json">(.*?)</script>', page).group(1)
    offer = json.loads(blob)["offers"]
    reg = re.search(r'data-test="product-regular-price">reg \$([\d,.]+)<', page)
    price = float(offer["price"]) if "price" in offer else None
    return price, float(reg.group(1)) if reg else None, offer["availability"].endswith("/InStock")


def _truth(world: World, retailer: str, item_id: str, day: date) -> tuple:
    """Truth row (price, list_price, in_stock) of one listing on one day."""
    pr = world.prices
    row = pr[(pr["retailer"] == retailer) & (pr["item_id"] == item_id) & (pr["ds"] == pd.Timestamp(day))]
    assert len(row) == 1
    r = row.iloc[0]
    nan = (lambda x: None if pd.isna(x) else float(x))
    return nan(r["price"]), nan(r["list_price"]), bool(r["in_stock"])


# ----------------------------------------------------------------------------- HTTP
def test_robots_sitemap_home_cart_404(storefronts, demo_world, http):
    for r, base in storefronts.urls.items():
        assert base.startswith("http://127.0.0.1:")
        robots = http.get(base + "/robots.txt")
        assert robots.status_code == 200 and robots.headers["Content-Type"].startswith("text/plain")
        assert "User-agent: *" in robots.text and "Disallow: /cart" in robots.text
        assert "Disallow: /__demo__/" in robots.text and f"Sitemap: {base}/sitemap.xml" in robots.text
        sm = http.get(base + "/sitemap.xml")
        locs = re.findall(r"<loc>(.*?)</loc>", sm.text)
        expect = demo_world.listings.loc[demo_world.listings["retailer"] == r, "url"]
        assert sorted(locs) == sorted(base + u for u in expect)
        assert http.get(base + "/cart").status_code == 200
        home = http.get(base + "/")
        assert home.status_code == 200 and 'class="category"' in home.text
        nf = http.get(base + "/no/such/page")
        assert nf.status_code == 404 and "no page at /no/such/page" in nf.text
        assert http.post(base + "/cart").status_code == 405
        head = http.head(base + "/robots.txt")
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(robots.content)
    # unknown item ids in a valid URL shape are 404s too
    urls = storefronts.urls
    assert http.get(urls["amazon"] + "/x/dp/B0ZZZZZZZZ").status_code == 404
    assert http.get(urls["walmart"] + "/ip/x/1").status_code == 404
    assert http.get(urls["target"] + "/p/x/-/A-1").status_code == 404
    assert http.get(urls["amazon"] + "/b/no-such-category").status_code == 404


def test_category_pagination_reaches_every_listing():
    world = generate_world(n_products=250, n_days=3, seed=5)
    with Storefronts(world) as fronts, requests.Session() as http:
        prefixes = {"amazon": "/b/", "walmart": "/browse/", "target": "/c/"}
        for r, base in fronts.urls.items():
            home = http.get(base + "/").text
            cats = re.findall(r'class="category" href="([^"]+)"', home)
            assert cats and all(c.startswith(prefixes[r]) for c in cats)
            seen, pages = [], 0
            for cat in cats:
                url = base + cat
                while url:
                    page = http.get(url)
                    assert page.status_code == 200
                    pages += 1
                    links = re.findall(r'<li class="product"[^>]*><a href="([^"]+)"', page.text)
                    assert 0 < len(links) <= 24
                    seen += links
                    nxt = re.search(r'<a rel="next" href="([^"]+)"', page.text)
                    url = base + nxt.group(1) if nxt else None
                    if nxt:
                        assert len(links) == 24
                last = page
                assert 'rel="next"' not in last.text
                n_last = int(re.search(r"page (\d+) of (\d+)", last.text).group(2))
                beyond = http.get(f"{base}{cat}?page={n_last + 1}")
                assert beyond.status_code == 404
                assert http.get(f"{base}{cat}?page=abc").status_code == 404
            expect = world.listings.loc[world.listings["retailer"] == r, "url"]
            assert sorted(seen) == sorted(expect) and pages > len(cats)


def test_product_pages_show_truth_for_clock_and_date_override(storefronts, demo_world, http):
    world = demo_world
    day = storefronts.date
    assert day == world.end  # default clock = last day of the world
    assert http.get(storefronts.urls["amazon"] + "/__demo__/clock").json() == {"date": day.isoformat()}
    checked = {"promo": 0, "oos": 0}
    other = world.start + timedelta(days=3)
    for (r, item_id, url) in world.listings[["retailer", "item_id", "url"]].itertuples(index=False):
        base = storefronts.urls[r]
        for d, suffix in ((day, ""), (other, f"?date={other.isoformat()}")):
            page = http.get(base + url + suffix)
            assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
            price, was, stock = _shown_price(r, page.text)
            t_price, t_list, t_stock = _truth(world, r, item_id, d)
            assert (price, was, stock) == (t_price, t_list, t_stock), (r, item_id, d)
            checked["promo"] += was is not None
            checked["oos"] += not stock
            assert item_id in page.text
    assert checked["promo"] > 0


def test_out_of_stock_and_promo_pages(storefronts, demo_world, http):
    pr = demo_world.prices
    for r in RETAILERS:
        base = storefronts.urls[r]
        url_of = demo_world.listings.set_index(["retailer", "item_id"])["url"]
        oos = pr[(pr["retailer"] == r) & ~pr["in_stock"]].iloc[0]
        page = http.get(base + url_of[(r, oos["item_id"])], params={"date": oos["ds"].date().isoformat()}).text
        assert _shown_price(r, page) == (None, None, False)
        if r == "amazon":
            assert "Currently unavailable." in page and "corePrice_feature_div" not in page
        promo = pr[(pr["retailer"] == r) & pr["promo"]].iloc[0]
        page = http.get(base + url_of[(r, promo["item_id"])], params={"date": promo["ds"].date().isoformat()}).text
        assert _shown_price(r, page) == (promo["price"], promo["list_price"], True)


def test_markup_hooks_per_shop(storefronts, demo_world, http):
    lst = demo_world.listings.assign(sku=demo_world.truth_matches["sku"]).dropna(subset=["sku"])
    lst = lst.sort_values("mpn", na_position="last")  # prefer a listing that shows an mpn
    gtin_of = demo_world.products.set_index("sku")["gtin"]
    known = (lambda x: x if isinstance(x, str) else None)
    for r in RETAILERS:
        row = lst[lst["retailer"] == r].iloc[0]
        page = http.get(storefronts.urls[r] + row["url"]).text
        if r == "amazon":
            assert f'<input type="hidden" id="ASIN" name="ASIN" value="{row["item_id"]}">' in page
            assert '<a id="bylineInfo" class="a-link-normal" href="/stores/' in page
            assert f'Visit the {row["brand"]} Store</a>' in page.replace("&amp;", "&")
            assert '<table id="productDetails_techSpec_section_1">' in page
            assert f"<th>ASIN</th><td>{row['item_id']}</td>" in page
            assert '<span id="productTitle"' in page and "application/ld+json" not in page
            assert isinstance(row["mpn"], str)  # the demo world has amazon listings with an mpn
            assert f"<th>Item model number</th><td>{row['mpn']}</td>" in page
        elif r == "walmart":
            blob = re.search(r'id="__NEXT_DATA__" type="application/json">(.*?)</script>', page).group(1)
            p = json.loads(blob)["props"]["pageProps"]["initialData"]["data"]["product"]
            assert p["usItemId"] == row["item_id"] and p["sellerName"] == "Walmart.com"
            assert p["name"] == row["title"] and p.get("brand") == known(row["brand"])
            assert p.get("upc") == known(row["gtin"]) and p.get("model") == known(row["mpn"])
            assert "<h1" in page and "application/ld+json" not in page
        else:
            ld = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', page).group(1))
            assert ld["@type"] == "Product" and ld["sku"] == row["item_id"] and ld["name"] == row["title"]
            assert ld["gtin13"] == gtin_of[row["sku"]] and ld.get("mpn") == known(row["mpn"])
            assert ld["brand"] == {"@type": "Brand", "name": row["brand"]}
            assert ld["offers"]["@type"] == "Offer" and ld["offers"]["priceCurrency"] == "USD"
            assert ld["offers"]["url"] == storefronts.urls[r] + row["url"]
            assert '<h1 data-test="product-title">' in page


def test_clock_set_and_errors(storefronts, demo_world, http):
    base = storefronts.urls["walmart"]
    original = storefronts.date
    try:
        r = http.post(base + "/__demo__/clock", params={"date": "2026-07-05"})
        assert r.status_code == 200 and r.json() == {"date": "2026-07-05"}
        for other in storefronts.urls.values():  # one shared clock
            assert http.get(other + "/__demo__/clock").json()["date"] == "2026-07-05"
        item = demo_world.listings[demo_world.listings["retailer"] == "walmart"].iloc[0]
        page = http.get(base + item["url"]).text
        assert _shown_price("walmart", page) == _truth(demo_world, "walmart", item["item_id"], date(2026, 7, 5))
        for bad in ("2026-13-01", "yesterday", "2026-06-30", "2026-07-22"):
            r = http.post(base + "/__demo__/clock", params={"date": bad})
            assert r.status_code == 400 and "error" in r.json() and bad in r.json()["error"]
        assert http.post(base + "/__demo__/clock").status_code == 400
        assert http.get(base + "/__demo__/clock").json() == {"date": "2026-07-05"}
        r = http.get(base + item["url"], params={"date": "2027-01-01"})
        assert r.status_code == 400 and "outside the demo world" in r.text
        assert storefronts.set_date(date(2026, 7, 2)) == date(2026, 7, 2)
        with pytest.raises(DemoError, match="outside the demo world"):
            storefronts.set_date("2026-08-30")
    finally:
        storefronts.set_date(original)


def test_faults(demo_world, http):
    lst = demo_world.listings
    first, second = ({r: lst[lst["retailer"] == r].iloc[i] for r in RETAILERS} for i in (1, 2))
    faults = {"missing_price": {(r, p["item_id"]) for r, p in first.items()},
              "status": {("amazon", second["amazon"]["item_id"]): 500,
                         ("target", second["target"]["item_id"]): 503}}
    with Storefronts(demo_world, faults=faults) as fronts:
        for r, p in first.items():
            page = http.get(fronts.urls[r] + p["url"])
            assert page.status_code == 200
            assert _shown_price(r, page.text) == (None, None, True)
        visible = {r: http.get(fronts.urls[r] + p["url"]).text for r, p in first.items()}
        assert "$" not in visible["amazon"] and "corePrice_feature_div" not in visible["amazon"]
        assert "In Stock" in visible["amazon"]
        assert "$" not in visible["target"] and '"price"' not in visible["target"]
        assert '"currentPrice":null' in visible["walmart"] and '"IN_STOCK"' in visible["walmart"]
        assert http.get(fronts.urls["amazon"] + second["amazon"]["url"]).status_code == 500
        assert http.get(fronts.urls["target"] + second["target"]["url"]).status_code == 503
        assert http.get(fronts.urls["walmart"] + second["walmart"]["url"]).status_code == 200
        fronts.set_faults(None)
        assert http.get(fronts.urls["amazon"] + second["amazon"]["url"]).status_code == 200
        assert "$" in http.get(fronts.urls["target"] + first["target"]["url"]).text or \
            not demo_world.prices.query("retailer == 'target' and item_id == @first['target'].item_id")[
                "in_stock"].iloc[-1]
    with pytest.raises(DemoError, match="unknown kind"):
        Storefronts(demo_world, faults={"slow": {}})
    with pytest.raises(DemoError, match="not an HTTP status"):
        Storefronts(demo_world, faults={"status": {("amazon", "x"): 42}})
    with pytest.raises(DemoError, match="unknown retailer"):
        Storefronts(demo_world, ports={"ebay": 0})


def test_stop_releases_ports_and_busy_port_errors(demo_world):
    fronts = Storefronts(demo_world)
    urls = fronts.start()
    assert fronts.start() == urls  # idempotent
    session = requests.Session()
    assert session.get(urls["target"] + "/__demo__/clock").status_code == 200
    port = int(urls["amazon"].rsplit(":", 1)[1])
    with pytest.raises(DemoError, match=f"cannot start the amazon demo shop on 127.0.0.1:{port}"):
        Storefronts(demo_world, ports={"amazon": port}).start()
    fronts.stop()
    assert fronts.urls == {}
    with pytest.raises(requests.ConnectionError):
        session.get(urls["target"] + "/__demo__/clock", timeout=2)
    session.close()


def test_keep_alive_serves_every_page_of_a_shop_on_one_connection(storefronts, demo_world):
    """HTTP/1.1 keep-alive: a client opens one connection per shop however many pages it fetches (the pages per
    second are measured by benchmarks/bench_scrape.py, crawl_politeness_off)."""
    urls = [storefronts.urls[r] + u for r, u in zip(demo_world.listings["retailer"], demo_world.listings["url"])]
    with requests.Session() as s:
        t0 = time.perf_counter()
        for _ in range(5):
            for u in urls:
                assert s.get(u).status_code == 200
        print(f"{5 * len(urls) / (time.perf_counter() - t0):.0f} pages/s")
        pools = list(s.get_adapter(urls[0]).poolmanager.pools._container.values())
    assert len(pools) == len(storefronts.urls) and all(p.num_connections == 1 for p in pools)


def test_ensure_storefronts_in_process_and_dead_registry(tmp_path, demo_world):
    world_dir = demo_world.write(tmp_path / "world")
    reg = tmp_path / "storefronts.json"
    reg.write_text(json.dumps({"urls": {"amazon": "http://127.0.0.1:9", "walmart": "http://127.0.0.1:9",
                                        "target": "http://127.0.0.1:9"}, "pid": 1, "world_dir": str(world_dir)}))
    urls, handle = ensure_storefronts(world_dir, registry=reg)
    try:
        assert handle is not None and urls == handle.urls and set(urls) == set(RETAILERS)
        assert requests.get(urls["amazon"] + "/__demo__/clock").json() == {"date": "2026-07-21"}
    finally:
        handle.stop()
    reg.write_text("{not json")
    urls, handle = ensure_storefronts(tmp_path / "fresh", registry=reg)  # no world yet: generated
    try:
        assert handle is not None and (tmp_path / "fresh" / "params.json").is_file()
    finally:
        handle.stop()


def test_serve_registry_and_reuse(tmp_path, demo_world):
    world_dir = demo_world.write(tmp_path / "world")
    reg = tmp_path / "reg" / "storefronts.json"
    stop = threading.Event()
    th = threading.Thread(target=serve, args=(world_dir,),
                          kwargs=dict(ports={r: 0 for r in RETAILERS}, registry=reg, stop_event=stop),
                          daemon=True)
    th.start()
    for _ in range(100):
        if reg.is_file():
            break
        time.sleep(0.05)
    content = json.loads(reg.read_text())
    assert content["pid"] == os.getpid() and Path(content["world_dir"]) == world_dir.resolve()
    urls, handle = ensure_storefronts(world_dir, registry=reg)
    assert handle is None and urls == content["urls"]
    # a registry serving another world is not reused
    urls2, handle2 = ensure_storefronts(tmp_path / "other", registry=reg)
    try:
        assert handle2 is not None and urls2 != urls
    finally:
        handle2.stop()
    # nor one whose world was regenerated in place with other parameters (stale shops)
    params = json.loads((world_dir / "params.json").read_text())
    (world_dir / "params.json").write_text(json.dumps(dict(params, seed=params["seed"] + 1)))
    urls3, handle3 = ensure_storefronts(world_dir, registry=reg)
    try:
        assert handle3 is not None and urls3 != urls
    finally:
        handle3.stop()
        (world_dir / "params.json").write_text(json.dumps(params))
    stop.set()
    th.join(timeout=10)
    assert not th.is_alive() and not reg.exists()


def test_serve_process_stops_on_sigterm(tmp_path, demo_world):
    world_dir = demo_world.write(tmp_path / "world")
    reg = tmp_path / "storefronts.json"
    code = ("import sys; from priceintel.demo.storefronts import serve; "
            "serve(sys.argv[1], ports={'amazon': 0, 'walmart': 0, 'target': 0}, registry=sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(world_dir), str(reg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            if reg.is_file() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert reg.is_file(), proc.stderr.read() if proc.poll() is not None else "no registry"
        urls = json.loads(reg.read_text())["urls"]
        assert json.loads(reg.read_text())["pid"] == proc.pid
        assert requests.get(urls["target"] + "/robots.txt").status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0 and not reg.exists()
        assert all(u in out for u in urls.values())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
