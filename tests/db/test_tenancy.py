"""Tenants isolated by PostgreSQL itself (migration 0014): raw SQL as the app role reaches one tenant's rows only,
and only with that tenant's token; the owner's pipeline works in one tenant through the worker role; natural
keys are per tenant; the app views keep the current tenant's rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, ProgrammingError

from _fixtures_pg import migrated_database
from _tenants import load_two_tenants
from priceintel import config
from priceintel.api import keys
from priceintel.apps import auth
from priceintel.db import roles, tenancy, views
from priceintel.db.engine import get_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two(pg_server_url):
    """A fresh database with tenants `acme` and `globex` (`_tenants.load_two_tenants`)."""
    with migrated_database(pg_server_url, "priceintel_tenants") as (url, owner):
        load_two_tenants(owner)
        app_url = roles.ensure_app_role(url)
        assert app_url is not None
        yield owner, app_url


def _raw(app_url: str) -> sa.Engine:
    """The app role without the workbench's hooks: what an attacker with its connection could run."""
    return sa.create_engine(app_url, poolclass=sa.pool.NullPool)


def _prove(conn: sa.Connection, tenant: str, token: str | None = None) -> None:
    conn.exec_driver_sql(
        "SELECT set_config('priceintel.tenant', %s, true), set_config('priceintel.tenant_token', %s, true)",
        (tenant, token if token is not None else tenancy.token_for(tenant, config.tenant_secret())),
    )


def test_raw_sql_as_the_app_role_reaches_one_tenant_only(two):
    owner, app_url = two
    engine = _raw(app_url)
    try:
        with engine.begin() as conn:  # no tenant: nothing at all
            assert conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM fact_price")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM mv_app_prices")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM tenant")).scalar() == 0
        with engine.begin() as conn:
            _prove(conn, "acme")
            assert conn.execute(sa.text("SELECT name FROM dim_product WHERE sku = 'SKU-1'")).scalar() == "acme kettle"
            assert "GLOBEX-ONLY" not in conn.execute(sa.text("SELECT sku FROM dim_product")).scalars().all()
            assert conn.execute(sa.text("SELECT price FROM v_latest_price")).scalars().all() == [10]
            assert conn.execute(sa.text("SELECT price FROM mv_app_prices")).scalars().all() == [10.0]
            assert conn.execute(sa.text("SELECT name FROM tenant")).scalars().all() == ["acme"]
            # writes: another tenant's rows are out of reach, and a row cannot be put into another tenant
            globex = owner_id(owner, "globex")
            assert conn.execute(sa.text("UPDATE dim_product SET name = 'x' WHERE tenant_id = :t"), {"t": globex}).rowcount == 0
            assert conn.execute(sa.text("DELETE FROM watch WHERE tenant_id = :t"), {"t": globex}).rowcount == 0
            with pytest.raises(ProgrammingError, match="row-level security"), conn.begin_nested():
                conn.execute(
                    sa.text("INSERT INTO dim_product (sku, name, tenant_id) VALUES ('X', 'planted', :t)"), {"t": globex}
                )
            with pytest.raises(ProgrammingError, match="row-level security"), conn.begin_nested():
                conn.execute(sa.text("UPDATE alert SET tenant_id = :t"), {"t": globex})
                conn.execute(sa.text("UPDATE fact_price SET tenant_id = :t"), {"t": globex})
            with pytest.raises(ProgrammingError, match="permission denied"), conn.begin_nested():
                conn.execute(sa.text("SELECT count(*) FROM mv_app_forecasts_all"))
            # the price rollups hold every tenant's rows; their policy shows this tenant's only
            seen = set(conn.execute(sa.text("SELECT DISTINCT tenant_id FROM app_prices_all")).scalars())
            assert seen <= {owner_id(owner, "acme")}
        # naming another tenant without its token, with a wrong one or with another tenant's: refused
        for token in ("", "0" * 64, tenancy.token_for("acme", config.tenant_secret())):
            with engine.begin() as conn, pytest.raises(DBAPIError, match="no valid tenant token"):
                _prove(conn, "globex", token)
                conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar()
        with engine.begin() as conn, pytest.raises(DBAPIError, match="no valid tenant token"):
            _prove(conn, "globex", tenancy.token_for("globex", "a guessed key of 32 characters or more!!"))
            conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar()
        with engine.begin() as conn:  # and no function hands out tokens or other tenants' users
            rows = conn.execute(sa.text("SELECT count(*) FROM app_user")).scalar()
            assert rows == 0
            with pytest.raises(ProgrammingError, match="permission denied"), conn.begin_nested():
                conn.execute(sa.text("SELECT token_hash FROM tenant"))
    finally:
        engine.dispose()


