"""Guards of the apps' sign-in (pure logic, no Tornado; priceintel.apps.login applies them to every attempt).

- `SignInThrottle`: every attempt is counted BEFORE its password is checked (a reservation taken under a lock),
  so parallel attempts cannot slip past the limit. Per (username, client address) the first FREE_FAILURES
  failures are free, then each further one doubles the wait (BASE_DELAY, 2x, 4x … up to MAX_DELAY): a
  stranger guessing from another address slows only himself, never locks the user out. Per client address
  (an IPv6 client by its /64) at most MAX_FAILURES_PER_ADDRESS failures across all usernames within
  ADDRESS_WINDOW seconds (password spraying).
- `CheckGate`: at most PRICEINTEL_SIGNIN_CONCURRENCY (default 2) argon2 checks at once (each takes ~64 MiB and
  a core for ~0.1-0.2 s) and MAX_WAITING_CHECKS more queued; beyond that an attempt is refused at once (503).
  A refused attempt still counts in the throttle (it was reserved first), so a burst from one address meets
  the address limit (429) after MAX_FAILURES_PER_ADDRESS attempts whether they were checked or refused.
- `client_address_and_scheme`: behind a reverse proxy listed in PRICEINTEL_TRUSTED_PROXIES the client is the
  rightmost untrusted X-Forwarded-For hop and the scheme X-Forwarded-Proto; from anyone else both headers are
  ignored.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from priceintel.config import ConfigError

#: failed sign-ins per (username, address) before the delays start
FREE_FAILURES = 5
#: the first delay (s); it doubles with every further failure, up to MAX_DELAY
BASE_DELAY = 1.0
MAX_DELAY = 900.0
#: a (username, address) pair's failures are forgotten after this long without a new one (s)
FORGET_AFTER = 3600.0
#: failed sign-ins per client address across usernames within ADDRESS_WINDOW seconds
MAX_FAILURES_PER_ADDRESS = 20
ADDRESS_WINDOW = 300.0
#: argon2 checks allowed at once (environment PRICEINTEL_SIGNIN_CONCURRENCY), and queued behind them
MAX_CONCURRENT_CHECKS = 2
MAX_WAITING_CHECKS = 6
#: seconds a refused-as-busy client is told to wait
BUSY_RETRY_AFTER = 1
#: (username, address) pairs kept at most; the stalest go first beyond that
MAX_PAIRS = 100_000
TRUSTED_PROXIES_ENV = "PRICEINTEL_TRUSTED_PROXIES"
CONCURRENCY_ENV = "PRICEINTEL_SIGNIN_CONCURRENCY"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Ticket:
    """One reserved attempt: whose, from where, when."""

    user: str
    address: str
    at: float


class SignInThrottle:
    """Failed sign-ins with growing delays per (user, address) and a sliding-window limit per address."""

    def __init__(
        self,
        free: int = FREE_FAILURES,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        per_address: int = MAX_FAILURES_PER_ADDRESS,
        window: float = ADDRESS_WINDOW,
        forget_after: float = FORGET_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.free, self.base_delay, self.max_delay = free, base_delay, max_delay
        self.per_address, self.window, self.forget_after = per_address, window, forget_after
        self.clock = clock
        self._pairs: dict[tuple[str, str], tuple[int, float]] = {}  # (user, address) -> (failures, latest)
        self._addresses: dict[str, list[float]] = {}  # address -> times of its failures in the window
        self._lock = threading.Lock()
        self._pruned = clock()

    def delay(self, failures: int) -> float:
        """Seconds between the latest of `failures` failures and the next allowed attempt."""
        if failures < self.free:
            return 0.0
        return min(self.base_delay * 2.0 ** min(failures - self.free, 40), self.max_delay)

    def _wait(self, user: str, address: str, now: float) -> float:
        failures, latest = self._pairs.get((user, address), (0, now))
        wait = latest + self.delay(failures) - now if now - latest < self.forget_after else 0.0
        recent = [t for t in self._addresses.get(address, ()) if now - t < self.window]
        if recent:
            self._addresses[address] = recent
        else:
            self._addresses.pop(address, None)
        if len(recent) >= self.per_address:  # wait until enough of them leave the window
            wait = max(wait, recent[len(recent) - self.per_address] + self.window - now)
        return max(wait, 0.0)

    def reserve(self, user: str, address: str) -> tuple[float, Ticket | None]:
        """Count one attempt of `user` from `address` as failed until it succeeds: (0, ticket); or, when the
        pair or the address must wait, (seconds to wait, None) and nothing is counted."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            wait = self._wait(user, address, now)
            if wait > 0:
                return wait, None
            failures, latest = self._pairs.get((user, address), (0, now))
            if now - latest >= self.forget_after:
                failures = 0
            self._pairs[(user, address)] = (failures + 1, now)
            self._addresses.setdefault(address, []).append(now)
            return 0.0, Ticket(user, address, now)

    def _unreserve_address(self, ticket: Ticket) -> None:
        times = self._addresses.get(ticket.address, [])
        if ticket.at in times:
            times.remove(ticket.at)

    def succeeded(self, ticket: Ticket) -> None:
        """The attempt signed in: the pair's failures are cleared and the attempt is uncounted."""
        with self._lock:
            self._pairs.pop((ticket.user, ticket.address), None)
            self._unreserve_address(ticket)

    def clear(self) -> None:
        """Forget every failure."""
        with self._lock:
            self._pairs.clear()
            self._addresses.clear()

    def _prune(self, now: float) -> None:
        """Drop forgotten pairs and empty windows (at most once a minute), and the stalest pairs over MAX_PAIRS."""
        if now - self._pruned < 60 and len(self._pairs) <= MAX_PAIRS:
            return
        self._pruned = now
        self._pairs = {k: v for k, v in self._pairs.items() if now - v[1] < self.forget_after}
        if len(self._pairs) > MAX_PAIRS:
            keep = sorted(self._pairs.items(), key=lambda kv: kv[1][1])[-MAX_PAIRS // 2 :]
            self._pairs = dict(keep)
        self._addresses = {a: ts for a, ts in self._addresses.items() if ts and now - ts[-1] < self.window}


class Busy(Exception):
    """Too many password checks running and queued: the attempt is refused without one."""


class CheckGate:
    """Runs password checks on a pool of `running` threads (so at most that many argon2 checks at once) with at
    most `waiting` more queued; a check beyond those raises Busy at once instead of queueing without bound."""

    def __init__(self, running: int | None = None, waiting: int = MAX_WAITING_CHECKS):
        self.running = running or concurrency()
        self.waiting = waiting
        self._admitted = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.running, thread_name_prefix="signin-check")

    @property
    def admitted(self) -> int:
        """Checks running or queued now."""
        return self._admitted

    async def run(self, fn: Callable[[], Any]) -> Any:
        """fn() on the check pool, or Busy when `running` + `waiting` checks are already admitted."""
        with self._lock:
            if self._admitted >= self.running + self.waiting:
                raise Busy()
            self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        finally:
            with self._lock:
                self._admitted -= 1


