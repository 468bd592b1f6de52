"""Settings (environment variables, `.env`) and project paths: the one module that reads them."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from priceintel import PriceIntelError, __version__


class ConfigError(PriceIntelError):
    """A setting is missing or malformed; the message names the setting and where it came from."""


# --- secrets in messages ---------------------------------------------------------------------
#: what a masked secret shows
MASK = "***"
#: hosts whose URL path is itself the credential (incoming webhooks): only the host and first segment are shown
WEBHOOK_HOSTS = (
    "hooks.slack.com",
    "discord.com",
    "discordapp.com",
    "webhook.office.com",
    "outlook.office.com",
    "outlook.office365.com",
    "hooks.zapier.com",
    "maker.ifttt.com",
    "api.telegram.org",
    "chat.googleapis.com",
)
#: environment variables holding secrets (their values are masked wherever they appear in a message)
SECRET_ENV = (
    "DATABASE_URL",
    "PRICEINTEL_SMTP_PASSWORD",
    "PRICEINTEL_SLACK_WEBHOOK_URL",
    "PRICEINTEL_ALERT_WEBHOOK_URL",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "SENTRY_DSN",
)
_SECRET_ENV_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIALS?)$", re.IGNORECASE)
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s'\"<>`]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^:@/?#\s]*):(.*)@(?=[^@]*$)")
_SECRET_NAME = re.compile(
    r"pass(word|wd)?$|pwd|secret|token|signature|^sig$|credential|auth|session|(^|[_.-])key$|apikey|^key$|^code$",
    re.IGNORECASE,
)
#: values shown as they are: placeholders of usage messages ("--set key=value", "postgresql://user:pass@host")
_PLACEHOLDERS = frozenset({"value", "pass", "password", "secret", "token", "key", "xxx", MASK, "…", "..."})
_KEY_VALUE = re.compile(r"(?<![\w.-])([\w.-]{1,64})=([^&\s#'\"<>,;)]+)")
_JSON_SECRET = re.compile(r"(\"([\w.-]{1,64})\"\s*:\s*\")([^\"]*)(\")")
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def _token_like(segment: str) -> bool:
    """A URL path segment that looks like a credential: 20+ letters/digits/_- mixing upper, lower and digits
    (few hyphens, unlike a product slug), or 32+ hex digits."""
    if re.fullmatch(r"[0-9a-fA-F]{32,}", segment):
        return True
    return (
        re.fullmatch(r"[A-Za-z0-9_-]{20,}", segment) is not None
        and segment.count("-") <= 2
        and any(c.isupper() for c in segment)
        and any(c.islower() for c in segment)
        and any(c.isdigit() for c in segment)
    )


def mask_url(url: str) -> str:
    """How a secret-bearing URL (a webhook) is shown: scheme, host[:port] and the first path segment, then `…`
    (no user, password, rest of the path, query or fragment)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"{url.split('://', 1)[0]}://…" if "://" in url else "…"
    if ":" in host:
        host = f"[{host}]"
    segments = [s for s in parts.path.split("/") if s]
    first = f"/{segments[0]}" if segments else ""
    more = "/…" if len(segments) > 1 or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{port}{first}{more}"


def _redact_url(url: str) -> str:
    """One URL found in a message: password, secret query values, webhook paths and token-like segments masked."""
    tail = ""
    while url and url[-1] in ".,;:!?)]}":
        url, tail = url[:-1], url[-1] + tail
    m = _USERINFO.match(url)
    if m and not re.match(r"\d{1,5}(/|$)", m.group(3)) and m.group(3).lower() not in _PLACEHOLDERS:  # port/…@
        url = f"{m.group(1)}{m.group(2)}:{MASK}@{url[m.end() :]}"
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        host = ""
    if any(host == h or host.endswith("." + h) for h in WEBHOOK_HOSTS):
        return mask_url(url) + tail
    head, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if slash:
        path_part, q, query = path.partition("?")
        path_part = "/".join("…" if _token_like(seg) else seg for seg in path_part.split("/"))
        path = path_part + q + query
    return f"{head}{sep}{netloc}{slash}{path}{tail}"


def _url_password(url: str) -> str | None:
    """The password in a URL's user info, if any."""
    try:
        return urlsplit(url.strip()).password
    except ValueError:
        m = _USERINFO.match(url.strip())
        return m.group(3) if m else None


