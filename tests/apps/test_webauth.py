"""The login layer in-process: AppIdentityProvider and its handlers on a real Tornado server on loopback
(the same classes Voila loads in test_auth.py, measured here by coverage), then a real Voila server under 200
parallel sign-in attempts."""

import asyncio
import json
import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from _browser import LOGINS, TEST_PASSWORD, TEST_USER, post_login, serve_voila
from priceintel import config
from priceintel.apps import auth, signin
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
            provider.get_handlers() + [(r"/voila/render/(.*)", Protected)],
            cookie_secret=os.urandom(32),
            identity_provider=provider,
            authorizer=AllowAllAuthorizer(identity_provider=provider),
            base_url="/",
            login_url="/login",
        )
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


@pytest.fixture(autouse=True)
def fresh_throttle():
    """Every test starts with no failed sign-ins on record."""
    webauth.THROTTLE.clear()
    yield
    webauth.THROTTLE.clear()


APP = "/voila/render/app.ipynb"


def _opens(session_or_cookies, base: str) -> bool:
    """Whether the protected page answers (True) or sends to the login page (False)."""
    kw = {"cookies": session_or_cookies} if isinstance(session_or_cookies, dict) else {}
    get = session_or_cookies.get if isinstance(session_or_cookies, requests.Session) else requests.get
    r = get(base + APP, allow_redirects=False, timeout=10, **kw)
    assert r.status_code in (200, 302), r.status_code
    return r.status_code == 200


def _sign_out(session: requests.Session, base: str) -> requests.Response:
    """POST /logout with the XSRF token of the confirmation page."""
    page = session.get(base + "/logout", timeout=10)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    return session.post(base + "/logout", data={"_xsrf": token}, allow_redirects=False, timeout=10)


def test_login_flow_cookie_files_and_logout(login_server, pg_engine):
    base = login_server
    auth.add_user(pg_engine, "webuser", "web-password", replace=True)
    anon = requests.get(base + APP, allow_redirects=False, timeout=10)
    assert anon.status_code == 302 and anon.headers["Location"].startswith("/login?next=")
    assert requests.get(base + "/voila/files/x.png", timeout=10).status_code == 403
    assert requests.get(base + "/", allow_redirects=False, timeout=10).headers["Location"].startswith("/login")
    assert requests.get(base + "/logout", allow_redirects=False, timeout=10).headers["Location"] == "/login"
    form = requests.get(base + "/login?next=/voila/render/app.ipynb", timeout=10)
    assert form.status_code == 200 and 'name="password"' in form.text and "next=/voila/render/app.ipynb" in form.text
    with requests.Session() as s:
        assert post_login(s, base, "webuser", "not-it").status_code == 401
        assert post_login(s, base, "nobody", "web-password").status_code == 401
        ok = post_login(s, base, "webuser", "web-password")
        assert ok.status_code == 302
        assert s.get(base + APP, timeout=10).text == "data of app.ipynb for webuser"
        assert s.get(base + "/", allow_redirects=False, timeout=10).headers["Location"] == "/" + webauth.LANDING
        assert s.get(base + "/voila/files/x.png", timeout=10).status_code == 404  # allowed, just missing
        assert s.get(base + "/voila/files/x.ipynb", timeout=10).status_code == 403  # not on the allowlist
        again = s.get(base + "/login", allow_redirects=False, timeout=10)  # signed in: the form sends you on
        assert again.status_code == 302
        out = _sign_out(s, base)
        assert out.headers["Location"] == "/login?logged_out=1"
        assert "You are signed out." in s.get(base + "/login?logged_out=1", timeout=10).text
        assert not _opens(s, base)
        # a removed user's cookie stops working at once
        assert post_login(s, base, "webuser", "web-password").status_code == 302
        auth.remove_user(pg_engine, "webuser")
        assert not _opens(s, base)


