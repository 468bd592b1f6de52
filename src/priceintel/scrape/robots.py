"""robots.txt for the Fetcher: fetched once per origin, cached (failures for `dead_host_ttl`), RFC 9309 rules."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from priceintel.scrape.outbound import Verdict
from priceintel.scrape.results import FetchResult

__all__ = ["RobotsMixin"]


class RobotsMixin:
    """robots.txt handling of `priceintel.scrape.fetch.Fetcher` (which provides the attributes below)."""

    user_agent: str
    max_crawl_delay: float
    dead_host_ttl: float
    _robots: dict[str, RobotFileParser]
    _robots_locks: dict[str, threading.Lock]
    _robots_lock: threading.Lock
    _dead: dict[str, tuple[float, FetchResult]]

    def check_url(self, url: str, requested: str | None = None) -> Verdict:  # provided by Fetcher
        raise NotImplementedError

    def _request(
        self, url: str, meta: dict | None = None, interval: float | None = None, requested: str | None = None
    ) -> FetchResult:  # provided by Fetcher
        raise NotImplementedError

    def robots(self, url: str) -> RobotFileParser | None:
        """Parsed robots.txt for the URL's host (cached); None when the host cannot be reached or is refused."""
        if not self.check_url(url).allowed:
            return None
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
            res = self._request(origin + "/robots.txt", meta={"kind": "robots"}, requested=url)
            if res.status is None and res.error_kind not in (None, "blocked_address", "too_large"):
                with self._robots_lock:
                    self._dead[origin] = (time.monotonic(), res)
                return None, res
            rp = RobotFileParser(origin + "/robots.txt")
            if res.error_kind in ("too_slow", "timeout"):
                with self._robots_lock:
                    self._dead[origin] = (time.monotonic(), res)
                return None, res
            if res.status is not None and 200 <= res.status < 300 and res.error_kind is None:
                rp.parse(res.text.splitlines())
            elif res.status is not None and res.status >= 500:
                # typeshed lacks RobotFileParser.allow_all / disallow_all, which can_fetch() reads
                rp.disallow_all = True  # type: ignore[attr-defined]  # RFC 9309: server error -> complete disallow
            else:  # 4xx, a refused redirect, an oversized file: RFC 9309 "unavailable" -> no restrictions
                rp.allow_all = True  # type: ignore[attr-defined]
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
