"""Alert rules: the pydantic rule model (scope, threshold, severity, cooldown, quiet hours, delivery, channels)
and the YAML rule file: parse, load, save, enable/disable one rule.

`RuleSet.apply(events)` turns `detect.detect`'s events into alerts with a stable `dedup_key`; a bad rule file
raises `RuleError` naming the file, the rule and the field.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from priceintel import PriceIntelError
from priceintel.alerts.detect import EVENT_COLUMNS, KINDS, STATE_KINDS
from priceintel.storage import file_lock

#: a channel: email, slack, webhook, apprise (every Apprise channel) or the name of one Apprise channel
#: (PRICEINTEL_APPRISE_URLS); a channel not configured is skipped
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
CHANNELS: tuple[str, ...] = ("email", "slack", "webhook", "apprise")
SEVERITIES = ("info", "warning", "critical")


class RuleError(PriceIntelError):
    """An alert rule file is invalid; the message names the file, the rule and the field."""


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
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS))

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


def shared_rules_file() -> Path:
    """PRICEINTEL_ALERT_RULES, else config/alert_rules.yaml: the `default` tenant's rules, and where every other
    tenant's start."""
    from priceintel import config

    return config.notify_settings().rules_file or config.PROJ_ROOT / "config" / "alert_rules.yaml"


def default_rules_file() -> Path:
    """The current tenant's rule file (`db.tenancy`): the shared file (`shared_rules_file`) for the `default`
    tenant and for work in no named tenant; for any other tenant `data/tenants/<name>/alert_rules.yaml`, made
    from the shared file the first time the tenant needs its rules, so no tenant's changes reach another's."""
    from priceintel import config
    from priceintel.db import tenancy

    shared = shared_rules_file()
    tenant = tenancy.current()
    if tenant in (None, tenancy.DEFAULT):
        return shared
    path = config.data_dir() / "tenants" / tenant / "alert_rules.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with _rule_file_lock(path):
            if not path.exists():
                _write_rules(shared.read_text() if shared.is_file() else "rules: []\n", path)
    return path


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read and validate a rule file (default: PRICEINTEL_ALERT_RULES or config/alert_rules.yaml)."""
    path = Path(path) if path is not None else default_rules_file()
    if not path.exists():
        raise RuleError(f"alert rule file not found: {path}")
    return parse_rules(path.read_text(), str(path))


def _rule_file_lock(path: Path) -> AbstractContextManager[bool]:
    """An exclusive lock on the rule file (a `.lock` beside it) across processes: the apps and API workers
    change it one at a time."""
    return file_lock(path.with_name(path.name + ".lock"))


def _write_rules(text: str, path: Path) -> None:
    """Write the file whole or not at all (a temporary file beside it, then renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, path)


def save_rules(text: str, path: str | Path) -> RuleSet:
    """Validate rule YAML and only then write it to path (the app's save button, the API's PUT)."""
    rules = parse_rules(text, str(path))
    with _rule_file_lock(Path(path)):
        _write_rules(text, Path(path))
    return rules


def set_rule_enabled(path: str | Path, name: str, enabled: bool) -> RuleSet:
    """Enable or disable one rule in the file (other content is re-dumped as YAML), under the file's lock."""
    path = Path(path)
    with _rule_file_lock(path):
        rules = load_rules(path)
        raw = yaml.safe_load(path.read_text())
        for item in raw.get("rules", []):
            if item.get("name") == name:
                item["enabled"] = bool(enabled)
                break
        else:
            raise RuleError(f"{path}: no rule named {name!r} (rules: {', '.join(r.name for r in rules.rules)})")
        text = yaml.safe_dump(raw, sort_keys=False)
        updated = parse_rules(text, str(path))
        _write_rules(text, path)
    return updated


def describe_channels(rules: RuleSet, configured: list[str]) -> str:
    """'channels configured: …' and, per rule, the channels it names that are not configured (they are skipped)."""
    lines = [f"channels configured: {', '.join(configured) or 'none (alerts are stored, not sent)'}"]
    for r in rules.rules:
        missing = [c for c in r.channels if c not in configured and c not in CHANNELS]
        if missing:
            lines.append(f"rule {r.name}: channel(s) {', '.join(missing)} not configured (skipped)")
    return "\n".join(lines)


def describe_rules(rules: RuleSet) -> str:
    """'N rule(s) valid: a, b (disabled), …' (`priceintel alerts check-rules`)."""
    return f"{len(rules.rules)} rule(s) valid: " + ", ".join(
        f"{r.name}{'' if r.enabled else ' (disabled)'}" for r in rules.rules
    )
