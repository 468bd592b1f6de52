"""Price alerts: detect events after each load, apply YAML rules, store deduplicated alerts, deliver them.

Flow (`run_alerts`): `detect` turns the star schema into candidate events for one day (`as_of`),
`RuleSet.apply` keeps those a rule selects (scope, threshold) and stamps severity, delivery and
channels; `store_alerts` inserts them under a stable `dedup_key` (so a re-run adds nothing) and
auto-resolves state alerts whose condition has cleared; `deliver_pending` sends every alert not yet
sent on a channel (immediate ones outside quiet hours, digests once a day) via `priceintel.alerts.notify`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from priceintel import PriceIntelError
from priceintel.db.queries import MATCHED
from priceintel.items import plain

#: every kind of event `detect` emits
KINDS = (
    "new_low",
    "price_drop",
    "price_rise",
    "undercut",
    "map_violation",
    "out_of_stock",
    "back_in_stock",
    "new_listing",
    "anomaly",
)
#: kinds that describe a lasting condition: one alert per episode, auto-resolved when it clears
STATE_KINDS = ("undercut", "map_violation", "out_of_stock")
CHANNELS = ("email", "slack", "webhook")
SEVERITIES = ("info", "warning", "critical")
ALERT_STATES = ("new", "acknowledged", "resolved")
#: 1.4826 * MAD estimates the standard deviation of normal data
MAD_SCALE = 1.4826

EVENT_COLUMNS = [
    "kind",
    "listing_id",
    "retailer",
    "item_id",
    "title",
    "sku",
    "category",
    "ds",
    "price",
    "reference_price",
    "value",
    "episode_start",
    "reason",
]


class RuleError(PriceIntelError):
    """An alert rule file is invalid; the message names the file, the rule and the field."""


class AlertError(PriceIntelError):
    """An alert operation failed (unknown alert id, bad state, …)."""


# ------------------------------------------------------------------------------- detection


def _history(engine, start: date, as_of: date) -> pd.DataFrame:
    """Observations of every listing between start and as_of with match, product and our price."""
    sql = f"""
        SELECT fp.listing_id, r.retailer, l.item_id, l.title, d.date AS ds, fp.price::float8 AS price,
               fp.currency, fp.in_stock, p.sku, p.category, p.map_price::float8 AS map_price,
               fs.price::float8 AS our_price
        FROM fact_price fp
        JOIN dim_listing l ON l.listing_id = fp.listing_id
        JOIN dim_retailer r ON r.retailer_id = l.retailer_id
        JOIN dim_date d ON d.date_key = fp.date_key
        LEFT JOIN product_match pm ON pm.listing_id = fp.listing_id AND pm.status {MATCHED}
        LEFT JOIN dim_product p ON p.product_id = pm.product_id
        LEFT JOIN fact_sales fs ON fs.product_id = p.product_id AND fs.date_key = fp.date_key
        WHERE d.date BETWEEN :start AND :as_of
        ORDER BY fp.listing_id, d.date"""
    with engine.connect() as conn:
        df = pd.read_sql(sa.text(sql), conn, params={"start": start, "as_of": as_of})
    df["ds"] = pd.to_datetime(df["ds"]).dt.date
    return df


def latest_date(engine) -> date | None:
    """The newest day in fact_price (the default `as_of`)."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT max(d.date) FROM fact_price fp JOIN dim_date d ON d.date_key = fp.date_key")
        ).scalar()
    return value


def _flag(v: Any) -> bool | None:
    """True/False/None from a nullable boolean cell."""
    return None if v is None or pd.isna(v) else bool(v)


def _money(x: float | None) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:,.2f}"


def _episode_starts(hist: pd.DataFrame, cond: pd.Series, as_of: date) -> dict[int, date]:
    """For listings where cond holds on as_of: the first day of the unbroken run of cond up to as_of."""
    f = hist[["listing_id", "ds"]].assign(c=cond.to_numpy())
    now_true = f.loc[(f["ds"] == as_of) & f["c"], "listing_id"]
    if now_true.empty:
        return {}
    last_false = f[~f["c"]].groupby("listing_id")["ds"].max()
    g = f[f["listing_id"].isin(now_true)].copy()
    g["lf"] = g["listing_id"].map(last_false)
    g = g[g["lf"].isna() | (g["ds"] > g["lf"])]
    return {int(k): v for k, v in g.groupby("listing_id")["ds"].min().items()}


