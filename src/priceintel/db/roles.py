"""The apps' database role: a login role that is not a superuser and owns nothing.

Migrations, loads and `priceintel users` run as the database owner (the URL in DATABASE_URL). The Voila apps
and the REST API connect as `<database>_app`, which may read every table and view but write only the tables the
apps write (sign-in, match review, alert states, own-data imports, API keys) and add to, never delete from, the
price facts the API imports: no DDL, no ownership, no superuser, so a bug in an app cannot drop, alter or read
outside the workbench's tables.

`ensure_app_role(url)` creates the role when the owner may (superuser or CREATEROLE), (re-)grants its
privileges and returns a URL to connect as it: `$PRICEINTEL_APP_DATABASE_URL` when set (that role is granted
the same privileges), else the owner's URL with the app role as user and no password, which works on servers
that trust local connections (the embedded server's unix socket). It returns None when neither works; the
caller then says so and connects as the owner.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from priceintel.db import tenancy
from priceintel.db.engine import _create_engine, app_role_name, get_engine, normalize_url, redact_url
from priceintel.db.errors import DatabaseError
from priceintel.db.views import ALL_TENANTS

__all__ = [
    "APP_COLUMN_WRITES",
    "APP_UPSERTS",
    "APP_WRITES",
    "app_role_name",
    "ensure_app_role",
    "ensure_worker_role",
    "role_privileges",
]

#: the tables the apps write; every other table and view is read-only to them
APP_WRITES = (
    "match_label",  # the review app's decisions
    "product_match",
    "watch",  # a confirmed match becomes a watched URL; onboarding imports a watch list
    "alert",  # the alerts app acknowledges and resolves
    "alert_delivery",
    "dim_product",  # onboarding: catalogue imports
    "fact_sales",  # onboarding: sales imports
    "import_run",
)
#: tables the apps write only some columns of (and never delete from): sign-in stamps, rehashed passwords and
#: session versions of users (who are added, given roles and removed by the owner's CLI); API keys made and
#: revoked through the API by admins and their last-used stamps (a revoked key stays on record)
APP_COLUMN_WRITES = {
    "app_user": "UPDATE (last_login_at, password_hash, session_version)",
    "api_key": "INSERT, UPDATE (last_used_at, revoked_at, revoked_by)",
    "dim_date": "INSERT",  # the shared calendar: days are added, never changed
}
#: tables the apps may add to and update but never delete from: the API's import of competitor prices observed
#: elsewhere (new retailers, listings and prices; `ingest.observations`); usage is added through a function
APP_UPSERTS = ("dim_retailer", "dim_listing", "fact_price")
#: environment variable naming a ready-made app role URL (servers without trust auth)
APP_URL_ENV = "PRICEINTEL_APP_DATABASE_URL"


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _create_role(conn: Connection, role: str, login: bool = True) -> bool:
    """Create the role unless it exists; False when the connected user may not create roles."""
    exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if exists:
        return True
    may = conn.execute(sa.text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")).scalar()
    if not may:
        return False
    with conn.begin_nested():
        try:
            conn.exec_driver_sql(
                f"CREATE ROLE {_quote(conn, role)} {'LOGIN' if login else 'NOLOGIN'} "
                "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            )
        except SQLAlchemyError as err:  # another process created it at the same moment
            if "already exists" not in str(getattr(err, "orig", err)):
                raise
    return True


def _grant(conn: Connection, role: str, database: str) -> None:
    """Read everything, write APP_WRITES, use the sequences; nothing else (repeatable)."""
    q = _quote(conn, role)
    tables = {r[0] for r in conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
    conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {_quote(conn, database)} TO {q}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {q}")
    conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {q}")
    conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {q}")
    writes = [t for t in APP_WRITES if t in tables]
    upserts = [t for t in APP_UPSERTS if t in tables]
    others = sorted(tables - set(writes))
    if others:  # a table that left APP_WRITES loses its write grant on the next run
        conn.exec_driver_sql(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(others)} FROM {q}")
    if writes:
        conn.exec_driver_sql(f"GRANT INSERT, UPDATE, DELETE ON {', '.join(writes)} TO {q}")
    if upserts:
        conn.exec_driver_sql(f"GRANT INSERT, UPDATE ON {', '.join(upserts)} TO {q}")
    for table, privileges in APP_COLUMN_WRITES.items():
        if table in tables:
            conn.exec_driver_sql(f"GRANT {privileges} ON {table} TO {q}")
    if "tenant" in tables:  # its own tenant row, never the token hashes; the key and user lookups
        conn.exec_driver_sql(f"REVOKE SELECT ON tenant FROM {q}")
        conn.exec_driver_sql(f"GRANT SELECT (tenant_id, name, plan, is_default, created_at) ON tenant TO {q}")
        _grant_lookups(conn, q)
    _hide_all_tenants(conn, q)
    _grant_marts(conn, q)


def _grant_lookups(conn: Connection, quoted_role: str) -> None:
    """EXECUTE on the tenant lookups that run before a tenant is known (not granted to PUBLIC, migration 0014) and
    on the maker of fact_price's partitions (migration 0017; loads of prices, the API's imports too)."""
    conn.exec_driver_sql(
        f"GRANT EXECUTE ON FUNCTION priceintel_user_tenant(text), priceintel_api_key(text) TO {quoted_role}"
    )
    if conn.execute(sa.text("SELECT to_regprocedure('priceintel_price_partitions(date, date)') IS NOT NULL")).scalar():
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION priceintel_price_partitions(date, date) TO {quoted_role}")


def _hide_all_tenants(conn: Connection, quoted_role: str) -> None:
    """Revoke what reads every tenant's rows: the app rollups and materialized views (read through their
    per-tenant views), their definitions and queue (`db.views.ALL_TENANTS`), and fact_price's partitions (read
    directly, a partition would not apply the parent's policy; each has its own, and the role reads the parent)."""
    every = {r[0] for r in conn.execute(sa.text("SELECT matviewname FROM pg_matviews WHERE schemaname = 'public'"))}
    every |= {
        r[0]
        for r in conn.execute(
            sa.text("""SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
                       AND c.relkind IN ('r', 'p', 'v', 'm') AND (c.relname = ANY(:names) OR c.relispartition)"""),
            {"names": list(ALL_TENANTS)},
        )
    }
    if every:
        conn.exec_driver_sql(f"REVOKE ALL ON {', '.join(sorted(every))} FROM {quoted_role}")


