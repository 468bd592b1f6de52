"""Alert manager (Voila app notebooks/apps/alerts.ipynb): filter alerts, acknowledge/resolve, view/enable/edit rules."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from priceintel import PriceIntelError
from priceintel.alerts import rules as alerts
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
    df = alerts.list_alerts(engine, state=state or None, kind=kind or None, severity=severity or None)
    return df[SHOWN] if len(df) else pd.DataFrame(columns=SHOWN)


def rules_frame(rules: alerts.RuleSet) -> pd.DataFrame:
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


def alerts_manager(engine=None, rules_path: str | Path | None = None):
    """The alert-manager panel: filters + alert table + acknowledge/resolve; rule table, toggle and editor."""
    import html

    import ipywidgets as w

    from priceintel import config
    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    path = Path(rules_path) if rules_path else config.notify_settings().rules_file
    state = w.Dropdown(options=[("all", ""), *[(s, s) for s in alerts.ALERT_STATES]], value="new", description="State")
    kind = w.Dropdown(options=[("all", ""), *[(k, k) for k in alerts.KINDS]], description="Kind")
    severity = w.Dropdown(options=[("all", ""), *[(s, s) for s in alerts.SEVERITIES]], description="Severity")
    ids = w.Text(placeholder="alert ids, e.g. 3, 5", description="Alerts").add_class("alert-ids")
    ack = w.Button(description="Acknowledge", button_style="info").add_class("ack-button")
    resolve = w.Button(description="Resolve", button_style="success").add_class("resolve-button")
    message = w.HTML().add_class("alert-msg")
    table = w.HTML()

    rule_pick = w.Dropdown(description="Rule")
    enabled = w.Checkbox(description="enabled").add_class("rule-enabled")
    apply_toggle = w.Button(description="Apply").add_class("toggle-button")
    editor = w.Textarea(layout=w.Layout(width="100%", height="320px")).add_class("rules-editor")
    save = w.Button(description="Validate & save", button_style="primary").add_class("save-button")
    rules_msg = w.HTML().add_class("rules-msg")
    rules_table = w.HTML()

    def say(widget, text: str, ok: bool) -> None:
        widget.value = f'<div class="{"msg-ok" if ok else "msg-err"}">{html.escape(text)}</div>'

    def show_alerts(*_) -> None:
        df = alerts_frame(engine, state.value, kind.value, severity.value)
        table.value = table_html(df, "alerts-table") + f"<p class='alert-count'>{len(df)} alert(s)</p>"

    def show_rules() -> None:
        try:
            rules = alerts.load_rules(path)
        except alerts.RuleError as err:
            say(rules_msg, str(err), False)
            return
        rules_table.value = table_html(rules_frame(rules), "rules-table")
        names = [r.name for r in rules.rules]
        keep = rule_pick.value if rule_pick.value in names else (names[0] if names else None)
        rule_pick.options = names
        rule_pick.value = keep
        editor.value = path.read_text()

    def change(to: str, label: str):
        def act(_) -> None:
            try:
                n = alerts.set_state(engine, parse_ids(ids.value), to)
                say(message, f"{n} alert(s) {label}", True)
                ids.value = ""
                overview.refresh()  # the overview's figures follow the new states
            except PriceIntelError as err:
                say(message, str(err), False)
            show_alerts()

        return act

    def pick(change_: dict) -> None:
        rule = alerts.load_rules(path).rule(change_["new"]) if change_["new"] else None
        enabled.value = bool(rule and rule.enabled)

    def toggle(_) -> None:
        try:
            alerts.set_rule_enabled(path, rule_pick.value, enabled.value)
            say(rules_msg, f"rule {rule_pick.value} {'enabled' if enabled.value else 'disabled'}", True)
        except PriceIntelError as err:
            say(rules_msg, str(err), False)
        show_rules()

    def save_rules(_) -> None:
        try:
            rules = alerts.save_rules(editor.value, path)
            say(rules_msg, f"saved {len(rules.rules)} rule(s) to {path.name}", True)
            show_rules()
        except PriceIntelError as err:
            say(rules_msg, str(err), False)

    from priceintel.apps.widgets import app_page, dashboard_panel

    overview = dashboard_panel(engine, "alerts", "Price alerts")
    for dd in (state, kind, severity):
        dd.observe(show_alerts, names="value")
    ack.on_click(change("acknowledged", "acknowledged"))
    resolve.on_click(change("resolved", "resolved"))
    rule_pick.observe(pick, names="value")
    apply_toggle.on_click(toggle)
    save.on_click(save_rules)
    show_alerts()
    show_rules()
    pick({"new": rule_pick.value})
    box = w.Layout(flex_flow="row wrap")
    manager = w.VBox(
        [
            w.HTML("<h2>Manage alerts</h2>"),
            w.HBox([state, kind, severity], layout=box),
            w.HBox([ids, ack, resolve], layout=box),
            message,
            table,
            w.HTML(f"<h3>Rules <small>({html.escape(str(path))})</small></h3>"),
            rules_table,
            w.HBox([rule_pick, enabled, apply_toggle], layout=box),
            editor,
            save,
            rules_msg,
        ],
        layout=w.Layout(width="100%"),
    ).add_class("alerts-manager")
    return app_page(engine, "alerts", "Price alerts", [manager], css=APP_CSS, panel=overview)
