"""Optional JavaScript rendering: load a page in headless Chromium (Playwright) and return its DOM.

Playwright's sync API is bound to the thread that started it, so one `Renderer` owns a worker
thread with the browser; `render_page` hands it URLs from any thread. The browser is the system
Chromium (`/usr/bin/chromium`); nothing is downloaded.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from typing import Any

from priceintel import PriceIntelError

__all__ = ["CHROMIUM_FLAGS", "RenderError", "Renderer", "render_page"]

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class RenderError(PriceIntelError):
    """Chromium is missing, would not start, or could not load the page."""


class Renderer:
    """A headless Chromium on its own thread; `render(url)` returns the page HTML after scripts ran."""

    def __init__(
        self, executable: str = "/usr/bin/chromium", user_agent: str | None = None, proxy: str | None = None
    ) -> None:
        if not os.path.exists(executable):
            raise RenderError(f"JavaScript rendering needs Chromium at {executable} (apt-get install chromium)")
        self.executable = executable
        self.user_agent = user_agent
        self.proxy = proxy
        self._jobs: queue.Queue[tuple[str, float, Future] | None] = queue.Queue()
        self._ready: Future = Future()
        self._thread = threading.Thread(target=self._run, name="priceintel-render", daemon=True)
        self._thread.start()
        self._ready.result()  # raises RenderError when the browser cannot start

    def _run(self) -> None:
        """Worker: start Playwright + Chromium, then serve render jobs until None arrives."""
        try:
            from playwright.sync_api import Error as PlaywrightError
            from playwright.sync_api import sync_playwright

            pw = sync_playwright().start()
            kwargs: dict[str, Any] = {"executable_path": self.executable, "args": CHROMIUM_FLAGS, "headless": True}
            if self.proxy:
                kwargs["proxy"] = {"server": self.proxy}
            browser = pw.chromium.launch(**kwargs)
            context = browser.new_context(user_agent=self.user_agent) if self.user_agent else browser.new_context()
        except Exception as exc:  # noqa: BLE001 - any launch failure becomes one clear error
            self._ready.set_exception(RenderError(f"cannot start headless Chromium {self.executable}: {exc}"))
            return
        self._ready.set_result(True)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                url, timeout, fut = job
                page = context.new_page()
                try:
                    page.goto(url, wait_until="networkidle", timeout=timeout * 1000)
                    fut.set_result(page.content().encode("utf-8"))
                except PlaywrightError as exc:
                    fut.set_exception(RenderError(f"rendering {url} failed: {exc.message.splitlines()[0]}"))
                finally:
                    page.close()
        finally:
            context.close()
            browser.close()
            pw.stop()

    def render(self, url: str, timeout: float = 30.0) -> bytes:
        """HTML of the page after JavaScript ran (UTF-8 bytes)."""
        if not self._thread.is_alive():
            raise RenderError("the rendering browser has been closed")
        fut: Future = Future()
        self._jobs.put((url, float(timeout), fut))
        return fut.result()

    def close(self) -> None:
        """Stop the browser and its thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=30)

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def render_page(renderer: Renderer, url: str, timeout: float = 30.0) -> bytes:
    """Render one URL with an existing Renderer (see `Renderer.render`)."""
    return renderer.render(url, timeout=timeout)