def _grant_marts(conn: Connection, quoted_role: str) -> None:
    """Read the dbt marts (schema `marts`, docs/dbt.md) when they exist: their tables carry tenant_id under the
    star tables' row-level security policy, so a role reads its tenant's rows (dbt grants them too, on each run;
    this covers a role made after it). The staging schema of dbt stays out of reach."""
    if conn.execute(sa.text("SELECT to_regnamespace('marts') IS NOT NULL")).scalar():
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA marts TO {quoted_role}")
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA marts TO {quoted_role}")


def ensure_worker_role(engine: sa.Engine) -> str | None:
    """Create and grant the owner's worker role `<db>_worker` (`db.tenancy`): a role without login that may read
    and write every tenant-owned table but, not being the owner, is held to row-level security, so the owner's
    pipeline and CLI work in one tenant. Returns its name, or None when the owner may not create roles (its
    transactions then bypass row-level security and see every tenant: one tenant per database only)."""
    database = engine.url.database or "postgres"
    role = tenancy.worker_role_name(database)
    with tenancy.as_owner(), engine.begin() as conn:
        if conn.execute(sa.text("SELECT to_regclass('public.tenant') IS NULL")).scalar():
            return None  # not migrated to tenants (yet)
        if not _create_role(conn, role, login=False):
            return None
        q = _quote(conn, role)
        owner = str(conn.execute(sa.text("SELECT current_user")).scalar())
        conn.exec_driver_sql(f"GRANT {q} TO {_quote(conn, owner)}")
        conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {_quote(conn, database)} TO {q}")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {q}")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {q}")
        conn.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {q}")
        conn.exec_driver_sql(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version, tenant FROM {q}")
        _grant_lookups(conn, q)
        _hide_all_tenants(conn, q)
        _grant_marts(conn, q)
    tenancy.forget(engine)
    return role


def _connects(url: str) -> bool:
    engine = _create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except (SQLAlchemyError, OSError):
        return False
    finally:
        engine.dispose()


def ensure_app_role(url: str | None = None) -> str | None:
    """Create and grant the app role of the database at url (default DATABASE_URL / embedded); return the URL
    to connect as it, or None when no app role can be used (the owner's URL is then the only one). The tenants'
    token hashes are first brought in line with this installation's tenant key (`db.tenancy.sync_tokens`)."""
    owner = get_engine(url)
    if tenancy.ready(owner):
        tenancy.sync_tokens(owner)
    database = owner.url.database or "postgres"
    given = os.environ.get(APP_URL_ENV)
    if given:
        target = make_url(normalize_url(given))
        role = target.username or ""
    else:
        role = app_role_name(database)
    with tenancy.as_owner(), owner.begin() as conn:
        if role == conn.execute(sa.text("SELECT current_user")).scalar():
            raise DatabaseError(f"{APP_URL_ENV} ({redact_url(given or '')}) must name a role other than the owner")
        if not _create_role(conn, role):
            return given and normalize_url(given) or None
        _grant(conn, role, database)
    if given:
        return normalize_url(given)
    app_url = owner.url.set(username=role, password=None).render_as_string(hide_password=False)
    return app_url if _connects(app_url) else None


def role_privileges(url: str, role: str) -> dict:
    """What role may do: superuser/createrole/createdb flags and the tables it may write (for tests and
    `priceintel db status`)."""
    with tenancy.as_owner(), get_engine(url).connect() as conn:
        flags = conn.execute(
            sa.text("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = :r"), {"r": role}
        ).first()
        writes = [
            r[0]
            for r in conn.execute(
                sa.text("""SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                           AND has_table_privilege(:r, c.oid, 'INSERT') ORDER BY 1"""),
                {"r": role},
            )
        ]
    if flags is None:
        return {}
    return {"superuser": flags[0], "createrole": flags[1], "createdb": flags[2], "writes": writes}
