"""What one fetch gave: `FetchResult`, the error kinds, and small helpers shared by the fetcher's parts."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["ERROR_KINDS", "FetchResult", "describe", "parse_retry_after"]

#: FetchResult.error_kind values (None = a response to read; http_error still has one)
ERROR_KINDS = (
    "unreachable",  # cannot connect (refused, host not found, reset) after the retries
    "timeout",  # no byte for `timeout` seconds after the retries
    "robots_disallowed",  # robots.txt disallows the URL (never requested)
    "invalid_url",  # not an http(s) URL, too many redirects, an undecodable body
    "http_error",  # HTTP status >= 400 (the response is kept)
    "render_failed",  # headless Chromium could not render the page
    "too_large",  # the decoded body is over max_page_bytes (nothing kept)
    "too_slow",  # the response took longer than the deadline (nothing kept)
    "blocked_address",  # the URL or a redirect hop is refused by the outbound policy (never requested)
)


@dataclass(frozen=True)
class FetchResult:
    """Outcome of one GET: the final response (or why there is none) and its archive address."""

    url: str
    status: int | None = None
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    fetched_at: datetime | None = None
    sha256: str | None = None
    error_kind: str | None = None  #: None or one of ERROR_KINDS
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


def http_error_message(status: int, reason: str | None, url: str) -> str:
    """What a final error response (HTTP >= 400) is reported as: 'HTTP 503 Service Unavailable for URL'."""
    return f"HTTP {status} {reason or ''} for {url}".replace("  ", " ")


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
