"""Notifiers: email over SMTP, Slack incoming webhooks (blocks), generic JSON webhooks, and any service as an Apprise
URL (`alerts.apprise_channel`).

Every notifier has `send(Notification)`; `send_with_retry` retries with exponential backoff and returns a
`Delivery` (never raises), so a dead mail server or webhook cannot stop the pipeline. Targets come from
`config.notify_settings()` (PRICEINTEL_SMTP_*, PRICEINTEL_SLACK_WEBHOOK_URL, PRICEINTEL_ALERT_WEBHOOK_URL,
PRICEINTEL_APPRISE_URLS).

Scraped text is hostile: Slack text is escaped (`&`, `<`, `>`: no `<!channel>` ping, no disguised
`<http://x|label>` link), email headers lose line breaks and control characters, and every delivery error is
`config.redact`ed (webhook paths, SMTP password) before it is returned or stored. A login over SMTP goes out
over TLS (STARTTLS by default) unless the server is on loopback.
"""

from __future__ import annotations

import json
import re
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import requests

from priceintel import PriceIntelError, config
from priceintel.items import clean_text, jsonable
from priceintel.obs import metrics


class NotifyError(PriceIntelError):
    """A notification could not be delivered; the message names the channel and the target."""


class NotifyRefused(NotifyError):
    """A notification was not even attempted: its settings break a rule (e.g. a login in clear text)."""


@dataclass(frozen=True)
class Notification:
    """One message: a title, a kind (alert | digest | quality | run) and the alerts or lines it carries."""

    title: str
    kind: str = "alert"
    alerts: list[dict] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Plain-text body: one paragraph per alert, then free lines."""
        out = [self.title, ""]
        for a in self.alerts:
            out.append(
                f"- [{a.get('severity')}] {a.get('kind')} · {a.get('retailer')} {a.get('item_id')}"
                f"{' · ' + a['sku'] if a.get('sku') else ''} ({a.get('ds')})"
            )
            out.append(f"  {a.get('reason')}")
            out.append(f"  alert #{a.get('alert_id')} key {a.get('dedup_key')}")
        out.extend(self.lines)
        return clean_text("\n".join(out) + "\n")

    def payload(self) -> dict:
        """JSON payload for generic webhooks."""
        keep = (
            "alert_id",
            "dedup_key",
            "rule",
            "kind",
            "severity",
            "ds",
            "retailer",
            "item_id",
            "sku",
            "price",
            "reference_price",
            "reason",
        )
        return {
            "source": "priceintel",
            "title": self.title,
            "kind": self.kind,
            "alerts": [{k: jsonable(a.get(k)) for k in keep} for a in self.alerts],
            "lines": list(self.lines),
        }


@dataclass(frozen=True)
class Delivery:
    """Outcome of one notification on one channel."""

    ok: bool
    attempts: int
    error: str | None = None


def header_text(value: object, limit: int = 250) -> str:
    """One line for an email header: line breaks, tabs and control characters become single spaces."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", str(value)).split())[:limit]


class EmailNotifier:
    """SMTP with STARTTLS or implicit TLS and login; plain SMTP (security `none`) only without a login or to a
    loopback host. `security` None: `starttls`, or `none` for a loopback host (`config.smtp_security_default`)."""

    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        to: list[str] | tuple[str, ...],
        security: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ):
        security = security or config.smtp_security_default(host)
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"EmailNotifier security={security!r}: none, starttls or ssl")
        self.host, self.port, self.sender, self.to = host, int(port), sender, list(to)
        self.security, self.user, self.password, self.timeout = security, user, password, timeout
        self.ssl_context = ssl_context

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """What a delivery error must never show."""
        return (self.password,)

    def message(self, note: Notification) -> EmailMessage:
        """The email for a notification (keys of the alerts in an X-PriceIntel-Alerts header)."""
        msg = EmailMessage()
        msg["Subject"] = header_text(note.title)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["X-PriceIntel-Kind"] = header_text(note.kind)
        if note.alerts:
            msg["X-PriceIntel-Alerts"] = header_text(" ".join(str(a.get("dedup_key")) for a in note.alerts), 900)
        msg.set_content(note.text())
        return msg

    def send(self, note: Notification) -> None:
        """Deliver over SMTP; raises NotifyError naming the server on failure, and refuses (before connecting)
        a login in clear text to a host that is not loopback (`config.check_smtp_security`)."""
        try:
            config.check_smtp_security(self.host, self.security, self.user)
        except config.ConfigError as err:
            raise NotifyRefused(f"email via {self.host}:{self.port} refused: {err}") from None
        ctx = self.ssl_context or ssl.create_default_context()
        try:
            server: smtplib.SMTP
            if self.security == "ssl":
                server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with server:
                if self.security == "starttls":
                    server.starttls(context=ctx)  # raises SMTPNotSupportedError (no login) when not offered
                if self.user:
                    server.login(self.user, self.password or "")
                server.send_message(self.message(note))
        except (OSError, smtplib.SMTPException) as err:
            reason = config.redact(f"{type(err).__name__}: {err}", *self.secrets)
            raise NotifyError(f"email via {self.host}:{self.port} ({self.security}) failed: {reason}") from None


