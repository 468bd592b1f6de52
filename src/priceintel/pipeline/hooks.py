"""After every load: data-quality checks (stored per run, HTML report), then alerts and their delivery.

`after_load` is the `on_finish` hook of the pipeline's load task. A failing critical check notifies every
configured channel and raises `QualityError`, which marks the load task failed so Ploomber runs no
downstream task (forecast, elasticity, evaluate); warnings show in the report, and those in
`quality.NOTIFY_WARNINGS` (a shop's extraction rate collapsing) also notify every channel.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from priceintel.alerts import notify
from priceintel.alerts.deliver import run_alerts
from priceintel.alerts.rules import RuleSet
from priceintel.pipeline import quality


def frame_results(interim_dir: str | Path) -> list[quality.CheckResult]:
    """The stage-frame (pandera) check results the upstream hooks saved as interim/quality_*.json."""
    out: list[quality.CheckResult] = []
    for path in sorted(Path(interim_dir).glob("quality_*.json")):
        out.extend(quality.read_results(path))
    return out


def monitor_load(
    engine,
    run_key: str,
    interim_dir: str | Path | None = None,
    reports_dir: str | Path | None = None,
    rules: RuleSet | None = None,
    notifiers: dict | None = None,
    as_of: date | None = None,
    now: datetime | None = None,
    **check_options,
) -> dict:
    """Run and store every check for run_key; on a critical failure notify and raise, else run the alerts."""
    notifiers = notifiers if notifiers is not None else notify.from_settings()
    results = (frame_results(interim_dir) if interim_dir else []) + quality.sql_checks(engine, as_of, **check_options)
    quality.store_results(engine, results, run_key)
    report = quality.render_report(engine, Path(reports_dir) / "quality.html") if reports_dir else None
    failed = [r for r in results if not r.passed]
    critical = quality.critical_failures(results)
    outcome: dict = {
        "run_key": run_key,
        "checks": len(results),
        "failed": [r.name for r in failed],
        "report": str(report) if report else None,
    }
    loud = [r for r in failed if r.severity != "critical" and r.name in quality.NOTIFY_WARNINGS]
    if loud:
        note = notify.Notification(
            title=f"priceintel: {', '.join(sorted({r.name for r in loud}))} ({run_key})",
            kind="quality",
            lines=[r.detail for r in loud] + ([f"report: {report}"] if report else []),
        )
        sent = notify.broadcast(engine, notifiers, note)
        outcome["notified"] = {channel: d.ok for channel, d in sent.items()}
    if critical:
        lines = [
            f"{r.name} ({r.stage}): table {r.table}, column {r.column}: {r.failed_rows} rows. {r.detail}"
            for r in critical
        ]
        note = notify.Notification(
            title=f"priceintel: {len(critical)} critical data check(s) failed ({run_key})",
            kind="quality",
            lines=lines + ([f"report: {report}"] if report else []),
        )
        notify.broadcast(engine, notifiers, note)
        raise quality.QualityError("critical data checks failed, downstream tasks stopped:\n  " + "\n  ".join(lines))
    outcome["alerts"] = run_alerts(engine, rules, notifiers, as_of, now)
    return outcome


def after_load(product) -> None:
    """Ploomber on_finish hook of the load task: checks, alerts and notifications for this load."""
    from priceintel.db import engine as db_engine
    from priceintel.pipeline import stages as pipeline

    receipt_path = Path(str(product["receipt"]))
    receipt = pipeline.read_json(receipt_path)
    reports_dir = Path(str(product["nb"])).parent
    outcome = monitor_load(db_engine.get_engine(), f"load-{receipt.get('run_id')}", receipt_path.parent, reports_dir)
    pipeline.save_json(outcome, reports_dir / "monitor.json")
