"""App users (argon2 hashes), the `users` CLI, and Voila behind the login: anonymous requests get no data."""

import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from _browser import TEST_PASSWORD, TEST_USER, login_cookies, post_login
from priceintel import config
from priceintel.apps import auth
from priceintel.apps import landing as app_landing
from priceintel.cli import main

SHOTS = config.reports_dir() / "screenshots"


def _no_users(engine) -> None:
    """No user in any tenant."""
    from priceintel.db import tenancy

    with tenancy.as_owner(), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM app_user")


def test_user_store_hashes_and_verifies(pg_engine):
    _no_users(pg_engine)
    assert auth.add_user(pg_engine, "alice", "s3cret-pass") is True
    with pg_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM app_user WHERE username='alice'")).scalar_one()
    assert stored.startswith("$argon2id$") and "s3cret-pass" not in stored
    assert auth.verify(pg_engine, "alice", "s3cret-pass")
    assert not auth.verify(pg_engine, "alice", "s3cret-pasS")
    assert not auth.verify(pg_engine, "bob", "s3cret-pass")  # unknown user
    assert not auth.verify(pg_engine, "alice'--", "x")  # never reaches SQL as text
    users = auth.list_users(pg_engine)
    assert list(users["username"]) == ["alice"] and "password_hash" not in users
    assert users["last_login_at"].notna().all()  # the successful login was recorded
    with pytest.raises(auth.AuthError, match="already exists"):
        auth.add_user(pg_engine, "alice", "another-pass")
    assert auth.add_user(pg_engine, "alice", "another-pass", replace=True) is False
    assert auth.verify(pg_engine, "alice", "another-pass") and not auth.verify(pg_engine, "alice", "s3cret-pass")
    with pytest.raises(auth.AuthError, match="username"):
        auth.add_user(pg_engine, "no spaces", "long-enough")
    with pytest.raises(auth.AuthError, match="at least 8"):
        auth.add_user(pg_engine, "carol", "short")
    auth.remove_user(pg_engine, "alice")
    assert auth.count_users(pg_engine) == 0
    with pytest.raises(auth.AuthError, match="no user 'alice'"):
        auth.remove_user(pg_engine, "alice")


def test_usernames_must_match_whole_and_sessions_have_versions(pg_engine):
    _no_users(pg_engine)
    for bad in ["alice\n", "alice\r\n", "\nalice", "al ice", "", "a" * 65, "alice\x00"]:
        assert not auth.valid_username(bad)
        with pytest.raises(auth.AuthError, match="username"):
            auth.check_username(bad)
    auth.add_user(pg_engine, "alice", "s3cret-pass")
    checks = auth.PASSWORD_CHECKS.snapshot()["total"]
    assert auth.sign_in(pg_engine, "alice\n", "s3cret-pass") is None  # refused without a password check
    assert auth.session_of(pg_engine, "alice\n") is None
    assert auth.PASSWORD_CHECKS.snapshot()["total"] == checks
    with pg_engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):  # the table refuses it too
        conn.execute(
            sa.text("INSERT INTO app_user (username, password_hash) VALUES (:u, '$argon2id$x')"), {"u": "bob\n"}
        )
    first = auth.sign_in(pg_engine, "alice", "s3cret-pass")
    assert first == auth.session_of(pg_engine, "alice") and first.version == 1
    assert auth.PASSWORD_CHECKS.snapshot()["total"] == checks + 1
    auth.add_user(pg_engine, "alice", "s3cret-pass", replace=True)  # the same password: sessions kept
    assert auth.session_of(pg_engine, "alice") == first
    auth.add_user(pg_engine, "alice", "other-pass", replace=True)  # a new one ends them
    assert auth.session_of(pg_engine, "alice").version == 2
    assert auth.end_sessions(pg_engine, "alice") and auth.session_of(pg_engine, "alice").version == 3
    assert not auth.end_sessions(pg_engine, "nobody")
    auth.remove_user(pg_engine, "alice")
    auth.add_user(pg_engine, "alice", "s3cret-pass")
    assert auth.session_of(pg_engine, "alice").user_id != first.user_id  # a new user, never the old cookie's
    auth.remove_user(pg_engine, "alice")


