"""Notifiers: email over SMTP, Slack incoming webhooks (blocks) and generic JSON webhooks.

Every notifier has `send(Notification)`; `send_with_retry` retries with exponential backoff and returns a
`Delivery` (never raises), so a dead mail server or webhook cannot stop the pipeline. Targets come from
`config.notify_settings()` (PRICEINTEL_SMTP_*, PRICEINTEL_SLACK_WEBHOOK_URL, PRICEINTEL_ALERT_WEBHOOK_URL).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import requests

from priceintel import PriceIntelError, config
from priceintel.items import jsonable


class NotifyError(PriceIntelError):
    """A notification could not be delivered; the message names the channel and the target."""


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
        return "\n".join(out) + "\n"

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


class EmailNotifier:
    """SMTP with optional STARTTLS or implicit TLS and login."""

    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        to: list[str] | tuple[str, ...],
        security: str = "none",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.host, self.port, self.sender, self.to = host, int(port), sender, list(to)
        self.security, self.user, self.password, self.timeout = security, user, password, timeout
        self.ssl_context = ssl_context

    def message(self, note: Notification) -> EmailMessage:
        """The email for a notification (keys of the alerts in an X-PriceIntel-Alerts header)."""
        msg = EmailMessage()
        msg["Subject"] = note.title
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["X-PriceIntel-Kind"] = note.kind
        if note.alerts:
            msg["X-PriceIntel-Alerts"] = " ".join(str(a.get("dedup_key")) for a in note.alerts)
        msg.set_content(note.text())
        return msg

    def send(self, note: Notification) -> None:
        """Deliver over SMTP; raises NotifyError naming the server on failure."""
        ctx = self.ssl_context or ssl.create_default_context()
        try:
            server: smtplib.SMTP
            if self.security == "ssl":
                server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with server:
                if self.security == "starttls":
                    server.starttls(context=ctx)
                if self.user:
                    server.login(self.user, self.password or "")
                server.send_message(self.message(note))
        except (OSError, smtplib.SMTPException) as err:
            raise NotifyError(f"email via {self.host}:{self.port} failed: {type(err).__name__}: {err}") from None


class WebhookNotifier:
    """POST the notification as JSON to a URL (generic webhooks)."""

    channel = "webhook"

    def __init__(self, url: str, timeout: float = 10.0):
        self.url, self.timeout = url, timeout

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
            raise NotifyError(f"{self.channel} POST to {_redact(self.url)} failed: {type(err).__name__}") from None
        if not 200 <= resp.status_code < 300:
            raise NotifyError(f"{self.channel} POST to {_redact(self.url)} answered HTTP {resp.status_code}")


class SlackNotifier(WebhookNotifier):
    """Slack incoming webhook with Block Kit formatting (header, one section per alert)."""

    channel = "slack"

    def body(self, note: Notification) -> dict:
        """Slack blocks (at most 45 sections; text is the notification fallback)."""
        icon: dict[str | None, str] = {
            "critical": ":red_circle:",
            "warning": ":large_orange_circle:",
            "info": ":information_source:",
        }
        blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": note.title[:150]}}]
        for a in note.alerts[:45]:
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": (
                            f"{icon.get(a.get('severity'), '')} *{a.get('kind')}* · "
                            f"{a.get('retailer')} `{a.get('item_id')}`"
                            f"{' · ' + a['sku'] if a.get('sku') else ''}\n{a.get('reason')}"
                        )[:3000],
                    },
                }
            )
        if len(note.alerts) > 45:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {len(note.alerts) - 45} more"}]}
            )
        for line in note.lines[:10]:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line[:3000]}})
        return {"text": note.title, "blocks": blocks}


def _redact(url: str) -> str:
    """Scheme, host and the first path segment only (webhook URLs embed secrets)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    first = parts.path.strip("/").split("/")[0] if parts.path.strip("/") else ""
    return f"{parts.scheme}://{parts.netloc}/{first}{'/…' if first else ''}"


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
    return out


def send_with_retry(
    notifier: Any, note: Notification, retries: int | None = None, backoff: float | None = None
) -> Delivery:
    """Send, retrying with exponential backoff; never raises (the error is in the Delivery)."""
    if retries is None or backoff is None:
        s = config.notify_settings()
        retries = s.retries if retries is None else retries
        backoff = s.backoff if backoff is None else backoff
    error = None
    for attempt in range(1, int(retries) + 2):
        try:
            notifier.send(note)
            return Delivery(True, attempt)
        except Exception as err:  # noqa: BLE001 - a notifier must never stop the pipeline
            error = str(err) if isinstance(err, PriceIntelError) else f"{type(err).__name__}: {err}"
            if attempt <= retries:
                time.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, int(retries) + 1, error)


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
