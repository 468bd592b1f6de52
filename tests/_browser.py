"""Headless Debian Chromium for app tests, with every request off loopback refused."""

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: the test user serve_voila creates in the served database
TEST_USER = "tester"
TEST_PASSWORD = "correct horse battery staple"
#: base URL -> Playwright cookies of a signed-in session (filled by serve_voila)
LOGINS: dict[str, list[dict]] = {}
#: base URL -> the file the Voila server logs to (filled by serve_voila)
VOILA_LOGS: dict[str, Path] = {}
#: base URL -> the Voila server's process id (filled by serve_voila)
VOILA_PIDS: dict[str, int] = {}


def voila_diagnostics(chars: int = 6000) -> str:
    """What every running Voila server of the tests is doing: the end of its log, and each process under it
    (kernels among them) with its state, CPU seconds, age and the kernel function each of its threads waits in.
    Shown when an app page does not load (conftest.py) and when one is opened again (new_page)."""
    import psutil

    parts = []
    for base, log in list(VOILA_LOGS.items()):
        try:
            tail = log.read_text(errors="replace")[-chars:]
        except OSError:
            tail = "(log gone)"
        procs = []
        try:
            root = psutil.Process(VOILA_PIDS[base])
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error, OSError):
                    cpu = proc.cpu_times()
                    waits = sorted({(Path(f"/proc/{proc.pid}/task/{t.id}/wchan").read_text() or "-")
                                    for t in proc.threads()})
                    procs.append(f"  pid {proc.pid} {proc.status()} cpu {cpu.user + cpu.system:.1f} s, "
                                 f"age {time.time() - proc.create_time():.0f} s, waits in {','.join(waits)}: "
                                 + " ".join(proc.cmdline()[:4]))
        except (KeyError, psutil.Error) as exc:
            procs.append(f"  (no process tree: {exc!r})")
        parts.append(f"== Voila {base}: processes\n" + "\n".join(procs) + f"\n== its log (last {chars} characters)\n"
                     + tail)
    return "\n".join(parts)


def _goto_again_once(page):
    """page.goto that, when an app page (/voila/render/) times out, warns with `voila_diagnostics` (in the run's
    warnings summary, so a retry that then passes is still seen) and opens it once more, waiting at most 150 s:
    in about one CI run in three, one app kernel of the ~60 started stalls before it opens its sockets (its
    process alive, nothing logged) and the page waits for it forever. A second timeout fails the test."""
    import warnings

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    goto = page.goto

    def goto_with_retry(url, *args, **kwargs):
        try:
            return goto(url, *args, **kwargs)
        except PlaywrightTimeout:
            if "/voila/render/" not in url:
                raise
            warnings.warn(f"{url} did not load; opening it again. {voila_diagnostics()}", stacklevel=2)
            goto("about:blank")  # ends the pending load (the same URL again would be aborted)
            kwargs["timeout"] = min(kwargs.get("timeout") or 30_000, 150_000)
            return goto(url, *args, **kwargs)

    page.goto = goto_with_retry
    return page


def _only_loopback(route) -> None:
    """Let loopback, data: and blob: requests through; abort anything else (e.g. CDN fonts)."""
    url = route.request.url
    if url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOOPBACK:
        route.continue_()
    else:
        route.abort()


class LoopbackBrowser:
    """A Playwright browser whose pages can only reach this machine."""

    def __init__(self, browser):
        self._browser = browser

    def new_page(self, anonymous: bool = False, **kwargs):
        """A new page with the loopback-only route installed, signed in to every Voila server the
        tests started (serve_voila), unless anonymous=True."""
        page = _goto_again_once(self._browser.new_page(**kwargs))
        page.route("**/*", _only_loopback)
        if not anonymous and LOGINS:
            page.context.add_cookies([c for cookies in LOGINS.values() for c in cookies])
        return page

    def __getattr__(self, name):
        return getattr(self._browser, name)


@contextlib.contextmanager
def chromium():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser), loopback only."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield LoopbackBrowser(browser)
        finally:
            browser.close()


