"""dim_listing, loaded with the history of its tracked attributes (migration 0018, docs/history.md).

`upsert_listings` (re-exported by `db.load`) treats every row as an observation of its listing on a day: the
row's `ds`, else the load's `seen_date`, else today. The tracked attributes (TRACKED: title, url, seller,
in_stock) go to `dim_listing_history` through `priceintel_listing_history_observe`, which keeps one version per
period in which they stayed the same and sets dim_listing's tracked columns to the current version (the newest
observed day's values): an old day loaded late changes the history, never the current listing. The other
columns (brand, gtin, mpn, category, category_confidence) keep each listing's newest non-NULL value as before.
`listing_rows` builds the frame of the pipeline's load: one row per listing and observed day.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import date

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from priceintel.db.errors import LoadError
from priceintel.db.staging import check_lookup, check_unique, cols, distinct, empty_counts, prepare, stage
from priceintel.items import LISTING_COLUMNS

__all__ = ["TRACKED", "listing_rows", "observe_staged", "upsert_listings"]

#: the listing attributes whose changes dim_listing_history keeps, with their column types
TRACKED = {"title": "text", "url": "text", "seller": "text", "in_stock": "boolean"}
#: observations per call of priceintel_listing_history_observe (whole listings per call)
CHUNK = 50_000
_KEYS = ["retailer", "item_id"]
_COLS = cols(
    "retailer! item_id! url title brand gtin mpn category category_confidence:real seller in_stock:boolean ds:date"
)


def _rows(conn: Connection, sql: str, params: dict) -> list:
    """Run one statement of the load; PostgreSQL's refusal becomes a LoadError naming dim_listing."""
    try:
        return list(conn.execute(sa.text(sql), params).all())
    except DBAPIError as err:
        raise LoadError(f"dim_listing: PostgreSQL rejected the load: {' '.join(str(err.orig).split())}") from None


def observe_staged(
    conn: Connection, stg: str, columns: Collection[str], day: str, staged: int, params: dict | None = None
) -> tuple[int, set[int]]:
    """Record each staged row of `stg` (retailer, item_id and the TRACKED columns among `columns`; absent or NULL:
    unknown) as an observation of its listing on `day` (an SQL date expression over `s`; rows where it is NULL are
    skipped) in dim_listing_history, and set dim_listing's tracked columns to each listing's current version.
    Returns (versions added, ids of the listings whose tracked columns changed). The listings must exist."""
    values = [f"array_agg({f's.{c}' if c in columns else f'CAST(NULL AS {t})'}) AS {c}" for c, t in TRACKED.items()]
    args = ", ".join(f"c.{c}" for c in TRACKED)
    sql = f"""SELECT o.added, o.synced FROM (
                  SELECT array_agg(l.listing_id) AS ids, array_agg({day}) AS days, {", ".join(values)}
                  FROM {stg} s JOIN dim_retailer r ON r.retailer = s.retailer
                  JOIN dim_listing l ON l.retailer_id = r.retailer_id AND l.item_id = s.item_id
                  WHERE {day} IS NOT NULL
                  GROUP BY l.listing_id % :chunks) c
              CROSS JOIN LATERAL priceintel_listing_history_observe(c.ids, c.days, {args}) o"""
    rows = _rows(conn, sql, {**(params or {}), "chunks": max(1, math.ceil(staged / CHUNK))})
    return sum(r[0] for r in rows), {i for r in rows for i in r[1]}


def _unknown_retailer_sql(stg: str) -> str:
    """SQL returning `_row` of staged rows whose retailer is not in dim_retailer."""
    return (
        f"SELECT s._row FROM {stg} s LEFT JOIN dim_retailer r ON r.retailer = s.retailer "
        "WHERE r.retailer_id IS NULL ORDER BY s._row"
    )


