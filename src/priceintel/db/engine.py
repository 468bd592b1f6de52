"""Database URL, cached SQLAlchemy engines, connection checks and database create/drop helpers."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from priceintel import config
from priceintel.db import tenancy
from priceintel.db.errors import DatabaseError

__all__ = [
    "DatabaseError",
    "normalize_url",
    "redact_url",
    "get_url",
    "get_engine",
    "check_connection",
    "dispose_engines",
    "database_url",
    "create_database",
    "drop_database",
    "database_exists",
    "app_role_name",
]

_ENGINES: dict[str, Engine] = {}
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: seconds to wait for a TCP connection before declaring the server dead
CONNECT_TIMEOUT = 5


def normalize_url(url: str) -> str:
    """`postgres://` / `postgresql://` → `postgresql+psycopg://` (psycopg 3); other URLs unchanged."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact_url(url: str | sa.URL) -> str:
    """URL with the password masked, safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", str(url))


def get_url() -> str:
    """SQLAlchemy URL of the system of record: $DATABASE_URL, else the embedded server."""
    settings = config.get_settings()
    if settings.database_url:
        return normalize_url(settings.database_url)
    from priceintel.db.server import start_embedded

    return start_embedded()


def _reason(err: BaseException) -> str:
    """One-line reason of a driver/SQLAlchemy error (without SQLAlchemy's boilerplate)."""
    orig = getattr(err, "orig", None) or err
    text = " ".join(str(orig).split())
    return text.split(" (Background on this error")[0] or type(orig).__name__


def check_connection(engine: Engine) -> None:
    """Run `SELECT 1`; raise DatabaseError naming the (redacted) URL and the reason on failure."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, OSError) as err:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {redact_url(engine.url)}: {_reason(err)}. "
            "Is DATABASE_URL right / is the server running?"
        ) from None


def _create_engine(url: str, **kwargs) -> Engine:
    """New engine for url, with a connect timeout unless the URL sets one."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as err:
        raise DatabaseError(f"malformed database URL {redact_url(url)!r}: {err}") from None
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
    try:
        return sa.create_engine(parsed, connect_args=connect_args, **kwargs)
    except (ArgumentError, ImportError, SQLAlchemyError) as err:
        raise DatabaseError(f"cannot use database URL {redact_url(url)!r}: {err}") from None


def get_engine(url: str | None = None, *, check: bool = True) -> Engine:
    """Engine for url (default `get_url()`), cached per URL; checked on first use unless check=False."""
    url = normalize_url(url) if url else get_url()
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _create_engine(url, pool_pre_ping=True)
        tenancy.install(engine)  # every transaction in its tenant (row-level security, migration 0014)
        if check:
            try:
                check_connection(engine)
            except DatabaseError:
                engine.dispose()
                raise
        _ENGINES[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every cached engine (e.g. before dropping a database or forking)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def database_url(url: str, name: str) -> str:
    """The same server and credentials as url, but database `name`."""
    return make_url(normalize_url(url)).set(database=name).render_as_string(hide_password=False)


def _check_name(name: str) -> None:
    """Raise DatabaseError unless name is a plain SQL identifier."""
    if not _DB_NAME.match(name or ""):
        raise DatabaseError(f"invalid database name {name!r}: use letters, digits and _ (max 63)")


def app_role_name(database: str) -> str:
    """`<database>_app`: the apps' login role of a database (see `db.roles`), cut to 63 characters."""
    return f"{database[:59]}_app"


def _admin(url: str) -> Engine:
    """Autocommit engine on the server's `postgres` maintenance database."""
    engine = _create_engine(database_url(url, "postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    check_connection(engine)
    return engine


def database_exists(url: str, name: str) -> bool:
    """True when database `name` exists on the server of url."""
    engine = _admin(url)
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    return found is not None


def create_database(url: str, name: str) -> str:
    """Create database `name` on the server of url (no-op if it exists); return its URL."""
    _check_name(name)
    if not database_exists(url, name):
        with _admin(url).connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return database_url(url, name)


def drop_database(url: str, name: str) -> bool:
    """Drop database `name` (closing its connections); False when it did not exist."""
    _check_name(name)
    target = make_url(database_url(url, name))
    for key in [k for k, e in _ENGINES.items() if e.url == target]:
        _ENGINES.pop(key).dispose()
    if not database_exists(url, name):
        return False
    with _admin(url).connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{app_role_name(name)}"')  # its grants went with the database
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name[:56]}_worker"')  # db.tenancy.worker_role_name
    return True
