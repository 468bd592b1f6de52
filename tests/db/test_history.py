"""The history of listings (migration 0018, `db.listings`, `db.history`, `priceintel listing-history`) and the load
watermark (`db.watermark`, the pipeline's load stage), on the real embedded PostgreSQL.

History: title, url, seller and availability loaded over several days, in order, out of order and back-filled,
become versions by day of observation; the as-of query answers for any day; a load that changes nothing writes
nothing; a change made by raw SQL is captured; tenants see their own history only and the apps' role imports
listings (and their history) without being able to write the history itself; the migration goes down and up again
and back-fills availability from fact_price. Watermark: a re-run stages nothing, late rows the warehouse lacks are
loaded, a forced reload stages everything, a failed load leaves the watermark where it was."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from _fixtures_pg import migrated_database
from priceintel import clean
from priceintel.cli import main
from priceintel.db import history, listings, load, migrate, roles, tenancy, watermark
from priceintel.db.engine import get_engine
from priceintel.db.errors import LoadError
from priceintel.ingest import provenance
from priceintel.ingest.observations import import_observations
from priceintel.items import MATCH_COLUMNS, SALES_COLUMNS
from priceintel.pipeline import stages

pytestmark = pytest.mark.slow

FIELDS = ("valid_from", "valid_to", "last_seen", "title", "url", "seller", "in_stock")
U1, U0 = "https://shop.example/p/B001", "https://shop.example/old/B001"


def D(month: int, day: int) -> date:  # noqa: N802 - a day, as the tables hold it
    return date(2026, month, day)


def _obs(item: str, day: date, title: str | None, url: str | None, seller: str | None, stock: bool | None) -> dict:
    return {"retailer": "amazon", "item_id": item, "ds": day, "title": title, "url": url, "seller": seller,
            "in_stock": stock}  # fmt: skip


def _upsert(engine: sa.Engine, rows: list[dict] | pd.DataFrame, **kw) -> dict:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    with engine.begin() as conn:
        return load.upsert_listings(conn, frame, **kw)


def _versions(engine: sa.Engine, item: str = "B001", fields: tuple[str, ...] = FIELDS) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            f"""SELECT {", ".join(f"h.{f}" for f in fields)} FROM dim_listing_history h JOIN dim_listing l
                USING (listing_id) WHERE l.item_id = :i ORDER BY h.valid_from"""), {"i": item})]  # fmt: skip


def _one(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).one()


@pytest.fixture()
def db(clean_db):
    with clean_db.begin() as conn:
        load.upsert_retailers(conn, pd.DataFrame({"retailer": ["amazon", "walmart"], "name": ["Amazon", "Walmart"]}))
    return clean_db


#: the story of listing B001, in the order it is loaded: days 1-3 at once, 6, then 5 and 4 late, then June 28
STORY = [
    [_obs("B001", D(7, 1), "Kettle", U1, "Acme", True), _obs("B001", D(7, 2), "Kettle", U1, "Acme", True),
     _obs("B001", D(7, 3), "Kettle", U1, "Acme", False)],
    [_obs("B001", D(7, 6), "Kettle 1.7 L", U1, "Acme", True)],
    [_obs("B001", D(7, 5), "Kettle", U1, "Acme", False)],
    [_obs("B001", D(7, 4), "Kettle", U1, "Bob's Deals", False)],
    [_obs("B001", D(6, 28), "Kettle", U0, "Acme", True)],
]  # fmt: skip
EXPECTED = [
    (D(6, 28), D(7, 1), D(6, 28), "Kettle", U0, "Acme", True),  # the back-filled day: its own url
    (D(7, 1), D(7, 3), D(7, 2), "Kettle", U1, "Acme", True),
    (D(7, 3), D(7, 4), D(7, 3), "Kettle", U1, "Acme", False),  # out of stock
    (D(7, 4), D(7, 5), D(7, 4), "Kettle", U1, "Bob's Deals", False),  # day 4 came last: it splits days 3-5
    (D(7, 5), D(7, 6), D(7, 5), "Kettle", U1, "Acme", False),
    (D(7, 6), None, D(7, 6), "Kettle 1.7 L", U1, "Acme", True),  # the current version: the newest day's
]


def test_changes_by_day_become_versions_in_any_load_order(db):
    added = [_upsert(db, rows)["history"] for rows in STORY]
    assert added == [2, 1, 0, 2, 1]  # day 5 only extends a version; day 4 splits one (two new pieces)
    assert _versions(db) == EXPECTED
    # the listing is its newest observed day, even though the last load was an old day's
    row = _one(db, "SELECT title, url, seller, in_stock, first_seen, last_seen FROM dim_listing WHERE item_id = 'B001'")
    assert tuple(row) == ("Kettle 1.7 L", U1, "Acme", True, D(6, 28), D(7, 6))
    # loading every day at once, in order, gives the same history
    everything = [dict(o, item_id="B002") for rows in STORY for o in rows]
    assert _upsert(db, sorted(everything, key=lambda o: o["ds"]))["history"] == len(EXPECTED)
    assert _versions(db, "B002") == EXPECTED


def test_a_load_merged_in_several_calls_gives_the_same_history(db, monkeypatch):
    monkeypatch.setattr(listings, "CHUNK", 3)  # listings spread over several calls of the merge in one load
    rows = [dict(o, item_id=item) for item in ("B003", "B004", "B005") for batch in STORY for o in batch]
    assert _upsert(db, rows)["history"] == 3 * len(EXPECTED)
    assert _versions(db, "B003") == _versions(db, "B004") == _versions(db, "B005") == EXPECTED


def test_the_seller_comes_from_the_scraped_offers(tmp_path):
    offers = pd.DataFrame({"page_sha256": ["a", "b"], "methods": ["{}", "{}"], "seller": ["Walmart.com", None]})
    offers.to_parquet(tmp_path / "offers.parquet")
    obs = pd.DataFrame({"retailer": "walmart", "item_id": ["1", "2", "3"], "page_sha256": ["a", "b", "c"]})
    assert provenance.with_methods(obs, tmp_path / "offers.parquet")["seller"].tolist()[:2] == ["Walmart.com", None]


def test_what_a_listing_looked_like_on_a_day_is_one_query(db):
    for rows in STORY:
        _upsert(db, rows)

    def as_of(day: date) -> tuple | None:
        with db.connect() as conn:
            sql = "SELECT title, url, seller, in_stock FROM listing_as_of(:d) WHERE item_id = 'B001'"
            row = conn.execute(sa.text(sql), {"d": day}).first()
        return None if row is None else tuple(row)

    assert as_of(D(6, 27)) is None  # before its first observation
    assert as_of(D(6, 30)) == ("Kettle", U0, "Acme", True)  # an unobserved day: the version in effect
    assert as_of(D(7, 3)) == ("Kettle", U1, "Acme", False)
    assert as_of(D(7, 4)) == ("Kettle", U1, "Bob's Deals", False)
    assert as_of(D(12, 31)) == ("Kettle 1.7 L", U1, "Acme", True)
    assert history.listing_on(db, "Amazon", " B001 ", "2026-07-04")["seller"] == "Bob's Deals"
    assert [v["valid_from"] for v in history.listing_history(db, "amazon", "B001")] == [e[0] for e in EXPECTED]
    with pytest.raises(history.HistoryError, match=r"was not observed by 2026-06-01: its history starts 2026-06-28"):
        history.listing_on(db, "amazon", "B001", "2026-06-01")
    with pytest.raises(history.HistoryError, match="no listing amazon NOPE in the default tenant"):
        history.listing_history(db, "amazon", "NOPE")
    with pytest.raises(history.HistoryError, match="'2026-13-01' is not a day"):
        history.listing_on(db, "amazon", "B001", "2026-13-01")


def test_a_load_that_changes_nothing_writes_no_history(db):
    for rows in STORY:
        _upsert(db, rows)
    stamps = _versions(db, fields=(*FIELDS, "recorded_at"))
    for rows in STORY:  # every load again
        assert _upsert(db, rows) == {"staged": len(rows), "inserted": 0, "updated": 0, "history": 0}
    assert _versions(db, fields=(*FIELDS, "recorded_at")) == stamps
    # a new day with the same values: no version, only the current one's last day moves
    assert _upsert(db, [_obs("B001", D(7, 9), "Kettle 1.7 L", U1, "Acme", True)])["history"] == 0
    assert _versions(db)[-1] == (D(7, 6), None, D(7, 9), "Kettle 1.7 L", U1, "Acme", True)
    # NULL is unknown: a day whose page showed no title or stock (and a frame without a seller) changes nothing
    unknown = pd.DataFrame([_obs("B001", D(7, 10), None, U1, None, None)]).drop(columns="seller")
    assert _upsert(db, unknown)["history"] == 0
    assert _versions(db)[-1] == (D(7, 6), None, D(7, 10), "Kettle 1.7 L", U1, "Acme", True)
    assert len(_versions(db)) == len(EXPECTED)


def test_undated_rows_are_observed_today_or_on_the_load_day(db):
    today = _one(db, "SELECT current_date")[0]
    first = pd.DataFrame({"retailer": ["amazon"], "item_id": ["C1"], "title": ["Mug"], "url": ["https://x/c1"]})
    assert _upsert(db, first, seen_date="2026-07-05") == {"staged": 1, "inserted": 1, "updated": 0, "history": 1}
    assert _upsert(db, first.assign(title="Mug, blue")) == {"staged": 1, "inserted": 0, "updated": 1, "history": 1}
    assert _versions(db, "C1") == [(D(7, 5), today, D(7, 5), "Mug", "https://x/c1", None, None),
                                   (today, None, today, "Mug, blue", "https://x/c1", None, None)]  # fmt: skip


def test_a_change_made_outside_the_loaders_is_captured(db):
    _upsert(db, STORY[0])
    today = _one(db, "SELECT current_date")[0]
    with db.begin() as conn:  # an analyst fixes the seller by hand (the capture trigger on dim_listing)
        conn.execute(sa.text("UPDATE dim_listing SET seller = 'Acme Ltd', brand = 'Acme' WHERE item_id = 'B001'"))
        conn.execute(sa.text("UPDATE dim_listing SET brand = 'ACME' WHERE item_id = 'B001'"))  # untracked: nothing
    assert _versions(db)[-2:] == [(D(7, 3), today, D(7, 3), "Kettle", U1, "Acme", False),
                                  (today, None, today, "Kettle", U1, "Acme Ltd", False)]  # fmt: skip
    # the loaders' own updates of dim_listing are not captured twice
    assert _upsert(db, [_obs("B001", today + timedelta(days=1), "Kettle", U1, "Acme Ltd", True)])["history"] == 1
    assert len(_versions(db)) == 4


def test_temporary_tables_made_by_the_caller_are_refused(db):
    """The merge runs as the owner over session temporary tables: tables of those names made beforehand by the
    caller (who could hang a trigger on them, run as the owner) make it refuse instead of using them."""
    _upsert(db, STORY[0])
    before = _versions(db)
    with pytest.raises((DBAPIError, LoadError), match="not made by this function"), db.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE priceintel_lh_obs (listing_id integer, day date, title text, "
                             "url text, seller text, in_stock boolean)"))  # fmt: skip
        load.upsert_listings(conn, pd.DataFrame([_obs("B001", D(7, 9), "Kettle 2", U1, None, True)]))
    assert _versions(db) == before  # nothing half-done: the transaction rolled back


def test_periods_never_overlap(db):
    _upsert(db, STORY[0])
    with pytest.raises(DBAPIError, match="dim_listing_history_no_overlap"), tenancy.as_owner(), db.begin() as conn:
        conn.execute(sa.text("""INSERT INTO dim_listing_history (listing_id, valid_from, valid_to, last_seen, tenant_id)
                                SELECT listing_id, '2026-07-02', '2026-07-05', '2026-07-02', tenant_id
                                FROM dim_listing WHERE item_id = 'B001'"""))  # fmt: skip


# --- tenants and the apps' role ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two(pg_server_url):
    """A fresh database with tenants acme and globex and the apps' role."""
    with migrated_database(pg_server_url, "priceintel_history") as (url, owner):
        for name in ("acme", "globex"):
            tenancy.ensure_tenant(owner, name)
            with tenancy.scope(name), owner.begin() as conn:
                load.upsert_retailers(conn, pd.DataFrame({"retailer": ["amazon"], "name": ["Amazon"]}))
        app_url = roles.ensure_app_role(url)
        assert app_url is not None
        yield owner, app_url


