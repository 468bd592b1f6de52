"""The alert store: insert deduplicated alerts (cooldowns honoured), auto-resolve cleared conditions, list them
and change their state (acknowledge, resolve)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.alerts.detect import STATE_KINDS
from priceintel.items import plain

ALERT_STATES = ("new", "acknowledged", "resolved")


class AlertError(PriceIntelError):
    """An alert operation failed (unknown alert id, bad state, …)."""


_COLS = [
    "dedup_key",
    "rule",
    "kind",
    "severity",
    "delivery",
    "channels",
    "ds",
    "episode_start",
    "listing_id",
    "retailer",
    "item_id",
    "sku",
    "category",
    "price",
    "reference_price",
    "value",
    "reason",
    "details",
]


@dataclass(frozen=True)
class StoreResult:
    """What store_alerts did."""

    inserted: int
    duplicates: int
    cooled_down: int
    resolved: int


def _stored(conn, rec: dict) -> bool:
    """True when the alert's dedup_key is stored, or (conditions) the rule's open alert of the listing covers it."""
    exists = conn.execute(sa.text("SELECT 1 FROM alert WHERE dedup_key = :k"), {"k": rec["dedup_key"]}).first()
    if not exists and rec["kind"] in STATE_KINDS:  # the condition's open alert already covers it
        exists = conn.execute(
            sa.text("SELECT 1 FROM alert WHERE rule = :r AND kind = :k AND listing_id = :l AND state <> 'resolved'"),
            {"r": rec["rule"], "k": rec["kind"], "l": int(rec["listing_id"])},
        ).first()
    return bool(exists)


def _cooling_down(conn, rec: dict) -> bool:
    """True when the rule alerted on the listing less than its cooldown (hours) before this alert's day."""
    if not rec.get("cooldown"):
        return False
    last = conn.execute(
        sa.text("SELECT max(ds) FROM alert WHERE rule = :r AND listing_id = :l AND ds <= :d"),
        {"r": rec["rule"], "l": int(rec["listing_id"]), "d": rec["ds"]},
    ).scalar()
    return last is not None and (rec["ds"] - last).days * 24 < rec["cooldown"]


def store_alerts(engine, alerts: pd.DataFrame, as_of: date | None = None) -> StoreResult:
    """Insert new alerts (dedup_key makes re-runs no-ops), honour cooldowns, auto-resolve cleared conditions."""
    inserted = dup = cooled = 0
    with engine.begin() as conn:
        for rec in alerts.to_dict("records"):
            if _stored(conn, rec):
                dup += 1
                continue
            if _cooling_down(conn, rec):
                cooled += 1
                continue
            row = {c: plain(rec.get(c)) for c in _COLS}
            row["details"] = json.dumps({"title": plain(rec.get("title"))})
            res = conn.execute(
                sa.text(f"""
                INSERT INTO alert ({", ".join(_COLS)}) VALUES ({", ".join(":" + c for c in _COLS)})
                ON CONFLICT (tenant_id, dedup_key) DO NOTHING RETURNING alert_id"""),
                row,
            ).first()
            inserted += res is not None
            dup += res is None
        resolved = 0
        if as_of is not None:
            resolved = _auto_resolve(conn, alerts, as_of)
    return StoreResult(inserted, dup, cooled, resolved)


def _auto_resolve(conn, alerts: pd.DataFrame, as_of: date) -> int:
    """Resolve open condition alerts whose listing, observed on as_of, no longer meets the condition."""
    open_ = conn.execute(
        sa.text(f"""
        SELECT a.alert_id, a.rule, a.kind, a.listing_id, a.dedup_key FROM alert a
        WHERE a.state <> 'resolved' AND a.kind IN ({", ".join(repr(k) for k in STATE_KINDS)}) AND a.ds <= :d
          AND EXISTS (SELECT 1 FROM fact_price fp JOIN dim_date dd ON dd.date_key = fp.date_key
                      WHERE fp.listing_id = a.listing_id AND dd.date = :d)"""),
        {"d": as_of},
    ).all()
    still = set(zip(alerts["rule"], alerts["kind"], alerts["listing_id"].astype(int))) if len(alerts) else set()
    gone = [r.alert_id for r in open_ if (r.rule, r.kind, r.listing_id) not in still]
    if gone:
        conn.execute(
            sa.text("""UPDATE alert SET state = 'resolved', resolved_by = 'auto', updated_at = now()
                                WHERE alert_id = ANY(:ids)"""),
            {"ids": gone},
        )
    return len(gone)


def list_alerts(
    engine,
    state: str | None = None,
    kind: str | None = None,
    severity: str | None = None,
    retailer: str | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Stored alerts, newest first, optionally filtered."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": int(limit)}
    for col, val in (("state", state), ("kind", kind), ("severity", severity), ("retailer", retailer)):
        if val:
            where.append(f"{col} = :{col}")
            params[col] = val
    sql = f"""SELECT alert_id, ds, severity, state, kind, rule, retailer, item_id, sku, price::float8 AS price,
                     reference_price::float8 AS reference_price, reason, dedup_key, created_at
              FROM alert {"WHERE " + " AND ".join(where) if where else ""}
              ORDER BY ds DESC, alert_id DESC LIMIT :limit"""
    with engine.connect() as conn:
        return pd.read_sql(sa.text(sql), conn, params=params)


def alerts_text(alerts: pd.DataFrame) -> str:
    """list_alerts as a plain-text table for a terminal (`priceintel alerts list`), or 'no alerts'."""
    return alerts.drop(columns=["dedup_key", "created_at"]).to_string(index=False) if len(alerts) else "no alerts"


def set_state(engine, alert_ids: list[int], state: str, by: str = "user") -> int:
    """Acknowledge or resolve alerts; returns how many changed."""
    if state not in ALERT_STATES:
        raise AlertError(f"alert state {state!r} is unknown; expected one of {ALERT_STATES}")
    ids = [int(i) for i in alert_ids]
    with engine.begin() as conn:
        found = {
            r[0]
            for r in conn.execute(sa.text("SELECT alert_id FROM alert WHERE alert_id = ANY(:ids)"), {"ids": ids}).all()
        }
        missing = sorted(set(ids) - found)
        if missing:
            raise AlertError(f"no alert with id(s) {missing}")
        res = conn.execute(
            sa.text("""
            UPDATE alert SET state = :s, updated_at = now(), state_by = :by,
                   resolved_by = CASE WHEN :s = 'resolved' THEN :by ELSE resolved_by END
            WHERE alert_id = ANY(:ids) AND state IS DISTINCT FROM :s"""),
            {"s": state, "ids": ids, "by": by},
        )
    return res.rowcount
