"""Price lineage (migration 0016, `priceintel lineage PRICE_ID`): a real scrape of the demo shops, cleaned and
loaded by the pipeline's load stage into a fresh database, then each stored price traced back to its scrape run,
the archived page it was read from (whose body yields that price again), its extraction method and the run ids;
an imported price to its import run; a re-load that changes a price to the new lineage; bad ids and another
tenant's price to clear errors."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa

from _fixtures_pg import migrated_database
from priceintel import clean, config
from priceintel.cli import main
from priceintel.db import load, migrate, tenancy
from priceintel.db.errors import LoadError
from priceintel.db.lineage import LineageError, parse_price_id, price_id, price_lineage
from priceintel.demo import Storefronts, generate_world
from priceintel.ingest.observations import import_observations
from priceintel.ingest.provenance import LAYERS, NOT_RECORDED, layer
from priceintel.match import rules as match
from priceintel.obs import logs
from priceintel.pipeline import stages as pipeline
from priceintel.scrape import Fetcher, RawArchive, scrape_demo
from priceintel.scrape.extract import extract

pytestmark = pytest.mark.slow

RUN_ID = "run-lineage-test"
#: the layer each demo shop's price is read from (demo.templates: amazon HTML, walmart __NEXT_DATA__, target JSON-LD)
SHOP_LAYERS = {"amazon": "adapter selector", "walmart": "embedded JSON", "target": "JSON-LD"}


def _scrape(data_dir, world, urls, days) -> dict:
    """Scrape the demo shops on `days` into the archive `data_dir/raw`, clean, match, save the task products;
    return the load task's upstream."""
    world.write(data_dir / "demo" / "world")
    with Fetcher(archive=RawArchive(data_dir / "raw")) as fetcher:
        offers, errors = scrape_demo(urls, days, fetcher)
    obs, cerr = clean.offers_to_observations(offers)
    listings = clean.listings_from_observations(obs)
    matches = match.match_listings(listings, world.products)
    frames = {"scrape": {"offers": offers, "errors": errors},
              "clean": {"observations": obs, "listings": listings, "errors": cerr},
              "match": {"matches": matches}}  # fmt: skip
    return pipeline.save_products(data_dir, data_dir / "demo" / "world", frames)


@pytest.fixture(scope="module")
def world(pg_server_url, tmp_path_factory):
    """A fresh database with two days of the three demo shops loaded by `load_stage` under run id RUN_ID;
    DATABASE_URL and PRICEINTEL_DATA_DIR point at it and its data dir for the module."""
    data_dir = tmp_path_factory.mktemp("lineage") / "data"
    demo = generate_world(n_products=4, n_days=3, seed=11)
    days = sorted(pd.to_datetime(demo.prices["ds"].unique()).date)[:2]
    with migrated_database(pg_server_url, "priceintel_lineage") as (url, engine), pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        mp.setenv("PRICEINTEL_DATA_DIR", str(data_dir))
        with Storefronts(demo) as fronts:
            upstream = _scrape(data_dir, demo, fronts.urls, days)
        with logs.context(run_id=RUN_ID):
            receipt = pipeline.load_stage(upstream, data_dir)
        yield SimpleNamespace(engine=engine, data_dir=data_dir, upstream=upstream, receipt=receipt)


def _rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def _priced(engine) -> pd.DataFrame:
    """Every stored price with its retailer, first per retailer first."""
    return pd.DataFrame(_rows(engine, """
        SELECT fp.listing_id, fp.date_key, r.retailer, l.item_id, fp.price, fp.observed_at, fp.page_sha256
        FROM fact_price fp JOIN dim_listing l USING (listing_id) JOIN dim_retailer r USING (retailer_id)
        WHERE fp.price IS NOT NULL ORDER BY r.retailer, fp.listing_id, fp.date_key"""))  # fmt: skip