def concurrency() -> int:
    """PRICEINTEL_SIGNIN_CONCURRENCY: argon2 checks at once (default MAX_CONCURRENT_CHECKS); ConfigError when
    it is not a whole number from 1 to 64."""
    raw = (os.environ.get(CONCURRENCY_ENV) or "").strip()
    if not raw:
        return MAX_CONCURRENT_CHECKS
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ConfigError(f"environment variable {CONCURRENCY_ENV}={raw!r} is not a whole number from 1 to 64")
    return int(raw)


def trusted_proxies() -> tuple[Network, ...]:
    """The networks of PRICEINTEL_TRUSTED_PROXIES (comma-separated addresses or CIDRs; none when unset);
    ConfigError naming a malformed entry."""
    return parse_networks(os.environ.get(TRUSTED_PROXIES_ENV) or "")


@functools.lru_cache(maxsize=8)
def parse_networks(text: str) -> tuple[Network, ...]:
    """'10.0.0.5, 192.168.0.0/16, ::1' as networks (a bare address is a one-address network)."""
    nets = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"environment variable {TRUSTED_PROXIES_ENV}: {item!r} is not an IP address or network "
                "(use comma-separated addresses or CIDRs, e.g. 127.0.0.1,10.0.0.0/8)"
            ) from None
    return tuple(nets)


def parse_address(text: str) -> Address | None:
    """An address from a peer or X-Forwarded-For hop ('1.2.3.4', '1.2.3.4:80', '[::1]:80', '::1'), IPv4-mapped
    IPv6 as IPv4; None when it is not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: Address | None, nets: tuple[Network, ...]) -> bool:
    return ip is not None and any(ip.version == n.version and ip in n for n in nets)


def client_address_and_scheme(
    peer: str, scheme: str, forwarded_for: str | None, forwarded_proto: str | None, trusted: tuple[Network, ...]
) -> tuple[str, str]:
    """(client address, scheme) of a request whose TCP peer is `peer`. Only when the peer is a trusted proxy:
    the rightmost X-Forwarded-For hop that is not itself a trusted proxy (hops to its left are whatever the
    client sent, never believed), and the last X-Forwarded-Proto value when it is http or https."""
    peer_ip = parse_address(peer)
    if not _trusted(peer_ip, trusted):
        return peer, scheme
    client = str(peer_ip)
    for hop in reversed([h for h in (forwarded_for or "").split(",") if h.strip()]):
        ip = parse_address(hop)
        if ip is None:  # garbage where an address belongs: stop at the last proxy we trust
            break
        client = str(ip)
        if not _trusted(ip, trusted):
            break
    proto = (forwarded_proto or "").split(",")[-1].strip().lower()
    return client, proto if proto in ("http", "https") else scheme


def address_key(address: str) -> str:
    """The throttle key of a client address: an IPv4 address itself, an IPv6 address by its /64 (one
    subscriber usually holds a whole /64)."""
    ip = parse_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip) if ip is not None else address