def test_provider_settings_and_security_warning(caplog):
    provider = webauth.AppIdentityProvider()
    assert provider.auth_enabled and provider.login_available and provider.token == ""
    assert provider.cookie_options["expires_days"] is None  # a session cookie
    assert provider.get_user_token(None) is None  # no token logins
    assert provider.user_from_cookie(json.dumps({"username": "ghost", "uid": 1, "v": 1})) is None  # not a user
    assert provider.user_from_cookie(json.dumps({"username": "ghost\n"})) is None  # no lookup of a bad name
    with pytest.raises(ValueError, match="no session"):
        provider.user_to_cookie(webauth.User("ghost"))

    class App:
        log = logging.getLogger("voila-test")
        ip = "0.0.0.0"

    with caplog.at_level(logging.WARNING, logger="voila-test"):
        provider.validate_security(App())
    assert "without TLS" in caplog.text
    App.ip, caplog.records[:] = "127.0.0.1", []
    provider.validate_security(App())
    assert not caplog.records
    # no Voila parent: no files
    assert [h[0] for h in provider.get_handlers()] == ["/login", "/logout", "/", "/signin-stats", "/health", "/ready",
                                                       r"/voila/query/(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)"]


def test_throttle_counts_before_the_check_grows_delays_and_limits_an_address():
    now = [1000.0]
    t = signin.SignInThrottle(
        free=2, base_delay=1.0, max_delay=4.0, per_address=100, window=60.0, forget_after=100.0, clock=lambda: now[0]
    )
    # reservations count at once: parallel attempts of one pair get `free` tickets, then must wait
    tickets = [t.reserve("alice", "10.0.0.1") for _ in range(3)]
    assert [tk is not None for _, tk in tickets] == [True, True, False] and tickets[2][0] == 1.0
    assert t.reserve("alice", "10.0.0.2")[1] is not None  # the same user from elsewhere is not slowed
    waits = []
    for _ in range(4):  # each further failure doubles the wait, up to max_delay
        now[0] += t.reserve("alice", "10.0.0.1")[0]
        wait, ticket = t.reserve("alice", "10.0.0.1")
        assert ticket is not None and wait == 0
        waits.append(t.reserve("alice", "10.0.0.1")[0])
    assert waits == [2.0, 4.0, 4.0, 4.0]
    now[0] += 4.0
    wait, ticket = t.reserve("alice", "10.0.0.1")
    t.succeeded(ticket)  # a correct password clears the pair
    assert t.reserve("alice", "10.0.0.1")[0] == 0
    # an address spraying usernames hits the per-address window
    t = signin.SignInThrottle(free=2, per_address=6, window=60.0, forget_after=100.0, clock=lambda: now[0])
    for i in range(6):
        assert t.reserve(f"user{i}", "10.0.0.9")[1] is not None
    wait, ticket = t.reserve("user7", "10.0.0.9")
    assert ticket is None and 0 < wait <= 60.0
    assert t.reserve("user7", "10.0.0.8")[1] is not None
    # a pair is forgotten after forget_after without a failure
    t.clear()
    for _ in range(2):
        assert t.reserve("bob", "10.0.0.3")[1] is not None
    assert t.reserve("bob", "10.0.0.3")[1] is None
    now[0] += 100.0  # forgotten: two free attempts again (else the second would wait 2 s)
    assert t.reserve("bob", "10.0.0.3")[1] is not None and t.reserve("bob", "10.0.0.3")[1] is not None
    assert t.delay(10_000) == signin.MAX_DELAY


