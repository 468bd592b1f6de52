"""The dbt project (dbt/) on real PostgreSQL: two tenants' prices, matches and sales loaded with the pipeline's
loaders, `dbt build` run once for the module (in-process, no network), and every mart checked against values
computed here with pandas; then an incremental build, a planted bad price that a data test names, the docs."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from _fixtures_pg import migrated_database
from priceintel import cli
from priceintel.db import load, roles, tenancy
from priceintel.db.engine import get_engine
from priceintel.pipeline import dbt

DAYS = pd.date_range("2026-07-01", periods=6)
PRODUCTS = pd.DataFrame(
    {"sku": ["P1", "P2", "P3"], "name": ["kettle", "jug", "toaster"], "category": ["kettles", "kettles", "toasters"]}
)
#: retailer, item_id, matched sku, match status, the classifier's category, base price
LISTINGS = [
    ("amazon", "A1", "P1", "auto", None, 20.0),
    ("amazon", "A2", "P2", "confirmed", None, 35.0),
    ("amazon", "A3", "P3", "auto", None, 50.0),
    ("walmart", "W1", "P1", "auto", None, 21.0),
    ("walmart", "W3", "P3", "auto", None, 48.0),
    ("walmart", "W8", None, None, None, 9.0),  # unmatched, unclassified: '(none)'
    ("target", "T1", "P1", "auto", None, 22.0),
    ("target", "T10", "P1", "auto", None, 19.5),  # a second target listing of P1: the cheaper one counts
    ("target", "T2", "P2", "review", None, 30.0),  # under review: not a match
    ("target", "T9", None, None, "toasters", 45.0),  # unmatched, classified
]
#: (item, day index) -> what happens that day
PROMO = {("A1", 2), ("A1", 3), ("A1", 5), ("W3", 0), ("W3", 1), ("T9", 4), ("T9", 5), ("W1", 2), ("W1", 4)}
MISSING = {("W1", 3), ("T10", 0)}  # no observation: W1's promotions on days 2 and 4 are two episodes
NO_PRICE = {("A3", 1), ("T1", 4)}  # observed out of stock, no price shown
OUR_BASE = {"P1": 20.5, "P2": 34.0, "P3": 49.0}


def _world(seed: int, scale: float = 1.0) -> dict[str, pd.DataFrame]:
    """One tenant's catalogue, listings, matches, daily prices and our sales (prices scaled by `scale`)."""
    rng = np.random.default_rng(seed)
    rows = []
    for retailer, item, _sku, _status, _cat, base in LISTINGS:
        for i, ds in enumerate(DAYS):
            regular = round(base * scale * (1 + 0.04 * rng.standard_normal()), 2)
            if (item, i) in MISSING:
                continue
            promo = (item, i) in PROMO
            price = None if (item, i) in NO_PRICE else round(regular * 0.8, 2) if promo else regular
            rows.append({"retailer": retailer, "item_id": item, "ds": ds, "observed_at": ds + pd.Timedelta(hours=8),
                         "price": price, "list_price": regular if promo else None, "currency": "USD",
                         "in_stock": price is not None, "promo": promo})  # fmt: skip
    prices = pd.DataFrame(rows)
    prices["observed_at"] = prices["observed_at"].dt.tz_localize("UTC")
    sales = pd.DataFrame(
        [{"sku": sku, "ds": ds, "units": int(rng.integers(1, 9)),
          "price": round(base * scale * (1 + 0.04 * rng.standard_normal()), 2)}
         for sku, base in OUR_BASE.items() for i, ds in enumerate(DAYS) if (sku, i) != ("P3", 2)]
    )  # fmt: skip
    # a tie: our P2 on day 0 costs what amazon's (its only matched competitor) did
    tie = prices[(prices["item_id"] == "A2") & (prices["ds"] == DAYS[0])]["price"].iloc[0]
    sales.loc[(sales["sku"] == "P2") & (sales["ds"] == DAYS[0]), "price"] = tie
    listings = pd.DataFrame(LISTINGS, columns=["retailer", "item_id", "sku", "status", "category", "base"])
    return {"prices": prices, "sales": sales, "listings": listings}


