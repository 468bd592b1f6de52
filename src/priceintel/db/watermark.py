"""Incremental loading: the load watermark (migration 0018, docs/history.md).

`load_watermark` holds, per tenant, source (the pipeline's scraped observations: SOURCE) and retailer, the newest
`observed_at` a load stored. `fresh` picks the observations a load has to stage:

- every observation newer than its retailer's watermark;
- of those at or below it (late rows: a scrape that finished after a later one was loaded, a re-run of old
  inputs), the ones the warehouse does not hold at least as new: no fact_price row for that listing and day, or
  one observed earlier. They are found with one query over their keys, without staging the rows.

So a re-run of the same inputs stages nothing (and does it quickly), and no late row is lost. `full=True` (the
pipeline's `full_reload` setting) stages every observation: to re-process stored days with changed code.

`advance` moves each retailer's watermark to the newest observation loaded, never back, inside the caller's
transaction: it moves exactly when the load commits; a failed load leaves it where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from priceintel.db.staging import cols, prepare, stage

__all__ = ["SOURCE", "Fresh", "advance", "fresh", "is_true", "read"]

#: the source of the pipeline load's observations (scraped pages)
SOURCE = "scrape"
_KEYS = ["retailer", "item_id", "ds"]
_COLS = cols("retailer! item_id! ds:date! observed_at:timestamptz!")
_LATE = """
SELECT s._row FROM stg_watermark s
LEFT JOIN dim_retailer r ON r.retailer = s.retailer
LEFT JOIN dim_listing l ON l.retailer_id = r.retailer_id AND l.item_id = s.item_id
LEFT JOIN fact_price fp ON fp.listing_id = l.listing_id AND fp.date_key = to_char(s.ds, 'YYYYMMDD')::int
     AND fp.date_key BETWEEN :lo AND :hi
WHERE fp.observed_at IS NULL OR fp.observed_at < s.observed_at
"""  # :lo/:hi: the staged days as constants, so only their partitions of fact_price are read
_TRUE = {"1", "true", "yes", "y", "on", "t"}


@dataclass(frozen=True)
class Fresh:
    """The observations a load stages (`rows`) and how they were chosen."""

    rows: pd.DataFrame
    source: str
    seen: int  #: observations given
    new: int  #: newer than their retailer's watermark
    late: int  #: at or below it but missing from the warehouse (or stored older)
    full: bool  #: every observation (a full reload)

    @property
    def skipped(self) -> int:
        """Observations left out: the warehouse holds them already."""
        return self.seen - len(self.rows)


def is_true(value: Any) -> bool:
    """A yes/no setting as the pipeline passes it (True, "true", "1", "yes"; anything else is no)."""
    return value is True or str(value).strip().lower() in _TRUE


def _marks(conn: Connection | Engine, source: str) -> dict[str, datetime]:
    sql = sa.text("SELECT retailer, observed_at FROM load_watermark WHERE source = :s")
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return dict(c.execute(sql, {"s": source}).tuples().all())
    return dict(conn.execute(sql, {"s": source}).tuples().all())


def read(bind: Connection | Engine, source: str = SOURCE) -> dict[str, datetime]:
    """The tenant's watermarks of `source`: {retailer: newest observed_at loaded}."""
    return _marks(bind, source)


def fresh(conn: Connection, obs: pd.DataFrame, source: str = SOURCE, full: Any = False) -> Fresh:
    """The observations of `obs` (retailer, item_id, ds, observed_at, …) a load has to stage (module doc)."""
    full = is_true(full)
    if full or obs.empty or "observed_at" not in obs.columns:
        return Fresh(obs, source, len(obs), len(obs), 0, full)
    marks = _marks(conn, source)
    at = pd.to_datetime(obs["observed_at"], utc=True)
    mark = obs["retailer"].astype(str).map(lambda r: marks.get(r))
    limit = pd.to_datetime(mark, utc=True)
    newer = (limit.isna() | at.isna() | (at > limit)).to_numpy()
    older = np.flatnonzero(~newer)  # positions of the rows at or below their watermark
    late = np.zeros(len(obs), dtype=bool)
    if len(older):
        present, conv = prepare(obs.iloc[older][[*_KEYS, "observed_at"]], "load_watermark", _COLS, _KEYS)
        stage(conn, "stg_watermark", present, conv)
        days = pd.to_datetime(obs["ds"].iloc[older])
        bounds = {"lo": int(f"{days.min():%Y%m%d}"), "hi": int(f"{days.max():%Y%m%d}")}
        late[older[conn.execute(sa.text(_LATE), bounds).scalars().all()]] = True
    return Fresh(obs[newer | late], source, len(obs), int(newer.sum()), int(late.sum()), False)


def advance(conn: Connection, loaded: Fresh, run_id: int | None = None) -> dict:
    """Move the watermark of each retailer of `loaded.rows` to its newest observed_at (never back), in the caller's
    transaction; returns the counts of the load's choice (seen, staged, new, late, skipped, full) and the number
    of retailers whose watermark moved."""
    out = {
        "seen": loaded.seen,
        "staged": len(loaded.rows),
        "new": loaded.new,
        "late": loaded.late,
        "skipped": loaded.skipped,
        "full": loaded.full,
        "advanced": 0,
    }
    rows = loaded.rows
    if rows.empty or "observed_at" not in rows.columns:
        return out
    at = pd.to_datetime(rows["observed_at"], utc=True)
    newest = at.groupby(rows["retailer"].astype(str)).agg(["max", "size"]).dropna()
    params = [
        {"s": loaded.source, "r": r, "at": m.to_pydatetime(), "n": int(k), "run": run_id}
        for r, (m, k) in newest.iterrows()
    ]
    if not params:
        return out
    sql = sa.text(
        """INSERT INTO load_watermark AS w (source, retailer, observed_at, n_rows, run_id)
           VALUES (:s, :r, :at, :n, :run)
           ON CONFLICT (tenant_id, source, retailer) DO UPDATE
           SET observed_at = excluded.observed_at, n_rows = excluded.n_rows, run_id = excluded.run_id,
               updated_at = now()
           WHERE excluded.observed_at > w.observed_at
           RETURNING retailer"""
    )
    out["advanced"] = sum(len(conn.execute(sql, p).all()) for p in params)
    return out
