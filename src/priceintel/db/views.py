"""The apps' materialized views (migration 0007): refreshed after every load and model run.

Readers (the apps, the API) key their caches on `app_refresh`, which every refresh stamps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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
    with engine.begin() as conn:
        # the concurrent refresh diffs old and new rows with joins and sorts: give them memory
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'")
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{REFRESH_WORK_MEM}'")
        for name in names:
            t0 = time.perf_counter()
            conc = concurrently
            if conc is None:
                conc = conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {name})")).scalar()
            conn.exec_driver_sql(f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if conc else ''}{name}")
            conn.exec_driver_sql(f"ANALYZE {name}")
            secs = round(time.perf_counter() - t0, 3)
            timings[name] = secs
            conn.execute(
                sa.text("""
                INSERT INTO app_refresh (name, refreshed_at, n_rows, seconds)
                VALUES (CAST(:n AS text), clock_timestamp(),
                        (SELECT reltuples::bigint FROM pg_class WHERE relname::text = CAST(:n AS text)), :s)
                ON CONFLICT (name) DO UPDATE SET refreshed_at = excluded.refreshed_at, n_rows = excluded.n_rows,
                                                 seconds = excluded.seconds"""),
                {"n": name, "s": secs},
            )
    return timings
