"""Who calls the API and what they may do: an API key (its scope) or a signed-in user (their role).

Levels, weakest first: `read` (GET), `write` (also data actions: matches, alerts, watches, imports), `admin`
(also API keys). A key's scope is its level; a user's role maps admin -> admin, analyst -> write,
viewer -> read. `label` names the caller in every write it makes ("key:<name>" or "user:<name>").
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LEVELS = ("read", "write", "admin")
ROLE_LEVEL = {"viewer": "read", "analyst": "write", "admin": "admin"}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    kind: str  # "key" | "user"
    ident: str  # key_id or user id: what the rate limit counts by
    name: str
    level: str
    tenant: str  # whose data it reaches (`db.tenancy`)

    @property
    def label(self) -> str:
        """Who did it, as stored beside a write."""
        return f"{self.kind}:{self.name}"

    def may(self, level: str) -> bool:
        """Whether the caller's level reaches `level`."""
        return LEVELS.index(self.level) >= LEVELS.index(level)


class RateLimiter:
    """A token bucket per caller: `per_minute` requests a minute on average, at most `per_minute` at once."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic, max_callers: int = 100_000):
        self.per_minute = per_minute
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, time)
        self._lock = threading.Lock()

    def take(self, caller: str, per_minute: float | None = None) -> float:
        """Take one request: 0.0 when allowed, else the seconds until the next one is (nothing is taken).
        `per_minute` overrides the limiter's rate for this caller (their plan's)."""
        per_minute = self.per_minute if per_minute is None else per_minute
        if per_minute <= 0:
            return 0.0
        rate = per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(caller, (per_minute, now))
            tokens = min(per_minute, tokens + (now - then) * rate)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_callers:  # forget the full buckets (idle callers)
                    full = [k for k, (t, w) in self._buckets.items() if t + (now - w) * rate >= per_minute]
                    for k in full:
                        self._buckets.pop(k, None)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / rate


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