def owner_id(owner: sa.Engine, name: str) -> int:
    with tenancy.as_owner(), owner.connect() as conn:
        return conn.execute(sa.text("SELECT tenant_id FROM tenant WHERE name = :n"), {"n": name}).scalar_one()


def test_the_owner_works_in_one_tenant_through_its_worker_role(two):
    owner, _ = two
    with tenancy.scope("globex"), owner.connect() as conn:
        who = conn.execute(sa.text("SELECT current_user")).scalar()
        assert who == tenancy.worker_role_name(owner.url.database)
        assert sorted(conn.execute(sa.text("SELECT sku FROM dim_product")).scalars()) == ["GLOBEX-ONLY", "SKU-1"]
        assert conn.execute(sa.text("SELECT price FROM mv_app_prices")).scalars().all() == [20.0]
    with tenancy.scope("acme"), owner.begin() as conn:  # the same SKU in both tenants: keys are per tenant
        assert conn.execute(sa.text("SELECT name FROM dim_product WHERE sku = 'SKU-1'")).scalar() == "acme kettle"
        with pytest.raises(ProgrammingError, match="permission denied"), conn.begin_nested():
            conn.exec_driver_sql("TRUNCATE dim_product CASCADE")  # TRUNCATE would ignore the policies
    with tenancy.as_owner(), owner.connect() as conn:  # the owner itself sees every tenant
        assert conn.execute(sa.text("SELECT count(*) FROM dim_product WHERE sku = 'SKU-1'")).scalar() == 2
    with tenancy.scope("nobody"), pytest.raises(DBAPIError, match="no tenant 'nobody'"), owner.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar()
    with pytest.raises(tenancy.TenantError, match="no tenant 'nobody'"):
        tenancy.require(owner, "nobody")
    with pytest.raises(tenancy.TenantError, match="lower-case"):
        tenancy.check_name("Bad Name")


def test_users_and_keys_belong_to_a_tenant(two):
    owner, app_url = two
    auth.add_user(owner, "ann", "correct horse battery", tenant="acme", role="admin")
    with pytest.raises(auth.AuthError, match="belongs to tenant 'acme'"):
        auth.add_user(owner, "ann", "another password!", tenant="globex")
    assert auth.account_of(owner, "ann").tenant == "acme"
    app = get_engine(app_url)
    assert auth.sign_in(app, "ann", "correct horse battery") is not None  # the app role finds her tenant first
    assert auth.account_of(app, "ann").role == "admin"
    with tenancy.scope("globex"):
        key_id, key = keys.create_key(owner, "globex reader", "read", created_by="test")
    assert keys.authenticate(app, key).tenant == "globex"
    with tenancy.scope("acme"):
        assert key_id not in set(keys.list_keys(owner).key_id)
        with pytest.raises(keys.ApiKeyError, match="no API key"):
            keys.revoke_key(owner, key_id, revoked_by="test")  # another tenant's key cannot be revoked here
    listed = auth.list_users(owner)
    assert dict(zip(listed.username, listed.tenant))["ann"] == "acme"
    tenants = tenancy.list_tenants(owner).set_index("name")
    assert tenants.loc["acme", "users"] == 1 and tenants.loc["globex", "api_keys"] == 1
    assert tenants.loc["acme", "products"] == 2 and tenants.loc["default", "is_default"]


def test_a_changed_tenant_key_is_synced_and_old_tokens_stop(two, monkeypatch):
    owner, app_url = two
    engine = _raw(app_url)
    old = tenancy.token_for("acme", config.tenant_secret())
    try:
        tenancy.sync_tokens(owner, "a new tenant key of at least 32 characters")
        with engine.begin() as conn, pytest.raises(DBAPIError, match="no valid tenant token"):
            _prove(conn, "acme", old)
            conn.execute(sa.text("SELECT 1 FROM dim_product")).all()
    finally:
        tenancy.sync_tokens(owner)
        engine.dispose()
    with engine.begin() as conn:
        _prove(conn, "acme", old)
        assert conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar() == 2


