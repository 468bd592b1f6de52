"""Serving the Voila apps (`priceintel apps`, `make apps`): the database they read, the sign-in they require and
the voila command line (loopback, apps folder, `login.AppIdentityProvider`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from priceintel import PriceIntelError, config

#: Voila's config file: the prelaunch hook that names the signed-in user to each app kernel (`apps.session`);
#: a Callable setting cannot be given on the command line
VOILA_CONFIG = """# written by priceintel.apps.serve (priceintel apps): every app kernel knows its signed-in user
import os

from priceintel.apps.login import prelaunch_hook
from priceintel.apps.session import APP_KERNEL_ENV

os.environ[APP_KERNEL_ENV] = "1"  # inherited by the kernels: one without a signed-in user may change nothing
c.VoilaConfiguration.prelaunch_hook = prelaunch_hook  # noqa: F821
# what a browser may send to its app kernel: the widgets' messages, never code to run (Voila runs the
# notebook itself, server-side), so a signed-in user cannot lift the app's checks from the browser
c.MappingKernelManager.allowed_message_types = [  # noqa: F821
    "comm_msg", "comm_info_request", "comm_open", "comm_close", "kernel_info_request", "input_reply",
]
"""


def voila_config_dir() -> Path:
    """A folder holding the apps' voila.py (rewritten when it differs), under data/."""
    folder = config.data_dir() / "voila-config"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "voila.py"
    if not path.is_file() or path.read_text() != VOILA_CONFIG:
        path.write_text(VOILA_CONFIG)
    return folder


def voila_command(port: int, notebook_dir: Path | None = None, host: str = "127.0.0.1") -> list[str]:
    """The voila command line that serves the apps folder (loopback unless `host` says otherwise, as in a
    container; config: `voila_config_dir`)."""
    apps = notebook_dir or config.PROJ_ROOT / "notebooks" / "apps"
    return [
        sys.executable,
        "-m",
        "voila",
        str(apps),
        f"--port={port}",
        "--no-browser",
        f"--Voila.ip={host}",
        "--show_tracebacks=False",
        "--VoilaConfiguration.file_allowlist=['.*\\.(png|jpg|gif|svg|css|js)']",
        "--Voila.identity_provider_class=priceintel.apps.login.AppIdentityProvider",
        f"--Voila.config_file_paths={json.dumps([str(voila_config_dir())])}",
    ]


def prepare_apps() -> None:
    """Before serving: the sign-in settings readable (ConfigError naming PRICEINTEL_TRUSTED_PROXIES or
    PRICEINTEL_SIGNIN_CONCURRENCY otherwise), DATABASE_URL for the app kernels (the workbench database unless
    set), the schema migrated, and at least one app user (PriceIntelError saying how to add one otherwise)."""
    from priceintel.apps import signin
    from priceintel.db import engine

    signin.trusted_proxies()
    signin.concurrency()
    os.environ.setdefault("DATABASE_URL", engine.get_url())
    from priceintel.apps import auth
    from priceintel.db import migrate

    migrate.upgrade()
    if not auth.count_users(engine.get_engine()):
        raise PriceIntelError(
            "apps: no app users yet: add one with `priceintel users add NAME`, then run `priceintel apps` again"
        )
    os.environ["DATABASE_URL"] = app_database_url(os.environ["DATABASE_URL"])


def app_database_url(owner_url: str) -> str:
    """The URL the apps connect with: the database's app role (reads everything, writes only the apps' tables,
    no DDL; `db.roles`), or the owner's URL with a warning when the server offers no app role."""
    from priceintel.db import roles

    app_url = roles.ensure_app_role(owner_url)
    if app_url is None:
        print(
            f"apps: warning: connecting as the database owner; set {roles.APP_URL_ENV} to a role without "
            "ownership (docs/apps.md, 'Database role')",
            file=sys.stderr,
        )
        return owner_url
    return app_url
