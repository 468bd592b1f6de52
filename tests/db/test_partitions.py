"""fact_price partitioned by month and the apps' price rollups kept incrementally (migration 0017, `db.views`).

Every change a writer can make (new days, corrected prices, a price lost on the last priced day, deleted rows and
listings, match decisions, a product's new category, our own sales, a month far back, a TRUNCATE) is applied to
a real database; after each, the incrementally kept tables must equal their definitions computed from scratch.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from _fixtures_pg import migrated_database
from priceintel.db import load, migrate, roles, tenancy, views
from priceintel.db.engine import get_engine

START = date(2026, 7, 20)  # the days cross a month boundary: two partitions
DAYS = 20
RETAILERS = ("amazon", "walmart")
SKUS = [f"P{i}" for i in range(6)]
#: each table's key, to compare in one order
KEYS = {
    "app_prices_all": ["listing_id", "date_key"],
    "app_prices_daily_all": ["tenant_id", "date_key", "retailer", "category"],
    "app_listing_span_all": ["listing_id"],
}


@pytest.fixture(scope="module")
def db(pg_server_url):
    with migrated_database(pg_server_url, "priceintel_partitions") as (url, engine):
        yield url, engine


def _frame(conn, sql: str, **params) -> pd.DataFrame:
    return pd.DataFrame([dict(r) for r in conn.execute(sa.text(sql), params).mappings()])


def assert_rollups_exact(engine) -> None:
    """Each incrementally kept table equals its definition computed now from the facts."""
    with tenancy.as_owner(), engine.connect() as conn:
        for table, keys in KEYS.items():
            source = table.removesuffix("_all") + "_source"
            kept = _frame(conn, f"SELECT * FROM {table}")
            fresh = _frame(conn, f"SELECT * FROM {source}")
            assert len(kept) == len(fresh), (table, len(kept), len(fresh))
            if fresh.empty:
                continue
            kept = kept.sort_values(keys).reset_index(drop=True)
            fresh = fresh.sort_values(keys).reset_index(drop=True)[kept.columns]
            pd.testing.assert_frame_equal(kept, fresh, check_dtype=False, rtol=1e-9, obj=table)


def _prices(listings: pd.DataFrame, days: list[date], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for day in days:
        for r in listings.itertuples():
            price = None if rng.random() < 0.1 else round(float(rng.uniform(5, 50)), 2)
            rows.append({"retailer": r.retailer, "item_id": r.item_id, "ds": day,
                         "observed_at": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=9),
                         "price": price, "currency": "USD", "in_stock": bool(rng.random() < 0.9),
                         "promo": bool(rng.random() < 0.2)})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def world(db):
    """Two retailers, six products, twelve listings (ten matched), DAYS days of prices and sales, refreshed."""
    url, engine = db
    products = pd.DataFrame({"sku": SKUS, "name": [f"Item {s}" for s in SKUS],
                             "category": ["tea", "tea", "coffee", "coffee", None, "snacks"]})  # fmt: skip
    listings = pd.DataFrame(
        [
            {"retailer": r, "item_id": f"{r[0].upper()}{i}", "url": f"https://{r}.example/{i}", "title": f"t{i}"}
            for r in RETAILERS
            for i in range(6)
        ]  # fmt: skip
    )
    matches = listings.assign(sku=[SKUS[i % 6] for i in range(12)], method="gtin", score=1.0, status="auto")
    matches.loc[[4, 11], "sku"] = None  # two unmatched listings
    days = [START + timedelta(d) for d in range(DAYS)]
    sales = pd.DataFrame([{"sku": s, "ds": d, "units": 3, "price": 20.0} for s in SKUS[:4] for d in days[::2]])
    with engine.begin() as conn:
        load.upsert_retailers(conn, pd.DataFrame({"retailer": RETAILERS}))
        load.upsert_products(conn, products)
        load.upsert_listings(conn, listings)
        load.load_matches(conn, matches)
        load.load_prices(conn, _prices(listings, days, seed=1))
        load.load_sales(conn, sales)
    views.refresh(engine)
    return engine, listings, days


def test_partitions_are_monthly_with_brin_and_their_own_policy(world):
    engine, _, _ = world
    with tenancy.as_owner(), engine.connect() as conn:
        parts = dict(conn.execute(sa.text("""
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'fact_price'::regclass""")).all())  # fmt: skip
        assert parts["fact_price_2026_07"] == "FOR VALUES FROM (20260701) TO (20260801)"
        assert parts["fact_price_2026_08"] == "FOR VALUES FROM (20260801) TO (20260901)"
        assert parts["fact_price_default"] == "DEFAULT"
        # made ahead (by the migration; the load stage too): two months past today
        ahead = date.today().replace(day=1) + timedelta(days=62)
        assert f"fact_price_{ahead:%Y_%m}" in parts
        # made for the staged months only, not every month between them and today
        ahead_months = {f"{date.today().replace(day=1) + timedelta(days=31 * k):%Y_%m}" for k in range(3)}
        assert {"fact_price_2026_07", "fact_price_2026_08", "fact_price_default"} | {
            f"fact_price_{m}" for m in ahead_months
        } == set(parts)
        # rows are in their month's partition; none waits in the default
        n = conn.execute(sa.text("SELECT count(*) FROM fact_price_2026_07")).scalar()
        assert n == 12 * 12 and conn.execute(sa.text("SELECT count(*) FROM fact_price_default")).scalar() == 0
        kinds = dict(conn.execute(sa.text("""
            SELECT i.relname, am.amname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_am am ON am.oid = i.relam WHERE x.indrelid = 'fact_price_2026_07'::regclass""")).all())  # fmt: skip
        assert sorted(kinds.values()) == ["brin", "btree"]
        secured = conn.execute(sa.text("""
            SELECT count(*) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
            WHERE i.inhparent = 'fact_price'::regclass AND c.relrowsecurity
              AND EXISTS (SELECT 1 FROM pg_policy p
                          WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation')""")).scalar()  # fmt: skip
        assert secured == len(parts)
        # a month is pruned to its partition
        plan = "\n".join(r[0] for r in conn.execute(sa.text(
            "EXPLAIN SELECT * FROM fact_price WHERE date_key BETWEEN 20260801 AND 20260805")))  # fmt: skip
        assert "fact_price_2026_08" in plan and "fact_price_2026_07" not in plan


def test_the_rollups_follow_every_kind_of_change_exactly(world):
    engine, listings, days = world
    assert_rollups_exact(engine)
    pending = "SELECT count(*) FROM app_pending"

    def step(change, owner: bool = False) -> dict:
        if owner:
            with tenancy.as_owner(), engine.begin() as conn:
                change(conn)
        else:
            with engine.begin() as conn:
                change(conn)
        timings = views.refresh(engine, views=["mv_app_prices"])
        assert_rollups_exact(engine)
        with tenancy.as_owner(), engine.connect() as conn:
            assert conn.execute(sa.text(pending)).scalar() == 0
        return timings

    # a load that changes nothing queues nothing and the refresh does nothing
    with engine.begin() as conn:
        counts = load.load_prices(conn, _prices(listings, days, seed=1))
    assert counts["inserted"] == counts["updated"] == 0
    with tenancy.as_owner(), engine.connect() as conn:
        assert conn.execute(sa.text(pending)).scalar() == 0
    stamp = "SELECT refreshed_at FROM app_refresh WHERE name = 'mv_app_prices'"
    with tenancy.as_owner(), engine.connect() as conn:
        stamped = conn.execute(sa.text(stamp)).scalar()
    assert views.refresh(engine, views=["mv_app_prices"]) == dict.fromkeys(views.INCREMENTAL, 0.0)
    with tenancy.as_owner(), engine.connect() as conn:  # the apps' caches stay valid
        assert conn.execute(sa.text(stamp)).scalar() == stamped

    def first_row() -> str:
        with tenancy.as_owner(), engine.connect() as conn:
            return conn.execute(sa.text("SELECT ctid::text FROM app_prices_all WHERE date_key = :k LIMIT 1"),
                                {"k": int(f"{days[0]:%Y%m%d}")}).scalar_one()  # fmt: skip

    untouched = first_row()
    nxt = days[-1] + timedelta(1)
    step(lambda c: load.load_prices(c, _prices(listings, [nxt], seed=2)))  # a new day
    assert first_row() == untouched  # kept in place: only the new day's rows were written
    changed = _prices(listings, days[-3:], seed=3)  # corrections of the last three days
    step(lambda c: load.load_prices(c, changed))
    # the last priced day loses its price; the first day of a listing is deleted
    step(lambda c: c.execute(sa.text("UPDATE fact_price SET price = NULL, currency = NULL WHERE date_key = :k"),
                             {"k": int(f"{nxt:%Y%m%d}")}))  # fmt: skip
    step(lambda c: c.execute(sa.text(
        "DELETE FROM fact_price WHERE date_key = :k AND listing_id = (SELECT min(listing_id) FROM fact_price)"),
        {"k": int(f"{days[0]:%Y%m%d}")}))  # fmt: skip
    # an update that moves a row to another day: its old day is recomputed too
    moved = int(f"{nxt + timedelta(1):%Y%m%d}")

    def move(c) -> None:
        load.ensure_dates(c, nxt + timedelta(1), nxt + timedelta(1))
        c.execute(sa.text("UPDATE fact_price SET date_key = :m WHERE date_key = :k AND listing_id = "
                          "(SELECT min(listing_id) FROM fact_price WHERE date_key = :k)"),
                  {"m": moved, "k": int(f"{nxt:%Y%m%d}")})  # fmt: skip

    step(move)
    # match decisions: a listing moves to another product, one is rejected, an unmatched one is confirmed
    decided = listings.iloc[[0, 1, 4]].assign(sku=["P5", "P1", "P2"], method="human", score=1.0,
                                              status=["confirmed", "rejected", "confirmed"])  # fmt: skip
    step(lambda c: load.load_matches(c, decided))
    # a product's category and name, our own sales
    step(lambda c: load.upsert_products(c, pd.DataFrame({"sku": ["P2"], "name": ["Renamed"], "category": ["tea"]})))
    sales = pd.DataFrame({"sku": ["P0", "P5"], "ds": [days[1], days[2]], "units": [9, 1], "price": [0.0, 31.5]})
    step(lambda c: load.load_sales(c, sales))
    # a month far back: its partition is made, and the rows land in it
    old = [date(2025, 1, 15), date(2025, 1, 16)]
    step(lambda c: load.load_prices(c, _prices(listings, old, seed=4)))
    with tenancy.as_owner(), engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM fact_price_2025_01")).scalar() == 24
    # a bulk load (over 5,000 rows in one statement) queues its days rather than its rows
    bulk_days = [date(2025, 2, 1) + timedelta(d) for d in range(430)]
    with engine.begin() as conn:
        load.load_prices(conn, _prices(listings, bulk_days, seed=5))
    with tenancy.as_owner(), engine.connect() as conn:
        queued = conn.execute(sa.text("SELECT count(DISTINCT date_key), count(listing_id) FROM app_pending")).one()
    assert tuple(queued) == (len(bulk_days), 0)
    step(lambda c: None)
    # a listing removed (its prices go with it), a retailer renamed
    step(lambda c: c.execute(sa.text("DELETE FROM dim_listing WHERE item_id = 'W2'")))
    step(lambda c: c.execute(sa.text("UPDATE dim_retailer SET retailer = 'walmart-us' WHERE retailer = 'walmart'")))
    step(lambda c: c.execute(sa.text("UPDATE dim_retailer SET retailer = 'walmart' WHERE retailer = 'walmart-us'")))
    # everything emptied: the rebuild leaves nothing
    step(lambda c: c.execute(sa.text("TRUNCATE fact_sales")), owner=True)
    # the rebuild on demand gives the same rows, with the indexes made again
    views.refresh(engine, full=True)
    assert_rollups_exact(engine)
    with tenancy.as_owner(), engine.connect() as conn:
        indexes = set(
            conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'app_prices_all'")).scalars()
        )
    assert {"ix_app_prices_order", "ix_app_prices_sku", "ix_app_prices_category"} < indexes


def test_rows_before_their_partition_wait_in_the_default_and_move_in(world):
    engine, _, _ = world
    with engine.begin() as conn:
        lid = conn.execute(sa.text("SELECT min(listing_id) FROM dim_listing")).scalar()
        load.ensure_dates(conn, "2024-03-01", "2024-03-02")
        conn.execute(sa.text("INSERT INTO fact_price (listing_id, date_key, observed_at, price, currency) "
                             "VALUES (:l, 20240301, now(), 3, 'USD'), (:l, 20240302, now(), 4, 'USD')"),
                     {"l": lid})  # fmt: skip
    with tenancy.as_owner(), engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM fact_price_default")).scalar() == 2
        assert load.tidy_partitions(conn) == 1
        assert conn.execute(sa.text("SELECT count(*) FROM fact_price_default")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM fact_price_2024_03")).scalar() == 2
        assert load.tidy_partitions(conn) == 0
    views.refresh(engine)
    assert_rollups_exact(engine)
    with tenancy.as_owner(), engine.begin() as conn:  # bounded: from 1990 to a year ahead, whatever is asked
        made = conn.execute(sa.text("SELECT priceintel_price_partitions(date '1900-01-01', date '2999-12-31')"))
        assert made.scalar() <= 12 * (date.today().year + 1 - 1990 + 1)
        assert conn.execute(sa.text("SELECT to_regclass('fact_price_1989_12')")).scalar() is None


def test_the_app_role_reads_neither_partitions_nor_other_tenants_rollups(db, world):
    url, engine = db
    app_url = roles.ensure_app_role(url)
    assert app_url
    app = get_engine(app_url)
    for relation in ("fact_price_2026_07", "fact_price_default", "app_pending", "app_prices_source"):
        with app.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text(f"SELECT 1 FROM {relation} LIMIT 1"))
    with app.connect() as conn:  # no tenant proven: the rollups' policy shows nothing
        for table in views.INCREMENTAL.values():
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0


def test_a_page_of_the_prices_view_reads_the_keyset_index(world):
    engine, _, _ = world
    with engine.begin() as conn:  # as the pipeline's worker role, under row-level security
        conn.exec_driver_sql("SET LOCAL enable_sort = off")  # a small table may sort cheaply; can it not sort?
        page = "SELECT * FROM mv_app_prices ORDER BY neg_day, sku, retailer, listing_id LIMIT 51"
        plan = "\n".join(conn.execute(sa.text(f"EXPLAIN {page}")).scalars())
    assert "ix_app_prices_order" in plan and "Sort" not in plan, plan


def test_migration_0017_downgrades_and_upgrades_with_the_rows(db, world):
    url, engine = db

    def snapshot() -> tuple:
        with tenancy.as_owner(), engine.connect() as conn:
            return tuple(conn.execute(sa.text(
                "SELECT (SELECT count(*) FROM fact_price), (SELECT count(*) FROM mv_app_prices), "
                "(SELECT sum(price) FROM fact_price)")).one())  # fmt: skip

    before = snapshot()
    assert migrate.downgrade(url, "0016") == "0016"
    with tenancy.as_owner(), engine.connect() as conn:
        assert conn.execute(sa.text("SELECT relkind FROM pg_class WHERE relname = 'fact_price'")).scalar() == "r"
    assert snapshot()[0] == before[0] and snapshot()[2] == before[2]
    assert migrate.upgrade(url, "0017") == "0017"
    assert snapshot() == before
    assert_rollups_exact(engine)
    migrate.upgrade(url)
