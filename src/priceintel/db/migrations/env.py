"""Alembic environment: runs migrations on the connection handed over by `priceintel.db.migrate`."""

from alembic import context

from priceintel.db.engine import get_engine

config = context.config


def _run(connection) -> None:
    """Configure the context on a live connection and run the migrations in its transaction."""
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("priceintel migrations run online only (use priceintel.db.migrate.upgrade)")

_connection = config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    with get_engine(config.get_main_option("sqlalchemy.url")).begin() as _conn:
        _run(_conn)