def upsert_listings(conn: Connection, df: pd.DataFrame, seen_date: date | str | None = None) -> dict:
    """Upsert dim_listing (LISTING_COLUMNS; optional category, category_confidence, seller, in_stock, ds) and record
    each row's tracked attributes (TRACKED) in dim_listing_history.

    A row is an observation of its listing on its `ds` (the frame may then hold one row per listing and day), else
    on `seen_date`, else today; in a frame with a `ds` column, a row whose ds is empty observes nothing (its other
    columns load, no history). NULLs keep known values: the untracked columns take each listing's newest non-NULL
    value; the tracked ones its current version's. Observed days widen first_seen/last_seen (ds and seen_date; not
    today). Counts: staged, inserted, updated (listings whose row changed) and, when rows were staged, history
    (versions added).
    """
    dated = isinstance(df, pd.DataFrame) and "ds" in df.columns
    keys = [*_KEYS, "ds"] if dated else _KEYS
    present, conv = prepare(df, "dim_listing", _COLS, keys)
    check_unique("dim_listing", df, conv, keys, "one row per listing and day" if dated else "one row per listing")
    if conv.empty:
        return empty_counts()
    n = stage(conn, "stg_listing", present, conv)
    problem = "with a retailer not in dim_retailer (upsert_retailers first)"
    check_lookup(conn, df, "dim_listing", "retailer", problem, _unknown_retailer_sql("stg_listing"), keys)
    names = [c.name for c in present]
    attrs = [c for c in names if c not in (*_KEYS, "ds")]
    kept = [c for c in attrs if c not in TRACKED]  # a conflict updates these; the tracked ones follow the history
    day = "s.ds" if dated else "CAST(:seen AS date)"
    newest = "s.ds DESC NULLS LAST, s._row DESC" if dated else "s._row DESC"
    per = [f"(array_agg(s.{c} ORDER BY {newest}) FILTER (WHERE s.{c} IS NOT NULL))[1] AS {c}" for c in attrs]
    new = [
        *(f"COALESCE(excluded.{c}, t.{c})" for c in kept),
        "LEAST(t.first_seen, excluded.first_seen)",
        "GREATEST(t.last_seen, excluded.last_seen)",
    ]
    upd = [*kept, "first_seen", "last_seen"]
    sets = ", ".join(f"{c} = {v}" for c, v in zip(upd, new))
    sql = f"""WITH p AS (SELECT s.retailer, s.item_id, {", ".join([*per, f"min({day}) AS lo", f"max({day}) AS hi"])}
                         FROM stg_listing s GROUP BY s.retailer, s.item_id)
              INSERT INTO dim_listing AS t (retailer_id, item_id, {", ".join([*attrs, "first_seen", "last_seen"])})
              SELECT r.retailer_id, p.item_id, {", ".join([*(f"p.{c}" for c in attrs), "p.lo", "p.hi"])}
              FROM p JOIN dim_retailer r ON r.retailer = p.retailer
              ORDER BY r.retailer_id, p.item_id
              ON CONFLICT (retailer_id, item_id) DO UPDATE SET {sets} WHERE {distinct(upd, new)}
              RETURNING t.listing_id, (xmax = 0) AS inserted"""
    seen = None if seen_date is None else pd.Timestamp(seen_date).date()
    written = _rows(conn, sql, {"seen": seen})
    inserted = {r[0] for r in written if r[1]}
    observed = day if dated else "COALESCE(CAST(:seen AS date), current_date)"
    added, synced = observe_staged(conn, "stg_listing", names, observed, n, {"seen": seen})
    updated = ({r[0] for r in written} | synced) - inserted
    return {"staged": n, "inserted": len(inserted), "updated": len(updated), "history": added}


def listing_rows(listings: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """The listing frame of a load (`upsert_listings`): one row per listing and day of the observations `obs` (their
    url, title, brand, gtin, mpn, in_stock and seller, when present) with each listing's other columns from
    `listings` (e.g. its category), and a row without a day for each listing of `listings` that `obs` does not
    observe (its columns load; no history)."""
    cols = [c for c in dict.fromkeys((*LISTING_COLUMNS, "ds", *TRACKED)) if c in obs.columns]
    days = obs[cols]
    other = [c for c in listings.columns if c not in days.columns]
    if other:
        days = days.merge(listings[[*_KEYS, *other]].drop_duplicates(_KEYS), on=_KEYS, how="left")
    observed = set(zip(obs["retailer"].astype(str), obs["item_id"].astype(str)))
    mask = [k not in observed for k in zip(listings["retailer"].astype(str), listings["item_id"].astype(str))]
    rest = listings[mask].assign(ds=pd.NaT)
    if not len(rest):
        return days.reset_index(drop=True)
    return pd.concat([days, rest], ignore_index=True) if len(days) else rest.reset_index(drop=True)