def _lineage(capsys, pid: str, *extra: str) -> dict:
    capsys.readouterr()
    assert main([*extra, "lineage", pid, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _error(capsys, pid: str, *extra: str) -> str:
    capsys.readouterr()
    assert main([*extra, "lineage", pid]) == 2
    return capsys.readouterr().err


def test_a_scraped_price_traces_to_its_run_its_archived_page_and_its_method(world, capsys):
    priced = _priced(world.engine)
    runs = _rows(world.engine, "SELECT * FROM scrape_run")
    assert len(runs) == 1 and runs[0]["pipeline_run_id"] == world.receipt["run_id"]
    assert len(priced) > 10 and set(priced["retailer"]) == set(SHOP_LAYERS)
    archive = RawArchive(world.data_dir / "raw")
    statuses = set()
    for _, row in priced.groupby("retailer").head(2).iterrows():
        out = _lineage(capsys, price_id(row["listing_id"], row["date_key"]))
        assert out["source"] == "scrape" and out["lineage_recorded"] and out["import_run"] is None
        assert out["price"]["retailer"] == row["retailer"] and out["price"]["item_id"] == row["item_id"]
        assert out["price"]["price"] == float(row["price"])
        run = out["scrape_run"]
        assert run["scrape_run_id"] == runs[0]["scrape_run_id"] and run["run_key"] == RUN_ID
        assert run["pipeline_run_id"] == world.receipt["run_id"] and run["pipeline_task"] == "load"
        assert run["code_version"] == config.code_version() and run["started_at"] and run["finished_at"]
        # the page: the archive holds the body whose sha256 it is, and that body yields this very price
        page = out["page"]
        assert page["sha256"] == row["page_sha256"] and page["held"] is True
        body = archive.get(page["sha256"])
        assert hashlib.sha256(body).hexdigest() == page["sha256"]
        assert page["where"] == str(archive.object_path(page["sha256"]))
        # the fetch that observed it (a conditional request may have been answered 304: the archived body) and
        # the fetch that brought the body
        fetch, first = page["fetch"], page["body_fetch"]
        assert pd.Timestamp(fetch["fetched_at"]) == pd.Timestamp(row["observed_at"]) and fetch["status"] in (200, 304)
        assert first["status"] == 200 and first["url"] == fetch["url"]
        assert (first == fetch) == (fetch["status"] == 200)
        statuses.add(fetch["status"])
        offer = extract(body, fetch["url"], row["retailer"])
        assert float(offer.price) == float(row["price"]) and offer.item_id == row["item_id"]
        assert offer.price_raw and offer.price_raw.encode() in body or f"{row['price']:.2f}".encode() in body
        # the method: what the extractor records for the price of that page, in the shop's layer
        assert out["extraction"]["method"] == offer.methods["price"]
        assert out["extraction"]["layer"] == layer(offer.methods["price"]) == SHOP_LAYERS[row["retailer"]]
    assert statuses == {200, 304}  # day 1 fetched the pages, day 2 asked whether they changed
    text_pid = price_id(priced.iloc[0]["listing_id"], priced.iloc[0]["date_key"])
    capsys.readouterr()
    assert main(["lineage", text_pid]) == 0
    text = capsys.readouterr().out
    assert f"price {text_pid}" in text and f"scrape run {runs[0]['scrape_run_id']}" in text
    assert f"run id {RUN_ID}" in text and "(content hash verified)" in text and "HTTP 200" in text
    assert "extraction method: " in text and NOT_RECORDED not in text


def test_every_loaded_price_has_a_method_of_the_extractor(world):
    rows = _rows(world.engine, "SELECT extraction_method, page_sha256, scrape_run_id, import_run_id FROM fact_price")
    assert rows and all(r["page_sha256"] and r["scrape_run_id"] and r["import_run_id"] is None for r in rows)
    assert all(layer(r["extraction_method"]) in set(LAYERS.values()) - {"imported from a file"} for r in rows)


def test_an_import_names_its_run_and_a_reload_that_changes_the_price_restores_the_scrape(world, capsys):
    row = _priced(world.engine).iloc[-1]
    pid = price_id(row["listing_id"], row["date_key"])
    day = pd.Timestamp(str(row["date_key"])).date()
    later = (pd.Timestamp(row["observed_at"]) + timedelta(hours=1)).isoformat()
    path = world.data_dir.parent / "vendor.csv"
    path.write_text(f"retailer,item_id,date,price,currency,observed_at\n"
                    f"{row['retailer']},{row['item_id']},{day},1.23,USD,{later}\n")  # fmt: skip
    result = import_observations(world.engine, path)
    assert result.counts["updated"] == 1
    out = _lineage(capsys, pid)
    assert out["source"] == "import" and out["price"]["price"] == 1.23
    imp = out["import_run"]
    assert imp["import_run_id"] == result.import_run_id and imp["kind"] == "prices"
    assert imp["file"] == str(path.resolve()) and imp["imported_by"] == "the command line"
    assert imp["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert imp["archived_copy"] == str(result.archive_path) and result.archive_path.is_file()
    assert out["extraction"] == {"method": "import", "layer": "imported from a file"}
    assert out["page"] is None and out["scrape_run"] is None  # the replaced scrape no longer describes it
    capsys.readouterr()
    assert main(["lineage", pid]) == 0
    assert f"import run {result.import_run_id} (prices, success): {path.resolve()}" in capsys.readouterr().out

    # the pipeline loads the scraped day again (the same inputs: a full reload, past the load watermark): the
    # stored number changes back, and so does its lineage
    with logs.context(run_id="run-lineage-again"):
        receipt = pipeline.load_stage(world.upstream, world.data_dir, full_reload=True)
    assert receipt["loaded"]["prices"]["updated"] == 1  # only the imported one: the others are unchanged
    again = _lineage(capsys, pid)
    assert again["source"] == "scrape" and again["price"]["price"] == float(row["price"])
    assert again["import_run"] is None and again["page"]["sha256"] == row["page_sha256"]
    assert again["scrape_run"]["pipeline_run_id"] == receipt["run_id"] != world.receipt["run_id"]
    assert again["scrape_run"]["run_key"] == "run-lineage-again"
    other = _priced(world.engine).iloc[0]  # an unchanged price keeps the run it came from
    kept = _lineage(capsys, price_id(other["listing_id"], other["date_key"]))
    assert kept["scrape_run"]["run_key"] == RUN_ID and kept["scrape_run"]["pipeline_run_id"] == world.receipt["run_id"]


def test_load_prices_keeps_or_replaces_lineage_with_the_number(world):
    """The upsert itself: lineage follows the stored number; an unchanged re-load keeps it (and fills gaps)."""
    frame = pd.DataFrame({"retailer": ["unit"], "item_id": ["U1"], "ds": pd.to_datetime(["2026-07-01"]),
                          "observed_at": pd.to_datetime(["2026-07-01T08:00Z"]), "price": [5.0], "currency": ["USD"],
                          "page_sha256": ["a" * 64], "extraction_method": ["jsonld"]})  # fmt: skip
    sql = ("SELECT fp.price, fp.page_sha256, fp.extraction_method, fp.scrape_run_id, fp.import_run_id "
           "FROM fact_price fp JOIN dim_listing l USING (listing_id) WHERE l.item_id = 'U1'")  # fmt: skip
    with world.engine.begin() as conn:
        load.upsert_retailers(conn, pd.DataFrame({"retailer": ["unit"]}))
        load.upsert_listings(conn, frame[["retailer", "item_id"]])
        legacy = load.load_prices(conn, frame.drop(columns=["page_sha256", "extraction_method"]))
        assert legacy["inserted"] == 1  # as a load before 0016: no lineage at all
        first, second = (load.record_scrape_run(conn, "unit") for _ in range(2))
        assert load.load_prices(conn, frame, scrape_run_id=first)["updated"] == 1  # same number: gaps filled
        row = dict(conn.execute(sa.text(sql)).mappings().one())
        assert (row["page_sha256"], row["extraction_method"], row["scrape_run_id"]) == ("a" * 64, "jsonld", first)
        assert load.load_prices(conn, frame, scrape_run_id=second)["updated"] == 0  # unchanged: lineage kept
        assert conn.execute(sa.text(sql)).mappings().one()["scrape_run_id"] == first
        changed = frame.assign(price=6.0, page_sha256="b" * 64, extraction_method="css:.price")
        assert load.load_prices(conn, changed, scrape_run_id=second)["updated"] == 1
        row = dict(conn.execute(sa.text(sql)).mappings().one())
        assert (row["page_sha256"], row["extraction_method"], row["scrape_run_id"]) == ("b" * 64, "css:.price", second)
        imp = conn.execute(sa.text("INSERT INTO import_run (kind, path, sha256) VALUES ('prices', 'x.csv', 'f') "
                                   "RETURNING import_run_id")).scalar_one()  # fmt: skip
        imported = changed.drop(columns=["page_sha256", "extraction_method"]).assign(
            price=7.0, observed_at=pd.to_datetime(["2026-07-01T09:00Z"])
        )
        assert load.load_prices(conn, imported, keep_newer=True, import_run_id=imp)["updated"] == 1
        row = dict(conn.execute(sa.text(sql)).mappings().one())
        assert row == {"price": 7, "page_sha256": None, "extraction_method": "import", "scrape_run_id": None,
                       "import_run_id": imp}  # fmt: skip
        with pytest.raises(LoadError, match=r"fact_price\.import_run_id: import run 999999 is not in import_run"):
            with conn.begin_nested():
                load.load_prices(conn, imported, import_run_id=999999)


def test_malformed_and_unknown_ids_are_clear_errors(world, capsys):
    assert parse_price_id(" 17-20260702 ") == parse_price_id("17-2026-07-02") == (17, 20260702)
    for bad, reason in [("abc", "expected <listing_id>-<YYYYMMDD>"), ("17-20261301", "2026-13-01 is not a day"),
                        ("0-20260701", "listing id 0 is out of range"), ("17", "expected"),
                        ("9999999999-20260701", "listing id 9999999999 is out of range")]:  # fmt: skip
        err = _error(capsys, bad)
        assert f"error: price id {bad!r} is malformed: {reason}" in err and "e.g. 17-20260702" in err, err
    err = _error(capsys, "999999-20260701")
    assert "error: no such price 999999-20260701: listing 999999 has no price stored on 2026-07-01" in err
    assert "in the default tenant" in err


def test_another_tenants_price_is_no_such_price(world, capsys):
    row = _priced(world.engine).iloc[0]
    pid = price_id(row["listing_id"], row["date_key"])
    tenancy.ensure_tenant(world.engine, "rival")
    err = _error(capsys, pid, "--tenant", "rival")
    assert f"no such price {pid}" in err and "in tenant 'rival'" in err
    with tenancy.scope("rival"), pytest.raises(LineageError, match="no such price"):
        price_lineage(world.engine, pid)
    # a price of the rival tenant, loaded without any lineage (as before 0016): found there only, and honest
    frame = pd.DataFrame(
        {
            "retailer": ["amazon"],
            "item_id": ["R1"],
            "ds": pd.to_datetime(["2026-07-01"]),
            "observed_at": pd.to_datetime(["2026-07-01T08:00Z"]),
            "price": [9.5],
            "currency": ["USD"],
        }
    )
    with tenancy.scope("rival"), world.engine.begin() as conn:
        load.upsert_retailers(conn, pd.DataFrame({"retailer": ["amazon"]}))
        load.upsert_listings(conn, frame[["retailer", "item_id"]])
        load.load_prices(conn, frame)
        listing = conn.execute(sa.text("SELECT listing_id FROM dim_listing WHERE item_id = 'R1'")).scalar_one()
    theirs = price_id(listing, 20260701)
    assert f"no such price {theirs}" in _error(capsys, theirs)
    out = _lineage(capsys, theirs, "--tenant", "rival")
    assert out["price"]["item_id"] == "R1" and not out["lineage_recorded"] and out["source"] is None
    capsys.readouterr()
    assert main(["--tenant", "rival", "lineage", theirs]) == 0
    text = capsys.readouterr().out
    for piece in ("run", "raw page", "extraction method"):
        assert f"  {piece}: {NOT_RECORDED}" in text, text


def test_migration_0016_downgrades_and_upgrades(pg_server_url):
    with migrated_database(pg_server_url, "priceintel_lineage_mig") as (url, engine):

        def columns(table: str) -> set[str]:
            return {c["name"] for c in sa.inspect(engine).get_columns(table)}

        assert {"extraction_method", "import_run_id"} <= columns("fact_price")
        assert {"pipeline_run_id", "run_key"} <= columns("scrape_run")
        assert migrate.downgrade(url, "0015") == "0015"
        assert not {"extraction_method", "import_run_id"} & columns("fact_price")
        assert not {"pipeline_run_id", "run_key"} & columns("scrape_run")
        assert migrate.upgrade(url) == migrate.head()
