"""Login for the Voila apps: a jupyter_server IdentityProvider backed by the `app_user` table.

`priceintel apps` starts Voila with ``--Voila.identity_provider_class=priceintel.webauth.AppIdentityProvider``.
Every Voila page, API call and kernel websocket then needs the signed login cookie this provider sets
after a correct username + password (argon2id hashes, see priceintel.auth). Without it, pages
redirect to /login and the API, websockets and notebook files answer 403. `/` goes to the landing page.
"""

from __future__ import annotations

import html
import json

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import Bool, default
from voila.static_file_handler import AllowListFileHandler

from priceintel import auth

#: where `/` leads after login
LANDING = "voila/render/index.ipynb"

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
        action = self.base_url + "login?next=" + web.escape.url_escape(
            self.get_argument("next", default=self.base_url), plus=False)
        self.write(LOGIN_PAGE.format(action=html.escape(action), message=note, xsrf=self.xsrf_form_html()))


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
        if not ok:
            self.log.warning("failed login for %r", name)
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
        if conf is not None:
            handlers.append((r"/voila/files/(.*)", AuthedFileHandler,
                             {"allowlist": conf.file_allowlist, "denylist": conf.file_denylist,
                              "path": voila.root_dir}))
        return handlers
