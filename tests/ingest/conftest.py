"""Fixtures of the import tests: the clean database with the import tables emptied too, and a file writer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from priceintel.db import tenancy


@pytest.fixture()
def db(clean_db: sa.Engine) -> Iterator[sa.Engine]:
    """clean_db plus empty import_run / watch / watch_fetch (identities restarted)."""
    with tenancy.as_owner(), clean_db.begin() as conn:
        conn.exec_driver_sql("TRUNCATE import_run, watch, watch_fetch RESTART IDENTITY CASCADE")
    yield clean_db


@pytest.fixture()
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(name, text_or_bytes) -> the path of a new file in tmp_path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture()
def catalog(db: sa.Engine, write: Callable[..., Path], tmp_path: Path) -> sa.Engine:
    """db with products A1 and A2 in dim_product."""
    from priceintel.ingest.catalog import import_catalog

    import_catalog(db, write("catalog.csv", "id,title\nA1,Blender\nA2,Toaster\n"), archive_root=tmp_path)
    return db
