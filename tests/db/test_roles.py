"""The apps' database role on real PostgreSQL: reads everything, writes only the apps' tables, no DDL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import ProgrammingError

from priceintel import config
from priceintel.db import roles, tenancy
from priceintel.db.engine import app_role_name, create_database, drop_database, get_engine
from priceintel.db.migrate import upgrade


def _denied(url: str, sql: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn, pytest.raises(ProgrammingError) as err:
            conn.exec_driver_sql(sql)
        return str(err.value.orig)
    finally:
        engine.dispose()


def test_the_app_role_reads_all_writes_only_the_apps_tables(pg_engine, pg_url):
    app_url = roles.ensure_app_role(pg_url)
    assert app_url is not None
    role = app_role_name(pg_engine.url.database)
    assert sa.engine.make_url(app_url).username == role
    assert roles.ensure_app_role(pg_url) == app_url  # repeatable

    rights = roles.role_privileges(pg_url, role)
    assert rights["superuser"] is False and rights["createrole"] is False and rights["createdb"] is False
    assert rights["writes"] == sorted((*roles.APP_WRITES, *roles.APP_UPSERTS, "api_key", "dim_date"))  # INSERT privilege

    app = sa.create_engine(app_url, poolclass=sa.pool.NullPool)
    try:
        with app.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == role
            conn.execute(sa.text("SELECT count(*) FROM fact_price")).scalar()  # reads the facts
            conn.execute(sa.text("SELECT count(*) FROM mv_app_prices")).scalar()  # and the app views
            conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar()
        with app.begin() as conn:  # without a tenant: sees nothing, may add nothing
            assert conn.execute(sa.text("SELECT priceintel_tenant()")).scalar() is None
            with pytest.raises(ProgrammingError, match="row-level security"):
                conn.execute(sa.text("INSERT INTO import_run (kind, path, sha256) VALUES ('catalog', 'x.csv', 'x')"))
        with app.begin() as conn:  # writes what the apps write (a temp staging table too), then rolls back
            conn.exec_driver_sql(
                "SELECT set_config('priceintel.tenant', 'default', true), set_config('priceintel.tenant_token', %s, true)",
                (tenancy.token_for("default", config.tenant_secret()),),
            )
            conn.exec_driver_sql("CREATE TEMP TABLE stg_x (a int) ON COMMIT DROP")
            conn.execute(
                sa.text("INSERT INTO import_run (kind, path, sha256) VALUES ('catalog', 'test.csv', 'x')")
            )
            conn.rollback()
    finally:
        app.dispose()

    assert "permission denied" in _denied(app_url, "DELETE FROM fact_price")
    assert "permission denied" in _denied(app_url, "SELECT * FROM mv_app_forecasts_all")  # every tenant's rows
    assert "permission denied" in _denied(app_url, "UPDATE tenant SET plan = 'enterprise'")
    assert "permission denied" in _denied(app_url, "UPDATE dim_date SET date = date + 36500")  # the shared calendar
    assert "permission denied" in _denied(app_url, "UPDATE tenant_usage SET pages_fetched = 0")  # usage only grows
    # users and keys: only the columns sign-in and the API stamp; no role changes, no deleting a key's record
    assert "permission denied" in _denied(app_url, "UPDATE app_user SET role = 'admin'")
    assert "permission denied" in _denied(app_url, "INSERT INTO app_user (username, password_hash) VALUES ('x', '$argon2x')")
    assert "permission denied" in _denied(app_url, "DELETE FROM api_key")
    assert "permission denied" in _denied(app_url, "INSERT INTO alembic_version VALUES ('x')")
    assert "permission denied" in _denied(app_url, "CREATE TABLE evil (a int)")
    assert "must be owner" in _denied(app_url, "DROP TABLE fact_price")
    assert "must be owner" in _denied(app_url, "ALTER TABLE app_user ADD COLUMN x int")
    assert "permission denied" in _denied(app_url, "COPY fact_price TO PROGRAM 'true'")
    assert "permission denied" in _denied(app_url, "CREATE ROLE evil2 SUPERUSER")


def test_dropping_a_database_drops_its_app_role(pg_server_url):
    name = "priceintel_roles_t"
    url = create_database(pg_server_url, name)
    try:
        upgrade(url)
        assert roles.ensure_app_role(url)
    finally:
        drop_database(pg_server_url, name)
    with get_engine(pg_server_url).connect() as conn:
        left = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": app_role_name(name)}).first()
    assert left is None


def test_a_given_app_url_must_not_be_the_owner(pg_engine, pg_url, monkeypatch):
    monkeypatch.setenv(roles.APP_URL_ENV, pg_url)
    with pytest.raises(roles.DatabaseError, match="other than the owner"):
        roles.ensure_app_role(pg_url)
