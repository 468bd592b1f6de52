"""Polite HTTP fetching: robots.txt, per-host rate limits, retries with backoff, archive everything."""

from __future__ import annotations

import errno
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import requests
from requests.adapters import HTTPAdapter
from requests_html import HTMLSession
from tqdm.auto import tqdm

from priceintel.config import get_settings
from priceintel.scrape.archive import RawArchive

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchResult:
    """Outcome of one GET: the final response (or why there is none) and its archive address."""

    url: str
    status: int | None = None
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    fetched_at: datetime | None = None
    sha256: str | None = None
    error_kind: str | None = None  #: None | unreachable | timeout | robots_disallowed | invalid_url | http_error
    error: str | None = None
    attempts: int = 0
    not_modified: bool = False  #: answered 304 to a conditional request: `body` is the cached copy
    rendered: bool = False  #: body is the DOM after JavaScript ran in headless Chromium
    final_url: str | None = None  #: URL of the final response after redirects

    @property
    def ok(self) -> bool:
        """True for a response with a 2xx status."""
        return self.error_kind is None and self.status is not None and 200 <= self.status < 300

    @property
    def text(self) -> str:
        """Body decoded as UTF-8 (replacing undecodable bytes)."""
        return self.body.decode("utf-8", errors="replace")


def _reason(exc: BaseException) -> str:
    """Short human reason for a connection failure ("connection refused", "host not found", …)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError) or getattr(cur, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(cur, socket.gaierror):
            return "host not found"
        if isinstance(cur, ConnectionResetError):
            return "connection reset"
        nxt = cur.__cause__ or cur.__context__
        if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
            nxt = cur.args[0]
        if nxt is None and len(cur.args) > 1 and isinstance(cur.args[1], BaseException):
            nxt = cur.args[1]
        if nxt is None and hasattr(cur, "reason") and isinstance(cur.reason, BaseException):
            nxt = cur.reason
        cur = nxt
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class Fetcher:
    """Thread-safe polite HTTP client (requests_html HTMLSession per thread).

    Sends If-None-Match / If-Modified-Since for pages fetched before (`conditional`) and serves a 304
    from the cached copy; with `render=True` re-loads HTML pages in headless Chromium (Playwright on
    `chromium`) so prices built by JavaScript are in the body.
    """

    def __init__(
        self,
        user_agent: str | None = None,
        timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        rate_limit_per_host: float | None = None,
        max_workers: int = 8,
        archive: RawArchive | None = None,
        proxies: dict | None = None,
        obey_robots: bool = True,
        max_retry_after: float = 30.0,
        max_crawl_delay: float = 5.0,
        dead_host_ttl: float = 30.0,
        seed: int = 0,
        conditional: bool = True,
        render: bool = False,
        trace: bool = False,
        chromium: str = "/usr/bin/chromium",
    ) -> None:
        settings = get_settings()
        self.user_agent = user_agent or settings.user_agent
        self.timeout = float(timeout if timeout is not None else settings.request_timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        rate = settings.rate_limit_per_host if rate_limit_per_host is None else rate_limit_per_host
        self.min_interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.max_workers = max(1, int(max_workers))
        self.archive = archive
        if proxies is None and settings.http_proxy:
            proxies = {"http": settings.http_proxy, "https": settings.http_proxy}
        self.proxies = dict(proxies or {})
        self.obey_robots = obey_robots
        self.max_retry_after = float(max_retry_after)
        self.max_crawl_delay = float(max_crawl_delay)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._robots: dict[str, RobotFileParser] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._robots_lock = threading.Lock()
        self._dead: dict[str, tuple[float, FetchResult]] = {}
        self.dead_host_ttl = float(dead_host_ttl)
        self._next_slot: dict[str, float] = {}
        self._slot_lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        #: conditional requests: url -> (ETag, Last-Modified, sha256, body or None when archived)
        self.conditional = conditional
        self._validators: dict[str, tuple[str | None, str | None, str | None, bytes | None]] = {}
        self._validators_lock = threading.Lock()
        self.render = render
        self.chromium = chromium
        #: with `trace`, (host, time.monotonic()) of every request as it is sent (politeness checks)
        self.trace: list[tuple[str, float]] | None = [] if trace else None
        self._renderer: Any = None
        self._render_lock = threading.Lock()

    # --- sessions ---------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """This thread's HTMLSession (a requests.Session subclass) with UA, proxies, pool size."""
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = HTMLSession()
            sess.trust_env = False  # proxies come from priceintel settings only
            sess.headers["User-Agent"] = self.user_agent
            sess.proxies.update(self.proxies)
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=self.max_workers, max_retries=0)
            sess.mount("http://", adapter)
            sess.mount("https://", adapter)
            self._local.session = sess
            with self._sessions_lock:
                self._sessions.append(sess)
        return sess

    def close(self) -> None:
        """Close every session opened by this fetcher (and the browser, when one was started)."""
        with self._render_lock:
            renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for sess in sessions:
            requests.Session.close(sess)  # HTMLSession.close would also try to close a browser
        self._local = threading.local()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- politeness -------------------------------------------------------------------
    def _wait_turn(self, host: str, interval: float) -> float:
        """Wait until `interval` has passed since the last request sent to this host.

        Requests to one host queue on that host's lock, so two sends are never closer than the
        interval even when a sleeping thread wakes late (other hosts are not held up).
        """
        if interval <= 0:
            return time.monotonic()
        with self._slot_lock:
            lock = self._host_locks.setdefault(host, threading.Lock())
        with lock:
            now = time.monotonic()
            due = self._next_slot.get(host, 0.0)
            while due > now:
                time.sleep(due - now)
                now = time.monotonic()
            self._next_slot[host] = now + interval
        return now  # the send time this request was granted

    def _sleep_backoff(self, attempt: int, retry_after: float | None) -> None:
        """Exponential backoff with jitter, or the server's Retry-After (capped)."""
        if retry_after is not None:
            delay = min(retry_after, self.max_retry_after)
        else:
            with self._rng_lock:
                jitter = self._rng.uniform(0.0, 0.5)
            delay = self.backoff * (2**attempt) * (1.0 + jitter)
        if delay > 0:
            time.sleep(delay)

    def robots(self, url: str) -> RobotFileParser | None:
        """Parsed robots.txt for the URL's host (cached); None when the host cannot be reached."""
        return self._robots_for(url)[0]

    def _robots_known(self, origin: str) -> tuple[RobotFileParser | None, FetchResult | None] | None:
        """The cached answer of `_robots_for` for origin (parser, or a failure within dead_host_ttl), else
        None; call with _robots_lock held."""
        if origin in self._robots:
            return self._robots[origin], None
        dead = self._dead.get(origin)
        if dead is not None and time.monotonic() - dead[0] < self.dead_host_ttl:
            return None, dead[1]
        return None

    def _robots_for(self, url: str) -> tuple[RobotFileParser | None, FetchResult | None]:
        """(robots parser, None) or (None, failed robots.txt fetch); failures cached for dead_host_ttl."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            known = self._robots_known(origin)
            if known is not None:
                return known
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            with self._robots_lock:  # another thread may have fetched it while we waited for the host lock
                known = self._robots_known(origin)
            if known is not None:
                return known
            res = self._request(origin + "/robots.txt", meta={"kind": "robots"})
            if res.error_kind is not None and res.status is None:
                with self._robots_lock:
                    self._dead[origin] = (time.monotonic(), res)
                return None, res
            rp = RobotFileParser(origin + "/robots.txt")
            if res.status is not None and 200 <= res.status < 300:
                rp.parse(res.text.splitlines())
            elif res.status is not None and res.status >= 500:
                # typeshed lacks RobotFileParser.allow_all / disallow_all, which can_fetch() reads
                rp.disallow_all = True  # type: ignore[attr-defined]  # RFC 9309: server error -> complete disallow
            else:
                rp.allow_all = True  # type: ignore[attr-defined]  # RFC 9309: 4xx (no robots.txt) -> no restrictions
            rp.modified()
            with self._robots_lock:
                self._robots[origin] = rp
            return rp, None

    def _crawl_delay(self, rp: RobotFileParser | None) -> float:
        """Crawl-delay asked by robots.txt for our agent (capped), else 0."""
        if rp is None:
            return 0.0
        try:
            delay = rp.crawl_delay(self.user_agent)
        except (TypeError, ValueError):  # pragma: no cover - malformed directive
            delay = None
        return min(float(delay), self.max_crawl_delay) if delay else 0.0

    # --- fetching ---------------------------------------------------------------------
    def get(self, url: str, meta: dict | None = None) -> FetchResult:
        """GET a URL politely; never raises for network errors (see FetchResult.error_kind)."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            return FetchResult(
                url=url, error_kind="invalid_url", error=f"not an http(s) URL: {url!r}", fetched_at=_now()
            )
        delay = 0.0
        if self.obey_robots:
            rp, failed = self._robots_for(url)
            if rp is None:
                assert failed is not None
                return replace(failed, url=url, error=f"{failed.error} (robots.txt needed before {url})")
            if not rp.can_fetch(self.user_agent, url):
                return FetchResult(
                    url=url,
                    error_kind="robots_disallowed",
                    fetched_at=_now(),
                    error=f"robots.txt of {parts.scheme}://{parts.netloc} disallows {url} "
                    f"for user agent {self.user_agent!r}",
                )
            delay = self._crawl_delay(rp)
        return self._request(url, meta=meta, interval=max(self.min_interval, delay))

    def _request(self, url: str, meta: dict | None = None, interval: float | None = None) -> FetchResult:
        """GET with retries/backoff; archive every response; map failures to error kinds."""
        host = urlsplit(url).netloc
        interval = self.min_interval if interval is None else interval
        meta = dict(meta or {})
        last_exc: BaseException | None = None
        resp = None
        attempt = 0
        for attempt in range(self.retries + 1):
            sent = self._wait_turn(host, interval)
            if self.trace is not None:
                self.trace.append((host, sent))
            try:
                resp = self.session.get(
                    url, timeout=self.timeout, allow_redirects=True, headers=self._conditional_headers(url)
                )
                last_exc = None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_exc, resp = exc, None
            except requests.RequestException as exc:  # invalid URL, too many redirects, …
                return FetchResult(
                    url=url,
                    error_kind="invalid_url",
                    fetched_at=_now(),
                    error=f"cannot request {url}: {exc}",
                    attempts=attempt + 1,
                )
            retry_after = None
            if resp is not None:
                fetched = _now()
                sha = self._archive(resp, url, fetched, meta, attempt)
                if resp.status_code not in RETRY_STATUSES or attempt == self.retries:
                    return self._finish(url, resp, fetched, sha, attempt + 1, meta)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            elif attempt == self.retries:
                break
            self._sleep_backoff(attempt, retry_after)
        assert last_exc is not None
        tries = f"after {attempt + 1} attempt(s)"
        if isinstance(last_exc, requests.Timeout) and not isinstance(last_exc, requests.ConnectTimeout):
            kind, error = "timeout", f"no response from {url} within {self.timeout:g}s {tries}"
        else:
            origin = f"{urlsplit(url).scheme}://{host}/"
            kind, error = "unreachable", f"cannot connect to {origin} ({_reason(last_exc)}) {tries} fetching {url}"
        return FetchResult(url=url, error_kind=kind, fetched_at=_now(), attempts=attempt + 1, error=error)

    # --- conditional requests and rendering ------------------------------------------
    def _conditional_headers(self, url: str) -> dict:
        """If-None-Match / If-Modified-Since for a URL fetched before (empty otherwise)."""
        if not self.conditional:
            return {}
        with self._validators_lock:
            known = self._validators.get(url)
        if known is None:
            return {}
        etag, modified, _sha, _body = known
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        return headers

    def _finish(
        self, url: str, resp: requests.Response, fetched: datetime, sha: str | None, attempts: int, meta: dict
    ) -> FetchResult:
        """Final result: a 304 served from the cached copy, a 200 remembered, rendered when asked."""
        if resp.status_code == 304 and self.conditional:
            with self._validators_lock:
                known = self._validators.get(url)
            if known is not None:
                body = (
                    known[3]
                    if known[3] is not None
                    else (self.archive.get(known[2]) if self.archive is not None and known[2] else b"")
                )
                return FetchResult(
                    url=url,
                    status=304,
                    headers=dict(resp.headers),
                    body=body,
                    fetched_at=fetched,
                    sha256=known[2],
                    attempts=attempts,
                    not_modified=True,
                    final_url=resp.url,
                )
        result = self._result(url, resp, fetched, sha, attempts)
        if self.conditional and resp.status_code == 200:
            etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            if etag or modified:
                keep = None if self.archive is not None and sha else resp.content
                with self._validators_lock:
                    self._validators[url] = (etag, modified, sha, keep)
        if self.render and result.ok and "html" in resp.headers.get("Content-Type", "html"):
            from priceintel.scrape.render import RenderError

            try:
                result = self._rendered(result, meta)
            except RenderError as exc:
                return replace(result, error_kind="render_failed", error=str(exc))
        return result

    def _rendered(self, result: FetchResult, meta: dict) -> FetchResult:
        """Re-load a page in headless Chromium (Playwright) and return the DOM after its scripts ran."""
        from priceintel.scrape.render import render_page

        with self._render_lock:
            if self._renderer is None:
                from priceintel.scrape.render import Renderer

                self._renderer = Renderer(self.chromium, user_agent=self.user_agent, proxy=self.proxies.get("http"))
            body = render_page(self._renderer, result.url, timeout=self.timeout)
        fetched = _now()
        sha = None
        if self.archive is not None:
            extra = dict(meta, rendered=True)
            sha = self.archive.put(result.url, result.status or 200, result.headers, body, fetched, **extra)
        return replace(result, body=body, sha256=sha or result.sha256, fetched_at=fetched, rendered=True)

    def _archive(self, resp: requests.Response, url: str, fetched: datetime, meta: dict, attempt: int) -> str | None:
        """Archive one response body; return its SHA-256 (None without an archive)."""
        if self.archive is None:
            return None
        extra = dict(meta)
        extra["attempt"] = attempt + 1
        if resp.url != url:
            extra["final_url"] = resp.url
        return self.archive.put(url, resp.status_code, dict(resp.headers), resp.content, fetched, **extra)

    def _result(
        self, url: str, resp: requests.Response, fetched: datetime, sha: str | None, attempts: int
    ) -> FetchResult:
        """FetchResult for a final response (HTTP >= 400 flagged as http_error)."""
        status = resp.status_code
        kind = err = None
        if status >= 400:
            kind, err = "http_error", f"HTTP {status} {resp.reason or ''} for {url}".replace("  ", " ")
        return FetchResult(
            url=url,
            status=status,
            headers=dict(resp.headers),
            body=resp.content,
            fetched_at=fetched,
            sha256=sha,
            error_kind=kind,
            error=err,
            attempts=attempts,
            final_url=resp.url,
        )

    def get_many(
        self, urls: list[str], meta: dict | list[dict] | None = None, progress: bool = True, desc: str = "fetch"
    ) -> list[FetchResult]:
        """GET many URLs on a thread pool (results in input order) with a tqdm progress bar.

        `meta` (one dict, or one dict per URL) is stored with each archived response.
        """
        urls = list(urls)
        if not urls:
            return []
        metas = meta if isinstance(meta, list) else [meta] * len(urls)
        if len(metas) != len(urls):
            raise ValueError(f"get_many: {len(metas)} meta dicts for {len(urls)} URLs")
        results: list[FetchResult | None] = [None] * len(urls)
        with tqdm(total=len(urls), desc=desc, disable=not progress, leave=False) as bar:

            def run(i: int) -> None:
                """Fetch URL i into its slot."""
                results[i] = self.get(urls[i], meta=metas[i])
                bar.update(1)

            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(urls))) as pool:
                for fut in [pool.submit(run, i) for i in range(len(urls))]:
                    fut.result()
        return [r for r in results if r is not None]


def _now() -> datetime:
    """Current time, tz-aware UTC."""
    return datetime.now(UTC)


def describe(result: FetchResult) -> dict[str, Any]:
    """Small dict view of a result (no body) for logs and error frames."""
    return {
        "url": result.url,
        "status": result.status,
        "error_kind": result.error_kind,
        "error": result.error,
        "sha256": result.sha256,
        "attempts": result.attempts,
    }
