"""`priceintel summary`: where a pipeline run's results and the apps are, and its headline figures."""

from __future__ import annotations

import json
from pathlib import Path

from priceintel import PriceIntelError, config


def _fmt(value, spec: str = ".3f") -> str:
    """A figure for the summary, or n/a when it is missing (NaN is stored as null)."""
    return "n/a" if value is None else format(value, spec)


def _table_counts(s: dict, tenant: str | None):
    """Row counts per table of the run's tenant from the database, or the load step's counts in summary.json
    when it is down."""
    try:
        from priceintel.db import engine as db_engine
        from priceintel.db import queries, tenancy

        with tenancy.scope(tenant):
            return queries.table_counts(db_engine.get_engine())
    except PriceIntelError:
        return s.get("load")


def _figures(s: dict) -> list[str]:
    """The matching, forecast and elasticity lines of a run's summary.json (those it holds)."""
    lines = []
    m = s.get("match", {})
    if m:
        lines.append(
            f"matching F1 vs truth:      {_fmt(m.get('f1'))} (precision {_fmt(m.get('precision'))}, "
            f"recall {_fmt(m.get('recall'))})"
        )
    f = s.get("forecast", {})
    if f:
        lines.append(
            f"forecast:                  {f.get('best_model')} MAE {_fmt(f.get('best_model_mae'))} vs "
            f"{f.get('best_baseline')} {_fmt(f.get('best_baseline_mae'))}"
        )
    e = s.get("elasticity", {})
    if "mae_vs_truth" in e:
        lines.append(
            f"elasticity MAE vs truth:   {_fmt(e.get('mae_vs_truth'))} "
            f"(95% CI coverage {_fmt(e.get('ci95_coverage'), '.0%')})"
        )
    return lines


def summary_lines(env: dict) -> list[str]:
    """The lines `priceintel summary` prints for a pipeline env; PriceIntelError when no run wrote a summary."""
    reports = Path(env["reports_dir"])
    summary_path = reports / "summary.json"
    if not summary_path.exists():
        raise PriceIntelError(f"no summary at {summary_path}: run `priceintel run` first")
    s = json.loads(summary_path.read_text())
    from priceintel.pipeline.run import pipeline_tenant

    tenant = pipeline_tenant(env)
    users = "priceintel users add NAME" + (f" --tenant {tenant}" if tenant else "")
    keys = "priceintel keys create NAME" + (f" --tenant {tenant}" if tenant else "")
    lines = [
        "=" * 72,
        "Price Intelligence Workbench: demo run complete",
        "=" * 72,
        f"executed notebooks (HTML): {reports}/0[0-7]-*.html",
        f"summary:                   {summary_path}",
        f"tenant:                    {tenant or 'the database default'}",
        f"database rows:             {_table_counts(s, tenant)}",
        *_figures(s),
    ]
    apps = sorted(p.stem for p in (config.PROJ_ROOT / "notebooks" / "apps").glob("*.ipynb"))
    return [
        *lines,
        f"quality report:            {reports / 'quality.html'}",
        f"apps:                      make apps  ->  http://127.0.0.1:8866/ ({', '.join(apps)}); "
        f"sign in (add a user once: {users})",
        f"api:                       make api  ->  http://127.0.0.1:8000/docs (a key: {keys})",
        "jupyterlab:                make lab",
    ]
