"""Who uses this app kernel: the signed-in user Voila started it for, and what that user may do.

Every app notebook calls `wait_for_viewer()` before it reads anything. The Voila server (`priceintel apps`, its
`voila.py`: `login.install_viewer_handoff`) puts a signed *viewer ticket* into the request information of every app
page it serves to a signed-in user: the user's name, session (user id, session version) and tenant, signed with the
installation's tenant key (`config.tenant_secret`), valid for a few minutes. A kernel started for the request gets it
in its environment; a *preheated* kernel (Voila's kernel pool, started before anyone asked) has imported the app and
opened its database connection already, and waits in `wait_for_viewer` until Voila hands it to a request, then reads
the ticket Voila sends it. Either way the kernel then works for that user: `sign_in_kernel` binds it to the user's
tenant (`db.tenancy.bind`: every query of the app role proves it and row-level security keeps the rest out), the apps
record that name beside every change (`label`: `user:NAME`) and refuse changes to a viewer (`may_change`, the role
read from the database at the moment of the change, so a lowered role applies at once). A browser cannot forge a
ticket: the server overwrites the header it travels in and the kernel checks the signature. A kernel started another
way (a notebook in JupyterLab, a test) has no user: its changes are recorded as `notebook` and allowed (it runs with
the database access it was given). An app kernel whose user signed out, changed password or was removed since it
started may change nothing.

The role is enforced in the kernel's code; a browser may send its app kernel only the widgets' messages, never
code to run (`MappingKernelManager.allowed_message_types` in the apps' voila.py), so it cannot lift the check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import time

import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.apps import auth
from priceintel.db import tenancy

_USER: list[str] = []
#: the user's row id and session version when the kernel was started (a sign-out or a new password ends them)
_SESSION: list[auth.Session] = []
#: set in the Voila server's environment (its voila.py), so inherited by every app kernel: a kernel that has it
#: but no signed-in user may change nothing
APP_KERNEL_ENV = "PRICEINTEL_APP_KERNEL"
#: the request header the Voila server writes the viewer ticket into (Voila's `http_header_envs` passes it on)
VIEWER_HEADER = "X-PriceIntel-Viewer"
#: ... and the environment variable a kernel finds it in (RFC 3875 naming, as Voila does)
VIEWER_ENV = "HTTP_X_PRICEINTEL_VIEWER"
#: how long a ticket is good for: a preheated kernel reads it within a second of the request
TICKET_SECONDS = 300
#: what a preheated kernel imports before its viewer arrives (what every app uses; each app module itself is
#: imported by the notebook's first line)
WARM_MODULES = (
    "pandas",
    "numpy",
    "sqlalchemy",
    "ipywidgets",
    "plotly.graph_objects",
    "plotly.io",
    "IPython.display",
    "priceintel.apps.widgets",
    "priceintel.apps.views",
    "priceintel.apps.charts",
    "priceintel.apps.filters",
    "priceintel.apps.export",
    "priceintel.db.engine",
    "priceintel.db.queries",
)


def sign_in_kernel(
    name: str, user_id: int | None = None, version: int | None = None, tenant: str | None = None
) -> None:
    """This kernel serves user `name` of `tenant` under session (`user_id`, `version`) (called once, by
    `wait_for_viewer` with the ticket's user)."""
    auth.check_username(name)
    _USER[:] = [name]
    _SESSION[:] = [auth.Session(int(user_id), int(version))] if user_id is not None and version is not None else []
    tenancy.bind(tenant)


def user() -> str | None:
    """The kernel's user, None outside a Voila app."""
    return _USER[0] if _USER else None


def label() -> str:
    """Who makes a change from this kernel, as stored beside it."""
    name = user()
    return f"user:{name}" if name else "notebook"


def may_change(engine: sa.Engine) -> str | None:
    """None when this kernel's user may change data (admin, analyst; or no app user), else the reason."""
    name = user()
    if name is None:
        return "this app has no signed-in user: reload it after signing in" if os.environ.get(APP_KERNEL_ENV) else None
    account = auth.account_of(engine, name)
    if account is None:
        return f"user {name} no longer exists: sign in again"
    if _SESSION and (account.user_id, account.version) != tuple(_SESSION[0]):
        return f"the session of {name} has ended (signed out or a new password): sign in again and reload the app"
    if account.role == "viewer":
        return f"{name} is a viewer: viewers may look but not change anything (ask an admin for the analyst role)"
    return None


def require_change(engine: sa.Engine) -> None:
    """PriceIntelError saying why, when this kernel's user may not change data (`may_change`)."""
    refused = may_change(engine)
    if refused:
        raise PriceIntelError(refused)


# --- the viewer ticket: from the Voila server to the app kernel ----------------------------------------------


def _ticket_key() -> bytes:
    from priceintel import config

    return hmac.new(config.tenant_secret().encode(), b"priceintel app viewer ticket", hashlib.sha256).digest()


def viewer_ticket(name: str, user_id: int, version: int, tenant: str, now: float | None = None) -> str:
    """A signed ticket naming user `name` (session `user_id`, `version`) of `tenant`, valid `TICKET_SECONDS`."""
    auth.check_username(name)
    tenancy.check_name(tenant)
    claims = {
        "u": name,
        "uid": int(user_id),
        "v": int(version),
        "t": tenant,
        "exp": int((time.time() if now is None else now) + TICKET_SECONDS),
    }
    body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")
    sig = hmac.new(_ticket_key(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{sig}"


def read_viewer_ticket(ticket: str, now: float | None = None) -> tuple[str, int, int, str]:
    """(name, user_id, version, tenant) of a ticket from `viewer_ticket`; PriceIntelError when it is malformed,
    not signed with this installation's key, or expired."""
    body, _, sig = (ticket or "").strip().partition(".")
    want = hmac.new(_ticket_key(), body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(sig, want):
        raise PriceIntelError("app viewer ticket: bad signature (not issued by this installation's app server)")
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        name, uid, version, tenant, exp = (claims[k] for k in ("u", "uid", "v", "t", "exp"))
    except (ValueError, KeyError, TypeError) as exc:
        raise PriceIntelError(f"app viewer ticket: malformed ({exc})") from None
    if (time.time() if now is None else now) > exp:
        raise PriceIntelError("app viewer ticket: expired: reload the page")
    return str(name), int(uid), int(version), str(tenant)


def warm() -> None:
    """What a preheated kernel does before its viewer arrives: import what the apps use and open the database
    connection (a pooled connection, no transaction: no tenant is needed to connect)."""
    for module in WARM_MODULES:
        importlib.import_module(module)
    from priceintel.db.engine import get_engine

    try:
        get_engine().raw_connection().close()  # back into the engine's pool, ready for the viewer's first query
    except Exception:  # noqa: BLE001 - the app itself reports a database that does not answer, to its viewer
        pass


def query_proof(kernel_id: str) -> str:
    """What a preheated kernel shows to read its request information from the apps' server: an HMAC of its kernel
    id under the installation's key (`login.ViewerQueryHandler` refuses a socket without it)."""
    return hmac.new(_ticket_key(), f"voila query {kernel_id}".encode(), hashlib.sha256).hexdigest()


def _server_url() -> str:
    """The apps' server as a preheated kernel reaches it: `VOILA_APP_IP` (loopback when unset or any-address),
    `VOILA_APP_PORT` and the server's base URL, as Voila gives them to its kernels."""
    host = os.environ.get("VOILA_APP_IP") or "127.0.0.1"
    if host in ("0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    base = os.environ.get("VOILA_WS_BASE_URL") or os.environ.get("VOILA_SERVER_URL") or "/"
    return f"ws://{host}:{os.environ.get('VOILA_APP_PORT', '8866')}{base}"


def _request_info(wait_seconds: float = 5.0) -> dict[str, str]:
    """The request information Voila sends this preheated kernel when a viewer's request takes it: read from the
    apps' server over `voila/query/<kernel id>` with this kernel's `query_proof`; reconnects (at most
    `wait_seconds` apart) while the server cannot be reached; PriceIntelError when the server refuses the proof."""
    import asyncio
    import threading

    from tornado.httpclient import HTTPClientError
    from tornado.websocket import websocket_connect

    kernel_id = os.environ.get("VOILA_KERNEL_ID", "")
    url = f"{_server_url()}voila/query/{kernel_id}?proof={query_proof(kernel_id)}"

    async def receive() -> dict[str, str]:
        delay = 0.1
        while True:
            try:
                conn = await websocket_connect(url, connect_timeout=10)
            except (TimeoutError, OSError, HTTPClientError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, wait_seconds)
                continue
            message = await conn.read_message()
            if message is None and conn.close_code == 1008:
                raise PriceIntelError(f"the apps' server refused this kernel's request socket: {conn.close_reason}")
            conn.close()
            if message is not None:
                return {str(k): str(v) for k, v in json.loads(message).items()}

    result: dict = {}

    def run() -> None:
        try:
            result["info"] = asyncio.run(receive())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run, name="priceintel-viewer-wait", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["info"]


def wait_for_viewer() -> str | None:
    """Bind this kernel to the user it serves, before the app reads anything; that user's name.

    A preheated Voila kernel warms up (`warm`) and waits here until Voila gives it to a request; then (or at once,
    in a kernel Voila started for the request) the request's viewer ticket signs the user in (`sign_in_kernel`).
    Outside the apps (JupyterLab, a test: no ticket, not an app kernel) nothing happens and None is returned. An
    app kernel without a valid ticket raises PriceIntelError saying to sign in again."""
    if _USER:
        return _USER[0]
    if os.environ.get("VOILA_PREHEAT") == "True":
        warm()
        os.environ.update(_request_info())
    ticket = os.environ.pop(VIEWER_ENV, None)
    if ticket is None:
        if os.environ.get(APP_KERNEL_ENV):
            raise PriceIntelError("this app page has no signed-in user: sign in again and reload it")
        return None
    name, user_id, version, tenant = read_viewer_ticket(ticket)
    sign_in_kernel(name, user_id, version, tenant=tenant)
    return name
