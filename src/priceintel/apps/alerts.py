"""Alert manager (Voila app notebooks/apps/alerts.ipynb): filter alerts, acknowledge/resolve, view/enable/edit rules."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from priceintel import PriceIntelError
from priceintel.alerts.detect import KINDS
from priceintel.alerts.rules import (
    SEVERITIES,
    RuleError,
    RuleSet,
    default_rules_file,
    load_rules,
    save_rules,
    set_rule_enabled,
)
from priceintel.alerts.store import ALERT_STATES, list_alerts, set_state
from priceintel.apps import session
from priceintel.apps.prices import table_html

APP_CSS = """<style>
table.alerts-table, table.rules-table { border-collapse: collapse; width: 100%; font-size: 13px; }
table.alerts-table th, table.alerts-table td, table.rules-table th, table.rules-table td {
  padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
.msg-ok { color: #070; } .msg-err { color: #b00; white-space: pre-wrap; }
</style>"""

SHOWN = ["alert_id", "ds", "severity", "state", "kind", "retailer", "item_id", "sku", "reason"]


def alerts_frame(engine, state: str = "", kind: str = "", severity: str = "") -> pd.DataFrame:
    """Alerts for the table, filtered ('' = all)."""
    df = list_alerts(engine, state=state or None, kind=kind or None, severity=severity or None)
    return df[SHOWN] if len(df) else pd.DataFrame(columns=SHOWN)


def rules_frame(rules: RuleSet) -> pd.DataFrame:
    """One row per rule: name, kind, enabled, severity, threshold, scope, delivery, cooldown (h)."""
    rows = []
    for r in rules.rules:
        scope = "; ".join(f"{k}: {', '.join(v)}" for k, v in r.scope.model_dump().items() if v) or "all"
        rows.append(
            {
                "name": r.name,
                "kind": r.kind,
                "enabled": r.enabled,
                "severity": r.severity,
                "threshold": r.threshold,
                "scope": scope,
                "delivery": r.delivery,
                "cooldown_h": r.cooldown,
            }
        )
    return pd.DataFrame(rows)


def parse_ids(text: str) -> list[int]:
    """'3, 5 7' → [3, 5, 7]; a non-number raises PriceIntelError naming it."""
    out = []
    for tok in text.replace(",", " ").split():
        if not tok.isdigit():
            raise PriceIntelError(f"alert id {tok!r} is not a number")
        out.append(int(tok))
    if not out:
        raise PriceIntelError("enter one or more alert ids (e.g. 3, 5)")
    return out


def _say(widget, text: str, ok: bool) -> None:
    """Show a success or error message in an HTML widget."""
    widget.value = f'<div class="{"msg-ok" if ok else "msg-err"}">{html.escape(text)}</div>'


class AlertsManager:
    """The alert-manager block under the alerts dashboard: filters + alert table + acknowledge/resolve, then the
    rule table, an enable toggle and the rule editor (validated before it is saved)."""

    def __init__(self, engine, path: Path):
        import ipywidgets as w

        from priceintel.apps.widgets import dashboard_panel

        self.engine, self.path = engine, path
        self._alert_widgets(w)
        self._rule_widgets(w)
        self.overview = dashboard_panel(engine, "alerts", "Price alerts")
        for dd in (self.state, self.kind, self.severity):
            dd.observe(self.show_alerts, names="value")
        self.ack.on_click(lambda _: self.change("acknowledged", "acknowledged"))
        self.resolve.on_click(lambda _: self.change("resolved", "resolved"))
        self.rule_pick.observe(self.pick, names="value")
        self.apply_toggle.on_click(self.toggle)
        self.save.on_click(self.save_file)
        self.show_alerts()
        self.show_rules()
        self.pick({"new": self.rule_pick.value})
        self.widget = self._layout(w)

    def _alert_widgets(self, w) -> None:
        self.state = w.Dropdown(
            options=[("all", ""), *[(s, s) for s in ALERT_STATES]], value="new", description="State"
        )
        self.kind = w.Dropdown(options=[("all", ""), *[(k, k) for k in KINDS]], description="Kind")
        self.severity = w.Dropdown(options=[("all", ""), *[(s, s) for s in SEVERITIES]], description="Severity")
        self.ids = w.Text(placeholder="alert ids, e.g. 3, 5", description="Alerts").add_class("alert-ids")
        self.ack = w.Button(description="Acknowledge", button_style="info").add_class("ack-button")
        self.resolve = w.Button(description="Resolve", button_style="success").add_class("resolve-button")
        self.message = w.HTML().add_class("alert-msg")
        self.table = w.HTML()

    def _rule_widgets(self, w) -> None:
        self.rule_pick = w.Dropdown(description="Rule")
        self.enabled = w.Checkbox(description="enabled").add_class("rule-enabled")
        self.apply_toggle = w.Button(description="Apply").add_class("toggle-button")
        self.editor = w.Textarea(layout=w.Layout(width="100%", height="320px")).add_class("rules-editor")
        self.save = w.Button(description="Validate & save", button_style="primary").add_class("save-button")
        self.rules_msg = w.HTML().add_class("rules-msg")
        self.rules_table = w.HTML()

    def _layout(self, w):
        box = w.Layout(flex_flow="row wrap")
        return w.VBox(
            [
                w.HTML("<h2>Manage alerts</h2>"),
                w.HBox([self.state, self.kind, self.severity], layout=box),
                w.HBox([self.ids, self.ack, self.resolve], layout=box),
                self.message,
                self.table,
                w.HTML(f"<h3>Rules <small>({html.escape(str(self.path))})</small></h3>"),
                self.rules_table,
                w.HBox([self.rule_pick, self.enabled, self.apply_toggle], layout=box),
                self.editor,
                self.save,
                self.rules_msg,
            ],
            layout=w.Layout(width="100%"),
        ).add_class("alerts-manager")

    def show_alerts(self, *_) -> None:
        """The alert table under the current filters."""
        df = alerts_frame(self.engine, self.state.value, self.kind.value, self.severity.value)
        self.table.value = table_html(df, "alerts-table") + f"<p class='alert-count'>{len(df)} alert(s)</p>"

    def show_rules(self) -> None:
        """The rule table, the rule picker and the editor from the rule file (or its error)."""
        try:
            rules = load_rules(self.path)
        except RuleError as err:
            _say(self.rules_msg, str(err), False)
            return
        self.rules_table.value = table_html(rules_frame(rules), "rules-table")
        names = [r.name for r in rules.rules]
        keep = self.rule_pick.value if self.rule_pick.value in names else (names[0] if names else None)
        self.rule_pick.options = names
        self.rule_pick.value = keep
        self.editor.value = self.path.read_text()

    def change(self, to: str, label: str) -> None:
        """Set the typed alerts' state (acknowledged | resolved)."""
        try:
            session.require_change(self.engine)
            n = set_state(self.engine, parse_ids(self.ids.value), to, by=session.label())
            _say(self.message, f"{n} alert(s) {label}", True)
            self.ids.value = ""
            self.overview.refresh()  # the overview's figures follow the new states
        except PriceIntelError as err:
            _say(self.message, str(err), False)
        self.show_alerts()

    def pick(self, change_: dict) -> None:
        """A rule was picked: its enabled box follows the file."""
        rule = load_rules(self.path).rule(change_["new"]) if change_["new"] else None
        self.enabled.value = bool(rule and rule.enabled)

    def toggle(self, _) -> None:
        """Enable or disable the picked rule in the file."""
        name, on = self.rule_pick.value, self.enabled.value
        try:
            session.require_change(self.engine)
            set_rule_enabled(self.path, name, on)
            _say(self.rules_msg, f"rule {name} {'enabled' if on else 'disabled'}", True)
        except PriceIntelError as err:
            _say(self.rules_msg, str(err), False)
        self.show_rules()

    def save_file(self, _) -> None:
        """Validate the editor's YAML and only then write it to the rule file."""
        try:
            session.require_change(self.engine)
            rules = save_rules(self.editor.value, self.path)
            _say(self.rules_msg, f"saved {len(rules.rules)} rule(s) to {self.path.name}", True)
            self.show_rules()
        except PriceIntelError as err:
            _say(self.rules_msg, str(err), False)


def alerts_manager(engine=None, rules_path: str | Path | None = None):
    """The alerts app: the alerts dashboard, then the alert manager (AlertsManager) under it."""
    from priceintel.apps.widgets import app_page
    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    path = Path(rules_path) if rules_path else default_rules_file()  # the user's tenant's rules
    manager = AlertsManager(engine, path)
    return app_page(engine, "alerts", "Price alerts", [manager.widget], css=APP_CSS, panel=manager.overview)
