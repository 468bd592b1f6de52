"""Container health check (Dockerfile HEALTHCHECK, compose.yaml, the ECS task definitions); standard library only
for HTTP, so it costs a fraction of a second and no import of priceintel.

    python deploy/healthcheck.py http://127.0.0.1:8000/ready     # healthy when the URL answers 2xx
    python deploy/healthcheck.py --database                       # healthy when DATABASE_URL answers SELECT 1

Exit status 0 = healthy, 1 = unhealthy (the reason on stderr, without credentials).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT = float(os.environ.get("HEALTHCHECK_TIMEOUT", "4"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not health: `/login` must serve its form, `/ready` its JSON."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def check_url(url: str) -> str | None:
    """None when url answers 2xx within TIMEOUT, else the reason."""
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=TIMEOUT) as resp:
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError) as err:
        return f"{url}: {getattr(err, 'reason', err)}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def check_database() -> str | None:
    """None when DATABASE_URL accepts a connection and `SELECT 1` (PGPASSWORD etc. honoured by libpq)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return "DATABASE_URL is not set"
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)
    try:
        with psycopg.connect(conninfo, connect_timeout=max(1, int(TIMEOUT))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"database: {type(err).__name__}"  # the message may name the host and role; the type is enough
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    problem = check_database() if argv[0] == "--database" else check_url(argv[0])
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