def test_tenants_see_their_own_history_only(two):
    owner, app_url = two
    for name, title in (("acme", "Acme kettle"), ("globex", "Globex kettle")):
        with tenancy.scope(name):
            _upsert(owner, [_obs("B001", D(7, 1), title, U1, None, True)])
    for name, title in (("acme", "Acme kettle"), ("globex", "Globex kettle")):
        with tenancy.scope(name):
            assert [v["title"] for v in history.listing_history(owner, "amazon", "B001")] == [title]
            with owner.connect() as conn:
                assert conn.execute(sa.text("SELECT title FROM listing_as_of('2026-07-01')")).scalars().all() == [title]
    with tenancy.as_owner(), owner.connect() as conn:
        acme_id = conn.execute(sa.text("SELECT listing_id FROM dim_listing l JOIN tenant t USING (tenant_id) "
                                       "WHERE t.name = 'acme'")).scalar()  # fmt: skip
    # acme's listing, recorded by globex: refused (the function runs as the owner, so it checks the tenant itself)
    with tenancy.scope("globex"), pytest.raises(DBAPIError, match="one of this tenant's"), owner.begin() as conn:
        conn.execute(sa.text("SELECT * FROM priceintel_listing_history_observe(ARRAY[:i], ARRAY[DATE '2026-07-02'], "
                             "ARRAY['stolen'], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::boolean])"),
                     {"i": acme_id})  # fmt: skip
    with tenancy.as_owner():
        assert _versions(owner, fields=("title",)) == [("Acme kettle",), ("Globex kettle",)]


