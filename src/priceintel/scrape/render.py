"""Optional JavaScript rendering: load a page in headless Chromium (Playwright) and return its DOM.

Playwright's sync API is bound to the thread that started it, so one `Renderer` owns a worker
thread with the browser; `render_page` hands it URLs from any thread. The browser is the system
Chromium (`/usr/bin/chromium`); nothing is downloaded.

Hostile pages: Chromium runs in its sandbox, except as root (`os.geteuid() == 0`), where Chromium refuses to
start sandboxed and `--no-sandbox` is added (`chromium_flags`). Every request of the page (the document,
its redirects, scripts, XHR) goes through a route that asks the caller's `allow(url)` (the Fetcher's outbound
policy) and aborts what it refuses; images, fonts and media are never loaded, service workers are blocked, and
the rendered DOM is held to the fetcher's size cap. A refused main document is `RenderBlocked`.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import urljoin

from priceintel import PriceIntelError
from priceintel.scrape.limits import MAX_REDIRECTS, BodyTooLarge, human_bytes

__all__ = [
    "BLOCKED_RESOURCES",
    "CHROMIUM_FLAGS",
    "RenderBlocked",
    "RenderError",
    "Renderer",
    "chromium_flags",
    "render_page",
]

#: flags for every launch (sandbox on: see `chromium_flags`)
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--no-pings",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
]
#: resource types never loaded while rendering (prices are text; these only cost time and requests)
BLOCKED_RESOURCES = frozenset({"image", "media", "font"})
_PRIVATE_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
#: a URL -> None when it may be requested, else the reason it may not
Allow = Callable[[str], "str | None"]


def chromium_flags(euid: int | None = None) -> list[str]:
    """Launch flags: CHROMIUM_FLAGS, plus `--no-sandbox` only for root (Chromium will not start sandboxed as root)."""
    euid = os.geteuid() if euid is None else euid
    return [*CHROMIUM_FLAGS, "--no-sandbox"] if euid == 0 else list(CHROMIUM_FLAGS)


class RenderError(PriceIntelError):
    """Chromium is missing, would not start, or could not load the page."""


class RenderBlocked(RenderError):
    """The page to render (or a redirect of it) is refused by the outbound policy."""


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
        self._jobs: queue.Queue[tuple[str, float, Allow | None, int | None, Future] | None] = queue.Queue()
        self._allow: Allow | None = None  #: the current job's policy (read by the route, on the worker thread)
        self._refused: list[tuple[str, str]] = []  #: (url, reason) refused during the current job
        self._timeout = 30.0  #: the current job's timeout (seconds)
        self._limit: int | None = None  #: the current job's size cap (bytes)
        self._ready: Future = Future()
        self._thread = threading.Thread(target=self._run, name="priceintel-render", daemon=True)
        self._thread.start()
        self._ready.result()  # raises RenderError when the browser cannot start

    def _run(self) -> None:
        """Worker: start Playwright + Chromium, then serve render jobs until None arrives."""
        try:
            from playwright.sync_api import sync_playwright

            pw = sync_playwright().start()
            flags = chromium_flags()
            kwargs: dict[str, Any] = {"executable_path": self.executable, "args": flags, "headless": True}
            # Playwright itself adds --no-sandbox unless told the sandbox is wanted
            kwargs["chromium_sandbox"] = "--no-sandbox" not in flags
            if self.proxy:
                kwargs["proxy"] = {"server": self.proxy}
            browser = pw.chromium.launch(**kwargs)
            options: dict[str, Any] = {"service_workers": "block"}
            if self.user_agent:
                options["user_agent"] = self.user_agent
            context = browser.new_context(**options)
            context.route("**/*", self._route)
            if hasattr(context, "route_web_socket"):  # Playwright >= 1.48: no websocket leaves the page
                context.route_web_socket("**/*", lambda ws: ws.close())
        except Exception as exc:  # noqa: BLE001 - any launch failure becomes one clear error
            self._ready.set_exception(RenderError(f"cannot start headless Chromium {self.executable}: {exc}"))
            return
        self._ready.set_result(True)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                self._serve(context, *job)
        finally:
            context.close()
            browser.close()
            pw.stop()

    def _route(self, route: Any) -> None:
        """Every request of a rendered page: abort blocked resource types and what the policy refuses."""
        request = route.request
        url = request.url
        if request.resource_type in BLOCKED_RESOURCES:
            route.abort("blockedbyclient")
            return
        if self._allow is None or url.startswith(("data:", "blob:")):  # no policy given: as the browser would
            route.continue_()
            return
        reason = self._allow(url)
        if reason is not None:
            self._refused.append((url, reason))
            route.abort("blockedbyclient")
            return
        response = self._fetch_hops(route)
        if response is None:
            route.abort("blockedbyclient")
            return
        route.fulfill(response=response)

    def _fetch_hops(self, route: Any) -> Any | None:
        """The routed request's response, its redirects followed here, each hop put to the policy (Chromium would
        follow a redirect without asking the route again); None when a hop is refused or the chain is too long."""
        request = route.request
        url = request.url
        for _hop in range(MAX_REDIRECTS + 1):
            options: dict[str, Any] = {"max_redirects": 0, "timeout": self._timeout * 1000}
            if url != request.url:  # credentials of the first host never go to the next one
                options["url"] = url
                options["headers"] = {k: v for k, v in request.headers.items() if k.lower() not in _PRIVATE_HEADERS}
            try:
                response = route.fetch(**options)
            except Exception:  # noqa: BLE001 - a failed subrequest is the page's problem, not the renderer's
                return None
            location = response.headers.get("location")
            length = response.headers.get("content-length") or ""
            if self._limit is not None and length.isdigit() and int(length) > self._limit:
                self._refused.append((request.url, f"{url} declares {human_bytes(int(length))}: over the size limit"))
                return None
            if not (300 <= response.status < 400 and location):
                return response
            nxt = urljoin(url, location)
            reason = self._allow(nxt) if self._allow is not None else None
            if reason is not None:  # the refusal of a redirect names both hops
                self._refused.append((request.url, f"redirect from {url} refused: {reason}"))
                return None
            url = nxt
        self._refused.append((request.url, f"more than {MAX_REDIRECTS} redirects from {request.url}"))
        return None

    def _serve(
        self, context: Any, url: str, timeout: float, allow: Allow | None, limit: int | None, fut: Future
    ) -> None:
        """Render one job into its future."""
        from playwright.sync_api import Error as PlaywrightError

        self._allow, self._refused, self._timeout, self._limit = allow, [], timeout, limit
        page = context.new_page()
        try:
            page.goto(url, wait_until="networkidle", timeout=timeout * 1000)
            html = page.content().encode("utf-8")
            if limit is not None and len(html) > limit:
                raise BodyTooLarge(
                    f"rendered page {url} is larger than the {human_bytes(limit)} limit (PRICEINTEL_MAX_PAGE_BYTES)",
                    limit,
                    len(html),
                )
            fut.set_result(html)
        except PlaywrightError as exc:
            fut.set_exception(self._failure(url, exc.message.splitlines()[0]))
        except BodyTooLarge as exc:
            fut.set_exception(exc)
        finally:
            self._allow = None
            page.close()

    def _failure(self, url: str, message: str) -> RenderError:
        """RenderBlocked when the policy refused the page or one of its redirects, else RenderError."""
        if "ERR_BLOCKED_BY_CLIENT" in message and self._refused:
            return RenderBlocked(next((why for u, why in self._refused if u == url), self._refused[0][1]))
        return RenderError(f"rendering {url} failed: {message}")

    def render(self, url: str, timeout: float = 30.0, allow: Allow | None = None, limit: int | None = None) -> bytes:
        """HTML of the page after JavaScript ran (UTF-8 bytes); every request the page makes is first put to
        `allow` (None = no policy); a DOM over `limit` bytes is BodyTooLarge."""
        if not self._thread.is_alive():
            raise RenderError("the rendering browser has been closed")
        fut: Future = Future()
        self._jobs.put((url, float(timeout), allow, limit, fut))
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


def render_page(
    renderer: Renderer, url: str, timeout: float = 30.0, allow: Allow | None = None, limit: int | None = None
) -> bytes:
    """Render one URL with an existing Renderer (see `Renderer.render`)."""
    return renderer.render(url, timeout=timeout, allow=allow, limit=limit)
