"""`priceintel api`: the REST API on loopback (uvicorn), connected as the database's app role.

Before serving, the schema is migrated and the API settings are read (a bad PRICEINTEL_API_* variable is a
ConfigError naming it). The API connects like the apps: as `<db>_app` (reads everything, writes only the apps'
tables, no DDL; `db.roles`), or as the owner with a warning when the server offers no app role. With
`--workers N`, N processes share the port (one a core); each keeps its own rate-limit buckets and sign-in
throttle, so the limits then hold per worker.

Each process sets up its logs (`obs.start`: JSON lines with the request id, one access line per request written
by the application, uvicorn's own logs through the same handlers) and Sentry when SENTRY_DSN is set; the workers
count requests into the metrics directory they share with the pipeline (`obs.metrics`, `GET /metrics`).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from priceintel import config, obs

#: where the parent hands the app role's URL to its worker processes
_APP_URL_ENV = "PRICEINTEL_API_APP_URL"


def _app_url() -> str:
    """Settings checked, schema migrated, the app role's URL (DATABASE_URL, the embedded server unless set)."""
    from priceintel.apps.serve import app_database_url
    from priceintel.db import engine, migrate

    config.api_settings()  # a bad variable stops here; the token key file exists before any worker starts
    owner = engine.get_url()
    migrate.upgrade(owner)
    return app_database_url(owner)


def prepare_api() -> FastAPI:
    """The application, on the migrated database at DATABASE_URL (the embedded server unless set)."""
    from priceintel.api.app import create_app

    return create_app(_app_url(), config.api_settings())


def app_from_env() -> FastAPI:
    """The application of one worker process (uvicorn's factory), on the URL its parent prepared."""
    from priceintel.api.app import create_app

    obs.start("api")
    return create_app(os.environ[_APP_URL_ENV], config.api_settings())


def run(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until stopped (blocks)."""
    import uvicorn

    obs.start("api")
    # no WebSocket routes: ws="none" keeps uvicorn off the websockets package (Voila pins an older one); no
    # logging config of uvicorn's own (log_config=None): its records go to `obs.logs`' handlers, and the access
    # lines come from the application (`api.app.Observe`: request id, route, tenant, duration)
    opts: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "ws": "none",
    }
    if workers <= 1:
        uvicorn.run(prepare_api(), **opts)
        return
    os.environ[_APP_URL_ENV] = _app_url()
    uvicorn.run("priceintel.api.serve:app_from_env", factory=True, workers=workers, **opts)
