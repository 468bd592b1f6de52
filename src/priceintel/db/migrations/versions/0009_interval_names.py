"""One interval naming everywhere: `forecast_value` and `mv_app_forecasts` use `lo-80`, `hi-80`, `lo-95`,
`hi-95`, the names of every forecast frame (`priceintel.forecast.columns.BOUNDS`), instead of `lo_80`, ….

SQL must quote them (`fv."lo-80"`); `priceintel.forecast.store` and the apps' queries do.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BOUNDS = ("lo-80", "hi-80", "lo-95", "hi-95")

# mv_app_forecasts as in 0007, with the renamed bounds
_VIEW = """
CREATE MATERIALIZED VIEW mv_app_forecasts AS
WITH latest AS (SELECT max(run_id) AS run_id FROM forecast_run)
SELECT fv.run_id, fv.unique_id, fv.ds, r.retailer, l.listing_id, l.item_id, p.sku, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category, fs.chosen_model, fs.p_change,
       fv.yhat, {bounds},
       sp.last_priced_ds AS last_ds, lp.price::float8 AS last_price,
       CASE WHEN lp.price > 0 THEN round(((fv.yhat / lp.price::float8 - 1) * 100)::numeric, 2)::float8 END
           AS change_pct
FROM latest
JOIN forecast_value fv ON fv.run_id = latest.run_id AND fv.model = 'chosen'
JOIN forecast_series fs ON fs.run_id = fv.run_id AND fs.unique_id = fv.unique_id
JOIN dim_retailer r ON r.retailer = split_part(fv.unique_id, ':', 1)
JOIN dim_listing l ON l.retailer_id = r.retailer_id AND l.item_id = substr(fv.unique_id, length(r.retailer) + 2)
JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status IN ('auto', 'confirmed')
JOIN dim_product p ON p.product_id = pm.product_id
LEFT JOIN mv_app_listing_span sp ON sp.listing_id = l.listing_id
LEFT JOIN fact_price lp ON lp.listing_id = l.listing_id AND lp.date_key = sp.last_priced_key;
COMMENT ON MATERIALIZED VIEW mv_app_forecasts IS 'forecasts view: the latest run''s chosen-model forecasts with 80/95% bands';
CREATE UNIQUE INDEX ux_mv_app_forecasts ON mv_app_forecasts (unique_id, ds);
CREATE INDEX ix_mv_app_forecasts_order ON mv_app_forecasts (sku, retailer, unique_id, ds);
"""


def _quoted(name: str) -> str:
    return '"' + name + '"'


def _rename(old_of, new_of) -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS mv_app_forecasts")
    for b in _BOUNDS:
        op.execute(f"ALTER TABLE forecast_value RENAME COLUMN {_quoted(old_of(b))} TO {_quoted(new_of(b))}")
    op.execute(_VIEW.format(bounds=", ".join("fv." + _quoted(new_of(b)) for b in _BOUNDS)))


def upgrade() -> None:
    """Rename the bound columns to `lo-80`, … and recreate the forecasts view with them."""
    _rename(lambda b: b.replace("-", "_"), lambda b: b)


def downgrade() -> None:
    """Back to `lo_80`, …"""
    _rename(lambda b: b, lambda b: b.replace("-", "_"))
