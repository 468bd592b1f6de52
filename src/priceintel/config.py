"""Settings (environment variables, `.env`) and project paths: the one module that reads them."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from priceintel import PriceIntelError, __version__


class ConfigError(PriceIntelError):
    """A setting is missing or malformed; the message names the setting and where it came from."""


def _find_root() -> Path:
    """Project root: $PRICEINTEL_HOME, else the checkout that holds this package (src layout)."""
    env = os.environ.get("PRICEINTEL_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pipeline.yaml").exists() and (parent / "src").is_dir():
            return parent
    return Path.cwd().resolve()


PROJ_ROOT = _find_root()


def _load_dotenv() -> None:
    """Read `.env` at the project root once, without overriding variables already set."""
    env_file = PROJ_ROOT / ".env"
    if env_file.exists():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)


_load_dotenv()


def data_dir() -> Path:
    """Root of all data (raw archive, interim products, embedded database)."""
    return Path(os.environ.get("PRICEINTEL_DATA_DIR", PROJ_ROOT / "data")).resolve()


def raw_dir() -> Path:
    """Archive of fetched pages: append-only, never modified."""
    return data_dir() / "raw"


def interim_dir() -> Path:
    """Task products between pipeline stages."""
    return data_dir() / "interim"


def pg_dir() -> Path:
    """Data directory of the embedded PostgreSQL server."""
    return Path(os.environ.get("PRICEINTEL_PGDATA", data_dir() / "pg")).resolve()


def demo_dir() -> Path:
    """Generated demo world (catalogue, price paths, sales, ground truth)."""
    return data_dir() / "demo"


def clock_now() -> datetime:
    """Now, in UTC, on the live source's clock: $PRICEINTEL_CLOCK (a YYYY-MM-DD day: that day at the real time of
    day; or an ISO date-time) when set, for a backfill or a simulated calendar; else the real time."""
    real = datetime.now(UTC)
    value = (os.environ.get("PRICEINTEL_CLOCK") or "").strip()
    if not value:
        return real
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), real.timetz())
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"environment variable PRICEINTEL_CLOCK={value!r} is not a date (YYYY-MM-DD) or an ISO date-time"
        ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def reports_dir() -> Path:
    """Executed notebooks, exports, benchmarks and screenshots."""
    return Path(os.environ.get("PRICEINTEL_REPORTS_DIR", PROJ_ROOT / "reports")).resolve()


def shared_data_dir() -> Path:
    """Public benchmark datasets, read in place: $PRICEINTEL_SHARED_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get("PRICEINTEL_SHARED_DATA")
    return Path(env).resolve() if env else (PROJ_ROOT.parent / "shared" / "data").resolve()


def _num_env(name: str, default: float, kind: type = float) -> Any:
    """A number from the environment (`kind` float or int); the default when unset; ConfigError when malformed."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"environment variable {name}={raw!r} is not {what}") from None


def _float_env(name: str, default: float) -> float:
    return float(_num_env(name, default, float))


def _int_env(name: str, default: int) -> int:
    return int(_num_env(name, default, int))


@dataclass(frozen=True)
class Settings:
    """Runtime settings, read from the environment (and `.env`)."""

    database_url: str | None = None
    user_agent: str = "priceintel-bot/0.1 (+https://github.com/priceintel)"
    http_proxy: str | None = None
    request_timeout: float = 10.0
    rate_limit_per_host: float = 0.0  # requests per second per host; 0 = unlimited
    extra: dict = field(default_factory=dict)


def get_settings() -> Settings:
    """Current settings from the environment; raises ConfigError naming a bad variable."""
    url = os.environ.get("DATABASE_URL") or None
    if url is not None and not url.startswith(("postgresql", "postgres://")):
        raise ConfigError(
            f"DATABASE_URL={url!r} is not a PostgreSQL URL (expected postgresql://user:pass@host:port/db)"
        )
    return Settings(
        database_url=url,
        user_agent=os.environ.get("PRICEINTEL_USER_AGENT", Settings.user_agent),
        http_proxy=os.environ.get("PRICEINTEL_HTTP_PROXY") or None,
        request_timeout=_float_env("PRICEINTEL_REQUEST_TIMEOUT", 10.0),
        rate_limit_per_host=_float_env("PRICEINTEL_RATE_LIMIT", 0.0),
    )


@dataclass(frozen=True)
class NotifySettings:
    """Where alerts go (all optional; an unset channel is skipped), read from PRICEINTEL_* variables."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_security: str = "none"  #: none | starttls | ssl
    smtp_user: str | None = None
    smtp_password: str | None = None
    email_from: str = "priceintel@localhost"
    email_to: tuple[str, ...] = ()
    slack_webhook_url: str | None = None
    webhook_url: str | None = None
    retries: int = 3
    backoff: float = 0.5  #: seconds before the first retry; doubles each attempt
    timeout: float = 10.0
    rules_file: Path | None = None  #: PRICEINTEL_ALERT_RULES, default config/alert_rules.yaml

    @property
    def channels(self) -> list[str]:
        """The channels that have a target configured."""
        out = []
        if self.smtp_host and self.email_to:
            out.append("email")
        if self.slack_webhook_url:
            out.append("slack")
        if self.webhook_url:
            out.append("webhook")
        return out


def notify_settings() -> NotifySettings:
    """Alert delivery settings from the environment / `.env`; raises ConfigError naming a bad variable."""
    security = (os.environ.get("PRICEINTEL_SMTP_SECURITY") or "none").strip().lower()
    if security not in ("none", "starttls", "ssl"):
        raise ConfigError(f"environment variable PRICEINTEL_SMTP_SECURITY={security!r} must be none, starttls or ssl")
    for name in ("PRICEINTEL_SLACK_WEBHOOK_URL", "PRICEINTEL_ALERT_WEBHOOK_URL"):
        value = os.environ.get(name) or ""
        if value and not value.startswith(("http://", "https://")):
            raise ConfigError(f"environment variable {name}={value!r} is not an http(s) URL")
    to = tuple(a.strip() for a in (os.environ.get("PRICEINTEL_ALERT_EMAIL_TO") or "").split(",") if a.strip())
    rules = os.environ.get("PRICEINTEL_ALERT_RULES")
    return NotifySettings(
        smtp_host=os.environ.get("PRICEINTEL_SMTP_HOST") or None,
        smtp_port=_int_env("PRICEINTEL_SMTP_PORT", 465 if security == "ssl" else 25),
        smtp_security=security,
        smtp_user=os.environ.get("PRICEINTEL_SMTP_USER") or None,
        smtp_password=os.environ.get("PRICEINTEL_SMTP_PASSWORD") or None,
        email_from=os.environ.get("PRICEINTEL_ALERT_EMAIL_FROM") or NotifySettings.email_from,
        email_to=to,
        slack_webhook_url=os.environ.get("PRICEINTEL_SLACK_WEBHOOK_URL") or None,
        webhook_url=os.environ.get("PRICEINTEL_ALERT_WEBHOOK_URL") or None,
        retries=_int_env("PRICEINTEL_NOTIFY_RETRIES", 3),
        backoff=_float_env("PRICEINTEL_NOTIFY_BACKOFF", 0.5),
        timeout=_float_env("PRICEINTEL_NOTIFY_TIMEOUT", 10.0),
        rules_file=Path(rules).expanduser().resolve() if rules else PROJ_ROOT / "config" / "alert_rules.yaml",
    )


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the working tree when there is one."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"], cwd=PROJ_ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+g{sha}" if sha else __version__
