"""Outbound policy: which URLs the scraper may request, so a hostile page cannot point it at internal services.

Every request the `Fetcher` sends (each redirect hop, robots.txt, sitemaps, discovered links) and every request
of the rendering browser is checked first:

* a URL on a *trusted origin* (scheme + host + port of a configured shop, e.g. the demo shops on
  `http://127.0.0.1:8701`) is allowed, whatever address it is on: only that exact origin, not other ports or
  other loopback addresses;
* a *scoped* policy (a crawl of one shop) allows other URLs only on the shop's hosts: its base host, with or
  without `www.`, its subdomains, and the `hosts:` the shop declares in shops.yaml (CDN, regional domains);
* every address the host resolves to (`socket.getaddrinfo`) must be public: loopback, private (RFC 1918,
  unique-local), link-local, multicast, reserved, unspecified, shared (CGNAT) and cloud-metadata addresses
  (169.254.169.254, fd00:ec2::254, …) are refused.

A refusal is the fetch error `blocked_address`, its message naming the URL and the reason. Without a policy the
Fetcher uses `OutboundPolicy.default()`: any public host, and a loopback URL handed to `Fetcher.get` by its caller
(a test server, a notebook's local shop) for that exact origin only; redirects and everything else stay public.
After the connection is made the Fetcher checks the peer address again (a host that resolved to a public address
and then to an internal one is refused), except through a configured proxy, which resolves names itself.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

__all__ = [
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "OutboundPolicy",
    "Verdict",
    "address_problem",
    "combine",
    "origin_of",
    "resolve",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: cloud instance-metadata and platform endpoints (some of them on public-looking addresses)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle …
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
    )
)
#: host names of metadata services (refused by name, before any lookup)
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CACHE_TTL = 30.0
_CACHE_MAX = 4096


class Verdict(NamedTuple):
    """The answer for one URL: allowed or not (with the reason), and whether a non-public address is fine."""

    allowed: bool
    reason: str = ""
    trusted: bool = False  #: allowed as a configured origin: its address may be non-public


def address_problem(ip: IPAddress) -> str | None:
    """Why an address must not be requested ('a loopback address', 'a cloud metadata address', …), None if public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    checks = (
        (ip in METADATA_ADDRESSES, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((why for bad, why in checks if bad), None)


def _literal(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal (brackets and an IPv6 zone allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


_cache: dict[tuple[str, int], tuple[float, tuple[IPAddress, ...]]] = {}
_cache_lock = threading.Lock()


def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address `host` resolves to (an IP literal is itself); () when it does not resolve. Cached 30 s."""
    ip = _literal(host)
    if ip is not None:
        return (ip,)
    key, now = (host, port), time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < _CACHE_TTL:
        return hit[1]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    addrs = tuple(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (now, addrs)
    return addrs


def _parts(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL as urllib3 connects to it (host lower-case, no brackets, no trailing
    dot); None when malformed."""
    try:
        parsed = parse_url(url)
        port = parsed.port
    except (LocationParseError, ValueError):
        return None
    scheme = (parsed.scheme or "").lower()
    host = (parsed.host or "").lower().strip("[]").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _ambiguous(url: str, parts: tuple[str, str, int]) -> bool:
    """Whether urllib.parse reads another host or port than urllib3 does (`http://a\\@b/`): the crawler builds URLs
    with the one and requests sends them with the other, so such a URL is refused rather than guessed at."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return True
    host = (split.hostname or "").rstrip(".")
    if not host.isascii():  # urllib3 gives the IDNA form; both name the same host
        return False
    return (host, port if port is not None else _DEFAULT_PORTS[parts[0]]) != parts[1:]


def origin_of(url: str) -> str | None:
    """`scheme://host:port` (port always written, IPv6 in brackets) of an http(s) URL; None when malformed."""
    parts = _parts(url)
    if parts is None:
        return None
    scheme, host, port = parts
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _host_matches(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` is one of the patterns (`name`, or `*.name` for any subdomain of name)."""
    for pat in patterns:
        if pat.startswith("*.") and host.endswith(pat[1:]):
            return True
        if host == pat:
            return True
    return False


def _is_loopback_host(host: str, port: int) -> bool:
    """Whether every address of `host` is a loopback address (`localhost`, 127.0.0.1, ::1)."""
    addrs = resolve(host, port)
    return bool(addrs) and all(address_problem(a) == "a loopback address" for a in addrs)


@dataclass(frozen=True)
class OutboundPolicy:
    """Which URLs may be requested (see the module docstring).

    `origins`: trusted `scheme://host:port` origins (any address). `hosts`: host patterns (`name`, `*.name`)
    allowed on public addresses. `scoped`: only origins and hosts (else any public host). `trust_requested`:
    the loopback origin of the URL a caller hands to `Fetcher.get` is trusted for that request.
    """

    origins: frozenset[str] = field(default_factory=frozenset)
    hosts: frozenset[str] = field(default_factory=frozenset)
    scoped: bool = True
    trust_requested: bool = False

    @classmethod
    def default(cls) -> OutboundPolicy:
        """A Fetcher's policy when none is given: public hosts, and loopback URLs its caller names directly."""
        return cls(scoped=False, trust_requested=True)

    @classmethod
    def for_sites(cls, urls: Iterable[str], hosts: Iterable[str] = ()) -> OutboundPolicy:
        """A scoped policy for shops at `urls` (base URLs: their origins trusted, their host names and subdomains
        allowed) plus declared `hosts` (`name`, `*.name`, or an origin URL `http://10.0.0.5:8080` to trust)."""
        origins: set[str] = set()
        patterns: set[str] = set()
        for url in urls:
            parts = _parts(url)
            origin = origin_of(url)
            if parts is None or origin is None:
                continue
            origins.add(origin)
            host = parts[1]
            if _literal(host) is None:
                bare = host.removeprefix("www.")
                patterns |= {bare, "www." + bare, "*." + bare}
        for entry in hosts:
            entry = str(entry).strip().lower().rstrip(".")
            if "://" in entry:
                origin = origin_of(entry)
                if origin is not None:
                    origins.add(origin)
            elif entry:
                patterns.add(entry)
        return cls(origins=frozenset(origins), hosts=frozenset(patterns), scoped=True)

    def describe(self) -> str:
        """The allowed origins and hosts, for messages."""
        allowed = sorted(self.origins) + sorted(self.hosts)
        return ", ".join(allowed) if allowed else "none"

    def check(self, url: str, requested: str | None = None) -> Verdict:
        """Whether `url` may be requested (`requested`: the URL the caller asked for, when `url` is a redirect hop)."""
        parts = _parts(url)
        if parts is None:
            return Verdict(False, f"refused {url}: not an http(s) URL with a host")
        if _ambiguous(url, parts):
            return Verdict(False, f"refused {url}: ambiguous URL (parsers disagree on its host or port)")
        scheme, host, port = parts
        origin = origin_of(url)
        if origin in self.origins:
            return Verdict(True, trusted=True)
        if self.trust_requested and requested is not None and origin == origin_of(requested):
            if _is_loopback_host(host, port):
                return Verdict(True, trusted=True)
        if host in METADATA_HOSTS:
            return Verdict(False, f"refused {url}: {host} is a cloud metadata service")
        literal = _literal(host)
        if literal is not None:
            problem = address_problem(literal)
            if problem is not None:
                return Verdict(False, f"refused {url}: {host} is {problem}{self._not_configured()}")
        if self.scoped and not _host_matches(host, self.hosts):
            return Verdict(False, f"refused {url}: {host} is not one of the shop's hosts ({self.describe()})")
        for ip in resolve(host, port):
            problem = address_problem(ip)
            if problem is not None:
                return Verdict(False, f"refused {url}: {host} resolves to {ip}, {problem}{self._not_configured()}")
        return Verdict(True)

    def _not_configured(self) -> str:
        """The tail of an address refusal: which origins would have been allowed."""
        if self.origins:
            return f" (only the configured origins {', '.join(sorted(self.origins))} may be non-public)"
        return " (not a configured shop origin)"


def combine(policies: Iterable[OutboundPolicy], url: str, requested: str | None = None) -> Verdict:
    """The verdict of several policies together: allowed when each allows; trusted when each trusts."""
    trusted = True
    for policy in policies:
        verdict = policy.check(url, requested)
        if not verdict.allowed:
            return verdict
        trusted = trusted and verdict.trusted
    return Verdict(True, trusted=trusted)
