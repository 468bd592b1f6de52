"""priceintel.db against a real PostgreSQL (embedded or $DATABASE_URL): no mocks."""

from __future__ import annotations

import re
import shutil
import socket
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from priceintel import PriceIntelError, config
from priceintel.config import ConfigError
from priceintel.db import engine as dbengine
from priceintel.db import tenancy
from priceintel.db import load, migrate, queries, server
from priceintel.db.errors import DatabaseError, LoadError, QueryError
from priceintel.items import LISTING_COLUMNS, MATCH_COLUMNS, OBSERVATION_COLUMNS, PRODUCT_COLUMNS, SALES_COLUMNS

D1, D2 = pd.Timestamp("2026-07-01"), pd.Timestamp("2026-07-02")


# --------------------------------------------------------------------------- hand-made world


def retailers() -> pd.DataFrame:
    return pd.DataFrame({"retailer": ["amazon", "walmart", "target"],
                         "name": ["Amazon", "Walmart", "Target"],
                         "base_url": ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"]})


def products() -> pd.DataFrame:
    return pd.DataFrame({
        "sku": ["SKU-1", "SKU-2"], "name": ["Widget 12 oz", "Gadget"], "brand": ["Acme", "Acme"],
        "category": ["tools", "tools"], "gtin": ["4006381333931", None], "mpn": ["W-12", np.nan],
        "size": ["12 oz", None], "unit_cost": [6.0, 12.5], "map_price": [9.0, np.nan], "msrp": [12.99, 24.99],
        "base_price": [10.0, 20.0],  # extra column: ignored
    })[PRODUCT_COLUMNS + ["base_price"]]


def listings() -> pd.DataFrame:
    rows = [("amazon", "A1", "Acme Widget, 12 oz"), ("walmart", "W1", "Widget by Acme"),
            ("target", "T1", "Acme Widget 12oz"), ("amazon", "A2", "Acme Gadget"),
            ("walmart", "W9", "Unrelated thing")]
    df = pd.DataFrame(rows, columns=["retailer", "item_id", "title"])
    df["url"] = "http://127.0.0.1/" + df["item_id"]
    df["brand"], df["gtin"], df["mpn"] = "Acme", None, None
    return df[LISTING_COLUMNS]


def matches() -> pd.DataFrame:
    return pd.DataFrame({"retailer": ["amazon", "walmart", "target", "amazon", "walmart"],
                         "item_id": ["A1", "W1", "T1", "A2", "W9"],
                         "sku": ["SKU-1", "SKU-1", "SKU-1", "SKU-2", None],
                         "method": ["fuzzy", "gtin", "gtin", "fuzzy", None],
                         "score": [0.91, 1.0, 1.0, 0.8, np.nan],
                         "status": ["auto"] * 5})[MATCH_COLUMNS]


def prices() -> pd.DataFrame:
    rows = [("amazon", "A1", D1, 9.0), ("amazon", "A1", D2, 9.5), ("walmart", "W1", D1, 10.0),
            ("walmart", "W1", D2, np.nan), ("target", "T1", D1, 11.0), ("target", "T1", D2, 12.0),
            ("amazon", "A2", D1, 20.0), ("amazon", "A2", D2, 21.0), ("walmart", "W9", D1, 5.0)]
    df = pd.DataFrame(rows, columns=["retailer", "item_id", "ds", "price"])
    df["url"] = "http://127.0.0.1/" + df["item_id"]
    df["observed_at"] = df["ds"] + pd.Timedelta(hours=9)
    df["list_price"] = df["price"] + 1
    df["currency"] = np.where(df["price"].notna(), "USD", None)
    df["in_stock"] = df["price"].notna()
    df["promo"] = False
    df["title"], df["brand"], df["gtin"], df["mpn"] = "t", "Acme", None, None
    df["page_sha256"] = "ab" * 32
    return df[OBSERVATION_COLUMNS]


def sales() -> pd.DataFrame:
    return pd.DataFrame({"sku": ["SKU-1", "SKU-1", "SKU-2"], "ds": [D1, D2, D1], "units": [5, 7, 2],
                         "revenue": [50.0, 70.0, 40.0], "price": [10.0, 10.0, 20.0],
                         "promo": [False, True, False]})[SALES_COLUMNS]


def load_world(engine: sa.Engine) -> dict:
    """Load the hand-made world in one transaction; return every loader's counts."""
    with engine.begin() as conn:
        return {"retailers": load.upsert_retailers(conn, retailers()),
                "products": load.upsert_products(conn, products()),
                "listings": load.upsert_listings(conn, listings()),
                "matches": load.load_matches(conn, matches()),
                "prices": load.load_prices(conn, prices()),
                "sales": load.load_sales(conn, sales())}


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


# --------------------------------------------------------------------------- server, engine, migrations


def test_migration_up_down_up(pg_server_url):
    name = f"priceintel_mig_{uuid.uuid4().hex[:8]}"
    url = dbengine.create_database(pg_server_url, name)
    try:
        assert migrate.current(url) is None
        newest = max(f.name[:4] for f in (Path(migrate.__file__).parent / "migrations/versions").glob("0*.py"))
        assert migrate.head() == newest  # one linear head (the merge of the feature branches is 0006)
        assert migrate.upgrade(url) == migrate.head()
        eng = dbengine.get_engine(url)
        insp = sa.inspect(eng)
        assert set(queries.TABLES) <= set(insp.get_table_names())
        assert {"v_latest_price", "v_price_vs_ours", "v_daily_price_stats"} <= set(insp.get_view_names())
        idx = {i["name"] for t in ("fact_price", "dim_listing", "product_match") for i in insp.get_indexes(t)}
        assert {"ix_fact_price_date_key_brin", "ix_dim_listing_retailer_id", "ix_product_match_product_id"} <= idx
        assert migrate.upgrade(url) == migrate.head()  # idempotent
        assert migrate.downgrade(url) is None
        insp = sa.inspect(eng)
        assert set(insp.get_table_names()) == {"alembic_version"} and insp.get_view_names() == []
        assert migrate.upgrade(url) == migrate.head()
        assert queries.table_counts(eng) == {t: 0 for t in queries.TABLES}
        with pytest.raises(DatabaseError, match="migration upgrade to 'nope' failed"):
            migrate.upgrade(url, "nope")
    finally:
        assert dbengine.drop_database(pg_server_url, name) is True
    assert dbengine.drop_database(pg_server_url, name) is False
    assert not dbengine.database_exists(pg_server_url, name)


def test_get_url_honours_database_url(monkeypatch, pg_url, pg_server_url):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db.example:5433/prices")
    assert dbengine.get_url() == "postgresql+psycopg://u:pw@db.example:5433/prices"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert dbengine.get_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert dbengine.get_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("DATABASE_URL", "mysql://u@h/db")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        dbengine.get_url()
    monkeypatch.setenv("DATABASE_URL", pg_url)
    assert dbengine.get_engine() is dbengine.get_engine(pg_url)  # cached per url
    if "host=" in pg_server_url:  # embedded test server: without DATABASE_URL, get_url starts/reuses it
        monkeypatch.delenv("DATABASE_URL")
        monkeypatch.setenv("PRICEINTEL_PGDATA", str(config.data_dir() / "pg-test"))
        url = sa.make_url(dbengine.get_url())
        assert url == sa.make_url(dbengine.database_url(pg_server_url, "priceintel"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_database_gives_clear_error(tmp_path):
    port = _closed_port()
    with pytest.raises(DatabaseError) as err:
        dbengine.get_engine(f"postgresql://scott:s3cret@127.0.0.1:{port}/nowhere")
    msg = str(err.value)
    assert f"cannot connect to PostgreSQL at postgresql+psycopg://scott:***@127.0.0.1:{port}/nowhere" in msg
    assert "Is DATABASE_URL right / is the server running?" in msg and "s3cret" not in msg
    assert err.value.__suppress_context__  # no chained psycopg traceback
    with pytest.raises(DatabaseError, match=r"cannot connect .*No such file or directory"):
        dbengine.get_engine(f"postgresql+psycopg://postgres@/x?host={tmp_path / 'nosocket'}")
    lazy = dbengine.get_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x", check=False)
    with pytest.raises(DatabaseError, match="cannot connect"):
        dbengine.check_connection(lazy)
    with pytest.raises(DatabaseError, match="cannot use database URL"):
        dbengine.get_engine("postgresql+nosuchdriver://u@h/db")
    with pytest.raises(DatabaseError, match="invalid database name"):
        dbengine.create_database(f"postgresql://u@127.0.0.1:{port}/x", "bad; DROP")
    assert isinstance(err.value, PriceIntelError)
    assert dbengine.redact_url("postgresql://a:b@h/d") == "postgresql://a:***@h/d"


def _setting(eng: sa.Engine, name: str) -> str:
    with eng.connect() as conn:
        return conn.exec_driver_sql(f"SHOW {name}").scalar()


def test_embedded_server_lifecycle(monkeypatch):
    pgdata = config.data_dir() / "pg-test-lifecycle"
    shutil.rmtree(pgdata, ignore_errors=True)  # created here: tuned from the first start on
    monkeypatch.setenv(server.TUNING_ENV, "on")
    try:
        url = server.start_embedded(pgdata)
        assert url == f"postgresql+psycopg://postgres@/priceintel?host={pgdata}"
        st = server.status(pgdata)
        assert st["running"] and st["initialized"] and st["url"] == url and st["pid"] > 0
        assert server.start_embedded(pgdata) == url and server.status(pgdata)["pid"] == st["pid"]  # reused
        eng = dbengine._create_engine(url, poolclass=sa.pool.NullPool)
        with eng.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_database()").scalar() == "priceintel"
        tuned = server.tuned_settings()
        assert _setting(eng, "shared_buffers") == tuned["shared_buffers"] != "128MB"  # the machine's, not stock
        assert _setting(eng, "max_wal_size") == tuned["max_wal_size"]
        assert (pgdata / server.TUNING_FILE).read_text().count("\n") == len(tuned) + 1
        server.stop_embedded(pgdata)
        monkeypatch.delenv(server.TUNING_ENV)  # the default: stock settings, the file emptied
        server.start_embedded(pgdata)
        assert _setting(eng, "shared_buffers") == "128MB" and _setting(eng, "max_wal_size") == "1GB"  # stock
        assert (pgdata / server.TUNING_FILE).read_text().count("\n") == 1
        assert server.stop_embedded(pgdata) is True
        st = server.status(pgdata)
        assert not st["running"] and st["url"] is None and st["initialized"]
        with pytest.raises(DatabaseError, match="cannot connect"):
            dbengine.check_connection(eng)
        assert server.stop_embedded(pgdata) is False  # no error when not running
        assert server.start_embedded(pgdata) == url  # restart through the cached handle
        assert server.status(pgdata)["running"]
        assert "ready to accept connections" in server.log_tail(pgdata)
    finally:
        server.stop_embedded(pgdata)
    assert not server.status(pgdata)["running"]


def test_embedded_server_failures_are_clear(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DatabaseError, match="could not create the data directory"):
        server.start_embedded(blocker / "pg")
    broken = config.data_dir() / "pg-test-broken"
    shutil.rmtree(broken, ignore_errors=True)
    broken.mkdir(parents=True)
    (broken / "PG_VERSION").write_text("9\n")  # looks initialised, but is not a cluster
    try:
        with pytest.raises(DatabaseError) as err:
            server.start_embedded(broken)
        assert f"could not start embedded PostgreSQL (pgdata {broken})" in str(err.value)
        assert f"last lines of {broken / 'log'}" in str(err.value)
        assert not server.status(broken)["running"]
    finally:
        shutil.rmtree(broken, ignore_errors=True)
    assert server.status(tmp_path / "none") == {**server.status(tmp_path / "none"), "running": False,
                                                "initialized": False, "pid": None}
    assert server.log_tail(tmp_path / "none") == ""


# --------------------------------------------------------------------------- loaders


def test_ensure_dates(clean_db):
    with clean_db.begin() as conn:
        assert load.ensure_dates(conn, "2026-07-01", date(2026, 7, 7)) == {"staged": 7, "inserted": 7, "updated": 0}
        assert load.ensure_dates(conn, D1, D2) == {"staged": 2, "inserted": 0, "updated": 0}
        with pytest.raises(LoadError, match="before start"):
            load.ensure_dates(conn, D2, D1)
    with clean_db.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM dim_date WHERE date_key = 20260704")).mappings().one()
    d = date(2026, 7, 4)
    assert (row["date"], row["year"], row["quarter"], row["month"], row["day"]) == (d, 2026, 3, 7, 4)
    assert row["dow"] == d.isoweekday() and row["iso_week"] == d.isocalendar()[1]
    assert row["is_weekend"] is (d.isoweekday() >= 6)


def test_load_world_then_reload_changes_nothing(clean_db):
    first = load_world(clean_db)
    assert first["retailers"] == {"staged": 3, "inserted": 3, "updated": 0}
    assert first["products"] == {"staged": 2, "inserted": 2, "updated": 0}
    assert first["listings"] == {"staged": 5, "inserted": 5, "updated": 0, "history": 5}  # a first version each
    assert first["matches"] == {"staged": 5, "inserted": 4, "updated": 0, "deleted": 0, "protected": 0}
    assert first["prices"] == {"staged": 9, "inserted": 9, "updated": 0}
    assert first["sales"] == {"staged": 3, "inserted": 3, "updated": 0}
    counts = queries.table_counts(clean_db)
    stamps = scalar(clean_db, "SELECT max(updated_at) FROM dim_product")
    second = load_world(clean_db)
    for name, c in second.items():
        assert (c["inserted"], c["updated"]) == (0, 0), name
    assert queries.table_counts(clean_db) == counts
    assert scalar(clean_db, "SELECT max(updated_at) FROM dim_product") == stamps
    assert counts["dim_date"] == 2 and counts["fact_price"] == 9
    # loaders agree with the frames: numeric(12,2), nulls, booleans
    with clean_db.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM dim_product WHERE sku = 'SKU-2'")).mappings().one()
        assert row["gtin"] is None and row["mpn"] is None and row["map_price"] is None
        assert float(row["msrp"]) == 24.99 and row["name"] == "Gadget"
        fp = conn.execute(sa.text(
            "SELECT fp.* FROM fact_price fp JOIN dim_listing l USING (listing_id) "
            "WHERE l.item_id = 'W1' AND fp.date_key = 20260702")).mappings().one()
        assert fp["price"] is None and fp["currency"] is None and fp["in_stock"] is False
        assert fp["observed_at"] == datetime(2026, 7, 2, 9, tzinfo=timezone.utc)
        seen = conn.execute(sa.text("SELECT item_id, first_seen, last_seen FROM dim_listing ORDER BY item_id")).all()
    assert seen[0] == ("A1", date(2026, 7, 1), date(2026, 7, 2))
    assert dict((r[0], r[2]) for r in seen)["W9"] == date(2026, 7, 1)


def test_changed_values_update(clean_db):
    load_world(clean_db)
    before = scalar(clean_db, "SELECT updated_at FROM dim_product WHERE sku = 'SKU-1'")
    p = products()
    p.loc[0, "msrp"] = 13.49
    r = retailers().iloc[:1].assign(name="Amazon.com")[["retailer", "name"]]  # base_url absent: left alone
    pr = prices()
    pr.loc[0, "price"] = 8.75
    s = sales()
    s.loc[2, "units"] = 3
    with clean_db.begin() as conn:
        assert load.upsert_products(conn, p) == {"staged": 2, "inserted": 0, "updated": 1}
        assert load.upsert_retailers(conn, r) == {"staged": 1, "inserted": 0, "updated": 1}
        assert load.load_prices(conn, pr) == {"staged": 9, "inserted": 0, "updated": 1}
        assert load.load_sales(conn, s) == {"staged": 3, "inserted": 0, "updated": 1}
        assert load.upsert_retailers(conn, r[["retailer"]]) == {"staged": 1, "inserted": 0, "updated": 0}
    assert scalar(clean_db, "SELECT updated_at FROM dim_product WHERE sku = 'SKU-1'") > before
    assert scalar(clean_db, "SELECT updated_at FROM dim_product WHERE sku = 'SKU-2'") <= before
    assert float(scalar(clean_db, "SELECT msrp FROM dim_product WHERE sku = 'SKU-1'")) == 13.49
    assert scalar(clean_db, "SELECT base_url FROM dim_retailer WHERE retailer = 'amazon'") == "http://127.0.0.1:1"
    assert scalar(clean_db, "SELECT name FROM dim_retailer WHERE retailer = 'amazon'") == "Amazon.com"
    assert float(scalar(clean_db, "SELECT min(price) FROM fact_price")) == 5.0
    assert float(scalar(clean_db, "SELECT price FROM fact_price WHERE date_key = 20260701 AND listing_id = "
                                  "(SELECT listing_id FROM dim_listing WHERE item_id = 'A1')")) == 8.75
    assert scalar(clean_db, "SELECT units FROM fact_sales fs JOIN dim_product p USING (product_id) "
                            "WHERE p.sku = 'SKU-2'") == 3


def test_listings_seen_dates_and_null_keeps_known_values(clean_db):
    with clean_db.begin() as conn:
        load.upsert_retailers(conn, retailers())
        lst = listings()
        lst["gtin"] = ["0001", None, None, None, None]
        assert load.upsert_listings(conn, lst, seen_date="2026-07-05")["inserted"] == 5
        assert load.upsert_listings(conn, lst, seen_date="2026-07-05")["updated"] == 0
        assert load.upsert_listings(conn, lst.iloc[:1], seen_date=date(2026, 7, 3))["updated"] == 1
        assert load.upsert_listings(conn, lst.iloc[:1], seen_date=date(2026, 7, 4))["updated"] == 0  # inside range
        lst.loc[0, "gtin"] = None  # a page without a GTIN does not erase the known one
        lst.loc[0, "title"] = "New title"
        assert load.upsert_listings(conn, lst.iloc[:1])["updated"] == 1
        row = conn.execute(sa.text("SELECT * FROM dim_listing WHERE item_id = 'A1'")).mappings().one()
    assert (row["gtin"], row["title"]) == ("0001", "New title")
    assert (row["first_seen"], row["last_seen"]) == (date(2026, 7, 3), date(2026, 7, 5))


def test_copy_handles_awkward_text(clean_db):
    titles = ['He said "hi", then left', "tab\there, comma, and\nnewline", "back\\slash \\N not null",
              "Café — ünïcödé ✓ 日本語 🚀", "", None, np.nan, "'single' quotes; DROP TABLE x;--"]
    df = pd.DataFrame({"retailer": "amazon", "item_id": [f"X{i}" for i in range(len(titles))],
                       "title": titles, "url": None, "brand": [None, 3, 4.0, "B", "", "B", "B", "B"]})
    with clean_db.begin() as conn:
        load.upsert_retailers(conn, retailers())
        assert load.upsert_listings(conn, df)["inserted"] == len(titles)
        assert load.upsert_listings(conn, df)["updated"] == 0
        got = conn.execute(sa.text("SELECT item_id, title, brand FROM dim_listing ORDER BY listing_id")).all()
    assert [g[1] for g in got] == [t if isinstance(t, str) else None for t in titles]
    assert [g[2] for g in got][:3] == [None, "3", "4"]


def test_human_labels_are_not_overwritten(clean_db):
    load_world(clean_db)
    human = pd.DataFrame({"retailer": ["amazon", "walmart"], "item_id": ["A1", "W1"], "sku": ["SKU-1", "SKU-1"],
                          "method": ["manual", "manual"], "score": [1.0, 1.0], "status": ["confirmed", "rejected"]})
    with clean_db.begin() as conn:
        assert load.load_matches(conn, human)["updated"] == 2
    rematch = matches()
    rematch["sku"] = ["SKU-2", "SKU-2", "SKU-1", "SKU-2", None]  # matcher changes its mind about A1, W1
    rematch["score"] = [0.5, 0.5, 0.99, 0.8, np.nan]
    with clean_db.begin() as conn:
        c = load.load_matches(conn, rematch)
    assert (c["inserted"], c["updated"], c["protected"]) == (0, 1, 2)
    with clean_db.connect() as conn:
        rows = dict(conn.execute(sa.text(
            "SELECT l.item_id, p.sku || ':' || pm.status || ':' || pm.method FROM product_match pm "
            "JOIN dim_listing l USING (listing_id) JOIN dim_product p USING (product_id)")).all())
    assert rows == {"A1": "SKU-1:confirmed:manual", "W1": "SKU-1:rejected:manual", "T1": "SKU-1:auto:gtin",
                    "A2": "SKU-2:auto:fuzzy"}
    # a human may relabel a human label; "no match" deletes only automatic rows
    with clean_db.begin() as conn:
        assert load.load_matches(conn, human.assign(status="confirmed").iloc[1:])["updated"] == 1
        gone = pd.DataFrame({"retailer": ["amazon", "amazon"], "item_id": ["A1", "A2"], "sku": [None, None]})
        c = load.load_matches(conn, gone)
    assert c["deleted"] == 1 and c["inserted"] == 0
    assert scalar(clean_db, "SELECT count(*) FROM product_match") == 3
    assert scalar(clean_db, "SELECT status FROM product_match pm JOIN dim_listing l USING (listing_id) "
                            "WHERE item_id = 'W1'") == "confirmed"


def _frame_cases():
    p = prices()
    cases = [
        ("listings", listings().assign(retailer=["amazon", "ebay", "ebay", "amazon", "walmart"]),
         r"dim_listing\.retailer: 2 row\(s\) with a retailer not in dim_retailer.*'row': 1.*'retailer': 'ebay'"),
        ("listings", listings().assign(item_id=["A1", "W1", "T1", "A1", "W9"]),
         r"dim_listing: 2 row\(s\) repeat the key \(retailer, item_id\)"),
        ("listings", listings().drop(columns="item_id"), r"dim_listing: input frame lacks required column\(s\) \['item_id'\]"),
        ("prices", p.assign(item_id=["A1", "ZZZ"] + list(p.item_id[2:])),
         r"fact_price\.item_id: 1 row\(s\) with a listing \(retailer, item_id\) not in dim_listing.*'item_id': 'ZZZ'"),
        ("prices", p.assign(observed_at=[pd.NaT] + list(p.observed_at[1:])),
         r"fact_price\.observed_at: 1 row\(s\) with a missing value \(NaN/None/empty\) in a NOT NULL column.*'row': 0"),
        ("prices", p.assign(currency=["$", "usd"] + list(p.currency[2:])),
         r"fact_price\.currency: 2 row\(s\) with a non-ISO-4217 currency.*'currency': '\$'"),
        ("prices", p.assign(currency=None), r"fact_price\.currency: 8 row\(s\) with a price but no currency"),
        ("prices", p.drop(columns="currency"), r"fact_price\.currency: input frame has prices but no currency column"),
        ("prices", p.assign(price=[-1.0] + list(p.price[1:])), r"fact_price\.price: 1 row\(s\) with a negative value"),
        ("prices", p.assign(price=["abc"] + list(p.price[1:])),
         r"fact_price\.price: 1 row\(s\) with a value that is not a finite number.*'price': 'abc'"),
        ("prices", p.assign(price=[np.inf] + list(p.price[1:])), r"fact_price\.price: 1 row\(s\) with a value that is not"),
        ("prices", p.assign(in_stock=["maybe"] + list(p.in_stock[1:])), r"fact_price\.in_stock: 1 row\(s\) .* not a boolean"),
        ("prices", p.assign(ds=["not a date"] + list(p.ds[1:])), r"fact_price\.ds: 1 row\(s\) with a value that is not a date"),
        ("prices", pd.concat([p, p.iloc[:1]]), r"fact_price: 2 row\(s\) repeat the key \(retailer, item_id, ds\)"),
        ("sales", sales().assign(sku=["SKU-1", "SKU-1", "NOPE"]), r"fact_sales\.sku: 1 row\(s\) with a sku not in dim_product"),
        ("sales", sales().assign(units=[1.5, 2, 3]), r"fact_sales\.units: 1 row\(s\) with a value that is not an integer"),
        ("products", products().assign(name=["ok", ""]), r"dim_product\.name: 1 row\(s\) with a missing value"),
        ("matches", matches().assign(status=["auto", "maybe", "auto", "auto", "auto"]),
         r"product_match\.status: 1 row\(s\) with a status not in"),
        ("matches", matches().assign(sku=["SKU-9", "SKU-1", "SKU-1", "SKU-2", None]),
         r"product_match\.sku: 1 row\(s\) with a sku not in dim_product"),
        ("matches", matches().drop(columns="sku"), r"product_match: input frame lacks required column\(s\) \['sku'\]"),
        ("matches", matches().assign(item_id=["A1", "W1", "T1", "A2", "NEW"]),
         r"product_match\.item_id: 1 row\(s\) with a listing"),
    ]
    return cases


LOADERS = {"listings": load.upsert_listings, "prices": load.load_prices, "sales": load.load_sales,
           "products": load.upsert_products, "matches": load.load_matches}


def test_bad_rows_raise_load_error_and_roll_back(clean_db):
    load_world(clean_db)
    with clean_db.begin() as conn:  # empty the facts so a half-load would show
        conn.exec_driver_sql("DELETE FROM fact_price; DELETE FROM fact_sales")
    counts = queries.table_counts(clean_db)
    for kind, frame, pattern in _frame_cases():
        try:
            with clean_db.begin() as conn:
                load.upsert_retailers(conn, retailers().assign(name="CHANGED"))  # bundled: must roll back too
                load.ensure_dates(conn, "2027-01-01", "2027-01-31")
                LOADERS[kind](conn, frame)
        except LoadError as err:
            assert re.search(pattern, str(err)), (pattern, str(err))
        else:
            pytest.fail(f"no LoadError for {kind}: {pattern}")
        assert queries.table_counts(clean_db) == counts, kind
    assert scalar(clean_db, "SELECT count(*) FROM dim_retailer WHERE name = 'CHANGED'") == 0
    with pytest.raises(LoadError, match="expected a pandas DataFrame"):
        with clean_db.begin() as conn:
            load.upsert_products(conn, [{"sku": "x"}])
    with pytest.raises(LoadError, match="scrape run 999 is not in scrape_run"):
        with clean_db.begin() as conn:
            load.load_prices(conn, prices(), scrape_run_id=999)
    with pytest.raises(LoadError, match="scrape run 999 is not in scrape_run"):
        with clean_db.begin() as conn:
            load.record_errors(conn, 999, pd.DataFrame({"kind": ["x"]}))


def test_database_rejection_becomes_load_error(clean_db):
    load_world(clean_db)
    bad = products()
    bad.loc[1, "unit_cost"] = -1  # the CHECK (unit_cost >= 0) is validated before the database sees it
    with pytest.raises(LoadError, match=r"dim_product\.unit_cost: 1 row\(s\) with a negative value"):
        with clean_db.begin() as conn:
            load.upsert_products(conn, bad)
    lst = listings().iloc[:1].assign(retailer="amazon", item_id="A1")
    with pytest.raises(LoadError, match="dim_listing: PostgreSQL rejected the load"):
        with tenancy.as_owner(), clean_db.begin() as conn:  # a constraint only the database knows about (DDL)
            conn.exec_driver_sql("ALTER TABLE dim_listing ADD CONSTRAINT no_a1 CHECK (title <> 'boom')")
            load.upsert_listings(conn, lst.assign(title="boom"))
    assert "no_a1" not in str(sa.inspect(clean_db).get_check_constraints("dim_listing"))


def test_prices_scrape_run_and_empty_frames(clean_db):
    load_world(clean_db)
    with clean_db.begin() as conn:
        run = load.record_scrape_run(conn, "amazon", datetime(2026, 7, 2, 8, tzinfo=timezone.utc),
                                     datetime(2026, 7, 2, 9, tzinfo=timezone.utc), pages=10, offers=9, errors=1,
                                     error_summary={"blocked": np.int64(1)})
        p = prices().iloc[:2].assign(price=[9.0, 9.9])
        assert load.load_prices(conn, p, scrape_run_id=run) == {"staged": 2, "inserted": 0, "updated": 2}
        assert load.load_prices(conn, p) == {"staged": 2, "inserted": 0, "updated": 0}  # run id kept
        for fn, cols in [(load.load_prices, OBSERVATION_COLUMNS), (load.load_sales, SALES_COLUMNS),
                         (load.upsert_products, PRODUCT_COLUMNS), (load.upsert_listings, LISTING_COLUMNS),
                         (load.upsert_retailers, ["retailer"])]:
            assert fn(conn, pd.DataFrame(columns=cols)) == {"staged": 0, "inserted": 0, "updated": 0}
        assert load.load_matches(conn, pd.DataFrame(columns=MATCH_COLUMNS))["staged"] == 0
        with pytest.raises(LoadError, match="scrape_run.pages: must be >= 0"):
            load.record_scrape_run(conn, "amazon", pages=-1)
    assert scalar(clean_db, "SELECT count(*) FROM fact_price WHERE scrape_run_id = :r", r=run) == 2
    assert scalar(clean_db, "SELECT error_summary->>'blocked' FROM scrape_run") == "1"


def test_runs_and_errors(clean_db):
    with clean_db.begin() as conn:
        run_id = load.start_run(conn, "load_prices", {"start": date(2026, 7, 1), "n": np.int64(3),
                                                      "ratio": float("nan"), "tags": {"b", "a"},
                                                      "path": config.data_dir() / "x", "seq": ("z", "y")})
        load.finish_run(conn, run_id, "success", counts={"fact_price": {"inserted": 9}}, errors=[])
        with pytest.raises(LoadError, match="pipeline_run.status: 'ok' is not one of"):
            load.finish_run(conn, run_id, "ok")
        with pytest.raises(LoadError, match="run 999 does not exist"):
            load.finish_run(conn, 999)
        with pytest.raises(LoadError, match="a task name is required"):
            load.start_run(conn, "")
        sr = load.record_scrape_run(conn, "walmart")
        errs = pd.DataFrame({"url": ["http://127.0.0.1/x", "http://127.0.0.1/y", "http://127.0.0.1/y"],
                             "retailer": "walmart", "kind": ["blocked", "http_404", "http_404"],
                             "message": ["captcha, \"robot\"", "not found", "not found"]})
        assert load.record_errors(conn, sr, errs) == {"staged": 3, "inserted": 2, "updated": 0}
        assert load.record_errors(conn, sr, errs)["inserted"] == 0
        assert load.record_errors(conn, None, errs[["kind"]])["inserted"] == 2
        assert load.record_errors(conn, None, errs[["kind"]])["inserted"] == 0
        assert load.record_errors(conn, sr, pd.DataFrame(columns=["kind"]))["staged"] == 0
        row = conn.execute(sa.text("SELECT * FROM pipeline_run")).mappings().one()
    assert row["status"] == "success" and row["finished_at"] >= row["started_at"]
    assert row["params"] == {"start": "2026-07-01", "n": 3, "ratio": None, "tags": ["a", "b"],
                             "path": str(config.data_dir() / "x"), "seq": ["z", "y"]}
    assert row["counts"] == {"fact_price": {"inserted": 9}} and row["errors"] == []
    assert row["code_version"] == "0.1.0"
    assert scalar(clean_db, "SELECT message FROM scrape_error WHERE kind = 'blocked' AND url IS NOT NULL") \
        == 'captcha, "robot"'
    assert scalar(clean_db, "SELECT count(*) FROM scrape_error") == 4


def test_bulk_copy_is_fast_and_exact(clean_db):
    n_items, days = 200, pd.date_range("2026-01-01", periods=60)
    rng = np.random.default_rng(0)
    lst = pd.DataFrame({"retailer": "target", "item_id": [f"T{i:04d}" for i in range(n_items)]})
    obs = lst.merge(pd.DataFrame({"ds": days}), how="cross")
    obs["observed_at"] = obs["ds"].dt.tz_localize("America/New_York") + pd.Timedelta(hours=10)
    obs["ds"] = obs["ds"].dt.tz_localize("Asia/Tokyo")  # a tz-aware day keeps its local calendar date
    obs["price"] = np.round(rng.uniform(1, 500, len(obs)), 2)
    obs["currency"], obs["in_stock"], obs["promo"] = "USD", rng.random(len(obs)) > 0.1, "false"
    with clean_db.begin() as conn:
        load.upsert_retailers(conn, retailers())
        load.upsert_listings(conn, lst)
        assert load.load_prices(conn, obs)["inserted"] == len(obs) == 12_000
        assert load.load_prices(conn, obs)["updated"] == 0
    total = float(scalar(clean_db, "SELECT sum(price) FROM fact_price"))
    assert total == pytest.approx(obs["price"].sum(), abs=1e-6)
    assert scalar(clean_db, "SELECT min(observed_at) FROM fact_price") == datetime(2026, 1, 1, 15, tzinfo=timezone.utc)
    assert scalar(clean_db, "SELECT count(*) FROM dim_date") == 60
    assert scalar(clean_db, "SELECT min(date_key) FROM fact_price") == 20260101


# --------------------------------------------------------------------------- views and queries


def test_views_on_hand_made_world(clean_db):
    load_world(clean_db)
    stats = queries.daily_price_stats(clean_db, "SKU-1")
    assert stats[["min_price", "median_price", "max_price", "n_retailers"]].values.tolist() == [
        [9.0, 10.0, 11.0, 3], [9.5, 10.75, 12.0, 2]]
    assert stats["ds"].tolist() == [D1, D2] and str(stats["ds"].dtype) == "datetime64[ns]"
    assert len(queries.daily_price_stats(clean_db)) == 4  # W9 (unmatched) never counted
    with clean_db.connect() as conn:  # views expose date_key for joins with the facts
        keys = conn.execute(sa.text(
            "SELECT st.min_price FROM fact_sales s JOIN v_daily_price_stats st "
            "ON st.product_id = s.product_id AND st.date_key = s.date_key ORDER BY s.product_id, s.date_key")).scalars()
        assert [float(k) for k in keys] == [9.0, 9.5, 20.0]
    vs = queries.price_vs_ours(clean_db)
    one = vs[vs.sku == "SKU-1"].set_index(["ds", "retailer"])["price_index"]
    assert one[(D1, "amazon")] == pytest.approx(0.9) and one[(D1, "target")] == pytest.approx(1.1)
    assert one[(D2, "target")] == pytest.approx(1.2) and np.isnan(one[(D2, "walmart")])
    two = vs[vs.sku == "SKU-2"]
    assert two[["retailer", "our_price", "competitor_price", "price_index"]].values.tolist() == [
        ["amazon", 20.0, 20.0, 1.0]]  # no sales row on day 2 → no comparison
    latest = queries.latest_prices(clean_db).set_index("item_id")
    assert len(latest) == 5 and latest.loc["A1", "price"] == 9.5 and latest.loc["A1", "sku"] == "SKU-1"
    assert np.isnan(latest.loc["W1", "price"]) and latest.loc["W1", "ds"] == D2
    assert latest.loc["W9", "sku"] is None and latest.loc["W9", "ds"] == D1
    assert queries.latest_prices(clean_db, "SKU-2")["item_id"].tolist() == ["A2"]
    # a rejected match removes the listing from the product's views
    with clean_db.begin() as conn:
        load.load_matches(conn, matches().iloc[2:3].assign(status="rejected"))
    assert queries.daily_price_stats(clean_db, "SKU-1")["n_retailers"].tolist() == [2, 1]
    assert queries.latest_prices(clean_db).set_index("item_id").loc["T1", "sku"] is None


def test_queries(clean_db):
    load_world(clean_db)
    prods = queries.list_products(clean_db)
    assert prods["sku"].tolist() == ["SKU-1", "SKU-2"] and prods["n_listings"].tolist() == [3, 1]
    assert prods["msrp"].tolist() == [12.99, 24.99]
    hist = queries.price_history(clean_db, "SKU-1")
    assert list(hist.columns[:2]) == ["retailer", "item_id"]
    assert {"retailer", "ds", "price", "in_stock", "promo"} <= set(hist.columns)
    assert hist.groupby("retailer").size().to_dict() == {"amazon": 2, "ours": 2, "target": 2, "walmart": 2}
    ours = hist[hist.retailer == queries.OURS]
    assert ours["price"].tolist() == [10.0, 10.0] and ours["promo"].tolist() == [False, True]
    win = queries.price_history(clean_db, "SKU-1", start="2026-07-02", end=D2)
    assert set(win["ds"]) == {D2} and len(win) == 4
    assert queries.price_history(clean_db, "SKU-1", end="2026-06-30").empty
    with pytest.raises(QueryError, match="unknown sku 'NOPE'"):
        queries.price_history(clean_db, "NOPE")
    counts = queries.table_counts(clean_db)
    assert counts["dim_listing"] == 5 and counts["product_match"] == 4 and counts["fact_sales"] == 3


def test_table_counts_on_an_unmigrated_database_is_a_clear_error(pg_server_url):
    import uuid

    from priceintel.db import queries
    from priceintel.db.engine import create_database, drop_database, get_engine
    from priceintel.db.errors import QueryError

    name = f"priceintel_empty_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name)
    try:
        with pytest.raises(QueryError, match="init-db"):
            queries.table_counts(get_engine(url))
    finally:
        get_engine(url).dispose()
        drop_database(pg_server_url, name)
