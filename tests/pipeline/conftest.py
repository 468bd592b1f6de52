"""Fixtures of the pipeline tests: a fresh, migrated database of a test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa


@pytest.fixture()
def fresh_db(pg_server_url, monkeypatch) -> Iterator[sa.Engine]:
    """A new database on the test server, migrated and set as DATABASE_URL; dropped afterwards."""
    from priceintel.db import migrate
    from priceintel.db.engine import create_database, dispose_engines, drop_database

    name = f"priceintel_t_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    monkeypatch.setenv("DATABASE_URL", url)
    migrate.upgrade()
    yield sa.create_engine(url)
    dispose_engines()
    drop_database(pg_server_url, name)
