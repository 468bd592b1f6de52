"""Polite, hardened HTTP fetching: robots.txt, per-host rate limits, retries with backoff, archive everything.

Hardened against hostile pages (see docs/scraping.md): bodies are streamed and capped by their *decoded* size
(`max_page_bytes`, error `too_large`), each response has a total deadline (`deadline`, error `too_slow`),
redirects are followed here, each hop checked against the outbound policy (`priceintel.scrape.outbound`, error
`blocked_address`), at most `limits.MAX_REDIRECTS` of them.
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import requests
from tqdm.auto import tqdm

from priceintel.config import get_settings
from priceintel.obs import metrics
from priceintel.scrape import limits, transport
from priceintel.scrape.archive import RawArchive
from priceintel.scrape.outbound import OutboundPolicy, Verdict, combine
from priceintel.scrape.results import (
    ERROR_KINDS,
    FetchResult,
    _now,
    _reason,
    describe,
    http_error_message,
    parse_retry_after,
)
from priceintel.scrape.robots import RobotsMixin

__all__ = ["ERROR_KINDS", "Fetcher", "FetchResult", "describe", "parse_retry_after"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: the scope set by `Fetcher.scoped`: (id of the fetcher, policy)
_SCOPE: contextvars.ContextVar[tuple[int, OutboundPolicy] | None] = contextvars.ContextVar(
    "priceintel_fetch_scope", default=None
)


_REFUSED = frozenset({"robots_disallowed", "blocked_address", "invalid_url"})


def fetch_outcome(result: FetchResult) -> str:
    """A result as the metrics count it: ok (2xx), not_modified (a 304 served from the cache), http_error,
    refused (never requested: robots.txt, outbound policy, bad URL), error (no usable answer), other."""
    if result.not_modified:
        return "not_modified"
    if result.error_kind is None:
        return "ok" if result.ok else "other"
    if result.error_kind == "http_error":
        return "http_error"
    return "refused" if result.error_kind in _REFUSED else "error"


#: the metrics' shop label of the page `Fetcher.get` is fetching
_SHOP: contextvars.ContextVar[str | None] = contextvars.ContextVar("priceintel_fetch_shop", default=None)


class Fetcher(RobotsMixin):
    """Thread-safe polite HTTP client (a requests.Session per thread).

    Sends If-None-Match / If-Modified-Since for pages fetched before (`conditional`) and serves a 304
    from the cached copy; with `render=True` re-loads HTML pages in headless Chromium (Playwright on
    `chromium`) so prices built by JavaScript are in the body.

    Limits: `max_page_bytes` (default $PRICEINTEL_MAX_PAGE_BYTES, else 8 MB) caps each decoded body, `deadline`
    (default $PRICEINTEL_FETCH_DEADLINE, else 30 s) each whole response, `timeout` each wait for bytes. `allow`
    is the outbound policy: an `OutboundPolicy`, or the base URLs of the shops this fetcher may reach (their
    origins trusted, their hosts allowed); None is `OutboundPolicy.default()`. `scoped` narrows it for a block.
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
        max_page_bytes: int | str | None = None,
        deadline: float | None = None,
        allow: OutboundPolicy | Iterable[str] | None = None,
    ) -> None:
        settings = get_settings()
        self.user_agent = user_agent or settings.user_agent
        self.timeout = float(timeout if timeout is not None else settings.request_timeout)
        self.max_page_bytes = limits.max_page_bytes(max_page_bytes)
        self.deadline = limits.response_deadline(deadline)
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
        self._explicit_policy = allow is not None
        if allow is None:
            self.policy = OutboundPolicy.default()
        else:
            self.policy = allow if isinstance(allow, OutboundPolicy) else OutboundPolicy.for_sites(allow)
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
        """This thread's requests.Session with UA, proxies, pool size and guarded connections."""
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = requests.Session()
            sess.trust_env = False  # proxies come from priceintel settings only
            sess.headers["User-Agent"] = self.user_agent
            sess.headers["Accept-Encoding"] = transport.ACCEPT_ENCODING
            sess.proxies.update(self.proxies)
            adapter = transport.GuardedAdapter(pool_connections=16, pool_maxsize=self.max_workers, max_retries=0)
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
            sess.close()
        self._local = threading.local()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- outbound policy --------------------------------------------------------------
    @contextmanager
    def scoped(self, allow: OutboundPolicy | Iterable[str], hosts: Iterable[str] = ()) -> Iterator[OutboundPolicy]:
        """Within the block (this thread and `get_many`'s workers), requests of this fetcher must also pass
        `allow`: a policy, or shop base URLs (plus declared `hosts`) made into `OutboundPolicy.for_sites`."""
        policy = allow if isinstance(allow, OutboundPolicy) else OutboundPolicy.for_sites(allow, hosts)
        token = _SCOPE.set((id(self), policy))
        try:
            yield policy
        finally:
            _SCOPE.reset(token)

    def policies(self) -> list[OutboundPolicy]:
        """The policies a request must pass here and now: the scope's (if any) and the fetcher's own
        (the default policy gives way to a scope)."""
        scope = _SCOPE.get()
        if scope is None or scope[0] != id(self):
            return [self.policy]
        return [scope[1], self.policy] if self._explicit_policy else [scope[1]]

    def check_url(self, url: str, requested: str | None = None) -> Verdict:
        """Whether the outbound policy lets this fetcher request `url` now (`requested`: the URL asked for when
        `url` is a redirect hop); spends no request."""
        return combine(self.policies(), url, requested if requested is not None else url)

    def _blocked(self, url: str, reason: str, hop_from: str | None = None) -> FetchResult:
        """The blocked_address result for `url` (a redirect from `hop_from` when given)."""
        error = f"{url}: redirect from {hop_from} refused: {reason}" if hop_from else reason
        return FetchResult(url=url, error_kind="blocked_address", error=error, fetched_at=_now())

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

    # --- fetching ---------------------------------------------------------------------
    def get(self, url: str, meta: dict | None = None) -> FetchResult:
        """GET a URL politely; never raises for network errors (see FetchResult.error_kind). Counted in the
        metrics by shop (`meta["retailer"]`, else the host) and outcome (`fetch_outcome`)."""
        shop = metrics.shop_label((meta or {}).get("retailer"), url)
        token = _SHOP.set(shop)  # robots.txt fetched for this page counts for its shop too
        try:
            result = self._get(url, meta)
        finally:
            _SHOP.reset(token)
        metrics.record_fetch(shop, fetch_outcome(result), result.error_kind)
        return result

    def _get(self, url: str, meta: dict | None) -> FetchResult:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            return FetchResult(
                url=url, error_kind="invalid_url", error=f"not an http(s) URL: {url!r}", fetched_at=_now()
            )
        verdict = self.check_url(url)
        if not verdict.allowed:  # before robots.txt: nothing at all is sent to a refused host
            return self._blocked(url, verdict.reason)
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

    def _request(
        self, url: str, meta: dict | None = None, interval: float | None = None, requested: str | None = None
    ) -> FetchResult:
        """GET with retries/backoff; archive every response; map failures to error kinds."""
        host = urlsplit(url).netloc
        interval = self.min_interval if interval is None else interval
        meta = dict(meta or {})
        last_exc: BaseException | None = None
        attempt = 0
        latency = metrics.FETCH_SECONDS.labels(_SHOP.get() or metrics.shop_label(meta.get("retailer"), url))
        for attempt in range(self.retries + 1):
            sent = self._wait_turn(host, interval)
            if self.trace is not None:
                self.trace.append((host, sent))
            try:
                got = self._exchange(url, requested or url)
                last_exc = None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_exc, got = exc, None
            except requests.RequestException as exc:  # invalid URL, an undecodable body, …
                return FetchResult(
                    url=url,
                    error_kind="invalid_url",
                    fetched_at=_now(),
                    error=f"cannot request {url}: {exc}",
                    attempts=attempt + 1,
                )
            finally:
                latency.observe(time.monotonic() - sent)
            if isinstance(got, FetchResult):  # refused, too large, too slow: final, never retried
                return replace(got, attempts=attempt + 1)
            retry_after = None
            if got is not None:
                resp, body = got
                fetched = _now()
                sha = self._archive(resp, body, url, fetched, meta, attempt)
                if resp.status_code not in RETRY_STATUSES or attempt == self.retries:
                    return self._finish(url, resp, body, fetched, sha, attempt + 1, meta)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            elif attempt == self.retries:
                break
            self._sleep_backoff(attempt, retry_after)
        assert last_exc is not None
        return self._failed(url, last_exc, attempt + 1)

    def _failed(self, url: str, exc: BaseException, attempts: int) -> FetchResult:
        """The timeout / unreachable result after the last attempt failed with `exc`."""
        tries = f"after {attempts} attempt(s)"
        if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectTimeout):
            kind, error = "timeout", f"no response from {url} within {self.timeout:g}s {tries}"
        else:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}/"
            kind, error = "unreachable", f"cannot connect to {origin} ({_reason(exc)}) {tries} fetching {url}"
        return FetchResult(url=url, error_kind=kind, fetched_at=_now(), attempts=attempts, error=error)

    def _exchange(self, url: str, requested: str) -> tuple[requests.Response, bytes] | FetchResult:
        """One attempt: follow redirects (each hop checked), read the body within the cap and the deadline.

        (final response, decoded body), or a FetchResult for blocked_address / too_large / too_slow / too many
        redirects; connection failures raise requests.ConnectionError / Timeout (retried by the caller).
        """
        resp: requests.Response | None = None
        progress = [0]
        with transport.exchange(time.monotonic() + self.deadline) as ex:
            try:
                got = self._follow(url, requested, ex)
                if isinstance(got, FetchResult):
                    return got
                resp = got
                body = transport.read_body(resp, self.max_page_bytes, progress)
            except limits.BodyTooLarge as exc:
                return self._over(url, resp, "too_large", str(exc))
            except (requests.ConnectionError, requests.Timeout):
                if ex.blocked is not None:
                    return self._blocked(url, f"refused {url}: {ex.blocked} (not a configured shop origin)")
                if not ex.check_expired():
                    raise
                body = b""
            finally:
                if resp is not None:
                    resp.close()
            if ex.check_expired():
                where = resp.url if resp is not None else url
                msg = (
                    f"response from {where} took longer than the {self.deadline:g}s deadline "
                    f"(PRICEINTEL_FETCH_DEADLINE): stopped after {progress[0]} decoded bytes; not kept"
                )
                return self._over(url, resp, "too_slow", msg)
        assert resp is not None  # every other way out returned or raised
        return resp, body

    def _follow(self, url: str, requested: str, ex: transport.Exchange) -> requests.Response | FetchResult:
        """Send the GET and follow redirects (each hop checked against the policy): the final streamed response,
        or the blocked_address / too-many-redirects result."""
        current, previous = url, None
        for _hop in range(limits.MAX_REDIRECTS + 1):
            verdict = self.check_url(current, requested)
            if verdict.allowed:  # the URL exactly as it will be sent (IDNA host, quoted path) must pass too
                verdict = self.check_url(requests.Request("GET", current).prepare().url or current, requested)
            if not verdict.allowed:
                return self._blocked(url, verdict.reason, previous)
            ex.require_public_peer = not verdict.trusted and not self.proxies
            resp = self.session.get(
                current,
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
                stream=True,
                headers=self._conditional_headers(url),
            )
            target = self.session.get_redirect_target(resp)
            if target is None:
                return resp
            resp.close()
            previous, current = current, urljoin(resp.url, target)
        return FetchResult(
            url=url,
            error_kind="invalid_url",
            fetched_at=_now(),
            error=f"cannot request {url}: more than {limits.MAX_REDIRECTS} redirects (last to {current})",
        )

    def _over(self, url: str, resp: requests.Response | None, kind: str, error: str) -> FetchResult:
        """A too_large / too_slow result: the status and headers when they came, never the body."""
        return FetchResult(
            url=url,
            status=resp.status_code if resp is not None else None,
            headers=dict(resp.headers) if resp is not None else {},
            error_kind=kind,
            error=error,
            fetched_at=_now(),
            final_url=resp.url if resp is not None else None,
        )

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
        self,
        url: str,
        resp: requests.Response,
        body: bytes,
        fetched: datetime,
        sha: str | None,
        attempts: int,
        meta: dict,
    ) -> FetchResult:
        """Final result: a 304 served from the cached copy, a 200 remembered, rendered when asked."""
        if resp.status_code == 304 and self.conditional:
            with self._validators_lock:
                known = self._validators.get(url)
            if known is not None:
                cached = (
                    known[3]
                    if known[3] is not None
                    else (self.archive.get(known[2]) if self.archive is not None and known[2] else b"")
                )
                return FetchResult(
                    url=url,
                    status=304,
                    headers=dict(resp.headers),
                    body=cached,
                    fetched_at=fetched,
                    sha256=known[2],
                    attempts=attempts,
                    not_modified=True,
                    final_url=resp.url,
                )
        result = self._result(url, resp, body, fetched, sha, attempts)
        if self.conditional and resp.status_code == 200:
            etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            if etag or modified:
                keep = None if self.archive is not None and sha else body
                with self._validators_lock:
                    self._validators[url] = (etag, modified, sha, keep)
        if self.render and result.ok and "html" in resp.headers.get("Content-Type", "html"):
            from priceintel.scrape.render import RenderBlocked, RenderError

            try:
                result = self._rendered(result, meta)
            except RenderBlocked as exc:
                return replace(result, body=b"", error_kind="blocked_address", error=str(exc))
            except limits.BodyTooLarge as exc:
                return replace(result, body=b"", error_kind="too_large", error=str(exc))
            except RenderError as exc:
                return replace(result, error_kind="render_failed", error=str(exc))
        return result

    def _rendered(self, result: FetchResult, meta: dict) -> FetchResult:
        """Re-load a page in headless Chromium (Playwright) and return the DOM after its scripts ran.

        Every request of the browser is held to this fetcher's outbound policy (as it stands in the caller)."""
        from priceintel.scrape.render import render_page

        policies = self.policies()
        target = result.final_url or result.url

        def allowed(u: str) -> str | None:
            """None when the browser may request `u`, else why not."""
            verdict = combine(policies, u, target)
            return None if verdict.allowed else verdict.reason

        with self._render_lock:
            if self._renderer is None:
                from priceintel.scrape.render import Renderer

                self._renderer = Renderer(self.chromium, user_agent=self.user_agent, proxy=self.proxies.get("http"))
            body = render_page(
                self._renderer,
                target,
                timeout=min(self.timeout, self.deadline),
                allow=allowed,
                limit=self.max_page_bytes,
            )
        fetched = _now()
        sha = None
        if self.archive is not None:
            extra = dict(meta, rendered=True)
            sha = self.archive.put(result.url, result.status or 200, result.headers, body, fetched, **extra)
        return replace(result, body=body, sha256=sha or result.sha256, fetched_at=fetched, rendered=True)

    def _archive(
        self, resp: requests.Response, body: bytes, url: str, fetched: datetime, meta: dict, attempt: int
    ) -> str | None:
        """Archive one response body; return its SHA-256 (None without an archive)."""
        if self.archive is None:
            return None
        extra = dict(meta)
        extra["attempt"] = attempt + 1
        if resp.url != url:
            extra["final_url"] = resp.url
        if resp.status_code == 304 and self.conditional:  # the body this 304 confirms (re-extraction reads it)
            with self._validators_lock:
                known = self._validators.get(url)
            if known is not None and known[2]:
                extra["not_modified_of"] = known[2]
        return self.archive.put(url, resp.status_code, dict(resp.headers), body, fetched, **extra)

    def _result(
        self, url: str, resp: requests.Response, body: bytes, fetched: datetime, sha: str | None, attempts: int
    ) -> FetchResult:
        """FetchResult for a final response (HTTP >= 400 flagged as http_error)."""
        status = resp.status_code
        kind = err = None
        if status >= 400:
            kind, err = "http_error", http_error_message(status, resp.reason, url)
        return FetchResult(
            url=url,
            status=status,
            headers=dict(resp.headers),
            body=body,
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

        `meta` (one dict, or one dict per URL) is stored with each archived response. The caller's scope
        (`scoped`) holds in the workers too.
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
                futures = [pool.submit(contextvars.copy_context().run, run, i) for i in range(len(urls))]
                for fut in futures:
                    fut.result()
        return [r for r in results if r is not None]
