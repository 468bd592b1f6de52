"""`priceintel api`: the REST API on loopback (uvicorn), connected as the database's app role.

Before serving, the schema is migrated and the API settings are read (a bad PRICEINTEL_API_* variable is a
ConfigError naming it). The API connects like the apps: as `<db>_app` (reads everything, writes only the apps'
tables, no DDL; `db.roles`), or as the owner with a warning when the server offers no app role.
"""

from __future__ import annotations

from fastapi import FastAPI

from priceintel import config


def prepare_api() -> FastAPI:
    """The application, on the migrated database at DATABASE_URL (the embedded server unless set)."""
    from priceintel.api.app import create_app
    from priceintel.apps.serve import app_database_url
    from priceintel.db import engine, migrate

    settings = config.api_settings()
    owner = engine.get_url()
    migrate.upgrade(owner)
    return create_app(app_database_url(owner), settings)


def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until stopped (blocks)."""
    import uvicorn

    app = prepare_api()
    # no WebSocket routes: ws="none" keeps uvicorn off the websockets package (Voila pins an older one)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True, server_header=False, ws="none")
