"""Alert channels as Apprise URLs: Apprise's JSON scheme posting to a real local webhook receiver; a failing
channel is retried and recorded like the built-in ones, and its URL (the service's token) never shows."""

import re
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from _receivers import HTTPSink, free_port
from priceintel import config
from priceintel.alerts import notify
from priceintel.alerts.apprise_channel import AppriseNotifier
from priceintel.alerts.deliver import deliver_pending
from priceintel.alerts.rules import dedup_key, parse_rules
from priceintel.alerts.store import store_alerts
from priceintel.db import tenancy

NOON = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)


def _json_url(hook: HTTPSink) -> str:
    """The sink's URL in Apprise's JSON scheme (json:// posts {title, message, type} over http)."""
    return hook.url.replace("http://", "json://", 1)


@pytest.fixture()
def alert_db(clean_db):
    with tenancy.as_owner(), clean_db.begin() as conn:
        conn.exec_driver_sql("TRUNCATE alert, alert_delivery RESTART IDENTITY CASCADE")
    return clean_db


def _alerts(channels: list[str], item: str = "B1", listing: int = 1) -> pd.DataFrame:
    day = date(2026, 7, 5)
    row = {"kind": "undercut", "listing_id": listing, "retailer": "amazon", "item_id": item, "title": "t", "sku": "S1",
           "category": "toys", "ds": day, "price": 9.5, "reference_price": 10.0, "value": 0.05,
           "episode_start": day, "reason": "amazon sells 5% below us", "rule": "now", "severity": "critical",
           "delivery": "immediate", "channels": channels, "cooldown": 0.0}
    df = pd.DataFrame([row])
    df["dedup_key"] = [dedup_key(r) for r in df.to_dict("records")]
    return df


def test_urls_are_named_channels_and_bad_entries_name_the_entry_not_the_token(monkeypatch):
    parsed = config.apprise_urls("ops=ntfy://alerts-topic  tgram://123:AAtoken/42 tgram://456:BBtoken/7")
    assert parsed == (("ops", "ntfy://alerts-topic"), ("tgram", "tgram://123:AAtoken/42"),
                      ("tgram-2", "tgram://456:BBtoken/7"))
    assert config.apprise_urls("") == () and config.apprise_urls(None) == ()
    with pytest.raises(config.ConfigError, match=r"entry 2 \(discord://…\): channel name 'email'") as err:
        config.apprise_urls("ntfy://t email=discord://123/SuperSecretWebhookToken")
    assert "SuperSecret" not in str(err.value)
    with pytest.raises(config.ConfigError, match=r"entry 1 \(no URL\): not an Apprise URL"):
        config.apprise_urls("ops=not-a-url")
    with pytest.raises(config.ConfigError, match="given twice"):
        config.apprise_urls("a=ntfy://x a=ntfy://y")
    monkeypatch.setenv("PRICEINTEL_APPRISE_URLS", "ops=ntfy://alerts-topic")
    settings = config.notify_settings()
    assert settings.channels == ["ops"] and list(notify.from_settings(settings)) == ["ops"]
    # a scheme Apprise does not know is refused when the channels are built, naming the channel
    with pytest.raises(notify.NotifyError, match=r"alert channel 'odd' \(nosuchservice://…"):
        AppriseNotifier("odd", "nosuchservice://SuperSecretToken1234")
    # the URLs count as secrets: a message quoting one is redacted
    monkeypatch.setenv("PRICEINTEL_APPRISE_URLS", "d=discord://1234/SuperSecretWebhookToken "
                       "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/42")
    assert "SuperSecretWebhookToken" not in config.redact("POST discord://1234/SuperSecretWebhookToken failed")
    # and its pieces, as the service's library quotes them in URLs of its own
    quoted = config.redact("POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage")
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in quoted and "api.telegram.org" in quoted
    assert "SuperSecretWebhookToken" not in config.redact("https://discord.com/api/webhooks/1234/SuperSecretWebhookToken")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY")
    assert "wJalrXUtnFEMI" not in config.redact("signature mismatch for wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY")


