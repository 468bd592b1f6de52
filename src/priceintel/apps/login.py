"""Login for the Voila apps: a jupyter_server IdentityProvider backed by the `app_user` table.

`priceintel apps` starts Voila with ``--Voila.identity_provider_class=priceintel.apps.login.AppIdentityProvider``.
Every Voila page, API call and kernel websocket then needs the signed login cookie this provider sets
after a correct username + password (argon2id hashes, see priceintel.apps.auth). Without it, pages
redirect to /login and the API, websockets and notebook files answer 403. `/` goes to the landing page.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
import time

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import Bool, default
from voila.static_file_handler import AllowListFileHandler

from priceintel.apps import auth

#: where `/` leads after login
LANDING = "voila/render/index.ipynb"
#: failed sign-ins allowed per username, and per client address (a proxy may front many users),
#: within THROTTLE_WINDOW seconds
MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 20
THROTTLE_WINDOW = 300.0


class LoginThrottle:
    """Counts failed sign-ins per key (client address, username) in a sliding window; refuses over the limit."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = THROTTLE_WINDOW):
        self.limit, self.window = limit, window
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._fails.get(key, []) if now - t < self.window]
        if kept:
            self._fails[key] = kept
        else:
            self._fails.pop(key, None)
        return kept

    def blocked(self, *keys: str) -> float:
        """Seconds until any of `keys` may try again (0 when none is over the limit)."""
        now = time.monotonic()
        with self._lock:
            waits = [self.window - (now - fails[0]) for k in keys if len(fails := self._recent(k, now)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Record one failed sign-in for each key."""
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._recent(k, now)
                self._fails.setdefault(k, []).append(now)

    def succeeded(self, *keys: str) -> None:
        """A correct sign-in clears the keys' failures."""
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)


USER_THROTTLE = LoginThrottle(MAX_FAILURES)
ADDRESS_THROTTLE = LoginThrottle(MAX_FAILURES_PER_ADDRESS)

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Price Intelligence</title>
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
.msg {{ padding: 8px 10px; border-radius: 6px; font-size: 14px; margin-bottom: 8px; }}
.error {{ background: #fde8e8; color: #9b1c1c; }} .info {{ background: #e6f4ea; color: #1e6b34; }}
</style></head>
<body><form class="login-form" method="post" action="{action}">
<h1>Price Intelligence</h1><p class="sub">Sign in to open the apps.</p>
{message}{xsrf}
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login_submit">Sign in</button>
</form></body></html>
"""


class AppLoginHandler(LoginFormHandler):
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
        self.write(LOGIN_PAGE.format(action=html.escape(action), message=note, xsrf=self.xsrf_form_html()))

    @allow_unauthenticated
    async def post(self) -> None:
        """Check a sign-in off the event loop (argon2 takes ~0.1 s), throttling repeated failures."""
        name = self.get_argument("username", default="").strip()
        user_key, ip_key = name.lower(), str(self.request.remote_ip)
        wait = max(USER_THROTTLE.blocked(user_key), ADDRESS_THROTTLE.blocked(ip_key))
        if wait > 0:
            self.set_status(429)
            self.set_header("Retry-After", str(int(wait) + 1))
            self._render(message={"error": f"Too many failed sign-ins: try again in {int(wait) + 1} s."})
            return
        loop = asyncio.get_running_loop()
        user = await loop.run_in_executor(None, self.identity_provider.process_login_form, self)
        if user is None:
            USER_THROTTLE.failed(user_key)
            ADDRESS_THROTTLE.failed(ip_key)
            self.set_status(401)
            self._render(message={"error": "Invalid credentials"})
            return
        USER_THROTTLE.succeeded(user_key)
        self.current_user = user
        self.log.info("user %s signed in", user.username)
        self.identity_provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))


class AppLogoutHandler(JupyterHandler):
    """Forget the login cookie and go back to the login page."""

    @allow_unauthenticated
    def get(self) -> None:
        """Sign out."""
        self.identity_provider.clear_login_cookie(self)
        self.redirect(self.base_url + "login?logged_out=1")


class FrontDoorHandler(JupyterHandler):
    """`/`: the landing page (after login)."""

    @web.authenticated
    def get(self) -> None:
        """Redirect to the landing notebook."""
        self.redirect(self.base_url + LANDING)


class AuthedFileHandler(AllowListFileHandler):
    """Voila's notebook-folder files, for logged-in users only."""

    async def prepare(self) -> None:
        """403 without a valid login cookie."""
        provider = self.settings["identity_provider"]
        if provider.get_user_cookie(self) is None:
            raise web.HTTPError(403)


class AppIdentityProvider(IdentityProvider):
    """Users from the app_user table; a signed, session-only cookie after login; no tokens."""

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

    def _engine(self):
        from priceintel.db.engine import get_engine

        return get_engine()

    def get_user_token(self, handler):
        """No token logins: only the username + password form."""
        return None

    def user_to_cookie(self, user: User) -> str:
        """Only the username goes into the (signed) cookie."""
        return json.dumps({"username": user.username})

    def user_from_cookie(self, cookie_value: str) -> User | None:
        """The cookie's user, while that user still exists (removed users lose access)."""
        name = json.loads(cookie_value)["username"]
        try:
            ok = auth.user_exists(self._engine(), name)
        except Exception as exc:  # the database is down: nobody gets in
            self.log.error("login check failed: %s", exc)
            return None
        return User(name) if ok else None

    def process_login_form(self, handler) -> User | None:
        """A User when username and password match a stored user, else None."""
        name = handler.get_argument("username", default="").strip()
        password = handler.get_argument("password", default="")
        try:
            ok = auth.verify(self._engine(), name, password)
        except Exception as exc:
            self.log.error("login check failed: %s", exc)
            return None
        if not ok:  # the typed name may be a mistyped password: log only its length
            self.log.warning("failed sign-in (username of %d characters)", len(name))
        return User(name) if ok else None

    def validate_security(self, app, ssl_options=None) -> None:
        """Warn when serving beyond loopback without TLS (passwords would travel in clear)."""
        if app.ip not in ("127.0.0.1", "localhost", "::1") and ssl_options is None:
            app.log.warning("serving on %s without TLS: put the apps behind an HTTPS proxy", app.ip or "all addresses")

    def get_handlers(self) -> list:
        """Login, logout, the front door and authenticated notebook files (matched before Voila's own)."""
        voila = self.parent
        conf = getattr(voila, "voila_configuration", None)
        handlers: list = [(r"/login", AppLoginHandler), (r"/logout", AppLogoutHandler), (r"/", FrontDoorHandler)]
        if conf is not None and voila is not None:
            handlers.append(
                (
                    r"/voila/files/(.*)",
                    AuthedFileHandler,
                    {"allowlist": conf.file_allowlist, "denylist": conf.file_denylist, "path": voila.root_dir},
                )
            )
        return handlers
