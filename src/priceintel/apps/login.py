"""Login for the Voila apps: a jupyter_server IdentityProvider backed by the `app_user` table.

`priceintel apps` starts Voila with ``--Voila.identity_provider_class=priceintel.apps.login.AppIdentityProvider``.
Every Voila page, API call and kernel websocket then needs the signed login cookie this provider sets
after a correct username + password (argon2id hashes, see priceintel.apps.auth). Without it, pages
redirect to /login and the API, websockets and notebook files answer 403. `/` goes to the landing page.

The cookie carries the user's id and session version: sign-out (a POST with the XSRF token), a new password
and removal of the user end every session of that user on the next request. Sign-in attempts go through
priceintel.apps.signin: counted before the password is checked, slowed per (user, address), limited per
address, at most PRICEINTEL_SIGNIN_CONCURRENCY argon2 checks at once. Behind a reverse proxy listed in
PRICEINTEL_TRUSTED_PROXIES the client address and scheme come from X-Forwarded-For / X-Forwarded-Proto (and
the cookies get `Secure` when that scheme is https).
"""

from __future__ import annotations

import dataclasses
import hmac
import html
import json
import logging
import resource
import threading
from collections import Counter
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from tornado.httputil import HTTPServerRequest
from traitlets import Bool, default
from voila.request_info_handler import RequestInfoSocketHandler
from voila.static_file_handler import AllowListFileHandler

from priceintel.apps import auth, signin
from priceintel.apps import session as app_session

LOG = logging.getLogger("Voila")  # the server application's own log (traitlets names it after its class)
#: where `/` leads after login
LANDING = "voila/render/index.ipynb"
#: every sign-in attempt of this process goes through these (see priceintel.apps.signin)
THROTTLE = signin.SignInThrottle()
GATE = signin.CheckGate()
#: what happened to the sign-in attempts of this process (served at /signin-stats)
OUTCOMES: Counter[str] = Counter()
_OUTCOMES_LOCK = threading.Lock()

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Price Intelligence</title>
<style>
* {{ box-sizing: border-box; }}
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f6f8;
       color: #1f2933; display: flex; min-height: 100vh; align-items: center; justify-content: center; }}