def test_the_apps_role_imports_listings_with_their_history_but_cannot_write_it(two, tmp_path):
    owner, app_url = two
    app = get_engine(app_url)
    csv = tmp_path / "obs.csv"
    csv.write_text("retailer,item_id,date,price,title,url,availability\n"
                   "amazon,I9,2026-07-02,10.00 USD,Teapot,https://a.example/I9,in stock\n"
                   "amazon,I9,2026-07-03,10.00 USD,Teapot,https://a.example/I9,out of stock\n"
                   "amazon,I9,2026-07-01,11.00 USD,Tea pot,https://a.example/I9,in stock\n")  # fmt: skip
    with tenancy.scope("acme"):
        res = import_observations(app, csv, archive_root=tmp_path / "archive")
        assert res.counts["inserted"] == 3
        assert _versions(owner, "I9", ("valid_from", "valid_to", "title", "in_stock")) == [
            (D(7, 1), D(7, 2), "Tea pot", True),
            (D(7, 2), D(7, 3), "Teapot", True),
            (D(7, 3), None, "Teapot", False),
        ]
        assert tuple(_one(owner, "SELECT title, in_stock FROM dim_listing WHERE item_id = 'I9'")) == ("Teapot", False)
        with pytest.raises(DBAPIError, match="permission denied"), app.begin() as conn:
            conn.execute(sa.text("DELETE FROM dim_listing_history"))
    with tenancy.scope("globex"):
        assert _versions(owner, "I9") == []


