"""Alert delivery and the post-load alert run.

`run_alerts`: `detect.detect` turns the star schema into candidate events for one day, `RuleSet.apply` keeps
those a rule selects and stamps severity, delivery and channels, `store.store_alerts` inserts them under a
stable `dedup_key` and auto-resolves cleared conditions, and `deliver_pending` sends every alert not yet
sent on a channel (immediate ones outside quiet hours, digests once a day) via `priceintel.alerts.notify`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from priceintel.alerts import notify
from priceintel.alerts.detect import detect, latest_date
from priceintel.alerts.rules import RuleSet, load_rules
from priceintel.alerts.store import store_alerts


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _pending(engine, local: datetime) -> tuple[pd.DataFrame, set, set]:
    """New alerts, the (alert, channel) pairs already sent, and the channels whose digest went out on local's day."""
    with engine.connect() as conn:
        pending = pd.read_sql(
            sa.text("""
            SELECT a.alert_id, a.dedup_key, a.rule, a.kind, a.severity, a.delivery, a.channels, a.ds, a.retailer,
                   a.item_id, a.sku, a.price::float8 AS price, a.reference_price::float8 AS reference_price,
                   a.reason
            FROM alert a WHERE a.state = 'new' ORDER BY a.alert_id"""),
            conn,
        )
        done = {
            (r[0], r[1])
            for r in conn.execute(
                sa.text("SELECT alert_id, channel FROM alert_delivery WHERE status = 'sent' AND alert_id IS NOT NULL")
            ).all()
        }
        digested = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT DISTINCT channel FROM alert_delivery WHERE kind = 'digest' AND status = 'sent' "
                    "AND digest_date = :d"
                ),
                {"d": local.date()},
            ).all()
        }
    return pending, done, digested


def _batches(
    pending: pd.DataFrame,
    notifiers: dict,
    rules: RuleSet,
    done: set,
    digested: set,
    now: datetime,
    digest_time_passed: bool,
    sent: dict,
) -> dict[tuple[str, str], list[dict]]:
    """(what, channel) → alerts to send now: one batch per immediate alert, one digest per channel; held ones
    are counted in sent (held_quiet, held_digest)."""
    batches: dict[tuple[str, str], list[dict]] = {}
    for rec in pending.to_dict("records"):
        rule = rules.rule(rec["rule"])
        quiet = rule.quiet_hours if rule and rule.quiet_hours else rules.quiet_hours
        for channel in notify.expand_channels(list(rec["channels"]), notifiers):
            if channel not in notifiers or (rec["alert_id"], channel) in done:
                continue
            if rec["delivery"] == "digest":
                if not digest_time_passed or channel in digested:
                    sent["held_digest"] += 1
                    continue
                batches.setdefault(("digest", channel), []).append(rec)
            elif quiet is not None and quiet.contains(now):
                sent["held_quiet"] += 1
            else:
                batches.setdefault((f"alert:{rec['alert_id']}", channel), []).append(rec)
    return batches


def _record(engine, recs: list[dict], channel: str, kind: str, title: str, outcome, day: date) -> None:
    """One alert_delivery row per alert of a sent (or failed) message."""
    with engine.begin() as conn:
        for rec in recs:
            conn.execute(
                sa.text("""
                INSERT INTO alert_delivery (alert_id, channel, kind, subject, status, attempts, error, digest_date)
                VALUES (:a, :c, :k, :s, :st, :n, :e, :dd)"""),
                {
                    "a": int(rec["alert_id"]),
                    "c": channel,
                    "k": kind,
                    "s": title,
                    "st": "sent" if outcome.ok else "failed",
                    "n": outcome.attempts,
                    "e": outcome.error,
                    "dd": day if kind == "digest" else None,
                },
            )


def deliver_pending(engine, notifiers: dict, rules: RuleSet, now: datetime | None = None) -> dict:
    """Send every new alert not yet sent on each of its channels; failures are recorded, never raised."""
    now = _now(now)
    sent = {"alerts": 0, "digests": 0, "failed": 0, "held_quiet": 0, "held_digest": 0}
    if not notifiers:
        return sent
    local = now.astimezone(ZoneInfo(rules.timezone))
    pending, done, digested = _pending(engine, local)
    batches = _batches(pending, notifiers, rules, done, digested, now, local.time() >= rules.digest_time, sent)
    for (what, channel), recs in batches.items():
        if what == "digest":
            title = f"priceintel daily digest: {len(recs)} alert(s)"
            kind = "digest"
        else:
            r = recs[0]
            title = f"[{r['severity']}] {r['kind'].replace('_', ' ')}: {r['retailer']} {r['item_id']}"
            kind = "alert"
        note = notify.Notification(title=title, kind=kind, alerts=recs)
        outcome = notify.send_with_retry(notifiers[channel], note)
        _record(engine, recs, channel, kind, title, outcome, local.date())
        if outcome.ok:
            sent["digests" if kind == "digest" else "alerts"] += 1
        else:
            sent["failed"] += 1
    return sent


def run_alerts(
    engine,
    rules: RuleSet | None = None,
    notifiers: dict | None = None,
    as_of: date | None = None,
    now: datetime | None = None,
) -> dict:
    """Detect, apply rules, store (deduplicated) and deliver; returns counts for the receipt."""
    rules = rules if rules is not None else load_rules()
    notifiers = notifiers if notifiers is not None else notify.from_settings()
    as_of = as_of or latest_date(engine)
    events = detect(engine, as_of)
    alerts = rules.apply(events)
    stored = store_alerts(engine, alerts, as_of)
    delivered = deliver_pending(engine, notifiers, rules, now)
    return {
        "as_of": as_of,
        "events": int(len(events)),
        "alerts": int(len(alerts)),
        "inserted": stored.inserted,
        "duplicates": stored.duplicates,
        "cooled_down": stored.cooled_down,
        "resolved": stored.resolved,
        "delivered": delivered,
        "by_kind": alerts.groupby("kind").size().to_dict() if len(alerts) else {},
    }