def test_forwarded_address_and_scheme_only_from_trusted_proxies(monkeypatch):
    nets = signin.parse_networks("127.0.0.1, 10.0.0.0/8, ::1")
    fwd = signin.client_address_and_scheme
    # from an untrusted peer both headers are ignored
    assert fwd("192.0.2.5", "http", "203.0.113.9", "https", nets) == ("192.0.2.5", "http")
    assert fwd("127.0.0.1", "http", "203.0.113.9", "https", ()) == ("127.0.0.1", "http")
    # from a trusted proxy: the rightmost untrusted hop; what the client wrote to its left is not believed
    assert fwd("127.0.0.1", "http", "1.1.1.1, 203.0.113.9", "https", nets) == ("203.0.113.9", "https")
    assert fwd("127.0.0.1", "http", "1.1.1.1, 203.0.113.9, 10.1.2.3", "http", nets) == ("203.0.113.9", "http")
    assert fwd("::1", "http", "[2001:db8::1]:443", None, nets) == ("2001:db8::1", "http")
    assert fwd("127.0.0.1", "http", "garbage, 10.0.0.7", "gopher", nets) == ("10.0.0.7", "http")
    assert fwd("::ffff:127.0.0.1", "http", "198.51.100.4:5000", "HTTPS", nets) == ("198.51.100.4", "https")
    assert fwd("127.0.0.1", "http", None, None, nets) == ("127.0.0.1", "http")
    assert signin.address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert signin.address_key("192.0.2.1") == "192.0.2.1" and signin.address_key("unix") == "unix"
    monkeypatch.setenv("PRICEINTEL_TRUSTED_PROXIES", "10.0.0.0/8, nonsense")
    with pytest.raises(config.ConfigError, match="PRICEINTEL_TRUSTED_PROXIES: 'nonsense' is not an IP"):
        signin.trusted_proxies()
    from priceintel.apps.serve import prepare_apps

    with pytest.raises(config.ConfigError, match="nonsense"):
        prepare_apps()  # refused before Voila starts
    monkeypatch.setenv("PRICEINTEL_TRUSTED_PROXIES", "")
    monkeypatch.setenv("PRICEINTEL_SIGNIN_CONCURRENCY", "0")
    with pytest.raises(config.ConfigError, match="PRICEINTEL_SIGNIN_CONCURRENCY='0'"):
        signin.concurrency()


def _fail(base: str, user: str, forwarded: str | None = None, password: str = "wrong-guess") -> requests.Response:
    with requests.Session() as s:
        if forwarded:
            s.headers["X-Forwarded-For"] = forwarded
        return post_login(s, base, user, password)


def test_growing_delays_and_a_stranger_cannot_lock_a_user_out(login_server, pg_engine, monkeypatch):
    base = login_server
    auth.add_user(pg_engine, "webuser", "web-password", replace=True)
    monkeypatch.setenv("PRICEINTEL_TRUSTED_PROXIES", "127.0.0.1")  # this test plays the proxy
    stranger = "203.0.113.66"
    for _ in range(signin.FREE_FAILURES):
        assert _fail(base, "webuser", stranger).status_code == 401
    locked = _fail(base, "WebUser", stranger, "web-password")  # counted case-insensitively, right password or not
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "1"
    assert "Too many failed sign-ins" in locked.text and "username-" not in locked.headers.get("Set-Cookie", "")
    time.sleep(1.05)  # the first delay has passed: one more try, then twice the wait
    assert _fail(base, "webuser", stranger).status_code == 401
    assert _fail(base, "webuser", stranger).headers["Retry-After"] == "2"
    # the owner, from her own address, is not locked out by the stranger's failures
    with requests.Session() as s:
        s.headers["X-Forwarded-For"] = "198.51.100.20"
        assert post_login(s, base, "webuser", "web-password").status_code == 302
        assert _opens(s, base)
    # without a trusted proxy the header is nobody's word: all those attempts come from 127.0.0.1
    monkeypatch.setenv("PRICEINTEL_TRUSTED_PROXIES", "")
    for _ in range(signin.FREE_FAILURES):
        assert _fail(base, "webuser", "192.0.2.1").status_code == 401
    assert _fail(base, "webuser", "192.0.2.2").status_code == 429


