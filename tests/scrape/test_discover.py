"""`priceintel discover` on a real PostgreSQL and real loopback shops: candidates found by a search template and
by a sitemap, identifier matches watched with the right sku, an ambiguous one queued for review and watched once
confirmed there, nothing added twice, robots.txt obeyed, --dry-run writing nothing, the CLI's exit codes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from priceintel import cli
from priceintel.apps.match_review import ReviewSession
from priceintel.demo.loopback import LoopbackServer, QuietHandler
from priceintel.ingest.catalog import import_catalog
from priceintel.ingest.discover import discover_listings
from priceintel.scrape.discover import DiscoverError, search_attempts
from priceintel.scrape.shops import load_shops


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def _watches(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT url, sku FROM watch")).all())


def _shops_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "shops.yaml"
    path.write_text("shops:\n" + body, encoding="utf-8")
    return path


# --- the demo storefronts: search template (target), sitemap of robots.txt (walmart) --------------------------
@pytest.fixture()
def demo_db(clean_db, demo_world, tmp_path):
    """clean_db with the demo world's catalogue imported."""
    cols = ["sku", "name", "brand", "category", "gtin", "mpn", "size"]
    path = tmp_path / "catalog.csv"
    demo_world.products[cols].to_csv(path, index=False)
    import_catalog(clean_db, path, archive_root=tmp_path)
    return clean_db


@pytest.fixture()
def demo_shops(storefronts, tmp_path):
    urls = storefronts.urls
    body = (
        f"  target:\n    base_url: {urls['target']}/\n    adapter: target\n    requests_per_second: 200\n"
        f"    concurrency: 2\n    search_url: {urls['target']}/search?q=" + "{query}\n"
        f"  walmart:\n    base_url: {urls['walmart']}/\n    adapter: walmart\n    requests_per_second: 200\n"
    )
    return _shops_file(tmp_path, body)


def _truth(world, urls: dict[str, str]) -> dict[str, str | None]:
    """Listing URL on the running shops -> the sku it truly sells (None for a distractor)."""
    t = world.listings.merge(world.truth_matches, on=["retailer", "item_id"])
    return {urls[r] + path: (None if pd.isna(s) else s) for r, path, s in zip(t["retailer"], t["url"], t["sku"])}


def test_search_attempts_go_gtin_then_mpn_then_name():
    kinds = search_attempts({"sku": "A", "name": "Kettle 1.7 L", "brand": "Acme", "gtin": "4006381333931", "mpn": "K1"})
    want = [("gtin", "4006381333931"), ("mpn", "K1"), ("query", "Acme Kettle 1.7 L")]
    assert [(k, v["query"]) for k, v in kinds] == want
    assert all(v["gtin"] == "4006381333931" and v["mpn"] == "K1" for _, v in kinds)  # a two-field template fills
    assert [k for k, _ in search_attempts({"name": "Kettle", "gtin": float("nan")})] == ["query"]


def test_search_template_watches_identifier_matches_with_their_sku(demo_db, demo_shops, demo_world, storefronts,
                                                                   tmp_path):
    skus = list(demo_world.products["sku"][:4])
    shops = load_shops(demo_shops)
    res = discover_listings(demo_db, shops, skus=skus, use_model=False, archive_dir=tmp_path)
    assert res.summary["shops"] == 1  # walmart has no search_url / sitemap / category_urls: not discovered
    truth = _truth(demo_world, storefronts.urls)
    auto = res.report[res.report["outcome"] == "auto"]
    assert set(auto["method"]) == {"gtin"} and len(auto) == 4  # every target page carries its GTIN
    assert _watches(demo_db) == {u: truth[u] for u in auto["url"]}
    assert set(_watches(demo_db).values()) == set(skus)
    assert res.summary["requests"] == 8  # one search (by GTIN) and one product page per sku
    assert _count(demo_db, "fact_price") == 0 and _count(demo_db, "watch_fetch") == 0  # no price stored