form {{ background: #fff; padding: 28px 24px; border-radius: 10px; box-shadow: 0 2px 12px rgba(0,0,0,.08);
       width: min(360px, 92vw); }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} p.sub {{ margin: 0 0 18px; color: #616e7c; font-size: 14px; }}
label {{ display: block; font-size: 13px; margin: 12px 0 4px; color: #3e4c59; }}
input {{ width: 100%; padding: 10px; font-size: 16px; border: 1px solid #cbd2d9; border-radius: 6px; }}
button {{ margin-top: 18px; width: 100%; padding: 11px; font-size: 16px; border: 0; border-radius: 6px;
         background: #1f6feb; color: #fff; cursor: pointer; }}
a.cancel {{ display: block; text-align: center; margin-top: 12px; font-size: 14px; color: #3e4c59; }}
.msg {{ padding: 8px 10px; border-radius: 6px; font-size: 14px; margin-bottom: 8px; }}
.error {{ background: #fde8e8; color: #9b1c1c; }} .info {{ background: #e6f4ea; color: #1e6b34; }}
</style></head>
<body>{body}</body></html>
"""

LOGIN_FORM = """<form class="login-form" method="post" action="{action}">
<h1>Price Intelligence</h1><p class="sub">Sign in to open the apps.</p>
{message}{xsrf}
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login_submit">Sign in</button>
</form>"""

SIGNOUT_FORM = """<form class="signout-form" method="post" action="{action}">
<h1>Sign out?</h1><p class="sub">Signed in as {user}. Signing out ends your sessions on every device.</p>
{xsrf}<button type="submit" id="signout_submit">Sign out</button>
<a class="cancel" href="{back}">Back to the apps</a>
</form>"""


def _engine():
    from priceintel.db.engine import get_engine

    return get_engine()


def _count(outcome: str) -> None:
    with _OUTCOMES_LOCK:
        OUTCOMES[outcome] += 1


def apply_forwarded(request: HTTPServerRequest) -> None:
    """Behind a trusted proxy (PRICEINTEL_TRUSTED_PROXIES), set request.remote_ip and request.protocol to the
    client's address and scheme from X-Forwarded-For / X-Forwarded-Proto; from any other peer leave them.
    Once per request (the TCP peer is kept as request.peer_ip)."""
    if getattr(request, "peer_ip", None) is not None:
        return
    peer = str(request.remote_ip)
    request.peer_ip = peer  # type: ignore[attr-defined]
    request.remote_ip, request.protocol = signin.client_address_and_scheme(
        peer,
        request.protocol,
        request.headers.get("X-Forwarded-For"),
        request.headers.get("X-Forwarded-Proto"),
        signin.trusted_proxies(),
    )


class SecureCookiesMixin:
    """Cookies set by these handlers (login, XSRF) get `Secure` when the client's scheme is https."""

    def set_cookie(self, name, value, *args, **kwargs) -> None:
        """tornado's set_cookie, with secure=True over https (directly or behind a trusted proxy)."""
        request = self.request  # type: ignore[attr-defined]
        apply_forwarded(request)
        if request.protocol == "https":
            kwargs.setdefault("secure", True)
        super().set_cookie(name, value, *args, **kwargs)  # type: ignore[misc]


class AppLoginHandler(SecureCookiesMixin, LoginFormHandler):
    """The username + password form (GET) and its check (POST, via the provider)."""

    def _render(self, message=None) -> None:
        """Write the login page, with an error or info message when given."""
        if message is None and self.get_argument("logged_out", None):
            message = {"info": "You are signed out."}
        note = "".join(f'<div class="msg {html.escape(k)}">{html.escape(v)}</div>' for k, v in (message or {}).items())
        action = (
            self.base_url
            + "login?next="
            + web.escape.url_escape(self.get_argument("next", default=self.base_url), plus=False)
        )
        form = LOGIN_FORM.format(action=html.escape(action), message=note, xsrf=self.xsrf_form_html())
        self.write(PAGE.format(title="Sign in", body=form))

    def _refuse(self, status: int, wait: float, outcome: str, text: str) -> None:
        """Answer `status` with Retry-After and the form saying `text`, without checking a password."""
        _count(outcome)
        seconds = max(1, int(wait + 0.999))
        self.set_status(status)
        self.set_header("Retry-After", str(seconds))
        self._render(message={"error": text.format(seconds=seconds)})

    @allow_unauthenticated
    async def post(self) -> None:
        """Reserve the attempt in the throttle, then check the password on the bounded check pool."""
        apply_forwarded(self.request)
        name = self.get_argument("username", default="").strip()
        address = str(self.request.remote_ip)
        user_key = name.lower() if auth.valid_username(name) else "(not a username)"  # bounded keys
        wait, ticket = THROTTLE.reserve(user_key, signin.address_key(address))
        if ticket is None:
            self.log.warning("sign-in refused: too many failures from %s", address)
            self._refuse(429, wait, "throttled", "Too many failed sign-ins: try again in {seconds} s.")
            return
        try:
            user = await GATE.run(lambda: self.identity_provider.process_login_form(self))
        except signin.Busy:  # the reserved attempt stays counted
            self.log.warning("sign-in refused: %d password checks already under way", GATE.admitted)
            msg = "The server is busy checking other sign-ins: try again in {seconds} s."
            self._refuse(503, signin.BUSY_RETRY_AFTER, "busy", msg)
            return
        if user is None:
            _count("failed")
            self.log.warning("failed sign-in from %s (username of %d characters)", address, len(name))
            self.set_status(401)
            self._render(message={"error": "Invalid credentials"})
            return
        THROTTLE.succeeded(ticket)
        _count("signed_in")
        self.current_user = user
        self.log.info("user %s signed in from %s", user.username, address)
        self.identity_provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))


class AppLogoutHandler(SecureCookiesMixin, JupyterHandler):
    """GET: a page asking to confirm (a link cannot sign anyone out); POST with the XSRF token: sign out of
    every session of the user, forget the cookie and go back to the login page."""

    @allow_unauthenticated
    def get(self) -> None:
        """The confirmation form (signed in), else the login page."""
        if self.current_user is None:
            self.redirect(self.base_url + "login")
            return
        form = SIGNOUT_FORM.format(
            action=html.escape(self.base_url + "logout"),
            user=html.escape(self.current_user.username),
            xsrf=self.xsrf_form_html(),
            back=html.escape(self.base_url),
        )
        self.write(PAGE.format(title="Sign out", body=form))

    @allow_unauthenticated
    def post(self) -> None:
        """Sign out (the XSRF token was checked before this runs)."""
        user = self.current_user
        if user is not None:
            try:
                auth.end_sessions(_engine(), user.username)
            except Exception as exc:  # the database is down: then no cookie signs in anyway
                self.log.error("sign-out of %s could not end its sessions: %s", user.username, exc)
            self.log.info("user %s signed out", user.username)
        self.identity_provider.clear_login_cookie(self)
        self.redirect(self.base_url + "login?logged_out=1")


class FrontDoorHandler(JupyterHandler):
    """`/`: the landing page (after login)."""

    @web.authenticated
    def get(self) -> None:
        """Redirect to the landing notebook."""
        self.redirect(self.base_url + LANDING)


class HealthHandler(web.RequestHandler):
    """`/health` (no sign-in, for load balancers and `priceintel probe`): the apps server answers; `/ready`: and
    its database is reachable (503 otherwise; the reason goes to the server log, not to the caller)."""

    async def get(self) -> None:
        """{"status": "ok"} (200), or {"status": "not ready"} (503) for /ready without a database."""
        status, code = "ok", 200
        if self.request.path.rstrip("/").endswith("/ready"):
            from tornado.ioloop import IOLoop

            try:
                await IOLoop.current().run_in_executor(None, _database_answers)
            except Exception as err:  # noqa: BLE001 - any failure means not ready; logged, not shown
                self.log_exception_reason(err)
                status, code = "not ready", 503
        self.set_status(code)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"status": status, "service": "apps"}))

    def log_exception_reason(self, err: Exception) -> None:
        """One line naming the failure (secrets redacted)."""
        from priceintel import config

        web.app_log.warning("apps not ready: %s", config.redact(config.error_line(err)))


def _database_answers() -> None:
    """SELECT 1 on the apps' database (raises when it cannot)."""
    from priceintel.db import engine

    with engine.get_engine().connect() as conn:
        conn.exec_driver_sql("SELECT 1")


class SignInStatsHandler(JupyterHandler):
    """`/signin-stats` (signed-in users only): this server's sign-in counters and peak memory, as JSON."""

    @web.authenticated
    def get(self) -> None:
        """Outcomes of the attempts, argon2 checks run (total, now, most at once), the check limits, peak RSS."""
        with _OUTCOMES_LOCK:
            outcomes = dict(OUTCOMES)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(
            json.dumps(
                {
                    "attempts": outcomes,
                    "password_checks": auth.PASSWORD_CHECKS.snapshot(),
                    "checks_admitted": GATE.admitted,
                    "max_concurrent_checks": GATE.running,
                    "max_waiting_checks": GATE.waiting,
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                }
            )
        )


class AuthedFileHandler(AllowListFileHandler):
    """Voila's notebook-folder files, for logged-in users only."""

    async def prepare(self) -> None:
        """403 without a valid login cookie."""
        provider = self.settings["identity_provider"]
        if provider.get_user_cookie(self) is None:
            raise web.HTTPError(403)


class ViewerQueryHandler(RequestInfoSocketHandler):
    """Voila's request-information socket of preheated kernels (`/voila/query/<kernel id>`), for those kernels only.

    Voila's own handler takes any client and keeps every payload it could not deliver; here a socket must show
    the kernel's `session.query_proof` (an HMAC of its id that only the installation's kernels can make), a payload
    is handed over once and forgotten, and a closing socket removes its own entry only."""

    def open(self, kernel_id: str) -> None:
        if not hmac.compare_digest(self.get_argument("proof", ""), app_session.query_proof(kernel_id)):
            self.close(1008, "not a kernel of this server")
            return
        RequestInfoSocketHandler._waiters[kernel_id] = self
        LOG.info("warm kernel %s waits for its viewer", kernel_id)
        payload = RequestInfoSocketHandler._cache.pop(kernel_id, None)
        if payload is not None:
            self.write_message(payload)

    def on_close(self) -> None:
        for kernel_id, waiter in list(RequestInfoSocketHandler._waiters.items()):
            if waiter is self:
                del RequestInfoSocketHandler._waiters[kernel_id]


@dataclasses.dataclass
class AppUser(User):
    """A signed-in user with the session (user id, session version) the login cookie is bound to."""

    session: auth.Session | None = None
    tenant: str | None = None


class AppIdentityProvider(IdentityProvider):
    """Users from the app_user table; a signed, session-only cookie bound to the user's session version."""

    need_token = Bool(False)

    @default("token")
    def _no_token(self) -> str:
        return ""

    @default("cookie_options")
    def _cookie_options(self) -> dict:
        return {"expires_days": None, "samesite": "Lax"}  # session cookie, not sent by cross-site posts

    @default("get_secure_cookie_kwargs")
    def _cookie_age(self) -> dict:
        return {"max_age_days": 1}

    @property
    def auth_enabled(self) -> bool:
        """Always on."""
        return True

    @property
    def login_available(self) -> bool:
        """The login form is always served."""
        return True

    def get_user(self, handler):
        """The signed-in user of a request, after taking its client address and scheme from a trusted proxy."""
        apply_forwarded(handler.request)
        return super().get_user(handler)

    def get_user_token(self, handler):
        """No token logins: only the username + password form."""
        return None

    def user_to_cookie(self, user: User) -> str:
        """The username, user id and session version go into the (signed) cookie."""
        session = getattr(user, "session", None)
        if session is None:
            raise ValueError(f"user {user.username!r} has no session to put in a login cookie")
        return json.dumps({"username": user.username, "uid": session.user_id, "v": session.version})

    def user_from_cookie(self, cookie_value: str) -> User | None:
        """The cookie's user while that user still exists with the same id and session version (sign-out, a new
        password and removal end every older cookie at once); None otherwise or when the database is down."""
        data = json.loads(cookie_value)
        name = data["username"]
        try:
            account = auth.account_of(_engine(), name)
        except Exception as exc:  # the database is down: nobody gets in
            self.log.error("login check failed: %s", exc)
            return None
        if account is None or [account.user_id, account.version] != [data.get("uid"), data.get("v")]:
            return None
        return AppUser(name, session=auth.Session(account.user_id, account.version), tenant=account.tenant)

    def process_login_form(self, handler) -> User | None:
        """An AppUser when username and password match a stored user, else None (one argon2 check)."""
        name = handler.get_argument("username", default="").strip()
        password = handler.get_argument("password", default="")
        try:
            session = auth.sign_in(_engine(), name, password)
        except Exception as exc:
            self.log.error("login check failed: %s", exc)
            return None
        return None if session is None else AppUser(name, session=session)

    def validate_security(self, app, ssl_options=None) -> None:
        """Warn when serving beyond loopback without TLS (passwords would travel in clear)."""
        if app.ip not in ("127.0.0.1", "localhost", "::1") and ssl_options is None:
            app.log.warning("serving on %s without TLS: put the apps behind an HTTPS proxy", app.ip or "all addresses")

    def get_handlers(self) -> list:
        """Login, logout, the front door, sign-in stats and authenticated notebook files (matched before
        Voila's own). Checks PRICEINTEL_TRUSTED_PROXIES first (ConfigError when malformed)."""
        proxies = signin.trusted_proxies()
        if proxies:
            self.log.info("trusting X-Forwarded-For/-Proto from %s", ", ".join(map(str, proxies)))
        voila = self.parent
        conf = getattr(voila, "voila_configuration", None)
        handlers: list = [
            (r"/login", AppLoginHandler),
            (r"/logout", AppLogoutHandler),
            (r"/", FrontDoorHandler),
            (r"/signin-stats", SignInStatsHandler),
            (r"/health", HealthHandler),
            (r"/ready", HealthHandler),
            # before Voila's own handler of the same path (the identity provider's handlers come first)
            (r"/voila/query/(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)", ViewerQueryHandler),
        ]
        if conf is not None and voila is not None:
            handlers.append(
                (
                    r"/voila/files/(.*)",
                    AuthedFileHandler,
                    {"allowlist": conf.file_allowlist, "denylist": conf.file_denylist, "path": voila.root_dir},
                )
            )
        return handlers


def viewer_ticket_of(user: Any) -> str:
    """The signed viewer ticket (`session.viewer_ticket`) of a request's signed-in user; 403 without one (no
    user, an invalid name, no session or no tenant: nobody gets a kernel)."""
    name = getattr(user, "username", None)
    bound = getattr(user, "session", None)
    if not auth.valid_username(name) or bound is None:
        raise web.HTTPError(403, "sign in first")
    tenant = getattr(user, "tenant", None) or auth.tenant_of(_engine(), str(name))
    if tenant is None:
        raise web.HTTPError(403, "sign in first")
    return app_session.viewer_ticket(str(name), bound.user_id, bound.version, tenant)


def install_viewer_handoff(handler_class: Any = None) -> None:
    """Make Voila's notebook handler name the signed-in user to the app kernel it serves (once per process).

    Before Voila builds the request information that goes to the kernel (a new kernel's environment, or the
    message a preheated kernel waits for in `session.wait_for_viewer`), the request's `VIEWER_HEADER` is
    set to the user's signed ticket, replacing anything the browser sent under that name; Voila passes it on
    because the apps' voila.py lists the header in `VoilaConfiguration.http_header_envs`."""
    if handler_class is None:
        from voila.handler import VoilaHandler

        handler_class = VoilaHandler
    if getattr(handler_class.get_generator, "_priceintel_viewer", False):
        return
    original = handler_class.get_generator

    async def get_generator(self, path=None):
        self.request.headers[app_session.VIEWER_HEADER] = viewer_ticket_of(self.current_user)
        async for chunk in original(self, path=path):
            yield chunk

    get_generator._priceintel_viewer = True  # type: ignore[attr-defined]
    handler_class.get_generator = get_generator