class WebhookNotifier:
    """POST the notification as JSON to a URL (generic webhooks)."""

    channel = "webhook"

    def __init__(self, url: str, timeout: float = 10.0):
        self.url, self.timeout = url, timeout

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """What a delivery error must never show: the URL (its path is the webhook's credential)."""
        return (self.url,)

    def body(self, note: Notification) -> dict:
        """JSON body."""
        return note.payload()

    def send(self, note: Notification) -> None:
        """POST; raises NotifyError on a network error or a non-2xx answer."""
        try:
            resp = requests.post(
                self.url,
                data=json.dumps(self.body(note), default=str),
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise NotifyError(
                f"{self.channel} POST to {config.mask_url(self.url)} failed: {type(err).__name__}"
            ) from None
        if not 200 <= resp.status_code < 300:
            raise NotifyError(f"{self.channel} POST to {config.mask_url(self.url)} answered HTTP {resp.status_code}")


class SlackNotifier(WebhookNotifier):
    """Slack incoming webhook with Block Kit formatting (header, one section per alert)."""

    channel = "slack"

    def body(self, note: Notification) -> dict:
        """Slack blocks (at most 45 sections; text is the notification fallback); every scraped or user string
        is escaped (`slack_escape`), so it can neither ping (`<!channel>`) nor show a disguised link."""
        icon: dict[str | None, str] = {
            "critical": ":red_circle:",
            "warning": ":large_orange_circle:",
            "info": ":information_source:",
        }
        e = slack_escape
        blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": e(note.title)[:150]}}]
        for a in note.alerts[:45]:
            item = e(a.get("item_id")).replace("`", "'")  # a back-tick would end the code span
            sku = f" · {e(a['sku'])}" if a.get("sku") else ""
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": (
                            f"{icon.get(a.get('severity'), '')} *{e(a.get('kind'))}* · "
                            f"{e(a.get('retailer'))} `{item}`{sku}\n{e(a.get('reason'))}"
                        )[:3000],
                    },
                }
            )
        if len(note.alerts) > 45:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {len(note.alerts) - 45} more"}]}
            )
        for line in note.lines[:10]:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": e(line)[:3000]}})
        return {"text": e(note.title), "blocks": blocks}


def slack_escape(value: object) -> str:
    """Text for a Slack message: control characters dropped, `&` `<` `>` as `&amp;` `&lt;` `&gt;` (Slack's
    only control characters: `<!channel>`, `<@U123>` and `<http://x|label>` all need a `<`)."""
    text = clean_text("" if value is None else str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def from_settings(settings: config.NotifySettings | None = None) -> dict[str, Any]:
    """Notifiers for every channel that has a target configured."""
    s = settings or config.notify_settings()
    out: dict[str, Any] = {}
    if s.smtp_host and s.email_to:
        out["email"] = EmailNotifier(
            s.smtp_host, s.smtp_port, s.email_from, s.email_to, s.smtp_security, s.smtp_user, s.smtp_password, s.timeout
        )
    if s.slack_webhook_url:
        out["slack"] = SlackNotifier(s.slack_webhook_url, s.timeout)
    if s.webhook_url:
        out["webhook"] = WebhookNotifier(s.webhook_url, s.timeout)
    if s.apprise_urls:
        from priceintel.alerts import apprise_channel

        out.update(apprise_channel.notifiers(s))
    return out


def expand_channels(wanted: list[str], notifiers: dict) -> list[str]:
    """A rule's channels as notifier names: `apprise` stands for every Apprise channel configured."""
    out: list[str] = []
    for name in wanted:
        if name == "apprise":
            out += [n for n, x in notifiers.items() if getattr(x, "channel", None) == "apprise"]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def send_with_retry(
    notifier: Any, note: Notification, retries: int | None = None, backoff: float | None = None
) -> Delivery:
    """Send, retrying with exponential backoff; never raises (the error, redacted, is in the Delivery). A
    refusal by policy (a login in clear text) is not retried."""
    if retries is None or backoff is None:
        s = config.notify_settings()
        retries = s.retries if retries is None else retries
        backoff = s.backoff if backoff is None else backoff
    out = _attempt(notifier, note, int(retries), float(backoff))
    # the channel's name: an Apprise channel's own, else the kind (email, slack, webhook)
    metrics.alert_delivered(str(getattr(notifier, "name", None) or getattr(notifier, "channel", "other")), out.ok)
    return out


def _attempt(notifier: Any, note: Notification, retries: int, backoff: float) -> Delivery:
    error = None
    secrets = getattr(notifier, "secrets", ())
    for attempt in range(1, retries + 2):
        try:
            notifier.send(note)
            return Delivery(True, attempt)
        except Exception as err:  # noqa: BLE001 - a notifier must never stop the pipeline
            error = str(err) if isinstance(err, PriceIntelError) else f"{type(err).__name__}: {err}"
            error = config.redact(error, *secrets)
            if isinstance(err, NotifyRefused):
                return Delivery(False, attempt, error)
            if attempt <= retries:
                time.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, retries + 1, error)


def broadcast(engine, notifiers: dict, note: Notification) -> dict[str, Delivery]:
    """Send one notification on every channel and record each outcome in alert_delivery (when engine)."""
    out = {}
    for channel, notifier in notifiers.items():
        result = send_with_retry(notifier, note)
        out[channel] = result
        if engine is not None:
            import sqlalchemy as sa

            try:
                with engine.begin() as conn:
                    conn.execute(
                        sa.text("""
                        INSERT INTO alert_delivery (alert_id, channel, kind, subject, status, attempts, error)
                        VALUES (NULL, :c, :k, :s, :st, :n, :e)"""),
                        {
                            "c": channel,
                            "k": note.kind,
                            "s": note.title,
                            "st": "sent" if result.ok else "failed",
                            "n": result.attempts,
                            "e": result.error,
                        },
                    )
            except Exception:  # noqa: BLE001 - recording must not hide the notification outcome
                pass
    return out