def _set_cookies(response: requests.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie header of each cookie the response sets."""
    return {h.split("=", 1)[0]: h for h in response.raw.headers.getlist("Set-Cookie")}


def _login_raw(base: str, headers: dict) -> tuple[requests.Response, requests.Response]:
    """GET + POST the login form with explicit headers and cookies (a Secure cookie never rides plain http);
    (the POST's response, the GET's)."""
    form = requests.get(base + "/login", headers=headers, timeout=10)
    xsrf = form.cookies.get("_xsrf") or re.search(r"_xsrf=([^;]+)", _set_cookies(form)["_xsrf"]).group(1)
    token = re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)
    return requests.post(
        base + "/login",
        data={"username": "webuser", "password": "web-password", "_xsrf": token},
        headers={**headers, "Cookie": f"_xsrf={xsrf}"},
        allow_redirects=False,
        timeout=10,
    ), form


def test_cookies_are_secure_behind_an_https_proxy(login_server, pg_engine, monkeypatch):
    base = login_server
    auth.add_user(pg_engine, "webuser", "web-password", replace=True)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.30"}
    plain, _ = _login_raw(base, https)  # the proxy is not trusted: plain http, no Secure
    assert plain.status_code == 302
    login_cookie = next(v for k, v in _set_cookies(plain).items() if k.startswith("username-"))
    assert "secure" not in login_cookie.lower() and "httponly" in login_cookie.lower()
    monkeypatch.setenv("PRICEINTEL_TRUSTED_PROXIES", "127.0.0.0/8")
    done, form = _login_raw(base, https)
    assert done.status_code == 302
    login_cookie = next(v for k, v in _set_cookies(done).items() if k.startswith("username-"))
    assert "; secure" in login_cookie.lower() and "samesite=lax" in login_cookie.lower()
    assert "; secure" in _set_cookies(form)["_xsrf"].lower()


def test_sign_out_new_password_and_removal_end_every_session(login_server, pg_engine):
    base = login_server
    auth.add_user(pg_engine, "webuser", "web-password", replace=True)
    with requests.Session() as laptop, requests.Session() as phone:
        assert post_login(laptop, base, "webuser", "web-password").status_code == 302
        assert post_login(phone, base, "webuser", "web-password").status_code == 302
        kept = dict(laptop.cookies)
        # GET /logout only asks: both stay signed in; a POST without the XSRF token is refused
        confirm = laptop.get(base + "/logout", allow_redirects=False, timeout=10)
        assert confirm.status_code == 200 and 'method="post"' in confirm.text and "Signed in as webuser" in confirm.text
        assert laptop.post(base + "/logout", allow_redirects=False, timeout=10).status_code == 403
        assert _opens(laptop, base) and _opens(phone, base)
        # sign-out on the laptop ends the phone's session too, on its next request; the old cookie is dead
        assert _sign_out(laptop, base).status_code == 302
        assert not _opens(phone, base) and not _opens(kept, base)
        # the same password again keeps sessions; a new one ends them
        assert post_login(phone, base, "webuser", "web-password").status_code == 302
        auth.add_user(pg_engine, "webuser", "web-password", replace=True)
        assert _opens(phone, base)
        auth.add_user(pg_engine, "webuser", "new-password", replace=True)
        assert not _opens(phone, base)
        # removal, even when the name is added again: the old cookie names another user id
        assert post_login(phone, base, "webuser", "new-password").status_code == 302
        kept = dict(phone.cookies)
        auth.remove_user(pg_engine, "webuser")
        auth.add_user(pg_engine, "webuser", "new-password")
        assert not _opens(kept, base)
        # signed out, GET /logout just goes to the login page
        assert laptop.get(base + "/logout", allow_redirects=False, timeout=10).headers["Location"] == "/login"
    auth.add_user(pg_engine, "webuser", "web-password", replace=True)


# --------------------------------------------------------------------------- a real Voila server, 200 at once


def _server_pid(base: str) -> int:
    """The pid of the Voila process serving `base` (by its --port argument)."""
    port = base.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"voila" in args and f"--port={port}".encode() in args:
            return int(proc.name)
    raise AssertionError(f"no voila process on port {port}")


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of process `pid`, MiB."""
    line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


@pytest.fixture(scope="module")
def proxied_voila(pg_engine, pg_url):
    """`priceintel apps`' Voila command on the session database, trusting 127.0.0.1 as its proxy."""
    with serve_voila(DATABASE_URL=pg_url, PRICEINTEL_TRUSTED_PROXIES="127.0.0.1") as base:
        yield base, _server_pid(base)


def _burst(base: str, attempts: list[tuple[str, str]]) -> list[requests.Response]:
    """POST every (username, forwarded address) sign-in with a wrong password at once, one thread each."""
    with requests.Session() as s:
        form = s.get(base + "/login", timeout=30)
        token = re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)
        cookie = s.cookies["_xsrf"]
    start = threading.Barrier(len(attempts))

    def one(attempt: tuple[str, str]) -> requests.Response:
        start.wait(30)
        return requests.post(
            base + "/login",
            data={"username": attempt[0], "password": "wrong", "_xsrf": token},
            headers={"X-Forwarded-For": attempt[1], "Cookie": f"_xsrf={cookie}"},
            allow_redirects=False,
            timeout=60,
        )

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(one, attempts))