@contextlib.contextmanager
def serve_voila(**env):
    """Voila serving notebooks/apps on a free loopback port with extra environment; yields its base URL.

    No warm kernels unless `PRICEINTEL_APPS_POOL` is given; the server's log goes to a file (`VOILA_LOGS[base]`,
    read by the pool tests; a pipe nobody reads would block the server once full)."""
    import tempfile

    import pytest
    import requests

    from priceintel import config
    from priceintel.apps.serve import POOL_ENV, REFILL_ENV, app_database_url, voila_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from priceintel.apps import auth
    from priceintel.db.engine import get_engine
    from priceintel.db.migrate import upgrade

    db_url = env.get("DATABASE_URL") or os.environ["DATABASE_URL"]
    upgrade(db_url)
    auth.add_user(get_engine(db_url), TEST_USER, TEST_PASSWORD, replace=True)
    env["DATABASE_URL"] = app_database_url(db_url)  # as `priceintel apps` does: the apps' role, not the owner
    # no warm kernels unless a test asks (test_tenant_apps, test_auth take the pool's path; a CI run with the pool on
    # for every app test once hung 120 s on a warm elasticity page, not yet explained)
    env.setdefault(POOL_ENV, "0")
    env.setdefault(REFILL_ENV, "1")  # the tests open apps one after another: a short refill delay serves them sooner
    log = Path(tempfile.mkstemp(prefix="voila-", suffix=".log")[1])
    with open(log, "wb") as err:
        proc = subprocess.Popen(voila_command(port), env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                                stderr=err, cwd=config.PROJ_ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if requests.get(base, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            proc.kill()
            pytest.fail("voila did not start: " + log.read_text(errors="replace")[-2000:])
        LOGINS[base] = login_cookies(base)
        VOILA_LOGS[base] = log
        VOILA_PIDS[base] = proc.pid
        yield base
    finally:
        LOGINS.pop(base, None)
        VOILA_LOGS.pop(base, None)
        VOILA_PIDS.pop(base, None)
        proc.terminate()
        proc.wait(10)
        log.unlink(missing_ok=True)


def login_cookies(base: str, user: str = TEST_USER, password: str = TEST_PASSWORD) -> list[dict]:
    """Sign in through the login form with plain HTTP; the session cookies in Playwright's format."""
    import requests

    with requests.Session() as s:
        r = post_login(s, base, user, password)
        assert r.status_code == 302, f"login as {user} failed: HTTP {r.status_code}"
        return [{"name": c.name, "value": c.value, "url": base + "/"} for c in s.cookies]


def post_login(session, base: str, user: str, password: str):
    """GET the login form (for its XSRF token and cookie), then POST it; the POST's response (no redirects)."""
    import re

    form = session.get(f"{base}/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    assert xsrf, "no XSRF field in the login form"
    return session.post(f"{base}/login", data={"username": user, "password": password, "_xsrf": xsrf.group(1)},
                        allow_redirects=False, timeout=30)


def wait_charts_settled(page, charts: str = ".js-plotly-plot .main-svg", timeout: int = 60_000) -> None:
    """Wait until every element matching `charts` (one at least) has kept its width for a second: a plotly figure
    still being drawn (or redrawn after a switch of listing) measures its box before it listens for resizes, so
    a viewport change in that instant would go unseen."""
    page.wait_for_function(
        """(sel) => { const all = [...document.querySelectorAll(sel)]; if (!all.length) return false;
                      const w = all.map(s => s.getBoundingClientRect().width).join(), now = Date.now();
                      if (window.__piW !== w) { window.__piW = w; window.__piT = now; return false; }
                      return now - window.__piT > 1000; }""",
        arg=charts, timeout=timeout)


def check_on_phone(page, rows: str, chart: str, min_rows: int = 1, timeout: int = 60_000) -> None:
    """Shrink `page` to a 390x844 phone: the table `rows` still has `min_rows` rows and the plotly chart
    inside `chart` fits the phone's width; then close the page."""
    wait_charts_settled(page, f"{chart} .js-plotly-plot .main-svg", timeout)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    assert page.locator(rows).count() >= min_rows
    fits = f"() => document.querySelector('{chart} .js-plotly-plot .main-svg').getBoundingClientRect().width <= 390"
    try:  # the chart follows the phone
        page.wait_for_function(fits, timeout=20_000)
    except Exception as e:  # noqa: BLE001 - Playwright's TimeoutError
        # A resize that lands while plotly is still redrawing the chart (after a switch of listing) can be dropped
        # by plotly; a phone turned or a window resized again sends another. Seen once in CI: warn, send one more
        # resize and wait again (a chart that never follows still fails).
        import warnings

        width = page.evaluate(f"() => document.querySelector('{chart} .js-plotly-plot .main-svg')"
                              ".getBoundingClientRect().width")
        warnings.warn(f"{chart}: chart still {width} px wide 20 s after the page shrank to 390 px ({e!s:.80}); "
                      "sending another resize", stacklevel=2)
        page.evaluate("() => window.dispatchEvent(new Event('resize'))")
        page.wait_for_function(fits, timeout=timeout)
    page.close()
