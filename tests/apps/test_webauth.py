"""The login layer in-process: AppIdentityProvider and its handlers on a real Tornado server on loopback
(the same classes Voila loads in test_auth.py, measured here by coverage)."""

import asyncio
import logging
import os
import socket
import threading

import pytest
import requests
from _browser import post_login

from priceintel import config
from priceintel.apps import auth
from priceintel.apps import login as webauth


@pytest.fixture(scope="module")
def login_server(pg_engine):
    """A Tornado app with the provider's handlers plus one protected page, in a background thread."""
    import tornado.web
    from jupyter_server.auth.authorizer import AllowAllAuthorizer
    from jupyter_server.base.handlers import JupyterHandler
    from voila.app import Voila
    from voila.configuration import VoilaConfiguration

    class Protected(JupyterHandler):
        def get(self, path):
            self.write(f"data of {path} for {self.current_user.username}")

    voila = Voila()
    voila.root_dir = str(config.PROJ_ROOT / "notebooks" / "apps")
    voila.voila_configuration = VoilaConfiguration(file_allowlist=[r".*\.png"])
    provider = webauth.AppIdentityProvider(parent=voila)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready, state = threading.Event(), {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = tornado.web.Application(
            provider.get_handlers() + [(r"/voila/render/(.*)", Protected)], cookie_secret=os.urandom(32),
            identity_provider=provider, authorizer=AllowAllAuthorizer(identity_provider=provider), base_url="/",
            login_url="/login")
        server = app.listen(port, "127.0.0.1")
        state["loop"], state["server"] = loop, server
        ready.set()
        loop.run_forever()
        server.stop()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    auth.add_user(pg_engine, "webuser", "web-password", replace=True)
    yield f"http://127.0.0.1:{port}"
    state["loop"].call_soon_threadsafe(state["loop"].stop)
    thread.join(10)


def test_login_flow_cookie_files_and_logout(login_server, pg_engine):
    base = login_server
    anon = requests.get(base + "/voila/render/app.ipynb", allow_redirects=False, timeout=10)
    assert anon.status_code == 302 and anon.headers["Location"].startswith("/login?next=")
    assert requests.get(base + "/voila/files/x.png", timeout=10).status_code == 403
    assert requests.get(base + "/", allow_redirects=False, timeout=10).headers["Location"].startswith("/login")
    form = requests.get(base + "/login?next=/voila/render/app.ipynb", timeout=10)
    assert form.status_code == 200 and 'name="password"' in form.text and "next=/voila/render/app.ipynb" in form.text
    with requests.Session() as s:
        assert post_login(s, base, "webuser", "not-it").status_code == 401
        assert post_login(s, base, "nobody", "web-password").status_code == 401
        ok = post_login(s, base, "webuser", "web-password")
        assert ok.status_code == 302
        assert s.get(base + "/voila/render/app.ipynb", timeout=10).text == "data of app.ipynb for webuser"
        assert s.get(base + "/", allow_redirects=False, timeout=10).headers["Location"] == "/" + webauth.LANDING
        assert s.get(base + "/voila/files/x.png", timeout=10).status_code == 404  # allowed, just missing
        assert s.get(base + "/voila/files/x.ipynb", timeout=10).status_code == 403  # not on the allowlist
        again = s.get(base + "/login", allow_redirects=False, timeout=10)  # signed in: the form sends you on
        assert again.status_code == 302
        out = s.get(base + "/logout", allow_redirects=False, timeout=10)
        assert out.headers["Location"] == "/login?logged_out=1"
        assert "You are signed out." in s.get(base + "/login?logged_out=1", timeout=10).text
        assert s.get(base + "/voila/render/app.ipynb", allow_redirects=False, timeout=10).status_code == 302
        # a removed user's cookie stops working at once
        assert post_login(s, base, "webuser", "web-password").status_code == 302
        auth.remove_user(pg_engine, "webuser")
        assert s.get(base + "/voila/render/app.ipynb", allow_redirects=False, timeout=10).status_code == 302


def test_provider_settings_and_security_warning(caplog):
    provider = webauth.AppIdentityProvider()
    assert provider.auth_enabled and provider.login_available and provider.token == ""
    assert provider.cookie_options["expires_days"] is None  # a session cookie
    assert provider.get_user_token(None) is None  # no token logins
    assert provider.user_from_cookie(provider.user_to_cookie(webauth.User("ghost"))) is None  # not a user

    class App:
        log = logging.getLogger("voila-test")
        ip = "0.0.0.0"

    with caplog.at_level(logging.WARNING, logger="voila-test"):
        provider.validate_security(App())
    assert "without TLS" in caplog.text
    App.ip, caplog.records[:] = "127.0.0.1", []
    provider.validate_security(App())
    assert not caplog.records
    assert [h[0] for h in provider.get_handlers()] == ["/login", "/logout", "/"]  # no Voila parent: no files


def test_login_throttle_counts_failures_in_a_sliding_window():
    t = webauth.LoginThrottle(limit=2, window=0.3)
    assert t.blocked("a") == 0
    t.failed("a")
    assert t.blocked("a") == 0
    t.failed("a")
    assert 0 < t.blocked("a") <= 0.3 and t.blocked("b") == 0
    import time

    time.sleep(0.35)
    assert t.blocked("a") == 0  # the failures aged out of the window
    t.failed("a")
    t.failed("a")
    t.succeeded("a")
    assert t.blocked("a") == 0


def test_repeated_failed_logins_are_refused_even_with_the_right_password(login_server, pg_engine):
    base = login_server
    auth.add_user(pg_engine, "webuser", "web-password", replace=True)  # an earlier test removes it
    webauth.USER_THROTTLE._fails.clear()
    try:
        with requests.Session() as s:
            for _ in range(webauth.MAX_FAILURES):
                assert post_login(s, base, "webuser", "wrong-guess").status_code == 401
            locked = post_login(s, base, "WebUser", "web-password")  # the name is counted case-insensitively
            assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
            assert "Too many failed sign-ins" in locked.text and set(s.cookies.get_dict()) <= {"_xsrf"}  # no login cookie
            assert post_login(s, base, "webuser", "web-password").status_code == 429
        webauth.USER_THROTTLE._fails.clear()
        with requests.Session() as s:
            assert post_login(s, base, "webuser", "web-password").status_code == 302
    finally:
        webauth.USER_THROTTLE._fails.clear()
        webauth.ADDRESS_THROTTLE._fails.clear()