def test_sitemap_discovery_learned_score_and_nothing_twice(demo_db, demo_shops, demo_world, storefronts, tmp_path):
    shops = load_shops(demo_shops)
    res = discover_listings(demo_db, shops, retailers=["walmart"], archive_dir=tmp_path)  # via robots.txt Sitemap:
    truth = _truth(demo_world, storefronts.urls)
    walmart = {u: s for u, s in truth.items() if u.startswith(storefronts.urls["walmart"] + "/")}
    assert res.summary["candidates"] == len(walmart) == 13 and res.summary["scorer"] == "learned"
    assert _watches(demo_db) == {u: s for u, s in walmart.items() if s is not None}  # all 12, each with its sku
    by_url = res.report.set_index("url")
    assert (by_url.loc[list(walmart), "method"].isin(["gtin", "mpn"])).sum() >= 10  # identifiers first
    distractor = next(u for u, s in walmart.items() if s is None)
    assert by_url.loc[distractor, "outcome"] == "rejected"
    before = (_watches(demo_db), _count(demo_db, "product_match"), _count(demo_db, "dim_listing"))
    again = discover_listings(demo_db, shops, retailers=["walmart"], use_model=False, archive_dir=tmp_path)
    assert again.summary["known"] == 12 and again.summary["candidates"] == 1  # only the rejected page again
    assert again.summary["auto"] == again.summary["review"] == again.summary["watched"] == 0
    assert (_watches(demo_db), _count(demo_db, "product_match"), _count(demo_db, "dim_listing")) == before


def test_category_pages_give_candidates_and_dry_run_writes_nothing(demo_db, demo_world, storefronts, tmp_path):
    target = demo_world.listings[demo_world.listings["retailer"] == "target"]
    category = target["category"].iloc[0]
    base = storefronts.urls["target"]
    path = _shops_file(tmp_path, f"  target:\n    base_url: {base}/\n    adapter: target\n"
                                 f"    requests_per_second: 200\n    category_urls: [{base}/c/{category}]\n")
    res = discover_listings(demo_db, load_shops(path), use_model=False, dry_run=True, archive_dir=tmp_path)
    in_category = {base + u for u in target.loc[target["category"] == category, "url"]}
    assert set(res.report["url"]) == in_category and res.summary["requests"] == 1 + len(in_category)
    assert res.summary["watched"] == (res.report["outcome"] == "auto").sum() > 0
    assert [_count(demo_db, t) for t in ("watch", "dim_listing", "product_match")] == [0, 0, 0]


# --- a generic shop of our own: robots.txt, sitemap, identifiers, an ambiguous page --------------------------
def _page(name: str, brand: str, extra: str = "") -> str:
    return (f'<!doctype html><html><head><title>{name}</title><script type="application/ld+json">'
            f'{{"@context": "https://schema.org", "@type": "Product", "name": "{name}", '
            f'"brand": {{"@type": "Brand", "name": "{brand}"}}{extra}, '
            f'"offers": {{"@type": "Offer", "price": "49.00", "priceCurrency": "EUR"}}}}</script></head>'
            f"<body><h1>{name}</h1></body></html>")


ACME_PAGES = {
    "/p/kettle": _page("Acme Electric Kettle Stainless 1.7L", "Acme", ', "gtin13": "4006381333931"'),
    "/p/drill": _page("Bosch Professional Drill", "Bosch", ', "mpn": "GSR 18V-55"'),
    "/p/espresso": _page("Espresso Machine 15 bar Silver", ""),
    "/p/hose": _page("Flexible Garden Hose 30 m", "Hozelock"),
    "/private/p/secret": _page("Secret Kettle", "Acme", ', "gtin13": "4006381333931"'),
}
ACME_CATALOG = """sku,title,brand,gtin,mpn,size
K-1,Stainless Steel Kettle 1.7 L,Acme,4006381333931,,1.7 L
D-1,Cordless Drill Driver 18V,Bosch,,GSR18V-55,
E-1,Espresso Machine with Milk Frother 15 bar,DeLonghi,,,
R-1,Garden Rake 16 Tine,Fiskars,,,
T-1,Toaster 2 Slice Stainless,Acme,,,
"""


