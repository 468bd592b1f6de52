"""Human review of matches in PostgreSQL: the review queue, recording labels, reading them back.

A label is a person's verdict on one (listing, product) pair, kept in `match_label` (migration 0002)
forever, and mirrored into `product_match` as the current decision: a confirmation becomes status
``confirmed`` (method ``human``), a rejection marks that pair ``rejected``. `load_matches` never
overwrites those statuses with automatic ones, and `match_listings(labels=...)` honours them on the
next run: confirmed pairs are kept as they are, rejected pairs are never proposed again, and
`train_listing_model` uses them as training pairs.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel import PriceIntelError

LABEL_COLUMNS = ["retailer", "item_id", "sku", "label"]


class LabelError(PriceIntelError):
    """A label naming a listing or product that is not in the database, or a database without labels."""


def _read(engine: Engine, sql: str, params: dict | None = None) -> pd.DataFrame:
    """Run a query into a frame with a clear error when migration 0002 is missing."""
    try:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(sql), conn, params=params or {})
    except sa.exc.ProgrammingError as err:
        if "match_label" in str(err.orig):
            raise LabelError("table match_label is missing: run `priceintel db migrate`") from None
        raise


def review_queue(engine: Engine, limit: int = 100, retailer: str | None = None) -> pd.DataFrame:
    """Pairs waiting for a person (status review), most uncertain first, listing and product side by side."""
    where = "pm.status = 'review'" + (" AND r.retailer = :retailer" if retailer else "")
    sql = f"""
        SELECT r.retailer, l.item_id, l.title, l.brand AS listing_brand, l.gtin AS listing_gtin,
               l.mpn AS listing_mpn, l.url, p.sku, p.name, p.brand, p.size, p.gtin, p.mpn,
               pm.method, pm.score
        FROM product_match pm
        JOIN dim_listing l ON l.listing_id = pm.listing_id
        JOIN dim_retailer r ON r.retailer_id = l.retailer_id
        JOIN dim_product p ON p.product_id = pm.product_id
        WHERE {where}
        ORDER BY abs(pm.score - 0.5), r.retailer, l.item_id
        LIMIT :limit"""
    return _read(engine, sql, {"limit": int(limit), "retailer": retailer})


def record_label(
    engine: Engine,
    retailer: str,
    item_id: str,
    sku: str,
    label: bool,
    source: str = "review",
    by: str | None = None,
) -> dict:
    """Store one verdict (True = same product) and make it the listing's current decision; `by` names who gave
    it (stored as match_label.labelled_by)."""
    with engine.begin() as conn:
        ids = conn.execute(
            sa.text(
                """SELECT l.listing_id, (SELECT product_id FROM dim_product WHERE sku = :sku) AS product_id
               FROM dim_listing l JOIN dim_retailer r ON r.retailer_id = l.retailer_id
               WHERE r.retailer = :r AND l.item_id = :i"""
            ),
            {"r": retailer, "i": str(item_id), "sku": sku},
        ).first()
        if ids is None:
            raise LabelError(f"match_label: listing ({retailer}, {item_id}) is not in dim_listing")
        if ids.product_id is None:
            raise LabelError(f"match_label: sku {sku!r} is not in dim_product")
        score = conn.execute(
            sa.text("SELECT score FROM product_match WHERE listing_id = :l AND product_id = :p"),
            {"l": ids.listing_id, "p": ids.product_id},
        ).scalar()
        conn.execute(
            sa.text(
                """INSERT INTO match_label (listing_id, product_id, label, source, score, labelled_by)
               VALUES (:l, :p, :y, :s, :sc, :by)
               ON CONFLICT (listing_id, product_id) DO UPDATE
               SET label = excluded.label, source = excluded.source, labelled_by = excluded.labelled_by,
                   labelled_at = now()"""
            ),
            {"l": ids.listing_id, "p": ids.product_id, "y": bool(label), "s": source, "sc": score, "by": by},
        )
        if label:
            conn.execute(
                sa.text(
                    """INSERT INTO product_match AS t (listing_id, product_id, method, score, status)
                   VALUES (:l, :p, 'human', 1.0, 'confirmed')
                   ON CONFLICT (listing_id) DO UPDATE SET product_id = excluded.product_id, method = 'human',
                       score = 1.0, status = 'confirmed', updated_at = now()"""
                ),
                {"l": ids.listing_id, "p": ids.product_id},
            )
            status = "confirmed"
        else:
            res = conn.execute(
                sa.text(
                    """UPDATE product_match SET status = 'rejected', updated_at = now()
                   WHERE listing_id = :l AND product_id = :p"""
                ),
                {"l": ids.listing_id, "p": ids.product_id},
            )
            status = "rejected" if res.rowcount else "label only"
    return {"retailer": retailer, "item_id": str(item_id), "sku": sku, "label": bool(label), "status": status}


def read_labels(engine: Engine) -> pd.DataFrame:
    """Every stored label as LABEL_COLUMNS (label 1 = same product, 0 = different)."""
    df = _read(
        engine,
        """
        SELECT r.retailer, l.item_id, p.sku, ml.label::int AS label
        FROM match_label ml
        JOIN dim_listing l ON l.listing_id = ml.listing_id
        JOIN dim_retailer r ON r.retailer_id = l.retailer_id
        JOIN dim_product p ON p.product_id = ml.product_id
        ORDER BY r.retailer, l.item_id, p.sku""",
    )
    return df[LABEL_COLUMNS]


def stored_labels_or_none(url: str | None = None) -> pd.DataFrame | None:
    """Stored labels when a migrated database answers, else None (the pipeline runs without them)."""
    try:
        from priceintel.db.engine import check_connection, get_engine

        eng = get_engine(url)
        check_connection(eng)
        return read_labels(eng)
    except (PriceIntelError, sa.exc.SQLAlchemyError):
        return None