def test_the_app_roles_own_objects_cannot_bend_the_checks(two):
    """A temporary `tenant` table cannot stand in for the real one; a cheap function in a WHERE clause sees no
    other tenant's row of a view over every tenant (security_barrier); usage only grows."""
    owner, app_url = two
    engine = _raw(app_url)
    try:
        with engine.begin() as conn, pytest.raises(DBAPIError, match="no valid tenant token"):
            conn.exec_driver_sql("CREATE TEMP TABLE tenant (tenant_id int, name text, is_default bool, token_hash bytea,"
                                 " plan text)")
            conn.exec_driver_sql("INSERT INTO pg_temp.tenant VALUES (%s, 'x', false, sha256('x'), 'free')",
                                 (owner_id(owner, "globex"),))
            _prove(conn, "x", "x")
            conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar()
        with engine.begin() as conn:
            seen: list[str] = []
            conn.connection.driver_connection.add_notice_handler(lambda d: seen.append(d.message_primary or ""))
            conn.exec_driver_sql("""CREATE FUNCTION pg_temp.leak(v text) RETURNS boolean COST 0.0001
                                    LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'row %%', v; RETURN true; END $$""")
            _prove(conn, "acme")
            rows = conn.execute(sa.text("SELECT name FROM mv_app_prices WHERE pg_temp.leak(name)")).scalars().all()
            assert rows == ["acme kettle"]
            assert seen and not any("globex" in m for m in seen)
        with engine.begin() as conn:
            _prove(conn, "acme")
            with pytest.raises(DBAPIError, match="never taken away"), conn.begin_nested():
                conn.exec_driver_sql("SELECT priceintel_add_usage(current_date, -100, 0, 0)")
            conn.exec_driver_sql("SELECT priceintel_add_usage(current_date, 2, 0, 0)")
            assert conn.execute(sa.text("SELECT requests FROM tenant_usage")).scalar() >= 2
    finally:
        engine.dispose()


def test_a_match_planted_across_tenants_shows_in_no_view(two):
    """Foreign keys do not carry the tenant, so raw SQL as acme's app role can name globex's product id in a row
    of its own: the app views join on the tenant too, so globex's product never appears in acme's views."""
    owner, app_url = two
    with tenancy.as_owner(), owner.connect() as conn:
        globex_product = conn.execute(sa.text(
            "SELECT product_id FROM dim_product p JOIN tenant t USING (tenant_id) WHERE t.name = 'globex' AND sku = 'SKU-1'"
        )).scalar_one()
    engine = _raw(app_url)
    try:
        with engine.begin() as conn:
            _prove(conn, "acme")
            retailer = conn.execute(sa.text("SELECT retailer_id FROM dim_retailer")).scalar_one()
            listing = conn.execute(sa.text(
                "INSERT INTO dim_listing (retailer_id, item_id, title) VALUES (:r, 'PLANT', 'p') RETURNING listing_id"
            ), {"r": retailer}).scalar_one()
            conn.execute(sa.text("INSERT INTO fact_price (listing_id, date_key, observed_at, price, currency) "
                                 "VALUES (:l, 20260701, now(), 1, 'USD')"), {"l": listing})
            conn.execute(sa.text("INSERT INTO product_match (listing_id, product_id, method, score, status) "
                                 "VALUES (:l, :p, 'human', 1, 'confirmed')"), {"l": listing, "p": globex_product})
        views.refresh(owner)
        with engine.begin() as conn:
            _prove(conn, "acme")
            names = set(conn.execute(sa.text("SELECT name FROM mv_app_prices")).scalars())
            names |= set(conn.execute(sa.text("SELECT coalesce(sku, '') FROM v_latest_price")).scalars())
        assert "globex kettle" not in names and names
    finally:
        engine.dispose()
        with tenancy.as_owner(), owner.begin() as conn:
            conn.exec_driver_sql("DELETE FROM product_match WHERE listing_id IN "
                                 "(SELECT listing_id FROM dim_listing WHERE item_id = 'PLANT')")
            conn.exec_driver_sql("DELETE FROM fact_price WHERE listing_id IN "
                                 "(SELECT listing_id FROM dim_listing WHERE item_id = 'PLANT')")
            conn.exec_driver_sql("DELETE FROM dim_listing WHERE item_id = 'PLANT'")
        views.refresh(owner)


def test_a_new_tenant_becomes_the_default_whatever_the_rows_order(pg_server_url):
    """ensure_tenant(default_if_unused=True) moves the default even when the new tenant's row lies before the
    old default's in the table (an update moved that one): one UPDATE setting both failed on ux_tenant_default."""
    with migrated_database(pg_server_url, "priceintel_default") as (_url, owner):
        assert tenancy.ensure_tenant(owner, "acme")
        with tenancy.as_owner(), owner.begin() as conn:
            old = conn.execute(sa.text("SELECT name FROM tenant WHERE is_default")).scalar_one()
            conn.execute(sa.text("UPDATE tenant SET plan = plan WHERE is_default"))  # its row now after acme's
            order = conn.execute(sa.text("SELECT name FROM tenant ORDER BY ctid")).scalars().all()
        assert order.index("acme") < order.index(old)
        assert not tenancy.ensure_tenant(owner, "acme", default_if_unused=True)
        with tenancy.as_owner(), owner.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM tenant WHERE is_default")).scalars().all() == ["acme"]