def _cents(value: float | Decimal) -> float:
    """Rounded to cents half away from zero, as PostgreSQL rounds numeric (exact: prices are cents)."""
    return float(Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _pct(part: float, whole: float) -> float:
    """round((part / whole - 1) * 100, 2) in exact decimal arithmetic, as the marts compute it on numeric."""
    return _cents((Decimal(str(part)) / Decimal(str(whole)) - 1) * 100)


def _median_cents(values: pd.Series) -> float:
    """The median (the mean of the middle two of an even count), exact, rounded to cents."""
    xs = sorted(Decimal(str(v)) for v in values)
    mid = len(xs) // 2
    return _cents(xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2)


def _load(owner: sa.Engine, tenant: str, world: dict[str, pd.DataFrame], prices: pd.DataFrame | None = None) -> None:
    listings = world["listings"]
    with tenancy.scope(tenant), owner.begin() as conn:
        load.ensure_dates(conn, DAYS[0], DAYS[-1] + pd.Timedelta(days=1))
        load.upsert_retailers(conn, pd.DataFrame({"retailer": sorted(set(listings["retailer"]))}))
        load.upsert_products(conn, PRODUCTS)
        load.upsert_listings(
            conn,
            listings.assign(url=lambda d: "https://shop.example/" + d["item_id"], title=lambda d: d["item_id"])[
                ["retailer", "item_id", "url", "title", "category"]
            ],
        )
        matched = listings.dropna(subset=["sku"]).assign(score=1.0, method="gtin")
        load.load_matches(conn, matched[["retailer", "item_id", "sku", "method", "score", "status"]])
        load.load_prices(conn, world["prices"] if prices is None else prices)
        if prices is None:
            load.load_sales(conn, world["sales"])


@contextmanager
def _no_network():
    """Fail any attempt to resolve or reach a host other than loopback (dbt talks to PostgreSQL through libpq
    on a unix socket, which never passes through Python's socket module)."""
    attempts: list = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("/"):
            attempts.append(address)
            raise OSError(f"network disabled in this test: {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost", None):
            attempts.append(host)
            raise socket.gaierror(f"network disabled in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.getaddrinfo = real_connect, real_getaddrinfo  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def built(pg_server_url, tmp_path_factory):
    """Tenants acme (seed 1) and globex (same SKUs, retailers and item ids, prices x3) loaded, the app role made,
    `dbt build` run once: (url, owner engine, worlds, build summary, work dir)."""
    work = tmp_path_factory.mktemp("dbt")
    with migrated_database(pg_server_url, "priceintel_dbt") as (url, owner):
        worlds = {"acme": _world(1), "globex": _world(2, scale=3.0)}
        for tenant, world in worlds.items():
            tenancy.ensure_tenant(owner, tenant)
            _load(owner, tenant, world)
        app_url = roles.ensure_app_role(url)
        with _no_network() as attempts:
            summary = dbt.build(url=url, work=work)
        assert attempts == [], attempts
        yield {"url": url, "owner": owner, "app_url": app_url, "worlds": worlds, "summary": summary, "work": work}


def _read(owner: sa.Engine, tenant: str, mart: str) -> pd.DataFrame:
    with tenancy.scope(tenant):
        return dbt.read_mart(owner, mart)


def _categories(listings: pd.DataFrame) -> pd.DataFrame:
    """item_id -> category and matched sku, as the marts define them."""
    out = listings.merge(PRODUCTS[["sku", "category"]], on="sku", how="left", suffixes=("_listing", ""))
    matched = out["status"].isin(["auto", "confirmed"])
    out["matched_sku"] = out["sku"].where(matched)
    out["category"] = out["category"].where(matched).fillna(out["category_listing"]).fillna("(none)")
    return out[["retailer", "item_id", "matched_sku", "category"]]


def test_build_runs_every_model_and_test(built):
    s = built["summary"]
    assert s["success"] and s["problems"] == []
    assert s["counts"]["model"] == {"success": 4}  # the marts; staging and intermediate models are ephemeral
    assert s["counts"]["test"]["pass"] >= 40 and set(s["counts"]["test"]) == {"pass"}
    names = {n["name"] for n in s["nodes"]}
    assert {"fct_price_history", "mart_price_index", "mart_price_positioning", "mart_promotions",
            "assert_no_negative_prices", "assert_price_index_base_is_100", "unique_stg_listings_listing_id",
            "accepted_values_stg_matches_status__auto__review__confirmed__rejected"} <= names  # fmt: skip
    # the marts are tables with row-level security in their own schema; staging is ephemeral (CTEs), so nothing
    # in the database depends on the star tables (a migration may alter them)
    with tenancy.as_owner(), built["owner"].connect() as conn:
        kinds = dict(conn.execute(sa.text(
            "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'marts'::regnamespace"
            " AND c.relkind NOT IN ('i', 'S')")).all())  # fmt: skip
        rls = conn.execute(sa.text("SELECT bool_and(relrowsecurity) FROM pg_class WHERE relkind = 'r'"
                                   " AND relnamespace = 'marts'::regnamespace")).scalar()  # fmt: skip
        schemas = set(conn.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname !~ '^(pg_|information_)'"))
                      .scalars())  # fmt: skip
    assert kinds == {m: "r" for m in dbt.MARTS} and rls is True
    assert schemas == {"public", "marts"}


def test_price_history_is_every_observation(built):
    got = _read(built["owner"], "acme", "fct_price_history")
    prices = built["worlds"]["acme"]["prices"]
    assert len(got) == len(prices) and got["price_id"].is_unique
    got = got.assign(ds=pd.to_datetime(got["ds"]))
    m = prices.merge(got, on=["retailer", "item_id", "ds"], suffixes=("", "_mart"), validate="one_to_one")
    assert len(m) == len(prices)
    pd.testing.assert_series_equal(m["price_mart"].astype(float), m["price"].astype(float), check_names=False)
    discount = [-_pct(p, lp) if lp == lp else np.nan for p, lp in zip(m["price"], m["list_price"])]
    assert np.allclose(m["discount_pct"].astype(float), discount, equal_nan=True)
    assert (m["price_id"] == m["listing_id"].astype(str) + "-" + m["ds"].dt.strftime("%Y%m%d")).all()


def _expected_index(world: dict[str, pd.DataFrame]) -> pd.DataFrame:
    p = world["prices"].merge(_categories(world["listings"]), on=["retailer", "item_id"])
    p = p[p["price"] > 0]
    rows = []
    for (cat, retailer), g in p.groupby(["category", "retailer"]):
        base_ds = g["ds"].min()
        base = g[g["ds"] == base_ds].set_index("item_id")["price"]
        for ds, day in g[g["item_id"].isin(base.index)].groupby("ds"):
            rel = day.set_index("item_id")["price"] / base.reindex(day["item_id"]).to_numpy()
            rows.append({"category": cat, "retailer": retailer, "ds": ds, "n_listings": len(day),
                         "price_index": round(100 * float(np.exp(np.log(rel).mean())), 4),
                         "base_ds": base_ds})  # fmt: skip
    return pd.DataFrame(rows)


def test_price_index_is_the_jevons_index_against_the_first_day(built):
    got = _read(built["owner"], "acme", "mart_price_index").assign(ds=lambda d: pd.to_datetime(d["ds"]))
    want = _expected_index(built["worlds"]["acme"])
    m = want.merge(got, on=["category", "retailer", "ds"], how="outer", indicator=True, suffixes=("", "_mart"))
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"]
    assert np.allclose(m["price_index_mart"], m["price_index"], atol=1e-4)
    assert (m["n_listings_mart"] == m["n_listings"]).all()
    assert (m["base_date_key"] == m["base_ds"].dt.strftime("%Y%m%d").astype(int)).all()
    assert set(got["category"]) == {"kettles", "toasters", "(none)"}  # T9 counts in toasters by its classifier
    assert (got.loc[got["date_key"] == got["base_date_key"], "price_index"] == 100).all()


def _expected_positioning(world: dict[str, pd.DataFrame]) -> pd.DataFrame:
    cats = _categories(world["listings"])
    p = world["prices"].merge(cats, on=["retailer", "item_id"]).dropna(subset=["matched_sku"])
    p = p[p["price"] > 0]
    comp = p.groupby(["matched_sku", "ds", "retailer"], as_index=False)["price"].min()
    ours = world["sales"].rename(columns={"sku": "matched_sku", "price": "our_price"})
    rows = []
    for (sku, ds), g in comp.groupby(["matched_sku", "ds"]):
        our = ours[(ours["matched_sku"] == sku) & (ours["ds"] == ds)]["our_price"]
        if our.empty:
            continue
        our_price, cheapest = float(our.iloc[0]), g.sort_values(["price", "retailer"]).iloc[0]
        low = float(cheapest["price"])
        position = "cheapest" if our_price < low else "tied" if our_price == low else "dearer"
        rows.append({"sku": sku, "ds": ds, "our_price": our_price, "n_competitors": len(g),
                     "cheapest_retailer": cheapest["retailer"], "min": low,
                     "median": _median_cents(g["price"]), "max": float(g["price"].max()),
                     "gap_pct": _pct(our_price, low), "rank": 1 + int((g["price"] < our_price).sum()),
                     "position": position})  # fmt: skip
    return pd.DataFrame(rows)


def test_positioning_against_the_matched_competitors(built):
    got = _read(built["owner"], "acme", "mart_price_positioning").assign(ds=lambda d: pd.to_datetime(d["ds"]))
    want = _expected_positioning(built["worlds"]["acme"])
    m = want.merge(got, on=["sku", "ds"], how="outer", indicator=True)
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"]
    assert len(m) == 3 * len(DAYS) - 1  # every product every day, but our P3 on day 2 (no sales row)
    for ours, theirs in [
        ("min", "min_competitor_price"),
        ("median", "median_competitor_price"),
        ("max", "max_competitor_price"),
        ("our_price_x", "our_price_y"),
        ("gap_pct_x", "gap_pct_y"),
    ]:
        assert np.allclose(m[ours].astype(float), m[theirs].astype(float)), ours  # fmt: skip
    assert (m["n_competitors_x"] == m["n_competitors_y"]).all() and (m["rank"] == m["price_rank"]).all()
    assert (m["cheapest_retailer_x"] == m["cheapest_retailer_y"]).all() and (m["position_x"] == m["position_y"]).all()
    # P2's only match is amazon (target's listing is under review); day 0 is the planted tie
    p2 = m[m["sku"] == "P2"]
    assert (p2["n_competitors_y"] == 1).all() and (p2["cheapest_retailer_y"] == "amazon").all()
    assert p2.loc[p2["ds"] == DAYS[0], "position_y"].item() == "tied"
    assert {"cheapest", "dearer", "tied"} >= set(m["position_y"]) and len(set(m["position_y"])) >= 2


def _expected_promotions(world: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for item, g in world["prices"].sort_values("ds").groupby("item_id"):
        g = g.reset_index(drop=True)
        i = 0
        while i < len(g):
            if not g.loc[i, "promo"]:
                i += 1
                continue
            j = i
            while j + 1 < len(g) and g.loc[j + 1, "promo"] and (g.loc[j + 1, "ds"] - g.loc[j, "ds"]).days == 1:
                j += 1
            ep, before = g.loc[i:j], g.loc[: i - 1]
            before = before[~before["promo"].astype(bool) & before["price"].notna()]
            regular = float(before["price"].iloc[-1]) if len(before) else ep["list_price"].max()
            low = ep["price"].min()
            rows.append({"item_id": item, "start": g.loc[i, "ds"], "end": g.loc[j, "ds"], "days": j - i + 1,
                         "regular": regular, "source": "before" if len(before) else "list_price",
                         "depth": -_pct(low, regular), "ongoing": j == len(g) - 1})  # fmt: skip
            i = j + 1
    return pd.DataFrame(rows)


def test_promotion_episodes_and_their_depth(built):
    got = _read(built["owner"], "acme", "mart_promotions")
    got = got.assign(start=pd.to_datetime(got["start_ds"]), end=pd.to_datetime(got["end_ds"]))
    want = _expected_promotions(built["worlds"]["acme"])
    m = want.merge(got, on=["item_id", "start"], how="outer", indicator=True, suffixes=("", "_mart"))
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"]
    assert (m["end"] == m["end_mart"]).all() and (m["days"] == m["days_mart"]).all()
    assert np.allclose(m["regular_price"].astype(float), m["regular"]) and (m["regular_source"] == m["source"]).all()
    assert np.allclose(m["depth_pct"].astype(float), m["depth"]) and (m["ongoing"] == m["ongoing_mart"]).all()
    # A1: days 2-3 and 5; W1: 2 and 4 (day 3 unobserved ends a run); W3 from day 0 (list price); T9 ongoing
    assert sorted(m["item_id"]) == ["A1", "A1", "T9", "W1", "W1", "W3"]
    assert m.loc[m["item_id"] == "W3", "regular_source"].item() == "list_price"
    assert m.loc[m["item_id"] == "T9", "category"].item() == "toasters"


def test_tenants_read_their_own_rows_only(built):
    owner, worlds = built["owner"], built["worlds"]
    with tenancy.as_owner(), owner.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT name, tenant_id FROM tenant")).all())
    for tenant in ("acme", "globex"):
        for mart in dbt.MARTS:
            rows = _read(owner, tenant, mart)
            assert len(rows) and set(rows["tenant_id"]) == {ids[tenant]}, (tenant, mart)
    # same SKU, retailer and item id in both tenants: each positions against its own competitors only
    for tenant in ("acme", "globex"):
        got = _read(owner, tenant, "mart_price_positioning").assign(ds=lambda d: pd.to_datetime(d["ds"]))
        want = _expected_positioning(worlds[tenant])
        m = want.merge(got, on=["sku", "ds"])
        assert len(m) == len(want) == len(got) and np.allclose(m["min"], m["min_competitor_price"].astype(float))
    # the apps' role: its tenant's rows with a token, none without one; it may not write. Its grants made again
    # (as `priceintel apps` does on start) include the marts that exist by now
    assert roles.ensure_app_role(built["url"]) == built["app_url"]
    app = get_engine(built["app_url"])
    with tenancy.scope("globex"):
        rows = dbt.read_mart(app, "fct_price_history")
    assert set(rows["tenant_id"]) == {ids["globex"]} and len(rows) == len(worlds["globex"]["prices"])
    assert dbt.read_mart(app, "mart_price_index").empty
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), tenancy.scope("acme"), app.begin() as c:
        c.execute(sa.text("DELETE FROM marts.fct_price_history"))
    assert dbt.mart_rows(owner) == {m: 0 for m in dbt.MARTS}  # the default tenant has no data


def test_incremental_build_adds_new_days_and_replaces_recent_ones(built):
    """A new day and a re-loaded price of the newest day reach fct_price_history and the marts after it; the
    other tenant's rows stay as they were."""
    owner, world = built["owner"], built["worlds"]["acme"]
    prices = world["prices"]
    last = prices[prices["ds"] == DAYS[-1]]
    extra = last.assign(ds=DAYS[-1] + pd.Timedelta(days=1), observed_at=last["observed_at"] + pd.Timedelta(days=1))
    changed = last[last["item_id"] == "A2"].assign(price=lambda d: d["price"] + 1)
    _load(owner, "acme", world, prices=pd.concat([extra, changed]))
    before = _read(owner, "globex", "fct_price_history").sort_values("price_id", ignore_index=True)
    summary = dbt.build(url=built["url"], work=built["work"], select="fct_price_history+")
    assert summary["success"] and summary["counts"]["model"] == {"success": 4}
    now = pd.concat([prices[~prices.index.isin(changed.index)], changed, extra], ignore_index=True)
    got = _read(owner, "acme", "fct_price_history").assign(ds=lambda d: pd.to_datetime(d["ds"]))
    m = now.merge(got, on=["retailer", "item_id", "ds"], suffixes=("", "_mart"), validate="one_to_one")
    assert len(m) == len(now) == len(got)
    assert np.allclose(m["price_mart"].astype(float), m["price"].astype(float), equal_nan=True)
    after = _read(owner, "globex", "fct_price_history").sort_values("price_id", ignore_index=True)
    pd.testing.assert_frame_equal(after, before)
    index = _read(owner, "acme", "mart_price_index").assign(ds=lambda d: pd.to_datetime(d["ds"]))
    want = _expected_index({**world, "prices": now})
    m = want.merge(index, on=["category", "retailer", "ds"], how="outer", indicator=True, suffixes=("", "_mart"))
    assert (m["_merge"] == "both").all() and np.allclose(m["price_index_mart"], m["price_index"], atol=1e-4)
    assert (index["ds"] == extra["ds"].iloc[0]).any()


def test_docs_are_rendered_to_a_static_site(built, tmp_path):
    index = dbt.docs(url=built["url"], work=built["work"], out=tmp_path / "dbt-docs")
    assert index == tmp_path / "dbt-docs" / "index.html"
    body = index.read_text()
    assert "mart_price_positioning" in body and len(body) > 100_000  # the manifest and catalog are inside
    assert {p.name for p in index.parent.iterdir()} == {"index.html", "manifest.json", "catalog.json"}


def test_cli_reports_a_failing_data_test_by_name(built, capsys, monkeypatch):
    """A negative price planted past the table's CHECK (dropped for the test) fails assert_no_negative_prices;
    the command's one-line error names the test."""
    owner = built["owner"]
    with tenancy.as_owner(), owner.begin() as conn:
        checks = conn.execute(sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'fact_price'::regclass AND contype = 'c'"
            " AND pg_get_constraintdef(oid) ~ '\\mprice >= '")).scalars().all()  # fmt: skip
        assert checks
        for name in checks:
            conn.exec_driver_sql(f'ALTER TABLE fact_price DROP CONSTRAINT "{name}"')
        conn.exec_driver_sql("UPDATE fact_price SET price = -1 WHERE date_key = 20260701"
                             " AND listing_id = (SELECT min(listing_id) FROM fact_price)")  # fmt: skip
    monkeypatch.setenv("DATABASE_URL", built["url"])
    code = cli.main(["dbt", "build", "--select", "assert_no_negative_prices", "--work-dir", str(built["work"])])
    err = capsys.readouterr().err
    assert code == 2
    assert "dbt build failed: test assert_no_negative_prices failed: 1 failing row" in err, err
    assert len(err.strip().splitlines()) == 1


def test_one_build_at_a_time(built):
    with tenancy.as_owner(), built["owner"].connect() as conn:
        assert conn.execute(sa.text("SELECT pg_try_advisory_lock(7365120017)")).scalar()
        try:
            with pytest.raises(dbt.DbtError, match="another dbt build is running"):
                dbt.build(url=built["url"], work=built["work"])
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(7365120017)"))


def test_profile_from_a_socket_url():
    profiles, env = dbt.profile_for("postgresql+psycopg://postgres@/priceintel?host=/run/pg&port=5433")
    out = profiles["priceintel"]["outputs"]["default"]
    assert (out["host"], out["port"], out["user"], out["dbname"]) == ("/run/pg", 5433, "postgres", "priceintel")
    assert "env_var" in out["password"] and env == {dbt.PASSWORD_ENV: ""}
    profiles, env = dbt.profile_for("postgresql://me:s3cret@db.example:6543/prices?sslmode=require")
    out = profiles["priceintel"]["outputs"]["default"]
    assert (out["host"], out["port"], out["sslmode"]) == ("db.example", 6543, "require") and "s3cret" not in str(out)
    assert env[dbt.PASSWORD_ENV] == "s3cret"
    with pytest.raises(dbt.DbtError, match="must be PostgreSQL"):
        dbt.profile_for("sqlite:///x.db")
    assert Path(dbt.DBT_DIR / "dbt_project.yml").exists()
