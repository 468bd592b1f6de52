"""Alembic migrations, configured in code (no alembic.ini): upgrade, downgrade, current, head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.exc import SQLAlchemyError

from priceintel.db import tenancy
from priceintel.db.engine import get_engine, redact_url
from priceintel.db.errors import DatabaseError

#: Alembic script location (env.py, script.py.mako, versions/)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key serialising concurrent migrations of one database
_LOCK_KEY = 7_365_120_001


def alembic_config(url: str | None = None) -> Config:
    """Alembic Config pointing at our migrations (and url, when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head() -> str:
    """Revision id(s) of the newest migration(s), comma-joined when feature branches are unmerged."""
    return ",".join(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


def current(url: str | None = None) -> str | None:
    """Revision(s) the database is at (None when never migrated or fully downgraded)."""
    engine = get_engine(url)
    with tenancy.as_owner(), engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


def _run(action: str, url: str | None, revision: str) -> str | None:
    """Run alembic `action` to revision inside one locked transaction; return the new revision."""
    engine = get_engine(url)
    full_url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(full_url)
    try:
        with tenancy.as_owner(), engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    except (CommandError, SQLAlchemyError) as err:
        reason = " ".join(str(getattr(err, "orig", None) or err).split())
        raise DatabaseError(
            f"migration {action} to {revision!r} failed on {redact_url(engine.url)}: {reason}"
        ) from None
    finally:
        tenancy.forget(engine)
    from priceintel.db.roles import ensure_worker_role

    ensure_worker_role(engine)
    return current(full_url)


def upgrade(url: str | None = None, revision: str = "heads") -> str | None:
    """Migrate the database at url (default `get_url()`) up to revision; return the new revision."""
    return _run("upgrade", url, revision)


def downgrade(url: str | None = None, revision: str = "base") -> str | None:
    """Migrate the database at url down to revision ("base" drops everything); return the new revision."""
    return _run("downgrade", url, revision)
