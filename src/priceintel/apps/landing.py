"""The landing page of the apps (notebooks/apps/index.ipynb): one card per app and the latest pipeline run."""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from priceintel.apps.widgets import SIGNOUT_FORM

#: (title, notebook, audience note, description) of every app on the landing page
APPS = [
    (
        "Price monitor",
        "price_monitor.ipynb",
        "",
        "Competitor prices next to ours per day: gaps, stock and promotions, with CSV / Excel / PDF export.",
    ),
    (
        "Forecasts",
        "forecasts.ipynb",
        "",
        "Where each competitor price is heading: chosen model, 80% and 95% bands, backtests.",
    ),
    (
        "Elasticity",
        "elasticity.ipynb",
        "",
        "How demand reacts to price, and the recommended price with its reason; what-if prices.",
    ),
    (
        "Alerts",
        "alerts.ipynb",
        "",
        "Price drops, undercuts and stock-outs: filter, acknowledge, resolve; edit the alert rules.",
    ),
    (
        "Match review",
        "match_review.ipynb",
        "for data scientists",
        "Confirm or reject the product matches the matcher was unsure about.",
    ),
    (
        "Onboarding",
        "onboarding.ipynb",
        "for the team setting up",
        "Import our catalogue, sales or watch list from a file; preview a competitor page; watch health.",
    ),
    (
        "Usage",
        "usage.ipynb",
        "for admins",
        "Our plan and its limits, today's use against them, and requests, exports and page checks per day.",
    ),
    (
        "Operations",
        "ops.ipynb",
        "for whoever runs it",
        "Last runs and failures, how fresh each shop's prices are, and the health of the watched pages per shop.",
    ),
]


def latest_run(engine=None, reports_dir: Path | None = None) -> dict | None:
    """The most recent pipeline run: task, status, started/finished (UTC), duration; None when there is none.

    Read from the pipeline_run table (a whole run is task 'pipeline'; a pipeline built without the CLI records
    its 'load' task), else from reports/last_run.json.
    """
    import sqlalchemy as sa

    if engine is not None:
        try:
            with engine.connect() as conn:
                row = (
                    conn.execute(
                        sa.text(
                            "SELECT run_id, task, status, started_at, finished_at, counts, errors FROM pipeline_run "
                            "ORDER BY (task = 'pipeline') DESC, started_at DESC, run_id DESC LIMIT 1"
                        )
                    )
                    .mappings()
                    .first()
                )
        except sa.exc.SQLAlchemyError:
            row = None
        if row is not None:
            out = dict(row)
            if out["finished_at"] is not None:
                out["seconds"] = (out["finished_at"] - out["started_at"]).total_seconds()
            out["source"] = "database"
            return out
    from priceintel import config

    path = (reports_dir or config.reports_dir()) / "last_run.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        finished = pd.Timestamp(data["finished_at"]).to_pydatetime() if data.get("finished_at") else None
        return {
            "run_id": None,
            "task": "pipeline",
            "status": data.get("status", "unknown"),
            "started_at": None,
            "finished_at": finished,
            "errors": {"error": data["error"]} if data.get("error") else None,
            "source": str(path),
        }
    return None


def _when(ts: datetime | None) -> str:
    """'2026-11-26 04:05 UTC' (or an em dash)."""
    if ts is None:
        return "—"
    t = pd.Timestamp(ts)
    t = t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")
    return t.strftime("%Y-%m-%d %H:%M UTC")


def run_html(run: dict | None) -> str:
    """The 'latest pipeline run' panel of the landing page."""
    if run is None:
        return (
            '<div class="pi-run" id="pi-latest-run">No pipeline run recorded yet: run <code>make demo</code> '
            "or <code>priceintel run</code>.</div>"
        )
    status = html.escape(str(run.get("status")))
    parts = [
        f"<b>Latest pipeline run</b>{' #' + str(run['run_id']) if run.get('run_id') else ''} "
        f'({html.escape(str(run.get("task")))}): <span class="status-{status}">{status}</span>',
        f'finished <span class="run-time">{_when(run.get("finished_at"))}</span>'
        if run.get("finished_at")
        else f"started {_when(run.get('started_at'))}",
    ]
    if run.get("seconds") is not None:
        parts.append(f"took {run['seconds']:.0f} s")
    err = (run.get("errors") or {}).get("error") if isinstance(run.get("errors"), dict) else None
    if err:
        parts.append(f'<span class="status-failed">{html.escape(str(err))}</span>')
    return '<div class="pi-run" id="pi-latest-run">' + " · ".join(parts) + "</div>"


def landing_html(run: dict | None, apps: list = APPS) -> str:
    """The landing page: title, sign-out button, latest run and one card per app (relative links)."""
    cards = "".join(
        f'<a class="pi-app-card" href="{html.escape(nb)}" data-app="{html.escape(Path(nb).stem)}">'
        f"<h3>{html.escape(title)}</h3>"
        + (f'<div class="aud">{html.escape(aud)}</div>' if aud else "")
        + f"<p>{html.escape(desc)}</p></a>"
        for title, nb, aud, desc in apps
    )
    return (
        f'<div class="pi-app pi-landing"><div class="pi-topbar"><h2>Price Intelligence</h2>'
        f"{SIGNOUT_FORM}</div>"
        f'{run_html(run)}<div class="pi-apps">{cards}</div></div>'
    )


def landing(engine=None) -> None:
    """The landing page (notebooks/apps/index.ipynb): plain HTML, nothing on it needs a widget, so it is shown as a
    first paint (`widgets.show_preview`) that stays: the page shows it as soon as it arrives."""
    from priceintel.apps.widgets import show_preview
    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    show_preview(landing_html(latest_run(engine)))
