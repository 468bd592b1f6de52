"""Stakeholder-app read layer: materialized views behind every dashboard view, their keyset indexes,
stored elasticity estimates/recommendations, and the refresh bookkeeping the app cache keys on.

Every materialized view has a unique index so `REFRESH MATERIALIZED VIEW CONCURRENTLY` works
(`priceintel.dashboard.refresh` runs it after each load / forecast run / elasticity run).
Keyset order of each view (unique, so cursors are exact):

* mv_app_prices: newest day first (neg_day = -date_key), then sku, retailer, listing_id
* mv_app_forecasts: sku, retailer, unique_id, ds
* mv_app_elasticity: run_id, sku
* v_app_alerts (a plain view: alerts change state in the app): ds DESC, alert_id DESC

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE elasticity_run (
    run_id       serial PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    window_start date NOT NULL,
    window_end   date NOT NULL,
    spec         jsonb,
    n_products   integer NOT NULL DEFAULT 0,
    code_version text,
    CHECK (window_start <= window_end)
);
COMMENT ON TABLE elasticity_run IS 'one demand-model fit of the model stage: estimation window and specification';

CREATE TABLE elasticity_estimate (
    run_id            integer NOT NULL REFERENCES elasticity_run (run_id) ON DELETE CASCADE,
    sku               text NOT NULL,
    elasticity        double precision,
    se                double precision,
    ci_lo             double precision,
    ci_hi             double precision,
    elasticity_pooled double precision,
    ci_lo_pooled      double precision,
    ci_hi_pooled      double precision,
    cross_elasticity  double precision,
    n                 integer,
    identified        boolean,
    note              text,
    current_price     double precision,
    recommended_price double precision,
    change_pct        double precision,
    expected_units    double precision,
    expected_profit   double precision,
    reason            text,
    PRIMARY KEY (run_id, sku)
);
COMMENT ON TABLE elasticity_estimate IS 'per product: own-price elasticity (own and category-pooled, 95% CI) and the recommended price';

CREATE TABLE app_refresh (
    name         text PRIMARY KEY,
    refreshed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    n_rows       bigint,
    seconds      double precision
);
COMMENT ON TABLE app_refresh IS 'last refresh of each app materialized view; part of the app cache key';

CREATE INDEX ix_alert_ds_id ON alert (ds, alert_id);
CREATE INDEX ix_alert_sku_ds_id ON alert (sku, ds, alert_id);
CREATE INDEX ix_alert_retailer_ds_id ON alert (retailer, ds, alert_id);
CREATE INDEX ix_alert_updated_at ON alert (updated_at);
"""