def detect(engine, as_of: date | str | None = None, history_days: int = 90, min_history: int = 7) -> pd.DataFrame:
    """Candidate events on day as_of (default: the newest loaded day), each with a reason (EVENT_COLUMNS)."""
    as_of = pd.Timestamp(as_of).date() if as_of is not None else latest_date(engine)
    if as_of is None:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    hist = _history(engine, as_of - timedelta(days=history_days), as_of)
    with engine.connect() as conn:
        first = dict(
            conn.execute(sa.text("SELECT listing_id, min(date_key) FROM fact_price GROUP BY listing_id")).all()
        )
        global_first = min(first.values()) if first else None
    events: list[dict] = []
    today = hist[hist["ds"] == as_of].set_index("listing_id")
    before = hist[hist["ds"] < as_of]
    prev = before.groupby("listing_id").tail(1).set_index("listing_id")
    priced_before = before[before["price"].notna()]

    def add(kind: str, lid: int, row: pd.Series, price=None, ref=None, value=None, reason="", episode=None):
        events.append(
            {
                "kind": kind,
                "listing_id": int(lid),
                "retailer": row["retailer"],
                "item_id": row["item_id"],
                "title": row["title"],
                "sku": row["sku"],
                "category": row["category"],
                "ds": as_of,
                "price": price,
                "reference_price": ref,
                "value": value,
                "episode_start": episode,
                "reason": reason,
            }
        )

    # day-over-day moves, new lows, stock transitions and anomalies
    lows = priced_before.groupby("listing_id")["price"].agg(["min", "count", "median"])
    mad = (
        priced_before.assign(
            dev=(priced_before["price"] - priced_before.groupby("listing_id")["price"].transform("median")).abs()
        )
        .groupby("listing_id")["dev"]
        .median()
    )
    prev_d = prev.to_dict("index")
    lows_d = lows.to_dict("index")
    mad_d = mad.to_dict()
    today_d = today.to_dict("index")
    for lid, row in today_d.items():
        cur = row["price"]
        p = prev_d.get(lid)
        if p is not None and pd.notna(cur) and pd.notna(p["price"]) and cur != p["price"]:
            change = cur / p["price"] - 1
            kind = "price_drop" if change < 0 else "price_rise"
            word = "fell" if change < 0 else "rose"
            add(
                kind,
                lid,
                row,
                cur,
                p["price"],
                abs(change),
                f"price {word} {abs(change):.1%} from {_money(p['price'])} to {_money(cur)} "
                f"(previous observation {p['ds']})",
            )
            low = lows_d.get(lid)
            if low is not None and low["count"] >= min_history:
                med = low["median"]
                scale = max(MAD_SCALE * mad_d[lid], 0.01 * med)
                z = (cur - med) / scale
                add(
                    "anomaly",
                    lid,
                    row,
                    cur,
                    med,
                    abs(z),
                    f"price {_money(cur)} is {abs(z):.1f} robust SDs {'above' if z > 0 else 'below'} the "
                    f"listing's median {_money(med)} over {int(low['count'])} days "
                    f"(MAD {_money(mad_d[lid])})",
                )
        low = lows_d.get(lid)
        if pd.notna(cur) and low is not None and low["count"] >= min_history and cur < low["min"]:
            low = low["min"]
            add(
                "new_low",
                lid,
                row,
                cur,
                low,
                1 - cur / low,
                f"new low {_money(cur)}, {1 - cur / low:.1%} under the previous low {_money(low)} "
                f"of the last {history_days} days",
            )
        if p is not None and _flag(row["in_stock"]) is True and _flag(p["in_stock"]) is False:
            add(
                "back_in_stock",
                lid,
                row,
                cur,
                None,
                None,
                f"back in stock at {_money(cur)} (out of stock on {p['ds']})",
            )
        if (
            first.get(lid) is not None
            and global_first is not None
            and first[lid] > global_first
            and first[lid] == int(as_of.strftime("%Y%m%d"))
        ):
            add(
                "new_listing",
                lid,
                row,
                cur,
                None,
                None,
                f"new {row['retailer']} listing {row['item_id']!r} first seen on {as_of}"
                + (f" (matched to {row['sku']})" if isinstance(row["sku"], str) else ""),
            )

    # lasting conditions, each with the first day of its episode
    priced = hist["price"].notna()
    undercut = priced & hist["our_price"].notna() & (hist["price"] < hist["our_price"])
    below_map = priced & hist["map_price"].notna() & (hist["price"] < hist["map_price"])
    oos = hist["in_stock"].eq(False)
    for kind, cond in (("undercut", undercut), ("map_violation", below_map), ("out_of_stock", oos)):
        for lid, start in _episode_starts(hist, cond, as_of).items():
            row = today_d[lid]
            since = f" since {start}" if start != as_of else ""
            if kind == "undercut":
                gap = 1 - row["price"] / row["our_price"]
                add(
                    kind,
                    lid,
                    row,
                    row["price"],
                    row["our_price"],
                    gap,
                    f"{row['retailer']} sells {row['sku']} at {_money(row['price'])}, {gap:.1%} under our "
                    f"{_money(row['our_price'])}{since}",
                    start,
                )
            elif kind == "map_violation":
                gap = 1 - row["price"] / row["map_price"]
                add(
                    kind,
                    lid,
                    row,
                    row["price"],
                    row["map_price"],
                    gap,
                    f"{row['retailer']} advertises {row['sku']} at {_money(row['price'])}, {gap:.1%} under "
                    f"its MAP {_money(row['map_price'])}{since}",
                    start,
                )
            else:
                add(
                    kind,
                    lid,
                    row,
                    None,
                    None,
                    float((as_of - start).days + 1),
                    f"{row['retailer']} listing {row['item_id']!r} is out of stock{since}",
                    start,
                )
    out = pd.DataFrame(events, columns=EVENT_COLUMNS)
    return out.sort_values(["kind", "listing_id"]).reset_index(drop=True)


