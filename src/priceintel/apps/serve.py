"""Serving the Voila apps (`priceintel apps`, `make apps`): the database they read, the sign-in they require and
the voila command line (loopback, apps folder, `login.AppIdentityProvider`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from priceintel import PriceIntelError, config


def voila_command(port: int, notebook_dir: Path | None = None) -> list[str]:
    """The voila command line that serves the apps folder on loopback."""
    apps = notebook_dir or config.PROJ_ROOT / "notebooks" / "apps"
    return [
        sys.executable,
        "-m",
        "voila",
        str(apps),
        f"--port={port}",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        "--show_tracebacks=False",
        "--VoilaConfiguration.file_allowlist=['.*\\.(png|jpg|gif|svg|css|js)']",
        "--Voila.identity_provider_class=priceintel.apps.login.AppIdentityProvider",
    ]


def prepare_apps() -> None:
    """Before serving: DATABASE_URL for the app kernels (the workbench database unless set), the schema
    migrated, and at least one app user (PriceIntelError saying how to add one otherwise)."""
    from priceintel.db import engine

    os.environ.setdefault("DATABASE_URL", engine.get_url())
    from priceintel.apps import auth
    from priceintel.db import migrate

    migrate.upgrade()
    if not auth.count_users(engine.get_engine()):
        raise PriceIntelError(
            "apps: no app users yet: add one with `priceintel users add NAME`, then run `priceintel apps` again"
        )