_VIEWS = """
CREATE MATERIALIZED VIEW mv_app_prices AS
SELECT fp.listing_id, fp.date_key, -fp.date_key AS neg_day, d.date AS ds,
       r.retailer, l.item_id, p.product_id, p.sku, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category,
       fp.price::float8 AS price, fp.currency::text AS currency, fp.in_stock, fp.promo,
       fs.price::float8 AS our_price,
       CASE WHEN fs.price > 0 AND fp.price IS NOT NULL
            THEN round((fp.price / fs.price - 1) * 100, 2)::float8 END AS gap_pct
FROM fact_price fp
JOIN product_match pm ON pm.listing_id = fp.listing_id AND pm.status IN ('auto', 'confirmed')
JOIN dim_product p ON p.product_id = pm.product_id
JOIN dim_listing l ON l.listing_id = fp.listing_id
JOIN dim_retailer r ON r.retailer_id = l.retailer_id
JOIN dim_date d ON d.date_key = fp.date_key
LEFT JOIN fact_sales fs ON fs.product_id = pm.product_id AND fs.date_key = fp.date_key;
COMMENT ON MATERIALIZED VIEW mv_app_prices IS 'prices view: one row per matched listing and day with our price and the gap';
CREATE UNIQUE INDEX ux_mv_app_prices ON mv_app_prices (listing_id, date_key);
CREATE INDEX ix_mv_app_prices_order ON mv_app_prices (neg_day, sku, retailer, listing_id);
CREATE INDEX ix_mv_app_prices_sku ON mv_app_prices (sku, neg_day, retailer, listing_id);
CREATE INDEX ix_mv_app_prices_category ON mv_app_prices (category, neg_day, sku, retailer, listing_id);

CREATE MATERIALIZED VIEW mv_app_prices_daily AS
SELECT date_key, ds, retailer, category,
       count(*) AS n_rows, count(price) AS n_priced, sum(price) AS price_sum,
       count(gap_pct) AS n_gap, sum(gap_pct) AS gap_sum,
       count(*) FILTER (WHERE in_stock) AS n_in_stock, count(*) FILTER (WHERE promo) AS n_promo,
       count(our_price) AS n_ours, sum(our_price) AS ours_sum
FROM mv_app_prices
GROUP BY date_key, ds, retailer, category;
COMMENT ON MATERIALIZED VIEW mv_app_prices_daily IS 'prices view aggregated per day, retailer and category (charts, summaries)';
CREATE UNIQUE INDEX ux_mv_app_prices_daily ON mv_app_prices_daily (date_key, retailer, category);

CREATE MATERIALIZED VIEW mv_app_listing_span AS
SELECT mp.listing_id, mp.product_id, mp.sku, mp.retailer, mp.category,
       min(mp.ds) AS first_ds, max(mp.ds) AS last_ds, count(*) AS n_days,
       max(mp.ds) FILTER (WHERE mp.price IS NOT NULL) AS last_priced_ds,
       max(mp.date_key) FILTER (WHERE mp.price IS NOT NULL) AS last_priced_key
FROM mv_app_prices mp
GROUP BY mp.listing_id, mp.product_id, mp.sku, mp.retailer, mp.category;
COMMENT ON MATERIALIZED VIEW mv_app_listing_span IS 'per matched listing: first and last observed day, last day with a price';
CREATE UNIQUE INDEX ux_mv_app_listing_span ON mv_app_listing_span (listing_id);
CREATE INDEX ix_mv_app_listing_span_sku ON mv_app_listing_span (sku);

CREATE MATERIALIZED VIEW mv_app_forecasts AS
WITH latest AS (SELECT max(run_id) AS run_id FROM forecast_run)
SELECT fv.run_id, fv.unique_id, fv.ds, r.retailer, l.listing_id, l.item_id, p.sku, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category, fs.chosen_model, fs.p_change,
       fv.yhat, fv.lo_80, fv.hi_80, fv.lo_95, fv.hi_95,
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

CREATE MATERIALIZED VIEW mv_app_elasticity AS
SELECT e.run_id, er.window_start, er.window_end, er.created_at, e.sku, p.product_id, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category,
       e.elasticity, e.se, e.ci_lo, e.ci_hi, e.elasticity_pooled, e.ci_lo_pooled, e.ci_hi_pooled,
       e.cross_elasticity, e.n, e.identified, e.note, p.unit_cost::float8 AS unit_cost,
       e.current_price, e.recommended_price, e.change_pct, e.expected_units, e.expected_profit, e.reason
FROM elasticity_estimate e
JOIN elasticity_run er ON er.run_id = e.run_id
LEFT JOIN dim_product p ON p.sku = e.sku;
COMMENT ON MATERIALIZED VIEW mv_app_elasticity IS 'elasticity view: per run and product, estimates and the recommended price';
CREATE UNIQUE INDEX ux_mv_app_elasticity ON mv_app_elasticity (run_id, sku);

CREATE VIEW v_app_alerts AS
SELECT a.alert_id, a.ds, a.severity, a.state, a.kind, a.rule, a.retailer, a.item_id, a.sku,
       p.name, p.brand, a.category, a.price::float8 AS price, a.reference_price::float8 AS reference_price,
       a.value, a.reason, a.created_at, a.updated_at
FROM alert a
LEFT JOIN dim_product p ON p.sku = a.sku;
COMMENT ON VIEW v_app_alerts IS 'alerts view (live: the alert manager changes states)';
"""

_DROP = [
    "DROP VIEW IF EXISTS v_app_alerts",
    "DROP MATERIALIZED VIEW IF EXISTS mv_app_elasticity",
    "DROP MATERIALIZED VIEW IF EXISTS mv_app_forecasts",
    "DROP MATERIALIZED VIEW IF EXISTS mv_app_listing_span",
    "DROP MATERIALIZED VIEW IF EXISTS mv_app_prices_daily",
    "DROP MATERIALIZED VIEW IF EXISTS mv_app_prices",
    "DROP INDEX IF EXISTS ix_alert_updated_at",
    "DROP INDEX IF EXISTS ix_alert_retailer_ds_id",
    "DROP INDEX IF EXISTS ix_alert_sku_ds_id",
    "DROP INDEX IF EXISTS ix_alert_ds_id",
    "DROP TABLE IF EXISTS app_refresh",
    "DROP TABLE IF EXISTS elasticity_estimate",
    "DROP TABLE IF EXISTS elasticity_run",
]


def upgrade() -> None:
    """Create the elasticity and refresh tables, the app materialized views and their indexes."""
    op.execute(_TABLES)
    op.execute(_VIEWS)


def downgrade() -> None:
    """Drop them again (views first)."""
    for statement in _DROP:
        op.execute(statement)
