"""Alert channels given as Apprise URLs (Teams, Telegram, Discord, PagerDuty, ntfy, … — every service Apprise
knows), beside the built-in email, Slack and webhook channels.

Each entry of PRICEINTEL_APPRISE_URLS is one named channel (`config.apprise_urls`): rules name it in `channels`
(or `apprise` for every Apprise channel), and a delivery is retried and recorded in `alert_delivery` like the
others. Apprise keeps nothing on disk here (memory-only persistent store), its own retries are off (ours apply),
and an error never shows the URL: service tokens sit in its host, path and query.
"""

from __future__ import annotations

import logging
from typing import Any

from priceintel import config
from priceintel.alerts.notify import Notification, NotifyError


class AppriseNotifier:
    """One Apprise URL as a channel: `send` raises NotifyError (URL hidden, reason redacted) when it fails."""

    channel = "apprise"

    def __init__(self, name: str, url: str, timeout: float = 10.0):
        import apprise

        self.name, self.url, self.timeout = name, url, timeout
        asset = apprise.AppriseAsset(storage_mode=apprise.PersistentStoreMode.MEMORY, service_timeout=timeout)
        self._apprise = apprise.Apprise(asset=asset)
        if not self._apprise.add(url):
            raise NotifyError(
                f"alert channel {name!r} ({config.scheme_only(url)}, from PRICEINTEL_APPRISE_URLS): Apprise does not "
                "know this URL (unsupported service or malformed; see https://github.com/caronc/apprise/wiki)"
            )

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """What a delivery error must never show: the URL."""
        return (self.url,)

    def send(self, note: Notification) -> None:
        """Notify through Apprise (title + the plain-text body); raises NotifyError with Apprise's reason."""
        import apprise

        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as logs:
            ok = self._apprise.notify(title=note.title, body=note.text(), body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            lines = [ln.strip() for ln in logs.getvalue().splitlines() if ln.strip()]
            reason = config.redact(lines[-1] if lines else "no reason given", *self.secrets)
            raise NotifyError(f"apprise channel {self.name!r} ({config.scheme_only(self.url)}) failed: {reason}")


def notifiers(settings: config.NotifySettings) -> dict[str, Any]:
    """A notifier for every Apprise channel configured (NotifyError naming one Apprise cannot use)."""
    return {name: AppriseNotifier(name, url, settings.timeout) for name, url in settings.apprise_urls}