def _known_secrets(extra: tuple[str | None, ...]) -> list[str]:
    """Secret values to mask verbatim: the given ones, the webhook URLs and SMTP password configured, the
    password of DATABASE_URL (not its host or database) and every variable named like *_PASSWORD, *_SECRET,
    *_TOKEN, *_API_KEY of 8+ characters."""
    values = [v for v in extra if v]
    for name, value in os.environ.items():
        if not value:
            continue
        if name == "DATABASE_URL":
            values.append(_url_password(value) or "")
        elif name == "PRICEINTEL_APPRISE_URLS":  # each channel's URL (tokens in host, path and query)
            values += [part for e in value.split() if "://" in e for part in apprise_secrets(e)]
        elif name in SECRET_ENV or (_SECRET_ENV_NAME.search(name) and len(value) >= 8):
            values.append(value)
    return [v for v in values if v]


def apprise_secrets(entry: str) -> list[str]:
    """What of one PRICEINTEL_APPRISE_URLS entry must never show: all after the scheme, and each piece of it of
    8+ characters (user, password, path segments, query values), since a service library quotes them in other
    URLs of its own (e.g. a Telegram bot token inside https://api.telegram.org/bot<token>/…)."""
    rest = entry.partition("=")[2] if "://" not in entry.partition("=")[0] else entry
    rest = rest.split("://", 1)[1] if "://" in rest else rest
    pieces = re.split(r"[/?&#@:=,]", rest)  # host names and plain numbers (ports, chat ids) are not secrets
    return [rest, *(p for p in pieces if len(p) >= 8 and "." not in p and not p.isdigit())]


def _mask_known(text: str, secret: str) -> str:
    """Mask one known secret: a URL (whole, its path and query, its password) or a plain value."""
    secret = secret.strip()
    if "://" not in secret:
        return text.replace(secret, MASK) if len(secret) >= 4 else text
    try:
        parts = urlsplit(secret)
        password = parts.password
    except ValueError:
        return text.replace(secret, mask_url(secret))
    if password and len(password) >= 4:
        text = text.replace(password, MASK)
    text = text.replace(secret, mask_url(secret))
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 1 or parts.query:  # the path alone (an HTTP library's "… with url: /hooks/T0/B0/x")
        shown = mask_url(secret).split("://", 1)[1]
        shown = shown[shown.find("/") :] if "/" in shown else "/…"
        text = text.replace(tail, shown)
    return text


def error_line(err: BaseException) -> str:
    """The first line of an error's message, a driver's own (SQLAlchemy's `orig`) when it has one; its type's
    name when the message is empty (not redacted: see `redact`)."""
    lines = str(getattr(err, "orig", None) or err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def redact(text: str, *secrets: str | None) -> str:
    """`text` safe for an error message, a log line or a report: URL passwords (`scheme://user:***@host`),
    secret query / key=value parameters (token, key, secret, password, signature, …), Bearer tokens,
    webhook URLs (Slack, Teams, Discord, …: host and first segment, then `…`) and token-like URL path segments
    are masked, as is every known secret: `secrets` (e.g. a notifier's webhook URL or SMTP password) and the
    secrets configured in the environment (DATABASE_URL, PRICEINTEL_SMTP_PASSWORD, the webhook URLs, …)."""
    if not text:
        return text
    text = str(text)
    for secret in sorted(_known_secrets(secrets), key=len, reverse=True):
        text = _mask_known(text, secret)
    text = _URL.sub(lambda m: _redact_url(m.group(0)), text)
    text = _KEY_VALUE.sub(
        lambda m: (
            f"{m.group(1)}={MASK}"
            if _SECRET_NAME.search(m.group(1)) and m.group(2).lower() not in _PLACEHOLDERS
            else m.group(0)
        ),
        text,
    )
    text = _JSON_SECRET.sub(
        lambda m: f"{m.group(1)}{MASK}{m.group(4)}" if _SECRET_NAME.search(m.group(2)) else m.group(0), text
    )
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)


def shown_setting(value: str) -> str:
    """A setting's value as an error message may show it: `redact`ed; a URL-like value without a scheme loses
    what comes before an `@` (user, password) and after its first `/` (a webhook's secret path)."""
    if "://" in value:
        return redact(value)
    if "@" in value:
        value = "…@" + value.rsplit("@", 1)[1]
    if "/" in value:
        value = value.split("/", 1)[0] + "/…"
    return redact(value)


def is_loopback(host: str | None) -> bool:
    """Whether a host name is this machine: `localhost` or a loopback address (127.0.0.0/8, ::1); names are
    not resolved."""
    h = (host or "").strip().strip("[]").rstrip(".").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


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


