"""Hostile alerts and hostile networks: scraped text is escaped in Slack messages and email headers, delivery
errors never show a webhook's secret path or the SMTP password, and no SMTP login goes out in clear text to a
host that is not loopback (real aiosmtpd servers, a real webhook receiver)."""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import date

import pytest

from _receivers import HTTPSink, SMTPSink, free_port
from priceintel import config
from priceintel.alerts import notify

HOSTILE = {
    "alert_id": 7,
    "dedup_key": "k7",
    "kind": "undercut",
    "severity": "critical",
    "retailer": "<!channel> evil",
    "item_id": "B0`<@U123>`",
    "sku": "S<1>&2",
    "ds": date(2026, 7, 1),
    "reason": "click <http://evil.example|your bank> & <!here>\x1b[31m",
}


def _note(title: str = "[critical] undercut: <!everyone> shop\r\nBcc: x@evil.example") -> notify.Notification:
    return notify.Notification(title, alerts=[HOSTILE], lines=["error: <!subteam^S1> & <https://x.example|y>"])


def test_slack_payload_received_is_escaped(monkeypatch):
    with HTTPSink() as hook:
        monkeypatch.setenv("PRICEINTEL_SLACK_WEBHOOK_URL", hook.url)
        slack = notify.from_settings()["slack"]
        assert notify.send_with_retry(slack, _note(), retries=0, backoff=0).ok
    body = hook.bodies[0]
    raw = json.dumps(body)
    section = body["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; evil" in section and "S&lt;1&gt;&amp;2" in section
    assert "click &lt;http://evil.example|your bank&gt; &amp; &lt;!here&gt;" in section and "\x1b" not in section
    assert "`B0'&lt;@U123&gt;'`" in section  # the id's back-ticks cannot end its code span
    assert body["text"].startswith("[critical] undercut: &lt;!everyone&gt; shop")
    assert body["blocks"][0]["text"]["text"].startswith("[critical] undercut: &lt;!everyone&gt;")
    assert body["blocks"][-1]["text"]["text"] == "error: &lt;!subteam^S1&gt; &amp; &lt;https://x.example|y&gt;"
    assert "<" not in raw and ">" not in raw  # no mention, no link markup anywhere
    assert "*undercut*" in section  # the markup the code builds itself stays


def test_webhook_delivery_errors_do_not_show_the_secret_path():
    secret = "T0SECRET/B0SECRET/xoxbTokenTokenToken123"
    dead = notify.WebhookNotifier(f"http://127.0.0.1:{free_port()}/hooks/{secret}", timeout=2)
    res = notify.send_with_retry(dead, _note(), retries=0, backoff=0)
    assert not res.ok and "ConnectionError" in res.error and "127.0.0.1" in res.error
    assert "SECRET" not in res.error and "Token" not in res.error and "/hooks/…" in res.error
    with HTTPSink(fail_first=5) as hook:
        failing = notify.WebhookNotifier(hook.url)
        res = notify.send_with_retry(failing, _note(), retries=1, backoff=0)
    assert not res.ok and res.attempts == 2 and "HTTP 500" in res.error and "secret-token" not in res.error
    # any error text (not only ours) is redacted before it is stored: the URL, its path, Slack's host
    slack = notify.SlackNotifier(f"https://hooks.slack.com/services/{secret}")
    for text in (slack.url, f"/services/{secret}", f"HTTPSConnectionPool: Max retries with url: /services/{secret}"):
        assert "SECRET" not in config.redact(f"boom {text}", *slack.secrets)


def test_email_headers_cannot_be_injected():
    with SMTPSink() as smtp:
        mailer = notify.EmailNotifier("127.0.0.1", smtp.port, "bot@x.test", ["a@x.test"])
        assert mailer.security == "none"  # a relay on loopback: plain SMTP is the default
        assert notify.send_with_retry(mailer, _note(), retries=0, backoff=0).ok
    msg = smtp.messages[0]
    assert msg["Subject"] == "[critical] undercut: <!everyone> shop Bcc: x@evil.example" and msg["Bcc"] is None
    assert "\x1b" not in msg.get_content() and "<http://evil.example|your bank>" in msg.get_content()  # plain text


def _own_address() -> str | None:
    """A non-loopback IPv4 address of this machine (None when it has none)."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    for addr in out:
        if "." in addr and not config.is_loopback(addr):
            try:
                with socket.socket() as s:
                    s.bind((addr, 0))
                return addr
            except OSError:
                continue
    return None


class _Sink:
    """aiosmtpd on `host` with LOGIN/PLAIN auth allowed without TLS, recording every EHLO/HELO and login."""

    def __init__(self, host: str):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.greetings: list[str] = []
        self.logins: list[str] = []
        self.messages: list[bytes] = []
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                sink.greetings.append(hostname)
                session.host_name = hostname
                return responses

            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(envelope.content)
                return "250 OK"

        def auth(server, session, envelope, mechanism, data):
            sink.logins.append(data.login.decode())
            return AuthResult(success=True)

        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname=host, port=self.port, authenticator=auth, auth_require_tls=False
        )

    def __enter__(self) -> _Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def test_no_smtp_login_in_clear_text_to_a_host_that_is_not_loopback(monkeypatch):
    host = _own_address()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address to listen on")
    with _Sink(host) as sink:
        # plain SMTP with a login to a non-loopback host: refused before connecting, not retried
        plain = notify.EmailNotifier(
            host, sink.port, "bot@x.test", ["a@x.test"], security="none", user="bot", password="hunter2pass", timeout=5
        )
        res = notify.send_with_retry(plain, _note(), retries=3, backoff=0)
        assert not res.ok and res.attempts == 1
        assert "PRICEINTEL_SMTP_SECURITY=none" in res.error and host in res.error and "hunter2" not in res.error
        assert sink.greetings == [] and sink.logins == []  # not even a connection
        # the default for a non-loopback host is STARTTLS: a server without it gets no login either
        default = notify.EmailNotifier(
            host, sink.port, "bot@x.test", ["a@x.test"], user="bot", password="hunter2pass", timeout=5
        )
        assert default.security == "starttls"
        res = notify.send_with_retry(default, _note(), retries=0, backoff=0)
        assert not res.ok and "STARTTLS" in res.error.upper() and "hunter2" not in res.error
        assert len(sink.greetings) == 1 and sink.logins == []
        # without credentials, plain SMTP to the same server is allowed (an internal relay): it is reachable
        anonymous = notify.EmailNotifier(host, sink.port, "bot@x.test", ["a@x.test"], security="none", timeout=5)
        assert notify.send_with_retry(anonymous, _note(), retries=0, backoff=0).ok
        assert len(sink.messages) == 1 and sink.logins == []
    # the settings refuse the same combination up front, naming the variable
    monkeypatch.setenv("PRICEINTEL_SMTP_HOST", host)
    monkeypatch.setenv("PRICEINTEL_SMTP_USER", "bot")
    monkeypatch.setenv("PRICEINTEL_SMTP_SECURITY", "none")
    with pytest.raises(config.ConfigError, match="PRICEINTEL_SMTP_SECURITY=none would send the login"):
        config.notify_settings()


def test_smtp_login_over_plain_smtp_to_loopback_still_works():
    with SMTPSink(user="bot", password="s3cret") as smtp:
        mailer = notify.EmailNotifier("127.0.0.1", smtp.port, "bot@x.test", ["a@x.test"], user="bot", password="s3cret")
        assert notify.send_with_retry(mailer, _note("t"), retries=0, backoff=0).ok and smtp.logins == ["bot"]
    assert "s3cret" not in config.redact("535 auth failed for bot:s3cret", *mailer.secrets)