# --- the migration ----------------------------------------------------------------------------------------------


def test_migration_downgrades_and_upgrades_with_a_backfill(pg_server_url):
    with migrated_database(pg_server_url, "priceintel_history_mig") as (url, owner):
        prices = pd.DataFrame({"retailer": "amazon", "item_id": "B7", "ds": pd.to_datetime(
            ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-04"]), "price": 9.5, "currency": "USD",
            "observed_at": pd.Timestamp("2026-07-01T08:00Z"), "in_stock": [True, True, False, True]})  # fmt: skip
        with owner.begin() as conn:
            load.upsert_retailers(conn, pd.DataFrame({"retailer": ["amazon"]}))
            load.upsert_listings(conn, pd.DataFrame({"retailer": ["amazon"], "item_id": ["B7"], "title": ["Kettle"]}))
            load.ensure_dates(conn, "2026-07-01", "2026-07-04")
            load.load_prices(conn, prices)
        assert migrate.downgrade(url, "0017") == "0017"
        insp = sa.inspect(owner)
        assert not {"dim_listing_history", "load_watermark"} & set(insp.get_table_names())
        assert not {"seller", "in_stock"} & {c["name"] for c in insp.get_columns("dim_listing")}
        assert migrate.upgrade(url) == migrate.head() == "0018"
        # availability from fact_price day by day, the title as it stood
        assert _versions(owner, "B7", ("valid_from", "valid_to", "last_seen", "title", "in_stock")) == [
            (D(7, 1), D(7, 3), D(7, 2), "Kettle", True), (D(7, 3), D(7, 4), D(7, 3), "Kettle", False),
            (D(7, 4), None, D(7, 4), "Kettle", True)]  # fmt: skip
        assert _one(owner, "SELECT in_stock FROM dim_listing WHERE item_id = 'B7'")[0] is True
        with owner.begin() as conn:  # and the loaders work on the upgraded schema
            assert load.upsert_listings(conn, prices.assign(ds=pd.Timestamp("2026-07-05"), title="Kettle 2").iloc[:1])[
                "history"] == 1  # fmt: skip


# --- the watermark ----------------------------------------------------------------------------------------------


def _prices(rows: list[tuple]) -> pd.DataFrame:
    """Observations (retailer, item_id, day, hour observed on that day, price)."""
    return pd.DataFrame([{"retailer": r, "item_id": i, "ds": pd.Timestamp(d), "price": p, "currency": "USD",
                          "in_stock": True, "observed_at": pd.Timestamp(d, tz="UTC") + pd.Timedelta(hours=h)}
                         for r, i, d, h, p in rows])  # fmt: skip


def _load_prices(engine: sa.Engine, obs: pd.DataFrame, full: bool = False, fail: bool = False) -> dict:
    with engine.begin() as conn:
        chosen = watermark.fresh(conn, obs, full=full)
        load.upsert_listings(conn, obs[["retailer", "item_id", "ds", "in_stock"]])
        load.ensure_dates(conn, obs["ds"].min(), obs["ds"].max())
        load.load_prices(conn, chosen.rows)
        out = watermark.advance(conn, chosen, run_id=None)
        if fail:
            raise RuntimeError("the load fails after the watermark moved")
    return out


FIRST = [("amazon", "A1", "2026-07-01", 8, 10.0), ("amazon", "A1", "2026-07-02", 8, 10.5),
         ("amazon", "A2", "2026-07-02", 9, 20.0), ("walmart", "W1", "2026-07-02", 7, 30.0)]  # fmt: skip


def test_the_watermark_skips_what_is_stored_and_loads_late_rows(db):
    assert _load_prices(db, _prices(FIRST)) == {"seen": 4, "staged": 4, "new": 4, "late": 0, "skipped": 0,
                                                "full": False, "advanced": 2}  # fmt: skip
    marks = watermark.read(db)
    assert marks == {"amazon": datetime(2026, 7, 2, 9, tzinfo=UTC), "walmart": datetime(2026, 7, 2, 7, tzinfo=UTC)}
    again = _load_prices(db, _prices(FIRST))  # the same inputs: nothing to stage
    assert (again["staged"], again["skipped"], again["advanced"]) == (0, 4, 0)
    later = _prices([*FIRST[1:],  # stored: skipped
                     ("amazon", "A3", "2026-07-01", 6, 5.0),  # late (older than amazon's mark) and missing: loaded
                     ("amazon", "A1", "2026-07-01", 7, 9.0),  # late, and older than the stored observation: skipped
                     ("amazon", "A1", "2026-07-03", 8, 11.0)])  # newer: loaded  # fmt: skip
    out = _load_prices(db, later)
    assert (out["seen"], out["new"], out["late"], out["staged"], out["skipped"], out["advanced"]) == (6, 1, 1, 2, 4, 1)
    assert watermark.read(db)["amazon"] == datetime(2026, 7, 3, 8, tzinfo=UTC)
    price = (
        "SELECT fp.price FROM fact_price fp JOIN dim_listing l USING (listing_id) WHERE item_id = :i AND date_key = :d"
    )
    assert float(_one(db, price, i="A3", d=20260701)[0]) == 5.0
    assert float(_one(db, price, i="A1", d=20260701)[0]) == 10.0  # the newer stored observation stays
    forced = _load_prices(db, later, full=True)  # a forced reload stages every row
    assert (forced["staged"], forced["full"], forced["advanced"]) == (6, True, 0)
    assert float(_one(db, price, i="A1", d=20260701)[0]) == 9.0
    with pytest.raises(RuntimeError, match="fails after"):  # a failed load leaves the watermark where it was
        _load_prices(db, _prices([("walmart", "W1", "2026-07-05", 7, 31.0)]), fail=True)
    assert watermark.read(db)["walmart"] == datetime(2026, 7, 2, 7, tzinfo=UTC)
    assert watermark.is_true("True") and watermark.is_true("1") and not watermark.is_true("False")


def _upstream(tmp_path, obs: pd.DataFrame) -> dict:
    """The load task's inputs, as the pipeline's earlier tasks leave them."""
    listings = clean.listings_from_observations(obs)
    frames = {"scrape": {"offers": obs.assign(methods="{}"), "errors": pd.DataFrame(columns=["url", "retailer", "ds",
              "kind", "message"])},
              "clean": {"observations": obs, "listings": listings,
                        "errors": pd.DataFrame(columns=["url", "retailer", "ds", "kind", "message"])},
              "match": {"matches": pd.DataFrame(columns=MATCH_COLUMNS).astype(object)}}  # fmt: skip
    world = tmp_path / "world"
    world.mkdir(exist_ok=True)
    pd.DataFrame({"sku": ["SKU-1"], "name": ["Kettle"]}).to_csv(world / "products.csv", index=False)
    pd.DataFrame(columns=SALES_COLUMNS).to_csv(world / "sales.csv", index=False)
    return stages.save_products(tmp_path / "data", world, frames)


def _observations(days: list[str], titles: list[str], currency: str = "USD") -> pd.DataFrame:
    obs = _prices([("amazon", "K1", d, 8, 10.0 + i) for i, d in enumerate(days)])
    return obs.assign(title=titles, url="https://a.example/K1", brand=None, gtin=None, mpn=None, list_price=None,
                      promo=False, currency=currency, page_sha256=None)  # fmt: skip


def test_the_load_stage_loads_what_is_new_once_and_records_the_history(db, tmp_path):
    obs = _observations(["2026-07-01", "2026-07-02", "2026-07-03"], ["Kettle", "Kettle", "Kettle XL"])
    up = _upstream(tmp_path, obs)
    first = stages.load_stage(up, tmp_path / "data")["loaded"]
    assert (first["prices"]["inserted"], first["watermark"]["staged"], first["listings"]["history"]) == (3, 3, 2)
    assert _versions(db, "K1", ("valid_from", "valid_to", "title")) == [(D(7, 1), D(7, 3), "Kettle"),
                                                                         (D(7, 3), None, "Kettle XL")]  # fmt: skip
    again = stages.load_stage(up, tmp_path / "data")["loaded"]  # a re-run of the same inputs
    assert (again["prices"]["staged"], again["watermark"]["skipped"], again["listings"]["history"]) == (0, 3, 0)
    assert again["listings"]["updated"] == 0
    forced = stages.load_stage(up, tmp_path / "data", full_reload="true")["loaded"]
    assert (forced["prices"]["staged"], forced["prices"]["updated"], forced["watermark"]["full"]) == (3, 0, True)
    mark = watermark.read(db)
    bad = _observations(["2026-07-04"], ["Kettle XXL"], currency="usd")  # a bad row: the whole load rolls back
    with pytest.raises(load.LoadError, match="currency"):
        stages.load_stage(_upstream(tmp_path, pd.concat([obs, bad], ignore_index=True)), tmp_path / "data")
    assert watermark.read(db) == mark and _versions(db, "K1")[-1][3] == "Kettle XL"
    assert _one(db, "SELECT count(*) FROM fact_price")[0] == 3


# --- the command ------------------------------------------------------------------------------------------------


def test_the_command_prints_the_history_or_one_day(db, capsys):
    for rows in STORY:
        _upsert(db, rows)
    capsys.readouterr()
    assert main(["listing-history", "amazon", "B001"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("amazon B001 (listing 1): 6 version(s)")
    bob = "2026-07-04 to 2026-07-05 (last seen 2026-07-04): title 'Kettle', out of stock, seller \"Bob's Deals\""
    assert bob in out
    assert "2026-07-06 current (last seen 2026-07-06): title 'Kettle 1.7 L', in stock" in out and U0 in out
    assert main(["listing-history", "amazon", "B001", "--on", "2026-07-04", "--json"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert (day["seller"], day["valid_from"], day["valid_to"], day["in_stock"]) == ("Bob's Deals", "2026-07-04",
                                                                                    "2026-07-05", False)  # fmt: skip
    assert main(["listing-history", "amazon", "B001", "--on", "2026-07-30"]) == 0
    assert "amazon B001 (listing 1) on 2026-07-30:" in capsys.readouterr().out
    for args, message in (
        (["amazon", "NOPE"], "error: no listing amazon NOPE in the default tenant"),
        (["amazon", "B001", "--on", "2026-13-01"], "error: '2026-13-01' is not a day: use YYYY-MM-DD"),
        (["amazon", "B001", "--on", "2026-06-01"], "error: listing amazon B001 was not observed by 2026-06-01"),
    ):
        assert main(["listing-history", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and len(err.strip().splitlines()) == 1 and "Traceback" not in err