class _Acme(QuietHandler):
    def do_GET(self):
        srv = self.server
        srv.requested.append(self.path)
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        if self.path == "/robots.txt":
            body, ctype = f"User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap.xml\n", "text/plain"
        elif self.path == "/sitemap.xml":
            locs = "".join(f"<url><loc>{base}{p}</loc></url>" for p in ACME_PAGES)
            body = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
            ctype = "application/xml"
        elif self.path in ACME_PAGES:
            body, ctype = ACME_PAGES[self.path], "text/html; charset=utf-8"
        else:
            body, ctype = "<html><body>no</body></html>", "text/html"
        data = body.encode()
        self.send_response(200 if body != "<html><body>no</body></html>" else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def acme():
    srv = LoopbackServer(("127.0.0.1", 0), _Acme)
    srv.requested = []
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.close()
        th.join(timeout=5)


@pytest.fixture()
def acme_setup(clean_db, acme, tmp_path):
    srv, base = acme
    (tmp_path / "catalog.csv").write_text(ACME_CATALOG)
    import_catalog(clean_db, tmp_path / "catalog.csv", archive_root=tmp_path)
    path = _shops_file(tmp_path, f"  acme:\n    base_url: {base}/\n    requests_per_second: 200\n"
                                 f"    sitemap: {base}/sitemap.xml\n")
    return clean_db, srv, base, path


def test_identifiers_watch_ambiguous_goes_to_review_and_confirming_watches_it(acme_setup, tmp_path):
    db, srv, base, path = acme_setup
    shops = load_shops(path)
    res = discover_listings(db, shops, use_model=False, archive_dir=tmp_path)
    by_url = res.report.set_index("url")
    assert by_url.loc[f"{base}/p/kettle", ["sku", "method", "outcome"]].tolist() == ["K-1", "gtin", "auto"]
    assert by_url.loc[f"{base}/p/drill", ["sku", "method", "outcome"]].tolist() == ["D-1", "mpn", "auto"]
    assert by_url.loc[f"{base}/p/espresso", ["sku", "outcome"]].tolist() == ["E-1", "review"]
    assert 0.45 <= by_url.loc[f"{base}/p/espresso", "score"] < 0.75
    assert by_url.loc[f"{base}/p/hose", "outcome"] == "rejected"
    assert by_url.loc[f"{base}/private/p/secret", "outcome"] == "skipped"
    assert "/private/p/secret" not in srv.requested  # robots.txt disallows it: never requested
    assert _watches(db) == {f"{base}/p/kettle": "K-1", f"{base}/p/drill": "D-1"}

    session = ReviewSession(db)  # the review app's queue and store function
    assert list(session.queue["url"]) == [f"{base}/p/espresso"] and session.current["sku"] == "E-1"
    assert session.decide(True)["status"] == "confirmed"

    srv.requested.clear()
    again = discover_listings(db, shops, use_model=False, archive_dir=tmp_path)
    assert again.report[again.report["outcome"] == "confirmed"]["url"].tolist() == [f"{base}/p/espresso"]
    assert _watches(db)[f"{base}/p/espresso"] == "E-1"
    assert again.summary["auto"] == again.summary["review"] == 0  # nothing new: known pages are not even fetched
    assert not {"/p/kettle", "/p/drill", "/p/espresso"} & set(srv.requested)
    third = discover_listings(db, shops, use_model=False, archive_dir=tmp_path)
    assert third.summary["watched"] == 0 and len(_watches(db)) == 3


def test_dry_run_writes_nothing(acme_setup, tmp_path):
    db, _srv, _base, path = acme_setup
    res = discover_listings(db, load_shops(path), use_model=False, dry_run=True, archive_dir=tmp_path)
    assert res.summary["auto"] == 2 and res.summary["review"] == 1 and res.summary["dry_run"]
    assert [_count(db, t) for t in ("watch", "dim_listing", "product_match", "dim_retailer")] == [0, 0, 0, 0]


def test_cli_exit_codes_and_one_line_errors(acme_setup, tmp_path, capsys):
    db, _srv, base, path = acme_setup
    assert cli.main(["discover", "--shops", str(path), "--retailer", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: unknown retailer(s) nope") and "acme" in err
    assert cli.main(["discover", "--shops", str(path), "--sku", "NOPE", "--rules", "--dry-run"]) == 2
    assert "unknown sku(s) NOPE" in capsys.readouterr().err
    args = ["discover", "--shops", str(path), "--rules", "--format", "json", "--archive", str(tmp_path / "raw")]
    assert cli.main([*args, "--max-pages", "2", "--dry-run"]) == 0
    capped = json.loads(capsys.readouterr().out)
    assert capped["summary"]["requests"] == 2 and any("--max-pages 2" in n for n in capped["summary"]["notes"])
    assert cli.main(args) == 0
    raw = capsys.readouterr().out
    out = json.loads(raw)
    assert "NaN" not in raw and raw.count("\n") == 1  # one strict JSON document
    assert {c["outcome"] for c in out["candidates"]} == {"auto", "review", "rejected", "skipped"}
    assert out["summary"]["watched"] == 2 and out["summary"]["queued"] == 1 and _count(db, "watch") == 2
    assert cli.main(["discover", "--shops", str(path), "--rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("discover: 1 shop(s)") and "0 watch(es) added, 0 queued" in lines[-1]
    gone = _shops_file(tmp_path, "  gone:\n    base_url: http://127.0.0.1:9/\n    sitemap: http://127.0.0.1:9/s.xml\n")
    assert cli.main(["discover", "--shops", str(gone), "--rules"]) == 1
    assert "error: gone: cannot reach http://127.0.0.1:9/" in capsys.readouterr().err
    with pytest.raises(DiscoverError, match="no shop in"):
        discover_listings(db, load_shops(_shops_file(tmp_path, f"  plain:\n    base_url: {base}/\n")))