def _stats(base: str) -> dict:
    cookies = {c["name"]: c["value"] for c in LOGINS[base]}
    r = requests.get(base + "/signin-stats", cookies=cookies, allow_redirects=False, timeout=30)
    assert r.status_code == 200, r.status_code
    return r.json()


@pytest.mark.slow
def test_200_parallel_sign_ins_are_counted_before_checking_and_bounded(proxied_voila):
    base, pid = proxied_voila
    assert requests.get(base + "/signin-stats", allow_redirects=False, timeout=30).status_code == 302
    before = _stats(base)
    cap = before["max_concurrent_checks"]
    assert cap == signin.MAX_CONCURRENT_CHECKS
    # one address spraying 200 usernames: at most MAX_FAILURES_PER_ADDRESS passwords are ever checked
    spray = _burst(base, [(f"spray-{i}", "203.0.113.50") for i in range(200)])
    codes = [r.status_code for r in spray]
    after = _stats(base)
    checks = after["password_checks"]["total"] - before["password_checks"]["total"]
    assert set(codes) <= {401, 429, 503}, set(codes)
    assert codes.count(401) == checks and codes.count(401) + codes.count(503) == signin.MAX_FAILURES_PER_ADDRESS
    assert codes.count(429) == 200 - signin.MAX_FAILURES_PER_ADDRESS  # every attempt after the limit
    assert all(int(r.headers["Retry-After"]) >= 1 for r in spray if r.status_code in (429, 503))
    assert after["password_checks"]["peak"] <= cap
    # 200 addresses at one user: nobody is throttled, so the check pool alone bounds the work and the memory
    many = _burst(base, [(TEST_USER, f"198.51.100.{i}" if i < 100 else f"192.0.2.{i - 100}") for i in range(200)])
    codes2 = [r.status_code for r in many]
    final = _stats(base)
    checks2 = final["password_checks"]["total"] - after["password_checks"]["total"]
    assert set(codes2) <= {401, 503} and codes2.count(401) == checks2 and codes2.count(503) > 0
    assert final["password_checks"]["peak"] <= cap and final["checks_admitted"] == 0
    assert _vm_hwm_mb(pid) < 1024, f"server peak RSS {_vm_hwm_mb(pid):.0f} MiB"
    # and the user, from her own address, still signs in
    with requests.Session() as s:
        s.headers["X-Forwarded-For"] = "198.51.100.250"
        assert post_login(s, base, TEST_USER, TEST_PASSWORD).status_code == 302


def test_health_ready_and_the_probe_need_no_sign_in(login_server, capsys, monkeypatch):
    """/health and /ready answer without a cookie; `priceintel probe` sees the apps up, and down when the
    database is unreachable (503) or nothing listens (exit 1, one line each)."""
    from _receivers import free_port
    from priceintel import cli
    from priceintel.db import engine

    assert requests.get(login_server + "/health", timeout=10).json() == {"status": "ok", "service": "apps"}
    ready = requests.get(login_server + "/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert cli.main(["probe", login_server, login_server + "/health", "--timeout", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in out] == [["up", login_server + "/ready"], ["up", login_server + "/health"]]
    dead = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["probe", login_server, dead, "--json"]) == 1
    outcomes = json.loads(capsys.readouterr().out)
    assert [o["up"] for o in outcomes] == [True, False] and outcomes[1]["reason"] == "connection refused"
    # a database that does not answer: /ready is 503 "not ready", /health still 200
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://nobody:pw@127.0.0.1:{free_port()}/none")
    engine.dispose_engines()
    try:
        assert cli.main(["probe", login_server, "--timeout", "20"]) == 1
        assert "HTTP 503: not ready" in capsys.readouterr().out
        assert cli.main(["probe", login_server, "--live"]) == 0
    finally:
        monkeypatch.undo()
        engine.dispose_engines()
    assert cli.main(["probe", "ftp://example.test"]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err
