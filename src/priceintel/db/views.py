"""The apps' materialized views (migration 0007): refreshed after every load and model run.

Each holds every tenant's rows as `<name>_all` (migration 0014), read through the view `<name>` that keeps the
current tenant's; the refresh runs as the owner, across tenants. Readers (the apps, the API) key their caches on
`app_refresh`, which every refresh stamps, and on their tenant.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel.db import tenancy

#: materialized views in refresh order (later ones read earlier ones)
MATERIALIZED = ("mv_app_prices", "mv_app_prices_daily", "mv_app_listing_span", "mv_app_forecasts", "mv_app_elasticity")
#: work_mem / maintenance_work_mem of the refresh transaction
REFRESH_WORK_MEM = "256MB"


def refresh(engine: Engine, views: Iterable[str] | None = None, concurrently: bool | None = None) -> dict:
    """REFRESH the app materialized views (all, or the named ones in dependency order), ANALYZE them,
    stamp app_refresh (which changes the apps' `load_key`); returns seconds per view.

    concurrently=None refreshes CONCURRENTLY (readers never blocked) when the view already has rows and
    plainly when it is empty (the first fill, much faster); True/False force the choice.
    """
    names = list(MATERIALIZED) if views is None else [v for v in MATERIALIZED if v in set(views)]
    unknown = set(views or ()) - set(MATERIALIZED)
    if unknown:
        raise ValueError(f"refresh: unknown view(s) {sorted(unknown)}; expected some of {', '.join(MATERIALIZED)}")
    timings: dict[str, float] = {}
    with tenancy.as_owner(), engine.begin() as conn:
        stored = _stored_names(conn)
        # the concurrent refresh diffs old and new rows with joins and sorts: give them memory
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'")
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{REFRESH_WORK_MEM}'")
        for name in names:
            t0 = time.perf_counter()
            conc = concurrently
            mv = stored[name]
            if conc is None:
                conc = conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {mv})")).scalar()
            conn.exec_driver_sql(f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if conc else ''}{mv}")
            conn.exec_driver_sql(f"ANALYZE {mv}")
            secs = round(time.perf_counter() - t0, 3)
            timings[name] = secs
            conn.execute(
                sa.text("""
                INSERT INTO app_refresh (name, refreshed_at, n_rows, seconds)
                VALUES (CAST(:n AS text), clock_timestamp(),
                        (SELECT reltuples::bigint FROM pg_class WHERE relname::text = CAST(:mv AS text)), :s)
                ON CONFLICT (name) DO UPDATE SET refreshed_at = excluded.refreshed_at, n_rows = excluded.n_rows,
                                                 seconds = excluded.seconds"""),
                {"n": name, "mv": mv, "s": secs},
            )
    return timings


def _stored_names(conn: sa.Connection) -> dict[str, str]:
    """view name -> the materialized view holding its rows (`<name>_all` since migration 0014)."""
    present = {r[0] for r in conn.execute(sa.text("SELECT matviewname FROM pg_matviews WHERE schemaname = 'public'"))}
    return {name: f"{name}_all" if f"{name}_all" in present else name for name in MATERIALIZED}
