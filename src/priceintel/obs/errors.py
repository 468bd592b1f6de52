"""Error tracking with Sentry, when `SENTRY_DSN` is set and sentry-sdk is installed (`priceintel[sentry]`).

`init_sentry(service)` starts the SDK once per process: environment `SENTRY_ENVIRONMENT` (default `production`),
release `config.code_version()`, no performance traces unless `SENTRY_TRACES_SAMPLE_RATE` says so, no personal
data (`send_default_pii=False`), and every string of every event and breadcrumb `config.redact`ed before it
leaves (values under secret-looking keys masked whole). Error log records (`log.error`, `log.exception`) become
events through the SDK's logging integration, with the log ids as tags. Without a DSN, or without the SDK, it
does nothing.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from priceintel import config

__all__ = ["init_sentry", "scrub"]

log = logging.getLogger(__name__)

DSN_ENV = "SENTRY_DSN"
_SECRET_KEY = re.compile(
    r"pass(word|wd)?$|secret|token|api_?key|authorization|cookie|credential|private_key|^dsn$|signature",
    re.IGNORECASE,
)
_STATE: dict[str, Any] = {"service": None}


def scrub(value: Any, depth: int = 0) -> Any:
    """`value` with every string redacted (`config.redact`) and values under secret-looking keys masked."""
    if depth > 20:
        return value
    if isinstance(value, str):
        return config.redact(value)
    if isinstance(value, dict):
        return {
            k: config.MASK if isinstance(k, str) and _SECRET_KEY.search(k) and v else scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(v, depth + 1) for v in value)
    return value


def _before_send(event: Any, hint: Any) -> Any:
    """Redact the event; tag it with the ids of the work it happened in."""
    from priceintel.obs import logs

    tags = event.setdefault("tags", {})
    if isinstance(tags, dict):
        for key, value in logs.current().items():
            tags.setdefault(key, value)
        if _STATE["service"]:
            tags.setdefault("service", _STATE["service"])
    return scrub(event)


def _before_breadcrumb(crumb: Any, hint: Any) -> Any:
    return scrub(crumb)


def init_sentry(service: str | None = None) -> bool:
    """Start Sentry for this process when SENTRY_DSN is set; False when it is not, when sentry-sdk is missing,
    or when it was started already."""
    dsn = (os.environ.get(DSN_ENV) or "").strip()
    if not dsn or _STATE["service"] is not None:
        return False
    try:
        import sentry_sdk
    except ImportError:
        log.warning("SENTRY_DSN is set but sentry-sdk is not installed (pip install 'priceintel[sentry]')")
        return False
    try:
        rate = float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE") or 0.0)
    except ValueError:
        raise config.ConfigError("environment variable SENTRY_TRACES_SAMPLE_RATE is not a number") from None
    sentry_sdk.init(
        dsn=dsn,
        environment=os.environ.get("SENTRY_ENVIRONMENT") or "production",
        release=config.code_version(),
        traces_sample_rate=rate or None,
        send_default_pii=False,
        before_send=_before_send,
        before_breadcrumb=_before_breadcrumb,
    )
    _STATE["service"] = service or "priceintel"
    return True
