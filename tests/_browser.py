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

    def new_page(self, **kwargs):
        """A new page with the loopback-only route installed."""
        page = self._browser.new_page(**kwargs)
        page.route("**/*", _only_loopback)
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
    """Voila serving notebooks/apps on a free loopback port with extra environment; yields its base URL."""
    import pytest
    import requests

    from priceintel import config
    from priceintel.cli import voila_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(voila_command(port), env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=config.PROJ_ROOT)
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
            pytest.fail("voila did not start: " + proc.stderr.read().decode()[-2000:])
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