# ----------------------------------------------------------------------------------- rules

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_HOURS = {"s": 1 / 3600, "m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0, "": 1.0}


def parse_duration(value: Any) -> float:
    """'90m', '12h', '1d', '2w', 0 → hours; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30m, 12h, 1d, 2w)")
    return float(m.group(1)) * _UNIT_HOURS[m.group(2)]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


class Scope(BaseModel):
    """Which listings a rule watches; empty lists mean everything."""

    model_config = ConfigDict(extra="forbid")
    products: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    retailers: list[str] = Field(default_factory=list)


class QuietHours(BaseModel):
    """A daily window (may wrap midnight) in which immediate alerts are held back."""

    model_config = ConfigDict(extra="forbid")
    start: time
    end: time
    tz: str = "UTC"

    _check_tz = field_validator("tz")(classmethod(lambda cls, v: _zone(v)))

    def contains(self, now: datetime) -> bool:
        """True when now falls inside the window (in the window's time zone)."""
        local = now.astimezone(ZoneInfo(self.tz)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Rule(BaseModel):
    """One alert rule: which events of one kind become alerts, how loud and how they are delivered."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal[KINDS]  # type: ignore[valid-type]
    enabled: bool = True
    description: str = ""
    scope: Scope = Field(default_factory=Scope)
    threshold: float = Field(default=0.0, ge=0)
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: float = 0.0  #: hours; in YAML a duration like 12h or 1d
    quiet_hours: QuietHours | None = None
    delivery: Literal["immediate", "digest"] = "immediate"
    channels: list[Literal["email", "slack", "webhook"]] = Field(default_factory=lambda: list(CHANNELS))

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown(cls, v: Any) -> float:
        return parse_duration(v)

    def selects(self, events: pd.DataFrame) -> pd.Series:
        """Boolean mask of the events this rule turns into alerts."""
        m = events["kind"] == self.kind
        if self.scope.products:
            m &= events["sku"].isin(self.scope.products)
        if self.scope.categories:
            m &= events["category"].isin(self.scope.categories)
        if self.scope.retailers:
            m &= events["retailer"].isin([r.lower() for r in self.scope.retailers])
        if self.threshold > 0:
            m &= events["value"].fillna(np.inf) >= self.threshold
        return m


class RuleSet(BaseModel):
    """A rule file: global quiet hours and digest time, then the rules."""

    model_config = ConfigDict(extra="forbid")
    timezone: str = "UTC"
    digest_time: time = time(8, 0)
    quiet_hours: QuietHours | None = None
    rules: list[Rule] = Field(default_factory=list)

    _check_tz = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        seen: set[str] = set()
        for r in self.rules:
            if r.name in seen:
                raise ValueError(f"rule name {r.name!r} is used twice")
            seen.add(r.name)
        return self

    def rule(self, name: str) -> Rule | None:
        """The rule called name, or None."""
        return next((r for r in self.rules if r.name == name), None)

    def apply(self, events: pd.DataFrame) -> pd.DataFrame:
        """Alerts: one row per (enabled rule, selected event) with rule, severity, delivery, channels, dedup_key."""
        parts = []
        for r in self.rules:
            if not r.enabled or events.empty:
                continue
            sel = events[r.selects(events)].copy()
            if sel.empty:
                continue
            sel["rule"] = r.name
            sel["severity"] = r.severity
            sel["delivery"] = r.delivery
            sel["channels"] = [list(r.channels)] * len(sel)
            sel["cooldown"] = r.cooldown
            parts.append(sel)
        if not parts:
            return pd.DataFrame(
                columns=EVENT_COLUMNS + ["rule", "severity", "delivery", "channels", "cooldown", "dedup_key"]
            )
        out = pd.concat(parts, ignore_index=True)
        out["dedup_key"] = [dedup_key(r) for r in out.to_dict("records")]
        return out


def dedup_key(alert: dict) -> str:
    """Stable identity: rule, kind, listing and the day (events) or the episode's first day (conditions)."""
    day = alert["episode_start"] if alert["kind"] in STATE_KINDS and alert.get("episode_start") else alert["ds"]
    return f"{alert['rule']}|{alert['kind']}|{alert['listing_id']}|{pd.Timestamp(day).date().isoformat()}"


def _where(raw: Any, loc: tuple) -> str:
    """'rule 'x' (rules[2]), field threshold' for a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        name = None
        try:
            name = raw["rules"][loc[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        field = ".".join(str(x) for x in loc[2:]) or "(the rule itself)"
        label = f"rule {name!r} (rules[{loc[1]}])" if name else f"rules[{loc[1]}]"
        return f"{label}, field {field}"
    return f"field {'.'.join(str(x) for x in loc) or '(top level)'}"


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Validate rule YAML; RuleError names the source, the rule and the field of every problem."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise RuleError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise RuleError(f"{source}: expected a mapping with a `rules:` list, got {type(raw).__name__}")
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            msg = e["msg"].removeprefix("Value error, ")
            got = f" (got {e['input']!r})" if not isinstance(e.get("input"), (dict, list)) else ""
            lines.append(f"{source}: {_where(raw, tuple(e['loc']))}: {msg}{got}")
        raise RuleError("invalid alert rules:\n  " + "\n  ".join(lines)) from None


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read and validate a rule file (default: PRICEINTEL_ALERT_RULES or config/alert_rules.yaml)."""
    from priceintel import config

    path = Path(path) if path is not None else config.notify_settings().rules_file
    if not path.exists():
        raise RuleError(f"alert rule file not found: {path}")
    return parse_rules(path.read_text(), str(path))


def save_rules(text: str, path: str | Path) -> RuleSet:
    """Validate rule YAML and only then write it to path (the app's save button)."""
    rules = parse_rules(text, str(path))
    Path(path).write_text(text if text.endswith("\n") else text + "\n")
    return rules


def set_rule_enabled(path: str | Path, name: str, enabled: bool) -> RuleSet:
    """Enable or disable one rule in the file (other content is re-dumped as YAML)."""
    rules = load_rules(path)
    raw = yaml.safe_load(Path(path).read_text())
    for item in raw.get("rules", []):
        if item.get("name") == name:
            item["enabled"] = bool(enabled)
            break
    else:
        raise RuleError(f"{path}: no rule named {name!r} (rules: {', '.join(r.name for r in rules.rules)})")
    return save_rules(yaml.safe_dump(raw, sort_keys=False), path)


# ----------------------------------------------------------------------------------- store

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


def store_alerts(engine, alerts: pd.DataFrame, as_of: date | None = None) -> StoreResult:
    """Insert new alerts (dedup_key makes re-runs no-ops), honour cooldowns, auto-resolve cleared conditions."""
    inserted = dup = cooled = 0
    with engine.begin() as conn:
        for rec in alerts.to_dict("records"):
            exists = conn.execute(sa.text("SELECT 1 FROM alert WHERE dedup_key = :k"), {"k": rec["dedup_key"]}).first()
            if not exists and rec["kind"] in STATE_KINDS:  # the condition's open alert already covers it
                exists = conn.execute(
                    sa.text(
                        "SELECT 1 FROM alert WHERE rule = :r AND kind = :k AND listing_id = :l AND state <> 'resolved'"
                    ),
                    {"r": rec["rule"], "k": rec["kind"], "l": int(rec["listing_id"])},
                ).first()
            if exists:
                dup += 1
                continue
            if rec.get("cooldown"):
                last = conn.execute(
                    sa.text("SELECT max(ds) FROM alert WHERE rule = :r AND listing_id = :l AND ds <= :d"),
                    {"r": rec["rule"], "l": int(rec["listing_id"]), "d": rec["ds"]},
                ).scalar()
                if last is not None and (rec["ds"] - last).days * 24 < rec["cooldown"]:
                    cooled += 1
                    continue
            row = {c: plain(rec.get(c)) for c in _COLS}
            row["details"] = json.dumps({"title": plain(rec.get("title"))})
            res = conn.execute(
                sa.text(f"""
                INSERT INTO alert ({", ".join(_COLS)}) VALUES ({", ".join(":" + c for c in _COLS)})
                ON CONFLICT (dedup_key) DO NOTHING RETURNING alert_id"""),
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
    where, params = [], {"limit": int(limit)}
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
            UPDATE alert SET state = :s, updated_at = now(),
                   resolved_by = CASE WHEN :s = 'resolved' THEN :by ELSE resolved_by END
            WHERE alert_id = ANY(:ids) AND state IS DISTINCT FROM :s"""),
            {"s": state, "ids": ids, "by": by},
        )
    return res.rowcount


# -------------------------------------------------------------------------------- delivery


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def deliver_pending(engine, notifiers: dict, rules: RuleSet, now: datetime | None = None) -> dict:
    """Send every new alert not yet sent on each of its channels; failures are recorded, never raised."""
    from priceintel.alerts import notify

    now = _now(now)
    sent = {"alerts": 0, "digests": 0, "failed": 0, "held_quiet": 0, "held_digest": 0}
    if not notifiers:
        return sent
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
        local = now.astimezone(ZoneInfo(rules.timezone))
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
    digest_time_passed = local.time() >= rules.digest_time
    batches: dict[tuple[str, str], list[dict]] = {}
    for rec in pending.to_dict("records"):
        rule = rules.rule(rec["rule"])
        quiet = rule.quiet_hours if rule and rule.quiet_hours else rules.quiet_hours
        for channel in rec["channels"]:
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
                        "dd": local.date() if kind == "digest" else None,
                    },
                )
        if outcome.ok:
            sent["digests" if kind == "digest" else "alerts"] += 1
        else:
            sent["failed"] += 1
    return sent


# ---------------------------------------------------------------------------- orchestration


def run_alerts(
    engine,
    rules: RuleSet | None = None,
    notifiers: dict | None = None,
    as_of: date | None = None,
    now: datetime | None = None,
) -> dict:
    """Detect, apply rules, store (deduplicated) and deliver; returns counts for the receipt."""
    from priceintel.alerts import notify

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