def test_apprise_channels_deliver_through_the_json_scheme_and_rules_pick_them(alert_db, monkeypatch):
    with HTTPSink() as ops, HTTPSink() as team:
        monkeypatch.setenv("PRICEINTEL_APPRISE_URLS", f"ops={_json_url(ops)} team={_json_url(team)}")
        notifiers = notify.from_settings()
        assert sorted(notifiers) == ["ops", "team"]
        # a rule without channels goes everywhere configured (`apprise` = every Apprise channel) ...
        store_alerts(alert_db, _alerts(["email", "slack", "webhook", "apprise"]))
        rules = parse_rules("rules: [{name: now, kind: undercut, severity: critical}]", "r.yaml")
        assert deliver_pending(alert_db, notifiers, rules, NOON)["alerts"] == 2
        for sink in (ops, team):
            (body,) = sink.bodies
            assert body["title"] == "[critical] undercut: amazon B1"
            assert "amazon sells 5% below us" in body["message"] and body["type"] == "info"
        # ... and a rule naming one channel reaches that one only; nothing is sent twice
        store_alerts(alert_db, _alerts(["team"], "B2", 2))
        assert deliver_pending(alert_db, notifiers, rules, NOON)["alerts"] == 1
        assert len(ops.bodies) == 1 and len(team.bodies) == 2 and "B2" in team.bodies[-1]["title"]
    with alert_db.connect() as c:
        rows = c.execute(sa.text("SELECT channel, status FROM alert_delivery ORDER BY delivery_id")).all()
    assert [tuple(r) for r in rows] == [("ops", "sent"), ("team", "sent"), ("team", "sent")]


def _counted(outcome: str, channel: str) -> float:
    """priceintel_alerts_<outcome>_total{channel=...} as /metrics shows it (0 when absent)."""
    from priceintel.obs import metrics

    text = metrics.render()[0].decode()
    found = re.search(rf'^priceintel_alerts_{outcome}_total{{channel="{channel}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_failing_apprise_channel_is_retried_and_recorded_without_its_url(alert_db, monkeypatch):
    monkeypatch.setenv("PRICEINTEL_NOTIFY_BACKOFF", "0")
    store_alerts(alert_db, _alerts(["apprise"]))
    rules = parse_rules("rules: [{name: now, kind: undercut}]", "r.yaml")
    dead = f"json://127.0.0.1:{free_port()}/hooks/SuperSecretToken1234"
    monkeypatch.setenv("PRICEINTEL_APPRISE_URLS", f"pager={dead}")
    before = _counted("failed", "pager")
    out = deliver_pending(alert_db, notify.from_settings(), rules, NOON)
    assert out["failed"] == 1 and _counted("failed", "pager") == before + 1  # and in the metrics
    with alert_db.connect() as c:
        row = c.execute(sa.text("SELECT channel, status, attempts, error FROM alert_delivery")).one()
    assert (row.channel, row.status, row.attempts) == ("pager", "failed", 4)
    assert row.error.startswith("apprise channel 'pager' (json://…) failed:") and "SuperSecret" not in row.error
    with HTTPSink(fail_first=2) as hook:  # the next run retries: two 500s, then delivered
        monkeypatch.setenv("PRICEINTEL_APPRISE_URLS", f"pager={_json_url(hook)}")
        sent = _counted("sent", "pager")
        assert deliver_pending(alert_db, notify.from_settings(), rules, NOON)["alerts"] == 1
        assert hook.hits == 3 and len(hook.bodies) == 1 and _counted("sent", "pager") == sent + 1
    with alert_db.connect() as c:
        rows = c.execute(sa.text("SELECT status, attempts FROM alert_delivery ORDER BY delivery_id")).all()
    assert [tuple(r) for r in rows] == [("failed", 4), ("sent", 3)]


def test_check_rules_lists_channels_and_names_unconfigured_ones(monkeypatch, tmp_path, capsys):
    from priceintel import cli

    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: pages, kind: undercut, channels: [pager, email]}, {name: all, kind: new_low}]")
    monkeypatch.setenv("PRICEINTEL_APPRISE_URLS", "ops=ntfy://alerts-topic")
    assert cli.main(["alerts", "check-rules", "--rules", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 rule(s) valid: pages, all" in out and "channels configured: ops" in out
    assert "rule pages: channel(s) pager not configured (skipped)" in out and "rule all:" not in out
    path.write_text("rules: [{name: bad, kind: undercut, channels: ['Pager Duty']}]")
    assert cli.main(["alerts", "check-rules", "--rules", str(path)]) == 2
    assert "channels" in capsys.readouterr().err