def set_env(name: str, value: str | None) -> None:
    """Set environment variable `name` to `value` (None unsets it)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Within the block, the environment variables `values` (None: unset); afterwards each as it was (processes
    started in the block inherit them)."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            set_env(name, value)
        yield
    finally:
        for name, value in saved.items():
            set_env(name, value)


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
            f"DATABASE_URL={shown_setting(url)!r} is not a PostgreSQL URL (expected postgresql://user:pass@host:port/db)"
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
    smtp_port: int = 587
    smtp_security: str = "starttls"  #: none | starttls | ssl (default: starttls, none for a loopback host)
    smtp_user: str | None = None
    smtp_password: str | None = None
    email_from: str = "priceintel@localhost"
    email_to: tuple[str, ...] = ()
    slack_webhook_url: str | None = None
    webhook_url: str | None = None
    #: (channel name, Apprise URL) pairs from PRICEINTEL_APPRISE_URLS: Teams, Telegram, Discord, PagerDuty, ntfy, …
    apprise_urls: tuple[tuple[str, str], ...] = ()
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
        out.extend(name for name, _ in self.apprise_urls)
        return out


#: names an Apprise channel may not take (the built-in channels, and `apprise` = every Apprise channel)
RESERVED_CHANNELS = ("email", "slack", "webhook", "apprise")
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def scheme_only(url: str) -> str:
    """How an Apprise URL is shown: `ntfy://…` (the rest holds the service's tokens)."""
    return f"{url.split('://', 1)[0]}://…"


def apprise_urls(value: str | None) -> tuple[tuple[str, str], ...]:
    """PRICEINTEL_APPRISE_URLS parsed: entries separated by white space, each `NAME=URL` or a bare URL (named
    after its scheme, `-2`, `-3` … on repeats). ConfigError names the entry (its URL masked) that is wrong."""
    out: dict[str, str] = {}
    for i, entry in enumerate((value or "").split(), start=1):
        head, sep, rest = entry.partition("=")
        if sep and "://" not in head:
            name, url = head.strip().lower(), rest.strip()
        else:
            name, url = entry.split("://", 1)[0].lower(), entry
        shown = scheme_only(url) if "://" in url else "no URL"
        where = f"environment variable PRICEINTEL_APPRISE_URLS, entry {i} ({shown})"
        if "://" not in url:
            raise ConfigError(f"{where}: not an Apprise URL (SCHEME://…, e.g. ntfy://topic or json://host/path)")
        if not sep or "://" in head:
            base, n = name, 2
            while name in out or name in RESERVED_CHANNELS:
                name, n = f"{base}-{n}", n + 1
        if not _CHANNEL_NAME.match(name) or name in RESERVED_CHANNELS:
            raise ConfigError(
                f"{where}: channel name {name!r} must be lower-case letters, digits, - or _ (at most 32) and not "
                f"one of {', '.join(RESERVED_CHANNELS)}"
            )
        if name in out:
            raise ConfigError(f"{where}: channel name {name!r} is given twice")
        out[name] = url
    return tuple(out.items())


def smtp_security_default(host: str | None) -> str:
    """PRICEINTEL_SMTP_SECURITY when unset: `starttls`, or `none` for a relay on this machine (loopback)."""
    return "none" if is_loopback(host) else "starttls"


def check_smtp_security(host: str | None, security: str, user: str | None) -> None:
    """Refuse (ConfigError) a login in clear text: credentials with PRICEINTEL_SMTP_SECURITY=none are only
    sent to a loopback host."""
    if user and security == "none" and not is_loopback(host):
        raise ConfigError(
            f"PRICEINTEL_SMTP_SECURITY=none would send the login of PRICEINTEL_SMTP_USER in clear text to "
            f"{host}: set PRICEINTEL_SMTP_SECURITY=starttls (port 587) or ssl (port 465); plain SMTP with a "
            "login is only allowed to a loopback host"
        )


def notify_settings() -> NotifySettings:
    """Alert delivery settings from the environment / `.env`; raises ConfigError naming a bad variable, or a
    login that would go out in clear text (see `check_smtp_security`)."""
    host = os.environ.get("PRICEINTEL_SMTP_HOST") or None
    user = os.environ.get("PRICEINTEL_SMTP_USER") or None
    security = (os.environ.get("PRICEINTEL_SMTP_SECURITY") or smtp_security_default(host)).strip().lower()
    if security not in ("none", "starttls", "ssl"):
        raise ConfigError(f"environment variable PRICEINTEL_SMTP_SECURITY={security!r} must be none, starttls or ssl")
    check_smtp_security(host, security, user)
    for name in ("PRICEINTEL_SLACK_WEBHOOK_URL", "PRICEINTEL_ALERT_WEBHOOK_URL"):
        value = os.environ.get(name) or ""
        if value and not value.startswith(("http://", "https://")):
            raise ConfigError(f"environment variable {name}={shown_setting(value)!r} is not an http(s) URL")
    to = tuple(a.strip() for a in (os.environ.get("PRICEINTEL_ALERT_EMAIL_TO") or "").split(",") if a.strip())
    rules = os.environ.get("PRICEINTEL_ALERT_RULES")
    return NotifySettings(
        smtp_host=host,
        smtp_port=_int_env("PRICEINTEL_SMTP_PORT", {"ssl": 465, "starttls": 587}.get(security, 25)),
        smtp_security=security,
        smtp_user=user,
        smtp_password=os.environ.get("PRICEINTEL_SMTP_PASSWORD") or None,
        email_from=os.environ.get("PRICEINTEL_ALERT_EMAIL_FROM") or NotifySettings.email_from,
        email_to=to,
        slack_webhook_url=os.environ.get("PRICEINTEL_SLACK_WEBHOOK_URL") or None,
        webhook_url=os.environ.get("PRICEINTEL_ALERT_WEBHOOK_URL") or None,
        apprise_urls=apprise_urls(os.environ.get("PRICEINTEL_APPRISE_URLS")),
        retries=_int_env("PRICEINTEL_NOTIFY_RETRIES", 3),
        backoff=_float_env("PRICEINTEL_NOTIFY_BACKOFF", 0.5),
        timeout=_float_env("PRICEINTEL_NOTIFY_TIMEOUT", 10.0),
        rules_file=Path(rules).expanduser().resolve() if rules else PROJ_ROOT / "config" / "alert_rules.yaml",
    )


@dataclass(frozen=True)
class ApiSettings:
    """The REST API's settings (`priceintel api`), read from PRICEINTEL_API_* variables."""

    #: HMAC key of the bearer tokens: PRICEINTEL_API_SECRET (at least 32 characters), else a random key kept
    #: in `data/api-secret` (mode 0600), made on first use so tokens survive restarts of one installation
    secret: str = field(default="", repr=False)
    #: minutes an access token is good for / hours a refresh token is
    access_minutes: float = 15.0
    refresh_hours: float = 24.0
    #: requests per minute per API key or user (a token bucket holding at most this many); 0 = unlimited
    rate_per_minute: float = 600.0


def _api_secret() -> str:
    """PRICEINTEL_API_SECRET, else the installation's key file (created 0600 on first use)."""
    return _secret("PRICEINTEL_API_SECRET", "api-secret", "API key")


def tenant_secret() -> str:
    """The key tenant tokens are made with (`db.tenancy`): PRICEINTEL_TENANT_SECRET, else the installation's
    file data/tenant-secret (created 0600 on first use). The apps, their kernels and the API read the same one;
    the database stores only a hash of each tenant's token."""
    return _secret("PRICEINTEL_TENANT_SECRET", "tenant-secret", "tenant key")


def _secret(variable: str, filename: str, what: str) -> str:
    """$variable (at least 32 characters), else the key file `data_dir()/filename`, made on first use."""
    given = os.environ.get(variable) or ""
    if given:
        if len(given) < 32:
            raise ConfigError(f"environment variable {variable} must be at least 32 characters long")
        return given
    import secrets

    path = data_dir() / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text(encoding="ascii").strip()
        if len(text) < 32:
            raise ConfigError(
                f"{path}: the {what} file is shorter than 32 characters; delete it to make a new one"
            ) from None
        return text
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def api_settings() -> ApiSettings:
    """REST API settings from the environment; ConfigError naming a bad variable."""
    out = ApiSettings(
        secret=_api_secret(),
        access_minutes=_float_env("PRICEINTEL_API_ACCESS_MINUTES", 15.0),
        refresh_hours=_float_env("PRICEINTEL_API_REFRESH_HOURS", 24.0),
        rate_per_minute=_float_env("PRICEINTEL_API_RATE_PER_MINUTE", 600.0),
    )
    for name, value in (
        ("PRICEINTEL_API_ACCESS_MINUTES", out.access_minutes),
        ("PRICEINTEL_API_REFRESH_HOURS", out.refresh_hours),
    ):
        if not value > 0:
            raise ConfigError(f"environment variable {name}={value!r} must be a positive number")
    if out.rate_per_minute < 0 or 0 < out.rate_per_minute < 1:
        raise ConfigError("environment variable PRICEINTEL_API_RATE_PER_MINUTE must be 0 (unlimited) or at least 1")
    return out


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