def test_users_cli_and_apps_refuses_without_users(pg_engine, monkeypatch, capsys):
    _no_users(pg_engine)
    assert main(["apps", "--port", "1"]) == 2
    assert "no app users yet: add one with `priceintel users add NAME`" in capsys.readouterr().err
    monkeypatch.setenv("PRICEINTEL_APPS_POOL", "1")  # `--pool` sets it for Voila: put back after the test
    assert main(["apps", "--port", "1", "--pool", "pricemonitor=2"]) == 2
    assert "PRICEINTEL_APPS_POOL: 'pricemonitor=2': no app named 'pricemonitor'" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("typed-on-stdin\n"))
    assert main(["users", "add", "dana", "--password-stdin"]) == 0
    assert "user dana added" in capsys.readouterr().out
    assert auth.verify(pg_engine, "dana", "typed-on-stdin")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "twice-typed")
    assert main(["users", "add", "dana", "--replace"]) == 0
    assert auth.verify(pg_engine, "dana", "twice-typed")
    answers = iter(["first-one!", "second-one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "erin"]) == 2
    assert "two passwords differ" in capsys.readouterr().err
    assert main(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "dana" in out and "argon2" not in out and "erin" not in out
    assert main(["users", "add"]) == 2 and "needs a NAME" in capsys.readouterr().err
    assert main(["users", "remove", "dana"]) == 0
    assert main(["users", "remove", "dana"]) == 2 and "no user 'dana'" in capsys.readouterr().err
    assert main(["users", "list"]) == 0 and "no users" in capsys.readouterr().out


@pytest.mark.slow
def test_apps_command_is_the_server_so_a_stop_signal_stops_it(pg_url, pg_engine):
    """`priceintel apps` becomes Voila: SIGTERM to it (systemd, docker stop) stops the server and the warm kernels
    of its pool (`--pool`), no orphan."""
    import psutil

    auth.add_user(pg_engine, TEST_USER, TEST_PASSWORD, replace=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Path(sys.executable).with_name("priceintel")
    proc = subprocess.Popen(
        [str(cli), "apps", "--port", str(port), "--pool", "0,index=1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, DATABASE_URL=pg_url),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                assert requests.get(base + "/login", timeout=2).status_code == 200
                break
            except requests.ConnectionError:
                assert proc.poll() is None, "priceintel apps exited early"
                time.sleep(0.3)
        kernels: list = []
        while time.time() < deadline and not kernels:  # the landing page's warm kernel
            kernels = [c for c in psutil.Process(proc.pid).children(recursive=True)
                       if "ipykernel_launcher" in " ".join(c.cmdline())]
            time.sleep(0.3)
        assert len(kernels) == 1, "no warm kernel for index.ipynb"
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        with pytest.raises(requests.ConnectionError):
            requests.get(base + "/login", timeout=5)
        _, alive = psutil.wait_procs(kernels, timeout=15)
        assert not alive, "the warm kernel outlived the server"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_run_panel_reads_last_run_json(tmp_path):
    assert "No pipeline run recorded yet" in app_landing.run_html(app_landing.latest_run(None, tmp_path))
    (tmp_path / "last_run.json").write_text(
        '{"status": "failed", "error": "scrape: <boom>", "finished_at": "2026-11-26T04:00:00+00:00"}'
    )
    run = app_landing.latest_run(None, tmp_path)
    panel = app_landing.run_html(run)
    assert 'status-failed">failed' in panel and "2026-11-26 04:00 UTC" in panel and "&lt;boom&gt;" in panel


ANON_PAGES = [
    "/",
    "/voila/render/index.ipynb",
    "/voila/render/price_monitor.ipynb",
    "/voila/tree",
    "/voila/render/alerts.ipynb?x=1",
]


@pytest.mark.slow
def test_anonymous_requests_get_no_data(apps_voila):
    base = apps_voila
    for path in ANON_PAGES:
        r = requests.get(base + path, allow_redirects=False, timeout=30)
        assert r.status_code == 302, (path, r.status_code)
        assert r.headers["Location"].startswith("/login?next="), (path, r.headers["Location"])
        assert not r.content, path
    kernel = uuid.uuid4()
    for method, path in [
        ("GET", f"/api/kernels/{kernel}"),
        ("DELETE", f"/api/kernels/{kernel}"),
        ("GET", "/voila/api/contents/"),
        ("POST", "/voila/api/shutdown/" + str(kernel)),
        ("GET", "/voila/files/price_monitor.ipynb"),
        ("GET", "/voila/files/logo.png"),
    ]:
        r = requests.request(method, base + path, allow_redirects=False, timeout=30)
        assert r.status_code in (401, 403), (method, path, r.status_code)
    ws = requests.get(
        f"{base}/api/kernels/{kernel}/channels",
        allow_redirects=False,
        timeout=30,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert ws.status_code == 403
    # a forged cookie (not signed by this server) is no login
    forged = requests.get(
        base + "/voila/render/index.ipynb",
        allow_redirects=False,
        timeout=30,
        cookies={f"username-127-0-0-1-{base.rsplit(':', 1)[1]}": '{"username": "tester"}'},
    )
    assert forged.status_code == 302
    with requests.Session() as s:
        bad = post_login(s, base, TEST_USER, "wrong")
        assert bad.status_code == 401 and "Invalid credentials" in bad.text
        assert not [c for c in s.cookies if c.name.startswith("username-")]
    # a login form posted without its XSRF token (another site's form) is refused
    xsite = requests.post(
        base + "/login", data={"username": TEST_USER, "password": TEST_PASSWORD}, allow_redirects=False, timeout=30
    )
    assert xsite.status_code == 403 and not [c for c in xsite.cookies if c.name.startswith("username-")]


@pytest.mark.slow
def test_login_cookie_opens_and_removed_user_loses_access(apps_voila, pipeline_db):
    from priceintel.db.engine import get_engine

    base = apps_voila
    eng = get_engine(pipeline_db)
    auth.add_user(eng, "temp-user", "temporary-pass", replace=True)
    cookies = {c["name"]: c["value"] for c in login_cookies(base, "temp-user", "temporary-pass")}
    front = requests.get(base + "/", cookies=cookies, allow_redirects=False, timeout=30)
    assert front.status_code == 302 and front.headers["Location"] == "/voila/render/index.ipynb"
    files = requests.get(base + "/voila/files/logo.png", cookies=cookies, allow_redirects=False, timeout=30)
    assert files.status_code == 404  # past the login: the file just does not exist
    auth.remove_user(eng, "temp-user")
    after = requests.get(base + "/", cookies=cookies, allow_redirects=False, timeout=30)
    assert after.status_code == 302 and after.headers["Location"].startswith("/login")


@pytest.mark.slow
def test_browser_login_landing_page_and_logout(apps_voila, pipeline_db, browser):
    """Sign in, the landing page, sign out with its button (a POST with the XSRF token). As its own user:
    signing out ends every session of the user, and the other browser tests share the test user's."""
    from priceintel.db.engine import get_engine

    base = apps_voila
    user, password = "browser-user", "browser-password"
    auth.add_user(get_engine(pipeline_db), user, password, replace=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(anonymous=True, viewport={"width": 1440, "height": 900})
    page.goto(f"{base}/voila/render/price_monitor.ipynb", timeout=60_000)
    assert "/login" in page.url and page.locator("form.login-form").is_visible()
    assert page.locator(".js-plotly-plot, table").count() == 0
    page.fill("#username", user)
    page.fill("#password", "not the password")
    page.click("#login_submit")
    page.wait_for_selector(".msg.error")
    assert "Invalid credentials" in page.inner_text(".msg.error")
    page.goto(f"{base}/", timeout=60_000)
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login_submit")
    page.wait_for_selector("#pi-latest-run", timeout=120_000)
    assert page.url.endswith("/voila/render/index.ipynb")
    run_text = page.inner_text("#pi-latest-run")
    with sa.create_engine(pipeline_db).connect() as conn:
        task, status = conn.execute(
            sa.text("SELECT task, status FROM pipeline_run ORDER BY (task = 'pipeline') DESC, started_at DESC LIMIT 1")
        ).one()
    assert "Latest pipeline run" in run_text and status in run_text and task in run_text
    assert "UTC" in run_text
    cards = page.locator("a.pi-app-card")
    assert [cards.nth(i).get_attribute("data-app") for i in range(cards.count())] == [
        "price_monitor",
        "forecasts",
        "elasticity",
        "alerts",
        "match_review",
        "onboarding",
        "usage",
        "ops",
    ]
    page.screenshot(path=str(SHOTS / "index-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(SHOTS / "index-phone.png"))
    cookie = [c for c in page.context.cookies() if c["name"].startswith("username-")]
    page.click("button.pi-logout")
    page.wait_for_selector("form.login-form")
    assert "signed out" in page.inner_text(".msg.info")
    page.goto(f"{base}/voila/render/index.ipynb", timeout=60_000)
    assert "/login" in page.url
    page.close()
    # the session is over on the server too: its cookie, replayed, no longer signs in
    replay = requests.get(
        base + "/", cookies={c["name"]: c["value"] for c in cookie}, allow_redirects=False, timeout=30
    )
    assert len(cookie) == 1 and replay.headers["Location"].startswith("/login")
