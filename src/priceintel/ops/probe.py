"""`priceintel probe`: is the workbench up? For cron or a monitoring service.

Each URL is fetched once (GET, no redirects, a timeout): a bare server URL gets `/ready` (both the API and the
apps serve `/ready`, which also checks their database, and `/health`, which checks the process only; `--live`
asks for `/health`), a URL with a path is fetched as given. The exit code is 0 when every URL answered 2xx in
time and 1 otherwise, so `priceintel probe URL || page-someone` works; one line per URL says what was seen.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import requests

from priceintel import PriceIntelError, config

#: what `priceintel probe` checks when given no URL: the API and the apps on this machine, default ports
DEFAULT_URLS = ("http://127.0.0.1:8000", "http://127.0.0.1:8866")


@dataclass(frozen=True)
class Probe:
    """One URL's outcome: up (2xx in time), HTTP status (None when no answer), milliseconds, and why not up."""

    url: str
    up: bool
    status: int | None
    ms: float
    reason: str = ""

    def line(self) -> str:
        """'up    URL  200 in 12 ms' or 'DOWN  URL  reason'."""
        if self.up:
            return f"up    {self.url}  {self.status} in {self.ms:.0f} ms"
        return f"DOWN  {self.url}  {self.reason}"


def target(url: str, live: bool = False) -> str:
    """The URL to fetch: a bare http(s) server URL gets /ready (/health when `live`); PriceIntelError otherwise."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as err:
        raise PriceIntelError(f"probe: {config.mask_url(url)} is not a URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PriceIntelError(f"probe: {config.mask_url(url)} is not an http(s) URL (e.g. http://127.0.0.1:8000)")
    if parts.path in ("", "/"):
        return url.strip().rstrip("/") + ("/health" if live else "/ready")
    return url.strip()


def probe(url: str, timeout: float = 5.0, live: bool = False) -> Probe:
    """Fetch one URL once: up when it answers 2xx within `timeout` seconds (redirects are not followed: a
    health endpoint that redirects is misconfigured)."""
    url = target(url, live)
    shown = config.redact(url)
    start = time.perf_counter()
    try:
        resp = requests.get(url, timeout=timeout, allow_redirects=False, headers={"Accept": "application/json"})
    except requests.Timeout:
        return Probe(shown, False, None, _ms(start), f"no answer within {timeout:g} s")
    except requests.ConnectionError as err:
        why = "connection refused" if "refused" in str(err).lower() else f"cannot connect ({type(err).__name__})"
        return Probe(shown, False, None, _ms(start), why)
    except requests.RequestException as err:
        return Probe(shown, False, None, _ms(start), config.redact(f"{type(err).__name__}: {err}"))
    ms = _ms(start)
    if 200 <= resp.status_code < 300:
        return Probe(shown, True, resp.status_code, ms)
    detail = _status_detail(resp)
    return Probe(shown, False, resp.status_code, ms, f"HTTP {resp.status_code}{detail}")


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _status_detail(resp: requests.Response) -> str:
    """': not ready' etc. from a JSON health answer, else nothing."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    status = body.get("status") if isinstance(body, dict) else None
    return f": {str(status)[:80]}" if status else ""


def probe_all(urls: list[str], timeout: float = 5.0, live: bool = False) -> list[Probe]:
    """Every URL probed (the bad ones refused before any is fetched)."""
    targets = [target(u, live) for u in urls]
    return [probe(u, timeout) for u in targets]


def cmd_probe(args: argparse.Namespace) -> int:
    """Print one line per URL (or JSON); exit 0 when all are up, 1 when any is down."""
    if args.timeout <= 0:
        raise PriceIntelError(f"probe: --timeout {args.timeout:g} must be more than 0 seconds")
    results = probe_all(args.urls or list(DEFAULT_URLS), args.timeout, args.live)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2), flush=True)
    else:
        for r in results:
            print(r.line(), flush=True)
    return 0 if all(r.up for r in results) else 1


def add_parsers(sub) -> None:
    """`priceintel probe`."""
    p = sub.add_parser(
        "probe",
        help="check that the API and the apps answer (exit 1 when one is down; for cron or monitoring)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument(
        "urls",
        nargs="*",
        metavar="URL",
        help=f"server or health URL (default: {' '.join(DEFAULT_URLS)}, the local API and apps)",
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer (default 5)")
    p.add_argument("--live", action="store_true", help="ask /health (the process) instead of /ready (+ database)")
    p.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    p.set_defaults(func=cmd_probe)
