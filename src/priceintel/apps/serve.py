"""Serving the Voila apps (`priceintel apps`, `make apps`): the database they read, the sign-in they require and
the voila command line (loopback, apps folder, `login.AppIdentityProvider`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from priceintel import PriceIntelError, config

#: Voila's config file: everything is set by `configure` (the viewer handoff to each app kernel, the kernel pool,
#: culling); a Python file because the handoff is code, which a command line cannot give
VOILA_CONFIG = """# written by priceintel.apps.serve (priceintel apps): every app kernel knows its signed-in user
from priceintel.apps.serve import configure

configure(c)  # noqa: F821
"""
#: the apps' Voila template: `jupyter/voila/templates/priceintel/` beside this file (a Jupyter data directory)
TEMPLATE = "priceintel"
TEMPLATE_ROOT = Path(__file__).resolve().parent / "jupyter"
#: warm kernels kept per app: a number for every app, or `app=N` pairs (`index=2,price_monitor=3`), or both
#: (`1,ops=0`): the default for the apps not named first
POOL_ENV = "PRICEINTEL_APPS_POOL"
#: the default: a warm kernel for the landing page and the four stakeholder apps, none for the admin and analyst
#: pages (match review, onboarding, usage, ops), which start a kernel when opened
DEFAULT_POOL = "0,index=1,price_monitor=1,alerts=1,forecasts=1,elasticity=1"
#: seconds after a warm kernel is taken before its replacement starts. A burst of viewers is served before the
#: replacements compete for the CPU (benchmarks/bench_viewers.py, 20 viewers at once on 2 cores, 5,000 products:
#: first rows in the HTML p95 2.2 s after 5 s, 10.2 s after Voila's default of 1 s). Voila counts the pending
#: replacement as available, so a viewer who comes within the delay waits for it: the rest of the delay and a
#: kernel start (about as long as a kernel started for the page). Viewers who come one at a time, seconds apart,
#: are served faster with a short delay.
REFILL_ENV = "PRICEINTEL_APPS_POOL_REFILL_SECONDS"
DEFAULT_REFILL_SECONDS = 5.0
#: minutes a viewer's kernel may sit idle with no page connected before it is shut down
IDLE_ENV = "PRICEINTEL_APPS_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 30
#: what a browser may send to its app kernel: the widgets' messages, never code to run (Voila runs the notebook
#: itself, server-side), so a signed-in user cannot lift the app's checks from the browser
ALLOWED_MESSAGES = ["comm_msg", "comm_info_request", "comm_open", "comm_close", "kernel_info_request", "input_reply"]


def app_names(notebook_dir: Path | None = None) -> list[str]:
    """The apps served: the notebooks of the apps folder, by name."""
    folder = notebook_dir or config.PROJ_ROOT / "notebooks" / "apps"
    return sorted(p.stem for p in folder.glob("*.ipynb"))


def pool_sizes(spec: str | None = None, apps: list[str] | None = None) -> dict[str, int]:
    """Warm kernels per app from a `POOL_ENV` spec (None: the environment's, else `DEFAULT_POOL`); ConfigError
    naming the variable and the part it cannot read (an unknown app, a negative or non-integer size, two sizes
    for every app)."""
    apps = app_names() if apps is None else apps
    text = (os.environ.get(POOL_ENV) or "").strip() or DEFAULT_POOL if spec is None else spec
    default, sizes, defaults = 0, {}, 0
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.rpartition("=")
        name = name.strip().removesuffix(".ipynb")
        try:
            size = int(value)
            if size < 0 or size > 64:
                raise ValueError
        except ValueError:
            raise config.ConfigError(f"{POOL_ENV}: {part!r}: a size is a whole number from 0 to 64") from None
        if not sep:
            default, defaults = size, defaults + 1
            if defaults > 1:
                raise config.ConfigError(f"{POOL_ENV}: {text!r}: one size for every app at most (then app=N pairs)")
        elif name in apps:
            sizes[name] = size
        else:
            raise config.ConfigError(f"{POOL_ENV}: {part!r}: no app named {name!r} (apps: {', '.join(apps)})")
    return {app: sizes.get(app, default) for app in apps}


def idle_minutes() -> float:
    """`IDLE_ENV` (minutes, at least 1), else `DEFAULT_IDLE_MINUTES`; ConfigError naming the variable otherwise."""
    text = os.environ.get(IDLE_ENV, "").strip()
    if not text:
        return float(DEFAULT_IDLE_MINUTES)
    try:
        value = float(text)
        if not value >= 1:
            raise ValueError
    except ValueError:
        raise config.ConfigError(f"{IDLE_ENV}={text!r}: give the idle minutes as a number, at least 1") from None
    return value


def refill_seconds() -> float:
    """`REFILL_ENV` (seconds, 0 to 600), else `DEFAULT_REFILL_SECONDS`; ConfigError naming the variable otherwise."""
    text = os.environ.get(REFILL_ENV, "").strip()
    if not text:
        return DEFAULT_REFILL_SECONDS
    try:
        value = float(text)
        if not 0 <= value <= 600:
            raise ValueError
    except ValueError:
        raise config.ConfigError(f"{REFILL_ENV}={text!r}: give the seconds as a number from 0 to 600") from None
    return value


def configure(c: Any) -> None:
    """Voila's configuration for the apps (called by the voila.py `priceintel apps` writes).

    - the apps' template (`TEMPLATE`, found through `JUPYTER_PATH`): Voila's lab template plus a first paint of
      each app's data in the page's HTML (`widgets.show_preview`);
    - every app kernel learns its signed-in user: `login.install_viewer_handoff` and the ticket header passed on
      in `http_header_envs`; the kernels inherit `session.APP_KERNEL_ENV`, so one without a user may change nothing;
    - the kernel pool (`pool_sizes`): warm kernels per app that have imported the app and connected to the
      database before anyone asks (`session.wait_for_viewer`), refilled `refill_seconds` after one is taken;
    - a viewer's kernel with no page connected is shut down after `idle_minutes`;
    - a browser may send its kernel only the widgets' messages (`ALLOWED_MESSAGES`)."""
    from priceintel.apps import login, session

    os.environ[session.APP_KERNEL_ENV] = "1"
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(TEMPLATE_ROOT), os.environ.get("JUPYTER_PATH")]))
    c.VoilaConfiguration.template = TEMPLATE
    c.VoilaConfiguration.allow_template_override = "NO"  # `?template=` would skip the first paint and the pool
    login.install_viewer_handoff()
    c.VoilaConfiguration.http_header_envs = [session.VIEWER_HEADER]
    c.MappingKernelManager.allowed_message_types = list(ALLOWED_MESSAGES)
    sizes = pool_sizes()
    if any(sizes.values()):
        c.VoilaConfiguration.preheat_kernel = True
        c.VoilaConfiguration.default_pool_size = 0
        c.VoilaKernelManager.fill_delay = refill_seconds()
        c.VoilaKernelManager.kernel_pools_config = {
            "default": {"pool_size": 0},
            **{f"{app}.ipynb": {"pool_size": n} for app, n in sizes.items()},
        }
    c.MappingKernelManager.cull_idle_timeout = int(idle_minutes() * 60)
    c.MappingKernelManager.cull_interval = 60
    c.MappingKernelManager.cull_connected = False


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
    """Before serving: the sign-in and pool settings readable (ConfigError naming PRICEINTEL_TRUSTED_PROXIES,
    PRICEINTEL_SIGNIN_CONCURRENCY, `POOL_ENV`, `IDLE_ENV` or `REFILL_ENV` otherwise), DATABASE_URL for the app
    kernels (the workbench database unless set), the schema migrated, and at least one app user (PriceIntelError
    saying how to add one otherwise)."""
    from priceintel.apps import signin
    from priceintel.db import engine

    signin.trusted_proxies()
    signin.concurrency()
    pool_sizes()
    idle_minutes()
    refill_seconds()
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
